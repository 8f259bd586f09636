/* In-memory table sink for tests: keeps every generated value so tests can
 * check statistics, and hashes each column canonically (independent of how
 * rows were chunked). Header-only; used by test_generate.c and the records
 * example tests. */
#ifndef MS_TESTS_MEMSINK_H
#define MS_TESTS_MEMSINK_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "medsynth/records.h"
#include "medsynth/table.h"

typedef struct {
  ms_table_schema schema;
  size_t n, cap;
  unsigned char **data; /* per column */
  uint8_t **valid;      /* per column */
  int begun;
} memtable;

typedef struct {
  memtable t[16];
  size_t nt;
  uint64_t chunks;
} memsink;

static inline memtable *memsink_find(memsink *m, const char *name) {
  for (size_t i = 0; i < m->nt; i++)
    if (!strcmp(m->t[i].schema.name, name)) return &m->t[i];
  return NULL;
}

static inline ms_status memsink_begin(void *ctx, const ms_table_schema *s, uint64_t exp) {
  memsink *m = ctx;
  (void)exp;
  memtable *t = memsink_find(m, s->name);
  if (t) return MS_OK; /* appending (shards written one after the other) */
  if (m->nt == 16) return MS_ERR_RANGE;
  t = &m->t[m->nt++];
  memset(t, 0, sizeof *t);
  if (ms_table_schema_copy(&t->schema, s)) return MS_ERR_NOMEM;
  t->data = calloc(s->n_columns + 1, sizeof *t->data);
  t->valid = calloc(s->n_columns + 1, sizeof *t->valid);
  return t->data && t->valid ? MS_OK : MS_ERR_NOMEM;
}

static inline ms_status memsink_write(void *ctx, const ms_chunk *c) {
  memsink *m = ctx;
  memtable *t = memsink_find(m, c->schema->name);
  if (!t) return MS_ERR_INVALID;
  if (c->first_row != t->n) return MS_ERR_RANGE; /* chunks must arrive in row order */
  m->chunks++;
  if (t->n + c->n_rows > t->cap) {
    size_t cap = (t->n + c->n_rows) * 2;
    for (size_t j = 0; j < t->schema.n_columns; j++) {
      size_t es = ms_column_value_size(&t->schema.columns[j]);
      unsigned char *nd = realloc(t->data[j], cap * es);
      uint8_t *nv = realloc(t->valid[j], cap);
      if (!nd || !nv) return MS_ERR_NOMEM;
      t->data[j] = nd;
      t->valid[j] = nv;
    }
    t->cap = cap;
  }
  for (size_t j = 0; j < t->schema.n_columns; j++) {
    size_t es = ms_column_value_size(&t->schema.columns[j]);
    memcpy(t->data[j] + t->n * es, c->cols[j].data, c->n_rows * es);
    if (c->cols[j].valid)
      memcpy(t->valid[j] + t->n, c->cols[j].valid, c->n_rows);
    else
      memset(t->valid[j] + t->n, 1, c->n_rows);
  }
  t->n += c->n_rows;
  return MS_OK;
}

static inline ms_sink memsink_sink(memsink *m) {
  ms_sink s = {m, memsink_begin, memsink_write, NULL};
  return s;
}

static inline void memsink_free(memsink *m) {
  for (size_t i = 0; i < m->nt; i++) {
    for (size_t j = 0; j < m->t[i].schema.n_columns; j++) {
      free(m->t[i].data[j]);
      free(m->t[i].valid[j]);
    }
    free(m->t[i].data);
    free(m->t[i].valid);
    ms_table_schema_deinit(&m->t[i].schema);
  }
  memset(m, 0, sizeof *m);
}

/* Loads spec text `json` (*s, freed by the caller) and generates `rows`
 * rows on 2 threads into mk. */
static inline ms_status memsink_generate(const char *json, size_t rows, memsink *mk, ms_spec **s, ms_diag *d) {
  ms_status st = ms_spec_load_string(s, json, strlen(json), "fitted.json", d);
  if (st) return st;
  ms_sink sink = memsink_sink(mk);
  ms_generate_params o;
  ms_generate_params_init(&o);
  o.rows = rows;
  o.threads = 2;
  return ms_generate(*s, &o, &sink, NULL, d);
}

static inline size_t memtable_col(const memtable *t, const char *name) {
  for (size_t j = 0; j < t->schema.n_columns; j++)
    if (!strcmp(t->schema.columns[j].name, name)) return j;
  return SIZE_MAX;
}

/* xxh64 of one column's values (missing values hashed as their zero bytes)
 * and validity, rows [r0, r1). */
static inline uint64_t memtable_col_hash(const memtable *t, size_t j, size_t r0, size_t r1) {
  size_t es = ms_column_value_size(&t->schema.columns[j]);
  XXH64_state_t *st = XXH64_createState();
  XXH64_reset(st, 0);
  if (r1 > r0) {
    XXH64_update(st, t->data[j] + r0 * es, (r1 - r0) * es);
    XXH64_update(st, t->valid[j] + r0, r1 - r0);
  }
  uint64_t h = XXH64_digest(st);
  XXH64_freeState(st);
  return h;
}

/* Hash of a whole table (every column, rows [r0, r1)). */
static inline uint64_t memtable_hash(const memtable *t, size_t r0, size_t r1) {
  uint64_t h = XXH64(&t->n, 0, 0);
  for (size_t j = 0; j < t->schema.n_columns; j++) {
    uint64_t c = memtable_col_hash(t, j, r0, r1);
    h = XXH64(&c, sizeof c, h);
  }
  return h;
}

static inline double memtable_num(const memtable *t, size_t j, size_t r) {
  const ms_column *c = &t->schema.columns[j];
  switch (c->type) {
    case MS_COL_INT64:
    case MS_COL_DATETIME:
      return (double)((const int64_t *)t->data[j])[r];
    case MS_COL_FLOAT64:
      return ((const double *)t->data[j])[r];
    case MS_COL_BOOL:
      return ((const uint8_t *)t->data[j])[r];
    case MS_COL_CATEGORICAL:
    case MS_COL_DATE:
      return ((const int32_t *)t->data[j])[r];
    default:
      return 0;
  }
}

static inline const char *memtable_str(const memtable *t, size_t j, size_t r) {
  const ms_column *c = &t->schema.columns[j];
  if (c->type == MS_COL_CATEGORICAL) return c->categories[((const int32_t *)t->data[j])[r]];
  return (const char *)t->data[j] + r * (c->str_width + 1);
}

#endif
