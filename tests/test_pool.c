/* Tests of the library's worker threads (gen/core/pool.c).
 * ctest-labels: unit
 *
 * Every task runs exactly once, on a worker index below the job's limit;
 * calls made from a task, from several application threads at once, or in
 * a child after fork() still run every task; ranges are covered exactly
 * once. Many small jobs in a row exercise the hand-over between jobs
 * (helpers waking late for a finished job must claim nothing). */
#include <omp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/pool.h"

#define MAX_TASKS 4096

typedef struct {
  _Atomic int runs[MAX_TASKS];
  _Atomic int bad_worker;
  size_t max_workers;
} count_job;

static void count_task(void *ctx, size_t t, size_t worker) {
  count_job *j = ctx;
  atomic_fetch_add(&j->runs[t], 1);
  if (worker >= j->max_workers) atomic_store(&j->bad_worker, 1);
}

/* Runs n tasks on at most w workers; 0 if every task ran once. */
static int run_counted(size_t n, size_t w) {
  count_job *j = calloc(1, sizeof *j);
  if (!j) return -1;
  j->max_workers = w < 1 ? 1 : w;
  ms__parallel(n, w, count_task, j);
  int bad = atomic_load(&j->bad_worker);
  for (size_t t = 0; t < n; t++)
    if (atomic_load(&j->runs[t]) != 1) bad = 1;
  for (size_t t = n; t < MAX_TASKS; t++)
    if (atomic_load(&j->runs[t]) != 0) bad = 1;
  free(j);
  return bad;
}

static void test_pool_runs_every_task_once(void **state) {
  (void)state;
  const size_t ns[] = {0, 1, 2, 3, 7, 64, 1000, MAX_TASKS};
  const size_t ws[] = {0, 1, 2, 3, 8, 17};
  for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
    for (size_t b = 0; b < sizeof ws / sizeof ws[0]; b++)
      if (run_counted(ns[a], ws[b]))
        fail_msg("%zu tasks on %zu workers: a task ran twice, never, or on a bad worker", ns[a],
                 ws[b]);
}

static void test_pool_many_small_jobs(void **state) {
  (void)state;
  for (int i = 0; i < 20000; i++)
    if (run_counted((size_t)(i % 9) + 1, (size_t)(i % 3) + 2))
      fail_msg("job %d: a task ran twice or never", i);
}

typedef struct {
  _Atomic int inner_runs;
  _Atomic int not_inline;
  _Atomic int threads_not_one;
} nest_job;

static void inner_task(void *ctx, size_t t, size_t worker) {
  nest_job *j = ctx;
  (void)t;
  if (worker != 0) atomic_store(&j->not_inline, 1);
  atomic_fetch_add(&j->inner_runs, 1);
}

static void outer_task(void *ctx, size_t t, size_t worker) {
  nest_job *j = ctx;
  (void)t;
  (void)worker;
  if (ms__parallel_threads() != 1) atomic_store(&j->threads_not_one, 1);
  ms__parallel(5, 4, inner_task, j);
}

static void test_pool_nested_calls_run_inline(void **state) {
  (void)state;
  nest_job j = {0};
  ms__parallel(6, 3, outer_task, &j);
  assert_int_equal(atomic_load(&j.inner_runs), 30);
  assert_int_equal(atomic_load(&j.not_inline), 0);
  assert_int_equal(atomic_load(&j.threads_not_one), 0);
  /* inside an OpenMP region the pool is not used either */
  int inside = 0;
#pragma omp parallel num_threads(2)
  {
#pragma omp master
    inside = (int)ms__parallel_threads();
  }
  assert_int_equal(inside, 1);
}

static void *caller_thread(void *arg) {
  int *bad = arg;
  for (int i = 0; i < 2000; i++)
    if (run_counted((size_t)(i % 13) + 1, 3)) *bad = 1;
  return NULL;
}

static void test_pool_concurrent_callers(void **state) {
  (void)state;
  pthread_t th[4];
  int bad[4] = {0};
  for (int i = 0; i < 4; i++) assert_int_equal(pthread_create(&th[i], NULL, caller_thread, &bad[i]), 0);
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(bad[i], 0);
  }
}

static void test_pool_works_after_fork(void **state) {
  (void)state;
  assert_int_equal(run_counted(100, 4), 0); /* helpers exist in the parent */
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int bad = 0;
    for (int i = 0; i < 200; i++) bad |= run_counted(50, 4);
    _exit(bad ? 1 : 0);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_int_equal(run_counted(100, 4), 0);
}

typedef struct {
  _Atomic int cover[10000];
  _Atomic size_t min_piece;
} range_ctx;

static void range_piece(void *ctx, size_t i0, size_t i1) {
  range_ctx *r = ctx;
  for (size_t i = i0; i < i1; i++) atomic_fetch_add(&r->cover[i], 1);
  size_t m = atomic_load(&r->min_piece);
  while (i1 - i0 < m && !atomic_compare_exchange_weak(&r->min_piece, &m, i1 - i0)) {
  }
}

static void test_pool_range_covers_once(void **state) {
  (void)state;
  const int saved = omp_get_max_threads();
  const size_t ns[] = {1, 5, 99, 1000, 10000};
  const size_t grains[] = {1, 7, 100, 20000};
  const int threads[] = {1, 2, 3, 8};
  for (size_t a = 0; a < 5; a++)
    for (size_t g = 0; g < 4; g++)
      for (size_t t = 0; t < 4; t++) {
        omp_set_num_threads(threads[t]);
        range_ctx *r = calloc(1, sizeof *r);
        assert_non_null(r);
        atomic_store(&r->min_piece, SIZE_MAX);
        ms__parallel_range(ns[a], grains[g], range_piece, r);
        for (size_t i = 0; i < 10000; i++)
          if (atomic_load(&r->cover[i]) != (i < ns[a]))
            fail_msg("n %zu grain %zu threads %d: item %zu covered %d times", ns[a], grains[g],
                     threads[t], i, atomic_load(&r->cover[i]));
        /* pieces hold at least `grain` items unless the range is one piece */
        const size_t mp = atomic_load(&r->min_piece);
        if (mp != ns[a] && mp < grains[g])
          fail_msg("n %zu grain %zu: piece of %zu", ns[a], grains[g], mp);
        free(r);
      }
  omp_set_num_threads(saved);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pool_runs_every_task_once),
      cmocka_unit_test(test_pool_many_small_jobs),
      cmocka_unit_test(test_pool_nested_calls_run_inline),
      cmocka_unit_test(test_pool_concurrent_callers),
      cmocka_unit_test(test_pool_works_after_fork),
      cmocka_unit_test(test_pool_range_covers_once),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
