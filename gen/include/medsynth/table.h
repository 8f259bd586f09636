/* Tables in memory: a schema, column-major chunks of rows, and the sink
 * interface through which generators hand chunks to writers.
 *
 * Usage (a generator):
 *   sink->begin_table(sink->ctx, &schema, expected_rows_or_0);
 *   for each chunk: sink->write_chunk(sink->ctx, &chunk);
 *   sink->end_table(sink->ctx, schema.name);
 *
 * Storage per column type (chunk->cols[j].data points at n_rows values):
 *   MS_COL_INT64        int64_t
 *   MS_COL_FLOAT64      double (missing also written as NaN)
 *   MS_COL_BOOL         uint8_t (0/1)
 *   MS_COL_STRING       char[width + 1] per row, NUL-padded, UTF-8;
 *                       width = column.str_width (bytes, fixed)
 *   MS_COL_CATEGORICAL  int32_t code, index into column.categories
 *   MS_COL_DATE         int32_t days since 1970-01-01 (proleptic Gregorian)
 *   MS_COL_DATETIME     int64_t seconds since 1970-01-01T00:00:00Z
 * cols[j].valid is NULL when every row is present, else n_rows bytes (1 =
 * present, 0 = missing). Values of missing rows are still initialised (0,
 * NaN, empty string) so that files are deterministic.
 *
 * Ownership: a chunk made by ms_chunk_new owns its buffers; ms_chunk_free
 * releases them. A sink borrows the chunk for the duration of the call. */
#ifndef MEDSYNTH_TABLE_H
#define MEDSYNTH_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "medsynth/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  MS_COL_INT64,
  MS_COL_FLOAT64,
  MS_COL_BOOL,
  MS_COL_STRING,
  MS_COL_CATEGORICAL,
  MS_COL_DATE,
  MS_COL_DATETIME,
  MS_COL_COUNT
} ms_coltype;

const char *ms_coltype_name(ms_coltype t);
/* MS_COL_COUNT when the name is unknown. */
ms_coltype ms_coltype_from_name(const char *name);

typedef struct {
  char *name;
  ms_coltype type;
  char *unit;        /* NULL when none; e.g. "kg", "mmHg" */
  char *description; /* NULL when none */
  int precision;     /* decimals for text output of FLOAT64; -1 = shortest round-trip */
  int nullable;      /* column can hold missing values */
  size_t str_width;  /* MS_COL_STRING: fixed byte width (without NUL) */
  size_t n_categories;
  char **categories; /* MS_COL_CATEGORICAL: labels, code i -> categories[i] */
  char *references;  /* foreign key "table.column" or NULL */
  /* Text form (CSV, JSON Lines) or NULL for the default. FLOAT64: "fixed"
   * (exactly `precision` decimals), "trim" (at most `precision` decimals,
   * trailing zeros and a bare point dropped) or "trim.0" (the same, but a
   * whole number keeps ".0"). DATE/DATETIME: a pattern of %Y %m %d %H %M %S
   * and %% with literal characters in between (ms_datetime_format_pattern). */
  char *format;
} ms_column;

typedef struct {
  char *name;
  char *parent; /* parent table name or NULL */
  size_t n_columns;
  ms_column *columns;
} ms_table_schema;

/* Deep copy / release of a schema (the generator owns its schemas; writers
 * that need them beyond a call copy them). */
ms_status ms_table_schema_copy(ms_table_schema *dst, const ms_table_schema *src);
void ms_table_schema_deinit(ms_table_schema *s);

typedef struct {
  void *data;
  uint8_t *valid;
} ms_colbuf;

typedef struct {
  const ms_table_schema *schema; /* borrowed */
  uint64_t first_row;            /* global row index of row 0 of this chunk */
  size_t n_rows;
  size_t capacity;
  ms_colbuf *cols; /* schema->n_columns entries */
  /* Chunks of child tables handed over by ms_generate: per row, the row of
   * its parent within the parent table's chunk of the same batch (the one
   * written just before, see records.h); NULL otherwise. Borrowed. */
  const uint32_t *parent_rows;
} ms_chunk;

/* Bytes one value of a column occupies in a chunk. */
size_t ms_column_value_size(const ms_column *c);

/* Allocates a chunk able to hold `capacity` rows, zero-filled, with a validity
 * buffer for each nullable column. Caller frees with ms_chunk_free. */
ms_status ms_chunk_new(ms_chunk **out, const ms_table_schema *schema, size_t capacity);
void ms_chunk_free(ms_chunk *c);
/* Zeroes values and marks every row valid again (for reuse). */
void ms_chunk_reset(ms_chunk *c);

/* Days since 1970-01-01 <-> civil date (proleptic Gregorian). */
int32_t ms_date_from_ymd(int y, int m, int d);
void ms_date_to_ymd(int32_t days, int *y, int *m, int *d);
/* Parses "YYYY-MM-DD" strictly (valid month/day). Returns 0 on success. */
int ms_date_parse(const char *s, int32_t *days);
/* Parses "YYYY-MM-DDTHH:MM:SS" (optional trailing 'Z'). Returns 0 on success. */
int ms_datetime_parse(const char *s, int64_t *secs);
/* Writes "YYYY-MM-DD" / "YYYY-MM-DDTHH:MM:SSZ"; buf must hold MS_DATE_BUFSZ bytes. */
#define MS_DATE_BUFSZ 40
void ms_date_format(int32_t days, char *buf);
void ms_datetime_format(int64_t secs, char *buf);
/* Writes secs (seconds since 1970-01-01 UTC) through `pattern`: %Y (4-digit
 * year), %m, %d, %H, %M, %S (2 digits each), %% ('%'); other characters are
 * copied. Returns the length written, or -1 when the pattern has another
 * conversion or the text does not fit cap bytes. */
int ms_datetime_format_pattern(int64_t secs, const char *pattern, char *buf, size_t cap);
/* Parses s against such a pattern exactly (every field present and valid;
 * missing time fields are 0). Returns 0 on success. */
int ms_datetime_parse_pattern(const char *s, const char *pattern, int64_t *secs);

/* Where generated tables go. Any callback may be NULL. `expected_rows` is
 * the final row count when known in advance, else 0. Returning non-OK stops
 * generation; details go to the diag the generator was given via `diag`. */
typedef struct ms_sink {
  void *ctx;
  ms_status (*begin_table)(void *ctx, const ms_table_schema *schema, uint64_t expected_rows);
  ms_status (*write_chunk)(void *ctx, const ms_chunk *chunk);
  ms_status (*end_table)(void *ctx, const char *table_name);
} ms_sink;

#ifdef __cplusplus
}
#endif
#endif
