/* Allocation wrappers with fault simulation (see core/alloc.h and
 * medsynth/faultsim.h).
 *
 * State: five atomics. `armed` is read on every allocation; when set,
 * `count` numbers the allocations and the ones with index in
 * [delay, delay + repeat) fail. ms_faultsim_config disarms first, then
 * stores delay, repeat and the zeroed counters, then arms with release
 * order; an allocation that sees `armed` set (acquire) therefore sees the new
 * delay and repeat, even on another thread.
 * Configure between operations, while no other thread uses the library:
 * an allocation in flight during ms_faultsim_config may be judged by the old
 * delay against the new count, and cJSON_InitHooks is not thread-safe.
 *
 * A simulated failure sets errno to ENOMEM as a failing malloc does, so
 * that callers which can only see a NULL from another library (cJSON) tell
 * an allocation failure from a syntax error the same way in tests and in
 * real use. */
#include "core/alloc.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "medsynth/faultsim.h"

static atomic_int g_armed;
static atomic_long g_count;
static atomic_long g_failures;
static atomic_long g_delay;
static atomic_long g_repeat;

int ms__fault_fire(void) {
  if (!atomic_load_explicit(&g_armed, memory_order_acquire)) return 0;
  long delay = atomic_load_explicit(&g_delay, memory_order_relaxed);
  long repeat = atomic_load_explicit(&g_repeat, memory_order_relaxed);
  long i = atomic_fetch_add_explicit(&g_count, 1, memory_order_relaxed);
  if (i < delay) return 0;
  if (repeat >= 0 && i - delay >= repeat) return 0;
  atomic_fetch_add_explicit(&g_failures, 1, memory_order_relaxed);
  errno = ENOMEM;
  return 1;
}

int ms__fault_armed(void) { return atomic_load_explicit(&g_armed, memory_order_relaxed); }

static void *cjson_malloc(size_t n) { return ms__malloc(n); }

void ms_faultsim_config(long delay, long repeat) {
  atomic_store(&g_armed, 0);
  atomic_store(&g_count, 0);
  atomic_store(&g_failures, 0);
  atomic_store(&g_delay, delay);
  atomic_store(&g_repeat, repeat);
  if (delay >= 0) {
    cJSON_Hooks h = {cjson_malloc, free};
    cJSON_InitHooks(&h);
    atomic_store_explicit(&g_armed, 1, memory_order_release);
  } else {
    cJSON_InitHooks(NULL);
  }
}

long ms_faultsim_failures(void) { return atomic_load(&g_failures); }
long ms_faultsim_count(void) { return atomic_load(&g_count); }

void *ms__malloc(size_t n) { return ms__fault_fire() ? NULL : malloc(n); }

void *ms__calloc(size_t count, size_t size) {
  return ms__fault_fire() ? NULL : calloc(count, size);
}

void *ms__realloc(void *p, size_t n) { return ms__fault_fire() ? NULL : realloc(p, n); }

char *ms__strdup(const char *s) { return ms__fault_fire() ? NULL : strdup(s); }

char *ms__strndup(const char *s, size_t n) { return ms__fault_fire() ? NULL : strndup(s, n); }

void *ms__aligned_alloc(size_t alignment, size_t n) {
  return ms__fault_fire() ? NULL : aligned_alloc(alignment, n);
}

int ms__vasprintf(char **out, const char *fmt, va_list ap) {
  *out = NULL;
  if (ms__fault_fire()) return -1;
  int n = vasprintf(out, fmt, ap);
  if (n < 0) *out = NULL;
  return n;
}

int ms__asprintf(char **out, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = ms__vasprintf(out, fmt, ap);
  va_end(ap);
  return n;
}

FILE *ms__open_memstream(char **buf, size_t *len) {
  *buf = NULL;
  *len = 0;
  return ms__fault_fire() ? NULL : open_memstream(buf, len);
}
