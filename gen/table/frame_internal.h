/* Private helpers of the table reader (gen/table/frame.c, frame_h5.c), also
 * used by gen/fit and gen/eval: an interning string table (open addressing
 * over xxh64, insertion order kept) used for categorical levels and
 * exact-row hashing, the cell parsers and the discrete-column marking.
 *
 * Invariant: cap is a power of two and at least twice n. */
#ifndef MS_TABLE_FRAME_INTERNAL_H
#define MS_TABLE_FRAME_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <math.h>

#include "medsynth/fit.h"
#include "medsynth/status.h"

/* Whether cell r of column c is missing (a code of -1, or NaN). */
static inline int ms__frame_cell_missing(const ms_frame_col *c, size_t r) {
  return c->code ? c->code[r] < 0 : isnan(c->num[r]);
}

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

/* The most decimals a real column is read and written with (more are
 * written as this many). */
#define MS_FRAME_DECIMALS_MAX 9

/* Marks an integer/real column with at most MS_FRAME_DISCRETE_MAX distinct
 * values as discrete: lit_val/lit_text from its values, spelled as a CSV
 * export writes them (integers plainly, reals with `decimals` decimals). */
ms_status ms__frame_col_discrete(ms_frame_col *c, size_t n_rows);

#endif
