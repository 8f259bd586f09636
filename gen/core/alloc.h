/* The library's allocation hook: every allocation of library-owned memory
 * goes through these wrappers so that tests can fail the n-th one
 * (medsynth/faultsim.h). Memory they return is released with plain free().
 *
 * The diagnostics collector (core/status.c) deliberately allocates with the
 * system allocator directly: reporting an out-of-memory error must not itself
 * be failed by the simulation. */
#ifndef MS_CORE_ALLOC_H
#define MS_CORE_ALLOC_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

int ms__fault_fire(void);
/* Non-zero while allocation-failure simulation is armed. */
int ms__fault_armed(void);

void *ms__malloc(size_t n);
void *ms__calloc(size_t count, size_t size);
void *ms__realloc(void *p, size_t n);
char *ms__strdup(const char *s);
char *ms__strndup(const char *s, size_t n);
void *ms__aligned_alloc(size_t alignment, size_t n);
/* asprintf/vasprintf through the hook: the length, or -1 with *out = NULL. */
int ms__asprintf(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ms__vasprintf(char **out, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* open_memstream through the hook (only the stream's creation is counted;
 * a failure while it grows shows as an error from fclose). */
FILE *ms__open_memstream(char **buf, size_t *len);

#endif
