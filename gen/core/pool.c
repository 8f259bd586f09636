/* The library's worker threads (see core/pool.h for the contract).
 *
 * State: one static pool. `claim` packs the job number (high 32 bits) with
 * the number of tasks not yet claimed (low 32 bits); a thread takes task
 * n - remaining by a compare-and-swap that also checks the job number, so a
 * helper that wakes late for a finished job claims nothing and never reads
 * that job's fields. The job's fields (fn, ctx, n) are read only after a
 * successful claim: the job cannot finish, nor its fields change, while one
 * of its tasks is unfinished. `pending` counts unfinished tasks; the caller
 * returns when it reaches zero. Each helper has its own slot (a cache line)
 * with the number of the last job it was asked to join, so a job with
 * max_workers = k wakes only helpers 1 .. k-1.
 *
 * Waiting (helpers for a job, the caller for tasks claimed by helpers):
 * spinning with the pause instruction for at most WAIT_SPIN_NS, then a
 * futex sleep. On a quiet machine a helper is thus still awake when the
 * next kernel call comes a few microseconds later (libgomp's default spins
 * for about 300 000 pauses, milliseconds, and a team member cannot leave
 * before the others). When the spin itself is interrupted for longer than
 * WAIT_PREEMPTED_NS the thread has lost its core to another one, so it
 * sleeps at once: on a busy machine a waiting thread gives its core back
 * (to the thread it waits for, or to other work) instead of spinning.
 * sched_yield() is not used: it only reorders threads on one core, and
 * the EEVDF scheduler (Linux 6.6+) charges a yielding thread a full slice.
 *
 * Whether helpers pay: with autogroup scheduling every session gets an
 * equal share of the CPUs, so beside a busy process of another session two
 * threads get no more CPU than one, and every wait for a helper costs
 * time. So the caller measures, on at most one job per 2 ms, the process
 * CPU time per wall time while jobs run (windows of 8 such jobs). A thread
 * alone never gets more than one core, so a rate of 1.1 or more means the
 * helpers pay. Below that, a window of jobs runs on the caller alone to
 * measure what one thread gets; if the helpers do not bring 10 % more,
 * jobs run on the caller alone for 100 ms, then 200 ms, ... up to 2 s
 * before the helpers are tried again (a solo rate is measured again when
 * it is older than 2 s). On a quiet machine the rate is 1.3-1.9 and no
 * solo window ever runs. Which threads run a job never changes results.
 *
 * Memory order: the caller writes fn, ctx and n, then publishes the job with
 * a sequentially consistent store to `claim`; a successful claim reads from
 * it (or from a later claim of the same job), so it sees those fields. A
 * task's stores are released by its decrement of `pending` and acquired by
 * the caller's load that sees zero. The sleep flags and the words they
 * guard are all seq_cst, so a waker either sees the flag or the sleeper sees
 * the new value before it sleeps (and FUTEX_WAIT rechecks the value). */
#include "core/pool.h"

#include "medsynth/parallel.h"

#include <linux/futex.h>
#include <omp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Workers per job, the caller included (the command caps --threads here). */
#define POOL_MAX_WORKERS 256
/* Checks of the awaited word (one pause each) between clock readings while
 * spinning: a pause takes 10-40 ns on bare metal, about 280 ns in the
 * virtual machine the figures in docs/ come from. */
#define WAIT_PAUSES 8
/* Longest spin before sleeping: longer than almost every gap between two
 * kernel calls of a UNet forward pass (1071 of 1087 gaps were under 64 us). */
#define WAIT_SPIN_NS 50000
/* A gap this long between two clock readings of the spin means this
 * thread lost its core meanwhile: the machine is busy, so sleep now. */
#define WAIT_PREEMPTED_NS 20000

typedef struct {
  _Alignas(64) _Atomic uint32_t go; /* last job this helper was asked to join */
  _Atomic uint32_t asleep;          /* 1 while (about to be) in FUTEX_WAIT on go */
  uint32_t seen0;                   /* go when the helper was created */
} slot;

static struct {
  pthread_mutex_t run; /* held by the caller of the running job */
  _Alignas(64) _Atomic uint64_t claim;
  _Alignas(64) _Atomic uint32_t pending;
  _Atomic uint32_t caller_asleep;
  _Alignas(64) ms__task_fn fn;
  void *ctx;
  size_t n;
  uint32_t job;
  size_t helpers; /* helper threads running (slots 1 .. helpers) */
  slot slots[POOL_MAX_WORKERS];
} P = {.run = PTHREAD_MUTEX_INITIALIZER};

static pthread_once_t P_once = PTHREAD_ONCE_INIT;

/* Whether helpers pay (see the file comment); guarded by P.run. */
#define ADAPT_SAMPLE_GAP_NS 2000000LL     /* at most one measured job per 2 ms */
#define ADAPT_SAMPLES 8                   /* measured jobs per window */
#define ADAPT_GAIN 1.1                    /* helpers must bring 10 % more CPU */
#define ADAPT_PROBE_AGE_NS 2000000000LL   /* a solo rate older than 2 s is measured again */
#define ADAPT_HOLD_MIN_NS 100000000LL     /* first solo period 100 ms, doubling */
#define ADAPT_HOLD_MAX_NS 2000000000LL    /* up to 2 s */

enum { ADAPT_PAR, ADAPT_PROBE, ADAPT_HOLD };

static struct {
  int mode, samples;
  long long wall, cpu;    /* sums over the window's measured jobs (ns) */
  long long last_sample;  /* start of the last measured job */
  double par_rate;        /* CPU rate of the last window with helpers */
  double solo_rate;       /* CPU rate of the last solo window, < 0: none yet */
  long long solo_at;      /* when it was measured */
  long long hold_until, hold_ns;
} A = {ADAPT_PAR, 0, 0, 0, 0, 0.0, -1.0, 0, 0, ADAPT_HOLD_MIN_NS};

/* 1 on pool helper threads and on a caller while it runs its job's tasks:
 * nested parallel calls then run on the calling thread. */
static _Thread_local int in_pool;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void futex_wait(_Atomic uint32_t *w, uint32_t v) {
  syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *w, int n) {
  syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

/* Returns once *w != v (see the file comment for the two phases). */
static void wait_change(_Atomic uint32_t *w, uint32_t v, _Atomic uint32_t *asleep) {
  if (atomic_load_explicit(w, memory_order_acquire) != v) return;
  const long long t0 = now_ns();
  long long last = t0;
  for (;;) {
    for (int i = 0; i < WAIT_PAUSES; i++) {
      if (atomic_load_explicit(w, memory_order_acquire) != v) return;
      cpu_relax();
    }
    const long long t = now_ns();
    if (t - t0 > WAIT_SPIN_NS || t - last > WAIT_PREEMPTED_NS) break;
    last = t;
  }
  for (;;) {
    atomic_store(asleep, 1);
    if (atomic_load(w) != v) break;
    futex_wait(w, v);
    if (atomic_load(w) != v) break;
  }
  atomic_store(asleep, 0);
}

/* Claims and runs tasks of `job` until none is left. */
static void work(uint32_t job, size_t worker) {
  uint64_t c = atomic_load(&P.claim);
  for (;;) {
    if ((uint32_t)(c >> 32) != job || (uint32_t)c == 0) return;
    if (!atomic_compare_exchange_weak(&P.claim, &c, c - 1)) continue;
    const size_t task = P.n - (uint32_t)c;
    P.fn(P.ctx, task, worker);
    if (atomic_fetch_sub(&P.pending, 1) == 1 && atomic_load(&P.caller_asleep))
      futex_wake(&P.pending, 1);
    c = atomic_load(&P.claim);
  }
}

static void *helper_main(void *arg) {
  slot *s = arg;
  const size_t worker = (size_t)(s - P.slots);
  uint32_t seen = s->seen0;
  in_pool = 1;
  for (;;) {
    wait_change(&s->go, seen, &s->asleep);
    seen = atomic_load(&s->go);
    work(seen, worker);
  }
  return NULL;
}

/* In a child after fork() only the forking thread exists: forget the
 * helpers (new ones are made on demand) and any job a parent thread was
 * running. */
static void after_fork_child(void) {
  pthread_mutex_init(&P.run, NULL);
  P.helpers = 0;
  atomic_store(&P.pending, 0);
  atomic_store(&P.caller_asleep, 0);
  for (size_t i = 0; i < POOL_MAX_WORKERS; i++) atomic_store(&P.slots[i].asleep, 0);
  A.mode = ADAPT_PAR;
  A.samples = 0;
  A.wall = A.cpu = 0;
  A.solo_rate = -1.0;
  A.hold_ns = ADAPT_HOLD_MIN_NS;
}

static void pool_once(void) { pthread_atfork(NULL, NULL, after_fork_child); }

static long long cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Ends a measurement window at time t and decides the next mode. */
static void adapt_window_end(long long t) {
  const double rate = A.wall > 0 ? (double)A.cpu / (double)A.wall : 0.0;
  A.samples = 0;
  A.wall = A.cpu = 0;
  if (A.mode == ADAPT_PROBE) {
    A.solo_rate = rate;
    A.solo_at = t;
  } else {
    A.par_rate = rate;
    /* one thread never gets more than one core: above that, helpers pay */
    if (rate >= ADAPT_GAIN) {
      A.hold_ns = ADAPT_HOLD_MIN_NS;
      return;
    }
    if (A.solo_rate < 0 || t - A.solo_at > ADAPT_PROBE_AGE_NS) {
      A.mode = ADAPT_PROBE;
      return;
    }
  }
  if (A.par_rate >= ADAPT_GAIN * A.solo_rate) {
    A.mode = ADAPT_PAR;
    A.hold_ns = ADAPT_HOLD_MIN_NS;
  } else {
    A.mode = ADAPT_HOLD;
    A.hold_until = t + A.hold_ns;
    A.hold_ns = A.hold_ns * 2 > ADAPT_HOLD_MAX_NS ? ADAPT_HOLD_MAX_NS : A.hold_ns * 2;
  }
}

/* Starts helpers until there are `want` (fewer if the system refuses);
 * returns how many there are. Called with P.run held. Helpers block every
 * signal, so handlers keep running on the application's threads. */
static size_t ensure_helpers(size_t want) {
  if (P.helpers >= want) return P.helpers;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t attr;
  int attr_ok = pthread_attr_init(&attr) == 0;
  if (attr_ok) pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  while (P.helpers < want) {
    slot *s = &P.slots[P.helpers + 1];
    s->seen0 = atomic_load(&s->go);
    atomic_store(&s->asleep, 0);
    pthread_t th;
    if (!attr_ok || pthread_create(&th, &attr, helper_main, s) != 0) break;
    P.helpers++;
  }
  if (attr_ok) pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return P.helpers;
}

size_t ms__parallel_threads(void) {
  if (in_pool || omp_in_parallel()) return 1;
  const int t = omp_get_max_threads();
  return t < 1 ? 1 : (size_t)t;
}

static void run_inline(size_t n, ms__task_fn fn, void *ctx) {
  const int outer = in_pool;
  in_pool = 1;
  for (size_t t = 0; t < n; t++) fn(ctx, t, 0);
  in_pool = outer;
}

static void run_job(size_t n_tasks, size_t max_workers, size_t helpers, ms__task_fn fn,
                    void *ctx);

void ms__parallel(size_t n_tasks, size_t max_workers, ms__task_fn fn, void *ctx) {
  if (n_tasks == 0) return;
  if (max_workers > n_tasks) max_workers = n_tasks;
  if (max_workers > POOL_MAX_WORKERS) max_workers = POOL_MAX_WORKERS;
  if (max_workers <= 1 || n_tasks > UINT32_MAX || in_pool || omp_in_parallel()) {
    run_inline(n_tasks, fn, ctx);
    return;
  }
  pthread_once(&P_once, pool_once);
  if (pthread_mutex_trylock(&P.run) != 0) {
    run_inline(n_tasks, fn, ctx);
    return;
  }
  const long long t0 = now_ns();
  if (A.mode == ADAPT_HOLD && t0 >= A.hold_until) A.mode = ADAPT_PAR;
  const int sample = A.mode != ADAPT_HOLD && t0 - A.last_sample >= ADAPT_SAMPLE_GAP_NS;
  const long long c0 = sample ? cpu_ns() : 0;
  if (sample) A.last_sample = t0;
  const size_t helpers = A.mode == ADAPT_PAR ? ensure_helpers(max_workers - 1) : 0;
  if (helpers == 0)
    run_inline(n_tasks, fn, ctx);
  else
    run_job(n_tasks, max_workers, helpers, fn, ctx);
  if (sample) {
    const long long c1 = cpu_ns(), t1 = now_ns();
    A.cpu += c1 - c0;
    A.wall += t1 - t0;
    if (++A.samples >= ADAPT_SAMPLES) adapt_window_end(t1);
  }
  pthread_mutex_unlock(&P.run);
}

/* One job on the caller and helpers 1 .. max_workers - 1 (P.run held). */
static void run_job(size_t n_tasks, size_t max_workers, size_t helpers, ms__task_fn fn,
                    void *ctx) {
  if (max_workers - 1 > helpers) max_workers = helpers + 1;
  if (++P.job == 0) P.job = 1; /* 0 is every slot's initial value */
  const uint32_t job = P.job;
  P.fn = fn;
  P.ctx = ctx;
  P.n = n_tasks;
  atomic_store(&P.pending, (uint32_t)n_tasks);
  atomic_store(&P.claim, (uint64_t)job << 32 | (uint32_t)n_tasks);
  for (size_t i = 1; i < max_workers; i++) {
    atomic_store(&P.slots[i].go, job);
    if (atomic_load(&P.slots[i].asleep)) futex_wake(&P.slots[i].go, 1);
  }
  in_pool = 1;
  work(job, 0);
  in_pool = 0;
  uint32_t p;
  while ((p = atomic_load(&P.pending)) != 0) wait_change(&P.pending, p, &P.caller_asleep);
}

typedef struct {
  ms__range_fn fn;
  void *ctx;
  size_t n, pieces;
} range_job;

static void range_task(void *ctx, size_t t, size_t worker) {
  const range_job *r = ctx;
  (void)worker;
  r->fn(r->ctx, r->n * t / r->pieces, r->n * (t + 1) / r->pieces);
}

void ms__parallel_range(size_t n, size_t grain, ms__range_fn fn, void *ctx) {
  if (n == 0) return;
  const size_t nt = ms__parallel_threads();
  size_t pieces = grain ? n / grain : n;
  if (pieces > nt * MS__TASKS_PER_THREAD) pieces = nt * MS__TASKS_PER_THREAD;
  if (nt < 2 || pieces < 2) {
    fn(ctx, 0, n);
    return;
  }
  range_job r = {fn, ctx, n, pieces};
  ms__parallel(pieces, nt, range_task, &r);
}

void ms_parallel_for(size_t n, int threads, ms_parallel_fn fn, void *ctx) {
  size_t nt = threads > 0 ? (size_t)threads : ms__parallel_threads();
  ms__parallel(n, nt, fn, ctx);
}
