/* Reader for HDF5 files written by medsynth (medsynth/io.h,
 * docs/file-format.md).
 *
 * A table is one dataset, or (a wide table) a group of column-group
 * datasets read side by side into one chunk (docs/file-format.md, "Wide
 * tables"). A dataset's schema comes from its "medsynth_schema" attribute;
 * the compound type on disk must match the packed layout that schema
 * implies (member names and offsets are checked at open), so rows are read
 * with the file type as memory type (host and file are both little-endian)
 * and unpacked into column-major chunks. Categorical labels are mapped back to codes with
 * a sorted index of the category list.
 *
 * Invariants: memory is bounded by the caller's chunk capacity (plus one
 * packed buffer of the same number of rows); verification streams. */
#include <inttypes.h>
#include "core/alloc.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "io/io_private.h"

typedef struct {
  const char *label;
  int32_t code;
} catidx;

/* One dataset of a table: the whole table, or one part of a wide table
 * (docs/file-format.md, "Wide tables"). */
typedef struct {
  ms_table_schema schema; /* its columns */
  ms__rowlayout L;
  hid_t dset, ftype;
  size_t first;           /* its first column in the table */
} rpart;

typedef struct {
  char *name;
  ms_table_schema schema; /* every column */
  rpart *parts;           /* one for a table stored as one dataset */
  size_t n_parts;
  hid_t group;            /* wide tables: the group holding the parts; else -1 */
  uint64_t rows;
  catidx **cats; /* per column, sorted by label (categorical only) */
} rtable;

typedef struct {
  char *path;
  ms_dtype type;
  int rank;
  uint64_t dims[32];
  hid_t dset;
} rarray;

struct ms_table_reader {
  char *path;
  hid_t file;
  rtable *tables;
  size_t n_tables;
  rarray *arrays;
  size_t n_arrays;
  char **attr_names, **attr_values;
  size_t n_attrs;
  uint8_t *buf;
  size_t buf_cap;
};

static int cat_cmp(const void *a, const void *b) {
  return strcmp(((const catidx *)a)->label, ((const catidx *)b)->label);
}

static ms_status grow(ms_table_reader *r, size_t bytes) {
  if (bytes <= r->buf_cap) return MS_OK;
  uint8_t *nb = ms__realloc(r->buf, bytes);
  if (!nb) return MS_ERR_NOMEM;
  r->buf = nb;
  r->buf_cap = bytes;
  return MS_OK;
}

/* ---- attributes to text ---------------------------------------------- */

static char *attr_text(hid_t a) {
  hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
  char *out = NULL;
  if (t < 0 || sp < 0) goto done;
  hssize_t n = H5Sget_simple_extent_npoints(sp);
  H5T_class_t cls = H5Tget_class(t);
  if (n < 1 || n > 1 << 20) {
    out = ms__strdup("");
    goto done;
  }
  if (cls == H5T_STRING) {
    size_t len = 0, cap = 64;
    out = ms__malloc(cap);
    if (!out) goto done;
    out[0] = '\0';
    if (H5Tis_variable_str(t) > 0) {
      char **v = ms__calloc((size_t)n, sizeof *v);
      hid_t mt = H5Tcopy(t);
      if (v && mt >= 0 && H5Aread(a, mt, v) >= 0) {
        for (hssize_t i = 0; i < n; i++) {
          const char *s = v[i] ? v[i] : "";
          size_t l = strlen(s);
          if (len + l + 3 > cap) {
            while (len + l + 3 > cap) cap *= 2;
            char *no = ms__realloc(out, cap);
            if (!no) break;
            out = no;
          }
          if (i) memcpy(out + len, ", ", 2), len += 2;
          memcpy(out + len, s, l + 1);
          len += l;
        }
        H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, v);
      }
      if (mt >= 0) H5Tclose(mt);
      free(v);
    } else {
      size_t w = H5Tget_size(t);
      char *raw = ms__calloc((size_t)n, w + 1);
      if (raw && H5Aread(a, t, raw) >= 0) {
        free(out);
        out = ms__calloc((size_t)n, w + 2);
        if (out)
          for (hssize_t i = 0; i < n; i++) {
            if (i) strcat(out, ", ");
            strncat(out, raw + (size_t)i * w, w);
          }
      }
      free(raw);
    }
  } else if (cls == H5T_INTEGER || cls == H5T_FLOAT) {
    double *v = ms__calloc((size_t)n, sizeof *v);
    int64_t *iv = ms__calloc((size_t)n, sizeof *iv);
    int is_uint = cls == H5T_INTEGER && H5Tget_sign(t) == H5T_SGN_NONE;
    hid_t mt = cls == H5T_FLOAT ? H5T_NATIVE_DOUBLE : is_uint ? H5T_NATIVE_UINT64 : H5T_NATIVE_INT64;
    if (v && iv && H5Aread(a, mt, cls == H5T_FLOAT ? (void *)v : (void *)iv) >= 0) {
      size_t cap = (size_t)n * 32 + 1, len = 0;
      out = ms__malloc(cap);
      if (out) {
        out[0] = '\0';
        for (hssize_t i = 0; i < n; i++) {
          if (i) len += (size_t)snprintf(out + len, cap - len, ", ");
          if (cls == H5T_FLOAT)
            len += (size_t)snprintf(out + len, cap - len, "%.17g", v[i]);
          else if (is_uint)
            len += (size_t)snprintf(out + len, cap - len, "%" PRIu64, (uint64_t)iv[i]);
          else
            len += (size_t)snprintf(out + len, cap - len, "%" PRId64, iv[i]);
        }
      }
    }
    free(v);
    free(iv);
  } else {
    out = ms__strdup("(unsupported attribute type)");
  }
done:
  if (t >= 0) H5Tclose(t);
  if (sp >= 0) H5Sclose(sp);
  return out;
}

static herr_t root_attr_cb(hid_t loc, const char *name, const H5A_info_t *info, void *ud) {
  (void)info;
  ms_table_reader *r = ud;
  hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  if (a < 0) return -1;
  char *v = attr_text(a);
  H5Aclose(a);
  char *n = ms__strdup(name);
  char **nn = ms__realloc(r->attr_names, (r->n_attrs + 1) * sizeof *nn);
  if (nn) r->attr_names = nn;
  char **nv = ms__realloc(r->attr_values, (r->n_attrs + 1) * sizeof *nv);
  if (nv) r->attr_values = nv;
  if (!v || !n || !nn || !nv) {
    free(v);
    free(n);
    return -1;
  }
  r->attr_names[r->n_attrs] = n;
  r->attr_values[r->n_attrs] = v;
  r->n_attrs++;
  return 0;
}

/* String attribute of an object, or NULL. Caller frees. */
static char *obj_attr_text(hid_t obj, const char *name) {
  if (H5Aexists(obj, name) <= 0) return NULL;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a < 0) return NULL;
  char *v = attr_text(a);
  H5Aclose(a);
  return v;
}

static int obj_attr_u64(hid_t obj, const char *name, uint64_t *v) {
  if (H5Aexists(obj, name) <= 0) return -1;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a < 0) return -1;
  herr_t e = H5Aread(a, H5T_NATIVE_UINT64, v);
  H5Aclose(a);
  return e < 0 ? -1 : 0;
}

/* ---- open ------------------------------------------------------------- */

static void part_deinit(rpart *p) {
  ms__rowlayout_deinit(&p->L);
  ms_table_schema_deinit(&p->schema);
  if (p->ftype >= 0) H5Tclose(p->ftype);
  if (p->dset >= 0) H5Dclose(p->dset);
}

static void table_deinit(rtable *t) {
  if (t->cats)
    for (size_t j = 0; j < t->schema.n_columns; j++) free(t->cats[j]);
  free(t->cats);
  for (size_t k = 0; k < t->n_parts; k++) part_deinit(&t->parts[k]);
  free(t->parts);
  if (t->group >= 0) H5Gclose(t->group);
  ms_table_schema_deinit(&t->schema);
  free(t->name);
}

void ms_table_reader_free(ms_table_reader *r) {
  if (!r) return;
  ms__h5quiet q;
  ms__h5_quiet_begin(&q);
  for (size_t i = 0; i < r->n_tables; i++) table_deinit(&r->tables[i]);
  for (size_t i = 0; i < r->n_arrays; i++) {
    if (r->arrays[i].dset >= 0) H5Dclose(r->arrays[i].dset);
    free(r->arrays[i].path);
  }
  for (size_t i = 0; i < r->n_attrs; i++) {
    free(r->attr_names[i]);
    free(r->attr_values[i]);
  }
  free(r->attr_names);
  free(r->attr_values);
  free(r->tables);
  free(r->arrays);
  free(r->buf);
  if (r->file >= 0) H5Fclose(r->file);
  ms__h5_quiet_end(&q);
  free(r->path);
  free(r);
}

static herr_t table_name_cb(hid_t g, const char *name, const H5L_info_t *info, void *ud) {
  (void)g;
  (void)info;
  ms_table_reader *r = ud;
  rtable *nt = ms__realloc(r->tables, (r->n_tables + 1) * sizeof *nt);
  if (!nt) return -1;
  r->tables = nt;
  rtable *t = &r->tables[r->n_tables];
  memset(t, 0, sizeof *t);
  t->group = -1;
  if (!(t->name = ms__strdup(name))) return -1;
  r->n_tables++;
  return 0;
}

/* Opens dataset `where` as a part whose schema is its medsynth_schema
 * attribute; checks that the row type matches that schema's packed layout;
 * *rows gets its length. */
static ms_status open_part(ms_table_reader *r, rpart *p, const char *where, uint64_t *rows,
                           ms_diag *d) {
  p->dset = H5Dopen2(r->file, where, H5P_DEFAULT);
  if (p->dset < 0) return ms__h5_error(d, MS_ERR_FORMAT, where, "cannot open table dataset");
  char *json = obj_attr_text(p->dset, "medsynth_schema");
  if (!json)
    return ms_diag_add(d, MS_ERR_FORMAT, r->path, 0, 0, where,
                       "table has no medsynth_schema attribute");
  ms_status st = ms__schema_from_json(&p->schema, json, d, where);
  free(json);
  if (st) return st;
  if ((st = ms__rowlayout_init(&p->L, &p->schema))) return st;
  p->ftype = H5Dget_type(p->dset);
  if (p->ftype < 0 || H5Tget_class(p->ftype) != H5T_COMPOUND ||
      H5Tget_size(p->ftype) != p->L.row_size)
    return ms_diag_add(d, MS_ERR_FORMAT, r->path, 0, 0, where,
                       "row type does not match the stored schema");
  for (size_t j = 0; j < p->schema.n_columns; j++) {
    const ms_column *c = &p->schema.columns[j];
    int k = H5Tget_member_index(p->ftype, c->name);
    if (k < 0 || H5Tget_member_offset(p->ftype, (unsigned)k) != p->L.offset[j]) {
      H5Eclear2(H5E_DEFAULT);
      return ms_diag_add(d, MS_ERR_FORMAT, r->path, 0, 0, where,
                         "column '%s' missing or misplaced in the row type", c->name);
    }
  }
  hid_t sp = H5Dget_space(p->dset);
  hsize_t dim = 0;
  if (sp < 0 || H5Sget_simple_extent_ndims(sp) != 1 || H5Sget_simple_extent_dims(sp, &dim, NULL) < 0) {
    if (sp >= 0) H5Sclose(sp);
    return ms_diag_add(d, MS_ERR_FORMAT, r->path, 0, 0, where, "table dataset is not 1-D");
  }
  H5Sclose(sp);
  *rows = dim;
  return MS_OK;
}

/* A wide table: the group's schema and its parts, which must hold the
 * table's columns in order, with one row count. */
static ms_status open_wide(ms_table_reader *r, rtable *t, const char *where, ms_diag *d) {
  t->group = H5Gopen2(r->file, where, H5P_DEFAULT);
  if (t->group < 0) return ms__h5_error(d, MS_ERR_FORMAT, where, "cannot open table group");
  char *json = obj_attr_text(t->group, "medsynth_schema");
  uint64_t np = 0;
  if (!json || obj_attr_u64(t->group, "parts", &np) || np == 0) {
    free(json);
    H5Eclear2(H5E_DEFAULT);
    return ms_diag_add(d, MS_ERR_FORMAT, r->path, 0, 0, where,
                       "table group has no medsynth_schema or parts attribute");
  }
  ms_status st = ms__schema_from_json(&t->schema, json, d, where);
  free(json);
  if (st) return st;
  if (np > t->schema.n_columns)
    return ms_diag_add(d, MS_ERR_FORMAT, r->path, 0, 0, where, "more parts than columns");
  if (!(t->parts = ms__calloc((size_t)np, sizeof *t->parts))) return MS_ERR_NOMEM;
  size_t col = 0;
  for (size_t k = 0; k < np; k++) {
    rpart *p = &t->parts[k];
    p->dset = p->ftype = -1;
    t->n_parts++;
    char pw[1100];
    snprintf(pw, sizeof pw, "%s/%04zu", where, k);
    uint64_t rows = 0;
    if ((st = open_part(r, p, pw, &rows, d))) return st;
    if (k == 0) t->rows = rows;
    if (rows != t->rows)
      return ms_diag_add(d, MS_ERR_FORMAT, r->path, 0, 0, pw, "part has %" PRIu64 " rows, part 0 has %" PRIu64,
                         rows, t->rows);
    p->first = col;
    for (size_t j = 0; j < p->schema.n_columns; j++, col++)
      if (col >= t->schema.n_columns || strcmp(p->schema.columns[j].name, t->schema.columns[col].name) ||
          p->schema.columns[j].type != t->schema.columns[col].type)
        return ms_diag_add(d, MS_ERR_FORMAT, r->path, 0, 0, pw,
                           "column '%s' of the part is not column %zu of the table", p->schema.columns[j].name, col);
  }
  if (col != t->schema.n_columns)
    return ms_diag_add(d, MS_ERR_FORMAT, r->path, 0, 0, where, "the parts hold %zu of the table's %zu columns",
                       col, t->schema.n_columns);
  return MS_OK;
}

static ms_status open_table(ms_table_reader *r, rtable *t, ms_diag *d) {
  char where[1024];
  snprintf(where, sizeof where, "/tables/%s", t->name);
  H5O_info_t oi;
  ms_status st;
  if (H5Oget_info_by_name2(r->file, where, &oi, H5O_INFO_BASIC, H5P_DEFAULT) >= 0 &&
      oi.type == H5O_TYPE_GROUP) {
    if ((st = open_wide(r, t, where, d))) return st;
  } else {
    if (!(t->parts = ms__calloc(1, sizeof *t->parts))) return MS_ERR_NOMEM;
    t->parts[0].dset = t->parts[0].ftype = -1;
    t->n_parts = 1;
    if ((st = open_part(r, &t->parts[0], where, &t->rows, d))) return st;
    if ((st = ms_table_schema_copy(&t->schema, &t->parts[0].schema))) return st;
  }
  t->cats = ms__calloc(t->schema.n_columns ? t->schema.n_columns : 1, sizeof *t->cats);
  if (!t->cats) return MS_ERR_NOMEM;
  for (size_t j = 0; j < t->schema.n_columns; j++) {
    const ms_column *c = &t->schema.columns[j];
    if (c->type != MS_COL_CATEGORICAL || !c->n_categories) continue;
    catidx *ci = ms__malloc(c->n_categories * sizeof *ci);
    if (!ci) return MS_ERR_NOMEM;
    for (size_t k = 0; k < c->n_categories; k++) {
      ci[k].label = c->categories[k];
      ci[k].code = (int32_t)k;
    }
    qsort(ci, c->n_categories, sizeof *ci, cat_cmp);
    t->cats[j] = ci;
  }
  return MS_OK;
}

typedef struct {
  ms_table_reader *r;
  int fail;
} visit_ctx;

static herr_t array_cb(hid_t g, const char *name, const H5L_info_t *info, void *ud) {
  visit_ctx *v = ud;
  if (info->type != H5L_TYPE_HARD) return 0;
  if (!strncmp(name, "tables/", 7) || !strcmp(name, "tables")) return 0;
  H5O_info_t oi;
  if (H5Oget_info_by_name2(g, name, &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_DATASET)
    return 0;
  hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
  if (ds < 0) return 0;
  hid_t t = H5Dget_type(ds), sp = H5Dget_space(ds);
  ms_dtype dt = MS_DT_COUNT;
  if (H5Tequal(t, H5T_IEEE_F32LE) > 0) dt = MS_DT_FLOAT32;
  else if (H5Tequal(t, H5T_STD_U8LE) > 0) dt = MS_DT_UINT8;
  else if (H5Tequal(t, H5T_STD_U16LE) > 0) dt = MS_DT_UINT16;
  else if (H5Tequal(t, H5T_STD_I16LE) > 0) dt = MS_DT_INT16;
  else if (H5Tequal(t, H5T_STD_I32LE) > 0) dt = MS_DT_INT32;
  int rank = H5Sget_simple_extent_ndims(sp);
  if (dt == MS_DT_COUNT || rank < 1 || rank > 32) {
    H5Tclose(t);
    H5Sclose(sp);
    H5Dclose(ds);
    return 0;
  }
  ms_table_reader *r = v->r;
  rarray *na = ms__realloc(r->arrays, (r->n_arrays + 1) * sizeof *na);
  if (!na) goto fail;
  r->arrays = na;
  rarray *a = &r->arrays[r->n_arrays];
  memset(a, 0, sizeof *a);
  hsize_t dims[32];
  H5Sget_simple_extent_dims(sp, dims, NULL);
  for (int k = 0; k < rank; k++) a->dims[k] = dims[k];
  a->rank = rank;
  a->type = dt;
  a->dset = ds;
  if (ms__asprintf(&a->path, "/%s", name) < 0) {
    a->path = NULL;
    goto fail;
  }
  r->n_arrays++;
  H5Tclose(t);
  H5Sclose(sp);
  return 0;
fail:
  H5Tclose(t);
  H5Sclose(sp);
  H5Dclose(ds);
  v->fail = 1;
  return -1;
}

ms_status ms_table_reader_open(ms_table_reader **out, const char *path, ms_diag *d) {
  *out = NULL;
  struct stat sb;
  if (!path || stat(path, &sb) != 0)
    return ms_diag_add(d, MS_ERR_NOTFOUND, path, 0, 0, NULL, "no such file");
  if (S_ISDIR(sb.st_mode)) return ms_diag_add(d, MS_ERR_FORMAT, path, 0, 0, NULL, "is a directory");
  ms__h5quiet q;
  ms__h5_quiet_begin(&q);
  ms_status st = MS_OK;
  ms_table_reader *r = ms__calloc(1, sizeof *r);
  if (!r || !(r->path = ms__strdup(path))) {
    free(r);
    ms__h5_quiet_end(&q);
    return MS_ERR_NOMEM;
  }
  r->file = -1;
  htri_t is = H5Fis_hdf5(path);
  if (is <= 0) {
    H5Eclear2(H5E_DEFAULT);
    st = ms_diag_add(d, MS_ERR_FORMAT, path, 0, 0, NULL, "not an HDF5 file");
    goto out;
  }
  r->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (r->file < 0) {
    st = ms__h5_error(d, MS_ERR_FORMAT, NULL, "%s: cannot open HDF5 file", path);
    goto out;
  }
  if (H5Aexists(r->file, "medsynth_format") <= 0) {
    H5Eclear2(H5E_DEFAULT);
    st = ms_diag_add(d, MS_ERR_FORMAT, path, 0, 0, NULL,
                     "not a medsynth file (no medsynth_format attribute)");
    goto out;
  }
  hsize_t idx = 0;
  if (H5Aiterate2(r->file, H5_INDEX_NAME, H5_ITER_INC, &idx, root_attr_cb, r) < 0) {
    st = ms__h5_error(d, MS_ERR_FORMAT, NULL, "%s: cannot read root attributes", path);
    goto out;
  }
  if (H5Lexists(r->file, "/tables", H5P_DEFAULT) > 0) {
    hid_t g = H5Gopen2(r->file, "/tables", H5P_DEFAULT);
    idx = 0;
    if (g < 0 || H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, table_name_cb, r) < 0) {
      if (g >= 0) H5Gclose(g);
      st = ms__h5_error(d, MS_ERR_FORMAT, NULL, "%s: cannot list /tables", path);
      goto out;
    }
    H5Gclose(g);
    for (size_t i = 0; i < r->n_tables && st == MS_OK; i++) st = open_table(r, &r->tables[i], d);
    if (st) goto out;
  }
  visit_ctx v = {r, 0};
  if (H5Lvisit(r->file, H5_INDEX_NAME, H5_ITER_INC, array_cb, &v) < 0 || v.fail) {
    st = v.fail ? MS_ERR_NOMEM : ms__h5_error(d, MS_ERR_FORMAT, NULL, "%s: cannot list objects", path);
    goto out;
  }
out:
  H5Eclear2(H5E_DEFAULT);
  ms__h5_quiet_end(&q);
  if (st) {
    ms_table_reader_free(r);
    return st;
  }
  *out = r;
  return MS_OK;
}

/* ---- accessors -------------------------------------------------------- */

size_t ms_table_reader_n_tables(const ms_table_reader *r) { return r->n_tables; }
const ms_table_schema *ms_table_reader_schema(const ms_table_reader *r, size_t i) {
  return i < r->n_tables ? &r->tables[i].schema : NULL;
}
uint64_t ms_table_reader_rows(const ms_table_reader *r, size_t i) {
  return i < r->n_tables ? r->tables[i].rows : 0;
}
ms_status ms_table_reader_find(const ms_table_reader *r, const char *name, size_t *table) {
  for (size_t i = 0; name && i < r->n_tables; i++)
    if (!strcmp(r->tables[i].name, name)) {
      *table = i;
      return MS_OK;
    }
  return MS_ERR_NOTFOUND;
}
size_t ms_table_reader_n_attrs(const ms_table_reader *r) { return r->n_attrs; }
const char *ms_table_reader_attr_name(const ms_table_reader *r, size_t i) {
  return i < r->n_attrs ? r->attr_names[i] : NULL;
}
const char *ms_table_reader_attr_value(const ms_table_reader *r, size_t i) {
  return i < r->n_attrs ? r->attr_values[i] : NULL;
}
const char *ms_table_reader_attr(const ms_table_reader *r, const char *name) {
  for (size_t i = 0; name && i < r->n_attrs; i++)
    if (!strcmp(r->attr_names[i], name)) return r->attr_values[i];
  return NULL;
}
size_t ms_table_reader_n_arrays(const ms_table_reader *r) { return r->n_arrays; }
const char *ms_table_reader_array_path(const ms_table_reader *r, size_t i) {
  return i < r->n_arrays ? r->arrays[i].path : NULL;
}
ms_dtype ms_table_reader_array_dtype(const ms_table_reader *r, size_t i) {
  return i < r->n_arrays ? r->arrays[i].type : MS_DT_COUNT;
}
int ms_table_reader_array_rank(const ms_table_reader *r, size_t i) {
  return i < r->n_arrays ? r->arrays[i].rank : 0;
}
const uint64_t *ms_table_reader_array_dims(const ms_table_reader *r, size_t i) {
  return i < r->n_arrays ? r->arrays[i].dims : NULL;
}

/* ---- reading rows ----------------------------------------------------- */

static int read_rows(hid_t dset, hid_t mtype, uint64_t first, uint64_t n, void *buf) {
  if (n == 0) return 0;
  hid_t fs = H5Dget_space(dset);
  hsize_t start = first, count = n;
  hid_t ms = H5Screate_simple(1, &count, NULL);
  int rc = (fs < 0 || ms < 0 ||
            H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL) < 0 ||
            H5Dread(dset, mtype, ms, fs, H5P_DEFAULT, buf) < 0)
               ? -1
               : 0;
  if (fs >= 0) H5Sclose(fs);
  if (ms >= 0) H5Sclose(ms);
  return rc;
}

/* Unpacks n packed rows of part pt of table t into the part's columns of
 * chunk c (columns pt->first ...). */
static ms_status unpack(const rtable *t, const rpart *pt, const uint8_t *src, size_t n, ms_chunk *c,
                        ms_diag *d) {
  const size_t rs = pt->L.row_size;
  for (size_t jp = 0; jp < pt->schema.n_columns; jp++) {
    const size_t j = pt->first + jp;
    const ms_column *col = &t->schema.columns[j];
    const uint8_t *p = src + pt->L.offset[jp];
    const size_t w = pt->L.width[jp], vo = pt->L.valid_off[jp];
    uint8_t *valid = c->cols[j].valid;
    switch (col->type) {
      case MS_COL_INT64:
      case MS_COL_DATETIME:
      case MS_COL_FLOAT64: {
        uint8_t *o = c->cols[j].data;
        for (size_t r = 0; r < n; r++, p += rs) memcpy(o + r * 8, p, 8);
        if (col->type == MS_COL_FLOAT64 && valid)
          for (size_t r = 0; r < n; r++) valid[r] = !isnan(((double *)c->cols[j].data)[r]);
        break;
      }
      case MS_COL_DATE: {
        uint8_t *o = c->cols[j].data;
        for (size_t r = 0; r < n; r++, p += rs) memcpy(o + r * 4, p, 4);
        break;
      }
      case MS_COL_BOOL: {
        uint8_t *o = c->cols[j].data;
        for (size_t r = 0; r < n; r++, p += rs) o[r] = *p != 0;
        break;
      }
      case MS_COL_STRING: {
        const size_t sw = col->str_width + 1, cp = col->str_width < w ? col->str_width : w;
        char *o = c->cols[j].data;
        for (size_t r = 0; r < n; r++, p += rs) {
          memcpy(o + r * sw, p, cp);
          memset(o + r * sw + cp, 0, sw - cp);
        }
        break;
      }
      case MS_COL_CATEGORICAL: {
        int32_t *o = c->cols[j].data;
        char lab[4096];
        for (size_t r = 0; r < n; r++, p += rs) {
          int missing = vo != SIZE_MAX && !p[vo - pt->L.offset[jp]];
          o[r] = 0;
          if (missing) continue;
          size_t l = strnlen((const char *)p, w);
          if (l >= sizeof lab) l = sizeof lab - 1;
          memcpy(lab, p, l);
          lab[l] = '\0';
          catidx key = {lab, 0};
          const catidx *hit =
              t->cats[j] ? bsearch(&key, t->cats[j], col->n_categories, sizeof key, cat_cmp) : NULL;
          if (!hit) {
            char where[512];
            snprintf(where, sizeof where, "/tables/%s/row %" PRIu64 "/%s", t->name,
                     c->first_row + r, col->name);
            return ms_diag_add(d, MS_ERR_FORMAT, NULL, 0, 0, where,
                               "label \"%s\" is not in the column's category list", lab);
          }
          o[r] = hit->code;
        }
        break;
      }
      default:
        return MS_ERR_INTERNAL;
    }
    if (vo != SIZE_MAX && valid) {
      const uint8_t *vp = src + vo;
      for (size_t r = 0; r < n; r++, vp += rs) valid[r] = *vp != 0;
    }
  }
  return MS_OK;
}

ms_status ms_table_reader_read(ms_table_reader *r, size_t table, uint64_t first_row,
                               ms_chunk *c, ms_diag *d) {
  if (table >= r->n_tables) return ms_diag_add(d, MS_ERR_INVALID, r->path, 0, 0, NULL, "no table %zu", table);
  rtable *t = &r->tables[table];
  if (c->schema->n_columns != t->schema.n_columns)
    return ms_diag_add(d, MS_ERR_INVALID, r->path, 0, 0, t->name,
                       "chunk was not made for this table's schema");
  for (size_t j = 0; j < t->schema.n_columns; j++)
    if (c->schema->columns[j].type != t->schema.columns[j].type ||
        (t->schema.columns[j].type == MS_COL_STRING &&
         c->schema->columns[j].str_width != t->schema.columns[j].str_width))
      return ms_diag_add(d, MS_ERR_INVALID, r->path, 0, 0, t->name,
                         "chunk column %zu does not match the table", j);
  if (first_row > t->rows)
    return ms_diag_add(d, MS_ERR_RANGE, r->path, 0, 0, t->name,
                       "row %" PRIu64 " beyond the table's %" PRIu64 " rows", first_row, t->rows);
  uint64_t n = t->rows - first_row;
  if (n > c->capacity) n = c->capacity;
  c->first_row = first_row;
  c->n_rows = 0;
  if (n == 0) return MS_OK;
  /* Missing rows of columns with a validity member hold zero bytes. */
  for (size_t j = 0; j < c->schema->n_columns; j++)
    if (c->cols[j].valid) memset(c->cols[j].valid, 1, (size_t)n);
  ms_status st = MS_OK;
  for (size_t k = 0; k < t->n_parts && st == MS_OK; k++) {
    const rpart *pt = &t->parts[k];
    if (n > SIZE_MAX / pt->L.row_size || grow(r, (size_t)n * pt->L.row_size)) return MS_ERR_NOMEM;
    ms__h5quiet q;
    ms__h5_quiet_begin(&q);
    int rc = read_rows(pt->dset, pt->ftype, first_row, n, r->buf);
    st = rc ? ms__h5_error(d, MS_ERR_IO, t->name, "%s: cannot read rows %" PRIu64 "..%" PRIu64,
                           r->path, first_row, first_row + n)
            : MS_OK;
    ms__h5_quiet_end(&q);
    if (st == MS_OK) st = unpack(t, pt, r->buf, (size_t)n, c, d);
  }
  if (st == MS_OK) c->n_rows = (size_t)n;
  return st;
}

/* Recomputes one dataset's "xxh64" from its rows; MS_ERR_DATA on mismatch. */
static ms_status verify_dataset(ms_table_reader *r, const rtable *t, const rpart *pt, uint64_t *computed,
                                ms_diag *d) {
  uint64_t stored;
  if (obj_attr_u64(pt->dset, "xxh64", &stored)) {
    H5Eclear2(H5E_DEFAULT);
    return ms_diag_add(d, MS_ERR_NOTFOUND, r->path, 0, 0, t->name, "table has no xxh64 attribute");
  }
  ms_status st = MS_OK;
  size_t block = (1u << 20) / pt->L.row_size + 1;
  XXH64_state_t *xx = XXH64_createState();
  if (!xx || grow(r, block * pt->L.row_size)) st = MS_ERR_NOMEM;
  if (xx) XXH64_reset(xx, 0);
  for (uint64_t i = 0; st == MS_OK && i < t->rows; i += block) {
    uint64_t n = t->rows - i < block ? t->rows - i : block;
    if (read_rows(pt->dset, pt->ftype, i, n, r->buf))
      st = ms__h5_error(d, MS_ERR_IO, t->name, "%s: cannot read rows", r->path);
    else
      XXH64_update(xx, r->buf, (size_t)n * pt->L.row_size);
  }
  uint64_t dig = xx ? XXH64_digest(xx) : 0;
  if (xx) XXH64_freeState(xx);
  *computed = dig;
  if (st == MS_OK && dig != stored)
    st = ms_diag_add(d, MS_ERR_DATA, r->path, 0, 0, t->name,
                     "checksum mismatch: stored xxh64 %016" PRIx64 ", data gives %016" PRIx64,
                     stored, dig);
  return st;
}

ms_status ms_table_reader_verify(ms_table_reader *r, size_t table, uint64_t *computed,
                                 ms_diag *d) {
  if (table >= r->n_tables) return MS_ERR_INVALID;
  rtable *t = &r->tables[table];
  ms__h5quiet q;
  ms__h5_quiet_begin(&q);
  ms_status st = MS_OK;
  uint64_t dig = 0;
  if (t->group < 0) {
    st = verify_dataset(r, t, &t->parts[0], &dig, d);
  } else {
    /* each part against its own checksum, then the table's: the XXH64 of
     * the parts' checksums (docs/file-format.md, "Wide tables") */
    uint64_t stored, *pd = ms__malloc(t->n_parts * sizeof *pd);
    if (!pd) st = MS_ERR_NOMEM;
    for (size_t k = 0; k < t->n_parts && st == MS_OK; k++) st = verify_dataset(r, t, &t->parts[k], &pd[k], d);
    if (st == MS_OK) dig = XXH64(pd, t->n_parts * sizeof *pd, 0);
    free(pd);
    if (st == MS_OK && obj_attr_u64(t->group, "xxh64", &stored)) {
      H5Eclear2(H5E_DEFAULT);
      st = ms_diag_add(d, MS_ERR_NOTFOUND, r->path, 0, 0, t->name, "table has no xxh64 attribute");
    } else if (st == MS_OK && dig != stored) {
      st = ms_diag_add(d, MS_ERR_DATA, r->path, 0, 0, t->name,
                       "checksum mismatch: stored xxh64 %016" PRIx64 ", parts give %016" PRIx64, stored, dig);
    }
  }
  ms__h5_quiet_end(&q);
  if (computed) *computed = dig;
  return st;
}

/* ---- arrays ----------------------------------------------------------- */

static hid_t mem_type(ms_dtype t) {
  switch (t) {
    case MS_DT_FLOAT32:
      return H5T_NATIVE_FLOAT;
    case MS_DT_UINT8:
      return H5T_NATIVE_UINT8;
    case MS_DT_UINT16:
      return H5T_NATIVE_UINT16;
    case MS_DT_INT16:
      return H5T_NATIVE_INT16;
    default:
      return H5T_NATIVE_INT32;
  }
}

static int read_items(const rarray *a, uint64_t first, uint64_t n, void *out) {
  hsize_t start[32] = {0}, count[32];
  for (int k = 0; k < a->rank; k++) count[k] = a->dims[k];
  start[0] = first;
  count[0] = n;
  hid_t fs = H5Dget_space(a->dset), ms = H5Screate_simple(a->rank, count, NULL);
  int rc = (fs < 0 || ms < 0 ||
            H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
            H5Dread(a->dset, mem_type(a->type), ms, fs, H5P_DEFAULT, out) < 0)
               ? -1
               : 0;
  if (fs >= 0) H5Sclose(fs);
  if (ms >= 0) H5Sclose(ms);
  return rc;
}

static size_t item_bytes(const rarray *a) {
  size_t b = ms_dtype_size(a->type);
  for (int k = 1; k < a->rank; k++) b *= (size_t)a->dims[k];
  return b;
}

ms_status ms_table_reader_read_items(ms_table_reader *r, size_t array, uint64_t first,
                                     uint64_t n, void *out, ms_diag *d) {
  if (array >= r->n_arrays) return MS_ERR_INVALID;
  rarray *a = &r->arrays[array];
  if (first > a->dims[0] || n > a->dims[0] - first)
    return ms_diag_add(d, MS_ERR_RANGE, r->path, 0, 0, a->path, "items outside the array");
  if (n == 0) return MS_OK;
  ms__h5quiet q;
  ms__h5_quiet_begin(&q);
  ms_status st = read_items(a, first, n, out)
                     ? ms__h5_error(d, MS_ERR_IO, a->path, "%s: cannot read items", r->path)
                     : MS_OK;
  ms__h5_quiet_end(&q);
  return st;
}

ms_status ms_table_reader_verify_array(ms_table_reader *r, size_t array, ms_diag *d) {
  if (array >= r->n_arrays) return MS_ERR_INVALID;
  rarray *a = &r->arrays[array];
  ms__h5quiet q;
  ms__h5_quiet_begin(&q);
  uint64_t stored;
  if (obj_attr_u64(a->dset, "xxh64_items", &stored)) {
    H5Eclear2(H5E_DEFAULT);
    ms__h5_quiet_end(&q);
    return MS_ERR_NOTFOUND;
  }
  size_t ib = item_bytes(a);
  ms_status st = grow(r, ib ? ib : 1);
  XXH64_state_t *xx = XXH64_createState();
  if (!xx) st = MS_ERR_NOMEM;
  else XXH64_reset(xx, 0);
  for (uint64_t i = 0; st == MS_OK && i < a->dims[0]; i++) {
    if (read_items(a, i, 1, r->buf)) {
      st = ms__h5_error(d, MS_ERR_IO, a->path, "%s: cannot read item %" PRIu64, r->path, i);
      break;
    }
    uint64_t h = XXH64(r->buf, ib, 0);
    XXH64_update(xx, &h, 8);
  }
  uint64_t dig = xx ? XXH64_digest(xx) : 0;
  if (xx) XXH64_freeState(xx);
  ms__h5_quiet_end(&q);
  if (st == MS_OK && dig != stored)
    st = ms_diag_add(d, MS_ERR_DATA, r->path, 0, 0, a->path,
                     "checksum mismatch: stored xxh64_items %016" PRIx64 ", data gives %016" PRIx64,
                     stored, dig);
  return st;
}
