/* Member checks of parsed JSON objects (see core/jsoncheck.h). */
#include "core/jsoncheck.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/jsonloc.h"

/* Pointers and messages are built in fixed buffers; a longer one is cut,
 * which only shortens a diagnostic. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

static void report(const ms__jcheck *c, const char *ptr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void report(const ms__jcheck *c, const char *ptr, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  c->report(c->ctx, ptr, msg);
}

static void report_member(const ms__jcheck *c, const char *ptr, const char *key, const char *msg) {
  char p[1024];
  ms__jsonptr_key(p, sizeof p, ptr, key);
  c->report(c->ctx, p, msg);
}

/* Non-zero after reporting v outside [lo, hi] at the member: integer
 * bounds as whole numbers ("must be >= A" when hi is at least 9e15), others
 * as %g. */
static int out_of_range(const ms__jcheck *c, const char *ptr, const char *key, double v, double lo, double hi,
                        int integer) {
  if (v >= lo && v <= hi) return 0;
  char p[1024];
  ms__jsonptr_key(p, sizeof p, ptr, key);
  if (!integer)
    report(c, p, "must be between %g and %g", lo, hi);
  else if (hi >= 9e15)
    report(c, p, "must be >= %.0f", lo);
  else
    report(c, p, "must be between %.0f and %.0f", lo, hi);
  return 1;
}

const cJSON *ms__jc_get(const ms__jcheck *c, const cJSON *obj, const char *ptr, const char *key,
                        int required) {
  const cJSON *found = NULL;
  for (const cJSON *m = cJSON_IsObject(obj) ? obj->child : NULL; m; m = m->next) {
    if (strcmp(m->string, key)) continue;
    if (!c->dup_keys) {
      found = m;
      break;
    }
    if (found) {
      /* the locator finds the first copy, so report at the object */
      report(c, ptr, "key \"%s\" appears more than once", key);
      break;
    }
    found = m;
  }
  if (!found && required) report(c, ptr, "missing required key \"%s\"", key);
  return found;
}

const char *ms__jc_string(const ms__jcheck *c, const cJSON *obj, const char *ptr, const char *key,
                          int required) {
  const cJSON *m = ms__jc_get(c, obj, ptr, key, required);
  if (!m) return NULL;
  if (!cJSON_IsString(m)) {
    report_member(c, ptr, key, "must be a string");
    return NULL;
  }
  return m->valuestring;
}

int ms__jc_int(const ms__jcheck *c, const cJSON *obj, const char *ptr, const char *key,
               int required, double lo, double hi, int64_t *out) {
  const cJSON *m = ms__jc_get(c, obj, ptr, key, required);
  if (!m) return -1;
  if (!cJSON_IsNumber(m) || m->valuedouble != floor(m->valuedouble)) {
    report_member(c, ptr, key, "must be an integer");
    return -1;
  }
  if (out_of_range(c, ptr, key, m->valuedouble, lo, hi, 1)) return -1;
  *out = (int64_t)m->valuedouble;
  return 0;
}

int ms__jc_number(const ms__jcheck *c, const cJSON *obj, const char *ptr, const char *key,
                  int required, double *out) {
  const cJSON *m = ms__jc_get(c, obj, ptr, key, required);
  if (!m) return -1;
  if (!cJSON_IsNumber(m) || !isfinite(m->valuedouble)) {
    report_member(c, ptr, key, "must be a finite number");
    return -1;
  }
  *out = m->valuedouble;
  return 0;
}

int ms__jc_range(const ms__jcheck *c, const cJSON *obj, const char *ptr, const char *key,
                 int required, double lo, double hi, double *out) {
  double v;
  if (ms__jc_number(c, obj, ptr, key, required, &v)) return -1;
  if (out_of_range(c, ptr, key, v, lo, hi, 0)) return -1;
  *out = v;
  return 0;
}

int ms__jc_bool(const ms__jcheck *c, const cJSON *obj, const char *ptr, const char *key,
                int required, int *out) {
  const cJSON *m = ms__jc_get(c, obj, ptr, key, required);
  if (!m) return -1;
  if (!cJSON_IsBool(m)) {
    report_member(c, ptr, key, "must be true or false");
    return -1;
  }
  *out = cJSON_IsTrue(m);
  return 0;
}

int ms__jc_choice(const ms__jcheck *c, const cJSON *obj, const char *ptr, const char *key,
                  int required, int n, const char *(*name)(int), int *out) {
  const cJSON *m = ms__jc_get(c, obj, ptr, key, required);
  if (!m) return -1;
  for (int i = 0; cJSON_IsString(m) && i < n; i++)
    if (!strcmp(m->valuestring, name(i))) {
      *out = i;
      return 0;
    }
  char list[256];
  size_t len = 0;
  list[0] = 0;
  for (int i = 0; i < n && len < sizeof list; i++)
    len += (size_t)snprintf(list + len, sizeof list - len, "%s\"%s\"", i == 0 ? "" : i + 1 < n ? ", " : " or ",
                            name(i));
  char p[1024];
  ms__jsonptr_key(p, sizeof p, ptr, key);
  report(c, p, "must be %s", list);
  return -1;
}
