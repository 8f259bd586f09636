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
 * scratch (expression scratch, gsl_rng, window cache).
 *
 * This file holds chunks, scratch, child tables and the driver; one field
 * over a chunk is generate_field.c, behind the private
 * records/generate_int.h. */
#include "records/generate_int.h"

/* ---- chunk of one table --------------------------------------------------- */

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

int ms__gen_ws_reserve(ws_t *w, size_t n) {
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
  if (ms__gen_ws_reserve(w, n)) return ws_nomem(w, ct->name, "the generator's scratch buffers");
  int nr, np;
  ms__dist_params(D->type, &nr, &np);
  double *P[MS__DIST_MAX_PARAMS];
  uint8_t *PO[MS__DIST_MAX_PARAMS];
  for (int i = 0; i < np && D->type != MS__DIST_QUANTILES; i++) {
    P[i] = w->tmp[4 + i];
    PO[i] = w->ok[4 + i];
    if (ms__gen_eval_param(w, p, &D->p[i], ms__dist_param_default(D->type, i), P[i], PO[i])) return w->st;
  }
  double *lo = w->tmp[0], *hi = w->tmp[1];
  uint8_t *lok = w->ok[0], *hok = w->ok[1];
  if (ms__gen_eval_param(w, p, &D->min, 0.0, lo, lok) || ms__gen_eval_param(w, p, &D->max, 1e7, hi, hok))
    return w->st;
  uint32_t *cnt = ms__malloc((n ? n : 1) * sizeof *cnt);
  if (!cnt) return ws_nomem(w, ct->name, "child counts");
  ms_rng_key key = ms_rng_key_make(w->seed, ct->count_stream);
  ms__dist_args a = {.qprobs = D->qprobs, .qvalues = D->qvalues, .qn = D->qn,
                      .qguide = D->qguide, .qgbits = D->qgbits};
  size_t total = 0;
  double *U = w->tmp[10];
  ms_rng_uniform_n(key, p->uid, MS__LANE_VALUE, U, n);
  for (size_t r = 0; r < n; r++) {
    for (int i = 0; i < np && D->type != MS__DIST_QUANTILES; i++) {
      a.p[i] = P[i][r];
      if (!PO[i][r]) {
        free(cnt);
        return ms__gen_row_error(w, p, r, D->p[i].ptr, "child count parameter is missing for this row");
      }
    }
    if (!lok[r] || !hok[r]) {
      free(cnt);
      return ms__gen_row_error(w, p, r, D->ptr, "child count bound is missing for this row");
    }
    char msg[96];
    int bad = ms__dist_check(D->type, &a, msg, sizeof msg);
    if (bad >= 0) {
      free(cnt);
      return ms__gen_row_error(w, p, r, D->p[bad].ptr, "%s (got %g)", msg, a.p[bad]);
    }
    double l = fmax(0.0, lo[r]), h = fmin(1e7, hi[r]);
    double u = U[r];
    double x = draw_int(D->type, &a, l, h, u, 0, w->g, key, p->uid[r], NULL);
    if (isnan(x)) {
      free(cnt);
      return ms__gen_row_error(w, p, r, D->ptr, "no child count of the %s distribution lies between min %g and max %g",
                       ms__dist_name(D->type), l, h);
    }
    cnt[r] = (uint32_t)x;
    total += cnt[r];
  }
  if (total > UINT32_MAX / 2) {
    free(cnt);
    return ms__gen_row_error(w, p, 0, D->ptr, "too many child rows in one chunk (%zu); use a smaller --chunk-rows", total);
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
    if (ms__gen_fields(w, cc, c->count_mode ? 'n' : 'p')) {
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

void ms_generate_params_init(ms_generate_params *o) {
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
  if (ms__gen_fields(w, c, 'n')) {
    tchunk_free(c);
    rc->st = w->st;
    return;
  }
  if (t->filter) {
    uint8_t *val = ms__malloc(c->n ? c->n : 1), *ok = ms__malloc(c->n ? c->n : 1);
    uint32_t *keep = ms__malloc((c->n ? c->n : 1) * sizeof *keep);
    if (!val || !ok || !keep) ws_nomem(w, t->name, "the filter's results");
    if (w->st || ms__gen_eval_raw(w, c, t->filter, val, ok)) {
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
  if (ms__gen_fields(w, c, 'p') || gen_tree(w, c, rc->out, rc->spare, NULL, want)) rc->st = w->st;
}

static void step_c(ws_t *w, const ms_spec *s, rchunk *rc) {
  for (size_t ti = 0; ti < s->n_tables; ti++)
    if (rc->out[ti] && ms__gen_fields(w, rc->out[ti], 'q')) {
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

/* What the chunks of one round of a root table feed, in chunk order: the
 * shard's row positions, the descendants' offsets, the sink and the report. */
typedef struct {
  const ms_spec *s;
  const ms_sink *sink;
  const uint8_t *write;
  size_t rt;         /* the root table */
  uint64_t a, b;     /* the shard's root rows [a, b) */
  uint64_t pos_next; /* position of the next root row */
  uint64_t last_cand;
  uint64_t done_root;
  uint64_t *offsets; /* next row position of each table */
  ms_generate_report *rep;
} round_t;

/* After step a: the root rows of the chunk take their positions; rows
 * beyond the shard end are dropped. */
static ms_status after_a(round_t *rd, rchunk *rc, ms_diag *d) {
  (void)d;
  tchunk *c = rc->out[rd->rt];
  uint64_t n = c->n, pos_next = rd->pos_next, a = rd->a, b = rd->b;
  uint64_t pre = pos_next < a ? (a - pos_next < n ? a - pos_next : n) : 0;
  uint64_t end = b - pos_next < n ? b - pos_next : n;
  c->n = (size_t)end; /* rows beyond the shard end are dropped */
  c->pos0 = pos_next;
  rc->n_pre_root = (size_t)pre;
  if (end > 0) rd->last_cand = c->uid[end - 1] + 1;
  rd->pos_next += end;
  return MS_OK;
}

/* After step b: the descendants' rows take their positions. */
static ms_status after_b(round_t *rd, rchunk *rc, ms_diag *d) {
  (void)d;
  const ms_spec *s = rd->s;
  for (size_t ci = 0; ci < s->n_tables; ci++) {
    if (ci == rd->rt || !in_subtree(s, ci, rd->rt)) continue;
    rd->offsets[ci] += rc->pre_rows[ci];
    if (rc->out[ci]) {
      rc->out[ci]->pos0 = rd->offsets[ci];
      rd->offsets[ci] += rc->out[ci]->n;
    }
  }
  return MS_OK;
}

/* After step c: the chunk's tables go to the sink. */
static ms_status after_c(round_t *rd, rchunk *rc, ms_diag *d) {
  const ms_spec *s = rd->s;
  for (size_t ti = 0; ti < s->n_tables; ti++) {
    tchunk *c = rc->out[ti];
    if (!c) continue;
    if (ti == rd->rt) rd->done_root += c->n;
    if (!rd->write[ti]) continue;
    ms_status st = write_chunk(rd->sink, c);
    if (st)
      return ms_diag_add(d, st, NULL, 0, 0, s->tables[ti].name, "writing table \"%s\" failed",
                         s->tables[ti].name);
    rd->rep->tables[ti].rows += c->n;
  }
  return MS_OK;
}

/* Runs one step over the nc chunks of a round in parallel, then `after` on
 * each chunk in order; the first chunk whose step failed (its status and
 * diag become the round's) or whose `after` fails ends the round. */
static ms_status run_step(step_job *job, char step, size_t nc, int nthreads,
                          ms_status (*after)(round_t *, rchunk *, ms_diag *), round_t *rd,
                          ms_diag *d) {
  job->step = step;
  ms__parallel(nc, (size_t)nthreads, step_task, job);
  for (size_t i = 0; i < nc; i++) {
    rchunk *rc = &job->rcs[i];
    if (rc->st) {
      ms_diag_append(d, &rc->d);
      return rc->st;
    }
    ms_status st = after(rd, rc, d);
    if (st) return st;
  }
  return MS_OK;
}

ms_status ms_generate(const ms_spec *s, const ms_generate_params *opts, const ms_sink *sink,
                      ms_generate_report *report, ms_diag *d) {
  double t0 = now_s();
  size_t d_count0 = d ? d->count : 0;
  if (report) memset(report, 0, sizeof *report); /* safe to deinit on any return */
  ms_generate_params def;
  ms_generate_params_init(&def);
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
      round_t rd = {s, sink, write, rt, a, b, pos_next, last_cand, done_root, offsets, &rep};
      step_job job = {s, ws, rcs, seed, rt, want, 'a'};
      st = run_step(&job, 'a', nc, nthreads, after_a, &rd, d);
      if (st == MS_OK) st = run_step(&job, 'b', nc, nthreads, after_b, &rd, d);
      if (st == MS_OK) st = run_step(&job, 'c', nc, nthreads, after_c, &rd, d);
      pos_next = rd.pos_next;
      last_cand = rd.last_cand;
      done_root = rd.done_root;
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
