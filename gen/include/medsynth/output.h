/* Outputs that appear only when complete: files and folders staged under a
 * temporary name and moved into place at commit.
 *
 * Usage:
 *   ms_output *o;
 *   if (ms_output_open(&o, "png", MS_OUTPUT_DIR, 0, &diag) != MS_OK) ...;
 *   ... write files into ms_output_path(o) ...
 *   if (failed) ms_output_abort(o);                        // removes all of it
 *   else if (ms_output_commit(o, &diag) != MS_OK) ...;     // moves it into place
 *
 *   ms_output *f;                                           // one file
 *   ms_output_open(&f, "fitted.json", MS_OUTPUT_FILE, force, &diag);
 *   ms_output_write(f, text, strlen(text), &diag);
 *   ms_output_commit(f, &diag);
 *
 * Files: the temporary file "<dir>/.<name>.tmp.<pid>.XXXXXX" is made next to
 * the target (same file system, so rename(2) is atomic); commit fsyncs it,
 * renames it over the target and fsyncs the folder. An existing target is
 * MS_ERR_EXISTS at begin and again at commit unless `force`. Writing with
 * ms_output_write, or handing ms_output_path to a writer that replaces the
 * file (ms_png_write, ms_frame_write_csv, ...), both work.
 *
 * Folders (`force` is ignored): when the target does not exist, a temporary
 * folder "<parent>/.<name>.tmp.<pid>.XXXXXX" is made next to it (missing
 * parents are created) and renamed to the target at commit: the folder
 * appears complete or not at all. When the target folder exists already, the
 * temporary folder "<target>/.medsynth.tmp.<pid>.XXXXXX" is made inside it
 * and commit moves each entry into place with one rename each (subfolders
 * merged the same way, files of the same name replaced): every entry appears
 * complete, and entries the run does not write are left alone.
 *
 * Abort (and any failed commit) removes the temporary file or folder with
 * everything in it. Every writer of the library (ms_writer, ms_png_write,
 * ms_nifti_write, ms_frame_write_csv, ms_eval_report_new) goes through the same
 * implementation, gen/io/atomic.c; docs/reliability.md states the promise.
 *
 * Ownership: ms_output_open creates the output; commit and abort free it
 * (both accept NULL). */
#ifndef MEDSYNTH_OUTPUT_H
#define MEDSYNTH_OUTPUT_H

#include <stddef.h>

#include "medsynth/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { MS_OUTPUT_FILE, MS_OUTPUT_DIR, MS_OUTPUT_KIND_COUNT } ms_output_kind;

typedef struct ms_output ms_output;

/* Makes the temporary file (empty) or folder for `target`. */
ms_status ms_output_open(ms_output **out, const char *target, ms_output_kind kind, int force,
                          ms_diag *d);
/* Where to write now: the temporary file or folder. Borrowed from o. */
const char *ms_output_path(const ms_output *o);
/* The final name given to begin. Borrowed from o. */
const char *ms_output_target(const ms_output *o);
/* Appends n bytes to a file output. */
ms_status ms_output_write(ms_output *o, const void *data, size_t n, ms_diag *d);
/* Moves the output into place (see above), then frees o. On failure the
 * temporary file or folder is removed. */
ms_status ms_output_commit(ms_output *o, ms_diag *d);
/* Messages about files inside the temporary file or folder name them by the
 * path they will have under the target: rewrites those file names in d. */
void ms_output_name_diag(const ms_output *o, ms_diag *d);
/* Removes the temporary file or folder and frees o. */
void ms_output_abort(ms_output *o);

#ifdef __cplusplus
}
#endif
#endif
