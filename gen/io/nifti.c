/* NIfTI-1 writer: 348-byte header, 4 bytes of extension flags, voxel data,
 * gzip-compressed for .nii.gz (zlib deflate at level 6 with a gzip wrapper,
 * the stream gzopen(path, "wb6") produces) or plain for .nii.
 *
 * Invariants: header fields are written at their nifti1.h byte offsets
 * explicitly (no struct packing assumptions); the target appears only after a
 * complete write (ms__atomic_write: temporary file + fsync + rename). zlib's
 * gzip header has mtime 0, so output bytes are a pure function of the input.
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

#include "io/atomic.h"

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
  double ox = sx * (W - 1) / 2 + n->origin_mm[0], oy = sy * (H - 1) / 2 + n->origin_mm[1],
         oz = -sz * (D - 1) / 2 + n->origin_mm[2];
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

typedef struct {
  const unsigned char *hdr; /* 352 bytes */
  const unsigned char *data;
  size_t bytes;
  int gz;
} nifti_job;

/* ms__atomic_fill: header and voxels, raw or through one deflate stream.
 * Returns 0 or an errno value. */
static int write_nifti(FILE *f, void *ctx) {
  const nifti_job *j = ctx;
  if (!j->gz) {
    if (fwrite(j->hdr, 1, 352, f) != 352) return errno ? errno : EIO;
    if (j->bytes && fwrite(j->data, 1, j->bytes, f) != j->bytes) return errno ? errno : EIO;
    return 0;
  }
  z_stream z;
  memset(&z, 0, sizeof z);
  /* gzopen's settings: window 2^15 with a gzip wrapper (+16), memLevel 8 */
  if (deflateInit2(&z, 6, Z_DEFLATED, MAX_WBITS + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return ENOMEM;
  unsigned char out[1 << 16];
  int err = 0;
  const unsigned char *src[2] = {j->hdr, j->data};
  size_t len[2] = {352, j->bytes};
  for (int part = 0; part < 2 && !err; part++) {
    size_t off = 0;
    int last = part == 1;
    do {
      size_t m = len[part] - off > (1u << 30) ? (1u << 30) : len[part] - off;
      z.next_in = (Bytef *)(uintptr_t)(src[part] + off);
      z.avail_in = (uInt)m;
      off += m;
      int flush = last && off == len[part] ? Z_FINISH : Z_NO_FLUSH, rc;
      do {
        z.next_out = out;
        z.avail_out = sizeof out;
        rc = deflate(&z, flush);
        if (rc == Z_STREAM_ERROR) {
          err = EIO;
          break;
        }
        size_t have = sizeof out - z.avail_out;
        if (have && fwrite(out, 1, have, f) != have) {
          err = errno ? errno : EIO;
          break;
        }
      } while (z.avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
    } while (!err && off < len[part]);
  }
  deflateEnd(&z);
  return err;
}

ms_status ms_nifti_write(const char *path, const ms_nifti_desc *n, const void *data, ms_diag *d) {
  unsigned char hdr[352];
  ms_status st = ms_nifti_header(hdr, n, d);
  if (st != MS_OK) return st;
  memset(hdr + 348, 0, 4); /* no extensions */
  size_t len = strlen(path);
  nifti_job j = {hdr, data,
                 (size_t)n->dim[0] * (size_t)n->dim[1] * (size_t)n->dim[2] * dtype_size(n->dtype),
                 len > 3 && strcmp(path + len - 3, ".gz") == 0};
  return ms__atomic_write(path, 1, write_nifti, &j, d);
}
