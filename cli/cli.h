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
/* Opens a command's HDF5 output (staged in a temporary file, renamed on
 * commit) with `threads` workers, stopped by SIGINT/SIGTERM; compression
 * < 0 keeps the writer's default level. */
struct ms_writer;
ms_status ms_cli_open_h5(struct ms_writer **w, const char *path, int force, int compression, int threads,
                         ms_diag *d);
/* The signal received (0 = none). */
int ms_cli_signal(void);
/* Prints "medsynth: <cmd>: message\n" to stderr. */
void ms_cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reports an option's invalid value: "--long_name: invalid value \"arg\"",
 * or "-c: ..." when long_name is NULL; returns MS_EXIT_USAGE. */
int ms_cli_invalid_value(const char *cmd, const char *long_name, int c, const char *arg);

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

/* Appends comma list v to the malloc'd list *s (NULL: none yet): a list
 * option given more than once means its lists joined (--bounds a=0:1
 * --bounds b=2:3 is --bounds a=0:1,b=2:3). 1 when out of memory. */
int ms_cli_join_list(char **s, const char *v);

/* Provenance of a run: the one writer of the "invocation" attribute
 * (docs/reproducibility.md). Each command lists the options that change
 * the values it writes, in a fixed order, under their canonical long names
 * and with their effective values (defaults made explicit); options that
 * cannot change a value (output paths, --threads, --batch, --chunk-rows,
 * --force, -q, --compression) are never listed, and input files appear as
 * the xxh64 of their bytes, never as a path. Example:
 *   ms_cli_pv pv[] = {{.option = "spec", .kind = MS_CLI_PV_HASH, .u = hash},
 *                     {.option = "seed", .kind = MS_CLI_PV_UINT, .u = 7}};
 *   char *s = ms_cli_provenance("records", pv, 2);
 *   // {"command":"records","spec":"xxh64:0123456789abcdef","seed":7}
 * Reals are written in the shortest form that reads back exactly. */
typedef enum {
  MS_CLI_PV_STR,    /* s (NULL: null) */
  MS_CLI_PV_INT,    /* i */
  MS_CLI_PV_UINT,   /* u */
  MS_CLI_PV_REAL,   /* x */
  MS_CLI_PV_BOOL,   /* i != 0 */
  MS_CLI_PV_RANGE,  /* [x, y] */
  MS_CLI_PV_HASH,   /* u as "xxh64:<16 hex digits>" */
  MS_CLI_PV_FILE,   /* s is a path: the xxh64 (seed 0) of its bytes, as HASH */
  MS_CLI_PV_STRS,   /* list[0..n) as a JSON array */
  MS_CLI_PV_COUNTS, /* {list[k]: counts[k]} for k < n */
  MS_CLI_PV_COUNT
} ms_cli_pv_kind;

typedef struct {
  const char *option; /* canonical long option name, without dashes */
  ms_cli_pv_kind kind;
  const char *s;
  int64_t i;
  uint64_t u;
  double x, y;
  const char *const *list;
  const uint64_t *counts;
  size_t n;
} ms_cli_pv;

/* One line of JSON: {"command": command, option: value, ...} in the order
 * given. Caller frees; NULL when out of memory or a FILE cannot be read. */
char *ms_cli_provenance(const char *command, const ms_cli_pv *opts, size_t n);

#endif
