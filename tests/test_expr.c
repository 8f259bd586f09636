/* Tests of the expression language (records/expr.h): parsing precedence,
 * every operator and function with missing values and three-valued logic,
 * exact compile diagnostics with columns, categorical comparisons, date
 * arithmetic, row errors, vectorised evaluation against a scalar reference
 * and evaluation by several threads at once.
 *
 * ctest-labels: unit
 */
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "medsynth/table.h"
#include "records/expr.h"
#include "records/vocab.h"

/* ------------------------------------------------------------ fixture */

enum {
  S_AGE,
  S_WEIGHT,
  S_HEIGHT,
  S_SEX,
  S_BIRTH,
  S_VISIT,
  S_DX,
  S_PREG,
  S_ADMIT,
  S_NVIS,
  S_DXCAT,
  S_P,
  S_Q,
  S_PBIRTH,
  S_NAME,
  S_COUNT
};

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
  int is_const;
  double num;
  const char *str;
} testsym;

static const testsym syms[] = {
    {"age", MS__EXPR_NUMBER, S_AGE, MS__EXPR_LAYOUT_F64, 0, 0, NULL, 0, 0, NULL},
    {"weight_kg", MS__EXPR_NUMBER, S_WEIGHT, MS__EXPR_LAYOUT_F64, 0, 0, NULL, 0, 0, NULL},
    {"height_cm", MS__EXPR_NUMBER, S_HEIGHT, MS__EXPR_LAYOUT_F64, 0, 0, NULL, 0, 0, NULL},
    {"sex", MS__EXPR_CATEGORICAL, S_SEX, MS__EXPR_LAYOUT_I32, 0, 2, sex_cats, 0, 0, NULL},
    {"birth_date", MS__EXPR_DATE, S_BIRTH, MS__EXPR_LAYOUT_I32, 0, 0, NULL, 0, 0, NULL},
    {"visit_date", MS__EXPR_DATE, S_VISIT, MS__EXPR_LAYOUT_I32, 0, 0, NULL, 0, 0, NULL},
    {"dx", MS__EXPR_STRING, S_DX, MS__EXPR_LAYOUT_STR_FIXED, 7, 0, NULL, 0, 0, NULL},
    {"pregnant", MS__EXPR_BOOL, S_PREG, MS__EXPR_LAYOUT_U8, 0, 0, NULL, 0, 0, NULL},
    {"admit_time", MS__EXPR_DATETIME, S_ADMIT, MS__EXPR_LAYOUT_I64, 0, 0, NULL, 0, 0, NULL},
    {"n_visits", MS__EXPR_NUMBER, S_NVIS, MS__EXPR_LAYOUT_I64, 0, 0, NULL, 0, 0, NULL},
    {"dx_primary", MS__EXPR_CATEGORICAL, S_DXCAT, MS__EXPR_LAYOUT_I32, 0, 4, dx_cats, 0, 0,
     NULL},
    {"p", MS__EXPR_BOOL, S_P, MS__EXPR_LAYOUT_U8, 0, 0, NULL, 0, 0, NULL},
    {"q", MS__EXPR_BOOL, S_Q, MS__EXPR_LAYOUT_U8, 0, 0, NULL, 0, 0, NULL},
    {"parent.birth_date", MS__EXPR_DATE, S_PBIRTH, MS__EXPR_LAYOUT_I32, 0, 0, NULL, 0, 0, NULL},
    {"name", MS__EXPR_STRING, S_NAME, MS__EXPR_LAYOUT_STR_PTR, 0, 0, NULL, 0, 0, NULL},
    {"reference_date", MS__EXPR_STRING, -1, MS__EXPR_LAYOUT_F64, 0, 0, NULL, 1, 0, "2025-01-01"},
    {"study_days", MS__EXPR_NUMBER, -1, MS__EXPR_LAYOUT_F64, 0, 0, NULL, 1, 365, NULL},
};
#define N_SYMS (sizeof syms / sizeof syms[0])

typedef struct {
  ms__vocab *vocab;
} testctx;

static int t_resolve(void *ctx, const char *name, ms__expr_symbol *out, ms_diag *d,
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
    if (syms[i].is_const) {
      out->value.type = syms[i].type;
      out->value.num = syms[i].num;
      out->value.str = syms[i].str;
    }
    return 1;
  }
  return 0;
}

static const char *t_name_at(void *ctx, size_t i) {
  (void)ctx;
  return i < N_SYMS ? syms[i].name : NULL;
}

static ms__vocab *t_vocab(void *ctx, const char *name, ms_diag *d, const ms__expr_pos *pos) {
  testctx *t = ctx;
  if (!strcmp(name, "icd") && t && t->vocab) return t->vocab;
  ms_diag_add(d, MS_ERR_NOTFOUND, pos->file, pos->line, pos->column, pos->where,
              "unknown vocabulary \"%s\"", name);
  return NULL;
}

static testctx tctx;
static const ms__expr_resolver resolver = {&tctx, t_resolve, t_name_at, t_vocab};

static void opts(ms__expr_compile_params *o) {
  ms__expr_compile_params_init(o);
  o->file = "spec.json";
  o->line = 3;
  o->column = 20;
  o->where = "/tables/0/fields/1/expr";
}

static ms__expr *compile_ok(const char *src) {
  ms_diag d;
  ms_diag_init(&d);
  ms__expr_compile_params o;
  opts(&o);
  ms__expr *e = NULL;
  ms_status st = ms__expr_compile(&e, src, &resolver, &o, &d);
  if (st != MS_OK) {
    char *t = ms_diag_format(&d);
    fprintf(stderr, "compile of \"%s\" failed:\n%s", src, t ? t : "");
    free(t);
  }
  ms_diag_deinit(&d);
  assert_int_equal(st, MS_OK);
  return e;
}

/* All diagnostics of a failing compile, one per line. Caller frees. */
static char *errors_of(const char *src, int escaped) {
  ms_diag d;
  ms_diag_init(&d);
  ms__expr_compile_params o;
  opts(&o);
  o.escaped = escaped;
  ms__expr *e = NULL;
  ms_status st = ms__expr_compile(&e, src, &resolver, &o, &d);
  assert_int_not_equal(st, MS_OK);
  assert_null(e);
  char *t = ms_diag_format(&d);
  ms_diag_deinit(&d);
  return t;
}

static void expect_errors(const char *src, const char *want) {
  char *got = errors_of(src, 0);
  if (strcmp(got, want)) fprintf(stderr, "for \"%s\"\n got: %s want: %s", src, got, want);
  assert_string_equal(got, want);
  free(got);
}

/* A small frame: up to 64 rows of every slot. */
typedef struct {
  size_t n;
  double age[64], weight[64], height[64];
  int32_t sex[64], birth[64], visit[64], dxcat[64], pbirth_data[4];
  uint32_t pbirth_index[64];
  char dx[64][8];
  const char *name[64];
  uint8_t preg[64], p[64], q[64];
  int64_t admit[64], nvis[64];
  uint8_t valid[S_COUNT][64];
  ms__expr_col cols[S_COUNT];
} frame;

static void frame_init(frame *f, size_t n) {
  memset(f, 0, sizeof *f);
  f->n = n;
  memset(f->valid, 1, sizeof f->valid);
  const void *data[S_COUNT] = {f->age,   f->weight, f->height, f->sex,  f->birth,
                               f->visit, f->dx,     f->preg,   f->admit, f->nvis,
                               f->dxcat, f->p,      f->q,      f->pbirth_data, f->name};
  for (int s = 0; s < S_COUNT; s++) {
    f->cols[s].data = data[s];
    f->cols[s].valid = f->valid[s];
  }
  f->cols[S_PBIRTH].index = f->pbirth_index;
  f->cols[S_PBIRTH].valid = NULL;
  for (size_t i = 0; i < 64; i++) f->name[i] = "";
}

/* Evaluates a number-valued expression over the frame. */
static ms_status eval_frame(const char *src, frame *f, void *out, uint8_t *ok,
                            ms__expr_error *err) {
  ms__expr *e = compile_ok(src);
  ms_status st = ms__expr_eval(e, f->cols, S_COUNT, f->n, out, ok, NULL, err);
  ms__expr_free(e);
  return st;
}

static double const_num(const char *src) {
  ms_diag d;
  ms_diag_init(&d);
  ms__expr_value v;
  ms__expr_compile_params o;
  opts(&o);
  ms_status st = ms__expr_const_value(src, &resolver, &o, &v, NULL, &d);
  if (st != MS_OK) {
    char *t = ms_diag_format(&d);
    fprintf(stderr, "\"%s\": %s", src, t);
    free(t);
  }
  ms_diag_deinit(&d);
  assert_int_equal(st, MS_OK);
  assert_false(v.missing);
  assert_true(v.type == MS__EXPR_NUMBER || v.type == MS__EXPR_DURATION);
  return v.num;
}

static int64_t const_int(const char *src, ms__expr_type want_type) {
  ms_diag d;
  ms_diag_init(&d);
  ms__expr_value v;
  ms_status st = ms__expr_const_value(src, &resolver, NULL, &v, NULL, &d);
  if (st != MS_OK) {
    char *t = ms_diag_format(&d);
    fprintf(stderr, "\"%s\": %s", src, t);
    free(t);
  }
  ms_diag_deinit(&d);
  assert_int_equal(st, MS_OK);
  assert_int_equal(v.type, want_type);
  assert_false(v.missing);
  return v.i;
}

static int const_missing(const char *src) {
  ms__expr_value v;
  ms_status st = ms__expr_const_value(src, &resolver, NULL, &v, NULL, NULL);
  assert_int_equal(st, MS_OK);
  return v.missing;
}

static int32_t ymd(int y, int m, int d) { return ms_date_from_ymd(y, m, d); }

/* -------------------------------------------------------------- tests */

static void test_expr_precedence_and_associativity(void **state) {
  (void)state;
  assert_true(const_num("2^3^2") == 512);
  assert_true(const_num("-2^2") == -4);
  assert_true(const_num("(-2)^2") == 4);
  assert_true(const_num("2^-1") == 0.5);
  assert_true(const_num("2 + 3 * 4") == 14);
  assert_true(const_num("(2 + 3) * 4") == 20);
  assert_true(const_num("10 - 4 - 3") == 3);
  assert_true(const_num("8 / 4 / 2") == 1);
  assert_true(const_num("2 * 3 % 4") == 2);
  assert_true(const_num("-3 * -3") == 9);
  assert_true(const_num("+5 - -5") == 10);
  assert_true(const_num("1.5e2 + .5") == 150.5);
  assert_true(const_num("if(not false or false, 1, 2)") == 1); /* (not false) or false */
  assert_true(const_num("if(not (false or true), 1, 2)") == 2);
  assert_true(const_num("if(true or false and false, 1, 2)") == 1); /* and binds tighter */
  assert_true(const_num("if(1 + 1 == 2 and 3 > 2, 1, 2)") == 1);
}

static void test_expr_arithmetic_operators(void **state) {
  (void)state;
  assert_true(const_num("7 % 3") == 1);
  assert_true(const_num("-7 % 3") == 2);  /* floored: sign of the divisor */
  assert_true(const_num("7 % -3") == -2);
  assert_true(const_num("7.5 % 2") == 1.5);
  assert_true(const_num("pow(2, 10)") == 1024);
  assert_true(const_num("9 ^ 0.5") == 3);
  assert_true(const_num("0 ^ 0") == 1);
  assert_true(const_num("1 / 4") == 0.25);
  assert_true(const_num("study_days / 5") == 73);
}

static void test_expr_functions(void **state) {
  (void)state;
  assert_true(const_num("min(3, 1, 2)") == 1);
  assert_true(const_num("max(3, 1, 2)") == 3);
  assert_true(const_num("abs(-2.5)") == 2.5);
  assert_true(fabs(const_num("log(exp(2))") - 2) < 1e-15);
  assert_true(const_num("log10(1000)") == 3);
  assert_true(const_num("sqrt(16)") == 4);
  assert_true(const_num("round(2.5)") == 3);
  assert_true(const_num("round(-2.5)") == -3);
  assert_true(const_num("round(3.14159, 2)") == 3.14);
  assert_true(const_num("round(1234, -2)") == 1200);
  assert_true(const_num("floor(-1.5)") == -2);
  assert_true(const_num("ceil(-1.5)") == -1);
  assert_true(const_num("clamp(5, 0, 3)") == 3);
  assert_true(const_num("clamp(-5, 0, 3)") == 0);
  assert_true(const_num("clamp(2, 0, 3)") == 2);
  assert_true(const_num("days(3)") == 3);
  assert_true(const_num("years(1)") == 365.2425);
  assert_true(const_num("hours(36)") == 1.5);
  assert_true(const_num("minutes(720)") == 0.5);
  assert_true(const_num("year(date('2024-02-29'))") == 2024);
  assert_true(const_num("month(date('2024-02-29'))") == 2);
  assert_true(const_num("day(date('2024-02-29'))") == 29);
  assert_true(const_num("year(datetime('1969-12-31T23:59:59'))") == 1969);
  assert_true(const_num("if(startswith('E11.9', 'E11'), 1, 0)") == 1);
  assert_true(const_num("if(startswith('E1', 'E11'), 1, 0)") == 0);
  assert_true(const_num("if(is_missing(coalesce(1, 2)), 1, 0)") == 0);
  assert_true(const_num("coalesce(1, 2)") == 1);
  assert_true(const_num("if(3 in (1, 2, 3), 1, 0)") == 1);
  assert_true(const_num("if(4 not in (1, 2, 3), 1, 0)") == 1);
  assert_true(const_num("if('b' in ('a', 'b'), 1, 0)") == 1);
  assert_true(const_num("if('it''s' == \"it's\", 1, 0)") == 1);
}

static void test_expr_missing_propagation(void **state) {
  (void)state;
  frame f;
  frame_init(&f, 4);
  for (int i = 0; i < 4; i++) {
    f.age[i] = 10 * (i + 1);
    f.weight[i] = 70 + i;
  }
  f.valid[S_AGE][1] = 0;
  f.valid[S_WEIGHT][2] = 0;
  f.age[3] = NAN; /* a NaN value reads as missing too */
  double out[4];
  uint8_t ok[4];
  ms__expr_error err;
  assert_int_equal(eval_frame("age + weight_kg", &f, out, ok, &err), MS_OK);
  assert_int_equal(ok[0], 1);
  assert_true(out[0] == 80);
  for (int i = 1; i < 4; i++) {
    assert_int_equal(ok[i], 0);
    assert_true(out[i] == 0.0); /* missing rows are written as zero */
  }
  /* comparisons with missing are missing; is_missing and coalesce see it */
  uint8_t b[4];
  assert_int_equal(eval_frame("age > 15", &f, b, ok, &err), MS_OK);
  assert_int_equal(ok[0], 1);
  assert_int_equal(b[0], 0);
  assert_int_equal(ok[1], 0);
  assert_int_equal(eval_frame("is_missing(age)", &f, b, ok, &err), MS_OK);
  assert_int_equal(b[0], 0);
  assert_int_equal(b[1], 1);
  assert_int_equal(b[3], 1);
  assert_int_equal(ok[1], 1);
  assert_int_equal(eval_frame("coalesce(age, weight_kg, -1)", &f, out, ok, &err), MS_OK);
  assert_true(out[0] == 10 && out[1] == 71 && out[2] == 30 && out[3] == 73);
  f.valid[S_WEIGHT][3] = 0;
  assert_int_equal(eval_frame("coalesce(age, weight_kg)", &f, out, ok, &err), MS_OK);
  assert_int_equal(ok[3], 0);
  assert_int_equal(eval_frame("coalesce(age, weight_kg, -1)", &f, out, ok, &err), MS_OK);
  assert_true(out[3] == -1);
  /* functions and if() propagate missing; a missing condition is missing */
  assert_int_equal(eval_frame("sqrt(age) + min(age, 3)", &f, out, ok, &err), MS_OK);
  assert_int_equal(ok[1], 0);
  assert_int_equal(eval_frame("if(age > 15, 1, 2)", &f, out, ok, &err), MS_OK);
  assert_int_equal(ok[0], 1);
  assert_true(out[0] == 2);
  assert_int_equal(ok[1], 0);
  assert_false(const_missing("coalesce(study_days, 1)"));
}

static void test_expr_three_valued_logic(void **state) {
  (void)state;
  /* p, q over {true, false, missing}^2; expected per SQL. */
  frame f;
  frame_init(&f, 9);
  const int vals[3] = {1, 0, -1};
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++) {
      int r = i * 3 + j;
      f.p[r] = vals[i] == 1;
      f.valid[S_P][r] = vals[i] >= 0;
      f.q[r] = vals[j] == 1;
      f.valid[S_Q][r] = vals[j] >= 0;
    }
  /* expected: 1 true, 0 false, -1 missing */
  const int want_and[9] = {1, 0, -1, 0, 0, 0, -1, 0, -1};
  const int want_or[9] = {1, 1, 1, 1, 0, -1, 1, -1, -1};
  const int want_not[9] = {0, 0, 0, 1, 1, 1, -1, -1, -1};
  uint8_t b[9], ok[9];
  ms__expr_error err;
  assert_int_equal(eval_frame("p and q", &f, b, ok, &err), MS_OK);
  for (int r = 0; r < 9; r++) assert_int_equal(ok[r] ? b[r] : -1, want_and[r]);
  assert_int_equal(eval_frame("p or q", &f, b, ok, &err), MS_OK);
  for (int r = 0; r < 9; r++) assert_int_equal(ok[r] ? b[r] : -1, want_or[r]);
  assert_int_equal(eval_frame("not p", &f, b, ok, &err), MS_OK);
  for (int r = 0; r < 9; r++) assert_int_equal(ok[r] ? b[r] : -1, want_not[r]);
  assert_int_equal(eval_frame("p == q", &f, b, ok, &err), MS_OK);
  assert_int_equal(ok[0], 1);
  assert_int_equal(b[1], 0);
  assert_int_equal(ok[2], 0);
}

static void test_expr_type_errors_exact(void **state) {
  (void)state;
  /* column = 20 + byte offset of the operator */
  expect_errors("dx + 1",
                "spec.json:3:23: error: /tables/0/fields/1/expr: cannot add string and number\n");
  expect_errors("birth_date + 30",
                "spec.json:3:31: error: /tables/0/fields/1/expr: cannot add date and number "
                "(use days(n) or years(n))\n");
  expect_errors("age and true",
                "spec.json:3:20: error: /tables/0/fields/1/expr: 'and' needs bool operands, got "
                "number\n");
  expect_errors("if(age, 1, 2)",
                "spec.json:3:23: error: /tables/0/fields/1/expr: if() needs a bool condition, "
                "got number\n");
  expect_errors("if(pregnant, 1, 'a')",
                "spec.json:3:20: error: /tables/0/fields/1/expr: if() arguments have different "
                "types: number and string\n");
  expect_errors("log('x')",
                "spec.json:3:24: error: /tables/0/fields/1/expr: log() needs a number, got "
                "string\n");
  expect_errors("dx < 3",
                "spec.json:3:23: error: /tables/0/fields/1/expr: cannot compare string and "
                "number\n");
  expect_errors("-dx",
                "spec.json:3:20: error: /tables/0/fields/1/expr: cannot negate string\n");
  expect_errors("visit_date > '2024-01-01'",
                "spec.json:3:31: error: /tables/0/fields/1/expr: cannot compare date and string "
                "(write date('YYYY-MM-DD'))\n");
  /* several independent errors in one expression are all reported */
  expect_errors("(dx * 2) + log(sex) + if(1, 2)",
                "spec.json:3:24: error: /tables/0/fields/1/expr: cannot multiply string and "
                "number\n"
                "spec.json:3:35: error: /tables/0/fields/1/expr: log() needs a number, got "
                "categorical\n"
                "spec.json:3:42: error: /tables/0/fields/1/expr: if() takes 3 arguments\n");
}

static void test_expr_arity_errors(void **state) {
  (void)state;
  expect_errors("if(true, 1)",
                "spec.json:3:20: error: /tables/0/fields/1/expr: if() takes 3 arguments\n");
  expect_errors("round(1, 2, 3)",
                "spec.json:3:20: error: /tables/0/fields/1/expr: round() takes 1 or 2 "
                "arguments\n");
  expect_errors("min(1)",
                "spec.json:3:20: error: /tables/0/fields/1/expr: min() takes at least 2 "
                "arguments\n");
  expect_errors("sqrt()",
                "spec.json:3:20: error: /tables/0/fields/1/expr: sqrt() takes 1 argument\n");
  expect_errors("sqr(4)",
                "spec.json:3:20: error: /tables/0/fields/1/expr: unknown function 'sqr' (did "
                "you mean 'sqrt'?)\n");
}

static void test_expr_unknown_names_with_suggestions(void **state) {
  (void)state;
  expect_errors("wieght_kg / 2",
                "spec.json:3:20: error: /tables/0/fields/1/expr: unknown field 'wieght_kg' (did "
                "you mean 'weight_kg'?)\n");
  expect_errors("1 + zzz + parent.brith_date",
                "spec.json:3:24: error: /tables/0/fields/1/expr: unknown field 'zzz'\n"
                "spec.json:3:30: error: /tables/0/fields/1/expr: unknown field "
                "'parent.brith_date' (did you mean 'parent.birth_date'?)\n");
  /* the same unknown name is reported once */
  expect_errors("agee + agee",
                "spec.json:3:20: error: /tables/0/fields/1/expr: unknown field 'agee' (did you "
                "mean 'age'?)\n");
  /* the resolver's own message */
  expect_errors("parent.nothing",
                "spec.json:3:20: error: /tables/0/fields/1/expr: table 'patients' has no field "
                "'nothing'\n");
  expect_errors("log + 1",
                "spec.json:3:20: error: /tables/0/fields/1/expr: 'log' is a function; call it "
                "as log(...)\n");
}

static void test_expr_syntax_errors(void **state) {
  (void)state;
  expect_errors("age +",
                "spec.json:3:25: error: /tables/0/fields/1/expr: unexpected end of expression\n");
  expect_errors("age = 3",
                "spec.json:3:24: error: /tables/0/fields/1/expr: unexpected '=' (use '==' to "
                "compare)\n");
  expect_errors("(age + 1",
                "spec.json:3:28: error: /tables/0/fields/1/expr: expected ')' to close '(' at "
                "column 20\n");
  expect_errors("'abc",
                "spec.json:3:20: error: /tables/0/fields/1/expr: unterminated string (missing "
                "closing ')\n");
  expect_errors("1 < age < 3",
                "spec.json:3:28: error: /tables/0/fields/1/expr: comparisons cannot be chained; "
                "combine them with 'and' (a < b and b < c)\n");
  expect_errors("age 3",
                "spec.json:3:24: error: /tables/0/fields/1/expr: unexpected number '3' (missing "
                "operator?)\n");
  expect_errors("age)",
                "spec.json:3:23: error: /tables/0/fields/1/expr: unmatched ')'\n");
  expect_errors("", "spec.json:3:20: error: /tables/0/fields/1/expr: empty expression\n");
  /* pathological nesting is an error, not a stack overflow */
  size_t big = 200000;
  char *deep = malloc(2 * big + 2);
  assert_non_null(deep);
  memset(deep, '(', big);
  deep[big] = '1';
  memset(deep + big + 1, ')', big);
  deep[2 * big + 1] = 0;
  char *t0 = errors_of(deep, 0);
  assert_string_equal(t0, "spec.json:3:220: error: /tables/0/fields/1/expr: expression is "
                          "nested too deeply (more than 200 levels)\n");
  free(t0);
  for (size_t k = 0; k < big; k++) {
    deep[2 * k] = '1';
    deep[2 * k + 1] = '+';
  }
  deep[2 * big - 1] = 0;
  t0 = errors_of(deep, 0);
  assert_non_null(strstr(t0, "expression is too deep (more than 1000 nested operations)"));
  free(t0);
  /* ^ groups to the right, so 1^1^1... recurses once per operator; 100,000
   * of them once overflowed the stack. The 200th '^' (nesting level 201,
   * counting the whole expression) is at column 20 + 399. */
  for (size_t k = 0; k < 100000; k++) {
    deep[2 * k] = '1';
    deep[2 * k + 1] = '^';
  }
  deep[2 * 100000] = '1';
  deep[2 * 100000 + 1] = 0;
  t0 = errors_of(deep, 0);
  assert_string_equal(t0, "spec.json:3:419: error: /tables/0/fields/1/expr: expression is "
                          "nested too deeply (more than 200 levels)\n");
  free(t0);
  deep[2 * 199 + 1] = 0; /* 199 operators: within the limit */
  ms__expr_free(compile_ok(deep));
  free(deep);
  expect_errors("age && 1",
                "spec.json:3:24: error: /tables/0/fields/1/expr: unexpected '&&' (use 'and')\n");
  /* with escapes in the JSON string, the string start is reported */
  char *t = errors_of("dx + 1", 1);
  assert_string_equal(
      t, "spec.json:3:20: error: /tables/0/fields/1/expr: cannot add string and number\n");
  free(t);
}

static void test_expr_categorical_comparisons(void **state) {
  (void)state;
  frame f;
  frame_init(&f, 6);
  const int32_t sexes[6] = {0, 1, 1, 0, 1, 0};
  const int32_t dxs[6] = {0, 1, 2, 3, 0, 1};
  for (int i = 0; i < 6; i++) {
    f.sex[i] = sexes[i];
    f.dxcat[i] = dxs[i];
  }
  f.valid[S_SEX][5] = 0;
  uint8_t b[6], ok[6];
  ms__expr_error err;
  assert_int_equal(eval_frame("sex == 'M'", &f, b, ok, &err), MS_OK);
  for (int i = 0; i < 5; i++) assert_int_equal(b[i], sexes[i] == 1);
  assert_int_equal(ok[5], 0);
  assert_int_equal(eval_frame("'F' != sex", &f, b, ok, &err), MS_OK);
  for (int i = 0; i < 5; i++) assert_int_equal(b[i], sexes[i] == 1);
  assert_int_equal(eval_frame("dx_primary in ('I10', 'J45')", &f, b, ok, &err), MS_OK);
  for (int i = 0; i < 6; i++) assert_int_equal(b[i], dxs[i] == 1 || dxs[i] == 2);
  assert_int_equal(eval_frame("dx_primary not in ('I10', 'J45')", &f, b, ok, &err), MS_OK);
  for (int i = 0; i < 6; i++) assert_int_equal(b[i], !(dxs[i] == 1 || dxs[i] == 2));
  assert_int_equal(eval_frame("startswith(dx_primary, 'E1')", &f, b, ok, &err), MS_OK);
  for (int i = 0; i < 6; i++) assert_int_equal(b[i], dxs[i] == 0 || dxs[i] == 3);
  /* categorical branches of if() keep the field's categories */
  int32_t codes[6];
  ms__expr *e = compile_ok("if(sex == 'F', sex, sex)");
  assert_int_equal(ms__expr_result_type(e), MS__EXPR_CATEGORICAL);
  assert_int_equal(ms__expr_result_n_categories(e), 2);
  assert_string_equal(ms__expr_result_categories(e)[1], "M");
  assert_int_equal(ms__expr_eval(e, f.cols, S_COUNT, 6, codes, ok, NULL, &err), MS_OK);
  for (int i = 0; i < 5; i++) assert_int_equal(codes[i], sexes[i]);
  ms__expr_free(e);
  /* mixing with a string gives labels */
  const char *strs[6];
  e = compile_ok("if(sex == 'F', sex, 'male')");
  assert_int_equal(ms__expr_result_type(e), MS__EXPR_STRING);
  assert_int_equal(ms__expr_eval(e, f.cols, S_COUNT, 6, strs, ok, NULL, &err), MS_OK);
  assert_string_equal(strs[0], "F");
  assert_string_equal(strs[1], "male");
  ms__expr_free(e);
  /* unknown labels are compile errors naming the categories */
  expect_errors("sex == 'X'",
                "spec.json:3:27: error: /tables/0/fields/1/expr: 'X' is not a category of sex "
                "(categories: 'F', 'M')\n");
  expect_errors("dx_primary in ('I10', 'E11')",
                "spec.json:3:42: error: /tables/0/fields/1/expr: 'E11' is not a category of "
                "dx_primary (categories: 'E11.9', 'I10', 'J45', 'E10.1'); did you mean "
                "'E11.9'?\n");
  expect_errors("sex < 'M'",
                "spec.json:3:24: error: /tables/0/fields/1/expr: cannot order categorical "
                "values with '<'; use == or != (or 'in')\n");
  /* a code outside the categories in the data is a row error */
  f.sex[2] = 7;
  assert_int_equal(eval_frame("sex == 'M'", &f, b, ok, &err), MS_ERR_DATA);
  assert_int_equal(err.row, 2);
  assert_string_equal(err.message, "field 'sex' holds a category code outside its 2 categories");
}

/* The shapes the records engine selects "when" rules by with a look-up
 * (records/generate_field.c): "field == 'label'" and "x == 'l1' and
 * y == 'l2'" of categorical fields, in either operand order; anything else
 * is evaluated. */
static void test_expr_label_comparison_shapes(void **state) {
  (void)state;
  int32_t slot, slots[2];
  int64_t code, codes[2];
  ms__expr *e = compile_ok("'M' == sex");
  assert_true(ms__expr_code_eq(e, &slot, &code));
  assert_int_equal(slot, S_SEX);
  assert_int_equal(code, 1);
  assert_false(ms__expr_code_eq2(e, slots, codes));
  ms__expr_free(e);
  const struct {
    const char *src;
    int32_t slot[2];
    int64_t code[2];
  } two[] = {{"sex == 'F' and dx_primary == 'J45'", {S_SEX, S_DXCAT}, {0, 2}},
             {"('E10.1' == dx_primary) and sex == 'M'", {S_DXCAT, S_SEX}, {3, 1}}};
  for (size_t i = 0; i < sizeof two / sizeof *two; i++) {
    e = compile_ok(two[i].src);
    assert_false(ms__expr_code_eq(e, &slot, &code));
    assert_true(ms__expr_code_eq2(e, slots, codes));
    for (int k = 0; k < 2; k++) {
      assert_int_equal(slots[k], two[i].slot[k]);
      assert_int_equal(codes[k], two[i].code[k]);
    }
    ms__expr_free(e);
  }
  const char *other[] = {"sex == 'F' and sex == 'M'",
                         "sex == 'F' or dx_primary == 'J45'",
                         "sex != 'F' and dx_primary == 'J45'",
                         "sex == 'F' and dx_primary in ('J45', 'I10')",
                         "sex == 'F' and dx_primary == 'J45' and p",
                         "(sex == 'F' and dx_primary == 'J45') and true",
                         "sex == 'F' and p",
                         "not (sex == 'F' and dx_primary == 'J45')"};
  for (size_t i = 0; i < sizeof other / sizeof *other; i++) {
    e = compile_ok(other[i]);
    if (ms__expr_code_eq2(e, slots, codes)) fail_msg("\"%s\" read as two label comparisons", other[i]);
    ms__expr_free(e);
  }
}

static void test_expr_date_arithmetic(void **state) {
  (void)state;
  assert_int_equal(const_int("date('2024-02-28') + days(1)", MS__EXPR_DATE), ymd(2024, 2, 29));
  assert_int_equal(const_int("date('2023-02-28') + days(1)", MS__EXPR_DATE), ymd(2023, 3, 1));
  assert_int_equal(const_int("date('2024-03-01') - days(1)", MS__EXPR_DATE), ymd(2024, 2, 29));
  assert_int_equal(const_int("date('2000-03-01') - days(1)", MS__EXPR_DATE), ymd(2000, 2, 29));
  assert_int_equal(const_int("date('1900-03-01') - days(1)", MS__EXPR_DATE), ymd(1900, 2, 28));
  assert_true(const_num("date('2024-03-01') - date('2024-02-01')") == 29);
  assert_true(const_num("date('2023-03-01') - date('2023-02-01')") == 28);
  assert_true(const_num("date('1970-01-01') - date('1969-12-31')") == 1);
  /* years(n) = n * 365.2425 days, rounded to whole days for dates */
  assert_int_equal(const_int("date(reference_date) - years(40)", MS__EXPR_DATE),
                   ymd(2025, 1, 1) - 14610);
  assert_int_equal(const_int("date(reference_date) + years(1)", MS__EXPR_DATE),
                   ymd(2025, 1, 1) + 365);
  assert_int_equal(const_int("days(10) + date('2025-01-01')", MS__EXPR_DATE), ymd(2025, 1, 11));
  /* years_between: completed years, like an age */
  assert_true(const_num("years_between(date('2000-02-29'), date('2001-02-28'))") == 0);
  assert_true(const_num("years_between(date('2000-02-29'), date('2001-03-01'))") == 1);
  assert_true(const_num("years_between(date('2000-02-29'), date('2004-02-29'))") == 4);
  assert_true(const_num("years_between(date('1980-06-15'), date('2025-06-14'))") == 44);
  assert_true(const_num("years_between(date('1980-06-15'), date('2025-06-15'))") == 45);
  assert_true(const_num("years_between(date('2025-06-15'), date('1980-06-15'))") == -45);
  /* datetimes */
  assert_int_equal(const_int("datetime('2024-02-28T12:00:00') + hours(36)", MS__EXPR_DATETIME),
                   (int64_t)ymd(2024, 3, 1) * 86400);
  assert_int_equal(const_int("datetime('2024-01-01T00:00:00') + minutes(90)",
                             MS__EXPR_DATETIME),
                   (int64_t)ymd(2024, 1, 1) * 86400 + 5400);
  assert_true(const_num("datetime('2024-01-02T12:00:00') - datetime('2024-01-01T00:00:00')") ==
              1.5);
  assert_int_equal(const_int("date(datetime('1969-12-31T23:00:00'))", MS__EXPR_DATE), -1);
  assert_int_equal(const_int("datetime(date('1970-01-02'))", MS__EXPR_DATETIME), 86400);
  assert_true(const_num("if(date('2024-01-01') < datetime('2024-01-01T00:00:01'), 1, 0)") == 1);
  assert_true(const_num("if(date('2024-01-01') in (date('2023-01-01'), date('2024-01-01')), 1, "
                        "0)") == 1);
  assert_true(const_num("min(date('2024-01-01'), date('2023-05-05')) - date('2023-05-05')") ==
              0);
  /* an invalid literal is a compile error at the argument */
  expect_errors("date('2023-02-29')",
                "spec.json:3:25: error: /tables/0/fields/1/expr: invalid date '2023-02-29' "
                "(expected YYYY-MM-DD, years 1 to 9999)\n");
  /* field arithmetic */
  frame f;
  frame_init(&f, 3);
  f.birth[0] = ymd(1980, 6, 15);
  f.visit[0] = ymd(2025, 6, 14);
  f.birth[1] = ymd(2000, 2, 29);
  f.visit[1] = ymd(2001, 2, 28);
  f.birth[2] = ymd(1990, 1, 1);
  f.visit[2] = ymd(1990, 1, 1);
  double out[3];
  uint8_t ok[3];
  ms__expr_error err;
  assert_int_equal(eval_frame("years_between(birth_date, visit_date)", &f, out, ok, &err),
                   MS_OK);
  assert_true(out[0] == 44 && out[1] == 0 && out[2] == 0);
  int32_t d[3];
  assert_int_equal(eval_frame("visit_date + days(age)", &f, d, ok, &err), MS_OK);
  assert_int_equal(d[0], f.visit[0]);
  /* out of range */
  f.age[1] = 1e9;
  assert_int_equal(eval_frame("visit_date + days(age)", &f, d, ok, &err), MS_ERR_RANGE);
  assert_int_equal(err.row, 1);
  assert_string_equal(err.message, "date out of range (years 1 to 9999)");
  assert_int_equal(err.column, 20 + 11);
}

static void test_expr_division_by_zero_reports_row(void **state) {
  (void)state;
  frame f;
  frame_init(&f, 40);
  for (int i = 0; i < 40; i++) {
    f.weight[i] = 70;
    f.height[i] = 170;
  }
  f.height[37] = 0;
  f.height[23] = 0;
  f.valid[S_HEIGHT][23] = 0; /* missing: no error */
  double out[40];
  uint8_t ok[40];
  ms__expr_error err;
  assert_int_equal(eval_frame("weight_kg / height_cm", &f, out, ok, &err), MS_ERR_MATH);
  assert_int_equal(err.row, 37);
  assert_string_equal(err.message, "division by zero (70 / 0)");
  assert_int_equal(err.offset, 10);
  assert_int_equal(err.line, 3);
  assert_int_equal(err.column, 30);
  /* the error is reported through the diag at the operator */
  ms__expr *e = compile_ok("weight_kg / height_cm");
  ms_diag d;
  ms_diag_init(&d);
  assert_int_equal(ms__expr_eval(e, f.cols, S_COUNT, 40, out, ok, NULL, &err), MS_ERR_MATH);
  ms__expr_error_report(e, &err, &d, "patients/1037");
  char *t = ms_diag_format(&d);
  assert_string_equal(t, "spec.json:3:30: error: patients/1037: division by zero (70 / 0)\n");
  free(t);
  ms_diag_deinit(&d);
  ms__expr_free(e);
  /* other domain errors, never NaN */
  f.height[37] = -4;
  assert_int_equal(eval_frame("sqrt(height_cm)", &f, out, ok, &err), MS_ERR_MATH);
  assert_int_equal(err.row, 37);
  assert_string_equal(err.message, "sqrt of -4 (argument must be >= 0)");
  assert_int_equal(eval_frame("1 + log(height_cm)", &f, out, ok, &err), MS_ERR_MATH);
  assert_string_equal(err.message, "log of -4 (argument must be > 0)");
  assert_int_equal(err.column, 24);
  assert_int_equal(eval_frame("height_cm ^ 0.5", &f, out, ok, &err), MS_ERR_MATH);
  assert_string_equal(err.message, "-4 ^ 0.5 is not a finite number");
  assert_int_equal(eval_frame("exp(weight_kg * 100)", &f, out, ok, &err), MS_ERR_MATH);
  assert_int_equal(err.row, 0);
  assert_string_equal(err.message, "exp(7000) overflows");
  assert_int_equal(eval_frame("weight_kg % (height_cm + 4)", &f, out, ok, &err), MS_ERR_MATH);
  assert_string_equal(err.message, "modulo by zero (70 % 0)");
  assert_int_equal(eval_frame("clamp(weight_kg, 80, height_cm)", &f, out, ok, &err),
                   MS_ERR_MATH);
  assert_string_equal(err.message, "clamp(): lower bound 80 is greater than upper bound -4");
  assert_int_equal(err.row, 37);
  /* a constant error that always fires is a compile error */
  expect_errors("age + 1 / 0",
                "spec.json:3:28: error: /tables/0/fields/1/expr: division by zero (1 / 0)\n");
}

static void test_expr_errors_masked_by_if_and_logic(void **state) {
  (void)state;
  frame f;
  frame_init(&f, 5);
  const double h[5] = {170, 0, 160, 0, 150};
  for (int i = 0; i < 5; i++) {
    f.weight[i] = 60;
    f.height[i] = h[i];
  }
  double out[5];
  uint8_t b[5], ok[5];
  ms__expr_error err;
  assert_int_equal(eval_frame("if(height_cm > 0, weight_kg / height_cm, -1)", &f, out, ok, &err),
                   MS_OK);
  assert_true(out[0] == 60.0 / 170 && out[1] == -1 && out[3] == -1);
  assert_int_equal(eval_frame("height_cm != 0 and weight_kg / height_cm > 0.37", &f, b, ok, &err),
                   MS_OK);
  assert_int_equal(b[0], 0);
  assert_int_equal(b[1], 0);
  assert_int_equal(b[2], 1);
  assert_int_equal(eval_frame("weight_kg / height_cm > 0.37 or height_cm == 0", &f, b, ok, &err),
                   MS_OK);
  assert_int_equal(b[1], 1);
  /* an untaken constant error does not fire */
  assert_int_equal(eval_frame("if(height_cm >= 0, 1, 1 / 0)", &f, out, ok, &err), MS_OK);
  for (int i = 0; i < 5; i++) assert_true(out[i] == 1 && ok[i] == 1);
  /* ...but it fires for the rows that take it, at the row */
  assert_int_equal(eval_frame("if(height_cm == 0, 1 / 0, 1)", &f, out, ok, &err), MS_ERR_MATH);
  assert_int_equal(err.row, 1);
  assert_string_equal(err.message, "division by zero (1 / 0)");
  assert_int_equal(err.column, 20 + 21);
  /* coalesce does not hide an error */
  assert_int_equal(eval_frame("coalesce(weight_kg / height_cm, 0)", &f, out, ok, &err),
                   MS_ERR_MATH);
  assert_int_equal(err.row, 1);
  /* nor does a missing condition */
  f.valid[S_AGE][0] = 0;
  assert_int_equal(eval_frame("if(age > 3, 1, weight_kg / height_cm)", &f, out, ok, &err),
                   MS_ERR_MATH);
  assert_int_equal(err.row, 1);
}

static void test_expr_strings_and_lookup(void **state) {
  (void)state;
  const char *csv =
      "code,description,weight\n"
      "E11.9,Type 2 diabetes,0.5\n"
      "I10,Hypertension,1.5\n"
      "J45,Asthma,\n";
  ms_diag d;
  ms_diag_init(&d);
  assert_int_equal(ms__vocab_load_string(&tctx.vocab, csv, strlen(csv), "icd.csv", &d), MS_OK);
  frame f;
  frame_init(&f, 5);
  const int32_t dxs[5] = {0, 1, 2, 3, 1};
  for (int i = 0; i < 5; i++) f.dxcat[i] = dxs[i];
  strcpy(f.dx[0], "I10");
  strcpy(f.dx[1], "E11.9");
  strcpy(f.dx[2], "X");
  strcpy(f.dx[3], "J45");
  strcpy(f.dx[4], "I10");
  f.valid[S_DX][4] = 0;
  f.name[0] = "Ann";
  f.name[1] = NULL;
  const char *s[5];
  double x[5];
  uint8_t ok[5], b[5];
  ms__expr_error err;
  assert_int_equal(eval_frame("lookup('icd', 'code', dx_primary, 'description')", &f, s, ok, &err),
                   MS_OK);
  assert_string_equal(s[0], "Type 2 diabetes");
  assert_string_equal(s[1], "Hypertension");
  assert_string_equal(s[2], "Asthma");
  assert_int_equal(ok[3], 0); /* E10.1 is not in the vocabulary */
  assert_int_equal(eval_frame("lookup('icd', 'code', dx, 'description')", &f, s, ok, &err),
                   MS_OK);
  assert_string_equal(s[0], "Hypertension");
  assert_string_equal(s[1], "Type 2 diabetes");
  assert_int_equal(ok[2], 0);
  assert_int_equal(ok[4], 0);
  assert_int_equal(eval_frame("lookup_number('icd', 'code', dx, 'weight') * 2", &f, x, ok, &err),
                   MS_OK);
  assert_true(x[0] == 3.0 && x[1] == 1.0);
  assert_int_equal(ok[3], 0); /* empty cell reads as missing */
  assert_int_equal(eval_frame("startswith(dx, 'I1') or dx == 'J45'", &f, b, ok, &err), MS_OK);
  assert_int_equal(b[0], 1);
  assert_int_equal(b[1], 0);
  assert_int_equal(b[3], 1);
  assert_int_equal(ok[4], 0);
  assert_int_equal(eval_frame("name == ''", &f, b, ok, &err), MS_OK);
  assert_int_equal(b[0], 0);
  assert_int_equal(b[1], 1); /* NULL pointer reads as "" */
  assert_int_equal(eval_frame("dx > 'E'", &f, b, ok, &err), MS_OK);
  assert_int_equal(b[0], 1);
  assert_int_equal(b[1], 1);
  assert_int_equal(b[2], 1);
  /* a constant key folds */
  ms__expr *e = compile_ok("lookup('icd', 'code', 'J45', 'description')");
  assert_true(ms__expr_is_const(e));
  ms__expr_value v;
  assert_int_equal(ms__expr_eval_const(e, &v, &err), MS_OK);
  assert_string_equal(v.str, "Asthma");
  ms__expr_free(e);
  char *t = errors_of("lookup('icd', 'kode', dx, 'description') + lookup('nope', 'a', dx, 'b')",
                      0);
  assert_string_equal(
      t,
      "spec.json:3:34: error: /tables/0/fields/1/expr: vocabulary \"icd.csv\" has no column "
      "\"kode\" (columns: code, description, weight)\n"
      "spec.json:3:70: error: /tables/0/fields/1/expr: unknown vocabulary \"nope\"\n");
  free(t);
  expect_errors("lookup('icd', 'code', age, 'weight')",
                "spec.json:3:42: error: /tables/0/fields/1/expr: lookup() needs a string or "
                "categorical key, got number\n");
  ms__vocab_free(tctx.vocab);
  tctx.vocab = NULL;
  ms_diag_deinit(&d);
}

static void test_expr_names_slots_and_parent_index(void **state) {
  (void)state;
  ms__expr *e = compile_ok("years_between(parent.birth_date, visit_date) + age + age * 2 + "
                           "study_days");
  assert_int_equal(ms__expr_n_names(e), 4);
  assert_string_equal(ms__expr_name(e, 0), "parent.birth_date");
  assert_string_equal(ms__expr_name(e, 1), "visit_date");
  assert_string_equal(ms__expr_name(e, 2), "age");
  assert_string_equal(ms__expr_name(e, 3), "study_days");
  assert_int_equal(ms__expr_n_slots(e), S_PBIRTH + 1);
  assert_false(ms__expr_is_const(e));
  /* child rows read their parent's value through an index */
  frame f;
  frame_init(&f, 4);
  f.pbirth_data[0] = ymd(1950, 1, 1);
  f.pbirth_data[1] = ymd(1990, 7, 1);
  const uint32_t idx[4] = {1, 1, 0, 1};
  memcpy(f.pbirth_index, idx, sizeof idx);
  for (int i = 0; i < 4; i++) f.visit[i] = ymd(2020, 7, 1);
  double out[4];
  uint8_t ok[4];
  ms__expr_error err;
  assert_int_equal(ms__expr_eval(e, f.cols, S_COUNT, 4, out, ok, NULL, &err), MS_OK);
  assert_true(out[0] == 30 + 365 && out[2] == 70 + 365);
  /* too few columns */
  assert_int_equal(ms__expr_eval(e, f.cols, 3, 4, out, ok, NULL, &err), MS_ERR_INVALID);
  assert_int_equal(err.row, SIZE_MAX);
  assert_string_equal(err.message, "expression evaluated with 3 frame columns, it reads 14");
  ms__expr_free(e);
  char **names = NULL;
  size_t n = 0;
  assert_int_equal(ms__expr_scan_names("if(x > 1, y.z, x) + f(w)", NULL, &names, &n, NULL),
                   MS_OK);
  assert_int_equal(n, 3);
  assert_string_equal(names[0], "x");
  assert_string_equal(names[1], "y.z");
  assert_string_equal(names[2], "w");
  ms__expr_names_free(names, n);
  ms_diag d;
  ms_diag_init(&d);
  assert_int_equal(ms__expr_scan_names("x +", NULL, &names, &n, &d), MS_ERR_SPEC);
  assert_int_equal(d.n_errors, 1);
  ms_diag_deinit(&d);
}

static void test_expr_constant_values(void **state) {
  (void)state;
  ms_diag d;
  ms_diag_init(&d);
  ms__expr_value v;
  char *s = NULL;
  ms__expr_compile_params o;
  opts(&o);
  assert_int_equal(ms__expr_const_value("reference_date", &resolver, &o, &v, &s, &d), MS_OK);
  assert_int_equal(v.type, MS__EXPR_STRING);
  assert_string_equal(s, "2025-01-01");
  free(s);
  assert_int_equal(ms__expr_const_value("study_days * 2", &resolver, &o, &v, NULL, &d), MS_OK);
  assert_true(v.num == 730);
  assert_int_equal(ms__expr_const_value("2 + age", &resolver, &o, &v, NULL, &d), MS_ERR_SPEC);
  char *t = ms_diag_format(&d);
  assert_string_equal(t, "spec.json:3:24: error: /tables/0/fields/1/expr: a constant is "
                         "required here, but the expression reads field 'age'\n");
  free(t);
  ms_diag_clear(&d);
  /* constant folding: the compiled program is a single constant */
  ms__expr *e = compile_ok("date(reference_date) - years(40)");
  assert_true(ms__expr_is_const(e));
  assert_int_equal(ms__expr_n_slots(e), 0);
  int32_t day;
  uint8_t ok;
  assert_int_equal(ms__expr_eval(e, NULL, 0, 1, &day, &ok, NULL, NULL), MS_OK);
  assert_int_equal(day, ymd(2025, 1, 1) - 14610);
  ms__expr_free(e);
  /* result type requirement */
  o.want = MS__EXPR_NUMBER;
  assert_int_equal(ms__expr_compile(&e, "dx", &resolver, &o, &d), MS_ERR_SPEC);
  t = ms_diag_format(&d);
  assert_string_equal(t, "spec.json:3:20: error: /tables/0/fields/1/expr: expression has type "
                         "string, expected number\n");
  free(t);
  ms_diag_deinit(&d);
}

/* ------------------------------------------- vectorised vs scalar, threads */

static uint64_t lcg(uint64_t *s) {
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return *s >> 11;
}

#define NBIG 10000
typedef struct {
  double age[NBIG], weight[NBIG], height[NBIG];
  int32_t sex[NBIG], birth[NBIG], visit[NBIG];
  uint8_t v_age[NBIG], v_weight[NBIG], v_sex[NBIG];
  ms__expr_col cols[S_COUNT];
} bigframe;

static bigframe *big_new(void) {
  bigframe *b = calloc(1, sizeof *b);
  assert_non_null(b);
  uint64_t s = 42;
  for (int i = 0; i < NBIG; i++) {
    b->age[i] = 18 + (double)(lcg(&s) % 70);
    b->weight[i] = 40 + (double)(lcg(&s) % 8000) / 100.0;
    b->height[i] = 140 + (double)(lcg(&s) % 600) / 10.0;
    b->sex[i] = (int32_t)(lcg(&s) % 2);
    b->birth[i] = ymd(1930, 1, 1) + (int32_t)(lcg(&s) % 30000);
    b->visit[i] = ymd(2015, 1, 1) + (int32_t)(lcg(&s) % 3650);
    b->v_age[i] = lcg(&s) % 10 != 0;
    b->v_weight[i] = lcg(&s) % 7 != 0;
    b->v_sex[i] = lcg(&s) % 13 != 0;
  }
  b->cols[S_AGE] = (ms__expr_col){b->age, b->v_age, NULL};
  b->cols[S_WEIGHT] = (ms__expr_col){b->weight, b->v_weight, NULL};
  b->cols[S_HEIGHT] = (ms__expr_col){b->height, NULL, NULL};
  b->cols[S_SEX] = (ms__expr_col){b->sex, b->v_sex, NULL};
  b->cols[S_BIRTH] = (ms__expr_col){b->birth, NULL, NULL};
  b->cols[S_VISIT] = (ms__expr_col){b->visit, NULL, NULL};
  return b;
}

static const char *const big_src =
    "if(sex == 'M', weight_kg / (height_cm/100)^2, coalesce(weight_kg, 60) - age % 7) "
    "+ max(age, 30) * 0.5 - years_between(birth_date, visit_date) / 10";

/* The same computation written directly in C, one row at a time. */
static int big_ref(const bigframe *b, int i, double *out) {
  int age_ok = b->v_age[i], w_ok = b->v_weight[i], sex_ok = b->v_sex[i];
  if (!sex_ok) return 0;
  double branch;
  if (b->sex[i] == 1) {
    if (!w_ok) return 0;
    double h = b->height[i] / 100;
    branch = b->weight[i] / (h * h);
  } else {
    if (!age_ok) return 0;
    double m = fmod(b->age[i], 7);
    if (m != 0 && m < 0) m += 7;
    branch = (w_ok ? b->weight[i] : 60) - m;
  }
  if (!age_ok) return 0;
  int y1, m1, d1, y2, m2, d2;
  ms_date_to_ymd(b->birth[i], &y1, &m1, &d1);
  ms_date_to_ymd(b->visit[i], &y2, &m2, &d2);
  int yb = y2 - y1 - ((m2 < m1 || (m2 == m1 && d2 < d1)) ? 1 : 0);
  *out = branch + (b->age[i] > 30 ? b->age[i] : 30) * 0.5 - yb / 10.0;
  return 1;
}

static void test_expr_vectorised_matches_scalar_reference(void **state) {
  (void)state;
  bigframe *b = big_new();
  ms__expr *e = compile_ok(big_src);
  double *out = malloc(NBIG * sizeof *out);
  uint8_t *ok = malloc(NBIG);
  ms__expr_error err;
  ms__expr_scratch *s = ms__expr_scratch_new();
  assert_int_equal(ms__expr_eval(e, b->cols, S_COUNT, NBIG, out, ok, s, &err), MS_OK);
  int n_present = 0;
  for (int i = 0; i < NBIG; i++) {
    double want = 0;
    int have = big_ref(b, i, &want);
    assert_int_equal(ok[i], have);
    if (have) {
      n_present++;
      assert_true(out[i] == want);
    } else {
      assert_true(out[i] == 0.0);
    }
  }
  assert_true(n_present > NBIG / 2 && n_present < NBIG);
  /* row by row and in odd chunk sizes: the same bytes */
  double one;
  uint8_t one_ok;
  for (int i = 0; i < NBIG; i += 97) {
    ms__expr_col c1[S_COUNT];
    memset(c1, 0, sizeof c1);
    for (int k = 0; k <= S_VISIT; k++) {
      c1[k] = b->cols[k];
      size_t sz = k == S_SEX || k == S_BIRTH || k == S_VISIT ? 4 : 8;
      c1[k].data = (const char *)b->cols[k].data + (size_t)i * sz;
      if (c1[k].valid) c1[k].valid += i;
    }
    assert_int_equal(ms__expr_eval(e, c1, S_COUNT, 1, &one, &one_ok, s, &err), MS_OK);
    assert_int_equal(one_ok, ok[i]);
    assert_memory_equal(&one, &out[i], sizeof one);
  }
  ms__expr_scratch_free(s);
  ms__expr_free(e);
  free(out);
  free(ok);
  free(b);
}

/* Rows taking few distinct input tuples (categories, whole-year ages,
 * booleans, some missing; ages read through a parent index) are evaluated
 * once per tuple: the results must be the bytes of evaluating each row
 * alone, and an error must still name the lowest failing row. */
static void test_expr_distinct_inputs_match_row_by_row(void **state) {
  (void)state;
  bigframe *b = big_new();
  static uint8_t preg[NBIG];
  static uint32_t pidx[NBIG];
  uint64_t s = 5;
  for (int i = 0; i < NBIG; i++) {
    preg[i] = lcg(&s) % 3 == 0;
    pidx[i] = (uint32_t)(lcg(&s) % NBIG);
    /* missing values are stored as 0, as the generator stores them: 71
     * ages x 3 sexes x 2 = 426 tuples */
    if (!b->v_age[i]) b->age[i] = 0;
    if (!b->v_sex[i]) b->sex[i] = 0;
  }
  b->cols[S_PREG] = (ms__expr_col){preg, NULL, NULL};
  ms__expr_col parent_age = b->cols[S_AGE];
  parent_age.index = pidx;
  const char *const src[] = {
      "if(sex == 'M', if(age < 40, 176.5, if(age < 60, 176.0, 174.0)), "
      "if(age < 40, 163.0, if(age < 60, 162.0, 159.5))) + if(pregnant, 1, 0) * sqrt(age)",
      "coalesce(if(age >= 45 and not pregnant, age / 3, age * 2), -1) + if(sex == 'F', 4, 0)",
      "if(sex == 'M', log(age - 30), 0) + if(age < 40, 1, 2) * 3 - if(pregnant, 1, 2)",
      /* few operations, one of them a logarithm (weighs as several) */
      "if(pregnant, 4.9912, log(88 + 0.15 * age))"};
  double *out = malloc(NBIG * sizeof *out);
  uint8_t *ok = malloc(NBIG);
  ms__expr_scratch *sc = ms__expr_scratch_new();
  for (size_t k = 0; k < 2 * sizeof src / sizeof *src; k++) {
    ms__expr_col cols[S_COUNT];
    memcpy(cols, b->cols, sizeof cols);
    if (k % 2) cols[S_AGE] = parent_age;
    ms__expr *e = compile_ok(src[k / 2]);
    ms__expr_error err, err1;
    ms_status st = ms__expr_eval(e, cols, S_COUNT, NBIG, out, ok, sc, &err);
    size_t first_bad = SIZE_MAX;
    int n_ok = 0;
    for (int i = 0; i < NBIG; i++) {
      ms__expr_col c1[S_COUNT];
      memcpy(c1, cols, sizeof c1);
      for (int j = 0; j < S_COUNT; j++) {
        if (!c1[j].data) continue;
        if (c1[j].index) {
          c1[j].index += i;
          continue;
        }
        size_t sz = j == S_SEX || j == S_BIRTH || j == S_VISIT ? 4 : j == S_PREG ? 1 : 8;
        c1[j].data = (const char *)c1[j].data + (size_t)i * sz;
        if (c1[j].valid) c1[j].valid += i;
      }
      double one;
      uint8_t one_ok;
      if (ms__expr_eval(e, c1, S_COUNT, 1, &one, &one_ok, sc, &err1) != MS_OK) {
        if (first_bad == SIZE_MAX) first_bad = (size_t)i;
        continue;
      }
      if (st != MS_OK) continue; /* out is unspecified after an error */
      n_ok += one_ok;
      assert_int_equal(one_ok, ok[i]);
      assert_memory_equal(&one, &out[i], sizeof one);
    }
    if (k / 2 == 2) {
      /* log of a non-positive number for men aged 30 or less */
      assert_true(first_bad != SIZE_MAX);
      assert_int_not_equal(st, MS_OK);
      assert_int_equal(err.row, first_bad);
    } else {
      assert_int_equal(st, MS_OK);
      assert_true(first_bad == SIZE_MAX);
      assert_true(n_ok > NBIG / 2 && n_ok < NBIG);
    }
    ms__expr_free(e);
  }
  ms__expr_scratch_free(sc);
  free(out);
  free(ok);
  free(b);
}

/* ms__expr_eval into a fresh scratch (no sharing) over n rows of cols. */
static void eval_fresh(const ms__expr *e, const ms__expr_col *cols, size_t n, double *out,
                       uint8_t *ok) {
  ms__expr_error err;
  assert_int_equal(ms__expr_eval(e, cols, S_COUNT, n, out, ok, NULL, &err), MS_OK);
}

static void assert_same_rows(const double *a, const uint8_t *aok, const double *b,
                             const uint8_t *bok, size_t n) {
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(aok[i], bok[i]);
    assert_memory_equal(&a[i], &b[i], sizeof a[i]);
  }
}

/* Row groupings shared between calls over the same columns: results equal
 * those of calls without sharing (also when the slots are read in another
 * order, over fewer rows, through a row index, which is never shared, or
 * by a short expression reading some of the columns of a grouping); a
 * kept grouping is reused, so a rewrite that is not announced gives the
 * old inputs' results, while forgetting the column (data or presence) or
 * turning sharing on again drops it. */
static void test_expr_shared_groupings(void **state) {
  (void)state;
  bigframe *b = big_new();
  static uint32_t pidx[NBIG];
  static double old_age[NBIG];
  uint64_t s = 11;
  for (int i = 0; i < NBIG; i++) pidx[i] = (uint32_t)(lcg(&s) % NBIG);
  const char *const src[] = {
      "if(age < 40, 0.234, if(age < 60, 0.525, 0.716)) * if(sex == 'M', 1.065, 0.935)",
      "if(sex == 'M', if(age < 40, 176.5, if(age < 60, 176.0, 174.0)), "
      "if(age < 40, 163.0, if(age < 60, 162.0, 159.5)))",
      "174 + 0.35 * age + if(sex == 'F', 4, 0) + if(age >= 60, 1, 0) * 2"};
  ms__expr *e[3];
  for (int k = 0; k < 3; k++) e[k] = compile_ok(src[k]);
  /* fewer operations than worth a grouping of their own */
  ms__expr *sh[2] = {compile_ok("if(age >= 60, 36.41, 36.64)"),
                     compile_ok("if(sex == 'M', 7.5, 7.0)")};
  double *out = malloc(NBIG * sizeof *out), *ref = malloc(NBIG * sizeof *ref);
  uint8_t *ok = malloc(NBIG), *rok = malloc(NBIG);
  ms__expr_error err;
  ms__expr_scratch *sc = ms__expr_scratch_new();
  ms__expr_col cols[S_COUNT];
  memcpy(cols, b->cols, sizeof cols);
  ms__expr_scratch_share(sc, 1);
  for (int k = 0; k < 3; k++) {
    assert_int_equal(ms__expr_eval(e[k], cols, S_COUNT, NBIG, out, ok, sc, &err), MS_OK);
    eval_fresh(e[k], cols, NBIG, ref, rok);
    assert_same_rows(out, ok, ref, rok, NBIG);
    /* fewer rows of the same columns */
    assert_int_equal(ms__expr_eval(e[k], cols, S_COUNT, NBIG / 2, out, ok, sc, &err), MS_OK);
    eval_fresh(e[k], cols, NBIG / 2, ref, rok);
    assert_same_rows(out, ok, ref, rok, NBIG / 2);
  }
  /* short expressions over some of those columns take the grouping too */
  for (int k = 0; k < 2; k++) {
    assert_int_equal(ms__expr_eval(sh[k], cols, S_COUNT, NBIG, out, ok, sc, &err), MS_OK);
    eval_fresh(sh[k], cols, NBIG, ref, rok);
    assert_same_rows(out, ok, ref, rok, NBIG);
  }
  /* age rewritten in place, not announced: the grouping is reused */
  memcpy(old_age, b->age, sizeof old_age);
  for (int i = 0; i < NBIG; i++) b->age[i] = 18 + fmod(b->age[i] + 23, 70);
  ms__expr_col old[S_COUNT];
  memcpy(old, cols, sizeof old);
  old[S_AGE].data = old_age;
  const ms__expr *stale[] = {e[2], sh[0]};
  for (int k = 0; k < 2; k++) {
    assert_int_equal(ms__expr_eval(stale[k], cols, S_COUNT, NBIG, out, ok, sc, &err), MS_OK);
    eval_fresh(stale[k], old, NBIG, ref, rok);
    assert_same_rows(out, ok, ref, rok, NBIG);
    eval_fresh(stale[k], cols, NBIG, ref, rok);
    assert_memory_not_equal(out, ref, NBIG * sizeof *out);
  }
  /* announced: every expression over age sees the new values */
  ms__expr_scratch_forget(sc, b->age, NULL);
  const ms__expr *all[] = {sh[0], e[0], e[1], e[2], sh[0], sh[1]};
  for (int k = 0; k < 6; k++) {
    assert_int_equal(ms__expr_eval(all[k], cols, S_COUNT, NBIG, out, ok, sc, &err), MS_OK);
    eval_fresh(all[k], cols, NBIG, ref, rok);
    assert_same_rows(out, ok, ref, rok, NBIG);
  }
  /* presence of sex rewritten and announced by its valid pointer */
  for (int i = 0; i < NBIG; i++) b->v_sex[i] = i % 7 != 3;
  ms__expr_scratch_forget(sc, NULL, b->v_sex);
  assert_int_equal(ms__expr_eval(e[0], cols, S_COUNT, NBIG, out, ok, sc, &err), MS_OK);
  eval_fresh(e[0], cols, NBIG, ref, rok);
  assert_same_rows(out, ok, ref, rok, NBIG);
  /* sharing turned on again forgets everything */
  for (int i = 0; i < NBIG; i++) b->sex[i] = 1 - b->sex[i];
  ms__expr_scratch_share(sc, 1);
  assert_int_equal(ms__expr_eval(e[1], cols, S_COUNT, NBIG, out, ok, sc, &err), MS_OK);
  eval_fresh(e[1], cols, NBIG, ref, rok);
  assert_same_rows(out, ok, ref, rok, NBIG);
  /* the same data read through a row index: not taken from the grouping */
  ms__expr_col ix[S_COUNT];
  memcpy(ix, cols, sizeof ix);
  ix[S_AGE].index = pidx;
  ix[S_SEX].index = pidx;
  assert_int_equal(ms__expr_eval(e[1], ix, S_COUNT, NBIG, out, ok, sc, &err), MS_OK);
  eval_fresh(e[1], ix, NBIG, ref, rok);
  assert_same_rows(out, ok, ref, rok, NBIG);
  for (int k = 0; k < 3; k++) ms__expr_free(e[k]);
  for (int k = 0; k < 2; k++) ms__expr_free(sh[k]);
  ms__expr_scratch_free(sc);
  free(out);
  free(ref);
  free(ok);
  free(rok);
  free(b);
}

static void test_expr_threads_give_same_bytes(void **state) {
  (void)state;
  bigframe *b = big_new();
  ms__expr *e = compile_ok(big_src);
  double *ref = malloc(NBIG * sizeof *ref), *par = malloc(NBIG * sizeof *par);
  uint8_t *rok = malloc(NBIG), *pok = malloc(NBIG);
  ms__expr_error err;
  assert_int_equal(ms__expr_eval(e, b->cols, S_COUNT, NBIG, ref, rok, NULL, &err), MS_OK);
  memset(par, 0xab, NBIG * sizeof *par);
  int failures = 0;
  const int chunk = 333;
#pragma omp parallel num_threads(4) reduction(+ : failures)
  {
    ms__expr_scratch *s = ms__expr_scratch_new();
#pragma omp for schedule(dynamic, 1)
    for (int c = 0; c < (NBIG + chunk - 1) / chunk; c++) {
      int start = c * chunk;
      int n = NBIG - start < chunk ? NBIG - start : chunk;
      ms__expr_col cols[S_COUNT];
      memset(cols, 0, sizeof cols);
      for (int k = 0; k <= S_VISIT; k++) {
        cols[k] = b->cols[k];
        size_t sz = k == S_SEX || k == S_BIRTH || k == S_VISIT ? 4 : 8;
        cols[k].data = (const char *)b->cols[k].data + (size_t)start * sz;
        if (cols[k].valid) cols[k].valid += start;
      }
      ms__expr_error terr;
      if (ms__expr_eval(e, cols, S_COUNT, (size_t)n, par + start, pok + start, s, &terr) != MS_OK)
        failures++;
    }
    ms__expr_scratch_free(s);
  }
  assert_int_equal(failures, 0);
  assert_memory_equal(ref, par, NBIG * sizeof *ref);
  assert_memory_equal(rok, pok, NBIG);
  ms__expr_free(e);
  free(ref);
  free(par);
  free(rok);
  free(pok);
  free(b);
}

static void test_expr_datetime_and_int_layouts(void **state) {
  (void)state;
  frame f;
  frame_init(&f, 3);
  f.admit[0] = (int64_t)ymd(2024, 1, 1) * 86400 + 3600;
  f.admit[1] = (int64_t)ymd(2024, 1, 2) * 86400;
  f.admit[2] = INT64_MAX; /* out of range: bad input for a present row */
  f.nvis[0] = 3;
  f.nvis[1] = -2;
  f.valid[S_NVIS][2] = 0;
  double out[3];
  uint8_t ok[3];
  ms__expr_error err;
  assert_int_equal(eval_frame("n_visits * 2", &f, out, ok, &err), MS_OK);
  assert_true(out[0] == 6 && out[1] == -4);
  assert_int_equal(ok[2], 0);
  f.valid[S_ADMIT][2] = 0;
  assert_int_equal(eval_frame("(admit_time - datetime(date('2024-01-01'))) * 24", &f, out, ok,
                              &err),
                   MS_OK);
  assert_true(out[0] == 1 && out[1] == 24);
  assert_int_equal(ok[2], 0);
  int32_t d[3];
  assert_int_equal(eval_frame("date(admit_time)", &f, d, ok, &err), MS_OK);
  assert_int_equal(d[0], ymd(2024, 1, 1));
  assert_int_equal(d[1], ymd(2024, 1, 2));
}

/* The expression compiled for a field type that disagrees is reported; the
 * INT64_MAX datetime above in a present row is a data error. */
static void test_expr_bad_input_values(void **state) {
  (void)state;
  frame f;
  frame_init(&f, 2);
  f.admit[1] = INT64_MAX;
  f.weight[0] = INFINITY;
  int64_t t[2];
  double x[2];
  uint8_t ok[2];
  ms__expr_error err;
  assert_int_equal(eval_frame("admit_time + hours(1)", &f, t, ok, &err), MS_ERR_DATA);
  assert_int_equal(err.row, 1);
  assert_string_equal(err.message, "field 'admit_time' holds a datetime outside years 1 to 9999");
  assert_int_equal(eval_frame("weight_kg + 1", &f, x, ok, &err), MS_ERR_DATA);
  assert_int_equal(err.row, 0);
  assert_string_equal(err.message, "field 'weight_kg' holds an infinite value");
}

/* Every line of the ```expr-examples block in docs/expressions.md:
 * "expression => value" or "expression => error: message". */
static void format_value(const ms__expr_value *v, char *buf, size_t cap) {
  if (v->missing) {
    snprintf(buf, cap, "missing");
    return;
  }
  switch (v->type) {
    case MS__EXPR_NUMBER:
    case MS__EXPR_DURATION: snprintf(buf, cap, "%.17g", v->num); break;
    case MS__EXPR_BOOL: snprintf(buf, cap, "%s", v->i ? "true" : "false"); break;
    case MS__EXPR_DATE: {
      char d[MS_DATE_BUFSZ];
      ms_date_format((int32_t)v->i, d);
      snprintf(buf, cap, "%s", d);
      break;
    }
    case MS__EXPR_DATETIME: {
      char d[MS_DATE_BUFSZ];
      ms_datetime_format(v->i, d);
      snprintf(buf, cap, "%s", d);
      break;
    }
    case MS__EXPR_STRING: {
      size_t k = 0;
      buf[k++] = '\'';
      for (const char *p = v->str; *p && k + 3 < cap; p++) {
        if (*p == '\'') buf[k++] = '\'';
        buf[k++] = *p;
      }
      buf[k++] = '\'';
      buf[k] = 0;
      break;
    }
    default: snprintf(buf, cap, "?"); break;
  }
}

static void test_expr_doc_examples(void **state) {
  (void)state;
  const char *dir = getenv("MS_SOURCE_DIR");
  char path[1024];
  snprintf(path, sizeof path, "%s/docs/expressions.md", dir ? dir : MS_SOURCE_DIR);
  FILE *fp = fopen(path, "r");
  assert_non_null(fp);
  char line[1024];
  int in_block = 0, n_checked = 0, n_bad = 0;
  while (fgets(line, sizeof line, fp)) {
    line[strcspn(line, "\n")] = 0;
    if (!in_block) {
      in_block = !strcmp(line, "```expr-examples");
      continue;
    }
    if (!strncmp(line, "```", 3)) break;
    char *arrow = strstr(line, " => ");
    assert_non_null(arrow);
    char *next;
    while ((next = strstr(arrow + 1, " => "))) arrow = next;
    *arrow = 0;
    const char *want = arrow + 4;
    char src[1024];
    snprintf(src, sizeof src, "%s", line);
    for (size_t k = strlen(src); k > 0 && src[k - 1] == ' '; k--) src[k - 1] = 0;
    char got[512];
    ms_diag d;
    ms_diag_init(&d);
    ms__expr_value v;
    ms_status st = ms__expr_const_value(src, &resolver, NULL, &v, NULL, &d);
    if (st != MS_OK)
      snprintf(got, sizeof got, "error: %s", d.count ? d.entries[0].message : "?");
    else if (v.type == MS__EXPR_STRING && !v.missing) {
      /* const_value hands strings out as copies; fetch again borrowed */
      ms__expr *e = compile_ok(src);
      ms__expr_error err;
      assert_int_equal(ms__expr_eval_const(e, &v, &err), MS_OK);
      format_value(&v, got, sizeof got);
      ms__expr_free(e);
    } else {
      format_value(&v, got, sizeof got);
    }
    ms_diag_deinit(&d);
    char *end = NULL;
    double wnum = strtod(want, &end);
    int same = (end && *end == 0 && end != want && st == MS_OK &&
                (v.type == MS__EXPR_NUMBER || v.type == MS__EXPR_DURATION) && !v.missing)
                   ? v.num == wnum
                   : !strcmp(got, want);
    if (!same) {
      fprintf(stderr, "docs/expressions.md: %s\n  expected: %s\n  got:      %s\n", src, want,
              got);
      n_bad++;
    }
    n_checked++;
  }
  fclose(fp);
  assert_true(in_block);
  assert_true(n_checked >= 30);
  assert_int_equal(n_bad, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_expr_precedence_and_associativity),
      cmocka_unit_test(test_expr_arithmetic_operators),
      cmocka_unit_test(test_expr_functions),
      cmocka_unit_test(test_expr_missing_propagation),
      cmocka_unit_test(test_expr_three_valued_logic),
      cmocka_unit_test(test_expr_type_errors_exact),
      cmocka_unit_test(test_expr_arity_errors),
      cmocka_unit_test(test_expr_unknown_names_with_suggestions),
      cmocka_unit_test(test_expr_syntax_errors),
      cmocka_unit_test(test_expr_categorical_comparisons),
      cmocka_unit_test(test_expr_label_comparison_shapes),
      cmocka_unit_test(test_expr_date_arithmetic),
      cmocka_unit_test(test_expr_division_by_zero_reports_row),
      cmocka_unit_test(test_expr_errors_masked_by_if_and_logic),
      cmocka_unit_test(test_expr_strings_and_lookup),
      cmocka_unit_test(test_expr_names_slots_and_parent_index),
      cmocka_unit_test(test_expr_constant_values),
      cmocka_unit_test(test_expr_vectorised_matches_scalar_reference),
      cmocka_unit_test(test_expr_threads_give_same_bytes),
      cmocka_unit_test(test_expr_distinct_inputs_match_row_by_row),
      cmocka_unit_test(test_expr_shared_groupings),
      cmocka_unit_test(test_expr_datetime_and_int_layouts),
      cmocka_unit_test(test_expr_bad_input_values),
      cmocka_unit_test(test_expr_doc_examples),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
