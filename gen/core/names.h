/* Enum <-> name tables (private, ms__ prefix; header-only).
 *
 * Every public enum with names has one X-macro list in its header (e.g.
 * MS_COLTYPE_TABLE in medsynth/table.h) from which both the enum and its
 * name array are generated; the array is checked against the enum's count
 * with _Static_assert where it is defined. These two helpers are the one
 * way to read such an array. */
#ifndef MS_CORE_NAMES_H
#define MS_CORE_NAMES_H

#include <string.h>

/* names[i] for 0 <= i < n, else `other`. */
static inline const char *ms__name_of(const char *const *names, int n, int i, const char *other) {
  return i >= 0 && i < n ? names[i] : other;
}

/* The index of `name` in names[0..n), or n when it is not there (or NULL). */
static inline int ms__name_find(const char *const *names, int n, const char *name) {
  if (name)
    for (int i = 0; i < n; i++)
      if (!strcmp(name, names[i])) return i;
  return n;
}

/* Defines `const char *name_fn(type)` (names[v], or `other` outside the
 * table) and `type from_fn(const char *)` (count when unknown) over the
 * array `names`, which must hold exactly `count` names. */
#define MS__NAME_FNS(name_fn, from_fn, type, names, count, other)                     \
  _Static_assert(sizeof names / sizeof *names == (count), #names ": one per value"); \
  const char *name_fn(type v) { return ms__name_of(names, (int)(count), (int)v, other); } \
  type from_fn(const char *name) { return (type)ms__name_find(names, (int)(count), name); }

#endif
