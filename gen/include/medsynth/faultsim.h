/* Allocation fault simulation, for tests of out-of-memory handling.
 *
 * Usage (the model is sqlite's faultsimConfig):
 *   for (long i = 0;; i++) {
 *     ms_faultsim_config(i, 1);        // allocations 0..i-1 succeed, the i-th fails
 *     ms_status st = run_the_operation();
 *     long failed = ms_faultsim_failures();
 *     ms_faultsim_config(-1, 0);       // off again
 *     assert(st == MS_OK || st == MS_ERR_NOMEM);
 *     if (failed == 0) break;          // the operation made fewer than i+1 allocations
 *   }
 *
 * Every allocation the library makes for its own data structures goes
 * through one hook; when the simulation is armed, the hook counts them and
 * returns NULL for the chosen ones. Allocations made inside other libraries
 * (HDF5, GSL, libpng, cairo, zlib) are not counted; cJSON's are when the
 * library parses or prints JSON (it is given the hook through
 * cJSON_InitHooks by ms_faultsim_config).
 *
 * The simulation is process-wide state, the one deliberate exception to the
 * library's no-global rule: it exists for tests only, costs one atomic load
 * per allocation when off, and is thread-safe while armed (the counter is
 * atomic, so with several threads the failing allocation is whichever one
 * comes n-th). Call ms_faultsim_config only while no other thread is inside
 * the library (it also swaps cJSON's global hooks). A simulated failure sets
 * errno to ENOMEM, as a failing malloc does. */
#ifndef MEDSYNTH_FAULTSIM_H
#define MEDSYNTH_FAULTSIM_H

#ifdef __cplusplus
extern "C" {
#endif

/* Arms the simulation: the next `delay` allocations succeed, then `repeat`
 * fail (repeat < 0: all later ones fail), then allocations succeed again.
 * delay < 0 switches it off. Resets both counters. */
void ms_faultsim_config(long delay, long repeat);
/* Allocations that returned NULL because of the simulation since the last
 * ms_faultsim_config. */
long ms_faultsim_failures(void);
/* Allocations that went through the hook since the last ms_faultsim_config
 * (successful and failed), counted only while armed. */
long ms_faultsim_count(void);

#ifdef __cplusplus
}
#endif
#endif
