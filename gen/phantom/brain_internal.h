/* Private layout of the brain atlas, shared by gen/phantom/atlas.c (loading,
 * tissue derivation) and gen/phantom/brain.c (rendering). */
#ifndef MEDSYNTH_BRAIN_INTERNAL_H
#define MEDSYNTH_BRAIN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "medsynth/brain.h"

struct ms_brain_atlas {
  int dims[3];
  size_t n_voxels;
  double affine[12];     /* voxel -> RAS mm (3 x 4) */
  double inv_affine[12]; /* RAS mm -> voxel */
  uint8_t *t1, *bet, *aal, *tissue;
  char *aal_names[256];
  double centre[3];               /* RAS centre of the brain mask's bounding box */
  double ventricle_centre[2][3];  /* left, right lateral ventricle centroids, relative to centre */
  /* Tumour sites: deep white-matter voxels (>= 10 mm inside the brain) by
   * lobe; sites[site_start[l] .. site_start[l + 1]) for lobe l >= 1. */
  uint32_t *sites;
  /* Cortical GM: city-block depth (voxels) from the nearest CSF voxel
   * through cortical GM, 1 = touching CSF; 255 elsewhere. */
  uint8_t *gm_depth;
  size_t site_start[MS_BRAIN_LOBE_COUNT + 1];
};

/* RAS millimetres of atlas voxel v. */
void ms__brain_atlas_ras(const ms_brain_atlas *a, size_t v, double *x, double *y, double *z);

#endif
