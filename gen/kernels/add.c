/* Elementwise add (y = a + b) and per-channel broadcast add
 * (y[n,c,:] = x[n,c,:] + b[n,c]). One float add per element in both
 * variants, so _ref and fast agree exactly. In-place allowed.
 *
 * Reference: PyTorch broadcasting semantics (h + emb[:, :, None, None]). */
#include "kern_internal.h"

void ms_add_ref(float *y, const float *a, const float *b, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void ms_add(float *y, const float *a, const float *b, size_t n) {
#pragma omp parallel for simd schedule(static) if (n > 262144)
  for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void ms_add_channel_ref(float *y, const float *x, const float *b, size_t N, size_t C, size_t HW) {
  for (size_t n = 0; n < N; n++)
    for (size_t c = 0; c < C; c++)
      for (size_t i = 0; i < HW; i++) y[(n * C + c) * HW + i] = x[(n * C + c) * HW + i] + b[n * C + c];
}

void ms_add_channel(float *y, const float *x, const float *b, size_t N, size_t C, size_t HW) {
  size_t NC = N * C;
#pragma omp parallel for schedule(static) if (NC * HW > 262144)
  for (size_t nc = 0; nc < NC; nc++) {
    const float bv = b[nc];
    const float *xs = x + nc * HW;
    float *ys = y + nc * HW;
#pragma omp simd
    for (size_t i = 0; i < HW; i++) ys[i] = xs[i] + bv;
  }
}
