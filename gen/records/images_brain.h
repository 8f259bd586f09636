/* The "brain" image field of a spec: the atlas-based brain phantom
 * (medsynth/brain.h) driven by per-row expressions (docs/multimodal.md,
 * "Brain image fields"). Shared by the loader (records/images.c, which
 * hands "phantom": "brain" to ms__brain_field_parse) and the generator
 * (multimodal/images_gen.c).
 *
 * The field's output shape lives in the ms__image_field's phantom params
 * too (width, height, depth; depth 0 for a 2-D slice) so that the generic
 * image code (dims, batches, sheets, PNG) serves it unchanged.
 *
 * Private to the library. */
#ifndef MS_RECORDS_IMAGES_BRAIN_H
#define MS_RECORDS_IMAGES_BRAIN_H

#include "medsynth/brain.h"
#include "records/images.h"
#include "records/plan.h"

/* Per-image parameters of a brain field (each a number or an expression). */
typedef enum {
  MS__BRAIN_AGE,
  MS__BRAIN_HEAD_SCALE,
  MS__BRAIN_MODALITY,     /* index into t1, t2, flair, pd */
  MS__BRAIN_TUMOUR,       /* 0 or 1 */
  MS__BRAIN_TUMOUR_LOBE,  /* ms_brain_lobe */
  MS__BRAIN_TUMOUR_SIZE,  /* rim diameter, mm */
  MS__BRAIN_GADOLINIUM,   /* 0 or 1 */
  MS__BRAIN_WM_LESIONS,   /* count */
  MS__BRAIN_WM_LOAD,      /* ml */
  MS__BRAIN_STROKE,       /* ms_brain_territory */
  MS__BRAIN_STROKE_SIZE,  /* radius, mm */
  MS__BRAIN_STROKE_SIDE,  /* 0 left, 1 right */
  MS__BRAIN_PARAM_COUNT
} ms__brain_param_id;

const char *ms__brain_param_key(int id);

typedef struct ms__brain_field {
  ms_brain_params p;                 /* constants; per-row values override */
  ms__img_param q[MS__BRAIN_PARAM_COUNT];
  char *atlas_dir;                   /* NULL: MS_BRAIN_ATLAS_DIR */
  int write_aal;                     /* /masks/<name>_aal ("aal_mask", default: "mask") */
} ms__brain_field;

/* The loader's state (records/images.c), for the helpers below. */
typedef struct ms__img_ctx ms__img_ctx;

void ms__img_err(ms__img_ctx *l, const char *ptr, int at_key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int ms__img_get_num(ms__img_ctx *l, const struct cJSON *obj, const char *ptr, const char *key, double lo,
                    double hi, int integer, double *out);
int ms__img_get_flag(ms__img_ctx *l, const struct cJSON *obj, const char *ptr, const char *key, int *out);
void ms__img_check_keys(ms__img_ctx *l, const struct cJSON *obj, const char *ptr, const char *const *allowed);
void ms__img_parse_param(ms__img_ctx *l, const ms__table *t, ms__img_param *p, const struct cJSON *obj,
                         const char *iptr, const char *key);
/* The field's "acquisition" object, when present (records/images_acq.h);
 * f->phantom must hold the field's shape and modality. */
void ms__img_parse_acquisition(ms__img_ctx *l, const ms__table *t, ms__image_field *f, const struct cJSON *ij,
                               const char *iptr);

/* Parses the brain field at iptr into f (f->brain allocated; f->phantom
 * and f->window set); reports every problem through l. */
void ms__brain_field_parse(ms__img_ctx *l, const ms__table *t, ms__image_field *f, const struct cJSON *ij,
                           const char *iptr);
void ms__brain_field_free(ms__brain_field *b);

/* The parameters of one row: vals[k] is parameter k's value for the row
 * (NaN: the field's constant or default). */
void ms__brain_row_params(const ms__brain_field *b, const double *vals, ms_brain_params *out);

#endif
