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
#include <stddef.h>

typedef enum {
  MS__DIST_NORMAL,
  MS__DIST_LOGNORMAL,
  MS__DIST_GAMMA,
  MS__DIST_BETA,
  MS__DIST_UNIFORM,
  MS__DIST_EXPONENTIAL,
  MS__DIST_POISSON,
  MS__DIST_BINOMIAL,
  MS__DIST_QUANTILES,
  MS__DIST_CONSTANT,
  MS__DIST_COUNT
} ms__dist_type;

#define MS__DIST_MAX_PARAMS 4

const char *ms__dist_name(ms__dist_type t);
/* MS__DIST_COUNT when unknown. */
ms__dist_type ms__dist_from_name(const char *name);
/* Parameter names of a type; *n_required of them are required, the rest
 * (up to *n_total) optional. quantiles has "probs"/"values" (arrays). */
const char *const *ms__dist_params(ms__dist_type t, int *n_required, int *n_total);
/* Default of an optional parameter (beta low=0, high=1). */
double ms__dist_param_default(ms__dist_type t, int i);
int ms__dist_is_discrete(ms__dist_type t);

/* Values of one row's parameters (in ms__dist_params order); quantile tables
 * are borrowed. */
typedef struct {
  double p[MS__DIST_MAX_PARAMS];
  const double *qprobs;
  const double *qvalues;
  size_t qn;
} ms__dist_args;

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

/* Untruncated gamma/beta by GSL's samplers; r must already be reset to the
 * draw's key. */
double ms__dist_draw_gsl(ms__dist_type t, const ms__dist_args *a, gsl_rng *r);

#endif
