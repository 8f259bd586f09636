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
 * Damaged files (docs/reliability.md, "Reading damaged files"): the
 * superblock is checked before HDF5 sees the file (core/h5super.h); every
 * attribute and group listing is read by a probe in a guarded child process
 * (core/guard.h), because HDF5 1.10.8 crashes and loops on damaged global
 * heaps, which hold variable-length strings; this process opens only the
 * datasets the probe found and reads rows. Every count and size taken from
 * the file is bounded before it sizes an allocation: attribute values and
 * text, string widths, row size, rows against the "rows" attribute and
 * against the bytes actually stored, array item sizes.
 *
 * Invariants: memory is bounded by the caller's chunk capacity (plus one
 * packed buffer of the same number of rows); verification streams. */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "core/alloc.h"
#include "core/diag.h"
#include "core/guard.h"
#include "core/h5super.h"
#include "io/io_private.h"

/* Bounds on what a file may claim. */
#define ATTR_MAX_VALUES (1 << 20)          /* values in one attribute */
#define ATTR_MAX_TEXT ((size_t)64 << 20)   /* bytes of one attribute's text */
#define MAX_OBJECTS 100000                 /* tables, arrays, root attributes */
#define MAX_RANK 32
#define MAX_ITEM_BYTES ((size_t)0xffffffffu) /* one array item (the writer's limit) */
#define MAX_ROW_BYTES ((size_t)1 << 30)    /* one table row */
/* Deflate never compresses by more than 1032:1, so a dataset whose stored
 * bytes times this is below its logical size claims rows it cannot hold. */
#define MAX_DEFLATE_RATIO 1100

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
  /* From the guarded probe: */
  char *json;
  int has_rows_attr, has_xxh, xxh_unreadable;
  uint64_t rows_attr, xxh, storage;
} rpart;

typedef struct {
  char *name;
  ms_table_schema schema; /* every column */
  rpart *parts;           /* one for a table stored as one dataset */
  size_t n_parts;
  int wide;               /* stored as a group of parts */
  uint64_t rows;
  catidx **cats; /* per column, sorted by label (categorical only) */
  /* From the guarded probe (wide tables: the group's attributes): */
  char *json;
  int has_rows_attr, has_xxh, xxh_unreadable;
  uint64_t rows_attr, xxh;
} rtable;

typedef struct {
  char *path;
  ms_dtype type;
  int rank;
  uint64_t dims[MAX_RANK];
  hid_t dset;
  int has_items, has_xxh, xxh_unreadable;
  uint64_t items, xxh, storage;
} rarray;

struct ms_h5_reader {
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

static ms_status grow(ms_h5_reader *r, size_t bytes) {
  if (bytes <= r->buf_cap) return MS_OK;
  uint8_t *nb = ms__realloc(r->buf, bytes);
  if (!nb) return MS_ERR_NOMEM;
  r->buf = nb;
  r->buf_cap = bytes;
  return MS_OK;
}

/* ---- probe: everything read from attributes, in a guarded child --------
 *
 * Attributes are where HDF5 1.10.8 crashes and loops on damage: their
 * variable-length strings live in global heap collections, which carry no
 * checksum. So every attribute, and the listing of groups, is read by
 * probe() under ms__guard_run; the parent opens only datasets (checksummed
 * object headers and chunk indexes) and reads rows. The probe's payload:
 *
 *   u64 n, n x (str name, str text)                root attributes
 *   u64 n, n x (str name, u64 flags, u64 rows,     tables (flags: 1 rows
 *               u64 xxh64, str schema,             attribute, 2 xxh64,
 *               u64 n_parts, n_parts x part)       4 xxh64 unreadable,
 *                                                  8 wide: a group)
 *   part: str schema, u64 flags, u64 rows,         one dataset (flags as
 *         u64 xxh64, u64 storage                   for tables, 1 to 4)
 *   u64 n, n x (str path, u64 flags, u64 items,    arrays (flags: 1 items,
 *               u64 xxh64_items, u64 storage)      2 xxh64_items, 4 it is
 *                                                  unreadable)
 *
 * Damage to what a reader can do without (provenance attributes, `rows`,
 * the checksums, `items`) is a warning: the value reads "(unreadable)", a
 * count is not cross-checked, and verification fails later. Damage to what
 * it needs (medsynth_format, a schema, a dataset) ends the open.
 *
 * A table stored as one dataset has one part (that dataset) and an empty
 * table-level schema; a wide table's table-level fields are its group's
 * attributes, and its parts are the datasets <group>/0000, 0001, ...
 */

typedef struct {
  ms__guard *g;
  ms_diag *d;
  const char *path;
  ms__gbuf list;
  size_t n;
  ms_status st;
} probe_ctx;

static ms_status h5fail(probe_ctx *c, const char *where, const char *what) {
  return ms__h5_error_at(c->d, MS_ERR_DATA, c->path, where, "%s", what);
}

static void join(char *out, size_t *len, size_t i, const char *s, size_t l) {
  if (i) memcpy(out + *len, ", ", 2), *len += 2;
  memcpy(out + *len, s, l);
  *len += l;
  out[*len] = '\0';
}

/* Text of attribute `a` (values joined by ", "), every size bounded before
 * anything is allocated. */
static ms_status attr_text(probe_ctx *c, hid_t a, const char *obj, const char *name, char **out) {
  *out = NULL;
  ms_status st = MS_OK;
  char *txt = NULL;
  size_t len = 0;
  hid_t t = H5Aget_type(a), sp = H5Aget_space(a), mt = -1;
  hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
  H5T_class_t cls = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
  if (t < 0 || sp < 0 || n < 0 || cls == H5T_NO_CLASS) {
    st = ms__h5_error_at(c->d, MS_ERR_DATA, c->path, obj,
                         "attribute \"%s\": cannot read its type or shape", name);
    goto done;
  }
  if (n > ATTR_MAX_VALUES) {
    st = ms_diag_add(c->d, MS_ERR_DATA, c->path, 0, 0, obj,
                     "attribute \"%s\": %lld values (at most %d are read; damaged?)", name,
                     (long long)n, ATTR_MAX_VALUES);
    goto done;
  }
  if (n == 0) {
    txt = ms__strdup("");
  } else if (cls == H5T_STRING) {
    htri_t var = H5Tis_variable_str(t);
    H5T_cset_t cs = H5Tget_cset(t);
    size_t w = var > 0 ? 0 : H5Tget_size(t);
    if (var < 0 || cs < 0 || (!var && (w == 0 || w > ATTR_MAX_TEXT / (size_t)n))) {
      st = ms__h5_error_at(c->d, MS_ERR_DATA, c->path, obj,
                           "attribute \"%s\": implausible string type (damaged?)", name);
      goto done;
    }
    if ((mt = H5Tcopy(H5T_C_S1)) < 0 || H5Tset_cset(mt, cs) < 0 ||
        H5Tset_size(mt, var ? H5T_VARIABLE : w) < 0 ||
        (!var && H5Tset_strpad(mt, H5T_STR_NULLPAD) < 0)) {
      st = MS_ERR_NOMEM;
      goto done;
    }
    if (var) {
      char **v = ms__calloc((size_t)n, sizeof *v);
      if (!v) {
        st = MS_ERR_NOMEM;
        goto done;
      }
      if (H5Aread(a, mt, v) < 0) {
        free(v);
        st = ms__h5_error_at(c->d, MS_ERR_DATA, c->path, obj, "attribute \"%s\": cannot read", name);
        goto done;
      }
      size_t total = 1;
      for (hssize_t i = 0; i < n && st == MS_OK; i++) {
        size_t l = v[i] ? strnlen(v[i], ATTR_MAX_TEXT) : 0;
        if (l + 2 > ATTR_MAX_TEXT - total)
          st = ms_diag_add(c->d, MS_ERR_DATA, c->path, 0, 0, obj,
                           "attribute \"%s\": text longer than %zu bytes (damaged?)", name,
                           ATTR_MAX_TEXT);
        total += l + 2;
      }
      if (st == MS_OK && !(txt = ms__malloc(total))) st = MS_ERR_NOMEM;
      for (hssize_t i = 0; st == MS_OK && i < n; i++)
        join(txt, &len, (size_t)i, v[i] ? v[i] : "", v[i] ? strnlen(v[i], ATTR_MAX_TEXT) : 0);
      H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, v);
      free(v);
    } else {
      char *raw = ms__malloc((size_t)n * w);
      if (!raw || !(txt = ms__malloc((size_t)n * (w + 2) + 1))) {
        free(raw);
        st = MS_ERR_NOMEM;
        goto done;
      }
      if (H5Aread(a, mt, raw) < 0) {
        free(raw);
        st = ms__h5_error_at(c->d, MS_ERR_DATA, c->path, obj, "attribute \"%s\": cannot read", name);
        goto done;
      }
      txt[0] = '\0';
      for (hssize_t i = 0; i < n; i++) {
        const char *e = raw + (size_t)i * w;
        join(txt, &len, (size_t)i, e, strnlen(e, w));
      }
      free(raw);
    }
  } else if (cls == H5T_INTEGER || cls == H5T_FLOAT) {
    H5T_sign_t sign = cls == H5T_INTEGER ? H5Tget_sign(t) : H5T_SGN_2;
    int is_uint = sign == H5T_SGN_NONE;
    hid_t memt = cls == H5T_FLOAT ? H5T_NATIVE_DOUBLE : is_uint ? H5T_NATIVE_UINT64 : H5T_NATIVE_INT64;
    uint64_t *v = ms__calloc((size_t)n, 8);
    size_t cap = (size_t)n * 32 + 1;
    if (!v || !(txt = ms__malloc(cap))) {
      free(v);
      st = MS_ERR_NOMEM;
      goto done;
    }
    if (sign == H5T_SGN_ERROR || H5Aread(a, memt, v) < 0) {
      free(v);
      st = ms__h5_error_at(c->d, MS_ERR_DATA, c->path, obj, "attribute \"%s\": cannot read", name);
      goto done;
    }
    txt[0] = '\0';
    for (hssize_t i = 0; i < n && len < cap; i++) {
      char one[40];
      if (cls == H5T_FLOAT) {
        double x;
        memcpy(&x, &v[i], 8);
        snprintf(one, sizeof one, "%.17g", x);
      } else if (is_uint) {
        snprintf(one, sizeof one, "%" PRIu64, v[i]);
      } else {
        snprintf(one, sizeof one, "%" PRId64, (int64_t)v[i]);
      }
      join(txt, &len, (size_t)i, one, strlen(one));
    }
    free(v);
  } else {
    txt = ms__strdup("(unsupported attribute type)");
  }
  if (st == MS_OK && !txt) st = MS_ERR_NOMEM;
done:
  if (mt >= 0) H5Tclose(mt);
  if (t >= 0) H5Tclose(t);
  if (sp >= 0) H5Sclose(sp);
  if (st) {
    free(txt);
    H5Eclear2(H5E_DEFAULT);
    return st;
  }
  *out = txt;
  return MS_OK;
}

/* Text of attribute `name` of obj into *out; *out stays NULL when there is
 * no such attribute. */
static ms_status obj_attr_text(probe_ctx *c, hid_t obj, const char *where, const char *name,
                               char **out) {
  *out = NULL;
  ms__guard_at(c->g, "%s: attribute \"%s\"", where, name);
  htri_t e = H5Aexists(obj, name);
  if (e < 0) return ms__h5_error_at(c->d, MS_ERR_DATA, c->path, where, "attribute \"%s\": cannot look it up", name);
  if (e == 0) return MS_OK;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a < 0) return ms__h5_error_at(c->d, MS_ERR_DATA, c->path, where, "attribute \"%s\": cannot open", name);
  ms_status st = attr_text(c, a, where, name, out);
  H5Aclose(a);
  return st;
}

/* One unsigned integer attribute: *has = 0 when absent. */
static ms_status obj_attr_u64(probe_ctx *c, hid_t obj, const char *where, const char *name,
                              int *has, uint64_t *v) {
  *has = 0;
  *v = 0;
  ms__guard_at(c->g, "%s: attribute \"%s\"", where, name);
  htri_t e = H5Aexists(obj, name);
  if (e < 0) return ms__h5_error_at(c->d, MS_ERR_DATA, c->path, where, "attribute \"%s\": cannot look it up", name);
  if (e == 0) return MS_OK;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a < 0) return ms__h5_error_at(c->d, MS_ERR_DATA, c->path, where, "attribute \"%s\": cannot open", name);
  hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
  int ok = t >= 0 && sp >= 0 && H5Tget_class(t) == H5T_INTEGER &&
           H5Sget_simple_extent_npoints(sp) == 1;
  ms_status st = MS_OK;
  if (!ok)
    st = ms_diag_add(c->d, MS_ERR_DATA, c->path, 0, 0, where,
                     "attribute \"%s\": expected one integer (damaged?)", name);
  else if (H5Aread(a, H5T_NATIVE_UINT64, v) < 0)
    st = ms__h5_error_at(c->d, MS_ERR_DATA, c->path, where, "attribute \"%s\": cannot read", name);
  else
    *has = 1;
  if (t >= 0) H5Tclose(t);
  if (sp >= 0) H5Sclose(sp);
  H5Aclose(a);
  H5Eclear2(H5E_DEFAULT);
  return st;
}

/* Moves the entries of `from` into c->d as warnings. */
static void demote(probe_ctx *c, const ms_diag *from) {
  for (size_t i = 0; i < from->count; i++) {
    const ms_diag_entry *e = &from->entries[i];
    ms_diag_warn(c->d, e->file, e->line, e->column, e->where, "%s", e->message);
  }
}

/* An attribute the reader can do without: a failure other than running
 * out of memory becomes a warning and *has = -1 (unreadable). */
static ms_status optional_u64(probe_ctx *c, hid_t obj, const char *where, const char *name,
                              int *has, uint64_t *v) {
  ms_diag scratch, *keep = c->d;
  ms_diag_init(&scratch);
  c->d = &scratch;
  ms_status st = obj_attr_u64(c, obj, where, name, has, v);
  c->d = keep;
  if (st && st != MS_ERR_NOMEM) {
    demote(c, &scratch);
    *has = -1;
    st = MS_OK;
  }
  ms_diag_deinit(&scratch);
  return st;
}

static herr_t root_attr_cb(hid_t loc, const char *name, const H5A_info_t *info, void *ud) {
  (void)info;
  probe_ctx *c = ud;
  if (++c->n > MAX_OBJECTS) {
    c->st = ms_diag_add(c->d, MS_ERR_DATA, c->path, 0, 0, "/", "more than %d attributes (damaged?)",
                        MAX_OBJECTS);
    return -1;
  }
  char *v = NULL;
  ms_diag scratch, *keep = c->d;
  ms_diag_init(&scratch);
  c->d = &scratch;
  ms_status st = obj_attr_text(c, loc, "/", name, &v);
  c->d = keep;
  if (st && st != MS_ERR_NOMEM) demote(c, &scratch);
  ms_diag_deinit(&scratch);
  if (st == MS_ERR_NOMEM) {
    c->st = st;
    return -1;
  }
  ms__gbuf_put_str(&c->list, name);
  ms__gbuf_put_str(&c->list, st ? "(unreadable)" : v ? v : "");
  free(v);
  return 0;
}

static herr_t table_name_cb(hid_t g, const char *name, const H5L_info_t *info, void *ud) {
  (void)g;
  probe_ctx *c = ud;
  if (++c->n > MAX_OBJECTS) {
    c->st = ms_diag_add(c->d, MS_ERR_DATA, c->path, 0, 0, "/tables", "more than %d tables (damaged?)",
                        MAX_OBJECTS);
    return -1;
  }
  if (info->type != H5L_TYPE_HARD) {
    c->st = ms_diag_add(c->d, MS_ERR_DATA, c->path, 0, 0, "/tables",
                        "\"%s\" is a soft or external link, not a table", name);
    return -1;
  }
  ms__gbuf_put_str(&c->list, name);
  return 0;
}

/* Element type and shape of a dataset that can be an array; MS_DT_COUNT
 * when it cannot (unknown type, rank 0 or above MAX_RANK). */
static ms_dtype array_shape(hid_t ds, int *rank, uint64_t *dims) {
  hid_t t = H5Dget_type(ds), sp = H5Dget_space(ds);
  ms_dtype dt = MS_DT_COUNT;
  if (t >= 0) {
    if (H5Tequal(t, H5T_IEEE_F32LE) > 0) dt = MS_DT_FLOAT32;
    else if (H5Tequal(t, H5T_STD_U8LE) > 0) dt = MS_DT_UINT8;
    else if (H5Tequal(t, H5T_STD_U16LE) > 0) dt = MS_DT_UINT16;
    else if (H5Tequal(t, H5T_STD_I16LE) > 0) dt = MS_DT_INT16;
    else if (H5Tequal(t, H5T_STD_I32LE) > 0) dt = MS_DT_INT32;
  }
  int rk = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
  hsize_t hd[MAX_RANK];
  if (dt != MS_DT_COUNT && rk >= 1 && rk <= MAX_RANK && H5Sget_simple_extent_dims(sp, hd, NULL) == rk) {
    *rank = rk;
    for (int k = 0; k < rk; k++) dims[k] = hd[k];
  } else {
    dt = MS_DT_COUNT;
  }
  if (t >= 0) H5Tclose(t);
  if (sp >= 0) H5Sclose(sp);
  H5Eclear2(H5E_DEFAULT);
  return dt;
}

static herr_t array_cb(hid_t g, const char *name, const H5L_info_t *info, void *ud) {
  probe_ctx *c = ud;
  if (info->type != H5L_TYPE_HARD) return 0;
  if (!strncmp(name, "tables/", 7) || !strcmp(name, "tables")) return 0;
  size_t nl = strlen(name);
  char *where = ms__malloc(nl + 2);
  if (!where) {
    c->st = MS_ERR_NOMEM;
    return -1;
  }
  where[0] = '/';
  memcpy(where + 1, name, nl + 1);
  ms__guard_at(c->g, "%s", where);
  ms_status st = MS_OK;
  hid_t ds = -1;
  H5O_info_t oi;
  if (H5Oget_info_by_name2(g, name, &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0) {
    st = h5fail(c, where, "cannot read the object's header");
    goto done;
  }
  if (oi.type != H5O_TYPE_DATASET) goto done;
  if ((ds = H5Dopen2(g, name, H5P_DEFAULT)) < 0) {
    st = h5fail(c, where, "cannot open the dataset");
    goto done;
  }
  int rank = 0;
  uint64_t dims[MAX_RANK];
  if (array_shape(ds, &rank, dims) == MS_DT_COUNT) goto done;
  if (++c->n > MAX_OBJECTS) {
    st = ms_diag_add(c->d, MS_ERR_DATA, c->path, 0, 0, NULL, "more than %d arrays (damaged?)",
                     MAX_OBJECTS);
    goto done;
  }
  int has_items = 0, has_xxh = 0;
  uint64_t items = 0, xxh = 0;
  st = optional_u64(c, ds, where, "items", &has_items, &items);
  if (!st) st = optional_u64(c, ds, where, "xxh64_items", &has_xxh, &xxh);
  if (st) goto done;
  ms__guard_at(c->g, "%s: chunk index", where);
  uint64_t storage = H5Dget_storage_size(ds);
  H5Eclear2(H5E_DEFAULT);
  ms__gbuf_put_str(&c->list, where);
  ms__gbuf_put_u64(&c->list, (uint64_t)(has_items > 0) | (uint64_t)(has_xxh > 0) << 1 |
                                 (uint64_t)(has_xxh < 0) << 2);
  ms__gbuf_put_u64(&c->list, items);
  ms__gbuf_put_u64(&c->list, xxh);
  ms__gbuf_put_u64(&c->list, storage);
done:
  if (ds >= 0) H5Dclose(ds);
  free(where);
  c->st = st;
  return st ? -1 : 0;
}

/* Appends c->list (c->n entries) to out as "u64 n, entries". */
static void flush_list(probe_ctx *c, ms__gbuf *out) {
  ms__gbuf_put_u64(out, c->n);
  ms__gbuf_put_bytes(out, c->list.p, c->list.len);
  if (c->list.fail) out->fail = 1;
  ms__gbuf_free(&c->list);
  c->n = 0;
}

/* One dataset of a table (the table, or a part of a wide table) as a part
 * record of the payload. */
static ms_status probe_part(probe_ctx *c, hid_t file, const char *where, ms__gbuf *out) {
  ms__guard_at(c->g, "%s", where);
  ms_status st = MS_OK;
  hid_t ds = H5Dopen2(file, where, H5P_DEFAULT);
  char *json = NULL;
  int has_rows = 0, has_xxh = 0;
  uint64_t rows = 0, xxh = 0, storage = 0;
  if (ds < 0) st = h5fail(c, where, "cannot open the table dataset");
  if (!st) st = obj_attr_text(c, ds, where, "medsynth_schema", &json);
  if (!st && !json)
    st = ms_diag_add(c->d, MS_ERR_DATA, c->path, 0, 0, where, "table has no medsynth_schema attribute");
  if (!st) st = optional_u64(c, ds, where, "rows", &has_rows, &rows);
  if (!st) st = optional_u64(c, ds, where, "xxh64", &has_xxh, &xxh);
  if (!st) {
    ms__guard_at(c->g, "%s: chunk index", where);
    storage = H5Dget_storage_size(ds);
    H5Eclear2(H5E_DEFAULT);
  }
  if (ds >= 0) H5Dclose(ds);
  ms__gbuf_put_str(out, json ? json : "");
  ms__gbuf_put_u64(out, (uint64_t)(has_rows > 0) | (uint64_t)(has_xxh > 0) << 1 |
                            (uint64_t)(has_xxh < 0) << 2);
  ms__gbuf_put_u64(out, rows);
  ms__gbuf_put_u64(out, xxh);
  ms__gbuf_put_u64(out, storage);
  free(json);
  return st;
}

/* One table's record: a dataset (one part), or a wide table's group (its
 * schema, "parts", "rows" and "xxh64") followed by its parts. */
static ms_status probe_table(probe_ctx *c, hid_t file, const char *name, const char *where,
                             ms__gbuf *out) {
  ms__guard_at(c->g, "%s", where);
  H5O_info_t oi;
  if (H5Oget_info_by_name2(file, where, &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0)
    return h5fail(c, where, "cannot read the object's header");
  ms__gbuf_put_str(out, name);
  if (oi.type != H5O_TYPE_GROUP) {
    ms__gbuf_put_u64(out, 0);
    ms__gbuf_put_u64(out, 0);
    ms__gbuf_put_u64(out, 0);
    ms__gbuf_put_str(out, "");
    ms__gbuf_put_u64(out, 1);
    return probe_part(c, file, where, out);
  }
  hid_t grp = H5Gopen2(file, where, H5P_DEFAULT);
  if (grp < 0) return h5fail(c, where, "cannot open the table group");
  char *json = NULL;
  int has_parts = 0, has_rows = 0, has_xxh = 0;
  uint64_t parts = 0, rows = 0, xxh = 0;
  ms_status st = obj_attr_text(c, grp, where, "medsynth_schema", &json);
  if (!st) st = obj_attr_u64(c, grp, where, "parts", &has_parts, &parts);
  if (!st && (!json || !has_parts))
    st = ms_diag_add(c->d, MS_ERR_DATA, c->path, 0, 0, where,
                     "table group has no medsynth_schema or parts attribute");
  if (!st && (parts == 0 || parts > MAX_OBJECTS))
    st = ms_diag_add(c->d, MS_ERR_DATA, c->path, 0, 0, where,
                     "table group claims %" PRIu64 " parts (damaged?)", parts);
  if (!st) st = optional_u64(c, grp, where, "rows", &has_rows, &rows);
  if (!st) st = optional_u64(c, grp, where, "xxh64", &has_xxh, &xxh);
  H5Gclose(grp);
  H5Eclear2(H5E_DEFAULT);
  if (!st) {
    ms__gbuf_put_u64(out, (uint64_t)(has_rows > 0) | (uint64_t)(has_xxh > 0) << 1 |
                              (uint64_t)(has_xxh < 0) << 2 | 8u);
    ms__gbuf_put_u64(out, rows);
    ms__gbuf_put_u64(out, xxh);
    ms__gbuf_put_str(out, json);
    ms__gbuf_put_u64(out, parts);
  }
  free(json);
  for (uint64_t k = 0; k < parts && st == MS_OK; k++) {
    char pw[1100];
    snprintf(pw, sizeof pw, "%s/%04" PRIu64, where, k);
    st = probe_part(c, file, pw, out);
  }
  return st;
}

static ms_status probe_tables(probe_ctx *c, hid_t file, ms__gbuf *out) {
  ms__guard_at(c->g, "/tables");
  htri_t has = H5Lexists(file, "/tables", H5P_DEFAULT);
  if (has < 0) return h5fail(c, "/tables", "cannot look up the group");
  if (has) {
    hid_t g = H5Gopen2(file, "/tables", H5P_DEFAULT);
    if (g < 0) return h5fail(c, "/tables", "cannot open the group");
    hsize_t idx = 0;
    herr_t e = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, table_name_cb, c);
    H5Gclose(g);
    if (c->st) return c->st;
    if (e < 0) return h5fail(c, "/tables", "cannot list the tables");
  }
  ms__gbuf names = c->list;
  size_t n = c->n;
  memset(&c->list, 0, sizeof c->list);
  c->n = 0;
  names.pos = 0;
  ms__gbuf_put_u64(out, n);
  ms_status st = MS_OK;
  for (size_t i = 0; i < n && st == MS_OK; i++) {
    char *name = ms__gbuf_get_str(&names);
    if (!name) {
      st = MS_ERR_NOMEM;
      break;
    }
    char where[1024];
    snprintf(where, sizeof where, "/tables/%s", name);
    st = probe_table(c, file, name, where, out);
    free(name);
  }
  ms__gbuf_free(&names);
  return st;
}

static ms_status probe(ms__guard *g, void *vpath, ms__gbuf *out, ms_diag *d) {
  probe_ctx c = {g, d, vpath, {0}, 0, MS_OK};
  ms__h5quiet q;
  ms__h5_quiet_begin(&q);
  ms_status st = MS_OK;
  hid_t f = -1;
  ms__guard_at(g, "superblock");
  htri_t is = H5Fis_hdf5(c.path);
  if (is <= 0) {
    st = ms_diag_add(d, MS_ERR_FORMAT, c.path, 0, 0, NULL, "not an HDF5 file");
    goto out;
  }
  f = H5Fopen(c.path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) {
    st = ms__h5_error_at(d, MS_ERR_DATA, c.path, NULL, "cannot open the HDF5 file (damaged?)");
    goto out;
  }
  ms__guard_at(g, "/: attribute \"medsynth_format\"");
  htri_t fmt = H5Aexists(f, "medsynth_format");
  if (fmt < 0) {
    st = h5fail(&c, "/", "cannot read the root group's attributes");
    goto out;
  }
  if (fmt == 0) {
    st = ms_diag_add(d, MS_ERR_FORMAT, c.path, 0, 0, NULL, "not a medsynth file (no medsynth_format attribute)");
    goto out;
  }
  hsize_t idx = 0;
  herr_t e = H5Aiterate2(f, H5_INDEX_NAME, H5_ITER_INC, &idx, root_attr_cb, &c);
  if (c.st || e < 0) {
    st = c.st ? c.st : h5fail(&c, "/", "cannot list the root attributes");
    goto out;
  }
  flush_list(&c, out);
  if ((st = probe_tables(&c, f, out))) goto out;
  ms__guard_at(g, "object list");
  e = H5Lvisit(f, H5_INDEX_NAME, H5_ITER_INC, array_cb, &c);
  if (c.st || e < 0) {
    st = c.st ? c.st : h5fail(&c, NULL, "cannot list the file's objects");
    goto out;
  }
  flush_list(&c, out);
out:
  ms__gbuf_free(&c.list);
  if (f >= 0) H5Fclose(f);
  H5Eclear2(H5E_DEFAULT);
  ms__h5_quiet_end(&q);
  return st;
}

/* ---- open: datasets in this process ------------------------------------ */

static void part_deinit(rpart *p) {
  ms__rowlayout_deinit(&p->L);
  ms_table_schema_deinit(&p->schema);
  if (p->ftype >= 0) H5Tclose(p->ftype);
  if (p->dset >= 0) H5Dclose(p->dset);
  free(p->json);
}

static void table_deinit(rtable *t) {
  if (t->cats)
    for (size_t j = 0; j < t->schema.n_columns; j++) free(t->cats[j]);
  free(t->cats);
  for (size_t k = 0; k < t->n_parts; k++) part_deinit(&t->parts[k]);
  free(t->parts);
  ms_table_schema_deinit(&t->schema);
  free(t->json);
  free(t->name);
}

void ms_h5_reader_free(ms_h5_reader *r) {
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

/* Checks that a dataset of `bytes` logical bytes can be backed by `storage`
 * stored bytes of a file of `file_size` bytes. */
static ms_status check_storage(const ms_h5_reader *r, const char *where, uint64_t bytes,
                               uint64_t storage, uint64_t file_size, ms_diag *d) {
  if (storage > file_size)
    return ms_diag_add(d, MS_ERR_DATA, r->path, 0, 0, where,
                       "dataset claims %" PRIu64 " stored bytes in a file of %" PRIu64 " (damaged)",
                       storage, file_size);
  if (bytes / MAX_DEFLATE_RATIO > storage)
    return ms_diag_add(d, MS_ERR_DATA, r->path, 0, 0, where,
                       "dataset claims %" PRIu64 " bytes but stores only %" PRIu64 " (damaged)",
                       bytes, storage);
  return MS_OK;
}

/* Opens dataset `where` as part p, whose schema is the probe's
 * medsynth_schema text; checks that the row type matches that schema's
 * packed layout and that its length is bounded (the "rows" attribute, the
 * bytes stored); *rows gets its length. */
static ms_status open_part(ms_h5_reader *r, rpart *p, const char *where, uint64_t file_size,
                           uint64_t *rows, ms_diag *d) {
  p->dset = H5Dopen2(r->file, where, H5P_DEFAULT);
  if (p->dset < 0) return ms__h5_error_at(d, MS_ERR_DATA, r->path, where, "cannot open the table dataset");
  ms_status st = ms__schema_from_json(&p->schema, p->json, r->path, where, d);
  free(p->json);
  p->json = NULL;
  if (st) return st;
  if ((st = ms__rowlayout_init(&p->L, &p->schema)))
    return st == MS_ERR_NOMEM ? ms__diag_nomem(d, r->path, where, "the row layout")
                              : ms_diag_add(d, MS_ERR_DATA, r->path, 0, 0, where,
                                            "schema attribute describes an impossible row");
  if (p->L.row_size > MAX_ROW_BYTES)
    return ms_diag_add(d, MS_ERR_DATA, r->path, 0, 0, where,
                       "rows of %zu bytes (at most %zu are read; damaged?)", p->L.row_size, MAX_ROW_BYTES);
  p->ftype = H5Dget_type(p->dset);
  if (p->ftype < 0 || H5Tget_class(p->ftype) != H5T_COMPOUND ||
      H5Tget_size(p->ftype) != p->L.row_size) {
    H5Eclear2(H5E_DEFAULT);
    return ms_diag_add(d, MS_ERR_DATA, r->path, 0, 0, where,
                       "row type does not match the stored schema");
  }
  for (size_t j = 0; j < p->schema.n_columns; j++) {
    const ms_column *c = &p->schema.columns[j];
    int k = H5Tget_member_index(p->ftype, c->name);
    if (k < 0 || H5Tget_member_offset(p->ftype, (unsigned)k) != p->L.offset[j]) {
      H5Eclear2(H5E_DEFAULT);
      return ms_diag_add(d, MS_ERR_DATA, r->path, 0, 0, where,
                         "column '%s' missing or misplaced in the row type", c->name);
    }
  }
  hid_t sp = H5Dget_space(p->dset);
  hsize_t dim = 0;
  if (sp < 0 || H5Sget_simple_extent_ndims(sp) != 1 || H5Sget_simple_extent_dims(sp, &dim, NULL) != 1) {
    if (sp >= 0) H5Sclose(sp);
    H5Eclear2(H5E_DEFAULT);
    return ms_diag_add(d, MS_ERR_DATA, r->path, 0, 0, where, "table dataset is not 1-D");
  }
  H5Sclose(sp);
  *rows = dim;
  if (p->has_rows_attr && p->rows_attr != dim)
    return ms_diag_add(d, MS_ERR_DATA, r->path, 0, 0, where,
                       "the dataset holds %" PRIu64 " rows, its \"rows\" attribute says %" PRIu64
                       " (damaged)",
                       (uint64_t)dim, p->rows_attr);
  if (dim > SIZE_MAX / p->L.row_size)
    return ms_diag_add(d, MS_ERR_DATA, r->path, 0, 0, where, "%" PRIu64 " rows cannot be addressed",
                       (uint64_t)dim);
  return check_storage(r, where, dim * p->L.row_size, p->storage, file_size, d);
}

/* A wide table: the group's schema and its parts, which must hold the
 * table's columns in order, with one row count. */
static ms_status open_wide(ms_h5_reader *r, rtable *t, const char *where, uint64_t file_size,
                           ms_diag *d) {
  ms_status st = ms__schema_from_json(&t->schema, t->json, r->path, where, d);
  free(t->json);
  t->json = NULL;
  if (st) return st;
  if (t->n_parts > t->schema.n_columns)
    return ms_diag_add(d, MS_ERR_DATA, r->path, 0, 0, where, "more parts than columns (damaged?)");
  size_t col = 0;
  for (size_t k = 0; k < t->n_parts; k++) {
    rpart *p = &t->parts[k];
    char pw[1100];
    snprintf(pw, sizeof pw, "%s/%04zu", where, k);
    uint64_t rows = 0;
    if ((st = open_part(r, p, pw, file_size, &rows, d))) return st;
    if (k == 0) t->rows = rows;
    if (rows != t->rows)
      return ms_diag_add(d, MS_ERR_DATA, r->path, 0, 0, pw,
                         "part has %" PRIu64 " rows, part 0 has %" PRIu64 " (damaged)", rows, t->rows);
    p->first = col;
    for (size_t j = 0; j < p->schema.n_columns; j++, col++)
      if (col >= t->schema.n_columns || strcmp(p->schema.columns[j].name, t->schema.columns[col].name) ||
          p->schema.columns[j].type != t->schema.columns[col].type)
        return ms_diag_add(d, MS_ERR_DATA, r->path, 0, 0, pw,
                           "column '%s' of the part is not column %zu of the table", p->schema.columns[j].name,
                           col);
  }
  if (col != t->schema.n_columns)
    return ms_diag_add(d, MS_ERR_DATA, r->path, 0, 0, where, "the parts hold %zu of the table's %zu columns",
                       col, t->schema.n_columns);
  if (t->has_rows_attr && t->rows_attr != t->rows)
    return ms_diag_add(d, MS_ERR_DATA, r->path, 0, 0, where,
                       "the parts hold %" PRIu64 " rows, the table's \"rows\" attribute says %" PRIu64
                       " (damaged)",
                       t->rows, t->rows_attr);
  return MS_OK;
}

static ms_status open_table(ms_h5_reader *r, rtable *t, uint64_t file_size, ms_diag *d) {
  char where[1024];
  snprintf(where, sizeof where, "/tables/%s", t->name);
  ms_status st;
  if (t->wide) {
    if ((st = open_wide(r, t, where, file_size, d))) return st;
  } else {
    if ((st = open_part(r, &t->parts[0], where, file_size, &t->rows, d))) return st;
    if ((st = ms_table_schema_copy(&t->schema, &t->parts[0].schema)))
      return st == MS_ERR_NOMEM ? ms__diag_nomem(d, r->path, where, "a copy of the schema") : st;
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

static ms_status open_array(ms_h5_reader *r, rarray *a, uint64_t file_size, ms_diag *d) {
  a->dset = H5Dopen2(r->file, a->path, H5P_DEFAULT);
  if (a->dset < 0) return ms__h5_error_at(d, MS_ERR_DATA, r->path, a->path, "cannot open the array dataset");
  a->type = array_shape(a->dset, &a->rank, a->dims);
  if (a->type == MS_DT_COUNT)
    return ms_diag_add(d, MS_ERR_DATA, r->path, 0, 0, a->path, "cannot read the array's type or shape");
  size_t item = ms_dtype_size(a->type);
  for (int k = 1; k < a->rank; k++) {
    if (a->dims[k] == 0 || a->dims[k] > MAX_ITEM_BYTES / item)
      return ms_diag_add(d, MS_ERR_DATA, r->path, 0, 0, a->path,
                         "dimension %d (%" PRIu64 ") makes one item larger than %zu bytes (damaged?)", k,
                         a->dims[k], MAX_ITEM_BYTES);
    item *= (size_t)a->dims[k];
  }
  if (a->dims[0] > SIZE_MAX / item)
    return ms_diag_add(d, MS_ERR_DATA, r->path, 0, 0, a->path, "%" PRIu64 " items cannot be addressed",
                       a->dims[0]);
  if (a->has_items) {
    /* Written by medsynth: every item is stored. */
    if (a->items != a->dims[0])
      return ms_diag_add(d, MS_ERR_DATA, r->path, 0, 0, a->path,
                         "the dataset holds %" PRIu64 " items, its \"items\" attribute says %" PRIu64
                         " (damaged)",
                         a->dims[0], a->items);
    return check_storage(r, a->path, a->dims[0] * item, a->storage, file_size, d);
  }
  return MS_OK;
}

/* Fills r from the probe's payload (untrusted: every count bounded). */
/* A dataset's entry in the probe's listing (a table's part or an array):
 * its string (schema or path), then flags, count, checksum and storage. */
static char *get_entry(ms__gbuf *b, int *has_count, int *has_xxh, int *xxh_unreadable, uint64_t *count,
                       uint64_t *xxh, uint64_t *storage) {
  char *s = ms__gbuf_get_str(b);
  uint64_t flags = ms__gbuf_get_u64(b);
  *count = ms__gbuf_get_u64(b);
  *xxh = ms__gbuf_get_u64(b);
  *storage = ms__gbuf_get_u64(b);
  *has_count = (flags & 1) != 0;
  *has_xxh = (flags & 2) != 0;
  *xxh_unreadable = (flags & 4) != 0;
  return s;
}

static ms_status take_manifest(ms_h5_reader *r, ms__gbuf *b, ms_diag *d) {
  uint64_t n = ms__gbuf_get_u64(b);
  if (n > MAX_OBJECTS) goto bad;
  r->attr_names = ms__calloc(n ? n : 1, sizeof *r->attr_names);
  r->attr_values = ms__calloc(n ? n : 1, sizeof *r->attr_values);
  if (!r->attr_names || !r->attr_values) return MS_ERR_NOMEM;
  for (; r->n_attrs < n; r->n_attrs++) {
    r->attr_names[r->n_attrs] = ms__gbuf_get_str(b);
    r->attr_values[r->n_attrs] = ms__gbuf_get_str(b);
    if (!r->attr_names[r->n_attrs] || !r->attr_values[r->n_attrs]) {
      r->n_attrs++;
      goto bad;
    }
  }
  n = ms__gbuf_get_u64(b);
  if (n > MAX_OBJECTS) goto bad;
  if (!(r->tables = ms__calloc(n ? n : 1, sizeof *r->tables))) return MS_ERR_NOMEM;
  for (; r->n_tables < n; r->n_tables++) {
    rtable *t = &r->tables[r->n_tables];
    t->name = ms__gbuf_get_str(b);
    uint64_t flags = ms__gbuf_get_u64(b);
    t->rows_attr = ms__gbuf_get_u64(b);
    t->xxh = ms__gbuf_get_u64(b);
    t->json = ms__gbuf_get_str(b);
    uint64_t np = ms__gbuf_get_u64(b);
    t->has_rows_attr = (flags & 1) != 0;
    t->has_xxh = (flags & 2) != 0;
    t->xxh_unreadable = (flags & 4) != 0;
    t->wide = (flags & 8) != 0;
    r->n_tables++;
    if (!t->name || !t->json || b->fail || np == 0 || np > MAX_OBJECTS || (!t->wide && np != 1)) goto bad;
    if (!(t->parts = ms__calloc((size_t)np, sizeof *t->parts)))
      return ms__diag_nomem(d, r->path, t->name, "the table's parts");
    for (; t->n_parts < np; t->n_parts++) {
      rpart *p = &t->parts[t->n_parts];
      p->dset = p->ftype = -1;
      p->json = get_entry(b, &p->has_rows_attr, &p->has_xxh, &p->xxh_unreadable, &p->rows_attr, &p->xxh,
                          &p->storage);
      if (!p->json || b->fail) {
        t->n_parts++;
        goto bad;
      }
    }
    r->n_tables--;
  }
  n = ms__gbuf_get_u64(b);
  if (n > MAX_OBJECTS) goto bad;
  if (!(r->arrays = ms__calloc(n ? n : 1, sizeof *r->arrays))) return MS_ERR_NOMEM;
  for (; r->n_arrays < n; r->n_arrays++) {
    rarray *a = &r->arrays[r->n_arrays];
    a->dset = -1;
    a->path = get_entry(b, &a->has_items, &a->has_xxh, &a->xxh_unreadable, &a->items, &a->xxh, &a->storage);
    if (!a->path || b->fail) {
      r->n_arrays++;
      goto bad;
    }
  }
  if (b->pos == b->len) return MS_OK;
bad:
  if (b->nomem) return ms__diag_nomem(d, r->path, NULL, "the file's listing");
  return ms_diag_add(d, MS_ERR_DATA, r->path, 0, 0, NULL, "the reader's result is malformed");
}

ms_status ms_h5_reader_open(ms_h5_reader **out, const char *path, ms_diag *d) {
  *out = NULL;
  struct stat sb;
  if (!path || stat(path, &sb) != 0)
    return ms_diag_add(d, MS_ERR_NOTFOUND, path, 0, 0, NULL, "no such file");
  if (S_ISDIR(sb.st_mode)) return ms_diag_add(d, MS_ERR_FORMAT, path, 0, 0, NULL, "is a directory");
  ms_status st = ms__h5_superblock_check(path, MS_ERR_DATA, "not an HDF5 file", d);
  if (st) return st;
  ms__gbuf res;
  if ((st = ms__guard_run(path, MS_ERR_DATA, probe, (void *)path, &res, d))) {
    ms__gbuf_free(&res);
    return st;
  }
  ms_h5_reader *r = ms__calloc(1, sizeof *r);
  if (!r || !(r->path = ms__strdup(path))) {
    free(r);
    ms__gbuf_free(&res);
    return MS_ERR_NOMEM;
  }
  r->file = -1;
  st = take_manifest(r, &res, d);
  ms__gbuf_free(&res);
  ms__h5quiet q;
  ms__h5_quiet_begin(&q);
  if (!st && (r->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT)) < 0)
    st = ms__h5_error_at(d, MS_ERR_DATA, path, NULL, "cannot open the HDF5 file (damaged?)");
  uint64_t size = (uint64_t)sb.st_size;
  for (size_t i = 0; i < r->n_tables && st == MS_OK; i++) st = open_table(r, &r->tables[i], size, d);
  for (size_t i = 0; i < r->n_arrays && st == MS_OK; i++) st = open_array(r, &r->arrays[i], size, d);
  H5Eclear2(H5E_DEFAULT);
  ms__h5_quiet_end(&q);
  if (st) {
    ms_h5_reader_free(r);
    return st;
  }
  *out = r;
  return MS_OK;
}

/* ---- accessors -------------------------------------------------------- */

size_t ms_h5_reader_n_tables(const ms_h5_reader *r) { return r->n_tables; }
const ms_table_schema *ms_h5_reader_schema(const ms_h5_reader *r, size_t i) {
  return i < r->n_tables ? &r->tables[i].schema : NULL;
}
uint64_t ms_h5_reader_rows(const ms_h5_reader *r, size_t i) {
  return i < r->n_tables ? r->tables[i].rows : 0;
}
ms_status ms_h5_reader_find(const ms_h5_reader *r, const char *name, size_t *table) {
  for (size_t i = 0; name && i < r->n_tables; i++)
    if (!strcmp(r->tables[i].name, name)) {
      *table = i;
      return MS_OK;
    }
  return MS_ERR_NOTFOUND;
}
size_t ms_h5_reader_n_attrs(const ms_h5_reader *r) { return r->n_attrs; }
const char *ms_h5_reader_attr_name(const ms_h5_reader *r, size_t i) {
  return i < r->n_attrs ? r->attr_names[i] : NULL;
}
const char *ms_h5_reader_attr_value(const ms_h5_reader *r, size_t i) {
  return i < r->n_attrs ? r->attr_values[i] : NULL;
}
const char *ms_h5_reader_attr(const ms_h5_reader *r, const char *name) {
  for (size_t i = 0; name && i < r->n_attrs; i++)
    if (!strcmp(r->attr_names[i], name)) return r->attr_values[i];
  return NULL;
}
size_t ms_h5_reader_n_arrays(const ms_h5_reader *r) { return r->n_arrays; }
const char *ms_h5_reader_array_path(const ms_h5_reader *r, size_t i) {
  return i < r->n_arrays ? r->arrays[i].path : NULL;
}
ms_dtype ms_h5_reader_array_dtype(const ms_h5_reader *r, size_t i) {
  return i < r->n_arrays ? r->arrays[i].type : MS_DT_COUNT;
}
int ms_h5_reader_array_rank(const ms_h5_reader *r, size_t i) {
  return i < r->n_arrays ? r->arrays[i].rank : 0;
}
const uint64_t *ms_h5_reader_array_dims(const ms_h5_reader *r, size_t i) {
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
static ms_status unpack(const rtable *t, const rpart *pt, const char *path, const uint8_t *src,
                        size_t n, ms_chunk *c, ms_diag *d) {
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
            return ms_diag_add(d, MS_ERR_DATA, path, 0, 0, where,
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

ms_status ms_h5_reader_read(ms_h5_reader *r, size_t table, uint64_t first_row,
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
    char where[1100];
    if (t->wide)
      snprintf(where, sizeof where, "/tables/%s/%04zu", t->name, k);
    else
      snprintf(where, sizeof where, "/tables/%s", t->name);
    if (n > SIZE_MAX / pt->L.row_size || grow(r, (size_t)n * pt->L.row_size))
      return ms__diag_nomem(d, r->path, where, "the rows read");
    ms__h5quiet q;
    ms__h5_quiet_begin(&q);
    int rc = read_rows(pt->dset, pt->ftype, first_row, n, r->buf);
    st = rc ? ms__h5_error_at(d, ms__h5_read_status(), r->path, where,
                              "cannot read rows %" PRIu64 "..%" PRIu64, first_row, first_row + n)
            : MS_OK;
    ms__h5_quiet_end(&q);
    if (st == MS_OK) st = unpack(t, pt, r->path, r->buf, (size_t)n, c, d);
  }
  if (st == MS_OK) c->n_rows = (size_t)n;
  return st;
}

/* Recomputes one dataset's "xxh64" from its rows (`where` names it);
 * MS_ERR_DATA on mismatch. */
static ms_status verify_dataset(ms_h5_reader *r, const rtable *t, const rpart *pt,
                                const char *where, uint64_t *computed, ms_diag *d) {
  *computed = 0;
  if (pt->xxh_unreadable)
    return ms_diag_add(d, MS_ERR_DATA, r->path, 0, 0, where,
                       "the table's xxh64 attribute cannot be read (damaged)");
  if (!pt->has_xxh)
    return ms_diag_add(d, MS_ERR_NOTFOUND, r->path, 0, 0, where, "table has no xxh64 attribute");
  const uint64_t stored = pt->xxh;
  ms_status st = MS_OK;
  size_t block = (1u << 20) / pt->L.row_size + 1;
  XXH64_state_t *xx = XXH64_createState();
  if (!xx || grow(r, block * pt->L.row_size)) st = ms__diag_nomem(d, r->path, where, "verifying the rows");
  if (xx) XXH64_reset(xx, 0);
  for (uint64_t i = 0; st == MS_OK && i < t->rows; i += block) {
    uint64_t n = t->rows - i < block ? t->rows - i : block;
    if (read_rows(pt->dset, pt->ftype, i, n, r->buf))
      st = ms__h5_error_at(d, ms__h5_read_status(), r->path, where,
                           "cannot read rows %" PRIu64 "..%" PRIu64, i, i + n);
    else
      XXH64_update(xx, r->buf, (size_t)n * pt->L.row_size);
  }
  uint64_t dig = xx ? XXH64_digest(xx) : 0;
  if (xx) XXH64_freeState(xx);
  *computed = dig;
  if (st == MS_OK && dig != stored)
    st = ms_diag_add(d, MS_ERR_DATA, r->path, 0, 0, where,
                     "checksum mismatch: stored xxh64 %016" PRIx64 ", data gives %016" PRIx64,
                     stored, dig);
  return st;
}

ms_status ms_h5_reader_verify(ms_h5_reader *r, size_t table, uint64_t *computed,
                                 ms_diag *d) {
  if (table >= r->n_tables) return MS_ERR_INVALID;
  rtable *t = &r->tables[table];
  ms_status st = MS_OK;
  uint64_t dig = 0;
  ms__h5quiet q;
  ms__h5_quiet_begin(&q);
  if (!t->wide) {
    st = verify_dataset(r, t, &t->parts[0], t->name, &dig, d);
  } else if (t->xxh_unreadable) {
    st = ms_diag_add(d, MS_ERR_DATA, r->path, 0, 0, t->name,
                     "the table's xxh64 attribute cannot be read (damaged)");
  } else if (!t->has_xxh) {
    st = ms_diag_add(d, MS_ERR_NOTFOUND, r->path, 0, 0, t->name, "table has no xxh64 attribute");
  } else {
    /* each part against its own checksum, then the table's: the XXH64 of
     * the parts' checksums (docs/file-format.md, "Wide tables") */
    uint64_t *pd = ms__malloc(t->n_parts * sizeof *pd);
    if (!pd) st = ms__diag_nomem(d, r->path, t->name, "the parts' checksums");
    for (size_t k = 0; k < t->n_parts && st == MS_OK; k++) {
      char where[1100];
      snprintf(where, sizeof where, "%s/%04zu", t->name, k);
      st = verify_dataset(r, t, &t->parts[k], where, &pd[k], d);
    }
    if (st == MS_OK) dig = XXH64(pd, t->n_parts * sizeof *pd, 0);
    free(pd);
    if (st == MS_OK && dig != t->xxh)
      st = ms_diag_add(d, MS_ERR_DATA, r->path, 0, 0, t->name,
                       "checksum mismatch: stored xxh64 %016" PRIx64 ", parts give %016" PRIx64, t->xxh,
                       dig);
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

ms_status ms_h5_reader_read_items(ms_h5_reader *r, size_t array, uint64_t first,
                                     uint64_t n, void *out, ms_diag *d) {
  if (array >= r->n_arrays) return MS_ERR_INVALID;
  rarray *a = &r->arrays[array];
  if (first > a->dims[0] || n > a->dims[0] - first)
    return ms_diag_add(d, MS_ERR_RANGE, r->path, 0, 0, a->path, "items outside the array");
  if (n == 0) return MS_OK;
  ms__h5quiet q;
  ms__h5_quiet_begin(&q);
  ms_status st = read_items(a, first, n, out)
                     ? ms__h5_error_at(d, ms__h5_read_status(), r->path, a->path,
                                       "cannot read items %" PRIu64 "..%" PRIu64, first, first + n)
                     : MS_OK;
  ms__h5_quiet_end(&q);
  return st;
}

ms_status ms_h5_reader_verify_array(ms_h5_reader *r, size_t array, ms_diag *d) {
  if (array >= r->n_arrays) return MS_ERR_INVALID;
  rarray *a = &r->arrays[array];
  if (a->xxh_unreadable)
    return ms_diag_add(d, MS_ERR_DATA, r->path, 0, 0, a->path,
                       "the array's xxh64_items attribute cannot be read (damaged)");
  if (!a->has_xxh) return MS_ERR_NOTFOUND;
  const uint64_t stored = a->xxh;
  ms__h5quiet q;
  ms__h5_quiet_begin(&q);
  size_t ib = item_bytes(a);
  ms_status st = grow(r, ib ? ib : 1);
  XXH64_state_t *xx = XXH64_createState();
  if (!xx) st = MS_ERR_NOMEM;
  else XXH64_reset(xx, 0);
  for (uint64_t i = 0; st == MS_OK && i < a->dims[0]; i++) {
    if (read_items(a, i, 1, r->buf)) {
      st = ms__h5_error_at(d, ms__h5_read_status(), r->path, a->path, "cannot read item %" PRIu64, i);
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
