/* Image fields generated inside the records chunk walk (medsynth/images.h).
 *
 * A sink wrapper: every table goes on to the writer unchanged; for a table
 * with image fields, each chunk's rows also get their images. Per chunk:
 *   1. every per-image parameter expression is evaluated over the chunk's
 *      columns (the vectorised expression VM), and each value is checked
 *      against its range (a bad row stops the run, named "table/row");
 *   2. rows are cut into batches of bounded memory; a batch is rendered in
 *      parallel (OpenMP, one phantom buffer per thread), image i of the
 *      batch by ms_phantom_generate with seed' = xxh64(seed, stream
 *      "table/field") and index = the row's global position;
 *   3. the batch is written serially, in row order: images, masks, lesion
 *      rows and per-image parameters (ms_writer_write_items /
 *      ms_writer_write_chunk).
 * Exports (PNG, NIfTI) are written by the rendering thread; contact sheets
 * at the end from the first rows kept aside. Both are staged: written under
 * a hidden name (".staged.<name>" in the same folder) and renamed by
 * ms_images_finish once everything is written; ms_images_free removes what
 * was staged and not published, so a failed run leaves no export behind.
 * The staged names follow from (field, row), so publishing and removing
 * allocate nothing.
 *
 * Invariants: memory is bounded by the batch, the thread buffers and the
 * sheet tiles, never by N; image bytes depend only on (seed, field, row,
 * row values), never on threads, chunking, batch size or shard. No state
 * crosses rows except the serial write position. */
#include <errno.h>
#include "core/alloc.h"
#include "core/table_build.h"
#include "core/diag.h"
#include <inttypes.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/jsonloc.h"
#include "core/pool.h"
#include "medsynth/images.h"
#include "medsynth/model.h"
#include "medsynth/dicom.h"
#include "medsynth/nifti.h"
#include "multimodal/report.h"
#include "records/fhir.h"
#include "medsynth/nn.h"
#include "medsynth/sample.h"
#include "medsynth/phantom.h"
#include "medsynth/phantom_table.h"
#include "medsynth/png.h"
#include "medsynth/rng.h"
#include "multimodal/images_acq.h"
#include "records/images.h"
#include "records/images_brain.h"
#include "records/plan.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"

/* ---- spec accessors ------------------------------------------------------------------ */

size_t ms_spec_n_images(const ms_spec *s) { return s && s->images ? s->images->n : 0; }

const char *ms_spec_image_name(const ms_spec *s, size_t i) {
  return i < ms_spec_n_images(s) ? s->images->f[i].name : NULL;
}

size_t ms_spec_image_table(const ms_spec *s, size_t i) {
  return i < ms_spec_n_images(s) ? s->images->f[i].table : SIZE_MAX;
}

int ms_spec_image_item_dims(const ms_spec *s, size_t i, uint64_t dims[4]) {
  if (i >= ms_spec_n_images(s)) return 0;
  if (s->images->f[i].is_model) {
    const ms_model_config *c = ms_model_config_of(s->images->f[i].model);
    dims[0] = (uint64_t)c->image_channels;
    dims[1] = dims[2] = (uint64_t)c->image_size;
    return 3;
  }
  const ms_phantom_params *p = &s->images->f[i].phantom;
  int r = 0;
  dims[r++] = 1;
  if (p->depth > 0) dims[r++] = (uint64_t)p->depth;
  dims[r++] = (uint64_t)p->height;
  dims[r++] = (uint64_t)p->width;
  return r;
}

void ms_images_params_init(ms_images_params *o) {
  memset(o, 0, sizeof *o);
}

/* ---- state ----------------------------------------------------------------------------- */

/* Widths of the report columns of <field>_info (bytes). */
#define REPORT_CAT_W 3
#define REPORT_IMP_W 255
#define REPORT_TEXT_W 2047

typedef struct {
  const ms__image_field *f;
  char img_path[128], mask_path[128], les_name[128], info_name[128];
  char aal_path[136]; /* brain fields: /masks/<name>_aal */
  int began;
  uint64_t expected, items, first_row;
  int key_col; /* output column of the table's key, or -1 */
  ms_column key;
  ms_table_schema les_schema, info_schema;
  size_t pix;    /* D * H * W */
  size_t plane;  /* H * W */
  int depth;     /* planes (1 for a slice) */
  ms_phantom_image *pimg; /* one per thread */
  int C;                  /* channels */
  size_t S;               /* model image size */
  ms_window window;
  ms_unet *unet;          /* model fields: a diffusion UNet ... */
  ms_vae *vae;            /* ... or a VAE */
  ms_denoiser dn;
  float *grid_img;
  uint8_t *grid_mask;
  size_t grid_n;
  uint64_t exp_hi; /* exports of rows [first_row, exp_hi) may exist (staged) */
  /* reports-only mode: the reports of the latest chunk */
  uint64_t rep_first;
  size_t rep_n;
  char **rep_text, **rep_imp;
  ms__acq_run *acq; /* acquisition physics (multimodal/images_acq.h), or NULL */
  /* brain fields: the atlas and one image buffer per thread */
  ms_brain_atlas *atlas;
  ms_brain_image *bimg;
} fstate;

struct ms_images {
  const ms_spec *s;
  ms_writer *w;
  ms_images_params o;
  ms_diag *d;
  ms_sink inner;
  size_t n;
  fstate *fs;
  int nthreads;
  ms__expr_scratch *xs;
  int published; /* ms_images_finish renamed the staged files */
  int reports_only; /* render phantoms for their reports only (no writer) */
};

/* "dir/.staged.base" for "dir/base" (staged; the extension stays, which
 * the writers go by) or the name itself. */
static void stage_name(char *out, size_t cap, const char *final, int staged) {
  if (!staged) {
    snprintf(out, cap, "%s", final);
    return;
  }
  const char *slash = strrchr(final, '/');
  size_t dl = slash ? (size_t)(slash - final) + 1 : 0;
  snprintf(out, cap, "%.*s.staged.%s", (int)dl, final, final + dl);
}

/* Export file k (0 image, 1 mask; png = 1: PNG, 0: NIfTI) of a row. */
static void export_name(char *out, size_t cap, const ms_images *im, const fstate *fs, int png,
                        int mask, uint64_t row, int staged) {
  char final[4096];
  snprintf(final, sizeof final, "%s/%s_%06" PRIu64 "%s%s", png ? im->o.png_dir : im->o.nifti_dir,
           fs->f->name, row, mask ? "_mask" : "", png ? ".png" : ".nii.gz");
  stage_name(out, cap, final, staged);
}

/* Contact sheet of field i. */
static void sheet_name(char *out, size_t cap, const ms_images *im, size_t i, int staged) {
  char final[4096];
  if (im->n == 1) {
    snprintf(final, sizeof final, "%s", im->o.grid_path);
  } else {
    const char *dot = strrchr(im->o.grid_path, '.');
    const char *slash = strrchr(im->o.grid_path, '/');
    if (!dot || (slash && dot < slash)) dot = im->o.grid_path + strlen(im->o.grid_path);
    snprintf(final, sizeof final, "%.*s_%s%s", (int)(dot - im->o.grid_path), im->o.grid_path,
             im->fs[i].f->name, dot);
  }
  stage_name(out, cap, final, staged);
}

/* An MS_ERR_NOMEM that no callee reported (entries from `first` on) gets one
 * message naming what field fs was doing. */
static ms_status field_nomem(ms_images *im, const fstate *fs, size_t first, ms_status st,
                             const char *what) {
  if (st == MS_ERR_NOMEM && ms__diag_find(im->d, first, MS_ERR_NOMEM) == SIZE_MAX) {
    char w[256];
    snprintf(w, sizeof w, "%s of image field \"%s\"", what, fs->f->name);
    ms__diag_nomem(im->d, NULL, fs->img_path, w);
  }
  return st;
}

static ms_status mkdir_p(const char *dir, ms_diag *d) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", dir);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(buf, 0777) && errno != EEXIST)
      return ms_diag_add(d, MS_ERR_IO, buf, 0, 0, NULL, "cannot create folder: %s", strerror(errno));
    *p = '/';
  }
  if (mkdir(buf, 0777) && errno != EEXIST)
    return ms_diag_add(d, MS_ERR_IO, buf, 0, 0, NULL, "cannot create folder: %s", strerror(errno));
  return MS_OK;
}


/* Lesion and per-image parameter tables of field fs: the phantom tables
 * (medsynth/phantom_table.h) with the key column of the field's table, and
 * the dose and the report appended to the per-image table. */
static int build_schemas(fstate *fs, const ms_table_schema *ts) {
  const ms__image_field *f = fs->f;
  const ms_column *key = fs->key_col >= 0 ? &fs->key : NULL;
  if (ms_phantom_lesion_schema(&fs->les_schema, fs->les_name, &f->phantom, key, ts->name) ||
      ms_phantom_info_schema(&fs->info_schema, fs->info_name, &f->phantom, key, ts->name, 4))
    return -1;
  ms_table_schema *s = &fs->info_schema;
  int bad = 0;
  bad |= ms__schema_add_col(s, "dose", MS_COL_FLOAT64, "mAs", "CT dose (NaN for MR)");
  /* the radiology report of the image, from its measured lesions (multimodal/report.c) */
  bad |= ms__schema_add_col(s, "report_category", MS_COL_STRING, NULL, "Lung-RADS-like category (chest CT), else empty");
  s->columns[s->n_columns - 1].str_width = REPORT_CAT_W;
  bad |= ms__schema_add_col(s, "impression", MS_COL_STRING, NULL, "report impression");
  s->columns[s->n_columns - 1].str_width = REPORT_IMP_W;
  bad |= ms__schema_add_col(s, "report", MS_COL_STRING, NULL, "report text: numbered findings, one per lesion, and the impression");
  s->columns[s->n_columns - 1].str_width = REPORT_TEXT_W;
  return bad ? -1 : 0;
}

/* ---- sink callbacks -------------------------------------------------------------------- */

/* The attributes that open the images of a phantom or brain field: its
 * table, key, axes, source and phantom. */
static ms_status image_head_attrs(ms_writer *w, const fstate *fs, const char *table, const char *phantom) {
  const char *ip = fs->img_path;
  ms_status st = ms_writer_set_object_attr_string(w, ip, "table", table);
  if (!st && fs->key_col >= 0) st = ms_writer_set_object_attr_string(w, ip, "key", fs->key.name);
  if (!st) st = ms_writer_set_object_attr_string(w, ip, "axes", fs->f->phantom.depth > 0 ? "N,C,D,H,W" : "N,C,H,W");
  if (!st) st = ms_writer_set_object_attr_string(w, ip, "source", "phantom");
  if (!st) st = ms_writer_set_object_attr_string(w, ip, "phantom", phantom);
  return st;
}

/* The attributes that close them: unit, spacing (z for volumes), window,
 * stream and description. */
static ms_status image_tail_attrs(ms_writer *w, const fstate *fs, const char *unit, const double sp[3]) {
  const ms__image_field *f = fs->f;
  const char *ip = fs->img_path;
  ms_status st = ms_writer_set_object_attr_string(w, ip, "unit", unit);
  if (!st) st = ms_writer_set_object_attr_double(w, ip, "spacing_x_mm", sp[0]);
  if (!st) st = ms_writer_set_object_attr_double(w, ip, "spacing_y_mm", sp[1]);
  if (!st && f->phantom.depth > 0) st = ms_writer_set_object_attr_double(w, ip, "spacing_z_mm", sp[2]);
  if (!st) st = ms_writer_set_object_attr_double(w, ip, "window_center", f->window.center);
  if (!st) st = ms_writer_set_object_attr_double(w, ip, "window_width", f->window.width);
  char hex[24];
  snprintf(hex, sizeof hex, "%016" PRIx64, f->stream);
  if (!st) st = ms_writer_set_object_attr_string(w, ip, "stream", hex);
  if (!st && f->description) st = ms_writer_set_object_attr_string(w, ip, "description", f->description);
  return st;
}

static ms_status set_attrs(ms_images *im, fstate *fs, const ms_table_schema *ts) {
  const ms__image_field *f = fs->f;
  const ms_phantom_params *p = &f->phantom;
  double sp[3];
  ms_phantom_spacing(p, sp);
  ms_writer *w = im->w;
  const char *ip = fs->img_path;
  ms_status st = image_head_attrs(w, fs, ts->name, ms_phantom_kind_name(p->kind));
  if (!st) st = ms_writer_set_object_attr_string(w, ip, "modality", ms_modality_name(p->modality));
  if (!st) st = image_tail_attrs(w, fs, p->modality == MS_MODALITY_CT ? "HU" : "a.u.", sp);
  if (!st && f->write_mask) {
    char *lt = ms_phantom_label_table_json(p);
    if (!lt) return ms__diag_nomem(im->d, NULL, fs->mask_path, "the label table");
    st = ms_writer_set_object_attr_string(w, fs->mask_path, "labels", lt);
    free(lt);
    if (!st) st = ms_writer_set_object_attr_string(w, fs->mask_path, "image", ip);
    if (!st) st = ms_writer_set_object_attr_string(w, fs->mask_path, "table", ts->name);
  }
  return st;
}

static ms_status grid_alloc(ms_images *im, fstate *fs) {
  if (!im->o.grid_path) return MS_OK;
  size_t g = im->o.grid_max;
  fs->grid_img = ms__malloc(g * fs->plane * sizeof(float));
  fs->grid_mask = ms__malloc(g * fs->plane);
  return fs->grid_img && fs->grid_mask ? MS_OK : MS_ERR_NOMEM;
}

/* A learned-model field: (N, C, S, S) float32 in the model's physical unit,
 * an info table (row, key, class), and a UNet (or VAE) planned for one batch. */
static ms_status begin_model(ms_images *im, fstate *fs, const ms_table_schema *ts,
                             uint64_t expected) {
  const ms__image_field *f = fs->f;
  const ms_model_config *c = ms_model_config_of(f->model);
  uint64_t dims[4] = {expected, (uint64_t)c->image_channels, (uint64_t)c->image_size,
                      (uint64_t)c->image_size};
  ms_writer *w = im->w;
  const char *ip = fs->img_path;
  ms_status st = ms_writer_begin_array(w, ip, MS_DT_FLOAT32, 4, dims);
  char hex[24];
  if (!st) st = ms_writer_set_object_attr_string(w, ip, "table", ts->name);
  if (!st && fs->key_col >= 0) st = ms_writer_set_object_attr_string(w, ip, "key", fs->key.name);
  if (!st) st = ms_writer_set_object_attr_string(w, ip, "axes", "N,C,H,W");
  if (!st) st = ms_writer_set_object_attr_string(w, ip, "source", "model");
  if (!st) st = ms_writer_set_object_attr_string(w, ip, "model", f->model_ref ? f->model_ref : "");
  snprintf(hex, sizeof hex, "%016" PRIx64, ms_model_weights_xxh64(f->model));
  if (!st) st = ms_writer_set_object_attr_string(w, ip, "model_weights_xxh64", hex);
  if (!st) st = ms_writer_set_object_attr_string(w, ip, "model_config", ms_model_config_json(f->model));
  int is_vae = c->arch == MS_ARCH_VAE;
  if (is_vae) {
    if (!st)
      st = ms_writer_set_object_attr_string(w, ip, "latent_prior",
                                            c->has_latent_prior ? "learned gaussian" : "standard normal");
  } else {
    if (!st) st = ms_writer_set_object_attr_string(w, ip, "sampler", f->sampler);
    if (!st) st = ms_writer_set_object_attr_int(w, ip, "steps", f->steps);
    if (!st) st = ms_writer_set_object_attr_double(w, ip, "guidance", f->guidance);
    if (!st) st = ms_writer_set_object_attr_double(w, ip, "eta", f->eta);
  }
  if (!st) st = ms_writer_set_object_attr_string(w, ip, "unit", c->intensity_unit);
  if (!st) st = ms_writer_set_object_attr_double(w, ip, "window_center", fs->window.center);
  if (!st) st = ms_writer_set_object_attr_double(w, ip, "window_width", fs->window.width);
  snprintf(hex, sizeof hex, "%016" PRIx64, f->stream);
  if (!st) st = ms_writer_set_object_attr_string(w, ip, "stream", hex);
  if (!st && f->description) st = ms_writer_set_object_attr_string(w, ip, "description", f->description);
  if (st) return st;
  ms_table_schema *s = &fs->info_schema;
  s->name = ms__strdup(fs->info_name);
  s->columns = ms__calloc(4, sizeof *s->columns);
  if (!s->name || !s->columns) return MS_ERR_NOMEM;
  int bad = ms__schema_add_col(s, "row", MS_COL_INT64, NULL, "row of the image's table (and item of the image) in this file");
  if (fs->key_col >= 0) bad |= ms__schema_add_key_col(s, &fs->key, ts->name);
  bad |= ms__schema_add_col(s, "class", MS_COL_INT64, NULL, "class the image was sampled for (-1: unconditional)");
  if (bad) return MS_ERR_NOMEM;
  if ((st = ms_writer_begin_table(w, s, expected))) return st;
  int mb = 8;
  if (is_vae) {
    if ((st = ms_vae_new(&fs->vae, f->model, mb, im->d))) return st;
    fs->dn.max_batch = mb;
    return grid_alloc(im, fs);
  }
  if ((st = ms_unet_new(&fs->unet, f->model, mb, im->d))) return st;
  fs->dn.fn = ms_unet_denoise;
  fs->dn.ctx = fs->unet;
  fs->dn.prediction = c->prediction;
  fs->dn.num_classes = c->num_classes;
  fs->dn.schedule = c->schedule;
  fs->dn.item_floats = fs->pix;
  fs->dn.max_batch = ms_unet_max_batch(fs->unet);
  return grid_alloc(im, fs);
}

static ms_status begin_brain(ms_images *im, fstate *fs, const ms_table_schema *ts, uint64_t expected);

static ms_status s_begin(void *ctx, const ms_table_schema *ts, uint64_t expected) {
  ms_images *im = ctx;
  size_t first = im->d ? im->d->count : 0;
  ms_status st = im->inner.begin_table ? im->inner.begin_table(im->inner.ctx, ts, expected) : MS_OK;
  for (size_t i = 0; i < im->n && st == MS_OK; i++) {
    fstate *fs = &im->fs[i];
    if (strcmp(im->s->tables[fs->f->table].name, ts->name)) continue;
    const ms__table *t = &im->s->tables[fs->f->table];
    fs->began = 1;
    fs->expected = expected;
    fs->key_col = -1;
    if (t->key_field != SIZE_MAX && t->fields[t->key_field].col >= 0) {
      fs->key_col = t->fields[t->key_field].col;
      fs->key = ts->columns[fs->key_col];
    }
    if (im->reports_only) {
      if (fs->f->is_model || fs->f->brain) {
        fs->began = 0;
        continue;
      }
      fs->pimg = ms__calloc((size_t)im->nthreads, sizeof *fs->pimg);
      if (!fs->pimg) st = MS_ERR_NOMEM;
      for (int k = 0; !st && k < im->nthreads; k++) st = ms_phantom_image_init(&fs->pimg[k], &fs->f->phantom, im->d);
      if (st == MS_ERR_NOMEM) field_nomem(im, fs, first, st, "the setup");
      continue;
    }
    if (fs->f->brain) {
      st = begin_brain(im, fs, ts, expected);
      if (st == MS_ERR_NOMEM) field_nomem(im, fs, first, st, "the setup");
      else if (st) ms_diag_add(im->d, st, NULL, 0, 0, fs->img_path, "cannot set up image field \"%s\"", fs->f->name);
      continue;
    }
    if (fs->f->is_model) {
      st = begin_model(im, fs, ts, expected);
      if (st == MS_ERR_NOMEM) field_nomem(im, fs, first, st, "the setup");
      else if (st) ms_diag_add(im->d, st, NULL, 0, 0, fs->img_path, "cannot set up image field \"%s\"", fs->f->name);
      continue;
    }
    const ms_phantom_params *p = &fs->f->phantom;
    uint64_t dims[5];
    int r = 0;
    dims[r++] = expected;
    dims[r++] = 1;
    if (p->depth > 0) dims[r++] = (uint64_t)p->depth;
    dims[r++] = (uint64_t)p->height;
    dims[r++] = (uint64_t)p->width;
    st = ms_writer_begin_array(im->w, fs->img_path, MS_DT_FLOAT32, r, dims);
    if (!st && fs->f->write_mask) st = ms_writer_begin_array(im->w, fs->mask_path, MS_DT_UINT8, r, dims);
    if (!st) st = set_attrs(im, fs, ts);
    if (!st && fs->f->acq) st = ms__acq_begin(&fs->acq, fs->f, im->w, ts->name, expected, im->d);
    if (!st && build_schemas(fs, ts)) st = MS_ERR_NOMEM;
    if (!st && fs->f->write_lesions) st = ms_writer_begin_table(im->w, &fs->les_schema, 0);
    if (!st) st = ms_writer_begin_table(im->w, &fs->info_schema, expected);
    if (!st) {
      fs->pimg = ms__calloc((size_t)im->nthreads, sizeof *fs->pimg);
      if (!fs->pimg) st = MS_ERR_NOMEM;
      for (int k = 0; !st && k < im->nthreads; k++) st = ms_phantom_image_init(&fs->pimg[k], p, im->d);
      if (st) {
        for (int k = 0; fs->pimg && k < im->nthreads; k++) ms_phantom_image_deinit(&fs->pimg[k]);
        free(fs->pimg);
        fs->pimg = NULL;
      }
    }
    if (!st) st = grid_alloc(im, fs);
    if (st == MS_ERR_NOMEM) field_nomem(im, fs, first, st, "the setup");
    else if (st) ms_diag_add(im->d, st, NULL, 0, 0, fs->img_path, "cannot set up image field \"%s\"", fs->f->name);
  }
  return st;
}

/* What every rendered row holds first: its status and its messages. */
typedef struct {
  ms_status st;
  ms_diag d;
} rowhead;

/* Per-row values of one batch. */
typedef struct {
  rowhead h;
  ms_phantom_subject sub;
  double dose;
  double acq[MS__ACQ_PARAM_COUNT]; /* per-row acquisition values (NaN: the field's) */
  int n_les;
  ms_phantom_lesion les[MS_PHANTOM_MAX_LESIONS];
  ms_phantom_subject real;
  char category[4];
  char impression[REPORT_IMP_W + 1];
  char report[REPORT_TEXT_W + 1];
} rowout;

static void row_where(char *buf, size_t cap, const char *table, uint64_t row) {
  snprintf(buf, cap, "%s/%" PRIu64, table, row);
}

/* Text of column col at chunk row r ("" when missing or absent). */
static void cell_text(const ms_chunk *c, int col, size_t r, char *out, size_t cap) {
  out[0] = 0;
  if (col < 0 || (c->cols[col].valid && !c->cols[col].valid[r])) return;
  const ms_column *cc = &c->schema->columns[col];
  const void *v = c->cols[col].data;
  switch (cc->type) {
    case MS_COL_INT64: snprintf(out, cap, "%" PRId64, ((const int64_t *)v)[r]); break;
    case MS_COL_STRING: {
      const char *sv = (const char *)v + r * (cc->str_width + 1);
      snprintf(out, cap, "%.*s", (int)strnlen(sv, cc->str_width), sv);
      break;
    }
    case MS_COL_CATEGORICAL: {
      int32_t k = ((const int32_t *)v)[r];
      if (k >= 0 && (size_t)k < cc->n_categories) snprintf(out, cap, "%s", cc->categories[k]);
      break;
    }
    case MS_COL_DATE: {
      int y, m, dd;
      ms_date_to_ymd(((const int32_t *)v)[r], &y, &m, &dd);
      snprintf(out, cap, "%04d%02d%02d", y, m, dd);
      break;
    }
    default: break;
  }
}

/* DICOM files of one image: the Patient module from the table's FHIR
 * Patient mapping (identifier, gender, birthDate), so that the DICOM patient
 * is the FHIR Patient of the same row. */
static ms_status export_dicom(const ms_images *im, const fstate *fs, const ms_phantom_image *img,
                              const ms_chunk *c, size_t r, uint64_t row, ms_diag *d) {
  const ms__image_field *f = fs->f;
  char pid[128] = "", sex[8] = "", dob[16] = "", pname[160], key[300], dir[4096];
  const ms__fhir *fm = im->s->fhir;
  for (size_t i = 0; fm && c && i < fm->n; i++) {
    const ms__fhir_res *pr = &fm->r[i];
    if (pr->table != f->table || pr->type != MS__FHIR_PATIENT || pr->field_col >= 0) continue;
    for (size_t k = 0; k < pr->n_el; k++) {
      const ms__fhir_el *e = &pr->el[k];
      const char *path = ms__fhir_elem_path(e->elem);
      if (!strcmp(path, "identifier")) cell_text(c, e->col, r, pid, sizeof pid);
      if (!strcmp(path, "birthDate")) cell_text(c, e->col, r, dob, sizeof dob);
      if (!strcmp(path, "gender") && e->col >= 0 && e->codes &&
          !(c->cols[e->col].valid && !c->cols[e->col].valid[r])) {
        int32_t g = ((const int32_t *)c->cols[e->col].data)[r];
        const char *code = g >= 0 && (size_t)g < e->n_codes ? e->codes[g] : NULL;
        snprintf(sex, sizeof sex, "%s", !code ? "" : !strcmp(code, "male") ? "M" : !strcmp(code, "female") ? "F" : "O");
      }
    }
  }
  if (!pid[0]) snprintf(pid, sizeof pid, "%s-%06" PRIu64, im->s->tables[f->table].name, row);
  snprintf(pname, sizeof pname, "%s^%s", im->s->tables[f->table].name, pid);
  snprintf(key, sizeof key, "%s/%s", im->s->tables[f->table].name, f->name);
  snprintf(dir, sizeof dir, "%s/%s", im->o.dicom_dir, f->name);
  ms_dicom_subject subj = {.patient_id = pid, .patient_name = pname, .birth_date = dob[0] ? dob : NULL,
                           .sex = sex[0] ? sex : NULL, .seed = im->o.seed, .key = key, .index = row,
                           .is_model = f->is_model || f->brain, .study_description = f->name,
                           .series_description = f->description ? f->description : f->name};
  /* brain fields: Secondary Capture without SEG (their labels are not the
     phantom label set the SEG writer names) */
  return ms_dicom_write_phantom(dir, &subj, f->is_model || f->brain ? NULL : &f->phantom, img, d);
}

/* Writes the exports of one row under their staged names. */
static ms_status export_files(const ms_images *im, const fstate *fs, const ms_phantom_image *img,
                              uint64_t row, ms_diag *d) {
  const ms__image_field *f = fs->f;
  char path[4200];
  ms_status st = MS_OK;
  if (im->o.png_dir) {
    int H = img->height, W = img->width;
    size_t z = (size_t)(img->depth / 2) * fs->plane;
    uint8_t *g = ms__malloc(fs->plane);
    if (!g) return ms__diag_nomem(d, NULL, NULL, "a PNG export");
    for (size_t k = 0; k < fs->plane; k++) g[k] = ms_window_apply_u8(fs->window, img->image[z + k]);
    export_name(path, sizeof path, im, fs, 1, 0, row, 1);
    st = ms_png_write(path, g, W, H, 1, 8, d);
    if (!st && f->write_mask) {
      export_name(path, sizeof path, im, fs, 1, 1, row, 1);
      st = ms_png_write(path, img->mask + z, W, H, 1, 8, d);
    }
    free(g);
  }
  if (!st && im->o.nifti_dir) {
    ms_nifti_desc n;
    ms_nifti_desc_init(&n);
    n.dim[0] = img->width;
    n.dim[1] = img->height;
    n.dim[2] = img->depth;
    for (int a = 0; a < 3; a++) n.pixdim[a] = img->spacing[a];
    snprintf(n.descrip, sizeof n.descrip, "medsynth %s row %" PRIu64, f->name, row);
    if (f->brain && fs->atlas) { /* MNI-positioned, in the field's orientation */
      ms_brain_origin(fs->atlas, &f->brain->p, n.origin_mm);
      ms_brain_axes(f->brain->p.orientation, n.axes);
    }
    n.dtype = MS_NIFTI_FLOAT32;
    export_name(path, sizeof path, im, fs, 0, 0, row, 1);
    st = ms_nifti_write(path, &n, img->image, d);
    if (!st && f->write_mask) {
      n.dtype = MS_NIFTI_UINT8;
      export_name(path, sizeof path, im, fs, 0, 1, row, 1);
      st = ms_nifti_write(path, &n, img->mask, d);
    }
  }
  return st;
}

static ms_status write_tables(ms_images *im, fstate *fs, const ms_chunk *c, size_t r0,
                              const rowout *ro, size_t m) {
  size_t nl = 0;
  for (size_t i = 0; i < m; i++) nl += (size_t)ro[i].n_les;
  ms_status st = MS_OK;
  ms_chunk *lc = NULL, *ic = NULL;
  size_t kw = fs->key_col >= 0 ? ms_column_value_size(&fs->key) : 0;
  const char *keys = fs->key_col >= 0 ? c->cols[fs->key_col].data : NULL;
  if (fs->f->write_lesions && nl) {
    if ((st = ms_chunk_new(&lc, &fs->les_schema, nl))) return st;
    size_t j = 0;
    for (size_t i = 0; i < m; i++)
      for (int k = 0; k < ro[i].n_les; k++, j++)
        ms_phantom_lesion_set_row(lc, j, (int64_t)(fs->items + i), keys ? keys + (r0 + i) * kw : NULL, k,
                                  &ro[i].les[k]);
    lc->n_rows = nl;
    st = ms_writer_write_chunk(im->w, lc);
    ms_chunk_free(lc);
    if (st) return st;
  }
  if ((st = ms_chunk_new(&ic, &fs->info_schema, m))) return st;
  const ms_phantom_params *pp = &fs->f->phantom;
  for (size_t i = 0; i < m; i++) {
    ms_phantom_info_set_row(ic, i, (int64_t)(fs->items + i), keys ? keys + (r0 + i) * kw : NULL, pp, &ro[i].real,
                            (size_t)ro[i].n_les);
    size_t col = fs->info_schema.n_columns - 4;
    ((double *)ic->cols[col++].data)[i] = pp->modality == MS_MODALITY_CT ? ro[i].dose : NAN;
    snprintf((char *)ic->cols[col++].data + i * (REPORT_CAT_W + 1), REPORT_CAT_W + 1, "%s", ro[i].category);
    snprintf((char *)ic->cols[col++].data + i * (REPORT_IMP_W + 1), REPORT_IMP_W + 1, "%s", ro[i].impression);
    snprintf((char *)ic->cols[col++].data + i * (REPORT_TEXT_W + 1), REPORT_TEXT_W + 1, "%s", ro[i].report);
  }
  ic->first_row = fs->items;
  ic->n_rows = m;
  st = ms_writer_write_chunk(im->w, ic);
  ms_chunk_free(ic);
  return st;
}

/* Evaluates parameter p (spec key `key`) over the chunk into vals (NaN = draw). */
static ms_status eval_img_param(ms_images *im, const fstate *fs, const ms_chunk *c, const ms__img_param *p,
                                const char *key, double *vals, uint8_t *ok) {
  size_t n = c->n_rows;
  if (!p->set) {
    for (size_t i = 0; i < n; i++) vals[i] = NAN;
    return MS_OK;
  }
  if (!p->x) {
    for (size_t i = 0; i < n; i++) vals[i] = p->value;
    return MS_OK;
  }
  size_t nc = c->schema->n_columns;
  ms__expr_col *cols = ms__calloc(nc ? nc : 1, sizeof *cols);
  if (!cols) return MS_ERR_NOMEM;
  for (size_t j = 0; j < nc; j++) {
    cols[j].data = c->cols[j].data;
    cols[j].valid = c->cols[j].valid;
  }
  ms__expr_error err;
  ms_status st = ms__expr_eval(p->x, cols, nc, n, vals, ok, im->xs, &err);
  free(cols);
  const char *tname = c->schema->name;
  if (st != MS_OK) {
    char where[300];
    if (err.row != SIZE_MAX)
      row_where(where, sizeof where, tname, c->first_row + err.row);
    else
      snprintf(where, sizeof where, "%s", p->ptr);
    return ms__expr_error_report(p->x, &err, im->d, where);
  }
  size_t tl;
  const char *text = ms_spec_text(im->s, &tl);
  for (size_t i = 0; i < n; i++) {
    if (!ok[i]) {
      vals[i] = NAN; /* missing: drawn as when the key is absent */
      continue;
    }
    double v = vals[i];
    if (!(v >= p->lo && v <= p->hi) || (p->integer && v != floor(v))) {
      char where[300];
      row_where(where, sizeof where, tname, c->first_row + i);
      int line = 0, col = 0;
      ms__jsonloc_pointer_linecol(text, tl, p->ptr, 0, &line, &col);
      return ms_diag_add(im->d, MS_ERR_DATA, im->s->file, line, col, where,
                         "image \"%s\": %s = %g for this row; it must be %s in %g..%g (%s)",
                         fs->f->name, key, v,
                         p->integer ? "a whole number" : "a number", p->lo, p->hi, p->ptr);
    }
  }
  return MS_OK;
}

/* Evaluates parameter k over the chunk into vals (NaN = draw). */
static ms_status eval_param(ms_images *im, const fstate *fs, const ms_chunk *c, int k, double *vals,
                            uint8_t *ok) {
  return eval_img_param(im, fs, c, &fs->f->p[k], ms__img_param_key((ms__img_param_id)k), vals, ok);
}

/* The per-row acquisition values of chunk c (avals[k] stays NULL without
 * an acquisition); released by the caller. */
static ms_status eval_acq(ms_images *im, const fstate *fs, const ms_chunk *c, double **avals, uint8_t *ok) {
  ms_status st = MS_OK;
  for (int k = 0; fs->acq && k < MS__ACQ_PARAM_COUNT && !st; k++) {
    if (!(avals[k] = ms__malloc(c->n_rows * sizeof(double)))) st = MS_ERR_NOMEM;
    if (!st) st = eval_img_param(im, fs, c, &fs->f->acq->p[k], ms__acq_param_key(k), avals[k], ok);
  }
  return st;
}

static void reports_clear(fstate *fs) {
  for (size_t i = 0; i < fs->rep_n; i++) {
    free(fs->rep_text ? fs->rep_text[i] : NULL);
    free(fs->rep_imp ? fs->rep_imp[i] : NULL);
  }
  free(fs->rep_text);
  free(fs->rep_imp);
  fs->rep_text = fs->rep_imp = NULL;
  fs->rep_n = 0;
}

/* One batch of renders (core/pool.h): item i on the buffers of the thread
 * that takes it; an image depends only on (seed, row). */
typedef struct {
  const ms_images *im;
  const fstate *fs;
  void *ro;             /* the kind's row records, each starting with a rowhead */
  double *const *vals;  /* [param][chunk row] */
  double *const *avals; /* [acquisition param][chunk row]; NULL rows without acquisition */
  float *ibuf;
  uint8_t *mbuf, *abuf; /* abuf: AAL labels, NULL without the AAL mask */
  uint64_t pseed, row0;
  const ms_chunk *c; /* the rows' chunk (DICOM Patient module) */
  size_t b0;         /* chunk row of item 0 */
} batch_job;

static void render_task(void *ctx, size_t i, size_t worker) {
  const batch_job *j = ctx;
  const fstate *fs = j->fs;
  const ms_images *im = j->im;
  rowout *o = (rowout *)j->ro + i;
  size_t r = j->b0 + i;
  double *const *vals = j->vals;
  ms_phantom_subject_init(&o->sub);
  if (!isnan(vals[MS__IMG_LESIONS][r])) o->sub.n_lesions = (int)vals[MS__IMG_LESIONS][r];
  o->sub.body_scale = vals[MS__IMG_BODY_SCALE][r];
  o->sub.ventricle_scale = vals[MS__IMG_VENTRICLE_SCALE][r];
  o->sub.age_years = vals[MS__IMG_AGE][r];
  o->sub.fat_mm = vals[MS__IMG_FAT_MM][r];
  o->dose = isnan(vals[MS__IMG_DOSE][r]) ? fs->f->phantom.dose : vals[MS__IMG_DOSE][r];
  for (int k = 0; k < MS__ACQ_PARAM_COUNT; k++) o->acq[k] = j->avals[k] ? j->avals[k][r] : NAN;
  if (fs->acq) o->dose = ms__acq_dose(fs->acq, o->acq);
  ms_phantom_image *img = &fs->pimg[worker];
  ms_phantom_params q = fs->f->phantom;
  q.dose = o->dose;
  uint64_t row = j->row0 + i;
  o->h.st = ms_phantom_generate(img, &q, &o->sub, j->pseed, row, &o->h.d);
  if (!o->h.st && fs->acq) o->h.st = ms__acq_row(fs->acq, i, img->image, o->acq, j->pseed, row, &o->h.d);
  if (o->h.st) return;
  memcpy(j->ibuf + i * fs->pix, img->image, fs->pix * sizeof(float));
  memcpy(j->mbuf + i * fs->pix, img->mask, fs->pix);
  o->n_les = (int)img->n_lesions;
  memcpy(o->les, img->lesions, img->n_lesions * sizeof *o->les);
  o->real = img->subject;
  const ms__image_field *f = fs->f;
  char key[300];
  snprintf(key, sizeof key, "%s/%s", im->s->tables[f->table].name, f->name);
  int organ = f->phantom.lesions.organ;
  if (img->n_lesions) organ = img->lesions[0].organ;
  if (!organ)
    organ = f->phantom.kind == MS_PHANTOM_HEAD ? MS_LABEL_WHITE_MATTER
            : f->phantom.kind == MS_PHANTOM_CHEST ? MS_LABEL_LUNG
                                                  : MS_LABEL_LIVER;
  ms__report_in rin = {.key = key, .seed = im->o.seed, .row = row, .kind = f->phantom.kind,
                       .modality = f->phantom.modality, .organ = organ, .width = img->width,
                       .height = img->height, .depth = img->depth, .n_lesions = img->n_lesions,
                       .lesions = img->lesions};
  ms__report_compose(&rin, o->report, sizeof o->report, o->impression, sizeof o->impression, o->category);
  if (im->o.png_dir || im->o.nifti_dir) o->h.st = export_files(im, fs, img, row, &o->h.d);
  if (!o->h.st && im->o.dicom_dir) o->h.st = export_dicom(im, fs, img, j->c, j->b0 + i, row, &o->h.d);
}

/* Items per rendering batch: at most 256 MiB (or the set budget) of image
 * + mask, at least `least`, at most 256 and n. */
static size_t batch_items(const ms_images *im, const fstate *fs, size_t n, size_t least) {
  size_t budget = im->o.batch_bytes ? im->o.batch_bytes : (size_t)256 << 20;
  size_t B = budget / (fs->pix * (sizeof(float) + 1) + (fs->acq ? ms__acq_row_bytes(fs->acq) : 0));
  if (B < least) B = least;
  if (B > 256) B = 256;
  return B > n ? n : B;
}

/* Image and mask buffers of B items. */
static ms_status batch_alloc(const fstate *fs, size_t B, float **ibuf, uint8_t **mbuf) {
  *ibuf = ms__malloc(B * fs->pix * sizeof(float));
  *mbuf = ms__malloc(B * fs->pix);
  return *ibuf && *mbuf ? MS_OK : MS_ERR_NOMEM;
}

/* Reports a failed row (its messages, or its status) named "table/row". */
static ms_status row_failed(ms_images *im, const fstate *fs, const ms_chunk *c, uint64_t row, ms_status st,
                            const ms_diag *rd) {
  char where[300];
  row_where(where, sizeof where, c->schema->name, row);
  for (size_t e = 0; e < rd->count; e++)
    ms_diag_add(im->d, st, NULL, 0, 0, where, "image \"%s\": %s", fs->f->name, rd->entries[e].message);
  if (!rd->count) ms_diag_add(im->d, st, NULL, 0, 0, where, "image \"%s\": %s", fs->f->name, ms_strerror(st));
  return st;
}

/* Writes m rendered items (and masks); keeps the first ones' middle planes
 * for the contact sheet. */
static ms_status write_batch(ms_images *im, fstate *fs, size_t m, const float *ibuf, const uint8_t *mbuf) {
  ms_status st = ms_writer_write_items(im->w, fs->img_path, fs->items, m, ibuf);
  if (!st && fs->acq) st = ms__acq_write(fs->acq, im->w, fs->items, m);
  if (!st && fs->f->write_mask) st = ms_writer_write_items(im->w, fs->mask_path, fs->items, m, mbuf);
  if (st) return st;
  for (size_t i = 0; fs->grid_img && i < m && fs->grid_n < im->o.grid_max; i++, fs->grid_n++) {
    size_t z = (size_t)(fs->depth / 2) * fs->plane;
    memcpy(fs->grid_img + fs->grid_n * fs->plane, ibuf + i * fs->pix + z, fs->plane * sizeof(float));
    memcpy(fs->grid_mask + fs->grid_n * fs->plane, mbuf + i * fs->pix + z, fs->plane);
  }
  return MS_OK;
}

static ms_status render_phantom_rows(ms_images *im, fstate *fs, const ms_chunk *c);

static ms_status render_chunk(ms_images *im, fstate *fs, const ms_chunk *c) {
  size_t n = c->n_rows;
  if (!n) return MS_OK;
  size_t first = im->d ? im->d->count : 0;
  if (fs->items == 0) fs->first_row = fs->exp_hi = c->first_row;
  if (im->reports_only) {
    reports_clear(fs);
    fs->rep_text = ms__calloc(n, sizeof *fs->rep_text);
    fs->rep_imp = ms__calloc(n, sizeof *fs->rep_imp);
    if (!fs->rep_text || !fs->rep_imp) return field_nomem(im, fs, first, MS_ERR_NOMEM, "the reports");
    fs->rep_n = n;
    fs->rep_first = c->first_row;
  }
  return render_phantom_rows(im, fs, c);
}

/* A phantom batch: its reports only, or its images, masks, lesions and
 * info rows. */
static ms_status write_phantom_rows(ms_images *im, fstate *fs, const batch_job *j, size_t m) {
  const rowout *ro = j->ro;
  if (im->reports_only) {
    for (size_t i = 0; i < m; i++) {
      fs->rep_text[j->b0 + i] = ms__strdup(ro[i].report);
      fs->rep_imp[j->b0 + i] = ms__strdup(ro[i].impression);
      if (!fs->rep_text[j->b0 + i] || !fs->rep_imp[j->b0 + i]) return MS_ERR_NOMEM;
    }
    return MS_OK;
  }
  ms_status st = write_batch(im, fs, m, j->ibuf, j->mbuf);
  return st ? st : write_tables(im, fs, j->c, j->b0, ro, m);
}

/* Item i of info chunk ic: its item number and the key of chunk row r;
 * returns the column after them. */
static int info_head(const fstate *fs, const ms_chunk *c, ms_chunk *ic, size_t i, size_t r) {
  int col = 0;
  ((int64_t *)ic->cols[col++].data)[i] = (int64_t)(fs->items + i);
  if (fs->key_col >= 0) {
    size_t kw = ms_column_value_size(&fs->key);
    memcpy((char *)ic->cols[col++].data + i * kw, (const char *)c->cols[fs->key_col].data + r * kw, kw);
  }
  return col;
}

/* Learned-model rows: batches of consecutive rows sampled together; image r
 * uses the keyed noise (sampler, or VAE prior) with seed xxh64(seed, stream) and image
 * index r, so it does not depend on the batch it falls in. */
static ms_status render_model_chunk(ms_images *im, fstate *fs, const ms_chunk *c) {
  const ms__image_field *f = fs->f;
  size_t n = c->n_rows;
  if (!n) return MS_OK;
  size_t first = im->d ? im->d->count : 0;
  if (fs->items == 0) fs->first_row = fs->exp_hi = c->first_row;
  const ms_model_config *cfg = ms_model_config_of(f->model);
  double *cls = ms__malloc(n * sizeof *cls);
  uint8_t *ok = ms__malloc(n);
  size_t B = (size_t)fs->dn.max_batch;
  float *x = ms__malloc(B * fs->pix * sizeof(float));
  int32_t *y = ms__malloc(B * sizeof *y);
  ms_status st = cls && ok && x && y ? MS_OK : MS_ERR_NOMEM;
  if (!st) st = eval_param(im, fs, c, MS__IMG_CLASS, cls, ok);
  for (size_t i = 0; !st && f->p[MS__IMG_CLASS].set && i < n; i++)
    if (isnan(cls[i])) {
      char where[300];
      row_where(where, sizeof where, c->schema->name, c->first_row + i);
      st = ms_diag_add(im->d, MS_ERR_DATA, NULL, 0, 0, where, "image \"%s\": class is missing for this row",
                       f->name);
    }
  ms_sample_params sp;
  ms_sample_params_init(&sp);
  sp.sampler = ms_sampler_from_name(f->sampler);
  sp.steps = f->steps;
  sp.eta = f->eta;
  sp.guidance = f->guidance;
  sp.seed = ms_rng_stream_sub(im->o.seed, f->stream);
  for (size_t b0 = 0; b0 < n && !st; b0 += B) {
    size_t m = n - b0 < B ? n - b0 : B;
    for (size_t i = 0; i < m; i++) y[i] = f->p[MS__IMG_CLASS].set ? (int32_t)cls[b0 + i] : -1;
    const int32_t *ym = f->p[MS__IMG_CLASS].set ? y : NULL;
    st = fs->vae ? ms_vae_sample(fs->vae, x, sp.seed, c->first_row + b0, ym, (int)m, im->d)
                 : ms_sample(&sp, &fs->dn, x, c->first_row + b0, ym, (int)m, im->d);
    if (st) {
      char where[300];
      row_where(where, sizeof where, c->schema->name, c->first_row + b0);
      ms_diag_add(im->d, st, NULL, 0, 0, where, "image \"%s\": sampling failed", f->name);
      break;
    }
    float sc = (float)cfg->intensity_scale, off = (float)cfg->intensity_offset;
    for (size_t k = 0; k < m * fs->pix; k++) x[k] = x[k] * sc + off;
    st = ms_writer_write_items(im->w, fs->img_path, fs->items, m, x);
    ms_chunk *ic = NULL;
    if (!st) st = ms_chunk_new(&ic, &fs->info_schema, m);
    if (!st) {
      for (size_t i = 0; i < m; i++) {
        int col = info_head(fs, c, ic, i, b0 + i);
        ((int64_t *)ic->cols[col++].data)[i] = y[i];
      }
      ic->n_rows = m;
      st = ms_writer_write_chunk(im->w, ic);
    }
    ms_chunk_free(ic);
    if (!st) fs->exp_hi = c->first_row + b0 + m;
    for (size_t i = 0; !st && (im->o.png_dir || im->o.nifti_dir || im->o.dicom_dir) && i < m; i++) {
      ms_phantom_image view;
      memset(&view, 0, sizeof view);
      view.width = view.height = (int)fs->S;
      view.depth = 1;
      view.spacing[0] = view.spacing[1] = view.spacing[2] = 1;
      view.image = x + i * fs->pix; /* channel 0 */
      if (im->o.png_dir || im->o.nifti_dir) st = export_files(im, fs, &view, c->first_row + b0 + i, im->d);
      if (!st && im->o.dicom_dir) st = export_dicom(im, fs, &view, c, b0 + i, c->first_row + b0 + i, im->d);
    }
    for (size_t i = 0; !st && fs->grid_img && i < m && fs->grid_n < im->o.grid_max; i++, fs->grid_n++)
      memcpy(fs->grid_img + fs->grid_n * fs->plane, x + i * fs->pix, fs->plane * sizeof(float));
    if (!st) fs->items += m;
  }
  free(cls);
  free(ok);
  free(x);
  free(y);
  return field_nomem(im, fs, first, st, "the sampling buffers");
}

/* ---- brain fields (records/images_brain.h) ------------------------------------------------ */

/* Info columns of a brain field after row and key. */
enum { BI_MODALITY, BI_AGE, BI_HEAD, BI_JAC, BI_LOBE, BI_TDIAM, BI_WML, BI_STROKE, BI_VOL0 };

/* The attributes of a brain mask: its label table, image and table. */
static ms_status brain_mask_attrs(ms_writer *w, const fstate *fs, const char *path, ms_brain_labelset set,
                                  const char *table) {
  char *lt = ms_brain_label_table_json(fs->atlas, set);
  if (!lt) return MS_ERR_NOMEM;
  ms_status st = ms_writer_set_object_attr_string(w, path, "labels", lt);
  free(lt);
  if (!st) st = ms_writer_set_object_attr_string(w, path, "image", fs->img_path);
  if (!st) st = ms_writer_set_object_attr_string(w, path, "table", table);
  return st;
}

/* /images/<name>, /masks/<name> (tissue labels) and /masks/<name>_aal (AAL
 * regions), each mask with its label table, /tables/<name>_info with the realised subject and every label's volume,
 * the atlas and one brain buffer per thread. */
static ms_status begin_brain(ms_images *im, fstate *fs, const ms_table_schema *ts, uint64_t expected) {
  const ms__image_field *f = fs->f;
  const ms_brain_params *bp = &f->brain->p;
  ms_status st = ms_brain_atlas_load(&fs->atlas, f->brain->atlas_dir, im->d);
  if (st) return st;
  uint64_t dims[5];
  int r = 0;
  dims[r++] = expected;
  dims[r++] = 1;
  if (f->phantom.depth > 0) dims[r++] = (uint64_t)bp->dims[2];
  dims[r++] = (uint64_t)bp->dims[1];
  dims[r++] = (uint64_t)bp->dims[0];
  ms_writer *w = im->w;
  const char *ip = fs->img_path;
  st = ms_writer_begin_array(w, ip, MS_DT_FLOAT32, r, dims);
  if (!st && f->write_mask) st = ms_writer_begin_array(w, fs->mask_path, MS_DT_UINT8, r, dims);
  if (!st && f->brain->write_aal) st = ms_writer_begin_array(w, fs->aal_path, MS_DT_UINT8, r, dims);
  if (!st) st = image_head_attrs(w, fs, ts->name, "brain");
  if (!st && !f->brain->q[MS__BRAIN_MODALITY].x)
    st = ms_writer_set_object_attr_string(w, ip, "modality", ms_brain_contrast_name(bp->contrast));
  if (!st) st = ms_writer_set_object_attr_string(w, ip, "intensities", ms_brain_intensity_name(bp->intensity));
  if (!st) st = ms_writer_set_object_attr_string(w, ip, "orientation", ms_brain_orientation_name(bp->orientation));
  if (!st) st = image_tail_attrs(w, fs, bp->contrast == MS_BRAIN_CT ? "HU" : "a.u.", bp->spacing_mm);
  if (!st && f->write_mask) st = brain_mask_attrs(w, fs, fs->mask_path, MS_BRAIN_LABELS_TISSUE, ts->name);
  if (!st && f->brain->write_aal) st = brain_mask_attrs(w, fs, fs->aal_path, MS_BRAIN_LABELS_AAL, ts->name);
  if (!st && f->acq) st = ms__acq_begin(&fs->acq, f, w, ts->name, expected, im->d);
  if (st) return st;
  ms_table_schema *s = &fs->info_schema;
  s->name = ms__strdup(fs->info_name);
  s->columns = ms__calloc(BI_VOL0 + 2 + MS_BRAIN_TISSUE_COUNT, sizeof *s->columns);
  if (!s->name || !s->columns) return MS_ERR_NOMEM;
  int bad = ms__schema_add_col(s, "row", MS_COL_INT64, NULL, "row of the image's table (and item of the image) in this file");
  if (fs->key_col >= 0) bad |= ms__schema_add_key_col(s, &fs->key, ts->name);
  bad |= ms__schema_add_col(s, "modality", MS_COL_STRING, NULL, "contrast of the image (t1, t2, flair, pd, ct)");
  s->columns[s->n_columns - 1].str_width = 5;
  bad |= ms__schema_add_col(s, "age_years", MS_COL_FLOAT64, "years", "realised age (ventricles, cortical thinning)");
  bad |= ms__schema_add_col(s, "head_scale", MS_COL_FLOAT64, NULL, "realised head size factor");
  bad |= ms__schema_add_col(s, "min_jacobian", MS_COL_FLOAT64, NULL, "smallest Jacobian determinant of the deformation");
  bad |= ms__schema_add_col(s, "tumour_lobe", MS_COL_STRING, NULL, "lobe of the tumour; empty without one");
  s->columns[s->n_columns - 1].str_width = 9;
  bad |= ms__schema_add_col(s, "tumour_diameter_mm", MS_COL_FLOAT64, "mm", "enhancing rim diameter; 0 without a tumour");
  bad |= ms__schema_add_col(s, "wm_lesions", MS_COL_INT64, NULL, "white-matter lesions placed");
  bad |= ms__schema_add_col(s, "stroke", MS_COL_STRING, NULL, "territory and side of the stroke (mca_left ...); empty without one");
  s->columns[s->n_columns - 1].str_width = 9;
  for (int l = 0; l < MS_BRAIN_TISSUE_COUNT; l++) {
    char nm[64];
    snprintf(nm, sizeof nm, "volume_%s_mm3", ms_brain_tissue_name(l));
    bad |= ms__schema_add_col(s, nm, MS_COL_FLOAT64, "mm3", l ? NULL : "voxels of the label in the mask times the voxel volume");
  }
  if (bad) return MS_ERR_NOMEM;
  if ((st = ms_writer_begin_table(w, s, expected))) return st;
  fs->bimg = ms__calloc((size_t)im->nthreads, sizeof *fs->bimg);
  if (!fs->bimg) return MS_ERR_NOMEM;
  for (int k = 0; !st && k < im->nthreads; k++) st = ms_brain_image_init(&fs->bimg[k], bp, im->d);
  return st ? st : grid_alloc(im, fs);
}

/* What one brain row realised. */
typedef struct {
  rowhead h;
  ms_brain_contrast contrast;
  double age, head_scale, min_jac, tumour_mm;
  ms_brain_lobe lobe;
  int wm_lesions;
  char stroke[10];
  double vol[MS_BRAIN_TISSUE_COUNT];
} brainout;

static void brain_task(void *ctx, size_t i, size_t worker) {
  const batch_job *j = ctx;
  const fstate *fs = j->fs;
  brainout *o = (brainout *)j->ro + i;
  ms_brain_image *img = &fs->bimg[worker];
  double v[MS__BRAIN_PARAM_COUNT];
  for (int k = 0; k < MS__BRAIN_PARAM_COUNT; k++) v[k] = j->vals[k][j->b0 + i];
  ms_brain_params p;
  ms__brain_row_params(fs->f->brain, v, &p);
  uint64_t row = j->row0 + i;
  o->h.st = ms_brain_generate(img, fs->atlas, &p, j->pseed, row, &o->h.d);
  if (!o->h.st && fs->acq) { /* the noise-free slice is the truth; the reconstruction replaces it */
    double av[MS__ACQ_PARAM_COUNT];
    for (int k = 0; k < MS__ACQ_PARAM_COUNT; k++) av[k] = j->avals[k] ? j->avals[k][j->b0 + i] : NAN;
    o->h.st = ms__acq_row(fs->acq, i, img->image, av, j->pseed, row, &o->h.d);
  }
  if (o->h.st) return;
  memcpy(j->ibuf + i * fs->pix, img->image, fs->pix * sizeof(float));
  memcpy(j->mbuf + i * fs->pix, img->labels, fs->pix);
  if (j->abuf) memcpy(j->abuf + i * fs->pix, img->aal, fs->pix);
  o->contrast = p.contrast;
  o->age = img->age_years;
  o->head_scale = img->head_scale;
  o->min_jac = img->min_jacobian;
  o->lobe = p.tumour ? img->tumour_lobe : MS_BRAIN_LOBE_ANY;
  o->tumour_mm = img->tumour_diameter_mm;
  o->wm_lesions = p.wm_lesions;
  o->stroke[0] = 0;
  if (img->stroke_side >= 0)
    snprintf(o->stroke, sizeof o->stroke, "%s_%s", ms_brain_territory_name(p.stroke), img->stroke_side ? "right" : "left");
  memcpy(o->vol, img->volume_mm3, sizeof o->vol);
  if (!j->im->o.png_dir && !j->im->o.nifti_dir && !j->im->o.dicom_dir) return;
  ms_phantom_image view;
  memset(&view, 0, sizeof view);
  view.width = img->dims[0];
  view.height = img->dims[1];
  view.depth = img->dims[2];
  for (int a = 0; a < 3; a++) view.spacing[a] = img->spacing[a];
  view.image = img->image;
  view.mask = img->labels;
  if (j->im->o.png_dir || j->im->o.nifti_dir) o->h.st = export_files(j->im, fs, &view, row, &o->h.d);
  if (!o->h.st && j->im->o.dicom_dir) o->h.st = export_dicom(j->im, fs, &view, j->c, j->b0 + i, row, &o->h.d);
}

static ms_status write_brain_info(ms_images *im, fstate *fs, const ms_chunk *c, size_t r0, const brainout *ro,
                                  size_t m) {
  ms_chunk *ic = NULL;
  ms_status st = ms_chunk_new(&ic, &fs->info_schema, m);
  if (st) return st;
  for (size_t i = 0; i < m; i++) {
    int col = info_head(fs, c, ic, i, r0 + i);
    snprintf((char *)ic->cols[col++].data + i * 6, 6, "%s", ms_brain_contrast_name(ro[i].contrast));
    ((double *)ic->cols[col++].data)[i] = ro[i].age;
    ((double *)ic->cols[col++].data)[i] = ro[i].head_scale;
    ((double *)ic->cols[col++].data)[i] = ro[i].min_jac;
    snprintf((char *)ic->cols[col++].data + i * 10, 10, "%s",
             ro[i].lobe == MS_BRAIN_LOBE_ANY ? "" : ms_brain_lobe_name(ro[i].lobe));
    ((double *)ic->cols[col++].data)[i] = ro[i].tumour_mm;
    ((int64_t *)ic->cols[col++].data)[i] = ro[i].wm_lesions;
    snprintf((char *)ic->cols[col++].data + i * 10, 10, "%s", ro[i].stroke);
    for (int l = 0; l < MS_BRAIN_TISSUE_COUNT; l++) ((double *)ic->cols[col++].data)[i] = ro[i].vol[l];
  }
  ic->first_row = fs->items;
  ic->n_rows = m;
  st = ms_writer_write_chunk(im->w, ic);
  ms_chunk_free(ic);
  return st;
}

/* A brain batch: its images, labels, AAL labels and info rows. */
static ms_status write_brain_rows(ms_images *im, fstate *fs, const batch_job *j, size_t m) {
  ms_status st = write_batch(im, fs, m, j->ibuf, j->mbuf);
  if (!st && j->abuf) st = ms_writer_write_items(im->w, fs->aal_path, fs->items, m, j->abuf);
  if (!st) st = write_brain_info(im, fs, j->c, j->b0, j->ro, m);
  return st;
}

static const ms__img_param *phantom_param(const fstate *fs, int k, const char **key) {
  *key = ms__img_param_key((ms__img_param_id)k);
  return &fs->f->p[k];
}

static const ms__img_param *brain_param(const fstate *fs, int k, const char **key) {
  *key = ms__brain_param_key(k);
  return &fs->f->brain->q[k];
}

/* A kind of rendered field: its per-row parameters, its row record (which
 * starts with a rowhead), the least batch, and how a batch is rendered
 * (one row per task) and written. */
struct row_kind {
  int n_params;
  const ms__img_param *(*param)(const fstate *fs, int k, const char **key);
  size_t row_size;
  int batch_per_thread; /* at least one item per thread in a batch */
  void (*task)(void *ctx, size_t i, size_t worker);
  ms_status (*write)(ms_images *im, fstate *fs, const batch_job *j, size_t m);
};

/* Phantom rows: row r is ms_phantom_generate(seed xxh64(seed, stream),
 * index r) with the subject of its parameters. */
static const struct row_kind k_phantom_rows = {MS__IMG_PARAM_COUNT, phantom_param, sizeof(rowout), 0,
                                               render_task, write_phantom_rows};
/* Brain rows: one subject per thread at a time; row r is
 * ms_brain_generate(seed xxh64(seed, stream), index r). */
static const struct row_kind k_brain_rows = {MS__BRAIN_PARAM_COUNT, brain_param, sizeof(brainout), 1,
                                             brain_task, write_brain_rows};

#define ROW_PARAMS_MAX \
  ((int)MS__IMG_PARAM_COUNT > (int)MS__BRAIN_PARAM_COUNT ? (int)MS__IMG_PARAM_COUNT : (int)MS__BRAIN_PARAM_COUNT)

static rowhead *row_at(void *ro, const struct row_kind *k, size_t i) {
  return (rowhead *)(void *)((char *)ro + i * k->row_size);
}

/* The rows of chunk c for a phantom or brain field: their parameters
 * evaluated, then batches rendered on the pool and written in row order. */
static ms_status render_rows(ms_images *im, fstate *fs, const ms_chunk *c, const struct row_kind *k) {
  const ms__image_field *f = fs->f;
  size_t n = c->n_rows;
  if (!n) return MS_OK;
  size_t first = im->d ? im->d->count : 0;
  if (fs->items == 0) fs->first_row = fs->exp_hi = c->first_row;
  if (fs->items + n > fs->expected)
    return ms_diag_add(im->d, MS_ERR_INTERNAL, NULL, 0, 0, fs->img_path,
                       "more rows than announced (%" PRIu64 ")", fs->expected);
  double *vals[ROW_PARAMS_MAX] = {0};
  uint8_t *ok = ms__malloc(n);
  ms_status st = ok ? MS_OK : MS_ERR_NOMEM;
  for (int p = 0; p < k->n_params && !st; p++) {
    const char *key;
    const ms__img_param *q = k->param(fs, p, &key);
    if (!(vals[p] = ms__malloc(n * sizeof(double)))) st = MS_ERR_NOMEM;
    if (!st) st = eval_img_param(im, fs, c, q, key, vals[p], ok);
  }
  double *avals[MS__ACQ_PARAM_COUNT] = {0};
  if (!st) st = eval_acq(im, fs, c, avals, ok);
  size_t B = batch_items(im, fs, n, k->batch_per_thread ? (size_t)im->nthreads : 1);
  float *ibuf = NULL;
  uint8_t *mbuf = NULL, *abuf = NULL;
  void *ro = NULL;
  if (!st) st = batch_alloc(fs, B, &ibuf, &mbuf);
  if (!st && f->brain && f->brain->write_aal && !(abuf = ms__malloc(B * fs->pix))) st = MS_ERR_NOMEM;
  if (!st && !(ro = ms__calloc(B, k->row_size))) st = MS_ERR_NOMEM;
  if (!st && fs->acq) st = ms__acq_reserve(fs->acq, B, im->d);
  for (size_t i = 0; ro && i < B; i++) ms_diag_init(&row_at(ro, k, i)->d);
  uint64_t pseed = ms_rng_stream_sub(im->o.seed, f->stream);
  for (size_t b0 = 0; b0 < n && !st; b0 += B) {
    size_t m = n - b0 < B ? n - b0 : B;
    for (size_t i = 0; i < m; i++) {
      ms_diag_clear(&row_at(ro, k, i)->d);
      row_at(ro, k, i)->st = MS_OK;
    }
    fs->exp_hi = c->first_row + b0 + m;
    batch_job job = {im, fs, ro, vals, avals, ibuf, mbuf, abuf, pseed, c->first_row + b0, c, b0};
    ms__parallel(m, (size_t)im->nthreads, k->task, &job);
    for (size_t i = 0; i < m && !st; i++) {
      const rowhead *h = row_at(ro, k, i);
      if (h->st) st = row_failed(im, fs, c, c->first_row + b0 + i, h->st, &h->d);
    }
    if (st) break;
    st = k->write(im, fs, &job, m);
    if (st) {
      if (st != MS_ERR_NOMEM) ms_diag_add(im->d, st, NULL, 0, 0, fs->img_path, "cannot write images of \"%s\"", f->name);
      break;
    }
    fs->items += m;
  }
  for (size_t i = 0; ro && i < B; i++) ms_diag_deinit(&row_at(ro, k, i)->d);
  free(ro);
  free(ibuf);
  free(mbuf);
  free(abuf);
  free(ok);
  for (int p = 0; p < k->n_params; p++) free(vals[p]);
  for (int p = 0; p < MS__ACQ_PARAM_COUNT; p++) free(avals[p]);
  return field_nomem(im, fs, first, st, "the rendering buffers");
}

static ms_status render_phantom_rows(ms_images *im, fstate *fs, const ms_chunk *c) {
  return render_rows(im, fs, c, &k_phantom_rows);
}

static ms_status s_chunk(void *ctx, const ms_chunk *c) {
  ms_images *im = ctx;
  ms_status st = im->inner.write_chunk ? im->inner.write_chunk(im->inner.ctx, c) : MS_OK;
  for (size_t i = 0; i < im->n && st == MS_OK; i++)
    if (im->fs[i].began && !strcmp(im->s->tables[im->fs[i].f->table].name, c->schema->name))
      st = im->fs[i].f->is_model ? render_model_chunk(im, &im->fs[i], c)
           : im->fs[i].f->brain  ? render_rows(im, &im->fs[i], c, &k_brain_rows)
                                 : render_chunk(im, &im->fs[i], c);
  return st;
}

static ms_status s_end(void *ctx, const char *name) {
  ms_images *im = ctx;
  ms_status st = im->inner.end_table ? im->inner.end_table(im->inner.ctx, name) : MS_OK;
  for (size_t i = 0; i < im->n && st == MS_OK; i++) {
    fstate *fs = &im->fs[i];
    if (!fs->began || strcmp(im->s->tables[fs->f->table].name, name) || im->reports_only) continue;
    if (fs->f->write_lesions) st = ms_writer_end_table(im->w, fs->les_name);
    if (!st) st = ms_writer_end_table(im->w, fs->info_name);
    if (!st) st = ms_writer_set_object_attr_int(im->w, fs->img_path, "first_row", (int64_t)fs->first_row);
    if (!st) st = ms_writer_set_object_attr_int(im->w, fs->img_path, "seed", (int64_t)im->o.seed);
  }
  return st;
}

/* ---- public ------------------------------------------------------------------------------ */

ms_status ms_images_new(ms_images **out, const ms_spec *spec, ms_writer *w,
                        const ms_images_params *o, ms_diag *d) {
  *out = NULL;
  ms_images *im = ms__calloc(1, sizeof *im);
  if (!im) return ms__diag_nomem(d, NULL, NULL, "the image fields");
  im->s = spec;
  im->w = w;
  im->d = d;
  if (o)
    im->o = *o;
  else
    ms_images_params_init(&im->o);
  if (!im->o.grid_max) im->o.grid_max = 16;
  im->nthreads = im->o.threads > 0 ? im->o.threads : omp_get_max_threads();
  if (im->nthreads > 256) im->nthreads = 256;
  if (w) im->inner = ms_writer_sink(w);
  im->n = ms_spec_n_images(spec);
  im->fs = ms__calloc(im->n ? im->n : 1, sizeof *im->fs);
  im->xs = ms__expr_scratch_new();
  if (!im->fs || !im->xs) {
    ms_images_free(im);
    return ms__diag_nomem(d, NULL, NULL, "the image fields");
  }
  for (size_t i = 0; i < im->n; i++) {
    fstate *fs = &im->fs[i];
    fs->f = &spec->images->f[i];
    snprintf(fs->img_path, sizeof fs->img_path, "/images/%s", fs->f->name);
    snprintf(fs->mask_path, sizeof fs->mask_path, "/masks/%s", fs->f->name);
    snprintf(fs->aal_path, sizeof fs->aal_path, "/masks/%s_aal", fs->f->name);
    snprintf(fs->les_name, sizeof fs->les_name, "%s_lesions", fs->f->name);
    snprintf(fs->info_name, sizeof fs->info_name, "%s_info", fs->f->name);
    fs->key_col = -1;
    if (fs->f->is_model) {
      const ms_model_config *c = ms_model_config_of(fs->f->model);
      fs->C = c->image_channels;
      fs->S = (size_t)c->image_size;
      fs->depth = 1;
      fs->plane = fs->S * fs->S;
      fs->pix = fs->plane * (size_t)fs->C;
      /* model values span about -1..1 before the intensity mapping */
      fs->window.center = c->intensity_offset;
      fs->window.width = 2 * fabs(c->intensity_scale) > 0 ? 2 * fabs(c->intensity_scale) : 1;
      continue;
    }
    const ms_phantom_params *p = &fs->f->phantom;
    fs->C = 1;
    fs->window = fs->f->window;
    fs->depth = p->depth > 0 ? p->depth : 1;
    fs->plane = (size_t)p->width * (size_t)p->height;
    fs->pix = fs->plane * (size_t)fs->depth;
  }
  ms_status st = MS_OK;
  if (im->n) {
    if (im->o.png_dir && (st = mkdir_p(im->o.png_dir, d))) goto fail;
    if (im->o.nifti_dir && (st = mkdir_p(im->o.nifti_dir, d))) goto fail;
    for (size_t i = 0; im->o.dicom_dir && i < im->n && !st; i++) {
      char dd[4096];
      snprintf(dd, sizeof dd, "%s/%s", im->o.dicom_dir, im->fs[i].f->name);
      st = mkdir_p(dd, d);
    }
    if (st) goto fail;
  }
  *out = im;
  return MS_OK;
fail:
  ms_images_free(im);
  return st;
}

ms_sink ms_images_sink(ms_images *im) {
  ms_sink s = {.ctx = im, .begin_table = s_begin, .write_chunk = s_chunk, .end_table = s_end};
  return s;
}

/* Renames (publish = 1) or removes the staged exports and sheets. */
static ms_status staged_files(ms_images *im, int publish, ms_diag *d) {
  char from[4200], to[4200];
  for (size_t i = 0; i < im->n; i++) {
    const fstate *fs = &im->fs[i];
    for (int png = 0; png < 2; png++) {
      if (!(png ? im->o.png_dir : im->o.nifti_dir)) continue;
      for (uint64_t r = fs->first_row; r < fs->exp_hi; r++)
        for (int mask = 0; mask < 1 + fs->f->write_mask; mask++) {
          export_name(from, sizeof from, im, fs, png, mask, r, 1);
          if (!publish) {
            remove(from);
            continue;
          }
          export_name(to, sizeof to, im, fs, png, mask, r, 0);
          if (rename(from, to))
            return ms_diag_add(d, MS_ERR_IO, to, 0, 0, NULL, "cannot rename '%s': %s", from,
                               strerror(errno));
        }
    }
    if (im->o.grid_path && fs->grid_n) {
      sheet_name(from, sizeof from, im, i, 1);
      if (!publish) {
        remove(from);
        continue;
      }
      sheet_name(to, sizeof to, im, i, 0);
      if (rename(from, to))
        return ms_diag_add(d, MS_ERR_IO, to, 0, 0, NULL, "cannot rename '%s': %s", from,
                           strerror(errno));
    }
  }
  return MS_OK;
}

ms_status ms_images_finish(ms_images *im, ms_diag *d) {
  for (size_t i = 0; im->o.grid_path && i < im->n; i++) {
    fstate *fs = &im->fs[i];
    if (!fs->grid_n) continue;
    char path[4200];
    sheet_name(path, sizeof path, im, i, 1);
    ms_sheet_params so;
    ms_sheet_params_init(&so);
    so.window_center = fs->window.center;
    so.window_width = fs->window.width;
    so.overlay = MS_OVERLAY_CONTOUR;
    int H = fs->f->is_model ? (int)fs->S : fs->f->phantom.height;
    int W = fs->f->is_model ? (int)fs->S : fs->f->phantom.width;
    ms_status st = ms_png_contact_sheet(path, fs->grid_img, fs->f->write_mask ? fs->grid_mask : NULL,
                                        fs->grid_n, H, W, &so, d);
    if (st) return st;
  }
  ms_status st = staged_files(im, 1, d);
  if (st == MS_OK) im->published = 1;
  return st;
}

uint64_t ms_images_count(const ms_images *im, size_t field) {
  return im && field < im->n ? im->fs[field].items : 0;
}

void ms_images_free(ms_images *im) {
  if (!im) return;
  if (im->fs && !im->published) staged_files(im, 0, NULL);
  for (size_t i = 0; im->fs && i < im->n; i++) {
    fstate *fs = &im->fs[i];
    for (int k = 0; fs->pimg && k < im->nthreads; k++) ms_phantom_image_deinit(&fs->pimg[k]);
    free(fs->pimg);
    for (int k = 0; fs->bimg && k < im->nthreads; k++) ms_brain_image_deinit(&fs->bimg[k]);
    free(fs->bimg);
    ms_brain_atlas_free(fs->atlas);
    ms_unet_free(fs->unet);
    ms_vae_free(fs->vae);
    ms__acq_free(fs->acq);
    ms_table_schema_deinit(&fs->les_schema);
    ms_table_schema_deinit(&fs->info_schema);
    free(fs->grid_img);
    free(fs->grid_mask);
    reports_clear(fs);
  }
  free(im->fs);
  ms__expr_scratch_free(im->xs);
  free(im);
}

ms_status ms_images_new_reports(ms_images **out, const ms_spec *spec, ms_sink inner,
                                const ms_images_params *o, ms_diag *d) {
  ms_images_params oo;
  if (o)
    oo = *o;
  else
    ms_images_params_init(&oo);
  oo.png_dir = oo.nifti_dir = oo.dicom_dir = oo.grid_path = NULL;
  ms_status st = ms_images_new(out, spec, NULL, &oo, d);
  if (st) return st;
  (*out)->reports_only = 1;
  (*out)->inner = inner;
  return MS_OK;
}

int ms_images_report(const ms_images *im, size_t field, uint64_t row, const char **text,
                     const char **impression) {
  if (!im || field >= im->n) return 0;
  const fstate *fs = &im->fs[field];
  if (!fs->rep_text || row < fs->rep_first || row - fs->rep_first >= fs->rep_n) return 0;
  size_t k = (size_t)(row - fs->rep_first);
  if (!fs->rep_text[k]) return 0;
  *text = fs->rep_text[k];
  *impression = fs->rep_imp[k];
  return 1;
}
