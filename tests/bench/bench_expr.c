/* Benchmark of the expression evaluator: BMI = weight_kg / (height_cm/100)^2
 * over 10^7 rows (with a validity mask on weight), evaluated in chunks of
 * 65536 rows as the generator does, on one thread, next to the same
 * computation written as a plain C loop (with the same missing-value and
 * finiteness handling) as the reference.
 *
 * Usage: bench_expr [rows] [repeats]
 * Prints rows/s and arithmetic operations/s (3 per row: two divisions and a
 * square) for both, and their ratio. Figures go to docs/performance.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "records/expr.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int resolve(void *ctx, const char *name, ms__expr_symbol *out, ms_diag *d,
                   const ms__expr_pos *pos) {
  (void)ctx;
  (void)d;
  (void)pos;
  memset(out, 0, sizeof *out);
  out->type = MS__EXPR_NUMBER;
  out->layout = MS__EXPR_LAYOUT_F64;
  if (!strcmp(name, "weight_kg")) out->slot = 0;
  else if (!strcmp(name, "height_cm")) out->slot = 1;
  else return 0;
  return 1;
}

int main(int argc, char **argv) {
  size_t rows = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 10000000;
  int reps = argc > 2 ? atoi(argv[2]) : 5;
  const size_t chunk = 65536;
  double *w = malloc(rows * sizeof *w), *h = malloc(rows * sizeof *h);
  double *out = malloc(rows * sizeof *out), *ref = malloc(rows * sizeof *ref);
  uint8_t *wv = malloc(rows), *ok = malloc(rows), *rok = malloc(rows);
  if (!w || !h || !out || !ref || !wv || !ok || !rok) return 70;
  uint64_t s = 1;
  for (size_t i = 0; i < rows; i++) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    w[i] = 40 + (double)((s >> 20) % 8000) / 100.0;
    h[i] = 140 + (double)((s >> 40) % 600) / 10.0;
    wv[i] = (s >> 10) % 20 != 0;
  }
  ms_diag d;
  ms_diag_init(&d);
  ms__expr_resolver r = {NULL, resolve, NULL, NULL};
  ms__expr *e = NULL;
  if (ms__expr_compile(&e, "weight_kg / (height_cm/100)^2", &r, NULL, &d) != MS_OK) return 70;
  ms__expr_scratch *sc = ms__expr_scratch_new();
  double best_e = 1e30, best_r = 1e30;
  for (int k = 0; k < reps; k++) {
    double t0 = now();
    for (size_t c = 0; c < rows; c += chunk) {
      size_t n = rows - c < chunk ? rows - c : chunk;
      ms__expr_col cols[2] = {{w + c, wv + c, NULL}, {h + c, NULL, NULL}};
      ms__expr_error err;
      if (ms__expr_eval(e, cols, 2, n, out + c, ok + c, sc, &err) != MS_OK) return 70;
    }
    double t1 = now();
    /* reference: the same semantics by hand */
    for (size_t i = 0; i < rows; i++) {
      double q = h[i] / 100.0;
      double v = w[i] / (q * q);
      int good = wv[i] && q != 0.0 && fabs(v) <= 1.7976931348623157e308;
      ref[i] = good ? v : 0.0;
      rok[i] = (uint8_t)good;
    }
    double t2 = now();
    if (t1 - t0 < best_e) best_e = t1 - t0;
    if (t2 - t1 < best_r) best_r = t2 - t1;
  }
  if (memcmp(out, ref, rows * sizeof *out) || memcmp(ok, rok, rows)) {
    fprintf(stderr, "bench_expr: evaluator and reference disagree\n");
    return 70;
  }
  printf("bench_expr: %zu rows, chunk %zu, best of %d, 1 thread\n", rows, chunk, reps);
  printf("  expr  weight_kg / (height_cm/100)^2: %.3f s  %.1f M rows/s  %.1f M ops/s\n", best_e,
         rows / best_e / 1e6, 3 * rows / best_e / 1e6);
  printf("  plain C loop (reference):           %.3f s  %.1f M rows/s  %.1f M ops/s\n", best_r,
         rows / best_r / 1e6, 3 * rows / best_r / 1e6);
  printf("  evaluator / reference time: %.2f\n", best_e / best_r);
  ms__expr_scratch_free(sc);
  ms__expr_free(e);
  ms_diag_deinit(&d);
  free(w);
  free(h);
  free(out);
  free(ref);
  free(wv);
  free(ok);
  free(rok);
  return 0;
}
