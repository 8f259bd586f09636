/* The literal comparison of the evaluator: does the synthetic table read
 * like the real one (values and labels the real tables never hold, number
 * and date formats)? eval.c describes the whole evaluation. */
#include <cjson/cJSON.h>
#include <stdatomic.h>
#include "core/alloc.h"
#include "core/names.h"
#include "core/diag.h"
#include "core/json.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/pool.h"
#include "eval/eval_internal.h"
#include "eval/eval_columns.h"
#include "io/atomic.h"
#include "medsynth/eval.h"
#include "medsynth/rng.h"
#include "medsynth/version.h"

/* ---- literal comparison: does the synthetic table read like the real one? ---- */

/* Does `v` occur among the sorted real values vals[0..n)? */
static int real_has_value(const double *vals, size_t n, double v) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (vals[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo < n && vals[lo] == v;
}

static int real_has_label(const ms_frame_col *t, const ms_frame_col *h, const char *s) {
  for (size_t l = 0; l < t->n_levels; l++)
    if (!strcmp(t->levels[l], s)) return 1;
  for (size_t l = 0; h && l < h->n_levels; l++)
    if (!strcmp(h->levels[l], s)) return 1;
  return 0;
}

/* Synthetic cells of column `name` holding a value no real row has (a label,
 * a bool spelling, a value of a discrete numeric column), and whether the
 * column is written in another format (notes: a short description, or ""). */
size_t ms__eval_unseen_cells(const ms_frame *tr, const ms_frame *ho, const ms_frame *sy,
                             const char *name, char *notes, size_t cap) {
  notes[0] = '\0';
  size_t jt = ms_frame_find(tr, name), js = ms_frame_find(sy, name);
  size_t jh = ho ? ms_frame_find(ho, name) : SIZE_MAX;
  if (jt == SIZE_MAX || js == SIZE_MAX) return 0;
  const ms_frame_col *t = &tr->cols[jt], *s = &sy->cols[js];
  const ms_frame_col *h = jh != SIZE_MAX ? &ho->cols[jh] : NULL;
  size_t n = 0;
  if (t->code && s->code) {
    if (h && !h->code) h = NULL;
    char *seen = ms__calloc(s->n_levels ? s->n_levels : 1, 1);
    if (!seen) return 0;
    for (size_t l = 0; l < s->n_levels; l++) seen[l] = real_has_label(t, h, s->levels[l]) ? 1 : 2;
    for (size_t r = 0; r < sy->n_rows; r++)
      if (s->code[r] >= 0 && seen[s->code[r]] == 2) n++;
    for (size_t l = 0; l < s->n_levels; l++)
      if (seen[l] == 2) {
        snprintf(notes, cap, "label \"%s\" is not in the real table", s->levels[l]);
        break;
      }
    free(seen);
    return n;
  }
  if (!t->num || !s->num) return 0;
  if (t->kind == MS_FKIND_BOOL) {
    for (int b = 0; b < 2; b++) {
      if (!t->bool_text[b] || !s->bool_text[b] || !strcmp(t->bool_text[b], s->bool_text[b])) continue;
      for (size_t r = 0; r < sy->n_rows; r++) n += !isnan(s->num[r]) && (s->num[r] != 0) == b;
      snprintf(notes, cap, "written \"%s\" where the real table writes \"%s\"", s->bool_text[b],
               t->bool_text[b]);
    }
    return n;
  }
  if ((t->kind == MS_FKIND_INTEGER || t->kind == MS_FKIND_REAL) && t->n_lit) {
    if (h && !h->num) h = NULL;
    /* The real values: train's (at most MS_FRAME_DISCRETE_MAX) and the
     * holdout's, sorted. */
    size_t nv = t->n_lit + (h ? ho->n_rows : 0), m = 0;
    double *vals = ms__malloc((nv ? nv : 1) * sizeof *vals);
    if (!vals) return 0;
    for (size_t i = 0; i < t->n_lit; i++) vals[m++] = t->lit_val[i];
    for (size_t r = 0; h && r < ho->n_rows; r++)
      if (!isnan(h->num[r])) vals[m++] = h->num[r];
    qsort(vals, m, sizeof *vals, ms__eval_cmpd);
    double last = NAN;
    int last_ok = 1;
    for (size_t r = 0; r < sy->n_rows; r++) {
      double v = s->num[r];
      if (isnan(v)) continue;
      int ok = v == last ? last_ok : real_has_value(vals, m, v);
      last = v, last_ok = ok;
      if (!ok) {
        if (!n) snprintf(notes, cap, "value %.10g is not in the real table (%zu distinct values)", v, t->n_lit);
        n++;
      }
    }
    free(vals);
    return n;
  }
  if (t->kind == MS_FKIND_REAL && s->decimals > t->decimals)
    snprintf(notes, cap, "%d decimals where the real table has at most %d", s->decimals, t->decimals);
  else if (t->kind == MS_FKIND_REAL && t->decimals > 0 && s->decimals > 0 && s->real_style >= 0 &&
           t->real_style >= 0 && s->real_style != t->real_style)
    snprintf(notes, cap, "trailing zeros written differently");
  else if (t->kind == MS_FKIND_DATE && t->date_format && s->date_format &&
           strcmp(t->date_format, s->date_format))
    snprintf(notes, cap, "dates written as %s where the real table writes %s", s->date_format,
             t->date_format);
  return 0;
}
