/* Parametric anatomy: the solids of a head, a chest slab and an abdomen slab,
 * randomised per patient within anatomical ranges.
 *
 * Invariants:
 *  - A scene is a pure function of (kind, subject overrides, seed, index).
 *    Draws use stream "phantom/anatomy/<kind>", index = image index, and a
 *    fixed lane per quantity (LANE_* below, shape phases at 100 + 8 * slot),
 *    so adding a draw never shifts another.
 *  - Nested layers (scalp, skull, CSF; skin, fat, muscle, cavity) share one
 *    deformation, so inner layers stay inside outer ones; solids marked with
 *    an `organ` are painted only where the label beneath equals that organ
 *    (white matter inside grey matter, lungs and abdominal organs inside the
 *    body cavity, lesions inside their organ).
 *
 * Dimensions are adult values in mm (head breadth ~145, length ~185; chest
 * ~330 x 225; abdomen ~320 x 235), chosen to look like axial CT at the level
 * of the lateral ventricles, the carina/heart and the renal hila. References:
 * Shepp & Logan, IEEE TNS 21(3), 1974 (ellipse head phantom); Gach et al.,
 * "2D & 3D Shepp-Logan phantom standards for MRI", ICSEng 2008; Segars et
 * al., "4D XCAT phantom", Med Phys 37(9), 2010 (organ layout). */
#include <math.h>
#include <string.h>

#include "phantom/phantom_internal.h"

enum {
  LANE_BODY_SCALE = 0,
  LANE_AGE = 1,
  LANE_VENT = 2,
  LANE_FAT = 3,
  LANE_MISC = 10, /* 10..99: kind-specific jitters */
  LANE_SHAPES = 100
};

static const double k_harm_weight[MS__SHAPE_HARMONICS] = {0.4, 0.3, 0.2, 0.1};

void ms__shape_set(ms__shape *s, int label, double cx, double cy, double cz, double ax, double ay,
                   double az, double theta, double p, double def_amp, ms_rng_key key,
                   uint64_t index, uint64_t lane) {
  memset(s, 0, sizeof *s);
  s->label = label;
  s->c[0] = cx;
  s->c[1] = cy;
  s->c[2] = cz;
  s->inv_a[0] = 1.0 / ax;
  s->inv_a[1] = 1.0 / ay;
  s->inv_a[2] = 1.0 / az;
  s->ct = cos(theta);
  s->st = sin(theta);
  s->p = p;
  double total = 0;
  if (def_amp > 0) {
    for (int k = 0; k < MS__SHAPE_HARMONICS; k++) {
      double amp = def_amp * k_harm_weight[k] * ms_rng_uniform(key, index, lane + 2 * (uint64_t)k);
      double ph = 2 * M_PI * ms_rng_uniform(key, index, lane + 2 * (uint64_t)k + 1);
      s->alpha[k] = amp * cos((k + 2) * ph);
      s->beta[k] = amp * sin((k + 2) * ph);
      total += amp;
    }
  }
  s->max_def = total;
  double lo = 1 - total, hi = 1 + total;
  s->lo_p = p == 2 ? lo * lo : pow(lo, p);
  s->hi_p = p == 2 ? hi * hi : pow(hi, p);
  /* For p >= 2 and three coordinates, power means give
   * 3^(1-p/2) r^p <= |u|^p + |v|^p + |w|^p <= r^p with r^2 = u^2+v^2+w^2, so
   * r <= 1 - max_def is inside and r^2 > (1 + max_def)^2 3^(1-2/p) outside
   * without evaluating pow. */
  s->in_r2 = lo * lo;
  s->out_r2 = hi * hi * (p == 2 ? 1 : pow(3.0, 1 - 2 / p));
  double m = 1 + total;
  double act = fabs(s->ct), ast = fabs(s->st);
  double hx = m * (ax * act + ay * ast), hy = m * (ax * ast + ay * act), hz = m * az;
  s->lo[0] = cx - hx;
  s->hi[0] = cx + hx;
  s->lo[1] = cy - hy;
  s->hi[1] = cy + hy;
  s->lo[2] = cz - hz;
  s->hi[2] = cz + hz;
}

int ms__shape_inside(const ms__shape *s, double x, double y, double z) {
  if (x < s->lo[0] || x > s->hi[0] || y < s->lo[1] || y > s->hi[1] || z < s->lo[2] ||
      z > s->hi[2])
    return 0;
  double dx = x - s->c[0], dy = y - s->c[1];
  double u = (dx * s->ct + dy * s->st) * s->inv_a[0];
  double v = (-dx * s->st + dy * s->ct) * s->inv_a[1];
  double w = (z - s->c[2]) * s->inv_a[2];
  double r2 = u * u + v * v + w * w;
  if (r2 <= s->in_r2) return 1;
  if (r2 > s->out_r2) return 0;
  int p2 = s->p == 2.0;
  double rho = r2;
  if (!p2) rho = pow(fabs(u), s->p) + pow(fabs(v), s->p) + (w != 0 ? pow(fabs(w), s->p) : 0);
  if (rho <= s->lo_p) return 1;
  if (rho > s->hi_p) return 0;
  /* Boundary band: evaluate the radial deformation at the azimuth of (u, v)
   * with Chebyshev recurrences instead of trigonometric calls. */
  double r = sqrt(u * u + v * v);
  double c1 = r > 0 ? u / r : 1, s1 = r > 0 ? v / r : 0;
  double ck = c1 * c1 - s1 * s1, sk = 2 * s1 * c1; /* k = 2 */
  double d = 0;
  for (int k = 0; k < MS__SHAPE_HARMONICS; k++) {
    d += s->alpha[k] * ck + s->beta[k] * sk;
    double cn = ck * c1 - sk * s1, sn = sk * c1 + ck * s1;
    ck = cn;
    sk = sn;
  }
  double lim = 1 + d;
  double lim_p = p2 ? lim * lim : pow(lim, s->p);
  return rho <= lim_p;
}

/* Label of the topmost solid among shapes[0..n) containing the point,
 * honouring organ clipping. */
static int eval_label(const ms__shape *shapes, int n, double x, double y, double z) {
  for (int j = n - 1; j >= 0; j--) {
    const ms__shape *s = &shapes[j];
    if (!ms__shape_inside(s, x, y, z)) continue;
    if (!s->organ) return s->label;
    int below = eval_label(shapes, j, x, y, z);
    return below == s->organ ? s->label : below;
  }
  return MS_LABEL_BACKGROUND;
}

static int eval_list(const ms__shape *shapes, const int *idx, int n, double x, double y, double z) {
  for (int j = n - 1; j >= 0; j--) {
    const ms__shape *s = &shapes[idx[j]];
    if (!ms__shape_inside(s, x, y, z)) continue;
    if (!s->organ) return s->label;
    int below = eval_list(shapes, idx, j, x, y, z);
    return below == s->organ ? s->label : below;
  }
  return MS_LABEL_BACKGROUND;
}

int ms__scene_label_list(const ms__scene *sc, const int *idx, int n, const int *lidx, int nl, double x,
                         double y, double z) {
  for (int j = nl - 1; j >= 0; j--) {
    const ms__shape *s = &sc->lesions[lidx[j]];
    if (ms__shape_inside(s, x, y, z)) {
      int below = eval_list(sc->shapes, idx, n, x, y, z);
      return below == s->organ ? s->label : below;
    }
  }
  return eval_list(sc->shapes, idx, n, x, y, z);
}

int ms__scene_anatomy_label(const ms__scene *sc, double x, double y, double z) {
  return eval_label(sc->shapes, sc->n_shapes, x, y, z);
}

int ms__scene_label(const ms__scene *sc, double x, double y, double z) {
  if (sc->n_lesions) {
    for (int j = sc->n_lesions - 1; j >= 0; j--) {
      const ms__shape *s = &sc->lesions[j];
      if (ms__shape_inside(s, x, y, z)) {
        int below = eval_label(sc->shapes, sc->n_shapes, x, y, z);
        if (below == s->organ) return s->label;
        return below;
      }
    }
  }
  return eval_label(sc->shapes, sc->n_shapes, x, y, z);
}

/* ---- builders ------------------------------------------------------------ */

typedef struct {
  ms__scene *sc;
  ms_rng_key key;
  uint64_t index;
} builder;

static double unif(builder *b, uint64_t lane, double lo, double hi) {
  return lo + (hi - lo) * ms_rng_uniform(b->key, b->index, lane);
}

static ms__shape *add(builder *b, int label, double cx, double cy, double cz, double ax,
                      double ay, double az, double theta, double p, double def, uint64_t phase_slot) {
  ms__scene *sc = b->sc;
  ms__shape *s = &sc->shapes[sc->n_shapes++];
  ms__shape_set(s, label, cx, cy, cz, ax, ay, az, theta, p, def, b->key, b->index,
                LANE_SHAPES + 8 * phase_slot);
  return s;
}

static void build_head(builder *b, const ms_phantom_subject *sj) {
  double s = sj->body_scale, vs = sj->ventricle_scale, age = sj->age_years;
  uint64_t L = LANE_MISC;
  double ax = 72 * s * unif(b, L + 0, 0.95, 1.05), ay = 92 * s * unif(b, L + 1, 0.95, 1.05),
         az = 80 * s * unif(b, L + 2, 0.95, 1.05);
  double cx = unif(b, L + 3, -3, 3), cy = unif(b, L + 4, -3, 3);
  double th = unif(b, L + 5, -0.06, 0.06);
  double p_head = unif(b, L + 6, 2.0, 2.3);
  double scalp = unif(b, L + 7, 4, 6.5), skull = unif(b, L + 8, 5, 8);
  double sulcal = 1.2 + 0.045 * (age - 20) + unif(b, L + 9, 0, 1); /* atrophy widens CSF */
  double cortex = unif(b, L + 10, 2.5, 3.5);
  double def = 0.025;
  /* Nested layers share phase slot 0, so they deform alike. */
  add(b, MS_LABEL_SOFT_TISSUE, cx, cy, 0, ax, ay, az, th, p_head, def, 0);
  double t = scalp;
  add(b, MS_LABEL_SKULL, cx, cy, 0, ax - t, ay - t, az - t, th, p_head, def, 0);
  t += skull;
  add(b, MS_LABEL_CSF, cx, cy, 0, ax - t, ay - t, az - t, th, p_head, def, 0);
  t += sulcal;
  ms__shape *gm = add(b, MS_LABEL_GREY_MATTER, cx, cy, 0, ax - t, ay - t, az - t, th, p_head, def, 0);
  (void)gm;
  t += cortex;
  ms__shape *wm = add(b, MS_LABEL_WHITE_MATTER, cx, cy, 0, ax - t, ay - t, az - t, th, p_head,
                      0.07, 1); /* gyral folding: own, stronger deformation */
  wm->organ = MS_LABEL_GREY_MATTER;
  /* Deep grey nuclei (thalamus / basal ganglia), inside white matter. */
  for (int side = 0; side < 2; side++) {
    double sg = side ? 1 : -1;
    ms__shape *dg = add(b, MS_LABEL_GREY_MATTER, cx + sg * 20 * s, cy + 8 * s, 2, 9 * s,
                        14 * s * unif(b, L + 11 + (uint64_t)side, 0.9, 1.1), 10 * s,
                        th - sg * 0.35, 2, 0.05, 2 + (uint64_t)side);
    dg->organ = MS_LABEL_WHITE_MATTER;
  }
  /* Lateral ventricles: two tilted ellipsoids, sized by ventricle_scale. */
  double vx = 5.5 * s * vs, vy = 24 * s * sqrt(vs), vz = 10 * s * vs;
  for (int side = 0; side < 2; side++) {
    double sg = side ? 1 : -1;
    add(b, MS_LABEL_VENTRICLE, cx + sg * (4 + 3 * vs) * s, cy - 4 * s + unif(b, L + 13, -2, 2),
        6 * s, vx * unif(b, L + 14 + (uint64_t)side, 0.9, 1.1), vy, vz,
        th + sg * (0.18 + unif(b, L + 16 + (uint64_t)side, -0.05, 0.05)), 2, 0.06,
        4 + (uint64_t)side);
  }
}

/* Skin, subcutaneous fat, muscle wall and cavity of a trunk slab, then the
 * spine and paraspinal muscles. Returns the half-axes of the muscle-layer
 * centre line (for ribs). */
static void build_trunk_wall(builder *b, const ms_phantom_subject *sj, double ax, double ay,
                             double spine_y, double *rib_ax, double *rib_ay) {
  double s = sj->body_scale, f = sj->fat_mm;
  uint64_t L = LANE_MISC;
  double p = unif(b, L + 0, 2.2, 2.8);
  double th = unif(b, L + 1, -0.03, 0.03);
  double muscle = unif(b, L + 2, 9, 15) * s;
  double zl = 400; /* slabs extend far along z */
  double def = 0.03;
  add(b, MS_LABEL_SOFT_TISSUE, 0, 0, 0, ax, ay, zl, th, p, def, 0);
  add(b, MS_LABEL_FAT, 0, 0, 0, ax - 2, ay - 2, zl, th, p, def, 0);
  double t = 2 + f;
  add(b, MS_LABEL_MUSCLE, 0, 0, 0, ax - t, ay - t, zl, th, p, def, 0);
  *rib_ax = ax - t - muscle / 2;
  *rib_ay = ay - t - muscle / 2;
  t += muscle;
  add(b, MS_LABEL_SOFT_TISSUE, 0, 0, 0, ax - t, ay - t, zl, th, p, def, 0);
  for (int side = 0; side < 2; side++) {
    double sg = side ? 1 : -1;
    add(b, MS_LABEL_MUSCLE, sg * 38 * s, spine_y + 26 * s, 0, 30 * s, 21 * s, zl, sg * 0.2, 2, 0.04,
        1 + (uint64_t)side);
  }
  (void)L;
}

static void build_spine(builder *b, double s, double y0) {
  double zl = 400;
  add(b, MS_LABEL_VERTEBRA, 0, y0 + 30 * s, 0, 26 * s, 9 * s, zl, 0, 2, 0, 0);
  add(b, MS_LABEL_VERTEBRA, 0, y0 + 44 * s, 0, 5 * s, 13 * s, zl, 0, 2, 0, 0);
  add(b, MS_LABEL_VERTEBRA, 0, y0, 0, 21 * s, 17 * s, zl, 0, 2.3, 0, 0);
  add(b, MS_LABEL_SPINAL_CANAL, 0, y0 + 23 * s, 0, 8 * s, 7 * s, zl, 0, 2, 0, 0);
}

static void build_chest(builder *b, const ms_phantom_subject *sj) {
  double s = sj->body_scale;
  uint64_t L = LANE_MISC + 20;
  double ax = 165 * s * unif(b, L + 0, 0.95, 1.05), ay = 112 * s * unif(b, L + 1, 0.95, 1.05);
  double spine_y = 64 * s;
  double rax, ray;
  build_trunk_wall(b, sj, ax, ay, spine_y, &rax, &ray);
  double zl = 400;
  for (int side = 0; side < 2; side++) {
    double sg = side ? 1 : -1;
    ms__shape *lung = add(b, MS_LABEL_LUNG, sg * 70 * s * unif(b, L + 2 + (uint64_t)side, 0.95, 1.05),
                          -6 * s, 0, (side ? 54 : 58) * s * unif(b, L + 4 + (uint64_t)side, 0.93, 1.07),
                          88 * s * unif(b, L + 6 + (uint64_t)side, 0.93, 1.07), zl,
                          sg * unif(b, L + 8 + (uint64_t)side, 0.0, 0.12), unif(b, L + 10, 2.2, 3.0),
                          0.05, 3 + (uint64_t)side);
    lung->organ = MS_LABEL_SOFT_TISSUE;
  }
  add(b, MS_LABEL_HEART, 18 * s + unif(b, L + 11, -5, 5), -22 * s + unif(b, L + 12, -5, 5), 0,
      52 * s * unif(b, L + 13, 0.9, 1.1), 42 * s * unif(b, L + 14, 0.9, 1.1), zl,
      0.5 + unif(b, L + 15, -0.15, 0.15), 2, 0.04, 5);
  double ra = 14 * s * unif(b, L + 16, 0.85, 1.15), rd = 12 * s * unif(b, L + 17, 0.85, 1.15);
  add(b, MS_LABEL_AORTA, -12 * s, -45 * s, 0, ra, ra, zl, 0, 2, 0, 0);
  add(b, MS_LABEL_AORTA, 24 * s, spine_y - 14 * s, 0, rd, rd, zl, 0, 2, 0, 0);
  build_spine(b, s, spine_y);
  /* Ribs: six per side on the centre line of the chest-wall muscle. */
  static const double ang_deg[6] = {-65, -35, -5, 25, 55, 80};
  for (int side = 0; side < 2; side++) {
    for (int j = 0; j < 6; j++) {
      double a = (ang_deg[j] + unif(b, L + 20 + (uint64_t)(side * 6 + j), -5, 5)) * M_PI / 180;
      if (side) a = M_PI - a;
      double x = rax * cos(a), y = ray * sin(a);
      double tang = atan2(ray * cos(a), -rax * sin(a));
      add(b, MS_LABEL_RIB, x, y, 0, 8 * s, 4.5 * s, zl, tang, 2, 0, 0);
    }
  }
}

static void build_abdomen(builder *b, const ms_phantom_subject *sj) {
  double s = sj->body_scale;
  uint64_t L = LANE_MISC + 50;
  double ax = 160 * s * unif(b, L + 0, 0.95, 1.05), ay = 118 * s * unif(b, L + 1, 0.95, 1.05);
  double spine_y = 68 * s;
  double rax, ray;
  build_trunk_wall(b, sj, ax, ay, spine_y, &rax, &ray);
  double zl = 400;
  ms__shape *liver = add(b, MS_LABEL_LIVER, -55 * s + unif(b, L + 2, -6, 6), -15 * s + unif(b, L + 3, -6, 6), 0,
                         78 * s * unif(b, L + 4, 0.92, 1.08), 70 * s * unif(b, L + 5, 0.92, 1.08), zl,
                         0.25 + unif(b, L + 6, -0.1, 0.1), unif(b, L + 7, 2.2, 2.8), 0.06, 3);
  liver->organ = MS_LABEL_SOFT_TISSUE;
  ms__shape *spleen = add(b, MS_LABEL_SPLEEN, 88 * s, 22 * s + unif(b, L + 8, -6, 6), 0,
                          24 * s * unif(b, L + 9, 0.85, 1.15), 44 * s * unif(b, L + 10, 0.85, 1.15), zl,
                          -0.5 + unif(b, L + 11, -0.1, 0.1), 2.2, 0.06, 4);
  spleen->organ = MS_LABEL_SOFT_TISSUE;
  for (int side = 0; side < 2; side++) {
    double sg = side ? 1 : -1;
    add(b, MS_LABEL_KIDNEY, sg * 62 * s, spine_y - 16 * s + unif(b, L + 12 + (uint64_t)side, -5, 5), 0,
        24 * s * unif(b, L + 14 + (uint64_t)side, 0.9, 1.1), 34 * s * unif(b, L + 16 + (uint64_t)side, 0.9, 1.1),
        zl, sg * (0.35 + unif(b, L + 18 + (uint64_t)side, -0.1, 0.1)), 2.2, 0.05, 5 + (uint64_t)side);
  }
  double ra = 11 * s * unif(b, L + 20, 0.85, 1.15);
  add(b, MS_LABEL_AORTA, 12 * s, spine_y - 28 * s, 0, ra, ra, zl, 0, 2, 0, 0);
  build_spine(b, s, spine_y);
}

static const char *kind_stream[MS_PHANTOM_KIND_COUNT] = {
    "phantom/anatomy/head", "phantom/anatomy/chest", "phantom/anatomy/abdomen"};

ms_status ms__scene_build(ms__scene *sc, const ms_phantom_params *p,
                          const ms_phantom_subject *subject, uint64_t seed, uint64_t index,
                          ms_phantom_subject *out, ms_diag *d) {
  (void)d;
  memset(sc, 0, sizeof *sc);
  builder b = {sc, ms_rng_key_make(seed, ms_rng_stream(kind_stream[p->kind])), index};
  ms_phantom_subject sj;
  ms_phantom_subject_init(&sj);
  if (subject) sj = *subject;
  if (isnan(sj.body_scale)) sj.body_scale = unif(&b, LANE_BODY_SCALE, 0.88, 1.12);
  if (isnan(sj.age_years)) sj.age_years = unif(&b, LANE_AGE, 20, 85);
  if (isnan(sj.ventricle_scale)) {
    /* Lateral ventricles grow with age (Evans index rises ~0.25 -> ~0.30). */
    double v = (0.8 + 0.015 * (sj.age_years - 20)) * exp(0.15 * ms_rng_normal(b.key, index, LANE_VENT));
    sj.ventricle_scale = fmin(2.5, fmax(0.5, v));
  }
  if (isnan(sj.fat_mm)) sj.fat_mm = unif(&b, LANE_FAT, 8, 30) * sj.body_scale;
  switch (p->kind) {
    case MS_PHANTOM_HEAD:
      build_head(&b, &sj);
      break;
    case MS_PHANTOM_CHEST:
      build_chest(&b, &sj);
      break;
    case MS_PHANTOM_ABDOMEN:
      build_abdomen(&b, &sj);
      break;
    default:
      return MS_ERR_INVALID;
  }
  *out = sj;
  return MS_OK;
}
