/* Samplers against the PyTorch reference (short DDIM, DDPM and DPM-Solver++
 * trajectories with explicit noise, with and without classifier-free
 * guidance), schedule and timestep spacing, parameter checks, and image
 * determinism across batch composition and thread count.
 *
 * Trajectory tolerance: every step's x within 1e-3 of the reference
 * relative to that step's max |x|.
 *
 * ctest-labels: unit parity golden */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <omp.h>

#include "medsynth/model.h"
#include "medsynth/nn.h"
#include "medsynth/sample.h"
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

#define TRAJ_TOL 1e-3

typedef struct {
  fx_array x_T, noise, traj;
  size_t item;
  int B;
  double worst;
  int worst_step;
  int failed;
  int steps_seen;
} traj_ctx;

static ms_status fixture_noise(void *ctx, float *out, uint64_t image, uint64_t lane, size_t n) {
  traj_ctx *c = ctx;
  if (n != c->item || image >= (uint64_t)c->B) return MS_ERR_RANGE;
  const float *src = lane == 0 ? c->x_T.data + image * n
                               : c->noise.data + ((lane - 1) * (uint64_t)c->B + image) * n;
  memcpy(out, src, n * sizeof(float));
  return MS_OK;
}

static void on_step(void *ctx, int step, int steps, const float *x, int n) {
  traj_ctx *c = ctx;
  (void)steps;
  size_t per = c->item * (size_t)n;
  char what[64];
  snprintf(what, sizeof what, "step %d", step);
  double e = fx_compare(what, x, c->traj.data + (size_t)(step + 1) * per, per, TRAJ_TOL);
  if (e > c->worst) {
    c->worst = e;
    c->worst_step = step;
  }
  if (!(e <= TRAJ_TOL)) c->failed++;
  c->steps_seen++;
}

static ms_model *load(const char *path) {
  ms_diag d;
  ms_diag_init(&d);
  ms_model *m = NULL;
  assert_int_equal(ms_model_load(&m, path, &d), MS_OK);
  ms_diag_deinit(&d);
  return m;
}

static ms_denoiser make_denoiser(ms_model *m, ms_unet *u) {
  const ms_model_config *c = ms_model_config_of(m);
  ms_denoiser dn = {.fn = ms_unet_denoise, .ctx = u, .prediction = c->prediction,
                    .num_classes = c->num_classes, .schedule = c->schedule,
                    .item_floats = (size_t)c->image_channels * c->image_size * c->image_size,
                    .max_batch = ms_unet_max_batch(u)};
  return dn;
}

static void trajectory_case(const char *model_name, const char *sample_name) {
  char mp[1024], gpath[1024], grp[128], name[256];
  snprintf(name, sizeof name, "%s.h5", model_name);
  snprintf(mp, sizeof mp, "%s", gp(name));
  snprintf(name, sizeof name, "%s_golden.h5", model_name);
  snprintf(gpath, sizeof gpath, "%s", gp(name));
  ms_model *m = load(mp);
  traj_ctx tc = {0};
  snprintf(grp, sizeof grp, "/sample/%s/x_T", sample_name);
  assert_int_equal(fx_read(gpath, grp, &tc.x_T), 0);
  snprintf(grp, sizeof grp, "/sample/%s/noise", sample_name);
  assert_int_equal(fx_read(gpath, grp, &tc.noise), 0);
  snprintf(grp, sizeof grp, "/sample/%s/traj", sample_name);
  assert_int_equal(fx_read(gpath, grp, &tc.traj), 0);
  tc.B = (int)tc.x_T.dims[0];
  tc.item = tc.x_T.n / (size_t)tc.B;
  int32_t *y = NULL;
  size_t ny;
  snprintf(grp, sizeof grp, "/sample/%s/y", sample_name);
  if (ms_model_config_of(m)->num_classes) assert_int_equal(fx_read_int(gpath, grp, &y, &ny), 0);
  snprintf(grp, sizeof grp, "/sample/%s", sample_name);
  double steps, eta, guidance;
  assert_int_equal(fx_attr_double(gpath, grp, "steps", &steps), 0);
  assert_int_equal(fx_attr_double(gpath, grp, "eta", &eta), 0);
  assert_int_equal(fx_attr_double(gpath, grp, "guidance", &guidance), 0);
  ms_diag d;
  ms_diag_init(&d);
  ms_unet *u;
  assert_int_equal(ms_unet_new(&u, m, tc.B, &d), MS_OK);
  ms_denoiser dn = make_denoiser(m, u);
  ms_sample_params p;
  ms_sample_params_init(&p);
  p.sampler = !strncmp(sample_name, "ddim", 4)   ? MS_SAMPLER_DDIM
              : !strncmp(sample_name, "ddpm", 4) ? MS_SAMPLER_DDPM
                                                 : MS_SAMPLER_DPMPP_2M;
  p.steps = (int)steps;
  p.eta = eta;
  p.guidance = guidance;
  p.noise = fixture_noise;
  p.noise_ctx = &tc;
  p.on_step = on_step;
  p.step_ctx = &tc;
  float *x = malloc(tc.x_T.n * sizeof(float));
  ms_status st = ms_sample(&p, &dn, x, 0, y, tc.B, &d);
  if (st != MS_OK) {
    char *t = ms_diag_format(&d);
    fprintf(stderr, "%s", t);
    free(t);
  }
  assert_int_equal(st, MS_OK);
  printf("%s/%s: %s, %d steps, eta %g, guidance %g: worst step error %.3g (step %d)\n",
         model_name, sample_name, ms_sampler_name(p.sampler), p.steps, eta, guidance, tc.worst,
         tc.worst_step);
  assert_int_equal(tc.steps_seen, p.steps);
  assert_int_equal(tc.failed, 0);
  free(x);
  free(y);
  fx_free(&tc.x_T);
  fx_free(&tc.noise);
  fx_free(&tc.traj);
  ms_unet_free(u);
  ms_model_free(m);
  ms_diag_deinit(&d);
}

static void test_sample_ddim_eta_matches_torch(void **s) {
  (void)s;
  trajectory_case("unet_eps", "ddim_eta");
}
static void test_sample_ddpm_matches_torch(void **s) {
  (void)s;
  trajectory_case("unet_eps", "ddpm");
}
static void test_sample_dpmpp_matches_torch(void **s) {
  (void)s;
  trajectory_case("unet_eps", "dpmpp");
}
static void test_sample_ddim_guided_v_matches_torch(void **s) {
  (void)s;
  trajectory_case("unet_cond", "ddim_cfg");
}
static void test_sample_dpmpp_guided_v_matches_torch(void **s) {
  (void)s;
  trajectory_case("unet_cond", "dpmpp_cfg");
}
static void test_sample_ddpm_conditional_v_matches_torch(void **s) {
  (void)s;
  trajectory_case("unet_cond", "ddpm");
}

static void test_sample_timesteps_and_schedules(void **s) {
  (void)s;
  int ts[10];
  assert_int_equal(ms_schedule_timesteps(ts, 1000, 10), MS_OK);
  int want[10] = {999, 888, 777, 666, 555, 444, 333, 222, 111, 0};
  assert_memory_equal(ts, want, sizeof want);
  assert_int_equal(ms_schedule_timesteps(ts, 1000, 1), MS_OK);
  assert_int_equal(ts[0], 999);
  assert_int_equal(ms_schedule_timesteps(ts, 5, 6), MS_ERR_RANGE);
  /* Strictly decreasing for every S <= T. */
  int *big = malloc(100 * sizeof(int));
  for (int S = 2; S <= 100; S++) {
    assert_int_equal(ms_schedule_timesteps(big, 100, S), MS_OK);
    for (int i = 1; i < S; i++) assert_true(big[i] < big[i - 1]);
    assert_int_equal(big[S - 1], 0);
  }
  free(big);
  ms_schedule sc;
  ms_schedule_params lin = {MS_SCHEDULE_LINEAR, 1000, 1e-4, 2e-2};
  assert_int_equal(ms_schedule_init(&sc, &lin, NULL), MS_OK);
  /* alpha_bar_0 = 1 - beta_start; alpha_bar_999 of the DDPM schedule is
   * 4.0358e-5 (numpy.cumprod of 1 - linspace(1e-4, 0.02, 1000)). */
  assert_true(fabs(sc.alphas_cumprod[0] - (1 - 1e-4)) < 1e-15);
  assert_true(fabs(sc.alphas_cumprod[999] / 4.0358e-5 - 1) < 1e-3);
  ms_schedule_deinit(&sc);
  ms_schedule_params cosp = {MS_SCHEDULE_COSINE, 1000, 0, 0};
  assert_int_equal(ms_schedule_init(&sc, &cosp, NULL), MS_OK);
  for (int t = 1; t < 1000; t++) assert_true(sc.alphas_cumprod[t] < sc.alphas_cumprod[t - 1]);
  assert_true(sc.alphas_cumprod[999] < 1e-4 && sc.alphas_cumprod[0] > 0.9999);
  ms_schedule_deinit(&sc);
}

static int has_error(const ms_diag *d, const char *where, const char *needle) {
  for (size_t i = 0; i < d->count; i++)
    if (d->entries[i].where && !strcmp(d->entries[i].where, where) &&
        strstr(d->entries[i].message, needle))
      return 1;
  return 0;
}

static void test_sample_rejects_bad_parameters(void **s) {
  (void)s;
  ms_denoiser unc = {.fn = ms_unet_denoise, .prediction = MS_PRED_EPS, .num_classes = 0,
                     .schedule = {MS_SCHEDULE_LINEAR, 100, 1e-4, 2e-2}, .item_floats = 16};
  ms_denoiser cond = unc;
  cond.num_classes = 3;
  ms_sample_params p;
  ms_sample_params_init(&p);
  ms_diag d;
  ms_diag_init(&d);
  p.steps = 101;
  p.guidance = 2.0;
  assert_int_not_equal(ms_sample_check(&p, &unc, NULL, 1, &d), MS_OK);
  /* Both problems are reported in one run. */
  assert_true(has_error(&d, "steps", "T = 100"));
  assert_true(has_error(&d, "guidance", "unconditional"));
  ms_diag_clear(&d);
  ms_sample_params_init(&p);
  int32_t y[2] = {1, 3};
  assert_int_equal(ms_sample_check(&p, &cond, y, 2, &d), MS_ERR_RANGE);
  assert_true(has_error(&d, "class", "class 3 out of range"));
  ms_diag_clear(&d);
  assert_int_not_equal(ms_sample_check(&p, &cond, y, 0, &d), MS_OK);
  assert_int_not_equal(ms_sample_check(&p, &unc, y, 1, &d), MS_OK);
  assert_true(has_error(&d, "class", "unconditional"));
  ms_diag_clear(&d);
  p.eta = 0.5;
  p.sampler = MS_SAMPLER_DPMPP_2M;
  assert_int_not_equal(ms_sample_check(&p, &unc, NULL, 1, &d), MS_OK);
  assert_true(has_error(&d, "eta", "ddim"));
  ms_diag_clear(&d);
  ms_sample_params_init(&p);
  assert_int_equal(ms_sample_check(&p, &unc, NULL, 1, &d), MS_OK);
  assert_int_equal(ms_sample_steps(&p, &unc), 50);
  p.sampler = MS_SAMPLER_DDPM;
  assert_int_equal(ms_sample_steps(&p, &unc), 100);
  assert_int_equal(ms_sampler_from_name("dpmpp"), MS_SAMPLER_DPMPP_2M);
  assert_int_equal(ms_sampler_from_name("euler"), MS_SAMPLER_COUNT);
  ms_diag_deinit(&d);
}

/* Image i is the same bytes alone, in a batch, and with 1 or 2 threads. */
static void test_sample_image_independent_of_batch_and_threads(void **s) {
  (void)s;
  ms_model *m = load(gp("unet_eps.h5"));
  ms_diag d;
  ms_diag_init(&d);
  ms_unet *u;
  assert_int_equal(ms_unet_new(&u, m, 4, &d), MS_OK);
  ms_denoiser dn = make_denoiser(m, u);
  ms_sample_params p;
  ms_sample_params_init(&p);
  p.sampler = MS_SAMPLER_DDIM;
  p.steps = 4;
  p.eta = 0.7;
  p.seed = 20240611;
  size_t item = dn.item_floats;
  float *a = malloc(4 * item * 4), *b = malloc(4 * item * 4), *c = malloc(4 * item * 4);
  int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  assert_int_equal(ms_sample(&p, &dn, a, 10, NULL, 4, &d), MS_OK); /* images 10..13 */
  for (int i = 0; i < 4; i++)
    assert_int_equal(ms_sample(&p, &dn, b + i * item, 10 + (uint64_t)i, NULL, 1, &d), MS_OK);
  omp_set_num_threads(2);
  assert_int_equal(ms_sample(&p, &dn, c, 10, NULL, 4, &d), MS_OK);
  omp_set_num_threads(saved);
  assert_memory_equal(a, b, 4 * item * sizeof(float));
  assert_memory_equal(a, c, 4 * item * sizeof(float));
  assert_true(memcmp(a, a + item, item * sizeof(float)) != 0);
  /* Another seed gives other images. */
  p.seed++;
  assert_int_equal(ms_sample(&p, &dn, b, 10, NULL, 4, &d), MS_OK);
  assert_true(memcmp(a, b, item * sizeof(float)) != 0);
  free(a);
  free(b);
  free(c);
  ms_unet_free(u);
  ms_model_free(m);
  ms_diag_deinit(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sample_ddim_eta_matches_torch),
      cmocka_unit_test(test_sample_ddpm_matches_torch),
      cmocka_unit_test(test_sample_dpmpp_matches_torch),
      cmocka_unit_test(test_sample_ddim_guided_v_matches_torch),
      cmocka_unit_test(test_sample_dpmpp_guided_v_matches_torch),
      cmocka_unit_test(test_sample_ddpm_conditional_v_matches_torch),
      cmocka_unit_test(test_sample_timesteps_and_schedules),
      cmocka_unit_test(test_sample_rejects_bad_parameters),
      cmocka_unit_test(test_sample_image_independent_of_batch_and_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
