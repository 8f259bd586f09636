/* Tests of the evaluator (gen/eval): k-d tree and blocked SGEMM nearest
 * neighbours against brute force (bit for bit), thread-count determinism,
 * determinism across thread counts, logistic regression on a known model,
 * and end-to-end reports on the breast-cancer fixture: a fitted model's
 * sample passes, a copy of the training table fails privacy, mismatched
 * columns are reported by name.
 * ctest-labels: unit */
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>
#include <gsl/gsl_errno.h>

#include "eval/eval_internal.h"
#include "medsynth/eval.h"
#include "medsynth/fit.h"
#include "medsynth/rng.h"

static void test_eval_kdtree_matches_brute_force(void **state) {
  (void)state;
  size_t n = 3000, nq = 500, dim = 7;
  double *P = malloc(n * dim * sizeof *P), *Q = malloc(nq * dim * sizeof *Q);
  ms_rng_key k = ms_rng_key_make(5, ms_rng_stream("test/kd"));
  for (size_t i = 0; i < n * dim; i++) P[i] = round(ms_rng_normal(k, i, 0) * 4) / 4; /* ties */
  for (size_t i = 0; i < nq * dim; i++) Q[i] = ms_rng_normal(k, i, 1);
  memcpy(Q, P + 10 * dim, dim * sizeof *Q); /* an exact duplicate */
  ms__kdtree *t = NULL;
  assert_int_equal(ms__kdtree_new(&t, P, n, dim), MS_OK);
  double *dist = malloc(nq * 2 * sizeof *dist);
  size_t *idx = malloc(nq * 2 * sizeof *idx);
  ms__kdtree_query(t, Q, nq, 2, dist, idx);
  assert_true(dist[0] == 0);
  for (size_t q = 0; q < nq; q++) {
    double b1 = INFINITY, b2 = INFINITY;
    size_t i1 = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
      double s = 0;
      for (size_t d = 0; d < dim; d++) s += (P[i * dim + d] - Q[q * dim + d]) * (P[i * dim + d] - Q[q * dim + d]);
      if (s < b1) b2 = b1, b1 = s, i1 = i;
      else if (s < b2) b2 = s;
    }
    assert_true(fabs(dist[2 * q] - sqrt(b1)) < 1e-12);
    assert_true(fabs(dist[2 * q + 1] - sqrt(b2)) < 1e-12);
    assert_int_equal(idx[2 * q], i1); /* first (smallest index) among ties */
  }
  ms__kdtree_free(t);
  free(P);
  free(Q);
  free(dist);
  free(idx);
}

/* Brute force in double with the same summation order; ties to the smaller
 * index. */
static void brute_nn(const double *P, size_t n, const double *q, size_t dim, double *b, size_t *bi) {
  b[0] = b[1] = INFINITY;
  bi[0] = bi[1] = SIZE_MAX;
  for (size_t i = 0; i < n; i++) {
    double s = 0;
    for (size_t d = 0; d < dim; d++) {
      double df = P[i * dim + d] - q[d];
      s += df * df;
    }
    if (s < b[0]) b[1] = b[0], bi[1] = bi[0], b[0] = s, bi[0] = i;
    else if (s < b[1]) b[1] = s, bi[1] = i;
  }
}

/* The blocked SGEMM search (and the automatic choice) equals brute force
 * exactly -- distances bit for bit, indices with ties to the smaller one --
 * on data with one-hot-like discrete columns, duplicated rows (more than the
 * candidate list holds) and exact copies among the queries. */
static void test_eval_nn_gemm_matches_brute_force(void **state) {
  (void)state;
  size_t n = 5000, nq = 700, dim = 40;
  double *P = malloc(n * dim * sizeof *P), *Q = malloc(nq * dim * sizeof *Q);
  ms_rng_key k = ms_rng_key_make(9, ms_rng_stream("test/nn"));
  for (size_t i = 0; i < n; i++)
    for (size_t d = 0; d < dim; d++)
      P[i * dim + d] = d < 20 ? round(ms_rng_normal(k, i, d) * 2) / 2 + 3 : (ms_rng_uniform(k, i, d) < 0.3) * sqrt(0.5);
  for (size_t i = 100; i < 160; i++) memcpy(P + i * dim, P + 99 * dim, dim * sizeof *P); /* 61 equal rows */
  for (size_t i = 0; i < nq; i++)
    for (size_t d = 0; d < dim; d++) Q[i * dim + d] = P[((i * 7) % n) * dim + d] + (i % 3 ? 0.25 * ms_rng_normal(k, i, 100 + d) : 0);
  memcpy(Q, P + 99 * dim, dim * sizeof *Q);
  for (int method = MS__NN_AUTO; method <= MS__NN_GEMM; method += MS__NN_GEMM) {
    ms__nn *t = NULL;
    assert_int_equal(ms__nn_new(&t, P, n, dim, (ms__nn_method)method), MS_OK);
    assert_int_equal(ms__nn_method_used(t), MS__NN_GEMM);
    double *dist = malloc(nq * 2 * sizeof *dist);
    size_t *idx = malloc(nq * 2 * sizeof *idx);
    assert_int_equal(ms__nn_query(t, Q, nq, 2, dist, idx), MS_OK);
    assert_true(dist[0] == 0 && dist[1] == 0);
    assert_int_equal(idx[0], 99);
    assert_int_equal(idx[1], 100);
    for (size_t q = 0; q < nq; q++) {
      double b[2];
      size_t bi[2];
      brute_nn(P, n, Q + q * dim, dim, b, bi);
      assert_true(dist[2 * q] == sqrt(b[0]));
      assert_true(dist[2 * q + 1] == sqrt(b[1]));
      assert_int_equal(idx[2 * q], bi[0]);
      assert_int_equal(idx[2 * q + 1], bi[1]);
      if (q % 3 == 0) assert_true(dist[2 * q] == 0); /* exact copies */
    }
    free(dist);
    free(idx);
    ms__nn_free(t);
  }
  free(P);
  free(Q);
}

/* Identical bytes for 1, 2 and 3 threads, for the k-d tree (low dimension)
 * and the blocked search (high dimension); query counts not a multiple of
 * the tile size. */
static void test_eval_nn_is_deterministic_across_threads(void **state) {
  (void)state;
  size_t n = 9000, nq = 1100;
  size_t dims[2] = {5, 33};
  ms_rng_key k = ms_rng_key_make(10, ms_rng_stream("test/nn-threads"));
  for (int di = 0; di < 2; di++) {
    size_t dim = dims[di];
    double *P = malloc(n * dim * sizeof *P), *Q = malloc(nq * dim * sizeof *Q);
    for (size_t i = 0; i < n * dim; i++) P[i] = ms_rng_normal(k, i, dim) * 10 + 50;
    for (size_t i = 0; i < nq * dim; i++) Q[i] = ms_rng_normal(k, i, 100 + dim) * 10 + 50;
    ms__nn *t = NULL;
    assert_int_equal(ms__nn_new(&t, P, n, dim, MS__NN_AUTO), MS_OK);
    assert_int_equal(ms__nn_method_used(t), di == 0 ? MS__NN_KDTREE : MS__NN_GEMM);
    double *ref = malloc(nq * 2 * sizeof *ref), *got = malloc(nq * 2 * sizeof *got);
    size_t *ri = malloc(nq * 2 * sizeof *ri), *gi = malloc(nq * 2 * sizeof *gi);
    omp_set_num_threads(1);
    assert_int_equal(ms__nn_query(t, Q, nq, 2, ref, ri), MS_OK);
    for (int th = 2; th <= 3; th++) {
      omp_set_num_threads(th);
      assert_int_equal(ms__nn_query(t, Q, nq, 2, got, gi), MS_OK);
      assert_memory_equal(ref, got, nq * 2 * sizeof *ref);
      assert_memory_equal(ri, gi, nq * 2 * sizeof *ri);
    }
    for (size_t q = 0; q < nq; q += 97) {
      double b[2];
      size_t bi[2];
      brute_nn(P, n, Q + q * dim, dim, b, bi);
      assert_true(ref[2 * q] == sqrt(b[0]) && ref[2 * q + 1] == sqrt(b[1]));
      assert_int_equal(ri[2 * q], bi[0]);
    }
    free(ref);
    free(got);
    free(ri);
    free(gi);
    ms__nn_free(t);
    free(P);
    free(Q);
  }
}

static void test_eval_logreg_recovers_coefficients(void **state) {
  (void)state;
  size_t n = 20000, p = 2;
  double *X = malloc(n * p * sizeof *X), *y = malloc(n * sizeof *y), beta[3];
  ms_rng_key k = ms_rng_key_make(6, ms_rng_stream("test/logreg"));
  for (size_t i = 0; i < n; i++) {
    X[i * 2] = ms_rng_normal(k, i, 0);
    X[i * 2 + 1] = ms_rng_normal(k, i, 1);
    double eta = -0.5 + 1.2 * X[i * 2] - 0.8 * X[i * 2 + 1];
    y[i] = ms_rng_uniform(k, i, 2) < 1 / (1 + exp(-eta));
  }
  assert_int_equal(ms__logreg_fit(beta, X, y, n, p, 1e-6), MS_OK);
  /* Standard errors are about 0.02 at n = 20000; allow 5 of them. */
  assert_true(fabs(beta[0] + 0.5) < 0.1);
  assert_true(fabs(beta[1] - 1.2) < 0.1);
  assert_true(fabs(beta[2] + 0.8) < 0.1);
  free(X);
  free(y);
}

static ms_frame *read_fixture(const char *name, const ms_frame *like) {
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/data/%s", MS_SOURCE_DIR, name);
  ms_csv_params o;
  ms_csv_params_init(&o);
  ms_type_override ov[64] = {{0}};
  if (like) {
    for (size_t j = 0; j < like->n_cols; j++) ov[j].column = like->cols[j].name, ov[j].kind = like->cols[j].kind;
    o.types = ov;
    o.n_types = like->n_cols;
  }
  ms_frame *f = NULL;
  ms_diag d;
  ms_diag_init(&d);
  ms_status st = ms_frame_read_csv(&f, path, &o, &d);
  ms_diag_deinit(&d);
  assert_int_equal(st, MS_OK);
  return f;
}

static void test_eval_fitted_sample_passes_and_copy_fails(void **state) {
  (void)state;
  ms_frame *tr = read_fixture("breast_cancer_train.csv", NULL);
  ms_frame *ho = read_fixture("breast_cancer_holdout.csv", tr);
  ms_diag d;
  ms_diag_init(&d);
  ms_fit_model *m = NULL;
  assert_int_equal(ms_fit_model_new(&m, tr, NULL, &d), MS_OK);
  ms_frame *syn = NULL;
  assert_int_equal(ms_fit_model_sample(&syn, m, tr->n_rows, 1, 0, &d), MS_OK);
  ms_eval_params p;
  ms_eval_params_init(&p);
  p.target = "diagnosis";
  const char *qi[] = {"mean_radius", "mean_texture"};
  p.quasi_identifiers = qi;
  p.n_quasi_identifiers = 2;
  char outdir[1024];
  snprintf(outdir, sizeof outdir, "%s/test_eval_report", MS_BINARY_DIR);
  ms_eval_report *r = NULL;
  assert_int_equal(ms_eval_report_new(&r, tr, ho, syn, &p, outdir, &d), MS_OK);
  assert_true(ms_eval_report_number(r, "utility.marginal_similarity") > 0.9);
  assert_true(ms_eval_report_number(r, "utility.pmse_score") > 0.8);
  assert_true(ms_eval_report_number(r, "privacy.exact_copy_rate") == 0);
  double auc = ms_eval_report_number(r, "privacy.mia_auc");
  /* 113 members vs 113 non-members: AUC sd about 0.04 under no leak. */
  assert_true(auc > 0.35 && auc < 0.65);
  assert_true(ms_eval_report_number(r, "utility.tstr.tstr") > 0.85);
  assert_int_equal(ms_eval_report_verdict(r), MS_VERDICT_PASS);
  char path[1200];
  struct stat sb;
  const char *files[] = {"report.json", "report.md", "associations.png", "dcr.png", "columns/mean_radius.png",
                         "columns/diagnosis.png"};
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    snprintf(path, sizeof path, "%s/%s", outdir, files[i]);
    assert_int_equal(stat(path, &sb), 0);
    assert_true(sb.st_size > 200);
  }
  ms_eval_report_free(r);

  /* The training table itself as "synthetic": a privacy failure. */
  ms_frame *copy = read_fixture("breast_cancer_train.csv", tr);
  assert_int_equal(ms_eval_report_new(&r, tr, ho, copy, &p, NULL, &d), MS_OK);
  assert_true(ms_eval_report_number(r, "privacy.exact_copy_rate") == 1);
  assert_true(ms_eval_report_number(r, "privacy.mia_auc") > 0.95);
  assert_int_equal(ms_eval_report_verdict(r), MS_VERDICT_FAIL);
  assert_non_null(strstr(ms_eval_report_markdown(r), "**Privacy: fail.**"));
  ms_eval_report_free(r);
  ms_frame_free(copy);
  ms_frame_free(syn);
  ms_fit_model_free(m);
  ms_frame_free(tr);
  ms_frame_free(ho);
  ms_diag_deinit(&d);
}

static void test_eval_is_deterministic_across_threads(void **state) {
  (void)state;
  ms_frame *tr = read_fixture("diabetes_train.csv", NULL);
  ms_frame *ho = read_fixture("diabetes_holdout.csv", tr);
  ms_diag d;
  ms_diag_init(&d);
  ms_fit_model *m = NULL;
  assert_int_equal(ms_fit_model_new(&m, tr, NULL, &d), MS_OK);
  ms_frame *s1 = NULL, *s2 = NULL;
  omp_set_num_threads(1);
  assert_int_equal(ms_fit_model_sample(&s1, m, 500, 3, 0, &d), MS_OK);
  ms_eval_params p;
  ms_eval_params_init(&p);
  p.target = "progression";
  ms_eval_report *r1 = NULL, *r2 = NULL;
  assert_int_equal(ms_eval_report_new(&r1, tr, ho, s1, &p, NULL, &d), MS_OK);
  omp_set_num_threads(4);
  assert_int_equal(ms_fit_model_sample(&s2, m, 500, 3, 0, &d), MS_OK);
  for (size_t j = 0; j < s1->n_cols; j++)
    for (size_t r = 0; r < 500; r++) {
      if (s1->cols[j].num) assert_memory_equal(&s1->cols[j].num[r], &s2->cols[j].num[r], sizeof(double));
      else assert_int_equal(s1->cols[j].code[r], s2->cols[j].code[r]);
    }
  assert_int_equal(ms_eval_report_new(&r2, tr, ho, s2, &p, NULL, &d), MS_OK);
  assert_string_equal(ms_eval_report_json(r1), ms_eval_report_json(r2));
  ms_eval_report_free(r1);
  ms_eval_report_free(r2);
  ms_frame_free(s1);
  ms_frame_free(s2);
  ms_fit_model_free(m);
  ms_frame_free(tr);
  ms_frame_free(ho);
  ms_diag_deinit(&d);
}

static void test_eval_reports_mismatched_columns(void **state) {
  (void)state;
  ms_diag d;
  ms_diag_init(&d);
  ms_frame *a = NULL, *b = NULL;
  const char *ta = "x,y,z\n1,2,a\n3,4,b\n5,6,a\n";
  const char *tb = "x,w,z\n1,2,a\n3,4,b\n";
  assert_int_equal(ms_frame_parse_csv(&a, ta, strlen(ta), "real.csv", NULL, &d), MS_OK);
  assert_int_equal(ms_frame_parse_csv(&b, tb, strlen(tb), "syn.csv", NULL, &d), MS_OK);
  ms_eval_report *r = NULL;
  assert_int_equal(ms_eval_report_new(&r, a, NULL, b, NULL, NULL, &d), MS_ERR_DATA);
  assert_null(r);
  char *s = ms_diag_format(&d);
  assert_non_null(strstr(s, "syn.csv:1: error: w: column is not in the real table real.csv"));
  assert_non_null(strstr(s, "syn.csv:1: error: y: column of the real table is missing"));
  free(s);
  ms_frame_free(a);
  ms_frame_free(b);
  ms_diag_deinit(&d);
}

/* Rows of a table with a group column g (A 50 %, B 40 %, C 10 %), a number
 * x and a 0/1 target y that follows x (y = x > 0, reversed in group B).
 * drop_c: group C rows become A; noise_b: y is a coin flip in group B. */
static ms_frame *group_table(size_t n, uint64_t seed, int drop_c, int noise_b, const char *name) {
  char *s = NULL;
  size_t len = 0;
  FILE *fp = open_memstream(&s, &len);
  ms_rng_key k = ms_rng_key_make(seed, ms_rng_stream("test/groups"));
  fprintf(fp, "g,x,y\n");
  for (size_t i = 0; i < n; i++) {
    double u = ms_rng_uniform(k, i, 0), x = ms_rng_normal(k, i, 1);
    char g = u < 0.5 ? 'A' : u < 0.9 ? 'B' : 'C';
    int y = (x > 0) != (g == 'B');
    if (noise_b && g == 'B') y = ms_rng_uniform(k, i, 2) < 0.5;
    if (drop_c && g == 'C') g = 'A';
    fprintf(fp, "%c,%.3f,%d\n", g, x, y);
  }
  fclose(fp);
  ms_csv_params o;
  ms_csv_params_init(&o);
  static ms_type_override ov[] = {{.column = "g", .kind = MS_FKIND_CATEGORICAL},
                                  {.column = "y", .kind = MS_FKIND_CATEGORICAL}};
  o.types = ov;
  o.n_types = 2;
  ms_frame *f = NULL;
  ms_diag d;
  ms_diag_init(&d);
  assert_int_equal(ms_frame_parse_csv(&f, s, len, name, &o, &d), MS_OK);
  ms_diag_deinit(&d);
  free(s);
  return f;
}

static ms_eval_verdict verdict_of(const ms_eval_report *r, const char *metric) {
  const char *md = ms_eval_report_markdown(r), *at = strstr(md, metric);
  assert_non_null(at);
  const char *eol = strchr(at, '\n');
  for (int v = MS_VERDICT_FAIL; v >= MS_VERDICT_PASS; v--) {
    char cell[32];
    snprintf(cell, sizeof cell, "| %s |", ms_eval_verdict_name((ms_eval_verdict)v));
    const char *c = strstr(at, cell);
    if (c && c < eol) return (ms_eval_verdict)v;
  }
  fail_msg("no verdict on the line of %s", metric);
  return MS_VERDICT_FAIL;
}

/* --subgroups (docs/evaluate.md): a synthetic table from the same law
 * passes; one without group C fails its shares; one whose target is noise in
 * group B keeps the shares but fails that group's train-on-synthetic
 * utility, which the overall TSTR (groups A and C dominate) hides. */
static void test_eval_subgroups(void **state) {
  (void)state;
  ms_frame *tr = group_table(2000, 1, 0, 0, "train.csv"), *ho = group_table(1000, 2, 0, 0, "hold.csv");
  ms_frame *good = group_table(2000, 3, 0, 0, "good.csv"), *noc = group_table(2000, 3, 1, 0, "noc.csv");
  ms_frame *nob = group_table(2000, 3, 0, 1, "nob.csv");
  ms_diag d;
  ms_diag_init(&d);
  ms_eval_params p;
  ms_eval_params_init(&p);
  p.target = "y";
  const char *sg[] = {"g"};
  p.subgroups = sg;
  p.n_subgroups = 1;
  ms_eval_report *r = NULL;
  const char *shares = "subgroup shares", *util = "subgroup TSTR / TRTR";
  assert_int_equal(ms_eval_report_new(&r, tr, ho, good, &p, NULL, &d), MS_OK);
  assert_int_equal(verdict_of(r, shares), MS_VERDICT_PASS);
  assert_int_equal(verdict_of(r, util), MS_VERDICT_PASS);
  assert_non_null(strstr(ms_eval_report_json(r), "\"subgroups\""));
  ms_eval_report_free(r);
  assert_int_equal(ms_eval_report_new(&r, tr, ho, noc, &p, NULL, &d), MS_OK);
  assert_int_equal(verdict_of(r, shares), MS_VERDICT_FAIL);
  const char *cl = strstr(ms_eval_report_markdown(r), "| g | C | 0.");
  assert_non_null(cl);
  assert_non_null(strstr(cl, " | 0.0000 | fail |"));
  ms_eval_report_free(r);
  assert_int_equal(ms_eval_report_new(&r, tr, ho, nob, &p, NULL, &d), MS_OK);
  assert_int_equal(verdict_of(r, shares), MS_VERDICT_PASS);
  assert_int_equal(verdict_of(r, util), MS_VERDICT_FAIL);
  ms_eval_report_free(r);
  /* a numeric column is not a subgroup */
  const char *num[] = {"x"};
  p.subgroups = num;
  assert_int_equal(ms_eval_report_new(&r, tr, ho, good, &p, NULL, &d), MS_ERR_INVALID);
  char *msg = ms_diag_format(&d);
  assert_non_null(strstr(msg, "subgroup column \"x\" is numeric"));
  free(msg);
  ms_frame_free(tr), ms_frame_free(ho), ms_frame_free(good), ms_frame_free(noc), ms_frame_free(nob);
  ms_diag_deinit(&d);
}

int main(void) {
  gsl_set_error_handler_off();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_eval_kdtree_matches_brute_force),
      cmocka_unit_test(test_eval_nn_gemm_matches_brute_force),
      cmocka_unit_test(test_eval_nn_is_deterministic_across_threads),
      cmocka_unit_test(test_eval_logreg_recovers_coefficients),
      cmocka_unit_test(test_eval_fitted_sample_passes_and_copy_fails),
      cmocka_unit_test(test_eval_is_deterministic_across_threads),
      cmocka_unit_test(test_eval_reports_mismatched_columns),
      cmocka_unit_test(test_eval_subgroups),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
