/* Row softmax, numerically stable: y = exp(x - max) / sum(exp(x - max)).
 *
 * _ref: double exp and sum. fast: the vectorised float exp of vexp.c; the
 * row sum uses 16 float lanes (lane l takes elements l, l+16, ...) reduced
 * by a fixed pairwise tree (the same on every ISA path), then
 * y = e * (1/sum). Rows are split over threads; each row's
 * arithmetic is a function of its values and length only, so any thread
 * count gives the same bytes. In-place allowed. A row that is all -inf
 * gives NaN, as in PyTorch.
 *
 * Reference: PyTorch torch.softmax. */
#include <math.h>

#include "core/pool.h"
#include "kern_internal.h"

void ms_softmax_rows_ref(float *y, const float *x, size_t rows, size_t cols) {
  if (cols == 0) return;
  for (size_t r = 0; r < rows; r++) {
    const float *xr = x + r * cols;
    float *yr = y + r * cols;
    double mx = (double)xr[0];
    for (size_t j = 1; j < cols; j++)
      if ((double)xr[j] > mx) mx = (double)xr[j];
    double sum = 0.0;
    for (size_t j = 0; j < cols; j++) sum += exp((double)xr[j] - mx);
    for (size_t j = 0; j < cols; j++) yr[j] = (float)(exp((double)xr[j] - mx) / sum);
  }
}

typedef struct {
  float *y;
  const float *x;
  size_t cols;
} softmax_job;

static void softmax_range(void *ctx, size_t r0, size_t r1) {
  const softmax_job *jb = ctx;
  const size_t cols = jb->cols;
  for (size_t r = r0; r < r1; r++) {
    const float *xr = jb->x + r * cols;
    float *yr = jb->y + r * cols;
    float mx = xr[0];
    for (size_t j = 1; j < cols; j++) mx = xr[j] > mx ? xr[j] : mx;
    const float inv = 1.0f / ms__exp_sub_sum(yr, xr, cols, mx);
    for (size_t j = 0; j < cols; j++) yr[j] *= inv;
  }
}

void ms_softmax_rows(float *y, const float *x, size_t rows, size_t cols) {
  if (cols == 0) return;
  softmax_job j = {y, x, cols};
  ms__parallel_range(rows, (16384 + cols - 1) / cols, softmax_range, &j);
}
