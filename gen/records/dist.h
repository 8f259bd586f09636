/* Probability distributions of the spec language: parameters, checks, CDF
 * and quantile (inverse CDF) functions, truncated draws.
 *
 * Every draw goes through the quantile function of a uniform u in (0,1), so
 * that truncation to [lo, hi] is exact (u is mapped into [F(lo), F(hi)], never
 * clipped) and a Gaussian copula can feed Phi(z) in place of u while keeping
 * each marginal. The only exception is an untruncated gamma or beta outside a
 * copula, which uses GSL's samplers on a keyed gsl_rng (their quantile
 * functions are iterative and slow).
 *
 * Private to the library (ms__ prefix). References: GSL manual, "Random
 * Number Distributions" and "Cumulative distribution functions". */
#ifndef MS_RECORDS_DIST_H
#define MS_RECORDS_DIST_H

#include <gsl/gsl_rng.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* X(id, name, required, (parameters)): the one table behind ms__dist_type,
 * its names and its parameters (the first `required` of them required). */
#define MS__DIST_TABLE(X)                                      \
  X(NORMAL, "normal", 2, ("mean", "sd"))                       \
  X(LOGNORMAL, "lognormal", 2, ("meanlog", "sdlog"))           \
  X(GAMMA, "gamma", 2, ("shape", "scale"))                     \
  X(BETA, "beta", 2, ("a", "b", "low", "high"))                \
  X(UNIFORM, "uniform", 2, ("low", "high"))                    \
  X(EXPONENTIAL, "exponential", 1, ("mean"))                   \
  X(POISSON, "poisson", 1, ("mean"))                           \
  X(BINOMIAL, "binomial", 2, ("n", "p"))                       \
  X(QUANTILES, "quantiles", 2, ("probs", "values"))            \
  X(CONSTANT, "constant", 1, ("value"))

typedef enum {
#define MS__DIST_ENUM(id, name, required, params) MS__DIST_##id,
  MS__DIST_TABLE(MS__DIST_ENUM)
#undef MS__DIST_ENUM
  MS__DIST_COUNT
} ms__dist_type;

#define MS__DIST_MAX_PARAMS 4

const char *ms__dist_name(ms__dist_type t);
/* The names of all types, in ms__dist_type order, then NULL. */
const char *const *ms__dist_names(void);
/* MS__DIST_COUNT when unknown. */
ms__dist_type ms__dist_from_name(const char *name);
/* Parameter names of a type; *n_required of them are required, the rest
 * (up to *n_total) optional. quantiles has "probs"/"values" (arrays). */
const char *const *ms__dist_params(ms__dist_type t, int *n_required, int *n_total);
/* Default of an optional parameter (beta low=0, high=1). */
double ms__dist_param_default(ms__dist_type t, int i);
/* Inline: asked for every drawn row. */
static inline int ms__dist_is_discrete(ms__dist_type t) {
  return t == MS__DIST_POISSON || t == MS__DIST_BINOMIAL;
}

/* Values of one row's parameters (in ms__dist_params order); quantile tables
 * are borrowed. */
typedef struct {
  double p[MS__DIST_MAX_PARAMS];
  const double *qprobs;
  const double *qvalues;
  size_t qn;
  /* optional guide of the quantile table (ms__dist_quantile_guide): NULL
   * for a binary search */
  const uint32_t *qguide;
  unsigned qgbits;
} ms__dist_args;

/* The guide table of a valid quantile table (ms__dist_check passed) of n
 * points: 2^bits + 1 entries, entry k the segment the search for u = k /
 * 2^bits ends in. ms__dist_quantile then starts from the entry of floor(u
 * 2^bits) and steps forward (a segment or two) instead of bisecting; the
 * segment, and so the value, is the same. NULL when out of memory. */
uint32_t *ms__dist_quantile_guide(const double *probs, size_t n, unsigned *bits);

/* Checks the parameters' domain (sd > 0, p in [0,1], ...). Returns -1 when
 * valid, else the index of the first bad parameter and writes a short reason
 * ("must be > 0") to msg. */
int ms__dist_check(ms__dist_type t, const ms__dist_args *a, char *msg, size_t cap);

/* P(X <= x). */
double ms__dist_cdf(ms__dist_type t, const ms__dist_args *a, double x);
/* inf { x : F(x) >= u }, u in (0,1). */
double ms__dist_quantile(ms__dist_type t, const ms__dist_args *a, double u);

/* Truncation window: with lo/hi possibly infinite, computes the probability
 * interval [*flo, *fhi] the uniform is mapped into. For discrete types the
 * window is [F(ceil(lo) - 1), F(floor(hi))]. Returns the mass fhi - flo. */
double ms__dist_window(ms__dist_type t, const ms__dist_args *a, double lo, double hi,
                       double *flo, double *fhi);

/* One draw from the distribution truncated to [lo, hi] (infinite = none)
 * driven by u in (0,1). Returns NAN when the window has no mass. For
 * continuous laws whose window lies in the upper tail the survival function
 * is used to keep precision. */
double ms__dist_draw_u(ms__dist_type t, const ms__dist_args *a, double lo, double hi, double u);

/* ms__dist_draw_u split in two: the truncation window of (t, a, lo, hi),
 * which costs CDF evaluations (erfc, log, incomplete gamma...), and the draw
 * of one uniform through it, which costs one quantile. A window prepared once
 * serves every row with the same parameters and bounds, and
 * ms__dist_trunc_draw(w, ..., u) returns exactly ms__dist_draw_u(..., u)
 * (ms__dist_draw_u is implemented as the two steps). */
typedef enum {
  MS__TRUNC_PLAIN,    /* no bounds: quantile of u */
  MS__TRUNC_CONSTANT, /* constant law: its value if inside the bounds */
  MS__TRUNC_POINT,    /* uniform law whose window is one point (lo) */
  MS__TRUNC_SPAN,     /* uniform law: lo + u (hi - lo) on the clipped support */
  MS__TRUNC_LOWER,    /* quantile of F(lo) + u (F(hi) - F(lo)) */
  MS__TRUNC_UPPER,    /* survival-function form in the upper tail */
  MS__TRUNC_EMPTY,    /* no mass: NAN */
  MS__TRUNC_COUNT
} ms__trunc_mode;

typedef struct {
  ms__trunc_mode mode;
  double lo, hi; /* the bounds it was made for */
  double a, b;   /* mode's interval: [flo, fhi], [ql, qh] or [l, h] */
} ms__dist_trunc;

void ms__dist_trunc_init(ms__dist_trunc *w, ms__dist_type t, const ms__dist_args *a, double lo,
                         double hi);
double ms__dist_trunc_draw(const ms__dist_trunc *w, ms__dist_type t, const ms__dist_args *a,
                           double u);

/* Standard normal quantile and CDF, bit for bit gsl_cdf_ugaussian_Pinv and
 * gsl_cdf_ugaussian_P (GSL 2.x). Their central regions (|u - 0.5| <= 0.425:
 * Wichura's AS 241 rational function; |z| < 0.66291: Cody's rational
 * function) are evaluated here with GSL's operation order and no fused
 * multiply-add, which avoids the library call's per-call set-up; other
 * inputs go to GSL. tests/test_dist.c checks the equality. */
double ms__normal_quantile(double u);
double ms__normal_cdf(double z);

/* ms__dist_trunc_draw for a normal or log-normal law (t) in a window of
 * mode MS__TRUNC_LOWER: the quantile of F(lo) + u (F(hi) - F(lo)), pulled
 * back into [lo, hi] against round-off. Inline, so that draw loops over
 * many rows save the calls and the switches; ms__dist_trunc_draw uses it
 * too, so both give the same bits. */
static inline double ms__dist_trunc_lower_normal(const ms__dist_trunc *w, ms__dist_type t,
                                                 const ms__dist_args *a, double u) {
  double v = w->a + u * (w->b - w->a);
  double z = ms__normal_quantile(v);
  double x = t == MS__DIST_NORMAL ? a->p[0] + a->p[1] * z : exp(a->p[0] + a->p[1] * z);
  if (!isinf(w->lo) && x < w->lo) x = w->lo;
  if (!isinf(w->hi) && x > w->hi) x = w->hi;
  return x;
}

/* The value of a quantile table at u (piecewise linear between its
 * points; through its guide when it has one, else by bisection). Inline
 * for the draw loops; ms__dist_quantile uses it too. */
static inline double ms__dist_q_quantile(const ms__dist_args *a, double u) {
  size_t n = a->qn;
  const double *P = a->qprobs, *V = a->qvalues;
  size_t lo = 0, hi = n - 1;
  if (a->qguide && u >= 0 && u < 1) {
    /* the last point at or below floor(u 2^b) / 2^b (exact: a power of 2),
     * then forward to the last at or below u, as the bisection ends */
    lo = a->qguide[(size_t)(u * (double)((size_t)1 << a->qgbits))];
    while (lo + 2 < n && P[lo + 1] <= u) lo++;
    hi = lo + 1;
  }
  while (hi - lo > 1) {
    size_t mid = (lo + hi) / 2;
    if (P[mid] <= u)
      lo = mid;
    else
      hi = mid;
  }
  double w = (u - P[lo]) / (P[hi] - P[lo]);
  return V[lo] + w * (V[hi] - V[lo]);
}

/* ms__dist_trunc_draw of a quantile table in mode MS__TRUNC_PLAIN or
 * MS__TRUNC_LOWER, inline (the same code, so the same bits). */
static inline double ms__dist_trunc_quantiles(const ms__dist_trunc *w, const ms__dist_args *a, double u) {
  if (w->mode == MS__TRUNC_PLAIN) return ms__dist_q_quantile(a, u);
  double x = ms__dist_q_quantile(a, w->a + u * (w->b - w->a));
  if (!isinf(w->lo) && x < w->lo) x = w->lo;
  if (!isinf(w->hi) && x > w->hi) x = w->hi;
  return x;
}

/* Untruncated gamma/beta by GSL's samplers; r must already be reset to the
 * draw's key. */
double ms__dist_draw_gsl(ms__dist_type t, const ms__dist_args *a, gsl_rng *r);

#endif
