/* Tests of MST and AIM, the graphical models of `fit --method mst|aim`
 * (gen/fit/mst.c, docs/privacy.md "MST", "AIM").
 * ctest-labels: unit
 *
 * Covers the zCDP accounting (marginals + selection + edges = rho, which
 * converts back to the requested epsilon), byte-identical specs for one
 * seed, the fitted spec loading and generating with the records engine, a
 * strong dependence between two columns surviving at epsilon = 1 (tolerance
 * from the sample size), and the edge noise matching the derived sigma
 * (empirical variance over many seeds); AIM's 3-way marginals (a column
 * that depends on two others jointly and on neither alone). */
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

static ms_fit_model *fit_method(const ms_frame *f, ms_fit_method method, double eps, uint64_t seed, size_t k_min) {
  ms_fit_params p;
  ms_fit_params_init(&p);
  p.epsilon = eps;
  p.delta = eps > 0 ? 1e-5 : 0;
  p.seed = seed;
  p.method = method;
  if (k_min) p.k_min = k_min;
  ms_fit_model *m = NULL;
  ms_diag d;
  ms_diag_init(&d);
  assert_int_equal(ms_fit_model_new(&m, f, &p, &d), MS_OK);
  ms_diag_deinit(&d);
  return m;
}

static ms_fit_model *fit_mst(const ms_frame *f, double eps, uint64_t seed) {
  return fit_method(f, MS_FIT_METHOD_MST, eps, seed, 0);
}

static ms_frame *parse(const char *text) {
  ms_frame *f = NULL;
  assert_int_equal(ms_frame_parse_csv(&f, text, strlen(text), "t.csv", NULL, NULL), MS_OK);
  return f;
}

/* The budget of a graphical model: marginals + selection + measured tables
 * (+ the tests of determined labels and bands) = rho (MST a third each to
 * the first two; AIM a tenth of the last two thirds to the selection), rho
 * converts back to epsilon = 1; the model joins its columns (4, or 3 when
 * grp is kept as a band of x) in 3 (2) rounds; sigma and the per-round
 * epsilon follow from the shares (docs/privacy.md); same seed, same
 * bytes. */
static void accounting_adds_up(ms_fit_method method) {
  const int aim = method == MS_FIT_METHOD_AIM;
  char *t = make_dependent(2000, 1);
  ms_frame *f = parse(t);
  ms_fit_model *m = fit_method(f, method, 1, 7, 0), *m2 = fit_method(f, method, 1, 7, 0);
  char *json = ms_fit_model_to_json(m), *json2 = ms_fit_model_to_json(m2);
  assert_string_equal(json, json2);
  cJSON *root = cJSON_Parse(json);
  cJSON *pv = cJSON_GetObjectItem(root, "privacy");
  cJSON *g = cJSON_GetObjectItem(pv, aim ? "aim" : "mst");
  assert_non_null(g);
  double rho = cJSON_GetObjectItem(pv, "rho")->valuedouble;
  double marg = cJSON_GetObjectItem(cJSON_GetObjectItem(pv, "split"), "marginals")->valuedouble;
  double sel = cJSON_GetObjectItem(g, "rho_selection")->valuedouble;
  double mea = cJSON_GetObjectItem(g, aim ? "rho_marginals" : "rho_edges")->valuedouble;
  double dconv = cJSON_GetObjectItem(pv, "delta_conversion")->valuedouble;
  double dthr = cJSON_GetObjectItem(pv, "delta_thresholds")->valuedouble;
  /* the tests of determined labels and bands, when they ran (docs/privacy.md) */
  cJSON *rl = cJSON_GetObjectItem(cJSON_GetObjectItem(pv, "split"), "relations");
  double rel = rl ? rl->valuedouble : 0;
  assert_true(fabs(marg + sel + mea + rel - rho) < 1e-4 * rho);
  /* grp is a band of x (x < 50): when the DP test keeps it, grp is drawn
   * from x and the model joins the other 3 columns */
  cJSON *dl = cJSON_GetObjectItem(cJSON_GetObjectItem(pv, "mechanisms"), "determined_labels");
  int joins = 3 - (dl ? (int)cJSON_GetObjectItem(dl, "maps")->valuedouble : 0);
  assert_true(joins >= 2);
  /* the row count and rounds of the numbers' order search (x and y are
   * numbers) come off the top; the determined labels' tests off the
   * measurements */
  double fd = dl ? cJSON_GetObjectItem(dl, "rho")->valuedouble : 0, top = rel - fd;
  cJSON *nr = cJSON_GetObjectItem(cJSON_GetObjectItem(pv, "mechanisms"), "relations");
  assert_non_null(nr);
  double eps_r = cJSON_GetObjectItem(nr, "epsilon_per_test")->valuedouble;
  double tests = cJSON_GetObjectItem(nr, "tests")->valuedouble;
  double rounds = cJSON_GetObjectItem(nr, "number_rounds")->valuedouble;
  double eps_n = cJSON_GetObjectItem(nr, "epsilon_per_round")->valuedouble;
  assert_true(eps_n <= eps_r);
  assert_true(top > 0 && fabs(top - (rho / 50 + tests * eps_r * eps_r / 8 + rounds * eps_n * eps_n / 8)) < 1e-4 * rho);
  assert_true(fabs(marg - (rho - top) / 3) < 1e-4 * rho);
  assert_true(fabs(sel - (aim ? (rho - top) * 2 / 30 : (rho - top) / 3)) < 1e-4 * rho);
  assert_true(zcdp_ref_ok(rho, 1.0, dconv));
  assert_true(fabs(dconv + dthr - 1e-5) < 1e-12);
  cJSON *sets = cJSON_GetObjectItem(g, aim ? "cliques" : "tree");
  if (aim) {
    /* AIM: rounds first cut for T = 2 (d - 1) = 6, sigma and epsilon then
     * the same or halved/doubled together, the last round spending what is
     * left: their costs add up to the two parts */
    assert_true(cJSON_GetArraySize(sets) >= 1 && cJSON_GetArraySize(sets) <= joins);
    cJSON *rounds = cJSON_GetObjectItem(g, "rounds");
    int nr = cJSON_GetArraySize(rounds);
    const double T = 2.0 * joins;
    assert_true(nr >= 2);
    assert_true(fabs(cJSON_GetObjectItem(g, "rounds_planned")->valuedouble - T) < 1e-12);
    double ss = 0, sm = 0, s_prev = 0, e_prev = 0;
    for (int i = 0; i < nr; i++) {
      cJSON *r = cJSON_GetArrayItem(rounds, i);
      double e = cJSON_GetObjectItem(r, "epsilon")->valuedouble, s = cJSON_GetObjectItem(r, "sigma")->valuedouble;
      if (i == 0) {
        assert_true(fabs(s - sqrt(T / (2 * mea))) < 1e-5 * s); /* mea: 6 digits */
        assert_true(fabs(e - sqrt(8 * sel / T)) < 1e-5 * e);
      } else if (i + 1 < nr) {
        assert_true(fabs(s - s_prev) < 1e-12 * s || fabs(2 * s - s_prev) < 1e-12 * s);
        assert_true(fabs(s * e - s_prev * e_prev) < 1e-9 * s * e); /* halved together */
      }
      ss += e * e / 8, sm += 1 / (2 * s * s), s_prev = s, e_prev = e;
    }
    assert_true(fabs(ss - sel) < 1e-4 * sel);
    assert_true(fabs(sm - mea) < 1e-4 * mea);
  } else {
    assert_int_equal(cJSON_GetArraySize(sets), joins);
    double sigma = cJSON_GetObjectItem(g, "edge_sigma")->valuedouble;
    assert_true(fabs(sigma - sqrt(joins / (2 * mea))) < 1e-4 * sigma);
    double er = cJSON_GetObjectItem(g, "selection_epsilon_per_round")->valuedouble;
    assert_true(fabs(joins * er * er / 8 - sel) < 1e-4 * sel);
  }
  char *acc = ms_fit_model_accounting(m);
  assert_non_null(strstr(acc, aim ? "aim selection:" : "mst edges:"));
  assert_non_null(strstr(acc, "total:        rho "));
  free(acc);
  cJSON_Delete(root);
  free(json);
  free(json2);
  ms_fit_model_free(m);
  ms_fit_model_free(m2);
  ms_frame_free(f);
  free(t);
}

static void test_mst_accounting_adds_up(void **state) {
  (void)state;
  accounting_adds_up(MS_FIT_METHOD_MST);
}

static void test_aim_accounting_adds_up(void **state) {
  (void)state;
  accounting_adds_up(MS_FIT_METHOD_AIM);
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

/* n rows generated by the records engine from the model's spec (*s, to
 * be freed with the sink after use). */
static memtable *generate_from(ms_fit_model *m, size_t n, memsink *mk, ms_spec **s) {
  char *json = ms_fit_model_to_json(m);
  ms_diag d;
  ms_diag_init(&d);
  assert_int_equal(memsink_generate(json, n, mk, s, &d), MS_OK);
  ms_diag_deinit(&d);
  free(json);
  assert_int_equal(mk->t[0].n, n);
  return &mk->t[0];
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
  memsink mk = {0};
  ms_spec *s = NULL;
  memtable *g = generate_from(m, n, &mk, &s);
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

static void assert_spec_loads(const char *json) {
  ms_spec *s = NULL;
  assert_int_equal(ms_spec_load_string(&s, json, strlen(json), "fitted.json", NULL), MS_OK);
  ms_spec_free(s);
}

/* Fewer than two columns: no tree, the budget is the marginals'. A table of
 * one column fits and its spec loads. */
static void test_mst_single_column(void **state) {
  (void)state;
  const char *t = "x\n1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n";
  ms_frame *f = parse(t);
  ms_fit_model *m = fit_mst(f, 1, 1);
  char *json = ms_fit_model_to_json(m);
  assert_null(strstr(json, "\"mst\": {"));
  assert_non_null(strstr(json, "\"model\": \"mst\""));
  assert_spec_loads(json);
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
  assert_int_equal(ms__dp_support(c, 12, 10, NULL, 1), MS_OK);
  const double want[12] = {0, 0, 25, 80, 140, 60, 15, 0, 0, 0, 45, 0};
  for (int i = 0; i < 12; i++) assert_true(c[i] == want[i]);
  /* a run of noise bins (sum of count - sigma 41) outweighing the one bin
   * above z sigma (45 - 10 = 35) is not the core: the run through the
   * significant bin is, and the noise bins (under z sigma) go */
  double e[12] = {28, 5, 26, 22, -3, 0, 1, 45, -2, 4, 0, 3};
  assert_int_equal(ms__dp_support(e, 12, 10, NULL, 1), MS_OK);
  for (int i = 0; i < 12; i++) assert_true(e[i] == (i == 7 ? 45 : 0));
  /* A cut: no run goes from bin 2 into bin 3 (0 and 1-3 of an integer
   * column's grid), but a bin of 2 sigma next to a kept one still joins.
   * A 0/1/2 code: 0 the core (174 - 65 above 139 - 65), 1-3 at 2.1 sigma
   * joins it; without the bins between them it is joined, with the six
   * empty bins of the full grid in between it was dropped. */
  unsigned char cut[6] = {0, 0, 0, 1, 0, 0};
  double s3[6] = {-20, 30, 174, 139, -50, 10};
  assert_int_equal(ms__dp_support(s3, 6, 65, cut, 1), MS_OK);
  assert_true(s3[2] == 174 && s3[3] == 139 && s3[0] == 0 && s3[1] == 0 && s3[5] == 0);
  /* a zero bin of noise (1.9 sigma) before 1-3 of a 1-10 score: the run
   * does not take it in (without the cut it would: 49 - 26 > 0) */
  double s4[5] = {-3, 49, 213, 212, 49};
  unsigned char cut4[5] = {0, 0, 1, 0, 0};
  assert_int_equal(ms__dp_support(s4, 5, 26, cut4, 1), MS_OK);
  assert_true(s4[1] == 0 && s4[2] == 213 && s4[3] == 212 && s4[4] == 49);
  double s5[5] = {-3, 49, 213, 212, 49};
  assert_int_equal(ms__dp_support(s5, 5, 26, NULL, 1), MS_OK);
  assert_true(s5[1] == 49);
  /* Fine bins inside kept grid bins (neg_ends 0): a bin of about 70 rows
   * drawn at -11 (sigma 44) does not end the run, so the two bins of data
   * before it stay (with neg_ends they went: 155 is under z sigma = 160
   * and 105 is joined only through a kept neighbour); the negative bin
   * itself is emptied. A cut still ends a run (bins apart on the scale). */
  double f1[7] = {155, 105, -11, 95, 400, 600, 300}, f2[7], f3[7];
  memcpy(f2, f1, sizeof f1), memcpy(f3, f1, sizeof f1);
  assert_int_equal(ms__dp_support(f1, 7, 44, NULL, 0), MS_OK);
  assert_true(f1[0] == 155 && f1[1] == 105 && f1[2] == 0 && f1[3] == 95 && f1[6] == 300);
  assert_int_equal(ms__dp_support(f2, 7, 44, NULL, 1), MS_OK);
  assert_true(f2[0] == 0 && f2[1] == 0 && f2[3] == 95 && f2[6] == 300);
  unsigned char gap3[7] = {0, 0, 0, 1, 0, 0, 0};
  assert_int_equal(ms__dp_support(f3, 7, 44, gap3, 0), MS_OK);
  assert_true(f3[0] == 0 && f3[1] == 0 && f3[3] == 95);
  /* Two clusters: a code's 0 drawn at the z sigma level (102.5 over the
   * 8 bins here) is the only peak, but the run of the other rows (sum of
   * count - sigma 229, above twice the peak run's 78 and z sigma) is kept
   * beside it; with the peak's run alone they were all dropped (nothing
   * else reaches 2 sigma next to 0 across the cut). A lesser run beside a
   * peak still goes (above, and here). */
  unsigned char cut8[8] = {0, 1, 0, 0, 0, 0, 0, 0};
  double g8[8] = {103, 32.7, 75.5, 88.5, 75.8, 82.4, 33.0, -6.8};
  assert_int_equal(ms__dp_support(g8, 8, 25, cut8, 1), MS_OK);
  assert_true(g8[0] == 103 && g8[1] == 32.7 && g8[5] == 82.4 && g8[6] == 33.0 && g8[7] == 0);
  double h8[8] = {103, 0, 0, 60, 0, 0, 0, 0};
  assert_int_equal(ms__dp_support(h8, 8, 25, cut8, 1), MS_OK);
  assert_true(h8[0] == 103 && h8[3] == 0);
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

/* The zoom's run (ms__dp_zoom_run) on 256 sub-bins of one grid span, over
 * 200 noise draws each. (a) 309 rows of log triglycerides (ln of a whole
 * mg/dl, mean 4.64, sd 0.52) in the span 3.16-10 at epsilon 4 (sz 14.6, sb
 * 7.3): the rows fill about 110 sub-bins, a fifth of the span's rows to a
 * group of 8 sub-bins or fewer, so no run the test can see holds them and
 * a narrowed span must still hold 90 % of them. The build before counted
 * the groups its run grew through at their (upward-biased) noisy counts
 * and narrowed the span to a sliver of the mode in some draws (diabetes'
 * s5 went to 4.76-5.09). (b) 2,000 rows of sodium 139 +- 3 (one decimal)
 * in the span 100-316 at epsilon 1 (sz 38.7, sb 22.3): narrowed in at
 * least 85 % of the draws (about 95 %), each narrowed span within 3 / 16
 * of the grid span and holding 93 % of the rows (the support test ends
 * the run where the bell's groups sink below the noise, 1.2-1.6 sd from
 * its middle; the run is widened by a quarter of its sub-bins each side;
 * unwidened, a narrowed span held 91 % in some draws). */
static int zoom_sub(double v, double lo, double hi) {
  int j = (int)floor((v - lo) / (hi - lo) * 256);
  return j < 0 ? 0 : j > 255 ? 255 : j;
}
static void test_dp_zoom_run(void **state) {
  (void)state;
  double rows[2][256] = {{0}}, c[256], g[256];
  const double lo[2] = {3.16228, 100}, hi[2] = {10, 316.228}, sz[2] = {14.6, 38.7}, sb[2] = {7.3, 22.3};
  const size_t n[2] = {309, 2000};
  ms_rng_key k = ms_rng_key_make(9, ms_rng_stream("test/zoom"));
  for (size_t i = 0; i < n[0]; i++)
    rows[0][zoom_sub(log(floor(exp(4.64 + 0.52 * ms_rng_normal(k, i, 0)))), lo[0], hi[0])] += 1;
  for (size_t i = 0; i < n[1]; i++)
    rows[1][zoom_sub(round(10 * (139 + 3 * ms_rng_normal(k, i, 1))) / 10, lo[1], hi[1])] += 1;
  for (int t = 0; t < 2; t++) {
    int narrowed = 0;
    double worst = 1;
    for (uint64_t d = 0; d < 200; d++) {
      for (int j = 0; j < 256; j++) c[j] = rows[t][j] + sz[t] * ms_rng_normal(k, 1000 + 1000 * (uint64_t)t + d, (uint64_t)j);
      const double w = (double)n[t] + sb[t] * ms_rng_normal(k, 5000 + (uint64_t)t, d);
      int a, b;
      const int gs = ms__dp_zoom_run(c, 256, sz[t], sb[t], w, g, &a, &b);
      assert_true(gs >= 0);
      if (!gs) continue;
      assert_true(a >= 0 && b < 256 && a <= b && 16 * (b - a + 1) <= 3 * 256);
      double in = 0;
      for (int j = a; j <= b; j++) in += rows[t][j];
      narrowed++;
      worst = fmin(worst, in / (double)n[t]);
    }
    if (t == 0) assert_true(worst >= 0.9);
    if (t == 1) assert_true(narrowed >= 170 && worst >= 0.93);
  }
}

/* a, b two independent fair labels, c = a xor b except for a tenth of the
 * rows: no pair of columns depends, the three together do. */
__attribute__((noinline)) static char *make_xor(size_t n) {
  char *s = NULL;
  size_t len = 0;
  FILE *fp = open_memstream(&s, &len);
  ms_rng_key k = ms_rng_key_make(5, ms_rng_stream("test/aim-xor"));
  fprintf(fp, "a,b,c\n");
  for (size_t i = 0; i < n; i++) {
    int a = ms_rng_uniform(k, i, 0) < 0.5, b = ms_rng_uniform(k, i, 1) < 0.5;
    int c = (a ^ b) ^ (ms_rng_uniform(k, i, 2) < 0.1);
    fprintf(fp, "%s,%s,%s\n", a ? "p" : "q", b ? "p" : "q", c ? "p" : "q");
  }
  fclose(fp);
  return s;
}

/* Share of n generated rows (from the model's spec) with c == a xor b. */
static double xor_share(ms_fit_model *m, size_t n) {
  memsink mk = {0};
  ms_spec *s = NULL;
  memtable *g = generate_from(m, n, &mk, &s);
  size_t j[3] = {memtable_col(g, "a"), memtable_col(g, "b"), memtable_col(g, "c")};
  double hits = 0;
  for (size_t r = 0; r < g->n; r++) {
    int v[3];
    for (int i = 0; i < 3; i++) {
      const char *const *cats = (const char *const *)g->schema.columns[j[i]].categories;
      v[i] = !strcmp(cats[(size_t)memtable_num(g, j[i], r)], "p");
    }
    hits += v[2] == (v[0] ^ v[1]);
  }
  memsink_free(&mk);
  ms_spec_free(s);
  return hits / (double)n;
}

/* AIM measures the 3-way marginal no pair reveals; MST's tree cannot hold
 * it. Without noise (k = 1) AIM's spec gives c two parents, and each rule's
 * shares are the data's conditional shares P(c | a, b) to 6 digits; the
 * generated rows keep c = a xor b in 90 % of the rows (sd of a share over
 * 20,000 rows: 0.002; bound 0.85) -- also from the reference sampler
 * of fit --sample --, MST's in about half. At epsilon = 1 on
 * 5,000 rows the triple scores about 4,000 against a noise penalty of
 * sqrt(2/pi) sigma 8 ~ 150: AIM keeps it, with the same bound. */
static void test_aim_measures_three_way(void **state) {
  (void)state;
  const size_t n = 5000, g = 20000;
  char *t = make_xor(n);
  ms_frame *f = parse(t);
  ms_fit_model *m = fit_method(f, MS_FIT_METHOD_AIM, 0, 1, 1);
  char *json = ms_fit_model_to_json(m);
  cJSON *root = cJSON_Parse(json);
  cJSON *fields = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(root, "tables"), 0), "fields");
  /* the data's counts n[a][b][c] */
  double cnt[2][2][2] = {{{0}}};
  const char *line = strchr(t, '\n') + 1;
  for (size_t r = 0; r < n; r++, line = strchr(line, '\n') + 1)
    cnt[line[0] == 'p'][line[2] == 'p'][line[4] == 'p'] += 1;
  int two_parents = 0;
  cJSON *fld;
  cJSON_ArrayForEach(fld, fields) {
    cJSON *when = cJSON_GetObjectItem(fld, "when"), *r;
    const char *name = cJSON_GetObjectItem(fld, "name")->valuestring;
    if (!when || !strstr(name, "_bin")) continue;
    cJSON_ArrayForEach(r, when) {
      char p0[8], b0[4], p1[8], b1[4];
      if (sscanf(cJSON_GetObjectItem(r, "if")->valuestring, "%7[a-c]_bin == '%3[0-9]' and %7[a-c]_bin == '%3[0-9]'",
                 p0, b0, p1, b1) != 4)
        continue;
      two_parents++;
      /* bins of a categorical are its labels in the visible field's rules */
      const char *l0 = bin_label_of(field_named(fields, p0), b0), *l1 = bin_label_of(field_named(fields, p1), b1);
      cJSON *v;
      cJSON_ArrayForEach(v, cJSON_GetObjectItem(r, "values")) {
        char own[2] = {name[0], 0};
        const char *lc = bin_label_of(field_named(fields, own), v->string);
        int idx[3] = {0, 0, 0}, ci = name[0] - 'a';
        idx[p0[0] - 'a'] = !strcmp(l0, "p");
        idx[p1[0] - 'a'] = !strcmp(l1, "p");
        double num = 0, den = 0;
        for (int x = 0; x < 2; x++) {
          idx[ci] = x;
          den += cnt[idx[0]][idx[1]][idx[2]];
        }
        idx[ci] = !strcmp(lc, "p");
        num = cnt[idx[0]][idx[1]][idx[2]];
        assert_true(fabs(v->valuedouble - num / den) < 5e-6);
      }
    }
  }
  assert_int_equal(two_parents, 4); /* one column given the other two: 2 x 2 rules */
  cJSON *aim = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "privacy"), "aim");
  assert_non_null(aim);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetArrayItem(cJSON_GetObjectItem(aim, "cliques"), 1)), 3);
  assert_true(xor_share(m, g) > 0.85);
  /* the reference sampler (fit --sample) draws from the same model */
  ms_frame *syn = NULL;
  ms_diag sd;
  ms_diag_init(&sd);
  assert_int_equal(ms_fit_model_sample(&syn, m, g, 4, 0, &sd), MS_OK);
  double hits = 0;
  for (size_t r = 0; r < syn->n_rows; r++) {
    int v[3];
    for (int i = 0; i < 3; i++) {
      const ms_frame_col *c = &syn->cols[i];
      assert_true(c->code[r] >= 0);
      v[i] = !strcmp(c->levels[c->code[r]], "p");
    }
    hits += v[2] == (v[0] ^ v[1]);
  }
  assert_true(hits / (double)syn->n_rows > 0.85);
  ms_frame_free(syn);
  ms_diag_deinit(&sd);
  ms_fit_model *mst = fit_method(f, MS_FIT_METHOD_MST, 0, 1, 1);
  assert_true(fabs(xor_share(mst, g) - 0.5) < 0.05);
  ms_fit_model *dp = fit_method(f, MS_FIT_METHOD_AIM, 1, 3, 0);
  assert_true(xor_share(dp, g) > 0.85);
  ms_fit_model_free(dp);
  ms_fit_model_free(mst);
  cJSON_Delete(root);
  free(json);
  ms_fit_model_free(m);
  ms_frame_free(f);
  free(t);
}

/* a, b two labels of 8 values, b = a or a + 1 (mod 8); c and e two
 * independent two-label columns; at epsilon = 0.3 on 3,000 rows. AIM's
 * rounds may measure a table of the model again instead of joining (the
 * pair a, b scores high), and when the budget is spent before every column
 * is joined the model is a forest: a column of no clique is drawn from its
 * released shares. Among fit seeds 1..40 some give a forest (5 of 30 did
 * when this was written); for the first: the records engine and the
 * reference sampler draw every column of every row, and each component's
 * root has its bin field's shares (sd of a share over 20,000 rows < 0.0036,
 * bound 0.015; over the sampler's 4,000 rows < 0.008, bound 0.04). */
static void test_aim_forest_when_budget_runs_out(void **state) {
  (void)state;
  const size_t n = 3000, d = 4, g = 20000;
  const char *names[4] = {"a", "b", "c", "e"};
  char *t = NULL;
  size_t len = 0;
  FILE *fp = open_memstream(&t, &len);
  ms_rng_key k = ms_rng_key_make(11, ms_rng_stream("test/aim-forest"));
  fprintf(fp, "a,b,c,e\n");
  for (size_t i = 0; i < n; i++) {
    int a = (int)(8 * ms_rng_uniform(k, i, 0)), b = (a + (ms_rng_uniform(k, i, 1) < 0.25)) % 8;
    fprintf(fp, "L%d,M%d,%s,%s\n", a, b, ms_rng_uniform(k, i, 2) < 0.4 ? "p" : "q",
            ms_rng_uniform(k, i, 3) < 0.6 ? "u" : "v");
  }
  fclose(fp);
  ms_frame *f = parse(t);
  ms_fit_model *m = NULL;
  cJSON *root = NULL;
  char *json = NULL;
  int nq = 0;
  for (uint64_t seed = 1; seed <= 40 && !m; seed++) {
    m = fit_method(f, MS_FIT_METHOD_AIM, 0.3, seed, 0);
    json = ms_fit_model_to_json(m);
    root = cJSON_Parse(json);
    cJSON *aim = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "privacy"), "aim");
    nq = cJSON_GetArraySize(cJSON_GetObjectItem(aim, "cliques"));
    if (nq < (int)d - 1) break;
    cJSON_Delete(root);
    free(json);
    ms_fit_model_free(m);
    m = NULL;
  }
  assert_non_null(m);
  cJSON *fields = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(root, "tables"), 0), "fields");
  memsink mk = {0};
  ms_spec *s = NULL;
  memtable *gt = generate_from(m, g, &mk, &s);
  ms_frame *syn = NULL;
  ms_diag sd;
  ms_diag_init(&sd);
  assert_int_equal(ms_fit_model_sample(&syn, m, 4000, 4, 0, &sd), MS_OK);
  int roots = 0;
  for (size_t j = 0; j < d; j++) {
    char bn[16];
    snprintf(bn, sizeof bn, "%s_bin", names[j]);
    size_t jc = memtable_col(gt, names[j]);
    assert_true(jc != SIZE_MAX);
    const char *const *cats = (const char *const *)gt->schema.columns[jc].categories;
    for (size_t r = 0; r < g; r++) assert_false(isnan(memtable_num(gt, jc, r)));
    const ms_frame_col *sc = &syn->cols[j];
    for (size_t r = 0; r < syn->n_rows; r++) assert_true(sc->code[r] >= 0);
    cJSON *bf = field_named(fields, bn), *vf = field_named(fields, names[j]), *v;
    assert_non_null(bf);
    if (cJSON_GetObjectItem(bf, "when")) continue;
    roots++;
    cJSON_ArrayForEach(v, cJSON_GetObjectItem(bf, "values")) {
      const char *lab = bin_label_of(vf, v->string);
      double hit = 0, shit = 0;
      for (size_t r = 0; r < g; r++) hit += !strcmp(cats[(size_t)memtable_num(gt, jc, r)], lab);
      for (size_t r = 0; r < syn->n_rows; r++) shit += !strcmp(sc->levels[sc->code[r]], lab);
      assert_true(fabs(hit / (double)g - v->valuedouble) < 0.015);
      assert_true(fabs(shit / (double)syn->n_rows - v->valuedouble) < 0.04);
    }
  }
  assert_int_equal(roots, (int)d - nq); /* one root a component */
  ms_frame_free(syn);
  ms_diag_deinit(&sd);
  memsink_free(&mk);
  ms_spec_free(s);
  cJSON_Delete(root);
  free(json);
  ms_fit_model_free(m);
  ms_frame_free(f);
  free(t);
}

/* A categorical of 300 labels, one of 2 and a number: the graphical models
 * leave the 300-label column out (its rules would pass the spec's 200),
 * every numeric column of AIM has at most 13 bins plus missing, and the
 * specs load, with and without noise. */
static void test_graph_models_keep_within_rule_limits(void **state) {
  (void)state;
  char *s = NULL;
  size_t len = 0;
  FILE *fp = open_memstream(&s, &len);
  ms_rng_key k = ms_rng_key_make(3, ms_rng_stream("test/many-labels"));
  fprintf(fp, "code,grp,val,w\n");
  for (size_t i = 0; i < 30000; i++) {
    int c = (int)(300 * ms_rng_uniform(k, i, 0));
    fprintf(fp, "K%03d,%s,%.1f,%.2f\n", c, c % 2 ? "a" : "b", c + 3 * ms_rng_normal(k, i, 1),
            ms_rng_normal(k, i, 2) + (c % 2));
  }
  fclose(fp);
  ms_frame *f = parse(s);
  for (int method = MS_FIT_METHOD_MST; method <= MS_FIT_METHOD_AIM; method++)
    for (int dp = 0; dp < 2; dp++) {
      ms_fit_model *m = fit_method(f, (ms_fit_method)method, dp ? 1 : 0, 2, 0);
      char *json = ms_fit_model_to_json(m);
      assert_null(strstr(json, "code_bin"));
      cJSON *root = cJSON_Parse(json), *fl;
      cJSON *fields = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(root, "tables"), 0), "fields");
      cJSON_ArrayForEach(fl, fields) {
        cJSON *w = cJSON_GetObjectItem(fl, "when");
        assert_true(!w || cJSON_GetArraySize(w) <= MS_SPEC_MAX_RULES);
        const char *name = cJSON_GetObjectItem(fl, "name")->valuestring;
        if (method == MS_FIT_METHOD_AIM && !strcmp(name, "val_bin"))
          assert_true(cJSON_GetArraySize(cJSON_GetObjectItem(fl, "values")) <= 14);
      }
      assert_spec_loads(json);
      cJSON_Delete(root);
      free(json);
      ms_fit_model_free(m);
    }
  ms_frame_free(f);
  free(s);
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
      cmocka_unit_test(test_dp_zoom_run),
      cmocka_unit_test(test_aim_measures_three_way),
      cmocka_unit_test(test_aim_accounting_adds_up),
      cmocka_unit_test(test_aim_forest_when_budget_runs_out),
      cmocka_unit_test(test_graph_models_keep_within_rule_limits),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
