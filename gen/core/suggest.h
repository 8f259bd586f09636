/* "Did you mean" suggestions for misspelt names (private, ms__ prefix).
 *
 * Validators offer the closest known name when a key, kind, organ or
 * distribution is unknown. Distance is Levenshtein (insertions, deletions,
 * substitutions cost one); names longer than 64 bytes are never suggested. */
#ifndef MEDSYNTH_CORE_SUGGEST_H
#define MEDSYNTH_CORE_SUGGEST_H

#include <stddef.h>

/* Levenshtein distance of a and b; 99 when either is longer than 64 bytes. */
size_t ms__edit_distance(const char *a, const char *b);

/* The candidate closest to `word` among cands[0..n) (NULL entries are
 * skipped), or NULL when none is within min(3, strlen(word)/3 + 1) edits.
 * Ties go to the earliest candidate. */
const char *ms__closest(const char *word, const char *const *cands, size_t n);

/* Number of entries before the NULL that ends a NULL-terminated list. */
size_t ms__list_len(const char *const *list);

#endif
