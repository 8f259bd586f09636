/* Tests of the dataset writer and reader (gen/io): round trips through HDF5
 * for every column type with missing values, CSV and JSON Lines text,
 * atomic behaviour (cancellation, staged files and folders of
 * medsynth/output.h), byte-identical HDF5 across thread counts and runs, chunk
 * boundaries, arrays, checksum verification, and the parallel chunk codec
 * against HDF5's own shuffle + deflate filters.
 * ctest-labels: unit golden
 */
#include <dirent.h>
#include <errno.h>
#include <hdf5.h>
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
#include <zlib.h>
#include <cmocka.h>

#include "io/io_private.h"
#include "medsynth/io.h"
#include "medsynth/output.h"

/* ---- fixtures --------------------------------------------------------- */

static char *cats[] = {"F", "M", "Unknown, \"other\""};

enum { C_ID, C_H, C_SEX, C_SMK, C_NAME, C_BD, C_TS, C_X, C_N };

static ms_column g_cols[C_N];
static ms_table_schema g_schema;

static void make_schema(void) {
  memset(g_cols, 0, sizeof g_cols);
  g_cols[C_ID] = (ms_column){.name = "id", .type = MS_COL_INT64, .precision = -1,
                             .description = "row number"};
  g_cols[C_H] = (ms_column){.name = "height", .type = MS_COL_FLOAT64, .unit = "cm",
                            .precision = 1, .nullable = 1};
  g_cols[C_SEX] = (ms_column){.name = "sex", .type = MS_COL_CATEGORICAL, .precision = -1,
                              .nullable = 1, .n_categories = 3, .categories = cats};
  g_cols[C_SMK] = (ms_column){.name = "smoker", .type = MS_COL_BOOL, .precision = -1,
                              .nullable = 1};
  g_cols[C_NAME] = (ms_column){.name = "note", .type = MS_COL_STRING, .precision = -1,
                               .nullable = 1, .str_width = 12};
  g_cols[C_BD] = (ms_column){.name = "birth", .type = MS_COL_DATE, .precision = -1, .nullable = 1};
  g_cols[C_TS] = (ms_column){.name = "seen", .type = MS_COL_DATETIME, .precision = -1,
                             .nullable = 1};
  g_cols[C_X] = (ms_column){.name = "x", .type = MS_COL_FLOAT64, .precision = -1};
  g_schema = (ms_table_schema){.name = "patients", .n_columns = C_N, .columns = g_cols};
}

/* Value of row r, deterministic. Missing patterns differ per column. */
static void fill_row(ms_chunk *c, size_t i, uint64_t r) {
  ((int64_t *)c->cols[C_ID].data)[i] = (int64_t)r * 1000003 - 5;
  ((double *)c->cols[C_H].data)[i] = 140.0 + (double)(r % 600) / 10.0;
  c->cols[C_H].valid[i] = r % 7 != 3;
  if (!c->cols[C_H].valid[i]) ((double *)c->cols[C_H].data)[i] = NAN;
  ((int32_t *)c->cols[C_SEX].data)[i] = (int32_t)(r % 3);
  c->cols[C_SEX].valid[i] = r % 5 != 1;
  ((uint8_t *)c->cols[C_SMK].data)[i] = (uint8_t)(r % 2);
  c->cols[C_SMK].valid[i] = r % 11 != 2;
  char *s = (char *)c->cols[C_NAME].data + i * 13;
  memset(s, 0, 13);
  if (r % 4 == 0)
    snprintf(s, 13, "a,\"b\"\n%u", (unsigned)(r % 100));
  else if (r % 4 == 1)
    snprintf(s, 13, "caf\xc3\xa9 %u", (unsigned)(r % 1000)); /* UTF-8 */
  else if (r % 4 == 2)
    s[0] = '\0'; /* empty string, present */
  else
    snprintf(s, 13, "exactly12chr");
  c->cols[C_NAME].valid[i] = r % 9 != 4;
  ((int32_t *)c->cols[C_BD].data)[i] = -3650 + (int32_t)(r * 37 % 30000);
  c->cols[C_BD].valid[i] = r % 13 != 6;
  ((int64_t *)c->cols[C_TS].data)[i] = 1600000000 + (int64_t)r * 3607;
  c->cols[C_TS].valid[i] = r % 17 != 8;
  ((double *)c->cols[C_X].data)[i] = r == 0 ? 0.1 : 1.0 / (double)r * (r % 2 ? -1 : 1);
}

/* Streams `rows` rows in generator chunks of `gen_chunk` through a sink. */
static ms_status write_table(ms_sink k, const ms_table_schema *s, uint64_t rows,
                             size_t gen_chunk) {
  ms_chunk *c = NULL;
  assert_int_equal(ms_chunk_new(&c, s, gen_chunk), MS_OK);
  ms_status st = k.begin_table(k.ctx, s, 0);
  for (uint64_t r0 = 0; st == MS_OK && r0 < rows; r0 += gen_chunk) {
    ms_chunk_reset(c);
    c->first_row = r0;
    c->n_rows = (size_t)(rows - r0 < gen_chunk ? rows - r0 : gen_chunk);
    for (size_t i = 0; i < c->n_rows; i++) fill_row(c, i, r0 + i);
    st = k.write_chunk(k.ctx, c);
  }
  if (st == MS_OK) st = k.end_table(k.ctx, s->name);
  ms_chunk_free(c);
  return st;
}

static char g_dir[256];

static int setup_dir(void **state) {
  (void)state;
  snprintf(g_dir, sizeof g_dir, "/tmp/ms_test_io.XXXXXX");
  if (!mkdtemp(g_dir)) return -1;
  make_schema();
  return 0;
}

static void clean_dir(void) {
  DIR *dd = opendir(g_dir);
  if (dd) {
    struct dirent *e;
    while ((e = readdir(dd))) {
      if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
        continue;
      char p[600];
      snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
      unlink(p);
    }
    closedir(dd);
  }
}

static int teardown_dir(void **state) {
  (void)state;
  clean_dir();
  rmdir(g_dir);
  return 0;
}

static char *tpath(const char *name) {
  static char buf[4][600];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
  return buf[k];
}

static size_t count_dir_entries(void) {
  size_t n = 0;
  DIR *dd = opendir(g_dir);
  struct dirent *e;
  while ((e = readdir(dd)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  closedir(dd);
  return n;
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)n + 1);
  assert_non_null(b);
  assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
  b[n] = '\0';
  fclose(f);
  if (len) *len = (size_t)n;
  return b;
}

static ms_status write_file(const char *path, uint64_t rows, size_t gen_chunk,
                            const ms_writer_params *o, ms_diag *d) {
  ms_writer *w = NULL;
  ms_status st = ms_writer_open(&w, path, o, d);
  if (st) return st;
  st = write_table(ms_writer_sink(w), &g_schema, rows, gen_chunk);
  if (st == MS_OK) st = ms_writer_set_attr_string(w, "seed", "42");
  if (st == MS_OK) st = ms_writer_set_attr_int(w, "rows_requested", (int64_t)rows);
  if (st) {
    ms_writer_abort(w);
    return st;
  }
  return ms_writer_commit(w, d);
}

/* ---- HDF5 round trip -------------------------------------------------- */

static void check_round_trip(uint64_t rows, size_t chunk_rows, size_t gen_chunk,
                             size_t read_cap) {
  ms_diag d;
  ms_diag_init(&d);
  ms_writer_params o;
  ms_writer_params_init(&o);
  o.chunk_rows = chunk_rows;
  o.no_timestamp = 1;
  o.force = 1;
  const char *p = tpath("rt.h5");
  assert_int_equal(write_file(p, rows, gen_chunk, &o, &d), MS_OK);

  ms_h5_reader *r = NULL;
  assert_int_equal(ms_h5_reader_open(&r, p, &d), MS_OK);
  assert_int_equal(ms_h5_reader_n_tables(r), 1);
  size_t t = 99;
  assert_int_equal(ms_h5_reader_find(r, "patients", &t), MS_OK);
  assert_int_equal(t, 0);
  assert_int_equal(ms_h5_reader_find(r, "nope", &t), MS_ERR_NOTFOUND);
  assert_int_equal(ms_h5_reader_rows(r, 0), rows);
  const ms_table_schema *s = ms_h5_reader_schema(r, 0);
  assert_string_equal(s->name, "patients");
  assert_int_equal(s->n_columns, C_N);
  for (size_t j = 0; j < C_N; j++) {
    assert_string_equal(s->columns[j].name, g_cols[j].name);
    assert_int_equal(s->columns[j].type, g_cols[j].type);
    assert_int_equal(s->columns[j].nullable, g_cols[j].nullable);
  }
  assert_string_equal(s->columns[C_H].unit, "cm");
  assert_int_equal(s->columns[C_H].precision, 1);
  assert_string_equal(s->columns[C_ID].description, "row number");
  assert_int_equal(s->columns[C_SEX].n_categories, 3);
  assert_string_equal(s->columns[C_SEX].categories[2], cats[2]);
  assert_int_equal(s->columns[C_NAME].str_width, 12);
  assert_string_equal(ms_h5_reader_attr(r, "seed"), "42");
  assert_null(ms_h5_reader_attr(r, "created"));
  assert_string_equal(ms_h5_reader_attr(r, "medsynth_format"), "1");

  ms_chunk *got = NULL, *want = NULL;
  assert_int_equal(ms_chunk_new(&got, s, read_cap), MS_OK);
  assert_int_equal(ms_chunk_new(&want, &g_schema, read_cap), MS_OK);
  uint64_t seen = 0;
  while (seen < rows) {
    assert_int_equal(ms_h5_reader_read(r, 0, seen, got, &d), MS_OK);
    assert_true(got->n_rows > 0);
    assert_int_equal(got->first_row, seen);
    for (size_t i = 0; i < got->n_rows; i++) {
      uint64_t row = seen + i;
      fill_row(want, i, row);
      for (size_t j = 0; j < C_N; j++) {
        int wv = want->cols[j].valid ? want->cols[j].valid[i] : 1;
        int gv = got->cols[j].valid ? got->cols[j].valid[i] : 1;
        if (wv != gv) fail_msg("row %llu col %s: validity %d != %d", (unsigned long long)row,
                               g_cols[j].name, gv, wv);
        if (!wv) continue;
        size_t vs = ms_column_value_size(&g_cols[j]);
        const uint8_t *a = (const uint8_t *)got->cols[j].data + i * vs;
        const uint8_t *b = (const uint8_t *)want->cols[j].data + i * vs;
        if (memcmp(a, b, vs)) fail_msg("row %llu col %s differs", (unsigned long long)row,
                                       g_cols[j].name);
      }
    }
    seen += got->n_rows;
  }
  assert_int_equal(seen, rows);
  /* Reading at the end gives zero rows, beyond it an error. */
  assert_int_equal(ms_h5_reader_read(r, 0, rows, got, &d), MS_OK);
  assert_int_equal(got->n_rows, 0);
  assert_int_equal(ms_h5_reader_read(r, 0, rows + 1, got, &d), MS_ERR_RANGE);
  uint64_t dig = 0;
  assert_int_equal(ms_h5_reader_verify(r, 0, &dig, &d), MS_OK);
  ms_chunk_free(got);
  ms_chunk_free(want);
  ms_h5_reader_free(r);
  ms_diag_deinit(&d);
}

static void test_io_hdf5_round_trip_all_types(void **state) {
  (void)state;
  check_round_trip(1000, 64, 100, 333);
}

static void test_io_hdf5_chunk_boundaries(void **state) {
  (void)state;
  /* Rows not a multiple of the chunk size, generator chunks straddling HDF5
   * chunks, batches (8 chunks) filled exactly and not, one row, zero rows. */
  check_round_trip(1, 7, 13, 5);
  check_round_trip(7 * 8, 7, 13, 5);
  check_round_trip(7 * 8 + 1, 7, 1, 64);
  check_round_trip(7 * 8 * 3 - 1, 7, 50, 1000);
  check_round_trip(0, 7, 13, 5);
  check_round_trip(20000, 0, 4096, 4096); /* automatic chunk size */
}

static void test_io_hdf5_zero_rows_and_levels(void **state) {
  (void)state;
  ms_diag d;
  ms_diag_init(&d);
  /* level 1 is zlib's run-length strategy (gen/io/atomic.c); every level
   * must read back through HDF5's own deflate filter */
  static const int levels[] = {0, 1, 3, 6, 9};
  for (size_t li = 0; li < sizeof levels / sizeof *levels; li++) {
    int level = levels[li];
    ms_writer_params o;
    ms_writer_params_init(&o);
    o.compression = level;
    o.chunk_rows = 10;
    o.force = 1;
    assert_int_equal(write_file(tpath("lv.h5"), 95, 20, &o, &d), MS_OK);
    ms_h5_reader *r;
    assert_int_equal(ms_h5_reader_open(&r, tpath("lv.h5"), &d), MS_OK);
    assert_int_equal(ms_h5_reader_rows(r, 0), 95);
    assert_int_equal(ms_h5_reader_verify(r, 0, NULL, &d), MS_OK);
    ms_h5_reader_free(r);
  }
  ms_diag_deinit(&d);
}

/* ---- byte identity ---------------------------------------------------- */

static void test_io_hdf5_identical_across_threads_and_runs(void **state) {
  (void)state;
  ms_diag d;
  ms_diag_init(&d);
  const int threads[] = {1, 2, 4, 2};
  char *first = NULL;
  size_t first_len = 0;
  setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
  for (int k = 0; k < 4; k++) {
    ms_writer_params o;
    ms_writer_params_init(&o);
    o.threads = threads[k];
    o.chunk_rows = 100;
    o.force = 1;
    const char *p = tpath(k % 2 ? "id_b.h5" : "id_a.h5");
    /* Generator chunk size varies too: it must not change a byte. */
    assert_int_equal(write_file(p, 5003, k == 3 ? 977 : 256, &o, &d), MS_OK);
    size_t len;
    char *b = slurp(p, &len);
    assert_non_null(b);
    if (!first) {
      first = b;
      first_len = len;
    } else {
      assert_int_equal(len, first_len);
      assert_memory_equal(b, first, len);
      free(b);
    }
  }
  ms_h5_reader *r;
  assert_int_equal(ms_h5_reader_open(&r, tpath("id_a.h5"), &d), MS_OK);
  assert_string_equal(ms_h5_reader_attr(r, "created"), "2023-11-14T22:13:20Z");
  ms_h5_reader_free(r);
  unsetenv("SOURCE_DATE_EPOCH");
  free(first);
  ms_diag_deinit(&d);
}

/* ---- codec vs HDF5's filters ----------------------------------------- */

static void test_io_chunk_codec_matches_hdf5_filters(void **state) {
  (void)state;
  /* Write one chunk through HDF5's own shuffle + deflate, fetch the stored
   * bytes with H5Dread_chunk, and compare with our codec's output. */
  enum { N = 1000, ES = 12 };
  uint8_t *raw = malloc(N * ES);
  for (size_t i = 0; i < N * ES; i++) raw[i] = (uint8_t)((i * 2654435761u) >> (i % 7));
  hid_t f = H5Fcreate(tpath("codec.h5"), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  assert_true(f >= 0);
  hid_t t = H5Tcopy(H5T_STD_U8LE);
  hid_t arr;
  hsize_t ad = ES;
  arr = H5Tarray_create2(t, 1, &ad);
  hsize_t dim = N;
  hid_t sp = H5Screate_simple(1, &dim, NULL);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(dcpl, 1, &dim);
  H5Pset_shuffle(dcpl);
  H5Pset_deflate(dcpl, 6);
  hid_t ds = H5Dcreate2(f, "x", arr, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  assert_true(ds >= 0);
  assert_true(H5Dwrite(ds, arr, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) >= 0);
  H5Fflush(f, H5F_SCOPE_LOCAL);
  hsize_t off = 0, csize = 0;
  assert_true(H5Dget_chunk_storage_size(ds, &off, &csize) >= 0);
  uint8_t *theirs = malloc(csize);
  uint32_t mask = 1;
  assert_true(H5Dread_chunk(ds, H5P_DEFAULT, &off, &mask, theirs) >= 0);
  assert_int_equal(mask, 0);
  uint8_t *scratch = malloc(N * ES), *ours = malloc(compressBound(N * ES));
  size_t olen = 0;
  assert_int_equal(ms__chunk_compress(raw, N * ES, ES, 6, scratch, ours, &olen), 0);
  assert_int_equal(olen, csize);
  assert_memory_equal(ours, theirs, csize);
  /* And the inverse. */
  uint8_t *back = malloc(N * ES);
  assert_int_equal(ms__chunk_decompress(ours, olen, ES, scratch, back, N * ES), 0);
  assert_memory_equal(back, raw, N * ES);
  H5Dclose(ds);
  H5Pclose(dcpl);
  H5Sclose(sp);
  H5Tclose(arr);
  H5Tclose(t);
  H5Fclose(f);
  free(raw);
  free(theirs);
  free(scratch);
  free(ours);
  free(back);
}

/* ---- CSV and JSON Lines ---------------------------------------------- */

static void test_io_csv_exact_text(void **state) {
  (void)state;
  ms_diag d;
  ms_diag_init(&d);
  ms_writer_params o;
  ms_writer_params_init(&o);
  assert_int_equal(write_file(tpath("t.csv"), 6, 4, &o, &d), MS_OK);
  char *txt = slurp(tpath("t.csv"), NULL);
  const char *want =
      "id,height,sex,smoker,note,birth,seen,x\n"
      "-5,140.0,F,false,\"a,\"\"b\"\"\n0\",1960-01-04,2020-09-13T12:26:40Z,0.1\n"
      "999998,140.1,,true,caf\xc3\xa9 1,1960-02-10,2020-09-13T13:26:47Z,-1\n"
      "2000001,140.2,\"Unknown, \"\"other\"\"\",,\"\",1960-03-18,2020-09-13T14:26:54Z,0.5\n"
      "3000004,,F,true,exactly12chr,1960-04-24,2020-09-13T15:27:01Z,-0.3333333333333333\n"
      "4000007,140.4,M,false,,1960-05-31,2020-09-13T16:27:08Z,0.25\n"
      "5000010,140.5,\"Unknown, \"\"other\"\"\",true,caf\xc3\xa9 5,1960-07-07,2020-09-13T17:27:15Z,-0.2\n";
  assert_string_equal(txt, want);
  free(txt);
  ms_diag_deinit(&d);
}

static void test_io_jsonl_exact_text(void **state) {
  (void)state;
  ms_diag d;
  ms_diag_init(&d);
  ms_writer_params o;
  ms_writer_params_init(&o);
  assert_int_equal(write_file(tpath("t.jsonl"), 4, 3, &o, &d), MS_OK);
  char *txt = slurp(tpath("t.jsonl"), NULL);
  const char *want =
      "{\"id\":-5,\"height\":140.0,\"sex\":\"F\",\"smoker\":false,\"note\":\"a,\\\"b\\\"\\n0\","
      "\"birth\":\"1960-01-04\",\"seen\":\"2020-09-13T12:26:40Z\",\"x\":0.1}\n"
      "{\"id\":999998,\"height\":140.1,\"sex\":null,\"smoker\":true,\"note\":\"caf\xc3\xa9 1\","
      "\"birth\":\"1960-02-10\",\"seen\":\"2020-09-13T13:26:47Z\",\"x\":-1}\n"
      "{\"id\":2000001,\"height\":140.2,\"sex\":\"Unknown, \\\"other\\\"\",\"smoker\":null,"
      "\"note\":\"\",\"birth\":\"1960-03-18\",\"seen\":\"2020-09-13T14:26:54Z\",\"x\":0.5}\n"
      "{\"id\":3000004,\"height\":null,\"sex\":\"F\",\"smoker\":true,\"note\":\"exactly12chr\","
      "\"birth\":\"1960-04-24\",\"seen\":\"2020-09-13T15:27:01Z\",\"x\":-0.3333333333333333}\n";
  assert_string_equal(txt, want);
  free(txt);
  ms_diag_deinit(&d);
}

/* The same text for any chunking and thread count: small chunks formatted
 * in one pass, and chunks large enough to be formatted in parallel row
 * ranges. */
static void test_io_text_identical_across_chunking(void **state) {
  (void)state;
  ms_diag d;
  ms_diag_init(&d);
  ms_writer_params o;
  ms_writer_params_init(&o);
  o.force = 1;
  const char *names[] = {"c.csv", "c.jsonl"};
  const struct {
    size_t chunk;
    int threads;
  } runs[] = {{1000, 1}, {7, 2}, {30001, 2}, {30001, 5}};
  for (int f = 0; f < 2; f++) {
    char *a = NULL;
    size_t la = 0;
    for (size_t k = 0; k < sizeof runs / sizeof *runs; k++) {
      o.threads = runs[k].threads;
      assert_int_equal(write_file(tpath(names[f]), 30001, runs[k].chunk, &o, &d), MS_OK);
      size_t lb;
      char *b = slurp(tpath(names[f]), &lb);
      if (!a) {
        a = b;
        la = lb;
        continue;
      }
      assert_int_equal(la, lb);
      assert_memory_equal(a, b, la);
      free(b);
    }
    free(a);
  }
  ms_diag_deinit(&d);
}

/* A bad category code reported from a parallel pass names the lowest bad
 * row, as one pass would, and nothing is committed. */
static void test_io_text_parallel_error_lowest_row(void **state) {
  (void)state;
  ms_diag d;
  ms_diag_init(&d);
  ms_writer_params o;
  ms_writer_params_init(&o);
  o.force = 1;
  o.threads = 4;
  const char *p = tpath("bad.csv");
  unlink(p);
  ms_writer *w = NULL;
  assert_int_equal(ms_writer_open(&w, p, &o, &d), MS_OK);
  ms_sink k = ms_writer_sink(w);
  ms_chunk *c = NULL;
  assert_int_equal(ms_chunk_new(&c, &g_schema, 20000), MS_OK);
  c->n_rows = 20000;
  for (size_t i = 0; i < c->n_rows; i++) fill_row(c, i, i);
  ((int32_t *)c->cols[C_SEX].data)[17000] = 7;
  c->cols[C_SEX].valid[17000] = 1;
  ((int32_t *)c->cols[C_SEX].data)[6002] = -1;
  c->cols[C_SEX].valid[6002] = 1;
  assert_int_equal(k.begin_table(k.ctx, &g_schema, 0), MS_OK);
  assert_int_not_equal(k.write_chunk(k.ctx, c), MS_OK);
  char *msg = ms_diag_format(&d);
  assert_non_null(strstr(msg, "6002"));
  assert_null(strstr(msg, "17000"));
  free(msg);
  ms_writer_abort(w);
  struct stat st;
  assert_int_not_equal(stat(p, &st), 0);
  ms_chunk_free(c);
  ms_diag_deinit(&d);
}

static void test_io_double_shortest_round_trip(void **state) {
  (void)state;
  char buf[64];
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < 20000; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    double v;
    memcpy(&v, &x, 8);
    if (!isfinite(v)) continue;
    ms__format_double(buf, sizeof buf, v, -1);
    assert_true(strtod(buf, NULL) == v);
  }
  ms__format_double(buf, sizeof buf, 0.1, -1);
  assert_string_equal(buf, "0.1");
  ms__format_double(buf, sizeof buf, 1e6, -1);
  assert_string_equal(buf, "1000000");
  ms__format_double(buf, sizeof buf, 1.0 / 3.0, -1);
  assert_string_equal(buf, "0.3333333333333333");
  ms__format_double(buf, sizeof buf, 1e300, -1);
  assert_string_equal(buf, "1e+300");
  ms__format_double(buf, sizeof buf, 2.0 / 3.0, 2);
  assert_string_equal(buf, "0.67");
  ms__format_double(buf, sizeof buf, -0.001, 1);
  assert_string_equal(buf, "0.0"); /* no "-0.0" */
}

static void test_io_csv_several_tables_one_file_each(void **state) {
  (void)state;
  clean_dir();
  ms_diag d;
  ms_diag_init(&d);
  ms_column vc[] = {{.name = "patient", .type = MS_COL_INT64, .precision = -1},
                    {.name = "sbp", .type = MS_COL_FLOAT64, .precision = 0}};
  ms_table_schema visits = {.name = "visits", .parent = "patients", .n_columns = 2, .columns = vc};
  ms_writer *w;
  assert_int_equal(ms_writer_open(&w, tpath("multi.csv"), NULL, &d), MS_OK);
  ms_sink k = ms_writer_sink(w);
  assert_int_equal(write_table(k, &g_schema, 3, 2), MS_OK);
  ms_chunk *c;
  assert_int_equal(ms_chunk_new(&c, &visits, 2), MS_OK);
  c->n_rows = 2;
  ((int64_t *)c->cols[0].data)[1] = 7;
  ((double *)c->cols[1].data)[0] = 119.5;
  ((double *)c->cols[1].data)[1] = 120.4;
  assert_int_equal(k.begin_table(k.ctx, &visits, 2), MS_OK);
  assert_int_equal(k.write_chunk(k.ctx, c), MS_OK);
  assert_int_equal(k.end_table(k.ctx, "visits"), MS_OK);
  /* Nothing under a final name before commit. */
  assert_int_equal(access(tpath("multi.visits.csv"), F_OK), -1);
  assert_int_equal(ms_writer_commit(w, &d), MS_OK);
  assert_int_equal(access(tpath("multi.csv"), F_OK), -1);
  char *v = slurp(tpath("multi.visits.csv"), NULL);
  assert_string_equal(v, "patient,sbp\n0,120\n7,120\n");
  free(v);
  char *p = slurp(tpath("multi.patients.csv"), NULL);
  assert_non_null(p);
  assert_true(strncmp(p, "id,height,", 10) == 0);
  free(p);
  assert_int_equal(count_dir_entries(), 2);
  /* A second run refuses to overwrite them, and leaves nothing behind. */
  assert_int_equal(ms_writer_open(&w, tpath("multi.csv"), NULL, &d), MS_OK);
  k = ms_writer_sink(w);
  assert_int_equal(write_table(k, &g_schema, 3, 2), MS_OK);
  assert_int_equal(k.begin_table(k.ctx, &visits, 2), MS_OK);
  assert_int_equal(k.write_chunk(k.ctx, c), MS_OK);
  assert_int_equal(ms_writer_commit(w, &d), MS_ERR_EXISTS);
  assert_int_equal(count_dir_entries(), 2);
  ms_chunk_free(c);
  ms_diag_deinit(&d);
}

/* ---- atomic behaviour ------------------------------------------------- */

static void test_io_existing_target_needs_force(void **state) {
  (void)state;
  clean_dir();
  const char *fmts[] = {"ex.h5", "ex.csv", "ex.jsonl"};
  for (int f = 0; f < 3; f++) {
    ms_diag d;
    ms_diag_init(&d);
    const char *p = tpath(fmts[f]);
    FILE *fp = fopen(p, "w");
    fputs("old", fp);
    fclose(fp);
    ms_writer *w = (ms_writer *)1;
    ms_writer_params o;
    ms_writer_params_init(&o);
    assert_int_equal(ms_writer_open(&w, p, &o, &d), MS_ERR_EXISTS);
    assert_null(w);
    char *msg = ms_diag_format(&d);
    assert_non_null(strstr(msg, p));
    assert_non_null(strstr(msg, "already exists"));
    free(msg);
    char *old = slurp(p, NULL);
    assert_string_equal(old, "old");
    free(old);
    o.force = 1;
    assert_int_equal(write_file(p, 10, 4, &o, &d), MS_OK);
    size_t len;
    char *now = slurp(p, &len);
    assert_true(len > 3 && memcmp(now, "old", 3) != 0);
    free(now);
    unlink(p);
    ms_diag_deinit(&d);
  }
  assert_int_equal(count_dir_entries(), 0);
}

static void test_io_abort_leaves_nothing(void **state) {
  (void)state;
  clean_dir();
  const char *fmts[] = {"ab.h5", "ab.csv", "ab.jsonl"};
  for (int f = 0; f < 3; f++) {
    ms_diag d;
    ms_diag_init(&d);
    ms_writer *w;
    assert_int_equal(ms_writer_open(&w, tpath(fmts[f]), NULL, &d), MS_OK);
    assert_int_equal(write_table(ms_writer_sink(w), &g_schema, 100, 30), MS_OK);
    assert_true(count_dir_entries() >= 1); /* the temporary file */
    ms_writer_abort(w);
    assert_int_equal(count_dir_entries(), 0);
    ms_diag_deinit(&d);
  }
  ms_writer_abort(NULL);
}

static void test_io_failed_write_is_not_committed(void **state) {
  (void)state;
  clean_dir();
  ms_diag d;
  ms_diag_init(&d);
  ms_writer *w;
  assert_int_equal(ms_writer_open(&w, tpath("bad.h5"), NULL, &d), MS_OK);
  ms_sink k = ms_writer_sink(w);
  ms_chunk *c;
  assert_int_equal(ms_chunk_new(&c, &g_schema, 10), MS_OK);
  c->n_rows = 10;
  c->first_row = 500;
  for (size_t i = 0; i < 10; i++) fill_row(c, i, 500 + i);
  ((int32_t *)c->cols[C_SEX].data)[4] = 3; /* out of range */
  c->cols[C_SEX].valid[4] = 1;
  assert_int_equal(k.begin_table(k.ctx, &g_schema, 0), MS_OK);
  assert_int_equal(k.write_chunk(k.ctx, c), MS_ERR_DATA);
  char *msg = ms_diag_format(&d);
  assert_non_null(strstr(msg, "patients/row 504/sex"));
  assert_non_null(strstr(msg, "category code 3 out of range"));
  free(msg);
  assert_int_not_equal(ms_writer_commit(w, &d), MS_OK);
  assert_int_equal(count_dir_entries(), 0);
  ms_chunk_free(c);
  ms_diag_deinit(&d);
}

static void test_io_unwritable_directory(void **state) {
  (void)state;
  ms_diag d;
  ms_diag_init(&d);
  ms_writer *w;
  /* A directory that does not exist, and a "directory" that is a file (the
   * suite may run as root, which ignores permission bits). */
  const char *p1 = tpath("no/such/dir/out.h5");
  assert_int_equal(ms_writer_open(&w, p1, NULL, &d), MS_ERR_IO);
  FILE *fp = fopen(tpath("plain"), "w");
  fclose(fp);
  const char *p2 = tpath("plain/out.csv");
  assert_int_equal(ms_writer_open(&w, p2, NULL, &d), MS_ERR_IO);
  char *msg = ms_diag_format(&d);
  assert_non_null(strstr(msg, "no/such/dir"));
  assert_non_null(strstr(msg, "plain"));
  free(msg);
  /* Output path that is a directory. */
  assert_int_equal(ms_writer_open(&w, g_dir, NULL, &d), MS_ERR_INVALID); /* no extension */
  ms_writer_params o;
  ms_writer_params_init(&o);
  o.format = MS_FMT_HDF5;
  assert_int_equal(ms_writer_open(&w, g_dir, &o, &d), MS_ERR_IO);
  unlink(tpath("plain"));
  ms_diag_deinit(&d);
}

/* Once the caller's flag is set every call fails with MS_ERR_CANCELLED and
 * commit removes the temporary files, for every format. */
static void test_io_cancel_removes_temporaries(void **state) {
  (void)state;
  clean_dir();
  const char *fmts[] = {"cx.h5", "cx.csv", "cx.jsonl"};
  for (int f = 0; f < 3; f++) {
    ms_diag d;
    ms_diag_init(&d);
    ms_cancel_flag stop = 0;
    ms_writer_params o;
    ms_writer_params_init(&o);
    o.cancel = &stop;
    ms_writer *w;
    assert_int_equal(ms_writer_open(&w, tpath(fmts[f]), &o, &d), MS_OK);
    assert_int_equal(write_table(ms_writer_sink(w), &g_schema, 100, 30), MS_OK);
    stop = 1;
    assert_int_equal(write_table(ms_writer_sink(w), &g_schema, 10, 5), MS_ERR_CANCELLED);
    assert_int_equal(ms_writer_set_attr_int(w, "seed", 1), MS_ERR_CANCELLED);
    assert_int_equal(ms_writer_commit(w, &d), MS_ERR_CANCELLED);
    assert_int_equal(ms_diag_status(&d), MS_ERR_CANCELLED);
    assert_int_equal(count_dir_entries(), 0);
    ms_diag_deinit(&d);
  }
}

static void put_file(const char *path, const char *text) {
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  fputs(text, fp);
  fclose(fp);
}

static void assert_file(const char *path, const char *text) {
  char *got = slurp(path, NULL);
  assert_non_null(got);
  assert_string_equal(got, text);
  free(got);
}

/* ms_output: a file appears at commit only (and not over an existing one
 * without force); abort leaves nothing; messages about the temporary file
 * name the target. */
static void test_io_output_file(void **state) {
  (void)state;
  clean_dir();
  ms_diag d;
  ms_diag_init(&d);
  ms_output *o;
  const char *t = tpath("spec.json");
  assert_int_equal(ms_output_open(&o, t, MS_OUTPUT_FILE, 0, &d), MS_OK);
  assert_string_equal(ms_output_target(o), t);
  assert_int_equal(ms_output_write(o, "{}", 2, &d), MS_OK);
  assert_int_equal(ms_output_write(o, "\n", 1, &d), MS_OK);
  assert_int_equal(access(t, F_OK), -1);
  assert_int_equal(count_dir_entries(), 1);
  ms_diag_add(&d, MS_ERR_IO, ms_output_path(o), 0, 0, NULL, "x");
  ms_output_name_diag(o, &d);
  assert_string_equal(d.entries[0].file, t);
  assert_int_equal(ms_output_commit(o, &d), MS_OK);
  assert_file(t, "{}\n");
  assert_int_equal(count_dir_entries(), 1);
  assert_int_equal(ms_output_open(&o, t, MS_OUTPUT_FILE, 0, &d), MS_ERR_EXISTS);
  assert_int_equal(ms_output_open(&o, t, MS_OUTPUT_FILE, 1, &d), MS_OK);
  assert_int_equal(ms_output_write(o, "new", 3, &d), MS_OK);
  ms_output_abort(o);
  assert_file(t, "{}\n");
  assert_int_equal(count_dir_entries(), 1);
  unlink(t);
  ms_output_abort(NULL);
  assert_int_equal(ms_output_commit(NULL, &d), MS_OK);
  ms_diag_deinit(&d);
}

static void remove_tree(const char *path) {
  DIR *dd = opendir(path);
  if (!dd) {
    unlink(path);
    return;
  }
  struct dirent *e;
  while ((e = readdir(dd))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", path, e->d_name);
    remove_tree(p);
  }
  closedir(dd);
  rmdir(path);
}

/* ms_output folders: a new folder appears whole at commit; into an existing
 * one the entries are moved (subfolders merged, old entries kept); abort
 * removes the temporary folder with everything in it. */
static void test_io_output_folder(void **state) {
  (void)state;
  clean_dir();
  ms_diag d;
  ms_diag_init(&d);
  ms_output *o;
  char p[1200];
  const char *t = tpath("png");
  assert_int_equal(ms_output_open(&o, tpath("png/"), MS_OUTPUT_DIR, 0, &d), MS_OK);
  snprintf(p, sizeof p, "%s/sub", ms_output_path(o));
  assert_int_equal(mkdir(p, 0777), 0);
  snprintf(p, sizeof p, "%s/sub/a.txt", ms_output_path(o));
  put_file(p, "a");
  assert_int_equal(access(t, F_OK), -1);
  assert_int_equal(ms_output_commit(o, &d), MS_OK);
  snprintf(p, sizeof p, "%s/sub/a.txt", t);
  assert_file(p, "a");
  assert_int_equal(count_dir_entries(), 1);

  /* existing folder: merged */
  snprintf(p, sizeof p, "%s/keep.txt", t);
  put_file(p, "keep");
  assert_int_equal(ms_output_open(&o, t, MS_OUTPUT_DIR, 0, &d), MS_OK);
  snprintf(p, sizeof p, "%s/sub/b.txt", ms_output_path(o));
  assert_int_not_equal(mkdir(p, 0777), 0); /* sub/ is not there yet */
  snprintf(p, sizeof p, "%s/sub", ms_output_path(o));
  assert_int_equal(mkdir(p, 0777), 0);
  snprintf(p, sizeof p, "%s/sub/b.txt", ms_output_path(o));
  put_file(p, "b");
  snprintf(p, sizeof p, "%s/sub/a.txt", ms_output_path(o));
  put_file(p, "a2");
  ms_diag_add(&d, MS_ERR_IO, p, 0, 0, NULL, "x");
  ms_output_name_diag(o, &d);
  snprintf(p, sizeof p, "%s/sub/a.txt", t);
  assert_string_equal(d.entries[0].file, p);
  assert_int_equal(ms_output_commit(o, &d), MS_OK);
  assert_file(p, "a2");
  snprintf(p, sizeof p, "%s/sub/b.txt", t);
  assert_file(p, "b");
  snprintf(p, sizeof p, "%s/keep.txt", t);
  assert_file(p, "keep");
  DIR *dd = opendir(t);
  struct dirent *e;
  int n = 0;
  while ((e = readdir(dd))) n += e->d_name[0] != '.'; /* no temporary left */
  closedir(dd);
  assert_int_equal(n, 2);

  /* abort, new and existing */
  assert_int_equal(ms_output_open(&o, t, MS_OUTPUT_DIR, 0, &d), MS_OK);
  snprintf(p, sizeof p, "%s/c.txt", ms_output_path(o));
  put_file(p, "c");
  ms_output_abort(o);
  snprintf(p, sizeof p, "%s/c.txt", t);
  assert_int_equal(access(p, F_OK), -1);
  remove_tree(t);
  assert_int_equal(ms_output_open(&o, tpath("deep/er/out"), MS_OUTPUT_DIR, 0, &d), MS_OK);
  snprintf(p, sizeof p, "%s/c.txt", ms_output_path(o));
  put_file(p, "c");
  ms_output_abort(o);
  assert_int_equal(access(tpath("deep/er/out"), F_OK), -1);
  remove_tree(tpath("deep"));
  /* a file where the folder should be */
  put_file(tpath("plain"), "x");
  assert_int_equal(ms_output_open(&o, tpath("plain"), MS_OUTPUT_DIR, 0, &d), MS_ERR_EXISTS);
  unlink(tpath("plain"));
  assert_int_equal(count_dir_entries(), 0);
  ms_diag_deinit(&d);
}

static void test_io_stdout_takes_one_table(void **state) {
  (void)state;
  ms_diag d;
  ms_diag_init(&d);
  ms_writer *w;
  ms_writer_params o;
  ms_writer_params_init(&o);
  o.format = MS_FMT_JSONL;
  assert_int_equal(ms_writer_open(&w, "-", &o, &d), MS_OK);
  ms_sink k = ms_writer_sink(w);
  ms_table_schema other = g_schema;
  other.name = "other";
  assert_int_equal(k.begin_table(k.ctx, &g_schema, 0), MS_OK);
  assert_int_equal(k.end_table(k.ctx, "patients"), MS_OK);
  assert_int_equal(k.begin_table(k.ctx, &other, 0), MS_ERR_UNSUPPORTED);
  ms_writer_abort(w);
  o.format = MS_FMT_HDF5;
  assert_int_equal(ms_writer_open(&w, "-", &o, &d), MS_ERR_INVALID);
  ms_diag_deinit(&d);
}

static void test_io_format_names(void **state) {
  (void)state;
  assert_int_equal(ms_format_from_path("a/b.H5"), MS_FMT_HDF5);
  assert_int_equal(ms_format_from_path("x.hdf5"), MS_FMT_HDF5);
  assert_int_equal(ms_format_from_path("x.csv"), MS_FMT_CSV);
  assert_int_equal(ms_format_from_path("x.ndjson"), MS_FMT_JSONL);
  assert_int_equal(ms_format_from_path("dir.h5/x"), MS_FMT_COUNT);
  for (int f = 0; f < MS_FMT_COUNT; f++)
    assert_int_equal(ms_format_from_name(ms_format_name((ms_format)f)), f);
  assert_int_equal(ms_format_from_name("xml"), MS_FMT_COUNT);
  for (int t = 0; t < MS_DT_COUNT; t++)
    assert_int_equal(ms_dtype_from_name(ms_dtype_name((ms_dtype)t)), t);
  assert_int_equal(ms_dtype_size(MS_DT_UINT16), 2);
}

/* ---- arrays ----------------------------------------------------------- */

static void test_io_arrays_round_trip_out_of_order(void **state) {
  (void)state;
  ms_diag d;
  ms_diag_init(&d);
  enum { N = 11, C = 2, H = 5, W = 7 };
  float *img = malloc(sizeof(float) * N * C * H * W);
  for (size_t i = 0; i < (size_t)N * C * H * W; i++) img[i] = (float)sin((double)i * 0.37) * 100.f;
  uint64_t dims[4] = {N, C, H, W};
  ms_writer *w;
  ms_writer_params o;
  ms_writer_params_init(&o);
  o.no_timestamp = 1;
  assert_int_equal(ms_writer_open(&w, tpath("arr.h5"), &o, &d), MS_OK);
  assert_int_equal(ms_writer_begin_array(w, "/images/t1", MS_DT_FLOAT32, 4, dims), MS_OK);
  size_t item = C * H * W;
  /* Items 6..10 first, then 0..5. */
  assert_int_equal(ms_writer_write_items(w, "/images/t1", 6, 5, img + 6 * item), MS_OK);
  assert_int_equal(ms_writer_write_items(w, "/images/t1", 0, 6, img), MS_OK);
  assert_int_equal(ms_writer_set_object_attr_string(w, "/images/t1", "modality", "T1"), MS_OK);
  assert_int_equal(ms_writer_set_object_attr_double(w, "/images/t1", "spacing_mm", 1.5), MS_OK);
  assert_int_equal(ms_writer_commit(w, &d), MS_OK);
  /* Bad requests are refused, and a writer that refused one is not committed. */
  assert_int_equal(ms_writer_open(&w, tpath("arr3.h5"), &o, &d), MS_OK);
  assert_int_equal(ms_writer_begin_array(w, "relative", MS_DT_UINT8, 1, dims), MS_ERR_INVALID);
  assert_int_equal(ms_writer_begin_array(w, "/b", MS_DT_FLOAT32, 4, dims), MS_OK);
  assert_int_equal(ms_writer_write_items(w, "/b", 10, 2, img), MS_ERR_RANGE);
  assert_int_equal(ms_writer_commit(w, &d), MS_ERR_INVALID);
  assert_int_equal(access(tpath("arr3.h5"), F_OK), -1);

  ms_h5_reader *r;
  assert_int_equal(ms_h5_reader_open(&r, tpath("arr.h5"), &d), MS_OK);
  assert_int_equal(ms_h5_reader_n_tables(r), 0);
  assert_int_equal(ms_h5_reader_n_arrays(r), 1);
  assert_string_equal(ms_h5_reader_array_path(r, 0), "/images/t1");
  assert_int_equal(ms_h5_reader_array_dtype(r, 0), MS_DT_FLOAT32);
  assert_int_equal(ms_h5_reader_array_rank(r, 0), 4);
  assert_memory_equal(ms_h5_reader_array_dims(r, 0), dims, sizeof dims);
  float *back = calloc((size_t)N * item, sizeof(float));
  assert_int_equal(ms_h5_reader_read_items(r, 0, 0, N, back, &d), MS_OK);
  assert_memory_equal(back, img, sizeof(float) * N * item);
  assert_int_equal(ms_h5_reader_verify_array(r, 0, &d), MS_OK);
  ms_h5_reader_free(r);

  /* An item never written makes commit fail, and leaves no file. */
  assert_int_equal(ms_writer_open(&w, tpath("arr2.h5"), &o, &d), MS_OK);
  assert_int_equal(ms_writer_begin_array(w, "/a", MS_DT_FLOAT32, 4, dims), MS_OK);
  assert_int_equal(ms_writer_write_items(w, "/a", 0, 10, img), MS_OK);
  assert_int_equal(ms_writer_commit(w, &d), MS_ERR_DATA);
  assert_int_equal(access(tpath("arr2.h5"), F_OK), -1);
  /* CSV cannot hold arrays. */
  assert_int_equal(ms_writer_open(&w, tpath("arr.csv"), &o, &d), MS_OK);
  assert_int_equal(ms_writer_begin_array(w, "/a", MS_DT_FLOAT32, 4, dims), MS_ERR_UNSUPPORTED);
  ms_writer_abort(w);
  free(img);
  free(back);
  unlink(tpath("arr.h5"));
  ms_diag_deinit(&d);
}

/* ---- reader errors and verification ---------------------------------- */

static void test_io_reader_rejects_bad_files(void **state) {
  (void)state;
  ms_diag d;
  ms_diag_init(&d);
  ms_h5_reader *r = NULL;
  assert_int_equal(ms_h5_reader_open(&r, tpath("missing.h5"), &d), MS_ERR_NOTFOUND);
  FILE *fp = fopen(tpath("text.h5"), "w");
  fputs("hello\n", fp);
  fclose(fp);
  assert_int_equal(ms_h5_reader_open(&r, tpath("text.h5"), &d), MS_ERR_FORMAT);
  hid_t f = H5Fcreate(tpath("plain.h5"), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  H5Fclose(f);
  assert_int_equal(ms_h5_reader_open(&r, tpath("plain.h5"), &d), MS_ERR_FORMAT);
  char *msg = ms_diag_format(&d);
  assert_non_null(strstr(msg, "no such file"));
  assert_non_null(strstr(msg, "not an HDF5 file"));
  assert_non_null(strstr(msg, "not a medsynth file"));
  free(msg);
  assert_null(r);
  unlink(tpath("text.h5"));
  unlink(tpath("plain.h5"));
  ms_diag_deinit(&d);
}

static void test_io_reader_survives_truncated_file(void **state) {
  (void)state;
  ms_diag d;
  ms_diag_init(&d);
  ms_writer_params o;
  ms_writer_params_init(&o);
  o.force = 1;
  o.chunk_rows = 50;
  assert_int_equal(write_file(tpath("tr.h5"), 2000, 500, &o, &d), MS_OK);
  size_t len;
  char *b = slurp(tpath("tr.h5"), &len);
  /* Cut the file at several points: open or read must fail cleanly. */
  const double cuts[] = {0.1, 0.5, 0.9, 0.99};
  for (int k = 0; k < 4; k++) {
    FILE *fp = fopen(tpath("cut.h5"), "wb");
    fwrite(b, 1, (size_t)(len * cuts[k]), fp);
    fclose(fp);
    ms_h5_reader *r = NULL;
    ms_status st = ms_h5_reader_open(&r, tpath("cut.h5"), &d);
    if (st == MS_OK) {
      ms_chunk *c;
      assert_int_equal(ms_chunk_new(&c, ms_h5_reader_schema(r, 0), 4096), MS_OK);
      st = ms_h5_reader_read(r, 0, 0, c, &d);
      if (st == MS_OK) st = ms_h5_reader_verify(r, 0, NULL, &d);
      ms_chunk_free(c);
      ms_h5_reader_free(r);
    }
    assert_int_not_equal(st, MS_OK);
  }
  free(b);
  /* A schema with no columns is refused. */
  ms_table_schema empty = {.name = "empty"};
  ms_writer *w;
  assert_int_equal(ms_writer_open(&w, tpath("e.h5"), &o, &d), MS_OK);
  assert_int_equal(ms_writer_begin_table(w, &empty, 0), MS_ERR_INVALID);
  ms_writer_abort(w);
  ms_diag_deinit(&d);
}

static void test_io_verify_detects_changed_data(void **state) {
  (void)state;
  ms_diag d;
  ms_diag_init(&d);
  ms_writer_params o;
  ms_writer_params_init(&o);
  o.force = 1;
  assert_int_equal(write_file(tpath("v.h5"), 300, 64, &o, &d), MS_OK);
  ms_h5_reader *r;
  uint64_t good = 0;
  assert_int_equal(ms_h5_reader_open(&r, tpath("v.h5"), &d), MS_OK);
  assert_int_equal(ms_h5_reader_verify(r, 0, &good, &d), MS_OK);
  ms_h5_reader_free(r);
  /* Change one value through HDF5 itself. */
  hid_t f = H5Fopen(tpath("v.h5"), H5F_ACC_RDWR, H5P_DEFAULT);
  hid_t ds = H5Dopen2(f, "/tables/patients", H5P_DEFAULT);
  hid_t mt = H5Tcreate(H5T_COMPOUND, 8);
  H5Tinsert(mt, "id", 0, H5T_NATIVE_INT64);
  hid_t fs = H5Dget_space(ds);
  hsize_t start = 123, count = 1;
  H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL);
  hid_t ms = H5Screate_simple(1, &count, NULL);
  int64_t v = 424242;
  assert_true(H5Dwrite(ds, mt, ms, fs, H5P_DEFAULT, &v) >= 0);
  H5Sclose(ms);
  H5Sclose(fs);
  H5Tclose(mt);
  H5Dclose(ds);
  H5Fclose(f);
  assert_int_equal(ms_h5_reader_open(&r, tpath("v.h5"), &d), MS_OK);
  uint64_t now = 0;
  assert_int_equal(ms_h5_reader_verify(r, 0, &now, &d), MS_ERR_DATA);
  assert_int_not_equal(now, good);
  ms_h5_reader_free(r);
  char *msg = ms_diag_format(&d);
  assert_non_null(strstr(msg, "checksum mismatch"));
  free(msg);
  ms_diag_deinit(&d);
}

/* ---- wide tables ------------------------------------------------------ */

/* A table of n copies of fixture column `src`, named "c00000", ...; the
 * last name is `extra` characters longer. Names live in `names`. */
static ms_table_schema wide_schema(size_t src, size_t n, size_t extra, ms_column *cols, char (*names)[64]) {
  for (size_t j = 0; j < n; j++) {
    cols[j] = g_cols[src];
    snprintf(names[j], 64, "c%05u%.*s", (unsigned)j, (int)(j + 1 == n ? extra : 0), "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    cols[j].name = names[j];
  }
  return (ms_table_schema){.name = "w", .n_columns = n, .columns = cols};
}

/* Whether HDF5 itself (v1.10 format bounds, as the writer uses) can create
 * a dataset whose row type is the compound of schema s. */
static int hdf5_accepts(const ms_table_schema *s) {
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110);
  hid_t f = H5Fcreate(tpath("probe.h5"), H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  ms__rowlayout L;
  assert_int_equal(ms__rowlayout_init(&L, s), MS_OK);
  hid_t t = ms__rowlayout_h5type(&L, s, NULL);
  hsize_t dim = 0, maxd = H5S_UNLIMITED, cd = 4;
  hid_t sp = H5Screate_simple(1, &dim, &maxd), dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(dcpl, 1, &cd);
  H5E_auto2_t fn;
  void *data;
  H5Eget_auto2(H5E_DEFAULT, &fn, &data);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  hid_t ds = H5Dcreate2(f, "d", t, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  H5Eset_auto2(H5E_DEFAULT, fn, data);
  int ok = ds >= 0;
  if (ok) H5Dclose(ds);
  H5Pclose(dcpl);
  H5Sclose(sp);
  H5Tclose(t);
  ms__rowlayout_deinit(&L);
  H5Fclose(f);
  H5Pclose(fapl);
  return ok;
}

/* For every column type (with and without a validity member): the largest
 * table whose row type ms__h5_compound_bytes puts at or below 65,535 bytes
 * is one that HDF5 accepts and is written as one dataset; one more name
 * character is a row type HDF5 refuses, and the writer splits that table
 * into two parts that read back, value for value, as the whole table. */
static void test_io_hdf5_wide_table_limit_every_type(void **state) {
  (void)state;
  enum { MAXC = 9000 };
  ms_column *cols = calloc(MAXC, sizeof *cols);
  char(*names)[64] = calloc(MAXC, sizeof *names);
  assert_non_null(cols);
  assert_non_null(names);
  ms_diag d;
  ms_diag_init(&d);
  for (size_t src = 0; src < C_N; src++) {
    /* most columns that fit, then the longest last name that still fits */
    ms_table_schema s = wide_schema(src, MAXC, 0, cols, names);
    size_t lo = 1, hi = MAXC; /* bytes(lo) fits, bytes(hi) does not */
    assert_true(ms__h5_compound_bytes(&s, 0, MAXC) > MS__H5_MAX_TYPE_BYTES);
    while (hi - lo > 1) {
      size_t mid = (lo + hi) / 2;
      if (ms__h5_compound_bytes(&s, 0, mid) <= MS__H5_MAX_TYPE_BYTES)
        lo = mid;
      else
        hi = mid;
    }
    size_t n = lo, extra = 0;
    while ((s = wide_schema(src, n, extra + 1, cols, names), ms__h5_compound_bytes(&s, 0, n)) <= MS__H5_MAX_TYPE_BYTES)
      extra++;
    for (int over = 0; over < 2; over++) {
      s = wide_schema(src, n, extra + (size_t)over, cols, names);
      size_t bytes = ms__h5_compound_bytes(&s, 0, n);
      if (hdf5_accepts(&s) != !over)
        fail_msg("column type of '%s', %zu columns: computed %zu bytes, but HDF5 %s it", g_cols[src].name, n,
                 bytes, over ? "accepts" : "refuses");
      /* write 5 rows: every copy holds the fixture column's values */
      ms_writer_params o;
      ms_writer_params_init(&o);
      o.force = 1;
      o.no_timestamp = 1;
      ms_writer *w = NULL;
      assert_int_equal(ms_writer_open(&w, tpath("wide.h5"), &o, &d), MS_OK);
      ms_chunk *fx = NULL, *c = NULL;
      assert_int_equal(ms_chunk_new(&fx, &g_schema, 5), MS_OK);
      assert_int_equal(ms_chunk_new(&c, &s, 5), MS_OK);
      for (size_t i = 0; i < 5; i++) fill_row(fx, i, i + 1);
      size_t vs = ms_column_value_size(&g_cols[src]);
      for (size_t j = 0; j < n; j++) {
        memcpy(c->cols[j].data, fx->cols[src].data, 5 * vs);
        if (c->cols[j].valid) memcpy(c->cols[j].valid, fx->cols[src].valid, 5);
      }
      c->n_rows = 5;
      ms_sink k = ms_writer_sink(w);
      assert_int_equal(k.begin_table(k.ctx, &s, 5), MS_OK);
      assert_int_equal(k.write_chunk(k.ctx, c), MS_OK);
      assert_int_equal(k.end_table(k.ctx, "w"), MS_OK);
      assert_int_equal(ms_writer_commit(w, &d), MS_OK);
      hid_t f = H5Fopen(tpath("wide.h5"), H5F_ACC_RDONLY, H5P_DEFAULT);
      H5O_info_t oi;
      assert_true(H5Oget_info_by_name2(f, "/tables/w", &oi, H5O_INFO_BASIC, H5P_DEFAULT) >= 0);
      assert_int_equal(oi.type, over ? H5O_TYPE_GROUP : H5O_TYPE_DATASET);
      H5Fclose(f);
      ms_h5_reader *r = NULL;
      assert_int_equal(ms_h5_reader_open(&r, tpath("wide.h5"), &d), MS_OK);
      const ms_table_schema *rs = ms_h5_reader_schema(r, 0);
      assert_int_equal(rs->n_columns, n);
      assert_string_equal(rs->columns[n - 1].name, names[n - 1]);
      ms_chunk *got = NULL;
      assert_int_equal(ms_chunk_new(&got, rs, 5), MS_OK);
      assert_int_equal(ms_h5_reader_read(r, 0, 0, got, &d), MS_OK);
      assert_int_equal(got->n_rows, 5);
      for (size_t j = 0; j < n; j++)
        for (size_t i = 0; i < 5; i++) {
          int wv = fx->cols[src].valid ? fx->cols[src].valid[i] : 1;
          int gv = got->cols[j].valid ? got->cols[j].valid[i] : 1;
          assert_int_equal(gv, wv);
          if (wv && memcmp((uint8_t *)got->cols[j].data + i * vs, (uint8_t *)fx->cols[src].data + i * vs, vs))
            fail_msg("%s: column %zu row %zu differs after the round trip", g_cols[src].name, j, i);
        }
      assert_int_equal(ms_h5_reader_verify(r, 0, NULL, &d), MS_OK);
      ms_chunk_free(got);
      ms_h5_reader_free(r);
      ms_chunk_free(c);
      ms_chunk_free(fx);
    }
  }
  ms_diag_deinit(&d);
  free(cols);
  free(names);
}

/* `test_io --write-sample FILE.h5` writes the fixture table (1000 rows) and a
 * small array, for tests/cli/io_h5py.sh, which checks them with h5py. */
static int write_sample(const char *path) {
  make_schema();
  ms_diag d;
  ms_diag_init(&d);
  ms_writer_params o;
  ms_writer_params_init(&o);
  o.force = 1;
  o.chunk_rows = 128;
  o.compression = 6;
  ms_writer *w;
  ms_status st = ms_writer_open(&w, path, &o, &d);
  if (st == MS_OK) {
    st = write_table(ms_writer_sink(w), &g_schema, 1000, 300);
    uint8_t img[4 * 3 * 5];
    for (size_t i = 0; i < sizeof img; i++) img[i] = (uint8_t)(i * 7 % 251);
    uint64_t dims[3] = {4, 3, 5};
    if (st == MS_OK) st = ms_writer_begin_array(w, "/images/demo", MS_DT_UINT8, 3, dims);
    if (st == MS_OK) st = ms_writer_write_items(w, "/images/demo", 0, 4, img);
    if (st == MS_OK) st = ms_writer_set_object_attr_string(w, "/images/demo", "modality", "demo");
    if (st == MS_OK) st = ms_writer_set_attr_string(w, "seed", "42");
    if (st == MS_OK) st = ms_writer_set_attr_string(w, "spec_hash", "0123456789abcdef");
    if (st == MS_OK) st = ms_writer_set_attr_double(w, "scale", 0.5);
    if (st == MS_OK)
      st = ms_writer_commit(w, &d);
    else
      ms_writer_abort(w);
  }
  if (st != MS_OK) {
    char *m = ms_diag_format(&d);
    fprintf(stderr, "%s", m ? m : "write failed\n");
    free(m);
  }
  ms_diag_deinit(&d);
  return st == MS_OK ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "--write-sample")) return write_sample(argv[2]);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_io_hdf5_round_trip_all_types),
      cmocka_unit_test(test_io_hdf5_chunk_boundaries),
      cmocka_unit_test(test_io_hdf5_zero_rows_and_levels),
      cmocka_unit_test(test_io_hdf5_identical_across_threads_and_runs),
      cmocka_unit_test(test_io_chunk_codec_matches_hdf5_filters),
      cmocka_unit_test(test_io_csv_exact_text),
      cmocka_unit_test(test_io_jsonl_exact_text),
      cmocka_unit_test(test_io_text_identical_across_chunking),
      cmocka_unit_test(test_io_text_parallel_error_lowest_row),
      cmocka_unit_test(test_io_double_shortest_round_trip),
      cmocka_unit_test(test_io_csv_several_tables_one_file_each),
      cmocka_unit_test(test_io_existing_target_needs_force),
      cmocka_unit_test(test_io_abort_leaves_nothing),
      cmocka_unit_test(test_io_failed_write_is_not_committed),
      cmocka_unit_test(test_io_unwritable_directory),
      cmocka_unit_test(test_io_cancel_removes_temporaries),
      cmocka_unit_test(test_io_output_file),
      cmocka_unit_test(test_io_output_folder),
      cmocka_unit_test(test_io_stdout_takes_one_table),
      cmocka_unit_test(test_io_format_names),
      cmocka_unit_test(test_io_arrays_round_trip_out_of_order),
      cmocka_unit_test(test_io_reader_rejects_bad_files),
      cmocka_unit_test(test_io_reader_survives_truncated_file),
      cmocka_unit_test(test_io_verify_detects_changed_data),
      cmocka_unit_test(test_io_hdf5_wide_table_limit_every_type),
  };
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
