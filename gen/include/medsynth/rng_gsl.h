/* A gsl_rng backed by medsynth's keyed generator (medsynth/rng.h), for GSL
 * distributions (gsl_ran_*). Kept out of rng.h so that the keyed generator's
 * header does not need GSL's.
 *
 * Usage:
 *   gsl_rng *g = ms_rng_gsl_new();
 *   ms_rng_gsl_reset(g, key, row, lane);   // before each keyed draw
 *   double x = gsl_ran_gamma(g, shape, scale);
 *   gsl_rng_free(g);
 *
 * Reset it to (key, index, lane) before each keyed draw so rejection loops
 * stay keyed: successive gsl_rng_get calls walk the words of block (index,
 * lane), then (index, lane+1), ... */
#ifndef MEDSYNTH_RNG_GSL_H
#define MEDSYNTH_RNG_GSL_H

#include <gsl/gsl_rng.h>
#include <stdint.h>

#include "medsynth/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A gsl_rng whose type is "medsynth-philox". Caller frees with gsl_rng_free.
 * NULL on allocation failure. */
gsl_rng *ms_rng_gsl_new(void);
/* The gsl_rng_type, for callers that allocate with gsl_rng_alloc. */
const gsl_rng_type *ms_rng_gsl_type(void);
/* Positions a medsynth gsl_rng at block (index, lane), word 0. */
void ms_rng_gsl_reset(gsl_rng *r, ms_rng_key key, uint64_t index, uint64_t lane);

#ifdef __cplusplus
}
#endif
#endif
