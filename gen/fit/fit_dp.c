/* DP numeric marginals (fit.c describes the whole fit and the accounting):
 * the fixed data-independent grids (log scale, calendar years), the noisy
 * range and in-range histogram read as a monotone CDF, and the
 * post-processing shared by the mechanisms (projection onto non-negative
 * counts, support, missing counts). docs/privacy.md derives each
 * sensitivity. Every draw is keyed by (seed, "fit/dp/<column>/<what>", bin). */
#include <cjson/cJSON.h>
#include "core/alloc.h"
#include "core/diag.h"
#include "core/json.h"
#include <errno.h>
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_eigen.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_sf_psi.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/pool.h"
#include "fit/fit_model.h"
#include "medsynth/fit.h"
#include "medsynth/rng.h"
#include "medsynth/table.h"
#include "medsynth/version.h"

/* ---- DP numeric marginal ---- */

double ms__fit_gauss(ms_rng_key k, uint64_t idx, double sigma) { return sigma * ms_rng_normal(k, idx, 0); }

/* Fixed log-scale grid: |v| < 1e-3 is the middle bin, then 2 bins per decade
 * from 1e-3 to 1e9 on each side (the outermost bins are open-ended). */
#define COARSE_PER_DECADE 2
#define COARSE_HALF (12 * COARSE_PER_DECADE)
#define COARSE_BINS (2 * COARSE_HALF + 1)
static int coarse_bin(double v) {
  double a = fabs(v);
  if (a < 1e-3) return COARSE_HALF;
  int j = (int)floor(COARSE_PER_DECADE * (log10(a) + 3));
  if (j < 0) j = 0;
  if (j > COARSE_HALF - 1) j = COARSE_HALF - 1;
  return v > 0 ? COARSE_HALF + 1 + j : COARSE_HALF - 1 - j;
}
static void coarse_edges(int b, double *lo, double *hi) {
  if (b == COARSE_HALF) {
    *lo = -1e-3, *hi = 1e-3;
    return;
  }
  int j = b > COARSE_HALF ? b - COARSE_HALF - 1 : COARSE_HALF - 1 - b;
  double a = pow(10, (double)j / COARSE_PER_DECADE - 3), c = pow(10, (double)(j + 1) / COARSE_PER_DECADE - 3);
  if (b > COARSE_HALF) *lo = a, *hi = c;
  else *lo = -c, *hi = -a;
}

/* A real column is generated at `decimals` decimals, so the released range
 * must hold a value with that many decimals (records rejects a spec whose
 * min..max holds none) and a constant must be one. The k-threshold range
 * always does: it spans the mean of the k smallest values to the mean of
 * the k largest, around the k-th smallest value, itself on the grid. The DP
 * range and constant come from histogram bin edges and need not: they move
 * onto the grid (post-processing of released values). */
static void dp_real_on_grid(fit_field *f) {
  if (f->kind != MS_FKIND_REAL) return;
  double s = pow(10, f->decimals);
  if (f->fam == FAM_CONSTANT) {
    f->par[0] = round(f->par[0] * s) / s;
    f->lo = f->hi = f->par[0];
  } else if (ceil(f->lo * s) > floor(f->hi * s)) {
    f->lo = floor(f->lo * s) / s;
    f->hi = ceil(f->hi * s) / s;
  }
}

/* min and max of a released quantile table qv[0..m): its ends, or for a
 * whole-number column the whole numbers its draws round to (records rounds
 * an integer draw to the nearest: a table from 1.07 holds the value 1, and
 * a min of ceil(1.07) = 2 would leave the draws below 1.5 without a value). */
static void whole_range(fit_field *f, int whole, size_t m) {
  f->lo = whole ? floor(f->qv[0] + 0.5) : f->qv[0];
  f->hi = whole ? ceil(f->qv[m - 1] - 0.5) : f->qv[m - 1];
}

/* Noisy counts made non-negative with the given total (post-processing):
 * when the positive counts add up to more than total, the Euclidean
 * projection onto {x >= 0, sum x = total}: x_b = max(c_b - t, 0), t > 0
 * chosen so they add up to total (bins of noise alone empty first); when
 * they add up to less, the positive counts scaled up to total (a bin at 0
 * stays 0). total <= 0 empties them all. */
ms_status ms__dp_project(double *c, size_t n, double total) {
  double pos = 0;
  for (size_t i = 0; i < n; i++) pos += c[i] > 0 ? c[i] : 0;
  if (!(total > 0) || pos <= total) {
    for (size_t i = 0; i < n; i++) c[i] = total > 0 && c[i] > 0 ? c[i] * total / pos : 0;
    return MS_OK;
  }
  double *s = ms__malloc(n * sizeof *s), t = 0, acc = 0;
  if (!s) return MS_ERR_NOMEM;
  memcpy(s, c, n * sizeof *s);
  qsort(s, n, sizeof *s, ms__fit_cmp_double);
  /* the k + 1 largest counts minus t add up to total, t below the next */
  for (size_t k = 0; k < n; k++) {
    acc += s[n - 1 - k];
    t = (acc - total) / (double)(k + 1);
    if (k + 1 == n || s[n - 2 - k] <= t) break;
  }
  free(s);
  for (size_t i = 0; i < n; i++) c[i] = c[i] > t ? c[i] - t : 0;
  return MS_OK;
}

/* The bins a histogram's data can be told to occupy (post-processing of
 * noisy counts of noise sd sigma). The core: the run of neighbouring bins
 * with the largest sum of (count - sigma), with neg_ends a negative count
 * ending a run (where the rows of the column add up) -- through a bin
 * above z sigma when there is one, z the level a bin of noise alone passes
 * with probability 0.1 % over all n bins, the best run of all kept beside
 * it when it outweighs it twice over -- and every bin above z sigma (a
 * second cluster). Then the bins of at least 2 sigma joined to the core
 * through neighbours of at least 2 sigma. Every other bin is set to 0.
 * cut (NULL: none): cut[i] set when no run goes on from bin i - 1 into bin
 * i (bins apart on the scale; the growth still joins them). */
ms_status ms__dp_support(double *c, size_t n, double sigma, const unsigned char *cut, int neg_ends) {
  if (!n) return MS_OK;
  double z = gsl_cdf_ugaussian_Qinv(0.001 / (double)n);
  /* a negative count (a bin that is surely empty) ends a run; when a bin
   * passes z sigma, the core is the best run through such a bin (a run of
   * noise bins must not outweigh the data's own peak) */
  size_t rlo = 0, rhi = 0, slo = 0, shi = 0;
  double best = -INFINITY, sbest = -INFINITY, run = 0;
  int sig = 0;
  for (size_t i = 0, start = 0; i < n; i++) {
    if (run <= 0 || (neg_ends && c[i] < 0) || (cut && cut[i])) run = 0, start = i, sig = 0;
    run += c[i] - sigma;
    sig |= c[i] >= z * sigma;
    if (run > best) best = run, rlo = start, rhi = i;
    if (sig && run > sbest) sbest = run, slo = start, shi = i;
  }
  /* the best run is kept beside the one through a peak when its sum is at
   * least twice the peak run's and z sigma (noise alone hardly gives it):
   * a code's 0 drawn above z sigma had stood for a column whose other 89 %
   * spread over six grid bins (gbsg's progesterone receptor, all written 0) */
  size_t xlo = 1, xhi = 0;
  if (sbest > -INFINITY) {
    if (best >= 2 * sbest && best >= z * sigma) xlo = rlo, xhi = rhi;
    rlo = slo, rhi = shi;
  }
  unsigned char *keep = ms__calloc(n, 1);
  if (!keep) return MS_ERR_NOMEM;
  for (size_t i = 0; i < n; i++)
    keep[i] = (((i >= rlo && i <= rhi) || (i >= xlo && i <= xhi)) && c[i] >= 0) || c[i] >= z * sigma;
  for (int grew = 1; grew;) {
    grew = 0;
    for (size_t i = 0; i < n; i++) {
      if (keep[i] || c[i] < 2 * sigma) continue;
      if ((i > 0 && keep[i - 1]) || (i + 1 < n && keep[i + 1])) keep[i] = 1, grew = 1;
    }
  }
  for (size_t i = 0; i < n; i++)
    if (!keep[i]) c[i] = 0;
  free(keep);
  return MS_OK;
}

/* A released missing count: below 3 sigma it cannot be told from a
 * complete column and is 0 (post-processing). */
double ms__dp_missing(double noisy, double sigma) { return noisy > 3 * sigma ? noisy : 0; }

#define FINE_MAX 64
/* A bin of a DP numeric histogram: values in [lo, hi). */
typedef struct {
  double lo, hi;
} dp_bin;

/* Dates under DP: a fixed grid of calendar years, DATE_Y0 to DATE_Y0 +
 * DATE_YEARS - 1 (the end years also hold the dates before and after). */
#define DATE_Y0 1850
#define DATE_YEARS 300
#define GRID_MAX DATE_YEARS
static int date_grid_bin(double v) {
  int y, m, d;
  ms_date_to_ymd((int32_t)floor(v), &y, &m, &d);
  y -= DATE_Y0;
  return y < 0 ? 0 : y >= DATE_YEARS ? DATE_YEARS - 1 : y;
}

/* An integer column's grid: the log grid's bins, a whole number n from 4
 * up counted in the bin of n - 1/2 (-4 down: of n + 1/2), so that each
 * bin ends on a round number: 0, 1-3, 4-10, 11-32, 33-100, 101-316, ... A
 * scale that ends at 10 or 100 (scores of 1-10, percentages) then ends
 * with a grid bin. Counted at n, its top value opened the next bin
 * (10-31), whose other numbers the noisy histogram could not tell empty:
 * R's biopsy at epsilon 1 drew 11-22 for a tenth of its 1-10 scores. 1
 * stays with 2 and 3: alone, the 6 % of 1s of a 0/1/2 status was a bin of
 * noise between 0 and 2, and the 1s and 2s were lost. */
static int whole_bin(double v) {
  return coarse_bin(fabs(v) < 4 ? v : v > 0 ? v - 0.5 : v + 0.5);
}
/* The grid bin of v: the log grid, the integer grid, or calendar years
 * for dates. */
static int grid_bin(ms_fkind kind, double v) {
  return kind == MS_FKIND_DATE ? date_grid_bin(v) : kind == MS_FKIND_INTEGER ? whole_bin(v) : coarse_bin(v);
}

/* The whole numbers of an integer column's grid bin g: [*m0, *m1]; 0 when
 * it holds none. */
static int grid_whole(int g, double *m0, double *m1) {
  double a, b;
  coarse_edges(g, &a, &b); /* whole_bin moves n by at most 1/2: start a number outside */
  *m0 = ceil(a) - 1;
  *m1 = floor(b) + 1;
  while (*m0 <= *m1 && whole_bin(*m0) != g) *m0 += 1;
  while (*m1 >= *m0 && whole_bin(*m1) != g) *m1 -= 1;
  return *m1 >= *m0;
}

/* Splits [a, b] into at most s bins of equal width; for whole-number kinds
 * (integers, dates; a, b the first and last whole number) with edges at
 * half-integers, so each bin holds whole numbers only. Returns the bins
 * written. */
static int split_span(dp_bin *out, double a, double b, int s, int whole) {
  if (whole) {
    double nw = b - a + 1;
    if (nw < 1) return 0;
    if (s > nw) s = (int)nw;
    for (int k = 0; k < s; k++) {
      out[k].lo = a - 0.5 + floor(nw * k / s);
      out[k].hi = a - 0.5 + floor(nw * (k + 1) / s);
    }
    return s;
  }
  for (int k = 0; k < s; k++) {
    out[k].lo = a + (b - a) * k / s;
    out[k].hi = k + 1 == s ? b : a + (b - a) * (k + 1) / s;
  }
  return s;
}

/* The bin of value v among nb sorted, disjoint bins; a value outside every
 * bin (outside the released range, or in a gap) counts in the nearest. */
static int bin_of(const dp_bin *bins, int nb, double v) {
  int lo = 0, hi = nb; /* the last bin with bins[k].lo <= v */
  while (hi - lo > 1) {
    int mid = (lo + hi) / 2;
    if (bins[mid].lo <= v) lo = mid;
    else hi = mid;
  }
  if (v >= bins[lo].hi && lo + 1 < nb && bins[lo + 1].lo - v < v - bins[lo].hi) return lo + 1;
  return lo;
}

/* A frequent value of a numeric column and its released (noisy) count. */
typedef struct {
  double v, w;
} dp_spike;
#define SPIKES_MAX 64

static int spike_cmp_w(const void *a, const void *b) {
  double x = ((const dp_spike *)a)->w, y = ((const dp_spike *)b)->w;
  return x > y ? -1 : x < y;
}
static int spike_cmp_v(const void *a, const void *b) {
  double x = ((const dp_spike *)a)->v, y = ((const dp_spike *)b)->v;
  return x < y ? -1 : x > y;
}

/* The index of v among the n sorted frequent values, -1 when it is none. */
static int spike_of(const dp_spike *sp, size_t n, double v) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (sp[mid].v < v) lo = mid + 1;
    else hi = mid;
  }
  return lo < n && sp[lo].v == v ? (int)lo : -1;
}

/* Frequent values: a Gaussian stability-based histogram over the values the
 * column holds (noise sd ss on each value's count, keyed by the value's
 * bits, so a value's noise does not depend on the other rows), a value
 * released when its noisy count reaches tau = 1 + ss z (z from the
 * thresholds' delta). One row changes one count: sensitivity 1; a value
 * held by one row alone passes with probability at most that delta's share.
 * At most SPIKES_MAX are kept, the largest noisy counts (post-processing),
 * sorted by value. */
static ms_status dp_frequent_values(const fit_field *f, const ms_frame_col *c, size_t n_rows, uint64_t seed,
                                    double ss, double tau, dp_spike *sp, size_t *n_sp) {
  size_t n = 0;
  double *v = ms__malloc((n_rows ? n_rows : 1) * sizeof *v);
  if (!v) return MS_ERR_NOMEM;
  for (size_t r = 0; r < n_rows; r++)
    if (!isnan(c->num[r])) v[n++] = c->num[r] == 0 ? 0 : c->num[r]; /* -0 counts as 0 */
  qsort(v, n, sizeof *v, ms__fit_cmp_double);
  ms_rng_key k = ms__fit_dp_key(seed, f->name, "frequent");
  dp_spike *all = NULL;
  size_t na = 0, cap = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && v[j] == v[i]) j++;
    uint64_t bits;
    memcpy(&bits, &v[i], sizeof bits);
    double w = (double)(j - i) + ms__fit_gauss(k, bits, ss);
    if (w >= tau) {
      if (na == cap) {
        dp_spike *g = ms__realloc(all, (cap = cap ? 2 * cap : 64) * sizeof *g);
        if (!g) {
          free(all), free(v);
          return MS_ERR_NOMEM;
        }
        all = g;
      }
      all[na].v = v[i], all[na++].w = w;
    }
    i = j;
  }
  free(v);
  if (na > SPIKES_MAX) qsort(all, na, sizeof *all, spike_cmp_w), na = SPIKES_MAX;
  if (na) memcpy(sp, all, na * sizeof *sp);
  free(all);
  qsort(sp, na, sizeof *sp, spike_cmp_v);
  *n_sp = na;
  return MS_OK;
}

/* The zoom's post-processing of one grid span's n noisy sub-bin counts c
 * (noise sd sz each; the span's released count w, noise sd sb; g scratch
 * of n): at group sizes gs = 1, 2, 4, ... n / 2 of sub-bins, the support
 * test (noise sd sz sqrt(gs)) gives the run of groups the rows occupy.
 * The finest gs whose run spans at most 1 / ZOOM_FILL of the span and,
 * widened by a quarter of its sub-bins each side, holds the span's rows
 * -- its noisy sum at least w less 2 sd of the two counts' difference,
 * that sd at most w / 6 so the test can tell a share of the rows missing
 * -- gives the widened run's first and last sub-bin (*lo, *hi) and is
 * returned; 0 when none does, -1 when out of memory.
 * - The widening: the support test ends a run where its groups sink below
 *   the noise, which cuts a bell's tails (sodium 139 +- 3 at 2,000 rows
 *   and epsilon 1 had its run end near 133 and 143, with 9 to 18 % of
 *   the rows outside).
 * - In the sum a group of the run below the support test's z level counts
 *   one sd less: the run may have grown through it for its positive draw
 *   alone, so its count is biased up (diabetes' s5, 309 rows over
 *   3.3-6.1, was narrowed at epsilon 4 to 4.76-5.09 by a run of six such
 *   groups). */
#define ZOOM_FILL 8
int ms__dp_zoom_run(const double *c, int n, double sz, double sb, double w, double *g, int *lo, int *hi) {
  for (int gs = 1; gs <= n / 2; gs *= 2) {
    const int ng = n / gs;
    int a = -1, b = -1;
    for (int j = 0; j < ng; j++) {
      g[j] = 0;
      for (int t = 0; t < gs; t++) g[j] += c[j * gs + t];
    }
    const double sg = sz * sqrt(gs), zg = gsl_cdf_ugaussian_Qinv(0.001 / ng);
    if (ms__dp_support(g, (size_t)ng, sg, NULL, 0)) return -1;
    for (int j = 0; j < ng; j++)
      if (g[j] > 0) b = j, a = a < 0 ? j : a;
    if (a < 0) continue;
    /* the run in sub-bins [s0, s1], widened to [w0, w1] */
    const int s0 = a * gs, s1 = (b + 1) * gs - 1, wid = (s1 - s0 + 1) / 4;
    const int w0 = s0 - wid < 0 ? 0 : s0 - wid, w1 = s1 + wid >= n ? n - 1 : s1 + wid;
    if (ZOOM_FILL * (s1 - s0 + 1) > n) continue;
    double in = 0;
    for (int j = a; j <= b; j++) {
      double cj = 0;
      for (int t = j * gs; t < (j + 1) * gs; t++) cj += c[t];
      in += cj >= zg * sg ? cj : cj - sg;
    }
    for (int t = w0; t < s0; t++) in += c[t];
    for (int t = s1 + 1; t <= w1; t++) in += c[t];
    const double sd = sqrt(sb * sb + (w1 - w0 + 1) * sz * sz);
    if (in < w - 2 * sd || 6 * sd > w) continue;
    *lo = w0, *hi = w1;
    return gs;
  }
  return 0;
}

/* The zoom: each kept grid span of released count w >= ZOOM_MIN_SD sz
 * (post-processing of the grid's counts; a whole-number span only when it
 * holds more than ZOOM_SUB numbers) is cut into ZOOM_SUB equal sub-bins,
 * counted once for all spans (one row is one sub-bin: L2 sensitivity 1)
 * with noise sd sz. Post-processing: the run ms__dp_zoom_run finds
 * narrows the span. Returns whether the sub-bins were measured (the
 * caller then spends their share), -1 when out of memory. */
#define ZOOM_SUB 256
#define ZOOM_MIN_SD 8
static int dp_zoom(const fit_field *f, const ms_frame_col *c, size_t n_rows, uint64_t seed, double sz, double sb,
                   int whole, double *span_lo, double *span_hi, double *span_w, int *n_span) {
  int zs[GRID_MAX], nz = 0;
  for (int q = 0; q < *n_span; q++)
    if (span_w[q] >= ZOOM_MIN_SD * sz && (!whole || span_hi[q] - span_lo[q] + 1 > ZOOM_SUB)) zs[nz++] = q;
  if (!nz) return 0;
  dp_bin *sub = ms__malloc((size_t)nz * ZOOM_SUB * sizeof *sub);
  double *cnt = ms__calloc((size_t)nz * ZOOM_SUB, sizeof *cnt), *g = ms__malloc(ZOOM_SUB * sizeof *g);
  if (!sub || !cnt || !g) {
    free(sub), free(cnt), free(g);
    return -1;
  }
  for (int i = 0; i < nz; i++) split_span(sub + (size_t)i * ZOOM_SUB, span_lo[zs[i]], span_hi[zs[i]], ZOOM_SUB, whole);
  for (size_t r = 0; r < n_rows; r++) {
    double v = c->num[r];
    if (isnan(v)) continue;
    for (int i = 0; i < nz; i++) {
      const dp_bin *s0 = sub + (size_t)i * ZOOM_SUB;
      if (v >= s0[0].lo && v < s0[ZOOM_SUB - 1].hi) {
        cnt[(size_t)i * ZOOM_SUB + (size_t)bin_of(s0, ZOOM_SUB, v)] += 1;
        break;
      }
    }
  }
  ms_rng_key k = ms__fit_dp_key(seed, f->name, "zoom");
  for (size_t b = 0; b < (size_t)nz * ZOOM_SUB; b++) cnt[b] += ms__fit_gauss(k, (uint64_t)b, sz);
  for (int i = 0; i < nz; i++) {
    const double *c0 = cnt + (size_t)i * ZOOM_SUB, w = span_w[zs[i]];
    const dp_bin *s0 = sub + (size_t)i * ZOOM_SUB;
    int lo, hi;
    const int gs = ms__dp_zoom_run(c0, ZOOM_SUB, sz, sb, w, g, &lo, &hi);
    if (gs < 0) {
      free(sub), free(cnt), free(g);
      return -1;
    }
    if (gs) {
      span_lo[zs[i]] = s0[lo].lo + (whole ? 0.5 : 0);
      span_hi[zs[i]] = s0[hi].hi - (whole ? 0.5 : 0);
    }
  }
  free(sub), free(cnt), free(g);
  /* A span below 3 sd kept by the support test's growth next to rows that
   * the zoom has since placed away from it touches no other span now: it
   * held noise (mgus2's diagnosis years at epsilon 1 had 5 % in 320-630). */
  int m = 0;
  for (int q = 0; q < *n_span; q++) {
    int touch = (q > 0 && span_lo[q] - span_hi[q - 1] <= (whole ? 1 : 0)) ||
                (q + 1 < *n_span && span_lo[q + 1] - span_hi[q] <= (whole ? 1 : 0));
    if (span_w[q] < 3 * sb && !touch && *n_span > 1) continue;
    span_lo[m] = span_lo[q], span_hi[m] = span_hi[q], span_w[m++] = span_w[q];
  }
  *n_span = m;
  return 1;
}

/* Appends knot (x, p) to f's quantile table, p raised to 1e-6 above the
 * previous knot's when it is not at least 5e-7 above it: probabilities
 * strictly increase also as the spec writes them (a knot at prev + 1e-6
 * and one at the six-digit rounding of the same probability can differ by
 * one unit in the last place, and both print as the same number: a spec
 * the loader refuses, as bench_fit's table at epsilon 1 gave at two fit
 * seeds of twenty). */
static void push_knot(fit_field *f, size_t *m, double x, double p) {
  if (*m && p < f->qp[*m - 1] + 5e-7) p = f->qp[*m - 1] + 1e-6;
  f->qp[*m] = p;
  f->qv[(*m)++] = x;
}

/* The decimals a real column is written with, under DP: the rule without
 * noise (fit.c's usual_decimals: the fewest that write at least 80 % of
 * the values exactly) read from a Gaussian histogram of each value's
 * fewest decimals over the public domain 0..9. One row changes one count:
 * L2 sensitivity 1, sigma = 1 / sqrt(2 rho_d). dp_decimals measures it
 * (into noisy); dp_decimals_choose (post-processing) takes the first d
 * whose noisy cumulative count, less 1 sd of that sum's noise, reaches
 * 80 % of the column's present rows -- the row count pooled over every
 * column when known (a far less noisy total than the sum of the ten
 * counts, whose noise had sent mgus2's creatinine, all at 1 decimal, to 2
 * in one fit of three: a classifier told that column apart with AUC 0.95),
 * else that sum; when no d does (a column too small for its share) the
 * column keeps the decimals read with the schema (nor does it ever get
 * more than those). Writing at more decimals than the data use puts the
 * synthetic values off the grid the real ones pile up on, which a
 * classifier sees at once. */
#define DEC_N (MS_FRAME_DECIMALS_MAX + 1)
static void dp_decimals(fit_field *f, const ms_frame_col *c, size_t n_rows, uint64_t seed, double rho_d,
                        double *noisy) {
  size_t cnt[DEC_N];
  ms__fit_decimal_counts(c, n_rows, cnt);
  double s = 1 / sqrt(2 * rho_d);
  ms_rng_key k = ms__fit_dp_key(seed, f->name, "decimals");
  for (int d = 0; d < DEC_N; d++) noisy[d] = (double)cnt[d] + ms__fit_gauss(k, (uint64_t)d, s);
  f->dec_sigma = s;
}
static void dp_decimals_choose(fit_field *f, const double *noisy, int dec_max, double present_hat) {
  double total = 0, acc = 0, s = f->dec_sigma;
  for (int d = 0; d < DEC_N; d++) total += noisy[d];
  if (present_hat > 0) total = present_hat;
  f->decimals = dec_max;
  for (int d = 0; d < MS_FRAME_DECIMALS_MAX && total > 0; d++) {
    acc += noisy[d];
    if (acc - s * sqrt(d + 1.0) >= 0.8 * total) {
      if (d < dec_max) f->decimals = d; /* never more than the schema's */
      return;
    }
  }
}

/* What a DP numeric column's measurement released, kept for its
 * post-processing (ms__fit_numeric_dp_shape), which the fit runs twice:
 * with the column's own noisy total, then with the row count pooled over
 * every column. */
struct ms__dp_num {
  int nb, n_span, smooth;
  size_t n_sp;
  double sigma, sb;  /* noise sd of the fine counts and of the grid's */
  dp_bin *bins;      /* nb fine bins */
  double *cnt;       /* their nb noisy counts, then the missing count's */
  int *span_of;      /* the span (kept grid bin or the bounds) of each bin */
  double *span_w;    /* each span's released count */
  dp_spike sp[SPIKES_MAX]; /* the released frequent values, by value */
  int dec_max;               /* a real column's decimals read with the schema, */
  double dec_noisy[DEC_N];   /* and its noisy histogram of decimals */
};

void ms__dp_num_free(ms__dp_num *m) {
  if (!m) return;
  free(m->bins);
  free(m->cnt);
  free(m->span_of);
  free(m->span_w);
  free(m);
}

/* rho: this column's zCDP share. Releases, through Gaussian histograms of
 * L2 sensitivity 1 each, a real column's decimals (an eighth of rho, set
 * in f), the grid bins the column occupies (unless its bounds are
 * declared), its frequent values when the noisy total allows, then a
 * histogram of finer bins inside the grid bins, into *out (freed with
 * ms__dp_num_free); everything after that is post-processing
 * (ms__fit_numeric_dp_shape). *clamped: rows outside declared bounds. */
ms_status ms__fit_numeric_dp(fit_field *f, const ms_frame_col *c, size_t n_rows, const ms_fit_params *p,
                             double rho, double z_thr, ms__dp_num **out, size_t *clamped) {
  *out = NULL;
  const int dec_max = f->decimals;
  double dec_noisy[DEC_N];
  if (f->kind == MS_FKIND_REAL) { /* an eighth of the share buys the decimals */
    dp_decimals(f, c, n_rows, p->seed, rho / 8, dec_noisy); /* chosen in the shape pass */
    rho -= rho / 8;
  }
  double blo = NAN, bhi = NAN, rho_h = rho, n_hat = NAN, sb = NAN;
  dp_spike sp[SPIKES_MAX];
  size_t n_sp = 0;
  const int whole = f->kind == MS_FKIND_INTEGER || f->kind == MS_FKIND_DATE;
  size_t bi = ms__fit_bound_of(p, c->name);
  if (bi != SIZE_MAX) blo = p->bound_lo[bi], bhi = p->bound_hi[bi];
  /* Spans to cut into fine bins: the declared bounds, or the grid bins
   * kept by the support test with their released counts. */
  int n_span = 0;
  const int dates = f->kind == MS_FKIND_DATE;
  double span_lo[GRID_MAX], span_hi[GRID_MAX], span_w[GRID_MAX];
  if (isnan(blo)) {
    const int G = dates ? DATE_YEARS : COARSE_BINS;
    double rho_b = rho / 2;
    sb = 1 / sqrt(2 * rho_b);
    rho_h = rho - rho_b;
    double cnt[GRID_MAX] = {0};
    for (size_t r = 0; r < n_rows; r++)
      if (!isnan(c->num[r])) cnt[grid_bin(f->kind, c->num[r])] += 1;
    ms_rng_key k = ms__fit_dp_key(p->seed, f->name, "range");
    /* An integer column's values lie only in the grid bins that hold a
     * whole number (0, then 1-3, 4-10, ...; none between 0.001 and 1): the
     * other bins are left out (their counts are noise alone, known from
     * the kind). Kept, they parted 0 from 1 by six bins of noise: the
     * support test's growth (a bin of 2 sigma next to a kept one) could
     * not reach 1-3 from 0, and a 0/1/2 code whose core run was 0 lost
     * every value from 1 up (pbc's status under AIM at epsilon 1 came out
     * all 0). The core run still does not go from 0 into 1-3 (a cut): a
     * zero bin of noise alone would then join the run of a column of 1-10
     * scores and spoil its shape. */
    int live[GRID_MAX], n_live = 0;
    double lc[GRID_MAX];
    unsigned char cut[GRID_MAX] = {0};
    n_hat = 0;
    for (int b = 0; b < G; b++) {
      double a0, a1;
      cnt[b] += ms__fit_gauss(k, (uint64_t)b, sb);
      if (f->kind == MS_FKIND_INTEGER && !grid_whole(b, &a0, &a1)) {
        cnt[b] = 0;
        continue;
      }
      cut[n_live] = n_live > 0 && (b == COARSE_HALF || live[n_live - 1] == COARSE_HALF);
      lc[n_live] = cnt[b], live[n_live++] = b;
      n_hat += cnt[b];
    }
    if (ms__dp_support(lc, (size_t)n_live, sb, f->kind == MS_FKIND_INTEGER ? cut : NULL, 1)) return MS_ERR_NOMEM;
    for (int i = 0; i < n_live; i++) cnt[live[i]] = lc[i];
    for (int g = 0; g < G; g++) {
      if (cnt[g] <= 0) continue;
      double a, b;
      if (dates) {
        a = ms_date_from_ymd(DATE_Y0 + g, 1, 1);
        b = ms_date_from_ymd(DATE_Y0 + g + 1, 1, 1) - 1;
      } else if (whole ? !grid_whole(g, &a, &b) : (coarse_edges(g, &a, &b), 0)) {
        continue;
      }
      span_lo[n_span] = a, span_hi[n_span] = b, span_w[n_span++] = cnt[g];
    }
    if (!n_span) { /* no bin passed: the noisy mode (post-processing) */
      span_lo[0] = whole ? 0 : -1e-3, span_hi[0] = whole ? 0 : 1e-3, span_w[0] = 1, n_span = 1;
    }
  } else {
    if (whole) blo = ceil(blo), bhi = floor(bhi);
    if (f->kind == MS_FKIND_DATE) {
      /* dates a spec can write: years 1 to 9999 */
      blo = fmax(blo, ms_date_from_ymd(1, 1, 1));
      bhi = fmin(bhi, ms_date_from_ymd(9999, 12, 31));
    }
    if (!(bhi >= blo)) bhi = blo;
    span_lo[0] = blo, span_hi[0] = bhi, span_w[0] = 1, n_span = 1;
  }
  /* The zoom (docs/privacy.md, "Numeric column"): a grid bin half a
   * decade wide may hold a column that fills a sliver of it (calendar
   * years in 1000-3162, sodium in 100-316, pH in 3.16-10); a quarter of
   * the histogram's share then finds the sub-range the rows occupy. */
  if (isnan(blo) && !dates) {
    double rho_z = rho_h / 4;
    int zoomed = dp_zoom(f, c, n_rows, p->seed, 1 / sqrt(2 * rho_z), sb, whole, span_lo, span_hi, span_w, &n_span);
    if (zoomed < 0) return MS_ERR_NOMEM;
    if (zoomed) rho_h -= rho_z;
  }
  double sigma = 1 / sqrt(2 * rho_h);
  f->sigma = sigma;
  /* Fine bins: about 4 sigma of expected count each when a noisy row count
   * is known (post-processing of the grid histogram), else 32, shared among
   * the spans by their released counts. */
  int B = 32, smooth = 0, span_of[4 * GRID_MAX + FINE_MAX];
  if (isfinite(n_hat)) {
    double want = n_hat / (4 * sigma);
    B = want < 4 ? 4 : want > FINE_MAX ? FINE_MAX : (int)want;
    if ((smooth = !dates && want < MS__DP_SMOOTH_BINS)) B = MS__DP_SMOOTH_BINS; /* a smooth shape is tried */
  }
  /* Frequent values: when a value held by a twentieth of the rows could
   * pass the threshold (a decision on the noisy total, post-processing),
   * half of the histogram's share buys them and the histogram the rest. */
  if (!smooth && isfinite(n_hat) && z_thr > 0 && !dates) {
    double rho_s = rho_h / 2, ss = 1 / sqrt(2 * rho_s), tau = 1 + ss * z_thr;
    if (tau <= n_hat / 20) {
      ms_status st = dp_frequent_values(f, c, n_rows, p->seed, ss, tau, sp, &n_sp);
      if (st) return st;
      rho_h -= rho_s;
      sigma = 1 / sqrt(2 * rho_h);
      f->sigma = sigma;
      f->spike_sigma = ss;
      /* the histogram holds the other rows: its bins from their noisy
       * count, each span's weight less the frequent values inside it */
      double rest = n_hat;
      for (size_t i = 0; i < n_sp; i++) {
        rest -= sp[i].w;
        for (int q = 0; q < n_span; q++)
          if (sp[i].v >= span_lo[q] - (whole ? 0.5 : 0) && sp[i].v <= span_hi[q] + (whole ? 0.5 : 0)) {
            span_w[q] -= sp[i].w;
            break;
          }
      }
      for (int q = 0; q < n_span; q++) span_w[q] = fmax(span_w[q], sigma);
      double want = rest / (4 * sigma);
      B = want < 4 ? 4 : want > FINE_MAX ? FINE_MAX : (int)want;
    }
  }
  double wsum = 0;
  for (int i = 0; i < n_span; i++) wsum += span_w[i];
  dp_bin bins[4 * GRID_MAX + FINE_MAX];
  int nb = 0;
  for (int i = 0; i < n_span; i++) {
    /* at least 4 per span of the log grid: a few rows at the edge of a
     * grid bin half a decade wide are then not spread over all of it (bins
     * of noise alone are emptied); a calendar year may be one bin */
    int sk = (int)floor(B * span_w[i] / wsum + 0.5), least = dates && isnan(blo) ? 1 : 4;
    int nb0 = nb;
    nb += split_span(bins + nb, span_lo[i], span_hi[i], sk < least ? least : sk, whole);
    while (nb0 < nb) span_of[nb0++] = i;
  }
  if (!nb) { /* a real span of width 0 cannot occur; whole spans hold a number */
    bins[0].lo = span_lo[0] - 0.5, bins[0].hi = span_lo[0] + 0.5, nb = 1;
  }
  double cnt[4 * GRID_MAX + FINE_MAX + 1] = {0}; /* cnt[nb]: missing */
  for (size_t r = 0; r < n_rows; r++) {
    double v = c->num[r];
    if (isnan(v)) {
      cnt[nb] += 1;
      continue;
    }
    *clamped += !isnan(blo) && (v < blo || v > bhi);
    if (n_sp && spike_of(sp, n_sp, v) >= 0) continue;
    cnt[bin_of(bins, nb, v)] += 1;
  }
  ms_rng_key k = ms__fit_dp_key(p->seed, f->name, "histogram");
  for (int b = 0; b <= nb; b++) cnt[b] += ms__fit_gauss(k, (uint64_t)b, sigma);
  ms__dp_num *m = ms__calloc(1, sizeof *m);
  if (!m) return MS_ERR_NOMEM;
  m->nb = nb, m->n_span = n_span, m->smooth = smooth, m->n_sp = n_sp;
  m->sigma = sigma, m->sb = sb;
  m->bins = ms__malloc((size_t)nb * sizeof *m->bins);
  m->cnt = ms__malloc(((size_t)nb + 1) * sizeof *m->cnt);
  m->span_of = ms__malloc((size_t)nb * sizeof *m->span_of);
  m->span_w = ms__malloc((size_t)n_span * sizeof *m->span_w);
  if (!m->bins || !m->cnt || !m->span_of || !m->span_w) {
    ms__dp_num_free(m);
    return MS_ERR_NOMEM;
  }
  memcpy(m->bins, bins, (size_t)nb * sizeof *bins);
  memcpy(m->cnt, cnt, ((size_t)nb + 1) * sizeof *cnt);
  memcpy(m->span_of, span_of, (size_t)nb * sizeof *span_of);
  memcpy(m->span_w, span_w, (size_t)n_span * sizeof *span_w);
  if (n_sp) memcpy(m->sp, sp, n_sp * sizeof *sp);
  m->dec_max = dec_max;
  if (f->kind == MS_FKIND_REAL) memcpy(m->dec_noisy, dec_noisy, sizeof dec_noisy);
  *out = m;
  return MS_OK;
}

/* The fine bins of a column whose spans are grid bins the support test
 * kept (post-processing): the rows are known to lie in those spans, each
 * with a released count (span_w, noise sd sb) and its fine bins' own
 * noisy counts (noise sd sigma each). Each span's rows are estimated from
 * both (inverse-variance weights), its fine bins projected onto
 * non-negative counts with that total (ms__dp_project: bins of noise alone
 * empty first), and every bin scaled so they add up to target. A span
 * keeps its share even when each of its fine bins is small against the
 * noise (the tail of a column): a support test run over the fine bins cut
 * such tails off (colon's follow-up times at epsilon 1 started at 262
 * days for a real 9; the grid bin of 100-316 days, about 125 rows, had
 * kept 70). */
static ms_status span_project(double *sm, const ms__dp_num *rel, double target) {
  const double vg = rel->sb * rel->sb, vf = rel->sigma * rel->sigma;
  double t[GRID_MAX], sd[GRID_MAX], sum = 0; /* each span's estimate and its sd */
  int best = rel->span_of[0];
  for (int b0 = 0, b1; b0 < rel->nb; b0 = b1) {
    int q = rel->span_of[b0];
    double s = 0;
    for (b1 = b0; b1 < rel->nb && rel->span_of[b1] == q; b1++) s += sm[b1];
    const double k = b1 - b0, var = 1 / (1 / vg + 1 / (k * vf));
    t[q] = (rel->span_w[q] / vg + s / (k * vf)) * var, sd[q] = sqrt(var);
    if (t[q] > t[best]) best = q;
  }
  for (int b0 = 0, b1; b0 < rel->nb; b0 = b1) {
    int q = rel->span_of[b0];
    b1 = b0;
    while (b1 < rel->nb && rel->span_of[b1] == q) b1++;
    /* a span whose estimate cannot be told from 0 (the grid's support
     * test keeps a bin of noise next to the rows now and then) is empty,
     * unless it is the largest */
    if (t[q] < 2 * sd[q] && q != best) {
      for (int b = b0; b < b1; b++) sm[b] = 0;
      continue;
    }
    if (ms__dp_project(sm + b0, (size_t)(b1 - b0), t[q])) return MS_ERR_NOMEM;
    for (int b = b0; b < b1; b++) sum += sm[b];
  }
  for (int b = 0; b < rel->nb; b++) sm[b] = sum > 0 ? sm[b] * target / sum : 0;
  return MS_OK;
}

/* The post-processing of a DP numeric column's release rel into f's
 * marginal (family, quantile table, range, missing share, noisy total).
 * present_hat (> 0 when known): the column's present rows estimated from
 * the row count pooled over every column (fit.c), less noisy than the sum
 * of its own bins; it scales the histogram or the smooth shape. */
ms_status ms__fit_numeric_dp_shape(fit_field *f, const ms__dp_num *rel, double present_hat, double *noisy_total) {
  const int nb = rel->nb, smooth = rel->smooth, whole = f->kind == MS_FKIND_INTEGER || f->kind == MS_FKIND_DATE;
  const size_t n_sp = rel->n_sp;
  const dp_bin *bins = rel->bins;
  const double *cnt = rel->cnt, sigma = rel->sigma;
  const dp_spike *sp = rel->sp;
  free(f->qp), free(f->qv), f->qp = f->qv = NULL;
  f->nq = f->n_spikes = 0;
  if (f->kind == MS_FKIND_REAL) dp_decimals_choose(f, rel->dec_noisy, rel->dec_max, present_hat);
  /* Post-processing: the support test (declared bounds) or each kept grid
   * bin's estimate (span_project), then the counts projected onto
   * non-negative counts with the same (unbiased) total, which empties the
   * bins that hold noise alone instead of keeping their positive draws
   * (clamping at 0 adds about 0.4 sigma of mass to every empty bin and
   * spreads the column over its whole range); a missing count below 3 sigma
   * is released as 0, so a complete column stays complete. */
  double sm[4 * GRID_MAX + FINE_MAX], present = 0;
  for (int b = 0; b < nb; b++) present += sm[b] = cnt[b];
  if (smooth) {
    double e0[4 * GRID_MAX + FINE_MAX], e1[4 * GRID_MAX + FINE_MAX];
    for (int b = 0; b < nb; b++) e0[b] = bins[b].lo, e1[b] = bins[b].hi;
    f->qp = ms__malloc(MS__DP_SMOOTH_KNOTS * sizeof *f->qp);
    f->qv = ms__malloc(MS__DP_SMOOTH_KNOTS * sizeof *f->qv);
    if (!f->qp || !f->qv) return MS_ERR_NOMEM;
    int shaped = ms__dp_smooth_shape(e0, e1, cnt, (size_t)nb, sigma, rel->span_of, rel->span_w,
                                     (size_t)rel->n_span, rel->sb, present_hat, f->qp, f->qv, MS__DP_SMOOTH_KNOTS);
    if (shaped < 0) return MS_ERR_NOMEM;
    if (shaped) {
      double missing = ms__dp_missing(cnt[nb], sigma);
      *noisy_total = present + missing;
      f->n_total = present + cnt[nb], f->total_var = sigma * sigma * (nb + 1), f->miss_count = missing;
      f->missing = ms__fit_sig6(present + missing > 0 ? missing / (present + missing) : 0);
      f->fam = FAM_QUANTILES, f->nq = MS__DP_SMOOTH_KNOTS;
      for (size_t j = 0; j < f->nq; j++) f->qp[j] = ms__fit_sig6(f->qp[j]), f->qv[j] = ms__fit_sig6(f->qv[j]);
      whole_range(f, whole, f->nq);
      if (f->lo > f->hi || f->qv[f->nq - 1] <= f->qv[0]) { /* a law narrower than one whole number */
        f->fam = FAM_CONSTANT;
        f->par[0] = whole ? round(f->qv[f->nq / 2]) : f->qv[f->nq / 2];
        f->lo = f->hi = f->par[0];
      }
      dp_real_on_grid(f);
      return MS_OK;
    }
    free(f->qp), free(f->qv), f->qp = f->qv = NULL;
  }
  double missing = ms__dp_missing(cnt[nb], sigma), spiked = 0, own = present;
  for (size_t i = 0; i < n_sp; i++) spiked += sp[i].w;
  /* the bins hold the present rows less the frequent values' */
  double target = present_hat > 0 ? fmax(present_hat - spiked, 0) : present;
  /* With declared bounds (one span, its fine bins neighbours) where in
   * them the rows lie is unknown: the support test, in which a negative
   * count does not end the core run (the rows are known to lie in the
   * bounds, and a fine bin of a few rows may draw one). */
  if (isnan(rel->sb)) {
    if (ms__dp_support(sm, (size_t)nb, sigma, NULL, 0) || ms__dp_project(sm, (size_t)nb, target)) return MS_ERR_NOMEM;
  } else if (span_project(sm, rel, target)) {
    return MS_ERR_NOMEM;
  }
  present = 0;
  for (int b = 0; b < nb; b++) present += sm[b];
  *noisy_total = own + spiked + missing;
  f->n_total = own + spiked + cnt[nb];
  f->total_var = sigma * sigma * (nb + 1) + (f->spike_sigma * f->spike_sigma) * (double)n_sp;
  f->miss_count = missing;
  f->missing = ms__fit_sig6(*noisy_total > 0 ? missing / *noisy_total : 0);
  f->n_spikes = n_sp;
  int first = 0, last = nb - 1;
  while (first < nb && sm[first] <= 0) first++;
  while (last >= 0 && sm[last] <= 0) last--;
  if ((present <= 0 || first > last) && !n_sp) {
    f->fam = FAM_CONSTANT;
    int mid = nb / 2;
    f->par[0] = ms__fit_sig6((bins[mid].lo + bins[mid].hi) / 2);
    if (whole) f->par[0] = round(f->par[0]);
    f->lo = f->hi = f->par[0];
    dp_real_on_grid(f);
    return MS_OK;
  }
  if (present <= 0) present = 0, first = nb, last = -1;
  /* The quantile table is the CDF of the projected histogram (piecewise
   * linear inside a bin, as the counts say) plus the frequent values' point
   * masses: a knot at each edge of a non-empty bin, two at a frequent value
   * (the CDF just below it and just above it), a gap between non-empty bins
   * kept as a step of 1e-6 in probability, so no share of the column is
   * spread over an empty stretch of the range as fewer knots interpolated
   * over it would. */
  size_t m = 0, cap = 2 * (size_t)nb + 2 * n_sp + 2;
  f->qp = ms__malloc(cap * sizeof *f->qp);
  f->qv = ms__malloc(cap * sizeof *f->qv);
  if (!f->qp || !f->qv) return MS_ERR_NOMEM;
  f->fam = FAM_QUANTILES;
  const double total = present + spiked;
  double acc = 0; /* mass below the current point */
  size_t si = 0;
  int b = first;
  for (;;) {
    /* the next point: a bin's lower edge, a frequent value, or the upper
     * edge of the bin being crossed */
    while (b <= last && sm[b] <= 0) b++;
    double e = b <= last ? ms__fit_sig6(bins[b].lo) : INFINITY;
    if (si < n_sp && sp[si].v < e) {
      double x = sp[si].v;
      if (!m || x > f->qv[m - 1]) push_knot(f, &m, x, m ? fmax(f->qp[m - 1] + 1e-6, ms__fit_sig6(acc / total)) : 0);
      acc += sp[si++].w;
      push_knot(f, &m, x, ms__fit_sig6(acc / total));
      continue;
    }
    if (b > last) break;
    /* bin b: its lower edge, the frequent values inside it, its upper edge
     * (the last knot's probability is set to 1 below) */
    double e0 = bins[b].lo, e1 = bins[b].hi, w = e1 - e0, done = 0;
    if (!m || ms__fit_sig6(e0) > f->qv[m - 1]) push_knot(f, &m, ms__fit_sig6(e0), m ? f->qp[m - 1] + 1e-6 : 0);
    for (; si < n_sp && sp[si].v < e1; si++) {
      double x = sp[si].v, part = w > 0 ? sm[b] * (x - e0) / w : 0;
      acc += part - done, done = part;
      if (x > f->qv[m - 1]) push_knot(f, &m, x, ms__fit_sig6(acc / total));
      acc += sp[si].w;
      push_knot(f, &m, x, ms__fit_sig6(acc / total));
    }
    acc += sm[b] - done;
    push_knot(f, &m, fmax(ms__fit_sig6(e1), f->qv[m - 1]), ms__fit_sig6(acc / total));
    b++;
  }
  if (m) f->qp[m - 1] = 1;
  /* the last knot is probability 1: earlier ones bumped up to it go */
  while (m > 2 && f->qp[m - 2] >= 1) {
    f->qv[m - 2] = f->qv[m - 1];
    m--;
  }
  f->nq = m;
  whole_range(f, whole, m);
  f->lo = ms__fit_sig6(f->lo), f->hi = ms__fit_sig6(f->hi);
  if (m < 2 || f->qv[m - 1] <= f->qv[0]) {
    f->fam = FAM_CONSTANT;
    f->par[0] = whole ? round(f->qv[0]) : f->qv[0];
    f->lo = f->hi = f->par[0];
  }
  dp_real_on_grid(f);
  return MS_OK;
}

