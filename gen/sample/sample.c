/* Sampler driver (medsynth/sample.h): parameter checks, noise, classifier-
 * free guidance, and the step loop shared by DDPM, DDIM and DPM-Solver++.
 *
 * Invariants: every random number comes from the noise callback keyed by
 * (image index, lane); nothing depends on the batch composition. Work
 * buffers are allocated once per call. Guidance evaluates the model twice
 * per step (class, then null class) and combines out = u + g (c - u). */
#include <math.h>
#include "core/alloc.h"
#include <stdlib.h>
#include <string.h>

#include "medsynth/rng.h"
#include "sample/sample_private.h"

void ms_sample_params_init(ms_sample_params *p) {
  memset(p, 0, sizeof *p);
  p->sampler = MS_SAMPLER_DDIM;
  p->guidance = 1.0;
}

int ms_sample_steps(const ms_sample_params *p, const ms_denoiser *dn) {
  if (p->steps) return p->steps;
  int T = dn->schedule.T;
  if (p->sampler == MS_SAMPLER_DDPM) return T;
  return T < 50 ? T : 50;
}

ms_status ms_sample_keyed_noise(void *ctx, float *out, uint64_t image, uint64_t lane, size_t n) {
  uint64_t seed = *(const uint64_t *)ctx;
  if (n / 2 >= ((uint64_t)1 << 32)) return MS_ERR_RANGE;
  ms_rng_key k = ms_rng_key_make(seed, ms_rng_stream("images/noise"));
  ms_rng_normal_fill(k, image << 32, lane, out, n);
  return MS_OK;
}

ms_status ms_sample_check(const ms_sample_params *p, const ms_denoiser *dn, const int32_t *y,
                          int n, ms_diag *d) {
  int bad = 0;
  if ((unsigned)p->sampler >= MS_SAMPLER_COUNT) {
    bad = 1;
    ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, "sampler", "unknown sampler (expected ddpm, ddim or dpmpp)");
  }
  int T = dn->schedule.T;
  int S = ms_sample_steps(p, dn);
  if (S < 1 || S > T) {
    bad = 1;
    ms_diag_add(d, MS_ERR_RANGE, NULL, 0, 0, "steps",
                "%d steps requested but the model's schedule has T = %d (need 1..%d)", S, T, T);
  }
  if (!(p->eta >= 0) || !isfinite(p->eta)) {
    bad = 1;
    ms_diag_add(d, MS_ERR_RANGE, NULL, 0, 0, "eta", "eta must be a finite number >= 0");
  } else if (p->eta != 0 && p->sampler != MS_SAMPLER_DDIM) {
    bad = 1;
    ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, "eta", "eta applies to the ddim sampler only");
  }
  if (!isfinite(p->guidance) || !(p->guidance > 0)) {
    bad = 1;
    ms_diag_add(d, MS_ERR_RANGE, NULL, 0, 0, "guidance", "guidance scale must be finite and > 0");
  } else if (p->guidance != 1.0 && dn->num_classes == 0) {
    bad = 1;
    ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, "guidance",
                "classifier-free guidance (scale %g) needs a class-conditional model; this model "
                "is unconditional",
                p->guidance);
  }
  if (n < 1) {
    bad = 1;
    ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, NULL, "number of images must be >= 1 (got %d)", n);
  }
  if (y && dn->num_classes == 0) {
    bad = 1;
    ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, "class",
                "a class was given but the model is unconditional");
  } else if (y) {
    for (int i = 0; i < n; i++)
      if (y[i] < 0 || y[i] >= dn->num_classes) {
        bad = 1;
        ms_diag_add(d, MS_ERR_RANGE, NULL, 0, 0, "class",
                    "class %d out of range: the model has %d classes (0..%d)", (int)y[i],
                    dn->num_classes, dn->num_classes - 1);
        break;
      }
  } else if (dn->num_classes && p->guidance != 1.0) {
    bad = 1;
    ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, "class", "guidance needs a class for every image");
  }
  if (dn->item_floats == 0 || dn->item_floats / 2 >= ((size_t)1 << 32)) {
    bad = 1;
    ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, NULL, "image size out of range");
  }
  return bad ? (ms_diag_status(d) != MS_OK ? ms_diag_status(d) : MS_ERR_INVALID) : MS_OK;
}

ms_status ms_sample(const ms_sample_params *p, const ms_denoiser *dn, float *x,
                    uint64_t first_image, const int32_t *y, int n, ms_diag *d) {
  ms_status st = ms_sample_check(p, dn, y, n, d);
  if (st != MS_OK) return st;
  if (dn->max_batch && n > dn->max_batch)
    return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, NULL,
                       "batch of %d images exceeds the denoiser's %d", n, dn->max_batch);
  ms_schedule sch;
  if ((st = ms_schedule_init(&sch, &dn->schedule, d)) != MS_OK) return st;
  int S = ms_sample_steps(p, dn);
  size_t item = dn->item_floats, tot = item * (size_t)n;
  int guided = dn->num_classes && p->guidance != 1.0;
  int *ts = ms__malloc((size_t)S * sizeof *ts);
  float *out = ms__malloc(tot * sizeof(float));
  float *unc = guided ? ms__malloc(tot * sizeof(float)) : NULL;
  float *noise = ms__malloc(tot * sizeof(float));
  float *x0p = p->sampler == MS_SAMPLER_DPMPP_2M ? ms__malloc(tot * sizeof(float)) : NULL;
  int32_t *ynull = dn->num_classes ? ms__malloc((size_t)n * sizeof *ynull) : NULL;
  if (!ts || !out || !noise || (guided && !unc) || (p->sampler == MS_SAMPLER_DPMPP_2M && !x0p) ||
      (dn->num_classes && !ynull)) {
    st = ms_diag_add(d, MS_ERR_NOMEM, NULL, 0, 0, NULL, "out of memory for the sampler");
    goto done;
  }
  ms_schedule_timesteps(ts, sch.T, S);
  uint64_t seed = p->seed;
  ms_noise_fn noise_fn = p->noise ? p->noise : ms_sample_keyed_noise;
  void *noise_ctx = p->noise ? p->noise_ctx : &seed;
  for (int j = 0; j < n; j++) {
    if (ynull) ynull[j] = dn->num_classes;
    if ((st = noise_fn(noise_ctx, x + (size_t)j * item, first_image + (uint64_t)j, 0, item)) != MS_OK) {
      ms_diag_add(d, st, NULL, 0, 0, NULL, "noise source failed for image %llu",
                  (unsigned long long)(first_image + (uint64_t)j));
      goto done;
    }
  }
  const int32_t *ycond = y ? y : ynull;
  double h_prev = 0;
  for (int i = 0; i < S; i++) {
    if (p->cancel && *p->cancel) {
      st = ms_diag_add(d, MS_ERR_CANCELLED, NULL, 0, 0, NULL, "sampling cancelled");
      goto done;
    }
    int t = ts[i];
    double a_t = sch.alphas_cumprod[t];
    double a_p = i + 1 < S ? sch.alphas_cumprod[ts[i + 1]] : 1.0;
    if ((st = dn->fn(dn->ctx, out, x, t, ycond, n, d)) != MS_OK) goto done;
    if (guided) {
      if ((st = dn->fn(dn->ctx, unc, x, t, ynull, n, d)) != MS_OK) goto done;
      float g = (float)p->guidance;
      for (size_t k = 0; k < tot; k++) out[k] = unc[k] + g * (out[k] - unc[k]);
    }
    int needs_noise = (p->sampler == MS_SAMPLER_DDIM && ms__ddim_sigma(a_t, a_p, p->eta) > 0) ||
                      (p->sampler == MS_SAMPLER_DDPM && a_p < 1.0);
    if (needs_noise)
      for (int j = 0; j < n; j++)
        if ((st = noise_fn(noise_ctx, noise + (size_t)j * item, first_image + (uint64_t)j,
                           (uint64_t)i + 1, item)) != MS_OK) {
          ms_diag_add(d, st, NULL, 0, 0, NULL, "noise source failed");
          goto done;
        }
    switch (p->sampler) {
      case MS_SAMPLER_DDIM:
        ms__ddim_step(x, out, noise, tot, dn->prediction, a_t, a_p, p->eta);
        break;
      case MS_SAMPLER_DDPM:
        ms__ddpm_step(x, out, noise, tot, dn->prediction, a_t, a_p);
        break;
      default:
        ms__dpmpp_step(x, x0p, out, tot, dn->prediction, a_t, a_p, i == 0, &h_prev);
        break;
    }
    if (p->on_step) p->on_step(p->step_ctx, i, S, x, n);
  }
done:
  free(ts);
  free(out);
  free(unc);
  free(noise);
  free(x0p);
  free(ynull);
  ms_schedule_deinit(&sch);
  return st;
}
