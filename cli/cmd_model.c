/* medsynth model inspect M.h5: architecture, parameter count, config and
 * metadata of a model in the medsynth HDF5 model format. The model is fully
 * loaded and checked (docs/model-format.md), so a model that inspects
 * cleanly also loads for sampling. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "medsynth/model.h"
#include "medsynth/nn.h"

static const char *k_usage =
    "usage: medsynth model inspect MODEL.h5 [--tensors]\n"
    "  Prints architecture, parameter count, config, metadata and the weights\n"
    "  hash after checking every tensor. --tensors lists each tensor's shape.\n";

static int inspect(const char *path, int tensors) {
  ms_diag d;
  ms_diag_init(&d);
  ms_model *m;
  ms_status st = ms_model_load(&m, path, &d);
  if (st != MS_OK) {
    ms_cli_print_diag(&d);
    ms_diag_deinit(&d);
    return ms_cli_exit_code(st);
  }
  const ms_model_config *c = ms_model_config_of(m);
  printf("model:        %s\n", path);
  printf("architecture: %s\n", ms_arch_name(c->arch));
  printf("parameters:   %zu (%zu tensors, %.2f MB float32)\n", ms_model_param_count(m),
         ms_model_tensor_count(m), ms_model_param_count(m) * 4.0 / 1e6);
  printf("image:        %d x %d x %d (C x H x W)\n", c->image_channels, c->image_size,
         c->image_size);
  printf("channels:    ");
  for (int l = 0; l < c->n_levels; l++) printf(" %d", c->channels[l]);
  printf(" (%d blocks per level)\n", c->blocks_per_level);
  if (c->arch == MS_ARCH_UNET) {
    printf("attention:   ");
    for (int a = 0; a < c->n_attention; a++) printf(" %d", c->attention_resolutions[a]);
    printf("%s (%d heads)\n", c->n_attention ? "" : " none", c->heads);
    printf("classes:      %d%s\n", c->num_classes, c->num_classes ? " (+ null class)" : " (unconditional)");
    printf("prediction:   %s\n", ms_prediction_name(c->prediction));
    if (c->schedule.type == MS_SCHEDULE_LINEAR)
      printf("schedule:     linear, T = %d, beta %g .. %g\n", c->schedule.T, c->schedule.beta_start,
             c->schedule.beta_end);
    else
      printf("schedule:     cosine, T = %d\n", c->schedule.T);
  } else {
    printf("latent:       %d x %d x %d\n", c->latent_channels, c->image_size >> (c->n_levels - 1),
           c->image_size >> (c->n_levels - 1));
    if (c->has_latent_prior)
      printf("prior:        learned Gaussian, rank %d, %d class%s\n", c->prior_rank,
             c->num_classes > 0 ? c->num_classes : 1,
             c->num_classes > 1 ? "es" : (c->num_classes == 1 ? "" : " (unconditional)"));
    else
      printf("prior:        N(0, I)\n");
  }
  printf("intensity:    physical = value * %g + %g [%s]\n", c->intensity_scale, c->intensity_offset,
         c->intensity_unit);
  printf("weights_xxh64: %016llx (verified)\n", (unsigned long long)ms_model_weights_xxh64(m));
  const char *keys[] = {"description", "training_data", "licence", "created_by"};
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
    const char *v = ms_model_attr(m, keys[i]);
    printf("%-13s %s\n", keys[i], v ? v : "(not recorded)");
  }
  cJSON *j = cJSON_Parse(ms_model_config_json(m));
  char *pretty = j ? cJSON_Print(j) : NULL;
  printf("config:\n%s\n", pretty ? pretty : ms_model_config_json(m));
  free(pretty);
  cJSON_Delete(j);
  if (tensors)
    for (size_t i = 0; i < ms_model_tensor_count(m); i++) {
      const ms_tensor *t = ms_model_tensor_at(m, i);
      printf("  %-40s [", t->name);
      for (int k = 0; k < t->rank; k++) printf("%s%lld", k ? ", " : "", (long long)t->shape[k]);
      printf("]\n");
    }
  ms_model_free(m);
  ms_diag_deinit(&d);
  return MS_EXIT_OK;
}

static int cmd_model(int argc, char **argv) {
  if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    fputs(k_usage, stdout);
    return MS_EXIT_OK;
  }
  if (argc < 3 || strcmp(argv[1], "inspect")) {
    fputs(k_usage, stderr);
    return MS_EXIT_USAGE;
  }
  int tensors = 0;
  const char *path = NULL;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--tensors"))
      tensors = 1;
    else if (!path && argv[i][0] != '-')
      path = argv[i];
    else {
      ms_cli_error("model", "unexpected argument \"%s\"", argv[i]);
      return MS_EXIT_USAGE;
    }
  }
  if (!path) {
    fputs(k_usage, stderr);
    return MS_EXIT_USAGE;
  }
  return inspect(path, tensors);
}

MS_CLI_COMMAND(model, "inspect a generative model file (architecture, config, metadata)", cmd_model);
