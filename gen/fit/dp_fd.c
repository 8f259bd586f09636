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
 *     anything up to tau_b. The test is run only when "none" beats an
 *     unrelated a (w about b's minority) with probability 99 %:
 *     epsilon_r (1 - MS__DPREL_SHARE) minority / 2 >= ln(100 (candidates +
 *     1)).
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

static int near(size_t a, size_t b) { return (a > b ? a - b : b - a) <= FD_WINDOW; }

static int eligible(const fit_field *f, const int32_t *map) {
  return f->kind == MS_FKIND_CATEGORICAL && !f->suppressed && f->n_cats >= 2 && map && f->fd_from < 0 &&
         f->band_from < 0;
}

/* Row r's released label of categorical column c (n: missing or dropped). */
static size_t label(const ms_frame_col *c, const int32_t *map, size_t n, size_t r) {
  int32_t x = c->code[r];
  return x < 0 || map[x] < 0 ? n : (size_t)map[x];
}

ms_status ms__dp_fd(ms_fit_model *m, const ms_frame *data, int32_t **maps, double rho, double n_noisy,
                    uint64_t seed) {
  size_t d = m->n_fields, nr = data->n_rows;
  size_t T = 0;
  for (size_t b = 0; b < d; b++) {
    if (!eligible(&m->f[b], maps[b])) continue;
    int any = 0;
    for (size_t a = 0; a < d && !any; a++)
      any = a != b && near(a, b) && eligible(&m->f[a], maps[a]) && m->f[a].n_cats >= m->f[b].n_cats &&
            m->f[a].n_cats <= MS_SPEC_MAX_RULES;
    T += any;
  }
  m->rel.fd_max_tests = T;
  if (!T || !(rho > 0)) return MS_OK;
  double eps = sqrt(8 * rho / (2 * (double)T));
  m->rel.fd_eps = eps;
  unsigned char *role = ms__calloc(d, 1); /* 1 determinant, 2 determined */
  size_t *cand = ms__malloc(d * sizeof *cand);
  double *sc = ms__malloc((d + MS_SPEC_MAX_RULES + 1) * sizeof *sc), *cnt = NULL;
  if (!role || !cand || !sc) {
    free(role), free(cand), free(sc);
    return MS_ERR_NOMEM;
  }
  ms_status st = MS_OK;
  ms_rng_key kt = ms__fit_dp_key(seed, "(relations)", "fd-test");
  for (size_t b = 0; b < d && !st; b++) {
    fit_field *fb = &m->f[b];
    if (!eligible(fb, maps[b]) || role[b]) continue;
    size_t nc = 0;
    for (size_t a = 0; a < d; a++)
      if (a != b && near(a, b) && role[a] != 2 && eligible(&m->f[a], maps[a]) && m->f[a].n_cats >= fb->n_cats &&
          m->f[a].n_cats <= MS_SPEC_MAX_RULES)
        cand[nc++] = a;
    if (!nc) continue;
    /* b's released minority */
    double top = 0;
    for (size_t l = 0; l < fb->n_cats; l++) top = fmax(top, fb->probs[l]);
    double minority = fmax(n_noisy, 0) * (1 - fb->missing) * (1 - top), tau = MS__DPREL_SHARE * minority;
    if (eps * (1 - MS__DPREL_SHARE) * minority / 2 < log(100 * (double)(nc + 1))) continue;
    const ms_frame_col *cb = &data->cols[b];
    size_t lb = fb->n_cats + 1;
    for (size_t i = 0; i < nc && !st; i++) {
      const fit_field *fa = &m->f[cand[i]];
      const ms_frame_col *ca = &data->cols[cand[i]];
      size_t la = fa->n_cats + 1;
      double *g = ms__calloc(la * lb, sizeof *g);
      if (!g) {
        st = MS_ERR_NOMEM;
        break;
      }
      for (size_t r = 0; r < nr; r++)
        g[label(ca, maps[cand[i]], fa->n_cats, r) * lb + label(cb, maps[b], fb->n_cats, r)] += 1;
      double kept = 0;
      for (size_t x = 0; x < la; x++) {
        double mx = 0;
        for (size_t y = 0; y < lb; y++) mx = fmax(mx, g[x * lb + y]);
        kept += mx;
      }
      sc[i] = -((double)nr - kept);
      free(g);
    }
    if (st) break;
    sc[nc] = -tau;
    size_t pick = ms__exp_mech(sc, nc + 1, eps, ms_rng_uniform(kt, b, 0));
    m->rel.fd_tests++;
    if (pick == nc) continue;
    /* the map, label by label of a */
    size_t a = cand[pick];
    const fit_field *fa = &m->f[a];
    const ms_frame_col *ca = &data->cols[a];
    free(cnt);
    if (!(cnt = ms__calloc((fa->n_cats + 1) * lb, sizeof *cnt)) ||
        !(fb->fd_emit = ms__malloc(fa->n_cats * sizeof *fb->fd_emit))) {
      st = MS_ERR_NOMEM;
      break;
    }
    for (size_t r = 0; r < nr; r++)
      cnt[label(ca, maps[a], fa->n_cats, r) * lb + label(cb, maps[b], fb->n_cats, r)] += 1;
    char what[300];
    snprintf(what, sizeof what, "fd-map/%s", fb->name);
    ms_rng_key km = ms__fit_dp_key(seed, "(relations)", what);
    for (size_t x = 0; x < fa->n_cats; x++)
      fb->fd_emit[x] = (int32_t)ms__exp_mech(cnt + x * lb, fb->n_cats, eps, ms_rng_uniform(km, x, 0));
    fb->n_fd_emit = fa->n_cats;
    fb->fd_from = (int)a;
    role[a] = 1, role[b] = 2;
    m->rel.fd_maps++;
  }
  free(cnt), free(role), free(cand), free(sc);
  m->rel.fd_rho = (double)(m->rel.fd_tests + m->rel.fd_maps) * eps * eps / 8;
  m->rel.rho += m->rel.fd_rho;
  return st;
}
