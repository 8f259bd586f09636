/* FHIR R4 mapping of a spec: the compiled form of the "fhir" sections of
 * tables and fields (docs/fhir.md), shared by the loader hook (fhir_map.c)
 * and the FHIR writer (gen/io/fhir.c).
 *
 * A mapping turns each row of a table into at most one resource per
 * declared mapping: a table's own "fhir" object makes one resource per row
 * (Patient for a root table, Encounter/Observation/... for child tables);
 * a field's "fhir" object makes one more resource per row from that field
 * (a vital sign as an Observation, a diagnosis flag as a Condition). Every
 * element refers to written columns of its table by output column index, so
 * the writer reads the very chunks the records engine hands to the sink.
 *
 * Invariants after a successful load: every resource type and element path
 * is one of the supported ones (k_elements in fhir_map.c); every code has a
 * system URI; every unit (fixed, or each label of a unit column) is valid
 * UCUM syntax over known atoms; every mapped subtree's root table maps to
 * Patient, so every resource has a subject that resolves inside its bundle.
 * A spec without any "fhir" section gets the default mapping (root tables
 * to Patient from columns named by convention), flagged is_default.
 *
 * Private to the library. */
#ifndef MS_RECORDS_FHIR_H
#define MS_RECORDS_FHIR_H

#include <stddef.h>
#include <stdint.h>

#include "medsynth/status.h"

typedef enum {
  MS__FHIR_PATIENT,
  MS__FHIR_ENCOUNTER,
  MS__FHIR_OBSERVATION,
  MS__FHIR_CONDITION,
  MS__FHIR_MEDICATION_STATEMENT,
  MS__FHIR_MEDICATION_REQUEST,
  MS__FHIR_PROCEDURE,
  MS__FHIR_IMAGING_STUDY,
  MS__FHIR_DIAGNOSTIC_REPORT,
  MS__FHIR_RES_COUNT
} ms__fhir_rtype;

const char *ms__fhir_rtype_name(ms__fhir_rtype t);

/* How an element is written (see the element table in fhir_map.c). */
typedef enum {
  MS__FE_IDENTIFIER,   /* identifier[0] {system, value} from a column */
  MS__FE_NAME_FAMILY,  /* name[0].family */
  MS__FE_NAME_GIVEN,   /* name[0].given[0] */
  MS__FE_GENDER,       /* administrative gender code */
  MS__FE_DATE,         /* date (birthDate) */
  MS__FE_DATETIME,     /* dateTime (effectiveDateTime, onsetDateTime, ...) */
  MS__FE_BOOL,         /* boolean (deceasedBoolean, valueBoolean) */
  MS__FE_STRING,       /* string (valueString) */
  MS__FE_INTEGER,      /* integer (valueInteger) */
  MS__FE_CODE,         /* CodeableConcept {coding:[{system, code, display}]} */
  MS__FE_CODING,       /* Coding (Encounter.class) */
  MS__FE_QUANTITY,     /* Quantity {value, unit, system: UCUM, code} */
  MS__FE_DOSE,         /* dosage[0].doseAndRate[0].doseQuantity (UCUM) */
  MS__FE_RANGE,        /* referenceRange[0] {low, high} */
  MS__FE_INTERPRETATION, /* interpretation[0]: a bool column (A/N) or coded */
  MS__FE_CATEGORY,     /* category[0] in the resource's category system */
  MS__FE_KIND_COUNT
} ms__fhir_ekind;

typedef struct {
  int elem;        /* index into the element table (ms__fhir_elem_*) */
  int col;         /* source output column, -1 for a constant */
  int up;          /* col is a column of the ancestor `up` levels above (parent.x) */
  char *text;      /* constant code / string; NULL when from a column */
  double num;      /* constant number (has_num) */
  int has_num;
  char *system;    /* CODE/CODING/IDENTIFIER: system URI */
  char *display;   /* CODE/CODING: constant display */
  char **codes;    /* CODE/CODING/GENDER/INTERPRETATION from a categorical
                      column: code per category (NULL: category skipped) */
  size_t n_codes;
  char *unit;      /* QUANTITY/DOSE/RANGE: constant UCUM unit */
  int unit_col;    /* QUANTITY: UCUM unit from a categorical column, or -1 */
  int low_col, high_col;     /* RANGE: from columns (-1: constant or none) */
  double low, high;
  int has_low, has_high;
} ms__fhir_el;

typedef struct {
  ms__fhir_rtype type;
  size_t table;
  int field_col;   /* field-level mapping: the field's column; -1 for table */
  int if_col;      /* bool column: write the resource only where true; -1 */
  int skip_col;    /* the resource is skipped where this column is missing */
  char *key;       /* "table" or "table/field": the id stream */
  char *ptr;       /* JSON pointer of the mapping */
  size_t n_el;
  ms__fhir_el *el;
} ms__fhir_res;

typedef struct ms__fhir {
  int is_default;
  size_t n;
  ms__fhir_res *r; /* table order; within a table: table-level first */
} ms__fhir;

/* Element table access. */
const char *ms__fhir_elem_path(int elem);
ms__fhir_ekind ms__fhir_elem_kind(int elem);

struct ms_spec;
struct cJSON;

/* Loader hook (spec.c, after the schemas are built): parses, validates and
 * compiles every "fhir" section into s->fhir, or the default mapping when
 * there is none. Returns the number of errors added to d. */
size_t ms__fhir_load(struct ms_spec *s, const struct cJSON *tables, ms_diag *d);
void ms__fhir_free(ms__fhir *f);

/* UCUM syntax check of `unit` (case-sensitive UCUM, the common atoms and
 * prefixes, annotations, exponents, 10*n factors). Returns 0 when valid;
 * otherwise 1 and a reason in why (cap bytes). */
int ms__ucum_check(const char *unit, char *why, size_t cap);

#endif
