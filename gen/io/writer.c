/* The dataset writer (medsynth/io.h): format dispatch, the sink adapter and
 * the commit/abort protocol.
 *
 * Files per format (docs/file-format.md):
 *   HDF5  one file, every table and array inside it.
 *   CSV / JSONL  one file per table. With exactly one table the target name
 *         is used as given; with several, table T of "out.csv" goes to
 *         "out.T.csv" (the table name is inserted before the extension) and
 *         the target name itself is not created. Every file is written to its
 *         own temporary file and all are renamed at commit, after checking
 *         that none of the final names exists (unless force). Path "-" writes
 *         one table to standard output (a second table is an error).
 *
 * Invariant: until ms_writer_commit succeeds no final name is touched; on any
 * failure every temporary file is removed (gen/io/atomic.c is the one
 * temp-then-rename implementation). Cancellation (opts.cancel) is polled on
 * every call, i.e. once per chunk or slab of items; once set, every call
 * fails with MS_ERR_CANCELLED and commit removes the temporaries. A full
 * disk under HDF5 is handled in h5write.c (close_file). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include "core/alloc.h"
#include "core/names.h"
#include "core/diag.h"
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/pool.h"
#include "io/io_private.h"

typedef struct {
  char *name;
  const ms_table_schema *schema; /* borrowed from the generator between begin and end */
  ms__atomic file;
  FILE *fp;
  int ended;
} text_table;

/* Large chunks of text output are formatted in up to TEXT_MAX_PARTS row
 * ranges of at least TEXT_PART_ROWS rows in parallel, then written in
 * order: the same bytes as one pass. */
#define TEXT_MAX_PARTS 16
#define TEXT_PART_ROWS 4096

struct ms_writer {
  ms_format format;
  ms_writer_params opts;
  char *path;
  int to_stdout;
  ms_diag *diag; /* borrowed: the diag given to open (sink callbacks report here) */
  ms_diag own_diag;
  /* HDF5 */
  ms__atomic h5file;
  ms__h5w *h5;
  /* text */
  text_table *tables;
  size_t n_tables;
  ms__buf buf;
  ms__buf part[TEXT_MAX_PARTS]; /* per-part text of a chunk formatted in parallel */
  int failed;
  int cancelled;
};

static const char *const format_names[] = {
#define MS__FORMAT_NAME(id, name) name,
    MS_FORMAT_TABLE(MS__FORMAT_NAME)
#undef MS__FORMAT_NAME
};
_Static_assert(sizeof format_names / sizeof *format_names == MS_FMT_COUNT,
               "one name per ms_format");

const char *ms_format_name(ms_format f) {
  return ms__name_of(format_names, MS_FMT_COUNT, (int)f, "unknown");
}

ms_format ms_format_from_name(const char *name) {
  if (!name) return MS_FMT_COUNT;
  int i = ms__name_find(format_names, MS_FMT_COUNT, name);
  if (i < MS_FMT_COUNT) return (ms_format)i;
  if (!strcmp(name, "h5")) return MS_FMT_HDF5;
  if (!strcmp(name, "ndjson")) return MS_FMT_JSONL;
  return MS_FMT_COUNT;
}

ms_format ms_format_from_path(const char *path) {
  if (!path) return MS_FMT_COUNT;
  const char *slash = strrchr(path, '/');
  const char *dot = strrchr(slash ? slash : path, '.');
  if (!dot) return MS_FMT_COUNT;
  if (!strcasecmp(dot, ".h5") || !strcasecmp(dot, ".hdf5")) return MS_FMT_HDF5;
  if (!strcasecmp(dot, ".csv")) return MS_FMT_CSV;
  if (!strcasecmp(dot, ".jsonl") || !strcasecmp(dot, ".ndjson")) return MS_FMT_JSONL;
  return MS_FMT_COUNT;
}

static const struct {
  const char *name;
  size_t bytes;
} dtype_info[] = {
#define MS__DTYPE_INFO(id, name, bytes) {name, bytes},
    MS_DTYPE_TABLE(MS__DTYPE_INFO)
#undef MS__DTYPE_INFO
};
_Static_assert(sizeof dtype_info / sizeof *dtype_info == MS_DT_COUNT, "one entry per ms_dtype");

size_t ms_dtype_size(ms_dtype t) { return (unsigned)t < MS_DT_COUNT ? dtype_info[t].bytes : 0; }

const char *ms_dtype_name(ms_dtype t) {
  return (unsigned)t < MS_DT_COUNT ? dtype_info[t].name : "unknown";
}

ms_dtype ms_dtype_from_name(const char *name) {
  for (int i = 0; name && i < MS_DT_COUNT; i++)
    if (!strcmp(name, ms_dtype_name((ms_dtype)i))) return (ms_dtype)i;
  return MS_DT_COUNT;
}

void ms_writer_params_init(ms_writer_params *o) {
  memset(o, 0, sizeof *o);
  o->format = MS_FMT_COUNT; /* from the path's extension */
  o->compression = 4;
  o->chunk_rows = 0;
  o->threads = 0;
}

static ms_diag *dg(ms_writer *w) { return w->diag ? w->diag : &w->own_diag; }

/* MS_ERR_CANCELLED (once with a message) when the caller's flag is set. */
static ms_status check_cancel(ms_writer *w) {
  if (!w->opts.cancel || !*w->opts.cancel) return MS_OK;
  if (!w->cancelled)
    ms_diag_add(dg(w), MS_ERR_CANCELLED, w->path, 0, 0, NULL, "cancelled; nothing written");
  w->cancelled = w->failed = 1;
  return MS_ERR_CANCELLED;
}

/* Entries [from, count) without a file name get the target's: the HDF5 layer
 * knows only the temporary file, the user only the target. */
static void name_entries(ms_diag *d, size_t from, const char *path) {
  for (size_t i = from; d && i < d->count; i++)
    if (!d->entries[i].file) d->entries[i].file = strdup(path);
}

ms_status ms_writer_open(ms_writer **out, const char *path, const ms_writer_params *opts,
                         ms_diag *d) {
  *out = NULL;
  ms_writer_params o;
  if (opts)
    o = *opts;
  else
    ms_writer_params_init(&o);
  if (!path || !*path) return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, NULL, "no output path");
  int to_stdout = !strcmp(path, "-");
  if (o.format == MS_FMT_COUNT) o.format = to_stdout ? MS_FMT_CSV : ms_format_from_path(path);
  if ((unsigned)o.format >= MS_FMT_COUNT)
    return ms_diag_add(d, MS_ERR_INVALID, path, 0, 0, NULL,
                       "cannot tell the output format from the file name (use .h5, .csv or "
                       ".jsonl, or name the format)");
  if (o.compression < 0 || o.compression > 9)
    return ms_diag_add(d, MS_ERR_INVALID, path, 0, 0, NULL,
                       "compression level %d outside 0..9", o.compression);
  if (to_stdout && o.format == MS_FMT_HDF5)
    return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, NULL,
                       "HDF5 cannot be written to standard output");
  ms_writer *w = ms__calloc(1, sizeof *w);
  if (!w) return ms__diag_nomem(d, path, NULL, "the writer");
  w->format = o.format;
  w->opts = o;
  w->to_stdout = to_stdout;
  w->diag = d;
  w->h5file.fd = -1;
  ms_diag_init(&w->own_diag);
  if (!(w->path = ms__strdup(path))) {
    free(w);
    return ms__diag_nomem(d, path, NULL, "the writer");
  }
  ms__h5quiet q;
  ms__h5_quiet_begin(&q);
  ms_status st = MS_OK;
  if (w->format == MS_FMT_HDF5) {
    st = ms__atomic_create(&w->h5file, path, o.force, d);
    if (st == MS_OK) {
      close(w->h5file.fd); /* HDF5 opens the file itself */
      w->h5file.fd = -1;
      size_t n0 = d ? d->count : 0;
      st = ms__h5w_open(&w->h5, w->h5file.tmp, &o, d);
      if (st) name_entries(d, n0, path);
    }
  } else if (!to_stdout) {
    /* Check the target and the directory now, so that errors come before any
     * work; the per-table temporary files are created as tables begin. */
    ms__atomic probe;
    st = ms__atomic_create(&probe, path, o.force, d);
    if (st == MS_OK) ms__atomic_discard(&probe);
  }
  ms__h5_quiet_end(&q);
  if (st != MS_OK) {
    ms_writer_abort(w);
    return st;
  }
  *out = w;
  return MS_OK;
}

/* "dir/out.csv" + "visits" -> "dir/out.visits.csv". */
static char *table_path(const char *path, const char *table) {
  const char *slash = strrchr(path, '/');
  const char *dot = strrchr(slash ? slash : path, '.');
  if (dot == (slash ? slash + 1 : path)) dot = NULL; /* ".csv" alone: no stem */
  size_t stem = dot ? (size_t)(dot - path) : strlen(path);
  char *r = NULL;
  if (ms__asprintf(&r, "%.*s.%s%s", (int)stem, path, table, dot ? dot : "") < 0) return NULL;
  return r;
}

static text_table *find_text(ms_writer *w, const char *name) {
  for (size_t i = 0; i < w->n_tables; i++)
    if (!strcmp(w->tables[i].name, name)) return &w->tables[i];
  return NULL;
}

static ms_status write_text(ms_writer *w, text_table *t, const ms__buf *b);

static ms_status flush_buf(ms_writer *w, text_table *t) {
  ms_status st = write_text(w, t, &w->buf);
  w->buf.len = 0;
  return st;
}

static ms_status text_begin(ms_writer *w, const ms_table_schema *s) {
  if (!s->name || !*s->name)
    return ms_diag_add(dg(w), MS_ERR_INVALID, NULL, 0, 0, NULL, "table without a name");
  if (find_text(w, s->name))
    return ms_diag_add(dg(w), MS_ERR_EXISTS, NULL, 0, 0, s->name, "table written twice");
  if (w->to_stdout && w->n_tables > 0)
    return ms_diag_add(dg(w), MS_ERR_UNSUPPORTED, NULL, 0, 0, s->name,
                       "standard output takes one table; write several tables to a file "
                       "(one file per table)");
  text_table *nt = ms__realloc(w->tables, (w->n_tables + 1) * sizeof *nt);
  if (!nt) return ms__diag_nomem(dg(w), NULL, s->name, "the table list");
  w->tables = nt;
  text_table *t = &w->tables[w->n_tables];
  memset(t, 0, sizeof *t);
  t->file.fd = -1;
  t->schema = s;
  if (!(t->name = ms__strdup(s->name))) return ms__diag_nomem(dg(w), NULL, s->name, "a table");
  if (w->to_stdout) {
    t->fp = stdout;
  } else {
    /* The temporary file is named after the target; the final name is chosen
     * at commit, once the number of tables is known. force = 1 here because
     * existence is checked at open and again at commit. */
    ms_status st = ms__atomic_create(&t->file, w->path, 1, dg(w));
    if (st == MS_OK && !(t->fp = fdopen(t->file.fd, "wb"))) st = MS_ERR_IO;
    if (st != MS_OK) {
      ms__atomic_discard(&t->file);
      free(t->name);
      return st;
    }
    t->file.fd = -1; /* owned by fp now */
  }
  w->n_tables++;
  if (w->format == MS_FMT_CSV) {
    ms_status st = ms__csv_header(&w->buf, s);
    if (st == MS_ERR_NOMEM) return ms__diag_nomem(dg(w), NULL, s->name, "the CSV header");
    if (st) return st;
    return flush_buf(w, t);
  }
  return MS_OK;
}

static ms_status format_rows(const ms_writer *w, ms__buf *b, const ms_chunk *c, ms_diag *d) {
  return w->format == MS_FMT_CSV ? ms__csv_rows(b, c, d) : ms__jsonl_rows(b, c, d);
}

static ms_status write_text(ms_writer *w, text_table *t, const ms__buf *b) {
  if (b->len && fwrite(b->p, 1, b->len, t->fp) != b->len)
    return ms_diag_add(dg(w), MS_ERR_IO, w->to_stdout ? "<stdout>" : t->file.target, 0, 0,
                       NULL, "cannot write: %s", strerror(errno));
  return MS_OK;
}

/* Rows [r0, r0+n) of c as a chunk of their own (the same buffers). */
static void chunk_view(const ms_chunk *c, size_t r0, size_t n, ms_colbuf *cols, ms_chunk *v) {
  for (size_t j = 0; j < c->schema->n_columns; j++) {
    size_t vs = ms_column_value_size(&c->schema->columns[j]);
    cols[j].data = (char *)c->cols[j].data + r0 * vs;
    cols[j].valid = c->cols[j].valid ? c->cols[j].valid + r0 : NULL;
  }
  *v = (ms_chunk){.schema = c->schema, .first_row = c->first_row + r0, .n_rows = n,
                  .capacity = n, .cols = cols};
}

typedef struct {
  ms_writer *w;
  const ms_chunk *c;
  ms_colbuf *cols;
  size_t nc, parts;
  ms_status *pst;
  ms_diag *pd;
} text_job;

/* Formats part k (rows [n*k/parts, n*(k+1)/parts)) into w->part[k]. */
static void text_part(void *ctx, size_t k, size_t worker) {
  const text_job *j = ctx;
  (void)worker;
  const ms_chunk *c = j->c;
  ms_writer *w = j->w;
  size_t r0 = c->n_rows * k / j->parts, r1 = c->n_rows * (k + 1) / j->parts;
  ms_chunk v;
  chunk_view(c, r0, r1 - r0, j->cols + k * j->nc, &v);
  ms_diag_init(&j->pd[k]);
  /* a local copy of the buffer header: the parts' headers share cache
   * lines, and the formatter updates the length per character */
  ms__buf b = w->part[k];
  b.len = 0;
  j->pst[k] = format_rows(w, &b, &v, &j->pd[k]);
  w->part[k] = b;
}

static ms_status text_chunk(ms_writer *w, const ms_chunk *c) {
  text_table *t = c->schema && c->schema->name ? find_text(w, c->schema->name) : NULL;
  if (!t || t->ended)
    return ms_diag_add(dg(w), MS_ERR_INVALID, NULL, 0, 0, c->schema ? c->schema->name : NULL,
                       "chunk for a table that is not open");
  int nt = w->opts.threads > 0 ? w->opts.threads : omp_get_max_threads();
  /* up to MS__TASKS_PER_THREAD parts per thread, taken by the threads as
   * they become free (core/pool.h); one pass on one thread */
  size_t parts = nt > 1 ? c->n_rows / TEXT_PART_ROWS : 1;
  if (parts > (size_t)nt * MS__TASKS_PER_THREAD) parts = (size_t)nt * MS__TASKS_PER_THREAD;
  if (parts > TEXT_MAX_PARTS) parts = TEXT_MAX_PARTS;
  if (parts < 2) {
    ms_status st = format_rows(w, &w->buf, c, dg(w));
    if (st) {
      w->buf.len = 0;
      return st;
    }
    return flush_buf(w, t);
  }
  size_t nc = c->schema->n_columns ? c->schema->n_columns : 1;
  ms_colbuf *cols = ms__malloc(parts * nc * sizeof *cols);
  if (!cols) return ms__diag_nomem(dg(w), NULL, c->schema->name, "the parallel formatter");
  ms_status pst[TEXT_MAX_PARTS];
  ms_diag pd[TEXT_MAX_PARTS];
  text_job j = {w, c, cols, nc, parts, pst, pd};
  ms__parallel(parts, (size_t)nt, text_part, &j);
  free(cols);
  /* the first failing part (lowest rows) reports, as one pass would */
  ms_status st = MS_OK;
  for (size_t k = 0; k < parts; k++) {
    if (st == MS_OK && pst[k] != MS_OK) {
      st = pst[k];
      ms_diag_append(dg(w), &pd[k]);
    }
    ms_diag_deinit(&pd[k]);
  }
  for (size_t k = 0; k < parts && st == MS_OK; k++) st = write_text(w, t, &w->part[k]);
  return st;
}

static ms_status text_end(ms_writer *w, const char *name) {
  text_table *t = name ? find_text(w, name) : NULL;
  if (!t) return ms_diag_add(dg(w), MS_ERR_INVALID, NULL, 0, 0, name, "end of a table never begun");
  if (t->ended) return MS_OK;
  t->ended = 1;
  t->schema = NULL;
  if (fflush(t->fp) != 0)
    return ms_diag_add(dg(w), MS_ERR_IO, w->to_stdout ? "<stdout>" : t->file.target, 0, 0,
                       NULL, "cannot write: %s", strerror(errno));
  return MS_OK;
}

/* ---- sink ------------------------------------------------------------- */

/* Every writing call: cancellation first, HDF5's error printing off, errors
 * named after the target, and a failure remembered for commit. */
typedef enum { OP_BEGIN, OP_CHUNK, OP_END, OP_ARRAY, OP_ITEMS } op_kind;

typedef struct {
  const ms_table_schema *schema;
  uint64_t n;
  const ms_chunk *chunk;
  const char *name;
  ms_dtype type;
  int rank;
  const uint64_t *dims;
  uint64_t first;
  const void *data;
} op_args;

static ms_status run_op(ms_writer *w, op_kind k, const op_args *a) {
  ms_status st = check_cancel(w);
  if (st) return st;
  ms_diag *d = dg(w);
  size_t n0 = d->count;
  ms__h5quiet q;
  ms__h5_quiet_begin(&q);
  int h5 = w->format == MS_FMT_HDF5;
  switch (k) {
    case OP_BEGIN:
      st = h5 ? ms__h5w_begin_table(w->h5, a->schema, a->n, d) : text_begin(w, a->schema);
      break;
    case OP_CHUNK:
      st = h5 ? ms__h5w_write_chunk(w->h5, a->chunk, d) : text_chunk(w, a->chunk);
      break;
    case OP_END:
      st = h5 ? ms__h5w_end_table(w->h5, a->name, d) : text_end(w, a->name);
      break;
    case OP_ARRAY:
      st = ms__h5w_begin_array(w->h5, a->name, a->type, a->rank, a->dims, d);
      break;
    default:
      st = ms__h5w_write_items(w->h5, a->name, a->first, a->n, a->data, d);
      break;
  }
  ms__h5_quiet_end(&q);
  if (st) {
    w->failed = 1;
    if (h5) name_entries(d, n0, w->path);
  }
  return st;
}

static ms_status sink_begin(void *ctx, const ms_table_schema *s, uint64_t expected) {
  return run_op(ctx, OP_BEGIN, &(op_args){.schema = s, .n = expected});
}

static ms_status sink_chunk(void *ctx, const ms_chunk *c) {
  return run_op(ctx, OP_CHUNK, &(op_args){.chunk = c});
}

static ms_status sink_end(void *ctx, const char *name) {
  return run_op(ctx, OP_END, &(op_args){.name = name});
}

ms_sink ms_writer_sink(ms_writer *w) {
  ms_sink s = {w, sink_begin, sink_chunk, sink_end};
  return s;
}

ms_status ms_writer_begin_table(ms_writer *w, const ms_table_schema *s, uint64_t expected_rows) {
  return sink_begin(w, s, expected_rows);
}
ms_status ms_writer_write_chunk(ms_writer *w, const ms_chunk *c) { return sink_chunk(w, c); }
ms_status ms_writer_end_table(ms_writer *w, const char *table_name) {
  return sink_end(w, table_name);
}

/* ---- attributes and arrays ------------------------------------------- */

typedef enum { ATTR_STR, ATTR_INT, ATTR_DBL } attr_kind;

static ms_status set_attr(ms_writer *w, const char *obj, const char *name, attr_kind k,
                          const char *s, int64_t i, double x) {
  if (!name || !*name) return ms_diag_add(dg(w), MS_ERR_INVALID, NULL, 0, 0, obj, "attribute without a name");
  ms_status st = check_cancel(w);
  if (st) return st;
  /* CSV and JSON Lines carry no attributes (docs/file-format.md). */
  if (w->format != MS_FMT_HDF5) return MS_OK;
  size_t n0 = dg(w)->count;
  ms__h5quiet q;
  ms__h5_quiet_begin(&q);
  st = k == ATTR_STR   ? ms__h5w_attr_string(w->h5, obj, name, s, dg(w))
       : k == ATTR_INT ? ms__h5w_attr_int(w->h5, obj, name, i, dg(w))
                       : ms__h5w_attr_double(w->h5, obj, name, x, dg(w));
  ms__h5_quiet_end(&q);
  if (st) name_entries(dg(w), n0, w->path);
  return st;
}

ms_status ms_writer_set_attr_string(ms_writer *w, const char *name, const char *value) {
  return set_attr(w, "/", name, ATTR_STR, value, 0, 0);
}
ms_status ms_writer_set_attr_int(ms_writer *w, const char *name, int64_t value) {
  return set_attr(w, "/", name, ATTR_INT, NULL, value, 0);
}
ms_status ms_writer_set_attr_double(ms_writer *w, const char *name, double value) {
  return set_attr(w, "/", name, ATTR_DBL, NULL, 0, value);
}
ms_status ms_writer_set_provenance(ms_writer *w, const ms_provenance *p) {
  char gen[64], hex[24];
  snprintf(gen, sizeof gen, "medsynth %s", p->command);
  snprintf(hex, sizeof hex, "%016" PRIx64, p->spec_hash);
  ms_status st = ms_writer_set_attr_string(w, "generator", gen);
  if (!st && p->spec) st = ms_writer_set_attr_string(w, "spec", p->spec);
  if (!st && p->spec) st = ms_writer_set_attr_string(w, "spec_name", p->spec_name ? p->spec_name : "");
  if (!st && p->spec) st = ms_writer_set_attr_string(w, "spec_xxh64", hex);
  if (!st) st = ms_writer_set_attr_int(w, "seed", (int64_t)p->seed);
  if (!st) st = p->invocation ? ms_writer_set_attr_string(w, "invocation", p->invocation) : MS_ERR_NOMEM;
  return st;
}
ms_status ms_writer_set_object_attr_string(ms_writer *w, const char *object_path,
                                           const char *name, const char *value) {
  return set_attr(w, object_path, name, ATTR_STR, value, 0, 0);
}
ms_status ms_writer_set_object_attr_double(ms_writer *w, const char *object_path,
                                           const char *name, double value) {
  return set_attr(w, object_path, name, ATTR_DBL, NULL, 0, value);
}
ms_status ms_writer_set_object_attr_int(ms_writer *w, const char *object_path, const char *name,
                                        int64_t value) {
  return set_attr(w, object_path, name, ATTR_INT, NULL, value, 0);
}

ms_status ms_writer_begin_array(ms_writer *w, const char *path, ms_dtype type, int rank,
                                const uint64_t *dims) {
  if (w->format != MS_FMT_HDF5)
    return ms_diag_add(dg(w), MS_ERR_UNSUPPORTED, NULL, 0, 0, path,
                       "arrays can only be written to HDF5 (%s output)", ms_format_name(w->format));
  return run_op(w, OP_ARRAY, &(op_args){.name = path, .type = type, .rank = rank, .dims = dims});
}

ms_status ms_writer_write_items(ms_writer *w, const char *path, uint64_t first_item,
                                uint64_t n_items, const void *data) {
  if (w->format != MS_FMT_HDF5)
    return ms_diag_add(dg(w), MS_ERR_UNSUPPORTED, NULL, 0, 0, path, "arrays need HDF5 output");
  return run_op(w, OP_ITEMS,
                &(op_args){.name = path, .first = first_item, .n = n_items, .data = data});
}

/* ---- commit / abort --------------------------------------------------- */

static void writer_free(ms_writer *w) {
  for (size_t i = 0; i < w->n_tables; i++) {
    text_table *t = &w->tables[i];
    if (t->fp && t->fp != stdout) fclose(t->fp);
    t->fp = NULL;
    ms__atomic_discard(&t->file);
    free(t->name);
  }
  free(w->tables);
  ms__atomic_discard(&w->h5file);
  free(w->buf.p);
  for (int k = 0; k < TEXT_MAX_PARTS; k++) free(w->part[k].p);
  free(w->path);
  ms_diag_deinit(&w->own_diag);
  free(w);
}

void ms_writer_abort(ms_writer *w) {
  if (!w) return;
  if (w->h5) {
    ms__h5quiet q;
    ms__h5_quiet_begin(&q);
    ms__h5w_discard(w->h5);
    ms__h5_quiet_end(&q);
    w->h5 = NULL;
  }
  writer_free(w); /* removes every temporary file */
}

static ms_status commit_text(ms_writer *w, ms_diag *d) {
  ms_status st = MS_OK;
  for (size_t i = 0; st == MS_OK && i < w->n_tables; i++)
    if (!w->tables[i].ended) st = text_end(w, w->tables[i].name);
  if (st) return st;
  if (w->to_stdout) return MS_OK;
  if (w->n_tables == 0) {
    /* No table: an empty file under the target name. */
    ms__atomic a;
    if ((st = ms__atomic_create(&a, w->path, w->opts.force, d))) return st;
    if ((st = ms__atomic_commit(&a, d))) {
      ms__atomic_discard(&a);
      return st;
    }
    ms__atomic_deinit(&a);
    return MS_OK;
  }
  /* Final names, then check them all before renaming any. */
  for (size_t i = 0; i < w->n_tables; i++) {
    text_table *t = &w->tables[i];
    if (w->n_tables > 1) {
      char *p = table_path(w->path, t->name);
      if (!p) return ms__diag_nomem(d, w->path, NULL, "an output file name");
      free(t->file.target);
      t->file.target = p;
    }
    struct stat sb;
    if (!w->opts.force && stat(t->file.target, &sb) == 0)
      return ms_diag_add(d, MS_ERR_EXISTS, t->file.target, 0, 0, NULL,
                         "output file already exists (use --force to overwrite)");
  }
  for (size_t i = 0; i < w->n_tables; i++) {
    text_table *t = &w->tables[i];
    if (fflush(t->fp) != 0 || fsync(fileno(t->fp)) != 0)
      return ms_diag_add(d, MS_ERR_IO, t->file.target, 0, 0, NULL, "cannot write: %s",
                         strerror(errno));
    int e = fclose(t->fp);
    t->fp = NULL;
    if (e != 0)
      return ms_diag_add(d, MS_ERR_IO, t->file.target, 0, 0, NULL, "cannot write: %s",
                         strerror(errno));
    t->file.synced = 1;
    t->file.force = w->opts.force;
  }
  for (size_t i = 0; i < w->n_tables; i++)
    if ((st = ms__atomic_commit(&w->tables[i].file, d))) return st;
  return MS_OK;
}

ms_status ms_writer_commit(ms_writer *w, ms_diag *d) {
  if (!w) return MS_ERR_INVALID;
  if (!d) d = dg(w);
  ms_status st = check_cancel(w);
  if (st || w->failed) {
    if (!st)
      st = ms_diag_add(d, MS_ERR_INVALID, w->path, 0, 0, NULL,
                       "not committed: an earlier write failed");
    ms_writer_abort(w);
    return st;
  }
  if (w->format == MS_FMT_HDF5) {
    ms__h5quiet q;
    ms__h5_quiet_begin(&q);
    ms__h5w *h = w->h5;
    w->h5 = NULL;
    size_t n0 = d->count;
    st = ms__h5w_close(h, d);
    if (st) name_entries(d, n0, w->path);
    ms__h5_quiet_end(&q);
    if (st == MS_OK) st = ms__atomic_commit(&w->h5file, d);
  } else {
    st = commit_text(w, d);
  }
  writer_free(w);
  return st;
}
