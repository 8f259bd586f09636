/* Tests of the acquisition physics (gen/phantom/ct_physics.c, mr_physics.c).
 * ctest-labels: unit
 *
 * CT: the projection of a uniform disc equals its analytic chord lengths;
 * FBP of noise-free projections of an ellipse phantom reproduces the mu map
 * within the errors documented in docs/physics.md; the keyed Poisson draw
 * has the right mean and variance; the variance of the noisy log sinogram
 * is 1 / (I0 exp(-p)) within a tolerance from the chi-square spread of a
 * sample variance; a lower dose gives a noisier reconstruction whose noise
 * power spectrum is far from white (little low-frequency power); bytes do
 * not depend on the thread count. MR: the centred DFT of a shifted delta is
 * the analytic plane wave; noise-free, fully sampled RSS equals the
 * magnitude; masks sample exactly round(W / R) columns including the
 * centre; bad parameters are refused with located messages. */
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "medsynth/phantom.h"
#include "medsynth/physics.h"
#include "medsynth/rng.h"

/* Ellipses (cx, cy, ax, ay, angle, value) in mm, painted in order
 * (value replaces), area-averaged over 4 x 4 sub-samples per pixel. */
typedef struct {
  double cx, cy, ax, ay, ang, v;
} ellipse;

static void paint(float *img, int N, double px, const ellipse *e, int ne) {
  for (int j = 0; j < N; j++)
    for (int i = 0; i < N; i++) {
      double acc = 0;
      for (int sj = 0; sj < 4; sj++)
        for (int si = 0; si < 4; si++) {
          double x = (i - (N - 1) / 2.0 + (si + 0.5) / 4 - 0.5) * px;
          double y = (j - (N - 1) / 2.0 + (sj + 0.5) / 4 - 0.5) * px;
          double v = 0;
          for (int k = 0; k < ne; k++) {
            double c = cos(e[k].ang), s = sin(e[k].ang);
            double u = ((x - e[k].cx) * c + (y - e[k].cy) * s) / e[k].ax;
            double w = (-(x - e[k].cx) * s + (y - e[k].cy) * c) / e[k].ay;
            if (u * u + w * w <= 1) v = e[k].v;
          }
          acc += v;
        }
      img[(size_t)j * N + i] = (float)(acc / 16);
    }
}

/* Every name in where[0..n) locates one of d's entries. */
static void assert_diag_names(const ms_diag *d, const char *const *where, size_t n) {
  for (size_t w = 0; w < n; w++) {
    int found = 0;
    for (size_t i = 0; i < d->count; i++)
      if (d->entries[i].where && !strcmp(d->entries[i].where, where[w])) found = 1;
    assert_true(found);
  }
}

static ms_ct_system *ct_new(int N, double px, ms_ct_geometry g, ms_fbp_filter f) {
  ms_ct_params c;
  ms_ct_params_init(&c, N, N, px);
  c.geometry = g;
  c.filter = f;
  ms_ct_system *s = NULL;
  assert_int_equal(ms_ct_system_new(&s, &c, NULL), MS_OK);
  return s;
}

static void test_physics_disc_projection_matches_chord(void **state) {
  (void)state;
  int N = 128;
  double px = 1, r = 40, mu0 = 0.02;
  ellipse e = {0, 0, r, r, 0, mu0};
  float *img = malloc((size_t)N * N * sizeof(float));
  paint(img, N, px, &e, 1);
  for (int g = 0; g < MS_CT_GEOMETRY_COUNT; g++) {
    ms_ct_system *s = ct_new(N, px, (ms_ct_geometry)g, MS_FBP_RAMP);
    const ms_ct_params *c = ms_ct_system_params(s);
    float *sino = malloc(ms_ct_sinogram_len(s) * sizeof(float));
    ms_ct_project(s, sino, img);
    int D = c->detectors;
    double worst = 0;
    for (int k = 0; k < c->views; k++)
      for (int b = 0; b < D; b++) {
        double u = (b - (D - 1) / 2.0) * c->detector_mm, sp = u;
        if (g == MS_CT_FAN) sp = u * c->sod_mm / sqrt(u * u + c->sod_mm * c->sod_mm);
        double chord = fabs(sp) < r ? 2 * sqrt(r * r - sp * sp) * mu0 : 0;
        /* Away from the tangent rays, where the chord's slope is unbounded. */
        if (fabs(fabs(sp) - r) < 2 * px) continue;
        /* Allowed: a quarter pixel of path at each of the two edges the ray
         * crosses, plus the chord's change over a quarter pixel of ray
         * position (steep near the edge). */
        double slope = fabs(sp) < r ? 0.5 * 2 * fabs(sp) / sqrt(r * r - sp * sp) : 0;
        double err = fabs(sino[(size_t)k * D + b] - chord) / (1 + slope);
        if (err > worst) worst = err;
      }
    /* Documented (docs/physics.md). */
    print_message("%s: worst chord error %.3g mm x mu0 / (1 + |chord'|)\n", ms_ct_geometry_name((ms_ct_geometry)g), worst / mu0);
    assert_true(worst <= 0.5 * px * mu0);
    free(sino);
    ms_ct_system_free(s);
  }
  free(img);
}

/* A Shepp-Logan-like head in mu (1/mm): skull, brain, ventricles, small
 * lesions. */
static const ellipse k_head[] = {
    {0, 0, 69, 92, 0, 0.04},          {0, -1.8, 66.2, 87.4, 0, 0.0200},
    {22, 0, 11, 31, -0.314, 0.0190},  {-22, 0, 16, 41, 0.314, 0.0190},
    {0, 35, 21, 25, 0, 0.0205},       {0, 10, 4.6, 4.6, 0, 0.0210},
    {-8, -60.5, 4.6, 2.3, 0, 0.0210}, {6, -60.5, 2.3, 4.6, 0, 0.0210},
};

static double fbp_rmse(ms_ct_geometry g, ms_fbp_filter f, double *rel_out) {
  int N = 128;
  double px = 1.6;
  float *img = malloc((size_t)N * N * sizeof(float)), *rec = malloc((size_t)N * N * sizeof(float));
  paint(img, N, px, k_head, (int)(sizeof k_head / sizeof *k_head));
  ms_ct_system *s = ct_new(N, px, g, f);
  float *sino = malloc(ms_ct_sinogram_len(s) * sizeof(float));
  ms_ct_project(s, sino, img);
  assert_int_equal(ms_ct_fbp(s, rec, sino, NULL), MS_OK);
  /* Inside the brain (away from the skull edge's ringing). */
  double se = 0;
  size_t n = 0;
  for (int j = 0; j < N; j++)
    for (int i = 0; i < N; i++) {
      double x = (i - (N - 1) / 2.0) * px, y = (j - (N - 1) / 2.0) * px;
      if ((x / 60) * (x / 60) + (y / 80) * (y / 80) > 1) continue;
      double e = rec[(size_t)j * N + i] - img[(size_t)j * N + i];
      se += e * e;
      n++;
    }
  double rmse = sqrt(se / (double)n);
  *rel_out = rmse / MS_CT_MU_WATER;
  free(img);
  free(rec);
  free(sino);
  ms_ct_system_free(s);
  return rmse;
}

static void test_physics_fbp_reconstructs_phantom(void **state) {
  (void)state;
  /* Documented bound (docs/physics.md): RMSE inside the brain below 1 % of
   * mu_water (10 HU) for every filter and both geometries (measured
   * 0.35..0.42 % at 128 x 128, 360 / 720 views). */
  static const struct {
    ms_ct_geometry g;
    ms_fbp_filter f;
    double bound;
  } cases[] = {{MS_CT_PARALLEL, MS_FBP_RAMP, 0.01},
               {MS_CT_PARALLEL, MS_FBP_SHEPP_LOGAN, 0.01},
               {MS_CT_PARALLEL, MS_FBP_HANN, 0.01},
               {MS_CT_FAN, MS_FBP_RAMP, 0.01}};
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    double rel;
    fbp_rmse(cases[k].g, cases[k].f, &rel);
    print_message("%s %s: RMSE %.4f x mu_water\n", ms_ct_geometry_name(cases[k].g), ms_fbp_filter_name(cases[k].f),
                  rel);
    assert_true(rel <= cases[k].bound);
  }
}

/* Super-resolution input in CT: the same sinogram reconstructed on a grid
 * twice as coarse (same views and bins) approximates the 2 x 2 block mean
 * of the fine phantom: RMSE inside the brain below 1.5 % of mu_water. */
static void test_physics_fbp_on_coarser_grid(void **state) {
  (void)state;
  int N = 128, n2 = N / 2;
  double px = 1.6;
  float *img = malloc((size_t)N * N * sizeof(float)), *rec = malloc((size_t)n2 * n2 * sizeof(float));
  paint(img, N, px, k_head, (int)(sizeof k_head / sizeof *k_head));
  ms_ct_system *s = ct_new(N, px, MS_CT_PARALLEL, MS_FBP_RAMP);
  ms_ct_params cl = *ms_ct_system_params(s);
  cl.width = cl.height = n2;
  cl.pixel_mm = 2 * px;
  ms_ct_system *lo = NULL;
  assert_int_equal(ms_ct_system_new(&lo, &cl, NULL), MS_OK);
  assert_int_equal(ms_ct_sinogram_len(lo), ms_ct_sinogram_len(s));
  float *sino = malloc(ms_ct_sinogram_len(s) * sizeof(float));
  ms_ct_project(s, sino, img);
  assert_int_equal(ms_ct_fbp(lo, rec, sino, NULL), MS_OK);
  double se = 0;
  size_t n = 0;
  for (int j = 0; j < n2; j++)
    for (int i = 0; i < n2; i++) {
      double x = (i - (n2 - 1) / 2.0) * 2 * px, y = (j - (n2 - 1) / 2.0) * 2 * px;
      if ((x / 60) * (x / 60) + (y / 80) * (y / 80) > 1) continue;
      double m = 0.25 * (img[(size_t)(2 * j) * N + 2 * i] + img[(size_t)(2 * j) * N + 2 * i + 1] +
                         img[(size_t)(2 * j + 1) * N + 2 * i] + img[(size_t)(2 * j + 1) * N + 2 * i + 1]);
      se += (rec[(size_t)j * n2 + i] - m) * (rec[(size_t)j * n2 + i] - m);
      n++;
    }
  double rel = sqrt(se / (double)n) / MS_CT_MU_WATER;
  print_message("coarse-grid FBP: RMSE %.4f x mu_water\n", rel);
  assert_true(rel < 0.015);
  free(img);
  free(rec);
  free(sino);
  ms_ct_system_free(s);
  ms_ct_system_free(lo);
}

static void test_physics_poisson_moments(void **state) {
  (void)state;
  ms_rng_key key = ms_rng_key_make(7, ms_rng_stream("test/poisson"));
  const double lams[] = {0.5, 3, 9.5, 10.5, 40, 4096};
  const uint64_t n = 200000;
  for (size_t t = 0; t < sizeof lams / sizeof *lams; t++) {
    double lam = lams[t], s = 0, s2 = 0;
    for (uint64_t i = 0; i < n; i++) {
      double x = (double)ms_ct_poisson(key.k0, key.k1, t, i << 12, lam);
      s += x;
      s2 += x * x;
    }
    double mean = s / n, var = s2 / n - mean * mean;
    /* 5 standard errors of the mean; the sample variance's relative sd is
     * sqrt((2 + 1 / lambda) / n) (Poisson excess kurtosis 1 / lambda). */
    assert_true(fabs(mean - lam) <= 5 * sqrt(lam / n));
    assert_true(fabs(var / lam - 1) <= 5 * sqrt((2 + 1 / lam) / n));
  }
}

static void test_physics_log_noise_variance(void **state) {
  (void)state;
  ms_ct_params c;
  ms_ct_params_init(&c, 64, 64, 1);
  c.electronic_sd = 0;
  ms_ct_system *s = NULL;
  assert_int_equal(ms_ct_system_new(&s, &c, NULL), MS_OK);
  size_t n = ms_ct_sinogram_len(s);
  float *clean = malloc(n * sizeof(float)), *noisy = malloc(n * sizeof(float));
  const double p = 2, i0s[] = {4096, 1e5};
  for (int t = 0; t < 2; t++) {
    for (size_t r = 0; r < n; r++) clean[r] = (float)p;
    ms_ct_noise(s, noisy, clean, i0s[t], 3, ms_rng_stream("test/ct"), 0);
    double m = 0, v = 0;
    for (size_t r = 0; r < n; r++) m += noisy[r];
    m /= (double)n;
    for (size_t r = 0; r < n; r++) v += (noisy[r] - m) * (noisy[r] - m);
    v /= (double)(n - 1);
    double lam = i0s[t] * exp(-p), expect = 1 / lam;
    /* Relative sd of a sample variance sqrt(2 / (n - 1)), five of them, plus
     * the delta method's O(1/lambda) bias. */
    double tol = 5 * sqrt(2.0 / (double)(n - 1)) + 2 / lam;
    print_message("I0 %g: var %.4g expected %.4g (n %zu)\n", i0s[t], v, expect, n);
    assert_true(fabs(v / expect - 1) <= tol);
    assert_true(fabs(m - p) <= 5 * sqrt(expect / (double)n) + 1 / lam);
  }
  free(clean);
  free(noisy);
  ms_ct_system_free(s);
}

/* Noise power spectrum of FBP noise in a water disc: ramp-filtered noise
 * has NPS ~ |f| (Kak & Slaney ch. 5; Hanson, Med. Phys. 6(5), 1979), little
 * power at low frequencies, unlike white noise (flat). The radial NPS of
 * (two noisy reconstructions' difference) / sqrt(2) over a 64 x 64 central
 * ROI, averaged over 4 pairs: the power density below 0.05 cycles/pixel
 * must be under 0.4 x that of 0.15..0.35 cycles/pixel, where the NPS peaks
 * (white noise: 1; measured about 0.2). NPS_PROFILE=1 prints the radial
 * profile. */
static void test_physics_fbp_noise_spectrum_is_not_white(void **state) {
  (void)state;
  int N = 128, R = 64;
  double px = 1.5;
  ms_ct_params c;
  ms_ct_params_init(&c, N, N, px);
  c.electronic_sd = 0;
  ms_ct_system *s = NULL;
  assert_int_equal(ms_ct_system_new(&s, &c, NULL), MS_OK);
  size_t n = (size_t)N * N, ns = ms_ct_sinogram_len(s);
  ellipse e = {0, 0, 0.45 * N * px, 0.45 * N * px, 0, MS_CT_MU_WATER};
  float *mu = malloc(n * sizeof(float)), *clean = malloc(ns * sizeof(float)), *noisy = malloc(ns * sizeof(float));
  float *r0 = malloc(n * sizeof(float)), *r1 = malloc(n * sizeof(float));
  double *re = calloc((size_t)R * R, sizeof(double)), *im = calloc((size_t)R * R, sizeof(double));
  double *tr = malloc((size_t)R * R * sizeof(double)), *ti = malloc((size_t)R * R * sizeof(double));
  double *nps = calloc((size_t)R * R, sizeof(double));
  paint(mu, N, px, &e, 1);
  ms_ct_project(s, clean, mu);
  for (int pair = 0; pair < 4; pair++) {
    ms_ct_noise(s, noisy, clean, 1e4, 21, ms_rng_stream("test/nps"), (uint64_t)(2 * pair));
    assert_int_equal(ms_ct_fbp(s, r0, noisy, NULL), MS_OK);
    ms_ct_noise(s, noisy, clean, 1e4, 21, ms_rng_stream("test/nps"), (uint64_t)(2 * pair + 1));
    assert_int_equal(ms_ct_fbp(s, r1, noisy, NULL), MS_OK);
    for (int j = 0; j < R; j++)
      for (int i = 0; i < R; i++) {
        size_t p = (size_t)(j + (N - R) / 2) * N + (size_t)(i + (N - R) / 2);
        re[(size_t)j * R + i] = (r0[p] - r1[p]) / sqrt(2.0);
        im[(size_t)j * R + i] = 0;
      }
    /* Separable DFT: rows, then columns. */
    for (int pass = 0; pass < 2; pass++) {
      for (int a = 0; a < R; a++)
        for (int k = 0; k < R; k++) {
          double sr = 0, si = 0;
          for (int t = 0; t < R; t++) {
            size_t q = pass ? (size_t)t * R + a : (size_t)a * R + t;
            double ang = -2 * M_PI * (double)k * t / R, cr = cos(ang), ci = sin(ang);
            sr += re[q] * cr - im[q] * ci;
            si += re[q] * ci + im[q] * cr;
          }
          size_t o = pass ? (size_t)k * R + a : (size_t)a * R + k;
          tr[o] = sr;
          ti[o] = si;
        }
      memcpy(re, tr, (size_t)R * R * sizeof(double));
      memcpy(im, ti, (size_t)R * R * sizeof(double));
    }
    for (size_t q = 0; q < (size_t)R * R; q++) nps[q] += re[q] * re[q] + im[q] * im[q];
  }
  double lo = 0, hi = 0;
  int nlo = 0, nhi = 0;
  for (int v = 0; v < R; v++)
    for (int u = 0; u < R; u++) {
      double fu = (u < R / 2 ? u : u - R) / (double)R, fv = (v < R / 2 ? v : v - R) / (double)R;
      double f = sqrt(fu * fu + fv * fv);
      if (f < 0.05) lo += nps[(size_t)v * R + u], nlo++;
      if (f >= 0.15 && f < 0.35) hi += nps[(size_t)v * R + u], nhi++;
    }
  if (getenv("NPS_PROFILE")) {
    for (int b = 0; b < 14; b++) {
      double acc = 0;
      int cnt = 0;
      for (int v = 0; v < R; v++)
        for (int u = 0; u < R; u++) {
          double fu = (u < R / 2 ? u : u - R) / (double)R, fv = (v < R / 2 ? v : v - R) / (double)R;
          double f = sqrt(fu * fu + fv * fv);
          if (f >= 0.05 * b && f < 0.05 * (b + 1)) acc += nps[(size_t)v * R + u], cnt++;
        }
      print_message("f %.2f-%.2f: %.4g\n", 0.05 * b, 0.05 * (b + 1), cnt ? acc / cnt : 0);
    }
  }
  double ratio = (lo / nlo) / (hi / nhi);
  print_message("NPS below 0.05 cycles/pixel / NPS at 0.15..0.35: %.3f (white noise: 1)\n", ratio);
  assert_true(ratio < 0.4);
  free(mu);
  free(clean);
  free(noisy);
  free(r0);
  free(r1);
  free(re);
  free(im);
  free(tr);
  free(ti);
  free(nps);
  ms_ct_system_free(s);
}

static void render_truth(float *hu, int N, ms_phantom_kind kind, ms_modality mod, uint64_t index) {
  ms_phantom_params p;
  ms_phantom_params_init(&p, kind);
  p.modality = mod;
  p.width = p.height = N;
  p.noise = 0;
  ms_phantom_image img;
  assert_int_equal(ms_phantom_image_init(&img, &p, NULL), MS_OK);
  assert_int_equal(ms_phantom_generate(&img, &p, NULL, 11, index, NULL), MS_OK);
  memcpy(hu, img.image, (size_t)N * N * sizeof(float));
  ms_phantom_image_deinit(&img);
}

static double rmse_body(const float *a, const float *truth, size_t n) {
  double se = 0;
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (truth[i] > -900) {
      se += (a[i] - truth[i]) * (a[i] - truth[i]);
      k++;
    }
  return sqrt(se / (double)k);
}

static void test_physics_low_dose_is_noisier_and_threads_agree(void **state) {
  (void)state;
  int N = 128;
  size_t n = (size_t)N * N;
  float *truth = malloc(n * sizeof(float));
  render_truth(truth, N, MS_PHANTOM_CHEST, MS_MODALITY_CT, 0);
  ms_ct_params c;
  ms_ct_params_init(&c, N, N, 440.0 / N);
  c.dose_mas = 10;
  c.electronic_sd = 0;
  ms_ct_system *s = NULL;
  assert_int_equal(ms_ct_system_new(&s, &c, NULL), MS_OK);
  size_t ns = ms_ct_sinogram_len(s);
  float *buf[2][3];
  for (int t = 0; t < 2; t++) {
    omp_set_num_threads(t + 1);
    buf[t][0] = malloc(ns * sizeof(float));
    buf[t][1] = malloc(n * sizeof(float));
    buf[t][2] = malloc(n * sizeof(float));
    assert_int_equal(ms_ct_acquire(s, buf[t][0], buf[t][1], buf[t][2], truth, 5, 0, NULL), MS_OK);
  }
  omp_set_num_threads(1);
  assert_memory_equal(buf[0][0], buf[1][0], ns * sizeof(float));
  assert_memory_equal(buf[0][1], buf[1][1], n * sizeof(float));
  assert_memory_equal(buf[0][2], buf[1][2], n * sizeof(float));
  /* Noise = reconstruction - the noise-free FBP of the same truth. */
  float *ref = malloc(n * sizeof(float)), *mu = malloc(n * sizeof(float)), *clean = malloc(ns * sizeof(float));
  ms_ct_hu_to_mu(&c, mu, truth, n);
  ms_ct_project(s, clean, mu);
  assert_int_equal(ms_ct_fbp(s, mu, clean, NULL), MS_OK);
  ms_ct_mu_to_hu(&c, ref, mu, n);
  double low = rmse_body(buf[0][1], ref, n), full = rmse_body(buf[0][2], ref, n);
  print_message("noise sd: low dose %.1f HU, full dose %.1f HU; to truth %.1f HU\n", low, full,
                rmse_body(buf[0][2], truth, n));
  /* Quantum noise variance scales as 1/dose: 10 vs 100 mAs gives 10x; the
   * 0.5-count floor of the log and the nonlinearity bend it a little. */
  double ratio = (low * low) / (full * full);
  assert_true(ratio > 8 && ratio < 12);
  free(ref);
  free(mu);
  free(clean);
  for (int t = 0; t < 2; t++)
    for (int k = 0; k < 3; k++) free(buf[t][k]);
  free(truth);
  ms_ct_system_free(s);
}

/* ms_ct_acquire with the AVX2 paths and with the generic code
 * (MS_PHYSICS_GENERIC=1): the same bits for the sinogram and both doses. */
static void simd_case(const float *hu, int W, int H, double bin_mm) {
  size_t n = (size_t)W * H, ns = 0;
  float *out[2][3];
  for (int g = 0; g < 2; g++) {
    setenv("MS_PHYSICS_GENERIC", g ? "1" : "0", 1);
    ms_ct_params c;
    ms_ct_params_init(&c, W, H, 2.1);
    c.views = 50;
    c.detector_mm = bin_mm;
    ms_ct_system *s = NULL;
    assert_int_equal(ms_ct_system_new(&s, &c, NULL), MS_OK);
    ns = ms_ct_sinogram_len(s);
    for (int k = 0; k < 3; k++) out[g][k] = malloc((k ? n : ns) * sizeof(float));
    assert_int_equal(ms_ct_acquire(s, out[g][0], out[g][1], out[g][2], hu, 3, 1, NULL), MS_OK);
    ms_ct_system_free(s);
  }
  unsetenv("MS_PHYSICS_GENERIC");
  for (int k = 0; k < 3; k++) assert_memory_equal(out[0][k], out[1][k], (k ? n : ns) * sizeof(float));
  for (int g = 0; g < 2; g++)
    for (int k = 0; k < 3; k++) free(out[g][k]);
}

/* The AVX2 projection and back-projection compute the same bits as the
 * generic code on an odd, non-square grid, with bins of the pixel size (the
 * permute paths), smaller (back-projection gathers) and larger (projection
 * gathers). */
static void test_physics_simd_paths_match_generic(void **state) {
  (void)state;
  int W = 97, H = 83;
  size_t n = (size_t)W * H;
  float *hu = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) {
    double x = (double)(i % W) / W - 0.5, y = (double)(i / W) / H - 0.5;
    hu[i] = x * x + y * y < 0.2 ? (float)(40 + 900 * (x * y > 0.01) - 700 * (x < -0.2)) : -1000.0f;
  }
  simd_case(hu, W, H, 0);
  simd_case(hu, W, H, 0.6 * 2.1);
  simd_case(hu, W, H, 2.5 * 2.1);
  free(hu);
}

/* A threshold baseline (HU > -400 inside a lung region, nodules included)
 * on the nodules: Dice of its segmentation against the exact mask,
 * averaged over 4 images of 3 nodules (6-14 mm) each, on the noise-free
 * truth and on the 25 mAs FBP image, with two lung regions. The lung field
 * (lung with its airways and vessels, what a lung segmentation gives): the
 * vessels and airway walls lie above the threshold, so the baseline is far
 * from the nodules for every nodule type. The parenchyma alone (an oracle
 * that knows where the vessels are): solid nodules are perfect on the
 * truth, just below 1 under the physics (noise, projection and
 * back-projection blur at the edges); mixed nodule types: ground-glass
 * nodules (-750..-500 HU) and the ground-glass rims of part-solid ones lie
 * below the threshold, so the baseline is far from perfect on the truth and
 * the FBP image alike. The figures are printed and documented
 * (docs/physics.md); fixed seed. */
static double nodule_dice(const float *hu, const uint8_t *mask, size_t n, int field) {
  size_t tp = 0, pp = 0, tt = 0;
  for (size_t i = 0; i < n; i++) {
    int l = mask[i];
    int lung = l == MS_LABEL_LUNG || l >= MS_LABEL_LESION_FIRST ||
               (field && (l == MS_LABEL_AIRWAY || l == MS_LABEL_AIRWAY_WALL || l == MS_LABEL_PULMONARY_ARTERY ||
                          l == MS_LABEL_PULMONARY_VEIN));
    int pred = lung && hu[i] > -400, truth = l >= MS_LABEL_LESION_FIRST;
    tp += (size_t)(pred && truth);
    pp += (size_t)pred;
    tt += (size_t)truth;
  }
  return 2.0 * (double)tp / (double)(pp + tt);
}

/* d[field][0]: truth, d[field][1]: 25 mAs FBP. */
static void threshold_dice(ms_nodule_kind kind, double d[2][2]) {
  int N = 256;
  size_t n = (size_t)N * N;
  ms_phantom_params p;
  ms_phantom_params_init(&p, MS_PHANTOM_CHEST);
  p.width = p.height = N;
  p.noise = 0;
  p.lesions.count_min = p.lesions.count_max = 3;
  p.lesions.diameter_min_mm = 6;
  p.lesions.diameter_max_mm = 14;
  p.lesions.nodule = kind;
  ms_ct_params c;
  ms_ct_params_init(&c, N, N, p.fov_mm / N);
  ms_ct_system *s = NULL;
  assert_int_equal(ms_ct_system_new(&s, &c, NULL), MS_OK);
  float *low = malloc(n * sizeof(float)), *full = malloc(n * sizeof(float));
  ms_phantom_image img;
  assert_int_equal(ms_phantom_image_init(&img, &p, NULL), MS_OK);
  int images = 4;
  memset(d, 0, 4 * sizeof(double));
  for (int i = 0; i < images; i++) {
    assert_int_equal(ms_phantom_generate(&img, &p, NULL, 21, (uint64_t)i, NULL), MS_OK);
    assert_int_equal(ms_ct_acquire(s, NULL, low, full, img.image, 21, (uint64_t)i, NULL), MS_OK);
    for (int f = 0; f < 2; f++) {
      d[f][0] += nodule_dice(img.image, img.mask, n, f) / images;
      d[f][1] += nodule_dice(low, img.mask, n, f) / images;
    }
  }
  print_message("threshold baseline (HU > -400), %s nodules, Dice: lung field truth %.3f, 25 mAs FBP %.3f; "
                "parenchyma only truth %.3f, 25 mAs FBP %.3f\n",
                ms_nodule_kind_name(kind), d[1][0], d[1][1], d[0][0], d[0][1]);
  ms_phantom_image_deinit(&img);
  free(low);
  free(full);
  ms_ct_system_free(s);
}

static void test_physics_threshold_baseline_misses_nodules(void **state) {
  (void)state;
  double d[2][2];
  threshold_dice(MS_NODULE_SOLID, d);
  assert_true(d[0][0] == 1.0);
  assert_true(d[0][1] < 0.995 && d[0][1] > 0.9);
  assert_true(d[1][0] < 0.4 && d[1][1] < 0.4);
  threshold_dice(MS_NODULE_MIXED, d);
  assert_true(d[0][0] < 0.85 && d[0][1] < 0.85);
  assert_true(d[0][1] > 0.2);
  assert_true(d[1][0] < 0.4 && d[1][1] < 0.4);
}

/* Beam hardening (two materials, water precorrection): a water disc with
 * two dense bone rods. Off (the default), the band between the rods
 * reconstructs as water; on, it shows the dark streak of beam hardening
 * between dense bones, while water away from the rods stays water (the
 * precorrection removes cupping). High dose, so noise is negligible. */
static double region_mean(const float *hu, int N, double px, double x0, double x1, double y0, double y1) {
  double sum = 0;
  int k = 0;
  for (int j = 0; j < N; j++)
    for (int i = 0; i < N; i++) {
      double x = (i - (N - 1) / 2.0) * px, y = (j - (N - 1) / 2.0) * px;
      if (x >= x0 && x <= x1 && y >= y0 && y <= y1) {
        sum += hu[(size_t)j * N + i];
        k++;
      }
    }
  return sum / k;
}

static void test_physics_beam_hardening_streaks_near_bone(void **state) {
  (void)state;
  int N = 128;
  double px = 1.6;
  size_t n = (size_t)N * N;
  float *hu = malloc(n * sizeof(float)), *low = malloc(n * sizeof(float)), *full = malloc(n * sizeof(float));
  for (int j = 0; j < N; j++)
    for (int i = 0; i < N; i++) {
      double x = (i - (N - 1) / 2.0) * px, y = (j - (N - 1) / 2.0) * px;
      double r1 = (x - 45) * (x - 45) + y * y, r2 = (x + 45) * (x + 45) + y * y;
      hu[(size_t)j * N + i] = r1 < 100 || r2 < 100 ? 1500.0f : (x * x + y * y < 90 * 90 ? 0.0f : -1000.0f);
    }
  double band[2], water[2];
  for (int bh = 0; bh < 2; bh++) {
    ms_ct_params c;
    ms_ct_params_init(&c, N, N, px);
    c.dose_mas = c.full_dose_mas = 1e5;
    c.electronic_sd = 0;
    c.filter = MS_FBP_HANN;
    c.beam_hardening = bh;
    ms_ct_system *s = NULL;
    assert_int_equal(ms_ct_system_new(&s, &c, NULL), MS_OK);
    assert_int_equal(ms_ct_acquire(s, NULL, low, full, hu, 1, 0, NULL), MS_OK);
    band[bh] = region_mean(full, N, px, -20, 20, -4, 4);
    water[bh] = region_mean(full, N, px, -15, 15, 45, 70);
    ms_ct_system_free(s);
  }
  print_message("beam hardening: between the rods %.1f HU (off %.1f), water away from them %.1f HU (off %.1f)\n",
                band[1], band[0], water[1], water[0]);
  assert_true(fabs(band[0]) < 5 && fabs(water[0]) < 5);
  assert_true(band[1] < band[0] - 8);
  assert_true(fabs(water[1]) < 10);
  free(hu);
  free(low);
  free(full);
}

static void test_physics_ct_rejects_bad_parameters(void **state) {
  (void)state;
  ms_ct_params c;
  ms_ct_params_init(&c, 64, 64, 1);
  c.dose_mas = 0;
  c.views = MS_CT_MAX_VIEWS + 1;
  c.geometry = MS_CT_FAN;
  c.sod_mm = 20;
  ms_diag d;
  ms_diag_init(&d);
  assert_int_equal(ms_ct_params_check(&c, &d), MS_ERR_INVALID);
  const char *where[] = {"views", "sod_mm", "dose"};
  assert_diag_names(&d, where, 3);
  ms_diag_deinit(&d);
}

/* ---- MR ----------------------------------------------------------------- */

static ms_mr_system *mr_new(int W, int H, int coils, double R, double cf, ms_mr_mask_kind k) {
  ms_mr_params m;
  ms_mr_params_init(&m, W, H, 1);
  m.coils = coils;
  m.acceleration = R;
  m.center_fraction = cf;
  m.mask = k;
  ms_mr_system *s = NULL;
  assert_int_equal(ms_mr_system_new(&s, &m, NULL), MS_OK);
  return s;
}

static void test_physics_mr_fft_of_delta_is_plane_wave(void **state) {
  (void)state;
  const int sizes[][2] = {{32, 32}, {30, 26}, {64, 34}};
  for (size_t t = 0; t < 3; t++) {
    int W = sizes[t][0], H = sizes[t][1];
    ms_mr_system *s = mr_new(W, H, 1, 1, 0.5, MS_MR_MASK_EQUISPACED);
    float *x = calloc((size_t)W * H * 2, sizeof(float));
    /* Delta at centred position (dx, dy) = (3, -2): K[ky][kx] =
     * exp(-2 pi i (kx' dx / W + ky' dy / H)) / sqrt(W H), k' centred. */
    int dx = 3, dy = -2;
    x[((size_t)(H / 2 + dy) * W + (W / 2 + dx)) * 2] = 1;
    assert_int_equal(ms_mr_fft2c(s, x, 0, NULL), MS_OK);
    double worst = 0;
    for (int ky = 0; ky < H; ky++)
      for (int kx = 0; kx < W; kx++) {
        double ph = -2 * M_PI * ((double)(kx - W / 2) * dx / W + (double)(ky - H / 2) * dy / H);
        double a = 1 / sqrt((double)W * H);
        const float *v = x + ((size_t)ky * W + kx) * 2;
        worst = fmax(worst, hypot(v[0] - a * cos(ph), v[1] - a * sin(ph)));
      }
    assert_true(worst < 1e-5);
    free(x);
    ms_mr_system_free(s);
  }
}

static void test_physics_mr_rss_equals_magnitude(void **state) {
  (void)state;
  int N = 64, C = 8;
  size_t n = (size_t)N * N;
  float *mag = malloc(n * sizeof(float));
  render_truth(mag, N, MS_PHANTOM_HEAD, MS_MODALITY_T2, 1);
  ms_mr_system *s = mr_new(N, N, C, 4, 0.08, MS_MR_MASK_RANDOM);
  /* sum_c |S_c|^2 = 1. */
  const float *S = ms_mr_system_maps(s);
  for (size_t p = 0; p < n; p++) {
    double sum = 0;
    for (int c = 0; c < C; c++) sum += S[(c * n + p) * 2] * S[(c * n + p) * 2] + S[(c * n + p) * 2 + 1] * S[(c * n + p) * 2 + 1];
    assert_true(fabs(sum - 1) < 1e-5);
  }
  ms_mr_output o = {malloc(C * n * 2 * sizeof(float)), malloc((size_t)N), malloc(n * sizeof(float)),
                    malloc(n * sizeof(float)), NULL};
  assert_int_equal(ms_mr_acquire(s, &o, mag, 9, 3, NULL), MS_OK);
  double mx = 0, worst = 0, zf_err = 0;
  for (size_t p = 0; p < n; p++) mx = fmax(mx, mag[p]);
  for (size_t p = 0; p < n; p++) {
    worst = fmax(worst, fabs(o.rss[p] - mag[p]));
    zf_err = fmax(zf_err, fabs(o.zf[p] - mag[p]));
  }
  assert_true(worst <= 1e-4 * mx);
  assert_true(zf_err > 0.01 * mx); /* undersampling aliases */
  free(o.kspace);
  free(o.mask);
  free(o.rss);
  free(o.zf);
  free(mag);
  ms_mr_system_free(s);
}

/* The acquisition's k-space is fft2c of each coil image, and its
 * zero-filled reconstruction is the RSS of fft2c's inverse of each coil's
 * masked k-space (computed here by ms_mr_fft2c, whose transform the
 * plane-wave test checks): the row-only zero-filled path and the
 * transposing column pass give what the definitions give. A non-square size
 * with (-1)^(H/2 + W/2) = -1 and sides that are not multiples of the
 * transpose tiles. */
static void test_physics_mr_kspace_and_zero_filled_match_definition(void **state) {
  (void)state;
  int W = 48, H = 42, C = 3;
  size_t n = (size_t)W * H;
  ms_mr_params m;
  ms_mr_params_init(&m, W, H, 1);
  m.coils = C;
  m.acceleration = 3;
  m.center_fraction = 0.1;
  m.mask = MS_MR_MASK_RANDOM;
  m.phase_amp = 0; /* the coil image is then S_c x magnitude */
  ms_mr_system *s = NULL;
  assert_int_equal(ms_mr_system_new(&s, &m, NULL), MS_OK);
  float *mag = malloc(n * sizeof(float));
  for (int j = 0; j < H; j++)
    for (int i = 0; i < W; i++) {
      double x = (i - 22.0) / 17, y = (j - 20.0) / 14;
      mag[(size_t)j * W + i] = (float)(x * x + y * y < 1 ? 50 + 30 * x + 10 * y * y : 0);
    }
  ms_mr_output o = {malloc(C * n * 2 * sizeof(float)), malloc((size_t)W), malloc(n * sizeof(float)),
                    malloc(n * sizeof(float)), NULL};
  assert_int_equal(ms_mr_acquire(s, &o, mag, 4, 7, NULL), MS_OK);
  const float *S = ms_mr_system_maps(s);
  float *x = malloc(n * 2 * sizeof(float));
  double *zf = calloc(n, sizeof(double));
  double kmax = 0, kerr = 0, zmax = 0, zerr = 0;
  for (int c = 0; c < C; c++) {
    for (size_t p = 0; p < n; p++) {
      x[2 * p] = S[(c * n + p) * 2] * mag[p];
      x[2 * p + 1] = S[(c * n + p) * 2 + 1] * mag[p];
    }
    assert_int_equal(ms_mr_fft2c(s, x, 0, NULL), MS_OK);
    const float *k = o.kspace + c * n * 2;
    for (size_t q = 0; q < 2 * n; q++) {
      kmax = fmax(kmax, fabs(x[q]));
      kerr = fmax(kerr, fabs(k[q] - x[q]));
    }
    for (size_t p = 0; p < n; p++) {
      int keep = o.mask[p % W];
      x[2 * p] = keep ? k[2 * p] : 0;
      x[2 * p + 1] = keep ? k[2 * p + 1] : 0;
    }
    assert_int_equal(ms_mr_fft2c(s, x, 1, NULL), MS_OK);
    for (size_t p = 0; p < n; p++) zf[p] += (double)x[2 * p] * x[2 * p] + (double)x[2 * p + 1] * x[2 * p + 1];
  }
  for (size_t p = 0; p < n; p++) {
    zmax = fmax(zmax, sqrt(zf[p]));
    zerr = fmax(zerr, fabs(o.zf[p] - sqrt(zf[p])));
  }
  print_message("k-space worst %.3g of %.3g, zero-filled worst %.3g of %.3g\n", kerr, kmax, zerr, zmax);
  assert_true(kmax > 0 && kerr < 1e-5 * kmax);
  assert_true(zmax > 0 && zerr < 1e-5 * zmax);
  free(x);
  free(zf);
  free(o.kspace);
  free(o.mask);
  free(o.rss);
  free(o.zf);
  free(mag);
  ms_mr_system_free(s);
}

/* The noise as documented: k-space with noise_sd sigma minus the k-space of
 * the same row without noise (the phase and mask streams do not depend on
 * the noise) has mean 0 and variance sigma^2 per real and imaginary part,
 * uncorrelated between the two parts, between coils and between rows,
 * within 5 standard errors of the n values. */
static void test_physics_mr_kspace_noise_has_documented_sd(void **state) {
  (void)state;
  int N = 64, C = 4;
  size_t n = (size_t)N * N, nk = C * n * 2;
  float *mag = malloc(n * sizeof(float));
  render_truth(mag, N, MS_PHANTOM_HEAD, MS_MODALITY_T2, 2);
  ms_mr_params m;
  ms_mr_params_init(&m, N, N, 1);
  m.coils = C;
  ms_mr_system *clean = NULL, *noisy = NULL;
  assert_int_equal(ms_mr_system_new(&clean, &m, NULL), MS_OK);
  double sigma = 3.5;
  m.noise_sd = sigma;
  assert_int_equal(ms_mr_system_new(&noisy, &m, NULL), MS_OK);
  float *k[4]; /* rows 8 and 9, each without and with noise */
  float *rec = malloc(2 * n * sizeof(float));
  uint8_t mk[64];
  for (int t = 0; t < 4; t++) {
    k[t] = malloc(nk * sizeof(float));
    ms_mr_output o = {k[t], mk, rec, rec + n, NULL};
    assert_int_equal(ms_mr_acquire(t & 1 ? noisy : clean, &o, mag, 5, 8 + (uint64_t)(t / 2), NULL), MS_OK);
  }
  double s = 0, s2 = 0, ri = 0, cc = 0, other = 0;
  for (size_t q = 0; q < nk; q += 2) {
    double dr = (double)k[1][q] - k[0][q], di = (double)k[1][q + 1] - k[0][q + 1];
    s += dr + di;
    s2 += dr * dr + di * di;
    ri += dr * di;
    if (q < (C - 1) * n * 2) cc += dr * ((double)k[1][q + 2 * n] - k[0][q + 2 * n]);
    other += dr * ((double)k[3][q] - k[2][q]);
  }
  double cnt = (double)nk, var = s2 / cnt, s4 = sigma * sigma;
  print_message("k-space noise sd %.4f (set %.4f)\n", sqrt(var), sigma);
  assert_true(fabs(s / cnt) < 5 * sigma / sqrt(cnt));
  assert_true(fabs(var - s4) < 5 * s4 * sqrt(2.0 / cnt));
  assert_true(fabs(ri / (cnt / 2)) < 5 * s4 / sqrt(cnt / 2));
  assert_true(fabs(cc / ((C - 1) * n)) < 5 * s4 / sqrt((double)(C - 1) * n));
  assert_true(fabs(other / (cnt / 2)) < 5 * s4 / sqrt(cnt / 2));
  for (int t = 0; t < 4; t++) free(k[t]);
  free(rec);
  free(mag);
  ms_mr_system_free(clean);
  ms_mr_system_free(noisy);
}

/* A row's MR acquisition is a pure function of (seed, row): rows 0..5
 * acquired in reverse order on one thread, and forward on two threads at
 * once (each thread its own buffers, the system shared), give the same
 * bytes. */
static void test_physics_mr_rows_independent_of_threads_and_order(void **state) {
  (void)state;
  enum { R = 6 };
  int N = 64, C = 4;
  size_t n = (size_t)N * N, per = C * n * 2 + 2 * n + (size_t)N;
  float *mag = malloc(n * sizeof(float));
  render_truth(mag, N, MS_PHANTOM_HEAD, MS_MODALITY_T2, 1);
  ms_mr_params m;
  ms_mr_params_init(&m, N, N, 1);
  m.coils = C;
  m.noise_sd = 2;
  m.mask = MS_MR_MASK_RANDOM;
  ms_mr_system *s = NULL;
  assert_int_equal(ms_mr_system_new(&s, &m, NULL), MS_OK);
  float *out[2];
  for (int t = 0; t < 2; t++) out[t] = calloc(R * per, sizeof(float));
  int bad = 0;
  for (int r = R - 1; r >= 0; r--) {
    float *b = out[0] + r * per;
    ms_mr_output o = {b, (uint8_t *)(b + C * n * 2 + 2 * n), b + C * n * 2, b + C * n * 2 + n, NULL};
    bad |= ms_mr_acquire(s, &o, mag, 77, (uint64_t)r, NULL) != MS_OK;
  }
#pragma omp parallel for num_threads(2) schedule(static, 1) reduction(| : bad)
  for (int r = 0; r < R; r++) {
    float *b = out[1] + r * per;
    ms_mr_output o = {b, (uint8_t *)(b + C * n * 2 + 2 * n), b + C * n * 2, b + C * n * 2 + n, NULL};
    bad |= ms_mr_acquire(s, &o, mag, 77, (uint64_t)r, NULL) != MS_OK;
  }
  assert_false(bad);
  assert_memory_equal(out[0], out[1], R * per * sizeof(float));
  /* Rows differ from one another (noise, phase and mask are keyed by row). */
  assert_true(memcmp(out[0], out[0] + per, C * n * 2 * sizeof(float)) != 0);
  for (int t = 0; t < 2; t++) free(out[t]);
  free(mag);
  ms_mr_system_free(s);
}

/* Super-resolution input: the centre (H/f x W/f) of k-space transformed at
 * that size samples a band-limited image at every f-th pixel (low-res pixel
 * (j, i) sits where high-res pixel (f j, f i) does: both grids are centred
 * on pixel H/2, W/2). A wide Gaussian blob is band-limited to 1e-4. */
static void test_physics_mr_lowres_samples_the_image(void **state) {
  (void)state;
  int N = 64, f = 2, n2 = N / f;
  ms_mr_params m;
  ms_mr_params_init(&m, N, N, 1);
  m.coils = 4;
  m.phase_amp = 0.5;
  m.lowres_factor = f;
  ms_mr_system *s = NULL;
  assert_int_equal(ms_mr_system_new(&s, &m, NULL), MS_OK);
  size_t n = (size_t)N * N;
  float *mag = malloc(n * sizeof(float));
  for (int j = 0; j < N; j++)
    for (int i = 0; i < N; i++)
      mag[(size_t)j * N + i] = (float)(100 * exp(-((i - 30) * (i - 30) + (j - 34) * (j - 34)) / (2.0 * 7 * 7)));
  ms_mr_output o = {malloc((size_t)m.coils * n * 2 * sizeof(float)), malloc((size_t)N), malloc(n * sizeof(float)),
                    malloc(n * sizeof(float)), malloc((size_t)n2 * n2 * sizeof(float))};
  assert_int_equal(ms_mr_acquire(s, &o, mag, 1, 0, NULL), MS_OK);
  double worst = 0;
  for (int j = 0; j < n2; j++)
    for (int i = 0; i < n2; i++) worst = fmax(worst, fabs(o.lowres[(size_t)j * n2 + i] - mag[(size_t)(f * j) * N + f * i]));
  print_message("low-res worst error %.3g of 100\n", worst);
  assert_true(worst < 0.05);
  /* A size the factor does not divide into an even one is refused. */
  m.lowres_factor = 3;
  ms_diag d;
  ms_diag_init(&d);
  assert_int_equal(ms_mr_params_check(&m, &d), MS_ERR_INVALID);
  const char *where[] = {"lowres"};
  assert_diag_names(&d, where, 1);
  ms_diag_deinit(&d);
  free(o.kspace);
  free(o.mask);
  free(o.rss);
  free(o.zf);
  free(o.lowres);
  free(mag);
  ms_mr_system_free(s);
}

static void test_physics_mr_masks_have_requested_acceleration(void **state) {
  (void)state;
  const struct {
    int W;
    double R, cf;
  } cases[] = {{256, 4, 0.08}, {320, 8, 0.04}, {368, 4, 0.08}, {64, 2, 0.16}, {30, 3, 0.1}};
  for (size_t t = 0; t < sizeof cases / sizeof *cases; t++) {
    for (int k = 0; k < MS_MR_MASK_COUNT; k++) {
      ms_mr_system *s = mr_new(cases[t].W, 16, 1, cases[t].R, cases[t].cf, (ms_mr_mask_kind)k);
      uint8_t *m0 = malloc((size_t)cases[t].W), *m1 = malloc((size_t)cases[t].W);
      int differ = 0;
      for (uint64_t i = 0; i < 20; i++) {
        ms_mr_mask(s, m0, 1, i);
        int lines = 0;
        for (int c = 0; c < cases[t].W; c++) lines += m0[c];
        assert_int_equal(lines, (int)lround(cases[t].W / cases[t].R));
        assert_int_equal(lines, ms_mr_mask_lines(s));
        int nc = (int)lround(cases[t].W * cases[t].cf), pad = (cases[t].W - nc + 1) / 2;
        for (int c = pad; c < pad + nc; c++) assert_int_equal(m0[c], 1);
        if (i && memcmp(m0, m1, (size_t)cases[t].W)) differ = 1;
        memcpy(m1, m0, (size_t)cases[t].W);
      }
      /* Random masks change with the image index. */
      if (k == MS_MR_MASK_RANDOM) assert_true(differ);
      free(m0);
      free(m1);
      ms_mr_system_free(s);
    }
  }
}

/* Partial Fourier: no column from round(W pf) on is sampled, the mask
 * samples round(W pf / R) columns with the centre, the zero-filled image
 * is the RSS of the coil images of exactly the sampled k-space, and
 * fractions outside (0.5, 1] or cutting into the centre are refused. */
static void test_physics_mr_partial_fourier(void **state) {
  (void)state;
  const int W = 64, H = 32, C = 2;
  const double pfs[] = {0.75, 0.625, 1.0};
  for (size_t t = 0; t < 3; t++)
    for (int k = 0; k < MS_MR_MASK_COUNT; k++) {
      ms_mr_params m;
      ms_mr_params_init(&m, W, H, 1);
      m.coils = C;
      m.acceleration = 2;
      m.center_fraction = 0.125;
      m.mask = (ms_mr_mask_kind)k;
      m.partial_fourier = pfs[t];
      ms_mr_system *s = NULL;
      assert_int_equal(ms_mr_system_new(&s, &m, NULL), MS_OK);
      const int kept = (int)lround(W * pfs[t]), want = (int)lround(W * pfs[t] / 2);
      assert_int_equal(ms_mr_mask_lines(s), want);
      size_t n = (size_t)W * H;
      float *mag = malloc(n * sizeof(float)), *ks = malloc((size_t)C * n * 2 * sizeof(float)),
            *rss = malloc(n * sizeof(float)), *zf = malloc(n * sizeof(float)), *x = malloc(n * 2 * sizeof(float));
      uint8_t mask[64];
      for (size_t p = 0; p < n; p++) mag[p] = (float)(1 + (p % 7) * 0.25);
      for (uint64_t i = 0; i < 4; i++) {
        ms_mr_output o = {ks, mask, rss, zf, NULL};
        assert_int_equal(ms_mr_acquire(s, &o, mag, 3, i, NULL), MS_OK);
        int lines = 0;
        for (int c = 0; c < W; c++) lines += mask[c];
        assert_int_equal(lines, want);
        for (int c = kept; c < W; c++) assert_int_equal(mask[c], 0);
        for (int c = (W - 8 + 1) / 2; c < (W - 8 + 1) / 2 + 8; c++) assert_int_equal(mask[c], 1);
        /* zero-filled = RSS over coils of the inverse of the masked k-space */
        double worst = 0, peak = 0;
        float *acc = calloc(n, sizeof(float));
        for (int c = 0; c < C; c++) {
          memcpy(x, ks + (size_t)c * n * 2, n * 2 * sizeof(float));
          for (int j = 0; j < H; j++)
            for (int col = 0; col < W; col++)
              if (!mask[col]) x[2 * ((size_t)j * W + col)] = x[2 * ((size_t)j * W + col) + 1] = 0;
          assert_int_equal(ms_mr_fft2c(s, x, 1, NULL), MS_OK);
          for (size_t p = 0; p < n; p++) acc[p] += x[2 * p] * x[2 * p] + x[2 * p + 1] * x[2 * p + 1];
        }
        for (size_t p = 0; p < n; p++) {
          worst = fmax(worst, fabs(sqrt(acc[p]) - zf[p]));
          peak = fmax(peak, zf[p]);
        }
        assert_true(worst <= 1e-5 * peak);
        free(acc);
      }
      free(mag), free(ks), free(rss), free(zf), free(x);
      ms_mr_system_free(s);
    }
  ms_mr_params m;
  ms_mr_params_init(&m, W, H, 1);
  const double bad[] = {0.5, 0.3, 1.01, 0.51};
  for (size_t t = 0; t < 4; t++) {
    m.partial_fourier = bad[t];
    ms_diag d;
    ms_diag_init(&d);
    assert_int_equal(ms_mr_params_check(&m, &d), MS_ERR_INVALID);
    assert_string_equal(d.entries[0].where, "partial_fourier");
    ms_diag_deinit(&d);
  }
}

/* Per-row doses and undersampling (ms_ct_acquire_at, ms_mr_acquire_at)
 * give the bytes of a system made with those values, and refuse bad
 * values with the parameter named. */
static void test_physics_acquire_at_matches_a_system_made_for_it(void **state) {
  (void)state;
  int N = 64;
  size_t n = (size_t)N * N;
  float *truth = malloc(n * sizeof(float));
  render_truth(truth, N, MS_PHANTOM_CHEST, MS_MODALITY_CT, 3);
  ms_ct_params c;
  ms_ct_params_init(&c, N, N, 440.0 / N);
  c.views = 90;
  ms_ct_system *a = NULL, *b = NULL;
  assert_int_equal(ms_ct_system_new(&a, &c, NULL), MS_OK);
  c.dose_mas = 7;
  c.full_dose_mas = 70;
  assert_int_equal(ms_ct_system_new(&b, &c, NULL), MS_OK);
  size_t ns = ms_ct_sinogram_len(a);
  float *x[2][3];
  for (int t = 0; t < 2; t++)
    for (int k = 0; k < 3; k++) x[t][k] = malloc((k ? n : ns) * sizeof(float));
  assert_int_equal(ms_ct_acquire_at(a, x[0][0], x[0][1], x[0][2], truth, 7, 70, 9, 4, NULL), MS_OK);
  assert_int_equal(ms_ct_acquire(b, x[1][0], x[1][1], x[1][2], truth, 9, 4, NULL), MS_OK);
  for (int k = 0; k < 3; k++) assert_memory_equal(x[0][k], x[1][k], (k ? n : ns) * sizeof(float));
  ms_diag d;
  ms_diag_init(&d);
  assert_int_equal(ms_ct_acquire_at(a, x[0][0], x[0][1], x[0][2], truth, 0, -1, 9, 4, &d), MS_ERR_INVALID);
  const char *wct[] = {"dose", "full_dose"};
  assert_diag_names(&d, wct, 2);
  ms_diag_deinit(&d);
  for (int t = 0; t < 2; t++)
    for (int k = 0; k < 3; k++) free(x[t][k]);
  ms_ct_system_free(a);
  ms_ct_system_free(b);

  ms_mr_system *m4 = mr_new(N, N, 4, 4, 0.08, MS_MR_MASK_RANDOM), *m2 = mr_new(N, N, 4, 2, 0.1, MS_MR_MASK_RANDOM);
  float *k1 = malloc(4 * n * 2 * sizeof(float)), *k2 = malloc(4 * n * 2 * sizeof(float));
  float *r1 = malloc(2 * n * sizeof(float)), *r2 = malloc(2 * n * sizeof(float));
  uint8_t mk1[64], mk2[64];
  ms_mr_output o1 = {k1, mk1, r1, r1 + n, NULL}, o2 = {k2, mk2, r2, r2 + n, NULL};
  for (size_t i = 0; i < n; i++) truth[i] = (float)(i % 17);
  assert_int_equal(ms_mr_acquire_at(m4, &o1, truth, 2, 0.1, 9, 5, NULL), MS_OK);
  assert_int_equal(ms_mr_acquire(m2, &o2, truth, 9, 5, NULL), MS_OK);
  assert_memory_equal(k1, k2, 4 * n * 2 * sizeof(float));
  assert_memory_equal(r1, r2, 2 * n * sizeof(float));
  assert_memory_equal(mk1, mk2, sizeof mk1);
  ms_diag_init(&d);
  assert_int_equal(ms_mr_acquire_at(m4, &o1, truth, 0.5, 1, 9, 5, &d), MS_ERR_INVALID);
  const char *wmr[] = {"acceleration", "center_fraction"};
  assert_diag_names(&d, wmr, 2);
  ms_diag_deinit(&d);
  free(k1);
  free(k2);
  free(r1);
  free(r2);
  ms_mr_system_free(m4);
  ms_mr_system_free(m2);
  free(truth);
}

static void test_physics_mr_rejects_bad_parameters(void **state) {
  (void)state;
  ms_mr_params m;
  ms_mr_params_init(&m, 64, 64, 1);
  m.coils = 0;
  m.acceleration = 0.5;
  m.center_fraction = 1.5;
  ms_diag d;
  ms_diag_init(&d);
  assert_int_equal(ms_mr_params_check(&m, &d), MS_ERR_INVALID);
  const char *where[] = {"coils", "acceleration", "center_fraction"};
  assert_diag_names(&d, where, 3);
  ms_diag_deinit(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_physics_disc_projection_matches_chord),
      cmocka_unit_test(test_physics_fbp_reconstructs_phantom),
      cmocka_unit_test(test_physics_fbp_on_coarser_grid),
      cmocka_unit_test(test_physics_poisson_moments),
      cmocka_unit_test(test_physics_log_noise_variance),
      cmocka_unit_test(test_physics_low_dose_is_noisier_and_threads_agree),
      cmocka_unit_test(test_physics_fbp_noise_spectrum_is_not_white),
      cmocka_unit_test(test_physics_ct_rejects_bad_parameters),
      cmocka_unit_test(test_physics_simd_paths_match_generic),
      cmocka_unit_test(test_physics_threshold_baseline_misses_nodules),
      cmocka_unit_test(test_physics_beam_hardening_streaks_near_bone),
      cmocka_unit_test(test_physics_mr_fft_of_delta_is_plane_wave),
      cmocka_unit_test(test_physics_mr_rss_equals_magnitude),
      cmocka_unit_test(test_physics_mr_kspace_and_zero_filled_match_definition),
      cmocka_unit_test(test_physics_mr_kspace_noise_has_documented_sd),
      cmocka_unit_test(test_physics_mr_rows_independent_of_threads_and_order),
      cmocka_unit_test(test_physics_mr_lowres_samples_the_image),
      cmocka_unit_test(test_physics_mr_masks_have_requested_acceleration),
      cmocka_unit_test(test_physics_mr_partial_fourier),
      cmocka_unit_test(test_physics_mr_rejects_bad_parameters),
      cmocka_unit_test(test_physics_acquire_at_matches_a_system_made_for_it),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
