/* Rendering: one patient's scene -> label mask and image, with augmentation
 * (rotation, zoom, elastic warp, intensity), modality noise and the lesion
 * table measured on the rendered mask.
 *
 * Augmentation is a map T from output coordinates to phantom coordinates:
 * T(x, y) = R(-theta) (x + u(x, y), y + v(x, y)) / scale, where (u, v) is an
 * elastic displacement field interpolated bicubically (gsl_interp2d) from a
 * coarse grid of keyed normal displacements. The mask takes the label at
 * T(pixel centre) and the image the tissue value there (averaged over s x s
 * sub-samples when partial-volume supersampling is on). This is the same
 * thing as resampling image and mask with one displacement field, nearest
 * neighbour for labels, except that the phantom is sampled exactly instead
 * of interpolated, so labels stay exact and image and mask cannot drift
 * apart. Volumes use the same in-plane map for every plane, which keeps
 * ms_phantom_plane_z slices equal to the volume's planes.
 *
 * Noise (added after the noise-free render):
 *  - CT: additive Gaussian, sd = ct_noise_hu * sqrt(ct_ref_dose / dose), so
 *    the variance is proportional to 1/dose as for photon-counting (Poisson)
 *    statistics (Barrett & Swindell, "Radiological Imaging", 1981; Hanson,
 *    Med Phys 8(3), 1981).
 *  - MR: the signal times a smooth bias field exp(mr_bias * b(x, y, z)), b a
 *    keyed quadratic polynomial in normalised coordinates (Sled, Zijdenbos &
 *    Evans, IEEE TMI 17(1), 1998 for the model), then Rician magnitude
 *    |S + n1 + i n2| with n1, n2 ~ N(0, (mr_noise * S_ref)^2) (Gudbjartsson &
 *    Patz, MRM 34(6), 1995).
 *
 * Invariants: noise element e of image i uses ms_rng_normal_fill's pair
 * (e / 2) at lane i (CT) or lanes 2 i, 2 i + 1 (MR), filled in even-sized
 * chunks so the values do not depend on the chunk size. */
#include <gsl/gsl_errno.h>
#include "core/alloc.h"
#include <gsl/gsl_interp2d.h>
#include <gsl/gsl_spline2d.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phantom/phantom_internal.h"

#define NOISE_CHUNK 4096 /* even: chunk boundaries fall between Box-Muller pairs */

typedef struct {
  float *disp;  /* 2 * width * height displacement (mm) or NULL */
  uint32_t *hit; /* MS__TUBE_CLASSES * width: tube masks of one row */
  int ztid[MS__MAX_TUBES], rtid[MS__MAX_TUBES]; /* tubes meeting a plane / a row */
  float noise[2][NOISE_CHUNK];
  ms__scene scene; /* last: its tube array is large and mostly untouched */
} scratch;

ms_status ms_phantom_image_init(ms_phantom_image *img, const ms_phantom_params *p, ms_diag *d) {
  memset(img, 0, sizeof *img);
  ms_status st = ms_phantom_params_check(p, d);
  if (st != MS_OK) return st;
  img->width = p->width;
  img->height = p->height;
  img->depth = p->depth > 0 ? p->depth : 1;
  ms_phantom_spacing(p, img->spacing);
  img->n_pixels = (size_t)img->width * (size_t)img->height * (size_t)img->depth;
  img->image = ms__malloc(img->n_pixels * sizeof(float));
  img->mask = ms__malloc(img->n_pixels);
  scratch *s = ms__calloc(1, sizeof *s);
  img->scratch = s;
  if (s && p->augment.elastic_mm > 0) s->disp = ms__malloc(2 * (size_t)img->width * (size_t)img->height * sizeof(float));
  if (s) s->hit = ms__calloc((size_t)img->width * MS__TUBE_CLASSES, sizeof(uint32_t));
  if (!img->image || !img->mask || !s || !s->hit || (p->augment.elastic_mm > 0 && !s->disp)) {
    ms_phantom_image_deinit(img);
    return ms_diag_add(d, MS_ERR_NOMEM, NULL, 0, 0, "size", "out of memory for a %d x %d x %d image",
                       p->width, p->height, p->depth > 0 ? p->depth : 1);
  }
  return MS_OK;
}

void ms_phantom_image_deinit(ms_phantom_image *img) {
  if (!img) return;
  scratch *s = img->scratch;
  if (s) {
    free(s->disp);
    free(s->hit);
  }
  free(s);
  free(img->image);
  free(img->mask);
  memset(img, 0, sizeof *img);
}

typedef struct {
  int on;
  double ct, st; /* cos/sin of -theta, divided by scale */
  const float *disp;
} warp;

static inline void warp_apply(const warp *w, size_t pix, double x, double y, double *sx, double *sy) {
  if (!w->on) {
    *sx = x;
    *sy = y;
    return;
  }
  if (w->disp) {
    x += w->disp[2 * pix];
    y += w->disp[2 * pix + 1];
  }
  *sx = w->ct * x - w->st * y;
  *sy = w->st * x + w->ct * y;
}

/* Elastic displacement at every pixel centre of one plane, bicubic from a
 * G x G grid of keyed N(0, elastic_mm^2) nodes spanning the field of view. */
static ms_status build_displacement(float *disp, const ms_phantom_params *p, const double sp[3],
                                    ms_rng_key key, uint64_t index, ms_diag *d) {
  int G = p->augment.elastic_grid;
  double half_w = 0.5 * p->width * sp[0], half_h = 0.5 * p->height * sp[1];
  double gx[32], gy[32], zu[32 * 32], zv[32 * 32];
  for (int i = 0; i < G; i++) {
    gx[i] = -half_w + 2 * half_w * i / (G - 1);
    gy[i] = -half_h + 2 * half_h * i / (G - 1);
  }
  for (int j = 0; j < G; j++)
    for (int i = 0; i < G; i++) {
      uint64_t lane = 1000 + 2 * (uint64_t)(j * G + i);
      zu[j * G + i] = p->augment.elastic_mm * ms_rng_normal(key, index, lane);
      zv[j * G + i] = p->augment.elastic_mm * ms_rng_normal(key, index, lane + 1);
    }
  gsl_spline2d *su = gsl_spline2d_alloc(gsl_interp2d_bicubic, (size_t)G, (size_t)G);
  gsl_spline2d *sv = gsl_spline2d_alloc(gsl_interp2d_bicubic, (size_t)G, (size_t)G);
  gsl_interp_accel *ax = gsl_interp_accel_alloc(), *ay = gsl_interp_accel_alloc();
  ms_status st = MS_OK;
  if (!su || !sv || !ax || !ay) {
    st = ms_diag_add(d, MS_ERR_NOMEM, NULL, 0, 0, "augment", "out of memory for the elastic field");
    goto done;
  }
  if (gsl_spline2d_init(su, gx, gy, zu, (size_t)G, (size_t)G) || gsl_spline2d_init(sv, gx, gy, zv, (size_t)G, (size_t)G)) {
    st = ms_diag_add(d, MS_ERR_MATH, NULL, 0, 0, "augment", "cannot build the elastic displacement field");
    goto done;
  }
  for (int i = 0; i < p->height; i++) {
    double y = (i + 0.5) * sp[1] - half_h;
    for (int j = 0; j < p->width; j++) {
      double x = (j + 0.5) * sp[0] - half_w;
      size_t pix = (size_t)i * (size_t)p->width + (size_t)j;
      disp[2 * pix] = (float)gsl_spline2d_eval(su, x, y, ax, ay);
      disp[2 * pix + 1] = (float)gsl_spline2d_eval(sv, x, y, ax, ay);
    }
  }
done:
  gsl_spline2d_free(su);
  gsl_spline2d_free(sv);
  if (ax) gsl_interp_accel_free(ax);
  if (ay) gsl_interp_accel_free(ay);
  return st;
}

/* Value of a point labelled lab: its label's value, or inside the solid
 * core of a part-solid nodule the core's. */
static inline float point_value(const ms__scene *sc, const float *val, int lab, double x, double y, double z) {
  if (sc->n_cores && lab >= MS_LABEL_LESION_FIRST) {
    int k = lab - MS_LABEL_LESION_FIRST;
    double r = sc->core_r[k];
    const double *c = sc->lesions[k].c;
    double dx = x - c[0], dy = y - c[1], dz = z - c[2];
    if (r > 0 && dx * dx + dy * dy + dz * dz <= r * r) return val[MS__CORE_SLOT(k)];
  }
  return val[lab];
}

/* Pixel columns j whose centres x = (j + 0.5) sp - half_w may lie in
 * [lo, hi] (one column of slack either side: the tube test decides). */
static void column_range(double lo, double hi, double sp, double half_w, int W, int *j0, int *j1) {
  double a = (lo + half_w) / sp - 1.5, c = (hi + half_w) / sp + 0.5;
  *j0 = a < 0 ? 0 : a > W ? W : (int)a;
  *j1 = c < 0 ? -1 : c >= W - 1 ? W - 1 : (int)c;
}

static void render(ms_phantom_image *img, const ms_phantom_params *p, ms__scene *sc, scratch *scr,
                   const warp *w) {
  const int W = img->width, H = img->height, D = img->depth, S = p->supersample;
  const double *sp = img->spacing;
  const double half_w = 0.5 * W * sp[0], half_h = 0.5 * H * sp[1];
  const float *val = img->tissue_value;
  /* Without a warp a row (fixed y, z) can only meet the solids, lesions
   * and tubes whose bounding boxes cover it (widened by half a pixel for
   * sub-samples); tubes are culled by plane first. Unwarped rows without
   * sub-samples mark the tubes' classes along each tube's columns once
   * (ms__tube_hit, the same test as a point query) instead of testing
   * every tube at every pixel. */
  int idx[MS__MAX_SHAPES], lidx[MS_PHANTOM_MAX_LESIONS];
  int *ztid = scr->ztid, *rtid = scr->rtid;
  uint32_t *hit = scr->hit;
  int n_idx = sc->n_shapes, n_lidx = sc->n_lesions;
  for (int j = 0; j < n_idx; j++) idx[j] = j;
  for (int j = 0; j < n_lidx; j++) lidx[j] = j;
  for (int k = 0; k < D; k++) {
    double z = p->depth > 0 ? ms_phantom_plane_z(p, k) : p->slice_z_mm;
    int nz = 0;
    for (int j = 0; j < sc->n_tubes; j++)
      if (sc->tubes[j].hi[2] >= z && sc->tubes[j].lo[2] <= z) ztid[nz++] = j;
    for (int i = 0; i < H; i++) {
      double y = (i + 0.5) * sp[1] - half_h;
      size_t row = ((size_t)k * (size_t)H + (size_t)i) * (size_t)W;
      const int *tl = ztid;
      int nt = nz;
      if (!w->on) {
        double ylo = y - 0.5 * sp[1], yhi = y + 0.5 * sp[1];
        n_idx = n_lidx = 0;
        for (int j = 0; j < sc->n_shapes; j++) {
          const ms__shape *s = &sc->shapes[j];
          if (s->hi[1] >= ylo && s->lo[1] <= yhi && s->hi[2] >= z && s->lo[2] <= z) idx[n_idx++] = j;
        }
        for (int j = 0; j < sc->n_lesions; j++) {
          const ms__shape *s = &sc->lesions[j];
          if (s->hi[1] >= ylo && s->lo[1] <= yhi && s->hi[2] >= z && s->lo[2] <= z) lidx[n_lidx++] = j;
        }
        nt = 0;
        for (int j = 0; j < nz; j++) {
          const ms__tube *t = &sc->tubes[ztid[j]];
          if (t->hi[1] >= ylo && t->lo[1] <= yhi) rtid[nt++] = ztid[j];
        }
        tl = rtid;
      }
      if (!w->on && S == 1) {
        for (int q = 0; q < nt; q++) {
          const ms__tube *t = &sc->tubes[tl[q]];
          if (t->hi[1] < y || t->lo[1] > y) continue;
          int j0, j1;
          column_range(t->lo[0], t->hi[0], sp[0], half_w, W, &j0, &j1);
          for (int j = j0; j <= j1; j++) {
            int h = ms__tube_hit(t, (j + 0.5) * sp[0] - half_w, y, z);
            if (!h) continue;
            hit[j * MS__TUBE_CLASSES + t->cls] |= t->allowed;
            if (h == 2) hit[j * MS__TUBE_CLASSES + MS__TUBE_LUMEN] |= t->allowed;
          }
        }
        for (int j = 0; j < W; j++) {
          double x = (j + 0.5) * sp[0] - half_w;
          int base = ms__scene_solid_label_list(sc, idx, n_idx, x, y, z);
          int tube = nt ? ms__tube_resolve(&hit[j * MS__TUBE_CLASSES], base) : base;
          int lab = ms__scene_label_resolved(sc, lidx, n_lidx, base, tube, x, y, z);
          img->mask[row + (size_t)j] = (uint8_t)lab;
          img->image[row + (size_t)j] = point_value(sc, val, lab, x, y, z);
        }
        for (int q = 0; q < nt; q++) {
          const ms__tube *t = &sc->tubes[tl[q]];
          int j0, j1;
          column_range(t->lo[0], t->hi[0], sp[0], half_w, W, &j0, &j1);
          if (j1 >= j0) memset(&hit[j0 * MS__TUBE_CLASSES], 0, (size_t)(j1 - j0 + 1) * MS__TUBE_CLASSES * sizeof *hit);
        }
        continue;
      }
      for (int j = 0; j < W; j++) {
        double x = (j + 0.5) * sp[0] - half_w;
        size_t pix = (size_t)i * (size_t)W + (size_t)j;
        double sx, sy;
        warp_apply(w, pix, x, y, &sx, &sy);
        int lab = ms__scene_label_list(sc, idx, n_idx, lidx, n_lidx, tl, nt, sx, sy, z);
        img->mask[row + (size_t)j] = (uint8_t)lab;
        if (S == 1) {
          img->image[row + (size_t)j] = point_value(sc, val, lab, sx, sy, z);
          continue;
        }
        double acc = 0;
        for (int a = 0; a < S; a++) {
          double oy = ((a + 0.5) / S - 0.5) * sp[1];
          for (int b = 0; b < S; b++) {
            double ox = ((b + 0.5) / S - 0.5) * sp[0];
            warp_apply(w, pix, x + ox, y + oy, &sx, &sy);
            acc += point_value(sc, val, ms__scene_label_list(sc, idx, n_idx, lidx, n_lidx, tl, nt, sx, sy, z), sx, sy, z);
          }
        }
        img->image[row + (size_t)j] = (float)(acc / (S * S));
      }
    }
  }
}

static void add_noise(ms_phantom_image *img, const ms_phantom_params *p, uint64_t seed,
                      uint64_t index) {
  scratch *s = img->scratch;
  size_t n = img->n_pixels;
  if (p->modality == MS_MODALITY_CT) {
    double sd = p->ct_noise_hu * sqrt(p->ct_ref_dose / p->dose);
    if (sd == 0) return;
    ms_rng_key key = ms_rng_key_make(seed, ms_rng_stream("phantom/noise/ct"));
    for (size_t off = 0; off < n; off += NOISE_CHUNK) {
      size_t m = n - off < NOISE_CHUNK ? n - off : NOISE_CHUNK;
      ms_rng_normal_fill(key, off / 2, index, s->noise[0], m);
      for (size_t e = 0; e < m; e++) img->image[off + e] += (float)(sd * s->noise[0][e]);
    }
    return;
  }
  /* MR: bias field, then Rician magnitude noise. */
  const int W = img->width, H = img->height, D = img->depth;
  if (p->mr_bias > 0) {
    ms_rng_key bk = ms_rng_key_make(seed, ms_rng_stream("phantom/bias"));
    double c[6];
    for (int m = 0; m < 6; m++) c[m] = 0.5 * ms_rng_normal(bk, index, (uint64_t)m);
    for (int k = 0; k < D; k++) {
      double zn = D > 1 ? 2.0 * (k + 0.5) / D - 1 : 0;
      for (int i = 0; i < H; i++) {
        double yn = 2.0 * (i + 0.5) / H - 1;
        for (int j = 0; j < W; j++) {
          double xn = 2.0 * (j + 0.5) / W - 1;
          double b = c[0] * xn + c[1] * yn + c[2] * zn + c[3] * xn * yn + c[4] * (xn * xn - 1.0 / 3) +
                     c[5] * (yn * yn - 1.0 / 3);
          img->image[((size_t)k * H + (size_t)i) * W + (size_t)j] *= (float)exp(p->mr_bias * b);
        }
      }
    }
  }
  double sd = p->mr_noise * ms__mr_reference_signal(p->modality);
  if (sd == 0) return;
  ms_rng_key key = ms_rng_key_make(seed, ms_rng_stream("phantom/noise/mr"));
  for (size_t off = 0; off < n; off += NOISE_CHUNK) {
    size_t m = n - off < NOISE_CHUNK ? n - off : NOISE_CHUNK;
    ms_rng_normal_fill(key, off / 2, 2 * index, s->noise[0], m);
    ms_rng_normal_fill(key, off / 2, 2 * index + 1, s->noise[1], m);
    for (size_t e = 0; e < m; e++) {
      double re = img->image[off + e] + sd * s->noise[0][e], im = sd * s->noise[1][e];
      img->image[off + e] = (float)sqrt(re * re + im * im);
    }
  }
}

static void measure_lesions(ms_phantom_image *img) {
  size_t nl = img->n_lesions;
  if (!nl) return;
  double sum[MS_PHANTOM_MAX_LESIONS][3];
  memset(sum, 0, sizeof sum);
  for (size_t l = 0; l < nl; l++) {
    ms_phantom_lesion *r = &img->lesions[l];
    r->n_pixels = 0;
    for (int a = 0; a < 3; a++) {
      r->bbox_min[a] = INT32_MAX;
      r->bbox_max[a] = -1;
    }
  }
  const int W = img->width, H = img->height, D = img->depth;
  for (int k = 0; k < D; k++)
    for (int i = 0; i < H; i++) {
      const uint8_t *row = img->mask + ((size_t)k * H + (size_t)i) * W;
      for (int j = 0; j < W; j++) {
        int lab = row[j];
        if (lab < MS_LABEL_LESION_FIRST || (size_t)(lab - MS_LABEL_LESION_FIRST) >= nl) continue;
        size_t l = (size_t)(lab - MS_LABEL_LESION_FIRST);
        ms_phantom_lesion *r = &img->lesions[l];
        int c[3] = {j, i, k};
        r->n_pixels++;
        for (int a = 0; a < 3; a++) {
          sum[l][a] += c[a];
          if (c[a] < r->bbox_min[a]) r->bbox_min[a] = c[a];
          if (c[a] > r->bbox_max[a]) r->bbox_max[a] = c[a];
        }
      }
    }
  double unit = img->spacing[0] * img->spacing[1] * (img->depth > 1 ? img->spacing[2] : 1);
  for (size_t l = 0; l < nl; l++) {
    ms_phantom_lesion *r = &img->lesions[l];
    for (int a = 0; a < 3; a++) {
      r->centroid[a] = r->n_pixels ? sum[l][a] / (double)r->n_pixels : NAN;
      if (!r->n_pixels) r->bbox_min[a] = r->bbox_max[a] = -1;
    }
    r->size_mm = (double)r->n_pixels * unit;
  }
}

ms_status ms_phantom_generate(ms_phantom_image *img, const ms_phantom_params *p,
                              const ms_phantom_subject *subject, uint64_t seed, uint64_t index,
                              ms_diag *d) {
  if (!img->image || img->width != p->width || img->height != p->height ||
      img->depth != (p->depth > 0 ? p->depth : 1))
    return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, "image",
                       "image buffers were initialised for other dimensions");
  scratch *s = img->scratch;
  ms__scene *sc = &s->scene;
  img->n_lesions = 0;
  ms_status st = ms__scene_build(sc, p, subject, seed, index, &img->subject, d);
  if (st != MS_OK) return st;
  /* Lesion count: explicit, else uniform in count_min..count_max. */
  int nl = subject && subject->n_lesions >= 0 ? subject->n_lesions : -1;
  if (nl < 0) {
    ms_rng_key ck = ms_rng_key_make(seed, ms_rng_stream("phantom/lesions/count"));
    nl = p->lesions.count_min +
         (int)ms_rng_below(ck, index, 0, (uint64_t)(p->lesions.count_max - p->lesions.count_min + 1));
  }
  if (nl > MS_PHANTOM_MAX_LESIONS) {
    char where[64];
    snprintf(where, sizeof where, "image %llu", (unsigned long long)index);
    return ms_diag_add(d, MS_ERR_RANGE, NULL, 0, 0, where, "%d lesions requested; at most %d per image", nl,
                       MS_PHANTOM_MAX_LESIONS);
  }
  img->subject.n_lesions = nl;
  st = ms__lesions_place(sc, p, nl, seed, index, img->lesions, d);
  if (st != MS_OK) return st;
  img->n_lesions = (size_t)nl;

  ms__tissue_values(img->tissue_value, p, seed, index);
  for (int k = 0; k < nl; k++) {
    ms_phantom_lesion *r = &img->lesions[k];
    r->value = ms__lesion_value(p->modality, r->organ, img->tissue_value[r->organ], r->contrast);
    if (sc->ggo_weight[k] > 0) {
      /* subsolid: the solid value goes to the core, the lesion's own value
       * lies between the lung and it */
      double solid = r->value, organ = img->tissue_value[r->organ];
      img->tissue_value[MS__CORE_SLOT(k)] = (float)solid;
      r->value = organ + sc->ggo_weight[k] * (solid - organ);
    }
    img->tissue_value[r->label] = (float)r->value;
  }
  /* Augmentation draws: stream "phantom/augment", lanes 0..3 global, 1000+ grid. */
  ms_rng_key ak = ms_rng_key_make(seed, ms_rng_stream("phantom/augment"));
  const ms_augment_params *a = &p->augment;
  if (a->intensity_shift > 0 || a->intensity_scale > 0) {
    double unit = p->modality == MS_MODALITY_CT ? 1 : ms__mr_reference_signal(p->modality);
    double shift = a->intensity_shift * unit * ms_rng_normal(ak, index, 2);
    double gain = 1 + a->intensity_scale * ms_rng_normal(ak, index, 3);
    for (int l = 0; l < 256; l++) img->tissue_value[l] = (float)(img->tissue_value[l] * gain + shift);
  }
  warp w = {0, 1, 0, NULL};
  if (a->rotate_deg > 0 || a->scale_min != 1 || a->scale_max != 1 || a->elastic_mm > 0) {
    double th = a->rotate_deg * M_PI / 180 * (2 * ms_rng_uniform(ak, index, 0) - 1);
    double zoom = a->scale_min + (a->scale_max - a->scale_min) * ms_rng_uniform(ak, index, 1);
    w.on = 1;
    w.ct = cos(th) / zoom;
    w.st = sin(th) / zoom;
    if (a->elastic_mm > 0) {
      st = build_displacement(s->disp, p, img->spacing, ak, index, d);
      if (st != MS_OK) return st;
      w.disp = s->disp;
    }
  }
  render(img, p, sc, s, &w);
  if (p->noise) add_noise(img, p, seed, index);
  measure_lesions(img);
  return MS_OK;
}
