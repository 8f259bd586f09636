/* Exact GELU: y = 0.5 * x * (1 + erf(x / sqrt(2))), PyTorch's default
 * (approximate='none'), not the tanh approximation.
 *
 * ms_gelu_ref evaluates 0.5 * x * erfc(-x / sqrt(2)) in double (equal to the
 * formula above, without its cancellation for x << 0). ms_gelu evaluates
 * the equivalent y = 0.5 * x * erfc(-x / sqrt(2)) with the C library's
 * erfcf (double erfc below x = -3), which stays accurate for negative x
 * where 1 + erf(x/sqrt(2)) cancels (PyTorch's float formula returns 0 below about x = -5.9; we
 * return the tiny true value). Split over threads in fixed chunks
 * (elementwise: any split gives the same bytes). In-place allowed.
 *
 * Reference: Hendrycks & Gimpel, "Gaussian Error Linear Units" (2016);
 * PyTorch torch.nn.functional.gelu. */
#include <math.h>

#include "core/pool.h"
#include "kern_internal.h"

void ms_gelu_ref(float *y, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) {
    double v = (double)x[i];
    y[i] = (float)(0.5 * v * erfc(-v * 0.70710678118654752440));
  }
}

typedef struct {
  float *y;
  const float *x;
} gelu_job;

static void gelu_range(void *ctx, size_t i0, size_t i1) {
  const gelu_job *j = ctx;
  float *y = j->y;
  const float *x = j->x;
  for (size_t i = i0; i < i1; i++) {
    float v = x[i];
    /* Below -3 the float rounding of the erfc argument z is amplified by
     * about 2z^2 in the result; evaluate that (rare) tail in double. */
    if (v < -3.0f)
      y[i] = (float)(0.5 * (double)v * erfc(-(double)v * 0.70710678118654752440));
    else
      y[i] = 0.5f * v * erfcf(-v * 0.70710678118654752440f);
  }
}

void ms_gelu(float *y, const float *x, size_t n) {
  gelu_job j = {y, x};
  ms__parallel_range(n, 16384, gelu_range, &j);
}
