/* Row generator: runs a compiled spec (records/plan.h) chunk by chunk.
 *
 * Shape of a run, per root table (docs/reproducibility.md):
 *   candidates are cut into chunks of chunk_rows; chunks are processed in
 *   batches, each batch in three parallel steps separated by short serial
 *   steps that only add up counts:
 *     A. fields a filter or a child count needs; the filter; compaction;
 *        (serial: output positions of the accepted rows; shard window)
 *     B. every other field that does not depend on the output position, and
 *        the child tables (counts, rows, fields), recursively; rows before
 *        the shard window only count their descendants;
 *        (serial: output positions of child rows)
 *     C. position-dependent fields (ids, refs, {seq} templates, dependents);
 *        (serial: chunks handed to the sink in order).
 * Every value is computed column-at-a-time over a chunk: expressions are
 * evaluated by the vectorised expression VM over whole columns; draws loop
 * over the rows of one field.
 *
 * Reproducibility: a row's draws are keyed by (seed, field stream, row uid,
 * lane). A root row's uid is its candidate index; a child row's uid is
 * xxh64(parent uid, child number), so it depends on neither chunking, nor
 * threads, nor shards. Output positions are prefix sums in candidate order.
 *
 * Speed without changing a value: a field's keyed uniforms are drawn for the
 * whole chunk at once (SIMD Philox, bit-identical to one call per row);
 * truncation windows are cached within a field and chunk by the exact bits
 * of (parameters, bounds); a "when" rule's formulas (and the field's own,
 * when it has rules) are evaluated only on the rows that use them, through
 * a frame indexed by those rows.
 *
 * Invariants: no state crosses chunks except the serial prefix sums (chunk
 * buffers are reused from batch to batch, but every computed column is
 * rewritten for every row, so no value crosses); each thread has its own
 * scratch (expression scratch, gsl_rng, window cache). */
#include <gsl/gsl_cdf.h>
#include "core/alloc.h"
#include "core/diag.h"
#include <gsl/gsl_errno.h>
#include <gsl/gsl_rng.h>
#include <inttypes.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "medsynth/records.h"
#include "medsynth/rng.h"
#include "core/pool.h"
#include "records/images.h"
#include "records/plan.h"

/* Row locators are built in fixed buffers; cutting a very deep one only
 * shortens a message. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#define MAX_LEVELS 8
#define MAX_TABLES 64

size_t ms__slot_base(const ms_spec *s, size_t ti, int level);

/* ---- chunk of one table --------------------------------------------------- */

typedef struct tchunk tchunk;
struct tchunk {
  const ms_spec *s;
  const ms__table *t;
  size_t ti;
  size_t n, cap;
  void **data;
  uint8_t **valid;
  double **cu; /* copula uniforms per field (NULL when not in a group) */
  uint8_t *cu_done; /* cu[fi] holds this chunk's uniforms */
  uint8_t *done;
  uint64_t *uid;
  uint32_t *kidx; /* child number within its parent */
  uint32_t *idx[MAX_LEVELS]; /* idx[l]: row of the ancestor l levels up (idx[0] unused) */
  tchunk *parent;
  uint64_t pos0;
  int count_mode;
};

static size_t elem_size(const ms__field *f) {
  switch (f->layout) {
    case MS__EXPR_LAYOUT_F64:
    case MS__EXPR_LAYOUT_I64:
      return 8;
    case MS__EXPR_LAYOUT_I32:
      return 4;
    case MS__EXPR_LAYOUT_U8:
      return 1;
    case MS__EXPR_LAYOUT_STR_FIXED:
      return f->str_width + 1;
    default:
      return 8;
  }
}

static void tchunk_free(tchunk *c) {
  if (!c) return;
  /* any of the arrays may be missing after a failed tchunk_new */
  for (size_t i = 0; i < c->t->n_fields; i++) {
    if (c->data) free(c->data[i]);
    if (c->valid) free(c->valid[i]);
    if (c->cu) free(c->cu[i]);
  }
  free(c->data);
  free(c->valid);
  free(c->cu);
  free(c->cu_done);
  free(c->done);
  free(c->uid);
  free(c->kidx);
  for (int l = 0; l < MAX_LEVELS; l++) free(c->idx[l]);
  free(c);
}

static tchunk *tchunk_new(const ms_spec *s, size_t ti, size_t cap, int count_mode) {
  tchunk *c = ms__calloc(1, sizeof *c);
  if (!c) return NULL;
  c->s = s;
  c->t = &s->tables[ti];
  c->ti = ti;
  c->cap = cap ? cap : 1;
  c->count_mode = count_mode;
  size_t nf = c->t->n_fields;
  c->data = ms__calloc(nf, sizeof *c->data);
  c->valid = ms__calloc(nf, sizeof *c->valid);
  c->cu = ms__calloc(nf, sizeof *c->cu);
  c->cu_done = ms__calloc(nf, 1);
  c->done = ms__calloc(nf, 1);
  c->uid = ms__malloc(c->cap * sizeof *c->uid);
  c->kidx = ms__malloc(c->cap * sizeof *c->kidx);
  if (!c->data || !c->valid || !c->cu || !c->cu_done || !c->done || !c->uid || !c->kidx)
    goto fail;
  for (size_t i = 0; i < nf; i++) {
    const ms__field *f = &c->t->fields[i];
    if (count_mode && !f->needed_prefix) continue;
    c->data[i] = ms__calloc(c->cap, elem_size(f));
    c->valid[i] = ms__malloc(c->cap);
    if (!c->data[i] || !c->valid[i]) goto fail;
    memset(c->valid[i], 1, c->cap);
  }
  for (int l = 1; l <= c->t->depth && l < MAX_LEVELS; l++) {
    c->idx[l] = ms__malloc(c->cap * sizeof(uint32_t));
    if (!c->idx[l]) goto fail;
  }
  return c;
fail:
  tchunk_free(c);
  return NULL;
}

/* A chunk of table ti for up to `need` rows: the spare one (*spare, taken
 * out) when it fits, else a new one. Chunks of the same table have the same
 * columns, and every computed column is written for every row (gen_field),
 * so a reused chunk needs no clearing: only its bookkeeping is reset.
 * Reusing the buffers of the previous batch saves the page faults and
 * zeroing of fresh allocations. */
static tchunk *tchunk_take(tchunk **spare, const ms_spec *s, size_t ti, size_t need,
                           int count_mode) {
  tchunk *c = spare ? *spare : NULL;
  if (c && c->ti == ti && c->count_mode == count_mode && c->cap >= need) {
    *spare = NULL;
    size_t nf = c->t->n_fields;
    memset(c->done, 0, nf);
    memset(c->cu_done, 0, nf);
    c->n = 0;
    c->parent = NULL;
    c->pos0 = 0;
    return c;
  }
  /* headroom: child chunks vary a little in size from batch to batch */
  return tchunk_new(s, ti, spare ? need + need / 8 : need, count_mode);
}

/* Keeps c as the spare chunk of its table (the larger of c and the current
 * spare), or frees it. */
static void tchunk_recycle(tchunk **spare, tchunk *c) {
  if (!c) return;
  if (c->count_mode || (*spare && (*spare)->cap >= c->cap)) {
    tchunk_free(c);
    return;
  }
  tchunk_free(*spare);
  *spare = c;
}

/* New chunk holding rows[0..m) of c (computed fields only). */
static tchunk *tchunk_select(const tchunk *c, const uint32_t *rows, size_t m) {
  tchunk *d = tchunk_new(c->s, c->ti, m, c->count_mode);
  if (!d) return NULL;
  d->n = m;
  d->parent = c->parent;
  for (size_t i = 0; i < c->t->n_fields; i++) {
    d->done[i] = c->done[i];
    if (!c->data[i] || !d->data[i]) continue;
    size_t es = elem_size(&c->t->fields[i]);
    const char *src = c->data[i];
    char *dst = d->data[i];
    for (size_t r = 0; r < m; r++) {
      memcpy(dst + r * es, src + (size_t)rows[r] * es, es);
      d->valid[i][r] = c->valid[i][rows[r]];
    }
  }
  for (size_t r = 0; r < m; r++) {
    d->uid[r] = c->uid[rows[r]];
    d->kidx[r] = c->kidx[rows[r]];
  }
  for (int l = 1; l < MAX_LEVELS; l++)
    if (c->idx[l] && d->idx[l])
      for (size_t r = 0; r < m; r++) d->idx[l][r] = c->idx[l][rows[r]];
  return d;
}

/* ---- per-thread scratch ------------------------------------------------------ */

/* Truncation windows of one distribution field, cached by the exact bits
 * of (parameters, lower bound, upper bound): rows whose parameters come from
 * categories or bands share a few windows, so their CDF evaluations are done
 * once per distinct set instead of once per row. A window is a pure function
 * of its key, so a hit returns the same bits as recomputing it. The cache
 * is direct-mapped and large enough for per-year parameters crossed with a
 * category (a few hundred sets) and for bounds computed from a rounded
 * field (a few thousand); an entry belongs to the current field and chunk
 * when its stamp equals the scratch's, so starting afresh costs no clearing. */
#define WCACHE_BITS 14
#define WCACHE_SIZE (1u << WCACHE_BITS)
#define WKEY_N (MS__DIST_MAX_PARAMS + 2)

typedef struct {
  uint64_t key[WKEY_N];
  uint32_t stamp; /* the wstamp it was filled under; 0 = never */
  uint8_t checked;
  ms__dist_trunc tw; /* mode MS__TRUNC_COUNT until first prepared */
} wentry;

typedef struct {
  ms__expr_scratch *xs;
  gsl_rng *g;
  wentry *wc; /* WCACHE_SIZE entries */
  uint32_t wstamp; /* stamp of the entries valid for the current draw */
  size_t cap;
  double *tmp[12];
  uint8_t *ok[12];
  uint8_t *vsel;
  /* rows of one "when" variant, the ancestors' rows for them, and compact
   * results of an expression evaluated on those rows only */
  uint32_t *srows, *sidx[MAX_LEVELS];
  uint32_t voff[258]; /* variant_index: rows of variant k are srows[voff[k] .. voff[k + 1]) */
  double *cbuf;
  uint8_t *cok;
  ms__expr_col *cols;
  size_t ncols;
  ms_diag *d;
  ms_status st;
  uint64_t seed;
} ws_t;

static void ws_free(ws_t *w) {
  ms__expr_scratch_free(w->xs);
  if (w->g) gsl_rng_free(w->g);
  for (int i = 0; i < 12; i++) {
    free(w->tmp[i]);
    free(w->ok[i]);
  }
  free(w->vsel);
  free(w->srows);
  for (int l = 0; l < MAX_LEVELS; l++) free(w->sidx[l]);
  free(w->cbuf);
  free(w->cok);
  free(w->cols);
  free(w->wc);
  memset(w, 0, sizeof *w);
}

static int ws_reserve(ws_t *w, size_t n) {
  if (!w->xs) w->xs = ms__expr_scratch_new();
  if (!w->g) w->g = ms_rng_gsl_new();
  if (!w->wc) w->wc = ms__calloc(WCACHE_SIZE, sizeof *w->wc);
  if (!w->xs || !w->g || !w->wc) return -1;
  if (n < 64) n = 64; /* buffers always exist, also for empty chunks */
  if (n <= w->cap) return 0;
  size_t cap = n + n / 2 + 16;
  w->cap = 0; /* until every buffer below has its new size */
  for (int i = 0; i < 12; i++) {
    free(w->tmp[i]);
    free(w->ok[i]);
    w->tmp[i] = ms__malloc(cap * sizeof(double));
    w->ok[i] = ms__malloc(cap);
    if (!w->tmp[i] || !w->ok[i]) return -1;
  }
  free(w->vsel);
  free(w->srows);
  free(w->cbuf);
  free(w->cok);
  w->vsel = ms__malloc(cap);
  w->srows = ms__malloc(cap * sizeof *w->srows);
  w->cbuf = ms__malloc(cap * sizeof *w->cbuf);
  w->cok = ms__malloc(cap);
  if (!w->vsel || !w->srows || !w->cbuf || !w->cok) return -1;
  for (int l = 1; l < MAX_LEVELS; l++) {
    free(w->sidx[l]);
    if (!(w->sidx[l] = ms__malloc(cap * sizeof *w->sidx[l]))) return -1;
  }
  w->cap = cap;
  return 0;
}

/* An allocation failed while generating a chunk of table `table`: one
 * message naming what (core/diag.h). */
static ms_status ws_nomem(ws_t *w, const char *table, const char *what) {
  ms__diag_nomem(w->d, NULL, table, what);
  return w->st = MS_ERR_NOMEM;
}

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

static ms_status row_error(ws_t *w, const tchunk *c, size_t r, const char *ptr, const char *fmt,
                           ...) __attribute__((format(printf, 5, 6)));
static ms_status row_error(ws_t *w, const tchunk *c, size_t r, const char *ptr, const char *fmt,
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

static ms_status eval_raw(ws_t *w, const tchunk *c, const ms__expr *x, void *out, uint8_t *ok) {
  return eval_rows(w, c, x, out, ok, NULL, 0);
}

/* Evaluates a number/date/datetime-valued expression into doubles (over
 * rows[0..m) compactly when rows is given). */
static ms_status eval_double_rows(ws_t *w, const tchunk *c, const ms__expr *x, double *out,
                                  uint8_t *ok, const uint32_t *rows, size_t m) {
  ms__expr_type t = ms__expr_result_type(x);
  size_t n = rows ? m : c->n;
#define eval_raw(w, c, x, out, ok) eval_rows(w, c, x, out, ok, rows, m)
  if (t == MS__EXPR_NUMBER || t == MS__EXPR_DURATION) return eval_raw(w, c, x, out, ok);
  if (t == MS__EXPR_DATE) {
    int32_t *tmp = (int32_t *)out; /* int32 fit in the first half; expand backwards */
    ms_status st = eval_raw(w, c, x, tmp, ok);
    if (st) return st;
    for (size_t i = n; i-- > 0;) out[i] = (double)tmp[i];
    return MS_OK;
  }
  if (t == MS__EXPR_DATETIME) {
    int64_t *tmp = (int64_t *)out;
    ms_status st = eval_raw(w, c, x, tmp, ok);
    if (st) return st;
    for (size_t i = 0; i < n; i++) out[i] = (double)tmp[i];
    return MS_OK;
  }
  if (t == MS__EXPR_BOOL) {
    uint8_t *tmp = (uint8_t *)out;
    ms_status st = eval_raw(w, c, x, tmp, ok);
    if (st) return st;
    for (size_t i = n; i-- > 0;) out[i] = tmp[i];
    return MS_OK;
  }
#undef eval_raw
  return w->st = MS_ERR_INTERNAL;
}

static ms_status eval_double(ws_t *w, const tchunk *c, const ms__expr *x, double *out,
                             uint8_t *ok) {
  return eval_double_rows(w, c, x, out, ok, NULL, 0);
}

/* eval_raw for the rows of one variant (see eval_double_sel); es is the
 * size of one result value in the expression's layout. */
static ms_status eval_raw_sel(ws_t *w, const tchunk *c, const ms__expr *x, void *out, uint8_t *ok,
                              size_t es, const uint32_t *rows, size_t m) {
  if (!rows) return eval_raw(w, c, x, out, ok);
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

static ms_status eval_param(ws_t *w, const tchunk *c, const ms__param *p, double dflt,
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
static const uint32_t *variant_rows(ws_t *w, const tchunk *c, const uint8_t *vsel, size_t nw,
                                    size_t k, size_t *m) {
  size_t n = c->n;
  (void)vsel;
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

static ms_status select_variants(ws_t *w, const tchunk *c, ms__expr *const *conds, size_t nw,
                                 uint8_t *vsel) {
  size_t n = c->n;
  if (nw < 256 && select_by_label(c, conds, nw, vsel)) return MS_OK;
  memset(vsel, 0, n);
  uint8_t *val = w->ok[10], *ok = w->ok[11];
  for (size_t k = nw; k-- > 0;) {
    if (!conds[k]) continue;
    ms_status st = eval_raw(w, c, conds[k], val, ok);
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

/* Inlined into the draw loops (with draw_int and draw_real): the type,
 * rounding and bounds tests then fold with the loop's own. */
#define DRAW_INLINE static inline __attribute__((always_inline))

/* ms__dist_draw_u through a cached window: *tw (when given) is prepared on
 * first use, marked by mode MS__TRUNC_COUNT; the caller keys it by (a, the
 * row's bounds), and the bounds passed here are a function of those, so
 * every later use has the same (t, a, lo, hi) and gets the uncached value.
 * The common case, a normal or log-normal law in a lower window, goes
 * straight to the inline ms__dist_trunc_lower_normal (the same code
 * ms__dist_trunc_draw runs), which saves two calls and a switch per row. */
DRAW_INLINE double draw_u(ms__dist_trunc *tw, ms__dist_type t, const ms__dist_args *a, double lo,
                          double hi, double u) {
  if (!tw) return ms__dist_draw_u(t, a, lo, hi, u);
  if (tw->mode == MS__TRUNC_COUNT) ms__dist_trunc_init(tw, t, a, lo, hi);
  if (tw->mode == MS__TRUNC_LOWER && (t == MS__DIST_NORMAL || t == MS__DIST_LOGNORMAL))
    return ms__dist_trunc_lower_normal(tw, t, a, u);
  return ms__dist_trunc_draw(tw, t, a, u);
}

/* Integer-valued draw (integer fields, date offsets, child counts) from the
 * law truncated to the integers in [lo, hi]. NAN when there is none. */
DRAW_INLINE double draw_int(ms__dist_type t, const ms__dist_args *a, double lo, double hi,
                            double u, int copula, gsl_rng *g, ms_rng_key key, uint64_t uid,
                            ms__dist_trunc *tw) {
  double L = isinf(lo) ? lo : ceil(lo), H = isinf(hi) ? hi : floor(hi);
  if (L > H) return NAN;
  if (t == MS__DIST_UNIFORM) {
    double l = fmax(ceil(a->p[0]), L), h = fmin(floor(a->p[1]), H);
    if (l > h) return NAN;
    double x = l + floor(u * (h - l + 1));
    return x > h ? h : x;
  }
  if (ms__dist_is_discrete(t) || t == MS__DIST_CONSTANT) {
    if (t == MS__DIST_CONSTANT) {
      double x = floor(a->p[0] + 0.5);
      return (x >= L && x <= H) ? x : NAN;
    }
    return draw_u(tw, t, a, L, H, u);
  }
  double x;
  if (isinf(L) && isinf(H) && !copula && (t == MS__DIST_GAMMA || t == MS__DIST_BETA)) {
    ms_rng_gsl_reset(g, key, uid, MS__LANE_VALUE);
    x = ms__dist_draw_gsl(t, a, g);
  } else {
    x = draw_u(tw, t, a, isinf(L) ? L : L - 0.5, isinf(H) ? H : H + 0.5, u);
  }
  if (isnan(x)) return NAN;
  x = floor(x + 0.5);
  if (x < L) x = L;
  if (x > H) x = H;
  return x;
}

/* Real draw truncated to [lo, hi], rounded to `prec` decimals inside it. */
DRAW_INLINE double draw_real(ms__dist_type t, const ms__dist_args *a, double lo, double hi,
                             double u, int copula, int prec, double sc, gsl_rng *g,
                             ms_rng_key key, uint64_t uid, ms__dist_trunc *tw) {
  double x;
  if (isinf(lo) && isinf(hi) && !copula && (t == MS__DIST_GAMMA || t == MS__DIST_BETA)) {
    ms_rng_gsl_reset(g, key, uid, MS__LANE_VALUE);
    x = ms__dist_draw_gsl(t, a, g);
  } else if (t == MS__DIST_NORMAL && isinf(lo) && isinf(hi)) {
    x = a->p[0] + a->p[1] * ms__normal_quantile(u);
  } else {
    x = draw_u(tw, t, a, lo, hi, u);
  }
  if (isnan(x) || prec < 0) return x;
  double y = round(x * sc) / sc;
  if (y < lo) y = ceil(lo * sc - 1e-9) / sc;
  if (y > hi) y = floor(hi * sc + 1e-9) / sc;
  if (y < lo || y > hi) return x; /* no rounded value inside: keep the exact draw */
  return y;
}

/* Copula uniforms of every field of group gi for the chunk's rows:
 * z = L e with e_j = normal(key of the group, uid, lane j) and L the Cholesky
 * factor, u = Phi(z). Numeric fields feed u to their quantile function,
 * categorical fields pick the label whose cumulative interval holds u, bool
 * fields are true when u > 1 - p (docs/spec.md, Correlations). */
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
  double *e = ms__malloc(k * sizeof *e);
  if (!e) return -1;
  /* the normals of lane j go first into field j's buffer, many rows at once;
   * each row then reads its k normals before overwriting them with its u */
  for (size_t j = 0; j < k; j++) ms_rng_normal_n(key, c->uid, j, c->cu[g->fields[j]], n);
  for (size_t r = 0; r < n; r++) {
    for (size_t j = 0; j < k; j++) e[j] = c->cu[g->fields[j]][r];
    for (size_t i = 0; i < k; i++) {
      double z = 0;
      for (size_t j = 0; j <= i; j++) z += g->chol[i * k + j] * e[j];
      double u = ms__normal_cdf(z);
      /* keep u inside (0, 1) so quantile functions stay finite */
      if (u <= 0) u = 5e-324;
      if (u >= 1) u = 1 - 1.1102230246251565e-16;
      c->cu[g->fields[i]][r] = u;
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
  ms__dist_args a = {.qprobs = D->qprobs, .qvalues = D->qvalues, .qn = D->qn};
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
    wentry *we = wcache_get(w->wc, w->wstamp, P, PM, D->type == MS__DIST_QUANTILES ? 0 : np, r, l, h);
    if (any_expr && !we->checked) {
      char msg[96];
      int bad = ms__dist_check(D->type, &a, msg, sizeof msg);
      if (bad >= 0)
        return row_error(w, c, r, D->p[bad].ptr, "%s (got %g)", msg, a.p[bad]);
      we->checked = 1;
    }
    double u = cu ? cu[r] : U[r];
    double x;
    if (integer)
      x = draw_int(D->type, &a, l, h, u, copula, w->g, key, c->uid[r], &we->tw);
    else
      x = draw_real(D->type, &a, l, h, u, copula, as_offset ? -1 : f->precision, sc, w->g, key,
                    c->uid[r], &we->tw);
    if (isnan(x) || (!integer && !isfinite(x)))
      return row_error(w, c, r, f->ptr,
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
    return row_error(w, c, (size_t)((1ull << (4 * f->width)) > c->pos0 ? (1ull << (4 * f->width)) - c->pos0 : 0),
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
  else if (eval_param(w, c, &f->miss_rate, 0.0, rate, rok))
    return w->st;
  if (f->n_miss_when) {
    uint8_t *sel = w->ok[9];
    if (select_variants(w, c, f->miss_if, f->n_miss_when, sel)) return w->st;
    variant_index(w, c, sel, f->n_miss_when);
    double *wr = w->tmp[9];
    uint8_t *wok = w->ok[7];
    for (size_t k = 0; k < f->n_miss_when; k++) {
      size_t m = 0;
      const uint32_t *rows = variant_rows(w, c, sel, f->n_miss_when, k + 1, &m);
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
      return row_error(w, c, 0, f->miss_rate.ptr, "missing rate must be in [0, 1] (got %g)", q);
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
      return row_error(w, c, r, f->miss_rate.ptr, "missing rate must be in [0, 1] (got %g)", rate[r]);
    if (rate[r] > 0 && U[r] < rate[r]) {
      valid[r] = 0;
      clear_value(f, data, r);
    }
  }
  return MS_OK;
}

static ms_status gen_field(ws_t *w, tchunk *c, size_t fi) {
  const ms__table *t = c->t;
  const ms__field *f = &t->fields[fi];
  size_t n = c->n;
  void *data = c->data[fi];
  uint8_t *valid = c->valid[fi];
  memset(valid, 1, n);
  uint8_t *vsel = w->vsel;
  if (select_variants(w, c, f->when_if, f->n_when, vsel)) return w->st;
  if (f->cop_group >= 0 && !c->cu_done[fi])
    if (copula_fill(w, c, (size_t)f->cop_group)) return ws_nomem(w, t->name, "correlated uniforms");
  ms_rng_key key = ms_rng_key_make(w->seed, f->stream);
  int have_u = 0;

  switch (f->kind) {
    case MS__K_ID:
      if (gen_id(w, c, f, data)) return w->st;
      break;
    case MS__K_REF: {
      const tchunk *p = c->parent;
      size_t es = elem_size(f);
      for (size_t r = 0; r < n; r++) {
        uint32_t pr = c->idx[1][r];
        memcpy((char *)data + r * es, (const char *)p->data[f->ref_field] + (size_t)pr * es, es);
        valid[r] = p->valid[f->ref_field][pr];
      }
      break;
    }
    case MS__K_STRING:
      gen_template(w, c, f, data);
      break;
    case MS__K_CATEGORICAL: {
      int32_t *o = data;
      const double *cu = c->cu[fi];
      const double *U = cu ? NULL : field_uniforms(w, c, key, &have_u);
      for (size_t r = 0; r < n; r++) {
        const double *cum = vsel[r] && f->when[vsel[r] - 1].cum ? f->when[vsel[r] - 1].cum : f->base.cum;
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
      break;
    }
    case MS__K_INTEGER:
    case MS__K_REAL:
    case MS__K_BOOL:
    case MS__K_DATE:
    case MS__K_DATETIME: {
      /* bounds shared by all variants; row r's is lo[r & lm] (a constant
       * is stored once) */
      double *lo = NULL, *hi = NULL;
      uint8_t *lok = NULL, *hok = NULL;
      size_t lm = 0, hm = 0;
      if (f->min.set) {
        lo = w->tmp[0];
        lok = w->ok[0];
        if (eval_param_m(w, c, &f->min, -INFINITY, lo, lok, NULL, 0, &lm)) return w->st;
      }
      if (f->max.set) {
        hi = w->tmp[1];
        hok = w->ok[1];
        if (eval_param_m(w, c, &f->max, INFINITY, hi, hok, NULL, 0, &hm)) return w->st;
      }
      variant_index(w, c, vsel, f->n_when);
      for (size_t k = 0; k <= f->n_when; k++) {
        size_t m = 0;
        const uint32_t *rows = variant_rows(w, c, vsel, f->n_when, k, &m);
        if (!m) continue;
        const ms__variant *rv = k ? &f->when[k - 1] : NULL;
        const ms__variant *b = &f->base;
        if (f->kind == MS__K_BOOL) {
          const ms__expr *x = rv && (rv->expr || rv->p.set) ? rv->expr : b->expr;
          const ms__param *p = rv && (rv->expr || rv->p.set) ? &rv->p : &b->p;
          if (x) {
            uint8_t *tv = w->ok[2], *tok = w->ok[3];
            if (eval_raw_sel(w, c, x, tv, tok, 1, rows, m)) return w->st;
            for (size_t r = 0; r < n; r++)
              if (vsel[r] == k) {
                ((uint8_t *)data)[r] = tok[r] ? tv[r] : 0;
                valid[r] = tok[r];
              }
          } else {
            double *pv = w->tmp[2];
            uint8_t *pok = w->ok[2];
            const double *cu = c->cu[fi];
            if (eval_param_sel(w, c, p, 0.0, pv, pok, rows, m)) return w->st;
            const double *U = cu ? NULL : field_uniforms(w, c, key, &have_u);
            for (size_t r = 0; r < n; r++) {
              if (vsel[r] != k) continue;
              if (!pok[r]) {
                valid[r] = 0;
                ((uint8_t *)data)[r] = 0;
                continue;
              }
              if (!(pv[r] >= 0 && pv[r] <= 1))
                return row_error(w, c, r, p->ptr, "must be in [0, 1] (got %g)", pv[r]);
              /* in a correlation group u = Phi(z) and the value is true on
               * the upper tail u > 1 - p, so that higher z means true */
              ((uint8_t *)data)[r] = cu ? cu[r] > 1.0 - pv[r] : U[r] < pv[r];
            }
          }
          continue;
        }
        if (f->kind == MS__K_INTEGER || f->kind == MS__K_REAL) {
          int rule_sets = rv && (rv->has_dist || rv->expr);
          const ms__expr *x = rule_sets ? rv->expr : b->expr;
          const ms__dist *D = rule_sets ? (rv->has_dist ? &rv->dist : NULL) : (b->has_dist ? &b->dist : NULL);
          if (x) {
            double *xv = w->tmp[2];
            uint8_t *xok = w->ok[2];
            if (eval_double_sel(w, c, x, xv, xok, rows, m)) return w->st;
            for (size_t r = 0; r < n; r++) {
              if (vsel[r] != k) continue;
              if (!xok[r]) {
                valid[r] = 0;
                clear_value(f, data, r);
                continue;
              }
              double v = xv[r];
              if (f->kind == MS__K_INTEGER) {
                v = floor(v + 0.5);
                if (!(fabs(v) < 9.2e18))
                  return row_error(w, c, r, f->ptr, "value %g does not fit an integer", xv[r]);
              } else if (f->precision >= 0) {
                double sc = pow(10.0, f->precision);
                v = round(v * sc) / sc;
              }
              store_num(f, data, r, v);
            }
          } else if (D) {
            if (draw_dist_rows(w, c, f, D, (int)k, vsel, lo, hi, lok, hok, lm, hm, data, valid, 0,
                               NULL,
                               field_uniforms(w, c, key, &have_u), rows, m))
              return w->st;
          }
          continue;
        }
        /* date / datetime */
        int rule_expr = rv && rv->expr;
        int rule_base = rv && (rv->base || rv->has_offset);
        const ms__expr *x = rule_expr ? rv->expr : rule_base ? NULL : b->expr;
        if (x) {
          size_t es = elem_size(f);
          if (eval_raw_sel(w, c, x, w->tmp[2], w->ok[2], es, rows, m)) return w->st;
          for (size_t r = 0; r < n; r++) {
            if (vsel[r] != k) continue;
            valid[r] = w->ok[2][r];
            memcpy((char *)data + r * es, (char *)w->tmp[2] + r * es, es);
          }
          continue;
        }
        const ms__expr *bx = rule_base && rv->base ? rv->base : b->base;
        const ms__dist *off = rule_base && rv->has_offset ? &rv->offset : b->has_offset ? &b->offset : NULL;
        double *bv = w->tmp[3];
        uint8_t *bok = w->ok[3];
        if (eval_double_sel(w, c, bx, bv, bok, rows, m)) return w->st;
        for (size_t r = 0; r < n; r++)
          if (vsel[r] == k) valid[r] = bok[r];
        if (off) {
          if (draw_dist_rows(w, c, f, off, (int)k, vsel, lo, hi, lok, hok, lm, hm, data, valid, 1,
                             bv,
                             field_uniforms(w, c, key, &have_u), rows, m))
            return w->st;
        } else {
          for (size_t r = 0; r < n; r++) {
            if (vsel[r] != k) continue;
            if (!valid[r]) {
              clear_value(f, data, r);
              continue;
            }
            if ((lo && lok[r & lm] && bv[r] < lo[r & lm]) ||
                (hi && hok[r & hm] && bv[r] > hi[r & hm]))
              return row_error(w, c, r, f->ptr,
                               "base value lies outside min/max and there is no offset_days to draw inside them");
            store_num(f, data, r, bv[r]);
          }
        }
      }
      break;
    }
    case MS__K_COUNT:
      break;
  }
  if (f->has_missing)
    if (gen_missing(w, c, f, data, valid)) return w->st;
  if (!f->nullable)
    for (size_t r = 0; r < n; r++)
      if (!valid[r])
        return row_error(w, c, r, f->ptr,
                         "value is missing (an input is missing) but the field allows no missing values; use coalesce() or declare \"missing\"");
  c->done[fi] = 1;
  return MS_OK;
}

/* Computes the fields of the chunk selected by phase:
 *   'n' needed for counting (filter, child counts), 'p' not position-dependent,
 *   'q' position-dependent. Fields already done are skipped. */
static ms_status gen_fields(ws_t *w, tchunk *c, char phase) {
  if (ws_reserve(w, c->n)) return ws_nomem(w, c->t->name, "the generator's scratch buffers");
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

/* ---- child tables ------------------------------------------------------------------ */

/* Per root chunk: chunks of every table of the tree (index by table). */
typedef struct {
  tchunk *out[MAX_TABLES]; /* rows inside the shard window (written) */
  tchunk *pre[MAX_TABLES]; /* rows before it (counted only) */
  tchunk *spare[MAX_TABLES]; /* the previous batch's chunks, for reuse */
  uint64_t pre_rows[MAX_TABLES];
  uint64_t cand0, ncand;
  uint64_t last_cand; /* candidate index + 1 of the last accepted row kept */
  size_t n_pre_root;
  ms_diag d;
  ms_status st;
} rchunk;

/* Builds the chunk of child table ci for the rows of parent chunk p (in
 * spare[ci] when it fits; spare may be NULL). */
static ms_status gen_children(ws_t *w, tchunk *p, size_t ci, tchunk **spare, tchunk **out) {
  const ms_spec *s = p->s;
  const ms__table *ct = &s->tables[ci];
  const ms__dist *D = &ct->count;
  size_t n = p->n;
  *out = NULL;
  if (ws_reserve(w, n)) return ws_nomem(w, ct->name, "the generator's scratch buffers");
  int nr, np;
  ms__dist_params(D->type, &nr, &np);
  double *P[MS__DIST_MAX_PARAMS];
  uint8_t *PO[MS__DIST_MAX_PARAMS];
  for (int i = 0; i < np && D->type != MS__DIST_QUANTILES; i++) {
    P[i] = w->tmp[4 + i];
    PO[i] = w->ok[4 + i];
    if (eval_param(w, p, &D->p[i], ms__dist_param_default(D->type, i), P[i], PO[i])) return w->st;
  }
  double *lo = w->tmp[0], *hi = w->tmp[1];
  uint8_t *lok = w->ok[0], *hok = w->ok[1];
  if (eval_param(w, p, &D->min, 0.0, lo, lok) || eval_param(w, p, &D->max, 1e7, hi, hok))
    return w->st;
  uint32_t *cnt = ms__malloc((n ? n : 1) * sizeof *cnt);
  if (!cnt) return ws_nomem(w, ct->name, "child counts");
  ms_rng_key key = ms_rng_key_make(w->seed, ct->count_stream);
  ms__dist_args a = {.qprobs = D->qprobs, .qvalues = D->qvalues, .qn = D->qn};
  size_t total = 0;
  double *U = w->tmp[10];
  ms_rng_uniform_n(key, p->uid, MS__LANE_VALUE, U, n);
  for (size_t r = 0; r < n; r++) {
    for (int i = 0; i < np && D->type != MS__DIST_QUANTILES; i++) {
      a.p[i] = P[i][r];
      if (!PO[i][r]) {
        free(cnt);
        return row_error(w, p, r, D->p[i].ptr, "child count parameter is missing for this row");
      }
    }
    if (!lok[r] || !hok[r]) {
      free(cnt);
      return row_error(w, p, r, D->ptr, "child count bound is missing for this row");
    }
    char msg[96];
    int bad = ms__dist_check(D->type, &a, msg, sizeof msg);
    if (bad >= 0) {
      free(cnt);
      return row_error(w, p, r, D->p[bad].ptr, "%s (got %g)", msg, a.p[bad]);
    }
    double l = fmax(0.0, lo[r]), h = fmin(1e7, hi[r]);
    double u = U[r];
    double x = draw_int(D->type, &a, l, h, u, 0, w->g, key, p->uid[r], NULL);
    if (isnan(x)) {
      free(cnt);
      return row_error(w, p, r, D->ptr, "no child count of the %s distribution lies between min %g and max %g",
                       ms__dist_name(D->type), l, h);
    }
    cnt[r] = (uint32_t)x;
    total += cnt[r];
  }
  if (total > UINT32_MAX / 2) {
    free(cnt);
    return row_error(w, p, 0, D->ptr, "too many child rows in one chunk (%zu); use a smaller --chunk-rows", total);
  }
  tchunk *c = tchunk_take(spare ? &spare[ci] : NULL, s, ci, total, p->count_mode);
  if (!c) {
    free(cnt);
    return ws_nomem(w, ct->name, "a chunk of rows");
  }
  c->parent = p;
  c->n = total;
  size_t j = 0;
  for (size_t r = 0; r < n; r++)
    for (uint32_t k = 0; k < cnt[r]; k++, j++) {
      c->uid[j] = ms_rng_stream_sub(p->uid[r], k);
      c->kidx[j] = k;
      c->idx[1][j] = (uint32_t)r;
      for (int l = 2; l <= ct->depth && l < MAX_LEVELS; l++) c->idx[l][j] = p->idx[l - 1][r];
    }
  free(cnt);
  *out = c;
  return MS_OK;
}

/* Generates the descendants of chunk c (its phase-1 fields done), tables in
 * spec order. `set` receives each table's chunk; spare (or NULL) holds
 * chunks to reuse. */
static ms_status gen_tree(ws_t *w, tchunk *c, tchunk **set, tchunk **spare, uint64_t *counts,
                          const uint8_t *want) {
  const ms__table *t = c->t;
  for (size_t k = 0; k < t->n_children; k++) {
    size_t ci = t->children[k];
    if (!want[ci]) continue;
    tchunk *cc = NULL;
    if (gen_children(w, c, ci, spare, &cc)) return w->st;
    if (gen_fields(w, cc, c->count_mode ? 'n' : 'p')) {
      tchunk_free(cc);
      return w->st;
    }
    if (counts) counts[ci] += cc->n;
    set[ci] = cc;
    if (gen_tree(w, cc, set, spare, counts, want)) return w->st;
  }
  return MS_OK;
}

/* ---- driver ------------------------------------------------------------------------ */

void ms_generate_opts_init(ms_generate_opts *o) {
  memset(o, 0, sizeof *o);
}

void ms_generate_report_deinit(ms_generate_report *r) {
  if (!r) return;
  free(r->tables);
  memset(r, 0, sizeof *r);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void rchunk_clear(rchunk *rc, size_t nt) {
  for (size_t i = 0; i < nt; i++) {
    tchunk_recycle(&rc->spare[i], rc->out[i]);
    tchunk_free(rc->pre[i]);
    rc->out[i] = rc->pre[i] = NULL;
    rc->pre_rows[i] = 0;
  }
  ms_diag_deinit(&rc->d);
  ms_diag_init(&rc->d);
  rc->st = MS_OK;
  rc->n_pre_root = 0;
  rc->last_cand = 0;
}

/* Step A: candidates -> needed fields -> filter -> compaction. */
static void step_a(ws_t *w, const ms_spec *s, size_t rt, rchunk *rc) {
  const ms__table *t = &s->tables[rt];
  tchunk *c = tchunk_take(&rc->spare[rt], s, rt, rc->ncand, 0);
  if (!c) {
    rc->st = ws_nomem(w, t->name, "a chunk of rows");
    return;
  }
  c->n = rc->ncand;
  for (size_t r = 0; r < c->n; r++) {
    c->uid[r] = rc->cand0 + r;
    c->kidx[r] = 0;
  }
  if (gen_fields(w, c, 'n')) {
    tchunk_free(c);
    rc->st = w->st;
    return;
  }
  if (t->filter) {
    uint8_t *val = ms__malloc(c->n ? c->n : 1), *ok = ms__malloc(c->n ? c->n : 1);
    uint32_t *keep = ms__malloc((c->n ? c->n : 1) * sizeof *keep);
    if (!val || !ok || !keep) ws_nomem(w, t->name, "the filter's results");
    if (w->st || eval_raw(w, c, t->filter, val, ok)) {
      free(val);
      free(ok);
      free(keep);
      tchunk_free(c);
      rc->st = w->st;
      return;
    }
    size_t m = 0;
    for (size_t r = 0; r < c->n; r++)
      if (ok[r] && val[r]) keep[m++] = (uint32_t)r;
    tchunk *d = tchunk_select(c, keep, m);
    free(val);
    free(ok);
    free(keep);
    tchunk_free(c);
    if (!d) {
      rc->st = ws_nomem(w, t->name, "a chunk of rows");
      return;
    }
    c = d;
  }
  rc->out[rt] = c;
}

/* Step B: split at the shard start; prefix rows only count descendants. */
static void step_b(ws_t *w, const ms_spec *s, size_t rt, rchunk *rc, const uint8_t *want) {
  tchunk *c = rc->out[rt];
  size_t pre = rc->n_pre_root;
  if (pre) {
    uint32_t *rows = ms__malloc(c->n * sizeof *rows);
    if (!rows) {
      rc->st = ws_nomem(w, c->t->name, "a chunk's row list");
      return;
    }
    for (size_t r = 0; r < c->n; r++) rows[r] = (uint32_t)r;
    tchunk *p = tchunk_select(c, rows, pre);
    tchunk *o = tchunk_select(c, rows + pre, c->n - pre);
    free(rows);
    if (!p || !o) {
      tchunk_free(p);
      tchunk_free(o);
      rc->st = ws_nomem(w, c->t->name, "a chunk of rows");
      return;
    }
    o->pos0 = c->pos0 + pre;
    tchunk_free(c);
    rc->out[rt] = c = o;
    p->count_mode = 1;
    rc->pre[rt] = p;
    if (gen_tree(w, p, rc->pre, NULL, rc->pre_rows, want)) {
      rc->st = w->st;
      return;
    }
    /* the prefix was only needed for its counts */
    for (size_t i = 0; i < s->n_tables; i++) {
      tchunk_free(rc->pre[i]);
      rc->pre[i] = NULL;
    }
  }
  if (gen_fields(w, c, 'p') || gen_tree(w, c, rc->out, rc->spare, NULL, want)) rc->st = w->st;
}

static void step_c(ws_t *w, const ms_spec *s, rchunk *rc) {
  for (size_t ti = 0; ti < s->n_tables; ti++)
    if (rc->out[ti] && gen_fields(w, rc->out[ti], 'q')) {
      rc->st = w->st;
      return;
    }
}

static ms_status write_chunk(const ms_sink *sink, const tchunk *c) {
  if (!sink || !sink->write_chunk || c->n == 0) return MS_OK;
  const ms__table *t = c->t;
  ms_colbuf cols[t->schema.n_columns ? t->schema.n_columns : 1];
  for (size_t fi = 0; fi < t->n_fields; fi++) {
    const ms__field *f = &t->fields[fi];
    if (f->col < 0) continue;
    cols[f->col].data = c->data[fi];
    cols[f->col].valid = f->nullable ? c->valid[fi] : NULL;
  }
  ms_chunk ch = {.schema = &t->schema, .first_row = c->pos0, .n_rows = c->n, .capacity = c->n,
                 .cols = cols, .parent_rows = c->parent ? c->idx[1] : NULL};
  return sink->write_chunk(sink->ctx, &ch);
}

static int in_subtree(const ms_spec *s, size_t ti, size_t root) {
  for (size_t t = ti; t != SIZE_MAX; t = s->tables[t].parent)
    if (t == root) return 1;
  return 0;
}

/* One pass over the chunks of a round (core/pool.h): chunk i on the
 * workspace of the thread that takes it. Which thread runs a chunk never
 * changes its values (each chunk is a pure function of seed and rows). */
typedef struct {
  const ms_spec *s;
  ws_t *ws;
  rchunk *rcs;
  uint64_t seed;
  size_t rt;
  const uint8_t *want;
  char step; /* 'a', 'b' or 'c' */
} step_job;

static void step_task(void *ctx, size_t i, size_t worker) {
  const step_job *j = ctx;
  ws_t *w = &j->ws[worker];
  rchunk *rc = &j->rcs[i];
  w->d = &rc->d;
  w->st = MS_OK;
  w->seed = j->seed;
  if (j->step == 'a')
    step_a(w, j->s, j->rt, rc);
  else if (j->step == 'b') {
    if (rc->out[j->rt]->n) step_b(w, j->s, j->rt, rc, j->want);
  } else {
    step_c(w, j->s, rc);
  }
}

ms_status ms_generate(const ms_spec *s, const ms_generate_opts *opts, const ms_sink *sink,
                      ms_generate_report *report, ms_diag *d) {
  double t0 = now_s();
  size_t d_count0 = d ? d->count : 0;
  if (report) memset(report, 0, sizeof *report); /* safe to deinit on any return */
  ms_generate_opts def;
  ms_generate_opts_init(&def);
  if (!opts) opts = &def;
  size_t nt = s->n_tables;
  if (nt > MAX_TABLES)
    return ms_diag_add(d, MS_ERR_UNSUPPORTED, NULL, 0, 0, NULL, "at most %d tables", MAX_TABLES);
  uint64_t seed = opts->has_seed ? opts->seed : s->seed;
  uint32_t S = opts->shard_count ? opts->shard_count : 1, K = opts->shard_index;
  if (K >= S)
    return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, NULL, "shard %u/%u: k must be < N", K + 1, S);
  size_t R = opts->chunk_rows ? opts->chunk_rows : 32768;
  if (R > (1u << 24)) R = 1u << 24;
  int nthreads = opts->threads > 0 ? opts->threads : omp_get_max_threads();
  if (nthreads > 256) nthreads = 256;

  uint8_t write[MAX_TABLES] = {0}, want[MAX_TABLES] = {0};
  if (opts->tables && opts->n_tables) {
    for (size_t i = 0; i < opts->n_tables; i++) {
      size_t ti = ms_spec_table_find(s, opts->tables[i]);
      if (ti == SIZE_MAX)
        return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, NULL, "unknown table \"%s\"",
                           opts->tables[i]);
      write[ti] = 1;
    }
  } else {
    memset(write, 1, nt);
  }
  for (size_t ti = 0; ti < nt; ti++)
    if (write[ti])
      for (size_t t = ti; t != SIZE_MAX; t = s->tables[t].parent) want[t] = 1;

  ms_generate_report rep = {0};
  rep.seed = seed;
  rep.n_tables = nt;
  rep.tables = ms__calloc(nt, sizeof *rep.tables);
  if (!rep.tables) return ms__diag_nomem(d, NULL, NULL, "the generation report");
  for (size_t ti = 0; ti < nt; ti++) {
    rep.tables[ti].name = s->tables[ti].name;
    rep.tables[ti].written = write[ti];
  }
  ms_status st = MS_OK;
  uint64_t total_root = 0, done_root = 0;
  for (size_t ti = 0; ti < nt; ti++)
    if (s->tables[ti].parent == SIZE_MAX && want[ti]) {
      uint64_t N = opts->rows ? opts->rows : s->tables[ti].rows;
      total_root += N * (K + 1) / S - N * K / S;
    }
  for (size_t ti = 0; ti < nt && st == MS_OK; ti++) {
    if (!write[ti] || !sink || !sink->begin_table) continue;
    uint64_t exp = 0;
    if (s->tables[ti].parent == SIZE_MAX) {
      uint64_t N = opts->rows ? opts->rows : s->tables[ti].rows;
      exp = N * (K + 1) / S - N * K / S;
    }
    st = sink->begin_table(sink->ctx, &s->tables[ti].schema, exp);
  }

  /* Chunks per batch. The chunk boundaries follow from it (below), and with
   * image fields they also fix the order in which the sink writes images,
   * masks and table rows, hence where HDF5 places them in the file: a spec
   * with image fields uses a fixed batch, so that the file's bytes, not only
   * its values, are the same for any thread count. */
  size_t nb = s->images && s->images->n ? 8 : (size_t)nthreads * 2;
  rchunk *rcs = ms__calloc(nb, sizeof *rcs);
  ws_t *ws = ms__calloc((size_t)nthreads, sizeof *ws);
  if ((!rcs || !ws) && st == MS_OK) st = ms__diag_nomem(d, NULL, NULL, "the generator's chunk slots");
  for (size_t i = 0; rcs && i < nb; i++) ms_diag_init(&rcs[i].d);
  uint64_t offsets[MAX_TABLES] = {0};

  for (size_t rt = 0; rt < nt && st == MS_OK; rt++) {
    const ms__table *t = &s->tables[rt];
    if (t->parent != SIZE_MAX || !want[rt]) continue;
    uint64_t N = opts->rows ? opts->rows : t->rows;
    uint64_t a = N * K / S, b = N * (K + 1) / S;
    int has_desc = 0;
    for (size_t ci = 0; ci < nt; ci++)
      if (ci != rt && want[ci] && in_subtree(s, ci, rt)) has_desc = 1;
    uint64_t cand = 0, pos_next = 0;
    if (!t->filter && !has_desc) cand = pos_next = a;
    uint64_t maxc = t->max_candidates;
    if (!maxc) maxc = N > UINT64_MAX / 200 ? UINT64_MAX : (N * 100 < 100000 ? 100000 : N * 100);
    uint64_t last_cand = 0;
    for (size_t ci = 0; ci < nt; ci++)
      if (in_subtree(s, ci, rt)) offsets[ci] = 0;
    while (pos_next < b && st == MS_OK) {
      /* With a filter the number of candidates needed is unknown: batches
       * start near the rows still wanted and grow, so small cohorts do not
       * evaluate a whole chunk of candidates. Which rows are accepted never
       * depends on this (first N in candidate order). */
      uint64_t Rb = R;
      if (!t->filter && !opts->chunk_rows) {
        /* rows left spread evenly over the chunks of the rounds they need,
         * so that the last round does not leave threads idle */
        uint64_t left = b - cand, per_round = (uint64_t)R * nb;
        uint64_t rounds = (left + per_round - 1) / per_round;
        if (rounds) Rb = (left + rounds * nb - 1) / (rounds * nb);
      }
      if (t->filter) {
        uint64_t want_rows = (b - pos_next + nb - 1) / nb;
        uint64_t grow = want_rows * 2 < 1024 ? 1024 : want_rows * 2;
        if (grow < Rb) Rb = grow;
      }
      size_t nc = 0;
      for (; nc < nb; nc++) {
        uint64_t c0 = cand + (uint64_t)nc * Rb;
        uint64_t lim = t->filter ? maxc : b;
        if (c0 >= lim) break;
        rchunk_clear(&rcs[nc], nt);
        rcs[nc].cand0 = c0;
        rcs[nc].ncand = lim - c0 < Rb ? lim - c0 : Rb;
      }
      if (nc == 0) {
        st = ms_diag_add(d, MS_ERR_DATA, s->file, 0, 0, t->name,
                         "filter accepted only %" PRIu64 " of the %" PRIu64
                         " rows wanted within max_candidates = %" PRIu64
                         " candidates; loosen the filter or raise \"max_candidates\"",
                         pos_next, b, maxc);
        break;
      }
      step_job job = {s, ws, rcs, seed, rt, want, 'a'};
      ms__parallel(nc, (size_t)nthreads, step_task, &job);
      for (size_t i = 0; i < nc && st == MS_OK; i++) {
        rchunk *rc = &rcs[i];
        if (rc->st) {
          st = rc->st;
          for (size_t e = 0; e < rc->d.count; e++) {
            const ms_diag_entry *en = &rc->d.entries[e];
            ms_diag_add(d, en->status, en->file, en->line, en->column, en->where, "%s", en->message);
          }
          break;
        }
        tchunk *c = rc->out[rt];
        uint64_t n = c->n;
        uint64_t pre = pos_next < a ? (a - pos_next < n ? a - pos_next : n) : 0;
        uint64_t end = b - pos_next < n ? b - pos_next : n;
        c->n = (size_t)end; /* rows beyond the shard end are dropped */
        c->pos0 = pos_next;
        rc->n_pre_root = (size_t)pre;
        if (end > 0) last_cand = c->uid[end - 1] + 1;
        pos_next += end;
      }
      if (st) break;
      job.step = 'b';
      ms__parallel(nc, (size_t)nthreads, step_task, &job);
      for (size_t i = 0; i < nc && st == MS_OK; i++) {
        rchunk *rc = &rcs[i];
        if (rc->st) {
          st = rc->st;
          for (size_t e = 0; e < rc->d.count; e++) {
            const ms_diag_entry *en = &rc->d.entries[e];
            ms_diag_add(d, en->status, en->file, en->line, en->column, en->where, "%s", en->message);
          }
          break;
        }
        for (size_t ci = 0; ci < nt; ci++) {
          if (ci == rt || !in_subtree(s, ci, rt)) continue;
          offsets[ci] += rc->pre_rows[ci];
          if (rc->out[ci]) {
            rc->out[ci]->pos0 = offsets[ci];
            offsets[ci] += rc->out[ci]->n;
          }
        }
      }
      if (st) break;
      job.step = 'c';
      ms__parallel(nc, (size_t)nthreads, step_task, &job);
      for (size_t i = 0; i < nc && st == MS_OK; i++) {
        rchunk *rc = &rcs[i];
        if (rc->st) {
          st = rc->st;
          for (size_t e = 0; e < rc->d.count; e++) {
            const ms_diag_entry *en = &rc->d.entries[e];
            ms_diag_add(d, en->status, en->file, en->line, en->column, en->where, "%s", en->message);
          }
          break;
        }
        for (size_t ti = 0; ti < nt && st == MS_OK; ti++) {
          tchunk *c = rc->out[ti];
          if (!c) continue;
          if (ti == rt) done_root += c->n - 0;
          if (!write[ti]) continue;
          st = write_chunk(sink, c);
          if (st) {
            ms_diag_add(d, st, NULL, 0, 0, s->tables[ti].name, "writing table \"%s\" failed",
                        s->tables[ti].name);
            break;
          }
          rep.tables[ti].rows += c->n;
        }
      }
      for (size_t i = 0; i < nc; i++) rchunk_clear(&rcs[i], nt);
      cand += (uint64_t)nc * Rb;
      if (opts->progress && st == MS_OK) opts->progress(opts->progress_ctx, done_root, total_root);
    }
    rep.tables[rt].candidates = t->filter ? last_cand : rep.tables[rt].rows;
    rep.tables[rt].total_rows = N;
    for (size_t ci = 0; ci < nt; ci++)
      if (ci != rt && in_subtree(s, ci, rt)) {
        rep.tables[ci].candidates = rep.tables[ci].rows;
        rep.tables[ci].total_rows = S == 1 ? rep.tables[ci].rows : 0;
      }
  }
  for (size_t ti = 0; ti < nt && st == MS_OK; ti++) {
    if (!write[ti] || !sink || !sink->end_table) continue;
    st = sink->end_table(sink->ctx, s->tables[ti].name);
  }
  for (size_t i = 0; rcs && i < nb; i++) {
    rchunk_clear(&rcs[i], nt);
    for (size_t ti = 0; ti < nt; ti++) tchunk_free(rcs[i].spare[ti]);
    ms_diag_deinit(&rcs[i].d);
  }
  for (int i = 0; ws && i < nthreads; i++) ws_free(&ws[i]);
  free(rcs);
  free(ws);
  rep.seconds = now_s() - t0;
  if (report)
    *report = rep;
  else
    ms_generate_report_deinit(&rep);
  /* allocation failures deep in a chunk carry no message of their own */
  if (st == MS_ERR_NOMEM && d && d->count == d_count0)
    ms_diag_add(d, MS_ERR_NOMEM, NULL, 0, 0, NULL, "out of memory while generating records");
  return st;
}
