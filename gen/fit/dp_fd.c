/* A categorical column determined by another under differential privacy
 * (docs/privacy.md, "A label determined by another").
 *
 * Without noise, relations.c keeps a code and its description exactly. A
 * Gaussian copula cannot draw such a pair (its latent correlation orders
 * the labels), so under --epsilon the dependency is chosen with noise,
 * after the columns' labels are released (post-processing decides the
 * candidates):
 *
 *  1. Candidates: each released categorical b, determined by a released
 *     categorical a of at least as many labels within FD_WINDOW columns of
 *     it (a determinant is never determined, a determined column
 *     determines nothing: no chains).
 *  2. One test per b: the exponential mechanism over "a determines b" for
 *     every candidate a (score -w_ab) and "none" (score -tau_b). w_ab counts
 *     the rows off the most common label of b within their label of a (a
 *     missing or unreleased label is a group and a label of its own): one
 *     row moves it by at most 1. tau_b is MS__DPREL_SHARE of b's released
 *     minority (the rows off b's most common label, from the released
 *     shares and row count): a b whose minority is small is determined by
 *     anything up to tau_b. The test is run only when "none" beats an a
 *     whose w is a quarter of b's minority with probability 90 %:
 *     epsilon_r (FD_POWER_OFF - MS__DPREL_SHARE) minority / 2 >= ln(10
 *     (candidates + 1)).
 *  3. The map: for each released label of a, b's label by the exponential
 *     mechanism over b's released labels (score: the rows holding both).
 *     The labels' groups of rows are disjoint, so all of them together
 *     cost one mechanism (parallel composition).
 *
 * epsilon_r = sqrt(8 rho / (2 T)), T the number of b with a candidate;
 * each mechanism run costs epsilon_r^2 / 8 zCDP. Draws keyed by (seed,
 * "fit/dp/(relations)/fd-test", b) and (seed, "fit/dp/(relations)/fd-map/<b>",
 * label). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "fit/fit_model.h"
#include "medsynth/records.h"

/* Determinants are looked for among the columns this close on either
 * side of b (a code and its description sit together in real tables; the
 * counts stay linear in the table's width). */
#define FD_WINDOW 32
/* The test runs only when a column a quarter of whose rows off b's most
 * common label are off its map too (w = FD_POWER_OFF of b's minority) loses
 * to "none" with probability at least 90 % (an unrelated column, w about
 * the whole minority, far more surely). */
#define FD_POWER_OFF 0.25

static int near(size_t a, size_t b) { return (a > b ? a - b : b - a) <= FD_WINDOW; }

static int eligible(const fit_field *f, const int32_t *map) {
  return f->kind == MS_FKIND_CATEGORICAL && !f->suppressed && f->n_cats >= 2 && map && f->fd_from < 0 &&
         f->band_from < 0;
}

/* b's labels: a released categorical, or a bool with both values */
static int labelled(const fit_field *f, const int32_t *map) {
  return f->kind == MS_FKIND_BOOL ? !f->suppressed && f->probs[0] > 0 && f->probs[1] > 0 && f->fd_from < 0 &&
                                        f->band_from < 0
                                  : eligible(f, map);
}
static size_t n_labels(const fit_field *f) { return f->kind == MS_FKIND_BOOL ? 2 : f->n_cats; }

/* A number whose released marginal can set bands: not derived, not drawn
 * after another (its column of the view is a gap) */
static int banding(const fit_field *f) {
  return (f->kind == MS_FKIND_INTEGER || f->kind == MS_FKIND_REAL) && !f->suppressed && f->fam != FAM_CONSTANT &&
         f->diff_a < 0 && f->rel_base < 0 && !f->sum_parts;
}

/* Row r's released label of column c (n: missing or dropped). */
static size_t label(const ms_frame_col *c, const fit_field *f, const int32_t *map, size_t n, size_t r) {
  if (f->kind == MS_FKIND_BOOL) return isnan(c->num[r]) ? n : (size_t)(c->num[r] != 0);
  int32_t x = c->code[r];
  return x < 0 || map[x] < 0 ? n : (size_t)map[x];
}

/* Cells of a band test: BAND_CELLS of equal released mass of the number
 * (fine: a cut costs the test the rows of half a cell); the map labels
 * cells of BAND_GROUP of them (its picks then hold enough rows to beat the
 * noise), and each cut is then placed within a map cell of its switch. */
#define BAND_CELLS 32
#define BAND_GROUP 4
/* Row r's cell (BAND_CELLS: missing); e: the BAND_CELLS - 1 inner bounds,
 * the cuts of bands as relations.c places a number in them. */
static size_t cell(const double *e, double x) { return isnan(x) ? BAND_CELLS : ms__band_of(e, BAND_CELLS, x); }

/* A candidate determinant of b: column a, a label map (FD) or bands of a
 * number (BAND, with its cells' inner bounds). */
typedef struct {
  size_t a;
  int band;
  double e[BAND_CELLS - 1];
} fd_cand;

/* The counts of b's labels (lb of them, the last missing) within a's
 * groups (an FD's labels, a band's cells; the last missing), into g. */
static void group_counts(const fd_cand *k, const ms_fit_model *m, const ms_frame *data, int32_t **maps, size_t b,
                         size_t ng, size_t lb, double *g) {
  const fit_field *fa = &m->f[k->a], *fb = &m->f[b];
  const ms_frame_col *ca = &data->cols[k->a], *cb = &data->cols[b];
  memset(g, 0, ng * lb * sizeof *g);
  for (size_t r = 0; r < data->n_rows; r++) {
    size_t x = k->band ? cell(k->e, ca->num[r]) : label(ca, fa, maps[k->a], fa->n_cats, r);
    g[x * lb + label(cb, fb, maps[b], n_labels(fb), r)] += 1;
  }
}

/* The cut between bands of labels lo and hi at fine bound k (a switch
 * between map cells): a round number between the middles of the map cells
 * on either side, by the
 * exponential mechanism on the rows it would put in the wrong band (the
 * regions of one column's cuts are disjoint: one mechanism for them all). */
static double band_cut(const fd_cand *kd, const ms_fit_model *m, const ms_frame *data, int32_t **maps, size_t b,
                       size_t k, size_t lo, size_t hi, double eps, double u01) {
  const fit_field *fa = &m->f[kd->a], *fb = &m->f[b];
  const ms_frame_col *ca = &data->cols[kd->a], *cb = &data->cols[b];
  /* the middles of the map cells on either side of fine bound k (the
   * switch between map cells is at a fine bound k = BAND_GROUP j - 1) */
  double left = k + 1 >= BAND_GROUP ? kd->e[k + 1 - BAND_GROUP / 2] : fa->lo;
  double right = k + BAND_GROUP / 2 < BAND_CELLS - 1 ? kd->e[k + BAND_GROUP / 2] : fa->hi;
  if (!(right > left)) return kd->e[k];
  double step = pow(10, floor(log10((right - left) / 4)));
  if (fa->kind == MS_FKIND_INTEGER && step < 1) step = 1;
  double c0 = ceil(left / step) * step, cand[64], sc[64];
  size_t n = 0;
  while (n < 64 && c0 + (double)n * step <= right) cand[n] = c0 + (double)n * step, n++;
  if (!n) return kd->e[k];
  for (size_t i = 0; i < n; i++) sc[i] = 0;
  for (size_t r = 0; r < data->n_rows; r++) {
    double x = ca->num[r];
    if (!(x >= left && x < right)) continue;
    size_t y = label(cb, fb, maps[b], n_labels(fb), r);
    for (size_t i = 0; i < n; i++) sc[i] -= x < cand[i] ? y != lo : y != hi;
  }
  return cand[ms__exp_mech(sc, n, eps, u01)];
}

ms_status ms__dp_fd(ms_fit_model *m, const ms_frame *data, int32_t **maps, double rho, double n_noisy,
                    uint64_t seed) {
  size_t d = m->n_fields;
  fd_cand *cand = ms__malloc((d ? d : 1) * sizeof *cand);
  unsigned char *role = ms__calloc(d ? d : 1, 1); /* 1 determinant, 2 determined */
  size_t cap = ((BAND_CELLS > MS_SPEC_MAX_RULES ? BAND_CELLS : MS_SPEC_MAX_RULES) + 1) * (MS_SPEC_MAX_RULES + 1);
  double *sc = ms__malloc((d + 1) * sizeof *sc), *g = ms__malloc(cap * sizeof *g);
  if (!cand || !role || !sc || !g) {
    free(cand), free(role), free(sc), free(g);
    return MS_ERR_NOMEM;
  }
  /* candidates of b (the schema and the released marginals only) */
#define CANDIDATES(b, nc)                                                                                      \
  do {                                                                                                         \
    nc = 0;                                                                                                    \
    for (size_t a = 0; a < d; a++) {                                                                           \
      if (a == b || !near(a, b) || role[a] == 2) continue;                                                     \
      const fit_field *fa = &m->f[a];                                                                          \
      if (m->f[b].kind == MS_FKIND_CATEGORICAL && eligible(fa, maps[a]) && fa->n_cats >= m->f[b].n_cats &&    \
          fa->n_cats <= MS_SPEC_MAX_RULES)                                                                     \
        cand[nc].a = a, cand[nc++].band = 0;                                                                   \
      else if (banding(fa))                                                                                    \
        cand[nc].a = a, cand[nc++].band = 1;                                                                   \
    }                                                                                                          \
  } while (0)
  size_t T = 0, nc;
  for (size_t b = 0; b < d; b++) {
    if (!labelled(&m->f[b], maps[b]) || n_labels(&m->f[b]) > MS_SPEC_MAX_RULES) continue;
    CANDIDATES(b, nc);
    T += nc > 0;
  }
  m->rel.fd_max_tests = T;
  ms_status st = MS_OK;
  /* a test, a map and (bands) their cuts per column at most */
  double eps = T ? sqrt(8 * rho / (3 * (double)T)) : 0;
  m->rel.fd_eps = eps;
  ms_rng_key kt = ms__fit_dp_key(seed, "(relations)", "fd-test");
  for (size_t b = 0; b < d && T && rho > 0 && !st; b++) {
    fit_field *fb = &m->f[b];
    if (role[b] || !labelled(fb, maps[b]) || n_labels(fb) > MS_SPEC_MAX_RULES) continue;
    CANDIDATES(b, nc);
    if (!nc) continue;
    /* b's released minority */
    double top = 0;
    for (size_t l = 0; l < n_labels(fb); l++) top = fmax(top, fb->probs[l]);
    double minority = fmax(n_noisy, 0) * (1 - fb->missing) * (1 - top), tau = MS__DPREL_SHARE * minority;
    if (eps * (FD_POWER_OFF - MS__DPREL_SHARE) * minority / 2 < log(10 * (double)(nc + 1))) continue;
    size_t lb = n_labels(fb) + 1;
    for (size_t i = 0; i < nc; i++) {
      fd_cand *k = &cand[i];
      const fit_field *fa = &m->f[k->a];
      if (k->band)
        for (size_t c = 1; c < BAND_CELLS; c++) k->e[c - 1] = ms__fit_fam_inv(fa, (double)c / BAND_CELLS);
      size_t ng = (k->band ? BAND_CELLS : fa->n_cats) + 1;
      group_counts(k, m, data, maps, b, ng, lb, g);
      double kept = 0;
      for (size_t x = 0; x < ng; x++) {
        double mx = 0;
        for (size_t y = 0; y < lb; y++) mx = fmax(mx, g[x * lb + y]);
        kept += mx;
      }
      sc[i] = -((double)data->n_rows - kept);
    }
    sc[nc] = -tau;
    size_t pick = ms__exp_mech(sc, nc + 1, eps, ms_rng_uniform(kt, b, 0));
    m->rel.fd_tests++;
    if (pick == nc) continue;
    const fd_cand *k = &cand[pick];
    size_t a = k->a, ng = (k->band ? BAND_CELLS : m->f[a].n_cats) + 1;
    group_counts(k, m, data, maps, b, ng, lb, g);
    if (k->band) { /* the map's cells: BAND_GROUP fine cells each (the missing group last) */
      size_t nm = BAND_CELLS / BAND_GROUP;
      for (size_t x = 0; x < nm; x++)
        for (size_t y = 0; y < lb; y++) {
          double t = 0;
          for (size_t q = 0; q < BAND_GROUP; q++) t += g[(x * BAND_GROUP + q) * lb + y];
          g[x * lb + y] = t;
        }
      for (size_t y = 0; y < lb; y++) g[nm * lb + y] = g[BAND_CELLS * lb + y];
      ng = nm + 1;
    }
    /* the map, group by group of a (disjoint rows: one mechanism) */
    char what[300];
    snprintf(what, sizeof what, "fd-map/%s", fb->name);
    ms_rng_key km = ms__fit_dp_key(seed, "(relations)", what);
    int32_t *lab = ms__malloc((ng - 1) * sizeof *lab);
    if (!lab) {
      st = MS_ERR_NOMEM;
      break;
    }
    for (size_t x = 0; x + 1 < ng; x++)
      lab[x] = (int32_t)ms__exp_mech(g + x * lb, lb - 1, eps, ms_rng_uniform(km, x, 0));
    m->rel.fd_maps++;
    if (!k->band) {
      fb->fd_emit = lab;
      fb->n_fd_emit = ng - 1;
      fb->fd_from = (int)a;
      role[a] = 1, role[b] = 2;
      continue;
    }
    /* bands: runs of cells of one label, a cut between each two */
    size_t nb = 1;
    for (size_t x = 1; x + 1 < ng; x++) nb += lab[x] != lab[x - 1];
    if (nb < 2) { /* one label everywhere: no bands */
      free(lab);
      continue;
    }
    if (!(fb->band_emit = ms__malloc(nb * sizeof *fb->band_emit)) ||
        !(fb->band_cut = ms__malloc(nb * sizeof *fb->band_cut))) {
      free(lab);
      st = MS_ERR_NOMEM;
      break;
    }
    snprintf(what, sizeof what, "fd-cut/%s", fb->name);
    ms_rng_key kc = ms__fit_dp_key(seed, "(relations)", what);
    size_t j = 0;
    fb->band_emit[0] = lab[0];
    for (size_t x = 1; x + 1 < ng; x++) {
      if (lab[x] == lab[x - 1]) continue;
      fb->band_cut[j] = band_cut(k, m, data, maps, b, x * BAND_GROUP - 1, (size_t)lab[x - 1], (size_t)lab[x],
                                 eps, ms_rng_uniform(kc, x, 0));
      fb->band_emit[++j] = lab[x];
    }
    /* cuts in increasing order (each lies in its own region) */
    fb->n_band = nb;
    fb->band_from = (int)a;
    role[a] = 1, role[b] = 2;
    m->rel.fd_cuts++;
    m->rel.fd_bands++;
    free(lab);
  }
#undef CANDIDATES
  free(cand), free(role), free(sc), free(g);
  m->rel.fd_rho = (double)(m->rel.fd_tests + m->rel.fd_maps + m->rel.fd_cuts) * eps * eps / 8;
  return st;
}
