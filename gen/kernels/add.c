/* Elementwise add (y = a + b) and per-channel broadcast add
 * (y[n,c,:] = x[n,c,:] + b[n,c]). One float add per element in both
 * variants, so _ref and fast agree exactly. In-place allowed.
 *
 * Reference: PyTorch broadcasting semantics (h + emb[:, :, None, None]). */
#include "core/pool.h"
#include "kern_internal.h"

void ms_add_ref(float *y, const float *a, const float *b, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

typedef struct {
  float *y;
  const float *a, *b;
  size_t HW;
} add_job;

static void add_range(void *ctx, size_t i0, size_t i1) {
  const add_job *j = ctx;
  float *y = j->y;
  const float *a = j->a, *b = j->b;
#pragma omp simd
  for (size_t i = i0; i < i1; i++) y[i] = a[i] + b[i];
}

void ms_add(float *y, const float *a, const float *b, size_t n) {
  add_job j = {y, a, b, 0};
  ms__parallel_range(n, 131072, add_range, &j);
}

void ms_add_channel_ref(float *y, const float *x, const float *b, size_t N, size_t C, size_t HW) {
  for (size_t n = 0; n < N; n++)
    for (size_t c = 0; c < C; c++)
      for (size_t i = 0; i < HW; i++) y[(n * C + c) * HW + i] = x[(n * C + c) * HW + i] + b[n * C + c];
}

/* Planes [p0, p1) (a = x, b = the per-plane values). */
static void add_channel_range(void *ctx, size_t p0, size_t p1) {
  const add_job *j = ctx;
  const size_t HW = j->HW;
  for (size_t nc = p0; nc < p1; nc++) {
    const float bv = j->b[nc];
    const float *xs = j->a + nc * HW;
    float *ys = j->y + nc * HW;
#pragma omp simd
    for (size_t i = 0; i < HW; i++) ys[i] = xs[i] + bv;
  }
}

void ms_add_channel(float *y, const float *x, const float *b, size_t N, size_t C, size_t HW) {
  add_job j = {y, x, b, HW};
  const size_t NC = N * C;
  /* planes per piece: at least 131072 floats */
  const size_t grain = HW ? (131072 + HW - 1) / HW : NC;
  ms__parallel_range(NC, grain, add_channel_range, &j);
}
