/* SiLU (swish): y = x * sigmoid(x) = x / (1 + exp(-x)).
 *
 * ms_silu_ref evaluates in double. ms_silu evaluates x / (1 + exp(-x)) in
 * float with the vectorised exp of vexp.c (same bytes on every ISA path
 * and element position), split over threads in fixed chunks (elementwise,
 * so any split gives the same bytes). For x < -88.7, exp(-x) overflows to
 * +inf and y = -0 (the limit); the reference then gives a tiny value of
 * magnitude below 1e-36. In-place allowed.
 *
 * Reference: PyTorch torch.nn.functional.silu. */
#include <math.h>

#include "core/pool.h"
#include "kern_internal.h"

void ms_silu_ref(float *y, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) {
    double v = (double)x[i];
    y[i] = (float)(v / (1.0 + exp(-v)));
  }
}

#define SILU_CHUNK 4096

typedef struct {
  float *y;
  const float *x;
  size_t n;
} silu_job;

/* Chunks [c0, c1) of SILU_CHUNK floats. */
static void silu_range(void *ctx, size_t c0, size_t c1) {
  const silu_job *j = ctx;
  for (size_t c = c0; c < c1; c++) {
    const size_t i0 = c * SILU_CHUNK;
    ms__silu_array(j->y + i0, j->x + i0, j->n - i0 < SILU_CHUNK ? j->n - i0 : SILU_CHUNK);
  }
}

void ms_silu(float *y, const float *x, size_t n) {
  silu_job j = {y, x, n};
  ms__parallel_range((n + SILU_CHUNK - 1) / SILU_CHUNK, 8, silu_range, &j);
}
