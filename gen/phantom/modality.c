/* Modality models: tissue values for CT (Hounsfield units) and spin-echo MR
 * (T1- and T2-weighted), per-patient jitter, lesion tissue, display windows.
 *
 * CT values: typical unenhanced attenuation (air -1000, lung ~-850, fat
 * ~-100, CSF 0-15, white matter 20-30, grey matter 35-45, blood ~40, muscle
 * ~50, liver 55-65, cancellous bone ~300-400, cortical bone ~1000); Hofer,
 * "CT Teaching Manual", Thieme 2010; Lev & Gonzalez, "CT angiography and CT
 * perfusion", 2002 (brain); Brooks, "A quantitative theory of the Hounsfield
 * unit", J Comput Assist Tomogr 1(4), 1977.
 *
 * MR values: signal S = PD (1 - exp(-TR/T1)) exp(-TE/T2), T1-weighted TR 500
 * TE 15 ms, T2-weighted TR 4000 TE 100 ms, scaled by 1000. Relaxation times at
 * 1.5 T: brain tissues from BrainWeb (Kwan, Evans & Pike, IEEE TMI 18(11),
 * 1999; Collins et al., IEEE TMI 17(3), 1998); abdominal tissues from de
 * Bazelaire et al., Radiology 230(3), 2004; blood from Stanisz et al., MRM
 * 54(3), 2005. Bone cortex and air give almost no signal; vertebral marrow
 * is fatty.
 *
 * Invariant: jitter draws use stream "phantom/tissue", index = image index,
 * lane = label, so a tissue's value does not depend on which other labels
 * an image holds. */
#include <math.h>
#include <string.h>

#include "phantom/phantom_internal.h"

typedef struct {
  double hu, hu_sd;    /* CT mean and per-patient sd */
  double pd, t1, t2;   /* MR proton density (relative), T1, T2 (ms) */
} tissue;

static const tissue k_tissue[MS_LABEL_COUNT] = {
    [MS_LABEL_BACKGROUND] = {-1000, 0, 0.0, 1000, 1},
    [MS_LABEL_SOFT_TISSUE] = {40, 5, 0.85, 900, 60},
    [MS_LABEL_FAT] = {-100, 8, 0.95, 343, 58},
    [MS_LABEL_MUSCLE] = {50, 4, 0.80, 856, 27},
    [MS_LABEL_SKULL] = {1000, 80, 0.05, 1000, 1},
    [MS_LABEL_VERTEBRA] = {350, 40, 0.80, 550, 50},
    [MS_LABEL_RIB] = {700, 80, 0.40, 550, 20},
    [MS_LABEL_CSF] = {8, 3, 1.00, 2569, 329},
    [MS_LABEL_GREY_MATTER] = {40, 3, 0.86, 833, 83},
    [MS_LABEL_WHITE_MATTER] = {27, 2, 0.77, 500, 70},
    [MS_LABEL_VENTRICLE] = {8, 3, 1.00, 2569, 329},
    [MS_LABEL_LUNG] = {-850, 25, 0.10, 1200, 30},
    [MS_LABEL_HEART] = {42, 4, 0.85, 1100, 60},
    [MS_LABEL_AORTA] = {40, 4, 0.90, 1441, 290},
    [MS_LABEL_LIVER] = {60, 4, 0.75, 586, 46},
    [MS_LABEL_KIDNEY] = {32, 4, 0.85, 966, 87},
    [MS_LABEL_SPLEEN] = {48, 4, 0.85, 1057, 79},
    [MS_LABEL_SPINAL_CANAL] = {20, 4, 0.95, 1500, 150},
    /* Chest: airway air is calibration air; the airway wall soft tissue
     * (with cartilage); every blood pool and vessel unenhanced blood (New &
     * Aronow 1976: ~40 HU at a normal haematocrit); sternum cancellous bone
     * with marrow like a vertebral body; the scapula a thin plate of mostly
     * cortical bone like a rib. */
    [MS_LABEL_AIRWAY] = {-1000, 0, 0.0, 1000, 1},
    [MS_LABEL_AIRWAY_WALL] = {50, 8, 0.75, 900, 40},
    [MS_LABEL_PULMONARY_ARTERY] = {40, 4, 0.90, 1441, 290},
    [MS_LABEL_PULMONARY_VEIN] = {40, 4, 0.90, 1441, 290},
    [MS_LABEL_LEFT_VENTRICLE] = {40, 4, 0.90, 1441, 290},
    [MS_LABEL_RIGHT_VENTRICLE] = {40, 4, 0.90, 1441, 290},
    [MS_LABEL_LEFT_ATRIUM] = {40, 4, 0.90, 1441, 290},
    [MS_LABEL_RIGHT_ATRIUM] = {40, 4, 0.90, 1441, 290},
    [MS_LABEL_SUPERIOR_VENA_CAVA] = {40, 4, 0.90, 1441, 290},
    [MS_LABEL_STERNUM] = {400, 50, 0.80, 550, 50},
    [MS_LABEL_SCAPULA] = {700, 80, 0.40, 550, 20},
};

/* Jitter lane of a label: labels holding the same fluid share one draw
 * (ventricles: the CSF of the subarachnoid space; every chest blood pool:
 * the aorta's blood). */
static uint64_t jitter_lane(int l) {
  if (l == MS_LABEL_VENTRICLE) return MS_LABEL_CSF;
  if (l >= MS_LABEL_PULMONARY_ARTERY && l <= MS_LABEL_SUPERIOR_VENA_CAVA) return MS_LABEL_AORTA;
  return (uint64_t)l;
}

/* Typical lesion tissue per host organ: white/grey matter -> demyelinating or
 * small ischaemic lesion (hypodense on CT, long T1/T2); lung -> solid nodule;
 * liver/spleen -> hypovascular metastasis; kidney -> simple cyst; heart ->
 * thrombus-like soft tissue. */
static tissue lesion_tissue(int organ) {
  switch (organ) {
    case MS_LABEL_WHITE_MATTER:
    case MS_LABEL_GREY_MATTER:
      return (tissue){18, 0, 0.90, 1300, 180};
    case MS_LABEL_LUNG:
      return (tissue){30, 0, 0.80, 900, 70};
    case MS_LABEL_LIVER:
    case MS_LABEL_SPLEEN:
      return (tissue){30, 0, 0.85, 1100, 95};
    case MS_LABEL_KIDNEY:
      return (tissue){5, 0, 1.00, 3000, 1500};
    default:
      return (tissue){60, 0, 0.80, 800, 50};
  }
}

static double mr_signal(ms_modality m, double pd, double t1, double t2) {
  double tr = m == MS_MODALITY_T1 ? 500 : 4000, te = m == MS_MODALITY_T1 ? 15 : 100;
  if (pd <= 0) return 0;
  return 1000 * pd * (1 - exp(-tr / t1)) * exp(-te / t2);
}

double ms__tissue_reference(ms_modality m, ms_phantom_kind k, int label) {
  (void)k;
  if (label < 0 || label >= MS_LABEL_COUNT) return 0;
  const tissue *t = &k_tissue[label];
  if (m == MS_MODALITY_CT) return t->hu;
  return mr_signal(m, t->pd, t->t1, t->t2);
}

double ms__mr_reference_signal(ms_modality m) {
  /* White matter signal: the usual reference for MR noise levels. */
  const tissue *t = &k_tissue[MS_LABEL_WHITE_MATTER];
  return mr_signal(m, t->pd, t->t1, t->t2);
}

void ms__tissue_values(float values[256], const ms_phantom_params *p, uint64_t seed,
                       uint64_t index) {
  for (int i = 0; i < 256; i++) values[i] = 0;
  ms_rng_key key = ms_rng_key_make(seed, ms_rng_stream("phantom/tissue"));
  for (int l = 0; l < MS_LABEL_COUNT; l++) {
    const tissue *t = &k_tissue[l];
    uint64_t lane = jitter_lane(l);
    double z = p->tissue_jitter && l != MS_LABEL_BACKGROUND ? ms_rng_normal(key, index, lane) : 0;
    z = fmax(-2.5, fmin(2.5, z));
    double v;
    if (p->modality == MS_MODALITY_CT) {
      v = t->hu + z * t->hu_sd;
    } else {
      /* 5 % relaxation-time variation, same draw for T1 and T2. */
      v = mr_signal(p->modality, t->pd, t->t1 * (1 + 0.05 * z), t->t2 * (1 + 0.05 * z));
    }
    values[l] = (float)v;
  }
}

double ms__lesion_value(ms_modality m, int organ, double organ_value, double contrast) {
  tissue t = lesion_tissue(organ);
  double typical = m == MS_MODALITY_CT ? t.hu : mr_signal(m, t.pd, t.t1, t.t2);
  return organ_value + contrast * (typical - organ_value);
}

/* ---- windows -------------------------------------------------------------- */

static const struct {
  const char *name;
  double center, width;
} k_windows[] = {{"lung", -600, 1500},  {"mediastinum", 50, 350}, {"bone", 500, 2000},
                 {"brain", 40, 80},     {"abdomen", 50, 400},     {"soft_tissue", 50, 400}};

ms_status ms_window_preset(const char *name, ms_window *w) {
  for (size_t i = 0; i < sizeof k_windows / sizeof k_windows[0]; i++) {
    if (name && strcmp(name, k_windows[i].name) == 0) {
      w->center = k_windows[i].center;
      w->width = k_windows[i].width;
      return MS_OK;
    }
  }
  return MS_ERR_NOTFOUND;
}

ms_window ms_phantom_default_window(const ms_phantom_params *p) {
  ms_window w = {0, 1};
  if (p->modality == MS_MODALITY_CT) {
    size_t i = p->kind == MS_PHANTOM_HEAD ? 3 : p->kind == MS_PHANTOM_CHEST ? 1 : 4;
    w.center = k_windows[i].center;
    w.width = k_windows[i].width;
    return w;
  }
  double mx = 0;
  for (int l = 0; l < MS_LABEL_COUNT; l++) mx = fmax(mx, ms__tissue_reference(p->modality, p->kind, l));
  w.center = 0.55 * mx;
  w.width = 1.1 * mx;
  return w;
}

uint8_t ms_window_apply_u8(ms_window w, float v) {
  double lo = w.center - w.width / 2;
  double t = (v - lo) / w.width;
  if (!(t > 0)) return 0; /* also NaN */
  if (t >= 1) return 255;
  return (uint8_t)lrint(t * 255.0);
}
