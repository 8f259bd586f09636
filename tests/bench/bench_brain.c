/* Brain phantom speed: atlas loading, one deformed, labelled 181x217x181
 * T1 volume (1 mm, physics intensities, bias, blur, noise), and 256 x 256
 * axial slices, each with 1 and 2 threads; generation only (no file I/O;
 * the HDF5 writer's cost is in bench_phantom / bench_writer).
 *
 * Usage: bench_brain [N_volumes=3] [N_slices=50] */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "medsynth/brain.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int fail(ms_diag *d) {
  char *t = ms_diag_format(d);
  fprintf(stderr, "%s", t ? t : "error\n");
  free(t);
  return 1;
}

static double run(const ms_brain_atlas *a, const ms_brain_params *p, int n, ms_diag *d) {
  ms_brain_image img;
  if (ms_brain_image_init(&img, p, d) != MS_OK) return -1;
  double t0 = now();
  for (int i = 0; i < n; i++)
    if (ms_brain_generate(&img, a, p, 1, (uint64_t)i, d) != MS_OK) {
      ms_brain_image_deinit(&img);
      return -1;
    }
  double t = now() - t0;
  ms_brain_image_deinit(&img);
  return t;
}

int main(int argc, char **argv) {
  int nv = argc > 1 ? atoi(argv[1]) : 3, ns = argc > 2 ? atoi(argv[2]) : 50;
  ms_diag d;
  ms_diag_init(&d);
  ms_brain_atlas *a;
  double t0 = now();
  if (ms_brain_atlas_load(&a, NULL, &d) != MS_OK) return fail(&d);
  printf("atlas load: %.2f s\n", now() - t0);
  ms_brain_params vol, sl;
  ms_brain_params_init(&vol);
  ms_brain_params_init(&sl);
  sl.dims[0] = sl.dims[1] = 256;
  sl.dims[2] = 1;
  sl.spacing_mm[0] = sl.spacing_mm[1] = sl.spacing_mm[2] = 0.9;
  for (int t = 1; t <= 2; t++) {
    omp_set_num_threads(t);
    double tv = run(a, &vol, nv, &d), ts = run(a, &sl, ns, &d);
    if (tv < 0 || ts < 0) return fail(&d);
    printf("threads %d: 181x217x181 volume %.2f s each; 256x256 slices %.1f /s\n", t, tv / nv, ns / ts);
  }
  ms_brain_atlas_free(a);
  ms_diag_deinit(&d);
  return 0;
}
