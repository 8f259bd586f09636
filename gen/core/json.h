/* Building JSON documents with cJSON when any allocation may fail (private,
 * ms__ prefix; header-only).
 *
 * cJSON reports an allocation failure only through the NULL or false of the
 * call that failed; a builder that adds dozens of items would need a check
 * after each. Instead a failed allocation sets errno to ENOMEM (malloc does,
 * and so does the fault simulation, core/alloc.c), and no library function
 * sets errno to 0: a builder clears errno first (ms__json_begin) and prints
 * through ms__json_print, which returns NULL when some allocation of the
 * build failed, so a document with a missing item is never used. Items
 * are attached with ms__json_push / ms__json_put, which delete an item that
 * could not be attached (cJSON leaves it to the caller). */
#ifndef MEDSYNTH_CORE_JSON_H
#define MEDSYNTH_CORE_JSON_H

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>

static inline void ms__json_begin(void) { errno = 0; }

/* Appends item to array arr (either may be NULL); returns item, or NULL
 * when it could not be attached (and is deleted). */
static inline cJSON *ms__json_push(cJSON *arr, cJSON *item) {
  if (cJSON_AddItemToArray(arr, item)) return item;
  cJSON_Delete(item);
  return NULL;
}

/* Adds item to object obj under key (either may be NULL); as ms__json_push. */
static inline cJSON *ms__json_put(cJSON *obj, const char *key, cJSON *item) {
  if (cJSON_AddItemToObject(obj, key, item)) return item;
  cJSON_Delete(item);
  return NULL;
}

/* The document as text (formatted or not; caller frees), or NULL when an
 * allocation failed since ms__json_begin or while printing. */
static inline char *ms__json_print(const cJSON *root, int formatted) {
  if (!root || errno == ENOMEM) return NULL;
  char *s = formatted ? cJSON_Print(root) : cJSON_PrintUnformatted(root);
  if (s && errno == ENOMEM) { /* an allocation failed while printing */
    free(s);
    s = NULL;
  }
  return s;
}

#endif
