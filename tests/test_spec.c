/* Spec loading and validation: the JSON locator, every class of spec error
 * (each reported with file:line:column and JSON Pointer, all at once), the
 * golden bad-spec corpus, and the compiled schemas of valid specs.
 *
 * Golden files: tests/specs/bad/<name>.json pairs with <name>.err, the exact
 * diagnostics (one per line, as `medsynth validate` prints them). After a
 * deliberate change of messages, regenerate with
 *   MS_UPDATE_GOLDEN=1 build/test_spec
 * and review the diff.
 *
 * ctest-labels: unit golden */
#include <dirent.h>
#include <gsl/gsl_errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/jsonloc.h"
#include "medsynth/records.h"
#include "spec_helpers.h"

static char *read_all(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)n + 1);
  if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
    free(b);
    b = NULL;
  }
  if (b) b[n] = '\0';
  fclose(f);
  return b;
}

static void expect_error(const char *text, const char *line) {
  ms_status st;
  char *out = diag_of(text, &st);
  if (st == MS_OK || !strstr(out, line)) {
    print_error("expected\n  %s\ngot\n%s", line, out);
    free(out);
    fail();
  }
  free(out);
}

/* ---- locator ---------------------------------------------------------------- */

static void test_spec_jsonloc_finds_values_and_keys(void **state) {
  (void)state;
  const char *t =
      "{\n"
      "  \"a\": [1, {\"b/c\": 2, \"d~e\": [true, \"x\\\"y\"]}],\n"
      "\t\"k\\u00e9y\": null, \"z\": {\"\": 5}\n"
      "}";
  size_t n = strlen(t), off;
  int l, c;
  ms__jsonloc_pointer_linecol(t, n, "/a/0", 0, &l, &c);
  assert_int_equal(l, 2);
  assert_int_equal(c, 9);
  ms__jsonloc_pointer_linecol(t, n, "/a/1/b~1c", 0, &l, &c);
  assert_int_equal(c, 20);
  ms__jsonloc_pointer_linecol(t, n, "/a/1/b~1c", 1, &l, &c);
  assert_int_equal(c, 13);
  ms__jsonloc_pointer_linecol(t, n, "/a/1/d~0e/1", 0, &l, &c);
  assert_int_equal(l, 2);
  assert_int_equal(c, 37);
  ms__jsonloc_pointer_linecol(t, n, "/k\xc3\xa9y", 1, &l, &c);
  assert_int_equal(l, 3);
  assert_int_equal(c, 2);
  ms__jsonloc_pointer_linecol(t, n, "/z/", 0, &l, &c);
  assert_int_equal(l, 3);
  assert_int_equal(c, 30);
  /* unresolved pointers fall back to the longest resolving prefix */
  assert_int_equal(ms__jsonloc_find(t, n, "/a/7", 0, &off), -1);
  ms__jsonloc_pointer_linecol(t, n, "/a/7", 0, &l, &c);
  assert_int_equal(l, 2);
  assert_int_equal(c, 8);
  assert_int_equal(ms__jsonloc_find(t, n, "", 0, &off), 0);
  assert_int_equal(off, 0);
  /* malformed text never reads out of bounds */
  assert_int_equal(ms__jsonloc_find("{\"a\": [1, 2", 11, "/a/5", 0, &off), -1);
  assert_int_equal(ms__jsonloc_find("{\"a", 3, "/a", 0, &off), -1);
  char buf[32] = "/x";
  ms__jsonptr_append(buf, sizeof buf, "a/b~c");
  assert_string_equal(buf, "/xa~1b~0c");
}

/* ---- individual errors -------------------------------------------------------- */

#define HEAD "{\"medsynth\": 1, \"tables\": [{\"name\": \"p\", \"rows\": 10, \"fields\": ["
#define TAIL "]}]}"

static void test_spec_rejects_syntax_error_with_position(void **state) {
  (void)state;
  expect_error("{\n  \"medsynth\": 1,\n  \"tables\": [}\n", "t.json:3:14: error: JSON syntax error near '}'");
  expect_error("{\"medsynth\": 1", "t.json:1:15: error: JSON syntax error: unexpected end of input");
  expect_error("{\"medsynth\": 1} x", "t.json:1:17: error: JSON syntax error: unexpected text after the document");
  expect_error("[1]", "t.json:1:1: error: a spec must be a JSON object");
}

static void test_spec_rejects_unknown_key_with_suggestion(void **state) {
  (void)state;
  expect_error(HEAD "{\"name\": \"a\", \"kind\": \"real\", \"precison\": 1, \"expr\": \"1\"}" TAIL,
               "t.json:1:95: error: /tables/0/fields/0/precison: unknown key \"precison\" (did you mean \"precision\"?)");
}

static void test_spec_rejects_wrong_types(void **state) {
  (void)state;
  expect_error(HEAD "{\"name\": \"a\", \"kind\": \"real\", \"dist\": {\"type\": \"normal\", \"mean\": true, \"sd\": 1}}" TAIL,
               "/tables/0/fields/0/dist/mean: must be a number or an expression string");
  expect_error(HEAD "{\"name\": \"a\", \"kind\": 3, \"expr\": \"1\"}" TAIL,
               "/tables/0/fields/0/kind: must be a string");
}

static void test_spec_rejects_missing_required_keys(void **state) {
  (void)state;
  expect_error("{\"tables\": []}", "t.json:1:1: error: missing required key \"medsynth\"");
  expect_error("{\"medsynth\": 1}", "missing required key \"tables\"");
  expect_error(HEAD "{\"name\": \"a\", \"kind\": \"real\", \"dist\": {\"type\": \"normal\", \"mean\": 1}}" TAIL,
               "/tables/0/fields/0/dist: missing required key \"sd\"");
}

static void test_spec_rejects_unknown_distribution(void **state) {
  (void)state;
  expect_error(HEAD "{\"name\": \"a\", \"kind\": \"real\", \"dist\": {\"type\": \"gama\", \"shape\": 1, \"scale\": 1}}" TAIL,
               "/tables/0/fields/0/dist/type: unknown distribution \"gama\" (did you mean \"gamma\"?)");
}

static void test_spec_rejects_bad_parameters(void **state) {
  (void)state;
  expect_error(HEAD "{\"name\": \"a\", \"kind\": \"real\", \"dist\": {\"type\": \"normal\", \"mean\": 1, \"sd\": -2}}" TAIL,
               "t.json:1:139: error: /tables/0/fields/0/dist/sd: must be > 0");
  expect_error(HEAD "{\"name\": \"a\", \"kind\": \"integer\", \"dist\": {\"type\": \"binomial\", \"n\": 4, \"p\": 2}}" TAIL,
               "/tables/0/fields/0/dist/p: must be in [0, 1]");
  expect_error(HEAD "{\"name\": \"a\", \"kind\": \"bool\", \"p\": 1.01}" TAIL,
               "/tables/0/fields/0/p: must be in [0, 1]");
  expect_error(HEAD "{\"name\": \"a\", \"kind\": \"real\", \"dist\": {\"type\": \"exponential\", \"mean\": \"2 - 3\"}}" TAIL,
               "/tables/0/fields/0/dist/mean: must be > 0");
}

static void test_spec_rejects_unknown_vocabulary(void **state) {
  (void)state;
  expect_error(HEAD "{\"name\": \"a\", \"kind\": \"categorical\", \"vocab\": {\"name\": \"nope_vocab\", \"value\": \"code\"}}" TAIL,
               "/tables/0/fields/0/vocab/name: vocabulary \"nope_vocab\" not found");
}

static void test_spec_maps_expression_errors_to_file_positions(void **state) {
  (void)state;
  /* the unknown name starts 6 bytes into the string, whose text starts at column 148 */
  expect_error(HEAD "{\"name\": \"a\", \"kind\": \"real\", \"expr\": \"1\"}, {\"name\": \"b\", \"kind\": \"real\", \"expr\": \"a + 2*zz\"}" TAIL,
               "t.json:1:154: error: /tables/0/fields/1/expr: unknown field 'zz'");
  expect_error("{\"medsynth\": 1,\n \"tables\": [{\"name\": \"p\", \"rows\": 1, \"fields\": [\n"
               "  {\"name\": \"x\", \"kind\": \"real\",\n   \"expr\": \"log(\"}]}]}",
               "t.json:4:");
}

static void test_spec_rejects_duplicate_names(void **state) {
  (void)state;
  expect_error(HEAD "{\"name\": \"a\", \"kind\": \"bool\", \"p\": 0.5}, {\"name\": \"a\", \"kind\": \"bool\", \"p\": 0.5}" TAIL,
               "/tables/0/fields/1/name: duplicate field name \"a\" (first defined at line 1)");
}

static void test_spec_rejects_impossible_bounds(void **state) {
  (void)state;
  expect_error(HEAD "{\"name\": \"a\", \"kind\": \"real\", \"dist\": {\"type\": \"normal\", \"mean\": 0, \"sd\": 1}, \"min\": 3, \"max\": 1}" TAIL,
               "/tables/0/fields/0/max: must be >= min (3 > 1)");
  expect_error(HEAD "{\"name\": \"a\", \"kind\": \"real\", \"dist\": {\"type\": \"exponential\", \"mean\": 1}, \"max\": -1}" TAIL,
               "/tables/0/fields/0/max: the exponential distribution has no probability at or below max -1");
}

static void test_spec_rejects_bad_correlation_matrices(void **state) {
  (void)state;
#define CF "{\"name\": \"a\", \"kind\": \"real\", \"dist\": {\"type\": \"normal\", \"mean\": 0, \"sd\": 1}}," \
           "{\"name\": \"b\", \"kind\": \"real\", \"dist\": {\"type\": \"normal\", \"mean\": 0, \"sd\": 1}}"
  expect_error(HEAD CF "], \"correlations\": [{\"fields\": [\"a\", \"b\"], \"matrix\": [[1, 1.2], [1.2, 1]]}]}]}",
               "correlations must lie strictly between -1 and 1, got 1.2");
  expect_error(HEAD CF "], \"correlations\": [{\"fields\": [\"a\", \"b\"], \"matrix\": [[1, 0.2], [0.3, 1]]}]}]}",
               "matrix is not symmetric");
  expect_error(HEAD CF "], \"correlations\": [{\"fields\": [\"a\", \"b\"], \"matrix\": [[0.5, 0.2], [0.2, 1]]}]}]}",
               "diagonal entries must be 1");
  expect_error(HEAD CF "], \"correlations\": [{\"fields\": [\"a\", \"b\"], \"matrix\": [[1, 0.2]]}]}]}",
               "must be a 2 x 2 array of numbers");
}

static void test_spec_rejects_dependency_cycles(void **state) {
  (void)state;
  expect_error(HEAD "{\"name\": \"a\", \"kind\": \"real\", \"expr\": \"c + 1\"},"
                    "{\"name\": \"b\", \"kind\": \"real\", \"expr\": \"a\"},"
                    "{\"name\": \"c\", \"kind\": \"real\", \"dist\": {\"type\": \"normal\", \"mean\": \"b\", \"sd\": 1}}" TAIL,
               "cycle: a -> c -> b -> a");
  expect_error(HEAD "{\"name\": \"a\", \"kind\": \"real\", \"expr\": \"a + 1\"}" TAIL, "cycle: a -> a");
}

static void test_spec_rejects_nonpositive_rows_and_unknown_parent(void **state) {
  (void)state;
  expect_error("{\"medsynth\": 1, \"tables\": [{\"name\": \"p\", \"rows\": 0, \"fields\": [{\"name\": \"i\", \"kind\": \"id\"}]}]}",
               "/tables/0/rows: must be > 0");
  expect_error("{\"medsynth\": 1, \"tables\": [{\"name\": \"p\", \"rows\": 3, \"fields\": [{\"name\": \"i\", \"kind\": \"id\"}]},"
               "{\"name\": \"c\", \"parent\": \"q\", \"count\": {\"type\": \"poisson\", \"mean\": 1}, \"fields\": [{\"name\": \"r\", \"kind\": \"ref\"}]}]}",
               "/tables/1/parent: unknown parent table \"q\" (did you mean \"p\"?)");
}

static void test_spec_reports_every_error_at_once(void **state) {
  (void)state;
  ms_status st;
  char *out = diag_of(HEAD "{\"name\": \"a\", \"kind\": \"real\", \"dist\": {\"type\": \"normal\", \"mean\": 0, \"sd\": 0}},"
                           "{\"name\": \"b\", \"kind\": \"bool\", \"p\": 7},"
                           "{\"name\": \"c\", \"kind\": \"real\", \"expr\": \"nope\"},"
                           "{\"name\": \"d\", \"kind\": \"real\", \"expr\": \"1\", \"bogus\": 1}" TAIL,
                      &st);
  assert_int_equal(st, MS_ERR_SPEC);
  int lines = 0;
  for (const char *q = out; *q; q++) lines += *q == '\n';
  assert_int_equal(lines, 4);
  assert_non_null(strstr(out, "/dist/sd: must be > 0"));
  assert_non_null(strstr(out, "/fields/1/p: must be in [0, 1]"));
  assert_non_null(strstr(out, "unknown field 'nope'"));
  assert_non_null(strstr(out, "unknown key \"bogus\""));
  free(out);
}

static void test_spec_missing_file_is_not_found(void **state) {
  (void)state;
  ms_diag d;
  ms_diag_init(&d);
  ms_spec *s = NULL;
  assert_int_equal(ms_spec_load(&s, "/nonexistent/spec.json", &d), MS_ERR_NOTFOUND);
  assert_null(s);
  assert_int_equal(d.count, 1);
  ms_diag_deinit(&d);
}

static void test_spec_diag_append_keeps_every_part(void **state) {
  (void)state;
  ms_diag src, dst;
  ms_diag_init(&src);
  ms_diag_init(&dst);
  ms_diag_add(&src, MS_ERR_SPEC, "a.json", 3, 7, "/tables/0", "bad %d", 1);
  ms_diag_warn(&src, NULL, 0, 0, NULL, "careful");
  src.n_dropped = 2;
  ms_diag_add(&dst, MS_ERR_IO, NULL, 0, 0, NULL, "first");
  ms_diag_append(&dst, &src);
  ms_diag_append(NULL, &src);
  assert_int_equal(dst.count, 3);
  assert_int_equal(dst.n_errors, 2);
  assert_int_equal(dst.n_dropped, 2);
  assert_int_equal(dst.entries[1].status, MS_ERR_SPEC);
  assert_string_equal(dst.entries[1].file, "a.json");
  assert_int_equal(dst.entries[1].line, 3);
  assert_int_equal(dst.entries[1].column, 7);
  assert_string_equal(dst.entries[1].where, "/tables/0");
  assert_string_equal(dst.entries[1].message, "bad 1");
  assert_int_equal(dst.entries[2].severity, MS_SEV_WARNING);
  assert_null(dst.entries[2].where);
  ms_diag_deinit(&src);
  ms_diag_deinit(&dst);
}

/* ---- golden corpus -------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Absolute paths in the list of directories searched for a vocabulary (the
 * install prefix, the source tree) depend on the machine: each becomes
 * "<abs>" in place, so goldens are portable. Only paths after "in: " on a
 * line are touched (JSON pointers stay). */
static void normalise_paths(char *t) {
  char *o = t;
  int in_list = 0;
  for (const char *p = t; *p;) {
    if (*p == '\n') in_list = 0;
    if (!strncmp(p, "in: ", 4)) in_list = 1;
    if (in_list && *p == '/' && p > t && p[-1] == ' ') {
      while (*p && *p != ' ' && *p != ',' && *p != ';' && *p != ')' && *p != '\n') p++;
      memcpy(o, "<abs>", 5);
      o += 5;
    } else {
      *o++ = *p++;
    }
  }
  *o = '\0';
}

static void test_spec_bad_corpus_matches_golden(void **state) {
  (void)state;
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/tests/specs/bad", MS_SOURCE_DIR);
  char cwd[4096];
  assert_non_null(getcwd(cwd, sizeof cwd));
  assert_int_equal(chdir(dir), 0);
  DIR *dp = opendir(".");
  assert_non_null(dp);
  char *names[256];
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(dp)) && n < 256) {
    size_t l = strlen(e->d_name);
    if (l > 5 && !strcmp(e->d_name + l - 5, ".json")) names[n++] = strdup(e->d_name);
  }
  closedir(dp);
  qsort(names, n, sizeof *names, cmp_str);
  assert_true(n >= 15);
  int update = getenv("MS_UPDATE_GOLDEN") != NULL, bad = 0;
  unsetenv("MEDSYNTH_VOCAB_PATH"); /* would add directories to the searched list */
  for (size_t i = 0; i < n; i++) {
    ms_diag d;
    ms_diag_init(&d);
    ms_spec *s = NULL;
    ms_status st = ms_spec_load(&s, names[i], &d);
    char *got = ms_diag_format(&d);
    ms_diag_deinit(&d);
    ms_spec_free(s);
    normalise_paths(got);
    if (st == MS_OK) {
      print_error("%s: expected errors, the spec loaded\n", names[i]);
      bad = 1;
    }
    char errname[512];
    snprintf(errname, sizeof errname, "%.*s.err", (int)(strlen(names[i]) - 5), names[i]);
    if (update) {
      FILE *f = fopen(errname, "w");
      assert_non_null(f);
      fputs(got, f);
      fclose(f);
    } else {
      char *want = read_all(errname);
      if (!want || strcmp(want, got)) {
        print_error("%s: diagnostics differ\n--- expected (%s)\n%s--- got\n%s", names[i], errname,
                    want ? want : "(missing file)\n", got);
        bad = 1;
      }
      free(want);
    }
    free(got);
    free(names[i]);
  }
  assert_int_equal(chdir(cwd), 0);
  assert_false(bad);
}

/* Nesting is checked before cJSON or any recursive walk sees the text: the
 * first bracket beyond the limit is reported with its position and pointer
 * (keys decoded, then escaped per RFC 6901); strings hide brackets. */
static void test_spec_jsonloc_measures_nesting(void **state) {
  (void)state;
  const char *t = "{\"a/b\": {\"~\\u00e9\": [1, \"[[[\", [[2]]]}, \"z\": [[[]]]}";
  size_t n = strlen(t), off = 0;
  char ptr[256];
  assert_int_equal(ms__jsonloc_too_deep(t, n, 5, &off, ptr, sizeof ptr), 0);
  assert_int_equal(ms__jsonloc_too_deep(t, n, 4, &off, ptr, sizeof ptr), 1);
  assert_string_equal(ptr, "/a~1b/~0\xc3\xa9/2/0");
  assert_int_equal(off, (size_t)(strstr(t, "[2]") - t));
  assert_int_equal(ms__jsonloc_too_deep(t, n, 3, &off, ptr, sizeof ptr), 1);
  assert_string_equal(ptr, "/a~1b/~0\xc3\xa9/2");
  assert_int_equal(ms__jsonloc_too_deep(t, n, 1, &off, ptr, sizeof ptr), 1);
  assert_string_equal(ptr, "/a~1b");
  assert_int_equal(ms__jsonloc_too_deep("[[]]", 4, 2, &off, ptr, sizeof ptr), 0);
  assert_int_equal(ms__jsonloc_too_deep("[[],[[", 6, 2, &off, ptr, sizeof ptr), 1);
  assert_string_equal(ptr, "/1/0");
  assert_int_equal(off, 5);
}

/* A spec nests at most 64 levels: 64 is a spec (here one with a wrong
 * description), 65 is refused before parsing; a million open brackets are
 * refused without recursing. */
static void test_spec_limits_json_nesting(void **state) {
  (void)state;
  for (int depth = 64; depth <= 65; depth++) {
    /* Levels 1-5: root, tables, table, fields, field; the rest arrays. */
    int arrays = depth - 5;
    char *t = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&t, &len);
    fprintf(fp, "{\"medsynth\": 1, \"tables\": [{\"name\": \"p\", \"rows\": 1, \"fields\": [\n"
                "{\"name\": \"a\", \"kind\": \"bool\", \"p\": 0.5, \"description\": ");
    for (int i = 0; i < arrays; i++) fputc('[', fp);
    for (int i = 0; i < arrays; i++) fputc(']', fp);
    fprintf(fp, "}]}]}\n");
    fclose(fp);
    ms_diag d;
    ms_diag_init(&d);
    ms_spec *s = NULL;
    assert_int_equal(ms_spec_load_string(&s, t, len, "deep.json", &d), MS_ERR_SPEC);
    assert_null(s);
    char *got = ms_diag_format(&d);
    if (depth == 64) {
      assert_non_null(strstr(got, "deep.json:2:56: error: /tables/0/fields/0/description: must be a string"));
    } else {
      char want[1024] = "deep.json:2:";
      snprintf(want + strlen(want), sizeof want - strlen(want), "%d: error: /tables/0/fields/0/description",
               56 + 59);
      for (int i = 0; i < 59; i++) strcat(want, "/0");
      strcat(want, ": objects and arrays nest too deeply (more than 64 levels)\n");
      assert_string_equal(got, want);
    }
    free(got);
    ms_diag_deinit(&d);
    free(t);
  }
  size_t big = 1000000;
  char *t = malloc(big);
  assert_non_null(t);
  memset(t, '[', big);
  ms_diag d;
  ms_diag_init(&d);
  ms_spec *s = NULL;
  assert_int_equal(ms_spec_load_string(&s, t, big, "brackets.json", &d), MS_ERR_SPEC);
  char *got = ms_diag_format(&d);
  assert_non_null(strstr(got, "brackets.json:1:65: error: /0/0/0/"));
  free(got);
  ms_diag_deinit(&d);
  free(t);
}

/* ---- valid specs -------------------------------------------------------------------- */

static void test_spec_compiles_schemas(void **state) {
  (void)state;
  const char *t = good_spec("spec_compiles_schemas");
  ms_diag d;
  ms_diag_init(&d);
  ms_spec *s = NULL;
  assert_int_equal(ms_spec_load_string(&s, t, strlen(t), "x.json", &d), MS_OK);
  assert_string_equal(ms_spec_name(s), "demo");
  assert_int_equal(ms_spec_seed(s), 9);
  assert_int_equal(ms_spec_n_tables(s), 2);
  assert_int_equal(ms_spec_table_find(s, "c"), 1);
  assert_int_equal(ms_spec_table_find(s, "zz"), SIZE_MAX);
  assert_int_equal(ms_spec_table_parent(s, 1), 0);
  assert_int_equal(ms_spec_table_rows(s, 0), 5);
  assert_true(ms_spec_table_has_filter(s, 0));
  const ms_table_schema *p = ms_spec_table_schema(s, 0);
  assert_int_equal(p->n_columns, 8); /* h is hidden */
  ms_coltype want[] = {MS_COL_STRING, MS_COL_INT64, MS_COL_INT64, MS_COL_FLOAT64,
                       MS_COL_CATEGORICAL, MS_COL_DATE, MS_COL_DATETIME, MS_COL_STRING};
  for (size_t i = 0; i < 8; i++) assert_int_equal(p->columns[i].type, want[i]);
  assert_int_equal(p->columns[0].str_width, 9);
  assert_string_equal(p->columns[2].unit, "years");
  assert_int_equal(p->columns[3].precision, 2);
  assert_true(p->columns[3].nullable);
  assert_false(p->columns[2].nullable);
  assert_int_equal(p->columns[4].n_categories, 3);
  assert_string_equal(p->columns[4].categories[2], "c");
  const ms_table_schema *c = ms_spec_table_schema(s, 1);
  assert_string_equal(c->parent, "p");
  assert_string_equal(c->columns[0].references, "p.pid");
  assert_int_equal(c->columns[0].type, MS_COL_STRING);
  assert_true(c->columns[1].nullable); /* reads the nullable parent.w */
  size_t len;
  assert_int_equal(strlen(ms_spec_text(s, &len)), strlen(t));
  assert_int_equal(len, strlen(t));
  ms_spec_free(s);
  ms_diag_deinit(&d);
}

int main(void) {
  gsl_set_error_handler_off();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_spec_jsonloc_finds_values_and_keys),
      cmocka_unit_test(test_spec_jsonloc_measures_nesting),
      cmocka_unit_test(test_spec_limits_json_nesting),
      cmocka_unit_test(test_spec_rejects_syntax_error_with_position),
      cmocka_unit_test(test_spec_rejects_unknown_key_with_suggestion),
      cmocka_unit_test(test_spec_rejects_wrong_types),
      cmocka_unit_test(test_spec_rejects_missing_required_keys),
      cmocka_unit_test(test_spec_rejects_unknown_distribution),
      cmocka_unit_test(test_spec_rejects_bad_parameters),
      cmocka_unit_test(test_spec_rejects_unknown_vocabulary),
      cmocka_unit_test(test_spec_maps_expression_errors_to_file_positions),
      cmocka_unit_test(test_spec_rejects_duplicate_names),
      cmocka_unit_test(test_spec_rejects_impossible_bounds),
      cmocka_unit_test(test_spec_rejects_bad_correlation_matrices),
      cmocka_unit_test(test_spec_rejects_dependency_cycles),
      cmocka_unit_test(test_spec_rejects_nonpositive_rows_and_unknown_parent),
      cmocka_unit_test(test_spec_reports_every_error_at_once),
      cmocka_unit_test(test_spec_missing_file_is_not_found),
      cmocka_unit_test(test_spec_diag_append_keeps_every_part),
      cmocka_unit_test(test_spec_bad_corpus_matches_golden),
      cmocka_unit_test(test_spec_compiles_schemas),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
