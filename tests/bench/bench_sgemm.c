/* SGEMM and conv2d throughput: ms_sgemm against OpenBLAS cblas_sgemm in the
 * same run and with the same thread count.
 *
 * Usage: bench_sgemm [min_seconds_per_case]   (default 0.5)
 * Recommended (Debian's OpenBLAS 0.3.21 misdetects recent Xeons and falls
 * back to an SSE3 kernel unless told the core type):
 *   OPENBLAS_CORETYPE=SkylakeX ./build-kern/bench_sgemm
 *   ./build-kern/bench_sgemm
 * Each case runs for at least min_seconds; the best repetition is reported
 * (GFLOP/s = 2*M*N*K / time). Threads: 1 and 2 for both libraries
 * (omp_set_num_threads / openblas_set_num_threads). Inputs are uniform in
 * [-0.5, 0.5) from a fixed seed. Output: one table row per case.
 *
 * This is a program, not a test: timings depend on the machine and load. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "medsynth/kernels.h"

#ifdef MS_BENCH_HAVE_OPENBLAS
#include <cblas.h>
#endif

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fill(float *p, size_t n, unsigned seed) {
  unsigned s = seed;
  for (size_t i = 0; i < n; i++) {
    s = s * 1664525u + 1013904223u;
    p[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
  }
}

typedef struct {
  const char *name;
  size_t M, N, K;
} gemm_case;

/* Best time per call over repetitions until min_s has elapsed. */
#define TIME_BEST(best, min_s, stmt)                   \
  do {                                                 \
    stmt; /* warm-up */                                \
    double t_end_ = now_s() + (min_s);                 \
    (best) = 1e30;                                     \
    int reps_ = 0;                                     \
    while (reps_ < 3 || now_s() < t_end_) {            \
      double t0_ = now_s();                            \
      stmt;                                            \
      double dt_ = now_s() - t0_;                      \
      if (dt_ < (best)) (best) = dt_;                  \
      reps_++;                                         \
    }                                                  \
  } while (0)

int main(int argc, char **argv) {
  double min_s = argc > 1 ? atof(argv[1]) : 0.5;
  if (!(min_s > 0)) min_s = 0.5;
  const char *core = getenv("OPENBLAS_CORETYPE");
  printf("ms_sgemm ISA path: %s\n", ms_kernel_isa_name(ms_kernel_isa_detect()));
#ifdef MS_BENCH_HAVE_OPENBLAS
  printf("OpenBLAS: %s (OPENBLAS_CORETYPE=%s)\n", openblas_get_corename(), core ? core : "unset");
#else
  (void)core;
  printf("OpenBLAS: not linked\n");
#endif
  const gemm_case cases[] = {
      {"square 256", 256, 256, 256},
      {"square 512", 512, 512, 512},
      {"square 1024", 1024, 1024, 1024},
      {"conv3x3 64->64 @64x64", 64, 64 * 64, 64 * 9},
      {"conv3x3 128->128 @32x32", 128, 32 * 32, 128 * 9},
      {"conv3x3 256->256 @16x16", 256, 16 * 16, 256 * 9},
      {"conv1x1 128->64 @64x64", 64, 64 * 64, 128},
  };
  const size_t ncases = sizeof cases / sizeof cases[0];
  printf("\n| case | M | N | K | threads | ms_sgemm GFLOP/s | OpenBLAS GFLOP/s | ratio |\n");
  printf("|---|---|---|---|---|---|---|---|\n");
  for (size_t ci = 0; ci < ncases; ci++) {
    const gemm_case *c = &cases[ci];
    float *A = malloc(c->M * c->K * sizeof(float));
    float *B = malloc(c->K * c->N * sizeof(float));
    float *C = malloc(c->M * c->N * sizeof(float));
    size_t ns = ms_sgemm_scratch_floats(c->M, c->N, c->K);
    float *scratch = malloc(ns * sizeof(float));
    if (!A || !B || !C || !scratch) {
      fprintf(stderr, "out of memory\n");
      return 1;
    }
    fill(A, c->M * c->K, 1);
    fill(B, c->K * c->N, 2);
    const double flop = 2.0 * (double)c->M * (double)c->N * (double)c->K;
    for (int t = 1; t <= 2; t++) {
      omp_set_num_threads(t);
      double best_ms, best_ob = 0;
      TIME_BEST(best_ms, min_s,
                ms_sgemm(C, c->N, A, c->K, B, c->N, MS_TRANS_NO, MS_TRANS_NO, c->M, c->N, c->K,
                         1.0f, 0.0f, scratch, ns));
      double g_ms = flop / best_ms * 1e-9, g_ob = 0;
#ifdef MS_BENCH_HAVE_OPENBLAS
      openblas_set_num_threads(t);
      TIME_BEST(best_ob, min_s,
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)c->M, (int)c->N,
                            (int)c->K, 1.0f, A, (int)c->K, B, (int)c->N, 0.0f, C, (int)c->N));
      g_ob = flop / best_ob * 1e-9;
      printf("| %s | %zu | %zu | %zu | %d | %.1f | %.1f | %.2f |\n", c->name, c->M, c->N, c->K, t,
             g_ms, g_ob, g_ms / g_ob);
#else
      (void)best_ob;
      (void)g_ob;
      printf("| %s | %zu | %zu | %zu | %d | %.1f | - | - |\n", c->name, c->M, c->N, c->K, t, g_ms);
#endif
      fflush(stdout);
    }
    free(A);
    free(B);
    free(C);
    free(scratch);
  }

  /* conv2d: ms per call of the fast path (im2col + ms_sgemm). */
  const ms_conv2d_params convs[] = {
      {1, 64, 64, 64, 64, 3, 3, 1, 1, 1, 1},
      {1, 128, 32, 32, 128, 3, 3, 1, 1, 1, 1},
      {1, 64, 64, 64, 64, 3, 3, 2, 2, 1, 1},
      {1, 128, 64, 64, 64, 1, 1, 1, 1, 0, 0},
  };
  printf("\n| conv2d N,C,H,W -> C_out, k, stride | threads | ms/call | GFLOP/s |\n|---|---|---|---|\n");
  for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++) {
    const ms_conv2d_params *p = &convs[i];
    size_t Ho, Wo;
    if (ms_conv2d_out_hw(p, &Ho, &Wo) != MS_OK) return 1;
    float *x = malloc(p->N * p->C * p->H * p->W * sizeof(float));
    float *w = malloc(p->C_out * p->C * p->kh * p->kw * sizeof(float));
    float *b = malloc(p->C_out * sizeof(float));
    float *y = malloc(p->N * p->C_out * Ho * Wo * sizeof(float));
    size_t ns = ms_conv2d_scratch_floats(p);
    float *scratch = malloc(ns * sizeof(float));
    if (!x || !w || !b || !y || !scratch) return 1;
    fill(x, p->N * p->C * p->H * p->W, 3);
    fill(w, p->C_out * p->C * p->kh * p->kw, 4);
    fill(b, p->C_out, 5);
    double flop = 2.0 * (double)(p->N * p->C_out * Ho * Wo) * (double)(p->C * p->kh * p->kw);
    for (int t = 1; t <= 2; t++) {
      omp_set_num_threads(t);
      double best;
      TIME_BEST(best, min_s, ms_conv2d(y, x, w, b, p, scratch, ns));
      printf("| %zu,%zu,%zu,%zu -> %zu, %zux%zu, s%zu | %d | %.3f | %.1f |\n", p->N, p->C, p->H,
             p->W, p->C_out, p->kh, p->kw, p->stride_h, t, best * 1e3, flop / best * 1e-9);
      fflush(stdout);
    }
    free(x);
    free(w);
    free(b);
    free(y);
    free(scratch);
  }
  return 0;
}
