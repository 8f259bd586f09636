/* `medsynth evaluate`: utility and privacy report of a synthetic table
 * against the real one (docs/evaluate.md).
 *
 *   medsynth evaluate --real train.csv [--holdout holdout.csv]
 *                     --synthetic syn.csv [--target col] [--quasi-identifiers a,b]
 *                     -o report/
 *
 * The real table's inferred kinds are forced onto the holdout and synthetic
 * tables so that all three are compared column by column. Exit status: 0
 * when no section fails, 1 when a section's verdict is "fail", else the
 * usual error codes. The report folder is staged by ms_eval_report_new; SIGINT or
 * SIGTERM (polled between its sections and plots) leaves no report. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "medsynth/eval.h"
#include "medsynth/fit.h"

static const char *usage_text =
    "usage: medsynth evaluate --real train.csv --synthetic syn.csv [options] -o report/\n"
    "  --real FILE                 real training table (CSV or medsynth HDF5)\n"
    "  --holdout FILE              real rows not used for fitting (enables DCR share, MIA)\n"
    "  --synthetic FILE            synthetic table (CSV or medsynth HDF5)\n"
    "  --table NAME                table within the HDF5 inputs (needed when a file holds several)\n"
    "  --target COL                column for train-on-synthetic / test-on-real\n"
    "  --quasi-identifiers a,b     columns for uniqueness / k-anonymity\n"
    "  --subgroups a,b             categorical/bool columns whose groups are compared\n"
    "                              (share of rows; with --target, TSTR per group)\n"
    "  --types col=kind,...        force kinds of the real table (repeatable, like every list\n"
    "                              option)\n"
    "  --id col,...                identifier columns (ignored)\n"
    "  --na a,b,...                missing-value tokens\n"
    "  --sep C                     CSV field separator: , ; tab (default: detected)\n"
    "  --date-format F             pattern for real dates whose month/day order is open\n"
    "  --max-privacy-rows N        synthetic rows queried for distances (10000)\n"
    "  --seed K                    subsampling key (0)\n"
    "  --no-plots                  skip the PNG plots\n"
    "  -o DIR                      output directory (report.json, report.md, *.png)\n";

static int cmd_evaluate(int argc, char **argv) {
  const char *real = NULL, *hold = NULL, *synp = NULL, *outdir = NULL, *target = NULL, *table = NULL;
  const char *date_format = NULL;
  char sep = 0;
  char *qi_s = NULL, *sg_s = NULL, *types_s = NULL, *id_s = NULL, *na_s = NULL;
  ms_eval_params ep;
  ms_eval_params_init(&ep);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    int takes = !strcmp(a, "--real") || !strcmp(a, "--holdout") || !strcmp(a, "--synthetic") ||
                !strcmp(a, "-o") || !strcmp(a, "--target") || !strcmp(a, "--quasi-identifiers") || !strcmp(a, "--subgroups") ||
                !strcmp(a, "--types") || !strcmp(a, "--id") || !strcmp(a, "--na") ||
                !strcmp(a, "--table") || !strcmp(a, "--seed") || !strcmp(a, "--max-privacy-rows") ||
                !strcmp(a, "--sep") || !strcmp(a, "--date-format");
    if (takes && !v) {
      ms_cli_error("evaluate", "option %s needs a value", a);
      return MS_EXIT_USAGE;
    }
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      fputs(usage_text, stdout);
      return MS_EXIT_OK;
    } else if (!strcmp(a, "--no-plots")) {
      ep.plots = 0;
      continue;
    } else if (!takes) {
      ms_cli_error("evaluate", "unknown option '%s'\n%s", a, usage_text);
      return MS_EXIT_USAGE;
    }
    i++;
    if (!strcmp(a, "--real")) real = v;
    else if (!strcmp(a, "--holdout")) hold = v;
    else if (!strcmp(a, "--synthetic")) synp = v;
    else if (!strcmp(a, "-o")) outdir = v;
    else if (!strcmp(a, "--target")) target = v;
    else if (!strcmp(a, "--table")) table = v;
    else if (!strcmp(a, "--quasi-identifiers")) { if (ms_cli_join_list(&qi_s, v)) return MS_EXIT_SOFTWARE; }
    else if (!strcmp(a, "--subgroups")) { if (ms_cli_join_list(&sg_s, v)) return MS_EXIT_SOFTWARE; }
    else if (!strcmp(a, "--types")) { if (ms_cli_join_list(&types_s, v)) return MS_EXIT_SOFTWARE; }
    else if (!strcmp(a, "--id")) { if (ms_cli_join_list(&id_s, v)) return MS_EXIT_SOFTWARE; }
    else if (!strcmp(a, "--na")) { if (ms_cli_join_list(&na_s, v)) return MS_EXIT_SOFTWARE; }
    else if (!strcmp(a, "--date-format")) date_format = v;
    else if (!strcmp(a, "--sep")) {
      if (!strcmp(v, "tab") || !strcmp(v, "\\t")) sep = '\t';
      else if (strlen(v) == 1 && v[0] != '"' && v[0] != '\n' && v[0] != '\r') sep = v[0];
      else {
        ms_cli_error("evaluate", "--sep needs one character (or 'tab'), got '%s'", v);
        return MS_EXIT_USAGE;
      }
    }
    else if (!strcmp(a, "--seed")) {
      if (ms_cli_parse_u64(v, &ep.seed)) {
        ms_cli_error("evaluate", "--seed needs a non-negative integer, got '%s'", v);
        return MS_EXIT_USAGE;
      }
    } else if (!strcmp(a, "--max-privacy-rows")) {
      uint64_t m;
      if (ms_cli_parse_u64(v, &m) || m < 10) {
        ms_cli_error("evaluate", "--max-privacy-rows needs an integer >= 10, got '%s'", v);
        return MS_EXIT_USAGE;
      }
      ep.max_privacy_rows = (size_t)m;
    }
  }
  int rc = MS_EXIT_OK;
  if (!real || !synp || !outdir) {
    ms_cli_error("evaluate", "--real, --synthetic and -o are required\n%s", usage_text);
    rc = MS_EXIT_USAGE;
  }
  size_t n_qi = 0, n_types = 0, n_ids = 0, n_na = 0;
  char **qis = qi_s ? ms_cli_split_list(qi_s, &n_qi) : NULL;
  size_t n_sg = 0;
  char **sgs = sg_s ? ms_cli_split_list(sg_s, &n_sg) : NULL;
  char **tl = types_s ? ms_cli_split_list(types_s, &n_types) : NULL;
  char **ids = id_s ? ms_cli_split_list(id_s, &n_ids) : NULL;
  char **nas = na_s ? ms_cli_split_list(na_s, &n_na) : NULL;
  ms_type_override *ov = calloc(n_types + 1, sizeof *ov), *ov2 = NULL;
  ms_frame *fr = NULL, *fh = NULL, *fs = NULL;
  ms_eval_report *rep = NULL;
  ms_diag d;
  ms_diag_init(&d);
  if (rc) goto done;
  ms_cli_catch_signals();
  ep.cancel = ms_cli_cancel_flag();
  for (size_t t = 0; t < n_types; t++) {
    char *eq = strchr(tl[t], '=');
    if (!eq || (ov[t].kind = ms_fkind_from_name(eq + 1)) == MS_FKIND_COUNT) {
      ms_cli_error("evaluate", "--types: '%s' is not col=kind", tl[t]);
      rc = MS_EXIT_USAGE;
      goto done;
    }
    *eq = '\0';
    ov[t].column = tl[t];
  }
  ms_csv_params co;
  ms_csv_params_init(&co);
  co.types = ov;
  co.n_types = n_types;
  co.delimiter = sep;
  co.date_format = date_format;
  co.id_columns = (const char *const *)ids;
  co.n_id_columns = n_ids;
  if (na_s) co.na_values = (const char *const *)nas, co.n_na_values = n_na;
  ms_status st = ms_frame_read(&fr, real, table, &co, &d);
  if (!st) {
    /* The real table's kinds are imposed on the other two; columns they
     * lack are reported by the evaluator, so the list may name absent ones. */
    ov2 = calloc(fr->n_cols + 1, sizeof *ov2);
    if (!ov2) st = MS_ERR_NOMEM;
    for (size_t j = 0; !st && j < fr->n_cols; j++)
      ov2[j].column = fr->cols[j].name, ov2[j].kind = fr->cols[j].kind,
      ov2[j].date_format = fr->cols[j].date_format;
    ms_csv_params c3 = co;
    c3.types = ov2, c3.n_types = fr->n_cols, c3.id_columns = NULL, c3.n_id_columns = 0;
    c3.lenient_types = 1;
    if (!st) st = ms_frame_read(&fs, synp, table, &c3, &d);
    if (!st && hold) st = ms_frame_read(&fh, hold, table, &c3, &d);
  }
  if (st) {
    ms_cli_print_diag(&d);
    rc = ms_cli_exit_code(st);
    goto done;
  }
  if (ms_cli_signal()) {
    rc = ms_cli_exit_code(MS_ERR_CANCELLED);
    goto done;
  }
  ep.target = target;
  ep.quasi_identifiers = (const char *const *)qis;
  ep.n_quasi_identifiers = n_qi;
  ep.subgroups = (const char *const *)sgs;
  ep.n_subgroups = n_sg;
  double t0 = ms_cli_now();
  st = ms_eval_report_new(&rep, fr, fh, fs, &ep, outdir, &d);
  ms_cli_print_diag(&d);
  if (st) {
    rc = ms_cli_exit_code(st);
    goto done;
  }
  fprintf(stderr, "evaluate: %.1f s; marginals %.3f, pMSE score %.3f, exact copies %.4f, "
                  "closer-to-train %.3f, MIA AUC %.3f; verdict %s -> %s/report.md\n",
          ms_cli_now() - t0, ms_eval_report_number(rep, "utility.marginal_similarity"),
          ms_eval_report_number(rep, "utility.pmse_score"),
          ms_eval_report_number(rep, "privacy.exact_copy_rate"),
          ms_eval_report_number(rep, "privacy.closer_to_train_share"),
          ms_eval_report_number(rep, "privacy.mia_auc"),
          ms_eval_verdict_name(ms_eval_report_verdict(rep)), outdir);
  if (ms_eval_report_verdict(rep) == MS_VERDICT_FAIL) rc = MS_EXIT_FAIL;
done:
  ms_diag_deinit(&d);
  ms_eval_report_free(rep);
  ms_frame_free(fr);
  ms_frame_free(fh);
  ms_frame_free(fs);
  free(ov);
  free(ov2);
  free(qis);
  free(sgs);
  free(tl);
  free(ids);
  free(nas);
  free(qi_s);
  free(sg_s);
  free(types_s);
  free(id_s);
  free(na_s);
  return rc;
}

MS_CLI_COMMAND(evaluate, "utility and privacy report of a synthetic table against the real one",
               cmd_evaluate);
