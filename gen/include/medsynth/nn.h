/* Forward passes of the generative models: diffusion UNet and VAE.
 *
 * Usage:
 *   ms_unet *u;
 *   ms_unet_new(&u, model, 16, &diag);            // plans all memory for batches <= 16
 *   ms_unet_forward(u, eps, x_t, t, NULL, n, &diag);   // n <= 16 images
 *   ms_unet_free(u);
 *
 *   ms_vae *v;
 *   ms_vae_new(&v, model, 4, &diag);
 *   ms_vae_decode(v, image, z, n, &diag);
 *
 * The architectures are those of models/reference/medsynth_ref.py (UNet,
 * VAE); docs/model-format.md lists them. Every activation and kernel scratch
 * buffer is sized once in _new by walking the network in planning mode; a
 * forward pass allocates nothing. Threads: the kernels split work over the
 * library's worker threads (omp_get_max_threads() of them,
 * medsynth/parallel.h); every image's output is the same bytes for
 * any batch size and thread count, because each kernel's per-element order
 * depends on the layer shape only (see medsynth/kernels.h).
 *
 * Tracing: a trace callback, when set, receives the output of every named
 * module (the PyTorch module path, e.g. "down.1.attn.0.qkv") as it is
 * computed; the parity tests compare these with PyTorch forward hooks.
 *
 * Ownership: _new creates, _free releases (NULL is a no-op). The model is
 * borrowed and must outlive the network object. A network object is used by
 * one thread at a time. */
#ifndef MEDSYNTH_NN_H
#define MEDSYNTH_NN_H

#include <stddef.h>
#include <stdint.h>

#include "medsynth/model.h"
#include "medsynth/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* data: [shape[0], shape[1], ...], rank 2 or 4, borrowed for the call. */
typedef void (*ms_nn_trace_fn)(void *ctx, const char *name, const float *data, int rank,
                               const size_t *shape);

typedef struct ms_unet ms_unet;

ms_status ms_unet_new(ms_unet **out, const ms_model *m, int max_batch, ms_diag *d);
void ms_unet_free(ms_unet *u);
void ms_unet_set_trace(ms_unet *u, ms_nn_trace_fn fn, void *ctx);
/* Bytes of activation and scratch memory planned by ms_unet_new. */
size_t ms_unet_memory_bytes(const ms_unet *u);
int ms_unet_max_batch(const ms_unet *u);

/* out, x: [n, C, S, S]; t: [n] timesteps (as float); y: [n] class indices in
 * 0..num_classes (num_classes = the null class), or NULL for an
 * unconditional model (for a conditional one NULL means the null class).
 * 1 <= n <= max_batch. */
ms_status ms_unet_forward(ms_unet *u, float *out, const float *x, const float *t,
                          const int32_t *y, int n, ms_diag *d);

/* The samplers' denoise callback (medsynth/sample.h ms_denoise_fn) for a
 * UNet: ctx is the ms_unet. */
ms_status ms_unet_denoise(void *ctx, float *out, const float *x, int t, const int32_t *y, int n,
                          ms_diag *d);

typedef struct ms_vae ms_vae;

ms_status ms_vae_new(ms_vae **out, const ms_model *m, int max_batch, ms_diag *d);
void ms_vae_free(ms_vae *v);
void ms_vae_set_trace(ms_vae *v, ms_nn_trace_fn fn, void *ctx);
size_t ms_vae_memory_bytes(const ms_vae *v);
/* Latent spatial size: image_size / 2^(levels-1). */
int ms_vae_latent_size(const ms_vae *v);
/* mean, logvar: [n, C_z, s, s]; x: [n, C, S, S]. */
ms_status ms_vae_encode(ms_vae *v, float *mean, float *logvar, const float *x, int n, ms_diag *d);
/* out: [n, C, S, S]; z: [n, C_z, s, s]. */
ms_status ms_vae_decode(ms_vae *v, float *out, const float *z, int n, ms_diag *d);
/* Floats in one latent: C_z * s * s. */
size_t ms_vae_latent_floats(const ms_vae *v);
/* Standard-normal numbers needed for one prior latent: latent_floats, plus
 * the prior's rank when the model has a learned latent prior. */
size_t ms_vae_prior_noise_floats(const ms_vae *v);
/* One latent from the model's prior: z = e (N(0, I)) without a learned prior,
 * else z = mean[y] + sum_r e[r] factor[y][r] + std[y] * e[R:] (docs/model-
 * format.md). e has ms_vae_prior_noise_floats numbers; y is the class
 * (0..num_classes-1; 0 for an unconditional model). */
ms_status ms_vae_prior_latent(const ms_vae *v, float *z, const float *e, int32_t y, ms_diag *d);
/* Samples images first .. first+n-1 (1 <= n <= max_batch) into out [n, C, S,
 * S]: image i decodes the prior latent of the keyed standard-normal noise
 * ms_sample_keyed_noise(seed, image i, lane 0) for class y[i] (y NULL: class
 * 0). Image i depends only on (model, seed, i, y[i]), never on n or first. */
ms_status ms_vae_sample(ms_vae *v, float *out, uint64_t seed, uint64_t first, const int32_t *y,
                        int n, ms_diag *d);

#ifdef __cplusplus
}
#endif
#endif
