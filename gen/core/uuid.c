/* Deterministic UUIDs and their DICOM UID form (core/uuid.h). */
#include "core/uuid.h"

#include <string.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

ms__uuid ms__uuid_make(uint64_t seed, const char *key, uint64_t index) {
  XXH64_state_t st;
  uint8_t ix[8];
  for (int i = 0; i < 8; i++) ix[i] = (uint8_t)(index >> (8 * i));
  size_t kl = strlen(key);
  uint64_t h[2];
  for (int k = 0; k < 2; k++) {
    XXH64_reset(&st, seed ^ (k ? 0x9E3779B97F4A7C15ull : 0x6d73796e74687575ull));
    XXH64_update(&st, key, kl);
    XXH64_update(&st, "\0", 1);
    XXH64_update(&st, ix, sizeof ix);
    h[k] = XXH64_digest(&st);
  }
  ms__uuid u;
  for (int i = 0; i < 8; i++) {
    u.b[i] = (uint8_t)(h[0] >> (56 - 8 * i));
    u.b[8 + i] = (uint8_t)(h[1] >> (56 - 8 * i));
  }
  u.b[6] = (uint8_t)((u.b[6] & 0x0f) | 0x80); /* version 8 */
  u.b[8] = (uint8_t)((u.b[8] & 0x3f) | 0x80); /* variant 10 */
  return u;
}

void ms__uuid_text(const ms__uuid *u, char out[37]) {
  static const char hx[] = "0123456789abcdef";
  size_t o = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o++] = hx[u->b[i] >> 4];
    out[o++] = hx[u->b[i] & 15];
  }
  out[o] = 0;
}

void ms__uuid_oid(const ms__uuid *u, char out[48]) {
  /* 128-bit unsigned to decimal by repeated division of 32-bit limbs */
  uint32_t limb[4];
  for (int i = 0; i < 4; i++)
    limb[i] = (uint32_t)u->b[4 * i] << 24 | (uint32_t)u->b[4 * i + 1] << 16 |
              (uint32_t)u->b[4 * i + 2] << 8 | u->b[4 * i + 3];
  char dig[48];
  size_t nd = 0;
  for (;;) {
    int zero = 1;
    uint64_t rem = 0;
    for (int i = 0; i < 4; i++) {
      uint64_t cur = rem << 32 | limb[i];
      limb[i] = (uint32_t)(cur / 10);
      rem = cur % 10;
      if (limb[i]) zero = 0;
    }
    dig[nd++] = (char)('0' + rem);
    if (zero) break;
  }
  memcpy(out, "2.25.", 5);
  for (size_t i = 0; i < nd; i++) out[5 + i] = dig[nd - 1 - i];
  out[5 + nd] = 0;
}
