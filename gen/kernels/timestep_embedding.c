/* Sinusoidal timestep embedding, [cos | sin] halves (guided-diffusion
 * `timestep_embedding`, diffusers get_timestep_embedding with
 * flip_sin_to_cos=True and downscale_freq_shift=0).
 *
 * Both variants form freq and arg in float32 exactly as PyTorch does
 * (exp(-ln(P) * arange(half) / half) * t), so the arguments agree bit for
 * bit; _ref takes cos/sin in double and rounds, the fast variant uses
 * cosf/sinf. The difference is then at most 1-2 ulp of the result.
 *
 * Reference: Vaswani et al. (2017) sec. 3.5; Ho et al., DDPM (2020). */
#include <math.h>

#include "kern_internal.h"

static inline float ts_freq(size_t i, size_t half, float max_period) {
  const float neg_log = (float)(-log((double)max_period));
  return expf((neg_log * (float)i) / (float)half);
}

/* ref != 0: cos and sin in double, rounded; else cosf and sinf. */
static ms_status ts_embed(float *y, const float *t, size_t N, size_t dim, float max_period,
                          int ref) {
  if (dim < 2 || !(max_period > 0.0f)) return MS_ERR_INVALID;
  size_t tot;
  if (!ms__mul_ok(N, dim, &tot)) return MS_ERR_INVALID;
  if (N && (!y || !t)) return MS_ERR_INVALID;
  const size_t half = dim / 2;
  for (size_t n = 0; n < N; n++) {
    for (size_t i = 0; i < half; i++) {
      float arg = t[n] * ts_freq(i, half, max_period);
      y[n * dim + i] = ref ? (float)cos((double)arg) : cosf(arg);
      y[n * dim + half + i] = ref ? (float)sin((double)arg) : sinf(arg);
    }
    if (dim & 1) y[n * dim + dim - 1] = 0.0f;
  }
  return MS_OK;
}

ms_status ms_timestep_embedding_ref(float *y, const float *t, size_t N, size_t dim,
                                    float max_period) {
  return ts_embed(y, t, N, dim, max_period, 1);
}

ms_status ms_timestep_embedding(float *y, const float *t, size_t N, size_t dim,
                                float max_period) {
  return ts_embed(y, t, N, dim, max_period, 0);
}
