/* The "acquisition" object of a phantom image field: parsing, checks and
 * compilation of its per-row parameters (records/images_acq.h,
 * docs/multimodal.md "Acquisition physics").
 *
 * Every problem is reported at once with its JSON Pointer: unknown keys
 * (with a suggestion), an unknown physics, geometry, filter or mask, a
 * physics that does not match the modality (CT physics on a brain field,
 * whose images are MR contrasts), a volume (the physics works on
 * 2-D slices), a dose given outside the object, per-row parameters out of
 * range (zero or negative dose, acceleration below 1, a centre fraction
 * outside (0, 1)), coils outside 1..64, shape-fixing parameters given as
 * expressions, and whatever ms_ct_params_check / ms_mr_params_check refuse
 * for the field's constant values (more views than allowed, an odd MR
 * size, a centre wider than W / R).
 *
 * Invariants: never prints; cJSON nodes are read only; f->acq is owned by
 * the field and released by ms__img_acq_free. */
#include "records/images_acq.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/diag.h"
#include "core/jsoncheck.h"
#include "core/jsonloc.h"
#include "records/images_brain.h"

static const char *const k_acq_keys[MS__ACQ_PARAM_COUNT] = {"dose", "full_dose", "acceleration", "center_fraction"};

const char *ms__acq_param_key(ms__acq_param_id id) {
  return (unsigned)id < MS__ACQ_PARAM_COUNT ? k_acq_keys[id] : "?";
}

static const char *const k_ct_keys[] = {"physics", "dose", "full_dose", "views", "detectors", "geometry", "filter",
                                        "cutoff", "photons", "electronic_noise", "sod_mm", "raw", "beam_hardening",
                                        NULL};
static const char *const k_mr_keys[] = {"physics", "coils", "acceleration", "center_fraction", "mask",
                                        "partial_fourier", "raw", NULL};
static const char *const k_all_keys[] = {"physics", "dose", "full_dose", "views", "detectors", "geometry",
                                         "filter", "cutoff", "photons", "electronic_noise", "sod_mm", "coils",
                                         "acceleration", "center_fraction", "mask", "partial_fourier", "raw",
                                         "beam_hardening", NULL};

typedef struct {
  ms_spec *s;
  ms_diag *d;
  const ms__table *t;
  const char *aptr;
  size_t errs;
} A;

static void err_at(A *a, const char *ptr, int at_key, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void err_at(A *a, const char *ptr, int at_key, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ms__spec_verr(a->s, a->d, ptr, at_key, fmt, ap);
  va_end(ap);
  a->errs++;
}

static const char *geom_name(int i) { return ms_ct_geometry_name((ms_ct_geometry)i); }
static const char *filt_name(int i) { return ms_fbp_filter_name((ms_fbp_filter)i); }
static const char *mask_name(int i) { return ms_mr_mask_kind_name((ms_mr_mask_kind)i); }
static const char *phys_name(int i) { return i ? "mr" : "ct"; }

/* A per-row parameter (per_row = 1) or a constant of the field; *out gets
 * a constant's value. Returns 1 when given as a valid constant. */
static int get_param(A *a, const cJSON *obj, ms__img_param *p, const char *key, double lo, double hi, int integer,
                     int per_row, double *out) {
  p->lo = lo;
  p->hi = hi;
  p->integer = integer;
  size_t e = ms__img_param_parse(a->s, a->d, a->t, p, obj, a->aptr, key);
  a->errs += e;
  if (e || !p->set) return 0;
  if (p->x && !per_row) {
    err_at(a, p->ptr, 0, "\"%s\" fixes the shape of the field's datasets and must be a number, not an expression",
           key);
    return 0;
  }
  if (p->x) return 0;
  *out = p->value;
  return 1;
}

static void jc_report(void *ctx, const char *ptr, const char *msg) {
  err_at(ctx, ptr, 0, "%s", msg);
}

/* A name from list (index), or -1 after reporting; -2 when absent. */
static int get_name(A *a, const cJSON *obj, const char *key, const char *(*name_of)(int), int count) {
  if (!cJSON_GetObjectItemCaseSensitive(obj, key)) return -2;
  const ms__jcheck c = {jc_report, a, 0};
  int i;
  return ms__jc_choice(&c, obj, a->aptr, key, 0, count, name_of, &i) ? -1 : i;
}

/* A true/false key (core/jsoncheck); *out unchanged when absent or wrong. */
static void get_bool(A *a, const cJSON *obj, const char *key, int *out) {
  const ms__jcheck c = {jc_report, a, 0};
  (void)ms__jc_bool(&c, obj, a->aptr, key, 0, out);
}

/* A constant of the field (no per-row value). */
static int get_const(A *a, const cJSON *obj, const char *key, double lo, double hi, int integer, double *out) {
  ms__img_param tmp;
  memset(&tmp, 0, sizeof tmp);
  int r = get_param(a, obj, &tmp, key, lo, hi, integer, 0, out);
  ms__img_params_free(&tmp, 1);
  return r;
}

/* Maps a location of ms_ct_params_check / ms_mr_params_check to a key of
 * the acquisition object (NULL: the object itself). */
static const char *acq_key_of(const char *where) {
  static const char *const same[] = {"views", "detectors", "geometry", "filter", "cutoff", "photons", "dose",
                                     "full_dose", "electronic_noise", "sod_mm", "coils", "acceleration",
                                     "center_fraction", "mask", "partial_fourier"};
  for (size_t i = 0; where && i < sizeof same / sizeof same[0]; i++)
    if (!strcmp(where, same[i])) return same[i];
  return NULL;
}

void ms__img_acq_free(ms__img_acq *a) {
  if (!a) return;
  ms__img_params_free(a->p, MS__ACQ_PARAM_COUNT);
  free(a->ptr);
  free(a);
}

size_t ms__img_acq_check_names(ms_spec *s, ms_diag *d, const ms__images *im) {
  static const char *const suffix[] = {"_truth", "_full_dose", "_zf"};
  A a = {s, d, NULL, NULL, 0};
  for (size_t i = 0; i < im->n; i++) {
    const ms__image_field *f = &im->f[i];
    if (!f->acq || !f->name) continue;
    size_t ln = strlen(f->name);
    for (size_t j = 0; j < im->n; j++) {
      const char *o = im->f[j].name;
      if (j == i || !o || strncmp(o, f->name, ln)) continue;
      for (size_t k = 0; k < sizeof suffix / sizeof suffix[0]; k++)
        if (!strcmp(o + ln, suffix[k])) {
          char p[512];
          ms__jsonptr_key(p, sizeof p, im->f[j].ptr, "name");
          err_at(&a, p, 0, "image \"%s\" would be overwritten by the acquisition of image \"%s\" (/images/%s)", o,
                 f->name, o);
        }
    }
  }
  return a.errs;
}

size_t ms__img_acq_parse(ms_spec *s, ms_diag *d, const ms__table *t, ms__image_field *f, const cJSON *aj,
                         const char *aptr) {
  A a = {s, d, t, aptr, 0};
  if (!cJSON_IsObject(aj)) {
    err_at(&a, aptr, 0, "must be an object: {\"physics\": \"ct\" or \"mr\", ...}");
    return a.errs;
  }
  ms__img_acq *q = ms__calloc(1, sizeof *q);
  if (!q || !(q->ptr = ms__strdup(aptr))) {
    free(q);
    ms__diag_nomem(d, s->file, NULL, "an acquisition");
    return 1;
  }
  f->acq = q;
  int phys = get_name(&a, aj, "physics", phys_name, 2);
  if (phys == -2) {
    err_at(&a, aptr, 0, "missing required key \"physics\" (\"ct\" or \"mr\")");
    phys = -1;
  }
  a.errs += ms__spec_unknown_keys(s, d, aj, aptr, phys == 0 ? k_ct_keys : phys == 1 ? k_mr_keys : k_all_keys);
  if (phys < 0) return a.errs;
  q->is_mr = phys;
  const ms_phantom_params *ph = &f->phantom;
  ms_brain_params *bp = f->brain ? &f->brain->p : NULL;
  char p[512];
  ms__jsonptr_key(p, sizeof p, aptr, "physics");
  if (bp && phys == 0)
    err_at(&a, p, 0, "brain images are MR contrasts: CT physics does not apply (use \"physics\": \"mr\")");
  else if (bp && bp->contrast == MS_BRAIN_CT)
    err_at(&a, p, 0, "MR physics needs an MR contrast (\"t1\", \"t2\", \"flair\" or \"pd\"); this image is ct");
  else if ((ph->modality == MS_MODALITY_CT) != (phys == 0))
    err_at(&a, p, 0, "%s physics needs %s images; this image is %s", phys ? "MR" : "CT",
           phys ? "\"t1\" or \"t2\"" : "\"ct\"", ms_modality_name(ph->modality));
  if (ph->depth > 0) err_at(&a, aptr, 1, "acquisition physics works on 2-D slices; remove \"depth\"");
  if (f->p[MS__IMG_DOSE].set) {
    char dp[512];
    snprintf(dp, sizeof dp, "%s", f->p[MS__IMG_DOSE].ptr ? f->p[MS__IMG_DOSE].ptr : aptr);
    err_at(&a, dp, 1, "with \"acquisition\", give the dose there (%s/dose)", aptr);
  }
  q->raw = 1;
  get_bool(&a, aj, "raw", &q->raw);
  int bh = 0;
  get_bool(&a, aj, "beam_hardening", &bh);
  /* the slice's grid: the brain's own, or the phantom's field of view */
  double sp[3], v;
  ms_phantom_spacing(ph, sp);
  int W = bp ? bp->dims[0] : ph->width, H = bp ? bp->dims[1] : ph->height;
  double pixel = bp ? bp->spacing_mm[0] : sp[0];
  size_t e0 = a.errs;
  if (phys == 0) {
    ms_ct_params *c = &q->ct;
    ms_ct_params_init(c, W, H, pixel);
    int g = get_name(&a, aj, "geometry", geom_name, MS_CT_GEOMETRY_COUNT);
    int fl = get_name(&a, aj, "filter", filt_name, MS_FBP_FILTER_COUNT);
    if (g >= 0) c->geometry = (ms_ct_geometry)g;
    if (fl >= 0) c->filter = (ms_fbp_filter)fl;
    if (get_const(&a, aj, "cutoff", 1e-6, 1, 0, &v)) c->cutoff = v;
    if (get_const(&a, aj, "photons", 1e-6, 1e9, 0, &v)) c->photons_per_mas = v;
    if (get_const(&a, aj, "electronic_noise", 0, 1e6, 0, &v)) c->electronic_sd = v;
    if (get_const(&a, aj, "sod_mm", 1, 1e5, 0, &v)) c->sod_mm = v;
    if (get_const(&a, aj, "views", 1, MS_CT_MAX_VIEWS, 1, &v)) c->views = (int)v;
    if (get_const(&a, aj, "detectors", 1, MS_CT_MAX_DETECTORS, 1, &v)) c->detectors = (int)v;
    c->beam_hardening = bh;
    if (get_param(&a, aj, &q->p[MS__ACQ_DOSE], "dose", 1e-3, 1e5, 0, 1, &v)) c->dose_mas = v;
    if (get_param(&a, aj, &q->p[MS__ACQ_FULL_DOSE], "full_dose", 1e-3, 1e5, 0, 1, &v)) c->full_dose_mas = v;
  } else {
    ms_mr_params *m = &q->mr;
    ms_mr_params_init(m, W, H, pixel);
    int mk = get_name(&a, aj, "mask", mask_name, MS_MR_MASK_COUNT);
    if (mk >= 0) m->mask = (ms_mr_mask_kind)mk;
    if (get_const(&a, aj, "coils", 1, 64, 1, &v)) m->coils = (int)v;
    if (get_const(&a, aj, "partial_fourier", 0, 1, 0, &v)) m->partial_fourier = v;
    if (get_param(&a, aj, &q->p[MS__ACQ_ACCELERATION], "acceleration", 1, 1024, 0, 1, &v)) m->acceleration = v;
    if (get_param(&a, aj, &q->p[MS__ACQ_CENTER_FRACTION], "center_fraction", 0, 1, 0, 1, &v))
      m->center_fraction = v;
    /* 0 with "noise": false. A brain image is signal relative to its
     * brightest tissue, whose Rician noise sd is bp->noise; the complex
     * noise of that sd gives the RSS image the same Rician statistics. */
    m->noise_sd = bp ? (bp->noise_free ? 0 : bp->noise) : ms_mr_phantom_noise_sd(ph);
  }
  /* The truth is rendered noise-free; the acquisition adds the noise. */
  f->phantom.noise = 0;
  if (bp) bp->noise_free = 1;
  if (a.errs != e0) return a.errs;
  /* the physics' own checks on the constant values, mapped to keys */
  ms_diag pd;
  ms_diag_init(&pd);
  if ((phys == 0 ? ms_ct_params_check(&q->ct, &pd) : ms_mr_params_check(&q->mr, &pd)) != MS_OK) {
    for (size_t i = 0; i < pd.count; i++) {
      const char *k = acq_key_of(pd.entries[i].where);
      char kp[512];
      if (k)
        ms__jsonptr_key(kp, sizeof kp, aptr, k);
      else
        snprintf(kp, sizeof kp, "%s", aptr);
      err_at(&a, kp, 0, "%s", pd.entries[i].message);
    }
  }
  ms_diag_deinit(&pd);
  return a.errs;
}
