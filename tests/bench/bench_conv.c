/* conv2d timings on the convolutions of a 64x64 UNet, next to PyTorch.
 *
 * Usage: bench_conv [min_seconds_per_case] [--cpu] [--only-b1] [--torch SCRIPT]
 *   build-k2/bench_conv 0.3 --torch models/reference/bench_conv_torch.py
 * --cpu times with the process CPU clock instead of the wall clock (both
 * sides): on a loaded machine the single-thread figures then measure the
 * work rather than the share of the core the process got; with 2 threads
 * it is the sum over both threads, spinning included.
 *
 * Shapes: every distinct convolution of the reference UNet (image 64x64,
 * 1 channel, channels [32, 64, 128], one block per level, attention at
 * 16x16; models/reference/export_model.py) with its count per forward pass,
 * plus an 8x8 shape (count 0). Each runs at batch 1 and 16 with 1 and 2
 * threads (omp_set_num_threads). Columns: ms per call of ms_conv2d
 * (implicit GEMM), of the previous algorithm (explicit im2col in bands of
 * <= 2 M floats, then ms_sgemm with beta = 1 on a bias-filled output; the
 * same bytes), of Winograd F(2x2,3x3) (ms_conv2d_winograd, weights packed
 * beforehand; "-" for shapes it does not support; its results are checked
 * against ms_conv2d to 2e-6 of the largest output), and of
 * torch.nn.functional.conv2d (oneDNN) from SCRIPT with
 * torch.set_num_threads equal, run after the C timings in the same
 * invocation. Last: per-forward totals (sum of count x ms) per batch and
 * thread count, including "UNet path": Winograd where
 * ms_conv2d_winograd_suits says it pays (what the UNet runs), else ms_conv2d. Timing: best call over repetitions until min_seconds and at
 * least 3, after a warm-up call; inputs uniform in [-0.5, 0.5).
 *
 * This is a program, not a test: timings depend on the machine and load. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "medsynth/kernels.h"

static clockid_t bench_clock = CLOCK_MONOTONIC;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(bench_clock, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fill(float *p, size_t n, unsigned seed) {
  unsigned s = seed;
  for (size_t i = 0; i < n; i++) {
    s = s * 1664525u + 1013904223u;
    p[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
  }
}

#define TIME_BEST(best, min_s, stmt)        \
  do {                                      \
    stmt;                                   \
    double t_end_ = now_s() + (min_s);      \
    (best) = 1e30;                          \
    int reps_ = 0;                          \
    while (reps_ < 3 || now_s() < t_end_) { \
      double t0_ = now_s();                 \
      stmt;                                 \
      double dt_ = now_s() - t0_;           \
      if (dt_ < (best)) (best) = dt_;       \
      reps_++;                              \
    }                                       \
  } while (0)

typedef struct {
  size_t C, HW, Co, k, stride, pad, count;
} conv_case;

/* The UNet's convolutions (input channels, input size, output channels,
 * kernel, stride, padding, count per forward pass). */
static const conv_case CASES[] = {
    {1, 64, 32, 3, 1, 1, 1},    {32, 64, 1, 3, 1, 1, 1},    {32, 64, 32, 3, 1, 1, 4},
    {32, 64, 32, 3, 2, 1, 1},   {64, 64, 32, 1, 1, 0, 1},   {64, 64, 32, 3, 1, 1, 1},
    {64, 64, 64, 3, 1, 1, 1},   {96, 64, 32, 1, 1, 0, 1},   {96, 64, 32, 3, 1, 1, 1},
    {32, 32, 64, 1, 1, 0, 1},   {32, 32, 64, 3, 1, 1, 1},   {64, 32, 64, 3, 1, 1, 3},
    {64, 32, 64, 3, 2, 1, 1},   {96, 32, 64, 1, 1, 0, 1},   {96, 32, 64, 3, 1, 1, 1},
    {128, 32, 128, 3, 1, 1, 1}, {192, 32, 64, 1, 1, 0, 1},  {192, 32, 64, 3, 1, 1, 1},
    {64, 16, 128, 1, 1, 0, 1},  {64, 16, 128, 3, 1, 1, 1},  {128, 16, 128, 1, 1, 0, 4},
    {128, 16, 128, 3, 1, 1, 7}, {128, 16, 384, 1, 1, 0, 4}, {192, 16, 128, 1, 1, 0, 1},
    {192, 16, 128, 3, 1, 1, 1}, {256, 16, 128, 1, 1, 0, 1}, {256, 16, 128, 3, 1, 1, 1},
    {128, 8, 128, 3, 1, 1, 0},
};
#define N_CASES (sizeof CASES / sizeof CASES[0])

/* ---- the previous algorithm: banded im2col + ms_sgemm ---- */
#define BAND_FLOATS ((size_t)2 << 20)

static size_t band_rows(const ms_conv2d_params *p, size_t Ho, size_t Wo) {
  size_t rows = BAND_FLOATS / (p->C * p->kh * p->kw * Wo);
  return rows < 1 ? 1 : (rows > Ho ? Ho : rows);
}

static size_t im2col_scratch(const ms_conv2d_params *p) {
  size_t Ho, Wo;
  ms_conv2d_out_hw(p, &Ho, &Wo);
  size_t K = p->C * p->kh * p->kw, rows = band_rows(p, Ho, Wo);
  return K * rows * Wo + 16 + ms_sgemm_scratch_floats(p->C_out, rows * Wo, K);
}

static void im2col_band(float *col, const float *x, const ms_conv2d_params *p, size_t Wo,
                        size_t oy0, size_t rows) {
  const size_t C = p->C, H = p->H, W = p->W, kh = p->kh, kw = p->kw, ncol = rows * Wo;
#pragma omp parallel for schedule(static) if (C * kh * kw * ncol > 65536)
  for (size_t r = 0; r < C * kh * kw; r++) {
    size_t c = r / (kh * kw), ky = (r / kw) % kh, kx = r % kw;
    for (size_t oy = oy0; oy < oy0 + rows; oy++) {
      float *d = col + r * ncol + (oy - oy0) * Wo;
      size_t iy = oy * p->stride_h + ky;
      if (iy < p->pad_h || iy - p->pad_h >= H) {
        memset(d, 0, Wo * sizeof(float));
        continue;
      }
      const float *src = x + (c * H + (iy - p->pad_h)) * W;
      for (size_t ox = 0; ox < Wo; ox++) {
        size_t ix = ox * p->stride_w + kx;
        d[ox] = (ix < p->pad_w || ix - p->pad_w >= W) ? 0.0f : src[ix - p->pad_w];
      }
    }
  }
}

static void conv_im2col(float *y, const float *x, const float *w, const float *b,
                        const ms_conv2d_params *p, float *scratch, size_t ns) {
  size_t Ho, Wo;
  ms_conv2d_out_hw(p, &Ho, &Wo);
  const size_t K = p->C * p->kh * p->kw, P = Ho * Wo, Co = p->C_out;
  for (size_t n = 0; n < p->N; n++) {
    float *yn = y + n * Co * P;
    const float *xn = x + n * p->C * p->H * p->W;
    for (size_t co = 0; co < Co; co++)
      for (size_t i = 0; i < P; i++) yn[co * P + i] = b[co];
    size_t rows = band_rows(p, Ho, Wo), col_floats = K * rows * Wo + 16;
    for (size_t oy0 = 0; oy0 < Ho; oy0 += rows) {
      size_t r = Ho - oy0 < rows ? Ho - oy0 : rows;
      im2col_band(scratch, xn, p, Wo, oy0, r);
      ms_sgemm(yn + oy0 * Wo, P, w, K, scratch, r * Wo, MS_TRANS_NO, MS_TRANS_NO, Co, r * Wo, K,
               1.0f, 1.0f, scratch + col_floats, ns - col_floats);
    }
  }
}

int main(int argc, char **argv) {
  double min_s = 0.3;
  const char *torch = NULL;
  int only_b1 = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--torch") && i + 1 < argc)
      torch = argv[++i];
    else if (!strcmp(argv[i], "--cpu"))
      bench_clock = CLOCK_PROCESS_CPUTIME_ID;
    else if (!strcmp(argv[i], "--only-b1"))
      only_b1 = 1;
    else
      min_s = atof(argv[i]);
  }
  if (!(min_s > 0)) min_s = 0.3;
  printf("ms_conv2d ISA path: %s; clock: %s\n", ms_kernel_isa_name(ms_kernel_isa_detect()),
         bench_clock == CLOCK_MONOTONIC ? "wall" : "process CPU");
  const int nb_run = only_b1 ? 1 : 2;
  const size_t batches[2] = {1, 16};
  enum { NB = 2, NT = 2 };
  double t_ms[N_CASES][NB][NT], t_old[N_CASES][NB][NT], t_torch[N_CASES][NB][NT];
  double t_wino[N_CASES][NB][NT];
  int suits[N_CASES][NB];
  char shapes_path[] = "/tmp/bench_conv_shapes_XXXXXX";
  int fd = mkstemp(shapes_path);
  FILE *shapes = fd >= 0 ? fdopen(fd, "w") : NULL;
  if (!shapes) {
    fprintf(stderr, "cannot create a temporary file\n");
    return 1;
  }
  for (size_t ci = 0; ci < N_CASES; ci++) {
    const conv_case *c = &CASES[ci];
    for (int bi = 0; bi < nb_run; bi++) {
      ms_conv2d_params p = {batches[bi], c->C, c->HW, c->HW, c->Co, c->k, c->k,
                            c->stride, c->stride, c->pad, c->pad};
      size_t Ho, Wo;
      if (ms_conv2d_out_hw(&p, &Ho, &Wo) != MS_OK) return 1;
      const size_t nx = p.N * p.C * p.H * p.W, nw = p.C_out * p.C * p.kh * p.kw;
      const size_t ny = p.N * p.C_out * Ho * Wo;
      float *x = malloc(nx * sizeof(float)), *w = malloc(nw * sizeof(float));
      float *b = malloc(p.C_out * sizeof(float)), *y = malloc(ny * sizeof(float));
      float *y2 = malloc(ny * sizeof(float));
      if (!x || !w || !b || !y || !y2) return 1;
      fill(x, nx, 3);
      fill(w, nw, 4);
      fill(b, p.C_out, 5);
      suits[ci][bi] = ms_conv2d_winograd_suits(&p);
      size_t nwp = ms_conv2d_winograd_supported(&p) ? ms_conv2d_winograd_packed_floats(&p) : 0;
      float *wp = nwp ? malloc(nwp * sizeof(float)) : NULL;
      if (nwp && (!wp || ms_conv2d_winograd_pack_weights(wp, nwp, w, &p) != MS_OK)) return 1;
      for (int ti = 0; ti < NT; ti++) {
        omp_set_num_threads(ti + 1);
        size_t ns = ms_conv2d_scratch_floats(&p), no = im2col_scratch(&p);
        float *sc = malloc(ns * sizeof(float)), *so = malloc(no * sizeof(float));
        if (!sc || !so) return 1;
        TIME_BEST(t_ms[ci][bi][ti], min_s, ms_conv2d(y, x, w, b, &p, sc, ns));
        TIME_BEST(t_old[ci][bi][ti], min_s, conv_im2col(y2, x, w, b, &p, so, no));
        if (memcmp(y, y2, ny * sizeof(float)) != 0) {
          fprintf(stderr, "ms_conv2d and im2col+ms_sgemm differ\n");
          return 1;
        }
        t_wino[ci][bi][ti] = -1;
        if (wp) {
          size_t nsw = ms_conv2d_winograd_scratch_floats(&p);
          float *sw = malloc(nsw * sizeof(float));
          if (!sw) return 1;
          TIME_BEST(t_wino[ci][bi][ti], min_s, ms_conv2d_winograd(y2, x, wp, b, &p, sw, nsw));
          double big = 0, err = 0;
          for (size_t k = 0; k < ny; k++) {
            big = fmax(big, fabs(y[k]));
            err = fmax(err, fabs((double)y2[k] - y[k]));
          }
          if (err > 2e-6 * big) {
            fprintf(stderr, "ms_conv2d_winograd differs from ms_conv2d by %g (max |y| %g)\n", err, big);
            return 1;
          }
          free(sw);
        }
        t_torch[ci][bi][ti] = -1;
        fprintf(shapes, "%zu %zu %zu %zu %zu %zu %zu %zu %d\n", p.N, p.C, p.H, p.W, p.C_out, p.kh,
                p.stride_h, p.pad_h, ti + 1);
        free(sc);
        free(so);
      }
      free(wp);
      free(x);
      free(w);
      free(b);
      free(y);
      free(y2);
    }
    fprintf(stderr, ".");
  }
  fprintf(stderr, "\n");
  fclose(shapes);
  if (torch) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s' %g%s", torch, shapes_path, min_s,
             bench_clock == CLOCK_MONOTONIC ? "" : " --cpu");
    FILE *pp = popen(cmd, "r");
    if (!pp) return 1;
    for (size_t ci = 0; ci < N_CASES; ci++)
      for (int bi = 0; bi < nb_run; bi++)
        for (int ti = 0; ti < NT; ti++)
          if (fscanf(pp, "%lf", &t_torch[ci][bi][ti]) != 1) t_torch[ci][bi][ti] = -1;
    if (pclose(pp) != 0) fprintf(stderr, "warning: %s failed\n", torch);
  }
  unlink(shapes_path);
  printf("\n| C,HxW -> C_out, k, stride | count | batch | threads | ms_conv2d ms | im2col+sgemm ms "
         "| winograd ms | torch ms | torch / ms_conv2d |\n|---|---|---|---|---|---|---|---|---|\n");
  double tot[4][NB][NT] = {{{0}}};
  for (size_t ci = 0; ci < N_CASES; ci++) {
    const conv_case *c = &CASES[ci];
    for (int bi = 0; bi < nb_run; bi++)
      for (int ti = 0; ti < NT; ti++) {
        const double a = t_ms[ci][bi][ti] * 1e3, o = t_old[ci][bi][ti] * 1e3,
                     t = t_torch[ci][bi][ti];
        const double wg = t_wino[ci][bi][ti] * 1e3;
        printf("| %zu,%zux%zu -> %zu, %zux%zu, s%zu | %zu | %zu | %d | %.3f | %.3f |", c->C, c->HW,
               c->HW, c->Co, c->k, c->k, c->stride, c->count, batches[bi], ti + 1, a, o);
        if (wg > 0)
          printf(" %.3f%s |", wg, suits[ci][bi] ? "" : " (not used)");
        else
          printf(" - |");
        if (t > 0)
          printf(" %.3f | %.2f |\n", t, t / a);
        else
          printf(" - | - |\n");
        tot[0][bi][ti] += (double)c->count * a;
        tot[1][bi][ti] += (double)c->count * o;
        tot[2][bi][ti] += (double)c->count * t;
        tot[3][bi][ti] += (double)c->count * (suits[ci][bi] && wg > 0 ? wg : a);
      }
  }
  printf("\n| per forward (sum of count x ms) | batch | threads | ms_conv2d ms | im2col+sgemm ms "
         "| UNet path ms | torch ms | torch / UNet path |\n|---|---|---|---|---|---|---|---|\n");
  for (int bi = 0; bi < nb_run; bi++)
    for (int ti = 0; ti < NT; ti++) {
      printf("| all convolutions | %zu | %d | %.2f | %.2f | %.2f |", batches[bi], ti + 1,
             tot[0][bi][ti], tot[1][bi][ti], tot[3][bi][ti]);
      if (torch)
        printf(" %.2f | %.2f |\n", tot[2][bi][ti], tot[2][bi][ti] / tot[3][bi][ti]);
      else
        printf(" - | - |\n");
    }
  return 0;
}
