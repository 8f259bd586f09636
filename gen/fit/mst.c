/* MST: differentially private synthesis from noisy 2-way marginals on a
 * maximum spanning tree of the columns (McKenna, Miklau & Sheldon, "Winning
 * the NIST Contest: A scalable and general approach to differentially
 * private synthetic data", J. Privacy and Confidentiality 2021).
 *
 * fit.c releases each column's marginal first (its DP path, a third of the
 * budget); everything here is a function of those released figures and of
 * two further Gaussian/exponential mechanisms:
 *
 *  1. Bins (post-processing of the released marginals): a numeric column is
 *     cut at quantiles of its released CDF into B equal-mass bins, B from
 *     the released row count N and the edge noise (B = round(sqrt(N /
 *     (2 sigma_edge))), 2..32), the cuts moved half a step off the column's
 *     value grid so every written value lies in one bin; a categorical or
 *     bool column's bins are its released levels. A missing bin is added
 *     when the released missing count exceeds twice the column's noise.
 *     The 1-way bin shares p_i follow from the released marginal.
 *  2. Selection (rho_select): d - 1 rounds of the exponential mechanism over
 *     the pairs joining two components (Kruskal order), score = L1 distance
 *     between the pair's true 2-way bin counts and N p_i p_j^T. One row moves
 *     a score by at most 1; each round is the exponential mechanism with
 *     epsilon_r = sqrt(8 rho_select / (d - 1)), which is epsilon_r^2 / 8-zCDP
 *     (Cesar & Rogers 2021, bounded-range mechanisms), so the rounds add up
 *     to rho_select.
 *  3. Edges (rho_edges): the d - 1 tables of bin counts of the chosen pairs
 *     get N(0, sigma^2) on every cell. One row is one cell of each table, so
 *     the L2 sensitivity of all tables together is sqrt(d - 1) and sigma =
 *     sqrt((d - 1) / (2 rho_edges)).
 *  4. Estimation (post-processing): each noisy table minus the independence
 *     table of its own (noisy) margins (its interaction part; a released
 *     1-way share that is off must not pass for dependence) is shrunk
 *     towards 0 by the estimated signal share lambda = max(0, 1 - (B_i - 1)
 *     (B_j - 1) (sigma^2 + N / (B_i B_j)) / ||interaction||^2) (noise and
 *     sampling variance of a cell), added back to that
 *     independence table, a cell below 2 sigma and below its independence value set to
 *     0 (it cannot be told from an empty one), floored at a tiny
 *     positive share of independence and raked by iterative
 *     proportional fitting to the shared 1-way shares, so the tables of two
 *     edges agree on the column they share. On a tree that is a consistent
 *     model: P(root) prod P(child | parent).
 *
 * The spec holds one hidden categorical field per column ("<name>_bin",
 * labels "0", "1", ... and "na") with the root's shares as `values` and one
 * `when` rule per parent bin, and the visible field drawn within its bin:
 * the released quantile table restricted to the bin, the bin's label, or p
 * 0/1. Every noise draw is keyed by (seed, "fit/dp/<column>[/<column>]/mst-*",
 * index). The Private-PGM package generalises step 4 to any set of
 * measurements; it was read, not copied.
 *
 * AIM (McKenna, Mullins, Sheldon & Miklau, "AIM: An Adaptive and Iterative
 * Mechanism for Differentially Private Synthetic Data", VLDB 2022), in the
 * same frame: each of the d - 1 rounds picks, by the exponential mechanism,
 * a marginal that joins two components of the model -- a pair of columns,
 * or a column z with a pair (x, y) the model already holds together -- by
 * how badly the current model explains it (L1 between its true counts and
 * the model's: the 2-way table of (x, y), or the released shares, times z's
 * shares) less the expected L1 error of its noise (sqrt(2 / pi) sigma per
 * cell; without noise, of its sampling, sqrt(2 n cells / pi)). The chosen
 * table is measured and estimated as an edge above with (x, y) as one
 * column, raked to the model's (x, y) table and z's shares. Cliques of at
 * most 3 columns glued along a shared column or pair form a junction tree
 * whose tables agree on every separator, so the model is exact
 * (decomposable): each column is drawn given at most two parents. Bins are
 * at most AIM_MAX_BINS - 1 (plus missing) so that two parents' bins give
 * at most 196 rules. Under noise the rounds are AIM's (aim_rounds below):
 * a marginal of the model may be measured again, the noise is halved as
 * marginals turn out explained, and the rounds run until the budget is
 * spent. Not done: cliques that would need mirror descent (they never
 * form here). */
#include <cjson/cJSON.h>
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_matrix.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/json.h"
#include "fit/fit_internal.h"
#include "medsynth/records.h"
#include "medsynth/rng.h"

#define MST_MAX_BINS 32
#define MST_IPF_ROUNDS 50
/* AIM: bins of a column, the missing bin included, so that the bins of
 * two parents give at most 196 rules (a spec field holds at most
 * MS_SPEC_MAX_RULES); triples only up to this many columns */
#define AIM_MAX_BINS 14
#define AIM_MAX_TRIPLE_COLS 256
/* AIM under noise: the rounds the budget is first cut for, per join the
 * model needs (d - 1 joins); 2 measured better than 1 or 4 on nine R
 * tables and the evaluator's two at epsilon = 1 (docs/privacy.md) */
#define AIM_ROUNDS_PER_JOIN 2

typedef struct {
  char *name, *bin_name;
  size_t field;
  ms__mst_kind kind;
  int date;
  size_t nb;      /* bins, the missing bin (last) included */
  int has_na;
  double *cut;    /* NUM: nb - has_na + 1 boundaries (first and last unused for binning) */
  double *p1;     /* nb released 1-way shares */
  const double *qp, *qv;
  size_t nq;
  const char *const *labels;
  size_t n_par;   /* parents in the sampling order: 0 (a root), 1 or 2 */
  size_t par[2];
  double *cond;   /* (bins of par[0] x bins of par[1]) x nb: P(bin | parents' bins) */
  double step;    /* NUM: spacing of the written values; 0: continuous */
} mst_col;

/* A measured marginal of the model: 2 or 3 columns v[0..k), its estimated
 * counts row-major over them; glued to at most two earlier cliques (one in
 * each component it joined; SIZE_MAX: none). */
typedef struct {
  size_t k, v[3];
  double *tab;
  size_t link[2];
  double lambda; /* share of the measured interaction kept */
  /* AIM under noise: the true counts, and the inverse-variance weighted
   * mean of the clique's noisy measurements (raw) with its precision, the
   * sum of 1 / sigma^2 over them */
  double *truth, *raw, prec;
} mst_clique;

/* A round of AIM under noise: the clique it measured (a new one or again),
 * the noise and the selection's epsilon it spent. */
typedef struct {
  size_t clique;
  double sigma, eps;
  int again;
} aim_round;

struct ms__mst {
  size_t d;
  mst_col *c;
  size_t n_cliques;
  mst_clique *q;
  double rho_select, rho_edges, sigma_edge, eps_round, n, k_min;
  size_t root;
  size_t *order; /* the columns in sampling order (parents first) */
  int rebalanced, aim;
  aim_round *rounds; /* AIM under noise: every round */
  size_t n_rounds;
  /* Without noise: the numeric columns whose draws within their bins are
   * correlated (wc, indices into c), the correlation of their within-bin
   * normal scores (wc_corr) and its lower Cholesky factor (wc_chol) */
  size_t n_wc, *wc;
  double *wc_corr, *wc_chol;
};

static ms_rng_key key2(uint64_t seed, const char *a, const char *b, const char *what) {
  char name[600];
  snprintf(name, sizeof name, "fit/dp/%s%s%s/%s", a, b ? "/" : "", b ? b : "", what);
  return ms_rng_key_make(seed, ms_rng_stream(name));
}

#define cdf_at ms__fit_quantile_cdf
#define inv_at ms__fit_quantile_inv
#define r6 ms__fit_sig6

/* Bin of row r of column (desc, c); -1: the row is in no bin (a level that
 * was not released, or missing without a missing bin) and is left out of
 * every count, which keeps each row in at most one cell. */
static int row_bin(const mst_col *c, const ms__mst_col *src, size_t r) {
  size_t np = c->nb - (size_t)c->has_na;
  switch (c->kind) {
    case MS__MST_NUM: {
      double v = src->num[r];
      if (isnan(v)) return c->has_na ? (int)np : -1;
      size_t lo = 0, hi = np; /* the bin k with cut[k] <= v < cut[k + 1] */
      while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (v >= c->cut[mid]) lo = mid;
        else hi = mid;
      }
      return (int)lo;
    }
    case MS__MST_CAT: {
      int32_t k = src->code[r];
      if (k < 0) return c->has_na ? (int)np : -1;
      return src->map[k];
    }
    default: {
      double v = src->num[r];
      if (isnan(v)) return c->has_na ? (int)np : -1;
      return v != 0;
    }
  }
}

static char *bin_field_name(const char *name, size_t idx, const char *const *taken, size_t n_taken,
                            const mst_col *cols, size_t n_cols) {
  char buf[96];
  for (unsigned v = 0;; v++) {
    if (strlen(name) + 12 <= 63)
      snprintf(buf, sizeof buf, v ? "%s_bin%u" : "%s_bin", name, v + 1);
    else
      snprintf(buf, sizeof buf, v ? "mst_bin_%zu_%u" : "mst_bin_%zu", idx, v + 1);
    int clash = 0;
    for (size_t i = 0; i < n_taken && !clash; i++) clash = taken[i] && !strcmp(taken[i], buf);
    for (size_t i = 0; i < n_cols && !clash; i++) clash = cols[i].bin_name && !strcmp(cols[i].bin_name, buf);
    if (!clash) return ms__strdup(buf);
  }
}

/* Cuts and 1-way shares of a column from its released marginal. */
static ms_status make_bins(mst_col *c, const ms__mst_col *s, double n, size_t target) {
  double miss = s->missing > 0 && s->missing * n > 2 * s->sigma ? s->missing : 0;
  c->has_na = miss > 0;
  size_t np = 0;
  if (s->kind == MS__MST_NUM) {
    if (!(c->cut = ms__malloc((target + 1) * sizeof *c->cut))) return MS_ERR_NOMEM;
    double lo = s->qv[0], hi = s->qv[s->nq - 1];
    c->cut[0] = -HUGE_VAL;
    np = 1;
    for (size_t k = 1; k < target; k++) {
      double x = inv_at(s->qp, s->qv, s->nq, (double)k / (double)target);
      if (s->step > 0) x = (floor(x / s->step + 1e-9) + 0.5) * s->step;
      if (x <= lo || x >= hi || (np > 1 && x <= c->cut[np - 1])) continue;
      c->cut[np++] = x;
    }
    c->cut[np] = HUGE_VAL;
  } else {
    np = s->kind == MS__MST_CAT ? s->n_cats : 2;
  }
  c->nb = np + (size_t)c->has_na;
  if (!(c->p1 = ms__calloc(c->nb, sizeof *c->p1))) return MS_ERR_NOMEM;
  double tot = 0;
  for (size_t k = 0; k < np; k++) {
    double w;
    if (s->kind == MS__MST_NUM) {
      double a = k ? cdf_at(s->qp, s->qv, s->nq, c->cut[k]) : 0;
      double b = k + 1 < np ? cdf_at(s->qp, s->qv, s->nq, c->cut[k + 1]) : 1;
      w = b > a ? b - a : 0;
    } else {
      w = s->probs[k] > 0 ? s->probs[k] : 0;
    }
    c->p1[k] = w;
    tot += w;
  }
  for (size_t k = 0; k < np; k++) c->p1[k] = tot > 0 ? c->p1[k] / tot * (1 - miss) : (1 - miss) / (double)np;
  if (c->has_na) c->p1[np] = miss;
  return MS_OK;
}

static size_t uf_find(size_t *par, size_t x) {
  while (par[x] != x) x = par[x] = par[par[x]];
  return x;
}

/* Iterative proportional fitting of table M (na x nb) to row sums n pa and
 * column sums n pb; keeps the table's odds ratios. */
static void rake(double *M, const double *pa, const double *pb, size_t na, size_t nb, double n) {
  for (int it = 0; it < MST_IPF_ROUNDS; it++) {
    for (size_t i = 0; i < na; i++) {
      double s = 0;
      for (size_t j = 0; j < nb; j++) s += M[i * nb + j];
      double f = s > 0 ? n * pa[i] / s : 0;
      for (size_t j = 0; j < nb; j++) M[i * nb + j] *= f;
    }
    for (size_t j = 0; j < nb; j++) {
      double s = 0;
      for (size_t i = 0; i < na; i++) s += M[i * nb + j];
      double f = s > 0 ? n * pb[j] / s : 0;
      for (size_t i = 0; i < na; i++) M[i * nb + j] *= f;
    }
  }
}

/* Shrinks the interaction of noisy table M (na x nb) -- its departure from
 * the independence table of its own margins, so that a released 1-way
 * share that is off does not pass for dependence -- towards 0, empties the
 * cells that cannot be told from 0, floors the rest and rakes it to N pa,
 * N pb (in place; raking keeps the table's odds ratios). Returns lambda. */
static double estimate_edge(double *M, const double *pa, const double *pb, size_t na, size_t nb, double n,
                            double sigma, double *rs, double *cs) {
  for (size_t i = 0; i < na; i++) rs[i] = 0;
  for (size_t j = 0; j < nb; j++) cs[j] = 0;
  for (size_t i = 0; i < na; i++)
    for (size_t j = 0; j < nb; j++) rs[i] += M[i * nb + j], cs[j] += M[i * nb + j];
  /* Noisy margins at or below 0 (a sparse row) fall back to the released
   * shares. */
  double ct = 0;
  for (size_t i = 0; i < na; i++) rs[i] = rs[i] > 0 ? rs[i] : n * pa[i] * 1e-3 + 1e-9;
  for (size_t j = 0; j < nb; j++) ct += cs[j] = cs[j] > 0 ? cs[j] : n * pb[j] * 1e-3 + 1e-9;
  double ss = 0;
  for (size_t i = 0; i < na; i++)
    for (size_t j = 0; j < nb; j++) {
      double v = M[i * nb + j] - rs[i] * cs[j] / ct;
      M[i * nb + j] = v;
      ss += v * v;
    }
  double dof = (double)(na - 1) * (double)(nb - 1);
  /* Without dependence the residual has about dof cells' worth of noise
   * and of sampling variance (a count of m rows varies by m). */
  double lambda = ss > 0 ? 1 - dof * (sigma * sigma + n / ((double)na * (double)nb)) / ss : 0;
  if (lambda < 0) lambda = 0;
  for (size_t i = 0; i < na; i++)
    for (size_t j = 0; j < nb; j++) {
      double ind = rs[i] * cs[j] / ct;
      double v = ind + lambda * M[i * nb + j];
      double floor_v = 1e-6 * ind + 1e-12;
      /* A cell below independence and within two sigma of 0 cannot be
       * told from an empty one: emptied (the table is raked back to its
       * shares below). */
      if (v < 2 * sigma && v < ind) v = 0;
      M[i * nb + j] = v > floor_v ? v : floor_v;
    }
  rake(M, pa, pb, na, nb, n);
  return lambda;
}

/* Without noise: the exact table, cells of fewer than k rows emptied (as
 * every released figure of a fit without --epsilon); raked back to the
 * shares only when a cell was emptied. Returns 1 (all of the interaction
 * kept). */
static double exact_edge(double *M, const double *pa, const double *pb, size_t na, size_t nb, double k) {
  double n = 0;
  int emptied = 0;
  for (size_t x = 0; x < na * nb; x++) {
    if (M[x] > 0 && M[x] < k) M[x] = 0, emptied = 1;
    n += M[x];
  }
  if (emptied) {
    for (size_t x = 0; x < na * nb; x++) M[x] = M[x] > 0 ? M[x] : 1e-9;
    rake(M, pa, pb, na, nb, n);
  }
  return 1;
}

void ms__mst_edge_noise(double *tab, size_t cells, uint64_t seed, const char *a, const char *b, double sigma) {
  ms_rng_key k = key2(seed, a, b, "mst-edge");
  for (size_t x = 0; x < cells; x++) tab[x] += sigma * ms_rng_normal(k, x, 0);
}

void ms__mst_free(ms__mst *t) {
  if (!t) return;
  for (size_t i = 0; i < t->d; i++) {
    free(t->c[i].name);
    free(t->c[i].bin_name);
    free(t->c[i].cut);
    free(t->c[i].p1);
    free(t->c[i].cond);
  }
  for (size_t i = 0; i < t->n_cliques; i++) free(t->q[i].tab), free(t->q[i].truth), free(t->q[i].raw);
  free(t->rounds);
  free(t->wc);
  free(t->wc_corr);
  free(t->wc_chol);
  free(t->c);
  free(t->q);
  free(t->order);
  free(t);
}

double ms__mst_rho(const ms__mst *t) { return t ? t->rho_select + t->rho_edges : 0; }

/* Cells of the table over columns v[0..k). */
static size_t cells_of(const ms__mst *t, const size_t *v, size_t k) {
  size_t n = 1;
  for (size_t i = 0; i < k; i++) n *= t->c[v[i]].nb;
  return n;
}

/* The clique's counts summed onto columns w[0..m) (each one of the
 * clique's), row-major, into out. */
static void clique_marginal(const ms__mst *t, const mst_clique *q, const size_t *w, size_t m, double *out) {
  size_t pos[3] = {0, 0, 0}, nb[3], stride[3] = {0, 0, 0};
  for (size_t i = 0; i < q->k; i++) nb[i] = t->c[q->v[i]].nb;
  /* stride of each clique column in out (0: summed over) */
  for (size_t j = 0, s = 1; j < m; j++) {
    size_t jj = m - 1 - j;
    for (size_t i = 0; i < q->k; i++)
      if (q->v[i] == w[jj]) stride[i] = s;
    s *= t->c[w[jj]].nb;
  }
  memset(out, 0, cells_of(t, w, m) * sizeof *out);
  size_t n = cells_of(t, q->v, q->k);
  for (size_t x = 0; x < n; x++) {
    size_t o = 0;
    for (size_t i = 0; i < q->k; i++) o += pos[i] * stride[i];
    out[o] += q->tab[x];
    for (size_t i = q->k; i-- > 0;) { /* next cell, row-major */
      if (++pos[i] < nb[i]) break;
      pos[i] = 0;
    }
  }
}

/* Counts of the rows over columns v[0..k-1) (flattened) x v[k-1]. */
static void count_table(double *C, const int *bins, size_t n_rows, const ms__mst *t, const size_t *v, size_t k) {
  memset(C, 0, cells_of(t, v, k) * sizeof *C);
  for (size_t r = 0; r < n_rows; r++) {
    size_t x = 0;
    int ok = 1;
    for (size_t i = 0; i < k && ok; i++) {
      int b = bins[v[i] * n_rows + r];
      ok = b >= 0;
      x = x * t->c[v[i]].nb + (size_t)(ok ? b : 0);
    }
    if (ok) C[x] += 1;
  }
}

/* L1 distance between counts C ((na x nb) cells) and n pa pb^T: how badly
 * the model (pa: its shares of the first columns, pb: the last column's)
 * explains them; one row moves it by at most 1. */
static double l1_score(const double *C, const double *pa, const double *pb, size_t na, size_t nb, double n) {
  double l1 = 0;
  for (size_t x = 0; x < na; x++)
    for (size_t y = 0; y < nb; y++) l1 += fabs(C[x * nb + y] - n * pa[x] * pb[y]);
  return l1;
}

/* What AIM subtracts from the score of a table of `cells` cells: the
 * expected L1 error of its noise, sqrt(2 / pi) sigma per cell (a marginal
 * is worth measuring only when the model misses it by more than the noise
 * would); without noise the expected L1 sampling error, about
 * sqrt(2 n cells / pi) (a 3-way table of a few rows per cell describes its
 * sample, not the population). MST: 0. */
static double penalty(const ms__mst *t, size_t cells) {
  if (!t->aim) return 0;
  return t->sigma_edge > 0 ? sqrt(2 / M_PI) * t->sigma_edge * (double)cells : sqrt(2 * t->n * (double)cells / M_PI);
}

/* A candidate marginal: columns v[0..k) with the last in another component
 * than the others; its score, the L1 less the penalty at the current noise. */
#define SCORE(cd) ((cd)->l1 - penalty(t, (cd)->cells))
typedef struct {
  size_t k, v[3];
  double l1;     /* L1 between its true counts and the model's */
  size_t cells;  /* of its table */
  size_t from;   /* a triple: the clique holding its pair; SIZE_MAX: a pair */
} mst_cand;

typedef struct {
  mst_cand *a;
  size_t n, cap;
} cand_list;

static int cand_push(cand_list *L, size_t k, const size_t *v, double l1, size_t cells, size_t from) {
  if (L->n == L->cap) {
    size_t cap = L->cap ? 2 * L->cap : 256;
    mst_cand *a = ms__realloc(L->a, cap * sizeof *a);
    if (!a) return -1;
    L->a = a;
    L->cap = cap;
  }
  mst_cand *c = &L->a[L->n++];
  c->k = k;
  memcpy(c->v, v, k * sizeof *v);
  c->l1 = l1;
  c->cells = cells;
  c->from = from;
  return 0;
}

/* The model's shares of the bin pairs of columns w[0], w[1], both in
 * clique q (row-major; uniform when the table is empty). */
static void pair_shares(const ms__mst *t, const mst_clique *q, const size_t *w, double *out) {
  size_t n = cells_of(t, w, 2);
  clique_marginal(t, q, w, 2, out);
  double s = 0;
  for (size_t i = 0; i < n; i++) s += out[i];
  for (size_t i = 0; i < n; i++) out[i] = s > 0 ? out[i] / s : 1.0 / (double)n;
}

/* The model's shares of a candidate's first columns v[0..k-1): the
 * released shares of v[0] (a pair), or the (x, y) table of clique qab (a
 * triple). */
static void head_shares(const ms__mst *t, size_t k, const size_t *v, size_t qab, double *out) {
  if (k == 3) pair_shares(t, &t->q[qab], v, out);
  else memcpy(out, t->c[v[0]].p1, t->c[v[0]].nb * sizeof *out);
}

/* L1 score of triple v against the model's (x, y) shares pab times z's
 * shares (tab: scratch for the true counts). */
static double triple_l1(const ms__mst *t, const size_t *v, const double *pab, const int *bins, size_t n_rows,
                        double *tab) {
  const mst_col *cz = &t->c[v[2]];
  count_table(tab, bins, n_rows, t, v, 3);
  return l1_score(tab, pab, cz->p1, t->c[v[0]].nb * t->c[v[1]].nb, cz->nb, t->n);
}

/* AIM: triples (x, y, z) for the model's new pair (x, y) of clique qi and
 * every column z outside their component whose bins keep each pair of the
 * three within MS_SPEC_MAX_RULES combinations (a column's rules in the
 * spec): scored by how badly the model (x, y)'s table times z's shares
 * explains their true counts, less the noise's expected L1 error. */
static int add_triples(ms__mst *t, cand_list *L, size_t qi, size_t x, size_t y, const int *bins,
                       size_t n_rows, size_t *par, double *pab, double *tab) {
  size_t w[2] = {x, y};
  size_t nab = t->c[x].nb * t->c[y].nb;
  if (nab > MS_SPEC_MAX_RULES) return 0;
  pair_shares(t, &t->q[qi], w, pab);
  for (size_t z = 0; z < t->d; z++) {
    size_t nz = t->c[z].nb;
    if (uf_find(par, z) == uf_find(par, x) || t->c[x].nb * nz > MS_SPEC_MAX_RULES || t->c[y].nb * nz > MS_SPEC_MAX_RULES)
      continue;
    size_t v[3] = {x, y, z};
    if (cand_push(L, 3, v, triple_l1(t, v, pab, bins, n_rows, tab), nab * nz, qi)) return -1;
  }
  return 0;
}

/* The conditional tables of the sampling order: breadth first over the
 * cliques from one holding the root, each clique's columns not yet placed
 * drawn given those placed (its separator) and the ones before them. A
 * model of several components (AIM under noise, when the budget ran out
 * before every column was joined) takes the first column not yet placed
 * as the root of the next one. */
static ms_status orient(ms__mst *t, double *tmp) {
  size_t d = t->d, nq = t->n_cliques;
  unsigned char *placed = ms__calloc(d, 1), *seen = ms__calloc(nq ? nq : 1, 1);
  size_t *queue = ms__malloc((nq ? nq : 1) * sizeof *queue);
  ms_status st = MS_OK;
  if (!placed || !seen || !queue) {
    st = MS_ERR_NOMEM;
    goto out;
  }
  size_t head = 0, tail = 0, n_order = 0;
  for (size_t s0 = 0; s0 <= d && !st; s0++) {
    size_t u0 = s0 ? s0 - 1 : t->root;
    if (placed[u0]) continue;
    placed[u0] = 1;
    t->order[n_order++] = u0;
    for (size_t i = 0, found = 0; i < nq && !found; i++)
      for (size_t j = 0; j < t->q[i].k; j++)
        if (t->q[i].v[j] == u0 && !found) queue[tail++] = i, seen[i] = 1, found = 1;
    while (head < tail && !st) {
      const mst_clique *q = &t->q[queue[head++]];
      size_t w[3], m = 0;
      for (size_t j = 0; j < q->k; j++)
        if (placed[q->v[j]]) w[m++] = q->v[j];
      for (size_t j = 0; j < q->k && !st; j++) {
        size_t u = q->v[j];
        if (placed[u]) continue;
        mst_col *c = &t->c[u];
        c->n_par = m;
        memcpy(c->par, w, m * sizeof *w);
        w[m] = u;
        size_t npc = cells_of(t, w, m);
        clique_marginal(t, q, w, m + 1, tmp);
        if (!(c->cond = ms__malloc(npc * c->nb * sizeof *c->cond))) {
          st = MS_ERR_NOMEM;
          break;
        }
        for (size_t x = 0; x < npc; x++) {
          double s = 0;
          for (size_t y = 0; y < c->nb; y++) s += tmp[x * c->nb + y];
          for (size_t y = 0; y < c->nb; y++) c->cond[x * c->nb + y] = s > 0 ? tmp[x * c->nb + y] / s : c->p1[y];
        }
        placed[u] = 1;
        t->order[n_order++] = u;
        m++;
      }
      /* the cliques glued to this one, either way */
      size_t qi = (size_t)(q - t->q);
      for (size_t i = 0; i < nq; i++)
        if (!seen[i] && (t->q[i].link[0] == qi || t->q[i].link[1] == qi || q->link[0] == i || q->link[1] == i))
          queue[tail++] = i, seen[i] = 1;
    }
  }
out:
  free(placed);
  free(seen);
  free(queue);
  return st;
}

/* The clique of the model holding both x and y (the last glued). */
static size_t clique_with(const ms__mst *t, size_t x, size_t y) {
  for (size_t i = t->n_cliques; i-- > 0;) {
    int hx = 0, hy = 0;
    for (size_t j = 0; j < t->q[i].k; j++) hx |= t->q[i].v[j] == x, hy |= t->q[i].v[j] == y;
    if (hx && hy) return i;
  }
  return SIZE_MAX;
}

/* Adds clique q (its columns set; the next of t->q) to the model: glued
 * to the clique holding its pair (qab, a triple) or the latest holding its
 * first column (a pair), and to the latest holding its last column, z;
 * the two components it joins become one. */
static void glue(ms__mst *t, mst_clique *q, size_t qab, size_t *par) {
  size_t z = q->v[q->k - 1];
  q->link[0] = q->k == 3 ? qab : SIZE_MAX;
  q->link[1] = SIZE_MAX;
  for (size_t i = t->n_cliques; i-- > 0;)
    for (size_t j = 0; j < t->q[i].k; j++) {
      size_t x = t->q[i].v[j];
      if (q->k == 2 && x == q->v[0] && q->link[0] == SIZE_MAX) q->link[0] = i;
      if (x == z && q->link[1] == SIZE_MAX) q->link[1] = i;
    }
  t->n_cliques++;
  par[uf_find(par, q->v[0])] = uf_find(par, z);
}

/* AIM under noise: the cliques from index `from` on estimated again from
 * their pooled measurements (in creation order: a triple is raked to the
 * table of the earlier clique holding its pair). */
static void estimate_from(ms__mst *t, size_t from, double *pab, double *rs, double *cs) {
  for (size_t i = from; i < t->n_cliques; i++) {
    mst_clique *q = &t->q[i];
    size_t z = q->v[q->k - 1], nz = t->c[z].nb, na = cells_of(t, q->v, q->k - 1);
    head_shares(t, q->k, q->v, q->link[0], pab);
    memcpy(q->tab, q->raw, na * nz * sizeof *q->tab);
    q->lambda = estimate_edge(q->tab, pab, t->c[z].p1, na, nz, t->n, 1 / sqrt(q->prec), rs, cs);
  }
}

/* The true counts of clique q plus N(0, sigma^2) a cell, into out; keyed
 * by the clique's columns and the round. */
static void measure(const ms__mst *t, const mst_clique *q, size_t round, uint64_t seed, double sigma, double *out) {
  char a[300], what[40];
  size_t nc = cells_of(t, q->v, q->k);
  if (q->k == 3) snprintf(a, sizeof a, "%s/%s", t->c[q->v[0]].name, t->c[q->v[1]].name);
  else snprintf(a, sizeof a, "%s", t->c[q->v[0]].name);
  snprintf(what, sizeof what, "aim-round-%zu", round);
  ms_rng_key k = key2(seed, a, t->c[q->v[q->k - 1]].name, what);
  for (size_t x = 0; x < nc; x++) out[x] = q->truth[x] + sigma * ms_rng_normal(k, x, 0);
}

/* The exponential mechanism's draw (fit_internal.h): the first candidate
 * whose cumulative weight passes u01 times the total; when rounding leaves
 * that above them all, the last eligible. */
size_t ms__exp_mech(const double *s, size_t n, double eps, double u01) {
  double smax = -HUGE_VAL, tot = 0, acc = 0;
  for (size_t i = 0; i < n; i++)
    if (!isnan(s[i]) && s[i] > smax) smax = s[i];
  for (size_t i = 0; i < n; i++)
    if (!isnan(s[i])) tot += exp(eps / 2 * (s[i] - smax));
  double u = u01 * tot;
  size_t pick = n;
  for (size_t i = 0; i < n; i++) {
    if (isnan(s[i])) continue;
    pick = i;
    if ((acc += exp(eps / 2 * (s[i] - smax))) > u) break;
  }
  return pick;
}

/* AIM's rounds under noise (McKenna et al. 2022, Algorithm 2, in the frame
 * above). The budget of the rounds (rho_select + rho_edges) is first cut
 * for AIM_ROUNDS_PER_JOIN (d - 1) rounds, each spending rho_select / T on
 * the selection (exponential mechanism, epsilon_r = sqrt(8 rho_select /
 * T)) and rho_edges / T on the measurement (sigma = sqrt(T / (2
 * rho_edges))). A round picks a marginal that joins two components (a new
 * clique) or a clique of the model to measure again (its measurements are
 * pooled by inverse variance), by score L1(true - model) - sqrt(2 / pi)
 * sigma cells. Once the model joins every column, when a measurement
 * moves the model's estimate of its marginal by less than the noise's
 * expected L1 error, the marginal was explained already and the noise is
 * halved (sigma / 2, epsilon_r x 2: a round then costs four times as much,
 * in the same 1:9 split). The round
 * that would leave less than two rounds' worth spends all that is left.
 * The rounds' costs add up to rho_select and rho_edges exactly. */
static ms_status aim_rounds(ms__mst *t, cand_list *L, const int *bins, size_t n_rows, size_t *par, uint64_t seed,
                            double *tab, double *w, double *pab, double *rs, double *cs) {
  const size_t d = t->d, ne = d - 1;
  double left_s = t->rho_select, left_m = t->rho_edges, T = AIM_ROUNDS_PER_JOIN * (double)ne;
  double sigma = sqrt(T / (2 * left_m)), eps = sqrt(8 * left_s / T);
  size_t cap = 0;
  ms_status st = MS_OK;
  ms_rng_key ksel = key2(seed, "(aim)", NULL, "aim-select");
#define AIM_JOINS(cd) (uf_find(par, (cd)->v[0]) != uf_find(par, (cd)->v[(cd)->k - 1]))
  for (size_t r = 0; !st; r++) {
    int last = 0;
    if (left_s + left_m < 2 * (eps * eps / 8 + 1 / (2 * sigma * sigma))) {
      sigma = sqrt(1 / (2 * left_m)), eps = sqrt(8 * left_s), last = 1;
      left_s = left_m = 0;
    } else {
      left_s -= eps * eps / 8, left_m -= 1 / (2 * sigma * sigma);
    }
    t->sigma_edge = sigma; /* the penalty's */
    /* the candidates: the joins, then the model's cliques again */
    double *sc = ms__malloc((L->n + t->n_cliques + 1) * sizeof *sc);
    if (!sc) {
      st = MS_ERR_NOMEM;
      break;
    }
    for (size_t k = 0; k < L->n; k++) sc[k] = AIM_JOINS(&L->a[k]) ? SCORE(&L->a[k]) : NAN;
    for (size_t i = 0; i < t->n_cliques; i++) {
      const mst_clique *q = &t->q[i];
      size_t nc = cells_of(t, q->v, q->k);
      double l1 = 0;
      for (size_t x = 0; x < nc; x++) l1 += fabs(q->truth[x] - q->tab[x]);
      sc[L->n + i] = l1 - penalty(t, nc);
    }
    size_t got = ms__exp_mech(sc, L->n + t->n_cliques, eps, ms_rng_uniform(ksel, r, 0));
    free(sc);
    if (got == L->n + t->n_cliques) break; /* no candidate */
    size_t pick = got < L->n ? got : SIZE_MAX, again = got < L->n ? SIZE_MAX : got - L->n;
    size_t qi, nc;
    if (pick != SIZE_MAX) {
      const mst_cand cd = L->a[pick];
      qi = t->n_cliques;
      mst_clique *q = &t->q[qi];
      size_t z = cd.v[cd.k - 1], nz = t->c[z].nb, na = cells_of(t, cd.v, cd.k - 1);
      size_t qab = cd.k == 3 ? clique_with(t, cd.v[0], cd.v[1]) : SIZE_MAX;
      nc = na * nz;
      /* the model's estimate before: (x, y)'s table or x's shares, times z's */
      head_shares(t, cd.k, cd.v, qab, pab);
      for (size_t a = 0; a < na; a++)
        for (size_t b = 0; b < nz; b++) w[a * nz + b] = t->n * pab[a] * t->c[z].p1[b];
      q->k = cd.k;
      memcpy(q->v, cd.v, cd.k * sizeof *cd.v);
      if (!(q->truth = ms__malloc(nc * sizeof *q->truth)) || !(q->raw = ms__malloc(nc * sizeof *q->raw)) ||
          !(q->tab = ms__malloc(nc * sizeof *q->tab))) {
        free(q->truth), free(q->raw), free(q->tab);
        q->truth = q->raw = q->tab = NULL;
        st = MS_ERR_NOMEM;
        break;
      }
      count_table(q->truth, bins, n_rows, t, q->v, q->k);
      measure(t, q, r, seed, sigma, q->raw);
      q->prec = 1 / (sigma * sigma);
      glue(t, q, qab, par);
    } else {
      qi = again;
      mst_clique *q = &t->q[qi];
      nc = cells_of(t, q->v, q->k);
      measure(t, q, r, seed, sigma, tab);
      double p = 1 / (sigma * sigma);
      for (size_t x = 0; x < nc; x++) q->raw[x] = (q->raw[x] * q->prec + tab[x] * p) / (q->prec + p);
      q->prec += p;
      memcpy(w, q->tab, nc * sizeof *w);
    }
    estimate_from(t, qi, pab, rs, cs);
    if (t->n_rounds == cap) {
      size_t nc2 = cap ? 2 * cap : 64;
      aim_round *a = ms__realloc(t->rounds, nc2 * sizeof *a);
      if (!a) {
        st = MS_ERR_NOMEM;
        break;
      }
      t->rounds = a, cap = nc2;
    }
    t->rounds[t->n_rounds++] = (aim_round){qi, sigma, eps, pick == SIZE_MAX};
    /* how far the measurement moved the model's estimate of its marginal */
    double moved = 0;
    for (size_t x = 0; x < nc; x++) moved += fabs(t->q[qi].tab[x] - w[x]);
    int explained = moved <= sqrt(2 / M_PI) * sigma * (double)nc;
    const mst_clique *q = &t->q[qi];
    if (pick != SIZE_MAX) {
      /* the model's new pairs: candidates for 3-way marginals */
      if (d <= AIM_MAX_TRIPLE_COLS)
        for (size_t j = 0; j + 1 < q->k && !st; j++)
          if (add_triples(t, L, qi, q->v[j], q->v[q->k - 1], bins, n_rows, par, w, tab)) st = MS_ERR_NOMEM;
    } else {
      /* the triples on this clique's pairs, scored against its new table */
      for (size_t k = 0; k < L->n; k++) {
        mst_cand *c = &L->a[k];
        if (c->from != qi || !AIM_JOINS(c)) continue;
        pair_shares(t, q, c->v, pab);
        c->l1 = triple_l1(t, c->v, pab, bins, n_rows, tab);
      }
    }
    if (last) break;
    /* the noise is halved only once every column is joined: before, a
     * join that adds nothing at this noise would spend the budget on
     * costlier rounds and leave columns (the outcome, say) unjoined; every
     * clique joins two components, so d - 1 of them join every column */
    if (explained && t->n_cliques == ne) sigma /= 2, eps *= 2;
  }
#undef AIM_JOINS
  return st;
}

/* The bounds [*a, *e] of bin b of numeric column c and the CDF of its
 * quantile table at them (the bin's share of the table is ub - ua). */
static void bin_span(const mst_col *c, size_t b, double *a, double *e, double *ua, double *ub) {
  size_t np = c->nb - (size_t)c->has_na;
  *a = b ? c->cut[b] : c->qv[0], *e = b + 1 < np ? c->cut[b + 1] : c->qv[c->nq - 1];
  *a = fmax(*a, c->qv[0]), *e = fmin(*e, c->qv[c->nq - 1]);
  if (*e < *a) *e = *a;
  *ua = cdf_at(c->qp, c->qv, c->nq, *a), *ub = cdf_at(c->qp, c->qv, c->nq, *e);
}

/* Without noise: the bins pass the columns' relations only bin by bin, and
 * a value drawn independently within its bin loses what lies within them
 * (the radius and the perimeter of the same nuclei, in the same bins, then
 * vary independently inside them). Each numeric column's within-bin
 * position u = (F(x) - F(bin's lower edge)) / (bin's share of F), F its
 * quantile table, gives the normal score Phi^-1(u) (u kept within
 * [1 / 2n, 1 - 1 / 2n]); the correlation of these scores over the rows
 * where both are present (0 over fewer than k rows), made a valid
 * correlation matrix, is the Gaussian copula of the within-bin draws: a
 * spec correlation group (docs/fit.md). Dates (drawn through offset_days)
 * are left out. An aggregate over every row, as each released figure of a
 * fit without noise. */
static ms_status within_bin_copula(ms__mst *t, const ms__mst_col *cols, size_t n_rows) {
  size_t nw = 0;
  for (size_t i = 0; i < t->d; i++) nw += t->c[i].kind == MS__MST_NUM && !t->c[i].date;
  if (nw < 2 || n_rows < 2) return MS_OK;
  double *z = ms__malloc(nw * n_rows * sizeof *z), *R = ms__calloc(nw * nw, sizeof *R);
  size_t *wc = ms__malloc(nw * sizeof *wc);
  if (!z || !R || !wc) {
    free(z), free(R), free(wc);
    return MS_ERR_NOMEM;
  }
  const double lo_u = 0.5 / (double)n_rows;
  for (size_t i = 0, j = 0; i < t->d; i++) {
    const mst_col *c = &t->c[i];
    if (c->kind != MS__MST_NUM || c->date) continue;
    wc[j] = i;
    size_t np = c->nb - (size_t)c->has_na;
    for (size_t r = 0; r < n_rows; r++) {
      int b = row_bin(c, &cols[i], r);
      double *zr = &z[j * n_rows + r];
      *zr = NAN;
      if (b < 0 || (size_t)b >= np) continue;
      double a, e, ua, ub;
      bin_span(c, (size_t)b, &a, &e, &ua, &ub);
      double u = ub - ua > 1e-12 ? (cdf_at(c->qp, c->qv, c->nq, cols[i].num[r]) - ua) / (ub - ua) : 0.5;
      u = fmin(fmax(u, lo_u), 1 - lo_u);
      *zr = gsl_cdf_ugaussian_Pinv(u);
    }
    j++;
  }
  ms__fit_pairwise_corr(z, nw, n_rows, t->k_min, R);
  free(z);
  ms_status st = ms__fit_repair_correlation(R, nw);
  double *L = st ? NULL : ms__malloc(nw * nw * sizeof *L);
  if (!st && !L) st = MS_ERR_NOMEM;
  /* its Cholesky factor, lower triangle (the matrix passed Cholesky at its
   * 4 decimals) */
  if (!st) {
    memcpy(L, R, nw * nw * sizeof *L);
    gsl_matrix_view lv = gsl_matrix_view_array(L, nw, nw);
    if (gsl_linalg_cholesky_decomp1(&lv.matrix)) st = MS_ERR_MATH;
  }
  if (st) {
    free(R), free(L), free(wc);
    return st;
  }
  t->n_wc = nw, t->wc = wc, t->wc_corr = R, t->wc_chol = L;
  return MS_OK;
}

ms_status ms__mst_fit(ms__mst **out, const ms__mst_col *cols, size_t n_cols, size_t n_rows,
                      double n_noisy, double rho_select, double rho_edges, uint64_t seed,
                      size_t k_min, size_t root, const double *root_w, const char *const *taken,
                      size_t n_taken, int aim) {
  *out = NULL;
  if (n_cols < 2) return MS_OK;
  const size_t d = n_cols, ne = d - 1;
  ms_status st = MS_OK;
  ms__mst *t = ms__calloc(1, sizeof *t);
  int *bins = NULL;
  double *tab = NULL, *rs = NULL, *cs = NULL, *pab = NULL, *w = NULL;
  size_t *par = NULL;
  cand_list L = {0};
  if (!t || !(t->c = ms__calloc(d, sizeof *t->c)) || !(t->q = ms__calloc(ne, sizeof *t->q)) ||
      !(t->order = ms__calloc(d, sizeof *t->order))) {
    st = MS_ERR_NOMEM;
    goto out;
  }
  t->d = d;
  t->aim = aim;
  t->n = n_noisy > 1 ? n_noisy : 1;
  t->rho_select = rho_select;
  t->rho_edges = rho_edges;
  const int exact = !(rho_edges > 0);
  t->k_min = k_min ? (double)k_min : 1;
  t->sigma_edge = exact ? 0 : sqrt((double)ne / (2 * rho_edges));
  t->eps_round = exact ? INFINITY : sqrt(8 * rho_select / (double)ne);
  /* Without noise: bins of about 2 k_min^2 rows... a cell of a 2-way table
   * expects n / B^2 rows; B = sqrt(n / (2 k_min)) keeps that at 2 k_min. */
  double bt = exact ? floor(sqrt(t->n / (2 * t->k_min)))
                    : floor(sqrt(t->n / (2 * t->sigma_edge)) + 0.5);
  size_t max_bins = aim ? AIM_MAX_BINS - 1 : MST_MAX_BINS;
  size_t target = bt < 2 ? 2 : bt > max_bins ? max_bins : (size_t)bt;
  for (size_t i = 0; i < d && !st; i++) {
    mst_col *c = &t->c[i];
    const ms__mst_col *s = &cols[i];
    c->field = s->field;
    c->kind = s->kind;
    c->date = s->date;
    c->qp = s->qp;
    c->qv = s->qv;
    c->nq = s->nq;
    c->labels = s->labels;
    c->step = s->step;
    if (!(c->name = ms__strdup(s->name)) ||
        !(c->bin_name = bin_field_name(s->name, i, taken, n_taken, t->c, i)))
      st = MS_ERR_NOMEM;
    else
      st = make_bins(c, s, t->n, target);
  }
  if (st) goto out;
  /* Each row's bin of each column, column-major. */
  if (n_rows > SIZE_MAX / d / sizeof *bins) {
    st = MS_ERR_NOMEM;
    goto out;
  }
  if (!(bins = ms__malloc((n_rows ? n_rows * d : 1) * sizeof *bins))) {
    st = MS_ERR_NOMEM;
    goto out;
  }
  size_t maxb = 0;
  for (size_t i = 0; i < d; i++) {
    for (size_t r = 0; r < n_rows; r++) bins[i * n_rows + r] = row_bin(&t->c[i], &cols[i], r);
    if (t->c[i].nb > maxb) maxb = t->c[i].nb;
  }
  /* Without noise the 1-way shares are the bins' own counts, so the model
   * reproduces every measured table. */
  for (size_t i = 0; i < d && exact; i++) {
    mst_col *c = &t->c[i];
    double tot = 0;
    for (size_t k = 0; k < c->nb; k++) c->p1[k] = 0;
    for (size_t r = 0; r < n_rows; r++)
      if (bins[i * n_rows + r] >= 0) c->p1[bins[i * n_rows + r]] += 1, tot += 1;
    for (size_t k = 0; k < c->nb; k++) c->p1[k] = tot > 0 ? c->p1[k] / tot : 1.0 / (double)c->nb;
  }
  /* a clique holds at most MS_SPEC_MAX_RULES x maxb cells (AIM) or maxb^2 */
  size_t cells = maxb * (aim ? MS_SPEC_MAX_RULES : maxb);
  if (!(tab = ms__malloc(cells * sizeof *tab)) || !(w = ms__malloc(cells * sizeof *w)) ||
      !(par = ms__malloc(d * sizeof *par)) || !(rs = ms__malloc(cells * sizeof *rs)) ||
      !(cs = ms__malloc(maxb * sizeof *cs)) || !(pab = ms__malloc(cells * sizeof *pab))) {
    st = MS_ERR_NOMEM;
    goto out;
  }
  /* Pair scores: how badly independence of the released 1-way shares
   * explains each pair (sensitivity 1). */
  for (size_t a = 0; a < d; a++)
    for (size_t b = a + 1; b < d; b++) {
      size_t v[2] = {a, b};
      const mst_col *ca = &t->c[a], *cb = &t->c[b];
      count_table(tab, bins, n_rows, t, v, 2);
      if (cand_push(&L, 2, v, l1_score(tab, ca->p1, cb->p1, ca->nb, cb->nb, t->n), ca->nb * cb->nb, SIZE_MAX)) {
        st = MS_ERR_NOMEM;
        goto out;
      }
    }
  for (size_t i = 0; i < d; i++) par[i] = i;
  ms_rng_key ksel = key2(seed, "(mst)", NULL, "mst-select");
  if (aim && !exact) {
    st = aim_rounds(t, &L, bins, n_rows, par, seed, tab, w, pab, rs, cs);
    if (st) goto out;
  }
  for (size_t e = 0; e < ne && !(aim && !exact); e++) {
    /* Exponential mechanism over the candidates that join two components:
     * P(candidate) proportional to exp(eps_round / 2 * score); without
     * noise the largest score (Kruskal). */
#define JOINS(cd) (uf_find(par, (cd)->v[0]) != uf_find(par, (cd)->v[(cd)->k - 1]))
    double *sc = ms__malloc((L.n ? L.n : 1) * sizeof *sc);
    if (!sc) {
      st = MS_ERR_NOMEM;
      goto out;
    }
    for (size_t k = 0; k < L.n; k++) sc[k] = JOINS(&L.a[k]) ? SCORE(&L.a[k]) : NAN;
    size_t pick = L.n;
    if (exact) { /* the first largest */
      for (size_t k = 0; k < L.n; k++)
        if (!isnan(sc[k]) && (pick == L.n || sc[k] > sc[pick])) pick = k;
    } else {
      pick = ms__exp_mech(sc, L.n, t->eps_round, ms_rng_uniform(ksel, e, 0));
    }
    free(sc);
    const mst_cand cd = L.a[pick];
    mst_clique *q = &t->q[t->n_cliques];
    size_t z = cd.v[cd.k - 1], nz = t->c[z].nb, na = cells_of(t, cd.v, cd.k - 1);
    /* the model's shares of the first columns: the released 1-way shares,
     * or the table of the clique holding the pair */
    size_t qab = cd.k == 3 ? clique_with(t, cd.v[0], cd.v[1]) : SIZE_MAX;
    head_shares(t, cd.k, cd.v, qab, pab);
    count_table(tab, bins, n_rows, t, cd.v, cd.k);
    if (exact) {
      q->lambda = exact_edge(tab, pab, t->c[z].p1, na, nz, t->k_min);
    } else {
      char ab[300];
      if (cd.k == 3) snprintf(ab, sizeof ab, "%s/%s", t->c[cd.v[0]].name, t->c[cd.v[1]].name);
      ms__mst_edge_noise(tab, na * nz, seed, cd.k == 3 ? ab : t->c[cd.v[0]].name, t->c[z].name, t->sigma_edge);
      q->lambda = estimate_edge(tab, pab, t->c[z].p1, na, nz, t->n, t->sigma_edge, rs, cs);
    }
    if (!(q->tab = ms__malloc(na * nz * sizeof *q->tab))) {
      st = MS_ERR_NOMEM;
      goto out;
    }
    memcpy(q->tab, tab, na * nz * sizeof *tab);
    q->k = cd.k;
    memcpy(q->v, cd.v, cd.k * sizeof *cd.v);
    glue(t, q, qab, par);
    /* the model's new pairs: candidates for 3-way marginals */
    if (aim && d <= AIM_MAX_TRIPLE_COLS)
      for (size_t j = 0; j + 1 < cd.k; j++)
        if (add_triples(t, &L, t->n_cliques - 1, cd.v[j], z, bins, n_rows, par, w, tab)) {
          st = MS_ERR_NOMEM;
          goto out;
        }
  }
#undef JOINS
  if (root >= d) root = 0;
  t->root = root;
  if ((st = orient(t, tab))) goto out;
  /* Rebalancing: the root's shares replaced (its missing share kept); every
   * other column keeps its conditional table given its parents. */
  if (root_w) {
    mst_col *c = &t->c[root];
    size_t np = c->nb - (size_t)c->has_na;
    double miss = c->has_na ? c->p1[np] : 0, ws = 0;
    for (size_t k = 0; k < np; k++) ws += root_w[k];
    for (size_t k = 0; k < np; k++) c->p1[k] = ws > 0 ? (1 - miss) * root_w[k] / ws : (1 - miss) / (double)np;
    t->rebalanced = 1;
  }
  if (exact) st = within_bin_copula(t, cols, n_rows);
out:
  free(bins);
  free(L.a);
  free(tab);
  free(w);
  free(pab);
  free(par);
  free(rs);
  free(cs);
  if (st) {
    ms__mst_free(t);
    return st;
  }
  *out = t;
  return MS_OK;
}

/* Row r of the reference sampler (fit --sample): each column's bin given
 * its parents' in sampling order (bins: d ints of scratch), then the value
 * within its bin as the spec draws it: a number from the released quantile
 * table restricted to the bin, rounded to its spacing; a category or bool
 * its bin; the missing bin missing. */
size_t ms__mst_scratch(const ms__mst *t) { return t && t->n_wc ? 2 * t->d : 1; }

void ms__mst_sample_row(const ms__mst *t, ms_rng_key k, size_t r, ms_frame *fr, int *bins, double *scratch) {
  if (!t) return;
  /* the within-bin positions of the correlated numeric columns: u = Phi(L e)
   * (scratch: e, then u by column) */
  double *e = scratch, *uw = t->n_wc ? scratch + t->d : NULL;
  for (size_t j = 0; j < t->n_wc; j++) {
    e[j] = ms_rng_normal(k, r, 2 * (uint64_t)t->d + j);
    double zz = 0;
    for (size_t l = 0; l <= j; l++) zz += t->wc_chol[j * t->n_wc + l] * e[l];
    uw[t->wc[j]] = gsl_cdf_ugaussian_P(zz);
  }
  for (size_t o = 0; o < t->d; o++) {
    size_t i = t->order[o];
    const mst_col *c = &t->c[i];
    const double *p = c->p1;
    if (c->n_par) {
      size_t x = (size_t)bins[c->par[0]];
      if (c->n_par > 1) x = x * t->c[c->par[1]].nb + (size_t)bins[c->par[1]];
      p = c->cond + x * c->nb;
    }
    double tot = 0, acc = 0, u = ms_rng_uniform(k, r, 2 * (uint64_t)i);
    for (size_t b = 0; b < c->nb; b++) tot += p[b];
    size_t b = c->nb - 1;
    for (size_t q = 0; q < c->nb && tot > 0; q++)
      if (u < (acc += p[q] / tot)) {
        b = q;
        break;
      }
    bins[i] = (int)b;
    ms_frame_col *fc = &fr->cols[c->field];
    size_t np = c->nb - (size_t)c->has_na;
    if (b >= np) {
      if (fc->code) fc->code[r] = -1;
      else fc->num[r] = NAN;
      continue;
    }
    if (c->kind == MS__MST_CAT) {
      fc->code[r] = (int32_t)b;
    } else if (c->kind == MS__MST_BOOL) {
      fc->num[r] = (double)b;
    } else {
      double a, e, ua, ub;
      bin_span(c, b, &a, &e, &ua, &ub);
      double u = uw && !c->date ? uw[i] : ms_rng_uniform(k, r, 2 * (uint64_t)i + 1);
      double v = inv_at(c->qp, c->qv, c->nq, ua + u * (ub - ua));
      if (c->step > 0) v = fmin(fmax(round(v / c->step) * c->step, ceil(a / c->step - 1e-9) * c->step), e);
      fc->num[r] = fmin(fmax(v, a), e);
    }
  }
}

static void bin_label(char *buf, size_t cap, const mst_col *c, size_t k) {
  if (c->has_na && k + 1 == c->nb) snprintf(buf, cap, "na");
  else snprintf(buf, cap, "%zu", k);
}

static cJSON *shares_json(const mst_col *c, const double *p) {
  cJSON *v = cJSON_CreateObject();
  double tot = 0;
  for (size_t k = 0; k < c->nb; k++) tot += r6(p[k]);
  for (size_t k = 0; k < c->nb; k++) {
    char lab[24];
    bin_label(lab, sizeof lab, c, k);
    /* Rounded shares that all round to 0 would leave no label to draw. */
    cJSON_AddNumberToObject(v, lab, tot > 0 ? r6(p[k]) : 1);
  }
  return v;
}

void ms__mst_emit_bins(const ms__mst *t, cJSON *fields) {
  if (!t) return;
  for (size_t i = 0; i < t->d; i++) {
    const mst_col *c = &t->c[i];
    cJSON *o = ms__json_push(fields, cJSON_CreateObject());
    cJSON_AddStringToObject(o, "name", c->bin_name);
    cJSON_AddStringToObject(o, "kind", "categorical");
    cJSON_AddBoolToObject(o, "hidden", 1);
    char desc[200];
    snprintf(desc, sizeof desc, "bin of %s in the MST model (docs/privacy.md, MST)", c->name);
    cJSON_AddStringToObject(o, "description", desc);
    ms__json_put(o, "values", shares_json(c, c->p1));
    if (!c->n_par) continue;
    const mst_col *p0 = &t->c[c->par[0]], *p1 = c->n_par > 1 ? &t->c[c->par[1]] : NULL;
    cJSON *w = cJSON_AddArrayToObject(o, "when");
    size_t n1 = p1 ? p1->nb : 1;
    for (size_t x = 0; x < p0->nb * n1; x++) {
      char la[24], lb[24], e[300];
      bin_label(la, sizeof la, p0, x / n1);
      if (p1) {
        bin_label(lb, sizeof lb, p1, x % n1);
        snprintf(e, sizeof e, "%s == '%s' and %s == '%s'", p0->bin_name, la, p1->bin_name, lb);
      } else {
        snprintf(e, sizeof e, "%s == '%s'", p0->bin_name, la);
      }
      cJSON *r = ms__json_push(w, cJSON_CreateObject());
      cJSON_AddStringToObject(r, "if", e);
      ms__json_put(r, "values", shares_json(c, c->cond + x * c->nb));
    }
  }
}

/* The released quantile table restricted to [a, b] (cuts clipped to the
 * table's range), as a spec distribution. */
static cJSON *bin_dist(const mst_col *c, size_t k) {
  double a, b, ua, ub;
  bin_span(c, k, &a, &b, &ua, &ub);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "type", "quantiles");
  cJSON *pr = cJSON_AddArrayToObject(o, "probs"), *va = cJSON_AddArrayToObject(o, "values");
  ms__json_push(pr, cJSON_CreateNumber(0));
  ms__json_push(va, cJSON_CreateNumber(a));
  double last_p = 0, last_v = a;
  if (ub - ua > 1e-9)
    for (size_t i = 0; i < c->nq; i++) {
      double pp = (c->qp[i] - ua) / (ub - ua), v = c->qv[i];
      if (!(pp > last_p + 1e-6 && pp < 1 - 1e-6) || v < last_v || v > b) continue;
      ms__json_push(pr, cJSON_CreateNumber(pp));
      ms__json_push(va, cJSON_CreateNumber(v));
      last_p = pp;
      last_v = v;
    }
  ms__json_push(pr, cJSON_CreateNumber(1));
  ms__json_push(va, cJSON_CreateNumber(b));
  return o;
}

void ms__mst_emit_field(const ms__mst *t, size_t field, cJSON *o) {
  if (!t) return;
  const mst_col *c = NULL;
  for (size_t i = 0; i < t->d && !c; i++)
    if (t->c[i].field == field) c = &t->c[i];
  if (!c) return;
  size_t np = c->nb - (size_t)c->has_na;
  cJSON_DeleteItemFromObjectCaseSensitive(o, "when");
  cJSON_DeleteItemFromObjectCaseSensitive(o, "missing");
  cJSON *w = cJSON_AddArrayToObject(o, "when");
  for (size_t k = 0; k < np; k++) {
    char e[200];
    snprintf(e, sizeof e, "%s == '%zu'", c->bin_name, k);
    if (c->kind == MS__MST_BOOL && c->labels && !c->labels[k]) continue;
    cJSON *r = ms__json_push(w, cJSON_CreateObject());
    cJSON_AddStringToObject(r, "if", e);
    if (c->kind == MS__MST_NUM) {
      ms__json_put(r, c->date ? "offset_days" : "dist", bin_dist(c, k));
    } else if (c->kind == MS__MST_CAT || c->labels) {
      cJSON *v = cJSON_AddObjectToObject(r, "values");
      cJSON_AddNumberToObject(v, c->labels[k], 1);
    } else {
      cJSON_AddNumberToObject(r, "p", (double)k);
    }
  }
  if (c->has_na) {
    cJSON *mo = cJSON_AddObjectToObject(o, "missing");
    cJSON_AddNumberToObject(mo, "rate", 0);
    cJSON *mw = cJSON_AddArrayToObject(mo, "when");
    cJSON *r = ms__json_push(mw, cJSON_CreateObject());
    char e[200];
    snprintf(e, sizeof e, "%s == 'na'", c->bin_name);
    cJSON_AddStringToObject(r, "if", e);
    cJSON_AddNumberToObject(r, "rate", 1);
  }
}

void ms__mst_emit_correlations(const ms__mst *t, cJSON *tab) {
  if (!t || t->n_wc < 2) return;
  cJSON *cg = cJSON_GetObjectItemCaseSensitive(tab, "correlations");
  if (!cg) cg = cJSON_AddArrayToObject(tab, "correlations");
  cJSON *g = ms__json_push(cg, cJSON_CreateObject());
  cJSON *fl = cJSON_AddArrayToObject(g, "fields");
  for (size_t j = 0; j < t->n_wc; j++) ms__json_push(fl, cJSON_CreateString(t->c[t->wc[j]].name));
  cJSON *mx = cJSON_AddArrayToObject(g, "matrix");
  for (size_t i = 0; i < t->n_wc; i++) {
    cJSON *row = ms__json_push(mx, cJSON_CreateArray());
    for (size_t j = 0; j < t->n_wc; j++) ms__json_push(row, cJSON_CreateNumber(t->wc_corr[i * t->n_wc + j]));
  }
}

void ms__mst_emit_privacy(const ms__mst *t, cJSON *pv) {
  if (!t) return;
  cJSON *o = cJSON_AddObjectToObject(pv, t->aim ? "aim" : "mst");
  cJSON_AddStringToObject(o, "reference", t->aim ? "McKenna, Mullins, Sheldon & Miklau 2022 (AIM), cliques of up to 3 columns"
                                                 : "McKenna, Miklau & Sheldon 2021 (MST)");
  if (!(t->rho_edges > 0)) { /* fitted without noise */
    cJSON_AddStringToObject(o, "selection", t->aim ? "largest scores (no noise)" : "maximum spanning tree of the scores (no noise)");
    cJSON_AddStringToObject(o, t->aim ? "marginals" : "edges", "exact bin counts, cells of fewer than k_min rows emptied");
  } else {
    cJSON_AddNumberToObject(o, "rho_selection", r6(t->rho_select));
    cJSON_AddNumberToObject(o, t->aim ? "rho_marginals" : "rho_edges", r6(t->rho_edges));
    cJSON_AddStringToObject(o, "selection",
                            t->aim ? "exponential mechanism per round, score L1(true marginal - model) - sqrt(2/pi) sigma cells, sensitivity 1"
                                   : "exponential mechanism per tree edge, score L1(true 2-way - independent), sensitivity 1");
    if (t->aim) {
      cJSON_AddStringToObject(o, "marginals",
                              "gaussian bin counts of the chosen marginal each round (sensitivity 1 a round, "
                              "rho 1 / (2 sigma^2)); a marginal measured again is pooled by inverse variance");
      cJSON_AddNumberToObject(o, "rounds_planned", AIM_ROUNDS_PER_JOIN * (double)(t->d - 1));
      cJSON *ra = cJSON_AddArrayToObject(o, "rounds");
      for (size_t i = 0; i < t->n_rounds; i++) {
        const aim_round *rd = &t->rounds[i];
        const mst_clique *q = &t->q[rd->clique];
        cJSON *ro = ms__json_push(ra, cJSON_CreateObject());
        cJSON *set = cJSON_AddArrayToObject(ro, "marginal");
        for (size_t j = 0; j < q->k; j++) ms__json_push(set, cJSON_CreateString(t->c[q->v[j]].name));
        if (rd->again) cJSON_AddBoolToObject(ro, "again", 1);
        /* full precision: the rounds' costs add up to the split above */
        cJSON_AddNumberToObject(ro, "epsilon", rd->eps);
        cJSON_AddNumberToObject(ro, "sigma", rd->sigma);
      }
    } else {
      cJSON_AddNumberToObject(o, "selection_epsilon_per_round", r6(t->eps_round));
      cJSON_AddStringToObject(o, "edges", "gaussian 2-way bin counts, L2 sensitivity sqrt(edges)");
      cJSON_AddNumberToObject(o, "edge_sigma", r6(t->sigma_edge));
    }
  }
  cJSON_AddStringToObject(o, "root", t->c[t->root].name);
  if (t->rebalanced) cJSON_AddStringToObject(o, "rebalanced", t->c[t->root].name);
  cJSON *tr = cJSON_AddArrayToObject(o, t->aim ? "cliques" : "tree");
  for (size_t e = 0; e < t->n_cliques; e++) {
    cJSON *set = ms__json_push(tr, cJSON_CreateArray());
    for (size_t j = 0; j < t->q[e].k; j++) ms__json_push(set, cJSON_CreateString(t->c[t->q[e].v[j]].name));
  }
}

void ms__mst_accounting(const ms__mst *t, FILE *fp) {
  if (!t) return;
  const char *m = t->aim ? "aim" : "mst";
  if (t->rho_edges > 0 && t->aim) {
    double e0 = INFINITY, e1 = 0, s0 = INFINITY, s1 = 0;
    size_t again = 0;
    for (size_t i = 0; i < t->n_rounds; i++) {
      e0 = fmin(e0, t->rounds[i].eps), e1 = fmax(e1, t->rounds[i].eps);
      s0 = fmin(s0, t->rounds[i].sigma), s1 = fmax(s1, t->rounds[i].sigma);
      again += (size_t)t->rounds[i].again;
    }
    fprintf(fp, "  aim selection: rho %g (%zu rounds of the exponential mechanism, epsilon %g to %g)\n",
            r6(t->rho_select), t->n_rounds, r6(e0), r6(e1));
    fprintf(fp, "  aim marginals: rho %g (%zu noisy tables, %zu of them a marginal measured again; sigma %g to %g)\n",
            r6(t->rho_edges), t->n_rounds, again, r6(s0), r6(s1));
  } else if (t->rho_edges > 0) {
    fprintf(fp, "  %s selection: rho %g (%zu rounds of the exponential mechanism, epsilon %g each)\n", m,
            r6(t->rho_select), t->n_cliques, r6(t->eps_round));
    fprintf(fp, "  %s %s:     rho %g (%zu noisy tables, sigma %g)\n", m, t->aim ? "marginals" : "edges", r6(t->rho_edges),
            t->n_cliques, r6(t->sigma_edge));
  } else {
    fprintf(fp, "  %s model:     %zu %s, exact tables (no noise; cells under k = %g rows emptied)\n", m, t->n_cliques,
            t->aim ? "marginals" : "edges", t->k_min);
  }
  if (t->rebalanced)
    fprintf(fp, "  rebalanced:    %s (the model's root; every other column keeps its table)\n", t->c[t->root].name);
  for (size_t e = 0; e < t->n_cliques; e++) {
    const mst_clique *q = &t->q[e];
    fprintf(fp, "    ");
    for (size_t j = 0; j < q->k; j++)
      fprintf(fp, "%s%s", t->c[q->v[j]].name, j + 2 < q->k ? ", " : j + 1 < q->k ? " ~ " : "");
    fprintf(fp, " (");
    for (size_t j = 0; j < q->k; j++) fprintf(fp, "%zu%s", t->c[q->v[j]].nb, j + 1 < q->k ? " x " : "");
    fprintf(fp, " bins, kept %.2f of the interaction)\n", q->lambda);
  }
}

static const char *const method_names[] = {"copula", "mst", "aim", "auto"};

const char *ms_fit_method_name(ms_fit_method m) {
  return (unsigned)m < MS_FIT_METHOD_COUNT ? method_names[m] : "unknown";
}

ms_fit_method ms_fit_method_from_name(const char *name) {
  for (int i = 0; i < MS_FIT_METHOD_COUNT; i++)
    if (name && !strcmp(name, method_names[i])) return (ms_fit_method)i;
  return MS_FIT_METHOD_COUNT;
}
