/* Spec loader, pass 1 (shapes): the keys, names and kinds of every table
 * and field, categorical labels and vocabularies; then the storage layout
 * of every field and the string templates (records/spec_int.h). */

#include "core/suggest.h"
#include "core/names.h"
#include "medsynth/rng.h"
#include "records/spec_int.h"

/* ---- kinds ------------------------------------------------------------- */

static const char *const kind_names[] = {
#define MS__KIND_NAME(id, name) name,
    MS__KIND_TABLE(MS__KIND_NAME)
#undef MS__KIND_NAME
};
_Static_assert(sizeof kind_names / sizeof *kind_names == MS__K_COUNT, "one name per kind");

const char *ms__kind_name(ms__kind k) { return ms__name_of(kind_names, MS__K_COUNT, (int)k, "?"); }

static const char *const common_keys[] = {"name", "label", "kind", "description", "unit",
                                          "hidden", "missing", "when", "fhir", NULL};
/* Keys of each kind besides the common ones (NULL-terminated). */
static const char *const kind_keys[MS__K_COUNT][8] = {
    [MS__K_ID] = {"format", "prefix", "width", "start", NULL},
    [MS__K_STRING] = {"template", NULL},
    [MS__K_CATEGORICAL] = {"values", "vocab", NULL},
    [MS__K_INTEGER] = {"dist", "expr", "min", "max", NULL},
    [MS__K_REAL] = {"dist", "expr", "min", "max", "precision", "format", NULL},
    [MS__K_BOOL] = {"p", "expr", NULL},
    [MS__K_DATE] = {"base", "offset_days", "expr", "min", "max", "format", NULL},
    [MS__K_DATETIME] = {"base", "offset_days", "expr", "min", "max", "format", NULL},
    [MS__K_REF] = {NULL},
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
double *ms__spec_values_cum(V *v, const ms__field *f, const cJSON *vals, const char *ptr) {
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

ms__vocab *ms__spec_vocab_get(V *v, const char *name, const char *ptr) {
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
  ms__vocab *vo = ms__spec_vocab_get(v, name, pn);
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

static void field_pass1(V *v, ms__field *f, const cJSON *fj, const char *fptr) {
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
    f->kind = (ms__kind)ms__name_find(kind_names, MS__K_COUNT, kind);
    if (f->kind == MS__K_COUNT) {
      f->broken = 1;
      char p[1024];
      ms__jsonptr_key(p, sizeof p, fptr, "kind");
      verr_unknown(v, p, "field kind", kind, kind_names, MS__K_COUNT);
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
}

static const char *const table_keys[] = {"name", "description", "rows", "parent", "count",
                                         "filter", "max_candidates", "fields", "correlations",
                                         "images", "fhir", NULL};

void ms__spec_table_pass1(V *v, size_t ti, const cJSON *tj) {
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
    field_pass1(v, f, fj, fptr);
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

/* Storage layout of every field, then the string templates of the tables
 * that could be read, then the text widths that need both. */
void ms__spec_templates(V *v, const cJSON *tj) {
  ms_spec *s = v->s;
  size_t nt = s->n_tables, ti;
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
  if (v->nomem) return;
  for (ti = 0; ti < nt; ti++) {
    ms__table *t = &s->tables[ti];
    if (t->broken) continue;
    for (size_t fi = 0; fi < t->n_fields; fi++)
      if (t->fields[fi].kind == MS__K_STRING || t->fields[fi].id_string)
        t->fields[fi].str_width = field_str_width(s, t, fi, 0);
    for (size_t fi = 0; fi < t->n_fields; fi++)
      if (t->fields[fi].kind == MS__K_REF) t->fields[fi].str_width = field_str_width(s, t, fi, 0);
  }
}
