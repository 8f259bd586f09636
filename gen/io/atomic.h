/* The one temp-then-rename implementation (gen/io/atomic.c), shared by every
 * writer of the library: the dataset writer, PNG, NIfTI, CSV frames, the
 * evaluation report and its plots. medsynth/output.h is its public face.
 *
 * A file target gets "<dir>/.<base>.tmp.<pid>.XXXXXX" next to it; commit
 * fsyncs it, renames it over the target and fsyncs the directory; discard
 * unlinks it. A folder target gets a temporary folder, renamed (or, when the
 * target folder exists, merged entry by entry) at commit and removed with
 * its contents on discard. Nothing here prints. */
#ifndef MS_IO_ATOMIC_H
#define MS_IO_ATOMIC_H

#include <stdio.h>

#include "medsynth/status.h"

typedef struct {
  char *target; /* final name */
  char *tmp;    /* temporary name in the same directory; NULL once renamed */
  char *parent; /* folder synced after the rename (NULL: none), kept so
                  that commit allocates nothing */
  int fd;       /* open descriptor of tmp, -1 when closed */
  int force;    /* an existing target may be replaced */
  int synced;   /* tmp is known to be on disk */
  int dir;      /* a staged folder (ms__atomic_mkdir) */
  int merge;    /* the target folder existed: commit moves entries into it */
  int replace;  /* a folder written as a whole (ms__atomic_mkdir_whole) */
} ms__atomic;

/* Creates "<dir>/.<base>.tmp.<pid>.XXXXXX" for `target` and leaves it open
 * (fd). An existing target is MS_ERR_EXISTS unless force. */
ms_status ms__atomic_create(ms__atomic *a, const char *target, int force, ms_diag *d);
/* Creates the temporary folder for folder `target` (medsynth/output.h). */
ms_status ms__atomic_mkdir(ms__atomic *a, const char *target, ms_diag *d);
/* Creates the temporary folder for a folder written as a whole (a FHIR
 * export, a DICOM series): "<parent>/.<base>.tmp.<pid>.XXXXXX" next to it.
 * An existing target folder is MS_ERR_EXISTS unless force; under force,
 * commit exchanges the two folders with renameat2(RENAME_EXCHANGE) and then
 * removes the old tree, so readers see the old folder or the new one. */
ms_status ms__atomic_mkdir_whole(ms__atomic *a, const char *target, int force, ms_diag *d);
/* fsyncs the temporary file (reopening it when fd is closed). */
ms_status ms__atomic_sync(ms__atomic *a, ms_diag *d);
/* Syncs, then renames tmp to target (a folder: renames or merges), then
 * fsyncs the directory. An existing target file is MS_ERR_EXISTS unless
 * force. On failure tmp is left for ms__atomic_discard. */
ms_status ms__atomic_commit(ms__atomic *a, ms_diag *d);
/* Closes and removes tmp (a folder with everything in it); frees strings. */
void ms__atomic_discard(ms__atomic *a);
/* Frees strings without touching files. */
void ms__atomic_deinit(ms__atomic *a);
/* Writes the whole of `target` through fill, which returns 0 or an errno
 * value; checks every stdio error, fsyncs and commits. The one helper behind
 * every single-shot writer (PNG, NIfTI, CSV frames, reports, plots). On
 * failure nothing is left and d names the target and the cause. */
typedef int (*ms__atomic_fill)(FILE *fp, void *ctx);
ms_status ms__atomic_write(const char *target, int force, ms__atomic_fill fill, void *ctx,
                           ms_diag *d);
/* Rewrites the file names of d's entries that lie inside a's temporary file
 * or folder to their names under the target, so that messages name what the
 * user asked for. */
void ms__atomic_diag_names(const ms__atomic *a, ms_diag *d);
/* "dir" part of a path ("." when none). Caller frees. */
char *ms__path_dir(const char *path);

#endif
