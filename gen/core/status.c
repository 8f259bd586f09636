/* Status names/texts and the diagnostics collector (see medsynth/status.h).
 *
 * The collector never fails: on allocation failure the entry is dropped and
 * counted in n_dropped, so error reporting cannot itself become an error. */
#include "medsynth/status.h"

#include "core/diag.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const status_names[] = {
#define MS__STATUS_NAME(name, text) "MS_" #name,
    MS_STATUS_TABLE(MS__STATUS_NAME)
#undef MS__STATUS_NAME
};
_Static_assert(sizeof status_names / sizeof *status_names == MS_STATUS_COUNT,
               "one name per ms_status");

static const char *const status_texts[] = {
#define MS__STATUS_TEXT(name, text) text,
    MS_STATUS_TABLE(MS__STATUS_TEXT)
#undef MS__STATUS_TEXT
};

const char *ms_status_name(ms_status s) {
  return (unsigned)s < MS_STATUS_COUNT ? status_names[s] : "MS_UNKNOWN";
}

const char *ms_strerror(ms_status s) {
  return (unsigned)s < MS_STATUS_COUNT ? status_texts[s] : "unknown status";
}

const char *ms_severity_name(ms_severity s) {
  static const char *const names[] = {"error", "warning", "note"};
  _Static_assert(sizeof names / sizeof *names == MS_SEV_COUNT, "one name per ms_severity");
  return (unsigned)s < MS_SEV_COUNT ? names[s] : "error";
}

void ms_diag_init(ms_diag *d) { memset(d, 0, sizeof *d); }

static void entry_free(ms_diag_entry *e) {
  free(e->file);
  free(e->where);
  free(e->message);
}

void ms_diag_clear(ms_diag *d) {
  for (size_t i = 0; i < d->count; i++) entry_free(&d->entries[i]);
  d->count = 0;
  d->n_errors = 0;
  d->n_dropped = 0;
}

void ms_diag_deinit(ms_diag *d) {
  if (!d) return;
  ms_diag_clear(d);
  free(d->entries);
  memset(d, 0, sizeof *d);
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

ms_status ms_diag_vadd(ms_diag *d, ms_status status, ms_severity sev, const char *file, int line,
                       int column, const char *where, const char *fmt, va_list ap) {
  if (!d) return status;
  if (sev == MS_SEV_ERROR) d->n_errors++;
  size_t limit = d->max_entries ? d->max_entries : 1000;
  if (d->count >= limit) {
    d->n_dropped++;
    return status;
  }
  if (d->count == d->capacity) {
    size_t cap = d->capacity ? d->capacity * 2 : 8;
    ms_diag_entry *ne = realloc(d->entries, cap * sizeof *ne);
    if (!ne) {
      d->n_dropped++;
      return status;
    }
    d->entries = ne;
    d->capacity = cap;
  }
  char *msg = NULL;
  if (vasprintf(&msg, fmt, ap) < 0) msg = NULL;
  ms_diag_entry *e = &d->entries[d->count];
  e->status = status;
  e->severity = sev;
  e->file = dup_or_null(file);
  e->line = line;
  e->column = column;
  e->where = dup_or_null(where);
  e->message = msg;
  if (!msg || (file && !e->file) || (where && !e->where)) {
    entry_free(e);
    d->n_dropped++;
    return status;
  }
  d->count++;
  return status;
}

ms_status ms_diag_add(ms_diag *d, ms_status status, const char *file, int line, int column,
                      const char *where, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ms_diag_vadd(d, status, MS_SEV_ERROR, file, line, column, where, fmt, ap);
  va_end(ap);
  return status;
}

void ms_diag_warn(ms_diag *d, const char *file, int line, int column, const char *where,
                  const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ms_diag_vadd(d, MS_OK, MS_SEV_WARNING, file, line, column, where, fmt, ap);
  va_end(ap);
}

void ms__diag_add_sev(ms_diag *d, ms_status st, ms_severity sev, const char *file, int line,
                      int col, const char *where, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ms_diag_vadd(d, st, sev, file, line, col, where, fmt, ap);
  va_end(ap);
}

void ms_diag_append(ms_diag *dst, const ms_diag *src) {
  if (!dst || !src) return;
  for (size_t i = 0; i < src->count; i++) {
    const ms_diag_entry *e = &src->entries[i];
    ms__diag_add_sev(dst, e->status, e->severity, e->file, e->line, e->column, e->where, "%s", e->message);
  }
  dst->n_dropped += src->n_dropped;
}

static int entry_cmp(const ms_diag_entry *a, const ms_diag_entry *b) {
  int c = strcmp(a->file ? a->file : "", b->file ? b->file : "");
  if (c) return c;
  if (a->line != b->line) return a->line < b->line ? -1 : 1;
  if (a->column != b->column) return a->column < b->column ? -1 : 1;
  return 0;
}

void ms_diag_sort(ms_diag *d) {
  /* Insertion sort: stable, and diag lists are short. */
  for (size_t i = 1; i < d->count; i++) {
    ms_diag_entry key = d->entries[i];
    size_t j = i;
    while (j > 0 && entry_cmp(&d->entries[j - 1], &key) > 0) {
      d->entries[j] = d->entries[j - 1];
      j--;
    }
    d->entries[j] = key;
  }
}

char *ms_diag_entry_format(const ms_diag_entry *e) {
  char pos[64] = "";
  if (e->line > 0 && e->column > 0)
    snprintf(pos, sizeof pos, ":%d:%d", e->line, e->column);
  else if (e->line > 0)
    snprintf(pos, sizeof pos, ":%d", e->line);
  char *out = NULL;
  int n = asprintf(&out, "%s%s%s%s: %s%s%s", e->file ? e->file : "", pos,
                   (e->file || pos[0]) ? ": " : "", ms_severity_name(e->severity),
                   e->where ? e->where : "", e->where ? ": " : "", e->message ? e->message : "");
  return n < 0 ? NULL : out;
}

char *ms_diag_format(const ms_diag *d) {
  size_t cap = 256, len = 0;
  char *buf = malloc(cap);
  if (!buf) return NULL;
  buf[0] = '\0';
  for (size_t i = 0; i <= d->count; i++) {
    char *line = NULL;
    if (i < d->count) {
      line = ms_diag_entry_format(&d->entries[i]);
    } else if (d->n_dropped) {
      if (asprintf(&line, "note: %zu further problem(s) not shown", d->n_dropped) < 0) line = NULL;
    }
    if (!line) continue;
    size_t l = strlen(line);
    if (len + l + 2 > cap) {
      while (len + l + 2 > cap) cap *= 2;
      char *nb = realloc(buf, cap);
      if (!nb) {
        free(line);
        free(buf);
        return NULL;
      }
      buf = nb;
    }
    memcpy(buf + len, line, l);
    len += l;
    buf[len++] = '\n';
    buf[len] = '\0';
    free(line);
  }
  return buf;
}

ms_status ms_diag_status(const ms_diag *d) {
  for (size_t i = 0; i < d->count; i++)
    if (d->entries[i].severity == MS_SEV_ERROR) return d->entries[i].status;
  return d->n_errors ? MS_ERR_INTERNAL : MS_OK;
}

ms_status ms__diag_nomem(ms_diag *d, const char *file, const char *where, const char *what) {
  return ms_diag_add(d, MS_ERR_NOMEM, file, 0, 0, where, "out of memory for %s", what);
}

size_t ms__diag_find(const ms_diag *d, size_t from, ms_status status) {
  if (!d) return SIZE_MAX;
  for (size_t i = from; i < d->count; i++)
    if (d->entries[i].severity == MS_SEV_ERROR && d->entries[i].status == status) return i;
  return SIZE_MAX;
}

void ms__diag_truncate(ms_diag *d, size_t count) {
  if (!d) return;
  while (d->count > count) {
    ms_diag_entry *e = &d->entries[--d->count];
    if (e->severity == MS_SEV_ERROR && d->n_errors) d->n_errors--;
    entry_free(e);
  }
}
