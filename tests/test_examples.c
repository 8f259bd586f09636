/* Plausibility tests of the example specs in schemas/examples/: every spec
 * loads, generates through the public API (medsynth/records.h) into an
 * in-memory sink with a fixed seed, and the data look like the population
 * described in the clinical reference (docs/examples.md lists the figures).
 * ctest-labels: unit golden
 *
 * Tolerances are derived from the sample size: a mean is accepted within
 * K standard errors (K = 5, so a correct generator fails with probability
 * below 1e-6 per check) plus the rounding the spec applies; a proportion
 * within K * sqrt(p(1-p)/n). Reference figures marked E in the clinical
 * reference are checked with an extra stated margin. Seeds are fixed, so
 * the outcome is reproducible; the tolerances keep the checks honest when
 * the generator's draws change.
 *
 * The vocabulary loader (records/vocab.h) is used as an independent check:
 * every code the specs emit must exist in the shipped vocabulary, and lab
 * units and medication doses must equal the vocabulary's. */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <gsl/gsl_errno.h>

#include "medsynth/records.h"
#include "medsynth/table.h"
#include "records/vocab.h"

#define K 5.0
#define EX_DIR MS_SOURCE_DIR "/schemas/examples"
#define VOCAB_DIR MS_SOURCE_DIR "/schemas/vocab"

/* ---- in-memory sink -------------------------------------------------------- */

typedef struct {
  double *num;   /* every non-string type, as double (codes, days, 0/1) */
  char **str;    /* MS_COL_STRING */
  uint8_t *valid;
} mcol;

typedef struct {
  ms_table_schema schema;
  size_t n, cap;
  mcol *cols;
  int ended;
} mtable;

typedef struct {
  size_t n;
  mtable t[16];
  int fail;
} msink;

static mtable *mt_find(msink *m, const char *name) {
  for (size_t i = 0; i < m->n; i++)
    if (!strcmp(m->t[i].schema.name, name)) return &m->t[i];
  return NULL;
}

static ms_status sink_begin(void *ctx, const ms_table_schema *s, uint64_t expected) {
  (void)expected;
  msink *m = ctx;
  if (m->n == 16 || mt_find(m, s->name)) {
    m->fail = 1;
    return MS_ERR_INTERNAL;
  }
  mtable *t = &m->t[m->n++];
  memset(t, 0, sizeof *t);
  if (ms_table_schema_copy(&t->schema, s) != MS_OK) return MS_ERR_NOMEM;
  t->cols = calloc(s->n_columns, sizeof *t->cols);
  return t->cols ? MS_OK : MS_ERR_NOMEM;
}

static ms_status sink_chunk(void *ctx, const ms_chunk *c) {
  msink *m = ctx;
  mtable *t = mt_find(m, c->schema->name);
  if (!t || t->ended) {
    m->fail = 1;
    return MS_ERR_INTERNAL;
  }
  size_t need = t->n + c->n_rows;
  if (need > t->cap) {
    size_t cap = t->cap ? t->cap : 1024;
    while (cap < need) cap *= 2;
    for (size_t j = 0; j < t->schema.n_columns; j++) {
      mcol *mc = &t->cols[j];
      if (t->schema.columns[j].type == MS_COL_STRING) {
        char **ns = realloc(mc->str, cap * sizeof *ns);
        if (!ns) return MS_ERR_NOMEM;
        mc->str = ns;
      } else {
        double *nn = realloc(mc->num, cap * sizeof *nn);
        if (!nn) return MS_ERR_NOMEM;
        mc->num = nn;
      }
      uint8_t *nv = realloc(mc->valid, cap);
      if (!nv) return MS_ERR_NOMEM;
      mc->valid = nv;
    }
    t->cap = cap;
  }
  for (size_t j = 0; j < t->schema.n_columns; j++) {
    const ms_column *col = &t->schema.columns[j];
    const ms_colbuf *b = &c->cols[j];
    mcol *mc = &t->cols[j];
    for (size_t r = 0; r < c->n_rows; r++) {
      size_t o = t->n + r;
      mc->valid[o] = b->valid ? b->valid[r] : 1;
      switch (col->type) {
        case MS_COL_INT64: mc->num[o] = (double)((const int64_t *)b->data)[r]; break;
        case MS_COL_FLOAT64: mc->num[o] = ((const double *)b->data)[r]; break;
        case MS_COL_BOOL: mc->num[o] = ((const uint8_t *)b->data)[r]; break;
        case MS_COL_CATEGORICAL: mc->num[o] = ((const int32_t *)b->data)[r]; break;
        case MS_COL_DATE: mc->num[o] = ((const int32_t *)b->data)[r]; break;
        case MS_COL_DATETIME: mc->num[o] = (double)((const int64_t *)b->data)[r]; break;
        case MS_COL_STRING: {
          const char *s = (const char *)b->data + r * (col->str_width + 1);
          mc->str[o] = strndup(s, col->str_width);
          if (!mc->str[o]) return MS_ERR_NOMEM;
          break;
        }
        default: return MS_ERR_INTERNAL;
      }
    }
  }
  t->n = need;
  return MS_OK;
}

static ms_status sink_end(void *ctx, const char *name) {
  msink *m = ctx;
  mtable *t = mt_find(m, name);
  if (!t) return MS_ERR_INTERNAL;
  t->ended = 1;
  return MS_OK;
}

static void msink_free(msink *m) {
  for (size_t i = 0; i < m->n; i++) {
    mtable *t = &m->t[i];
    for (size_t j = 0; j < t->schema.n_columns; j++) {
      if (t->cols[j].str)
        for (size_t r = 0; r < t->n; r++) free(t->cols[j].str[r]);
      free(t->cols[j].str);
      free(t->cols[j].num);
      free(t->cols[j].valid);
    }
    free(t->cols);
    ms_table_schema_deinit(&t->schema);
  }
  memset(m, 0, sizeof *m);
}

/* ---- column access ---------------------------------------------------------- */

static size_t colidx(const mtable *t, const char *name) {
  for (size_t j = 0; j < t->schema.n_columns; j++)
    if (!strcmp(t->schema.columns[j].name, name)) return j;
  fail_msg("table %s has no column %s", t->schema.name, name);
  return 0;
}

static const mcol *C(const mtable *t, const char *name) { return &t->cols[colidx(t, name)]; }

/* Label of a categorical value (or the string of a string column). */
static const char *S(const mtable *t, const char *name, size_t r) {
  size_t j = colidx(t, name);
  const ms_column *c = &t->schema.columns[j];
  if (c->type == MS_COL_STRING) return t->cols[j].str[r];
  assert_int_equal(c->type, MS_COL_CATEGORICAL);
  size_t code = (size_t)t->cols[j].num[r];
  assert_true(code < c->n_categories);
  return c->categories[code];
}

static int is_label(const mtable *t, const char *name, size_t r, const char *label) {
  return strcmp(S(t, name, r), label) == 0;
}

static int band(double age) { return age < 40 ? 0 : age < 60 ? 1 : 2; }

typedef struct {
  double n, s, ss;
} acc;

static void acc_add(acc *a, double x) {
  a->n += 1;
  a->s += x;
  a->ss += x * x;
}
static double acc_mean(const acc *a) { return a->s / a->n; }
static double acc_sd(const acc *a) {
  double m = acc_mean(a);
  return sqrt(fmax(a->ss / a->n - m * m, 0) * a->n / (a->n - 1));
}
static double acc_se(const acc *a) { return acc_sd(a) / sqrt(a->n); }

/* |mean - want| <= K * SE + slack. */
#define CHECK_MEAN(a, want, slack, what)                                                    \
  do {                                                                                      \
    double m_ = acc_mean(&(a)), tol_ = K * acc_se(&(a)) + (slack);                          \
    if (!(fabs(m_ - (want)) <= tol_))                                                       \
      fail_msg("%s: mean %.3f, expected %.3f +- %.3f (n=%.0f)", what, m_, (double)(want),  \
               tol_, (a).n);                                                                \
  } while (0)

/* Observed share of successes vs expected p over n trials. */
#define CHECK_PROP(succ, n, p, slack, what)                                                  \
  do {                                                                                       \
    double o_ = (double)(succ) / (double)(n), p_ = (p);                                      \
    double tol_ = K * sqrt(p_ * (1 - p_) / (double)(n)) + (slack);                           \
    if (!(fabs(o_ - p_) <= tol_))                                                            \
      fail_msg("%s: share %.4f, expected %.4f +- %.4f (n=%zu)", what, o_, p_, tol_,           \
               (size_t)(n));                                                                 \
  } while (0)

/* ---- generating ----------------------------------------------------------- */

static void generate(const char *file, uint64_t rows, msink *m, ms_generate_report *rep) {
  gsl_set_error_handler_off();
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", EX_DIR, file);
  ms_diag d;
  ms_diag_init(&d);
  ms_spec *spec = NULL;
  ms_status st = ms_spec_load(&spec, path, &d);
  if (st == MS_OK) {
    ms_generate_params o;
    ms_generate_params_init(&o);
    o.rows = rows;
    o.has_seed = 1;
    o.seed = 20250101;
    o.threads = 2;
    ms_sink sink = {m, sink_begin, sink_chunk, sink_end};
    st = ms_generate(spec, &o, &sink, rep, &d);
  }
  if (st != MS_OK) {
    char *s = ms_diag_format(&d);
    fail_msg("%s: %s\n%s", file, ms_strerror(st), s ? s : "");
  }
  assert_false(m->fail);
  ms_spec_free(spec);
  ms_diag_deinit(&d);
}

/* Sorted string keys for foreign-key checks. */
typedef struct {
  const char *key;
  size_t row;
} keyrow;

static int keyrow_cmp(const void *a, const void *b) {
  return strcmp(((const keyrow *)a)->key, ((const keyrow *)b)->key);
}

static keyrow *key_index(const mtable *t, const char *col) {
  const mcol *c = C(t, col);
  keyrow *k = malloc((t->n ? t->n : 1) * sizeof *k);
  assert_non_null(k);
  for (size_t r = 0; r < t->n; r++) {
    k[r].key = c->str[r];
    k[r].row = r;
  }
  qsort(k, t->n, sizeof *k, keyrow_cmp);
  for (size_t r = 1; r < t->n; r++)
    if (!strcmp(k[r - 1].key, k[r].key)) fail_msg("duplicate key %s in %s", k[r].key, col);
  return k;
}

/* Row of the parent whose key is `key`; fails when absent. */
static size_t key_find(const keyrow *k, size_t n, const char *key) {
  keyrow probe = {key, 0};
  const keyrow *h = bsearch(&probe, k, n, sizeof *k, keyrow_cmp);
  if (!h) fail_msg("foreign key %s does not resolve", key);
  return h->row;
}

static ms__vocab *vocab(const char *name) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s.csv", VOCAB_DIR, name);
  ms_diag d;
  ms_diag_init(&d);
  ms__vocab *v = NULL;
  assert_int_equal(ms__vocab_load(&v, path, &d), MS_OK);
  ms_diag_deinit(&d);
  return v;
}

static double vnum(const ms__vocab *v, const char *key_col, const char *key, const char *col) {
  const char *s = ms__vocab_lookup(v, ms__vocab_col_find(v, key_col), key, ms__vocab_col_find(v, col));
  if (!s) fail_msg("vocabulary %s has no %s=%s", ms__vocab_path(v), key_col, key);
  return s[0] ? strtod(s, NULL) : NAN;
}

/* ---- outpatient ------------------------------------------------------------ */

static void test_examples_outpatient_is_plausible(void **state) {
  (void)state;
  msink m = {0};
  ms_generate_report rep;
  const uint64_t N = 100000;
  generate("outpatient.json", N, &m, &rep);
  mtable *t = mt_find(&m, "patients");
  assert_non_null(t);
  assert_int_equal(t->n, N);
  ms_generate_report_deinit(&rep);

  const mcol *age = C(t, "age"), *h = C(t, "height_cm"), *w = C(t, "weight_kg"),
             *bmi = C(t, "bmi"), *sbp = C(t, "sbp"), *dbp = C(t, "dbp"),
             *htn = C(t, "hypertension"), *dm = C(t, "diabetes"), *a1c = C(t, "hba1c"),
             *glu = C(t, "glucose_fasting"), *temp = C(t, "temp_c"), *bd = C(t, "birth_date"),
             *pulse = C(t, "pulse"), *spo2 = C(t, "spo2");
  static const double href[2][3] = {{163.0, 162.0, 159.5}, {176.5, 176.0, 174.0}};
  static const double wref[2][3] = {{76.0, 80.0, 75.5}, {89.3, 91.1, 88.3}};
  static const double bref[2][3] = {{28.6, 30.5, 29.7}, {28.7, 29.4, 29.2}};
  static const double sref[2][3] = {{110, 122, 137}, {119, 125, 133}};
  static const double dref[2][3] = {{68, 74, 67}, {71, 77, 70}};
  static const double htn_ref[3] = {0.234, 0.525, 0.716};
  static const double dm_ref[3] = {0.035, 0.177, 0.273};
  acc H[2][3] = {{{0}}}, W[2][3] = {{{0}}}, B[2][3] = {{{0}}}, SB[2][3] = {{{0}}},
      DB[2][3] = {{{0}}}, sexH[2] = {{0}};
  double htn_n[3] = {0}, htn_k[3] = {0}, htn_p[3] = {0}, htn_v[3] = {0};
  double dm_n[3] = {0}, dm_k[3] = {0}, dm_p[3] = {0}, dm_v[3] = {0};
  acc a1c_dm = {0}, a1c_no = {0}, glu_dm = {0}, glu_no = {0};
  size_t n_f = 0, temp_missing = 0, obese[3] = {0};
  double sxy = 0, sx = 0, sy = 0, sxx = 0, syy = 0;
  int32_t ref_day = ms_date_from_ymd(2025, 1, 1);
  ms__vocab *icd = vocab("icd10cm_common");
  size_t icd_code = ms__vocab_col_find(icd, "code");
  assert_int_equal(ms__vocab_index_build(icd, icd_code, NULL), MS_OK);

  for (size_t r = 0; r < t->n; r++) {
    int male = is_label(t, "sex", r, "M");
    n_f += !male;
    double a = age->num[r];
    assert_true(a >= 18 && a <= 90);
    int b = band(a);
    /* Birth date: the reference date minus `age` years, less up to 364 days. */
    double dd = ref_day - bd->num[r];
    assert_true(dd >= a * 365.0 && dd <= a * 365.25 + 366);
    assert_true(h->valid[r] && w->valid[r] && bmi->valid[r]);
    assert_true(h->num[r] >= (male ? 150 : 138) && h->num[r] <= (male ? 205 : 190));
    double bmi_calc = w->num[r] / ((h->num[r] / 100) * (h->num[r] / 100));
    assert_true(fabs(bmi->num[r] - bmi_calc) <= 0.051 + 1e-9);
    assert_true(bmi->num[r] >= 10 && bmi->num[r] <= 100);
    obese[b] += bmi->num[r] >= 30;
    acc_add(&H[male][b], h->num[r]);
    acc_add(&W[male][b], w->num[r]);
    acc_add(&B[male][b], bmi->num[r]);
    acc_add(&sexH[male], h->num[r]);
    assert_true(sbp->num[r] >= 80 && sbp->num[r] <= 230 && dbp->num[r] >= 40 && dbp->num[r] <= 130);
    acc_add(&SB[male][b], sbp->num[r]);
    acc_add(&DB[male][b], dbp->num[r]);
    sx += sbp->num[r];
    sy += dbp->num[r];
    sxy += sbp->num[r] * dbp->num[r];
    sxx += sbp->num[r] * sbp->num[r];
    syy += dbp->num[r] * dbp->num[r];
    assert_true(pulse->num[r] >= 40 && pulse->num[r] <= 140);
    if (spo2->valid[r]) assert_true(spo2->num[r] >= 88 && spo2->num[r] <= 100);
    if (!temp->valid[r])
      temp_missing++;
    else
      assert_true(temp->num[r] >= 35.0 && temp->num[r] <= 40.5);
    /* Prevalences: expected share per row from the reference model. */
    double ph = htn_ref[b] * (male ? 1.065 : 0.935);
    htn_n[b]++;
    htn_k[b] += htn->num[r];
    htn_p[b] += ph;
    htn_v[b] += ph * (1 - ph);
    double pd = dm_ref[b] * (male ? 1.139 : 0.867);
    dm_n[b]++;
    dm_k[b] += dm->num[r];
    dm_p[b] += pd;
    dm_v[b] += pd * (1 - pd);
    if (a1c->valid[r]) {
      assert_true(a1c->num[r] >= 4.0 && a1c->num[r] <= 14.0);
      if (dm->num[r]) acc_add(&a1c_dm, a1c->num[r]);
      else {
        assert_true(a1c->num[r] <= 6.4);
        acc_add(&a1c_no, a1c->num[r]);
      }
    }
    if (glu->valid[r]) {
      assert_true(glu->num[r] >= 60 && glu->num[r] <= 450);
      if (dm->num[r]) acc_add(&glu_dm, glu->num[r]);
      else {
        assert_true(glu->num[r] <= 125);
        acc_add(&glu_no, glu->num[r]);
      }
    }
    const char *dx = S(t, "dx_primary", r);
    if (ms__vocab_find(icd, icd_code, dx) == SIZE_MAX) fail_msg("dx %s is not in the vocabulary", dx);
    /* A diabetes code only for people with diabetes. */
    if (!strncmp(dx, "E11", 3)) assert_true(dm->num[r]);
  }
  ms__vocab_free(icd);

  CHECK_PROP(n_f, t->n, 0.508, 0, "share of women");
  CHECK_PROP(temp_missing, t->n, 0.05, 0, "temp_c missing");
  for (int s = 0; s < 2; s++) {
    for (int b = 0; b < 3; b++) {
      char what[64];
      snprintf(what, sizeof what, "height %s band %d", s ? "M" : "F", b);
      CHECK_MEAN(H[s][b], href[s][b], 0.1, what);
      snprintf(what, sizeof what, "weight %s band %d", s ? "M" : "F", b);
      CHECK_MEAN(W[s][b], wref[s][b], 0.5, what);
      /* Band BMIs in the reference are estimates (E): 0.6 kg/m2 margin. */
      snprintf(what, sizeof what, "BMI %s band %d", s ? "M" : "F", b);
      CHECK_MEAN(B[s][b], bref[s][b], 0.6, what);
      snprintf(what, sizeof what, "SBP %s band %d", s ? "M" : "F", b);
      CHECK_MEAN(SB[s][b], sref[s][b], 0.5, what);
      snprintf(what, sizeof what, "DBP %s band %d", s ? "M" : "F", b);
      CHECK_MEAN(DB[s][b], dref[s][b], 0.5, what);
    }
    /* SBP rises with age in both sexes. */
    assert_true(acc_mean(&SB[s][0]) < acc_mean(&SB[s][1]));
    assert_true(acc_mean(&SB[s][1]) < acc_mean(&SB[s][2]));
  }
  /* Men are taller than women by 12-16 cm. */
  double gap = acc_mean(&sexH[1]) - acc_mean(&sexH[0]);
  assert_true(gap > 12 && gap < 16);
  /* SBP-DBP correlation: 0.53-0.55 published, 0.6 in the model, plus the
   * shared hypertension shift. */
  double n = (double)t->n;
  double corr = (sxy / n - sx / n * sy / n) /
                sqrt((sxx / n - sx / n * sx / n) * (syy / n - sy / n * sy / n));
  assert_true(corr > 0.5 && corr < 0.75);
  /* Obesity by age band (NCHS 35.5 / 46.4 / 38.9 %): within 5 points. */
  static const double ob_ref[3] = {0.355, 0.464, 0.389};
  for (int b = 0; b < 3; b++) {
    char what[64];
    snprintf(what, sizeof what, "obesity band %d", b);
    CHECK_PROP(obese[b], htn_n[b], ob_ref[b], 0.05, what);
  }
  for (int b = 0; b < 3; b++) {
    double tol = K * sqrt(htn_v[b]) / htn_n[b];
    double o = htn_k[b] / htn_n[b], e = htn_p[b] / htn_n[b];
    if (fabs(o - e) > tol) fail_msg("hypertension band %d: %.4f vs %.4f +- %.4f", b, o, e, tol);
    /* The sex ratio barely moves the band figure: within 1.5 points. */
    if (fabs(o - htn_ref[b]) > tol + 0.015) fail_msg("hypertension band %d far from reference", b);
    tol = K * sqrt(dm_v[b]) / dm_n[b];
    o = dm_k[b] / dm_n[b];
    e = dm_p[b] / dm_n[b];
    if (fabs(o - e) > tol) fail_msg("diabetes band %d: %.4f vs %.4f +- %.4f", b, o, e, tol);
    if (fabs(o - dm_ref[b]) > tol + 0.015) fail_msg("diabetes band %d far from reference", b);
  }
  /* HbA1c: diabetes mean 7.4 % (treated diabetes, Diabetes in America), without diabetes ~5.5 %; glucose likewise. */
  CHECK_MEAN(a1c_dm, 7.4, 0.1, "HbA1c with diabetes");
  CHECK_MEAN(a1c_no, 5.5, 0.15, "HbA1c without diabetes");
  assert_true(acc_mean(&a1c_dm) > acc_mean(&a1c_no) + 1.2);
  CHECK_MEAN(glu_dm, 153, 4, "fasting glucose with diabetes");
  assert_true(acc_mean(&glu_dm) > acc_mean(&glu_no) + 40);
  msink_free(&m);
}

/* ---- ehr -------------------------------------------------------------------- */

static void test_examples_ehr_links_and_values(void **state) {
  (void)state;
  msink m = {0};
  ms_generate_report rep;
  generate("ehr.json", 3000, &m, &rep);
  ms_generate_report_deinit(&rep);
  mtable *pt = mt_find(&m, "patients"), *en = mt_find(&m, "encounters"),
         *lb = mt_find(&m, "labs"), *md = mt_find(&m, "medications");
  assert_non_null(pt);
  assert_non_null(en);
  assert_non_null(lb);
  assert_non_null(md);
  assert_int_equal(pt->n, 3000);
  assert_true(en->n > 3 * pt->n && lb->n > en->n && md->n > pt->n / 2);

  keyrow *pk = key_index(pt, "patient_id");
  keyrow *ek = key_index(en, "encounter_id");
  const mcol *age = C(pt, "age"), *es = C(pt, "enrol_start"), *ee = C(pt, "enrol_end"),
             *bd = C(pt, "birth_date"), *dm = C(pt, "diabetes"), *hypo = C(pt, "hypothyroidism");
  const mcol *vd = C(en, "visit_date");
  /* Encounters: keys resolve, dates inside the enrolment window and after
   * birth; visits per person-year by age band near NCHS ambulatory rates. */
  static const double rate_ref[3] = {2.94, 4.54, 7.92};
  double visits[3] = {0}, expect[3] = {0}, years[3] = {0};
  size_t *enc_parent = malloc(en->n * sizeof *enc_parent);
  assert_non_null(enc_parent);
  for (size_t r = 0; r < en->n; r++) {
    size_t p = key_find(pk, pt->n, S(en, "patient_id", r));
    enc_parent[r] = p;
    assert_true(vd->num[r] >= es->num[p] && vd->num[r] <= ee->num[p]);
    assert_true(vd->num[r] > bd->num[p]);
    double a = age->num[p];
    visits[a < 45 ? 0 : a < 65 ? 1 : 2] += 1;
  }
  for (size_t p = 0; p < pt->n; p++) {
    double a = age->num[p];
    int b = a < 45 ? 0 : a < 65 ? 1 : 2;
    double y = (ee->num[p] - es->num[p]) / 365.25;
    assert_true(y > 1.9 && y <= 5.0);
    double mult = (is_label(pt, "sex", p, "F") && a < 45) ? 1.3 : 1.0;
    years[b] += y;
    expect[b] += y * rate_ref[b] * mult;
  }
  for (int b = 0; b < 3; b++) {
    /* Poisson counts: SD of the total is sqrt(expected total). */
    double tol = K * sqrt(expect[b]) + 0.005 * expect[b];
    if (fabs(visits[b] - expect[b]) > tol)
      fail_msg("visits band %d: %.0f vs %.0f +- %.0f", b, visits[b], expect[b], tol);
    /* And the rate itself is of the right size (women < 45 visit more). */
    double rate = visits[b] / years[b];
    assert_true(rate > rate_ref[b] * 0.95 && rate < rate_ref[b] * 1.2);
  }
  /* Labs: codes, units and value ranges from the vocabulary. */
  ms__vocab *lv = vocab("labs_loinc");
  size_t lk = ms__vocab_col_find(lv, "loinc");
  assert_int_equal(ms__vocab_index_build(lv, lk, NULL), MS_OK);
  const mcol *val = C(lb, "value"), *cd = C(lb, "collected_date");
  acc a1c_dm = {0}, a1c_no = {0};
  size_t psa_f = 0;
  for (size_t r = 0; r < lb->n; r++) {
    size_t e = key_find(ek, en->n, S(lb, "encounter_id", r));
    size_t p = enc_parent[e];
    assert_true(cd->num[r] == vd->num[e]);
    const char *code = S(lb, "loinc", r);
    size_t row = ms__vocab_find(lv, lk, code);
    if (row == SIZE_MAX) fail_msg("LOINC %s not in the vocabulary", code);
    assert_string_equal(S(lb, "unit", r), ms__vocab_cell(lv, row, ms__vocab_col_find(lv, "unit")));
    assert_true(val->valid[r]);
    double lo = vnum(lv, "loinc", code, "plausible_min"), hi = vnum(lv, "loinc", code, "plausible_max");
    if (!(val->num[r] >= lo && val->num[r] <= hi))
      fail_msg("lab %s value %g outside [%g, %g]", code, val->num[r], lo, hi);
    int male = is_label(pt, "sex", p, "M");
    if (!strcmp(code, "2857-1")) psa_f += !male;
    if (!strcmp(code, "4548-4")) acc_add(dm->num[p] ? &a1c_dm : &a1c_no, val->num[r]);
  }
  assert_int_equal(psa_f, 0);
  assert_true(a1c_dm.n > 30 && a1c_no.n > 30);
  assert_true(acc_mean(&a1c_dm) > acc_mean(&a1c_no) + 1.0);
  ms__vocab_free(lv);
  /* Medications: names, ATC-coded doses and indications agree with the
   * patient's conditions. */
  ms__vocab *mv = vocab("medications");
  const mcol *dose = C(md, "dose"), *sd = C(md, "start_date");
  size_t a10_no_dm = 0, levo_no_hypo = 0, a10_dm = 0;
  for (size_t r = 0; r < md->n; r++) {
    size_t p = key_find(pk, pt->n, S(md, "patient_id", r));
    const char *drug = S(md, "drug", r);
    double want = vnum(mv, "name", drug, "dose");
    assert_true(fabs(dose->num[r] - want) < 1e-9);
    assert_true(sd->num[r] >= es->num[p] && sd->num[r] <= ee->num[p]);
    const char *atc = ms__vocab_lookup(mv, ms__vocab_col_find(mv, "name"), drug,
                                       ms__vocab_col_find(mv, "atc_code"));
    assert_non_null(atc);
    if (!strncmp(atc, "A10", 3)) {
      if (dm->num[p]) a10_dm++;
      else a10_no_dm++;
    }
    if (!strcmp(drug, "levothyroxine") && !hypo->num[p]) levo_no_hypo++;
  }
  assert_int_equal(a10_no_dm, 0);
  assert_int_equal(levo_no_hypo, 0);
  assert_true(a10_dm > 50);
  ms__vocab_free(mv);
  free(enc_parent);
  free(pk);
  free(ek);
  msink_free(&m);
}

/* ---- trial ------------------------------------------------------------------ */

static void test_examples_trial_effect_is_recoverable(void **state) {
  (void)state;
  msink m = {0};
  ms_generate_report rep;
  const uint64_t N = 60000;
  generate("trial.json", N, &m, &rep);
  ms_generate_report_deinit(&rep);
  mtable *t = mt_find(&m, "participants"), *ae = mt_find(&m, "adverse_events");
  assert_non_null(t);
  assert_non_null(ae);
  assert_int_equal(t->n, N);
  const mcol *age = C(t, "age"), *base = C(t, "sbp_baseline"), *wk = C(t, "sbp_week12"),
             *chg = C(t, "sbp_change"), *done = C(t, "completed"), *rd = C(t, "randomised_on");
  size_t n_active = 0, dropped = 0;
  acc age_arm[2] = {{0}}, base_arm[2] = {{0}}, chg_arm[2] = {{0}};
  for (size_t r = 0; r < t->n; r++) {
    int act = is_label(t, "arm", r, "active");
    n_active += act;
    assert_true(age->num[r] >= 40 && age->num[r] <= 75);
    assert_true(base->num[r] >= 140 && base->num[r] <= 179);
    acc_add(&age_arm[act], age->num[r]);
    acc_add(&base_arm[act], base->num[r]);
    assert_int_equal(done->num[r] != 0, wk->valid[r] != 0);
    assert_int_equal(chg->valid[r], wk->valid[r]);
    if (!wk->valid[r]) {
      dropped++;
      continue;
    }
    assert_true(chg->num[r] == wk->num[r] - base->num[r]);
    acc_add(&chg_arm[act], chg->num[r]);
  }
  /* 1:1 allocation. */
  CHECK_PROP(n_active, t->n, 0.5, 0, "share randomised to active");
  /* Randomisation balances baseline characteristics (difference ~ 0). */
  double d_age = acc_mean(&age_arm[1]) - acc_mean(&age_arm[0]);
  double se_age = sqrt(acc_se(&age_arm[1]) * acc_se(&age_arm[1]) + acc_se(&age_arm[0]) * acc_se(&age_arm[0]));
  assert_true(fabs(d_age) <= K * se_age);
  double d_base = acc_mean(&base_arm[1]) - acc_mean(&base_arm[0]);
  double se_base = sqrt(acc_se(&base_arm[1]) * acc_se(&base_arm[1]) + acc_se(&base_arm[0]) * acc_se(&base_arm[0]));
  assert_true(fabs(d_base) <= K * se_base);
  /* Dropout between 8 % and 18 %. */
  assert_true(dropped > 0.08 * N && dropped < 0.14 * N);
  /* Treatment effect: difference in mean change = -10 mmHg (dropout depends
   * on age and arm only, so completers estimate it without bias; rounding
   * to whole mmHg adds noise, not bias). */
  double eff = acc_mean(&chg_arm[1]) - acc_mean(&chg_arm[0]);
  double se = sqrt(acc_se(&chg_arm[1]) * acc_se(&chg_arm[1]) + acc_se(&chg_arm[0]) * acc_se(&chg_arm[0]));
  if (fabs(eff - (-10.0)) > K * se) fail_msg("treatment effect %.2f, want -10 +- %.2f", eff, K * se);
  /* Placebo arm: regression to the mean + placebo response: mean change
   * 0.5 * (150 - mean baseline) - 4 ... roughly -5 to -10. */
  assert_true(acc_mean(&chg_arm[0]) < -4 && acc_mean(&chg_arm[0]) > -14);
  /* Adverse events: keys resolve, onset within follow-up, more in active. */
  keyrow *k = key_index(t, "subject_id");
  const mcol *od = C(ae, "onset_date");
  double ae_arm[2] = {0};
  for (size_t r = 0; r < ae->n; r++) {
    size_t p = key_find(k, t->n, S(ae, "subject_id", r));
    assert_true(od->num[r] >= rd->num[p] + 1 && od->num[r] <= rd->num[p] + 84);
    ae_arm[is_label(t, "arm", p, "active")] += 1;
  }
  double rate_a = ae_arm[1] / (double)n_active, rate_p = ae_arm[0] / (double)(N - n_active);
  assert_true(rate_a > rate_p * 1.3);
  assert_true(rate_p > 0.6 && rate_p < 0.85);
  free(k);
  msink_free(&m);
}

/* ---- cohort filter ---------------------------------------------------------- */

static void test_examples_cohort_filter_selects_t2dm_40_70(void **state) {
  (void)state;
  msink m = {0};
  ms_generate_report rep;
  generate("cohort_t2dm.json", 2000, &m, &rep);
  mtable *t = mt_find(&m, "patients");
  assert_non_null(t);
  assert_int_equal(t->n, 2000);
  assert_int_equal(rep.n_tables, 1);
  assert_int_equal(rep.tables[0].rows, 2000);
  /* About 1 candidate in 12 qualifies (40-70 share ~0.5, diabetes ~0.2,
   * diagnosed 0.715, type 2 code 0.93). */
  double ratio = (double)rep.tables[0].candidates / 2000.0;
  assert_true(ratio > 8 && ratio < 20);
  ms_generate_report_deinit(&rep);
  const mcol *age = C(t, "age"), *a1c = C(t, "hba1c");
  acc hb = {0};
  for (size_t r = 0; r < t->n; r++) {
    assert_true(age->num[r] >= 40 && age->num[r] <= 70);
    assert_true(!strncmp(S(t, "dx_diabetes", r), "E11", 3));
    acc_add(&hb, a1c->num[r]);
  }
  CHECK_MEAN(hb, 7.4, 0.1, "HbA1c in the diabetes cohort");
  msink_free(&m);
}

/* ---- every example ---------------------------------------------------------- */

/* Every spec in schemas/examples loads and generates with the default rows,
 * and every child row's parent key resolves. Catches a new example that the
 * specific tests above do not know. */
static void test_examples_every_spec_generates(void **state) {
  (void)state;
  DIR *dir = opendir(EX_DIR);
  assert_non_null(dir);
  struct dirent *de;
  size_t n_specs = 0;
  while ((de = readdir(dir))) {
    size_t l = strlen(de->d_name);
    if (l < 6 || strcmp(de->d_name + l - 5, ".json")) continue;
    msink m = {0};
    ms_generate_report rep;
    generate(de->d_name, 0, &m, &rep);
    ms_generate_report_deinit(&rep);
    assert_true(m.n >= 1);
    for (size_t i = 0; i < m.n; i++) {
      mtable *t = &m.t[i];
      assert_true(t->ended);
      assert_true(t->n > 0);
      if (!t->schema.parent) continue;
      mtable *p = mt_find(&m, t->schema.parent);
      assert_non_null(p);
      /* The child's first column is the ref to the parent's key column. */
      const char *ref = t->schema.columns[0].name;
      keyrow *k = key_index(p, ref);
      for (size_t r = 0; r < t->n; r++) key_find(k, p->n, S(t, ref, r));
      free(k);
    }
    msink_free(&m);
    n_specs++;
  }
  closedir(dir);
  assert_true(n_specs >= 4);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_examples_outpatient_is_plausible),
      cmocka_unit_test(test_examples_ehr_links_and_values),
      cmocka_unit_test(test_examples_trial_effect_is_recoverable),
      cmocka_unit_test(test_examples_cohort_filter_selects_t2dm_40_70),
      cmocka_unit_test(test_examples_every_spec_generates),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
