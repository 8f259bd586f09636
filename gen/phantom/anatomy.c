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
 *  - The chest's airway and vessel trees are tubes (capsules) drawn from
 *    their own stream (see "chest trees" below); a tube paints only over
 *    the solid labels in its `allowed` mask, so intrapulmonary branches
 *    stay inside the lungs. A point's label is: the solids' label (base),
 *    then the tube overlay, then a lesion where base is its organ.
 *
 * Dimensions are adult values in mm (head breadth ~145, length ~185; chest
 * ~330 x 225; abdomen ~320 x 235), chosen to look like axial CT at the level
 * of the lateral ventricles, the carina/heart and the renal hila. References:
 * Shepp & Logan, IEEE TNS 21(3), 1974 (ellipse head phantom); Gach et al.,
 * "2D & 3D Shepp-Logan phantom standards for MRI", ICSEng 2008; Segars et
 * al., "4D XCAT phantom", Med Phys 37(9), 2010 (organ layout). */
#include <math.h>
#include <stddef.h>
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

int ms__tube_hit(const ms__tube *t, double x, double y, double z) {
  if (x < t->lo[0] || x > t->hi[0] || y < t->lo[1] || y > t->hi[1] || z < t->lo[2] || z > t->hi[2])
    return 0;
  double px = x - t->a[0], py = y - t->a[1], pz = z - t->a[2];
  double u = (px * t->ab[0] + py * t->ab[1] + pz * t->ab[2]) * t->inv_len2;
  u = u < 0 ? 0 : u > 1 ? 1 : u;
  double dx = px - u * t->ab[0], dy = py - u * t->ab[1], dz = pz - u * t->ab[2];
  double d2 = dx * dx + dy * dy + dz * dz;
  if (d2 > t->r2) return 0;
  return d2 <= t->rin2 ? 2 : 1;
}

static const int k_tube_label[MS__TUBE_CLASSES] = {MS_LABEL_AIRWAY, MS_LABEL_AIRWAY_WALL, MS_LABEL_PULMONARY_ARTERY,
                                                    MS_LABEL_PULMONARY_VEIN};

int ms__tube_resolve(const uint32_t hit[MS__TUBE_CLASSES], int base) {
  if (base >= 32) return base;
  for (int c = 0; c < MS__TUBE_CLASSES; c++)
    if (hit[c] >> base & 1u) return k_tube_label[c];
  return base;
}

/* Tube overlay at a point over the listed tubes. */
static int tube_overlay(const ms__scene *sc, const int *tidx, int nt, int base, double x, double y, double z) {
  if (base >= 32 || !(sc->tube_bases >> base & 1u)) return base;
  uint32_t hit[MS__TUBE_CLASSES] = {0};
  for (int j = 0; j < nt; j++) {
    const ms__tube *t = &sc->tubes[tidx ? tidx[j] : j];
    int h = ms__tube_hit(t, x, y, z);
    if (!h) continue;
    hit[t->cls] |= t->allowed;
    if (h == 2) hit[MS__TUBE_LUMEN] |= t->allowed;
  }
  return ms__tube_resolve(hit, base);
}

int ms__lesion_inside(const ms__scene *sc, int k, double x, double y, double z) {
  const ms__shape *s = &sc->lesions[k];
  if (x < s->lo[0] || x > s->hi[0] || y < s->lo[1] || y > s->hi[1] || z < s->lo[2] || z > s->hi[2]) return 0;
  if (ms__shape_inside(s, x, y, z)) return 1;
  const ms__spikes *sp = &sc->spikes[k];
  double px = x - s->c[0], py = y - s->c[1], pz = z - s->c[2];
  double p2 = px * px + py * py + pz * pz;
  for (int i = 0; i < sp->n; i++) {
    double t = px * sp->dir[i][0] + py * sp->dir[i][1] + pz * sp->dir[i][2];
    if (t < sp->base[i] || t > sp->tip[i]) continue;
    double w = sp->w[i] * (sp->tip[i] - t) / (sp->tip[i] - sp->base[i]);
    if (p2 - t * t <= w * w) return 1;
  }
  return 0;
}

int ms__scene_solid_label_list(const ms__scene *sc, const int *idx, int n, double x, double y, double z) {
  return eval_list(sc->shapes, idx, n, x, y, z);
}

int ms__scene_label_resolved(const ms__scene *sc, const int *lidx, int nl, int base, int tube, double x,
                             double y, double z) {
  for (int j = nl - 1; j >= 0; j--) {
    int k = lidx ? lidx[j] : j;
    if (ms__lesion_inside(sc, k, x, y, z)) return base == sc->lesions[k].organ ? sc->lesions[k].label : tube;
  }
  return tube;
}

int ms__scene_label_list(const ms__scene *sc, const int *idx, int n, const int *lidx, int nl,
                         const int *tidx, int nt, double x, double y, double z) {
  int base = eval_list(sc->shapes, idx, n, x, y, z);
  int tube = nt ? tube_overlay(sc, tidx, nt, base, x, y, z) : base;
  return ms__scene_label_resolved(sc, lidx, nl, base, tube, x, y, z);
}

int ms__scene_anatomy_label(const ms__scene *sc, double x, double y, double z) {
  return eval_label(sc->shapes, sc->n_shapes, x, y, z);
}

int ms__scene_anatomy_full(const ms__scene *sc, double x, double y, double z) {
  int base = eval_label(sc->shapes, sc->n_shapes, x, y, z);
  return tube_overlay(sc, NULL, sc->n_tubes, base, x, y, z);
}

int ms__scene_label(const ms__scene *sc, double x, double y, double z) {
  int base = eval_label(sc->shapes, sc->n_shapes, x, y, z);
  int tube = tube_overlay(sc, NULL, sc->n_tubes, base, x, y, z);
  return ms__scene_label_resolved(sc, NULL, sc->n_lesions, base, tube, x, y, z);
}

/* ---- builders ------------------------------------------------------------ */

typedef struct {
  ms__scene *sc;
  ms_rng_key key;
  uint64_t seed, index;
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
                             double spine_y, double *rib_ax, double *rib_ay, double *p_out) {
  double s = sj->body_scale, f = sj->fat_mm;
  uint64_t L = LANE_MISC;
  double p = unif(b, L + 0, 2.2, 2.8);
  double th = unif(b, L + 1, -0.03, 0.03);
  *p_out = p;
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

/* ---- chest trees ---------------------------------------------------------
 *
 * Airways and pulmonary vessels are binary trees of tubes grown from the
 * hila. At every branching a parent of radius r splits into children r1 >=
 * r2 = k r1 with r^3 = r1^3 + r2^3 (Murray's law; k = 1 gives the
 * symmetric ratio 2^(-1/3) = 0.79 of Weibel's model), the larger child
 * turning less (20-35 degrees) than the smaller (35-60), each child's
 * length 3 diameters (Weibel's length-to-diameter ratio), the branching
 * plane turning by about 90 degrees per generation, and every child bent a
 * little away from the hilum so the tree spreads through the lung. A child
 * whose end would leave its lung is halved once, then dropped; children
 * thinner than the tree's minimum radius are not grown. Every conducting
 * airway carries a pulmonary artery beside it (the bronchovascular bundle,
 * artery about 1.2 times the lumen radius); past the smallest airway the
 * artery branches on alone; the veins form their own trees from the lower
 * hilum. All intrapulmonary tubes paint only over lung.
 *
 * Draws: stream "phantom/anatomy/chest/trees", index = image index, lane =
 * tree << 40 | node << 2 | q with heap node numbers (children 2n, 2n + 1),
 * 16-bit fields of each 64-bit draw: a node's randomness depends only on
 * its place in its tree. References: Weibel, "Morphometry of the Human
 * Lung", 1963; Murray, PNAS 12(3), 1926; Kitaoka, Takaki & Suki, J Appl
 * Physiol 87(6), 1999 (3-D airway tree model); Horsfield, Circ Res 1978
 * (pulmonary arteries accompany the airways). */

#define BIT(l) (1u << (l))
#define R_MIN_VESSEL 1.0 /* mm: thinner vessel branches are not grown */
#define VESSEL_EXTRA_LEN 3 /* mm added to the 3 diameters of a vessel segment */

static int add_tube(ms__scene *sc, const double a[3], const double e[3], double r, double rin, int cls,
                    uint32_t allowed, int gen, int parent) {
  if (sc->n_tubes >= MS__MAX_TUBES) return -1;
  ms__tube *t = &sc->tubes[sc->n_tubes];
  double len2 = 0;
  for (int i = 0; i < 3; i++) {
    t->a[i] = a[i];
    t->ab[i] = e[i] - a[i];
    len2 += t->ab[i] * t->ab[i];
    t->lo[i] = fmin(a[i], e[i]) - r;
    t->hi[i] = fmax(a[i], e[i]) + r;
  }
  t->inv_len2 = len2 > 0 ? 1 / len2 : 0;
  t->r = r;
  t->rin = rin;
  t->r2 = r * r;
  t->rin2 = rin > 0 ? rin * rin : -1;
  t->allowed = allowed;
  t->cls = cls;
  t->gen = gen;
  t->parent = parent;
  sc->tube_bases |= allowed;
  return sc->n_tubes++;
}

typedef struct {
  ms__scene *sc;
  ms_rng_key key;
  uint64_t index, tree;
  const ms__shape *lung;
  double hilum[3];
  double r_min_airway, r_min_vessel;
  double half_height; /* branches end within this distance in z of the hilum */
  int cls; /* MS__TUBE_WALL (airway + artery) or a vessel class */
} tree;

/* 16-bit uniform q (0..7) of node `node`. */
static double tree_u(const tree *t, uint64_t node, int q) {
  uint64_t w = ms_rng_u64(t->key, t->index, t->tree << 40 | node << 2 | (uint64_t)(q >> 2));
  return ((double)(w >> (16 * (q & 3)) & 0xffff) + 0.5) / 65536.0;
}

static void normalize(double v[3]) {
  double n = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  for (int i = 0; i < 3; i++) v[i] /= n;
}

static void cross(const double a[3], const double b[3], double c[3]) {
  c[0] = a[1] * b[2] - a[2] * b[1];
  c[1] = a[2] * b[0] - a[0] * b[2];
  c[2] = a[0] * b[1] - a[1] * b[0];
}

/* Any unit vector normal to d. */
static void normal_to(const double d[3], double n[3]) {
  double up[3] = {0, 0, 1};
  if (fabs(d[2]) > 0.9) up[0] = 1, up[2] = 0;
  cross(d, up, n);
  normalize(n);
}

static double airway_wall(double r) { return fmax(0.5, 0.3 * r); }

/* Grows the segment of node `node` from p along d (branching-plane normal
 * n), then its children. airway: the tree's airway part (tube with lumen
 * radius r plus an artery from pa beside it); else a vessel of radius r. */
static void grow(const tree *t, uint64_t node, int gen, const double p[3], const double pa[3], const double d[3],
                 const double n[3], double r, double len, int parent, int parent_art, int airway) {
  if (gen > 16) return;
  double e[3], dd[3] = {d[0], d[1], d[2]};
  int ok = 0;
  /* A branch about to leave the lung turns halfway towards the lung's
   * axis, then is halved, then dropped. */
  for (int tries = 0; tries < 3 && !ok; tries++) {
    for (int i = 0; i < 3; i++) e[i] = p[i] + dd[i] * len;
    ok = fabs(e[2] - t->hilum[2]) <= t->half_height && ms__shape_inside(t->lung, e[0], e[1], e[2]);
    if (ok) break;
    if (tries == 0) {
      double in[3] = {t->lung->c[0] - e[0], t->lung->c[1] - e[1], t->hilum[2] - e[2]};
      normalize(in);
      for (int i = 0; i < 3; i++) dd[i] += in[i];
      normalize(dd);
    } else {
      len *= 0.5;
    }
  }
  if (!ok) return;
  double nn[3], dot = n[0] * dd[0] + n[1] * dd[1] + n[2] * dd[2];
  for (int i = 0; i < 3; i++) nn[i] = n[i] - dot * dd[i];
  if (nn[0] * nn[0] + nn[1] * nn[1] + nn[2] * nn[2] < 1e-6)
    normal_to(dd, nn);
  else
    normalize(nn);
  d = dd;
  n = nn;
  uint32_t lung = BIT(MS_LABEL_LUNG);
  int id, ida = -1;
  double ea[3], rv = r;
  if (airway) {
    double w = airway_wall(r);
    id = add_tube(t->sc, p, e, r + w, r, MS__TUBE_WALL, lung, gen, parent);
    rv = 1.2 * r;
    double off = r + w + rv + 0.3;
    for (int i = 0; i < 3; i++) ea[i] = e[i] + n[i] * off;
    ida = add_tube(t->sc, pa, ea, rv, 0, MS__TUBE_ARTERY, lung, gen, parent_art);
  } else {
    id = add_tube(t->sc, p, e, r, 0, t->cls == MS__TUBE_WALL ? MS__TUBE_ARTERY : t->cls, lung, gen, parent);
    for (int i = 0; i < 3; i++) ea[i] = e[i];
  }
  if (id < 0) return;
  /* Past the smallest airway, the artery branches on alone from its end. */
  if (airway && r * 0.79 < t->r_min_airway) {
    airway = 0;
    r = rv;
    id = ida;
    for (int i = 0; i < 3; i++) e[i] = ea[i];
  }
  double rmin = airway ? t->r_min_airway : t->r_min_vessel;
  double k = 0.6 + 0.4 * tree_u(t, node, 0);
  double r1 = r / cbrt(1 + k * k * k), r2 = k * r1;
  double th[2] = {(20 + 15 * tree_u(t, node, 1)) * M_PI / 180, -(35 + 25 * tree_u(t, node, 2)) * M_PI / 180};
  double rc[2] = {r1, r2};
  if (tree_u(t, node, 7) < 0.5) th[0] = -th[0], th[1] = -th[1];
  double m[3], out[3];
  cross(n, d, m);
  for (int i = 0; i < 3; i++) out[i] = e[i] - t->hilum[i];
  normalize(out);
  for (int c = 0; c < 2; c++) {
    if (rc[c] < rmin) continue;
    double dc[3], nc[3], x[3];
    for (int i = 0; i < 3; i++) dc[i] = d[i] * cos(th[c]) + m[i] * sin(th[c]) + 0.3 * out[i];
    normalize(dc);
    double psi = M_PI / 2 + (tree_u(t, node, 3 + c) - 0.5);
    cross(dc, n, x);
    for (int i = 0; i < 3; i++) nc[i] = cos(psi) * n[i] + sin(psi) * x[i];
    double dot = nc[0] * dc[0] + nc[1] * dc[1] + nc[2] * dc[2];
    for (int i = 0; i < 3; i++) nc[i] -= dot * dc[i];
    normalize(nc);
    double lc = (6 * rc[c] + (airway ? 0 : VESSEL_EXTRA_LEN)) * (0.75 + 0.5 * tree_u(t, node, 5 + c));
    grow(t, 2 * node + (uint64_t)c, gen + 1, e, ea, dc, nc, rc[c], lc, id, ida, airway);
  }
}

/* Starts a tree branch (root node `node`) at p in direction d. */
static void grow_root(tree *t, uint64_t node, int gen, const double p[3], const double pa[3], double dx, double dy,
                      double dz, double r, int parent, int parent_art, int airway) {
  double d[3] = {dx, dy, dz}, n[3];
  normalize(d);
  normal_to(d, n);
  grow(t, node, gen, p, pa, d, n, r, 6 * r, parent, parent_art, airway);
}

/* Pectoral and scapular muscles, and the scapula: solids tangent to the
 * chest wall at angle a (rib-line parametrisation), centred h mm outside
 * the outer surface of the chest-wall muscle. */
static void wall_point(double ax, double ay, double p, double a, double off, double *x, double *y, double *tang) {
  double q[2][2];
  for (int k = 0; k < 2; k++) {
    double c = cos(a + (k ? 1e-3 : -1e-3)), sn = sin(a + (k ? 1e-3 : -1e-3));
    q[k][0] = ax * copysign(pow(fabs(c), 2 / p), c);
    q[k][1] = ay * copysign(pow(fabs(sn), 2 / p), sn);
  }
  double tx = q[1][0] - q[0][0], ty = q[1][1] - q[0][1], tn = sqrt(tx * tx + ty * ty);
  *x = 0.5 * (q[0][0] + q[1][0]) + off * ty / tn;
  *y = 0.5 * (q[0][1] + q[1][1]) - off * tx / tn;
  *tang = atan2(ty, tx);
}

static void build_chest(builder *b, const ms_phantom_subject *sj) {
  double s = sj->body_scale, f = sj->fat_mm;
  uint64_t L = LANE_MISC + 20;
  double ax = 165 * s * unif(b, L + 0, 0.95, 1.05), ay = 112 * s * unif(b, L + 1, 0.95, 1.05);
  double spine_y = 64 * s;
  double rax, ray, wall_p;
  build_trunk_wall(b, sj, ax, ay, spine_y, &rax, &ray, &wall_p);
  double zl = 400;
  ms__scene *sc = b->sc;
  /* Pectoral muscles (anterior) and the scapulae with their muscles
   * (posterolateral, outside the ribs), all within the subcutaneous fat
   * just outside the chest-wall muscle. */
  double mx = ax - 2 - f, my = ay - 2 - f; /* outer surface of the chest-wall muscle */
  double muscle = 2 * (mx - rax);
  double h = fmin(0.35 * f, 10 * s);
  for (int side = 0; side < 2; side++) {
    double sg = side ? 1 : -1, x, y, tg;
    double a = (-62 + unif(b, L + 32 + (uint64_t)side, -6, 6)) * M_PI / 180;
    if (!side) a = M_PI - a;
    wall_point(mx, my, wall_p, a, h, &x, &y, &tg);
    add(b, MS_LABEL_MUSCLE, x, y, 0, 58 * s, h + 0.5 * muscle, zl, tg, 2, 0, 0);
    double as = (48 + unif(b, L + 34 + (uint64_t)side, -6, 6)) * M_PI / 180;
    if (!side) as = M_PI - as;
    wall_point(mx, my, wall_p, as, h, &x, &y, &tg);
    add(b, MS_LABEL_MUSCLE, x, y, 0, 50 * s, h + 0.5 * muscle, zl, tg, 2, 0, 0);
    ms__shape *sca = add(b, MS_LABEL_SCAPULA, x, y, 0, 42 * s * unif(b, L + 36 + (uint64_t)side, 0.9, 1.1),
                         fmin(2.5 * s, 0.8 * h), zl, tg, 2, 0.05, 6 + (uint64_t)side);
    sca->organ = MS_LABEL_MUSCLE;
    (void)sg;
  }
  int lung_idx[2];
  for (int side = 0; side < 2; side++) {
    double sg = side ? 1 : -1;
    lung_idx[side] = sc->n_shapes;
    ms__shape *lung = add(b, MS_LABEL_LUNG, sg * 70 * s * unif(b, L + 2 + (uint64_t)side, 0.95, 1.05),
                          -6 * s, 0, (side ? 54 : 58) * s * unif(b, L + 4 + (uint64_t)side, 0.93, 1.07),
                          88 * s * unif(b, L + 6 + (uint64_t)side, 0.93, 1.07), zl,
                          sg * unif(b, L + 8 + (uint64_t)side, 0.0, 0.12), unif(b, L + 10, 2.2, 3.0),
                          0.05, 3 + (uint64_t)side);
    lung->organ = MS_LABEL_SOFT_TISSUE;
  }
  /* Heart: the muscle (label heart) with the four blood pools inside it,
   * placed in the heart's own frame (u towards the apex, anterior and to
   * the patient's left; v across it, positive posteriorly). Wall
   * thicknesses follow the adult norms (LV ~10 mm, septum ~10, RV ~4-6). */
  double hx = 18 * s + unif(b, L + 11, -5, 5), hy = -22 * s + unif(b, L + 12, -5, 5);
  double hax = 52 * s * unif(b, L + 13, 0.9, 1.1), hay = 42 * s * unif(b, L + 14, 0.9, 1.1);
  double hth = -0.5 + unif(b, L + 15, -0.15, 0.15);
  add(b, MS_LABEL_HEART, hx, hy, 0, hax, hay, zl, hth, 2, 0.04, 5);
  /* Atria lie higher than the ventricles: ellipsoids centred 30 mm above
   * and 35 mm below the hilar plane z = 0. */
  static const struct {
    int label;
    double u, v, au, av, z, az;
  } chamber[4] = {{MS_LABEL_RIGHT_ATRIUM, -28, -18, 16, 14, 30, 40},
                  {MS_LABEL_LEFT_ATRIUM, -30, 12, 14, 16, 30, 40},
                  {MS_LABEL_RIGHT_VENTRICLE, 6, -25, 30, 11, -35, 75},
                  {MS_LABEL_LEFT_VENTRICLE, 8, 11, 25, 15, -35, 75}};
  double cu = cos(hth), su = sin(hth), ku = hax / 52, kv = hay / 42;
  for (int c = 0; c < 4; c++) {
    double jit = unif(b, L + 38 + (uint64_t)c, 0.9, 1.1);
    double u = chamber[c].u * ku, v = chamber[c].v * kv;
    ms__shape *ch = add(b, chamber[c].label, hx + u * cu - v * su, hy + u * su + v * cu, chamber[c].z * s,
                        chamber[c].au * ku * jit, chamber[c].av * kv * jit, chamber[c].az * s, hth, 2, 0.04,
                        8 + (uint64_t)c);
    ch->organ = MS_LABEL_HEART;
  }
  double ra = 14 * s * unif(b, L + 16, 0.85, 1.15), rd = 12 * s * unif(b, L + 17, 0.85, 1.15);
  add(b, MS_LABEL_AORTA, -12 * s, -45 * s, 0, ra, ra, zl, 0, 2, 0, 0);
  add(b, MS_LABEL_AORTA, 24 * s, spine_y - 14 * s, 0, rd, rd, zl, 0, 2, 0, 0);
  /* Superior vena cava: right of the ascending aorta. */
  double svc_r = 9 * s * unif(b, L + 43, 0.85, 1.15);
  add(b, MS_LABEL_SUPERIOR_VENA_CAVA, -36 * s, -36 * s, 0, svc_r, 0.85 * svc_r, zl, 0, 2, 0, 0);
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
  /* Sternum: anterior midline, in the chest-wall muscle layer. */
  add(b, MS_LABEL_STERNUM, 0, -ray + 1.5 * s, 0, 17 * s * unif(b, L + 42, 0.9, 1.1), 6 * s, zl, 0, 2.5, 0, 0);

  /* Mediastinal vessels and the central airways as tubes. */
  uint32_t media = BIT(MS_LABEL_SOFT_TISSUE) | BIT(MS_LABEL_LUNG);
  uint32_t heart = BIT(MS_LABEL_HEART) | BIT(MS_LABEL_LEFT_VENTRICLE) | BIT(MS_LABEL_RIGHT_VENTRICLE) |
                   BIT(MS_LABEL_LEFT_ATRIUM) | BIT(MS_LABEL_RIGHT_ATRIUM);
  double zc = 20 + unif(b, L + 44, -5, 5);
  double car[3] = {0, 26 * s, zc}, top[3] = {0, 26 * s, zl};
  double rt = 9 * s * unif(b, L + 45, 0.9, 1.1);
  int trachea = add_tube(sc, top, car, rt + airway_wall(rt), rt, MS__TUBE_WALL, BIT(MS_LABEL_SOFT_TISSUE), 0, -1);
  /* Pulmonary trunk: from the right ventricular outflow tract, above the
   * ventricles, up and back to its bifurcation below the aortic arch. */
  double pt0[3] = {14 * s, -52 * s, 15}, pt1[3] = {6 * s, -30 * s, zc + 5};
  int trunk = add_tube(sc, pt0, pt1, 13 * s * unif(b, L + 46, 0.9, 1.1), 0, MS__TUBE_ARTERY, media | heart, 0, -1);
  ms_rng_key tkey = ms_rng_key_make(b->seed, ms_rng_stream("phantom/anatomy/chest/trees"));
  for (int side = 0; side < 2; side++) {
    double sg = side ? 1 : -1;
    double hil[3] = {sg * (side ? 44 : 38) * s, (side ? 28 : 24) * s, side ? -8 : -2};
    double rb = (side ? 6 : 7) * s * unif(b, L + 47 + (uint64_t)side, 0.9, 1.1);
    int bron = add_tube(sc, car, hil, rb + airway_wall(rb), rb, MS__TUBE_WALL, media, 1, trachea);
    double hila[3] = {hil[0], hil[1] - 14 * s, hil[2] + 4};
    int pa = add_tube(sc, pt1, hila, 10 * s, 0, MS__TUBE_ARTERY, media, 1, trunk);
    double la[3] = {hx + sg * 14 * s - 10 * s, 14 * s, -12}, hilv[3] = {sg * 42 * s, 14 * s, -24};
    int pv = add_tube(sc, la, hilv, 7 * s, 0, MS__TUBE_VEIN, media | heart, 0, -1);
    tree at = {sc, tkey, b->index, (uint64_t)(1 + 2 * side), &sc->shapes[lung_idx[side]], {hil[0], hil[1], hil[2]},
               0.9, R_MIN_VESSEL, 110 * s, MS__TUBE_WALL};
    /* Lobar bronchi: upper, middle (lingula on the left), lower, and the
     * superior segment of the lower lobe (posterior, at the hilum). */
    grow_root(&at, 1, 2, hil, hila, sg * 0.45, -0.15, 0.88, 4.2 * s, bron, pa, 1);
    grow_root(&at, 2, 2, hil, hila, sg * 0.55, -0.75, -0.35, 3.4 * s, bron, pa, 1);
    grow_root(&at, 3, 2, hil, hila, sg * 0.40, 0.40, -0.82, 4.6 * s, bron, pa, 1);
    grow_root(&at, 4, 2, hil, hila, sg * 0.35, 0.9, -0.1, 3.0 * s, bron, pa, 1);
    tree vt = at;
    vt.tree = (uint64_t)(2 + 2 * side);
    vt.cls = MS__TUBE_VEIN;
    for (int i = 0; i < 3; i++) vt.hilum[i] = hilv[i];
    /* Superior, lateral and inferior pulmonary veins. */
    grow_root(&vt, 1, 1, hilv, hilv, sg * 0.45, -0.45, 0.77, 5.5 * s, pv, -1, 0);
    grow_root(&vt, 2, 1, hilv, hilv, sg * 0.95, -0.1, -0.2, 4.5 * s, pv, -1, 0);
    grow_root(&vt, 3, 1, hilv, hilv, sg * 0.45, 0.35, -0.82, 5.5 * s, pv, -1, 0);
    grow_root(&vt, 4, 1, hilv, hilv, sg * 0.5, -0.85, 0.1, 4.0 * s, pv, -1, 0);
    grow_root(&vt, 5, 1, hilv, hilv, sg * 0.4, 0.9, 0.15, 4.0 * s, pv, -1, 0);
  }
}

static void build_abdomen(builder *b, const ms_phantom_subject *sj) {
  double s = sj->body_scale;
  uint64_t L = LANE_MISC + 50;
  double ax = 160 * s * unif(b, L + 0, 0.95, 1.05), ay = 118 * s * unif(b, L + 1, 0.95, 1.05);
  double spine_y = 68 * s;
  double rax, ray, wall_p;
  build_trunk_wall(b, sj, ax, ay, spine_y, &rax, &ray, &wall_p);
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
  /* The tube array stays as it is: only its first n_tubes are ever read. */
  memset(sc, 0, offsetof(ms__scene, tubes));
  builder b = {sc, ms_rng_key_make(seed, ms_rng_stream(kind_stream[p->kind])), seed, index};
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
