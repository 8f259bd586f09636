/* Acquisition physics of image fields at generation time
 * (multimodal/images_acq.h): the CT or MR system of a field, its extra
 * datasets, and one row's acquisition.
 *
 * Outputs are kept as a small table (path, type, item shape, batch buffer)
 * so that beginning, sizing and writing them is one loop each. A row's
 * outputs live in its batch slot only; the systems are read-only after
 * ms__acq_begin, so rows run on any threads at once.
 *
 * Invariants: the reconstruction written to /images/<f> and every raw
 * dataset of row r depend only on (seed, field, r, the row's values). */
#include "multimodal/images_acq.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/diag.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"

enum { OUT_SECOND, OUT_TRUTH, OUT_RAW, OUT_MASK, OUT_MAX };

typedef struct {
  char path[160];
  ms_dtype dt;
  int rank;            /* of one item */
  uint64_t dims[3];    /* of one item */
  size_t item_bytes;
  int write;           /* 0: computed, not stored (k-space with "raw": false) */
  uint8_t *buf;        /* [cap][item_bytes] */
} output;

struct ms__acq_run {
  const ms__img_acq *a;
  ms_ct_system *ct;
  ms_mr_system *mr;
  int W, H;
  size_t npix;
  output out[OUT_MAX];
  int n_out;
  size_t cap;
};

void ms__acq_free(ms__acq_run *r) {
  if (!r) return;
  ms_ct_system_free(r->ct);
  ms_mr_system_free(r->mr);
  for (int k = 0; k < r->n_out; k++) free(r->out[k].buf);
  free(r);
}

static void add_out(ms__acq_run *r, int k, const char *fmt, const char *name, ms_dtype dt, int rank, uint64_t d0,
                    uint64_t d1, uint64_t d2, int write) {
  output *o = &r->out[k];
  snprintf(o->path, sizeof o->path, fmt, name);
  o->dt = dt;
  o->rank = rank;
  o->dims[0] = d0;
  o->dims[1] = d1;
  o->dims[2] = d2;
  o->item_bytes = ms_dtype_size(dt);
  for (int i = 0; i < rank; i++) o->item_bytes *= (size_t)o->dims[i];
  o->write = write;
  if (k + 1 > r->n_out) r->n_out = k + 1;
}

static ms_status set_strings(ms_writer *w, const char *path, const char *const *kv, int n) {
  ms_status st = MS_OK;
  for (int i = 0; i < n && !st; i++) st = ms_writer_set_object_attr_string(w, path, kv[2 * i], kv[2 * i + 1]);
  return st;
}

static ms_status set_doubles(ms_writer *w, const char *path, const char *const *k, const double *v, int n) {
  ms_status st = MS_OK;
  for (int i = 0; i < n && !st; i++) st = ms_writer_set_object_attr_double(w, path, k[i], v[i]);
  return st;
}

/* Attributes of the field's datasets: what each holds, and the geometry. */
static ms_status set_attrs(const ms__acq_run *r, const ms__image_field *f, ms_writer *w, const char *table) {
  char img[160];
  snprintf(img, sizeof img, "/images/%s", f->name);
  const ms__img_acq *a = r->a;
  const char *what_img = a->is_mr ? "root-sum-of-squares of the fully sampled coil images (noisy)"
                                  : "FBP reconstruction at the row's dose";
  const char *what[OUT_MAX];
  what[OUT_SECOND] = a->is_mr ? "root-sum-of-squares of the zero-filled undersampled coil images"
                              : "FBP reconstruction at the row's full dose";
  what[OUT_TRUTH] = "noise-free phantom (the truth)";
  what[OUT_RAW] = a->is_mr ? "fully sampled multi-coil k-space (fastMRI fft2c), with noise"
                           : "measured line integrals -ln(I/I0) at the row's dose, (views, detectors)";
  what[OUT_MASK] = "sampled phase-encode columns of the row";
  const char *img_kv[] = {"acquisition", a->is_mr ? "mr" : "ct", "content", what_img};
  ms_status st = set_strings(w, img, img_kv, 2);
  for (int k = 0; k < r->n_out && !st; k++) {
    if (!r->out[k].write) continue;
    const char *kv[] = {"content", what[k], "table", table, "image", img};
    st = set_strings(w, r->out[k].path, kv, 3);
  }
  if (st) return st;
  const char *raw = r->out[OUT_RAW].path;
  if (!a->is_mr) {
    const ms_ct_params *c = ms_ct_system_params(r->ct);
    const char *kv[] = {"geometry", ms_ct_geometry_name(c->geometry), "filter", ms_fbp_filter_name(c->filter)};
    const char *k[] = {"detector_mm", "sod_mm", "photons_per_mas", "electronic_noise_sd", "mu_water_per_mm",
                       "mu_air_per_mm", "cutoff"};
    const double v[] = {c->detector_mm, c->geometry == MS_CT_FAN ? c->sod_mm : 0, c->photons_per_mas,
                        c->electronic_sd, c->mu_water, c->mu_air, c->cutoff};
    for (int t = 0; t < 2 && !st; t++) {
      const char *p = t ? img : raw;
      if (!t && !r->out[OUT_RAW].write) continue;
      st = set_strings(w, p, kv, 2);
      if (!st) st = set_doubles(w, p, k, v, 7);
      if (!st && c->beam_hardening)
        st = ms_writer_set_object_attr_string(w, p, "beam_hardening",
                                              "polychromatic water/bone (docs/physics.md); reconstructions water-precorrected");
    }
    return st;
  }
  const ms_mr_params *m = &a->mr;
  const char *kv[] = {"mask_kind", ms_mr_mask_kind_name(m->mask)};
  const char *k[] = {"noise_sd", "coil_radius", "coil_width", "partial_fourier"};
  const double v[] = {m->noise_sd, m->coil_radius, m->coil_width, m->partial_fourier};
  st = set_strings(w, img, kv, 1);
  if (!st) st = set_doubles(w, img, k, v, 4);
  if (!st) st = ms_writer_set_object_attr_int(w, img, "coils", m->coils);
  return st;
}

ms_status ms__acq_begin(ms__acq_run **out, const ms__image_field *f, ms_writer *w, const char *table,
                        uint64_t expected, ms_diag *d) {
  *out = NULL;
  const ms__img_acq *a = f->acq;
  ms__acq_run *r = ms__calloc(1, sizeof *r);
  if (!r) return ms__diag_nomem(d, NULL, a->ptr, "the acquisition");
  r->a = a;
  /* the grid the system was made for (a phantom's or a brain field's) */
  r->W = a->is_mr ? a->mr.width : a->ct.width;
  r->H = a->is_mr ? a->mr.height : a->ct.height;
  r->npix = (size_t)r->W * r->H;
  ms_status st = a->is_mr ? ms_mr_system_new(&r->mr, &a->mr, d) : ms_ct_system_new(&r->ct, &a->ct, d);
  if (st) {
    ms__acq_free(r);
    return st;
  }
  uint64_t H = (uint64_t)r->H, W = (uint64_t)r->W;
  if (!a->is_mr) {
    const ms_ct_params *c = ms_ct_system_params(r->ct);
    add_out(r, OUT_SECOND, "/images/%s_full_dose", f->name, MS_DT_FLOAT32, 3, 1, H, W, 1);
    add_out(r, OUT_TRUTH, "/images/%s_truth", f->name, MS_DT_FLOAT32, 3, 1, H, W, 1);
    add_out(r, OUT_RAW, "/raw/%s_sinogram", f->name, MS_DT_FLOAT32, 3, 1, (uint64_t)c->views,
            (uint64_t)c->detectors, a->raw);
  } else {
    add_out(r, OUT_SECOND, "/images/%s_zf", f->name, MS_DT_FLOAT32, 3, 1, H, W, 1);
    add_out(r, OUT_TRUTH, "/images/%s_truth", f->name, MS_DT_FLOAT32, 3, 1, H, W, 1);
    add_out(r, OUT_RAW, "/raw/%s_kspace", f->name, MS_DT_COMPLEX64, 3, (uint64_t)a->mr.coils, H, W, a->raw);
    add_out(r, OUT_MASK, "/raw/%s_mask", f->name, MS_DT_UINT8, 1, W, 1, 1, 1);
  }
  for (int k = 0; k < r->n_out && !st; k++) {
    const output *o = &r->out[k];
    if (!o->write) continue;
    uint64_t dims[4] = {expected, o->dims[0], o->dims[1], o->dims[2]};
    st = ms_writer_begin_array(w, o->path, o->dt, 1 + o->rank, dims);
  }
  if (!st && a->is_mr && a->raw) {
    char maps[160];
    snprintf(maps, sizeof maps, "/raw/%s_sensitivity_maps", f->name);
    uint64_t dims[3] = {(uint64_t)a->mr.coils, H, W};
    st = ms_writer_begin_array(w, maps, MS_DT_COMPLEX64, 3, dims);
    if (!st) st = ms_writer_write_items(w, maps, 0, (uint64_t)a->mr.coils, ms_mr_system_maps(r->mr));
  }
  if (!st) st = set_attrs(r, f, w, table);
  if (st) {
    ms__acq_free(r);
    return st;
  }
  *out = r;
  return MS_OK;
}

size_t ms__acq_row_bytes(const ms__acq_run *r) {
  size_t b = 0;
  for (int k = 0; k < r->n_out; k++) b += r->out[k].item_bytes;
  return b;
}

ms_status ms__acq_reserve(ms__acq_run *r, size_t B, ms_diag *d) {
  if (B <= r->cap) return MS_OK;
  for (int k = 0; k < r->n_out; k++) {
    free(r->out[k].buf);
    r->out[k].buf = NULL;
  }
  r->cap = 0;
  for (int k = 0; k < r->n_out; k++) {
    r->out[k].buf = ms__malloc(B * r->out[k].item_bytes);
    if (!r->out[k].buf) return ms__diag_nomem(d, NULL, r->a->ptr, "the acquisition buffers");
  }
  r->cap = B;
  return MS_OK;
}

static double value_or(const double *vals, int k, double dflt) { return isnan(vals[k]) ? dflt : vals[k]; }

double ms__acq_dose(const ms__acq_run *r, const double *vals) {
  return r->a->is_mr ? NAN : value_or(vals, MS__ACQ_DOSE, r->a->ct.dose_mas);
}

ms_status ms__acq_row(const ms__acq_run *r, size_t slot, float *image, const double *vals, uint64_t seed,
                      uint64_t row, ms_diag *d) {
  const ms__img_acq *a = r->a;
  float *buf[OUT_MAX] = {0};
  for (int k = 0; k < r->n_out; k++) buf[k] = (float *)(void *)(r->out[k].buf + slot * r->out[k].item_bytes);
  float *truth = buf[OUT_TRUTH];
  memcpy(truth, image, r->npix * sizeof(float));
  ms_diag pd;
  ms_diag_init(&pd);
  ms_status st;
  if (!a->is_mr) {
    st = ms_ct_acquire_at(r->ct, r->out[OUT_RAW].write ? buf[OUT_RAW] : NULL, image, buf[OUT_SECOND], truth,
                          value_or(vals, MS__ACQ_DOSE, a->ct.dose_mas),
                          value_or(vals, MS__ACQ_FULL_DOSE, a->ct.full_dose_mas), seed, row, &pd);
  } else {
    ms_mr_output o = {buf[OUT_RAW], r->out[OUT_MASK].buf + slot * r->out[OUT_MASK].item_bytes, image,
                      buf[OUT_SECOND], NULL};
    st = ms_mr_acquire_at(r->mr, &o, truth, value_or(vals, MS__ACQ_ACCELERATION, a->mr.acceleration),
                          value_or(vals, MS__ACQ_CENTER_FRACTION, a->mr.center_fraction), seed, row, &pd);
  }
  /* A refused per-row value is a data error of the row; the message names
   * the spec key it came from. */
  if (st == MS_ERR_INVALID) st = MS_ERR_DATA;
  for (size_t i = 0; st && i < pd.count; i++) {
    const char *where = pd.entries[i].where ? pd.entries[i].where : "";
    const char *ptr = a->ptr;
    for (int k = 0; k < MS__ACQ_PARAM_COUNT; k++)
      if (!strcmp(where, ms__acq_param_key((ms__acq_param_id)k)) && a->p[k].ptr) ptr = a->p[k].ptr;
    ms_diag_add(d, st, NULL, 0, 0, NULL, "%s for this row (%s)", pd.entries[i].message, ptr);
  }
  ms_diag_deinit(&pd);
  return st;
}

ms_status ms__acq_write(const ms__acq_run *r, ms_writer *w, uint64_t first, size_t m) {
  ms_status st = MS_OK;
  for (int k = 0; k < r->n_out && !st; k++)
    if (r->out[k].write) st = ms_writer_write_items(w, r->out[k].path, first, m, r->out[k].buf);
  return st;
}
