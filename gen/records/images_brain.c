/* The "brain" image field of a spec: parsing and validation
 * (records/images_brain.h; docs/multimodal.md, "Brain image fields").
 *
 * Constant keys become an ms_brain_params checked by
 * ms_brain_params_check (each finding reported at the spec key holding the
 * value); per-image keys are numbers or expressions over the row, like the
 * other phantoms' (records/images.c). "modality", "tumour_lobe", "stroke" and
 * "stroke_side" also take a name ("t2", "frontal", "mca", "left"), which is a
 * constant; any other string is an
 * expression giving the index (documented in docs/multimodal.md). The atlas
 * files are only looked for here (their absence is a spec error naming the
 * package); the generator loads them. An "acquisition" object (MR physics
 * of a 2-D slice) is parsed by records/images_acq.c once the shape is
 * known.
 *
 * Invariants: never prints; cJSON nodes are read only; everything
 * allocated hangs off f->brain and is released by ms__brain_field_free. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/jsonloc.h"
#include "core/suggest.h"
#include "records/images_brain.h"

static const char *const k_keys[MS__BRAIN_PARAM_COUNT] = {
    "age",        "head_scale", "modality",   "tumour", "tumour_lobe", "tumour_size_mm", "gadolinium",
    "wm_lesions", "wm_load_ml", "stroke",     "stroke_size_mm", "stroke_side"};

const char *ms__brain_param_key(int id) { return id >= 0 && id < MS__BRAIN_PARAM_COUNT ? k_keys[id] : "?"; }

static const char *const k_field_keys[] = {
    "name",       "description", "phantom",    "modality",    "intensities",    "field_t",
    "size",       "width",       "height",     "depth",       "spacing_mm",     "slice_mm",
    "slice_z_mm", "age",         "head_scale", "tumour",      "tumour_lobe",    "tumour_size_mm",
    "gadolinium", "deform_mm",   "noise",      "mask",        "atlas_dir",      "wm_lesions",
    "wm_load_ml", "stroke",      "stroke_size_mm", "orientation", "stroke_side", "aal_mask", "acquisition", NULL};

/* Contrasts a per-row "modality" picks from (CT only as a constant: its
 * images are in HU, the others in relative signal). */
static const char *const k_contrasts[] = {"t1", "t2", "flair", "pd", "ct", NULL};
static const char *const k_lobes[] = {"any", "frontal", "parietal", "temporal", "occipital", NULL};
static const char *const k_intensities[] = {"physics", "random", NULL};
static const char *const k_territories[] = {"none", "aca", "mca", "pca", NULL};
static const char *const k_sides[] = {"left", "right", NULL};
static const char *const k_orientations[] = {"axial", "coronal", "sagittal", NULL};

/* Spec key of a location of ms_brain_params_check. */
static const char *key_of(const char *where, int has_depth) {
  static const struct {
    const char *where, *key;
  } map[] = {{"spacing_mm", "spacing_mm"}, {"slice_z_mm", "slice_z_mm"}, {"deform_mm", "deform_mm"},
             {"field_t", "field_t"},       {"contrast", "modality"},     {"intensity", "intensities"},
             {"age_years", "age"},         {"head_scale", "head_scale"}, {"tumour_lobe", "tumour_lobe"},
             {"tumour_diameter_mm", "tumour_size_mm"}, {"wm_lesions", "wm_lesions"},
             {"wm_load_ml", "wm_load_ml"},          {"stroke", "stroke"},         {"stroke_radius_mm", "stroke_size_mm"},
             {"stroke_side", "stroke_side"}};
  if (where && !strcmp(where, "dims")) return has_depth ? "depth" : "size";
  for (size_t i = 0; where && i < sizeof map / sizeof map[0]; i++)
    if (!strcmp(where, map[i].where)) return map[i].key;
  return NULL;
}

static int is_field(const ms__table *t, const char *name) {
  for (size_t i = 0; i < t->n_fields; i++)
    if (t->fields[i].name && !strcmp(t->fields[i].name, name)) return 1;
  return 0;
}

static int is_word(const char *s) {
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_')) return 0;
  return 1;
}

/* A per-image parameter that also takes a name of names[0 .. n) (its
 * index, a constant). Returns the index of a name given, -1 otherwise. */
static int named_param(ms__img_ctx *l, const ms__table *t, ms__img_param *q, const cJSON *ij, const char *iptr,
                       const char *key, const char *const *names, int n, const char *what) {
  const cJSON *j = cJSON_GetObjectItemCaseSensitive(ij, key);
  char p[512];
  ms__jsonptr_key(p, sizeof p, iptr, key);
  if (cJSON_IsString(j)) {
    for (int i = 0; names[i]; i++)
      if (!strcmp(j->valuestring, names[i])) {
        q->ptr = ms__strdup(p);
        return i;
      }
    if (is_word(j->valuestring) && !is_field(t, j->valuestring)) {
      const char *near = ms__closest(j->valuestring, names, ms__list_len(names));
      ms__img_err(l, p, 0, "unknown %s \"%s\"%s%s%s (or an expression over the row giving 0..%d)", what,
                  j->valuestring, near ? " (did you mean \"" : "", near ? near : "", near ? "\"?)" : "", n - 1);
      return -1;
    }
  }
  ms__img_parse_param(l, t, q, ij, iptr, key);
  return -1;
}

/* A constant key naming one of names: its index; -1 when absent or wrong
 * (reported, with a suggestion). */
static int choice_key(ms__img_ctx *l, const cJSON *ij, const char *iptr, const char *key, const char *const *names) {
  const cJSON *j = cJSON_GetObjectItemCaseSensitive(ij, key);
  if (!j) return -1;
  for (int i = 0; cJSON_IsString(j) && names[i]; i++)
    if (!strcmp(j->valuestring, names[i])) return i;
  char p[512], list[256] = "";
  ms__jsonptr_key(p, sizeof p, iptr, key);
  size_t n = ms__list_len(names);
  for (size_t i = 0; i < n; i++) {
    size_t used = strlen(list);
    snprintf(list + used, sizeof list - used, "%s\"%s\"", i == 0 ? "" : i + 1 == n ? " or " : ", ", names[i]);
  }
  const char *near = cJSON_IsString(j) ? ms__closest(j->valuestring, names, n) : NULL;
  ms__img_err(l, p, 0, "must be %s%s%s%s", list, near ? " (did you mean \"" : "", near ? near : "", near ? "\"?)" : "");
  return -1;
}

static int file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

void ms__brain_field_parse(ms__img_ctx *l, const ms__table *t, ms__image_field *f, const cJSON *ij,
                           const char *iptr) {
  char p[512];
  ms__img_check_keys(l, ij, iptr, k_field_keys);
  ms__brain_field *b = ms__calloc(1, sizeof *b);
  f->brain = b;
  if (!b) {
    ms__img_err(l, iptr, 0, "out of memory for a brain image field");
    return;
  }
  ms_brain_params *bp = &b->p;
  ms_brain_params_init(bp);
  bp->dims[0] = bp->dims[1] = 256;
  bp->dims[2] = 1;
  bp->spacing_mm[0] = bp->spacing_mm[1] = bp->spacing_mm[2] = 0.9;
  static const double lo[MS__BRAIN_PARAM_COUNT] = {18, 0.7, 0, 0, 0, 10, 0, 0, 0, 0, 5, 0};
  static const double hi[MS__BRAIN_PARAM_COUNT] = {100, 1.3, 3, 1, MS_BRAIN_LOBE_COUNT - 1, 70, 1,
                                                   MS_BRAIN_MAX_WM_LESIONS, 200, MS_BRAIN_TERRITORY_COUNT - 1, 80, 1};
  for (int k = 0; k < MS__BRAIN_PARAM_COUNT; k++) {
    b->q[k].lo = lo[k];
    b->q[k].hi = hi[k];
    b->q[k].integer = k == MS__BRAIN_MODALITY || k == MS__BRAIN_TUMOUR || k == MS__BRAIN_TUMOUR_LOBE ||
                      k == MS__BRAIN_GADOLINIUM || k == MS__BRAIN_WM_LESIONS || k == MS__BRAIN_STROKE ||
                      k == MS__BRAIN_STROKE_SIDE;
  }
  size_t n_mod = ms__list_len(k_contrasts);
  int m = named_param(l, t, &b->q[MS__BRAIN_MODALITY], ij, iptr, "modality", k_contrasts, (int)n_mod - 1,
                      "modality");
  if (m >= 0) bp->contrast = (ms_brain_contrast)m;
  int lobe = named_param(l, t, &b->q[MS__BRAIN_TUMOUR_LOBE], ij, iptr, "tumour_lobe", k_lobes,
                         MS_BRAIN_LOBE_COUNT, "lobe");
  if (lobe >= 0) bp->tumour_lobe = (ms_brain_lobe)lobe;
  int terr = named_param(l, t, &b->q[MS__BRAIN_STROKE], ij, iptr, "stroke", k_territories, MS_BRAIN_TERRITORY_COUNT,
                         "territory");
  if (terr >= 0) bp->stroke = (ms_brain_territory)terr;
  int side = named_param(l, t, &b->q[MS__BRAIN_STROKE_SIDE], ij, iptr, "stroke_side", k_sides, 2, "side");
  if (side >= 0) bp->stroke_side = side;
  for (int k = 0; k < MS__BRAIN_PARAM_COUNT; k++)
    if (k != MS__BRAIN_MODALITY && k != MS__BRAIN_TUMOUR_LOBE && k != MS__BRAIN_STROKE && k != MS__BRAIN_STROKE_SIDE)
      ms__img_parse_param(l, t, &b->q[k], ij, iptr, k_keys[k]);
  int e = choice_key(l, ij, iptr, "intensities", k_intensities);
  if (e >= 0) bp->intensity = (ms_brain_intensity)e;
  int o = choice_key(l, ij, iptr, "orientation", k_orientations);
  if (o >= 0) bp->orientation = (ms_brain_orientation)o;
  double v;
  if (cJSON_GetObjectItemCaseSensitive(ij, "size") &&
      (cJSON_GetObjectItemCaseSensitive(ij, "width") || cJSON_GetObjectItemCaseSensitive(ij, "height"))) {
    ms__jsonptr_key(p, sizeof p, iptr, "size");
    ms__img_err(l, p, 1, "give either \"size\" or \"width\"/\"height\", not both");
  }
  if (ms__img_get_num(l, ij, iptr, "size", 1, 4096, 1, &v) == 1) bp->dims[0] = bp->dims[1] = (int)v;
  if (ms__img_get_num(l, ij, iptr, "width", 1, 4096, 1, &v) == 1) bp->dims[0] = (int)v;
  if (ms__img_get_num(l, ij, iptr, "height", 1, 4096, 1, &v) == 1) bp->dims[1] = (int)v;
  int has_depth = ms__img_get_num(l, ij, iptr, "depth", 1, 4096, 1, &v) == 1;
  if (has_depth) bp->dims[2] = (int)v;
  if (ms__img_get_num(l, ij, iptr, "spacing_mm", 0.1, 20, 0, &v) == 1)
    bp->spacing_mm[0] = bp->spacing_mm[1] = bp->spacing_mm[2] = v;
  if (ms__img_get_num(l, ij, iptr, "slice_mm", 0.1, 20, 0, &v) == 1) bp->spacing_mm[2] = v;
  if (ms__img_get_num(l, ij, iptr, "slice_z_mm", -150, 150, 0, &v) == 1) bp->slice_z_mm = v;
  if (ms__img_get_num(l, ij, iptr, "field_t", 1.5, 3, 0, &v) == 1) bp->field_t = v;
  if (ms__img_get_num(l, ij, iptr, "deform_mm", 0, 10, 0, &v) == 1) bp->deform_mm = v;
  int noise = 1;
  ms__img_get_flag(l, ij, iptr, "noise", &noise);
  bp->noise_free = !noise;
  f->write_mask = 1;
  f->write_lesions = 0;
  ms__img_get_flag(l, ij, iptr, "mask", &f->write_mask);
  b->write_aal = f->write_mask;
  ms__img_get_flag(l, ij, iptr, "aal_mask", &b->write_aal);
  const cJSON *aj = cJSON_GetObjectItemCaseSensitive(ij, "atlas_dir");
  ms__jsonptr_key(p, sizeof p, iptr, "atlas_dir");
  if (aj && (!cJSON_IsString(aj) || !aj->valuestring[0]))
    ms__img_err(l, p, 0, "must be the folder holding ch2.nii.gz, ch2bet.nii.gz and aal.nii.gz");
  else if (aj && !(b->atlas_dir = ms__strdup(aj->valuestring)))
    ms__img_err(l, p, 0, "out of memory");
  static const char *const files[] = {"ch2.nii.gz", "ch2bet.nii.gz", "aal.nii.gz", "aal.nii.txt"};
  const char *dir = b->atlas_dir ? b->atlas_dir : MS_BRAIN_ATLAS_DIR;
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    if (!file_exists(path)) {
      ms__img_err(l, aj ? p : iptr, 0, "brain atlas file \"%s\" not found (install Debian's mricron-data package)",
                  path);
      break;
    }
  }
  if (b->q[MS__BRAIN_MODALITY].x && bp->contrast == MS_BRAIN_CT) bp->contrast = MS_BRAIN_T1;
  if (bp->contrast == MS_BRAIN_CT &&
      (b->q[MS__BRAIN_GADOLINIUM].set || cJSON_GetObjectItemCaseSensitive(ij, "field_t"))) {
    ms__jsonptr_key(p, sizeof p, iptr, b->q[MS__BRAIN_GADOLINIUM].set ? "gadolinium" : "field_t");
    ms__img_err(l, p, 1, "applies to MR images only (this image is ct)");
  }
  /* the phantom's own checks (ranges, memory), at the keys holding the values */
  ms_brain_params chk = *bp;
  ms_diag pd;
  ms_diag_init(&pd);
  if (ms_brain_params_check(&chk, &pd) != MS_OK)
    for (size_t i = 0; i < pd.count; i++) {
      const char *k = key_of(pd.entries[i].where, has_depth);
      char kp[512];
      if (k)
        ms__jsonptr_key(kp, sizeof kp, iptr, k);
      else
        snprintf(kp, sizeof kp, "%s", iptr);
      ms__img_err(l, kp, 0, "%s", pd.entries[i].message);
    }
  ms_diag_deinit(&pd);
  /* the shape and display as the generic image code reads them */
  ms_phantom_params *q = &f->phantom;
  ms_phantom_params_init(q, MS_PHANTOM_HEAD);
  q->width = bp->dims[0];
  q->height = bp->dims[1];
  q->depth = has_depth ? bp->dims[2] : 0;
  q->modality = bp->contrast == MS_BRAIN_CT ? MS_MODALITY_CT
                : bp->contrast == MS_BRAIN_T2 || bp->contrast == MS_BRAIN_FLAIR ? MS_MODALITY_T2
                                                                               : MS_MODALITY_T1;
  q->fov_mm = bp->dims[0] * bp->spacing_mm[0];
  if (bp->contrast == MS_BRAIN_CT) {
    f->window.center = 40;
    f->window.width = 80;
  } else {
    f->window.center = 0.5; /* MR signal relative to the brightest tissue */
    f->window.width = 1;
  }
  /* MR acquisition of the slice (records/images_acq.c reads the shape and
   * contrast set above, and the noise setting) */
  ms__img_parse_acquisition(l, t, f, ij, iptr);
}

void ms__brain_field_free(ms__brain_field *b) {
  if (!b) return;
  ms__img_params_free(b->q, MS__BRAIN_PARAM_COUNT);
  free(b->atlas_dir);
  free(b);
}

void ms__brain_row_params(const ms__brain_field *b, const double *vals, ms_brain_params *out) {
  *out = b->p;
  for (int k = 0; k < MS__BRAIN_PARAM_COUNT; k++) {
    double v = vals[k];
    if (isnan(v)) continue;
    switch ((ms__brain_param_id)k) {
      case MS__BRAIN_AGE: out->age_years = v; break;
      case MS__BRAIN_HEAD_SCALE: out->head_scale = v; break;
      case MS__BRAIN_MODALITY: out->contrast = (ms_brain_contrast)(int)v; break;
      case MS__BRAIN_TUMOUR: out->tumour = (int)v; break;
      case MS__BRAIN_TUMOUR_LOBE: out->tumour_lobe = (ms_brain_lobe)(int)v; break;
      case MS__BRAIN_TUMOUR_SIZE: out->tumour_diameter_mm = v; break;
      case MS__BRAIN_GADOLINIUM: out->gadolinium = (int)v; break;
      case MS__BRAIN_WM_LESIONS: out->wm_lesions = (int)v; break;
      case MS__BRAIN_WM_LOAD: out->wm_load_ml = v; break;
      case MS__BRAIN_STROKE: out->stroke = (ms_brain_territory)(int)v; break;
      case MS__BRAIN_STROKE_SIZE: out->stroke_radius_mm = v; break;
      case MS__BRAIN_STROKE_SIDE: out->stroke_side = (int)v; break;
      default: break;
    }
  }
}
