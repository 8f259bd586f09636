/* Procedural anatomical phantoms with exact ground-truth masks.
 *
 * Usage:
 *   ms_phantom_params p;
 *   ms_phantom_params_init(&p, MS_PHANTOM_CHEST);      // documented defaults
 *   p.modality = MS_MODALITY_CT; p.width = p.height = 256;
 *   p.lesions.count_min = p.lesions.count_max = 2;
 *   ms_diag d; ms_diag_init(&d);
 *   if (ms_phantom_params_check(&p, &d) != MS_OK) ...;  // every problem at once
 *   ms_phantom_image img;
 *   if (ms_phantom_image_init(&img, &p, &d) != MS_OK) ...;  // buffers, reused
 *   for (uint64_t i = 0; i < n; i++) {
 *     if (ms_phantom_generate(&img, &p, NULL, seed, i, &d) != MS_OK) ...;
 *     ... img.image (float32 HU / MR signal), img.mask (uint8 labels),
 *         img.lesions[0..img.n_lesions) measured from img.mask ...
 *   }
 *   ms_phantom_image_deinit(&img);
 *
 * Geometry. Every organ is a solid (a superellipsoid with a smooth random
 * radial deformation) defined analytically in continuous millimetre
 * coordinates centred on the field of view: x to the image right, y to the
 * image bottom (posterior), z superior. A pixel's label is the label of the
 * last solid in painting order that contains the pixel centre (the chest's
 * airway and vessel trees are tubes laid over the lungs the same way), so
 * the mask is exact by construction. A 2-D slice is the plane z = params.slice_z_mm of the
 * same solids, so ms_phantom_plane_z(p3d, k) used as slice_z_mm reproduces the
 * k-th plane of the volume bit for bit (anatomy; lesions are placed in 3-D for
 * volumes and in the plane for slices).
 *
 * Randomness. Image i of a run is a pure function of (params, seed, i): every
 * draw is keyed by (seed, stream, index = i, lane) through medsynth/rng.h, so
 * threads, batch sizes and N never change a byte. Anatomy draws do not depend
 * on the image size, so the same patient can be rendered at any resolution.
 *
 * Per-image overrides. A caller that computes patient parameters elsewhere
 * (a record row) passes an ms_phantom_subject to ms_phantom_generate; every
 * field left at MS_PHANTOM_DRAW (or -1 for counts) is drawn as usual.
 *
 * Ownership: ms_phantom_image_init allocates the buffers inside the caller's
 * struct; ms_phantom_image_deinit releases them. Params are borrowed. See
 * docs/phantoms.md for the anatomy, label table, tissue values and noise. */
#ifndef MEDSYNTH_PHANTOM_H
#define MEDSYNTH_PHANTOM_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "medsynth/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { MS_PHANTOM_HEAD, MS_PHANTOM_CHEST, MS_PHANTOM_ABDOMEN, MS_PHANTOM_KIND_COUNT } ms_phantom_kind;
const char *ms_phantom_kind_name(ms_phantom_kind k);
/* MS_PHANTOM_KIND_COUNT when unknown. */
ms_phantom_kind ms_phantom_kind_from_name(const char *name);

typedef enum { MS_MODALITY_CT, MS_MODALITY_T1, MS_MODALITY_T2, MS_MODALITY_COUNT } ms_modality;
const char *ms_modality_name(ms_modality m);
ms_modality ms_modality_from_name(const char *name);

/* Mask labels. Values are part of the file format (docs/phantoms.md); new
 * labels go before MS_LABEL_COUNT. Lesion k of an image has label
 * MS_LABEL_LESION_FIRST + k. */
typedef enum {
  MS_LABEL_BACKGROUND = 0, /* air outside the body */
  MS_LABEL_SOFT_TISSUE,    /* scalp, mediastinum, bowel and other soft tissue */
  MS_LABEL_FAT,            /* subcutaneous fat */
  MS_LABEL_MUSCLE,
  MS_LABEL_SKULL,
  MS_LABEL_VERTEBRA,
  MS_LABEL_RIB,
  MS_LABEL_CSF,            /* subarachnoid cerebrospinal fluid */
  MS_LABEL_GREY_MATTER,
  MS_LABEL_WHITE_MATTER,
  MS_LABEL_VENTRICLE,      /* lateral ventricles (CSF) */
  MS_LABEL_LUNG,
  MS_LABEL_HEART,          /* heart muscle: myocardium (LV wall, septum, RV and atrial walls) */
  MS_LABEL_AORTA,
  MS_LABEL_LIVER,
  MS_LABEL_KIDNEY,
  MS_LABEL_SPLEEN,
  MS_LABEL_SPINAL_CANAL,
  /* Chest (docs/phantoms.md, "Chest anatomy"): */
  MS_LABEL_AIRWAY,            /* air lumen of the trachea and bronchi */
  MS_LABEL_AIRWAY_WALL,       /* bronchial and tracheal wall */
  MS_LABEL_PULMONARY_ARTERY,  /* pulmonary trunk, main and intrapulmonary arteries */
  MS_LABEL_PULMONARY_VEIN,
  MS_LABEL_LEFT_VENTRICLE,    /* blood pools of the heart chambers */
  MS_LABEL_RIGHT_VENTRICLE,
  MS_LABEL_LEFT_ATRIUM,
  MS_LABEL_RIGHT_ATRIUM,
  MS_LABEL_SUPERIOR_VENA_CAVA,
  MS_LABEL_STERNUM,
  MS_LABEL_SCAPULA,
  MS_LABEL_COUNT
} ms_label;
#define MS_LABEL_LESION_FIRST 100
#define MS_PHANTOM_MAX_LESIONS 64

/* "white_matter"; "lesion" for lesion labels; NULL for unused values. */
const char *ms_label_name(int label);
/* MS_LABEL_COUNT when unknown. Accepts the names above ("liver", "lung"). */
int ms_label_from_name(const char *name);

/* Marks a subject field as "draw it". */
#define MS_PHANTOM_DRAW NAN

/* Per-patient anatomy. Ranges (uniform draws, docs/phantoms.md):
 * body_scale 0.88..1.12 (all sizes), ventricle_scale from age (head),
 * age_years 20..85, fat_mm 8..30 (chest/abdomen subcutaneous fat). */
typedef struct {
  double body_scale;      /* 0.7..1.3 when set */
  double ventricle_scale; /* 0.5..2.5 when set; 1 = young adult */
  double age_years;       /* 18..100 when set; drives ventricle size and atrophy */
  double fat_mm;          /* 2..60 when set */
  int n_lesions;          /* -1 = draw from params.lesions.count_min..count_max */
} ms_phantom_subject;

/* All fields MS_PHANTOM_DRAW / -1. */
void ms_phantom_subject_init(ms_phantom_subject *s);

/* Lung nodule types (docs/phantoms.md, "Nodule types"): solid (uniform
 * lesion tissue), part-solid (a ground-glass nodule with a solid core),
 * ground-glass (non-solid: between lung and solid tissue, -750..-500 HU in
 * CT), or mixed (each nodule one of the three, equally likely). */
typedef enum {
  MS_NODULE_SOLID,
  MS_NODULE_PART_SOLID,
  MS_NODULE_GROUND_GLASS,
  MS_NODULE_MIXED,
  MS_NODULE_KIND_COUNT
} ms_nodule_kind;
const char *ms_nodule_kind_name(ms_nodule_kind k); /* "solid", "part-solid", "ground-glass", "mixed" */
ms_nodule_kind ms_nodule_kind_from_name(const char *name); /* _COUNT if unknown */

/* Nodule margins (docs/phantoms.md, "Nodule margins"): smooth (the
 * irregularity outline only), lobulated (stronger, scalloped outline),
 * spiculated (thin radial spikes from the body), or mixed (each nodule one
 * of the three, equally likely). */
typedef enum {
  MS_NODULE_MARGIN_SMOOTH,
  MS_NODULE_MARGIN_LOBULATED,
  MS_NODULE_MARGIN_SPICULATED,
  MS_NODULE_MARGIN_MIXED,
  MS_NODULE_MARGIN_COUNT
} ms_nodule_margin;
const char *ms_nodule_margin_name(ms_nodule_margin m); /* "smooth", "lobulated", "spiculated", "mixed" */
ms_nodule_margin ms_nodule_margin_from_name(const char *name); /* _COUNT if unknown */

/* Nodule size classes after the Lung-RADS v2022 solid-nodule thresholds
 * (mean diameter): below 6 mm, 6 to 8, 8 to 15, 15 mm and more. As a
 * parameter, MS_NODULE_SIZE_ANY draws diameters from diameter_min_mm ..
 * diameter_max_mm; a class draws them from its own range (4-6, 6-8, 8-15,
 * 15-30 mm). Each lesion reports its class (ms_phantom_lesion.size_class)
 * and its Lung-RADS category (ms_phantom_lesion.lungrads). */
typedef enum {
  MS_NODULE_SIZE_ANY,
  MS_NODULE_SIZE_LT6,
  MS_NODULE_SIZE_6_8,
  MS_NODULE_SIZE_8_15,
  MS_NODULE_SIZE_GE15,
  MS_NODULE_SIZE_COUNT
} ms_nodule_size;
const char *ms_nodule_size_name(ms_nodule_size s); /* "any", "<6mm", "6-8mm", "8-15mm", ">=15mm" */
ms_nodule_size ms_nodule_size_from_name(const char *name); /* _COUNT if unknown */

typedef struct {
  int count_min, count_max; /* per image, uniform; default 0..0 */
  int organ;                /* ms_label the lesions lie in; 0 = default for the kind
                               (head: white matter, chest: lung, abdomen: liver) */
  double diameter_min_mm, diameter_max_mm; /* default 6..20 */
  double irregularity;      /* 0 (round) .. 0.5 (lobulated); default 0.15 */
  double contrast_min, contrast_max; /* 1 = the typical lesion tissue of that organ
                               (docs/phantoms.md), 0 = invisible, 2 = twice the
                               difference from the organ; default 0.8..1.2 */
  ms_nodule_kind nodule;    /* lung lesions only; default solid */
  ms_nodule_margin margin;  /* lung lesions only; default smooth */
  ms_nodule_size size_class; /* default any (use diameter_min_mm..diameter_max_mm) */
} ms_lesion_params;

typedef struct {
  double rotate_deg;        /* rotation drawn uniformly in +-rotate_deg; default 0 */
  double scale_min, scale_max; /* isotropic zoom; default 1..1 */
  double elastic_mm;        /* sd of the coarse-grid displacement; default 0 (off) */
  int elastic_grid;         /* coarse grid nodes per side (4..32); default 6 */
  double intensity_shift;   /* sd of an additive shift (HU, or fraction of the MR
                               reference signal); default 0 */
  double intensity_scale;   /* sd of a multiplicative gain around 1; default 0 */
} ms_augment_params;

typedef struct {
  ms_phantom_kind kind;
  ms_modality modality;
  int width, height; /* pixels, 1..8192 */
  int depth;         /* 0 = one 2-D slice; >= 1 = a volume of that many planes */
  double fov_mm;     /* width of the field of view; spacing = fov_mm / width
                        (square pixels). Default head 240, chest 440, abdomen 420 */
  double slice_mm;   /* plane spacing of volumes; 0 = same as the pixel spacing */
  double slice_z_mm; /* z of a 2-D slice (mm from the volume centre); default 0 */
  int supersample;   /* partial-volume: s x s samples per pixel averaged in the
                        image (mask stays the centre label); 1 = off; default 1 */
  /* CT: noise sd = ct_noise_hu * sqrt(ct_ref_dose / dose), i.e. variance
   * proportional to 1/dose as for Poisson photon statistics. */
  double dose;        /* mAs; default 100 */
  double ct_ref_dose; /* default 100 */
  double ct_noise_hu; /* sd at the reference dose; default 10 */
  /* MR: Rician noise of sd mr_noise * reference signal, and a smooth
   * multiplicative bias field exp(bias * polynomial) with |polynomial| <~ 1. */
  double mr_noise;    /* default 0.02 */
  double mr_bias;     /* default 0.15 */
  int noise;          /* 0 = noise-free render (and no bias field); default 1 */
  int tissue_jitter;  /* per-patient variation of tissue values; default 1 */
  ms_lesion_params lesions;
  ms_augment_params augment;
  size_t max_bytes;   /* refuse images needing more memory; default 4 GiB */
} ms_phantom_params;

void ms_phantom_params_init(ms_phantom_params *p, ms_phantom_kind kind);
/* Validates every field; reports every problem to d (locations name the
 * parameter, e.g. "lesions.diameter_max_mm"). */
ms_status ms_phantom_params_check(const ms_phantom_params *p, ms_diag *d);
/* Pixel spacing (x, y, z) in mm. */
void ms_phantom_spacing(const ms_phantom_params *p, double spacing[3]);
/* z (mm) of plane k of a volume rendered with p; pass it as slice_z_mm of a
 * 2-D render to get that plane. */
double ms_phantom_plane_z(const ms_phantom_params *p, int k);
/* Bytes one image needs (image + mask + scratch); MS_ERR_RANGE on overflow. */
ms_status ms_phantom_image_bytes(const ms_phantom_params *p, size_t *bytes);

typedef struct {
  int label;              /* MS_LABEL_LESION_FIRST + k */
  int organ;              /* ms_label of the organ it lies in */
  double center_mm[3];    /* designed centre (phantom coordinates, before augmentation) */
  double diameter_mm;     /* designed mean diameter */
  double contrast;        /* drawn contrast factor */
  double value;           /* noise-free tissue value of the lesion */
  /* Measured on the rendered mask: */
  uint64_t n_pixels;      /* pixels (voxels) carrying the label */
  double centroid[3];     /* pixel coordinates (column, row, plane) */
  int bbox_min[3], bbox_max[3]; /* inclusive pixel bounds (column, row, plane) */
  double size_mm;         /* area in mm^2 (slice) or volume in mm^3 (volume) */
  ms_nodule_kind nodule;  /* solid, part-solid or ground-glass (value: the
                             ground-glass part's) */
  double core_diameter_mm; /* part-solid: diameter of the solid core; else 0 */
  ms_nodule_margin margin; /* smooth, lobulated or spiculated */
  int n_spicules;          /* spiculated: number of spikes; else 0 */
  ms_nodule_size size_class; /* class of diameter_mm (never _ANY) */
  const char *lungrads;    /* Lung-RADS v2022 baseline size category of a lung
                              nodule ("2", "3", "4A", "4B"; static string);
                              NULL for lesions outside the lung */
} ms_phantom_lesion;

typedef struct {
  int width, height, depth; /* depth >= 1 (1 for a slice) */
  double spacing[3];        /* mm */
  size_t n_pixels;          /* width * height * depth */
  float *image;             /* [depth][height][width] */
  uint8_t *mask;            /* [depth][height][width] */
  /* Noise-free value of every label after intensity augmentation: with
   * noise = 0 and supersample = 1, image[i] == tissue_value[mask[i]]. */
  float tissue_value[256];
  ms_phantom_subject subject; /* the realised patient parameters */
  size_t n_lesions;
  ms_phantom_lesion lesions[MS_PHANTOM_MAX_LESIONS];
  void *scratch; /* private */
} ms_phantom_image;

/* Allocates buffers sized for p (checks p first). */
ms_status ms_phantom_image_init(ms_phantom_image *img, const ms_phantom_params *p, ms_diag *d);
void ms_phantom_image_deinit(ms_phantom_image *img);

/* Renders image `index` of the run keyed by `seed`. subject may be NULL.
 * Errors: MS_ERR_RANGE when a lesion is larger than its organ or cannot be
 * placed, MS_ERR_INVALID for bad parameters; d names the image and lesion. */
ms_status ms_phantom_generate(ms_phantom_image *img, const ms_phantom_params *p,
                              const ms_phantom_subject *subject, uint64_t seed, uint64_t index,
                              ms_diag *d);

/* The label names and noise-free reference tissue values of a modality as a
 * JSON object {"0": {"name": "background", "value": -1000}, ...}, for file
 * attributes. Caller frees. NULL on allocation failure. */
char *ms_phantom_label_table_json(const ms_phantom_params *p);

/* Display windows (centre/width), CT presets in HU. */
typedef struct {
  double center, width;
} ms_window;
/* "lung" (-600/1500), "mediastinum" (50/350), "bone" (500/2000),
 * "brain" (40/80), "abdomen" (50/400). MS_ERR_NOTFOUND when unknown. */
ms_status ms_window_preset(const char *name, ms_window *w);
/* A default window for a params set: CT chest -> mediastinum, head -> brain,
 * abdomen -> abdomen; MR -> 0 .. 1.1 x the brightest tissue value. */
ms_window ms_phantom_default_window(const ms_phantom_params *p);
/* Maps v through the window to 0..255 (linear, clamped). */
uint8_t ms_window_apply_u8(ms_window w, float v);

#ifdef __cplusplus
}
#endif
#endif
