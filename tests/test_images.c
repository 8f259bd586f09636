/* Image fields (medsynth/images.h): records drive their images.
 *
 * Every case generates a real HDF5 file through ms_writer + ms_images +
 * ms_generate and reads it back with ms_h5_reader:
 *  - lesion counts equal the record field that drives them, for every row,
 *    in the mask, the lesion table and the info table;
 *  - body scale, fat and ventricle scale equal their expressions, and each
 *    stored image is byte-identical to a direct phantom render with those
 *    parameters keyed by (seed, "table/field", row) (image <-> row linkage);
 *  - masks and the lesion table agree (pixel counts, bounding boxes);
 *  - reproducibility: threads 1/3, chunk sizes, batch sizes, -n 10 as a
 *    prefix of -n 20, and two shards that add up to the single run;
 *  - a row whose parameter leaves its range stops the run, named by row;
 *  - learned-model fields: the class follows its expression and image r
 *    equals a direct DDIM sample of index r with that class, for any threads
 *    and chunking (the image core's conditional test UNet).
 *
 * ctest-labels: unit */
#include <gsl/gsl_errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>
#include <cmocka.h>

#include "medsynth/images.h"
#include "medsynth/io.h"
#include "medsynth/model.h"
#include "medsynth/nn.h"
#include "medsynth/phantom.h"
#include "medsynth/records.h"
#include "medsynth/rng.h"
#include "medsynth/sample.h"
#include "spec_helpers.h"

typedef struct {
  uint64_t rows;
  int threads;
  size_t chunk, batch;
  uint32_t shard_k, shard_n;
} run_opts;

/* Generates into a fresh temp file; returns its path (caller unlinks+frees)
 * or NULL when generation failed (the diag is left in *dout if given). */
static char *run(const ms_spec *s, const run_opts *ro, ms_diag *dout) {
  char *path = malloc(64);
  snprintf(path, 64, "/tmp/ms_test_images_XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  unlink(path);
  ms_diag local, *d = dout ? dout : &local;
  ms_diag_init(&local);
  ms_writer_params wo;
  ms_writer_params_init(&wo);
  wo.format = MS_FMT_HDF5;
  wo.no_timestamp = 1;
  wo.threads = 1;
  ms_writer *w = NULL;
  assert_int_equal(ms_writer_open(&w, path, &wo, d), MS_OK);
  ms_generate_params go;
  ms_generate_params_init(&go);
  go.rows = ro->rows;
  go.threads = ro->threads;
  go.chunk_rows = ro->chunk;
  go.shard_index = ro->shard_k;
  go.shard_count = ro->shard_n;
  ms_images_params io;
  ms_images_params_init(&io);
  io.seed = ms_spec_seed(s);
  io.threads = ro->threads;
  io.batch_bytes = ro->batch;
  ms_images *im = NULL;
  assert_int_equal(ms_images_new(&im, s, w, &io, d), MS_OK);
  ms_sink sink = ms_images_sink(im);
  ms_status st = ms_generate(s, &go, &sink, NULL, d);
  if (st == MS_OK) st = ms_images_finish(im, d);
  ms_images_free(im);
  if (st == MS_OK) {
    st = ms_writer_commit(w, d);
  } else {
    ms_writer_abort(w);
  }
  ms_diag_deinit(&local);
  if (st != MS_OK) {
    assert_int_not_equal(access(path, F_OK), 0); /* no partial file */
    free(path);
    return NULL;
  }
  return path;
}

/* ---- reading back ------------------------------------------------------------------- */

static ms_h5_reader *open_file(const char *path) {
  ms_h5_reader *r = NULL;
  ms_diag d;
  ms_diag_init(&d);
  assert_int_equal(ms_h5_reader_open(&r, path, &d), MS_OK);
  ms_diag_deinit(&d);
  return r;
}

/* Whole table into one chunk (caller frees). */
static ms_chunk *read_table(ms_h5_reader *r, const char *name) {
  size_t t;
  assert_int_equal(ms_h5_reader_find(r, name, &t), MS_OK);
  uint64_t n = ms_h5_reader_rows(r, t);
  ms_chunk *c = NULL;
  assert_int_equal(ms_chunk_new(&c, ms_h5_reader_schema(r, t), n ? n : 1), MS_OK);
  c->n_rows = 0;
  if (n) assert_int_equal(ms_h5_reader_read(r, t, 0, c, NULL), MS_OK);
  return c;
}

static int col_of(const ms_chunk *c, const char *name) {
  for (size_t j = 0; j < c->schema->n_columns; j++)
    if (!strcmp(c->schema->columns[j].name, name)) return (int)j;
  fail_msg("no column %s", name);
  return -1;
}

static size_t array_of(ms_h5_reader *r, const char *path) {
  for (size_t i = 0; i < ms_h5_reader_n_arrays(r); i++)
    if (!strcmp(ms_h5_reader_array_path(r, i), path)) return i;
  fail_msg("no array %s", path);
  return 0;
}

static size_t item_size(ms_h5_reader *r, size_t a) {
  size_t n = ms_dtype_size(ms_h5_reader_array_dtype(r, a));
  for (int k = 1; k < ms_h5_reader_array_rank(r, a); k++) n *= ms_h5_reader_array_dims(r, a)[k];
  return n;
}

static void *read_items(ms_h5_reader *r, const char *path, uint64_t *n_out) {
  size_t a = array_of(r, path);
  uint64_t n = ms_h5_reader_array_dims(r, a)[0];
  void *buf = malloc(n * item_size(r, a) + 1);
  if (n) assert_int_equal(ms_h5_reader_read_items(r, a, 0, n, buf, NULL), MS_OK);
  *n_out = n;
  return buf;
}

/* xxh64 of each item of an array. */
static uint64_t *item_hashes(const char *file_path, const char *path, uint64_t *n) {
  ms_h5_reader *r = open_file(file_path);
  size_t a = array_of(r, path);
  size_t is = item_size(r, a);
  uint8_t *buf = read_items(r, path, n);
  uint64_t *h = malloc((*n + 1) * sizeof *h);
  for (uint64_t i = 0; i < *n; i++) h[i] = XXH64(buf + i * is, is, 0);
  free(buf);
  ms_h5_reader_free(r);
  return h;
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_images_lesions_follow_record_field(void **state) {
  (void)state;
  ms_spec *s = load(good_spec("images_chest_ct_and_head_mr"));
  run_opts ro = {.rows = 40, .threads = 2};
  char *path = run(s, &ro, NULL);
  assert_non_null(path);
  ms_h5_reader *r = open_file(path);
  ms_chunk *p = read_table(r, "patients");
  ms_chunk *info = read_table(r, "ct_info");
  ms_chunk *les = read_table(r, "ct_lesions");
  assert_int_equal(p->n_rows, 40);
  assert_int_equal(info->n_rows, 40);
  uint64_t n;
  uint8_t *masks = read_items(r, "/masks/ct", &n);
  assert_int_equal(n, 40);
  const int64_t *nod = p->cols[col_of(p, "nodules")].data;
  const uint8_t *cancer = p->cols[col_of(p, "cancer")].data;
  const int64_t *nl = info->cols[col_of(info, "n_lesions")].data;
  const int64_t *lrow = les->cols[col_of(les, "row")].data;
  const int64_t *lnum = les->cols[col_of(les, "lesion")].data;
  const int64_t *npx = les->cols[col_of(les, "n_pixels")].data;
  const int64_t *bx0 = les->cols[col_of(les, "bbox_x0")].data;
  const int64_t *bx1 = les->cols[col_of(les, "bbox_x1")].data;
  const int64_t *by0 = les->cols[col_of(les, "bbox_y0")].data;
  const int64_t *by1 = les->cols[col_of(les, "bbox_y1")].data;
  const char *pk = p->cols[col_of(p, "patient_id")].data;
  const char *lk = les->cols[col_of(les, "patient_id")].data;
  size_t kw = p->schema->columns[col_of(p, "patient_id")].str_width + 1;
  int cases = 0, total = 0;
  size_t li = 0;
  for (size_t i = 0; i < 40; i++) {
    const uint8_t *m = masks + i * 96 * 96;
    uint64_t count[256] = {0};
    for (size_t k = 0; k < 96 * 96; k++) count[m[k]]++;
    int labels = 0;
    for (int k = MS_LABEL_LESION_FIRST; k < 256; k++) labels += count[k] > 0;
    assert_int_equal(labels, nod[i]);          /* mask */
    assert_int_equal(nl[i], nod[i]);           /* info table */
    assert_int_equal(nod[i] > 0, cancer[i]);   /* healthy rows have none */
    cases += cancer[i];
    for (int k = 0; k < nod[i]; k++, li++) {   /* lesion table, in row order */
      assert_true(li < les->n_rows);
      assert_int_equal(lrow[li], (int64_t)i);
      assert_int_equal(lnum[li], k);
      assert_string_equal(lk + li * kw, pk + i * kw);
      assert_int_equal((uint64_t)npx[li], count[MS_LABEL_LESION_FIRST + k]);
      /* every pixel of the label lies inside the bounding box */
      uint64_t inside = 0;
      for (int64_t y = by0[li]; y <= by1[li]; y++)
        for (int64_t x = bx0[li]; x <= bx1[li]; x++) inside += m[y * 96 + x] == MS_LABEL_LESION_FIRST + k;
      assert_int_equal(inside, (uint64_t)npx[li]);
    }
    total += (int)nod[i];
  }
  assert_int_equal(li, les->n_rows);
  assert_true(cases > 5 && cases < 35); /* p = 0.5, n = 40: 6 sd */
  assert_true(total >= cases);
  free(masks);
  ms_chunk_free(p);
  ms_chunk_free(info);
  ms_chunk_free(les);
  ms_h5_reader_free(r);
  unlink(path);
  free(path);
  ms_spec_free(s);
}

static void test_images_parameters_follow_expressions(void **state) {
  (void)state;
  ms_spec *s = load(good_spec("images_chest_ct_and_head_mr"));
  run_opts ro = {.rows = 12, .threads = 2};
  char *path = run(s, &ro, NULL);
  assert_non_null(path);
  ms_h5_reader *r = open_file(path);
  ms_chunk *p = read_table(r, "patients");
  ms_chunk *ct = read_table(r, "ct_info");
  ms_chunk *mr = read_table(r, "mr_info");
  uint64_t n;
  float *img = read_items(r, "/images/ct", &n);
  const double *bmi = p->cols[col_of(p, "bmi")].data;
  const int64_t *age = p->cols[col_of(p, "age")].data;
  const int64_t *nod = p->cols[col_of(p, "nodules")].data;
  const double *bs = ct->cols[col_of(ct, "body_scale")].data;
  const double *fat = ct->cols[col_of(ct, "fat_mm")].data;
  const double *dose = ct->cols[col_of(ct, "dose")].data;
  const double *vs = mr->cols[col_of(mr, "ventricle_scale")].data;
  const double *mage = mr->cols[col_of(mr, "age_years")].data;
  ms_phantom_params q;
  ms_phantom_params_init(&q, MS_PHANTOM_CHEST);
  q.width = q.height = 96;
  q.lesions.diameter_min_mm = 14;
  q.lesions.diameter_max_mm = 22;
  ms_phantom_image pi;
  assert_int_equal(ms_phantom_image_init(&pi, &q, NULL), MS_OK);
  uint64_t pseed = ms_rng_stream_sub(7, ms_rng_stream("patients/ct"));
  for (size_t i = 0; i < 12; i++) {
    double want_bs = fmin(1.2, fmax(0.85, 0.75 + 0.01 * bmi[i]));
    double want_fat = fmin(45, fmax(4, 1.6 * bmi[i] - 22));
    double want_vs = fmin(2.5, fmax(0.5, 0.8 + 0.015 * ((double)age[i] - 20)));
    assert_float_equal(bs[i], want_bs, 1e-12);
    assert_float_equal(fat[i], want_fat, 1e-12);
    assert_float_equal(dose[i], bmi[i] > 30 ? 150 : 100, 0);
    assert_float_equal(vs[i], want_vs, 1e-12);
    assert_float_equal(mage[i], (double)age[i], 0);
    /* image i is the render of row i's parameters under (seed, "patients/ct", i) */
    ms_phantom_subject sub;
    ms_phantom_subject_init(&sub);
    sub.body_scale = want_bs;
    sub.fat_mm = want_fat;
    sub.n_lesions = (int)nod[i];
    q.dose = dose[i];
    assert_int_equal(ms_phantom_generate(&pi, &q, &sub, pseed, i, NULL), MS_OK);
    assert_memory_equal(img + i * 96 * 96, pi.image, 96 * 96 * sizeof(float));
  }
  /* a larger body_scale gives a larger body (mask != background) */
  size_t lo = 0, hi = 0;
  for (size_t i = 1; i < 12; i++) {
    if (bs[i] < bs[lo]) lo = i;
    if (bs[i] > bs[hi]) hi = i;
  }
  uint8_t *masks = read_items(r, "/masks/ct", &n);
  size_t alo = 0, ahi = 0;
  for (size_t k = 0; k < 96 * 96; k++) {
    alo += masks[lo * 96 * 96 + k] != 0;
    ahi += masks[hi * 96 * 96 + k] != 0;
  }
  if (bs[hi] > bs[lo] + 0.05) assert_true(ahi > alo);
  free(masks);
  ms_phantom_image_deinit(&pi);
  free(img);
  ms_chunk_free(p);
  ms_chunk_free(ct);
  ms_chunk_free(mr);
  ms_h5_reader_free(r);
  unlink(path);
  free(path);
  ms_spec_free(s);
}

static void assert_prefix(const uint64_t *a, uint64_t na, const uint64_t *b, uint64_t nb,
                          uint64_t off) {
  assert_true(off + na <= nb);
  for (uint64_t i = 0; i < na; i++) assert_true(a[i] == b[off + i]);
}

static void test_images_reproducible(void **state) {
  (void)state;
  ms_spec *s = load(good_spec("images_chest_ct_and_head_mr"));
  run_opts base = {.rows = 20, .threads = 1};
  run_opts other = {.rows = 20, .threads = 3, .chunk = 7, .batch = 96 * 96 * 5 * 2};
  run_opts prefix = {.rows = 10, .threads = 2, .chunk = 3};
  run_opts sh1 = {.rows = 20, .threads = 2, .shard_k = 0, .shard_n = 2};
  run_opts sh2 = {.rows = 20, .threads = 2, .shard_k = 1, .shard_n = 2};
  char *pb = run(s, &base, NULL), *po = run(s, &other, NULL), *pp = run(s, &prefix, NULL);
  char *p1 = run(s, &sh1, NULL), *p2 = run(s, &sh2, NULL);
  assert_true(pb && po && pp && p1 && p2);
  const char *arrays[] = {"/images/ct", "/masks/ct", "/images/mr", "/masks/mr"};
  for (int a = 0; a < 4; a++) {
    uint64_t nb, no, np, n1, n2;
    uint64_t *hb = item_hashes(pb, arrays[a], &nb), *ho = item_hashes(po, arrays[a], &no);
    uint64_t *hp = item_hashes(pp, arrays[a], &np), *h1 = item_hashes(p1, arrays[a], &n1);
    uint64_t *h2 = item_hashes(p2, arrays[a], &n2);
    assert_int_equal(nb, 20);
    assert_int_equal(no, 20);
    assert_int_equal(np, 10);
    assert_int_equal(n1 + n2, 20);
    assert_prefix(ho, no, hb, nb, 0);
    assert_prefix(hp, np, hb, nb, 0);
    assert_prefix(h1, n1, hb, nb, 0);
    assert_prefix(h2, n2, hb, nb, n1);
    /* images differ between rows (keyed by row, not repeated) */
    assert_true(hb[0] != hb[1]);
    free(hb);
    free(ho);
    free(hp);
    free(h1);
    free(h2);
  }
  /* shard 2's tables point at its own rows: lesion rows are file-local,
   * the key is global */
  ms_h5_reader *r1 = open_file(pb), *r2 = open_file(p2);
  ms_chunk *full = read_table(r1, "ct_lesions"), *part = read_table(r2, "ct_lesions");
  ms_chunk *pf = read_table(r1, "patients"), *pp2 = read_table(r2, "patients");
  size_t kw = pf->schema->columns[col_of(pf, "patient_id")].str_width + 1;
  const char *fk = full->cols[col_of(full, "patient_id")].data;
  const char *sk = part->cols[col_of(part, "patient_id")].data;
  const int64_t *srow = part->cols[col_of(part, "row")].data;
  const char *pkey = pp2->cols[col_of(pp2, "patient_id")].data;
  size_t off = full->n_rows - part->n_rows;
  for (size_t i = 0; i < part->n_rows; i++) {
    assert_string_equal(sk + i * kw, fk + (off + i) * kw);
    assert_string_equal(sk + i * kw, pkey + (size_t)srow[i] * kw);
  }
  ms_chunk_free(full);
  ms_chunk_free(part);
  ms_chunk_free(pf);
  ms_chunk_free(pp2);
  ms_h5_reader_free(r1);
  ms_h5_reader_free(r2);
  char *all[] = {pb, po, pp, p1, p2};
  for (int i = 0; i < 5; i++) {
    unlink(all[i]);
    free(all[i]);
  }
  ms_spec_free(s);
}

static void test_images_row_out_of_range_stops_run(void **state) {
  (void)state;
  /* body_scale = bmi / 25 leaves 0.7..1.3 for some rows */
  char *text = strdup(good_spec("images_chest_ct_and_head_mr"));
  char *at = strstr(text, "\"clamp(0.75 + 0.01 * bmi, 0.85, 1.2)\"");
  assert_non_null(at);
  const char *bad = "\"bmi / 25                           \"";
  assert_int_equal(strlen(bad), strlen("\"clamp(0.75 + 0.01 * bmi, 0.85, 1.2)\""));
  memcpy(at, bad, strlen(bad));
  ms_spec *s = load(text);
  run_opts ro = {.rows = 200, .threads = 2};
  ms_diag d;
  ms_diag_init(&d);
  char *path = run(s, &ro, &d);
  assert_null(path);
  char *msg = ms_diag_format(&d);
  assert_non_null(strstr(msg, "test.json:"));
  assert_non_null(strstr(msg, "error: patients/"));
  assert_non_null(strstr(msg, "body_scale = "));
  assert_non_null(strstr(msg, "it must be a number in 0.7..1.3"));
  free(msg);
  ms_diag_deinit(&d);
  ms_spec_free(s);
  free(text);
}

static void test_images_spec_accessors(void **state) {
  (void)state;
  ms_spec *s = load(good_spec("images_chest_ct_and_head_mr"));
  assert_int_equal(ms_spec_n_images(s), 2);
  assert_string_equal(ms_spec_image_name(s, 0), "ct");
  assert_string_equal(ms_spec_image_name(s, 1), "mr");
  assert_int_equal(ms_spec_image_table(s, 1), 0);
  assert_null(ms_spec_image_name(s, 2));
  uint64_t dims[4];
  assert_int_equal(ms_spec_image_item_dims(s, 0, dims), 3);
  assert_int_equal(dims[0], 1);
  assert_int_equal(dims[1], 96);
  assert_int_equal(dims[2], 96);
  ms_spec_free(s);
}

static void test_images_volume_shape(void **state) {
  (void)state;
  ms_spec *s = load(good_spec("images_volume_shape"));
  run_opts ro = {.rows = 3, .threads = 2};
  char *path = run(s, &ro, NULL);
  assert_non_null(path);
  ms_h5_reader *r = open_file(path);
  size_t a = array_of(r, "/images/vol");
  assert_int_equal(ms_h5_reader_array_rank(r, a), 5);
  const uint64_t *dm = ms_h5_reader_array_dims(r, a);
  assert_int_equal(dm[0], 3);
  assert_int_equal(dm[1], 1);
  assert_int_equal(dm[2], 8);
  assert_int_equal(dm[3], 32);
  assert_int_equal(dm[4], 32);
  ms_chunk *les = read_table(r, "vol_lesions");
  assert_int_equal(les->n_rows, 3);
  col_of(les, "volume_mm3");
  ms_chunk_free(les);
  ms_h5_reader_free(r);
  unlink(path);
  free(path);
  ms_spec_free(s);
}

/* A model-field run: the spec generated with 1 thread and with 2 threads and
 * chunks of 3 rows (the image bytes must agree), then the record table "p",
 * the field's info table and its images read back from the first file. */
typedef struct {
  char *p1, *p2;
  ms_h5_reader *r;
  ms_chunk *pt, *info;
  float *img;
} model_run;

static void model_run_open(model_run *mr, ms_spec *s, int rows, const char *field) {
  run_opts r1 = {.rows = (uint64_t)rows, .threads = 1};
  run_opts r2 = {.rows = (uint64_t)rows, .threads = 2, .chunk = 3};
  mr->p1 = run(s, &r1, NULL);
  mr->p2 = run(s, &r2, NULL);
  assert_true(mr->p1 && mr->p2);
  char ipath[128], iname[128];
  snprintf(ipath, sizeof ipath, "/images/%s", field);
  snprintf(iname, sizeof iname, "%s_info", field);
  uint64_t n1, n2, n;
  uint64_t *h1 = item_hashes(mr->p1, ipath, &n1), *h2 = item_hashes(mr->p2, ipath, &n2);
  assert_int_equal(n1, (uint64_t)rows);
  assert_int_equal(n2, (uint64_t)rows);
  for (int i = 0; i < rows; i++) assert_true(h1[i] == h2[i]);
  free(h1);
  free(h2);
  mr->r = open_file(mr->p1);
  mr->pt = read_table(mr->r, "p");
  mr->info = read_table(mr->r, iname);
  mr->img = read_items(mr->r, ipath, &n);
  assert_int_equal(n, (uint64_t)rows);
}

static void model_run_close(model_run *mr) {
  free(mr->img);
  ms_chunk_free(mr->pt);
  ms_chunk_free(mr->info);
  ms_h5_reader_free(mr->r);
  unlink(mr->p1);
  unlink(mr->p2);
  free(mr->p1);
  free(mr->p2);
}

static void test_images_model_field_follows_class(void **state) {
  (void)state;
  char text[2048];
  snprintf(text, sizeof text,
           "{\"medsynth\": 1, \"seed\": 5, \"tables\": [{\"name\": \"p\", \"rows\": 10, \"fields\": [\n"
           " {\"name\": \"id\", \"kind\": \"id\", \"format\": \"seq\"},\n"
           " {\"name\": \"f\", \"kind\": \"categorical\", \"values\": {\"a\": 0.4, \"b\": 0.3, \"c\": 0.3}}],\n"
           " \"images\": [{\"name\": \"gen\", \"model\": \"%s/tests/golden/nn/unet_cond.h5\",\n"
           "  \"class\": \"if(f == 'a', 0, if(f == 'b', 1, 2))\", \"steps\": 6, \"guidance\": 1.5}]}]}",
           MS_SOURCE_DIR);
  ms_spec *s = load(text);
  uint64_t dims[4];
  assert_int_equal(ms_spec_image_item_dims(s, 0, dims), 3);
  assert_int_equal(dims[1], 8);
  model_run mr;
  model_run_open(&mr, s, 10, "gen");
  const int32_t *f = mr.pt->cols[col_of(mr.pt, "f")].data;
  const int64_t *cls = mr.info->cols[col_of(mr.info, "class")].data;
  const float *img = mr.img;
  ms_model *m = NULL;
  char mp[1024];
  snprintf(mp, sizeof mp, "%s/tests/golden/nn/unet_cond.h5", MS_SOURCE_DIR);
  assert_int_equal(ms_model_load(&m, mp, NULL), MS_OK);
  const ms_model_config *c = ms_model_config_of(m);
  ms_unet *u = NULL;
  assert_int_equal(ms_unet_new(&u, m, 1, NULL), MS_OK);
  ms_denoiser dn = {.fn = ms_unet_denoise, .ctx = u, .prediction = c->prediction,
                    .num_classes = c->num_classes, .schedule = c->schedule, .item_floats = 64};
  ms_sample_params sp;
  ms_sample_params_init(&sp);
  sp.sampler = MS_SAMPLER_DDIM;
  sp.steps = 6;
  sp.guidance = 1.5;
  sp.seed = ms_rng_stream_sub(5, ms_rng_stream("p/gen"));
  for (int i = 0; i < 10; i++) {
    assert_int_equal(cls[i], f[i]); /* labels a, b, c are codes 0, 1, 2 */
    float x[64];
    int32_t y = (int32_t)cls[i];
    assert_int_equal(ms_sample(&sp, &dn, x, (uint64_t)i, &y, 1, NULL), MS_OK);
    for (int k = 0; k < 64; k++)
      assert_float_equal(img[i * 64 + k], x[k] * (float)c->intensity_scale + (float)c->intensity_offset, 0);
  }
  ms_unet_free(u);
  ms_model_free(m);
  model_run_close(&mr);
  ms_spec_free(s);
}

/* A VAE image field: the class comes from the record, image i is the decoded
 * prior latent of keyed noise (field stream, row i), whatever the chunking. */
static void test_images_vae_field_follows_class(void **state) {
  (void)state;
  char text[2048];
  snprintf(text, sizeof text,
           "{\"medsynth\": 1, \"seed\": 9, \"tables\": [{\"name\": \"p\", \"rows\": 12, \"fields\": [\n"
           " {\"name\": \"id\", \"kind\": \"id\", \"format\": \"seq\"},\n"
           " {\"name\": \"f\", \"kind\": \"categorical\", \"values\": {\"a\": 0.4, \"b\": 0.3, \"c\": 0.3}}],\n"
           " \"images\": [{\"name\": \"v\", \"model\": \"%s/tests/golden/nn/vae_prior.h5\",\n"
           "  \"class\": \"if(f == 'a', 0, if(f == 'b', 1, 2))\"}]}]}",
           MS_SOURCE_DIR);
  ms_spec *s = load(text);
  model_run mr;
  model_run_open(&mr, s, 12, "v");
  const int32_t *f = mr.pt->cols[col_of(mr.pt, "f")].data;
  const int64_t *cls = mr.info->cols[col_of(mr.info, "class")].data;
  const float *img = mr.img;
  ms_model *m = NULL;
  char mp[1024];
  snprintf(mp, sizeof mp, "%s/tests/golden/nn/vae_prior.h5", MS_SOURCE_DIR);
  assert_int_equal(ms_model_load(&m, mp, NULL), MS_OK);
  const ms_model_config *c = ms_model_config_of(m);
  ms_vae *v = NULL;
  assert_int_equal(ms_vae_new(&v, m, 1, NULL), MS_OK);
  uint64_t seed = ms_rng_stream_sub(9, ms_rng_stream("p/v"));
  int classes_seen[3] = {0, 0, 0};
  for (int i = 0; i < 12; i++) {
    assert_int_equal(cls[i], f[i]);
    classes_seen[cls[i]] = 1;
    float x[64];
    int32_t y = (int32_t)cls[i];
    assert_int_equal(ms_vae_sample(v, x, seed, (uint64_t)i, &y, 1, NULL), MS_OK);
    for (int k = 0; k < 64; k++)
      assert_float_equal(img[i * 64 + k], x[k] * (float)c->intensity_scale + (float)c->intensity_offset, 0);
  }
  assert_true(classes_seen[0] + classes_seen[1] + classes_seen[2] >= 2);
  ms_vae_free(v);
  ms_model_free(m);
  model_run_close(&mr);
  ms_spec_free(s);
}

int main(void) {
  gsl_set_error_handler_off();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_images_spec_accessors),
      cmocka_unit_test(test_images_lesions_follow_record_field),
      cmocka_unit_test(test_images_parameters_follow_expressions),
      cmocka_unit_test(test_images_reproducible),
      cmocka_unit_test(test_images_row_out_of_range_stops_run),
      cmocka_unit_test(test_images_volume_shape),
      cmocka_unit_test(test_images_model_field_follows_class),
      cmocka_unit_test(test_images_vae_field_follows_class),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
