/* The compiled form of a spec ("plan") shared by the loader (records/spec*.c,
 * whose expression scope binds names to fields), the generator
 * (records/generate*.c), the image fields (parsed by records/images.c,
 * rendered by multimodal/images_gen.c) and the FHIR mapping
 * (records/fhir_map.c, written by io/fhir.c).
 *
 * A plan is immutable after ms_spec_load returns; generation only reads it,
 * so any number of threads may use it at once.
 *
 * Invariants after a successful load:
 *  - tables are in spec order and every parent index is smaller than its
 *    children's (a parent is declared before its children);
 *  - table->order lists every field once, each after all fields it reads;
 *  - fields marked pos_dep (their value depends on the output position of
 *    the row: ids, ref keys, templates with {seq}/{row}, and anything reading
 *    those) are read by no filter, count or non-pos_dep field;
 *  - every random draw of a field uses key (seed, field->stream) with lanes
 *    from the MS__LANE_* ranges below, so fields never share draws.
 *
 * Private to the library. */
#ifndef MS_RECORDS_PLAN_H
#define MS_RECORDS_PLAN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "medsynth/records.h"
#include "medsynth/table.h"
#include "records/dist.h"
#include "records/expr.h"
#include "records/vocab.h"

/* Lanes (draw numbers) of one row of one field. Each purpose has its own
 * range so that, e.g., switching missingness on does not shift the value's
 * draw. */
#define MS__LANE_VALUE 0u     /* the value's uniform (and GSL sampler lanes) */
#define MS__LANE_MISSING 64u  /* missingness */
#define MS__LANE_TEMPLATE 128u /* string template random parts: 128 + part */

/* X(id, name): the field kinds and their names in a spec's "kind". */
#define MS__KIND_TABLE(X)          \
  X(ID, "id")                      \
  X(STRING, "string")              \
  X(CATEGORICAL, "categorical")    \
  X(INTEGER, "integer")            \
  X(REAL, "real")                  \
  X(BOOL, "bool")                  \
  X(DATE, "date")                  \
  X(DATETIME, "datetime")          \
  X(REF, "ref")

typedef enum {
#define MS__KIND_ENUM(id, name) MS__K_##id,
  MS__KIND_TABLE(MS__KIND_ENUM)
#undef MS__KIND_ENUM
  MS__K_COUNT /* the number of kinds */
} ms__kind;

const char *ms__kind_name(ms__kind k);




/* A number or an expression giving a number (or a date for date bounds). */
typedef struct {
  int set;
  double value;
  ms__expr *x; /* NULL when constant */
  char *ptr;  /* JSON pointer of the value */
} ms__param;

typedef struct {
  ms__dist_type type;
  ms__param p[MS__DIST_MAX_PARAMS];
  double *qprobs, *qvalues; /* quantiles: owned */
  size_t qn;
  uint32_t *qguide; /* their guide (ms__dist_quantile_guide): owned, may be NULL */
  unsigned qgbits;
  ms__param min, max; /* only for "count" distributions */
  char *ptr;          /* JSON pointer of the dist object */
} ms__dist;

/* The parts of a field a "when" rule may replace. */
typedef struct {
  int has_dist;
  ms__dist dist;
  double *cum;   /* categorical: cumulative weights over field labels, owned */
  ms__param p;   /* bool probability */
  ms__expr *expr; /* derived value */
  ms__expr *base; /* date/datetime base */
  int has_offset;
  ms__dist offset; /* date/datetime offset in days */
  char *ptr;
} ms__variant;

/* One piece of a string template. */
typedef enum {
  MS__TP_TEXT,
  MS__TP_SEQ,    /* row position + 1, zero-padded to width */
  MS__TP_ROW,    /* row position (0-based) */
  MS__TP_FIELD,  /* another field's value */
  MS__TP_HEX,    /* width random hex digits */
  MS__TP_DIGITS, /* width random decimal digits */
  MS__TP_UPPER   /* width random uppercase letters */
} ms__tp_kind;

typedef struct {
  ms__tp_kind kind;
  char *text;   /* MS__TP_TEXT */
  size_t field; /* MS__TP_FIELD: field index in the table */
  int width;    /* digits/letters; 0 = natural */
  int zero_pad;
} ms__tpart;

typedef struct {
  char *name;
  char *ptr; /* "/tables/0/fields/3" */
  ms__kind kind;
  ms__expr_type vtype;
  ms__expr_layout layout;
  int hidden;
  int col; /* output column or -1 (hidden) */
  char *unit;
  char *description;
  char *label; /* output column name, NULL: name */
  char *fmt;   /* text format of reals, dates and datetimes (ms_column.format) */
  int precision; /* -1 none */

  ms__variant base;
  size_t n_when;
  ms__expr **when_if;
  ms__variant *when;

  ms__param min, max; /* value bounds (numbers or dates) */

  int has_missing;
  ms__param miss_rate;
  size_t n_miss_when;
  ms__expr **miss_if;
  ms__param *miss_when_rate;

  /* id */
  int id_hash;
  char *prefix;
  int width;
  int64_t start;
  int id_string; /* output as string (prefix, width or hash) */
  /* string */
  size_t n_parts;
  ms__tpart *parts;
  size_t str_width;
  /* categorical */
  size_t n_labels;
  char **labels;
  /* ref: the parent's key field index */
  size_t ref_field;

  uint64_t stream; /* xxh64("table/field") */
  int cop_group;   /* -1 or group index */
  int cop_index;

  int nullable; /* may be missing for some rows */
  int broken;   /* load: name/kind/labels unusable; skipped by later passes */
  int pos_dep;
  int needed_prefix; /* needed to count rows/children of a skipped prefix */
  size_t n_deps;
  size_t *deps; /* fields of the same table read by this field */
  size_t n_pdeps;
  size_t *pdeps; /* ancestor fields read through parent.x: table << 32 | field */
} ms__field;

typedef struct {
  size_t n;
  size_t *fields;
  double *chol; /* n x n lower Cholesky factor, row-major */
  uint64_t stream;
  char *ptr;
} ms__copula;

typedef struct {
  char *name;
  char *ptr;
  char *description;
  size_t parent; /* SIZE_MAX for roots */
  int depth;
  uint64_t rows;
  ms__expr *filter;
  uint64_t max_candidates; /* 0 = automatic: 100 x the table's rows, at least 100,000,
                              unlimited when that overflows (generate.c) */
  int has_count;
  ms__dist count;
  uint64_t count_stream;
  size_t n_fields;
  ms__field *fields;
  size_t *order;
  size_t n_cop;
  ms__copula *cop;
  size_t key_field; /* first id field, SIZE_MAX when none */
  size_t n_children;
  size_t *children;
  int broken; /* load: name, parent or field names unusable */
  /* parent fields read by this table (count + fields), for gathering */
  ms_table_schema schema;
} ms__table;

typedef struct {
  char *name;
  ms__expr_type type;
  double num;
  int64_t i;
  char *str;
} ms__constant;

typedef struct {
  char *name;
  char *path;
  ms__vocab *v;
} ms__vocab_ref;

struct ms_spec {
  char *file;
  char *dir;
  char *text;
  size_t len;
  uint64_t hash;
  char *name;
  uint64_t seed;
  size_t n_const;
  ms__constant *consts;
  size_t n_tables;
  ms__table *tables;
  size_t n_vocabs;
  ms__vocab_ref *vocabs;
  struct ms__images *images; /* image fields (records/images.h); NULL when none */
  struct ms__fhir *fhir;     /* FHIR mapping (records/fhir.h); NULL until loaded */
};

/* Fills *out with the spec constant called `name` as an expression symbol
 * (slot -1, value set). Returns 1 when found, 0 otherwise. */
int ms__spec_const_symbol(const ms_spec *s, const char *name, ms__expr_symbol *out);

/* Adds a spec error (MS_ERR_SPEC) located at JSON pointer `ptr` of the spec
 * text (its key when at_key, else its value; "" or NULL: no location) with a
 * printf-style message. */
void ms__spec_verr(const ms_spec *s, ms_diag *d, const char *ptr, int at_key, const char *fmt,
                   va_list ap) __attribute__((format(printf, 5, 0)));

struct cJSON;
/* Reports every member of object `obj` (at JSON pointer ptr) whose key is
 * not in the NULL-terminated list `allowed` as a spec error at that key,
 * with the closest allowed key as a suggestion. Returns how many. */
size_t ms__spec_unknown_keys(const ms_spec *s, ms_diag *d, const struct cJSON *obj, const char *ptr,
                             const char *const *allowed);

#endif
