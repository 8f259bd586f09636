/* Tests of the vocabulary CSV loader (gen/records/vocab.c): RFC 4180 quoting,
 * ragged records with line numbers, UTF-8 validation, column access, number
 * parsing with row-numbered errors, the hash index, name resolution, and
 * that every shipped vocabulary in schemas/vocab/ loads with unique keys.
 * ctest-labels: unit
 *
 * Expected diagnostics are compared as full formatted lines
 * ("file:line:column: error: message") so that positions are pinned. */
#include <math.h>
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

#include "records/vocab.h"

static ms__vocab *load_ok(const char *text) {
  ms_diag d;
  ms_diag_init(&d);
  ms__vocab *v = NULL;
  ms_status st = ms__vocab_load_string(&v, text, strlen(text), "t.csv", &d);
  if (st != MS_OK) {
    char *s = ms_diag_format(&d);
    fprintf(stderr, "%s", s ? s : "");
    free(s);
  }
  assert_int_equal(st, MS_OK);
  assert_non_null(v);
  assert_int_equal(d.count, 0);
  ms_diag_deinit(&d);
  return v;
}

/* Loads text expecting failure; returns the formatted diagnostics. */
static char *load_fail(const char *text, size_t len, ms_status want) {
  ms_diag d;
  ms_diag_init(&d);
  ms__vocab *v = NULL;
  ms_status st = ms__vocab_load_string(&v, text, len, "t.csv", &d);
  assert_int_equal(st, want);
  assert_null(v);
  assert_true(d.n_errors > 0);
  char *s = ms_diag_format(&d);
  ms_diag_deinit(&d);
  return s;
}

static void test_vocab_parses_quoted_fields(void **state) {
  (void)state;
  const char *csv =
      "code,description,weight\r\n"
      "I10,Essential (primary) hypertension,5.5\r\n"
      "E78.5,\"Hyperlipidemia, unspecified\",2.4\r\n"
      "X1,\"He said \"\"hi\"\"\",1\r\n"
      "X2,\"two\nlines\",\"\"\r\n"
      "X3,,0\n";
  ms__vocab *v = load_ok(csv);
  assert_int_equal(ms__vocab_n_cols(v), 3);
  assert_int_equal(ms__vocab_n_rows(v), 5);
  assert_string_equal(ms__vocab_col_name(v, 1), "description");
  assert_string_equal(ms__vocab_cell(v, 1, 1), "Hyperlipidemia, unspecified");
  assert_string_equal(ms__vocab_cell(v, 2, 1), "He said \"hi\"");
  assert_string_equal(ms__vocab_cell(v, 3, 1), "two\nlines");
  assert_string_equal(ms__vocab_cell(v, 3, 2), "");
  assert_string_equal(ms__vocab_cell(v, 4, 1), "");
  /* Positions: the record after the embedded newline starts on line 7. */
  assert_int_equal(ms__vocab_cell_line(v, 4, 0), 7);
  assert_int_equal(ms__vocab_cell_line(v, 1, 1), 3);
  assert_int_equal(ms__vocab_cell_column(v, 1, 1), 7);
  const char *const *codes = ms__vocab_col_strings(v, 0);
  assert_string_equal(codes[0], "I10");
  assert_string_equal(codes[4], "X3");
  assert_null(ms__vocab_cell(v, 5, 0));
  ms__vocab_free(v);
}

static void test_vocab_skips_bom_blank_lines_and_keeps_trailing_empty_field(void **state) {
  (void)state;
  const char *csv = "\xEF\xBB\xBF" "a,b\n\nx,\n\r\ny,z";
  ms__vocab *v = load_ok(csv);
  assert_string_equal(ms__vocab_col_name(v, 0), "a");
  assert_int_equal(ms__vocab_n_rows(v), 2);
  assert_string_equal(ms__vocab_cell(v, 0, 1), "");
  assert_string_equal(ms__vocab_cell(v, 1, 1), "z");
  assert_int_equal(ms__vocab_cell_line(v, 1, 0), 5);
  ms__vocab_free(v);
}

static void test_vocab_reports_every_ragged_row_with_its_line(void **state) {
  (void)state;
  const char *csv = "a,b,c\n1,2,3\n1,2\n\"multi\nline\",2,3\n1,2,3,4\n";
  char *s = load_fail(csv, strlen(csv), MS_ERR_FORMAT);
  assert_string_equal(s,
                      "t.csv:3:1: error: row 2 has 2 fields, the header has 3\n"
                      "t.csv:6:1: error: row 4 has 4 fields, the header has 3\n");
  free(s);
}

static void test_vocab_rejects_bad_quoting_with_positions(void **state) {
  (void)state;
  const char *csv1 = "a,b\n1,ab\"c\n";
  char *s = load_fail(csv1, strlen(csv1), MS_ERR_FORMAT);
  assert_non_null(strstr(s, "t.csv:2:5: error: quote inside an unquoted field"));
  free(s);
  const char *csv2 = "a,b\n1,\"ab\"c\n";
  s = load_fail(csv2, strlen(csv2), MS_ERR_FORMAT);
  assert_non_null(strstr(s, "t.csv:2:7: error: unexpected character after closing quote"));
  free(s);
  const char *csv3 = "a,b\n1,2\n3,\"open\nstill open\n";
  s = load_fail(csv3, strlen(csv3), MS_ERR_FORMAT);
  assert_string_equal(s, "t.csv:3:3: error: unterminated quoted field\n");
  free(s);
}

static void test_vocab_rejects_invalid_utf8(void **state) {
  (void)state;
  /* Line 2: a lone continuation byte; line 3: an overlong '/' (C0 AF) and a
   * UTF-16 surrogate encoded in UTF-8 (ED A0 80); "é" (C3 A9) is fine. */
  const char csv[] = "a,b\nx\x80y,1\n\xC3\xA9,\xC0\xAF,\xED\xA0\x80\n";
  char *s = load_fail(csv, sizeof csv - 1, MS_ERR_FORMAT);
  assert_non_null(strstr(s, "t.csv:2:2: error: invalid UTF-8 byte sequence (byte 0x80)\n"));
  assert_non_null(strstr(s, "t.csv:3:4: error: invalid UTF-8 byte sequence (byte 0xC0)\n"));
  assert_non_null(strstr(s, "t.csv:3:7: error: invalid UTF-8 byte sequence (byte 0xED)\n"));
  free(s);
  const char nul[] = "a,b\n1,\0\n";
  s = load_fail(nul, sizeof nul - 1, MS_ERR_FORMAT);
  assert_non_null(strstr(s, "t.csv:2:3: error: NUL byte in vocabulary text"));
  free(s);
  /* Valid multi-byte text loads and is kept byte for byte. */
  ms__vocab *v = load_ok("name\nSjögren syndrome\n\xF0\x9F\xA9\xBA\n");
  assert_string_equal(ms__vocab_cell(v, 0, 0), "Sjögren syndrome");
  assert_string_equal(ms__vocab_cell(v, 1, 0), "\xF0\x9F\xA9\xBA");
  ms__vocab_free(v);
}

static void test_vocab_rejects_bad_headers_and_empty_text(void **state) {
  (void)state;
  const char *csv = "a,,a\n1,2,3\n";
  char *s = load_fail(csv, strlen(csv), MS_ERR_FORMAT);
  assert_string_equal(s,
                      "t.csv:1:3: error: empty column name in header\n"
                      "t.csv:1:4: error: duplicate column name \"a\"\n");
  free(s);
  s = load_fail("", 0, MS_ERR_FORMAT);
  assert_string_equal(s, "t.csv:1:1: error: empty vocabulary: no header row\n");
  free(s);
}

static void test_vocab_unknown_column_lists_columns(void **state) {
  (void)state;
  ms__vocab *v = load_ok("code,description\nI10,x\n");
  assert_int_equal(ms__vocab_col_find(v, "description"), 1);
  assert_int_equal(ms__vocab_col_find(v, "Description"), SIZE_MAX);
  ms_diag d;
  ms_diag_init(&d);
  assert_int_equal(ms__vocab_col_require(v, "weight", &d, "spec.json", 12, 9,
                                         "/tables/0/fields/4/vocab/weight"),
                   SIZE_MAX);
  assert_int_equal(ms__vocab_col_require(v, "code", &d, NULL, 0, 0, NULL), 0);
  char *s = ms_diag_format(&d);
  assert_string_equal(s,
                      "spec.json:12:9: error: /tables/0/fields/4/vocab/weight: vocabulary "
                      "\"t.csv\" has no column \"weight\" (columns: code, description)\n");
  assert_int_equal(ms_diag_status(&d), MS_ERR_SPEC);
  free(s);
  ms_diag_deinit(&d);
  ms__vocab_free(v);
}

static void test_vocab_parses_numbers_with_row_errors(void **state) {
  (void)state;
  ms__vocab *v = load_ok("k,x\na,1.5\nb,-2e3\nc,\nd,abc\ne,1.0 \nf,inf\ng,0x10\n");
  double out[7];
  ms_diag d;
  ms_diag_init(&d);
  assert_int_equal(ms__vocab_col_numbers(v, 1, 1, out, &d), MS_ERR_DATA);
  assert_true(fabs(out[0] - 1.5) < 1e-15);
  assert_true(fabs(out[1] + 2000.0) < 1e-12);
  assert_true(isnan(out[2]));
  char *s = ms_diag_format(&d);
  assert_string_equal(s,
                      "t.csv:5:3: error: row 4, column \"x\": \"abc\" is not a finite number\n"
                      "t.csv:6:3: error: row 5, column \"x\": \"1.0 \" is not a finite number\n"
                      "t.csv:7:3: error: row 6, column \"x\": \"inf\" is not a finite number\n"
                      "t.csv:8:3: error: row 7, column \"x\": \"0x10\" is not a finite number\n");
  free(s);
  ms_diag_clear(&d);
  /* Without allow_empty the empty cell is an error too. */
  assert_int_equal(ms__vocab_col_numbers(v, 1, 0, out, &d), MS_ERR_DATA);
  s = ms_diag_format(&d);
  assert_non_null(strstr(s, "t.csv:4:3: error: row 3, column \"x\": empty value where a number "
                            "is required\n"));
  free(s);
  ms_diag_deinit(&d);
  ms__vocab_free(v);
}

static void test_vocab_index_finds_keys_and_rejects_duplicates(void **state) {
  (void)state;
  /* 2000 keys: enough to exercise collisions in the open-addressing table. */
  size_t n = 2000;
  size_t cap = 32 + n * 24;
  char *csv = malloc(cap);
  size_t len = (size_t)snprintf(csv, cap, "code,val\n");
  for (size_t i = 0; i < n; i++) len += (size_t)snprintf(csv + len, cap - len, "K%zu,%zu\n", i, i * 3);
  ms__vocab *v = load_ok(csv);
  ms_diag d;
  ms_diag_init(&d);
  /* Before the index is built, lookup scans. */
  assert_int_equal(ms__vocab_find(v, 0, "K1999"), 1999);
  assert_int_equal(ms__vocab_index_build(v, 0, &d), MS_OK);
  assert_int_equal(ms__vocab_index_build(v, 0, &d), MS_OK);
  for (size_t i = 0; i < n; i++) {
    char key[32];
    snprintf(key, sizeof key, "K%zu", i);
    assert_int_equal(ms__vocab_find(v, 0, key), i);
  }
  assert_int_equal(ms__vocab_find(v, 0, "K2000"), SIZE_MAX);
  assert_int_equal(ms__vocab_find(v, 0, "k1"), SIZE_MAX);
  assert_int_equal(ms__vocab_find(v, 0, ""), SIZE_MAX);
  assert_string_equal(ms__vocab_lookup(v, 0, "K7", 1), "21");
  assert_null(ms__vocab_lookup(v, 0, "nope", 1));
  ms__vocab_free(v);
  free(csv);

  ms__vocab *w = load_ok("code,x\nA,1\nB,2\nA,3\n,4\n");
  assert_int_equal(ms__vocab_index_build(w, 0, &d), MS_ERR_DATA);
  char *s = ms_diag_format(&d);
  assert_string_equal(s,
                      "t.csv:4:1: error: row 3, key column \"code\": duplicate key \"A\" (first "
                      "on line 2)\n"
                      "t.csv:5:1: error: row 4, key column \"code\": empty key\n");
  free(s);
  /* A failed build leaves no index; lookups still work by scanning. */
  assert_int_equal(ms__vocab_find(w, 0, "B"), 1);
  ms_diag_deinit(&d);
  ms__vocab_free(w);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void test_vocab_resolve_search_order(void **state) {
  (void)state;
  char root[] = "/tmp/ms_vocab_XXXXXX";
  assert_non_null(mkdtemp(root));
  char spec[256], vocab[256], env1[256], env2[256], data[256], src[256], p[512];
  snprintf(spec, sizeof spec, "%s/examples", root);
  snprintf(vocab, sizeof vocab, "%s/vocab", root);
  snprintf(env1, sizeof env1, "%s/env1", root);
  snprintf(env2, sizeof env2, "%s/env2", root);
  snprintf(data, sizeof data, "%s/data", root);
  snprintf(src, sizeof src, "%s/src", root);
  const char *dirs[] = {spec, vocab, env1, env2, data, src};
  for (int i = 0; i < 6; i++) assert_int_equal(mkdir(dirs[i], 0700), 0);
  /* Each directory holds a file only it has, plus "shared.csv" in all. */
  const char *only[] = {"a", "b", "c", "d", "e", "f"};
  for (int i = 0; i < 6; i++) {
    snprintf(p, sizeof p, "%s/%s.csv", dirs[i], only[i]);
    write_file(p, "x\n1\n");
    snprintf(p, sizeof p, "%s/shared.csv", dirs[i]);
    write_file(p, "x\n1\n");
  }
  char envval[600];
  snprintf(envval, sizeof envval, "::%s:%s:", env1, env2);
  assert_int_equal(setenv("MEDSYNTH_VOCAB_PATH", envval, 1), 0);
  ms__vocab_search s = {.spec_dir = spec, .data_dir = data, .source_dir = src};
  ms_diag d;
  ms_diag_init(&d);
  for (int i = 0; i < 6; i++) {
    char *out = NULL;
    assert_int_equal(ms__vocab_resolve(only[i], &s, &out, &d, NULL), MS_OK);
    char want[512];
    snprintf(want, sizeof want, "%s/%s%s.csv", i == 1 ? spec : dirs[i], i == 1 ? "../vocab/" : "",
             only[i]);
    assert_string_equal(out, want);
    free(out);
  }
  char *out = NULL;
  assert_int_equal(ms__vocab_resolve("shared.csv", &s, &out, &d, NULL), MS_OK);
  snprintf(p, sizeof p, "%s/shared.csv", spec);
  assert_string_equal(out, p);
  free(out);
  /* An absolute name is used as it is. */
  snprintf(p, sizeof p, "%s/e.csv", data);
  assert_int_equal(ms__vocab_resolve(p, &s, &out, &d, NULL), MS_OK);
  assert_string_equal(out, p);
  free(out);
  assert_int_equal(d.count, 0);

  /* Not found: the message lists every directory searched. */
  assert_int_equal(ms__vocab_resolve("missing", &s, &out, &d, "/tables/0/fields/2/vocab/name"),
                   MS_ERR_NOTFOUND);
  assert_null(out);
  char *msg = ms_diag_format(&d);
  char want[2048];
  snprintf(want, sizeof want,
           "error: /tables/0/fields/2/vocab/name: vocabulary \"missing\" not found (looked for "
           "missing.csv in: %s, %s/../vocab, %s, %s, %s, %s; add a directory with "
           "MEDSYNTH_VOCAB_PATH)\n",
           spec, spec, env1, env2, data, src);
  assert_string_equal(msg, want);
  free(msg);
  ms_diag_deinit(&d);
  unsetenv("MEDSYNTH_VOCAB_PATH");

  for (int i = 0; i < 6; i++) {
    snprintf(p, sizeof p, "%s/%s.csv", dirs[i], only[i]);
    unlink(p);
    snprintf(p, sizeof p, "%s/shared.csv", dirs[i]);
    unlink(p);
    rmdir(dirs[i]);
  }
  rmdir(root);
}

static void test_vocab_load_reports_missing_file(void **state) {
  (void)state;
  ms_diag d;
  ms_diag_init(&d);
  ms__vocab *v = NULL;
  assert_int_equal(ms__vocab_load(&v, "/nonexistent/x.csv", &d), MS_ERR_NOTFOUND);
  assert_null(v);
  char *s = ms_diag_format(&d);
  assert_non_null(strstr(s, "/nonexistent/x.csv: error: cannot open vocabulary"));
  free(s);
  ms_diag_deinit(&d);
  ms__vocab_free(NULL);
}

/* Every shipped vocabulary loads, and its key column is unique. */
static void test_vocab_shipped_vocabularies_load(void **state) {
  (void)state;
  static const struct {
    const char *name, *key;
    const char *numeric[6];
  } files[] = {
      {"icd10cm_common", "code", {"weight", "prev_18_39", "prev_40_59", "prev_60_plus"}},
      {"labs_loinc", "loinc", {"ref_low_m", "ref_high_m", "ref_low_f", "ref_high_f", "decimals"}},
      {"medications", "name", {"dose"}},
      {"encounter_types", "code", {"weight", "los_meanlog", "los_sdlog"}},
  };
  ms__vocab_search s = {.source_dir = MS_SOURCE_DIR "/schemas/vocab"};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    ms_diag d;
    ms_diag_init(&d);
    char *path = NULL;
    ms__vocab *v = NULL;
    ms_status st = ms__vocab_resolve(files[i].name, &s, &path, &d, NULL);
    if (st == MS_OK) st = ms__vocab_load(&v, path, &d);
    if (st == MS_OK) {
      size_t key = ms__vocab_col_require(v, files[i].key, &d, NULL, 0, 0, NULL);
      st = key == SIZE_MAX ? MS_ERR_SPEC : ms__vocab_index_build(v, key, &d);
      assert_true(ms__vocab_n_rows(v) >= 4);
      double *buf = malloc(ms__vocab_n_rows(v) * sizeof *buf);
      for (int k = 0; k < 6 && files[i].numeric[k] && st == MS_OK; k++) {
        size_t c = ms__vocab_col_require(v, files[i].numeric[k], &d, NULL, 0, 0, NULL);
        st = c == SIZE_MAX ? MS_ERR_SPEC : ms__vocab_col_numbers(v, c, 1, buf, &d);
      }
      free(buf);
    }
    if (st != MS_OK) {
      char *m = ms_diag_format(&d);
      fprintf(stderr, "%s: %s", files[i].name, m ? m : "");
      free(m);
    }
    assert_int_equal(st, MS_OK);
    ms__vocab_free(v);
    free(path);
    ms_diag_deinit(&d);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_vocab_parses_quoted_fields),
      cmocka_unit_test(test_vocab_skips_bom_blank_lines_and_keeps_trailing_empty_field),
      cmocka_unit_test(test_vocab_reports_every_ragged_row_with_its_line),
      cmocka_unit_test(test_vocab_rejects_bad_quoting_with_positions),
      cmocka_unit_test(test_vocab_rejects_invalid_utf8),
      cmocka_unit_test(test_vocab_rejects_bad_headers_and_empty_text),
      cmocka_unit_test(test_vocab_unknown_column_lists_columns),
      cmocka_unit_test(test_vocab_parses_numbers_with_row_errors),
      cmocka_unit_test(test_vocab_index_finds_keys_and_rejects_duplicates),
      cmocka_unit_test(test_vocab_resolve_search_order),
      cmocka_unit_test(test_vocab_load_reports_missing_file),
      cmocka_unit_test(test_vocab_shipped_vocabularies_load),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
