/* medsynth validate: checks a spec and prints every problem found, each as
 * "file:line:column: error: /json/pointer: message" (docs/cli.md). Exit 0
 * when the spec is valid, 65 when it is not, 66 when it cannot be read. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "medsynth/records.h"

static const char *k_usage =
    "usage: medsynth validate [-q] SPEC\n"
    "Check SPEC (docs/spec.md) and report every problem at once.\n"
    "  -q, --quiet   print nothing when the spec is valid\n"
    "  -h, --help    this help\n"
    "exit codes: 0 valid, 64 usage, 65 invalid spec, 66 spec missing or unreadable\n";

static int cmd_validate(int argc, char **argv) {
  const char *path = NULL;
  int quiet = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      fputs(k_usage, stdout);
      return MS_EXIT_OK;
    }
    if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")) {
      quiet = 1;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      ms_cli_error("validate", "unknown option '%s' (see 'medsynth validate --help')", argv[i]);
      return MS_EXIT_USAGE;
    } else if (path) {
      ms_cli_error("validate", "one spec at a time (got '%s' and '%s')", path, argv[i]);
      return MS_EXIT_USAGE;
    } else {
      path = argv[i];
    }
  }
  if (!path) {
    fputs(k_usage, stderr);
    return MS_EXIT_USAGE;
  }
  ms_diag d;
  ms_diag_init(&d);
  ms_spec *s = NULL;
  ms_status st = ms_spec_load(&s, path, &d);
  ms_cli_print_diag(&d);
  if (st != MS_OK) {
    size_t n = d.n_errors;
    if (st == MS_ERR_SPEC || st == MS_ERR_PARSE)
      fprintf(stderr, "medsynth: validate: %s: %zu error%s\n", path, n, n == 1 ? "" : "s");
    ms_diag_deinit(&d);
    return ms_cli_exit_code(st);
  }
  if (!quiet) {
    printf("%s: valid (", path);
    for (size_t i = 0; i < ms_spec_n_tables(s); i++) {
      const ms_table_schema *sc = ms_spec_table_schema(s, i);
      size_t p = ms_spec_table_parent(s, i);
      if (p == SIZE_MAX)
        printf("%s%s: %llu rows, %zu columns", i ? "; " : "", sc->name,
               (unsigned long long)ms_spec_table_rows(s, i), sc->n_columns);
      else
        printf("%s%s: child of %s, %zu columns", i ? "; " : "", sc->name,
               ms_spec_table_schema(s, p)->name, sc->n_columns);
    }
    printf(")\n");
  }
  ms_spec_free(s);
  ms_diag_deinit(&d);
  return MS_EXIT_OK;
}

MS_CLI_COMMAND(validate, "check a spec and report every problem (exit 65 when invalid)", cmd_validate);
