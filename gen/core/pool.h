/* The library's worker threads: one process-wide pool that runs a numbered
 * set of independent tasks on the calling thread plus up to
 * max_workers - 1 helper threads.
 *
 *   static void rows(void *ctx, size_t task, size_t worker) { ... }
 *   ms__parallel(n_tasks, ms__parallel_threads(), rows, &ctx);
 *
 * Why not an OpenMP parallel region: a region ends when every thread of its
 * team has passed its barrier, and libgomp's threads wait there (and
 * between regions) by spinning for a long time before they sleep. When the
 * cores are shared with other work, a team member that has lost its core
 * holds everyone up while the others burn the remaining cores spinning; the
 * UNet's ~120 kernel calls per forward pass made two threads 5 to 25 times
 * slower than one on a two-core machine with one busy core
 * (docs/reliability.md, "Busy machines"). Here:
 *
 * - Tasks are claimed one at a time from a shared counter, in increasing
 *   order, by whichever threads are running. A helper that has not woken
 *   up yet is never waited for: the caller simply runs the tasks itself.
 *   The caller waits only for tasks a helper has already claimed.
 * - Waiting threads spin for at most 50 microseconds (enough to catch the
 *   next kernel call on a quiet machine) and then sleep on a futex; they
 *   sleep at once when the spin shows they have lost their core.
 * - Helpers are used only while they pay: when the process gets no more
 *   CPU with them than with the caller alone (another session's busy
 *   process under autogroup scheduling), jobs run on the caller for a
 *   while (core/pool.c).
 *
 * Results never depend on which thread runs a task: `worker` (< the
 * max_workers passed, 0 for the caller) may only select per-thread scratch
 * space, never what a task computes. Tasks must not wait for each other.
 *
 * One job runs at a time. A call made while another job is running (from a
 * task, from another application thread, or from inside an OpenMP parallel
 * region) runs its tasks on its own thread, in order. The helpers are
 * created on first use, live until the process ends, and are recreated in
 * a child after fork(). The pool is process state like OpenMP's own
 * runtime; it holds no values that reach any result. */
#ifndef MS_CORE_POOL_H
#define MS_CORE_POOL_H

#include <stddef.h>

/* One task: `task` in [0, n_tasks), `worker` in [0, max_workers). */
typedef void (*ms__task_fn)(void *ctx, size_t task, size_t worker);

/* Threads a parallel operation may use here and now: 1 inside a pool task
 * or an OpenMP parallel region, omp_get_max_threads() otherwise (the
 * library's documented thread-count setting). */
size_t ms__parallel_threads(void);

/* Runs fn(ctx, task, worker) exactly once for every task in [0, n_tasks)
 * and returns when all have finished. Tasks are handed out in increasing
 * order; at most max_workers threads take part (max_workers <= 1: all on
 * the caller). Never fails: without helper threads everything runs on the
 * caller. */
void ms__parallel(size_t n_tasks, size_t max_workers, ms__task_fn fn, void *ctx);

/* Pieces per thread that ms__parallel_range and the kernels aim for: a
 * thread that loses its core for a while then holds up at most one small
 * piece, and the others take the rest. */
#define MS__TASKS_PER_THREAD 4

/* One piece [i0, i1) of a range. */
typedef void (*ms__range_fn)(void *ctx, size_t i0, size_t i1);

/* Runs fn over [0, n) cut into at most MS__TASKS_PER_THREAD pieces per
 * thread of ms__parallel_threads(), each at least `grain` items (piece t
 * is [n*t/T, n*(t+1)/T)); below two such pieces, one call fn(ctx, 0, n) on
 * the caller. fn must compute the same values whatever the cut. */
void ms__parallel_range(size_t n, size_t grain, ms__range_fn fn, void *ctx);

#endif
