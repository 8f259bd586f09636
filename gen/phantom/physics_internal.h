/* Private pieces shared by the CT and MR physics sources.
 *
 * The FFTW planner keeps process-wide state and is not thread-safe; plans
 * are created and destroyed under ms__fftw_lock (a lock, not a value that
 * reaches any result). Executing a plan through the new-array functions
 * needs no lock. */
#ifndef MEDSYNTH_PHYSICS_INTERNAL_H
#define MEDSYNTH_PHYSICS_INTERNAL_H

#include <pthread.h>

extern pthread_mutex_t ms__fftw_lock;

#endif
