/* medsynth phantom --kind brain: atlas-based brain MR volumes or slices
 * with exact tissue and AAL labels (medsynth/brain.h, docs/phantoms.md).
 *
 * File layout:
 *   /images/<name>      float32 (N, 1, D, H, W), or (N, 1, H, W) for --depth 1
 *   /masks/<name>       uint8 tissue labels, same shape
 *   /masks/<name>_aal   uint8 AAL regions, same shape
 *   /tables/<name>_info  one row per image: realised age, head scale,
 *                       smallest Jacobian determinant, tumour lobe and diameter,
 *                       volume of every tissue label
 * with spacing, contrast, intensity mode and both label tables as attributes.
 *
 * With --physics mr (2-D slices, --depth 1 by default) the noise-free slices
 * go through the MR acquisition of cli/phantom_physics.c instead: the
 * fastMRI layout of docs/physics.md, with /masks/<name>_aal beside the
 * tissue labels.
 *
 * Images are rendered --threads at a time, one per thread, and written in
 * index order: memory is --threads volumes whatever N, and the bytes do not
 * depend on --threads (an image is a pure function of its index). Any error or
 * SIGINT/SIGTERM (polled between images) aborts the writer and the staged
 * --nifti/--grid outputs. */
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "medsynth/brain.h"
#include "medsynth/io.h"
#include "medsynth/nifti.h"
#include "medsynth/parallel.h"
#include "medsynth/png.h"
#include "medsynth/table.h"
#include "medsynth/version.h"
#include "phantom_physics.h"

int ms__cli_phantom_brain(int argc, char **argv);

static const char *k_usage =
    "usage: medsynth phantom --kind brain -n N -o out.h5 [options]\n"
    "  --modality M        t1 (default), t2, flair, pd or ct (head CT in HU)\n"
    "  --intensities I     physics (default: tissue PD/T1/T2 through the signal equation)\n"
    "                      or random (per-label random intensities, domain randomisation)\n"
    "  --field T           1.5 or 3 tesla (default 3)\n"
    "  --sequence S        se, ir or gre (default: se; ir for flair)\n"
    "  --tr MS --te MS --ti MS --flip DEG   timing (default per modality)\n"
    "  --size S            width = height = S voxels; --width W, --height H\n"
    "  --depth D           planes (default 181; 1 = axial slices)\n"
    "  --spacing MM        in-plane voxel size (default 1); --slice-mm MM plane spacing\n"
    "  --orientation O     axial (default), coronal or sagittal: the plane of width x height\n"
    "  --slice-z MM        offset of the grid centre from the brain centre along the slice normal\n"
    "  -n N                number of subjects (default 1)\n"
    "  --seed K            seed (default 0)\n"
    "  --age Y             age in years (default: drawn 20..85); enlarges the ventricles\n"
    "  --atrophy MM        cortical thinning per year after 30 (default 0.01; 0 = off)\n"
    "  --head-scale X      head size factor 0.7..1.3 (default 1)\n"
    "  --tumour            one tumour per subject (necrotic core, enhancing rim, oedema)\n"
    "  --tumour-lobe L     any (default), frontal, parietal, temporal or occipital\n"
    "  --tumour-size MM    rim diameter 10..70 (default: drawn 20..50)\n"
    "  --gadolinium        post-contrast: the enhancing rim is bright on T1\n"
    "  --wm-lesions N      white-matter lesions per subject (0..64; default 0)\n"
    "  --wm-load ML        their designed total volume (default: drawn 0.05..0.5 ml per lesion)\n"
    "  --stroke T          ischaemic stroke in an arterial territory: aca, mca or pca (default none)\n"
    "  --stroke-size MM    radius of the infarct within the territory (default: drawn 20..45)\n"
    "  --stroke-side S     hemisphere of the stroke: left (MNI x < 0) or right (default: drawn)\n"
    "  --deform MM         sd of the random velocity field (default 3; 0 = off)\n"
    "  --deform-spacing MM control point spacing (default 32)\n"
    "  --rotate DEG        rotation range per axis (default 8)\n"
    "  --bias X            bias field strength (default 0.2)\n"
    "  --blur MM           Gaussian blur sd in-plane (default 0.5); --blur-z MM across planes\n"
    "  --noise X           Rician noise sd, fraction of the brightest tissue (default 0.02)\n"
    "  --ct-noise HU       CT noise sd (default 5)\n"
    "  --noise-free        no texture, blur, bias or noise\n"
    "  --atlas-dir DIR     templates (default " MS_BRAIN_ATLAS_DIR ", Debian's mricron-data)\n"
    "  --threads J         worker threads (default 1)\n"
    "  -o FILE             output HDF5 file\n"
    "  --name NAME         dataset name (default brain)\n"
    "  --nifti DIR         image_NNNNN.nii.gz, mask_NNNNN.nii.gz, aal_NNNNN.nii.gz (MNI-positioned)\n"
    "  --grid FILE         contact sheet of the middle plane of the first 64 subjects\n"
    "  --compression L     HDF5 deflate level 0..9 (default 4)\n"
    "  --force             replace an existing output file\n";

enum {
  B_KIND = 256, B_MOD, B_INT, B_FIELD, B_SEQ, B_TR, B_TE, B_TI, B_FLIP, B_SIZE, B_WIDTH, B_HEIGHT, B_DEPTH,
  B_SPACING, B_SLICE_MM, B_SLICE_Z, B_SEED, B_AGE, B_HEAD, B_DEFORM, B_DSPACING, B_ROT, B_BIAS, B_BLUR, B_BLURZ,
  B_NOISE, B_CTNOISE, B_ATROPHY, B_NOISEFREE, B_TUMOUR, B_TLOBE, B_TSIZE, B_GD, B_WML, B_WMLOAD, B_STROKE, B_SSIZE, B_SSIDE, B_ORIENT, B_ATLAS, B_THREADS, B_NAME, B_NIFTI, B_GRID, B_COMP, B_FORCE, B_HELP
};

static const struct option k_opts[] = {
    {"kind", 1, 0, B_KIND},         {"modality", 1, 0, B_MOD},       {"intensities", 1, 0, B_INT},
    {"field", 1, 0, B_FIELD},       {"sequence", 1, 0, B_SEQ},       {"tr", 1, 0, B_TR},
    {"te", 1, 0, B_TE},             {"ti", 1, 0, B_TI},              {"flip", 1, 0, B_FLIP},
    {"size", 1, 0, B_SIZE},         {"width", 1, 0, B_WIDTH},        {"height", 1, 0, B_HEIGHT},
    {"depth", 1, 0, B_DEPTH},       {"spacing", 1, 0, B_SPACING},    {"slice-mm", 1, 0, B_SLICE_MM},
    {"slice-z", 1, 0, B_SLICE_Z},   {"seed", 1, 0, B_SEED},          {"age", 1, 0, B_AGE},
    {"head-scale", 1, 0, B_HEAD},   {"deform", 1, 0, B_DEFORM},      {"deform-spacing", 1, 0, B_DSPACING},
    {"rotate", 1, 0, B_ROT},        {"bias", 1, 0, B_BIAS},          {"blur", 1, 0, B_BLUR},
    {"blur-z", 1, 0, B_BLURZ},      {"noise", 1, 0, B_NOISE},        {"noise-free", 0, 0, B_NOISEFREE},
    {"ct-noise", 1, 0, B_CTNOISE},  {"atrophy", 1, 0, B_ATROPHY},  {"tumour", 0, 0, B_TUMOUR},     {"tumour-lobe", 1, 0, B_TLOBE},  {"tumour-size", 1, 0, B_TSIZE},
    {"gadolinium", 0, 0, B_GD},     {"wm-lesions", 1, 0, B_WML},    {"wm-load", 1, 0, B_WMLOAD},
    {"stroke", 1, 0, B_STROKE},     {"stroke-size", 1, 0, B_SSIZE},  {"stroke-side", 1, 0, B_SSIDE},  {"orientation", 1, 0, B_ORIENT},     {"atlas-dir", 1, 0, B_ATLAS},   {"threads", 1, 0, B_THREADS},    {"name", 1, 0, B_NAME},
    {"nifti", 1, 0, B_NIFTI},       {"grid", 1, 0, B_GRID},          {"compression", 1, 0, B_COMP},
    {"force", 0, 0, B_FORCE},       {"help", 0, 0, B_HELP},          {0, 0, 0, 0}};

typedef struct {
  const char *out, *name, *nifti_dir, *grid, *atlas_dir;
  uint64_t n, seed;
  int threads, force, compression;
} brain_opts;

static ms_column column(const char *name, ms_coltype t, const char *unit) {
  ms_column c;
  memset(&c, 0, sizeof c);
  c.name = (char *)name;
  c.type = t;
  c.unit = (char *)unit;
  c.precision = -1;
  return c;
}

/* The run's options for its invocation, into out (stroke-side only when
 * given); returns their count. */
static size_t brain_pv(const brain_opts *o, const ms_brain_params *p, ms_cli_pv *out /* [64] */) {
  const ms_cli_pv pv[] = {
      {.option = "kind", .kind = MS_CLI_PV_STR, .s = "brain"},
      {.option = "modality", .kind = MS_CLI_PV_STR, .s = ms_brain_contrast_name(p->contrast)},
      {.option = "intensities", .kind = MS_CLI_PV_STR, .s = ms_brain_intensity_name(p->intensity)},
      {.option = "field", .kind = MS_CLI_PV_REAL, .x = p->field_t},
      {.option = "sequence", .kind = MS_CLI_PV_STR,
       .s = p->sequence == MS_BRAIN_SEQUENCE_COUNT ? NULL : ms_brain_sequence_name(p->sequence)},
      {.option = "tr", .kind = MS_CLI_PV_REAL, .x = p->tr_ms},
      {.option = "te", .kind = MS_CLI_PV_REAL, .x = p->te_ms},
      {.option = "ti", .kind = MS_CLI_PV_REAL, .x = p->ti_ms},
      {.option = "flip", .kind = MS_CLI_PV_REAL, .x = p->flip_deg},
      {.option = "width", .kind = MS_CLI_PV_INT, .i = p->dims[0]},
      {.option = "height", .kind = MS_CLI_PV_INT, .i = p->dims[1]},
      {.option = "depth", .kind = MS_CLI_PV_INT, .i = p->dims[2]},
      {.option = "spacing", .kind = MS_CLI_PV_REAL, .x = p->spacing_mm[0]},
      {.option = "slice-mm", .kind = MS_CLI_PV_REAL, .x = p->spacing_mm[2]},
      {.option = "slice-z", .kind = MS_CLI_PV_REAL, .x = p->slice_z_mm},
      {.option = "orientation", .kind = MS_CLI_PV_STR, .s = ms_brain_orientation_name(p->orientation)},
      {.option = "n", .kind = MS_CLI_PV_UINT, .u = o->n},
      {.option = "seed", .kind = MS_CLI_PV_UINT, .u = o->seed},
      {.option = "age", .kind = MS_CLI_PV_REAL, .x = p->age_years},
      {.option = "atrophy", .kind = MS_CLI_PV_REAL, .x = p->atrophy_mm_per_year},
      {.option = "head-scale", .kind = MS_CLI_PV_REAL, .x = p->head_scale},
      {.option = "tumour", .kind = MS_CLI_PV_BOOL, .i = p->tumour},
      {.option = "tumour-lobe", .kind = MS_CLI_PV_STR, .s = ms_brain_lobe_name(p->tumour_lobe)},
      {.option = "tumour-size", .kind = MS_CLI_PV_REAL, .x = p->tumour_diameter_mm},
      {.option = "gadolinium", .kind = MS_CLI_PV_BOOL, .i = p->gadolinium},
      {.option = "wm-lesions", .kind = MS_CLI_PV_INT, .i = p->wm_lesions},
      {.option = "wm-load", .kind = MS_CLI_PV_REAL, .x = p->wm_load_ml},
      {.option = "stroke", .kind = MS_CLI_PV_STR, .s = ms_brain_territory_name(p->stroke)},
      {.option = "stroke-size", .kind = MS_CLI_PV_REAL, .x = p->stroke_radius_mm},
      {.option = "deform", .kind = MS_CLI_PV_REAL, .x = p->deform_mm},
      {.option = "deform-spacing", .kind = MS_CLI_PV_REAL, .x = p->deform_spacing_mm},
      {.option = "rotate", .kind = MS_CLI_PV_REAL, .x = p->rotate_deg},
      {.option = "bias", .kind = MS_CLI_PV_REAL, .x = p->bias},
      {.option = "blur", .kind = MS_CLI_PV_REAL, .x = p->blur_mm[0]},
      {.option = "blur-z", .kind = MS_CLI_PV_REAL, .x = p->blur_mm[2]},
      {.option = "noise", .kind = MS_CLI_PV_REAL, .x = p->noise},
      {.option = "ct-noise", .kind = MS_CLI_PV_REAL, .x = p->ct_noise_hu},
      {.option = "noise-free", .kind = MS_CLI_PV_BOOL, .i = p->noise_free},
      {.option = "name", .kind = MS_CLI_PV_STR, .s = o->name},
      /* last: only when given (the invocation of a drawn side is unchanged) */
      {.option = "stroke-side", .kind = MS_CLI_PV_STR, .s = p->stroke_side ? "right" : "left"},
  };
  size_t n = sizeof pv / sizeof *pv - (p->stroke_side < 0);
  memcpy(out, pv, n * sizeof *pv);
  return n;
}

static char *invocation(const brain_opts *o, const ms_brain_params *p) {
  ms_cli_pv pv[64];
  return ms_cli_provenance("phantom", pv, brain_pv(o, p, pv));
}

static ms_status write_nifti(const brain_opts *o, const ms_brain_atlas *a, const ms_brain_params *p,
                             const ms_brain_image *img, uint64_t idx, ms_diag *d) {
  ms_nifti_desc n;
  ms_nifti_desc_init(&n);
  for (int i = 0; i < 3; i++) {
    n.dim[i] = img->dims[i];
    n.pixdim[i] = img->spacing[i];
  }
  ms_brain_origin(a, p, n.origin_mm);
  ms_brain_axes(p->orientation, n.axes);
  snprintf(n.descrip, sizeof n.descrip, "medsynth brain %s subject %llu", ms_brain_contrast_name(p->contrast),
           (unsigned long long)idx);
  char path[4096];
  n.dtype = MS_NIFTI_FLOAT32;
  snprintf(path, sizeof path, "%s/image_%05llu.nii.gz", o->nifti_dir, (unsigned long long)idx);
  ms_status st = ms_nifti_write(path, &n, img->image, d);
  n.dtype = MS_NIFTI_UINT8;
  snprintf(path, sizeof path, "%s/mask_%05llu.nii.gz", o->nifti_dir, (unsigned long long)idx);
  if (st == MS_OK) st = ms_nifti_write(path, &n, img->labels, d);
  snprintf(path, sizeof path, "%s/aal_%05llu.nii.gz", o->nifti_dir, (unsigned long long)idx);
  if (st == MS_OK) st = ms_nifti_write(path, &n, img->aal, d);
  return st;
}

enum { S_IMAGE, S_AGE, S_HEAD, S_JAC, S_TLOBE, S_TDIAM, S_VOL0 };

/* A batch of --threads subjects rendered side by side (one per thread; the
 * library's parallel work inside each then runs on that thread), into
 * buffers of their own, written afterwards in index order. */
typedef struct {
  ms_status st;
  ms_diag d;
} gen_item;

typedef struct {
  const ms_brain_atlas *a;
  const ms_brain_params *p;
  uint64_t seed, first;
  ms_brain_image *imgs;
  gen_item *items;
} gen_batch;

static void gen_one(void *ctx, size_t b, size_t worker) {
  (void)worker;
  gen_batch *g = ctx;
  ms_diag_init(&g->items[b].d);
  g->items[b].st = ms_brain_generate(&g->imgs[b], g->a, g->p, g->seed, g->first + b, &g->items[b].d);
}

static ms_status run(const brain_opts *oi, const ms_brain_params *p, ms_diag *d) {
  brain_opts o = *oi;
  ms_brain_atlas *a = NULL;
  int T = o.threads;
  ms_brain_image *imgs = calloc((size_t)T, sizeof *imgs);
  gen_item *items = calloc((size_t)T, sizeof *items);
  ms_writer *w = NULL;
  ms_cli_outputs outs = {0};
  ms_chunk *sc = NULL;
  float *gimg = NULL;
  uint8_t *gmask = NULL;
  char *vol_names[MS_BRAIN_TISSUE_COUNT] = {0};
  ms_status st;
  if ((st = ms_brain_params_check(p, d)) != MS_OK) goto done;
  if (!imgs || !items) {
    st = ms_diag_add(d, MS_ERR_NOMEM, NULL, 0, 0, NULL, "out of memory");
    goto done;
  }
  if ((st = ms_brain_atlas_load(&a, o.atlas_dir, d)) != MS_OK) goto done;
  for (int t = 0; t < T; t++)
    if ((st = ms_brain_image_init(&imgs[t], p, d)) != MS_OK) goto done;
  size_t plane = (size_t)p->dims[0] * p->dims[1], n_grid = o.grid ? (o.n < 64 ? (size_t)o.n : 64) : 0;
  if (n_grid && (!(gimg = malloc(n_grid * plane * sizeof(float))) || !(gmask = malloc(n_grid * plane)))) {
    st = ms_diag_add(d, MS_ERR_NOMEM, NULL, 0, 0, NULL, "out of memory for the contact sheet");
    goto done;
  }
  if ((st = ms_cli_open_h5(&w, o.out, o.force, o.compression, o.threads, d)) != MS_OK) goto done;
  if ((o.nifti_dir && (st = ms_cli_outputs_add(&outs, oi->nifti_dir, 0, &o.nifti_dir, d))) ||
      (o.grid && (st = ms_cli_outputs_add(&outs, oi->grid, 1, &o.grid, d))))
    goto done;
  char ipath[256], mpath[256], apath[256], sname[200];
  snprintf(ipath, sizeof ipath, "/images/%s", o.name);
  snprintf(mpath, sizeof mpath, "/masks/%s", o.name);
  snprintf(apath, sizeof apath, "/masks/%s_aal", o.name);
  snprintf(sname, sizeof sname, "%s_info", o.name);
  uint64_t dims[5] = {o.n, 1, (uint64_t)p->dims[2], (uint64_t)p->dims[1], (uint64_t)p->dims[0]};
  int rank = 5;
  if (p->dims[2] == 1) {
    dims[2] = (uint64_t)p->dims[1];
    dims[3] = (uint64_t)p->dims[0];
    rank = 4;
  }
  if ((st = ms_writer_begin_array(w, ipath, MS_DT_FLOAT32, rank, dims)) != MS_OK ||
      (st = ms_writer_begin_array(w, mpath, MS_DT_UINT8, rank, dims)) != MS_OK ||
      (st = ms_writer_begin_array(w, apath, MS_DT_UINT8, rank, dims)) != MS_OK)
    goto done;
  ms_column cols[S_VOL0 + MS_BRAIN_TISSUE_COUNT];
  cols[S_IMAGE] = column("row", MS_COL_INT64, NULL);
  cols[S_AGE] = column("age_years", MS_COL_FLOAT64, "years");
  cols[S_HEAD] = column("head_scale", MS_COL_FLOAT64, NULL);
  cols[S_JAC] = column("min_jacobian", MS_COL_FLOAT64, NULL);
  cols[S_TLOBE] = column("tumour_lobe", MS_COL_STRING, NULL);
  cols[S_TLOBE].str_width = 10;
  cols[S_TDIAM] = column("tumour_diameter_mm", MS_COL_FLOAT64, "mm");
  for (int l = 0; l < MS_BRAIN_TISSUE_COUNT; l++) {
    if (asprintf(&vol_names[l], "volume_%s_mm3", ms_brain_tissue_name(l)) < 0) {
      vol_names[l] = NULL;
      st = ms_diag_add(d, MS_ERR_NOMEM, NULL, 0, 0, NULL, "out of memory");
      goto done;
    }
    cols[S_VOL0 + l] = column(vol_names[l], MS_COL_FLOAT64, "mm3");
  }
  ms_table_schema ss = {0};
  ss.name = sname;
  ss.n_columns = S_VOL0 + MS_BRAIN_TISSUE_COUNT;
  ss.columns = cols;
  if ((st = ms_chunk_new(&sc, &ss, 1)) != MS_OK) {
    st = ms_diag_add(d, MS_ERR_NOMEM, NULL, 0, 0, NULL, "out of memory");
    goto done;
  }
  ms_sink sink = ms_writer_sink(w);
  if ((st = sink.begin_table(sink.ctx, &ss, o.n)) != MS_OK) goto done;
  ms_cli_progress prog;
  ms_cli_progress_init(&prog, "brain", o.n);
  const ms_cancel_flag *cancel = ms_cli_cancel_flag();
  gen_batch gb = {a, p, o.seed, 0, imgs, items};
  for (uint64_t first = 0; first < o.n; first += (uint64_t)T) {
    if (ms_cli_signal() || (cancel && *cancel)) {
      st = ms_diag_add(d, MS_ERR_CANCELLED, NULL, 0, 0, NULL, "cancelled");
      goto done;
    }
    size_t nb = o.n - first < (uint64_t)T ? (size_t)(o.n - first) : (size_t)T;
    gb.first = first;
    ms_parallel_for(nb, T, gen_one, &gb);
    for (size_t b = 0; b < nb; b++) {
      if (items[b].st != MS_OK && st == MS_OK) {
        st = items[b].st;
        ms_diag_append(d, &items[b].d);
      }
      ms_diag_deinit(&items[b].d);
    }
    if (st != MS_OK) goto done;
    for (size_t b = 0; b < nb; b++) {
      uint64_t i = first + b;
      const ms_brain_image *im = &imgs[b];
      if ((st = ms_writer_write_items(w, ipath, i, 1, im->image)) != MS_OK ||
          (st = ms_writer_write_items(w, mpath, i, 1, im->labels)) != MS_OK ||
          (st = ms_writer_write_items(w, apath, i, 1, im->aal)) != MS_OK)
        goto done;
      ms_chunk_reset(sc);
      sc->first_row = i;
      sc->n_rows = 1;
      ((int64_t *)sc->cols[S_IMAGE].data)[0] = (int64_t)i;
      ((double *)sc->cols[S_AGE].data)[0] = im->age_years;
      ((double *)sc->cols[S_HEAD].data)[0] = im->head_scale;
      ((double *)sc->cols[S_JAC].data)[0] = im->min_jacobian;
      snprintf((char *)sc->cols[S_TLOBE].data, 11, "%s", p->tumour ? ms_brain_lobe_name(im->tumour_lobe) : "");
      ((double *)sc->cols[S_TDIAM].data)[0] = im->tumour_diameter_mm;
      for (int l = 0; l < MS_BRAIN_TISSUE_COUNT; l++) ((double *)sc->cols[S_VOL0 + l].data)[0] = im->volume_mm3[l];
      if ((st = sink.write_chunk(sink.ctx, sc)) != MS_OK) goto done;
      if (i < n_grid) {
        size_t mid = (size_t)(p->dims[2] / 2) * plane;
        memcpy(gimg + i * plane, im->image + mid, plane * sizeof(float));
        memcpy(gmask + i * plane, im->labels + mid, plane);
      }
      if (o.nifti_dir && (st = write_nifti(&o, a, p, im, i, d)) != MS_OK) goto done;
    }
    ms_cli_progress_update(&prog, first + nb);
  }
  ms_cli_progress_done(&prog);
  if ((st = sink.end_table(sink.ctx, sname)) != MS_OK) goto done;
  char *tl = ms_brain_label_table_json(a, MS_BRAIN_LABELS_TISSUE), *al = ms_brain_label_table_json(a, MS_BRAIN_LABELS_AAL);
  char *inv = invocation(&o, p);
  if (!tl || !al || !inv) st = ms_diag_add(d, MS_ERR_NOMEM, NULL, 0, 0, NULL, "out of memory");
  const char *objs[3] = {ipath, mpath, apath};
  for (int k = 0; k < 3 && st == MS_OK; k++) {
    if ((st = ms_writer_set_object_attr_string(w, objs[k], "kind", "brain")) ||
        (st = ms_writer_set_object_attr_string(w, objs[k], "modality", ms_brain_contrast_name(p->contrast))) ||
        (st = ms_writer_set_object_attr_string(w, objs[k], "intensities", ms_brain_intensity_name(p->intensity))) ||
        (st = ms_writer_set_object_attr_double(w, objs[k], "spacing_x_mm", p->spacing_mm[0])) ||
        (st = ms_writer_set_object_attr_double(w, objs[k], "spacing_y_mm", p->spacing_mm[1])) ||
        (st = ms_writer_set_object_attr_double(w, objs[k], "spacing_z_mm", p->spacing_mm[2])) ||
        (st = ms_writer_set_object_attr_string(w, objs[k], "label_table", k == 2 ? al : tl)))
      break;
  }
  int ct = p->contrast == MS_BRAIN_CT;
  if (st == MS_OK) st = ms_writer_set_object_attr_string(w, ipath, "units", ct ? "HU" : "a.u.");
  ms_provenance pv = {.command = "phantom", .seed = o.seed, .invocation = inv};
  if (st == MS_OK) st = ms_writer_set_provenance(w, &pv);
  free(tl);
  free(al);
  free(inv);
  if (st != MS_OK) goto done;
  if (n_grid) {
    ms_sheet_params so;
    ms_sheet_params_init(&so);
    so.window_center = ct ? 40 : 0.5; /* CT: the brain window */
    so.window_width = ct ? 80 : 1.0;
    so.overlay = MS_OVERLAY_CONTOUR;
    if ((st = ms_png_contact_sheet(o.grid, gimg, gmask, n_grid, p->dims[1], p->dims[0], &so, d)) != MS_OK) goto done;
  }
  st = ms_writer_commit(w, d);
  w = NULL;
  if (st == MS_OK) st = ms_cli_outputs_commit(&outs, d);
done:
  if (w) ms_writer_abort(w);
  ms_cli_outputs_name_diag(&outs, d);
  ms_cli_outputs_abort(&outs);
  ms_chunk_free(sc);
  for (int l = 0; l < MS_BRAIN_TISSUE_COUNT; l++) free(vol_names[l]);
  free(gimg);
  free(gmask);
  if (imgs)
    for (int t = 0; t < T; t++) ms_brain_image_deinit(&imgs[t]);
  free(imgs);
  free(items);
  ms_brain_atlas_free(a);
  return st;
}

/* ---- --physics mr: the brain as a source of ms_cli_physics_run_source ---- */

typedef struct {
  ms_brain_atlas *a;
  const ms_brain_params *p; /* the truth's: noise-free */
  ms_brain_image *imgs;     /* one per worker */
} brain_src;

static ms_status brain_render(void *ctx, size_t worker, uint64_t seed, uint64_t idx, float *image, uint8_t *mask,
                              uint8_t *aux, ms_diag *d) {
  const brain_src *b = ctx;
  ms_brain_image *img = &b->imgs[worker];
  ms_status st = ms_brain_generate(img, b->a, b->p, seed, idx, d);
  if (st != MS_OK) return st;
  memcpy(image, img->image, img->n_voxels * sizeof(float));
  memcpy(mask, img->labels, img->n_voxels);
  if (aux) memcpy(aux, img->aal, img->n_voxels);
  return MS_OK;
}

static char *brain_labels(void *ctx, int aux) {
  return ms_brain_label_table_json(((const brain_src *)ctx)->a, aux ? MS_BRAIN_LABELS_AAL : MS_BRAIN_LABELS_TISSUE);
}

/* The noise-free slices acquired by the MR physics of cli/phantom_physics.c
 * (fastMRI layout, /masks/<name> and /masks/<name>_aal of the truth); the
 * complex noise has the sd of the brain's Rician noise (--noise, a fraction
 * of the brightest tissue, to which MR images are scaled). */
static ms_status run_physics(const brain_opts *o, const ms_cli_physics *ph, const ms_brain_params *p, ms_diag *d) {
  if (ph->kind != 2)
    return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, "--physics",
                       "brain images are MR contrasts: CT physics does not apply (use --physics mr)");
  if (p->contrast == MS_BRAIN_CT)
    return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, "--physics", "--physics mr needs --modality t1, t2, flair or pd");
  if (p->dims[2] != 1)
    return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, "--physics",
                       "acquisition physics works on 2-D slices; leave out --depth (or give --depth 1)");
  ms_brain_params tp = *p;
  tp.noise_free = 1; /* the truth; the acquisition adds the noise */
  ms_status st = ms_brain_params_check(&tp, d);
  if (st != MS_OK) return st;
  brain_src b = {NULL, &tp, calloc((size_t)o->threads, sizeof(ms_brain_image))};
  if (!b.imgs) return ms_diag_add(d, MS_ERR_NOMEM, NULL, 0, 0, NULL, "out of memory");
  ms_cli_pv pv[64];
  ms_cli_physics_source src = {.width = p->dims[0], .height = p->dims[1], .pixel_mm = p->spacing_mm[0],
                               .noise = !p->noise_free, .mr_noise_sd = p->noise_free ? 0 : p->noise,
                               .kind = "brain", .modality = ms_brain_contrast_name(p->contrast), .aux_mask = "_aal",
                               .render = brain_render, .labels = brain_labels, .pv = pv, .n_pv = brain_pv(o, p, pv),
                               .ctx = &b};
  st = ms_brain_atlas_load(&b.a, o->atlas_dir, d);
  for (int t = 0; t < o->threads && st == MS_OK; t++) st = ms_brain_image_init(&b.imgs[t], &tp, d);
  ms_cli_physics_run_params pro = {o->out, o->name, o->n, o->seed, o->threads, o->force, o->compression};
  if (st == MS_OK) st = ms_cli_physics_run_source(ph, &pro, &src, 0, 0, d);
  for (int t = 0; t < o->threads; t++) ms_brain_image_deinit(&b.imgs[t]);
  free(b.imgs);
  ms_brain_atlas_free(b.a);
  return st;
}

static void parse_num(const char *s, double *v, int *bad) {
  if (ms_cli_parse_double(s, v)) *bad = 1;
}

int ms__cli_phantom_brain(int argc, char **argv) {
  ms_brain_params p;
  ms_brain_params_init(&p);
  brain_opts o = {0};
  o.n = 1;
  o.threads = 1;
  o.compression = 4;
  o.name = "brain";
  const char *mod = "t1", *inten = "physics", *seq = NULL, *lobe = "any", *stroke = "none", *orient = "axial",
             *side = NULL;
  double wml = 0, size = -1, width = -1, height = -1, depth = -1, spacing = 1, slice_mm = NAN, blur_z = NAN, comp = 4,
         threads = 1;
  int bad = 0;
  ms_cli_physics ph; /* --physics and its options, taken out of argv */
  if (ms_cli_physics_extract(&argc, argv, &ph)) return MS_EXIT_USAGE;
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, "n:o:h", k_opts, NULL)) != -1) {
    switch (c) {
      case B_KIND: if (strcmp(optarg, "brain")) bad = 1; break;
      case B_MOD: mod = optarg; break;
      case B_INT: inten = optarg; break;
      case B_FIELD: parse_num(optarg, &p.field_t, &bad); break;
      case B_SEQ: seq = optarg; break;
      case B_TR: parse_num(optarg, &p.tr_ms, &bad); break;
      case B_TE: parse_num(optarg, &p.te_ms, &bad); break;
      case B_TI: parse_num(optarg, &p.ti_ms, &bad); break;
      case B_FLIP: parse_num(optarg, &p.flip_deg, &bad); break;
      case B_SIZE: parse_num(optarg, &size, &bad); break;
      case B_WIDTH: parse_num(optarg, &width, &bad); break;
      case B_HEIGHT: parse_num(optarg, &height, &bad); break;
      case B_DEPTH: parse_num(optarg, &depth, &bad); break;
      case B_SPACING: parse_num(optarg, &spacing, &bad); break;
      case B_SLICE_MM: parse_num(optarg, &slice_mm, &bad); break;
      case B_SLICE_Z: parse_num(optarg, &p.slice_z_mm, &bad); break;
      case 'n': if (ms_cli_parse_u64(optarg, &o.n) || o.n == 0) bad = 1; break;
      case B_SEED: if (ms_cli_parse_u64(optarg, &o.seed)) bad = 1; break;
      case B_AGE: parse_num(optarg, &p.age_years, &bad); break;
      case B_HEAD: parse_num(optarg, &p.head_scale, &bad); break;
      case B_DEFORM: parse_num(optarg, &p.deform_mm, &bad); break;
      case B_DSPACING: parse_num(optarg, &p.deform_spacing_mm, &bad); break;
      case B_ROT: parse_num(optarg, &p.rotate_deg, &bad); break;
      case B_BIAS: parse_num(optarg, &p.bias, &bad); break;
      case B_BLUR: parse_num(optarg, &p.blur_mm[0], &bad); p.blur_mm[1] = p.blur_mm[0]; break;
      case B_BLURZ: parse_num(optarg, &blur_z, &bad); break;
      case B_NOISE: parse_num(optarg, &p.noise, &bad); break;
      case B_ATROPHY: parse_num(optarg, &p.atrophy_mm_per_year, &bad); break;
      case B_CTNOISE: parse_num(optarg, &p.ct_noise_hu, &bad); break;
      case B_NOISEFREE: p.noise_free = 1; break;
      case B_TUMOUR: p.tumour = 1; break;
      case B_TLOBE: lobe = optarg; break;
      case B_TSIZE: parse_num(optarg, &p.tumour_diameter_mm, &bad); break;
      case B_GD: p.gadolinium = 1; break;
      case B_WML: parse_num(optarg, &wml, &bad); break;
      case B_WMLOAD: parse_num(optarg, &p.wm_load_ml, &bad); break;
      case B_STROKE: stroke = optarg; break;
      case B_ORIENT: orient = optarg; break;
      case B_SSIZE: parse_num(optarg, &p.stroke_radius_mm, &bad); break;
      case B_SSIDE: side = optarg; break;
      case B_ATLAS: o.atlas_dir = optarg; break;
      case B_THREADS: parse_num(optarg, &threads, &bad); break;
      case 'o': o.out = optarg; break;
      case B_NAME: o.name = optarg; break;
      case B_NIFTI: o.nifti_dir = optarg; break;
      case B_GRID: o.grid = optarg; break;
      case B_COMP: parse_num(optarg, &comp, &bad); break;
      case B_FORCE: o.force = 1; break;
      case 'h':
      case B_HELP: fputs(k_usage, stdout); fputs(ms_cli_physics_usage, stdout); return MS_EXIT_OK;
      default: bad = 1;
    }
  }
  if (optind < argc) bad = 1;
  if (!bad && !o.out) {
    ms_cli_error("phantom", "missing -o FILE");
    bad = 1;
  }
  if (!bad && (p.contrast = ms_brain_contrast_from_name(mod)) == MS_BRAIN_CONTRAST_COUNT) {
    ms_cli_error("phantom", "unknown --modality \"%s\" for the brain (t1, t2, flair, pd, ct)", mod);
    bad = 1;
  }
  if (!bad && (p.intensity = ms_brain_intensity_from_name(inten)) == MS_BRAIN_INTENSITY_COUNT) {
    ms_cli_error("phantom", "unknown --intensities \"%s\" (physics, random)", inten);
    bad = 1;
  }
  if (!bad && (p.tumour_lobe = ms_brain_lobe_from_name(lobe)) == MS_BRAIN_LOBE_COUNT) {
    ms_cli_error("phantom", "unknown --tumour-lobe \"%s\" (any, frontal, parietal, temporal, occipital)", lobe);
    bad = 1;
  }
  if (!bad && ((p.orientation = ms_brain_orientation_from_name(orient)) == MS_BRAIN_ORIENTATION_COUNT)) {
    ms_cli_error("phantom", "unknown --orientation \"%s\" (axial, coronal, sagittal)", orient);
    bad = 1;
  }
  if (!bad && ((p.stroke = ms_brain_territory_from_name(stroke)) == MS_BRAIN_TERRITORY_COUNT)) {
    ms_cli_error("phantom", "unknown --stroke \"%s\" (aca, mca, pca)", stroke);
    bad = 1;
  }
  if (!bad && side) {
    if (!strcmp(side, "left")) p.stroke_side = 0;
    else if (!strcmp(side, "right")) p.stroke_side = 1;
    else {
      ms_cli_error("phantom", "unknown --stroke-side \"%s\" (left, right)", side);
      bad = 1;
    }
  }
  if (!bad && (wml != floor(wml) || wml < 0 || wml > MS_BRAIN_MAX_WM_LESIONS)) {
    ms_cli_error("phantom", "--wm-lesions %g: a whole number in 0..%d", wml, MS_BRAIN_MAX_WM_LESIONS);
    bad = 1;
  }
  p.wm_lesions = (int)wml;
  if (!bad && seq) {
    if (!strcmp(seq, "se")) p.sequence = MS_BRAIN_SPIN_ECHO;
    else if (!strcmp(seq, "ir")) p.sequence = MS_BRAIN_INVERSION_RECOVERY;
    else if (!strcmp(seq, "gre")) p.sequence = MS_BRAIN_GRADIENT_ECHO;
    else {
      ms_cli_error("phantom", "unknown --sequence \"%s\" (se, ir, gre)", seq);
      bad = 1;
    }
  }
  if (!bad && (threads < 1 || threads > 256 || threads != (int)threads || comp < 0 || comp > 9 || comp != (int)comp)) {
    ms_cli_error("phantom", "--threads must be 1..256 and --compression 0..9");
    bad = 1;
  }
  if (!bad && ph.kind && (o.nifti_dir || o.grid)) {
    ms_cli_error("phantom", "--physics writes HDF5 only (no --grid or --nifti)");
    bad = 1;
  }
  if (bad) {
    fputs(k_usage, stderr);
    fputs(ms_cli_physics_usage, stderr);
    return MS_EXIT_USAGE;
  }
  if (size > 0) {
    if (width < 0) width = size;
    if (height < 0) height = size;
  }
  double dm[3] = {width > 0 ? width : 181, height > 0 ? height : 217, depth > 0 ? depth : ph.kind ? 1 : 181};
  for (int i = 0; i < 3; i++) p.dims[i] = dm[i] >= 1 && dm[i] <= 4096 && dm[i] == (int)dm[i] ? (int)dm[i] : 0;
  p.spacing_mm[0] = p.spacing_mm[1] = spacing;
  p.spacing_mm[2] = isnan(slice_mm) ? spacing : slice_mm;
  p.blur_mm[2] = isnan(blur_z) ? p.blur_mm[0] : blur_z;
  o.threads = (int)threads;
  o.compression = (int)comp;
  omp_set_num_threads(o.threads);
  ms_cli_catch_signals();
  ms_diag d;
  ms_diag_init(&d);
  ms_status st = ph.kind ? run_physics(&o, &ph, &p, &d) : run(&o, &p, &d);
  ms_cli_print_diag(&d);
  ms_diag_deinit(&d);
  return st == MS_OK ? MS_EXIT_OK : ms_cli_exit_code(st);
}
