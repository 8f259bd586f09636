/* The lesion and per-image tables of phantom images (medsynth/phantom_table.h).
 *
 * Both tables are driven by a column list: each entry names a column, its
 * type, unit and description, and where its value lies in the lesion (or
 * subject) record, so the schema and the row writer cannot disagree and a
 * new lesion property is one more entry. The order of the entries is the
 * column order of the file (docs/phantoms.md). */
#include "medsynth/phantom_table.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/table_build.h"

/* Where a lesion column takes its value from. */
typedef enum {
  SRC_DOUBLE,  /* double at offset (+ axis) */
  SRC_INT,     /* int at offset (+ axis), written as int64 */
  SRC_UINT64,  /* uint64_t at offset, written as int64 */
  SRC_ENUM,    /* int-sized enum at offset, written as a category code */
  SRC_NAME,    /* const char * at offset, written as the code of that category
                  (NULL: category 0) */
} src_kind;

typedef struct {
  const char *name;
  ms_coltype type;
  const char *unit;
  const char *description;
  src_kind src;
  size_t offset; /* in ms_phantom_lesion */
  int axis;      /* element of an array member */
  /* categorical columns: the category names */
  const char *(*category)(int code);
  int n_categories;
  int size_col;  /* the area (slices) / volume (volumes) column */
  int value_col; /* unit HU in CT */
} lesion_col;

static const char *organ_category(int k) {
  return ms_label_name(k);
}
static const char *nodule_category(int k) {
  return ms_nodule_kind_name((ms_nodule_kind)k);
}
static const char *margin_category(int k) {
  return ms_nodule_margin_name((ms_nodule_margin)k);
}
/* Category k is class k ("any", code 0, is never a lesion's class). */
static const char *size_category(int k) {
  return ms_nodule_size_name((ms_nodule_size)k);
}
/* The Lung-RADS size categories; "none" for lesions outside the lung. */
static const char *const k_lungrads[] = {"none", "2", "3", "4A", "4B"};
#define N_LUNGRADS ((int)(sizeof k_lungrads / sizeof k_lungrads[0]))
static const char *lungrads_category(int k) {
  return k_lungrads[k];
}

#define L_OFF(m) offsetof(ms_phantom_lesion, m)
#define DCOL(n, u, d, m, a) {n, MS_COL_FLOAT64, u, d, SRC_DOUBLE, L_OFF(m), a, NULL, 0, 0, 0}
#define ICOL(n, u, d, m, a) {n, MS_COL_INT64, u, d, SRC_INT, L_OFF(m), a, NULL, 0, 0, 0}

/* The lesion columns after `row`, the key and `lesion` (docs/phantoms.md). */
static const lesion_col k_lesion_cols[] = {
    ICOL("label", NULL, "mask label", label, 0),
    {"organ", MS_COL_CATEGORICAL, NULL, "organ holding the lesion", SRC_ENUM, L_OFF(organ), 0, organ_category,
     MS_LABEL_COUNT, 0, 0},
    DCOL("center_x_mm", "mm", "designed centre, phantom coordinates", center_mm, 0),
    DCOL("center_y_mm", "mm", NULL, center_mm, 1),
    DCOL("center_z_mm", "mm", NULL, center_mm, 2),
    DCOL("diameter_mm", "mm", "designed mean diameter", diameter_mm, 0),
    DCOL("contrast", NULL, "contrast factor (1 = typical lesion tissue)", contrast, 0),
    {"value", MS_COL_FLOAT64, NULL, "noise-free lesion value", SRC_DOUBLE, L_OFF(value), 0, NULL, 0, 0, 1},
    {"nodule", MS_COL_CATEGORICAL, NULL, "nodule type (solid unless a lung nodule of another type)", SRC_ENUM,
     L_OFF(nodule), 0, nodule_category, MS_NODULE_KIND_COUNT, 0, 0},
    DCOL("core_diameter_mm", "mm", "part-solid nodules: diameter of the solid core; else 0", core_diameter_mm, 0),
    {"margin", MS_COL_CATEGORICAL, NULL, "nodule margin (smooth unless a lung nodule of another margin)", SRC_ENUM,
     L_OFF(margin), 0, margin_category, MS_NODULE_MARGIN_COUNT - 1, 0, 0},
    ICOL("n_spicules", NULL, "spiculated margins: number of spikes; else 0", n_spicules, 0),
    {"size_class", MS_COL_CATEGORICAL, NULL, "class of diameter_mm (Lung-RADS solid-nodule thresholds)", SRC_ENUM,
     L_OFF(size_class), 0, size_category, MS_NODULE_SIZE_COUNT, 0, 0},
    {"lungrads", MS_COL_CATEGORICAL, NULL, "Lung-RADS v2022 size category (lung nodules; else none)", SRC_NAME,
     L_OFF(lungrads), 0, lungrads_category, N_LUNGRADS, 0, 0},
    {"n_pixels", MS_COL_INT64, NULL, "mask pixels (voxels) with the lesion's label", SRC_UINT64, L_OFF(n_pixels), 0,
     NULL, 0, 0, 0},
    DCOL("centroid_x", "pixel", "measured on the mask (column)", centroid, 0),
    DCOL("centroid_y", "pixel", "measured on the mask (row)", centroid, 1),
    DCOL("centroid_z", "pixel", "measured on the mask (plane)", centroid, 2),
    ICOL("bbox_x0", "pixel", "inclusive bounds on the mask", bbox_min, 0),
    ICOL("bbox_y0", "pixel", NULL, bbox_min, 1),
    ICOL("bbox_z0", "pixel", NULL, bbox_min, 2),
    ICOL("bbox_x1", "pixel", NULL, bbox_max, 0),
    ICOL("bbox_y1", "pixel", NULL, bbox_max, 1),
    ICOL("bbox_z1", "pixel", NULL, bbox_max, 2),
    {"area_mm2", MS_COL_FLOAT64, "mm2", "measured on the mask", SRC_DOUBLE, L_OFF(size_mm), 0, NULL, 0, 1, 0},
};
#define N_LESION_COLS (sizeof k_lesion_cols / sizeof k_lesion_cols[0])


static const char *k_row_desc = "row of the image's table (and item of the image) in this file";

/* `row` and the key column; the schema's columns hold `cap` entries. */
static int begin_schema(ms_table_schema *s, const char *name, size_t cap, const ms_column *key,
                        const char *key_table) {
  memset(s, 0, sizeof *s);
  s->name = ms__strdup(name);
  s->columns = ms__calloc(cap, sizeof *s->columns);
  if (!s->name || !s->columns) return -1;
  int bad = ms__schema_add_col(s, "row", MS_COL_INT64, NULL, k_row_desc);
  if (key) bad |= ms__schema_add_key_col(s, key, key_table);
  return bad;
}

ms_status ms_phantom_lesion_schema(ms_table_schema *s, const char *name, const ms_phantom_params *p,
                                   const ms_column *key, const char *key_table) {
  int vol = p->depth > 0;
  int bad = begin_schema(s, name, N_LESION_COLS + 3, key, key_table);
  if (!bad) bad = ms__schema_add_col(s, "lesion", MS_COL_INT64, NULL, "lesion number k within the image (mask label 100 + k)");
  for (size_t i = 0; i < N_LESION_COLS && !bad; i++) {
    const lesion_col *lc = &k_lesion_cols[i];
    const char *cname = lc->size_col && vol ? "volume_mm3" : lc->name;
    const char *unit = lc->size_col && vol ? "mm3" : lc->unit;
    if (lc->value_col && p->modality == MS_MODALITY_CT) unit = "HU";
    bad = ms__schema_add_col(s, cname, lc->type, unit, lc->description);
    if (bad || lc->type != MS_COL_CATEGORICAL) continue;
    ms_column *c = &s->columns[s->n_columns - 1];
    c->categories = ms__calloc((size_t)lc->n_categories, sizeof *c->categories);
    if (!c->categories) {
      bad = 1;
      break;
    }
    c->n_categories = (size_t)lc->n_categories;
    for (int k = 0; k < lc->n_categories && !bad; k++) bad = !(c->categories[k] = ms__strdup(lc->category(k)));
  }
  if (!bad) return MS_OK;
  ms_table_schema_deinit(s);
  return MS_ERR_NOMEM;
}

void ms_phantom_lesion_set_row(ms_chunk *c, size_t j, int64_t row, const void *key, int k,
                               const ms_phantom_lesion *lesion) {
  size_t col = 0;
  ((int64_t *)c->cols[col++].data)[j] = row;
  if (key) {
    size_t kw = ms_column_value_size(&c->schema->columns[col]);
    memcpy((char *)c->cols[col++].data + j * kw, key, kw);
  }
  ((int64_t *)c->cols[col++].data)[j] = k;
  const char *base = (const char *)lesion;
  for (size_t i = 0; i < N_LESION_COLS; i++, col++) {
    const lesion_col *lc = &k_lesion_cols[i];
    const char *m = base + lc->offset;
    switch (lc->src) {
      case SRC_DOUBLE: ((double *)c->cols[col].data)[j] = ((const double *)(const void *)m)[lc->axis]; break;
      case SRC_INT: ((int64_t *)c->cols[col].data)[j] = ((const int *)(const void *)m)[lc->axis]; break;
      case SRC_UINT64: ((int64_t *)c->cols[col].data)[j] = (int64_t) * (const uint64_t *)(const void *)m; break;
      case SRC_ENUM: ((int32_t *)c->cols[col].data)[j] = (int32_t) * (const int *)(const void *)m; break;
      case SRC_NAME: {
        const char *v = *(const char *const *)(const void *)m;
        int32_t code = 0;
        for (int q = 1; v && q < lc->n_categories; q++)
          if (!strcmp(v, lc->category(q))) code = q;
        ((int32_t *)c->cols[col].data)[j] = code;
        break;
      }
    }
  }
}

/* The shared per-image columns after `row` and the key. */
static const struct {
  const char *name;
  ms_coltype type;
  const char *unit;
  const char *description;
} k_info_cols[] = {
    {"n_lesions", MS_COL_INT64, NULL, "lesions in the image"},
    {"body_scale", MS_COL_FLOAT64, NULL, "realised anatomy scale"},
    {"ventricle_scale", MS_COL_FLOAT64, NULL, "realised ventricle scale (head)"},
    {"age_years", MS_COL_FLOAT64, "years", "realised anatomical age"},
    {"fat_mm", MS_COL_FLOAT64, "mm", "realised subcutaneous fat"},
};
#define N_INFO_COLS (sizeof k_info_cols / sizeof k_info_cols[0])

ms_status ms_phantom_info_schema(ms_table_schema *s, const char *name, const ms_phantom_params *p,
                                 const ms_column *key, const char *key_table, size_t extra) {
  (void)p;
  int bad = begin_schema(s, name, N_INFO_COLS + 2 + extra, key, key_table);
  for (size_t i = 0; i < N_INFO_COLS && !bad; i++)
    bad = ms__schema_add_col(s, k_info_cols[i].name, k_info_cols[i].type, k_info_cols[i].unit, k_info_cols[i].description);
  if (!bad) return MS_OK;
  ms_table_schema_deinit(s);
  return MS_ERR_NOMEM;
}

void ms_phantom_info_set_row(ms_chunk *c, size_t j, int64_t row, const void *key, const ms_phantom_params *p,
                             const ms_phantom_subject *subject, size_t n_lesions) {
  size_t col = 0;
  ((int64_t *)c->cols[col++].data)[j] = row;
  if (key) {
    size_t kw = ms_column_value_size(&c->schema->columns[col]);
    memcpy((char *)c->cols[col++].data + j * kw, key, kw);
  }
  ((int64_t *)c->cols[col++].data)[j] = (int64_t)n_lesions;
  ((double *)c->cols[col++].data)[j] = subject->body_scale;
  ((double *)c->cols[col++].data)[j] = p->kind == MS_PHANTOM_HEAD ? subject->ventricle_scale : NAN;
  ((double *)c->cols[col++].data)[j] = subject->age_years;
  ((double *)c->cols[col++].data)[j] = subject->fat_mm;
}
