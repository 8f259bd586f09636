/* Packed HDF5 row layout of a table and the schema's JSON form, shared by the
 * HDF5 writer and reader (docs/file-format.md, "Tables").
 *
 * One row is an HDF5 compound with one member per column, in schema order,
 * packed (no padding) and little-endian. A nullable column whose type has no
 * in-band missing value (everything but float64, where missing is NaN) is
 * followed by a member "<column>__valid" (bool: 1 present, 0 missing).
 * Member types:
 *   int64 -> H5T_STD_I64LE      float64 -> H5T_IEEE_F64LE
 *   bool  -> enum int8 {FALSE=0, TRUE=1} (h5py reads numpy bool)
 *   string -> fixed-length UTF-8, NUL-padded, str_width bytes
 *   categorical -> fixed-length UTF-8 label, NUL-padded, width of the
 *                  longest label
 *   date -> H5T_STD_I32LE days since 1970-01-01
 *   datetime -> H5T_STD_I64LE seconds since 1970-01-01T00:00:00Z
 * The host must be little-endian (checked at compile time), so packed rows in
 * memory are the file's bytes. */
#include <cjson/cJSON.h>
#include "core/alloc.h"
#include <stdlib.h>
#include <string.h>

#include "io/io_private.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "medsynth's HDF5 row packing assumes a little-endian host"
#endif

static size_t col_width(const ms_column *c) {
  switch (c->type) {
    case MS_COL_INT64:
    case MS_COL_FLOAT64:
    case MS_COL_DATETIME:
      return 8;
    case MS_COL_BOOL:
      return 1;
    case MS_COL_DATE:
      return 4;
    case MS_COL_STRING:
      return c->str_width ? c->str_width : 1;
    case MS_COL_CATEGORICAL: {
      size_t w = 1;
      for (size_t k = 0; k < c->n_categories; k++) {
        size_t l = strlen(c->categories[k]);
        if (l > w) w = l;
      }
      return w;
    }
    default:
      return 0;
  }
}

static int has_valid_member(const ms_column *c) {
  return c->nullable && c->type != MS_COL_FLOAT64;
}

void ms__rowlayout_deinit(ms__rowlayout *L) {
  free(L->offset);
  free(L->width);
  free(L->valid_off);
  memset(L, 0, sizeof *L);
}

ms_status ms__rowlayout_init(ms__rowlayout *L, const ms_table_schema *s) {
  memset(L, 0, sizeof *L);
  size_t n = s->n_columns ? s->n_columns : 1;
  L->offset = ms__calloc(n, sizeof *L->offset);
  L->width = ms__calloc(n, sizeof *L->width);
  L->valid_off = ms__calloc(n, sizeof *L->valid_off);
  if (!L->offset || !L->width || !L->valid_off) {
    ms__rowlayout_deinit(L);
    return MS_ERR_NOMEM;
  }
  size_t off = 0;
  for (size_t j = 0; j < s->n_columns; j++) {
    const ms_column *c = &s->columns[j];
    size_t w = col_width(c);
    if (w == 0) {
      ms__rowlayout_deinit(L);
      return MS_ERR_INVALID;
    }
    L->offset[j] = off;
    L->width[j] = w;
    off += w;
    L->valid_off[j] = SIZE_MAX;
    if (has_valid_member(c)) {
      L->valid_off[j] = off;
      off += 1;
    }
  }
  L->row_size = off ? off : 1;
  return MS_OK;
}

hid_t ms__h5_bool_type(void) {
  hid_t t = H5Tenum_create(H5T_STD_I8LE);
  if (t < 0) return -1;
  int8_t v = 0;
  H5Tenum_insert(t, "FALSE", &v);
  v = 1;
  H5Tenum_insert(t, "TRUE", &v);
  return t;
}

static hid_t member_type(const ms_column *c, size_t width) {
  switch (c->type) {
    case MS_COL_INT64:
    case MS_COL_DATETIME:
      return H5Tcopy(H5T_STD_I64LE);
    case MS_COL_FLOAT64:
      return H5Tcopy(H5T_IEEE_F64LE);
    case MS_COL_DATE:
      return H5Tcopy(H5T_STD_I32LE);
    case MS_COL_BOOL:
      return ms__h5_bool_type();
    case MS_COL_STRING:
    case MS_COL_CATEGORICAL: {
      hid_t t = H5Tcopy(H5T_C_S1);
      if (t < 0) return -1;
      if (H5Tset_size(t, width) < 0 || H5Tset_strpad(t, H5T_STR_NULLPAD) < 0 ||
          H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
        H5Tclose(t);
        return -1;
      }
      return t;
    }
    default:
      return -1;
  }
}

hid_t ms__rowlayout_h5type(const ms__rowlayout *L, const ms_table_schema *s) {
  hid_t ct = H5Tcreate(H5T_COMPOUND, L->row_size);
  if (ct < 0) return -1;
  for (size_t j = 0; j < s->n_columns; j++) {
    const ms_column *c = &s->columns[j];
    hid_t mt = member_type(c, L->width[j]);
    if (mt < 0 || H5Tinsert(ct, c->name, L->offset[j], mt) < 0) {
      if (mt >= 0) H5Tclose(mt);
      H5Tclose(ct);
      return -1;
    }
    H5Tclose(mt);
    if (L->valid_off[j] != SIZE_MAX) {
      size_t nl = strlen(c->name);
      char *vn = ms__malloc(nl + sizeof MS__VALID_SUFFIX);
      hid_t bt = ms__h5_bool_type();
      int bad = !vn || bt < 0;
      if (!bad) {
        memcpy(vn, c->name, nl);
        memcpy(vn + nl, MS__VALID_SUFFIX, sizeof MS__VALID_SUFFIX);
        bad = H5Tinsert(ct, vn, L->valid_off[j], bt) < 0;
      }
      free(vn);
      if (bt >= 0) H5Tclose(bt);
      if (bad) {
        H5Tclose(ct);
        return -1;
      }
    }
  }
  return ct;
}

/* ---- schema JSON ------------------------------------------------------ */

static int add_str_or_null(cJSON *o, const char *k, const char *v) {
  return (v ? cJSON_AddStringToObject(o, k, v) : cJSON_AddNullToObject(o, k)) != NULL;
}

char *ms__schema_to_json(const ms_table_schema *s) {
  cJSON *root = cJSON_CreateObject();
  if (!root) return NULL;
  int ok = add_str_or_null(root, "name", s->name) && add_str_or_null(root, "parent", s->parent);
  cJSON *cols = ok ? cJSON_AddArrayToObject(root, "columns") : NULL;
  ok = ok && cols;
  for (size_t j = 0; ok && j < s->n_columns; j++) {
    const ms_column *c = &s->columns[j];
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(cols, o)) {
      cJSON_Delete(o);
      ok = 0;
      break;
    }
    ok = add_str_or_null(o, "name", c->name) &&
         cJSON_AddStringToObject(o, "type", ms_coltype_name(c->type)) &&
         add_str_or_null(o, "unit", c->unit) &&
         add_str_or_null(o, "description", c->description) &&
         cJSON_AddNumberToObject(o, "precision", c->precision) &&
         cJSON_AddBoolToObject(o, "nullable", c->nullable != 0) &&
         cJSON_AddNumberToObject(o, "str_width", (double)c->str_width) &&
         add_str_or_null(o, "references", c->references) &&
         (!c->format || cJSON_AddStringToObject(o, "format", c->format));
    if (ok && c->type == MS_COL_CATEGORICAL) {
      cJSON *cats = cJSON_AddArrayToObject(o, "categories");
      ok = cats != NULL;
      for (size_t k = 0; ok && k < c->n_categories; k++) {
        cJSON *sv = cJSON_CreateString(c->categories[k]);
        ok = sv && cJSON_AddItemToArray(cats, sv);
        if (!ok) cJSON_Delete(sv);
      }
    }
  }
  char *txt = ok ? cJSON_PrintUnformatted(root) : NULL;
  cJSON_Delete(root);
  return txt;
}

static char *dup_json_str(const cJSON *o, const char *k, int *bad) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  if (!v || cJSON_IsNull(v)) return NULL;
  if (!cJSON_IsString(v)) {
    *bad = 1;
    return NULL;
  }
  char *r = ms__strdup(v->valuestring);
  if (!r) *bad = 1;
  return r;
}

ms_status ms__schema_from_json(ms_table_schema *s, const char *json, ms_diag *d,
                               const char *where) {
  memset(s, 0, sizeof *s);
  cJSON *root = cJSON_Parse(json);
  if (!root)
    return ms_diag_add(d, MS_ERR_FORMAT, NULL, 0, 0, where, "schema attribute is not valid JSON");
  int bad = 0;
  s->name = dup_json_str(root, "name", &bad);
  s->parent = dup_json_str(root, "parent", &bad);
  const cJSON *cols = cJSON_GetObjectItemCaseSensitive(root, "columns");
  if (!s->name || !cJSON_IsArray(cols)) bad = 1;
  size_t n = bad ? 0 : (size_t)cJSON_GetArraySize(cols);
  if (!bad) {
    s->columns = ms__calloc(n ? n : 1, sizeof *s->columns);
    if (!s->columns) bad = 1;
    else s->n_columns = n;
  }
  size_t j = 0;
  const cJSON *o;
  if (!bad) cJSON_ArrayForEach(o, cols) {
      ms_column *c = &s->columns[j++];
      c->name = dup_json_str(o, "name", &bad);
      const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "type");
      c->type = cJSON_IsString(t) ? ms_coltype_from_name(t->valuestring) : MS_COL_COUNT;
      if (!c->name || c->type == MS_COL_COUNT) bad = 1;
      c->unit = dup_json_str(o, "unit", &bad);
      c->description = dup_json_str(o, "description", &bad);
      c->references = dup_json_str(o, "references", &bad);
      c->format = dup_json_str(o, "format", &bad);
      const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "precision");
      c->precision = cJSON_IsNumber(p) ? p->valueint : -1;
      c->nullable = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "nullable"));
      const cJSON *w = cJSON_GetObjectItemCaseSensitive(o, "str_width");
      c->str_width = cJSON_IsNumber(w) && w->valuedouble >= 0 ? (size_t)w->valuedouble : 0;
      const cJSON *cats = cJSON_GetObjectItemCaseSensitive(o, "categories");
      if (c->type == MS_COL_CATEGORICAL) {
        if (!cJSON_IsArray(cats)) {
          bad = 1;
          break;
        }
        size_t k = (size_t)cJSON_GetArraySize(cats);
        c->categories = ms__calloc(k ? k : 1, sizeof *c->categories);
        if (!c->categories) {
          bad = 1;
          break;
        }
        c->n_categories = k;
        size_t i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, cats) {
          if (!cJSON_IsString(e) || !(c->categories[i] = ms__strdup(e->valuestring))) bad = 1;
          i++;
        }
      }
      if (bad) break;
    }
  cJSON_Delete(root);
  if (bad) {
    ms_table_schema_deinit(s);
    return ms_diag_add(d, MS_ERR_FORMAT, NULL, 0, 0, where,
                       "schema attribute is malformed (not written by medsynth?)");
  }
  return MS_OK;
}
