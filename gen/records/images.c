/* Image fields of a spec: parsing, validation and compilation of each root
 * table's "images" list (docs/spec.md, "Image fields"; docs/multimodal.md).
 *
 * Runs inside ms_spec_load after the field passes, so that one load reports
 * every problem of the records and of the images together, each with
 * file:line:column and JSON Pointer. Per-image parameters are compiled by
 * the expression compiler against the table's written columns (slot =
 * output column), see records/images.h.
 *
 * Checks beyond shapes and types: the phantom kind, modality, lesion organ
 * (each with a suggestion), sizes (no zero-size or overflowing images, and
 * images that would not fit in memory are refused with the size they would
 * take), a lesion size that cannot fit its organ (a trial placement of the
 * largest lesion in a typical patient, through the public phantom API),
 * lesions smaller than 1.5 pixels, constant parameters outside their range,
 * and dose on MR images.
 *
 * Invariants: never prints; cJSON nodes are read only; every allocation is
 * owned by s->images and released by ms__images_free. */
#include <cjson/cJSON.h>
#include "core/alloc.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/diag.h"
#include "core/jsoncheck.h"
#include "core/jsonloc.h"
#include "core/suggest.h"
#include "medsynth/model.h"
#include "medsynth/rng.h"
#include "medsynth/sample.h"
#include "records/images.h"
#include "records/images_acq.h"
#include "records/images_brain.h"
#include "records/plan.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"

static const char *const k_param_keys[MS__IMG_PARAM_COUNT] = {
    "lesions", "body_scale", "ventricle_scale", "age", "fat_mm", "dose", "class"};

const char *ms__img_param_key(ms__img_param_id id) {
  return (unsigned)id < MS__IMG_PARAM_COUNT ? k_param_keys[id] : "?";
}

typedef struct ms__img_ctx {
  ms_spec *s;
  ms_diag *d;
  size_t errs;
  int nomem; /* an allocation failed: reported once; later findings are dropped */
} L;

static void oom(L *l, const char *what) {
  if (!l->nomem) ms__diag_nomem(l->d, l->s->file, NULL, what);
  l->nomem = 1;
  l->errs++;
}

/* Copy of s; on failure NULL and oom(what). */
static char *ldup(L *l, const char *s, const char *what) {
  char *c = ms__strdup(s);
  if (!c) oom(l, what);
  return c;
}

static void err_at(L *l, const char *ptr, int at_key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void verr_at(L *l, const char *ptr, int at_key, const char *fmt, va_list ap) {
  if (!l->nomem) ms__spec_verr(l->s, l->d, ptr, at_key, fmt, ap);
  l->errs++;
}

static void err_at(L *l, const char *ptr, int at_key, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  verr_at(l, ptr, at_key, fmt, ap);
  va_end(ap);
}


static void check_keys(L *l, const cJSON *obj, const char *ptr, const char *const *allowed) {
  if (!l->nomem) l->errs += ms__spec_unknown_keys(l->s, l->d, obj, ptr, allowed);
}

static const cJSON *member(const cJSON *obj, const char *key) {
  return cJSON_GetObjectItemCaseSensitive(obj, key);
}

static const char *nodule_kind_name(int i) {
  return ms_nodule_kind_name((ms_nodule_kind)i);
}
static const char *nodule_margin_name(int i) {
  return ms_nodule_margin_name((ms_nodule_margin)i);
}
static const char *nodule_size_name(int i) {
  return ms_nodule_size_name((ms_nodule_size)i);
}

/* Member checks through core/jsoncheck, reported as the loader's errors. */
static void jc_report(void *ctx, const char *ptr, const char *msg) {
  err_at(ctx, ptr, 0, "%s", msg);
}

/* A JSON number within [lo, hi] (integer when asked); returns 1 when present
 * and valid, 0 when absent, -1 after reporting. */
static int get_num(L *l, const cJSON *obj, const char *ptr, const char *key, double lo, double hi,
                   int integer, double *out) {
  if (!member(obj, key)) return 0;
  const ms__jcheck c = {jc_report, l, 0};
  int64_t k;
  if (integer ? ms__jc_int(&c, obj, ptr, key, 0, lo, hi, &k) : ms__jc_range(&c, obj, ptr, key, 0, lo, hi, out))
    return -1;
  if (integer) *out = (double)k;
  return 1;
}

/* [min, max] with lo <= min <= max <= hi. */
static int get_range(L *l, const cJSON *obj, const char *ptr, const char *key, double lo,
                     double hi, double out[2]) {
  const cJSON *c = member(obj, key);
  if (!c) return 0;
  char p[512];
  ms__jsonptr_key(p, sizeof p, ptr, key);
  if (!cJSON_IsArray(c) || cJSON_GetArraySize(c) != 2 || !cJSON_IsNumber(c->child) ||
      !cJSON_IsNumber(c->child->next)) {
    err_at(l, p, 0, "must be [min, max] (two numbers)");
    return -1;
  }
  double a = c->child->valuedouble, b = c->child->next->valuedouble;
  if (!(a >= lo && b <= hi && a <= b)) {
    err_at(l, p, 0, "[%g, %g] must satisfy %g <= min <= max <= %g", a, b, lo, hi);
    return -1;
  }
  out[0] = a;
  out[1] = b;
  return 1;
}

static int get_flag(L *l, const cJSON *obj, const char *ptr, const char *key, int *out) {
  if (!member(obj, key)) return 0;
  const ms__jcheck c = {jc_report, l, 0};
  return ms__jc_bool(&c, obj, ptr, key, 0, out) ? -1 : 1;
}

static int is_ident(const char *s) {
  if (!s || !*s || strlen(s) > 63) return 0;
  if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_')) return 0;
  for (const char *q = s + 1; *q; q++)
    if (!((*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') ||
          *q == '_'))
      return 0;
  return 1;
}

/* ---- expressions over the table's written columns ------------------------------- */

typedef struct {
  L *l;
  const ms__table *t;
} R;

static int img_resolve(void *ctx, const char *name, ms__expr_symbol *out, ms_diag *d,
                       const ms__expr_pos *pos) {
  R *r = ctx;
  const ms_spec *s = r->l->s;
  if (!strncmp(name, "parent.", 7)) {
    ms_diag_add(d, MS_ERR_SPEC, pos->file, pos->line, pos->column, pos->where,
                "\"%s\": image parameters read the columns of their own table only", name);
    return -1;
  }
  int col = 0;
  for (size_t fi = 0; fi < r->t->n_fields; fi++) {
    const ms__field *f = &r->t->fields[fi];
    if (f->name && !strcmp(f->name, name)) {
      if (f->broken) return -1;
      if (f->hidden) {
        ms_diag_add(d, MS_ERR_SPEC, pos->file, pos->line, pos->column, pos->where,
                    "\"%s\" is a hidden field; image parameters read written columns only "
                    "(drop \"hidden\" to use it here)",
                    name);
        return -1;
      }
      memset(out, 0, sizeof *out);
      out->type = f->vtype;
      out->slot = col;
      out->layout = f->layout;
      out->str_width = f->str_width;
      out->n_categories = f->n_labels;
      out->categories = (const char *const *)f->labels;
      return 1;
    }
    if (!f->hidden) col++;
  }
  return ms__spec_const_symbol(s, name, out);
}

static const char *img_name_at(void *ctx, size_t i) {
  R *r = ctx;
  size_t k = 0;
  for (size_t fi = 0; fi < r->t->n_fields; fi++)
    if (!r->t->fields[fi].hidden && r->t->fields[fi].name && k++ == i) return r->t->fields[fi].name;
  size_t c = i - k;
  return c < r->l->s->n_const ? r->l->s->consts[c].name : NULL;
}

/* A parameter: a number, an expression string, or (lesions only) [min, max]. */
static void parse_param_key(L *l, const ms__table *t, ms__img_param *p, const cJSON *obj,
                            const char *iptr, const char *key) {
  char ptr[512];
  ms__jsonptr_key(ptr, sizeof ptr, iptr, key);
  p->ptr = ldup(l, ptr, "an image parameter");
  const cJSON *j = member(obj, key);
  if (!j) return;
  if (cJSON_IsNumber(j)) {
    double v = j->valuedouble;
    if (!isfinite(v) || v < p->lo || v > p->hi) {
      err_at(l, ptr, 0, "%s %g is outside %g..%g", key, v, p->lo, p->hi);
      return;
    }
    if (p->integer && v != floor(v)) {
      err_at(l, ptr, 0, "%s must be a whole number, got %g", key, v);
      return;
    }
    p->set = 1;
    p->value = v;
    return;
  }
  if (!cJSON_IsString(j)) {
    err_at(l, ptr, 0, "must be a number or an expression string over the row");
    return;
  }
  size_t off;
  int line = 0, col = 0, escaped = 0;
  if (ms__jsonloc_find(l->s->text, l->s->len, ptr, 0, &off) == 0) {
    ms__jsonloc_linecol(l->s->text, l->s->len, off + 1, &line, &col);
    for (size_t k = off + 1; k < l->s->len && l->s->text[k] != '"'; k++)
      if (l->s->text[k] == '\\') {
        escaped = 1;
        break;
      }
  }
  R rc = {.l = l, .t = t};
  ms__expr_resolver r = {.ctx = &rc, .resolve = img_resolve, .name_at = img_name_at, .vocab = NULL};
  ms__expr_compile_params o;
  ms__expr_compile_params_init(&o);
  o.file = l->s->file;
  o.line = line;
  o.column = col;
  o.where = ptr;
  o.escaped = escaped;
  o.want = MS__EXPR_NUMBER;
  ms__expr *e = NULL;
  size_t before = l->d->n_errors;
  ms_status cst = ms__expr_compile(&e, j->valuestring, &r, &o, l->d);
  if (cst != MS_OK) {
    l->errs += l->d->n_errors - before + (l->d->n_errors == before);
    if (cst == MS_ERR_NOMEM) l->nomem = 1; /* the compiler reported it */
    return;
  }
  if (ms__expr_is_const(e)) {
    ms__expr_value val;
    ms__expr_error er;
    ms_status st = ms__expr_eval_const(e, &val, &er);
    if (st != MS_OK) {
      ms__expr_error_report(e, &er, l->d, ptr);
      l->errs++;
    } else if (val.missing || !isfinite(val.num) || val.num < p->lo || val.num > p->hi ||
               (p->integer && val.num != floor(val.num))) {
      err_at(l, ptr, 0, "%s evaluates to %g; it must be %s in %g..%g", key, val.num,
             p->integer ? "a whole number" : "a number", p->lo, p->hi);
    } else {
      p->set = 1;
      p->value = val.num;
    }
    ms__expr_free(e);
    return;
  }
  p->set = 1;
  p->x = e;
}

static void parse_param(L *l, const ms__table *t, ms__img_param *p, const cJSON *obj,
                        const char *iptr, ms__img_param_id id) {
  parse_param_key(l, t, p, obj, iptr, k_param_keys[id]);
}

void ms__img_params_free(ms__img_param *p, int n) {
  for (int k = 0; k < n; k++) {
    ms__expr_free(p[k].x);
    free(p[k].ptr);
  }
}

size_t ms__img_param_parse(ms_spec *s, ms_diag *d, const ms__table *t, ms__img_param *p, const cJSON *obj,
                           const char *objptr, const char *key) {
  L l = {.s = s, .d = d};
  parse_param_key(&l, t, p, obj, objptr, key);
  return l.errs;
}

/* ---- one image field ---------------------------------------------------------------- */

static const char *const k_phantom_keys[] = {
    "name",          "description",     "phantom",        "modality",  "size",
    "width",         "height",          "depth",          "fov_mm",    "slice_mm",
    "slice_z_mm",    "supersample",     "noise",          "dose",      "lesions",
    "lesion_organ",  "lesion_size_mm",  "lesion_contrast", "lesion_irregularity",
    "body_scale",    "ventricle_scale", "age",            "fat_mm",    "augment",
    "window",        "mask",            "lesion_table",   "acquisition", "nodule_type",
    "nodule_margin", "nodule_size", NULL};
static const char *const k_model_keys[] = {"name",  "description", "model", "class", "sampler",
                                           "steps", "guidance",    "eta",   NULL};
static const char *const k_augment_keys[] = {"rotate_deg",      "scale",          "elastic_mm",
                                             "elastic_grid",    "intensity_shift", "intensity_scale",
                                             NULL};
static const char *const k_kinds[] = {"head", "chest", "abdomen", "brain", NULL};
static const char *const k_modalities[] = {"ct", "t1", "t2", NULL};
static const char *const k_samplers[] = {"ddpm", "ddim", "dpmpp", NULL};

/* Maps a location of ms_phantom_params_check to the spec key holding it. */
static const char *spec_key_of(const char *where) {
  static const struct {
    const char *where, *key;
  } map[] = {{"width", "size"},
             {"height", "size"},
             {"depth", "depth"},
             {"size", "size"},
             {"fov_mm", "fov_mm"},
             {"slice_mm", "slice_mm"},
             {"slice_z_mm", "slice_z_mm"},
             {"supersample", "supersample"},
             {"dose", "dose"},
             {"lesions.count", "lesions"},
             {"lesions.organ", "lesion_organ"},
             {"lesions.diameter_mm", "lesion_size_mm"},
             {"lesions.irregularity", "lesion_irregularity"},
             {"lesions.contrast", "lesion_contrast"},
             {"lesions.nodule", "nodule_type"},
             {"lesions.margin", "nodule_margin"},
             {"lesions.size_class", "nodule_size"},
             {"augment.rotate_deg", "augment/rotate_deg"},
             {"augment.scale", "augment/scale"},
             {"augment.elastic_mm", "augment/elastic_mm"},
             {"augment.elastic_grid", "augment/elastic_grid"},
             {"augment.intensity_shift", "augment/intensity_shift"},
             {"augment.intensity_scale", "augment/intensity_scale"}};
  for (size_t i = 0; where && i < sizeof map / sizeof map[0]; i++)
    if (!strcmp(where, map[i].where)) return map[i].key;
  return NULL;
}

static int file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static void parse_model(L *l, const ms__table *t, ms__image_field *f, const cJSON *ij,
                        const char *iptr) {
  char p[512];
  check_keys(l, ij, iptr, k_model_keys);
  const cJSON *m = member(ij, "model");
  ms__jsonptr_key(p, sizeof p, iptr, "model");
  if (!cJSON_IsString(m) || !m->valuestring[0]) {
    err_at(l, p, 0, "must be the path of a model file (.h5)");
  } else {
    char a[4096], b[4096];
    const char *mp = m->valuestring;
    f->model_ref = ms__strdup(mp);
    if (mp[0] == '/')
      snprintf(a, sizeof a, "%s", mp);
    else
      snprintf(a, sizeof a, "%s/%s", l->s->dir, mp);
    snprintf(b, sizeof b, "models/%s", mp);
    if (file_exists(a))
      f->model_path = ldup(l, a, "a model path");
    else if (mp[0] != '/' && file_exists(b))
      f->model_path = ldup(l, b, "a model path");
    else if (mp[0] == '/')
      err_at(l, p, 0, "model file \"%s\" not found", a);
    else
      err_at(l, p, 0, "model file \"%s\" not found (looked in \"%s\" and \"%s\")", mp, a, b);
  }
  const cJSON *sm = member(ij, "sampler");
  ms__jsonptr_key(p, sizeof p, iptr, "sampler");
  f->sampler = ldup(l, "ddim", "a sampler name");
  if (sm) {
    int ok = cJSON_IsString(sm);
    for (size_t i = 0; ok && k_samplers[i]; i++) ok = strcmp(sm->valuestring, k_samplers[i]) != 0;
    if (!cJSON_IsString(sm))
      err_at(l, p, 0, "must be \"ddpm\", \"ddim\" or \"dpmpp\"");
    else if (ok)
      err_at(l, p, 0, "unknown sampler \"%s\" (ddpm, ddim, dpmpp)", sm->valuestring);
    else {
      free(f->sampler);
      f->sampler = ldup(l, sm->valuestring, "a sampler name");
    }
  }
  double v;
  f->steps = 50;
  if (get_num(l, ij, iptr, "steps", 1, 100000, 1, &v) == 1) f->steps = (int)v;
  f->guidance = 1;
  if (get_num(l, ij, iptr, "guidance", 1e-6, 100, 0, &v) == 1) f->guidance = v;
  f->eta = 0;
  if (get_num(l, ij, iptr, "eta", 0, 1, 0, &v) == 1) f->eta = v;
  if (f->eta != 0 && strcmp(f->sampler, "ddim")) {
    ms__jsonptr_key(p, sizeof p, iptr, "eta");
    err_at(l, p, 0, "eta applies to the ddim sampler only");
  }
  /* the model itself: loaded and checked now, so that a bad file is a spec
   * error, not a failure after the first chunk */
  int ncls = 0;
  if (f->model_path) {
    ms_diag md;
    ms_diag_init(&md);
    ms__jsonptr_key(p, sizeof p, iptr, "model");
    if (ms_model_load(&f->model, f->model_path, &md) != MS_OK) {
      for (size_t i = 0; i < md.count; i++)
        err_at(l, p, 0, "model \"%s\": %s%s%s", f->model_path, md.entries[i].where ? md.entries[i].where : "",
               md.entries[i].where ? ": " : "", md.entries[i].message);
      if (!md.count) err_at(l, p, 0, "cannot load model \"%s\"", f->model_path);
    } else {
      const ms_model_config *c = ms_model_config_of(f->model);
      ncls = c->num_classes;
      if (c->arch == MS_ARCH_VAE) {
        /* a VAE decodes latents from its prior: no sampler settings */
        static const char *const diff_keys[] = {"sampler", "steps", "guidance", "eta", NULL};
        for (size_t i = 0; diff_keys[i]; i++)
          if (member(ij, diff_keys[i])) {
            ms__jsonptr_key(p, sizeof p, iptr, diff_keys[i]);
            err_at(l, p, 1, "\"%s\" applies to diffusion (unet) models; model \"%s\" is a vae",
                   diff_keys[i], f->model_path);
          }
      } else if (f->steps > c->schedule.T) {
        ms__jsonptr_key(p, sizeof p, iptr, "steps");
        err_at(l, p, 0, "%d steps exceed the model's %d diffusion steps", f->steps, c->schedule.T);
      }
    }
    ms_diag_deinit(&md);
  }
  f->p[MS__IMG_CLASS].lo = 0;
  f->p[MS__IMG_CLASS].hi = ncls > 0 ? ncls - 1 : 1e6;
  f->p[MS__IMG_CLASS].integer = 1;
  parse_param(l, t, &f->p[MS__IMG_CLASS], ij, iptr, MS__IMG_CLASS);
  if (f->model) {
    ms__jsonptr_key(p, sizeof p, iptr, "class");
    if (ncls == 0 && member(ij, "class"))
      err_at(l, p, 1, "the model is unconditional (no classes); remove \"class\"");
    /* a VAE's learned prior has no unconditional Gaussian to fall back on */
    if (ncls > 0 && !member(ij, "class") && ms_model_config_of(f->model)->arch == MS_ARCH_VAE)
      err_at(l, iptr, 0, "model \"%s\" is a class-conditional vae: give a \"class\" (0..%d) for every image",
             f->model_path, ncls - 1);
  }
  if (f->model && ms_model_config_of(f->model)->arch == MS_ARCH_UNET) {
    if (f->guidance != 1 && ncls == 0) {
      ms__jsonptr_key(p, sizeof p, iptr, "guidance");
      err_at(l, p, 0, "classifier-free guidance needs a class-conditional model");
    } else if (f->guidance != 1 && !member(ij, "class")) {
      ms__jsonptr_key(p, sizeof p, iptr, "guidance");
      err_at(l, p, 0, "guidance needs a \"class\" for every image");
    }
  }
}

/* Trial placement of one lesion of the largest size in a typical patient
 * (image 0 of seed 0, noise off): catches lesions that cannot fit their organ
 * before any row is generated. */
static void trial_lesion(L *l, const ms__image_field *f, const char *iptr) {
  ms_phantom_params q = f->phantom;
  q.depth = 0;
  q.noise = 0;
  q.supersample = 1;
  q.augment.rotate_deg = 0;
  q.augment.scale_min = q.augment.scale_max = 1;
  q.augment.elastic_mm = 0;
  q.lesions.count_min = q.lesions.count_max = 1;
  q.lesions.diameter_min_mm = q.lesions.diameter_max_mm = f->phantom.lesions.diameter_max_mm;
  q.lesions.irregularity = 0;
  /* a coarse grid is enough to place one lesion; keep the pixels at least as
   * fine as the lesion needs */
  int w = 128;
  double sp = q.fov_mm / w;
  if (1.5 * sp > 0.5 * q.lesions.diameter_max_mm) w = (int)ceil(3.0 * q.fov_mm / q.lesions.diameter_max_mm) + 1;
  if (w > 1024) return;
  q.height = (int)lround((double)q.height * w / q.width);
  if (q.height < 1) q.height = 1;
  q.width = w;
  ms_diag td;
  ms_diag_init(&td);
  ms_phantom_image img;
  if (ms_phantom_image_init(&img, &q, &td) == MS_OK) {
    ms_phantom_subject sub;
    ms_phantom_subject_init(&sub);
    sub.body_scale = 1;
    sub.n_lesions = 1;
    if (ms_phantom_generate(&img, &q, &sub, 0, 0, &td) == MS_ERR_RANGE && td.count) {
      char p[512];
      ms__jsonptr_key(p, sizeof p, iptr, "lesion_size_mm");
      err_at(l, p, 0, "lesions up to %g mm do not fit a typical patient: %s",
             f->phantom.lesions.diameter_max_mm, td.entries[td.count - 1].message);
    }
    ms_phantom_image_deinit(&img);
  }
  ms_diag_deinit(&td);
}

static void parse_phantom(L *l, const ms__table *t, ms__image_field *f, const cJSON *ij,
                          const char *iptr) {
  char p[512];
  const cJSON *bj = member(ij, "phantom");
  if (cJSON_IsString(bj) && !strcmp(bj->valuestring, "brain")) {
    ms__brain_field_parse(l, t, f, ij, iptr);
    return;
  }
  check_keys(l, ij, iptr, k_phantom_keys);
  size_t errs0 = l->errs;
  const cJSON *kj = member(ij, "phantom");
  ms__jsonptr_key(p, sizeof p, iptr, "phantom");
  ms_phantom_kind kind = MS_PHANTOM_KIND_COUNT;
  if (!cJSON_IsString(kj)) {
    err_at(l, p, 0, "must be \"head\", \"chest\", \"abdomen\" or \"brain\"");
  } else {
    kind = ms_phantom_kind_from_name(kj->valuestring);
    if (kind == MS_PHANTOM_KIND_COUNT) {
      const char *near = ms__closest(kj->valuestring, k_kinds, ms__list_len(k_kinds));
      if (near)
        err_at(l, p, 0, "unknown phantom \"%s\" (did you mean \"%s\"?)", kj->valuestring, near);
      else
        err_at(l, p, 0, "unknown phantom \"%s\" (head, chest, abdomen, brain)", kj->valuestring);
    }
  }
  ms_phantom_params *q = &f->phantom;
  ms_phantom_params_init(q, kind == MS_PHANTOM_KIND_COUNT ? MS_PHANTOM_CHEST : kind);
  const cJSON *mj = member(ij, "modality");
  if (mj) {
    ms__jsonptr_key(p, sizeof p, iptr, "modality");
    if (!cJSON_IsString(mj)) {
      err_at(l, p, 0, "must be \"ct\", \"t1\" or \"t2\"");
    } else if ((q->modality = ms_modality_from_name(mj->valuestring)) == MS_MODALITY_COUNT) {
      const char *near = ms__closest(mj->valuestring, k_modalities, ms__list_len(k_modalities));
      err_at(l, p, 0, "unknown modality \"%s\"%s%s%s", mj->valuestring,
             near ? " (did you mean \"" : " (ct, t1, t2)", near ? near : "", near ? "\"?)" : "");
      q->modality = MS_MODALITY_CT;
    }
  }
  double v, r2[2];
  if (member(ij, "size") && (member(ij, "width") || member(ij, "height"))) {
    ms__jsonptr_key(p, sizeof p, iptr, "size");
    err_at(l, p, 1, "give either \"size\" or \"width\"/\"height\", not both");
  }
  if (get_num(l, ij, iptr, "size", 1, 8192, 1, &v) == 1) q->width = q->height = (int)v;
  if (get_num(l, ij, iptr, "width", 1, 8192, 1, &v) == 1) q->width = (int)v;
  if (get_num(l, ij, iptr, "height", 1, 8192, 1, &v) == 1) q->height = (int)v;
  if (get_num(l, ij, iptr, "depth", 1, 8192, 1, &v) == 1) q->depth = (int)v;
  if (get_num(l, ij, iptr, "fov_mm", 1, 2000, 0, &v) == 1) q->fov_mm = v;
  if (get_num(l, ij, iptr, "slice_mm", 0.01, 100, 0, &v) == 1) q->slice_mm = v;
  if (get_num(l, ij, iptr, "slice_z_mm", -1000, 1000, 0, &v) == 1) q->slice_z_mm = v;
  if (get_num(l, ij, iptr, "supersample", 1, 8, 1, &v) == 1) q->supersample = (int)v;
  get_flag(l, ij, iptr, "noise", &q->noise);
  f->write_mask = 1;
  f->write_lesions = 1;
  get_flag(l, ij, iptr, "mask", &f->write_mask);
  get_flag(l, ij, iptr, "lesion_table", &f->write_lesions);
  const cJSON *oj = member(ij, "lesion_organ");
  if (oj) {
    ms__jsonptr_key(p, sizeof p, iptr, "lesion_organ");
    int organ = cJSON_IsString(oj) ? ms_label_from_name(oj->valuestring) : MS_LABEL_COUNT;
    if (!cJSON_IsString(oj)) {
      err_at(l, p, 0, "must be an organ name (e.g. \"lung\")");
    } else if (organ == MS_LABEL_COUNT) {
      static const char *const organs[] = {"white_matter", "grey_matter", "lung", "heart",
                                           "liver",        "kidney",      "spleen", NULL};
      const char *near = ms__closest(oj->valuestring, organs, ms__list_len(organs));
      err_at(l, p, 0, "unknown organ \"%s\"%s%s%s", oj->valuestring, near ? " (did you mean \"" : "",
             near ? near : "", near ? "\"?)" : "");
    } else {
      q->lesions.organ = organ;
    }
  }
  if (get_range(l, ij, iptr, "lesion_size_mm", 0.01, 999, r2) == 1) {
    q->lesions.diameter_min_mm = r2[0];
    q->lesions.diameter_max_mm = r2[1];
  }
  if (get_range(l, ij, iptr, "lesion_contrast", -10, 10, r2) == 1) {
    q->lesions.contrast_min = r2[0];
    q->lesions.contrast_max = r2[1];
  }
  if (get_num(l, ij, iptr, "lesion_irregularity", 0, 0.5, 0, &v) == 1) q->lesions.irregularity = v;
  const ms__jcheck jc = {jc_report, l, 0};
  int choice;
  if (!ms__jc_choice(&jc, ij, iptr, "nodule_type", 0, MS_NODULE_KIND_COUNT, nodule_kind_name, &choice))
    q->lesions.nodule = (ms_nodule_kind)choice;
  if (!ms__jc_choice(&jc, ij, iptr, "nodule_margin", 0, MS_NODULE_MARGIN_COUNT, nodule_margin_name, &choice))
    q->lesions.margin = (ms_nodule_margin)choice;
  if (!ms__jc_choice(&jc, ij, iptr, "nodule_size", 0, MS_NODULE_SIZE_COUNT, nodule_size_name, &choice))
    q->lesions.size_class = (ms_nodule_size)choice;
  const cJSON *aj = member(ij, "augment");
  if (aj) {
    char ap[512];
    ms__jsonptr_key(ap, sizeof ap, iptr, "augment");
    if (!cJSON_IsObject(aj)) {
      err_at(l, ap, 0, "must be an object");
    } else {
      check_keys(l, aj, ap, k_augment_keys);
      ms_augment_params *a = &q->augment;
      if (get_num(l, aj, ap, "rotate_deg", 0, 180, 0, &v) == 1) a->rotate_deg = v;
      if (get_range(l, aj, ap, "scale", 0.2001, 5, r2) == 1) {
        a->scale_min = r2[0];
        a->scale_max = r2[1];
      }
      if (get_num(l, aj, ap, "elastic_mm", 0, 100, 0, &v) == 1) a->elastic_mm = v;
      if (get_num(l, aj, ap, "elastic_grid", 4, 32, 1, &v) == 1) a->elastic_grid = (int)v;
      if (get_num(l, aj, ap, "intensity_shift", 0, 1e4, 0, &v) == 1) a->intensity_shift = v;
      if (get_num(l, aj, ap, "intensity_scale", 0, 1, 0, &v) == 1) a->intensity_scale = v;
    }
  }
  /* per-image parameters */
  static const double lo[MS__IMG_PARAM_COUNT] = {0, 0.7, 0.5, 18, 2, 1e-3, 0};
  static const double hi[MS__IMG_PARAM_COUNT] = {MS_PHANTOM_MAX_LESIONS, 1.3, 2.5, 100, 60, 1e5, 1e6};
  for (int k = 0; k < MS__IMG_PARAM_COUNT; k++) {
    f->p[k].lo = lo[k];
    f->p[k].hi = hi[k];
    f->p[k].integer = k == MS__IMG_LESIONS || k == MS__IMG_CLASS;
  }
  const cJSON *lj = member(ij, "lesions");
  if (cJSON_IsArray(lj)) {
    ms__jsonptr_key(p, sizeof p, iptr, "lesions");
    f->p[MS__IMG_LESIONS].ptr = ldup(l, p, "an image parameter");
    if (get_range(l, ij, iptr, "lesions", 0, MS_PHANTOM_MAX_LESIONS, r2) == 1) {
      if (r2[0] != floor(r2[0]) || r2[1] != floor(r2[1]))
        err_at(l, p, 0, "lesion counts must be whole numbers");
      f->lesion_range = 1;
      q->lesions.count_min = (int)r2[0];
      q->lesions.count_max = (int)r2[1];
    }
  } else {
    parse_param(l, t, &f->p[MS__IMG_LESIONS], ij, iptr, MS__IMG_LESIONS);
  }
  for (int k = MS__IMG_BODY_SCALE; k <= MS__IMG_DOSE; k++) parse_param(l, t, &f->p[k], ij, iptr, k);
  if (f->p[MS__IMG_DOSE].set && q->modality != MS_MODALITY_CT) {
    ms__jsonptr_key(p, sizeof p, iptr, "dose");
    err_at(l, p, 1, "\"dose\" applies to CT images only (this image is %s)", ms_modality_name(q->modality));
  }
  if (f->p[MS__IMG_VENTRICLE_SCALE].set && kind != MS_PHANTOM_HEAD && kind != MS_PHANTOM_KIND_COUNT) {
    ms__jsonptr_key(p, sizeof p, iptr, "ventricle_scale");
    err_at(l, p, 1, "\"ventricle_scale\" applies to head phantoms only");
  }
  if (f->p[MS__IMG_DOSE].set && !f->p[MS__IMG_DOSE].x) q->dose = f->p[MS__IMG_DOSE].value;
  ms__img_parse_acquisition(l, t, f, ij, iptr);
  /* window */
  const cJSON *wj = member(ij, "window");
  f->window = ms_phantom_default_window(q);
  if (wj) {
    ms__jsonptr_key(p, sizeof p, iptr, "window");
    if (cJSON_IsString(wj)) {
      if (ms_window_preset(wj->valuestring, &f->window) != MS_OK)
        err_at(l, p, 0, "unknown window \"%s\" (lung, mediastinum, bone, brain, abdomen, or {\"center\": c, \"width\": w})",
               wj->valuestring);
    } else if (cJSON_IsObject(wj)) {
      static const char *const wk[] = {"center", "width", NULL};
      check_keys(l, wj, p, wk);
      double c = 0, w = 0;
      int hc = get_num(l, wj, p, "center", -1e6, 1e6, 0, &c);
      int hw = get_num(l, wj, p, "width", 1e-9, 1e7, 0, &w);
      if (hc == 0 || hw == 0)
        err_at(l, p, 0, "a window needs \"center\" and \"width\"");
      else if (hc == 1 && hw == 1) {
        f->window.center = c;
        f->window.width = w;
      }
    } else {
      err_at(l, p, 0, "must be a window name or {\"center\": c, \"width\": w}");
    }
  }
  if (l->errs != errs0) return;
  /* the phantom's own checks (memory, ranges), mapped to spec keys */
  int maxc = f->lesion_range ? q->lesions.count_max : MS_PHANTOM_MAX_LESIONS;
  ms_phantom_params chk = *q;
  chk.lesions.count_min = 0;
  chk.lesions.count_max = maxc;
  ms_diag pd;
  ms_diag_init(&pd);
  if (ms_phantom_params_check(&chk, &pd) != MS_OK) {
    for (size_t i = 0; i < pd.count; i++) {
      const char *k = spec_key_of(pd.entries[i].where);
      char kp[512];
      if (k)
        snprintf(kp, sizeof kp, "%s/%s", iptr, k);
      else
        snprintf(kp, sizeof kp, "%s", iptr);
      if (k && !strcmp(k, "size") && !member(ij, "size")) {
        const char *alt = member(ij, "depth") ? "depth" : member(ij, "width") ? "width" : NULL;
        if (alt)
          snprintf(kp, sizeof kp, "%s/%s", iptr, alt);
        else
          snprintf(kp, sizeof kp, "%s", iptr);
      }
      err_at(l, kp, 0, "%s", pd.entries[i].message);
    }
  }
  ms_diag_deinit(&pd);
  if (l->errs != errs0) return;
  /* lesions smaller than 1.5 pixels can never be drawn */
  int any_lesions = f->lesion_range ? q->lesions.count_max > 0
                                    : (f->p[MS__IMG_LESIONS].x || f->p[MS__IMG_LESIONS].value > 0);
  if (any_lesions) {
    double sp[3];
    ms_phantom_spacing(q, sp);
    double m = fmin(sp[0], q->depth > 0 ? fmin(sp[1], sp[2]) : sp[1]);
    double smallest = q->lesions.diameter_min_mm * (1 - q->lesions.irregularity);
    if (smallest < 1.5 * m) {
      ms__jsonptr_key(p, sizeof p, iptr, "lesion_size_mm");
      err_at(l, p, 0,
             "lesions of %g mm (irregularity %g) are smaller than 1.5 pixels (%.2f mm) of this "
             "image; use larger lesions or a larger size",
             q->lesions.diameter_min_mm, q->lesions.irregularity, 1.5 * m);
    } else {
      trial_lesion(l, f, iptr);
    }
  }
}

static void field_free(ms__image_field *f) {
  free(f->name);
  free(f->ptr);
  free(f->description);
  ms__img_params_free(f->p, MS__IMG_PARAM_COUNT);
  free(f->model_path);
  free(f->model_ref);
  ms_model_free(f->model);
  free(f->sampler);
  ms__img_acq_free(f->acq);
  ms__brain_field_free(f->brain);
}

void ms__images_free(ms__images *im) {
  if (!im) return;
  for (size_t i = 0; i < im->n; i++) field_free(&im->f[i]);
  free(im->f);
  free(im);
}

static int name_taken(const ms__images *im, const char *name, size_t upto) {
  for (size_t i = 0; i < upto; i++)
    if (im->f[i].name && !strcmp(im->f[i].name, name)) return 1;
  return 0;
}

size_t ms__images_load(ms_spec *s, const cJSON *tables, ms_diag *d) {
  L l = {.s = s, .d = d};
  if (!tables) return 0;
  size_t total = 0, ti = 0;
  for (const cJSON *tj = tables->child; tj; tj = tj->next, ti++) {
    const cJSON *ij = cJSON_IsObject(tj) ? member(tj, "images") : NULL;
    if (ij) total += cJSON_IsArray(ij) ? (size_t)cJSON_GetArraySize(ij) : 0;
  }
  ms__images *im = ms__calloc(1, sizeof *im);
  if (im) im->f = ms__calloc(total ? total : 1, sizeof *im->f);
  if (!im || !im->f) {
    free(im);
    oom(&l, "the image fields");
    return l.errs;
  }
  ti = 0;
  for (const cJSON *tj = tables->child; tj && ti < s->n_tables && !l.nomem; tj = tj->next, ti++) {
    const cJSON *ij = cJSON_IsObject(tj) ? member(tj, "images") : NULL;
    if (!ij) continue;
    const ms__table *t = &s->tables[ti];
    char tp[256];
    snprintf(tp, sizeof tp, "/tables/%zu/images", ti);
    if (!cJSON_IsArray(ij)) {
      err_at(&l, tp, 0, "must be an array of image fields");
      continue;
    }
    if (t->broken) continue;
    if (t->parent != SIZE_MAX) {
      err_at(&l, tp, 1,
             "image fields belong to a root table (one image per row, whose count is known "
             "before generation); table \"%s\" is a child of \"%s\"",
             t->name, s->tables[t->parent].name);
      continue;
    }
    size_t k = 0;
    for (const cJSON *fj = ij->child; fj && !l.nomem; fj = fj->next, k++) {
      char ip[256];
      snprintf(ip, sizeof ip, "%s/%zu", tp, k);
      if (!cJSON_IsObject(fj)) {
        err_at(&l, ip, 0, "must be an object (an image field)");
        continue;
      }
      ms__image_field *f = &im->f[im->n++];
      f->ptr = ldup(&l, ip, "an image field");
      f->table = ti;
      const cJSON *nj = member(fj, "name");
      char np[300];
      ms__jsonptr_key(np, sizeof np, ip, "name");
      if (!nj) {
        err_at(&l, ip, 0, "missing required key \"name\"");
      } else if (!cJSON_IsString(nj) || !is_ident(nj->valuestring)) {
        err_at(&l, np, 0, "image name must be an identifier (letters, digits, _)");
      } else if (name_taken(im, nj->valuestring, im->n - 1)) {
        err_at(&l, np, 0, "duplicate image field name \"%s\"", nj->valuestring);
      } else {
        const char *nm = nj->valuestring;
        for (size_t j = 0; j < s->n_tables; j++) {
          const char *tn = s->tables[j].name;
          size_t ln = strlen(nm);
          if (!tn || strncmp(tn, nm, ln)) continue;
          if (!tn[ln] || !strcmp(tn + ln, "_lesions") || !strcmp(tn + ln, "_info"))
            err_at(&l, np, 0, "image \"%s\" would write table \"%s\", which the spec already defines",
                   nm, tn);
        }
        f->name = ldup(&l, nm, "an image field name");
      }
      const cJSON *dj = member(fj, "description");
      if (dj) {
        if (cJSON_IsString(dj))
          f->description = ldup(&l, dj->valuestring, "an image field's description");
        else {
          char p[300];
          ms__jsonptr_key(p, sizeof p, ip, "description");
          err_at(&l, p, 0, "must be a string");
        }
      }
      char sname[200];
      snprintf(sname, sizeof sname, "%s/%s", t->name ? t->name : "", f->name ? f->name : "");
      f->stream = ms_rng_stream(sname);
      int has_m = member(fj, "model") != NULL, has_p = member(fj, "phantom") != NULL;
      if (has_m && has_p) {
        err_at(&l, ip, 0, "an image field has either \"phantom\" or \"model\", not both");
      } else if (has_m) {
        f->is_model = 1;
        parse_model(&l, t, f, fj, ip);
      } else if (has_p) {
        parse_phantom(&l, t, f, fj, ip);
      } else {
        err_at(&l, ip, 0, "an image field needs \"phantom\" (head, chest, abdomen, brain) or \"model\" (a model file)");
      }
    }
  }
  /* a brain field's AAL mask /masks/<name>_aal against other fields' masks */
  for (size_t a = 0; a < im->n; a++) {
    const ms__image_field *fa = &im->f[a];
    if (!fa->name || !fa->brain || !fa->brain->write_aal) continue;
    size_t ln = strlen(fa->name);
    for (size_t b = 0; b < im->n; b++) {
      const ms__image_field *fb = &im->f[b];
      if (b == a || !fb->name || !fb->write_mask || strncmp(fb->name, fa->name, ln) || strcmp(fb->name + ln, "_aal"))
        continue;
      char np[300];
      ms__jsonptr_key(np, sizeof np, fb->ptr ? fb->ptr : "", "name");
      err_at(&l, np, 0, "mask /masks/%s is also the AAL mask of brain image \"%s\" (rename one, or give it \"aal_mask\": false)",
             fb->name, fa->name);
    }
  }
  if (!l.nomem) l.errs += ms__img_acq_check_names(s, d, im);
  if (s->images) ms__images_free(s->images);
  s->images = im;
  return l.errs;
}

/* ---- the loader's helpers for the brain field (records/images_brain.c) ---- */

void ms__img_err(ms__img_ctx *l, const char *ptr, int at_key, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  verr_at(l, ptr, at_key, fmt, ap);
  va_end(ap);
}

int ms__img_get_num(ms__img_ctx *l, const cJSON *obj, const char *ptr, const char *key, double lo, double hi,
                    int integer, double *out) {
  return get_num(l, obj, ptr, key, lo, hi, integer, out);
}

int ms__img_get_flag(ms__img_ctx *l, const cJSON *obj, const char *ptr, const char *key, int *out) {
  return get_flag(l, obj, ptr, key, out);
}

void ms__img_check_keys(ms__img_ctx *l, const cJSON *obj, const char *ptr, const char *const *allowed) {
  check_keys(l, obj, ptr, allowed);
}

void ms__img_parse_param(ms__img_ctx *l, const ms__table *t, ms__img_param *p, const cJSON *obj,
                         const char *iptr, const char *key) {
  parse_param_key(l, t, p, obj, iptr, key);
}

void ms__img_parse_acquisition(ms__img_ctx *l, const ms__table *t, ms__image_field *f, const cJSON *ij,
                               const char *iptr) {
  const cJSON *acj = member(ij, "acquisition");
  if (!acj) return;
  char p[512];
  ms__jsonptr_key(p, sizeof p, iptr, "acquisition");
  l->errs += ms__img_acq_parse(l->s, l->d, t, f, acj, p);
}
