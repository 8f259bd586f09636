/* Example: load a diffusion model, sample four images with DDIM through the
 * public API, and print each image's value range in physical units.
 *
 * Usage: example_sample_images MODEL.h5 [steps]
 * (docs/samplers.md; e.g. tests/golden/nn/unet_eps.h5). The same images come
 * out of `medsynth images --model MODEL.h5 -n 4 --seed 42 --steps S`. */
#include <stdio.h>
#include <stdlib.h>

#include "medsynth/model.h"
#include "medsynth/nn.h"
#include "medsynth/sample.h"

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s MODEL.h5 [steps]\n", argv[0]);
    return 64;
  }
  enum { N = 4 };
  ms_diag d;
  ms_diag_init(&d);
  ms_model *m = NULL;
  ms_unet *u = NULL;
  float *x = NULL;
  int rc = 1;
  if (ms_model_load(&m, argv[1], &d) != MS_OK) goto out;
  const ms_model_config *c = ms_model_config_of(m);
  if (ms_unet_new(&u, m, N, &d) != MS_OK) goto out;
  ms_denoiser dn = {.fn = ms_unet_denoise, .ctx = u, .prediction = c->prediction,
                    .num_classes = c->num_classes, .schedule = c->schedule,
                    .item_floats = (size_t)c->image_channels * c->image_size * c->image_size,
                    .max_batch = N};
  ms_sample_params p;
  ms_sample_params_init(&p);
  p.sampler = MS_SAMPLER_DDIM;
  p.steps = argc > 2 ? atoi(argv[2]) : 10;
  p.seed = 42;
  int32_t y[N] = {0, 1, 0, 1}; /* classes, used by conditional models only */
  x = malloc(N * dn.item_floats * sizeof(float));
  if (!x) goto out;
  if (ms_sample(&p, &dn, x, 0, c->num_classes ? y : NULL, N, &d) != MS_OK) goto out;
  for (int i = 0; i < N; i++) {
    float lo = x[i * dn.item_floats], hi = lo;
    for (size_t k = 0; k < dn.item_floats; k++) {
      float v = x[i * dn.item_floats + k];
      lo = v < lo ? v : lo;
      hi = v > hi ? v : hi;
    }
    printf("image %d: %.1f .. %.1f %s\n", i, lo * c->intensity_scale + c->intensity_offset,
           hi * c->intensity_scale + c->intensity_offset, c->intensity_unit);
  }
  rc = 0;
out:
  if (rc) {
    char *t = ms_diag_format(&d);
    fprintf(stderr, "%s", t ? t : "error\n");
    free(t);
  }
  free(x);
  ms_unet_free(u);
  ms_model_free(m);
  ms_diag_deinit(&d);
  return rc;
}
