/* FHIR R4 writer throughput: patients/s and resources/s for the worked
 * mapping of schemas/examples/outpatient.json (a Patient, eleven vital-sign
 * and laboratory Observations and up to four Conditions per patient: about
 * 14 resources), as transaction Bundles (one file per patient) and as a
 * Bulk Data NDJSON export, at 1 and 2 threads, end to end (generation +
 * formatting + writing + the final syncfs and rename).
 *
 * Usage (from the source root): bench_fhir [patients=100000] [dir=/tmp]
 *        [spec=schemas/examples/outpatient.json]
 * Each configuration runs in a forked child, so its peak RSS (ru_maxrss)
 * and CPU time (user + system) are its own; CPU seconds matter on a shared
 * machine, where wall time also measures the neighbours. A second NDJSON
 * run at a quarter of the patients shows that memory does not grow with N.
 * The reference row, same run: creating as many plain files of the mean
 * bundle size in one directory (open, write, close; then syncfs), the floor
 * that the file system sets for any one-file-per-patient layout.
 * Output goes to DIR/bench_fhir.<pid>.* and is removed afterwards. */
#include <gsl/gsl_errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "medsynth/fhir.h"
#include "medsynth/records.h"


static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static uint64_t dir_bytes(const char *dir) {
  char cmd[1400];
  snprintf(cmd, sizeof cmd, "du -sb '%s' 2>/dev/null", dir);
  FILE *p = popen(cmd, "r");
  unsigned long long b = 0;
  if (p) {
    if (fscanf(p, "%llu", &b) != 1) b = 0;
    pclose(p);
  }
  return b;
}

/* Runs one configuration in this process; prints one table row. */
static int run(const char *spec_path, uint64_t n, ms_fhir_layout layout, int threads, const char *dir) {
  gsl_set_error_handler_off();
  ms_diag d;
  ms_diag_init(&d);
  ms_spec *spec = NULL;
  if (ms_spec_load(&spec, spec_path, &d) != MS_OK) {
    char *m = ms_diag_format(&d);
    fprintf(stderr, "%s", m);
    free(m);
    return 1;
  }
  ms_fhir_params fo;
  ms_fhir_params_init(&fo);
  fo.layout = layout;
  fo.threads = threads;
  fo.seed = ms_spec_seed(spec);
  fo.no_timestamp = 1;
  double t0 = now();
  ms_fhir_writer *w = NULL;
  ms_status st = ms_fhir_writer_open(&w, dir, spec, &fo, &d);
  ms_generate_params go;
  ms_generate_params_init(&go);
  go.rows = n;
  go.threads = threads;
  uint64_t res = 0;
  if (st == MS_OK) {
    ms_sink sink = ms_fhir_writer_sink(w);
    st = ms_generate(spec, &go, &sink, NULL, &d);
    res = ms_fhir_writer_resources(w);
    if (st == MS_OK)
      st = ms_fhir_writer_commit(w, &d);
    else
      ms_fhir_writer_abort(w);
  }
  double secs = now() - t0;
  if (st != MS_OK) {
    char *m = ms_diag_format(&d);
    fprintf(stderr, "%s", m);
    free(m);
    return 1;
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
               (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
  double mb = (double)dir_bytes(dir) / 1e6;
  printf("| %s | %d | %llu | %.2f | %.2f | %.0f | %.0f | %.0f | %.1f | %.0f |\n",
         layout == MS_FHIR_BUNDLES ? "bundles" : "NDJSON", threads, (unsigned long long)n, secs, cpu,
         (double)n / secs, (double)res / secs, (double)n / cpu, mb, (double)ru.ru_maxrss / 1024.0);
  fflush(stdout);
  ms_spec_free(spec);
  ms_diag_deinit(&d);
  return 0;
}

/* The file system's floor: n files of `size` bytes, one directory. */
static int floor_run(const char *dir, uint64_t n, size_t size) {
  char *buf = malloc(size ? size : 1);
  if (!buf || mkdir(dir, 0777)) return 1;
  memset(buf, ' ', size);
  double t0 = now();
  int dfd = open(dir, O_RDONLY | O_DIRECTORY);
  for (uint64_t i = 0; i < n; i++) {
    char name[64];
    snprintf(name, sizeof name, "patients_%06llu.json", (unsigned long long)i);
    int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0 || write(fd, buf, size) != (ssize_t)size) return 1;
    close(fd);
  }
  syncfs(dfd);
  close(dfd);
  double secs = now() - t0;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
               (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
  printf("| plain files (reference) | 1 | %llu | %.2f | %.2f | %.0f | - | %.0f | %.1f | %.0f |\n",
         (unsigned long long)n, secs, cpu, (double)n / secs, (double)n / cpu, (double)n * (double)size / 1e6,
         (double)ru.ru_maxrss / 1024.0);
  fflush(stdout);
  free(buf);
  return 0;
}

int main(int argc, char **argv) {
  uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 100000;
  const char *base = argc > 2 ? argv[2] : "/tmp";
  const char *spec = argc > 3 ? argv[3] : "schemas/examples/outpatient.json";
  double la[1] = {0};
  FILE *f = fopen("/proc/loadavg", "r");
  if (f) {
    if (fscanf(f, "%lf", &la[0]) != 1) la[0] = 0;
    fclose(f);
  }
  printf("bench_fhir: %s, load average %.1f\n\n", spec, la[0]);
  printf("| layout | threads | patients | wall s | CPU s | patients/s (wall) | resources/s (wall) | patients per CPU s | output MB | peak RSS MB |\n");
  printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  fflush(stdout);
  struct {
    ms_fhir_layout l;
    int threads;
    uint64_t n;
  } cfg[] = {{MS_FHIR_NDJSON, 1, n}, {MS_FHIR_NDJSON, 2, n}, {MS_FHIR_NDJSON, 2, n / 4},
             {MS_FHIR_BUNDLES, 1, n}, {MS_FHIR_BUNDLES, 2, n}};
  int bad = 0;
  uint64_t bundle_bytes = 0;
  for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/bench_fhir.%ld.%zu", base, (long)getpid(), i);
    pid_t pid = fork();
    if (pid == 0) _exit(run(spec, cfg[i].n ? cfg[i].n : 1, cfg[i].l, cfg[i].threads, dir));
    int ws = 0;
    waitpid(pid, &ws, 0);
    if (!WIFEXITED(ws) || WEXITSTATUS(ws)) bad = 1;
    if (cfg[i].l == MS_FHIR_BUNDLES && cfg[i].threads == 1) bundle_bytes = dir_bytes(dir);
    char cmd[1300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) bad = 1;
  }
  char dir[1200];
  snprintf(dir, sizeof dir, "%s/bench_fhir.%ld.floor", base, (long)getpid());
  pid_t pid = fork();
  if (pid == 0) _exit(floor_run(dir, n, (size_t)(bundle_bytes / (n ? n : 1))));
  int ws = 0;
  waitpid(pid, &ws, 0);
  if (!WIFEXITED(ws) || WEXITSTATUS(ws)) bad = 1;
  char cmd[1300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) bad = 1;
  return bad;
}
