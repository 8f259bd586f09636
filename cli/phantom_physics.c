/* medsynth phantom --physics ct|mr: renders noise-free truths with the
 * phantom generator, acquires them (medsynth/physics.h) and writes the raw
 * data, the reconstructions and the truth with its masks into one HDF5 file.
 *
 * File layout (docs/physics.md):
 *   CT: /images/<name>            float32 (N, 1, H, W)  FBP at --dose (HU)
 *       /images/<name>_full_dose  float32 (N, 1, H, W)  FBP at --full-dose (HU)
 *       /images/<name>_truth      float32 (N, 1, H, W)  the noise-free phantom (HU)
 *       /masks/<name>             uint8   (N, 1, H, W)
 *       /raw/<name>_sinogram      float32 (N, 1, views, detectors)  measured -ln(I/I0) at --dose
 *       /images/<name>_lowres     float32 (N, 1, H/F, W/F)  with --lowres F: FBP of that
 *                                 sinogram on an F-times coarser grid (HU)
 *   MR (fastMRI's multi-coil layout at the root, one slice per row):
 *       /kspace                   complex64 (N, coils, H, W)  fully sampled, with noise
 *       /reconstruction_rss       float32 (N, H, W)
 *       /reconstruction_zf        float32 (N, H, W)  zero-filled RSS under /mask
 *       /mask                     uint8   (N, W)     sampled phase-encode columns
 *       /sensitivity_maps         complex64 (coils, H, W)
 *       /reconstruction_lowres    float32 (N, H/F, W/F)  with --lowres F
 *       /images/<name>, /masks/<name>  the truth magnitude and labels
 *       root attributes acquisition, max, norm, patient_id (as fastMRI)
 *
 * The truths come from a source (ms_cli_physics_source): the phantom
 * generator here, the atlas brain in cmd_brain.c (MR only, with its AAL
 * mask as /masks/<name>_aal). Rows are computed in batches on the worker
 * threads (row i depends only on seed and i) and written in index order;
 * the fastMRI max and norm are accumulated in index order, so no byte
 * depends on --threads. */
#include "phantom_physics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "medsynth/io.h"
#include "medsynth/parallel.h"
#include "medsynth/version.h"

const char ms_cli_physics_usage[] =
    "  --physics ct|mr     acquisition physics: CT sinograms + FBP at two doses, or MR\n"
    "                      multi-coil k-space (fastMRI layout); 2-D slices only\n"
    "  --geometry G        CT: parallel (default) or fan\n"
    "  --views V           CT: projections (default 360 parallel over 180 deg, 720 fan over 360 deg)\n"
    "  --detectors D       CT: detector bins (default: cover the field of view)\n"
    "  --filter F          CT: FBP filter ramp (default), shepp-logan or hann\n"
    "  --cutoff X          CT: filter cut-off, fraction of Nyquist (default 1)\n"
    "  --full-dose D       CT: mAs of the full-dose reconstruction (default 100; --dose default 25)\n"
    "  --photons P         CT: unattenuated photons per ray per mAs (default 2000)\n"
    "  --electronic-noise S  CT: electronic noise sd in photons (default 5)\n"
    "  --sod MM            CT fan: source to isocentre (default 570)\n"
    "  --coils C           MR: receive coils (default 8)\n"
    "  --acceleration R    MR: undersampling factor (default 4)\n"
    "  --center-fraction X MR: fully sampled centre fraction (default 0.08)\n"
    "  --mask M            MR: equispaced (default) or random\n"
    "  --partial-fourier F MR: sampled share of the phase-encode axis, (0.5, 1] (default 1)\n"
    "  --beam-hardening on|off  CT: polychromatic water/bone beam with water precorrection\n"
    "                      (streaks near bone; default off)\n"
    "  --lowres F          also an F-times coarser image (super-resolution input): MR from the\n"
    "                      central H/F x W/F of k-space, CT by FBP of the sinogram on a coarser grid\n";

static const char *const k_names[] = {"physics", "geometry", "views", "detectors", "filter", "cutoff", "full-dose",
                                      "photons", "electronic-noise", "sod", "coils", "acceleration",
                                      "center-fraction", "mask", "lowres", "beam-hardening",
                                      "partial-fourier"};

static int set_one(ms_cli_physics *ph, int which, const char *v) {
  int64_t i;
  switch (which) {
    case 0:
      if (!strcmp(v, "ct")) ph->kind = 1;
      else if (!strcmp(v, "mr")) ph->kind = 2;
      else return -1;
      return 0;
    case 1: return (ph->geometry = ms_ct_geometry_from_name(v)) == MS_CT_GEOMETRY_COUNT ? -1 : 0;
    case 2: if (ms_cli_parse_i64(v, &i) || i < -1000000 || i > 1000000) return -1; ph->views = (int)i; return 0;
    case 3: if (ms_cli_parse_i64(v, &i) || i < -1000000 || i > 1000000) return -1; ph->detectors = (int)i; return 0;
    case 4: return (ph->filter = ms_fbp_filter_from_name(v)) == MS_FBP_FILTER_COUNT ? -1 : 0;
    case 5: ph->set_cutoff = 1; return ms_cli_parse_double(v, &ph->cutoff);
    case 6: ph->set_full_dose = 1; return ms_cli_parse_double(v, &ph->full_dose);
    case 7: ph->set_photons = 1; return ms_cli_parse_double(v, &ph->photons);
    case 8: ph->set_electronic = 1; return ms_cli_parse_double(v, &ph->electronic);
    case 9: ph->set_sod = 1; return ms_cli_parse_double(v, &ph->sod);
    case 10: if (ms_cli_parse_i64(v, &i) || i < -1000000 || i > 1000000) return -1; ph->coils = (int)i; ph->set_coils = 1; return 0;
    case 11: ph->set_acc = 1; return ms_cli_parse_double(v, &ph->acceleration);
    case 12: ph->set_cf = 1; return ms_cli_parse_double(v, &ph->center_fraction);
    case 13: return (ph->mask = ms_mr_mask_kind_from_name(v)) == MS_MR_MASK_COUNT ? -1 : 0;
    case 14: if (ms_cli_parse_i64(v, &i) || i < -1000 || i > 1000) return -1; ph->lowres = (int)i; return 0;
    case 15:
      if (!strcmp(v, "on")) ph->beam_hardening = 1;
      else if (!strcmp(v, "off")) ph->beam_hardening = 0;
      else return -1;
      return 0;
    case 16: ph->set_pf = 1; return ms_cli_parse_double(v, &ph->partial_fourier);
    default: return -1;
  }
}

int ms_cli_physics_extract(int *argc, char **argv, ms_cli_physics *ph) {
  memset(ph, 0, sizeof *ph);
  int w = 1;
  for (int r = 1; r < *argc; r++) {
    const char *a = argv[r];
    if (!strcmp(a, "--")) {
      while (r < *argc) argv[w++] = argv[r++];
      break;
    }
    int which = -1;
    const char *val = NULL;
    for (int k = 0; a[0] == '-' && a[1] == '-' && k < (int)(sizeof k_names / sizeof *k_names); k++) {
      size_t n = strlen(k_names[k]);
      if (!strncmp(a + 2, k_names[k], n) && (a[2 + n] == '\0' || a[2 + n] == '=')) {
        which = k;
        val = a[2 + n] == '=' ? a + 3 + n : NULL;
      }
    }
    if (which < 0) {
      argv[w++] = argv[r];
      continue;
    }
    if (!val) {
      if (r + 1 >= *argc) {
        ms_cli_error("phantom", "--%s needs a value", k_names[which]);
        return -1;
      }
      val = argv[++r];
    }
    if (set_one(ph, which, val)) {
      ms_cli_invalid_value("phantom", k_names[which], 0, val);
      return -1;
    }
  }
  argv[w] = NULL;
  *argc = w;
  return 0;
}

/* ---- the run ------------------------------------------------------------ */

typedef struct {
  const ms_cli_physics *ph;
  const ms_cli_physics_source *src;
  const ms_ct_system *ct, *ct_lo; /* ct_lo: --lowres grid, same sinogram geometry */
  const ms_mr_system *mr;
  uint64_t seed, first;
  size_t npix, nsino, nk, W;
  float *truth, *a, *b, *c; /* CT: low, full, sinogram; MR: rss, zf, kspace */
  float *low;               /* --lowres: [batch][H/f][W/f] */
  size_t nlow;
  uint8_t *mask, *aux, *kmask;
  ms_status *st;
  ms_diag *diag;
} phys_batch;

static void phys_one(void *ctx, size_t b, size_t worker) {
  const phys_batch *j = ctx;
  ms_diag *d = &j->diag[b];
  uint64_t idx = j->first + b;
  ms_diag_init(d);
  float *truth = j->truth + b * j->npix;
  ms_status st = j->src->render(j->src->ctx, worker, j->seed, idx, truth, j->mask + b * j->npix,
                                j->aux ? j->aux + b * j->npix : NULL, d);
  if (st == MS_OK && j->ct) {
    float *low = j->a + b * j->npix, *full = j->b + b * j->npix, *sino = j->c + b * j->nsino;
    if (j->src->noise) {
      st = ms_ct_acquire(j->ct, sino, low, full, truth, j->seed, idx, d);
    } else {
      /* Noise-free: the clean line integrals and their FBP, twice the same. */
      const ms_ct_params *c = ms_ct_system_params(j->ct);
      ms_ct_hu_to_mu(c, low, truth, j->npix);
      ms_ct_project(j->ct, sino, low);
      st = ms_ct_fbp(j->ct, full, sino, d);
      if (st == MS_OK) {
        ms_ct_mu_to_hu(c, low, full, j->npix);
        memcpy(full, low, j->npix * sizeof(float));
      }
    }
    if (st == MS_OK && j->ct_lo) {
      float *lo = j->low + b * j->nlow;
      st = ms_ct_fbp(j->ct_lo, lo, sino, d);
      if (st == MS_OK) ms_ct_mu_to_hu(ms_ct_system_params(j->ct_lo), lo, lo, j->nlow);
    }
  } else if (st == MS_OK) {
    ms_mr_output o = {j->c + b * j->nk, j->kmask + b * j->W, j->a + b * j->npix, j->b + b * j->npix,
                      j->low ? j->low + b * j->nlow : NULL};
    st = ms_mr_acquire(j->mr, &o, truth, j->seed, idx, d);
  }
  j->st[b] = st;
}

static ms_status set_attrs(ms_writer *w, const char *path, const char *const *kv_s, size_t ns, const char *const *k_d,
                           const double *v_d, size_t nd) {
  ms_status st = MS_OK;
  for (size_t i = 0; i < ns && st == MS_OK; i++) st = ms_writer_set_object_attr_string(w, path, kv_s[2 * i], kv_s[2 * i + 1]);
  for (size_t i = 0; i < nd && st == MS_OK; i++) st = ms_writer_set_object_attr_double(w, path, k_d[i], v_d[i]);
  return st;
}

/* The source's options, "physics", the source's options after it, the
 * physics options, the source's tail. */
static char *invocation(const ms_cli_physics *ph, const ms_cli_physics_source *src, const ms_ct_params *c,
                        const ms_mr_params *m) {
  size_t cap = src->n_pv + src->n_pv_after + src->n_pv_tail + 16, n = 0;
  ms_cli_pv *pv = calloc(cap, sizeof *pv);
  if (!pv) return NULL;
  for (size_t i = 0; i < src->n_pv; i++) pv[n++] = src->pv[i];
#define PV(...) pv[n++] = (ms_cli_pv){__VA_ARGS__}
  PV(.option = "physics", .kind = MS_CLI_PV_STR, .s = ph->kind == 1 ? "ct" : "mr");
  for (size_t i = 0; i < src->n_pv_after; i++) pv[n++] = src->pv_after[i];
  if (c) {
    PV(.option = "geometry", .kind = MS_CLI_PV_STR, .s = ms_ct_geometry_name(c->geometry));
    PV(.option = "views", .kind = MS_CLI_PV_INT, .i = c->views);
    PV(.option = "detectors", .kind = MS_CLI_PV_INT, .i = c->detectors);
    PV(.option = "filter", .kind = MS_CLI_PV_STR, .s = ms_fbp_filter_name(c->filter));
    PV(.option = "cutoff", .kind = MS_CLI_PV_REAL, .x = c->cutoff);
    PV(.option = "dose", .kind = MS_CLI_PV_REAL, .x = c->dose_mas);
    PV(.option = "full-dose", .kind = MS_CLI_PV_REAL, .x = c->full_dose_mas);
    PV(.option = "photons", .kind = MS_CLI_PV_REAL, .x = c->photons_per_mas);
    PV(.option = "electronic-noise", .kind = MS_CLI_PV_REAL, .x = c->electronic_sd);
    PV(.option = "sod", .kind = MS_CLI_PV_REAL, .x = c->sod_mm);
    PV(.option = "lowres", .kind = MS_CLI_PV_INT, .i = ph->lowres > 1 ? ph->lowres : 1);
    if (c->beam_hardening) PV(.option = "beam-hardening", .kind = MS_CLI_PV_STR, .s = "on");
  } else {
    PV(.option = "coils", .kind = MS_CLI_PV_INT, .i = m->coils);
    PV(.option = "acceleration", .kind = MS_CLI_PV_REAL, .x = m->acceleration);
    PV(.option = "center-fraction", .kind = MS_CLI_PV_REAL, .x = m->center_fraction);
    PV(.option = "mask", .kind = MS_CLI_PV_STR, .s = ms_mr_mask_kind_name(m->mask));
    PV(.option = "lowres", .kind = MS_CLI_PV_INT, .i = m->lowres_factor);
    if (m->partial_fourier != 1) PV(.option = "partial-fourier", .kind = MS_CLI_PV_REAL, .x = m->partial_fourier);
  }
#undef PV
  for (size_t i = 0; i < src->n_pv_tail; i++) pv[n++] = src->pv_tail[i];
  char *inv = ms_cli_provenance("phantom", pv, n);
  free(pv);
  return inv;
}

/* ---- the phantom generator as a source ---------------------------------- */

typedef struct {
  const ms_phantom_params *p; /* the truth's: noise off */
  ms_phantom_image *slots;    /* one per worker */
} phantom_src;

static ms_status phantom_render(void *ctx, size_t worker, uint64_t seed, uint64_t idx, float *image, uint8_t *mask,
                                uint8_t *aux, ms_diag *d) {
  (void)aux;
  const phantom_src *ps = ctx;
  ms_phantom_image *img = &ps->slots[worker];
  ms_status st = ms_phantom_generate(img, ps->p, NULL, seed, idx, d);
  if (st != MS_OK) return st;
  size_t npix = (size_t)ps->p->width * ps->p->height;
  memcpy(image, img->image, npix * sizeof(float));
  memcpy(mask, img->mask, npix);
  return MS_OK;
}

static char *phantom_labels(void *ctx, int aux) {
  (void)aux;
  return ms_phantom_label_table_json(((const phantom_src *)ctx)->p);
}

ms_status ms_cli_physics_run(const ms_cli_physics *ph, const ms_cli_physics_run_params *ro, const ms_phantom_params *p,
                             int dose_set, ms_diag *d) {
  int is_ct = ph->kind == 1;
  if (p->depth > 0)
    return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, "--physics", "acquisition physics works on 2-D slices; leave out --depth");
  if (is_ct != (p->modality == MS_MODALITY_CT))
    return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, "--physics", "--physics %s needs --modality %s", is_ct ? "ct" : "mr",
                       is_ct ? "ct" : "t1 or t2");
  ms_phantom_params tp = *p;
  tp.noise = 0; /* the truth; the acquisition adds the noise */
  const ms_lesion_params *l = &p->lesions;
  ms_cli_pv pv[20], after[1], tail[1];
  size_t n = 0;
#define PV(...) pv[n++] = (ms_cli_pv){__VA_ARGS__}
  PV(.option = "kind", .kind = MS_CLI_PV_STR, .s = ms_phantom_kind_name(p->kind));
  PV(.option = "modality", .kind = MS_CLI_PV_STR, .s = ms_modality_name(p->modality));
  PV(.option = "width", .kind = MS_CLI_PV_INT, .i = p->width);
  PV(.option = "height", .kind = MS_CLI_PV_INT, .i = p->height);
  PV(.option = "fov", .kind = MS_CLI_PV_REAL, .x = p->fov_mm);
  PV(.option = "slice-z", .kind = MS_CLI_PV_REAL, .x = p->slice_z_mm);
  PV(.option = "n", .kind = MS_CLI_PV_UINT, .u = ro->n);
  PV(.option = "seed", .kind = MS_CLI_PV_UINT, .u = ro->seed);
  PV(.option = "lesions", .kind = MS_CLI_PV_RANGE, .x = l->count_min, .y = l->count_max);
  PV(.option = "lesion-organ", .kind = MS_CLI_PV_STR, .s = l->organ ? ms_label_name(l->organ) : NULL);
  PV(.option = "lesion-size", .kind = MS_CLI_PV_RANGE, .x = l->diameter_min_mm, .y = l->diameter_max_mm);
  PV(.option = "irregularity", .kind = MS_CLI_PV_REAL, .x = l->irregularity);
  PV(.option = "contrast", .kind = MS_CLI_PV_RANGE, .x = l->contrast_min, .y = l->contrast_max);
  if (l->nodule != MS_NODULE_SOLID) PV(.option = "nodule-type", .kind = MS_CLI_PV_STR, .s = ms_nodule_kind_name(l->nodule));
  PV(.option = "noise-free", .kind = MS_CLI_PV_BOOL, .i = !p->noise);
  PV(.option = "supersample", .kind = MS_CLI_PV_INT, .i = p->supersample);
#undef PV
  after[0] = (ms_cli_pv){.option = "mr-noise", .kind = MS_CLI_PV_REAL, .x = p->mr_noise};
  tail[0] = (ms_cli_pv){.option = "name", .kind = MS_CLI_PV_STR, .s = ro->name};
  phantom_src ps = {&tp, calloc((size_t)ro->threads, sizeof(ms_phantom_image))};
  ms_cli_physics_source src = {.width = p->width, .height = p->height, .pixel_mm = p->fov_mm / p->width,
                               .is_ct = is_ct, .noise = p->noise, .mr_noise_sd = ms_mr_phantom_noise_sd(p),
                               .kind = ms_phantom_kind_name(p->kind), .modality = ms_modality_name(p->modality),
                               .render = phantom_render, .labels = phantom_labels,
                               .pv = pv, .n_pv = n, .pv_after = after, .n_pv_after = is_ct ? 0 : 1,
                               .pv_tail = tail, .n_pv_tail = 1, .ctx = &ps};
  ms_status st = ps.slots ? MS_OK : ms_diag_add(d, MS_ERR_NOMEM, NULL, 0, 0, NULL, "out of memory");
  for (int t = 0; t < ro->threads && st == MS_OK; t++) st = ms_phantom_image_init(&ps.slots[t], &tp, d);
  if (st == MS_OK) st = ms_cli_physics_run_source(ph, ro, &src, dose_set, p->dose, d);
  if (ps.slots)
    for (int t = 0; t < ro->threads; t++) ms_phantom_image_deinit(&ps.slots[t]);
  free(ps.slots);
  return st;
}

ms_status ms_cli_physics_run_source(const ms_cli_physics *ph, const ms_cli_physics_run_params *ro,
                                    const ms_cli_physics_source *src, int dose_set, double dose, ms_diag *d) {
  int is_ct = ph->kind == 1;
  int W = src->width, H = src->height;
  double px = src->pixel_mm;
  ms_ct_params c;
  ms_mr_params m;
  ms_ct_system *cs = NULL, *cs_lo = NULL;
  ms_mr_system *ms = NULL;
  ms_status st;
  if (is_ct) {
    ms_ct_params_init(&c, W, H, px);
    c.geometry = ph->geometry;
    c.filter = ph->filter;
    c.views = ph->views;
    c.detectors = ph->detectors;
    if (dose_set) c.dose_mas = dose;
    if (ph->set_full_dose) c.full_dose_mas = ph->full_dose;
    if (ph->set_photons) c.photons_per_mas = ph->photons;
    if (ph->set_electronic) c.electronic_sd = ph->electronic;
    if (ph->set_sod) c.sod_mm = ph->sod;
    if (ph->set_cutoff) c.cutoff = ph->cutoff;
    c.beam_hardening = ph->beam_hardening;
    if ((st = ms_ct_system_new(&cs, &c, d)) != MS_OK) return st;
    c = *ms_ct_system_params(cs);
    if (ph->lowres > 1 || ph->lowres < 0) {
      /* The same views and detector bins, a grid F times coarser. */
      int f = ph->lowres;
      ms_ct_params cl = c;
      if (f < 2 || f > 16 || W % f || H % f) {
        ms_ct_system_free(cs);
        return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, "lowres",
                           "low-resolution factor must be 2..16 and divide the image size (%d x %d)", W, H);
      }
      cl.width = W / f;
      cl.height = H / f;
      cl.pixel_mm = px * f;
      if ((st = ms_ct_system_new(&cs_lo, &cl, d)) != MS_OK) {
        ms_ct_system_free(cs);
        return st;
      }
    }
  } else {
    ms_mr_params_init(&m, W, H, px);
    if (ph->set_coils) m.coils = ph->coils;
    if (ph->set_acc) m.acceleration = ph->acceleration;
    if (ph->set_cf) m.center_fraction = ph->center_fraction;
    if (ph->set_pf) m.partial_fourier = ph->partial_fourier;
    if (ph->lowres) m.lowres_factor = ph->lowres;
    m.mask = ph->mask;
    m.noise_sd = src->mr_noise_sd;
    if ((st = ms_mr_system_new(&ms, &m, d)) != MS_OK) return st;
  }
  int T = ro->threads;
  size_t npix = (size_t)W * H, nsino = cs ? ms_ct_sinogram_len(cs) : 0, nk = ms ? (size_t)m.coils * npix * 2 : 0;
  size_t row_bytes = npix * (4 * 4 + 1 + (src->aux_mask ? 1 : 0)) + nsino * 4 + nk * 4 + (size_t)W;
  size_t batch = (size_t)T * 4;
  while (batch > (size_t)T && batch * row_bytes > ((size_t)512 << 20)) batch /= 2;
  if (batch > ro->n) batch = (size_t)ro->n;
  phys_batch j = {ph, src, cs, cs_lo, ms, ro->seed, 0, npix, nsino, nk, (size_t)W,
                  NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL};
  j.truth = malloc(batch * npix * sizeof(float));
  j.a = malloc(batch * npix * sizeof(float));
  j.b = malloc(batch * npix * sizeof(float));
  j.c = malloc(batch * (is_ct ? nsino : nk) * sizeof(float));
  int lf = is_ct ? (cs_lo ? ph->lowres : 1) : m.lowres_factor;
  if (lf > 1) {
    j.nlow = npix / ((size_t)lf * lf);
    j.low = malloc(batch * j.nlow * sizeof(float));
  }
  j.mask = malloc(batch * npix);
  if (src->aux_mask) j.aux = malloc(batch * npix);
  j.kmask = malloc(batch * (size_t)W);
  j.st = calloc(batch, sizeof *j.st);
  j.diag = calloc(batch, sizeof *j.diag);
  ms_writer *w = NULL;
  char *inv = NULL;
  if (!j.truth || !j.a || !j.b || !j.c || !j.mask || !j.kmask || !j.st || !j.diag || (lf > 1 && !j.low) ||
      (src->aux_mask && !j.aux)) {
    st = ms_diag_add(d, MS_ERR_NOMEM, NULL, 0, 0, NULL, "out of memory for a batch of %zu rows", batch);
    goto done;
  }
  if ((st = ms_cli_open_h5(&w, ro->out, ro->force, ro->compression, T, d)) != MS_OK) goto done;
  char img[256], full[256], tru[256], msk[256], aux[256], sino[256];
  snprintf(img, sizeof img, "/images/%s", ro->name);
  snprintf(full, sizeof full, "/images/%s_full_dose", ro->name);
  snprintf(tru, sizeof tru, "/images/%s_truth", ro->name);
  snprintf(msk, sizeof msk, "/masks/%s", ro->name);
  snprintf(aux, sizeof aux, "/masks/%s%s", ro->name, src->aux_mask ? src->aux_mask : "");
  snprintf(sino, sizeof sino, "/raw/%s_sinogram", ro->name);
  char lowp[256];
  snprintf(lowp, sizeof lowp, "/images/%s_lowres", ro->name);
  uint64_t d4[4] = {ro->n, 1, (uint64_t)H, (uint64_t)W};
  if ((st = ms_writer_begin_array(w, img, MS_DT_FLOAT32, 4, d4)) != MS_OK ||
      (st = ms_writer_begin_array(w, msk, MS_DT_UINT8, 4, d4)) != MS_OK ||
      (j.aux && (st = ms_writer_begin_array(w, aux, MS_DT_UINT8, 4, d4)) != MS_OK))
    goto done;
  if (is_ct) {
    uint64_t ds[4] = {ro->n, 1, (uint64_t)c.views, (uint64_t)c.detectors};
    if ((st = ms_writer_begin_array(w, full, MS_DT_FLOAT32, 4, d4)) != MS_OK ||
        (st = ms_writer_begin_array(w, tru, MS_DT_FLOAT32, 4, d4)) != MS_OK ||
        (st = ms_writer_begin_array(w, sino, MS_DT_FLOAT32, 4, ds)) != MS_OK)
      goto done;
    uint64_t dl[4] = {ro->n, 1, (uint64_t)(H / lf), (uint64_t)(W / lf)};
    if (lf > 1 && (st = ms_writer_begin_array(w, lowp, MS_DT_FLOAT32, 4, dl)) != MS_OK) goto done;
  } else {
    uint64_t dk[4] = {ro->n, (uint64_t)m.coils, (uint64_t)H, (uint64_t)W}, dr[3] = {ro->n, (uint64_t)H, (uint64_t)W};
    uint64_t dm[2] = {ro->n, (uint64_t)W}, dsm[3] = {(uint64_t)m.coils, (uint64_t)H, (uint64_t)W};
    if ((st = ms_writer_begin_array(w, "/kspace", MS_DT_COMPLEX64, 4, dk)) != MS_OK ||
        (st = ms_writer_begin_array(w, "/reconstruction_rss", MS_DT_FLOAT32, 3, dr)) != MS_OK ||
        (st = ms_writer_begin_array(w, "/reconstruction_zf", MS_DT_FLOAT32, 3, dr)) != MS_OK ||
        (st = ms_writer_begin_array(w, "/mask", MS_DT_UINT8, 2, dm)) != MS_OK ||
        (st = ms_writer_begin_array(w, "/sensitivity_maps", MS_DT_COMPLEX64, 3, dsm)) != MS_OK ||
        (st = ms_writer_write_items(w, "/sensitivity_maps", 0, (uint64_t)m.coils, ms_mr_system_maps(ms))) != MS_OK)
      goto done;
    uint64_t dl[3] = {ro->n, (uint64_t)(H / lf), (uint64_t)(W / lf)};
    if (lf > 1 && (st = ms_writer_begin_array(w, "/reconstruction_lowres", MS_DT_FLOAT32, 3, dl)) != MS_OK) goto done;
  }
  ms_cli_progress prog;
  ms_cli_progress_init(&prog, "phantom", ro->n);
  const ms_cancel_flag *cancel = ms_cli_cancel_flag();
  double vmax = 0, sumsq = 0;
  for (uint64_t first = 0; first < ro->n; first += batch) {
    if (ms_cli_signal() || (cancel && *cancel)) {
      st = ms_diag_add(d, MS_ERR_CANCELLED, NULL, 0, 0, NULL, "cancelled");
      goto done;
    }
    size_t nb = ro->n - first < batch ? (size_t)(ro->n - first) : batch;
    j.first = first;
    ms_parallel_for(nb, T, phys_one, &j);
    for (size_t b = 0; b < nb; b++) {
      if (j.st[b] != MS_OK && st == MS_OK) {
        st = j.st[b];
        ms_diag_append(d, &j.diag[b]);
      }
      ms_diag_deinit(&j.diag[b]);
    }
    if (st != MS_OK) goto done;
    if ((st = ms_writer_write_items(w, msk, first, nb, j.mask)) != MS_OK ||
        (j.aux && (st = ms_writer_write_items(w, aux, first, nb, j.aux)) != MS_OK))
      goto done;
    if (is_ct) {
      if ((st = ms_writer_write_items(w, img, first, nb, j.a)) != MS_OK ||
          (st = ms_writer_write_items(w, full, first, nb, j.b)) != MS_OK ||
          (st = ms_writer_write_items(w, tru, first, nb, j.truth)) != MS_OK ||
          (st = ms_writer_write_items(w, sino, first, nb, j.c)) != MS_OK ||
          (lf > 1 && (st = ms_writer_write_items(w, lowp, first, nb, j.low)) != MS_OK))
        goto done;
    } else {
      if ((st = ms_writer_write_items(w, img, first, nb, j.truth)) != MS_OK ||
          (st = ms_writer_write_items(w, "/kspace", first, nb, j.c)) != MS_OK ||
          (st = ms_writer_write_items(w, "/reconstruction_rss", first, nb, j.a)) != MS_OK ||
          (st = ms_writer_write_items(w, "/reconstruction_zf", first, nb, j.b)) != MS_OK ||
          (st = ms_writer_write_items(w, "/mask", first, nb, j.kmask)) != MS_OK ||
          (lf > 1 && (st = ms_writer_write_items(w, "/reconstruction_lowres", first, nb, j.low)) != MS_OK))
        goto done;
      for (size_t e = 0; e < nb * npix; e++) {
        vmax = fmax(vmax, j.a[e]);
        sumsq += (double)j.a[e] * j.a[e];
      }
    }
    ms_cli_progress_update(&prog, first + nb);
  }
  ms_cli_progress_done(&prog);
  char *labels = src->labels(src->ctx, 0), *aux_labels = j.aux ? src->labels(src->ctx, 1) : NULL;
  inv = invocation(ph, src, is_ct ? &c : NULL, is_ct ? NULL : &m);
  if (!labels || !inv || (j.aux && !aux_labels)) {
    free(labels);
    free(aux_labels);
    st = ms_diag_add(d, MS_ERR_NOMEM, NULL, 0, 0, NULL, "out of memory");
    goto done;
  }
  const char *common_s[] = {"kind", src->kind, "modality", src->modality};
  const char *sp_k[] = {"spacing_x_mm", "spacing_y_mm", "spacing_z_mm"};
  const double sp_v[] = {px, px, 0};
  st = set_attrs(w, msk, common_s, 2, sp_k, sp_v, 3);
  if (st == MS_OK) st = ms_writer_set_object_attr_string(w, msk, "label_table", labels);
  if (st == MS_OK && j.aux) st = set_attrs(w, aux, common_s, 2, sp_k, sp_v, 3);
  if (st == MS_OK && j.aux) st = ms_writer_set_object_attr_string(w, aux, "label_table", aux_labels);
  free(labels);
  free(aux_labels);
  if (is_ct) {
    const char *paths[] = {img, full, tru};
    const char *what[] = {"FBP reconstruction at the requested dose", "FBP reconstruction at the full dose",
                          "noise-free phantom (the truth)"};
    for (int k = 0; k < 3 && st == MS_OK; k++) {
      const char *s[] = {"kind", src->kind, "modality", "ct", "units", "HU", "content", what[k]};
      st = set_attrs(w, paths[k], s, 4, sp_k, sp_v, 3);
    }
    const char *ss[] = {"geometry", ms_ct_geometry_name(c.geometry), "filter", ms_fbp_filter_name(c.filter), "units",
                        "line integral of mu (mu in 1/mm)", "layout", "(views, detectors); view k at pi k / views "
                        "(parallel) or 2 pi k / views (fan)"};
    const char *sk[] = {"detector_mm", "sod_mm", "dose_mas", "full_dose_mas", "photons_per_ray", "full_dose_photons_per_ray",
                        "electronic_noise_sd", "mu_water_per_mm", "mu_air_per_mm", "cutoff"};
    const double sv[] = {c.detector_mm, c.geometry == MS_CT_FAN ? c.sod_mm : 0, c.dose_mas, c.full_dose_mas,
                         c.photons_per_mas * c.dose_mas, c.photons_per_mas * c.full_dose_mas, c.electronic_sd,
                         c.mu_water, c.mu_air, c.cutoff};
    if (st == MS_OK) st = set_attrs(w, sino, ss, 4, sk, sv, 10);
    if (st == MS_OK && c.beam_hardening)
      st = ms_writer_set_object_attr_string(w, sino, "beam_hardening",
                                            "polychromatic water/bone (docs/physics.md); reconstructions water-precorrected");
    if (st == MS_OK && lf > 1) {
      const char *ls[] = {"kind", src->kind, "modality", "ct", "units", "HU", "content",
                          "FBP of the measured sinogram on a coarser grid (super-resolution input)"};
      const double lv[] = {px * lf, px * lf, 0};
      st = set_attrs(w, lowp, ls, 4, sp_k, lv, 3);
    }
  } else {
    const char *s[] = {"kind", src->kind, "modality", src->modality, "units", "a.u.",
                       "content", "noise-free magnitude (the truth)"};
    st = st == MS_OK ? set_attrs(w, img, s, 4, sp_k, sp_v, 3) : st;
    char acq[64], pid[64];
    snprintf(acq, sizeof acq, "medsynth_%s_%s", src->kind, src->modality);
    snprintf(pid, sizeof pid, "medsynth-%llu", (unsigned long long)ro->seed);
    const char *rs[] = {"acquisition", acq, "patient_id", pid, "mask_kind", ms_mr_mask_kind_name(m.mask)};
    const char *rk[] = {"max", "norm", "acceleration", "center_fraction", "noise_sd", "partial_fourier"};
    const double rv[] = {vmax, sqrt(sumsq), m.acceleration, m.center_fraction, m.noise_sd, m.partial_fourier};
    for (int k = 0; k < 3 && st == MS_OK; k++) st = ms_writer_set_attr_string(w, rs[2 * k], rs[2 * k + 1]);
    for (int k = 0; k < 6 && st == MS_OK; k++) st = ms_writer_set_attr_double(w, rk[k], rv[k]);
    if (st == MS_OK) st = ms_writer_set_attr_int(w, "coils", m.coils);
  }
  ms_provenance pv = {.command = "phantom", .seed = ro->seed, .invocation = inv};
  if (st == MS_OK) st = ms_writer_set_provenance(w, &pv);
  if (st != MS_OK) goto done;
  st = ms_writer_commit(w, d);
  w = NULL;
done:
  if (w) ms_writer_abort(w);
  free(j.truth);
  free(j.a);
  free(j.b);
  free(j.c);
  free(j.mask);
  free(j.aux);
  free(j.kmask);
  free(j.low);
  free(j.st);
  free(j.diag);
  free(inv);
  ms_ct_system_free(cs);
  ms_ct_system_free(cs_lo);
  ms_mr_system_free(ms);
  return st;
}
