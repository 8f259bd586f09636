/* CSV and JSON Lines formatting of table chunks (docs/file-format.md).
 *
 * CSV: RFC 4180 quoting (a field holding ',', '"', CR or LF, or starting or
 * ending with a space, is enclosed in double quotes with inner quotes
 * doubled), LF line ends, a header row of column names. A missing value is
 * an empty unquoted field; an empty string is written as "" so the two stay
 * distinguishable. Reals use the column's precision (fixed decimals) or, when
 * precision < 0, the shortest decimal that parses back to the same double
 * (%.15g, %.16g or %.17g, the first that round-trips).
 * Non-finite reals: NaN is missing; +/-infinity are "inf"/"-inf" in CSV and
 * null in JSON (JSON has no infinity; NaN is never written).
 *
 * JSON Lines: one object per row, keys in column order, missing -> null,
 * integers and reals as JSON numbers, bools true/false, dates and datetimes
 * as ISO 8601 strings, categoricals as their labels.
 *
 * Invariant: output depends only on the chunk contents (no locale: numbers
 * are formatted by snprintf in the "C" locale the library never changes, and
 * the decimal separator is checked). */
#include <inttypes.h>
#include "core/alloc.h"
#include "core/diag.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/io_private.h"

int ms__buf_reserve(ms__buf *b, size_t extra) {
  if (b->len + extra + 1 <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + extra + 1) cap *= 2;
  char *np = ms__realloc(b->p, cap);
  if (!np) return -1;
  b->p = np;
  b->cap = cap;
  return 0;
}

static void put(ms__buf *b, const char *s, size_t n) {
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

/* Replaces a locale decimal comma (should a caller have set one) by '.'. */
static void fix_decimal(char *s) {
  for (; *s; s++)
    if (*s == ',') *s = '.';
}

int ms__format_double(char *out, size_t cap, double v, int precision) {
  int n;
  if (precision >= 0) {
    n = snprintf(out, cap, "%.*f", precision > 17 ? 17 : precision, v);
    /* "-0.0" for small negatives rounds to a signed zero: write it unsigned. */
    if (out[0] == '-') {
      int allzero = 1;
      for (const char *p = out + 1; *p; p++)
        if (*p != '0' && *p != '.') allzero = 0;
      if (allzero) {
        memmove(out, out + 1, (size_t)n);
        n--;
      }
    }
  } else {
    /* A double whose shortest round-trip decimal has k <= 15 digits prints
     * exactly those digits under %.15g (the value lies within half an ulp
     * of it, far less than half a unit in the 15th digit, and %g drops
     * trailing zeros), so only 15, 16 and 17 digits need trying. */
    n = 0;
    for (int p = 15; p <= 17; p++) {
      n = snprintf(out, cap, "%.*g", p, v);
      fix_decimal(out);
      if (strtod(out, NULL) == v) break;
    }
  }
  fix_decimal(out);
  return n;
}

static size_t str_len(const char *s, size_t width) { return strnlen(s, width); }

/* Text of one value in CSV/JSON form that needs no quoting decisions
 * (numbers, bools). Returns length, or -1 when the value is missing. */
static int scalar_text(char *tmp, size_t cap, const ms_column *col, const ms_colbuf *cb,
                       size_t r) {
  if (cb->valid && !cb->valid[r]) return -1;
  switch (col->type) {
    case MS_COL_INT64:
      return snprintf(tmp, cap, "%" PRId64, ((const int64_t *)cb->data)[r]);
    case MS_COL_FLOAT64: {
      double v = ((const double *)cb->data)[r];
      if (isnan(v)) return -1;
      if (isinf(v)) return snprintf(tmp, cap, "%s", v > 0 ? "inf" : "-inf");
      int n = ms__format_double(tmp, cap, v, col->precision);
      if (col->format && col->precision > 0 && !strncmp(col->format, "trim", 4) &&
          n > 0 && (size_t)n < cap && strchr(tmp, '.')) {
        /* "trim": trailing zeros go, and the point with them; "trim.0" keeps
         * one zero after the point of a whole number (as Python writes
         * floats). */
        while (n > 0 && tmp[n - 1] == '0') n--;
        if (tmp[n - 1] == '.') {
          if (!strcmp(col->format, "trim.0")) n++;
          else n--;
        }
        tmp[n] = '\0';
      }
      return n;
    }
    case MS_COL_BOOL:
      return snprintf(tmp, cap, "%s", ((const uint8_t *)cb->data)[r] ? "true" : "false");
    case MS_COL_DATE:
      if (col->format)
        return ms_datetime_format_pattern((int64_t)((const int32_t *)cb->data)[r] * 86400,
                                          col->format, tmp, cap);
      ms_date_format(((const int32_t *)cb->data)[r], tmp);
      return (int)strlen(tmp);
    case MS_COL_DATETIME:
      if (col->format)
        return ms_datetime_format_pattern(((const int64_t *)cb->data)[r], col->format, tmp, cap);
      ms_datetime_format(((const int64_t *)cb->data)[r], tmp);
      return (int)strlen(tmp);
    default:
      return -1;
  }
}

static ms_status bad_code(ms_diag *d, const ms_chunk *c, size_t j, size_t r, int32_t code) {
  char where[256];
  snprintf(where, sizeof where, "%s/row %" PRIu64 "/%s", c->schema->name,
           c->first_row + (uint64_t)r, c->schema->columns[j].name);
  return ms_diag_add(d, MS_ERR_DATA, NULL, 0, 0, where,
                     "category code %d out of range (%zu categories)", (int)code,
                     c->schema->columns[j].n_categories);
}

/* The string (label or text) of a string/categorical value, or NULL. */
static ms_status text_value(const ms_chunk *c, size_t j, size_t r, const char **s, size_t *n,
                            ms_diag *d) {
  const ms_column *col = &c->schema->columns[j];
  const ms_colbuf *cb = &c->cols[j];
  *s = NULL;
  if (cb->valid && !cb->valid[r]) return MS_OK;
  if (col->type == MS_COL_STRING) {
    *s = (const char *)cb->data + r * (col->str_width + 1);
    *n = str_len(*s, col->str_width);
  } else {
    int32_t code = ((const int32_t *)cb->data)[r];
    if (code < 0 || (size_t)code >= col->n_categories) return bad_code(d, c, j, r, code);
    *s = col->categories[code];
    *n = strlen(*s);
  }
  return MS_OK;
}

static ms_status csv_field(ms__buf *b, const char *s, size_t n) {
  int q = n == 0 || s[0] == ' ' || s[n - 1] == ' ';
  size_t quotes = 0;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    if (ch == ',' || ch == '\n' || ch == '\r') q = 1;
    if (ch == '"') q = 1, quotes++;
  }
  if (ms__buf_reserve(b, n + quotes + 2)) return MS_ERR_NOMEM;
  if (!q) {
    put(b, s, n);
    return MS_OK;
  }
  b->p[b->len++] = '"';
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '"') b->p[b->len++] = '"';
    b->p[b->len++] = s[i];
  }
  b->p[b->len++] = '"';
  return MS_OK;
}

ms_status ms__csv_header(ms__buf *b, const ms_table_schema *s) {
  for (size_t j = 0; j < s->n_columns; j++) {
    if (ms__buf_reserve(b, 1)) return MS_ERR_NOMEM;
    if (j) b->p[b->len++] = ',';
    ms_status st = csv_field(b, s->columns[j].name, strlen(s->columns[j].name));
    if (st) return st;
  }
  if (ms__buf_reserve(b, 1)) return MS_ERR_NOMEM;
  b->p[b->len++] = '\n';
  return MS_OK;
}

static ms_status csv_rows(ms__buf *b, const ms_chunk *c, ms_diag *d) {
  const ms_table_schema *s = c->schema;
  char tmp[420];
  for (size_t r = 0; r < c->n_rows; r++) {
    for (size_t j = 0; j < s->n_columns; j++) {
      if (ms__buf_reserve(b, 420)) return MS_ERR_NOMEM;
      if (j) b->p[b->len++] = ',';
      const ms_column *col = &s->columns[j];
      if (col->type == MS_COL_STRING || col->type == MS_COL_CATEGORICAL) {
        const char *v;
        size_t n = 0;
        ms_status st = text_value(c, j, r, &v, &n, d);
        if (st) return st;
        if (v && (st = csv_field(b, v, n))) return st;
      } else {
        int n = scalar_text(tmp, sizeof tmp, col, &c->cols[j], r);
        if (n > 0) put(b, tmp, (size_t)n);
      }
    }
    if (ms__buf_reserve(b, 1)) return MS_ERR_NOMEM;
    b->p[b->len++] = '\n';
  }
  return MS_OK;
}

static ms_status json_string(ms__buf *b, const char *s, size_t n) {
  if (ms__buf_reserve(b, n * 6 + 2)) return MS_ERR_NOMEM;
  b->p[b->len++] = '"';
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    switch (ch) {
      case '"':
        put(b, "\\\"", 2);
        break;
      case '\\':
        put(b, "\\\\", 2);
        break;
      case '\n':
        put(b, "\\n", 2);
        break;
      case '\r':
        put(b, "\\r", 2);
        break;
      case '\t':
        put(b, "\\t", 2);
        break;
      default:
        if (ch < 0x20) {
          char e[8];
          snprintf(e, sizeof e, "\\u%04x", ch);
          put(b, e, 6);
        } else {
          b->p[b->len++] = (char)ch;
        }
    }
  }
  b->p[b->len++] = '"';
  return MS_OK;
}

static ms_status jsonl_rows(ms__buf *b, const ms_chunk *c, ms_diag *d) {
  const ms_table_schema *s = c->schema;
  char tmp[420];
  for (size_t r = 0; r < c->n_rows; r++) {
    if (ms__buf_reserve(b, 1)) return MS_ERR_NOMEM;
    b->p[b->len++] = '{';
    for (size_t j = 0; j < s->n_columns; j++) {
      const ms_column *col = &s->columns[j];
      if (j) {
        if (ms__buf_reserve(b, 1)) return MS_ERR_NOMEM;
        b->p[b->len++] = ',';
      }
      ms_status st = json_string(b, col->name, strlen(col->name));
      if (st) return st;
      if (ms__buf_reserve(b, 424)) return MS_ERR_NOMEM;
      b->p[b->len++] = ':';
      if (col->type == MS_COL_STRING || col->type == MS_COL_CATEGORICAL) {
        const char *v;
        size_t n = 0;
        if ((st = text_value(c, j, r, &v, &n, d))) return st;
        if (!v)
          put(b, "null", 4);
        else if ((st = json_string(b, v, n)))
          return st;
        continue;
      }
      int n = scalar_text(tmp, sizeof tmp, col, &c->cols[j], r);
      if (n < 0 || (col->type == MS_COL_FLOAT64 && isinf(((const double *)c->cols[j].data)[r]))) {
        put(b, "null", 4);
      } else if (col->type == MS_COL_DATE || col->type == MS_COL_DATETIME) {
        b->p[b->len++] = '"';
        put(b, tmp, (size_t)n);
        b->p[b->len++] = '"';
      } else {
        put(b, tmp, (size_t)n);
      }
    }
    if (ms__buf_reserve(b, 2)) return MS_ERR_NOMEM;
    put(b, "}\n", 2);
  }
  return MS_OK;
}

/* The row formatters' only allocation is the growing buffer. */
ms_status ms__csv_rows(ms__buf *b, const ms_chunk *c, ms_diag *d) {
  ms_status st = csv_rows(b, c, d);
  if (st == MS_ERR_NOMEM) ms__diag_nomem(d, NULL, c->schema->name, "formatted text");
  return st;
}

ms_status ms__jsonl_rows(ms__buf *b, const ms_chunk *c, ms_diag *d) {
  ms_status st = jsonl_rows(b, c, d);
  if (st == MS_ERR_NOMEM) ms__diag_nomem(d, NULL, c->schema->name, "formatted text");
  return st;
}
