/* Linear layer, PyTorch layout: y[M,out] = x[M,in] * W[out,in]^T + b[out].
 *
 * ms_linear_ref: double accumulator per output, k increasing, bias last.
 * ms_linear: ms_sgemm with op(B) = W^T, then the bias is added (one float
 * add per element), so determinism is ms_sgemm's.
 *
 * Reference: PyTorch torch.nn.functional.linear. */
#include "core/pool.h"
#include "kern_internal.h"

ms_status ms_linear_ref(float *y, const float *x, const float *w, const float *b, size_t M,
                        size_t in, size_t out) {
  if (M == 0 || out == 0) return MS_OK;
  if (!y || (in && (!x || !w))) return MS_ERR_INVALID;
  size_t t;
  if (!ms__mul_ok(M, in, &t) || !ms__mul_ok(M, out, &t) || !ms__mul_ok(out, in, &t))
    return MS_ERR_INVALID;
  for (size_t i = 0; i < M; i++) {
    for (size_t o = 0; o < out; o++) {
      double acc = 0.0;
      for (size_t k = 0; k < in; k++) acc += (double)x[i * in + k] * (double)w[o * in + k];
      if (b) acc += (double)b[o];
      y[i * out + o] = (float)acc;
    }
  }
  return MS_OK;
}

size_t ms_linear_scratch_floats(size_t M, size_t in, size_t out) {
  return ms_sgemm_scratch_floats(M, out, in);
}

typedef struct {
  float *y;
  const float *b;
  size_t out;
} bias_job;

static void bias_range(void *ctx, size_t i0, size_t i1) {
  const bias_job *j = ctx;
  const size_t out = j->out;
  for (size_t i = i0; i < i1; i++)
    for (size_t o = 0; o < out; o++) j->y[i * out + o] += j->b[o];
}

ms_status ms_linear(float *y, const float *x, const float *w, const float *b, size_t M,
                    size_t in, size_t out, float *scratch, size_t scratch_floats) {
  if (M == 0 || out == 0) return MS_OK;
  if (!y || (in && (!x || !w))) return MS_ERR_INVALID;
  ms_status s = ms_sgemm(y, out, x, in ? in : 1, w, in ? in : 1, MS_TRANS_NO, MS_TRANS_YES, M,
                         out, in, 1.0f, 0.0f, scratch, scratch_floats);
  if (s != MS_OK || !b) return s;
  bias_job j = {y, b, out};
  ms__parallel_range(M, (32768 + out - 1) / out, bias_range, &j);
  return MS_OK;
}
