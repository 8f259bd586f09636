/* Utility and privacy evaluation of a synthetic table against the real
 * training table (and optionally a holdout drawn from the same population).
 *
 * Usage:
 *   ms_eval_params ep; ms_eval_params_init(&ep);
 *   ep.target = "diagnosis";
 *   ms_eval_report *rep = NULL;
 *   if (ms_eval_report_new(&rep, train, holdout, syn, &ep, "report/", &diag) != MS_OK) ...;
 *   double auc = ms_eval_report_number(rep, "privacy.mia_auc");
 *   ms_eval_verdict v = ms_eval_report_verdict(rep);   // worst section
 *   ms_eval_report_free(rep);
 *
 * Frames come from ms_frame_read_csv (medsynth/fit.h). The synthetic and
 * holdout frames must have the training frame's columns (identifier columns
 * may be absent or extra); read them with the training kinds forced, as
 * `medsynth evaluate` does. Metrics, thresholds and their meaning:
 * docs/evaluate.md. The report is derived from the real data and is as
 * sensitive as it.
 *
 * Ownership: ms_eval_report_new creates the report; ms_eval_report_free releases
 * it. Strings returned by accessors are borrowed from the report. */
#ifndef MEDSYNTH_EVAL_H
#define MEDSYNTH_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "medsynth/fit.h"
#include "medsynth/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { MS_VERDICT_PASS, MS_VERDICT_WARN, MS_VERDICT_FAIL, MS_VERDICT_COUNT } ms_eval_verdict;
const char *ms_eval_verdict_name(ms_eval_verdict v);

typedef struct {
  const char *target;                   /* TSTR target column; NULL: skip */
  const char *const *quasi_identifiers; /* NULL: skip k-anonymity */
  size_t n_quasi_identifiers;
  const char *const *subgroups;         /* categorical/bool columns whose groups are
                                         * compared (share, TSTR); NULL: skip */
  size_t n_subgroups;
  size_t max_privacy_rows; /* query rows for distance metrics: 10000 */
  size_t max_pmse_rows;    /* rows per side for the pMSE classifier: 20000 */
  uint64_t seed;           /* row subsampling key: 0 */
  int plots;               /* write PNG plots: 1 */
  size_t max_plot_columns; /* 40 */
  const ms_cancel_flag *cancel; /* polled between sections and plots; NULL: never */
} ms_eval_params;

void ms_eval_params_init(ms_eval_params *p);

typedef struct ms_eval_report ms_eval_report;

/* Computes every metric; when outdir is not NULL writes outdir/report.json,
 * outdir/report.md and the PNG plots. The folder is staged (medsynth/output.h):
 * a new one appears complete or not at all; into an existing one each file
 * is moved at the end. On any failure, or MS_ERR_CANCELLED, nothing is left.
 * Mismatched columns are MS_ERR_DATA with one message per column. */
ms_status ms_eval_report_new(ms_eval_report **out, const ms_frame *train, const ms_frame *holdout,
                      const ms_frame *synthetic, const ms_eval_params *p, const char *outdir,
                      ms_diag *d);
void ms_eval_report_free(ms_eval_report *r);

/* A figure by dotted path ("utility.pmse", "privacy.exact_copy_rate");
 * NaN when absent. */
double ms_eval_report_number(const ms_eval_report *r, const char *path);
/* The worst verdict over all sections. */
ms_eval_verdict ms_eval_report_verdict(const ms_eval_report *r);
/* report.json and report.md text. */
const char *ms_eval_report_json(const ms_eval_report *r);
const char *ms_eval_report_markdown(const ms_eval_report *r);

#ifdef __cplusplus
}
#endif
#endif
