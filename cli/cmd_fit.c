/* `medsynth fit`: learns a spec from a real table (docs/privacy.md).
 *
 *   medsynth fit --data real.csv|real.h5 [--table T] [--types col=kind,...] [--id col,...]
 *                [--quasi-identifiers a,b] [--k-min 5]
 *                [--method auto|copula|mst|aim] [--epsilon E [--delta D]]
 *                [--bounds col=lo:hi,...] [--order b>=a,...] [--seed K] [--na tokens] -o fitted.json
 *
 * Parses arguments, reads the table, fits, prints the privacy accounting to
 * stderr and writes the spec through a temporary file renamed on success.
 * --sample N --sample-out syn.csv additionally draws N rows with the
 * reference sampler (--independent: without correlations).
 *
 * Both outputs are staged when the run starts (medsynth/output.h) and
 * renamed together at the end; an error or a signal (SIGINT/SIGTERM, looked
 * at between the phases) removes both temporaries and leaves neither name. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "medsynth/fit.h"
#include "medsynth/records.h"

static const char *usage_text =
    "usage: medsynth fit --data real.csv [options] -o fitted.json\n"
    "  --data FILE                real table: CSV with a header row, or a medsynth HDF5 file\n"
    "  --types col=kind,...       force kinds: id categorical integer real date bool (repeatable,\n"
    "                             like every list option)\n"
    "  --id col,...               identifier columns (replaced by generated ids)\n"
    "  --quasi-identifiers a,b    recorded in the spec's privacy block\n"
    "  --k-min K                  smallest group any released figure describes (5)\n"
    "  --epsilon E                differential privacy budget (> 0); off when absent\n"
    "  --delta D                  DP delta (default 1e-6 with --epsilon)\n"
    "  --method M                 auto (default), copula, mst or aim: the model (docs/fit.md, docs/privacy.md)\n"
    "  --bounds col=lo:hi,...     public bounds of numeric or date columns (DP; dates YYYY-MM-DD;\n"
    "                             repeatable)\n"
    "  --order b>=a,...           b is never below a (numbers or dates; repeatable): b is drawn as\n"
    "                             a + a fitted gap, with or without --epsilon\n"
    "  --domain col=a,b,...       public labels of a categorical column (repeatable; col=@file:\n"
    "                             one label a line); values outside it are dropped\n"
    "  --rebalance col[=uniform|w1,w2,...|label:w,...]\n"
    "                             replace the column's label shares, keeping every relation\n"
    "                             to it (the mst or aim model; docs/privacy.md)\n"
    "  --seed K                   seed of the DP noise and the spec (0)\n"
    "  --na a,b,...               missing-value tokens (default: empty NA N/A NaN nan NULL null ?)\n"
    "  --sep C                    CSV field separator: , ; tab (default: detected from the header)\n"
    "  --date-format F            pattern for dates whose month/day order the data leave open,\n"
    "                             e.g. %d/%m/%Y or %m/%d/%Y (docs/fit.md)\n"
    "  --table NAME               table of an HDF5 input (needed when it holds several);\n"
    "                             also the spec's table name (default: data)\n"
    "  --name NAME                spec name (fitted)\n"
    "  --no-parametric            quantile tables only (no AIC choice of a family)\n"
    "  --no-copula                no correlations group\n"
    "  --no-mixture               one copula for all rows (no clusters; docs/fit.md)\n"
    "  --sample N --sample-out F  also draw N rows with the reference sampler into F (CSV)\n"
    "  --independent              the sample ignores correlations\n"
    "  -o FILE, --force           output spec (an existing file needs --force)\n";

/* Public categorical domains, from repeated --domain col=a,b,c (or
 * col=@file: one label a line). */
typedef struct {
  const char **cols, **vals;
  size_t *first, n, nv;
} fit_domains;

static int domain_push(fit_domains *D, const char *label) {
  const char **nv = realloc(D->vals, (D->nv + 1) * sizeof *nv);
  if (!nv) return -1;
  D->vals = nv;
  if (!(D->vals[D->nv] = strdup(label))) return -1;
  D->nv++;
  return 0;
}

static int parse_domain(fit_domains *D, const char *arg) {
  const char *eq = strchr(arg, '=');
  if (!eq || eq == arg || !eq[1]) {
    ms_cli_error("fit", "--domain: '%s' is not col=label,label,... or col=@file", arg);
    return MS_EXIT_USAGE;
  }
  const char **nc = realloc(D->cols, (D->n + 1) * sizeof *nc);
  size_t *nf = realloc(D->first, (D->n + 2) * sizeof *nf);
  if (nc) D->cols = nc;
  if (nf) D->first = nf;
  if (!nc || !nf || !(D->cols[D->n] = strndup(arg, (size_t)(eq - arg)))) return MS_EXIT_SOFTWARE;
  if (D->n == 0) D->first[0] = 0;
  if (eq[1] == '@') {
    FILE *fp = fopen(eq + 2, "r");
    if (!fp) {
      ms_cli_error("fit", "--domain %s: cannot open '%s': %s", D->cols[D->n], eq + 2, strerror(errno));
      free((char *)D->cols[D->n]);
      return MS_EXIT_NOINPUT;
    }
    char line[4096];
    int bad = 0;
    while (!bad && fgets(line, sizeof line, fp)) {
      line[strcspn(line, "\r\n")] = '\0';
      if (line[0]) bad = domain_push(D, line);
    }
    fclose(fp);
    if (bad) return MS_EXIT_SOFTWARE;
  } else {
    char *list = strdup(eq + 1);
    size_t k = 0;
    char **labs = list ? ms_cli_split_list(list, &k) : NULL;
    int bad = !labs;
    for (size_t i = 0; i < k && !bad; i++) bad = domain_push(D, labs[i]);
    free(labs);
    free(list);
    if (bad) return MS_EXIT_SOFTWARE;
  }
  D->first[++D->n] = D->nv;
  return 0;
}

static void domains_free(fit_domains *D) {
  for (size_t i = 0; i < D->n; i++) free((char *)D->cols[i]);
  for (size_t i = 0; i < D->nv; i++) free((char *)D->vals[i]);
  free(D->cols);
  free(D->vals);
  free(D->first);
}

/* --rebalance col | col=uniform | col=w1,w2,... | col=label:w,label:w,... */
typedef struct {
  char *col;
  char **labels;
  double *w;
  size_t n;
} fit_rebalance;

static int parse_rebalance(fit_rebalance *R, const char *arg) {
  const char *eq = strchr(arg, '=');
  if (!(R->col = eq ? strndup(arg, (size_t)(eq - arg)) : strdup(arg))) return MS_EXIT_SOFTWARE;
  if (!R->col[0]) {
    ms_cli_error("fit", "--rebalance: '%s' names no column", arg);
    return MS_EXIT_USAGE;
  }
  if (!eq || !strcmp(eq + 1, "uniform")) return 0;
  char *list = strdup(eq + 1);
  size_t k = 0;
  char **items = list ? ms_cli_split_list(list, &k) : NULL;
  int rc = 0;
  R->w = calloc(k + 1, sizeof *R->w);
  R->labels = calloc(k + 1, sizeof *R->labels);
  if (!items || !R->w || !R->labels) rc = MS_EXIT_SOFTWARE;
  int with_labels = -1;
  for (size_t i = 0; i < k && !rc; i++) {
    char *colon = strrchr(items[i], ':');
    if (with_labels == -1) with_labels = colon != NULL;
    if ((colon != NULL) != with_labels) {
      ms_cli_error("fit", "--rebalance %s: give every weight as label:w or none", R->col);
      rc = MS_EXIT_USAGE;
      break;
    }
    if (colon) {
      *colon = '\0';
      if (!(R->labels[i] = strdup(items[i]))) rc = MS_EXIT_SOFTWARE;
    }
    if (!rc && (ms_cli_parse_double(colon ? colon + 1 : items[i], &R->w[i]) || !(R->w[i] >= 0))) {
      ms_cli_error("fit", "--rebalance %s: weight '%s' is not a number >= 0", R->col, colon ? colon + 1 : items[i]);
      rc = MS_EXIT_USAGE;
    }
    R->n = i + 1;
  }
  if (with_labels != 1) {
    free(R->labels);
    R->labels = NULL;
  }
  free(items);
  free(list);
  return rc;
}

static void rebalance_free(fit_rebalance *R) {
  for (size_t i = 0; R->labels && i < R->n; i++) free(R->labels[i]);
  free(R->labels);
  free(R->w);
  free(R->col);
}

/* A bound: a number, or a date (YYYY-MM-DD) as its day number. */
static int parse_bound(const char *s, double *v) {
  int32_t days;
  if (!ms_cli_parse_double(s, v)) return 0;
  if (ms_date_parse(s, &days) == 0) {
    *v = (double)days;
    return 0;
  }
  return -1;
}

static int fit_run(int argc, char **argv, fit_domains *dp, fit_rebalance *rp) {
  const char *data = NULL, *out = NULL, *sample_out = NULL, *name = NULL, *table = NULL;
  const char *date_format = NULL;
  char sep = 0;
  char *types_s = NULL, *id_s = NULL, *qi_s = NULL, *na_s = NULL, *bounds_s = NULL, *order_s = NULL;
  ms_fit_params fp;
  ms_fit_params_init(&fp);
  int force = 0, has_eps = 0, independent = 0;
  fit_domains *D = dp;
  fit_rebalance *R = rp;
  uint64_t sample_n = 0;
  int rc = MS_EXIT_OK;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_ARG()                                                   \
  do {                                                               \
    if (!v) {                                                        \
      ms_cli_error("fit", "option %s needs a value", a);             \
      return MS_EXIT_USAGE;                                          \
    }                                                                \
    i++;                                                             \
  } while (0)
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      fputs(usage_text, stdout);
      return MS_EXIT_OK;
    } else if (!strcmp(a, "--data")) { NEED_ARG(); data = v; }
    else if (!strcmp(a, "-o") || !strcmp(a, "--output")) { NEED_ARG(); out = v; }
    else if (!strcmp(a, "--types")) { NEED_ARG(); if (ms_cli_join_list(&types_s, v)) return MS_EXIT_SOFTWARE; }
    else if (!strcmp(a, "--id")) { NEED_ARG(); if (ms_cli_join_list(&id_s, v)) return MS_EXIT_SOFTWARE; }
    else if (!strcmp(a, "--quasi-identifiers")) { NEED_ARG(); if (ms_cli_join_list(&qi_s, v)) return MS_EXIT_SOFTWARE; }
    else if (!strcmp(a, "--na")) { NEED_ARG(); if (ms_cli_join_list(&na_s, v)) return MS_EXIT_SOFTWARE; }
    else if (!strcmp(a, "--bounds")) { NEED_ARG(); if (ms_cli_join_list(&bounds_s, v)) return MS_EXIT_SOFTWARE; }
    else if (!strcmp(a, "--order")) { NEED_ARG(); if (ms_cli_join_list(&order_s, v)) return MS_EXIT_SOFTWARE; }
    else if (!strcmp(a, "--domain")) {
      NEED_ARG();
      int e = parse_domain(D, v);
      if (e) return e;
    } else if (!strcmp(a, "--rebalance")) {
      NEED_ARG();
      int e = R->col ? (ms_cli_error("fit", "--rebalance is given once"), MS_EXIT_USAGE) : parse_rebalance(R, v);
      if (e) return e;
    }
    else if (!strcmp(a, "--name")) { NEED_ARG(); name = v; }
    else if (!strcmp(a, "--table")) { NEED_ARG(); table = v; }
    else if (!strcmp(a, "--date-format")) { NEED_ARG(); date_format = v; }
    else if (!strcmp(a, "--sep")) {
      NEED_ARG();
      if (!strcmp(v, "tab") || !strcmp(v, "\\t")) sep = '\t';
      else if (strlen(v) == 1 && v[0] != '"' && v[0] != '\n' && v[0] != '\r') sep = v[0];
      else {
        ms_cli_error("fit", "--sep needs one character (or 'tab'), got '%s'", v);
        return MS_EXIT_USAGE;
      }
    }
    else if (!strcmp(a, "--force")) force = 1;
    else if (!strcmp(a, "--no-parametric")) fp.parametric = 0;
    else if (!strcmp(a, "--no-copula")) fp.copula = 0;
    else if (!strcmp(a, "--no-mixture")) fp.mixture = 0;
    else if (!strcmp(a, "--independent")) independent = 1;
    else if (!strcmp(a, "--sample-out")) { NEED_ARG(); sample_out = v; }
    else if (!strcmp(a, "--sample")) {
      NEED_ARG();
      if (ms_cli_parse_u64(v, &sample_n) || sample_n == 0) {
        ms_cli_error("fit", "--sample needs a positive integer, got '%s'", v);
        return MS_EXIT_USAGE;
      }
    } else if (!strcmp(a, "--k-min")) {
      NEED_ARG();
      uint64_t k;
      if (ms_cli_parse_u64(v, &k) || k < 1 || k > 1000000) {
        ms_cli_error("fit", "--k-min needs an integer >= 1, got '%s'", v);
        return MS_EXIT_USAGE;
      }
      fp.k_min = (size_t)k;
    } else if (!strcmp(a, "--seed")) {
      NEED_ARG();
      if (ms_cli_parse_u64(v, &fp.seed)) {
        ms_cli_error("fit", "--seed needs a non-negative integer, got '%s'", v);
        return MS_EXIT_USAGE;
      }
    } else if (!strcmp(a, "--epsilon")) {
      NEED_ARG();
      if (ms_cli_parse_double(v, &fp.epsilon) || !(fp.epsilon > 0)) {
        ms_cli_error("fit", "--epsilon must be a number > 0, got '%s'", v);
        return MS_EXIT_USAGE;
      }
      has_eps = 1;
    } else if (!strcmp(a, "--method")) {
      NEED_ARG();
      fp.method = ms_fit_method_from_name(v);
      if (fp.method == MS_FIT_METHOD_COUNT) {
        ms_cli_error("fit", "--method must be auto, copula, mst or aim, got '%s'", v);
        return MS_EXIT_USAGE;
      }
    } else if (!strcmp(a, "--delta")) {
      NEED_ARG();
      if (ms_cli_parse_double(v, &fp.delta) || !(fp.delta > 0) || fp.delta >= 1) {
        ms_cli_error("fit", "--delta must be a number in (0, 1), got '%s'", v);
        return MS_EXIT_USAGE;
      }
    } else {
      ms_cli_error("fit", "unknown option '%s'\n%s", a, usage_text);
      return MS_EXIT_USAGE;
    }
#undef NEED_ARG
  }
  if (!data || !out) {
    ms_cli_error("fit", "--data and -o are required\n%s", usage_text);
    return MS_EXIT_USAGE;
  }
  if (fp.delta > 0 && !has_eps) {
    ms_cli_error("fit", "--delta needs --epsilon");
    return MS_EXIT_USAGE;
  }
  if ((sample_n > 0) != (sample_out != NULL)) {
    ms_cli_error("fit", "--sample and --sample-out go together");
    return MS_EXIT_USAGE;
  }
  ms_cli_catch_signals();
  fp.cancel = ms_cli_cancel_flag();

  ms_csv_params co;
  ms_csv_params_init(&co);
  size_t n_types = 0, n_ids = 0, n_qi = 0, n_na = 0, n_bounds = 0;
  char **types_l = types_s ? ms_cli_split_list(types_s, &n_types) : NULL;
  char **ids = id_s ? ms_cli_split_list(id_s, &n_ids) : NULL;
  char **qis = qi_s ? ms_cli_split_list(qi_s, &n_qi) : NULL;
  char **nas = na_s ? ms_cli_split_list(na_s, &n_na) : NULL;
  char **bnds = bounds_s ? ms_cli_split_list(bounds_s, &n_bounds) : NULL;
  size_t n_orders = 0;
  char **ords = order_s ? ms_cli_split_list(order_s, &n_orders) : NULL;
  const char **o_after = calloc(n_orders + 1, sizeof *o_after), **o_before = calloc(n_orders + 1, sizeof *o_before);
  ms_type_override *ov = calloc(n_types + 1, sizeof *ov);
  const char **bcol = calloc(n_bounds + 1, sizeof *bcol);
  double *blo = calloc(n_bounds + 1, sizeof *blo), *bhi = calloc(n_bounds + 1, sizeof *bhi);
  ms_fit_model *m = NULL;
  ms_frame *fr = NULL, *syn = NULL;
  char *json = NULL, *acct = NULL;
  ms_output *o_spec = NULL, *o_sample = NULL;
  ms_diag d;
  ms_diag_init(&d);
  if (!ov || !bcol || !blo || !bhi || !o_after || !o_before) {
    rc = MS_EXIT_SOFTWARE;
    goto done;
  }
  /* A signal between phases: the outputs are removed at done. */
#define STOP_IF_SIGNALLED()                             \
  do {                                                  \
    if (ms_cli_signal()) {                              \
      rc = ms_cli_exit_code(MS_ERR_CANCELLED);          \
      goto done;                                        \
    }                                                   \
  } while (0)
  ms_status st;
  if ((st = ms_output_open(&o_spec, out, MS_OUTPUT_FILE, force, &d)) != MS_OK ||
      (sample_out && (st = ms_output_open(&o_sample, sample_out, MS_OUTPUT_FILE, 1, &d)) != MS_OK)) {
    ms_cli_print_diag(&d);
    rc = st == MS_ERR_IO || st == MS_ERR_EXISTS ? MS_EXIT_CANTCREAT : ms_cli_exit_code(st);
    goto done;
  }
  for (size_t t = 0; t < n_types; t++) {
    char *eq = strchr(types_l[t], '=');
    if (!eq || (ov[t].kind = ms_fkind_from_name(eq + 1)) == MS_FKIND_COUNT) {
      ms_cli_error("fit", "--types: '%s' is not col=kind (kinds: id categorical integer real date bool)",
                   types_l[t]);
      rc = MS_EXIT_USAGE;
      goto done;
    }
    *eq = '\0';
    ov[t].column = types_l[t];
  }
  for (size_t b = 0; b < n_bounds; b++) {
    char *eq = strchr(bnds[b], '='), *colon = eq ? strchr(eq, ':') : NULL;
    if (!eq || !colon) {
      ms_cli_error("fit", "--bounds: '%s' is not col=lo:hi", bnds[b]);
      rc = MS_EXIT_USAGE;
      goto done;
    }
    *eq = *colon = '\0';
    if (parse_bound(eq + 1, &blo[b]) || parse_bound(colon + 1, &bhi[b]) || !(bhi[b] > blo[b])) {
      ms_cli_error("fit", "--bounds for '%s': need numbers or dates (YYYY-MM-DD) lo < hi", bnds[b]);
      rc = MS_EXIT_USAGE;
      goto done;
    }
    bcol[b] = bnds[b];
  }
  for (size_t q = 0; q < n_orders; q++) {
    char *ge = strstr(ords[q], ">=");
    if (!ge || ge == ords[q] || !ge[2]) {
      ms_cli_error("fit", "--order: '%s' is not b>=a (b never below a)", ords[q]);
      rc = MS_EXIT_USAGE;
      goto done;
    }
    *ge = '\0';
    o_after[q] = ords[q];
    o_before[q] = ge + 2;
  }
  co.types = ov;
  co.n_types = n_types;
  co.delimiter = sep;
  co.date_format = date_format;
  co.id_columns = (const char *const *)ids;
  co.n_id_columns = n_ids;
  if (na_s) {
    co.na_values = (const char *const *)nas;
    co.n_na_values = n_na;
  }
  fp.quasi_identifiers = (const char *const *)qis;
  fp.n_quasi_identifiers = n_qi;
  fp.bound_columns = bcol;
  fp.bound_lo = blo;
  fp.bound_hi = bhi;
  fp.n_bounds = n_bounds;
  fp.order_after = o_after;
  fp.order_before = o_before;
  fp.n_orders = n_orders;
  fp.domain_columns = D->cols;
  fp.domain_values = D->vals;
  fp.domain_first = D->first;
  fp.n_domains = D->n;
  fp.rebalance_column = R->col;
  fp.rebalance_labels = (const char *const *)R->labels;
  fp.rebalance_weights = R->w;
  fp.n_rebalance_weights = R->n;
  fp.name = name;
  fp.table = table;

  /* --table picks the table of an HDF5 input and names the spec's table. */
  st = ms_frame_read(&fr, data, table, &co, &d);
  if (st) {
    ms_cli_print_diag(&d);
    rc = ms_cli_exit_code(st);
    goto done;
  }
  STOP_IF_SIGNALLED();
  st = ms_fit_model_new(&m, fr, &fp, &d);
  ms_cli_print_diag(&d);
  if (st) {
    rc = ms_cli_exit_code(st);
    goto done;
  }
  json = ms_fit_model_to_json(m);
  acct = ms_fit_model_accounting(m);
  if (!json || !acct) {
    rc = MS_EXIT_SOFTWARE;
    goto done;
  }
  /* The spec is checked by the loader `records` uses before it is written:
   * fit never leaves a spec behind that records rejects. */
  {
    ms_spec *chk = NULL;
    ms_diag_clear(&d);
    st = ms_spec_load_string(&chk, json, strlen(json), out, &d);
    ms_spec_free(chk);
    if (st) {
      ms_cli_print_diag(&d);
      ms_cli_error("fit", "the fitted spec does not load (a medsynth bug); nothing written");
      rc = MS_EXIT_SOFTWARE;
      goto done;
    }
  }
  fprintf(stderr, "fit: %zu rows x %zu columns from %s\n", fr->n_rows, fr->n_cols, data);
  for (size_t j = 0; j < fr->n_cols; j++)
    fprintf(stderr, "  %-24s %-11s %zu missing\n", fr->cols[j].name, ms_fkind_name(fr->cols[j].kind),
            fr->cols[j].n_missing);
  fputs(acct, stderr);
  STOP_IF_SIGNALLED();
  ms_diag_clear(&d);
  if ((st = ms_output_write(o_spec, json, strlen(json), &d)) == MS_OK)
    st = ms_output_write(o_spec, "\n", 1, &d);
  if (st == MS_OK && sample_n) {
    st = ms_fit_model_sample(&syn, m, (size_t)sample_n, fp.seed, independent, &d);
    STOP_IF_SIGNALLED();
    if (!st) st = ms_frame_write_csv(syn, ms_output_path(o_sample), &d);
    ms_output_name_diag(o_sample, &d);
  }
  STOP_IF_SIGNALLED();
  /* The point of no return: both renames follow at once. */
  if (st == MS_OK) {
    st = ms_output_commit(o_spec, &d);
    o_spec = NULL;
  }
  if (st == MS_OK && o_sample) {
    st = ms_output_commit(o_sample, &d);
    o_sample = NULL;
  }
  if (st) {
    ms_cli_print_diag(&d);
    rc = ms_cli_exit_code(st);
  }
#undef STOP_IF_SIGNALLED
done:
  ms_output_abort(o_spec);
  ms_output_abort(o_sample);
  ms_diag_deinit(&d);
  ms_frame_free(fr);
  ms_frame_free(syn);
  ms_fit_model_free(m);
  free(json);
  free(acct);
  free(types_l);
  free(ids);
  free(qis);
  free(nas);
  free(bnds);
  free(types_s);
  free(id_s);
  free(qi_s);
  free(na_s);
  free(bounds_s);
  free(ords);
  free(order_s);
  free(o_after);
  free(o_before);
  free(ov);
  free(bcol);
  free(blo);
  free(bhi);
  return rc;
}

/* The parsed --domain and --rebalance lists live until the command ends,
 * whichever way it ends. */
static int cmd_fit(int argc, char **argv) {
  fit_domains doms = {0};
  fit_rebalance reb = {0};
  int rc = fit_run(argc, argv, &doms, &reb);
  domains_free(&doms);
  rebalance_free(&reb);
  return rc;
}

MS_CLI_COMMAND(fit, "learn a spec from a real table (optionally differentially private)", cmd_fit);
