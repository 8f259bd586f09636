/* Exact GELU: y = 0.5 * x * (1 + erf(x / sqrt(2))), PyTorch's default
 * (approximate='none'), not the tanh approximation.
 *
 * ms_gelu_ref evaluates in double with erf. ms_gelu evaluates in float with
 * erff (C library, correctly rounded to within 1-2 ulp), split over threads
 * in fixed chunks (elementwise: any split gives the same bytes). In-place
 * allowed.
 *
 * Reference: Hendrycks & Gimpel, "Gaussian Error Linear Units" (2016);
 * PyTorch torch.nn.functional.gelu. */
#include <math.h>

#include "kern_internal.h"

void ms_gelu_ref(float *y, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) {
    double v = (double)x[i];
    y[i] = (float)(0.5 * v * (1.0 + erf(v * 0.70710678118654752440)));
  }
}

void ms_gelu(float *y, const float *x, size_t n) {
#pragma omp parallel for schedule(static) if (n > 32768)
  for (size_t i = 0; i < n; i++) {
    float v = x[i];
    y[i] = 0.5f * v * (1.0f + erff(v * 0.70710678118654752440f));
  }
}
