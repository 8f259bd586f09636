/* Example: render four chest CT slices with lung nodules through the public
 * API, print each lesion as measured on the mask, and save a contact sheet
 * (lung window, mask contours) and the first image as NIfTI.
 *
 * Usage: example_phantom_basic [outdir]   (docs/phantoms.md, "Library") */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "medsynth/nifti.h"
#include "medsynth/phantom.h"
#include "medsynth/png.h"

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : ".";
  enum { N = 4 };
  ms_phantom_params p;
  ms_phantom_params_init(&p, MS_PHANTOM_CHEST);
  p.width = p.height = 192;
  p.lesions.count_min = p.lesions.count_max = 2; /* two nodules per image */
  p.lesions.diameter_min_mm = 8;
  p.lesions.diameter_max_mm = 16;
  ms_diag d;
  ms_diag_init(&d);
  ms_phantom_image img;
  if (ms_phantom_image_init(&img, &p, &d) != MS_OK) goto fail;
  size_t npix = img.n_pixels;
  float *images = malloc(N * npix * sizeof(float));
  uint8_t *masks = malloc(N * npix);
  if (!images || !masks) return 1;
  printf("image label organ      area_mm2 centroid(col,row)\n");
  for (uint64_t i = 0; i < N; i++) {
    /* Patient 2 is given explicitly (as a record row would); others are drawn. */
    ms_phantom_subject s;
    ms_phantom_subject_init(&s);
    if (i == 2) s.body_scale = 0.9;
    if (ms_phantom_generate(&img, &p, &s, 42, i, &d) != MS_OK) goto fail;
    memcpy(images + i * npix, img.image, npix * sizeof(float));
    memcpy(masks + i * npix, img.mask, npix);
    for (size_t l = 0; l < img.n_lesions; l++) {
      const ms_phantom_lesion *r = &img.lesions[l];
      printf("%5llu %5d %-10s %8.1f (%.1f, %.1f)\n", (unsigned long long)i, r->label, ms_label_name(r->organ),
             r->size_mm, r->centroid[0], r->centroid[1]);
    }
  }
  ms_window w;
  ms_window_preset("lung", &w);
  ms_sheet_params o;
  ms_sheet_params_init(&o);
  o.window_center = w.center;
  o.window_width = w.width;
  o.overlay = MS_OVERLAY_CONTOUR;
  char path[4096];
  snprintf(path, sizeof path, "%s/phantom_sheet.png", dir);
  if (ms_png_contact_sheet(path, images, masks, N, img.height, img.width, &o, &d) != MS_OK) goto fail;
  ms_nifti_desc n;
  ms_nifti_desc_init(&n);
  n.dim[0] = img.width;
  n.dim[1] = img.height;
  n.dim[2] = 1;
  for (int a = 0; a < 3; a++) n.pixdim[a] = img.spacing[a];
  snprintf(path, sizeof path, "%s/phantom_0.nii.gz", dir);
  if (ms_nifti_write(path, &n, images, &d) != MS_OK) goto fail;
  printf("wrote %s/phantom_sheet.png and %s/phantom_0.nii.gz\n", dir, dir);
  free(images);
  free(masks);
  ms_phantom_image_deinit(&img);
  ms_diag_deinit(&d);
  return 0;
fail : {
  char *t = ms_diag_format(&d);
  fprintf(stderr, "%s", t ? t : "error\n");
  free(t);
  return 1;
}
}
