/* Running independent work items on the library's worker threads.
 *
 * Usage:
 *   static void render(void *ctx, size_t i, size_t worker) {
 *     job *j = ctx;                      // slot[worker]: that thread's buffers
 *     ms_phantom_generate(&j->slot[worker], j->p, NULL, j->seed, j->first + i, NULL);
 *   }
 *   ms_parallel_for(n, threads, render, &j);
 *
 * The library runs its own parallel work (kernels, record generation, the
 * dataset writer) on one pool of worker threads instead of OpenMP parallel
 * regions, so that two threads stay at least as fast as one when other
 * processes share the cores (docs/reliability.md, "Busy machines"). A
 * program that runs library calls side by side can use the same threads
 * through this call, rather than start a second set (an OpenMP team of its
 * own would spin, after each region, against the pool's threads).
 *
 * Items are handed out in increasing order to whichever of the threads are
 * running: the calling thread always takes part, and a helper that has not
 * woken up yet is never waited for. `worker` (below the thread count) says
 * which thread runs an item, for per-thread buffers only: what an item
 * computes must not depend on it. Library calls made from inside an item
 * run on that item's thread alone. Called from inside an item, from an
 * OpenMP parallel region, or while another application thread has a call
 * running, the items run on the calling thread, in order.
 *
 * Ownership: ctx is borrowed for the call; nothing is allocated for the
 * caller. The worker threads are created on first use and kept. */
#ifndef MEDSYNTH_PARALLEL_H
#define MEDSYNTH_PARALLEL_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One item: i in [0, n), worker in [0, threads). */
typedef void (*ms_parallel_fn)(void *ctx, size_t i, size_t worker);

/* Runs fn(ctx, i, worker) once for every i in [0, n) on at most `threads`
 * threads (threads <= 0: omp_get_max_threads(), the library's thread-count
 * setting) and returns when all have finished. Never fails: without helper
 * threads every item runs on the caller. */
void ms_parallel_for(size_t n, int threads, ms_parallel_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif

#endif
