/* Exact nearest-neighbour search for the privacy metrics: a k-d tree in low
 * dimensions, a blocked SGEMM scan with exact double-precision re-ranking in
 * high dimensions (where trees degrade towards brute force).
 *
 * Blocked scan. Points and queries are centred on the points' mean (in
 * double) and rounded to float; per tile of QB queries x PB points
 * ms_sgemm gives G = -2 q.p, and the approximate squared distance
 * a(q,p) = |q|^2 + |p|^2 + G (norms in double) is offered to a per-query
 * max-heap of the M smallest approximations. The candidates are then
 * re-ranked exactly in double on the original (uncentred) vectors -- the
 * same summation as the brute-force reference, so an exact copy has
 * distance exactly 0 and equal distances prefer the smaller index.
 *
 * Exactness. Every point left out of a full heap has a(q,p) >= W, the
 * largest approximation kept. With a bound E(q) on |a(q,p) - d2(q,p)|, a
 * left-out point has d2 >= W - E(q); when W - E(q) > D_k (the exact k-th
 * best squared distance among the candidates) no left-out point can be
 * closer or tie, and the answer is exact. Otherwise (many near-equal
 * points, e.g. duplicates) that query is answered by an exact double scan.
 * E(q) = 2 (dim + 18) u (|q|^2 + max|p|^2) + dim 1e-15 (|q|^2 + max|p|^2 + |c|^2),
 * u = 2^-24: float rounding of the centred coordinates (4u(|q|^2+|p|^2)),
 * the float dot product (gamma_{dim+2} |q||p|, any summation order, Higham
 * 2002 s.3.1), the float sum of the norms and G (12u(|q|^2 + max|p|^2)) and
 * the double arithmetic of the centring, with a factor 2 to spare.
 *
 * Determinism. The method is chosen by dimension only. ms_sgemm's result
 * does not depend on the tile shape or thread count, each query's heap sees
 * the point tiles in one fixed order, and the final answer is the exact one
 * (unique under index tie-breaking) -- so results are identical for any
 * thread count and equal to brute force.
 *
 * References: Johnson, Douze & Jegou, "Billion-scale similarity search with
 * GPUs" (2017) (GEMM-based exact k-NN with per-query selection); Higham,
 * "Accuracy and Stability of Numerical Algorithms" (2002), s.3.1. */
#include <math.h>
#include "core/alloc.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/pool.h"
#include "eval/eval_internal.h"
#include "medsynth/kernels.h"

#define QB 256
#define PB 4096
#define CAND 32

struct ms__nn {
  const double *pts;
  size_t n, dim;
  ms__nn_method method;
  ms__kdtree *tree;
  float *pf;     /* n x dim, centred */
  double *pn;    /* |pf_j|^2 */
  float *pnf;    /* the same rounded to float, for the scan */
  double *c;     /* centre */
  double cn, pmax;
};

static int finite_and_small(const double *x, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!(fabs(x[i]) < 1e15)) return 0;
  return 1;
}

/* Points [i0, i1): centred float copy and squared norms. */
static void centre_points(void *ctx, size_t i0, size_t i1) {
  ms__nn *t = ctx;
  const size_t dim = t->dim;
  for (size_t i = i0; i < i1; i++) {
    double s = 0;
    for (size_t d = 0; d < dim; d++) {
      float v = (float)(t->pts[i * dim + d] - t->c[d]);
      t->pf[i * dim + d] = v;
      s += (double)v * v;
    }
    t->pn[i] = s;
    t->pnf[i] = (float)s;
  }
}

ms_status ms__nn_new(ms__nn **out, const double *pts, size_t n, size_t dim, ms__nn_method method) {
  *out = NULL;
  ms__nn *t = ms__calloc(1, sizeof *t);
  if (!t) return MS_ERR_NOMEM;
  t->pts = pts;
  t->n = n;
  t->dim = dim;
  if (method == MS__NN_AUTO) method = dim <= MS__NN_KDTREE_MAX_DIM ? MS__NN_KDTREE : MS__NN_GEMM;
  if (method == MS__NN_GEMM && (n == 0 || dim == 0 || !finite_and_small(pts, n * dim)))
    method = MS__NN_BRUTE;
  t->method = method;
  ms_status st = MS_OK;
  if (method == MS__NN_KDTREE) {
    st = ms__kdtree_new(&t->tree, pts, n, dim);
  } else if (method == MS__NN_GEMM) {
    t->pf = ms__malloc(n * dim * sizeof *t->pf);
    t->pn = ms__malloc(n * sizeof *t->pn);
    t->pnf = ms__malloc(n * sizeof *t->pnf);
    t->c = ms__calloc(dim, sizeof *t->c);
    if (!t->pf || !t->pn || !t->pnf || !t->c) st = MS_ERR_NOMEM;
    else {
      for (size_t i = 0; i < n; i++)
        for (size_t d = 0; d < dim; d++) t->c[d] += pts[i * dim + d];
      for (size_t d = 0; d < dim; d++) t->c[d] /= (double)n, t->cn += t->c[d] * t->c[d];
      ms__parallel_range(n, 1024, centre_points, t);
      for (size_t i = 0; i < n; i++)
        if (t->pn[i] > t->pmax) t->pmax = t->pn[i];
    }
  }
  if (st) {
    ms__nn_free(t);
    return st;
  }
  *out = t;
  return MS_OK;
}

void ms__nn_free(ms__nn *t) {
  if (!t) return;
  ms__kdtree_free(t->tree);
  free(t->pf);
  free(t->pn);
  free(t->pnf);
  free(t->c);
  free(t);
}

ms__nn_method ms__nn_method_used(const ms__nn *t) { return t->method; }

static double exact_d2(const double *a, const double *b, size_t dim) {
  double s = 0;
  for (size_t d = 0; d < dim; d++) {
    double df = b[d] - a[d];
    s += df * df;
  }
  return s;
}

/* Keeps the k (1 or 2) best (d2, index) pairs; smaller index wins ties. */
static void offer2(double *bd, size_t *bi, int k, double d2, size_t id) {
  if (d2 < bd[0] || (d2 == bd[0] && id < bi[0])) {
    if (k > 1) bd[1] = bd[0], bi[1] = bi[0];
    bd[0] = d2, bi[0] = id;
  } else if (k > 1 && (d2 < bd[1] || (d2 == bd[1] && id < bi[1]))) {
    bd[1] = d2, bi[1] = id;
  }
}

static void brute_one(const ms__nn *t, const double *q, int k, double *bd, size_t *bi) {
  bd[0] = bd[1] = INFINITY;
  bi[0] = bi[1] = SIZE_MAX;
  for (size_t i = 0; i < t->n; i++) offer2(bd, bi, k, exact_d2(q, t->pts + i * t->dim, t->dim), i);
}

/* Max-heap of (approximate d2, index) on approx only. */
static void heap_push(float *hd, uint32_t *hi, int *cnt, float v, uint32_t id) {
  int i = (*cnt)++;
  while (i > 0) {
    int p = (i - 1) / 2;
    if (hd[p] >= v) break;
    hd[i] = hd[p], hi[i] = hi[p];
    i = p;
  }
  hd[i] = v, hi[i] = id;
}

static void heap_replace_top(float *hd, uint32_t *hi, int cnt, float v, uint32_t id) {
  int i = 0;
  for (;;) {
    int l = 2 * i + 1, r = l + 1, m = i;
    float mv = v;
    if (l < cnt && hd[l] > mv) m = l, mv = hd[l];
    if (r < cnt && hd[r] > mv) m = r;
    if (m == i) break;
    hd[i] = hd[m], hi[i] = hi[m];
    i = m;
  }
  hd[i] = v, hi[i] = id;
}

/* One query block's state shared by its tasks (core/pool.h); each task
 * owns whole queries, so the thread count never changes a result. */
typedef struct {
  const ms__nn *t;
  const double *q;
  int k;
  double *dist;
  size_t *idx;
  const double *qn;
  float *hd;
  uint32_t *hi;
  int *hc;
  const float *G; /* current point block: w columns from point p0 */
  size_t w, p0, q0, w_q; /* w_q: queries in the block */
} gemm_job;

/* Queries [i0, i1) of the block offer the current point block's
 * approximate distances to their candidate heaps. */
static void offer_block(void *ctx, size_t i0, size_t i1) {
  const gemm_job *j = ctx;
  const size_t w = j->w, p0 = j->p0;
  for (size_t i = i0; i < i1; i++) {
    float *h = j->hd + i * CAND;
    uint32_t *hx = j->hi + i * CAND;
    int c = j->hc[i];
    const float *g = j->G + i * w, *pnf = j->t->pnf + p0;
    const float qnf = (float)j->qn[i];
    size_t jj = 0;
    for (; jj < w && c < CAND; jj++) heap_push(h, hx, &c, (qnf + pnf[jj]) + g[jj], (uint32_t)(p0 + jj));
    float top = c ? h[0] : INFINITY;
    for (; jj < w; jj++) {
      float a = (qnf + pnf[jj]) + g[jj];
      if (a < top) {
        heap_replace_top(h, hx, c, a, (uint32_t)(p0 + jj));
        top = h[0];
      }
    }
    j->hc[i] = c;
  }
}

/* Queries [16 b, 16 b + 16) of the block: exact distances of the
 * candidates, and a full scan where the candidates cannot be trusted. */
static void refine_block(void *ctx, size_t b, size_t worker) {
  const gemm_job *j = ctx;
  const ms__nn *t = j->t;
  const size_t dim = t->dim;
  const int k = j->k;
  (void)worker;
  for (size_t i = b * 16; i < b * 16 + 16 && i < j->w_q; i++) {
    const double *qq = j->q + (j->q0 + i) * dim;
    double bd[2] = {INFINITY, INFINITY};
    size_t bi[2] = {SIZE_MAX, SIZE_MAX};
    int c = j->hc[i];
    float wmax = -INFINITY;
    for (int jj = 0; jj < c; jj++) {
      size_t id = j->hi[i * CAND + jj];
      offer2(bd, bi, k, exact_d2(qq, t->pts + id * dim, dim), id);
      if (j->hd[i * CAND + jj] > wmax) wmax = j->hd[i * CAND + jj];
    }
    if ((size_t)c < t->n) {
      /* a is summed in float from float-rounded norms: a further
       * 4u (|q|^2 + max|p|^2 + |G|) <= 12u (|q|^2 + max|p|^2), inside the
       * +18 below. */
      double scale = j->qn[i] + t->pmax;
      double err = 2.0 * ((double)dim + 18) * 0x1p-24 * scale + (double)dim * 1e-15 * (scale + t->cn) * 2;
      if (!((double)wmax - err > bd[k - 1])) brute_one(t, qq, k, bd, bi);
    }
    for (int jj = 0; jj < k; jj++) {
      j->dist[(j->q0 + i) * (size_t)k + jj] = sqrt(bd[jj]);
      if (j->idx) j->idx[(j->q0 + i) * (size_t)k + jj] = bi[jj];
    }
  }
}

static ms_status gemm_query(const ms__nn *t, const double *q, size_t nq, int k, double *dist,
                            size_t *idx) {
  size_t dim = t->dim;
  size_t qb = nq < QB ? nq : QB, pb = t->n < PB ? t->n : PB;
  size_t sc_n = ms_sgemm_scratch_floats(qb, pb, dim);
  float *qf = ms__malloc(qb * dim * sizeof *qf), *G = ms__malloc(qb * pb * sizeof *G);
  float *scratch = ms__malloc((sc_n ? sc_n : 1) * sizeof *scratch);
  double *qn = ms__malloc(qb * sizeof *qn);
  float *hd = ms__malloc(qb * CAND * sizeof *hd);
  uint32_t *hi = ms__malloc(qb * CAND * sizeof *hi);
  int *hc = ms__malloc(qb * sizeof *hc);
  ms_status st = MS_OK;
  if (!qf || !G || !scratch || !qn || !hd || !hi || !hc || t->n > UINT32_MAX) st = MS_ERR_NOMEM;
  gemm_job gq = {.t = t, .q = q, .k = k, .dist = dist, .idx = idx, .qn = qn, .hd = hd, .hi = hi, .hc = hc};
  for (size_t q0 = 0; q0 < nq && !st; q0 += qb) {
    size_t m = nq - q0 < qb ? nq - q0 : qb;
    for (size_t i = 0; i < m; i++) {
      double s = 0;
      for (size_t d = 0; d < dim; d++) {
        float v = (float)(q[(q0 + i) * dim + d] - t->c[d]);
        qf[i * dim + d] = v;
        s += (double)v * v;
      }
      qn[i] = s;
      hc[i] = 0;
    }
    for (size_t p0 = 0; p0 < t->n && !st; p0 += pb) {
      size_t w = t->n - p0 < pb ? t->n - p0 : pb;
      st = ms_sgemm(G, w, qf, dim, t->pf + p0 * dim, dim, MS_TRANS_NO, MS_TRANS_YES, m, w, dim, -2.0f,
                    0.0f, scratch, sc_n);
      if (st) break;
      gq.G = G;
      gq.w = w;
      gq.p0 = p0;
      ms__parallel_range(m, 16, offer_block, &gq);
    }
    if (st) break;
    gq.q0 = q0;
    gq.w_q = m;
    ms__parallel((m + 15) / 16, ms__parallel_threads(), refine_block, &gq);
  }
  free(qf);
  free(G);
  free(scratch);
  free(qn);
  free(hd);
  free(hi);
  free(hc);
  return st;
}

/* Queries [16 b, 16 b + 16) by a full scan. */
static void brute_block(void *ctx, size_t b, size_t worker) {
  const gemm_job *j = ctx;
  const int k = j->k;
  (void)worker;
  for (size_t i = b * 16; i < b * 16 + 16 && i < j->w_q; i++) {
    double bd[2];
    size_t bi[2];
    brute_one(j->t, j->q + i * j->t->dim, k, bd, bi);
    for (int c = 0; c < k; c++) {
      j->dist[i * (size_t)k + c] = sqrt(bd[c]);
      if (j->idx) j->idx[i * (size_t)k + c] = bi[c];
    }
  }
}

ms_status ms__nn_query(const ms__nn *t, const double *q, size_t nq, int k, double *dist, size_t *idx) {
  if (k < 1 || k > 2) return MS_ERR_INVALID;
  if (nq == 0) return MS_OK;
  if (t->method == MS__NN_KDTREE) {
    ms__kdtree_query(t->tree, q, nq, k, dist, idx);
    return MS_OK;
  }
  if (t->method == MS__NN_GEMM && t->n > 0) return gemm_query(t, q, nq, k, dist, idx);
  gemm_job j = {.t = t, .q = q, .k = k, .dist = dist, .idx = idx, .w_q = nq};
  ms__parallel((nq + 15) / 16, ms__parallel_threads(), brute_block, &j);
  return MS_OK;
}
