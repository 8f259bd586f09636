/* Damaged HDF5 files: the table reader (ms_h5_reader_*, used by
 * `medsynth inspect`) and the frame reader behind `medsynth fit --data`
 * must end every damaged file in a diagnostic that names the file, within a
 * few seconds, and never in a signal or a hang (docs/reliability.md,
 * "Reading damaged files").
 *
 * The fixture is a file written by `medsynth records` (outpatient example,
 * 300 rows). Damage is placed by structure, not by fixed offsets, so the
 * cases survive layout changes: the global heap collections ("GCOL", which
 * HDF5 does not checksum) are walked object by object; the rest is sampled
 * at fixed strides. The cases that made HDF5 1.10.8 loop (a free-space
 * object of size 0) and crash (an object larger than its collection) are
 * asserted by message. Further cases are made with the HDF5 API: attributes
 * of the wrong shape, type or size. A phantom file covers arrays.
 * ctest-labels: unit
 */
#include <dirent.h>
#include <hdf5.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "medsynth/fit.h"
#include "medsynth/io.h"

static char g_dir[256];
static uint8_t *g_good;
static size_t g_len;

static char *tpath(const char *name) {
  static char buf[4][600];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
  return buf[k];
}

static uint8_t *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *b = malloc((size_t)n + 1);
  if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
    free(b);
    b = NULL;
  }
  fclose(f);
  *len = (size_t)n;
  return b;
}

static void spit(const char *path, const uint8_t *b, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(b, 1, n, f), n);
  fclose(f);
}

static int setup(void **state) {
  (void)state;
  snprintf(g_dir, sizeof g_dir, "/tmp/ms_test_h5read.XXXXXX");
  if (!mkdtemp(g_dir)) return -1;
  /* A stall costs this many seconds per case. */
  setenv("MEDSYNTH_READ_TIMEOUT", "2", 1);
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "'%s' records --spec '%s/schemas/examples/outpatient.json' -n 300 --seed 7 -q -o '%s'",
           MS_CLI_PATH, MS_SOURCE_DIR, tpath("good.h5"));
  if (system(cmd) != 0) return -1;
  snprintf(cmd, sizeof cmd, "'%s' phantom --kind head -n 2 --size 32 --seed 1 -o '%s'", MS_CLI_PATH,
           tpath("arrays.h5"));
  if (system(cmd) != 0) return -1;
  g_good = slurp(tpath("good.h5"), &g_len);
  return g_good ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  free(g_good);
  DIR *dd = opendir(g_dir);
  if (dd) {
    struct dirent *e;
    while ((e = readdir(dd)))
      if (e->d_name[0] != '.') unlink(tpath(e->d_name));
    closedir(dd);
  }
  rmdir(g_dir);
  return 0;
}

/* ---- structure of the fixture ------------------------------------------ */

static uint64_t le(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

static void put_le(uint8_t *p, uint64_t v, int n) {
  for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

typedef struct {
  size_t at, size;  /* collection */
  size_t obj[256];  /* object header offsets */
  unsigned idx[256];
  size_t n;
} gcol;

/* Global heap collections of the good file: signature, version 1, a size
 * inside the file, and objects that tile the collection exactly. */
static size_t find_gcols(gcol *out, size_t cap) {
  size_t n = 0;
  for (size_t at = 0; at + 16 <= g_len && n < cap; at++) {
    if (memcmp(g_good + at, "GCOL", 4) || g_good[at + 4] != 1) continue;
    uint64_t size = le(g_good + at + 8, 8);
    if (size < 4096 || size > g_len - at) continue;
    gcol *g = &out[n];
    memset(g, 0, sizeof *g);
    g->at = at;
    g->size = (size_t)size;
    size_t p = at + 16, end = at + (size_t)size;
    while (p + 16 <= end && g->n < 256) {
      unsigned idx = (unsigned)le(g_good + p, 2);
      uint64_t sz = le(g_good + p + 8, 8);
      g->obj[g->n] = p;
      g->idx[g->n++] = idx;
      uint64_t need = idx ? 16 + ((sz + 7) & ~(uint64_t)7) : sz;
      if (need == 0 || need > end - p) break;
      p += (size_t)need;
    }
    n++;
  }
  return n;
}

/* ---- reading everything, as inspect --verify and fit --data do ---------- */

static ms_status read_all(const char *path, ms_diag *d) {
  ms_h5_reader *r = NULL;
  ms_status st = ms_h5_reader_open(&r, path, d);
  if (st) return st;
  for (size_t t = 0; t < ms_h5_reader_n_tables(r) && st == MS_OK; t++) {
    ms_chunk *c = NULL;
    if ((st = ms_chunk_new(&c, ms_h5_reader_schema(r, t), 128))) break;
    for (uint64_t i = 0; i < ms_h5_reader_rows(r, t) && st == MS_OK; i += c->n_rows) {
      st = ms_h5_reader_read(r, t, i, c, d);
      if (st == MS_OK && c->n_rows == 0) st = MS_ERR_INTERNAL;
    }
    ms_chunk_free(c);
    if (st == MS_OK) st = ms_h5_reader_verify(r, t, NULL, d);
  }
  size_t n_tables = ms_h5_reader_n_tables(r);
  ms_h5_reader_free(r);
  if (st == MS_OK && n_tables == 1) {
    ms_frame *f = NULL;
    st = ms_frame_read_h5(&f, path, NULL, NULL, d);
    ms_frame_free(f);
  }
  return st;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Reads `path`; a failure must be a data/format/IO status with a message
 * naming the file (and containing `want` when given); `must_fail` demands a
 * failure. */
static void check(const char *what, const char *path, int must_fail, const char *want) {
  ms_diag d;
  ms_diag_init(&d);
  double t0 = now_s();
  ms_status st = read_all(path, &d);
  double dt = now_s() - t0;
  char *msg = ms_diag_format(&d);
  if (dt > 15) fail_msg("%s: took %.1f s", what, dt);
  if (st == MS_OK) {
    if (must_fail) fail_msg("%s: read without error", what);
  } else {
    if (st != MS_ERR_DATA && st != MS_ERR_FORMAT && st != MS_ERR_IO && st != MS_ERR_NOTFOUND)
      fail_msg("%s: status %s: %s", what, ms_status_name(st), msg ? msg : "");
    int named = 0;
    for (size_t i = 0; i < d.count; i++) named |= d.entries[i].file && !strcmp(d.entries[i].file, path);
    if (!named) fail_msg("%s: no message names the file: %s", what, msg ? msg : "");
    if (want && (!msg || !strstr(msg, want)))
      fail_msg("%s: message lacks \"%s\": %s", what, want, msg ? msg : "");
  }
  free(msg);
  ms_diag_deinit(&d);
}

typedef void (*mutate_fn)(uint8_t *b, size_t *len, size_t arg);

static void run(const char *what, mutate_fn fn, size_t arg, int must_fail, const char *want) {
  uint8_t *b = malloc(g_len);
  assert_non_null(b);
  memcpy(b, g_good, g_len);
  size_t len = g_len;
  fn(b, &len, arg);
  const char *p = tpath("damaged.h5");
  spit(p, b, len);
  free(b);
  char label[160];
  snprintf(label, sizeof label, "%s (%zu)", what, arg);
  check(label, p, must_fail, want);
}

/* ---- mutations ---------------------------------------------------------- */

static gcol g_cols[8];
static size_t g_ncols;

static void free_space_zero(uint8_t *b, size_t *len, size_t k) {
  (void)len;
  const gcol *g = &g_cols[k];
  for (size_t i = 0; i < g->n; i++)
    if (g->idx[i] == 0) put_le(b + g->obj[i] + 8, 0, 8);
}

static void object_huge(uint8_t *b, size_t *len, size_t k) {
  (void)len;
  put_le(b + g_cols[k].obj[0] + 8, (uint64_t)1 << 28, 8);
}

static void xor_ff(uint8_t *b, size_t *len, size_t off) {
  (void)len;
  b[off] ^= 0xff;
}

static void xor_01(uint8_t *b, size_t *len, size_t off) {
  (void)len;
  b[off] ^= 0x01;
}

static void cut(uint8_t *b, size_t *len, size_t n) {
  (void)b;
  *len = n;
}

static void eof_plus(uint8_t *b, size_t *len, size_t add) {
  (void)len;
  assert_int_equal(b[8], 3); /* superblock version 3: end of file at 28 */
  put_le(b + 28, le(b + 28, 8) + add, 8);
}

/* ---- tests -------------------------------------------------------------- */

static void test_h5read_good_file_reads(void **state) {
  (void)state;
  check("good file", tpath("good.h5"), 0, NULL);
  /* The guarded and the in-process probe give the same reader. */
  ms_diag d;
  ms_diag_init(&d);
  ms_h5_reader *a = NULL, *b = NULL;
  assert_int_equal(ms_h5_reader_open(&a, tpath("good.h5"), &d), MS_OK);
  setenv("MEDSYNTH_READ_GUARD", "0", 1);
  assert_int_equal(ms_h5_reader_open(&b, tpath("good.h5"), &d), MS_OK);
  unsetenv("MEDSYNTH_READ_GUARD");
  assert_int_equal(ms_h5_reader_n_attrs(a), ms_h5_reader_n_attrs(b));
  for (size_t i = 0; i < ms_h5_reader_n_attrs(a); i++) {
    assert_string_equal(ms_h5_reader_attr_name(a, i), ms_h5_reader_attr_name(b, i));
    assert_string_equal(ms_h5_reader_attr_value(a, i), ms_h5_reader_attr_value(b, i));
  }
  assert_int_equal(ms_h5_reader_rows(a, 0), 300);
  assert_int_equal(ms_h5_reader_rows(b, 0), 300);
  uint64_t ha = 0, hb = 1;
  assert_int_equal(ms_h5_reader_verify(a, 0, &ha, &d), MS_OK);
  assert_int_equal(ms_h5_reader_verify(b, 0, &hb, &d), MS_OK);
  assert_true(ha == hb);
  ms_h5_reader_free(a);
  ms_h5_reader_free(b);
  ms_diag_deinit(&d);
}

/* HDF5 1.10.8 loops forever on a free-space object of size 0 and crashes
 * on an object larger than its collection. */
static void test_h5read_damaged_heap_ends_in_message(void **state) {
  (void)state;
  g_ncols = find_gcols(g_cols, 8);
  assert_true(g_ncols >= 1);
  size_t stalls = 0;
  for (size_t k = 0; k < g_ncols; k++) {
    int has_free = 0;
    for (size_t i = 0; i < g_cols[k].n; i++) has_free |= g_cols[k].idx[i] == 0;
    if (has_free) {
      run("heap free space of size 0", free_space_zero, k, 1, "could not be read within 2 s");
      stalls++;
    }
    run("heap object larger than its collection", object_huge, k, 1, NULL);
  }
  assert_true(stalls >= 1);
  /* Every third object's index and size bytes. */
  for (size_t k = 0; k < g_ncols; k++)
    for (size_t i = 0; i < g_cols[k].n; i += 3) {
      static const size_t at[] = {0, 8, 9};
      for (size_t j = 0; j < sizeof at / sizeof *at; j++)
        run("heap object header byte", xor_ff, g_cols[k].obj[i] + at[j], 0, NULL);
    }
  for (size_t k = 0; k < g_ncols; k++)
    for (size_t j = 4; j < 16; j += 2) run("heap collection header byte", xor_ff, g_cols[k].at + j, 0, NULL);
}

static void test_h5read_truncated_file_ends_in_message(void **state) {
  (void)state;
  for (int k = 1; k < 10; k++) run("cut", cut, g_len * (size_t)k / 10, 1, "truncated or corrupt");
  run("cut", cut, g_len - 1, 1, "truncated or corrupt");
  run("cut", cut, 40, 1, NULL);
  run("superblock end of file beyond the file", eof_plus, 1, 1, "truncated or corrupt");
}

static void test_h5read_flipped_bytes_end_in_message(void **state) {
  (void)state;
  size_t meta_end = g_ncols ? g_cols[0].at : 2048;
  for (size_t off = 0; off < meta_end; off += 37) run("metadata byte", xor_ff, off, 0, NULL);
  for (size_t off = 7; off < g_len; off += 997) run("byte", xor_01, off, 0, NULL);
}

/* ---- attributes rewritten with the HDF5 API ----------------------------- */

static const char *crafted(void) {
  const char *p = tpath("crafted.h5");
  spit(p, g_good, g_len);
  return p;
}

static void replace_attr(const char *path, const char *obj, const char *name, hid_t type,
                         int rank, const hsize_t *dims, const void *data) {
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  assert_true(f >= 0);
  hid_t o = H5Oopen(f, obj, H5P_DEFAULT);
  assert_true(o >= 0);
  if (H5Aexists(o, name) > 0) assert_true(H5Adelete(o, name) >= 0);
  hid_t sp = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(o, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
  assert_true(a >= 0);
  assert_true(H5Awrite(a, type, data) >= 0);
  H5Aclose(a);
  H5Sclose(sp);
  H5Oclose(o);
  H5Fclose(f);
}

static char *schema_text(void) {
  ms_h5_reader *r = NULL;
  ms_diag d;
  ms_diag_init(&d);
  assert_int_equal(ms_h5_reader_open(&r, tpath("good.h5"), &d), MS_OK);
  ms_h5_reader_free(r);
  ms_diag_deinit(&d);
  hid_t f = H5Fopen(tpath("good.h5"), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t a = H5Aopen_by_name(f, "/tables/patients", "medsynth_schema", H5P_DEFAULT, H5P_DEFAULT);
  hid_t mt = H5Tcopy(H5T_C_S1);
  H5Tset_size(mt, H5T_VARIABLE);
  H5Tset_cset(mt, H5T_CSET_UTF8);
  char *v = NULL;
  assert_true(H5Aread(a, mt, &v) >= 0);
  char *out = strdup(v);
  H5free_memory(v);
  H5Tclose(mt);
  H5Aclose(a);
  H5Fclose(f);
  return out;
}

static void write_schema(const char *path, const char *json) {
  hid_t mt = H5Tcopy(H5T_C_S1);
  H5Tset_size(mt, H5T_VARIABLE);
  H5Tset_cset(mt, H5T_CSET_UTF8);
  replace_attr(path, "/tables/patients", "medsynth_schema", mt, 0, NULL, &json);
  H5Tclose(mt);
}

static void test_h5read_bad_attributes_end_in_message(void **state) {
  (void)state;
  /* A checksum attribute with four values (once read into one uint64). */
  uint64_t four[4] = {1, 2, 3, 4};
  hsize_t n4 = 4;
  const char *p = crafted();
  replace_attr(p, "/tables/patients", "xxh64", H5T_STD_U64LE, 1, &n4, four);
  check("xxh64 with four values", p, 1, "attribute \"xxh64\": expected one integer");
  /* A row count that disagrees with the dataset. */
  uint64_t rows = 301;
  p = crafted();
  replace_attr(p, "/tables/patients", "rows", H5T_STD_U64LE, 0, NULL, &rows);
  check("rows attribute", p, 1, "its \"rows\" attribute says 301");
  /* The schema as a number, as broken JSON, with an absurd string width. */
  int64_t num = 300;
  p = crafted();
  replace_attr(p, "/tables/patients", "medsynth_schema", H5T_STD_I64LE, 0, NULL, &num);
  check("schema as a number", p, 1, "schema attribute is malformed");
  char *json = schema_text();
  p = crafted();
  write_schema(p, "{\"name\": \"patients\", \"columns\": [");
  check("schema cut", p, 1, "schema attribute is not valid JSON");
  char *w = strstr(json, "\"str_width\":");
  assert_non_null(w);
  size_t head = (size_t)(w - json) + strlen("\"str_width\":");
  char *big = malloc(strlen(json) + 32);
  memcpy(big, json, head);
  size_t k = head;
  while (json[k] >= '0' && json[k] <= '9') k++;
  sprintf(big + head, "1e12%s", json + k);
  p = crafted();
  write_schema(p, big);
  check("schema with a string width of 1e12", p, 1, "schema attribute is malformed");
  sprintf(big + head, "-3%s", json + k);
  p = crafted();
  write_schema(p, big);
  check("schema with a negative string width", p, 1, "schema attribute is malformed");
  free(big);
  free(json);
  /* A provenance attribute with more values than are read: a warning, and
   * the value reads "(unreadable)"; the table stays readable. */
  size_t many = (size_t)1 << 21;
  uint8_t *zeros = calloc(many, 1);
  hsize_t nm = many;
  p = crafted();
  replace_attr(p, "/", "seed", H5T_STD_U8LE, 1, &nm, zeros);
  free(zeros);
  check("root attribute with 2^21 values", p, 0, NULL);
  ms_diag d;
  ms_diag_init(&d);
  ms_h5_reader *r = NULL;
  assert_int_equal(ms_h5_reader_open(&r, p, &d), MS_OK);
  assert_string_equal(ms_h5_reader_attr(r, "seed"), "(unreadable)");
  char *msg = ms_diag_format(&d);
  assert_non_null(strstr(msg, "warning: /: attribute \"seed\": 2097152 values (at most 1048576 are read"));
  free(msg);
  ms_h5_reader_free(r);
  /* An unreadable checksum fails verification, not the open. */
  p = crafted();
  replace_attr(p, "/tables/patients", "xxh64", H5T_STD_U64LE, 1, &n4, four);
  ms_diag_clear(&d);
  assert_int_equal(ms_h5_reader_open(&r, p, &d), MS_OK);
  assert_int_equal(ms_h5_reader_verify(r, 0, NULL, &d), MS_ERR_DATA);
  ms_h5_reader_free(r);
  ms_diag_deinit(&d);
}

/* Arrays (a phantom file: two tables, an image and a mask array). */
static void test_h5read_damaged_arrays_end_in_message(void **state) {
  (void)state;
  check("good arrays file", tpath("arrays.h5"), 0, NULL);
  size_t len = 0;
  uint8_t *good = slurp(tpath("arrays.h5"), &len);
  assert_non_null(good);
  const char *p = tpath("arrays_damaged.h5");
  for (size_t off = 3; off < len; off += 401) {
    good[off] ^= 0xff;
    spit(p, good, len);
    good[off] ^= 0xff;
    char label[64];
    snprintf(label, sizeof label, "arrays file byte %zu", off);
    check(label, p, 0, NULL);
  }
  spit(p, good, len);
  uint64_t items = 3;
  replace_attr(p, "/images/head", "items", H5T_STD_U64LE, 0, NULL, &items);
  check("items attribute", p, 1, "its \"items\" attribute says 3");
  free(good);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_h5read_good_file_reads),
      cmocka_unit_test(test_h5read_damaged_heap_ends_in_message),
      cmocka_unit_test(test_h5read_truncated_file_ends_in_message),
      cmocka_unit_test(test_h5read_flipped_bytes_end_in_message),
      cmocka_unit_test(test_h5read_bad_attributes_end_in_message),
      cmocka_unit_test(test_h5read_damaged_arrays_end_in_message),
  };
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  return cmocka_run_group_tests(tests, setup, teardown);
}
