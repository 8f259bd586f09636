/* Learning a record spec from a real table: CSV reading with type inference
 * (a "frame"), marginal and Gaussian-copula fitting with optional
 * differential privacy, and the fitted model written as a spec (docs/spec.md)
 * that can be reviewed, edited and generated with `medsynth records`.
 *
 * Usage:
 *   ms_csv_params co; ms_csv_params_init(&co);
 *   ms_frame *real = NULL;
 *   if (ms_frame_read_csv(&real, "real.csv", &co, &diag) != MS_OK) ...;
 *   ms_fit_params fp; ms_fit_params_init(&fp);
 *   fp.epsilon = 1.0;                        // 0: no differential privacy
 *   ms_fit_model *m = NULL;
 *   if (ms_fit_model_new(&m, real, &fp, &diag) != MS_OK) ...;
 *   char *json = ms_fit_model_to_json(m);     // the spec text
 *   ms_frame *syn = NULL;
 *   ms_fit_model_sample(&syn, m, 1000, 42, 0, &diag);  // reference sampler
 *   free(json); ms_frame_free(syn); ms_fit_model_free(m); ms_frame_free(real);
 *
 * Privacy rules of the non-DP fit (docs/privacy.md): no quantile knot and no
 * bound is a single real value (each is the mean of at least k order
 * statistics, unless at least k rows hold that value), categories seen in
 * fewer than k rows are left out, identifier columns are replaced by fresh
 * ids in their pattern and free text by a placeholder. The spec writes each
 * column back in the input's shape (labels, number and date formats;
 * docs/fit.md). With epsilon > 0 every
 * released number is a post-processed output of a Laplace or Gaussian
 * mechanism (with MS_FIT_METHOD_MST also an exponential mechanism choosing
 * the tree) keyed by the seed; the budget split is recorded in the spec.
 *
 * Ownership: *_read / ms_fit_model_new / *_sample create objects the caller releases
 * with the matching *_free (NULL is a no-op). Strings returned by
 * ms_fit_model_to_json are malloc'd and freed by the caller. Pointers into a
 * frame or model are borrowed until it is freed. */
#ifndef MEDSYNTH_FIT_H
#define MEDSYNTH_FIT_H

#include <stddef.h>
#include <stdint.h>

#include "medsynth/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Column kinds, named as the spec language's field kinds. */
typedef enum {
  MS_FKIND_ID,
  MS_FKIND_CATEGORICAL,
  MS_FKIND_INTEGER,
  MS_FKIND_REAL,
  MS_FKIND_DATE,
  MS_FKIND_BOOL,
  MS_FKIND_COUNT
} ms_fkind;

const char *ms_fkind_name(ms_fkind k);
/* MS_FKIND_COUNT when unknown. */
ms_fkind ms_fkind_from_name(const char *name);

/* One column. Numeric kinds (integer, real, date as days since 1970-01-01,
 * bool as 0/1) use `num` with NaN for missing; categorical and id use `code`
 * (index into levels, -1 for missing). */
typedef struct {
  char *name;
  ms_fkind kind;
  double *num;
  int32_t *code;
  size_t n_levels;
  char **levels;
  size_t n_missing;
  int decimals; /* most decimals seen in a real column's text (0..9) */
  /* How the input writes the column (from the CSV text, or the format an
   * HDF5 schema records; NULL/0 otherwise), so that
   * a fitted spec writes it back the same way (docs/fit.md): */
  char *bool_text[2];  /* bool: the spelling of false and true (NULL: unseen) */
  int real_style;      /* real: 0 every value with `decimals` decimals, 1 trailing
                        * zeros dropped, 2 dropped but whole numbers keep ".0";
                        * -1 unknown (HDF5 without a recorded format) */
  char *date_format;   /* date: pattern of ms_datetime_format_pattern, NULL: ISO */
  int has_time;        /* date: values carry a time of day (num = fractional days) */
  /* integer/real with at most MS_FRAME_DISCRETE_MAX distinct values: those
   * values in increasing order and the first spelling of each. */
  size_t n_lit;
  double *lit_val;
  char **lit_text;
} ms_frame_col;

/* Most distinct values a numeric column may have to be discrete. */
#define MS_FRAME_DISCRETE_MAX 20

typedef struct {
  char *source; /* file name, for messages */
  size_t n_rows;
  size_t n_cols;
  ms_frame_col *cols;
} ms_frame;

/* A per-column kind override: "col=kind". */
typedef struct {
  const char *column;
  ms_fkind kind;
  /* kind date: the pattern to read it with (ms_datetime_format_pattern);
   * NULL: decided from the data. Zero-initialise overrides. evaluate passes
   * the real table's patterns. */
  const char *date_format;
} ms_type_override;

typedef struct {
  char delimiter;                     /* 0: detected from the header (',', ';', tab) */
  /* Dates: a pattern (ms_datetime_format_pattern) to read every date column
   * with when its values fit both month/day orders; NULL: such a column is an
   * error naming the choices. */
  const char *date_format;
  const char *const *na_values;       /* NULL: "", NA, N/A, NaN, nan, NULL, null, ? */
  size_t n_na_values;
  const ms_type_override *types;      /* forced kinds */
  size_t n_types;
  const char *const *id_columns;      /* columns forced to kind id */
  size_t n_id_columns;
  /* A text column with more than this share of distinct values among at
   * least 20 present rows is an identifier. 0: 0.5. */
  double id_distinct_share;
  /* An all-integer column with at most this many distinct values (other than
   * {0,1}, which is bool) becomes categorical. 0: 2. */
  size_t int_categorical_max;
  /* 1: `types` and `id_columns` may name columns the file lacks (they are
   * ignored), for imposing one table's kinds on another. */
  int lenient_types;
} ms_csv_params;

void ms_csv_params_init(ms_csv_params *o);

/* Reads a CSV file (RFC 4180: quoted fields with "" escapes and embedded
 * newlines, header row, CRLF or LF, UTF-8 with optional BOM) and infers each
 * column's kind. Every ragged row, invalid UTF-8 sequence, NUL byte and unparsable
 * forced-kind value is reported as file:line:column; then MS_ERR_DATA.
 * An empty file or a header without data rows is MS_ERR_DATA; a missing file
 * MS_ERR_NOTFOUND. */
ms_status ms_frame_read_csv(ms_frame **out, const char *path, const ms_csv_params *opts, ms_diag *d);
/* The same from bytes in memory (`name` is used in messages). */
ms_status ms_frame_parse_csv(ms_frame **out, const char *text, size_t len, const char *name,
                             const ms_csv_params *opts, ms_diag *d);
void ms_frame_free(ms_frame *f);

/* Reads table `table` (NULL: the file's only table) of a medsynth HDF5 file
 * (medsynth/io.h reader) into a frame. Kinds follow the stored column types:
 * int64 -> integer, float64 -> real (decimals from the column's precision,
 * else the fewest that print every value), bool -> bool, categorical ->
 * categorical (levels in the declared order), date -> date, string -> id
 * when more than opts->id_distinct_share of at least 20 present values are
 * distinct, else categorical; foreign-key (ref) columns -> id. Datetime
 * columns are skipped with a warning. Missing entries come from the stored
 * validity (missing tokens are not applied). opts->types / id_columns force
 * kinds as for CSV; a stored value the forced kind cannot hold is reported
 * as path:table/row:column. A file with several tables and no `table` is
 * MS_ERR_INVALID naming them; an unknown table MS_ERR_NOTFOUND. */
ms_status ms_frame_read_h5(ms_frame **out, const char *path, const char *table,
                           const ms_csv_params *opts, ms_diag *d);
/* ms_frame_read_h5 for .h5/.hdf5 paths, else ms_frame_read_csv (`table`
 * must then be NULL or is ignored). */
ms_status ms_frame_read(ms_frame **out, const char *path, const char *table,
                        const ms_csv_params *opts, ms_diag *d);

/* Index of a column by name, or SIZE_MAX. */
size_t ms_frame_find(const ms_frame *f, const char *name);
/* Writes the frame as CSV (missing as empty) through a temporary file renamed
 * on success. */
ms_status ms_frame_write_csv(const ms_frame *f, const char *path, ms_diag *d);
/* Formats cell (row, col) into buf (cap bytes); "" when missing. */
void ms_frame_cell_text(const ms_frame *f, size_t row, size_t col, char *buf, size_t cap);

/* The mechanism behind `fit --epsilon` (docs/privacy.md): noisy marginals
 * joined by a noisy Gaussian copula, or MST (noisy 2-way marginals on a
 * privately chosen spanning tree of the columns). */
/* MS_FIT_METHOD_AUTO (the default): AIM when enough columns are coarse
 * (categorical, bool, or without DP at most MS_FRAME_DISCRETE_MAX distinct
 * values): at least 40 % of them without DP, half under DP (categorical
 * and bool only: the distinct-value count is not released), or with a
 * rebalanced column; the copula otherwise (docs/fit.md, "Which model"). */
typedef enum { MS_FIT_METHOD_COPULA, MS_FIT_METHOD_MST, MS_FIT_METHOD_AIM, MS_FIT_METHOD_AUTO, MS_FIT_METHOD_COUNT } ms_fit_method;

const char *ms_fit_method_name(ms_fit_method m);
/* MS_FIT_METHOD_COUNT when unknown. */
ms_fit_method ms_fit_method_from_name(const char *name);

typedef struct {
  size_t k_min;            /* smallest group any released figure describes: 5 */
  double epsilon;          /* > 0: differential privacy with this budget; 0: off */
  double delta;            /* DP delta; used only with epsilon; 0: 1e-6 */
  uint64_t seed;           /* keys all DP noise: 0 */
  const char *name;        /* spec "name" ("fitted") */
  const char *table;       /* table name ("data") */
  size_t max_knots;        /* quantile knots per numeric column: 41 */
  int parametric;          /* 1: try normal/lognormal/gamma/exponential by AIC (non-DP) */
  int copula;              /* 1: fit the correlation group */
  int mixture;             /* 1: let the copula's marginals depend on a latent cluster
                            *    when that explains the rows better (non-DP; docs/fit.md) */
  /* Public bounds for numeric columns under DP ("--bounds age=18:90"). */
  const char *const *bound_columns;
  const double *bound_lo;
  const double *bound_hi;
  size_t n_bounds;
  /* Public orders ("--order worst_radius>=mean_radius"): column
   * order_after[i] is never below order_before[i] (both numbers or both
   * dates); it is drawn as order_before[i] plus a gap that is fitted, under
   * DP as without (docs/fit.md, "Declared orders"). */
  const char *const *order_after;
  const char *const *order_before;
  size_t n_orders;
  /* Public domains of categorical columns ("--domain sex=F,M"): column i's
   * labels are domain_values[domain_first[i] .. domain_first[i + 1]). Under
   * DP a public domain's labels are all measured (no threshold, none
   * dropped) and values outside it are dropped; without DP the k rule still
   * applies to each label. */
  const char *const *domain_columns;
  const char *const *domain_values;
  const size_t *domain_first; /* n_domains + 1 offsets */
  size_t n_domains;
  /* Rebalancing ("--rebalance sex=uniform"): the column whose marginal is
   * replaced by rebalance_weights (n_rebalance_weights in the order of
   * rebalance_labels, or all labels equal when n_rebalance_weights is 0),
   * every other column keeping its relation to it (MST only). */
  const char *rebalance_column;
  const char *const *rebalance_labels; /* NULL: weights in the fitted label order */
  const double *rebalance_weights;
  size_t n_rebalance_weights;
  /* Quasi-identifier columns whose combinations must be k-anonymous in any
   * released cross-tabulation (recorded in the spec's privacy block). */
  const char *const *quasi_identifiers;
  size_t n_quasi_identifiers;
  /* Polled by ms_fit_model_sample of the fitted model, once per row
   * (medsynth/status.h): borrowed for the model's life. NULL: never. */
  const ms_cancel_flag *cancel;
  ms_fit_method method; /* MS_FIT_METHOD_AUTO (default), _COPULA, _MST or _AIM */
} ms_fit_params;

void ms_fit_params_init(ms_fit_params *p);

typedef struct ms_fit_model ms_fit_model;

/* Fits a model to `data`. Fails with MS_ERR_DATA (and a message naming the
 * column) when there are fewer than 2*k_min rows or a column's name cannot
 * name a spec field (letters, digits and _, not starting with a digit, at
 * most 63 characters, not "parent"), or MS_ERR_INVALID for epsilon < 0,
 * delta outside [0, 1) or such a table name. Warnings (all-missing or constant
 * columns, dropped columns) go to d with MS_OK. */
ms_status ms_fit_model_new(ms_fit_model **out, const ms_frame *data, const ms_fit_params *p, ms_diag *d);
void ms_fit_model_free(ms_fit_model *m);

/* The spec (JSON text, 2-space indented). Caller frees. NULL when out of
 * memory. */
char *ms_fit_model_to_json(const ms_fit_model *m);
/* Human summary of the privacy accounting (one line per item). Caller frees. */
char *ms_fit_model_accounting(const ms_fit_model *m);

/* Number of fields and the fitted correlation matrix (n x n, row-major,
 * borrowed) over the copula fields, whose names are given by
 * ms_fit_model_copula_field(). */
size_t ms_fit_model_n_copula(const ms_fit_model *m);
/* Clusters of the mixture (docs/fit.md, Clusters); 1 when the copula's own
 * marginals hold for every row. */
size_t ms_fit_model_n_clusters(const ms_fit_model *m);
const char *ms_fit_model_copula_field(const ms_fit_model *m, size_t i);
const double *ms_fit_model_correlation(const ms_fit_model *m);

/* Reference sampler: draws n rows from the fitted model (marginals through
 * their inverse CDFs driven by the copula; `independent` = 1 ignores the
 * correlations, for the independent-marginals baseline). Every draw is keyed
 * by (seed, "fit/sample/<column>", row), so the output is a pure function of
 * (model, n, seed, independent). Id columns get sequential ids. */
ms_status ms_fit_model_sample(ms_frame **out, const ms_fit_model *m, size_t n, uint64_t seed,
                              int independent, ms_diag *d);

#ifdef __cplusplus
}
#endif
#endif
