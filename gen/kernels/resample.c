/* Resampling by 2: nearest-neighbour upsampling and 2x2 average pooling.
 *
 * Upsampling is a copy (_ref and fast identical). Average pooling computes
 * ((x00 + x01) + (x10 + x11)) * 0.25 in float in both variants, so they
 * agree exactly; PyTorch sums the four in row order and divides by 4, which
 * can differ in the last bit.
 *
 * Reference: PyTorch F.interpolate(mode="nearest", scale_factor=2) and
 * F.avg_pool2d(kernel_size=2) (floor for odd sizes). */
#include "core/pool.h"
#include "kern_internal.h"

void ms_upsample_nearest2x_ref(float *y, const float *x, size_t N, size_t C, size_t H, size_t W) {
  for (size_t nc = 0; nc < N * C; nc++)
    for (size_t i = 0; i < 2 * H; i++)
      for (size_t j = 0; j < 2 * W; j++)
        y[(nc * 2 * H + i) * 2 * W + j] = x[(nc * H + i / 2) * W + j / 2];
}

typedef struct {
  float *y;
  const float *x;
  size_t H, W;
} resample_job;

/* Planes at least 32768 input floats per piece. */
static size_t plane_grain(size_t H, size_t W) {
  const size_t hw = H * W;
  return hw ? (32768 + hw - 1) / hw : 1;
}

static void upsample_range(void *ctx, size_t p0, size_t p1) {
  const resample_job *jb = ctx;
  float *y = jb->y;
  const float *x = jb->x;
  const size_t H = jb->H, W = jb->W, W2 = 2 * W;
  for (size_t nc = p0; nc < p1; nc++) {
    for (size_t i = 0; i < H; i++) {
      const float *src = x + (nc * H + i) * W;
      float *d0 = y + (nc * 2 * H + 2 * i) * W2;
      float *d1 = d0 + W2;
      for (size_t j = 0; j < W; j++) {
        float v = src[j];
        d0[2 * j] = v;
        d0[2 * j + 1] = v;
      }
      for (size_t j = 0; j < W2; j++) d1[j] = d0[j];
    }
  }
}

void ms_upsample_nearest2x(float *y, const float *x, size_t N, size_t C, size_t H, size_t W) {
  resample_job j = {y, x, H, W};
  ms__parallel_range(N * C, plane_grain(H, W), upsample_range, &j);
}

void ms_avgpool2x_ref(float *y, const float *x, size_t N, size_t C, size_t H, size_t W) {
  const size_t Ho = H / 2, Wo = W / 2;
  for (size_t nc = 0; nc < N * C; nc++)
    for (size_t i = 0; i < Ho; i++)
      for (size_t j = 0; j < Wo; j++) {
        const float *r0 = x + (nc * H + 2 * i) * W + 2 * j;
        const float *r1 = r0 + W;
        y[(nc * Ho + i) * Wo + j] = ((r0[0] + r0[1]) + (r1[0] + r1[1])) * 0.25f;
      }
}

static void avgpool_range(void *ctx, size_t p0, size_t p1) {
  const resample_job *jb = ctx;
  float *y = jb->y;
  const float *x = jb->x;
  const size_t H = jb->H, W = jb->W, Ho = H / 2, Wo = W / 2;
  for (size_t nc = p0; nc < p1; nc++) {
    for (size_t i = 0; i < Ho; i++) {
      const float *r0 = x + (nc * H + 2 * i) * W;
      const float *r1 = r0 + W;
      float *d = y + (nc * Ho + i) * Wo;
      for (size_t j = 0; j < Wo; j++)
        d[j] = ((r0[2 * j] + r0[2 * j + 1]) + (r1[2 * j] + r1[2 * j + 1])) * 0.25f;
    }
  }
}

void ms_avgpool2x(float *y, const float *x, size_t N, size_t C, size_t H, size_t W) {
  resample_job j = {y, x, H, W};
  ms__parallel_range(N * C, plane_grain(H, W), avgpool_range, &j);
}
