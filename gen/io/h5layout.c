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
#include <math.h>
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

hid_t ms__rowlayout_h5type(const ms__rowlayout *L, const ms_table_schema *s, int *nomem) {
  if (nomem) *nomem = 0;
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
      if (!vn && nomem) *nomem = 1;
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

/* ---- size of the row type in an object header ----------------------- */

/* Bytes of one member's datatype message inside a version 3 compound:
 * the 8-byte datatype header plus the class properties (fixed-point: bit
 * offset and precision, 4; floating-point: 12; string: none; the bool enum:
 * its int8 base type (12), the names "FALSE" and "TRUE" with their NULs
 * (unpadded in version 3) and one value byte each). */
static size_t member_type_bytes(ms_coltype t) {
  switch (t) {
    case MS_COL_INT64:
    case MS_COL_DATETIME:
    case MS_COL_DATE:
      return 8 + 4;
    case MS_COL_FLOAT64:
      return 8 + 12;
    case MS_COL_BOOL:
      return MS__H5_BOOL_TYPE_BYTES;
    default: /* strings and categorical labels */
      return 8;
  }
}

size_t ms__h5_compound_bytes(const ms_table_schema *s, size_t first, size_t n) {
  size_t bytes = 8, row = 0, members = 0;
  for (size_t j = first; j < first + n; j++) {
    const ms_column *c = &s->columns[j];
    size_t nl = strlen(c->name) + 1;
    bytes += nl + member_type_bytes(c->type);
    row += col_width(c);
    members++;
    if (has_valid_member(c)) {
      bytes += nl + sizeof MS__VALID_SUFFIX - 1 + MS__H5_BOOL_TYPE_BYTES;
      row += 1;
      members++;
    }
  }
  /* each member's byte offset takes the fewest bytes that hold the row
   * size (H5VM_limit_enc_size: floor(log2(size)) / 8 + 1) */
  size_t ob = 1;
  for (size_t r = row; r >= 256; r >>= 8) ob++;
  return bytes + members * ob;
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

/* A string column wider than this is not something medsynth writes
 * (specs are bounded far below it); rejecting it keeps chunk buffers of
 * rows x width within memory. */
#define MAX_STR_WIDTH ((size_t)1 << 20)

ms_status ms__schema_from_json(ms_table_schema *s, const char *json, const char *file,
                               const char *where, ms_diag *d) {
  memset(s, 0, sizeof *s);
  cJSON *root = cJSON_Parse(json);
  if (!root)
    return ms_diag_add(d, MS_ERR_DATA, file, 0, 0, where, "schema attribute is not valid JSON");
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
      if (c->precision < -1 || c->precision > 1000) bad = 1;
      c->nullable = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "nullable"));
      const cJSON *w = cJSON_GetObjectItemCaseSensitive(o, "str_width");
      if (cJSON_IsNumber(w) && w->valuedouble >= 0 && w->valuedouble <= (double)MAX_STR_WIDTH &&
          w->valuedouble == floor(w->valuedouble))
        c->str_width = (size_t)w->valuedouble;
      else if (w && !cJSON_IsNull(w))
        bad = 1;
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
    return ms_diag_add(d, MS_ERR_DATA, file, 0, 0, where,
                       "schema attribute is malformed (not written by medsynth?)");
  }
  return MS_OK;
}
