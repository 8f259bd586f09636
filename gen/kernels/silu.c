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

#include "kern_internal.h"

void ms_silu_ref(float *y, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) {
    double v = (double)x[i];
    y[i] = (float)(v / (1.0 + exp(-v)));
  }
}

void ms_silu(float *y, const float *x, size_t n) { ms__parallel_array(y, x, n, ms__silu_array); }
