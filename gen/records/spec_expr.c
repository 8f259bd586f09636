/* Spec loader, pass 2 of the fields: the expression scope, expressions,
 * parameters, distributions, variants ("when" rules), missingness and
 * bounds (records/spec_int.h). */
#include <float.h>

#include "medsynth/version.h"
#include "core/suggest.h"
#include "records/spec_int.h"

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
  return ms__spec_vocab_get(rc->v, name, pos->where ? pos->where : "");
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
ms__expr *ms__spec_compile_at(V *v, size_t ti, int count_scope, const char *src, const char *ptr,
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
  ms__expr_compile_params o;
  ms__expr_compile_params_init(&o);
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
  ms__expr *e = ms__spec_compile_at(v, ti, count_scope, j->valuestring, ptr, want, deps, nd);
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

void ms__spec_parse_dist(V *v, size_t ti, int count_scope, ms__dist *d, const cJSON *j,
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
    char p[1024];
    ms__jsonptr_key(p, sizeof p, ptr, "type");
    verr_unknown(v, p, "distribution", type, ms__dist_names(), MS__DIST_COUNT);
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
    } else if (d->type == MS__DIST_QUANTILES) {
      /* a speed-up only: without it (out of memory) the draws bisect */
      d->qguide = ms__dist_quantile_guide(d->qprobs, d->qn, &d->qgbits);
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
  a->qguide = d->qguide;
  a->qgbits = d->qgbits;
  if (d->type == MS__DIST_QUANTILES) return d->qn >= 2;
  for (int i = 0; i < nt; i++) {
    if (!d->p[i].set || d->p[i].x) return 0;
    a->p[i] = d->p[i].value;
  }
  char msg[64];
  return ms__dist_check(d->type, a, msg, sizeof msg) < 0;
}

/* ---- pass 2: expressions, parameters, variants ----------------------------- */

/* Keys a "when" rule may override, per kind. */
static const char *const when_keys[MS__K_COUNT][6] = {
    [MS__K_ID] = {NULL},
    [MS__K_STRING] = {NULL},
    [MS__K_CATEGORICAL] = {"values", NULL},
    [MS__K_INTEGER] = {"dist", "expr", NULL},
    [MS__K_REAL] = {"dist", "expr", NULL},
    [MS__K_BOOL] = {"p", "expr", NULL},
    [MS__K_DATE] = {"base", "offset_days", "expr", NULL},
    [MS__K_DATETIME] = {"base", "offset_days", "expr", NULL},
    [MS__K_REF] = {NULL},
};

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
        ms__spec_parse_dist(v, ti, 0, &var->dist, dj, p, 0, &f->deps, &f->n_deps);
      } else if (ej) {
        ms__jsonptr_key(p, sizeof p, ptr, "expr");
        if (!cJSON_IsString(ej))
          verr(v, p, 0, "must be an expression string");
        else
          var->expr = ms__spec_compile_at(v, ti, 0, ej->valuestring, p, MS__EXPR_NUMBER, &f->deps, &f->n_deps);
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
          var->expr = ms__spec_compile_at(v, ti, 0, ej->valuestring, p, MS__EXPR_BOOL, &f->deps, &f->n_deps);
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
          var->expr = ms__spec_compile_at(v, ti, 0, ej->valuestring, p, date_type(f), &f->deps, &f->n_deps);
      }
      if (bj) {
        ms__jsonptr_key(p, sizeof p, ptr, "base");
        if (!cJSON_IsString(bj))
          verr(v, p, 0, "must be an expression string giving a %s", ms__kind_name(f->kind));
        else
          var->base = ms__spec_compile_at(v, ti, 0, bj->valuestring, p, date_type(f), &f->deps, &f->n_deps);
      }
      if (oj) {
        ms__jsonptr_key(p, sizeof p, ptr, "offset_days");
        var->has_offset = 1;
        ms__spec_parse_dist(v, ti, 0, &var->offset, oj, p, 0, &f->deps, &f->n_deps);
      }
      break;
    }
    case MS__K_CATEGORICAL:
      c = get(v, j, ptr, "values");
      if (c) {
        ms__jsonptr_key(p, sizeof p, ptr, "values");
        var->cum = ms__spec_values_cum(v, f, c, p);
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
  if (n > MS_SPEC_MAX_RULES) {
    verr(v, wp, 0, "at most " MS__STR(MS_SPEC_MAX_RULES) " rules");
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
      f->miss_if[i] = ms__spec_compile_at(v, ti, 0, cond, cp, MS__EXPR_BOOL, &f->deps, &f->n_deps);
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
  /* a string's template was parsed with the other templates (load_text) */
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
      if (n > MS_SPEC_MAX_RULES) {
        verr(v, wp, 0, "at most " MS__STR(MS_SPEC_MAX_RULES) " rules");
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
          f->when_if[i] = ms__spec_compile_at(v, ti, 0, cond, cp, MS__EXPR_BOOL, &f->deps, &f->n_deps);
        }
        int any = 0;
        for (size_t k = 1; k < na; k++) any |= get(v, r, rp, allowed[k]) != NULL;
        if (!any) verr(v, rp, 0, "rule overrides nothing (give one of the field's keys besides \"if\")");
        parse_variant(v, ti, f, &f->when[i], r, rp, 1);
      }
    }
  }
}

/* Pass 2 over the fields of table ti (tj its JSON): expressions,
 * parameters, bounds, missingness, "when" rules; then whether each field
 * can be missing. */
void ms__spec_fields_pass2(V *v, size_t ti, const cJSON *tj) {
  ms__table *t = &v->s->tables[ti];
  const cJSON *fl = cJSON_GetObjectItemCaseSensitive(tj, "fields");
  size_t fi = 0;
  for (const cJSON *fj = fl->child; fj && !v->nomem; fj = fj->next, fi++) {
    ms__field *f = &t->fields[fi];
    if (f->broken) continue;
    v->reads_nullable = 0;
    v->pdeps = &f->pdeps;
    v->n_pdeps = &f->n_pdeps;
    field_pass2(v, ti, fi, fj);
    v->pdeps = NULL;
    v->n_pdeps = NULL;
    f->nullable = f->has_missing || v->reads_nullable;
    if (f->kind == MS__K_STRING && !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(fj, "template")))
      get_string(v, fj, f->ptr, "template", 1);
  }
}
