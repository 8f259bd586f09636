/* libFuzzer target: the CSV reader of `medsynth fit` (table/frame.c), and the
 * fit of what it reads.
 *
 * The first input byte picks reader and fit options (delimiter, missing
 * tokens, identifier share, differential privacy, parametric marginals,
 * copula); the rest is the CSV text. A frame that parses is printed cell by
 * cell and, when it is small (at most 256 rows and 12 columns), fitted; the
 * fitted spec is loaded back with the spec loader and a few rows are drawn
 * from the model with the reference sampler.
 *
 * Oracle: the sanitizers, plus: a failed read leaves an error in the diag;
 * every code of a categorical column is -1 or a level; the spec written by a
 * successful fit is one the spec loader accepts (`medsynth fit` output must
 * run with `medsynth records`). */
#include <gsl/gsl_errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "medsynth/fit.h"
#include "medsynth/records.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  gsl_set_error_handler_off();
  return 0;
}

static void check_frame(const ms_frame *f) {
  char buf[128];
  for (size_t j = 0; j < f->n_cols; j++) {
    const ms_frame_col *c = &f->cols[j];
    if (!c->name) abort();
    for (size_t r = 0; r < f->n_rows; r++) {
      if (c->code && (c->code[r] < -1 || (c->code[r] >= 0 && (size_t)c->code[r] >= c->n_levels)))
        abort();
      ms_frame_cell_text(f, r, j, buf, sizeof buf);
    }
  }
}

static void fit(const ms_frame *f, unsigned sel) {
  ms_fit_params p;
  ms_fit_params_init(&p);
  p.k_min = 2 + (sel & 3);
  if (sel & 4) p.epsilon = 1.0;
  p.parametric = (sel >> 3) & 1;
  /* DP never chooses a parametric family, so under DP that bit picks a
   * graphical model: MST or AIM by the copula bit (which they do not use). */
  if ((sel & 4) && p.parametric) p.method = (sel >> 4) & 1 ? MS_FIT_METHOD_MST : MS_FIT_METHOD_AIM;
  p.copula = (sel >> 4) & 1;
  p.seed = sel;
  ms_diag d;
  ms_diag_init(&d);
  ms_fit_model *m = NULL;
  if (ms_fit_model_new(&m, f, &p, &d) == MS_OK) {
    char *json = ms_fit_model_to_json(m);
    free(ms_fit_model_accounting(m));
    if (json) {
      ms_diag sd;
      ms_diag_init(&sd);
      ms_spec *spec = NULL;
      if (ms_spec_load_string(&spec, json, strlen(json), "fitted.json", &sd) != MS_OK) {
        char *text = ms_diag_format(&sd);
        fprintf(stderr, "fitted spec rejected:\n%s\n%s\n", text ? text : "", json);
        abort();
      }
      ms_spec_free(spec);
      ms_diag_deinit(&sd);
      free(json);
    }
    ms_frame *syn = NULL;
    if (ms_fit_model_sample(&syn, m, 20, sel, (sel >> 5) & 1, &d) == MS_OK) check_frame(syn);
    ms_frame_free(syn);
  }
  ms_fit_model_free(m);
  ms_diag_deinit(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  unsigned sel = data[0];
  static const char delims[4] = {',', ';', '\t', '|'};
  static const char *const na[] = {"", "-", "missing"};
  ms_csv_params o;
  ms_csv_params_init(&o);
  o.delimiter = delims[sel & 3];
  if (sel & 0x40) {
    o.na_values = na;
    o.n_na_values = 3;
  }
  if (sel & 0x80) {
    o.id_distinct_share = 0.9;
    o.int_categorical_max = 5;
  }
  ms_diag d;
  ms_diag_init(&d);
  ms_frame *f = NULL;
  ms_status st = ms_frame_parse_csv(&f, (const char *)data + 1, size - 1, "fuzz.csv", &o, &d);
  free(ms_diag_format(&d));
  if (st != MS_OK) {
    if (f || d.n_errors == 0) abort();
  } else {
    if (!f) abort();
    check_frame(f);
    if (f->n_rows <= 256 && f->n_cols <= 12) fit(f, sel >> 2);
  }
  ms_frame_free(f);
  ms_diag_deinit(&d);
  return 0;
}
