/* Expression evaluator: block-wise register machine over typed
 * instructions (see expr_internal.h for the program model).
 *
 * Each instruction runs over a block of up to MS__EXPR_BLOCK rows with a
 * tight loop per operation, so interpretation costs one switch per
 * instruction per block. Values and per-row states (missing / present /
 * error) travel together; an operation that has no finite answer for a row
 * marks that row as an error instead of producing NaN or infinity. Errors
 * flow through the data like missing values, and the selection operations
 * (if, and, or, coalesce) drop them for rows where the failing operand is
 * not used. When the result of a block holds an error, the lowest such row
 * is re-run alone in trace mode to find the operation that caused it and
 * describe it with its operand values. When the rows of a call take few
 * distinct input tuples, the program runs once per tuple and the rows take
 * their tuple's result (eval_distinct; same operations, same bits). With
 * sharing on (ms__expr_scratch_share), the grouping of rows by tuple is
 * kept in the scratch and serves later calls over the same columns or some
 * of them, until the caller forgets a column it rewrites.
 *
 * Invariants: no global state; all working memory is in the caller's
 * scratch; the compiled expression is only read, so any number of threads
 * may evaluate it at once. No operation has undefined behaviour for any bit
 * pattern in rows that are missing (their values are garbage by design):
 * integer conversions are range-checked first and integer differences are
 * taken in double precision.
 *
 * Reference: Howard Hinnant, "chrono-Compatible Low-Level Date Algorithms"
 * (days_from_civil / civil_from_days). */
#include <float.h>
#include "core/alloc.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "medsynth/table.h"
#include "records/expr_internal.h"

#define BLK MS__EXPR_BLOCK
#define STRIDE (BLK * 8 + BLK)

static inline uint8_t st2(uint8_t a, uint8_t b) {
  return (uint8_t)((a & b & 1) | ((a | b) & 2));
}
static inline uint8_t st3(uint8_t a, uint8_t b, uint8_t c) {
  return (uint8_t)((a & b & c & 1) | ((a | b | c) & 2));
}
static inline int fin(double x) { return fabs(x) <= DBL_MAX; }

/* ------------------------------------------------------------- dates */

static inline int date_ok(double days) {
  return days >= MS__EXPR_DATE_MIN && days <= MS__EXPR_DATE_MAX;
}
static inline int dt_ok(double secs) {
  return secs >= (double)MS__EXPR_DATE_MIN * 86400.0 &&
         secs < ((double)MS__EXPR_DATE_MAX + 1.0) * 86400.0;
}

static double years_between(int32_t a, int32_t b) {
  int sign = 1;
  if (b < a) {
    int32_t t = a;
    a = b;
    b = t;
    sign = -1;
  }
  int ya, ma, da, yb, mb, db;
  ms_date_to_ymd(a, &ya, &ma, &da);
  ms_date_to_ymd(b, &yb, &mb, &db);
  int y = yb - ya - ((mb < ma || (mb == ma && db < da)) ? 1 : 0);
  return (double)(sign * y);
}

/* ------------------------------------------------------------- consts */

void ms__expr_fill_consts_one(const ms__expr *e, size_t i, ms__reg *r, size_t n) {
  const ms__ins *I = &e->ins[i];
  memset(r->s, I->kstate, n);
  switch (I->type) {
    case MS__EXPR_NUMBER:
    case MS__EXPR_DURATION: {
      double *v = r->v;
      for (size_t j = 0; j < n; j++) v[j] = I->kf;
      break;
    }
    case MS__EXPR_BOOL: memset(r->v, (int)(I->ki != 0), n); break;
    case MS__EXPR_CATEGORICAL:
    case MS__EXPR_DATE: {
      int32_t *v = r->v;
      for (size_t j = 0; j < n; j++) v[j] = (int32_t)I->ki;
      break;
    }
    case MS__EXPR_DATETIME: {
      int64_t *v = r->v;
      for (size_t j = 0; j < n; j++) v[j] = I->ki;
      break;
    }
    case MS__EXPR_STRING: {
      const char **v = r->v;
      const char *s = I->ks ? I->ks : "";
      for (size_t j = 0; j < n; j++) v[j] = s;
      break;
    }
    default: break;
  }
}

void ms__expr_fill_consts(const ms__expr *e, ms__reg *R, size_t n) {
  for (size_t i = 0; i < e->n_ins; i++)
    if (e->ins[i].op == MS__OP_CONST) ms__expr_fill_consts_one(e, i, &R[i], n);
}

/* --------------------------------------------------------------- load */

static void op_load(const ms__ins *I, const ms__expr_col *c, size_t start, size_t n, ms__reg *o) {
  const uint32_t *idx = c->index ? c->index + start : NULL;
  uint8_t *os = o->s;
  if (c->valid) {
    if (idx)
      for (size_t j = 0; j < n; j++) os[j] = c->valid[idx[j]] != 0;
    else
      for (size_t j = 0; j < n; j++) os[j] = c->valid[start + j] != 0;
  } else {
    memset(os, 1, n);
  }
#define ROW(j) (idx ? (size_t)idx[j] : start + (j))
  switch ((ms__expr_layout)I->layout) {
    case MS__EXPR_LAYOUT_F64: {
      const double *src = c->data;
      double *v;
      if (!idx) {
        v = (double *)(src + start);
        o->v = v;
      } else {
        v = o->v;
        for (size_t j = 0; j < n; j++) v[j] = src[idx[j]];
      }
      /* NaN reads as missing; an infinity is bad input */
      for (size_t j = 0; j < n; j++) {
        double x = v[j];
        uint8_t s = (uint8_t)(os[j] & (x == x));
        os[j] = (uint8_t)(s + (s & !fin(x)));
      }
      break;
    }
    case MS__EXPR_LAYOUT_I64: {
      const int64_t *src = c->data;
      if (I->type == MS__EXPR_NUMBER) {
        double *v = o->v;
        for (size_t j = 0; j < n; j++) v[j] = (double)src[ROW(j)];
      } else { /* datetime */
        int64_t *v;
        if (!idx) {
          v = (int64_t *)(src + start);
          o->v = v;
        } else {
          v = o->v;
          for (size_t j = 0; j < n; j++) v[j] = src[idx[j]];
        }
        for (size_t j = 0; j < n; j++) os[j] += (os[j] == 1) & !dt_ok((double)v[j]);
      }
      break;
    }
    case MS__EXPR_LAYOUT_I32: {
      const int32_t *src = c->data;
      if (I->type == MS__EXPR_NUMBER) {
        double *v = o->v;
        for (size_t j = 0; j < n; j++) v[j] = (double)src[ROW(j)];
      } else if (I->type == MS__EXPR_CATEGORICAL) {
        int32_t *v = o->v;
        int64_t nc = I->n1;
        for (size_t j = 0; j < n; j++) {
          int32_t k = src[ROW(j)];
          int bad = k < 0 || k >= nc;
          os[j] += (os[j] == 1) & bad;
          v[j] = bad ? 0 : k;
        }
      } else { /* date */
        int32_t *v;
        if (!idx) {
          v = (int32_t *)(src + start);
          o->v = v;
        } else {
          v = o->v;
          for (size_t j = 0; j < n; j++) v[j] = src[idx[j]];
        }
        for (size_t j = 0; j < n; j++) os[j] += (os[j] == 1) & !date_ok(v[j]);
      }
      break;
    }
    case MS__EXPR_LAYOUT_U8: {
      const uint8_t *src = c->data;
      uint8_t *v = o->v;
      for (size_t j = 0; j < n; j++) v[j] = src[ROW(j)] != 0;
      break;
    }
    case MS__EXPR_LAYOUT_STR_FIXED: {
      const char *src = c->data;
      const char **v = o->v;
      size_t w = I->width + 1;
      for (size_t j = 0; j < n; j++) v[j] = os[j] == 1 ? src + ROW(j) * w : "";
      break;
    }
    case MS__EXPR_LAYOUT_STR_PTR: {
      const char *const *src = c->data;
      const char **v = o->v;
      for (size_t j = 0; j < n; j++) {
        const char *p = os[j] == 1 ? src[ROW(j)] : "";
        v[j] = p ? p : "";
      }
      break;
    }
    default: memset(os, MS__ST_ERROR, n); break;
  }
#undef ROW
}

/* ---------------------------------------------------------- kernels */

#define OPERANDS                                          \
  const ms__reg *A = I->a >= 0 ? &R[I->a] : NULL;        \
  const ms__reg *B = I->b >= 0 ? &R[I->b] : NULL;        \
  const ms__reg *Cc = I->c >= 0 ? &R[I->c] : NULL;       \
  ms__reg *O = &R[i];                                    \
  uint8_t *restrict os = O->s;                           \
  (void)A;                                               \
  (void)B;                                               \
  (void)Cc

/* Binary double operation with a finiteness check on the result. */
#define BIN_F64(EXPR)                                                 \
  do {                                                                \
    const double *restrict a = A->v, *restrict b = B->v;              \
    const uint8_t *restrict sa = A->s, *restrict sb = B->s;           \
    double *restrict o = O->v;                                        \
    for (size_t j = 0; j < n; j++) {                                  \
      double x = a[j], y = b[j];                                      \
      double r = (EXPR);                                              \
      uint8_t s = st2(sa[j], sb[j]);                                  \
      o[j] = r;                                                       \
      os[j] = (uint8_t)(s + ((s == 1) & !fin(r)));                    \
    }                                                                 \
  } while (0)

#define UN_F64(BAD, EXPR)                                             \
  do {                                                                \
    const double *restrict a = A->v;                                  \
    const uint8_t *restrict sa = A->s;                                \
    double *restrict o = O->v;                                        \
    for (size_t j = 0; j < n; j++) {                                  \
      double x = a[j];                                                \
      int bad = (BAD);                                                \
      double r = (EXPR);                                              \
      uint8_t s = sa[j];                                              \
      o[j] = r;                                                       \
      os[j] = (uint8_t)(s + ((s == 1) & (bad | !fin(r))));            \
    }                                                                 \
  } while (0)

#define CMP_LOOP(T, OPX)                                              \
  do {                                                                \
    const T *restrict a = A->v, *restrict b = B->v;                   \
    uint8_t *restrict o = O->v;                                       \
    for (size_t j = 0; j < n; j++) o[j] = (uint8_t)(a[j] OPX b[j]);   \
  } while (0)

#define CMP_ALL(T)                                    \
  switch (cmp) {                                      \
    case 0: CMP_LOOP(T, ==); break;                   \
    case 1: CMP_LOOP(T, !=); break;                   \
    case 2: CMP_LOOP(T, <); break;                    \
    case 3: CMP_LOOP(T, <=); break;                   \
    case 4: CMP_LOOP(T, >); break;                    \
    default: CMP_LOOP(T, >=); break;                  \
  }

static inline double round_digits(double x, double d) {
  if (d >= 0) {
    double p = pow(10.0, d);
    return round(x * p) / p;
  }
  double q = pow(10.0, -d);
  return round(x / q) * q;
}

static inline double fmod_floor(double x, double y) {
  double r = fmod(x, y);
  if (r != 0 && ((r < 0) != (y < 0))) r += y;
  return r;
}

void ms__expr_run_one(const ms__expr *e, size_t i, const ms__expr_col *cols, size_t start,
                      size_t n, ms__reg *R) {
  const ms__ins *I = &e->ins[i];
  OPERANDS;
  switch ((ms__op)I->op) {
    case MS__OP_CONST: break;
    case MS__OP_LOAD: op_load(I, &cols[I->slot], start, n, O); break;
    case MS__OP_ADD: BIN_F64(x + y); break;
    case MS__OP_SUB: BIN_F64(x - y); break;
    case MS__OP_MUL: BIN_F64(x * y); break;
    case MS__OP_POW: BIN_F64(pow(x, y)); break;
    case MS__OP_DIV: {
      const double *restrict a = A->v, *restrict b = B->v;
      const uint8_t *restrict sa = A->s, *restrict sb = B->s;
      double *restrict o = O->v;
      for (size_t j = 0; j < n; j++) {
        double y = b[j];
        int z = y == 0.0;
        double r = a[j] / (z ? 1.0 : y);
        uint8_t s = st2(sa[j], sb[j]);
        o[j] = r;
        os[j] = (uint8_t)(s + ((s == 1) & (z | !fin(r))));
      }
      break;
    }
    case MS__OP_MOD: {
      const double *a = A->v, *b = B->v;
      double *o = O->v;
      for (size_t j = 0; j < n; j++) {
        double y = b[j];
        int z = y == 0.0 || !fin(y);
        uint8_t s = st2(A->s[j], B->s[j]);
        double r = (s == 1 && !z) ? fmod_floor(a[j], y) : 0.0;
        o[j] = r;
        os[j] = (uint8_t)(s + ((s == 1) & (z | !fin(r))));
      }
      break;
    }
    case MS__OP_SQUARE: UN_F64(0, x * x); break;
    case MS__OP_NEG: UN_F64(0, -x); break;
    case MS__OP_ABS: UN_F64(0, fabs(x)); break;
    case MS__OP_LOG: UN_F64(!(x > 0), log(x > 0 ? x : 1.0)); break;
    case MS__OP_LOG10: UN_F64(!(x > 0), log10(x > 0 ? x : 1.0)); break;
    case MS__OP_SQRT: UN_F64(!(x >= 0), sqrt(x >= 0 ? x : 0.0)); break;
    case MS__OP_EXP: UN_F64(0, exp(x)); break;
    case MS__OP_FLOOR: UN_F64(0, floor(x)); break;
    case MS__OP_CEIL: UN_F64(0, ceil(x)); break;
    case MS__OP_ROUND: UN_F64(0, round(x)); break;
    case MS__OP_ROUND_D: {
      const double *a = A->v, *b = B->v;
      double *o = O->v;
      for (size_t j = 0; j < n; j++) {
        double d = b[j];
        uint8_t s = st2(A->s[j], B->s[j]);
        int bad = !(d == floor(d) && d >= -15 && d <= 15);
        double r = (s == 1 && !bad) ? round_digits(a[j], d) : 0.0;
        o[j] = r;
        os[j] = (uint8_t)(s + ((s == 1) & (bad | !fin(r))));
      }
      break;
    }
    case MS__OP_MIN:
    case MS__OP_MAX: {
      int mx = I->op == MS__OP_MAX;
      for (size_t j = 0; j < n; j++) os[j] = st2(A->s[j], B->s[j]);
      if (I->sub == MS__CL_I32) {
        const int32_t *a = A->v, *b = B->v;
        int32_t *o = O->v;
        for (size_t j = 0; j < n; j++) o[j] = (mx ? a[j] > b[j] : a[j] < b[j]) ? a[j] : b[j];
      } else if (I->sub == MS__CL_I64) {
        const int64_t *a = A->v, *b = B->v;
        int64_t *o = O->v;
        for (size_t j = 0; j < n; j++) o[j] = (mx ? a[j] > b[j] : a[j] < b[j]) ? a[j] : b[j];
      } else {
        const double *a = A->v, *b = B->v;
        double *o = O->v;
        if (mx)
          for (size_t j = 0; j < n; j++) o[j] = a[j] > b[j] ? a[j] : b[j];
        else
          for (size_t j = 0; j < n; j++) o[j] = a[j] < b[j] ? a[j] : b[j];
      }
      break;
    }
    case MS__OP_CLAMP: {
      const double *x = A->v, *lo = B->v, *hi = Cc->v;
      double *o = O->v;
      for (size_t j = 0; j < n; j++) {
        uint8_t s = st3(A->s[j], B->s[j], Cc->s[j]);
        int bad = lo[j] > hi[j];
        double r = x[j] < lo[j] ? lo[j] : x[j] > hi[j] ? hi[j] : x[j];
        o[j] = r;
        os[j] = (uint8_t)(s + ((s == 1) & bad));
      }
      break;
    }
    case MS__OP_CMP: {
      int cmp = I->sub & 7, cls = I->sub >> 3;
      for (size_t j = 0; j < n; j++) os[j] = st2(A->s[j], B->s[j]);
      switch (cls) {
        case MS__CL_F64: CMP_ALL(double); break;
        case MS__CL_I32: CMP_ALL(int32_t); break;
        case MS__CL_I64: CMP_ALL(int64_t); break;
        case MS__CL_U8: CMP_ALL(uint8_t); break;
        default: {
          const char *const *a = A->v, *const *b = B->v;
          uint8_t *o = O->v;
          for (size_t j = 0; j < n; j++) {
            int c = strcmp(a[j], b[j]);
            int r;
            switch (cmp) {
              case 0: r = c == 0; break;
              case 1: r = c != 0; break;
              case 2: r = c < 0; break;
              case 3: r = c <= 0; break;
              case 4: r = c > 0; break;
              default: r = c >= 0; break;
            }
            o[j] = (uint8_t)r;
          }
          break;
        }
      }
      break;
    }
    case MS__OP_AND:
    case MS__OP_OR: {
      /* Three-valued logic; a decisive operand (false for and, true for
       * or) wins over missing and error on the other side. */
      const uint8_t *a = A->v, *b = B->v, *sa = A->s, *sb = B->s;
      uint8_t *o = O->v;
      uint8_t dv = I->op == MS__OP_OR; /* the decisive value */
      for (size_t j = 0; j < n; j++) {
        int da = sa[j] == 1 && a[j] == dv;
        int db = sb[j] == 1 && b[j] == dv;
        uint8_t s;
        if (da | db) s = 1;
        else if ((sa[j] | sb[j]) & 2) s = 2;
        else if (sa[j] == 0 || sb[j] == 0) s = 0;
        else s = 1;
        os[j] = s;
        o[j] = (da | db) ? dv : (uint8_t)!dv;
      }
      break;
    }
    case MS__OP_NOT: {
      const uint8_t *a = A->v;
      uint8_t *o = O->v;
      for (size_t j = 0; j < n; j++) {
        o[j] = !a[j];
        os[j] = A->s[j];
      }
      break;
    }
    case MS__OP_IN: {
      int cls = I->sub & 7, neg = (I->sub >> 3) & 1;
      size_t k = (size_t)I->n1;
      uint8_t *o = O->v;
      memcpy(os, A->s, n);
      for (size_t j = 0; j < n; j++) {
        int hit = 0;
        switch (cls) {
          case MS__CL_F64: {
            double x = ((const double *)A->v)[j];
            for (size_t t = 0; t < k; t++) hit |= x == ((const double *)I->p1)[t];
            break;
          }
          case MS__CL_I32: {
            int32_t x = ((const int32_t *)A->v)[j];
            for (size_t t = 0; t < k; t++) hit |= x == ((const int32_t *)I->p1)[t];
            break;
          }
          case MS__CL_I64: {
            int64_t x = ((const int64_t *)A->v)[j];
            for (size_t t = 0; t < k; t++) hit |= x == ((const int64_t *)I->p1)[t];
            break;
          }
          case MS__CL_U8: {
            uint8_t x = ((const uint8_t *)A->v)[j];
            for (size_t t = 0; t < k; t++) hit |= x == ((const uint8_t *)I->p1)[t];
            break;
          }
          default: {
            const char *x = ((const char *const *)A->v)[j];
            for (size_t t = 0; t < k && !hit; t++)
              hit = !strcmp(x, ((const char *const *)I->p1)[t]);
            break;
          }
        }
        o[j] = (uint8_t)(hit ^ neg);
      }
      break;
    }
    case MS__OP_CODE_TABLE: {
      const int32_t *a = A->v;
      const uint8_t *tab = I->p1;
      uint8_t *o = O->v;
      for (size_t j = 0; j < n; j++) {
        o[j] = tab[a[j]];
        os[j] = A->s[j];
      }
      break;
    }
    case MS__OP_IF: {
      /* Branch-free selects (masks instead of a data-dependent branch per
       * row, which mispredicts on random conditions and blocks
       * vectorisation); the result bits are those of c ? a : b. */
      const uint8_t *restrict c = A->v, *restrict sc = A->s;
      const uint8_t *restrict sb = B->s, *restrict sC = Cc->s;
      uint8_t *restrict so = os;
      size_t sz = ms__expr_type_size((ms__expr_type)I->type);
      for (size_t j = 0; j < n; j++) {
        uint8_t m = (uint8_t)(0 - (uint8_t)(c[j] != 0));
        uint8_t ps = (uint8_t)((sb[j] & m) | (sC[j] & (uint8_t)~m));
        so[j] = sc[j] == 1 ? ps : sc[j];
      }
      if (sz == 8) {
        const uint64_t *restrict a = B->v, *restrict b = Cc->v;
        uint64_t *restrict o = O->v;
        for (size_t j = 0; j < n; j++) {
          uint64_t m = 0 - (uint64_t)(c[j] != 0);
          o[j] = (a[j] & m) | (b[j] & ~m);
        }
      } else if (sz == 4) {
        const uint32_t *restrict a = B->v, *restrict b = Cc->v;
        uint32_t *restrict o = O->v;
        for (size_t j = 0; j < n; j++) {
          uint32_t m = 0 - (uint32_t)(c[j] != 0);
          o[j] = (a[j] & m) | (b[j] & ~m);
        }
      } else {
        const uint8_t *restrict a = B->v, *restrict b = Cc->v;
        uint8_t *restrict o = O->v;
        for (size_t j = 0; j < n; j++) {
          uint8_t m = (uint8_t)(0 - (uint8_t)(c[j] != 0));
          o[j] = (uint8_t)((a[j] & m) | (b[j] & (uint8_t)~m));
        }
      }
      break;
    }
    case MS__OP_COALESCE: {
      const uint8_t *restrict sa = A->s, *restrict sb = B->s;
      uint8_t *restrict so = os;
      size_t sz = ms__expr_type_size((ms__expr_type)I->type);
      for (size_t j = 0; j < n; j++) so[j] = sa[j] == 0 ? sb[j] : sa[j];
      if (sz == 8) {
        const uint64_t *restrict a = A->v, *restrict b = B->v;
        uint64_t *restrict o = O->v;
        for (size_t j = 0; j < n; j++) {
          uint64_t m = 0 - (uint64_t)(sa[j] == 0);
          o[j] = (b[j] & m) | (a[j] & ~m);
        }
      } else if (sz == 4) {
        const uint32_t *restrict a = A->v, *restrict b = B->v;
        uint32_t *restrict o = O->v;
        for (size_t j = 0; j < n; j++) {
          uint32_t m = 0 - (uint32_t)(sa[j] == 0);
          o[j] = (b[j] & m) | (a[j] & ~m);
        }
      } else {
        const uint8_t *restrict a = A->v, *restrict b = B->v;
        uint8_t *restrict o = O->v;
        for (size_t j = 0; j < n; j++) o[j] = sa[j] == 0 ? b[j] : a[j];
      }
      break;
    }
    case MS__OP_ISMISSING: {
      uint8_t *o = O->v;
      for (size_t j = 0; j < n; j++) {
        uint8_t s = A->s[j];
        o[j] = s == 0;
        os[j] = s == 2 ? 2 : 1;
      }
      break;
    }
    case MS__OP_DATE_ADD: {
      const int32_t *a = A->v;
      const double *d = B->v;
      int32_t *o = O->v;
      double sign = I->sub ? -1.0 : 1.0;
      for (size_t j = 0; j < n; j++) {
        double r = (double)a[j] + sign * round(d[j]);
        uint8_t s = st2(A->s[j], B->s[j]);
        int ok = date_ok(r);
        o[j] = ok ? (int32_t)r : 0;
        os[j] = (uint8_t)(s + ((s == 1) & !ok));
      }
      break;
    }
    case MS__OP_DT_ADD: {
      const int64_t *a = A->v;
      const double *d = B->v;
      int64_t *o = O->v;
      double sign = I->sub ? -1.0 : 1.0;
      for (size_t j = 0; j < n; j++) {
        double r = (double)a[j] + sign * round(d[j] * 86400.0);
        uint8_t s = st2(A->s[j], B->s[j]);
        int ok = dt_ok(r);
        o[j] = ok ? (int64_t)r : 0;
        os[j] = (uint8_t)(s + ((s == 1) & !ok));
      }
      break;
    }
    case MS__OP_DATE_DIFF: {
      const int32_t *a = A->v, *b = B->v;
      double *o = O->v;
      for (size_t j = 0; j < n; j++) {
        o[j] = (double)a[j] - (double)b[j];
        os[j] = st2(A->s[j], B->s[j]);
      }
      break;
    }
    case MS__OP_DT_DIFF: {
      const int64_t *a = A->v, *b = B->v;
      double *o = O->v;
      for (size_t j = 0; j < n; j++) {
        o[j] = ((double)a[j] - (double)b[j]) / 86400.0;
        os[j] = st2(A->s[j], B->s[j]);
      }
      break;
    }
    case MS__OP_DATE_TO_DT: {
      const int32_t *a = A->v;
      int64_t *o = O->v;
      for (size_t j = 0; j < n; j++) {
        o[j] = (int64_t)a[j] * 86400;
        os[j] = A->s[j];
      }
      break;
    }
    case MS__OP_DT_TO_DATE: {
      const int64_t *a = A->v;
      int32_t *o = O->v;
      for (size_t j = 0; j < n; j++) {
        int64_t q = a[j] / 86400;
        if (a[j] % 86400 < 0) q--;
        int ok = date_ok((double)q);
        o[j] = ok ? (int32_t)q : 0;
        os[j] = (uint8_t)(A->s[j] + ((A->s[j] == 1) & !ok));
      }
      break;
    }
    case MS__OP_DATE_PARSE:
    case MS__OP_DT_PARSE: {
      const char *const *a = A->v;
      int is_dt = I->op == MS__OP_DT_PARSE;
      for (size_t j = 0; j < n; j++) {
        uint8_t s = A->s[j];
        int ok = 1;
        if (is_dt) {
          int64_t t = 0;
          if (s == 1) ok = ms_datetime_parse(a[j], &t) == 0 && dt_ok((double)t);
          ((int64_t *)O->v)[j] = ok ? t : 0;
        } else {
          int32_t t = 0;
          if (s == 1) ok = ms_date_parse(a[j], &t) == 0 && date_ok(t);
          ((int32_t *)O->v)[j] = ok ? t : 0;
        }
        os[j] = (uint8_t)(s + ((s == 1) & !ok));
      }
      break;
    }
    case MS__OP_YEAR:
    case MS__OP_MONTH:
    case MS__OP_DAY: {
      const int32_t *a = A->v;
      double *o = O->v;
      for (size_t j = 0; j < n; j++) {
        int y, m, d;
        ms_date_to_ymd(a[j], &y, &m, &d);
        o[j] = I->op == MS__OP_YEAR ? y : I->op == MS__OP_MONTH ? m : d;
        os[j] = A->s[j];
      }
      break;
    }
    case MS__OP_YEARS_BETWEEN: {
      const int32_t *a = A->v, *b = B->v;
      double *o = O->v;
      for (size_t j = 0; j < n; j++) {
        o[j] = years_between(a[j], b[j]);
        os[j] = st2(A->s[j], B->s[j]);
      }
      break;
    }
    case MS__OP_STARTSWITH: {
      const char *const *a = A->v, *const *b = B->v;
      uint8_t *o = O->v;
      for (size_t j = 0; j < n; j++) {
        o[j] = !strncmp(a[j], b[j], strlen(b[j]));
        os[j] = st2(A->s[j], B->s[j]);
      }
      break;
    }
    case MS__OP_CAT_TO_STR: {
      const int32_t *a = A->v;
      const char *const *labels = I->p1;
      const char **o = O->v;
      for (size_t j = 0; j < n; j++) {
        o[j] = labels[a[j]];
        os[j] = A->s[j];
      }
      break;
    }
    case MS__OP_LOOKUP_CAT:
    case MS__OP_LOOKUP_NUM_CAT:
    case MS__OP_LOOKUP_STR:
    case MS__OP_LOOKUP_NUM_STR: {
      int by_cat = I->op == MS__OP_LOOKUP_CAT || I->op == MS__OP_LOOKUP_NUM_CAT;
      int num = I->op == MS__OP_LOOKUP_NUM_CAT || I->op == MS__OP_LOOKUP_NUM_STR;
      const ms__vocab *v = I->p2;
      for (size_t j = 0; j < n; j++) {
        uint8_t s = A->s[j];
        size_t row = SIZE_MAX;
        if (s == 1) {
          if (by_cat) {
            int32_t r = ((const int32_t *)I->p1)[((const int32_t *)A->v)[j]];
            row = r < 0 ? SIZE_MAX : (size_t)r;
          } else {
            row = ms__vocab_find(v, (size_t)I->n2, ((const char *const *)A->v)[j]);
          }
          if (row == SIZE_MAX) s = 0;
        }
        if (num) {
          double x = s == 1 ? ((const double *)I->p3)[row] : 0.0;
          if (!(x == x)) {
            s = 0;
            x = 0.0;
          }
          ((double *)O->v)[j] = x;
        } else {
          const char *str = s == 1 ? ms__vocab_cell(v, row, (size_t)I->n1) : "";
          ((const char **)O->v)[j] = str ? str : "";
        }
        os[j] = s;
      }
      break;
    }
    default: memset(os, MS__ST_ERROR, n); break;
  }
}

void ms__expr_run(const ms__expr *e, const ms__expr_col *cols, size_t start, size_t n,
                  ms__reg *R, unsigned char *const *buf) {
  for (size_t i = 0; i < e->n_ins; i++) {
    if (e->ins[i].op == MS__OP_CONST) continue;
    R[i].v = buf[i];
    R[i].s = buf[i] + BLK * 8;
    ms__expr_run_one(e, i, cols, start, n, R);
  }
}

/* ------------------------------------------------------ error messages */

ms_status ms__expr_describe(const ms__expr *e, size_t i, const ms__reg *R, char *msg,
                            size_t cap) {
  const ms__ins *I = &e->ins[i];
  double a = 0, b = 0, c = 0;
  if (I->a >= 0 && (e->ins[I->a].type == MS__EXPR_NUMBER ||
                    e->ins[I->a].type == MS__EXPR_DURATION))
    a = ((const double *)R[I->a].v)[0];
  if (I->b >= 0 && (e->ins[I->b].type == MS__EXPR_NUMBER ||
                    e->ins[I->b].type == MS__EXPR_DURATION))
    b = ((const double *)R[I->b].v)[0];
  if (I->c >= 0 && (e->ins[I->c].type == MS__EXPR_NUMBER ||
                    e->ins[I->c].type == MS__EXPR_DURATION))
    c = ((const double *)R[I->c].v)[0];
  switch ((ms__op)I->op) {
    case MS__OP_CONST:
      snprintf(msg, cap, "%s", I->kmsg ? I->kmsg : "cannot be evaluated");
      return I->kstatus ? I->kstatus : MS_ERR_MATH;
    case MS__OP_LOAD:
      if (I->type == MS__EXPR_CATEGORICAL) {
        snprintf(msg, cap, "field '%s' holds a category code outside its %lld categories",
                 I->kmsg ? I->kmsg : "?", (long long)I->n1);
      } else if (I->type == MS__EXPR_DATE || I->type == MS__EXPR_DATETIME) {
        snprintf(msg, cap, "field '%s' holds a %s outside years 1 to 9999",
                 I->kmsg ? I->kmsg : "?", ms__expr_type_name((ms__expr_type)I->type));
      } else {
        snprintf(msg, cap, "field '%s' holds an infinite value", I->kmsg ? I->kmsg : "?");
      }
      return MS_ERR_DATA;
    case MS__OP_DIV:
      if (b == 0.0) snprintf(msg, cap, "division by zero (%.17g / 0)", a);
      else snprintf(msg, cap, "%.17g / %.17g is not a finite number", a, b);
      return MS_ERR_MATH;
    case MS__OP_MOD: snprintf(msg, cap, "modulo by zero (%.17g %% 0)", a); return MS_ERR_MATH;
    case MS__OP_ADD: snprintf(msg, cap, "%.17g + %.17g overflows", a, b); return MS_ERR_MATH;
    case MS__OP_SUB: snprintf(msg, cap, "%.17g - %.17g overflows", a, b); return MS_ERR_MATH;
    case MS__OP_MUL: snprintf(msg, cap, "%.17g * %.17g overflows", a, b); return MS_ERR_MATH;
    case MS__OP_SQUARE: snprintf(msg, cap, "%.17g ^ 2 overflows", a); return MS_ERR_MATH;
    case MS__OP_POW:
      snprintf(msg, cap, "%.17g ^ %.17g is not a finite number", a, b);
      return MS_ERR_MATH;
    case MS__OP_LOG:
    case MS__OP_LOG10:
      snprintf(msg, cap, "%s of %.17g (argument must be > 0)",
               I->op == MS__OP_LOG ? "log" : "log10", a);
      return MS_ERR_MATH;
    case MS__OP_SQRT:
      snprintf(msg, cap, "sqrt of %.17g (argument must be >= 0)", a);
      return MS_ERR_MATH;
    case MS__OP_EXP: snprintf(msg, cap, "exp(%.17g) overflows", a); return MS_ERR_MATH;
    case MS__OP_ROUND_D:
      if (!(b == floor(b) && b >= -15 && b <= 15))
        snprintf(msg, cap, "round(): digits must be a whole number from -15 to 15, got %.17g",
                 b);
      else
        snprintf(msg, cap, "round(%.17g, %.17g) overflows", a, b);
      return MS_ERR_MATH;
    case MS__OP_CLAMP:
      snprintf(msg, cap, "clamp(): lower bound %.17g is greater than upper bound %.17g", b, c);
      return MS_ERR_MATH;
    case MS__OP_DATE_ADD:
    case MS__OP_DT_ADD:
    case MS__OP_DT_TO_DATE:
      snprintf(msg, cap, "%s out of range (years 1 to 9999)",
               I->op == MS__OP_DT_ADD ? "datetime" : "date");
      return MS_ERR_RANGE;
    case MS__OP_DATE_PARSE:
    case MS__OP_DT_PARSE: {
      const char *s = ((const char *const *)R[I->a].v)[0];
      if (I->op == MS__OP_DATE_PARSE)
        snprintf(msg, cap, "invalid date '%.60s' (expected YYYY-MM-DD, years 1 to 9999)", s);
      else
        snprintf(msg, cap,
                 "invalid datetime '%.60s' (expected YYYY-MM-DDTHH:MM:SS, years 1 to 9999)", s);
      return MS_ERR_DATA;
    }
    default: snprintf(msg, cap, "cannot be evaluated"); return MS_ERR_INTERNAL;
  }
}

/* ------------------------------------------------------------- scratch */

/* Evaluation over distinct inputs (see eval_distinct). */
#define MEMO_MIN_OPS 8    /* non-constant instructions worth it (weighted) */
#define MEMO_MIN_ROWS 2048 /* rows worth it */
#define MEMO_SLOTS 4      /* columns read, at most */
#define MEMO_MAX 512      /* distinct input tuples, at most */
#define MEMO_HASH_BITS 11 /* open-addressing table of 4 x MEMO_MAX */

/* A grouping of the rows of a call by their input tuple: key[t] = (value
 * bits of each column, 0 for unused columns, then the presence bits),
 * tuple[r] = the tuple of row r; failed = more than MEMO_MAX tuples. A
 * shared grouping (see ms__expr_scratch_share) also names what it was
 * computed from: the rows and, per column in slot order, data, presence
 * and layout. */
typedef struct {
  uint64_t key[MEMO_MAX][MEMO_SLOTS + 1];
  uint32_t *tuple;
  size_t tuple_cap;
  size_t nt;
  int failed;
  size_t n_rows;
  int ns;
  const void *data[MEMO_SLOTS];
  const uint8_t *valid[MEMO_SLOTS];
  int lay[MEMO_SLOTS];
  int used;       /* holds a shared grouping */
  unsigned stamp; /* last use, for replacement */
} group_t;

#define GROUP_SHARED 4 /* shared groupings kept, at most */

typedef struct {
  int32_t table[1u << MEMO_HASH_BITS]; /* tuple + 1, 0 = empty */
  /* one column per slot read, MEMO_MAX values in its layout, and presence */
  union {
    double f64[MEMO_MAX];
    int64_t i64[MEMO_MAX];
    int32_t i32[MEMO_MAX];
    uint8_t u8[MEMO_MAX];
  } data[MEMO_SLOTS];
  uint8_t valid[MEMO_SLOTS][MEMO_MAX];
  uint64_t out[MEMO_MAX]; /* results (element size <= 8) */
  uint8_t ok[MEMO_MAX];
  uint64_t blk[MEMO_SLOTS + 1][BLK]; /* keys of one block of rows */
  group_t own;                        /* grouping of a call not shared */
  group_t *shared[GROUP_SHARED];      /* allocated on first use */
  unsigned clock;
  ms__expr_col *cols;
  size_t n_cols;
} memo_t;

struct ms__expr_scratch {
  unsigned char *mem;
  size_t n_regs;
  ms__reg *R;
  unsigned char **buf;
  int *origin;
  memo_t *memo; /* allocated on first use */
  int share;    /* as set by ms__expr_scratch_share */
};

ms__expr_scratch *ms__expr_scratch_new(void) { return ms__calloc(1, sizeof(ms__expr_scratch)); }

void ms__expr_scratch_free(ms__expr_scratch *s) {
  if (!s) return;
  free(s->mem);
  free(s->R);
  free(s->buf);
  free(s->origin);
  if (s->memo) {
    free(s->memo->own.tuple);
    for (int i = 0; i < GROUP_SHARED; i++)
      if (s->memo->shared[i]) {
        free(s->memo->shared[i]->tuple);
        free(s->memo->shared[i]);
      }
    free(s->memo->cols);
    free(s->memo);
  }
  free(s);
}

void ms__expr_scratch_share(ms__expr_scratch *s, int on) {
  if (!s) return;
  s->share = on != 0;
  if (s->memo)
    for (int i = 0; i < GROUP_SHARED; i++)
      if (s->memo->shared[i]) s->memo->shared[i]->used = 0;
}

void ms__expr_scratch_forget(ms__expr_scratch *s, const void *data, const uint8_t *valid) {
  if (!s || !s->memo) return;
  for (int i = 0; i < GROUP_SHARED; i++) {
    group_t *G = s->memo->shared[i];
    if (!G || !G->used) continue;
    for (int k = 0; k < G->ns; k++)
      if ((data && G->data[k] == data) || (valid && G->valid[k] == valid)) G->used = 0;
  }
}

static int scratch_reserve(ms__expr_scratch *s, size_t n_regs) {
  if (n_regs <= s->n_regs) return 0;
  if (n_regs > SIZE_MAX / STRIDE) return -1;
  unsigned char *mem = ms__aligned_alloc(64, n_regs * STRIDE);
  ms__reg *R = ms__calloc(n_regs, sizeof *R);
  unsigned char **buf = ms__calloc(n_regs, sizeof *buf);
  int *origin = ms__calloc(n_regs, sizeof *origin);
  if (!mem || !R || !buf || !origin) {
    free(mem);
    free(R);
    free(buf);
    free(origin);
    return -1;
  }
  free(s->mem);
  free(s->R);
  free(s->buf);
  free(s->origin);
  s->mem = mem;
  s->R = R;
  s->buf = buf;
  s->origin = origin;
  s->n_regs = n_regs;
  for (size_t i = 0; i < n_regs; i++) buf[i] = mem + i * STRIDE;
  return 0;
}

/* ---------------------------------------------------------------- eval */

/* Re-runs row `row` alone and finds the operation that produced its error. */
static void trace(const ms__expr *e, const ms__expr_col *cols, size_t row, ms__expr_scratch *S,
                  ms__expr_error *err) {
  ms__reg *R = S->R;
  ms__expr_run(e, cols, row, 1, R, S->buf);
  int *org = S->origin;
  for (size_t i = 0; i < e->n_ins; i++) {
    const ms__ins *I = &e->ins[i];
    org[i] = -1;
    if (R[i].s[0] != MS__ST_ERROR) continue;
    int ops[3] = {I->a, I->b, I->c};
    int from = -1;
    if (I->op == MS__OP_IF) {
      if (R[I->a].s[0] == MS__ST_ERROR) from = I->a;
      else from = ((const uint8_t *)R[I->a].v)[0] ? I->b : I->c;
    } else {
      for (int k = 0; k < 3 && from < 0; k++)
        if (ops[k] >= 0 && R[ops[k]].s[0] == MS__ST_ERROR) from = ops[k];
    }
    org[i] = (from >= 0 && org[from] >= 0) ? org[from] : (int)i;
  }
  int o = org[e->n_ins - 1];
  if (o < 0) o = (int)e->n_ins - 1;
  err->row = row;
  err->status = ms__expr_describe(e, (size_t)o, R, err->message, sizeof err->message);
  err->offset = e->ins[o].offset;
  ms__expr_compile_params po;
  ms__expr_compile_params_init(&po);
  po.line = e->line;
  po.column = e->column;
  po.escaped = e->escaped;
  ms__expr_pos_of(&po, err->offset, &err->line, &err->column);
}

static void write_out(ms__expr_type t, const ms__reg *r, size_t n, void *out, size_t start,
                      uint8_t *ov) {
  const uint8_t *s = r->s;
  for (size_t j = 0; j < n; j++) ov[start + j] = s[j] == 1;
  switch (t) {
    case MS__EXPR_NUMBER:
    case MS__EXPR_DURATION: {
      const double *v = r->v;
      double *o = (double *)out + start;
      for (size_t j = 0; j < n; j++) o[j] = s[j] == 1 ? v[j] : 0.0;
      break;
    }
    case MS__EXPR_BOOL: {
      const uint8_t *v = r->v;
      uint8_t *o = (uint8_t *)out + start;
      for (size_t j = 0; j < n; j++) o[j] = s[j] == 1 ? v[j] : 0;
      break;
    }
    case MS__EXPR_CATEGORICAL:
    case MS__EXPR_DATE: {
      const int32_t *v = r->v;
      int32_t *o = (int32_t *)out + start;
      for (size_t j = 0; j < n; j++) o[j] = s[j] == 1 ? v[j] : 0;
      break;
    }
    case MS__EXPR_DATETIME: {
      const int64_t *v = r->v;
      int64_t *o = (int64_t *)out + start;
      for (size_t j = 0; j < n; j++) o[j] = s[j] == 1 ? v[j] : 0;
      break;
    }
    case MS__EXPR_STRING: {
      const char *const *v = r->v;
      const char **o = (const char **)out + start;
      for (size_t j = 0; j < n; j++) o[j] = s[j] == 1 ? v[j] : "";
      break;
    }
    default: break;
  }
}

/* A failure that is not about a row: row = SIZE_MAX, position = the
 * expression's start. */
static ms_status call_error(const ms__expr *e, ms__expr_error *err, ms_status st,
                            const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static ms_status call_error(const ms__expr *e, ms__expr_error *err, ms_status st,
                            const char *fmt, ...) {
  if (!err) return st;
  err->status = st;
  err->row = SIZE_MAX;
  err->offset = 0;
  err->line = e ? e->line : 0;
  err->column = e ? e->column : 0;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->message, sizeof err->message, fmt, ap);
  va_end(ap);
  return st;
}

static ms_status eval_blocks(const ms__expr *e, const ms__expr_col *cols, size_t n_rows,
                             void *out, uint8_t *out_valid, ms__expr_scratch *scratch,
                             ms__expr_error *err);

/* Value bits of frame rows [start, start + n) of column c as its LOAD reads
 * them (layout lay), zero-extended, into k; presence bit `bit` into pres. */
static void memo_keys(const ms__expr_col *c, int lay, size_t start, size_t n, uint64_t *k,
                      uint64_t *pres, int bit) {
  const uint32_t *idx = c->index ? c->index + start : NULL;
#define ROW(j) (idx ? (size_t)idx[j] : start + (j))
  switch (lay) {
    case MS__EXPR_LAYOUT_F64:
    case MS__EXPR_LAYOUT_I64:
      for (size_t j = 0; j < n; j++) memcpy(&k[j], (const uint64_t *)c->data + ROW(j), 8);
      break;
    case MS__EXPR_LAYOUT_I32:
      for (size_t j = 0; j < n; j++) k[j] = ((const uint32_t *)c->data)[ROW(j)];
      break;
    default: /* U8 */
      for (size_t j = 0; j < n; j++) k[j] = ((const uint8_t *)c->data)[ROW(j)];
      break;
  }
  if (c->valid)
    for (size_t j = 0; j < n; j++) pres[j] |= (uint64_t)(c->valid[ROW(j)] != 0) << bit;
  else
    for (size_t j = 0; j < n; j++) pres[j] |= 1ull << bit;
#undef ROW
}

/* Evaluation over distinct inputs. An expression is a row-wise function of
 * the value bits and presence of the columns its LOADs read (every
 * operation is row-wise). When the rows of a call take few distinct input
 * tuples (categories, bands, small integers), the program runs once per
 * tuple over a compact frame holding one row per tuple, and each row takes
 * its tuple's result: the same operations on the same inputs, so the same
 * bits, for a fraction of the work. Returns 1 when done; 0 (nothing
 * written) when the expression or call does not qualify, when the rows
 * take more than MEMO_MAX tuples (found within the first few blocks for
 * continuous inputs), or when a tuple's result is an error, so that the
 * full evaluation reports the lowest failing row as always. */
/* Groups rows [0, n_rows) of cols by the tuple of slots slot[0..ns) into G
 * (G->failed when they take more than MEMO_MAX tuples). 0, or -1 when out
 * of memory. */
static int group_rows(memo_t *M, group_t *G, const ms__expr_col *cols, const int32_t *slot,
                      const int *lay, int ns, size_t n_rows) {
  if (G->tuple_cap < n_rows) {
    free(G->tuple);
    G->tuple_cap = 0;
    if (!(G->tuple = ms__malloc(n_rows * sizeof *G->tuple))) return -1;
    G->tuple_cap = n_rows;
  }
  G->failed = 1;
  memset(M->table, 0, sizeof M->table);
  size_t nt = 0;
  /* key words: a fixed MEMO_SLOTS + 1 (unused value words 0, presence
   * last), so the per-row loops below unroll without branches */
  const size_t kw = MEMO_SLOTS + 1;
  for (int k = ns; k < MEMO_SLOTS; k++) memset(M->blk[k], 0, sizeof M->blk[k]);
  for (size_t start = 0; start < n_rows; start += BLK) {
    size_t n = n_rows - start < BLK ? n_rows - start : BLK;
    uint64_t *pres = M->blk[MEMO_SLOTS];
    memset(pres, 0, n * sizeof *pres);
    for (int k = 0; k < ns; k++) memo_keys(&cols[slot[k]], lay[k], start, n, M->blk[k], pres, k);
    for (size_t j = 0; j < n; j++) {
      /* the key words are read in place (M->blk[k][j]): copying them into
       * a local array first stalls on store forwarding */
      uint64_t h = 0;
      for (size_t k = 0; k < kw; k++) h += M->blk[k][j] * (0x9E3779B97F4A7C15ull + 2 * k);
      h ^= h >> 32;
      size_t pos = (size_t)((h * 0xBF58476D1CE4E5B9ull) >> (64 - MEMO_HASH_BITS));
      for (;;) {
        int32_t t = M->table[pos];
        if (!t) {
          if (nt == MEMO_MAX) return 0;
          for (size_t k = 0; k < kw; k++) G->key[nt][k] = M->blk[k][j];
          M->table[pos] = (int32_t)++nt;
          G->tuple[start + j] = (uint32_t)(nt - 1);
          break;
        }
        uint64_t diff = 0;
        for (size_t k = 0; k < kw; k++) diff |= G->key[t - 1][k] ^ M->blk[k][j];
        if (!diff) {
          G->tuple[start + j] = (uint32_t)(t - 1);
          break;
        }
        pos = (pos + 1) & ((1u << MEMO_HASH_BITS) - 1);
      }
    }
  }
  G->nt = nt;
  G->failed = 0;
  return 0;
}

/* Evaluation over distinct inputs. An expression is a row-wise function of
 * the value bits and presence of the columns its LOADs read (every
 * operation is row-wise). When the rows of a call take few distinct input
 * tuples (categories, bands, small integers), the program runs once per
 * tuple over a compact frame holding one row per tuple, and each row takes
 * its tuple's result: the same operations on the same inputs, so the same
 * bits, for a fraction of the work. Returns 1 when done; 0 (nothing
 * written) when the expression or call does not qualify, when the rows
 * take more than MEMO_MAX tuples (found within the first few blocks for
 * continuous inputs), or when a tuple's result is an error, so that the
 * full evaluation reports the lowest failing row as always. The slots are
 * taken in ascending order, so that calls reading the same columns of a
 * frame can share one grouping (ms__expr_scratch_share): only when no
 * column read has a row index, keyed by the rows and each column's data,
 * presence and layout; the caller forgets groupings of a column before
 * rewriting it. */
static int eval_distinct(const ms__expr *e, const ms__expr_col *cols, size_t n_cols,
                         size_t n_rows, void *out, uint8_t *out_valid, ms__expr_scratch *scratch) {
  if (n_rows < MEMO_MIN_ROWS || n_rows > UINT32_MAX) return 0;
  int32_t slot[MEMO_SLOTS];
  int lay[MEMO_SLOTS], ns = 0;
  size_t ops = 0;
  for (size_t i = 0; i < e->n_ins; i++) {
    const ms__ins *I = &e->ins[i];
    if (I->op == MS__OP_CONST) continue;
    /* a transcendental function weighs as several simple operations */
    int heavy = I->op == MS__OP_LOG || I->op == MS__OP_LOG10 || I->op == MS__OP_EXP ||
                I->op == MS__OP_SQRT || I->op == MS__OP_POW;
    ops += heavy ? 4 : 1;
    if (I->op != MS__OP_LOAD) continue;
    if (I->layout > MS__EXPR_LAYOUT_U8) return 0; /* strings: compared by content */
    int k = 0;
    while (k < ns && slot[k] != I->slot) k++;
    if (k == ns) {
      if (ns == MEMO_SLOTS) return 0;
      slot[ns] = I->slot;
      lay[ns++] = I->layout;
    } else if (lay[k] != I->layout) {
      return 0;
    }
  }
  if (ns == 0) return 0;
  for (int k = 1; k < ns; k++) /* ascending slots */
    for (int j = k; j > 0 && slot[j - 1] > slot[j]; j--) {
      int32_t ts = slot[j];
      slot[j] = slot[j - 1];
      slot[j - 1] = ts;
      int tl = lay[j];
      lay[j] = lay[j - 1];
      lay[j - 1] = tl;
    }
  memo_t *M = scratch->memo;
  if (!M && !(M = scratch->memo = ms__calloc(1, sizeof *M))) return 0;
  if (M->n_cols < n_cols) {
    free(M->cols);
    M->n_cols = 0;
    if (!(M->cols = ms__malloc(n_cols * sizeof *M->cols))) return 0;
    M->n_cols = n_cols;
  }
  int shared = scratch->share;
  for (int k = 0; k < ns && shared; k++)
    if (cols[slot[k]].index) shared = 0;
  group_t *G = NULL;
  int map[MEMO_SLOTS]; /* key word of each slot read */
  for (int k = 0; k < ns; k++) map[k] = k;
  if (shared) {
    /* the grouping of exactly these columns, else the one of fewest tuples
     * over more columns (rows with equal tuples there have equal tuples
     * here; a failed one tells nothing) */
    for (int i = 0; i < GROUP_SHARED; i++) {
      group_t *H = M->shared[i];
      if (!H || !H->used || H->n_rows != n_rows || H->ns < ns) continue;
      if (H->ns > ns && (H->failed || (G && (G->ns == ns || G->nt <= H->nt)))) continue;
      int m[MEMO_SLOTS], found = 1;
      for (int k = 0; k < ns && found; k++) {
        m[k] = -1;
        for (int j = 0; j < H->ns && m[k] < 0; j++)
          if (H->data[j] == cols[slot[k]].data && H->valid[j] == cols[slot[k]].valid &&
              H->lay[j] == lay[k])
            m[k] = j;
        found = m[k] >= 0;
      }
      if (!found) continue;
      G = H;
      memcpy(map, m, sizeof m);
    }
    if (!G && ops < MEMO_MIN_OPS) return 0; /* not worth a grouping of its own */
    if (!G) {
      int v = 0; /* a free entry, else the least recently used */
      for (int i = 0; i < GROUP_SHARED; i++) {
        if (!M->shared[i] && !(M->shared[i] = ms__calloc(1, sizeof *M->shared[i]))) return 0;
        if (!M->shared[i]->used) {
          v = i;
          break;
        }
        if (M->shared[i]->stamp < M->shared[v]->stamp) v = i;
      }
      G = M->shared[v];
      G->used = 0;
      if (group_rows(M, G, cols, slot, lay, ns, n_rows)) return 0;
      G->n_rows = n_rows;
      G->ns = ns;
      for (int k = 0; k < ns; k++) {
        G->data[k] = cols[slot[k]].data;
        G->valid[k] = cols[slot[k]].valid;
        G->lay[k] = lay[k];
      }
      G->used = 1;
    }
    G->stamp = ++M->clock;
  } else {
    if (ops < MEMO_MIN_OPS) return 0;
    G = &M->own;
    if (group_rows(M, G, cols, slot, lay, ns, n_rows)) return 0;
  }
  if (G->failed) return 0;
  size_t nt = G->nt;
  /* the compact frame: tuple t is row t */
  memcpy(M->cols, cols, n_cols * sizeof *cols);
  for (int k = 0; k < ns; k++) {
    for (size_t t = 0; t < nt; t++) {
      uint64_t v = G->key[t][map[k]];
      switch (lay[k]) {
        case MS__EXPR_LAYOUT_F64:
        case MS__EXPR_LAYOUT_I64: memcpy(&M->data[k].i64[t], &v, 8); break;
        case MS__EXPR_LAYOUT_I32: M->data[k].i32[t] = (int32_t)(uint32_t)v; break;
        default: M->data[k].u8[t] = (uint8_t)v; break;
      }
      M->valid[k][t] = (uint8_t)((G->key[t][MEMO_SLOTS] >> map[k]) & 1);
    }
    M->cols[slot[k]] = (ms__expr_col){.data = &M->data[k], .valid = M->valid[k], .index = NULL};
  }
  ms__expr_error err;
  if (eval_blocks(e, M->cols, nt, M->out, M->ok, scratch, &err) != MS_OK) return 0;
  size_t sz = ms__expr_type_size(e->type);
  const uint32_t *tu = G->tuple;
  for (size_t r = 0; r < n_rows; r++) out_valid[r] = M->ok[tu[r]];
  if (sz == 8) {
    const uint64_t *src = M->out;
    for (size_t r = 0; r < n_rows; r++) memcpy((char *)out + r * 8, &src[tu[r]], 8);
  } else if (sz == 4) {
    const uint32_t *src = (const uint32_t *)M->out;
    for (size_t r = 0; r < n_rows; r++) memcpy((char *)out + r * 4, &src[tu[r]], 4);
  } else {
    const uint8_t *src = (const uint8_t *)M->out;
    for (size_t r = 0; r < n_rows; r++) ((uint8_t *)out)[r] = src[tu[r]];
  }
  return 1;
}

ms_status ms__expr_eval(const ms__expr *e, const ms__expr_col *cols, size_t n_cols,
                        size_t n_rows, void *out, uint8_t *out_valid, ms__expr_scratch *scratch,
                        ms__expr_error *err) {
  if (err) memset(err, 0, sizeof *err);
  if (!e || !out || !out_valid || n_cols < e->n_slots || (e->n_slots && !cols))
    return call_error(e, err, MS_ERR_INVALID,
                      "expression evaluated with %zu frame columns, it reads %zu", n_cols,
                      e ? e->n_slots : 0);
  for (size_t i = 0; i < e->n_ins; i++)
    if (e->ins[i].op == MS__OP_LOAD && n_rows > 0 && !cols[e->ins[i].slot].data)
      return call_error(e, err, MS_ERR_INVALID,
                        "expression evaluated without data for slot %d ('%s')",
                        (int)e->ins[i].slot, e->ins[i].kmsg ? e->ins[i].kmsg : "?");
  ms__expr_scratch *own = NULL;
  if (!scratch) {
    own = ms__expr_scratch_new();
    if (!own) return call_error(e, err, MS_ERR_NOMEM, "out of memory evaluating expression");
    scratch = own;
  }
  if (scratch_reserve(scratch, e->n_ins) < 0) {
    ms__expr_scratch_free(own);
    return call_error(e, err, MS_ERR_NOMEM, "out of memory evaluating expression");
  }
  ms_status st;
  if (!eval_distinct(e, cols, n_cols, n_rows, out, out_valid, scratch))
    st = eval_blocks(e, cols, n_rows, out, out_valid, scratch, err);
  else
    st = MS_OK;
  ms__expr_scratch_free(own);
  return st;
}

/* The block loop of ms__expr_eval (arguments checked, scratch reserved). */
static ms_status eval_blocks(const ms__expr *e, const ms__expr_col *cols, size_t n_rows,
                             void *out, uint8_t *out_valid, ms__expr_scratch *scratch,
                             ms__expr_error *err) {
  ms__reg *R = scratch->R;
  for (size_t i = 0; i < e->n_ins; i++) {
    R[i].v = scratch->buf[i];
    R[i].s = scratch->buf[i] + BLK * 8;
  }
  ms__expr_fill_consts(e, R, BLK);
  ms_status st = MS_OK;
  size_t root = e->n_ins - 1;
  for (size_t start = 0; start < n_rows; start += BLK) {
    size_t n = n_rows - start < BLK ? n_rows - start : BLK;
    ms__expr_run(e, cols, start, n, R, scratch->buf);
    const uint8_t *s = R[root].s;
    size_t bad = SIZE_MAX;
    for (size_t j = 0; j < n; j++)
      if (s[j] == MS__ST_ERROR) {
        bad = j;
        break;
      }
    if (bad != SIZE_MAX) {
      ms__expr_error tmp;
      memset(&tmp, 0, sizeof tmp);
      trace(e, cols, start + bad, scratch, &tmp);
      if (err) *err = tmp;
      st = tmp.status ? tmp.status : MS_ERR_MATH;
      break;
    }
    write_out(e->type, &R[root], n, out, start, out_valid);
  }
  return st;
}

ms_status ms__expr_eval_const(const ms__expr *e, ms__expr_value *out, ms__expr_error *err) {
  memset(out, 0, sizeof *out);
  if (!ms__expr_is_const(e)) return MS_ERR_INVALID;
  union {
    double d;
    int64_t i;
    int32_t i32;
    uint8_t b;
    const char *s;
  } v;
  uint8_t valid = 0;
  memset(&v, 0, sizeof v);
  ms_status st = ms__expr_eval(e, NULL, 0, 1, &v, &valid, NULL, err);
  if (st != MS_OK) return st;
  out->type = e->type;
  out->missing = !valid;
  switch (e->type) {
    case MS__EXPR_NUMBER:
    case MS__EXPR_DURATION: out->num = v.d; break;
    case MS__EXPR_BOOL: out->i = v.b; break;
    case MS__EXPR_CATEGORICAL:
    case MS__EXPR_DATE: out->i = v.i32; break;
    case MS__EXPR_DATETIME: out->i = v.i; break;
    case MS__EXPR_STRING: out->str = v.s; break;
    default: break;
  }
  return MS_OK;
}
