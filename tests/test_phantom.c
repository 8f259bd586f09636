/* Tests of the procedural phantoms (gen/phantom/).
 * ctest-labels: unit
 *
 * Each test checks a property that holds by construction when the code is
 * right and breaks when it is not: noise-free pixels equal their label's
 * tissue value, lesions lie inside their organ, counts are as requested, CT
 * noise variance scales as 1/dose (tolerance from the chi-square spread of a
 * sample variance), volume planes equal 2-D slices, augmentation keeps image
 * and mask aligned, and image i does not depend on threads or batch. */
#include <gsl/gsl_errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <xxhash.h>

#include "medsynth/phantom.h"

/* Labels of the lung field: the lung and what runs through it (airways and
 * pulmonary vessels); a lung nodule replaces whichever it covers. */
static int lung_field(int label) {
  return label == MS_LABEL_LUNG || label == MS_LABEL_AIRWAY || label == MS_LABEL_AIRWAY_WALL ||
         label == MS_LABEL_PULMONARY_ARTERY || label == MS_LABEL_PULMONARY_VEIN;
}

static ms_phantom_params base(ms_phantom_kind k, ms_modality m, int size) {
  ms_phantom_params p;
  ms_phantom_params_init(&p, k);
  p.modality = m;
  p.width = p.height = size;
  return p;
}

static void gen(ms_phantom_image *img, const ms_phantom_params *p, const ms_phantom_subject *s,
                uint64_t seed, uint64_t index) {
  ms_diag d;
  ms_diag_init(&d);
  ms_status st = ms_phantom_generate(img, p, s, seed, index, &d);
  if (st != MS_OK) {
    char *t = ms_diag_format(&d);
    print_error("%s", t ? t : "?");
    free(t);
  }
  assert_int_equal(st, MS_OK);
  ms_diag_deinit(&d);
}

static void init(ms_phantom_image *img, const ms_phantom_params *p) {
  ms_diag d;
  ms_diag_init(&d);
  assert_int_equal(ms_phantom_image_init(img, p, &d), MS_OK);
  ms_diag_deinit(&d);
}

static void test_phantom_noise_free_pixels_equal_label_values(void **state) {
  (void)state;
  for (int k = 0; k < MS_PHANTOM_KIND_COUNT; k++) {
    for (int m = 0; m < MS_MODALITY_COUNT; m++) {
      ms_phantom_params p = base((ms_phantom_kind)k, (ms_modality)m, 128);
      p.noise = 0;
      p.lesions.count_min = p.lesions.count_max = 2;
      ms_phantom_image img;
      init(&img, &p);
      for (uint64_t i = 0; i < 3; i++) {
        gen(&img, &p, NULL, 11, i);
        int seen[256] = {0};
        for (size_t e = 0; e < img.n_pixels; e++) {
          assert_true(img.image[e] == img.tissue_value[img.mask[e]]);
          seen[img.mask[e]] = 1;
        }
        /* Each kind shows its organs. */
        static const int need[3][5] = {
            {MS_LABEL_SKULL, MS_LABEL_CSF, MS_LABEL_GREY_MATTER, MS_LABEL_WHITE_MATTER, MS_LABEL_VENTRICLE},
            {MS_LABEL_LUNG, MS_LABEL_HEART, MS_LABEL_AORTA, MS_LABEL_VERTEBRA, MS_LABEL_RIB},
            {MS_LABEL_LIVER, MS_LABEL_KIDNEY, MS_LABEL_SPLEEN, MS_LABEL_VERTEBRA, MS_LABEL_AORTA}};
        for (int j = 0; j < 5; j++) assert_true(seen[need[k][j]]);
        assert_true(seen[MS_LABEL_BACKGROUND]);
        if (m == MS_MODALITY_CT) {
          assert_true(img.tissue_value[MS_LABEL_BACKGROUND] == -1000.0f);
          assert_true(img.tissue_value[MS_LABEL_FAT] < -50 && img.tissue_value[MS_LABEL_FAT] > -150);
          if (k == MS_PHANTOM_CHEST)
            assert_true(img.tissue_value[MS_LABEL_LUNG] < -750 && img.tissue_value[MS_LABEL_LUNG] > -950);
        }
      }
      ms_phantom_image_deinit(&img);
    }
  }
}

/* Lesion pixels sit where the lesion-free render of the same patient shows
 * the organ (for the lung: the lung field, whose airways and vessels a
 * nodule replaces), and nothing else changes. */
static void test_phantom_lesions_lie_inside_their_organ(void **state) {
  (void)state;
  static const int organs[][2] = {{MS_PHANTOM_HEAD, MS_LABEL_WHITE_MATTER}, {MS_PHANTOM_CHEST, MS_LABEL_LUNG},
                                  {MS_PHANTOM_ABDOMEN, MS_LABEL_LIVER},     {MS_PHANTOM_ABDOMEN, MS_LABEL_KIDNEY},
                                  {MS_PHANTOM_HEAD, MS_LABEL_GREY_MATTER},  {MS_PHANTOM_ABDOMEN, MS_LABEL_SPLEEN}};
  for (size_t c = 0; c < sizeof organs / sizeof organs[0]; c++) {
    ms_phantom_params p = base((ms_phantom_kind)organs[c][0], MS_MODALITY_CT, 256);
    p.noise = 0;
    p.lesions.organ = organs[c][1];
    p.lesions.count_min = p.lesions.count_max = 3;
    p.lesions.diameter_min_mm = organs[c][1] == MS_LABEL_GREY_MATTER ? 4 : 8;
    p.lesions.diameter_max_mm = organs[c][1] == MS_LABEL_GREY_MATTER ? 5 : 12;
    p.lesions.irregularity = 0.3;
    ms_phantom_image a, b;
    init(&a, &p);
    init(&b, &p);
    for (uint64_t i = 0; i < 4; i++) {
      gen(&a, &p, NULL, 5, i);
      ms_phantom_subject none;
      ms_phantom_subject_init(&none);
      none.n_lesions = 0;
      gen(&b, &p, &none, 5, i);
      assert_int_equal(a.n_lesions, 3);
      assert_int_equal(b.n_lesions, 0);
      size_t lesion_px = 0;
      for (size_t e = 0; e < a.n_pixels; e++) {
        if (a.mask[e] >= MS_LABEL_LESION_FIRST) {
          if (organs[c][1] == MS_LABEL_LUNG)
            assert_true(lung_field(b.mask[e]));
          else
            assert_int_equal(b.mask[e], organs[c][1]);
          assert_int_equal(a.lesions[a.mask[e] - MS_LABEL_LESION_FIRST].organ, organs[c][1]);
          lesion_px++;
        } else {
          assert_int_equal(a.mask[e], b.mask[e]);
        }
      }
      assert_true(lesion_px > 0);
    }
    ms_phantom_image_deinit(&a);
    ms_phantom_image_deinit(&b);
  }
}

/* Counts as requested; the table equals a recount of the mask. */
static void test_phantom_lesion_counts_and_table(void **state) {
  (void)state;
  ms_phantom_params p = base(MS_PHANTOM_CHEST, MS_MODALITY_CT, 192);
  p.lesions.count_min = 1;
  p.lesions.count_max = 5;
  ms_phantom_image img;
  init(&img, &p);
  int hist[6] = {0};
  for (uint64_t i = 0; i < 40; i++) {
    gen(&img, &p, NULL, 3, i);
    assert_true(img.n_lesions >= 1 && img.n_lesions <= 5);
    hist[img.n_lesions]++;
    for (size_t l = 0; l < img.n_lesions; l++) {
      const ms_phantom_lesion *r = &img.lesions[l];
      uint64_t cnt = 0;
      int bmin[2] = {1 << 30, 1 << 30}, bmax[2] = {-1, -1};
      double sx = 0, sy = 0;
      for (int y = 0; y < img.height; y++)
        for (int x = 0; x < img.width; x++) {
          if (img.mask[(size_t)y * img.width + x] != r->label) continue;
          cnt++;
          sx += x;
          sy += y;
          if (x < bmin[0]) bmin[0] = x;
          if (y < bmin[1]) bmin[1] = y;
          if (x > bmax[0]) bmax[0] = x;
          if (y > bmax[1]) bmax[1] = y;
        }
      assert_true(cnt > 0);
      assert_int_equal(cnt, r->n_pixels);
      assert_int_equal(bmin[0], r->bbox_min[0]);
      assert_int_equal(bmax[1], r->bbox_max[1]);
      assert_true(fabs(sx / cnt - r->centroid[0]) < 1e-9 && fabs(sy / cnt - r->centroid[1]) < 1e-9);
      assert_true(fabs(r->size_mm - cnt * img.spacing[0] * img.spacing[1]) < 1e-9);
      /* Area close to the designed disc (lobulation and pixelation within 60 %). */
      double design = M_PI * r->diameter_mm * r->diameter_mm / 4;
      assert_true(r->size_mm > 0.4 * design && r->size_mm < 1.6 * design);
      assert_true(r->diameter_mm >= 6 && r->diameter_mm <= 20);
    }
  }
  for (int n = 1; n <= 5; n++) assert_true(hist[n] > 0);
  /* Explicit per-image count overrides the range. */
  ms_phantom_subject s;
  ms_phantom_subject_init(&s);
  s.n_lesions = 7;
  gen(&img, &p, &s, 3, 0);
  assert_int_equal(img.n_lesions, 7);
  ms_phantom_image_deinit(&img);
}

/* Var(noisy - clean) = ct_noise_hu^2 * ref / dose. The sample variance of n
 * normals has sd sigma^2 sqrt(2 / (n - 1)); allow 5 of those. */
static void test_phantom_ct_noise_variance_follows_dose(void **state) {
  (void)state;
  const double doses[] = {25, 100, 400};
  double var_at[3];
  for (int t = 0; t < 3; t++) {
    ms_phantom_params p = base(MS_PHANTOM_ABDOMEN, MS_MODALITY_CT, 128);
    p.dose = doses[t];
    ms_phantom_params q = p;
    q.noise = 0;
    ms_phantom_image a, b;
    init(&a, &p);
    init(&b, &q);
    double s1 = 0, s2 = 0;
    size_t n = 0;
    for (uint64_t i = 0; i < 4; i++) {
      gen(&a, &p, NULL, 9, i);
      gen(&b, &q, NULL, 9, i);
      for (size_t e = 0; e < a.n_pixels; e++) {
        double r = (double)a.image[e] - b.image[e];
        s1 += r;
        s2 += r * r;
        n++;
      }
    }
    double mean = s1 / n, var = (s2 - n * mean * mean) / (n - 1);
    double expect = 10.0 * 10.0 * 100.0 / doses[t];
    double tol = 5 * expect * sqrt(2.0 / (n - 1));
    assert_true(fabs(var - expect) < tol);
    assert_true(fabs(mean) < 5 * sqrt(expect / n));
    var_at[t] = var;
    ms_phantom_image_deinit(&a);
    ms_phantom_image_deinit(&b);
  }
  /* Quadrupling the dose quarters the variance. */
  assert_true(fabs(var_at[0] / var_at[1] - 4) < 0.2);
  assert_true(fabs(var_at[1] / var_at[2] - 4) < 0.2);
}

/* Background magnitude of Rician noise (signal 0) is Rayleigh: mean
 * sigma sqrt(pi / 2), sd sigma sqrt((4 - pi) / 2); allow 5 standard errors. */
static void test_phantom_mr_background_is_rician(void **state) {
  (void)state;
  ms_phantom_params p = base(MS_PHANTOM_HEAD, MS_MODALITY_T2, 128);
  p.mr_bias = 0;
  p.mr_noise = 0.05;
  p.tissue_jitter = 0; /* white matter then carries the reference signal */
  ms_phantom_params q = p;
  q.noise = 0;
  ms_phantom_image a, b;
  init(&a, &p);
  init(&b, &q);
  gen(&a, &p, NULL, 1, 0);
  gen(&b, &q, NULL, 1, 0);
  double sigma = 0.05 * b.tissue_value[MS_LABEL_WHITE_MATTER];
  assert_true(b.tissue_value[MS_LABEL_CSF] > b.tissue_value[MS_LABEL_WHITE_MATTER]); /* CSF bright on T2 */
  double s = 0, s2 = 0;
  size_t n = 0;
  for (size_t e = 0; e < a.n_pixels; e++)
    if (b.mask[e] == MS_LABEL_BACKGROUND) {
      assert_true(a.image[e] >= 0);
      s += a.image[e];
      s2 += (double)a.image[e] * a.image[e];
      n++;
    }
  assert_true(n > 1000);
  double mean = s / n;
  double se = sigma * sqrt((4 - M_PI) / 2) / sqrt((double)n);
  assert_true(fabs(mean - sigma * sqrt(M_PI / 2)) < 5 * se);
  /* E[M^2] = 2 sigma^2 for the Rayleigh magnitude. */
  assert_true(fabs(s2 / n / (2 * sigma * sigma) - 1) < 5 * 1.0 / sqrt((double)n));
  ms_phantom_image_deinit(&a);
  ms_phantom_image_deinit(&b);
  /* T1: white matter brighter than grey matter, CSF dark. */
  ms_phantom_params t1 = base(MS_PHANTOM_HEAD, MS_MODALITY_T1, 64);
  t1.noise = 0;
  ms_phantom_image c;
  init(&c, &t1);
  gen(&c, &t1, NULL, 1, 0);
  assert_true(c.tissue_value[MS_LABEL_WHITE_MATTER] > c.tissue_value[MS_LABEL_GREY_MATTER]);
  assert_true(c.tissue_value[MS_LABEL_GREY_MATTER] > c.tissue_value[MS_LABEL_CSF]);
  ms_phantom_image_deinit(&c);
}

static void test_phantom_volume_planes_equal_slices(void **state) {
  (void)state;
  ms_phantom_params v = base(MS_PHANTOM_HEAD, MS_MODALITY_T1, 72);
  v.depth = 40;
  v.noise = 0;
  v.supersample = 2;
  ms_phantom_image vol;
  init(&vol, &v);
  gen(&vol, &v, NULL, 21, 4);
  ms_phantom_params s = v;
  s.depth = 0;
  ms_phantom_image sl;
  init(&sl, &s);
  size_t plane = (size_t)v.width * v.height;
  int distinct = 0;
  for (int k = 0; k < v.depth; k += 3) {
    s.slice_z_mm = ms_phantom_plane_z(&v, k);
    gen(&sl, &s, NULL, 21, 4);
    assert_memory_equal(sl.mask, vol.mask + k * plane, plane);
    assert_memory_equal(sl.image, vol.image + k * plane, plane * sizeof(float));
    if (k > 0 && memcmp(vol.mask + k * plane, vol.mask + (k - 3) * plane, plane)) distinct++;
  }
  assert_true(distinct > 5); /* the planes really differ */
  /* Planes are centred: z of plane k and D-1-k are opposite. */
  assert_true(fabs(ms_phantom_plane_z(&v, 0) + ms_phantom_plane_z(&v, v.depth - 1)) < 1e-9);
  ms_phantom_image_deinit(&vol);
  ms_phantom_image_deinit(&sl);
}

static void test_phantom_volume_lesions_are_3d(void **state) {
  (void)state;
  ms_phantom_params v = base(MS_PHANTOM_HEAD, MS_MODALITY_CT, 64);
  v.depth = 64;
  v.noise = 0;
  v.lesions.count_min = v.lesions.count_max = 2;
  v.lesions.diameter_min_mm = 10;
  v.lesions.diameter_max_mm = 14;
  ms_phantom_image vol;
  init(&vol, &v);
  gen(&vol, &v, NULL, 2, 0);
  assert_int_equal(vol.n_lesions, 2);
  for (size_t l = 0; l < 2; l++) {
    const ms_phantom_lesion *r = &vol.lesions[l];
    assert_true(r->bbox_max[2] > r->bbox_min[2]); /* spans several planes */
    double vox = vol.spacing[0] * vol.spacing[1] * vol.spacing[2];
    assert_true(fabs(r->size_mm - r->n_pixels * vox) < 1e-6);
    double design = M_PI / 6 * pow(r->diameter_mm, 3);
    assert_true(r->size_mm > 0.3 * design && r->size_mm < 1.8 * design);
  }
  ms_phantom_image_deinit(&vol);
}

static void test_phantom_augmentation_keeps_image_and_mask_aligned(void **state) {
  (void)state;
  gsl_set_error_handler_off();
  ms_phantom_params p = base(MS_PHANTOM_CHEST, MS_MODALITY_CT, 128);
  p.noise = 0;
  p.lesions.count_min = p.lesions.count_max = 2;
  ms_phantom_params q = p;
  q.augment.rotate_deg = 25;
  q.augment.scale_min = 0.85;
  q.augment.scale_max = 1.1;
  q.augment.elastic_mm = 8;
  q.augment.intensity_shift = 20;
  q.augment.intensity_scale = 0.05;
  ms_phantom_image a, b, c;
  init(&a, &p);
  init(&b, &q);
  init(&c, &q);
  for (uint64_t i = 0; i < 3; i++) {
    gen(&a, &p, NULL, 4, i);
    gen(&b, &q, NULL, 4, i);
    size_t changed = 0;
    for (size_t e = 0; e < b.n_pixels; e++) {
      assert_true(b.image[e] == b.tissue_value[b.mask[e]]);
      changed += a.mask[e] != b.mask[e];
    }
    assert_true(changed > b.n_pixels / 50);
    /* Intensity augmentation moved the values consistently. */
    assert_true(b.tissue_value[MS_LABEL_LUNG] != a.tissue_value[MS_LABEL_LUNG]);
    /* The same warp without lesions: lesions still inside the lung. */
    ms_phantom_subject none;
    ms_phantom_subject_init(&none);
    none.n_lesions = 0;
    gen(&c, &q, &none, 4, i);
    for (size_t e = 0; e < b.n_pixels; e++) {
      if (b.mask[e] >= MS_LABEL_LESION_FIRST)
        assert_true(lung_field(c.mask[e]));
      else
        assert_int_equal(c.mask[e], b.mask[e]);
    }
  }
  ms_phantom_image_deinit(&a);
  ms_phantom_image_deinit(&b);
  ms_phantom_image_deinit(&c);
}

static void test_phantom_partial_volume_mixes_boundaries(void **state) {
  (void)state;
  ms_phantom_params p = base(MS_PHANTOM_HEAD, MS_MODALITY_CT, 96);
  p.noise = 0;
  p.supersample = 3;
  ms_phantom_image img;
  init(&img, &p);
  gen(&img, &p, NULL, 8, 0);
  size_t mixed = 0, pure = 0;
  for (size_t e = 0; e < img.n_pixels; e++) {
    float v = img.image[e];
    assert_true(v >= -1000.0f && v <= img.tissue_value[MS_LABEL_SKULL] + 1e-3f);
    if (v == img.tissue_value[img.mask[e]]) pure++;
    else mixed++;
  }
  assert_true(mixed > 100 && pure > mixed);
  ms_phantom_image_deinit(&img);
}

static uint64_t hash_image(const ms_phantom_image *img) {
  return XXH64(img->image, img->n_pixels * sizeof(float), 0) ^ XXH64(img->mask, img->n_pixels, 1);
}

static void test_phantom_reproducible_across_threads_and_batches(void **state) {
  (void)state;
  ms_phantom_params p = base(MS_PHANTOM_ABDOMEN, MS_MODALITY_T1, 96);
  p.lesions.count_min = 0;
  p.lesions.count_max = 3;
  p.lesions.diameter_min_mm = 15;
  p.lesions.diameter_max_mm = 25;
  p.augment.elastic_mm = 4;
  enum { N = 8 };
  uint64_t seq[N], par[N];
  ms_phantom_image img;
  init(&img, &p);
  for (uint64_t i = 0; i < N; i++) {
    gen(&img, &p, NULL, 77, i);
    seq[i] = hash_image(&img);
  }
  ms_phantom_image_deinit(&img);
  int fails = 0;
#pragma omp parallel num_threads(2) reduction(+ : fails)
  {
    ms_phantom_image t;
    ms_diag d;
    ms_diag_init(&d);
    if (ms_phantom_image_init(&t, &p, &d) != MS_OK) fails++;
#pragma omp for schedule(dynamic, 1)
    for (int i = N - 1; i >= 0; i--) {
      if (ms_phantom_generate(&t, &p, NULL, 77, (uint64_t)i, &d) != MS_OK) fails++;
      par[i] = hash_image(&t);
    }
    ms_phantom_image_deinit(&t);
    ms_diag_deinit(&d);
  }
  assert_int_equal(fails, 0);
  for (int i = 0; i < N; i++) assert_true(seq[i] == par[i]);
  /* Image 5 alone, at another batch position, equals image 5 of the run. */
  init(&img, &p);
  gen(&img, &p, NULL, 77, 5);
  assert_true(hash_image(&img) == seq[5]);
  gen(&img, &p, NULL, 78, 5);
  assert_true(hash_image(&img) != seq[5]);
  ms_phantom_image_deinit(&img);
  for (int i = 1; i < N; i++) assert_true(seq[i] != seq[0]);
}

static void test_phantom_subject_overrides(void **state) {
  (void)state;
  ms_phantom_params p = base(MS_PHANTOM_HEAD, MS_MODALITY_CT, 128);
  p.noise = 0;
  ms_phantom_image img;
  init(&img, &p);
  size_t vent[2], body[2];
  const double vs[2] = {0.7, 1.8}, bs[2] = {0.9, 1.1};
  for (int t = 0; t < 2; t++) {
    ms_phantom_subject s;
    ms_phantom_subject_init(&s);
    s.ventricle_scale = vs[t];
    s.body_scale = bs[t];
    gen(&img, &p, &s, 6, 0);
    assert_true(img.subject.ventricle_scale == vs[t]);
    assert_true(img.subject.body_scale == bs[t]);
    assert_true(img.subject.age_years >= 20 && img.subject.age_years <= 85);
    vent[t] = body[t] = 0;
    for (size_t e = 0; e < img.n_pixels; e++) {
      vent[t] += img.mask[e] == MS_LABEL_VENTRICLE;
      body[t] += img.mask[e] != MS_LABEL_BACKGROUND;
    }
  }
  assert_true(vent[1] > 2 * vent[0]);
  assert_true(body[1] > body[0]);
  ms_phantom_image_deinit(&img);
}

static int diag_has(const ms_diag *d, const char *text) {
  for (size_t i = 0; i < d->count; i++)
    if (strstr(d->entries[i].message, text)) return 1;
  return 0;
}

static void test_phantom_rejects_bad_input(void **state) {
  (void)state;
  ms_diag d;
  ms_diag_init(&d);
  ms_phantom_params p = base(MS_PHANTOM_CHEST, MS_MODALITY_CT, 0);
  p.lesions.diameter_min_mm = -1;
  p.lesions.organ = MS_LABEL_LIVER;
  assert_int_not_equal(ms_phantom_params_check(&p, &d), MS_OK);
  assert_true(d.n_errors >= 3); /* width, height, diameter, organ all reported */
  assert_true(diag_has(&d, "width 0"));
  assert_true(diag_has(&d, "no organ \"liver\""));
  ms_diag_clear(&d);
  /* An absurd volume is refused with the size it would need. */
  p = base(MS_PHANTOM_HEAD, MS_MODALITY_CT, 8192);
  p.depth = 8192;
  assert_int_equal(ms_phantom_params_check(&p, &d), MS_ERR_RANGE);
  assert_true(diag_has(&d, "MiB"));
  ms_diag_clear(&d);
  /* A lesion larger than its organ. */
  p = base(MS_PHANTOM_ABDOMEN, MS_MODALITY_CT, 64);
  p.lesions.organ = MS_LABEL_KIDNEY;
  p.lesions.count_min = p.lesions.count_max = 1;
  p.lesions.diameter_min_mm = p.lesions.diameter_max_mm = 150;
  ms_phantom_image img;
  assert_int_equal(ms_phantom_image_init(&img, &p, &d), MS_OK);
  assert_int_equal(ms_phantom_generate(&img, &p, NULL, 1, 0, &d), MS_ERR_RANGE);
  assert_true(diag_has(&d, "larger than its organ"));
  assert_string_equal(d.entries[0].where, "image 0");
  ms_diag_clear(&d);
  /* Too many lesions to fit without overlap. */
  p.lesions.count_min = p.lesions.count_max = 40;
  p.lesions.diameter_min_mm = p.lesions.diameter_max_mm = 30;
  assert_int_equal(ms_phantom_generate(&img, &p, NULL, 1, 0, &d), MS_ERR_RANGE);
  assert_true(diag_has(&d, "cannot place lesion"));
  ms_diag_clear(&d);
  /* Lesions below a pixel. */
  p.lesions.count_min = p.lesions.count_max = 1;
  p.lesions.diameter_min_mm = p.lesions.diameter_max_mm = 3;
  assert_int_equal(ms_phantom_generate(&img, &p, NULL, 1, 0, &d), MS_ERR_RANGE);
  assert_true(diag_has(&d, "smaller than 1.5 pixels"));
  ms_phantom_image_deinit(&img);
  ms_diag_deinit(&d);
  /* Names. */
  assert_int_equal(ms_phantom_kind_from_name("thorax"), MS_PHANTOM_KIND_COUNT);
  assert_int_equal(ms_phantom_kind_from_name("chest"), MS_PHANTOM_CHEST);
  assert_int_equal(ms_label_from_name("white_matter"), MS_LABEL_WHITE_MATTER);
  assert_string_equal(ms_label_name(MS_LABEL_LESION_FIRST + 3), "lesion");
  ms_window w;
  assert_int_equal(ms_window_preset("lung", &w), MS_OK);
  assert_true(w.center == -600 && w.width == 1500);
  assert_int_equal(ms_window_apply_u8(w, -1350), 0);
  assert_int_equal(ms_window_apply_u8(w, 150), 255);
  assert_int_equal(ms_window_apply_u8(w, -600), 128);
  assert_int_equal(ms_window_preset("liver", &w), MS_ERR_NOTFOUND);
}

/* Nodule types: a part-solid nodule's core pixels (within its core radius
 * of the centre) carry the solid value and its rim the ground-glass value
 * (between the lung's and the solid's, -750..-500 HU); a ground-glass
 * nodule is uniform at its value; the mask keeps one label per nodule; the
 * default (solid) renders every pixel at its label's value. */
static void test_phantom_nodule_types(void **state) {
  (void)state;
  ms_phantom_params p;
  ms_phantom_params_init(&p, MS_PHANTOM_CHEST);
  p.width = p.height = 256;
  p.noise = 0;
  p.lesions.count_min = p.lesions.count_max = 4;
  p.lesions.diameter_min_mm = p.lesions.diameter_max_mm = 16;
  p.lesions.irregularity = 0;
  int seen[3] = {0, 0, 0};
  for (int kind = MS_NODULE_SOLID; kind <= MS_NODULE_MIXED; kind++) {
    p.lesions.nodule = (ms_nodule_kind)kind;
    ms_phantom_image img;
    assert_int_equal(ms_phantom_image_init(&img, &p, NULL), MS_OK);
    assert_int_equal(ms_phantom_generate(&img, &p, NULL, 5, 2, NULL), MS_OK);
    double px = img.spacing[0];
    for (size_t k = 0; k < img.n_lesions; k++) {
      const ms_phantom_lesion *L = &img.lesions[k];
      ms_nodule_kind want = kind == MS_NODULE_MIXED ? L->nodule : (ms_nodule_kind)kind;
      assert_int_equal(L->nodule, want);
      seen[L->nodule]++;
      if (L->nodule != MS_NODULE_SOLID) assert_true(L->value > -760 && L->value < -490);
      assert_true((L->core_diameter_mm > 0) == (L->nodule == MS_NODULE_PART_SOLID));
      size_t core = 0, rim = 0;
      for (int y = 0; y < img.height; y++)
        for (int x = 0; x < img.width; x++) {
          size_t i = (size_t)y * img.width + x;
          if (img.mask[i] != L->label) continue;
          double dx = (x + 0.5) * px - 0.5 * img.width * px - L->center_mm[0];
          double dy = (y + 0.5) * px - 0.5 * img.height * px - L->center_mm[1];
          int in_core = dx * dx + dy * dy <= 0.25 * L->core_diameter_mm * L->core_diameter_mm;
          float v = img.image[i];
          if (in_core) {
            core++;
            assert_true(v > -200); /* the solid value */
          } else {
            rim++;
            assert_true(v == (float)L->value);
          }
        }
      assert_true(rim > 0);
      assert_true((core > 0) == (L->nodule == MS_NODULE_PART_SOLID));
    }
    ms_phantom_image_deinit(&img);
  }
  assert_true(seen[MS_NODULE_SOLID] > 0 && seen[MS_NODULE_PART_SOLID] > 0 && seen[MS_NODULE_GROUND_GLASS] > 0);
  ms_phantom_params_init(&p, MS_PHANTOM_HEAD);
  p.lesions.nodule = MS_NODULE_GROUND_GLASS;
  assert_int_equal(ms_phantom_params_check(&p, NULL), MS_ERR_INVALID);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_phantom_noise_free_pixels_equal_label_values),
      cmocka_unit_test(test_phantom_lesions_lie_inside_their_organ),
      cmocka_unit_test(test_phantom_lesion_counts_and_table),
      cmocka_unit_test(test_phantom_ct_noise_variance_follows_dose),
      cmocka_unit_test(test_phantom_mr_background_is_rician),
      cmocka_unit_test(test_phantom_volume_planes_equal_slices),
      cmocka_unit_test(test_phantom_volume_lesions_are_3d),
      cmocka_unit_test(test_phantom_augmentation_keeps_image_and_mask_aligned),
      cmocka_unit_test(test_phantom_partial_volume_mixes_boundaries),
      cmocka_unit_test(test_phantom_reproducible_across_threads_and_batches),
      cmocka_unit_test(test_phantom_subject_overrides),
      cmocka_unit_test(test_phantom_rejects_bad_input),
      cmocka_unit_test(test_phantom_nodule_types),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
