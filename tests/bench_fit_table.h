/* The table tests/bench/bench_fit.c fits (and test_fit's check that every
 * DP fit of it loads): 24 numbers driven by 4 latent normal factors (every
 * third a whole number 50 + 10 v, every third a lognormal at 2 decimals,
 * the rest at 3 decimals), 4 labels whose level grows with a factor's size,
 * a bool tied to the first factor and an independent one. Row i of the
 * CSV, its draws keyed by k. */
#ifndef MS_TESTS_BENCH_FIT_TABLE_H
#define MS_TESTS_BENCH_FIT_TABLE_H

#include <math.h>
#include <stdio.h>
#include "medsynth/rng.h"

#define MS_BENCH_FIT_HEADER                                                                                  \
  "x00,x01,x02,x03,x04,x05,x06,x07,x08,x09,x10,x11,x12,x13,x14,x15,x16,x17,x18,x19,x20,x21,x22,x23,c0,c1,c2," \
  "c3,b0,b1"

static inline void ms_bench_fit_row(FILE *fp, ms_rng_key k, size_t i) {
  static const char *lv[] = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta"};
  double f[4];
  for (int q = 0; q < 4; q++) f[q] = ms_rng_normal(k, i, (uint64_t)q);
  for (int j = 0; j < 24; j++) {
    double v = 0.8 * f[j % 4] + 0.6 * ms_rng_normal(k, i, 10 + (uint64_t)j);
    if (j % 3 == 0) fprintf(fp, "%.0f,", 50 + 10 * v);
    else if (j % 3 == 1) fprintf(fp, "%.2f,", exp(0.3 * v + 1));
    else fprintf(fp, "%.3f,", v);
  }
  for (int c = 0; c < 4; c++) {
    int l = (int)floor(fabs(f[c]) * 2 + ms_rng_uniform(k, i, 40 + (uint64_t)c));
    fprintf(fp, "%s,", lv[l > 5 ? 5 : l]);
  }
  fprintf(fp, "%d,%d\n", f[0] + ms_rng_normal(k, i, 50) > 0.5, ms_rng_uniform(k, i, 51) < 0.2);
}

#endif
