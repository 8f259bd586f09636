/* Run-length deflate encoder: a zlib stream (RFC 1950) of deflate blocks
 * (RFC 1951) whose only back-references are runs (distance 1), the encoder
 * behind `--compression 1`.
 *
 * Shuffled table chunks are byte planes: long runs (the high bytes of small
 * integers, validity flags, string padding) between stretches of
 * low-entropy literals (the low bytes of values). Run-length tokens plus a
 * dynamic Huffman code per block compress them about as well as zlib's
 * Z_RLE strategy, which searches the same matches, but with word-wide run
 * detection, no hash or window bookkeeping and a 64-bit bit writer the
 * encoder runs several times faster. Any inflater (zlib, HDF5's deflate
 * filter, h5py) decodes the result; tests/test_deflate.c checks every
 * stream through zlib's inflate.
 *
 * Stream: header 0x78 0x01 (deflate, 32 KiB window, "fastest" level), then
 * blocks of at most BLOCK_TOKENS tokens, each a dynamic Huffman block or,
 * when that would be larger, stored blocks of the same bytes; the last
 * block is marked final; then the Adler-32 of the input, big-endian. An
 * empty input is one final fixed-Huffman block holding only end-of-block.
 *
 * Huffman codes: optimal lengths from the two-queue construction over the
 * symbols sorted by frequency, limited to 15 bits (7 for the code-length
 * code) by moving leaves down until the Kraft sum is exact, then canonical
 * codes (RFC 1951, 3.2.2), sent bit-reversed. Every code is complete (zlib
 * rejects incomplete ones): an alphabet with a single used symbol gets a
 * second, unused one; the distance code always has codes 0 and 1 of length
 * one (only code 0, distance 1, is used).
 *
 * Invariants: pure function of the input bytes (same bytes on every
 * machine and thread count); never writes past `cap`; no allocation
 * beyond the token buffer. */
#include <stddef.h>
#include "core/alloc.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "io/io_private.h"

#define BLOCK_TOKENS 16384
#define NLIT 286 /* literal/length symbols 0..285 */
#define NDIST 2
#define NCL 19
#define MIN_RUN 4 /* a literal plus a match of at least 3 */
#define MAX_RUN_MATCHES 256 /* per run record */

/* ---- bit writer ---------------------------------------------------------- */

typedef struct {
  uint8_t *p, *end;
  uint64_t bb; /* pending bits, LSB first */
  unsigned bc; /* number of pending bits (< 32 after a flush) */
} bitw;

/* Adds n <= 32 bits; the caller keeps bc + n <= 64 by flushing. */
static inline void put(bitw *w, uint32_t v, unsigned n) {
  w->bb |= (uint64_t)v << w->bc;
  w->bc += n;
}

/* Writes whole pending bytes (bc < 64, so at most 7 stay); the callers
 * check that they fit. */
static inline void flush(bitw *w) {
  uint64_t b = w->bb;
  unsigned k = w->bc >> 3;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  if (w->end - w->p >= 8)
    memcpy(w->p, &b, 8);
  else
#endif
    for (unsigned i = 0; i < k; i++) w->p[i] = (uint8_t)(b >> (8 * i));
  w->p += k;
  w->bb >>= k * 8;
  w->bc &= 7;
}

/* flush with 8 bytes of room known to be there (the data of a block whose
 * size was checked with that margin). */
static inline void flush_fast(bitw *w) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  memcpy(w->p, &w->bb, 8);
  unsigned k = w->bc >> 3;
  w->p += k;
  w->bb >>= k * 8;
  w->bc &= 7;
#else
  flush(w);
#endif
}

/* Pads to a byte boundary and writes the rest. */
static void align(bitw *w) {
  w->bc = (w->bc + 7) & ~7u;
  flush(w);
}

/* ---- static tables -------------------------------------------------------- */

static const uint16_t len_base[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                      31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const uint8_t len_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                      2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
/* order in which code-length code lengths are sent */
static const uint8_t cl_order[NCL] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};

/* len_code[L - 3] = index into len_base of match length L (3..258). */
static void len_codes(uint8_t *len_code) {
  for (int c = 0; c < 29; c++) {
    int hi = c < 28 ? len_base[c + 1] - 1 : 258; /* 258 has its own code */
    for (int L = len_base[c]; L <= hi; L++) len_code[L - 3] = (uint8_t)c;
  }
}

/* ---- Huffman code lengths -------------------------------------------------- */

typedef struct {
  uint32_t f;
  uint16_t s;
} fsym;

/* Sorts by (frequency, symbol): LSD radix over 24-bit keys f << 9 | s
 * (a block has fewer than 2^15 symbols, an alphabet fewer than 2^9). */
static void sort_syms(fsym *sy, int m) {
  uint32_t a[NLIT], b[NLIT], *src = a, *dst = b;
  for (int i = 0; i < m; i++) a[i] = sy[i].f << 9 | sy[i].s;
  for (int shift = 0; shift < 24; shift += 8) {
    int pos[256] = {0};
    for (int i = 0; i < m; i++) pos[(src[i] >> shift) & 255]++;
    for (int k = 0, acc = 0; k < 256; k++) {
      int c = pos[k];
      pos[k] = acc;
      acc += c;
    }
    for (int i = 0; i < m; i++) dst[pos[(src[i] >> shift) & 255]++] = src[i];
    uint32_t *t = src;
    src = dst;
    dst = t;
  }
  for (int i = 0; i < m; i++) sy[i] = (fsym){src[i] >> 9, (uint16_t)(src[i] & 511)};
}

/* Code lengths (<= maxbits) of a complete prefix code for freq[0..n);
 * unused symbols get 0. At least two symbols always get a code. */
static void huff_lengths(const uint32_t *freq, int n, int maxbits, uint8_t *len) {
  fsym sy[NLIT];
  int m = 0;
  for (int i = 0; i < n; i++) {
    len[i] = 0;
    if (freq[i]) sy[m++] = (fsym){freq[i], (uint16_t)i};
  }
  /* a single (or no) used symbol: pad with unused ones so the code is
   * complete (two codes of length 1) */
  for (int i = 0; m < 2 && i < n; i++)
    if (!freq[i]) sy[m++] = (fsym){0, (uint16_t)i};
  sort_syms(sy, m);
  /* two-queue construction: leaves in sy (ascending), internal nodes in
   * creation order (ascending too); parent[] over leaves 0..m-1 and nodes
   * m..2m-2 */
  uint64_t w[2 * NLIT];
  int parent[2 * NLIT];
  for (int i = 0; i < m; i++) w[i] = sy[i].f;
  int li = 0, ni = m, nn = m;
  for (int k = 0; k < m - 1; k++) {
    int pick[2];
    for (int t = 0; t < 2; t++) {
      if (li < m && (ni >= nn || w[li] <= w[ni]))
        pick[t] = li++;
      else
        pick[t] = ni++;
    }
    w[nn] = w[pick[0]] + w[pick[1]];
    parent[pick[0]] = parent[pick[1]] = nn;
    nn++;
  }
  /* depths: the root is nn - 1; parents are created after children */
  int depth[2 * NLIT];
  depth[nn - 1] = 0;
  for (int i = nn - 2; i >= 0; i--) depth[i] = depth[parent[i]] + 1;
  /* count per length, clamped to maxbits, then repair the Kraft sum: each
   * step removes one leaf at maxbits and splits a shorter leaf into two one
   * level deeper, lowering the sum by exactly one unit */
  int count[64] = {0};
  for (int i = 0; i < m; i++) count[depth[i] > maxbits ? maxbits : depth[i]]++;
  uint64_t total = 0;
  for (int b = 1; b <= maxbits; b++) total += (uint64_t)count[b] << (maxbits - b);
  while (total > (1ull << maxbits)) {
    count[maxbits]--;
    for (int b = maxbits - 1; b > 0; b--)
      if (count[b]) {
        count[b]--;
        count[b + 1] += 2;
        break;
      }
    total--;
  }
  /* longest codes to the least frequent symbols */
  int i = 0;
  for (int b = maxbits; b >= 1; b--)
    for (int k = 0; k < count[b]; k++) len[sy[i++].s] = (uint8_t)b;
}

/* Canonical codes (RFC 1951, 3.2.2), bit-reversed for LSB-first output. */
static void huff_codes(const uint8_t *len, int n, uint16_t *code) {
  uint16_t bl_count[16] = {0}, next[16];
  for (int i = 0; i < n; i++) bl_count[len[i]]++;
  bl_count[0] = 0;
  uint16_t c = 0;
  for (int b = 1; b < 16; b++) {
    c = (uint16_t)((c + bl_count[b - 1]) << 1);
    next[b] = c;
  }
  for (int i = 0; i < n; i++) {
    code[i] = 0;
    if (!len[i]) continue;
    uint16_t v = next[len[i]]++, r = 0;
    for (int b = 0; b < len[i]; b++) r = (uint16_t)((r << 1) | ((v >> b) & 1));
    code[i] = r;
  }
}

/* ---- blocks ---------------------------------------------------------------- */

/* One block: src[0..nbytes) as literal stretches and runs. A run at pos of
 * byte b and length len is the literal b followed by matches of distance 1
 * covering len - 1 bytes (258 at most each; a match is shortened so that
 * the last one is never under 3). */
typedef struct {
  uint32_t pos, len;
} run_t;

typedef struct {
  run_t *runs;
  size_t nr, rcap;
  uint32_t lit[NLIT]; /* literal/length symbol frequencies */
  uint32_t lit2[256]; /* more literal counts, added to lit at the end */
  uint32_t nmatch;
  uint8_t len_code[256];
} block;

/* Match lengths a run of len bytes (MIN_RUN <= len <= 1 + 258 *
 * MAX_RUN_MATCHES) is coded with, in order; they always add up to len - 1.
 * Returns their count. */
static inline size_t run_matches(size_t len, uint16_t *m) {
  size_t left = len - 1, k = 0;
  while (left >= 3) {
    size_t x = left > 258 ? 258 : left;
    if (left - x > 0 && left - x < 3) x = left - 3;
    m[k++] = (uint16_t)x;
    left -= x;
  }
  return k;
}

/* The run-length encoding of the code lengths of both alphabets, its
 * symbol frequencies added to clf. */
static size_t cl_rle(const uint8_t *lens, size_t n, uint8_t *sym, uint8_t *extra, uint32_t *clf) {
  size_t k = 0;
  for (size_t i = 0; i < n;) {
    uint8_t v = lens[i];
    size_t r = 1;
    while (i + r < n && lens[i + r] == v) r++;
    size_t left = r;
    if (v == 0) {
      while (left >= 11) {
        size_t t = left > 138 ? 138 : left;
        sym[k] = 18, extra[k++] = (uint8_t)(t - 11), left -= t;
      }
      if (left >= 3) sym[k] = 17, extra[k++] = (uint8_t)(left - 3), left = 0;
    } else {
      sym[k] = v, extra[k++] = 0, left--;
      while (left >= 3) {
        size_t t = left > 6 ? 6 : left;
        sym[k] = 16, extra[k++] = (uint8_t)(t - 3), left -= t;
      }
    }
    while (left--) sym[k] = v, extra[k++] = 0;
    i += r;
  }
  for (size_t j = 0; j < k; j++) clf[sym[j]]++;
  return k;
}

static const uint8_t cl_extra_bits[NCL] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                           0, 0, 0, 0, 0, 0, 2, 3, 7};

/* Stored blocks of src[0..n) (n may be 0 only for the final block). */
static int put_stored(bitw *w, const uint8_t *src, size_t n, int final) {
  do {
    size_t m = n > 65535 ? 65535 : n;
    int last = final && m == n;
    if ((size_t)(w->end - w->p) < m + 6) return -1;
    put(w, (uint32_t)last, 1);
    put(w, 0, 2);
    align(w);
    w->p[0] = (uint8_t)m, w->p[1] = (uint8_t)(m >> 8);
    w->p[2] = (uint8_t)~m, w->p[3] = (uint8_t)(~m >> 8);
    memcpy(w->p + 4, src, m);
    w->p += 4 + m;
    src += m;
    n -= m;
  } while (n);
  return 0;
}

/* Literals src[0..n) with codes packed as code | length << 16. */
static inline void put_literals(bitw *w, const uint32_t *cl, const uint8_t *src, size_t n) {
  size_t i = 0;
  for (; i + 3 <= n; i += 3) { /* 3 x 15 bits + 7 pending < 64 */
    uint32_t a = cl[src[i]], b = cl[src[i + 1]], c = cl[src[i + 2]];
    put(w, a & 0xffff, a >> 16);
    put(w, b & 0xffff, b >> 16);
    put(w, c & 0xffff, c >> 16);
    flush_fast(w);
  }
  for (; i < n; i++) {
    uint32_t a = cl[src[i]];
    put(w, a & 0xffff, a >> 16);
  }
  flush_fast(w);
}

/* Writes block B over src[0..nbytes) as a dynamic Huffman block, or as
 * stored blocks when those are smaller. */
static int put_block(bitw *w, block *B, const uint8_t *src, size_t nbytes, int final) {
  B->lit[256] = 1; /* end of block */
  uint32_t dfreq[NDIST] = {1, 1};
  uint8_t ll[NLIT], dl[NDIST];
  uint16_t lc[NLIT], dc[NDIST];
  huff_lengths(B->lit, NLIT, 15, ll);
  huff_lengths(dfreq, NDIST, 15, dl);
  int hlit = NLIT;
  while (hlit > 257 && !ll[hlit - 1]) hlit--;
  int hdist = NDIST;
  uint8_t lens[NLIT + NDIST], sym[NLIT + NDIST], extra[NLIT + NDIST];
  memcpy(lens, ll, (size_t)hlit);
  memcpy(lens + hlit, dl, (size_t)hdist);
  uint32_t clf[NCL] = {0};
  size_t ns = cl_rle(lens, (size_t)(hlit + hdist), sym, extra, clf);
  uint8_t cll[NCL];
  uint16_t clc[NCL];
  huff_lengths(clf, NCL, 7, cll);
  int hclen = NCL;
  while (hclen > 4 && !cll[cl_order[hclen - 1]]) hclen--;

  /* size of the dynamic block in bits */
  uint64_t bits = 3 + 5 + 5 + 4 + 3 * (uint64_t)hclen;
  for (size_t j = 0; j < ns; j++) bits += cll[sym[j]] + cl_extra_bits[sym[j]];
  for (int s = 0; s < NLIT; s++) {
    uint64_t f = B->lit[s];
    if (!f) continue;
    bits += f * ll[s];
    if (s > 256) bits += f * len_extra[s - 257];
  }
  bits += (uint64_t)B->nmatch * dl[0];
  uint64_t stored = (nbytes / 65535 + 1) * 48 + 8 * (uint64_t)nbytes;
  /* the data loops flush 8 bytes at a time: keep that much spare room */
  if (bits >= stored || (uint64_t)(w->end - w->p) < bits / 8 + 10)
    return put_stored(w, src, nbytes, final);

  huff_codes(ll, NLIT, lc);
  huff_codes(dl, NDIST, dc);
  huff_codes(cll, NCL, clc);
  put(w, (uint32_t)final, 1);
  put(w, 2, 2);
  put(w, (uint32_t)(hlit - 257), 5);
  put(w, (uint32_t)(hdist - 1), 5);
  put(w, (uint32_t)(hclen - 4), 4);
  flush(w);
  for (int i = 0; i < hclen; i++) {
    put(w, cll[cl_order[i]], 3);
    flush(w);
  }
  for (size_t j = 0; j < ns; j++) {
    put(w, clc[sym[j]], cll[sym[j]]);
    put(w, extra[j], cl_extra_bits[sym[j]]);
    flush(w);
  }
  uint32_t cl[256];
  for (int b = 0; b < 256; b++) cl[b] = lc[b] | (uint32_t)ll[b] << 16;
  /* a match: length code (<= 15 bits) + extra (<= 5) + distance (1) */
  uint32_t mcode[29], mlen[29];
  for (int c = 0; c < 29; c++) {
    mcode[c] = lc[257 + c];
    mlen[c] = ll[257 + c];
  }
  const uint32_t d0c = dc[0], d0l = dl[0];
  size_t at = 0;
  for (size_t k = 0; k < B->nr; k++) {
    const run_t *r = &B->runs[k];
    put_literals(w, cl, src + at, r->pos - at + 1); /* stretch + the run's byte */
    uint16_t m[MAX_RUN_MATCHES + 1];
    size_t nm = run_matches(r->len, m);
    for (size_t j = 0; j < nm; j++) {
      unsigned L = m[j], c = B->len_code[L - 3];
      put(w, mcode[c], mlen[c]);
      put(w, L - len_base[c], len_extra[c]);
      put(w, d0c, d0l);
      flush_fast(w);
    }
    at = r->pos + r->len;
  }
  put_literals(w, cl, src + at, nbytes - at);
  put(w, lc[256], ll[256]);
  flush(w);
  return 0;
}

/* ---- block scan ---------------------------------------------------------------- */

/* First i in [i, lim) where in[i..i+MIN_RUN) are equal (lim when none);
 * in[] is readable up to n. */
static inline size_t next_run(const uint8_t *in, size_t i, size_t lim, size_t n) {
#ifdef __SSE2__
  while (i + 16 + MIN_RUN - 1 <= n && i < lim) {
    __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(in + i));
    __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(in + i + 1));
    __m128i c = _mm_loadu_si128((const __m128i *)(const void *)(in + i + 2));
    __m128i d = _mm_loadu_si128((const __m128i *)(const void *)(in + i + 3));
    unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(a, b)) &
                 (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(a, c)) &
                 (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(a, d));
    if (m) {
      size_t j = i + (size_t)__builtin_ctz(m);
      return j < lim ? j : lim;
    }
    i += 16;
  }
#endif
  for (; i < lim; i++)
    if (i + MIN_RUN <= n && in[i] == in[i + 1] && in[i] == in[i + 2] && in[i] == in[i + 3])
      return i;
  return lim;
}

/* Length of the run of in[i] starting at i (at least 1), at most n - i. */
static inline size_t run_len(const uint8_t *in, size_t i, size_t n) {
  uint8_t b = in[i];
  size_t j = i + 1;
  uint64_t pat = 0x0101010101010101ull * b;
  while (j + 8 <= n) {
    uint64_t x;
    memcpy(&x, in + j, 8);
    x ^= pat;
    if (x) return j - i + (size_t)(__builtin_ctzll(x) >> 3);
    j += 8;
  }
  while (j < n && in[j] == b) j++;
  return j - i;
}

/* Adds literal frequencies of src[0..n) to B (two tables, merged at the
 * end of the block, break the dependency chains of repeated bytes). */
static inline void count_literals(block *B, const uint8_t *src, size_t n) {
  size_t i = 0;
  for (; i + 2 <= n; i += 2) {
    B->lit[src[i]]++;
    B->lit2[src[i + 1]]++;
  }
  if (i < n) B->lit[src[i]]++;
}

/* Scans one block from in[start]: literal stretches and runs until
 * BLOCK_TOKENS symbols or the end; returns the block's end. */
static size_t scan_block(block *B, const uint8_t *in, size_t start, size_t n) {
  B->nr = 0;
  B->nmatch = 0;
  memset(B->lit, 0, sizeof B->lit);
  memset(B->lit2, 0, sizeof B->lit2);
  size_t i = start, syms = 0;
  while (i < n && syms < BLOCK_TOKENS) {
    size_t lim = i + (BLOCK_TOKENS - syms);
    if (lim > n) lim = n;
    size_t j = next_run(in, i, lim, n);
    count_literals(B, in + i, j - i);
    syms += j - i;
    i = j;
    if (j >= lim) break;
    /* one literal and at most room - 1 matches (a split can add one to the
     * (r - 1) / 258 full ones); longer runs continue in a new record */
    size_t room = BLOCK_TOKENS - syms, r = run_len(in, j, n);
    if (room < 3) break;
    size_t most = 1 + 258 * (room - 2 < MAX_RUN_MATCHES ? room - 2 : MAX_RUN_MATCHES);
    if (r > most) r = most;
    if (B->nr == B->rcap) {
      size_t nc = B->rcap ? 2 * B->rcap : 1024;
      run_t *nr = ms__realloc(B->runs, nc * sizeof *nr);
      if (!nr) return SIZE_MAX;
      B->runs = nr;
      B->rcap = nc;
    }
    uint16_t m[MAX_RUN_MATCHES + 1];
    size_t nm = run_matches(r, m);
    for (size_t k = 0; k < nm; k++) B->lit[257 + B->len_code[m[k] - 3]]++;
    B->runs[B->nr++] = (run_t){(uint32_t)(j - start), (uint32_t)r};
    B->lit[in[j]]++;
    B->nmatch += (uint32_t)nm;
    syms += 1 + nm;
    i = j + r;
  }
  for (int b = 0; b < 256; b++) B->lit[b] += B->lit2[b];
  return i;
}

/* ---- Adler-32 ---------------------------------------------------------------- */

#define ADLER_MOD 65521u
#define ADLER_NMAX 5552u /* zlib's bound: the sums stay under 2^32 */

/* Adler-32 (RFC 1950) of in[0..n), continuing from a (1 for a new sum).
 * 16-byte blocks: s1 gains the block's byte sum, s2 gains 16 s1 per block
 * before it plus the bytes weighted 16..1; reduced every ADLER_NMAX bytes. */
uint32_t ms__adler32(uint32_t a, const uint8_t *in, size_t n) {
  uint64_t s1 = a & 0xffff, s2 = a >> 16;
#ifdef __SSE2__
  const __m128i zero = _mm_setzero_si128();
  const __m128i w0 = _mm_setr_epi16(16, 15, 14, 13, 12, 11, 10, 9);
  const __m128i w1 = _mm_setr_epi16(8, 7, 6, 5, 4, 3, 2, 1);
  while (n >= 16) {
    size_t k = (n < ADLER_NMAX ? n : ADLER_NMAX) & ~(size_t)15;
    __m128i vs1 = zero, vs2 = zero, vps = zero;
    for (size_t i = 0; i < k; i += 16) {
      __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(in + i));
      vps = _mm_add_epi32(vps, vs1);
      vs1 = _mm_add_epi32(vs1, _mm_sad_epu8(v, zero));
      vs2 = _mm_add_epi32(vs2, _mm_madd_epi16(_mm_unpacklo_epi8(v, zero), w0));
      vs2 = _mm_add_epi32(vs2, _mm_madd_epi16(_mm_unpackhi_epi8(v, zero), w1));
    }
    uint32_t t1[4], t2[4], tp[4];
    _mm_storeu_si128((__m128i *)(void *)t1, vs1);
    _mm_storeu_si128((__m128i *)(void *)t2, vs2);
    _mm_storeu_si128((__m128i *)(void *)tp, vps);
    s2 += k * s1 + 16 * ((uint64_t)tp[0] + tp[1] + tp[2] + tp[3]) +
          ((uint64_t)t2[0] + t2[1] + t2[2] + t2[3]);
    s1 += (uint64_t)t1[0] + t1[1] + t1[2] + t1[3];
    s1 %= ADLER_MOD;
    s2 %= ADLER_MOD;
    in += k;
    n -= k;
  }
#endif
  while (n) {
    size_t k = n < ADLER_NMAX ? n : ADLER_NMAX;
    for (size_t i = 0; i < k; i++) {
      s1 += in[i];
      s2 += s1;
    }
    s1 %= ADLER_MOD;
    s2 %= ADLER_MOD;
    in += k;
    n -= k;
  }
  return (uint32_t)(s2 << 16 | s1);
}

int ms__deflate_rle(const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *out_len) {
  if (cap < 7 || n > UINT32_MAX) return -1;
  bitw w = {.p = out, .end = out + cap, .bb = 0, .bc = 0};
  w.p[0] = 0x78;
  w.p[1] = 0x01;
  w.p += 2;
  if (n == 0) {
    put(&w, 1, 1); /* final */
    put(&w, 1, 2); /* fixed Huffman */
    put(&w, 0, 7); /* end of block: code 256 is seven zero bits */
  } else {
    block B = {0};
    len_codes(B.len_code);
    size_t i = 0;
    int rc = 0;
    while (i < n && rc == 0) {
      size_t end = scan_block(&B, in, i, n);
      if (end == SIZE_MAX) {
        free(B.runs);
        return -2; /* out of memory */
      }
      rc = put_block(&w, &B, in + i, end - i, end == n);
      i = end;
    }
    free(B.runs);
    if (rc) return -1;
  }
  if (w.end - w.p < (ptrdiff_t)((w.bc + 7) / 8 + 4)) return -1;
  align(&w);
  uint32_t a = ms__adler32(1, in, n);
  w.p[0] = (uint8_t)(a >> 24);
  w.p[1] = (uint8_t)(a >> 16);
  w.p[2] = (uint8_t)(a >> 8);
  w.p[3] = (uint8_t)a;
  w.p += 4;
  *out_len = (size_t)(w.p - out);
  return 0;
}
