/* "Did you mean" suggestions (gen/core/suggest.h). */
#include "core/suggest.h"

#include <string.h>

size_t ms__edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 64 || lb > 64) return 99;
  size_t prev[65], cur[65];
  for (size_t j = 0; j <= lb; j++) prev[j] = j;
  for (size_t i = 1; i <= la; i++) {
    cur[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
      size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
      cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
    }
    memcpy(prev, cur, (lb + 1) * sizeof *prev);
  }
  return prev[lb];
}

const char *ms__closest(const char *word, const char *const *cands, size_t n) {
  const char *best = NULL;
  size_t bd = 99, lim = strlen(word) / 3 + 1;
  if (lim > 3) lim = 3;
  for (size_t i = 0; i < n; i++) {
    if (!cands[i]) continue;
    size_t dd = ms__edit_distance(word, cands[i]);
    if (dd < bd) {
      bd = dd;
      best = cands[i];
    }
  }
  return bd <= lim ? best : NULL;
}

size_t ms__list_len(const char *const *list) {
  size_t n = 0;
  while (list[n]) n++;
  return n;
}
