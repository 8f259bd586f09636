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

/* A tube: the capsule of radius r around the segment a..a+ab (round ends,
 * so a parent and its children join without gaps). Tubes form the airway
 * and pulmonary vessel trees and the mediastinal vessels; they paint over
 * the solids only where the solid label beneath is in `allowed`, so a tree
 * clipped to the lung can never leave it. An airway tube (lumen radius
 * rin > 0) paints its lumen as MS_LABEL_AIRWAY and the rest as its wall.
 * Classes decide overlaps: airway lumen, airway wall, pulmonary artery,
 * pulmonary vein, first wins. */
enum {
  MS__TUBE_LUMEN,
  MS__TUBE_WALL,
  MS__TUBE_ARTERY,
  MS__TUBE_VEIN,
  MS__TUBE_CLASSES
};
#define MS__MAX_TUBES 10000

typedef struct {
  double a[3], ab[3], inv_len2;
  double r, rin;         /* outer and lumen radius (rin = 0: no lumen) */
  double r2, rin2;
  double lo[3], hi[3];   /* bounding box (mm) */
  uint32_t allowed;      /* bit l: may paint where the solids give label l (< 32) */
  int cls;               /* MS__TUBE_* of the outer radius */
  int gen;               /* generation: 0 trachea / pulmonary trunk, 1 main bronchi / arteries, ... */
  int parent;            /* index of the parent tube of the same tree, -1 for a root */
} ms__tube;

/* Spicules of a nodule: thin cones from inside the body (t = base along
 * dir from the centre) to the tip (t = tip), half-width w at t = base
 * shrinking linearly to 0 at the tip. */
#define MS__MAX_SPIKES 24
typedef struct {
  int n;
  double dir[MS__MAX_SPIKES][3];
  double base[MS__MAX_SPIKES], tip[MS__MAX_SPIKES], w[MS__MAX_SPIKES];
} ms__spikes;

typedef struct {
  int n_shapes;
  ms__shape shapes[MS__MAX_SHAPES]; /* painting order */
  int n_tubes;
  uint32_t tube_bases;              /* union of the tubes' allowed masks */
  int n_lesions;
  ms__shape lesions[MS_PHANTOM_MAX_LESIONS];
  int lesion_mask_organs; /* bitmask of organ labels (< 32) that hold lesions */
  /* Subsolid nodules: weight of the solid value in the ground-glass value
   * (0 for solid lesions) and the solid core's radius (mm, 0 = none). */
  double ggo_weight[MS_PHANTOM_MAX_LESIONS];
  double core_r[MS_PHANTOM_MAX_LESIONS];
  int n_cores; /* lesions with a core (0: every lesion pixel is its label's value) */
  ms__spikes spikes[MS_PHANTOM_MAX_LESIONS];
  ms__tube tubes[MS__MAX_TUBES]; /* last: only n_tubes are initialised */
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
/* Capsule test of a tube (bounding box first): 0 outside, 1 in the wall /
 * vessel, 2 in an airway lumen. */
int ms__tube_hit(const ms__tube *t, double x, double y, double z);
/* Label a tube overlay gives a point whose solid label is `base`, from the
 * union masks hit[c] of the tubes of each class containing the point. */
int ms__tube_resolve(const uint32_t hit[MS__TUBE_CLASSES], int base);
/* Whether lesion k of the scene contains a point (body or spicule). */
int ms__lesion_inside(const ms__scene *sc, int k, double x, double y, double z);
/* Label at a point using only the solids listed in idx[0..n) (painting
 * order), lesions lidx[0..nl) and tubes tidx[0..nt); callers pass those whose
 * bounding boxes can contain the point. */
int ms__scene_label_list(const ms__scene *sc, const int *idx, int n, const int *lidx, int nl,
                         const int *tidx, int nt, double x, double y, double z);
/* The same with the tube overlay already resolved by the caller: `tube`
 * is the label ms__tube_resolve gave (or the solid label when no tube
 * covers the point), `base` the solid label. */
int ms__scene_label_resolved(const ms__scene *sc, const int *lidx, int nl, int base, int tube, double x,
                             double y, double z);
/* Solid label at a point from the listed solids (no tubes, no lesions). */
int ms__scene_solid_label_list(const ms__scene *sc, const int *idx, int n, double x, double y, double z);

/* Builds the anatomy of one patient; realised subject values go to *out. */
ms_status ms__scene_build(ms__scene *sc, const ms_phantom_params *p,
                          const ms_phantom_subject *subject, uint64_t seed, uint64_t index,
                          ms_phantom_subject *out, ms_diag *d);
/* Label of the solids at a point (no tubes, no lesions): the host anatomy
 * that lesions and tubes are clipped to. */
int ms__scene_anatomy_label(const ms__scene *sc, double x, double y, double z);
/* Anatomy label at a point: solids and tubes (no lesions). */
int ms__scene_anatomy_full(const ms__scene *sc, double x, double y, double z);
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
