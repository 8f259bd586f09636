/* Schema copies, chunk buffers and civil-date arithmetic (medsynth/table.h).
 *
 * Dates use Howard Hinnant's days_from_civil / civil_from_days algorithms
 * (proleptic Gregorian, exact for all int32 day counts we accept). */
#include "medsynth/table.h"
#include "core/names.h"
#include "core/alloc.h"
#include "core/table_build.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const coltype_names[] = {
#define MS__COLTYPE_NAME(id, name) name,
    MS_COLTYPE_TABLE(MS__COLTYPE_NAME)
#undef MS__COLTYPE_NAME
};
MS__NAME_FNS(ms_coltype_name, ms_coltype_from_name, ms_coltype, coltype_names, MS_COL_COUNT,
             "unknown")

static int dupstr(char **dst, const char *src) {
  if (!src) {
    *dst = NULL;
    return 0;
  }
  *dst = ms__strdup(src);
  return *dst ? 0 : -1;
}

static void column_deinit(ms_column *c) {
  free(c->name);
  free(c->unit);
  free(c->description);
  free(c->references);
  free(c->format);
  if (c->categories)
    for (size_t i = 0; i < c->n_categories; i++) free(c->categories[i]);
  free(c->categories);
  memset(c, 0, sizeof *c);
}

void ms_table_schema_deinit(ms_table_schema *s) {
  if (!s) return;
  free(s->name);
  free(s->parent);
  if (s->columns)
    for (size_t i = 0; i < s->n_columns; i++) column_deinit(&s->columns[i]);
  free(s->columns);
  memset(s, 0, sizeof *s);
}

ms_status ms_table_schema_copy(ms_table_schema *dst, const ms_table_schema *src) {
  memset(dst, 0, sizeof *dst);
  if (dupstr(&dst->name, src->name) || dupstr(&dst->parent, src->parent)) goto fail;
  dst->columns = ms__calloc(src->n_columns ? src->n_columns : 1, sizeof *dst->columns);
  if (!dst->columns) goto fail;
  dst->n_columns = src->n_columns;
  for (size_t i = 0; i < src->n_columns; i++) {
    const ms_column *a = &src->columns[i];
    ms_column *b = &dst->columns[i];
    *b = *a;
    b->name = b->unit = b->description = b->references = b->format = NULL;
    b->categories = NULL;
    b->n_categories = 0;
    if (dupstr(&b->name, a->name) || dupstr(&b->unit, a->unit) ||
        dupstr(&b->description, a->description) || dupstr(&b->references, a->references) ||
        dupstr(&b->format, a->format))
      goto fail;
    if (a->n_categories) {
      b->categories = ms__calloc(a->n_categories, sizeof *b->categories);
      if (!b->categories) goto fail;
      b->n_categories = a->n_categories;
      for (size_t k = 0; k < a->n_categories; k++)
        if (dupstr(&b->categories[k], a->categories[k])) goto fail;
    }
  }
  return MS_OK;
fail:
  ms_table_schema_deinit(dst);
  return MS_ERR_NOMEM;
}

int ms__schema_add_col(ms_table_schema *s, const char *name, ms_coltype t, const char *unit, const char *desc) {
  ms_column *c = &s->columns[s->n_columns++];
  memset(c, 0, sizeof *c);
  c->name = ms__strdup(name);
  c->type = t;
  c->unit = unit ? ms__strdup(unit) : NULL;
  c->description = desc ? ms__strdup(desc) : NULL;
  c->precision = -1;
  return !c->name || (unit && !c->unit) || (desc && !c->description);
}

int ms__schema_add_key_col(ms_table_schema *s, const ms_column *key, const char *table) {
  ms_column *c = &s->columns[s->n_columns++];
  memset(c, 0, sizeof *c);
  c->name = ms__strdup(key->name);
  c->type = key->type;
  c->precision = -1;
  c->str_width = key->str_width;
  char ref[300];
  snprintf(ref, sizeof ref, "%s.%s", table ? table : "", key->name);
  c->references = ms__strdup(ref);
  return !c->name || !c->references;
}

size_t ms_column_value_size(const ms_column *c) {
  switch (c->type) {
    case MS_COL_INT64:
    case MS_COL_DATETIME:
      return 8;
    case MS_COL_FLOAT64:
      return 8;
    case MS_COL_BOOL:
      return 1;
    case MS_COL_STRING:
      return c->str_width + 1;
    case MS_COL_CATEGORICAL:
    case MS_COL_DATE:
      return 4;
    default:
      return 0;
  }
}

void ms_chunk_free(ms_chunk *c) {
  if (!c) return;
  if (c->cols)
    for (size_t j = 0; j < c->schema->n_columns; j++) {
      free(c->cols[j].data);
      free(c->cols[j].valid);
    }
  free(c->cols);
  free(c);
}

ms_status ms_chunk_new(ms_chunk **out, const ms_table_schema *schema, size_t capacity) {
  *out = NULL;
  ms_chunk *c = ms__calloc(1, sizeof *c);
  if (!c) return MS_ERR_NOMEM;
  c->schema = schema;
  c->capacity = capacity;
  c->cols = ms__calloc(schema->n_columns ? schema->n_columns : 1, sizeof *c->cols);
  if (!c->cols) goto fail;
  for (size_t j = 0; j < schema->n_columns; j++) {
    size_t vs = ms_column_value_size(&schema->columns[j]);
    if (vs == 0 || (capacity && vs > SIZE_MAX / capacity)) goto fail;
    c->cols[j].data = ms__calloc(capacity ? capacity : 1, vs);
    if (!c->cols[j].data) goto fail;
    if (schema->columns[j].nullable) {
      c->cols[j].valid = ms__malloc(capacity ? capacity : 1);
      if (!c->cols[j].valid) goto fail;
      memset(c->cols[j].valid, 1, capacity ? capacity : 1);
    }
  }
  *out = c;
  return MS_OK;
fail:
  ms_chunk_free(c);
  return MS_ERR_NOMEM;
}

void ms_chunk_reset(ms_chunk *c) {
  for (size_t j = 0; j < c->schema->n_columns; j++) {
    size_t vs = ms_column_value_size(&c->schema->columns[j]);
    memset(c->cols[j].data, 0, vs * c->capacity);
    if (c->cols[j].valid) memset(c->cols[j].valid, 1, c->capacity);
  }
  c->n_rows = 0;
  c->first_row = 0;
}

int32_t ms_date_from_ymd(int y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return (int32_t)(era * 146097 + doe - 719468);
}

void ms_date_to_ymd(int32_t days, int *y, int *m, int *d) {
  int64_t z = (int64_t)days + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t yy = yoe + era * 400;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int64_t dd = doy - (153 * mp + 2) / 5 + 1;
  int64_t mm = mp + (mp < 10 ? 3 : -9);
  *y = (int)(yy + (mm <= 2));
  *m = (int)mm;
  *d = (int)dd;
}

static int days_in_month(int y, int m) {
  static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
  return dm[m - 1];
}

static int parse_digits(const char *s, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return 0;
}

static int parse_ymd(const char *s, int *y, int *m, int *d) {
  if (parse_digits(s, 4, y) || s[4] != '-' || parse_digits(s + 5, 2, m) || s[7] != '-' ||
      parse_digits(s + 8, 2, d))
    return -1;
  if (*m < 1 || *m > 12 || *d < 1 || *d > days_in_month(*y, *m)) return -1;
  return 0;
}

ms_status ms_date_parse(const char *s, int32_t *days) {
  int y, m, d;
  if (strlen(s) != 10 || parse_ymd(s, &y, &m, &d)) return MS_ERR_PARSE;
  *days = ms_date_from_ymd(y, m, d);
  return MS_OK;
}

ms_status ms_datetime_parse(const char *s, int64_t *secs) {
  int y, m, d, hh, mi, ss;
  size_t n = strlen(s);
  if (n != 19 && !(n == 20 && s[19] == 'Z')) return MS_ERR_PARSE;
  if (parse_ymd(s, &y, &m, &d) || (s[10] != 'T' && s[10] != ' ') || parse_digits(s + 11, 2, &hh) ||
      s[13] != ':' || parse_digits(s + 14, 2, &mi) || s[16] != ':' || parse_digits(s + 17, 2, &ss))
    return MS_ERR_PARSE;
  if (hh > 23 || mi > 59 || ss > 59) return MS_ERR_PARSE;
  *secs = (int64_t)ms_date_from_ymd(y, m, d) * 86400 + hh * 3600 + mi * 60 + ss;
  return MS_OK;
}

void ms_date_format(int32_t days, char *buf) {
  int y, m, d;
  ms_date_to_ymd(days, &y, &m, &d);
  snprintf(buf, MS_DATE_BUFSZ, "%04d-%02d-%02d", y, m, d);
}

void ms_datetime_format(int64_t secs, char *buf) {
  int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
  int64_t rem = secs - days * 86400;
  int y, m, d;
  ms_date_to_ymd((int32_t)days, &y, &m, &d);
  snprintf(buf, MS_DATE_BUFSZ, "%04d-%02d-%02dT%02d:%02d:%02dZ", y, m, d, (int)(rem / 3600),
           (int)(rem / 60 % 60), (int)(rem % 60));
}

int ms_datetime_format_pattern(int64_t secs, const char *pattern, char *buf, size_t cap) {
  int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
  int64_t rem = secs - days * 86400;
  int y, mo, d;
  ms_date_to_ymd((int32_t)days, &y, &mo, &d);
  int part[6] = {y, mo, d, (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60)};
  size_t n = 0;
  for (const char *p = pattern; *p; p++) {
    char tmp[16];
    int k;
    if (*p != '%') {
      tmp[0] = *p, tmp[1] = '\0', k = 1;
    } else {
      const char *conv = "YmdHMS";
      const char *at = p[1] ? strchr(conv, p[1]) : NULL;
      if (p[1] == '%') tmp[0] = '%', tmp[1] = '\0', k = 1;
      else if (!at) return -1;
      else k = snprintf(tmp, sizeof tmp, at == conv ? "%04d" : "%02d", part[at - conv]);
      p++;
    }
    if (n + (size_t)k + 1 > cap) return -1;
    memcpy(buf + n, tmp, (size_t)k);
    n += (size_t)k;
  }
  if (n >= cap) return -1;
  buf[n] = '\0';
  return (int)n;
}

ms_status ms_datetime_parse_pattern(const char *s, const char *pattern, int64_t *secs) {
  int part[6] = {-1, -1, -1, 0, 0, 0};
  for (const char *p = pattern; *p; p++) {
    if (*p != '%' || p[1] == '%') {
      if (*s++ != *p) return MS_ERR_PARSE;
      if (*p == '%') p++;
      continue;
    }
    const char *conv = "YmdHMS";
    const char *at = p[1] ? strchr(conv, p[1]) : NULL;
    if (!at) return MS_ERR_PARSE;
    p++;
    int want = at == conv ? 4 : 2, v = 0, got = 0;
    /* Day and month may be written with one digit ("3/5/2023"). */
    int lo = at == conv ? 4 : 1;
    while (got < want && *s >= '0' && *s <= '9') v = v * 10 + (*s++ - '0'), got++;
    if (got < lo) return MS_ERR_PARSE;
    part[at - conv] = v;
  }
  if (*s) return MS_ERR_PARSE;
  int y = part[0], mo = part[1], d = part[2];
  if (y < 1 || mo < 1 || mo > 12 || d < 1) return MS_ERR_PARSE;
  static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (d > mdays[mo - 1] + (mo == 2 && leap)) return MS_ERR_PARSE;
  if (part[3] > 23 || part[4] > 59 || part[5] > 59) return MS_ERR_PARSE;
  *secs = (int64_t)ms_date_from_ymd(y, mo, d) * 86400 + part[3] * 3600 + part[4] * 60 + part[5];
  return MS_OK;
}
