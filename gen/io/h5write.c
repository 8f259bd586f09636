/* HDF5 writer: tables as chunked, extendible compound datasets under
 * /tables, N-d arrays as chunked datasets with one item per chunk
 * (docs/file-format.md). A table whose compound row type would not fit in
 * an object header message (ms__h5_compound_bytes > 65,535 bytes) becomes a
 * group of column-group datasets, each written exactly like a table
 * ("Wide tables"); narrower tables never change form.
 *
 * Speed: HDF5's deflate filter runs on the calling thread only, at roughly
 * 30-40 MB/s per core. Instead, rows are packed into raw chunks, a bounded
 * batch of chunks is shuffled + deflated in parallel (OpenMP, zlib), and each
 * compressed chunk is handed to H5Dwrite_chunk with filter mask 0. The
 * dataset declares the same shuffle + deflate pipeline, so every HDF5 reader
 * decodes the chunks as if HDF5 had compressed them.
 *
 * Invariants:
 *   - Bytes never depend on the thread count: batches hold a fixed number of
 *     chunks (MS__BATCH), compression of a chunk is a pure function of its
 *     bytes, and chunks are written in index order by one thread, so the
 *     sequence of HDF5 calls is the same for any thread count.
 *   - Memory is flat in the row count: at most MS__BATCH raw chunks plus as
 *     many compressed chunks are held per open table.
 *   - The partial last chunk is zero-padded; the dataset extent hides it.
 *   - No timestamps: object time tracking is off for every object, libver
 *     bounds are fixed to v110, and "created" is written only when asked.
 *   - Attribute "xxh64" of a table = XXH64 (seed 0) of the packed rows
 *     (rows * row_size bytes, in row order, padding chunk bytes excluded),
 *     which equals XXH64 of the dataset's raw bytes read as the file type.
 *   - H5Fclose never runs with dirty metadata that cannot be written (see
 *     close_file): HDF5 1.10 frees a file whose close failed but keeps its
 *     ID, and its exit handler then crashes closing it again.
 *   - Out of memory: medsynth's own allocations (buffers, copies, the
 *     schema JSON) are made before the HDF5 calls that need them, or are
 *     told apart from HDF5 failures, and reported as MS_ERR_NOMEM; HDF5's
 *     and zlib's allocations are their own (a failure inside HDF5 reads as
 *     an HDF5 error, MS_ERR_IO). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include "core/alloc.h"
#include "core/diag.h"
#include <math.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include <zlib.h>

#include "core/pool.h"
#include "io/io_private.h"
#include "medsynth/version.h"

#define MS__BATCH 8
#define MS__CHUNK_TARGET_BYTES (512u * 1024u)
#define MS__MAX_RANK 32

typedef struct h5table {
  char *name;
  ms_table_schema schema;
  ms__rowlayout L;
  hid_t dset;
  size_t chunk_rows, chunk_bytes;
  uint64_t rows;           /* rows handed to HDF5 so far */
  uint64_t chunks_written; /* chunk index of raw chunk 0 of the batch */
  /* Two batches of packed rows: one being filled (half) while the other,
   * already written, waits for its rows to be added to the checksum, which
   * the next parallel pass does beside its packing (the checksum is a
   * stream: batches are hashed in order, each once). */
  uint8_t *raw_mem;        /* 2 * MS__BATCH * chunk_bytes */
  uint8_t *raw;            /* the half being filled */
  const uint8_t *pend;     /* the other half, when its bytes are not hashed yet */
  size_t pend_bytes;
  size_t cur, fill;        /* current chunk in batch, rows in it */
  /* compressed chunks of the batch: a chunk is compressed by the task that
   * fills it, while its bytes are still in that core's cache */
  uint8_t *zout; /* MS__BATCH * zcap */
  size_t zcap;
  size_t zlen[MS__BATCH];
  uint8_t zdone[MS__BATCH];
  XXH64_state_t *xx;
  char **padded; /* per categorical column: its labels zero-padded to the width */
  int ended;
  /* A wide table (row type too large for one object header) is a group of
   * part datasets, each holding consecutive columns: this entry then has no
   * dataset or buffers of its own, only the group and its parts. */
  hid_t group;
  struct h5table **parts;
  size_t n_parts;
  size_t *part_first; /* first column of each part */
  uint64_t digest;    /* the "xxh64" written when the dataset ended */
} h5table;

typedef struct {
  char *path;
  hid_t dset;
  ms_dtype type;
  int rank;
  hsize_t dims[MS__MAX_RANK];
  size_t item_bytes;
  uint64_t *digest;
  uint8_t *written;
} h5array;

struct ms__h5w {
  hid_t file;
  char *tmp_path; /* the (temporary) file HDF5 writes */
  int level;
  int threads;
  size_t chunk_rows_opt;
  h5table **tables;
  size_t n_tables;
  h5array **arrays;
  size_t n_arrays;
  /* Compression workspace, grown to the largest chunk seen. */
  size_t ws_bytes;
  uint8_t *scratch; /* one ws_bytes slot per thread (reused: stays in cache) */
  size_t n_slots;
  uint8_t *zout;    /* MS__BATCH * compressBound(ws_bytes) */
  size_t zcap;
  size_t zlen[MS__BATCH];
};

/* ---- small HDF5 helpers ---------------------------------------------- */

static hid_t ocpl_new(hid_t cls) {
  hid_t p = H5Pcreate(cls);
  if (p >= 0 && H5Pset_obj_track_times(p, 0) < 0) {
    H5Pclose(p);
    return -1;
  }
  return p;
}

static hid_t vlen_str_type(void) {
  hid_t t = H5Tcopy(H5T_C_S1);
  if (t < 0) return -1;
  if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
    H5Tclose(t);
    return -1;
  }
  return t;
}

/* Writes (replacing) attribute `name` on obj with type t, dataspace sp. */
static int put_attr(hid_t obj, const char *name, hid_t t, hid_t sp, const void *buf) {
  htri_t ex = H5Aexists(obj, name);
  if (ex < 0) return -1;
  if (ex > 0 && H5Adelete(obj, name) < 0) return -1;
  hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
  if (a < 0) return -1;
  herr_t e = H5Awrite(a, t, buf);
  H5Aclose(a);
  return e < 0 ? -1 : 0;
}

static int attr_str(hid_t obj, const char *name, const char *v) {
  hid_t t = vlen_str_type(), sp = H5Screate(H5S_SCALAR);
  int r = (t < 0 || sp < 0) ? -1 : put_attr(obj, name, t, sp, &v);
  if (t >= 0) H5Tclose(t);
  if (sp >= 0) H5Sclose(sp);
  return r;
}

static int attr_str_array(hid_t obj, const char *name, char *const *v, size_t n) {
  hsize_t dim = n;
  hid_t t = vlen_str_type(), sp = H5Screate_simple(1, &dim, NULL);
  int r = (t < 0 || sp < 0) ? -1 : put_attr(obj, name, t, sp, v);
  if (t >= 0) H5Tclose(t);
  if (sp >= 0) H5Sclose(sp);
  return r;
}

static int attr_scalar(hid_t obj, const char *name, hid_t type, const void *v) {
  hid_t sp = H5Screate(H5S_SCALAR);
  int r = sp < 0 ? -1 : put_attr(obj, name, type, sp, v);
  if (sp >= 0) H5Sclose(sp);
  return r;
}

/* Creates every missing group along `path` (absolute), without timestamps.
 * 0, -1 when HDF5 fails, -2 when out of memory. */
static int make_groups(hid_t file, const char *path, int include_last) {
  char *p = ms__strdup(path);
  if (!p) return -2;
  int rc = 0;
  hid_t gcpl = ocpl_new(H5P_GROUP_CREATE);
  if (gcpl < 0) rc = -1;
  for (char *s = p + 1; rc == 0 && *s; s++) {
    int last = 0;
    if (*s == '/' || (last = (s[1] == '\0' && include_last))) {
      char save = 0;
      if (!last) {
        save = *s;
        *s = '\0';
      }
      htri_t ex = H5Lexists(file, p, H5P_DEFAULT);
      if (ex < 0) rc = -1;
      else if (ex == 0) {
        hid_t g = H5Gcreate2(file, p, H5P_DEFAULT, gcpl, H5P_DEFAULT);
        if (g < 0) rc = -1;
        else H5Gclose(g);
      }
      if (!last) *s = save;
    }
  }
  if (gcpl >= 0) H5Pclose(gcpl);
  free(p);
  return rc;
}

/* ---- workspace and parallel compression ------------------------------ */

/* Threads asked for (the option, else OpenMP's default), at least 1. */
static size_t wanted_threads(const ms__h5w *h) {
  int n = h->threads > 0 ? h->threads : omp_get_max_threads();
  return n < 1 ? 1 : (size_t)n;
}

/* Threads of a parallel region of `tasks` tasks: at most one per task and
 * never more than the scratch slots (fixed when the workspace is made). */
static int region_threads(const ms__h5w *h, size_t tasks) {
  size_t n = wanted_threads(h);
  if (h->n_slots && n > h->n_slots) n = h->n_slots;
  if (n > tasks) n = tasks;
  return n < 1 ? 1 : (int)n;
}

/* Scratch of pool worker `worker` in a job run on at most region_threads
 * threads. */
static uint8_t *thread_scratch(const ms__h5w *h, size_t worker) {
  return h->scratch + worker * h->ws_bytes;
}

static ms_status ensure_ws(ms__h5w *h, size_t bytes) {
  if (bytes <= h->ws_bytes) return MS_OK;
  size_t zc = compressBound((uLong)bytes);
  size_t ns = wanted_threads(h);
  if (bytes > SIZE_MAX / ns || zc > SIZE_MAX / MS__BATCH) return MS_ERR_NOMEM; /* cannot be allocated */
  uint8_t *s = ms__malloc(ns * bytes), *z = ms__malloc(MS__BATCH * zc);
  if (!s || !z) {
    free(s);
    free(z);
    return MS_ERR_NOMEM;
  }
  free(h->scratch);
  free(h->zout);
  h->scratch = s;
  h->n_slots = ns;
  h->zout = z;
  h->ws_bytes = bytes;
  h->zcap = zc;
  return MS_OK;
}

/* Compresses n chunks of `bytes` each (chunk i at raw + i*stride) into
 * h->zout slots; returns 0 on success, else a failure code of
 * ms__chunk_compress (-2: out of memory). */
typedef struct {
  ms__h5w *h;
  const uint8_t *const *src;
  size_t bytes, elem;
  atomic_int fail;
} zbatch_job;

static void zbatch_task(void *ctx, size_t i, size_t worker) {
  zbatch_job *j = ctx;
  ms__h5w *h = j->h;
  size_t len = 0;
  int r = ms__chunk_compress(j->src[i], j->bytes, j->elem, h->level, thread_scratch(h, worker),
                             h->zout + i * h->zcap, &len);
  if (r) atomic_store(&j->fail, r);
  h->zlen[i] = len;
}

static int compress_batch(ms__h5w *h, const uint8_t *const *src, size_t n, size_t bytes,
                          size_t elem) {
  zbatch_job j = {h, src, bytes, elem, 0};
  ms__parallel(n, (size_t)region_threads(h, n), zbatch_task, &j);
  return atomic_load(&j.fail);
}

/* Reports a failed compression (a code of ms__chunk_compress). */
static ms_status compress_error(ms_diag *d, const char *where, int rc) {
  if (rc == -2) return ms__diag_nomem(d, NULL, where, "compression state");
  return ms_diag_add(d, MS_ERR_INTERNAL, NULL, 0, 0, where, "zlib compression failed");
}

/* Compresses raw chunk i of table t's batch into its zout slot, shuffling
 * through the worker's scratch (reused, so it stays in cache). */
static int compress_table_chunk(ms__h5w *h, h5table *t, size_t i, size_t worker) {
  size_t len = 0;
  int rc = ms__chunk_compress(t->raw + i * t->chunk_bytes, t->chunk_bytes, t->L.row_size,
                              h->level, thread_scratch(h, worker), t->zout + i * t->zcap, &len);
  if (rc) return rc;
  t->zlen[i] = len;
  t->zdone[i] = 1;
  return 0;
}

/* ---- open / attributes ----------------------------------------------- */

/* HDF5 1.10 does not recover from an H5Fcreate that failed to write (its
 * exit handler then loops and leaks), so the disk must have room for the
 * file's first metadata before HDF5 gets the name: reserve 64 KiB, give them
 * back. Returns 0 or an errno value. */
static int room_to_start(const char *path) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  int e = posix_fallocate(fd, 0, 64 << 10);
  if (e == EINVAL || e == EOPNOTSUPP) e = 0; /* nothing to learn here */
  if (ftruncate(fd, 0) != 0 && !e) e = errno;
  close(fd);
  return e;
}

ms_status ms__h5w_open(ms__h5w **out, const char *tmp_path, const ms_writer_params *o,
                       ms_diag *d) {
  *out = NULL;
  int room = room_to_start(tmp_path);
  if (room) return ms_diag_add(d, MS_ERR_IO, NULL, 0, 0, NULL, "cannot write: %s", strerror(room));
  ms__h5w *h = ms__calloc(1, sizeof *h);
  if (!h) return ms__diag_nomem(d, tmp_path, NULL, "the HDF5 writer");
  h->level = o->compression;
  h->threads = o->threads;
  h->chunk_rows_opt = o->chunk_rows;
  if (!(h->tmp_path = ms__strdup(tmp_path))) {
    free(h);
    return ms__diag_nomem(d, tmp_path, NULL, "the HDF5 writer");
  }
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), fcpl = ocpl_new(H5P_FILE_CREATE);
  int ok = fapl >= 0 && fcpl >= 0 &&
           H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110) >= 0 &&
           H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) >= 0;
  h->file = ok ? H5Fcreate(tmp_path, H5F_ACC_TRUNC, fcpl, fapl) : -1;
  if (fapl >= 0) H5Pclose(fapl);
  if (fcpl >= 0) H5Pclose(fcpl);
  if (h->file < 0) {
    free(h->tmp_path);
    free(h);
    return ms__h5_error(d, MS_ERR_IO, NULL, "cannot create the HDF5 file");
  }
  int64_t fmt = 1;
  const char *ver = MS_VERSION_STRING;
  int rc = attr_scalar(h->file, "medsynth_format", H5T_STD_I64LE, &fmt) ||
           attr_str(h->file, "medsynth_version", ver);
  if (!rc && !o->no_timestamp) {
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    int64_t t = (int64_t)time(NULL);
    if (sde && *sde) {
      char *end;
      long long v = strtoll(sde, &end, 10);
      if (*end == '\0') t = v;
    }
    char buf[MS_DATE_BUFSZ];
    ms_datetime_format(t, buf);
    rc = attr_str(h->file, "created", buf);
  }
  if (rc) {
    ms__h5_error(d, MS_ERR_IO, NULL, "cannot write root attributes");
    ms__h5w_discard(h);
    return MS_ERR_IO;
  }
  *out = h;
  return MS_OK;
}

static hid_t open_obj(ms__h5w *h, const char *obj) {
  return H5Oopen(h->file, obj && *obj ? obj : "/", H5P_DEFAULT);
}

/* Attribute `name` of the object obj: the string v when type is 0, else
 * the scalar *v of that type. */
static ms_status obj_attr(ms__h5w *h, const char *obj, const char *name, hid_t type, const void *v,
                          ms_diag *d) {
  hid_t o = open_obj(h, obj);
  int rc = o < 0 ? -1 : type ? attr_scalar(o, name, type, v) : attr_str(o, name, v);
  if (o >= 0) H5Oclose(o);
  return rc ? ms__h5_error(d, MS_ERR_IO, obj, "cannot write attribute '%s'", name) : MS_OK;
}

ms_status ms__h5w_attr_string(ms__h5w *h, const char *obj, const char *name, const char *v,
                              ms_diag *d) {
  return obj_attr(h, obj, name, 0, v ? v : "", d);
}

ms_status ms__h5w_attr_int(ms__h5w *h, const char *obj, const char *name, int64_t v,
                           ms_diag *d) {
  return obj_attr(h, obj, name, H5T_STD_I64LE, &v, d);
}

ms_status ms__h5w_attr_double(ms__h5w *h, const char *obj, const char *name, double v,
                              ms_diag *d) {
  return obj_attr(h, obj, name, H5T_IEEE_F64LE, &v, d);
}

/* ---- tables ----------------------------------------------------------- */

static void table_free(h5table *t) {
  if (!t) return;
  for (size_t k = 0; k < t->n_parts; k++) table_free(t->parts[k]);
  free(t->parts);
  free(t->part_first);
  if (t->group >= 0) H5Gclose(t->group);
  if (t->dset >= 0) H5Dclose(t->dset);
  free(t->name);
  if (t->padded) /* before the schema, which gives its length */
    for (size_t j = 0; j < t->schema.n_columns; j++) free(t->padded[j]);
  free(t->padded);
  ms_table_schema_deinit(&t->schema);
  ms__rowlayout_deinit(&t->L);
  free(t->raw_mem);
  free(t->zout);
  if (t->xx) XXH64_freeState(t->xx);
  free(t);
}

static h5table *find_table(ms__h5w *h, const char *name) {
  for (size_t i = 0; i < h->n_tables; i++)
    if (!strcmp(h->tables[i]->name, name)) return h->tables[i];
  return NULL;
}

static ms_status check_schema(const ms_table_schema *s, ms_diag *d) {
  if (!s->name || !*s->name || strchr(s->name, '/') || !strcmp(s->name, ".") ||
      !strcmp(s->name, ".."))
    return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, s->name,
                       "table name must be non-empty and contain no '/'");
  if (s->n_columns == 0)
    return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, s->name, "table has no columns");
  for (size_t j = 0; j < s->n_columns; j++) {
    const ms_column *c = &s->columns[j];
    if (!c->name || !*c->name)
      return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, s->name, "column %zu has no name", j);
    if ((unsigned)c->type >= MS_COL_COUNT)
      return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, s->name, "column '%s': bad type",
                         c->name);
    if (c->type == MS_COL_CATEGORICAL && c->n_categories > (size_t)INT32_MAX)
      return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, s->name,
                         "column '%s': too many categories", c->name);
    for (size_t k = 0; k < c->n_categories && c->type == MS_COL_CATEGORICAL; k++)
      if (!c->categories || !c->categories[k])
        return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, s->name,
                           "column '%s': category %zu is NULL", c->name, k);
    for (size_t k = 0; k < s->n_columns; k++) {
      const ms_column *o = &s->columns[k];
      if (k != j && o->name && !strcmp(o->name, c->name))
        return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, s->name,
                           "duplicate column name '%s'", c->name);
      /* "<o>__valid" would collide with a real column called that. */
      size_t ol = o->name ? strlen(o->name) : 0;
      if (o->nullable && o->type != MS_COL_FLOAT64 && ol &&
          !strncmp(c->name, o->name, ol) && !strcmp(c->name + ol, MS__VALID_SUFFIX))
        return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, s->name,
                           "column name '%s' collides with the validity member of '%s'",
                           c->name, o->name);
    }
  }
  return MS_OK;
}

static int write_column_attrs(hid_t ds, const ms_table_schema *s, const char *json) {
  int rc = attr_str(ds, "medsynth_schema", json);
  if (!rc && s->parent) rc = attr_str(ds, "parent", s->parent);
  for (size_t j = 0; !rc && j < s->n_columns; j++) {
    const ms_column *c = &s->columns[j];
    char key[1024];
    const char *units = c->unit;
    if (c->type == MS_COL_DATE) units = "days since 1970-01-01";
    if (c->type == MS_COL_DATETIME) units = "seconds since 1970-01-01T00:00:00Z";
    if (units) {
      snprintf(key, sizeof key, "%s.units", c->name);
      rc = attr_str(ds, key, units);
    }
    if (!rc && c->description) {
      snprintf(key, sizeof key, "%s.description", c->name);
      rc = attr_str(ds, key, c->description);
    }
    if (!rc && c->references) {
      snprintf(key, sizeof key, "%s.references", c->name);
      rc = attr_str(ds, key, c->references);
    }
    if (!rc && c->type == MS_COL_CATEGORICAL) {
      snprintf(key, sizeof key, "%s.categories", c->name);
      rc = attr_str_array(ds, key, c->categories, c->n_categories);
    }
  }
  return rc;
}

/* A table dataset at `path` for schema s (a whole table, or one part of a
 * wide one); *out owns its copy of the schema. */
static ms_status dataset_new(ms__h5w *h, const ms_table_schema *s, const char *path,
                             uint64_t expected, h5table **out, ms_diag *d) {
  *out = NULL;
  ms_status st;
  h5table *t = ms__calloc(1, sizeof *t);
  if (!t) return ms__diag_nomem(d, NULL, s->name, "a table");
  t->dset = t->group = -1;
  if (!(t->name = ms__strdup(s->name)) || ms_table_schema_copy(&t->schema, s)) {
    table_free(t);
    return ms__diag_nomem(d, NULL, s->name, "a copy of the table's schema");
  }
  if ((st = ms__rowlayout_init(&t->L, &t->schema)) != MS_OK) {
    table_free(t);
    if (st != MS_ERR_NOMEM)
      return ms_diag_add(d, st, NULL, 0, 0, s->name, "a column has no storage width");
    return ms__diag_nomem(d, NULL, s->name, "the table's row layout");
  }
  if (!(t->xx = XXH64_createState())) {
    table_free(t);
    return ms__diag_nomem(d, NULL, s->name, "the table's checksum state");
  }
  XXH64_reset(t->xx, 0);
  if (!(t->padded = ms__calloc(t->schema.n_columns ? t->schema.n_columns : 1, sizeof *t->padded))) {
    table_free(t);
    return ms__diag_nomem(d, NULL, s->name, "category labels");
  }
  for (size_t j = 0; j < t->schema.n_columns; j++) {
    const ms_column *col = &t->schema.columns[j];
    if (col->type != MS_COL_CATEGORICAL) continue;
    size_t w = t->L.width[j];
    if (!(t->padded[j] = ms__calloc(col->n_categories ? col->n_categories * w : 1, 1))) {
      table_free(t);
      return ms__diag_nomem(d, NULL, s->name, "category labels");
    }
    for (size_t k = 0; k < col->n_categories; k++)
      memcpy(t->padded[j] + k * w, col->categories[k], strnlen(col->categories[k], w));
  }
  size_t rs = t->L.row_size;
  size_t cr = h->chunk_rows_opt;
  if (!cr) {
    cr = MS__CHUNK_TARGET_BYTES / rs;
    if (cr < 1) cr = 1;
    if (expected && expected < cr) cr = (size_t)expected;
  }
  if (cr > (size_t)0xffffffffu / rs) cr = (size_t)0xffffffffu / rs; /* chunk < 4 GiB */
  t->chunk_rows = cr;
  t->chunk_bytes = cr * rs;
  t->zcap = compressBound((uLong)t->chunk_bytes);
  char *json = NULL;
  if (!(t->raw = t->raw_mem = ms__malloc(2 * MS__BATCH * t->chunk_bytes)) ||
      ensure_ws(h, t->chunk_bytes) ||
      (h->level > 0 && !(t->zout = ms__malloc(MS__BATCH * t->zcap))) ||
      !(json = ms__schema_to_json(&t->schema))) {
    table_free(t);
    return ms__diag_nomem(d, NULL, s->name, "the table's chunk buffers");
  }
  hid_t ft = -1, sp = -1, dcpl = -1, dapl = -1;
  hsize_t dim0 = 0, maxd = H5S_UNLIMITED, cd = cr;
  int grc = 0, ft_nomem = 0;
  int ok = (grc = make_groups(h->file, "/tables", 1)) == 0 &&
           (ft = ms__rowlayout_h5type(&t->L, &t->schema, &ft_nomem)) >= 0 &&
           (sp = H5Screate_simple(1, &dim0, &maxd)) >= 0 &&
           (dcpl = ocpl_new(H5P_DATASET_CREATE)) >= 0 && H5Pset_chunk(dcpl, 1, &cd) >= 0 &&
           H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) >= 0 &&
           (h->level == 0 || (H5Pset_shuffle(dcpl) >= 0 && H5Pset_deflate(dcpl, (unsigned)h->level) >= 0)) &&
           (dapl = H5Pcreate(H5P_DATASET_ACCESS)) >= 0 &&
           H5Pset_chunk_cache(dapl, 0, 0, H5D_CHUNK_CACHE_W0_DEFAULT) >= 0 &&
           (t->dset = H5Dcreate2(h->file, path, ft, sp, H5P_DEFAULT, dcpl, dapl)) >= 0 &&
           write_column_attrs(t->dset, &t->schema, json) == 0;
  free(json);
  if (ft >= 0) H5Tclose(ft);
  if (sp >= 0) H5Sclose(sp);
  if (dcpl >= 0) H5Pclose(dcpl);
  if (dapl >= 0) H5Pclose(dapl);
  if (!ok) {
    if (grc == -2 || ft_nomem) {
      H5Eclear2(H5E_DEFAULT);
      st = ms__diag_nomem(d, NULL, s->name, "the table's HDF5 layout");
    } else {
      st = ms__h5_error(d, MS_ERR_IO, s->name, "cannot create dataset %s", path);
    }
    table_free(t);
    return st;
  }
  *out = t;
  return MS_OK;
}

/* A wide table: the group /tables/<name> (full schema, parent and the part
 * count as attributes) and its parts /tables/<name>/0000, 0001, ...: runs
 * of consecutive columns, each as long as its row type fits in an object
 * header (a column and its validity member stay together). */
static ms_status wide_new(ms__h5w *h, const ms_table_schema *s, const char *path,
                          uint64_t expected, h5table **out, ms_diag *d) {
  *out = NULL;
  h5table *t = ms__calloc(1, sizeof *t);
  if (!t) return ms__diag_nomem(d, NULL, s->name, "a table");
  t->dset = t->group = -1;
  size_t n = s->n_columns;
  if (!(t->name = ms__strdup(s->name)) || ms_table_schema_copy(&t->schema, s) ||
      !(t->parts = ms__calloc(n, sizeof *t->parts)) || !(t->part_first = ms__calloc(n + 1, sizeof *t->part_first))) {
    table_free(t);
    return ms__diag_nomem(d, NULL, s->name, "the table's column groups");
  }
  /* greedy cut: a part grows while its row type fits */
  size_t np = 0;
  for (size_t j = 0; j < n;) {
    if (ms__h5_compound_bytes(s, j, 1) > MS__H5_MAX_TYPE_BYTES) {
      ms_status st = ms_diag_add(d, MS_ERR_UNSUPPORTED, NULL, 0, 0, s->name,
                                 "column '%s': its name is too long for an HDF5 row type "
                                 "(%zu bytes of type information; at most %d)",
                                 s->columns[j].name, ms__h5_compound_bytes(s, j, 1), MS__H5_MAX_TYPE_BYTES);
      table_free(t);
      return st;
    }
    size_t e = j + 1;
    while (e < n && ms__h5_compound_bytes(s, j, e + 1 - j) <= MS__H5_MAX_TYPE_BYTES) e++;
    t->part_first[np++] = j;
    j = e;
  }
  t->part_first[np] = n;
  uint64_t parts = np;
  char *json = ms__schema_to_json(s);
  if (!json) {
    table_free(t);
    return ms__diag_nomem(d, NULL, s->name, "the table's schema text");
  }
  int ok = make_groups(h->file, path, 1) == 0 &&
           (t->group = H5Gopen2(h->file, path, H5P_DEFAULT)) >= 0 &&
           attr_str(t->group, "medsynth_schema", json) == 0 &&
           (!s->parent || attr_str(t->group, "parent", s->parent) == 0) &&
           attr_scalar(t->group, "parts", H5T_STD_U64LE, &parts) == 0;
  free(json);
  if (!ok) {
    ms_status st = ms__h5_error(d, MS_ERR_IO, s->name, "cannot create group %s", path);
    table_free(t);
    return st;
  }
  for (size_t k = 0; k < np; k++) {
    ms_table_schema ps = *s; /* a view of the part's columns */
    ps.columns = s->columns + t->part_first[k];
    ps.n_columns = t->part_first[k + 1] - t->part_first[k];
    char ppath[1100];
    snprintf(ppath, sizeof ppath, "%s/%04zu", path, k);
    ms_status st = dataset_new(h, &ps, ppath, expected, &t->parts[k], d);
    if (st) {
      table_free(t);
      return st;
    }
    t->n_parts++;
  }
  *out = t;
  return MS_OK;
}

ms_status ms__h5w_begin_table(ms__h5w *h, const ms_table_schema *s, uint64_t expected,
                              ms_diag *d) {
  ms_status st = check_schema(s, d);
  if (st) return st;
  if (find_table(h, s->name))
    return ms_diag_add(d, MS_ERR_EXISTS, NULL, 0, 0, s->name, "table written twice");
  h5table **nt = ms__realloc(h->tables, (h->n_tables + 1) * sizeof *nt);
  if (!nt) return ms__diag_nomem(d, NULL, s->name, "the table list");
  h->tables = nt;
  char path[1024];
  snprintf(path, sizeof path, "/tables/%s", s->name);
  h5table *t = NULL;
  if (ms__h5_compound_bytes(s, 0, s->n_columns) <= MS__H5_MAX_TYPE_BYTES)
    st = dataset_new(h, s, path, expected, &t, d);
  else
    st = wide_new(h, s, path, expected, &t, d);
  if (st) return st;
  h->tables[h->n_tables++] = t;
  return MS_OK;
}

static void hash_pending(h5table *t) {
  if (t->pend_bytes) XXH64_update(t->xx, t->pend, t->pend_bytes);
  t->pend_bytes = 0;
}

typedef struct {
  ms__h5w *h;
  h5table *t;
  const size_t *todo;
  atomic_int fail;
} zflush_job;

static void zflush_task(void *ctx, size_t k, size_t worker) {
  zflush_job *j = ctx;
  int r = compress_table_chunk(j->h, j->t, j->todo[k], worker);
  if (r) atomic_store(&j->fail, r);
}

/* Writes the batch: a full one (last = 0) is left for the next parallel
 * pass to hash, and the other half becomes the one filled; the last batch
 * of the table (last = 1, maybe partial) is hashed here. */
static ms_status flush_batch(ms__h5w *h, h5table *t, int last, ms_diag *d) {
  hash_pending(t);
  size_t nfull = t->cur, n = t->cur + (t->fill ? 1 : 0);
  if (n == 0) return MS_OK;
  uint64_t batch_rows = (uint64_t)nfull * t->chunk_rows + t->fill;
  if (last) {
    XXH64_update(t->xx, t->raw, batch_rows * t->L.row_size);
    if (t->fill) {
      uint8_t *end = t->raw + nfull * t->chunk_bytes + t->fill * t->L.row_size;
      memset(end, 0, (t->chunk_rows - t->fill) * t->L.row_size);
    }
  }
  hsize_t ext = t->rows + batch_rows;
  if (H5Dset_extent(t->dset, &ext) < 0)
    return ms__h5_error(d, MS_ERR_IO, t->name, "cannot extend dataset");
  if (h->level > 0) {
    /* chunks not compressed yet: the partial last one, or all of them when
     * the rows came in pieces */
    size_t todo[MS__BATCH], m = 0;
    for (size_t i = 0; i < n; i++)
      if (!t->zdone[i]) todo[m++] = i;
    zflush_job j = {h, t, todo, 0};
    ms__parallel(m, (size_t)region_threads(h, m), zflush_task, &j);
    if (atomic_load(&j.fail)) return compress_error(d, t->name, atomic_load(&j.fail));
  }
  for (size_t i = 0; i < n; i++) {
    hsize_t off = (t->chunks_written + i) * (hsize_t)t->chunk_rows;
    herr_t e = h->level > 0
                   ? H5Dwrite_chunk(t->dset, H5P_DEFAULT, 0, &off, t->zlen[i], t->zout + i * t->zcap)
                   : H5Dwrite_chunk(t->dset, H5P_DEFAULT, 0, &off, t->chunk_bytes,
                                    t->raw + i * t->chunk_bytes);
    if (e < 0) return ms__h5_error(d, MS_ERR_IO, t->name, "cannot write chunk");
    t->zdone[i] = 0;
  }
  t->chunks_written += n;
  t->rows += batch_rows;
  t->cur = t->fill = 0;
  if (!last) {
    t->pend = t->raw;
    t->pend_bytes = batch_rows * t->L.row_size;
    t->raw = t->raw == t->raw_mem ? t->raw_mem + MS__BATCH * t->chunk_bytes : t->raw_mem;
  }
  return MS_OK;
}

static ms_status row_error(ms_diag *d, const h5table *t, uint64_t row, size_t j,
                           ms_status st, const char *msg) {
  char where[512];
  snprintf(where, sizeof where, "%s/row %" PRIu64 "/%s", t->name, row,
           t->schema.columns[j].name);
  return ms_diag_add(d, st, NULL, 0, 0, where, "%s", msg);
}

/* Checks what packing would otherwise have to report: missing values in
 * columns that are not nullable and category codes out of range. Serial, so
 * the first problem reported is the same for any thread count. */
static ms_status validate_chunk(const h5table *t, const ms_chunk *c, ms_diag *d) {
  for (size_t j = 0; j < t->schema.n_columns; j++) {
    const ms_column *col = &t->schema.columns[j];
    const uint8_t *valid = c->cols[j].valid;
    if (valid && !col->nullable)
      for (size_t r = 0; r < c->n_rows; r++)
        if (!valid[r])
          return row_error(d, t, c->first_row + r, j, MS_ERR_DATA,
                           "missing value in a column that is not nullable");
    if (col->type != MS_COL_CATEGORICAL) continue;
    const int32_t *v = c->cols[j].data;
    for (size_t r = 0; r < c->n_rows; r++) {
      if ((valid && !valid[r]) || (v[r] >= 0 && (size_t)v[r] < col->n_categories)) continue;
      char msg[128];
      snprintf(msg, sizeof msg, "category code %d out of range (%zu categories)", (int)v[r],
               col->n_categories);
      return row_error(d, t, c->first_row + r, j, MS_ERR_DATA, msg);
    }
  }
  return MS_OK;
}

/* Packs rows [r0, r0+n) of chunk c into dst (row-major, packed). The chunk
 * has passed validate_chunk, so nothing can fail here. */
static void pack_rows(const h5table *t, const ms_chunk *c, size_t r0, size_t n, uint8_t *dst) {
  const size_t rs = t->L.row_size;
  for (size_t j = 0; j < t->schema.n_columns; j++) {
    const ms_column *col = &t->schema.columns[j];
    const uint8_t *valid = c->cols[j].valid ? c->cols[j].valid + r0 : NULL;
    const size_t off = t->L.offset[j], w = t->L.width[j], vo = t->L.valid_off[j];
    uint8_t *o = dst + off;
    switch (col->type) {
      case MS_COL_INT64:
      case MS_COL_DATETIME: {
        const int64_t *v = (const int64_t *)c->cols[j].data + r0;
        for (size_t r = 0; r < n; r++, o += rs) {
          int64_t x = (valid && !valid[r]) ? 0 : v[r];
          memcpy(o, &x, 8);
        }
        break;
      }
      case MS_COL_FLOAT64: {
        const double *v = (const double *)c->cols[j].data + r0;
        for (size_t r = 0; r < n; r++, o += rs) {
          double x = v[r];
          if ((valid && !valid[r]) || isnan(x)) x = NAN; /* one canonical NaN */
          memcpy(o, &x, 8);
        }
        break;
      }
      case MS_COL_DATE: {
        const int32_t *v = (const int32_t *)c->cols[j].data + r0;
        for (size_t r = 0; r < n; r++, o += rs) {
          int32_t x = (valid && !valid[r]) ? 0 : v[r];
          memcpy(o, &x, 4);
        }
        break;
      }
      case MS_COL_BOOL: {
        const uint8_t *v = (const uint8_t *)c->cols[j].data + r0;
        for (size_t r = 0; r < n; r++, o += rs) *o = (valid && !valid[r]) ? 0 : (v[r] != 0);
        break;
      }
      case MS_COL_STRING: {
        const size_t sw = col->str_width + 1;
        const char *v = (const char *)c->cols[j].data + r0 * sw;
        for (size_t r = 0; r < n; r++, o += rs, v += sw) {
          size_t l = (valid && !valid[r]) ? 0 : strnlen(v, col->str_width);
          memcpy(o, v, l);
          memset(o + l, 0, w - l);
        }
        break;
      }
      case MS_COL_CATEGORICAL: {
        const int32_t *v = (const int32_t *)c->cols[j].data + r0;
        const char *pad = t->padded[j];
        for (size_t r = 0; r < n; r++, o += rs) {
          if (valid && !valid[r])
            memset(o, 0, w);
          else
            memcpy(o, pad + (size_t)v[r] * w, w);
        }
        break;
      }
      default:
        break;
    }
    if (vo != SIZE_MAX) {
      uint8_t *p = dst + vo;
      for (size_t r = 0; r < n; r++, p += rs) *p = valid ? (valid[r] != 0) : 1;
    }
  }
}

/* The columns of chunk c that part k of wide table t holds, as a chunk of
 * that part (borrowing c's buffers). */
static ms_chunk part_view(const h5table *t, size_t k, const ms_chunk *c) {
  ms_chunk v = *c;
  v.schema = &t->parts[k]->schema;
  v.cols = c->cols + t->part_first[k];
  return v;
}

static ms_status write_rows(ms__h5w *h, h5table *t, const ms_chunk *c, ms_diag *d);

typedef struct {
  ms__h5w *h;
  h5table *t;
  const ms_chunk *c;
  const size_t *seg_r0, *seg_n, *seg_chunk;
  uint8_t *const *seg_dst;
  const uint8_t *seg_full;
  atomic_int fail;
} pack_job;

/* Task 0 hashes the previous batch (if waiting); task k > 0 packs segment
 * k - 1 and, when that completes its chunk, compresses the chunk. */
static void pack_task(void *ctx, size_t k, size_t worker) {
  pack_job *j = ctx;
  if (k == 0) {
    hash_pending(j->t);
    return;
  }
  pack_rows(j->t, j->c, j->seg_r0[k - 1], j->seg_n[k - 1], j->seg_dst[k - 1]);
  if (j->seg_full[k - 1] && j->h->level > 0) {
    int r = compress_table_chunk(j->h, j->t, j->seg_chunk[k - 1], worker);
    if (r) atomic_store(&j->fail, r);
  }
}

ms_status ms__h5w_write_chunk(ms__h5w *h, const ms_chunk *c, ms_diag *d) {
  h5table *t = c->schema && c->schema->name ? find_table(h, c->schema->name) : NULL;
  if (!t || t->ended)
    return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, c->schema ? c->schema->name : NULL,
                       "chunk for a table that is not open");
  if (c->schema->n_columns != t->schema.n_columns)
    return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, t->name,
                       "chunk has %zu columns, table has %zu", c->schema->n_columns,
                       t->schema.n_columns);
  ms_status st = MS_OK;
  if (!t->n_parts) {
    if ((st = validate_chunk(t, c, d))) return st;
    return write_rows(h, t, c, d);
  }
  /* every part is checked before any is written: the first problem in
   * column order is the one reported, as for a narrow table */
  for (size_t k = 0; k < t->n_parts && !st; k++) {
    ms_chunk v = part_view(t, k, c);
    st = validate_chunk(t->parts[k], &v, d);
  }
  for (size_t k = 0; k < t->n_parts && !st; k++) {
    ms_chunk v = part_view(t, k, c);
    st = write_rows(h, t->parts[k], &v, d);
  }
  return st;
}

/* Packs, compresses and writes the rows of a validated chunk. */
static ms_status write_rows(ms__h5w *h, h5table *t, const ms_chunk *c, ms_diag *d) {
  ms_status st;
  size_t r0 = 0;
  while (r0 < c->n_rows) {
    /* Segments up to the end of the batch, packed in parallel: each lands at
     * a fixed place, so the bytes do not depend on the thread count. */
    size_t seg_r0[MS__BATCH + 1], seg_n[MS__BATCH + 1], seg_chunk[MS__BATCH + 1];
    uint8_t *seg_dst[MS__BATCH + 1], seg_full[MS__BATCH + 1];
    int nseg = 0;
    while (r0 < c->n_rows && t->cur < MS__BATCH) {
      size_t n = t->chunk_rows - t->fill;
      if (n > c->n_rows - r0) n = c->n_rows - r0;
      seg_r0[nseg] = r0;
      seg_n[nseg] = n;
      seg_dst[nseg] = t->raw + t->cur * t->chunk_bytes + t->fill * t->L.row_size;
      seg_chunk[nseg] = t->cur;
      t->fill += n;
      r0 += n;
      seg_full[nseg] = t->fill == t->chunk_rows;
      nseg++;
      if (t->fill == t->chunk_rows) {
        t->cur++;
        t->fill = 0;
      }
    }
    /* task 0 hashes the previous batch (if waiting); a segment that
     * completes its chunk compresses it too */
    pack_job j = {h, t, c, seg_r0, seg_n, seg_chunk, seg_dst, seg_full, 0};
    const size_t tasks = (size_t)nseg + 1;
    ms__parallel(tasks, (size_t)region_threads(h, tasks), pack_task, &j);
    if (atomic_load(&j.fail)) return compress_error(d, t->name, atomic_load(&j.fail));
    if (t->cur == MS__BATCH && (st = flush_batch(h, t, 0, d))) return st;
  }
  return MS_OK;
}

static ms_status end_dataset(ms__h5w *h, h5table *t, ms_diag *d);

ms_status ms__h5w_end_table(ms__h5w *h, const char *name, ms_diag *d) {
  h5table *t = name ? find_table(h, name) : NULL;
  if (!t) return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, name, "end of a table never begun");
  if (t->ended) return MS_OK;
  if (!t->n_parts) return end_dataset(h, t, d);
  /* A wide table's "xxh64": XXH64 (seed 0) of its parts' xxh64 values as
   * little-endian uint64, in part order; "rows" as for a dataset. */
  uint64_t *dig = ms__malloc(t->n_parts * sizeof *dig);
  if (!dig) return ms__diag_nomem(d, NULL, name, "the parts' checksums");
  ms_status st = MS_OK;
  for (size_t k = 0; k < t->n_parts && !st; k++) {
    st = end_dataset(h, t->parts[k], d);
    if (!st) dig[k] = t->parts[k]->digest;
  }
  uint64_t rows = t->parts[0]->rows, all = st ? 0 : XXH64(dig, t->n_parts * sizeof *dig, 0);
  free(dig);
  if (st) return st;
  if (attr_scalar(t->group, "rows", H5T_STD_U64LE, &rows) ||
      attr_scalar(t->group, "xxh64", H5T_STD_U64LE, &all))
    return ms__h5_error(d, MS_ERR_IO, t->name, "cannot write table attributes");
  H5Gclose(t->group);
  t->group = -1;
  t->ended = 1;
  return MS_OK;
}

/* Flushes the last batch, writes "rows" and "xxh64", closes the dataset. */
static ms_status end_dataset(ms__h5w *h, h5table *t, ms_diag *d) {
  if (t->ended) return MS_OK;
  ms_status st = flush_batch(h, t, 1, d);
  if (st) return st;
  uint64_t rows = t->rows, dig = XXH64_digest(t->xx);
  t->digest = dig;
  if (attr_scalar(t->dset, "rows", H5T_STD_U64LE, &rows) ||
      attr_scalar(t->dset, "xxh64", H5T_STD_U64LE, &dig))
    return ms__h5_error(d, MS_ERR_IO, t->name, "cannot write table attributes");
  H5Dclose(t->dset);
  t->dset = -1;
  free(t->raw_mem);
  free(t->zout);
  t->raw_mem = t->raw = t->zout = NULL;
  t->ended = 1;
  return MS_OK;
}

/* ---- arrays ----------------------------------------------------------- */

static hid_t dtype_h5(ms_dtype t) {
  switch (t) {
    case MS_DT_FLOAT32:
      return H5T_IEEE_F32LE;
    case MS_DT_UINT8:
      return H5T_STD_U8LE;
    case MS_DT_UINT16:
      return H5T_STD_U16LE;
    case MS_DT_INT16:
      return H5T_STD_I16LE;
    case MS_DT_INT32:
      return H5T_STD_I32LE;
    case MS_DT_COMPLEX64: {
      /* A new type each time (the caller closes it): fastMRI's layout. */
      hid_t c = H5Tcreate(H5T_COMPOUND, 8);
      if (c < 0) return -1;
      if (H5Tinsert(c, "r", 0, H5T_IEEE_F32LE) < 0 || H5Tinsert(c, "i", 4, H5T_IEEE_F32LE) < 0) {
        H5Tclose(c);
        return -1;
      }
      return c;
    }
    default:
      return -1;
  }
}

static h5array *find_array(ms__h5w *h, const char *path) {
  for (size_t i = 0; i < h->n_arrays; i++)
    if (!strcmp(h->arrays[i]->path, path)) return h->arrays[i];
  return NULL;
}

static void array_free(h5array *a) {
  if (!a) return;
  if (a->dset >= 0) H5Dclose(a->dset);
  free(a->path);
  free(a->digest);
  free(a->written);
  free(a);
}

ms_status ms__h5w_begin_array(ms__h5w *h, const char *path, ms_dtype type, int rank,
                              const uint64_t *dims, ms_diag *d) {
  if (!path || path[0] != '/' || !path[1] || path[strlen(path) - 1] == '/')
    return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, path,
                       "array path must be absolute, e.g. \"/images/t1\"");
  if (rank < 1 || rank > MS__MAX_RANK || (unsigned)type >= MS_DT_COUNT)
    return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, path, "bad rank %d or element type",
                       rank);
  if (find_array(h, path)) return ms_diag_add(d, MS_ERR_EXISTS, NULL, 0, 0, path, "array begun twice");
  size_t item = ms_dtype_size(type);
  for (int k = 1; k < rank; k++) {
    if (dims[k] == 0 || dims[k] > SIZE_MAX / item)
      return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, path, "bad dimension %d", k);
    item *= (size_t)dims[k];
  }
  if (item > 0xffffffffu)
    return ms_diag_add(d, MS_ERR_UNSUPPORTED, NULL, 0, 0, path,
                       "one item is %zu bytes; HDF5 chunks must stay below 4 GiB", item);
  if (dims[0] > SIZE_MAX / 8)
    return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, path, "too many items");
  h5array **na = ms__realloc(h->arrays, (h->n_arrays + 1) * sizeof *na);
  if (!na) return ms__diag_nomem(d, NULL, path, "the array list");
  h->arrays = na;
  h5array *a = ms__calloc(1, sizeof *a);
  if (!a) return ms__diag_nomem(d, NULL, path, "an array");
  a->dset = -1;
  a->type = type;
  a->rank = rank;
  a->item_bytes = item;
  hsize_t cd[MS__MAX_RANK];
  for (int k = 0; k < rank; k++) {
    a->dims[k] = dims[k];
    cd[k] = k ? dims[k] : 1;
  }
  size_t n0 = dims[0] ? (size_t)dims[0] : 1;
  if (!(a->path = ms__strdup(path)) || !(a->digest = ms__calloc(n0, 8)) || !(a->written = ms__calloc(n0, 1)) ||
      ensure_ws(h, item)) {
    array_free(a);
    return ms__diag_nomem(d, NULL, path, "an array's buffers");
  }
  hid_t sp = -1, dcpl = -1, dapl = -1, ty = dtype_h5(type);
  int grc = 0;
  int ok = (grc = make_groups(h->file, path, 0)) == 0 &&
           (sp = H5Screate_simple(rank, a->dims, NULL)) >= 0 &&
           (dcpl = ocpl_new(H5P_DATASET_CREATE)) >= 0 &&
           H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) >= 0 &&
           (dims[0] == 0 || H5Pset_chunk(dcpl, rank, cd) >= 0) &&
           (dims[0] == 0 || h->level == 0 ||
            (H5Pset_shuffle(dcpl) >= 0 && H5Pset_deflate(dcpl, (unsigned)h->level) >= 0)) &&
           (dapl = H5Pcreate(H5P_DATASET_ACCESS)) >= 0 &&
           H5Pset_chunk_cache(dapl, 0, 0, H5D_CHUNK_CACHE_W0_DEFAULT) >= 0 &&
           ty >= 0 && (a->dset = H5Dcreate2(h->file, path, ty, sp, H5P_DEFAULT, dcpl, dapl)) >= 0;
  if (type == MS_DT_COMPLEX64 && ty >= 0) H5Tclose(ty);
  if (sp >= 0) H5Sclose(sp);
  if (dcpl >= 0) H5Pclose(dcpl);
  if (dapl >= 0) H5Pclose(dapl);
  if (!ok) {
    ms_status st = grc == -2 ? ms__diag_nomem(d, NULL, path, "an array's path")
                             : ms__h5_error(d, MS_ERR_IO, path, "cannot create array dataset");
    array_free(a);
    return st;
  }
  h->arrays[h->n_arrays++] = a;
  return MS_OK;
}

ms_status ms__h5w_write_items(ms__h5w *h, const char *path, uint64_t first, uint64_t n,
                              const void *data, ms_diag *d) {
  h5array *a = path ? find_array(h, path) : NULL;
  if (!a) return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, path, "array was never begun");
  if (first > a->dims[0] || n > a->dims[0] - first)
    return ms_diag_add(d, MS_ERR_RANGE, NULL, 0, 0, path,
                       "items %" PRIu64 "..%" PRIu64 " outside 0..%" PRIu64, first, first + n,
                       (uint64_t)a->dims[0]);
  const uint8_t *p = data;
  for (uint64_t b = 0; b < n; b += MS__BATCH) {
    size_t m = (size_t)(n - b < MS__BATCH ? n - b : MS__BATCH);
    const uint8_t *src[MS__BATCH];
    for (size_t i = 0; i < m; i++) src[i] = p + (size_t)(b + i) * a->item_bytes;
    int rc = h->level > 0 ? compress_batch(h, src, m, a->item_bytes, ms_dtype_size(a->type)) : 0;
    if (rc) return compress_error(d, path, rc);
    for (size_t i = 0; i < m; i++) {
      hsize_t off[MS__MAX_RANK] = {0};
      off[0] = first + b + i;
      herr_t e = h->level > 0 ? H5Dwrite_chunk(a->dset, H5P_DEFAULT, 0, off, h->zlen[i],
                                               h->zout + i * h->zcap)
                              : H5Dwrite_chunk(a->dset, H5P_DEFAULT, 0, off, a->item_bytes, src[i]);
      if (e < 0) return ms__h5_error(d, MS_ERR_IO, path, "cannot write item %" PRIu64, (uint64_t)off[0]);
      a->digest[off[0]] = XXH64(src[i], a->item_bytes, 0);
      a->written[off[0]] = 1;
    }
  }
  return MS_OK;
}

static ms_status finish_array(h5array *a, ms_diag *d) {
  uint64_t n = a->dims[0];
  for (uint64_t i = 0; i < n; i++)
    if (!a->written[i])
      return ms_diag_add(d, MS_ERR_DATA, NULL, 0, 0, a->path,
                         "item %" PRIu64 " of %" PRIu64 " was never written", i, n);
  /* Digest of digests: XXH64 over the items' XXH64 values as little-endian
   * uint64, in item order (docs/file-format.md). */
  uint64_t dig = XXH64(a->digest, (size_t)n * 8, 0);
  if (attr_scalar(a->dset, "items", H5T_STD_U64LE, &n) ||
      attr_scalar(a->dset, "xxh64_items", H5T_STD_U64LE, &dig))
    return ms__h5_error(d, MS_ERR_IO, a->path, "cannot write array attributes");
  return MS_OK;
}

/* ---- close ------------------------------------------------------------ */

/* Flushes, then closes datasets and the file. A flush that fails (disk full,
 * typically) leaves the file open and intact; the file is then useless, so
 * truncating it to nothing gives its space back, and the second flush writes
 * the remaining metadata into the now sparse file. Only then is H5Fclose
 * called, which so has nothing left to fail on: a failed H5Fclose in HDF5
 * 1.10 leaves a dangling ID that crashes the library's exit handler.
 * Returns 0 when everything was flushed and closed cleanly. */
static int close_file(ms__h5w *h, ms_diag *d) {
  int bad = 0;
  if (h->file >= 0 && H5Fflush(h->file, H5F_SCOPE_LOCAL) < 0) {
    bad = 1;
    if (d) ms__h5_error(d, MS_ERR_IO, NULL, "cannot write the HDF5 file");
    H5Eclear2(H5E_DEFAULT);
    if (truncate(h->tmp_path, 0) == 0) (void)H5Fflush(h->file, H5F_SCOPE_LOCAL);
    H5Eclear2(H5E_DEFAULT);
  }
  for (size_t i = 0; i < h->n_tables; i++) table_free(h->tables[i]);
  for (size_t i = 0; i < h->n_arrays; i++) array_free(h->arrays[i]);
  h->n_tables = h->n_arrays = 0;
  if (h->file >= 0 && H5Fclose(h->file) < 0) {
    if (!bad && d) ms__h5_error(d, MS_ERR_IO, NULL, "cannot close the HDF5 file");
    bad = 1;
  }
  h->file = -1;
  return bad;
}

static void free_all(ms__h5w *h) {
  free(h->tables);
  free(h->arrays);
  free(h->scratch);
  free(h->zout);
  free(h->tmp_path);
  free(h);
}

ms_status ms__h5w_close(ms__h5w *h, ms_diag *d) {
  ms_status st = MS_OK;
  for (size_t i = 0; st == MS_OK && i < h->n_tables; i++)
    if (!h->tables[i]->ended) st = ms__h5w_end_table(h, h->tables[i]->name, d);
  for (size_t i = 0; st == MS_OK && i < h->n_arrays; i++) st = finish_array(h->arrays[i], d);
  if (close_file(h, st == MS_OK ? d : NULL) && st == MS_OK) st = MS_ERR_IO;
  free_all(h);
  return st;
}

void ms__h5w_discard(ms__h5w *h) {
  if (!h) return;
  close_file(h, NULL);
  free_all(h);
}
