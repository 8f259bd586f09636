/* Spec loader, pass 2 of a table and what follows it: correlation groups,
 * filter and count, the dependency order of the fields (pass 3), the
 * position-dependence checks and the output schemas (records/spec_int.h). */
#include <gsl/gsl_linalg.h>

#include "core/suggest.h"
#include "medsynth/rng.h"
#include "records/spec_int.h"

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

int ms__spec_build_schema(ms_spec *s, size_t ti) {
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

/* ---- pass 2 of a table ------------------------------------------------------------ */

/* The table-level part of pass 2 for table ti (tj its JSON): filter, count,
 * correlations, then pass 3 (order) and the checks of position dependence
 * that need the order. */
void ms__spec_table_pass2(V *v, size_t ti, const cJSON *tj) {
  ms_spec *s = v->s;
  ms__table *t = &s->tables[ti];
  char p[400];
  const cJSON *flt = get(v, tj, t->ptr, "filter");
  size_t *fdeps = NULL, nfd = 0, *cpdeps = NULL, ncpd = 0;
  if (flt) {
    ms__jsonptr_key(p, sizeof p, t->ptr, "filter");
    if (!cJSON_IsString(flt))
      verr(v, p, 0, "must be an expression string (a condition)");
    else
      t->filter = ms__spec_compile_at(v, ti, 0, flt->valuestring, p, MS__EXPR_BOOL, &fdeps, &nfd);
  }
  const cJSON *cnt = get(v, tj, t->ptr, "count");
  size_t *cdeps = NULL, ncd = 0;
  if (cnt && t->parent != SIZE_MAX) {
    ms__jsonptr_key(p, sizeof p, t->ptr, "count");
    t->has_count = 1;
    v->pdeps = &cpdeps;
    v->n_pdeps = &ncpd;
    ms__spec_parse_dist(v, t->parent, 1, &t->count, cnt, p, 1, &cdeps, &ncd);
    v->pdeps = NULL;
    v->n_pdeps = NULL;
  }
  const cJSON *cor = get(v, tj, t->ptr, "correlations");
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
