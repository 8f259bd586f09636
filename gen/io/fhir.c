/* FHIR R4 JSON writer (medsynth/fhir.h, docs/fhir.md).
 *
 * The sink keeps one batch of ms_generate's output: a root table's chunk and
 * the chunks of its rows' descendants, copied because chunks are borrowed
 * for the call only. When the next root chunk (or the end) arrives, the
 * batch is formatted: child rows come in their parents' order, so the rows
 * of one patient are a contiguous range in every table (found by following
 * ms_chunk.parent_rows up to the root). Patients are formatted in parallel:
 *   bundles  waves of patients are formatted in parallel, one buffer each,
 *            then written one file per patient by the calling thread;
 *   NDJSON   patients are cut into fixed parts of PART_ROWS, each formatted
 *            into per-type buffers, and parts are appended in order, so the
 *            bytes do not depend on the thread count.
 *
 * JSON is written directly (no DOM): keys in a fixed order per resource
 * type, strings escaped per RFC 8259, numbers in the column's precision.
 * Resource ids are UUIDs of (seed, mapping key, global row) (core/uuid.h).
 *
 * Invariant: nothing appears under the target name until commit; on any
 * failure the temporary directory is removed. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/pool.h"
#include "core/uuid.h"
#include "io/io_private.h"
#include "medsynth/fhir.h"
#include "medsynth/version.h"
#include "records/fhir.h"
#include "records/images.h"
#include "medsynth/dicom.h"
#include "records/plan.h"

#define PART_ROWS 256
#define WAVE_ROWS 512

typedef struct {
  ms_chunk *c;            /* copy of this batch's chunk (owned) */
  size_t cap;             /* rows c can hold */
  uint32_t *parent_rows;  /* copy */
  int has;                /* present in the current batch */
  uint32_t *root_of;      /* per row: root row (local) */
  size_t *start;          /* per root row r: first row; start[n_root] = n */
  size_t n_res;
  const ms__fhir_res **res; /* mappings of this table, table-level first */
  int enc;                /* the table's own mapping is an Encounter */
} gtab;

struct ms_fhir_writer {
  const ms_spec *spec;
  const ms__fhir *map;
  ms_fhir_params o;
  ms_diag *diag;
  ms_diag own_diag;
  ms__atomic dir;
  int dfd;
  size_t nt;
  gtab *g;
  size_t root; /* root table of the current batch, SIZE_MAX when none */
  int ended;
  int nthreads;
  ms__buf *tbuf; /* per thread (bundles) or per part (NDJSON, x types) */
  size_t n_tbuf;
  FILE *nd[MS__FHIR_RES_COUNT];
  uint64_t counts[MS__FHIR_RES_COUNT];
  uint64_t bundles;
  int failed;
};

static ms_diag *dg(ms_fhir_writer *w) { return w->diag ? w->diag : &w->own_diag; }

const char *ms_fhir_layout_name(ms_fhir_layout l) {
  return l == MS_FHIR_BUNDLES ? "fhir" : l == MS_FHIR_NDJSON ? "fhir-ndjson" : "unknown";
}

ms_fhir_layout ms_fhir_layout_from_name(const char *name) {
  if (name && !strcmp(name, "fhir")) return MS_FHIR_BUNDLES;
  if (name && !strcmp(name, "fhir-ndjson")) return MS_FHIR_NDJSON;
  return MS_FHIR_LAYOUT_COUNT;
}

void ms_fhir_params_init(ms_fhir_params *o) {
  memset(o, 0, sizeof *o);
  o->layout = MS_FHIR_BUNDLES;
}

/* ---- JSON text -------------------------------------------------------- */

/* Every put reserves first; a failed reserve sets b->cap = 0 marker via
 * the return value, which callers fold into one flag per resource. */
static int put(ms__buf *b, const char *s, size_t n) {
  if (ms__buf_reserve(b, n)) return -1;
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
  return 0;
}

static int puts_(ms__buf *b, const char *s) { return put(b, s, strlen(s)); }

/* A JSON string (quoted, escaped) of s[0..n). */
static int put_str(ms__buf *b, const char *s, size_t n) {
  if (ms__buf_reserve(b, 6 * n + 2)) return -1;
  char *o = b->p + b->len;
  *o++ = '"';
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      *o++ = '\\';
      *o++ = (char)c;
    } else if (c < 0x20) {
      static const char hx[] = "0123456789abcdef";
      *o++ = '\\';
      if (c == '\n') *o++ = 'n';
      else if (c == '\t') *o++ = 't';
      else if (c == '\r') *o++ = 'r';
      else {
        *o++ = 'u';
        *o++ = '0';
        *o++ = '0';
        *o++ = hx[c >> 4];
        *o++ = hx[c & 15];
      }
    } else {
      *o++ = (char)c;
    }
  }
  *o++ = '"';
  b->len = (size_t)(o - b->p);
  b->p[b->len] = 0;
  return 0;
}

static int put_cstr(ms__buf *b, const char *s) { return put_str(b, s, strlen(s)); }

/* "key": */
static int put_key(ms__buf *b, const char *k) {
  int e = put(b, "\"", 1);
  e |= puts_(b, k);
  e |= put(b, "\":", 2);
  return e;
}

static int put_num(ms__buf *b, double v, int precision) {
  char tmp[64];
  int n = ms__format_double(tmp, sizeof tmp, v, precision);
  /* FHIR decimals need a leading digit and no "+"; %f/%g give both. A
   * value written as "-0" is written as "0". */
  if (!strcmp(tmp, "-0")) return put(b, "0", 1);
  return put(b, tmp, (size_t)n);
}

/* ---- row access ------------------------------------------------------- */

typedef struct {
  ms_fhir_writer *w;
  ms__buf *b;
  ms__buf *bt; /* NDJSON: per-type buffers of the part (MS__FHIR_RES_COUNT) */
  size_t root_row;
  int err;
  uint64_t counts[MS__FHIR_RES_COUNT];
} ectx;

/* Walks `up` levels from (t, row); returns the table and row there. */
static void climb(const ms_fhir_writer *w, size_t *t, size_t *row, int up) {
  for (int i = 0; i < up; i++) {
    size_t p = w->spec->tables[*t].parent;
    *row = w->g[*t].parent_rows[*row];
    *t = p;
  }
}

static int cell_valid(const ms_chunk *c, int col, size_t row) {
  return !c->cols[col].valid || c->cols[col].valid[row];
}

/* Writes the JSON value of column col at row (string for text kinds). */
static int put_cell(ms__buf *b, const ms_chunk *c, int col, size_t row, int as_string) {
  const ms_column *cc = &c->schema->columns[col];
  const void *d = c->cols[col].data;
  char tmp[64];
  switch (cc->type) {
    case MS_COL_INT64:
      snprintf(tmp, sizeof tmp, "%" PRId64, ((const int64_t *)d)[row]);
      return as_string ? put_cstr(b, tmp) : puts_(b, tmp);
    case MS_COL_FLOAT64:
      if (as_string) {
        ms__format_double(tmp, sizeof tmp, ((const double *)d)[row], cc->precision);
        return put_cstr(b, tmp);
      }
      return put_num(b, ((const double *)d)[row], cc->precision);
    case MS_COL_BOOL: return puts_(b, ((const uint8_t *)d)[row] ? "true" : "false");
    case MS_COL_STRING: {
      const char *s = (const char *)d + row * (cc->str_width + 1);
      return put_str(b, s, strnlen(s, cc->str_width));
    }
    case MS_COL_CATEGORICAL: {
      int32_t k = ((const int32_t *)d)[row];
      return put_cstr(b, k >= 0 && (size_t)k < cc->n_categories ? cc->categories[k] : "");
    }
    case MS_COL_DATE:
      ms_date_format(((const int32_t *)d)[row], tmp);
      return put_cstr(b, tmp);
    case MS_COL_DATETIME:
      ms_datetime_format(((const int64_t *)d)[row], tmp);
      return put_cstr(b, tmp);
    default: return put(b, "null", 4);
  }
}

static double cell_num(const ms_chunk *c, int col, size_t row) {
  const ms_column *cc = &c->schema->columns[col];
  if (cc->type == MS_COL_INT64) return (double)((const int64_t *)c->cols[col].data)[row];
  return ((const double *)c->cols[col].data)[row];
}

static int32_t cell_code(const ms_chunk *c, int col, size_t row) {
  return ((const int32_t *)c->cols[col].data)[row];
}

/* ---- resources -------------------------------------------------------- */

static void ref_text(const ms_fhir_writer *w, ms__fhir_rtype t, const ms__uuid *u, char *out) {
  char ut[37];
  ms__uuid_text(u, ut);
  if (w->o.layout == MS_FHIR_BUNDLES)
    sprintf(out, "urn:uuid:%s", ut);
  else
    sprintf(out, "%s/%s", ms__fhir_rtype_name(t), ut);
}

/* Locates an element's source cell: returns the chunk and row, or NULL when
 * the element is constant or the cell is missing. */
static const ms_chunk *el_cell(const ms_fhir_writer *w, const ms__fhir_el *e, size_t t, size_t row,
                               size_t *rrow) {
  if (e->col < 0) return NULL;
  size_t tt = t, rr = row;
  climb(w, &tt, &rr, e->up);
  const ms_chunk *c = w->g[tt].c;
  if (!cell_valid(c, e->col, rr)) return NULL;
  *rrow = rr;
  return c;
}

/* The code text of a coded element at a row (NULL: none). */
static const char *el_code(const ms_fhir_writer *w, const ms__fhir_el *e, size_t t, size_t row,
                           char *tmp, size_t cap) {
  if (e->text) return e->text;
  size_t rr;
  const ms_chunk *c = el_cell(w, e, t, row, &rr);
  if (!c) return NULL;
  const ms_column *cc = &c->schema->columns[e->col];
  if (cc->type == MS_COL_CATEGORICAL) {
    int32_t k = cell_code(c, e->col, rr);
    if (k < 0 || (size_t)k >= cc->n_categories) return NULL;
    return e->codes ? e->codes[k] : cc->categories[k];
  }
  if (cc->type == MS_COL_STRING) {
    const char *s = (const char *)c->cols[e->col].data + rr * (cc->str_width + 1);
    snprintf(tmp, cap, "%.*s", (int)strnlen(s, cc->str_width), s);
    return tmp[0] ? tmp : NULL;
  }
  if (cc->type == MS_COL_INT64) {
    snprintf(tmp, cap, "%" PRId64, ((const int64_t *)c->cols[e->col].data)[rr]);
    return tmp;
  }
  return NULL;
}

static int put_coding(ms__buf *b, const char *system, const char *code, const char *display) {
  int e = puts_(b, "{\"system\":");
  e |= put_cstr(b, system);
  e |= puts_(b, ",\"code\":");
  e |= put_cstr(b, code);
  if (display) {
    e |= puts_(b, ",\"display\":");
    e |= put_cstr(b, display);
  }
  e |= puts_(b, "}");
  return e;
}

static int put_quantity(ms__buf *b, double v, int prec, const char *unit) {
  int e = puts_(b, "{\"value\":");
  e |= put_num(b, v, prec);
  if (unit) {
    e |= puts_(b, ",\"unit\":");
    e |= put_cstr(b, unit);
    e |= puts_(b, ",\"system\":\"http://unitsofmeasure.org\",\"code\":");
    e |= put_cstr(b, unit);
  }
  e |= puts_(b, "}");
  return e;
}

/* Writes element e (with its leading comma and key) for (t, row). */
static int put_element(ectx *x, const ms__fhir_res *r, const ms__fhir_el *e, size_t t, size_t row) {
  ms_fhir_writer *w = x->w;
  ms__buf *b = x->b;
  const char *path = ms__fhir_elem_path(e->elem);
  size_t rr = 0;
  const ms_chunk *c = el_cell(w, e, t, row, &rr);
  int err = 0;
  char tmp[256];
  switch (ms__fhir_elem_kind(e->elem)) {
    case MS__FE_IDENTIFIER: {
      if (!c) return 0;
      const ms_column *cc = &c->schema->columns[e->col];
      err |= puts_(b, ",\"identifier\":[{\"system\":");
      if (e->system) {
        err |= put_cstr(b, e->system);
      } else {
        size_t tt = t, r2 = row;
        climb(w, &tt, &r2, e->up);
        snprintf(tmp, sizeof tmp, "urn:medsynth:%s:%s.%s", ms_spec_name(w->spec)[0] ? ms_spec_name(w->spec) : "spec",
                 w->spec->tables[tt].name, cc->name);
        err |= put_cstr(b, tmp);
      }
      err |= puts_(b, ",\"value\":");
      err |= put_cell(b, c, e->col, rr, 1);
      err |= puts_(b, "}]");
      return err;
    }
    case MS__FE_GENDER: {
      if (!c) return 0;
      int32_t k = cell_code(c, e->col, rr);
      if (k < 0 || (size_t)k >= e->n_codes || !e->codes[k]) return 0;
      err |= puts_(b, ",\"gender\":");
      return err | put_cstr(b, e->codes[k]);
    }
    case MS__FE_DATE:
    case MS__FE_DATETIME:
    case MS__FE_BOOL:
    case MS__FE_STRING:
    case MS__FE_INTEGER: {
      err |= put(b, ",", 1);
      err |= put_key(b, path);
      if (c) return err | put_cell(b, c, e->col, rr, ms__fhir_elem_kind(e->elem) == MS__FE_STRING);
      if (e->text) return err | put_cstr(b, e->text);
      if (ms__fhir_elem_kind(e->elem) == MS__FE_BOOL) return err | puts_(b, e->num ? "true" : "false");
      snprintf(tmp, sizeof tmp, "%.0f", e->num);
      return err | puts_(b, tmp);
    }
    case MS__FE_CODE:
    case MS__FE_CODING: {
      const char *code = el_code(w, e, t, row, tmp, sizeof tmp);
      if (!code) return 0;
      err |= put(b, ",", 1);
      err |= put_key(b, path);
      int list = strcmp(path, "reasonCode") == 0 || strcmp(path, "type") == 0;
      if (list) err |= put(b, "[", 1);
      if (ms__fhir_elem_kind(e->elem) == MS__FE_CODING) return err | put_coding(b, e->system, code, e->display);
      err |= puts_(b, "{\"coding\":[");
      err |= put_coding(b, e->system, code, e->display);
      err |= puts_(b, "]");
      if (e->display) {
        err |= puts_(b, ",\"text\":");
        err |= put_cstr(b, e->display);
      }
      err |= puts_(b, "}");
      if (list) err |= put(b, "]", 1);
      return err;
    }
    case MS__FE_QUANTITY:
    case MS__FE_DOSE: {
      double v;
      int prec = -1;
      if (c) {
        v = cell_num(c, e->col, rr);
        prec = c->schema->columns[e->col].precision;
      } else if (e->has_num) {
        v = e->num;
      } else {
        return 0;
      }
      const char *unit = e->unit;
      if (e->unit_col >= 0) {
        const ms_chunk *uc = w->g[t].c;
        if (!cell_valid(uc, e->unit_col, row)) return 0;
        int32_t k = cell_code(uc, e->unit_col, row);
        unit = uc->schema->columns[e->unit_col].categories[k];
      }
      if (ms__fhir_elem_kind(e->elem) == MS__FE_DOSE) {
        err |= put(b, ",", 1);
        err |= put_key(b, path);
        err |= puts_(b, "[{\"doseAndRate\":[{\"doseQuantity\":");
        err |= put_quantity(b, v, prec, unit);
        return err | puts_(b, "}]}]");
      }
      err |= puts_(b, ",\"valueQuantity\":");
      return err | put_quantity(b, v, prec, unit);
    }
    case MS__FE_RANGE: {
      const ms_chunk *tc = w->g[t].c;
      int hl = e->has_low, hh = e->has_high;
      double lo = e->low, hi = e->high;
      if (e->low_col >= 0) {
        hl = cell_valid(tc, e->low_col, row);
        if (hl) lo = cell_num(tc, e->low_col, row);
      }
      if (e->high_col >= 0) {
        hh = cell_valid(tc, e->high_col, row);
        if (hh) hi = cell_num(tc, e->high_col, row);
      }
      if (!hl && !hh) return 0;
      const char *unit = e->unit;
      if (!unit)
        for (size_t i = 0; i < r->n_el; i++)
          if (ms__fhir_elem_kind(r->el[i].elem) == MS__FE_QUANTITY) unit = r->el[i].unit;
      err |= puts_(b, ",\"referenceRange\":[{");
      if (hl) {
        err |= puts_(b, "\"low\":");
        err |= put_quantity(b, lo, -1, unit);
      }
      if (hh) {
        err |= puts_(b, hl ? ",\"high\":" : "\"high\":");
        err |= put_quantity(b, hi, -1, unit);
      }
      return err | puts_(b, "}]");
    }
    case MS__FE_INTERPRETATION: {
      if (!c) return 0;
      const char *code;
      const ms_column *cc = &c->schema->columns[e->col];
      if (cc->type == MS_COL_BOOL) {
        code = ((const uint8_t *)c->cols[e->col].data)[rr] ? "A" : "N";
      } else {
        int32_t k = cell_code(c, e->col, rr);
        code = e->codes && k >= 0 && (size_t)k < e->n_codes ? e->codes[k] : NULL;
        if (!code) return 0;
      }
      err |= puts_(b, ",\"interpretation\":[{\"coding\":[");
      err |= put_coding(b, "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", code, NULL);
      return err | puts_(b, "]}]");
    }
    case MS__FE_CATEGORY: {
      const char *sys = r->type == MS__FHIR_CONDITION
                            ? "http://terminology.hl7.org/CodeSystem/condition-category"
                            : "http://terminology.hl7.org/CodeSystem/observation-category";
      err |= puts_(b, ",\"category\":[{\"coding\":[");
      err |= put_coding(b, sys, e->text, NULL);
      return err | puts_(b, "]}]");
    }
    default: return 0;
  }
}

static const ms__fhir_el *find_el(const ms__fhir_res *r, const char *path) {
  for (size_t i = 0; i < r->n_el; i++)
    if (!strcmp(ms__fhir_elem_path(r->el[i].elem), path)) return &r->el[i];
  return NULL;
}

/* Writes the elements of r whose paths are listed, in that order. */
static int put_elements(ectx *x, const ms__fhir_res *r, size_t t, size_t row, const char *const *paths) {
  int err = 0;
  for (size_t i = 0; paths[i]; i++) {
    const ms__fhir_el *e = find_el(r, paths[i]);
    if (e) err |= put_element(x, r, e, t, row);
  }
  return err;
}

static int put_ref(ms__buf *b, const char *key, const char *ref) {
  int e = put(b, ",", 1);
  e |= put_key(b, key);
  e |= puts_(b, "{\"reference\":");
  e |= put_cstr(b, ref);
  return e | puts_(b, "}");
}

/* The Encounter a resource of table t (row) belongs to: t itself (unless
 * the resource is that Encounter) or the nearest ancestor mapped to one. */
static int find_encounter(const ms_fhir_writer *w, const ms__fhir_res *r, size_t t, size_t row,
                          ms__uuid *u) {
  size_t tt = t, rr = row;
  for (;;) {
    const gtab *g = &w->g[tt];
    if (g->enc && !(tt == t && r->field_col < 0)) {
      *u = ms__uuid_make(w->o.seed, g->res[0]->key, g->c->first_row + rr);
      return 1;
    }
    size_t p = w->spec->tables[tt].parent;
    if (p == SIZE_MAX) return 0;
    rr = g->parent_rows[rr];
    tt = p;
  }
}

/* One resource: r on (t, row) of the patient whose Patient uuid is pu. */
static void emit(ectx *x, const ms__fhir_res *r, size_t t, size_t row, const ms__uuid *pu) {
  ms_fhir_writer *w = x->w;
  const ms_chunk *c = w->g[t].c;
  if (r->if_col >= 0 && (!cell_valid(c, r->if_col, row) || !((const uint8_t *)c->cols[r->if_col].data)[row]))
    return;
  if (r->skip_col >= 0 && !cell_valid(c, r->skip_col, row)) return;
  /* a resource whose required code comes from a column with no code for
   * this row (a missing value, or a label mapped to null) is not written */
  {
    const char *req = r->type == MS__FHIR_MEDICATION_STATEMENT || r->type == MS__FHIR_MEDICATION_REQUEST
                          ? "medicationCodeableConcept"
                      : r->type == MS__FHIR_PATIENT || r->type == MS__FHIR_ENCOUNTER ? NULL
                                                                                     : "code";
    const ms__fhir_el *ce = req ? find_el(r, req) : NULL;
    char tmp[256];
    if (ce && ce->col >= 0 && !el_code(w, ce, t, row, tmp, sizeof tmp)) return;
  }
  ms__buf *b = w->o.layout == MS_FHIR_BUNDLES ? x->b : &x->bt[r->type];
  x->b = b;
  ms__uuid u = ms__uuid_make(w->o.seed, r->key, c->first_row + row);
  char ut[37], ref[128];
  ms__uuid_text(&u, ut);
  const char *type = ms__fhir_rtype_name(r->type);
  int err = 0;
  if (w->o.layout == MS_FHIR_BUNDLES) {
    err |= puts_(b, x->counts[0] + x->counts[1] + x->counts[2] + x->counts[3] + x->counts[4] +
                            x->counts[5] + x->counts[6] + x->counts[7] + x->counts[8]
                        ? ",\n{\"fullUrl\":\"urn:uuid:"
                        : "\n{\"fullUrl\":\"urn:uuid:");
    err |= puts_(b, ut);
    err |= puts_(b, "\",\"resource\":{\"resourceType\":\"");
    err |= puts_(b, type);
    err |= puts_(b, "\"");
  } else {
    err |= puts_(b, "{\"resourceType\":\"");
    err |= puts_(b, type);
    err |= puts_(b, "\",\"id\":\"");
    err |= puts_(b, ut);
    err |= puts_(b, "\"");
  }
  ms__uuid eu;
  int has_enc = r->type != MS__FHIR_PATIENT && find_encounter(w, r, t, row, &eu);
  char eref[128];
  if (has_enc) ref_text(w, MS__FHIR_ENCOUNTER, &eu, eref);
  if (r->type != MS__FHIR_PATIENT) ref_text(w, MS__FHIR_PATIENT, pu, ref);
  switch (r->type) {
    case MS__FHIR_PATIENT: {
      static const char *const p1[] = {"identifier", NULL};
      err |= put_elements(x, r, t, row, p1);
      const ms__fhir_el *fam = find_el(r, "name.family"), *giv = find_el(r, "name.given");
      size_t r1 = 0, r2 = 0;
      const ms_chunk *cf = fam ? el_cell(w, fam, t, row, &r1) : NULL;
      const ms_chunk *cg = giv ? el_cell(w, giv, t, row, &r2) : NULL;
      if (cf || cg || (fam && fam->text) || (giv && giv->text)) {
        err |= puts_(b, ",\"name\":[{");
        int first = 1;
        if (cf || (fam && fam->text)) {
          err |= puts_(b, "\"family\":");
          err |= cf ? put_cell(b, cf, fam->col, r1, 1) : put_cstr(b, fam->text);
          first = 0;
        }
        if (cg || (giv && giv->text)) {
          err |= puts_(b, first ? "\"given\":[" : ",\"given\":[");
          err |= cg ? put_cell(b, cg, giv->col, r2, 1) : put_cstr(b, giv->text);
          err |= puts_(b, "]");
        }
        err |= puts_(b, "}]");
      }
      static const char *const p2[] = {"gender", "birthDate", "deceasedBoolean", NULL};
      err |= put_elements(x, r, t, row, p2);
      break;
    }
    case MS__FHIR_ENCOUNTER: {
      static const char *const p1[] = {"identifier", NULL};
      err |= put_elements(x, r, t, row, p1);
      err |= puts_(b, ",\"status\":\"finished\"");
      const ms__fhir_el *cl = find_el(r, "class");
      char tmp[128];
      if (!cl || !el_code(w, cl, t, row, tmp, sizeof tmp))
        err |= puts_(b, ",\"class\":{\"system\":\"http://terminology.hl7.org/CodeSystem/v3-ActCode\",\"code\":\"AMB\",\"display\":\"ambulatory\"}");
      else
        err |= put_element(x, r, cl, t, row);
      static const char *const p2[] = {"type", NULL};
      err |= put_elements(x, r, t, row, p2);
      err |= put_ref(b, "subject", ref);
      const ms__fhir_el *ps = find_el(r, "period.start"), *pe = find_el(r, "period.end");
      size_t r1 = 0, r2 = 0;
      const ms_chunk *cs = ps ? el_cell(w, ps, t, row, &r1) : NULL;
      const ms_chunk *ce = pe ? el_cell(w, pe, t, row, &r2) : NULL;
      if (cs || ce) {
        err |= puts_(b, ",\"period\":{");
        if (cs) {
          err |= puts_(b, "\"start\":");
          err |= put_cell(b, cs, ps->col, r1, 1);
        }
        if (ce) {
          err |= puts_(b, cs ? ",\"end\":" : "\"end\":");
          err |= put_cell(b, ce, pe->col, r2, 1);
        }
        err |= puts_(b, "}");
      }
      static const char *const p3[] = {"reasonCode", NULL};
      err |= put_elements(x, r, t, row, p3);
      break;
    }
    case MS__FHIR_OBSERVATION: {
      static const char *const p1[] = {"identifier", NULL};
      err |= put_elements(x, r, t, row, p1);
      err |= puts_(b, ",\"status\":\"final\"");
      static const char *const p2[] = {"category", "code", NULL};
      err |= put_elements(x, r, t, row, p2);
      err |= put_ref(b, "subject", ref);
      if (has_enc) err |= put_ref(b, "encounter", eref);
      static const char *const p3[] = {"effectiveDateTime", "valueQuantity", "valueCodeableConcept",
                                       "valueString", "valueBoolean", "valueInteger",
                                       "interpretation", "referenceRange", NULL};
      err |= put_elements(x, r, t, row, p3);
      break;
    }
    case MS__FHIR_CONDITION: {
      static const char *const p1[] = {"identifier", NULL};
      err |= put_elements(x, r, t, row, p1);
      err |= puts_(b, ",\"clinicalStatus\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/condition-clinical\",\"code\":\"active\"}]}"
                      ",\"verificationStatus\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/condition-ver-status\",\"code\":\"confirmed\"}]}");
      static const char *const p2[] = {"category", "code", NULL};
      err |= put_elements(x, r, t, row, p2);
      err |= put_ref(b, "subject", ref);
      if (has_enc) err |= put_ref(b, "encounter", eref);
      static const char *const p3[] = {"onsetDateTime", "recordedDate", NULL};
      err |= put_elements(x, r, t, row, p3);
      break;
    }
    case MS__FHIR_MEDICATION_STATEMENT: {
      static const char *const p1[] = {"identifier", NULL};
      err |= put_elements(x, r, t, row, p1);
      err |= puts_(b, ",\"status\":\"active\"");
      static const char *const p2[] = {"medicationCodeableConcept", NULL};
      err |= put_elements(x, r, t, row, p2);
      err |= put_ref(b, "subject", ref);
      if (has_enc) err |= put_ref(b, "context", eref);
      static const char *const p3[] = {"effectiveDateTime", "dosage", NULL};
      err |= put_elements(x, r, t, row, p3);
      break;
    }
    case MS__FHIR_MEDICATION_REQUEST: {
      static const char *const p1[] = {"identifier", NULL};
      err |= put_elements(x, r, t, row, p1);
      err |= puts_(b, ",\"status\":\"active\",\"intent\":\"order\"");
      static const char *const p2[] = {"medicationCodeableConcept", NULL};
      err |= put_elements(x, r, t, row, p2);
      err |= put_ref(b, "subject", ref);
      if (has_enc) err |= put_ref(b, "encounter", eref);
      static const char *const p3[] = {"authoredOn", "dosageInstruction", NULL};
      err |= put_elements(x, r, t, row, p3);
      break;
    }
    case MS__FHIR_PROCEDURE: {
      static const char *const p1[] = {"identifier", NULL};
      err |= put_elements(x, r, t, row, p1);
      err |= puts_(b, ",\"status\":\"completed\"");
      static const char *const p2[] = {"code", NULL};
      err |= put_elements(x, r, t, row, p2);
      err |= put_ref(b, "subject", ref);
      if (has_enc) err |= put_ref(b, "encounter", eref);
      static const char *const p3[] = {"performedDateTime", NULL};
      err |= put_elements(x, r, t, row, p3);
      break;
    }
    default: break;
  }
  if (w->o.layout == MS_FHIR_BUNDLES) {
    err |= puts_(b, "},\"request\":{\"method\":\"POST\",\"url\":\"");
    err |= puts_(b, type);
    err |= puts_(b, "\"}}");
  } else {
    err |= puts_(b, "}\n");
  }
  x->counts[r->type]++;
  x->err |= err;
}

/* The ImagingStudy of image field f for root row rr: the DICOM UIDs that
 * `medsynth records --dicom` writes for the same (seed, row) (key
 * "<table>/<field>", docs/dicom.md), so the FHIR study and the DICOM files
 * name each other. */
static int put_base64(ms__buf *b, const char *s, size_t n) {
  static const char tb[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (ms__buf_reserve(b, 4 * (n / 3 + 1) + 2)) return -1;
  char *o = b->p + b->len;
  *o++ = '"';
  size_t i = 0;
  for (; i + 2 < n; i += 3) {
    uint32_t v = (uint32_t)(uint8_t)s[i] << 16 | (uint32_t)(uint8_t)s[i + 1] << 8 | (uint8_t)s[i + 2];
    *o++ = tb[v >> 18];
    *o++ = tb[(v >> 12) & 63];
    *o++ = tb[(v >> 6) & 63];
    *o++ = tb[v & 63];
  }
  if (i < n) {
    uint32_t v = (uint32_t)(uint8_t)s[i] << 16 | (i + 1 < n ? (uint32_t)(uint8_t)s[i + 1] << 8 : 0);
    *o++ = tb[v >> 18];
    *o++ = tb[(v >> 12) & 63];
    *o++ = i + 1 < n ? tb[(v >> 6) & 63] : '=';
    *o++ = '=';
  }
  *o++ = '"';
  b->len = (size_t)(o - b->p);
  b->p[b->len] = 0;
  return 0;
}

/* The DiagnosticReport of an image: the radiology report composed from the
 * lesions measured on its mask (multimodal/report.c), pointing at the
 * ImagingStudy `sref`. */
static void emit_report(ectx *x, const char *key, uint64_t row, const char *pref, const char *sref,
                        const char *text, const char *impression) {
  ms_fhir_writer *w = x->w;
  char rk[340], ut[37];
  snprintf(rk, sizeof rk, "%s/report", key);
  ms__uuid u = ms__uuid_make(w->o.seed, rk, row);
  ms__uuid_text(&u, ut);
  ms__buf *b = w->o.layout == MS_FHIR_BUNDLES ? x->b : &x->bt[MS__FHIR_DIAGNOSTIC_REPORT];
  int e = 0;
  if (w->o.layout == MS_FHIR_BUNDLES) {
    e |= puts_(b, ",\n{\"fullUrl\":\"urn:uuid:");
    e |= puts_(b, ut);
    e |= puts_(b, "\",\"resource\":{\"resourceType\":\"DiagnosticReport\"");
  } else {
    e |= puts_(b, "{\"resourceType\":\"DiagnosticReport\",\"id\":\"");
    e |= puts_(b, ut);
    e |= puts_(b, "\"");
  }
  e |= puts_(b, ",\"status\":\"final\",\"category\":[{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/v2-0074\",\"code\":\"RAD\",\"display\":\"Radiology\"}]}]"
                ",\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"18748-4\",\"display\":\"Diagnostic imaging study\"}]}");
  e |= put_ref(b, "subject", pref);
  e |= puts_(b, ",\"imagingStudy\":[{\"reference\":");
  e |= put_cstr(b, sref);
  e |= puts_(b, "}],\"conclusion\":");
  e |= put_cstr(b, impression);
  e |= puts_(b, ",\"presentedForm\":[{\"contentType\":\"text/plain; charset=utf-8\",\"data\":");
  e |= put_base64(b, text, strlen(text));
  e |= puts_(b, ",\"title\":\"Radiology report\"}]");
  if (w->o.layout == MS_FHIR_BUNDLES)
    e |= puts_(b, "},\"request\":{\"method\":\"POST\",\"url\":\"DiagnosticReport\"}}");
  else
    e |= puts_(b, "}\n");
  x->counts[MS__FHIR_DIAGNOSTIC_REPORT]++;
  x->err |= e;
}

static void emit_imaging(ectx *x, size_t fi, const ms__image_field *f, size_t rr, const ms__uuid *pu) {
  ms_fhir_writer *w = x->w;
  const gtab *gr = &w->g[w->root];
  uint64_t row = gr->c->first_row + rr;
  char key[300], uid[MS_DICOM_UID_MAX], ref[128], ut[37], tmp[400];
  snprintf(key, sizeof key, "%s/%s", w->spec->tables[f->table].name, f->name);
  ms__uuid u = ms__uuid_make(w->o.seed, key, row);
  ms__uuid_text(&u, ut);
  ref_text(w, MS__FHIR_PATIENT, pu, ref);
  ms__buf *b = w->o.layout == MS_FHIR_BUNDLES ? x->b : &x->bt[MS__FHIR_IMAGING_STUDY];
  int plain = f->is_model || f->brain; /* Secondary Capture, as the DICOM writer stores them */
  const char *mod = plain ? "OT" : f->phantom.modality == MS_MODALITY_CT ? "CT" : "MR";
  const char *cls = plain ? "1.2.840.10008.5.1.4.1.1.7"
                    : f->phantom.modality == MS_MODALITY_CT ? "1.2.840.10008.5.1.4.1.1.2"
                                                            : "1.2.840.10008.5.1.4.1.1.4";
  int depth = f->is_model ? 1 : (f->phantom.depth > 0 ? f->phantom.depth : 1);
  int seg = !plain;
  int e = 0;
  int first = 1;
  for (int i = 0; i < MS__FHIR_RES_COUNT; i++) first &= x->counts[i] == 0;
  if (w->o.layout == MS_FHIR_BUNDLES) {
    e |= puts_(b, first ? "\n{\"fullUrl\":\"urn:uuid:" : ",\n{\"fullUrl\":\"urn:uuid:");
    e |= puts_(b, ut);
    e |= puts_(b, "\",\"resource\":{\"resourceType\":\"ImagingStudy\"");
  } else {
    e |= puts_(b, "{\"resourceType\":\"ImagingStudy\",\"id\":\"");
    e |= puts_(b, ut);
    e |= puts_(b, "\"");
  }
  snprintf(tmp, sizeof tmp, "%s/study", key);
  ms_dicom_uid(uid, w->o.seed, tmp, row);
  e |= puts_(b, ",\"identifier\":[{\"system\":\"urn:dicom:uid\",\"value\":\"urn:oid:");
  e |= puts_(b, uid);
  e |= puts_(b, "\"}],\"status\":\"available\",\"modality\":[");
  snprintf(tmp, sizeof tmp, "{\"system\":\"http://dicom.nema.org/resources/ontology/DCM\",\"code\":\"%s\"}", mod);
  e |= puts_(b, tmp);
  if (seg) e |= puts_(b, ",{\"system\":\"http://dicom.nema.org/resources/ontology/DCM\",\"code\":\"SEG\"}");
  e |= puts_(b, "]");
  e |= put_ref(b, "subject", ref);
  snprintf(tmp, sizeof tmp, ",\"numberOfSeries\":%d,\"numberOfInstances\":%d", seg ? 2 : 1, depth + seg);
  e |= puts_(b, tmp);
  e |= puts_(b, ",\"description\":");
  e |= put_cstr(b, f->name);
  e |= puts_(b, ",\"series\":[{\"uid\":\"");
  snprintf(tmp, sizeof tmp, "%s/series", key);
  ms_dicom_uid(uid, w->o.seed, tmp, row);
  e |= puts_(b, uid);
  snprintf(tmp, sizeof tmp, "\",\"number\":1,\"modality\":{\"system\":\"http://dicom.nema.org/resources/ontology/DCM\",\"code\":\"%s\"},\"numberOfInstances\":%d,\"instance\":[", mod, depth);
  e |= puts_(b, tmp);
  for (int k = 0; k < depth; k++) {
    char ik[340];
    snprintf(ik, sizeof ik, "%s/image/%d", key, k);
    ms_dicom_uid(uid, w->o.seed, ik, row);
    snprintf(tmp, sizeof tmp, "%s{\"uid\":\"%s\",\"sopClass\":{\"system\":\"urn:ietf:rfc:3986\",\"code\":\"urn:oid:%s\"},\"number\":%d}",
             k ? "," : "", uid, cls, k + 1);
    e |= puts_(b, tmp);
  }
  e |= puts_(b, "]}");
  if (seg) {
    char sk[340], su[MS_DICOM_UID_MAX];
    snprintf(sk, sizeof sk, "%s/seg-series", key);
    ms_dicom_uid(su, w->o.seed, sk, row);
    snprintf(sk, sizeof sk, "%s/seg", key);
    ms_dicom_uid(uid, w->o.seed, sk, row);
    snprintf(tmp, sizeof tmp, ",{\"uid\":\"%s\",\"number\":2,\"modality\":{\"system\":\"http://dicom.nema.org/resources/ontology/DCM\",\"code\":\"SEG\"},\"numberOfInstances\":1,\"instance\":[{\"uid\":\"%s\",\"sopClass\":{\"system\":\"urn:ietf:rfc:3986\",\"code\":\"urn:oid:1.2.840.10008.5.1.4.1.1.66.4\"},\"number\":1}]}",
             su, uid);
    e |= puts_(b, tmp);
  }
  e |= puts_(b, "]");
  if (w->o.layout == MS_FHIR_BUNDLES)
    e |= puts_(b, "},\"request\":{\"method\":\"POST\",\"url\":\"ImagingStudy\"}}");
  else
    e |= puts_(b, "}\n");
  x->counts[MS__FHIR_IMAGING_STUDY]++;
  x->err |= e;
  const char *text, *imp;
  if (w->o.report && w->o.report(w->o.report_ctx, fi, row, &text, &imp)) {
    char sref[128];
    ref_text(w, MS__FHIR_IMAGING_STUDY, &u, sref);
    emit_report(x, key, row, ref, sref, text, imp);
  }
}

/* Every resource of root row rr of the batch, tables in spec order. */
static void emit_patient(ectx *x, size_t rr) {
  ms_fhir_writer *w = x->w;
  size_t root = w->root;
  const gtab *gr = &w->g[root];
  const ms__fhir_res *pat = NULL;
  for (size_t i = 0; i < gr->n_res; i++)
    if (gr->res[i]->type == MS__FHIR_PATIENT) pat = gr->res[i];
  if (!pat) return;
  ms__uuid pu = ms__uuid_make(w->o.seed, pat->key, gr->c->first_row + rr);
  for (size_t i = 0; i < gr->n_res; i++) emit(x, gr->res[i], root, rr, &pu);
  const ms__images *im = w->spec->images;
  for (size_t i = 0; im && i < im->n; i++)
    if (im->f[i].table == root) emit_imaging(x, i, &im->f[i], rr, &pu);
  for (size_t t = 0; t < w->nt; t++) {
    const gtab *g = &w->g[t];
    if (t == root || !g->has || !g->n_res || !g->start) continue;
    for (size_t row = g->start[rr]; row < g->start[rr + 1]; row++)
      for (size_t i = 0; i < g->n_res; i++) emit(x, g->res[i], t, row, &pu);
  }
}

/* ---- batches ---------------------------------------------------------- */

static int in_subtree(const ms_spec *s, size_t t, size_t root) {
  for (; t != SIZE_MAX; t = s->tables[t].parent)
    if (t == root) return 1;
  return 0;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t k = write(fd, p, n);
    if (k < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += k;
    n -= (size_t)k;
  }
  return 0;
}

/* Formatting tasks on the library's worker threads (core/pool.h): each
 * task fills its own buffer; counts are summed (the same whatever thread
 * ran a task) and the files are written afterwards, in order, by the
 * caller. */
typedef struct {
  ms_fhir_writer *w;
  size_t a;     /* first root row (bundles) or part (NDJSON) of the wave */
  size_t nroot; /* NDJSON: root rows of the batch */
  int failed;   /* a task ran out of memory */
} fmt_job;

static void add_counts(fmt_job *j, const ectx *x) {
  for (int i = 0; i < MS__FHIR_RES_COUNT; i++)
    if (x->counts[i]) __atomic_fetch_add(&j->w->counts[i], x->counts[i], __ATOMIC_RELAXED);
  if (x->err) __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
}

/* One patient's transaction Bundle into tbuf[task]. */
static void fmt_bundle(void *ctx, size_t task, size_t worker) {
  (void)worker;
  fmt_job *j = ctx;
  size_t rr = j->a + task;
  ms__buf *b = &j->w->tbuf[task];
  b->len = 0;
  ectx x = {.w = j->w, .b = b, .root_row = rr};
  int e = puts_(b, "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":[");
  emit_patient(&x, rr);
  e |= puts_(b, "\n]}\n");
  if (e) x.err = 1;
  add_counts(j, &x);
}

/* One part of PART_ROWS patients, NDJSON lines per resource type into the
 * part's MS__FHIR_RES_COUNT buffers. */
static void fmt_part(void *ctx, size_t task, size_t worker) {
  (void)worker;
  fmt_job *j = ctx;
  size_t p = j->a + task;
  ms__buf *bt = &j->w->tbuf[task * MS__FHIR_RES_COUNT];
  for (int i = 0; i < MS__FHIR_RES_COUNT; i++) bt[i].len = 0;
  ectx x = {.w = j->w, .bt = bt};
  size_t a = p * PART_ROWS, z = a + PART_ROWS < j->nroot ? a + PART_ROWS : j->nroot;
  for (size_t rr = a; rr < z; rr++) emit_patient(&x, rr);
  add_counts(j, &x);
}

static ms_status flush_batch(ms_fhir_writer *w) {
  if (w->root == SIZE_MAX) return MS_OK;
  size_t root = w->root;
  gtab *gr = &w->g[root];
  size_t nroot = gr->c->n_rows;
  if (!nroot || !gr->n_res) goto done;
  /* root of every descendant row, and each table's row range per root row */
  for (size_t t = 0; t < w->nt; t++) {
    gtab *g = &w->g[t];
    if (t == root || !g->has || !in_subtree(w->spec, t, root)) continue;
    size_t p = w->spec->tables[t].parent;
    const gtab *gp = &w->g[p];
    size_t n = g->c->n_rows;
    free(g->root_of);
    free(g->start);
    g->root_of = ms__malloc((n ? n : 1) * sizeof *g->root_of);
    g->start = ms__malloc((nroot + 1) * sizeof *g->start);
    if (!g->root_of || !g->start) return ms_diag_add(dg(w), MS_ERR_NOMEM, NULL, 0, 0, NULL, "FHIR: out of memory");
    size_t pn = gp->c->n_rows;
    for (size_t r = 0; r < n; r++) {
      uint32_t pr = g->parent_rows ? g->parent_rows[r] : 0;
      if (!gp->has || pr >= pn)
        return ms_diag_add(dg(w), MS_ERR_INTERNAL, NULL, 0, 0, w->spec->tables[t].name,
                           "FHIR: row %zu has no parent row in the batch", r);
      g->root_of[r] = p == root ? pr : gp->root_of[pr];
    }
    size_t k = 0;
    for (size_t rr = 0; rr <= nroot; rr++) {
      while (k < n && g->root_of[k] < rr) k++;
      g->start[rr] = k;
    }
  }
  int nth = w->nthreads;
  int failed = 0;
  int fail_errno = 0;
  if (w->o.layout == MS_FHIR_BUNDLES) {
    /* Waves of WAVE_ROWS patients: formatted in parallel into one buffer
     * each, then written by this thread alone. Creating files in one
     * directory from several threads only contends for the directory's
     * lock (docs/performance.md, FHIR). */
    for (size_t a = 0; a < nroot && !failed; a += WAVE_ROWS) {
      size_t z = a + WAVE_ROWS < nroot ? a + WAVE_ROWS : nroot;
      fmt_job j = {.w = w, .a = a};
      ms__parallel(z - a, (size_t)nth, fmt_bundle, &j);
      if (j.failed) failed = 1;
      for (size_t rr = a; rr < z && !failed; rr++) {
        const ms__buf *b = &w->tbuf[rr - a];
        char name[300];
        snprintf(name, sizeof name, "%s_%06" PRIu64 ".json", w->spec->tables[root].name,
                 gr->c->first_row + rr);
        int fd = openat(w->dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (fd < 0 || write_all(fd, b->p, b->len)) {
          fail_errno = errno;
          failed = 2;
          if (fd >= 0) close(fd);
        } else if (close(fd)) {
          fail_errno = errno;
          failed = 2;
        } else {
          w->bundles++;
        }
      }
    }
  } else {
    size_t nparts = (nroot + PART_ROWS - 1) / PART_ROWS;
    size_t wave = (size_t)nth;
    for (size_t p0 = 0; p0 < nparts && !failed; p0 += wave) {
      size_t p1 = p0 + wave < nparts ? p0 + wave : nparts;
      fmt_job j = {.w = w, .a = p0, .nroot = nroot};
      ms__parallel(p1 - p0, (size_t)nth, fmt_part, &j);
      if (j.failed) failed = 1;
      for (size_t p = p0; p < p1 && !failed; p++)
        for (int i = 0; i < MS__FHIR_RES_COUNT; i++) {
          ms__buf *b = &w->tbuf[(p - p0) * MS__FHIR_RES_COUNT + i];
          if (!b->len) continue;
          if (!w->nd[i]) {
            char name[64];
            snprintf(name, sizeof name, "%s.ndjson", ms__fhir_rtype_name((ms__fhir_rtype)i));
            int fd = openat(w->dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
            w->nd[i] = fd >= 0 ? fdopen(fd, "w") : NULL;
            if (!w->nd[i]) {
              if (fd >= 0) close(fd);
              fail_errno = errno;
              failed = 2;
              break;
            }
          }
          if (fwrite(b->p, 1, b->len, w->nd[i]) != b->len) {
            fail_errno = errno;
            failed = 2;
            break;
          }
        }
    }
  }
  if (failed == 1) return ms_diag_add(dg(w), MS_ERR_NOMEM, NULL, 0, 0, NULL, "FHIR: out of memory");
  if (failed)
    return ms_diag_add(dg(w), MS_ERR_IO, w->dir.target, 0, 0, NULL, "FHIR: cannot write into '%s': %s",
                       w->dir.tmp, strerror(fail_errno));
done:
  for (size_t t = 0; t < w->nt; t++) w->g[t].has = 0;
  w->root = SIZE_MAX;
  return MS_OK;
}

static ms_status sink_begin(void *ctx, const ms_table_schema *s, uint64_t expected) {
  (void)s;
  (void)expected;
  ms_fhir_writer *w = ctx;
  return w->failed ? MS_ERR_INVALID : MS_OK;
}

static ms_status copy_chunk(ms_fhir_writer *w, gtab *g, const ms_chunk *c) {
  if (!g->c || g->cap < c->n_rows) {
    ms_chunk_free(g->c);
    g->c = NULL;
    free(g->parent_rows);
    size_t cap = c->n_rows < 64 ? 64 : c->n_rows;
    g->parent_rows = ms__malloc(cap * sizeof *g->parent_rows);
    if (!g->parent_rows || ms_chunk_new(&g->c, c->schema, cap) != MS_OK) {
      g->cap = 0;
      return ms_diag_add(dg(w), MS_ERR_NOMEM, NULL, 0, 0, NULL, "FHIR: out of memory");
    }
    g->cap = cap;
  }
  ms_chunk *d = g->c;
  d->first_row = c->first_row;
  d->n_rows = c->n_rows;
  for (size_t j = 0; j < c->schema->n_columns; j++) {
    size_t vs = ms_column_value_size(&c->schema->columns[j]);
    memcpy(d->cols[j].data, c->cols[j].data, vs * c->n_rows);
    if (d->cols[j].valid) {
      if (c->cols[j].valid)
        memcpy(d->cols[j].valid, c->cols[j].valid, c->n_rows);
      else
        memset(d->cols[j].valid, 1, c->n_rows);
    }
  }
  if (c->parent_rows) memcpy(g->parent_rows, c->parent_rows, c->n_rows * sizeof *g->parent_rows);
  g->has = 1;
  return MS_OK;
}

static ms_status sink_chunk(void *ctx, const ms_chunk *c) {
  ms_fhir_writer *w = ctx;
  if (w->failed) return MS_ERR_INVALID;
  if (w->o.cancel && *w->o.cancel) {
    w->failed = 1;
    return ms_diag_add(dg(w), MS_ERR_CANCELLED, w->dir.target, 0, 0, NULL,
                       "cancelled; nothing written");
  }
  size_t t = ms_spec_table_find(w->spec, c->schema->name);
  if (t == SIZE_MAX) return MS_OK;
  ms_status st = MS_OK;
  if (w->spec->tables[t].parent == SIZE_MAX) {
    st = flush_batch(w);
    if (st == MS_OK) w->root = t;
  } else if (!c->parent_rows) {
    st = ms_diag_add(dg(w), MS_ERR_INVALID, NULL, 0, 0, c->schema->name,
                     "FHIR output needs the chunks of ms_generate (with parent rows)");
  }
  if (st == MS_OK) st = copy_chunk(w, &w->g[t], c);
  if (st) w->failed = 1;
  return st;
}

static ms_status sink_end(void *ctx, const char *name) {
  (void)name;
  ms_fhir_writer *w = ctx;
  if (w->failed) return MS_ERR_INVALID;
  ms_status st = flush_batch(w);
  if (st) w->failed = 1;
  return st;
}

ms_sink ms_fhir_writer_sink(ms_fhir_writer *w) {
  ms_sink s = {.ctx = w, .begin_table = sink_begin, .write_chunk = sink_chunk, .end_table = sink_end};
  return s;
}

static void writer_free(ms_fhir_writer *w) {
  if (!w) return;
  for (size_t t = 0; w->g && t < w->nt; t++) {
    ms_chunk_free(w->g[t].c);
    free(w->g[t].parent_rows);
    free(w->g[t].root_of);
    free(w->g[t].start);
    free(w->g[t].res);
  }
  free(w->g);
  for (size_t i = 0; w->tbuf && i < w->n_tbuf; i++) free(w->tbuf[i].p);
  free(w->tbuf);
  for (int i = 0; i < MS__FHIR_RES_COUNT; i++)
    if (w->nd[i]) fclose(w->nd[i]);
  if (w->dfd >= 0) close(w->dfd);
  ms_diag_deinit(&w->own_diag);
  free(w);
}

ms_status ms_fhir_writer_open(ms_fhir_writer **out, const char *dir, const ms_spec *spec,
                              const ms_fhir_params *opts, ms_diag *d) {
  *out = NULL;
  ms_fhir_writer *w = ms__calloc(1, sizeof *w);
  if (!w) return ms_diag_add(d, MS_ERR_NOMEM, dir, 0, 0, NULL, "FHIR: out of memory");
  w->dfd = -1;
  ms_diag_init(&w->own_diag);
  if (opts)
    w->o = *opts;
  else
    ms_fhir_params_init(&w->o);
  w->spec = spec;
  w->map = spec->fhir;
  w->diag = d;
  w->root = SIZE_MAX;
  if (w->o.layout != MS_FHIR_BUNDLES && w->o.layout != MS_FHIR_NDJSON) {
    writer_free(w);
    return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, NULL, "unknown FHIR layout");
  }
  if (!w->map) {
    writer_free(w);
    return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, NULL, "spec has no FHIR mapping");
  }
  w->nthreads = w->o.threads > 0 ? w->o.threads : omp_get_max_threads();
  if (w->nthreads > 256) w->nthreads = 256;
  w->nt = spec->n_tables;
  w->g = ms__calloc(w->nt ? w->nt : 1, sizeof *w->g);
  w->n_tbuf = w->o.layout == MS_FHIR_NDJSON ? (size_t)w->nthreads * MS__FHIR_RES_COUNT : WAVE_ROWS;
  w->tbuf = ms__calloc(w->n_tbuf, sizeof *w->tbuf);
  if (!w->g || !w->tbuf) {
    writer_free(w);
    return ms_diag_add(d, MS_ERR_NOMEM, dir, 0, 0, NULL, "FHIR: out of memory");
  }
  for (size_t t = 0; t < w->nt; t++) {
    gtab *g = &w->g[t];
    g->res = ms__calloc(w->map->n ? w->map->n : 1, sizeof *g->res);
    if (!g->res) {
      writer_free(w);
      return ms_diag_add(d, MS_ERR_NOMEM, dir, 0, 0, NULL, "FHIR: out of memory");
    }
    /* table-level mapping first, then field-level in field order */
    for (int pass = 0; pass < 2; pass++)
      for (size_t i = 0; i < w->map->n; i++) {
        const ms__fhir_res *r = &w->map->r[i];
        if (r->table == t && (pass == 0) == (r->field_col < 0)) g->res[g->n_res++] = r;
      }
    g->enc = g->n_res && g->res[0]->field_col < 0 && g->res[0]->type == MS__FHIR_ENCOUNTER;
  }
  ms_status st = ms__atomic_mkdir_whole(&w->dir, dir, w->o.force, d);
  if (st) {
    writer_free(w);
    return st;
  }
  w->dfd = open(w->dir.tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (w->dfd < 0) {
    st = ms_diag_add(d, MS_ERR_IO, dir, 0, 0, NULL, "cannot open '%s': %s", w->dir.tmp, strerror(errno));
    ms__atomic_discard(&w->dir);
    writer_free(w);
    return st;
  }
  *out = w;
  return MS_OK;
}

uint64_t ms_fhir_writer_resources(const ms_fhir_writer *w) {
  uint64_t n = 0;
  for (int i = 0; i < MS__FHIR_RES_COUNT; i++) n += w->counts[i];
  return n;
}

uint64_t ms_fhir_writer_bundles(const ms_fhir_writer *w) { return w->bundles; }

static ms_status write_manifest(ms_fhir_writer *w, ms_diag *d) {
  ms__buf b = {0};
  int e = puts_(&b, "{\n");
  if (!w->o.no_timestamp) {
    time_t now = time(NULL);
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    if (sde && *sde) now = (time_t)strtoll(sde, NULL, 10);
    char ts[64];
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    e |= puts_(&b, "  \"transactionTime\": ");
    e |= put_cstr(&b, ts);
    e |= puts_(&b, ",\n");
  }
  e |= puts_(&b, "  \"request\": \"medsynth records\",\n  \"requiresAccessToken\": false,\n");
  e |= puts_(&b, w->o.layout == MS_FHIR_BUNDLES ? "  \"layout\": \"bundles\",\n" : "  \"layout\": \"ndjson\",\n");
  e |= puts_(&b, "  \"output\": [");
  int first = 1;
  char tmp[128];
  for (int i = 0; i < MS__FHIR_RES_COUNT; i++) {
    if (!w->counts[i]) continue;
    e |= puts_(&b, first ? "\n    {\"type\": " : ",\n    {\"type\": ");
    e |= put_cstr(&b, ms__fhir_rtype_name((ms__fhir_rtype)i));
    if (w->o.layout == MS_FHIR_NDJSON) {
      snprintf(tmp, sizeof tmp, "%s.ndjson", ms__fhir_rtype_name((ms__fhir_rtype)i));
      e |= puts_(&b, ", \"url\": ");
      e |= put_cstr(&b, tmp);
    }
    snprintf(tmp, sizeof tmp, ", \"count\": %" PRIu64 "}", w->counts[i]);
    e |= puts_(&b, tmp);
    first = 0;
  }
  e |= puts_(&b, "\n  ],\n  \"error\": [],\n");
  snprintf(tmp, sizeof tmp, "  \"bundles\": %" PRIu64 ",\n", w->bundles);
  e |= puts_(&b, tmp);
  e |= puts_(&b, "  \"medsynth\": {\"version\": ");
  e |= put_cstr(&b, MS_VERSION_STRING);
  e |= puts_(&b, ", \"spec_name\": ");
  e |= put_cstr(&b, ms_spec_name(w->spec));
  snprintf(tmp, sizeof tmp, ", \"spec_xxh64\": \"%016" PRIx64 "\", \"seed\": %" PRIu64, ms_spec_hash(w->spec),
           w->o.seed);
  e |= puts_(&b, tmp);
  e |= puts_(&b, ", \"mapping\": ");
  e |= puts_(&b, w->map->is_default ? "\"default\"" : "\"spec\"");
  if (w->o.invocation) { /* a JSON object (the CLI's provenance) */
    e |= puts_(&b, ", \"invocation\": ");
    e |= puts_(&b, w->o.invocation);
  }
  e |= puts_(&b, "}\n}\n");
  if (e) {
    free(b.p);
    return ms_diag_add(d, MS_ERR_NOMEM, NULL, 0, 0, NULL, "FHIR: out of memory");
  }
  int fd = openat(w->dfd, "manifest.json", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  ms_status st = MS_OK;
  if (fd < 0 || write_all(fd, b.p, b.len) || close(fd))
    st = ms_diag_add(d, MS_ERR_IO, w->dir.target, 0, 0, NULL, "cannot write manifest.json: %s",
                     strerror(errno));
  free(b.p);
  return st;
}

ms_status ms_fhir_writer_commit(ms_fhir_writer *w, ms_diag *d) {
  if (!w) return MS_ERR_INVALID;
  ms_status st = w->failed ? MS_ERR_INVALID : flush_batch(w);
  for (int i = 0; i < MS__FHIR_RES_COUNT && st == MS_OK; i++)
    if (w->nd[i]) {
      int bad = fclose(w->nd[i]) != 0;
      w->nd[i] = NULL;
      if (bad) st = ms_diag_add(d, MS_ERR_IO, w->dir.target, 0, 0, NULL, "FHIR: write failed: %s", strerror(errno));
    }
  if (st == MS_OK) st = write_manifest(w, d);
  if (st == MS_OK) st = ms__atomic_commit(&w->dir, d);
  if (st != MS_OK) {
    ms_fhir_writer_abort(w);
    return st;
  }
  ms__atomic_deinit(&w->dir);
  writer_free(w);
  return MS_OK;
}

void ms_fhir_writer_abort(ms_fhir_writer *w) {
  if (!w) return;
  for (int i = 0; i < MS__FHIR_RES_COUNT; i++)
    if (w->nd[i]) {
      fclose(w->nd[i]);
      w->nd[i] = NULL;
    }
  ms__atomic_discard(&w->dir);
  writer_free(w);
}
