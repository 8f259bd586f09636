/* NIfTI-1 writer: 348-byte header, 4 bytes of extension flags, voxel data,
 * through zlib's gz* interface (transparent mode for plain .nii).
 *
 * Invariants: header fields are written at their nifti1.h byte offsets
 * explicitly (no struct packing assumptions); the target appears only after a
 * complete write (temporary file + rename). zlib's gzip header has mtime 0,
 * so output bytes are a pure function of the input.
 * Reference: nifti1.h, NIfTI Data Format Working Group, 2004. */
#include "medsynth/nifti.h"
#include "core/alloc.h"
#include "core/diag.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static void put_i16(unsigned char *h, size_t off, int v) {
  int16_t x = (int16_t)v;
  memcpy(h + off, &x, 2);
}
static void put_i32(unsigned char *h, size_t off, int32_t v) { memcpy(h + off, &v, 4); }
static void put_f32(unsigned char *h, size_t off, double v) {
  float x = (float)v;
  memcpy(h + off, &x, 4);
}

void ms_nifti_desc_init(ms_nifti_desc *n) {
  memset(n, 0, sizeof *n);
  n->dtype = MS_NIFTI_FLOAT32;
  n->dim[0] = n->dim[1] = n->dim[2] = 1;
  n->pixdim[0] = n->pixdim[1] = n->pixdim[2] = 1;
}

static const struct {
  int code, bitpix;
} k_types[MS_NIFTI_DTYPE_COUNT] = {{2, 8}, {4, 16}, {16, 32}};

ms_status ms_nifti_header(unsigned char h[348], const ms_nifti_desc *n, ms_diag *d) {
  if ((unsigned)n->dtype >= MS_NIFTI_DTYPE_COUNT)
    return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, "nifti", "unknown NIfTI data type %d", (int)n->dtype);
  for (int a = 0; a < 3; a++) {
    if (n->dim[a] < 1 || n->dim[a] > 32767)
      return ms_diag_add(d, MS_ERR_RANGE, NULL, 0, 0, "nifti", "dimension %d = %d is outside 1..32767", a, n->dim[a]);
    if (!(n->pixdim[a] > 0) || !isfinite(n->pixdim[a]))
      return ms_diag_add(d, MS_ERR_RANGE, NULL, 0, 0, "nifti", "voxel size %d = %g mm must be positive", a, n->pixdim[a]);
  }
  memset(h, 0, 348);
  put_i32(h, 0, 348);                        /* sizeof_hdr */
  h[38] = 'r';                               /* regular: NIfTI-1 leaves it, Analyze wants 'r' */
  int ndim = n->dim[2] > 1 ? 3 : 2;
  put_i16(h, 40, ndim);                      /* dim[0] */
  for (int a = 0; a < 3; a++) put_i16(h, 42 + 2 * (size_t)a, n->dim[a]);
  for (int a = 3; a < 7; a++) put_i16(h, 42 + 2 * (size_t)a, 1);
  put_i16(h, 70, k_types[n->dtype].code);    /* datatype */
  put_i16(h, 72, k_types[n->dtype].bitpix);  /* bitpix */
  put_f32(h, 76, 1.0);                       /* pixdim[0] = qfac */
  for (int a = 0; a < 3; a++) put_f32(h, 80 + 4 * (size_t)a, n->pixdim[a]);
  for (int a = 3; a < 7; a++) put_f32(h, 80 + 4 * (size_t)a, 0.0);
  put_f32(h, 108, 352.0);                    /* vox_offset */
  put_f32(h, 112, 1.0);                      /* scl_slope */
  put_f32(h, 116, 0.0);                      /* scl_inter */
  h[123] = 2;                                /* xyzt_units: NIFTI_UNITS_MM */
  char desc[80];
  snprintf(desc, sizeof desc, "%s", n->descrip);
  memcpy(h + 148, desc, strlen(desc));      /* descrip[80] */
  put_i16(h, 252, 1);                        /* qform_code: scanner */
  put_i16(h, 254, 1);                        /* sform_code: scanner */
  double W = n->dim[0], H = n->dim[1], D = n->dim[2];
  double sx = n->pixdim[0], sy = n->pixdim[1], sz = n->pixdim[2];
  double ox = sx * (W - 1) / 2, oy = sy * (H - 1) / 2, oz = -sz * (D - 1) / 2;
  put_f32(h, 256, 0.0);                      /* quatern_b */
  put_f32(h, 260, 0.0);                      /* quatern_c */
  put_f32(h, 264, 1.0);                      /* quatern_d */
  put_f32(h, 268, ox);                       /* qoffset_x */
  put_f32(h, 272, oy);
  put_f32(h, 276, oz);
  const double srow[3][4] = {{-sx, 0, 0, ox}, {0, -sy, 0, oy}, {0, 0, sz, oz}};
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 4; c++) put_f32(h, 280 + 16 * (size_t)r + 4 * (size_t)c, srow[r][c]);
  memcpy(h + 344, "n+1\0", 4);
  return MS_OK;
}

static size_t dtype_size(ms_nifti_dtype t) { return (size_t)k_types[t].bitpix / 8; }

ms_status ms_nifti_write(const char *path, const ms_nifti_desc *n, const void *data, ms_diag *d) {
  unsigned char hdr[352];
  ms_status st = ms_nifti_header(hdr, n, d);
  if (st != MS_OK) return st;
  memset(hdr + 348, 0, 4); /* no extensions */
  size_t len = strlen(path);
  int gz = len > 3 && strcmp(path + len - 3, ".gz") == 0;
  char *tmp = ms__malloc(len + 16);
  if (!tmp) return ms__diag_nomem(d, path, NULL, "a temporary file name");
  snprintf(tmp, len + 16, "%s.tmp.XXXXXX", path);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    st = ms_diag_add(d, MS_ERR_IO, path, 0, 0, NULL, "cannot create a temporary file: %s", strerror(errno));
    free(tmp);
    return st;
  }
  (void)fchmod(fd, 0644);
  gzFile g = gzdopen(fd, gz ? "wb6" : "wbT");
  if (!g) {
    close(fd);
    unlink(tmp);
    free(tmp);
    return ms_diag_add(d, MS_ERR_IO, path, 0, 0, NULL, "cannot open the compressor");
  }
  int ok = gzwrite(g, hdr, 352) == 352;
  size_t total = (size_t)n->dim[0] * (size_t)n->dim[1] * (size_t)n->dim[2] * dtype_size(n->dtype);
  const unsigned char *p = data;
  for (size_t off = 0; ok && off < total;) {
    size_t m = total - off > (1u << 30) ? (1u << 30) : total - off;
    ok = gzwrite(g, p + off, (unsigned)m) == (int)m;
    off += m;
  }
  if (gzclose(g) != Z_OK) ok = 0;
  if (!ok || rename(tmp, path) != 0) {
    st = ms_diag_add(d, MS_ERR_IO, path, 0, 0, NULL, "writing the NIfTI file failed: %s", strerror(errno));
    unlink(tmp);
    free(tmp);
    return st;
  }
  free(tmp);
  return MS_OK;
}
