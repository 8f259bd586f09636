/* Brain phantom speed: atlas loading, one deformed, labelled 181x217x181
 * T1 volume (1 mm, physics intensities, bias, blur, noise), and 256 x 256
 * axial slices, each with 1 and 2 threads; generation only (no file I/O;
 * the HDF5 writer's cost is in bench_phantom / bench_writer). Slices are
 * timed both ways: threads inside each slice, and one slice per thread
 * (what the command does).
 *
 * Usage: bench_brain [N_volumes=3] [N_slices=50] */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "medsynth/brain.h"
#include "medsynth/parallel.h"

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

/* Slices side by side, one per thread, as `medsynth phantom --kind brain
 * --threads T` renders them. */
typedef struct {
  const ms_brain_atlas *a;
  const ms_brain_params *p;
  ms_brain_image *imgs;
  uint64_t first;
  int fails;
} side_job;

static void side_one(void *ctx, size_t b, size_t worker) {
  (void)worker;
  side_job *j = ctx;
  if (ms_brain_generate(&j->imgs[b], j->a, j->p, 1, j->first + b, NULL) != MS_OK) j->fails = 1;
}

static double run_side(const ms_brain_atlas *a, const ms_brain_params *p, int n, int T, ms_diag *d) {
  ms_brain_image imgs[8];
  for (int t = 0; t < T; t++)
    if (ms_brain_image_init(&imgs[t], p, d) != MS_OK) return -1;
  side_job j = {a, p, imgs, 0, 0};
  double t0 = now();
  for (j.first = 0; j.first < (uint64_t)n; j.first += (uint64_t)T)
    ms_parallel_for((size_t)((uint64_t)n - j.first < (uint64_t)T ? (uint64_t)n - j.first : (uint64_t)T), T, side_one, &j);
  double t = now() - t0;
  for (int t2 = 0; t2 < T; t2++) ms_brain_image_deinit(&imgs[t2]);
  return j.fails ? -1 : t;
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
    double tside = run_side(a, &sl, ns, t, &d);
    if (tside < 0) return fail(&d);
    printf("threads %d: 181x217x181 volume %.2f s each; 256x256 slices %.1f /s (threads inside each), "
           "%.1f /s (one slice per thread)\n", t, tv / nv, ns / ts, ns / tside);
  }
  ms_brain_atlas_free(a);
  ms_diag_deinit(&d);
  return 0;
}
