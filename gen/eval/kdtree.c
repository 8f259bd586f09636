/* k-d tree for exact nearest-neighbour queries (distance to closest record,
 * membership-inference scores).
 *
 * Build: recursive split on the dimension of widest spread at the median
 * (quickselect on an index array, ties ordered by index so the tree is a pure
 * function of the points), leaves of at most 16 points. Query: depth-first
 * descent into the near child first, pruning a far child when the squared
 * distance to the splitting plane exceeds the current k-th best. Results are
 * exact; equal distances prefer the smaller point index, so answers do not
 * depend on traversal order or thread count. Queries run in an OpenMP loop,
 * each writing its own output slots.
 *
 * References: Friedman, Bentley & Finkel, "An algorithm for finding best
 * matches in logarithmic expected time", ACM TOMS 3(3), 1977. */
#include <math.h>
#include "core/alloc.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/pool.h"
#include "eval/eval_internal.h"

#define LEAF 16

typedef struct {
  size_t lo, hi;   /* range in idx */
  size_t left, right; /* child nodes; 0 = leaf */
  size_t dim;
  double split;
} node;

struct ms__kdtree {
  const double *pts;
  size_t n, dim;
  size_t *idx;
  node *nodes;
  size_t n_nodes, cap;
};

static int less(const ms__kdtree *t, size_t a, size_t b, size_t dim) {
  double va = t->pts[a * t->dim + dim], vb = t->pts[b * t->dim + dim];
  return va < vb || (va == vb && a < b);
}

/* Places the k-th smallest (by dim, then index) of idx[lo..hi) at position k. */
static void select_k(ms__kdtree *t, size_t lo, size_t hi, size_t k, size_t dim) {
  size_t *v = t->idx;
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2, last = hi - 1;
    /* Median of three as pivot, moved to the end (Lomuto partition). Keys
     * are unique (ties ordered by index), so every round shrinks the range. */
    size_t a = lo, b = mid, c = last, pi;
    if (less(t, v[a], v[b], dim)) pi = less(t, v[b], v[c], dim) ? b : (less(t, v[a], v[c], dim) ? c : a);
    else pi = less(t, v[a], v[c], dim) ? a : (less(t, v[b], v[c], dim) ? c : b);
    size_t tmp = v[pi];
    v[pi] = v[last];
    v[last] = tmp;
    size_t piv = v[last], store = lo;
    for (size_t i = lo; i < last; i++)
      if (less(t, v[i], piv, dim)) {
        tmp = v[i];
        v[i] = v[store];
        v[store++] = tmp;
      }
    v[last] = v[store];
    v[store] = piv;
    if (k == store) return;
    if (k < store) hi = store;
    else lo = store + 1;
  }
}

static size_t build(ms__kdtree *t, size_t lo, size_t hi) {
  size_t me = t->n_nodes++;
  node *nd = &t->nodes[me];
  nd->lo = lo;
  nd->hi = hi;
  nd->left = nd->right = 0;
  if (hi - lo <= LEAF) return me;
  size_t best = 0;
  double spread = -1;
  for (size_t d = 0; d < t->dim; d++) {
    double mn = INFINITY, mx = -INFINITY;
    for (size_t i = lo; i < hi; i++) {
      double v = t->pts[t->idx[i] * t->dim + d];
      if (v < mn) mn = v;
      if (v > mx) mx = v;
    }
    if (mx - mn > spread) spread = mx - mn, best = d;
  }
  if (spread <= 0) return me; /* all points equal: one leaf */
  size_t mid = lo + (hi - lo) / 2;
  select_k(t, lo, hi, mid, best);
  /* The plane lies midway between the largest left and the smallest right
   * value, so a query on the plane (common for one-hot dimensions) still
   * gets a positive distance bound to the far side when the halves differ. */
  double lmax = -INFINITY, rmin = t->pts[t->idx[mid] * t->dim + best];
  for (size_t i = lo; i < mid; i++) lmax = fmax(lmax, t->pts[t->idx[i] * t->dim + best]);
  double split = 0.5 * (lmax + rmin);
  size_t l = build(t, lo, mid);
  size_t r = build(t, mid, hi);
  nd = &t->nodes[me];
  nd->dim = best;
  nd->split = split;
  nd->left = l;
  nd->right = r;
  return me;
}

ms_status ms__kdtree_new(ms__kdtree **out, const double *pts, size_t n, size_t dim) {
  *out = NULL;
  ms__kdtree *t = ms__calloc(1, sizeof *t);
  if (!t) return MS_ERR_NOMEM;
  t->pts = pts;
  t->n = n;
  t->dim = dim;
  t->cap = 2 * (n / (LEAF / 2) + 1) + 1;
  t->idx = ms__malloc((n ? n : 1) * sizeof *t->idx);
  t->nodes = ms__malloc(t->cap * sizeof *t->nodes);
  if (!t->idx || !t->nodes) {
    ms__kdtree_free(t);
    return MS_ERR_NOMEM;
  }
  for (size_t i = 0; i < n; i++) t->idx[i] = i;
  if (n) build(t, 0, n);
  *out = t;
  return MS_OK;
}

void ms__kdtree_free(ms__kdtree *t) {
  if (!t) return;
  free(t->idx);
  free(t->nodes);
  free(t);
}

typedef struct {
  double d2[2];
  size_t id[2];
  int k;
} best_k;

static void offer(best_k *b, double d2, size_t id) {
  if (b->k == 1) {
    if (d2 < b->d2[0] || (d2 == b->d2[0] && id < b->id[0])) b->d2[0] = d2, b->id[0] = id;
    return;
  }
  if (d2 < b->d2[0] || (d2 == b->d2[0] && id < b->id[0])) {
    b->d2[1] = b->d2[0], b->id[1] = b->id[0];
    b->d2[0] = d2, b->id[0] = id;
  } else if (d2 < b->d2[1] || (d2 == b->d2[1] && id < b->id[1])) {
    b->d2[1] = d2, b->id[1] = id;
  }
}

/* rd: squared distance from q to the node's cell, accumulated over the
 * split dimensions (off[d] = q's offset from the cell along d); Arya &
 * Mount's incremental distance, a much tighter bound than one plane. */
static void search(const ms__kdtree *t, size_t ni, const double *q, best_k *b, double rd,
                   double *off) {
  const node *nd = &t->nodes[ni];
  if (!nd->left) {
    for (size_t i = nd->lo; i < nd->hi; i++) {
      size_t id = t->idx[i];
      const double *p = t->pts + id * t->dim;
      double s = 0, worst = b->d2[b->k - 1];
      for (size_t d = 0; d < t->dim && s <= worst; d++) {
        double df = p[d] - q[d];
        s += df * df;
      }
      if (s <= worst) offer(b, s, id);
    }
    return;
  }
  size_t dm = nd->dim;
  double diff = q[dm] - nd->split;
  size_t nearc = diff < 0 ? nd->left : nd->right, farc = diff < 0 ? nd->right : nd->left;
  search(t, nearc, q, b, rd, off);
  double old = off[dm], nrd = rd - old * old + diff * diff;
  /* <= so that equal-distance points with smaller indices are still seen. */
  if (nrd <= b->d2[b->k - 1]) {
    off[dm] = diff;
    search(t, farc, q, b, nrd, off);
    off[dm] = old;
  }
}

typedef struct {
  const ms__kdtree *t;
  const double *q;
  int k;
  double *dist;
  size_t *idx;
  size_t nq;
} kd_job;

/* Queries [64c, 64c + 64) (query costs vary: small tasks balance them). */
static void kd_queries(void *ctx, size_t c64, size_t worker) {
  const kd_job *j = ctx;
  const ms__kdtree *t = j->t;
  const int k = j->k;
  (void)worker;
  for (size_t i = c64 * 64; i < c64 * 64 + 64 && i < j->nq; i++) {
    best_k b = {{INFINITY, INFINITY}, {SIZE_MAX, SIZE_MAX}, k};
    double off[t->dim ? t->dim : 1];
    memset(off, 0, sizeof off);
    if (t->n) search(t, 0, j->q + i * t->dim, &b, 0, off);
    for (int c = 0; c < k; c++) {
      j->dist[i * (size_t)k + c] = sqrt(b.d2[c]);
      if (j->idx) j->idx[i * (size_t)k + c] = b.id[c];
    }
  }
}

void ms__kdtree_query(const ms__kdtree *t, const double *q, size_t nq, int k, double *dist,
                      size_t *idx) {
  kd_job j = {t, q, k, dist, idx, nq};
  ms__parallel((nq + 63) / 64, ms__parallel_threads(), kd_queries, &j);
}
