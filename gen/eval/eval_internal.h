/* Private pieces of the evaluator: k-d tree nearest neighbours, ridge
 * logistic/linear regression, and the cairo plots.
 *
 * Invariants: every routine is deterministic for any OpenMP thread count --
 * queries are independent and write their own slots; reductions run over
 * fixed row blocks combined in block order. */
#ifndef MS_EVAL_INTERNAL_H
#define MS_EVAL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "medsynth/status.h"

/* ---- k-d tree (Bentley 1975; Friedman, Bentley & Finkel 1977) ---- */
typedef struct ms__kdtree ms__kdtree;
/* Builds over n points of dimension dim (row-major, borrowed for the tree's
 * lifetime). */
ms_status ms__kdtree_new(ms__kdtree **out, const double *pts, size_t n, size_t dim);
void ms__kdtree_free(ms__kdtree *t);
/* For each of nq query points: distances (Euclidean) and indices of the k
 * (1 or 2) nearest points, ties broken by the smaller index. dist/idx hold
 * nq*k entries. Missing neighbours (n < k) get INFINITY / SIZE_MAX. */
void ms__kdtree_query(const ms__kdtree *t, const double *q, size_t nq, int k, double *dist,
                      size_t *idx);

/* ---- exact nearest neighbours (gen/eval/nn.c) ----
 * A k-d tree up to MS__NN_KDTREE_MAX_DIM dimensions, above it a blocked
 * SGEMM scan re-ranked exactly in double (brute force when the points are
 * not finite or too large for float). Results equal the brute-force answer
 * (Euclidean, ties to the smaller index) for any method and thread count. */
typedef enum { MS__NN_AUTO, MS__NN_KDTREE, MS__NN_GEMM, MS__NN_BRUTE, MS__NN_COUNT } ms__nn_method;
#define MS__NN_KDTREE_MAX_DIM 14
typedef struct ms__nn ms__nn;
/* pts: n x dim row-major, borrowed for the index's lifetime. */
ms_status ms__nn_new(ms__nn **out, const double *pts, size_t n, size_t dim, ms__nn_method method);
void ms__nn_free(ms__nn *t);
ms__nn_method ms__nn_method_used(const ms__nn *t);
/* As ms__kdtree_query (k = 1 or 2; idx may be NULL). MS_ERR_NOMEM or
 * MS_ERR_INVALID on failure. */
ms_status ms__nn_query(const ms__nn *t, const double *q, size_t nq, int k, double *dist,
                       size_t *idx);

/* ---- regression ---- */
/* Ridge-penalised logistic regression by Newton/IRLS. X is n x p row-major
 * (no intercept column: one is added), y in {0,1}. beta gets p+1 entries
 * (intercept first). lambda penalises all but the intercept. */
ms_status ms__logreg_fit(double *beta, const double *X, const double *y, size_t n, size_t p,
                         double lambda);
double ms__logreg_prob(const double *beta, const double *x, size_t p);
/* Ridge linear regression (normal equations). */
ms_status ms__linreg_fit(double *beta, const double *X, const double *y, size_t n, size_t p,
                         double lambda);
double ms__linreg_predict(const double *beta, const double *x, size_t p);

/* ---- plots (cairo, PNG) ---- */
/* Each writes one PNG through ms__atomic_write; dg gets the reason of a
 * failure. */
ms_status ms__plot_hist(const char *path, const char *title, const char *xlabel, const double *a,
                        size_t na, const double *b, size_t nb, const char *la, const char *lb,
                        ms_diag *dg);
ms_status ms__plot_bars(const char *path, const char *title, const char *const *labels, size_t nl,
                        const double *fa, const double *fb, const char *la, const char *lb,
                        ms_diag *dg);
ms_status ms__plot_heatmaps(const char *path, const char *const *names, size_t d, const double *A,
                            const double *B, const char *ta, const char *tb, ms_diag *dg);

/* Releases cairo's and fontconfig's process-wide font caches. */
void ms__plot_release_fonts(void);

#endif
