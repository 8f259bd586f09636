/* Multimodal datasets: image fields of a spec generated alongside the
 * records that drive them, into one HDF5 file.
 *
 * Usage:
 *   ms_spec *spec;  ms_spec_load(&spec, "multimodal.json", &d);   // validates images too
 *   ms_writer *w;   ms_writer_open(&w, "out.h5", NULL, &d);
 *   ms_images_params io; ms_images_params_init(&io);
 *   io.seed = seed;               // the seed ms_generate uses
 *   io.png_dir = "png";           // optional exports
 *   ms_images *im;
 *   if (ms_images_new(&im, spec, w, &io, &d) != MS_OK) ...;
 *   ms_sink sink = ms_images_sink(im);      // tables + images
 *   st = ms_generate(spec, &gen_opts, &sink, &rep, &d);
 *   if (st == MS_OK) st = ms_images_finish(im, &d);   // contact sheets, summary
 *   ms_images_free(im);
 *   st == MS_OK ? ms_writer_commit(w, &d) : (ms_writer_abort(w), st);
 *
 * The sink forwards every table to the writer and, for a table with image
 * fields, renders the images of each chunk's rows (in parallel, in batches
 * of bounded memory) and writes /images/<field>, /masks/<field>,
 * /tables/<field>_lesions and /tables/<field>_info (docs/file-format.md,
 * docs/multimodal.md). Image r of a field is a pure function of (seed,
 * stream "table/field", global row r) and the row's values, so threads,
 * chunk sizes, row counts and shards never change its bytes.
 *
 * Exports (png_dir, nifti_dir) and contact sheets are written under hidden
 * names (".staged.<name>") and appear under their own names only when
 * ms_images_finish succeeds; ms_images_free removes whatever was not
 * published, so a run that fails (out of memory included) leaves no export.
 *
 * Ownership: ms_images_new borrows spec and w (both must outlive the
 * images object); ms_images_free releases it. Diagnostics raised inside the
 * sink go to the diag given to ms_images_new (it must outlive the object). */
#ifndef MEDSYNTH_IMAGES_H
#define MEDSYNTH_IMAGES_H

#include <stddef.h>
#include <stdint.h>

#include "medsynth/io.h"
#include "medsynth/records.h"
#include "medsynth/status.h"
#include "medsynth/table.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Image fields of a loaded spec, in spec order (tables, then list order). */
size_t ms_spec_n_images(const ms_spec *s);
/* Name of image field i; NULL when out of range. Borrowed from the spec. */
const char *ms_spec_image_name(const ms_spec *s, size_t i);
/* Index of the table that owns image field i (SIZE_MAX when out of range). */
size_t ms_spec_image_table(const ms_spec *s, size_t i);
/* Shape of one item of field i: dims[0] = C, then (D,) H, W; returns the
 * rank of an item (3 for a slice, 4 for a volume), 0 when out of range. */
int ms_spec_image_item_dims(const ms_spec *s, size_t i, uint64_t dims[4]);

typedef struct {
  uint64_t seed;          /* the seed of the run (ms_generate's) */
  int threads;            /* 0: OpenMP default; the output does not depend on it */
  size_t batch_bytes;     /* image memory per batch; 0: 256 MiB */
  const char *png_dir;    /* NULL, or a folder for <field>_<row>.png (+ _mask.png) */
  const char *nifti_dir;  /* NULL, or a folder for <field>_<row>.nii.gz (+ _mask) */
  const char *dicom_dir;  /* NULL, or a folder for <field>/<row>/IMG*.dcm (+ SEG.dcm), the
                             Patient module from the table's FHIR Patient mapping
                             (docs/dicom.md); should be an ms_dicom_dir's path */
  const char *grid_path;  /* NULL, or a contact sheet (one per field, see docs/cli.md) */
  size_t grid_max;        /* images on a sheet; 0: 16 */
  /* Each exported file appears complete (ms_png_write, ms_nifti_write); for
   * the folders and sheets to appear only with a committed HDF5 file, point
   * these at staged outputs (medsynth/output.h), as `medsynth records` does. */
} ms_images_params;

void ms_images_params_init(ms_images_params *o);

typedef struct ms_images ms_images;

/* Image arrays need an HDF5 writer (for CSV/JSONL the first image write
 * fails). Fails with MS_ERR_NOMEM, or MS_ERR_IO when an export folder cannot
 * be created. */
ms_status ms_images_new(ms_images **out, const ms_spec *spec, ms_writer *w,
                        const ms_images_params *o, ms_diag *d);
/* The sink to give ms_generate (borrows im). */
ms_sink ms_images_sink(ms_images *im);
/* After a successful ms_generate: writes the contact sheets, then gives the
 * exports and sheets their final names. */
ms_status ms_images_finish(ms_images *im, ms_diag *d);
/* Reports only (FHIR output): renders the phantom image fields of every
 * root chunk that passes through (after handing it to `inner`) to compose
 * each image's radiology report from its measured lesions, writing nothing;
 * learned-model fields are skipped. ms_images_report gives the report of
 * `row` while its chunk is the latest one rendered (text and impression
 * borrowed from im; 0 when not available). */
ms_status ms_images_new_reports(ms_images **out, const ms_spec *spec, ms_sink inner,
                                const ms_images_params *o, ms_diag *d);
int ms_images_report(const ms_images *im, size_t field, uint64_t row, const char **text,
                     const char **impression);
/* Images written so far for field i. */
uint64_t ms_images_count(const ms_images *im, size_t field);
void ms_images_free(ms_images *im);

#ifdef __cplusplus
}
#endif
#endif
