/* Spec loader: reads a JSON spec, validates every part of it (reporting every
 * problem at once with file:line:column and JSON Pointer), and compiles it
 * into the plan of records/plan.h that the generator runs.
 *
 * Passes:
 *   1. JSON nesting depth (at most MAX_NESTING levels, checked before any
 *      recursive parser or walk sees the text) and syntax (cJSON, end
 *      pointer -> line:column);
 *   2. shape: keys, types, names, kinds, distributions, labels, vocabularies
 *      (for every table and field, before any expression is compiled, so that
 *      expressions can refer to any field of any table);
 *   3. expressions, parameters, bounds, correlations;
 *   4. dependencies: cycles, topological order, position dependence;
 *   5. output schemas.
 * A pass runs only when the previous ones found no error where its input
 * would be meaningless (e.g. expressions are compiled only when every field
 * could be named and typed).
 *
 * Out of memory: the first allocation failure is reported once (oom) and
 * stops the passes that follow; the load then returns MS_ERR_NOMEM with the
 * problems found before the failure and that one message (what was reported
 * after it is dropped: a name that could not be copied makes later findings
 * unreliable, core/diag.h). Later code of the same pass meets NULL where the
 * allocation failed and must not dereference it.
 *
 * Invariants: the library never prints; cJSON is parsed on the calling
 * thread; positions come from core/jsonloc. Reference: docs/spec.md. */
#include <cjson/cJSON.h>
#include "core/alloc.h"
#include "core/diag.h"
#include <errno.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_matrix.h>
#include <limits.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "core/jsonloc.h"
#include "core/suggest.h"
#include "medsynth/rng.h"
#include "records/fhir.h"
#include "records/images.h"
#include "records/plan.h"

/* JSON pointers and messages are built in fixed buffers; a pointer longer
 * than its buffer is cut, which only shortens a diagnostic. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

/* Objects and arrays of a spec nest at most this deep (docs/spec.md). Real
 * specs need about ten levels; the limit keeps hostile input away from the
 * recursion in cJSON and in the locator (core/jsonloc). */
#define MAX_NESTING 64

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
} V;

static void verr(V *v, const char *ptr, int at_key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

void ms__spec_verr(const ms_spec *s, ms_diag *d, const char *ptr, int at_key, const char *fmt,
                   va_list ap) {
  int line = 0, col = 0;
  ms__jsonloc_pointer_linecol(s->text, s->len, ptr, at_key, &line, &col);
  char msg[1024];
  vsnprintf(msg, sizeof msg, fmt, ap);
  ms_diag_add(d, MS_ERR_SPEC, s->file, line, col, ptr && *ptr ? ptr : NULL, "%s", msg);
}

static void spec_err(const ms_spec *s, ms_diag *d, const char *ptr, int at_key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void spec_err(const ms_spec *s, ms_diag *d, const char *ptr, int at_key, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ms__spec_verr(s, d, ptr, at_key, fmt, ap);
  va_end(ap);
}

size_t ms__spec_unknown_keys(const ms_spec *s, ms_diag *d, const cJSON *obj, const char *ptr,
                             const char *const *allowed) {
  size_t n = ms__list_len(allowed), bad = 0;
  for (const cJSON *c = obj->child; c; c = c->next) {
    int ok = 0;
    for (size_t i = 0; i < n && !ok; i++) ok = !strcmp(c->string, allowed[i]);
    if (ok) continue;
    char p[1024];
    ms__jsonptr_key(p, sizeof p, ptr, c->string);
    const char *near = ms__closest(c->string, allowed, n);
    if (near)
      spec_err(s, d, p, 1, "unknown key \"%s\" (did you mean \"%s\"?)", c->string, near);
    else
      spec_err(s, d, p, 1, "unknown key \"%s\"", c->string);
    bad++;
  }
  return bad;
}

static void verr(V *v, const char *ptr, int at_key, const char *fmt, ...) {
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
static void verr_str(V *v, const char *ptr, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void verr_str(V *v, const char *ptr, size_t off, const char *fmt, ...) {
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
static void oom(V *v, const char *what) {
  if (!v->nomem) ms__diag_nomem(v->d, v->s->file, NULL, what);
  v->nomem = 1;
  v->errs++;
}

/* Notes an allocation failure that a callee reported to the diag itself
 * (entries from `from` on). Returns v->nomem. */
static int nomem_since(V *v, size_t from) {
  if (!v->nomem && ms__diag_find(v->d, from, MS_ERR_NOMEM) != SIZE_MAX) {
    v->nomem = 1;
    v->errs++;
  }
  return v->nomem;
}

/* Copy of s (NULL for NULL); on failure NULL and oom(what). */
static char *vdup(V *v, const char *s, const char *what) {
  if (!s) return NULL;
  char *c = ms__strdup(s);
  if (!c) oom(v, what);
  return c;
}

static char *ptrf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *ptrf(const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return ms__strdup(buf);
}


static void check_keys(V *v, const cJSON *obj, const char *ptr, const char *const *allowed) {
  if (!v->nomem) v->errs += ms__spec_unknown_keys(v->s, v->d, obj, ptr, allowed);
}

/* Case-sensitive member; reports duplicates of the same key once. */
static const cJSON *get(V *v, const cJSON *obj, const char *ptr, const char *key) {
  const cJSON *found = NULL;
  for (const cJSON *c = obj->child; c; c = c->next) {
    if (strcmp(c->string, key)) continue;
    if (found) {
      /* cJSON keeps both; the locator finds the first, so report at the object */
      verr(v, ptr, 0, "key \"%s\" appears more than once", key);
      break;
    }
    found = c;
  }
  return found;
}

static const cJSON *need(V *v, const cJSON *obj, const char *ptr, const char *key) {
  const cJSON *c = get(v, obj, ptr, key);
  if (!c) verr(v, ptr, 0, "missing required key \"%s\"", key);
  return c;
}

static const char *get_string(V *v, const cJSON *obj, const char *ptr, const char *key,
                              int required) {
  const cJSON *c = required ? need(v, obj, ptr, key) : get(v, obj, ptr, key);
  if (!c) return NULL;
  if (!cJSON_IsString(c)) {
    char p[1024];
    ms__jsonptr_key(p, sizeof p, ptr, key);
    verr(v, p, 0, "must be a string");
    return NULL;
  }
  return c->valuestring;
}

/* Integer-valued JSON number within [lo, hi]; returns 0 when present and ok. */
static int get_int(V *v, const cJSON *obj, const char *ptr, const char *key, int required,
                   double lo, double hi, int64_t *out) {
  const cJSON *c = required ? need(v, obj, ptr, key) : get(v, obj, ptr, key);
  if (!c) return -1;
  char p[1024];
  ms__jsonptr_key(p, sizeof p, ptr, key);
  if (!cJSON_IsNumber(c) || c->valuedouble != floor(c->valuedouble)) {
    verr(v, p, 0, "must be an integer");
    return -1;
  }
  if (c->valuedouble < lo || c->valuedouble > hi) {
    if (hi >= 9e15)
      verr(v, p, 0, "must be >= %.0f", lo);
    else
      verr(v, p, 0, "must be between %.0f and %.0f", lo, hi);
    return -1;
  }
  *out = (int64_t)c->valuedouble;
  return 0;
}

static int get_bool(V *v, const cJSON *obj, const char *ptr, const char *key, int *out) {
  const cJSON *c = get(v, obj, ptr, key);
  if (!c) return -1;
  if (!cJSON_IsBool(c)) {
    char p[1024];
    ms__jsonptr_key(p, sizeof p, ptr, key);
    verr(v, p, 0, "must be true or false");
    return -1;
  }
  *out = cJSON_IsTrue(c);
  return 0;
}

static int is_ident(const char *s) {
  if (!s || !*s) return 0;
  if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_')) return 0;
  for (const char *q = s + 1; *q; q++)
    if (!((*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') ||
          *q == '_'))
      return 0;
  return strlen(s) <= 63;
}

/* ---- kinds ------------------------------------------------------------- */

static const char *const kind_names[MS__K_COUNT + 1] = {
    "id", "string", "categorical", "integer", "real", "bool", "date", "datetime", "ref", NULL};

const char *ms__kind_name(ms__kind k) { return (unsigned)k < MS__K_COUNT ? kind_names[k] : "?"; }

static const char *const common_keys[] = {"name", "label", "kind", "description", "unit",
                                          "hidden", "missing", "when", "fhir", NULL};
static const char *const kind_keys[MS__K_COUNT][8] = {
    {"format", "prefix", "width", "start", NULL},
    {"template", NULL},
    {"values", "vocab", NULL},
    {"dist", "expr", "min", "max", NULL},
    {"dist", "expr", "min", "max", "precision", "format", NULL},
    {"p", "expr", NULL},
    {"base", "offset_days", "expr", "min", "max", "format", NULL},
    {"base", "offset_days", "expr", "min", "max", "format", NULL},
    {NULL},
};
/* Keys a "when" rule may override, per kind. */
static const char *const when_keys[MS__K_COUNT][6] = {
    {NULL},
    {NULL},
    {"values", NULL},
    {"dist", "expr", NULL},
    {"dist", "expr", NULL},
    {"p", "expr", NULL},
    {"base", "offset_days", "expr", NULL},
    {"base", "offset_days", "expr", NULL},
    {NULL},
};

static ms__expr_type kind_vtype(const ms__field *f) {
  switch (f->kind) {
    case MS__K_ID:
      return f->id_string ? MS__EXPR_STRING : MS__EXPR_NUMBER;
    case MS__K_STRING:
      return MS__EXPR_STRING;
    case MS__K_CATEGORICAL:
      return MS__EXPR_CATEGORICAL;
    case MS__K_BOOL:
      return MS__EXPR_BOOL;
    case MS__K_DATE:
      return MS__EXPR_DATE;
    case MS__K_DATETIME:
      return MS__EXPR_DATETIME;
    case MS__K_REF:
      return MS__EXPR_STRING; /* fixed up from the parent key */
    default:
      return MS__EXPR_NUMBER;
  }
}

/* ---- categorical labels --------------------------------------------------- */

static size_t label_index(const ms__field *f, const char *s) {
  for (size_t i = 0; i < f->n_labels; i++)
    if (!strcmp(f->labels[i], s)) return i;
  return SIZE_MAX;
}

static int add_label(ms__field *f, const char *s) {
  if (label_index(f, s) != SIZE_MAX) return 0;
  char **nl = ms__realloc(f->labels, (f->n_labels + 1) * sizeof *nl);
  if (!nl) return -1;
  f->labels = nl;
  f->labels[f->n_labels] = ms__strdup(s);
  if (!f->labels[f->n_labels]) return -1;
  f->n_labels++;
  return 0;
}

/* Collects labels of a "values" object (pass 1). */
static void values_labels(V *v, ms__field *f, const cJSON *vals, const char *ptr) {
  if (!cJSON_IsObject(vals)) {
    verr(v, ptr, 0, "must be an object mapping each value to its weight");
    return;
  }
  if (!vals->child) {
    verr(v, ptr, 0, "must list at least one value");
    return;
  }
  for (const cJSON *c = vals->child; c; c = c->next) {
    if (!*c->string) {
      char p[1024];
      ms__jsonptr_key(p, sizeof p, ptr, c->string);
      verr(v, p, 1, "value label must not be empty");
      continue;
    }
    if (add_label(f, c->string)) {
      oom(v, "the labels of a categorical field");
      return;
    }
  }
}

/* Cumulative weights of a "values" object over the field's labels (pass 2). */
static double *values_cum(V *v, const ms__field *f, const cJSON *vals, const char *ptr) {
  if (!cJSON_IsObject(vals) || !vals->child) return NULL;
  double *w = ms__calloc(f->n_labels ? f->n_labels : 1, sizeof *w);
  if (!w) {
    oom(v, "the weights of a categorical field");
    return NULL;
  }
  double tot = 0;
  int bad = 0;
  for (const cJSON *c = vals->child; c; c = c->next) {
    char p[1024];
    ms__jsonptr_key(p, sizeof p, ptr, c->string);
    if (!cJSON_IsNumber(c) || !isfinite(c->valuedouble) || c->valuedouble < 0) {
      verr(v, p, 0, "weight must be a number >= 0");
      bad = 1;
      continue;
    }
    size_t li = label_index(f, c->string);
    if (li == SIZE_MAX) continue;
    if (w[li] > 0) {
      verr(v, p, 1, "value \"%s\" listed twice", c->string);
      bad = 1;
    }
    w[li] += c->valuedouble;
    tot += c->valuedouble;
  }
  if (!bad && !(tot > 0)) {
    verr(v, ptr, 0, "weights must not all be zero");
    bad = 1;
  }
  if (bad) {
    free(w);
    return NULL;
  }
  /* cumulative shares; the last label with positive weight ends at exactly 1
   * so that a uniform draw in (0, 1) always finds a label */
  double acc = 0;
  size_t last = 0;
  for (size_t i = 0; i < f->n_labels; i++) {
    if (w[i] > 0) last = i;
    acc += w[i] / tot;
    w[i] = acc;
  }
  for (size_t i = last; i < f->n_labels; i++) w[i] = 1.0;
  return w;
}

static ms__vocab *vocab_get(V *v, const char *name, const char *ptr) {
  ms_spec *s = v->s;
  for (size_t i = 0; i < s->n_vocabs; i++)
    if (!strcmp(s->vocabs[i].name, name)) return s->vocabs[i].v;
  ms__vocab_search se = {.spec_dir = s->dir,
#ifdef MS_DATA_DIR
                         .data_dir = MS_DATA_DIR "/vocab",
#else
                         .data_dir = "/usr/local/share/medsynth/schemas/vocab",
#endif
#ifdef MS_SOURCE_DIR_DEFAULT
                         .source_dir = MS_SOURCE_DIR_DEFAULT "/schemas/vocab"
#else
                         .source_dir = NULL
#endif
  };
  char *path = NULL;
  size_t before = v->d->n_errors, before_count = v->d->count;
  int line, col;
  ms__jsonloc_pointer_linecol(s->text, s->len, ptr, 0, &line, &col);
  ms_diag tmp;
  ms_diag_init(&tmp);
  ms_status st = ms__vocab_resolve(name, &se, &path, &tmp, ptr);
  if (st == MS_ERR_NOMEM) {
    ms_diag_deinit(&tmp);
    oom(v, "a vocabulary path");
    return NULL;
  }
  if (st != MS_OK) {
    /* re-issue with the spec position */
    for (size_t i = 0; i < tmp.count; i++)
      ms_diag_add(v->d, MS_ERR_SPEC, s->file, line, col, ptr, "%s", tmp.entries[i].message);
    if (!tmp.count)
      ms_diag_add(v->d, MS_ERR_SPEC, s->file, line, col, ptr, "unknown vocabulary \"%s\"", name);
    ms_diag_deinit(&tmp);
    v->errs++;
    return NULL;
  }
  ms_diag_deinit(&tmp);
  ms__vocab *vo = NULL;
  if (ms__vocab_load(&vo, path, v->d) != MS_OK) {
    v->errs += v->d->n_errors - before + 1;
    nomem_since(v, before_count);
    free(path);
    return NULL;
  }
  ms__vocab_ref *nv = ms__realloc(s->vocabs, (s->n_vocabs + 1) * sizeof *nv);
  char *nm = nv ? ms__strdup(name) : NULL;
  if (nv) s->vocabs = nv;
  if (!nm) {
    ms__vocab_free(vo);
    free(path);
    oom(v, "the spec's vocabulary list");
    return NULL;
  }
  s->vocabs[s->n_vocabs].name = nm;
  s->vocabs[s->n_vocabs].path = path;
  s->vocabs[s->n_vocabs].v = vo;
  s->n_vocabs++;
  return vo;
}

/* "vocab": {"name", "value", "weight"} -> labels and base cumulative weights. */
static void vocab_field(V *v, ms__field *f, const cJSON *vj, const char *ptr) {
  static const char *const keys[] = {"name", "value", "weight", NULL};
  if (!cJSON_IsObject(vj)) {
    verr(v, ptr, 0, "must be an object {\"name\", \"value\", \"weight\"}");
    return;
  }
  check_keys(v, vj, ptr, keys);
  const char *name = get_string(v, vj, ptr, "name", 1);
  const char *value = get_string(v, vj, ptr, "value", 1);
  const char *weight = get_string(v, vj, ptr, "weight", 0);
  if (!name || !value) return;
  char pn[1024];
  ms__jsonptr_key(pn, sizeof pn, ptr, "name");
  ms__vocab *vo = vocab_get(v, name, pn);
  if (!vo) return;
  int line, col;
  char pv[1024];
  ms__jsonptr_key(pv, sizeof pv, ptr, "value");
  ms__jsonloc_pointer_linecol(v->s->text, v->s->len, pv, 0, &line, &col);
  size_t before = v->d->n_errors, before_count = v->d->count;
  size_t vc = ms__vocab_col_require(vo, value, v->d, v->s->file, line, col, pv);
  size_t wc = SIZE_MAX;
  if (weight) {
    char pw[1024];
    ms__jsonptr_key(pw, sizeof pw, ptr, "weight");
    ms__jsonloc_pointer_linecol(v->s->text, v->s->len, pw, 0, &line, &col);
    wc = ms__vocab_col_require(vo, weight, v->d, v->s->file, line, col, pw);
    if (wc == SIZE_MAX) v->errs++;
  }
  if (vc == SIZE_MAX) {
    v->errs++;
    return;
  }
  size_t n = ms__vocab_n_rows(vo);
  if (n == 0) {
    verr(v, pn, 0, "vocabulary \"%s\" has no rows", name);
    return;
  }
  /* the value column must be a key (unique, non-empty) */
  if (ms__vocab_index_build(vo, vc, v->d) != MS_OK) {
    v->errs += v->d->n_errors - before;
    nomem_since(v, before_count);
    return;
  }
  double *w = ms__malloc(n * sizeof *w);
  if (!w) {
    oom(v, "vocabulary weights");
    return;
  }
  if (wc != SIZE_MAX) {
    if (ms__vocab_col_numbers(vo, wc, 0, w, v->d) != MS_OK) {
      v->errs++;
      nomem_since(v, before_count);
      free(w);
      return;
    }
  } else {
    for (size_t i = 0; i < n; i++) w[i] = 1.0;
  }
  const char *const *cells = ms__vocab_col_strings(vo, vc);
  f->labels = ms__calloc(n, sizeof *f->labels);
  if (!f->labels) {
    oom(v, "the labels of a vocabulary field");
    free(w);
    return;
  }
  double tot = 0;
  for (size_t i = 0; i < n; i++) {
    f->labels[i] = ms__strdup(cells[i]);
    if (!f->labels[i]) {
      oom(v, "the labels of a vocabulary field");
      free(w);
      return;
    }
    f->n_labels++;
    if (!(w[i] >= 0) || !isfinite(w[i])) {
      char pw[1024];
      ms__jsonptr_key(pw, sizeof pw, ptr, "weight");
      verr(v, pw, 0, "vocabulary \"%s\" row %zu: weight must be >= 0", name, i + 1);
      free(w);
      return;
    }
    tot += w[i];
  }
  if (!(tot > 0)) {
    verr(v, ptr, 0, "vocabulary weights must not all be zero");
    free(w);
    return;
  }
  double acc = 0;
  size_t last = 0;
  for (size_t i = 0; i < n; i++) {
    if (w[i] > 0) last = i;
    acc += w[i] / tot;
    w[i] = acc;
  }
  for (size_t i = last; i < n; i++) w[i] = 1.0;
  f->base.cum = w;
}

/* ---- pass 1: shapes --------------------------------------------------------- */

static void field_pass1(V *v, ms__table *t, ms__field *f, const cJSON *fj, const char *fptr) {
  f->ptr = vdup(v, fptr, "a field");
  f->precision = -1;
  f->cop_group = -1;
  f->ref_field = SIZE_MAX;
  f->kind = MS__K_COUNT;
  f->broken = 1;
  if (!cJSON_IsObject(fj)) {
    verr(v, fptr, 0, "must be an object");
    return;
  }
  const char *name = get_string(v, fj, fptr, "name", 1);
  if (name) {
    char p[1024];
    ms__jsonptr_key(p, sizeof p, fptr, "name");
    if (!is_ident(name))
      verr(v, p, 0, "field name \"%s\" must be an identifier (letters, digits, _; not starting with a digit; at most 63 characters)",
           name);
    else if (!strcmp(name, "parent"))
      verr(v, p, 0, "\"parent\" is reserved (it names the parent row in expressions)");
    else
      f->broken = 0;
    f->name = vdup(v, name, "a field name");
    if (!f->name) f->broken = 1;
  }
  const char *kind = get_string(v, fj, fptr, "kind", 1);
  if (!kind) f->broken = 1;
  if (kind) {
    for (int k = 0; k < MS__K_COUNT; k++)
      if (!strcmp(kind, kind_names[k])) f->kind = (ms__kind)k;
    if (f->kind == MS__K_COUNT) {
      f->broken = 1;
      char p[1024];
      ms__jsonptr_key(p, sizeof p, fptr, "kind");
      const char *near = ms__closest(kind, kind_names, MS__K_COUNT);
      if (near)
        verr(v, p, 0, "unknown field kind \"%s\" (did you mean \"%s\"?)", kind, near);
      else
        verr(v, p, 0,
             "unknown field kind \"%s\" (one of: id, string, categorical, integer, real, bool, date, datetime, ref)",
             kind);
    }
  }
  const char *allowed[24];
  size_t na = 0;
  for (size_t i = 0; common_keys[i]; i++) allowed[na++] = common_keys[i];
  if (f->kind != MS__K_COUNT)
    for (size_t i = 0; kind_keys[f->kind][i]; i++) allowed[na++] = kind_keys[f->kind][i];
  allowed[na] = NULL;
  if (f->kind != MS__K_COUNT) check_keys(v, fj, fptr, allowed);

  int hidden = 0;
  if (get_bool(v, fj, fptr, "hidden", &hidden) == 0) f->hidden = hidden;
  f->unit = vdup(v, get_string(v, fj, fptr, "unit", 0), "a field's unit");
  f->description = vdup(v, get_string(v, fj, fptr, "description", 0), "a field's description");
  const char *label = get_string(v, fj, fptr, "label", 0);
  if (label) {
    char p[1024];
    ms__jsonptr_key(p, sizeof p, fptr, "label");
    if (!*label) verr(v, p, 0, "label must not be empty");
    else f->label = vdup(v, label, "a field's label");
  }
  if (f->kind == MS__K_REAL || f->kind == MS__K_DATE || f->kind == MS__K_DATETIME) {
    const char *fmt = get_string(v, fj, fptr, "format", 0);
    if (fmt) {
      char p[1024];
      ms__jsonptr_key(p, sizeof p, fptr, "format");
      char probe[MS_DATE_BUFSZ * 4];
      if (f->kind == MS__K_REAL && strcmp(fmt, "fixed") && strcmp(fmt, "trim") && strcmp(fmt, "trim.0"))
        verr(v, p, 0, "unknown real format \"%s\" (one of: fixed, trim, trim.0)", fmt);
      else if (f->kind != MS__K_REAL &&
               (ms_datetime_format_pattern(0, fmt, probe, sizeof probe) < 0 || !strstr(fmt, "%Y") ||
                !strstr(fmt, "%m") || !strstr(fmt, "%d")))
        verr(v, p, 0,
             "date format \"%s\" must hold %%Y, %%m and %%d (and may hold %%H, %%M, %%S, %%%%)", fmt);
      else
        f->fmt = vdup(v, fmt, "a field's format");
    }
  }
  int64_t iv;
  if (get_int(v, fj, fptr, "precision", 0, 0, 15, &iv) == 0) f->precision = (int)iv;

  if (f->kind == MS__K_ID) {
    const char *fmt = get_string(v, fj, fptr, "format", 0);
    if (fmt) {
      if (!strcmp(fmt, "hash"))
        f->id_hash = 1;
      else if (strcmp(fmt, "seq")) {
        char p[1024];
        ms__jsonptr_key(p, sizeof p, fptr, "format");
        verr(v, p, 0, "unknown id format \"%s\" (one of: seq, hash)", fmt);
      }
    }
    f->prefix = vdup(v, get_string(v, fj, fptr, "prefix", 0), "an id prefix");
    f->width = 0;
    if (get_int(v, fj, fptr, "width", 0, f->id_hash ? 4 : 1, f->id_hash ? 16 : 19, &iv) == 0)
      f->width = (int)iv;
    else if (f->id_hash)
      f->width = 16;
    f->start = f->id_hash ? 0 : 1;
    if (get_int(v, fj, fptr, "start", 0, -1e15, 1e15, &iv) == 0) {
      f->start = iv;
      if (f->id_hash) {
        char p[1024];
        ms__jsonptr_key(p, sizeof p, fptr, "start");
        verr(v, p, 1, "\"start\" applies to seq ids only");
      }
    }
    f->id_string = f->id_hash || f->prefix || get(v, fj, fptr, "width");
  }
  if (f->kind == MS__K_CATEGORICAL) {
    const cJSON *vals = get(v, fj, fptr, "values"), *voc = get(v, fj, fptr, "vocab");
    char p[1024];
    if (vals && voc) {
      ms__jsonptr_key(p, sizeof p, fptr, "vocab");
      verr(v, p, 1, "give either \"values\" or \"vocab\", not both");
    } else if (!vals && !voc) {
      verr(v, fptr, 0, "categorical field needs \"values\" or \"vocab\"");
    } else if (vals) {
      ms__jsonptr_key(p, sizeof p, fptr, "values");
      values_labels(v, f, vals, p);
    } else {
      ms__jsonptr_key(p, sizeof p, fptr, "vocab");
      vocab_field(v, f, voc, p);
    }
    /* labels introduced by "when" rules */
    const cJSON *when = get(v, fj, fptr, "when");
    if (cJSON_IsArray(when)) {
      int wi = 0;
      for (const cJSON *r = when->child; r; r = r->next, wi++) {
        const cJSON *rv = cJSON_IsObject(r) ? cJSON_GetObjectItemCaseSensitive(r, "values") : NULL;
        if (rv && cJSON_IsObject(rv)) {
          char wp[1024];
          snprintf(wp, sizeof wp, "%s/when/%d/values", fptr, wi);
          if (voc) {
            for (const cJSON *c = rv->child; c; c = c->next)
              if (label_index(f, c->string) == SIZE_MAX) {
                char lp[1024];
                ms__jsonptr_key(lp, sizeof lp, wp, c->string);
                verr(v, lp, 1, "\"%s\" is not a value of the field's vocabulary", c->string);
              }
          } else {
            values_labels(v, f, rv, wp);
          }
        }
      }
    }
    if (f->n_labels == 0) f->broken = 1;
  }
  (void)t;
}

static const char *const table_keys[] = {"name", "description", "rows", "parent", "count",
                                         "filter", "max_candidates", "fields", "correlations",
                                         "images", "fhir", NULL};

static void table_pass1(V *v, size_t ti, const cJSON *tj) {
  ms_spec *s = v->s;
  ms__table *t = &s->tables[ti];
  char tptr[256];
  snprintf(tptr, sizeof tptr, "/tables/%zu", ti);
  t->ptr = vdup(v, tptr, "a table");
  t->parent = SIZE_MAX;
  t->key_field = SIZE_MAX;
  t->broken = 1;
  if (!cJSON_IsObject(tj)) {
    verr(v, tptr, 0, "must be an object");
    return;
  }
  check_keys(v, tj, tptr, table_keys);
  size_t errs0 = v->errs;
  const char *name = get_string(v, tj, tptr, "name", 1);
  if (name) {
    char p[300];
    ms__jsonptr_key(p, sizeof p, tptr, "name");
    if (!is_ident(name))
      verr(v, p, 0, "table name \"%s\" must be an identifier (letters, digits, _)", name);
    for (size_t j = 0; j < ti; j++)
      if (s->tables[j].name && s->tables[j].ptr && !strcmp(s->tables[j].name, name)) {
        int l, c;
        ms__jsonloc_pointer_linecol(s->text, s->len, s->tables[j].ptr, 0, &l, &c);
        verr(v, p, 0, "duplicate table name \"%s\" (first defined at line %d)", name, l);
      }
    t->name = vdup(v, name, "a table name");
  }
  int bad_struct = !name || v->errs != errs0;
  t->description = vdup(v, get_string(v, tj, tptr, "description", 0), "a table's description");
  const char *parent = get_string(v, tj, tptr, "parent", 0);
  if (parent) {
    char p[300];
    ms__jsonptr_key(p, sizeof p, tptr, "parent");
    const char *names[256];
    size_t nn = 0;
    for (size_t j = 0; j < ti; j++)
      if (s->tables[j].name && !strcmp(s->tables[j].name, parent)) t->parent = j;
    for (size_t j = 0; j < s->n_tables && nn < 255; j++)
      if (j != ti && s->tables[j].name) names[nn++] = s->tables[j].name;
    if (t->parent == SIZE_MAX) {
      int later = 0;
      for (const cJSON *o = tj->next; o; o = o->next) {
        const cJSON *on = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, "name") : NULL;
        if (cJSON_IsString(on) && !strcmp(on->valuestring, parent)) later = 1;
      }
      if (later)
        verr(v, p, 0, "parent table \"%s\" must be declared before its child tables", parent);
      else if (name && !strcmp(parent, name))
        verr(v, p, 0, "a table cannot be its own parent");
      else {
        const char *near = ms__closest(parent, names, nn);
        if (near)
          verr(v, p, 0, "unknown parent table \"%s\" (did you mean \"%s\"?)", parent, near);
        else
          verr(v, p, 0, "unknown parent table \"%s\"", parent);
      }
      bad_struct = 1;
    } else {
      if (s->tables[t->parent].broken) bad_struct = 1;
      t->depth = s->tables[t->parent].depth + 1;
      if (t->depth > 6) verr(v, p, 0, "tables nest at most 6 levels deep");
    }
  }
  int64_t iv;
  const cJSON *rows = get(v, tj, tptr, "rows");
  if (parent) {
    if (rows) {
      char p[300];
      ms__jsonptr_key(p, sizeof p, tptr, "rows");
      verr(v, p, 1, "\"rows\" applies to root tables only; a child table's rows come from \"count\"");
    }
    if (!get(v, tj, tptr, "count"))
      verr(v, tptr, 0, "child table needs \"count\" (children per parent row)");
    if (get(v, tj, tptr, "filter")) {
      char p[300];
      ms__jsonptr_key(p, sizeof p, tptr, "filter");
      verr(v, p, 1, "\"filter\" applies to root tables only");
    }
  } else {
    if (get_int(v, tj, tptr, "rows", 0, -9e18, 9e15, &iv) == 0) {
      if (iv <= 0) {
        char p[300];
        ms__jsonptr_key(p, sizeof p, tptr, "rows");
        verr(v, p, 0, "must be > 0");
      }
      t->rows = iv > 0 ? (uint64_t)iv : 0;
    } else if (!rows) {
      verr(v, tptr, 0, "missing required key \"rows\" (rows of a root table)");
    }
    if (get(v, tj, tptr, "count")) {
      char p[300];
      ms__jsonptr_key(p, sizeof p, tptr, "count");
      verr(v, p, 1, "\"count\" applies to child tables (with \"parent\") only");
    }
  }
  if (get_int(v, tj, tptr, "max_candidates", 0, 1, 9e15, &iv) == 0) t->max_candidates = (uint64_t)iv;

  const cJSON *fields = need(v, tj, tptr, "fields");
  if (!fields) return;
  char fsp[300];
  ms__jsonptr_key(fsp, sizeof fsp, tptr, "fields");
  if (!cJSON_IsArray(fields)) {
    verr(v, fsp, 0, "must be an array of fields");
    return;
  }
  size_t n = (size_t)cJSON_GetArraySize(fields);
  if (n == 0) {
    verr(v, fsp, 0, "a table needs at least one field");
    return;
  }
  t->fields = ms__calloc(n, sizeof *t->fields);
  if (!t->fields) {
    oom(v, "a table's fields");
    return;
  }
  t->n_fields = n;
  size_t fi = 0;
  for (const cJSON *fj = fields->child; fj; fj = fj->next, fi++) {
    char fptr[300];
    snprintf(fptr, sizeof fptr, "%s/%zu", fsp, fi);
    ms__field *f = &t->fields[fi];
    field_pass1(v, t, f, fj, fptr);
    if (f->name)
      for (size_t j = 0; j < fi; j++)
        if (t->fields[j].name && t->fields[j].ptr && !strcmp(t->fields[j].name, f->name)) {
          char p[320];
          ms__jsonptr_key(p, sizeof p, fptr, "name");
          int l, c;
          ms__jsonloc_pointer_linecol(s->text, s->len, t->fields[j].ptr, 0, &l, &c);
          verr(v, p, 0, "duplicate field name \"%s\" (first defined at line %d)", f->name, l);
          bad_struct = 1;
          break;
        }
    const char *out_name = f->label ? f->label : f->name;
    for (size_t j = 0; out_name && j < fi; j++) {
      const char *o = t->fields[j].label ? t->fields[j].label : t->fields[j].name;
      if (o && !strcmp(o, out_name) && (f->label || t->fields[j].label)) {
        char p[320];
        ms__jsonptr_key(p, sizeof p, fptr, f->label ? "label" : "name");
        verr(v, p, 0, "output column \"%s\" is already written by field \"%s\"", out_name,
             t->fields[j].name ? t->fields[j].name : "?");
        break;
      }
    }
    if (f->kind == MS__K_ID && t->key_field == SIZE_MAX) t->key_field = fi;
    if (f->name && t->name) {
      char sn[300];
      snprintf(sn, sizeof sn, "%s/%s", t->name, f->name);
      f->stream = ms_rng_stream(sn);
    }
    f->vtype = kind_vtype(f);
  }
  t->broken = bad_struct;
  if (t->name) {
    char sn[300];
    snprintf(sn, sizeof sn, "%s/#count", t->name);
    t->count_stream = ms_rng_stream(sn);
  }
}

/* ---- storage of field values ------------------------------------------------ */

static void set_layout(ms_spec *s, ms__table *t, ms__field *f) {
  switch (f->kind) {
    case MS__K_ID:
      f->vtype = f->id_string ? MS__EXPR_STRING : MS__EXPR_NUMBER;
      f->layout = f->id_string ? MS__EXPR_LAYOUT_STR_FIXED : MS__EXPR_LAYOUT_I64;
      break;
    case MS__K_STRING:
      f->vtype = MS__EXPR_STRING;
      f->layout = MS__EXPR_LAYOUT_STR_FIXED;
      break;
    case MS__K_CATEGORICAL:
      f->vtype = MS__EXPR_CATEGORICAL;
      f->layout = MS__EXPR_LAYOUT_I32;
      break;
    case MS__K_INTEGER:
      f->vtype = MS__EXPR_NUMBER;
      f->layout = MS__EXPR_LAYOUT_I64;
      break;
    case MS__K_REAL:
      f->vtype = MS__EXPR_NUMBER;
      f->layout = MS__EXPR_LAYOUT_F64;
      break;
    case MS__K_BOOL:
      f->vtype = MS__EXPR_BOOL;
      f->layout = MS__EXPR_LAYOUT_U8;
      break;
    case MS__K_DATE:
      f->vtype = MS__EXPR_DATE;
      f->layout = MS__EXPR_LAYOUT_I32;
      break;
    case MS__K_DATETIME:
      f->vtype = MS__EXPR_DATETIME;
      f->layout = MS__EXPR_LAYOUT_I64;
      break;
    case MS__K_REF:
      if (t->parent != SIZE_MAX && s->tables[t->parent].key_field != SIZE_MAX) {
        const ms__field *k = &s->tables[t->parent].fields[s->tables[t->parent].key_field];
        f->vtype = k->vtype;
        f->layout = k->layout;
        f->id_string = k->id_string;
      } else {
        f->vtype = MS__EXPR_NUMBER;
        f->layout = MS__EXPR_LAYOUT_I64;
      }
      break;
    case MS__K_COUNT:
      f->vtype = MS__EXPR_NUMBER;
      f->layout = MS__EXPR_LAYOUT_F64;
      break;
  }
}

/* ---- string templates --------------------------------------------------------- */

static size_t field_str_width(ms_spec *s, ms__table *t, size_t fi, int depth);

static size_t digits_i64(int64_t v) {
  char b[32];
  return (size_t)snprintf(b, sizeof b, "%lld", (long long)v);
}

static size_t value_text_width(ms_spec *s, ms__table *t, size_t fi, int depth) {
  ms__field *f = &t->fields[fi];
  switch (f->layout) {
    case MS__EXPR_LAYOUT_STR_FIXED:
      return field_str_width(s, t, fi, depth + 1);
    case MS__EXPR_LAYOUT_I32:
      if (f->kind == MS__K_CATEGORICAL) {
        size_t w = 0;
        for (size_t i = 0; i < f->n_labels; i++)
          if (strlen(f->labels[i]) > w) w = strlen(f->labels[i]);
        return w;
      }
      return 10; /* YYYY-MM-DD */
    case MS__EXPR_LAYOUT_U8:
      return 5;
    case MS__EXPR_LAYOUT_I64:
      return f->kind == MS__K_DATETIME ? 20 : 20;
    default:
      return 24;
  }
}

static size_t field_str_width(ms_spec *s, ms__table *t, size_t fi, int depth) {
  ms__field *f = &t->fields[fi];
  if (depth > 64) return 0;
  if (f->kind == MS__K_ID) {
    size_t w = f->prefix ? strlen(f->prefix) : 0;
    if (f->id_hash) return w + (size_t)f->width;
    size_t dw = digits_i64(f->start + (int64_t)1e15);
    return w + ((size_t)f->width > dw ? (size_t)f->width : dw);
  }
  if (f->kind == MS__K_REF && t->parent != SIZE_MAX) {
    ms__table *p = &s->tables[t->parent];
    return p->key_field == SIZE_MAX ? 0 : field_str_width(s, p, p->key_field, depth + 1);
  }
  if (f->kind == MS__K_STRING) {
    if (f->str_width) return f->str_width;
    size_t w = 0;
    for (size_t i = 0; i < f->n_parts; i++) {
      const ms__tpart *p = &f->parts[i];
      switch (p->kind) {
        case MS__TP_TEXT: w += strlen(p->text); break;
        case MS__TP_SEQ:
        case MS__TP_ROW: w += (size_t)(p->width > 20 ? p->width : 20); break;
        case MS__TP_FIELD: w += value_text_width(s, t, p->field, depth); break;
        default: w += (size_t)p->width; break;
      }
    }
    return w;
  }
  return 0;
}

/* Parses a template into parts; field names are resolved against table t. */
static void parse_template(V *v, ms__table *t, ms__field *f, const char *tpl, const char *ptr) {
  const char *q = tpl;
  char text[1024];
  size_t tl = 0;
  ms__tpart parts[64];
  size_t np = 0;
#define FLUSH()                                             \
  do {                                                      \
    if (tl && np < 64) {                                    \
      text[tl] = '\0';                                      \
      parts[np].kind = MS__TP_TEXT;                         \
      parts[np].text = ms__strdup(text);                    \
      if (parts[np].text)                                   \
        np++;                                               \
      else                                                  \
        oom(v, "a template");                               \
    }                                                       \
    tl = 0;                                                 \
  } while (0)
  while (*q) {
    if ((q[0] == '{' && q[1] == '{') || (q[0] == '}' && q[1] == '}')) {
      if (tl < sizeof text - 1) text[tl++] = q[0];
      q += 2;
      continue;
    }
    if (*q == '}') {
      verr_str(v, ptr, (size_t)(q - tpl), "template: unmatched '}' at offset %zu (write '}}' for a literal brace)",
           (size_t)(q - tpl));
      break;
    }
    if (*q != '{') {
      if (tl < sizeof text - 1) text[tl++] = *q;
      q++;
      continue;
    }
    const char *e = strchr(q, '}');
    if (!e) {
      verr_str(v, ptr, (size_t)(q - tpl), "template: unclosed '{' at offset %zu", (size_t)(q - tpl));
      break;
    }
    FLUSH();
    char inner[128];
    size_t il = (size_t)(e - q - 1);
    if (il >= sizeof inner) il = sizeof inner - 1;
    memcpy(inner, q + 1, il);
    inner[il] = '\0';
    char *colon = strchr(inner, ':');
    const char *spec = NULL;
    if (colon) {
      *colon = '\0';
      spec = colon + 1;
    }
    ms__tpart p = {0};
    int w = 0, zero = 0, spec_ok = 1;
    if (spec) {
      zero = spec[0] == '0';
      char *end;
      long lw = strtol(spec, &end, 10);
      if (*end || lw < 1 || lw > 64 || !*spec) spec_ok = 0;
      w = (int)lw;
    }
    if (!strcmp(inner, "seq") || !strcmp(inner, "row")) {
      p.kind = inner[0] == 's' ? MS__TP_SEQ : MS__TP_ROW;
      if (!spec_ok) verr_str(v, ptr, (size_t)(q - tpl), "template: bad width in {%s:%s} (e.g. {seq:08})", inner, spec);
      p.width = w;
      p.zero_pad = zero;
    } else if (!strcmp(inner, "hex") || !strcmp(inner, "digits") || !strcmp(inner, "upper")) {
      p.kind = inner[0] == 'h' ? MS__TP_HEX : inner[0] == 'd' ? MS__TP_DIGITS : MS__TP_UPPER;
      if (!spec || !spec_ok)
        verr_str(v, ptr, (size_t)(q - tpl), "template: {%s:N} needs a length N between 1 and 64", inner);
      p.width = w;
    } else {
      p.kind = MS__TP_FIELD;
      p.field = SIZE_MAX;
      for (size_t i = 0; i < t->n_fields; i++)
        if (t->fields[i].name && !strcmp(t->fields[i].name, inner)) p.field = i;
      if (p.field == SIZE_MAX) {
        const char *names[512];
        size_t nn = 0;
        for (size_t i = 0; i < t->n_fields && nn < 500; i++)
          if (t->fields[i].name) names[nn++] = t->fields[i].name;
        names[nn++] = "seq";
        names[nn++] = "row";
        const char *near = ms__closest(inner, names, nn);
        if (near)
          verr_str(v, ptr, (size_t)(q - tpl), "template: unknown field \"%s\" (did you mean \"%s\"?)", inner, near);
        else
          verr_str(v, ptr, (size_t)(q - tpl), "template: unknown field \"%s\"", inner);
      } else if (t->fields + p.field == f) {
        verr_str(v, ptr, (size_t)(q - tpl), "template: field \"%s\" cannot include itself", inner);
        p.field = SIZE_MAX;
      } else if (spec) {
        verr_str(v, ptr, (size_t)(q - tpl), "template: {%s} takes no format", inner);
      }
      if (p.field == SIZE_MAX) {
        q = e + 1;
        continue;
      }
      /* dependency */
      size_t *nd = ms__realloc(f->deps, (f->n_deps + 1) * sizeof *nd);
      if (nd) {
        f->deps = nd;
        f->deps[f->n_deps++] = p.field;
      } else {
        oom(v, "a field's dependencies");
      }
    }
    if (np < 64) parts[np++] = p;
    q = e + 1;
  }
  FLUSH();
#undef FLUSH
  if (np >= 64) verr_str(v, ptr, (size_t)(q - tpl), "template: at most 64 parts");
  f->parts = ms__calloc(np ? np : 1, sizeof *f->parts);
  if (f->parts) {
    memcpy(f->parts, parts, np * sizeof *parts);
    f->n_parts = np;
  } else {
    for (size_t i = 0; i < np; i++) free(parts[i].text);
    oom(v, "a template");
  }
}

/* ---- expression scope --------------------------------------------------------- */

/* Slot of field fi of the table `level` steps up from ti: the tables of the
 * chain are laid out one after another (own fields first). */
size_t ms__slot_base(const ms_spec *s, size_t ti, int level);
size_t ms__slot_base(const ms_spec *s, size_t ti, int level) {
  size_t base = 0, t = ti;
  for (int l = 0; l < level && t != SIZE_MAX; l++) {
    base += s->tables[t].n_fields;
    t = s->tables[t].parent;
  }
  return base;
}

typedef struct {
  V *v;
  size_t ti;
  int count_scope; /* "parent.x" also names the scope table's own fields */
  char **names;    /* for name_at */
  size_t n_names;
} RC;

static int rs_resolve(void *ctx, const char *name, ms__expr_symbol *out, ms_diag *d,
                      const ms__expr_pos *pos) {
  RC *rc = ctx;
  ms_spec *s = rc->v->s;
  size_t ti = rc->ti;
  int level = 0;
  const char *q = name;
  while (!strncmp(q, "parent.", 7)) {
    level++;
    q += 7;
  }
  int eff = level;
  if (rc->count_scope && level > 0) eff = level - 1;
  size_t t = ti;
  for (int l = 0; l < eff; l++) {
    if (s->tables[t].parent == SIZE_MAX) {
      ms_diag_add(d, MS_ERR_SPEC, pos->file, pos->line, pos->column, pos->where,
                  "\"%s\": table \"%s\" has no parent", name, s->tables[t].name);
      return -1;
    }
    t = s->tables[t].parent;
  }
  ms__table *tb = &s->tables[t];
  for (size_t fi = 0; fi < tb->n_fields; fi++) {
    ms__field *f = &tb->fields[fi];
    if (!f->name || strcmp(f->name, q)) continue;
    if (f->broken) return -1; /* already reported */
    memset(out, 0, sizeof *out);
    out->type = f->vtype;
    out->slot = (int32_t)(ms__slot_base(s, ti, eff) + fi);
    out->layout = f->layout;
    out->str_width = f->str_width;
    out->n_categories = f->n_labels;
    out->categories = (const char *const *)f->labels;
    return 1;
  }
  if (level == 0) return ms__spec_const_symbol(s, q, out);
  return 0;
}

int ms__spec_const_symbol(const ms_spec *s, const char *name, ms__expr_symbol *out) {
  for (size_t i = 0; i < s->n_const; i++) {
    if (strcmp(s->consts[i].name, name)) continue;
    memset(out, 0, sizeof *out);
    out->slot = -1;
    out->type = s->consts[i].type;
    out->value.type = s->consts[i].type;
    out->value.num = s->consts[i].num;
    out->value.i = s->consts[i].i;
    out->value.str = s->consts[i].str;
    return 1;
  }
  return 0;
}

static const char *rs_name_at(void *ctx, size_t i) {
  RC *rc = ctx;
  return i < rc->n_names ? rc->names[i] : NULL;
}

static ms__vocab *rs_vocab(void *ctx, const char *name, ms_diag *d, const ms__expr_pos *pos) {
  RC *rc = ctx;
  (void)d;
  return vocab_get(rc->v, name, pos->where ? pos->where : "");
}

static void rc_init(RC *rc, V *v, size_t ti, int count_scope) {
  memset(rc, 0, sizeof *rc);
  rc->v = v;
  rc->ti = ti;
  rc->count_scope = count_scope;
  ms_spec *s = v->s;
  size_t cap = s->n_const + 8;
  for (size_t t = ti; t != SIZE_MAX; t = s->tables[t].parent) cap += 2 * s->tables[t].n_fields;
  rc->names = ms__calloc(cap, sizeof *rc->names);
  if (!rc->names) return;
  /* Candidate spellings for suggestions: own fields bare, ancestors with
   * one "parent." per level. In a count's scope (the parent table) its own
   * fields may also be written "parent.x", so they are listed both ways. */
  char prefix[64] = "";
  int level = 0;
  for (size_t t = ti; t != SIZE_MAX && level < 7; t = s->tables[t].parent, level++) {
    for (int twice = 0; twice < (count_scope && level == 0 ? 2 : 1); twice++)
      for (size_t fi = 0; fi < s->tables[t].n_fields; fi++)
        if (s->tables[t].fields[fi].name && rc->n_names < cap)
          rc->names[rc->n_names++] =
              ptrf("%s%s", twice ? "parent." : prefix, s->tables[t].fields[fi].name);
    if (level == 0)
      for (size_t i = 0; i < s->n_const && rc->n_names < cap; i++)
        rc->names[rc->n_names++] = ms__strdup(s->consts[i].name);
    strncat(prefix, "parent.", sizeof prefix - strlen(prefix) - 1);
    if (count_scope && level == 0) strncat(prefix, "parent.", sizeof prefix - strlen(prefix) - 1);
  }
}

static void rc_deinit(RC *rc) {
  for (size_t i = 0; i < rc->n_names; i++) free(rc->names[i]);
  free(rc->names);
}

static void add_dep(V *v, size_t **deps, size_t *nd, size_t fi) {
  if (!deps) return;
  for (size_t i = 0; i < *nd; i++)
    if ((*deps)[i] == fi) return;
  size_t *n = ms__realloc(*deps, (*nd + 1) * sizeof *n);
  if (!n) {
    oom(v, "a field's dependencies");
    return;
  }
  *deps = n;
  n[(*nd)++] = fi;
}

/* Compiles the string at JSON pointer ptr in the scope of table ti. Own-table
 * fields read are added to deps. */
static ms__expr *compile_at(V *v, size_t ti, int count_scope, const char *src, const char *ptr,
                            ms__expr_type want, size_t **deps, size_t *nd) {
  ms_spec *s = v->s;
  size_t off;
  int line = 0, col = 0, escaped = 0;
  if (ms__jsonloc_find(s->text, s->len, ptr, 0, &off) == 0) {
    ms__jsonloc_linecol(s->text, s->len, off + 1, &line, &col);
    for (size_t k = off + 1; k < s->len && s->text[k] != '"'; k++)
      if (s->text[k] == '\\') {
        escaped = 1;
        break;
      }
  }
  RC rc;
  rc_init(&rc, v, ti, count_scope);
  ms__expr_resolver r = {.ctx = &rc, .resolve = rs_resolve, .name_at = rs_name_at,
                         .vocab = rs_vocab};
  ms__expr_compile_opts o;
  ms__expr_compile_opts_init(&o);
  o.file = s->file;
  o.line = line;
  o.column = col;
  o.where = ptr;
  o.escaped = escaped;
  o.want = want;
  ms__expr *e = NULL;
  size_t before = v->d->n_errors, before_count = v->d->count;
  ms_status st = ms__expr_compile(&e, src, &r, &o, v->d);
  rc_deinit(&rc);
  if (st != MS_OK) {
    v->errs += v->d->n_errors - before + (v->d->n_errors == before);
    if (st == MS_ERR_NOMEM && !nomem_since(v, before_count)) oom(v, "an expression");
    return NULL;
  }
  size_t own = count_scope ? SIZE_MAX : ti;
  size_t scope = ti;
  for (size_t i = 0; i < ms__expr_n_names(e); i++) {
    const char *nm = ms__expr_name(e, i);
    const char *q = nm;
    int level = 0;
    while (!strncmp(q, "parent.", 7)) {
      q += 7;
      level++;
    }
    if (count_scope ? level > 1 : level > 0) {
      size_t t = ti;
      for (int l = 0; l < (count_scope ? level - 1 : level) && t != SIZE_MAX; l++)
        t = s->tables[t].parent;
      if (t != SIZE_MAX)
        for (size_t fi = 0; fi < s->tables[t].n_fields; fi++) {
          /* A field without a name has been reported already. */
          if (!s->tables[t].fields[fi].name || strcmp(s->tables[t].fields[fi].name, q)) continue;
          if (s->tables[t].fields[fi].nullable) v->reads_nullable = 1;
          if (v->pdeps) add_dep(v, v->pdeps, v->n_pdeps, (t << 32) | fi);
        }
      continue;
    }
    (void)own;
    for (size_t fi = 0; fi < s->tables[scope].n_fields; fi++)
      if (s->tables[scope].fields[fi].name && !strcmp(s->tables[scope].fields[fi].name, q))
        add_dep(v, deps, nd, fi);
  }
  return e;
}

/* A number or an expression string. want: NUMBER, DATE or DATETIME. */
static void parse_param(V *v, size_t ti, int count_scope, ms__param *p, const cJSON *j,
                        const char *ptr, ms__expr_type want, size_t **deps, size_t *nd) {
  p->ptr = vdup(v, ptr, "a parameter");
  if (!j) return;
  if (cJSON_IsNumber(j) && want == MS__EXPR_NUMBER) {
    if (!isfinite(j->valuedouble)) {
      verr(v, ptr, 0, "must be a finite number");
      return;
    }
    p->set = 1;
    p->value = j->valuedouble;
    return;
  }
  if (!cJSON_IsString(j)) {
    if (want == MS__EXPR_NUMBER)
      verr(v, ptr, 0, "must be a number or an expression string");
    else
      verr(v, ptr, 0, "must be an expression string giving a %s (e.g. \"date('2020-01-01')\")",
           ms__expr_type_name(want));
    return;
  }
  ms__expr *e = compile_at(v, ti, count_scope, j->valuestring, ptr, want, deps, nd);
  if (!e) return;
  p->set = 1;
  if (ms__expr_is_const(e)) {
    ms__expr_value val;
    ms__expr_error err;
    size_t before_count = v->d->count;
    if (ms__expr_eval_const(e, &val, &err) != MS_OK) {
      ms__expr_error_report(e, &err, v->d, ptr);
      v->errs++;
      nomem_since(v, before_count);
      ms__expr_free(e);
      p->set = 0;
      return;
    }
    if (val.missing) {
      verr(v, ptr, 0, "evaluates to a missing value");
      p->set = 0;
    }
    p->value = want == MS__EXPR_NUMBER ? val.num : (double)val.i;
    ms__expr_free(e);
    return;
  }
  p->x = e;
}

static void parse_dist(V *v, size_t ti, int count_scope, ms__dist *d, const cJSON *j,
                       const char *ptr, int is_count, size_t **deps, size_t *nd) {
  d->ptr = vdup(v, ptr, "a distribution");
  d->type = MS__DIST_COUNT;
  if (!cJSON_IsObject(j)) {
    verr(v, ptr, 0, "must be an object {\"type\": ..., parameters}");
    return;
  }
  const char *type = get_string(v, j, ptr, "type", 1);
  if (!type) return;
  d->type = ms__dist_from_name(type);
  if (d->type == MS__DIST_COUNT) {
    static const char *const all[] = {"normal",      "lognormal", "gamma",    "beta",
                                      "uniform",     "exponential", "poisson", "binomial",
                                      "quantiles",   "constant",  NULL};
    char p[1024];
    ms__jsonptr_key(p, sizeof p, ptr, "type");
    const char *near = ms__closest(type, all, ms__list_len(all));
    if (near)
      verr(v, p, 0, "unknown distribution \"%s\" (did you mean \"%s\"?)", type, near);
    else
      verr(v, p, 0,
           "unknown distribution \"%s\" (one of: normal, lognormal, gamma, beta, uniform, exponential, poisson, binomial, quantiles, constant)",
           type);
    return;
  }
  if (is_count && !ms__dist_is_discrete(d->type) && d->type != MS__DIST_CONSTANT &&
      d->type != MS__DIST_UNIFORM && d->type != MS__DIST_QUANTILES) {
    char p[1024];
    ms__jsonptr_key(p, sizeof p, ptr, "type");
    verr(v, p, 0, "a count needs a discrete distribution (poisson, binomial, uniform, quantiles or constant), not %s",
         type);
  }
  int nr, nt;
  const char *const *pn = ms__dist_params(d->type, &nr, &nt);
  const char *allowed[10];
  size_t na = 0;
  allowed[na++] = "type";
  for (int i = 0; i < nt; i++) allowed[na++] = pn[i];
  if (is_count) {
    allowed[na++] = "min";
    allowed[na++] = "max";
  }
  allowed[na] = NULL;
  check_keys(v, j, ptr, allowed);
  int all_const = 1;
  if (d->type == MS__DIST_QUANTILES) {
    const cJSON *pr = need(v, j, ptr, "probs"), *va = need(v, j, ptr, "values");
    if (!pr || !va) return;
    char pp[1024], pv[1024];
    ms__jsonptr_key(pp, sizeof pp, ptr, "probs");
    ms__jsonptr_key(pv, sizeof pv, ptr, "values");
    int ok = 1;
    if (!cJSON_IsArray(pr)) ok = 0, verr(v, pp, 0, "must be an array of numbers");
    if (!cJSON_IsArray(va)) ok = 0, verr(v, pv, 0, "must be an array of numbers");
    if (!ok) return;
    size_t n = (size_t)cJSON_GetArraySize(pr);
    if ((size_t)cJSON_GetArraySize(va) != n) {
      verr(v, pv, 0, "must have as many entries as \"probs\" (%zu)", n);
      return;
    }
    d->qprobs = ms__calloc(n ? n : 1, sizeof(double));
    d->qvalues = ms__calloc(n ? n : 1, sizeof(double));
    if (!d->qprobs || !d->qvalues) {
      oom(v, "quantiles");
      return;
    }
    size_t i = 0;
    for (const cJSON *a = pr->child, *b = va->child; a && b; a = a->next, b = b->next, i++) {
      if (!cJSON_IsNumber(a) || !cJSON_IsNumber(b)) {
        char ep[1100];
        snprintf(ep, sizeof ep, "%s/%zu", cJSON_IsNumber(a) ? pv : pp, i);
        verr(v, ep, 0, "must be a number");
        ok = 0;
        continue;
      }
      d->qprobs[i] = a->valuedouble;
      d->qvalues[i] = b->valuedouble;
    }
    d->qn = n;
    if (!ok) return;
  } else {
    for (int i = 0; i < nt; i++) {
      char pp[1024];
      ms__jsonptr_key(pp, sizeof pp, ptr, pn[i]);
      const cJSON *c = i < nr ? need(v, j, ptr, pn[i]) : get(v, j, ptr, pn[i]);
      if (!c && i >= nr) {
        d->p[i].set = 1;
        d->p[i].value = ms__dist_param_default(d->type, i);
        d->p[i].ptr = vdup(v, pp, "a parameter");
        continue;
      }
      size_t before = v->errs;
      parse_param(v, ti, count_scope, &d->p[i], c, pp, MS__EXPR_NUMBER, deps, nd);
      if (!d->p[i].set || v->errs != before) all_const = 0;
      if (d->p[i].x) all_const = 0;
    }
  }
  if (is_count) {
    char pp[1024];
    ms__jsonptr_key(pp, sizeof pp, ptr, "min");
    parse_param(v, ti, count_scope, &d->min, get(v, j, ptr, "min"), pp, MS__EXPR_NUMBER, deps, nd);
    ms__jsonptr_key(pp, sizeof pp, ptr, "max");
    parse_param(v, ti, count_scope, &d->max, get(v, j, ptr, "max"), pp, MS__EXPR_NUMBER, deps, nd);
    if (d->min.set && !d->min.x && d->min.value < 0) verr(v, d->min.ptr, 0, "must be >= 0");
    if (d->max.set && !d->max.x && d->max.value > 1e7)
      verr(v, d->max.ptr, 0, "must be <= 10000000");
  }
  if (all_const) {
    ms__dist_args a = {.qprobs = d->qprobs, .qvalues = d->qvalues, .qn = d->qn};
    for (int i = 0; i < nt && d->type != MS__DIST_QUANTILES; i++) a.p[i] = d->p[i].value;
    char msg[128];
    int bad = ms__dist_check(d->type, &a, msg, sizeof msg);
    if (bad >= 0) {
      char pp[1024];
      ms__jsonptr_key(pp, sizeof pp, ptr, pn[bad]);
      verr(v, pp, 0, "%s", msg);
    }
  }
}

static int dist_const(const ms__dist *d, ms__dist_args *a) {
  if (d->type == MS__DIST_COUNT) return 0;
  int nr, nt;
  ms__dist_params(d->type, &nr, &nt);
  memset(a, 0, sizeof *a);
  a->qprobs = d->qprobs;
  a->qvalues = d->qvalues;
  a->qn = d->qn;
  if (d->type == MS__DIST_QUANTILES) return d->qn >= 2;
  for (int i = 0; i < nt; i++) {
    if (!d->p[i].set || d->p[i].x) return 0;
    a->p[i] = d->p[i].value;
  }
  char msg[64];
  return ms__dist_check(d->type, a, msg, sizeof msg) < 0;
}

/* ---- pass 2: expressions, parameters, variants ----------------------------- */

static ms__expr_type date_type(const ms__field *f) {
  return f->kind == MS__K_DATETIME ? MS__EXPR_DATETIME : MS__EXPR_DATE;
}

/* Parses the overridable keys of a field (rule = 0) or of a "when" rule. */
static void parse_variant(V *v, size_t ti, ms__field *f, ms__variant *var, const cJSON *j,
                          const char *ptr, int rule) {
  var->ptr = vdup(v, ptr, "a field definition");
  char p[1024];
  const cJSON *c;
  switch (f->kind) {
    case MS__K_INTEGER:
    case MS__K_REAL: {
      const cJSON *dj = get(v, j, ptr, "dist"), *ej = get(v, j, ptr, "expr");
      if (dj && ej) {
        ms__jsonptr_key(p, sizeof p, ptr, "expr");
        verr(v, p, 1, "give either \"dist\" or \"expr\", not both");
      } else if (!dj && !ej && !rule) {
        verr(v, ptr, 0, "%s field needs \"dist\" (a distribution) or \"expr\" (a formula)",
             ms__kind_name(f->kind));
      }
      if (dj) {
        ms__jsonptr_key(p, sizeof p, ptr, "dist");
        var->has_dist = 1;
        parse_dist(v, ti, 0, &var->dist, dj, p, 0, &f->deps, &f->n_deps);
      } else if (ej) {
        ms__jsonptr_key(p, sizeof p, ptr, "expr");
        if (!cJSON_IsString(ej))
          verr(v, p, 0, "must be an expression string");
        else
          var->expr = compile_at(v, ti, 0, ej->valuestring, p, MS__EXPR_NUMBER, &f->deps, &f->n_deps);
      }
      break;
    }
    case MS__K_BOOL: {
      const cJSON *pj = get(v, j, ptr, "p"), *ej = get(v, j, ptr, "expr");
      if (pj && ej) {
        ms__jsonptr_key(p, sizeof p, ptr, "expr");
        verr(v, p, 1, "give either \"p\" or \"expr\", not both");
      } else if (!pj && !ej && !rule) {
        verr(v, ptr, 0, "bool field needs \"p\" (a probability) or \"expr\" (a condition)");
      }
      if (pj) {
        ms__jsonptr_key(p, sizeof p, ptr, "p");
        parse_param(v, ti, 0, &var->p, pj, p, MS__EXPR_NUMBER, &f->deps, &f->n_deps);
        if (var->p.set && !var->p.x && !(var->p.value >= 0 && var->p.value <= 1))
          verr(v, p, 0, "must be in [0, 1]");
      } else if (ej) {
        ms__jsonptr_key(p, sizeof p, ptr, "expr");
        if (!cJSON_IsString(ej))
          verr(v, p, 0, "must be an expression string");
        else
          var->expr = compile_at(v, ti, 0, ej->valuestring, p, MS__EXPR_BOOL, &f->deps, &f->n_deps);
      }
      break;
    }
    case MS__K_DATE:
    case MS__K_DATETIME: {
      const cJSON *bj = get(v, j, ptr, "base"), *oj = get(v, j, ptr, "offset_days"),
                  *ej = get(v, j, ptr, "expr");
      if (ej && (bj || oj)) {
        ms__jsonptr_key(p, sizeof p, ptr, "expr");
        verr(v, p, 1, "give either \"expr\" or \"base\" (+ \"offset_days\"), not both");
      } else if (!ej && !bj && !rule) {
        verr(v, ptr, 0, "%s field needs \"base\" (+ optional \"offset_days\") or \"expr\"",
             ms__kind_name(f->kind));
      }
      if (ej) {
        ms__jsonptr_key(p, sizeof p, ptr, "expr");
        if (!cJSON_IsString(ej))
          verr(v, p, 0, "must be an expression string");
        else
          var->expr = compile_at(v, ti, 0, ej->valuestring, p, date_type(f), &f->deps, &f->n_deps);
      }
      if (bj) {
        ms__jsonptr_key(p, sizeof p, ptr, "base");
        if (!cJSON_IsString(bj))
          verr(v, p, 0, "must be an expression string giving a %s", ms__kind_name(f->kind));
        else
          var->base = compile_at(v, ti, 0, bj->valuestring, p, date_type(f), &f->deps, &f->n_deps);
      }
      if (oj) {
        ms__jsonptr_key(p, sizeof p, ptr, "offset_days");
        var->has_offset = 1;
        parse_dist(v, ti, 0, &var->offset, oj, p, 0, &f->deps, &f->n_deps);
      }
      break;
    }
    case MS__K_CATEGORICAL:
      c = get(v, j, ptr, "values");
      if (c) {
        ms__jsonptr_key(p, sizeof p, ptr, "values");
        var->cum = values_cum(v, f, c, p);
      }
      break;
    default:
      break;
  }
}

static void parse_missing(V *v, size_t ti, ms__field *f, const cJSON *mj, const char *ptr) {
  f->has_missing = 1;
  if (cJSON_IsNumber(mj)) {
    parse_param(v, ti, 0, &f->miss_rate, mj, ptr, MS__EXPR_NUMBER, &f->deps, &f->n_deps);
    if (!(mj->valuedouble >= 0 && mj->valuedouble <= 1)) verr(v, ptr, 0, "must be in [0, 1]");
    return;
  }
  if (!cJSON_IsObject(mj)) {
    verr(v, ptr, 0, "must be a rate in [0, 1] or {\"rate\": r, \"when\": [...]}");
    f->has_missing = 0;
    return;
  }
  static const char *const keys[] = {"rate", "when", NULL};
  check_keys(v, mj, ptr, keys);
  char p[1024];
  ms__jsonptr_key(p, sizeof p, ptr, "rate");
  const cJSON *rj = get(v, mj, ptr, "rate");
  if (rj) {
    parse_param(v, ti, 0, &f->miss_rate, rj, p, MS__EXPR_NUMBER, &f->deps, &f->n_deps);
    if (f->miss_rate.set && !f->miss_rate.x &&
        !(f->miss_rate.value >= 0 && f->miss_rate.value <= 1))
      verr(v, p, 0, "must be in [0, 1]");
  } else {
    f->miss_rate.set = 1;
    f->miss_rate.value = 0;
    f->miss_rate.ptr = vdup(v, p, "a missing rate");
  }
  const cJSON *wj = get(v, mj, ptr, "when");
  if (!wj) return;
  char wp[1024];
  ms__jsonptr_key(wp, sizeof wp, ptr, "when");
  if (!cJSON_IsArray(wj)) {
    verr(v, wp, 0, "must be an array of {\"if\": condition, \"rate\": r}");
    return;
  }
  size_t n = (size_t)cJSON_GetArraySize(wj);
  if (n > 200) {
    verr(v, wp, 0, "at most 200 rules");
    return;
  }
  f->miss_if = ms__calloc(n ? n : 1, sizeof *f->miss_if);
  f->miss_when_rate = ms__calloc(n ? n : 1, sizeof *f->miss_when_rate);
  if (!f->miss_if || !f->miss_when_rate) {
    oom(v, "missing-value rules");
    return;
  }
  f->n_miss_when = n;
  size_t i = 0;
  for (const cJSON *r = wj->child; r; r = r->next, i++) {
    char rp[1100];
    snprintf(rp, sizeof rp, "%s/%zu", wp, i);
    if (!cJSON_IsObject(r)) {
      verr(v, rp, 0, "must be an object {\"if\": condition, \"rate\": r}");
      continue;
    }
    static const char *const rk[] = {"if", "rate", NULL};
    check_keys(v, r, rp, rk);
    const char *cond = get_string(v, r, rp, "if", 1);
    if (cond) {
      char cp[1200];
      ms__jsonptr_key(cp, sizeof cp, rp, "if");
      f->miss_if[i] = compile_at(v, ti, 0, cond, cp, MS__EXPR_BOOL, &f->deps, &f->n_deps);
    }
    char pp[1200];
    ms__jsonptr_key(pp, sizeof pp, rp, "rate");
    parse_param(v, ti, 0, &f->miss_when_rate[i], need(v, r, rp, "rate"), pp, MS__EXPR_NUMBER,
                &f->deps, &f->n_deps);
    if (f->miss_when_rate[i].set && !f->miss_when_rate[i].x &&
        !(f->miss_when_rate[i].value >= 0 && f->miss_when_rate[i].value <= 1))
      verr(v, pp, 0, "must be in [0, 1]");
  }
}

static void check_bounds(V *v, ms__field *f) {
  if (f->min.set && f->max.set && !f->min.x && !f->max.x && f->min.value > f->max.value) {
    verr(v, f->max.ptr, 0, "must be >= min (%g > %g)", f->min.value, f->max.value);
    return;
  }
  double lo = f->min.set && !f->min.x ? f->min.value : -INFINITY;
  double hi = f->max.set && !f->max.x ? f->max.value : INFINITY;
  if (f->kind == MS__K_INTEGER && ceil(lo) > floor(hi)) {
    verr(v, f->max.ptr, 0, "no integer between min %g and max %g", lo, hi);
    return;
  }
  if (!f->base.has_dist || (isinf(lo) && isinf(hi))) return;
  if (f->min.x || f->max.x) return;
  ms__dist_args a;
  if (!dist_const(&f->base.dist, &a)) return;
  /* the window the sampler draws from (draw_int): an integer owns the unit
   * interval around it when the distribution is continuous */
  double wlo = lo, whi = hi;
  if (f->kind == MS__K_INTEGER && !ms__dist_is_discrete(f->base.dist.type) &&
      f->base.dist.type != MS__DIST_CONSTANT && f->base.dist.type != MS__DIST_UNIFORM) {
    wlo = isinf(lo) ? lo : ceil(lo) - 0.5;
    whi = isinf(hi) ? hi : floor(hi) + 0.5;
  }
  double flo, fhi, mass = ms__dist_window(f->base.dist.type, &a, wlo, whi, &flo, &fhi);
  if (f->kind == MS__K_INTEGER && f->base.dist.type == MS__DIST_UNIFORM)
    mass = (fmin(hi, a.p[1]) >= fmax(lo, a.p[0])) ? 1 : 0;
  if (!(mass > 1e-300)) {
    const char *at = f->min.set ? f->min.ptr : f->max.ptr;
    if (isinf(lo))
      verr(v, at, 0, "the %s distribution has no probability at or below max %g",
           ms__dist_name(f->base.dist.type), hi);
    else if (isinf(hi))
      verr(v, at, 0, "the %s distribution has no probability at or above min %g",
           ms__dist_name(f->base.dist.type), lo);
    else
      verr(v, at, 0, "the %s distribution has no probability between min %g and max %g",
           ms__dist_name(f->base.dist.type), lo, hi);
  }
}

static void field_pass2(V *v, size_t ti, size_t fi, const cJSON *fj) {
  ms_spec *s = v->s;
  ms__table *t = &s->tables[ti];
  ms__field *f = &t->fields[fi];
  const char *fptr = f->ptr;
  char p[1024];
  if (f->kind == MS__K_STRING) {
    const char *tpl = get_string(v, fj, fptr, "template", 1);
    ms__jsonptr_key(p, sizeof p, fptr, "template");
    if (tpl) parse_template(v, t, f, tpl, p);
  }
  if (f->kind == MS__K_REF) {
    if (t->parent == SIZE_MAX)
      verr(v, fptr, 0, "kind \"ref\" copies the parent's key: table \"%s\" has no parent",
           t->name ? t->name : "?");
    else if (s->tables[t->parent].key_field == SIZE_MAX)
      verr(v, fptr, 0, "kind \"ref\": parent table \"%s\" has no id field to refer to",
           s->tables[t->parent].name ? s->tables[t->parent].name : "?");
    else
      f->ref_field = s->tables[t->parent].key_field;
  }
  parse_variant(v, ti, f, &f->base, fj, fptr, 0);
  if (f->kind == MS__K_INTEGER || f->kind == MS__K_REAL) {
    ms__jsonptr_key(p, sizeof p, fptr, "min");
    parse_param(v, ti, 0, &f->min, get(v, fj, fptr, "min"), p, MS__EXPR_NUMBER, &f->deps, &f->n_deps);
    ms__jsonptr_key(p, sizeof p, fptr, "max");
    parse_param(v, ti, 0, &f->max, get(v, fj, fptr, "max"), p, MS__EXPR_NUMBER, &f->deps, &f->n_deps);
    check_bounds(v, f);
  } else if (f->kind == MS__K_DATE || f->kind == MS__K_DATETIME) {
    ms__jsonptr_key(p, sizeof p, fptr, "min");
    parse_param(v, ti, 0, &f->min, get(v, fj, fptr, "min"), p, date_type(f), &f->deps, &f->n_deps);
    ms__jsonptr_key(p, sizeof p, fptr, "max");
    parse_param(v, ti, 0, &f->max, get(v, fj, fptr, "max"), p, date_type(f), &f->deps, &f->n_deps);
    if (f->min.set && f->max.set && !f->min.x && !f->max.x && f->min.value > f->max.value)
      verr(v, f->max.ptr, 0, "must not be before min");
  }
  if (f->kind == MS__K_REAL && f->precision >= 0 && f->min.set && f->max.set && !f->min.x &&
      !f->max.x) {
    /* value * 10^precision carries the rounding error of the product, a few
     * ulps of its magnitude: a grid value such as 644564.07 scales to
     * 64456406.99999999 or 64456407.00000001, so the tolerance grows with
     * the magnitude (an absolute 1e-9 alone rejects such a min = max). */
    double sc = pow(10, f->precision), a = f->min.value * sc, b = f->max.value * sc;
    double ta = 1e-9 + 8 * DBL_EPSILON * fabs(a), tb = 1e-9 + 8 * DBL_EPSILON * fabs(b);
    if (ceil(a - ta) > floor(b + tb)) {
      ms__jsonptr_key(p, sizeof p, fptr, "precision");
      verr(v, p, 0, "no value with %d decimals between min and max", f->precision);
    }
  }
  const cJSON *mj = get(v, fj, fptr, "missing");
  if (mj) {
    ms__jsonptr_key(p, sizeof p, fptr, "missing");
    parse_missing(v, ti, f, mj, p);
  }
  const cJSON *wj = get(v, fj, fptr, "when");
  if (wj) {
    char wp[1024];
    ms__jsonptr_key(wp, sizeof wp, fptr, "when");
    if (!when_keys[f->kind][0]) {
      verr(v, wp, 1, "fields of kind %s take no \"when\" rules", ms__kind_name(f->kind));
    } else if (!cJSON_IsArray(wj)) {
      verr(v, wp, 0, "must be an array of {\"if\": condition, ...overrides}");
    } else {
      size_t n = (size_t)cJSON_GetArraySize(wj);
      if (n > 200) {
        verr(v, wp, 0, "at most 200 rules");
        return;
      }
      f->when_if = ms__calloc(n ? n : 1, sizeof *f->when_if);
      f->when = ms__calloc(n ? n : 1, sizeof *f->when);
      if (!f->when_if || !f->when) {
        oom(v, "\"when\" rules");
        return;
      }
      f->n_when = n;
      size_t i = 0;
      for (const cJSON *r = wj->child; r; r = r->next, i++) {
        char rp[1100];
        snprintf(rp, sizeof rp, "%s/%zu", wp, i);
        if (!cJSON_IsObject(r)) {
          verr(v, rp, 0, "must be an object {\"if\": condition, ...overrides}");
          continue;
        }
        const char *allowed[8];
        size_t na = 0;
        allowed[na++] = "if";
        for (size_t k = 0; when_keys[f->kind][k]; k++) allowed[na++] = when_keys[f->kind][k];
        allowed[na] = NULL;
        check_keys(v, r, rp, allowed);
        const char *cond = get_string(v, r, rp, "if", 1);
        if (cond) {
          char cp[1200];
          ms__jsonptr_key(cp, sizeof cp, rp, "if");
          f->when_if[i] = compile_at(v, ti, 0, cond, cp, MS__EXPR_BOOL, &f->deps, &f->n_deps);
        }
        int any = 0;
        for (size_t k = 1; k < na; k++) any |= get(v, r, rp, allowed[k]) != NULL;
        if (!any) verr(v, rp, 0, "rule overrides nothing (give one of the field's keys besides \"if\")");
        parse_variant(v, ti, f, &f->when[i], r, rp, 1);
      }
    }
  }
}

/* Whether field f can take its value from a copula uniform: integer/real
 * drawn from a "dist", categorical (values or vocab), bool drawn with "p".
 * The field's own definition decides; "when" rules may still switch single
 * rows to a formula (those rows ignore the latent normal). Reports at ep. */
static int copula_drawable(V *v, const ms__field *f, const char *ep) {
  static const char *const takes =
      "a correlation group takes integer/real fields with \"dist\", categorical fields, and bool fields with \"p\"";
  switch (f->kind) {
    case MS__K_INTEGER:
    case MS__K_REAL:
      if (f->base.has_dist) return 1;
      if (f->base.expr) {
        verr(v, ep, 0, "field \"%s\" is derived (\"expr\"), not drawn: %s", f->name, takes);
        return 0;
      }
      break; /* neither: its own error is reported */
    case MS__K_CATEGORICAL:
      return 1;
    case MS__K_BOOL:
      if (f->base.p.set) return 1;
      if (f->base.expr) {
        verr(v, ep, 0, "bool field \"%s\" is derived (\"expr\"), not drawn: give it \"p\" (a probability) to correlate it",
             f->name);
        return 0;
      }
      break;
    default:
      verr(v, ep, 0, "field \"%s\" of kind %s cannot be correlated: %s", f->name,
           ms__kind_name(f->kind), takes);
      return 0;
  }
  return 0;
}

/* Symmetric, unit diagonal, positive definite; stores the Cholesky factor. */
static void parse_correlations(V *v, size_t ti, const cJSON *cj, const char *cptr) {
  ms__table *t = &v->s->tables[ti];
  if (!cJSON_IsArray(cj)) {
    verr(v, cptr, 0, "must be an array of {\"fields\": [...], \"matrix\": [[...]]}");
    return;
  }
  size_t ng = (size_t)cJSON_GetArraySize(cj);
  t->cop = ms__calloc(ng ? ng : 1, sizeof *t->cop);
  if (!t->cop) {
    oom(v, "correlation groups");
    return;
  }
  size_t gi = 0;
  for (const cJSON *g = cj->child; g; g = g->next, gi++) {
    char gp[400];
    snprintf(gp, sizeof gp, "%s/%zu", cptr, gi);
    static const char *const keys[] = {"fields", "matrix", NULL};
    if (!cJSON_IsObject(g)) {
      verr(v, gp, 0, "must be an object {\"fields\": [...], \"matrix\": [[...]]}");
      continue;
    }
    check_keys(v, g, gp, keys);
    const cJSON *fl = need(v, g, gp, "fields"), *mx = need(v, g, gp, "matrix");
    if (!fl || !mx) continue;
    char fp[500], mp[500];
    ms__jsonptr_key(fp, sizeof fp, gp, "fields");
    ms__jsonptr_key(mp, sizeof mp, gp, "matrix");
    if (!cJSON_IsArray(fl) || cJSON_GetArraySize(fl) < 2) {
      verr(v, fp, 0, "must be an array of at least 2 field names");
      continue;
    }
    size_t n = (size_t)cJSON_GetArraySize(fl);
    ms__copula *c = &t->cop[t->n_cop];
    c->fields = ms__calloc(n, sizeof *c->fields);
    c->chol = ms__calloc(n * n, sizeof *c->chol);
    c->ptr = ms__strdup(gp);
    c->n = n;
    t->n_cop++; /* freed with the table from here on */
    if (!c->fields || !c->chol || !c->ptr) {
      oom(v, "a correlation group");
      return;
    }
    int ok = 1;
    size_t k = 0;
    for (const cJSON *e = fl->child; e; e = e->next, k++) {
      char ep[600];
      snprintf(ep, sizeof ep, "%s/%zu", fp, k);
      c->fields[k] = SIZE_MAX;
      if (!cJSON_IsString(e)) {
        verr(v, ep, 0, "must be a field name");
        ok = 0;
        continue;
      }
      for (size_t fi = 0; fi < t->n_fields; fi++)
        if (t->fields[fi].name && !strcmp(t->fields[fi].name, e->valuestring)) c->fields[k] = fi;
      if (c->fields[k] == SIZE_MAX) {
        const char *names[512];
        size_t nn = 0;
        for (size_t fi = 0; fi < t->n_fields && nn < 512; fi++)
          if (t->fields[fi].name) names[nn++] = t->fields[fi].name;
        const char *near = ms__closest(e->valuestring, names, nn);
        if (near)
          verr(v, ep, 0, "unknown field \"%s\" (did you mean \"%s\"?)", e->valuestring, near);
        else
          verr(v, ep, 0, "unknown field \"%s\"", e->valuestring);
        ok = 0;
        continue;
      }
      ms__field *f = &t->fields[c->fields[k]];
      if (f->broken) {
        ok = 0; /* its own definition is already reported */
        continue;
      }
      if (!copula_drawable(v, f, ep)) {
        ok = 0;
        continue;
      }
      if (f->cop_group >= 0) {
        verr(v, ep, 0, "field \"%s\" is already in correlation group %d", f->name, f->cop_group);
        ok = 0;
        continue;
      }
      for (size_t q = 0; q < k; q++)
        if (c->fields[q] == c->fields[k]) {
          verr(v, ep, 0, "field \"%s\" listed twice", f->name);
          ok = 0;
        }
      f->cop_group = (int)(t->n_cop - 1);
      f->cop_index = (int)k;
    }
    if (!cJSON_IsArray(mx) || (size_t)cJSON_GetArraySize(mx) != n) {
      verr(v, mp, 0, "must be a %zu x %zu array of numbers (one row per field)", n, n);
      continue;
    }
    double *m = c->chol;
    size_t r = 0;
    for (const cJSON *row = mx->child; row; row = row->next, r++) {
      char rp[600];
      snprintf(rp, sizeof rp, "%s/%zu", mp, r);
      if (!cJSON_IsArray(row) || (size_t)cJSON_GetArraySize(row) != n) {
        verr(v, rp, 0, "must be an array of %zu numbers", n);
        ok = 0;
        continue;
      }
      size_t q = 0;
      for (const cJSON *x = row->child; x; x = x->next, q++) {
        if (!cJSON_IsNumber(x)) {
          char xp[700];
          snprintf(xp, sizeof xp, "%s/%zu", rp, q);
          verr(v, xp, 0, "must be a number");
          ok = 0;
          continue;
        }
        m[r * n + q] = x->valuedouble;
      }
    }
    if (!ok) continue;
    for (size_t i = 0; i < n; i++) {
      char xp[700];
      snprintf(xp, sizeof xp, "%s/%zu/%zu", mp, i, i);
      if (m[i * n + i] != 1.0) {
        verr(v, xp, 0, "diagonal entries must be 1 (a correlation matrix), got %g", m[i * n + i]);
        ok = 0;
      }
      for (size_t q = 0; q < i; q++) {
        snprintf(xp, sizeof xp, "%s/%zu/%zu", mp, i, q);
        if (fabs(m[i * n + q] - m[q * n + i]) > 1e-12) {
          verr(v, xp, 0, "matrix is not symmetric: [%zu][%zu] = %g but [%zu][%zu] = %g", i, q,
               m[i * n + q], q, i, m[q * n + i]);
          ok = 0;
        } else if (!(fabs(m[i * n + q]) < 1.0)) {
          verr(v, xp, 0, "correlations must lie strictly between -1 and 1, got %g", m[i * n + q]);
          ok = 0;
        }
      }
    }
    if (!ok) continue;
    gsl_matrix_view mv = gsl_matrix_view_array(m, n, n);
    gsl_error_handler_t *old = gsl_set_error_handler_off();
    int st = gsl_linalg_cholesky_decomp1(&mv.matrix);
    gsl_set_error_handler(old);
    if (st) {
      verr(v, mp, 0, "matrix is not positive definite (no Cholesky factor); check for inconsistent correlations");
      continue;
    }
    for (size_t i = 0; i < n; i++)
      for (size_t q = i + 1; q < n; q++) m[i * n + q] = 0.0;
    char sn[400];
    snprintf(sn, sizeof sn, "%s/#copula/%zu", t->name ? t->name : "", gi);
    c->stream = ms_rng_stream(sn);
  }
}

/* ---- pass 3: dependencies ------------------------------------------------------- */

static void order_table(V *v, size_t ti) {
  ms__table *t = &v->s->tables[ti];
  size_t n = t->n_fields;
  t->order = ms__calloc(n ? n : 1, sizeof *t->order);
  int *state = ms__calloc(n ? n : 1, sizeof *state); /* 0 new, 1 on stack, 2 done */
  size_t *stack = ms__calloc(n ? n : 1, sizeof *stack);
  size_t *it = ms__calloc(n ? n : 1, sizeof *it);
  if (!t->order || !state || !stack || !it) {
    oom(v, "the field order");
    goto out;
  }
  size_t no = 0;
  int cyc = 0;
  /* iterative DFS in spec order: post-order gives a stable topological order */
  for (size_t r = 0; r < n && !cyc; r++) {
    if (state[r]) continue;
    size_t sp = 0;
    stack[sp++] = r;
    state[r] = 1;
    it[r] = 0;
    while (sp && !cyc) {
      size_t u = stack[sp - 1];
      ms__field *f = &t->fields[u];
      if (it[u] < f->n_deps) {
        size_t w = f->deps[it[u]++];
        if (w == u) {
          verr(v, f->ptr, 0, "cycle: %s -> %s", f->name, f->name);
          cyc = 1;
        } else if (state[w] == 1) {
          char msg[900];
          size_t k = 0;
          while (stack[k] != w) k++;
          int len = 0;
          for (size_t q = k; q < sp; q++)
            len += snprintf(msg + len, sizeof msg - (size_t)len, "%s -> ",
                            t->fields[stack[q]].name);
          snprintf(msg + len, sizeof msg - (size_t)len, "%s", t->fields[w].name);
          verr(v, t->fields[w].ptr, 0, "cycle: %s", msg);
          cyc = 1;
        } else if (state[w] == 0) {
          state[w] = 1;
          it[w] = 0;
          stack[sp++] = w;
        }
      } else {
        state[u] = 2;
        t->order[no++] = u;
        sp--;
      }
    }
  }
  if (cyc) goto out;
  /* position dependence, in order */
  for (size_t k = 0; k < n; k++) {
    ms__field *f = &t->fields[t->order[k]];
    if (f->kind == MS__K_ID || f->kind == MS__K_REF) f->pos_dep = 1;
    for (size_t i = 0; i < f->n_parts; i++)
      if (f->parts[i].kind == MS__TP_SEQ || f->parts[i].kind == MS__TP_ROW) f->pos_dep = 1;
    for (size_t i = 0; i < f->n_deps; i++) {
      if (t->fields[f->deps[i]].pos_dep) f->pos_dep = 1;
      if (t->fields[f->deps[i]].nullable) f->nullable = 1;
    }
    /* reading an ancestor's position-dependent field (parent.patient_id)
     * makes this field wait for positions too */
    for (size_t i = 0; i < f->n_pdeps; i++)
      if (v->s->tables[f->pdeps[i] >> 32].fields[f->pdeps[i] & 0xffffffffu].pos_dep) f->pos_dep = 1;
    if (f->kind == MS__K_REF && t->parent != SIZE_MAX && f->ref_field != SIZE_MAX)
      f->nullable |= v->s->tables[t->parent].fields[f->ref_field].nullable;
  }
out:
  free(state);
  free(stack);
  free(it);
}

/* Marks field fi of table ti and everything it reads (in its own table and,
 * through parent.x, in ancestors) as needed for prefix counting. */
static void mark_needed(ms_spec *s, size_t ti, size_t fi) {
  ms__field *f = &s->tables[ti].fields[fi];
  if (f->needed_prefix) return;
  f->needed_prefix = 1;
  for (size_t i = 0; i < f->n_deps; i++) mark_needed(s, ti, f->deps[i]);
  for (size_t i = 0; i < f->n_pdeps; i++)
    mark_needed(s, f->pdeps[i] >> 32, f->pdeps[i] & 0xffffffffu);
}

static void check_pos_reads(V *v, ms__table *t, const size_t *deps, size_t nd, const char *what,
                            const char *ptr) {
  for (size_t i = 0; i < nd; i++)
    if (t->fields[deps[i]].pos_dep)
      verr(v, ptr, 0,
           "%s cannot read \"%s\": its value depends on the row's output position (ids, refs, {seq}/{row} templates)",
           what, t->fields[deps[i]].name);
}

/* ---- schema ----------------------------------------------------------------------- */

static ms_coltype field_coltype(const ms__field *f) {
  switch (f->layout) {
    case MS__EXPR_LAYOUT_STR_FIXED:
      return MS_COL_STRING;
    case MS__EXPR_LAYOUT_U8:
      return MS_COL_BOOL;
    case MS__EXPR_LAYOUT_F64:
      return MS_COL_FLOAT64;
    case MS__EXPR_LAYOUT_I32:
      return f->kind == MS__K_CATEGORICAL ? MS_COL_CATEGORICAL : MS_COL_DATE;
    case MS__EXPR_LAYOUT_I64:
      return f->vtype == MS__EXPR_DATETIME ? MS_COL_DATETIME : MS_COL_INT64;
    default:
      return MS_COL_FLOAT64;
  }
}

static int build_schema(ms_spec *s, size_t ti) {
  ms__table *t = &s->tables[ti];
  ms_table_schema *sc = &t->schema;
  sc->name = ms__strdup(t->name);
  sc->parent = t->parent != SIZE_MAX ? ms__strdup(s->tables[t->parent].name) : NULL;
  sc->columns = ms__calloc(t->n_fields, sizeof *sc->columns);
  if (!sc->name || !sc->columns || (t->parent != SIZE_MAX && !sc->parent)) return -1;
  for (size_t fi = 0; fi < t->n_fields; fi++) {
    ms__field *f = &t->fields[fi];
    if (f->hidden) {
      f->col = -1;
      continue;
    }
    f->col = (int)sc->n_columns;
    ms_column *c = &sc->columns[sc->n_columns++];
    c->name = ms__strdup(f->label ? f->label : f->name);
    c->type = field_coltype(f);
    c->format = f->fmt ? ms__strdup(f->fmt) : NULL;
    c->unit = f->unit ? ms__strdup(f->unit) : NULL;
    c->description = f->description ? ms__strdup(f->description) : NULL;
    if ((f->fmt && !c->format) || (f->unit && !c->unit) || (f->description && !c->description))
      return -1;
    c->precision = f->kind == MS__K_REAL ? f->precision : -1;
    c->nullable = f->nullable;
    c->str_width = c->type == MS_COL_STRING ? f->str_width : 0;
    if (f->kind == MS__K_CATEGORICAL) {
      c->categories = ms__calloc(f->n_labels ? f->n_labels : 1, sizeof *c->categories);
      if (!c->categories) return -1;
      c->n_categories = f->n_labels;
      for (size_t i = 0; i < f->n_labels; i++)
        if (!(c->categories[i] = ms__strdup(f->labels[i]))) return -1;
    }
    if (f->kind == MS__K_REF) {
      const ms__table *p = &s->tables[t->parent];
      c->references = ptrf("%s.%s", p->name, p->fields[f->ref_field].name);
      if (!c->references) return -1;
    }
    if (!c->name) return -1;
  }
  return 0;
}

/* ---- top level --------------------------------------------------------------------- */

static void param_free(ms__param *p) {
  ms__expr_free(p->x);
  free(p->ptr);
}

static void dist_free(ms__dist *d) {
  for (int i = 0; i < MS__DIST_MAX_PARAMS; i++) param_free(&d->p[i]);
  param_free(&d->min);
  param_free(&d->max);
  free(d->qprobs);
  free(d->qvalues);
  free(d->ptr);
}

static void variant_free(ms__variant *v) {
  dist_free(&v->dist);
  free(v->cum);
  param_free(&v->p);
  ms__expr_free(v->expr);
  ms__expr_free(v->base);
  dist_free(&v->offset);
  free(v->ptr);
}

static void field_free(ms__field *f) {
  free(f->name);
  free(f->label);
  free(f->fmt);
  free(f->ptr);
  free(f->unit);
  free(f->description);
  variant_free(&f->base);
  for (size_t i = 0; i < f->n_when; i++) {
    ms__expr_free(f->when_if[i]);
    variant_free(&f->when[i]);
  }
  free(f->when_if);
  free(f->when);
  param_free(&f->min);
  param_free(&f->max);
  param_free(&f->miss_rate);
  for (size_t i = 0; i < f->n_miss_when; i++) {
    ms__expr_free(f->miss_if[i]);
    param_free(&f->miss_when_rate[i]);
  }
  free(f->miss_if);
  free(f->miss_when_rate);
  free(f->prefix);
  for (size_t i = 0; i < f->n_parts; i++) free(f->parts[i].text);
  free(f->parts);
  for (size_t i = 0; i < f->n_labels; i++) free(f->labels[i]);
  free(f->labels);
  free(f->deps);
  free(f->pdeps);
}

void ms_spec_free(ms_spec *s) {
  if (!s) return;
  for (size_t ti = 0; ti < s->n_tables; ti++) {
    ms__table *t = &s->tables[ti];
    free(t->name);
    free(t->ptr);
    free(t->description);
    ms__expr_free(t->filter);
    dist_free(&t->count);
    for (size_t fi = 0; fi < t->n_fields; fi++) field_free(&t->fields[fi]);
    free(t->fields);
    free(t->order);
    for (size_t i = 0; i < t->n_cop; i++) {
      free(t->cop[i].fields);
      free(t->cop[i].chol);
      free(t->cop[i].ptr);
    }
    free(t->cop);
    free(t->children);
    ms_table_schema_deinit(&t->schema);
  }
  free(s->tables);
  for (size_t i = 0; i < s->n_const; i++) {
    free(s->consts[i].name);
    free(s->consts[i].str);
  }
  free(s->consts);
  for (size_t i = 0; i < s->n_vocabs; i++) {
    free(s->vocabs[i].name);
    free(s->vocabs[i].path);
    ms__vocab_free(s->vocabs[i].v);
  }
  free(s->vocabs);
  ms__images_free(s->images);
  ms__fhir_free(s->fhir);
  free(s->file);
  free(s->dir);
  free(s->text);
  free(s->name);
  free(s);
}

static const char *const root_keys[] = {"$schema", "medsynth", "name", "description", "seed", "privacy",
                                        "constants", "tables", NULL};

static void parse_constants(V *v, const cJSON *cj) {
  ms_spec *s = v->s;
  if (!cJSON_IsObject(cj)) {
    verr(v, "/constants", 0, "must be an object of name: number or string");
    return;
  }
  size_t n = (size_t)cJSON_GetArraySize(cj);
  s->consts = ms__calloc(n ? n : 1, sizeof *s->consts);
  if (!s->consts) {
    oom(v, "the constants");
    return;
  }
  for (const cJSON *c = cj->child; c; c = c->next) {
    char p[512];
    ms__jsonptr_key(p, sizeof p, "/constants", c->string);
    if (!is_ident(c->string)) {
      verr(v, p, 1, "constant name \"%s\" must be an identifier", c->string);
      continue;
    }
    int dup = 0;
    for (size_t i = 0; i < s->n_const; i++) dup |= !strcmp(s->consts[i].name, c->string);
    if (dup) {
      verr(v, p, 1, "duplicate constant \"%s\"", c->string);
      continue;
    }
    ms__constant *k = &s->consts[s->n_const];
    if (cJSON_IsNumber(c)) {
      k->type = MS__EXPR_NUMBER;
      k->num = c->valuedouble;
    } else if (cJSON_IsString(c)) {
      k->type = MS__EXPR_STRING;
      k->str = ms__strdup(c->valuestring);
      if (!k->str) {
        oom(v, "a constant");
        return;
      }
    } else if (cJSON_IsBool(c)) {
      k->type = MS__EXPR_BOOL;
      k->i = cJSON_IsTrue(c);
    } else {
      verr(v, p, 0, "must be a number, string or boolean");
      continue;
    }
    k->name = ms__strdup(c->string);
    s->n_const++; /* freed with the spec from here on */
    if (!k->name) {
      oom(v, "a constant");
      return;
    }
  }
}

static ms_status load_text(ms_spec *s, ms_diag *d) {
  V vv = {.s = s, .d = d};
  V *v = &vv;
  size_t first = d->count;
  size_t deep;
  char deep_ptr[1024];
  if (ms__jsonloc_too_deep(s->text, s->len, MAX_NESTING, &deep, deep_ptr, sizeof deep_ptr)) {
    int line, col;
    ms__jsonloc_linecol(s->text, s->len, deep, &line, &col);
    return ms_diag_add(d, MS_ERR_SPEC, s->file, line, col, deep_ptr,
                       "objects and arrays nest too deeply (more than %d levels)", MAX_NESTING);
  }
  const char *end = NULL;
  /* cJSON returns NULL both for a syntax error and when an allocation fails;
   * a failing allocation sets errno to ENOMEM (malloc does, and so does the
   * fault simulation, core/alloc.c), a syntax error does not. */
  errno = 0;
  cJSON *root = cJSON_ParseWithLengthOpts(s->text, s->len, &end, 0);
  if (!root && errno == ENOMEM)
    return ms__diag_nomem(d, s->file, NULL, "the parsed JSON document");
  if (!root) {
    size_t off = end && end >= s->text ? (size_t)(end - s->text) : 0;
    if (off > s->len) off = s->len;
    int line, col;
    ms__jsonloc_linecol(s->text, s->len, off, &line, &col);
    /* A truncated document: unclosed brackets, and nothing structural after
     * the point cJSON stopped at. */
    int depth = 0, in_str = 0, structural_after = 0;
    for (size_t k = 0; k < s->len; k++) {
      char ch = s->text[k];
      if (in_str) {
        if (ch == '\\')
          k++;
        else if (ch == '"')
          in_str = 0;
        continue;
      }
      if (ch == '"')
        in_str = 1;
      else if (ch == '{' || ch == '[')
        depth++;
      else if (ch == '}' || ch == ']')
        depth--;
      if (k >= off && (ch == '{' || ch == '}' || ch == '[' || ch == ']' || ch == ',' || ch == ':'))
        structural_after = 1;
    }
    if (depth > 0 && !structural_after) {
      ms__jsonloc_linecol(s->text, s->len, s->len, &line, &col);
      off = s->len;
    }
    if (off >= s->len)
      return ms_diag_add(d, MS_ERR_PARSE, s->file, line, col, NULL,
                         "JSON syntax error: unexpected end of input");
    unsigned char ch = (unsigned char)s->text[off];
    if (ch >= 0x20 && ch < 0x7f)
      return ms_diag_add(d, MS_ERR_PARSE, s->file, line, col, NULL,
                         "JSON syntax error near '%c'", ch);
    return ms_diag_add(d, MS_ERR_PARSE, s->file, line, col, NULL,
                       "JSON syntax error near byte 0x%02x", ch);
  }
  /* trailing garbage after the document */
  {
    size_t off = (size_t)(end - s->text);
    while (off < s->len && (s->text[off] == ' ' || s->text[off] == '\n' || s->text[off] == '\r' ||
                            s->text[off] == '\t'))
      off++;
    if (off < s->len) {
      int line, col;
      ms__jsonloc_linecol(s->text, s->len, off, &line, &col);
      cJSON_Delete(root);
      return ms_diag_add(d, MS_ERR_PARSE, s->file, line, col, NULL,
                         "JSON syntax error: unexpected text after the document");
    }
  }
  if (!cJSON_IsObject(root)) {
    verr(v, "", 0, "a spec must be a JSON object");
    cJSON_Delete(root);
    return MS_ERR_SPEC;
  }
  check_keys(v, root, "", root_keys);
  const cJSON *ver = need(v, root, "", "medsynth");
  if (ver && (!cJSON_IsNumber(ver) || ver->valuedouble != 1))
    verr(v, "/medsynth", 0, "unsupported spec language version (this medsynth reads version 1)");
  const char *name = get_string(v, root, "", "name", 0);
  s->name = vdup(v, name ? name : "", "the spec's name");
  get_string(v, root, "", "description", 0);
  int64_t seed;
  if (get_int(v, root, "", "seed", 0, 0, 9007199254740992.0, &seed) == 0) s->seed = (uint64_t)seed;
  const cJSON *cj = get(v, root, "", "constants");
  if (cj) parse_constants(v, cj);
  if (v->nomem) goto done;
  const cJSON *tj = need(v, root, "", "tables");
  if (tj && (!cJSON_IsArray(tj) || cJSON_GetArraySize(tj) == 0)) {
    verr(v, "/tables", 0, "must be a non-empty array of tables");
    tj = NULL;
  }
  if (!tj) goto done;
  size_t nt = (size_t)cJSON_GetArraySize(tj);
  s->tables = ms__calloc(nt, sizeof *s->tables);
  if (!s->tables) {
    oom(v, "the table array");
    goto done;
  }
  s->n_tables = nt;
  size_t ti = 0;
  for (const cJSON *t = tj->child; t && !v->nomem; t = t->next, ti++) table_pass1(v, ti, t);
  if (v->nomem) goto done;
  /* Expressions need sound names and kinds: tables whose names, parent or
   * fields could not be read are skipped (their errors are reported already),
   * so that one run still reports every problem of the other tables. */
  for (ti = 0; ti < nt; ti++) {
    ms__table *t = &s->tables[ti];
    for (size_t fi = 0; fi < t->n_fields; fi++) set_layout(s, t, &t->fields[fi]);
  }
  for (ti = 0; ti < nt; ti++) {
    ms__table *t = &s->tables[ti];
    if (t->broken) continue;
    const cJSON *tjj = cJSON_GetArrayItem(tj, (int)ti);
    const cJSON *fl = cJSON_GetObjectItemCaseSensitive(tjj, "fields");
    size_t fi = 0;
    for (const cJSON *fj = fl->child; fj; fj = fj->next, fi++)
      if (t->fields[fi].kind == MS__K_STRING) {
        const cJSON *tp = cJSON_GetObjectItemCaseSensitive(fj, "template");
        if (cJSON_IsString(tp)) {
          char p[400];
          ms__jsonptr_key(p, sizeof p, t->fields[fi].ptr, "template");
          parse_template(v, t, &t->fields[fi], tp->valuestring, p);
        }
      }
  }
  if (v->nomem) goto done;
  for (ti = 0; ti < nt; ti++) {
    ms__table *t = &s->tables[ti];
    if (t->broken) continue;
    for (size_t fi = 0; fi < t->n_fields; fi++)
      if (t->fields[fi].kind == MS__K_STRING || t->fields[fi].id_string)
        t->fields[fi].str_width = field_str_width(s, t, fi, 0);
    for (size_t fi = 0; fi < t->n_fields; fi++)
      if (t->fields[fi].kind == MS__K_REF) t->fields[fi].str_width = field_str_width(s, t, fi, 0);
  }
  for (ti = 0; ti < nt && !v->nomem; ti++) {
    ms__table *t = &s->tables[ti];
    const cJSON *tjj = cJSON_GetArrayItem(tj, (int)ti);
    const cJSON *fl = cJSON_GetObjectItemCaseSensitive(tjj, "fields");
    size_t fi = 0;
    if (t->broken) continue;
    for (const cJSON *fj = fl->child; fj && !v->nomem; fj = fj->next, fi++) {
      ms__field *f = &t->fields[fi];
      if (f->broken) continue;
      /* the template was parsed above; skip the second parse in field_pass2 */
      ms__kind k = f->kind;
      if (k == MS__K_STRING) f->kind = MS__K_COUNT;
      v->reads_nullable = 0;
      v->pdeps = &f->pdeps;
      v->n_pdeps = &f->n_pdeps;
      field_pass2(v, ti, fi, fj);
      v->pdeps = NULL;
      v->n_pdeps = NULL;
      f->nullable = f->has_missing || v->reads_nullable;
      f->kind = k;
      if (k == MS__K_STRING && !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(fj, "template")))
        get_string(v, fj, f->ptr, "template", 1);
    }
    char p[400];
    const cJSON *flt = get(v, tjj, t->ptr, "filter");
    size_t *fdeps = NULL, nfd = 0, *cpdeps = NULL, ncpd = 0;
    if (flt) {
      ms__jsonptr_key(p, sizeof p, t->ptr, "filter");
      if (!cJSON_IsString(flt))
        verr(v, p, 0, "must be an expression string (a condition)");
      else
        t->filter = compile_at(v, ti, 0, flt->valuestring, p, MS__EXPR_BOOL, &fdeps, &nfd);
    }
    const cJSON *cnt = get(v, tjj, t->ptr, "count");
    size_t *cdeps = NULL, ncd = 0;
    if (cnt && t->parent != SIZE_MAX) {
      ms__jsonptr_key(p, sizeof p, t->ptr, "count");
      t->has_count = 1;
      v->pdeps = &cpdeps;
      v->n_pdeps = &ncpd;
      parse_dist(v, t->parent, 1, &t->count, cnt, p, 1, &cdeps, &ncd);
      v->pdeps = NULL;
      v->n_pdeps = NULL;
    }
    const cJSON *cor = get(v, tjj, t->ptr, "correlations");
    if (cor) {
      ms__jsonptr_key(p, sizeof p, t->ptr, "correlations");
      parse_correlations(v, ti, cor, p);
    }
    if (!v->nomem) order_table(v, ti);
    if (!v->nomem) {
      if (t->filter) {
        ms__jsonptr_key(p, sizeof p, t->ptr, "filter");
        check_pos_reads(v, t, fdeps, nfd, "filter", p);
        for (size_t i = 0; i < nfd; i++) mark_needed(s, ti, fdeps[i]);
      }
      if (t->has_count) {
        ms__table *pt = &s->tables[t->parent];
        check_pos_reads(v, pt, cdeps, ncd, "count", t->count.ptr);
        for (size_t i = 0; i < ncd; i++) mark_needed(s, t->parent, cdeps[i]);
        for (size_t i = 0; i < ncpd; i++) {
          const ms__field *af = &s->tables[cpdeps[i] >> 32].fields[cpdeps[i] & 0xffffffffu];
          if (af->pos_dep)
            verr(v, t->count.ptr, 0,
                 "count cannot read \"%s\": its value depends on the row's output position (ids, refs, {seq}/{row} templates)",
                 af->name);
          mark_needed(s, cpdeps[i] >> 32, cpdeps[i] & 0xffffffffu);
        }
      }
      for (size_t fi = 0; fi < t->n_fields; fi++) {
        ms__field *f = &t->fields[fi];
        if (f->cop_group >= 0 && f->pos_dep)
          verr(v, f->ptr, 0, "correlated field \"%s\" cannot depend on the row position", f->name);
      }
    }
    free(fdeps);
    free(cdeps);
    free(cpdeps);
  }
  if (v->nomem) goto done;
  /* image fields: records/images.c */
  {
    size_t before_count = d->count;
    v->errs += ms__images_load(s, tj, d);
    nomem_since(v, before_count);
  }
  if (v->errs) goto done;
  for (ti = 0; ti < nt; ti++) {
    ms__table *t = &s->tables[ti];
    if (t->parent != SIZE_MAX) {
      ms__table *p = &s->tables[t->parent];
      size_t *nc = ms__realloc(p->children, (p->n_children + 1) * sizeof *nc);
      if (!nc) {
        oom(v, "a table's child list");
        goto done;
      }
      p->children = nc;
      p->children[p->n_children++] = ti;
    }
    if (build_schema(s, ti)) {
      oom(v, "an output schema");
      goto done;
    }
  }
  /* FHIR mapping (needs the output schemas): records/fhir_map.c */
  v->errs += ms__fhir_load(s, tj, d);
done:
  cJSON_Delete(root);
  if (nomem_since(v, first)) {
    /* keep what was found before the failure and the failure itself */
    size_t k = ms__diag_find(d, first, MS_ERR_NOMEM);
    if (k != SIZE_MAX) ms__diag_truncate(d, k + 1);
    return MS_ERR_NOMEM;
  }
  return v->errs ? MS_ERR_SPEC : MS_OK;
}

ms_status ms_spec_load_string(ms_spec **out, const char *text, size_t len, const char *filename,
                              ms_diag *d) {
  *out = NULL;
  ms_diag local;
  ms_diag_init(&local);
  ms_diag *dd = d ? d : &local;
  const char *fname = filename ? filename : "<spec>";
  ms_spec *s = ms__calloc(1, sizeof *s);
  if (!s) return ms__diag_nomem(d, fname, NULL, "the spec");
  s->file = ms__strdup(fname);
  s->text = ms__malloc(len + 1);
  const char *slash = filename ? strrchr(filename, '/') : NULL;
  s->dir = slash ? ms__strndup(filename, (size_t)(slash - filename)) : ms__strdup(".");
  if (!s->file || !s->text || !s->dir) {
    ms_spec_free(s);
    return ms__diag_nomem(d, fname, NULL, "a copy of the spec text");
  }
  memcpy(s->text, text, len);
  s->text[len] = '\0';
  s->len = len;
  s->hash = XXH64(text, len, 0);
  size_t before = dd->count;
  ms_status st = load_text(s, dd);
  if (dd->count > before) ms_diag_sort(dd); /* this load's entries by position */
  ms_diag_deinit(&local);
  if (st != MS_OK) {
    ms_spec_free(s);
    return st;
  }
  *out = s;
  return MS_OK;
}

ms_status ms_spec_load(ms_spec **out, const char *path, ms_diag *d) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) {
    /* missing or unreadable input (exit 66 in the command) */
    int e = errno;
    return ms_diag_add(d, MS_ERR_NOTFOUND, path, 0, 0, NULL, "cannot open spec: %s", strerror(e));
  }
  struct stat sb;
  if (fstat(fileno(f), &sb) == 0 && !S_ISREG(sb.st_mode)) {
    fclose(f);
    return ms_diag_add(d, MS_ERR_NOTFOUND, path, 0, 0, NULL, "cannot read spec: not a regular file");
  }
  char *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len + 65536 > cap) {
      cap = cap ? cap * 2 : 65536;
      if (cap > ((size_t)1 << 30)) {
        free(buf);
        fclose(f);
        return ms_diag_add(d, MS_ERR_IO, path, 0, 0, NULL, "spec file is larger than 1 GiB");
      }
      char *nb = ms__realloc(buf, cap);
      if (!nb) {
        free(buf);
        fclose(f);
        return ms_diag_add(d, MS_ERR_NOMEM, path, 0, 0, NULL, "out of memory reading spec");
      }
      buf = nb;
    }
    size_t got = fread(buf + len, 1, cap - len, f);
    len += got;
    if (got == 0) break;
  }
  int err = ferror(f);
  fclose(f);
  if (err) {
    free(buf);
    return ms_diag_add(d, MS_ERR_IO, path, 0, 0, NULL, "cannot read spec");
  }
  ms_status st = ms_spec_load_string(out, buf ? buf : "", len, path, d);
  free(buf);
  return st;
}

const char *ms_spec_name(const ms_spec *s) { return s->name; }
const char *ms_spec_text(const ms_spec *s, size_t *len) {
  if (len) *len = s->len;
  return s->text;
}
uint64_t ms_spec_hash(const ms_spec *s) { return s->hash; }
uint64_t ms_spec_seed(const ms_spec *s) { return s->seed; }
size_t ms_spec_n_tables(const ms_spec *s) { return s->n_tables; }
size_t ms_spec_table_find(const ms_spec *s, const char *name) {
  for (size_t i = 0; i < s->n_tables; i++)
    if (!strcmp(s->tables[i].name, name)) return i;
  return SIZE_MAX;
}
const ms_table_schema *ms_spec_table_schema(const ms_spec *s, size_t i) {
  return i < s->n_tables ? &s->tables[i].schema : NULL;
}
size_t ms_spec_table_parent(const ms_spec *s, size_t i) {
  return i < s->n_tables ? s->tables[i].parent : SIZE_MAX;
}
uint64_t ms_spec_table_rows(const ms_spec *s, size_t i) {
  return i < s->n_tables && s->tables[i].parent == SIZE_MAX ? s->tables[i].rows : 0;
}
int ms_spec_table_has_filter(const ms_spec *s, size_t i) {
  return i < s->n_tables && s->tables[i].filter != NULL;
}
