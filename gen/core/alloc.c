/* Allocation wrappers with fault simulation (see core/alloc.h and
 * medsynth/faultsim.h).
 *
 * State: three atomics. `armed` is read on every allocation (relaxed); when
 * set, `count` numbers the allocations and the ones with index in
 * [delay, delay + repeat) fail. */
#include "core/alloc.h"

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "medsynth/faultsim.h"

static atomic_int g_armed;
static atomic_long g_count;
static atomic_long g_failures;
static long g_delay, g_repeat;

int ms__fault_fire(void) {
  if (!atomic_load_explicit(&g_armed, memory_order_relaxed)) return 0;
  long i = atomic_fetch_add(&g_count, 1);
  if (i < g_delay) return 0;
  if (g_repeat >= 0 && i - g_delay >= g_repeat) return 0;
  atomic_fetch_add(&g_failures, 1);
  return 1;
}

int ms__fault_armed(void) { return atomic_load_explicit(&g_armed, memory_order_relaxed); }

static void *cjson_malloc(size_t n) { return ms__malloc(n); }

void ms_faultsim_config(long delay, long repeat) {
  atomic_store(&g_armed, 0);
  atomic_store(&g_count, 0);
  atomic_store(&g_failures, 0);
  g_delay = delay;
  g_repeat = repeat;
  if (delay >= 0) {
    cJSON_Hooks h = {cjson_malloc, free};
    cJSON_InitHooks(&h);
    atomic_store(&g_armed, 1);
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
