/* conv2d (NCHW, groups 1, dilation 1, zero padding, optional bias).
 *
 * ms_conv2d_ref: direct loops, double accumulator per output, order
 * (c, ky, kx) increasing, bias added last.
 *
 * ms_conv2d: implicit GEMM. Conceptually Y (C_out x N*Ho*Wo) = W (C_out x K)
 * * COL (K x N*Ho*Wo) + bias with K = C*kh*kw, k = (c*kh + ky)*kw + kx and
 * column j = (n*Ho + oy)*Wo + ox: the whole batch is one GEMM, its columns
 * running over images. COL is never built: each NR-wide column strip of it
 * is packed straight from x into the micro-kernel's panel layout, one
 * KC-block of k at a time (a contiguous copy per output row for stride 1),
 * and the C_out x NR strip of Y it feeds stays in cache across the k blocks.
 * (On AVX-512 CPUs, stride_w 1 or 2: masked 16-float loads per k row.)
 * The weights are packed once per call into MR-tall panels (shared by all
 * threads), or once for many calls by ms_conv2d_pack_weights (then
 * ms_conv2d_prepacked skips that step; the panels depend on the ISA,
 * C_out, K and Ho*Wo only, so they fit every batch size). The micro-kernels are ms_sgemm's (AVX-512 14x32, AVX2 6x16,
 * generic 4x8).
 *
 * Summation order: every output is bias + sum over k in blocks of exactly
 * MS_SGEMM_KC, sequential FMA inside a block, blocks in increasing k; the
 * first block stores fma(1, acc, bias) (or acc without bias), later blocks
 * C + acc. That is ms_sgemm's order for the same K, so the result is the
 * same bytes as ms_sgemm over the explicit im2col matrix with a bias-filled
 * C and beta = 1 (tested), for any N, thread count or tiling. Strips that
 * run past the end of an image, or tiles with fewer than MR rows, go
 * through a copy of the tile and the same micro-kernel, so they round like
 * interior tiles.
 *
 * Unpacked stride-1 path (AVX-512, stride 1, kh*kw > 1, 8 x 48 tiles):
 * the input is copied once, zero-padded, and the micro-kernel reads each B
 * row in place at a per-k offset (conv_rect_ind); the output is computed on
 * the padded grid and the columns past Wo dropped. The per-element FMA
 * sequence is the packed kernel's, so the bytes are the same; without
 * scratch for the copy the packed path runs.
 *
 * Threads (core/pool.h): the MR-row tiles x NR-column strips of Y are cut
 * into rectangles, about MS__TASKS_PER_THREAD per thread (whole strips
 * first, so that a packed strip serves every row tile), which the threads
 * take in order as they become free; packing the weights (when not
 * prepacked) and the padded input copy run before that as separate tasks.
 * The number of threads is a function of the shape and
 * omp_get_max_threads() only (about one per 4 MFLOP, so tiny convolutions
 * stay on one thread); neither it nor the cut changes the bytes.
 *
 * Reference: PyTorch torch.nn.functional.conv2d; Chellapilla et al., "High
 * performance convolutional neural networks for document processing" (2006)
 * for im2col; Goto & van de Geijn (2008) for the packed panels; Georganas
 * et al., "Anatomy of high-performance deep learning convolutions on SIMD
 * architectures", SC 2018, for implicit GEMM / direct convolution. */
#include <string.h>

#include "core/pool.h"
#include "kern_internal.h"

#define KC MS_SGEMM_KC
/* Work per thread below which another thread is not worth a fork. */
#define CONV_FLOPS_PER_THREAD 4.0e6

ms_status ms_conv2d_out_hw(const ms_conv2d_params *p, size_t *Ho, size_t *Wo) {
  if (!p || !p->N || !p->C || !p->H || !p->W || !p->C_out || !p->kh || !p->kw ||
      !p->stride_h || !p->stride_w)
    return MS_ERR_INVALID;
  if (p->pad_h > SIZE_MAX / 4 || p->pad_w > SIZE_MAX / 4 || p->H > SIZE_MAX / 4 ||
      p->W > SIZE_MAX / 4)
    return MS_ERR_INVALID;
  size_t hp = p->H + 2 * p->pad_h, wp = p->W + 2 * p->pad_w;
  if (p->kh > hp || p->kw > wp) return MS_ERR_INVALID;
  size_t ho = (hp - p->kh) / p->stride_h + 1, wo = (wp - p->kw) / p->stride_w + 1;
  /* Every tensor size must be representable. */
  size_t t;
  if (!ms__mul_ok(p->N, p->C, &t) || !ms__mul_ok(t, p->H, &t) || !ms__mul_ok(t, p->W, &t) ||
      !ms__mul_ok(p->N, p->C_out, &t) || !ms__mul_ok(t, ho, &t) || !ms__mul_ok(t, wo, &t) ||
      !ms__mul_ok(p->C_out, p->C, &t) || !ms__mul_ok(t, p->kh, &t) ||
      !ms__mul_ok(t, p->kw, &t) || !ms__mul_ok(p->C * p->kh, p->kw, &t) ||
      !ms__mul_ok(t, wo, &t) || t > SIZE_MAX / sizeof(float))
    return MS_ERR_INVALID;
  if (Ho) *Ho = ho;
  if (Wo) *Wo = wo;
  return MS_OK;
}

ms_status ms_conv2d_ref(float *y, const float *x, const float *w, const float *b,
                        const ms_conv2d_params *p) {
  size_t Ho, Wo;
  ms_status s = ms_conv2d_out_hw(p, &Ho, &Wo);
  if (s != MS_OK) return s;
  if (!y || !x || !w) return MS_ERR_INVALID;
  const size_t C = p->C, H = p->H, W = p->W, kh = p->kh, kw = p->kw;
  for (size_t n = 0; n < p->N; n++) {
    for (size_t co = 0; co < p->C_out; co++) {
      for (size_t oy = 0; oy < Ho; oy++) {
        for (size_t ox = 0; ox < Wo; ox++) {
          double acc = 0.0;
          for (size_t c = 0; c < C; c++) {
            for (size_t ky = 0; ky < kh; ky++) {
              /* iy = oy*stride + ky - pad, skipped when outside [0, H). */
              size_t iy = oy * p->stride_h + ky;
              if (iy < p->pad_h || iy - p->pad_h >= H) continue;
              iy -= p->pad_h;
              for (size_t kx = 0; kx < kw; kx++) {
                size_t ix = ox * p->stride_w + kx;
                if (ix < p->pad_w || ix - p->pad_w >= W) continue;
                ix -= p->pad_w;
                acc += (double)x[((n * C + c) * H + iy) * W + ix] *
                       (double)w[((co * C + c) * kh + ky) * kw + kx];
              }
            }
          }
          if (b) acc += (double)b[co];
          y[((n * p->C_out + co) * Ho + oy) * Wo + ox] = (float)acc;
        }
      }
    }
  }
  return MS_OK;
}

static inline size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }
static inline size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }

static float *align64(float *p) {
  uintptr_t u = (uintptr_t)p;
  return (float *)((u + 63) & ~(uintptr_t)63);
}

/* Packed weights: room for the largest MR-rounded C_out of any ISA path, so
 * one scratch size fits whichever path runs. SIZE_MAX on overflow. */
static size_t packed_w_floats(size_t Co, size_t K) {
  static const size_t mrs[] = {4, 6, 8, 14};
  size_t mp = 0, t;
  for (size_t i = 0; i < 4; i++)
    if (round_up(Co, mrs[i]) > mp) mp = round_up(Co, mrs[i]);
  if (!ms__mul_ok(mp, K, &t) || t > SIZE_MAX - 32) return SIZE_MAX;
  return t + 32;
}

/* One thread's packed column strip (KC x NR) plus alignment slack. */
static size_t per_thread_floats(size_t K) { return min_sz(K, KC) * MS__MAX_NR + 32; }

/* Threads worth using for this shape (a pure function of the params and
 * max_threads; the bytes never depend on it). */
static size_t useful_threads(const ms_conv2d_params *p, size_t Ho, size_t Wo, size_t max_threads) {
  const double flops = 2.0 * (double)p->C_out * (double)(p->C * p->kh * p->kw) *
                       (double)p->N * (double)(Ho * Wo);
  double u = 1.0 + flops / CONV_FLOPS_PER_THREAD;
  size_t nt = u < (double)max_threads ? (size_t)u : max_threads;
  return nt < 1 ? 1 : nt;
}

static size_t ind_floats(const ms_conv2d_params *p);

size_t ms_conv2d_scratch_floats(const ms_conv2d_params *p) {
  size_t Ho, Wo;
  if (ms_conv2d_out_hw(p, &Ho, &Wo) != MS_OK) return 0;
  const size_t K = p->C * p->kh * p->kw;
  const size_t a = packed_w_floats(p->C_out, K);
  if (a == SIZE_MAX) return 0;
  const size_t mt = ms__parallel_threads();
  const size_t need = a + per_thread_floats(K) * useful_threads(p, Ho, Wo, mt < 1 ? 1 : mt);
  const size_t ind = ind_floats(p);
  return ind != SIZE_MAX && ind <= SIZE_MAX - a && a + ind > need ? a + ind : need;
}

typedef struct {
  const ms_conv2d_params *p;
  const float *x;
  size_t Ho, Wo, P, K, total; /* total = N*Ho*Wo GEMM columns */
} conv_geom;

/* A run of strip columns [off, off+len) that are the pixels (n, oy, ox0 ..
 * ox0+len-1) of one output row. */
typedef struct {
  size_t n, oy, ox0, len, off;
} conv_seg;

/* Splits the strip starting at column j0 into output-row runs; returns the
 * count. Columns past g->total are not covered (packed as zeros). */
static size_t strip_segments(const conv_geom *g, size_t j0, size_t nr, conv_seg *seg) {
  size_t cnt = 0, off = 0, j = j0;
  while (off < nr && j < g->total) {
    const size_t n = j / g->P, pix = j % g->P, oy = pix / g->Wo, ox = pix % g->Wo;
    const size_t len = min_sz(g->Wo - ox, nr - off);
    seg[cnt++] = (conv_seg){n, oy, ox, len, off};
    off += len;
    j += len;
  }
  return cnt;
}

/* COL[pc .. pc+kc, strip columns] -> dst[k*nr + t] (zero for padding taps
 * and for columns beyond the last pixel). */
static void pack_strip(float *restrict dst, const conv_geom *g, const conv_seg *seg, size_t nseg,
                       size_t valid, size_t nr, size_t pc, size_t kc) {
  const ms_conv2d_params *p = g->p;
  const size_t C = p->C, H = p->H, W = p->W, kh = p->kh, kw = p->kw;
  const ptrdiff_t ph = (ptrdiff_t)p->pad_h, pw = (ptrdiff_t)p->pad_w;
  const size_t sh = p->stride_h, sw = p->stride_w;
  size_t c = pc / (kh * kw), ky = (pc / kw) % kh, kx = pc % kw;
  for (size_t k = 0; k < kc; k++) {
    float *d = dst + k * nr;
    for (size_t si = 0; si < nseg; si++) {
      const conv_seg *s = &seg[si];
      float *ds = d + s->off;
      const ptrdiff_t iy = (ptrdiff_t)(s->oy * sh + ky) - ph;
      if (iy < 0 || iy >= (ptrdiff_t)H) {
        for (size_t t = 0; t < s->len; t++) ds[t] = 0.0f;
        continue;
      }
      const float *row = g->x + ((s->n * C + c) * H + (size_t)iy) * W;
      const ptrdiff_t ix0 = (ptrdiff_t)(s->ox0 * sw + kx) - pw;
      if (sw == 1) {
        /* taps t with 0 <= ix0 + t < W are inside the image */
        ptrdiff_t lo = -ix0, hi = (ptrdiff_t)W - ix0, len = (ptrdiff_t)s->len;
        lo = lo < 0 ? 0 : (lo > len ? len : lo);
        hi = hi < lo ? lo : (hi > len ? len : hi);
        ptrdiff_t t = 0;
        for (; t < lo; t++) ds[t] = 0.0f;
        const float *src = row + ix0;
        for (; t < hi; t++) ds[t] = src[t];
        for (; t < len; t++) ds[t] = 0.0f;
      } else {
        for (size_t t = 0; t < s->len; t++) {
          const ptrdiff_t ix = ix0 + (ptrdiff_t)(t * sw);
          ds[t] = (ix >= 0 && ix < (ptrdiff_t)W) ? row[ix] : 0.0f;
        }
      }
    }
    for (size_t t = valid; t < nr; t++) d[t] = 0.0f;
    if (++kx == kw) {
      kx = 0;
      if (++ky == kh) {
        ky = 0;
        c++;
      }
    }
  }
}

/* Widest kernel the AVX-512 packer handles (its mask table is per kx). */
#define PACK_MAX_KW 8

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "ukr_avx512.h"

/* Lanes 0 .. n-1 of a 16-lane mask (n clamped to [0, 16]). */
static inline __mmask16 lanes_lt(ptrdiff_t n) {
  return n <= 0 ? (__mmask16)0 : n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
}

#define PACK_CHUNKS (MS__MAX_NR / 16)

/* pack_strip for stride_w 1 or 2 and kw <= PACK_MAX_KW with AVX-512 masked
 * loads: per segment, kx and 16-column chunk the lanes inside the image are
 * a fixed mask, so a k row is one masked load (stride 2: two, and a
 * permute picking the even elements) and one masked store per 16 columns.
 * Lanes outside the mask are never read (masked loads do not touch them).
 * Same values as pack_strip. */
__attribute__((target("avx512f"))) static void pack_strip_avx512(
    float *restrict dst, const conv_geom *g, const conv_seg *seg, size_t nseg, size_t valid,
    size_t nr, size_t pc, size_t kc) {
  const ms_conv2d_params *p = g->p;
  const size_t C = p->C, H = p->H, W = p->W, kh = p->kh, kw = p->kw;
  const size_t sh = p->stride_h, sw = p->stride_w;
  const ptrdiff_t ph = (ptrdiff_t)p->pad_h, pw = (ptrdiff_t)p->pad_w;
  /* lm: input lanes inside the image (stride 2: low 16 bits for the first
   * load, high 16 for the second); sm: output lanes of the segment. */
  uint32_t lm[MS__MAX_NR][PACK_MAX_KW][PACK_CHUNKS];
  __mmask16 sm[MS__MAX_NR][PACK_CHUNKS];
  size_t nch[MS__MAX_NR];
  for (size_t si = 0; si < nseg; si++) {
    const ptrdiff_t len = (ptrdiff_t)seg[si].len;
    nch[si] = (seg[si].len + 15) / 16;
    for (size_t ch = 0; ch < nch[si]; ch++) {
      const ptrdiff_t t0 = (ptrdiff_t)ch * 16;
      sm[si][ch] = lanes_lt(len - t0);
      for (size_t kx = 0; kx < kw; kx++) {
        /* first input element of the chunk */
        const ptrdiff_t b = (ptrdiff_t)(seg[si].ox0 * sw + kx) - pw + (ptrdiff_t)sw * t0;
        const uint32_t lo = (uint32_t)(lanes_lt((ptrdiff_t)W - b) & (__mmask16)~lanes_lt(-b));
        if (sw == 1) {
          lm[si][kx][ch] = lo & sm[si][ch];
        } else {
          const uint32_t hi =
              (uint32_t)(lanes_lt((ptrdiff_t)W - b - 16) & (__mmask16)~lanes_lt(-b - 16));
          lm[si][kx][ch] = lo | hi << 16;
        }
      }
    }
  }
  const __m512 zero = _mm512_setzero_ps();
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  size_t c = pc / (kh * kw), ky = (pc / kw) % kh, kx = pc % kw;
  for (size_t k = 0; k < kc; k++) {
    float *d = dst + k * nr;
    for (size_t si = 0; si < nseg; si++) {
      const conv_seg *s = &seg[si];
      float *ds = d + s->off;
      const ptrdiff_t iy = (ptrdiff_t)(s->oy * sh + ky) - ph;
      if (iy < 0 || iy >= (ptrdiff_t)H) {
        for (size_t ch = 0; ch < nch[si]; ch++) _mm512_mask_storeu_ps(ds + 16 * ch, sm[si][ch], zero);
        continue;
      }
      /* Element (iy, ox0*sw + kx - pw + sw*t) of channel c, addressed with
       * integer arithmetic: masked-off lanes may lie outside the plane, and
       * no C pointer is formed there. */
      const uintptr_t plane = (uintptr_t)(g->x + (s->n * C + c) * H * W);
      const ptrdiff_t off0 = iy * (ptrdiff_t)W + (ptrdiff_t)(s->ox0 * sw + kx) - pw;
      for (size_t ch = 0; ch < nch[si]; ch++) {
        const uint32_t m = lm[si][kx][ch];
        const ptrdiff_t o = off0 + (ptrdiff_t)(sw * 16 * ch);
        const void *src = (const void *)(plane + (uintptr_t)(o * (ptrdiff_t)sizeof(float)));
        /* the same row of channel c+1 is read kh*kw rows later */
        if (kx == 0) {
          _mm_prefetch((const char *)src + H * W * sizeof(float), _MM_HINT_T0);
          /* and what the next strip reads of this row */
          _mm_prefetch((const char *)src + nr * sw * sizeof(float), _MM_HINT_T1);
        }
        __m512 v = zero;
        if (sw == 1) {
          if (m == 0xFFFF)
            v = _mm512_loadu_ps(src);
          else if (m)
            v = _mm512_maskz_loadu_ps((__mmask16)m, src);
        } else if (m) {
          const void *src2 = (const void *)(plane + (uintptr_t)((o + 16) * (ptrdiff_t)sizeof(float)));
          const __m512 a = _mm512_maskz_loadu_ps((__mmask16)(m & 0xFFFF), src);
          const __m512 bv = _mm512_maskz_loadu_ps((__mmask16)(m >> 16), src2);
          v = _mm512_permutex2var_ps(a, even, bv);
        }
        _mm512_mask_storeu_ps(ds + 16 * ch, sm[si][ch], v);
      }
    }
    for (size_t t = valid; t < nr; t++) d[t] = 0.0f;
    if (++kx == kw) {
      kx = 0;
      if (++ky == kh) {
        ky = 0;
        c++;
      }
    }
  }
}
#endif

/* Weights w[Co, K] -> MR-tall panels: block pc at Ap + pc*Mp, strip ir at
 * ir*mr*kc inside it, element [k*mr + r] (rows >= Co are zero). */
static void pack_weights_strip(float *restrict Ap, const float *restrict w, size_t Co, size_t K,
                               size_t mr, size_t Mp, size_t ir) {
  for (size_t pc = 0; pc < K; pc += KC) {
    const size_t kc = min_sz(KC, K - pc);
    float *dst = Ap + pc * Mp + ir * mr * kc;
    for (size_t r = 0; r < mr; r++) {
      const size_t co = ir * mr + r;
      if (co < Co) {
        const float *src = w + co * K + pc;
        for (size_t k = 0; k < kc; k++) dst[k * mr + r] = src[k];
      } else {
        for (size_t k = 0; k < kc; k++) dst[k * mr + r] = 0.0f;
      }
    }
  }
}

/* The task grid of an nt-thread run: tm x tn rectangles of R row tiles x
 * S strips, about MS__TASKS_PER_THREAD per thread, cut along strips first
 * (then a strip is packed once for all row tiles). */
static void task_grid(size_t nt, size_t R, size_t S, size_t *tm, size_t *tn) {
  const size_t want = nt * MS__TASKS_PER_THREAD;
  if (S >= want) {
    *tm = 1;
    *tn = want;
  } else {
    *tn = S;
    *tm = min_sz(R, (want + S - 1) / S);
  }
}

/* Rows [r0, r1) of tiles x strips [s0, s1): the whole computation of one
 * grid rectangle. ws: this thread's strip buffer. */
static void conv_rect(const conv_geom *g, float *y, const float *Ap, size_t Mp, const float *b,
                      size_t mr, size_t nr, ms__ukr_fn ukr, int simd_pack, size_t r0, size_t r1,
                      size_t s0, size_t s1, float *ws) {
  const size_t Co = g->p->C_out, P = g->P, K = g->K;
  const float beta = b ? 1.0f : 0.0f;
  (void)simd_pack; /* only used on x86 */
  float *Bs = align64(ws);
  conv_seg seg[MS__MAX_NR];
  size_t col[MS__MAX_NR]; /* offset of column t in y, channel 0 */
  for (size_t s = s0; s < s1; s++) {
    const size_t j0 = s * nr, valid = min_sz(nr, g->total - j0);
    const size_t nseg = strip_segments(g, j0, nr, seg);
    for (size_t t = 0; t < valid; t++) col[t] = (j0 + t) / P * Co * P + (j0 + t) % P;
    /* all nr columns contiguous in y (same image)? */
    const int direct = valid == nr && j0 / P == (j0 + nr - 1) / P;
    for (size_t pc = 0; pc < K; pc += KC) {
      const size_t kc = min_sz(KC, K - pc);
      const int first = pc == 0;
#if defined(__x86_64__) || defined(__i386__)
      if (simd_pack)
        pack_strip_avx512(Bs, g, seg, nseg, valid, nr, pc, kc);
      else
#endif
        pack_strip(Bs, g, seg, nseg, valid, nr, pc, kc);
      for (size_t ir = r0; ir < r1; ir++) {
        const size_t rows = min_sz(mr, Co - ir * mr);
        const float *ap = Ap + pc * Mp + ir * mr * kc;
        if (direct && rows == mr) {
          float *ct = y + col[0] + ir * mr * P;
          if (first && b)
            for (size_t r = 0; r < mr; r++)
              for (size_t t = 0; t < nr; t++) ct[r * P + t] = b[ir * mr + r];
          ukr(kc, ap, Bs, ct, P, 1.0f, beta, first);
        } else {
          float tile[MS__MAX_MR * MS__MAX_NR] __attribute__((aligned(64)));
          memset(tile, 0, sizeof tile);
          for (size_t r = 0; r < rows; r++) {
            const size_t co = ir * mr + r;
            if (first) {
              if (b)
                for (size_t t = 0; t < valid; t++) tile[r * nr + t] = b[co];
            } else {
              for (size_t t = 0; t < valid; t++) tile[r * nr + t] = y[col[t] + co * P];
            }
          }
          ukr(kc, ap, Bs, tile, nr, 1.0f, beta, first);
          for (size_t r = 0; r < rows; r++)
            for (size_t t = 0; t < valid; t++) y[col[t] + (ir * mr + r) * P] = tile[r * nr + t];
        }
      }
    }
  }
}

#if defined(__x86_64__) || defined(__i386__)
#define IND_AVAILABLE 1
/* ukr_avx512_8x48 of sgemm_blocked.c with B read in place: row k of the
 * B panel is the 48 floats at b + koff[k] (a zero-padded input copy, see
 * conv_rect_ind). The FMA sequence per element is the packed kernel's, so
 * the bytes are the same. */
__attribute__((target("avx512f,fma"))) static void ukr_avx512_8x48_ind(
    size_t kc, const float *restrict a, const float *restrict b, const uint32_t *restrict koff,
    float *restrict c, size_t ldc, float beta, int first) {
  MS__Z_ZERO(MS__Z_ROWS8, MS__Z_COLS3)
  for (size_t k = 0; k < kc; k++) {
    const float *bk = b + koff[k];
    MS__Z_STEP(MS__Z_ROWS8, MS__Z_COLS3, bk)
    a += 8;
  }
  /* alpha is 1: C = beta*C + 1*acc on the first block, C + 1*acc after. */
  const __m512 va = _mm512_set1_ps(1.0f), vb = _mm512_set1_ps(beta);
  MS__Z_STORE(MS__Z_ROWS8, MS__Z_COLS3)
}
#endif

/* Stride-1 convolutions with a kernel wider than one tap, on the AVX-512
 * 8 x 48 path: instead of packing every strip, the input is copied once,
 * zero-padded, to xp [N][C][Hp][Wp] (Hp = H + 2 pad_h, Wp = W + 2 pad_w)
 * and the output is computed on the padded grid: column j = oy*Wp + ox of
 * image n reads tap k = (c, ky, kx) at xp + n*C*Hp*Wp + koff[k] + j with
 * koff[k] = (c*Hp + ky)*Wp + kx, so each B row is 48 contiguous floats.
 * Columns with ox >= Wo (and past Ho*Wp) are computed and dropped. The
 * tile goes through a copy (bias-filled first), so every kept element sees
 * exactly the packed path's arithmetic. Floats of scratch it needs (SIZE_MAX
 * when it does not apply or overflows): xp, 64 floats of slack read by the
 * last strip, and koff. */
static int ind_applies(const ms_conv2d_params *p) {
  return p->stride_h == 1 && p->stride_w == 1 && p->kh * p->kw > 1;
}

static size_t ind_floats(const ms_conv2d_params *p) {
  if (!ind_applies(p)) return SIZE_MAX;
  const size_t Hp = p->H + 2 * p->pad_h, Wp = p->W + 2 * p->pad_w;
  size_t t;
  if (!ms__mul_ok(Hp, Wp, &t) || !ms__mul_ok(t, p->C, &t) || t > UINT32_MAX / 2 ||
      !ms__mul_ok(t, p->N, &t) || t > SIZE_MAX / 2)
    return SIZE_MAX;
  return t + MS__MAX_NR + p->kw + 16 + p->C * p->kh * p->kw + 16;
}

#ifdef IND_AVAILABLE
/* Copies planes [q0, q1) of x (plane = (n, c)) into the padded buffer. */
static void ind_pad(float *xp, const float *x, const ms_conv2d_params *p, size_t q0, size_t q1) {
  const size_t H = p->H, W = p->W, Hp = H + 2 * p->pad_h, Wp = W + 2 * p->pad_w;
  for (size_t q = q0; q < q1; q++) {
    float *dst = xp + q * Hp * Wp;
    const float *src = x + q * H * W;
    memset(dst, 0, p->pad_h * Wp * sizeof(float));
    for (size_t iy = 0; iy < H; iy++) {
      float *d = dst + (p->pad_h + iy) * Wp;
      memset(d, 0, p->pad_w * sizeof(float));
      memcpy(d + p->pad_w, src + iy * W, W * sizeof(float));
      memset(d + p->pad_w + W, 0, p->pad_w * sizeof(float));
    }
    memset(dst + (p->pad_h + H) * Wp, 0, p->pad_h * Wp * sizeof(float));
  }
}

/* Row tiles [r0, r1) x strips [s0, s1) (strip s: image s / SI, padded-grid
 * columns (s % SI)*48 ..) of the indirect path. A strip whose 48 columns
 * are one run of kept outputs is computed in place in y (bias stored
 * first, as the packed path does); any other goes through a tile whose
 * kept runs are copied out. */
static void conv_rect_ind(const conv_geom *g, float *y, const float *Ap, size_t Mp,
                          const float *b, const float *xp, const uint32_t *koff, size_t r0,
                          size_t r1, size_t s0, size_t s1) {
  const ms_conv2d_params *p = g->p;
  const size_t Co = p->C_out, P = g->P, K = g->K, Wo = g->Wo, Ho = g->Ho;
  const size_t Hp = p->H + 2 * p->pad_h, Wp = p->W + 2 * p->pad_w, plane = p->C * Hp * Wp;
  const size_t SI = (Ho * Wp + 47) / 48;
  const float beta = b ? 1.0f : 0.0f;
  float tile[8 * 48] __attribute__((aligned(64)));
  /* runs of kept columns: tile offset t, length, offset in y (channel 0) */
  size_t run_t[48], run_n[48], run_y[48];
  for (size_t s = s0; s < s1; s++) {
    const size_t n = s / SI, j0 = (s % SI) * 48;
    const float *base = xp + n * plane + j0;
    size_t nrun = 0;
    for (size_t t = 0; t < 48;) {
      const size_t j = j0 + t, oy = j / Wp, ox = j % Wp;
      if (oy >= Ho) break;
      const size_t len = min_sz(48 - t, Wp - ox);
      if (ox < Wo) {
        run_t[nrun] = t;
        run_n[nrun] = min_sz(len, Wo - ox);
        run_y[nrun++] = n * Co * P + oy * Wo + ox;
      }
      t += len;
    }
    if (!nrun) continue;
    const int direct = nrun == 1 && run_n[0] == 48;
    for (size_t ir = r0; ir < r1; ir++) {
      const size_t rows = min_sz(8, Co - ir * 8);
      float *ct = direct && rows == 8 ? y + run_y[0] + ir * 8 * P : tile;
      const size_t ldc = ct == tile ? 48 : P;
      if (b)
        for (size_t r = 0; r < 8; r++) {
          const float bv = r < rows ? b[ir * 8 + r] : 0.0f;
          for (size_t t = 0; t < 48; t++) ct[r * ldc + t] = bv;
        }
      for (size_t pc = 0; pc < K; pc += KC) {
        const size_t kc = min_sz(KC, K - pc);
        ukr_avx512_8x48_ind(kc, Ap + pc * Mp + ir * 8 * kc, base, koff + pc, ct, ldc, beta,
                            pc == 0);
      }
      if (ct != tile) continue;
      for (size_t r = 0; r < rows; r++)
        for (size_t q = 0; q < nrun; q++)
          memcpy(y + run_y[q] + (ir * 8 + r) * P, tile + r * 48 + run_t[q],
                 run_n[q] * sizeof(float));
    }
  }
}
#endif

/* The micro-kernel tile for this ISA and shape. AVX-512: 8 x 48 tiles
 * unless 14-row tiles pad C_out less over one image's pixels (the choice
 * only affects speed: both kernels give the same bytes). A function of
 * (isa, C_out, Ho*Wo, stride and kernel size) only, so weights packed once
 * fit every batch size. */
static int conv_tile(ms_kernel_isa isa, const ms_conv2d_params *p, size_t HoWo, size_t *mr,
                     size_t *nr, ms__ukr_fn *ukr) {
  const size_t Co = p->C_out;
  /* The unpacked stride-1 path (conv_rect_ind) runs on 8 x 48 tiles. */
  const int wide = (isa == MS_KERNEL_ISA_AVX512 && ind_applies(p)) ||
                   round_up(Co, 8) * round_up(HoWo, 48) <= round_up(Co, 14) * round_up(HoWo, 32);
  return ms__sgemm_ukr(isa, wide, mr, nr, ukr);
}

size_t ms_conv2d_packed_floats(const ms_conv2d_params *p) {
  if (ms_conv2d_out_hw(p, NULL, NULL) != MS_OK) return 0;
  const size_t a = packed_w_floats(p->C_out, p->C * p->kh * p->kw);
  return a == SIZE_MAX ? 0 : a;
}

ms_status ms__conv2d_pack_weights_isa(ms_kernel_isa isa, float *wp, size_t wp_floats,
                                      const float *w, const ms_conv2d_params *p) {
  size_t Ho, Wo, mr, nr;
  ms__ukr_fn ukr;
  ms_status s = ms_conv2d_out_hw(p, &Ho, &Wo);
  if (s != MS_OK) return s;
  if (!wp || !w) return MS_ERR_INVALID;
  if (!conv_tile(isa, p, Ho * Wo, &mr, &nr, &ukr)) return MS_ERR_UNSUPPORTED;
  const size_t K = p->C * p->kh * p->kw, Co = p->C_out, Mp = round_up(Co, mr);
  if (wp_floats < packed_w_floats(Co, K)) return MS_ERR_INVALID;
  for (size_t ir = 0; ir < Mp / mr; ir++) pack_weights_strip(wp, w, Co, K, mr, Mp, ir);
  return MS_OK;
}

ms_status ms_conv2d_pack_weights(float *wp, size_t wp_floats, const float *w,
                                 const ms_conv2d_params *p) {
  return ms__conv2d_pack_weights_isa(ms_kernel_isa_detect(), wp, wp_floats, w, p);
}

/* One convolution's tasks (core/pool.h). */
typedef struct {
  const conv_geom *g;
  float *y, *Ap;
  size_t Mp;
  const float *b, *w;
  size_t mr, nr;
  ms__ukr_fn ukr;
  int simd_pack;
  size_t R, S, tm, tn; /* row tiles, strips, the rectangle grid */
  float *ws;           /* strip buffers, `per` floats per thread */
  size_t per;
  size_t pack, pads;   /* preparation: weight strips, then padded-copy pieces */
  float *xp;
  const uint32_t *koff;
  size_t planes;
} conv_job;

/* Preparation task t: weight row strip t (t < pack), else a piece of the
 * zero-padded input copy. */
static void conv_prep_task(void *ctx, size_t t, size_t worker) {
  const conv_job *j = ctx;
  (void)worker;
  if (t < j->pack) {
    const size_t Co = j->g->p->C_out;
    pack_weights_strip(j->Ap, j->w, Co, j->g->K, j->mr, j->Mp, t);
    return;
  }
#ifdef IND_AVAILABLE
  t -= j->pack;
  ind_pad(j->xp, j->g->x, j->g->p, t * j->planes / j->pads, (t + 1) * j->planes / j->pads);
#endif
}

static void conv_rect_task(void *ctx, size_t t, size_t worker) {
  const conv_job *j = ctx;
  const size_t bi = t / j->tn, bj = t % j->tn;
  conv_rect(j->g, j->y, j->Ap, j->Mp, j->b, j->mr, j->nr, j->ukr, j->simd_pack,
            bi * j->R / j->tm, (bi + 1) * j->R / j->tm, bj * j->S / j->tn,
            (bj + 1) * j->S / j->tn, j->ws + worker * j->per);
}

#ifdef IND_AVAILABLE
static void conv_ind_task(void *ctx, size_t t, size_t worker) {
  const conv_job *j = ctx;
  (void)worker;
  const size_t bi = t / j->tn, bj = t % j->tn;
  conv_rect_ind(j->g, j->y, j->Ap, j->Mp, j->b, j->xp, j->koff, bi * j->R / j->tm,
                (bi + 1) * j->R / j->tm, bj * j->S / j->tn, (bj + 1) * j->S / j->tn);
}
#endif

/* Shared body of ms_conv2d (wp NULL: the weights are packed into the head
 * of the scratch) and ms_conv2d_prepacked (wp: packed by
 * ms_conv2d_pack_weights for the same ISA and params). */
static ms_status conv2d_run(ms_kernel_isa isa, float *y, const float *x, const float *w,
                            const float *wp, const float *b, const ms_conv2d_params *p,
                            float *scratch, size_t scratch_floats) {
  size_t Ho, Wo;
  ms_status s = ms_conv2d_out_hw(p, &Ho, &Wo);
  if (s != MS_OK) return s;
  if (!y || !x || (!w && !wp)) return MS_ERR_INVALID;
  size_t mr, nr;
  ms__ukr_fn ukr;
  const size_t K = p->C * p->kh * p->kw, Co = p->C_out;
  if (!conv_tile(isa, p, Ho * Wo, &mr, &nr, &ukr)) return MS_ERR_UNSUPPORTED;
  const size_t a_floats = wp ? 0 : packed_w_floats(Co, K), per = per_thread_floats(K);
  if (a_floats == SIZE_MAX || !scratch || scratch_floats < a_floats ||
      scratch_floats - a_floats < per)
    return MS_ERR_INVALID;
  const conv_geom g = {p, x, Ho, Wo, Ho * Wo, K, p->N * Ho * Wo};
  const size_t Mp = round_up(Co, mr), R = Mp / mr, S = (g.total + nr - 1) / nr;
  float *Ap = wp ? (float *)wp : align64(scratch);
  float *ws = scratch + a_floats;
  /* The masked-load packer needs AVX-512 (any path on such a CPU may use
   * it: packing is a copy, so it never changes the bytes). */
  const int simd_pack = ms__isa_supported(MS_KERNEL_ISA_AVX512) && p->stride_w <= 2 &&
                        p->kw <= PACK_MAX_KW;
  const size_t mt = ms__parallel_threads();
#ifdef IND_AVAILABLE
  const size_t indf = ind_floats(p);
  if (isa == MS_KERNEL_ISA_AVX512 && mr == 8 && indf != SIZE_MAX &&
      scratch_floats - a_floats >= indf) {
    const size_t Hp = p->H + 2 * p->pad_h, Wp = p->W + 2 * p->pad_w;
    const size_t planes = p->N * p->C, xpn = planes * Hp * Wp;
    float *xp = align64(ws);
    uint32_t *koff = (uint32_t *)(xp + xpn + MS__MAX_NR + p->kw);
    for (size_t t = 0; t < MS__MAX_NR + p->kw; t++) xp[xpn + t] = 0.0f;
    for (size_t k = 0; k < K; k++) {
      const size_t c = k / (p->kh * p->kw), ky = (k / p->kw) % p->kh, kx = k % p->kw;
      koff[k] = (uint32_t)((c * Hp + ky) * Wp + kx);
    }
    const size_t SI = (Ho * Wp + 47) / 48, S2 = p->N * SI;
    size_t nt2 = useful_threads(p, Ho, Wo, mt < 1 ? 1 : mt);
    if (nt2 > R * S2) nt2 = R * S2;
    if (nt2 <= 1) {
      if (!wp)
        for (size_t ir = 0; ir < R; ir++) pack_weights_strip(Ap, w, Co, K, mr, Mp, ir);
      ind_pad(xp, x, p, 0, planes);
      conv_rect_ind(&g, y, Ap, Mp, b, xp, koff, 0, R, 0, S2);
      return MS_OK;
    }
    /* the weights' row strips (unless prepacked) and pieces of the padded
     * copy, then the rectangles */
    conv_job j = {.g = &g, .y = y, .Ap = Ap, .Mp = Mp, .b = b, .mr = mr, .R = R, .S = S2,
                  .w = w, .xp = xp, .koff = koff, .planes = planes};
    j.pack = wp ? 0 : R;
    j.pads = min_sz(planes, nt2 * MS__TASKS_PER_THREAD);
    ms__parallel(j.pack + j.pads, nt2, conv_prep_task, &j);
    task_grid(nt2, R, S2, &j.tm, &j.tn);
    ms__parallel(j.tm * j.tn, nt2, conv_ind_task, &j);
    return MS_OK;
  }
#endif
  size_t nt = useful_threads(p, Ho, Wo, mt < 1 ? 1 : mt);
  if (nt > (scratch_floats - a_floats) / per) nt = (scratch_floats - a_floats) / per;
  if (nt > R * S) nt = R * S;
  if (nt <= 1) {
    if (!wp)
      for (size_t ir = 0; ir < R; ir++) pack_weights_strip(Ap, w, Co, K, mr, Mp, ir);
    conv_rect(&g, y, Ap, Mp, b, mr, nr, ukr, simd_pack, 0, R, 0, S, ws);
    return MS_OK;
  }
  /* Pack the weights (by row strip; skipped when prepacked), then each
   * rectangle on the strip buffer of the thread that takes it. */
  conv_job j = {.g = &g, .y = y, .Ap = Ap, .Mp = Mp, .b = b, .mr = mr, .nr = nr, .ukr = ukr,
                .simd_pack = simd_pack, .R = R, .S = S, .w = w, .ws = ws, .per = per};
  if (!wp) {
    j.pack = R;
    ms__parallel(R, nt, conv_prep_task, &j);
  }
  task_grid(nt, R, S, &j.tm, &j.tn);
  ms__parallel(j.tm * j.tn, nt, conv_rect_task, &j);
  return MS_OK;
}

ms_status ms__conv2d_isa(ms_kernel_isa isa, float *y, const float *x, const float *w,
                         const float *b, const ms_conv2d_params *p, float *scratch,
                         size_t scratch_floats) {
  if (!w) return MS_ERR_INVALID;
  return conv2d_run(isa, y, x, w, NULL, b, p, scratch, scratch_floats);
}

ms_status ms__conv2d_prepacked_isa(ms_kernel_isa isa, float *y, const float *x, const float *wp,
                                   const float *b, const ms_conv2d_params *p, float *scratch,
                                   size_t scratch_floats) {
  if (!wp) return MS_ERR_INVALID;
  return conv2d_run(isa, y, x, NULL, wp, b, p, scratch, scratch_floats);
}

size_t ms_conv2d_prepacked_scratch_floats(const ms_conv2d_params *p) {
  size_t Ho, Wo;
  if (ms_conv2d_out_hw(p, &Ho, &Wo) != MS_OK) return 0;
  const size_t mt = ms__parallel_threads();
  const size_t need =
      per_thread_floats(p->C * p->kh * p->kw) * useful_threads(p, Ho, Wo, mt < 1 ? 1 : mt);
  const size_t ind = ind_floats(p);
  return ind != SIZE_MAX && ind > need ? ind : need;
}

ms_status ms_conv2d(float *y, const float *x, const float *w, const float *b,
                    const ms_conv2d_params *p, float *scratch, size_t scratch_floats) {
  return ms__conv2d_isa(ms_kernel_isa_detect(), y, x, w, b, p, scratch, scratch_floats);
}

ms_status ms_conv2d_prepacked(float *y, const float *x, const float *wp, const float *b,
                              const ms_conv2d_params *p, float *scratch, size_t scratch_floats) {
  return ms__conv2d_prepacked_isa(ms_kernel_isa_detect(), y, x, wp, b, p, scratch,
                                  scratch_floats);
}
