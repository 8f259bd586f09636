/* Record generation: statistics with fixed seeds (tolerances derived from N),
 * rules, truncation, missingness, child tables, filters, and the
 * reproducibility contract (threads, chunk sizes, prefixes, shards, field-edit
 * isolation) checked by hashing generated columns.
 *
 * ctest-labels: unit */
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
#include "medsynth/rng.h"
#include "records/dist.h"
#include "records/plan.h"
#include "spec_helpers.h"

/* ---- helpers ---------------------------------------------------------------- */

typedef gen_opts run_opts;

static ms_status run(const ms_spec *s, const run_opts *ro, memsink *m, ms_generate_report *rep,
                     ms_diag *dout) {
  return gen_run(s, ro, m, rep, dout);
}

static void moments(const memtable *t, size_t j, double *mean, double *sd, size_t *n_valid) {
  double s = 0, s2 = 0;
  size_t n = 0;
  for (size_t r = 0; r < t->n; r++) {
    if (!t->valid[j][r]) continue;
    double v = memtable_num(t, j, r);
    s += v;
    s2 += v * v;
    n++;
  }
  *mean = s / (double)n;
  *sd = sqrt((s2 - s * s / (double)n) / (double)(n - 1));
  if (n_valid) *n_valid = n;
}

static double corr(const memtable *t, size_t a, size_t b) {
  double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
  size_t n = t->n;
  for (size_t r = 0; r < n; r++) {
    double x = memtable_num(t, a, r), y = memtable_num(t, b, r);
    sa += x;
    sb += y;
    saa += x * x;
    sbb += y * y;
    sab += x * y;
  }
  double cov = sab / n - (sa / n) * (sb / n);
  return cov / sqrt((saa / n - (sa / n) * (sa / n)) * (sbb / n - (sb / n) * (sb / n)));
}

/* |observed - expected| within 5 standard errors (two-sided p ~ 6e-7). */
#define assert_close_se(obs, exp, se)                                                      \
  do {                                                                                     \
    double o_ = (obs), e_ = (exp), s_ = (se);                                              \
    if (!(fabs(o_ - e_) <= 5 * s_)) {                                                      \
      print_error("%s = %g, expected %g +- 5 x %g\n", #obs, o_, e_, s_);                   \
      fail();                                                                              \
    }                                                                                      \
  } while (0)

/* ---- distributions ---------------------------------------------------------------- */


static void test_generate_distribution_moments(void **state) {
  (void)state;
  ms_spec *s = load(good_spec("generate_dists"));
  memsink m = {0};
  assert_int_equal(run(s, NULL, &m, NULL, NULL), MS_OK);
  memtable *t = tab(&m, "t");
  assert_int_equal(t->n, 100000);
  double N = 100000, mean, sd;
  struct {
    const char *name;
    double mean, var;
  } cases[] = {
      {"nrm", 50, 100},
      {"lgn", exp(1 + 0.125), (exp(0.25) - 1) * exp(2 + 0.25)},
      {"gam", 6, 18},
      {"bet", 10 + 10 * 2.0 / 7, 100 * 10.0 / (49 * 8)},
      {"uni", 1, 16.0 / 12},
      {"iun", 3.5, 35.0 / 12},
      {"exq", 4, 16},
      {"poi", 3.5, 3.5},
      {"pbig", 400, 400},
      {"bin", 6, 4.2},
      {"qua", 0.5 * 0.5 + 0.5 * 2, 0}, /* variance computed below */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    size_t j = col(t, cases[i].name);
    moments(t, j, &mean, &sd, NULL);
    double var = cases[i].var;
    if (!strcmp(cases[i].name, "qua")) {
      /* mixture of U(0,1) and U(1,3) with equal weights */
      double m2 = 0.5 * (1.0 / 3) + 0.5 * ((27.0 - 1.0) / 6.0);
      var = m2 - cases[i].mean * cases[i].mean;
    }
    assert_close_se(mean, cases[i].mean, sqrt(var / N));
    /* sd of the sample sd ~ sd * sqrt((kurtosis - 1) / (4N)); 2 x the normal
     * value covers the skewed laws here */
    assert_close_se(sd, sqrt(var), 2 * sqrt(var) * sqrt(2.0 / (4 * N)) * 3);
  }
  /* integers are integers; uniform integers hit every value in [1, 6] */
  size_t j = col(t, "iun");
  size_t hist[8] = {0};
  for (size_t r = 0; r < t->n; r++) {
    double v = memtable_num(t, j, r);
    assert_true(v >= 1 && v <= 6);
    hist[(int)v]++;
  }
  for (int k = 1; k <= 6; k++) assert_close_se((double)hist[k] / N, 1.0 / 6, sqrt(5.0 / 36 / N));
  j = col(t, "con");
  for (size_t r = 0; r < t->n; r++) assert_true(memtable_num(t, j, r) == 2.5);
  /* truncated gamma: inside the bounds; mean of the truncated law */
  j = col(t, "gtr");
  for (size_t r = 0; r < t->n; r++) {
    double v = memtable_num(t, j, r);
    assert_true(v >= 1 && v <= 4);
  }
  /* E[X | 1<=X<=4] for gamma(2, 3): integrate numerically */
  double num = 0, den = 0;
  for (int k = 0; k < 30000; k++) {
    double x = 1 + (k + 0.5) * 3.0 / 30000;
    double f = x * exp(-x / 3);
    num += x * f;
    den += f;
  }
  moments(t, j, &mean, &sd, NULL);
  assert_close_se(mean, num / den, sd / sqrt(N));
  memsink_free(&m);
  ms_spec_free(s);
}

static void test_generate_truncation_never_violated(void **state) {
  (void)state;
  const char *spec = good_spec("generate_truncation_never_violated");
  ms_spec *s = load(spec);
  memsink m = {0};
  assert_int_equal(run(s, NULL, &m, NULL, NULL), MS_OK);
  memtable *t = tab(&m, "t");
  size_t a = col(t, "a"), tl = col(t, "tail"), i = col(t, "i"), lo = col(t, "lo");
  size_t hit_lo = 0, hit_hi = 0;
  for (size_t r = 0; r < t->n; r++) {
    double va = memtable_num(t, a, r);
    assert_true(va >= -0.55 && va <= 2.04);
    assert_true(fabs(va * 10 - round(va * 10)) < 1e-9); /* one decimal */
    double vt = memtable_num(t, tl, r);
    assert_true(vt >= 9 && vt <= 9.5);
    double vi = memtable_num(t, i, r);
    assert_true(vi >= -3 && vi <= 7);
    hit_lo += vi == -3;
    hit_hi += vi == 7;
    assert_true(memtable_num(t, lo, r) >= va + 3);
  }
  /* integer bins at the bounds get a full unit of width, so both occur */
  assert_true(hit_lo > 0 && hit_hi > 0);
  /* a: rounded to 1 decimal inside [-0.55, 2.04] -> values in [-0.5, 2.0] */
  double mean, sd;
  moments(t, a, &mean, &sd, NULL);
  /* truncated normal mean: (phi(a) - phi(b)) / (Phi(b) - Phi(a)) */
  double pa = exp(-0.55 * 0.55 / 2) / sqrt(2 * M_PI), pb = exp(-2.04 * 2.04 / 2) / sqrt(2 * M_PI);
  double Pa = 0.5 * erfc(0.55 / sqrt(2)), Pb = 0.5 * erfc(-2.04 / sqrt(2));
  assert_close_se(mean, (pa - pb) / (Pb - Pa), sd / sqrt(50000.0) + 0.01);
  memsink_free(&m);
  ms_spec_free(s);
}

/* An integer owns the unit interval around it: a continuous law whose whole
 * mass lies in [1.5, 2.5] still gives the integer 2, so the spec that `fit`
 * writes for such a column (min = max = 2) is valid and every row is 2. */
static void test_generate_integer_window_is_the_unit_interval(void **state) {
  (void)state;
  const char *spec = good_spec("generate_integer_window_is_the_unit_interval");
  ms_spec *s = load(spec);
  memsink m = {0};
  assert_int_equal(run(s, NULL, &m, NULL, NULL), MS_OK);
  memtable *t = tab(&m, "t");
  size_t q = col(t, "q");
  for (size_t r = 0; r < t->n; r++) assert_true(memtable_num(t, q, r) == 2);
  memsink_free(&m);
  ms_spec_free(s);
  /* no integer at all in [0.2, 0.4]: still refused, with the reason */
  ms_diag d;
  ms_diag_init(&d);
  s = NULL;
  const char *bad =
      "{\"medsynth\": 1, \"tables\": [{\"name\": \"t\", \"rows\": 1, \"fields\": ["
      "{\"name\": \"q\", \"kind\": \"integer\", \"dist\": {\"type\": \"quantiles\", \"probs\": [0, 1], \"values\": [1.5, 2.5]}, \"min\": 3, \"max\": 4}]}]}";
  assert_int_not_equal(ms_spec_load_string(&s, bad, strlen(bad), "t.json", &d), MS_OK);
  char *msg = ms_diag_format(&d);
  assert_non_null(strstr(msg, "no probability between min 3 and max 4"));
  free(msg);
  ms_diag_deinit(&d);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- the outpatient spec -------------------------------------------------------- */


static void test_generate_rules_missing_and_children(void **state) {
  (void)state;
  ms_spec *s = load(good_spec("generate_outpatient"));
  memsink m = {0};
  ms_generate_report rep;
  assert_int_equal(run(s, NULL, &m, &rep, NULL), MS_OK);
  memtable *p = tab(&m, "patients"), *e = tab(&m, "encounters"), *l = tab(&m, "labs");
  assert_int_equal(p->n, 20000);
  assert_int_equal(rep.tables[0].rows, 20000);
  assert_int_equal(rep.tables[1].rows, e->n);
  assert_int_equal(rep.tables[2].rows, l->n);
  ms_generate_report_deinit(&rep);
  /* hidden field is not written; derived score is */
  assert_true(memtable_col(p, "tmp") == SIZE_MAX);
  size_t sex = col(p, "sex"), h = col(p, "height_cm"), age = col(p, "age"), pr = col(p, "pregnant"),
         hb = col(p, "hba1c"), bd = col(p, "birth_date"), w = col(p, "weight_kg"), bmi = col(p, "bmi");
  double sm = 0, sf = 0;
  size_t nm = 0, nf = 0, preg_f = 0, young = 0, young_miss = 0, old = 0, old_miss = 0;
  for (size_t r = 0; r < p->n; r++) {
    int male = !strcmp(memtable_str(p, sex, r), "M");
    double a = memtable_num(p, age, r);
    if (male) {
      sm += memtable_num(p, h, r);
      nm++;
    } else {
      sf += memtable_num(p, h, r);
      nf++;
    }
    /* the rule sets p = 0 for men and women over 50 */
    if (memtable_num(p, pr, r)) {
      assert_false(male);
      assert_true(a <= 50);
      preg_f++;
    }
    if (a < 40) {
      young++;
      young_miss += !p->valid[hb][r];
    } else {
      old++;
      old_miss += !p->valid[hb][r];
    }
    /* derived value follows its formula (both inputs rounded to 0.1) */
    double hv = memtable_num(p, h, r) / 100, bv = memtable_num(p, w, r) / (hv * hv);
    assert_true(fabs(memtable_num(p, bmi, r) - bv) <= 0.05 + 1e-9);
    /* birth date within the year before reference_date - age years */
    double ref = 20089; /* 2025-01-01 */
    double b = memtable_num(p, bd, r);
    assert_true(b <= ref - a * 365.2425 + 2 && b >= ref - (a + 1) * 365.2425 - 2);
  }
  double N = (double)p->n;
  assert_close_se((double)nm / N, 0.492, sqrt(0.25 / N));
  assert_close_se(sm / nm, 176, 7.5 / sqrt(nm));
  assert_close_se(sf / nf, 162, 7 / sqrt(nf));
  size_t f_le50 = 0;
  for (size_t r = 0; r < p->n; r++)
    f_le50 += strcmp(memtable_str(p, sex, r), "M") && memtable_num(p, age, r) <= 50;
  assert_close_se((double)preg_f / f_le50, 0.04, sqrt(0.04 * 0.96 / f_le50));
  assert_close_se((double)young_miss / young, 0.7, sqrt(0.21 / young));
  assert_close_se((double)old_miss / old, 0.2, sqrt(0.16 / old));

  /* child counts: poisson(1 + age/40) truncated at 12 -> mean of 1 + E[age]/40 */
  assert_close_se((double)e->n / N, 1 + 52.5 / 40, sqrt((1 + 52.5 / 40 + 0.35) / N));
  /* every foreign key resolves, children follow their parents in order */
  size_t pid = col(p, "patient_id"), eref = col(e, "patient_id"), vd = col(e, "visit_date");
  size_t pi = 0;
  for (size_t r = 0; r < e->n; r++) {
    const char *k = memtable_str(e, eref, r);
    while (pi < p->n && strcmp(memtable_str(p, pid, pi), k)) pi++;
    assert_true(pi < p->n);
    /* visit after 18th birthday, never after the reference date */
    double v = memtable_num(e, vd, r);
    assert_true(v >= memtable_num(p, bd, pi) + 18 * 365);
    assert_true(v <= 20089);
  }
  /* encounter ids are 1..n; lab refs resolve into them */
  size_t eid = col(e, "encounter_id");
  for (size_t r = 0; r < e->n; r++) assert_true(memtable_num(e, eid, r) == (double)(r + 1));
  size_t lref = col(l, "encounter_id"), dr = col(l, "drawn"), aa = col(l, "age_at");
  double last = 0;
  for (size_t r = 0; r < l->n; r++) {
    double k = memtable_num(l, lref, r);
    assert_true(k >= 1 && k <= (double)e->n);
    assert_true(k >= last); /* in parent order */
    last = k;
    double v = memtable_num(e, vd, (size_t)k - 1);
    assert_true(memtable_num(l, dr, r) >= v);
    assert_true(memtable_num(l, aa, r) >= 18);
  }
  assert_close_se((double)l->n / e->n, 1.5, sqrt(0.75 / e->n));
  /* hash ids are unique */
  size_t lid = col(l, "lab_id");
  char **ids = malloc(l->n * sizeof *ids);
  for (size_t r = 0; r < l->n; r++) ids[r] = (char *)memtable_str(l, lid, r);
  qsort(ids, l->n, sizeof *ids, cmp_str);
  for (size_t r = 1; r < l->n; r++) assert_true(strcmp(ids[r - 1], ids[r]) != 0);
  free(ids);
  memsink_free(&m);
  ms_spec_free(s);
}

/* ---- copula ------------------------------------------------------------------------ */

static void test_generate_copula_keeps_marginals_and_correlation(void **state) {
  (void)state;
  const char *spec = good_spec("generate_copula_keeps_marginals_and_correlation");
  ms_spec *s = load(spec);
  memsink m = {0};
  assert_int_equal(run(s, NULL, &m, NULL, NULL), MS_OK);
  memtable *t = tab(&m, "t");
  size_t x = col(t, "x"), y = col(t, "y"), z = col(t, "z"), f = col(t, "free");
  double N = 100000, mean, sd;
  /* normal marginals kept exactly: Pearson of the normals equals the matrix */
  assert_true(fabs(corr(t, x, y) - 0.6) < 0.02);
  assert_true(fabs(corr(t, x, f)) < 0.02);
  moments(t, x, &mean, &sd, NULL);
  assert_close_se(mean, 120, 15 / sqrt(N));
  assert_close_se(sd, 15, 15 / sqrt(2 * N));
  moments(t, y, &mean, &sd, NULL);
  assert_close_se(mean, 80, 10 / sqrt(N));
  /* truncation respected by the correlated gamma */
  for (size_t r = 0; r < t->n; r++) assert_true(memtable_num(t, z, r) <= 12 && memtable_num(t, z, r) > 0);
  /* rank correlation of a Gaussian copula: (6/pi) asin(r/2); compare signs
   * and size through Pearson on normal scores of z */
  assert_true(corr(t, x, z) < -0.2 && corr(t, y, z) > 0.1);
  memsink_free(&m);
  ms_spec_free(s);
}

/* ---- filters ---------------------------------------------------------------------- */


static void test_generate_filter_first_n_accepted(void **state) {
  (void)state;
  ms_spec *s = load(good_spec("generate_filtered"));
  memsink m = {0};
  ms_generate_report rep;
  assert_int_equal(run(s, NULL, &m, &rep, NULL), MS_OK);
  memtable *t = tab(&m, "p");
  assert_int_equal(t->n, 3000);
  size_t sex = col(t, "sex"), age = col(t, "age"), id = col(t, "id");
  for (size_t r = 0; r < t->n; r++) {
    assert_string_equal(memtable_str(t, sex, r), "F");
    assert_true(memtable_num(t, age, r) >= 60);
    assert_true(memtable_num(t, id, r) == (double)(r + 1)); /* ids count output rows */
  }
  /* child counts follow poisson(2): histogram of children per parent */
  memtable *v = tab(&m, "v");
  size_t pid = col(v, "pid");
  size_t *per = calloc(t->n, sizeof *per);
  for (size_t r = 0; r < v->n; r++) {
    double k = memtable_num(v, pid, r);
    assert_true(k >= 1 && k <= (double)t->n); /* the key resolves */
    per[(size_t)k - 1]++;
  }
  double pk = exp(-2.0);
  for (int k = 0; k <= 5; k++) {
    size_t hits = 0;
    for (size_t r = 0; r < t->n; r++) hits += per[r] == (size_t)k;
    assert_close_se((double)hits / t->n, pk, sqrt(pk * (1 - pk) / t->n));
    pk *= 2.0 / (k + 1);
  }
  free(per);
  /* acceptance probability 0.5 * 20/60 = 1/6: candidates ~ 6 x rows */
  double cand = (double)rep.tables[0].candidates;
  assert_close_se(3000 / cand, 1.0 / 6, sqrt((1.0 / 6) * (5.0 / 6) / cand));
  ms_generate_report_deinit(&rep);
  memsink_free(&m);
  ms_spec_free(s);
}

static void test_generate_filter_max_candidates_error(void **state) {
  (void)state;
  const char *spec =
      "{\"medsynth\": 1, \"tables\": [{\"name\": \"p\", \"rows\": 100, \"max_candidates\": 5000,"
      " \"filter\": \"x > 3.5\", \"fields\": ["
      "  {\"name\": \"x\", \"kind\": \"real\", \"dist\": {\"type\": \"normal\", \"mean\": 0, \"sd\": 1}}]}]}";
  ms_spec *s = load(spec);
  memsink m = {0};
  ms_diag d;
  ms_diag_init(&d);
  assert_int_equal(run(s, NULL, &m, NULL, &d), MS_ERR_DATA);
  char *txt = ms_diag_format(&d);
  assert_non_null(strstr(txt, "max_candidates = 5000"));
  assert_non_null(strstr(txt, "filter accepted only"));
  free(txt);
  ms_diag_deinit(&d);
  memsink_free(&m);
  ms_spec_free(s);
}

static void test_generate_hash_id_width_exhausted(void **state) {
  (void)state;
  const char *spec =
      "{\"medsynth\": 1, \"tables\": [{\"name\": \"p\", \"rows\": 70000, \"fields\": ["
      "  {\"name\": \"h\", \"kind\": \"id\", \"format\": \"hash\", \"width\": 4}]}]}";
  ms_spec *s = load(spec);
  memsink m = {0};
  ms_diag d;
  ms_diag_init(&d);
  assert_int_equal(run(s, NULL, &m, NULL, &d), MS_ERR_DATA);
  assert_non_null(strstr(d.entries[0].message, "has only 65536 distinct values"));
  ms_diag_deinit(&d);
  memsink_free(&m);
  /* 65536 rows fit, and every code is distinct */
  run_opts ro = {.rows = 65536, .threads = 2, .chunk = 5000};
  assert_int_equal(run(s, &ro, &m, NULL, NULL), MS_OK);
  memtable *t = tab(&m, "p");
  char **ids = malloc(t->n * sizeof *ids);
  for (size_t r = 0; r < t->n; r++) ids[r] = (char *)memtable_str(t, 0, r);
  qsort(ids, t->n, sizeof *ids, cmp_str);
  for (size_t r = 1; r < t->n; r++) assert_true(strcmp(ids[r - 1], ids[r]) != 0);
  free(ids);
  memsink_free(&m);
  ms_spec_free(s);
}

/* Child fields reading position-dependent parent fields (ids) see the
 * parent's final values, also in shards; a grandchild count reading a child
 * field that reads a parent field (z) is counted right for rows before a
 * shard. */
static void test_generate_child_reads_parent_ids(void **state) {
  (void)state;
  const char *spec = good_spec("generate_child_reads_parent_ids");
  ms_spec *s = load(spec);
  memsink whole = {0}, parts = {0};
  run_opts r = {.threads = 2, .chunk = 64};
  assert_int_equal(run(s, &r, &whole, NULL, NULL), MS_OK);
  memtable *c = tab(&whole, "c"), *g = tab(&whole, "g");
  size_t pn = col(c, "pn"), ten = col(c, "ten");
  for (size_t i = 0; i < c->n; i++) {
    assert_true(memtable_num(c, pn, i) >= 100);
    assert_true(memtable_num(c, ten, i) == 10 * memtable_num(c, pn, i));
  }
  assert_true(g->n > 0);
  for (size_t i = 0; i < g->n; i++) assert_true((long)memtable_num(g, col(g, "t"), i) % 10 == 1);
  for (uint32_t k = 0; k < 4; k++) {
    run_opts rs = {.threads = 1, .chunk = 50, .shard_k = k, .shard_n = 4};
    assert_int_equal(run(s, &rs, &parts, NULL, NULL), MS_OK);
  }
  assert_int_equal(whole.nt, 3);
  assert_same_tables(&whole, &parts);
  memsink_free(&whole);
  memsink_free(&parts);
  ms_spec_free(s);
}

static void test_generate_row_error_names_row(void **state) {
  (void)state;
  const char *spec =
      "{\"medsynth\": 1, \"tables\": [{\"name\": \"p\", \"rows\": 100, \"fields\": ["
      "  {\"name\": \"i\", \"kind\": \"integer\", \"dist\": {\"type\": \"uniform\", \"low\": 0, \"high\": 60}},"
      "  {\"name\": \"x\", \"kind\": \"real\", \"dist\": {\"type\": \"normal\", \"mean\": 0, \"sd\": \"i - 50\"}}]}]}";
  ms_spec *s = load(spec);
  memsink m = {0};
  ms_diag d;
  ms_diag_init(&d);
  assert_int_equal(run(s, NULL, &m, NULL, &d), MS_ERR_DATA);
  assert_true(d.count >= 1);
  assert_non_null(strstr(d.entries[0].where, "p/row "));
  assert_non_null(strstr(d.entries[0].message, "/tables/0/fields/1/dist/sd: must be > 0"));
  ms_diag_deinit(&d);
  memsink_free(&m);
  ms_spec_free(s);
}


/* ---- vocabularies, datetimes, rules over categories ------------------------------ */

static void test_generate_vocab_datetime_and_category_rules(void **state) {
  (void)state;
  const char *spec = good_spec("generate_vocab_datetime_and_category_rules");
  char path[4096];
  snprintf(path, sizeof path, "%s/schemas/examples/inline.json", MS_SOURCE_DIR);
  ms_diag d;
  ms_diag_init(&d);
  ms_spec *s = NULL;
  ms_status st = ms_spec_load_string(&s, spec, strlen(spec), path, &d);
  if (st) {
    char *t = ms_diag_format(&d);
    print_error("%s", t);
    free(t);
  }
  assert_int_equal(st, MS_OK);
  ms_diag_deinit(&d);
  memsink m = {0};
  assert_int_equal(run(s, NULL, &m, NULL, NULL), MS_OK);
  memtable *t = tab(&m, "t");
  size_t dx = col(t, "dx"), lb = col(t, "label"), age = col(t, "age"), grp = col(t, "grp"),
         seen = col(t, "seen");
  /* AMB weight 2.67 among the vocabulary's weights */
  const ms_column *dc = &t->schema.columns[dx];
  assert_true(dc->n_categories >= 3);
  assert_string_equal(dc->categories[0], "AMB");
  size_t amb = 0, child = 0, young_a = 0, young = 0;
  for (size_t r = 0; r < t->n; r++) {
    assert_string_equal(memtable_str(t, lb, r), memtable_str(t, dx, r)); /* {field} in templates */
    amb += !strcmp(memtable_str(t, dx, r), "AMB");
    double a = memtable_num(t, age, r);
    const char *g = memtable_str(t, grp, r);
    if (a < 20) {
      assert_string_equal(g, "child");
      child++;
    } else {
      assert_true(strcmp(g, "child") != 0);
      if (a < 50) {
        young++;
        young_a += !strcmp(g, "a");
      }
    }
    double v = memtable_num(t, seen, r);
    assert_true(v >= 1709251200.0 && v <= 1709424000.0); /* 2024-03-01 .. 2024-03-03 */
  }
  (void)child;
  assert_close_se((double)young_a / young, 0.75, sqrt(0.1875 / young));
  /* weights from the CSV: share of AMB = 2.67 / sum(weights) */
  double wsum = 0;
  char vpath[4096];
  snprintf(vpath, sizeof vpath, "%s/schemas/vocab/encounter_types.csv", MS_SOURCE_DIR);
  FILE *f = fopen(vpath, "r");
  assert_non_null(f);
  char line[1024];
  int header = 1;
  while (fgets(line, sizeof line, f)) {
    if (header) {
      header = 0;
      continue;
    }
    /* weight is the 4th column; descriptions here hold no commas in quotes
     * before it */
    char *p = line;
    for (int k = 0; k < 3 && p; k++) p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL;
    if (p && *p != '\n') wsum += strtod(p, NULL);
  }
  fclose(f);
  double pa = 2.67 / wsum;
  assert_close_se((double)amb / t->n, pa, sqrt(pa * (1 - pa) / t->n));
  memsink_free(&m);
  ms_spec_free(s);
}

/* ---- cached truncation windows ------------------------------------------------------ */

/* Parameters and bounds that vary per row go through windows cached by their
 * exact values (few distinct sets from a category; thousands from a
 * continuous input, which also evicts cache slots). Every value must equal
 * the uncached per-row draw ms__dist_draw_u on the row's own keyed uniform,
 * recomputed here from the documented keying: stream xxh64("table/field"),
 * counter (row, MS__LANE_VALUE). Covers lower and upper-tail (survival
 * function) windows, integer fields (windows on the half-integers around the
 * bounds), a discrete law and a lognormal (real and integer, with constant
 * and per-row parameters and bounds), each also under a "when" rule. */

static double expect_draw(ms__dist_type t, double p0, double p1, double lo, double hi, int integer,
                          double u) {
  ms__dist_args a = {.p = {p0, p1}};
  if (!integer) return ms__dist_draw_u(t, &a, lo, hi, u);
  double L = ceil(lo), H = floor(hi);
  if (ms__dist_is_discrete(t)) return ms__dist_draw_u(t, &a, L, H, u);
  double x = floor(ms__dist_draw_u(t, &a, L - 0.5, H + 0.5, u) + 0.5);
  return x < L ? L : x > H ? H : x;
}

static void test_generate_cached_windows_match_per_row_draws(void **state) {
  (void)state;
  ms_spec *s = load(good_spec("generate_windows"));
  memsink m = {0};
  run_opts ro = {.rows = 5000, .threads = 2, .chunk = 777};
  assert_int_equal(run(s, &ro, &m, NULL, NULL), MS_OK);
  memtable *t = tab(&m, "t");
  size_t jg = col(t, "g"), jy = col(t, "y");
  const char *names[] = {"up", "many", "ni", "po", "ln", "lni"};
  size_t checked = 0;
  for (int k = 0; k < 6; k++) {
    size_t j = col(t, names[k]);
    char sn[64];
    snprintf(sn, sizeof sn, "t/%s", names[k]);
    ms_rng_key key = ms_rng_key_make(11, ms_rng_stream(sn));
    for (size_t r = 0; r < t->n; r++) {
      int ga = memtable_num(t, jg, r) == 0; /* label index 0 = "a" */
      double y = memtable_num(t, jy, r);
      double u = ms_rng_uniform(key, r, MS__LANE_VALUE), want = NAN;
      switch (k) {
        case 0: want = expect_draw(MS__DIST_NORMAL, ga ? 0 : 0.5, 1, ga ? 2 : 2.5, 6, 0, u); break;
        case 1: want = expect_draw(MS__DIST_NORMAL, y * 10, 2, 3, 8, 0, u); break;
        case 2:
          want = y < 0.3 ? expect_draw(MS__DIST_NORMAL, 40, 5 + y, 45.5, 70, 1, u)
                         : expect_draw(MS__DIST_NORMAL, ga ? 50 : 60, 10, 45.5, 70, 1, u);
          break;
        case 3: want = expect_draw(MS__DIST_POISSON, ga ? 3 : 7.5, 0, 2, 9, 1, u); break;
        case 4: want = expect_draw(MS__DIST_LOGNORMAL, ga ? 1 : 1.5, 0.3, ga ? 2 : 3, 5, 0, u); break;
        case 5: want = expect_draw(MS__DIST_LOGNORMAL, ga ? 3 : 3.2, 0.25, 10, 40, 1, u); break;
      }
      double got = memtable_num(t, j, r);
      if (memcmp(&got, &want, sizeof got) != 0)
        fail_msg("%s row %zu: %.17g, uncached draw %.17g", names[k], r, got, want);
      checked++;
    }
  }
  assert_int_equal(checked, 6 * 5000);
  memsink_free(&m);
  ms_spec_free(s);
}

/* ---- reproducibility ----------------------------------------------------------------- */

static void hashes(const char *spec_text, const run_opts *ro, uint64_t *h, size_t nt) {
  ms_spec *s = load(spec_text);
  memsink m = {0};
  assert_int_equal(run(s, ro, &m, NULL, NULL), MS_OK);
  for (size_t i = 0; i < nt; i++) h[i] = i < m.nt ? memtable_hash(&m.t[i], 0, m.t[i].n) : 0;
  memsink_free(&m);
  ms_spec_free(s);
}

/* The first table of spec a, generated in one chunk, in chunks of 999 rows
 * and in chunks of 7 rows (1, 2, 2 threads), has the values of spec b's
 * (one chunk, one thread). */
static void same_values_any_chunks(const char *a, const char *b, uint64_t rows) {
  uint64_t ref[1], h[1];
  run_opts ro = {.rows = rows, .threads = 1, .chunk = 65536};
  hashes(b, &ro, ref, 1);
  size_t chunks[] = {65536, 999, 7};
  int threads[] = {1, 2, 2};
  for (int i = 0; i < 3; i++) {
    run_opts r2 = {.rows = rows, .threads = threads[i], .chunk = chunks[i]};
    hashes(a, &r2, h, 1);
    assert_true(h[0] == ref[0]);
  }
}

/* A "when" branch's parameters are evaluated on the rows that take the
 * branch only. Spec A (generate_when_branches_rules) puts log(y) and
 * sqrt(y), which have no value for y <= 0, inside rules that select y > 0;
 * spec B (generate_when_branches_if) writes the same laws as single if()
 * expressions over all rows. The fields have the same names
 * (hence streams), so the values must be identical, across chunkings; and
 * A must not fail on the rows the rules leave out (evaluating those
 * branches on every row would). Covers distribution parameters, a bool's p,
 * derived values (real and bool) and a missing rate. */
static void test_generate_when_branches_only_on_selected_rows(void **state) {
  (void)state;
  const char *rules = good_spec("generate_when_branches_rules"), *ifs = good_spec("generate_when_branches_if");
  same_values_any_chunks(rules, ifs, 4000);
  run_opts ro = {.rows = 4000, .threads = 1, .chunk = 65536};
  /* and the values are sensible: some rows took each branch */
  ms_spec *s = load(rules);
  memsink m = {0};
  assert_int_equal(run(s, &ro, &m, NULL, NULL), MS_OK);
  memtable *t = tab(&m, "t");
  size_t jy = col(t, "y"), jd = col(t, "d");
  size_t pos = 0;
  for (size_t r = 0; r < t->n; r++) {
    double y = memtable_num(t, jy, r), d = memtable_num(t, jd, r);
    if (y > 0) {
      assert_true(d == log(y));
      pos++;
    } else {
      assert_true(d == y);
    }
  }
  assert_true(pos > 1500 && pos < 2500);
  memsink_free(&m);
  ms_spec_free(s);
}

/* Rules that all read "a == 'x' and b == 'y'" (a conditional table with
 * two parents) are selected by one look-up per row. generate_when_two_labels
 * gives c one label per covered (a, b) pair, a4b2 -> "a4b2" (pairs with
 * (3a + b) % 4 == 0 and b6 left out, a later duplicate of (a1, b2) that never
 * wins), and x a normal of mean 10 a + b under the same pairs; a or b
 * missing (5 % and 15 % of rows) or b6 matches no rule. m mixes one- and
 * two-field rules. generate_when_two_labels_mixed writes some of c's and x's
 * rules with their comparisons swapped, so that they cannot take the look-up:
 * the values must be the same, whatever the chunking. */
static int two_label_rule(int i, int j) { return j < 6 && (i * 3 + j) % 4 != 0; }

static void test_generate_when_two_labels(void **state) {
  (void)state;
  const char *fast = good_spec("generate_when_two_labels");
  const char *mixed = good_spec("generate_when_two_labels_mixed");
  ms_spec *s = load(fast);
  memsink m = {0};
  run_opts ro = {.threads = 2, .chunk = 3000};
  assert_int_equal(run(s, &ro, &m, NULL, NULL), MS_OK);
  memtable *t = tab(&m, "t");
  size_t ja = col(t, "a"), jb = col(t, "b"), jc = col(t, "c"), jx = col(t, "x"), jm = col(t, "m");
  size_t ruled = 0, missing = 0, unruled = 0;
  for (size_t r = 0; r < t->n; r++) {
    int va = t->valid[ja][r], vb = t->valid[jb][r];
    int i = va ? memtable_str(t, ja, r)[1] - '0' : -1, j = vb ? memtable_str(t, jb, r)[1] - '0' : -1;
    const char *c = memtable_str(t, jc, r);
    double x = memtable_num(t, jx, r);
    assert_true(t->valid[jc][r] && t->valid[jx][r]);
    if (va && vb && two_label_rule(i, j)) {
      char want[32];
      snprintf(want, sizeof want, "a%db%d", i, j);
      if (strcmp(c, want)) fail_msg("row %zu (a%d, b%d): c = %s, expected %s", r, i, j, c, want);
      assert_true(fabs(x - (10 * i + j)) < 6);
      ruled++;
    } else {
      if (strcmp(c, "none") && strcmp(c, "other"))
        fail_msg("row %zu (a%d, b%d): c = %s, expected its own values", r, i, j, c);
      assert_true(fabs(x + 10) < 6);
      if (va && vb) unruled++;
      else missing++;
    }
    const char *want_m = va && vb && i == 0 && j == 1 ? "p"
                         : va && i == 2               ? "q"
                         : va && vb && i == 4 && j == 3 ? "r"
                                                        : "o";
    if (strcmp(memtable_str(t, jm, r), want_m))
      fail_msg("row %zu (a%d, b%d): m = %s, expected %s", r, i, j, memtable_str(t, jm, r), want_m);
  }
  assert_true(ruled > 10000 && missing > 2000 && unruled > 2000);
  memsink_free(&m);
  ms_spec_free(s);
  /* the look-up selects what evaluating every condition selects */
  same_values_any_chunks(fast, mixed, 6000);
}

static void test_generate_same_bytes_any_threads_and_chunks(void **state) {
  (void)state;
  const char *specs[] = {good_spec("generate_outpatient"), good_spec("generate_filtered")};
  for (int k = 0; k < 2; k++) {
    uint64_t ref[3], h[3];
    run_opts ro = {.rows = 3000, .threads = 1, .chunk = 65536};
    hashes(specs[k], &ro, ref, 3);
    int threads[] = {1, 2, 8};
    size_t chunks[] = {1, 7, 1000, 65536};
    for (int a = 0; a < 3; a++)
      for (int b = 0; b < 4; b++) {
        if (chunks[b] == 1 && threads[a] != 2) continue; /* slow; one combination is enough */
        run_opts r2 = {.rows = 3000, .threads = threads[a], .chunk = chunks[b]};
        hashes(specs[k], &r2, h, 3);
        for (int i = 0; i < 3; i++) assert_true(h[i] == ref[i]);
      }
  }
}

/* Expressions over the same columns share their row groupings within a
 * chunk (records/expr.h, ms__expr_scratch_share). Chunks of one size reuse
 * the same buffers, so a grouping kept from the previous chunk would match
 * by its pointers: the values of equal chunks of 4096 rows (more than the
 * rows worth a grouping) must equal those of one chunk, for example specs
 * with many formulas over categories and bands. */
static void test_generate_shared_groupings_not_kept_across_chunks(void **state) {
  (void)state;
  const char *files[] = {"outpatient.json", "cohort_t2dm.json", "trial.json"};
  for (int f = 0; f < 3; f++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/schemas/examples/%s", MS_SOURCE_DIR, files[f]);
    ms_diag d;
    ms_diag_init(&d);
    ms_spec *s = NULL;
    assert_int_equal(ms_spec_load(&s, path, &d), MS_OK);
    ms_diag_deinit(&d);
    uint64_t ref[4] = {0};
    const size_t chunks[] = {65536, 4096, 4096};
    const int threads[] = {1, 1, 2};
    for (int i = 0; i < 3; i++) {
      memsink m = {0};
      run_opts ro = {.rows = 12 * 4096, .threads = threads[i], .chunk = chunks[i]};
      assert_int_equal(run(s, &ro, &m, NULL, NULL), MS_OK);
      assert_true(m.nt >= 1 && m.nt <= 4);
      for (size_t t = 0; t < m.nt; t++) {
        uint64_t h = memtable_hash(&m.t[t], 0, m.t[t].n);
        if (i == 0) ref[t] = h;
        if (h != ref[t]) fail_msg("%s table %zu: chunks of %zu rows differ", files[f], t, chunks[i]);
      }
      memsink_free(&m);
    }
    ms_spec_free(s);
  }
}

static void test_generate_prefix_stable(void **state) {
  (void)state;
  const char *specs[] = {good_spec("generate_outpatient"), good_spec("generate_filtered")};
  for (int k = 0; k < 2; k++) {
    ms_spec *s = load(specs[k]);
    memsink big = {0}, small = {0};
    run_opts r1 = {.rows = 2000, .threads = 2, .chunk = 300};
    run_opts r2 = {.rows = 1000, .threads = 1, .chunk = 4096};
    assert_int_equal(run(s, &r1, &big, NULL, NULL), MS_OK);
    assert_int_equal(run(s, &r2, &small, NULL, NULL), MS_OK);
    memtable *b = &big.t[0], *sm = &small.t[0];
    assert_int_equal(sm->n, 1000);
    assert_true(memtable_hash(b, 0, 1000) == memtable_hash(sm, 0, 1000));
    /* children of the first 1000 roots are the first rows of the child table */
    memtable *bc = &big.t[1], *sc = &small.t[1];
    assert_true(sc->n < bc->n);
    assert_true(memtable_hash(bc, 0, sc->n) == memtable_hash(sc, 0, sc->n));
    memsink_free(&big);
    memsink_free(&small);
    ms_spec_free(s);
  }
}

static void test_generate_shards_equal_single_run(void **state) {
  (void)state;
  const char *specs[] = {good_spec("generate_outpatient"), good_spec("generate_filtered")};
  for (int k = 0; k < 2; k++) {
    ms_spec *s = load(specs[k]);
    memsink whole = {0}, parts = {0};
    run_opts r = {.rows = 2500, .threads = 2, .chunk = 400};
    assert_int_equal(run(s, &r, &whole, NULL, NULL), MS_OK);
    for (uint32_t i = 0; i < 3; i++) {
      run_opts rs = {.rows = 2500, .threads = 1 + i, .chunk = 333 + i, .shard_k = i, .shard_n = 3};
      assert_int_equal(run(s, &rs, &parts, NULL, NULL), MS_OK);
    }
    assert_same_tables(&whole, &parts);
    memsink_free(&whole);
    memsink_free(&parts);
    ms_spec_free(s);
  }
}

/* Changing one field's parameters leaves every field that does not read it
 * unchanged (draws are keyed by "table/field", not by position). */
static void test_generate_field_edit_isolation(void **state) {
  (void)state;
  char *edited = strdup(good_spec("generate_outpatient"));
  char *at = strstr(edited, "\"mean\": 78, \"sd\": 14");
  assert_non_null(at);
  memcpy(at, "\"mean\": 70, \"sd\": 19", 20);
  ms_spec *a = load(good_spec("generate_outpatient")), *b = load(edited);
  memsink ma = {0}, mb = {0};
  assert_int_equal(run(a, NULL, &ma, NULL, NULL), MS_OK);
  assert_int_equal(run(b, NULL, &mb, NULL, NULL), MS_OK);
  memtable *pa = &ma.t[0], *pb = &mb.t[0];
  const char *same[] = {"patient_id", "mrn", "sex", "age", "height_cm", "pregnant",
                        "birth_date", "hba1c", "score"};
  for (size_t i = 0; i < sizeof same / sizeof *same; i++) {
    size_t j = col(pa, same[i]);
    assert_true(memtable_col_hash(pa, j, 0, pa->n) == memtable_col_hash(pb, j, 0, pb->n));
  }
  /* the edited field and its dependants change */
  assert_true(memtable_col_hash(pa, col(pa, "weight_kg"), 0, pa->n) !=
              memtable_col_hash(pb, col(pb, "weight_kg"), 0, pb->n));
  assert_true(memtable_col_hash(pa, col(pa, "bmi"), 0, pa->n) !=
              memtable_col_hash(pb, col(pb, "bmi"), 0, pb->n));
  /* child tables do not read weight: unchanged */
  assert_true(memtable_hash(&ma.t[1], 0, ma.t[1].n) == memtable_hash(&mb.t[1], 0, mb.t[1].n));
  memsink_free(&ma);
  memsink_free(&mb);
  ms_spec_free(a);
  ms_spec_free(b);
  free(edited);
}

static void test_generate_rejects_bad_options(void **state) {
  (void)state;
  ms_spec *s = load(good_spec("generate_filtered"));
  memsink m = {0};
  ms_sink sink = memsink_sink(&m);
  ms_generate_params o;
  ms_generate_params_init(&o);
  ms_generate_report rep;
  ms_diag d;
  ms_diag_init(&d);
  o.shard_index = 3;
  o.shard_count = 3;
  assert_int_equal(ms_generate(s, &o, &sink, &rep, &d), MS_ERR_INVALID);
  ms_generate_report_deinit(&rep);
  ms_generate_params_init(&o);
  const char *names[] = {"nosuch"};
  o.tables = names;
  o.n_tables = 1;
  assert_int_equal(ms_generate(s, &o, &sink, &rep, &d), MS_ERR_INVALID);
  ms_generate_report_deinit(&rep);
  assert_int_equal(d.count, 2);
  assert_non_null(strstr(d.entries[1].message, "unknown table \"nosuch\""));
  assert_int_equal(m.nt, 0); /* nothing began */
  ms_diag_deinit(&d);
  ms_spec_free(s);
}

static void test_generate_seed_changes_values(void **state) {
  (void)state;
  uint64_t a[3], b[3], c[3];
  run_opts r1 = {.rows = 500, .threads = 1};
  run_opts r2 = {.rows = 500, .threads = 1, .has_seed = 1, .seed = 20240101};
  run_opts r3 = {.rows = 500, .threads = 1, .has_seed = 1, .seed = 99};
  hashes(good_spec("generate_outpatient"), &r1, a, 3);
  hashes(good_spec("generate_outpatient"), &r2, b, 3);
  hashes(good_spec("generate_outpatient"), &r3, c, 3);
  assert_true(a[0] == b[0]); /* the spec's seed is 20240101 */
  assert_true(a[0] != c[0]);
}

int main(void) {
  gsl_set_error_handler_off();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_generate_distribution_moments),
      cmocka_unit_test(test_generate_truncation_never_violated),
      cmocka_unit_test(test_generate_integer_window_is_the_unit_interval),
      cmocka_unit_test(test_generate_cached_windows_match_per_row_draws),
      cmocka_unit_test(test_generate_when_branches_only_on_selected_rows),
      cmocka_unit_test(test_generate_when_two_labels),
      cmocka_unit_test(test_generate_rules_missing_and_children),
      cmocka_unit_test(test_generate_copula_keeps_marginals_and_correlation),
      cmocka_unit_test(test_generate_filter_first_n_accepted),
      cmocka_unit_test(test_generate_filter_max_candidates_error),
      cmocka_unit_test(test_generate_row_error_names_row),
      cmocka_unit_test(test_generate_child_reads_parent_ids),
      cmocka_unit_test(test_generate_hash_id_width_exhausted),
      cmocka_unit_test(test_generate_vocab_datetime_and_category_rules),
      cmocka_unit_test(test_generate_same_bytes_any_threads_and_chunks),
      cmocka_unit_test(test_generate_shared_groupings_not_kept_across_chunks),
      cmocka_unit_test(test_generate_prefix_stable),
      cmocka_unit_test(test_generate_shards_equal_single_run),
      cmocka_unit_test(test_generate_field_edit_isolation),
      cmocka_unit_test(test_generate_seed_changes_values),
      cmocka_unit_test(test_generate_rejects_bad_options),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
