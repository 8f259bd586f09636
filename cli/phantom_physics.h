/* medsynth phantom --physics ct|mr: the acquisition options and the run that
 * writes raw data, reconstructions and truth side by side (docs/physics.md).
 *
 * cmd_phantom.c hands its argv to ms_cli_physics_extract first, which takes
 * out the physics options (and leaves every other option in order), then
 * calls ms_cli_physics_run instead of its own run when --physics was given. */
#ifndef MS_CLI_PHANTOM_PHYSICS_H
#define MS_CLI_PHANTOM_PHYSICS_H

#include <stdint.h>

#include "medsynth/phantom.h"
#include "medsynth/physics.h"

typedef struct {
  int kind; /* 0 none, 1 ct, 2 mr */
  ms_ct_geometry geometry;
  ms_fbp_filter filter;
  int views, detectors;
  double full_dose, photons, electronic, sod, cutoff;
  int coils;
  double acceleration, center_fraction;
  ms_mr_mask_kind mask;
  int lowres; /* 0: not given */
  int beam_hardening; /* CT: polychromatic water/bone beam (--beam-hardening on) */
  int set_full_dose, set_photons, set_electronic, set_sod, set_cutoff, set_coils, set_acc, set_cf;
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

#endif
