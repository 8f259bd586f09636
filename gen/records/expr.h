/* Expression language of the spec: compile a source string into typed,
 * vectorised bytecode; evaluate it over chunks of rows.
 *
 * Usage (the spec compiler; single thread):
 *   ms__expr_resolver r = {.ctx = table, .resolve = my_resolve,
 *                          .name_at = my_name_at, .vocab = my_vocab};
 *   ms__expr_compile_params o;
 *   ms__expr_compile_params_init(&o);
 *   o.file = "spec.json"; o.line = 12; o.column = 24;   // first char inside the quotes
 *   o.where = "/tables/0/fields/5/expr";
 *   o.want = MS__EXPR_NUMBER;                             // or MS__EXPR_ANY
 *   ms__expr *e = NULL;
 *   if (ms__expr_compile(&e, "weight_kg / (height_cm/100)^2", &r, &o, d) != MS_OK)
 *     ...;   // every problem found is in d, with line:column of the offending character
 *   for (size_t i = 0; i < ms__expr_n_names(e); i++) depend_on(ms__expr_name(e, i));
 *
 * Usage (the generator; any number of threads, one scratch each):
 *   ms__expr_scratch *s = ms__expr_scratch_new();
 *   ms__expr_col cols[N_SLOTS] = {...};        // one per slot the resolver handed out
 *   double out[n]; uint8_t ok[n];
 *   ms__expr_error err;
 *   if (ms__expr_eval(e, cols, N_SLOTS, n, out, ok, s, &err) != MS_OK)
 *     ms__expr_error_report(e, &err, d, "patients/1234");   // err.row is chunk-relative
 *   ms__expr_scratch_free(s);
 *   ms__expr_free(e);
 *
 * Language (docs/expressions.md is the reference for spec authors):
 * numbers, 'strings' (or "strings"), true/false, names (fields, constants,
 * parent.x, parent.parent.x), + - * / % ^, unary - and +, == != < <= > >=,
 * and/or/not (three-valued), x in (..), x not in (..), parentheses, and the
 * functions if, min, max, abs, log, log10, exp, sqrt, pow, round, floor,
 * ceil, clamp, date, datetime, days, years, hours, minutes, year, month,
 * day, years_between, startswith, is_missing, coalesce, lookup,
 * lookup_number.
 *
 * Static types: number (double), bool, string, categorical (int32 code into
 * a label list), date (int32 days since 1970-01-01), datetime (int64 seconds
 * since 1970-01-01T00:00:00Z) and duration (double days; the type of days(n),
 * years(n), hours(n), minutes(n)). Comparing a categorical with a string
 * literal compiles to a code comparison; a label outside the field's
 * categories is a compile error that lists them.
 *
 * Evaluation semantics (all rows, every time):
 *   - A missing operand makes the result missing; comparisons with missing
 *     are missing; and/or follow SQL's three-valued logic; if() with a
 *     missing condition is missing; is_missing() and coalesce() observe it.
 *   - Arithmetic that has no finite answer (division or % by zero, log or
 *     sqrt out of domain, overflow to infinity, a NaN, a date out of range)
 *     is an error of that row, never NaN/Inf. An error in a branch that
 *     if()/and/or/coalesce does not take for that row is discarded, so
 *     `if(h > 0, w / h, 0)` and `h != 0 and w / h > 1` are safe.
 *   - Evaluation is pure: no randomness, no global state; one compiled
 *     expression may be evaluated by many threads at once, each with its own
 *     scratch. The result depends only on the row's inputs, so any chunking
 *     gives the same bytes.
 *
 * Invariants: a compiled expression is immutable; it owns copies of
 * everything it needs except the vocabularies handed out by the resolver's
 * vocab hook, which it borrows (they must outlive it and have been indexed
 * before threads share them: the compiler calls ms__vocab_index_build on the
 * key columns it uses). Result values of missing rows are written as zero
 * (0.0, false, code 0, day 0, pointer to "").
 *
 * Ownership: ms__expr_compile creates an expression released with
 * ms__expr_free; ms__expr_scratch_new a scratch released with
 * ms__expr_scratch_free (both accept NULL). Every const pointer argument is
 * borrowed for the call only, except as noted for vocabularies and for
 * string results, which point into the frame's columns, the expression or a
 * vocabulary.
 *
 * Private to the library (ms__ prefix). References: SQL three-valued logic
 * (ISO/IEC 9075-2, 8.7 <boolean value expression>); Howard Hinnant,
 * "chrono-Compatible Low-Level Date Algorithms" (civil date conversions). */
#ifndef MS_RECORDS_EXPR_H
#define MS_RECORDS_EXPR_H

#include <stddef.h>
#include <stdint.h>

#include "medsynth/status.h"
#include "records/vocab.h"

/* ------------------------------------------------------------------ types */

typedef enum {
  MS__EXPR_NUMBER,      /* double */
  MS__EXPR_BOOL,        /* uint8_t 0/1 */
  MS__EXPR_STRING,      /* const char * (results); see layouts for inputs */
  MS__EXPR_CATEGORICAL, /* int32_t code into a label list */
  MS__EXPR_DATE,        /* int32_t days since 1970-01-01 */
  MS__EXPR_DATETIME,    /* int64_t seconds since 1970-01-01T00:00:00Z */
  MS__EXPR_DURATION,    /* double days */
  MS__EXPR_ANY,         /* only as ms__expr_compile_params.want: no check */
  MS__EXPR_TYPE_COUNT
} ms__expr_type;

/* "number", "bool", "string", "categorical", "date", "datetime", "duration",
 * "any"; "?" when out of range. */
const char *ms__expr_type_name(ms__expr_type t);
/* MS__EXPR_TYPE_COUNT when unknown. */
ms__expr_type ms__expr_type_from_name(const char *name);

/* How a frame column stores its values (one per row, contiguous). */
typedef enum {
  MS__EXPR_LAYOUT_F64,       /* double          (number, duration) */
  MS__EXPR_LAYOUT_I64,       /* int64_t         (number: converted to double; datetime) */
  MS__EXPR_LAYOUT_I32,       /* int32_t         (number, categorical, date) */
  MS__EXPR_LAYOUT_U8,        /* uint8_t 0/1     (bool) */
  MS__EXPR_LAYOUT_STR_FIXED, /* char[str_width + 1], NUL-terminated (string) */
  MS__EXPR_LAYOUT_STR_PTR,   /* const char *, NULL = "" (string) */
  MS__EXPR_LAYOUT_COUNT
} ms__expr_layout;

/* A scalar (constants, ms__expr_eval_const). */
typedef struct {
  ms__expr_type type;
  int missing;     /* 1: no value */
  double num;      /* NUMBER, DURATION (days) */
  int64_t i;       /* BOOL (0/1), CATEGORICAL code, DATE days, DATETIME seconds */
  const char *str; /* STRING; borrowed */
} ms__expr_value;

/* --------------------------------------------------------------- resolver */

/* What a name stands for. Either a frame slot (slot >= 0) or a constant
 * (slot == -1, value in `value`; strings are copied by the compiler). */
typedef struct {
  ms__expr_type type;          /* not ANY/DURATION for slots */
  int32_t slot;                /* index into the frame's columns, or -1 */
  ms__expr_layout layout;      /* storage of the slot */
  size_t str_width;            /* LAYOUT_STR_FIXED: bytes per value without NUL */
  size_t n_categories;         /* CATEGORICAL: labels, code i -> categories[i]; */
  const char *const *categories; /* borrowed for the call, copied */
  ms__expr_value value;        /* slot == -1 */
} ms__expr_symbol;

/* Where a construct is in the spec, for the resolver's own messages. */
typedef struct {
  const char *file;
  int line;
  int column;
  const char *where;
} ms__expr_pos;

typedef struct {
  void *ctx;
  /* Resolves a (possibly dotted) name: "age", "reference_date",
   * "parent.birth_date". Returns 1 and fills *out when known; 0 when unknown
   * (the compiler reports "unknown field 'x'" with a suggestion from
   * name_at); -1 when the resolver has itself added an error to d at pos
   * (e.g. "table 'patients' has no parent"). Called once per distinct name. */
  int (*resolve)(void *ctx, const char *name, ms__expr_symbol *out, ms_diag *d,
                 const ms__expr_pos *pos);
  /* Candidate names for "did you mean" (i = 0, 1, ... until NULL). May be
   * NULL: no suggestions. */
  const char *(*name_at)(void *ctx, size_t i);
  /* Finds a vocabulary by its spec name for lookup()/lookup_number(). Returns
   * a borrowed vocabulary that outlives the expression, or NULL after adding
   * an error to d at pos. NULL hook: lookup() is reported as unavailable. */
  ms__vocab *(*vocab)(void *ctx, const char *name, ms_diag *d, const ms__expr_pos *pos);
} ms__expr_resolver;

/* ---------------------------------------------------------------- compile */

typedef struct {
  /* Position of the source string's first character (after the opening
   * quote in JSON). Errors are reported at line:(column + byte offset). */
  const char *file;
  int line;
  int column;
  const char *where; /* JSON Pointer of the string */
  /* The JSON string contained escapes (\" \n \u...), so offsets in the
   * decoded text do not map to columns: every error is reported at
   * line:column of the string start. */
  int escaped;
  /* Required result type, or MS__EXPR_ANY. A mismatch is reported as
   * "expression has type string, expected number". */
  ms__expr_type want;
} ms__expr_compile_params;

void ms__expr_compile_params_init(ms__expr_compile_params *o);

typedef struct ms__expr ms__expr;

/* Parses, resolves, type-checks, constant-folds and emits bytecode. Reports
 * every problem it can find in d (syntax errors stop at the first one per
 * expression; name and type errors are all reported). Returns MS_OK, or
 * MS_ERR_SPEC with *out = NULL (MS_ERR_NOMEM on allocation failure).
 * `src` is the decoded string, NUL-terminated. */
ms_status ms__expr_compile(ms__expr **out, const char *src, const ms__expr_resolver *r,
                           const ms__expr_compile_params *o, ms_diag *d);
void ms__expr_free(ms__expr *e);

/* Names an expression mentions, without resolving or type-checking them
 * (for ordering fields before their types are known): fills a malloc'd
 * array of malloc'd strings, distinct, in order of first appearance. The
 * caller frees each string and the array (ms__expr_names_free). Syntax
 * errors are reported as by ms__expr_compile (MS_ERR_SPEC). */
ms_status ms__expr_scan_names(const char *src, const ms__expr_compile_params *o, char ***names,
                              size_t *n_names, ms_diag *d);
void ms__expr_names_free(char **names, size_t n_names);

/* The source text (copy owned by e). */
const char *ms__expr_source(const ms__expr *e);
ms__expr_type ms__expr_result_type(const ms__expr *e);
/* CATEGORICAL results: the labels (borrowed from e). */
size_t ms__expr_result_n_categories(const ms__expr *e);
const char *const *ms__expr_result_categories(const ms__expr *e);
/* Distinct names resolved (fields and constants), in order of first
 * appearance; borrowed from e. */
size_t ms__expr_n_names(const ms__expr *e);
const char *ms__expr_name(const ms__expr *e, size_t i);
/* Number of frame columns needed: 1 + the largest slot used (0 when the
 * expression reads no slot). */
size_t ms__expr_n_slots(const ms__expr *e);
/* 1 when e is exactly "categorical slot == label": its slot and the
 * label's code; 0 otherwise. */
int ms__expr_code_eq(const ms__expr *e, int32_t *slot, int64_t *code);
/* 1 when e is exactly "categorical slot[0] == label and categorical
 * slot[1] == label" over two different slots (either operand order in each
 * comparison; the two comparisons in source order): the slots and the
 * labels' codes; 0 otherwise. */
int ms__expr_code_eq2(const ms__expr *e, int32_t slot[2], int64_t code[2]);
/* 1 when the expression reads no slot (it folded to a constant). */
int ms__expr_is_const(const ms__expr *e);

/* ------------------------------------------------------------------- eval */

/* One frame column: the values of a slot for the chunk being evaluated. */
typedef struct {
  const void *data;      /* layout as declared by the slot's symbol */
  const uint8_t *valid;  /* NULL: every row present; else 1 present, 0 missing */
  /* NULL: frame row r reads data row r. Else frame row r reads data row
   * index[r] (e.g. a child row reading its parent's column without copying);
   * data and valid are indexed by the data row. */
  const uint32_t *index;
} ms__expr_col;

/* A row error found by evaluation. */
typedef struct {
  ms_status status;   /* MS_ERR_MATH (arithmetic), MS_ERR_RANGE (date out of
                         range), MS_ERR_DATA (bad input: invalid date string,
                         categorical code out of range) */
  size_t row;         /* frame row (0-based within this call); SIZE_MAX when the
                         failure is not about a row (bad arguments, memory) */
  int offset;         /* byte offset in the source of the failing operation */
  int line, column;   /* its position in the spec (from the compile opts) */
  char message[192];  /* "division by zero", "log of -3 (argument must be > 0)" */
} ms__expr_error;

typedef struct ms__expr_scratch ms__expr_scratch;

/* Per-thread working memory for ms__expr_eval; grows as needed and may be
 * reused across expressions and calls. NULL on allocation failure. */
ms__expr_scratch *ms__expr_scratch_new(void);
void ms__expr_scratch_free(ms__expr_scratch *s);

/* Sharing of row groupings between calls (off in a new scratch). While on,
 * a call that evaluates over distinct inputs keeps the grouping of its rows
 * by the columns it reads (only columns without a row index) and later
 * calls over the same number of rows and the same columns (same data,
 * presence and layout pointers) reuse it. The pointers are the key, so
 * the caller must call ms__expr_scratch_forget for a column before its
 * values or presence change while sharing is on. Turning sharing on or
 * off forgets every grouping. */
void ms__expr_scratch_share(ms__expr_scratch *s, int on);
/* Forgets the shared groupings that read data or valid (either may be
 * NULL). */
void ms__expr_scratch_forget(ms__expr_scratch *s, const void *data, const uint8_t *valid);

/* Evaluates e for frame rows 0..n_rows-1. cols[slot] must exist for every
 * slot the expression uses (n_cols >= ms__expr_n_slots(e)). Writes n_rows
 * values in the result type's layout to `out` (double / uint8_t / int32_t /
 * int64_t / const char *) and 1/0 to out_valid[n_rows]. scratch may be NULL
 * (allocated for the call). Returns MS_OK; on the first (lowest) row whose
 * result is an error, returns err->status with *err filled (out is then
 * unspecified); MS_ERR_INVALID when cols is too short or a slot's data is
 * NULL; MS_ERR_NOMEM (these two with err->row = SIZE_MAX and a message).
 * Thread-safe for distinct scratches.
 *
 * Frame data must cover every row read: n_rows values (or, with an index,
 * every data row the index names); string pointers and fixed-width strings
 * must be NUL-terminated. Present values are checked: a NaN number reads as
 * missing, an infinite number, an out-of-range category code or a date
 * outside years 1..9999 is an MS_ERR_DATA row error. */
ms_status ms__expr_eval(const ms__expr *e, const ms__expr_col *cols, size_t n_cols,
                        size_t n_rows, void *out, uint8_t *out_valid, ms__expr_scratch *scratch,
                        ms__expr_error *err);

/* Evaluates an expression that reads no slot (ms__expr_is_const) to a
 * scalar. String results are borrowed from e. MS_ERR_INVALID when the
 * expression reads fields; an arithmetic error returns its status with *err
 * filled (row 0). */
ms_status ms__expr_eval_const(const ms__expr *e, ms__expr_value *out, ms__expr_error *err);

/* Adds an evaluation error to d: "file:line:column: error: where: message"
 * at the failing operation's position, with `where` supplied by the caller
 * (the generator's "table/row"). Returns err->status. */
ms_status ms__expr_error_report(const ms__expr *e, const ms__expr_error *err, ms_diag *d,
                                const char *where);

/* Convenience for constant spec parameters: compiles `src` with the
 * resolver (fields are rejected: "a constant is required here") and
 * evaluates it; string results are copied into *str_out (caller frees, may
 * be NULL when not wanted). Errors go to d at the compile position. */
ms_status ms__expr_const_value(const char *src, const ms__expr_resolver *r,
                               const ms__expr_compile_params *o, ms__expr_value *out,
                               char **str_out, ms_diag *d);

#endif
