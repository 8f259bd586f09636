/* Phantom parameters: names of kinds, modalities and labels, documented
 * defaults, validation (every problem reported at once), geometry helpers.
 *
 * Invariant: the label numbers and names here are part of the output format
 * (docs/phantoms.md); they only ever grow. */
#include <math.h>
#include "core/alloc.h"
#include "core/names.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phantom/phantom_internal.h"

static const char *const k_kind_names[MS_PHANTOM_KIND_COUNT] = {"head", "chest", "abdomen"};
static const char *const k_modality_names[MS_MODALITY_COUNT] = {"ct", "t1", "t2"};
static const char *const k_label_names[MS_LABEL_COUNT] = {
    "background", "soft_tissue", "fat",       "muscle",       "skull",   "vertebra",
    "rib",        "csf",         "grey_matter", "white_matter", "ventricle", "lung",
    "heart",      "aorta",       "liver",     "kidney",       "spleen",  "spinal_canal",
    "airway",     "airway_wall", "pulmonary_artery", "pulmonary_vein", "left_ventricle",
    "right_ventricle", "left_atrium", "right_atrium", "superior_vena_cava", "sternum", "scapula"};

MS__NAME_FNS(ms_phantom_kind_name, ms_phantom_kind_from_name, ms_phantom_kind, k_kind_names, MS_PHANTOM_KIND_COUNT,
             "unknown")
MS__NAME_FNS(ms_modality_name, ms_modality_from_name, ms_modality, k_modality_names, MS_MODALITY_COUNT, "unknown")

static const char *const k_nodule[] = {"solid", "part-solid", "ground-glass", "mixed"};
MS__NAME_FNS(ms_nodule_kind_name, ms_nodule_kind_from_name, ms_nodule_kind, k_nodule, MS_NODULE_KIND_COUNT,
             "unknown")

static const char *const k_margin[] = {"smooth", "lobulated", "spiculated", "mixed"};
MS__NAME_FNS(ms_nodule_margin_name, ms_nodule_margin_from_name, ms_nodule_margin, k_margin, MS_NODULE_MARGIN_COUNT,
             "unknown")

static const char *const k_size[] = {"any", "<6mm", "6-8mm", "8-15mm", ">=15mm"};
MS__NAME_FNS(ms_nodule_size_name, ms_nodule_size_from_name, ms_nodule_size, k_size, MS_NODULE_SIZE_COUNT, "unknown")

const char *ms_label_name(int label) {
  if (label >= 0 && label < MS_LABEL_COUNT) return k_label_names[label];
  if (label >= MS_LABEL_LESION_FIRST && label < MS_LABEL_LESION_FIRST + MS_PHANTOM_MAX_LESIONS)
    return "lesion";
  return NULL;
}

int ms_label_from_name(const char *name) { return ms__name_find(k_label_names, MS_LABEL_COUNT, name); }

void ms_phantom_subject_init(ms_phantom_subject *s) {
  s->body_scale = MS_PHANTOM_DRAW;
  s->ventricle_scale = MS_PHANTOM_DRAW;
  s->age_years = MS_PHANTOM_DRAW;
  s->fat_mm = MS_PHANTOM_DRAW;
  s->n_lesions = -1;
}

void ms_phantom_params_init(ms_phantom_params *p, ms_phantom_kind kind) {
  memset(p, 0, sizeof *p);
  p->kind = kind;
  p->modality = MS_MODALITY_CT;
  p->width = p->height = 256;
  p->depth = 0;
  p->fov_mm = kind == MS_PHANTOM_HEAD ? 240 : kind == MS_PHANTOM_CHEST ? 440 : 420;
  p->slice_mm = 0;
  p->slice_z_mm = 0;
  p->supersample = 1;
  p->dose = 100;
  p->ct_ref_dose = 100;
  p->ct_noise_hu = 10;
  p->mr_noise = 0.02;
  p->mr_bias = 0.15;
  p->noise = 1;
  p->tissue_jitter = 1;
  p->lesions.count_min = p->lesions.count_max = 0;
  p->lesions.organ = 0;
  p->lesions.diameter_min_mm = 6;
  p->lesions.diameter_max_mm = 20;
  p->lesions.irregularity = 0.15;
  p->lesions.contrast_min = 0.8;
  p->lesions.contrast_max = 1.2;
  p->augment.rotate_deg = 0;
  p->augment.scale_min = p->augment.scale_max = 1;
  p->augment.elastic_mm = 0;
  p->augment.elastic_grid = 6;
  p->augment.intensity_shift = 0;
  p->augment.intensity_scale = 0;
  p->max_bytes = (size_t)4 << 30;
}

void ms_phantom_spacing(const ms_phantom_params *p, double spacing[3]) {
  double sp = p->width > 0 ? p->fov_mm / p->width : 0;
  spacing[0] = spacing[1] = sp;
  spacing[2] = p->slice_mm > 0 ? p->slice_mm : sp;
}

double ms_phantom_plane_z(const ms_phantom_params *p, int k) {
  double sp[3];
  ms_phantom_spacing(p, sp);
  int depth = p->depth > 0 ? p->depth : 1;
  return ((double)k + 0.5) * sp[2] - 0.5 * (double)depth * sp[2];
}

ms_status ms_phantom_image_bytes(const ms_phantom_params *p, size_t *bytes) {
  if (p->width <= 0 || p->height <= 0 || p->depth < 0) return MS_ERR_RANGE;
  size_t depth = p->depth > 0 ? (size_t)p->depth : 1;
  size_t n = (size_t)p->width;
  if (n > SIZE_MAX / (size_t)p->height) return MS_ERR_RANGE;
  n *= (size_t)p->height;
  if (n > SIZE_MAX / depth) return MS_ERR_RANGE;
  n *= depth;
  /* float image + uint8 mask (+ two float displacement planes per pixel of
   * one plane when elastic augmentation is on, bounded by the same). */
  size_t per = sizeof(float) + 1 + 2 * sizeof(float);
  if (n > SIZE_MAX / per) return MS_ERR_RANGE;
  *bytes = n * per;
  return MS_OK;
}

int ms__lesion_default_organ(ms_phantom_kind k) {
  return k == MS_PHANTOM_HEAD ? MS_LABEL_WHITE_MATTER : k == MS_PHANTOM_CHEST ? MS_LABEL_LUNG : MS_LABEL_LIVER;
}

int ms__lesion_organ_allowed(ms_phantom_kind k, int organ) {
  switch (k) {
    case MS_PHANTOM_HEAD:
      return organ == MS_LABEL_WHITE_MATTER || organ == MS_LABEL_GREY_MATTER;
    case MS_PHANTOM_CHEST:
      return organ == MS_LABEL_LUNG || organ == MS_LABEL_HEART;
    case MS_PHANTOM_ABDOMEN:
      return organ == MS_LABEL_LIVER || organ == MS_LABEL_KIDNEY || organ == MS_LABEL_SPLEEN;
    default:
      return 0;
  }
}

#define BAD(where, ...) (st = ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, where, __VA_ARGS__))
#define RANGE(where, ...) (st = ms_diag_add(d, MS_ERR_RANGE, NULL, 0, 0, where, __VA_ARGS__))

ms_status ms_phantom_params_check(const ms_phantom_params *p, ms_diag *d) {
  ms_status st = MS_OK;
  if ((unsigned)p->kind >= MS_PHANTOM_KIND_COUNT) BAD("kind", "unknown phantom kind %d", (int)p->kind);
  if ((unsigned)p->modality >= MS_MODALITY_COUNT) BAD("modality", "unknown modality %d", (int)p->modality);
  if (p->width < 1 || p->width > 8192) RANGE("width", "image width %d is outside 1..8192", p->width);
  if (p->height < 1 || p->height > 8192) RANGE("height", "image height %d is outside 1..8192", p->height);
  if (p->depth < 0 || p->depth > 8192) RANGE("depth", "volume depth %d is outside 0..8192", p->depth);
  if (!(p->fov_mm > 0 && p->fov_mm <= 2000)) RANGE("fov_mm", "field of view %g mm is outside (0, 2000]", p->fov_mm);
  if (!(p->slice_mm >= 0 && p->slice_mm <= 100)) RANGE("slice_mm", "slice spacing %g mm is outside [0, 100]", p->slice_mm);
  if (!isfinite(p->slice_z_mm)) RANGE("slice_z_mm", "slice position is not finite");
  if (p->supersample < 1 || p->supersample > 8) RANGE("supersample", "supersampling %d is outside 1..8", p->supersample);
  if (!(p->dose > 0 && p->dose <= 1e5)) RANGE("dose", "dose %g mAs must be in (0, 100000]", p->dose);
  if (!(p->ct_ref_dose > 0)) RANGE("ct_ref_dose", "reference dose %g must be positive", p->ct_ref_dose);
  if (!(p->ct_noise_hu >= 0 && p->ct_noise_hu < 1000)) RANGE("ct_noise_hu", "CT noise %g HU is outside [0, 1000)", p->ct_noise_hu);
  if (!(p->mr_noise >= 0 && p->mr_noise <= 1)) RANGE("mr_noise", "MR noise %g is outside [0, 1]", p->mr_noise);
  if (!(p->mr_bias >= 0 && p->mr_bias <= 1)) RANGE("mr_bias", "MR bias strength %g is outside [0, 1]", p->mr_bias);
  const ms_lesion_params *l = &p->lesions;
  if (l->count_min < 0 || l->count_max < l->count_min || l->count_max > MS_PHANTOM_MAX_LESIONS)
    RANGE("lesions.count", "lesion count %d..%d must satisfy 0 <= min <= max <= %d", l->count_min,
          l->count_max, MS_PHANTOM_MAX_LESIONS);
  if (l->organ != 0 && (unsigned)p->kind < MS_PHANTOM_KIND_COUNT &&
      !ms__lesion_organ_allowed(p->kind, l->organ)) {
    const char *on = ms_label_name(l->organ);
    BAD("lesions.organ", "a %s phantom has no organ \"%s\" that can hold lesions",
        ms_phantom_kind_name(p->kind), on ? on : "?");
  }
  if (!(l->diameter_min_mm > 0 && l->diameter_max_mm >= l->diameter_min_mm && l->diameter_max_mm < 1000))
    RANGE("lesions.diameter_mm", "lesion diameter %g..%g mm must satisfy 0 < min <= max < 1000",
          l->diameter_min_mm, l->diameter_max_mm);
  int in_lung = (l->organ ? l->organ : ms__lesion_default_organ(p->kind)) == MS_LABEL_LUNG;
  if ((unsigned)l->nodule >= MS_NODULE_KIND_COUNT)
    BAD("lesions.nodule", "unknown nodule type (solid, part-solid, ground-glass or mixed)");
  else if (l->nodule != MS_NODULE_SOLID && !in_lung)
    BAD("lesions.nodule", "%s nodules lie in the lung (chest phantom, lesion organ lung)",
        ms_nodule_kind_name(l->nodule));
  if ((unsigned)l->margin >= MS_NODULE_MARGIN_COUNT)
    BAD("lesions.margin", "unknown nodule margin (smooth, lobulated, spiculated or mixed)");
  else if (l->margin != MS_NODULE_MARGIN_SMOOTH && !in_lung)
    BAD("lesions.margin", "%s margins belong to lung nodules (chest phantom, lesion organ lung)",
        ms_nodule_margin_name(l->margin));
  if ((unsigned)l->size_class >= MS_NODULE_SIZE_COUNT)
    BAD("lesions.size_class", "unknown nodule size class (any, <6mm, 6-8mm, 8-15mm or >=15mm)");
  if (!(l->irregularity >= 0 && l->irregularity <= 0.5))
    RANGE("lesions.irregularity", "irregularity %g is outside [0, 0.5]", l->irregularity);
  if (!(isfinite(l->contrast_min) && isfinite(l->contrast_max) && l->contrast_min <= l->contrast_max &&
        fabs(l->contrast_min) <= 10 && fabs(l->contrast_max) <= 10))
    RANGE("lesions.contrast", "contrast %g..%g must satisfy -10 <= min <= max <= 10", l->contrast_min,
          l->contrast_max);
  const ms_augment_params *a = &p->augment;
  if (!(a->rotate_deg >= 0 && a->rotate_deg <= 180)) RANGE("augment.rotate_deg", "rotation %g degrees is outside [0, 180]", a->rotate_deg);
  if (!(a->scale_min > 0.2 && a->scale_max >= a->scale_min && a->scale_max <= 5))
    RANGE("augment.scale", "scale %g..%g must satisfy 0.2 < min <= max <= 5", a->scale_min, a->scale_max);
  if (!(a->elastic_mm >= 0 && a->elastic_mm <= 100)) RANGE("augment.elastic_mm", "elastic displacement %g mm is outside [0, 100]", a->elastic_mm);
  if (a->elastic_grid < 4 || a->elastic_grid > 32) RANGE("augment.elastic_grid", "elastic grid %d is outside 4..32", a->elastic_grid);
  if (!(a->intensity_shift >= 0 && a->intensity_shift < 1e4)) RANGE("augment.intensity_shift", "intensity shift %g must be >= 0", a->intensity_shift);
  if (!(a->intensity_scale >= 0 && a->intensity_scale <= 1)) RANGE("augment.intensity_scale", "intensity scale %g is outside [0, 1]", a->intensity_scale);
  if (p->width >= 1 && p->height >= 1 && p->depth >= 0) {
    size_t bytes;
    if (ms_phantom_image_bytes(p, &bytes) != MS_OK) {
      RANGE("size", "image %d x %d x %d is too large to address", p->width, p->height, p->depth);
    } else if (bytes > p->max_bytes) {
      RANGE("size", "image %d x %d x %d would need %.1f MiB of memory per image (limit %.1f MiB)",
            p->width, p->height, p->depth > 0 ? p->depth : 1, bytes / 1048576.0, p->max_bytes / 1048576.0);
    }
  }
  return st;
}

char *ms_phantom_label_table_json(const ms_phantom_params *p) {
  size_t cap = 4096, len = 0;
  char *s = ms__malloc(cap);
  if (!s) return NULL;
  len += (size_t)snprintf(s + len, cap - len, "{");
  for (int l = 0; l < MS_LABEL_COUNT; l++) {
    /* The chest's own labels appear only in chest tables, so head and
     * abdomen files keep their tables. */
    if (l >= MS_LABEL_AIRWAY && p->kind != MS_PHANTOM_CHEST) continue;
    if (cap - len < 256) {
      char *n = ms__realloc(s, cap * 2);
      if (!n) {
        free(s);
        return NULL;
      }
      s = n;
      cap *= 2;
    }
    len += (size_t)snprintf(s + len, cap - len, "%s\"%d\": {\"name\": \"%s\", \"value\": %.6g}",
                            l ? ", " : "", l, k_label_names[l],
                            ms__tissue_reference(p->modality, p->kind, l));
  }
  snprintf(s + len, cap - len, ", \"%d-%d\": {\"name\": \"lesion\"}}", MS_LABEL_LESION_FIRST,
           MS_LABEL_LESION_FIRST + MS_PHANTOM_MAX_LESIONS - 1);
  return s;
}
