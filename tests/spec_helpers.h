/* Test helpers shared by the record-engine tests (include after cmocka.h):
 * the specs of tests/specs/good by name, loading a spec from text (must
 * succeed, or must fail), generating into
 * the in-memory sink of memsink.h with explicit options, and finding tables
 * and columns there (missing ones fail the test). Header-only. */
#ifndef MS_TESTS_SPEC_HELPERS_H
#define MS_TESTS_SPEC_HELPERS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "medsynth/records.h"
#include "memsink.h"

/* The text of tests/specs/good/<name>.json, read once and kept until the
 * process ends (a missing file fails the test). */
static inline const char *good_spec(const char *name) {
  static struct {
    char name[128];
    char *text;
  } cache[128];
  size_t i = 0;
  for (; i < sizeof cache / sizeof *cache && cache[i].text; i++)
    if (!strcmp(cache[i].name, name)) return cache[i].text;
  assert_true(i < sizeof cache / sizeof *cache);
  char path[4096];
  snprintf(path, sizeof path, "%s/tests/specs/good/%s.json", MS_SOURCE_DIR, name);
  FILE *f = fopen(path, "rb");
  if (!f) print_error("cannot open %s\n", path);
  assert_non_null(f);
  char *text = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&text, &len);
  assert_non_null(m);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, m);
  fclose(f);
  fclose(m);
  snprintf(cache[i].name, sizeof cache[i].name, "%s", name);
  cache[i].text = text;
  return text;
}

/* A spec that must load; its diagnostics are printed when it does not. */
static inline ms_spec *load(const char *text) {
  ms_diag d;
  ms_diag_init(&d);
  ms_spec *s = NULL;
  ms_status st = ms_spec_load_string(&s, text, strlen(text), "test.json", &d);
  if (st != MS_OK) {
    char *t = ms_diag_format(&d);
    print_error("%s", t ? t : "?");
    free(t);
  }
  ms_diag_deinit(&d);
  assert_int_equal(st, MS_OK);
  return s;
}

/* Loads text; returns the formatted diagnostics (caller frees) and status. */
static inline char *diag_of(const char *text, ms_status *st_out) {
  ms_diag d;
  ms_diag_init(&d);
  ms_spec *s = NULL;
  ms_status st = ms_spec_load_string(&s, text, strlen(text), "t.json", &d);
  char *out = ms_diag_format(&d);
  ms_diag_deinit(&d);
  ms_spec_free(s);
  if (st_out) *st_out = st;
  return out;
}

/* Diagnostics of a spec that must fail to load (caller frees). */
static inline char *load_errors(const char *text) {
  ms_status st;
  char *out = diag_of(text, &st);
  assert_int_not_equal(st, MS_OK);
  return out;
}

typedef struct {
  uint64_t rows;
  int threads;
  size_t chunk;
  uint32_t shard_k, shard_n;
  uint64_t seed;
  int has_seed;
} gen_opts;

/* Generates s into m (ro NULL: the spec's rows, 2 threads). Diagnostics go to
 * dout when given, else they are printed on failure; rep (optional) receives
 * the report (caller deinits). */
static inline ms_status gen_run(const ms_spec *s, const gen_opts *ro, memsink *m,
                                ms_generate_report *rep, ms_diag *dout) {
  ms_generate_params o;
  ms_generate_params_init(&o);
  o.threads = 2;
  if (ro) {
    o.rows = ro->rows;
    o.threads = ro->threads ? ro->threads : 1;
    o.chunk_rows = ro->chunk;
    o.shard_index = ro->shard_k;
    o.shard_count = ro->shard_n;
    o.seed = ro->seed;
    o.has_seed = ro->has_seed;
  }
  ms_sink sink = memsink_sink(m);
  ms_diag d;
  ms_diag_init(&d);
  ms_generate_report r;
  ms_status st = ms_generate(s, &o, &sink, &r, dout ? dout : &d);
  if (st != MS_OK && !dout) {
    char *t = ms_diag_format(&d);
    print_error("%s", t ? t : "?");
    free(t);
  }
  ms_diag_deinit(&d);
  if (rep)
    *rep = r;
  else
    ms_generate_report_deinit(&r);
  return st;
}

static inline memtable *tab(memsink *m, const char *name) {
  memtable *t = memsink_find(m, name);
  assert_non_null(t);
  return t;
}

static inline size_t col(const memtable *t, const char *name) {
  size_t j = memtable_col(t, name);
  assert_true(j != SIZE_MAX);
  return j;
}

/* Two runs produced the same tables: same count, rows and column hashes. */
static inline void assert_same_tables(const memsink *a, const memsink *b) {
  assert_int_equal(a->nt, b->nt);
  for (size_t i = 0; i < a->nt; i++) {
    assert_int_equal(a->t[i].n, b->t[i].n);
    assert_true(memtable_hash(&a->t[i], 0, a->t[i].n) == memtable_hash(&b->t[i], 0, b->t[i].n));
  }
}

#endif
