/* Scaled dot-product attention core: o = softmax(q k^T / sqrt(d)) v per
 * (batch item, head); no mask, no dropout. q/k/v projections are the
 * caller's (1x1 conv or linear).
 *
 * Layouts (see kernels.h): NCT [N, heads*d, T] or NTC [N, T, heads*d];
 * head h owns channels h*d .. h*d+d-1.
 *
 * _ref: for each query, pass 1 finds the max score, pass 2 the sum of
 * exp(s - max), pass 3 accumulates p*v in double, 64 channels at a time
 * (scores are recomputed, so only a fixed-size stack array is used).
 *
 * fast ("online softmax", FlashAttention's recurrence): work item = (n, h,
 * block of ATT_BQ queries). Keys are visited in blocks of ATT_BK in
 * increasing order; for each block the scores S = Q K^T * scale are formed
 * (k in increasing channel order), then
 *   m' = max(m, rowmax S), c = exp(m - m'), p = exp(S - m'),
 *   l = l*c + sum(p), O = O*c + p V
 * (exp: the vectorised one of vexp.c; sum(p) over 16 lanes and a fixed
 * tree).
 * o = O / l at the end. Each query row's arithmetic depends only on T, d
 * and the data, never on the thread that runs it, so any thread count
 * gives the same bytes. Scratch per thread: Q, O [BQ x d], K^T [d x BK],
 * V [BK x d], S [BQ x BK], m, l [BQ].
 *
 * The block code is compiled for each ISA path (AVX-512, AVX2+FMA,
 * generic) and chosen per call like ms_sgemm's; the paths may differ in
 * the last bits (FMA contraction), a given path never depends on threads.
 *
 * Reference: Vaswani et al. (2017); Dao et al., "FlashAttention" (2022);
 * Milakov & Gimelshein, "Online normalizer calculation for softmax" (2018). */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "kern_internal.h"

#define ATT_BQ 64
#define ATT_BK 64

typedef struct {
  size_t tok, ch; /* element strides along tokens and channels */
  size_t item;    /* stride between batch items */
} att_strides;

static att_strides att_layout(ms_attn_layout layout, size_t Ctot, size_t T) {
  att_strides s;
  if (layout == MS_ATTN_NCT) {
    s.tok = 1;
    s.ch = T;
  } else {
    s.tok = Ctot;
    s.ch = 1;
  }
  s.item = Ctot * T;
  return s;
}

static ms_status att_check(float *o, const float *q, const float *k, const float *v, size_t N,
                           size_t heads, size_t d, size_t Tq, size_t Tk, ms_attn_layout layout) {
  if ((unsigned)layout >= MS_ATTN_LAYOUT_COUNT) return MS_ERR_INVALID;
  if (N == 0 || heads == 0 || Tq == 0) return MS_OK;
  if (d == 0 || Tk == 0) return MS_ERR_INVALID; /* softmax over nothing */
  if (!o || !q || !k || !v) return MS_ERR_INVALID;
  size_t c, t;
  if (!ms__mul_ok(heads, d, &c) || !ms__mul_ok(c, Tq > Tk ? Tq : Tk, &t) ||
      !ms__mul_ok(t, N, &t) || t > SIZE_MAX / sizeof(float))
    return MS_ERR_INVALID;
  return MS_OK;
}

ms_status ms_attention_ref(float *o, const float *q, const float *k, const float *v, size_t N,
                           size_t heads, size_t head_dim, size_t Tq, size_t Tk,
                           ms_attn_layout layout) {
  ms_status st = att_check(o, q, k, v, N, heads, head_dim, Tq, Tk, layout);
  if (st != MS_OK || N == 0 || heads == 0 || Tq == 0) return st;
  const size_t d = head_dim, Ctot = heads * d;
  const att_strides sq = att_layout(layout, Ctot, Tq), sk = att_layout(layout, Ctot, Tk);
  const double scale = (double)(float)(1.0 / sqrt((double)d));
  for (size_t n = 0; n < N; n++) {
    for (size_t h = 0; h < heads; h++) {
      const float *qh = q + n * sq.item + h * d * sq.ch;
      const float *kh = k + n * sk.item + h * d * sk.ch;
      const float *vh = v + n * sk.item + h * d * sk.ch;
      float *oh = o + n * sq.item + h * d * sq.ch;
      for (size_t i = 0; i < Tq; i++) {
#define REF_SCORE(jt, out)                                                      \
  do {                                                                          \
    double acc_ = 0.0;                                                          \
    for (size_t c_ = 0; c_ < d; c_++)                                           \
      acc_ += (double)qh[i * sq.tok + c_ * sq.ch] * (double)kh[(jt) * sk.tok + c_ * sk.ch]; \
    (out) = acc_ * scale;                                                       \
  } while (0)
        double mx = -INFINITY, s;
        for (size_t j = 0; j < Tk; j++) {
          REF_SCORE(j, s);
          if (s > mx) mx = s;
        }
        double l = 0.0;
        for (size_t j = 0; j < Tk; j++) {
          REF_SCORE(j, s);
          l += exp(s - mx);
        }
        for (size_t c0 = 0; c0 < d; c0 += 64) {
          size_t cn = d - c0 < 64 ? d - c0 : 64;
          double acc[64] = {0};
          for (size_t j = 0; j < Tk; j++) {
            REF_SCORE(j, s);
            double p = exp(s - mx);
            for (size_t c = 0; c < cn; c++) acc[c] += p * (double)vh[j * sk.tok + (c0 + c) * sk.ch];
          }
          for (size_t c = 0; c < cn; c++) oh[i * sq.tok + (c0 + c) * sq.ch] = (float)(acc[c] / l);
        }
#undef REF_SCORE
      }
    }
  }
  return MS_OK;
}

static size_t att_per_thread(size_t d) {
  /* Q, O: BQ*d each; K^T: d*BK; V: BK*d; S: BQ*BK; m, l: BQ each; +16 for
   * alignment slack. */
  return 2 * ATT_BQ * d + 2 * ATT_BK * d + ATT_BQ * ATT_BK + 2 * ATT_BQ + 16;
}

size_t ms_attention_scratch_floats(size_t head_dim, int n_threads) {
  if (head_dim == 0) return 0;
  if (n_threads <= 0) n_threads = omp_get_max_threads();
  return att_per_thread(head_dim) * (size_t)n_threads;
}

/* One work item: queries [i0, i0+qn) of head (n, h). Compiled once per ISA
 * path (att_block_avx512 / _avx2 / _generic below): the same C, with the
 * compiler's vectorisation and FMA contraction for that ISA. */
static inline __attribute__((always_inline)) void att_block_body(float *oh, const float *qh, const float *kh, const float *vh,
                      att_strides sq, att_strides sk, size_t d, size_t Tk, size_t i0, size_t qn,
                      float scale, float *ws) {
  float *Q = ws;                  /* [BQ][d] */
  float *O = Q + ATT_BQ * d;      /* [BQ][d] */
  float *Kt = O + ATT_BQ * d;     /* [d][BK] */
  float *V = Kt + d * ATT_BK;     /* [BK][d] */
  float *S = V + ATT_BK * d;      /* [BQ][BK] */
  float *m = S + ATT_BQ * ATT_BK; /* [BQ] */
  float *l = m + ATT_BQ;          /* [BQ] */
  for (size_t i = 0; i < qn; i++) {
    for (size_t c = 0; c < d; c++) Q[i * d + c] = qh[(i0 + i) * sq.tok + c * sq.ch];
    m[i] = -INFINITY;
    l[i] = 0.0f;
  }
  memset(O, 0, qn * d * sizeof(float));
  for (size_t j0 = 0; j0 < Tk; j0 += ATT_BK) {
    const size_t kn = Tk - j0 < ATT_BK ? Tk - j0 : ATT_BK;
    for (size_t c = 0; c < d; c++) {
      for (size_t j = 0; j < kn; j++) Kt[c * ATT_BK + j] = kh[(j0 + j) * sk.tok + c * sk.ch];
      for (size_t j = kn; j < ATT_BK; j++) Kt[c * ATT_BK + j] = 0.0f;
    }
    for (size_t j = 0; j < kn; j++)
      for (size_t c = 0; c < d; c++) V[j * d + c] = vh[(j0 + j) * sk.tok + c * sk.ch];
    for (size_t i = 0; i < qn; i++) {
      float *Si = S + i * ATT_BK;
      const float *Qi = Q + i * d;
      float acc[ATT_BK] = {0};
      for (size_t c = 0; c < d; c++) {
        const float a = Qi[c];
        const float *kr = Kt + c * ATT_BK;
#pragma omp simd
        for (size_t j = 0; j < ATT_BK; j++) acc[j] += a * kr[j];
      }
      float mx = m[i];
      for (size_t j = 0; j < kn; j++) {
        Si[j] = acc[j] * scale;
        mx = Si[j] > mx ? Si[j] : mx;
      }
      const float corr = ms__expf(m[i] - mx); /* exp(-inf) = 0 on the first block */
      l[i] = l[i] * corr + ms__exp_sub_sum(Si, Si, kn, mx);
      m[i] = mx;
      float *Oi = O + i * d;
#pragma omp simd
      for (size_t c = 0; c < d; c++) Oi[c] *= corr;
      for (size_t j = 0; j < kn; j++) {
        const float p = Si[j];
        const float *vr = V + j * d;
#pragma omp simd
        for (size_t c = 0; c < d; c++) Oi[c] += p * vr[c];
      }
    }
  }
  for (size_t i = 0; i < qn; i++) {
    const float inv = 1.0f / l[i];
    for (size_t c = 0; c < d; c++) oh[(i0 + i) * sq.tok + c * sq.ch] = O[i * d + c] * inv;
  }
}

typedef void (*att_block_fn)(float *, const float *, const float *, const float *, att_strides,
                             att_strides, size_t, size_t, size_t, size_t, float, float *);

#define ATT_BLOCK_ARGS                                                                       \
  float *oh, const float *qh, const float *kh, const float *vh, att_strides sq, att_strides sk, \
      size_t d, size_t Tk, size_t i0, size_t qn, float scale, float *ws
static void att_block_generic(ATT_BLOCK_ARGS) {
  att_block_body(oh, qh, kh, vh, sq, sk, d, Tk, i0, qn, scale, ws);
}
#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2,fma"))) static void att_block_avx2(ATT_BLOCK_ARGS) {
  att_block_body(oh, qh, kh, vh, sq, sk, d, Tk, i0, qn, scale, ws);
}
__attribute__((target("avx512f,fma"))) static void att_block_avx512(ATT_BLOCK_ARGS) {
  att_block_body(oh, qh, kh, vh, sq, sk, d, Tk, i0, qn, scale, ws);
}
#endif

static att_block_fn att_block_for(ms_kernel_isa isa) {
#if defined(__x86_64__) || defined(__i386__)
  if (isa == MS_KERNEL_ISA_AVX512) return att_block_avx512;
  if (isa == MS_KERNEL_ISA_AVX2) return att_block_avx2;
#endif
  (void)isa;
  return att_block_generic;
}

ms_status ms_attention(float *o, const float *q, const float *k, const float *v, size_t N,
                       size_t heads, size_t head_dim, size_t Tq, size_t Tk,
                       ms_attn_layout layout, float *scratch, size_t scratch_floats) {
  ms_status st = att_check(o, q, k, v, N, heads, head_dim, Tq, Tk, layout);
  if (st != MS_OK || N == 0 || heads == 0 || Tq == 0) return st;
  const size_t d = head_dim, Ctot = heads * d;
  const size_t per = att_per_thread(d);
  if (!scratch || scratch_floats < per) return MS_ERR_INVALID;
  size_t nt = scratch_floats / per;
  size_t maxt = (size_t)omp_get_max_threads();
  if (nt > maxt) nt = maxt;
  const att_strides sq = att_layout(layout, Ctot, Tq), sk = att_layout(layout, Ctot, Tk);
  const float scale = (float)(1.0 / sqrt((double)d));
  const size_t nqb = (Tq + ATT_BQ - 1) / ATT_BQ;
  const size_t items = N * heads * nqb;
  if (nt > items) nt = items;
  const att_block_fn att_block = att_block_for(ms_kernel_isa_detect());
#pragma omp parallel num_threads((int)nt)
  {
    float *ws = scratch + per * (size_t)omp_get_thread_num();
    /* Align to 64 bytes within this thread's share. */
    ws += (16 - ((uintptr_t)ws / sizeof(float)) % 16) % 16;
#pragma omp for schedule(static)
    for (size_t it = 0; it < items; it++) {
      const size_t qb = it % nqb, h = (it / nqb) % heads, n = it / (nqb * heads);
      const size_t i0 = qb * ATT_BQ, qn = Tq - i0 < ATT_BQ ? Tq - i0 : ATT_BQ;
      att_block(o + n * sq.item + h * d * sq.ch, q + n * sq.item + h * d * sq.ch,
                k + n * sk.item + h * d * sk.ch, v + n * sk.item + h * d * sk.ch, sq, sk, d, Tk,
                i0, qn, scale, ws);
    }
  }
  return MS_OK;
}
