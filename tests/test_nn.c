/* Parity of the C UNet/VAE with the PyTorch reference, the model loader's
 * failure paths, and batch/thread determinism of the forward pass.
 *
 * Fixtures: tests/golden/nn/<case>.h5 (model) and <case>_golden.h5 (inputs,
 * per-module outputs for batch item 0, end-to-end outputs), written by
 * models/reference/make_golden.py. Tolerances (relative to the reference
 * tensor's max abs value): 1e-4 per module, 1e-3 end to end.
 * Corrupt models for the loader tests are made at run time from a good one.
 *
 * ctest-labels: unit parity golden */
#include <setjmp.h>
#include <stdarg.h>
#include <time.h>
#include <stddef.h>
#include <cmocka.h>

#include <hdf5.h>
#include <omp.h>
#include <unistd.h>

#include "medsynth/model.h"
#include "medsynth/nn.h"
#include "nn_fixture.h"

/* Fixture path: $MS_GOLDEN_DIR/<name> when set (models/reference/parity.py
 * points it at freshly generated fixtures), else tests/golden/nn/<name>. */
static const char *gp(const char *name) {
  static char bufs[8][1024];
  static int next;
  char *b = bufs[next++ % 8];
  const char *dir = getenv("MS_GOLDEN_DIR");
  snprintf(b, 1024, "%s/%s", dir && *dir ? dir : MS_SOURCE_DIR "/tests/golden/nn", name);
  return b;
}

#define LAYER_TOL 1e-4
#define E2E_TOL 1e-3

/* ---------------------------------------------------------- tracing */

typedef struct {
  const char *golden;
  int compared;
  int missing;
  int failed;
  double worst;
  char worst_name[128];
} trace_state;

static void trace_cmp(void *ctx, const char *name, const float *data, int rank,
                      const size_t *shape) {
  trace_state *s = ctx;
  char path[256];
  snprintf(path, sizeof path, "/layers/%s", name);
  fx_array ref;
  if (fx_read(s->golden, path, &ref)) {
    fprintf(stderr, "no reference for traced module %s\n", name);
    s->missing++;
    return;
  }
  /* The reference holds batch item 0; compare that image. */
  size_t per = 1;
  for (int i = 1; i < rank; i++) per *= shape[i];
  if (ref.n != per) {
    fprintf(stderr, "%s: reference has %zu values per item, C has %zu\n", name, ref.n, per);
    s->failed++;
  } else {
    double e = fx_compare(name, data, ref.data, per, LAYER_TOL);
    if (e > s->worst) {
      s->worst = e;
      snprintf(s->worst_name, sizeof s->worst_name, "%s", name);
    }
    if (!(e <= LAYER_TOL)) s->failed++;
    s->compared++;
  }
  fx_free(&ref);
}

static ms_model *load_ok(const char *path) {
  ms_diag d;
  ms_diag_init(&d);
  ms_model *m = NULL;
  ms_status st = ms_model_load(&m, path, &d);
  if (st != MS_OK) {
    char *t = ms_diag_format(&d);
    fprintf(stderr, "%s", t ? t : "");
    free(t);
  }
  ms_diag_deinit(&d);
  assert_int_equal(st, MS_OK);
  return m;
}

static void unet_case(const char *model_path, const char *golden, int with_layers) {
  ms_model *m = load_ok(model_path);
  fx_array x, t, out;
  assert_int_equal(fx_read(golden, "/forward/x", &x), 0);
  assert_int_equal(fx_read(golden, "/forward/t", &t), 0);
  assert_int_equal(fx_read(golden, "/forward/out", &out), 0);
  int32_t *y = NULL;
  size_t ny = 0;
  if (ms_model_config_of(m)->num_classes) assert_int_equal(fx_read_int(golden, "/forward/y", &y, &ny), 0);
  int B = (int)x.dims[0];
  ms_diag d;
  ms_diag_init(&d);
  ms_unet *u;
  assert_int_equal(ms_unet_new(&u, m, B, &d), MS_OK);
  trace_state ts = {.golden = golden};
  if (with_layers) ms_unet_set_trace(u, trace_cmp, &ts);
  float *got = calloc(out.n, sizeof(float));
  assert_int_equal(ms_unet_forward(u, got, x.data, t.data, y, B, &d), MS_OK);
  double e = fx_compare("forward/out", got, out.data, out.n, E2E_TOL);
  printf("%s: end-to-end rel error %.3g", model_path, e);
  if (with_layers)
    printf(", %d modules compared, worst %.3g (%s)", ts.compared, ts.worst, ts.worst_name);
  printf("\n");
  assert_true(e <= E2E_TOL);
  if (with_layers) {
    assert_int_equal(ts.missing, 0);
    assert_int_equal(ts.failed, 0);
    assert_true(ts.compared >= 40);
  }
  free(got);
  free(y);
  fx_free(&x);
  fx_free(&t);
  fx_free(&out);
  ms_unet_free(u);
  ms_model_free(m);
  ms_diag_deinit(&d);
}

static void test_nn_unet_eps_matches_torch(void **state) {
  (void)state;
  unet_case(gp("unet_eps.h5"), gp("unet_eps_golden.h5"), 1);
}

static void test_nn_unet_cond_matches_torch(void **state) {
  (void)state;
  unet_case(gp("unet_cond.h5"), gp("unet_cond_golden.h5"), 0);
}

static void test_nn_vae_matches_torch(void **state) {
  (void)state;
  const char *golden = gp("vae_golden.h5");
  ms_model *m = load_ok(gp("vae.h5"));
  fx_array x, mean, logvar, z, out;
  assert_int_equal(fx_read(golden, "/encode/x", &x), 0);
  assert_int_equal(fx_read(golden, "/encode/mean", &mean), 0);
  assert_int_equal(fx_read(golden, "/encode/logvar", &logvar), 0);
  assert_int_equal(fx_read(golden, "/decode/z", &z), 0);
  assert_int_equal(fx_read(golden, "/decode/out", &out), 0);
  int B = (int)x.dims[0];
  ms_diag d;
  ms_diag_init(&d);
  ms_vae *v;
  assert_int_equal(ms_vae_new(&v, m, B, &d), MS_OK);
  assert_int_equal(ms_vae_latent_size(v), (int)mean.dims[2]);
  trace_state ts = {.golden = golden};
  ms_vae_set_trace(v, trace_cmp, &ts);
  float *gm = calloc(mean.n, 4), *gl = calloc(logvar.n, 4), *go = calloc(out.n, 4);
  assert_int_equal(ms_vae_encode(v, gm, gl, x.data, B, &d), MS_OK);
  assert_int_equal(ms_vae_decode(v, go, z.data, B, &d), MS_OK);
  double e1 = fx_compare("encode/mean", gm, mean.data, mean.n, E2E_TOL);
  double e2 = fx_compare("encode/logvar", gl, logvar.data, logvar.n, E2E_TOL);
  double e3 = fx_compare("decode/out", go, out.data, out.n, E2E_TOL);
  printf("vae: mean %.3g logvar %.3g decode %.3g; %d modules compared, worst %.3g (%s)\n", e1,
         e2, e3, ts.compared, ts.worst, ts.worst_name);
  assert_true(e1 <= E2E_TOL && e2 <= E2E_TOL && e3 <= E2E_TOL);
  assert_int_equal(ts.missing, 0);
  assert_int_equal(ts.failed, 0);
  assert_true(ts.compared >= 30);
  free(gm);
  free(gl);
  free(go);
  fx_free(&x);
  fx_free(&mean);
  fx_free(&logvar);
  fx_free(&z);
  fx_free(&out);
  ms_vae_free(v);
  ms_model_free(m);
  ms_diag_deinit(&d);
}

/* Learned latent prior: latents from explicit noise and their decoded
 * images equal the reference; class bounds are checked. */
static void test_nn_vae_prior_matches_torch(void **state) {
  (void)state;
  const char *golden = gp("vae_prior_golden.h5");
  ms_model *m = load_ok(gp("vae_prior.h5"));
  const ms_model_config *c = ms_model_config_of(m);
  assert_true(c->has_latent_prior);
  assert_int_equal(c->num_classes, 3);
  assert_int_equal(c->prior_rank, 3);
  fx_array e, z, out;
  int32_t *y = NULL;
  size_t ny = 0;
  assert_int_equal(fx_read(golden, "/prior/e", &e), 0);
  assert_int_equal(fx_read(golden, "/prior/z", &z), 0);
  assert_int_equal(fx_read(golden, "/prior/out", &out), 0);
  assert_int_equal(fx_read_int(golden, "/prior/y", &y, &ny), 0);
  int B = (int)e.dims[0];
  assert_int_equal((int)ny, B);
  ms_diag d;
  ms_diag_init(&d);
  ms_vae *v;
  assert_int_equal(ms_vae_new(&v, m, B, &d), MS_OK);
  size_t D = ms_vae_latent_floats(v), E = ms_vae_prior_noise_floats(v);
  assert_int_equal(E, D + 3);
  assert_int_equal(e.n, (size_t)B * E);
  float *gz = calloc((size_t)B * D, 4), *go = calloc(out.n, 4);
  for (int b = 0; b < B; b++)
    assert_int_equal(ms_vae_prior_latent(v, gz + (size_t)b * D, e.data + (size_t)b * E, y[b], &d),
                     MS_OK);
  assert_int_equal(ms_vae_decode(v, go, gz, B, &d), MS_OK);
  double e1 = fx_compare("prior/z", gz, z.data, z.n, LAYER_TOL);
  double e2 = fx_compare("prior/out", go, out.data, out.n, E2E_TOL);
  printf("vae prior: z %.3g, decoded %.3g\n", e1, e2);
  assert_true(e1 <= LAYER_TOL && e2 <= E2E_TOL);
  /* Different classes give different latents from the same noise. */
  float *z0 = calloc(D, 4), *z1 = calloc(D, 4);
  assert_int_equal(ms_vae_prior_latent(v, z0, e.data, 0, &d), MS_OK);
  assert_int_equal(ms_vae_prior_latent(v, z1, e.data, 1, &d), MS_OK);
  assert_memory_not_equal(z0, z1, D * 4);
  assert_int_equal(ms_vae_prior_latent(v, z0, e.data, 3, &d), MS_ERR_INVALID);
  assert_int_equal(ms_vae_prior_latent(v, z0, e.data, -1, &d), MS_ERR_INVALID);
  free(z0);
  free(z1);
  free(gz);
  free(go);
  free(y);
  fx_free(&e);
  fx_free(&z);
  fx_free(&out);
  ms_vae_free(v);
  ms_model_free(m);
  ms_diag_deinit(&d);
}

/* Without a learned prior the latent is the noise itself. */
static void test_nn_vae_standard_prior_is_identity(void **state) {
  (void)state;
  ms_model *m = load_ok(gp("vae.h5"));
  ms_diag d;
  ms_diag_init(&d);
  ms_vae *v;
  assert_int_equal(ms_vae_new(&v, m, 1, &d), MS_OK);
  size_t D = ms_vae_latent_floats(v);
  assert_int_equal(ms_vae_prior_noise_floats(v), D);
  float *e = malloc(D * 4), *z = malloc(D * 4);
  for (size_t k = 0; k < D; k++) e[k] = (float)k * 0.25f - 1.0f;
  assert_int_equal(ms_vae_prior_latent(v, z, e, 0, &d), MS_OK);
  assert_memory_equal(z, e, D * 4);
  assert_int_equal(ms_vae_prior_latent(v, z, e, 1, &d), MS_ERR_INVALID);
  free(e);
  free(z);
  ms_vae_free(v);
  ms_model_free(m);
  ms_diag_deinit(&d);
}

/* ------------------------------------------------------ determinism */

static void test_nn_unet_batch_and_threads_identical(void **state) {
  (void)state;
  ms_model *m = load_ok(gp("unet_eps.h5"));
  const ms_model_config *c = ms_model_config_of(m);
  size_t per = (size_t)c->image_channels * c->image_size * c->image_size;
  float *x = malloc(4 * per * 4), *o4 = malloc(4 * per * 4), *o1 = malloc(4 * per * 4),
        *o2 = malloc(4 * per * 4);
  for (size_t i = 0; i < 4 * per; i++) x[i] = (float)sin(0.37 * (double)i);
  float t[4] = {999, 500, 17, 0};
  ms_diag d;
  ms_diag_init(&d);
  ms_unet *u;
  assert_int_equal(ms_unet_new(&u, m, 4, &d), MS_OK);
  int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  assert_int_equal(ms_unet_forward(u, o4, x, t, NULL, 4, &d), MS_OK);
  for (int i = 0; i < 4; i++)
    assert_int_equal(ms_unet_forward(u, o1 + i * per, x + i * per, t + i, NULL, 1, &d), MS_OK);
  omp_set_num_threads(2);
  assert_int_equal(ms_unet_forward(u, o2, x, t, NULL, 4, &d), MS_OK);
  omp_set_num_threads(saved);
  assert_memory_equal(o4, o1, 4 * per * sizeof(float));
  assert_memory_equal(o4, o2, 4 * per * sizeof(float));
  /* The images differ from each other (the check is not vacuous). */
  assert_true(memcmp(o4, o4 + per, per * sizeof(float)) != 0);
  ms_unet_free(u);
  ms_model_free(m);
  free(x);
  free(o4);
  free(o1);
  free(o2);
  ms_diag_deinit(&d);
}

/* ---------------------------------------------------- loader failures */

static char tmp_path[256];

static void copy_file(const char *src, const char *dst, long keep) {
  FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
  assert_non_null(in);
  assert_non_null(out);
  char buf[65536];
  long total = 0;
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
    if (keep >= 0 && total + (long)n > keep) n = (size_t)(keep - total);
    fwrite(buf, 1, n, out);
    total += (long)n;
    if (keep >= 0 && total >= keep) break;
  }
  fclose(in);
  fclose(out);
}

static const char *fresh_copy(const char *tag) {
  snprintf(tmp_path, sizeof tmp_path, "test_nn_%ld_%s.h5", (long)getpid(), tag);
  copy_file(gp("unet_eps.h5"), tmp_path, -1);
  return tmp_path;
}

/* Loads `path`, expects failure with `status` and an entry whose location is
 * `where` and whose message contains `needle`. Removes the file. */
static void expect_load_error(const char *path, ms_status status, const char *where,
                              const char *needle) {
  ms_diag d;
  ms_diag_init(&d);
  ms_model *m = NULL;
  ms_status st = ms_model_load(&m, path, &d);
  char *text = ms_diag_format(&d);
  printf("%s", text ? text : "");
  assert_int_not_equal(st, MS_OK);
  assert_null(m);
  int found = 0;
  for (size_t i = 0; i < d.count; i++) {
    const ms_diag_entry *e = &d.entries[i];
    if (e->status == status && (!where || (e->where && !strcmp(e->where, where))) &&
        strstr(e->message, needle))
      found = 1;
  }
  if (!found) fprintf(stderr, "expected %s at %s containing '%s'\n", ms_status_name(status),
                      where ? where : "(any)", needle);
  assert_true(found);
  free(text);
  ms_diag_deinit(&d);
  unlink(path);
}

static hid_t open_rw(const char *path) {
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  assert_true(f >= 0);
  return f;
}

static void test_nn_loader_rejects_truncated_file(void **state) {
  (void)state;
  FILE *f = fopen(gp("unet_eps.h5"), "rb");
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fclose(f);
  snprintf(tmp_path, sizeof tmp_path, "test_nn_%ld_trunc.h5", (long)getpid());
  copy_file(gp("unet_eps.h5"), tmp_path, size / 2);
  expect_load_error(tmp_path, MS_ERR_FORMAT, NULL, "truncated or corrupt");
  snprintf(tmp_path, sizeof tmp_path, "test_nn_%ld_garbage.h5", (long)getpid());
  f = fopen(tmp_path, "wb");
  fputs("this is not an HDF5 file\n", f);
  fclose(f);
  expect_load_error(tmp_path, MS_ERR_FORMAT, NULL, "not a readable HDF5");
  ms_diag d;
  ms_diag_init(&d);
  ms_model *m;
  assert_int_equal(ms_model_load(&m, "does/not/exist.h5", &d), MS_ERR_NOTFOUND);
  ms_diag_deinit(&d);
}

static void test_nn_loader_rejects_nan_weight(void **state) {
  (void)state;
  const char *p = fresh_copy("nan");
  hid_t f = open_rw(p);
  hid_t ds = H5Dopen2(f, "mid.attn.qkv.weight", H5P_DEFAULT);
  hid_t sp = H5Dget_space(ds);
  hsize_t start[4] = {5, 3, 0, 0}, count[4] = {1, 1, 1, 1};
  H5Sselect_hyperslab(sp, H5S_SELECT_SET, start, NULL, count, NULL);
  hid_t ms = H5Screate_simple(1, count, NULL);
  float nan = NAN;
  assert_true(H5Dwrite(ds, H5T_NATIVE_FLOAT, ms, sp, H5P_DEFAULT, &nan) >= 0);
  H5Sclose(ms);
  H5Sclose(sp);
  H5Dclose(ds);
  H5Fclose(f);
  expect_load_error(p, MS_ERR_DATA, "mid.attn.qkv.weight", "non-finite weight (NaN)");
}

static void test_nn_loader_rejects_missing_tensor(void **state) {
  (void)state;
  const char *p = fresh_copy("missing");
  hid_t f = open_rw(p);
  assert_true(H5Ldelete(f, "up.0.res.1.conv2.bias", H5P_DEFAULT) >= 0);
  H5Fclose(f);
  expect_load_error(p, MS_ERR_FORMAT, "up.0.res.1.conv2.bias", "missing tensor");
}

static void test_nn_loader_rejects_extra_tensor(void **state) {
  (void)state;
  const char *p = fresh_copy("extra");
  hid_t f = open_rw(p);
  hsize_t dims[1] = {4};
  hid_t sp = H5Screate_simple(1, dims, NULL);
  hid_t ds = H5Dcreate2(f, "down.0.res.0.extra.weight", H5T_IEEE_F32LE, sp, H5P_DEFAULT,
                        H5P_DEFAULT, H5P_DEFAULT);
  float z[4] = {0};
  H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, z);
  H5Dclose(ds);
  H5Sclose(sp);
  H5Fclose(f);
  expect_load_error(p, MS_ERR_FORMAT, "down.0.res.0.extra.weight", "unexpected tensor");
}

static void test_nn_loader_rejects_wrong_shape(void **state) {
  (void)state;
  const char *p = fresh_copy("shape");
  hid_t f = open_rw(p);
  assert_true(H5Ldelete(f, "conv_in.weight", H5P_DEFAULT) >= 0);
  hsize_t dims[4] = {8, 2, 3, 3};
  hid_t sp = H5Screate_simple(4, dims, NULL);
  hid_t ds = H5Dcreate2(f, "conv_in.weight", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT,
                        H5P_DEFAULT);
  float z[144] = {0};
  H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, z);
  H5Dclose(ds);
  H5Sclose(sp);
  H5Fclose(f);
  expect_load_error(p, MS_ERR_FORMAT, "conv_in.weight", "shape [8, 2, 3, 3] does not match");
}

static void set_config(const char *path, const char *json) {
  hid_t f = open_rw(path);
  H5Adelete(f, "config");
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, strlen(json));
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(f, "config", t, sp, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, t, json);
  H5Aclose(a);
  H5Sclose(sp);
  H5Tclose(t);
  H5Fclose(f);
}

static void test_nn_loader_rejects_bad_config(void **state) {
  (void)state;
  const char *p = fresh_copy("arch");
  set_config(p, "{\"architecture\": \"transformer\", \"image_size\": 16, \"image_channels\": 1,"
                " \"channels\": [8, 16], \"blocks_per_level\": 1}");
  expect_load_error(p, MS_ERR_FORMAT, "/architecture", "unknown architecture \"transformer\"");
  p = fresh_copy("groups");
  set_config(p, "{\"architecture\": \"unet\", \"image_size\": 16, \"image_channels\": 1,"
                " \"channels\": [8, 12], \"blocks_per_level\": 1, \"groups\": 8,"
                " \"schedule\": {\"type\": \"cosine\", \"T\": 10}}");
  expect_load_error(p, MS_ERR_FORMAT, "/channels/1", "not divisible by groups");
}

static void test_nn_loader_checks_latent_prior(void **state) {
  (void)state;
  /* A class-conditional vae without a prior is rejected. */
  snprintf(tmp_path, sizeof tmp_path, "test_nn_%ld_vaecls.h5", (long)getpid());
  copy_file(gp("vae.h5"), tmp_path, -1);
  set_config(tmp_path, "{\"architecture\": \"vae\", \"image_size\": 8, \"image_channels\": 1,"
                       " \"channels\": [8, 16], \"blocks_per_level\": 1, \"latent_channels\": 2,"
                       " \"heads\": 1, \"groups\": 4, \"norm_eps\": 1e-6, \"num_classes\": 2}");
  expect_load_error(tmp_path, MS_ERR_FORMAT, "/num_classes", "needs a latent_prior");
  /* A prior whose tensors are missing is rejected, naming the tensor. */
  snprintf(tmp_path, sizeof tmp_path, "test_nn_%ld_vaeprior.h5", (long)getpid());
  copy_file(gp("vae_prior.h5"), tmp_path, -1);
  hid_t f = open_rw(tmp_path);
  assert_true(H5Ldelete(f, "prior.factor", H5P_DEFAULT) >= 0);
  H5Fclose(f);
  expect_load_error(tmp_path, MS_ERR_FORMAT, "prior.factor", "missing tensor");
  /* Rank 0 is not a rank. */
  copy_file(gp("vae_prior.h5"), tmp_path, -1);
  set_config(tmp_path, "{\"architecture\": \"vae\", \"image_size\": 8, \"image_channels\": 1,"
                       " \"channels\": [8, 16], \"blocks_per_level\": 1, \"latent_channels\": 2,"
                       " \"heads\": 1, \"groups\": 4, \"norm_eps\": 1e-6, \"num_classes\": 3,"
                       " \"latent_prior\": {\"rank\": 0}}");
  expect_load_error(tmp_path, MS_ERR_FORMAT, "/latent_prior/rank", "");
}

static void test_nn_loader_rejects_altered_weights(void **state) {
  (void)state;
  const char *p = fresh_copy("hash");
  hid_t f = open_rw(p);
  hid_t ds = H5Dopen2(f, "conv_out.bias", H5P_DEFAULT);
  float v = 0.125f;
  assert_true(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) >= 0);
  H5Dclose(ds);
  H5Fclose(f);
  expect_load_error(p, MS_ERR_DATA, "weights_xxh64", "does not match");
}

/* Bytes flipped in the object headers once crashed HDF5's attribute
 * iteration (H5Aiterate2 in HDF5 1.10.8); the loader now opens its
 * attributes by name and must report an error, never crash. The edits are
 * (0-based offset, new byte) into tests/golden/nn/unet_eps.h5. */
static void test_nn_loader_survives_corrupt_headers(void **state) {
  (void)state;
  static const struct {
    long off;
    unsigned char v;
  } edits[] = {{1284, 0303}, {3829, 0110}, {4619, 0364}, {7841, 0145}};
  const char *p = fresh_copy("flip");
  FILE *f = fopen(p, "r+b");
  assert_non_null(f);
  for (size_t i = 0; i < sizeof edits / sizeof *edits; i++) {
    fseek(f, edits[i].off, SEEK_SET);
    fputc(edits[i].v, f);
  }
  fclose(f);
  ms_diag d;
  ms_diag_init(&d);
  ms_model *m = NULL;
  ms_status st = ms_model_load(&m, p, &d);
  assert_int_not_equal(st, MS_OK);
  assert_null(m);
  assert_true(d.count >= 1);
  ms_diag_deinit(&d);
  unlink(p);
}

/* HDF5 1.10.8 loops forever on a global heap whose free-space object has
 * size 0, and crashes on a heap object larger than its collection; the
 * config attribute is a variable-length string in that heap. The loader
 * reads in a guarded child (core/guard.h) and must report, naming the
 * attribute, within the time limit. The heap is found by walking it. */
static void damage_heap(const char *p, int huge) {
  FILE *f = fopen(p, "r+b");
  assert_non_null(f);
  unsigned char b[16];
  long at = -1;
  for (long off = 0; off < 65536 && at < 0; off += 8) {
    fseek(f, off, SEEK_SET);
    if (fread(b, 1, 16, f) == 16 && !memcmp(b, "GCOL", 4) && b[4] == 1) at = off;
  }
  assert_true(at >= 0);
  uint64_t size = 0;
  for (int i = 0; i < 8; i++) size |= (uint64_t)b[8 + i] << (8 * i);
  long p0 = at + 16, end = at + (long)size;
  int done = 0;
  for (long q = p0; q + 16 <= end && !done;) {
    fseek(f, q, SEEK_SET);
    assert_int_equal(fread(b, 1, 16, f), 16);
    unsigned idx = b[0] | (unsigned)b[1] << 8;
    uint64_t sz = 0;
    for (int i = 0; i < 8; i++) sz |= (uint64_t)b[8 + i] << (8 * i);
    if ((huge && q == p0) || (!huge && idx == 0)) {
      uint64_t v = huge ? (uint64_t)1 << 28 : 0;
      for (int i = 0; i < 8; i++) b[8 + i] = (unsigned char)(v >> (8 * i));
      fseek(f, q + 8, SEEK_SET);
      fwrite(b + 8, 1, 8, f);
      done = 1;
    }
    q += idx ? 16 + (long)((sz + 7) & ~(uint64_t)7) : (long)sz;
  }
  fclose(f);
  assert_true(done);
}

static void test_nn_loader_survives_damaged_heap(void **state) {
  (void)state;
  setenv("MEDSYNTH_READ_TIMEOUT", "2", 1);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  const char *p = fresh_copy("heap_loop");
  damage_heap(p, 0);
  expect_load_error(p, MS_ERR_FORMAT, NULL, "could not be read within 2 s");
  p = fresh_copy("heap_huge");
  damage_heap(p, 1);
  expect_load_error(p, MS_ERR_FORMAT, NULL, "");
  clock_gettime(CLOCK_MONOTONIC, &t1);
  assert_true(t1.tv_sec - t0.tv_sec < 15);
  unsetenv("MEDSYNTH_READ_TIMEOUT");
}

static void test_nn_loader_reports_metadata(void **state) {
  (void)state;
  ms_model *m = load_ok(gp("unet_eps.h5"));
  const ms_model_config *c = ms_model_config_of(m);
  assert_int_equal(c->arch, MS_ARCH_UNET);
  assert_int_equal(c->n_levels, 2);
  assert_int_equal(c->schedule.T, 1000);
  assert_string_equal(c->intensity_unit, "HU");
  assert_non_null(ms_model_attr(m, "licence"));
  char hex[17];
  snprintf(hex, sizeof hex, "%016llx", (unsigned long long)ms_model_weights_xxh64(m));
  assert_string_equal(hex, ms_model_attr(m, "weights_xxh64"));
  size_t total = 0;
  for (size_t i = 0; i < ms_model_tensor_count(m); i++) total += ms_model_tensor_at(m, i)->count;
  assert_int_equal(total, ms_model_param_count(m));
  assert_non_null(ms_model_find(m, "mid.attn.qkv.weight"));
  assert_null(ms_model_find(m, "mid.attn.qkv.weight2"));
  ms_model_free(m);
  ms_model_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_nn_unet_eps_matches_torch),
      cmocka_unit_test(test_nn_unet_cond_matches_torch),
      cmocka_unit_test(test_nn_vae_matches_torch),
      cmocka_unit_test(test_nn_vae_prior_matches_torch),
      cmocka_unit_test(test_nn_vae_standard_prior_is_identity),
      cmocka_unit_test(test_nn_loader_checks_latent_prior),
      cmocka_unit_test(test_nn_unet_batch_and_threads_identical),
      cmocka_unit_test(test_nn_loader_rejects_truncated_file),
      cmocka_unit_test(test_nn_loader_rejects_nan_weight),
      cmocka_unit_test(test_nn_loader_rejects_missing_tensor),
      cmocka_unit_test(test_nn_loader_rejects_extra_tensor),
      cmocka_unit_test(test_nn_loader_rejects_wrong_shape),
      cmocka_unit_test(test_nn_loader_rejects_bad_config),
      cmocka_unit_test(test_nn_loader_rejects_altered_weights),
      cmocka_unit_test(test_nn_loader_survives_corrupt_headers),
      cmocka_unit_test(test_nn_loader_survives_damaged_heap),
      cmocka_unit_test(test_nn_loader_reports_metadata),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
