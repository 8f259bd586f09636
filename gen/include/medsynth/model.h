/* Generative models in medsynth's HDF5 model format: loading and checking.
 *
 * Usage:
 *   ms_model *m;
 *   if (ms_model_load(&m, "unet.h5", &diag) != MS_OK) ...;   // every problem in diag
 *   const ms_model_config *c = ms_model_config_of(m);
 *   printf("%s, %zu parameters\n", ms_arch_name(c->arch), ms_model_param_count(m));
 *   ms_model_free(m);
 *
 * File format (docs/model-format.md): root attribute `config` (JSON, the
 * architecture), one float32 dataset per PyTorch state_dict key at the root,
 * and metadata attributes (format_version, weights_xxh64, description,
 * training_data, licence, created_by). The set of tensors, and each one's
 * shape, follow from the config alone; the loader checks presence, shape,
 * dtype and finiteness of every tensor, rejects extra ones, and verifies
 * weights_xxh64 when present. It never prints or aborts: HDF5's error stack
 * printing is off during the load, and every problem goes to the diag with
 * the tensor name (or JSON Pointer into the config) as its location.
 *
 * Memory: all weights live in one arena owned by the model; tensors are named
 * views (name, shape, offset into the arena).
 *
 * Ownership: ms_model_load creates the model, ms_model_free releases it
 * (NULL is a no-op). Pointers returned by the accessors are borrowed from the
 * model and valid until ms_model_free. */
#ifndef MEDSYNTH_MODEL_H
#define MEDSYNTH_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "medsynth/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { MS_ARCH_UNET, MS_ARCH_VAE, MS_ARCH_COUNT } ms_arch;
typedef enum { MS_SCHEDULE_LINEAR, MS_SCHEDULE_COSINE, MS_SCHEDULE_COUNT } ms_schedule_type;
typedef enum { MS_PRED_EPS, MS_PRED_V, MS_PRED_COUNT } ms_prediction;
typedef enum { MS_DOWNSAMPLE_CONV, MS_DOWNSAMPLE_AVGPOOL, MS_DOWNSAMPLE_COUNT } ms_downsample;

const char *ms_arch_name(ms_arch a);
ms_arch ms_arch_from_name(const char *name); /* MS_ARCH_COUNT when unknown */
const char *ms_schedule_type_name(ms_schedule_type t);
ms_schedule_type ms_schedule_type_from_name(const char *name);
const char *ms_prediction_name(ms_prediction p);
ms_prediction ms_prediction_from_name(const char *name);
const char *ms_downsample_name(ms_downsample k);
ms_downsample ms_downsample_from_name(const char *name);

#define MS_MODEL_MAX_LEVELS 8

typedef struct {
  ms_schedule_type type;
  int T;             /* number of diffusion steps, >= 1 */
  double beta_start; /* linear only */
  double beta_end;   /* linear only */
} ms_schedule_params;

/* The architecture config (the JSON `config` attribute, parsed). */
typedef struct {
  ms_arch arch;
  int image_size;     /* H = W; divisible by 2^(n_levels-1) */
  int image_channels; /* C of the image */
  int n_levels;
  int channels[MS_MODEL_MAX_LEVELS];
  int blocks_per_level;
  int n_attention;
  int attention_resolutions[MS_MODEL_MAX_LEVELS]; /* UNet: spatial sizes with attention */
  int heads;
  int groups;     /* GroupNorm groups; divides every normalised channel count */
  float norm_eps;
  ms_downsample downsample; /* UNet */
  int num_classes;          /* UNet: 0 = unconditional; class num_classes is the null class.
                               VAE: classes of the learned latent prior (0 = one, unconditional) */
  ms_prediction prediction; /* UNet */
  ms_schedule_params schedule; /* UNet */
  int latent_channels;      /* VAE */
  int has_latent_prior;     /* VAE: 1 = learned Gaussian prior (prior.* tensors), 0 = N(0, I) */
  int prior_rank;           /* VAE: low-rank directions per class of the learned prior */
  /* Intensity mapping: physical value = model value * scale + offset, in unit. */
  double intensity_scale;
  double intensity_offset;
  char intensity_unit[32];
} ms_model_config;

/* Parses and checks a config (JSON text). Problems are reported with JSON
 * Pointers ("/channels/1") as locations; `file` names the source in them. */
ms_status ms_model_config_parse(ms_model_config *out, const char *json, const char *file,
                                ms_diag *d);

/* One tensor: a named view into the model's weight arena. */
typedef struct {
  const char *name;
  int rank;
  int64_t shape[4];
  size_t count;  /* number of floats */
  size_t offset; /* into the arena, in floats */
} ms_tensor;

typedef struct ms_model ms_model;

ms_status ms_model_load(ms_model **out, const char *path, ms_diag *d);
void ms_model_free(ms_model *m);

const ms_model_config *ms_model_config_of(const ms_model *m);
/* The config attribute's JSON text, as stored. */
const char *ms_model_config_json(const ms_model *m);
/* A root string attribute (description, training_data, licence, created_by,
 * weights_xxh64) or NULL when absent. */
const char *ms_model_attr(const ms_model *m, const char *name);
/* xxh64 of the loaded weights as defined in docs/model-format.md (always
 * computed; equals the weights_xxh64 attribute whenever that is present). */
uint64_t ms_model_weights_xxh64(const ms_model *m);
size_t ms_model_param_count(const ms_model *m);
size_t ms_model_tensor_count(const ms_model *m);
/* Tensors in the order the architecture defines them. */
const ms_tensor *ms_model_tensor_at(const ms_model *m, size_t i);
/* By state_dict name; NULL when absent. */
const ms_tensor *ms_model_find(const ms_model *m, const char *name);
/* The float data of a tensor of this model. */
const float *ms_model_data(const ms_model *m, const ms_tensor *t);

/* The expected tensors of an architecture, in definition order: calls
 * fn(ctx, name, rank, shape) for each. Returns MS_ERR_INVALID for an
 * inconsistent config (checked by ms_model_config_parse already). */
typedef void (*ms_model_tensor_fn)(void *ctx, const char *name, int rank, const int64_t *shape);
ms_status ms_model_expected_tensors(const ms_model_config *c, ms_model_tensor_fn fn, void *ctx);

/* Computes the weights hash of named float tensors (see docs/model-format.md):
 * XXH64, seed 0, over the tensors in byte-wise sorted name order; for each:
 * the name, one 0 byte, the rank as uint32 LE, each dimension as uint64 LE,
 * then the float32 LE data. */
uint64_t ms_model_hash_tensors(const ms_tensor *const *sorted, size_t n, const float *arena);

#ifdef __cplusplus
}
#endif
#endif
