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
 * block of ATT_BQ queries). The queries sit in the vector lanes; keys are
 * visited in blocks of ATT_BK in increasing order, and per block
 *   S = Q K^T * scale (k in increasing channel order),
 *   m' = max(m, rowmax S), c = exp(m - m'), p = exp(S - m'),
 *   l = l*c + sum(p) (keys in increasing order), O = O*c + p V
 * (exp: the vectorised one of vexp.c), o = O * (1/l) at the end. Both
 * products run as register tiles of six keys (or six channels) x ATT_BQ
 * queries with K and V read in place as broadcast scalars, so only Q is
 * copied. Each query row's arithmetic depends only on T, d and the data,
 * never on the thread that runs it or the layout, so any thread count
 * gives the same bytes and NCT/NTC give the same values. Scratch per
 * thread: Q^T, O^T [d x BQ], P^T [BK x BQ], m, l and two temporaries [BQ].
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

#include "core/pool.h"
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

/* Queries per work item: ATT_QV vectors of 16 lanes. */
#define ATT_QV (ATT_BQ / 16)

typedef float att_v16 __attribute__((vector_size(64)));

static size_t att_per_thread(size_t d) {
  /* Q^T, O^T: d*BQ each; P^T: BK*BQ; m, l, row max, correction: BQ each;
   * +16 for alignment slack. */
  return 2 * ATT_BQ * d + ATT_BK * ATT_BQ + 4 * ATT_BQ + 16;
}

size_t ms_attention_scratch_floats(size_t head_dim, int n_threads) {
  if (head_dim == 0) return 0;
  if (n_threads <= 0) n_threads = omp_get_max_threads();
  return att_per_thread(head_dim) * (size_t)n_threads;
}

/* One work item: queries [i0, i0+qn) of head (n, h), the queries in the
 * vector lanes (16 per vector, ATT_QV vectors; lanes past qn hold zero
 * queries and are never stored). Compiled once per ISA path
 * (att_block_avx512 / _avx2 / _generic below) from the same C: GCC vector
 * types become zmm, ymm pairs or xmm quads, and a*b + c contracts to FMA
 * where the ISA has it.
 *
 * Per key block (ATT_BK keys j0 ..):
 *   S^T[j][i] = scale * sum_c K[c][j] Q^T[c][i]      (c increasing; six keys
 *                                                    at a time in registers)
 *   mx[i] = max(m[i], max_j S^T[j][i]); P^T = exp(S^T - mx); corr = exp(m - mx)
 *   l[i] = l[i]*corr[i] + sum_j P^T[j][i]             (j increasing)
 *   O^T[c][i] = O^T[c][i]*corr[i] + sum_j V[c][j] P^T[j][i]
 *                                                    (j increasing; six
 *                                                    channels at a time)
 * K and V are read in place as broadcast scalars (either layout), Q is
 * copied once into Q^T. Every query's arithmetic is fixed by T, d and the
 * data, and is the same in both layouts. */
/* a<t>0 .. a<t>3 += src[t * stride] * x0 .. x3 for the six rows t of a
 * register tile over four query vectors. */
#define ATT_FMA(t, src, stride, x)     \
  {                                    \
    const float sv = src[t * stride];  \
    a##t##0 += sv * x##0;              \
    a##t##1 += sv * x##1;              \
    a##t##2 += sv * x##2;              \
    a##t##3 += sv * x##3;              \
  }
#define ATT_FMA6(src, stride, x)                                                     \
  ATT_FMA(0, src, stride, x) ATT_FMA(1, src, stride, x) ATT_FMA(2, src, stride, x) \
  ATT_FMA(3, src, stride, x) ATT_FMA(4, src, stride, x) ATT_FMA(5, src, stride, x)

static inline __attribute__((always_inline)) void att_block_body(
    float *oh, const float *qh, const float *kh, const float *vh, att_strides sq, att_strides sk,
    size_t d, size_t Tk, size_t i0, size_t qn, float scale, float *ws) {
  att_v16 *Qt = (att_v16 *)ws;     /* [d][QV] */
  att_v16 *Ot = Qt + d * ATT_QV;   /* [d][QV] */
  att_v16 *Pt = Ot + d * ATT_QV;   /* [BK][QV] */
  float *m = (float *)(Pt + ATT_BK * ATT_QV); /* [BQ] */
  float *l = m + ATT_BQ, *mx = l + ATT_BQ, *corr = mx + ATT_BQ;
  float *Qf = (float *)Qt, *Pf = (float *)Pt;
  for (size_t c = 0; c < d; c++) {
    for (size_t i = 0; i < qn; i++) Qf[c * ATT_BQ + i] = qh[(i0 + i) * sq.tok + c * sq.ch];
    for (size_t i = qn; i < ATT_BQ; i++) Qf[c * ATT_BQ + i] = 0.0f;
  }
  memset(Ot, 0, d * ATT_BQ * sizeof(float));
  for (size_t i = 0; i < ATT_BQ; i++) {
    m[i] = -INFINITY;
    l[i] = 0.0f;
  }
  const att_v16 zero = {0};
  for (size_t j0 = 0; j0 < Tk; j0 += ATT_BK) {
    const size_t kn = Tk - j0 < ATT_BK ? Tk - j0 : ATT_BK;
    const float *kb = kh + j0 * sk.tok, *vb = vh + j0 * sk.tok;
    /* S^T = K^T Q^T * scale, six keys x BQ queries per register tile. */
    size_t j = 0;
    for (; j + 6 <= kn; j += 6) {
#define ATT_DECL(t) att_v16 a##t##0 = zero, a##t##1 = zero, a##t##2 = zero, a##t##3 = zero;
      ATT_DECL(0) ATT_DECL(1) ATT_DECL(2) ATT_DECL(3) ATT_DECL(4) ATT_DECL(5)
#undef ATT_DECL
      for (size_t c = 0; c < d; c++) {
        const att_v16 q0 = Qt[c * ATT_QV], q1 = Qt[c * ATT_QV + 1], q2 = Qt[c * ATT_QV + 2],
                      q3 = Qt[c * ATT_QV + 3];
        const float *kc = kb + c * sk.ch + j * sk.tok;
        ATT_FMA6(kc, sk.tok, q)
      }
#define ATT_ST(t)                             \
  Pt[(j + t) * ATT_QV + 0] = a##t##0 * scale; \
  Pt[(j + t) * ATT_QV + 1] = a##t##1 * scale; \
  Pt[(j + t) * ATT_QV + 2] = a##t##2 * scale; \
  Pt[(j + t) * ATT_QV + 3] = a##t##3 * scale;
      ATT_ST(0) ATT_ST(1) ATT_ST(2) ATT_ST(3) ATT_ST(4) ATT_ST(5)
#undef ATT_ST
    }
    for (; j < kn; j++) {
      att_v16 a0 = zero, a1 = zero, a2 = zero, a3 = zero;
      for (size_t c = 0; c < d; c++) {
        const float kv = kb[c * sk.ch + j * sk.tok];
        a0 += kv * Qt[c * ATT_QV];
        a1 += kv * Qt[c * ATT_QV + 1];
        a2 += kv * Qt[c * ATT_QV + 2];
        a3 += kv * Qt[c * ATT_QV + 3];
      }
      Pt[j * ATT_QV + 0] = a0 * scale;
      Pt[j * ATT_QV + 1] = a1 * scale;
      Pt[j * ATT_QV + 2] = a2 * scale;
      Pt[j * ATT_QV + 3] = a3 * scale;
    }
    /* Online softmax over this block, per query lane. */
    for (size_t i = 0; i < ATT_BQ; i++) mx[i] = m[i];
    for (size_t jj = 0; jj < kn; jj++)
      for (size_t i = 0; i < ATT_BQ; i++) {
        const float s = Pf[jj * ATT_BQ + i];
        mx[i] = s > mx[i] ? s : mx[i];
      }
    for (size_t jj = 0; jj < kn; jj++)
      for (size_t i = 0; i < ATT_BQ; i++) Pf[jj * ATT_BQ + i] -= mx[i];
    ms__exp_array(Pf, Pf, kn * ATT_BQ);
    for (size_t i = 0; i < ATT_BQ; i++) corr[i] = m[i] - mx[i]; /* -inf on the first block */
    ms__exp_array(corr, corr, ATT_BQ);
    for (size_t i = 0; i < ATT_BQ; i++) {
      m[i] = mx[i];
      mx[i] = 0.0f; /* now the block's sum of p */
    }
    for (size_t jj = 0; jj < kn; jj++)
      for (size_t i = 0; i < ATT_BQ; i++) mx[i] += Pf[jj * ATT_BQ + i];
    for (size_t i = 0; i < ATT_BQ; i++) l[i] = l[i] * corr[i] + mx[i];
    /* O^T = O^T * corr + V P^T, six channels x BQ queries per tile. */
    const att_v16 *cv = (const att_v16 *)corr;
    const att_v16 r0 = cv[0], r1 = cv[1], r2 = cv[2], r3 = cv[3];
    size_t c = 0;
    for (; c + 6 <= d; c += 6) {
#define ATT_DECL(t)                                                                   \
  att_v16 a##t##0 = Ot[(c + t) * ATT_QV] * r0, a##t##1 = Ot[(c + t) * ATT_QV + 1] * r1, \
          a##t##2 = Ot[(c + t) * ATT_QV + 2] * r2, a##t##3 = Ot[(c + t) * ATT_QV + 3] * r3;
      ATT_DECL(0) ATT_DECL(1) ATT_DECL(2) ATT_DECL(3) ATT_DECL(4) ATT_DECL(5)
#undef ATT_DECL
      const float *vc = vb + c * sk.ch;
      for (size_t jj = 0; jj < kn; jj++) {
        const att_v16 p0 = Pt[jj * ATT_QV], p1 = Pt[jj * ATT_QV + 1], p2 = Pt[jj * ATT_QV + 2],
                      p3 = Pt[jj * ATT_QV + 3];
        const float *vj = vc + jj * sk.tok;
        ATT_FMA6(vj, sk.ch, p)
      }
#define ATT_ST(t)                      \
  Ot[(c + t) * ATT_QV + 0] = a##t##0; \
  Ot[(c + t) * ATT_QV + 1] = a##t##1; \
  Ot[(c + t) * ATT_QV + 2] = a##t##2; \
  Ot[(c + t) * ATT_QV + 3] = a##t##3;
      ATT_ST(0) ATT_ST(1) ATT_ST(2) ATT_ST(3) ATT_ST(4) ATT_ST(5)
#undef ATT_ST
    }
    for (; c < d; c++) {
      att_v16 a0 = Ot[c * ATT_QV] * r0, a1 = Ot[c * ATT_QV + 1] * r1,
              a2 = Ot[c * ATT_QV + 2] * r2, a3 = Ot[c * ATT_QV + 3] * r3;
      const float *vc = vb + c * sk.ch;
      for (size_t jj = 0; jj < kn; jj++) {
        const float vv = vc[jj * sk.tok];
        a0 += vv * Pt[jj * ATT_QV];
        a1 += vv * Pt[jj * ATT_QV + 1];
        a2 += vv * Pt[jj * ATT_QV + 2];
        a3 += vv * Pt[jj * ATT_QV + 3];
      }
      Ot[c * ATT_QV] = a0;
      Ot[c * ATT_QV + 1] = a1;
      Ot[c * ATT_QV + 2] = a2;
      Ot[c * ATT_QV + 3] = a3;
    }
  }
  for (size_t i = 0; i < qn; i++) mx[i] = 1.0f / l[i];
  const float *Of = (const float *)Ot;
  for (size_t c = 0; c < d; c++)
    for (size_t i = 0; i < qn; i++) oh[(i0 + i) * sq.tok + c * sq.ch] = Of[c * ATT_BQ + i] * mx[i];
}

#undef ATT_FMA6
#undef ATT_FMA

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

typedef struct {
  att_block_fn att_block;
  float *o;
  const float *q, *k, *v;
  float *scratch;
  size_t per;
  att_strides sq, sk;
  size_t heads, d, Tq, Tk, nqb;
  float scale;
} att_job;

/* Work item `it` (query block, head, batch item), on the worker's share of
 * the scratch. */
static void att_item(void *ctx, size_t it, size_t worker) {
  const att_job *j = ctx;
  float *ws = j->scratch + j->per * worker;
  /* Align to 64 bytes within this thread's share. */
  ws += (16 - ((uintptr_t)ws / sizeof(float)) % 16) % 16;
  const size_t nqb = j->nqb, heads = j->heads, d = j->d;
  const size_t qb = it % nqb, h = (it / nqb) % heads, n = it / (nqb * heads);
  const size_t i0 = qb * ATT_BQ, qn = j->Tq - i0 < ATT_BQ ? j->Tq - i0 : ATT_BQ;
  const att_strides sq = j->sq, sk = j->sk;
  j->att_block(j->o + n * sq.item + h * d * sq.ch, j->q + n * sq.item + h * d * sq.ch,
               j->k + n * sk.item + h * d * sk.ch, j->v + n * sk.item + h * d * sk.ch, sq, sk, d,
               j->Tk, i0, qn, j->scale, ws);
}

ms_status ms__attention_isa(ms_kernel_isa isa, float *o, const float *q, const float *k,
                            const float *v, size_t N, size_t heads, size_t head_dim, size_t Tq,
                            size_t Tk, ms_attn_layout layout, float *scratch,
                            size_t scratch_floats) {
  if (!ms__isa_supported(isa)) return MS_ERR_UNSUPPORTED;
  ms_status st = att_check(o, q, k, v, N, heads, head_dim, Tq, Tk, layout);
  if (st != MS_OK || N == 0 || heads == 0 || Tq == 0) return st;
  const size_t d = head_dim, Ctot = heads * d;
  const size_t per = att_per_thread(d);
  if (!scratch || scratch_floats < per) return MS_ERR_INVALID;
  size_t nt = scratch_floats / per;
  size_t maxt = ms__parallel_threads();
  if (nt > maxt) nt = maxt;
  const att_strides sq = att_layout(layout, Ctot, Tq), sk = att_layout(layout, Ctot, Tk);
  const float scale = (float)(1.0 / sqrt((double)d));
  const size_t nqb = (Tq + ATT_BQ - 1) / ATT_BQ;
  const size_t items = N * heads * nqb;
  if (nt > items) nt = items;
  att_job j = {att_block_for(isa), o, q, k, v, scratch, per, sq, sk, heads, d, Tq, Tk, nqb, scale};
  ms__parallel(items, nt, att_item, &j);
  return MS_OK;
}

ms_status ms_attention(float *o, const float *q, const float *k, const float *v, size_t N,
                       size_t heads, size_t head_dim, size_t Tq, size_t Tk,
                       ms_attn_layout layout, float *scratch, size_t scratch_floats) {
  return ms__attention_isa(ms_kernel_isa_detect(), o, q, k, v, N, heads, head_dim, Tq, Tk, layout,
                           scratch, scratch_floats);
}
