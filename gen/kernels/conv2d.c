/* conv2d (NCHW, groups 1, dilation 1, zero padding, optional bias).
 *
 * ms_conv2d_ref: direct loops, double accumulator per output, order
 * (c, ky, kx) increasing, bias added last.
 * ms_conv2d: per image, a GEMM  y[n] (C_out x Ho*Wo) = w (C_out x C*kh*kw) *
 * col (C*kh*kw x Ho*Wo) + bias. 1x1/stride-1/unpadded convolutions use x[n]
 * directly as `col`; otherwise col is built (im2col) in the caller's scratch
 * one band of output rows at a time. The band height is a function of the
 * params only, and the GEMM's summation order depends on K = C*kh*kw only,
 * so the bytes do not depend on threads or banding.
 *
 * Reference: PyTorch torch.nn.functional.conv2d; Chellapilla et al., "High
 * performance convolutional neural networks for document processing" (2006)
 * for im2col. */
#include <string.h>

#include "kern_internal.h"

/* Largest im2col band, in floats (8 MB). */
#define CONV_BAND_FLOATS ((size_t)2 << 20)

ms_status ms_conv2d_out_hw(const ms_conv2d_params *p, size_t *Ho, size_t *Wo) {
  if (!p || !p->N || !p->C || !p->H || !p->W || !p->C_out || !p->kh || !p->kw ||
      !p->stride_h || !p->stride_w)
    return MS_ERR_INVALID;
  if (p->pad_h > SIZE_MAX / 4 || p->pad_w > SIZE_MAX / 4 || p->H > SIZE_MAX / 4 ||
      p->W > SIZE_MAX / 4)
    return MS_ERR_INVALID;
  size_t hp = p->H + 2 * p->pad_h, wp = p->W + 2 * p->pad_w;
  if (p->kh > hp || p->kw > wp) return MS_ERR_INVALID;
  size_t ho = (hp - p->kh) / p->stride_h + 1, wo = (wp - p->kw) / p->stride_w + 1;
  /* Every tensor size must be representable. */
  size_t t;
  if (!ms__mul_ok(p->N, p->C, &t) || !ms__mul_ok(t, p->H, &t) || !ms__mul_ok(t, p->W, &t) ||
      !ms__mul_ok(p->N, p->C_out, &t) || !ms__mul_ok(t, ho, &t) || !ms__mul_ok(t, wo, &t) ||
      !ms__mul_ok(p->C_out, p->C, &t) || !ms__mul_ok(t, p->kh, &t) ||
      !ms__mul_ok(t, p->kw, &t) || !ms__mul_ok(p->C * p->kh, p->kw, &t) ||
      !ms__mul_ok(t, wo, &t) || t > SIZE_MAX / sizeof(float))
    return MS_ERR_INVALID;
  if (Ho) *Ho = ho;
  if (Wo) *Wo = wo;
  return MS_OK;
}

ms_status ms_conv2d_ref(float *y, const float *x, const float *w, const float *b,
                        const ms_conv2d_params *p) {
  size_t Ho, Wo;
  ms_status s = ms_conv2d_out_hw(p, &Ho, &Wo);
  if (s != MS_OK) return s;
  if (!y || !x || !w) return MS_ERR_INVALID;
  const size_t C = p->C, H = p->H, W = p->W, kh = p->kh, kw = p->kw;
  for (size_t n = 0; n < p->N; n++) {
    for (size_t co = 0; co < p->C_out; co++) {
      for (size_t oy = 0; oy < Ho; oy++) {
        for (size_t ox = 0; ox < Wo; ox++) {
          double acc = 0.0;
          for (size_t c = 0; c < C; c++) {
            for (size_t ky = 0; ky < kh; ky++) {
              /* iy = oy*stride + ky - pad, skipped when outside [0, H). */
              size_t iy = oy * p->stride_h + ky;
              if (iy < p->pad_h || iy - p->pad_h >= H) continue;
              iy -= p->pad_h;
              for (size_t kx = 0; kx < kw; kx++) {
                size_t ix = ox * p->stride_w + kx;
                if (ix < p->pad_w || ix - p->pad_w >= W) continue;
                ix -= p->pad_w;
                acc += (double)x[((n * C + c) * H + iy) * W + ix] *
                       (double)w[((co * C + c) * kh + ky) * kw + kx];
              }
            }
          }
          if (b) acc += (double)b[co];
          y[((n * p->C_out + co) * Ho + oy) * Wo + ox] = (float)acc;
        }
      }
    }
  }
  return MS_OK;
}

static int conv_is_pointwise(const ms_conv2d_params *p) {
  return p->kh == 1 && p->kw == 1 && p->stride_h == 1 && p->stride_w == 1 && p->pad_h == 0 &&
         p->pad_w == 0;
}

/* Output rows per im2col band: as many as fit CONV_BAND_FLOATS, at least 1. */
static size_t conv_band_rows(const ms_conv2d_params *p, size_t Ho, size_t Wo) {
  size_t per_row = p->C * p->kh * p->kw * Wo;
  size_t rows = CONV_BAND_FLOATS / per_row;
  if (rows < 1) rows = 1;
  if (rows > Ho) rows = Ho;
  return rows;
}

size_t ms_conv2d_scratch_floats(const ms_conv2d_params *p) {
  size_t Ho, Wo;
  if (ms_conv2d_out_hw(p, &Ho, &Wo) != MS_OK) return 0;
  size_t K = p->C * p->kh * p->kw;
  if (conv_is_pointwise(p)) return ms_sgemm_scratch_floats(p->C_out, Ho * Wo, K);
  size_t rows = conv_band_rows(p, Ho, Wo);
  size_t col = K * rows * Wo;
  return col + 16 + ms_sgemm_scratch_floats(p->C_out, rows * Wo, K);
}

/* col[(c*kh + ky)*kw + kx, (oy - oy0)*Wo + ox] = x[c, oy*s + ky - pad, ox*s + kx - pad] */
static void im2col_band(float *col, const float *x, const ms_conv2d_params *p, size_t Wo,
                        size_t oy0, size_t rows) {
  const size_t C = p->C, H = p->H, W = p->W, kh = p->kh, kw = p->kw;
  const size_t ncol = rows * Wo;
  const size_t nrow = C * kh * kw;
#pragma omp parallel for schedule(static) if (nrow * ncol > 65536)
  for (size_t r = 0; r < nrow; r++) {
    size_t c = r / (kh * kw), ky = (r / kw) % kh, kx = r % kw;
    float *dst = col + r * ncol;
    for (size_t oy = oy0; oy < oy0 + rows; oy++) {
      float *d = dst + (oy - oy0) * Wo;
      size_t iy = oy * p->stride_h + ky;
      if (iy < p->pad_h || iy - p->pad_h >= H) {
        memset(d, 0, Wo * sizeof(float));
        continue;
      }
      const float *src = x + (c * H + (iy - p->pad_h)) * W;
      if (p->stride_w == 1) {
        /* ix = ox + kx - pad_w: zero on the left, copy, zero on the right. */
        for (size_t ox = 0; ox < Wo; ox++) {
          size_t ix = ox + kx;
          d[ox] = (ix < p->pad_w || ix - p->pad_w >= W) ? 0.0f : src[ix - p->pad_w];
        }
      } else {
        for (size_t ox = 0; ox < Wo; ox++) {
          size_t ix = ox * p->stride_w + kx;
          d[ox] = (ix < p->pad_w || ix - p->pad_w >= W) ? 0.0f : src[ix - p->pad_w];
        }
      }
    }
  }
}

ms_status ms_conv2d(float *y, const float *x, const float *w, const float *b,
                    const ms_conv2d_params *p, float *scratch, size_t scratch_floats) {
  size_t Ho, Wo;
  ms_status s = ms_conv2d_out_hw(p, &Ho, &Wo);
  if (s != MS_OK) return s;
  if (!y || !x || !w) return MS_ERR_INVALID;
  size_t need = ms_conv2d_scratch_floats(p);
  if (!scratch || scratch_floats < need) return MS_ERR_INVALID;
  const size_t K = p->C * p->kh * p->kw, P = Ho * Wo, Co = p->C_out;
  const float beta = b ? 1.0f : 0.0f;
  for (size_t n = 0; n < p->N; n++) {
    float *yn = y + n * Co * P;
    const float *xn = x + n * p->C * p->H * p->W;
    if (b) {
      for (size_t co = 0; co < Co; co++)
        for (size_t i = 0; i < P; i++) yn[co * P + i] = b[co];
    }
    if (conv_is_pointwise(p)) {
      s = ms_sgemm(yn, P, w, K, xn, P, MS_TRANS_NO, MS_TRANS_NO, Co, P, K, 1.0f, beta, scratch,
                   scratch_floats);
      if (s != MS_OK) return s;
      continue;
    }
    size_t rows = conv_band_rows(p, Ho, Wo);
    float *col = scratch;
    size_t col_floats = K * rows * Wo + 16;
    for (size_t oy0 = 0; oy0 < Ho; oy0 += rows) {
      size_t r = Ho - oy0 < rows ? Ho - oy0 : rows;
      im2col_band(col, xn, p, Wo, oy0, r);
      s = ms_sgemm(yn + oy0 * Wo, P, w, K, col, r * Wo, MS_TRANS_NO, MS_TRANS_NO, Co, r * Wo, K,
                   1.0f, beta, scratch + col_floats, scratch_floats - col_floats);
      if (s != MS_OK) return s;
    }
  }
  return MS_OK;
}
