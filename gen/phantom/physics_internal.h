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
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

extern pthread_mutex_t ms__fftw_lock;

/* 64-byte aligned memory for FFT buffers (the alignment every plan is made
 * for); the size is rounded up to a multiple of 64, as aligned_alloc
 * requires. Released with free(). */
static inline void *ms__fft_alloc(size_t n) { return ms__aligned_alloc(64, (n + 63) & ~(size_t)63); }

/* 1 when the CPU runs AVX2 code and MS_PHYSICS_GENERIC is not set (the
 * physics' SIMD paths compute the same bits as the generic code, only
 * faster; the variable lets tests compare the two). */
static inline int ms__cpu_avx2(void) {
#if defined(__x86_64__) || defined(__i386__)
  const char *g = getenv("MS_PHYSICS_GENERIC");
  return __builtin_cpu_supports("avx2") && !(g && *g && strcmp(g, "0"));
#else
  return 0;
#endif
}

#endif
