/* MR acquisition physics: complex image with a smooth phase, coil
 * sensitivities, k-space by the centred orthonormal DFT, complex Gaussian
 * noise, Cartesian undersampling masks, zero-filled and root-sum-of-squares
 * reconstructions (medsynth/physics.h, docs/physics.md).
 *
 * k-space convention: fastMRI's fft2c, K = fftshift(fft2(ifftshift(x)),
 * norm = "ortho"). For even N, shifting by N/2 is multiplying by (-1)^n on
 * the other side of the DFT, so K[k] = c (-1)^k DFT((-1)^n x[n]) / sqrt(N)
 * with c = (-1)^(N/2) per axis; the code multiplies by the checkerboard
 * before and after a raw 2-D DFT (sizes must be even), done as FFTW row
 * transforms, a tiled transpose, row transforms of the transpose and a
 * transpose back (sep2d below).
 *
 * Coil model (an analytic approximation in the spirit of the Biot-Savart
 * field of a small loop): coil c sits on a ring of radius coil_radius x FOV
 * at angle 2 pi c / C; its raw sensitivity at distance r is
 * exp(i (angle_c + pi (x cos a_c + y sin a_c) / FOV)) / (1 + (r / w)^2)^(3/4)
 * with w = coil_width x FOV; the maps are divided by sqrt(sum_c |b_c|^2) so
 * that sum_c |S_c|^2 = 1 at every pixel. The RSS of noise-free, fully
 * sampled coil images is then exactly the magnitude image.
 *
 * Masks follow fastMRI: phase-encode columns, round(W x center_fraction)
 * central columns always sampled; the rest chosen so that exactly
 * round(W / R) columns are sampled in all: equispaced (evenly over the
 * non-central columns, keyed offset) or random (keyed partial shuffle).
 *
 * Noise: i.i.d. complex Gaussian of sd noise_sd per real and imaginary part,
 * drawn on the coil images (the orthonormal DFT makes that the same model as
 * noise on k-space samples, and the fully sampled RSS then needs no inverse
 * transform). The zero-filled reconstruction needs only row transforms:
 * the mask keeps whole columns, so it commutes with the column transforms
 * (per coil: rows forward, rows inverse for the zero-filled image, columns
 * forward for k-space).
 *
 * Invariants: draws keyed by (seed, "mr/phase"|"mr/noise"|"mr/mask"); noise
 * of coil c, pixel p of image `index` is elements 2 (p % 2), 2 (p % 2) + 1 of
 * ms_rng_normal4(block (c * H * W / 2 + p / 2, index)) (H W is a multiple
 * of 4, so coils use disjoint blocks). */
#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/names.h"
#include "core/diag.h"
#include "medsynth/physics.h"
#include "medsynth/rng.h"
#include "phantom/phantom_internal.h"
#include "phantom/physics_internal.h"

/* A raw 2-D DFT of H x W as two passes of contiguous 1-D transforms: rows
 * (H transforms of length W), a blocked transpose, rows of the transpose (W
 * transforms of length H), and a transpose back. FFTW_ESTIMATE plans of a
 * 2-D or a strided column transform run several times slower than this
 * (256^2: about 1.4 ms against 0.3 ms); the passes are fixed code and plans,
 * so the bits do not depend on timing or threads. [0] forward, [1] inverse. */
typedef struct {
  int H, W;
  fftwf_plan row[2], col[2];
} sep2d;

struct ms_mr_system {
  ms_mr_params m;
  int n_center, n_lines;
  float *maps; /* [C][H][W][2] */
  sep2d full;
  sep2d low; /* lowres_factor > 1: transforms of the cropped centre */
};

static const char *const k_mask[] = {"equispaced", "random"};
MS__NAME_FNS(ms_mr_mask_kind_name, ms_mr_mask_kind_from_name, ms_mr_mask_kind, k_mask, MS_MR_MASK_COUNT, "unknown")

void ms_mr_params_init(ms_mr_params *m, int width, int height, double pixel_mm) {
  memset(m, 0, sizeof *m);
  m->width = width;
  m->height = height;
  m->pixel_mm = pixel_mm;
  m->coils = 8;
  m->coil_radius = 0.75;
  m->coil_width = 0.5;
  m->acceleration = 4;
  m->center_fraction = 0.08;
  m->mask = MS_MR_MASK_EQUISPACED;
  m->partial_fourier = 1;
  m->noise_sd = 0;
  m->phase_amp = 1;
  m->lowres_factor = 1;
}

/* Columns a partial Fourier fraction keeps (0 .. kept - 1), and the
 * columns a mask samples among them. */
static int kept_columns(int W, double pf) {
  return (int)lround(W * pf);
}
static int mask_lines(int W, double pf, double R) {
  return (int)lround(W * pf / R);
}

ms_status ms_mr_params_check(const ms_mr_params *m, ms_diag *d) {
  ms_status st = MS_OK;
#define BAD(where, ...) (st = ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, where, __VA_ARGS__))
  if (m->width < 2 || m->height < 2 || m->width > 8192 || m->height > 8192 || m->width % 2 || m->height % 2)
    BAD("size", "k-space needs an even number of pixels a side (2..8192), got %d x %d", m->width, m->height);
  if (!(m->pixel_mm > 0) || !isfinite(m->pixel_mm)) BAD("pixel_mm", "pixel spacing must be positive");
  if (m->coils < 1 || m->coils > 64) BAD("coils", "coils must be 1..64, got %d", m->coils);
  if (!(m->coil_radius > 0.5 && m->coil_radius <= 4)) BAD("coil_radius", "coil ring radius must be in (0.5, 4] x FOV");
  if (!(m->coil_width > 0 && m->coil_width <= 10)) BAD("coil_width", "coil width must be in (0, 10] x FOV");
  if (!(m->acceleration >= 1) || !isfinite(m->acceleration)) BAD("acceleration", "acceleration must be >= 1, got %g", m->acceleration);
  if (!(m->center_fraction > 0 && m->center_fraction < 1))
    BAD("center_fraction", "centre fraction must be in (0, 1), got %g", m->center_fraction);
  if ((unsigned)m->mask >= MS_MR_MASK_COUNT) BAD("mask", "unknown mask (equispaced or random)");
  if (!(m->partial_fourier > 0.5 && m->partial_fourier <= 1))
    BAD("partial_fourier", "partial Fourier fraction must be in (0.5, 1], got %g", m->partial_fourier);
  if (!(m->noise_sd >= 0) || !isfinite(m->noise_sd)) BAD("noise", "noise sd must be >= 0");
  if (!(m->phase_amp >= 0 && m->phase_amp <= 100)) BAD("phase", "phase amplitude must be in [0, 100] radians");
  if (m->lowres_factor < 1 || m->lowres_factor > 16 ||
      (m->lowres_factor > 1 && (m->width % (2 * m->lowres_factor) || m->height % (2 * m->lowres_factor))))
    BAD("lowres", "low-resolution factor must be 1..16 and leave an even size (%d x %d / %d)", m->width, m->height,
        m->lowres_factor);
  if (st == MS_OK) {
    int W = m->width, nc = (int)lround(W * m->center_fraction);
    int nt = mask_lines(W, m->partial_fourier, m->acceleration), kept = kept_columns(W, m->partial_fourier);
    if (nc < 1) BAD("center_fraction", "centre fraction %g of %d columns samples no column", m->center_fraction, W);
    else if (nc > nt)
      BAD("center_fraction", "centre fraction %g samples %d columns, more than W %s/ R = %d", m->center_fraction, nc,
          m->partial_fourier == 1 ? "" : "x partial Fourier ", nt);
    else if ((W - nc + 1) / 2 + nc > kept)
      BAD("partial_fourier", "partial Fourier fraction %g keeps %d columns, which cuts into the %d central ones",
          m->partial_fourier, kept, nc);
  }
#undef BAD
  return st;
}

/* Under ms__fftw_lock. */
static void sep2d_destroy(sep2d *t) {
  for (int k = 0; k < 2; k++) {
    if (t->row[k]) fftwf_destroy_plan(t->row[k]);
    if (t->col[k]) fftwf_destroy_plan(t->col[k]);
  }
}

/* Under ms__fftw_lock; tmp is a 64-byte aligned H x W complex buffer.
 * Returns 0 when FFTW could not plan. */
static int sep2d_plan(sep2d *t, int H, int W, float *tmp) {
  fftwf_complex *x = (fftwf_complex *)tmp;
  t->H = H;
  t->W = W;
  for (int k = 0; k < 2; k++) {
    int dir = k ? FFTW_BACKWARD : FFTW_FORWARD;
    t->row[k] = fftwf_plan_many_dft(1, &W, H, x, NULL, 1, W, x, NULL, 1, W, dir, FFTW_ESTIMATE);
    t->col[k] = fftwf_plan_many_dft(1, &H, W, x, NULL, 1, H, x, NULL, 1, H, dir, FFTW_ESTIMATE);
  }
  return t->row[0] && t->row[1] && t->col[0] && t->col[1];
}

/* o[i][j] = x[j][i] * (scale (-1)^(i + j) when flip, else scale), x H x W
 * complex, o W x H, H even; in 16 x 16 tiles so both sides stay in cache. */
static void transpose(float *restrict o, const float *restrict x, int H, int W, float scale, int flip) {
  enum { T = 16 };
  for (int j0 = 0; j0 < H; j0 += T)
    for (int i0 = 0; i0 < W; i0 += T) {
      int j1 = j0 + T < H ? j0 + T : H, i1 = i0 + T < W ? i0 + T : W;
      for (int i = i0; i < i1; i++) {
        /* j0 and j1 are even: the factor alternates ga, gb along j. */
        float ga = flip && ((i + j0) & 1) ? -scale : scale, gb = flip ? -ga : ga;
        float *u = o + ((size_t)i * H + j0) * 2;
        const float *v = x + ((size_t)j0 * W + i) * 2;
        for (int j = 0; j < j1 - j0; j += 2) {
          const float *va = v + (size_t)j * W * 2, *vb = va + (size_t)W * 2;
          u[2 * j] = va[0] * ga;
          u[2 * j + 1] = va[1] * ga;
          u[2 * j + 2] = vb[0] * gb;
          u[2 * j + 3] = vb[1] * gb;
        }
      }
    }
}

/* The second half of a raw 2-D DFT of x (H x W) whose rows are already
 * transformed: columns through tmp, out = the result x scale x (-1)^(row +
 * col) when flip. out may be x. */
static void sep2d_columns(const sep2d *t, float *out, float *x, float *tmp, int inverse, float scale, int flip) {
  transpose(tmp, x, t->H, t->W, 1.0f, 0);
  fftwf_execute_dft(t->col[inverse], (fftwf_complex *)tmp, (fftwf_complex *)tmp);
  transpose(out, tmp, t->W, t->H, scale, flip);
}

void ms_mr_system_free(ms_mr_system *s) {
  if (!s) return;
  pthread_mutex_lock(&ms__fftw_lock);
  sep2d_destroy(&s->full);
  sep2d_destroy(&s->low);
  pthread_mutex_unlock(&ms__fftw_lock);
  free(s->maps);
  free(s);
}

int ms_mr_mask_lines(const ms_mr_system *s) { return s->n_lines; }
const float *ms_mr_system_maps(const ms_mr_system *s) { return s->maps; }

static void coil_maps(ms_mr_system *s) {
  const ms_mr_params *m = &s->m;
  int W = m->width, H = m->height, C = m->coils;
  double fov = m->pixel_mm * (W > H ? W : H), R = m->coil_radius * fov, w = m->coil_width * fov;
  for (int j = 0; j < H; j++) {
    for (int i = 0; i < W; i++) {
      double x = (i - (W - 1) / 2.0) * m->pixel_mm, y = (j - (H - 1) / 2.0) * m->pixel_mm, sum = 0;
      size_t px = (size_t)j * W + i;
      for (int c = 0; c < C; c++) {
        double a = 2 * M_PI * c / C, ca = cos(a), sa = sin(a);
        double dx = x - R * ca, dy = y - R * sa, r2 = (dx * dx + dy * dy) / (w * w);
        double mag = C == 1 ? 1 : pow(1 + r2, -0.75);
        double ph = a + M_PI * (x * ca + y * sa) / fov;
        float *o = s->maps + ((size_t)c * H * W + px) * 2;
        o[0] = (float)(mag * cos(ph));
        o[1] = (float)(mag * sin(ph));
        sum += mag * mag;
      }
      double inv = 1 / sqrt(sum);
      for (int c = 0; c < C; c++) {
        float *o = s->maps + ((size_t)c * H * W + px) * 2;
        o[0] = (float)(o[0] * inv);
        o[1] = (float)(o[1] * inv);
      }
    }
  }
}

ms_status ms_mr_system_new(ms_mr_system **out, const ms_mr_params *m, ms_diag *d) {
  *out = NULL;
  ms_status st = ms_mr_params_check(m, d);
  if (st != MS_OK) return st;
  ms_mr_system *s = ms__calloc(1, sizeof *s);
  if (!s) return ms__diag_nomem(d, NULL, "mr", "the MR system");
  s->m = *m;
  s->n_center = (int)lround(m->width * m->center_fraction);
  s->n_lines = mask_lines(m->width, m->partial_fourier, m->acceleration);
  size_t n = (size_t)m->width * m->height;
  s->maps = ms__fft_alloc((size_t)m->coils * n * 2 * sizeof(float));
  float *tmp = ms__fft_alloc(n * 2 * sizeof(float));
  if (!s->maps || !tmp) {
    free(tmp);
    ms_mr_system_free(s);
    return ms__diag_nomem(d, NULL, "mr", "the coil maps");
  }
  coil_maps(s);
  pthread_mutex_lock(&ms__fftw_lock);
  int ok = sep2d_plan(&s->full, m->height, m->width, tmp);
  if (ok && m->lowres_factor > 1)
    ok = sep2d_plan(&s->low, m->height / m->lowres_factor, m->width / m->lowres_factor, tmp);
  pthread_mutex_unlock(&ms__fftw_lock);
  free(tmp);
  if (!ok) {
    ms_mr_system_free(s);
    return ms_diag_add(d, MS_ERR_INTERNAL, NULL, 0, 0, "mr", "FFTW could not plan a %d x %d transform", m->height,
                       m->width);
  }
  *out = s;
  return MS_OK;
}

/* x *= (-1)^(row + col) * sign. */
static void checker(float *x, int H, int W, float sign) {
  for (int j = 0; j < H; j++) {
    float sj = (j & 1) ? -sign : sign;
    float *r = x + (size_t)j * W * 2;
    for (int i = 0; i < W; i++) {
      float f = (i & 1) ? -sj : sj;
      r[2 * i] *= f;
      r[2 * i + 1] *= f;
    }
  }
}

/* fft2c in place on a 64-byte aligned buffer x (the plans' alignment), H x
 * W even; tmp is a scratch buffer of the same size and alignment. */
static void fft2c_sep(const sep2d *t, float *x, float *tmp, int inverse) {
  int H = t->H, W = t->W;
  /* (-1)^(H/2 + W/2) from the two shifts, and 1/sqrt(HW) for "ortho". */
  float sign = (((H / 2) + (W / 2)) & 1) ? -1.0f : 1.0f;
  checker(x, H, W, 1.0f);
  fftwf_execute_dft(t->row[inverse], (fftwf_complex *)x, (fftwf_complex *)x);
  sep2d_columns(t, x, x, tmp, inverse, (float)(sign / sqrt((double)H * W)), 1);
}

ms_status ms_mr_fft2c(const ms_mr_system *s, float *x, int inverse, ms_diag *d) {
  size_t n = (size_t)s->m.width * s->m.height * 2;
  float *buf = ms__fft_alloc(n * sizeof(float)), *tmp = ms__fft_alloc(n * sizeof(float));
  if (!buf || !tmp) {
    free(buf);
    free(tmp);
    return ms__diag_nomem(d, NULL, "mr", "an FFT buffer");
  }
  memcpy(buf, x, n * sizeof(float));
  fft2c_sep(&s->full, buf, tmp, inverse != 0);
  memcpy(x, buf, n * sizeof(float));
  free(buf);
  free(tmp);
  return MS_OK;
}

/* The mask of image `index` with nc central and n_lines columns in all. */
static void make_mask(const ms_mr_system *s, int nc, int n_lines, uint8_t *mask, uint64_t seed, uint64_t index) {
  int W = s->m.width, rest = n_lines - nc;
  int pad = (W - nc + 1) / 2;
  memset(mask, 0, (size_t)W);
  for (int i = pad; i < pad + nc; i++) mask[i] = 1;
  /* non-central columns, in order: 0..pad-1, pad+nc..kept-1 (partial
   * Fourier leaves out the columns from `kept` on) */
  int M = kept_columns(W, s->m.partial_fourier) - nc;
  if (rest <= 0 || M <= 0) return;
#define OUTER(t) ((t) < pad ? (t) : (t) + nc)
  ms_rng_key key = ms_rng_key_make(seed, ms_rng_stream("mr/mask"));
  if (s->m.mask == MS_MR_MASK_EQUISPACED) {
    double step = (double)M / rest, off = ms_rng_uniform(key, index, 0) * step;
    for (int t = 0; t < rest; t++) {
      int pos = (int)floor(off + t * step);
      if (pos >= M) pos = M - 1;
      mask[OUTER(pos)] = 1;
    }
    return;
  }
  /* Random: the first `rest` entries of a keyed Fisher-Yates shuffle, done
   * on the mask itself with 0/1 marks (a column is taken at most once). */
  int taken = 0;
  for (uint64_t lane = 0; taken < rest; lane++) {
    int t = (int)ms_rng_below(key, index, lane + 1, (uint64_t)M);
    if (!mask[OUTER(t)]) {
      mask[OUTER(t)] = 1;
      taken++;
    }
  }
#undef OUTER
}

void ms_mr_mask(const ms_mr_system *s, uint8_t *mask, uint64_t seed, uint64_t index) {
  make_mask(s, s->n_center, s->n_lines, mask, seed, index);
}

double ms_mr_phantom_noise_sd(const ms_phantom_params *p) {
  return p->noise && p->modality != MS_MODALITY_CT ? p->mr_noise * ms__mr_reference_signal(p->modality) : 0;
}

/* One row of a coil image: r = S x (+ sd z when z is not NULL), acc +=
 * |r|^2 (the fully sampled RSS), then r *= s0 (-1)^i, fft2c's input flip
 * (s0 = (-1)^row). W even; pixels go in pairs so the flip needs no branch. */
static void coil_row(float *restrict r, float *restrict acc, const float *restrict S, const float *restrict x,
                     const float *restrict z, float sd, float s0, int W) {
  for (int i = 0; i < W; i += 2)
    for (int h = 0; h < 2; h++) {
      int q = 2 * (i + h);
      float vr = S[q] * x[q] - S[q + 1] * x[q + 1], vi = S[q] * x[q + 1] + S[q + 1] * x[q];
      if (z) {
        vr += sd * z[q];
        vi += sd * z[q + 1];
      }
      acc[i + h] += vr * vr + vi * vi;
      float g = h ? -s0 : s0;
      r[q] = vr * g;
      r[q + 1] = vi * g;
    }
}

ms_status ms_mr_acquire(const ms_mr_system *s, const ms_mr_output *o, const float *magnitude, uint64_t seed,
                        uint64_t index, ms_diag *d) {
  return ms_mr_acquire_at(s, o, magnitude, s->m.acceleration, s->m.center_fraction, seed, index, d);
}

ms_status ms_mr_acquire_at(const ms_mr_system *s, const ms_mr_output *o, const float *magnitude,
                           double acceleration, double center_fraction, uint64_t seed, uint64_t index, ms_diag *d) {
  const ms_mr_params *m = &s->m;
  ms_mr_params chk = *m;
  chk.acceleration = acceleration;
  chk.center_fraction = center_fraction;
  ms_status cst = ms_mr_params_check(&chk, d);
  if (cst != MS_OK) return cst;
  int W = m->width, H = m->height, C = m->coils;
  size_t n = (size_t)W * H;
  float *img = ms__fft_alloc(n * 2 * sizeof(float));
  float *buf = ms__fft_alloc(n * 2 * sizeof(float));
  float *tmp = ms__fft_alloc(n * 2 * sizeof(float));
  if (!img || !buf || !tmp) {
    free(img);
    free(buf);
    free(tmp);
    return ms__diag_nomem(d, NULL, "mr", "one image's k-space buffers");
  }
  /* Smooth phase: a0 + a1 x + a2 y + a3 (x^2 - y^2) + a4 x y, x, y in [-1, 1]. */
  ms_rng_key kp = ms_rng_key_make(seed, ms_rng_stream("mr/phase"));
  double a[5];
  for (int k = 0; k < 5; k++) a[k] = m->phase_amp * (2 * ms_rng_uniform(kp, index, (uint64_t)k) - 1) / (k ? 2.0 : 1.0);
  for (int j = 0; j < H; j++) {
    double y = (2.0 * j - (H - 1)) / H;
    for (int i = 0; i < W; i++) {
      double x = (2.0 * i - (W - 1)) / W;
      double ph = a[0] + a[1] * x + a[2] * y + a[3] * (x * x - y * y) + a[4] * x * y;
      size_t p = (size_t)j * W + i;
      /* Background pixels (magnitude 0) skip the sine and cosine. */
      img[2 * p] = magnitude[p] != 0 ? (float)(magnitude[p] * cos(ph)) : 0;
      img[2 * p + 1] = magnitude[p] != 0 ? (float)(magnitude[p] * sin(ph)) : 0;
    }
  }
  make_mask(s, (int)lround(W * center_fraction), mask_lines(W, m->partial_fourier, acceleration), o->mask, seed, index);
  for (size_t p = 0; p < n; p++) o->rss[p] = o->zf[p] = 0;
  int f = m->lowres_factor, lh = H / f, lw = W / f;
  size_t nl = (size_t)lh * lw;
  float *low = f > 1 && o->lowres ? ms__fft_alloc(nl * 2 * sizeof(float)) : NULL;
  if (f > 1 && o->lowres && !low) {
    free(img);
    free(buf);
    free(tmp);
    return ms__diag_nomem(d, NULL, "mr", "the low-resolution buffer");
  }
  if (low)
    for (size_t p = 0; p < nl; p++) o->lowres[p] = 0;
  ms_rng_key kn = ms_rng_key_make(seed, ms_rng_stream("mr/noise"));
  /* fft2c's output factor (-1)^(H/2 + W/2) / sqrt(HW), and 1 / W^2 for
   * the squared magnitude of a raw inverse of raw forward row transforms. */
  float kscale = (float)(((((H / 2) + (W / 2)) & 1) ? -1.0 : 1.0) / sqrt((double)n));
  float zscale = (float)(1.0 / ((double)W * (double)W));
  for (int c = 0; c < C; c++) {
    const float *S = s->maps + (size_t)c * n * 2;
    const float *z = NULL;
    if (m->noise_sd > 0) {
      /* Complex Gaussian noise on the coil image: two pixels per Philox
       * block (ms_rng_normal4_fill, block (c * n / 2 + p / 2, index)). The
       * orthonormal DFT maps i.i.d. complex Gaussian noise to i.i.d. noise
       * of the same sd, so this is the same k-space noise model as adding
       * it after the transform, and the fully sampled coil image needs no
       * inverse transform. */
      ms_rng_normal4_fill(kn, (uint64_t)c * (n / 2), index, tmp, 2 * n);
      z = tmp;
    }
    for (int j = 0; j < H; j++) {
      size_t o2 = (size_t)j * W * 2;
      coil_row(buf + o2, o->rss + (size_t)j * W, S + o2, img + o2, z ? z + o2 : NULL, (float)m->noise_sd,
               (j & 1) ? -1.0f : 1.0f, W);
    }
    fftwf_execute_dft(s->full.row[0], (fftwf_complex *)buf, (fftwf_complex *)buf);
    /* Zero-filled coil image. The mask keeps whole columns (phase-encode
     * lines), so it commutes with the transforms along the columns: the
     * raw inverse of (mask x the raw 2-D transform) is H x the row-wise
     * inverse of (mask x the row transforms), and fft2c's inverse of the
     * masked k-space has magnitude |IDFT_rows(mask x rows)| / W (the flips
     * and signs only change signs). So the zero-filled image needs one pass
     * of row transforms, none along the columns. */
    for (int j = 0; j < H; j++) {
      const float *r = buf + (size_t)j * W * 2;
      float *z = tmp + (size_t)j * W * 2;
      for (int i = 0; i < W; i++) {
        float keep = o->mask[i] ? 1.0f : 0.0f;
        z[2 * i] = r[2 * i] * keep;
        z[2 * i + 1] = r[2 * i + 1] * keep;
      }
    }
    fftwf_execute_dft(s->full.row[1], (fftwf_complex *)tmp, (fftwf_complex *)tmp);
    for (size_t p = 0; p < n; p++)
      o->zf[p] += (tmp[2 * p] * tmp[2 * p] + tmp[2 * p + 1] * tmp[2 * p + 1]) * zscale;
    float *k = o->kspace + (size_t)c * n * 2;
    sep2d_columns(&s->full, k, buf, tmp, 0, kscale, 1);
    if (low) {
      /* Super-resolution input: the centre lh x lw of k-space (what a scan
       * at the lower matrix size acquires), transformed at that size: the
       * orthonormal pair at two sizes scales amplitudes by f (sqrt of the
       * size ratio), so / f keeps the intensity of the image. */
      for (int j = 0; j < lh; j++)
        memcpy(low + (size_t)j * lw * 2, k + ((size_t)(j + (H - lh) / 2) * W + (size_t)(W - lw) / 2) * 2,
               (size_t)lw * 2 * sizeof(float));
      fft2c_sep(&s->low, low, tmp, 1);
      for (size_t p = 0; p < nl; p++)
        o->lowres[p] += (low[2 * p] * low[2 * p] + low[2 * p + 1] * low[2 * p + 1]);
    }
  }
  for (size_t p = 0; p < n; p++) {
    o->rss[p] = sqrtf(o->rss[p]);
    o->zf[p] = sqrtf(o->zf[p]);
  }
  if (low)
    for (size_t p = 0; p < nl; p++) o->lowres[p] = sqrtf(o->lowres[p]) / (float)f;
  free(low);
  free(img);
  free(buf);
  free(tmp);
  return MS_OK;
}
