/* medsynth images: samples images from a diffusion UNet (DDPM, DDIM,
 * DPM-Solver++ 2M, optional classifier-free guidance) or decodes latents
 * drawn from a VAE's prior (N(0, I), or its learned per-class Gaussian), and
 * writes them to HDF5 (+ optional PNGs and a contact sheet).
 *
 * File layout (docs/model-format.md, "Sampled images"):
 *   /images/<name>          (N, C, H, W) float32 in physical units
 *                           (model value * scale + offset), or uint8/uint16
 *                           with physical = stored * slope + intercept
 *   /images/<name>_labels   int32 (N) class of each image (conditional models)
 * with the sampler settings, model hash and intensity mapping as attributes.
 *
 * Every parameter is checked against the model before the output is opened;
 * the writer renames its temporary file only on success and --png/--grid are
 * staged (cli/outputs.c), so an error or a signal (SIGINT/SIGTERM, polled
 * once per sampling step and per batch) never leaves a partial file. Image i
 * depends only on (model, seed, sampler settings, i): not on --batch or
 * --threads; the "invocation" attribute records only what images depend on
 * (no paths, no --batch, --threads). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "medsynth/dicom.h"
#include "medsynth/io.h"
#include "medsynth/model.h"
#include "medsynth/nn.h"
#include "medsynth/png.h"
#include "medsynth/rng.h"
#include "medsynth/sample.h"
#include "medsynth/version.h"

#define GRID_MAX 64

static const char *k_usage =
    "usage: medsynth images --model M.h5 -n N -o out.h5 [options]\n"
    "  --model FILE        model in the medsynth HDF5 model format (unet or vae)\n"
    "  -n N                number of images (>= 1)\n"
    "  --seed K            seed (default 0)\n"
    "  --sampler S         ddim (default), ddpm or dpmpp (UNet only)\n"
    "  --steps S           sampling steps, 1..T (default: T for ddpm, min(50, T) otherwise)\n"
    "  --eta E             DDIM noise scale (default 0)\n"
    "  --class C           class of every image (conditional models, unet or vae; default: drawn\n"
    "                      per image)\n"
    "  --guidance G        classifier-free guidance scale (default 1 = none)\n"
    "  --batch B           images per forward pass (default 8)\n"
    "  --threads J         threads (default 1)\n"
    "  -o FILE             output HDF5 file\n"
    "  --name NAME         dataset name under /images (default: image)\n"
    "  --dtype T           float32 (default), uint8 or uint16\n"
    "  --png DIR           image_NNNNN.png per image (8-bit grey, model range [-1, 1])\n"
    "  --grid FILE         contact sheet of the first 64 images\n"
    "  --dicom DIR         Secondary Capture DICOM per image, DIR/NNNNN/IMG0000.dcm (values as in\n"
    "                      the float32 output; docs/dicom.md); DIR appears only when complete\n"
    "  --force             replace an existing output file\n";

enum {
  OPT_MODEL = 256, OPT_SEED, OPT_SAMPLER, OPT_STEPS, OPT_ETA, OPT_CLASS, OPT_GUIDANCE, OPT_BATCH,
  OPT_THREADS, OPT_NAME, OPT_DTYPE, OPT_PNG, OPT_GRID, OPT_FORCE, OPT_HELP, OPT_DICOM
};

static const struct option k_opts[] = {
    {"model", 1, 0, OPT_MODEL},   {"seed", 1, 0, OPT_SEED},         {"sampler", 1, 0, OPT_SAMPLER},
    {"steps", 1, 0, OPT_STEPS},   {"eta", 1, 0, OPT_ETA},           {"class", 1, 0, OPT_CLASS},
    {"guidance", 1, 0, OPT_GUIDANCE}, {"batch", 1, 0, OPT_BATCH},   {"threads", 1, 0, OPT_THREADS},
    {"name", 1, 0, OPT_NAME},     {"dtype", 1, 0, OPT_DTYPE},       {"png", 1, 0, OPT_PNG},
    {"grid", 1, 0, OPT_GRID},     {"force", 0, 0, OPT_FORCE},       {"dicom", 1, 0, OPT_DICOM},       {"help", 0, 0, OPT_HELP},
    {0, 0, 0, 0}};

typedef struct {
  const char *model, *out, *name, *png_dir, *grid, *dicom_dir;
  int64_t n, cls, steps;
  uint64_t seed;
  double eta, guidance;
  int batch, threads, force, has_class, has_steps, has_eta, has_guidance, has_sampler;
  ms_sampler sampler;
  ms_dtype dtype;
} opts;

/* Stored value of model value v for the integer dtypes: the nominal model
 * range [-1, 1] maps linearly onto [0, maxv], clamped, rounded to nearest. */
static double to_unit(float v) {
  double u = ((double)v + 1.0) * 0.5;
  return u < 0 ? 0 : (u > 1 ? 1 : u);
}

static void convert(void *dst, const float *src, size_t n, ms_dtype t, double scale, double offset) {
  if (t == MS_DT_FLOAT32) {
    float *o = dst;
    for (size_t i = 0; i < n; i++) o[i] = (float)((double)src[i] * scale + offset);
  } else if (t == MS_DT_UINT8) {
    uint8_t *o = dst;
    for (size_t i = 0; i < n; i++) o[i] = (uint8_t)lrint(to_unit(src[i]) * 255.0);
  } else {
    uint16_t *o = dst;
    for (size_t i = 0; i < n; i++) o[i] = (uint16_t)lrint(to_unit(src[i]) * 65535.0);
  }
}

typedef struct {
  ms_cli_progress *bar;
  uint64_t done_images;
  int steps;
} progress_ctx;

static void on_step(void *ctx, int step, int steps, const float *x, int n) {
  progress_ctx *p = ctx;
  (void)x;
  /* Progress in image-steps so long sampling runs move the bar. */
  ms_cli_progress_update(p->bar, p->done_images * (uint64_t)steps + (uint64_t)(step + 1) * (uint64_t)n);
}

static int fail(const char *msg, int code) {
  ms_cli_error("images", "%s", msg);
  return code;
}

static int run(const opts *o) {
  ms_diag d;
  ms_diag_init(&d);
  ms_model *m = NULL;
  ms_unet *u = NULL;
  ms_vae *v = NULL;
  ms_writer *w = NULL;
  ms_dicom_dir *dd = NULL;
  float *x = NULL, *gimg = NULL;
  void *conv = NULL;
  int32_t *labels = NULL;
  char *invocation = NULL;
  int rc = MS_EXIT_OK;
  ms_status st;
  ms_cli_outputs outs = {0};
  const char *png_dir = NULL, *grid = NULL;
  if ((st = ms_model_load(&m, o->model, &d)) != MS_OK) {
    ms_cli_print_diag(&d);
    rc = ms_cli_exit_code(st);
    goto done;
  }
  const ms_model_config *c = ms_model_config_of(m);
  int is_vae = c->arch == MS_ARCH_VAE;
  size_t S = (size_t)c->image_size, C = (size_t)c->image_channels, item = C * S * S;
  int B = o->batch < o->n ? o->batch : (int)o->n;

  ms_sample_params sp;
  ms_sample_params_init(&sp);
  sp.sampler = o->sampler;
  sp.steps = o->has_steps ? (int)o->steps : 0;
  sp.eta = o->eta;
  sp.guidance = o->has_guidance ? o->guidance : 1.0;
  sp.seed = o->seed;
  ms_denoiser dn = {.fn = ms_unet_denoise, .prediction = c->prediction,
                    .num_classes = c->num_classes, .schedule = c->schedule, .item_floats = item,
                    .max_batch = B};
  labels = malloc((size_t)o->n * sizeof *labels);
  if (!labels) {
    rc = fail("out of memory", MS_EXIT_SOFTWARE);
    goto done;
  }
  /* Classes: --class for all, else drawn per image keyed by (seed, index). */
  ms_rng_key ck = ms_rng_key_make(o->seed, ms_rng_stream("images/class"));
  for (int64_t i = 0; i < o->n; i++)
    labels[i] = c->num_classes == 0 ? 0
                : o->has_class      ? (int32_t)o->cls
                                    : (int32_t)ms_rng_below(ck, (uint64_t)i, 0, (uint64_t)c->num_classes);
  if (is_vae) {
    if (o->has_guidance || o->has_steps || o->has_eta || o->has_sampler) {
      rc = fail("--sampler, --steps, --eta and --guidance apply to diffusion (unet) models; "
                "this model is a vae (images are decoded from latents drawn from its prior)",
                MS_EXIT_USAGE);
      goto done;
    }
    if (o->has_class && c->num_classes == 0) {
      rc = fail("--class: this vae is unconditional (its config has no num_classes)", MS_EXIT_USAGE);
      goto done;
    }
    if (o->has_class && (o->cls < 0 || o->cls >= c->num_classes)) {
      ms_cli_error("images", "--class %lld is out of range: this vae has classes 0..%d",
                   (long long)o->cls, c->num_classes - 1);
      rc = MS_EXIT_USAGE;
      goto done;
    }
  } else {
    if (o->has_class && (o->cls < INT32_MIN || o->cls > INT32_MAX)) labels[0] = -1;
    const int32_t *yc = (c->num_classes || o->has_class) ? labels : NULL;
    if (ms_sample_check(&sp, &dn, yc, (int)(o->n > 1 << 30 ? 1 << 30 : o->n), &d) != MS_OK) {
      ms_cli_print_diag(&d);
      rc = MS_EXIT_USAGE;
      goto done;
    }
  }
  omp_set_num_threads(o->threads);
  if (is_vae)
    st = ms_vae_new(&v, m, B, &d);
  else
    st = ms_unet_new(&u, m, B, &d);
  if (st != MS_OK) {
    ms_cli_print_diag(&d);
    rc = ms_cli_exit_code(st);
    goto done;
  }
  dn.ctx = u;
  sp.cancel = ms_cli_cancel_flag();
  if ((st = ms_cli_open_h5(&w, o->out, o->force, -1, o->threads, &d)) != MS_OK ||
      (o->png_dir && (st = ms_cli_outputs_add(&outs, o->png_dir, 0, &png_dir, &d)) != MS_OK) ||
      (o->grid && (st = ms_cli_outputs_add(&outs, o->grid, 1, &grid, &d)) != MS_OK)) {
    ms_cli_print_diag(&d);
    rc = st == MS_ERR_EXISTS || st == MS_ERR_IO || st == MS_ERR_NOTFOUND ? MS_EXIT_CANTCREAT
                                                                          : ms_cli_exit_code(st);
    goto done;
  }
  if (o->dicom_dir && (st = ms_dicom_dir_open(&dd, o->dicom_dir, o->force, &d)) != MS_OK) {
    ms_cli_print_diag(&d);
    rc = st == MS_ERR_EXISTS || st == MS_ERR_IO || st == MS_ERR_NOTFOUND ? MS_EXIT_CANTCREAT
                                                                          : ms_cli_exit_code(st);
    goto done;
  }
  char ipath[256], lpath[300];
  snprintf(ipath, sizeof ipath, "/images/%s", o->name);
  snprintf(lpath, sizeof lpath, "/images/%s_labels", o->name);
  uint64_t dims[4] = {(uint64_t)o->n, C, S, S};
  int conditional = c->num_classes > 0;
  if ((st = ms_writer_begin_array(w, ipath, o->dtype, 4, dims)) != MS_OK) goto werr;
  if (conditional && (st = ms_writer_begin_array(w, lpath, MS_DT_INT32, 1, dims)) != MS_OK) goto werr;
  /* Every label first, then the images in index order: the sequence of
   * writes, and so the file's layout, does not depend on --batch. */
  if (conditional && (st = ms_writer_write_items(w, lpath, 0, (uint64_t)o->n, labels)) != MS_OK) goto werr;

  x = malloc((size_t)B * item * sizeof(float));
  conv = malloc((size_t)B * item * ms_dtype_size(o->dtype));
  size_t n_grid = o->grid ? (size_t)(o->n < GRID_MAX ? o->n : GRID_MAX) : 0;
  gimg = n_grid ? malloc(n_grid * S * S * sizeof(float)) : NULL;
  uint8_t *grey = malloc(S * S);
  if (!x || !conv || (n_grid && !gimg) || !grey) {
    free(grey);
    rc = fail("out of memory", MS_EXIT_SOFTWARE);
    goto done;
  }
  ms_cli_progress bar;
  int steps = is_vae ? 1 : ms_sample_steps(&sp, &dn);
  ms_cli_progress_init(&bar, "images", (uint64_t)o->n * (uint64_t)steps);
  progress_ctx pc = {&bar, 0, steps};
  sp.on_step = on_step;
  sp.step_ctx = &pc;
  for (int64_t first = 0; first < o->n; first += B) {
    int nb = (int)(o->n - first < B ? o->n - first : B);
    if (is_vae) {
      st = ms_vae_sample(v, x, o->seed, (uint64_t)first, labels + first, nb, &d);
      ms_cli_progress_update(&bar, (uint64_t)(first + nb));
    } else {
      pc.done_images = (uint64_t)first;
      st = ms_sample(&sp, &dn, x, (uint64_t)first, c->num_classes ? labels + first : NULL, nb, &d);
    }
    if (st != MS_OK) break;
    convert(conv, x, (size_t)nb * item, o->dtype, c->intensity_scale, c->intensity_offset);
    if ((st = ms_writer_write_items(w, ipath, (uint64_t)first, (uint64_t)nb, conv)) != MS_OK) break;
    for (int j = 0; j < nb; j++) {
      const float *img = x + (size_t)j * item; /* channel 0 */
      uint64_t idx = (uint64_t)(first + j);
      if (idx < n_grid) memcpy(gimg + idx * S * S, img, S * S * sizeof(float));
      if (dd) {
        /* a Secondary Capture image of the mapped values (the float32 output) */
        float *fv = malloc(S * S * sizeof(float));
        if (!fv) {
          st = ms_diag_add(&d, MS_ERR_NOMEM, NULL, 0, 0, NULL, "out of memory");
          break;
        }
        convert(fv, img, S * S, MS_DT_FLOAT32, c->intensity_scale, c->intensity_offset);
        ms_phantom_image view;
        memset(&view, 0, sizeof view);
        view.width = view.height = (int)S;
        view.depth = 1;
        view.spacing[0] = view.spacing[1] = view.spacing[2] = 1;
        view.image = fv;
        char pid[64], pname[64], key[300];
        snprintf(pid, sizeof pid, "SAMPLE-%05llu", (unsigned long long)idx);
        snprintf(pname, sizeof pname, "Sample^%05llu", (unsigned long long)idx);
        snprintf(key, sizeof key, "images/%s", o->name);
        ms_dicom_subject subj = {.patient_id = pid, .patient_name = pname, .seed = o->seed, .key = key,
                                 .index = idx, .is_model = 1, .study_description = "medsynth model sample",
                                 .series_description = o->name};
        st = ms_dicom_write_phantom(ms_dicom_dir_path(dd), &subj, NULL, &view, &d);
        free(fv);
        if (st != MS_OK) break;
      }
      if (png_dir) {
        char path[4096];
        for (size_t k = 0; k < S * S; k++) grey[k] = (uint8_t)lrint(to_unit(img[k]) * 255.0);
        snprintf(path, sizeof path, "%s/image_%05llu.png", png_dir, (unsigned long long)idx);
        if ((st = ms_png_write(path, grey, (int)S, (int)S, 1, 8, &d)) != MS_OK) break;
      }
    }
    if (st != MS_OK) break;
  }
  free(grey);
  ms_cli_progress_done(&bar);
  if (st != MS_OK) goto werr;

  /* Provenance and intensity mapping. */
  char hash[17];
  snprintf(hash, sizeof hash, "%016llx", (unsigned long long)ms_model_weights_xxh64(m));
  {
    /* The "invocation" provenance attribute (cli.h): the model file's hash
     * and the options that change values, with their effective values. */
    ms_cli_pv pv[12];
    size_t npv = 0;
    pv[npv++] = (ms_cli_pv){.option = "model", .kind = MS_CLI_PV_FILE, .s = o->model};
    pv[npv++] = (ms_cli_pv){.option = "n", .kind = MS_CLI_PV_INT, .i = o->n};
    pv[npv++] = (ms_cli_pv){.option = "seed", .kind = MS_CLI_PV_UINT, .u = o->seed};
    if (!is_vae) {
      pv[npv++] = (ms_cli_pv){.option = "sampler", .kind = MS_CLI_PV_STR, .s = ms_sampler_name(sp.sampler)};
      pv[npv++] = (ms_cli_pv){.option = "steps", .kind = MS_CLI_PV_INT, .i = steps};
      pv[npv++] = (ms_cli_pv){.option = "eta", .kind = MS_CLI_PV_REAL, .x = sp.eta};
      pv[npv++] = (ms_cli_pv){.option = "guidance", .kind = MS_CLI_PV_REAL, .x = sp.guidance};
    }
    if (c->num_classes > 0 || o->has_class)
      pv[npv++] = o->has_class ? (ms_cli_pv){.option = "class", .kind = MS_CLI_PV_INT, .i = o->cls}
                               : (ms_cli_pv){.option = "class", .kind = MS_CLI_PV_STR, .s = NULL};
    pv[npv++] = (ms_cli_pv){.option = "name", .kind = MS_CLI_PV_STR, .s = o->name};
    pv[npv++] = (ms_cli_pv){.option = "dtype", .kind = MS_CLI_PV_STR, .s = ms_dtype_name(o->dtype)};
    invocation = ms_cli_provenance("images", pv, npv);
  }
  if (!invocation) {
    st = ms_diag_add(&d, MS_ERR_IO, o->model, 0, 0, NULL, "cannot record provenance (model file unreadable?)");
    goto werr;
  }
  double slope = 1, intercept = 0;
  if (o->dtype != MS_DT_FLOAT32) {
    double maxv = o->dtype == MS_DT_UINT8 ? 255.0 : 65535.0;
    slope = 2.0 * c->intensity_scale / maxv;
    intercept = c->intensity_offset - c->intensity_scale;
  }
  ms_provenance pv = {.command = "images", .seed = o->seed, .invocation = invocation};
  if ((st = ms_writer_set_provenance(w, &pv)) ||
      (st = ms_writer_set_object_attr_string(w, ipath, "model_xxh64", hash)) ||
      (st = ms_writer_set_object_attr_string(w, ipath, "model_architecture", ms_arch_name(c->arch))) ||
      (st = ms_writer_set_object_attr_string(w, ipath, "units", c->intensity_unit)) ||
      (st = ms_writer_set_object_attr_double(w, ipath, "slope", slope)) ||
      (st = ms_writer_set_object_attr_double(w, ipath, "intercept", intercept)) ||
      (st = ms_writer_set_object_attr_double(w, ipath, "seed", (double)o->seed)))
    goto werr;
  if (!is_vae) {
    if ((st = ms_writer_set_object_attr_string(w, ipath, "sampler", ms_sampler_name(sp.sampler))) ||
        (st = ms_writer_set_object_attr_double(w, ipath, "steps", steps)) ||
        (st = ms_writer_set_object_attr_double(w, ipath, "eta", sp.eta)) ||
        (st = ms_writer_set_object_attr_double(w, ipath, "guidance", sp.guidance)) ||
        (st = ms_writer_set_object_attr_string(w, ipath, "prediction", ms_prediction_name(c->prediction))))
      goto werr;
  } else if ((st = ms_writer_set_object_attr_string(
                  w, ipath, "latent_prior",
                  c->has_latent_prior ? "learned gaussian" : "standard normal"))) {
    goto werr;
  }
  if (n_grid) {
    ms_sheet_params so;
    ms_sheet_params_init(&so);
    so.window_center = 0;
    so.window_width = 2;
    if ((st = ms_png_contact_sheet(grid, gimg, NULL, n_grid, (int)S, (int)S, &so, &d)) != MS_OK)
      goto werr;
  }
  st = ms_writer_commit(w, &d);
  w = NULL;
  if (st == MS_OK) st = ms_cli_outputs_commit(&outs, &d);
  if (st == MS_OK && dd) {
    st = ms_dicom_dir_commit(dd, &d);
    dd = NULL;
  }
  if (st != MS_OK) goto werr;
  goto done;
werr:
  ms_cli_outputs_name_diag(&outs, &d);
  ms_cli_print_diag(&d);
  if (d.count == 0 && st != MS_ERR_CANCELLED) ms_cli_error("images", "%s", ms_strerror(st));
  rc = st == MS_ERR_IO ? MS_EXIT_IOERR : ms_cli_exit_code(st);
done:
  ms_cli_outputs_abort(&outs);
  if (w) ms_writer_abort(w);
  ms_dicom_dir_abort(dd);
  free(invocation);
  free(x);
  free(conv);
  free(gimg);
  free(labels);
  ms_unet_free(u);
  ms_vae_free(v);
  ms_model_free(m);
  ms_diag_deinit(&d);
  return rc;
}

static int cmd_images(int argc, char **argv) {
  opts o;
  memset(&o, 0, sizeof o);
  o.n = -1;
  o.batch = 8;
  o.threads = 1;
  o.name = "image";
  o.sampler = MS_SAMPLER_DDIM;
  o.dtype = MS_DT_FLOAT32;
  optind = 1;
  int c, li = -1, bad = 0;
  int64_t iv;
  while ((li = -1, c = getopt_long(argc, argv, "n:o:h", k_opts, &li)) != -1) {
    switch (c) {
      case OPT_MODEL: o.model = optarg; break;
      case 'n': if (ms_cli_parse_i64(optarg, &o.n)) bad = 1; break;
      case 'o': o.out = optarg; break;
      case OPT_SEED: if (ms_cli_parse_u64(optarg, &o.seed)) bad = 1; break;
      case OPT_SAMPLER:
        o.sampler = ms_sampler_from_name(optarg);
        o.has_sampler = 1;
        if (o.sampler == MS_SAMPLER_COUNT) bad = 1;
        break;
      case OPT_STEPS: if (ms_cli_parse_i64(optarg, &o.steps) || o.steps < 1 || o.steps > 1 << 30) bad = 1; o.has_steps = 1; break;
      case OPT_ETA: if (ms_cli_parse_double(optarg, &o.eta)) bad = 1; o.has_eta = 1; break;
      case OPT_CLASS: if (ms_cli_parse_i64(optarg, &o.cls)) bad = 1; o.has_class = 1; break;
      case OPT_GUIDANCE: if (ms_cli_parse_double(optarg, &o.guidance)) bad = 1; o.has_guidance = 1; break;
      case OPT_BATCH: if (ms_cli_parse_i64(optarg, &iv) || iv < 1 || iv > 4096) bad = 1; else o.batch = (int)iv; break;
      case OPT_THREADS: if (ms_cli_parse_i64(optarg, &iv) || iv < 1 || iv > 256) bad = 1; else o.threads = (int)iv; break;
      case OPT_NAME: o.name = optarg; break;
      case OPT_DTYPE:
        if (!strcmp(optarg, "float32")) o.dtype = MS_DT_FLOAT32;
        else if (!strcmp(optarg, "uint8")) o.dtype = MS_DT_UINT8;
        else if (!strcmp(optarg, "uint16")) o.dtype = MS_DT_UINT16;
        else bad = 1;
        break;
      case OPT_PNG: o.png_dir = optarg; break;
      case OPT_GRID: o.grid = optarg; break;
      case OPT_DICOM: o.dicom_dir = optarg; break;
      case OPT_FORCE: o.force = 1; break;
      case 'h':
      case OPT_HELP: fputs(k_usage, stdout); return MS_EXIT_OK;
      default: fputs(k_usage, stderr); return MS_EXIT_USAGE;
    }
    if (bad) return ms_cli_invalid_value("images", li >= 0 ? k_opts[li].name : NULL, c, optarg);
  }
  if (optind < argc) {
    ms_cli_error("images", "unexpected argument \"%s\"", argv[optind]);
    return MS_EXIT_USAGE;
  }
  if (!o.model) return fail("--model is required", MS_EXIT_USAGE);
  if (!o.out) return fail("-o is required (output HDF5 file)", MS_EXIT_USAGE);
  if (o.n == -1) return fail("-n is required (number of images)", MS_EXIT_USAGE);
  if (o.n <= 0) {
    ms_cli_error("images", "-n: the number of images must be >= 1 (got %lld)", (long long)o.n);
    return MS_EXIT_USAGE;
  }
  if (ms_format_from_path(o.out) != MS_FMT_HDF5)
    return fail("-o: the output must be an HDF5 file (.h5 or .hdf5)", MS_EXIT_USAGE);
  if (!*o.name || strchr(o.name, '/') || strlen(o.name) > 200)
    return fail("--name: must be a non-empty name without '/'", MS_EXIT_USAGE);
  ms_cli_catch_signals();
  return run(&o);
}

MS_CLI_COMMAND(images, "sample images from a diffusion UNet or VAE model", cmd_images);
