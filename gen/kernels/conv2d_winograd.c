/* Winograd F(2x2, 3x3) convolution for 3x3, stride 1, pad 1 layers.
 *
 * Each 2x2 block of outputs (a "tile") of channel co is
 *   Y = A^T [ sum over c of U[co,c] (.) V[c] ] A + bias,
 *   U[co,c] = G g[co,c] G^T   (4x4, transformed once at pack time),
 *   V[c]    = B^T d[c] B      (d: the 4x4 input patch, zero outside),
 * with (Lavin & Gray, 2016; correlation form as in PyTorch)
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 *   G   = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]
 *   A^T = [1 1 1 0; 0 1 -1 -1].
 * The sum over c at each of the 16 positions is a GEMM
 * M_pos [C_out x tiles] = U_pos [C_out x C] * V_pos [C x tiles], run by
 * ms_sgemm's micro-kernel: 16 multiplies per 4 outputs instead of 36.
 *
 * Layout and order: the tiles of the whole batch are numbered
 * t = (n*tH + ty)*tW + tx and processed in chunks of TB columns (a
 * multiple of the micro-kernel's NR, a function of the ISA and channel
 * counts only). Per chunk: the input transform writes V straight into the
 * NR-wide panels the micro-kernel reads; the 16 GEMMs (KC blocks of c in
 * increasing order, sequential FMA inside a block, first block stored,
 * later blocks added) write M; the output transform adds the bias last and
 * stores the in-image part of each tile. Every output element's arithmetic
 * is therefore fixed by (ISA, C, C_out): it does not depend on N, on the
 * other images of the batch, on the chunk a tile lands in or on the thread
 * count (threads take whole chunks). It differs from ms_conv2d's bytes
 * (another algorithm); the error against the exact result is a few float
 * ulps of the transformed magnitudes (tests/test_kernels.c states the
 * tolerance).
 *
 * Weights: U is packed once (ms_conv2d_winograd_pack_weights) into the
 * micro-kernel's MR-tall panels, 16 positions x C_out (rounded to MR) x C.
 * No allocation per call: scratch holds one chunk's V and M per thread.
 *
 * Reference: A. Lavin and S. Gray, "Fast Algorithms for Convolutional
 * Neural Networks", CVPR 2016; Goto & van de Geijn (2008) for the panels. */
#include <string.h>

#include "core/pool.h"
#include "kern_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#define KC MS_SGEMM_KC
#define NPOS 16
/* Floats of one chunk's V (or M) buffer aimed at (fits L2 with room). */
#define WINO_CHUNK_FLOATS 49152
/* Work per thread below which another thread is not worth a fork. */
#define WINO_FLOPS_PER_THREAD 4.0e6

static inline size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }
static inline size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }
static inline size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

static float *align64(float *p) {
  uintptr_t u = (uintptr_t)p;
  return (float *)((u + 63) & ~(uintptr_t)63);
}

int ms_conv2d_winograd_supported(const ms_conv2d_params *p) {
  size_t Ho, Wo;
  if (ms_conv2d_out_hw(p, &Ho, &Wo) != MS_OK) return 0;
  if (p->kh != 3 || p->kw != 3 || p->stride_h != 1 || p->stride_w != 1 || p->pad_h != 1 ||
      p->pad_w != 1)
    return 0;
  /* every buffer size below must be representable with room to spare */
  size_t t;
  return p->C <= (1u << 20) && p->C_out <= (1u << 20) && ms__mul_ok(p->C, p->C_out, &t) &&
         t <= SIZE_MAX / (64 * NPOS) && p->N * ((p->H + 1) / 2) <= SIZE_MAX / (p->W + 2);
}

int ms_conv2d_winograd_suits(const ms_conv2d_params *p) {
  if (!ms_conv2d_winograd_supported(p)) return 0;
  /* timed on AVX-512 only; 8x8 maps were slower than ms_conv2d_prepacked */
  if (ms_kernel_isa_detect() != MS_KERNEL_ISA_AVX512) return 0;
  /* Per image at least 16x16 outputs: smaller maps have too few tiles for
   * the transforms and the per-chunk weight stream to pay off. */
  return p->H >= 16 && p->W >= 16 && p->C >= 8;
}

/* MR and NR of the micro-kernel used for `isa` (8 x 48 on AVX-512). */
static int wino_tile(ms_kernel_isa isa, size_t *mr, size_t *nr, ms__ukr_fn *ukr) {
  return ms__sgemm_ukr(isa, 1, mr, nr, ukr);
}

/* Largest MR-rounded C_out of any ISA path. */
static size_t mp_max(size_t Co) {
  static const size_t mrs[] = {4, 6, 8, 14};
  size_t mp = 0;
  for (size_t i = 0; i < 4; i++) mp = max_sz(mp, round_up(Co, mrs[i]));
  return mp;
}

/* Chunk width: NR times the number of strips whose V and M fit
 * WINO_CHUNK_FLOATS (at least one strip). */
static size_t chunk_cols(size_t C, size_t Mp, size_t nr) {
  const size_t per_strip = NPOS * max_sz(C, Mp) * nr;
  size_t nb = WINO_CHUNK_FLOATS / per_strip;
  if (nb < 1) nb = 1;
  if (nb > 8) nb = 8;
  return nb * nr;
}

/* Scratch floats of one thread (V and M of a chunk, alignment slack). The
 * largest over the ISA paths, so one size fits whichever path runs. */
static size_t per_thread_floats(const ms_conv2d_params *p) {
  static const size_t nrs[] = {8, 16, 32, 48};
  const size_t Mp = mp_max(p->C_out);
  size_t best = 0;
  for (size_t i = 0; i < 4; i++) {
    const size_t TB = chunk_cols(p->C, Mp, nrs[i]);
    best = max_sz(best, NPOS * TB * (p->C + Mp) + 32);
  }
  return best;
}

static size_t tiles_of(const ms_conv2d_params *p) {
  return p->N * ((p->H + 1) / 2) * ((p->W + 1) / 2);
}

static size_t useful_threads(const ms_conv2d_params *p, size_t max_threads) {
  const double flops = 2.0 * NPOS * (double)p->C_out * (double)p->C * (double)tiles_of(p);
  double u = 1.0 + flops / WINO_FLOPS_PER_THREAD;
  size_t nt = u < (double)max_threads ? (size_t)u : max_threads;
  return nt < 1 ? 1 : nt;
}

size_t ms_conv2d_winograd_packed_floats(const ms_conv2d_params *p) {
  if (!ms_conv2d_winograd_supported(p)) return 0;
  return NPOS * mp_max(p->C_out) * p->C + 32;
}

size_t ms_conv2d_winograd_scratch_floats(const ms_conv2d_params *p) {
  if (!ms_conv2d_winograd_supported(p)) return 0;
  const size_t mt = ms__parallel_threads();
  return per_thread_floats(p) * useful_threads(p, mt < 1 ? 1 : mt);
}

ms_status ms__conv2d_winograd_pack_weights_isa(ms_kernel_isa isa, float *wp, size_t wp_floats,
                                               const float *w, const ms_conv2d_params *p) {
  if (!ms_conv2d_winograd_supported(p)) return MS_ERR_UNSUPPORTED;
  if (!wp || !w) return MS_ERR_INVALID;
  size_t mr, nr;
  ms__ukr_fn ukr;
  if (!wino_tile(isa, &mr, &nr, &ukr)) return MS_ERR_UNSUPPORTED;
  if (wp_floats < ms_conv2d_winograd_packed_floats(p)) return MS_ERR_INVALID;
  const size_t C = p->C, Co = p->C_out, Mp = round_up(Co, mr);
  /* position q of panel pos: block pc at pc*Mp, strip ir at ir*mr*kc,
   * element [k*mr + r] (rows >= C_out zero) */
  for (size_t co = 0; co < Mp; co++) {
    const size_t ir = co / mr, r = co % mr;
    for (size_t c = 0; c < C; c++) {
      double u[4][4] = {{0}};
      if (co < Co) {
        const float *g = w + (co * C + c) * 9;
        double t[4][3]; /* G g */
        for (size_t j = 0; j < 3; j++) {
          const double g0 = g[j], g1 = g[3 + j], g2 = g[6 + j];
          t[0][j] = g0;
          t[1][j] = 0.5 * (g0 + g1 + g2);
          t[2][j] = 0.5 * (g0 - g1 + g2);
          t[3][j] = g2;
        }
        for (size_t i = 0; i < 4; i++) { /* (G g) G^T */
          u[i][0] = t[i][0];
          u[i][1] = 0.5 * (t[i][0] + t[i][1] + t[i][2]);
          u[i][2] = 0.5 * (t[i][0] - t[i][1] + t[i][2]);
          u[i][3] = t[i][2];
        }
      }
      const size_t pc = c / KC * KC, kc = min_sz(KC, C - pc), k = c - pc;
      for (size_t q = 0; q < NPOS; q++)
        wp[q * Mp * C + pc * Mp + ir * mr * kc + k * mr + r] = (float)u[q / 4][q % 4];
    }
  }
  return MS_OK;
}

ms_status ms_conv2d_winograd_pack_weights(float *wp, size_t wp_floats, const float *w,
                                          const ms_conv2d_params *p) {
  return ms__conv2d_winograd_pack_weights_isa(ms_kernel_isa_detect(), wp, wp_floats, w, p);
}

typedef struct {
  const ms_conv2d_params *p;
  size_t tH, tW, T;   /* tiles per column / row, tiles in the batch */
  size_t mr, nr, Mp, TB;
  ms__ukr_fn ukr;
  void (*in_run)(const float *, const float *, const float *, const float *, size_t, float *,
                 size_t);
  void (*out_run)(const float *, size_t, size_t, float, float *, float *);
} wino_geom;

/* Input transform of `len` consecutive tiles of one tile row and one
 * channel: r0..r3 are the 4 input rows, starting at the first tile's
 * left column (zero padded); tile l reads r_i[2l .. 2l+3]. V^q of tile l
 * goes to dst[q*qs + l]. Adds and subtracts only, in a fixed order (the
 * same on every ISA; the compiler vectorises the loop over tiles). */
static inline __attribute__((always_inline)) void in_run_body(
    const float *restrict r0, const float *restrict r1, const float *restrict r2,
    const float *restrict r3, size_t len, float *restrict dst, size_t qs) {
  for (size_t l = 0; l < len; l++) {
    const size_t o = 2 * l;
    float t[4][4];
    /* B^T d: column k of the patch */
#define IN_COL(k)                                                      \
  {                                                                    \
    const float d0 = r0[o + k], d1 = r1[o + k], d2 = r2[o + k], d3 = r3[o + k]; \
    t[0][k] = d0 - d2;                                                 \
    t[1][k] = d1 + d2;                                                 \
    t[2][k] = d2 - d1;                                                 \
    t[3][k] = d1 - d3;                                                 \
  }
    IN_COL(0) IN_COL(1) IN_COL(2) IN_COL(3)
#undef IN_COL
    for (int i = 0; i < 4; i++) { /* (B^T d) B */
      dst[(4 * i) * qs + l] = t[i][0] - t[i][2];
      dst[(4 * i + 1) * qs + l] = t[i][1] + t[i][2];
      dst[(4 * i + 2) * qs + l] = t[i][2] - t[i][1];
      dst[(4 * i + 3) * qs + l] = t[i][1] - t[i][3];
    }
  }
}

/* Output transform of `len` consecutive tiles of one tile row and one
 * output channel: m + q*TB + l holds M^q of tile l; out0/out1 are the two
 * output rows at the first tile's left column (out1 NULL: the row is
 * below the image). Only tiles fully inside the width go through here.
 * y = (A^T m A) + bias, in a fixed order. */
static inline __attribute__((always_inline)) void out_run_body(
    const float *restrict m, size_t ms, size_t len, float bv, float *restrict out0,
    float *restrict out1) {
  for (size_t l = 0; l < len; l++) {
    float s[2][4];
    for (int k = 0; k < 4; k++) { /* A^T m */
      const float m0 = m[k * ms + l], m1 = m[(4 + k) * ms + l], m2 = m[(8 + k) * ms + l],
                  m3 = m[(12 + k) * ms + l];
      s[0][k] = m0 + m1 + m2;
      s[1][k] = m1 - m2 - m3;
    }
    out0[2 * l] = (s[0][0] + s[0][1] + s[0][2]) + bv;
    out0[2 * l + 1] = (s[0][1] - s[0][2] - s[0][3]) + bv;
    if (out1) {
      out1[2 * l] = (s[1][0] + s[1][1] + s[1][2]) + bv;
      out1[2 * l + 1] = (s[1][1] - s[1][2] - s[1][3]) + bv;
    }
  }
}

/* The same output transform for one tile, writing only columns < ncols
 * (1 or 2) of the rows given. */
static void out_tile(const float *m, size_t ms, float bv, float *out0, float *out1,
                     size_t ncols) {
  float o0[2], o1[2];
  out_run_body(m, ms, 1, bv, o0, o1);
  for (size_t k = 0; k < ncols; k++) {
    out0[k] = o0[k];
    if (out1) out1[k] = o1[k];
  }
}

static void in_run_generic(const float *r0, const float *r1, const float *r2, const float *r3,
                           size_t len, float *dst, size_t qs) {
  in_run_body(r0, r1, r2, r3, len, dst, qs);
}
static void out_run_generic(const float *m, size_t ms, size_t len, float bv, float *out0,
                            float *out1) {
  out_run_body(m, ms, len, bv, out0, out1);
}
#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2"))) static void in_run_avx2(const float *r0, const float *r1,
                                                         const float *r2, const float *r3,
                                                         size_t len, float *dst, size_t qs) {
  in_run_body(r0, r1, r2, r3, len, dst, qs);
}
__attribute__((target("avx2"))) static void out_run_avx2(const float *m, size_t ms, size_t len,
                                                          float bv, float *out0, float *out1) {
  out_run_body(m, ms, len, bv, out0, out1);
}
/* AVX-512: 16 tiles per step; tap k of tiles l .. l+15 is the even (k 0,
 * 2) or odd (k 1, 3) elements of 32 floats at 2l (k 0, 1) or 2l+2 (k 2,
 * 3), gathered by masked loads (never past the run's 2*len+2 floats) and
 * one permute. Same adds in the same order as in_run_body. */
static inline __mmask16 lanes_lt(ptrdiff_t n) {
  return n <= 0 ? (__mmask16)0 : n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
}

__attribute__((target("avx512f"))) static void in_run_avx512(const float *r0, const float *r1,
                                                              const float *r2, const float *r3,
                                                              size_t len, float *dst,
                                                              size_t qs) {
  const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const float *rr[4] = {r0, r1, r2, r3};
  for (size_t l = 0; l < len; l += 16) {
    const ptrdiff_t span = (ptrdiff_t)(2 * (len - l) + 2); /* floats left from 2l */
    const __mmask16 m0 = lanes_lt(span), m1 = lanes_lt(span - 16), m2 = lanes_lt(span - 2),
                    m3 = lanes_lt(span - 18), ms = lanes_lt((ptrdiff_t)(len - l));
    __m512 d[4][4];
    for (int i = 0; i < 4; i++) {
      const float *r = rr[i] + 2 * l;
      const __m512 a = _mm512_maskz_loadu_ps(m0, r), b = _mm512_maskz_loadu_ps(m1, r + 16);
      const __m512 a2 = _mm512_maskz_loadu_ps(m2, r + 2),
                   b2 = _mm512_maskz_loadu_ps(m3, r + 18);
      d[i][0] = _mm512_permutex2var_ps(a, ev, b);
      d[i][1] = _mm512_permutex2var_ps(a, od, b);
      d[i][2] = _mm512_permutex2var_ps(a2, ev, b2);
      d[i][3] = _mm512_permutex2var_ps(a2, od, b2);
    }
    for (int k = 0; k < 4; k++) {
      const __m512 t0 = _mm512_sub_ps(d[0][k], d[2][k]), t1 = _mm512_add_ps(d[1][k], d[2][k]),
                   t2 = _mm512_sub_ps(d[2][k], d[1][k]), t3 = _mm512_sub_ps(d[1][k], d[3][k]);
      d[0][k] = t0;
      d[1][k] = t1;
      d[2][k] = t2;
      d[3][k] = t3;
    }
    for (int i = 0; i < 4; i++) {
      float *o = dst + l;
      _mm512_mask_storeu_ps(o + (4 * i) * qs, ms, _mm512_sub_ps(d[i][0], d[i][2]));
      _mm512_mask_storeu_ps(o + (4 * i + 1) * qs, ms, _mm512_add_ps(d[i][1], d[i][2]));
      _mm512_mask_storeu_ps(o + (4 * i + 2) * qs, ms, _mm512_sub_ps(d[i][2], d[i][1]));
      _mm512_mask_storeu_ps(o + (4 * i + 3) * qs, ms, _mm512_sub_ps(d[i][1], d[i][3]));
    }
  }
}
/* AVX-512 output transform, 16 tiles per step (masked for the rest): the
 * same adds in the same order as out_run_body; the two outputs of a tile
 * row are interleaved by permutes into 32 consecutive floats. */
__attribute__((target("avx512f"))) static void out_run_avx512(const float *m, size_t ms,
                                                               size_t len, float bv,
                                                               float *out0, float *out1) {
  const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi =
      _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const __m512 vb = _mm512_set1_ps(bv);
  for (size_t l = 0; l < len; l += 16) {
    const ptrdiff_t left = (ptrdiff_t)(len - l);
    const __mmask16 mm = lanes_lt(left), s0m = lanes_lt(2 * left), s1m = lanes_lt(2 * left - 16);
    __m512 s0[4], s1[4];
    for (int k = 0; k < 4; k++) {
      const __m512 m0 = _mm512_maskz_loadu_ps(mm, m + k * ms + l),
                   m1 = _mm512_maskz_loadu_ps(mm, m + (4 + k) * ms + l),
                   m2 = _mm512_maskz_loadu_ps(mm, m + (8 + k) * ms + l),
                   m3 = _mm512_maskz_loadu_ps(mm, m + (12 + k) * ms + l);
      s0[k] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
      s1[k] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
    }
    for (int i = 0; i < 2; i++) {
      const __m512 *t = i ? s1 : s0;
      float *o = i ? out1 : out0;
      if (!o) continue;
      const __m512 e = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(t[0], t[1]), t[2]), vb);
      const __m512 f = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(t[1], t[2]), t[3]), vb);
      _mm512_mask_storeu_ps(o + 2 * l, s0m, _mm512_permutex2var_ps(e, lo, f));
      _mm512_mask_storeu_ps(o + 2 * l + 16, s1m, _mm512_permutex2var_ps(e, hi, f));
    }
  }
}
#endif

/* Input transform of chunk columns [0, TB) starting at tile t0 into V:
 * position q, strip sb, channel c, lane l at ((q*nb + sb)*C + c)*nr + l.
 * Runs of tiles in one tile row and one strip are transformed together;
 * rows are read in place when the run's patch lies inside the image, from
 * a zero-padded copy otherwise. Columns past the last tile are zero. */
static void chunk_in(const wino_geom *g, const float *x, size_t t0, float *restrict V) {
  const ms_conv2d_params *p = g->p;
  const size_t C = p->C, H = p->H, W = p->W, nr = g->nr, TB = g->TB, nb = TB / nr;
  const size_t qs = nb * C * nr;
  float rb[4][2 * MS__MAX_NR + 2];
  for (size_t j = 0; j < TB;) {
    const size_t t = t0 + j, sb = j / nr, l0 = j % nr;
    if (t >= g->T) {
      for (size_t q = 0; q < NPOS; q++)
        for (size_t c = 0; c < C; c++)
          for (size_t l = l0; l < nr; l++) V[q * qs + (sb * C + c) * nr + l] = 0.0f;
      j += nr - l0;
      continue;
    }
    const size_t n = t / (g->tH * g->tW), r = t % (g->tH * g->tW), ty = r / g->tW,
                 tx = r % g->tW;
    const size_t len = min_sz(min_sz(g->tW - tx, nr - l0), g->T - t);
    const ptrdiff_t y0 = (ptrdiff_t)(2 * ty) - 1, x0 = (ptrdiff_t)(2 * tx) - 1;
    const ptrdiff_t span = (ptrdiff_t)(2 * len + 2);
    const int cols_in = x0 >= 0 && x0 + span <= (ptrdiff_t)W;
    for (size_t c = 0; c < C; c++) {
      const float *plane = x + (n * C + c) * H * W;
      const float *rows[4];
      for (int i = 0; i < 4; i++) {
        const ptrdiff_t iy = y0 + i;
        const int row_in = iy >= 0 && iy < (ptrdiff_t)H;
        if (row_in && cols_in) {
          rows[i] = plane + (size_t)iy * W + (size_t)x0;
          continue;
        }
        /* columns [lo, hi) of the run are inside the image */
        const ptrdiff_t lo = x0 < 0 ? -x0 : 0,
                        hi = x0 + span > (ptrdiff_t)W ? (ptrdiff_t)W - x0 : span;
        for (ptrdiff_t k = 0; k < span; k++) rb[i][k] = 0.0f;
        if (row_in && hi > lo)
          memcpy(&rb[i][lo], plane + (size_t)iy * W + (size_t)(x0 + lo),
                 (size_t)(hi - lo) * sizeof(float));
        rows[i] = rb[i];
      }
      g->in_run(rows[0], rows[1], rows[2], rows[3], len, V + (sb * C + c) * nr + l0, qs);
    }
    j += len;
  }
}

/* The 16 GEMMs of a chunk: M[q][row][j] (row < Mp, ldc TB). */
static void chunk_gemm(const wino_geom *g, const float *Up, const float *V, float *M) {
  const size_t C = g->p->C, mr = g->mr, nr = g->nr, Mp = g->Mp, TB = g->TB, nb = TB / nr;
  for (size_t q = 0; q < NPOS; q++) {
    const float *Uq = Up + q * Mp * C;
    for (size_t sb = 0; sb < nb; sb++) {
      const float *Vb = V + (q * nb + sb) * C * nr;
      for (size_t ir = 0; ir < Mp / mr; ir++) {
        float *ct = M + (q * Mp + ir * mr) * TB + sb * nr;
        for (size_t pc = 0; pc < C; pc += KC) {
          const size_t kc = min_sz(KC, C - pc);
          g->ukr(kc, Uq + pc * Mp + ir * mr * kc, Vb + pc * nr, ct, TB, 1.0f, 0.0f, pc == 0);
        }
      }
    }
  }
}

/* A^T m A + bias of chunk tiles [t0, t0 + TB) into y (in-image part),
 * by runs of tiles in one tile row. */
static void chunk_out(const wino_geom *g, const float *M, const float *b, float *y, size_t t0) {
  const ms_conv2d_params *p = g->p;
  const size_t Co = p->C_out, H = p->H, W = p->W, TB = g->TB, Mp = g->Mp;
  const size_t jn = min_sz(TB, g->T - t0), ms = Mp * TB;
  for (size_t j = 0; j < jn;) {
    const size_t t = t0 + j, n = t / (g->tH * g->tW), r = t % (g->tH * g->tW),
                 ty = r / g->tW, tx = r % g->tW, oy = 2 * ty, ox = 2 * tx;
    const size_t len = min_sz(g->tW - tx, jn - j);
    /* the last tile of an odd-width row has one column */
    const size_t lf = (tx + len == g->tW && (W & 1)) ? len - 1 : len;
    const int two = oy + 1 < H;
    for (size_t co = 0; co < Co; co++) {
      const float *m = M + co * TB + j;
      const float bv = b ? b[co] : 0.0f;
      float *out0 = y + ((n * Co + co) * H + oy) * W + ox, *out1 = two ? out0 + W : NULL;
      g->out_run(m, ms, lf, bv, out0, out1);
      if (lf < len) out_tile(m + lf, ms, bv, out0 + 2 * lf, out1 ? out1 + 2 * lf : NULL, 1);
    }
    j += len;
  }
}

typedef struct {
  const wino_geom *g;
  float *y;
  const float *x, *wp, *b;
  float *scratch;
  size_t per;
} wino_job;

/* Chunk `ch` of TB tiles: transform, GEMM, inverse transform, on the
 * worker's V and M. */
static void wino_chunk(void *ctx, size_t ch, size_t worker) {
  const wino_job *j = ctx;
  const wino_geom *g = j->g;
  float *V = align64(j->scratch + worker * j->per);
  float *M = V + NPOS * g->TB * g->p->C;
  chunk_in(g, j->x, ch * g->TB, V);
  chunk_gemm(g, j->wp, V, M);
  chunk_out(g, M, j->b, j->y, ch * g->TB);
}

ms_status ms__conv2d_winograd_isa(ms_kernel_isa isa, float *y, const float *x, const float *wp,
                                  const float *b, const ms_conv2d_params *p, float *scratch,
                                  size_t scratch_floats) {
  if (!ms_conv2d_winograd_supported(p)) return MS_ERR_UNSUPPORTED;
  if (!y || !x || !wp) return MS_ERR_INVALID;
  wino_geom g = {.p = p, .tH = (p->H + 1) / 2, .tW = (p->W + 1) / 2};
  if (!wino_tile(isa, &g.mr, &g.nr, &g.ukr)) return MS_ERR_UNSUPPORTED;
  g.T = p->N * g.tH * g.tW;
  g.in_run = in_run_generic;
  g.out_run = out_run_generic;
#if defined(__x86_64__) || defined(__i386__)
  if (isa == MS_KERNEL_ISA_AVX512) {
    g.in_run = in_run_avx512;
    g.out_run = out_run_avx512;
  } else if (isa == MS_KERNEL_ISA_AVX2) {
    g.in_run = in_run_avx2;
    g.out_run = out_run_avx2;
  }
#endif
  g.Mp = round_up(p->C_out, g.mr);
  g.TB = chunk_cols(p->C, mp_max(p->C_out), g.nr);
  const size_t per = per_thread_floats(p);
  if (!scratch || scratch_floats < per) return MS_ERR_INVALID;
  const size_t chunks = (g.T + g.TB - 1) / g.TB;
  const size_t mt = ms__parallel_threads();
  size_t nt = min_sz(useful_threads(p, mt < 1 ? 1 : mt), scratch_floats / per);
  nt = min_sz(nt, chunks);
  if (nt < 1) nt = 1;
  wino_job j = {&g, y, x, wp, b, scratch, per};
  ms__parallel(chunks, nt, wino_chunk, &j);
  return MS_OK;
}

ms_status ms_conv2d_winograd(float *y, const float *x, const float *wp, const float *b,
                             const ms_conv2d_params *p, float *scratch, size_t scratch_floats) {
  return ms__conv2d_winograd_isa(ms_kernel_isa_detect(), y, x, wp, b, p, scratch,
                                 scratch_floats);
}
