/* Noise schedules and sampler timestep spacing (medsynth/sample.h).
 *
 * linear: beta_t = beta_start + (beta_end - beta_start) * t/(T-1)
 *         (numpy.linspace, so the last beta is exactly beta_end);
 * cosine: f(t) = cos(((t/T + s)/(1 + s)) * pi/2)^2, s = 0.008,
 *         beta_t = min(1 - f(t+1)/f(t), 0.999)  (Nichol & Dhariwal 2021).
 * alpha_bar_t = prod_{k<=t} (1 - beta_k), accumulated in double in
 * increasing t, as numpy.cumprod. */
#include <math.h>
#include "core/alloc.h"
#include "core/names.h"
#include <stdlib.h>
#include <string.h>

#include "medsynth/sample.h"

static const char *const sampler_names[] = {"ddpm", "ddim", "dpmpp"};
MS__NAME_FNS(ms_sampler_name, ms_sampler_from_name, ms_sampler, sampler_names, MS_SAMPLER_COUNT,
             "unknown")

ms_status ms_schedule_init(ms_schedule *s, const ms_schedule_params *p, ms_diag *d) {
  memset(s, 0, sizeof *s);
  if (p->T < 1 || p->T > 1 << 20)
    return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, "/schedule/T", "T = %d out of range", p->T);
  s->alphas_cumprod = ms__malloc((size_t)p->T * sizeof(double));
  if (!s->alphas_cumprod) return ms_diag_add(d, MS_ERR_NOMEM, NULL, 0, 0, NULL, "out of memory");
  s->T = p->T;
  double prod = 1.0;
  for (int t = 0; t < p->T; t++) {
    double beta;
    if (p->type == MS_SCHEDULE_LINEAR) {
      beta = p->T == 1 ? p->beta_start
                       : p->beta_start + (p->beta_end - p->beta_start) * ((double)t / (p->T - 1));
      /* numpy.linspace sets the endpoint exactly. */
      if (t == p->T - 1) beta = p->beta_end;
    } else if (p->type == MS_SCHEDULE_COSINE) {
      const double sft = 0.008, T = p->T;
      double f0 = cos((t / T + sft) / (1 + sft) * M_PI / 2);
      double f1 = cos(((t + 1) / T + sft) / (1 + sft) * M_PI / 2);
      beta = 1 - (f1 * f1) / (f0 * f0);
      if (beta > 0.999) beta = 0.999;
    } else {
      ms_schedule_deinit(s);
      return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, "/schedule/type", "unknown schedule");
    }
    prod *= 1.0 - beta;
    s->alphas_cumprod[t] = prod;
  }
  return MS_OK;
}

void ms_schedule_deinit(ms_schedule *s) {
  if (!s) return;
  free(s->alphas_cumprod);
  memset(s, 0, sizeof *s);
}

ms_status ms_schedule_timesteps(int *out, int T, int S) {
  if (S < 1 || S > T) return MS_ERR_RANGE;
  if (S == 1) {
    out[0] = T - 1;
    return MS_OK;
  }
  for (int i = 0; i < S; i++)
    out[i] = (int)(((int64_t)(S - 1 - i) * (T - 1)) / (S - 1));
  return MS_OK;
}
