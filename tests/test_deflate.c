/* Tests of the level-1 chunk codec: the run-length deflate encoder
 * (gen/io/deflate.c) must produce zlib streams that zlib's own inflate
 * decodes back to the exact input, for inputs that exercise every path
 * (empty, one byte, runs longer than a match and than a block, runs
 * ending one or two bytes after a match, pure noise that falls back to
 * stored blocks, skewed alphabets that push code lengths past 15 bits,
 * real shuffled table chunks); the byte shuffle must equal HDF5's
 * definition for every element size and count around its 8x8 blocking.
 * ctest-labels: unit
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <cmocka.h>

#include "io/io_private.h"
#include "medsynth/rng.h"

/* Inflates z (zlib format) and checks it reproduces in[0..n) exactly and
 * that the stream ends where the encoder said. */
static void check_roundtrip(const uint8_t *in, size_t n) {
  size_t cap = compressBound((uLong)n);
  uint8_t *z = malloc(cap), *back = malloc(n + 1);
  assert_non_null(z);
  assert_non_null(back);
  size_t zl = 0;
  assert_int_equal(ms__deflate_rle(in, n, z, cap, &zl), 0);
  assert_true(zl >= 6 && zl <= cap);
  assert_int_equal(z[0], 0x78);
  assert_int_equal((z[0] * 256 + z[1]) % 31, 0);
  z_stream s;
  memset(&s, 0, sizeof s);
  assert_int_equal(inflateInit(&s), Z_OK);
  s.next_in = z;
  s.avail_in = (uInt)zl;
  s.next_out = back;
  s.avail_out = (uInt)(n + 1);
  assert_int_equal(inflate(&s, Z_FINISH), Z_STREAM_END);
  assert_int_equal(s.total_out, n);
  assert_int_equal(s.avail_in, 0); /* no trailing bytes */
  inflateEnd(&s);
  if (n) assert_memory_equal(back, in, n);
  free(z);
  free(back);
}

static uint64_t word(uint64_t i) {
  return ms_rng_u64(ms_rng_key_make(99, 1), i, 0);
}

static void test_edge_inputs(void **state) {
  (void)state;
  uint8_t one = 42;
  check_roundtrip(&one, 0);
  check_roundtrip(&one, 1);
  /* runs whose length hits every remainder around the 258-byte match and
   * the 3-byte minimum, alone and between literals */
  for (size_t L = 1; L <= 1040; L += (L < 270 ? 1 : 37)) {
    uint8_t *b = malloc(L + 2);
    memset(b, 7, L);
    check_roundtrip(b, L);
    b[0] = 1;
    b[L + 1] = 3;
    memset(b + 1, 0, L);
    check_roundtrip(b, L + 2);
    free(b);
  }
  /* a run far longer than one block's tokens (16384 x 258 bytes) */
  size_t big = 5u << 20;
  uint8_t *z = calloc(big, 1);
  z[big / 2] = 9;
  check_roundtrip(z, big);
  free(z);
}

static void test_noise_and_skew(void **state) {
  (void)state;
  size_t n = 300000;
  uint8_t *b = malloc(n);
  /* uniform noise: incompressible, stored blocks */
  for (size_t i = 0; i < n; i++) b[i] = (uint8_t)word(i);
  check_roundtrip(b, n);
  size_t cap = compressBound((uLong)n), zl = 0;
  uint8_t *z = malloc(cap);
  assert_int_equal(ms__deflate_rle(b, n, z, cap, &zl), 0);
  assert_true(zl <= n + n / 1000 + 64); /* stored, not expanded by Huffman */
  /* a geometric alphabet: symbol k with probability 2^-(k+1), so the
   * optimal code lengths reach 20+ bits and must be limited to 15 */
  for (size_t i = 0; i < n; i++) {
    uint64_t x = word(i) | (1ull << 40);
    b[i] = (uint8_t)(__builtin_ctzll(x) * 5 + (i & 1));
  }
  check_roundtrip(b, n);
  /* literals and runs mixed at random lengths */
  for (size_t i = 0; i < n;) {
    uint64_t x = word(n + i);
    size_t L = 1 + (x % 600);
    if (L > n - i) L = n - i;
    memset(b + i, (int)((x >> 20) % 3 == 0 ? (x >> 32) & 255 : 0), L);
    if ((x >> 40) & 1)
      for (size_t k = 0; k < L; k++) b[i + k] = (uint8_t)word(2 * n + i + k);
    i += L;
  }
  check_roundtrip(b, n);
  free(b);
  free(z);
}

/* Real-looking shuffled rows: little integers, doubles with one decimal,
 * flags and padded strings, as the table writer produces them. */
static void test_shuffled_rows_compress(void **state) {
  (void)state;
  enum { N = 3000, ES = 8 + 8 + 1 + 12 };
  uint8_t *raw = malloc(N * ES), *sh = malloc(N * ES);
  for (size_t i = 0; i < N; i++) {
    uint8_t *r = raw + i * ES;
    int64_t age = 18 + (int64_t)(word(i) % 73);
    double h = (double)(1500 + (int)(word(N + i) % 500)) / 10.0;
    memcpy(r, &age, 8);
    memcpy(r + 8, &h, 8);
    r[16] = (uint8_t)(word(2 * N + i) & 1);
    memset(r + 17, 0, 12);
    snprintf((char *)r + 17, 12, "MRN-%06zu", i);
  }
  size_t cap = compressBound(N * ES), zl = 0, zl6 = 0;
  uint8_t *z = malloc(cap), *z6 = malloc(cap), *back = malloc(N * ES);
  assert_int_equal(ms__chunk_compress(raw, N * ES, ES, 1, sh, z, &zl), 0);
  assert_int_equal(ms__chunk_decompress(z, zl, ES, sh, back, N * ES), 0);
  assert_memory_equal(back, raw, N * ES);
  /* about as small as zlib's own run-length strategy on the same shuffled
   * bytes (sh holds them after the call) */
  z_stream s;
  memset(&s, 0, sizeof s);
  assert_int_equal(deflateInit2(&s, 1, Z_DEFLATED, 15, 8, Z_RLE), Z_OK);
  s.next_in = sh;
  s.avail_in = N * ES;
  s.next_out = z6;
  s.avail_out = (uInt)cap;
  assert_int_equal(deflate(&s, Z_FINISH), Z_STREAM_END);
  zl6 = s.total_out;
  deflateEnd(&s);
  assert_true(zl < zl6 + zl6 / 20);
  assert_true(zl < N * ES / 3);
  free(raw);
  free(sh);
  free(z);
  free(z6);
  free(back);
}

/* ms__chunk_compress at level 0-free path: the shuffle alone, compared
 * with the definition (byte j of element i goes to j * n + i) through the
 * decompressor's inverse and a direct check of the shuffled stream. */
static void test_shuffle_definition(void **state) {
  (void)state;
  size_t sizes[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 169};
  size_t counts[] = {1, 2, 7, 8, 9, 15, 16, 17, 63, 64, 65, 100};
  for (size_t a = 0; a < sizeof sizes / sizeof *sizes; a++)
    for (size_t b = 0; b < sizeof counts / sizeof *counts; b++) {
      size_t s = sizes[a], n = counts[b], extra = (n + 3) % s; /* < s: not an element */
      size_t nb = n * s + extra;
      uint8_t *raw = malloc(nb), *sh = malloc(nb), *z = malloc(compressBound(nb));
      uint8_t *plain = malloc(compressBound(nb) + nb);
      for (size_t i = 0; i < nb; i++) raw[i] = (uint8_t)word(7 * nb + i);
      size_t zl = 0;
      assert_int_equal(ms__chunk_compress(raw, nb, s, 6, sh, z, &zl), 0);
      uLongf pl = (uLongf)nb;
      assert_int_equal(uncompress(plain, &pl, z, (uLong)zl), Z_OK);
      assert_int_equal(pl, nb);
      for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < s; j++) assert_int_equal(plain[j * n + i], raw[i * s + j]);
      if (extra) assert_memory_equal(plain + n * s, raw + n * s, extra);
      free(raw);
      free(sh);
      free(z);
      free(plain);
    }
}

/* The SIMD Adler-32 equals zlib's for every length around its 16-byte
 * blocks and 5552-byte reductions, at any alignment, on worst-case bytes. */
static void test_adler32(void **state) {
  (void)state;
  size_t n = 3 * 5552 + 40;
  uint8_t *b = malloc(n + 16);
  for (size_t i = 0; i < n + 16; i++) b[i] = (uint8_t)(i % 7 == 0 ? word(i) : 255);
  size_t lens[] = {0, 1, 15, 16, 17, 31, 5551, 5552, 5553, 5568, 11104, 11119, n};
  for (size_t off = 0; off < 3; off++)
    for (size_t k = 0; k < sizeof lens / sizeof *lens; k++) {
      uLong want = adler32(adler32(0L, Z_NULL, 0), b + off, (uInt)lens[k]);
      assert_int_equal(ms__adler32(1, b + off, lens[k]), want);
      /* continued in two pieces */
      uint32_t half = ms__adler32(1, b + off, lens[k] / 3);
      assert_int_equal(ms__adler32(half, b + off + lens[k] / 3, lens[k] - lens[k] / 3), want);
    }
  free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_edge_inputs),
      cmocka_unit_test(test_noise_and_skew),
      cmocka_unit_test(test_shuffled_rows_compress),
      cmocka_unit_test(test_shuffle_definition),
      cmocka_unit_test(test_adler32),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
