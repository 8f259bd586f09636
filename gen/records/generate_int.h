/* Private interface of the row generator (records/generate*.c):
 *   generate.c        chunks, per-thread scratch, child tables and the
 *                     driver (rounds of parallel steps, the sink);
 *   generate_field.c  one field over a chunk: expression evaluation, draws,
 *                     ids and text, missingness, one function per kind.
 * See generate.c for the shape of a run. */
#ifndef MS_RECORDS_GENERATE_INT_H
#define MS_RECORDS_GENERATE_INT_H

#include <gsl/gsl_cdf.h>
#include "core/alloc.h"
#include "core/diag.h"
#include <gsl/gsl_errno.h>
#include <gsl/gsl_rng.h>
#include <inttypes.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "medsynth/records.h"
#include "medsynth/rng.h"
#include "medsynth/rng_gsl.h"
#include "core/pool.h"
#include "records/images.h"
#include "records/plan.h"

/* Row locators are built in fixed buffers; cutting a very deep one only
 * shortens a message. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#define MAX_LEVELS 8
#define MAX_TABLES 64

size_t ms__slot_base(const ms_spec *s, size_t ti, int level);

/* ---- chunk of one table ---- */

typedef struct tchunk tchunk;
struct tchunk {
  const ms_spec *s;
  const ms__table *t;
  size_t ti;
  size_t n, cap;
  void **data;
  uint8_t **valid;
  double **cu; /* copula uniforms per field (NULL when not in a group) */
  uint8_t *cu_done; /* cu[fi] holds this chunk's uniforms */
  uint8_t *done;
  uint64_t *uid;
  uint32_t *kidx; /* child number within its parent */
  uint32_t *idx[MAX_LEVELS]; /* idx[l]: row of the ancestor l levels up (idx[0] unused) */
  tchunk *parent;
  uint64_t pos0;
  int count_mode;
};

static inline size_t elem_size(const ms__field *f) {
  switch (f->layout) {
    case MS__EXPR_LAYOUT_F64:
    case MS__EXPR_LAYOUT_I64:
      return 8;
    case MS__EXPR_LAYOUT_I32:
      return 4;
    case MS__EXPR_LAYOUT_U8:
      return 1;
    case MS__EXPR_LAYOUT_STR_FIXED:
      return f->str_width + 1;
    default:
      return 8;
  }
}

/* ---- per-thread scratch ------------------------------------------------------ */

/* Truncation windows of one distribution field, cached by the exact bits
 * of (parameters, lower bound, upper bound): rows whose parameters come from
 * categories or bands share a few windows, so their CDF evaluations are done
 * once per distinct set instead of once per row. A window is a pure function
 * of its key, so a hit returns the same bits as recomputing it. The cache
 * is direct-mapped and large enough for per-year parameters crossed with a
 * category (a few hundred sets) and for bounds computed from a rounded
 * field (a few thousand); an entry belongs to the current field and chunk
 * when its stamp equals the scratch's, so starting afresh costs no clearing. */
#define WCACHE_BITS 14
#define WCACHE_SIZE (1u << WCACHE_BITS)
#define WKEY_N (MS__DIST_MAX_PARAMS + 2)

typedef struct {
  uint64_t key[WKEY_N];
  uint32_t stamp; /* the wstamp it was filled under; 0 = never */
  uint8_t checked;
  ms__dist_trunc tw; /* mode MS__TRUNC_COUNT until first prepared */
} wentry;

typedef struct {
  ms__expr_scratch *xs;
  gsl_rng *g;
  wentry *wc; /* WCACHE_SIZE entries */
  uint32_t wstamp; /* stamp of the entries valid for the current draw */
  size_t cap;
  double *tmp[12];
  uint8_t *ok[12];
  uint8_t *vsel;
  /* rows of one "when" variant, the ancestors' rows for them, and compact
   * results of an expression evaluated on those rows only */
  uint32_t *srows, *sidx[MAX_LEVELS];
  uint32_t voff[258]; /* variant_index: rows of variant k are srows[voff[k] .. voff[k + 1]) */
  double *cbuf;
  uint8_t *cok;
  ms__expr_col *cols;
  size_t ncols;
  ms_diag *d;
  ms_status st;
  uint64_t seed;
} ws_t;

/* An allocation failed while generating a chunk of table `table`: one
 * message naming what (core/diag.h). */
static inline ms_status ws_nomem(ws_t *w, const char *table, const char *what) {
  ms__diag_nomem(w->d, NULL, table, what);
  return w->st = MS_ERR_NOMEM;
}

/* ---- draws (also child counts, generate.c) -------------------------------- */

/* Inlined into the draw loops (with draw_int and draw_real): the type,
 * rounding and bounds tests then fold with the loop's own. */
#define DRAW_INLINE static inline __attribute__((always_inline))

/* ms__dist_draw_u through a cached window: *tw (when given) is prepared on
 * first use, marked by mode MS__TRUNC_COUNT; the caller keys it by (a, the
 * row's bounds), and the bounds passed here are a function of those, so
 * every later use has the same (t, a, lo, hi) and gets the uncached value.
 * The common case, a normal or log-normal law in a lower window, goes
 * straight to the inline ms__dist_trunc_lower_normal (the same code
 * ms__dist_trunc_draw runs), which saves two calls and a switch per row. */
DRAW_INLINE double draw_u(ms__dist_trunc *tw, ms__dist_type t, const ms__dist_args *a, double lo,
                          double hi, double u) {
  if (!tw) return ms__dist_draw_u(t, a, lo, hi, u);
  if (tw->mode == MS__TRUNC_COUNT) ms__dist_trunc_init(tw, t, a, lo, hi);
  if (tw->mode == MS__TRUNC_LOWER && (t == MS__DIST_NORMAL || t == MS__DIST_LOGNORMAL))
    return ms__dist_trunc_lower_normal(tw, t, a, u);
  if (t == MS__DIST_QUANTILES && (tw->mode == MS__TRUNC_LOWER || tw->mode == MS__TRUNC_PLAIN))
    return ms__dist_trunc_quantiles(tw, a, u);
  return ms__dist_trunc_draw(tw, t, a, u);
}

/* Integer-valued draw (integer fields, date offsets, child counts) from the
 * law truncated to the integers in [lo, hi]. NAN when there is none. */
DRAW_INLINE double draw_int(ms__dist_type t, const ms__dist_args *a, double lo, double hi,
                            double u, int copula, gsl_rng *g, ms_rng_key key, uint64_t uid,
                            ms__dist_trunc *tw) {
  double L = isinf(lo) ? lo : ceil(lo), H = isinf(hi) ? hi : floor(hi);
  if (L > H) return NAN;
  if (t == MS__DIST_UNIFORM) {
    double l = fmax(ceil(a->p[0]), L), h = fmin(floor(a->p[1]), H);
    if (l > h) return NAN;
    double x = l + floor(u * (h - l + 1));
    return x > h ? h : x;
  }
  if (ms__dist_is_discrete(t) || t == MS__DIST_CONSTANT) {
    if (t == MS__DIST_CONSTANT) {
      double x = floor(a->p[0] + 0.5);
      return (x >= L && x <= H) ? x : NAN;
    }
    return draw_u(tw, t, a, L, H, u);
  }
  double x;
  if (isinf(L) && isinf(H) && !copula && (t == MS__DIST_GAMMA || t == MS__DIST_BETA)) {
    ms_rng_gsl_reset(g, key, uid, MS__LANE_VALUE);
    x = ms__dist_draw_gsl(t, a, g);
  } else {
    x = draw_u(tw, t, a, isinf(L) ? L : L - 0.5, isinf(H) ? H : H + 0.5, u);
  }
  if (isnan(x)) return NAN;
  x = floor(x + 0.5);
  if (x < L) x = L;
  if (x > H) x = H;
  return x;
}

/* Real draw truncated to [lo, hi], rounded to `prec` decimals inside it. */
DRAW_INLINE double draw_real(ms__dist_type t, const ms__dist_args *a, double lo, double hi,
                             double u, int copula, int prec, double sc, gsl_rng *g,
                             ms_rng_key key, uint64_t uid, ms__dist_trunc *tw) {
  double x;
  if (isinf(lo) && isinf(hi) && !copula && (t == MS__DIST_GAMMA || t == MS__DIST_BETA)) {
    ms_rng_gsl_reset(g, key, uid, MS__LANE_VALUE);
    x = ms__dist_draw_gsl(t, a, g);
  } else if (t == MS__DIST_NORMAL && isinf(lo) && isinf(hi)) {
    x = a->p[0] + a->p[1] * ms__normal_quantile(u);
  } else {
    x = draw_u(tw, t, a, lo, hi, u);
  }
  if (isnan(x) || prec < 0) return x;
  double y = round(x * sc) / sc;
  if (y < lo) y = ceil(lo * sc - 1e-9) / sc;
  if (y > hi) y = floor(hi * sc + 1e-9) / sc;
  if (y < lo || y > hi) return x; /* no rounded value inside: keep the exact draw */
  return y;
}

/* generate.c */
int ms__gen_ws_reserve(ws_t *w, size_t n);

/* generate_field.c */
ms_status ms__gen_row_error(ws_t *w, const tchunk *c, size_t r, const char *ptr, const char *fmt,
                            ...) __attribute__((format(printf, 5, 6)));
ms_status ms__gen_eval_raw(ws_t *w, const tchunk *c, const ms__expr *x, void *out, uint8_t *ok);
ms_status ms__gen_eval_param(ws_t *w, const tchunk *c, const ms__param *p, double dflt,
                             double *out, uint8_t *ok);
ms_status ms__gen_fields(ws_t *w, tchunk *c, char phase);

#endif
