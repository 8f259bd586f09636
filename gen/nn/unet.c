/* Diffusion UNet forward pass (medsynth/nn.h), mirroring UNet in
 * models/reference/medsynth_ref.py.
 *
 * Memory: five work buffers of max_act floats (A, B: the running
 * activation, ping-ponged; CAT: skip concatenation; T1, T2: inside blocks),
 * one skip arena holding every down-path output the up path consumes, small
 * embedding buffers, one kernel scratch, and the convolution weights packed
 * once into the micro-kernel's panels (ms_conv2d_pack_weights). All sizes come from running
 * the network once in planning mode for batch 1 and for max_batch.
 *
 * The down path writes its block outputs straight into skip slots (no
 * copies); the up path concatenates [h, skip] into CAT, as torch.cat. */
#include <stdio.h>
#include "core/alloc.h"
#include <stdlib.h>
#include <string.h>

#include "nn/nn_private.h"

#define MAX_SKIPS (1 + MS_MODEL_MAX_LEVELS * 65)

struct ms_unet {
  const ms_model *m;
  const ms_model_config *c;
  int max_batch;
  size_t act, skip_floats, scratch_floats, emb_floats, wpack_floats;
  float *A, *B, *CAT, *T1, *T2, *skip, *scratch, *wpack;
  float *e0, *e1, *e2, *ea, *ebuf, *tbuf;
  ms_nn_trace_fn trace;
  void *trace_ctx;
};

static int has_attn(const ms_model_config *c, int l) {
  for (int a = 0; a < c->n_attention; a++)
    if ((c->image_size >> l) == c->attention_resolutions[a]) return 1;
  return 0;
}

/* The network, for both modes. */
static void run(ms_unet *u, ms__nn *c, float *out, const float *x, const float *t,
                const int32_t *y, size_t N) {
  const ms_model_config *cf = u->c;
  int L = cf->n_levels, nb = cf->blocks_per_level;
  size_t ch0 = (size_t)cf->channels[0], ed = 4 * ch0;
  size_t S = (size_t)cf->image_size, Cimg = (size_t)cf->image_channels;
  char p[96];

  /* Timestep (and class) embedding. */
  if (!c->plan) {
    ms_status st = ms_timestep_embedding(u->e0, t, N, ch0, 10000.0f);
    if (st != MS_OK) {
      c->st = ms_diag_add(c->d, st, NULL, 0, 0, "time_embed", "timestep embedding failed");
      return;
    }
  }
  ms__linear(c, u->e1, u->e0, "time_embed.0", N, ch0, ed);
  if (!c->plan) ms_silu(u->e1, u->e1, N * ed);
  ms__linear(c, u->e2, u->e1, "time_embed.2", N, ed, ed);
  ms__nn_trace2(c, "time_embed", u->e2, N, ed);
  if (cf->num_classes && !c->plan && c->st == MS_OK) {
    const float *tab = ms_model_data(u->m, ms_model_find(u->m, "class_embed.weight"));
    for (size_t n = 0; n < N; n++) {
      int32_t k = y ? y[n] : cf->num_classes;
      if (k < 0 || k > cf->num_classes) {
        c->st = ms_diag_add(c->d, MS_ERR_RANGE, NULL, 0, 0, "class_embed",
                            "class %d out of range 0..%d (%d = unconditional)", (int)k,
                            cf->num_classes, cf->num_classes);
        return;
      }
      ms_add(u->e2 + n * ed, u->e2 + n * ed, tab + (size_t)k * ed, ed);
    }
  }
  if (!c->plan) ms_silu(u->ea, u->e2, N * ed);

  /* Down path: outputs land in skip slots. */
  size_t sk_off[MAX_SKIPS], sk_ch[MAX_SKIPS];
  int ns = 0;
  size_t off = 0, res = S, cur = ch0;
  float *h = ms__at(c, u->skip, off);
  ms__conv(c, h, x, "conv_in", N, Cimg, S, S, ch0, 3, 1, 1);
  sk_off[ns] = off;
  sk_ch[ns++] = ch0;
  off += N * ch0 * S * S;
  for (int l = 0; l < L; l++) {
    size_t co = (size_t)cf->channels[l];
    int attn = has_attn(cf, l);
    for (int b = 0; b < nb; b++) {
      float *dst = ms__at(c, u->skip, off);
      snprintf(p, sizeof p, "down.%d.res.%d", l, b);
      ms__res_block(c, attn ? u->A : dst, h, p, N, cur, co, res, res, u->ea, ed, u->T1, u->T2,
                    u->ebuf);
      if (attn) {
        snprintf(p, sizeof p, "down.%d.attn.%d", l, b);
        ms__attn_block(c, dst, u->A, p, N, co, res, res, u->T1, u->T2);
      }
      cur = co;
      h = dst;
      sk_off[ns] = off;
      sk_ch[ns++] = cur;
      off += N * cur * res * res;
    }
    if (l < L - 1) {
      float *dst = ms__at(c, u->skip, off);
      snprintf(p, sizeof p, "down.%d.down", l);
      ms__downsample(c, dst, h, p, cf->downsample == MS_DOWNSAMPLE_CONV, N, cur, res, res);
      res /= 2;
      h = dst;
      sk_off[ns] = off;
      sk_ch[ns++] = cur;
      off += N * cur * res * res;
    }
  }
  if (c->plan && off > c->skip_floats) c->skip_floats = off;

  /* Middle. */
  ms__res_block(c, u->A, h, "mid.res1", N, cur, cur, res, res, u->ea, ed, u->T1, u->T2, u->ebuf);
  ms__attn_block(c, u->B, u->A, "mid.attn", N, cur, res, res, u->T1, u->T2);
  ms__res_block(c, u->A, u->B, "mid.res2", N, cur, cur, res, res, u->ea, ed, u->T1, u->T2,
                u->ebuf);
  float *hb = u->A, *other = u->B;

  /* Up path. */
  for (int l = L - 1; l >= 0; l--) {
    size_t co = (size_t)cf->channels[l];
    int attn = has_attn(cf, l);
    for (int b = 0; b <= nb; b++) {
      ns--;
      size_t sc = sk_ch[ns];
      if (c->plan)
        ms__nn_note(c, N * (cur + sc) * res * res);
      else if (c->st == MS_OK)
        ms_concat_channels(u->CAT, hb, u->skip + sk_off[ns], N, cur, sc, res * res);
      snprintf(p, sizeof p, "up.%d.res.%d", l, b);
      ms__res_block(c, other, u->CAT, p, N, cur + sc, co, res, res, u->ea, ed, u->T1, u->T2,
                    u->ebuf);
      cur = co;
      float *tmp = hb;
      hb = other;
      other = tmp;
      if (attn) {
        snprintf(p, sizeof p, "up.%d.attn.%d", l, b);
        ms__attn_block(c, other, hb, p, N, cur, res, res, u->T1, u->T2);
        tmp = hb;
        hb = other;
        other = tmp;
      }
    }
    if (l > 0) {
      snprintf(p, sizeof p, "up.%d.up", l);
      ms__upsample(c, other, hb, p, N, cur, res, res, u->T1);
      res *= 2;
      float *tmp = hb;
      hb = other;
      other = tmp;
    }
  }
  ms__gn_silu(c, u->T1, hb, "norm_out", N, cur, res * res);
  ms__conv(c, out, u->T1, "conv_out", N, cur, res, res, Cimg, 3, 1, 1);
}

void ms_unet_free(ms_unet *u) {
  if (!u) return;
  free(u->A);
  free(u->B);
  free(u->CAT);
  free(u->T1);
  free(u->T2);
  free(u->skip);
  free(u->scratch);
  free(u->wpack);
  free(u->e0);
  free(u->e1);
  free(u->e2);
  free(u->ea);
  free(u->ebuf);
  free(u->tbuf);
  free(u);
}

ms_status ms_unet_new(ms_unet **out, const ms_model *m, int max_batch, ms_diag *d) {
  *out = NULL;
  ms_status st = MS_OK;
  ms_unet *u = ms__nn_net_new(m, MS_ARCH_UNET, max_batch, sizeof *u, d, &st);
  if (!u) return st;
  const ms_model_config *cf = ms_model_config_of(m);
  u->m = m;
  u->c = cf;
  u->max_batch = max_batch;
  ms__nn c = {.m = m, .c = cf, .plan = 1, .prepack = 1, .d = d};
  run(u, &c, NULL, NULL, NULL, NULL, 1);
  u->wpack_floats = c.wpack_off; /* the same for every batch size */
  run(u, &c, NULL, NULL, NULL, NULL, (size_t)max_batch);
  if (c.st != MS_OK) {
    ms_unet_free(u);
    return c.st;
  }
  u->act = c.max_act;
  u->skip_floats = c.skip_floats;
  u->scratch_floats = c.max_scratch;
  size_t maxc = 0;
  for (int l = 0; l < cf->n_levels; l++)
    if ((size_t)cf->channels[l] > maxc) maxc = (size_t)cf->channels[l];
  size_t ed = 4 * (size_t)cf->channels[0];
  u->emb_floats = (size_t)max_batch * (ed > maxc ? ed : maxc);
  float **bufs[] = {&u->A, &u->B, &u->CAT, &u->T1, &u->T2};
  for (size_t i = 0; i < 5; i++) ms__nn_alloc_to(bufs[i], u->act, &st);
  ms__nn_alloc_to(&u->skip, u->skip_floats, &st);
  ms__nn_alloc_to(&u->scratch, u->scratch_floats, &st);
  float **eb[] = {&u->e0, &u->e1, &u->e2, &u->ea, &u->ebuf};
  for (size_t i = 0; i < 5; i++) ms__nn_alloc_to(eb[i], u->emb_floats, &st);
  ms__nn_alloc_to(&u->tbuf, (size_t)max_batch, &st);
  ms__nn_alloc_to(&u->wpack, u->wpack_floats, &st);
  if (st == MS_OK) {
    /* Pack every convolution's weights once (a planning pass that fills
     * the slots). */
    ms__nn pk = {.m = m, .c = cf, .plan = 1, .prepack = 1, .wpack = u->wpack, .d = d};
    run(u, &pk, NULL, NULL, NULL, NULL, 1);
    if (pk.st != MS_OK || pk.wpack_off != u->wpack_floats) {
      ms_unet_free(u);
      return pk.st != MS_OK ? pk.st
                            : ms_diag_add(d, MS_ERR_INTERNAL, NULL, 0, 0, NULL,
                                          "convolution weight packing plan mismatch");
    }
  }
  if (st != MS_OK) {
    size_t mb = ms_unet_memory_bytes(u) >> 20;
    ms_unet_free(u);
    return ms_diag_add(d, st, NULL, 0, 0, NULL, "out of memory for the UNet work buffers (%zu MB)",
                       mb);
  }
  *out = u;
  return MS_OK;
}

void ms_unet_set_trace(ms_unet *u, ms_nn_trace_fn fn, void *ctx) {
  u->trace = fn;
  u->trace_ctx = ctx;
}

size_t ms_unet_memory_bytes(const ms_unet *u) {
  return (5 * u->act + u->skip_floats + u->scratch_floats + 5 * u->emb_floats +
          u->wpack_floats) *
         sizeof(float);
}

int ms_unet_max_batch(const ms_unet *u) { return u->max_batch; }

ms_status ms_unet_forward(ms_unet *u, float *out, const float *x, const float *t,
                          const int32_t *y, int n, ms_diag *d) {
  if (n < 1 || n > u->max_batch)
    return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, NULL, "batch of %d images; this UNet takes 1..%d",
                       n, u->max_batch);
  if (!out || !x || !t) return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, NULL, "NULL buffer");
  ms__nn c = {.m = u->m, .c = u->c, .plan = 0, .prepack = 1, .wpack = u->wpack,
              .scratch = u->scratch,
              .scratch_floats = u->scratch_floats, .trace = u->trace, .trace_ctx = u->trace_ctx,
              .st = MS_OK, .d = d};
  run(u, &c, out, x, t, y, (size_t)n);
  return c.st;
}

ms_status ms_unet_denoise(void *ctx, float *out, const float *x, int t, const int32_t *y, int n,
                          ms_diag *d) {
  ms_unet *u = ctx;
  if (n < 1 || n > u->max_batch) return ms_unet_forward(u, out, x, u->tbuf, y, n, d);
  for (int i = 0; i < n; i++) u->tbuf[i] = (float)t;
  return ms_unet_forward(u, out, x, u->tbuf, y, n, d);
}
