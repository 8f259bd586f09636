/* JSON source locator: maps JSON Pointers (RFC 6901) and byte offsets of a
 * JSON text to 1-based line:column positions.
 *
 * cJSON keeps no source positions, so diagnostics about a parsed document
 * re-scan the original text. The scanner is independent of cJSON, reads only
 * the bytes it is given (no NUL needed) and never allocates. Lookups are
 * linear in the text size, which is fine: they run only when reporting.
 *
 * Columns count bytes from 1 (as compilers do), tabs count as one.
 *
 * Private to the library (ms__ prefix). */
#ifndef MS_CORE_JSONLOC_H
#define MS_CORE_JSONLOC_H

#include <stddef.h>

/* Line and column of byte offset `off` (clamped to len). */
void ms__jsonloc_linecol(const char *text, size_t len, size_t off, int *line, int *column);

/* Finds the value addressed by `pointer` ("" = the whole document,
 * "/tables/0/fields/3/dist/sd"). With want_key set and the last token naming
 * an object member, the offset of the member's key (its opening quote) is
 * returned instead of its value. Returns 0 and sets *off on success, -1 when
 * the pointer does not resolve or the text is malformed before the target. */
int ms__jsonloc_find(const char *text, size_t len, const char *pointer, int want_key,
                     size_t *off);

/* Convenience: line:column of the pointer's value (or key); when the pointer
 * does not resolve, its longest resolving prefix is used; 0:0 when nothing
 * resolves. */
void ms__jsonloc_pointer_linecol(const char *text, size_t len, const char *pointer,
                                 int want_key, int *line, int *column);

/* Checks that objects and arrays nest at most max_depth levels (the
 * document's top-level value is level 1), without recursion, so that deeper
 * documents can be refused before any recursive parser or walk sees them.
 * Returns 0 when they do; else 1, with *off the offset of the first opening
 * bracket that goes deeper and `pointer` (cap bytes, truncated) its JSON
 * Pointer. Malformed text is scanned as far as it goes (the parser reports
 * it); max_depth must be at most 256. */
int ms__jsonloc_too_deep(const char *text, size_t len, int max_depth, size_t *off, char *pointer,
                         size_t cap);

/* Appends the RFC 6901 escaped form of `token` ("~" -> "~0", "/" -> "~1")
 * to buf (NUL-terminated, truncated to cap). Returns the resulting length. */
size_t ms__jsonptr_append(char *buf, size_t cap, const char *token);

/* Writes base + "/" + escaped key into out (NUL-terminated, truncated to cap). */
void ms__jsonptr_key(char *out, size_t cap, const char *base, const char *key);

#endif
