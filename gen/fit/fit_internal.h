/* Private helpers shared by gen/fit and gen/eval: an interning string table
 * (open addressing over xxh64, insertion order kept) used for categorical
 * levels and exact-row hashing.
 *
 * Invariant: cap is a power of two and at least twice n. */
#ifndef MS_FIT_INTERNAL_H
#define MS_FIT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "medsynth/fit.h"
#include "medsynth/status.h"

typedef struct {
  char **strs; /* owned copies, index = code */
  size_t n, strs_cap;
  int32_t *slots; /* -1 empty, else index into strs */
  size_t cap;
} ms__strtab;

ms_status ms__strtab_init(ms__strtab *t);
void ms__strtab_deinit(ms__strtab *t, int free_strings);
/* Index of s, or -1. */
int32_t ms__strtab_find(const ms__strtab *t, const char *s);
/* Index of s, adding it when new; -2 when out of memory. */
int32_t ms__strtab_intern(ms__strtab *t, const char *s);

/* Cell parsers shared by the CSV and HDF5 frame readers (0 = parsed).
 * Numbers: strtod without hex/inf/nan spellings; is_int when written without
 * '.' or exponent; decimals after the point (may be NULL). Bools: true/false,
 * yes/no, t/f, y/n (any case). */
int ms__fit_parse_num(const char *s, double *v, int *is_int, int *decimals);
int ms__fit_parse_bool(const char *s, double *v);

/* Marks an integer/real column with at most MS_FRAME_DISCRETE_MAX distinct
 * values as discrete: lit_val/lit_text from its values, spelled as a CSV
 * export writes them (integers plainly, reals with `decimals` decimals). */
ms_status ms__frame_col_discrete(ms_frame_col *c, size_t n_rows);

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
typedef enum { MS__REL_ORDER, MS__REL_DIFF, MS__REL_FD, MS__REL_ZERO, MS__REL_SUM, MS__REL_COUNT } ms__rel_kind;
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
} ms__rel;

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
