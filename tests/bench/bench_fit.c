/* Benchmark: fit and evaluate on a synthesised 100,000 x 30 table.
 *
 * The input has 24 numeric columns built from 4 latent factors (so the
 * copula has structure), 4 categorical and 2 bool columns; it is written to
 * CSV and read back so that the reader is timed too. Prints seconds per
 * stage and the peak resident set size (getrusage). Usage:
 *   bench_fit [rows] [threads]     (defaults 100000, OpenMP default) */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <gsl/gsl_errno.h>

#include "medsynth/eval.h"
#include "medsynth/fit.h"
#include "medsynth/records.h"
#include "medsynth/rng.h"
#include "../bench_fit_table.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static ms_status write_input(const char *path, size_t n, uint64_t seed) {
  FILE *fp = fopen(path, "w");
  if (!fp) return MS_ERR_IO;
  fprintf(fp, "%s\n", MS_BENCH_FIT_HEADER);
  ms_rng_key k = ms_rng_key_make(seed, ms_rng_stream("bench/input"));
  for (size_t i = 0; i < n; i++) ms_bench_fit_row(fp, k, i);
  return fclose(fp) ? MS_ERR_IO : MS_OK;
}

typedef struct {
  uint64_t rows;
} row_count;

static ms_status count_rows(void *ctx, const ms_chunk *c) {
  ((row_count *)ctx)->rows += c->n_rows;
  return MS_OK;
}

static double cpu_now(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec * 1e-6;
}

/* Rows per second of the records engine generating `rows` rows from the
 * fitted model's spec on 2 threads (values discarded); *per_cpu: rows per
 * CPU second of the process (steadier on a loaded machine). */
static double gen_rate(const ms_fit_model *m, uint64_t rows, ms_diag *d, double *per_cpu) {
  char *json = ms_fit_model_to_json(m);
  ms_spec *s = NULL;
  if (!json || ms_spec_load_string(&s, json, strlen(json), "fitted.json", d)) return -1;
  row_count rc = {0};
  ms_sink sink = {&rc, NULL, count_rows, NULL};
  ms_generate_params o;
  ms_generate_params_init(&o);
  o.rows = rows;
  o.threads = 2;
  double t0 = now(), c0 = cpu_now();
  ms_status st = ms_generate(s, &o, &sink, NULL, d);
  double dt = now() - t0;
  *per_cpu = (double)rows / (cpu_now() - c0);
  ms_spec_free(s);
  free(json);
  return st || rc.rows != rows ? -1 : (double)rows / dt;
}

int main(int argc, char **argv) {
  gsl_set_error_handler_off();
  size_t n = argc > 1 ? (size_t)atol(argv[1]) : 100000;
  if (argc > 2) omp_set_num_threads(atoi(argv[2]));
  const char *path = "bench_fit_input.csv";
  ms_diag d;
  ms_diag_init(&d);
  double t0 = now();
  if (write_input(path, n, 1)) return 1;
  double t1 = now();
  ms_frame *f = NULL, *syn = NULL;
  ms_fit_model *m = NULL;
  ms_eval_report *r = NULL;
  if (ms_frame_read_csv(&f, path, NULL, &d)) return 1;
  double t2 = now();
  if (ms_fit_model_new(&m, f, NULL, &d)) return 1;
  double t3 = now();
  ms_fit_params dp;
  ms_fit_params_init(&dp);
  dp.epsilon = 1;
  dp.method = MS_FIT_METHOD_COPULA; /* named: auto picks by the table's shape and row count */
  ms_fit_model *mdp = NULL;
  if (ms_fit_model_new(&mdp, f, &dp, &d)) return 1;
  double t4 = now(), t_dp = t4 - t3;
  ms_fit_params mp = dp;
  mp.method = MS_FIT_METHOD_MST;
  ms_fit_model *mmst = NULL;
  if (ms_fit_model_new(&mmst, f, &mp, &d)) return 1;
  double t4b = now(), t_mst = t4b - t4;
  mp.method = MS_FIT_METHOD_AIM;
  ms_fit_model *maim = NULL;
  if (ms_fit_model_new(&maim, f, &mp, &d)) return 1;
  double t_aim = now() - t4b;
  double cpu_mst, cpu_dp, cpu_aim;
  double rate_mst = gen_rate(mmst, 1000000, &d, &cpu_mst), rate_dp = gen_rate(mdp, 1000000, &d, &cpu_dp);
  double rate_aim = gen_rate(maim, 1000000, &d, &cpu_aim);
  if (rate_mst < 0 || rate_dp < 0 || rate_aim < 0) return 1;
  t4 = now(); /* the stages below start here */
  if (ms_fit_model_sample(&syn, m, n, 2, 0, &d)) return 1;
  double t5 = now();
  ms_eval_params ep;
  ms_eval_params_init(&ep);
  ep.target = "b0";
  if (ms_eval_report_new(&r, f, NULL, syn, &ep, "bench_fit_report", &d)) {
    char *s = ms_diag_format(&d);
    fputs(s, stderr);
    free(s);
    return 1;
  }
  double t6 = now();
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("bench_fit: %zu rows x %zu columns, %d threads\n", f->n_rows, f->n_cols, omp_get_max_threads());
  printf("  write input CSV        %7.2f s\n", t1 - t0);
  printf("  read + infer kinds     %7.2f s\n", t2 - t1);
  printf("  fit (k-threshold)      %7.2f s\n", t3 - t2);
  printf("  fit (epsilon = 1, cop) %7.2f s\n", t_dp);
  printf("  fit (epsilon = 1, mst) %7.2f s\n", t_mst);
  printf("  fit (epsilon = 1, aim) %7.2f s\n", t_aim);
  printf("  records from the fitted spec, 10^6 rows, 2 threads: mst %.0f rows/s (%.0f per CPU s), "
         "aim %.0f rows/s (%.0f per CPU s), copula (epsilon = 1) %.0f rows/s (%.0f per CPU s)\n",
         rate_mst, cpu_mst, rate_aim, cpu_aim, rate_dp, cpu_dp);
  printf("  sample %zu rows     %7.2f s\n", n, t5 - t4);
  printf("  evaluate (with plots)  %7.2f s   (pMSE score %.3f, marginals %.3f)\n", t6 - t5,
         ms_eval_report_number(r, "utility.pmse_score"),
         ms_eval_report_number(r, "utility.marginal_similarity"));
  printf("  peak RSS               %7.1f MiB\n", ru.ru_maxrss / 1024.0);
  ms_eval_report_free(r);
  ms_frame_free(syn);
  ms_fit_model_free(m);
  ms_fit_model_free(mdp);
  ms_fit_model_free(mmst);
  ms_fit_model_free(maim);
  ms_frame_free(f);
  ms_diag_deinit(&d);
  remove(path);
  return 0;
}
