/* Diffusion samplers: noise schedules, DDPM, DDIM, DPM-Solver++ 2M, and
 * classifier-free guidance.
 *
 * Usage:
 *   ms_denoiser dn = {.fn = ms_unet_denoise, .ctx = unet,
 *                     .prediction = cfg->prediction, .num_classes = cfg->num_classes,
 *                     .schedule = cfg->schedule, .item_floats = C*H*W};
 *   ms_sample_params p; ms_sample_params_init(&p);
 *   p.sampler = MS_SAMPLER_DDIM; p.steps = 50; p.seed = 42;
 *   float *x = malloc(n * dn.item_floats * sizeof(float));
 *   ms_sample(&p, &dn, x, first_image, classes, n, &diag);   // x = images first_image..+n
 *
 * Samplers see the model only through the denoise callback (model output eps
 * or v for a batch at one timestep) and its context pointer.
 *
 * Determinism: image i's noise is keyed by (seed, stream "images/noise",
 * index, lane) through ms_rng_normal_fill: element pair p of image i uses
 * Philox counter index (i << 32) + p; lane 0 is x_T, lane s+1 the noise of
 * step s. So image i is the same bytes alone, in any batch, at any position
 * and with any thread count (given a denoiser with the same property).
 * Equations and timestep spacing: docs/samplers.md.
 *
 * Ownership: ms_sample allocates its work buffers once per call (not per
 * step) and frees them before returning. ms_schedule_init allocates; free with
 * ms_schedule_deinit. */
#ifndef MEDSYNTH_SAMPLE_H
#define MEDSYNTH_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "medsynth/model.h"
#include "medsynth/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { MS_SAMPLER_DDPM, MS_SAMPLER_DDIM, MS_SAMPLER_DPMPP_2M, MS_SAMPLER_COUNT } ms_sampler;

/* "ddpm", "ddim", "dpmpp" */
const char *ms_sampler_name(ms_sampler s);
ms_sampler ms_sampler_from_name(const char *name); /* MS_SAMPLER_COUNT when unknown */

/* alpha_bar_t for t = 0..T-1, in double. */
typedef struct {
  int T;
  double *alphas_cumprod;
} ms_schedule;

ms_status ms_schedule_init(ms_schedule *s, const ms_schedule_params *p, ms_diag *d);
void ms_schedule_deinit(ms_schedule *s);
/* The sampler timesteps: out[i] = ((S-1-i)*(T-1)) / (S-1) (integer
 * division), out[0] = T-1, out[S-1] = 0; S == 1 gives {T-1}. 1 <= S <= T. */
ms_status ms_schedule_timesteps(int *out, int T, int S);

/* out [n, item]: model output (eps or v) for x [n, item] at timestep t with
 * classes y [n] (NULL for an unconditional model). */
typedef ms_status (*ms_denoise_fn)(void *ctx, float *out, const float *x, int t, const int32_t *y,
                                   int n, ms_diag *d);
/* Fills out [n] with the standard normals of (image, lane). */
typedef ms_status (*ms_noise_fn)(void *ctx, float *out, uint64_t image, uint64_t lane, size_t n);

typedef struct {
  ms_denoise_fn fn;
  void *ctx;
  ms_prediction prediction;
  int num_classes; /* 0: unconditional; class num_classes is the null class */
  ms_schedule_params schedule;
  size_t item_floats; /* C*H*W of one image */
  int max_batch;      /* the most images fn takes at once (0 = any) */
} ms_denoiser;

typedef struct {
  ms_sampler sampler;
  int steps;       /* 1..T; 0 = default (T for DDPM, 50 or T for the others) */
  double eta;      /* DDIM only: 0 deterministic, 1 = DDPM-like variance */
  double guidance; /* classifier-free guidance scale; 1 = none */
  uint64_t seed;
  ms_noise_fn noise; /* NULL: the keyed generator described above */
  void *noise_ctx;
  /* Called after step s (0-based) with the batch's x; may be NULL. */
  void (*on_step)(void *ctx, int step, int steps, const float *x, int n);
  void *step_ctx;
  const ms_cancel_flag *cancel; /* polled before every step; NULL: never */
} ms_sample_params;

void ms_sample_params_init(ms_sample_params *p);

/* The effective step count (resolves steps == 0). */
int ms_sample_steps(const ms_sample_params *p, const ms_denoiser *dn);

/* Checks the parameters against the model: sampler known, steps in 1..T,
 * eta >= 0 (and 0 unless DDIM), guidance finite and > 0, guidance != 1 only
 * for a conditional model, every class in 0..num_classes-1 (y may be NULL
 * for a conditional model only with guidance == 1, meaning the null class).
 * All problems are reported. */
ms_status ms_sample_check(const ms_sample_params *p, const ms_denoiser *dn, const int32_t *y,
                          int n, ms_diag *d);

/* Runs the sampler for images first_image .. first_image+n-1, writing them
 * to x [n, item_floats]. y: [n] classes or NULL. */
ms_status ms_sample(const ms_sample_params *p, const ms_denoiser *dn, float *x,
                    uint64_t first_image, const int32_t *y, int n, ms_diag *d);

/* The default noise: ms_rng_normal_fill(key(seed, "images/noise"),
 * image << 32, lane, out, n). ctx points to the uint64_t seed. */
ms_status ms_sample_keyed_noise(void *ctx, float *out, uint64_t image, uint64_t lane, size_t n);

#ifdef __cplusplus
}
#endif
#endif
