/* CT acquisition physics: HU -> attenuation, Joseph forward projection in
 * parallel- and fan-beam geometry, dose-dependent photon noise, filtered
 * back-projection through FFTW3 (medsynth/physics.h, docs/physics.md).
 *
 * Coordinates. Pixel (column i, row j) has its centre at x = (i - (W-1)/2)
 * * pixel_mm, y = (j - (H-1)/2) * pixel_mm. Parallel view k has angle
 * theta = pi k / views; its ray at detector offset s is the line
 * x cos(theta) + y sin(theta) = s, with s of bin b = (b - (D-1)/2) *
 * detector_mm. Fan view k has the source at sod (sin beta, -cos beta), beta
 * = 2 pi k / views, and bin b on a virtual flat detector through the
 * isocentre at u (cos beta, sin beta), u = (b - (D-1)/2) * detector_mm. The
 * fan ray through u is the parallel ray theta = beta - atan(u / sod), s = u
 * sod / sqrt(u^2 + sod^2); FBP rebins fan data to views / 2 parallel views
 * over 180 degrees by bilinear interpolation in (beta, u).
 *
 * FBP: q = p (*) h / detector_mm with the band-limited ramp h[0] = 1/4,
 * h[n odd] = -1 / (pi n)^2, h[n even] = 0 (Kak & Slaney eq. 61: no DC
 * offset, unlike a sampled |f|), times the window in frequency, by
 * zero-padded FFTs of length L = the power of two >= 2 D; then
 * f(x, y) = pi / K sum_k q_k(x cos theta_k + y sin theta_k), linear
 * interpolation in s.
 *
 * Invariants: every ray and every pixel is a fixed-order sum, so results do
 * not depend on the thread count; noise of ray r of image `index` uses only
 * blocks (index, r * 4096 + k) of its stream. */
#include <fftw3.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/names.h"
#include "core/diag.h"
#include "core/pool.h"
#include "medsynth/physics.h"
#include "medsynth/rng.h"
#include "phantom/physics_internal.h"

pthread_mutex_t ms__fftw_lock = PTHREAD_MUTEX_INITIALIZER;

struct ms_ct_system {
  ms_ct_params c;
  int kp;           /* parallel views after rebinning (= views for parallel) */
  int L;            /* FFT length */
  float *filter;    /* [L/2 + 1] real frequency response, scaled */
  float *cos_t, *sin_t; /* [kp] parallel view angles */
  float *rb_u;      /* fan: [D] detector index of the fan ray for parallel bin b (-1 = none) */
  float *rb_b;      /* fan: [D] view offset (in fan views) of parallel bin b */
  int avx2;         /* run the AVX2 paths (the same bits; MS_PHYSICS_GENERIC=1 turns them off) */
  fftwf_plan fwd, inv;
};

static const char *const k_geom[] = {"parallel", "fan"};
static const char *const k_filt[] = {"ramp", "shepp-logan", "hann"};

MS__NAME_FNS(ms_ct_geometry_name, ms_ct_geometry_from_name, ms_ct_geometry, k_geom, MS_CT_GEOMETRY_COUNT, "unknown")
MS__NAME_FNS(ms_fbp_filter_name, ms_fbp_filter_from_name, ms_fbp_filter, k_filt, MS_FBP_FILTER_COUNT, "unknown")

void ms_ct_params_init(ms_ct_params *c, int width, int height, double pixel_mm) {
  memset(c, 0, sizeof *c);
  c->width = width;
  c->height = height;
  c->pixel_mm = pixel_mm;
  c->geometry = MS_CT_PARALLEL;
  c->views = 0; /* 360 parallel, 720 fan */
  c->sod_mm = 570;
  c->filter = MS_FBP_RAMP;
  c->cutoff = 1;
  c->mu_water = MS_CT_MU_WATER;
  c->mu_air = MS_CT_MU_AIR;
  c->photons_per_mas = 2000;
  c->dose_mas = 25;
  c->full_dose_mas = 100;
  c->electronic_sd = 5;
}

static double half_diagonal(const ms_ct_params *c) {
  return 0.5 * c->pixel_mm * sqrt((double)c->width * c->width + (double)c->height * c->height);
}

ms_status ms_ct_params_check(const ms_ct_params *c, ms_diag *d) {
  ms_status st = MS_OK;
#define BAD(where, ...) (st = ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, where, __VA_ARGS__))
  if (c->width < 2 || c->height < 2 || c->width > 8192 || c->height > 8192) BAD("size", "CT images need 2..8192 pixels a side");
  if (!(c->pixel_mm > 0) || !isfinite(c->pixel_mm)) BAD("pixel_mm", "pixel spacing must be positive");
  if ((unsigned)c->geometry >= MS_CT_GEOMETRY_COUNT) BAD("geometry", "unknown geometry (parallel or fan)");
  if (c->views < 0 || c->views > MS_CT_MAX_VIEWS) BAD("views", "views must be 1..%d (0 = default)", MS_CT_MAX_VIEWS);
  else if (c->geometry == MS_CT_FAN && c->views % 2) BAD("views", "fan-beam views (over 360 degrees) must be even");
  else if (c->geometry == MS_CT_FAN && c->views != 0 && c->views < 4) BAD("views", "fan-beam needs at least 4 views");
  if (c->detectors < 0 || c->detectors > MS_CT_MAX_DETECTORS) BAD("detectors", "detectors must be 1..%d (0 = default)", MS_CT_MAX_DETECTORS);
  if (!(c->detector_mm >= 0) || !isfinite(c->detector_mm)) BAD("detector_mm", "detector spacing must be positive (0 = pixel spacing)");
  if (c->geometry == MS_CT_FAN && !(c->sod_mm > 1.05 * half_diagonal(c)))
    BAD("sod_mm", "the source (%g mm from the isocentre) must lie outside the field of view (half-diagonal %g mm)",
        c->sod_mm, half_diagonal(c));
  if ((unsigned)c->filter >= MS_FBP_FILTER_COUNT) BAD("filter", "unknown filter (ramp, shepp-logan or hann)");
  if (!(c->cutoff > 0 && c->cutoff <= 1)) BAD("cutoff", "filter cut-off must be in (0, 1]");
  if (!(c->mu_water > c->mu_air && c->mu_air >= 0 && isfinite(c->mu_water))) BAD("mu_water", "need mu_water > mu_air >= 0");
  if (!(c->photons_per_mas > 0) || !isfinite(c->photons_per_mas)) BAD("photons", "photons per mAs must be positive");
  if (!(c->dose_mas > 0) || !isfinite(c->dose_mas)) BAD("dose", "dose must be positive (mAs), got %g", c->dose_mas);
  if (!(c->full_dose_mas > 0) || !isfinite(c->full_dose_mas)) BAD("full_dose", "full dose must be positive (mAs), got %g", c->full_dose_mas);
  if (st == MS_OK && (c->photons_per_mas * c->dose_mas > 1e12 || c->photons_per_mas * c->full_dose_mas > 1e12))
    BAD("dose", "more than 1e12 photons per ray");
  if (!(c->electronic_sd >= 0) || !isfinite(c->electronic_sd)) BAD("electronic_noise", "electronic noise sd must be >= 0");
  if (c->beam_hardening != 0 && c->beam_hardening != 1) BAD("beam_hardening", "beam hardening is 0 (off) or 1 (on)");
#undef BAD
  return st;
}

const ms_ct_params *ms_ct_system_params(const ms_ct_system *s) { return &s->c; }
size_t ms_ct_sinogram_len(const ms_ct_system *s) { return (size_t)s->c.views * (size_t)s->c.detectors; }

void ms_ct_system_free(ms_ct_system *s) {
  if (!s) return;
  pthread_mutex_lock(&ms__fftw_lock);
  if (s->fwd) fftwf_destroy_plan(s->fwd);
  if (s->inv) fftwf_destroy_plan(s->inv);
  pthread_mutex_unlock(&ms__fftw_lock);
  free(s->filter);
  free(s->cos_t);
  free(s->sin_t);
  free(s->rb_u);
  free(s->rb_b);
  free(s);
}

static double window(ms_fbp_filter f, double freq, double fc) {
  if (freq > fc) return 0;
  switch (f) {
    case MS_FBP_SHEPP_LOGAN: {
      double x = M_PI * freq / (2 * fc);
      return x == 0 ? 1 : sin(x) / x;
    }
    case MS_FBP_HANN:
      return 0.5 * (1 + cos(M_PI * freq / fc));
    default:
      return 1;
  }
}

ms_status ms_ct_system_new(ms_ct_system **out, const ms_ct_params *cin, ms_diag *d) {
  *out = NULL;
  ms_status st = ms_ct_params_check(cin, d);
  if (st != MS_OK) return st;
  ms_ct_system *s = ms__calloc(1, sizeof *s);
  if (!s) return ms__diag_nomem(d, NULL, "ct", "the CT system");
  s->c = *cin;
  s->avx2 = ms__cpu_avx2();
  ms_ct_params *c = &s->c;
  if (c->detector_mm == 0) c->detector_mm = c->pixel_mm;
  if (c->views == 0) c->views = c->geometry == MS_CT_FAN ? 720 : 360;
  double R = half_diagonal(c);
  if (c->detectors == 0) {
    double umax = c->geometry == MS_CT_FAN ? R * c->sod_mm / sqrt(c->sod_mm * c->sod_mm - R * R) : R;
    double n = 2 * ceil(umax / c->detector_mm) + 3;
    if (n > MS_CT_MAX_DETECTORS) {
      ms_ct_system_free(s);
      return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, "detectors",
                         "covering the field of view needs %.0f detector bins (at most %d)", n, MS_CT_MAX_DETECTORS);
    }
    c->detectors = (int)n;
  }
  int D = c->detectors;
  s->kp = c->geometry == MS_CT_FAN ? c->views / 2 : c->views;
  int L = 64;
  while (L < 2 * D) L *= 2;
  s->L = L;
  size_t nf = (size_t)L / 2 + 1;
  float *pin = ms__fft_alloc((size_t)L * sizeof(float));
  fftwf_complex *pout = ms__fft_alloc(nf * sizeof(fftwf_complex));
  s->filter = ms__malloc(nf * sizeof(float));
  s->cos_t = ms__malloc((size_t)s->kp * sizeof(float));
  s->sin_t = ms__malloc((size_t)s->kp * sizeof(float));
  if (c->geometry == MS_CT_FAN) {
    s->rb_u = ms__malloc((size_t)D * sizeof(float));
    s->rb_b = ms__malloc((size_t)D * sizeof(float));
  }
  if (!pin || !pout || !s->filter || !s->cos_t || !s->sin_t || (c->geometry == MS_CT_FAN && (!s->rb_u || !s->rb_b))) {
    free(pin);
    free(pout);
    ms_ct_system_free(s);
    return ms__diag_nomem(d, NULL, "ct", "the CT system's tables");
  }
  for (int k = 0; k < s->kp; k++) {
    double th = M_PI * k / s->kp;
    s->cos_t[k] = (float)cos(th);
    s->sin_t[k] = (float)sin(th);
  }
  if (c->geometry == MS_CT_FAN) {
    double dbeta = 2 * M_PI / c->views;
    for (int b = 0; b < D; b++) {
      double sp = (b - (D - 1) / 2.0) * c->detector_mm;
      if (fabs(sp) >= c->sod_mm) {
        s->rb_u[b] = -1;
        s->rb_b[b] = 0;
        continue;
      }
      /* theta = beta - atan(u / sod) = beta + gamma' with gamma' = -asin(s / sod). */
      double g = -asin(sp / c->sod_mm);
      double u = sp * c->sod_mm / sqrt(c->sod_mm * c->sod_mm - sp * sp);
      s->rb_u[b] = (float)(u / c->detector_mm + (D - 1) / 2.0);
      s->rb_b[b] = (float)(-g / dbeta);
    }
  }
  /* Band-limited ramp, circularly placed, its (real) DFT, the window; scaled
   * by 1/L (unnormalised inverse), 1/detector_mm and pi/K (back-projection). */
  for (int n = 0; n < L; n++) {
    int m = n <= L / 2 ? n : L - n;
    pin[n] = m == 0 ? 0.25f : (m % 2 ? (float)(-1.0 / (M_PI * M_PI * (double)m * m)) : 0.0f);
  }
  pthread_mutex_lock(&ms__fftw_lock);
  s->fwd = fftwf_plan_dft_r2c_1d(L, pin, pout, FFTW_ESTIMATE);
  s->inv = fftwf_plan_dft_c2r_1d(L, pout, pin, FFTW_ESTIMATE);
  pthread_mutex_unlock(&ms__fftw_lock);
  if (!s->fwd || !s->inv) {
    free(pin);
    free(pout);
    ms_ct_system_free(s);
    return ms_diag_add(d, MS_ERR_INTERNAL, NULL, 0, 0, "ct", "FFTW could not plan a length-%d transform", L);
  }
  fftwf_execute_dft_r2c(s->fwd, pin, pout);
  double scale = M_PI / s->kp / L / c->detector_mm;
  for (size_t k = 0; k < nf; k++)
    s->filter[k] = (float)(pout[k][0] * scale * window(c->filter, (double)k / L, 0.5 * c->cutoff));
  free(pin);
  free(pout);
  *out = s;
  return MS_OK;
}

void ms_ct_hu_to_mu(const ms_ct_params *c, float *mu, const float *hu, size_t n) {
  double a = c->mu_water, b = (c->mu_water - c->mu_air) / 1000;
  for (size_t i = 0; i < n; i++) mu[i] = (float)(a + b * hu[i]);
}

void ms_ct_mu_to_hu(const ms_ct_params *c, float *hu, const float *mu, size_t n) {
  double a = c->mu_water, b = 1000 / (c->mu_water - c->mu_air);
  for (size_t i = 0; i < n; i++) hu[i] = (float)((mu[i] - a) * b);
}

/* ---- projection ------------------------------------------------------- */

/* Range of steps k in [0, n) where pos(k) = c0 + k dc lies strictly inside
 * (-1, m): the samples that touch the grid. */
static void step_range(double c0, double dc, int n, int m, int *k0, int *k1) {
  double lo = 0, hi = n - 1;
  if (dc == 0) {
    if (!(c0 > -1 && c0 < m)) lo = 1, hi = 0;
  } else {
    double a = (-1 - c0) / dc, b = (m - c0) / dc;
    if (a > b) {
      double t = a;
      a = b;
      b = t;
    }
    lo = fmax(lo, ceil(a));
    hi = fmin(hi, floor(b));
  }
  *k0 = (int)lo;
  *k1 = hi >= lo ? (int)hi + 1 : (int)lo;
}

/* Sum over steps k of the linear interpolation of line k (stride `ls`,
 * element stride `es`) at position c0 + k dc; zero outside [0, m). */
static double march(const float *img, size_t ls, size_t es, int n, int m, double c0, double dc) {
  int k0, k1;
  step_range(c0, dc, n, m, &k0, &k1);
  /* Positions in float from the first step on (|pos| < 8192: rounding below
   * 2^-11 pixel), sums in float per ray (at most 8192 terms). */
  float acc = 0, fc0 = (float)(c0 + k0 * dc), fdc = (float)dc;
  const float *line = img + (size_t)k0 * ls;
  for (int k = 0; k < k1 - k0; k++, line += ls) {
    float pos = fc0 + (float)k * fdc;
    int i0 = (int)(pos + 1.0f) - 1;
    float f = pos - (float)i0;
    if (i0 >= 0 && i0 + 1 < m) {
      float a = line[(size_t)i0 * es];
      acc += a + f * (line[(size_t)(i0 + 1) * es] - a);
    } else {
      /* The ends (float rounding may put pos on -1 or m itself). */
      if (i0 >= 0 && i0 < m) acc += (1 - f) * line[(size_t)i0 * es];
      if (i0 + 1 >= 0 && i0 + 1 < m) acc += f * line[(size_t)(i0 + 1) * es];
    }
  }
  return acc;
}

/* A ray p0 + t e (|e| = 1) in Joseph's terms: it marches along its major
 * axis (y_major: one step per row, interpolating along the row), starting
 * at position c0 (pixels) and moving dc per step; the line integral is the
 * march's sum times scale. */
typedef struct {
  int y_major;
  double c0, dc, px_over_e; /* scale = px / |e_major| */
} ray;

static ray ray_setup(int W, int H, double px, double p0x, double p0y, double ex, double ey) {
  double cx = (W - 1) / 2.0, cy = (H - 1) / 2.0;
  ray r;
  if (fabs(ey) >= fabs(ex)) {
    double y0 = -cy * px;
    r.y_major = 1;
    r.c0 = (p0x + (y0 - p0y) / ey * ex) / px + cx;
    r.dc = ex / ey;
    r.px_over_e = fabs(ey);
  } else {
    double x0 = -cx * px;
    r.y_major = 0;
    r.c0 = (p0y + (x0 - p0x) / ex * ey) / px + cy;
    r.dc = ey / ex;
    r.px_over_e = fabs(ex);
  }
  return r;
}

/* Joseph's line integral of the ray p0 + t e (|e| = 1) through img: march
 * along the ray's major axis, one linear interpolation per row (column). */
static float joseph(const float *img, int W, int H, double px, double p0x, double p0y, double ex, double ey) {
  ray r = ray_setup(W, H, px, p0x, p0y, ex, ey);
  double acc = r.y_major ? march(img, (size_t)W, 1, H, W, r.c0, r.dc) : march(img, 1, (size_t)W, W, H, r.c0, r.dc);
  return (float)(acc * px / r.px_over_e);
}

#if defined(__x86_64__) || defined(__i386__)
/* Eight parallel rays of one view (same direction, so the same major axis
 * and step) marched together: lane l is ray rs[l]. Every lane does the
 * scalar march's operations in the same order (its own first step and
 * counter, the same interior and end formulas; steps outside its range add
 * nothing), so the sums are the same bits as march's. */
__attribute__((target("avx2"))) static void march8_avx2(float *out, const float *img, const float *img_t, int W,
                                                       int H, double px, const ray *rs) {
  /* x-major rays march along the rows of the transposed image: the same
   * values, read along cache lines */
  int n = rs[0].y_major ? H : W, m = rs[0].y_major ? W : H;
  int ls = rs[0].y_major ? W : H, es = 1;
  if (!rs[0].y_major) img = img_t;
  int k0[8], k1[8], kmin = n, kmax = 0;
  float fc0[8];
  for (int l = 0; l < 8; l++) {
    step_range(rs[l].c0, rs[l].dc, n, m, &k0[l], &k1[l]);
    fc0[l] = (float)(rs[l].c0 + k0[l] * rs[l].dc);
    if (k1[l] > k0[l]) {
      kmin = k0[l] < kmin ? k0[l] : kmin;
      kmax = k1[l] > kmax ? k1[l] : kmax;
    }
  }
  const __m256i vk0 = _mm256_loadu_si256((const __m256i *)k0), vk1 = _mm256_loadu_si256((const __m256i *)k1);
  const __m256 vfc0 = _mm256_loadu_ps(fc0), vfdc = _mm256_set1_ps((float)rs[0].dc), one = _mm256_set1_ps(1.0f);
  const __m256i ione = _mm256_set1_epi32(1), izero = _mm256_setzero_si256(), mlast = _mm256_set1_epi32(m - 1);
  const __m256i mm2 = _mm256_set1_epi32(m - 2), ves = _mm256_set1_epi32(es), mone = _mm256_set1_epi32(-1);
  __m256 acc = _mm256_setzero_ps();
  for (int k = kmin; k < kmax; k++) {
    __m256i vk = _mm256_set1_epi32(k);
    __m256i valid = _mm256_andnot_si256(_mm256_cmpgt_epi32(vk0, vk), _mm256_cmpgt_epi32(vk1, vk));
    __m256 pos = _mm256_add_ps(vfc0, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(vk, vk0)), vfdc));
    __m256i i0 = _mm256_sub_epi32(_mm256_cvttps_epi32(_mm256_add_ps(pos, one)), ione);
    __m256 f = _mm256_sub_ps(pos, _mm256_cvtepi32_ps(i0));
    __m256i ic = _mm256_min_epi32(_mm256_max_epi32(i0, izero), mm2);
    /* ic is monotonic over the lanes (adjacent parallel rays lie 1 to 1.5
     * pixels apart); when the lanes lie within 15 entries, two loads of a
     * 16-entry window and permutes fetch them (the images have 16 readable
     * floats past their end, never selected); otherwise gathers. */
    int ca = _mm256_cvtsi256_si32(ic), cz = _mm256_extract_epi32(ic, 7), cb = ca < cz ? ca : cz;
    __m256 ga, gb;
    if (ca - cz <= 14 && cz - ca <= 14) {
      const float *w = img + (size_t)k * ls + cb;
      __m256i rel = _mm256_sub_epi32(ic, _mm256_set1_epi32(cb)), rel1 = _mm256_add_epi32(rel, ione);
      __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
      __m256 up_a = _mm256_castsi256_ps(_mm256_cmpgt_epi32(rel, _mm256_set1_epi32(7)));
      __m256 up_b = _mm256_castsi256_ps(_mm256_cmpgt_epi32(rel1, _mm256_set1_epi32(7)));
      ga = _mm256_blendv_ps(_mm256_permutevar8x32_ps(w0, rel), _mm256_permutevar8x32_ps(w1, rel), up_a);
      gb = _mm256_blendv_ps(_mm256_permutevar8x32_ps(w0, rel1), _mm256_permutevar8x32_ps(w1, rel1), up_b);
    } else {
      __m256i idx = _mm256_add_epi32(_mm256_set1_epi32(k * ls), _mm256_mullo_epi32(ic, ves));
      ga = _mm256_i32gather_ps(img, idx, 4);
      gb = _mm256_i32gather_ps(img + es, idx, 4);
    }
    __m256 inner = _mm256_add_ps(ga, _mm256_mul_ps(f, _mm256_sub_ps(gb, ga)));
    __m256 lo_end = _mm256_mul_ps(f, ga), hi_end = _mm256_mul_ps(_mm256_sub_ps(one, f), gb);
    __m256i is_in = _mm256_and_si256(_mm256_cmpgt_epi32(i0, mone), _mm256_cmpgt_epi32(mlast, i0));
    __m256i is_lo = _mm256_cmpeq_epi32(i0, mone), is_hi = _mm256_cmpeq_epi32(i0, mlast);
    __m256 t = _mm256_and_ps(_mm256_castsi256_ps(is_lo), lo_end);
    t = _mm256_blendv_ps(t, hi_end, _mm256_castsi256_ps(is_hi));
    t = _mm256_blendv_ps(t, inner, _mm256_castsi256_ps(is_in));
    acc = _mm256_add_ps(acc, _mm256_and_ps(t, _mm256_castsi256_ps(valid)));
  }
  float a[8];
  _mm256_storeu_ps(a, acc);
  for (int l = 0; l < 8; l++) out[l] = (float)((double)a[l] * px / rs[l].px_over_e);
}
#endif

typedef struct {
  const ms_ct_system *s;
  float *sino;
  const float *mu;
  const float *mu_t; /* the transpose [W][H] (AVX2 path), or NULL */
} proj_job;

static void project_views(void *ctx, size_t k0, size_t k1) {
  const proj_job *j = ctx;
  const ms_ct_params *c = &j->s->c;
  int D = c->detectors;
  for (size_t k = k0; k < k1; k++) {
    float *row = j->sino + k * (size_t)D;
    if (c->geometry == MS_CT_PARALLEL) {
      double th = M_PI * (double)k / c->views, ct = cos(th), st = sin(th);
      int b = 0;
#if defined(__x86_64__) || defined(__i386__)
      if (j->mu_t) {
        /* all rays of a parallel view share the major axis */
        for (; b + 8 <= D; b += 8) {
          ray rs[8];
          for (int l = 0; l < 8; l++) {
            double sp = (b + l - (D - 1) / 2.0) * c->detector_mm;
            rs[l] = ray_setup(c->width, c->height, c->pixel_mm, sp * ct, sp * st, -st, ct);
          }
          march8_avx2(row + b, j->mu, j->mu_t, c->width, c->height, c->pixel_mm, rs);
        }
      }
#endif
      for (; b < D; b++) {
        double sp = (b - (D - 1) / 2.0) * c->detector_mm;
        row[b] = joseph(j->mu, c->width, c->height, c->pixel_mm, sp * ct, sp * st, -st, ct);
      }
    } else {
      double be = 2 * M_PI * (double)k / c->views, cb = cos(be), sb = sin(be);
      double sx = c->sod_mm * sb, sy = -c->sod_mm * cb;
      for (int b = 0; b < D; b++) {
        double u = (b - (D - 1) / 2.0) * c->detector_mm;
        double ex = u * cb - sx, ey = u * sb - sy, n = sqrt(ex * ex + ey * ey);
        row[b] = joseph(j->mu, c->width, c->height, c->pixel_mm, sx, sy, ex / n, ey / n);
      }
    }
  }
}

void ms_ct_project(const ms_ct_system *s, float *sino, const float *mu) {
  int W = s->c.width, H = s->c.height;
  size_t n = (size_t)W * H;
  /* The AVX2 path reads copies with 16 spare floats (its loads run up to
   * 15 entries past a line's end) and the transpose; without memory for
   * them the generic path runs (same bits). */
  float *pad = s->avx2 && s->c.geometry == MS_CT_PARALLEL ? ms__calloc(2 * n + 16, sizeof(float)) : NULL;
  if (pad) {
    memcpy(pad, mu, n * sizeof(float));
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++) pad[n + (size_t)x * H + y] = mu[(size_t)y * W + x];
  }
  proj_job j = {s, sino, pad ? pad : mu, pad ? pad + n : NULL};
  ms__parallel_range((size_t)s->c.views, 4, project_views, &j);
  free(pad);
}

/* ---- beam hardening ----------------------------------------------------- */

/* A coarse 4-bin spectrum and the linear attenuation (1/mm) of water (1.0
 * g/cm^3) and ICRU cortical bone (1.92 g/cm^3) at its energies: NIST XCOM
 * mass attenuation coefficients, water 0.2269, 0.2059, 0.1837, 0.1707 and
 * cortical bone 0.4242, 0.3148, 0.2229, 0.1855 cm^2/g at 50, 60, 80 and 100
 * keV. The weights (0.25, 0.30, 0.30, 0.15) are illustrative, not a
 * measured tube spectrum. */
enum { BH_BINS = 4 };
static const double k_bh_w[BH_BINS] = {0.25, 0.30, 0.30, 0.15};
static const double k_bh_water[BH_BINS] = {0.02269, 0.02059, 0.01837, 0.01707};
static const double k_bh_bone[BH_BINS] = {0.4242 * 0.192, 0.3148 * 0.192, 0.2229 * 0.192, 0.1855 * 0.192};
/* HU of full-density cortical bone at 70 keV (mass attenuation 0.265
 * cm^2/g, log-interpolated between 60 and 80 keV). */
#define BH_BONE_HU 1640.0

/* -ln of the polychromatic transmission through lw mm of water and lb mm
 * of bone. */
static double bh_poly(double lw, double lb) {
  double t = 0;
  for (int e = 0; e < BH_BINS; e++) t += k_bh_w[e] * exp(-(k_bh_water[e] * lw + k_bh_bone[e] * lb));
  return -log(t);
}

/* Water precorrection, as scanners calibrate on water: the water length L
 * whose polychromatic log-attenuation is p (Newton from p / mean mu), then
 * mu_water(70 keV) x L. Water then reconstructs without cupping; bone keeps
 * its beam hardening (dark streaks between dense bones). */
static void bh_water_precorrect(float *p, size_t n, double mu_water) {
  for (size_t r = 0; r < n; r++) {
    double target = p[r], L = target / 0.0199;
    for (int it = 0; it < 8; it++) {
      double num = 0, den = 0;
      for (int e = 0; e < BH_BINS; e++) {
        double x = k_bh_w[e] * exp(-k_bh_water[e] * L);
        num += x * k_bh_water[e];
        den += x;
      }
      L -= (-log(den) - target) / (num / den);
    }
    p[r] = (float)(mu_water * L);
  }
}

/* ---- noise ------------------------------------------------------------ */

static inline double u01(uint32_t hi, uint32_t lo) {
  uint64_t x = ((uint64_t)hi << 32) | lo;
  return ((double)(x >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

uint64_t ms_ct_poisson(uint32_t key0, uint32_t key1, uint64_t index, uint64_t lane_base, double lam) {
  ms_rng_key key = {key0, key1};
  if (!(lam > 0)) return 0;
  if (lam < 10) {
    /* Inversion by multiplication: the count of uniforms whose running
     * product stays above exp(-lambda). Two uniforms per block. */
    double lim = exp(-lam), prod = 1;
    uint64_t k = 0;
    for (uint64_t blk = 0; blk < 4096; blk++) {
      ms_rng_block b = ms_rng_philox(key, index, lane_base + blk);
      prod *= u01(b.v[1], b.v[0]);
      if (prod <= lim) return k;
      k++;
      prod *= u01(b.v[3], b.v[2]);
      if (prod <= lim) return k;
      k++;
    }
    return k;
  }
  /* PTRS: Hormann, "The transformed rejection method for generating Poisson
   * random variables", Insurance: Math. Econ. 12(1), 1993. */
  double slam = sqrt(lam), loglam = log(lam);
  double b = 0.931 + 2.53 * slam, a = -0.059 + 0.02483 * b;
  double invalpha = 1.1239 + 1.1328 / (b - 3.4), vr = 0.9277 - 3.6224 / (b - 2);
  for (uint64_t blk = 0; blk < 4096; blk++) {
    ms_rng_block r = ms_rng_philox(key, index, lane_base + blk);
    double U = u01(r.v[1], r.v[0]) - 0.5, V = u01(r.v[3], r.v[2]);
    double us = 0.5 - fabs(U);
    double k = floor((2 * a / us + b) * U + lam + 0.43);
    if (us >= 0.07 && V <= vr) return (uint64_t)k;
    if (k < 0 || (us < 0.013 && V > us)) continue;
    if (log(V) + log(invalpha) - log(a / (us * us) + b) <= -lam + k * loglam - lgamma(k + 1)) return (uint64_t)k;
  }
  return (uint64_t)floor(lam + 0.5); /* unreachable in practice: acceptance ~ 0.9 per block */
}

typedef struct {
  const ms_ct_system *s;
  float *out;
  const float *clean;
  double i0;
  ms_rng_key kc, ke;
  uint64_t index;
} noise_job;

static void noise_views(void *ctx, size_t k0, size_t k1) {
  const noise_job *j = ctx;
  size_t D = (size_t)j->s->c.detectors;
  double sde = j->s->c.electronic_sd;
  for (size_t r = k0 * D; r < k1 * D; r++) {
    double lam = j->i0 * exp(-(double)j->clean[r]);
    double n = (double)ms_ct_poisson(j->kc.k0, j->kc.k1, j->index, (uint64_t)r << 12, lam);
    if (sde > 0) n += sde * ms_rng_normal(j->ke, j->index, r);
    j->out[r] = (float)-log(fmax(n, 0.5) / j->i0);
  }
}

void ms_ct_noise(const ms_ct_system *s, float *out, const float *clean, double i0, uint64_t seed, uint64_t stream,
                 uint64_t index) {
  noise_job j = {s, out, clean, i0, ms_rng_key_make(seed, stream),
                 ms_rng_key_make(seed, ms_rng_stream_sub(stream, 0x656c6563u /* "elec" */)), index};
  ms__parallel_range((size_t)s->c.views, 4, noise_views, &j);
}

/* ---- filtered back-projection ----------------------------------------- */

/* FBP of one or two sinograms at once (ms_ct_acquire's two doses share the
 * back-projection's index arithmetic; each image's sums are unchanged). */
typedef struct {
  const ms_ct_system *s;
  const float *sino; /* measured, views x D */
  float *q;          /* filtered parallel sinograms, [nq][kp][D] */
  const float *sinos[2];
  int nq;
  float *fin;        /* [workers][L] */
  fftwf_complex *fout; /* [workers][L/2+1] */
  size_t n_tasks;
} filt_job;

/* Parallel row k of the (rebinned) sinogram into q[k]. */
static void parallel_row(const filt_job *j, int k, float *dst) {
  const ms_ct_system *s = j->s;
  int D = s->c.detectors;
  if (s->c.geometry == MS_CT_PARALLEL) {
    memcpy(dst, j->sino + (size_t)k * D, (size_t)D * sizeof(float));
    return;
  }
  int V = s->c.views;
  for (int b = 0; b < D; b++) {
    double u = s->rb_u[b];
    if (u < 0 || u > D - 1) {
      dst[b] = 0;
      continue;
    }
    double bv = k + (double)s->rb_b[b];
    double fb = floor(bv), wb = bv - fb;
    int v0 = ((int)fb % V + V) % V, v1 = (v0 + 1) % V;
    double fu = floor(u), wu = u - fu;
    int u0 = (int)fu, u1 = u0 + 1 < D ? u0 + 1 : u0;
    const float *r0 = j->sino + (size_t)v0 * D, *r1 = j->sino + (size_t)v1 * D;
    dst[b] = (float)((1 - wb) * ((1 - wu) * r0[u0] + wu * r0[u1]) + wb * ((1 - wu) * r1[u0] + wu * r1[u1]));
  }
}

static void filter_task(void *ctx, size_t task, size_t worker) {
  const filt_job *j = ctx;
  const ms_ct_system *s = j->s;
  int D = s->c.detectors, L = s->L;
  size_t nf = (size_t)L / 2 + 1;
  /* Per-worker buffers start on 64-byte boundaries, the alignment the plans
   * were made for (FFTW's SIMD codelets rely on it). */
  float *in = j->fin + worker * (size_t)L;
  fftwf_complex *out = j->fout + worker * ((nf + 7) & ~(size_t)7);
  size_t k0 = (size_t)s->kp * task / j->n_tasks, k1 = (size_t)s->kp * (task + 1) / j->n_tasks;
  for (int n = 0; n < j->nq; n++) {
    filt_job one = *j;
    one.sino = j->sinos[n];
    float *q = j->q + (size_t)n * s->kp * D;
    for (size_t k = k0; k < k1; k++) {
      parallel_row(&one, (int)k, in);
      memset(in + D, 0, (size_t)(L - D) * sizeof(float));
      fftwf_execute_dft_r2c(s->fwd, in, out);
      for (size_t f = 0; f < nf; f++) {
        out[f][0] *= s->filter[f];
        out[f][1] *= s->filter[f];
      }
      fftwf_execute_dft_c2r(s->inv, out, in);
      memcpy(q + k * (size_t)D, in, (size_t)D * sizeof(float));
    }
  }
}

typedef struct {
  const ms_ct_system *s;
  const float *q; /* [nq][kp][D] */
  float *mu[2];
  int nq;
  int avx2; /* run the AVX2 clone (same bits) */
} bp_job;

/* One view's contribution to columns [i0, i1) of one image row: linear
 * interpolation of the filtered projection q at bin b0 + i db (the clamp
 * keeps rounding at the ends in bounds). */
static inline __attribute__((always_inline)) void bp_span(float *dst, const float *q, float b0, float db, int i0,
                                                          int i1, int D) {
  for (int i = i0; i < i1; i++) {
    float b = b0 + (float)i * db;
    int k0 = (int)b;
    k0 = k0 < 0 ? 0 : (k0 > D - 2 ? D - 2 : k0);
    float f = b - (float)k0;
    f = f < 0 ? 0 : f;
    dst[i] += q[k0] + f * (q[k0 + 1] - q[k0]);
  }
}

#if defined(__x86_64__) || defined(__i386__)
/* bp_span, 8 columns at a time: every lane does the scalar operations in
 * the same order (products and sums rounded separately, no FMA; the
 * truncating conversion is C's cast), so the bits are the same. */
__attribute__((target("avx2"))) static void bp_span_avx2(float *dst, const float *q, float b0, float db, int i0,
                                                         int i1, int D) {
  const __m256 vb0 = _mm256_set1_ps(b0), vdb = _mm256_set1_ps(db), zero = _mm256_setzero_ps();
  const __m256i lo = _mm256_setzero_si256(), hi = _mm256_set1_epi32(D - 2);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  int i = i0;
  for (; i + 8 <= i1; i += 8) {
    __m256 fi = _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_set1_epi32(i), lane));
    __m256 b = _mm256_add_ps(vb0, _mm256_mul_ps(fi, vdb));
    __m256i k0 = _mm256_min_epi32(_mm256_max_epi32(_mm256_cvttps_epi32(b), lo), hi);
    __m256 f = _mm256_max_ps(_mm256_sub_ps(b, _mm256_cvtepi32_ps(k0)), zero);
    /* k0 is monotonic over the lanes; when the eight bins lie within
     * eight entries (|db| <= 1: pixels no larger than bins), two loads and
     * two permutes fetch them (q has 8 readable floats past each row's end,
     * never selected); otherwise gathers. */
    int ka = _mm256_cvtsi256_si32(k0), kz = _mm256_extract_epi32(k0, 7), kb = ka < kz ? ka : kz;
    __m256 qa, qb;
    if (ka - kz <= 7 && kz - ka <= 7) {
      __m256i rel = _mm256_sub_epi32(k0, _mm256_set1_epi32(kb));
      qa = _mm256_permutevar8x32_ps(_mm256_loadu_ps(q + kb), rel);
      qb = _mm256_permutevar8x32_ps(_mm256_loadu_ps(q + kb + 1), rel);
    } else {
      qa = _mm256_i32gather_ps(q, k0, 4);
      qb = _mm256_i32gather_ps(q + 1, k0, 4);
    }
    __m256 v = _mm256_add_ps(qa, _mm256_mul_ps(f, _mm256_sub_ps(qb, qa)));
    _mm256_storeu_ps(dst + i, _mm256_add_ps(_mm256_loadu_ps(dst + i), v));
  }
  bp_span(dst, q, b0, db, i, i1, D);
}
#endif

static void backproject_rows_body(const bp_job *j, size_t r0, size_t r1) {
  const ms_ct_system *s = j->s;
  const ms_ct_params *c = &s->c;
  int W = c->width, D = c->detectors;
  double cx = (W - 1) / 2.0, cy = (c->height - 1) / 2.0, cd = (D - 1) / 2.0;
  double inv = c->pixel_mm / c->detector_mm;
  size_t qs = (size_t)s->kp * D;
  for (size_t r = r0; r < r1; r++) {
    for (int n = 0; n < j->nq; n++) {
      float *dst = j->mu[n] + r * (size_t)W;
      for (int i = 0; i < W; i++) dst[i] = 0;
    }
    double y = ((double)r - cy) * inv;
    for (int k = 0; k < s->kp; k++) {
      float ct = s->cos_t[k], st = s->sin_t[k];
      /* Bin position of column i: b(i) = b0 + i db; only columns with b in
       * [0, D - 1) take part (step_range on b + 1 - 1 keeps b > -1 and
       * < D - 1). */
      float b0 = (float)(-cx * inv * ct + y * st + cd), db = (float)(inv * ct);
      int i0r, i1r;
      step_range((double)b0, (double)db, W, D - 1, &i0r, &i1r);
      for (int n = 0; n < j->nq; n++) {
        float *dst = j->mu[n] + r * (size_t)W;
        const float *q = j->q + n * qs + (size_t)k * D;
#if defined(__x86_64__) || defined(__i386__)
        if (j->avx2) {
          bp_span_avx2(dst, q, b0, db, i0r, i1r, D);
          continue;
        }
#endif
        bp_span(dst, q, b0, db, i0r, i1r, D);
      }
    }
  }
}

static void backproject_rows(void *ctx, size_t r0, size_t r1) { backproject_rows_body(ctx, r0, r1); }

static ms_status fbp_n(const ms_ct_system *s, float *const *mu, const float *const *sino, int nq, ms_diag *d) {
  size_t T = ms__parallel_threads();
  if (T < 1) T = 1;
  int L = s->L, D = s->c.detectors;
  size_t nf = (size_t)L / 2 + 1;
  filt_job j = {s, NULL, NULL, {sino[0], sino[nq - 1]}, nq, NULL, NULL, 0};
  /* 8 spare floats at the end: the AVX2 back-projection loads up to 8
   * entries past a row's last bin (and never uses them) */
  j.q = ms__calloc((size_t)nq * s->kp * (size_t)D + 8, sizeof(float));
  j.fin = ms__fft_alloc(T * (size_t)L * sizeof(float));
  j.fout = ms__fft_alloc(T * ((nf + 7) & ~(size_t)7) * sizeof(fftwf_complex));
  if (!j.q || !j.fin || !j.fout) {
    free(j.q);
    free(j.fin);
    free(j.fout);
    return ms__diag_nomem(d, NULL, "ct/fbp", "the filtered sinogram");
  }
  j.n_tasks = T * MS__TASKS_PER_THREAD;
  if (j.n_tasks > (size_t)s->kp) j.n_tasks = (size_t)s->kp;
  ms__parallel(j.n_tasks, T, filter_task, &j);
  bp_job b = {s, j.q, {mu[0], mu[nq - 1]}, nq, s->avx2};
  ms__parallel_range((size_t)s->c.height, 4, backproject_rows, &b);
  free(j.q);
  free(j.fin);
  free(j.fout);
  return MS_OK;
}

ms_status ms_ct_fbp(const ms_ct_system *s, float *mu, const float *sino, ms_diag *d) {
  return fbp_n(s, &mu, &sino, 1, d);
}

ms_status ms_ct_acquire(const ms_ct_system *s, float *sino, float *low_hu, float *full_hu, const float *truth_hu,
                        uint64_t seed, uint64_t index, ms_diag *d) {
  return ms_ct_acquire_at(s, sino, low_hu, full_hu, truth_hu, s->c.dose_mas, s->c.full_dose_mas, seed, index, d);
}

ms_status ms_ct_acquire_at(const ms_ct_system *s, float *sino, float *low_hu, float *full_hu, const float *truth_hu,
                           double dose_mas, double full_dose_mas, uint64_t seed, uint64_t index, ms_diag *d) {
  const ms_ct_params *c = &s->c;
  size_t npix = (size_t)c->width * c->height, ns = ms_ct_sinogram_len(s);
  ms_ct_params chk = *c;
  chk.dose_mas = dose_mas;
  chk.full_dose_mas = full_dose_mas;
  ms_status st = ms_ct_params_check(&chk, d);
  if (st != MS_OK) return st;
  float *mu = ms__malloc(npix * sizeof(float));
  float *clean = ms__malloc(ns * sizeof(float));
  float *noisy = ms__malloc(ns * sizeof(float));
  if (!mu || !clean || !noisy) {
    st = ms__diag_nomem(d, NULL, "ct", "one image's sinograms");
    goto done;
  }
  if (c->beam_hardening) {
    /* Two materials: water density (air-water below 0 HU) and a bone
     * volume fraction (water-bone above), which reproduce mu at 70 keV;
     * their path lengths, then the polychromatic log-attenuation. */
    for (size_t i = 0; i < npix; i++) {
      double h = truth_hu[i], fb = h > 0 ? fmin(h / BH_BONE_HU, 1) : 0;
      mu[i] = (float)(h > 0 ? 1 - fb : fmax(1 + h / 1000, 0));
      full_hu[i] = (float)fb;
    }
    ms_ct_project(s, clean, mu);
    ms_ct_project(s, noisy, full_hu);
    for (size_t r = 0; r < ns; r++) clean[r] = (float)bh_poly(clean[r], noisy[r]);
  } else {
    ms_ct_hu_to_mu(c, mu, truth_hu, npix);
    ms_ct_project(s, clean, mu);
  }
  ms_ct_noise(s, noisy, clean, c->photons_per_mas * full_dose_mas, seed, ms_rng_stream("ct/counts/full"), index);
  ms_ct_noise(s, clean, clean, c->photons_per_mas * dose_mas, seed, ms_rng_stream("ct/counts/low"), index);
  if (c->beam_hardening) {
    /* the stored sinogram is what was measured; the reconstructions use
     * the water-precorrected data */
    if (sino) memcpy(sino, clean, ns * sizeof(float));
    sino = NULL;
    bh_water_precorrect(clean, ns, c->mu_water);
    bh_water_precorrect(noisy, ns, c->mu_water);
  }
  /* noisy: full dose, clean (overwritten): low dose; mu and full_hu as the
   * two reconstructions in 1/mm, then HU. */
  float *rec[2] = {mu, full_hu};
  const float *in[2] = {clean, noisy};
  if ((st = fbp_n(s, rec, in, 2, d)) != MS_OK) goto done;
  ms_ct_mu_to_hu(c, low_hu, mu, npix);
  ms_ct_mu_to_hu(c, full_hu, full_hu, npix);
  if (sino) memcpy(sino, clean, ns * sizeof(float));
done:
  free(mu);
  free(clean);
  free(noisy);
  return st;
}
