/* Private helpers of gen/fit: MST (mst.c) and what it shares with the
 * fit (quantile tables, DP post-processing). The table reader's helpers
 * (table/frame_internal.h) and the relations (fit/relations.h) come with
 * it. */
#ifndef MS_FIT_INTERNAL_H
#define MS_FIT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fit/relations.h"
#include "medsynth/fit.h"
#include "medsynth/rng.h"
#include "medsynth/status.h"
#include "table/frame_internal.h"

/* MST (gen/fit/mst.c; McKenna, Miklau & Sheldon 2021): the DP method that
 * measures noisy 2-way marginals on a privately chosen maximum spanning tree
 * of the columns and writes the tree as hidden bin fields with conditional
 * weights (docs/privacy.md, "MST"). A column of the tree, described by
 * fit.c from its released marginal; every pointer is borrowed for the
 * model's life (the labels) or for the call (the data). */
typedef enum { MS__MST_NUM, MS__MST_CAT, MS__MST_BOOL, MS__MST_KIND_COUNT } ms__mst_kind;
/* The most labels of a categorical column in the model (its bins; with the
 * missing bin its children's rules stay within MS_SPEC_MAX_RULES). */
#define MS__MST_MAX_LABELS 64
/* --method auto under DP: AIM on a table whose released row count reaches
 * MS__AUTO_AIM_ROWS when a quarter of its columns are coarse (half below
 * it): its 2- and 3-way tables then hold enough rows against the noise to
 * pass relations between labels and numbers that a copula's correlations
 * cannot; a table of measurements stays with the copula (docs/fit.md,
 * "Which model"). */
#define MS__AUTO_AIM_ROWS 2000
#define MS__AUTO_AIM_ROWS_SHARE 0.25
typedef struct {
  const char *name;      /* the field's name in the spec */
  size_t field;          /* the field's index in the model */
  ms__mst_kind kind;
  const double *num;     /* NUM, BOOL: the values (NaN missing), n_rows */
  const int32_t *code;   /* CAT: frame codes (-1 missing), n_rows */
  const int32_t *map;    /* CAT: frame code -> released category (-1: none) */
  size_t n_cats;         /* CAT: released categories */
  const double *probs;   /* CAT, BOOL: released shares of the present values */
  const double *qp, *qv; /* NUM: the released quantile table (nq knots) */
  size_t nq;
  double step;           /* NUM: spacing of the written values; 0: continuous */
  int date;              /* NUM: drawn through "offset_days" */
  double missing;        /* released missing share */
  double sigma;          /* noise sd of the column's released histogram */
  const char *const *labels; /* CAT: the labels; BOOL: false/true spellings, or NULL ("p") */
} ms__mst_col;

/* fit_marginal.c's piecewise-linear quantile table (probs qp, values qv, nq knots):
 * inverse and CDF (a flat step counts at its middle); sig6 rounds to 6
 * significant digits for the spec. */
double ms__fit_quantile_inv(const double *qp, const double *qv, size_t nq, double u);
double ms__fit_quantile_cdf(const double *qp, const double *qv, size_t nq, double x);
double ms__fit_sig6(double x);
/* gen/fit/fit_copula.c: R (d x d) made a valid correlation matrix in place
 * (eigenvalues clipped, unit diagonal, entries at 4 decimals that pass
 * Cholesky). */
ms_status ms__fit_repair_correlation(double *R, size_t d);
/* Pairwise-complete Pearson correlation of the d columns of Z (column i at
 * Z + i n, NaN: absent) into S (d x d, unit diagonal); 0 over fewer than
 * k_min rows or where a column does not vary. */
void ms__fit_pairwise_corr(const double *Z, size_t d, size_t n, double k_min, double *S);

/* gen/fit/dp_shape.c: a Box-Cox-normal shape fitted by least squares to
 * nb noisy bin counts (bins [lo[b], hi[b]), sorted, contiguous) of noise sd
 * sigma and to ns noisy counts g of coarser spans (noise sd sigma_g; bin b
 * lies in span[b]; ns 0: none); 1 when accepted (its residuals are what
 * the noise explains), with the quantile table of nq knots in qp/qv (from
 * lo[0] to hi[nb - 1]); 0 and qp/qv untouched when not; -1 out of
 * memory. known: the rows the bins hold, when a better estimate than
 * their noisy sum is known (> 0), else the sum is used. Numeric columns
 * under DP whose fine histogram would have fewer than MS__DP_SMOOTH_BINS
 * bins get that many and try it. */
#define MS__DP_SMOOTH_BINS 8
#define MS__DP_SMOOTH_KNOTS 41
int ms__dp_smooth_shape(const double *lo, const double *hi, const double *cnt, size_t nb, double sigma,
                        const int *span, const double *g, size_t ns, double sigma_g, double known, double *qp,
                        double *qv, size_t nq);

/* gen/fit/dp_corr.c: the copula's correlation matrix (d x d, in place)
 * from the noisy off-diagonal upper triangle of the sums of score products
 * (noise sd sigma) and, on the diagonal, each column's released count of
 * present values: normalised, the off-diagonal denoised by its spectrum
 * (*kept components above the noise, *shrink the top one's squared
 * overlap) or, with none, shrunk by the James-Stein share (*shrink); unit
 * diagonal. */
ms_status ms__dp_corr_estimate(double *S, size_t d, double sigma, double *shrink, size_t *kept);
/* The correlations' clipping (gen/fit/dp_corr.c): the squared norm C2 each
 * row's score vector is clipped to (half the dimension), the factor
 * E[min(chi2_d, C2)] / d by which clipping shrinks the sums of products of
 * independent scores, and the fixed point that removes clipping's bias from
 * a denoised estimate (A: unit diagonal; post-processing with draws keyed
 * by seed alone). */
#define MS__CORR_CLIP_SHARE 0.5
#define MS__CORR_UNCLIP_MAX_D 64
double ms__dp_corr_clip_factor(size_t d, double C2);
ms_status ms__dp_corr_unclip(double *A, size_t d, double C2, uint64_t seed);

typedef struct ms__mst ms__mst;
struct cJSON;

/* Selects the tree (exponential mechanism, rho_select zCDP in all), measures
 * its edges (Gaussian, rho_edges zCDP in all) and estimates the conditional
 * tables. n_noisy is the released row count; taken: names the bin fields
 * must not use. *out NULL (MS_OK) when fewer than two columns. With
 * rho_edges == 0 the model is fitted without noise: the tree of largest
 * scores, the exact tables with cells of fewer than k_min rows emptied.
 * The tree is oriented from cols[root]; root_w (its non-missing bins'
 * weights, or NULL) replaces that column's shares (rebalancing). */
ms_status ms__mst_fit(ms__mst **out, const ms__mst_col *cols, size_t n_cols, size_t n_rows,
                      double n_noisy, double rho_select, double rho_edges, uint64_t seed,
                      size_t k_min, size_t root, const double *root_w, const char *const *taken,
                      size_t n_taken, int aim);
void ms__mst_free(ms__mst *t);
/* Adds the edge (a, b)'s Gaussian noise to its table of `cells` counts:
 * sigma * N(0, 1) keyed by (seed, "fit/dp/<a>/<b>/mst-edge", cell). */
void ms__mst_edge_noise(double *tab, size_t cells, uint64_t seed, const char *a, const char *b, double sigma);
/* rho spent by the selection and the edges (0 for NULL). */
double ms__mst_rho(const ms__mst *t);
/* Rewrites field object o of model field `field` to draw within its bin
 * (no-op when the field is not in the tree); appends the hidden bin fields;
 * records the budget and the tree in the spec's privacy block; prints the
 * accounting lines. Allocation failures show in ms__json_print. */
void ms__mst_emit_field(const ms__mst *t, size_t field, struct cJSON *o);
void ms__mst_emit_bins(const ms__mst *t, struct cJSON *fields);
void ms__mst_emit_privacy(const ms__mst *t, struct cJSON *privacy);
void ms__mst_accounting(const ms__mst *t, FILE *fp);
/* Row r of the reference sampler: the model's columns of frame fr drawn
 * from it (keyed by k; bins: one int per model column of scratch). */
void ms__mst_sample_row(const ms__mst *t, ms_rng_key k, size_t r, ms_frame *fr, int *bins, double *scratch);
/* The table's correlation group of the within-bin draws (no noise), added
 * to the table object tab; nothing when there is none. */
void ms__mst_emit_correlations(const ms__mst *t, struct cJSON *tab);
/* Doubles of scratch ms__mst_sample_row needs (at least 1). */
size_t ms__mst_scratch(const ms__mst *t);

/* DP post-processing shared by the mechanisms (gen/fit/fit_dp.c). */
ms_status ms__dp_project(double *c, size_t n, double total);
double ms__dp_missing(double noisy, double sigma);
ms_status ms__dp_support(double *c, size_t n, double sigma, const unsigned char *cut, int neg_ends);
/* The zoom's run in one grid span's n noisy sub-bins (scratch g of n): its
 * group size, 0 when none holds the span's rows, -1 when out of memory. */
int ms__dp_zoom_run(const double *c, int n, double sz, double sb, double w, double *g, int *lo, int *hi);

/* The exponential mechanism's draw: candidate i of n (score s[i]; NAN: not
 * eligible) with probability proportional to exp(eps / 2 (s[i] - max s));
 * u01 uniform in [0, 1). n when none is eligible. */
size_t ms__exp_mech(const double *s, size_t n, double eps, double u01);

/* Relations between dates under DP (gen/fit/dp_relations.c): kept when at
 * most this share of the noisy row count breaks them. */
#define MS__DPREL_SHARE 0.1
/* An order between two numbers is kept under DP only when they are equal
 * on at least this share of the rows, besides their most common shared
 * value (a time to an event and the follow-up, equal without the event). */
#define MS__DPREL_EQ_SHARE 0.25
/* The most rounds of the numbers' order search (each keeps one order). */
#define MS__DPREL_NUM_ROUNDS 3
typedef struct {
  double rho;       /* spent by the row count, the tests and the rounds run */
  double sigma_n;   /* the row count's noise */
  double n_noisy;   /* the noisy row count */
  double tau;       /* MS__DPREL_SHARE n_noisy */
  double eps_round; /* each test's epsilon */
  size_t tests, max_tests;
  /* the numbers' order search: its rounds run and allowed, the candidate
   * orders of each round, each round's epsilon (at most eps_round) */
  size_t num_rounds, num_rounds_max, num_candidates;
  double eps_num;
  /* a label determined by another or set by bands (dp_fd.c): the rho its
   * mechanisms spent (apart from the dates'), each one's epsilon, the tests
   * allowed and run, the maps and the sets of cuts released, the bands */
  double fd_rho, fd_eps;
  size_t fd_max_tests, fd_tests, fd_maps, fd_cuts, fd_bands;
} ms__dp_rel_acct;
/* The most tests the schema of f allows (0: no date pair and fewer than two
 * numbers of a kind, nothing spent). */
size_t ms__dp_relations_tests(const ms_frame *f);
/* The order and difference relations between f's dates, and the orders
 * between its numbers, kept under at most rho zCDP (acct->rho spent), as
 * relations.c describes them. A column with bounded[j] set (declared
 * --bounds) is drawn within them, never after another; fixed[j] (SIZE_MAX:
 * none) is column j's declared base. */
ms_status ms__dp_relations(const ms_frame *f, const unsigned char *bounded, const size_t *fixed, double rho, uint64_t seed, ms__rel **out, size_t *n_out,
                           ms__dp_rel_acct *acct);

#endif
