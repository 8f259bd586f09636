/* GroupNorm (optionally followed by SiLU) over NCHW tensors.
 *
 * For batch item n and group g the C/G channels of the group are contiguous
 * in NCHW, so the group is one run of L = (C/G)*HW floats. Statistics:
 * mean, then the biased variance of the centred values (two passes), then
 *   y = (x - mean) * scale[c] + beta[c],  scale = gamma[c] / sqrt(var + eps).
 * (Subtracting the mean first avoids the cancellation of the equivalent
 * x*scale + (beta - mean*scale) when |mean| >> sd.)
 *
 * _ref: double accumulators, y computed in double.
 * fast: each pass sums the run in blocks of MS_GN_BLOCK floats; inside a
 * block 16 float lanes (lane l takes elements l, l+16, ...) are reduced by a
 * fixed pairwise tree and the block total is added to a double. The order is
 * a function of L only; threads split (n, g) pairs, so any thread count
 * gives the same bytes. The _silu variant applies ms_silu's function
 * (vectorised exp of vexp.c) to each normalised channel.
 *
 * Reference: Wu & He, "Group Normalization", ECCV 2018; PyTorch
 * torch.nn.functional.group_norm (biased variance, eps inside the sqrt). */
#include <math.h>

#include "core/pool.h"
#include "kern_internal.h"

#define MS_GN_BLOCK 256

static ms_status gn_check(float *y, const float *x, size_t N, size_t C, size_t HW, size_t G,
                          float eps) {
  if (N == 0 || C == 0 || HW == 0) return MS_OK;
  if (!y || !x || G == 0 || C % G != 0 || !(eps >= 0.0f)) return MS_ERR_INVALID;
  size_t t;
  if (!ms__mul_ok(N, C, &t) || !ms__mul_ok(t, HW, &t)) return MS_ERR_INVALID;
  return MS_OK;
}

static ms_status gn_ref(float *y, const float *x, const float *gamma, const float *beta,
                        size_t N, size_t C, size_t HW, size_t G, float eps, int silu) {
  ms_status s = gn_check(y, x, N, C, HW, G, eps);
  if (s != MS_OK || N == 0 || C == 0 || HW == 0) return s;
  const size_t cpg = C / G, L = cpg * HW;
  for (size_t n = 0; n < N; n++) {
    for (size_t g = 0; g < G; g++) {
      const float *xs = x + (n * C + g * cpg) * HW;
      float *ys = y + (n * C + g * cpg) * HW;
      double sum = 0.0;
      for (size_t i = 0; i < L; i++) sum += (double)xs[i];
      const double mean = sum / (double)L;
      double ss = 0.0;
      for (size_t i = 0; i < L; i++) {
        double d = (double)xs[i] - mean;
        ss += d * d;
      }
      const double inv = 1.0 / sqrt(ss / (double)L + (double)eps);
      for (size_t c = 0; c < cpg; c++) {
        const size_t ch = g * cpg + c;
        const double ga = gamma ? (double)gamma[ch] : 1.0, be = beta ? (double)beta[ch] : 0.0;
        for (size_t i = 0; i < HW; i++) {
          double v = ((double)xs[c * HW + i] - mean) * inv * ga + be;
          if (silu) v = v / (1.0 + exp(-v));
          ys[c * HW + i] = (float)v;
        }
      }
    }
  }
  return MS_OK;
}

/* Sum of f(x[i]) over a run, in the fixed blocked order described above;
 * f is identity (centre == NULL) or the squared deviation from *centre. */
static double gn_sum(const float *xs, size_t L, const float *centre) {
  double total = 0.0;
  const float m = centre ? *centre : 0.0f;
  for (size_t b0 = 0; b0 < L; b0 += MS_GN_BLOCK) {
    size_t len = L - b0 < MS_GN_BLOCK ? L - b0 : MS_GN_BLOCK;
    float lane[16] = {0};
    const float *p = xs + b0;
    size_t i = 0;
    if (centre) {
      for (; i + 16 <= len; i += 16)
        for (int l = 0; l < 16; l++) {
          float d = p[i + l] - m;
          lane[l] += d * d;
        }
      for (; i < len; i++) {
        float d = p[i] - m;
        lane[i & 15] += d * d;
      }
    } else {
      for (; i + 16 <= len; i += 16)
        for (int l = 0; l < 16; l++) lane[l] += p[i + l];
      for (; i < len; i++) lane[i & 15] += p[i];
    }
    for (int w = 8; w >= 1; w /= 2)
      for (int l = 0; l < w; l++) lane[l] += lane[l + w];
    total += (double)lane[0];
  }
  return total;
}

typedef struct {
  float *y;
  const float *x, *gamma, *beta;
  size_t C, HW, G;
  float eps;
  int silu;
} gn_job;

/* Groups [q0, q1) of the N*G (item, group) pairs. */
static void gn_range(void *ctx, size_t q0, size_t q1) {
  const gn_job *j = ctx;
  float *y = j->y;
  const float *x = j->x, *gamma = j->gamma, *beta = j->beta;
  const size_t C = j->C, HW = j->HW, G = j->G, cpg = C / G, L = cpg * HW;
  const float eps = j->eps;
  const int silu = j->silu;
  for (size_t ng = q0; ng < q1; ng++) {
    const size_t n = ng / G, g = ng % G;
    const float *xs = x + (n * C + g * cpg) * HW;
    float *ys = y + (n * C + g * cpg) * HW;
    const float mean = (float)(gn_sum(xs, L, NULL) / (double)L);
    const double var = gn_sum(xs, L, &mean) / (double)L;
    const float inv = (float)(1.0 / sqrt(var + (double)eps));
    for (size_t c = 0; c < cpg; c++) {
      const size_t ch = g * cpg + c;
      const float scale = inv * (gamma ? gamma[ch] : 1.0f);
      const float shift = beta ? beta[ch] : 0.0f;
      const float *xc = xs + c * HW;
      float *yc = ys + c * HW;
#pragma omp simd
      for (size_t i = 0; i < HW; i++) yc[i] = (xc[i] - mean) * scale + shift;
      if (silu) ms__silu_array(yc, yc, HW);
    }
  }
}

static ms_status gn_fast(float *y, const float *x, const float *gamma, const float *beta,
                         size_t N, size_t C, size_t HW, size_t G, float eps, int silu) {
  ms_status s = gn_check(y, x, N, C, HW, G, eps);
  if (s != MS_OK || N == 0 || C == 0 || HW == 0) return s;
  const size_t L = C / G * HW;
  gn_job j = {y, x, gamma, beta, C, HW, G, eps, silu};
  /* groups per piece: at least 16384 floats */
  ms__parallel_range(N * G, (16384 + L - 1) / L, gn_range, &j);
  return MS_OK;
}

ms_status ms_group_norm_ref(float *y, const float *x, const float *gamma, const float *beta,
                            size_t N, size_t C, size_t HW, size_t G, float eps) {
  return gn_ref(y, x, gamma, beta, N, C, HW, G, eps, 0);
}
ms_status ms_group_norm(float *y, const float *x, const float *gamma, const float *beta,
                        size_t N, size_t C, size_t HW, size_t G, float eps) {
  return gn_fast(y, x, gamma, beta, N, C, HW, G, eps, 0);
}
ms_status ms_group_norm_silu_ref(float *y, const float *x, const float *gamma,
                                 const float *beta, size_t N, size_t C, size_t HW, size_t G,
                                 float eps) {
  return gn_ref(y, x, gamma, beta, N, C, HW, G, eps, 1);
}
ms_status ms_group_norm_silu(float *y, const float *x, const float *gamma, const float *beta,
                             size_t N, size_t C, size_t HW, size_t G, float eps) {
  return gn_fast(y, x, gamma, beta, N, C, HW, G, eps, 1);
}
