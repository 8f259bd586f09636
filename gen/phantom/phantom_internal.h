/* Private pieces shared by the phantom sources: the solid primitive, the
 * scene (one patient's solids and lesions) and the keyed stream names.
 *
 * Invariant: a scene is a pure function of (params.kind, subject, seed,
 * index); it never depends on the image size, so every resolution and every
 * plane of a volume sees the same patient. */
#ifndef MEDSYNTH_PHANTOM_INTERNAL_H
#define MEDSYNTH_PHANTOM_INTERNAL_H

#include "medsynth/phantom.h"
#include "medsynth/rng.h"

#define MS__SHAPE_HARMONICS 4 /* radial deformation harmonics k = 2..5 */
#define MS__MAX_SHAPES 64

/* A superellipsoid |u|^p + |v|^p + |w|^p <= (1 + d(phi))^p in the local frame
 * (u, v, w) = (R(-theta) (x - c)) / a, with d(phi) = sum_k alpha_k cos k phi +
 * beta_k sin k phi, phi the azimuth of (u, v). max_def bounds |d|. */
typedef struct {
  double c[3];
  double inv_a[3];
  double ct, st; /* cos/sin of the in-plane rotation */
  double p;
  double alpha[MS__SHAPE_HARMONICS], beta[MS__SHAPE_HARMONICS];
  double max_def;
  double lo_p, hi_p;   /* (1 - max_def)^p, (1 + max_def)^p */
  double in_r2, out_r2; /* u^2+v^2+w^2 below in_r2: inside; above out_r2: outside */
  double lo[3], hi[3]; /* axis-aligned bounding box (mm) */
  int label;
  int organ; /* lesions: paint only where the anatomy label equals this; 0 otherwise */
} ms__shape;

typedef struct {
  int n_shapes;
  ms__shape shapes[MS__MAX_SHAPES]; /* painting order */
  int n_lesions;
  ms__shape lesions[MS_PHANTOM_MAX_LESIONS];
  int lesion_mask_organs; /* bitmask of organ labels (< 32) that hold lesions */
  /* Subsolid nodules: weight of the solid value in the ground-glass value
   * (0 for solid lesions) and the solid core's radius (mm, 0 = none). */
  double ggo_weight[MS_PHANTOM_MAX_LESIONS];
  double core_r[MS_PHANTOM_MAX_LESIONS];
  int n_cores; /* lesions with a core (0: every lesion pixel is its label's value) */
} ms__scene;

/* tissue_value slot of the solid core of lesion k (labels there are unused). */
#define MS__CORE_SLOT(k) (MS_LABEL_LESION_FIRST + MS_PHANTOM_MAX_LESIONS + (k))

/* Fills shape geometry and its bounding box. a = semi-axes (mm), theta in
 * radians, def_amp = total deformation amplitude split over the harmonics
 * with keyed random phases (lanes lane .. lane+7 of (key, index)). */
void ms__shape_set(ms__shape *s, int label, double cx, double cy, double cz, double ax, double ay,
                   double az, double theta, double p, double def_amp, ms_rng_key key,
                   uint64_t index, uint64_t lane);
int ms__shape_inside(const ms__shape *s, double x, double y, double z);
/* Label at a point using only the solids listed in idx[0..n) (painting order);
 * callers pass the solids whose bounding boxes can contain the point. */
int ms__scene_label_list(const ms__scene *sc, const int *idx, int n, const int *lidx, int nl, double x,
                         double y, double z);

/* Builds the anatomy of one patient; realised subject values go to *out. */
ms_status ms__scene_build(ms__scene *sc, const ms_phantom_params *p,
                          const ms_phantom_subject *subject, uint64_t seed, uint64_t index,
                          ms_phantom_subject *out, ms_diag *d);
/* Anatomy label at a point (no lesions). */
int ms__scene_anatomy_label(const ms__scene *sc, double x, double y, double z);
/* Full label at a point (lesions included). */
int ms__scene_label(const ms__scene *sc, double x, double y, double z);

/* Places lesions (appends to sc->lesions). */
ms_status ms__lesions_place(ms__scene *sc, const ms_phantom_params *p, int n_lesions,
                            uint64_t seed, uint64_t index, ms_phantom_lesion *table,
                            ms_diag *d);
int ms__lesion_default_organ(ms_phantom_kind k);
/* Whether the kind's anatomy contains an organ able to hold lesions. */
int ms__lesion_organ_allowed(ms_phantom_kind k, int organ);

/* Tissue values of a modality for one patient (jittered when asked). */
void ms__tissue_values(float values[256], const ms_phantom_params *p, uint64_t seed,
                       uint64_t index);
/* Reference value of one label (no jitter). */
double ms__tissue_reference(ms_modality m, ms_phantom_kind k, int label);
/* Value of a lesion in `organ` with contrast factor c. */
double ms__lesion_value(ms_modality m, int organ, double organ_value, double contrast);
/* Reference MR signal used to scale MR noise and intensity shifts. */
double ms__mr_reference_signal(ms_modality m);

#endif
