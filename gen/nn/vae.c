/* VAE forward passes (medsynth/nn.h), mirroring VAE/Encoder/Decoder in
 * models/reference/medsynth_ref.py.
 *
 * Memory: four work buffers of max_act floats (A, B ping-pong the running
 * activation; T1, T2 inside blocks) and one kernel scratch, all sized by
 * running encoder and decoder in planning mode for batch 1 and max_batch. */
#include <stdio.h>
#include "core/alloc.h"
#include <stdlib.h>
#include <string.h>

#include "medsynth/sample.h"
#include "nn/nn_private.h"

struct ms_vae {
  const ms_model *m;
  const ms_model_config *c;
  int max_batch;
  size_t act, scratch_floats;
  float *A, *B, *T1, *T2, *scratch;
  ms_nn_trace_fn trace;
  void *trace_ctx;
};

#define SWAP(a, b)   \
  do {               \
    float *t_ = (a); \
    (a) = (b);       \
    (b) = t_;        \
  } while (0)

static void mid(ms_vae *v, ms__nn *c, float **h, float **o, const char *pre, size_t N, size_t ch,
                size_t r) {
  char p[64];
  snprintf(p, sizeof p, "%smid.res1", pre);
  ms__res_block(c, *o, *h, p, N, ch, ch, r, r, NULL, 0, v->T1, v->T2, NULL);
  SWAP(*h, *o);
  snprintf(p, sizeof p, "%smid.attn", pre);
  ms__attn_block(c, *o, *h, p, N, ch, r, r, v->T1, v->T2);
  SWAP(*h, *o);
  snprintf(p, sizeof p, "%smid.res2", pre);
  ms__res_block(c, *o, *h, p, N, ch, ch, r, r, NULL, 0, v->T1, v->T2, NULL);
  SWAP(*h, *o);
}

static void encode(ms_vae *v, ms__nn *c, float *mean, float *logvar, const float *x, size_t N) {
  const ms_model_config *cf = v->c;
  int L = cf->n_levels, nb = cf->blocks_per_level;
  size_t r = (size_t)cf->image_size, cur = (size_t)cf->channels[0];
  size_t Cz = (size_t)cf->latent_channels;
  char p[96];
  float *h = v->A, *o = v->B;
  ms__conv(c, h, x, "encoder.conv_in", N, (size_t)cf->image_channels, r, r, cur, 3, 1, 1);
  for (int l = 0; l < L; l++) {
    for (int b = 0; b < nb; b++) {
      snprintf(p, sizeof p, "encoder.down.%d.res.%d", l, b);
      ms__res_block(c, o, h, p, N, cur, (size_t)cf->channels[l], r, r, NULL, 0, v->T1, v->T2, NULL);
      cur = (size_t)cf->channels[l];
      SWAP(h, o);
    }
    if (l < L - 1) {
      snprintf(p, sizeof p, "encoder.down.%d.down", l);
      ms__downsample(c, o, h, p, 1, N, cur, r, r);
      r /= 2;
      SWAP(h, o);
    }
  }
  mid(v, c, &h, &o, "encoder.", N, cur, r);
  ms__gn_silu(c, v->T1, h, "encoder.norm_out", N, cur, r * r);
  ms__conv(c, v->T2, v->T1, "encoder.conv_out", N, cur, r, r, 2 * Cz, 3, 1, 1);
  if (c->plan || c->st != MS_OK) return;
  size_t half = Cz * r * r;
  for (size_t n = 0; n < N; n++) {
    memcpy(mean + n * half, v->T2 + n * 2 * half, half * sizeof(float));
    memcpy(logvar + n * half, v->T2 + n * 2 * half + half, half * sizeof(float));
  }
}

static void decode(ms_vae *v, ms__nn *c, float *out, const float *z, size_t N) {
  const ms_model_config *cf = v->c;
  int L = cf->n_levels, nb = cf->blocks_per_level;
  size_t r = (size_t)(cf->image_size >> (L - 1)), cur = (size_t)cf->channels[L - 1];
  char p[96];
  float *h = v->A, *o = v->B;
  ms__conv(c, h, z, "decoder.conv_in", N, (size_t)cf->latent_channels, r, r, cur, 3, 1, 1);
  mid(v, c, &h, &o, "decoder.", N, cur, r);
  for (int l = L - 1; l >= 0; l--) {
    for (int b = 0; b <= nb; b++) {
      snprintf(p, sizeof p, "decoder.up.%d.res.%d", l, b);
      ms__res_block(c, o, h, p, N, cur, (size_t)cf->channels[l], r, r, NULL, 0, v->T1, v->T2, NULL);
      cur = (size_t)cf->channels[l];
      SWAP(h, o);
    }
    if (l > 0) {
      snprintf(p, sizeof p, "decoder.up.%d.up", l);
      ms__upsample(c, o, h, p, N, cur, r, r, v->T1);
      r *= 2;
      SWAP(h, o);
    }
  }
  ms__gn_silu(c, v->T1, h, "decoder.norm_out", N, cur, r * r);
  ms__conv(c, out, v->T1, "decoder.conv_out", N, cur, r, r, (size_t)cf->image_channels, 3, 1, 1);
}

void ms_vae_free(ms_vae *v) {
  if (!v) return;
  free(v->A);
  free(v->B);
  free(v->T1);
  free(v->T2);
  free(v->scratch);
  free(v);
}

ms_status ms_vae_new(ms_vae **out, const ms_model *m, int max_batch, ms_diag *d) {
  *out = NULL;
  ms_status st = MS_OK;
  ms_vae *v = ms__nn_net_new(m, MS_ARCH_VAE, max_batch, sizeof *v, d, &st);
  if (!v) return st;
  const ms_model_config *cf = ms_model_config_of(m);
  v->m = m;
  v->c = cf;
  v->max_batch = max_batch;
  ms__nn c = {.m = m, .c = cf, .plan = 1, .d = d};
  size_t batches[2] = {1, (size_t)max_batch};
  for (int i = 0; i < 2; i++) {
    encode(v, &c, NULL, NULL, NULL, batches[i]);
    decode(v, &c, NULL, NULL, batches[i]);
  }
  if (c.st != MS_OK) {
    ms_vae_free(v);
    return c.st;
  }
  v->act = c.max_act;
  v->scratch_floats = c.max_scratch;
  float **bufs[] = {&v->A, &v->B, &v->T1, &v->T2};
  for (size_t i = 0; i < 4; i++) ms__nn_alloc_to(bufs[i], v->act, &st);
  ms__nn_alloc_to(&v->scratch, v->scratch_floats, &st);
  if (st != MS_OK) {
    ms_vae_free(v);
    return ms_diag_add(d, st, NULL, 0, 0, NULL, "out of memory for the VAE work buffers");
  }
  *out = v;
  return MS_OK;
}

void ms_vae_set_trace(ms_vae *v, ms_nn_trace_fn fn, void *ctx) {
  v->trace = fn;
  v->trace_ctx = ctx;
}

size_t ms_vae_memory_bytes(const ms_vae *v) {
  return (4 * v->act + v->scratch_floats) * sizeof(float);
}

int ms_vae_latent_size(const ms_vae *v) { return v->c->image_size >> (v->c->n_levels - 1); }

static ms_status check_n(const ms_vae *v, int n, const void *a, const void *b, ms_diag *d) {
  if (n < 1 || n > v->max_batch)
    return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, NULL, "batch of %d images; this VAE takes 1..%d",
                       n, v->max_batch);
  if (!a || !b) return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, NULL, "NULL buffer");
  return MS_OK;
}

ms_status ms_vae_encode(ms_vae *v, float *mean, float *logvar, const float *x, int n, ms_diag *d) {
  ms_status st = check_n(v, n, mean, x, d);
  if (st != MS_OK) return st;
  if (!logvar) return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, NULL, "NULL buffer");
  ms__nn c = {.m = v->m, .c = v->c, .scratch = v->scratch, .scratch_floats = v->scratch_floats,
              .trace = v->trace, .trace_ctx = v->trace_ctx, .d = d};
  encode(v, &c, mean, logvar, x, (size_t)n);
  return c.st;
}

ms_status ms_vae_decode(ms_vae *v, float *out, const float *z, int n, ms_diag *d) {
  ms_status st = check_n(v, n, out, z, d);
  if (st != MS_OK) return st;
  ms__nn c = {.m = v->m, .c = v->c, .scratch = v->scratch, .scratch_floats = v->scratch_floats,
              .trace = v->trace, .trace_ctx = v->trace_ctx, .d = d};
  decode(v, &c, out, z, (size_t)n);
  return c.st;
}

size_t ms_vae_latent_floats(const ms_vae *v) {
  size_t h = (size_t)ms_vae_latent_size(v);
  return (size_t)v->c->latent_channels * h * h;
}

size_t ms_vae_prior_noise_floats(const ms_vae *v) {
  return ms_vae_latent_floats(v) + (v->c->has_latent_prior ? (size_t)v->c->prior_rank : 0);
}

ms_status ms_vae_prior_latent(const ms_vae *v, float *z, const float *e, int32_t y, ms_diag *d) {
  if (!z || !e) return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, NULL, "NULL buffer");
  const ms_model_config *cf = v->c;
  int K = cf->num_classes > 0 ? cf->num_classes : 1;
  if (y < 0 || y >= K)
    return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, "class",
                       "class %d out of range: this vae has %d class%s (0..%d)", (int)y, K,
                       K == 1 ? "" : "es", K - 1);
  size_t D = ms_vae_latent_floats(v);
  if (!cf->has_latent_prior) {
    memcpy(z, e, D * sizeof *z);
    return MS_OK;
  }
  size_t R = (size_t)cf->prior_rank;
  const ms_tensor *tm = ms_model_find(v->m, "prior.mean");
  const ms_tensor *tf = ms_model_find(v->m, "prior.factor");
  const ms_tensor *ts = ms_model_find(v->m, "prior.std");
  if (!tm || !tf || !ts)
    return ms_diag_add(d, MS_ERR_FORMAT, NULL, 0, 0, "prior", "the latent prior tensors are missing");
  const float *mean = ms_model_data(v->m, tm) + (size_t)y * D;
  const float *fac = ms_model_data(v->m, tf) + (size_t)y * R * D;
  const float *sd = ms_model_data(v->m, ts) + (size_t)y * D;
  /* Fixed order: mean, then each direction r = 0..R-1, then the residual;
   * double accumulation so the sum is accurate at any rank. */
  for (size_t k = 0; k < D; k++) {
    double acc = mean[k];
    for (size_t r = 0; r < R; r++) acc += (double)e[r] * fac[r * D + k];
    acc += (double)sd[k] * e[R + k];
    z[k] = (float)acc;
  }
  return MS_OK;
}

ms_status ms_vae_sample(ms_vae *v, float *out, uint64_t seed, uint64_t first, const int32_t *y,
                        int n, ms_diag *d) {
  ms_status st = check_n(v, n, out, out, d);
  if (st != MS_OK) return st;
  size_t zi = ms_vae_latent_floats(v), ei = ms_vae_prior_noise_floats(v);
  float *z = ms__malloc((size_t)n * zi * sizeof *z), *e = ms__malloc(ei * sizeof *e);
  if (!z || !e) st = ms_diag_add(d, MS_ERR_NOMEM, NULL, 0, 0, NULL, "out of memory");
  for (int j = 0; j < n && st == MS_OK; j++) {
    st = ms_sample_keyed_noise(&seed, e, first + (uint64_t)j, 0, ei);
    if (st != MS_OK)
      ms_diag_add(d, st, NULL, 0, 0, NULL, "latent noise of %zu numbers is too long", ei);
    else
      st = ms_vae_prior_latent(v, z + (size_t)j * zi, e, y ? y[j] : 0, d);
  }
  if (st == MS_OK) st = ms_vae_decode(v, out, z, n, d);
  free(z);
  free(e);
  return st;
}
