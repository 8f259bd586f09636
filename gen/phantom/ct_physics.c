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
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
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
  fftwf_plan fwd, inv;
};

static const char *const k_geom[] = {"parallel", "fan"};
static const char *const k_filt[] = {"ramp", "shepp-logan", "hann"};

const char *ms_ct_geometry_name(ms_ct_geometry g) {
  return (unsigned)g < MS_CT_GEOMETRY_COUNT ? k_geom[g] : "unknown";
}
ms_ct_geometry ms_ct_geometry_from_name(const char *name) {
  for (int i = 0; name && i < MS_CT_GEOMETRY_COUNT; i++)
    if (!strcmp(name, k_geom[i])) return (ms_ct_geometry)i;
  return MS_CT_GEOMETRY_COUNT;
}
const char *ms_fbp_filter_name(ms_fbp_filter f) {
  return (unsigned)f < MS_FBP_FILTER_COUNT ? k_filt[f] : "unknown";
}
ms_fbp_filter ms_fbp_filter_from_name(const char *name) {
  for (int i = 0; name && i < MS_FBP_FILTER_COUNT; i++)
    if (!strcmp(name, k_filt[i])) return (ms_fbp_filter)i;
  return MS_FBP_FILTER_COUNT;
}

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

/* Joseph's line integral of the ray p0 + t e (|e| = 1) through img: march
 * along the ray's major axis, one linear interpolation per row (column). */
static float joseph(const float *img, int W, int H, double px, double p0x, double p0y, double ex, double ey) {
  double cx = (W - 1) / 2.0, cy = (H - 1) / 2.0;
  if (fabs(ey) >= fabs(ex)) {
    double y0 = -cy * px;
    double c0 = (p0x + (y0 - p0y) / ey * ex) / px + cx;
    return (float)(march(img, (size_t)W, 1, H, W, c0, ex / ey) * px / fabs(ey));
  }
  double x0 = -cx * px;
  double r0 = (p0y + (x0 - p0x) / ex * ey) / px + cy;
  return (float)(march(img, 1, (size_t)W, W, H, r0, ey / ex) * px / fabs(ex));
}

typedef struct {
  const ms_ct_system *s;
  float *sino;
  const float *mu;
} proj_job;

static void project_views(void *ctx, size_t k0, size_t k1) {
  const proj_job *j = ctx;
  const ms_ct_params *c = &j->s->c;
  int D = c->detectors;
  for (size_t k = k0; k < k1; k++) {
    float *row = j->sino + k * (size_t)D;
    if (c->geometry == MS_CT_PARALLEL) {
      double th = M_PI * (double)k / c->views, ct = cos(th), st = sin(th);
      for (int b = 0; b < D; b++) {
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
  proj_job j = {s, sino, mu};
  ms__parallel_range((size_t)s->c.views, 4, project_views, &j);
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
} bp_job;

static void backproject_rows(void *ctx, size_t r0, size_t r1) {
  const bp_job *j = ctx;
  const ms_ct_system *s = j->s;
  const ms_ct_params *c = &s->c;
  int W = c->width, D = c->detectors;
  double cx = (W - 1) / 2.0, cy = (c->height - 1) / 2.0, cd = (D - 1) / 2.0;
  double inv = c->pixel_mm / c->detector_mm;
  size_t qs = (size_t)s->kp * D;
  for (size_t r = r0; r < r1; r++) {
    float *dst = j->mu[0] + r * (size_t)W, *dst2 = j->mu[j->nq - 1] + r * (size_t)W;
    for (int i = 0; i < W; i++) dst[i] = dst2[i] = 0;
    double y = ((double)r - cy) * inv;
    for (int k = 0; k < s->kp; k++) {
      const float *q = j->q + (size_t)k * D, *q2 = q + (j->nq - 1) * qs;
      float ct = s->cos_t[k], st = s->sin_t[k];
      /* Bin position of column i: b(i) = b0 + i db; only columns with b in
       * [0, D - 1) take part (step_range on b + 1 - 1 keeps b > -1 and
       * < D - 1; the clamp below keeps rounding at the ends in bounds). */
      float b0 = (float)(-cx * inv * ct + y * st + cd), db = (float)(inv * ct);
      int i0r, i1r;
      step_range((double)b0, (double)db, W, D - 1, &i0r, &i1r);
      for (int i = i0r; i < i1r; i++) {
        float b = b0 + (float)i * db;
        int k0 = (int)b;
        k0 = k0 < 0 ? 0 : (k0 > D - 2 ? D - 2 : k0);
        float f = b - (float)k0;
        f = f < 0 ? 0 : f;
        dst[i] += q[k0] + f * (q[k0 + 1] - q[k0]);
        if (j->nq == 2) dst2[i] += q2[k0] + f * (q2[k0 + 1] - q2[k0]);
      }
    }
  }
}

static ms_status fbp_n(const ms_ct_system *s, float *const *mu, const float *const *sino, int nq, ms_diag *d) {
  size_t T = ms__parallel_threads();
  if (T < 1) T = 1;
  int L = s->L, D = s->c.detectors;
  size_t nf = (size_t)L / 2 + 1;
  filt_job j = {s, NULL, NULL, {sino[0], sino[nq - 1]}, nq, NULL, NULL, 0};
  j.q = ms__malloc((size_t)nq * s->kp * (size_t)D * sizeof(float));
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
  bp_job b = {s, j.q, {mu[0], mu[nq - 1]}, nq};
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
  const ms_ct_params *c = &s->c;
  size_t npix = (size_t)c->width * c->height, ns = ms_ct_sinogram_len(s);
  float *mu = ms__malloc(npix * sizeof(float));
  float *clean = ms__malloc(ns * sizeof(float));
  float *noisy = ms__malloc(ns * sizeof(float));
  ms_status st = MS_OK;
  if (!mu || !clean || !noisy) {
    st = ms__diag_nomem(d, NULL, "ct", "one image's sinograms");
    goto done;
  }
  ms_ct_hu_to_mu(c, mu, truth_hu, npix);
  ms_ct_project(s, clean, mu);
  ms_ct_noise(s, noisy, clean, c->photons_per_mas * c->full_dose_mas, seed, ms_rng_stream("ct/counts/full"), index);
  ms_ct_noise(s, clean, clean, c->photons_per_mas * c->dose_mas, seed, ms_rng_stream("ct/counts/low"), index);
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
