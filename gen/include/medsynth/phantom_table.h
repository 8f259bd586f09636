/* The lesion and per-image tables of phantom images: one layout for every
 * command that renders phantoms (medsynth phantom, image fields of
 * medsynth records/images), documented in docs/phantoms.md, "Lesion and
 * image tables".
 *
 * Usage:
 *   ms_table_schema ls, is;
 *   ms_phantom_lesion_schema(&ls, "chest_lesions", &params, NULL, NULL);
 *   ms_phantom_info_schema(&is, "chest_info", &params, NULL, NULL, 0);
 *   ms_chunk *c; ms_chunk_new(&c, &ls, n);
 *   for each lesion k of image i:
 *     ms_phantom_lesion_set_row(c, j++, i, NULL, k, &img.lesions[k]);
 *   ...
 *   ms_table_schema_deinit(&ls); ms_table_schema_deinit(&is);
 *
 * Lesion table, one row per lesion: `row` (the item of the image in
 * /images/<name>), the key column when given, `lesion` (k, mask label
 * 100 + k), `label`, `organ` (categorical, ms_label names), the designed
 * `center_x_mm`, `center_y_mm`, `center_z_mm`, `diameter_mm`, `contrast`,
 * `value` (noise-free), `nodule` (categorical, ms_nodule_kind names),
 * `core_diameter_mm`, `margin` (ms_nodule_margin names but mixed),
 * `n_spicules`, `size_class` (ms_nodule_size names) and `lungrads` (none,
 * 2, 3, 4A, 4B), then measured on the mask `n_pixels`, `centroid_x`,
 * `centroid_y`, `centroid_z`, `bbox_x0`, `bbox_y0`, `bbox_z0`, `bbox_x1`,
 * `bbox_y1`, `bbox_z1` (inclusive; x column, y row, z plane) and
 * `area_mm2` (slices) or `volume_mm3` (volumes). The columns come from one
 * table in gen/phantom/tables.c; a new lesion property is one row there.
 *
 * Per-image table: `row`, the key column when given, `n_lesions`,
 * `body_scale`, `ventricle_scale` (NaN unless head), `age_years`, `fat_mm`;
 * a caller may append columns of its own (`extra` reserves room for them).
 *
 * Ownership: the schemas are the caller's, released with
 * ms_table_schema_deinit; key and key_table are copied. */
#ifndef MEDSYNTH_PHANTOM_TABLE_H
#define MEDSYNTH_PHANTOM_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "medsynth/phantom.h"
#include "medsynth/status.h"
#include "medsynth/table.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Fills s (zeroed first) with the lesion table `name` of images rendered with
 * p. key: a column of the records table key_table to repeat after `row`
 * (references "key_table.<key name>"), or NULL. MS_ERR_NOMEM leaves s empty. */
ms_status ms_phantom_lesion_schema(ms_table_schema *s, const char *name, const ms_phantom_params *p,
                                   const ms_column *key, const char *key_table);
/* Writes row j of chunk c (of a schema from ms_phantom_lesion_schema): lesion
 * k of the image at item `row`; key: the key cell's bytes (width
 * ms_column_value_size of the key column), or NULL without a key column. */
void ms_phantom_lesion_set_row(ms_chunk *c, size_t j, int64_t row, const void *key, int k,
                               const ms_phantom_lesion *lesion);

/* Fills s with the per-image table `name`, with room for `extra` more columns
 * that the caller appends (s->n_columns is the number of shared columns). */
ms_status ms_phantom_info_schema(ms_table_schema *s, const char *name, const ms_phantom_params *p,
                                 const ms_column *key, const char *key_table, size_t extra);
/* Writes the shared columns of row j: the image at item `row` rendered with
 * p, its realised subject and lesion count. */
void ms_phantom_info_set_row(ms_chunk *c, size_t j, int64_t row, const void *key, const ms_phantom_params *p,
                             const ms_phantom_subject *subject, size_t n_lesions);

#ifdef __cplusplus
}
#endif

#endif
