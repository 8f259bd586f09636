/* Radiology reports composed from a phantom image's measured lesions
 * (report.c explains every rule). Private to the library. */
#ifndef MS_MULTIMODAL_REPORT_H
#define MS_MULTIMODAL_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "medsynth/phantom.h"

typedef struct {
  const char *key; /* "<table>/<field>": keys the wording choices */
  uint64_t seed, row;
  ms_phantom_kind kind;
  ms_modality modality;
  int organ;       /* the lesions' organ label (lung, liver, white matter) */
  int width, height, depth;
  size_t n_lesions;
  const ms_phantom_lesion *lesions;
} ms__report_in;

/* text: "Findings" lines (one per lesion, largest first) and the
 * impression; impression alone; category: the Lung-RADS-like category of a
 * chest CT with lung lesions ("1", "2", "3", "4A", "4B"), else "". */
void ms__report_compose(const ms__report_in *in, char *text, size_t text_cap, char *impression,
                        size_t imp_cap, char category[4]);
double ms__report_diameter_mm(const ms_phantom_lesion *l, int depth);
const char *ms__report_density(double value_hu);
const char *ms__report_category(double d_mm, const char *density);

#endif
