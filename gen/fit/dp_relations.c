/* Relations between dates, and orders between numbers, under differential
 * privacy (docs/privacy.md, "Relations between dates", "Orders between
 * numbers").
 *
 * Without noise, relations.c reads every row to find which relations hold.
 * Under --epsilon the candidates come from the schema alone (which columns
 * are dates, which have a time, which are numbers), and which of them hold
 * is chosen by exponential mechanisms on counts of the rows that break
 * them; everything after is post-processing:
 *
 *  1. The row count n~ = n + N(0, sigma_n^2) (sensitivity 1, a fifth of
 *     the relations' rho). A relation may be broken by at most about
 *     MS__DPREL_SHARE of n~ rows: tau = MS__DPREL_SHARE n~. No test is run
 *     unless epsilon_r (n~ / 2 - tau) / 2 >= ln(200): a pair of dates in
 *     either order half the time is then taken for an order with
 *     probability at most 1 % (post-processing of n~).
 *  2. Order, one test per pair {a, b} of date columns (dates without a
 *     time of day; datetimes are left out): candidates "a <= b" (score
 *     -v_ab), "b <= a" (-v_ba) and "neither" (-tau), where v_ab counts the
 *     rows with both present and b < a, or b present without a (b is
 *     present only where a is). One row adds 1 to at most one of v_ab and
 *     v_ba, so every score moves by at most 1. A date with declared
 *     --bounds is drawn within them, and one declared after another
 *     (--order) keeps that base: neither is tested as the later one.
 *  3. Bases (post-processing): each date b is drawn after the earlier date
 *     a of its kept orders that no other kept order puts between a and b
 *     (the nearest such column in the table when there are several), unless
 *     that would close a cycle.
 *  4. Difference, one test per date b with a base a (found or declared),
 *     when the table has numeric columns: candidates "c = b - a" for every
 *     integer or real column c not derived yet (score -w_c: the rows where c
 *     is present other than exactly where a and b are, or differs from b - a
 *     by more than half a unit of its last decimal, as relations.c checks)
 *     and "none" (-tau).
 *  5. Orders between numbers, up to MS__DPREL_NUM_ROUNDS rounds when the
 *     table has two numbers of a kind (integers, or reals): each round one
 *     exponential mechanism over every order "a <= b" still open (b has no
 *     base, found or declared, and no --bounds; neither is a derived
 *     difference; no cycle) and "none" (-tau). The score of "a <= b" is
 *     -max(v_ab, tau + tau_e - e_ab): v_ab as in 2, e_ab the rows where a
 *     and b are present and equal, less those at the value most of them
 *     share, tau_e = MS__DPREL_EQ_SHARE n~. So an order wins only where
 *     few rows break it and the two numbers are equal on a quarter of the
 *     rows: a time to an event and the follow-up (equal where no event
 *     happened), not two numbers whose ranges merely do not overlap (nodes
 *     and age) nor two scores that share their lowest value. One row moves
 *     v_ab, e_ab and their max by at most 1. A kept order sets b's base;
 *     "none" ends the search.
 *
 * Each test is the exponential mechanism with the same epsilon_r, which is
 * epsilon_r^2 / 8-zCDP (Cesar & Rogers 2021, bounded range); epsilon_r is
 * cut for the most tests the schema allows (pairs + dates + rounds),
 * and only the tests run are charged. Draws keyed by (seed,
 * "fit/dp/(relations)/<what>", index). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "fit/fit_internal.h"
#include "fit/fit_model.h"

/* dates without a time of day (a datetime's gap would be fractional days) */
static int is_date(const ms_frame_col *c) { return c->num && c->kind == MS_FKIND_DATE && !c->has_time; }
static int is_num(const ms_frame_col *c) {
  return c->num && (c->kind == MS_FKIND_INTEGER || c->kind == MS_FKIND_REAL);
}

/* Two numbers of a kind within MS__DPREL_NUM_WINDOW columns of each other:
 * the pairs the numbers' order search weighs (a survival table's times sit
 * together; the window keeps the search linear in the table's width). */
#define MS__DPREL_NUM_WINDOW 32
static int num_pair(const ms_frame *f, size_t a, size_t b) {
  const ms_frame_col *x = &f->cols[a], *y = &f->cols[b];
  size_t gap = a < b ? b - a : a - b;
  return gap && gap <= MS__DPREL_NUM_WINDOW && is_num(x) && is_num(y) && x->kind == y->kind;
}

/* The ordered pairs num_pair allows. */
static size_t num_pairs(const ms_frame *f) {
  size_t k = 0;
  for (size_t a = 0; a < f->n_cols; a++)
    for (size_t b = a + 1; b < f->n_cols && b <= a + MS__DPREL_NUM_WINDOW; b++) k += 2 * (size_t)num_pair(f, a, b);
  return k;
}

/* The tests the schema allows: date pairs, dates without a time that
 * may get a difference (two such dates and a numeric column), and the
 * rounds of the numbers' order search (two numbers of the same kind
 * within MS__DPREL_NUM_WINDOW columns). */
static void count_tests(const ms_frame *f, size_t *pairs, size_t *diffs, size_t *rounds, size_t *cands) {
  size_t nd = 0, nn = 0;
  for (size_t j = 0; j < f->n_cols; j++) nd += is_date(&f->cols[j]), nn += is_num(&f->cols[j]);
  *pairs = nd * (nd ? nd - 1 : 0) / 2;
  *diffs = nd >= 2 && nn ? nd : 0;
  *cands = num_pairs(f);
  *rounds = *cands ? MS__DPREL_NUM_ROUNDS : 0;
}

size_t ms__dp_relations_tests(const ms_frame *f) {
  size_t p, q, r, k;
  count_tests(f, &p, &q, &r, &k);
  return p + q + r;
}

/* Whether b is on a's chain of bases (base[x]: x's base, SIZE_MAX: none):
 * then b drawn after a would close a cycle. */
static int on_chain(const size_t *base, size_t d, size_t a, size_t b) {
  for (size_t x = a, steps = 0; x != SIZE_MAX && steps <= d; x = base[x], steps++)
    if (x == b) return 1;
  return 0;
}

/* Rows where a and b are both present and equal, less those at the value
 * most of them share (scratch buf of n): one row moves it by at most 1. */
static double equal_rows(const ms_frame_col *a, const ms_frame_col *b, size_t n, double *buf) {
  size_t m = 0, run = 0, most = 0;
  for (size_t r = 0; r < n; r++)
    if (!isnan(a->num[r]) && a->num[r] == b->num[r]) buf[m++] = a->num[r];
  qsort(buf, m, sizeof *buf, ms__fit_cmp_double);
  for (size_t i = 0; i < m; i++) {
    run = i && buf[i] == buf[i - 1] ? run + 1 : 1;
    if (run > most) most = run;
  }
  return (double)(m - most);
}

/* Rows breaking a <= b: b before a, or b present without a. */
static double order_breaks(const ms_frame_col *a, const ms_frame_col *b, size_t n) {
  double v = 0;
  for (size_t r = 0; r < n; r++) {
    double x = a->num[r], y = b->num[r];
    if (isnan(y)) continue;
    v += isnan(x) || y < x;
  }
  return v;
}

/* Rows breaking c = b - a: c present other than exactly where a and b
 * are, or off b - a by the tolerance the search without noise uses. */
static double diff_breaks(const ms_frame_col *a, const ms_frame_col *b, const ms_frame_col *c, size_t n) {
  double tol = ms__relation_half_unit(c), v = 0;
  for (size_t r = 0; r < n; r++) {
    double x = a->num[r], y = b->num[r], z = c->num[r];
    int both = !isnan(x) && !isnan(y);
    v += both != !isnan(z) || (both && ms__diff_breaks(tol, x, y, z));
  }
  return v;
}

/* The numbers' order search (step 5 above): up to acct->num_rounds_max
 * rounds, each one exponential mechanism over the orders "a <= b" of two
 * numbers of num_pair (b without a base yet and no --bounds, neither side
 * derived, no cycle through the bases; score minus max(v_ab, tau + tau_e -
 * e_ab), v_ab the rows breaking it, e_ab the rows where both are present
 * and equal less those at their most common shared value) and "none"
 * (-tau), epsilon acct->eps_num. A round that keeps an order sets b's
 * base; "none" ends the search. */
static ms_status num_orders(const ms_frame *f, const unsigned char *bounded, const unsigned char *derived,
                            size_t *base, double tau_e, uint64_t seed, ms__rel *r, size_t *nr,
                            ms__dp_rel_acct *acct) {
  const size_t d = f->n_cols, n = f->n_rows, K = acct->num_candidates;
  size_t *ca = ms__malloc((K + 1) * sizeof *ca), *cb = ms__malloc((K + 1) * sizeof *cb), *open = ms__malloc((K + 1) * sizeof *open);
  double *v = ms__malloc((K + 1) * sizeof *v), *e = ms__malloc((K + 1) * sizeof *e), *sc = ms__malloc((K + 1) * sizeof *sc);
  double *buf = ms__malloc((n ? n : 1) * sizeof *buf);
  if (!ca || !cb || !open || !v || !e || !sc || !buf) {
    free(ca), free(cb), free(open), free(v), free(e), free(sc), free(buf);
    return MS_ERR_NOMEM;
  }
  size_t k = 0;
  for (size_t a = 0; a < d; a++)
    for (size_t b = a + 1; b < d && b <= a + MS__DPREL_NUM_WINDOW; b++) {
      if (!num_pair(f, a, b)) continue;
      const ms_frame_col *x = &f->cols[a], *y = &f->cols[b];
      e[k] = e[k + 1] = equal_rows(x, y, n, buf);
      ca[k] = a, cb[k] = b, v[k] = order_breaks(x, y, n);
      ca[k + 1] = b, cb[k + 1] = a, v[k + 1] = order_breaks(y, x, n);
      k += 2;
    }
  ms_rng_key key = ms__fit_dp_key(seed, "(relations)", "numbers");
  for (size_t round = 0; round < acct->num_rounds_max; round++) {
    size_t nc = 0;
    for (size_t i = 0; i < k; i++) {
      const size_t a = ca[i], b = cb[i];
      if (derived[a] || derived[b] || bounded[b] || base[b] != SIZE_MAX || on_chain(base, d, a, b)) continue;
      open[nc] = i;
      sc[nc++] = -fmax(v[i], acct->tau + tau_e - e[i]);
    }
    if (!nc) break;
    sc[nc] = -acct->tau;
    size_t pick = ms__exp_mech(sc, nc + 1, acct->eps_num, ms_rng_uniform(key, round, 0));
    acct->num_rounds++;
    if (pick >= nc) break;
    const size_t a = ca[open[pick]], b = cb[open[pick]];
    base[b] = a;
    r[(*nr)++] = (ms__rel){MS__REL_ORDER, a, b, SIZE_MAX, NULL, 0, NULL};
  }
  free(ca), free(cb), free(open), free(v), free(e), free(sc), free(buf);
  return MS_OK;
}

ms_status ms__dp_relations(const ms_frame *f, const unsigned char *bounded, const size_t *fixed, double rho, uint64_t seed, ms__rel **out, size_t *n_out,
                           ms__dp_rel_acct *acct) {
  *out = NULL;
  *n_out = 0;
  memset(acct, 0, sizeof *acct);
  size_t n_pairs, n_diffs, n_rounds, n_cand, d = f->n_cols, n = f->n_rows;
  count_tests(f, &n_pairs, &n_diffs, &n_rounds, &n_cand);
  if (!(n_pairs + n_diffs + n_rounds) || !(rho > 0)) return MS_OK;
  acct->max_tests = n_pairs + n_diffs + n_rounds;
  acct->num_rounds_max = n_rounds;
  double rho_n = rho / 5;
  acct->sigma_n = 1 / sqrt(2 * rho_n);
  acct->eps_round = sqrt(8 * (rho - rho_n) / (double)acct->max_tests);
  acct->n_noisy = (double)n + ms__fit_gauss(ms__fit_dp_key(seed, "(relations)", "rows"), 0, acct->sigma_n);
  acct->tau = MS__DPREL_SHARE * fmax(acct->n_noisy, 0);
  /* Power (post-processing of n~): a pair of dates in either order about
   * half the time must not pass for an order, P <= 1 % (an option half
   * n~ - tau below "neither", two such options); two numbers never equal
   * must not pass for an order in a round of the numbers' search, P <= 1 %
   * (an option MS__DPREL_EQ_SHARE n~ below "none", K such options, K the
   * ordered pairs num_pair allows). A stage without the power is not
   * run; with neither, only the row count is spent. */
  const double n_pos = fmax(acct->n_noisy, 0), tau_e = MS__DPREL_EQ_SHARE * n_pos;
  const int dates_ok = n_pairs + n_diffs && acct->eps_round * (0.5 * n_pos - acct->tau) / 2 >= log(2 / 0.01);
  const int nums_ok = n_cand && acct->eps_round * tau_e / 2 >= log((double)n_cand / 0.01);
  acct->num_candidates = nums_ok ? n_cand : 0;
  /* A round needs no more epsilon than meets the power rule twice over
   * (an order never equal passes with probability at most 1e-4; the true
   * one loses to "none" with less): on a large table far less than
   * epsilon_r, and what it leaves stays with the rest. */
  acct->eps_num = nums_ok ? fmin(acct->eps_round, 4 * log((double)n_cand / 0.01) / tau_e) : 0;
  if (!dates_ok && !nums_ok) {
    acct->rho = rho_n;
    return MS_OK;
  }
  /* le[a * d + b]: the order a <= b was kept */
  unsigned char *le = ms__calloc(d * d, 1), *derived = ms__calloc(d, 1);
  size_t *base = ms__malloc(d * sizeof *base), cap = 3 * d, nr = 0;
  double *sc = ms__malloc((d + 1) * sizeof *sc);
  ms__rel *r = ms__malloc(cap * sizeof *r);
  if (!le || !derived || !base || !sc || !r) {
    free(le), free(derived), free(base), free(sc), free(r);
    return MS_ERR_NOMEM;
  }
  ms_rng_key ko = ms__fit_dp_key(seed, "(relations)", "order"), kd = ms__fit_dp_key(seed, "(relations)", "diff");
  size_t pair = 0;
  for (size_t j = 0; j < d; j++) base[j] = fixed[j];
  for (size_t a = 0; a < d && dates_ok; a++) {
    if (!is_date(&f->cols[a])) continue;
    for (size_t b = a + 1; b < d; b++) {
      const ms_frame_col *ca = &f->cols[a], *cb = &f->cols[b];
      if (!is_date(cb)) continue;
      sc[0] = bounded[b] || fixed[b] != SIZE_MAX ? NAN : -order_breaks(ca, cb, n);
      sc[1] = bounded[a] || fixed[a] != SIZE_MAX ? NAN : -order_breaks(cb, ca, n);
      if (isnan(sc[0]) && isnan(sc[1])) continue; /* nothing to test */
      sc[2] = -acct->tau;
      size_t pick = ms__exp_mech(sc, 3, acct->eps_round, ms_rng_uniform(ko, pair++, 0));
      acct->tests++;
      if (pick == 0) le[a * d + b] = 1;
      if (pick == 1) le[b * d + a] = 1;
    }
  }
  for (size_t b = 0; b < d; b++) {
    if (!is_date(&f->cols[b]) || fixed[b] != SIZE_MAX) continue;
    size_t best = SIZE_MAX;
    for (size_t a = 0; a < d; a++) {
      if (!le[a * d + b]) continue;
      int between = 0; /* a <= a' <= b kept for some a' */
      for (size_t x = 0; x < d && !between; x++) between = x != a && x != b && le[a * d + x] && le[x * d + b];
      if (between) continue;
      size_t da = a < b ? b - a : a - b, db = best == SIZE_MAX ? SIZE_MAX : best < b ? b - best : best - b;
      if (da < db || (da == db && a < best)) best = a;
    }
    /* no cycle: b must not be a base on best's chain */
    if (best == SIZE_MAX || on_chain(base, d, best, b)) continue;
    base[b] = best;
    r[nr++] = (ms__rel){MS__REL_ORDER, best, b, SIZE_MAX, NULL, 0, NULL};
  }
  for (size_t b = 0; b < d && n_diffs && dates_ok; b++) {
    size_t a = base[b];
    if (a == SIZE_MAX || !is_date(&f->cols[a]) || !is_date(&f->cols[b])) continue;
    size_t nc = 0;
    size_t *cand = ms__malloc(d * sizeof *cand);
    if (!cand) {
      free(le), free(derived), free(base), free(sc), free(r);
      return MS_ERR_NOMEM;
    }
    for (size_t c = 0; c < d; c++)
      if (is_num(&f->cols[c]) && !derived[c]) {
        cand[nc] = c;
        sc[nc++] = -diff_breaks(&f->cols[a], &f->cols[b], &f->cols[c], n);
      }
    if (!nc) {
      free(cand);
      continue;
    }
    sc[nc] = -acct->tau;
    size_t pick = ms__exp_mech(sc, nc + 1, acct->eps_round, ms_rng_uniform(kd, b, 0));
    acct->tests++;
    if (pick < nc) {
      derived[cand[pick]] = 1;
      r[nr++] = (ms__rel){MS__REL_DIFF, a, b, cand[pick], NULL, 0, NULL};
    }
    free(cand);
  }
  if (nums_ok && num_orders(f, bounded, derived, base, tau_e, seed, r, &nr, acct)) {
    free(le), free(derived), free(base), free(sc), free(r);
    return MS_ERR_NOMEM;
  }
  acct->rho = rho_n + (double)acct->tests * acct->eps_round * acct->eps_round / 8 +
              (double)acct->num_rounds * acct->eps_num * acct->eps_num / 8;
  free(le), free(derived), free(base), free(sc);
  if (!nr) {
    free(r);
    r = NULL;
  }
  *out = r;
  *n_out = nr;
  return MS_OK;
}
