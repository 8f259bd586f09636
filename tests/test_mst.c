/* Tests of MST, the DP method of `fit --epsilon --method mst`
 * (gen/fit/mst.c, docs/privacy.md "MST").
 * ctest-labels: unit
 *
 * Covers the zCDP accounting (marginals + selection + edges = rho, which
 * converts back to the requested epsilon), byte-identical specs for one
 * seed, the fitted spec loading and generating with the records engine, a
 * strong dependence between two columns surviving at epsilon = 1 (tolerance
 * from the sample size), and the edge noise matching the derived sigma
 * (empirical variance over many seeds). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "zcdp_ref.h"
#include "fit/fit_internal.h"
#include "medsynth/fit.h"
#include "medsynth/records.h"
#include "medsynth/rng.h"
#include "memsink.h"

/* x uniform on [0, 100); y = x + N(0, 5) (correlation about 0.99); grp a
 * label following x; flag a bool; n rows. */
static char *make_dependent(size_t n, uint64_t seed) {
  char *s = NULL;
  size_t len = 0;
  FILE *fp = open_memstream(&s, &len);
  ms_rng_key k = ms_rng_key_make(seed, ms_rng_stream("test/mst"));
  fprintf(fp, "x,y,grp,flag\n");
  for (size_t i = 0; i < n; i++) {
    double x = 100 * ms_rng_uniform(k, i, 0), y = x + 5 * ms_rng_normal(k, i, 1);
    fprintf(fp, "%.1f,%.1f,%s,%s\n", x, y, x < 50 ? "low" : "high", ms_rng_uniform(k, i, 2) < 0.3 ? "yes" : "no");
  }
  fclose(fp);
  return s;
}

static ms_fit_model *fit_mst(const ms_frame *f, double eps, uint64_t seed) {
  ms_fit_params p;
  ms_fit_params_init(&p);
  p.epsilon = eps;
  p.seed = seed;
  p.method = MS_FIT_METHOD_MST;
  ms_fit_model *m = NULL;
  ms_diag d;
  ms_diag_init(&d);
  assert_int_equal(ms_fit_model_new(&m, f, &p, &d), MS_OK);
  ms_diag_deinit(&d);
  return m;
}

static ms_frame *parse(const char *text) {
  ms_frame *f = NULL;
  assert_int_equal(ms_frame_parse_csv(&f, text, strlen(text), "t.csv", NULL, NULL), MS_OK);
  return f;
}

static void test_mst_accounting_adds_up(void **state) {
  (void)state;
  char *t = make_dependent(2000, 1);
  ms_frame *f = parse(t);
  ms_fit_model *m = fit_mst(f, 1, 7);
  char *json = ms_fit_model_to_json(m);
  cJSON *root = cJSON_Parse(json);
  cJSON *pv = cJSON_GetObjectItem(root, "privacy");
  cJSON *mst = cJSON_GetObjectItem(pv, "mst");
  assert_non_null(mst);
  double rho = cJSON_GetObjectItem(pv, "rho")->valuedouble;
  double marg = cJSON_GetObjectItem(cJSON_GetObjectItem(pv, "split"), "marginals")->valuedouble;
  double sel = cJSON_GetObjectItem(mst, "rho_selection")->valuedouble;
  double edg = cJSON_GetObjectItem(mst, "rho_edges")->valuedouble;
  double dconv = cJSON_GetObjectItem(pv, "delta_conversion")->valuedouble;
  double dthr = cJSON_GetObjectItem(pv, "delta_thresholds")->valuedouble;
  /* A third each, adding up to rho; rho converts back to epsilon = 1. */
  assert_true(fabs(marg + sel + edg - rho) < 1e-4 * rho);
  assert_true(fabs(sel - rho / 3) < 1e-4 * rho && fabs(edg - rho / 3) < 1e-4 * rho);
  assert_true(zcdp_ref_ok(rho, 1.0, dconv));
  assert_true(fabs(dconv + dthr - 1e-6) < 1e-12);
  /* The tree spans the 4 columns; sigma and the per-round epsilon follow
   * from the shares (docs/privacy.md). */
  cJSON *tree = cJSON_GetObjectItem(mst, "tree");
  assert_int_equal(cJSON_GetArraySize(tree), 3);
  double sigma = cJSON_GetObjectItem(mst, "edge_sigma")->valuedouble;
  assert_true(fabs(sigma - sqrt(3 / (2 * edg))) < 1e-4 * sigma);
  double er = cJSON_GetObjectItem(mst, "selection_epsilon_per_round")->valuedouble;
  assert_true(fabs(3 * er * er / 8 - sel) < 1e-4 * sel);
  /* The accounting text's total is rho as well. */
  char *acc = ms_fit_model_accounting(m);
  assert_non_null(strstr(acc, "mst edges:"));
  char want[80];
  snprintf(want, sizeof want, "total:        rho %g ", strtod("0", NULL) + rho);
  assert_non_null(strstr(acc, "total:        rho "));
  free(acc);
  cJSON_Delete(root);
  free(json);
  ms_fit_model_free(m);
  ms_frame_free(f);
  free(t);
}

static void test_mst_same_seed_same_bytes(void **state) {
  (void)state;
  char *t = make_dependent(800, 2);
  ms_frame *f = parse(t);
  ms_fit_model *a = fit_mst(f, 1, 5), *b = fit_mst(f, 1, 5), *c = fit_mst(f, 1, 6);
  char *ja = ms_fit_model_to_json(a), *jb = ms_fit_model_to_json(b), *jc = ms_fit_model_to_json(c);
  assert_string_equal(ja, jb);
  assert_true(strcmp(ja, jc) != 0);
  free(ja);
  free(jb);
  free(jc);
  ms_fit_model_free(a);
  ms_fit_model_free(b);
  ms_fit_model_free(c);
  ms_frame_free(f);
  free(t);
}

typedef struct {
  double v;
  size_t i;
} vi;

static int cmp_vi(const void *a, const void *b) {
  const vi *x = a, *y = b;
  return (x->v > y->v) - (x->v < y->v) ? (x->v > y->v) - (x->v < y->v) : (x->i > y->i) - (x->i < y->i);
}

/* Replaces v by its ranks 0..n-1 (ties by position). */
static void to_ranks(double *v, size_t n) {
  vi *t = malloc(n * sizeof *t);
  assert_non_null(t);
  for (size_t i = 0; i < n; i++) t[i].v = v[i], t[i].i = i;
  qsort(t, n, sizeof *t, cmp_vi);
  for (size_t k = 0; k < n; k++) v[t[k].i] = (double)k;
  free(t);
}

static double corr(const double *a, const double *b, size_t n) {
  double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < n; i++) ma += a[i], mb += b[i];
  ma /= (double)n;
  mb /= (double)n;
  for (size_t i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  return sab / sqrt(saa * sbb);
}

/* The spec loads, `records` generates the real columns and labels, and the
 * dependence x -> y (real rank correlation 0.986) and x -> grp survive at
 * epsilon = 1. With n = 5000 and 4 columns the tree has 13 bins a column
 * (B = round(sqrt(N / (2 sigma_e))), sigma_e = 16.4): the binned model
 * alone keeps a rank correlation of about 0.97 (uniform draws within bins
 * of 1/13 of the rows); the noise of the edge table (after shrinkage and
 * emptying) and of the marginals that place the bins cost up to a quarter
 * more (0.75 to 0.975 over fit seeds 1..8). The sampling sd of a rank
 * correlation near 0.8 on n rows is about (1 - r^2) / sqrt(n) < 0.006, so
 * the bound 0.7 fails only when the model loses the dependence (an
 * independent pair scores about 0). */
static void test_mst_keeps_strong_dependence(void **state) {
  (void)state;
  const size_t n = 5000;
  char *t = make_dependent(n, 3);
  ms_frame *f = parse(t);
  ms_fit_model *m = fit_mst(f, 1, 9);
  char *json = ms_fit_model_to_json(m);
  ms_diag d;
  ms_diag_init(&d);
  ms_spec *s = NULL;
  assert_int_equal(ms_spec_load_string(&s, json, strlen(json), "fitted.json", &d), MS_OK);
  memsink mk = {0};
  ms_sink sink = memsink_sink(&mk);
  ms_generate_params o;
  ms_generate_params_init(&o);
  o.rows = n;
  o.threads = 2;
  assert_int_equal(ms_generate(s, &o, &sink, NULL, &d), MS_OK);
  memtable *g = &mk.t[0];
  assert_int_equal(g->n, n);
  size_t jx = memtable_col(g, "x"), jy = memtable_col(g, "y"), jg = memtable_col(g, "grp");
  assert_true(jx != SIZE_MAX && jy != SIZE_MAX && jg != SIZE_MAX);
  assert_int_equal(memtable_col(g, "x_bin"), SIZE_MAX); /* hidden */
  double *xs = malloc(n * sizeof *xs), *ys = malloc(n * sizeof *ys);
  assert_non_null(xs);
  assert_non_null(ys);
  size_t agree = 0;
  const char *const *cats = (const char *const *)g->schema.columns[jg].categories;
  for (size_t i = 0; i < n; i++) {
    xs[i] = memtable_num(g, jx, i);
    ys[i] = memtable_num(g, jy, i);
    assert_false(isnan(xs[i]) || isnan(ys[i])); /* complete columns stay complete */
    const char *lab = cats[(size_t)memtable_num(g, jg, i)];
    agree += (xs[i] < 50) == !strcmp(lab, "low");
  }
  /* Rank correlation: the dependence the tree carries, whatever the DP
   * marginals do to the tails. */
  to_ranks(xs, n);
  to_ranks(ys, n);
  double r = corr(xs, ys, n);
  assert_true(r > 0.7);
  /* grp is a function of x in the real table; the bins around 50 may mix. */
  assert_true((double)agree / (double)n > 0.8);
  free(xs);
  free(ys);
  memsink_free(&mk);
  ms_spec_free(s);
  ms_diag_deinit(&d);
  free(json);
  ms_fit_model_free(m);
  ms_frame_free(f);
  free(t);
}

/* The edge noise has the derived sigma: over 4000 seeds the sample variance
 * of a cell's noise has relative sd sqrt(2 / 3999) ~ 0.022, so 4 sd is 0.09. */
static void test_mst_noise_matches_sigma(void **state) {
  (void)state;
  const size_t seeds = 4000, cells = 6;
  const double sigma = sqrt(3 / (2 * (0.0167 / 3)));
  for (size_t c = 0; c < cells; c++) {
    double s1 = 0, s2 = 0;
    for (size_t k = 0; k < seeds; k++) {
      double tab[6] = {0};
      ms__mst_edge_noise(tab, cells, k, "a", "b", sigma);
      s1 += tab[c];
      s2 += tab[c] * tab[c];
    }
    double mean = s1 / (double)seeds, var = (s2 - s1 * mean) / (double)(seeds - 1);
    assert_true(fabs(mean) < 4 * sigma / sqrt((double)seeds));
    assert_true(fabs(var / (sigma * sigma) - 1) < 0.09);
  }
}

/* Fewer than two columns: no tree, the budget is the marginals'. A table of
 * one column fits and its spec loads. */
static void test_mst_single_column(void **state) {
  (void)state;
  const char *t = "x\n1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n";
  ms_frame *f = parse(t);
  ms_fit_model *m = fit_mst(f, 1, 1);
  char *json = ms_fit_model_to_json(m);
  assert_null(strstr(json, "\"mst\""));
  ms_spec *s = NULL;
  assert_int_equal(ms_spec_load_string(&s, json, strlen(json), "fitted.json", NULL), MS_OK);
  ms_spec_free(s);
  free(json);
  ms_fit_model_free(m);
  ms_frame_free(f);
}


/* Three categorical columns in a chain a -> b -> c, n rows. */
__attribute__((noinline)) static char *make_chain(size_t n) {
  char *s = NULL;
  size_t len = 0;
  FILE *fp = open_memstream(&s, &len);
  ms_rng_key k = ms_rng_key_make(11, ms_rng_stream("test/mst-chain"));
  static const char *A[] = {"x", "y", "z"}, *B[] = {"lo", "hi"}, *C[] = {"p", "q", "r", "s"};
  fprintf(fp, "a,b,c\n");
  for (size_t i = 0; i < n; i++) {
    double u = ms_rng_uniform(k, i, 0), v = ms_rng_uniform(k, i, 1), w = ms_rng_uniform(k, i, 2);
    int a = u < 0.5 ? 0 : u < 0.8 ? 1 : 2;
    int b = v < (a == 0 ? 0.2 : a == 1 ? 0.6 : 0.9);
    int c = (int)(w * 4);
    if (b && w < 0.5) c = 3;
    fprintf(fp, "%s,%s,%s\n", A[a], B[b], C[c]);
  }
  fclose(fp);
  return s;
}

/* The label of bin `bin` of a visible categorical field (its when rules). */
static const char *bin_label_of(cJSON *field, const char *bin) {
  cJSON *r;
  cJSON_ArrayForEach(r, cJSON_GetObjectItem(field, "when")) {
    const char *e = cJSON_GetObjectItem(r, "if")->valuestring;
    const char *q = strchr(e, '\'');
    if (q && !strncmp(q + 1, bin, strlen(bin)) && q[1 + strlen(bin)] == '\'')
      return cJSON_GetObjectItem(r, "values")->child->string;
  }
  return NULL;
}

static cJSON *field_named(cJSON *fields, const char *name) {
  cJSON *f;
  cJSON_ArrayForEach(f, fields) if (!strcmp(cJSON_GetObjectItem(f, "name")->valuestring, name)) return f;
  return NULL;
}

/* Share of rows with column ci == x (and column pj == y when pj >= 0). */
static double share(char rows[][3][4], size_t n, int ci, const char *x, int pj, const char *y) {
  double num = 0, den = 0;
  for (size_t r = 0; r < n; r++) {
    if (pj >= 0 && strcmp(rows[r][pj], y)) continue;
    den += 1;
    num += !strcmp(rows[r][ci], x);
  }
  return num / den;
}

/* Without --epsilon the tree model reproduces the measured tables exactly:
 * the root's shares and every child's conditional shares given its parent
 * equal the data's (to the spec's 6 significant digits), with k = 1. */
static void test_mst_exact_without_noise(void **state) {
  (void)state;
  const size_t n = 1200;
  char *t = make_chain(n);
  ms_frame *f = parse(t);
  char(*rows)[3][4] = calloc(n, sizeof *rows);
  size_t at = (size_t)(strchr(t, '\n') - t) + 1;
  for (size_t r = 0; r < n; r++) {
    assert_int_equal(sscanf(t + at, "%3[^,],%3[^,],%3[^\n]", rows[r][0], rows[r][1], rows[r][2]), 3);
    at += (size_t)(strchr(t + at, '\n') - (t + at)) + 1;
  }
  ms_fit_params p;
  ms_fit_params_init(&p);
  p.method = MS_FIT_METHOD_MST;
  p.k_min = 1;
  ms_fit_model *m = NULL;
  ms_diag d;
  ms_diag_init(&d);
  assert_int_equal(ms_fit_model_new(&m, f, &p, &d), MS_OK);
  ms_diag_deinit(&d);
  char *json = ms_fit_model_to_json(m);
  cJSON *root = cJSON_Parse(json);
  cJSON *fields = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(root, "tables"), 0), "fields");
  static const char *cols[] = {"a", "b", "c"};
  int n_root = 0, n_checked = 0;
  for (int ci = 0; ci < 3; ci++) {
    char bn[16];
    snprintf(bn, sizeof bn, "%s_bin", cols[ci]);
    cJSON *bf = field_named(fields, bn), *vf = field_named(fields, cols[ci]);
    assert_non_null(bf);
    assert_non_null(vf);
    cJSON *when = cJSON_GetObjectItem(bf, "when"), *v;
    if (!when) {
      n_root++;
      cJSON_ArrayForEach(v, cJSON_GetObjectItem(bf, "values")) {
        assert_true(fabs(v->valuedouble - share(rows, n, ci, bin_label_of(vf, v->string), -1, NULL)) < 5e-6);
        n_checked++;
      }
      continue;
    }
    cJSON *r;
    cJSON_ArrayForEach(r, when) {
      char pname[16], pbin[8];
      assert_int_equal(sscanf(cJSON_GetObjectItem(r, "if")->valuestring, "%15[a-z]_bin == '%7[0-9]'", pname, pbin), 2);
      int pj = pname[0] - 'a';
      const char *plab = bin_label_of(field_named(fields, pname), pbin);
      assert_non_null(plab);
      cJSON_ArrayForEach(v, cJSON_GetObjectItem(r, "values")) {
        assert_true(fabs(v->valuedouble - share(rows, n, ci, bin_label_of(vf, v->string), pj, plab)) < 5e-6);
        n_checked++;
      }
    }
  }
  assert_int_equal(n_root, 1);
  assert_int_equal(n_checked, 3 + 3 * 2 + 2 * 4); /* the chain a - b - c: two edges */
  cJSON_Delete(root);
  free(json);
  free(rows);
  ms_fit_model_free(m);
  ms_frame_free(f);
  free(t);
}

/* DP post-processing of noisy histograms (gen/fit/fit.c): the support test
 * keeps the run where the rows add up (ended by a negative count, so it
 * does not reach through noise to the later bump), neighbours of at least 2
 * sigma and a separate bin above the Bonferroni level; the projection gives
 * non-negative counts with the noisy total. */
static void test_dp_support_and_projection(void **state) {
  (void)state;
  /* sigma 10, 12 bins: z = Phi^-1(1 - 0.001/12) = 3.76 */
  double c[12] = {12, -4, 25, 80, 140, 60, 15, 8, -9, 3, 45, 11};
  assert_int_equal(ms__dp_support(c, 12, 10), MS_OK);
  const double want[12] = {0, 0, 25, 80, 140, 60, 15, 0, 0, 0, 45, 0};
  for (int i = 0; i < 12; i++) assert_true(c[i] == want[i]);
  /* positives above the total: each minus one t, floored at 0 */
  double p[5] = {50, 30, 5, -10, 0};
  assert_int_equal(ms__dp_project(p, 5, 60), MS_OK);
  assert_true(fabs(p[0] - 40) < 1e-12 && fabs(p[1] - 20) < 1e-12 && p[2] == 0 && p[3] == 0 && p[4] == 0);
  /* positives below the total: scaled up, zeros stay zero */
  double q[4] = {10, 0, 30, -5};
  assert_int_equal(ms__dp_project(q, 4, 80), MS_OK);
  assert_true(fabs(q[0] - 20) < 1e-12 && q[1] == 0 && fabs(q[2] - 60) < 1e-12 && q[3] == 0);
  /* a missing count is released above 3 sigma only */
  assert_true(ms__dp_missing(29, 10) == 0 && ms__dp_missing(31, 10) == 31);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_mst_accounting_adds_up),
      cmocka_unit_test(test_mst_same_seed_same_bytes),
      cmocka_unit_test(test_mst_keeps_strong_dependence),
      cmocka_unit_test(test_mst_noise_matches_sigma),
      cmocka_unit_test(test_mst_single_column),
      cmocka_unit_test(test_mst_exact_without_noise),
      cmocka_unit_test(test_dp_support_and_projection),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
