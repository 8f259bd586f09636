/* Status codes and diagnostics.
 *
 * Usage:
 *   ms_diag d;
 *   ms_diag_init(&d);
 *   if (ms_spec_load(&spec, "spec.json", &d) != MS_OK) {
 *     char *text = ms_diag_format(&d);   // one line per problem
 *     fputs(text, stderr); free(text);
 *   }
 *   ms_diag_deinit(&d);
 *
 * Every fallible library function returns ms_status (MS_OK == 0) and puts
 * detail into a caller-supplied ms_diag. A diag collects any number of
 * entries so that a validator can report every problem in one run. The
 * printed form of one entry is
 *   file:line:column: error: /json/pointer: message
 * with the parts that are unknown left out.
 *
 * Ownership: the diag owns copies of every string given to it.
 *
 * API conventions (every public header follows them; status.h is included
 * by all of them):
 *  - Names: ms_<module>_<verb>[_<detail>]; types ms_<noun>; macros and
 *    enumerators MS_<GROUP>_<NAME>.
 *  - Options and parameters of an operation or a model are one struct,
 *    ms_<module>_params, set to the documented defaults by
 *    ms_<module>_params_init (ms_writer_params, ms_generate_params,
 *    ms_phantom_params, ...). There is no _opts suffix.
 *  - Objects the library allocates come back through an `ms_<type> **out`
 *    argument and are released by ms_<type>_free (NULL is a no-op). The
 *    function that makes one is ms_<type>_new, or ms_<type>_<source> when it
 *    reads one: _load (a model, spec or atlas file), _read (a data file),
 *    _open (a file to read: ms_h5_reader_open). Operations that return an
 *    object of another type say so (ms_fit_model_sample gives an ms_frame).
 *  - Outputs that appear all at once (a file or folder written under a
 *    temporary name) are transactions: ms_<type>_open, then exactly one of
 *    ms_<type>_commit (publish) or ms_<type>_abort (remove); both release
 *    the object (ms_writer, ms_output, ms_dicom_dir, ms_fhir_writer).
 *  - Structs in the caller's storage are set up by ms_<type>_init and
 *    released by ms_<type>_deinit (ms_diag, ms_phantom_image, ms_schedule).
 *  - The one foreign object, a gsl_rng from ms_rng_gsl_new, is released with
 *    GSL's gsl_rng_free. */
#ifndef MEDSYNTH_STATUS_H
#define MEDSYNTH_STATUS_H

#include <signal.h>
#include <stdarg.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, text): the one table behind ms_status, ms_status_name and
 * ms_strerror. New members go last. */
#define MS_STATUS_TABLE(X)                                   \
  X(OK, "success")                                           \
  X(ERR_NOMEM, "out of memory")                              \
  X(ERR_INVALID, "invalid argument")                         \
  X(ERR_PARSE, "parse error")                                \
  X(ERR_SPEC, "invalid spec")                                \
  X(ERR_IO, "input/output error")                            \
  X(ERR_NOTFOUND, "not found")                               \
  X(ERR_EXISTS, "already exists")                            \
  X(ERR_RANGE, "value out of range")                         \
  X(ERR_MATH, "arithmetic error")                            \
  X(ERR_FORMAT, "invalid or corrupt file format")            \
  X(ERR_UNSUPPORTED, "unsupported")                          \
  X(ERR_DATA, "invalid data")                                \
  X(ERR_INTERNAL, "internal error")                          \
  X(ERR_CANCELLED, "cancelled")

typedef enum {
#define MS__STATUS_ENUM(name, text) MS_##name,
  MS_STATUS_TABLE(MS__STATUS_ENUM)
#undef MS__STATUS_ENUM
  MS_STATUS_COUNT
} ms_status;

/* Cancellation: a flag owned by the caller (typically set by its own signal
 * handler; the library never installs one). Functions whose options carry a
 * `cancel` pointer poll it once per chunk, batch, image or stage; when it is
 * non-zero they stop, remove every temporary file they made and return
 * MS_ERR_CANCELLED. NULL means never cancelled. */
typedef volatile sig_atomic_t ms_cancel_flag;

/* "MS_ERR_SPEC" style name; "MS_UNKNOWN" for out-of-range values. */
const char *ms_status_name(ms_status s);
/* Human text ("invalid spec"). */
const char *ms_strerror(ms_status s);

typedef enum {
  MS_SEV_ERROR,
  MS_SEV_WARNING,
  MS_SEV_NOTE,
  MS_SEV_COUNT
} ms_severity;

const char *ms_severity_name(ms_severity s);

/* One problem. Strings are owned by the diag. line/column are 1-based; 0
 * means unknown. `where` is a JSON Pointer ("/tables/0/fields/3/dist/sd"), a
 * "table/row" locator, or a tensor name; NULL when not applicable. */
typedef struct {
  ms_status status;
  ms_severity severity;
  char *file;
  int line;
  int column;
  char *where;
  char *message;
} ms_diag_entry;

typedef struct {
  ms_diag_entry *entries;
  size_t count;
  size_t capacity;
  size_t n_errors;
  /* Once this many entries are held, further ones are counted but dropped
   * (a malformed table can otherwise produce millions). 0 = 1000. */
  size_t max_entries;
  size_t n_dropped;
} ms_diag;

void ms_diag_init(ms_diag *d);
void ms_diag_deinit(ms_diag *d);
/* Drops all entries; keeps the storage. */
void ms_diag_clear(ms_diag *d);

/* Adds an entry and returns `status` so that callers can write
 *   return ms_diag_add(d, MS_ERR_SPEC, file, l, c, ptr, "bad %s", x);
 * d may be NULL (the entry is discarded). Never fails: when memory runs out
 * the entry is dropped and counted. */
ms_status ms_diag_add(ms_diag *d, ms_status status, const char *file, int line, int column,
                      const char *where, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
ms_status ms_diag_vadd(ms_diag *d, ms_status status, ms_severity sev, const char *file,
                       int line, int column, const char *where, const char *fmt, va_list ap);
/* A warning: does not count towards n_errors. */
void ms_diag_warn(ms_diag *d, const char *file, int line, int column, const char *where,
                  const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Copies every entry of `src` (status, severity, position, text) to the end
 * of `dst`, and adds src's dropped count to dst's. dst may be NULL (nothing
 * happens). Used to merge the diag of a worker into the caller's. */
void ms_diag_append(ms_diag *dst, const ms_diag *src);

/* Sorts entries by (file, line, column), stable, so output order does not
 * depend on the order checks ran in. */
void ms_diag_sort(ms_diag *d);

/* Formats one entry as "file:line:column: error: where: message" (no
 * newline). Caller frees. NULL on allocation failure. */
char *ms_diag_entry_format(const ms_diag_entry *e);
/* All entries, one per line, each ending in '\n'. Caller frees. */
char *ms_diag_format(const ms_diag *d);

/* First error's status, or MS_OK. */
ms_status ms_diag_status(const ms_diag *d);

#ifdef __cplusplus
}
#endif
#endif
