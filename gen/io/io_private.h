/* Internals shared by the files of gen/io (not a public header).
 *
 * Pieces:
 *   - atomic outputs (ms__atomic_*, public face medsynth/output.h): a
 *     temporary file or folder next to the target, fsync + rename on commit,
 *     removal on abort;
 *   - the HDF5 table/array writer (ms__h5w_*), used by writer.c;
 *   - the CSV / JSON Lines formatter (ms__text_*), used by writer.c;
 *   - the byte-shuffle + zlib chunk codec (ms__chunk_compress) shared by the
 *     writer and by tests that check it against HDF5's own filters;
 *   - helpers that silence HDF5's automatic error printing and translate its
 *     error stack into one diag message.
 *
 * Invariants: nothing here prints; every HDF5 call runs on the calling thread
 * (the serial HDF5 library is not thread-safe); only zlib runs in parallel. */
#ifndef MS_IO_PRIVATE_H
#define MS_IO_PRIVATE_H

#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>

#include "io/atomic.h"
#include "medsynth/io.h"

/* ---- atomic outputs: io/atomic.h ------------------------------------ */

/* ---- HDF5 error handling --------------------------------------------- */

typedef struct {
  H5E_auto2_t func;
  void *data;
} ms__h5quiet;
void ms__h5_quiet_begin(ms__h5quiet *q);
void ms__h5_quiet_end(const ms__h5quiet *q);
/* Adds a diag entry "<message>: <innermost HDF5 error text>". */
ms_status ms__h5_error(ms_diag *d, ms_status st, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* After a failed read: MS_ERR_IO when HDF5's error stack holds a failed
 * system read, MS_ERR_DATA otherwise (a chunk that does not decompress, an
 * address outside the file: damage). Leaves the stack as it is. */
ms_status ms__h5_read_status(void);
/* The same with the file named in the entry. */
ms_status ms__h5_error_at(ms_diag *d, ms_status st, const char *file, const char *where,
                          const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* ---- chunk codec ----------------------------------------------------- */

/* HDF5 shuffle filter (elem_size bytes per element) followed by zlib
 * compress2 at `level`, exactly as H5Z_FILTER_SHUFFLE + H5Z_FILTER_DEFLATE
 * produce them (level 1: ms__deflate_rle, a standard zlib stream that
 * HDF5's deflate filter decodes like any other). scratch holds nbytes; out
 * holds compressBound(nbytes). Returns 0 on success, -2 when memory ran
 * out, -1 on any other failure. */
int ms__chunk_compress(const uint8_t *raw, size_t nbytes, size_t elem_size, int level,
                       uint8_t *scratch, uint8_t *out, size_t *out_len);
/* Run-length deflate encoder (gen/io/deflate.c): a zlib stream of in[0..n)
 * whose matches are runs only. out holds cap bytes (compressBound(n) is
 * always enough). Returns 0 and the length, -1 when cap is too small, -2
 * when memory runs out. */
int ms__deflate_rle(const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *out_len);
/* Adler-32 of in[0..n) continuing from a (1 starts a new checksum). */
uint32_t ms__adler32(uint32_t a, const uint8_t *in, size_t n);
/* The inverse (used by tests and the reader's verification). */
int ms__chunk_decompress(const uint8_t *in, size_t in_len, size_t elem_size, uint8_t *scratch,
                         uint8_t *raw, size_t nbytes);

/* ---- HDF5 writer ----------------------------------------------------- */

typedef struct ms__h5w ms__h5w;
ms_status ms__h5w_open(ms__h5w **out, const char *tmp_path, const ms_writer_params *o,
                       ms_diag *d);
ms_status ms__h5w_begin_table(ms__h5w *h, const ms_table_schema *s, uint64_t expected,
                              ms_diag *d);
ms_status ms__h5w_write_chunk(ms__h5w *h, const ms_chunk *c, ms_diag *d);
ms_status ms__h5w_end_table(ms__h5w *h, const char *name, ms_diag *d);
ms_status ms__h5w_attr_string(ms__h5w *h, const char *obj, const char *name, const char *v,
                              ms_diag *d);
ms_status ms__h5w_attr_int(ms__h5w *h, const char *obj, const char *name, int64_t v,
                           ms_diag *d);
ms_status ms__h5w_attr_double(ms__h5w *h, const char *obj, const char *name, double v,
                              ms_diag *d);
ms_status ms__h5w_begin_array(ms__h5w *h, const char *path, ms_dtype t, int rank,
                              const uint64_t *dims, ms_diag *d);
ms_status ms__h5w_write_items(ms__h5w *h, const char *path, uint64_t first, uint64_t n,
                              const void *data, ms_diag *d);
/* Finishes open tables and arrays, closes the file. Frees h either way. */
ms_status ms__h5w_close(ms__h5w *h, ms_diag *d);
/* Closes without finishing (abort). */
void ms__h5w_discard(ms__h5w *h);

/* ---- packed HDF5 rows (shared by writer and reader) ------------------ */

/* Layout of one packed compound row of a table. */
typedef struct {
  size_t row_size;
  size_t *offset;    /* per column */
  size_t *width;     /* per column: bytes in the row */
  size_t *valid_off; /* per column: offset of "<col>__valid" or SIZE_MAX */
} ms__rowlayout;

ms_status ms__rowlayout_init(ms__rowlayout *L, const ms_table_schema *s);
void ms__rowlayout_deinit(ms__rowlayout *L);
/* Builds the HDF5 compound file type (little-endian, packed); on failure -1,
 * with *nomem (may be NULL) set when an allocation failed. */
hid_t ms__rowlayout_h5type(const ms__rowlayout *L, const ms_table_schema *s, int *nomem);
/* The bool enum {FALSE=0, TRUE=1} over int8 that h5py reads as numpy bool. */
hid_t ms__h5_bool_type(void);
/* Its datatype message in a version 3 compound: header 8, base type 12,
 * names "FALSE\0TRUE\0" 11, values 2. */
#define MS__H5_BOOL_TYPE_BYTES 33
/* HDF5 keeps an object header message below 64 KiB (H5O_MESG_MAX_SIZE):
 * the largest encoded row type a table dataset can have. */
#define MS__H5_MAX_TYPE_BYTES 65535
/* Encoded size (bytes) of the datatype message of the compound row type of
 * columns [first, first + n) of s (with their validity members), as written
 * with the v1.10 format bounds (compound message version 3). A table whose
 * row type exceeds MS__H5_MAX_TYPE_BYTES is stored as column groups
 * (docs/file-format.md, "Wide tables"). */
size_t ms__h5_compound_bytes(const ms_table_schema *s, size_t first, size_t n);
/* Schema <-> JSON text stored in the "medsynth_schema" attribute. */
char *ms__schema_to_json(const ms_table_schema *s);
/* Parses the schema JSON of `file` (named in diagnostics, with `where`);
 * every size in it is bounded (str_width, precision). MS_ERR_DATA when the
 * text is not a schema medsynth writes. */
ms_status ms__schema_from_json(ms_table_schema *s, const char *json, const char *file,
                               const char *where, ms_diag *d);

/* Validity member suffix. */
#define MS__VALID_SUFFIX "__valid"

/* ---- text formats ---------------------------------------------------- */

typedef struct {
  char *p;
  size_t len, cap;
} ms__buf;
int ms__buf_reserve(ms__buf *b, size_t extra);
/* Formats a double with `precision` decimals, or the shortest text that
 * parses back to the same double when precision < 0. Returns length. */
int ms__format_double(char *out, size_t cap, double v, int precision);

/* Appends the CSV header / rows of chunk c to b. */
ms_status ms__csv_header(ms__buf *b, const ms_table_schema *s);
ms_status ms__csv_rows(ms__buf *b, const ms_chunk *c, ms_diag *d);
ms_status ms__jsonl_rows(ms__buf *b, const ms_chunk *c, ms_diag *d);

#endif
