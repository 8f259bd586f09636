/* Acquisition physics: what a CT scanner and an MR scanner measure from a
 * phantom, and the standard reconstructions of it, paired with the truth.
 *
 * CT usage:
 *   ms_ct_params c;
 *   ms_ct_params_init(&c, 256, 256, 440.0 / 256);   // image grid, mm per pixel
 *   c.views = 360; c.dose_mas = 25;                // quarter dose
 *   ms_ct_system *s;
 *   if (ms_ct_system_new(&s, &c, &d) != MS_OK) ...;   // FFTW plans, one thread
 *   float *sino = malloc(ms_ct_sinogram_len(s) * sizeof(float));
 *   ... low, full: width * height floats each ...
 *   ms_ct_acquire(s, sino, low, full, truth_hu, seed, i, &d);  // any thread
 *   ms_ct_system_free(s);
 *
 * MR usage:
 *   ms_mr_params m;
 *   ms_mr_params_init(&m, 256, 256, 240.0 / 256);
 *   m.coils = 8; m.acceleration = 4; m.center_fraction = 0.08;
 *   ms_mr_system *s;
 *   ms_mr_system_new(&s, &m, &d);
 *   ms_mr_acquire(s, &out, truth_magnitude, seed, i, &d);      // any thread
 *
 * CT model (docs/physics.md). HU -> linear attenuation at an effective
 * energy of 70 keV: mu = mu_water + HU / 1000 * (mu_water - mu_air), with
 * mu_water = 0.01929 / mm and mu_air = 0.0000213 / mm (NIST XCOM mass
 * attenuation of water 0.1929 cm^2/g and dry air 0.1768 cm^2/g at 70 keV,
 * densities 1.0 and 0.001205 g/cm^3). Line integrals p by Joseph's method
 * (Joseph, IEEE TMI 1(3), 1982) through the pixel grid (bilinear samples
 * along the ray's major axis). Counts N = Poisson(I0 exp(-p)) + Normal(0,
 * electronic_sd), I0 = photons_per_mas * mAs, measured p = -ln(max(N, 0.5) /
 * I0). Filtered back-projection with the band-limited ramp of Kak & Slaney
 * ("Principles of Computerized Tomographic Imaging", 1988, eq. 61),
 * optionally windowed (Shepp-Logan sinc, Hann), through FFTW3; fan-beam data
 * (full 360 degree scan, virtual flat detector through the isocentre) are
 * rebinned to parallel rays before filtering.
 *
 * MR model. Complex image = magnitude x exp(i phase), a smooth keyed phase;
 * coil sensitivities of N coils on a ring (smooth analytic maps, normalised
 * so that sum_c |S_c|^2 = 1 at every pixel); k-space by the centred,
 * orthonormal 2-D DFT (fastMRI's fft2c); complex Gaussian noise; Cartesian
 * undersampling of phase-encode columns (fastMRI's center_fractions and
 * accelerations); zero-filled and root-sum-of-squares reconstructions.
 *
 * Determinism. Every draw is keyed by (seed, stream) with the image index
 * and the ray or sample in the counter: streams "ct/counts/low" and
 * "ct/counts/full" (counter (image, ray * 4096 + k)), their electronic-noise
 * sub-streams (ms_rng_stream_sub(stream, "elec"), counter (image, ray)),
 * "mr/phase" and "mr/mask" (counter (image, k)), "mr/noise" (counter
 * (coil * H * W / 2 + pixel / 2, image), single-precision normals of
 * ms_rng_normal4). FFTW plans are
 * made with FFTW_ESTIMATE on 64-byte aligned buffers and run with the
 * new-array execute functions, so a result does not depend on which thread
 * computes it or on timing (FFTW_MEASURE would pick algorithms by timing and
 * could change the last bits from run to run). Projection and
 * back-projection sum each ray and pixel in a fixed order.
 *
 * Ownership: _system_new allocates, _system_free releases (NULL is a
 * no-op). Create systems on one thread (the FFTW planner is not
 * thread-safe); run _acquire and the other calls on any threads at once.
 * Output buffers belong to the caller. */
#ifndef MEDSYNTH_PHYSICS_H
#define MEDSYNTH_PHYSICS_H

#include <stddef.h>
#include <stdint.h>

#include "medsynth/phantom.h"
#include "medsynth/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- CT ------------------------------------------------------------------ */

typedef enum { MS_CT_PARALLEL, MS_CT_FAN, MS_CT_GEOMETRY_COUNT } ms_ct_geometry;
const char *ms_ct_geometry_name(ms_ct_geometry g);
ms_ct_geometry ms_ct_geometry_from_name(const char *name); /* _COUNT if unknown */

typedef enum { MS_FBP_RAMP, MS_FBP_SHEPP_LOGAN, MS_FBP_HANN, MS_FBP_FILTER_COUNT } ms_fbp_filter;
const char *ms_fbp_filter_name(ms_fbp_filter f); /* "ramp", "shepp-logan", "hann" */
ms_fbp_filter ms_fbp_filter_from_name(const char *name);

#define MS_CT_MU_WATER 0.01929  /* 1/mm at 70 keV */
#define MS_CT_MU_AIR 0.0000213  /* 1/mm at 70 keV */
#define MS_CT_MAX_VIEWS 16384
#define MS_CT_MAX_DETECTORS 16384

typedef struct {
  int width, height;      /* image grid (pixels) */
  double pixel_mm;        /* square pixels */
  ms_ct_geometry geometry; /* default parallel */
  int views;              /* parallel: over 180 degrees (default 360);
                             fan: over 360 degrees (default 720) */
  int detectors;          /* 0 = enough bins to cover the grid's diagonal */
  double detector_mm;     /* bin spacing at the isocentre; 0 = pixel_mm */
  double sod_mm;          /* fan: source to isocentre; default 570 */
  ms_fbp_filter filter;   /* default ramp */
  double cutoff;          /* filter cut-off, fraction of Nyquist (0, 1]; default 1 */
  double mu_water, mu_air; /* 1/mm; defaults above */
  double photons_per_mas; /* unattenuated photons per ray per mAs; default 2000 */
  double dose_mas;        /* the requested (low) dose; default 25 */
  double full_dose_mas;   /* the full dose; default 100 */
  double electronic_sd;   /* electronic noise sd in photon counts; default 5 */
  int beam_hardening;     /* 1: polychromatic two-material (water/bone) beam with
                             water precorrection, streaks near bone
                             (docs/physics.md); default 0 (monochromatic) */
} ms_ct_params;

void ms_ct_params_init(ms_ct_params *c, int width, int height, double pixel_mm);
/* Every problem at once; locations name the parameter ("views", "dose"). */
ms_status ms_ct_params_check(const ms_ct_params *c, ms_diag *d);

typedef struct ms_ct_system ms_ct_system;
ms_status ms_ct_system_new(ms_ct_system **out, const ms_ct_params *c, ms_diag *d);
void ms_ct_system_free(ms_ct_system *s);
/* The effective parameters (defaults resolved: detectors, detector_mm). */
const ms_ct_params *ms_ct_system_params(const ms_ct_system *s);
/* views * detectors. */
size_t ms_ct_sinogram_len(const ms_ct_system *s);

void ms_ct_hu_to_mu(const ms_ct_params *c, float *mu /* [n] */, const float *hu /* [n] */, size_t n);
void ms_ct_mu_to_hu(const ms_ct_params *c, float *hu /* [n] */, const float *mu /* [n] */, size_t n);

/* Line integrals of mu (1/mm) in the system's geometry: sino [views][detectors]. */
void ms_ct_project(const ms_ct_system *s, float *sino, const float *mu /* [H][W] */);
/* Noisy measured line integrals at I0 photons per ray: out[r] from clean[r]
 * (the same array is allowed). Draws keyed by (seed, stream, index, ray). */
void ms_ct_noise(const ms_ct_system *s, float *out /* [views][det] */, const float *clean, double i0,
                 uint64_t seed, uint64_t stream, uint64_t index);
/* Filtered back-projection of a sinogram in the system's geometry to mu. */
ms_status ms_ct_fbp(const ms_ct_system *s, float *mu /* [H][W] */, const float *sino /* [views][det] */,
                    ms_diag *d);
/* One row: truth (HU) -> measured sinogram at dose_mas, and HU
 * reconstructions at dose_mas (low) and full_dose_mas (full) from the same
 * noise-free projection. sino may be NULL when not wanted. */
ms_status ms_ct_acquire(const ms_ct_system *s, float *sino, float *low_hu /* [H][W] */,
                        float *full_hu /* [H][W] */, const float *truth_hu /* [H][W] */, uint64_t seed,
                        uint64_t index, ms_diag *d);

/* ms_ct_acquire at other doses than the system's (per-row doses): the same
 * bytes as ms_ct_acquire of a system made with these doses. A dose that
 * ms_ct_params_check refuses is MS_ERR_INVALID, located "dose" or
 * "full_dose". */
ms_status ms_ct_acquire_at(const ms_ct_system *s, float *sino, float *low_hu, float *full_hu,
                           const float *truth_hu, double dose_mas, double full_dose_mas, uint64_t seed,
                           uint64_t index, ms_diag *d);

/* A keyed Poisson draw of mean lambda >= 0 (inversion below 10, Hormann's
 * PTRS above), from blocks (index, lane_base + k) of key. Exposed for tests. */
uint64_t ms_ct_poisson(uint32_t key0, uint32_t key1, uint64_t index, uint64_t lane_base, double lambda);

/* ---- MR ------------------------------------------------------------------ */

typedef enum { MS_MR_MASK_EQUISPACED, MS_MR_MASK_RANDOM, MS_MR_MASK_COUNT } ms_mr_mask_kind;
const char *ms_mr_mask_kind_name(ms_mr_mask_kind k);
ms_mr_mask_kind ms_mr_mask_kind_from_name(const char *name);

typedef struct {
  int width, height;        /* even; columns (the last axis) are phase encodes */
  double pixel_mm;
  int coils;                /* 1..64; default 8 */
  double coil_radius;       /* ring radius, fraction of the field of view; default 0.75 */
  double coil_width;        /* sensitivity fall-off length, fraction of the FOV; default 0.5 */
  double acceleration;      /* R >= 1; default 4 */
  double center_fraction;   /* (0, 1); default 0.08 */
  ms_mr_mask_kind mask;     /* default equispaced */
  double partial_fourier;   /* (0.5, 1]: the sampled share of the phase-encode
                               axis; the columns from round(W * pf) on (the
                               highest frequencies of one side) are never
                               sampled, the mask samples round(W * pf / R)
                               columns of the others; default 1 (off) */
  double noise_sd;          /* complex noise sd per sample (signal units); default 0 */
  double phase_amp;         /* peak of the smooth phase (radians); default 1 */
  int lowres_factor;        /* > 1: also a low-resolution image from the centre
                               H/f x W/f of k-space (super-resolution input);
                               default 1 (off) */
} ms_mr_params;

void ms_mr_params_init(ms_mr_params *m, int width, int height, double pixel_mm);
ms_status ms_mr_params_check(const ms_mr_params *m, ms_diag *d);

typedef struct ms_mr_system ms_mr_system;
ms_status ms_mr_system_new(ms_mr_system **out, const ms_mr_params *m, ms_diag *d);
void ms_mr_system_free(ms_mr_system *s);
/* Sampled columns of every mask of this system (center + the rest):
 * round(W * partial_fourier / R). */
int ms_mr_mask_lines(const ms_mr_system *s);
/* Coil sensitivities, complex interleaved: [coils][H][W][2]. Borrowed. */
const float *ms_mr_system_maps(const ms_mr_system *s);

/* Centred orthonormal 2-D DFT of one complex image [H][W][2] (in place). */
ms_status ms_mr_fft2c(const ms_mr_system *s, float *x, int inverse, ms_diag *d);
/* Undersampling mask of image `index`: mask[W], 1 = column sampled. */
void ms_mr_mask(const ms_mr_system *s, uint8_t *mask /* [W] */, uint64_t seed, uint64_t index);

typedef struct {
  float *kspace;   /* [coils][H][W][2], fully sampled, with noise */
  uint8_t *mask;   /* [W] */
  float *rss;      /* [H][W] RSS of the fully sampled coil images */
  float *zf;       /* [H][W] RSS of the zero-filled undersampled coil images */
  float *lowres;   /* [H/f][W/f] RSS from the k-space centre when lowres_factor
                      f > 1 (NULL: not wanted) */
} ms_mr_output;

/* The complex noise sd that matches a phantom's Rician noise setting:
 * p->mr_noise x the white-matter reference signal of p->modality (0 when
 * p->noise is off). */
double ms_mr_phantom_noise_sd(const ms_phantom_params *p);

/* One row: magnitude truth [H][W] -> the outputs (caller's buffers). */
ms_status ms_mr_acquire(const ms_mr_system *s, const ms_mr_output *out, const float *magnitude,
                        uint64_t seed, uint64_t index, ms_diag *d);
/* ms_mr_acquire with this row's own undersampling (per-row acceleration
 * and centre fraction): the same bytes as ms_mr_acquire of a system made
 * with these values. Values that ms_mr_params_check refuses are
 * MS_ERR_INVALID, located "acceleration" or "center_fraction". */
ms_status ms_mr_acquire_at(const ms_mr_system *s, const ms_mr_output *out, const float *magnitude,
                           double acceleration, double center_fraction, uint64_t seed, uint64_t index,
                           ms_diag *d);

#ifdef __cplusplus
}
#endif
#endif
