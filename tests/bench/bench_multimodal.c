/* Benchmark: a multimodal dataset (records + 256 x 256 chest CT with masks
 * and lesion tables) written to HDF5, against two references in the same
 * run: the records alone, and the bare phantom renders of the same images
 * (no expressions, no I/O).
 *
 * Usage: bench_multimodal [N=200] [threads=0 (all)] [size=256]
 * Prints seconds, images/s and peak RSS (getrusage, so the peak of the whole
 * process: run the variants in separate processes with
 * `bench_multimodal N T S only-images` etc. for clean RSS figures).
 * Figures: docs/performance.md. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "medsynth/images.h"
#include "medsynth/io.h"
#include "medsynth/phantom.h"
#include "medsynth/records.h"
#include "medsynth/rng.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static long peak_rss_mib(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024;
}

static const char *k_spec =
    "{\"medsynth\": 1, \"seed\": 1, \"tables\": [{\"name\": \"patients\", \"rows\": 200,\n"
    " \"fields\": [\n"
    "  {\"name\": \"patient_id\", \"kind\": \"id\", \"format\": \"hash\", \"prefix\": \"P\", \"width\": 8},\n"
    "  {\"name\": \"age\", \"kind\": \"integer\", \"dist\": {\"type\": \"uniform\", \"low\": 50, \"high\": 80}},\n"
    "  {\"name\": \"bmi\", \"kind\": \"real\", \"dist\": {\"type\": \"normal\", \"mean\": 27, \"sd\": 5}, \"min\": 16, \"max\": 45},\n"
    "  {\"name\": \"cancer\", \"kind\": \"bool\", \"p\": 0.3},\n"
    "  {\"name\": \"nodules\", \"kind\": \"integer\", \"dist\": {\"type\": \"constant\", \"value\": 0},\n"
    "   \"when\": [{\"if\": \"cancer\", \"dist\": {\"type\": \"poisson\", \"mean\": 1.5}}],\n"
    "   \"min\": \"if(cancer, 1, 0)\", \"max\": \"if(cancer, 4, 0)\"}],\n"
    " \"images\": [{\"name\": \"chest_ct\", \"phantom\": \"chest\", \"size\": %d, \"lesions\": \"nodules\",\n"
    "   \"lesion_size_mm\": [8, 24], \"body_scale\": \"clamp(0.75 + 0.01 * bmi, 0.85, 1.2)\",\n"
    "   \"fat_mm\": \"clamp(1.6 * bmi - 22, 4, 45)\", \"age\": \"age\"}]}]}\n";

static int run(const ms_spec *s, uint64_t n, int threads, int images, double *secs) {
  char path[] = "/tmp/bench_multimodal_XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return 1;
  close(fd);
  unlink(path);
  ms_diag d;
  ms_diag_init(&d);
  ms_writer_params wo;
  ms_writer_params_init(&wo);
  wo.format = MS_FMT_HDF5;
  wo.threads = threads;
  ms_writer *w = NULL;
  ms_images *im = NULL;
  double t0 = now();
  ms_status st = ms_writer_open(&w, path, &wo, &d);
  ms_generate_params go;
  ms_generate_params_init(&go);
  go.rows = n;
  go.threads = threads;
  ms_sink sink = st ? (ms_sink){0} : ms_writer_sink(w);
  if (!st && images) {
    ms_images_params io;
    ms_images_params_init(&io);
    io.seed = ms_spec_seed(s);
    io.threads = threads;
    st = ms_images_new(&im, s, w, &io, &d);
    if (!st) sink = ms_images_sink(im);
  }
  if (!st) st = ms_generate(s, &go, &sink, NULL, &d);
  ms_images_free(im);
  if (!st)
    st = ms_writer_commit(w, &d);
  else if (w)
    ms_writer_abort(w);
  *secs = now() - t0;
  unlink(path);
  if (st) {
    char *t = ms_diag_format(&d);
    fprintf(stderr, "%s", t ? t : "failed\n");
    free(t);
  }
  ms_diag_deinit(&d);
  return st != MS_OK;
}

int main(int argc, char **argv) {
  uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 200;
  int threads = argc > 2 ? atoi(argv[2]) : 0;
  int size = argc > 3 ? atoi(argv[3]) : 256;
  const char *only = argc > 4 ? argv[4] : NULL;
  int T = threads > 0 ? threads : omp_get_max_threads();
  char text[4096];
  snprintf(text, sizeof text, k_spec, size);
  ms_diag d;
  ms_diag_init(&d);
  ms_spec *s = NULL;
  if (ms_spec_load_string(&s, text, strlen(text), "bench.json", &d) != MS_OK) {
    char *t = ms_diag_format(&d);
    fprintf(stderr, "%s", t ? t : "");
    free(t);
    return 1;
  }
  printf("multimodal: %llu patients, %dx%d chest CT + mask + lesion table, %d threads\n",
         (unsigned long long)n, size, size, T);
  double secs;
  if (!only || !strcmp(only, "records")) {
    if (run(s, n, threads, 0, &secs)) return 1;
    printf("  records only (reference)        %8.3f s\n", secs);
  }
  if (!only || !strcmp(only, "render")) {
    ms_phantom_params p;
    ms_phantom_params_init(&p, MS_PHANTOM_CHEST);
    p.width = p.height = size;
    p.lesions.diameter_min_mm = 8;
    p.lesions.diameter_max_mm = 24;
    double t0 = now();
    int bad = 0;
#pragma omp parallel num_threads(T) reduction(| : bad)
    {
      ms_phantom_image img;
      if (ms_phantom_image_init(&img, &p, NULL) != MS_OK) bad = 1;
#pragma omp for schedule(dynamic, 1)
      for (uint64_t i = 0; i < n; i++) {
        ms_phantom_subject sub;
        ms_phantom_subject_init(&sub);
        sub.n_lesions = (int)(i % 3);
        if (!bad && ms_phantom_generate(&img, &p, &sub, 1, i, NULL) != MS_OK) bad = 1;
      }
      ms_phantom_image_deinit(&img);
    }
    if (bad) return 1;
    secs = now() - t0;
    printf("  phantom renders only (reference) %7.3f s  %8.1f images/s\n", secs, (double)n / secs);
  }
  if (!only || !strcmp(only, "images")) {
    if (run(s, n, threads, 1, &secs)) return 1;
    printf("  records + images -> HDF5        %8.3f s  %8.1f images/s\n", secs, (double)n / secs);
  }
  printf("  peak RSS                        %8ld MiB\n", peak_rss_mib());
  ms_spec_free(s);
  ms_diag_deinit(&d);
  return 0;
}
