/* Dataset writer: tables (and N-d arrays such as images) to HDF5, CSV or
 * JSON Lines, through a temporary file renamed only on success.
 *
 * Usage:
 *   ms_writer_params o; ms_writer_params_init(&o);
 *   o.format = ms_format_from_path("out.h5");
 *   ms_writer *w;
 *   if (ms_writer_open(&w, "out.h5", &o, &diag) != MS_OK) ...;
 *   ms_sink sink = ms_writer_sink(w);
 *   ... generator calls sink.begin_table / write_chunk / end_table ...
 *   ms_writer_set_provenance(w, &prov);              // root provenance
 *   if (ms_writer_commit(w, &diag) != MS_OK) ...;   // renames, frees w
 *   // on any failure instead: ms_writer_abort(w);   // removes temp, frees w
 *
 * The target is never touched until commit; an existing target is an error
 * (MS_ERR_EXISTS) unless opts.force. Path "-" writes CSV/JSONL to stdout.
 * Temporary files follow medsynth/output.h. When opts.cancel becomes
 * non-zero, every further call returns MS_ERR_CANCELLED and commit removes
 * the temporary files instead of renaming them.
 *
 * Ownership: ms_writer_open creates the writer; commit and abort free it. */
#ifndef MEDSYNTH_IO_H
#define MEDSYNTH_IO_H

#include <stddef.h>
#include <stdint.h>

#include "medsynth/status.h"
#include "medsynth/table.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(id, name): the one table behind ms_format and ms_format_name. */
#define MS_FORMAT_TABLE(X) \
  X(HDF5, "hdf5")          \
  X(CSV, "csv")            \
  X(JSONL, "jsonl")

typedef enum {
#define MS__FORMAT_ENUM(id, name) MS_FMT_##id,
  MS_FORMAT_TABLE(MS__FORMAT_ENUM)
#undef MS__FORMAT_ENUM
  MS_FMT_COUNT
} ms_format;

const char *ms_format_name(ms_format f);
ms_format ms_format_from_name(const char *name);
/* By extension: .h5/.hdf5 -> HDF5, .csv -> CSV, .jsonl/.ndjson -> JSONL;
 * MS_FMT_COUNT otherwise. */
ms_format ms_format_from_path(const char *path);

/* Defaults (ms_writer_params_init): format MS_FMT_COUNT = from the path's
 * extension ("-" = CSV), no force, compression 4, automatic chunk rows
 * (512 KiB of rows), threads 0, timestamp on. */
typedef struct {
  ms_format format;
  int force;          /* overwrite an existing target */
  int compression;    /* HDF5 deflate level 0..9 */
  size_t chunk_rows;  /* HDF5 rows per chunk; 0 = automatic */
  int threads;        /* compression threads; 0 = OpenMP default */
  int no_timestamp;   /* omit creation time; SOURCE_DATE_EPOCH also fixes it */
  const ms_cancel_flag *cancel; /* polled on every call (medsynth/status.h); NULL: never */
} ms_writer_params;

void ms_writer_params_init(ms_writer_params *o);

typedef struct ms_writer ms_writer;

/* opts may be NULL (defaults). d (may be NULL) must outlive the writer:
 * errors raised later inside the sink callbacks are added to it. */
ms_status ms_writer_open(ms_writer **out, const char *path, const ms_writer_params *opts,
                         ms_diag *d);
/* The sink to hand to a table generator; borrows w. Errors raised inside
 * the sink callbacks go to the diag given to ms_writer_open. */
ms_sink ms_writer_sink(ms_writer *w);
/* The same three steps called directly (what the sink does). The schema and
 * chunks are borrowed for the call; HDF5 copies the schema, CSV/JSONL borrow
 * it until end_table. */
ms_status ms_writer_begin_table(ms_writer *w, const ms_table_schema *s, uint64_t expected_rows);
ms_status ms_writer_write_chunk(ms_writer *w, const ms_chunk *c);
ms_status ms_writer_end_table(ms_writer *w, const char *table_name);

/* Root attributes (provenance). Strings are UTF-8. */
ms_status ms_writer_set_attr_string(ms_writer *w, const char *name, const char *value);
ms_status ms_writer_set_attr_int(ms_writer *w, const char *name, int64_t value);
ms_status ms_writer_set_attr_double(ms_writer *w, const char *name, double value);

/* What every output file records about the run that made it
 * (docs/file-format.md, "Provenance"). Borrowed for the call. */
typedef struct {
  const char *command;    /* "records", "phantom", "images": generator "medsynth <command>" */
  uint64_t seed;
  const char *invocation; /* JSON of every value the output depends on (required) */
  const char *spec;       /* spec text, or NULL for a command without a spec ... */
  const char *spec_name;  /* ... then also NULL */
  uint64_t spec_hash;     /* xxh64 of the spec (ms_spec_hash) when spec is set */
} ms_provenance;

/* Writes the provenance root attributes, the same names in every command:
 * generator, spec, spec_name, spec_xxh64 (16 hex digits; the three only with
 * a spec), seed, invocation. (HDF5 files get medsynth_format and
 * medsynth_version when they are opened.) */
ms_status ms_writer_set_provenance(ms_writer *w, const ms_provenance *p);

/* N-d arrays (HDF5 only), e.g. images (N, C, H, W). `path` is the dataset
 * path ("/images/t1"), dims[0] is the item count. Items are written in any
 * order, in slabs of whole items. */
/* X(id, name, bytes): the one table behind ms_dtype, ms_dtype_name and
 * ms_dtype_size. MS_DT_COMPLEX64: interleaved float32 (real, imaginary),
 * stored as the HDF5 compound {"r": float32, "i": float32} that h5py reads
 * as complex64. */
#define MS_DTYPE_TABLE(X)       \
  X(FLOAT32, "float32", 4)      \
  X(UINT8, "uint8", 1)          \
  X(UINT16, "uint16", 2)        \
  X(INT16, "int16", 2)          \
  X(INT32, "int32", 4)          \
  X(COMPLEX64, "complex64", 8)

typedef enum {
#define MS__DTYPE_ENUM(id, name, bytes) MS_DT_##id,
  MS_DTYPE_TABLE(MS__DTYPE_ENUM)
#undef MS__DTYPE_ENUM
  MS_DT_COUNT
} ms_dtype;
size_t ms_dtype_size(ms_dtype t);
const char *ms_dtype_name(ms_dtype t);
/* MS_DT_COUNT when the name is unknown. */
ms_dtype ms_dtype_from_name(const char *name);
ms_status ms_writer_begin_array(ms_writer *w, const char *path, ms_dtype type, int rank,
                                const uint64_t *dims);
ms_status ms_writer_write_items(ms_writer *w, const char *path, uint64_t first_item,
                                uint64_t n_items, const void *data);
/* Attributes on any object already created (a table "/tables/x" or array). */
ms_status ms_writer_set_object_attr_string(ms_writer *w, const char *object_path,
                                           const char *name, const char *value);
ms_status ms_writer_set_object_attr_double(ms_writer *w, const char *object_path,
                                           const char *name, double value);
ms_status ms_writer_set_object_attr_int(ms_writer *w, const char *object_path, const char *name,
                                        int64_t value);

ms_status ms_writer_commit(ms_writer *w, ms_diag *d);
void ms_writer_abort(ms_writer *w);

/* ---- Reading medsynth HDF5 files --------------------------------------
 *
 * Usage:
 *   ms_h5_reader *r;
 *   if (ms_h5_reader_open(&r, "out.h5", &diag) != MS_OK) ...;
 *   size_t t;
 *   if (ms_h5_reader_find(r, "patients", &t) != MS_OK) ...;
 *   const ms_table_schema *s = ms_h5_reader_schema(r, t);
 *   ms_chunk *c; ms_chunk_new(&c, s, 65536);
 *   for (uint64_t i = 0; i < ms_h5_reader_rows(r, t); i += c->n_rows)
 *     if (ms_h5_reader_read(r, t, i, c, &diag) != MS_OK) ...;   // c->n_rows rows
 *   ms_chunk_free(c); ms_h5_reader_free(r);
 *
 * Chunks come back exactly as a generator produced them: codes for
 * categoricals (labels mapped through the schema's category list), validity
 * buffers for nullable columns (float64: NaN reads as missing).
 *
 * Errors: a missing file is MS_ERR_NOTFOUND, a file that is not HDF5 or not
 * written by medsynth is MS_ERR_FORMAT; HDF5's own error printing is off.
 * Ownership: the reader owns every schema, name and string it returns; they
 * stay valid until ms_h5_reader_free. */
typedef struct ms_h5_reader ms_h5_reader;

ms_status ms_h5_reader_open(ms_h5_reader **out, const char *path, ms_diag *d);
void ms_h5_reader_free(ms_h5_reader *r);

/* Tables under /tables, in name order. */
size_t ms_h5_reader_n_tables(const ms_h5_reader *r);
const ms_table_schema *ms_h5_reader_schema(const ms_h5_reader *r, size_t table);
uint64_t ms_h5_reader_rows(const ms_h5_reader *r, size_t table);
/* MS_ERR_NOTFOUND when no table has that name. */
ms_status ms_h5_reader_find(const ms_h5_reader *r, const char *name, size_t *table);
/* Reads rows [first_row, first_row + n) with n = min(chunk->capacity,
 * rows - first_row) into a chunk made by ms_chunk_new for this table's
 * schema; sets chunk->first_row and chunk->n_rows. */
ms_status ms_h5_reader_read(ms_h5_reader *r, size_t table, uint64_t first_row,
                               ms_chunk *chunk, ms_diag *d);
/* Recomputes the table's "xxh64" attribute from the stored rows, streaming;
 * MS_ERR_DATA when it differs. `computed` (may be NULL) gets the digest. */
ms_status ms_h5_reader_verify(ms_h5_reader *r, size_t table, uint64_t *computed,
                                 ms_diag *d);

/* Root attributes (provenance) as text, in name order: integers in decimal,
 * reals with %.17g, string arrays joined with ", ". Borrowed. */
size_t ms_h5_reader_n_attrs(const ms_h5_reader *r);
const char *ms_h5_reader_attr_name(const ms_h5_reader *r, size_t i);
const char *ms_h5_reader_attr_value(const ms_h5_reader *r, size_t i);
/* Value of root attribute `name`, or NULL. */
const char *ms_h5_reader_attr(const ms_h5_reader *r, const char *name);

/* N-d arrays: every dataset outside /tables with a numeric element type, in
 * path order. dims has `rank` entries; dims[0] is the item count. */
size_t ms_h5_reader_n_arrays(const ms_h5_reader *r);
const char *ms_h5_reader_array_path(const ms_h5_reader *r, size_t array);
ms_dtype ms_h5_reader_array_dtype(const ms_h5_reader *r, size_t array);
int ms_h5_reader_array_rank(const ms_h5_reader *r, size_t array);
const uint64_t *ms_h5_reader_array_dims(const ms_h5_reader *r, size_t array);
/* Reads items [first, first + n) into out (n * item size bytes, native
 * layout of the array's dtype). */
ms_status ms_h5_reader_read_items(ms_h5_reader *r, size_t array, uint64_t first,
                                     uint64_t n, void *out, ms_diag *d);
/* Recomputes "xxh64_items"; MS_ERR_NOTFOUND when the array has none. */
ms_status ms_h5_reader_verify_array(ms_h5_reader *r, size_t array, ms_diag *d);

#ifdef __cplusplus
}
#endif
#endif
