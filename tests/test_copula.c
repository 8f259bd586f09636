/* Categorical and bool fields in Gaussian-copula correlation groups
 * (docs/spec.md, Correlations): exact marginals (weights, `when` overrides,
 * probabilities given by formulas, missingness after the draw), the latent
 * correlation implied by the matrix (cell probabilities of two ordinal
 * fields from the bivariate normal, point-biserial and normal-scores
 * correlations), orientation (higher latent normal = later label / true),
 * fields outside groups untouched, reproducibility across threads, chunks and
 * shards, and the validation messages for fields that cannot be correlated.
 *
 * Statistical tests use fixed seeds and N = 100,000 rows; every tolerance is
 * 5 standard errors derived from N (two-sided p ~ 6e-7 per check).
 *
 * Expected values: a group member with cumulative weights F_1 < ... < F_K = 1
 * takes label i when Phi^-1(F_{i-1}) < z <= Phi^-1(F_i); a bool with
 * probability p is true when z > Phi^-1(1 - p), i.e. an ordinal field with
 * labels (false, true). The probability of a cell (i, j) of two members with
 * latent correlation rho is the bivariate normal mass of the rectangle of
 * their thresholds, Phi2 computed by quadrature of
 *   Phi2(h, k; rho) = int_{-inf}^{h} phi(x) Phi((k - rho x) / sqrt(1 - rho^2)) dx.
 * The normal score of label i is E[Z | label i] =
 * (phi(a_{i-1}) - phi(a_i)) / p_i (the scoring `medsynth fit` uses).
 *
 * ctest-labels: unit */
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "medsynth/records.h"
#include "spec_helpers.h"

/* ---- helpers ---------------------------------------------------------------- */

typedef gen_opts run_opts;

static void run(const ms_spec *s, const run_opts *ro, memsink *m) {
  assert_int_equal(gen_run(s, ro, m, NULL, NULL), MS_OK);
}

/* Label index of a categorical cell (its position in the field's labels). */
static int code(const memtable *t, size_t j, size_t r) {
  return ((const int32_t *)t->data[j])[r];
}

#define assert_close_se(obs, exp, se)                                                      \
  do {                                                                                     \
    double o_ = (obs), e_ = (exp), s_ = (se);                                              \
    if (!(fabs(o_ - e_) <= 5 * s_)) {                                                      \
      print_error("%s = %.6g, expected %.6g +- 5 x %.3g\n", #obs, o_, e_, s_);             \
      fail();                                                                              \
    }                                                                                      \
  } while (0)

static double phi(double x) { return isinf(x) ? 0.0 : exp(-0.5 * x * x) / sqrt(2 * M_PI); }

/* Bivariate standard normal CDF P(X <= h, Y <= k) with correlation rho,
 * |rho| < 1, by composite Simpson quadrature over x in [-10, h] (the mass
 * below -10 is < 1e-23); accurate to ~1e-10, far below the tolerances. */
static double phi2(double h, double k, double rho) {
  if (h == -INFINITY || k == -INFINITY) return 0.0;
  if (h == INFINITY) return gsl_cdf_ugaussian_P(k);
  if (k == INFINITY) return gsl_cdf_ugaussian_P(h);
  if (h > 10) h = 10;
  if (h <= -10) return 0.0;
  double s = sqrt(1 - rho * rho);
  int n = 8000; /* even */
  double a = -10, step = (h - a) / n, acc = 0;
  for (int i = 0; i <= n; i++) {
    double x = a + i * step;
    double f = phi(x) * gsl_cdf_ugaussian_P((k - rho * x) / s);
    acc += f * (i == 0 || i == n ? 1 : (i % 2 ? 4 : 2));
  }
  return acc * step / 3;
}

/* Latent thresholds of an ordinal member: a[0] = -inf, a[i] = Phi^-1(F_i),
 * a[K] = +inf, from weights w[0..K). */
static void thresholds(const double *w, int K, double *a) {
  double tot = 0, acc = 0;
  for (int i = 0; i < K; i++) tot += w[i];
  a[0] = -INFINITY;
  for (int i = 1; i < K; i++) {
    acc += w[i - 1] / tot;
    a[i] = gsl_cdf_ugaussian_Pinv(acc);
  }
  a[K] = INFINITY;
}

/* Normal scores E[Z | label i] of an ordinal member. */
static void scores(const double *a, int K, double *s) {
  for (int i = 0; i < K; i++) {
    double p = gsl_cdf_ugaussian_P(a[i + 1]) - gsl_cdf_ugaussian_P(a[i]);
    s[i] = (phi(a[i]) - phi(a[i + 1])) / p;
  }
}

/* Checks the joint table of two ordinal members (codes ca, cb of the rows
 * where sel is non-zero) against the bivariate normal rectangles, cell by
 * cell, and their normal-scores correlation against its expectation. */
static void check_joint(const int *ca, const int *cb, const uint8_t *sel, size_t n, const double *wa,
                        int Ka, const double *wb, int Kb, double rho) {
  double a[16], b[16], sa[16], sb[16];
  thresholds(wa, Ka, a);
  thresholds(wb, Kb, b);
  scores(a, Ka, sa);
  scores(b, Kb, sb);
  double cnt[16][16] = {{0}};
  double N = 0;
  for (size_t r = 0; r < n; r++) {
    if (sel && !sel[r]) continue;
    assert_true(ca[r] >= 0 && ca[r] < Ka && cb[r] >= 0 && cb[r] < Kb);
    cnt[ca[r]][cb[r]]++;
    N++;
  }
  assert_true(N > 1000);
  double e_ab = 0, v_a = 0, v_b = 0, o_ab = 0, o_a = 0, o_b = 0, o_aa = 0, o_bb = 0;
  for (int i = 0; i < Ka; i++)
    for (int j = 0; j < Kb; j++) {
      double P = phi2(a[i + 1], b[j + 1], rho) - phi2(a[i], b[j + 1], rho) -
                 phi2(a[i + 1], b[j], rho) + phi2(a[i], b[j], rho);
      assert_close_se(cnt[i][j] / N, P, sqrt(P * (1 - P) / N) + 1e-9);
      e_ab += P * sa[i] * sb[j];
      double f = cnt[i][j] / N;
      o_ab += f * sa[i] * sb[j];
      o_a += f * sa[i];
      o_b += f * sb[j];
      o_aa += f * sa[i] * sa[i];
      o_bb += f * sb[j] * sb[j];
    }
  for (int i = 0; i < Ka; i++) v_a += (gsl_cdf_ugaussian_P(a[i + 1]) - gsl_cdf_ugaussian_P(a[i])) * sa[i] * sa[i];
  for (int j = 0; j < Kb; j++) v_b += (gsl_cdf_ugaussian_P(b[j + 1]) - gsl_cdf_ugaussian_P(b[j])) * sb[j] * sb[j];
  double expected = e_ab / sqrt(v_a * v_b);
  double observed = (o_ab - o_a * o_b) / sqrt((o_aa - o_a * o_a) * (o_bb - o_b * o_b));
  /* the standard error of a sample correlation of moderate size is below
   * 1/sqrt(N) (normal theory: (1 - r^2)/sqrt(N)) */
  assert_close_se(observed, expected, 1 / sqrt(N));
  /* the latent correlation shows through: same sign, smaller size */
  if (rho != 0) {
    assert_true(expected * rho > 0);
    assert_true(fabs(expected) < fabs(rho));
  }
}

/* ---- marginals and latent correlations ---------------------------------------- */


static const double w_stage[4] = {0.4, 0.3, 0.2, 0.1}, w_grade[3] = {0.25, 0.5, 0.25};

static void test_copula_marginals_follow_weights(void **state) {
  (void)state;
  ms_spec *s = load(good_spec("copula_mixed"));
  memsink m = {0};
  run(s, NULL, &m);
  memtable *t = tab(&m, "t");
  double N = 100000;
  assert_int_equal(t->n, 100000);
  size_t x = col(t, "x"), sm = col(t, "smoker"), st = col(t, "stage"), gr = col(t, "grade");
  size_t n_true = 0, hs[4] = {0}, hg[3] = {0};
  double sx = 0, sxx = 0;
  for (size_t r = 0; r < t->n; r++) {
    n_true += memtable_num(t, sm, r) != 0;
    hs[code(t, st, r)]++;
    hg[code(t, gr, r)]++;
    double v = memtable_num(t, x, r);
    sx += v;
    sxx += v * v;
  }
  assert_close_se(n_true / N, 0.3, sqrt(0.3 * 0.7 / N));
  for (int i = 0; i < 4; i++) assert_close_se(hs[i] / N, w_stage[i], sqrt(w_stage[i] * (1 - w_stage[i]) / N));
  for (int i = 0; i < 3; i++) assert_close_se(hg[i] / N, w_grade[i], sqrt(w_grade[i] * (1 - w_grade[i]) / N));
  /* labels keep the order of "values" */
  assert_string_equal(t->schema.columns[st].categories[0], "I");
  assert_string_equal(t->schema.columns[st].categories[3], "IV");
  /* the numeric member keeps its normal(50, 10) */
  double mean = sx / N, sd = sqrt(sxx / N - mean * mean);
  assert_close_se(mean, 50, 10 / sqrt(N));
  assert_close_se(sd, 10, 10 / sqrt(2 * N));
  memsink_free(&m);
  ms_spec_free(s);
}

static void test_copula_bool_numeric_point_biserial(void **state) {
  (void)state;
  ms_spec *s = load(good_spec("copula_mixed"));
  memsink m = {0};
  run(s, NULL, &m);
  memtable *t = tab(&m, "t");
  size_t x = col(t, "x"), sm = col(t, "smoker"), ot = col(t, "other");
  double N = (double)t->n, p = 0.3, rho = 0.4;
  double s1 = 0, s0 = 0, n1 = 0, sx = 0, sxx = 0, sxb = 0, so = 0, sxo = 0;
  for (size_t r = 0; r < t->n; r++) {
    double v = memtable_num(t, x, r), b = memtable_num(t, sm, r), o = code(t, ot, r);
    if (b) {
      s1 += v;
      n1++;
    } else {
      s0 += v;
    }
    sx += v;
    sxx += v * v;
    sxb += v * b;
    so += o;
    sxo += v * o;
  }
  double c = gsl_cdf_ugaussian_Pinv(1 - p), sdx = sqrt(sxx / N - (sx / N) * (sx / N));
  /* orientation: a positive correlation puts true with the higher values;
   * E[x | true] - E[x | false] = sd rho phi(c) (1/p + 1/(1-p)) */
  double diff = s1 / n1 - s0 / (N - n1);
  assert_true(diff > 0);
  assert_close_se(diff, 10 * rho * phi(c) * (1 / p + 1 / (1 - p)), 10 * sqrt(1 / n1 + 1 / (N - n1)));
  /* point-biserial correlation rho phi(c) / sqrt(p (1 - p)) */
  double pb = n1 / N;
  double r_pb = (sxb / N - (sx / N) * pb) / (sdx * sqrt(pb * (1 - pb)));
  assert_close_se(r_pb, rho * phi(c) / sqrt(p * (1 - p)), 1 / sqrt(N));
  /* a field outside the group is independent of it */
  double po = so / N, r_o = (sxo / N - (sx / N) * po) / (sdx * sqrt(po * (1 - po)));
  assert_close_se(r_o, 0, 1 / sqrt(N));
  memsink_free(&m);
  ms_spec_free(s);
}

static void test_copula_ordinal_pairs_match_matrix(void **state) {
  (void)state;
  ms_spec *s = load(good_spec("copula_mixed"));
  memsink m = {0};
  run(s, NULL, &m);
  memtable *t = tab(&m, "t");
  size_t n = t->n, x = col(t, "x"), sm = col(t, "smoker"), st = col(t, "stage"), gr = col(t, "grade");
  int *cs = malloc(n * sizeof *cs), *cg = malloc(n * sizeof *cg), *cb = malloc(n * sizeof *cb);
  assert_non_null(cs);
  assert_non_null(cg);
  assert_non_null(cb);
  for (size_t r = 0; r < n; r++) {
    cs[r] = code(t, st, r);
    cg[r] = code(t, gr, r);
    cb[r] = memtable_num(t, sm, r) != 0;
  }
  /* two categoricals, latent rho 0.6: polychoric cells and normal scores */
  check_joint(cs, cg, NULL, n, w_stage, 4, w_grade, 3, 0.6);
  /* bool (false, true) with a categorical, rho 0.3; with rho 0 */
  const double w_bool[2] = {0.7, 0.3};
  check_joint(cb, cs, NULL, n, w_bool, 2, w_stage, 4, 0.3);
  check_joint(cb, cg, NULL, n, w_bool, 2, w_grade, 3, 0.0);
  /* categorical with the numeric field: the normal-scores correlation of
   * stage with (x - 50) / 10 is rho * sd(scores); the mean of x rises along
   * the labels for rho > 0 and falls for rho < 0 */
  double a[5], sc[4];
  thresholds(w_stage, 4, a);
  scores(a, 4, sc);
  double v_s = 0;
  for (int i = 0; i < 4; i++) v_s += w_stage[i] * sc[i] * sc[i];
  double N = (double)n, s_z = 0, s_zz = 0, s_s = 0, s_ss = 0, s_zs = 0;
  double mx_s[4] = {0}, nx_s[4] = {0}, mx_g[3] = {0}, nx_g[3] = {0};
  for (size_t r = 0; r < n; r++) {
    double z = (memtable_num(t, x, r) - 50) / 10, q = sc[cs[r]];
    s_z += z;
    s_zz += z * z;
    s_s += q;
    s_ss += q * q;
    s_zs += z * q;
    mx_s[cs[r]] += z;
    nx_s[cs[r]]++;
    mx_g[cg[r]] += z;
    nx_g[cg[r]]++;
  }
  double r_ns = (s_zs / N - s_z / N * s_s / N) /
                sqrt((s_zz / N - s_z / N * s_z / N) * (s_ss / N - s_s / N * s_s / N));
  assert_close_se(r_ns, 0.5 * sqrt(v_s), 1 / sqrt(N));
  for (int i = 1; i < 4; i++) assert_true(mx_s[i] / nx_s[i] > mx_s[i - 1] / nx_s[i - 1]);
  for (int i = 1; i < 3; i++) assert_true(mx_g[i] / nx_g[i] < mx_g[i - 1] / nx_g[i - 1]);
  /* E[z | stage i] = rho * score_i */
  for (int i = 0; i < 4; i++) assert_close_se(mx_s[i] / nx_s[i], 0.5 * sc[i], 1 / sqrt(nx_s[i]));
  free(cs);
  free(cg);
  free(cb);
  memsink_free(&m);
  ms_spec_free(s);
}

/* ---- rules, formulas, missingness ------------------------------------------------ */


static void test_copula_when_rules_and_missing(void **state) {
  (void)state;
  ms_spec *s = load(good_spec("copula_rules"));
  memsink m = {0};
  run(s, NULL, &m);
  memtable *t = tab(&m, "t");
  size_t n = t->n, g = col(t, "grp"), x = col(t, "x"), sv = col(t, "sev"), fl = col(t, "flag"),
         f2 = col(t, "flag2");
  double cnt[2][3] = {{0}}, present[2] = {0}, rows[2] = {0}, flags[2] = {0}, f2a = 0, missing = 0;
  int *ca = malloc(n * sizeof *ca), *cb = malloc(n * sizeof *cb);
  uint8_t *sel = malloc(n);
  assert_non_null(ca);
  assert_non_null(cb);
  assert_non_null(sel);
  for (size_t r = 0; r < n; r++) {
    int b = code(t, g, r);
    rows[b]++;
    flags[b] += memtable_num(t, fl, r) != 0;
    double xv = memtable_num(t, x, r);
    if (b)
      assert_int_equal(memtable_num(t, f2, r) != 0, xv > 0.5); /* the rule's formula */
    else
      f2a += memtable_num(t, f2, r) != 0;
    sel[r] = 0;
    if (!t->valid[sv][r]) {
      missing++;
      continue;
    }
    present[b]++;
    cnt[b][code(t, sv, r)]++;
    ca[r] = code(t, sv, r);
    cb[r] = memtable_num(t, fl, r) != 0;
    sel[r] = (uint8_t)b;
  }
  double N = (double)n;
  assert_close_se(missing / N, 0.1, sqrt(0.09 / N));
  const double wa[3] = {0.6, 0.3, 0.1}, wb[3] = {0.1, 0.3, 0.6};
  for (int i = 0; i < 3; i++) {
    assert_close_se(cnt[0][i] / present[0], wa[i], sqrt(wa[i] * (1 - wa[i]) / present[0]));
    assert_close_se(cnt[1][i] / present[1], wb[i], sqrt(wb[i] * (1 - wb[i]) / present[1]));
  }
  assert_close_se(flags[0] / rows[0], 0.2, sqrt(0.16 / rows[0]));
  assert_close_se(flags[1] / rows[1], 0.7, sqrt(0.21 / rows[1]));
  assert_close_se(f2a / rows[0], 0.4, sqrt(0.24 / rows[0]));
  /* within group b the rule's weights and probability shape the joint law;
   * missingness (own lane) is independent of the value */
  const double w_flag_b[2] = {0.3, 0.7}, w_flag_a[2] = {0.8, 0.2};
  check_joint(ca, cb, sel, n, wb, 3, w_flag_b, 2, 0.2);
  for (size_t r = 0; r < n; r++) sel[r] = t->valid[sv][r] && code(t, g, r) == 0;
  check_joint(ca, cb, sel, n, wa, 3, w_flag_a, 2, 0.2);
  free(ca);
  free(cb);
  free(sel);
  memsink_free(&m);
  ms_spec_free(s);
}

static void test_copula_vocabulary_member(void **state) {
  (void)state;
  /* schemas/vocab/encounter_types.csv: AMB 2.67, EMER 0.40, IMP 0.116, VR 0.30,
   * HH 0.05 */
  const char *spec = good_spec("copula_vocabulary_member");
  ms_spec *s = load(spec);
  memsink m = {0};
  run(s, NULL, &m);
  memtable *t = tab(&m, "t");
  size_t x = col(t, "x"), e = col(t, "enc");
  const double w[5] = {2.67, 0.40, 0.116, 0.30, 0.05};
  const char *labels[5] = {"AMB", "EMER", "IMP", "VR", "HH"};
  double a[6], sc[5], cnt[5] = {0}, mx[5] = {0}, N = (double)t->n;
  assert_int_equal(t->schema.columns[e].n_categories, 5);
  thresholds(w, 5, a);
  scores(a, 5, sc);
  for (size_t r = 0; r < t->n; r++) {
    int k = code(t, e, r);
    cnt[k]++;
    mx[k] += memtable_num(t, x, r);
  }
  double tot = w[0] + w[1] + w[2] + w[3] + w[4];
  for (int i = 0; i < 5; i++) {
    assert_string_equal(t->schema.columns[e].categories[i], labels[i]);
    double p = w[i] / tot;
    assert_close_se(cnt[i] / N, p, sqrt(p * (1 - p) / N));
    /* vocabulary rows are the order: E[x | label i] = rho * score_i */
    assert_close_se(mx[i] / cnt[i], 0.7 * sc[i], 1 / sqrt(cnt[i]));
  }
  memsink_free(&m);
  ms_spec_free(s);
}

static void test_copula_edge_probabilities(void **state) {
  (void)state;
  const char *spec = good_spec("copula_edge_probabilities");
  ms_spec *s = load(spec);
  memsink m = {0};
  run(s, NULL, &m);
  memtable *t = tab(&m, "t");
  size_t nv = col(t, "never"), al = col(t, "always"), c = col(t, "c");
  for (size_t r = 0; r < t->n; r++) {
    assert_true(memtable_num(t, nv, r) == 0);
    assert_true(memtable_num(t, al, r) == 1);
    const char *l = memtable_str(t, c, r);
    assert_true(!strcmp(l, "a") || !strcmp(l, "b")); /* zero weights never drawn */
  }
  memsink_free(&m);
  ms_spec_free(s);
}

/* ---- reproducibility ----------------------------------------------------------------- */

/* A filter reads a categorical member (computed before the filter, the
 * other members after compaction); a child table has its own group. */

static void hashes(const ms_spec *s, const run_opts *ro, uint64_t h[2], size_t n[2]) {
  memsink m = {0};
  run(s, ro, &m);
  for (int i = 0; i < 2; i++) {
    memtable *t = &m.t[i];
    h[i] = memtable_hash(t, 0, t->n);
    n[i] = t->n;
  }
  memsink_free(&m);
}

static void test_copula_same_bytes_any_threads_chunks_shards(void **state) {
  (void)state;
  ms_spec *s = load(good_spec("copula_repro"));
  uint64_t ref[2], h[2];
  size_t nref[2], n[2];
  run_opts ro = {.rows = 3000, .threads = 1, .chunk = 65536};
  hashes(s, &ro, ref, nref);
  assert_int_equal(nref[0], 3000);
  int threads[] = {1, 2, 8};
  size_t chunks[] = {1, 7, 1000, 65536};
  for (int a = 0; a < 3; a++)
    for (int b = 0; b < 4; b++) {
      if (chunks[b] == 1 && threads[a] != 2) continue; /* slow; one combination is enough */
      run_opts r2 = {.rows = 3000, .threads = threads[a], .chunk = chunks[b]};
      hashes(s, &r2, h, n);
      for (int i = 0; i < 2; i++) {
        assert_int_equal(n[i], nref[i]);
        assert_true(h[i] == ref[i]);
      }
    }
  /* shards concatenated equal the single run */
  memsink whole = {0}, parts = {0};
  run_opts rw = {.rows = 2500, .threads = 2, .chunk = 400};
  run(s, &rw, &whole);
  for (uint32_t i = 0; i < 3; i++) {
    run_opts rs = {.rows = 2500, .threads = 1 + i, .chunk = 333 + i, .shard_k = i, .shard_n = 3};
    run(s, &rs, &parts);
  }
  assert_int_equal(whole.nt, 2);
  assert_same_tables(&whole, &parts);
  memsink_free(&whole);
  memsink_free(&parts);
  ms_spec_free(s);
}

/* Fields outside a group keep their independent draws when a categorical or
 * bool joins a group, and so do the members listed before it; the joining
 * fields' values change. */
static void test_copula_fields_outside_groups_unchanged(void **state) {
  (void)state;
  const char *head =
      "{\"medsynth\": 1, \"seed\": 4, \"tables\": [{\"name\": \"t\", \"rows\": 5000, \"fields\": ["
      "{\"name\": \"x\", \"kind\": \"real\", \"dist\": {\"type\": \"normal\", \"mean\": 0, \"sd\": 1}},"
      "{\"name\": \"y\", \"kind\": \"real\", \"dist\": {\"type\": \"gamma\", \"shape\": 2, \"scale\": 1}},"
      "{\"name\": \"c\", \"kind\": \"categorical\", \"values\": {\"a\": 1, \"b\": 1, \"c\": 1}},"
      "{\"name\": \"d\", \"kind\": \"categorical\", \"values\": {\"a\": 1, \"b\": 1, \"c\": 1}},"
      "{\"name\": \"e\", \"kind\": \"bool\", \"p\": 0.4},"
      "{\"name\": \"f\", \"kind\": \"bool\", \"p\": 0.4}"
      "], \"correlations\": [";
  char a[4096], b[4096];
  snprintf(a, sizeof a, "%s{\"fields\": [\"x\", \"y\"], \"matrix\": [[1, 0.5], [0.5, 1]]}]}]}", head);
  snprintf(b, sizeof b,
           "%s{\"fields\": [\"x\", \"y\", \"c\", \"e\"], \"matrix\": [[1, 0.5, 0.3, 0.3], [0.5, 1, 0.3, 0.3],"
           " [0.3, 0.3, 1, 0.3], [0.3, 0.3, 0.3, 1]]}]}]}",
           head);
  ms_spec *sa = load(a), *sb = load(b);
  memsink ma = {0}, mb = {0};
  run(sa, NULL, &ma);
  run(sb, NULL, &mb);
  memtable *ta = tab(&ma, "t"), *tb = tab(&mb, "t");
  /* d, f: outside groups; x, y: listed before the new members, with their
   * part of the matrix unchanged (the Cholesky factor's leading block) */
  const char *same[] = {"d", "f", "x", "y"}, *changed[] = {"c", "e"};
  for (int i = 0; i < 4; i++) {
    size_t j = col(ta, same[i]);
    assert_true(memtable_col_hash(ta, j, 0, ta->n) == memtable_col_hash(tb, j, 0, tb->n));
  }
  for (int i = 0; i < 2; i++) {
    size_t j = col(ta, changed[i]);
    assert_true(memtable_col_hash(ta, j, 0, ta->n) != memtable_col_hash(tb, j, 0, tb->n));
  }
  memsink_free(&ma);
  memsink_free(&mb);
  ms_spec_free(sa);
  ms_spec_free(sb);
}

/* ---- validation ------------------------------------------------------------------------ */

static void test_copula_rejects_fields_not_drawn(void **state) {
  (void)state;
  const char *spec =
      "{\"medsynth\": 1, \"tables\": [{\"name\": \"t\", \"rows\": 10, \"fields\": [\n"
      "{\"name\": \"id\", \"kind\": \"id\"},\n"
      "{\"name\": \"x\", \"kind\": \"real\", \"dist\": {\"type\": \"normal\", \"mean\": 0, \"sd\": 1}},\n"
      "{\"name\": \"bx\", \"kind\": \"bool\", \"expr\": \"x > 0\"},\n"
      "{\"name\": \"rx\", \"kind\": \"real\", \"expr\": \"x * 2\"},\n"
      "{\"name\": \"dt\", \"kind\": \"date\", \"base\": \"date('2020-01-01')\"}\n"
      "], \"correlations\": [{\"fields\": [\"x\", \"id\", \"bx\", \"rx\", \"dt\"], \"matrix\": [\n"
      "[1, 0, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1]]}]}]}";
  char *out = load_errors(spec);
  const char *want[] = {
      "t.json:7:38: error: /tables/0/correlations/0/fields/1: field \"id\" of kind id cannot be correlated",
      "t.json:7:44: error: /tables/0/correlations/0/fields/2: bool field \"bx\" is derived (\"expr\"), not drawn: give it \"p\"",
      "t.json:7:50: error: /tables/0/correlations/0/fields/3: field \"rx\" is derived (\"expr\"), not drawn",
      "t.json:7:56: error: /tables/0/correlations/0/fields/4: field \"dt\" of kind date cannot be correlated",
  };
  for (size_t i = 0; i < sizeof want / sizeof *want; i++)
    if (!strstr(out, want[i])) {
      print_error("expected\n  %s\ngot\n%s", want[i], out);
      free(out);
      fail();
    }
  /* every problem once, nothing about the drawable x */
  size_t lines = 0;
  for (const char *p = out; *p; p++) lines += *p == '\n';
  assert_int_equal(lines, 4);
  free(out);
}

int main(void) {
  gsl_set_error_handler_off();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_copula_marginals_follow_weights),
      cmocka_unit_test(test_copula_bool_numeric_point_biserial),
      cmocka_unit_test(test_copula_ordinal_pairs_match_matrix),
      cmocka_unit_test(test_copula_when_rules_and_missing),
      cmocka_unit_test(test_copula_vocabulary_member),
      cmocka_unit_test(test_copula_edge_probabilities),
      cmocka_unit_test(test_copula_same_bytes_any_threads_chunks_shards),
      cmocka_unit_test(test_copula_fields_outside_groups_unchanged),
      cmocka_unit_test(test_copula_rejects_fields_not_drawn),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
