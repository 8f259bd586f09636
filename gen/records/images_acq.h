/* Acquisition physics of a phantom image field: the "acquisition" object of
 * an image field (docs/multimodal.md, "Acquisition physics"), parsed by
 * records/images_acq.c and run by multimodal/images_acq.c.
 *
 *   "acquisition": {"physics": "ct", "dose": "if(bmi > 30, 50, 25)",
 *                   "full_dose": 100, "views": 360, "filter": "hann"}
 *   "acquisition": {"physics": "mr", "coils": 8, "acceleration": "...",
 *                   "center_fraction": 0.08, "mask": "random"}
 *
 * Per-row parameters (a number or an expression over the row, like the
 * image field's own): CT dose and full dose, MR acceleration and centre
 * fraction. The others fix the shape of the raw datasets (views,
 * detectors, coils) or the reconstruction (geometry, filter, cut-off) and
 * are constants of the field.
 *
 * Invariants after a successful load: ct (or mr) passed its parameter
 * check with the constant per-row values (or the defaults) on the field's
 * grid (a brain field's size and spacing); the phantom is 2-D and its
 * modality matches the physics (a brain field: MR physics, an MR contrast);
 * the field renders its truth noise-free (phantom.noise 0, a brain's
 * noise_free 1) and mr.noise_sd holds the noise its setting asked for.
 *
 * Private to the library. */
#ifndef MS_RECORDS_IMAGES_ACQ_H
#define MS_RECORDS_IMAGES_ACQ_H

#include <stddef.h>

#include "medsynth/physics.h"
#include "records/images.h"
#include "records/plan.h"

typedef enum {
  MS__ACQ_DOSE,            /* CT: mAs of /images/<f> and the sinogram */
  MS__ACQ_FULL_DOSE,       /* CT: mAs of /images/<f>_full_dose */
  MS__ACQ_ACCELERATION,    /* MR: R */
  MS__ACQ_CENTER_FRACTION, /* MR: fully sampled centre */
  MS__ACQ_PARAM_COUNT
} ms__acq_param_id;

/* Spec key of a parameter ("dose", "full_dose", ...). */
const char *ms__acq_param_key(ms__acq_param_id id);

typedef struct ms__img_acq {
  int is_mr;      /* 0: CT, 1: MR */
  ms_ct_params ct; /* static parameters (per-row ones are the defaults) */
  ms_mr_params mr;
  int raw;        /* write /raw/<f>_sinogram or /raw/<f>_kspace (default true) */
  ms__img_param p[MS__ACQ_PARAM_COUNT]; /* p[k].set: applies to this physics */
  char *ptr;      /* JSON pointer of the "acquisition" object */
} ms__img_acq;

/* Parses, checks and compiles the "acquisition" object aj (at JSON pointer
 * aptr) of phantom field f into f->acq. Returns the number of errors
 * reported to d. */
size_t ms__img_acq_parse(ms_spec *s, ms_diag *d, const ms__table *t, ms__image_field *f, const struct cJSON *aj,
                         const char *aptr);
void ms__img_acq_free(ms__img_acq *a);
/* Refuses image names that a field's acquisition datasets would overwrite
 * (/images/<f>_truth, _full_dose, _zf of field f). Returns the number of
 * errors reported to d. */
size_t ms__img_acq_check_names(ms_spec *s, ms_diag *d, const ms__images *im);

/* Parses the per-image parameter `key` of object obj (at JSON pointer
 * objptr) into *p (p->lo, p->hi, p->integer set by the caller): a number or
 * an expression over table t's written columns (records/images.c). Returns
 * the number of errors reported to d. */
size_t ms__img_param_parse(ms_spec *s, ms_diag *d, const ms__table *t, ms__img_param *p, const struct cJSON *obj,
                           const char *objptr, const char *key);

#endif
