/* medsynth phantom --physics ct|mr: the acquisition options and the run that
 * writes raw data, reconstructions and truth side by side (docs/physics.md).
 *
 * cmd_phantom.c hands its argv to ms_cli_physics_extract first, which takes
 * out the physics options (and leaves every other option in order), then
 * calls ms_cli_physics_run instead of its own run when --physics was given;
 * cmd_brain.c does the same with ms_cli_physics_run_source, its renderer
 * and its options. */
#ifndef MS_CLI_PHANTOM_PHYSICS_H
#define MS_CLI_PHANTOM_PHYSICS_H

#include <stdint.h>

#include "cli.h"
#include "medsynth/phantom.h"
#include "medsynth/physics.h"

typedef struct {
  int kind; /* 0 none, 1 ct, 2 mr */
  ms_ct_geometry geometry;
  ms_fbp_filter filter;
  int views, detectors;
  double full_dose, photons, electronic, sod, cutoff;
  int coils;
  double acceleration, center_fraction, partial_fourier;
  ms_mr_mask_kind mask;
  int lowres; /* 0: not given */
  int beam_hardening; /* CT: polychromatic water/bone beam (--beam-hardening on) */
  int set_full_dose, set_photons, set_electronic, set_sod, set_cutoff, set_coils, set_acc, set_cf, set_pf;
} ms_cli_physics;

/* Usage lines of the physics options. */
extern const char ms_cli_physics_usage[];

/* Removes the physics options from argv[1..*argc) (compacting it) into ph.
 * Returns 0, or -1 after printing a usage error. */
int ms_cli_physics_extract(int *argc, char **argv, ms_cli_physics *ph);

typedef struct {
  const char *out, *name;
  uint64_t n, seed;
  int threads, force, compression;
} ms_cli_physics_run_params;

/* Renders N truths with p (noise-free; p's noise settings drive the
 * acquisition) and writes the paired datasets. */
ms_status ms_cli_physics_run(const ms_cli_physics *ph, const ms_cli_physics_run_params *ro, const ms_phantom_params *p,
                             int dose_set, ms_diag *d);

/* Where the truths of a run come from: the phantom generator
 * (ms_cli_physics_run) or the atlas brain (cmd_brain.c). */
typedef struct {
  int width, height;           /* the slice */
  double pixel_mm;
  int is_ct;                   /* HU truths for CT physics; otherwise MR */
  int noise;                   /* 0: a noise-free acquisition */
  double mr_noise_sd;          /* MR: complex noise sd per sample */
  const char *kind, *modality; /* attribute values ("head", "t2"; "brain", "flair") */
  const char *aux_mask;        /* NULL, or the suffix of a second mask ("_aal": /masks/<name>_aal) */
  /* Renders the noise-free truth of image idx with worker's scratch:
   * image and mask [H][W], aux [H][W] (NULL without aux_mask). Called from
   * any thread, each worker with its own index. */
  ms_status (*render)(void *ctx, size_t worker, uint64_t seed, uint64_t idx, float *image, uint8_t *mask,
                      uint8_t *aux, ms_diag *d);
  /* The label table (JSON, caller frees) of the mask (aux 0) or the second mask (aux 1). */
  char *(*labels)(void *ctx, int aux);
  /* The source's options for the invocation: before "physics", right
   * after it, and after the physics options. */
  const ms_cli_pv *pv, *pv_after, *pv_tail;
  size_t n_pv, n_pv_after, n_pv_tail;
  void *ctx;
} ms_cli_physics_source;

/* The run of ms_cli_physics_run on any source; dose (mAs, CT) when
 * dose_set. */
ms_status ms_cli_physics_run_source(const ms_cli_physics *ph, const ms_cli_physics_run_params *ro,
                                    const ms_cli_physics_source *src, int dose_set, double dose, ms_diag *d);

#endif
