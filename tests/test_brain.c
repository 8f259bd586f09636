/* Tests of the atlas-based brain generator (gen/phantom/atlas.c, brain.c).
 * ctest-labels: unit
 *
 * Needs Debian's mricron-data (the Colin27 and AAL templates); without it
 * every case but the missing-atlas one is skipped with a message naming the
 * package. Properties checked: the derived tissue volumes are plausible, the
 * deformation never folds, every voxel has one label and the reported
 * volumes are the label counts, noise-free intensities are a function of
 * the label, contrast order follows the physics (WM > GM > CSF on T1w,
 * reversed on T2w, CSF dark on FLAIR), age enlarges the ventricles, bytes do
 * not depend on the thread count, a threshold cannot segment grey matter
 * under domain randomisation, and nibabel reads our NIfTI at the right
 * place in MNI space. */
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <xxhash.h>

#include "medsynth/brain.h"
#include "medsynth/faultsim.h"
#include "medsynth/nifti.h"

static ms_brain_atlas *g_atlas;

static int have_atlas(void) {
  if (g_atlas) return 1;
  print_message("skipped: the brain atlas needs Debian's mricron-data package (%s/ch2.nii.gz)\n", MS_BRAIN_ATLAS_DIR);
  return 0;
}

static int setup(void **state) {
  (void)state;
  if (access(MS_BRAIN_ATLAS_DIR "/ch2.nii.gz", R_OK)) return 0;
  ms_diag d;
  ms_diag_init(&d);
  ms_status st = ms_brain_atlas_load(&g_atlas, NULL, &d);
  if (st != MS_OK) {
    char *t = ms_diag_format(&d);
    fprintf(stderr, "%s", t ? t : "?");
    free(t);
  }
  ms_diag_deinit(&d);
  return st == MS_OK ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  ms_brain_atlas_free(g_atlas);
  return 0;
}

/* A small, quick grid: 60 x 72 x 60 at 3 mm covers the whole head. */
static ms_brain_params small(void) {
  ms_brain_params p;
  ms_brain_params_init(&p);
  p.dims[0] = 60;
  p.dims[1] = 72;
  p.dims[2] = 60;
  p.spacing_mm[0] = p.spacing_mm[1] = p.spacing_mm[2] = 3;
  return p;
}

/* The whole head at 2 mm (90 x 108 x 90), noise-free: label comparisons. */
static ms_brain_params noise_free_2mm(void) {
  ms_brain_params p = small();
  p.spacing_mm[0] = p.spacing_mm[1] = p.spacing_mm[2] = 2;
  p.dims[0] = 90;
  p.dims[1] = 108;
  p.dims[2] = 90;
  p.noise_free = 1;
  return p;
}

static void init(ms_brain_image *img, const ms_brain_params *p) {
  ms_diag d;
  ms_diag_init(&d);
  assert_int_equal(ms_brain_image_init(img, p, &d), MS_OK);
  ms_diag_deinit(&d);
}

static void gen(ms_brain_image *img, const ms_brain_params *p, uint64_t seed, uint64_t index) {
  ms_diag d;
  ms_diag_init(&d);
  ms_status st = ms_brain_generate(img, g_atlas, p, seed, index, &d);
  if (st != MS_OK) {
    char *t = ms_diag_format(&d);
    print_error("%s", t ? t : "?");
    free(t);
  }
  assert_int_equal(st, MS_OK);
  ms_diag_deinit(&d);
}

static void test_brain_missing_atlas_names_the_package(void **state) {
  (void)state;
  ms_diag d;
  ms_diag_init(&d);
  ms_brain_atlas *a = (ms_brain_atlas *)1;
  assert_int_equal(ms_brain_atlas_load(&a, "/nonexistent/templates", &d), MS_ERR_NOTFOUND);
  assert_null(a);
  char *t = ms_diag_format(&d);
  assert_non_null(strstr(t, "mricron-data"));
  assert_non_null(strstr(t, "/nonexistent/templates/ch2.nii.gz"));
  free(t);
  ms_diag_deinit(&d);
}

/* Documented ranges (docs/phantoms.md): of the brain (all brain labels),
 * grey matter 40..60 %, white matter 30..50 %, CSF incl. ventricles 5..20 %;
 * every label present; 116 AAL regions with names. */
static void test_brain_atlas_tissue_fractions(void **state) {
  (void)state;
  if (!have_atlas()) return;
  int dm[3];
  const uint8_t *t = ms_brain_atlas_labels(g_atlas, MS_BRAIN_LABELS_TISSUE, dm);
  const uint8_t *aal = ms_brain_atlas_labels(g_atlas, MS_BRAIN_LABELS_AAL, NULL);
  size_t nv = (size_t)dm[0] * dm[1] * dm[2];
  double n[256] = {0};
  int seen[256] = {0};
  for (size_t v = 0; v < nv; v++) {
    assert_true(t[v] < MS_BRAIN_TISSUE_COUNT);
    n[t[v]]++;
    seen[aal[v]] = 1;
    /* An AAL region lies inside the brain labels. */
    if (aal[v]) assert_true(t[v] >= MS_BRAIN_CSF && t[v] <= MS_BRAIN_BRAINSTEM);
  }
  for (int l = 0; l <= MS_BRAIN_SCALP; l++) assert_true(n[l] > 1000);
  for (int l = MS_BRAIN_SCALP + 1; l < MS_BRAIN_TISSUE_COUNT; l++) assert_true(n[l] == 0);
  double gm = n[MS_BRAIN_CORTICAL_GM] + n[MS_BRAIN_DEEP_GM] + n[MS_BRAIN_CEREBELLAR_GM];
  double wm = n[MS_BRAIN_WM] + n[MS_BRAIN_CEREBELLAR_WM] + n[MS_BRAIN_BRAINSTEM];
  double csf = n[MS_BRAIN_CSF] + n[MS_BRAIN_VENTRICLE];
  double brain = gm + wm + csf;
  assert_true(gm / brain > 0.40 && gm / brain < 0.60);
  assert_true(wm / brain > 0.30 && wm / brain < 0.50);
  assert_true(csf / brain > 0.05 && csf / brain < 0.20);
  assert_true(brain > 1.2e6 && brain < 2.0e6); /* mm^3: Colin27 is a large brain */
  int regions = 0;
  for (int l = 1; l < 256; l++)
    if (seen[l]) {
      regions++;
      assert_non_null(ms_brain_label_name(g_atlas, MS_BRAIN_LABELS_AAL, l));
    }
  assert_int_equal(regions, 116);
  assert_string_equal(ms_brain_label_name(g_atlas, MS_BRAIN_LABELS_AAL, 1), "Precentral_L");
  char *js = ms_brain_label_table_json(g_atlas, MS_BRAIN_LABELS_TISSUE);
  assert_non_null(strstr(js, "\"4\": \"lateral_ventricle\""));
  free(js);
}

static void test_brain_deformation_is_invertible(void **state) {
  (void)state;
  if (!have_atlas()) return;
  ms_brain_params p = small();
  p.deform_mm = 6; /* twice the default */
  p.age_years = 95;
  ms_brain_image img;
  init(&img, &p);
  for (uint64_t i = 0; i < 4; i++) {
    gen(&img, &p, 7, i);
    assert_true(img.min_jacobian > 0);
    assert_true(img.min_jacobian < 1); /* it did deform */
  }
  ms_brain_image_deinit(&img);
}

static void test_brain_labels_exact_and_volumes_are_counts(void **state) {
  (void)state;
  if (!have_atlas()) return;
  for (int mode = 0; mode < MS_BRAIN_INTENSITY_COUNT; mode++) {
    ms_brain_params p = small();
    p.noise_free = 1;
    p.intensity = (ms_brain_intensity)mode;
    ms_brain_image img;
    init(&img, &p);
    gen(&img, &p, 3, 5);
    double n[256] = {0};
    for (size_t v = 0; v < img.n_voxels; v++) {
      assert_true(img.labels[v] < MS_BRAIN_TISSUE_COUNT);
      assert_true(img.image[v] == img.tissue_value[img.labels[v]]);
      if (img.aal[v]) assert_true(img.labels[v] >= MS_BRAIN_CSF && img.labels[v] <= MS_BRAIN_BRAINSTEM);
      n[img.labels[v]]++;
    }
    for (int l = 0; l < 256; l++) assert_true(n[l] * 27 == img.volume_mm3[l]);
    ms_brain_image_deinit(&img);
  }
}

static void test_brain_contrast_order_follows_physics(void **state) {
  (void)state;
  if (!have_atlas()) return;
  for (int f = 0; f < 2; f++) {
    ms_brain_params p = small();
    p.dims[2] = 1; /* one axial slice is enough for the values */
    p.field_t = f ? 3 : 1.5;
    ms_brain_image img;
    float v[MS_BRAIN_CONTRAST_COUNT][MS_BRAIN_TISSUE_COUNT];
    init(&img, &p);
    for (int c = 0; c < MS_BRAIN_CONTRAST_COUNT; c++) {
      p.contrast = (ms_brain_contrast)c;
      gen(&img, &p, 1, 0);
      memcpy(v[c], img.tissue_value, sizeof v[c]);
    }
    ms_brain_image_deinit(&img);
    const float *t1 = v[MS_BRAIN_T1], *t2 = v[MS_BRAIN_T2], *fl = v[MS_BRAIN_FLAIR];
    assert_true(t1[MS_BRAIN_WM] > t1[MS_BRAIN_CORTICAL_GM] && t1[MS_BRAIN_CORTICAL_GM] > t1[MS_BRAIN_CSF]);
    assert_true(t2[MS_BRAIN_CSF] > t2[MS_BRAIN_CORTICAL_GM] && t2[MS_BRAIN_CORTICAL_GM] > t2[MS_BRAIN_WM]);
    assert_true(fl[MS_BRAIN_CORTICAL_GM] > fl[MS_BRAIN_WM] && fl[MS_BRAIN_WM] > 10 * fl[MS_BRAIN_CSF]);
    /* Head CT in HU: bone > grey > white matter > CSF > air. */
    const float *ct = v[MS_BRAIN_CT];
    assert_true(ct[MS_BRAIN_SKULL] > 500 && ct[MS_BRAIN_CORTICAL_GM] > ct[MS_BRAIN_WM] &&
                ct[MS_BRAIN_WM] > ct[MS_BRAIN_CSF] && ct[MS_BRAIN_BACKGROUND] == -1000);
  }
  /* CT is physics only. */
  ms_brain_params p = small();
  p.contrast = MS_BRAIN_CT;
  p.intensity = MS_BRAIN_RANDOM;
  ms_diag d;
  ms_diag_init(&d);
  assert_int_equal(ms_brain_params_check(&p, &d), MS_ERR_INVALID);
  ms_diag_deinit(&d);
}

static void test_brain_age_enlarges_ventricles(void **state) {
  (void)state;
  if (!have_atlas()) return;
  ms_brain_params p = small();
  ms_brain_image img;
  init(&img, &p);
  double vol[2];
  for (int a = 0; a < 2; a++) {
    p.age_years = a ? 80 : 25;
    gen(&img, &p, 11, 2);
    vol[a] = img.volume_mm3[MS_BRAIN_VENTRICLE];
    assert_true(img.age_years == p.age_years);
  }
  ms_brain_image_deinit(&img);
  print_message("lateral ventricles: %.1f ml at 25, %.1f ml at 80\n", vol[0] / 1000, vol[1] / 1000);
  assert_true(vol[1] > 1.5 * vol[0]);
}

/* The tumour replaces only brain labels (oedema only white and grey
 * matter), everything else stays as without it; the core is enclosed by the
 * rim; it lies in the lobe asked for; its contrasts follow the physics. */
static void test_brain_tumour_labels_exact(void **state) {
  (void)state;
  if (!have_atlas()) return;
  ms_brain_params p = noise_free_2mm();
  p.tumour_diameter_mm = 40;
  ms_brain_image with, without;
  init(&with, &p);
  init(&without, &p);
  for (int lobe = MS_BRAIN_LOBE_FRONTAL; lobe < MS_BRAIN_LOBE_COUNT; lobe++) {
    p.tumour_lobe = (ms_brain_lobe)lobe;
    p.tumour = 1;
    gen(&with, &p, 9, (uint64_t)lobe);
    p.tumour = 0;
    gen(&without, &p, 9, (uint64_t)lobe);
    assert_int_equal(with.tumour_lobe, lobe);
    assert_true(with.tumour_diameter_mm == 40);
    double n[3] = {0, 0, 0};
    for (size_t v = 0; v < with.n_voxels; v++) {
      int a = with.labels[v], b = without.labels[v];
      if (a >= MS_BRAIN_TUMOUR_OEDEMA) {
        n[a - MS_BRAIN_TUMOUR_OEDEMA]++;
        assert_true(b >= MS_BRAIN_CSF && b <= MS_BRAIN_BRAINSTEM);
        if (a == MS_BRAIN_TUMOUR_OEDEMA)
          assert_true(b == MS_BRAIN_WM || b == MS_BRAIN_CORTICAL_GM || b == MS_BRAIN_DEEP_GM);
      } else {
        assert_int_equal(a, b);
      }
      assert_int_equal(with.aal[v], without.aal[v]);
      if (a == MS_BRAIN_TUMOUR_NECROSIS) {
        /* Enclosed by the rim, except where the tumour meets the brain's
         * surface (it is clipped there). */
        int W = p.dims[0], H = p.dims[1];
        size_t st[3] = {1, (size_t)W, (size_t)W * H};
        for (int q = 0; q < 3; q++)
          for (int sgn = -1; sgn <= 1; sgn += 2) {
            int nb = with.labels[sgn < 0 ? v - st[q] : v + st[q]];
            assert_true(nb == MS_BRAIN_TUMOUR_NECROSIS || nb == MS_BRAIN_TUMOUR_ENHANCING || nb == MS_BRAIN_BACKGROUND ||
                        nb == MS_BRAIN_SKULL || nb == MS_BRAIN_SCALP);
          }
      }
    }
    for (int q = 0; q < 3; q++) assert_true(n[q] > 50);
    for (int q = 0; q < 3; q++) assert_true(with.volume_mm3[MS_BRAIN_TUMOUR_OEDEMA + q] == n[q] * 8);
  }
  ms_brain_image_deinit(&with);
  ms_brain_image_deinit(&without);
  /* Contrast: oedema bright on T2w and FLAIR, the rim bright on T1w after gadolinium. */
  ms_brain_params q = small();
  q.dims[2] = 1;
  q.tumour = 1;
  ms_brain_image img;
  init(&img, &q);
  float v[3][MS_BRAIN_TISSUE_COUNT];
  const ms_brain_contrast cs[3] = {MS_BRAIN_T2, MS_BRAIN_FLAIR, MS_BRAIN_T1};
  for (int c = 0; c < 3; c++) {
    q.contrast = cs[c];
    q.gadolinium = c == 2;
    gen(&img, &q, 1, 0);
    memcpy(v[c], img.tissue_value, sizeof v[c]);
  }
  ms_brain_image_deinit(&img);
  assert_true(v[0][MS_BRAIN_TUMOUR_OEDEMA] > 1.5 * v[0][MS_BRAIN_WM]);
  assert_true(v[1][MS_BRAIN_TUMOUR_OEDEMA] > v[1][MS_BRAIN_CORTICAL_GM]);
  assert_true(v[2][MS_BRAIN_TUMOUR_ENHANCING] > 1.5 * v[2][MS_BRAIN_WM]);
  assert_true(v[2][MS_BRAIN_TUMOUR_NECROSIS] < v[2][MS_BRAIN_CORTICAL_GM]);
}

/* stroke_side fixes the hemisphere; the side drawn without it is the one
 * that fixing it to that side gives, voxel for voxel; out of range refused. */
static void test_brain_stroke_side(void **state) {
  (void)state;
  if (!have_atlas()) return;
  ms_brain_params p = noise_free_2mm();
  p.stroke = MS_BRAIN_MCA;
  p.stroke_radius_mm = 40;
  ms_brain_image drawn, fixed;
  init(&drawn, &p);
  init(&fixed, &p);
  gen(&drawn, &p, 9, 4);
  assert_true(drawn.stroke_side == 0 || drawn.stroke_side == 1);
  for (int side = 0; side <= 1; side++) {
    p.stroke_side = side;
    gen(&fixed, &p, 9, 4);
    assert_int_equal(fixed.stroke_side, side);
    if (side == drawn.stroke_side) {
      assert_memory_equal(fixed.labels, drawn.labels, fixed.n_voxels);
      assert_memory_equal(fixed.image, drawn.image, fixed.n_voxels * sizeof(float));
    }
    size_t m = 0;
    for (size_t v = 0; v < fixed.n_voxels; v++) {
      if (fixed.labels[v] != MS_BRAIN_STROKE) continue;
      m++;
      const char *nm = ms_brain_label_name(g_atlas, MS_BRAIN_LABELS_AAL, fixed.aal[v]);
      if (fixed.aal[v] && nm) assert_true(nm[strlen(nm) - 1] == (side ? 'R' : 'L'));
    }
    assert_true(m > 100);
  }
  ms_brain_image_deinit(&drawn);
  ms_brain_image_deinit(&fixed);
  ms_diag d;
  ms_diag_init(&d);
  p.stroke_side = 2;
  assert_int_not_equal(ms_brain_params_check(&p, &d), MS_OK);
  assert_non_null(strstr(d.entries[0].where, "stroke_side"));
  ms_diag_deinit(&d);
}

/* White-matter lesions replace white matter only, a stroke only grey and
 * white matter of one hemisphere's territory; both bright on T2w and FLAIR
 * and dark on T1w relative to white matter; volumes are the mask counts. */
static void test_brain_wm_lesions_and_stroke_labels_exact(void **state) {
  (void)state;
  if (!have_atlas()) return;
  ms_brain_params p = noise_free_2mm();
  ms_brain_image with, without;
  init(&with, &p);
  init(&without, &p);
  p.wm_lesions = 30;
  p.wm_load_ml = 20;
  gen(&with, &p, 5, 1);
  p.wm_lesions = 0;
  gen(&without, &p, 5, 1);
  double n = 0;
  for (size_t v = 0; v < with.n_voxels; v++) {
    if (with.labels[v] == MS_BRAIN_WM_LESION) {
      n++;
      assert_int_equal(without.labels[v], MS_BRAIN_WM);
    } else {
      assert_int_equal(with.labels[v], without.labels[v]);
    }
  }
  /* 20 ml designed, clipped to white matter: most of it stays */
  assert_true(n * 8 > 0.4 * 20000 && n * 8 <= 20000 * 1.2);
  assert_true(with.volume_mm3[MS_BRAIN_WM_LESION] == n * 8);
  static const char *const other[3][6] = {
      {"Occipital", "Calcarine", "Lingual", "Temporal_Mid", "Insula", "Precentral"},  /* not ACA */
      {"Occipital", "Calcarine", "Cuneus", "Rectus", "Cingulum", "Precuneus"},       /* not MCA */
      {"Frontal", "Precentral", "Insula", "Temporal_Sup", "Cingulum_Ant", "Caudate"}}; /* not PCA */
  for (int t = MS_BRAIN_ACA; t <= MS_BRAIN_PCA; t++) {
    p.stroke = (ms_brain_territory)t;
    p.stroke_radius_mm = 40;
    gen(&with, &p, 3, (uint64_t)t);
    p.stroke = MS_BRAIN_TERRITORY_NONE;
    gen(&without, &p, 3, (uint64_t)t);
    assert_true(with.stroke_side == 0 || with.stroke_side == 1);
    double m = 0;
    for (size_t v = 0; v < with.n_voxels; v++) {
      if (with.labels[v] != MS_BRAIN_STROKE) {
        assert_int_equal(with.labels[v], without.labels[v]);
        continue;
      }
      m++;
      int b = without.labels[v];
      assert_true(b == MS_BRAIN_CORTICAL_GM || b == MS_BRAIN_WM || b == MS_BRAIN_DEEP_GM);
      const char *nm = ms_brain_label_name(g_atlas, MS_BRAIN_LABELS_AAL, with.aal[v]);
      if (!with.aal[v] || !nm) continue;
      for (int q = 0; q < 6; q++) assert_true(strncmp(nm, other[t - 1][q], strlen(other[t - 1][q])) != 0);
      assert_true(nm[strlen(nm) - 1] == (with.stroke_side ? 'R' : 'L'));
    }
    assert_true(m > 100);
    assert_true(with.volume_mm3[MS_BRAIN_STROKE] == m * 8);
  }
  ms_brain_image_deinit(&with);
  ms_brain_image_deinit(&without);
  /* the documented contrasts */
  ms_brain_params q = small();
  q.dims[2] = 1;
  ms_brain_image img;
  init(&img, &q);
  const ms_brain_contrast cs[3] = {MS_BRAIN_T2, MS_BRAIN_FLAIR, MS_BRAIN_T1};
  for (int c = 0; c < 3; c++) {
    q.contrast = cs[c];
    gen(&img, &q, 1, 0);
    const float *v = img.tissue_value;
    for (int l = MS_BRAIN_WM_LESION; l <= MS_BRAIN_STROKE; l++) {
      if (cs[c] == MS_BRAIN_T1) {
        assert_true(v[l] < v[MS_BRAIN_WM]);
      } else {
        assert_true(v[l] > v[MS_BRAIN_WM]);
        assert_true(v[l] > v[MS_BRAIN_CORTICAL_GM]);
      }
    }
  }
  ms_brain_image_deinit(&img);
  assert_true(ms_brain_tissue_hu(MS_BRAIN_STROKE, 0) < ms_brain_tissue_hu(MS_BRAIN_WM, 0));
}

/* White-matter lesions prefer the ventricles' surroundings: the share of
 * lesion voxels within 10 mm of a lateral ventricle is well above that of
 * white matter as a whole (fixed seeds, 40 lesions in each of 4 subjects). */
static void test_brain_wm_lesions_are_periventricular(void **state) {
  (void)state;
  if (!have_atlas()) return;
  ms_brain_params p = noise_free_2mm();
  p.wm_lesions = 40;
  p.wm_load_ml = 10;
  ms_brain_image img;
  init(&img, &p);
  size_t nv = img.n_voxels;
  uint8_t *near = malloc(nv), *next = malloc(nv);
  assert_non_null(near);
  assert_non_null(next);
  double les_near = 0, les = 0, wm_near = 0, wm = 0;
  const int W = p.dims[0], H = p.dims[1], D = p.dims[2];
  for (uint64_t subject = 0; subject < 4; subject++) {
    gen(&img, &p, 21, subject);
    for (size_t v = 0; v < nv; v++) near[v] = img.labels[v] == MS_BRAIN_VENTRICLE;
    for (int pass = 0; pass < 5; pass++) { /* 5 city-block steps of 2 mm */
      memcpy(next, near, nv);
      for (int k = 1; k < D - 1; k++)
        for (int j = 1; j < H - 1; j++)
          for (int i = 1; i < W - 1; i++) {
            size_t v = ((size_t)k * H + j) * W + i;
            if (near[v - 1] || near[v + 1] || near[v - W] || near[v + W] || near[v - (size_t)W * H] ||
                near[v + (size_t)W * H])
              next[v] = 1;
          }
      memcpy(near, next, nv);
    }
    for (size_t v = 0; v < nv; v++) {
      int l = img.labels[v];
      if (l == MS_BRAIN_WM_LESION) {
        les++;
        les_near += near[v];
      }
      if (l == MS_BRAIN_WM || l == MS_BRAIN_WM_LESION) {
        wm++;
        wm_near += near[v];
      }
    }
  }
  free(near);
  free(next);
  ms_brain_image_deinit(&img);
  print_message("lesion voxels near the ventricles %.2f, white matter %.2f\n", les_near / les, wm_near / wm);
  assert_true(les > 500);
  assert_true(les_near / les > 2 * (wm_near / wm)); /* measured: 0.47 against 0.18 */
}

/* Cortical thinning with age turns cortical GM into CSF and nothing else,
 * by about the documented mean depth. */
static void test_brain_age_thins_the_cortex(void **state) {
  (void)state;
  if (!have_atlas()) return;
  ms_brain_params p = noise_free_2mm();
  p.age_years = 85;
  ms_brain_image a, b;
  init(&a, &p);
  init(&b, &p);
  gen(&a, &p, 4, 1);
  p.atrophy_mm_per_year = 0;
  gen(&b, &p, 4, 1);
  size_t changed = 0;
  for (size_t v = 0; v < a.n_voxels; v++) {
    if (a.labels[v] == b.labels[v]) continue;
    assert_int_equal(b.labels[v], MS_BRAIN_CORTICAL_GM);
    assert_int_equal(a.labels[v], MS_BRAIN_CSF);
    changed++;
  }
  double loss = 1 - a.volume_mm3[MS_BRAIN_CORTICAL_GM] / b.volume_mm3[MS_BRAIN_CORTICAL_GM];
  print_message("age 85: %zu voxels GM -> CSF, cortical GM volume -%.1f %%\n", changed, 100 * loss);
  assert_true(changed > 0);
  /* 0.55 mm off a cortex about 2.5-3 mm thick in the atlas: 5-30 %. */
  assert_true(loss > 0.05 && loss < 0.30);
  ms_brain_image_deinit(&a);
  ms_brain_image_deinit(&b);
}

static uint64_t digest(const ms_brain_image *img) {
  uint64_t h = XXH64(img->image, img->n_voxels * sizeof(float), 0);
  h = XXH64(img->labels, img->n_voxels, h);
  return XXH64(img->aal, img->n_voxels, h);
}

static void test_brain_bytes_identical_across_threads(void **state) {
  (void)state;
  if (!have_atlas()) return;
  ms_brain_params p = small();
  p.tumour = 1;
  p.wm_lesions = 12;
  p.stroke = MS_BRAIN_MCA;
  ms_brain_image img;
  init(&img, &p);
  int saved = omp_get_max_threads();
  uint64_t h[3];
  for (int t = 0; t < 3; t++) {
    omp_set_num_threads(t + 1);
    gen(&img, &p, 99, 4);
    h[t] = digest(&img);
  }
  omp_set_num_threads(saved);
  assert_true(h[0] == h[1] && h[1] == h[2]);
  /* Another subject differs. */
  gen(&img, &p, 99, 5);
  assert_true(digest(&img) != h[0]);
  ms_brain_image_deinit(&img);
}

static int in_brain(int l) { return l >= MS_BRAIN_CSF && l <= MS_BRAIN_BRAINSTEM; }

/* Dice of cortical GM against the brain voxels with lo <= value < hi. */
static double interval_dice(const ms_brain_image *img, double lo, double hi) {
  double tp = 0, sel = 0, ngm = 0;
  for (size_t v = 0; v < img->n_voxels; v++) {
    if (!in_brain(img->labels[v])) continue;
    int g = img->labels[v] == MS_BRAIN_CORTICAL_GM, s = img->image[v] >= lo && img->image[v] < hi;
    tp += g && s;
    sel += s;
    ngm += g;
  }
  return 2 * tp / (sel + ngm);
}

/* Best Dice of a two-sided threshold [lo, hi) for cortical GM over a
 * 128-bin histogram of the brain voxels (exhaustive over bin pairs); the
 * interval found goes to *blo, *bhi. */
static double best_threshold_dice(const ms_brain_image *img, double *blo, double *bhi) {
  enum { NB = 128 };
  double lo = INFINITY, hi = -INFINITY;
  for (size_t v = 0; v < img->n_voxels; v++) {
    if (!in_brain(img->labels[v])) continue;
    if (img->image[v] < lo) lo = img->image[v];
    if (img->image[v] > hi) hi = img->image[v];
  }
  double w = (hi - lo) / NB + 1e-12, gm[NB] = {0}, all[NB] = {0}, ngm = 0;
  for (size_t v = 0; v < img->n_voxels; v++) {
    if (!in_brain(img->labels[v])) continue;
    int b = (int)((img->image[v] - lo) / w);
    b = b >= NB ? NB - 1 : b;
    all[b]++;
    if (img->labels[v] == MS_BRAIN_CORTICAL_GM) {
      gm[b]++;
      ngm++;
    }
  }
  double best = 0;
  for (int a = 0; a < NB; a++) {
    double tp = 0, sel = 0;
    for (int b = a; b < NB; b++) {
      tp += gm[b];
      sel += all[b];
      double dice = 2 * tp / (sel + ngm);
      if (dice > best) {
        best = dice;
        *blo = lo + a * w;
        *bhi = b == NB - 1 ? INFINITY : lo + (b + 1) * w;
      }
    }
  }
  return best;
}

/* Under domain randomisation a threshold tuned on one subject fails on the
 * others (their contrasts differ), and even tuned per subject it is not
 * exact (texture, blur, bias, noise). With physics T1 at the same settings a
 * tuned threshold transfers, which shows the measure discriminates. */
static void test_brain_threshold_cannot_segment_grey_matter(void **state) {
  (void)state;
  if (!have_atlas()) return;
  enum { N = 8 };
  double mean_best[2] = {0, 0}, mean_transfer[2] = {0, 0};
  for (int mode = 0; mode < 2; mode++) {
    ms_brain_params p = small();
    p.intensity = mode ? MS_BRAIN_RANDOM : MS_BRAIN_PHYSICS;
    ms_brain_image img;
    init(&img, &p);
    double lo0 = 0, hi0 = 0;
    for (uint64_t i = 0; i < N; i++) {
      gen(&img, &p, 5, i);
      double lo, hi, dsc = best_threshold_dice(&img, &lo, &hi);
      if (i == 0) {
        lo0 = lo;
        hi0 = hi;
      } else {
        mean_transfer[mode] += interval_dice(&img, lo0, hi0) / (N - 1);
      }
      mean_best[mode] += dsc / N;
    }
    ms_brain_image_deinit(&img);
    print_message("%s: cortical GM Dice of the best threshold per subject %.3f, of subject 0's threshold on the "
                  "others %.3f\n",
                  mode ? "random" : "physics T1", mean_best[mode], mean_transfer[mode]);
  }
  assert_true(mean_best[1] < 0.95);
  assert_true(mean_transfer[1] < 0.6);
  assert_true(mean_transfer[0] > 0.7);
}

static void test_brain_rejects_bad_params(void **state) {
  (void)state;
  ms_diag d;
  ms_diag_init(&d);
  ms_brain_params p;
  ms_brain_params_init(&p);
  p.dims[0] = 0;
  p.field_t = 2;
  p.deform_mm = -1;
  assert_int_equal(ms_brain_params_check(&p, &d), MS_ERR_INVALID);
  assert_true(d.n_errors >= 3);
  ms_diag_clear(&d);
  ms_brain_params_init(&p);
  p.dims[0] = p.dims[1] = p.dims[2] = 4096;
  assert_int_equal(ms_brain_params_check(&p, &d), MS_ERR_RANGE);
  char *t = ms_diag_format(&d);
  assert_non_null(strstr(t, "bytes allowed"));
  free(t);
  ms_diag_deinit(&d);
  assert_int_equal(ms_brain_contrast_from_name("t3"), MS_BRAIN_CONTRAST_COUNT);
  assert_int_equal(ms_brain_contrast_from_name("flair"), MS_BRAIN_FLAIR);
  assert_int_equal(ms_brain_labelset_from_name("brodmann"), MS_BRAIN_LABELSET_COUNT);
  assert_int_equal(ms_brain_intensity_from_name("random"), MS_BRAIN_RANDOM);
  assert_int_equal(ms_brain_lobe_from_name("insula"), MS_BRAIN_LOBE_COUNT);
  assert_int_equal(ms_brain_lobe_from_name("temporal"), MS_BRAIN_LOBE_TEMPORAL);
}

/* Undeformed subject written as NIfTI with the grid centre at its MNI
 * position: nibabel's world coordinates of each output voxel must land on
 * the same AAL label in the atlas file. */
static void test_brain_nifti_read_by_nibabel(void **state) {
  (void)state;
  if (!have_atlas()) return;
  if (access("/usr/bin/python3", X_OK) || system("/usr/bin/python3 -c 'import nibabel' 2>/dev/null")) {
    print_message("skipped: /usr/bin/python3 with nibabel (python3-nibabel) not found\n");
    return;
  }
  ms_brain_params p;
  ms_brain_params_init(&p);
  p.dims[0] = 70;
  p.dims[1] = 80;
  p.dims[2] = 60;
  p.spacing_mm[0] = 2;
  p.spacing_mm[1] = 2.5;
  p.spacing_mm[2] = 3;
  p.slice_z_mm = 5;
  p.deform_mm = p.rotate_deg = p.scale_sd = p.shift_mm = 0;
  p.age_years = 25;
  p.noise_free = 1;
  /* every orientation: the affine maps each voxel to the atlas position
     its label came from; the qform agrees with the sform to the precision
     of its float32 quaternion (about 1e-3 when the rotation angle is near
     180 degrees) */
  for (int o = 0; o < MS_BRAIN_ORIENTATION_COUNT; o++) {
    p.orientation = (ms_brain_orientation)o;
    ms_brain_image img;
    init(&img, &p);
    gen(&img, &p, 1, 0);
    ms_nifti_desc n;
    ms_nifti_desc_init(&n);
    n.dtype = MS_NIFTI_UINT8;
    for (int a = 0; a < 3; a++) {
      n.dim[a] = p.dims[a];
      n.pixdim[a] = p.spacing_mm[a];
    }
    ms_brain_origin(g_atlas, &p, n.origin_mm);
    ms_brain_axes(p.orientation, n.axes);
    char path[512], cmd[1400];
    snprintf(path, sizeof path, "%s/test_brain_aal_%d.nii.gz", MS_BINARY_DIR, (int)getpid());
    ms_diag d;
    ms_diag_init(&d);
    assert_int_equal(ms_nifti_write(path, &n, img.aal, &d), MS_OK);
    ms_diag_deinit(&d);
    ms_brain_image_deinit(&img);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \""
             "import nibabel as nib, numpy as np\n"
             "o = nib.load('%s'); a = nib.load('%s/aal.nii.gz')\n"
             "lo = np.asanyarray(o.dataobj); la = np.asanyarray(a.dataobj)\n"
             "assert lo.shape == (70, 80, 60), lo.shape\n"
             "ijk = np.indices(lo.shape).reshape(3, -1)\n"
             "w = o.affine @ np.vstack([ijk, np.ones(ijk.shape[1])])\n"
             "v = np.floor(np.linalg.inv(a.affine) @ w + 0.5)[:3].astype(int)\n"
             "ok = np.all((v >= 0) & (v < np.array(la.shape)[:, None]), 0)\n"
             "got = lo.reshape(-1)[ok]; want = la[v[0][ok], v[1][ok], v[2][ok]]\n"
             "agree = np.mean(got == want); print('nibabel agreement', agree, (got > 0).sum())\n"
             "assert agree > 0.999 and (got > 0).sum() > 20000\n"
             "assert np.allclose(o.get_qform(), o.affine, atol=2e-3), (o.get_qform(), o.affine)\n"
             "\"",
             path, MS_BRAIN_ATLAS_DIR);
    int rc = system(cmd);
    unlink(path);
    assert_int_equal(rc, 0);
  }
}

/* ---- allocation failures on a small synthetic atlas ---- */

/* Writes a 20 x 24 x 20 head (scalp shell, brain ball with WM core, GM and
 * CSF rims, three AAL regions) in the mricron-data file layout. */
static void write_fake_atlas(const char *dir) {
  enum { W = 20, H = 24, D = 20 };
  static uint8_t t1[D][H][W], bet[D][H][W], aal[D][H][W];
  for (int k = 0; k < D; k++)
    for (int j = 0; j < H; j++)
      for (int i = 0; i < W; i++) {
        double r = sqrt((i - 9.5) * (i - 9.5) + (j - 11.5) * (j - 11.5) + (k - 9.5) * (k - 9.5));
        uint8_t b = r < 5 ? 110 : r < 6.5 ? 85 : r < 7.5 ? 50 : 0;
        bet[k][j][i] = b;
        t1[k][j][i] = b ? b : r < 8.5 ? 30 : r < 9.5 ? 150 : 0;
        aal[k][j][i] = !b || b == 50 ? 0 : k < 6 ? 91 : r < 2.5 ? 71 : 1;
      }
  ms_nifti_desc n;
  ms_nifti_desc_init(&n);
  n.dtype = MS_NIFTI_UINT8;
  n.dim[0] = W;
  n.dim[1] = H;
  n.dim[2] = D;
  const char *names[3] = {"ch2.nii.gz", "ch2bet.nii.gz", "aal.nii.gz"};
  const void *data[3] = {t1, bet, aal};
  ms_diag d;
  ms_diag_init(&d);
  char path[600];
  for (int f = 0; f < 3; f++) {
    snprintf(path, sizeof path, "%s/%s", dir, names[f]);
    assert_int_equal(ms_nifti_write(path, &n, data[f], &d), MS_OK);
  }
  ms_diag_deinit(&d);
  snprintf(path, sizeof path, "%s/aal.nii.txt", dir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("1 Precentral_L 2001\n71 Caudate_L 7001\n91 Cerebelum_Crus1_L 9001\n", f);
  fclose(f);
}

/* Load, allocate, render: the digest of everything produced, or 0. */
static ms_status nomem_op(const char *dir, uint64_t *h, ms_diag *d) {
  ms_brain_atlas *a = NULL;
  ms_brain_image img;
  memset(&img, 0, sizeof img);
  ms_status st = ms_brain_atlas_load(&a, dir, d);
  ms_brain_params p;
  ms_brain_params_init(&p);
  p.dims[0] = p.dims[1] = p.dims[2] = 12;
  p.spacing_mm[0] = p.spacing_mm[1] = p.spacing_mm[2] = 1.5;
  if (st == MS_OK) st = ms_brain_image_init(&img, &p, d);
  if (st == MS_OK) st = ms_brain_generate(&img, a, &p, 1, 0, d);
  char *js = NULL;
  if (st == MS_OK && !(js = ms_brain_label_table_json(a, MS_BRAIN_LABELS_AAL)))
    st = ms_diag_add(d, MS_ERR_NOMEM, NULL, 0, 0, NULL, "out of memory (label table)");
  if (st == MS_OK) {
    *h = XXH64(js, strlen(js), digest(&img));
    *h = XXH64(img.volume_mm3, sizeof img.volume_mm3, *h);
  }
  free(js);
  ms_brain_image_deinit(&img);
  ms_brain_atlas_free(a);
  return st;
}

static void test_brain_allocation_failures(void **state) {
  (void)state;
  char dir[512];
  snprintf(dir, sizeof dir, "%s/test_brain_atlas_%d", MS_BINARY_DIR, (int)getpid());
  assert_int_equal(mkdir(dir, 0755), 0);
  write_fake_atlas(dir);
  int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  ms_diag d;
  ms_diag_init(&d);
  uint64_t ref = 0;
  assert_int_equal(nomem_op(dir, &ref, &d), MS_OK);
  ms_diag_deinit(&d);
  long runs = 0;
  for (int repeat = 1; repeat >= -1; repeat -= 2)
    for (long i = 0;; i++) {
      uint64_t h = 0;
      ms_diag_init(&d);
      ms_faultsim_config(i, repeat);
      ms_status st = nomem_op(dir, &h, &d);
      long failed = ms_faultsim_failures();
      ms_faultsim_config(-1, 0);
      runs++;
      if (st == MS_OK) {
        assert_true(h == ref);
      } else {
        char *t = ms_diag_format(&d);
        if (st != MS_ERR_NOMEM || !strstr(t, "out of memory")) print_error("allocation %ld: %s", i, t);
        assert_int_equal(st, MS_ERR_NOMEM);
        assert_non_null(strstr(t, "out of memory"));
        free(t);
        assert_true(failed > 0);
      }
      ms_diag_deinit(&d);
      if (failed == 0) break;
    }
  omp_set_num_threads(saved);
  print_message("allocation failures: %ld runs\n", runs);
  const char *files[4] = {"ch2.nii.gz", "ch2bet.nii.gz", "aal.nii.gz", "aal.nii.txt"};
  char path[600];
  for (int f = 0; f < 4; f++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[f]);
    unlink(path);
  }
  rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_brain_missing_atlas_names_the_package),
      cmocka_unit_test(test_brain_atlas_tissue_fractions),
      cmocka_unit_test(test_brain_deformation_is_invertible),
      cmocka_unit_test(test_brain_labels_exact_and_volumes_are_counts),
      cmocka_unit_test(test_brain_contrast_order_follows_physics),
      cmocka_unit_test(test_brain_age_enlarges_ventricles),
      cmocka_unit_test(test_brain_age_thins_the_cortex),
      cmocka_unit_test(test_brain_tumour_labels_exact),
      cmocka_unit_test(test_brain_wm_lesions_and_stroke_labels_exact),
      cmocka_unit_test(test_brain_stroke_side),
      cmocka_unit_test(test_brain_wm_lesions_are_periventricular),
      cmocka_unit_test(test_brain_bytes_identical_across_threads),
      cmocka_unit_test(test_brain_threshold_cannot_segment_grey_matter),
      cmocka_unit_test(test_brain_rejects_bad_params),
      cmocka_unit_test(test_brain_nifti_read_by_nibabel),
      cmocka_unit_test(test_brain_allocation_failures),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
