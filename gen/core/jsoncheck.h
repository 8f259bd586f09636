/* Checking the members of a parsed JSON object: presence, type and range,
 * each problem reported once at its JSON Pointer (private, ms__ prefix).
 *
 * Every helper takes (checker, object, pointer of the object, key) in that
 * order. The pointer of a member is the object's pointer plus "/key"
 * (escaped as RFC 6901 asks); a missing required key and a key that appears
 * more than once are reported at the object. The checker's `report` gets
 * the finished message; the caller decides the status, the file and the
 * position (the spec loader turns the pointer into line:column).
 *
 * Messages: "missing required key \"k\"", "key \"k\" appears more than
 * once", "must be a string", "must be an integer", "must be between A and
 * B" (or "must be >= A" when B is at least 9e15), "must be a finite number",
 * "must be true or false", "must be \"a\", \"b\" or \"c\"". */
#ifndef MS_CORE_JSONCHECK_H
#define MS_CORE_JSONCHECK_H

#include <cjson/cJSON.h>
#include <stdint.h>

typedef struct {
  /* Called once per problem; ptr is the JSON Pointer of the problem ("" is
   * the document), msg the whole message. */
  void (*report)(void *ctx, const char *ptr, const char *msg);
  void *ctx;
  /* Non-zero: a key that appears more than once is a problem (cJSON keeps
   * every copy; lookups see the first). */
  int dup_keys;
} ms__jcheck;

/* The member `key` of obj (case-sensitive), or NULL when absent (reported
 * when required). An obj that is not an object has no members. */
const cJSON *ms__jc_get(const ms__jcheck *c, const cJSON *obj, const char *ptr, const char *key,
                        int required);

/* The string value of member `key`; NULL when absent or not a string (the
 * latter reported). */
const char *ms__jc_string(const ms__jcheck *c, const cJSON *obj, const char *ptr, const char *key,
                          int required);

/* An integer-valued number within [lo, hi] into *out. Returns 0 when present
 * and valid, -1 when absent or reported (then *out is untouched). */
int ms__jc_int(const ms__jcheck *c, const cJSON *obj, const char *ptr, const char *key,
               int required, double lo, double hi, int64_t *out);

/* A finite number into *out; as ms__jc_int. */
int ms__jc_number(const ms__jcheck *c, const cJSON *obj, const char *ptr, const char *key,
                  int required, double *out);

/* A finite number within [lo, hi] into *out; as ms__jc_int ("must be a
 * finite number", "must be between A and B" with A and B as %g). */
int ms__jc_range(const ms__jcheck *c, const cJSON *obj, const char *ptr, const char *key,
                 int required, double lo, double hi, double *out);

/* true or false into *out (1 or 0); as ms__jc_int. */
int ms__jc_bool(const ms__jcheck *c, const cJSON *obj, const char *ptr, const char *key,
                int required, int *out);

/* A string naming one of n choices, name(0) .. name(n - 1): its index into
 * *out; as ms__jc_int ("must be \"a\", \"b\" or \"c\"" for any other value). */
int ms__jc_choice(const ms__jcheck *c, const cJSON *obj, const char *ptr, const char *key,
                  int required, int n, const char *(*name)(int), int *out);

#endif
