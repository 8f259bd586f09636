/* Image fields of a spec: the compiled form of a table's "images" list
 * (docs/spec.md, "Image fields"), shared by the loader hook (images.c) and
 * the image generator (gen/multimodal/images_gen.c).
 *
 * An image field belongs to a root table; its image i is the image of row i
 * of that table. Every per-image parameter is a constant or an expression
 * compiled against the table's written columns: slot k of an expression is
 * output column k of the table's schema, so the generator evaluates it on
 * the very chunk the records engine hands to the sink (no access to hidden
 * or parent fields, which never reach the sink).
 *
 * Invariants after a successful load: names are unique across all image
 * fields and never collide with a table name or its derived tables
 * (<name>_lesions, <name>_info); phantom parameters passed
 * ms_phantom_params_check; a lesion of the largest size fits its organ in a
 * typical patient; stream = xxh64("table/field").
 *
 * Private to the library. */
#ifndef MS_RECORDS_IMAGES_H
#define MS_RECORDS_IMAGES_H

#include <stddef.h>
#include <stdint.h>

#include "medsynth/phantom.h"
#include "records/expr.h"

/* Per-image parameters (each a number or an expression over the row). */
typedef enum {
  MS__IMG_LESIONS,
  MS__IMG_BODY_SCALE,
  MS__IMG_VENTRICLE_SCALE,
  MS__IMG_AGE,
  MS__IMG_FAT_MM,
  MS__IMG_DOSE,
  MS__IMG_CLASS,
  MS__IMG_PARAM_COUNT
} ms__img_param_id;

/* Spec key of a parameter ("lesions", "body_scale", ...). */
const char *ms__img_param_key(ms__img_param_id id);

typedef struct {
  int set;      /* given in the spec */
  double value; /* the constant (when x == NULL) */
  ms__expr *x;  /* per-row expression, or NULL */
  double lo, hi; /* allowed range of a value */
  int integer;  /* values must be whole numbers */
  char *ptr;    /* JSON pointer of the value */
} ms__img_param;

/* Releases the expressions and pointers of p[0..n) (records/images.c). */
void ms__img_params_free(ms__img_param *p, int n);

typedef struct {
  char *name;
  char *ptr;       /* "/tables/0/images/1" */
  char *description;
  size_t table;    /* owning (root) table */
  int is_model;
  /* phantom fields */
  ms_phantom_params phantom; /* static parameters (per-row ones overridden) */
  int lesion_range;          /* "lesions": [min, max] drawn per image */
  ms__img_param p[MS__IMG_PARAM_COUNT];
  ms_window window;
  int write_mask;            /* /masks/<name> (default on) */
  int write_lesions;         /* /tables/<name>_lesions (default on) */
  /* learned-model fields */
  char *model_path;          /* resolved path (for loading and messages) */
  char *model_ref;           /* the spec's "model" text, as written (recorded in files:
                                it does not depend on where the spec was read from) */
  struct ms_model *model;    /* loaded and checked at spec load; owned */
  char *sampler;
  int steps;
  double guidance, eta;
  uint64_t stream; /* xxh64("table/field"): images are keyed by (seed, stream, row) */
  struct ms__img_acq *acq; /* "acquisition" physics (records/images_acq.h), or NULL; owned */
  struct ms__brain_field *brain; /* "phantom": "brain" (records/images_brain.h), else NULL */
} ms__image_field;

typedef struct ms__images {
  size_t n;
  ms__image_field *f;
} ms__images;

struct ms_spec;
struct cJSON;

/* Loader hook (called by spec.c after the field passes, with the parsed
 * "tables" array): parses, validates and compiles every table's "images"
 * list into s->images; reports every problem to d. Returns the number of
 * errors added. Tables marked broken are skipped. */
size_t ms__images_load(struct ms_spec *s, const struct cJSON *tables, ms_diag *d);
void ms__images_free(ms__images *im);

#endif
