/* Private interface of the spec loader (records/spec*.c).
 *
 *   spec.c         driver: JSON syntax (pass 0), the document's top level,
 *                  the order of the passes, freeing, the public accessors;
 *   spec_fields.c  pass 1: keys, names, kinds, labels, vocabularies; the
 *                  storage layout and string templates;
 *   spec_expr.c    pass 2 of the fields: expressions, parameters,
 *                  distributions, bounds, missingness, "when" rules;
 *   spec_order.c   pass 2 of a table (filter, count, correlations), pass 3
 *                  (dependencies and order) and pass 4 (output schemas).
 *
 * Every pass reports through the validation context V below; see spec.c for
 * the order of the passes and the out-of-memory rule. */
#ifndef MS_RECORDS_SPEC_INT_H
#define MS_RECORDS_SPEC_INT_H

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/diag.h"
#include "core/jsoncheck.h"
#include "core/jsonloc.h"
#include "core/suggest.h"
#include "records/plan.h"

/* JSON pointers and messages are built in fixed buffers; a pointer longer
 * than its buffer is cut, which only shortens a diagnostic. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

/* ---- validation context -------------------------------------------------- */

typedef struct {
  ms_spec *s;
  ms_diag *d;
  size_t errs;
  int nomem;          /* an allocation failed (reported once) */
  int reads_nullable; /* the expression just compiled reads an ancestor's nullable field */
  /* where ancestor fields read by expressions are recorded, as
   * (table << 32 | field); NULL: not recorded */
  size_t **pdeps;
  size_t *n_pdeps;
  ms__jcheck jc; /* member checks, reporting through verr */
} V;

static inline void verr(V *v, const char *ptr, int at_key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static inline void verr(V *v, const char *ptr, int at_key, const char *fmt, ...) {
  if (v->nomem) { /* dropped at the end anyway; ptr may be a failed copy */
    v->errs++;
    return;
  }
  va_list ap;
  va_start(ap, fmt);
  ms__spec_verr(v->s, v->d, ptr, at_key, fmt, ap);
  va_end(ap);
  v->errs++;
}

/* An error inside a JSON string value: positioned at the byte `off` of the
 * decoded string when the raw string has no escapes (then they coincide),
 * else at the string's opening quote. */
static inline void verr_str(V *v, const char *ptr, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline void verr_str(V *v, const char *ptr, size_t off, const char *fmt, ...) {
  if (v->nomem) {
    v->errs++;
    return;
  }
  size_t at;
  int line = 0, col = 0;
  if (ms__jsonloc_find(v->s->text, v->s->len, ptr, 0, &at) == 0) {
    int esc = 0;
    for (size_t k = at + 1; k < v->s->len && v->s->text[k] != '"'; k++)
      if (v->s->text[k] == '\\') esc = 1;
    ms__jsonloc_linecol(v->s->text, v->s->len, esc ? at : at + 1 + off, &line, &col);
  }
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ms_diag_add(v->d, MS_ERR_SPEC, v->s->file, line, col, ptr, "%s", msg);
  v->errs++;
}

/* An allocation failed: reported once, naming what could not be allocated. */
static inline void oom(V *v, const char *what) {
  if (!v->nomem) ms__diag_nomem(v->d, v->s->file, NULL, what);
  v->nomem = 1;
  v->errs++;
}

/* Notes an allocation failure that a callee reported to the diag itself
 * (entries from `from` on). Returns v->nomem. */
static inline int nomem_since(V *v, size_t from) {
  if (!v->nomem && ms__diag_find(v->d, from, MS_ERR_NOMEM) != SIZE_MAX) {
    v->nomem = 1;
    v->errs++;
  }
  return v->nomem;
}

/* Copy of s (NULL for NULL); on failure NULL and oom(what). */
static inline char *vdup(V *v, const char *s, const char *what) {
  if (!s) return NULL;
  char *c = ms__strdup(s);
  if (!c) oom(v, what);
  return c;
}

static inline char *ptrf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline char *ptrf(const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return ms__strdup(buf);
}


static inline void check_keys(V *v, const cJSON *obj, const char *ptr, const char *const *allowed) {
  if (!v->nomem) v->errs += ms__spec_unknown_keys(v->s, v->d, obj, ptr, allowed);
}

/* Member checks (core/jsoncheck): problems go through verr. */
static inline void jc_report(void *ctx, const char *ptr, const char *msg) {
  verr(ctx, ptr, 0, "%s", msg);
}

static inline const cJSON *get(V *v, const cJSON *obj, const char *ptr, const char *key) {
  return ms__jc_get(&v->jc, obj, ptr, key, 0);
}

static inline const cJSON *need(V *v, const cJSON *obj, const char *ptr, const char *key) {
  return ms__jc_get(&v->jc, obj, ptr, key, 1);
}

static inline const char *get_string(V *v, const cJSON *obj, const char *ptr, const char *key,
                              int required) {
  return ms__jc_string(&v->jc, obj, ptr, key, required);
}

/* Integer-valued JSON number within [lo, hi]; returns 0 when present and ok. */
static inline int get_int(V *v, const cJSON *obj, const char *ptr, const char *key, int required,
                   double lo, double hi, int64_t *out) {
  return ms__jc_int(&v->jc, obj, ptr, key, required, lo, hi, out);
}

static inline int get_bool(V *v, const cJSON *obj, const char *ptr, const char *key, int *out) {
  return ms__jc_bool(&v->jc, obj, ptr, key, 0, out);
}

static inline int is_ident(const char *s) {
  if (!s || !*s) return 0;
  if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_')) return 0;
  for (const char *q = s + 1; *q; q++)
    if (!((*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') ||
          *q == '_'))
      return 0;
  return strlen(s) <= 63;
}

/* An unknown name among names[0..n) at ptr: "unknown <what> "name"" with
 * the closest name as a suggestion, else with the list of them all. */
static inline void verr_unknown(V *v, const char *ptr, const char *what, const char *name,
                                const char *const *names, size_t n) {
  const char *near = ms__closest(name, names, n);
  if (near) {
    verr(v, ptr, 0, "unknown %s \"%s\" (did you mean \"%s\"?)", what, name, near);
    return;
  }
  char all[512];
  size_t len = 0;
  all[0] = '\0';
  for (size_t i = 0; i < n && len < sizeof all; i++)
    len += (size_t)snprintf(all + len, sizeof all - len, "%s%s", i ? ", " : "", names[i]);
  verr(v, ptr, 0, "unknown %s \"%s\" (one of: %s)", what, name, all);
}

/* ---- the passes ------------------------------------------------------------ */

/* spec_fields.c */
void ms__spec_table_pass1(V *v, size_t ti, const cJSON *tj);
void ms__spec_templates(V *v, const cJSON *tj);
double *ms__spec_values_cum(V *v, const ms__field *f, const cJSON *vals, const char *ptr);
ms__vocab *ms__spec_vocab_get(V *v, const char *name, const char *ptr);

/* spec_expr.c */
ms__expr *ms__spec_compile_at(V *v, size_t ti, int count_scope, const char *src, const char *ptr,
                              ms__expr_type want, size_t **deps, size_t *nd);
void ms__spec_parse_dist(V *v, size_t ti, int count_scope, ms__dist *d, const cJSON *j,
                         const char *ptr, int count_dist, size_t **deps, size_t *nd);
void ms__spec_fields_pass2(V *v, size_t ti, const cJSON *tj);

/* spec_order.c */
void ms__spec_table_pass2(V *v, size_t ti, const cJSON *tj);
int ms__spec_build_schema(ms_spec *s, size_t ti);

#endif
