/* Brain MR volumes on real anatomy: atlas labels, a random diffeomorphic
 * deformation per subject, MR physics or randomised contrasts, exact labels.
 *
 * Usage:
 *   ms_brain_atlas *a;
 *   if (ms_brain_atlas_load(&a, NULL, &d) != MS_OK) ...;   // mricron-data templates
 *   ms_brain_params p;
 *   ms_brain_params_init(&p);                             // 181x217x181 at 1 mm, T1w physics
 *   p.contrast = MS_BRAIN_T2;
 *   ms_brain_image img;
 *   if (ms_brain_image_init(&img, &p, &d) != MS_OK) ...;
 *   for (uint64_t i = 0; i < n; i++) {
 *     if (ms_brain_generate(&img, a, &p, seed, i, &d) != MS_OK) ...;
 *     ... img.image (float32 signal), img.labels (tissue labels), img.aal (AAL),
 *         img.volume_mm3[label] measured on img.labels ...
 *   }
 *   ms_brain_image_deinit(&img);
 *   ms_brain_atlas_free(a);
 *
 * Anatomy. The atlas is the Colin27 average-subject T1 (ch2.nii.gz, and its
 * skull-stripped ch2bet.nii.gz) with the AAL parcellation (aal.nii.gz) in
 * the same 1 mm MNI grid, from Debian's mricron-data package. Loading derives
 * the tissue label set of ms_brain_tissue from AAL regions and ch2
 * intensities (docs/phantoms.md, "Brain"). A subject is the atlas pulled
 * back through x -> A^-1 x -> phi(A^-1 x): A a random global affine (head
 * size, rotation, shift) and phi the exponential of a smooth random
 * stationary velocity field (scaling and squaring), so phi is a
 * diffeomorphism; age adds a radial inward velocity around each lateral
 * ventricle, which enlarges the ventricles. An optional tumour (necrotic
 * core, enhancing rim, oedema) is placed in atlas space in a named lobe.
 * Labels are looked up nearest neighbour, so every voxel carries exactly one
 * label and the masks equal the labels the intensities were drawn from.
 *
 * Intensities. MS_BRAIN_PHYSICS: tissue PD/T1/T2 at 1.5 T or 3 T through
 * the spin-echo, inversion-recovery or spoiled gradient-echo signal equation
 * with TR/TE/TI/flip. MS_BRAIN_RANDOM: each label's mean and spread drawn
 * uniformly per subject (SynthSeg's domain randomisation, Billot et al.,
 * Medical Image Analysis 2023). Both then get a smooth multiplicative bias
 * field, a Gaussian blur per axis (partial volume, thick slices) and Rician
 * noise. MS_BRAIN_CT (physics only): Hounsfield units per tissue, blur and
 * Gaussian noise.
 *
 * Randomness. Subject `index` of a run is a pure function of (atlas,
 * params, seed, index): every draw is keyed by (seed, stream, index, lane)
 * and per-voxel noise by the voxel number, and the work is cut into planes
 * whose values do not depend on the cut, so thread counts never change a
 * byte.
 *
 * Ownership: ms_brain_atlas_load allocates the atlas, ms_brain_atlas_free
 * releases it; ms_brain_image_init allocates buffers inside the caller's
 * struct, ms_brain_image_deinit releases them. Params are borrowed. */
#ifndef MEDSYNTH_BRAIN_H
#define MEDSYNTH_BRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "medsynth/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where Debian's mricron-data puts the templates. */
#define MS_BRAIN_ATLAS_DIR "/usr/share/mricron/templates"

/* Tissue labels (values are part of the file format; new ones go last). */
typedef enum {
  MS_BRAIN_BACKGROUND = 0,
  MS_BRAIN_CSF,           /* extra-cerebral and sulcal CSF, third/fourth ventricles */
  MS_BRAIN_CORTICAL_GM,   /* cerebral grey matter outside the deep nuclei */
  MS_BRAIN_WM,            /* cerebral white matter */
  MS_BRAIN_VENTRICLE,     /* lateral ventricles */
  MS_BRAIN_DEEP_GM,       /* caudate, putamen, pallidum, thalamus */
  MS_BRAIN_CEREBELLAR_GM,
  MS_BRAIN_CEREBELLAR_WM,
  MS_BRAIN_BRAINSTEM,
  MS_BRAIN_SKULL,         /* dark non-brain voxels inside the head: bone, and CSF, vessels */
  MS_BRAIN_SCALP,         /* bright non-brain voxels: scalp, fat, muscle, marrow, eyes */
  MS_BRAIN_TUMOUR_OEDEMA, /* peritumoural oedema (replaces white and grey matter only) */
  MS_BRAIN_TUMOUR_ENHANCING, /* enhancing rim */
  MS_BRAIN_TUMOUR_NECROSIS,  /* necrotic core */
  MS_BRAIN_WM_LESION,        /* white-matter lesion (replaces white matter only) */
  MS_BRAIN_STROKE,           /* ischaemic infarct in an arterial territory */
  MS_BRAIN_TISSUE_COUNT
} ms_brain_tissue;

typedef enum { MS_BRAIN_LABELS_TISSUE, MS_BRAIN_LABELS_AAL, MS_BRAIN_LABELSET_COUNT } ms_brain_labelset;
const char *ms_brain_labelset_name(ms_brain_labelset s);
ms_brain_labelset ms_brain_labelset_from_name(const char *name);

/* MS_BRAIN_CT: head CT in Hounsfield units (physics mode only). */
typedef enum { MS_BRAIN_T1, MS_BRAIN_T2, MS_BRAIN_FLAIR, MS_BRAIN_PD, MS_BRAIN_CT, MS_BRAIN_CONTRAST_COUNT } ms_brain_contrast;
const char *ms_brain_contrast_name(ms_brain_contrast c);
ms_brain_contrast ms_brain_contrast_from_name(const char *name);

typedef enum { MS_BRAIN_PHYSICS, MS_BRAIN_RANDOM, MS_BRAIN_INTENSITY_COUNT } ms_brain_intensity;
const char *ms_brain_intensity_name(ms_brain_intensity m);
ms_brain_intensity ms_brain_intensity_from_name(const char *name);

/* Plane of the output grid's first two axes (docs/phantoms.md): axial
 * (rows anterior -> posterior), coronal and sagittal (rows superior ->
 * inferior); the third axis is the slice normal. */
typedef enum { MS_BRAIN_AXIAL, MS_BRAIN_CORONAL, MS_BRAIN_SAGITTAL, MS_BRAIN_ORIENTATION_COUNT } ms_brain_orientation;
const char *ms_brain_orientation_name(ms_brain_orientation o);
ms_brain_orientation ms_brain_orientation_from_name(const char *name);
/* RAS direction of each output voxel axis: column c of the row-major 3 x 3
 * axes is the direction of axis c (i, j, k); pass it as ms_nifti_desc.axes. */
void ms_brain_axes(ms_brain_orientation o, double axes[9]);

/* Pulse sequence family of the physics mode. */
typedef enum { MS_BRAIN_SPIN_ECHO, MS_BRAIN_INVERSION_RECOVERY, MS_BRAIN_GRADIENT_ECHO,
               MS_BRAIN_SEQUENCE_COUNT } ms_brain_sequence;
const char *ms_brain_sequence_name(ms_brain_sequence s);

/* Lobes a tumour can be placed in (AAL region groups, docs/phantoms.md). */
typedef enum { MS_BRAIN_LOBE_ANY, MS_BRAIN_LOBE_FRONTAL, MS_BRAIN_LOBE_PARIETAL, MS_BRAIN_LOBE_TEMPORAL,
               MS_BRAIN_LOBE_OCCIPITAL, MS_BRAIN_LOBE_COUNT } ms_brain_lobe;
const char *ms_brain_lobe_name(ms_brain_lobe l);
ms_brain_lobe ms_brain_lobe_from_name(const char *name);

/* Arterial territories of an ischaemic stroke (derived from AAL regions,
 * docs/phantoms.md). */
typedef enum { MS_BRAIN_TERRITORY_NONE, MS_BRAIN_ACA, MS_BRAIN_MCA, MS_BRAIN_PCA, MS_BRAIN_TERRITORY_COUNT } ms_brain_territory;
const char *ms_brain_territory_name(ms_brain_territory t); /* "none", "aca", "mca", "pca" */
ms_brain_territory ms_brain_territory_from_name(const char *name);

/* Most white-matter lesions per subject. */
#define MS_BRAIN_MAX_WM_LESIONS 64

/* "white_matter"; NULL past MS_BRAIN_TISSUE_COUNT. */
const char *ms_brain_tissue_name(int label);

typedef struct ms_brain_atlas ms_brain_atlas;

/* Loads ch2.nii.gz, ch2bet.nii.gz, aal.nii.gz and aal.nii.txt from dir
 * (NULL = MS_BRAIN_ATLAS_DIR) and derives the tissue labels. A missing file
 * is MS_ERR_NOTFOUND with a message naming the mricron-data package. */
ms_status ms_brain_atlas_load(ms_brain_atlas **out, const char *dir, ms_diag *d);
void ms_brain_atlas_free(ms_brain_atlas *a);
/* The atlas grid (W, H, D) and a label set, borrowed from a. */
const uint8_t *ms_brain_atlas_labels(const ms_brain_atlas *a, ms_brain_labelset s, int dims[3]);
/* The atlas T1 (ch2, 0..255), borrowed from a. */
const uint8_t *ms_brain_atlas_t1(const ms_brain_atlas *a);
/* Arterial territory map of the atlas grid: 0 outside the cerebrum,
 * else territory + 3 * (right hemisphere), borrowed from a. */
const uint8_t *ms_brain_atlas_territories(const ms_brain_atlas *a);
/* Voxel (i, j, k) to RAS millimetres (the NIfTI sform), 3 x 4 row-major. */
void ms_brain_atlas_affine(const ms_brain_atlas *a, double affine[12]);
/* Name of a label of a set ("Precentral_L"); NULL when unused. */
const char *ms_brain_label_name(const ms_brain_atlas *a, ms_brain_labelset s, int label);
/* The label table of a set as JSON {"0": "background", ...}. Caller frees. */
char *ms_brain_label_table_json(const ms_brain_atlas *a, ms_brain_labelset s);

/* Head CT value (HU) of a tissue label; gadolinium (iodine contrast, here)
 * raises the enhancing rim. */
double ms_brain_tissue_hu(int label, int contrast_agent);

/* Tissue MR parameters (ms) used by the physics mode. */
typedef struct {
  double pd, t1_ms, t2_ms;
} ms_brain_tissue_mr;
/* Values of a tissue label at field_t (1.5 or 3; docs/phantoms.md). */
ms_brain_tissue_mr ms_brain_tissue_mr_params(int label, double field_t);

typedef struct {
  int dims[3];              /* output W, H, D (D = 1: one axial slice); default 181, 217, 181 */
  double spacing_mm[3];     /* default 1, 1, 1 */
  double slice_z_mm;        /* offset of the grid centre from the brain centre along the slice
                               normal (superior, anterior or right); default 0 */
  ms_brain_orientation orientation; /* default MS_BRAIN_AXIAL */
  /* Anatomy. */
  double deform_mm;         /* sd of the velocity at the control points; default 3 (0 = off) */
  double deform_spacing_mm; /* control point spacing; default 32 */
  double rotate_deg;        /* rotations drawn uniformly in +-rotate_deg per axis; default 8 */
  double scale_sd;          /* sd of log scale per axis; default 0.05 */
  double shift_mm;          /* sd of the translation per axis; default 3 */
  double head_scale;        /* isotropic size factor, NaN = 1; default NaN */
  double age_years;         /* NaN = draw 20..85; drives ventricle enlargement and cortical thinning */
  double atrophy_mm_per_year; /* mean cortical thinning after 30 (GM -> CSF at the CSF border,
                               regionally modulated); default 0.01, 0 = off */
  /* Tumour: a necrotic core in an enhancing rim in oedema, centred on a
   * deep white-matter voxel of the lobe, defined in atlas space (so it
   * deforms with the subject). */
  int tumour;               /* 0 = none (default), 1 = one tumour */
  ms_brain_lobe tumour_lobe;   /* default MS_BRAIN_LOBE_ANY */
  double tumour_diameter_mm;   /* outer diameter of the enhancing rim; NaN = draw 20..50 */
  int gadolinium;           /* post-contrast: the rim's T1 shortened (physics mode); default 0 */
  /* White-matter lesions: ellipsoids in deep white matter, drawn near the
   * ventricles by preference, clipped to white matter (atlas space). */
  int wm_lesions;           /* count, 0..MS_BRAIN_MAX_WM_LESIONS; default 0 */
  double wm_load_ml;        /* designed total volume; NaN = draw 0.05..0.5 ml per lesion */
  /* Ischaemic stroke: the part of a territory (one hemisphere) within
   * stroke_radius_mm of a point of it; grey and white matter only. */
  ms_brain_territory stroke; /* default MS_BRAIN_TERRITORY_NONE */
  double stroke_radius_mm;  /* NaN = draw 20..45 */
  int stroke_side;          /* hemisphere: 0 left (MNI x < 0), 1 right, -1 = drawn (default) */
  /* Intensities. */
  ms_brain_intensity intensity;
  ms_brain_contrast contrast;     /* physics mode */
  ms_brain_sequence sequence;     /* physics mode; default from the contrast */
  double field_t;                 /* 1.5 or 3; default 3 */
  double tr_ms, te_ms, ti_ms;     /* 0 = the contrast's default (docs/phantoms.md) */
  double flip_deg;                /* gradient echo only; default 15 */
  double texture;                 /* within-tissue sd, fraction of the tissue value; default 0.03 */
  double bias;                    /* bias field strength; default 0.2 */
  double blur_mm[3];              /* Gaussian blur sd per axis (mm); default 0.5, 0.5, 0.5 */
  double noise;                   /* Rician noise sd, fraction of the brightest tissue; default 0.02 */
  double ct_noise_hu;             /* CT: Gaussian noise sd in HU; default 5 (no bias field for CT) */
  int noise_free;                 /* no texture, bias, blur or noise; default 0 */
  size_t max_bytes;               /* refuse larger outputs; default 4 GiB */
} ms_brain_params;

void ms_brain_params_init(ms_brain_params *p);
/* Validates every field; reports every problem to d. */
ms_status ms_brain_params_check(const ms_brain_params *p, ms_diag *d);

typedef struct {
  int dims[3];
  double spacing[3];
  size_t n_voxels;
  float *image;       /* [D][H][W] */
  uint8_t *labels;    /* tissue labels, [D][H][W] */
  uint8_t *aal;       /* AAL labels, [D][H][W] */
  double volume_mm3[256]; /* per tissue label, counted on labels */
  double age_years;   /* realised */
  double head_scale;  /* realised isotropic factor (geometric mean of the affine scales) */
  float tissue_value[MS_BRAIN_TISSUE_COUNT]; /* noise-free mean value of each label */
  double min_jacobian; /* smallest Jacobian determinant of phi on its grid */
  ms_brain_lobe tumour_lobe; /* realised lobe (MS_BRAIN_LOBE_ANY when no tumour) */
  double tumour_centre_mm[3]; /* atlas (MNI) position of the tumour centre */
  double tumour_diameter_mm;  /* realised rim diameter; 0 when no tumour */
  int stroke_side;            /* 0 left, 1 right; -1 without a stroke */
  void *scratch;      /* private */
} ms_brain_image;

ms_status ms_brain_image_init(ms_brain_image *img, const ms_brain_params *p, ms_diag *d);
void ms_brain_image_deinit(ms_brain_image *img);

/* RAS position (mm, MNI space of the atlas) of the output grid's centre:
 * the brain's centre plus slice_z_mm along the slice normal. Pass it as
 * ms_nifti_desc.origin_mm (and ms_brain_axes as .axes) so that an
 * undeformed subject's NIfTI overlays the atlas. Output voxel (i, j, k) is
 * at origin + axes * ((i - (W-1)/2) sx, (j - (H-1)/2) sy, (k - (D-1)/2) sz)
 * before the subject's affine and deformation (axial: (-(i - ..) sx,
 * -(j - ..) sy, (k - ..) sz)). */
void ms_brain_origin(const ms_brain_atlas *a, const ms_brain_params *p, double origin[3]);

/* Renders subject `index` of the run keyed by seed. */
ms_status ms_brain_generate(ms_brain_image *img, const ms_brain_atlas *a, const ms_brain_params *p,
                            uint64_t seed, uint64_t index, ms_diag *d);

#ifdef __cplusplus
}
#endif
#endif
