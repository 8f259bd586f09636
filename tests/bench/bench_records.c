/* Benchmark: record generation speed (no output) for an outpatient-like spec
 * of 16 fields (ids, template, categoricals, truncated normals with
 * expression parameters, a when rule, a copula pair, derived values, a date,
 * missingness), N root rows, 1 and 2 threads.
 *
 * Usage: bench_records [--level=L] [N] [threads...]
 *        (default L = 1, N = 1000000, threads 1 2)
 * For each thread count prints two lines: generation alone (a sink that only
 * hashes the values; the xxh64 must be the same on every line, as thread
 * count never changes a byte) and end to end into an HDF5 file with deflate
 * level L (argument --level=L; default 1, the records command's default) in
 * $TMPDIR (default /tmp), removed afterwards.
 * Figures go to docs/performance.md with the exact command. */
#include <gsl/gsl_errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <xxhash.h>

#include "medsynth/io.h"
#include "medsynth/records.h"

static const char *k_spec =
    "{\"medsynth\": 1, \"seed\": 1,"
    " \"constants\": {\"reference_date\": \"2025-01-01\"},"
    " \"tables\": [{\"name\": \"visits\", \"rows\": 1000, \"fields\": ["
    "  {\"name\": \"patient_id\", \"kind\": \"id\", \"format\": \"hash\", \"prefix\": \"P\", \"width\": 10},"
    "  {\"name\": \"row_no\", \"kind\": \"id\", \"format\": \"seq\"},"
    "  {\"name\": \"mrn\", \"kind\": \"string\", \"template\": \"MRN-{seq:08}\"},"
    "  {\"name\": \"sex\", \"kind\": \"categorical\", \"values\": {\"F\": 0.508, \"M\": 0.492}},"
    "  {\"name\": \"age\", \"kind\": \"integer\", \"dist\": {\"type\": \"uniform\", \"low\": 18, \"high\": 90}},"
    "  {\"name\": \"height_cm\", \"kind\": \"real\", \"precision\": 1, \"dist\": {\"type\": \"normal\", \"mean\": 162, \"sd\": 7},"
    "   \"when\": [{\"if\": \"sex == 'M'\", \"dist\": {\"type\": \"normal\", \"mean\": 176, \"sd\": 7.5}}], \"min\": 138, \"max\": 205},"
    "  {\"name\": \"weight_kg\", \"kind\": \"real\", \"precision\": 1, \"dist\": {\"type\": \"normal\", \"mean\": \"height_cm - 95\", \"sd\": 12}, \"min\": 35, \"max\": 200},"
    "  {\"name\": \"bmi\", \"kind\": \"real\", \"precision\": 1, \"expr\": \"weight_kg / (height_cm/100)^2\"},"
    "  {\"name\": \"sbp\", \"kind\": \"integer\", \"dist\": {\"type\": \"normal\", \"mean\": \"105 + 0.45*age\", \"sd\": 15}, \"min\": 80, \"max\": 220},"
    "  {\"name\": \"dbp\", \"kind\": \"integer\", \"dist\": {\"type\": \"normal\", \"mean\": 78, \"sd\": 10}, \"min\": 40, \"max\": 130},"
    "  {\"name\": \"hr\", \"kind\": \"integer\", \"dist\": {\"type\": \"normal\", \"mean\": 74, \"sd\": 11}, \"min\": 35, \"max\": 180},"
    "  {\"name\": \"smoker\", \"kind\": \"bool\", \"p\": 0.18},"
    "  {\"name\": \"visit_type\", \"kind\": \"categorical\", \"values\": {\"office\": 0.7, \"telehealth\": 0.2, \"urgent\": 0.1}},"
    "  {\"name\": \"visit_date\", \"kind\": \"date\", \"base\": \"date(reference_date)\", \"offset_days\": {\"type\": \"uniform\", \"low\": -365, \"high\": 0}},"
    "  {\"name\": \"hba1c\", \"kind\": \"real\", \"precision\": 1, \"dist\": {\"type\": \"lognormal\", \"meanlog\": 1.70, \"sdlog\": 0.12}, \"missing\": 0.3},"
    "  {\"name\": \"ldl\", \"kind\": \"real\", \"precision\": 0, \"dist\": {\"type\": \"normal\", \"mean\": 115, \"sd\": 30}, \"min\": 30}"
    " ], \"correlations\": [{\"fields\": [\"sbp\", \"dbp\"], \"matrix\": [[1, 0.6], [0.6, 1]]}]}]}";

typedef struct {
  XXH64_state_t *h;
  uint64_t rows;
} discard;

/* Discards values but hashes them, so the work cannot be optimised away and
 * runs can be compared. */
static ms_status d_write(void *ctx, const ms_chunk *c) {
  discard *d = ctx;
  for (size_t j = 0; j < c->schema->n_columns; j++)
    XXH64_update(d->h, c->cols[j].data, c->n_rows * ms_column_value_size(&c->schema->columns[j]));
  d->rows += c->n_rows;
  return MS_OK;
}

/* CPU seconds of the process (all threads): on a shared, loaded machine the
 * rows per CPU-second are steadier than wall-clock rates. */
static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec * 1e-6;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  gsl_set_error_handler_off();
  int level = 1;
  if (argc > 1 && !strncmp(argv[1], "--level=", 8)) {
    level = atoi(argv[1] + 8);
    argv++;
    argc--;
  }
  uint64_t N = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
  int threads[16] = {1, 2};
  int nt = 2;
  if (argc > 2) {
    nt = 0;
    for (int i = 2; i < argc && nt < 16; i++) threads[nt++] = atoi(argv[i]);
  }
  ms_diag d;
  ms_diag_init(&d);
  ms_spec *s = NULL;
  if (ms_spec_load_string(&s, k_spec, strlen(k_spec), "bench.json", &d) != MS_OK) {
    char *t = ms_diag_format(&d);
    fputs(t, stderr);
    free(t);
    return 1;
  }
  printf("bench_records: %zu fields, N = %" PRIu64 "\n", ms_spec_table_schema(s, 0)->n_columns, N);
  for (int i = 0; i < nt; i++) {
    discard dc = {XXH64_createState(), 0};
    XXH64_reset(dc.h, 0);
    ms_sink sink = {&dc, NULL, d_write, NULL};
    ms_generate_params o;
    ms_generate_params_init(&o);
    o.rows = N;
    o.threads = threads[i];
    double t0 = now_s(), c0 = cpu_s();
    ms_status st = ms_generate(s, &o, &sink, NULL, &d);
    double dt = now_s() - t0, dc_s = cpu_s() - c0;
    if (st != MS_OK) {
      char *t = ms_diag_format(&d);
      fputs(t, stderr);
      free(t);
      return 1;
    }
    printf("threads %d: %" PRIu64 " rows in %.3f s = %.0f rows/s (%.3f CPU s, %.0f rows per CPU s)"
           "  xxh64 %016" PRIx64 "\n",
           threads[i], dc.rows, dt, (double)dc.rows / dt, dc_s, (double)dc.rows / dc_s,
           XXH64_digest(dc.h));
    XXH64_freeState(dc.h);

    /* end to end: the same rows into a compressed HDF5 file */
    char path[4096];
    const char *tmpdir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/bench_records_%d.h5", tmpdir && *tmpdir ? tmpdir : "/tmp", threads[i]);
    ms_writer_params wo;
    ms_writer_params_init(&wo);
    wo.format = MS_FMT_HDF5;
    wo.force = 1;
    wo.compression = level;
    wo.threads = threads[i];
    wo.no_timestamp = 1;
    ms_writer *w = NULL;
    t0 = now_s();
    c0 = cpu_s();
    if (ms_writer_open(&w, path, &wo, &d) != MS_OK) {
      char *t = ms_diag_format(&d);
      fputs(t, stderr);
      free(t);
      return 1;
    }
    ms_sink ws = ms_writer_sink(w);
    st = ms_generate(s, &o, &ws, NULL, &d);
    if (st == MS_OK) st = ms_writer_commit(w, &d);
    else ms_writer_abort(w);
    dt = now_s() - t0;
    dc_s = cpu_s() - c0;
    if (st != MS_OK) {
      char *t = ms_diag_format(&d);
      fputs(t, stderr);
      free(t);
      return 1;
    }
    printf("threads %d: to HDF5 (deflate %d): %.3f s = %.0f rows/s (%.3f CPU s)\n", threads[i],
           level, dt, (double)N / dt, dc_s);
    remove(path);
  }
  ms_spec_free(s);
  ms_diag_deinit(&d);
  return 0;
}
