/* Benchmark: the outpatient example (schemas/examples/outpatient.json, 23
 * columns) end to end, next to the Faker reference in the same run.
 *
 * Usage (from the source directory):
 *   bench_outpatient [N] [N_BIG] [FAKER_ROWS] [SPEC] [FAKER_SCRIPT]
 * defaults: 1000000 10000000 100000 schemas/examples/outpatient.json
 *           tests/bench/faker_outpatient.py; N_BIG = 0 or FAKER_ROWS = 0
 * skips that run. Outputs go to $TMPDIR (default /tmp) and are removed.
 *
 * Every run is a forked child (the Faker run an exec of /usr/bin/python3),
 * measured by the parent with wait4: wall time, CPU seconds (user + system,
 * all threads) and peak RSS of that run alone. On a shared, loaded machine
 * CPU seconds per 10^6 rows are the steady figure; wall-clock rates depend
 * on what else runs. Runs:
 *   generation only (a sink that hashes the values), 1 and 2 threads;
 *   to HDF5 at deflate 1 (the command's default), 1 and 2 threads;
 *   to HDF5 uncompressed and at deflate 4, 1 thread (what compression
 *   costs); deflate 4, 2 threads; to CSV, 2 threads;
 *   to HDF5 at deflate 1, 2 threads, N_BIG rows (peak RSS against N);
 *   Faker + random, one row at a time, to CSV (FAKER_ROWS rows).
 * The generation-only xxh64 is printed for each thread count and must match.
 * Figures go to docs/performance.md (Records) with the exact command. */
#include <gsl/gsl_errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "medsynth/io.h"
#include "medsynth/records.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* One xxh64 stream per column, so that the hash does not depend on how
 * rows are cut into chunks (which varies with the thread count). */
#define HS_MAX_COLS 256
typedef struct {
  XXH64_state_t *h[HS_MAX_COLS];
  uint64_t rows;
} hsink;

static ms_status h_write(void *ctx, const ms_chunk *c) {
  hsink *d = ctx;
  if (c->schema->n_columns > HS_MAX_COLS) return MS_ERR_UNSUPPORTED;
  for (size_t j = 0; j < c->schema->n_columns; j++) {
    if (!d->h[j]) {
      if (!(d->h[j] = XXH64_createState())) return MS_ERR_NOMEM;
      XXH64_reset(d->h[j], 0);
    }
    XXH64_update(d->h[j], c->cols[j].data, c->n_rows * ms_column_value_size(&c->schema->columns[j]));
  }
  d->rows += c->n_rows;
  return MS_OK;
}

/* xxh64 over the column digests in column order; frees the states. */
static uint64_t h_digest(hsink *d) {
  uint64_t dig[HS_MAX_COLS];
  size_t k = 0;
  for (; k < HS_MAX_COLS && d->h[k]; k++) {
    dig[k] = XXH64_digest(d->h[k]);
    XXH64_freeState(d->h[k]);
  }
  return XXH64(dig, k * sizeof *dig, 0);
}

static int fail(ms_diag *d) {
  char *t = ms_diag_format(d);
  fputs(t, stderr);
  free(t);
  return 1;
}

/* One medsynth run in the child: fmt 0 = hash only, else the writer format
 * with deflate `level`. Prints the hash for hash-only runs. */
static int child_run(const char *spec, uint64_t n, int threads, int fmt, int level,
                     const char *path) {
  gsl_set_error_handler_off();
  ms_diag d;
  ms_diag_init(&d);
  ms_spec *s = NULL;
  if (ms_spec_load(&s, spec, &d) != MS_OK) return fail(&d);
  ms_generate_params o;
  ms_generate_params_init(&o);
  o.rows = n;
  o.threads = threads;
  ms_status st;
  if (!fmt) {
    hsink h = {{NULL}, 0};
    ms_sink sink = {&h, NULL, h_write, NULL};
    st = ms_generate(s, &o, &sink, NULL, &d);
    uint64_t dig = h_digest(&h);
    if (st == MS_OK) printf("    xxh64 of the values %016" PRIx64 "\n", dig);
  } else {
    ms_writer_params wo;
    ms_writer_params_init(&wo);
    wo.format = fmt == 1 ? MS_FMT_HDF5 : MS_FMT_CSV;
    wo.force = 1;
    wo.compression = level;
    wo.threads = threads;
    wo.no_timestamp = 1;
    ms_writer *w = NULL;
    if (ms_writer_open(&w, path, &wo, &d) != MS_OK) return fail(&d);
    ms_sink ws = ms_writer_sink(w);
    st = ms_generate(s, &o, &ws, NULL, &d);
    if (st == MS_OK)
      st = ms_writer_commit(w, &d);
    else
      ms_writer_abort(w);
  }
  if (st != MS_OK) return fail(&d);
  ms_spec_free(s);
  ms_diag_deinit(&d);
  fflush(stdout);
  return 0;
}

typedef struct {
  double wall, cpu;
  long rss_kb;
  int ok;
} meas;

/* Runs fn in a child (or execs argv when fn is NULL) and measures it. */
static meas measure(const char *spec, uint64_t n, int threads, int fmt, int level,
                    const char *path, char *const *argv) {
  meas m = {0};
  fflush(stdout);
  double t0 = now_s();
  pid_t pid = fork();
  if (pid < 0) return m;
  if (pid == 0) {
    if (argv) {
      execv(argv[0], argv);
      perror(argv[0]);
      _exit(127);
    }
    _exit(child_run(spec, n, threads, fmt, level, path));
  }
  int status = 0;
  struct rusage ru;
  if (wait4(pid, &status, 0, &ru) != pid) return m;
  m.wall = now_s() - t0;
  m.cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
          ru.ru_stime.tv_usec * 1e-6;
  m.rss_kb = ru.ru_maxrss;
  m.ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  return m;
}

static long file_size(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  fseek(f, 0, SEEK_END);
  long s = ftell(f);
  fclose(f);
  return s;
}

static int report(const char *what, uint64_t n, meas m, const char *path) {
  if (!m.ok) {
    printf("%-34s FAILED\n", what);
    return 1;
  }
  printf("%-34s %9" PRIu64 " rows  %7.3f s  %9.0f rows/s  %6.3f CPU s  %5.2f CPU s/1e6 rows"
         "  peak RSS %5.0f MB",
         what, n, m.wall, (double)n / m.wall, m.cpu, m.cpu * 1e6 / (double)n, m.rss_kb / 1024.0);
  if (path) {
    long sz = file_size(path);
    if (sz >= 0) printf("  %.1f MB", sz / 1e6);
    remove(path);
  }
  printf("\n");
  return 0;
}

int main(int argc, char **argv) {
  uint64_t N = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
  uint64_t NB = argc > 2 ? strtoull(argv[2], NULL, 10) : 10000000;
  uint64_t NF = argc > 3 ? strtoull(argv[3], NULL, 10) : 100000;
  const char *spec = argc > 4 ? argv[4] : "schemas/examples/outpatient.json";
  const char *faker = argc > 5 ? argv[5] : "tests/bench/faker_outpatient.py";
  const char *tmpdir = getenv("TMPDIR");
  if (!tmpdir || !*tmpdir) tmpdir = "/tmp";
  char h5[4096], csv[4096];
  snprintf(h5, sizeof h5, "%s/bench_outpatient_%d.h5", tmpdir, (int)getpid());
  snprintf(csv, sizeof csv, "%s/bench_outpatient_%d.csv", tmpdir, (int)getpid());
  printf("bench_outpatient: %s, N = %" PRIu64 "\n", spec, N);
  int bad = 0;
  char label[64];
  for (int t = 1; t <= 2; t++) {
    snprintf(label, sizeof label, "generate only, %d thread%s", t, t > 1 ? "s" : "");
    bad |= report(label, N, measure(spec, N, t, 0, 0, NULL, NULL), NULL);
  }
  for (int t = 1; t <= 2; t++) {
    snprintf(label, sizeof label, "HDF5 deflate 1, %d thread%s", t, t > 1 ? "s" : "");
    bad |= report(label, N, measure(spec, N, t, 1, 1, h5, NULL), h5);
  }
  bad |= report("HDF5 uncompressed, 1 thread", N, measure(spec, N, 1, 1, 0, h5, NULL), h5);
  bad |= report("HDF5 deflate 4, 1 thread", N, measure(spec, N, 1, 1, 4, h5, NULL), h5);
  bad |= report("HDF5 deflate 4, 2 threads", N, measure(spec, N, 2, 1, 4, h5, NULL), h5);
  bad |= report("CSV, 2 threads", N, measure(spec, N, 2, 2, 0, csv, NULL), csv);
  if (NB)
    bad |= report("HDF5 deflate 1, 2 threads", NB, measure(spec, NB, 2, 1, 1, h5, NULL), h5);
  if (NF) {
    char rows[32];
    snprintf(rows, sizeof rows, "%" PRIu64, NF);
    char *av[] = {"/usr/bin/python3", (char *)faker, rows, csv, NULL};
    bad |= report("Faker + random to CSV (reference)", NF,
                  measure(NULL, 0, 0, 0, 0, NULL, av), csv);
  }
  return bad;
}
