/* The outputs of one command run besides its main file (medsynth/output.h):
 * folders (--png DIR, --nifti DIR) and single files (--grid FILE), staged
 * when the run starts and moved into place right after the main output has
 * been committed, or all removed when the run fails or is interrupted first.
 *
 * A single file is staged as an entry of its folder (a temporary folder
 * inside it, merged at commit) rather than as a temporary file: the library
 * may derive several names from it (records writes one contact sheet per
 * image field, "sheet_<field>.png"), and all of them then move into place. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "medsynth/io.h"

ms_status ms_cli_outputs_add(ms_cli_outputs *s, const char *target, int file, const char **path,
                             ms_diag *d) {
  *path = NULL;
  if (s->n >= MS_CLI_MAX_OUTPUTS)
    return ms_diag_add(d, MS_ERR_INTERNAL, target, 0, 0, NULL, "too many outputs");
  char *dir = NULL;
  const char *base = NULL;
  if (file) {
    const char *slash = strrchr(target, '/');
    base = slash ? slash + 1 : target;
    if (!*base)
      return ms_diag_add(d, MS_ERR_INVALID, target, 0, 0, NULL, "output path names no file");
    dir = slash == target ? strdup("/")
          : slash         ? strndup(target, (size_t)(slash - target))
                          : strdup(".");
    if (!dir) return MS_ERR_NOMEM;
  }
  ms_output *o = NULL;
  ms_status st = ms_output_open(&o, file ? dir : target, MS_OUTPUT_DIR, 0, d);
  free(dir);
  if (st) return st;
  char *p = NULL;
  if (asprintf(&p, "%s%s%s", ms_output_path(o), file ? "/" : "", file ? base : "") < 0) {
    ms_output_abort(o);
    return MS_ERR_NOMEM;
  }
  s->o[s->n] = o;
  s->path[s->n] = p;
  s->n++;
  *path = p;
  return MS_OK;
}

void ms_cli_outputs_name_diag(const ms_cli_outputs *s, ms_diag *d) {
  for (int i = 0; i < s->n; i++) ms_output_name_diag(s->o[i], d);
}

static void forget(ms_cli_outputs *s) {
  for (int i = 0; i < s->n; i++) free(s->path[i]);
  s->n = 0;
}

/* No cancellation check here: the main output's commit was the point of no
 * return, and these renames take no time. */
ms_status ms_cli_outputs_commit(ms_cli_outputs *s, ms_diag *d) {
  ms_status st = MS_OK;
  for (int i = 0; i < s->n; i++) {
    if (st == MS_OK)
      st = ms_output_commit(s->o[i], d);
    else
      ms_output_abort(s->o[i]);
  }
  forget(s);
  return st;
}

void ms_cli_outputs_abort(ms_cli_outputs *s) {
  for (int i = 0; i < s->n; i++) ms_output_abort(s->o[i]);
  forget(s);
}

ms_status ms_cli_open_h5(ms_writer **w, const char *path, int force, int compression, int threads, ms_diag *d) {
  ms_writer_params wo;
  ms_writer_params_init(&wo);
  wo.format = MS_FMT_HDF5;
  wo.force = force;
  if (compression >= 0) wo.compression = compression;
  wo.threads = threads;
  wo.cancel = ms_cli_cancel_flag();
  return ms_writer_open(w, path, &wo, d);
}
