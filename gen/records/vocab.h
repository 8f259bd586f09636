/* Vocabularies: CSV tables of codes (ICD-10-CM, LOINC, ATC, ...) that specs
 * draw categorical values from and look values up in.
 *
 * Usage:
 *   char *path = NULL;
 *   ms__vocab_search s = {.spec_dir = "schemas/examples",
 *                         .data_dir = "/usr/share/medsynth/schemas/vocab"};
 *   if (ms__vocab_resolve("icd10cm_common", &s, &path, d) != MS_OK) ...;
 *   ms__vocab *v = NULL;
 *   if (ms__vocab_load(&v, path, d) != MS_OK) ...;
 *   size_t code = ms__vocab_col_require(v, "code", d, NULL, 0, 0, NULL);
 *   ms__vocab_index_build(v, code, d);            // once, before threads
 *   size_t row = ms__vocab_find(v, code, "I10");  // SIZE_MAX when absent
 *   const char *desc = ms__vocab_cell(v, row, ms__vocab_col_find(v, "description"));
 *   ms__vocab_free(v); free(path);
 *
 * File format (RFC 4180 with two relaxations, see docs/vocabularies.md):
 * the first record is the header (non-empty, unique column names); fields
 * are separated by commas; a field may be enclosed in double quotes, inside
 * which commas, line breaks and doubled quotes ("") are literal. Records end
 * in CRLF or LF (relaxation 1); a UTF-8 byte order mark at the start is
 * skipped and completely empty lines are ignored (relaxation 2). Every record
 * must have exactly as many fields as the header. The text must be valid
 * UTF-8 (no overlong forms, surrogates or code points above U+10FFFF) and
 * must not contain NUL bytes.
 *
 * Errors are reported through ms_diag as "file:line:column: error: message",
 * with 1-based lines and byte columns (as the JSON locator counts them). The
 * loader continues after a bad record so that one run reports every problem
 * (up to the diag's entry limit).
 *
 * Invariants of a loaded vocabulary: every record has n_cols cells; every
 * cell is a NUL-terminated valid UTF-8 string (possibly empty); row r of
 * column c was read from source line ms__vocab_cell_line(v, r, c). A
 * vocabulary is immutable after loading except for ms__vocab_index_build,
 * which must be called before the vocabulary is shared between threads;
 * after that every accessor is safe to call concurrently.
 *
 * Ownership: ms__vocab_load* create a vocabulary the caller releases with
 * ms__vocab_free (NULL is a no-op). Returned strings and arrays are borrowed
 * from the vocabulary and valid until it is freed. ms__vocab_resolve returns
 * a malloc'd path the caller frees.
 *
 * Private to the library (ms__ prefix). Reference: RFC 4180 "Common Format and
 * MIME Type for Comma-Separated Values (CSV) Files"; RFC 3629 (UTF-8). */
#ifndef MS_RECORDS_VOCAB_H
#define MS_RECORDS_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#include "medsynth/status.h"

typedef struct ms__vocab ms__vocab;

/* Reads and parses the CSV file at `path`. MS_ERR_NOTFOUND / MS_ERR_IO when
 * it cannot be read, MS_ERR_FORMAT for any syntax, UTF-8 or shape problem
 * (all of them in d). *out is NULL on failure. */
ms_status ms__vocab_load(ms__vocab **out, const char *path, ms_diag *d);
/* The same from `len` bytes in memory (copied; no NUL needed). `filename`
 * names the text in diagnostics and is returned by ms__vocab_path (NULL:
 * "<vocab>"). */
ms_status ms__vocab_load_string(ms__vocab **out, const char *text, size_t len,
                                const char *filename, ms_diag *d);
void ms__vocab_free(ms__vocab *v);

/* The file name given at load time. */
const char *ms__vocab_path(const ms__vocab *v);
size_t ms__vocab_n_rows(const ms__vocab *v);
size_t ms__vocab_n_cols(const ms__vocab *v);
const char *ms__vocab_col_name(const ms__vocab *v, size_t col);

/* Column index by exact (case-sensitive) name; SIZE_MAX when absent. */
size_t ms__vocab_col_find(const ms__vocab *v, const char *name);
/* The same, adding an MS_ERR_SPEC error to d when absent:
 *   file:line:column: error: where: vocabulary "icd10cm_common.csv" has no
 *   column "x" (columns: a, b, c)
 * The position is the caller's (the spec member that names the column); with
 * file NULL the vocabulary's header line is used instead. */
size_t ms__vocab_col_require(const ms__vocab *v, const char *name, ms_diag *d,
                             const char *file, int line, int column, const char *where);

/* Cell text of data row `row` (0-based, header excluded). */
const char *ms__vocab_cell(const ms__vocab *v, size_t row, size_t col);
/* Source position of a cell (1-based line and byte column). */
int ms__vocab_cell_line(const ms__vocab *v, size_t row, size_t col);
int ms__vocab_cell_column(const ms__vocab *v, size_t row, size_t col);
/* The whole column as n_rows strings (borrowed). */
const char *const *ms__vocab_col_strings(const ms__vocab *v, size_t col);

/* Parses every cell of a column as a finite decimal number (strtod syntax,
 * whole cell, no surrounding spaces) into out[n_rows]. Empty cells become
 * NaN when allow_empty is set and are errors otherwise. Each bad cell adds
 * "file:line:column: error: row R, column "x": ..." to d (R counts data rows
 * from 1); returns MS_ERR_DATA when any cell is bad. */
ms_status ms__vocab_col_numbers(const ms__vocab *v, size_t col, int allow_empty, double *out,
                                ms_diag *d);

/* Builds a hash index over a key column (xxh64 of the cell text, open
 * addressing). Duplicate keys are errors naming both lines; empty keys are
 * errors. Building twice is a no-op. Call before sharing the vocabulary
 * between threads. */
ms_status ms__vocab_index_build(ms__vocab *v, size_t col, ms_diag *d);
/* Row whose cell in `col` equals key exactly; SIZE_MAX when none. Uses the
 * index when built (O(1)), else scans (first match). */
size_t ms__vocab_find(const ms__vocab *v, size_t col, const char *key);
/* Convenience: cell of `val_col` in the row whose `key_col` equals key;
 * NULL when there is no such row. */
const char *ms__vocab_lookup(const ms__vocab *v, size_t key_col, const char *key,
                             size_t val_col);

/* Where vocabulary names are searched. Any member may be NULL (skipped). */
typedef struct {
  const char *spec_dir;   /* directory of the spec file ("" or NULL: none) */
  const char *data_dir;   /* installed vocabulary directory (compile-time
                             default chosen by the caller) */
  const char *source_dir; /* schemas/vocab of the source tree */
} ms__vocab_search;

/* Resolves a vocabulary name to a readable file. `name` is a bare name
 * ("icd10cm_common": ".csv" is appended) or a file name ending in ".csv",
 * possibly with directories; an absolute path is used as it is. A relative
 * name is tried, in order, in
 *   1. s->spec_dir,
 *   2. s->spec_dir/../vocab (a spec in schemas/examples/ finds schemas/vocab/,
 *      in the source tree and in an installed copy alike),
 *   3. each directory of $MEDSYNTH_VOCAB_PATH (colon-separated, empty
 *      entries ignored),
 *   4. s->data_dir,
 *   5. s->source_dir.
 * The first existing regular file wins; *out_path receives its path (caller
 * frees). When none exists, MS_ERR_NOTFOUND and an error listing every
 * directory searched is added to d at `where`. */
ms_status ms__vocab_resolve(const char *name, const ms__vocab_search *s, char **out_path,
                            ms_diag *d, const char *where);

#endif
