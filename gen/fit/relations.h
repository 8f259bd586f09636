/* Deterministic relations between columns of a table (gen/fit/relations.c),
 * found by the fit and checked by the evaluator. */
#ifndef MS_FIT_RELATIONS_H
#define MS_FIT_RELATIONS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "medsynth/fit.h"
#include "medsynth/status.h"

/* Deterministic relations between columns (gen/fit/relations.c). ORDER:
 * date a <= date b; DIFF: c == b - a; FD: categorical a determines b through
 * fd_map (a's level -> b's level, -1 unseen). Indices are columns of the
 * frame the relations were found in. */
/* ZERO: combinations of the labels of coarse columns a and b (categorical,
 * bool or discrete) that no row has although independence would put at
 * least MS__ZERO_MIN_EXPECTED rows there (pregnant with sex M); fd_map
 * holds n_map = La * Lb flags, 1 for such a combination (a's level x, b's
 * level y at x * Lb + y), and c = Lb. */
/* SUM: c == the sum of n_map >= 3 adjacent columns, whose indices fd_map
 * holds (a score and its items). */
/* BAND: coarse column b set by intervals of continuous number a: n_map
 * bands, lowest a first; fd_map holds each band's level of b, cuts the
 * n_map - 1 cut points (band i holds a < cuts[i], band i + 1 a >=
 * cuts[i]). */
typedef enum {
  MS__REL_ORDER,
  MS__REL_DIFF,
  MS__REL_FD,
  MS__REL_ZERO,
  MS__REL_SUM,
  MS__REL_BAND,
  MS__REL_COUNT
} ms__rel_kind;
#define MS__ZERO_MIN_EXPECTED 10.0
/* The level of row r of a coarse column (categorical code, bool 0/1, index
 * of a discrete value), -1 when missing or not coarse; *n_levels. */
int32_t ms__coarse_level(const ms_frame_col *c, size_t r);
size_t ms__coarse_levels(const ms_frame_col *c);
/* The text of level l of a coarse column. */
const char *ms__coarse_label(const ms_frame_col *c, size_t l);
typedef struct {
  ms__rel_kind kind;
  size_t a, b, c;
  int32_t *fd_map;
  size_t n_map;
  double *cuts; /* BAND only */
} ms__rel;

/* The band of x among n_band bands cut at cuts[0..n_band - 2] (band i
 * holds x < cuts[i]; the last, x >= cuts[n_band - 2]). */
size_t ms__band_of(const double *cuts, size_t n_band, double x);

/* Half a unit of the last decimal of number c (a real), or a rounding
 * error's worth (an integer): how far a derived number may be off. */
double ms__relation_half_unit(const ms_frame_col *c);
/* c == b - a fails on a row with x = a, y = b, z = c (tol: half a unit of
 * c's column) */
static inline int ms__diff_breaks(double tol, double x, double y, double z) {
  return fabs(z - (y - x)) > tol + 1e-12 * (fabs(x) + fabs(y));
}

/* Relations holding on every checkable row of f and on at least 2k rows. */
ms_status ms__relations_find(const ms_frame *f, size_t k, ms__rel **out, size_t *n);
void ms__relations_free(ms__rel *r, size_t n);
/* "a <= b", "c = b - a", "a determines b" with f's column names. */
void ms__relation_describe(const ms__rel *r, const ms_frame *f, char *buf, size_t cap);
/* Share of g's checkable rows (count in *checked) that break relation r
 * found in ref; columns are matched by name. NAN when none can be checked. */
double ms__relation_violations(const ms__rel *r, const ms_frame *ref, const ms_frame *g,
                               size_t *checked);

#endif
