/* Acquisition physics of image fields at generation time (the runtime half
 * of records/images_acq.h; docs/multimodal.md "Acquisition physics").
 *
 * The image generator renders the noise-free truth of a row, then
 * ms__acq_row turns it into what the scanner measures and its standard
 * reconstruction: the reconstruction replaces the image (so /images/<f>,
 * the exports and the contact sheet show it), the truth and the other
 * outputs go to per-batch buffers that ms__acq_write appends to their
 * datasets in row order:
 *   CT: /images/<f>_full_dose, /images/<f>_truth, /raw/<f>_sinogram
 *   MR: /images/<f>_zf, /images/<f>_truth, /raw/<f>_kspace, /raw/<f>_mask,
 *       /raw/<f>_sensitivity_maps
 * Row r uses the field's seed and index r, exactly as the phantom does, so
 * the bytes do not depend on threads, chunks or batches.
 *
 * Private to the library. */
#ifndef MS_MULTIMODAL_IMAGES_ACQ_H
#define MS_MULTIMODAL_IMAGES_ACQ_H

#include <stddef.h>
#include <stdint.h>

#include "medsynth/io.h"
#include "records/images_acq.h"

typedef struct ms__acq_run ms__acq_run;

/* Makes the CT or MR system of field f, begins its datasets (N =
 * expected) and sets their attributes (table: the field's table name). */
ms_status ms__acq_begin(ms__acq_run **out, const ms__image_field *f, ms_writer *w, const char *table,
                        uint64_t expected, ms_diag *d);
void ms__acq_free(ms__acq_run *r);
/* Bytes a row needs beyond the image and mask (for batch sizing). */
size_t ms__acq_row_bytes(const ms__acq_run *r);
/* Buffers for batches of up to B rows. */
ms_status ms__acq_reserve(ms__acq_run *r, size_t B, ms_diag *d);
/* The dose (mAs) of a row whose per-row values are vals (NaN: the field's
 * constant or default); NaN for MR. */
double ms__acq_dose(const ms__acq_run *r, const double *vals /* [MS__ACQ_PARAM_COUNT] */);
/* Row `row` in batch slot `slot`: image [H][W] holds the truth on entry and
 * the reconstruction on return. Any thread; slots differ. */
ms_status ms__acq_row(const ms__acq_run *r, size_t slot, float *image, const double *vals, uint64_t seed,
                      uint64_t row, ms_diag *d);
/* Appends slots 0..m-1 as items first.. of the datasets. */
ms_status ms__acq_write(const ms__acq_run *r, ms_writer *w, uint64_t first, size_t m);

#endif
