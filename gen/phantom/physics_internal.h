/* Private pieces shared by the CT and MR physics sources.
 *
 * The FFTW planner keeps process-wide state and is not thread-safe; plans
 * are created and destroyed under ms__fftw_lock (a lock, not a value that
 * reaches any result). Executing a plan through the new-array functions
 * needs no lock. */
#ifndef MEDSYNTH_PHYSICS_INTERNAL_H
#define MEDSYNTH_PHYSICS_INTERNAL_H

#include <pthread.h>
#include <stddef.h>

#include "core/alloc.h"

extern pthread_mutex_t ms__fftw_lock;

/* 64-byte aligned memory for FFT buffers (the alignment every plan is made
 * for); the size is rounded up to a multiple of 64, as aligned_alloc
 * requires. Released with free(). */
static inline void *ms__fft_alloc(size_t n) { return ms__aligned_alloc(64, (n + 63) & ~(size_t)63); }

#endif
