/* FHIR and DICOM output: UCUM unit syntax, deterministic UUIDs and their
 * DICOM UID form, and out-of-memory behaviour of the FHIR writer and the
 * DICOM writer (every allocation of a whole run failed once: MS_ERR_NOMEM
 * with a message and no directory left, or MS_OK with the complete output).
 * The formats themselves are checked end to end against the HL7 FHIR R4
 * schema and dciodvfy/pydicom by tests/cli/fhir_*.sh and dicom_phantom.sh.
 * ctest-labels: unit
 */
#include <dirent.h>
#include <gsl/gsl_errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/uuid.h"
#include "medsynth/dicom.h"
#include "medsynth/faultsim.h"
#include "medsynth/fhir.h"
#include "medsynth/records.h"
#include "records/fhir.h"
#include "spec_helpers.h"

static void test_fhir_ucum_accepts_clinical_units(void **state) {
  (void)state;
  static const char *const good[] = {"mm[Hg]", "kg/m2", "/min", "%", "Cel", "g/dL", "10*3/uL",
                                     "m[IU]/L", "mL/min/{1.73_m2}", "{INR}", "mg/dL", "mmol/L",
                                     "U/L", "fL", "pg/mL", "a", "cm", "kg", "1", "[in_i]",
                                     "10*6/uL", "ug", "[IU]", "mg/(24.h)", "{score}", "s-1"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    char why[200];
    if (ms__ucum_check(good[i], why, sizeof why)) fail_msg("\"%s\" rejected: %s", good[i], why);
  }
}

static void test_fhir_ucum_rejects_common_mistakes(void **state) {
  (void)state;
  static const char *const bad[] = {"mmHg", "years", "bpm", "mcg/L", "IU/L", "", "kg/", "mg/(dL",
                                    "{unclosed", "pack-years", "mg dl"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char why[200];
    if (!ms__ucum_check(bad[i], why, sizeof why)) fail_msg("\"%s\" accepted", bad[i]);
    assert_true(why[0] != 0);
  }
}

static void test_fhir_uuid_is_deterministic_v8_and_oid_is_its_decimal(void **state) {
  (void)state;
  ms__uuid a = ms__uuid_make(42, "patients", 7), b = ms__uuid_make(42, "patients", 7);
  ms__uuid c = ms__uuid_make(42, "patients", 8), e = ms__uuid_make(43, "patients", 7);
  assert_memory_equal(a.b, b.b, 16);
  assert_memory_not_equal(a.b, c.b, 16);
  assert_memory_not_equal(a.b, e.b, 16);
  assert_int_equal(a.b[6] >> 4, 8);      /* version 8 */
  assert_int_equal(a.b[8] >> 6, 2);      /* RFC variant */
  char t[37], oid[48];
  ms__uuid_text(&a, t);
  assert_int_equal(strlen(t), 36);
  assert_int_equal(t[14], '8');
  ms__uuid_oid(&a, oid);
  /* the decimal digits, recomputed with 128-bit arithmetic */
  unsigned __int128 v = 0;
  for (int i = 0; i < 16; i++) v = v << 8 | a.b[i];
  char dig[48];
  int n = 0;
  do {
    dig[n++] = (char)('0' + (int)(v % 10));
    v /= 10;
  } while (v);
  char want[64] = "2.25.";
  for (int i = 0; i < n; i++) want[5 + i] = dig[n - 1 - i];
  want[5 + n] = 0;
  assert_string_equal(oid, want);
  assert_true(strlen(oid) <= 64);
  char uid[MS_DICOM_UID_MAX];
  ms_dicom_uid(uid, 42, "patients", 7);
  assert_string_equal(uid, oid);
}

static int dir_has_tmp(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  struct dirent *e;
  int found = 0;
  while ((e = readdir(d)))
    if (strstr(e->d_name, ".tmp.")) found = 1;
  closedir(d);
  return found;
}

static void rm_rf(const char *p) {
  char cmd[4400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
  assert_int_equal(system(cmd), 0);
}

static ms_status fhir_run(const ms_spec *s, const char *out, ms_fhir_layout layout, ms_diag *d) {
  ms_fhir_params o;
  ms_fhir_params_init(&o);
  o.layout = layout;
  o.seed = 5;
  o.threads = 1;
  o.no_timestamp = 1;
  ms_fhir_writer *w = NULL;
  ms_status st = ms_fhir_writer_open(&w, out, s, &o, d);
  if (st) return st;
  ms_sink sink = ms_fhir_writer_sink(w);
  ms_generate_params go;
  ms_generate_params_init(&go);
  go.threads = 1;
  st = ms_generate(s, &go, &sink, NULL, d);
  if (st == MS_OK) return ms_fhir_writer_commit(w, d);
  ms_fhir_writer_abort(w);
  return st;
}

static void test_fhir_writer_survives_every_allocation_failure(void **state) {
  (void)state;
  ms_diag d;
  ms_diag_init(&d);
  const char *text = good_spec("fhir_patients_visits_observations");
  ms_spec *s = NULL;
  assert_int_equal(ms_spec_load_string(&s, text, strlen(text), "fault.json", &d), MS_OK);
  char base[] = "/tmp/ms_test_fhir.XXXXXX";
  assert_non_null(mkdtemp(base));
  char out[4200];
  snprintf(out, sizeof out, "%s/out", base);
  for (int layout = 0; layout < MS_FHIR_LAYOUT_COUNT; layout++) {
    long i = 0;
    for (; i < 5000; i++) {
      ms_diag_deinit(&d);
      ms_diag_init(&d);
      ms_faultsim_config(i, 1);
      ms_status st = fhir_run(s, out, (ms_fhir_layout)layout, &d);
      long failed = ms_faultsim_failures();
      ms_faultsim_config(-1, 0);
      struct stat sb;
      if (st == MS_OK) {
        char m[4300];
        snprintf(m, sizeof m, "%s/manifest.json", out);
        assert_int_equal(stat(m, &sb), 0);
        rm_rf(out);
      } else {
        if (st != MS_ERR_NOMEM) fail_msg("allocation %ld: status %s", i, ms_status_name(st));
        if (d.count == 0) fail_msg("allocation %ld: MS_ERR_NOMEM without a message", i);
        assert_int_not_equal(stat(out, &sb), 0); /* no partial directory */
      }
      assert_false(dir_has_tmp(base));
      if (failed == 0) break;
    }
    assert_true(i > 10 && i < 5000);
  }
  rm_rf(base);
  ms_spec_free(s);
  ms_diag_deinit(&d);
}

static void test_dicom_writer_survives_every_allocation_failure(void **state) {
  (void)state;
  ms_phantom_params p;
  ms_phantom_params_init(&p, MS_PHANTOM_CHEST);
  p.width = p.height = 48;
  p.depth = 2;
  ms_diag d;
  ms_diag_init(&d);
  ms_phantom_image img;
  assert_int_equal(ms_phantom_image_init(&img, &p, &d), MS_OK);
  assert_int_equal(ms_phantom_generate(&img, &p, NULL, 1, 0, &d), MS_OK);
  char base[] = "/tmp/ms_test_dicom.XXXXXX";
  assert_non_null(mkdtemp(base));
  char out[4200];
  snprintf(out, sizeof out, "%s/dcm", base);
  long i = 0;
  for (; i < 5000; i++) {
    ms_diag_deinit(&d);
    ms_diag_init(&d);
    ms_faultsim_config(i, 1);
    ms_dicom_dir *dd = NULL;
    ms_status st = ms_dicom_dir_open(&dd, out, 0, &d);
    ms_dicom_subject subj = {.patient_id = "P1", .patient_name = "P^1", .seed = 1, .key = "t/f", .index = 0};
    if (st == MS_OK) st = ms_dicom_write_phantom(ms_dicom_dir_path(dd), &subj, &p, &img, &d);
    if (st == MS_OK)
      st = ms_dicom_dir_commit(dd, &d);
    else
      ms_dicom_dir_abort(dd);
    long failed = ms_faultsim_failures();
    ms_faultsim_config(-1, 0);
    struct stat sb;
    if (st == MS_OK) {
      char f[4300];
      snprintf(f, sizeof f, "%s/00000/SEG.dcm", out);
      assert_int_equal(stat(f, &sb), 0);
      rm_rf(out);
    } else {
      if (st != MS_ERR_NOMEM) fail_msg("allocation %ld: status %s", i, ms_status_name(st));
      assert_int_not_equal(stat(out, &sb), 0);
    }
    assert_false(dir_has_tmp(base));
    if (failed == 0) break;
  }
  assert_true(i > 3 && i < 5000);
  rm_rf(base);
  ms_phantom_image_deinit(&img);
  ms_diag_deinit(&d);
}

int main(void) {
  gsl_set_error_handler_off();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fhir_ucum_accepts_clinical_units),
      cmocka_unit_test(test_fhir_ucum_rejects_common_mistakes),
      cmocka_unit_test(test_fhir_uuid_is_deterministic_v8_and_oid_is_its_decimal),
      cmocka_unit_test(test_fhir_writer_survives_every_allocation_failure),
      cmocka_unit_test(test_dicom_writer_survives_every_allocation_failure),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
