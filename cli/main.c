/* medsynth: entry point and subcommand dispatch.
 *
 * This folder is the only code that prints to the terminal or calls exit();
 * the library reports through ms_status and ms_diag. */
#include <errno.h>
#include <gsl/gsl_errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "medsynth/version.h"

extern const ms_cli_command __start_ms_cli_cmds[];
extern const ms_cli_command __stop_ms_cli_cmds[];

static int g_argc;
static char **g_argv;
/* The first SIGINT/SIGTERM received; set only by on_signal. */
static ms_cancel_flag g_signal;

static void on_signal(int sig) {
  if (!g_signal) g_signal = sig;
}

void ms_cli_catch_signals(void) {
  static const int sigs[] = {SIGINT, SIGTERM};
  for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
    struct sigaction old, sa;
    /* A signal ignored on entry (a background job of a shell without job
     * control, nohup) stays ignored, as the shell meant. */
    if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(sigs[i], &sa, NULL);
  }
}

const ms_cancel_flag *ms_cli_cancel_flag(void) { return &g_signal; }

int ms_cli_signal(void) { return g_signal; }

int ms_cli_exit_code(ms_status s) {
  switch (s) {
    case MS_OK:
      return MS_EXIT_OK;
    case MS_ERR_INVALID:
      return MS_EXIT_USAGE;
    case MS_ERR_PARSE:
    case MS_ERR_SPEC:
    case MS_ERR_RANGE:
    case MS_ERR_MATH:
    case MS_ERR_FORMAT:
    case MS_ERR_DATA:
    case MS_ERR_UNSUPPORTED:
      return MS_EXIT_DATAERR;
    case MS_ERR_NOTFOUND:
      return MS_EXIT_NOINPUT;
    case MS_ERR_EXISTS:
      return MS_EXIT_CANTCREAT;
    case MS_ERR_IO:
      return MS_EXIT_IOERR;
    case MS_ERR_CANCELLED:
      return 128 + (g_signal ? g_signal : SIGINT);
    default:
      return MS_EXIT_SOFTWARE;
  }
}

void ms_cli_print_diag(const ms_diag *d) {
  for (size_t i = 0; i < d->count; i++) {
    if (d->entries[i].status == MS_ERR_CANCELLED) continue;
    char *line = ms_diag_entry_format(&d->entries[i]);
    if (!line) continue;
    if (d->entries[i].file)
      fprintf(stderr, "%s\n", line);
    else
      fprintf(stderr, "medsynth: %s\n", line);
    free(line);
  }
  if (d->n_dropped) fprintf(stderr, "medsynth: note: %zu further problem(s) not shown\n", d->n_dropped);
}

void ms_cli_error(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "medsynth: %s%s", cmd ? cmd : "", cmd ? ": " : "");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

double ms_cli_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void ms_cli_progress_init(ms_cli_progress *p, const char *label, uint64_t total) {
  p->label = label;
  p->total = total;
  p->enabled = isatty(STDERR_FILENO) && getenv("CI") == NULL;
  p->t0 = ms_cli_now();
  p->last_draw = 0;
}

void ms_cli_progress_update(ms_cli_progress *p, uint64_t done) {
  if (!p->enabled || p->total == 0) return;
  double now = ms_cli_now();
  if (done < p->total && now - p->last_draw < 0.1) return;
  p->last_draw = now;
  double frac = (double)done / (double)p->total;
  if (frac > 1) frac = 1;
  int width = 30, fill = (int)(frac * width);
  double el = now - p->t0;
  double eta = frac > 0 ? el / frac - el : 0;
  fprintf(stderr, "\r%s [", p->label);
  for (int i = 0; i < width; i++) fputc(i < fill ? '#' : '.', stderr);
  fprintf(stderr, "] %5.1f%% %llu/%llu  %.1fs left ", frac * 100, (unsigned long long)done,
          (unsigned long long)p->total, eta);
  fflush(stderr);
}

void ms_cli_progress_done(ms_cli_progress *p) {
  if (!p->enabled) return;
  ms_cli_progress_update(p, p->total);
  fputc('\n', stderr);
}

int ms_cli_parse_i64(const char *s, int64_t *out) {
  if (!s || !*s) return -1;
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || *end) return -1;
  *out = v;
  return 0;
}

char **ms_cli_split_list(char *s, size_t *n) {
  size_t cap = 1;
  for (char *p = s; *p; p++) cap += *p == ',';
  char **v = malloc(cap * sizeof *v);
  *n = 0;
  if (!v) return NULL;
  for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) v[(*n)++] = tok;
  return v;
}

int ms_cli_parse_u64(const char *s, uint64_t *out) {
  int64_t v;
  if (ms_cli_parse_i64(s, &v) || v < 0) return -1;
  *out = (uint64_t)v;
  return 0;
}

int ms_cli_parse_double(const char *s, double *out) {
  if (!s || !*s) return -1;
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || *end || !isfinite(v)) return -1;
  *out = v;
  return 0;
}

char *ms_cli_command_line(void) {
  size_t len = 1;
  for (int i = 0; i < g_argc; i++) len += strlen(g_argv[i]) + 1;
  char *s = malloc(len);
  if (!s) return NULL;
  s[0] = '\0';
  for (int i = 0; i < g_argc; i++) {
    if (i) strcat(s, " ");
    strcat(s, g_argv[i]);
  }
  return s;
}

static int cmd_cmp(const void *a, const void *b) {
  return strcmp((*(const ms_cli_command *const *)a)->name, (*(const ms_cli_command *const *)b)->name);
}

static void usage(FILE *f) {
  size_t n = (size_t)(__stop_ms_cli_cmds - __start_ms_cli_cmds);
  const ms_cli_command **list = malloc((n ? n : 1) * sizeof *list);
  fprintf(f,
          "usage: medsynth <command> [options]\n"
          "       medsynth <command> --help\n"
          "       medsynth --version\n\n"
          "Synthetic medical data: spec + seed -> reproducible HDF5/CSV/JSONL.\n\ncommands:\n");
  if (list) {
    for (size_t i = 0; i < n; i++) list[i] = &__start_ms_cli_cmds[i];
    qsort(list, n, sizeof *list, cmd_cmp);
    for (size_t i = 0; i < n; i++) fprintf(f, "  %-10s %s\n", list[i]->name, list[i]->summary);
    free(list);
  }
  fprintf(f,
          "\nexit codes: 0 ok, 1 check failed, 64 usage, 65 invalid spec/data, 66 missing input,\n"
          "            70 internal error, 73 cannot create output, 74 I/O error,\n"
          "            130/143 interrupted by SIGINT/SIGTERM (no output left behind)\n");
}

int main(int argc, char **argv) {
  g_argc = argc;
  g_argv = argv;
  /* GSL's default handler aborts; the library checks its inputs and reports
   * through ms_status instead. */
  gsl_set_error_handler_off();
  if (argc < 2) {
    usage(stderr);
    return MS_EXIT_USAGE;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("medsynth %s\n", MS_VERSION_STRING);
    return MS_EXIT_OK;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return MS_EXIT_OK;
  }
  for (const ms_cli_command *c = __start_ms_cli_cmds; c < __stop_ms_cli_cmds; c++) {
    if (strcmp(c->name, argv[1])) continue;
    int rc = c->run(argc - 1, argv + 1);
    int sig = g_signal;
    if (sig && rc != MS_EXIT_OK && rc != MS_EXIT_FAIL) {
      /* The command has removed its temporaries; end the way the signal
       * would have, so that a calling shell sees it (128 + signo). */
      fprintf(stderr, "medsynth: %s: interrupted\n", c->name);
      fflush(NULL);
      signal(sig, SIG_DFL);
      raise(sig);
      return 128 + sig;
    }
    return rc;
  }
  ms_cli_error(NULL, "unknown command '%s' (see 'medsynth --help')", argv[1]);
  return MS_EXIT_USAGE;
}
