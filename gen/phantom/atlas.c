/* The brain atlas: Colin27 T1 + AAL from Debian's mricron-data, read from
 * gzip NIfTI-1 through zlib, and the tissue label set derived from them.
 *
 * Derivation (docs/phantoms.md, "Brain"; all in the 1 mm MNI grid of the
 * templates, thresholds on the 0..255 template intensities):
 *  1. brain = ch2bet > 0 (the package's skull-stripped T1) or AAL > 0 (AAL
 *     reaches a little past the BET mask; there ch2 gives the intensity).
 *  2. background = non-brain voxels with ch2 < 20 connected (6-neighbour) to
 *     the volume's border; other non-brain voxels are skull (ch2 < 50: bone,
 *     and CSF/vessels outside the BET mask) or scalp (ch2 >= 50).
 *  3. Every brain voxel gets the AAL region of its nearest AAL-labelled
 *     voxel (breadth-first through the brain mask, city-block distance,
 *     ties to the first in scan order): that names its compartment,
 *     cerebrum, deep nuclei (AAL 71..78), cerebellum (AAL 91..116).
 *     Voxels AAL leaves unlabelled in the box |x| <= 14, -42 <= y <= -8,
 *     z <= -8 mm (MNI) are brainstem.
 *  4. Intensity classes on ch2bet (3-class k-means of the brain's
 *     histogram gives centres 52, 84, 109): CSF < 68 <= GM < 96 <= WM.
 *     Cerebrum: CSF / cortical GM / WM; deep nuclei: CSF, deep GM inside
 *     AAL 71..78 and WM/GM classes elsewhere; cerebellum: CSF / cerebellar
 *     GM / cerebellar WM; brainstem: CSF / brainstem.
 *  5. Lateral ventricles: CSF-class voxels at least 8 mm (city block) inside
 *     the brain mask within |x| in [2.5, 35], -50 <= y <= 35, -5 <= z <= 35.
 *  6. Cortical GM depth: city-block distance from the nearest CSF voxel
 *     through cortical GM (1 = touching CSF), for age-related thinning.
 * The result is approximate anatomy (a segmentation of one average brain),
 * exact as a label map: every voxel has exactly one label.
 *
 * Invariant: loading is deterministic and single-threaded; the atlas is
 * read-only afterwards and may be shared by any number of threads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/alloc.h"
#include "core/names.h"
#include "medsynth/brain.h"
#include "phantom/brain_internal.h"

static const char *const k_tissue_names[MS_BRAIN_TISSUE_COUNT] = {
    "background", "csf", "cortical_gm", "white_matter", "lateral_ventricle", "deep_gm",
    "cerebellar_gm", "cerebellar_wm", "brainstem", "skull", "scalp", "tumour_oedema", "tumour_enhancing",
    "tumour_necrosis", "wm_lesion", "stroke"};

static const char *const k_territory_names[MS_BRAIN_TERRITORY_COUNT] = {"none", "aca", "mca", "pca"};
MS__NAME_FNS(ms_brain_territory_name, ms_brain_territory_from_name, ms_brain_territory, k_territory_names,
             MS_BRAIN_TERRITORY_COUNT, NULL)

/* Arterial territory of an AAL region, by name without its _L/_R suffix
 * (docs/phantoms.md, "Stroke"): anterior cerebral artery for the medial
 * frontal and anterior medial parietal cortex and the caudate, posterior
 * cerebral artery for the occipital lobe, the medial and inferior temporal
 * lobe and the thalamus, middle cerebral artery for the rest of the
 * cerebrum; none for the cerebellum. */
static ms_brain_territory aal_territory(const char *name) {
  static const char *const aca[] = {"Frontal_Sup_L", "Frontal_Sup_R", "Frontal_Sup_Medial", "Frontal_Med_Orb",
                                    "Rectus", "Olfactory", "Cingulum_Ant", "Cingulum_Mid", "Supp_Motor_Area",
                                    "Paracentral_Lobule", "Precuneus", "Caudate"};
  static const char *const pca[] = {"Occipital_", "Calcarine", "Cuneus", "Lingual", "Fusiform", "ParaHippocampal",
                                    "Hippocampus", "Thalamus", "Cingulum_Post", "Temporal_Inf"};
  if (!name || !strncmp(name, "Cerebelum", 9) || !strncmp(name, "Vermis", 6)) return MS_BRAIN_TERRITORY_NONE;
  for (size_t i = 0; i < sizeof aca / sizeof aca[0]; i++)
    if (!strncmp(name, aca[i], strlen(aca[i]))) return MS_BRAIN_ACA;
  for (size_t i = 0; i < sizeof pca / sizeof pca[0]; i++)
    if (!strncmp(name, pca[i], strlen(pca[i]))) return MS_BRAIN_PCA;
  return MS_BRAIN_MCA;
}

/* The territory map (prop: nearest AAL region of every brain voxel); with
 * a->stroke_sites NULL it only counts the stroke centres. */
static void territory_pass(ms_brain_atlas *a, const uint8_t *prop) {
  uint8_t code_of[256];
  for (int l = 0; l < 256; l++) {
    const char *nm = a->aal_names[l];
    ms_brain_territory tr = l ? aal_territory(nm) : MS_BRAIN_TERRITORY_NONE;
    size_t ln = nm ? strlen(nm) : 0;
    code_of[l] = (uint8_t)(tr == MS_BRAIN_TERRITORY_NONE ? 0 : (int)tr + (ln > 2 && !strcmp(nm + ln - 2, "_R") ? 3 : 0));
  }
  size_t count[7] = {0};
  for (size_t v = 0; v < a->n_voxels; v++) {
    int t = a->tissue[v];
    int c = t == MS_BRAIN_CORTICAL_GM || t == MS_BRAIN_WM || t == MS_BRAIN_DEEP_GM ? code_of[prop[v]] : 0;
    a->territory[v] = (uint8_t)c;
    if (c && v % 4 == 0) count[c]++;
  }
  size_t at[7];
  a->stroke_start[0] = at[0] = 0;
  for (int c = 1; c <= 6; c++) a->stroke_start[c] = a->stroke_start[c - 1] + count[c];
  for (int c = 1; c <= 6; c++) at[c] = a->stroke_start[c - 1];
  for (size_t v = 0; a->stroke_sites && v < a->n_voxels; v += 4)
    if (a->territory[v]) a->stroke_sites[at[a->territory[v]]++] = (uint32_t)v;
}

static const char *const k_lobe_names[MS_BRAIN_LOBE_COUNT] = {"any", "frontal", "parietal", "temporal", "occipital"};
MS__NAME_FNS(ms_brain_lobe_name, ms_brain_lobe_from_name, ms_brain_lobe, k_lobe_names, MS_BRAIN_LOBE_COUNT, NULL)

/* Lobe of an AAL region: frontal 1-28, 69-70; parietal 57-68; temporal
 * 37-42 (hippocampus, parahippocampal gyrus, amygdala), 55-56 (fusiform),
 * 79-90; occipital 43-54; 0 otherwise (insula, cingulum, deep nuclei,
 * cerebellum). */
static int aal_lobe(int r) {
  if ((r >= 1 && r <= 28) || r == 69 || r == 70) return MS_BRAIN_LOBE_FRONTAL;
  if (r >= 57 && r <= 68) return MS_BRAIN_LOBE_PARIETAL;
  if ((r >= 37 && r <= 42) || r == 55 || r == 56 || (r >= 79 && r <= 90)) return MS_BRAIN_LOBE_TEMPORAL;
  if (r >= 43 && r <= 54) return MS_BRAIN_LOBE_OCCIPITAL;
  return 0;
}

const char *ms_brain_tissue_name(int label) {
  return ms__name_of(k_tissue_names, MS_BRAIN_TISSUE_COUNT, label, NULL);
}

static const char *const k_set_names[MS_BRAIN_LABELSET_COUNT] = {"tissue", "aal"};
MS__NAME_FNS(ms_brain_labelset_name, ms_brain_labelset_from_name, ms_brain_labelset, k_set_names,
             MS_BRAIN_LABELSET_COUNT, NULL)

/* Reads a gzip (or plain) NIfTI-1 volume of uint8 voxels. Only what the
 * templates use is accepted: 3-D, uint8, little-endian, sform or pixdim. */
static ms_status read_u8(const char *path, int dims[3], double affine[12], uint8_t **out, ms_diag *d) {
  *out = NULL;
  gzFile f = gzopen(path, "rb");
  if (!f)
    return ms_diag_add(d, MS_ERR_NOTFOUND, path, 0, 0, NULL,
                       "cannot open the brain atlas (install Debian's mricron-data package)");
  unsigned char h[352];
  ms_status st = MS_OK;
  int n = gzread(f, h, sizeof h);
  int32_t hs;
  int16_t dim[8], dtype;
  float pix[8], vox_off, srow[12];
  int16_t sform;
  if (n != (int)sizeof h) {
    st = ms_diag_add(d, MS_ERR_FORMAT, path, 0, 0, NULL, "truncated NIfTI header");
    goto out;
  }
  memcpy(&hs, h, 4);
  memcpy(dim, h + 40, 16);
  memcpy(&dtype, h + 70, 2);
  memcpy(pix, h + 76, 32);
  memcpy(&vox_off, h + 108, 4);
  memcpy(&sform, h + 254, 2);
  memcpy(srow, h + 280, 48);
  if (hs != 348 || memcmp(h + 344, "n+1", 4)) {
    st = ms_diag_add(d, MS_ERR_FORMAT, path, 0, 0, NULL, "not a little-endian single-file NIfTI-1 image");
    goto out;
  }
  if (dim[0] < 3 || dim[1] < 1 || dim[2] < 1 || dim[3] < 1 || dim[1] > 1024 || dim[2] > 1024 ||
      dim[3] > 1024 || (dim[0] > 3 && dim[4] > 1) || dtype != 2) {
    st = ms_diag_add(d, MS_ERR_UNSUPPORTED, path, 0, 0, NULL,
                     "expected a 3-D uint8 volume of at most 1024^3 voxels (dim %d, datatype %d)", dim[0], dtype);
    goto out;
  }
  for (int i = 0; i < 3; i++) dims[i] = dim[i + 1];
  if (sform > 0) {
    for (int i = 0; i < 12; i++) affine[i] = srow[i];
  } else {
    memset(affine, 0, 12 * sizeof *affine);
    for (int i = 0; i < 3; i++) affine[i * 4 + i] = pix[i + 1] > 0 ? pix[i + 1] : 1;
  }
  if (vox_off > 352 && gzseek(f, (z_off_t)vox_off, SEEK_SET) < 0) {
    st = ms_diag_add(d, MS_ERR_FORMAT, path, 0, 0, NULL, "bad vox_offset %g", vox_off);
    goto out;
  }
  size_t nv = (size_t)dims[0] * dims[1] * dims[2];
  uint8_t *buf = ms__malloc(nv);
  if (!buf) {
    st = ms_diag_add(d, MS_ERR_NOMEM, path, 0, 0, NULL, "out of memory for %zu voxels", nv);
    goto out;
  }
  if (gzread(f, buf, (unsigned)nv) != (int)nv) {
    free(buf);
    st = ms_diag_add(d, MS_ERR_FORMAT, path, 0, 0, NULL, "truncated NIfTI data (%zu voxels expected)", nv);
    goto out;
  }
  *out = buf;
out:
  gzclose(f);
  return st;
}

/* Multi-source breadth-first search over 6-neighbours. On entry lab[v] != 0
 * marks sources (their value spreads), pass[v] != 0 marks voxels the search
 * may enter. On exit every reachable voxel holds its nearest source's value
 * and dist[v] (when dist) its city-block distance, capped at 255. */
static void bfs(uint8_t *lab, uint8_t *dist, const uint8_t *pass, const int dm[3], uint32_t *queue) {
  size_t nv = (size_t)dm[0] * dm[1] * dm[2], head = 0, tail = 0;
  for (size_t v = 0; v < nv; v++) {
    if (lab[v]) queue[tail++] = (uint32_t)v;
    if (dist) dist[v] = lab[v] ? 0 : 255;
  }
  const size_t sx = 1, sy = (size_t)dm[0], sz = (size_t)dm[0] * dm[1];
  while (head < tail) {
    size_t v = queue[head++];
    int i = (int)(v % (size_t)dm[0]), j = (int)(v / sy % (size_t)dm[1]), k = (int)(v / sz);
    size_t nb[6];
    int nn = 0;
    if (i > 0) nb[nn++] = v - sx;
    if (i < dm[0] - 1) nb[nn++] = v + sx;
    if (j > 0) nb[nn++] = v - sy;
    if (j < dm[1] - 1) nb[nn++] = v + sy;
    if (k > 0) nb[nn++] = v - sz;
    if (k < dm[2] - 1) nb[nn++] = v + sz;
    for (int q = 0; q < nn; q++) {
      size_t w = nb[q];
      if (lab[w] || !pass[w]) continue;
      lab[w] = lab[v];
      if (dist) dist[w] = dist[v] < 254 ? (uint8_t)(dist[v] + 1) : 254;
      queue[tail++] = (uint32_t)w;
    }
  }
}

static ms_status read_names(ms_brain_atlas *a, const char *path, ms_diag *d) {
  FILE *f = fopen(path, "r");
  if (!f)
    return ms_diag_add(d, MS_ERR_NOTFOUND, path, 0, 0, NULL,
                       "cannot open the AAL label names (install Debian's mricron-data package)");
  char line[256];
  int lineno = 0;
  ms_status st = MS_OK;
  while (st == MS_OK && fgets(line, sizeof line, f)) {
    lineno++;
    int idx;
    char name[128];
    if (sscanf(line, "%d %127s", &idx, name) != 2) continue;
    if (idx < 1 || idx > 255) {
      st = ms_diag_add(d, MS_ERR_FORMAT, path, lineno, 1, NULL, "label %d out of 1..255", idx);
      break;
    }
    for (const char *c = name; *c; c++)
      if (!(*c == '_' || *c == '-' || *c == '.' || (*c >= '0' && *c <= '9') || ((*c | 32) >= 'a' && (*c | 32) <= 'z'))) {
        st = ms_diag_add(d, MS_ERR_FORMAT, path, lineno, 1, NULL, "label name \"%s\" is not an identifier", name);
        break;
      }
    if (st != MS_OK) break;
    free(a->aal_names[idx]);
    if (!(a->aal_names[idx] = ms__strdup(name))) st = ms_diag_add(d, MS_ERR_NOMEM, path, lineno, 1, NULL, "out of memory");
  }
  fclose(f);
  return st;
}

/* Tumour sites: deep white matter (>= 10 mm inside the brain) grouped by
 * the lobe of the nearest AAL region (prop), in scan order. With a->sites
 * NULL it only counts (site_start); otherwise it fills a->sites. */
static void sites_pass(ms_brain_atlas *a, const uint8_t *prop, const uint8_t *dist) {
  size_t n = 0;
  a->site_start[0] = 0;
  for (int l = 1; l < MS_BRAIN_LOBE_COUNT; l++) {
    a->site_start[l] = n;
    for (size_t v = 0; v < a->n_voxels; v++)
      if (a->tissue[v] == MS_BRAIN_WM && dist[v] >= 10 && aal_lobe(prop[v]) == l) {
        if (a->sites) a->sites[n] = (uint32_t)v;
        n++;
      }
  }
  a->site_start[MS_BRAIN_LOBE_COUNT] = n;
}

/* Distance of every tumour site to the lateral ventricles through the
 * brain (white-matter lesions' periventricular preference). */
static void ventricle_distance(ms_brain_atlas *a, uint8_t *prop, uint8_t *dist, uint8_t *pass, uint32_t *queue) {
  for (size_t v = 0; v < a->n_voxels; v++) {
    prop[v] = a->tissue[v] == MS_BRAIN_VENTRICLE;
    pass[v] = a->bet[v] || a->aal[v];
  }
  bfs(prop, dist, pass, a->dims, queue);
  for (size_t s = 0; s < a->site_start[MS_BRAIN_LOBE_COUNT]; s++) a->site_vdist[s] = dist[a->sites[s]];
}

/* Depth of cortical grey matter below the CSF it borders (age atrophy). */
static void cortical_depth(ms_brain_atlas *a, uint8_t *prop, uint8_t *dist, uint8_t *pass, uint32_t *queue) {
  for (size_t v = 0; v < a->n_voxels; v++) {
    prop[v] = a->tissue[v] == MS_BRAIN_CSF;
    pass[v] = a->tissue[v] == MS_BRAIN_CORTICAL_GM;
  }
  bfs(prop, dist, pass, a->dims, queue);
  for (size_t v = 0; v < a->n_voxels; v++) a->gm_depth[v] = pass[v] && dist[v] < 255 ? dist[v] : 255;
}

static void derive_tissue(ms_brain_atlas *a, uint8_t *prop, uint8_t *dist, uint8_t *pass, uint32_t *queue) {
  const int *dm = a->dims;
  size_t nv = a->n_voxels;
  const uint8_t *t1 = a->t1, *bet = a->bet, *aal = a->aal;
  uint8_t *tis = a->tissue;
  /* Background: dark voxels connected to the border. */
  memset(prop, 0, nv);
  for (size_t v = 0; v < nv; v++) {
    int i = (int)(v % (size_t)dm[0]), j = (int)(v / (size_t)dm[0] % (size_t)dm[1]),
        k = (int)(v / ((size_t)dm[0] * dm[1]));
    pass[v] = !bet[v] && !aal[v] && t1[v] < 20;
    int border = i == 0 || j == 0 || k == 0 || i == dm[0] - 1 || j == dm[1] - 1 || k == dm[2] - 1;
    if (border && pass[v]) prop[v] = 1;
  }
  bfs(prop, NULL, pass, dm, queue);
  for (size_t v = 0; v < nv; v++)
    tis[v] = bet[v] || aal[v] ? MS_BRAIN_WM : prop[v] ? MS_BRAIN_BACKGROUND : t1[v] < 50 ? MS_BRAIN_SKULL : MS_BRAIN_SCALP;
  /* Distance into the brain from its outside. */
  for (size_t v = 0; v < nv; v++) {
    prop[v] = !bet[v] && !aal[v];
    pass[v] = !prop[v];
  }
  bfs(prop, dist, pass, dm, queue);
  /* Nearest AAL region inside the brain. */
  for (size_t v = 0; v < nv; v++) prop[v] = aal[v];
  bfs(prop, NULL, pass, dm, queue);
  for (size_t v = 0; v < nv; v++) {
    if (!bet[v] && !aal[v]) continue;
    double x, y, z;
    ms__brain_atlas_ras(a, v, &x, &y, &z);
    int b = bet[v] ? bet[v] : t1[v], cls = b < 68 ? 0 : b < 96 ? 1 : 2, r = prop[v], t;
    if (!aal[v] && fabs(x) <= 14 && y >= -42 && y <= -8 && z <= -8)
      t = cls == 0 ? MS_BRAIN_CSF : MS_BRAIN_BRAINSTEM;
    else if (r >= 91 && r <= 116)
      t = cls == 0 ? MS_BRAIN_CSF : cls == 1 ? MS_BRAIN_CEREBELLAR_GM : MS_BRAIN_CEREBELLAR_WM;
    else if (aal[v] >= 71 && aal[v] <= 78)
      t = cls == 0 ? MS_BRAIN_CSF : MS_BRAIN_DEEP_GM;
    else
      t = cls == 0 ? MS_BRAIN_CSF : cls == 1 ? MS_BRAIN_CORTICAL_GM : MS_BRAIN_WM;
    if (t == MS_BRAIN_CSF && dist[v] >= 8 && fabs(x) >= 2.5 && fabs(x) <= 35 && y >= -50 && y <= 35 && z >= -5 &&
        z <= 35)
      t = MS_BRAIN_VENTRICLE;
    tis[v] = (uint8_t)t;
  }
  sites_pass(a, prop, dist);
}

void ms__brain_atlas_ras(const ms_brain_atlas *a, size_t v, double *x, double *y, double *z) {
  double i = (double)(v % (size_t)a->dims[0]), j = (double)(v / (size_t)a->dims[0] % (size_t)a->dims[1]),
         k = (double)(v / ((size_t)a->dims[0] * a->dims[1]));
  const double *m = a->affine;
  *x = m[0] * i + m[1] * j + m[2] * k + m[3];
  *y = m[4] * i + m[5] * j + m[6] * k + m[7];
  *z = m[8] * i + m[9] * j + m[10] * k + m[11];
}

static int invert3(const double m[12], double inv[12]) {
  double a = m[0], b = m[1], c = m[2], d = m[4], e = m[5], f = m[6], g = m[8], h = m[9], k = m[10];
  double det = a * (e * k - f * h) - b * (d * k - f * g) + c * (d * h - e * g);
  if (!(fabs(det) > 1e-12)) return -1;
  double r[9] = {(e * k - f * h) / det, (c * h - b * k) / det, (b * f - c * e) / det,
                 (f * g - d * k) / det, (a * k - c * g) / det, (c * d - a * f) / det,
                 (d * h - e * g) / det, (b * g - a * h) / det, (a * e - b * d) / det};
  for (int i = 0; i < 3; i++) {
    for (int j = 0; j < 3; j++) inv[i * 4 + j] = r[i * 3 + j];
    inv[i * 4 + 3] = -(r[i * 3] * m[3] + r[i * 3 + 1] * m[7] + r[i * 3 + 2] * m[11]);
  }
  return 0;
}

ms_status ms_brain_atlas_load(ms_brain_atlas **out, const char *dir, ms_diag *d) {
  *out = NULL;
  if (!dir) dir = MS_BRAIN_ATLAS_DIR;
  ms_brain_atlas *a = ms__calloc(1, sizeof *a);
  if (!a) return ms_diag_add(d, MS_ERR_NOMEM, NULL, 0, 0, NULL, "out of memory");
  static const char *const files[3] = {"ch2.nii.gz", "ch2bet.nii.gz", "aal.nii.gz"};
  uint8_t **bufs[3] = {&a->t1, &a->bet, &a->aal};
  ms_status st = MS_OK;
  char *path = NULL;
  uint8_t *scratch = NULL;
  uint32_t *queue = NULL;
  for (int f = 0; f < 3 && st == MS_OK; f++) {
    int dm[3];
    double af[12];
    free(path);
    if (ms__asprintf(&path, "%s/%s", dir, files[f]) < 0) {
      st = ms_diag_add(d, MS_ERR_NOMEM, NULL, 0, 0, NULL, "out of memory");
      break;
    }
    if ((st = read_u8(path, dm, af, bufs[f], d)) != MS_OK) break;
    if (f == 0) {
      memcpy(a->dims, dm, sizeof dm);
      memcpy(a->affine, af, sizeof af);
    } else if (memcmp(dm, a->dims, sizeof dm)) {
      st = ms_diag_add(d, MS_ERR_FORMAT, path, 0, 0, NULL, "grid %dx%dx%d differs from ch2.nii.gz's %dx%dx%d", dm[0],
                       dm[1], dm[2], a->dims[0], a->dims[1], a->dims[2]);
    }
  }
  if (st == MS_OK) {
    free(path);
    path = NULL;
    if (ms__asprintf(&path, "%s/aal.nii.txt", dir) < 0)
      st = ms_diag_add(d, MS_ERR_NOMEM, NULL, 0, 0, NULL, "out of memory");
    else
      st = read_names(a, path, d);
  }
  if (st == MS_OK && invert3(a->affine, a->inv_affine))
    st = ms_diag_add(d, MS_ERR_FORMAT, "ch2.nii.gz", 0, 0, NULL, "singular voxel-to-world affine");
  if (st == MS_OK) {
    a->n_voxels = (size_t)a->dims[0] * a->dims[1] * a->dims[2];
    a->tissue = ms__malloc(a->n_voxels);
    scratch = ms__malloc(3 * a->n_voxels);
    queue = ms__malloc(a->n_voxels * sizeof *queue);
    if (!a->tissue || !scratch || !queue) st = ms_diag_add(d, MS_ERR_NOMEM, NULL, 0, 0, NULL, "out of memory for the atlas");
  }
  if (st == MS_OK) {
    derive_tissue(a, scratch, scratch + a->n_voxels, scratch + 2 * a->n_voxels, queue);
    /* derive_tissue counted the tumour sites (a->sites NULL); fill them. */
    size_t n_sites = a->site_start[MS_BRAIN_LOBE_COUNT];
    if (!(a->sites = ms__malloc((n_sites ? n_sites : 1) * sizeof *a->sites)))
      st = ms_diag_add(d, MS_ERR_NOMEM, NULL, 0, 0, NULL, "out of memory for the atlas");
    else if (!(a->gm_depth = ms__malloc(a->n_voxels)) || !(a->territory = ms__malloc(a->n_voxels)) ||
             !(a->site_vdist = ms__malloc(n_sites ? n_sites : 1)))
      st = ms_diag_add(d, MS_ERR_NOMEM, NULL, 0, 0, NULL, "out of memory for the atlas");
    else {
      sites_pass(a, scratch, scratch + a->n_voxels);
      territory_pass(a, scratch);
      if (!(a->stroke_sites = ms__malloc((a->stroke_start[6] ? a->stroke_start[6] : 1) * sizeof *a->stroke_sites)))
        st = ms_diag_add(d, MS_ERR_NOMEM, NULL, 0, 0, NULL, "out of memory for the atlas");
      else
        territory_pass(a, scratch);
      cortical_depth(a, scratch, scratch + a->n_voxels, scratch + 2 * a->n_voxels, queue);
      ventricle_distance(a, scratch, scratch + a->n_voxels, scratch + 2 * a->n_voxels, queue);
    }
  }
  if (st == MS_OK) {
    /* Brain centre (bounding box of the brain mask) and ventricle centroids. */
    double lo[3] = {1e9, 1e9, 1e9}, hi[3] = {-1e9, -1e9, -1e9}, vs[2][3] = {{0}}, vn[2] = {0};
    for (size_t v = 0; v < a->n_voxels; v++) {
      if (!a->bet[v] && !a->aal[v]) continue;
      double p[3];
      ms__brain_atlas_ras(a, v, &p[0], &p[1], &p[2]);
      for (int c = 0; c < 3; c++) {
        if (p[c] < lo[c]) lo[c] = p[c];
        if (p[c] > hi[c]) hi[c] = p[c];
      }
      if (a->tissue[v] == MS_BRAIN_VENTRICLE) {
        int s = p[0] > 0;
        for (int c = 0; c < 3; c++) vs[s][c] += p[c];
        vn[s]++;
      }
    }
    for (int c = 0; c < 3; c++) {
      a->centre[c] = 0.5 * (lo[c] + hi[c]);
      for (int s = 0; s < 2; s++) a->ventricle_centre[s][c] = (vn[s] ? vs[s][c] / vn[s] : a->centre[c]) - a->centre[c];
    }
  }
  free(path);
  free(scratch);
  free(queue);
  if (st != MS_OK) {
    ms_brain_atlas_free(a);
    return st;
  }
  *out = a;
  return MS_OK;
}

void ms_brain_atlas_free(ms_brain_atlas *a) {
  if (!a) return;
  free(a->t1);
  free(a->bet);
  free(a->aal);
  free(a->tissue);
  free(a->sites);
  free(a->gm_depth);
  free(a->territory);
  free(a->site_vdist);
  free(a->stroke_sites);
  for (int i = 0; i < 256; i++) free(a->aal_names[i]);
  free(a);
}

const uint8_t *ms_brain_atlas_labels(const ms_brain_atlas *a, ms_brain_labelset s, int dims[3]) {
  if (dims) memcpy(dims, a->dims, sizeof a->dims);
  return s == MS_BRAIN_LABELS_AAL ? a->aal : a->tissue;
}

const uint8_t *ms_brain_atlas_t1(const ms_brain_atlas *a) { return a->t1; }

const uint8_t *ms_brain_atlas_territories(const ms_brain_atlas *a) { return a->territory; }

void ms_brain_atlas_affine(const ms_brain_atlas *a, double affine[12]) { memcpy(affine, a->affine, sizeof a->affine); }

const char *ms_brain_label_name(const ms_brain_atlas *a, ms_brain_labelset s, int label) {
  if (s == MS_BRAIN_LABELS_TISSUE) return ms_brain_tissue_name(label);
  if (label == 0) return "background";
  return label > 0 && label < 256 && a ? a->aal_names[label] : NULL;
}

char *ms_brain_label_table_json(const ms_brain_atlas *a, ms_brain_labelset s) {
  size_t cap = 64, len = 0;
  char *buf = ms__malloc(cap);
  if (!buf) return NULL;
  buf[len++] = '{';
  int first = 1;
  for (int l = 0; l < 256; l++) {
    const char *nm = ms_brain_label_name(a, s, l);
    if (!nm) continue;
    size_t need = strlen(nm) + 16;
    if (len + need + 2 > cap) {
      size_t nc = (len + need + 2) * 2;
      char *nb = ms__realloc(buf, nc);
      if (!nb) {
        free(buf);
        return NULL;
      }
      buf = nb;
      cap = nc;
    }
    /* Label names are identifiers (letters, digits, '_'): no escaping. */
    len += (size_t)snprintf(buf + len, cap - len, "%s\"%d\": \"%s\"", first ? "" : ", ", l, nm);
    first = 0;
  }
  buf[len++] = '}';
  buf[len] = 0;
  return buf;
}
