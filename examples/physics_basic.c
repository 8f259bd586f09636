/* Example: a low-dose / full-dose CT pair and an undersampled MR slice from
 * one phantom each, through the public API (docs/physics.md, "Library").
 * Prints how far each reconstruction is from its truth, and writes two
 * sheets: outdir/physics_ct.png (truth, 100 mAs, 20 mAs; soft-tissue
 * window) and outdir/physics_mr.png (truth, zero-filled 4x, RSS of full
 * k-space). The figures of docs/physics.md are `example_physics_basic docs/img`.
 *
 * Usage: example_physics_basic [outdir] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "medsynth/phantom.h"
#include "medsynth/physics.h"
#include "medsynth/png.h"

static double rmse(const float *a, const float *b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += (a[i] - b[i]) * (a[i] - b[i]);
  return sqrt(s / (double)n);
}

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : ".";
  int N = 192;
  size_t n = (size_t)N * N;
  ms_diag d;
  ms_diag_init(&d);

  /* The truth: a noise-free chest slice with one nodule. */
  ms_phantom_params p;
  ms_phantom_params_init(&p, MS_PHANTOM_CHEST);
  p.width = p.height = N;
  p.noise = 0;
  p.lesions.count_min = p.lesions.count_max = 1;
  ms_phantom_image img;
  if (ms_phantom_image_init(&img, &p, &d) != MS_OK || ms_phantom_generate(&img, &p, NULL, 42, 0, &d) != MS_OK)
    goto fail;

  /* CT: 360 parallel views, 20 vs 100 mAs, Hann-windowed FBP. */
  ms_ct_params c;
  ms_ct_params_init(&c, N, N, p.fov_mm / N);
  c.dose_mas = 20;
  c.filter = MS_FBP_HANN;
  ms_ct_system *ct = NULL;
  if (ms_ct_system_new(&ct, &c, &d) != MS_OK) goto fail;
  float *sheet = malloc(3 * n * sizeof(float)), *sino = malloc(ms_ct_sinogram_len(ct) * sizeof(float));
  if (!sheet || !sino) return 1;
  memcpy(sheet, img.image, n * sizeof(float));
  if (ms_ct_acquire(ct, sino, sheet + 2 * n, sheet + n, img.image, 42, 0, &d) != MS_OK) goto fail;
  /* Most of the distance to the truth is the blur of FBP at edges, the same
   * at both doses; the low - full difference is mostly low-dose noise. */
  printf("CT: %d views x %d detectors; RMSE to truth: full dose %.1f HU, low dose %.1f HU; low - full %.1f HU\n",
         ms_ct_system_params(ct)->views, ms_ct_system_params(ct)->detectors, rmse(sheet + n, img.image, n),
         rmse(sheet + 2 * n, img.image, n), rmse(sheet + 2 * n, sheet + n, n));
  ms_sheet_params so;
  ms_sheet_params_init(&so);
  so.columns = 3;
  so.window_center = 40; /* soft-tissue window: noise and streaks show */
  so.window_width = 400;
  char path[4096];
  snprintf(path, sizeof path, "%s/physics_ct.png", dir);
  if (ms_png_contact_sheet(path, sheet, NULL, 3, N, N, &so, &d) != MS_OK) goto fail;

  /* MR: the T2 render of a head, 8 coils, 4x equispaced undersampling. */
  ms_phantom_params_init(&p, MS_PHANTOM_HEAD);
  p.modality = MS_MODALITY_T2;
  p.width = p.height = N;
  p.noise = 0;
  ms_phantom_image_deinit(&img);
  if (ms_phantom_image_init(&img, &p, &d) != MS_OK || ms_phantom_generate(&img, &p, NULL, 42, 0, &d) != MS_OK)
    goto fail;
  ms_mr_params m;
  ms_mr_params_init(&m, N, N, p.fov_mm / N);
  ms_mr_system *mr = NULL;
  if (ms_mr_system_new(&mr, &m, &d) != MS_OK) goto fail;
  ms_mr_output o = {malloc((size_t)m.coils * n * 2 * sizeof(float)), malloc((size_t)N), malloc(n * sizeof(float)),
                    malloc(n * sizeof(float)), NULL};
  if (!o.kspace || !o.mask || !o.rss || !o.zf) return 1;
  if (ms_mr_acquire(mr, &o, img.image, 42, 0, &d) != MS_OK) goto fail;
  printf("MR: %d coils, %d of %d columns sampled; RMSE to truth: RSS %.3g, zero-filled %.3g\n", m.coils,
         ms_mr_mask_lines(mr), N, rmse(o.rss, img.image, n), rmse(o.zf, img.image, n));
  float mx = 0;
  for (size_t i = 0; i < n; i++) mx = img.image[i] > mx ? img.image[i] : mx;
  memcpy(sheet, img.image, n * sizeof(float));
  memcpy(sheet + n, o.zf, n * sizeof(float));
  memcpy(sheet + 2 * n, o.rss, n * sizeof(float));
  so.window_center = 0.5 * mx;
  so.window_width = mx;
  snprintf(path, sizeof path, "%s/physics_mr.png", dir);
  if (ms_png_contact_sheet(path, sheet, NULL, 3, N, N, &so, &d) != MS_OK) goto fail;

  free(o.kspace);
  free(o.mask);
  free(o.rss);
  free(o.zf);
  free(sheet);
  free(sino);
  ms_mr_system_free(mr);
  ms_ct_system_free(ct);
  ms_phantom_image_deinit(&img);
  ms_diag_deinit(&d);
  return 0;
fail:
  for (size_t i = 0; i < d.count; i++) fprintf(stderr, "error: %s\n", d.entries[i].message);
  return 1;
}
