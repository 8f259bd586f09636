/* Spec loader: reads a JSON spec, validates every part of it (reporting every
 * problem at once with file:line:column and JSON Pointer), and compiles it
 * into the plan of records/plan.h that the generator runs.
 *
 * Passes, with the file of each (behind the private records/spec_int.h):
 *   0. JSON nesting depth (at most MAX_NESTING levels, checked before any
 *      recursive parser or walk sees the text) and syntax (cJSON, end
 *      pointer -> line:column): this file, the driver, which also reads the
 *      document's top level and runs the passes in order;
 *   1. shape: keys, types, names, kinds, distributions, labels, vocabularies
 *      (for every table and field, before any expression is compiled, so that
 *      expressions can refer to any field of any table), then storage layout
 *      and string templates: spec_fields.c;
 *   2. expressions, parameters, bounds of the fields: spec_expr.c; filter,
 *      count and correlations of each table: spec_order.c;
 *   3. dependencies: cycles, topological order, position dependence:
 *      spec_order.c;
 *   4. output schemas: spec_order.c.
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
#include <sys/stat.h>
#include <xxhash.h>

#include "core/suggest.h"
#include "records/fhir.h"
#include "records/images.h"
#include "records/spec_int.h"

/* Objects and arrays of a spec nest at most this deep (docs/spec.md). Real
 * specs need about ten levels; the limit keeps hostile input away from the
 * recursion in cJSON and in the locator (core/jsonloc). */
#define MAX_NESTING 64

/* ---- diagnostics at JSON Pointers --------------------------------------- */

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
  free(d->qguide);
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
  v->jc = (ms__jcheck){jc_report, v, 1};
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
  for (const cJSON *t = tj->child; t && !v->nomem; t = t->next, ti++) ms__spec_table_pass1(v, ti, t);
  if (v->nomem) goto done;
  /* Expressions need sound names and kinds: tables whose names, parent or
   * fields could not be read are skipped (their errors are reported already),
   * so that one run still reports every problem of the other tables. */
  ms__spec_templates(v, tj);
  if (v->nomem) goto done;
  for (ti = 0; ti < nt && !v->nomem; ti++) {
    if (s->tables[ti].broken) continue;
    const cJSON *tjj = cJSON_GetArrayItem(tj, (int)ti);
    ms__spec_fields_pass2(v, ti, tjj);
    ms__spec_table_pass2(v, ti, tjj);
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
    if (ms__spec_build_schema(s, ti)) {
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
