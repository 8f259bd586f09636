/* Deterministic identifiers: a 128-bit UUID from (seed, key, index), its
 * RFC 9562 text form and its DICOM UID form "2.25.<decimal>" (ISO/IEC
 * 9834-8, as DICOM PS3.5 §B.2 describes).
 *
 * The same (seed, key, index) always gives the same UUID, so reruns of a spec
 * write identical FHIR fullUrls and DICOM UIDs, and the FHIR ImagingStudy of
 * a row can name the DICOM UIDs of that row without the two writers talking
 * to each other. The UUID is version 8 (custom, RFC 9562 §5.8) with the
 * RFC variant bits; the other 122 bits are two xxh64 hashes of the key and
 * the little-endian index under seeds derived from `seed`.
 *
 * Private to the library (ms__ prefix). */
#ifndef MS_CORE_UUID_H
#define MS_CORE_UUID_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint8_t b[16];
} ms__uuid;

ms__uuid ms__uuid_make(uint64_t seed, const char *key, uint64_t index);
/* "xxxxxxxx-xxxx-8xxx-yxxx-xxxxxxxxxxxx" + NUL: out holds 37 bytes. */
void ms__uuid_text(const ms__uuid *u, char out[37]);
/* "2.25." + the UUID as an unsigned decimal integer (at most 44 bytes with
 * the NUL; DICOM UIDs may have 64). */
void ms__uuid_oid(const ms__uuid *u, char out[48]);

#endif
