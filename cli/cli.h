/* Shared pieces of the medsynth command: subcommand registry, exit codes,
 * diagnostics printing, progress bar.
 *
 * A subcommand lives in its own cli/cmd_<name>.c and registers itself with
 *   MS_CLI_COMMAND(records, "generate record tables from a spec", cmd_records);
 * which places an entry in the "ms_cli_cmds" linker section; main() finds
 * every entry there, so adding a command never edits a shared file.
 *
 * Exit codes follow BSD sysexits (docs/cli.md): */
#ifndef MEDSYNTH_CLI_H
#define MEDSYNTH_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "medsynth/status.h"

enum {
  MS_EXIT_OK = 0,
  MS_EXIT_FAIL = 1,       /* a check failed (validate found errors, evaluate verdict) */
  MS_EXIT_USAGE = 64,     /* bad command line */
  MS_EXIT_DATAERR = 65,   /* invalid spec or data */
  MS_EXIT_NOINPUT = 66,   /* input file missing or unreadable */
  MS_EXIT_SOFTWARE = 70,  /* internal error */
  MS_EXIT_CANTCREAT = 73, /* cannot create output (exists without --force, unwritable) */
  MS_EXIT_IOERR = 74      /* I/O error while writing */
};

typedef struct {
  const char *name;
  const char *summary;
  int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
} ms_cli_command;

#define MS_CLI_COMMAND(ident, summary_text, fn)                                        \
  static const ms_cli_command ms__cli_cmd_##ident                                      \
      __attribute__((used, section("ms_cli_cmds"), aligned(sizeof(void *)))) = {      \
          #ident, summary_text, fn}

/* Maps a library status to an exit code. */
int ms_cli_exit_code(ms_status s);
/* Prints every diag entry to stderr, one per line, prefixed "medsynth: " when
 * the entry has no file. */
void ms_cli_print_diag(const ms_diag *d);
/* Prints "medsynth: <cmd>: message\n" to stderr. */
void ms_cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Progress bar on stderr, drawn only when stderr is a terminal. */
typedef struct {
  const char *label;
  uint64_t total;
  int enabled;
  double t0;
  double last_draw;
} ms_cli_progress;
void ms_cli_progress_init(ms_cli_progress *p, const char *label, uint64_t total);
void ms_cli_progress_update(ms_cli_progress *p, uint64_t done);
void ms_cli_progress_done(ms_cli_progress *p);

/* Monotonic seconds. */
double ms_cli_now(void);

/* Parses a decimal integer/double argument strictly; 0 on success. */
int ms_cli_parse_i64(const char *s, int64_t *out);
int ms_cli_parse_u64(const char *s, uint64_t *out);
int ms_cli_parse_double(const char *s, double *out);

/* Splits a comma list in place into a malloc'd array of pointers into s
 * (empty items skipped); *n receives the count. NULL when out of memory. */
char **ms_cli_split_list(char *s, size_t *n);

/* The full command line joined with spaces (for provenance). Caller frees. */
char *ms_cli_command_line(void);

#endif
