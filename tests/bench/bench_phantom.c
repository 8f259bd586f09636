/* Phantom throughput: 256 x 256 CT chest slices with masks written to a
 * compressed HDF5 file (deflate 4, the command's default), with 1 and 2
 * threads, and 128^3 head volumes; peak memory for two N to show it is flat.
 *
 * Usage: bench_phantom [N_slices=400] [N_volumes=4] [outdir=.]
 * The pipeline is the command's: batches of 8 x threads images generated in
 * parallel (ms_parallel_for) into per-thread buffers, then written in index
 * order. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "medsynth/io.h"
#include "medsynth/parallel.h"
#include "medsynth/phantom.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
  ms_phantom_image *slots;
  const ms_phantom_params *p;
  uint64_t first;
  size_t npix;
  float *bi;
  uint8_t *bm;
  atomic_int fails;
} batch_job;

/* Image first + b on the buffers of the library worker thread that runs it. */
static void render_one(void *ctx, size_t b, size_t worker) {
  batch_job *j = ctx;
  ms_phantom_image *img = &j->slots[worker];
  if (ms_phantom_generate(img, j->p, NULL, 1, j->first + b, NULL) != MS_OK) atomic_fetch_add(&j->fails, 1);
  memcpy(j->bi + b * j->npix, img->image, j->npix * sizeof(float));
  memcpy(j->bm + b * j->npix, img->mask, j->npix);
}

static double run(const ms_phantom_params *p, uint64_t n, int T, const char *path, int write) {
  size_t npix = (size_t)p->width * p->height * (size_t)(p->depth > 0 ? p->depth : 1);
  size_t batch = (size_t)T * (p->depth > 0 ? 1 : 8);
  float *bi = malloc(batch * npix * sizeof(float));
  uint8_t *bm = malloc(batch * npix);
  ms_phantom_image *slots = calloc((size_t)T, sizeof *slots);
  ms_diag d;
  ms_diag_init(&d);
  for (int t = 0; t < T; t++)
    if (ms_phantom_image_init(&slots[t], p, &d)) return -1;
  ms_writer *w = NULL;
  uint64_t dims[5] = {n, 1, 0, 0, 0};
  int rank = p->depth > 0 ? 5 : 4;
  if (p->depth > 0) {
    dims[2] = (uint64_t)p->depth;
    dims[3] = (uint64_t)p->height;
    dims[4] = (uint64_t)p->width;
  } else {
    dims[2] = (uint64_t)p->height;
    dims[3] = (uint64_t)p->width;
  }
  double t0 = now();
  if (write) {
    ms_writer_params o;
    ms_writer_params_init(&o);
    o.force = 1;
    o.threads = T;
    if (ms_writer_open(&w, path, &o, &d) || ms_writer_begin_array(w, "/images/x", MS_DT_FLOAT32, rank, dims) ||
        ms_writer_begin_array(w, "/masks/x", MS_DT_UINT8, rank, dims))
      return -1;
  }
  int fails = 0;
  for (uint64_t first = 0; first < n; first += batch) {
    size_t nb = n - first < batch ? (size_t)(n - first) : batch;
    batch_job j = {slots, p, first, npix, bi, bm, 0};
    ms_parallel_for(nb, T, render_one, &j);
    fails += atomic_load(&j.fails);
    if (write && (ms_writer_write_items(w, "/images/x", first, nb, bi) ||
                  ms_writer_write_items(w, "/masks/x", first, nb, bm)))
      fails++;
  }
  if (write && ms_writer_commit(w, &d)) fails++;
  double el = now() - t0;
  for (int t = 0; t < T; t++) ms_phantom_image_deinit(&slots[t]);
  free(slots);
  free(bi);
  free(bm);
  ms_diag_deinit(&d);
  if (write) unlink(path);
  return fails ? -1 : el;
}

static long max_rss_kb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

int main(int argc, char **argv) {
  uint64_t ns = argc > 1 ? strtoull(argv[1], NULL, 10) : 400;
  uint64_t nv = argc > 2 ? strtoull(argv[2], NULL, 10) : 4;
  const char *dir = argc > 3 ? argv[3] : ".";
  char path[4096];
  snprintf(path, sizeof path, "%s/bench_phantom.h5", dir);
  ms_phantom_params p;
  ms_phantom_params_init(&p, MS_PHANTOM_CHEST);
  p.lesions.count_min = 0;
  p.lesions.count_max = 3;
  printf("chest CT 256x256 slices + masks, %llu images\n", (unsigned long long)ns);
  for (int T = 1; T <= 2; T++) {
    double g = run(&p, ns, T, path, 0);
    double h = run(&p, ns, T, path, 1);
    printf("  threads %d: generate only %.1f img/s; to compressed HDF5 %.1f img/s\n", T, ns / g, ns / h);
  }
  long rss_a = max_rss_kb();
  run(&p, ns * 4, 2, path, 1);
  long rss_b = max_rss_kb();
  printf("  peak RSS after N=%llu: %ld KiB; after N=%llu: %ld KiB\n", (unsigned long long)ns, rss_a,
         (unsigned long long)ns * 4, rss_b);
  ms_phantom_params v;
  ms_phantom_params_init(&v, MS_PHANTOM_HEAD);
  v.width = v.height = v.depth = 128;
  printf("head CT 128^3 volumes + masks, %llu volumes\n", (unsigned long long)nv);
  for (int T = 1; T <= 2; T++) {
    double g = run(&v, nv, T, path, 0);
    double h = run(&v, nv, T, path, 1);
    printf("  threads %d: generate only %.2f vol/s; to compressed HDF5 %.2f vol/s\n", T, nv / g, nv / h);
  }
  return 0;
}
