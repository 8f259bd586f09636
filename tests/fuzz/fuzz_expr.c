/* libFuzzer target: the expression language (records/expr.h).
 *
 * Each input is an expression source. It is scanned for names, compiled
 * against a fixed set of fields of every type and layout (as in
 * tests/test_expr.c) plus two constants and a small vocabulary for lookup(),
 * and, when it compiles, evaluated over a 16-row frame whose values include
 * missing entries, NaN, zeros, negatives, huge magnitudes and the extreme
 * dates, both as a whole and one row at a time; a constant expression is
 * also folded with ms__expr_eval_const. Row errors are formatted as the
 * generator would report them.
 *
 * Oracle: the sanitizers, plus: a failed compile leaves an error in the
 * diag; the whole-frame and row-at-a-time evaluations agree on which rows
 * are present and, for every type but strings, on their values (the same
 * bytes). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "medsynth/table.h"
#include "records/expr.h"
#include "records/vocab.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
  S_AGE,
  S_WEIGHT,
  S_SEX,
  S_BIRTH,
  S_DX,
  S_PREG,
  S_ADMIT,
  S_NVIS,
  S_DXCAT,
  S_PBIRTH,
  S_NAME,
  S_COUNT
};
#define ROWS 16

static const char *const sex_cats[] = {"F", "M"};
static const char *const dx_cats[] = {"E11.9", "I10", "J45", "E10.1"};

typedef struct {
  const char *name;
  ms__expr_type type;
  int slot;
  ms__expr_layout layout;
  size_t width;
  size_t n_cats;
  const char *const *cats;
  double num;
  const char *str;
} sym;

static const sym syms[] = {
    {"age", MS__EXPR_NUMBER, S_AGE, MS__EXPR_LAYOUT_F64, 0, 0, NULL, 0, NULL},
    {"weight_kg", MS__EXPR_NUMBER, S_WEIGHT, MS__EXPR_LAYOUT_F64, 0, 0, NULL, 0, NULL},
    {"sex", MS__EXPR_CATEGORICAL, S_SEX, MS__EXPR_LAYOUT_I32, 0, 2, sex_cats, 0, NULL},
    {"birth_date", MS__EXPR_DATE, S_BIRTH, MS__EXPR_LAYOUT_I32, 0, 0, NULL, 0, NULL},
    {"dx", MS__EXPR_STRING, S_DX, MS__EXPR_LAYOUT_STR_FIXED, 7, 0, NULL, 0, NULL},
    {"pregnant", MS__EXPR_BOOL, S_PREG, MS__EXPR_LAYOUT_U8, 0, 0, NULL, 0, NULL},
    {"admit_time", MS__EXPR_DATETIME, S_ADMIT, MS__EXPR_LAYOUT_I64, 0, 0, NULL, 0, NULL},
    {"n_visits", MS__EXPR_NUMBER, S_NVIS, MS__EXPR_LAYOUT_I64, 0, 0, NULL, 0, NULL},
    {"dx_primary", MS__EXPR_CATEGORICAL, S_DXCAT, MS__EXPR_LAYOUT_I32, 0, 4, dx_cats, 0, NULL},
    {"parent.birth_date", MS__EXPR_DATE, S_PBIRTH, MS__EXPR_LAYOUT_I32, 0, 0, NULL, 0, NULL},
    {"name", MS__EXPR_STRING, S_NAME, MS__EXPR_LAYOUT_STR_PTR, 0, 0, NULL, 0, NULL},
    {"reference_date", MS__EXPR_STRING, -1, MS__EXPR_LAYOUT_F64, 0, 0, NULL, 0, "2025-01-01"},
    {"study_days", MS__EXPR_NUMBER, -1, MS__EXPR_LAYOUT_F64, 0, 0, NULL, 365, NULL},
};
#define N_SYMS (sizeof syms / sizeof syms[0])

static ms__vocab *g_vocab;

static int resolve(void *ctx, const char *name, ms__expr_symbol *out, ms_diag *d,
                   const ms__expr_pos *pos) {
  (void)ctx;
  if (!strcmp(name, "parent.nothing")) {
    ms_diag_add(d, MS_ERR_SPEC, pos->file, pos->line, pos->column, pos->where,
                "table 'patients' has no field 'nothing'");
    return -1;
  }
  for (size_t i = 0; i < N_SYMS; i++) {
    if (strcmp(syms[i].name, name)) continue;
    memset(out, 0, sizeof *out);
    out->type = syms[i].type;
    out->slot = syms[i].slot;
    out->layout = syms[i].layout;
    out->str_width = syms[i].width;
    out->n_categories = syms[i].n_cats;
    out->categories = syms[i].cats;
    if (syms[i].slot < 0) {
      out->value.type = syms[i].type;
      out->value.num = syms[i].num;
      out->value.str = syms[i].str;
    }
    return 1;
  }
  return 0;
}

static const char *name_at(void *ctx, size_t i) {
  (void)ctx;
  return i < N_SYMS ? syms[i].name : NULL;
}

static ms__vocab *vocab(void *ctx, const char *name, ms_diag *d, const ms__expr_pos *pos) {
  (void)ctx;
  if (!strcmp(name, "icd") && g_vocab) return g_vocab;
  ms_diag_add(d, MS_ERR_NOTFOUND, pos->file, pos->line, pos->column, pos->where,
              "unknown vocabulary \"%s\"", name);
  return NULL;
}

static const ms__expr_resolver resolver = {NULL, resolve, name_at, vocab};

/* The frame: ROWS rows of every slot, built once. */
static struct {
  double age[ROWS], weight[ROWS];
  int32_t sex[ROWS], birth[ROWS], dxcat[ROWS], pbirth[4];
  uint32_t pbirth_index[ROWS];
  char dx[ROWS][8];
  const char *name[ROWS];
  uint8_t preg[ROWS];
  int64_t admit[ROWS], nvis[ROWS];
  uint8_t valid[S_COUNT][ROWS];
  ms__expr_col cols[S_COUNT];
} F;

static void frame_init(void) {
  static const double nums[ROWS] = {0,    1,     -1,    2.5,  -0.5, 1e308, -1e308, 1e-308,
                                    NAN,  40,    65.25, 1e15, 3,    100,   -7,     0.1};
  static const char *const strs[ROWS] = {"I10", "E11.9", "", "J45", "X", "E10.1", "I10", "a'b",
                                         "",    "J",     "I", "E11", "0", "E11.9", "zz", "I10"};
  const int32_t d_min = ms_date_from_ymd(1, 1, 1), d_max = ms_date_from_ymd(9999, 12, 31);
  for (int r = 0; r < ROWS; r++) {
    F.age[r] = nums[r];
    F.weight[r] = nums[(r + 5) % ROWS];
    F.sex[r] = r % 2;
    F.dxcat[r] = r % 4;
    F.birth[r] = r == 3 ? d_min : r == 4 ? d_max : (int32_t)(r * 3001 - 20000);
    F.pbirth_index[r] = (uint32_t)(r % 4);
    snprintf(F.dx[r], sizeof F.dx[r], "%s", strs[r]);
    F.name[r] = r == 6 ? NULL : strs[(r + 3) % ROWS];
    F.preg[r] = r % 3 == 0;
    F.admit[r] = r == 3 ? (int64_t)d_min * 86400 : r == 4 ? (int64_t)d_max * 86400 + 86399
                                                          : (int64_t)r * 7777777 - 1000000000;
    F.nvis[r] = r == 7 ? INT64_MAX : r == 8 ? INT64_MIN : r - 3;
    for (int s = 0; s < S_COUNT; s++) F.valid[s][r] = (r + s) % 7 != 0;
  }
  F.pbirth[0] = d_min;
  F.pbirth[1] = d_max;
  F.pbirth[2] = 0;
  F.pbirth[3] = 18000;
  const void *data[S_COUNT] = {F.age,  F.weight, F.sex,  F.birth,  F.dx,  F.preg,
                               F.admit, F.nvis,  F.dxcat, F.pbirth, F.name};
  for (int s = 0; s < S_COUNT; s++) {
    F.cols[s].data = data[s];
    F.cols[s].valid = F.valid[s];
  }
  F.cols[S_PBIRTH].index = F.pbirth_index;
  F.cols[S_PBIRTH].valid = NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  static const char csv[] =
      "code,description,weight\n"
      "E11.9,Type 2 diabetes,0.5\n"
      "I10,Hypertension,1.5\n"
      "J45,Asthma,\n";
  ms_diag d;
  ms_diag_init(&d);
  if (ms__vocab_load_string(&g_vocab, csv, sizeof csv - 1, "icd.csv", &d) != MS_OK) abort();
  ms_diag_deinit(&d);
  frame_init();
  return 0;
}

static void opts(ms__expr_compile_params *o, int escaped) {
  ms__expr_compile_params_init(o);
  o->file = "spec.json";
  o->line = 3;
  o->column = 20;
  o->where = "/tables/0/fields/1/expr";
  o->escaped = escaped;
}

static size_t value_size(ms__expr_type t) {
  switch (t) {
    case MS__EXPR_BOOL: return 1;
    case MS__EXPR_CATEGORICAL:
    case MS__EXPR_DATE: return 4;
    case MS__EXPR_DATETIME: return 8;
    case MS__EXPR_STRING: return sizeof(const char *);
    default: return sizeof(double);
  }
}

static void evaluate(const ms__expr *e) {
  if (ms__expr_n_slots(e) > S_COUNT) abort();
  ms__expr_scratch *s = ms__expr_scratch_new();
  if (!s) return;
  ms__expr_type t = ms__expr_result_type(e);
  size_t es = value_size(t);
  unsigned char all[ROWS * 8], one[8];
  uint8_t ok_all[ROWS], ok_one;
  ms__expr_error err;
  ms_status st = ms__expr_eval(e, F.cols, S_COUNT, ROWS, all, ok_all, s, &err);
  if (st != MS_OK) {
    ms_diag d;
    ms_diag_init(&d);
    ms__expr_error_report(e, &err, &d, "patients/0");
    ms_diag_deinit(&d);
  } else {
    /* Row by row through frame columns that start at that row. */
    for (size_t r = 0; r < ROWS; r++) {
      ms__expr_col c[S_COUNT];
      for (int k = 0; k < S_COUNT; k++) {
        c[k] = F.cols[k];
        if (c[k].index) {
          c[k].index += r;
          continue;
        }
        size_t w = k == S_DX ? 8 : k == S_PREG ? 1 : (k == S_SEX || k == S_BIRTH || k == S_DXCAT) ? 4 : 8;
        c[k].data = (const unsigned char *)c[k].data + r * w;
        c[k].valid += r;
      }
      if (ms__expr_eval(e, c, S_COUNT, 1, one, &ok_one, s, &err) != MS_OK) abort();
      if (ok_one != ok_all[r]) abort();
      if (ok_one && t != MS__EXPR_STRING && memcmp(one, all + r * es, es)) abort();
    }
  }
  ms__expr_scratch_free(s);
  if (ms__expr_is_const(e)) {
    ms__expr_value v;
    ms__expr_eval_const(e, &v, &err);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 1 << 20) return 0;
  char *src = malloc(size + 1);
  if (!src) return 0;
  memcpy(src, data, size);
  src[size] = 0;
  ms__expr_compile_params o;
  opts(&o, size > 0 && data[0] == '\\');
  ms_diag d;
  ms_diag_init(&d);
  char **names = NULL;
  size_t n_names = 0;
  if (ms__expr_scan_names(src, &o, &names, &n_names, &d) == MS_OK)
    ms__expr_names_free(names, n_names);
  ms_diag_clear(&d);
  ms__expr *e = NULL;
  ms_status st = ms__expr_compile(&e, src, &resolver, &o, &d);
  free(ms_diag_format(&d));
  if (st != MS_OK) {
    if (e || d.n_errors == 0) abort();
  } else {
    if (!e) abort();
    evaluate(e);
    ms__expr_free(e);
  }
  ms_diag_deinit(&d);
  free(src);
  return 0;
}
