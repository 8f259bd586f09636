/* Layer ops of the UNet and VAE (see nn_private.h for the planning/running
 * protocol). Each op maps one PyTorch module of models/reference/
 * medsynth_ref.py onto the fast kernels of medsynth/kernels.h.
 *
 * Invariants: no op allocates; ops touch only their output, the work space
 * they are given and ctx->scratch; a failed op leaves ctx->st set and every
 * later op returns at once. */
#include <omp.h>
#include "core/alloc.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn_private.h"

void ms__nn_note(ms__nn *c, size_t act_floats) {
  if (act_floats > c->max_act) c->max_act = act_floats;
}

static void note_scratch(ms__nn *c, size_t n) {
  if (n > c->max_scratch) c->max_scratch = n;
}

static int fail(ms__nn *c, ms_status st, const char *where, const char *msg) {
  if (c->st == MS_OK) {
    c->st = st;
    ms_diag_add(c->d, st, NULL, 0, 0, where, "%s", msg);
  }
  return 0;
}

static const float *weight(ms__nn *c, const char *prefix, const char *suffix) {
  char name[256];
  snprintf(name, sizeof name, "%s%s", prefix, suffix);
  const ms_tensor *t = ms_model_find(c->m, name);
  if (!t) {
    fail(c, MS_ERR_INTERNAL, name, "tensor required by the forward pass is missing");
    return NULL;
  }
  return ms_model_data(c->m, t);
}

/* <prefix>.weight and <prefix>.bias into *w and *b; 0 when the pass has
 * failed already or either is missing. */
static int weight_bias(ms__nn *c, const char *prefix, const float **w, const float **b) {
  if (c->st != MS_OK) return 0;
  *w = weight(c, prefix, ".weight");
  *b = weight(c, prefix, ".bias");
  return *w && *b;
}

void ms__nn_trace4(ms__nn *c, const char *name, const float *x, size_t N, size_t C, size_t H,
                   size_t W) {
  if (c->plan || !c->trace || c->st != MS_OK) return;
  size_t shape[4] = {N, C, H, W};
  c->trace(c->trace_ctx, name, x, 4, shape);
}

void ms__nn_trace2(ms__nn *c, const char *name, const float *x, size_t N, size_t F) {
  if (c->plan || !c->trace || c->st != MS_OK) return;
  size_t shape[2] = {N, F};
  c->trace(c->trace_ctx, name, x, 2, shape);
}

static void check(ms__nn *c, ms_status st, const char *prefix, const char *op) {
  if (st != MS_OK && c->st == MS_OK) {
    c->st = st;
    ms_diag_add(c->d, st, NULL, 0, 0, prefix, "%s kernel failed: %s", op, ms_strerror(st));
  }
}

void ms__conv(ms__nn *c, float *y, const float *x, const char *prefix, size_t N, size_t C,
              size_t H, size_t W, size_t Cout, size_t k, size_t stride, size_t pad) {
  const float *w, *b;
  if (!weight_bias(c, prefix, &w, &b)) return;
  ms_conv2d_params p = {.N = N, .C = C, .H = H, .W = W, .C_out = Cout, .kh = k, .kw = k,
                        .stride_h = stride, .stride_w = stride, .pad_h = pad, .pad_w = pad};
  size_t Ho, Wo;
  if (ms_conv2d_out_hw(&p, &Ho, &Wo) != MS_OK) {
    fail(c, MS_ERR_INTERNAL, prefix, "invalid convolution shape");
    return;
  }
  /* Prepacked 3x3 stride-1 convs run Winograd F(2x2, 3x3) where it pays. */
  const int wino = c->prepack && ms_conv2d_winograd_suits(&p);
  const size_t packed = wino ? ms_conv2d_winograd_packed_floats(&p) : ms_conv2d_packed_floats(&p);
  const size_t slot = c->prepack ? (packed + 15) / 16 * 16 : 0;
  float *wp = c->prepack && c->wpack ? c->wpack + c->wpack_off : NULL;
  c->wpack_off += slot;
  if (c->plan) {
    ms__nn_note(c, N * Cout * Ho * Wo);
    note_scratch(c, wino         ? ms_conv2d_winograd_scratch_floats(&p)
                    : c->prepack ? ms_conv2d_prepacked_scratch_floats(&p)
                                 : ms_conv2d_scratch_floats(&p));
    if (wp)
      check(c, wino ? ms_conv2d_winograd_pack_weights(wp, slot, w, &p)
                    : ms_conv2d_pack_weights(wp, slot, w, &p),
            prefix, "conv2d weight packing");
    return;
  }
  if (wino)
    check(c, wp ? ms_conv2d_winograd(y, x, wp, b, &p, c->scratch, c->scratch_floats)
                : MS_ERR_INTERNAL,
          prefix, "conv2d (Winograd)");
  else if (c->prepack)
    check(c, wp ? ms_conv2d_prepacked(y, x, wp, b, &p, c->scratch, c->scratch_floats)
                : MS_ERR_INTERNAL,
          prefix, "conv2d");
  else
    check(c, ms_conv2d(y, x, w, b, &p, c->scratch, c->scratch_floats), prefix, "conv2d");
  ms__nn_trace4(c, prefix, y, N, Cout, Ho, Wo);
}

void ms__gn_silu(ms__nn *c, float *y, const float *x, const char *prefix, size_t N, size_t C,
                 size_t HW) {
  const float *g, *b;
  if (!weight_bias(c, prefix, &g, &b)) return;
  if (c->plan) {
    ms__nn_note(c, N * C * HW);
    return;
  }
  check(c, ms_group_norm_silu(y, x, g, b, N, C, HW, (size_t)c->c->groups, c->c->norm_eps), prefix,
        "group_norm");
}

void ms__linear(ms__nn *c, float *y, const float *x, const char *prefix, size_t M, size_t in,
                size_t out) {
  const float *w, *b;
  if (!weight_bias(c, prefix, &w, &b)) return;
  if (c->plan) {
    note_scratch(c, ms_linear_scratch_floats(M, in, out));
    return;
  }
  check(c, ms_linear(y, x, w, b, M, in, out, c->scratch, c->scratch_floats), prefix, "linear");
  ms__nn_trace2(c, prefix, y, M, out);
}

void ms__attn_block(ms__nn *c, float *out, const float *x, const char *prefix, size_t N,
                    size_t C, size_t H, size_t W, float *t1, float *t2) {
  if (c->st != MS_OK) return;
  char p[200];
  size_t T = H * W, heads = (size_t)c->c->heads, d = C / heads;
  snprintf(p, sizeof p, "%s.norm", prefix);
  {
    const float *g, *b;
    if (!weight_bias(c, p, &g, &b)) return;
    if (c->plan)
      ms__nn_note(c, N * C * T);
    else
      check(c, ms_group_norm(t1, x, g, b, N, C, T, (size_t)c->c->groups, c->c->norm_eps), p,
            "group_norm");
  }
  snprintf(p, sizeof p, "%s.qkv", prefix);
  ms__conv(c, t2, t1, p, N, C, H, W, 3 * C, 1, 1, 0);
  if (c->plan) {
    note_scratch(c, ms_attention_scratch_floats(d, 0));
  } else {
    for (size_t n = 0; n < N && c->st == MS_OK; n++) {
      const float *q = t2 + n * 3 * C * T;
      check(c, ms_attention(t1 + n * C * T, q, q + C * T, q + 2 * C * T, 1, heads, d, T, T,
                            MS_ATTN_NCT, c->scratch, c->scratch_floats),
            prefix, "attention");
    }
  }
  snprintf(p, sizeof p, "%s.proj", prefix);
  ms__conv(c, out, t1, p, N, C, H, W, C, 1, 1, 0);
  if (c->plan || c->st != MS_OK) return;
  ms_add(out, out, x, N * C * T);
  ms__nn_trace4(c, prefix, out, N, C, H, W);
}

void ms__res_block(ms__nn *c, float *out, const float *x, const char *prefix, size_t N,
                   size_t cin, size_t cout, size_t H, size_t W, const float *emb_act, size_t ed,
                   float *t1, float *t2, float *ebuf) {
  if (c->st != MS_OK) return;
  char p[200];
  size_t HW = H * W;
  snprintf(p, sizeof p, "%s.norm1", prefix);
  ms__gn_silu(c, t1, x, p, N, cin, HW);
  snprintf(p, sizeof p, "%s.conv1", prefix);
  ms__conv(c, t2, t1, p, N, cin, H, W, cout, 3, 1, 1);
  if (ed) {
    snprintf(p, sizeof p, "%s.emb", prefix);
    ms__linear(c, ebuf, emb_act, p, N, ed, cout);
    if (!c->plan && c->st == MS_OK) ms_add_channel(t2, t2, ebuf, N, cout, HW);
  }
  snprintf(p, sizeof p, "%s.norm2", prefix);
  ms__gn_silu(c, t2, t2, p, N, cout, HW);
  snprintf(p, sizeof p, "%s.conv2", prefix);
  ms__conv(c, t1, t2, p, N, cout, H, W, cout, 3, 1, 1);
  if (cin != cout) {
    snprintf(p, sizeof p, "%s.skip", prefix);
    ms__conv(c, out, x, p, N, cin, H, W, cout, 1, 1, 0);
    if (!c->plan && c->st == MS_OK) ms_add(out, out, t1, N * cout * HW);
  } else if (!c->plan && c->st == MS_OK) {
    ms_add(out, x, t1, N * cout * HW);
  }
  ms__nn_trace4(c, prefix, out, N, cout, H, W);
}

void ms__downsample(ms__nn *c, float *y, const float *x, const char *prefix, int conv, size_t N,
                    size_t C, size_t H, size_t W) {
  if (c->st != MS_OK) return;
  char p[200];
  if (conv) {
    snprintf(p, sizeof p, "%s.conv", prefix);
    ms__conv(c, y, x, p, N, C, H, W, C, 3, 2, 1);
  } else if (c->plan) {
    ms__nn_note(c, N * C * (H / 2) * (W / 2));
  } else {
    ms_avgpool2x(y, x, N, C, H, W);
  }
  ms__nn_trace4(c, prefix, y, N, C, H / 2, W / 2);
}

void ms__upsample(ms__nn *c, float *y, const float *x, const char *prefix, size_t N, size_t C,
                  size_t H, size_t W, float *tmp) {
  if (c->st != MS_OK) return;
  char p[200];
  if (c->plan)
    ms__nn_note(c, N * C * 4 * H * W);
  else
    ms_upsample_nearest2x(tmp, x, N, C, H, W);
  snprintf(p, sizeof p, "%s.conv", prefix);
  ms__conv(c, y, tmp, p, N, C, 2 * H, 2 * W, C, 3, 1, 1);
  ms__nn_trace4(c, prefix, y, N, C, 2 * H, 2 * W);
}

float *ms__nn_alloc(size_t n_floats, ms_status *st) {
  if (n_floats > SIZE_MAX / sizeof(float)) {
    *st = MS_ERR_NOMEM;
    return NULL;
  }
  /* 64-byte alignment for the SIMD kernels. */
  size_t bytes = (n_floats ? n_floats : 1) * sizeof(float);
  bytes = (bytes + 63) & ~(size_t)63;
  float *p = ms__aligned_alloc(64, bytes);
  *st = p ? MS_OK : MS_ERR_NOMEM;
  return p;
}

void ms__nn_alloc_to(float **p, size_t n_floats, ms_status *st) {
  ms_status s;
  *p = ms__nn_alloc(n_floats, &s);
  if (s) *st = s;
}

void *ms__nn_net_new(const ms_model *m, ms_arch arch, int max_batch, size_t size,
                     ms_diag *d, ms_status *st) {
  const ms_model_config *cf = ms_model_config_of(m);
  void *o = NULL;
  if (cf->arch != arch)
    *st = ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, "config", "model architecture is %s, not %s",
                      ms_arch_name(cf->arch), ms_arch_name(arch));
  else if (max_batch < 1 || max_batch > 1 << 16)
    *st = ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, NULL, "batch size %d out of range 1..65536",
                      max_batch);
  else if (!(o = ms__calloc(1, size)))
    *st = ms_diag_add(d, MS_ERR_NOMEM, NULL, 0, 0, NULL, "out of memory");
  return o;
}
