/* Private layer helpers shared by unet.c and vae.c.
 *
 * Every op runs in one of two modes. Planning (ctx->plan = 1) touches no
 * data: it only records the largest activation an op produces and the
 * largest kernel scratch it needs, so that the network's buffers can be
 * allocated once. Running (plan = 0) calls the fast kernels. The network
 * code is written once and driven through both modes, so the plan cannot
 * drift from the computation.
 *
 * Weights are found by their state_dict name ("<prefix>.weight"); the loader
 * has already checked that every one exists with the right shape.
 * The first failing op stores its status in ctx->st; later ops do nothing. */
#ifndef MS_NN_PRIVATE_H
#define MS_NN_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include "medsynth/kernels.h"
#include "medsynth/model.h"
#include "medsynth/nn.h"

typedef struct {
  const ms_model *m;
  const ms_model_config *c;
  int plan;
  /* planning results, in floats */
  size_t max_act;
  size_t max_scratch;
  size_t skip_floats;
  /* Convolution weights packed once (ms_conv2d_pack_weights), one slot per
   * ms__conv call in call order, each rounded to 16 floats. wpack_off counts
   * the slots used so far; in planning mode with wpack set, each conv packs
   * its weights into its slot; without wpack (planning) it only counts.
   * prepack 0: convs call ms_conv2d and pack per call. */
  int prepack;
  float *wpack;
  size_t wpack_off;
  /* running */
  float *scratch;
  size_t scratch_floats;
  ms_nn_trace_fn trace;
  void *trace_ctx;
  ms_status st;
  ms_diag *d;
} ms__nn;

/* buf + off while running, NULL while planning (no arithmetic on NULL). */
static inline float *ms__at(const ms__nn *c, float *buf, size_t off) {
  return c->plan ? NULL : buf + off;
}

void ms__nn_note(ms__nn *c, size_t act_floats);
void ms__nn_trace4(ms__nn *c, const char *name, const float *x, size_t N, size_t C, size_t H,
                   size_t W);
void ms__nn_trace2(ms__nn *c, const char *name, const float *x, size_t N, size_t F);

/* y[N,Cout,Ho,Wo] = conv(x[N,C,H,W]) with <prefix>.weight/.bias; k x k kernel. */
void ms__conv(ms__nn *c, float *y, const float *x, const char *prefix, size_t N, size_t C,
              size_t H, size_t W, size_t Cout, size_t k, size_t stride, size_t pad);
/* y = SiLU(GroupNorm(x)) with <prefix>.weight/.bias; y, x: [N, C, HW]. */
void ms__gn_silu(ms__nn *c, float *y, const float *x, const char *prefix, size_t N, size_t C,
                 size_t HW);
/* y[M,out] = x[M,in] W^T + b with <prefix>.weight/.bias. */
void ms__linear(ms__nn *c, float *y, const float *x, const char *prefix, size_t M, size_t in,
                size_t out);
/* out = x + proj(attention(qkv(GroupNorm(x)))): out, x: [N, C, H, W];
 * t1 >= N*C*HW and t2 >= N*3C*HW floats of work space. out != x. */
void ms__attn_block(ms__nn *c, float *out, const float *x, const char *prefix, size_t N,
                    size_t C, size_t H, size_t W, float *t1, float *t2);
/* ResBlock: out[N,cout,H,W] from x[N,cin,H,W]; emb_act [N, ed] (already
 * SiLU'd) or NULL; t1, t2 >= N*max(cin,cout)*HW; ebuf >= N*cout. out != x. */
void ms__res_block(ms__nn *c, float *out, const float *x, const char *prefix, size_t N,
                   size_t cin, size_t cout, size_t H, size_t W, const float *emb_act, size_t ed,
                   float *t1, float *t2, float *ebuf);
/* y[N,C,H/2,W/2]: strided conv (<prefix>.conv) or 2x2 average pool. */
void ms__downsample(ms__nn *c, float *y, const float *x, const char *prefix, int conv, size_t N,
                    size_t C, size_t H, size_t W);
/* y[N,C,2H,2W] = conv(nearest2x(x)); tmp >= N*C*4HW. */
void ms__upsample(ms__nn *c, float *y, const float *x, const char *prefix, size_t N, size_t C,
                  size_t H, size_t W, float *tmp);

/* Allocates `count` buffers of n floats each plus scratch; NULL on failure. */
float *ms__nn_alloc(size_t n_floats, ms_status *st);
/* *p = ms__nn_alloc(n_floats); *st = MS_ERR_NOMEM when that fails, else
 * left as it was. */
void ms__nn_alloc_to(float **p, size_t n_floats, ms_status *st);

/* A zeroed network object of `size` bytes for model m, when m's
 * architecture is `arch` and max_batch is in 1..65536; else NULL with *st
 * set and a diagnostic in d (also when memory runs out). */
void *ms__nn_net_new(const ms_model *m, ms_arch arch, int max_batch, size_t size,
                     ms_diag *d, ms_status *st);

#endif
