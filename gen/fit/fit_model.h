/* Private to gen/fit's fit*.c files: the fitted model (ms_fit_model) and
 * its fields, and the helpers the files share. fit.c is the driver
 * (ms_fit_model_new, the table's columns, names, relations); fit_marginal.c the plain
 * and categorical marginals; fit_dp.c the DP numeric marginals and their
 * post-processing; fit_copula.c the copula and mixture; fit_missing.c
 * conditional missingness; fit_emit.c the spec; fit_sample.c the reference
 * sampler. */
#ifndef MS_FIT_MODEL_H
#define MS_FIT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "fit/fit_internal.h"
#include "medsynth/fit.h"
#include "medsynth/rng.h"
#include "medsynth/table.h"

#define MS_FIT_TEXT_PLACEHOLDER "redacted"

/* fit_dp.c: what a DP numeric column's measurement released */
typedef struct ms__dp_num ms__dp_num;

typedef enum { FAM_QUANTILES, FAM_NORMAL, FAM_LOGNORMAL, FAM_GAMMA, FAM_EXPONENTIAL, FAM_CONSTANT } family;

typedef struct {
  char *name;  /* the spec's field name: an identifier made from the header */
  char *label; /* the header text when it is not that identifier, else NULL */
  ms_fkind kind;
  /* How the input writes the column (docs/fit.md, the round-trip contract). */
  char *btext[2];    /* bool: spellings of false and true; emitted as a categorical */
  int discrete;      /* numeric column fitted as its distinct values (cats) */
  int real_style;    /* ms_frame_col.real_style */
  char *date_format; /* date: pattern; NULL: ISO */
  int has_time;      /* date: emitted as a datetime */
  int text;          /* free text: not released, a placeholder is written */
  char *id_prefix;   /* id: fresh values prefix + digits */
  int id_width;      /* digits, 0: not zero-padded */
  int64_t id_start;
  /* Relations kept exactly (fit/relations.c; -1: none): a date drawn as
   * base field + a gap, a number derived as diff_b - diff_a, a categorical
   * determined by fd_from through fd_emit (fd_from's emitted index -> own
   * emitted index, -1: no rule). */
  int rel_base, diff_a, diff_b, fd_from;
  int rel_declared; /* rel_base is a declared order (--order) */
  int gap_seconds;  /* under DP: a datetime's gap, measured in whole seconds */
  char *gap_name;   /* a number after rel_base: the hidden field of its gap */
  /* A number or date after rel_base: its own bounds without DP (means of
   * k order statistics; under DP its range is not released), which base +
   * gap is held within, since a gap drawn within its bin need not respect
   * them (a death day after diagnosis, never past the day follow-up
   * closed). own_bounds 0: none. */
  int own_bounds;
  double own_lo, own_hi;
  /* Impossible combinations with field zc_from (-1: none): this field's
   * probabilities given each emitted label of zc_from, zc_nx x zc_ny. */
  int zc_from;
  double *zc_probs;
  size_t zc_nx, zc_ny;
  /* A total (relations.c, SUM): the fields it is the sum of (NULL: none). */
  int32_t *sum_parts;
  size_t n_sum;
  int out_decimals; /* ... and the decimals the number is written with */
  int32_t *fd_emit;
  size_t n_fd_emit;
  /* Set by bands of number band_from (-1: none; relations.c, BAND): band
   * i (n_band of them, lowest first) holds band_from < band_cut[i] and is
   * this field's emitted label band_emit[i] (a bool's 0/1). */
  int band_from;
  double *band_cut;
  int32_t *band_emit;
  size_t n_band;
  ms_fkind orig_kind;
  double missing;
  int suppressed; /* too few present values: emitted as always missing */
  /* categorical / bool: probabilities in emission order; bool: [P(false), P(true)] */
  size_t n_cats;
  char **cats;
  double *probs;
  /* under DP, a categorical without a public --domain: the release
   * threshold its labels' noisy counts had to pass (rows); 0 otherwise */
  double cat_tau;
  /* numeric */
  family fam;
  double par[2];
  size_t nq;
  double *qp, *qv;
  double lo, hi;
  int decimals;
  int cop; /* index in the copula, -1 when not in it */
  double rho;  /* zCDP budget spent on this column */
  /* Conditional missingness: rate mc_rate where the condition on field
   * mc_col holds (mc_type 0: bool true, 1: category mc_cat, 2: value <
   * mc_thr, 3: mc_col is missing), f->missing elsewhere; mc_col -1 when
   * none. */
  int mc_col, mc_type;
  int32_t mc_cat;
  double mc_thr, mc_rate, mc_chi2;
  char *mc_expr;
  double sigma; /* Gaussian noise of its histogram(s) */
  double spike_sigma; /* ... of its frequent values' counts (0: not measured) */
  double dec_sigma;   /* ... of its decimals' counts (DP real columns; 0: not measured) */
  /* DP: the column's noisy row total (its missing count before the 3
   * sigma rule: unbiased), that total's variance (0: not pooled) and the
   * released missing count; the missing share is that count over the row
   * count pooled from every column's total (fit.c). */
  double n_total, total_var, miss_count;
  size_t n_spikes;    /* frequent values released */
  ms__dp_num *dp_num; /* DP numeric: its release, between the fit's two passes (NULL: none) */
  double aic_q, aic_p;
} fit_field;

struct ms_fit_model {
  char *name, *table, *source;
  size_t n_fields;
  fit_field *f;
  uint64_t n_out;
  size_t n_source;
  size_t k_min;
  uint64_t seed;
  double epsilon, delta, delta_conv, delta_thr, rho, rho_marg, rho_corr, rho_miss, miss_sigma,
      corr_sigma, corr_shrink, corr_clip;
  size_t corr_components;
  size_t n_cop;
  size_t *cop; /* field index of copula member i */
  double *corr;
  /* Mixture (non-DP): the copula members' marginals per latent cluster;
   * n_comp 0 when the copula's own marginals are used. */
  size_t n_comp;
  struct fit_comp *comp;
  char *comp_name; /* the hidden cluster field of the spec */
  size_t mix_rejected, mix_rows; /* clusters dropped by the copy check */
  long mix_copies[2];            /* ... copies with and without them */
  char **qi;
  size_t n_qi;
  const ms_cancel_flag *cancel; /* from the params; polled by the sampler */
  ms__mst *mst; /* MST or AIM: the graphical model (gen/fit/mst.c); NULL otherwise */
  /* Under DP: the relations between dates and the orders between numbers kept by noisy tests
   * (dp_relations.c); rel.rho is spent off the top of rho */
  ms__dp_rel_acct rel;
  ms_fit_method method;     /* the model fitted */
  int method_auto;          /* chosen by --method auto ... */
  size_t n_coarse, n_columns_fitted; /* ... from the coarse columns among those fitted */
  int method_rows;          /* ... under DP from the released row count (AIM on a large table) */
};

/* One cluster of the mixture: its share of the rows and, per copula member,
 * a field whose marginal (fam, par, qp/qv, probs) is that of the cluster's
 * rows; the other members of the struct are copies of the global field's
 * (borrowed, not freed). */
typedef struct fit_comp {
  double w;
  size_t n;
  fit_field *f;
} fit_comp;

/* fit.c: the zCDP -> (epsilon, delta) conversion */
double ms__zcdp_delta(double rho, double eps);
double ms__zcdp_rho(double eps, double delta);

/* fit.c: the mixture's clusters, field names, labels of coarse fields */
void ms__fit_comps_free(fit_comp *comp, size_t n_comp, size_t n_cop);
char *ms__fit_field_name(const char *h, char *const *taken, size_t n);
int ms__fit_labelled(const fit_field *f);
const char *ms__fit_label_of(const fit_field *f, size_t l);

/* fit_marginal.c: shared helpers and the marginals */
/* The --bounds entry of column col (the last one naming it: the one that
 * applies), SIZE_MAX when it has none. */
size_t ms__fit_bound_of(const ms_fit_params *p, const char *col);
int ms__fit_cmp_double(const void *a, const void *b);
ms_rng_key ms__fit_dp_key(uint64_t seed, const char *col, const char *what);
size_t ms__fit_decimal_counts(const ms_frame_col *c, size_t n_rows, size_t cnt[MS_FRAME_DECIMALS_MAX + 1]);
double ms__fit_fam_cdf(const fit_field *f, double x);
double ms__fit_fam_inv(const fit_field *f, double u);
double ms__fit_numeric_draw(const fit_field *f, double u);
void ms__fit_bounds_to_precision(fit_field *f);
/* A gap that is never below 0 (a column drawn after its base): the fitted
 * marginal's values and bounds at 0 or above, then times scale (a
 * datetime's gap measured in seconds under DP: 1 / 86400, to days). */
void ms__fit_gap_nonnegative(fit_field *f, double scale);
ms_status ms__fit_k_bounds(const ms_frame_col *c, size_t n_rows, size_t k, int integer, int decimals, double *lo,
                           double *hi);
void ms__fit_dates_in_range(fit_field *f);
/* Under DP, after the labels are released: each categorical column that
 * another determines, and each label or flag set by bands of a number,
 * found by exponential mechanisms under at most rho zCDP (m->rel.fd_rho
 * spent); its fd_from and fd_emit, or band_from and its bands, set
 * (gen/fit/dp_fd.c). n_noisy: the released row count. */
ms_status ms__dp_fd(ms_fit_model *m, const ms_frame *data, int32_t **maps, double rho, double n_noisy,
                    uint64_t seed);
ms_status ms__fit_numeric_plain(fit_field *f, const ms_frame_col *c, size_t n_rows,
                                const ms_fit_params *p);
void ms__fit_normalise(double *p, size_t n);
ms_status ms__fit_categorical(fit_field *f, const ms_frame_col *c, size_t n_rows,
                              const ms_fit_params *p, double rho, double tau, int32_t *map,
                              double *noisy_total, const double *lit_val, const char *const *dom,
                              size_t n_dom);
ms_status ms__fit_bool(fit_field *f, const ms_frame_col *c, size_t n_rows,
                       const ms_fit_params *p, double rho, double *noisy_total);

/* fit_dp.c: DP numeric marginals */
double ms__fit_gauss(ms_rng_key k, uint64_t idx, double sigma);
ms_status ms__fit_numeric_dp(fit_field *f, const ms_frame_col *c, size_t n_rows, const ms_fit_params *p,
                             double rho, double z_thr, ms__dp_num **out, size_t *clamped);
ms_status ms__fit_numeric_dp_shape(fit_field *f, const ms__dp_num *m, double present_hat, double *noisy_total);
void ms__dp_num_free(ms__dp_num *m);

/* fit_copula.c: the copula and the mixture */
ms_status ms__fit_mixture(ms_fit_model *m, const ms_frame *data, int32_t **maps,
                          const ms_fit_params *p, int32_t **lab_out);
ms_status ms__fit_copula(ms_fit_model *m, const ms_frame *data, int32_t **maps,
                         const ms_fit_params *p, const int32_t *lab);

/* fit_missing.c: conditional missingness */
ms_status ms__fit_missingness(ms_fit_model *m, const ms_frame *data, int32_t **maps,
                              const ms_fit_params *p, double rho_avail);

#endif
