/* Shared pieces of the medsynth command: subcommand registry, exit codes,
 * diagnostics printing, progress bar.
 *
 * A subcommand lives in its own cli/cmd_<name>.c and registers itself with
 *   MS_CLI_COMMAND(records, "generate record tables from a spec", cmd_records);
 * which places an entry in the "ms_cli_cmds" linker section; main() finds
 * every entry there, so adding a command never edits a shared file.
 *
 * Exit codes follow BSD sysexits (docs/cli.md); a run stopped by SIGINT or
 * SIGTERM ends by that signal (the shell reports 128 + signo: 130, 143). */
#ifndef MEDSYNTH_CLI_H
#define MEDSYNTH_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "medsynth/output.h"
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

/* Maps a library status to an exit code; MS_ERR_CANCELLED is 128 + the
 * signal that cancelled the run. */
int ms_cli_exit_code(ms_status s);
/* Prints every diag entry to stderr, one per line, prefixed "medsynth: " when
 * the entry has no file. Cancellation entries are left out: main() prints
 * the one line "interrupted". */
void ms_cli_print_diag(const ms_diag *d);

/* SIGINT and SIGTERM: a command that writes outputs calls
 * ms_cli_catch_signals() first; from then on a signal only sets the flag
 * that ms_cli_cancel_flag() returns (SA_RESTART, so no call fails with
 * EINTR). The library polls that flag (the `cancel` fields of its options)
 * and the command's normal error path removes every temporary file; further
 * signals change nothing, so they cannot cut that cleanup short. When the
 * command returns anything but success (0, or 1 for a check that failed),
 * main() prints "medsynth: <command>: interrupted" and ends the process by
 * the same signal. */
void ms_cli_catch_signals(void);
const ms_cancel_flag *ms_cli_cancel_flag(void);
/* The signal received (0 = none). */
int ms_cli_signal(void);
/* Prints "medsynth: <cmd>: message\n" to stderr. */
void ms_cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Outputs besides the main one (cli/outputs.c): each staged by
 * ms_cli_outputs_add, which returns where to write (a temporary folder, or
 * for `file` a name inside a temporary folder of the file's folder). Commit
 * (right after the main output; signals are no longer looked at) moves them
 * into place in order, removing the rest when one fails. Abort removes all. */
#define MS_CLI_MAX_OUTPUTS 4
typedef struct {
  ms_output *o[MS_CLI_MAX_OUTPUTS];
  char *path[MS_CLI_MAX_OUTPUTS];
  int n;
} ms_cli_outputs;
ms_status ms_cli_outputs_add(ms_cli_outputs *s, const char *target, int file, const char **path,
                             ms_diag *d);
ms_status ms_cli_outputs_commit(ms_cli_outputs *s, ms_diag *d);
void ms_cli_outputs_abort(ms_cli_outputs *s);
/* Messages about staged files name them by their final paths. */
void ms_cli_outputs_name_diag(const ms_cli_outputs *s, ms_diag *d);

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
