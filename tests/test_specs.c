/* The specs of tests/specs/good, as data: each <name>.json loads, generates
 * (its own seed and rows, 2 threads) and gives, column by column, the
 * xxh64 values listed beside it in <name>.xxh ("table column hash" lines;
 * hashes as memtable_col_hash computes them). MS_UPDATE_GOLDEN=1 rewrites
 * the .xxh files. The C tests that read these specs check what the values
 * mean; this one pins the values themselves. tests/cli/specs_good.sh runs
 * `medsynth validate` on the same files.
 * ctest-labels: unit golden */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <gsl/gsl_errno.h>

#include "spec_helpers.h"

#define GOOD_DIR MS_SOURCE_DIR "/tests/specs/good"

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "table column hash" lines of every column of every table, in sink order
 * (caller frees). */
static char *hash_lines(const memsink *m) {
  char *out = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&out, &len);
  assert_non_null(f);
  for (size_t i = 0; i < m->nt; i++) {
    const memtable *t = &m->t[i];
    for (size_t j = 0; j < t->schema.n_columns; j++)
      fprintf(f, "%s %s %016llx\n", t->schema.name, t->schema.columns[j].name,
              (unsigned long long)memtable_col_hash(t, j, 0, t->n));
  }
  fclose(f);
  return out;
}

static void test_specs_good_match_their_hashes(void **state) {
  (void)state;
  DIR *dp = opendir(GOOD_DIR);
  assert_non_null(dp);
  char *names[256];
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(dp)) && n < 256) {
    size_t l = strlen(e->d_name);
    if (l > 5 && !strcmp(e->d_name + l - 5, ".json"))
      names[n++] = strndup(e->d_name, l - 5);
  }
  closedir(dp);
  qsort(names, n, sizeof *names, cmp_str);
  assert_true(n >= 10);
  int update = getenv("MS_UPDATE_GOLDEN") != NULL, bad = 0;
  for (size_t i = 0; i < n; i++) {
    ms_spec *s = load(good_spec(names[i]));
    memsink m = {0};
    assert_int_equal(gen_run(s, NULL, &m, NULL, NULL), MS_OK);
    char *got = hash_lines(&m);
    memsink_free(&m);
    ms_spec_free(s);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.xxh", GOOD_DIR, names[i]);
    if (update) {
      FILE *f = fopen(path, "w");
      assert_non_null(f);
      fputs(got, f);
      fclose(f);
    } else {
      FILE *f = fopen(path, "rb");
      char want[65536];
      size_t wl = f ? fread(want, 1, sizeof want - 1, f) : 0;
      if (f) fclose(f);
      want[wl] = '\0';
      if (!f || strcmp(want, got)) {
        print_error("%s: column hashes differ from %s\ngot:\n%s", names[i], path, got);
        bad = 1;
      }
    }
    free(got);
    free(names[i]);
  }
  assert_false(bad);
}

int main(void) {
  gsl_set_error_handler_off();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_specs_good_match_their_hashes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
