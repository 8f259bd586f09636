/* Lesion placement by keyed rejection sampling.
 *
 * A lesion is a small sphere (a disc in a slice) with a random lobulated
 * outline (radial harmonics, amplitude = irregularity); lung nodules may be
 * lobulated (amplitude at least 0.3) or spiculated (thin cones from the
 * body, see spicules()), and carry their size class and Lung-RADS size
 * category. Candidate centres are
 * drawn uniformly in the organ's bounding box intersected with the field of
 * view; a candidate is accepted when the organ holds the centre and every
 * probe point on a ring (2-D) or on 26 directions (3-D) just outside the
 * lesion's largest radius, and when it keeps a pixel's gap to the lesions
 * already placed. The renderer also paints a lesion only where the anatomy
 * beneath is its organ, so the mask can never put lesion pixels outside it.
 *
 * Invariants: draws use stream "phantom/lesions", index = image index; lesion
 * k uses lanes 64 k .. 64 k + 15 for its size, contrast, outline, type and
 * margin, lanes 2^40 + 256 k .. + 255 for its spicules and lanes
 * 2^20 + 4 (k * MAX_TRIES + t) .. + 2 for try t, so the outcome of image i
 * never depends on any other image. */
#include <math.h>
#include <stdio.h>

#include "phantom/phantom_internal.h"

#define MAX_TRIES 4000

static const char *organ_name(int organ) {
  const char *n = ms_label_name(organ);
  return n ? n : "?";
}

/* Diameter ranges (mm) of the size classes; lesion diameters are drawn
 * uniformly in them. */
static const double k_size_range[MS_NODULE_SIZE_COUNT][2] = {{0, 0}, {4, 6}, {6, 8}, {8, 15}, {15, 30}};

static ms_nodule_size size_class_of(double diam) {
  return diam < 6 ? MS_NODULE_SIZE_LT6 : diam < 8 ? MS_NODULE_SIZE_6_8 : diam < 15 ? MS_NODULE_SIZE_8_15 : MS_NODULE_SIZE_GE15;
}

/* Lung-RADS v2022 baseline category from size alone (ACR Lung-RADS v2022,
 * "Lung-RADS 2022 assessment categories"): solid nodules <6 mm 2, 6-<8 3,
 * 8-<15 4A, >=15 4B; part-solid nodules <6 mm 2, then by the solid
 * component: <6 3, 6-<8 4A, >=8 4B; ground-glass nodules <30 mm 2, >=30 3.
 * Diameters are mean diameters; the phantom's nodules have no growth or
 * other features, so this is the size category only. */
static const char *lungrads(int type, double diam, double core) {
  if (type == MS_NODULE_GROUND_GLASS) return diam < 30 ? "2" : "3";
  if (type == MS_NODULE_PART_SOLID) {
    if (diam < 6) return "2";
    return core < 6 ? "3" : core < 8 ? "4A" : "4B";
  }
  return diam < 6 ? "2" : diam < 8 ? "3" : diam < 15 ? "4A" : "4B";
}

/* Spicules of a nodule of radius r (outline amplitude max_def): 10..20
 * spikes in isotropic random directions, each reaching 0.5..1.2 r (at most
 * 10 mm) beyond the body, from half the radius inside it, with a half-width
 * of 0.12..0.25 r (at least 0.4 mm) where it leaves the body. Draws: lanes
 * 2^40 + 256 k (count) and + 1 + 4 i .. + 4 + 4 i (spike i). Returns the
 * largest distance of the nodule from its centre. */
static double spicules(ms__spikes *spk, double r, double max_def, ms_rng_key key, uint64_t index, uint64_t k) {
  uint64_t base = ((uint64_t)1 << 40) + 256 * k;
  spk->n = 10 + (int)(11 * ms_rng_uniform(key, index, base));
  if (spk->n > MS__MAX_SPIKES) spk->n = MS__MAX_SPIKES;
  double reach = r * (1 + max_def);
  for (int i = 0; i < spk->n; i++) {
    uint64_t l = base + 1 + 4 * (uint64_t)i;
    double cz = 2 * ms_rng_uniform(key, index, l) - 1, ph = 2 * M_PI * ms_rng_uniform(key, index, l + 1);
    double sz = sqrt(1 - cz * cz);
    spk->dir[i][0] = sz * cos(ph);
    spk->dir[i][1] = sz * sin(ph);
    spk->dir[i][2] = cz;
    double len = fmin(10, r * (0.5 + 0.7 * ms_rng_uniform(key, index, l + 2)));
    double half = fmax(0.4, r * (0.12 + 0.13 * ms_rng_uniform(key, index, l + 3)));
    /* Width at the body's surface r is `half`; the cone starts at r / 2. */
    spk->base[i] = 0.5 * r;
    spk->tip[i] = r + len;
    spk->w[i] = half * (spk->tip[i] - spk->base[i]) / len;
    reach = fmax(reach, spk->tip[i]);
  }
  return reach;
}

static int probe_ok(const ms__scene *sc, int organ, const double c[3], double r, int is3d) {
  if (ms__scene_anatomy_label(sc, c[0], c[1], c[2]) != organ) return 0;
  if (!is3d) {
    for (int k = 0; k < 24; k++) {
      double a = 2 * M_PI * k / 24;
      if (ms__scene_anatomy_label(sc, c[0] + r * cos(a), c[1] + r * sin(a), c[2]) != organ) return 0;
    }
    return 1;
  }
  for (int dx = -1; dx <= 1; dx++)
    for (int dy = -1; dy <= 1; dy++)
      for (int dz = -1; dz <= 1; dz++) {
        if (!dx && !dy && !dz) continue;
        double n = sqrt((double)(dx * dx + dy * dy + dz * dz));
        if (ms__scene_anatomy_label(sc, c[0] + r * dx / n, c[1] + r * dy / n, c[2] + r * dz / n) != organ)
          return 0;
      }
  return 1;
}

ms_status ms__lesions_place(ms__scene *sc, const ms_phantom_params *p, int n_lesions,
                            uint64_t seed, uint64_t index, ms_phantom_lesion *table,
                            ms_diag *d) {
  sc->n_lesions = 0;
  sc->n_cores = 0;
  if (n_lesions <= 0) return MS_OK;
  const ms_lesion_params *lp = &p->lesions;
  int organ = lp->organ ? lp->organ : ms__lesion_default_organ(p->kind);
  char where[64];
  snprintf(where, sizeof where, "image %llu", (unsigned long long)index);
  if (!ms__lesion_organ_allowed(p->kind, organ))
    return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, where, "a %s phantom has no organ \"%s\" that can hold lesions",
                       ms_phantom_kind_name(p->kind), organ_name(organ));
  int is3d = p->depth > 0;
  double sp[3];
  ms_phantom_spacing(p, sp);
  /* Organ bounding box and largest minor diameter over its solids. */
  double lo[3] = {INFINITY, INFINITY, INFINITY}, hi[3] = {-INFINITY, -INFINITY, -INFINITY};
  double organ_diam = 0;
  for (int j = 0; j < sc->n_shapes; j++) {
    const ms__shape *s = &sc->shapes[j];
    if (s->label != organ) continue;
    for (int a = 0; a < 3; a++) {
      lo[a] = fmin(lo[a], s->lo[a]);
      hi[a] = fmax(hi[a], s->hi[a]);
    }
    double m = fmin(1 / s->inv_a[0], 1 / s->inv_a[1]);
    if (is3d) m = fmin(m, 1 / s->inv_a[2]);
    organ_diam = fmax(organ_diam, 2 * m * (1 + s->max_def));
  }
  if (organ_diam == 0)
    return ms_diag_add(d, MS_ERR_RANGE, NULL, 0, 0, where, "the %s phantom has no %s", ms_phantom_kind_name(p->kind),
                       organ_name(organ));
  /* Restrict centres to the field of view (and the slice plane in 2-D). */
  double half_w = 0.5 * p->width * sp[0], half_h = 0.5 * p->height * sp[1];
  lo[0] = fmax(lo[0], -half_w);
  hi[0] = fmin(hi[0], half_w);
  lo[1] = fmax(lo[1], -half_h);
  hi[1] = fmin(hi[1], half_h);
  if (is3d) {
    lo[2] = fmax(lo[2], ms_phantom_plane_z(p, 0));
    hi[2] = fmin(hi[2], ms_phantom_plane_z(p, p->depth - 1));
  } else {
    lo[2] = hi[2] = p->slice_z_mm;
  }
  ms_rng_key key = ms_rng_key_make(seed, ms_rng_stream("phantom/lesions"));
  double min_sp = fmin(sp[0], is3d ? fmin(sp[1], sp[2]) : sp[1]);
  for (int k = 0; k < n_lesions; k++) {
    uint64_t L = 64 * (uint64_t)k;
    double dmin = lp->diameter_min_mm, dmax = lp->diameter_max_mm;
    if (lp->size_class != MS_NODULE_SIZE_ANY) {
      dmin = k_size_range[lp->size_class][0];
      dmax = k_size_range[lp->size_class][1];
    }
    double diam = dmin + (dmax - dmin) * ms_rng_uniform(key, index, L);
    double contrast = lp->contrast_min + (lp->contrast_max - lp->contrast_min) * ms_rng_uniform(key, index, L + 1);
    double r = diam / 2;
    if (diam > organ_diam)
      return ms_diag_add(d, MS_ERR_RANGE, NULL, 0, 0, where,
                         "lesion %d (diameter %.1f mm) is larger than its organ: the %s is at most %.1f mm across",
                         k, diam, organ_name(organ), organ_diam);
    if (2 * r * (1 - lp->irregularity) < 1.5 * min_sp)
      return ms_diag_add(d, MS_ERR_RANGE, NULL, 0, 0, where,
                         "lesion %d (diameter %.2f mm, irregularity %.2f) is smaller than 1.5 pixels (%.2f mm); "
                         "use larger lesions or finer pixels",
                         k, diam, lp->irregularity, 1.5 * min_sp);
    ms__shape *les = &sc->lesions[k];
    /* Margin (lane L + 15 for mixed): lobulated raises the outline's
     * harmonic amplitude to at least 0.3; spiculated adds spikes. */
    int margin = lp->margin;
    if (margin == MS_NODULE_MARGIN_MIXED) {
      margin = (int)(3 * ms_rng_uniform(key, index, L + 15));
      if (margin > MS_NODULE_MARGIN_SPICULATED) margin = MS_NODULE_MARGIN_SPICULATED;
    }
    double irr = margin == MS_NODULE_MARGIN_LOBULATED ? fmax(lp->irregularity, 0.3) : lp->irregularity;
    ms__shape_set(les, MS_LABEL_LESION_FIRST + k, 0, 0, 0, r, r, r, 0, 2, irr, key, index, L + 4);
    ms__spikes *spk = &sc->spikes[k];
    spk->n = 0;
    double reach = r * (1 + les->max_def);
    if (margin == MS_NODULE_MARGIN_SPICULATED) reach = spicules(spk, r, les->max_def, key, index, (uint64_t)k);
    double r_out = reach + 0.5 * min_sp;
    int placed = 0;
    for (int t = 0; t < MAX_TRIES && !placed; t++) {
      uint64_t tl = ((uint64_t)1 << 20) + 4 * ((uint64_t)k * MAX_TRIES + (uint64_t)t);
      double c[3];
      for (int a = 0; a < 3; a++) c[a] = lo[a] + (hi[a] - lo[a]) * ms_rng_uniform(key, index, tl + (uint64_t)a);
      if (!probe_ok(sc, organ, c, r_out, is3d)) continue;
      int clash = 0;
      for (int j = 0; j < k && !clash; j++) {
        const ms__shape *o = &sc->lesions[j];
        double dx = c[0] - o->c[0], dy = c[1] - o->c[1], dz = c[2] - o->c[2];
        double ro = 1 / o->inv_a[0] * (1 + o->max_def);
        double need = r_out + ro + min_sp;
        if (dx * dx + dy * dy + dz * dz < need * need) clash = 1;
      }
      if (clash) continue;
      ms__shape_set(les, MS_LABEL_LESION_FIRST + k, c[0], c[1], c[2], r, r, r, 0, 2, irr, key, index, L + 4);
      les->organ = organ;
      for (int a = 0; a < 3; a++) {
        les->lo[a] = fmin(les->lo[a], c[a] - reach);
        les->hi[a] = fmax(les->hi[a], c[a] + reach);
      }
      placed = 1;
    }
    if (!placed)
      return ms_diag_add(d, MS_ERR_RANGE, NULL, 0, 0, where,
                         "cannot place lesion %d (diameter %.1f mm) inside the %s after %d tries: the organ is too "
                         "small%s or holds too many lesions",
                         k, diam, organ_name(organ), MAX_TRIES, is3d ? "" : " in this slice");
    ms_phantom_lesion *row = &table[k];
    row->label = MS_LABEL_LESION_FIRST + k;
    row->organ = organ;
    for (int a = 0; a < 3; a++) row->center_mm[a] = les->c[a];
    row->diameter_mm = diam;
    row->contrast = contrast;
    /* Nodule type (lanes L + 12 .. L + 14): a ground-glass value of
     * -750..-500 HU, mapped to a weight of the solid value between the lung
     * (-850 HU) and solid tissue (40 HU) so that it carries over to MR; a
     * part-solid nodule's solid core has 0.3..0.6 of its radius. */
    int type = lp->nodule;
    if (type == MS_NODULE_MIXED) {
      type = (int)(3 * ms_rng_uniform(key, index, L + 12));
      if (type > MS_NODULE_GROUND_GLASS) type = MS_NODULE_GROUND_GLASS;
    }
    sc->ggo_weight[k] = 0;
    sc->core_r[k] = 0;
    if (type != MS_NODULE_SOLID) sc->ggo_weight[k] = (-750 + 250 * ms_rng_uniform(key, index, L + 13) + 850) / 890;
    if (type == MS_NODULE_PART_SOLID) {
      sc->core_r[k] = r * (0.3 + 0.3 * ms_rng_uniform(key, index, L + 14));
      sc->n_cores++;
    }
    row->nodule = (ms_nodule_kind)type;
    row->core_diameter_mm = 2 * sc->core_r[k];
    row->margin = (ms_nodule_margin)margin;
    row->n_spicules = spk->n;
    row->size_class = size_class_of(diam);
    row->lungrads = organ == MS_LABEL_LUNG ? lungrads(type, diam, row->core_diameter_mm) : NULL;
    sc->n_lesions = k + 1;
  }
  return MS_OK;
}
