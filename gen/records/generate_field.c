/* Row generator, one field over a chunk (records/generate_int.h): the
 * expression frame and evaluation, typed stores, distribution draws with
 * cached truncation windows, ids and text templates, missingness, and one
 * generator per field kind. Messages name the row (table/row locator). */
#include "records/generate_int.h"

/* ---- row locations for messages ----------------------------------------------- */

static void row_where(const tchunk *c, size_t r, char *buf, size_t cap) {
  if (!c->parent) {
    snprintf(buf, cap, "%s/row %" PRIu64, c->t->name, c->uid[r]);
    return;
  }
  char pb[512];
  row_where(c->parent, c->idx[1][r], pb, sizeof pb);
  snprintf(buf, cap, "%s/child %u of %s", c->t->name, c->kidx[r] + 1, pb);
}

ms_status ms__gen_row_error(ws_t *w, const tchunk *c, size_t r, const char *ptr, const char *fmt,
                            ...) {
  char where[640], msg[512];
  row_where(c, r, where, sizeof where);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ms_diag_add(w->d, MS_ERR_DATA, NULL, 0, 0, where, "%s%s%s", ptr ? ptr : "", ptr ? ": " : "",
              msg);
  if (w->st == MS_OK) w->st = MS_ERR_DATA;
  return MS_ERR_DATA;
}

/* ---- expression evaluation ------------------------------------------------------ */

/* Frame of the chunk's columns and its ancestors'. With rows, the frame
 * holds rows[0..m) of the chunk only: its own columns are read through
 * rows, an ancestor's through the ancestor row of each of them. */
static int build_frame(ws_t *w, const tchunk *c, const uint32_t *rows, size_t m) {
  const ms_spec *s = c->s;
  size_t total = 0;
  for (size_t t = c->ti; t != SIZE_MAX; t = s->tables[t].parent) total += s->tables[t].n_fields;
  if (total > w->ncols) {
    free(w->cols);
    w->ncols = 0;
    w->cols = ms__calloc(total, sizeof *w->cols);
    if (!w->cols) return -1;
    w->ncols = total;
  }
  const tchunk *a = c;
  int level = 0;
  for (size_t t = c->ti; t != SIZE_MAX && a; t = s->tables[t].parent, a = a->parent, level++) {
    size_t base = ms__slot_base(s, c->ti, level);
    for (size_t fi = 0; fi < s->tables[t].n_fields; fi++) {
      ms__expr_col *col = &w->cols[base + fi];
      static const double zero8[1] = {0};
      col->data = a->data[fi] ? a->data[fi] : (const void *)zero8;
      col->valid = a->valid[fi];
      col->index = level ? c->idx[level] : NULL;
      if (rows) col->index = level ? w->sidx[level] : rows;
    }
    if (rows && level)
      for (size_t j = 0; j < m; j++) w->sidx[level][j] = c->idx[level][rows[j]];
  }
  return 0;
}

/* Evaluates x over the chunk (or over rows[0..m) of it, compactly: result j
 * is row rows[j]) into out (result type layout) and ok. */
static ms_status eval_rows(ws_t *w, const tchunk *c, const ms__expr *x, void *out, uint8_t *ok,
                           const uint32_t *rows, size_t m) {
  size_t n = rows ? m : c->n;
  if (build_frame(w, c, rows, m)) return ws_nomem(w, c->t->name, "an expression's columns");
  ms__expr_error err;
  ms_status st = ms__expr_eval(x, w->cols, w->ncols, n, out, ok, w->xs, &err);
  if (st != MS_OK) {
    char where[640];
    if (err.row < n)
      row_where(c, rows ? rows[err.row] : err.row, where, sizeof where);
    else
      snprintf(where, sizeof where, "%s", c->t->name);
    ms__expr_error_report(x, &err, w->d, where);
    if (w->st == MS_OK) w->st = st;
  }
  return st;
}

ms_status ms__gen_eval_raw(ws_t *w, const tchunk *c, const ms__expr *x, void *out,
                           uint8_t *ok) {
  return eval_rows(w, c, x, out, ok, NULL, 0);
}

/* Evaluates a number/date/datetime-valued expression into doubles (over
 * rows[0..m) compactly when rows is given). */
static ms_status eval_double_rows(ws_t *w, const tchunk *c, const ms__expr *x, double *out,
                                  uint8_t *ok, const uint32_t *rows, size_t m) {
  ms__expr_type t = ms__expr_result_type(x);
  size_t n = rows ? m : c->n;
#define EVAL_HERE(w, c, x, out, ok) eval_rows(w, c, x, out, ok, rows, m)
  if (t == MS__EXPR_NUMBER || t == MS__EXPR_DURATION) return EVAL_HERE(w, c, x, out, ok);
  if (t == MS__EXPR_DATE) {
    int32_t *tmp = (int32_t *)out; /* int32 fit in the first half; expand backwards */
    ms_status st = EVAL_HERE(w, c, x, tmp, ok);
    if (st) return st;
    for (size_t i = n; i-- > 0;) out[i] = (double)tmp[i];
    return MS_OK;
  }
  if (t == MS__EXPR_DATETIME) {
    int64_t *tmp = (int64_t *)out;
    ms_status st = EVAL_HERE(w, c, x, tmp, ok);
    if (st) return st;
    for (size_t i = 0; i < n; i++) out[i] = (double)tmp[i];
    return MS_OK;
  }
  if (t == MS__EXPR_BOOL) {
    uint8_t *tmp = (uint8_t *)out;
    ms_status st = EVAL_HERE(w, c, x, tmp, ok);
    if (st) return st;
    for (size_t i = n; i-- > 0;) out[i] = tmp[i];
    return MS_OK;
  }
#undef EVAL_HERE
  return w->st = MS_ERR_INTERNAL;
}

static ms_status eval_double(ws_t *w, const tchunk *c, const ms__expr *x, double *out,
                             uint8_t *ok) {
  return eval_double_rows(w, c, x, out, ok, NULL, 0);
}

/* eval_rows for the rows of one variant (see eval_double_sel); es is the
 * size of one result value in the expression's layout. */
static ms_status eval_raw_sel(ws_t *w, const tchunk *c, const ms__expr *x, void *out, uint8_t *ok,
                              size_t es, const uint32_t *rows, size_t m) {
  if (!rows) return ms__gen_eval_raw(w, c, x, out, ok);
  ms_status st = eval_rows(w, c, x, w->cbuf, w->cok, rows, m);
  if (st) return st;
  const char *src = (const char *)w->cbuf;
  for (size_t j = 0; j < m; j++) {
    memcpy((char *)out + (size_t)rows[j] * es, src + j * es, es);
    ok[rows[j]] = w->cok[j];
  }
  return MS_OK;
}

/* eval_double for the rows of one "when" variant: an expression is
 * evaluated on rows[0..m) only and scattered into out / ok at those rows;
 * other rows are left as they are (the caller reads only rows[]). NULL rows
 * means every row. Rows that do not take a branch cost nothing, and a
 * branch's expression cannot fail on rows it does not apply to. */
static ms_status eval_double_sel(ws_t *w, const tchunk *c, const ms__expr *x, double *out,
                                 uint8_t *ok, const uint32_t *rows, size_t m) {
  if (!rows) return eval_double(w, c, x, out, ok);
  ms_status st = eval_double_rows(w, c, x, w->cbuf, w->cok, rows, m);
  if (st) return st;
  for (size_t j = 0; j < m; j++) {
    out[rows[j]] = w->cbuf[j];
    ok[rows[j]] = w->cok[j];
  }
  return MS_OK;
}

/* A parameter over the chunk (or the rows of one variant, see
 * eval_double_sel): constant fill or expression. */
static ms_status eval_param_sel(ws_t *w, const tchunk *c, const ms__param *p, double dflt,
                                double *out, uint8_t *ok, const uint32_t *rows, size_t m) {
  size_t n = c->n;
  if (!p->set || !p->x) {
    double v = p->set ? p->value : dflt;
    for (size_t i = 0; i < n; i++) out[i] = v;
    memset(ok, 1, n);
    return MS_OK;
  }
  return eval_double_sel(w, c, p->x, out, ok, rows, m);
}

ms_status ms__gen_eval_param(ws_t *w, const tchunk *c, const ms__param *p, double dflt,
                             double *out, uint8_t *ok) {
  return eval_param_sel(w, c, p, dflt, out, ok, NULL, 0);
}

/* A parameter read as out[r & *mask], ok[r & *mask]: a constant is stored
 * once at index 0 (*mask = 0), with no per-row fill; an expression is
 * evaluated as by eval_param_sel (*mask = all ones). */
static ms_status eval_param_m(ws_t *w, const tchunk *c, const ms__param *p, double dflt,
                              double *out, uint8_t *ok, const uint32_t *rows, size_t m,
                              size_t *mask) {
  if (!p->set || !p->x) {
    out[0] = p->set ? p->value : dflt;
    ok[0] = 1;
    *mask = 0;
    return MS_OK;
  }
  *mask = SIZE_MAX;
  return eval_double_sel(w, c, p->x, out, ok, rows, m);
}

/* Sorts the rows by variant (vsel, 0..nw) into w->srows, each variant's
 * rows in increasing order, in one pass (a counting sort). */
static void variant_index(ws_t *w, const tchunk *c, const uint8_t *vsel, size_t nw) {
  size_t n = c->n;
  if (!nw) return;
  memset(w->voff, 0, (nw + 2) * sizeof *w->voff);
  for (size_t r = 0; r < n; r++) w->voff[vsel[r] + 1]++;
  for (size_t k = 1; k <= nw + 1; k++) w->voff[k] += w->voff[k - 1];
  uint32_t at[257];
  memcpy(at, w->voff, (nw + 1) * sizeof *at);
  for (size_t r = 0; r < n; r++) w->srows[at[vsel[r]]++] = (uint32_t)r;
}

/* Rows whose variant (vsel) is k, from variant_index; NULL when every row
 * is (no rules, or one variant for all). */
static const uint32_t *variant_rows(ws_t *w, const tchunk *c, size_t nw, size_t k, size_t *m) {
  size_t n = c->n;
  if (!nw) {
    *m = k ? 0 : n;
    return NULL;
  }
  *m = w->voff[k + 1] - w->voff[k];
  return *m == n ? NULL : w->srows + w->voff[k];
}

/* vsel[r] = 0 for the field's own definition, k + 1 for the first matching
 * "when" rule k. */
/* Rules that all read "x == 'label'" of one categorical field x of the
 * table (a graphical model's conditional tables): the rule of each label in
 * a table, one look-up per row instead of one comparison per rule and row.
 * 0 when the rules are of another shape. */
static int select_by_label(const tchunk *c, ms__expr *const *conds, size_t nw, uint8_t *vsel) {
  uint8_t lut[256] = {0};
  int32_t slot = -1;
  for (size_t k = 0; k < nw; k++) {
    int32_t sk;
    int64_t code;
    if (!conds[k]) continue;
    if (!ms__expr_code_eq(conds[k], &sk, &code) || (slot >= 0 && sk != slot) || code < 0 || code > 255 ||
        sk < 0 || (size_t)sk >= c->t->n_fields)
      return 0;
    slot = sk;
    if (!lut[code]) lut[code] = (uint8_t)(k + 1); /* the first rule that holds wins */
  }
  if (slot < 0) return 0;
  const int32_t *code = c->data[slot];
  const uint8_t *valid = c->valid[slot];
  for (size_t r = 0; r < c->n; r++) vsel[r] = valid[r] && code[r] >= 0 && code[r] < 256 ? lut[code[r]] : 0;
  return 1;
}

/* Rules that all read "x == 'l1' and y == 'l2'" of the same two
 * categorical fields x, y of the table, in that order (a conditional table
 * with two parents): the rule of each pair of labels in a table of
 * (largest code of x + 1) x (largest code of y + 1), one look-up per row. A
 * row with x or y missing matches no rule, as in the general path (a
 * missing comparison does not hold). 0 when the rules are of another shape
 * or the table cannot be allocated. */
static int select_by_label2(const tchunk *c, ms__expr *const *conds, size_t nw, uint8_t *vsel) {
  uint8_t pair[255][2];
  int32_t slot[2] = {-1, -1};
  size_t nx = 0, ny = 0;
  for (size_t k = 0; k < nw; k++) {
    int32_t sk[2];
    int64_t code[2];
    if (!conds[k]) continue;
    if (!ms__expr_code_eq2(conds[k], sk, code)) return 0;
    for (int j = 0; j < 2; j++)
      if ((slot[0] >= 0 && sk[j] != slot[j]) || code[j] < 0 || code[j] > 255 || sk[j] < 0 ||
          (size_t)sk[j] >= c->t->n_fields)
        return 0;
    slot[0] = sk[0];
    slot[1] = sk[1];
    pair[k][0] = (uint8_t)code[0];
    pair[k][1] = (uint8_t)code[1];
    if ((size_t)code[0] >= nx) nx = (size_t)code[0] + 1;
    if ((size_t)code[1] >= ny) ny = (size_t)code[1] + 1;
  }
  if (slot[0] < 0) return 0;
  uint8_t *lut = ms__calloc(nx * ny, 1);
  if (!lut) return 0; /* the general path selects the same rules */
  for (size_t k = 0; k < nw; k++) {
    if (!conds[k]) continue;
    uint8_t *at = &lut[pair[k][0] * ny + pair[k][1]];
    if (!*at) *at = (uint8_t)(k + 1); /* the first rule that holds wins */
  }
  const int32_t *cx = c->data[slot[0]], *cy = c->data[slot[1]];
  const uint8_t *vx = c->valid[slot[0]], *vy = c->valid[slot[1]];
  for (size_t r = 0; r < c->n; r++)
    vsel[r] = vx[r] && vy[r] && (uint32_t)cx[r] < nx && (uint32_t)cy[r] < ny
                  ? lut[(size_t)cx[r] * ny + (size_t)cy[r]]
                  : 0;
  free(lut);
  return 1;
}

static ms_status select_variants(ws_t *w, const tchunk *c, ms__expr *const *conds, size_t nw,
                                 uint8_t *vsel) {
  size_t n = c->n;
  if (nw < 256 && (select_by_label(c, conds, nw, vsel) || select_by_label2(c, conds, nw, vsel)))
    return MS_OK;
  memset(vsel, 0, n);
  uint8_t *val = w->ok[10], *ok = w->ok[11];
  for (size_t k = nw; k-- > 0;) {
    if (!conds[k]) continue;
    ms_status st = ms__gen_eval_raw(w, c, conds[k], val, ok);
    if (st) return st;
    uint8_t kv = (uint8_t)(k + 1);
    for (size_t r = 0; r < n; r++) vsel[r] = (ok[r] & (val[r] != 0)) ? kv : vsel[r];
  }
  return MS_OK;
}

/* The field's value uniforms u[r] = uniform(key, uid[r], MS__LANE_VALUE)
 * for the whole chunk, computed at most once per field (*have) in
 * w->tmp[10] and shared by all its variants. */
static const double *field_uniforms(ws_t *w, const tchunk *c, ms_rng_key key, int *have) {
  if (!*have) ms_rng_uniform_n(key, c->uid, MS__LANE_VALUE, w->tmp[10], c->n);
  *have = 1;
  return w->tmp[10];
}

/* ---- typed stores ----------------------------------------------------------------- */

static void store_num(const ms__field *f, void *data, size_t r, double v) {
  switch (f->layout) {
    case MS__EXPR_LAYOUT_F64: ((double *)data)[r] = v; break;
    case MS__EXPR_LAYOUT_I64: ((int64_t *)data)[r] = (int64_t)v; break;
    case MS__EXPR_LAYOUT_I32: ((int32_t *)data)[r] = (int32_t)v; break;
    case MS__EXPR_LAYOUT_U8: ((uint8_t *)data)[r] = (uint8_t)(v != 0); break;
    default: break;
  }
}

static void clear_value(const ms__field *f, void *data, size_t r) {
  size_t es = elem_size(f);
  memset((char *)data + r * es, 0, es);
}

/* ---- draws ------------------------------------------------------------------------ */

/* draw_u, draw_int and draw_real: records/generate_int.h */

/* Rows of a copula block: its members' normals (k x 256 doubles) stay in cache. */
#define COPULA_BLOCK 256

/* Copula uniforms of every field of group gi for the chunk's rows:
 * z = L e with e_2m, e_2m+1 the two normals of ms_rng_normal2(key of the
 * group, uid, lane m) and L the Cholesky factor, u = Phi(z)
 * (docs/reproducibility.md). Numeric fields feed u to their quantile
 * function, categorical fields pick the label whose cumulative interval
 * holds u, bool fields are true when u > 1 - p (docs/spec.md,
 * Correlations). */

static int copula_fill(ws_t *w, tchunk *c, size_t gi) {
  const ms__copula *g = &c->t->cop[gi];
  ms_rng_key key = ms_rng_key_make(w->seed, g->stream);
  size_t n = c->n, k = g->n;
  for (size_t j = 0; j < k; j++) {
    size_t fi = g->fields[j];
    if (!c->cu[fi]) {
      c->cu[fi] = ms__malloc(c->cap * sizeof(double));
      if (!c->cu[fi]) return -1;
    }
    c->cu_done[fi] = 1;
  }
  /* e: the sine partners of an odd last member, then a block's z */
  double *e = ms__malloc((n > COPULA_BLOCK ? n : COPULA_BLOCK) * sizeof *e);
  if (!e) return -1;
  /* the normals go first into the fields' buffers, many rows at once: lane
   * m gives members 2m and 2m + 1 the two Box-Muller normals of one block
   * (an odd last member the first) */
  for (size_t j = 0; j < k; j += 2)
    ms_rng_normal2_n(key, c->uid, j / 2, c->cu[g->fields[j]], j + 1 < k ? c->cu[g->fields[j + 1]] : e, n);
  /* then, a block of rows at a time, member i's z = sum over j <= i of
   * L_ij e_j (in that order, as one row's loop would add them) replaces
   * its normal by u: from the last member down, so the e_j a member reads
   * are still the normals */
  for (size_t r0 = 0; r0 < n; r0 += COPULA_BLOCK) {
    size_t m = n - r0 < COPULA_BLOCK ? n - r0 : COPULA_BLOCK;
    for (size_t i = k; i-- > 0;) {
      const double *L = &g->chol[i * k];
      const double *e0 = c->cu[g->fields[0]] + r0;
#pragma omp simd
      for (size_t r = 0; r < m; r++) e[r] = 0.0 + L[0] * e0[r];
      for (size_t j = 1; j <= i; j++) {
        const double *ej = c->cu[g->fields[j]] + r0, l = L[j];
#pragma omp simd
        for (size_t r = 0; r < m; r++) e[r] += l * ej[r];
      }
      double *out = c->cu[g->fields[i]] + r0;
      for (size_t r = 0; r < m; r++) {
        double u = ms__normal_cdf(e[r]);
        /* keep u inside (0, 1) so quantile functions stay finite */
        if (u <= 0) u = 5e-324;
        if (u >= 1) u = 1 - 1.1102230246251565e-16;
        out[r] = u;
      }
    }
  }
  free(e);
  return 0;
}

static inline uint64_t dbits(double x) {
  uint64_t b;
  memcpy(&b, &x, sizeof b);
  return b;
}

/* Empties the window cache for a new field or chunk. */
static void wcache_reset(ws_t *w) {
  if (++w->wstamp == 0) { /* wrapped: old stamps could match again */
    wcache_reset(w);
    w->wstamp = 1;
  }
}

/* The cache entry of (parameters P[0..np)[r], the rest 0, lo, hi),
 * replacing whatever shared its slot. The key is read from the parameter
 * columns, not from a just-written ms__dist_args (a store-forwarding stall
 * per row). */
static wentry *wcache_get(wentry *wc, uint32_t stamp, double *const *P, const size_t *PM, int np,
                          size_t r, double lo, double hi) {
  uint64_t k[WKEY_N];
  for (int i = 0; i < MS__DIST_MAX_PARAMS; i++) k[i] = i < np ? dbits(P[i][r & PM[i]]) : 0;
  k[MS__DIST_MAX_PARAMS] = dbits(lo);
  k[MS__DIST_MAX_PARAMS + 1] = dbits(hi);
  /* independent products (no serial chain through the words), then a
   * final mix; the hash only spreads keys, equality is checked in full */
  static const uint64_t mul[WKEY_N] = {0x9E3779B97F4A7C15ull, 0xC2B2AE3D27D4EB4Full,
                                       0x165667B19E3779F9ull, 0xD6E8FEB86659FD93ull,
                                       0xFF51AFD7ED558CCDull, 0xC4CEB9FE1A85EC53ull};
  uint64_t hsh = 0, diff = 0;
  for (int i = 0; i < WKEY_N; i++) hsh += k[i] * mul[i];
  hsh ^= hsh >> 32;
  wentry *e = &wc[(hsh * 0xBF58476D1CE4E5B9ull) >> (64 - WCACHE_BITS)];
  for (int i = 0; i < WKEY_N; i++) diff |= e->key[i] ^ k[i];
  if (e->stamp == stamp && !diff) return e;
  memcpy(e->key, k, sizeof k);
  e->stamp = stamp;
  e->checked = 0;
  e->tw.mode = MS__TRUNC_COUNT;
  return e;
}

/* Distribution draws for the rows whose variant is vk. */
static ms_status draw_dist_rows(ws_t *w, tchunk *c, const ms__field *f, const ms__dist *D,
                                int vk, const uint8_t *vsel, const double *lo, const double *hi,
                                const uint8_t *lok, const uint8_t *hok, size_t lm, size_t hm,
                                void *data,
                                uint8_t *valid, int as_offset, const double *basev,
                                const double *U, const uint32_t *rows, size_t m) {
  size_t n = c->n;
  int nr, np;
  ms__dist_params(D->type, &nr, &np);
  /* parameter i of row r is P[i][r & PM[i]] (constants stored once) */
  double *P[MS__DIST_MAX_PARAMS];
  uint8_t *PO[MS__DIST_MAX_PARAMS];
  size_t PM[MS__DIST_MAX_PARAMS] = {0};
  int any_expr = 0;
  for (int i = 0; i < np && D->type != MS__DIST_QUANTILES; i++) {
    P[i] = w->tmp[4 + i];
    PO[i] = w->ok[4 + i];
    if (eval_param_m(w, c, &D->p[i], ms__dist_param_default(D->type, i), P[i], PO[i], rows, m,
                     &PM[i]))
      return w->st;
    any_expr |= D->p[i].x != NULL;
  }
  ms_rng_key key = ms_rng_key_make(w->seed, f->stream);
  int copula = f->cop_group >= 0 && !as_offset;
  const double *cu = copula ? c->cu[f - c->t->fields] : NULL;
  ms__dist_args a = {.qprobs = D->qprobs, .qvalues = D->qvalues, .qn = D->qn,
                      .qguide = D->qguide, .qgbits = D->qgbits};
  int integer = f->kind == MS__K_INTEGER || (as_offset && f->kind == MS__K_DATE);
  /* Constant parameters and bounds (the common case): the truncation window
   * [F(lo), F(hi)] is the same for every row, so compute it once. The values
   * are exactly those of the general path below. */
  int const_bounds = (!f->min.set || !f->min.x) && (!f->max.set || !f->max.x) && !as_offset;
  int fast = !any_expr && const_bounds && D->type != MS__DIST_QUANTILES &&
             (D->type == MS__DIST_NORMAL || D->type == MS__DIST_LOGNORMAL) &&
             (f->min.set || f->max.set);
  double flo = 0, fhi = 1, sc = f->precision >= 0 ? pow(10.0, f->precision) : 0;
  /* window bounds as draw_int / draw_real use them: integers own the unit
   * interval around them */
  double wl = f->min.set ? f->min.value : -INFINITY, wh = f->max.set ? f->max.value : INFINITY;
  double il = isinf(wl) ? wl : ceil(wl), ih = isinf(wh) ? wh : floor(wh);
  if (fast && integer) {
    if (il > ih) fast = 0;
    wl = isinf(il) ? il : il - 0.5;
    wh = isinf(ih) ? ih : ih + 0.5;
  }
  if (fast) {
    for (int i = 0; i < np; i++) a.p[i] = D->p[i].value;
    ms__dist_window(D->type, &a, wl, wh, &flo, &fhi);
    /* upper-tail windows use the survival function in ms__dist_draw_u */
    if (!(fhi > flo) || (!isinf(wl) && flo > 0.5)) fast = 0;
  }
  if (fast) {
    double l = wl, h = wh;
    for (size_t i = 0, e = rows ? m : n; i < e; i++) {
      size_t r = rows ? rows[i] : i;
      if (!rows && vsel && vsel[r] != vk) continue;
      if ((lo && !lok[r & lm]) || (hi && !hok[r & hm])) {
        valid[r] = 0;
        clear_value(f, data, r);
        continue;
      }
      double u = cu ? cu[r] : U[r];
      double x = ms__dist_quantile(D->type, &a, flo + u * (fhi - flo));
      if (x < l) x = l;
      if (x > h) x = h;
      if (integer) {
        x = floor(x + 0.5);
        if (x < il) x = il;
        if (x > ih) x = ih;
      } else if (f->precision >= 0) {
        double y = round(x * sc) / sc;
        if (y < l) y = ceil(l * sc - 1e-9) / sc;
        if (y > h) y = floor(h * sc + 1e-9) / sc;
        if (y >= l && y <= h) x = y;
      }
      store_num(f, data, r, x);
    }
    return MS_OK;
  }
  wcache_reset(w);
  /* a quantile table within constant bounds: one window for every row,
   * prepared on first use as the cache would */
  ms__dist_trunc tw1 = {.mode = MS__TRUNC_COUNT};
  int one_window = D->type == MS__DIST_QUANTILES && const_bounds;
  for (size_t i = 0, e = rows ? m : n; i < e; i++) {
    size_t r = rows ? rows[i] : i;
    if (!rows && vsel && vsel[r] != vk) continue;
    int miss = 0;
    for (int i = 0; i < np && D->type != MS__DIST_QUANTILES; i++) {
      a.p[i] = P[i][r & PM[i]];
      miss |= !PO[i][r & PM[i]];
    }
    if ((lo && !lok[r & lm]) || (hi && !hok[r & hm]) || (basev && !valid[r])) miss = 1;
    if (miss) {
      valid[r] = 0;
      clear_value(f, data, r);
      continue;
    }
    double l = lo ? lo[r & lm] : -INFINITY, h = hi ? hi[r & hm] : INFINITY;
    if (as_offset) {
      /* bounds apply to base + offset */
      double scale = f->kind == MS__K_DATETIME ? 86400.0 : 1.0;
      if (lo) l = (lo[r & lm] - basev[r]) / scale;
      if (hi) h = (hi[r & hm] - basev[r]) / scale;
    }
    /* (any_expr is 0 for a quantile table: it has no parameters) */
    wentry *we = one_window ? NULL : wcache_get(w->wc, w->wstamp, P, PM, D->type == MS__DIST_QUANTILES ? 0 : np, r, l, h);
    ms__dist_trunc *tw = we ? &we->tw : &tw1;
    if (any_expr && !we->checked) {
      char msg[96];
      int bad = ms__dist_check(D->type, &a, msg, sizeof msg);
      if (bad >= 0)
        return ms__gen_row_error(w, c, r, D->p[bad].ptr, "%s (got %g)", msg, a.p[bad]);
      we->checked = 1;
    }
    double u = cu ? cu[r] : U[r];
    double x;
    if (integer)
      x = draw_int(D->type, &a, l, h, u, copula, w->g, key, c->uid[r], tw);
    else
      x = draw_real(D->type, &a, l, h, u, copula, as_offset ? -1 : f->precision, sc, w->g, key,
                    c->uid[r], tw);
    if (isnan(x) || (!integer && !isfinite(x)))
      return ms__gen_row_error(w, c, r, f->ptr,
                       "no value of the %s distribution lies between min %g and max %g for this row",
                       ms__dist_name(D->type), l, h);
    if (as_offset) {
      if (f->kind == MS__K_DATETIME) {
        double s = basev[r] + round(x * 86400.0);
        if (lo && s < lo[r & lm]) s = lo[r & lm];
        if (hi && s > hi[r & hm]) s = hi[r & hm];
        ((int64_t *)data)[r] = (int64_t)s;
      } else {
        ((int32_t *)data)[r] = (int32_t)(basev[r] + x);
      }
    } else {
      store_num(f, data, r, x);
    }
  }
  return MS_OK;
}

/* ---- ids and text ------------------------------------------------------------------ */

/* Decimal digits of v, left-padded with '0' (zero) or ' ' to width. */
static size_t put_dec(char *o, uint64_t v, int width, int zero) {
  char tmp[24];
  size_t k = 0;
  do {
    tmp[k++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  size_t len = 0;
  for (int i = (int)k; i < width; i++) o[len++] = zero ? '0' : ' ';
  while (k) o[len++] = tmp[--k];
  return len;
}

static size_t put_i64(char *o, int64_t v, int width, int zero) {
  if (v >= 0) return put_dec(o, (uint64_t)v, width, zero);
  o[0] = '-';
  return 1 + put_dec(o + 1, (uint64_t)0 - (uint64_t)v, width > 1 ? width - 1 : 0, zero);
}

static ms_status gen_id(ws_t *w, tchunk *c, const ms__field *f, void *data) {
  static const char hexd[] = "0123456789ABCDEF";
  size_t n = c->n;
  if (f->id_hash && f->width < 16 && n && c->pos0 + n - 1 >= (1ull << (4 * f->width)))
    return ms__gen_row_error(w, c, (size_t)((1ull << (4 * f->width)) > c->pos0 ? (1ull << (4 * f->width)) - c->pos0 : 0),
                     f->ptr, "a hash id of width %d has only %llu distinct values; raise \"width\"",
                     f->width, 1ull << (4 * f->width));
  ms_rng_key key = ms_rng_key_make(w->seed, f->stream);
  if (!f->id_string) {
    for (size_t r = 0; r < n; r++) ((int64_t *)data)[r] = f->start + (int64_t)(c->pos0 + r);
    return MS_OK;
  }
  size_t es = f->str_width + 1;
  const char *pre = f->prefix ? f->prefix : "";
  size_t pl = strlen(pre);
  uint64_t *hv = NULL;
  if (f->id_hash) {
    /* Keyed bijection of [0, 2^bits) (balanced Feistel, 4 rounds: L, R <-
     * R, L ^ F(R) with F = Philox word of (key, R, round)): distinct row
     * positions give distinct ids. bits is even, 16..64. Run round by
     * round over the chunk so each round's words are drawn for many rows
     * at once. */
    int bits = 4 * f->width, h = bits / 2;
    uint64_t mask = h == 64 ? ~0ull : ((1ull << h) - 1);
    uint64_t *L = (uint64_t *)w->tmp[0], *R = (uint64_t *)w->tmp[1], *F = (uint64_t *)w->tmp[2];
    for (size_t r = 0; r < n; r++) {
      uint64_t x = c->pos0 + r;
      L[r] = x >> h;
      R[r] = x & mask;
    }
    for (uint64_t round = 0; round < 4; round++) {
      ms_rng_u64_n(key, R, round, F, n);
      for (size_t r = 0; r < n; r++) {
        uint64_t nl = R[r];
        R[r] = (L[r] ^ (F[r] & mask)) & mask;
        L[r] = nl;
      }
    }
    for (size_t r = 0; r < n; r++) L[r] = (L[r] << h) | R[r];
    hv = L;
  }
  for (size_t r = 0; r < n; r++) {
    char *o = (char *)data + r * es;
    uint64_t pos = c->pos0 + r;
    memcpy(o, pre, pl);
    size_t len = pl;
    if (f->id_hash) {
      uint64_t v = hv[r];
      for (int i = f->width - 1; i >= 0; i--) o[len + (size_t)(f->width - 1 - i)] = hexd[(v >> (4 * i)) & 15];
      len += (size_t)f->width;
    } else {
      len += put_i64(o + len, f->start + (int64_t)pos, f->width, 1);
    }
    memset(o + len, 0, es - len);
  }
  return MS_OK;
}

static size_t value_text(const tchunk *c, size_t fi, size_t r, char *buf, size_t cap) {
  const ms__field *f = &c->t->fields[fi];
  if (!c->valid[fi][r]) {
    buf[0] = '\0';
    return 0;
  }
  const void *d = c->data[fi];
  switch (f->layout) {
    case MS__EXPR_LAYOUT_STR_FIXED:
      return (size_t)snprintf(buf, cap, "%s", (const char *)d + r * elem_size(f));
    case MS__EXPR_LAYOUT_I32:
      if (f->kind == MS__K_CATEGORICAL)
        return (size_t)snprintf(buf, cap, "%s", f->labels[((const int32_t *)d)[r]]);
      {
        char db[MS_DATE_BUFSZ];
        ms_date_format(((const int32_t *)d)[r], db);
        return (size_t)snprintf(buf, cap, "%s", db);
      }
    case MS__EXPR_LAYOUT_I64:
      if (f->vtype == MS__EXPR_DATETIME) {
        char db[MS_DATE_BUFSZ];
        ms_datetime_format(((const int64_t *)d)[r], db);
        return (size_t)snprintf(buf, cap, "%s", db);
      }
      return (size_t)snprintf(buf, cap, "%" PRId64, ((const int64_t *)d)[r]);
    case MS__EXPR_LAYOUT_U8:
      return (size_t)snprintf(buf, cap, "%s", ((const uint8_t *)d)[r] ? "true" : "false");
    case MS__EXPR_LAYOUT_F64:
      if (f->precision >= 0)
        return (size_t)snprintf(buf, cap, "%.*f", f->precision, ((const double *)d)[r]);
      return (size_t)snprintf(buf, cap, "%.15g", ((const double *)d)[r]);
    default:
      buf[0] = '\0';
      return 0;
  }
}

static void gen_template(ws_t *w, tchunk *c, const ms__field *f, void *data) {
  size_t n = c->n, es = f->str_width + 1;
  ms_rng_key key = ms_rng_key_make(w->seed, f->stream);
  static const char hexd[] = "0123456789ABCDEF";
  size_t np = f->n_parts ? f->n_parts : 1;
  size_t tlen[np]; /* lengths of the text parts, as cut below */
  for (size_t pi = 0; pi < f->n_parts; pi++) {
    tlen[pi] = f->parts[pi].kind == MS__TP_TEXT ? strlen(f->parts[pi].text) : 0;
    if (tlen[pi] > 511) tlen[pi] = 511;
  }
  for (size_t r = 0; r < n; r++) {
    char *o = (char *)data + r * es;
    size_t len = 0;
    char buf[512];
    for (size_t pi = 0; pi < f->n_parts; pi++) {
      const ms__tpart *p = &f->parts[pi];
      size_t k = 0;
      uint64_t lane = MS__LANE_TEMPLATE + pi * 8;
      switch (p->kind) {
        case MS__TP_TEXT: /* copied straight to the value */
          k = tlen[pi];
          if (len + k > f->str_width) k = f->str_width - len;
          memcpy(o + len, p->text, k);
          len += k;
          continue;
        case MS__TP_SEQ:
        case MS__TP_ROW: {
          uint64_t v = c->pos0 + r + (p->kind == MS__TP_SEQ ? 1 : 0);
          k = put_dec(buf, v, p->width, p->zero_pad);
          break;
        }
        case MS__TP_FIELD:
          k = value_text(c, p->field, r, buf, sizeof buf);
          break;
        case MS__TP_HEX:
          for (int i = 0; i < p->width; i += 16) {
            uint64_t v = ms_rng_u64(key, c->uid[r], lane + (uint64_t)(i / 16));
            for (int j = 0; j < 16 && i + j < p->width; j++) buf[k++] = hexd[(v >> (4 * j)) & 15];
          }
          break;
        case MS__TP_DIGITS:
          for (int i = 0; i < p->width; i += 18) {
            uint64_t v = ms_rng_below(key, c->uid[r], lane + (uint64_t)(i / 18), 1000000000000000000ull);
            for (int j = 0; j < 18 && i + j < p->width; j++, v /= 10) buf[k++] = (char)('0' + v % 10);
          }
          break;
        case MS__TP_UPPER:
          for (int i = 0; i < p->width; i += 13) {
            uint64_t v = ms_rng_below(key, c->uid[r], lane + (uint64_t)(i / 13), 2481152873203736576ull);
            for (int j = 0; j < 13 && i + j < p->width; j++, v /= 26) buf[k++] = (char)('A' + v % 26);
          }
          break;
      }
      if (k > sizeof buf - 1) k = sizeof buf - 1;
      if (len + k > f->str_width) k = f->str_width - len;
      memcpy(o + len, buf, k);
      len += k;
    }
    memset(o + len, 0, es - len);
  }
}

/* ---- one field over a chunk ----------------------------------------------------------- */

static ms_status gen_missing(ws_t *w, tchunk *c, const ms__field *f, void *data, uint8_t *valid) {
  size_t n = c->n;
  double *rate = w->tmp[8];
  uint8_t *rok = w->ok[8];
  /* one rate for every row: no per-row fill and checks */
  int const_rate = !f->n_miss_when && (!f->miss_rate.set || !f->miss_rate.x);
  if (const_rate)
    rate[0] = f->miss_rate.set ? f->miss_rate.value : 0.0;
  else if (ms__gen_eval_param(w, c, &f->miss_rate, 0.0, rate, rok))
    return w->st;
  if (f->n_miss_when) {
    uint8_t *sel = w->ok[9];
    if (select_variants(w, c, f->miss_if, f->n_miss_when, sel)) return w->st;
    variant_index(w, c, sel, f->n_miss_when);
    double *wr = w->tmp[9];
    uint8_t *wok = w->ok[7];
    for (size_t k = 0; k < f->n_miss_when; k++) {
      size_t m = 0;
      const uint32_t *rows = variant_rows(w, c, f->n_miss_when, k + 1, &m);
      if (!m) continue;
      if (eval_param_sel(w, c, &f->miss_when_rate[k], 0.0, wr, wok, rows, m)) return w->st;
      for (size_t r = 0; r < n; r++)
        if (sel[r] == k + 1) {
          rate[r] = wr[r];
          rok[r] = wok[r];
        }
    }
  }
  ms_rng_key key = ms_rng_key_make(w->seed, f->stream);
  double *U = w->tmp[11];
  ms_rng_uniform_n(key, c->uid, MS__LANE_MISSING, U, n);
  if (const_rate && n) {
    double q = rate[0];
    if (!(q >= 0 && q <= 1))
      return ms__gen_row_error(w, c, 0, f->miss_rate.ptr, "missing rate must be in [0, 1] (got %g)", q);
    for (size_t r = 0; q > 0 && r < n; r++)
      if (U[r] < q) {
        valid[r] = 0;
        clear_value(f, data, r);
      }
    return MS_OK;
  }
  for (size_t r = 0; r < n; r++) {
    if (!rok[r]) continue; /* unknown rate: keep the value */
    if (!(rate[r] >= 0 && rate[r] <= 1))
      return ms__gen_row_error(w, c, r, f->miss_rate.ptr, "missing rate must be in [0, 1] (got %g)", rate[r]);
    if (rate[r] > 0 && U[r] < rate[r]) {
      valid[r] = 0;
      clear_value(f, data, r);
    }
  }
  return MS_OK;
}

/* One field of one chunk while it is made: what every kind's generator
 * reads. vsel[r] is row r's variant (0 = the base rule, k = when[k - 1]). */
typedef struct {
  ws_t *w;
  tchunk *c;
  size_t fi;
  const ms__field *f;
  void *data;
  uint8_t *valid;
  const uint8_t *vsel;
  ms_rng_key key;
  int have_u; /* field_uniforms computed */
} fgen;

/* Bounds shared by all variants of a numeric or date field; row r's is
 * lo[r & lm] (a constant is stored once); NULL: none. */
typedef struct {
  double *lo, *hi;
  uint8_t *lok, *hok;
  size_t lm, hm;
} fbounds;

static const double *fgen_uniforms(fgen *g) {
  return field_uniforms(g->w, g->c, g->key, &g->have_u);
}

static ms_status gen_kind_id(fgen *g) {
  return gen_id(g->w, g->c, g->f, g->data) ? g->w->st : MS_OK;
}

static ms_status gen_kind_string(fgen *g) {
  gen_template(g->w, g->c, g->f, g->data);
  return MS_OK;
}

/* A copy of the parent row's value. */
static ms_status gen_kind_ref(fgen *g) {
  const tchunk *p = g->c->parent;
  const ms__field *f = g->f;
  size_t es = elem_size(f);
  for (size_t r = 0; r < g->c->n; r++) {
    uint32_t pr = g->c->idx[1][r];
    memcpy((char *)g->data + r * es, (const char *)p->data[f->ref_field] + (size_t)pr * es, es);
    g->valid[r] = p->valid[f->ref_field][pr];
  }
  return MS_OK;
}

static ms_status gen_kind_categorical(fgen *g) {
  const ms__field *f = g->f;
  int32_t *o = g->data;
  const double *cu = g->c->cu[g->fi];
  const double *U = cu ? NULL : fgen_uniforms(g);
  for (size_t r = 0; r < g->c->n; r++) {
    const uint8_t vk = g->vsel[r];
    const double *cum = vk && f->when[vk - 1].cum ? f->when[vk - 1].cum : f->base.cum;
    /* in a correlation group u = Phi(z): higher z, later label */
    double u = cu ? cu[r] : U[r];
    size_t lo = 0, hi = f->n_labels - 1;
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (u < cum[mid])
        hi = mid;
      else
        lo = mid + 1;
    }
    o[r] = (int32_t)lo;
  }
  return MS_OK;
}

/* The rows of variant k of a bool: an expression's value, else true with
 * probability p. */
static ms_status gen_bool_rows(fgen *g, size_t k, const ms__variant *rv, const uint32_t *rows,
                               size_t m) {
  ws_t *w = g->w;
  tchunk *c = g->c;
  const ms__variant *b = &g->f->base;
  const uint8_t *vsel = g->vsel;
  uint8_t *data = g->data, *valid = g->valid;
  const ms__expr *x = rv && (rv->expr || rv->p.set) ? rv->expr : b->expr;
  const ms__param *p = rv && (rv->expr || rv->p.set) ? &rv->p : &b->p;
  if (x) {
    uint8_t *tv = w->ok[2], *tok = w->ok[3];
    if (eval_raw_sel(w, c, x, tv, tok, 1, rows, m)) return w->st;
    for (size_t r = 0; r < c->n; r++)
      if (vsel[r] == k) {
        data[r] = tok[r] ? tv[r] : 0;
        valid[r] = tok[r];
      }
    return MS_OK;
  }
  double *pv = w->tmp[2];
  uint8_t *pok = w->ok[2];
  const double *cu = c->cu[g->fi];
  if (eval_param_sel(w, c, p, 0.0, pv, pok, rows, m)) return w->st;
  const double *U = cu ? NULL : fgen_uniforms(g);
  for (size_t r = 0; r < c->n; r++) {
    if (vsel[r] != k) continue;
    if (!pok[r]) {
      valid[r] = 0;
      data[r] = 0;
      continue;
    }
    if (!(pv[r] >= 0 && pv[r] <= 1))
      return ms__gen_row_error(w, c, r, p->ptr, "must be in [0, 1] (got %g)", pv[r]);
    /* in a correlation group u = Phi(z) and the value is true on
     * the upper tail u > 1 - p, so that higher z means true */
    data[r] = cu ? cu[r] > 1.0 - pv[r] : U[r] < pv[r];
  }
  return MS_OK;
}

/* The rows of variant k of an integer or real: an expression's value
 * (rounded as the field is), else a draw from the distribution. */
static ms_status gen_number_rows(fgen *g, size_t k, const ms__variant *rv, const uint32_t *rows,
                                 size_t m, const fbounds *bd) {
  ws_t *w = g->w;
  tchunk *c = g->c;
  const ms__field *f = g->f;
  const ms__variant *b = &f->base;
  const uint8_t *vsel = g->vsel;
  int rule_sets = rv && (rv->has_dist || rv->expr);
  const ms__expr *x = rule_sets ? rv->expr : b->expr;
  const ms__dist *D = rule_sets ? (rv->has_dist ? &rv->dist : NULL) : (b->has_dist ? &b->dist : NULL);
  if (x) {
    double *xv = w->tmp[2];
    uint8_t *xok = w->ok[2];
    if (eval_double_sel(w, c, x, xv, xok, rows, m)) return w->st;
    for (size_t r = 0; r < c->n; r++) {
      if (vsel[r] != k) continue;
      if (!xok[r]) {
        g->valid[r] = 0;
        clear_value(f, g->data, r);
        continue;
      }
      double v = xv[r];
      if (f->kind == MS__K_INTEGER) {
        v = floor(v + 0.5);
        if (!(fabs(v) < 9.2e18))
          return ms__gen_row_error(w, c, r, f->ptr, "value %g does not fit an integer", xv[r]);
      } else if (f->precision >= 0) {
        double sc = pow(10.0, f->precision);
        v = round(v * sc) / sc;
      }
      store_num(f, g->data, r, v);
    }
  } else if (D) {
    if (draw_dist_rows(w, c, f, D, (int)k, vsel, bd->lo, bd->hi, bd->lok, bd->hok, bd->lm, bd->hm,
                       g->data, g->valid, 0, NULL, fgen_uniforms(g), rows, m))
      return w->st;
  }
  return MS_OK;
}

/* The rows of variant k of a date or datetime: an expression's value, else
 * a base value plus a drawn offset (or the base alone, within the bounds). */
static ms_status gen_date_rows(fgen *g, size_t k, const ms__variant *rv, const uint32_t *rows,
                               size_t m, const fbounds *bd) {
  int rule_expr = rv && rv->expr;
  int rule_base = rv && (rv->base || rv->has_offset);
  ws_t *w = g->w;
  tchunk *c = g->c;
  const ms__field *f = g->f;
  const ms__variant *b = &f->base;
  const uint8_t *vsel = g->vsel;
  uint8_t *valid = g->valid;
  const ms__expr *x = rule_expr ? rv->expr : rule_base ? NULL : b->expr;
  if (x) {
    size_t es = elem_size(f);
    if (eval_raw_sel(w, c, x, w->tmp[2], w->ok[2], es, rows, m)) return w->st;
    for (size_t r = 0; r < c->n; r++) {
      if (vsel[r] != k) continue;
      valid[r] = w->ok[2][r];
      memcpy((char *)g->data + r * es, (char *)w->tmp[2] + r * es, es);
    }
    return MS_OK;
  }
  const ms__expr *bx = rule_base && rv->base ? rv->base : b->base;
  const ms__dist *off = rule_base && rv->has_offset ? &rv->offset : b->has_offset ? &b->offset : NULL;
  double *bv = w->tmp[3];
  uint8_t *bok = w->ok[3];
  if (eval_double_sel(w, c, bx, bv, bok, rows, m)) return w->st;
  for (size_t r = 0; r < c->n; r++)
    if (vsel[r] == k) valid[r] = bok[r];
  if (off) {
    if (draw_dist_rows(w, c, f, off, (int)k, vsel, bd->lo, bd->hi, bd->lok, bd->hok, bd->lm,
                       bd->hm, g->data, valid, 1, bv, fgen_uniforms(g), rows, m))
      return w->st;
    return MS_OK;
  }
  for (size_t r = 0; r < c->n; r++) {
    if (vsel[r] != k) continue;
    if (!valid[r]) {
      clear_value(f, g->data, r);
      continue;
    }
    if ((bd->lo && bd->lok[r & bd->lm] && bv[r] < bd->lo[r & bd->lm]) ||
        (bd->hi && bd->hok[r & bd->hm] && bv[r] > bd->hi[r & bd->hm]))
      return ms__gen_row_error(w, c, r, f->ptr,
                       "base value lies outside min/max and there is no offset_days to draw inside them");
    store_num(f, g->data, r, bv[r]);
  }
  return MS_OK;
}

/* Integer, real, bool, date and datetime: the bounds once, then each
 * variant's rows by the kind's rule. */
static ms_status gen_kind_ranged(fgen *g) {
  ws_t *w = g->w;
  tchunk *c = g->c;
  const ms__field *f = g->f;
  fbounds bd = {0};
  if (f->min.set) {
    bd.lo = w->tmp[0];
    bd.lok = w->ok[0];
    if (eval_param_m(w, c, &f->min, -INFINITY, bd.lo, bd.lok, NULL, 0, &bd.lm)) return w->st;
  }
  if (f->max.set) {
    bd.hi = w->tmp[1];
    bd.hok = w->ok[1];
    if (eval_param_m(w, c, &f->max, INFINITY, bd.hi, bd.hok, NULL, 0, &bd.hm)) return w->st;
  }
  variant_index(w, c, g->vsel, f->n_when);
  for (size_t k = 0; k <= f->n_when; k++) {
    size_t m = 0;
    const uint32_t *rows = variant_rows(w, c, f->n_when, k, &m);
    if (!m) continue;
    const ms__variant *rv = k ? &f->when[k - 1] : NULL;
    ms_status st;
    if (f->kind == MS__K_BOOL)
      st = gen_bool_rows(g, k, rv, rows, m);
    else if (f->kind == MS__K_INTEGER || f->kind == MS__K_REAL)
      st = gen_number_rows(g, k, rv, rows, m, &bd);
    else
      st = gen_date_rows(g, k, rv, rows, m, &bd);
    if (st) return st;
  }
  return MS_OK;
}

/* The generator of each kind, indexed by ms__kind. */
static ms_status (*const kind_gen[MS__K_COUNT])(fgen *) = {
    [MS__K_ID] = gen_kind_id,
    [MS__K_REF] = gen_kind_ref,
    [MS__K_STRING] = gen_kind_string,
    [MS__K_CATEGORICAL] = gen_kind_categorical,
    [MS__K_INTEGER] = gen_kind_ranged,
    [MS__K_REAL] = gen_kind_ranged,
    [MS__K_BOOL] = gen_kind_ranged,
    [MS__K_DATE] = gen_kind_ranged,
    [MS__K_DATETIME] = gen_kind_ranged,
};

static ms_status gen_field(ws_t *w, tchunk *c, size_t fi) {
  const ms__table *t = c->t;
  const ms__field *f = &t->fields[fi];
  size_t n = c->n;
  fgen g = {w, c, fi, f, c->data[fi], c->valid[fi], w->vsel, {0}, 0};
  memset(g.valid, 1, n);
  if (select_variants(w, c, f->when_if, f->n_when, w->vsel)) return w->st;
  if (f->cop_group >= 0 && !c->cu_done[fi])
    if (copula_fill(w, c, (size_t)f->cop_group)) return ws_nomem(w, t->name, "correlated uniforms");
  g.key = ms_rng_key_make(w->seed, f->stream);
  ms_status st = kind_gen[f->kind](&g);
  if (st) return st;
  if (f->has_missing)
    if (gen_missing(w, c, f, g.data, g.valid)) return w->st;
  if (!f->nullable)
    for (size_t r = 0; r < n; r++)
      if (!g.valid[r])
        return ms__gen_row_error(w, c, r, f->ptr,
                         "value is missing (an input is missing) but the field allows no missing values; use coalesce() or declare \"missing\"");
  c->done[fi] = 1;
  return MS_OK;
}

/* Computes the fields of the chunk selected by phase:
 *   'n' needed for counting (filter, child counts), 'p' not position-dependent,
 *   'q' position-dependent. Fields already done are skipped. */
ms_status ms__gen_fields(ws_t *w, tchunk *c, char phase) {
  if (ms__gen_ws_reserve(w, c->n))
    return ws_nomem(w, c->t->name, "the generator's scratch buffers");
  const ms__table *t = c->t;
  /* expressions over the same columns share their row groupings while the
   * chunk's fields are made; a column's groupings are forgotten before and
   * after gen_field writes it */
  ms__expr_scratch_share(w->xs, 1);
  ms_status st = MS_OK;
  for (size_t k = 0; k < t->n_fields && st == MS_OK; k++) {
    size_t fi = t->order[k];
    const ms__field *f = &t->fields[fi];
    if (c->done[fi]) continue;
    if (phase == 'n' && !f->needed_prefix) continue;
    if (phase == 'p' && f->pos_dep) continue;
    if (phase == 'q' && !f->pos_dep) continue;
    if (c->count_mode && !f->needed_prefix) continue;
    ms__expr_scratch_forget(w->xs, c->data[fi], c->valid[fi]);
    if (gen_field(w, c, fi)) st = w->st;
    ms__expr_scratch_forget(w->xs, c->data[fi], c->valid[fi]);
  }
  ms__expr_scratch_share(w->xs, 0);
  return st;
}

