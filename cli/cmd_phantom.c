/* medsynth phantom: procedural CT/MR phantoms with exact masks to HDF5, plus
 * optional PNGs, a contact sheet and NIfTI files.
 *
 * File layout (docs/phantoms.md):
 *   /images/<name>  float32 (N, 1, H, W) or (N, 1, D, H, W)  HU or MR signal
 *   /masks/<name>   uint8, same shape, labels of medsynth/phantom.h
 *   /tables/<name>_lesions   one row per lesion (measured on the mask)
 *   /tables/<name>_info      one row per image (realised patient parameters)
 * with spacing, kind, modality, units and the label table as attributes.
 *
 * Images are generated in batches, each image by one thread into its own
 * slot, then written in index order, so memory is flat in N and the bytes do
 * not depend on --threads. Any error, or SIGINT/SIGTERM (polled once per
 * batch), aborts the writer and the staged --png/--nifti/--grid outputs
 * (cli/outputs.c): no partial file. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "medsynth/dicom.h"
#include "phantom_physics.h"
#include "medsynth/io.h"
#include "medsynth/nifti.h"
#include "medsynth/parallel.h"
#include "medsynth/phantom.h"
#include "medsynth/phantom_table.h"
#include "medsynth/png.h"
#include "medsynth/table.h"
#include "medsynth/version.h"

static const char *k_usage =
    "usage: medsynth phantom --kind head|chest|abdomen -n N -o out.h5 [options]\n"
    "  --kind K            head, chest or abdomen; brain has options of its own\n"
    "                      (medsynth phantom --kind brain --help)\n"
    "  --modality M        ct (default), t1 or t2\n"
    "  --size S            width = height = S pixels (default 256)\n"
    "  --width W, --height H\n"
    "  --depth D           render 3-D volumes of D planes (default: 2-D slices)\n"
    "  --fov MM            field of view width (default head 240, chest 440, abdomen 420)\n"
    "  --slice-mm MM       plane spacing of volumes (default: pixel spacing)\n"
    "  --slice-z MM        z of 2-D slices (default 0)\n"
    "  -n N                number of images (default 1)\n"
    "  --seed K            seed (default 0)\n"
    "  --lesions N|MIN:MAX lesions per image (default 0)\n"
    "  --lesion-organ NAME organ holding lesions (default white_matter/lung/liver)\n"
    "  --lesion-size MIN:MAX  lesion diameter in mm (default 6:20)\n"
    "  --irregularity X    lesion outline irregularity 0..0.5 (default 0.15)\n"
    "  --contrast MIN:MAX  lesion contrast factor (default 0.8:1.2)\n"
    "  --nodule-type T     lung nodules: solid (default), part-solid, ground-glass or mixed\n"
    "  --nodule-margin M   lung nodules: smooth (default), lobulated, spiculated or mixed\n"
    "  --nodule-size C     lung nodules: any (default: --lesion-size), <6mm, 6-8mm, 8-15mm or >=15mm\n"
    "  --dose D            CT dose in mAs (default 100; noise variance ~ 1/dose)\n"
    "  --mr-noise X        MR Rician noise sd, fraction of white matter (default 0.02)\n"
    "  --bias X            MR bias field strength (default 0.15)\n"
    "  --noise-free        no noise, bias or tissue jitter\n"
    "  --supersample S     partial-volume supersampling S x S (default 1)\n"
    "  --rotate DEG --scale MIN:MAX --elastic MM --elastic-grid G\n"
    "  --intensity-shift X --intensity-scale X   augmentation (default off)\n"
    "  --threads J         worker threads (default 1)\n"
    "  -o FILE             output HDF5 file\n"
    "  --name NAME         dataset name under /images and /masks (default: the kind)\n"
    "  --png DIR           image_NNNNN.png (windowed) and mask_NNNNN.png per image\n"
    "  --grid FILE         contact sheet of the first 64 images with mask contours\n"
    "  --window NAME|C:W   display window (lung, mediastinum, bone, brain, abdomen)\n"
    "  --nifti DIR         image_NNNNN.nii.gz and mask_NNNNN.nii.gz per image\n"
    "  --dicom DIR         DICOM per image: DIR/NNNNN/IMG*.dcm (CT or MR series) and SEG.dcm\n"
    "                      (segmentation of every label); DIR appears only when complete\n"
    "  --compression L     HDF5 deflate level 0..9 (default 4)\n"
    "  --force             replace an existing output file\n";

enum {
  OPT_KIND = 256, OPT_MOD, OPT_SIZE, OPT_WIDTH, OPT_HEIGHT, OPT_DEPTH, OPT_FOV, OPT_SLICE_MM, OPT_SLICE_Z,
  OPT_SEED, OPT_LESIONS, OPT_ORGAN, OPT_LSIZE, OPT_IRR, OPT_CONTRAST, OPT_DOSE, OPT_MRNOISE, OPT_BIAS,
  OPT_NOISEFREE, OPT_SUPER, OPT_ROT, OPT_SCALE, OPT_ELASTIC, OPT_EGRID, OPT_ISHIFT, OPT_ISCALE,
  OPT_THREADS, OPT_NAME, OPT_PNG, OPT_GRID, OPT_WINDOW, OPT_NIFTI, OPT_DICOM, OPT_COMP, OPT_FORCE, OPT_HELP,
  OPT_NODULE, OPT_MARGIN, OPT_NSIZE
};

static const struct option k_opts[] = {
    {"kind", 1, 0, OPT_KIND},       {"modality", 1, 0, OPT_MOD},      {"size", 1, 0, OPT_SIZE},
    {"width", 1, 0, OPT_WIDTH},     {"height", 1, 0, OPT_HEIGHT},     {"depth", 1, 0, OPT_DEPTH},
    {"fov", 1, 0, OPT_FOV},         {"slice-mm", 1, 0, OPT_SLICE_MM}, {"slice-z", 1, 0, OPT_SLICE_Z},
    {"seed", 1, 0, OPT_SEED},       {"lesions", 1, 0, OPT_LESIONS},   {"lesion-organ", 1, 0, OPT_ORGAN},
    {"lesion-size", 1, 0, OPT_LSIZE}, {"irregularity", 1, 0, OPT_IRR}, {"contrast", 1, 0, OPT_CONTRAST},
    {"dose", 1, 0, OPT_DOSE},       {"mr-noise", 1, 0, OPT_MRNOISE},  {"bias", 1, 0, OPT_BIAS},
    {"noise-free", 0, 0, OPT_NOISEFREE}, {"supersample", 1, 0, OPT_SUPER}, {"rotate", 1, 0, OPT_ROT},
    {"scale", 1, 0, OPT_SCALE},     {"elastic", 1, 0, OPT_ELASTIC},   {"elastic-grid", 1, 0, OPT_EGRID},
    {"intensity-shift", 1, 0, OPT_ISHIFT}, {"intensity-scale", 1, 0, OPT_ISCALE},
    {"threads", 1, 0, OPT_THREADS}, {"name", 1, 0, OPT_NAME},         {"png", 1, 0, OPT_PNG},
    {"grid", 1, 0, OPT_GRID},       {"window", 1, 0, OPT_WINDOW},     {"nifti", 1, 0, OPT_NIFTI}, {"dicom", 1, 0, OPT_DICOM},
    {"compression", 1, 0, OPT_COMP}, {"force", 0, 0, OPT_FORCE},      {"help", 0, 0, OPT_HELP},
    {"nodule-type", 1, 0, OPT_NODULE},
    {"nodule-margin", 1, 0, OPT_MARGIN},
    {"nodule-size", 1, 0, OPT_NSIZE},
    {0, 0, 0, 0}};

static int parse_int(const char *s, int lo, int hi, int *out) {
  int64_t v;
  if (ms_cli_parse_i64(s, &v) || v < lo || v > hi) return -1;
  *out = (int)v;
  return 0;
}

/* "A:B" or "A" (then B = A). */
static int parse_range(const char *s, double *a, double *b) {
  char buf[128];
  snprintf(buf, sizeof buf, "%s", s);
  char *c = strchr(buf, ':');
  if (c) *c = '\0';
  if (ms_cli_parse_double(buf, a)) return -1;
  if (!c) {
    *b = *a;
    return 0;
  }
  return ms_cli_parse_double(c + 1, b);
}

typedef struct {
  const char *out, *name, *png_dir, *grid, *nifti_dir, *window, *dicom_dir;
  uint64_t n, seed;
  int threads, force, compression;
} run_opts;

static ms_status write_png_outputs(const run_opts *ro, const ms_phantom_params *p, const ms_phantom_image *img,
                                   uint64_t idx, ms_window win, ms_diag *d) {
  int W = img->width, H = img->height;
  size_t plane = (size_t)W * H, mid = (size_t)(img->depth / 2) * plane;
  char path[4096];
  ms_status st = MS_OK;
  if (ro->png_dir) {
    uint8_t *g = malloc(plane);
    if (!g) return ms_diag_add(d, MS_ERR_NOMEM, NULL, 0, 0, NULL, "out of memory");
    for (size_t e = 0; e < plane; e++) g[e] = ms_window_apply_u8(win, img->image[mid + e]);
    snprintf(path, sizeof path, "%s/image_%05llu.png", ro->png_dir, (unsigned long long)idx);
    st = ms_png_write(path, g, W, H, 1, 8, d);
    if (st == MS_OK) {
      snprintf(path, sizeof path, "%s/mask_%05llu.png", ro->png_dir, (unsigned long long)idx);
      st = ms_png_write(path, img->mask + mid, W, H, 1, 8, d);
    }
    free(g);
  }
  if (st == MS_OK && ro->nifti_dir) {
    ms_nifti_desc n;
    ms_nifti_desc_init(&n);
    n.dim[0] = W;
    n.dim[1] = H;
    n.dim[2] = img->depth;
    for (int a = 0; a < 3; a++) n.pixdim[a] = img->spacing[a];
    snprintf(n.descrip, sizeof n.descrip, "medsynth %s %s image %llu", ms_phantom_kind_name(p->kind),
             ms_modality_name(p->modality), (unsigned long long)idx);
    n.dtype = MS_NIFTI_FLOAT32;
    snprintf(path, sizeof path, "%s/image_%05llu.nii.gz", ro->nifti_dir, (unsigned long long)idx);
    st = ms_nifti_write(path, &n, img->image, d);
    if (st == MS_OK) {
      n.dtype = MS_NIFTI_UINT8;
      snprintf(path, sizeof path, "%s/mask_%05llu.nii.gz", ro->nifti_dir, (unsigned long long)idx);
      st = ms_nifti_write(path, &n, img->mask, d);
    }
  }
  return st;
}

/* The "invocation" provenance attribute (cli.h, ms_cli_provenance): every
 * parameter an image depends on, with its effective value (the kind's
 * defaults made explicit; a null lesion-organ is the kind's default organ),
 * plus the dataset name and the display window recorded beside the images.
 * Never --threads, --compression, --force or the output paths. */
static char *invocation_of(const run_opts *ro, const ms_phantom_params *p, ms_window win) {
  const ms_lesion_params *l = &p->lesions;
  const ms_augment_params *a = &p->augment;
  ms_cli_pv pv[64] = {
      {.option = "kind", .kind = MS_CLI_PV_STR, .s = ms_phantom_kind_name(p->kind)},
      {.option = "modality", .kind = MS_CLI_PV_STR, .s = ms_modality_name(p->modality)},
      {.option = "width", .kind = MS_CLI_PV_INT, .i = p->width},
      {.option = "height", .kind = MS_CLI_PV_INT, .i = p->height},
      {.option = "depth", .kind = MS_CLI_PV_INT, .i = p->depth},
      {.option = "fov", .kind = MS_CLI_PV_REAL, .x = p->fov_mm},
      {.option = "slice-mm", .kind = MS_CLI_PV_REAL, .x = p->slice_mm},
      {.option = "slice-z", .kind = MS_CLI_PV_REAL, .x = p->slice_z_mm},
      {.option = "n", .kind = MS_CLI_PV_UINT, .u = ro->n},
      {.option = "seed", .kind = MS_CLI_PV_UINT, .u = ro->seed},
      {.option = "lesions", .kind = MS_CLI_PV_RANGE, .x = l->count_min, .y = l->count_max},
      {.option = "lesion-organ", .kind = MS_CLI_PV_STR, .s = l->organ ? ms_label_name(l->organ) : NULL},
      {.option = "lesion-size", .kind = MS_CLI_PV_RANGE, .x = l->diameter_min_mm, .y = l->diameter_max_mm},
      {.option = "irregularity", .kind = MS_CLI_PV_REAL, .x = l->irregularity},
      {.option = "contrast", .kind = MS_CLI_PV_RANGE, .x = l->contrast_min, .y = l->contrast_max},
      {.option = "dose", .kind = MS_CLI_PV_REAL, .x = p->dose},
      {.option = "mr-noise", .kind = MS_CLI_PV_REAL, .x = p->mr_noise},
      {.option = "bias", .kind = MS_CLI_PV_REAL, .x = p->mr_bias},
      {.option = "noise-free", .kind = MS_CLI_PV_BOOL, .i = !p->noise},
      {.option = "supersample", .kind = MS_CLI_PV_INT, .i = p->supersample},
      {.option = "rotate", .kind = MS_CLI_PV_REAL, .x = a->rotate_deg},
      {.option = "scale", .kind = MS_CLI_PV_RANGE, .x = a->scale_min, .y = a->scale_max},
      {.option = "elastic", .kind = MS_CLI_PV_REAL, .x = a->elastic_mm},
      {.option = "elastic-grid", .kind = MS_CLI_PV_INT, .i = a->elastic_grid},
      {.option = "intensity-shift", .kind = MS_CLI_PV_REAL, .x = a->intensity_shift},
      {.option = "intensity-scale", .kind = MS_CLI_PV_REAL, .x = a->intensity_scale},
      {.option = "name", .kind = MS_CLI_PV_STR, .s = ro->name},
      {.option = "window", .kind = MS_CLI_PV_RANGE, .x = win.center, .y = win.width},
  };
  size_t n = 0;
  while (n < sizeof pv / sizeof *pv && pv[n].option) n++;
  /* recorded only when not the default, so default invocations stay as they were */
  if (l->nodule != MS_NODULE_SOLID)
    pv[n++] = (ms_cli_pv){.option = "nodule-type", .kind = MS_CLI_PV_STR, .s = ms_nodule_kind_name(l->nodule)};
  if (l->margin != MS_NODULE_MARGIN_SMOOTH)
    pv[n++] = (ms_cli_pv){.option = "nodule-margin", .kind = MS_CLI_PV_STR, .s = ms_nodule_margin_name(l->margin)};
  if (l->size_class != MS_NODULE_SIZE_ANY)
    pv[n++] = (ms_cli_pv){.option = "nodule-size", .kind = MS_CLI_PV_STR, .s = ms_nodule_size_name(l->size_class)};
  return ms_cli_provenance("phantom", pv, n);
}

/* One batch of renders on the library's worker threads: image first + b on
 * the buffers of the thread that takes it (an image depends only on seed
 * and index). */
typedef struct {
  ms_phantom_image *slots;
  const ms_phantom_params *p;
  uint64_t seed, first;
  size_t npix;
  float *bimg;
  uint8_t *bmask;
  ms_phantom_image *bmeta;
  ms_status *bst;
  ms_diag *bdiag;
} render_batch;

static void render_one(void *ctx, size_t b, size_t worker) {
  const render_batch *r = ctx;
  ms_phantom_image *img = &r->slots[worker];
  ms_diag_init(&r->bdiag[b]);
  r->bst[b] = ms_phantom_generate(img, r->p, NULL, r->seed, r->first + b, &r->bdiag[b]);
  if (r->bst[b] == MS_OK) {
    memcpy(r->bimg + b * r->npix, img->image, r->npix * sizeof(float));
    memcpy(r->bmask + b * r->npix, img->mask, r->npix);
    r->bmeta[b] = *img;
    r->bmeta[b].image = NULL;
    r->bmeta[b].mask = NULL;
    r->bmeta[b].scratch = NULL;
  }
}

static ms_status run(const run_opts *ro_in, const ms_phantom_params *p, ms_diag *d) {
  ms_status st;
  run_opts rs = *ro_in; /* file outputs redirected to their staged places */
  const run_opts *ro = &rs;
  ms_window win = ms_phantom_default_window(p);
  if (ro->window) {
    double c, w;
    if (ms_window_preset(ro->window, &win) != MS_OK) {
      if (parse_range(ro->window, &c, &w) || !(w > 0))
        return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, "--window",
                           "unknown window \"%s\" (lung, mediastinum, bone, brain, abdomen, or CENTER:WIDTH)", ro->window);
      win.center = c;
      win.width = w;
    }
  }
  ms_dicom_dir *dd = NULL;
  if (ro->dicom_dir && (st = ms_dicom_dir_open(&dd, ro->dicom_dir, ro->force, d)) != MS_OK) return st;
  size_t bytes;
  if ((st = ms_phantom_image_bytes(p, &bytes)) != MS_OK) {
    ms_dicom_dir_abort(dd);
    return st;
  }
  int T = ro->threads;
  size_t batch = (size_t)T * 8;
  while (batch > (size_t)T && batch * bytes > ((size_t)512 << 20)) batch /= 2;
  if (batch > ro->n) batch = (size_t)ro->n;
  ms_phantom_image *slots = calloc((size_t)T, sizeof *slots);
  size_t npix = (size_t)p->width * p->height * (size_t)(p->depth > 0 ? p->depth : 1);
  float *bimg = malloc(batch * npix * sizeof(float));
  uint8_t *bmask = malloc(batch * npix);
  ms_status *bst = calloc(batch, sizeof *bst);
  ms_diag *bdiag = calloc(batch, sizeof *bdiag);
  size_t n_grid = ro->grid ? (ro->n < 64 ? (size_t)ro->n : 64) : 0;
  size_t gplane = (size_t)p->width * p->height;
  float *gimg = n_grid ? malloc(n_grid * gplane * sizeof(float)) : NULL;
  uint8_t *gmask = n_grid ? malloc(n_grid * gplane) : NULL;
  ms_phantom_image *bmeta = calloc(batch, sizeof *bmeta); /* tables (no pixel buffers) */
  ms_writer *w = NULL;
  ms_cli_outputs outs = {0};
  ms_table_schema ls = {0}, ss = {0};
  ms_chunk *lc = NULL, *sc = NULL;
  int tables_open = 0;
  if (!slots || !bimg || !bmask || !bst || !bdiag || !bmeta || (n_grid && (!gimg || !gmask))) {
    st = ms_diag_add(d, MS_ERR_NOMEM, NULL, 0, 0, NULL, "out of memory for a batch of %zu images", batch);
    goto done;
  }
  for (int t = 0; t < T; t++)
    if ((st = ms_phantom_image_init(&slots[t], p, d)) != MS_OK) goto done;
  if ((st = ms_cli_open_h5(&w, ro->out, ro->force, ro->compression, T, d)) != MS_OK) goto done;
  if ((rs.png_dir && (st = ms_cli_outputs_add(&outs, ro_in->png_dir, 0, &rs.png_dir, d))) ||
      (rs.nifti_dir && (st = ms_cli_outputs_add(&outs, ro_in->nifti_dir, 0, &rs.nifti_dir, d))) ||
      (rs.grid && (st = ms_cli_outputs_add(&outs, ro_in->grid, 1, &rs.grid, d))))
    goto done;
  char ipath[256], mpath[256], lname[200], sname[200];
  snprintf(ipath, sizeof ipath, "/images/%s", ro->name);
  snprintf(mpath, sizeof mpath, "/masks/%s", ro->name);
  snprintf(lname, sizeof lname, "%s_lesions", ro->name);
  snprintf(sname, sizeof sname, "%s_info", ro->name);
  uint64_t dims[5] = {ro->n, 1, 0, 0, 0};
  int rank;
  if (p->depth > 0) {
    dims[2] = (uint64_t)p->depth;
    dims[3] = (uint64_t)p->height;
    dims[4] = (uint64_t)p->width;
    rank = 5;
  } else {
    dims[2] = (uint64_t)p->height;
    dims[3] = (uint64_t)p->width;
    rank = 4;
  }
  if ((st = ms_writer_begin_array(w, ipath, MS_DT_FLOAT32, rank, dims)) != MS_OK ||
      (st = ms_writer_begin_array(w, mpath, MS_DT_UINT8, rank, dims)) != MS_OK)
    goto done;
  /* Lesion and per-image tables (medsynth/phantom_table.h). */
  if ((st = ms_phantom_lesion_schema(&ls, lname, p, NULL, NULL)) != MS_OK ||
      (st = ms_phantom_info_schema(&ss, sname, p, NULL, NULL, 0)) != MS_OK) {
    st = ms_diag_add(d, MS_ERR_NOMEM, NULL, 0, 0, NULL, "out of memory");
    goto done;
  }
  size_t lcap = batch * MS_PHANTOM_MAX_LESIONS;
  if ((st = ms_chunk_new(&lc, &ls, lcap)) != MS_OK || (st = ms_chunk_new(&sc, &ss, batch)) != MS_OK) {
    st = ms_diag_add(d, MS_ERR_NOMEM, NULL, 0, 0, NULL, "out of memory");
    goto done;
  }
  ms_sink sink = ms_writer_sink(w);
  if ((st = sink.begin_table(sink.ctx, &ls, 0)) != MS_OK || (st = sink.begin_table(sink.ctx, &ss, ro->n)) != MS_OK)
    goto done;
  tables_open = 1;
  ms_cli_progress prog;
  ms_cli_progress_init(&prog, "phantom", ro->n);
  uint64_t lesion_rows = 0;
  for (uint64_t first = 0; first < ro->n; first += batch) {
    size_t nb = ro->n - first < batch ? (size_t)(ro->n - first) : batch;
    render_batch rb = {slots, p, ro->seed, first, npix, bimg, bmask, bmeta, bst, bdiag};
    ms_parallel_for(nb, T, render_one, &rb);
    for (size_t b = 0; b < nb; b++) {
      if (bst[b] != MS_OK && st == MS_OK) {
        st = bst[b];
        ms_diag_append(d, &bdiag[b]);
      }
      ms_diag_deinit(&bdiag[b]);
    }
    if (st != MS_OK) goto done;
    if ((st = ms_writer_write_items(w, ipath, first, nb, bimg)) != MS_OK ||
        (st = ms_writer_write_items(w, mpath, first, nb, bmask)) != MS_OK)
      goto done;
    ms_chunk_reset(lc);
    ms_chunk_reset(sc);
    lc->first_row = lesion_rows;
    lc->n_rows = 0;
    sc->first_row = first;
    sc->n_rows = nb;
    for (size_t b = 0; b < nb; b++) {
      const ms_phantom_image *m = &bmeta[b];
      int64_t idx = (int64_t)(first + b);
      ms_phantom_info_set_row(sc, b, idx, NULL, p, &m->subject, m->n_lesions);
      for (size_t l = 0; l < m->n_lesions; l++) ms_phantom_lesion_set_row(lc, lc->n_rows++, idx, NULL, (int)l, &m->lesions[l]);
    }
    lesion_rows += lc->n_rows;
    if (lc->n_rows && (st = sink.write_chunk(sink.ctx, lc)) != MS_OK) goto done;
    if ((st = sink.write_chunk(sink.ctx, sc)) != MS_OK) goto done;
    for (size_t b = 0; b < nb; b++) {
      uint64_t idx = first + b;
      size_t mid = (size_t)(p->depth > 0 ? p->depth / 2 : 0) * gplane;
      if (idx < n_grid) {
        memcpy(gimg + idx * gplane, bimg + b * npix + mid, gplane * sizeof(float));
        memcpy(gmask + idx * gplane, bmask + b * npix + mid, gplane);
      }
      if (ro->png_dir || ro->nifti_dir || dd) {
        ms_phantom_image view = bmeta[b];
        view.image = bimg + b * npix;
        view.mask = bmask + b * npix;
        if ((ro->png_dir || ro->nifti_dir) && (st = write_png_outputs(ro, p, &view, idx, win, d)) != MS_OK) goto done;
        if (dd) {
          /* one synthetic patient per image: "PHANTOM-<index>" */
          char pid[64], pname[64], key[128];
          snprintf(pid, sizeof pid, "PHANTOM-%05llu", (unsigned long long)idx);
          snprintf(pname, sizeof pname, "Phantom^%05llu", (unsigned long long)idx);
          snprintf(key, sizeof key, "phantom/%s", ro->name ? ro->name : ms_phantom_kind_name(p->kind));
          ms_dicom_subject subj = {.patient_id = pid, .patient_name = pname, .seed = ro->seed, .key = key,
                                   .index = idx, .study_description = "medsynth phantom",
                                   .series_description = ms_phantom_kind_name(p->kind)};
          if ((st = ms_dicom_write_phantom(ms_dicom_dir_path(dd), &subj, p, &view, d)) != MS_OK) goto done;
        }
      }
    }
    ms_cli_progress_update(&prog, first + nb);
  }
  ms_cli_progress_done(&prog);
  tables_open = 0;
  if ((st = sink.end_table(sink.ctx, lname)) != MS_OK || (st = sink.end_table(sink.ctx, sname)) != MS_OK) goto done;
  /* Attributes. */
  char *labels = ms_phantom_label_table_json(p);
  char *invocation = invocation_of(ro, p, win);
  const char *units = p->modality == MS_MODALITY_CT ? "HU" : "a.u.";
  const char *objs[2] = {ipath, mpath};
  for (int o = 0; o < 2 && st == MS_OK; o++) {
    if ((st = ms_writer_set_object_attr_string(w, objs[o], "kind", ms_phantom_kind_name(p->kind))) ||
        (st = ms_writer_set_object_attr_string(w, objs[o], "modality", ms_modality_name(p->modality))) ||
        (st = ms_writer_set_object_attr_double(w, objs[o], "spacing_x_mm", slots[0].spacing[0])) ||
        (st = ms_writer_set_object_attr_double(w, objs[o], "spacing_y_mm", slots[0].spacing[1])) ||
        (st = ms_writer_set_object_attr_double(w, objs[o], "spacing_z_mm", p->depth > 0 ? slots[0].spacing[2] : 0)) ||
        (st = ms_writer_set_object_attr_string(w, objs[o], "label_table", labels ? labels : "{}")))
      break;
  }
  if (st == MS_OK) st = ms_writer_set_object_attr_string(w, ipath, "units", units);
  if (st == MS_OK) st = ms_writer_set_object_attr_double(w, ipath, "window_center", win.center);
  if (st == MS_OK) st = ms_writer_set_object_attr_double(w, ipath, "window_width", win.width);
  if (st == MS_OK) {
    ms_provenance pv = {.command = "phantom", .seed = ro->seed, .invocation = invocation};
    st = invocation ? ms_writer_set_provenance(w, &pv) : ms_diag_add(d, MS_ERR_NOMEM, NULL, 0, 0, NULL, "out of memory");
  }
  free(labels);
  free(invocation);
  if (st != MS_OK) goto done;
  if (n_grid) {
    ms_sheet_params so;
    ms_sheet_params_init(&so);
    so.window_center = win.center;
    so.window_width = win.width;
    so.overlay = MS_OVERLAY_CONTOUR;
    if ((st = ms_png_contact_sheet(ro->grid, gimg, gmask, n_grid, p->height, p->width, &so, d)) != MS_OK) goto done;
  }
  st = ms_writer_commit(w, d);
  w = NULL;
  if (st == MS_OK) st = ms_cli_outputs_commit(&outs, d);
  if (st == MS_OK && dd) {
    st = ms_dicom_dir_commit(dd, d);
    dd = NULL;
  }
done:
  (void)tables_open;
  if (w) ms_writer_abort(w);
  ms_dicom_dir_abort(dd);
  ms_cli_outputs_name_diag(&outs, d);
  ms_cli_outputs_abort(&outs);
  ms_chunk_free(lc);
  ms_chunk_free(sc);
  ms_table_schema_deinit(&ls);
  ms_table_schema_deinit(&ss);
  if (slots)
    for (int t = 0; t < T; t++) ms_phantom_image_deinit(&slots[t]);
  free(slots);
  free(bimg);
  free(bmask);
  free(bst);
  free(bdiag);
  free(bmeta);
  free(gimg);
  free(gmask);
  return st;
}

/* The atlas-based brain (cli/cmd_brain.c) has options of its own. */
int ms__cli_phantom_brain(int argc, char **argv);

static int cmd_phantom(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--kind=brain") || (!strcmp(argv[i], "--kind") && i + 1 < argc && !strcmp(argv[i + 1], "brain")))
      return ms__cli_phantom_brain(argc, argv);
  ms_phantom_params p;
  ms_phantom_params_init(&p, MS_PHANTOM_HEAD);
  run_opts ro = {0};
  ro.n = 1;
  ro.threads = 1;
  ro.compression = 4;
  const char *kind = NULL, *mod = "ct";
  int size = -1, width = -1, height = -1, bad = 0;
  /* Explicit settings, applied after the kind's defaults. */
  struct {
    int set;
    double v;
  } fov = {0, 0};
  ms_phantom_params ex;
  memset(&ex, 0, sizeof ex);
  int set_depth = 0, set_slice_mm = 0, set_slice_z = 0, set_super = 0, set_dose = 0, set_mrn = 0, set_bias = 0,
      noise_free = 0, set_les = 0, set_organ = 0, set_lsize = 0, set_irr = 0, set_con = 0, set_rot = 0,
      set_scale = 0, set_el = 0, set_eg = 0, set_is = 0, set_isc = 0, set_nodule = 0, set_margin = 0,
      set_nsize = 0;
  const char *organ_name = NULL;
  ms_cli_physics ph; /* --physics and its options, taken out of argv */
  if (ms_cli_physics_extract(&argc, argv, &ph)) return MS_EXIT_USAGE;
  optind = 1;
  int c, li = -1;
  while ((li = -1, c = getopt_long(argc, argv, "n:o:h", k_opts, &li)) != -1) {
    double a, b;
    switch (c) {
      case OPT_KIND: kind = optarg; break;
      case OPT_MOD: mod = optarg; break;
      case OPT_SIZE: if (parse_int(optarg, -1000000, 1000000, &size)) bad = 1; break;
      case OPT_WIDTH: if (parse_int(optarg, -1000000, 1000000, &width)) bad = 1; break;
      case OPT_HEIGHT: if (parse_int(optarg, -1000000, 1000000, &height)) bad = 1; break;
      case OPT_DEPTH: if (parse_int(optarg, -1000000, 1000000, &ex.depth)) bad = 1; set_depth = 1; break;
      case OPT_FOV: if (ms_cli_parse_double(optarg, &fov.v)) bad = 1; fov.set = 1; break;
      case OPT_SLICE_MM: if (ms_cli_parse_double(optarg, &ex.slice_mm)) bad = 1; set_slice_mm = 1; break;
      case OPT_SLICE_Z: if (ms_cli_parse_double(optarg, &ex.slice_z_mm)) bad = 1; set_slice_z = 1; break;
      case 'n': if (ms_cli_parse_u64(optarg, &ro.n)) bad = 1; break;
      case OPT_SEED: if (ms_cli_parse_u64(optarg, &ro.seed)) bad = 1; break;
      case OPT_LESIONS:
        if (parse_range(optarg, &a, &b) || a < 0 || b < a || b > 1000 || a != (int)a || b != (int)b) bad = 1;
        else { ex.lesions.count_min = (int)a; ex.lesions.count_max = (int)b; set_les = 1; }
        break;
      case OPT_ORGAN: organ_name = optarg; set_organ = 1; break;
      case OPT_LSIZE: if (parse_range(optarg, &ex.lesions.diameter_min_mm, &ex.lesions.diameter_max_mm)) bad = 1; set_lsize = 1; break;
      case OPT_IRR: if (ms_cli_parse_double(optarg, &ex.lesions.irregularity)) bad = 1; set_irr = 1; break;
      case OPT_NODULE:
        if ((ex.lesions.nodule = ms_nodule_kind_from_name(optarg)) == MS_NODULE_KIND_COUNT) bad = 1;
        set_nodule = 1;
        break;
      case OPT_MARGIN:
        if ((ex.lesions.margin = ms_nodule_margin_from_name(optarg)) == MS_NODULE_MARGIN_COUNT) bad = 1;
        set_margin = 1;
        break;
      case OPT_NSIZE:
        if ((ex.lesions.size_class = ms_nodule_size_from_name(optarg)) == MS_NODULE_SIZE_COUNT) bad = 1;
        set_nsize = 1;
        break;
      case OPT_CONTRAST: if (parse_range(optarg, &ex.lesions.contrast_min, &ex.lesions.contrast_max)) bad = 1; set_con = 1; break;
      case OPT_DOSE: if (ms_cli_parse_double(optarg, &ex.dose)) bad = 1; set_dose = 1; break;
      case OPT_MRNOISE: if (ms_cli_parse_double(optarg, &ex.mr_noise)) bad = 1; set_mrn = 1; break;
      case OPT_BIAS: if (ms_cli_parse_double(optarg, &ex.mr_bias)) bad = 1; set_bias = 1; break;
      case OPT_NOISEFREE: noise_free = 1; break;
      case OPT_SUPER: if (parse_int(optarg, -1000, 1000, &ex.supersample)) bad = 1; set_super = 1; break;
      case OPT_ROT: if (ms_cli_parse_double(optarg, &ex.augment.rotate_deg)) bad = 1; set_rot = 1; break;
      case OPT_SCALE: if (parse_range(optarg, &ex.augment.scale_min, &ex.augment.scale_max)) bad = 1; set_scale = 1; break;
      case OPT_ELASTIC: if (ms_cli_parse_double(optarg, &ex.augment.elastic_mm)) bad = 1; set_el = 1; break;
      case OPT_EGRID: if (parse_int(optarg, -1000, 1000, &ex.augment.elastic_grid)) bad = 1; set_eg = 1; break;
      case OPT_ISHIFT: if (ms_cli_parse_double(optarg, &ex.augment.intensity_shift)) bad = 1; set_is = 1; break;
      case OPT_ISCALE: if (ms_cli_parse_double(optarg, &ex.augment.intensity_scale)) bad = 1; set_isc = 1; break;
      case OPT_THREADS: if (parse_int(optarg, 1, 256, &ro.threads)) bad = 1; break;
      case OPT_NAME: ro.name = optarg; break;
      case OPT_PNG: ro.png_dir = optarg; break;
      case OPT_GRID: ro.grid = optarg; break;
      case OPT_WINDOW: ro.window = optarg; break;
      case OPT_NIFTI: ro.nifti_dir = optarg; break;
      case OPT_DICOM: ro.dicom_dir = optarg; break;
      case OPT_COMP: if (parse_int(optarg, 0, 9, &ro.compression)) bad = 1; break;
      case OPT_FORCE: ro.force = 1; break;
      case 'o': ro.out = optarg; break;
      case 'h':
      case OPT_HELP: fputs(k_usage, stdout); fputs(ms_cli_physics_usage, stdout); return MS_EXIT_OK;
      default: fputs(k_usage, stderr); fputs(ms_cli_physics_usage, stderr); return MS_EXIT_USAGE;
    }
    if (bad) return ms_cli_invalid_value("phantom", li >= 0 ? k_opts[li].name : NULL, c, optarg);
  }
  if (optind < argc) {
    ms_cli_error("phantom", "unexpected argument \"%s\"", argv[optind]);
    return MS_EXIT_USAGE;
  }
  if (!kind) {
    ms_cli_error("phantom", "--kind is required (head, chest or abdomen)");
    return MS_EXIT_USAGE;
  }
  ms_phantom_kind k = ms_phantom_kind_from_name(kind);
  if (k == MS_PHANTOM_KIND_COUNT) {
    ms_cli_error("phantom", "--kind: unknown phantom \"%s\" (head, chest or abdomen)", kind);
    return MS_EXIT_USAGE;
  }
  ms_modality m = ms_modality_from_name(mod);
  if (m == MS_MODALITY_COUNT) {
    ms_cli_error("phantom", "--modality: unknown modality \"%s\" (ct, t1 or t2)", mod);
    return MS_EXIT_USAGE;
  }
  if (!ro.out) {
    ms_cli_error("phantom", "-o FILE is required");
    return MS_EXIT_USAGE;
  }
  if (ro.n == 0) {
    ms_cli_error("phantom", "-n must be at least 1");
    return MS_EXIT_USAGE;
  }
  ms_phantom_params_init(&p, k);
  p.modality = m;
  if (size != -1) p.width = p.height = size;
  if (width != -1) p.width = width;
  if (height != -1) p.height = height;
  if (fov.set) p.fov_mm = fov.v;
  if (set_depth) p.depth = ex.depth;
  if (set_slice_mm) p.slice_mm = ex.slice_mm;
  if (set_slice_z) p.slice_z_mm = ex.slice_z_mm;
  if (set_super) p.supersample = ex.supersample;
  if (set_dose) p.dose = ex.dose;
  if (set_mrn) p.mr_noise = ex.mr_noise;
  if (set_bias) p.mr_bias = ex.mr_bias;
  if (noise_free) p.noise = p.tissue_jitter = 0;
  if (set_les) {
    p.lesions.count_min = ex.lesions.count_min;
    p.lesions.count_max = ex.lesions.count_max;
  }
  if (set_organ) {
    p.lesions.organ = ms_label_from_name(organ_name);
    if (p.lesions.organ == MS_LABEL_COUNT) {
      ms_cli_error("phantom", "--lesion-organ: unknown organ \"%s\"", organ_name);
      return MS_EXIT_USAGE;
    }
  }
  if (set_lsize) {
    p.lesions.diameter_min_mm = ex.lesions.diameter_min_mm;
    p.lesions.diameter_max_mm = ex.lesions.diameter_max_mm;
  }
  if (set_irr) p.lesions.irregularity = ex.lesions.irregularity;
  if (set_nodule) p.lesions.nodule = ex.lesions.nodule;
  if (set_margin) p.lesions.margin = ex.lesions.margin;
  if (set_nsize) p.lesions.size_class = ex.lesions.size_class;
  if (set_con) {
    p.lesions.contrast_min = ex.lesions.contrast_min;
    p.lesions.contrast_max = ex.lesions.contrast_max;
  }
  if (set_rot) p.augment.rotate_deg = ex.augment.rotate_deg;
  if (set_scale) {
    p.augment.scale_min = ex.augment.scale_min;
    p.augment.scale_max = ex.augment.scale_max;
  }
  if (set_el) p.augment.elastic_mm = ex.augment.elastic_mm;
  if (set_eg) p.augment.elastic_grid = ex.augment.elastic_grid;
  if (set_is) p.augment.intensity_shift = ex.augment.intensity_shift;
  if (set_isc) p.augment.intensity_scale = ex.augment.intensity_scale;
  if (!ro.name) ro.name = ms_phantom_kind_name(k);
  if (ph.kind && (ro.png_dir || ro.grid || ro.nifti_dir)) {
    ms_cli_error("phantom", "--physics writes HDF5 only (no --png, --grid or --nifti)");
    return MS_EXIT_USAGE;
  }
  ms_diag d;
  ms_diag_init(&d);
  ms_status st = ms_phantom_params_check(&p, &d);
  if (st == MS_OK) {
    /* The whole output must be addressable: N images of this size. */
    size_t bytes;
    if (ms_phantom_image_bytes(&p, &bytes) != MS_OK || (double)bytes * (double)ro.n > 1e15)
      st = ms_diag_add(&d, MS_ERR_RANGE, NULL, 0, 0, "size", "%llu images of this size would need %.3g TiB",
                       (unsigned long long)ro.n, (double)bytes * (double)ro.n / 1099511627776.0);
  }
  if (st == MS_OK) {
    ms_cli_catch_signals();
    ms_cli_physics_run_params pro = {ro.out, ro.name, ro.n, ro.seed, ro.threads, ro.force, ro.compression};
    st = ph.kind ? ms_cli_physics_run(&ph, &pro, &p, set_dose, &d) : run(&ro, &p, &d);
  }
  if (st != MS_OK) {
    for (size_t i = 0; i < d.count; i++) {
      if (d.entries[i].status == MS_ERR_CANCELLED) continue;
      char *line = ms_diag_entry_format(&d.entries[i]);
      if (line) fprintf(stderr, "medsynth: phantom: %s\n", line);
      free(line);
    }
    if (d.count == 0 && st != MS_ERR_CANCELLED) ms_cli_error("phantom", "%s", ms_strerror(st));
  }
  ms_diag_deinit(&d);
  return ms_cli_exit_code(st);
}

MS_CLI_COMMAND(phantom, "procedural CT/MR phantoms with exact masks (head, chest, abdomen)", cmd_phantom);
