/* Brain subjects on the atlas: random affine + diffeomorphic deformation,
 * nearest-neighbour labels, MR physics or randomised intensities, bias
 * field, blur, Rician noise (medsynth/brain.h; docs/phantoms.md, "Brain").
 *
 * Deformation. The stationary velocity v lives on a fixed 32^3 grid of 8 mm
 * nodes centred on the brain (the "field grid", +-124 mm, independent of the
 * output size so one subject renders at any resolution). v is a trilinear
 * upsampling of independent normals (sd deform_mm) on a control grid of
 * deform_spacing_mm, smoothed by a Gaussian of sd deform_spacing_mm / 4,
 * plus the age term. phi = exp(v) by scaling and squaring (Arsigny et al.,
 * MICCAI 2006): u = v / 2^6, then six times u(x) <- u(x) + u(x + u(x)), with
 * trilinear interpolation. The Jacobian determinant of x + u(x) is checked
 * on every node by central differences (ms_brain_image.min_jacobian).
 *
 * Age. Lateral ventricle volume is taken to grow by 2 % a year after 30
 * (x2.7 at 80; ventricular expansion of 1..4 %/year is reported in
 * longitudinal ageing studies, e.g. Fjell et al., Cerebral Cortex 2009). The
 * velocity gets -k (x - c) exp(-|x - c|^2 / (2 * 30^2)) around each
 * ventricle centroid c, k = ln(1.02) (age - 30) / 3: the flow then shrinks
 * the atlas neighbourhood of the ventricle by e^-k per axis, i.e. the
 * subject's ventricle grows by about e^3k (less at its far ends, where the
 * Gaussian has decayed; the realised volumes are measured).
 *
 * Invariant: every value is a pure function of (atlas, params, seed, index)
 * and of the voxel; work is split into rows or planes whose results do not
 * depend on the split. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/names.h"
#include "core/pool.h"
#include "medsynth/brain.h"
#include "medsynth/rng.h"
#include "phantom/brain_internal.h"

#define FG 32        /* field grid nodes per axis */
#define FG_MM 8.0    /* node spacing */
#define NC_MAX 17    /* control nodes per axis at the smallest spacing, 16 mm */
#define FG_ORIGIN (-0.5 * (FG - 1) * FG_MM)
#define FG_N ((size_t)FG * FG * FG)
#define SQUARINGS 6
#define BIAS_G 5
#define AGE_SIGMA_MM 30.0 /* reach of the ventricle growth term */     /* bias field control nodes per axis */

typedef struct {
  float *u, *tmp, *aux; /* 3 x FG_N each: displacement, work, age term */
  double *ctrl;         /* 3 x NC_MAX^3 control-point velocities */
  float *work;          /* n_voxels: blur ping-pong */
  double *counts;       /* D x MS_BRAIN_TISSUE_COUNT */
  double *jmin;         /* FG per-plane Jacobian minima */
} scratch;

static const char *const k_contrast[MS_BRAIN_CONTRAST_COUNT] = {"t1", "t2", "flair", "pd", "ct"};
static const char *const k_intensity[MS_BRAIN_INTENSITY_COUNT] = {"physics", "random"};
static const char *const k_sequence[MS_BRAIN_SEQUENCE_COUNT] = {"spin_echo", "inversion_recovery", "gradient_echo"};
static const char *const k_orientation[MS_BRAIN_ORIENTATION_COUNT] = {"axial", "coronal", "sagittal"};

MS__NAME_FNS(ms_brain_orientation_name, ms_brain_orientation_from_name, ms_brain_orientation, k_orientation,
             MS_BRAIN_ORIENTATION_COUNT, NULL)

/* Radiological display: axial with the patient's right on the image's left
 * and anterior up; coronal with right on the left and superior up; sagittal
 * with anterior on the left and superior up. Planes go superior, anterior,
 * right. */
void ms_brain_axes(ms_brain_orientation o, double axes[9]) {
  static const double k_axes[MS_BRAIN_ORIENTATION_COUNT][9] = {
      {-1, 0, 0, 0, -1, 0, 0, 0, 1}, {-1, 0, 0, 0, 0, 1, 0, -1, 0}, {0, 0, 1, -1, 0, 0, 0, -1, 0}};
  memcpy(axes, k_axes[(unsigned)o < MS_BRAIN_ORIENTATION_COUNT ? o : 0], 9 * sizeof *axes);
}

MS__NAME_FNS(ms_brain_contrast_name, ms_brain_contrast_from_name, ms_brain_contrast, k_contrast,
             MS_BRAIN_CONTRAST_COUNT, NULL)
MS__NAME_FNS(ms_brain_intensity_name, ms_brain_intensity_from_name, ms_brain_intensity, k_intensity,
             MS_BRAIN_INTENSITY_COUNT, NULL)
const char *ms_brain_sequence_name(ms_brain_sequence s) {
  return ms__name_of(k_sequence, MS_BRAIN_SEQUENCE_COUNT, (int)s, NULL);
}

/* PD (fraction of water), T1, T2 (ms) at 1.5 T and 3 T. GM/WM: Stanisz et
 * al., MRM 54:507 (2005), rounded; CSF: T1 ~ 4 s, T2 ~ 2 s (free water);
 * PD: relative water content (WM 0.69, GM 0.80, CSF 1). Deep GM, cerebellum
 * and brainstem take intermediate values; skull: cortical bone (almost no
 * signal); scalp: subcutaneous fat. docs/phantoms.md tabulates them. */
static const struct {
  double pd, t1[2], t2[2];
} k_mr[MS_BRAIN_TISSUE_COUNT] = {
    [MS_BRAIN_BACKGROUND] = {0.0, {1, 1}, {1, 1}},
    [MS_BRAIN_CSF] = {1.0, {4000, 4300}, {2000, 1800}},
    [MS_BRAIN_CORTICAL_GM] = {0.80, {1120, 1820}, {95, 99}},
    [MS_BRAIN_WM] = {0.69, {880, 1080}, {72, 69}},
    [MS_BRAIN_VENTRICLE] = {1.0, {4000, 4300}, {2000, 1800}},
    [MS_BRAIN_DEEP_GM] = {0.77, {1000, 1400}, {85, 80}},
    [MS_BRAIN_CEREBELLAR_GM] = {0.82, {1150, 1800}, {95, 95}},
    [MS_BRAIN_CEREBELLAR_WM] = {0.70, {900, 1100}, {75, 70}},
    [MS_BRAIN_BRAINSTEM] = {0.72, {950, 1200}, {80, 75}},
    [MS_BRAIN_SKULL] = {0.05, {300, 350}, {5, 5}},
    [MS_BRAIN_SCALP] = {0.90, {260, 370}, {80, 70}},
    [MS_BRAIN_TUMOUR_OEDEMA] = {0.86, {1150, 1650}, {150, 140}},
    [MS_BRAIN_TUMOUR_ENHANCING] = {0.85, {1100, 1500}, {110, 100}},
    [MS_BRAIN_TUMOUR_NECROSIS] = {0.95, {2500, 3200}, {300, 250}},
    [MS_BRAIN_WM_LESION] = {0.75, {1200, 1600}, {130, 120}},
    [MS_BRAIN_STROKE] = {0.90, {1500, 2200}, {200, 180}},
};
/* Enhancing rim after gadolinium: T1 shortened to about a third. */
static const double k_rim_gd_t1[2] = {350, 450};

/* Typical unenhanced head CT values (HU): grey matter 35-40, white matter
 * 25-30, CSF 0-15, cortical bone ~1000 and more, fat -100 (the scalp label
 * mixes fat, skin and muscle: -20); oedema is darker than white matter,
 * necrosis near fluid, the tumour rim enhances with contrast. */
static const double k_hu[MS_BRAIN_TISSUE_COUNT] = {
    [MS_BRAIN_BACKGROUND] = -1000, [MS_BRAIN_CSF] = 8,          [MS_BRAIN_CORTICAL_GM] = 38,
    [MS_BRAIN_WM] = 28,            [MS_BRAIN_VENTRICLE] = 8,    [MS_BRAIN_DEEP_GM] = 36,
    [MS_BRAIN_CEREBELLAR_GM] = 38, [MS_BRAIN_CEREBELLAR_WM] = 28, [MS_BRAIN_BRAINSTEM] = 32,
    [MS_BRAIN_SKULL] = 1000,       [MS_BRAIN_SCALP] = -20,      [MS_BRAIN_TUMOUR_OEDEMA] = 20,
    [MS_BRAIN_TUMOUR_ENHANCING] = 40, [MS_BRAIN_TUMOUR_NECROSIS] = 15, [MS_BRAIN_WM_LESION] = 22,
    [MS_BRAIN_STROKE] = 16};

double ms_brain_tissue_hu(int label, int contrast_agent) {
  if (label < 0 || label >= MS_BRAIN_TISSUE_COUNT) return NAN;
  return label == MS_BRAIN_TUMOUR_ENHANCING && contrast_agent ? 80 : k_hu[label];
}

ms_brain_tissue_mr ms_brain_tissue_mr_params(int label, double field_t) {
  ms_brain_tissue_mr r = {0, 1, 1};
  if (label < 0 || label >= MS_BRAIN_TISSUE_COUNT) return r;
  int f = field_t > 2.25;
  r.pd = k_mr[label].pd;
  r.t1_ms = k_mr[label].t1[f];
  r.t2_ms = k_mr[label].t2[f];
  return r;
}

void ms_brain_params_init(ms_brain_params *p) {
  memset(p, 0, sizeof *p);
  p->dims[0] = 181;
  p->dims[1] = 217;
  p->dims[2] = 181;
  p->spacing_mm[0] = p->spacing_mm[1] = p->spacing_mm[2] = 1;
  p->deform_mm = 3;
  p->deform_spacing_mm = 32;
  p->rotate_deg = 8;
  p->scale_sd = 0.05;
  p->shift_mm = 3;
  p->head_scale = NAN;
  p->age_years = NAN;
  p->atrophy_mm_per_year = 0.01;
  p->tumour_lobe = MS_BRAIN_LOBE_ANY;
  p->tumour_diameter_mm = NAN;
  p->wm_load_ml = NAN;
  p->stroke_radius_mm = NAN;
  p->stroke_side = -1;
  p->intensity = MS_BRAIN_PHYSICS;
  p->contrast = MS_BRAIN_T1;
  p->sequence = MS_BRAIN_SEQUENCE_COUNT;
  p->field_t = 3;
  p->flip_deg = 15;
  p->texture = 0.03;
  p->bias = 0.2;
  p->blur_mm[0] = p->blur_mm[1] = p->blur_mm[2] = 0.5;
  p->noise = 0.02;
  p->ct_noise_hu = 5;
  p->max_bytes = (size_t)4 << 30;
}

static ms_status bytes_of(const ms_brain_params *p, size_t *nv, size_t *bytes) {
  size_t n = 1;
  for (int i = 0; i < 3; i++) {
    if (p->dims[i] < 1 || p->dims[i] > 4096) return MS_ERR_RANGE;
    if (n > SIZE_MAX / (size_t)p->dims[i]) return MS_ERR_RANGE;
    n *= (size_t)p->dims[i];
  }
  if (n > SIZE_MAX / 16) return MS_ERR_RANGE;
  *nv = n;
  *bytes = n * 10 + (size_t)p->dims[2] * MS_BRAIN_TISSUE_COUNT * sizeof(double) + 9 * FG_N * sizeof(float) + 3 * NC_MAX * NC_MAX * NC_MAX * sizeof(double);
  return MS_OK;
}

#define CHECK(cond, where, ...)                                     \
  do {                                                              \
    if (!(cond)) st = ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, where, __VA_ARGS__); \
  } while (0)

ms_status ms_brain_params_check(const ms_brain_params *p, ms_diag *d) {
  ms_status st = MS_OK;
  for (int i = 0; i < 3; i++) {
    CHECK(p->dims[i] >= 1 && p->dims[i] <= 4096, "dims", "size %d out of 1..4096", p->dims[i]);
    CHECK(p->spacing_mm[i] >= 0.1 && p->spacing_mm[i] <= 20, "spacing_mm", "spacing %g out of 0.1..20 mm",
          p->spacing_mm[i]);
    CHECK(p->blur_mm[i] >= 0 && p->blur_mm[i] <= 10, "blur_mm", "blur %g out of 0..10 mm", p->blur_mm[i]);
  }
  CHECK(fabs(p->slice_z_mm) <= 150, "slice_z_mm", "%g out of -150..150 mm", p->slice_z_mm);
  CHECK((unsigned)p->orientation < MS_BRAIN_ORIENTATION_COUNT, "orientation", "unknown orientation %d",
        (int)p->orientation);
  CHECK(p->deform_mm >= 0 && p->deform_mm <= 10, "deform_mm", "%g out of 0..10 mm", p->deform_mm);
  CHECK(p->deform_spacing_mm >= 16 && p->deform_spacing_mm <= 128, "deform_spacing_mm", "%g out of 16..128 mm",
        p->deform_spacing_mm);
  CHECK(p->rotate_deg >= 0 && p->rotate_deg <= 45, "rotate_deg", "%g out of 0..45", p->rotate_deg);
  CHECK(p->scale_sd >= 0 && p->scale_sd <= 0.3, "scale_sd", "%g out of 0..0.3", p->scale_sd);
  CHECK(p->shift_mm >= 0 && p->shift_mm <= 30, "shift_mm", "%g out of 0..30 mm", p->shift_mm);
  CHECK(isnan(p->head_scale) || (p->head_scale >= 0.7 && p->head_scale <= 1.3), "head_scale", "%g out of 0.7..1.3",
        p->head_scale);
  CHECK(isnan(p->age_years) || (p->age_years >= 18 && p->age_years <= 100), "age_years", "%g out of 18..100",
        p->age_years);
  CHECK(p->atrophy_mm_per_year >= 0 && p->atrophy_mm_per_year <= 0.1, "atrophy_mm_per_year", "%g out of 0..0.1",
        p->atrophy_mm_per_year);
  CHECK(p->tumour == 0 || p->tumour == 1, "tumour", "%d: 0 (none) or 1", p->tumour);
  CHECK((unsigned)p->tumour_lobe < MS_BRAIN_LOBE_COUNT, "tumour_lobe", "unknown lobe %d", (int)p->tumour_lobe);
  CHECK(isnan(p->tumour_diameter_mm) || (p->tumour_diameter_mm >= 10 && p->tumour_diameter_mm <= 70),
        "tumour_diameter_mm", "%g out of 10..70 mm", p->tumour_diameter_mm);
  CHECK(p->gadolinium == 0 || p->gadolinium == 1, "gadolinium", "%d: 0 or 1", p->gadolinium);
  CHECK(p->wm_lesions >= 0 && p->wm_lesions <= MS_BRAIN_MAX_WM_LESIONS, "wm_lesions", "%d out of 0..%d",
        p->wm_lesions, MS_BRAIN_MAX_WM_LESIONS);
  CHECK(isnan(p->wm_load_ml) || (p->wm_load_ml >= 0 && p->wm_load_ml <= 200), "wm_load_ml", "%g out of 0..200 ml",
        p->wm_load_ml);
  CHECK((unsigned)p->stroke < MS_BRAIN_TERRITORY_COUNT, "stroke", "unknown territory %d", (int)p->stroke);
  CHECK(isnan(p->stroke_radius_mm) || (p->stroke_radius_mm >= 5 && p->stroke_radius_mm <= 80), "stroke_radius_mm",
        "%g out of 5..80 mm", p->stroke_radius_mm);
  CHECK(p->stroke_side >= -1 && p->stroke_side <= 1, "stroke_side", "%d: 0 (left), 1 (right) or -1 (drawn)",
        p->stroke_side);
  CHECK((unsigned)p->intensity < MS_BRAIN_INTENSITY_COUNT, "intensity", "unknown intensity mode %d", (int)p->intensity);
  CHECK((unsigned)p->contrast < MS_BRAIN_CONTRAST_COUNT, "contrast", "unknown contrast %d", (int)p->contrast);
  CHECK((unsigned)p->sequence <= MS_BRAIN_SEQUENCE_COUNT, "sequence", "unknown sequence %d", (int)p->sequence);
  CHECK(p->field_t == 1.5 || p->field_t == 3, "field_t", "%g T: tissue values exist for 1.5 and 3", p->field_t);
  CHECK(p->tr_ms >= 0 && p->tr_ms <= 30000, "tr_ms", "%g out of 0..30000", p->tr_ms);
  CHECK(p->te_ms >= 0 && p->te_ms <= 1000, "te_ms", "%g out of 0..1000", p->te_ms);
  CHECK(p->ti_ms >= 0 && p->ti_ms <= 10000, "ti_ms", "%g out of 0..10000", p->ti_ms);
  CHECK(p->flip_deg > 0 && p->flip_deg <= 180, "flip_deg", "%g out of 0..180", p->flip_deg);
  CHECK(p->texture >= 0 && p->texture <= 0.5, "texture", "%g out of 0..0.5", p->texture);
  CHECK(p->bias >= 0 && p->bias <= 1, "bias", "%g out of 0..1", p->bias);
  CHECK(p->noise >= 0 && p->noise <= 1, "noise", "%g out of 0..1", p->noise);
  CHECK(p->ct_noise_hu >= 0 && p->ct_noise_hu <= 200, "ct_noise_hu", "%g out of 0..200", p->ct_noise_hu);
  CHECK(p->contrast != MS_BRAIN_CT || p->intensity == MS_BRAIN_PHYSICS, "contrast",
        "CT has physics intensities only (HU per tissue)");
  size_t nv, bytes;
  int dims_ok = p->dims[0] >= 1 && p->dims[1] >= 1 && p->dims[2] >= 1 && p->dims[0] <= 4096 && p->dims[1] <= 4096 &&
                p->dims[2] <= 4096;
  if (dims_ok && (bytes_of(p, &nv, &bytes) != MS_OK || bytes > p->max_bytes))
    st = ms_diag_add(d, MS_ERR_RANGE, NULL, 0, 0, "dims", "a %dx%dx%d volume needs more than the %zu bytes allowed",
                     p->dims[0], p->dims[1], p->dims[2], p->max_bytes);
  return st;
}

ms_status ms_brain_image_init(ms_brain_image *img, const ms_brain_params *p, ms_diag *d) {
  memset(img, 0, sizeof *img);
  ms_status st = ms_brain_params_check(p, d);
  if (st != MS_OK) return st;
  size_t nv = 0, bytes = 0;
  bytes_of(p, &nv, &bytes);
  scratch *s = ms__calloc(1, sizeof *s);
  img->scratch = s;
  img->n_voxels = nv;
  if (s) {
    s->u = ms__malloc(3 * FG_N * sizeof(float));
    s->tmp = ms__malloc(3 * FG_N * sizeof(float));
    s->aux = ms__malloc(3 * FG_N * sizeof(float));
    s->ctrl = ms__malloc(3 * NC_MAX * NC_MAX * NC_MAX * sizeof(double));
    s->work = ms__malloc(nv * sizeof(float));
    s->counts = ms__malloc((size_t)p->dims[2] * MS_BRAIN_TISSUE_COUNT * sizeof(double));
    s->jmin = ms__malloc(FG * sizeof(double));
  }
  img->image = ms__malloc(nv * sizeof(float));
  img->labels = ms__malloc(nv);
  img->aal = ms__malloc(nv);
  if (!s || !s->u || !s->tmp || !s->aux || !s->ctrl || !s->work || !s->counts || !s->jmin || !img->image || !img->labels || !img->aal) {
    ms_brain_image_deinit(img);
    return ms_diag_add(d, MS_ERR_NOMEM, NULL, 0, 0, NULL, "out of memory for a %dx%dx%d brain volume", p->dims[0],
                       p->dims[1], p->dims[2]);
  }
  for (int i = 0; i < 3; i++) {
    img->dims[i] = p->dims[i];
    img->spacing[i] = p->spacing_mm[i];
  }
  return MS_OK;
}

void ms_brain_image_deinit(ms_brain_image *img) {
  scratch *s = img->scratch;
  if (s) {
    free(s->u);
    free(s->tmp);
    free(s->aux);
    free(s->ctrl);
    free(s->work);
    free(s->counts);
    free(s->jmin);
    free(s);
  }
  free(img->image);
  free(img->labels);
  free(img->aal);
  memset(img, 0, sizeof *img);
}

/* ---- the deformation field ---- */

static inline void field_sample(const float *u, double x, double y, double z, double out[3]) {
  /* single precision: the field is stored in float, and this is the
     innermost operation of the squarings and of every voxel's look-up */
  float q[3] = {(float)((x - FG_ORIGIN) * (1.0 / FG_MM)), (float)((y - FG_ORIGIN) * (1.0 / FG_MM)),
                (float)((z - FG_ORIGIN) * (1.0 / FG_MM))};
  int i0[3];
  float f[3];
  for (int c = 0; c < 3; c++) {
    float t = q[c] < 0 ? 0 : q[c] > FG - 1 ? (float)(FG - 1) : q[c];
    i0[c] = (int)t;
    if (i0[c] > FG - 2) i0[c] = FG - 2;
    f[c] = t - (float)i0[c];
  }
  size_t base = ((size_t)i0[2] * FG + i0[1]) * FG + i0[0];
  float w00 = (1 - f[0]) * (1 - f[1]), w10 = f[0] * (1 - f[1]), w01 = (1 - f[0]) * f[1], w11 = f[0] * f[1];
  for (int c = 0; c < 3; c++) {
    const float *g = u + c * FG_N + base, *h = g + FG * FG;
    float c0 = w00 * g[0] + w10 * g[1] + w01 * g[FG] + w11 * g[FG + 1];
    float c1 = w00 * h[0] + w10 * h[1] + w01 * h[FG] + w11 * h[FG + 1];
    out[c] = c0 + f[2] * (c1 - c0);
  }
}

static inline double node_mm(int i) { return FG_ORIGIN + i * FG_MM; }

typedef struct {
  const ms_brain_atlas *a;
  const ms_brain_params *p;
  ms_rng_key kvel;
  uint64_t index;
  int nc;
  const double *ctrl; /* [node][3] */
  double k_age;
  float *u, *tmp, *aux;
  const float *src;
  float *dst;
  double *jmin;
  int axis;
  double kern[64];
  int krad;
} field_ctx;

/* Velocity: the random part (trilinear from the control grid) into tmp,
 * the age term into aux. */
static void velocity_planes(void *vc, size_t k0, size_t k1) {
  field_ctx *c = vc;
  int nc = c->nc;
  double span = (FG - 1) * FG_MM;
  for (size_t k = k0; k < k1; k++)
    for (int j = 0; j < FG; j++)
      for (int i = 0; i < FG; i++) {
        double p[3] = {node_mm(i), node_mm(j), node_mm((int)k)}, v[3] = {0, 0, 0}, g[3] = {0, 0, 0};
        if (c->p->deform_mm > 0) {
          double q[3];
          int q0[3];
          for (int a = 0; a < 3; a++) {
            q[a] = (p[a] - FG_ORIGIN) / span * (nc - 1);
            q0[a] = (int)q[a];
            if (q0[a] > nc - 2) q0[a] = nc - 2;
            q[a] -= q0[a];
          }
          for (int corner = 0; corner < 8; corner++) {
            int dx = corner & 1, dy = (corner >> 1) & 1, dz = corner >> 2;
            double w = (dx ? q[0] : 1 - q[0]) * (dy ? q[1] : 1 - q[1]) * (dz ? q[2] : 1 - q[2]);
            uint64_t node = ((uint64_t)(q0[2] + dz) * (uint64_t)nc + (uint64_t)(q0[1] + dy)) * (uint64_t)nc +
                            (uint64_t)(q0[0] + dx);
            for (int comp = 0; comp < 3; comp++) v[comp] += w * c->ctrl[node * 3 + (uint64_t)comp];
          }
        }
        for (int s = 0; s < 2 && c->k_age > 0; s++) {
          const double *vc2 = c->a->ventricle_centre[s];
          double r2 = 0, dd[3];
          for (int a = 0; a < 3; a++) {
            dd[a] = p[a] - vc2[a];
            r2 += dd[a] * dd[a];
          }
          double e = exp(-r2 / (2 * AGE_SIGMA_MM * AGE_SIGMA_MM));
          for (int a = 0; a < 3; a++) g[a] += -c->k_age * dd[a] * e;
        }
        size_t n = ((size_t)k * FG + j) * FG + i;
        for (int comp = 0; comp < 3; comp++) {
          c->tmp[comp * FG_N + n] = (float)v[comp];
          c->aux[comp * FG_N + n] = (float)g[comp];
        }
      }
}

/* Separable Gaussian along c->axis, src -> dst (borders clamped). Task t
 * is the slab of lines at coordinate t of the last axis other than c->axis;
 * each line is copied with its clamped margins into a buffer first. */
static void smooth_lines(void *vc, size_t t0, size_t t1) {
  field_ctx *c = vc;
  const size_t st[3] = {1, FG, (size_t)FG * FG};
  int ax = c->axis, o1 = ax == 0 ? 1 : 0, o2 = ax == 2 ? 1 : 2, r = c->krad;
  float buf[FG + 64];
  for (size_t t = t0; t < t1; t++)
    for (int q = 0; q < FG; q++) {
      size_t base = t * st[o2] + (size_t)q * st[o1];
      for (int comp = 0; comp < 3; comp++) {
        const float *src = c->src + comp * FG_N + base;
        float *dst = c->dst + comp * FG_N + base;
        for (int p = -r; p < FG + r; p++) buf[p + r] = src[(size_t)(p < 0 ? 0 : p > FG - 1 ? FG - 1 : p) * st[ax]];
        for (int p = 0; p < FG; p++) {
          double acc = 0;
          for (int m = 0; m <= 2 * r; m++) acc += c->kern[m] * buf[p + m];
          dst[(size_t)p * st[ax]] = (float)acc;
        }
      }
    }
}

/* u = (u + aux) / 2^SQUARINGS, in place. */
static void finish_planes(void *vc, size_t k0, size_t k1) {
  field_ctx *c = vc;
  for (size_t k = k0; k < k1; k++)
    for (size_t n = k * FG * FG; n < (k + 1) * FG * FG; n++)
      for (int comp = 0; comp < 3; comp++)
        c->u[comp * FG_N + n] = (float)(((double)c->u[comp * FG_N + n] + c->aux[comp * FG_N + n]) * (1.0 / (1 << SQUARINGS)));
}

/* One squaring: tmp(x) = u(x) + u(x + u(x)). */
static void square_planes(void *vc, size_t k0, size_t k1) {
  field_ctx *c = vc;
  for (size_t k = k0; k < k1; k++)
    for (int j = 0; j < FG; j++)
      for (int i = 0; i < FG; i++) {
        size_t n = ((size_t)k * FG + j) * FG + i;
        double w[3], x[3] = {node_mm(i), node_mm(j), node_mm((int)k)};
        double du[3] = {c->u[n], c->u[FG_N + n], c->u[2 * FG_N + n]};
        field_sample(c->u, x[0] + du[0], x[1] + du[1], x[2] + du[2], w);
        for (int a = 0; a < 3; a++) c->tmp[a * FG_N + n] = (float)(du[a] + w[a]);
      }
}

static void jacobian_planes(void *vc, size_t k0, size_t k1) {
  field_ctx *c = vc;
  for (size_t k = k0; k < k1; k++) {
    double m = INFINITY;
    if (k > 0 && k < FG - 1)
      for (int j = 1; j < FG - 1; j++)
        for (int i = 1; i < FG - 1; i++) {
          size_t n = ((size_t)k * FG + j) * FG + i;
          const size_t st[3] = {1, FG, (size_t)FG * FG};
          double J[3][3];
          for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++)
              J[a][b] = (a == b) + (c->u[a * FG_N + n + st[b]] - c->u[a * FG_N + n - st[b]]) / (2 * FG_MM);
          double det = J[0][0] * (J[1][1] * J[2][2] - J[1][2] * J[2][1]) -
                       J[0][1] * (J[1][0] * J[2][2] - J[1][2] * J[2][0]) +
                       J[0][2] * (J[1][0] * J[2][1] - J[1][1] * J[2][0]);
          if (det < m) m = det;
        }
    c->jmin[k] = m;
  }
}

/* Builds phi - id in s->u; returns the smallest Jacobian determinant. */
static double build_field(field_ctx *c, scratch *s) {
  c->u = s->u;
  c->tmp = s->tmp;
  c->aux = s->aux;
  c->jmin = s->jmin;
  size_t nctrl = 3 * (size_t)c->nc * (size_t)c->nc * (size_t)c->nc;
  for (size_t q = 0; q < nctrl && c->p->deform_mm > 0; q++)
    s->ctrl[q] = c->p->deform_mm * ms_rng_normal(c->kvel, c->index, q);
  c->ctrl = s->ctrl;
  ms__parallel_range(FG, 1, velocity_planes, c);
  double sigma = c->p->deform_spacing_mm / 4 / FG_MM, sum = 0;
  c->krad = (int)ceil(3 * sigma);
  if (c->krad > 31) c->krad = 31;
  for (int t = -c->krad; t <= c->krad; t++) sum += c->kern[t + c->krad] = exp(-0.5 * t * t / (sigma * sigma));
  for (int t = 0; t <= 2 * c->krad; t++) c->kern[t] /= sum;
  float *bufs[4] = {s->tmp, s->u, s->tmp, s->u};
  for (int axis = 0; axis < 3; axis++) {
    c->axis = axis;
    c->src = bufs[axis];
    c->dst = bufs[axis + 1];
    ms__parallel_range(FG, 1, smooth_lines, c);
  }
  ms__parallel_range(FG, 1, finish_planes, c);
  for (int q = 0; q < SQUARINGS; q++) {
    ms__parallel_range(FG, 1, square_planes, c);
    float *t = c->u;
    c->u = c->tmp;
    c->tmp = t;
  }
  if (c->u != s->u) memcpy(s->u, c->u, 3 * FG_N * sizeof(float));
  c->u = s->u;
  ms__parallel_range(FG, 1, jacobian_planes, c);
  double m = INFINITY;
  for (int k = 0; k < FG; k++)
    if (s->jmin[k] < m) m = s->jmin[k];
  return m;
}

/* ---- rendering ---- */

typedef struct {
  const ms_brain_atlas *a;
  const ms_brain_params *p;
  ms_brain_image *img;
  const float *u;
  double ainv[9], shift[3], axes[9];
  double value[MS_BRAIN_TISSUE_COUNT], spread[MS_BRAIN_TISSUE_COUNT];
  double biasc[BIAS_G * BIAS_G * BIAS_G];
  ms_rng_key ktex, knoise;
  int do_texture;
  /* tumour (atlas RAS mm): radii of core, rim, oedema; outline modulation
   * sum_q amp[q] cos(freq[q] (u . dir[q]) + phase[q]), q < 3 rim/core,
   * q >= 3 added for the oedema. */
  /* cortical thinning: GM at depth d (voxels) becomes CSF where
   * d - 1 + u(P) < thin, u a smooth field with a roughly uniform marginal */
  double thin, aw[3][3], aph[3];
  int tumour;
  double tc[3], r0, r1, r2, amp[6], freq[6], phase[6], dir[6][3];
  /* white-matter lesions (atlas RAS mm): ellipsoids with semi-axis ea[k]
   * along eu[k] and eb[k] across it */
  int n_wml;
  double wc[MS_BRAIN_MAX_WM_LESIONS][3], eu[MS_BRAIN_MAX_WM_LESIONS][3], ea[MS_BRAIN_MAX_WM_LESIONS],
      eb[MS_BRAIN_MAX_WM_LESIONS];
  /* stroke: atlas voxels of territory code stroke_code within stroke_r of sc */
  int stroke_code;
  double sc[3], stroke_r;
  /* blur */
  const float *src;
  float *dst;
  int axis, krad;
  double kern[129];
  double sigma_noise;
  int ct; /* Gaussian noise in HU, no bias field */
  double *counts;
} render_ctx;

static inline void box_muller(ms_rng_key k, uint64_t index, double *n1, double *n2) {
  ms_rng_block b = ms_rng_philox(k, index, 0);
  uint64_t a = (uint64_t)b.v[0] | (uint64_t)b.v[1] << 32, c = (uint64_t)b.v[2] | (uint64_t)b.v[3] << 32;
  double u1 = ((double)(a >> 11) + 0.5) * 0x1p-53, u2 = ((double)(c >> 11) + 0.5) * 0x1p-53;
  double r = sqrt(-2 * log(u1));
  *n1 = r * cos(2 * M_PI * u2);
  *n2 = r * sin(2 * M_PI * u2);
}

/* One normal per voxel, two voxels (2m, 2m + 1) sharing a Box-Muller pair
 * keyed by m: the pair is drawn once while consecutive voxels ask for it. */
static inline double paired_normal(ms_rng_key k, uint64_t v, uint64_t *pair, double nn[2]) {
  if (v >> 1 != *pair) {
    box_muller(k, v >> 1, &nn[0], &nn[1]);
    *pair = v >> 1;
  }
  return nn[v & 1];
}

/* The regional modulation of cortical thinning at atlas point P: the
 * normal CDF of a sum of three random plane waves of about 94 mm
 * wavelength (unit variance), so roughly uniform on (0, 1). */
static double atrophy_field(const render_ctx *c, const double P[3]) {
  double g = 0;
  for (int q = 0; q < 3; q++)
    g += sqrt(2.0 / 3) * cos((P[0] * c->aw[q][0] + P[1] * c->aw[q][1] + P[2] * c->aw[q][2]) / 15 + c->aph[q]);
  return 0.5 * erfc(-g / M_SQRT2);
}

/* The tumour label at atlas point P, or lab where the tumour does not
 * reach. Core and rim share one outline; the oedema's is rougher and
 * replaces only white and grey matter. */
static int tumour_label(const render_ctx *c, const double P[3], int lab) {
  double d[3] = {P[0] - c->tc[0], P[1] - c->tc[1], P[2] - c->tc[2]};
  double r = sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
  if (r >= c->r2 * 1.7) return lab;
  double m[2] = {0, 0};
  if (r > 0)
    for (int q = 0; q < 6; q++)
      m[q >= 3] += c->amp[q] * cos(c->freq[q] * (d[0] * c->dir[q][0] + d[1] * c->dir[q][1] + d[2] * c->dir[q][2]) / r +
                                   c->phase[q]);
  double s = r / (1 + m[0]);
  if (s < c->r0) return MS_BRAIN_TUMOUR_NECROSIS;
  if (s < c->r1) return MS_BRAIN_TUMOUR_ENHANCING;
  if (r / (1 + m[0] + m[1]) < c->r2 && (lab == MS_BRAIN_WM || lab == MS_BRAIN_CORTICAL_GM || lab == MS_BRAIN_DEEP_GM))
    return MS_BRAIN_TUMOUR_OEDEMA;
  return lab;
}

/* MS_BRAIN_WM_LESION where atlas point P lies in one of the lesions. */
static int in_wm_lesion(const render_ctx *c, const double P[3]) {
  for (int k = 0; k < c->n_wml; k++) {
    double d[3] = {P[0] - c->wc[k][0], P[1] - c->wc[k][1], P[2] - c->wc[k][2]};
    double r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
    if (r2 >= c->ea[k] * c->ea[k]) continue;
    double u = d[0] * c->eu[k][0] + d[1] * c->eu[k][1] + d[2] * c->eu[k][2];
    if (u * u / (c->ea[k] * c->ea[k]) + (r2 - u * u) / (c->eb[k] * c->eb[k]) < 1) return 1;
  }
  return 0;
}

/* Labels and noise-free (textured) intensities of rows [r0, r1) (row = k*H + j). */
static void render_rows(void *vc, size_t r0, size_t r1) {
  render_ctx *c = vc;
  const ms_brain_atlas *a = c->a;
  const int W = c->img->dims[0], H = c->img->dims[1], D = c->img->dims[2];
  const double *sp = c->img->spacing, *m = a->inv_affine;
  uint64_t pair = UINT64_MAX; /* paired_normal: none drawn yet */
  double nn[2] = {0, 0};
  for (size_t r = r0; r < r1; r++) {
    int j = (int)(r % (size_t)H), k = (int)(r / (size_t)H);
    for (int i = 0; i < W; i++) {
      size_t v = r * (size_t)W + (size_t)i;
      const double *ax = c->axes;
      double g0 = (i - 0.5 * (W - 1)) * sp[0], g1 = (j - 0.5 * (H - 1)) * sp[1],
             g2 = (k - 0.5 * (D - 1)) * sp[2] + c->p->slice_z_mm;
      double X = ax[0] * g0 + ax[1] * g1 + ax[2] * g2 - c->shift[0], Y = ax[3] * g0 + ax[4] * g1 + ax[5] * g2 - c->shift[1],
             Z = ax[6] * g0 + ax[7] * g1 + ax[8] * g2 - c->shift[2];
      double z[3] = {c->ainv[0] * X + c->ainv[1] * Y + c->ainv[2] * Z, c->ainv[3] * X + c->ainv[4] * Y + c->ainv[5] * Z,
                     c->ainv[6] * X + c->ainv[7] * Y + c->ainv[8] * Z};
      double du[3];
      field_sample(c->u, z[0], z[1], z[2], du);
      double P[3] = {a->centre[0] + z[0] + du[0], a->centre[1] + z[1] + du[1], a->centre[2] + z[2] + du[2]};
      double vi = m[0] * P[0] + m[1] * P[1] + m[2] * P[2] + m[3], vj = m[4] * P[0] + m[5] * P[1] + m[6] * P[2] + m[7],
             vk = m[8] * P[0] + m[9] * P[1] + m[10] * P[2] + m[11];
      long ii = lround(vi), jj = lround(vj), kk = lround(vk);
      int lab = 0, aal = 0;
      if (ii >= 0 && jj >= 0 && kk >= 0 && ii < a->dims[0] && jj < a->dims[1] && kk < a->dims[2]) {
        size_t av = ((size_t)kk * (size_t)a->dims[1] + (size_t)jj) * (size_t)a->dims[0] + (size_t)ii;
        lab = a->tissue[av];
        aal = a->aal[av];
        if (lab == MS_BRAIN_CORTICAL_GM && c->thin > 0 && a->gm_depth[av] < c->thin + 1 &&
            a->gm_depth[av] - 1 + atrophy_field(c, P) < c->thin)
          lab = MS_BRAIN_CSF;
        if (c->stroke_code && a->territory[av] == c->stroke_code &&
            (lab == MS_BRAIN_CORTICAL_GM || lab == MS_BRAIN_WM || lab == MS_BRAIN_DEEP_GM)) {
          double d0 = P[0] - c->sc[0], d1 = P[1] - c->sc[1], d2 = P[2] - c->sc[2];
          if (d0 * d0 + d1 * d1 + d2 * d2 < c->stroke_r * c->stroke_r) lab = MS_BRAIN_STROKE;
        }
        if (c->n_wml && lab == MS_BRAIN_WM && in_wm_lesion(c, P)) lab = MS_BRAIN_WM_LESION;
      }
      if (c->tumour && ((lab >= MS_BRAIN_CSF && lab <= MS_BRAIN_BRAINSTEM) || lab >= MS_BRAIN_WM_LESION))
        lab = tumour_label(c, P, lab);
      c->img->labels[v] = (uint8_t)lab;
      c->img->aal[v] = (uint8_t)aal;
      double val = c->value[lab];
      if (c->do_texture && c->spread[lab] > 0) val += c->spread[lab] * paired_normal(c->ktex, v, &pair, nn);
      c->img->image[v] = (float)val;
    }
  }
}

/* Bias field and Rician noise, rows [r0, r1). */
static void finish_rows(void *vc, size_t r0, size_t r1) {
  render_ctx *c = vc;
  const int W = c->img->dims[0], H = c->img->dims[1], D = c->img->dims[2];
  uint64_t pair = UINT64_MAX; /* paired_normal: none drawn yet */
  double nn[2] = {0, 0};
  for (size_t r = r0; r < r1; r++) {
    int j = (int)(r % (size_t)H), k = (int)(r / (size_t)H);
    for (int i = 0; i < W; i++) {
      size_t v = r * (size_t)W + (size_t)i;
      double s = c->img->image[v];
      if (c->ct) {
        if (c->sigma_noise > 0) s += c->sigma_noise * paired_normal(c->knoise, v, &pair, nn);
        c->img->image[v] = (float)s;
        continue;
      }
      if (c->p->bias > 0) {
        double q[3] = {W > 1 ? (double)i / (W - 1) * (BIAS_G - 1) : 0, H > 1 ? (double)j / (H - 1) * (BIAS_G - 1) : 0,
                       D > 1 ? (double)k / (D - 1) * (BIAS_G - 1) : 0.5 * (BIAS_G - 1)};
        int q0[3];
        for (int a = 0; a < 3; a++) {
          q0[a] = (int)q[a];
          if (q0[a] > BIAS_G - 2) q0[a] = BIAS_G - 2;
          q[a] -= q0[a];
        }
        double f = 0;
        for (int corner = 0; corner < 8; corner++) {
          int dx = corner & 1, dy = (corner >> 1) & 1, dz = corner >> 2;
          double w = (dx ? q[0] : 1 - q[0]) * (dy ? q[1] : 1 - q[1]) * (dz ? q[2] : 1 - q[2]);
          f += w * c->biasc[((q0[2] + dz) * BIAS_G + q0[1] + dy) * BIAS_G + q0[0] + dx];
        }
        s *= exp(c->p->bias * f);
      }
      if (c->sigma_noise > 0) {
        double n1, n2;
        box_muller(c->knoise, v, &n1, &n2);
        double re = s + c->sigma_noise * n1, im = c->sigma_noise * n2;
        s = sqrt(re * re + im * im);
      }
      c->img->image[v] = (float)s;
    }
  }
}

/* One blur pass along c->axis over lines [l0, l1) of the two other axes. */
static void blur_lines(void *vc, size_t l0, size_t l1) {
  render_ctx *c = vc;
  const int *dm = c->img->dims;
  int ax = c->axis, o1 = ax == 0 ? 1 : 0, o2 = ax == 2 ? 1 : 2;
  size_t st[3] = {1, (size_t)dm[0], (size_t)dm[0] * dm[1]};
  for (size_t l = l0; l < l1; l++) {
    size_t a1 = l % (size_t)dm[o1], a2 = l / (size_t)dm[o1];
    size_t base = a1 * st[o1] + a2 * st[o2];
    for (int t = 0; t < dm[ax]; t++) {
      double acc = 0;
      for (int q = -c->krad; q <= c->krad; q++) {
        int p = t + q;
        p = p < 0 ? 0 : p >= dm[ax] ? dm[ax] - 1 : p;
        acc += c->kern[q + c->krad] * c->src[base + (size_t)p * st[ax]];
      }
      c->dst[base + (size_t)t * st[ax]] = (float)acc;
    }
  }
}

static void count_planes(void *vc, size_t k0, size_t k1) {
  render_ctx *c = vc;
  size_t plane = (size_t)c->img->dims[0] * c->img->dims[1];
  for (size_t k = k0; k < k1; k++) {
    double *cnt = c->counts + k * MS_BRAIN_TISSUE_COUNT;
    uint64_t n[MS_BRAIN_TISSUE_COUNT] = {0};
    for (size_t v = k * plane; v < (k + 1) * plane; v++) n[c->img->labels[v]]++;
    for (int l = 0; l < MS_BRAIN_TISSUE_COUNT; l++) cnt[l] = (double)n[l];
  }
}

static double mr_signal(const ms_brain_params *p, ms_brain_sequence seq, double tr, double te, double ti, int label) {
  ms_brain_tissue_mr t = ms_brain_tissue_mr_params(label, p->field_t);
  if (p->gadolinium && label == MS_BRAIN_TUMOUR_ENHANCING) t.t1_ms = k_rim_gd_t1[p->field_t > 2.25];
  double e1 = exp(-tr / t.t1_ms), e2 = exp(-te / t.t2_ms);
  switch (seq) {
    case MS_BRAIN_INVERSION_RECOVERY: return t.pd * fabs(1 - 2 * exp(-ti / t.t1_ms) + e1) * e2;
    case MS_BRAIN_GRADIENT_ECHO: {
      double al = p->flip_deg * M_PI / 180;
      return t.pd * sin(al) * (1 - e1) / (1 - cos(al) * e1) * e2;
    }
    default: return t.pd * (1 - e1) * e2;
  }
}

/* Sequence and timing of the physics mode, defaults filled in. */
static void sequence_of(const ms_brain_params *p, ms_brain_sequence *seq, double *tr, double *te, double *ti) {
  static const double k_def[MS_BRAIN_CONTRAST_COUNT][2] = {{500, 10}, {4000, 100}, {9000, 120}, {5000, 15}, {500, 10}};
  int c = p->contrast < MS_BRAIN_CONTRAST_COUNT ? (int)p->contrast : 0;
  *seq = p->sequence != MS_BRAIN_SEQUENCE_COUNT ? p->sequence
         : p->contrast == MS_BRAIN_FLAIR        ? MS_BRAIN_INVERSION_RECOVERY
                                                : MS_BRAIN_SPIN_ECHO;
  *tr = p->tr_ms > 0 ? p->tr_ms : k_def[c][0];
  *te = p->te_ms > 0 ? p->te_ms : k_def[c][1];
  /* Default TI nulls CSF: 1 - 2 e^(-TI/T1) + e^(-TR/T1) = 0. */
  double t1 = ms_brain_tissue_mr_params(MS_BRAIN_CSF, p->field_t).t1_ms;
  *ti = p->ti_ms > 0 ? p->ti_ms : -t1 * log((1 + exp(-*tr / t1)) / 2);
}

/* White-matter lesions and the stroke of subject `index` (atlas space). */
static ms_status place_pathology(render_ctx *rc, const ms_brain_atlas *a, const ms_brain_params *p, uint64_t seed,
                                 uint64_t index, ms_brain_image *img, ms_diag *d) {
  rc->n_wml = 0;
  if (p->wm_lesions > 0) {
    ms_rng_key kw = ms_rng_key_make(seed, ms_rng_stream("brain/wm_lesions"));
    size_t lo = a->site_start[1], hi = a->site_start[MS_BRAIN_LOBE_COUNT];
    if (hi <= lo) return ms_diag_add(d, MS_ERR_DATA, NULL, 0, 0, "wm_lesions", "the atlas has no deep white matter");
    int n = p->wm_lesions;
    double load = isnan(p->wm_load_ml) ? n * (0.05 + 0.45 * ms_rng_uniform(kw, index, 0)) : p->wm_load_ml, wsum = 0;
    double w[MS_BRAIN_MAX_WM_LESIONS];
    for (int k = 0; k < n; k++) wsum += w[k] = 0.3 + ms_rng_uniform(kw, index, 1 + (uint64_t)k);
    for (int k = 0; k < n; k++) {
      double vol = 1000 * load * w[k] / wsum, r = cbrt(3 * vol / (4 * M_PI));
      /* Centre: deep white matter, accepted with a probability falling with
       * its distance d beyond 2 mm from the lateral ventricles,
       * exp(-(d - 2) / 6 mm) (periventricular preference); the 32nd
       * candidate is kept. */
      double P[3], vc[3] = {0, 0, 0};
      for (int t = 0; t < 32; t++) {
        uint64_t lane = 100 + (uint64_t)k * 64 + 2 * (uint64_t)t;
        size_t site = lo + (size_t)ms_rng_below(kw, index, lane, hi - lo);
        ms__brain_atlas_ras(a, a->sites[site], &P[0], &P[1], &P[2]);
        double best = INFINITY;
        for (int s = 0; s < 2; s++) {
          double q[3], r2 = 0;
          for (int x = 0; x < 3; x++) {
            q[x] = a->centre[x] + a->ventricle_centre[s][x];
            r2 += (P[x] - q[x]) * (P[x] - q[x]);
          }
          if (r2 < best) {
            best = r2;
            memcpy(vc, q, sizeof vc);
          }
        }
        if (ms_rng_uniform(kw, index, lane + 1) < exp(-fmax(0, a->site_vdist[site] - 2.0) / 6)) break;
      }
      /* Ovoid, 1.5 : 1 : 1, long axis pointing away from the ventricle. */
      double u[3], nu = 0;
      for (int x = 0; x < 3; x++) {
        u[x] = P[x] - vc[x];
        nu += u[x] * u[x];
      }
      nu = sqrt(nu);
      for (int x = 0; x < 3; x++) {
        rc->wc[k][x] = P[x];
        rc->eu[k][x] = nu > 0 ? u[x] / nu : x == 0;
      }
      rc->eb[k] = r / cbrt(1.5);
      rc->ea[k] = 1.5 * rc->eb[k];
    }
    rc->n_wml = n;
  }
  rc->stroke_code = 0;
  img->stroke_side = -1;
  if (p->stroke != MS_BRAIN_TERRITORY_NONE) {
    ms_rng_key ks = ms_rng_key_make(seed, ms_rng_stream("brain/stroke"));
    int side = p->stroke_side >= 0 ? p->stroke_side : ms_rng_uniform(ks, index, 0) < 0.5 ? 0 : 1;
    int code = (int)p->stroke + 3 * side;
    size_t lo = a->stroke_start[code - 1], hi = a->stroke_start[code];
    if (hi <= lo)
      return ms_diag_add(d, MS_ERR_DATA, NULL, 0, 0, "stroke", "the atlas has no %s territory",
                         ms_brain_territory_name(p->stroke));
    size_t site = lo + (size_t)ms_rng_below(ks, index, 1, hi - lo);
    ms__brain_atlas_ras(a, a->stroke_sites[site], &rc->sc[0], &rc->sc[1], &rc->sc[2]);
    rc->stroke_r = isnan(p->stroke_radius_mm) ? 20 + 25 * ms_rng_uniform(ks, index, 2) : p->stroke_radius_mm;
    rc->stroke_code = code;
    img->stroke_side = side;
  }
  return MS_OK;
}

ms_status ms_brain_generate(ms_brain_image *img, const ms_brain_atlas *a, const ms_brain_params *p, uint64_t seed,
                            uint64_t index, ms_diag *d) {
  if (!img->scratch || img->dims[0] != p->dims[0] || img->dims[1] != p->dims[1] || img->dims[2] != p->dims[2])
    return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, "dims", "image buffers were made for other parameters");
  ms_status st = ms_brain_params_check(p, d);
  if (st != MS_OK) return st;
  scratch *s = img->scratch;
  ms_rng_key kaff = ms_rng_key_make(seed, ms_rng_stream("brain/affine"));
  /* Subject: age and affine. */
  double age = isnan(p->age_years) ? 20 + 65 * ms_rng_uniform(kaff, index, 10) : p->age_years;
  double hs = isnan(p->head_scale) ? 1 : p->head_scale;
  double ang[3], sc[3], logsum = 0;
  for (int i = 0; i < 3; i++) {
    ang[i] = (2 * ms_rng_uniform(kaff, index, (uint64_t)i) - 1) * p->rotate_deg * M_PI / 180;
    sc[i] = hs * exp(p->scale_sd * ms_rng_normal(kaff, index, 3 + (uint64_t)i));
    logsum += log(sc[i]);
  }
  render_ctx rc;
  memset(&rc, 0, sizeof rc);
  for (int i = 0; i < 3; i++) rc.shift[i] = p->shift_mm * ms_rng_normal(kaff, index, 6 + (uint64_t)i);
  /* A = R S with R = Rz Ry Rx; A^-1 = S^-1 R^T. */
  double cx = cos(ang[0]), sx = sin(ang[0]), cy = cos(ang[1]), sy = sin(ang[1]), cz = cos(ang[2]), sz = sin(ang[2]);
  double R[9] = {cz * cy, cz * sy * sx - sz * cx, cz * sy * cx + sz * sx, sz * cy, sz * sy * sx + cz * cx,
                 sz * sy * cx - cz * sx, -sy, cy * sx, cy * cx};
  for (int r = 0; r < 3; r++)
    for (int q = 0; q < 3; q++) rc.ainv[r * 3 + q] = R[q * 3 + r] / sc[r];
  /* Deformation. */
  field_ctx fc;
  memset(&fc, 0, sizeof fc);
  fc.a = a;
  fc.p = p;
  fc.kvel = ms_rng_key_make(seed, ms_rng_stream("brain/velocity"));
  fc.index = index;
  fc.nc = (int)ceil((FG - 1) * FG_MM / p->deform_spacing_mm) + 1;
  fc.k_age = age > 30 ? log(1.02) * (age - 30) / 3 : 0;
  img->min_jacobian = build_field(&fc, s);
  img->age_years = age;
  img->head_scale = exp(logsum / 3);
  /* Tissue values. */
  rc.a = a;
  rc.p = p;
  rc.img = img;
  ms_brain_axes(p->orientation, rc.axes);
  rc.u = s->u;
  ms_rng_key kint = ms_rng_key_make(seed, ms_rng_stream("brain/intensity"));
  double vmax = 0;
  if (p->intensity == MS_BRAIN_RANDOM) {
    for (int l = 0; l < MS_BRAIN_TISSUE_COUNT; l++) {
      rc.value[l] = ms_rng_uniform(kint, index, 2 * (uint64_t)l);
      rc.spread[l] = 0.08 * ms_rng_uniform(kint, index, 2 * (uint64_t)l + 1);
    }
    vmax = 1;
  } else if (p->contrast == MS_BRAIN_CT) {
    for (int l = 0; l < MS_BRAIN_TISSUE_COUNT; l++) {
      rc.value[l] = ms_brain_tissue_hu(l, p->gadolinium);
      rc.spread[l] = l == MS_BRAIN_BACKGROUND ? 0 : 1000 * p->texture / 10; /* 3 HU at the default texture */
    }
    vmax = 1;
  } else {
    ms_brain_sequence seq;
    double tr, te, ti;
    sequence_of(p, &seq, &tr, &te, &ti);
    for (int l = 0; l < MS_BRAIN_TISSUE_COUNT; l++) {
      rc.value[l] = mr_signal(p, seq, tr, te, ti, l);
      if (rc.value[l] > vmax) vmax = rc.value[l];
    }
    for (int l = 0; l < MS_BRAIN_TISSUE_COUNT; l++) {
      rc.value[l] /= vmax;
      rc.spread[l] = p->texture * rc.value[l];
    }
    vmax = 1;
  }
  for (int l = 0; l < MS_BRAIN_TISSUE_COUNT; l++) img->tissue_value[l] = (float)rc.value[l];
  rc.thin = p->atrophy_mm_per_year * (age > 30 ? age - 30 : 0); /* atlas voxels are 1 mm */
  if (rc.thin > 0) {
    ms_rng_key ka = ms_rng_key_make(seed, ms_rng_stream("brain/atrophy"));
    for (int q = 0; q < 3; q++) {
      double n2 = 0;
      for (int k = 0; k < 3; k++) {
        rc.aw[q][k] = ms_rng_normal(ka, index, 3 * (uint64_t)q + (uint64_t)k);
        n2 += rc.aw[q][k] * rc.aw[q][k];
      }
      for (int k = 0; k < 3; k++) rc.aw[q][k] /= sqrt(n2);
      rc.aph[q] = 2 * M_PI * ms_rng_uniform(ka, index, 10 + (uint64_t)q);
    }
  }
  img->tumour_lobe = MS_BRAIN_LOBE_ANY;
  img->tumour_diameter_mm = 0;
  memset(img->tumour_centre_mm, 0, sizeof img->tumour_centre_mm);
  if (p->tumour) {
    ms_rng_key kt = ms_rng_key_make(seed, ms_rng_stream("brain/tumour"));
    size_t lo = a->site_start[p->tumour_lobe == MS_BRAIN_LOBE_ANY ? 1 : p->tumour_lobe],
           hi = a->site_start[p->tumour_lobe == MS_BRAIN_LOBE_ANY ? MS_BRAIN_LOBE_COUNT : p->tumour_lobe + 1];
    if (hi <= lo)
      return ms_diag_add(d, MS_ERR_DATA, NULL, 0, 0, "tumour_lobe", "the atlas has no deep white matter in the %s lobe",
                         ms_brain_lobe_name(p->tumour_lobe));
    size_t site = lo + (size_t)ms_rng_below(kt, index, 100, hi - lo);
    for (int l = 1; l < MS_BRAIN_LOBE_COUNT; l++)
      if (site >= a->site_start[l] && site < a->site_start[l + 1]) img->tumour_lobe = (ms_brain_lobe)l;
    ms__brain_atlas_ras(a, a->sites[site], &rc.tc[0], &rc.tc[1], &rc.tc[2]);
    double diam = isnan(p->tumour_diameter_mm) ? 20 + 30 * ms_rng_uniform(kt, index, 1) : p->tumour_diameter_mm;
    rc.r1 = diam / 2;
    rc.r0 = rc.r1 * (0.3 + 0.3 * ms_rng_uniform(kt, index, 2));
    rc.r2 = rc.r1 * (1.3 + 0.7 * ms_rng_uniform(kt, index, 3));
    for (int q = 0; q < 6; q++) {
      rc.amp[q] = (q < 3 ? 0.08 : 0.15) * ms_rng_uniform(kt, index, 10 + (uint64_t)q);
      rc.freq[q] = 2 + 3 * ms_rng_uniform(kt, index, 20 + (uint64_t)q);
      rc.phase[q] = 2 * M_PI * ms_rng_uniform(kt, index, 30 + (uint64_t)q);
      double n2 = 0;
      for (int k = 0; k < 3; k++) {
        rc.dir[q][k] = ms_rng_normal(kt, index, 40 + 3 * (uint64_t)q + (uint64_t)k);
        n2 += rc.dir[q][k] * rc.dir[q][k];
      }
      for (int k = 0; k < 3; k++) rc.dir[q][k] /= sqrt(n2);
    }
    rc.tumour = 1;
    memcpy(img->tumour_centre_mm, rc.tc, sizeof rc.tc);
    img->tumour_diameter_mm = diam;
  }
  st = place_pathology(&rc, a, p, seed, index, img, d);
  if (st != MS_OK) return st;
  uint64_t sub = ms_rng_stream_sub(ms_rng_stream("brain/texture"), index);
  rc.ktex = ms_rng_key_make(seed, sub);
  rc.knoise = ms_rng_key_make(seed, ms_rng_stream_sub(ms_rng_stream("brain/noise"), index));
  rc.do_texture = !p->noise_free;
  size_t rows = (size_t)img->dims[1] * img->dims[2];
  ms__parallel_range(rows, 4, render_rows, &rc);
  if (!p->noise_free) {
    /* Blur, one axis at a time, image -> work -> image ... */
    float *cur = img->image, *oth = s->work;
    for (int ax = 0; ax < 3; ax++) {
      double sig = p->blur_mm[ax] / img->spacing[ax];
      if (sig < 0.05 || img->dims[ax] < 2) continue;
      rc.krad = (int)ceil(3 * sig);
      if (rc.krad > 64) rc.krad = 64;
      double sum = 0;
      for (int t = -rc.krad; t <= rc.krad; t++) sum += rc.kern[t + rc.krad] = exp(-0.5 * t * t / (sig * sig));
      for (int t = 0; t <= 2 * rc.krad; t++) rc.kern[t] /= sum;
      rc.axis = ax;
      rc.src = cur;
      rc.dst = oth;
      size_t lines = img->n_voxels / (size_t)img->dims[ax];
      ms__parallel_range(lines, 16, blur_lines, &rc);
      float *t = cur;
      cur = oth;
      oth = t;
    }
    if (cur != img->image) memcpy(img->image, cur, img->n_voxels * sizeof(float));
    ms_rng_key kb = ms_rng_key_make(seed, ms_rng_stream("brain/bias"));
    for (int q = 0; q < BIAS_G * BIAS_G * BIAS_G; q++) rc.biasc[q] = ms_rng_normal(kb, index, (uint64_t)q) / 2;
    rc.ct = p->contrast == MS_BRAIN_CT && p->intensity == MS_BRAIN_PHYSICS;
    rc.sigma_noise = rc.ct ? p->ct_noise_hu : p->noise * vmax;
    ms__parallel_range(rows, 4, finish_rows, &rc);
  }
  /* Volumes. */
  rc.counts = s->counts;
  ms__parallel_range((size_t)img->dims[2], 1, count_planes, &rc);
  double vox = img->spacing[0] * img->spacing[1] * img->spacing[2];
  memset(img->volume_mm3, 0, sizeof img->volume_mm3);
  for (int k = 0; k < img->dims[2]; k++)
    for (int l = 0; l < MS_BRAIN_TISSUE_COUNT; l++) img->volume_mm3[l] += s->counts[(size_t)k * MS_BRAIN_TISSUE_COUNT + l] * vox;
  if (!(img->min_jacobian > 0))
    return ms_diag_add(d, MS_ERR_MATH, NULL, 0, 0, "deform_mm",
                       "subject %llu: the deformation folds (Jacobian determinant %g); lower deform_mm",
                       (unsigned long long)index, img->min_jacobian);
  return MS_OK;
}

void ms_brain_origin(const ms_brain_atlas *a, const ms_brain_params *p, double origin[3]) {
  double ax[9];
  ms_brain_axes(p->orientation, ax);
  for (int r = 0; r < 3; r++) origin[r] = a->centre[r] + ax[r * 3 + 2] * p->slice_z_mm;
}
