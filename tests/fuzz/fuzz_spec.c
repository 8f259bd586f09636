/* libFuzzer target: the spec loader, and generation from the specs it
 * accepts.
 *
 * Each input is a spec text. It is loaded from memory (JSON parse,
 * validation, expression compilation, plan), its diagnostics are formatted,
 * and when it is valid and small a few rows of every table are generated
 * into memory (tests/memsink.h), images included (phantoms only, into an
 * HDF5 file under /dev/shm that is removed again).
 *
 * "Small" keeps one input in the millisecond range: root tables are cut to
 * 4 rows, and generation is skipped unless every child table's count has a
 * numeric "max" <= 4, every filtered table a "max_candidates" <= 500, and
 * every image field is a phantom of at most 64x64 pixels (x 4 slices) with a
 * supersampling of at most 2. Model-driven images are never sampled here
 * (tests/fuzz/fuzz_model.c covers model files).
 *
 * Oracle: the sanitizers, plus two invariants: a failed load leaves at least
 * one error in the diag and no spec; a successful one leaves no errors. */
#include <cjson/cJSON.h>
#include <gsl/gsl_errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "medsynth/images.h"
#include "medsynth/io.h"
#include "medsynth/records.h"
#include "memsink.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  gsl_set_error_handler_off();
  return 0;
}

static int num_at_most(const cJSON *o, const char *key, double limit) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsNumber(v) && v->valuedouble <= limit;
}

static int absent_or_at_most(const cJSON *o, const char *key, double limit) {
  return !cJSON_GetObjectItemCaseSensitive(o, key) || num_at_most(o, key, limit);
}

/* Whether generating from this (valid) spec stays cheap; see the top. */
static int small_enough(const uint8_t *data, size_t size) {
  cJSON *root = cJSON_ParseWithLength((const char *)data, size);
  if (!root) return 0;
  int ok = 1;
  const cJSON *tables = cJSON_GetObjectItemCaseSensitive(root, "tables");
  const cJSON *t;
  cJSON_ArrayForEach(t, tables) {
    if (cJSON_GetObjectItemCaseSensitive(t, "parent")) {
      const cJSON *count = cJSON_GetObjectItemCaseSensitive(t, "count");
      if (!cJSON_IsObject(count) || !num_at_most(count, "max", 4)) ok = 0;
    }
    if (cJSON_GetObjectItemCaseSensitive(t, "filter") && !num_at_most(t, "max_candidates", 500))
      ok = 0;
    const cJSON *im;
    cJSON_ArrayForEach(im, cJSON_GetObjectItemCaseSensitive(t, "images")) {
      if (cJSON_GetObjectItemCaseSensitive(im, "model")) ok = 0;
      if (!absent_or_at_most(im, "supersample", 2)) ok = 0;
    }
  }
  cJSON_Delete(root);
  return ok;
}

static void generate(const ms_spec *spec) {
  for (size_t i = 0; i < ms_spec_n_images(spec); i++) {
    uint64_t dims[4] = {0};
    int rank = ms_spec_image_item_dims(spec, i, dims);
    uint64_t n = 1;
    for (int k = 1; k < rank; k++) n *= dims[k];
    if (rank < 3 || n > 64 * 64 * 4 || dims[0] > 4) return;
  }
  ms_generate_params o;
  ms_generate_params_init(&o);
  o.rows = 4;
  o.threads = 1;
  ms_diag d;
  ms_diag_init(&d);
  ms_generate_report rep;
  if (ms_spec_n_images(spec) == 0) {
    memsink m;
    memset(&m, 0, sizeof m);
    ms_sink sink = memsink_sink(&m);
    ms_generate(spec, &o, &sink, &rep, &d);
    ms_generate_report_deinit(&rep);
    memsink_free(&m);
  } else {
    char path[64];
    snprintf(path, sizeof path, "/dev/shm/ms_fuzz_spec_%ld.h5", (long)getpid());
    ms_writer_params wo;
    ms_writer_params_init(&wo);
    wo.force = 1;
    wo.compression = 0;
    wo.threads = 1;
    wo.no_timestamp = 1;
    ms_writer *w = NULL;
    if (ms_writer_open(&w, path, &wo, &d) == MS_OK) {
      ms_images_params io;
      ms_images_params_init(&io);
      io.threads = 1;
      ms_images *im = NULL;
      if (ms_images_new(&im, spec, w, &io, &d) == MS_OK) {
        ms_sink sink = ms_images_sink(im);
        if (ms_generate(spec, &o, &sink, &rep, &d) == MS_OK) ms_images_finish(im, &d);
        ms_generate_report_deinit(&rep);
        ms_images_free(im);
      }
      ms_writer_abort(w);
    }
    unlink(path);
  }
  free(ms_diag_format(&d));
  ms_diag_deinit(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ms_diag d;
  ms_diag_init(&d);
  ms_spec *spec = NULL;
  ms_status st = ms_spec_load_string(&spec, (const char *)data, size, "fuzz.json", &d);
  char *text = ms_diag_format(&d);
  free(text);
  if (st != MS_OK) {
    if (spec || d.n_errors == 0) abort(); /* a failure must say why */
  } else {
    if (!spec || d.n_errors != 0) abort();
    if (small_enough(data, size)) generate(spec);
  }
  ms_spec_free(spec);
  ms_diag_deinit(&d);
  return 0;
}
