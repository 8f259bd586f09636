/* Tests of the phantom lesion and per-image tables (gen/phantom/tables.c).
 * ctest-labels: unit
 *
 * The schema and the row writer agree: every column, looked up by its
 * documented name, holds the matching field of the rendered lesion or
 * subject (categorical columns the names of their codes); the key column
 * sits after `row` and keeps its bytes; volumes name their size column
 * volume_mm3; and the per-image table leaves room for a caller's columns. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "medsynth/phantom_table.h"

static int col_of(const ms_table_schema *s, const char *name) {
  for (size_t i = 0; i < s->n_columns; i++)
    if (!strcmp(s->columns[i].name, name)) return (int)i;
  fail_msg("no column %s in %s", name, s->name);
  return -1;
}

static double f64(const ms_chunk *c, const char *name, size_t j) {
  return ((const double *)c->cols[col_of(c->schema, name)].data)[j];
}
static int64_t i64(const ms_chunk *c, const char *name, size_t j) {
  return ((const int64_t *)c->cols[col_of(c->schema, name)].data)[j];
}
static const char *cat(const ms_chunk *c, const char *name, size_t j) {
  int k = col_of(c->schema, name);
  int32_t code = ((const int32_t *)c->cols[k].data)[j];
  assert_true(code >= 0 && (size_t)code < c->schema->columns[k].n_categories);
  return c->schema->columns[k].categories[code];
}

static void render(ms_phantom_image *img, const ms_phantom_params *p) {
  ms_diag d;
  ms_diag_init(&d);
  assert_int_equal(ms_phantom_image_init(img, p, &d), MS_OK);
  assert_int_equal(ms_phantom_generate(img, p, NULL, 7, 3, &d), MS_OK);
  ms_diag_deinit(&d);
}

static void test_phantom_table_columns_hold_the_lesion_fields(void **state) {
  (void)state;
  ms_phantom_params p;
  ms_phantom_params_init(&p, MS_PHANTOM_CHEST);
  p.width = p.height = 96;
  p.lesions.count_min = p.lesions.count_max = 3;
  p.lesions.diameter_min_mm = 10;
  p.lesions.diameter_max_mm = 20;
  p.lesions.nodule = MS_NODULE_PART_SOLID;
  p.lesions.margin = MS_NODULE_MARGIN_SPICULATED;
  p.lesions.size_class = MS_NODULE_SIZE_8_15;
  ms_phantom_image img;
  render(&img, &p);
  assert_int_equal(img.n_lesions, 3);
  ms_column key = {.name = "patient_id", .type = MS_COL_STRING, .str_width = 7};
  ms_table_schema ls;
  assert_int_equal(ms_phantom_lesion_schema(&ls, "chest_lesions", &p, &key, "patients"), MS_OK);
  assert_string_equal(ls.columns[0].name, "row");
  assert_string_equal(ls.columns[1].name, "patient_id");
  assert_string_equal(ls.columns[1].references, "patients.patient_id");
  assert_string_equal(ls.columns[2].name, "lesion");
  assert_string_equal(ls.columns[col_of(&ls, "value")].unit, "HU");
  ms_chunk *c;
  assert_int_equal(ms_chunk_new(&c, &ls, img.n_lesions), MS_OK);
  for (size_t k = 0; k < img.n_lesions; k++) ms_phantom_lesion_set_row(c, k, 5, "PAT-001", (int)k, &img.lesions[k]);
  for (size_t k = 0; k < img.n_lesions; k++) {
    const ms_phantom_lesion *L = &img.lesions[k];
    assert_int_equal(i64(c, "row", k), 5);
    assert_memory_equal((const char *)c->cols[1].data + k * 8, "PAT-001", 8);
    assert_int_equal(i64(c, "lesion", k), (int64_t)k);
    assert_int_equal(i64(c, "label", k), L->label);
    assert_string_equal(cat(c, "organ", k), "lung");
    assert_string_equal(cat(c, "nodule", k), "part-solid");
    assert_true(f64(c, "core_diameter_mm", k) > 0);
    assert_true(f64(c, "core_diameter_mm", k) == L->core_diameter_mm);
    assert_string_equal(cat(c, "margin", k), "spiculated");
    assert_int_equal(i64(c, "n_spicules", k), L->n_spicules);
    assert_true(L->n_spicules >= 10 && L->n_spicules <= 20);
    assert_string_equal(cat(c, "size_class", k), ms_nodule_size_name(L->size_class));
    assert_string_equal(cat(c, "size_class", k), "8-15mm");
    assert_non_null(L->lungrads);
    assert_string_equal(cat(c, "lungrads", k), L->lungrads);
    static const char *const axis[3] = {"x", "y", "z"};
    for (int a = 0; a < 3; a++) {
      char n[32];
      snprintf(n, sizeof n, "center_%s_mm", axis[a]);
      assert_true(f64(c, n, k) == L->center_mm[a]);
      snprintf(n, sizeof n, "centroid_%s", axis[a]);
      assert_true(f64(c, n, k) == L->centroid[a]);
      snprintf(n, sizeof n, "bbox_%s0", axis[a]);
      assert_int_equal(i64(c, n, k), L->bbox_min[a]);
      snprintf(n, sizeof n, "bbox_%s1", axis[a]);
      assert_int_equal(i64(c, n, k), L->bbox_max[a]);
    }
    assert_true(f64(c, "diameter_mm", k) == L->diameter_mm);
    assert_true(f64(c, "contrast", k) == L->contrast);
    assert_true(f64(c, "value", k) == L->value);
    assert_int_equal(i64(c, "n_pixels", k), (int64_t)L->n_pixels);
    assert_true(f64(c, "area_mm2", k) == L->size_mm);
  }
  ms_chunk_free(c);
  ms_table_schema_deinit(&ls);
  ms_phantom_image_deinit(&img);
}

static void test_phantom_table_volumes_and_info_rows(void **state) {
  (void)state;
  ms_phantom_params p;
  ms_phantom_params_init(&p, MS_PHANTOM_HEAD);
  p.width = p.height = 48;
  p.depth = 6;
  p.modality = MS_MODALITY_T1;
  p.lesions.count_min = p.lesions.count_max = 2;
  p.lesions.diameter_min_mm = 12;
  p.lesions.diameter_max_mm = 16;
  ms_phantom_image img;
  render(&img, &p);
  ms_table_schema ls, is;
  assert_int_equal(ms_phantom_lesion_schema(&ls, "head_lesions", &p, NULL, NULL), MS_OK);
  assert_string_equal(ls.columns[ls.n_columns - 1].name, "volume_mm3");
  assert_null(ls.columns[col_of(&ls, "value")].unit);
  assert_string_equal(ls.columns[1].name, "lesion");
  /* outside the lung: smooth, no spikes, no Lung-RADS category */
  assert_true(img.n_lesions > 0);
  ms_chunk *lc;
  assert_int_equal(ms_chunk_new(&lc, &ls, img.n_lesions), MS_OK);
  for (size_t k = 0; k < img.n_lesions; k++) {
    ms_phantom_lesion_set_row(lc, k, 0, NULL, (int)k, &img.lesions[k]);
    assert_string_equal(cat(lc, "margin", k), "smooth");
    assert_int_equal(i64(lc, "n_spicules", k), 0);
    assert_string_equal(cat(lc, "lungrads", k), "none");
  }
  ms_chunk_free(lc);
  assert_int_equal(ms_phantom_info_schema(&is, "head_info", &p, NULL, NULL, 2), MS_OK);
  static const char *const names[] = {"row", "n_lesions", "body_scale", "ventricle_scale", "age_years", "fat_mm"};
  assert_int_equal(is.n_columns, 6);
  for (size_t i = 0; i < 6; i++) assert_string_equal(is.columns[i].name, names[i]);
  /* room for the caller's columns */
  is.columns[is.n_columns++] = (ms_column){.name = strdup("dose"), .type = MS_COL_FLOAT64, .precision = -1};
  is.columns[is.n_columns++] = (ms_column){.name = strdup("extra"), .type = MS_COL_INT64, .precision = -1};
  ms_chunk *c;
  assert_int_equal(ms_chunk_new(&c, &is, 1), MS_OK);
  ms_phantom_info_set_row(c, 0, 9, NULL, &p, &img.subject, img.n_lesions);
  assert_int_equal(i64(c, "row", 0), 9);
  assert_int_equal(i64(c, "n_lesions", 0), (int64_t)img.n_lesions);
  assert_true(f64(c, "body_scale", 0) == img.subject.body_scale);
  assert_true(f64(c, "ventricle_scale", 0) == img.subject.ventricle_scale);
  assert_true(f64(c, "age_years", 0) == img.subject.age_years);
  assert_true(f64(c, "fat_mm", 0) == img.subject.fat_mm);
  ms_chunk_free(c);
  /* ventricle_scale is a head's only */
  p.kind = MS_PHANTOM_CHEST;
  assert_int_equal(ms_chunk_new(&c, &is, 1), MS_OK);
  ms_phantom_info_set_row(c, 0, 0, NULL, &p, &img.subject, 0);
  assert_true(isnan(f64(c, "ventricle_scale", 0)));
  ms_chunk_free(c);
  ms_table_schema_deinit(&is);
  ms_table_schema_deinit(&ls);
  ms_phantom_image_deinit(&img);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_phantom_table_columns_hold_the_lesion_fields),
      cmocka_unit_test(test_phantom_table_volumes_and_info_rows),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
