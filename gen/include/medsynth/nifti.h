/* NIfTI-1 single-file images (.nii, or .nii.gz through zlib's gzip writer).
 *
 * Usage:
 *   ms_nifti_desc n; ms_nifti_desc_init(&n);
 *   n.dtype = MS_NIFTI_FLOAT32; n.dim[0] = W; n.dim[1] = H; n.dim[2] = D;
 *   n.pixdim[0] = n.pixdim[1] = 0.94; n.pixdim[2] = 2.0;   // mm
 *   ms_nifti_write("img.nii.gz", &n, data, &diag);
 *
 * Data layout: data[(k * H + j) * W + i] is voxel (i, j, k) -- x (image
 * column) fastest, as NIfTI stores it, which is also the C order of a
 * medsynth [D][H][W] array.
 *
 * Header: sizeof_hdr 348, dim = {3 (or 2 when D == 1), W, H, D, 1...},
 * pixdim = {1 (qfac), sx, sy, sz}, datatype/bitpix from dtype, vox_offset 352,
 * scl_slope 1, scl_inter 0, xyzt_units = NIFTI_UNITS_MM, qform_code =
 * sform_code = 1 (scanner anatomical) with one affine in both forms, magic
 * "n+1". The affine maps voxel (i, j, k) to RAS+ millimetres, centred on the
 * field of view, for a medsynth image displayed in radiological convention
 * (image right = patient left, image top = anterior, planes going superior):
 *   x = -sx * (i - (W - 1) / 2), y = -sy * (j - (H - 1) / 2),
 *   z =  sz * (k - (D - 1) / 2)
 * plus origin_mm (0 by default; the brain phantom puts its grid centre at
 * the MNI position it was sampled from)
 * i.e. quaternion (b, c, d) = (0, 0, 1), a 180 degree turn about z.
 *
 * The file is written to a temporary name and renamed only on success; gzip
 * output carries no timestamp, so bytes depend only on the data.
 * Reference: NIfTI-1 data format, nifti1.h (Cox et al., 2004,
 * https://nifti.nimh.nih.gov/nifti-1). */
#ifndef MEDSYNTH_NIFTI_H
#define MEDSYNTH_NIFTI_H

#include <stddef.h>
#include <stdint.h>

#include "medsynth/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  MS_NIFTI_UINT8,   /* NIFTI datatype 2 */
  MS_NIFTI_INT16,   /* 4 */
  MS_NIFTI_FLOAT32, /* 16 */
  MS_NIFTI_DTYPE_COUNT
} ms_nifti_dtype;

typedef struct {
  ms_nifti_dtype dtype;
  int dim[3];       /* W, H, D (D = 1 for a slice) */
  double pixdim[3]; /* voxel size in mm */
  char descrip[80]; /* free text, NUL-terminated */
  double origin_mm[3]; /* RAS position of the grid centre; default 0 */
} ms_nifti_desc;

void ms_nifti_desc_init(ms_nifti_desc *n);
/* Fills the 348-byte header (little-endian host assumed, as NIfTI readers
 * detect the byte order from sizeof_hdr). */
ms_status ms_nifti_header(unsigned char hdr[348], const ms_nifti_desc *n, ms_diag *d);
/* gzip-compressed when path ends in ".gz", plain otherwise. */
ms_status ms_nifti_write(const char *path, const ms_nifti_desc *n, const void *data, ms_diag *d);

#ifdef __cplusplus
}
#endif
#endif
