/* SiLU (swish): y = x * sigmoid(x) = x / (1 + exp(-x)).
 *
 * ms_silu_ref evaluates in double. ms_silu evaluates in float with expf,
 * split over threads in fixed chunks (elementwise, so any split gives the
 * same bytes). For x < -88, expf(-x) overflows to +inf and y = -0 (the
 * limit); the reference then gives a denormal-or-zero value of the same
 * magnitude bound. In-place allowed.
 *
 * Reference: PyTorch torch.nn.functional.silu. */
#include <math.h>

#include "kern_internal.h"

void ms_silu_ref(float *y, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) {
    double v = (double)x[i];
    y[i] = (float)(v / (1.0 + exp(-v)));
  }
}

void ms_silu(float *y, const float *x, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (size_t i = 0; i < n; i++) {
    float v = x[i];
    y[i] = v / (1.0f + expf(-v));
  }
}
