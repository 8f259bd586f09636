/* Private diagnostics helpers (ms__ prefix) shared by the library's layers.
 *
 * Out of memory: every path that fails because an allocation returned NULL
 * reports it once, naming what could not be allocated ("out of memory for the
 * table array"), with status MS_ERR_NOMEM, frees what it had allocated and
 * returns MS_ERR_NOMEM. Callers that pass a callee's MS_ERR_NOMEM on add
 * nothing: the message is the callee's.
 *
 * Validators that go on after an error (the spec loader) keep what they
 * found before an allocation failed and drop what they reported after it: a
 * missing name or label makes later findings unreliable (an "unknown field"
 * that only the failed allocation made unknown). */
#ifndef MEDSYNTH_CORE_DIAG_H
#define MEDSYNTH_CORE_DIAG_H

#include <stddef.h>

#include "medsynth/status.h"

/* Adds "out of memory for <what>" (what is a noun phrase; file and where may
 * be NULL) and returns MS_ERR_NOMEM. */
ms_status ms__diag_nomem(ms_diag *d, const char *file, const char *where, const char *what);

/* An entry of any severity (ms_diag_vadd with arguments). */
void ms__diag_add_sev(ms_diag *d, ms_status st, ms_severity sev, const char *file, int line,
                      int col, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

/* Index of the first error entry at or after `from` with status `status`, or
 * SIZE_MAX. d may be NULL. */
size_t ms__diag_find(const ms_diag *d, size_t from, ms_status status);

/* Drops every entry from index `count` on (errors among them are no longer
 * counted in n_errors). */
void ms__diag_truncate(ms_diag *d, size_t count);

#endif
