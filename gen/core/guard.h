/* Guarded reads: run a reading function in a child process with a time
 * limit, so that a library which crashes or loops on a damaged file (HDF5
 * 1.10 does both on damaged global heaps) ends in a diagnostic instead of a
 * signal or a hang.
 *
 * Usage (see gen/io/h5read.c, gen/nn/model.c):
 *
 *   static ms_status probe(ms__guard *g, void *ctx, ms__gbuf *out, ms_diag *d) {
 *     ms__guard_at(g, "/tables/%s: attribute \"medsynth_schema\"", name);
 *     ... read with HDF5, append results with ms__gbuf_put_* ...
 *   }
 *   ms__gbuf res = {0};
 *   ms_status st = ms__guard_run(path, MS_ERR_DATA, probe, &ctx, &res, d);
 *   ... decode res with ms__gbuf_get_* (bounds-checked) ...
 *   ms__gbuf_free(&res);
 *
 * The function runs in a forked child. Its status, its diagnostics and the
 * bytes it appended come back through a pipe; the parent decodes them as
 * untrusted input. ms__guard_at records what the child is reading (in a
 * shared page) and counts as progress: the time limit applies to the gap
 * between two progress marks, so a long but advancing read is never cut
 * off. When the child dies by a signal or makes no progress for the limit
 * (it is then killed), the parent reports `fail_status` with the file and
 * the last recorded object as location.
 *
 * The child never returns into the caller: it leaves with _exit, so no
 * atexit handler (HDF5's library shutdown, stdio flushes) runs twice. It
 * only reads; it must not write files the parent has open, and it must not
 * use the worker pool (core/pool.h: a forked child has only the calling
 * thread, and the pool's threads do not survive fork). Fault signals get their default action in
 * the child, so a crash ends it rather than the application's handlers.
 *
 * Environment: MEDSYNTH_READ_TIMEOUT (seconds without progress, default
 * 10); MEDSYNTH_READ_GUARD=0 runs the function in-process (debuggers,
 * valgrind). While allocation-failure simulation is armed
 * (medsynth/faultsim.h) the function also runs in-process, so that injected
 * failures are counted where the test sees them.
 *
 * Invariant: the decoded result is the same in both modes, byte for byte;
 * callers must not depend on which one ran. */
#ifndef MS_CORE_GUARD_H
#define MS_CORE_GUARD_H

#include <stddef.h>
#include <stdint.h>

#include "medsynth/status.h"

/* Growable byte buffer with a read cursor. A failed put sets `fail`; a get
 * past the end or of an implausible length sets `fail` and returns zero /
 * NULL. */
typedef struct {
  uint8_t *p;
  size_t len, cap, pos;
  int fail;
  int nomem; /* set with fail when a get could not allocate its copy */
} ms__gbuf;

void ms__gbuf_free(ms__gbuf *b);
void ms__gbuf_put_u64(ms__gbuf *b, uint64_t v);
/* Length-prefixed bytes; s may be NULL (read back as NULL). */
void ms__gbuf_put_str(ms__gbuf *b, const char *s);
void ms__gbuf_put_bytes(ms__gbuf *b, const void *p, size_t n);
uint64_t ms__gbuf_get_u64(ms__gbuf *b);
/* Returns a new NUL-terminated copy (caller frees) or NULL (absent, or fail
 * set). Bytes after an embedded NUL are dropped. */
char *ms__gbuf_get_str(ms__gbuf *b);
/* Pointer to the next n bytes inside the buffer, or NULL. */
const void *ms__gbuf_get_bytes(ms__gbuf *b, size_t n);

typedef struct ms__guard ms__guard;
typedef ms_status (*ms__guard_fn)(ms__guard *g, void *ctx, ms__gbuf *out, ms_diag *d);

/* Records what is being read now ("/tables/x: attribute \"y\"") and marks
 * progress. Cheap; g may be NULL. */
void ms__guard_at(ms__guard *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Runs fn as described above. Returns fn's status (its diagnostics added to
 * d, its bytes in *out, which the caller frees), or fail_status with one
 * diagnostic naming `file` when the child crashed, stalled or returned a
 * malformed result; MS_ERR_NOMEM / MS_ERR_IO when the child could not be
 * started. */
ms_status ms__guard_run(const char *file, ms_status fail_status, ms__guard_fn fn, void *ctx,
                        ms__gbuf *out, ms_diag *d);

#endif
