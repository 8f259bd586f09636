/* FHIR R4 mapping: parses, validates and compiles the "fhir" sections of a
 * spec (records/fhir.h, docs/fhir.md), and checks UCUM unit syntax.
 *
 * Every problem is reported at once with its JSON pointer and line:column:
 * an unknown resource type or element path (with a "did you mean"), a code
 * without a system, a unit that is not UCUM, a column that is hidden,
 * missing or of the wrong kind, a child mapping whose root table does not map
 * to Patient (its resources would have no subject to reference).
 *
 * UCUM: The Unified Code for Units of Measure (https://ucum.org/ucum), case
 * sensitive form. The checker follows its grammar (main term, components
 * joined by '.' and '/', exponents, annotations in braces, parentheses) over
 * the atoms that clinical data uses (SI base and derived units, clinical
 * units such as mm[Hg], [IU], 10*3, %) with the metric prefixes on metric
 * atoms. It rejects "mmHg", "years" or "bpm", which FHIR servers reject. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/diag.h"
#include "core/jsonloc.h"
#include "core/suggest.h"
#include "records/fhir.h"
#include "records/plan.h"

/* ---- UCUM ------------------------------------------------------------- */

/* Metric atoms take prefixes; others do not. */
static const char *const k_ucum_metric[] = {
    "m", "g", "s", "rad", "K", "C", "cd", "mol", "sr", "Hz", "N", "Pa", "J", "W", "A", "V",
    "F", "Ohm", "S", "Wb", "Cel", "T", "H", "lm", "lx", "Bq", "Gy", "Sv", "l", "L", "ar", "t",
    "bar", "u", "eV", "[IU]", "[iU]", "U", "eq", "osm", "kat", "cal", "m[Hg]", "m[H2O]", "g%",
    "[CFU]", "Ci", "R", "P", "St", "G", "b", "atm", "mho", "dyn", "erg", "Gal", "Mx", "Oe", "Gb",
    "RAD", "REM", "Np", "B", "B[SPL]", "B[V]", "B[mV]", "B[W]", "B[kW]", "sph", "[ppth]",
    NULL};
static const char *const k_ucum_plain[] = {
    "min", "h", "d", "wk", "mo", "a", "a_t", "a_j", "a_g", "mo_j", "mo_g", "%", "[ppm]",
    "[ppb]", "[pptr]", "[in_i]", "[ft_i]", "[yd_i]", "[mi_i]", "[lb_av]", "[oz_av]", "[degF]",
    "[degR]", "[drp]", "[pH]", "[HPF]", "[LPF]", "[arb'U]", "[USP'U]", "[pi]", "deg", "'", "''",
    "gon", "[gal_us]", "[qt_us]", "[pt_us]", "[foz_us]", "[tsp_us]", "[tbs_us]", "[cup_us]",
    "[mesh_i]", "[Ch]", "[hp'_X]", "[hp'_C]", "[kp_X]", "[kp_C]", "[beth'U]", "[todd'U]",
    "[dye'U]", "[smgy'U]", "[bdsk'U]", "[ka'U]", "[knk'U]", "[mclg'U]", "[tb'U]", "[GPL'U]",
    "[MPL'U]", "[APL'U]", "[EU]", "[FFU]", "[PFU]", "[Lf]", "[D'ag'U]", "[mg'U]", "[S]",
    "[diop]", "[p'diop]", "%[slope]", "[lne]", "[pca]", "[in_i'Hg]", "[in_i'H2O]", "[iU]",
    "10*", "10^", "[mi_us]", "[ft_us]", "[in_us]", NULL};
static const char *const k_ucum_prefix[] = {"Y", "Z", "E", "P", "T", "G", "M", "k", "h", "da",
                                            "d", "c", "m", "u", "n", "p", "f", "a", "z", "y",
                                            "Ki", "Mi", "Gi", "Ti", NULL};

static int in_list(const char *s, size_t n, const char *const *list) {
  for (size_t i = 0; list[i]; i++)
    if (strlen(list[i]) == n && !memcmp(list[i], s, n)) return 1;
  return 0;
}

static int ucum_simple(const char *s, size_t n) {
  if (in_list(s, n, k_ucum_metric) || in_list(s, n, k_ucum_plain)) return 1;
  for (size_t i = 0; k_ucum_prefix[i]; i++) {
    size_t pl = strlen(k_ucum_prefix[i]);
    if (pl < n && !memcmp(s, k_ucum_prefix[i], pl) && in_list(s + pl, n - pl, k_ucum_metric))
      return 1;
  }
  return 0;
}

typedef struct {
  const char *s;
  size_t i;
  char *why;
  size_t cap;
} ucum_p;

static int ucum_fail(ucum_p *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ucum_fail(ucum_p *p, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->why, p->cap, fmt, ap);
  va_end(ap);
  return 1;
}

static int ucum_term(ucum_p *p);

static int ucum_annotation(ucum_p *p) {
  /* '{' printable ASCII except '{' '}' ... '}' */
  size_t start = p->i++;
  while (p->s[p->i] && p->s[p->i] != '}') {
    unsigned char c = (unsigned char)p->s[p->i];
    if (c < 33 || c > 126 || c == '{')
      return ucum_fail(p, "bad character in annotation at offset %zu", p->i);
    p->i++;
  }
  if (p->s[p->i] != '}') return ucum_fail(p, "annotation at offset %zu is not closed", start);
  p->i++;
  return 0;
}

static int ucum_component(ucum_p *p) {
  const char *s = p->s;
  if (s[p->i] == '(') {
    p->i++;
    if (ucum_term(p)) return 1;
    if (s[p->i] != ')') return ucum_fail(p, "missing ')' at offset %zu", p->i);
    p->i++;
    return 0;
  }
  if (s[p->i] == '{') return ucum_annotation(p);
  /* a symbol up to an operator, a parenthesis or an annotation; brackets
   * inside a symbol are part of it */
  size_t a = p->i;
  int depth = 0;
  while (s[p->i]) {
    char c = s[p->i];
    if (c == '[') depth++;
    else if (c == ']') depth--;
    else if (!depth && (c == '.' || c == '/' || c == '(' || c == ')' || c == '{')) break;
    if ((unsigned char)c <= 32 || (unsigned char)c > 126)
      return ucum_fail(p, "unexpected character at offset %zu", p->i);
    p->i++;
  }
  size_t b = p->i;
  if (b == a) return ucum_fail(p, "missing unit at offset %zu", a);
  /* a pure number is a factor */
  size_t k = a;
  while (k < b && isdigit((unsigned char)s[k])) k++;
  if (k == b) goto annot;
  /* trailing exponent: optional sign and digits after the symbol */
  size_t e = b;
  while (e > a && isdigit((unsigned char)s[e - 1])) e--;
  if (e < b && e > a && (s[e - 1] == '+' || s[e - 1] == '-')) e--;
  if (e == a) e = b;
  if (!ucum_simple(s + a, e - a)) {
    /* maybe the digits belong to the symbol */
    if (e != b && ucum_simple(s + a, b - a)) goto annot;
    return ucum_fail(p, "\"%.*s\" is not a UCUM unit", (int)(e - a), s + a);
  }
annot:
  if (s[p->i] == '{') return ucum_annotation(p);
  return 0;
}

static int ucum_term(ucum_p *p) {
  if (ucum_component(p)) return 1;
  while (p->s[p->i] == '.' || p->s[p->i] == '/') {
    p->i++;
    if (ucum_component(p)) return 1;
  }
  return 0;
}

int ms__ucum_check(const char *unit, char *why, size_t cap) {
  char dummy[8];
  if (!why || !cap) {
    why = dummy;
    cap = sizeof dummy;
  }
  why[0] = 0;
  if (!unit || !*unit) {
    snprintf(why, cap, "empty unit");
    return 1;
  }
  ucum_p p = {.s = unit, .i = 0, .why = why, .cap = cap};
  if (unit[0] == '/') p.i = 1;
  if (ucum_term(&p)) return 1;
  if (unit[p.i]) return ucum_fail(&p, "unexpected '%c' at offset %zu", unit[p.i], p.i);
  return 0;
}

/* Common non-UCUM spellings and their UCUM form, for the error message. */
static const char *ucum_hint(const char *u) {
  static const char *const k[][2] = {
      {"mmHg", "mm[Hg]"}, {"years", "a"}, {"year", "a"}, {"yr", "a"}, {"bpm", "/min"},
      {"beats/min", "/min"}, {"breaths/min", "/min"}, {"IU", "[IU]"}, {"IU/L", "[IU]/L"},
      {"mIU/L", "m[IU]/L"}, {"kg/m^2", "kg/m2"}, {"degC", "Cel"}, {"C", "Cel"},
      {"mL/min/1.73m2", "mL/min/{1.73_m2}"}, {"pack-years", "{pack-years}"}, {"days", "d"},
      {"hours", "h"}, {"months", "mo"}, {"weeks", "wk"}, {"cells/uL", "/uL"}};
  for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
    if (!strcmp(u, k[i][0])) return k[i][1];
  return NULL;
}

/* ---- element table ---------------------------------------------------- */

static const char *const k_rtype[MS__FHIR_RES_COUNT + 1] = {
    "Patient",   "Encounter",    "Observation",      "Condition", "MedicationStatement",
    "MedicationRequest", "Procedure", "ImagingStudy", "DiagnosticReport", NULL};

const char *ms__fhir_rtype_name(ms__fhir_rtype t) {
  return (unsigned)t < MS__FHIR_RES_COUNT ? k_rtype[t] : "?";
}

typedef struct {
  ms__fhir_rtype res;
  const char *path;
  ms__fhir_ekind kind;
} elem_def;

static const elem_def k_elements[] = {
    {MS__FHIR_PATIENT, "identifier", MS__FE_IDENTIFIER},
    {MS__FHIR_PATIENT, "name.family", MS__FE_NAME_FAMILY},
    {MS__FHIR_PATIENT, "name.given", MS__FE_NAME_GIVEN},
    {MS__FHIR_PATIENT, "gender", MS__FE_GENDER},
    {MS__FHIR_PATIENT, "birthDate", MS__FE_DATE},
    {MS__FHIR_PATIENT, "deceasedBoolean", MS__FE_BOOL},
    {MS__FHIR_ENCOUNTER, "identifier", MS__FE_IDENTIFIER},
    {MS__FHIR_ENCOUNTER, "class", MS__FE_CODING},
    {MS__FHIR_ENCOUNTER, "type", MS__FE_CODE},
    {MS__FHIR_ENCOUNTER, "period.start", MS__FE_DATETIME},
    {MS__FHIR_ENCOUNTER, "period.end", MS__FE_DATETIME},
    {MS__FHIR_ENCOUNTER, "reasonCode", MS__FE_CODE},
    {MS__FHIR_OBSERVATION, "identifier", MS__FE_IDENTIFIER},
    {MS__FHIR_OBSERVATION, "category", MS__FE_CATEGORY},
    {MS__FHIR_OBSERVATION, "code", MS__FE_CODE},
    {MS__FHIR_OBSERVATION, "effectiveDateTime", MS__FE_DATETIME},
    {MS__FHIR_OBSERVATION, "valueQuantity", MS__FE_QUANTITY},
    {MS__FHIR_OBSERVATION, "valueCodeableConcept", MS__FE_CODE},
    {MS__FHIR_OBSERVATION, "valueString", MS__FE_STRING},
    {MS__FHIR_OBSERVATION, "valueBoolean", MS__FE_BOOL},
    {MS__FHIR_OBSERVATION, "valueInteger", MS__FE_INTEGER},
    {MS__FHIR_OBSERVATION, "interpretation", MS__FE_INTERPRETATION},
    {MS__FHIR_OBSERVATION, "referenceRange", MS__FE_RANGE},
    {MS__FHIR_CONDITION, "identifier", MS__FE_IDENTIFIER},
    {MS__FHIR_CONDITION, "category", MS__FE_CATEGORY},
    {MS__FHIR_CONDITION, "code", MS__FE_CODE},
    {MS__FHIR_CONDITION, "onsetDateTime", MS__FE_DATETIME},
    {MS__FHIR_CONDITION, "recordedDate", MS__FE_DATETIME},
    {MS__FHIR_MEDICATION_STATEMENT, "identifier", MS__FE_IDENTIFIER},
    {MS__FHIR_MEDICATION_STATEMENT, "medicationCodeableConcept", MS__FE_CODE},
    {MS__FHIR_MEDICATION_STATEMENT, "effectiveDateTime", MS__FE_DATETIME},
    {MS__FHIR_MEDICATION_STATEMENT, "dosage", MS__FE_DOSE},
    {MS__FHIR_MEDICATION_REQUEST, "identifier", MS__FE_IDENTIFIER},
    {MS__FHIR_MEDICATION_REQUEST, "medicationCodeableConcept", MS__FE_CODE},
    {MS__FHIR_MEDICATION_REQUEST, "authoredOn", MS__FE_DATETIME},
    {MS__FHIR_MEDICATION_REQUEST, "dosageInstruction", MS__FE_DOSE},
    {MS__FHIR_PROCEDURE, "identifier", MS__FE_IDENTIFIER},
    {MS__FHIR_PROCEDURE, "code", MS__FE_CODE},
    {MS__FHIR_PROCEDURE, "performedDateTime", MS__FE_DATETIME},
};
#define N_ELEMENTS ((int)(sizeof k_elements / sizeof k_elements[0]))

const char *ms__fhir_elem_path(int e) { return e >= 0 && e < N_ELEMENTS ? k_elements[e].path : "?"; }
ms__fhir_ekind ms__fhir_elem_kind(int e) {
  return e >= 0 && e < N_ELEMENTS ? k_elements[e].kind : MS__FE_KIND_COUNT;
}

static int elem_find(ms__fhir_rtype r, const char *path) {
  for (int i = 0; i < N_ELEMENTS; i++)
    if (k_elements[i].res == r && !strcmp(k_elements[i].path, path)) return i;
  return -1;
}

/* Resource types a spec may map tables and fields to (ImagingStudy and
 * DiagnosticReport are written from image fields, not declared). */
static int mappable(ms__fhir_rtype r) {
  return r != MS__FHIR_IMAGING_STUDY && r != MS__FHIR_DIAGNOSTIC_REPORT;
}

/* ---- loader ----------------------------------------------------------- */

typedef struct {
  ms_spec *s;
  ms_diag *d;
  size_t errs;
  ms__fhir *f;
  int nomem; /* an allocation failed (reported once, as MS_ERR_NOMEM) */
} L;

/* An allocation of the mapping failed: one out-of-memory message (the spec
 * load then returns MS_ERR_NOMEM); NULL for the caller to return. */
static void *l_oom(L *l) {
  if (!l->nomem) ms__diag_nomem(l->d, l->s->file, NULL, "the FHIR mapping");
  l->nomem = 1;
  l->errs++;
  return NULL;
}

static char *l_dup(L *l, const char *s) {
  char *p = ms__strdup(s);
  return p ? p : l_oom(l);
}

static void *l_calloc(L *l, size_t n, size_t size) {
  void *p = ms__calloc(n, size);
  return p ? p : l_oom(l);
}

static void err_at(L *l, const char *ptr, int at_key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void err_at(L *l, const char *ptr, int at_key, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ms__spec_verr(l->s, l->d, ptr, at_key, fmt, ap);
  va_end(ap);
  l->errs++;
}

static const cJSON *member(const cJSON *obj, const char *key) {
  return cJSON_GetObjectItemCaseSensitive(obj, key);
}

static void check_keys(L *l, const cJSON *obj, const char *ptr, const char *const *allowed) {
  if (!l->nomem) l->errs += ms__spec_unknown_keys(l->s, l->d, obj, ptr, allowed);
}

static int is_uri(const char *s) {
  return !strncmp(s, "http://", 7) || !strncmp(s, "https://", 8) || !strncmp(s, "urn:", 4);
}

/* Resolves a column name of table ti ("x", "parent.x", "parent.parent.x")
 * to an output column. Returns the column or -1 after reporting; *up gets
 * the number of levels up (NULL: only the table's own columns). */
static int resolve_col(L *l, size_t ti, const char *name, const char *ptr, int *up) {
  const ms_spec *s = l->s;
  int lv = 0;
  while (!strncmp(name, "parent.", 7)) {
    if (!up) {
      err_at(l, ptr, 0, "\"%s\": only columns of the table itself are allowed here", name);
      return -1;
    }
    if (s->tables[ti].parent == SIZE_MAX) {
      err_at(l, ptr, 0, "\"%s\": table \"%s\" has no parent", name, s->tables[ti].name);
      return -1;
    }
    ti = s->tables[ti].parent;
    name += 7;
    lv++;
  }
  const ms__table *t = &s->tables[ti];
  for (size_t fi = 0; fi < t->n_fields; fi++)
    if (!strcmp(t->fields[fi].name, name)) {
      if (t->fields[fi].col < 0) {
        err_at(l, ptr, 0, "field \"%s\" of table \"%s\" is hidden (not written), so it cannot be mapped",
               name, t->name);
        return -1;
      }
      if (up) *up = lv;
      return t->fields[fi].col;
    }
  const char *names[512];
  size_t nn = 0;
  for (size_t fi = 0; fi < t->n_fields && nn < 512; fi++)
    if (t->fields[fi].col >= 0) names[nn++] = t->fields[fi].name;
  const char *near = ms__closest(name, names, nn);
  if (near)
    err_at(l, ptr, 0, "table \"%s\" has no column \"%s\" (did you mean \"%s\"?)", t->name, name, near);
  else
    err_at(l, ptr, 0, "table \"%s\" has no column \"%s\"", t->name, name);
  return -1;
}

static const ms_column *col_of(const L *l, size_t ti, int up, int col) {
  while (up-- > 0) ti = l->s->tables[ti].parent;
  return &l->s->tables[ti].schema.columns[col];
}

static int col_is(const ms_column *c, const char *kinds) {
  char k = 0;
  switch (c->type) {
    case MS_COL_INT64: k = 'i'; break;
    case MS_COL_FLOAT64: k = 'r'; break;
    case MS_COL_BOOL: k = 'b'; break;
    case MS_COL_STRING: k = 's'; break;
    case MS_COL_CATEGORICAL: k = 'c'; break;
    case MS_COL_DATE: k = 'd'; break;
    case MS_COL_DATETIME: k = 't'; break;
    default: break;
  }
  return k && strchr(kinds, k) != NULL;
}

static const char *kinds_text(const char *kinds) {
  static const char *const txt[][2] = {{"d", "a date"},
                                       {"dt", "a date or datetime"},
                                       {"b", "a bool"},
                                       {"ir", "an integer or real"},
                                       {"i", "an integer"},
                                       {"sc", "a string or categorical"},
                                       {"sci", "a string, categorical or integer"},
                                       {"c", "a categorical"},
                                       {"bc", "a bool or categorical"},
                                       {"scidtbr", "any"}};
  for (size_t i = 0; i < sizeof txt / sizeof txt[0]; i++)
    if (!strcmp(kinds, txt[i][0])) return txt[i][1];
  return kinds;
}

static int check_unit(L *l, const char *unit, const char *ptr) {
  char why[200];
  if (!ms__ucum_check(unit, why, sizeof why)) return 0;
  const char *hint = ucum_hint(unit);
  if (hint)
    err_at(l, ptr, 0, "unit \"%s\" is not UCUM (%s); write \"%s\"", unit, why, hint);
  else
    err_at(l, ptr, 0, "unit \"%s\" is not UCUM (%s); see https://ucum.org/ucum", unit, why);
  return 1;
}

/* Codes per category of a categorical column, from "map" (label -> code),
 * or the labels themselves. */
static int build_codes(L *l, ms__fhir_el *e, const ms_column *c, const cJSON *map, const char *ptr,
                       const char *const *allowed_codes) {
  e->n_codes = c->n_categories;
  e->codes = l_calloc(l, c->n_categories ? c->n_categories : 1, sizeof *e->codes);
  if (!e->codes) return 1;
  char mp[600];
  ms__jsonptr_key(mp, sizeof mp, ptr, "map");
  if (map && !cJSON_IsObject(map)) {
    err_at(l, mp, 0, "must be an object mapping labels to codes");
    return 1;
  }
  for (const cJSON *m = map ? map->child : NULL; m; m = m->next) {
    char p[700];
    ms__jsonptr_key(p, sizeof p, mp, m->string);
    int found = 0;
    for (size_t k = 0; k < c->n_categories; k++) found |= !strcmp(c->categories[k], m->string);
    if (!found) {
      const char *near = ms__closest(m->string, (const char *const *)c->categories, c->n_categories);
      if (near)
        err_at(l, p, 1, "column \"%s\" has no label \"%s\" (did you mean \"%s\"?)", c->name, m->string, near);
      else
        err_at(l, p, 1, "column \"%s\" has no label \"%s\"", c->name, m->string);
    }
    if (cJSON_IsNull(m) && !allowed_codes)
      continue; /* null: rows with this label get no code (and no resource) */
    if (!cJSON_IsString(m) || !m->valuestring[0])
      err_at(l, p, 0, allowed_codes ? "must be a code string" : "must be a non-empty code string (or null: no code)");
    else if (allowed_codes && !ms__closest(m->valuestring, allowed_codes, ms__list_len(allowed_codes)))
      err_at(l, p, 0, "unknown code \"%s\"", m->valuestring);
    else if (allowed_codes) {
      int ok = 0;
      for (size_t i = 0; allowed_codes[i]; i++) ok |= !strcmp(allowed_codes[i], m->valuestring);
      if (!ok) {
        const char *near = ms__closest(m->valuestring, allowed_codes, ms__list_len(allowed_codes));
        err_at(l, p, 0, "unknown code \"%s\" (did you mean \"%s\"?)", m->valuestring, near);
      }
    }
  }
  for (size_t k = 0; k < c->n_categories; k++) {
    const cJSON *m = map ? member(map, c->categories[k]) : NULL;
    if (map && !m) {
      err_at(l, mp, 0, "label \"%s\" of column \"%s\" has no code in \"map\"", c->categories[k], c->name);
      continue;
    }
    const char *code = m ? (cJSON_IsString(m) ? m->valuestring : NULL) : c->categories[k];
    if (code) {
      e->codes[k] = l_dup(l, code);
      if (!e->codes[k]) return 1;
    }
  }
  return 0;
}

static const char *const k_gender[] = {"male", "female", "other", "unknown", NULL};
static const char *const k_interp[] = {"N", "A", "H", "L", "HH", "LL", "AA", "<", ">", NULL};
static const char *const k_obs_cat[] = {"vital-signs", "laboratory", "social-history", "imaging",
                                        "survey", "exam", "procedure", "therapy", "activity", NULL};
static const char *const k_cond_cat[] = {"problem-list-item", "encounter-diagnosis", NULL};

/* A number or a column name (RANGE low/high). */
static void num_or_col(L *l, size_t ti, const cJSON *v, const char *ptr, double *num, int *has,
                       int *col) {
  *col = -1;
  if (!v) return;
  if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) {
    *num = v->valuedouble;
    *has = 1;
  } else if (cJSON_IsString(v)) {
    int c = resolve_col(l, ti, v->valuestring, ptr, NULL);
    if (c >= 0 && !col_is(col_of(l, ti, 0, c), "ir"))
      err_at(l, ptr, 0, "column \"%s\" must be an integer or real", v->valuestring);
    *col = c;
    *has = c >= 0;
  } else {
    err_at(l, ptr, 0, "must be a number or a column name");
  }
}

/* Parses one element value `v` at `ptr` into e. field_col (or -1) is the
 * column a field-level mapping defaults to. */
static void parse_element(L *l, size_t ti, ms__fhir_rtype rt, int elem, const cJSON *v,
                          const char *ptr, int field_col, ms__fhir_el *e) {
  ms__fhir_ekind k = k_elements[elem].kind;
  e->elem = elem;
  e->col = -1;
  e->unit_col = -1;
  e->low_col = e->high_col = -1;
  int up = 0;
  const char *colname = NULL;
  char cptr[600];
  snprintf(cptr, sizeof cptr, "%s", ptr);
  const cJSON *obj = cJSON_IsObject(v) ? v : NULL;
  /* which object keys each kind accepts */
  static const char *const keys_col[] = {"column", "value", NULL};
  static const char *const keys_ident[] = {"column", "system", NULL};
  static const char *const keys_gender[] = {"column", "map", NULL};
  static const char *const keys_code[] = {"column", "code", "system", "display", "map", NULL};
  static const char *const keys_qty[] = {"column", "value", "unit", "unit_column", NULL};
  static const char *const keys_dose[] = {"column", "value", "unit", NULL};
  static const char *const keys_range[] = {"low", "high", "unit", NULL};
  static const char *const keys_interp[] = {"column", "map", NULL};
  static const char *const keys_cat[] = {"code", NULL};
  const char *const *keys = keys_col;
  switch (k) {
    case MS__FE_IDENTIFIER: keys = keys_ident; break;
    case MS__FE_GENDER: keys = keys_gender; break;
    case MS__FE_CODE:
    case MS__FE_CODING: keys = keys_code; break;
    case MS__FE_QUANTITY: keys = keys_qty; break;
    case MS__FE_DOSE: keys = keys_dose; break;
    case MS__FE_RANGE: keys = keys_range; break;
    case MS__FE_INTERPRETATION: keys = keys_interp; break;
    case MS__FE_CATEGORY: keys = keys_cat; break;
    default: break;
  }
  if (obj) {
    check_keys(l, obj, ptr, keys);
    const cJSON *c = member(obj, "column");
    if (c) {
      ms__jsonptr_key(cptr, sizeof cptr, ptr, "column");
      if (!cJSON_IsString(c))
        err_at(l, cptr, 0, "must be a column name");
      else
        colname = c->valuestring;
    }
  } else if (cJSON_IsString(v) && k != MS__FE_CATEGORY) {
    colname = v->valuestring;
  } else if (k == MS__FE_CATEGORY && cJSON_IsString(v)) {
    /* handled below */
  } else if (!((k == MS__FE_BOOL && cJSON_IsBool(v)) ||
               ((k == MS__FE_INTEGER || k == MS__FE_QUANTITY || k == MS__FE_DOSE) &&
                cJSON_IsNumber(v)))) {
    err_at(l, ptr, 0, "must be a column name or an object (docs/fhir.md)");
    return;
  }
  if (colname) {
    e->col = resolve_col(l, ti, colname, cptr, &up);
    if (e->col < 0) return;
  }
  const cJSON *cval = obj ? member(obj, "value") : (cJSON_IsString(v) ? NULL : v);
  int has_const = cval != NULL || (obj && member(obj, "code"));
  if (e->col < 0 && !has_const && field_col >= 0 && k != MS__FE_RANGE && k != MS__FE_CATEGORY) {
    e->col = field_col; /* field-level: the field's own value */
  }
  e->up = up;
  const ms_column *col = e->col >= 0 ? col_of(l, ti, up, e->col) : NULL;
  const char *need = NULL;
  switch (k) {
    case MS__FE_IDENTIFIER:
    case MS__FE_NAME_FAMILY:
    case MS__FE_NAME_GIVEN:
    case MS__FE_STRING: need = "sci"; break;
    case MS__FE_GENDER: need = "c"; break;
    case MS__FE_DATE: need = "d"; break;
    case MS__FE_DATETIME: need = "dt"; break;
    case MS__FE_BOOL: need = "b"; break;
    case MS__FE_INTEGER: need = "i"; break;
    case MS__FE_QUANTITY:
    case MS__FE_DOSE: need = "ir"; break;
    case MS__FE_CODE:
    case MS__FE_CODING: need = "sc"; break;
    case MS__FE_INTERPRETATION: need = "bc"; break;
    default: break;
  }
  if (col && need && !col_is(col, need)) {
    err_at(l, cptr, 0, "%s \"%s\" needs %s column; \"%s\" is %s", ms__fhir_rtype_name(rt),
           k_elements[elem].path, kinds_text(need), col->name, ms_coltype_name(col->type));
    return;
  }
  char p[700];
  switch (k) {
    case MS__FE_IDENTIFIER: {
      const cJSON *sy = obj ? member(obj, "system") : NULL;
      if (sy) {
        ms__jsonptr_key(p, sizeof p, ptr, "system");
        if (!cJSON_IsString(sy) || !is_uri(sy->valuestring))
          err_at(l, p, 0, "system must be a URI (http://, https:// or urn:)");
        else
          e->system = l_dup(l, sy->valuestring);
      }
      if (e->col < 0) err_at(l, ptr, 0, "identifier needs a column");
      break;
    }
    case MS__FE_NAME_FAMILY:
    case MS__FE_NAME_GIVEN:
    case MS__FE_STRING:
    case MS__FE_BOOL:
    case MS__FE_INTEGER:
    case MS__FE_DATE:
    case MS__FE_DATETIME:
      if (e->col < 0 && cval) {
        if (k == MS__FE_BOOL && cJSON_IsBool(cval)) {
          e->num = cJSON_IsTrue(cval);
          e->has_num = 1;
        } else if (k == MS__FE_INTEGER && cJSON_IsNumber(cval) && cval->valuedouble == floor(cval->valuedouble)) {
          e->num = cval->valuedouble;
          e->has_num = 1;
        } else if ((k == MS__FE_STRING || k == MS__FE_NAME_FAMILY || k == MS__FE_NAME_GIVEN) &&
                   cJSON_IsString(cval)) {
          e->text = l_dup(l, cval->valuestring);
        } else {
          err_at(l, ptr, 0, "constant of the wrong type for %s", k_elements[elem].path);
        }
      } else if (e->col < 0) {
        err_at(l, ptr, 0, "%s needs a column", k_elements[elem].path);
      }
      break;
    case MS__FE_GENDER: {
      const cJSON *map = obj ? member(obj, "map") : NULL;
      if (e->col < 0) {
        err_at(l, ptr, 0, "gender needs a categorical column");
        break;
      }
      if (map) {
        build_codes(l, e, col, map, ptr, k_gender);
      } else {
        /* default: M/F by their usual spellings, anything else "unknown" */
        e->n_codes = col->n_categories;
        e->codes = l_calloc(l, col->n_categories ? col->n_categories : 1, sizeof *e->codes);
        for (size_t c = 0; e->codes && c < col->n_categories; c++) {
          const char *lab = col->categories[c], *g = "unknown";
          if (!strcasecmp(lab, "M") || !strcasecmp(lab, "male") || !strcasecmp(lab, "man")) g = "male";
          else if (!strcasecmp(lab, "F") || !strcasecmp(lab, "female") || !strcasecmp(lab, "woman")) g = "female";
          else if (!strcasecmp(lab, "other")) g = "other";
          e->codes[c] = l_dup(l, g);
        }
      }
      break;
    }
    case MS__FE_CODE:
    case MS__FE_CODING: {
      const cJSON *sy = obj ? member(obj, "system") : NULL;
      const cJSON *code = obj ? member(obj, "code") : NULL;
      const cJSON *disp = obj ? member(obj, "display") : NULL;
      const cJSON *map = obj ? member(obj, "map") : NULL;
      if (!sy) {
        err_at(l, ptr, 0, "code without system: %s \"%s\" needs \"system\" (a URI such as http://loinc.org)",
               ms__fhir_rtype_name(rt), k_elements[elem].path);
      } else {
        ms__jsonptr_key(p, sizeof p, ptr, "system");
        if (!cJSON_IsString(sy) || !is_uri(sy->valuestring))
          err_at(l, p, 0, "system must be a URI (http://, https:// or urn:)");
        else
          e->system = l_dup(l, sy->valuestring);
      }
      if (disp) {
        ms__jsonptr_key(p, sizeof p, ptr, "display");
        if (!cJSON_IsString(disp)) err_at(l, p, 0, "must be a string");
        else e->display = l_dup(l, disp->valuestring);
      }
      if (code) {
        ms__jsonptr_key(p, sizeof p, ptr, "code");
        if (e->col >= 0 && colname)
          err_at(l, p, 1, "give either \"code\" (a constant) or \"column\", not both");
        else if (!cJSON_IsString(code) || !code->valuestring[0])
          err_at(l, p, 0, "must be a non-empty code string");
        else {
          e->col = -1;
          e->text = l_dup(l, code->valuestring);
        }
      } else if (e->col < 0) {
        err_at(l, ptr, 0, "%s \"%s\" needs \"code\" or \"column\"", ms__fhir_rtype_name(rt),
               k_elements[elem].path);
      }
      if (map && (e->col < 0 || col->type != MS_COL_CATEGORICAL)) {
        ms__jsonptr_key(p, sizeof p, ptr, "map");
        err_at(l, p, 1, "\"map\" needs a categorical column");
      } else if (e->col >= 0 && col->type == MS_COL_CATEGORICAL) {
        build_codes(l, e, col, map, ptr, NULL);
      }
      break;
    }
    case MS__FE_QUANTITY:
    case MS__FE_DOSE: {
      const cJSON *u = obj ? member(obj, "unit") : NULL;
      const cJSON *uc = obj ? member(obj, "unit_column") : NULL;
      if (e->col < 0 && cval) {
        if (!cJSON_IsNumber(cval)) err_at(l, ptr, 0, "value must be a number");
        e->num = cval->valuedouble;
        e->has_num = 1;
      } else if (e->col < 0) {
        err_at(l, ptr, 0, "%s needs a column or a value", k_elements[elem].path);
      }
      if (u && uc) {
        ms__jsonptr_key(p, sizeof p, ptr, "unit_column");
        err_at(l, p, 1, "give either \"unit\" or \"unit_column\", not both");
      } else if (u) {
        ms__jsonptr_key(p, sizeof p, ptr, "unit");
        if (!cJSON_IsString(u)) err_at(l, p, 0, "must be a UCUM unit string");
        else if (!check_unit(l, u->valuestring, p)) e->unit = l_dup(l, u->valuestring);
      } else if (uc) {
        ms__jsonptr_key(p, sizeof p, ptr, "unit_column");
        if (!cJSON_IsString(uc)) {
          err_at(l, p, 0, "must be a column name");
        } else {
          e->unit_col = resolve_col(l, ti, uc->valuestring, p, NULL);
          if (e->unit_col >= 0) {
            const ms_column *ucol = col_of(l, ti, 0, e->unit_col);
            if (ucol->type != MS_COL_CATEGORICAL) {
              err_at(l, p, 0, "unit column \"%s\" must be categorical (its labels are checked as UCUM)",
                     ucol->name);
              e->unit_col = -1;
            } else {
              for (size_t c = 0; c < ucol->n_categories; c++) {
                char why[200];
                if (ms__ucum_check(ucol->categories[c], why, sizeof why)) {
                  const char *hint = ucum_hint(ucol->categories[c]);
                  err_at(l, p, 0, "label \"%s\" of unit column \"%s\" is not UCUM (%s)%s%s%s",
                         ucol->categories[c], ucol->name, why, hint ? "; write \"" : "",
                         hint ? hint : "", hint ? "\"" : "");
                }
              }
            }
          }
        }
      } else {
        err_at(l, ptr, 0, "%s needs a UCUM \"unit\" or \"unit_column\"", k_elements[elem].path);
      }
      break;
    }
    case MS__FE_RANGE: {
      if (!obj) {
        err_at(l, ptr, 0, "must be an object {\"low\", \"high\", \"unit\"}");
        break;
      }
      char lp[700], hp[700];
      ms__jsonptr_key(lp, sizeof lp, ptr, "low");
      ms__jsonptr_key(hp, sizeof hp, ptr, "high");
      num_or_col(l, ti, member(obj, "low"), lp, &e->low, &e->has_low, &e->low_col);
      num_or_col(l, ti, member(obj, "high"), hp, &e->high, &e->has_high, &e->high_col);
      if (!member(obj, "low") && !member(obj, "high"))
        err_at(l, ptr, 0, "referenceRange needs \"low\" or \"high\"");
      if (e->has_low && e->has_high && e->low_col < 0 && e->high_col < 0 && e->low > e->high)
        err_at(l, ptr, 0, "referenceRange low %g is above high %g", e->low, e->high);
      const cJSON *u = member(obj, "unit");
      if (u) {
        ms__jsonptr_key(p, sizeof p, ptr, "unit");
        if (!cJSON_IsString(u)) err_at(l, p, 0, "must be a UCUM unit string");
        else if (!check_unit(l, u->valuestring, p)) e->unit = l_dup(l, u->valuestring);
      }
      break;
    }
    case MS__FE_INTERPRETATION: {
      const cJSON *map = obj ? member(obj, "map") : NULL;
      if (e->col < 0) {
        err_at(l, ptr, 0, "interpretation needs a bool or categorical column");
        break;
      }
      if (col->type == MS_COL_CATEGORICAL)
        build_codes(l, e, col, map, ptr, k_interp);
      else if (map) {
        ms__jsonptr_key(p, sizeof p, ptr, "map");
        err_at(l, p, 1, "a bool interpretation column maps true to A (abnormal) and false to N; \"map\" needs a categorical column");
      }
      break;
    }
    case MS__FE_CATEGORY: {
      const cJSON *code = obj ? member(obj, "code") : v;
      const char *const *allowed = rt == MS__FHIR_CONDITION ? k_cond_cat : k_obs_cat;
      if (!cJSON_IsString(code)) {
        err_at(l, ptr, 0, "category must be a code string");
        break;
      }
      int ok = 0;
      for (size_t i = 0; allowed[i]; i++) ok |= !strcmp(allowed[i], code->valuestring);
      if (!ok) {
        const char *near = ms__closest(code->valuestring, allowed, ms__list_len(allowed));
        err_at(l, ptr, 0, "unknown %s category \"%s\"%s%s%s", ms__fhir_rtype_name(rt), code->valuestring,
               near ? " (did you mean \"" : "", near ? near : "", near ? "\"?)" : "");
      } else {
        e->text = l_dup(l, code->valuestring);
      }
      break;
    }
    default: break;
  }
}

/* Parses one mapping object (table-level when field_col < 0). */
static void parse_mapping(L *l, size_t ti, const cJSON *m, const char *ptr, int field_col,
                          const char *field_name, ms__fhir_res *r) {
  memset(r, 0, sizeof *r);
  r->table = ti;
  r->field_col = field_col;
  r->if_col = -1;
  r->skip_col = -1;
  r->type = MS__FHIR_RES_COUNT;
  r->ptr = l_dup(l, ptr);
  const ms__table *t = &l->s->tables[ti];
  char key[512];
  if (field_name)
    snprintf(key, sizeof key, "%s/%s", t->name, field_name);
  else
    snprintf(key, sizeof key, "%s", t->name);
  r->key = l_dup(l, key);
  if (!cJSON_IsObject(m)) {
    err_at(l, ptr, 0, "\"fhir\" must be an object {\"resource\": ..., element: ...}");
    return;
  }
  char p[600];
  ms__jsonptr_key(p, sizeof p, ptr, "resource");
  const cJSON *res = member(m, "resource");
  if (!res) {
    err_at(l, ptr, 0, "\"fhir\" needs \"resource\" (a FHIR resource type such as \"Observation\")");
    return;
  }
  if (!cJSON_IsString(res)) {
    err_at(l, p, 0, "must be a resource type name");
    return;
  }
  const char *names[MS__FHIR_RES_COUNT];
  size_t nn = 0;
  for (int i = 0; i < MS__FHIR_RES_COUNT; i++) {
    if (!strcmp(k_rtype[i], res->valuestring) && mappable((ms__fhir_rtype)i))
      r->type = (ms__fhir_rtype)i;
    if (mappable((ms__fhir_rtype)i)) names[nn++] = k_rtype[i];
  }
  if (r->type == MS__FHIR_RES_COUNT) {
    const char *near = ms__closest(res->valuestring, names, nn);
    if (near)
      err_at(l, p, 0, "unknown FHIR resource type \"%s\" (did you mean \"%s\"?)", res->valuestring, near);
    else
      err_at(l, p, 0,
             "unknown FHIR resource type \"%s\" (one of: Patient, Encounter, Observation, Condition, "
             "MedicationStatement, MedicationRequest, Procedure)",
             res->valuestring);
    return;
  }
  int root = t->parent == SIZE_MAX;
  if (r->type == MS__FHIR_PATIENT && (!root || field_col >= 0)) {
    err_at(l, p, 0, "Patient is the resource of a root table's own \"fhir\" section (one per row)");
    return;
  }
  if (root && field_col < 0 && r->type != MS__FHIR_PATIENT) {
    err_at(l, p, 0, "a root table maps to Patient (its rows are the patients); map fields to other resources");
    return;
  }
  if (field_col >= 0 && r->type == MS__FHIR_ENCOUNTER) {
    err_at(l, p, 0, "Encounter is the resource of a table (one per row), not of a field");
    return;
  }
  /* count elements */
  size_t ne = 0;
  for (const cJSON *c = m->child; c; c = c->next)
    if (strcmp(c->string, "resource") && strcmp(c->string, "if")) ne++;
  r->el = l_calloc(l, ne + 2, sizeof *r->el);
  if (!r->el) return;
  const char *paths[64];
  size_t np = 0;
  for (int i = 0; i < N_ELEMENTS && np < 62; i++)
    if (k_elements[i].res == r->type) paths[np++] = k_elements[i].path;
  paths[np++] = "resource";
  paths[np++] = "if";
  paths[np] = NULL;
  for (const cJSON *c = m->child; c; c = c->next) {
    if (!strcmp(c->string, "resource")) continue;
    char ep[700];
    ms__jsonptr_key(ep, sizeof ep, ptr, c->string);
    if (!strcmp(c->string, "if")) {
      if (!cJSON_IsString(c)) {
        err_at(l, ep, 0, "must be the name of a bool column");
        continue;
      }
      r->if_col = resolve_col(l, ti, c->valuestring, ep, NULL);
      if (r->if_col >= 0 && !col_is(col_of(l, ti, 0, r->if_col), "b")) {
        err_at(l, ep, 0, "\"if\" needs a bool column; \"%s\" is %s", c->valuestring,
               ms_coltype_name(col_of(l, ti, 0, r->if_col)->type));
        r->if_col = -1;
      }
      continue;
    }
    int e = elem_find(r->type, c->string);
    if (e < 0) {
      const char *near = ms__closest(c->string, paths, np);
      if (near)
        err_at(l, ep, 1, "unknown %s element path \"%s\" (did you mean \"%s\"?)", k_rtype[r->type],
               c->string, near);
      else
        err_at(l, ep, 1, "unknown %s element path \"%s\" (docs/fhir.md lists the supported ones)",
               k_rtype[r->type], c->string);
      continue;
    }
    parse_element(l, ti, r->type, e, c, ep, field_col, &r->el[r->n_el++]);
  }
  /* field-level: the field's value goes to the resource's primary element */
  if (field_col >= 0) {
    const ms_column *fc = col_of(l, ti, 0, field_col);
    int prim = -1;
    switch (r->type) {
      case MS__FHIR_OBSERVATION: {
        const char *vs[] = {"valueQuantity", "valueCodeableConcept", "valueString", "valueBoolean",
                            "valueInteger"};
        for (int i = 0; i < 5; i++)
          if (member(m, vs[i])) prim = -2;
        if (prim == -2) break;
        if (fc->type == MS_COL_BOOL) prim = elem_find(r->type, "valueBoolean");
        else if (fc->type == MS_COL_INT64 || fc->type == MS_COL_FLOAT64) prim = elem_find(r->type, "valueQuantity");
        else prim = elem_find(r->type, "valueString");
        break;
      }
      case MS__FHIR_CONDITION:
      case MS__FHIR_PROCEDURE:
        if (fc->type == MS_COL_BOOL) {
          if (r->if_col < 0) r->if_col = field_col;
          if (!member(m, "code"))
            err_at(l, ptr, 0, "%s from bool field \"%s\" needs a constant \"code\" {\"system\", \"code\"}",
                   k_rtype[r->type], fc->name);
        } else if (!member(m, "code")) {
          prim = elem_find(r->type, "code");
        }
        break;
      case MS__FHIR_MEDICATION_STATEMENT:
      case MS__FHIR_MEDICATION_REQUEST:
        if (fc->type == MS_COL_BOOL) {
          if (r->if_col < 0) r->if_col = field_col;
          if (!member(m, "medicationCodeableConcept"))
            err_at(l, ptr, 0, "%s from bool field \"%s\" needs a constant \"medicationCodeableConcept\" {\"system\", \"code\"}",
                   k_rtype[r->type], fc->name);
        } else if (!member(m, "medicationCodeableConcept")) {
          prim = elem_find(r->type, "medicationCodeableConcept");
        }
        break;
      default: break;
    }
    if (prim >= 0) {
      if (k_elements[prim].kind == MS__FE_CODE) {
        err_at(l, ptr, 0, "%s from field \"%s\" needs \"%s\": {\"system\": ...} (code without system)",
               k_rtype[r->type], fc->name, k_elements[prim].path);
      } else if (k_elements[prim].kind == MS__FE_QUANTITY) {
        err_at(l, ptr, 0, "Observation from numeric field \"%s\" needs \"valueQuantity\": {\"unit\": a UCUM unit}",
               fc->name);
      } else {
        ms__fhir_el *e = &r->el[r->n_el++];
        memset(e, 0, sizeof *e);
        e->elem = prim;
        e->col = field_col;
        e->unit_col = e->low_col = e->high_col = -1;
      }
    }
    r->skip_col = field_col;
  }
  /* required elements */
  const char *req = NULL;
  switch (r->type) {
    case MS__FHIR_OBSERVATION:
    case MS__FHIR_CONDITION:
    case MS__FHIR_PROCEDURE: req = "code"; break;
    case MS__FHIR_MEDICATION_STATEMENT:
    case MS__FHIR_MEDICATION_REQUEST: req = "medicationCodeableConcept"; break;
    default: break;
  }
  if (req && !member(m, req) && !(field_col >= 0 && r->type != MS__FHIR_OBSERVATION))
    err_at(l, ptr, 0, "%s needs \"%s\"", k_rtype[r->type], req);
}

/* The default mapping: each root table to Patient, from columns named by
 * convention (docs/fhir.md, "Defaults"). */
static int default_mapping(L *l) {
  ms_spec *s = l->s;
  ms__fhir *f = l->f;
  size_t nroot = 0;
  for (size_t ti = 0; ti < s->n_tables; ti++) nroot += s->tables[ti].parent == SIZE_MAX;
  f->r = l_calloc(l, nroot ? nroot : 1, sizeof *f->r);
  if (!f->r) return 1;
  f->is_default = 1;
  for (size_t ti = 0; ti < s->n_tables; ti++) {
    const ms__table *t = &s->tables[ti];
    if (t->parent != SIZE_MAX) continue;
    ms__fhir_res *r = &f->r[f->n++];
    r->type = MS__FHIR_PATIENT;
    r->table = ti;
    r->field_col = r->if_col = r->skip_col = -1;
    r->key = l_dup(l, t->name);
    r->ptr = l_dup(l, t->ptr);
    r->el = l_calloc(l, 4, sizeof *r->el);
    if (!r->key || !r->ptr || !r->el) return 1;
    const ms_table_schema *sc = &t->schema;
    int id = -1, sex = -1, dob = -1;
    if (t->key_field != SIZE_MAX) id = t->fields[t->key_field].col;
    for (size_t c = 0; c < sc->n_columns; c++) {
      const ms_column *col = &sc->columns[c];
      if (sex < 0 && col->type == MS_COL_CATEGORICAL &&
          (!strcmp(col->name, "sex") || !strcmp(col->name, "gender")))
        sex = (int)c;
      if (dob < 0 && col->type == MS_COL_DATE &&
          (!strcmp(col->name, "birth_date") || !strcmp(col->name, "birthdate") ||
           !strcmp(col->name, "dob") || !strcmp(col->name, "date_of_birth")))
        dob = (int)c;
    }
    if (id >= 0) {
      ms__fhir_el *e = &r->el[r->n_el++];
      e->elem = elem_find(MS__FHIR_PATIENT, "identifier");
      e->col = id;
      e->unit_col = e->low_col = e->high_col = -1;
    }
    if (sex >= 0) {
      cJSON *o = cJSON_CreateObject();
      if (!o) {
        l_oom(l);
        return 1;
      }
      ms__fhir_el *e = &r->el[r->n_el++];
      parse_element(l, ti, MS__FHIR_PATIENT, elem_find(MS__FHIR_PATIENT, "gender"), o, t->ptr, sex, e);
      cJSON_Delete(o);
    }
    if (dob >= 0) {
      ms__fhir_el *e = &r->el[r->n_el++];
      e->elem = elem_find(MS__FHIR_PATIENT, "birthDate");
      e->col = dob;
      e->unit_col = e->low_col = e->high_col = -1;
    }
  }
  return 0;
}

size_t ms__fhir_load(ms_spec *s, const cJSON *tables, ms_diag *d) {
  L l = {.s = s, .d = d};
  ms__fhir *f = l_calloc(&l, 1, sizeof *f);
  if (!f) return 1;
  s->fhir = f;
  l.f = f;
  /* count mappings */
  size_t total = 0, ti = 0;
  for (const cJSON *tj = tables ? tables->child : NULL; tj; tj = tj->next, ti++) {
    if (!cJSON_IsObject(tj)) continue;
    if (member(tj, "fhir")) total++;
    const cJSON *fl = member(tj, "fields");
    for (const cJSON *fj = cJSON_IsArray(fl) ? fl->child : NULL; fj; fj = fj->next)
      if (cJSON_IsObject(fj) && member(fj, "fhir")) total++;
  }
  if (!total) return default_mapping(&l) ? l.errs + 1 : l.errs;
  f->r = l_calloc(&l, total, sizeof *f->r);
  if (!f->r) return 1;
  ti = 0;
  for (const cJSON *tj = tables->child; tj && ti < s->n_tables; tj = tj->next, ti++) {
    const ms__table *t = &s->tables[ti];
    if (!cJSON_IsObject(tj) || t->broken) continue;
    const cJSON *m = member(tj, "fhir");
    if (m) {
      char p[300];
      snprintf(p, sizeof p, "%s/fhir", t->ptr);
      parse_mapping(&l, ti, m, p, -1, NULL, &f->r[f->n++]);
    }
    const cJSON *fl = member(tj, "fields");
    size_t fi = 0;
    for (const cJSON *fj = cJSON_IsArray(fl) ? fl->child : NULL; fj; fj = fj->next, fi++) {
      const cJSON *fm = cJSON_IsObject(fj) ? member(fj, "fhir") : NULL;
      if (!fm || fi >= t->n_fields) continue;
      const ms__field *fd = &t->fields[fi];
      char p[300];
      snprintf(p, sizeof p, "%s/fhir", fd->ptr);
      if (fd->col < 0) {
        err_at(&l, p, 1, "field \"%s\" is hidden (not written), so it cannot be mapped to FHIR", fd->name);
        continue;
      }
      parse_mapping(&l, ti, fm, p, fd->col, fd->name, &f->r[f->n++]);
    }
  }
  /* every mapped table's root must map to Patient */
  for (size_t i = 0; i < f->n; i++) {
    size_t root = f->r[i].table;
    while (s->tables[root].parent != SIZE_MAX) root = s->tables[root].parent;
    int has = 0;
    for (size_t j = 0; j < f->n; j++)
      has |= f->r[j].table == root && f->r[j].type == MS__FHIR_PATIENT && f->r[j].field_col < 0;
    if (!has && f->r[i].type != MS__FHIR_RES_COUNT)
      err_at(&l, f->r[i].ptr, 0,
             "table \"%s\" needs \"fhir\": {\"resource\": \"Patient\", ...}: every resource refers to its patient",
             s->tables[root].name);
  }
  return l.errs;
}

void ms__fhir_free(ms__fhir *f) {
  if (!f) return;
  for (size_t i = 0; i < f->n; i++) {
    ms__fhir_res *r = &f->r[i];
    for (size_t k = 0; k < r->n_el; k++) {
      ms__fhir_el *e = &r->el[k];
      free(e->text);
      free(e->system);
      free(e->display);
      free(e->unit);
      for (size_t c = 0; e->codes && c < e->n_codes; c++) free(e->codes[c]);
      free(e->codes);
    }
    free(r->el);
    free(r->key);
    free(r->ptr);
  }
  free(f->r);
  free(f);
}
