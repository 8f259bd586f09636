/* medsynth: entry point and subcommand dispatch.
 *
 * This folder is the only code that prints to the terminal or calls exit();
 * the library reports through ms_status and ms_diag. */
#include <errno.h>
#include <gsl/gsl_errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "cli.h"
#include "medsynth/version.h"

extern const ms_cli_command __start_ms_cli_cmds[];
extern const ms_cli_command __stop_ms_cli_cmds[];

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

int ms_cli_invalid_value(const char *cmd, const char *long_name, int c, const char *arg) {
  if (long_name)
    ms_cli_error(cmd, "--%s: invalid value \"%s\"", long_name, arg ? arg : "");
  else
    ms_cli_error(cmd, "-%c: invalid value \"%s\"", c, arg ? arg : "");
  return MS_EXIT_USAGE;
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

int ms_cli_join_list(char **s, const char *v) {
  size_t had = *s ? strlen(*s) + 1 : 0;
  char *grown = realloc(*s, had + strlen(v) + 1);
  if (!grown) return 1;
  if (had) grown[had - 1] = ',';
  memcpy(grown + had, v, strlen(v) + 1);
  *s = grown;
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

/* ---- provenance --------------------------------------------------------
 *
 * The "invocation" attribute is a function of the values a run produces, not
 * of how its command was typed: the subcommand plus the options that change
 * values, each under its canonical long name, in the order the command lists
 * them, with effective values (defaults made explicit) in one canonical
 * spelling. Input files are named by the xxh64 of their bytes, never by
 * path. Output paths, thread counts, batch and chunk sizes, --force and
 * verbosity never appear (docs/reproducibility.md). */

static void pv_string(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(f, "\\%c", *p);
    else if (*p == '\n')
      fputs("\\n", f);
    else if (*p == '\r')
      fputs("\\r", f);
    else if (*p == '\t')
      fputs("\\t", f);
    else if (*p < 0x20)
      fprintf(f, "\\u%04x", *p);
    else
      fputc(*p, f);
  }
  fputc('"', f);
}

/* %.15g, %.16g or %.17g, the first that reads back as x (the rule of the
 * CSV writer, docs/file-format.md); null when not finite. */
static void pv_real(FILE *f, double x) {
  if (!isfinite(x)) {
    fputs("null", f);
    return;
  }
  if (x == 0) x = 0; /* -0 and 0 are one value here */
  char b[40];
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(b, sizeof b, "%.*g", prec, x);
    if (strtod(b, NULL) == x) break;
  }
  fputs(b, f);
}

static int pv_file_hash(const char *path, uint64_t *out) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  XXH64_state_t *st = XXH64_createState();
  unsigned char buf[1 << 16];
  size_t n;
  int rc = st ? 0 : -1;
  if (st) XXH64_reset(st, 0);
  while (rc == 0 && (n = fread(buf, 1, sizeof buf, f)) > 0) XXH64_update(st, buf, n);
  if (rc == 0 && ferror(f)) rc = -1;
  if (rc == 0) *out = XXH64_digest(st);
  if (st) XXH64_freeState(st);
  fclose(f);
  return rc;
}

char *ms_cli_provenance(const char *command, const ms_cli_pv *opts, size_t n) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) return NULL;
  int bad = 0;
  fputs("{\"command\":", f);
  pv_string(f, command);
  for (size_t i = 0; i < n && !bad; i++) {
    const ms_cli_pv *o = &opts[i];
    uint64_t h = o->u;
    fputc(',', f);
    pv_string(f, o->option);
    fputc(':', f);
    switch (o->kind) {
      case MS_CLI_PV_STR:
        if (o->s)
          pv_string(f, o->s);
        else
          fputs("null", f);
        break;
      case MS_CLI_PV_INT: fprintf(f, "%" PRId64, o->i); break;
      case MS_CLI_PV_UINT: fprintf(f, "%" PRIu64, o->u); break;
      case MS_CLI_PV_REAL: pv_real(f, o->x); break;
      case MS_CLI_PV_BOOL: fputs(o->i ? "true" : "false", f); break;
      case MS_CLI_PV_RANGE:
        fputc('[', f);
        pv_real(f, o->x);
        fputc(',', f);
        pv_real(f, o->y);
        fputc(']', f);
        break;
      case MS_CLI_PV_FILE:
        if (pv_file_hash(o->s, &h)) {
          bad = 1;
          break;
        }
        /* fall through */
      case MS_CLI_PV_HASH: fprintf(f, "\"xxh64:%016" PRIx64 "\"", h); break;
      case MS_CLI_PV_STRS:
      case MS_CLI_PV_COUNTS:
        fputc(o->kind == MS_CLI_PV_STRS ? '[' : '{', f);
        for (size_t k = 0; k < o->n; k++) {
          if (k) fputc(',', f);
          pv_string(f, o->list[k]);
          if (o->kind == MS_CLI_PV_COUNTS) fprintf(f, ":%" PRIu64, o->counts[k]);
        }
        fputc(o->kind == MS_CLI_PV_STRS ? ']' : '}', f);
        break;
      default: bad = 1; break;
    }
  }
  fputc('}', f);
  if (fclose(f) || bad) {
    free(text);
    return NULL;
  }
  return text;
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
