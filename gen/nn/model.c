/* Model loading (medsynth/model.h): config parsing, the architecture's tensor
 * list, and the checked HDF5 loader.
 *
 * Invariants:
 *  - The tensor list is a pure function of the config (ms_model_expected_
 *    tensors) and mirrors models/reference/medsynth_ref.py key by key; the
 *    forward passes in unet.c/vae.c look weights up by the same names.
 *  - A loaded model holds exactly the expected tensors, each with the
 *    expected shape, float32 on disk, finite; all weights live in one arena.
 *  - Nothing here prints or aborts; HDF5's automatic error printing is off
 *    for the duration of the load and restored afterwards.
 * References: docs/model-format.md; HDF5 1.10 C API (H5Literate, H5Aread). */
#include "medsynth/model.h"
#include "core/names.h"
#include "core/alloc.h"
#include "core/diag.h"
#include "core/jsoncheck.h"
#include "core/jsonloc.h"
#include "core/guard.h"
#include "core/h5super.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

/* ------------------------------------------------------------ enum names */

static const char *const arch_names[] = {"unet", "vae"};
static const char *const sched_names[] = {"linear", "cosine"};
static const char *const pred_names[] = {"eps", "v"};
static const char *const down_names[] = {"conv", "avgpool"};

MS__NAME_FNS(ms_arch_name, ms_arch_from_name, ms_arch, arch_names, MS_ARCH_COUNT, "unknown")
MS__NAME_FNS(ms_schedule_type_name, ms_schedule_type_from_name, ms_schedule_type, sched_names,
             MS_SCHEDULE_COUNT, "unknown")
MS__NAME_FNS(ms_prediction_name, ms_prediction_from_name, ms_prediction, pred_names,
             MS_PRED_COUNT, "unknown")
MS__NAME_FNS(ms_downsample_name, ms_downsample_from_name, ms_downsample, down_names,
             MS_DOWNSAMPLE_COUNT, "unknown")

/* ------------------------------------------------------------ config */

typedef struct {
  const char *file;
  ms_diag *d;
  int errors;
  ms__jcheck jc; /* member checks, reporting through cfg_report */
} cfgctx;

static void cfg_err(cfgctx *c, const char *ptr, const char *fmt, const char *arg) {
  c->errors++;
  ms_diag_add(c->d, MS_ERR_FORMAT, c->file, 0, 0, ptr, fmt, arg ? arg : "");
}

static void cfg_report(void *ctx, const char *ptr, const char *msg) {
  cfg_err(ctx, *ptr ? ptr : NULL, "config: %s", msg);
}

/* The member checks (core/jsoncheck) with a default for an absent or
 * invalid value. */
static const cJSON *get(cfgctx *c, const cJSON *o, const char *ptr, const char *key, int required) {
  return ms__jc_get(&c->jc, o, ptr, key, required);
}

static int get_int(cfgctx *c, const cJSON *o, const char *ptr, const char *key, int required,
                   int def, int lo, int hi) {
  int64_t v;
  return ms__jc_int(&c->jc, o, ptr, key, required, lo, hi, &v) == 0 ? (int)v : def;
}

static double get_num(cfgctx *c, const cJSON *o, const char *ptr, const char *key, int required,
                      double def) {
  double v;
  return ms__jc_number(&c->jc, o, ptr, key, required, &v) == 0 ? v : def;
}

static const char *get_str(cfgctx *c, const cJSON *o, const char *ptr, const char *key,
                           int required, const char *def) {
  const char *v = ms__jc_string(&c->jc, o, ptr, key, required);
  return v ? v : def;
}

static int get_int_list(cfgctx *c, const cJSON *o, const char *optr, const char *key,
                        int required, int *out, int max, int lo) {
  const cJSON *v = get(c, o, optr, key, required);
  if (!v) return 0;
  char ptr[64];
  ms__jsonptr_key(ptr, sizeof ptr, optr, key);
  if (!cJSON_IsArray(v)) {
    cfg_err(c, ptr, "config: expected an array of integers%s", "");
    return 0;
  }
  int n = cJSON_GetArraySize(v);
  if (n > max) {
    char m[32];
    snprintf(m, sizeof m, "%d", max);
    cfg_err(c, ptr, "config: at most %s entries are supported", m);
    return 0;
  }
  int i = 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, v) {
    char p[96];
    snprintf(p, sizeof p, "%s/%d", ptr, i);
    if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) || e->valuedouble < lo ||
        e->valuedouble > 1 << 20) {
      cfg_err(c, p, "config: expected a positive integer%s", "");
      out[i++] = lo;
      continue;
    }
    out[i++] = (int)e->valuedouble;
  }
  return n;
}

ms_status ms_model_config_parse(ms_model_config *out, const char *json, const char *file,
                                ms_diag *d) {
  memset(out, 0, sizeof *out);
  cfgctx c = {file, d, 0, {cfg_report, NULL, 0}};
  c.jc.ctx = &c;
  const char *end = NULL;
  /* NULL from cJSON with errno ENOMEM: an allocation failed, not the syntax
   * (core/json.h). */
  errno = 0;
  cJSON *root = json ? cJSON_ParseWithOpts(json, &end, 1) : NULL;
  if (!root && json && errno == ENOMEM)
    return ms__diag_nomem(d, file, "config", "the parsed config");
  if (!root || !cJSON_IsObject(root)) {
    cJSON_Delete(root);
    return ms_diag_add(d, MS_ERR_FORMAT, file, 0, 0, "config",
                       "the config attribute is not a JSON object");
  }
  const char *arch = get_str(&c, root, "", "architecture", 1, NULL);
  out->arch = ms_arch_from_name(arch);
  if (arch && out->arch == MS_ARCH_COUNT)
    cfg_err(&c, "/architecture", "config: unknown architecture \"%s\" (expected unet or vae)",
            arch);
  out->image_size = get_int(&c, root, "", "image_size", 1, 8, 1, 1 << 16);
  out->image_channels = get_int(&c, root, "", "image_channels", 1, 1, 1, 1024);
  out->n_levels = get_int_list(&c, root, "", "channels", 1, out->channels,
                               MS_MODEL_MAX_LEVELS, 1);
  if (cJSON_GetObjectItemCaseSensitive(root, "channels") && out->n_levels == 0 && !c.errors)
    cfg_err(&c, "/channels", "config: at least one level is required%s", "");
  out->blocks_per_level = get_int(&c, root, "", "blocks_per_level", 1, 1, 1, 64);
  out->heads = get_int(&c, root, "", "heads", 0, 1, 1, 1024);
  out->groups = get_int(&c, root, "", "groups", 0, 32, 1, 1 << 16);
  out->norm_eps = (float)get_num(&c, root, "", "norm_eps", 0, 1e-5);
  if (out->norm_eps <= 0) cfg_err(&c, "/norm_eps", "config: norm_eps must be > 0%s", "");
  const cJSON *inten = cJSON_GetObjectItemCaseSensitive(root, "intensity");
  out->intensity_scale = 1.0;
  out->intensity_offset = 0.0;
  snprintf(out->intensity_unit, sizeof out->intensity_unit, "a.u.");
  if (inten) {
    if (!cJSON_IsObject(inten)) {
      cfg_err(&c, "/intensity", "config: expected an object {scale, offset, unit}%s", "");
    } else {
      out->intensity_scale = get_num(&c, inten, "/intensity", "scale", 1, 1.0);
      out->intensity_offset = get_num(&c, inten, "/intensity", "offset", 1, 0.0);
      const char *u = get_str(&c, inten, "/intensity", "unit", 0, "a.u.");
      if (strlen(u) >= sizeof out->intensity_unit)
        cfg_err(&c, "/intensity/unit", "config: unit \"%s\" is too long", u);
      else
        snprintf(out->intensity_unit, sizeof out->intensity_unit, "%s", u);
    }
  }
  if (out->arch == MS_ARCH_UNET) {
    out->n_attention = get_int_list(&c, root, "", "attention_resolutions",
                                    0, out->attention_resolutions, MS_MODEL_MAX_LEVELS, 1);
    const char *ds = get_str(&c, root, "", "downsample", 0, "conv");
    out->downsample = ms_downsample_from_name(ds);
    if (out->downsample == MS_DOWNSAMPLE_COUNT)
      cfg_err(&c, "/downsample", "config: unknown downsample \"%s\" (expected conv or avgpool)",
              ds);
    out->num_classes = get_int(&c, root, "", "num_classes", 0, 0, 0, 1 << 20);
    const char *pr = get_str(&c, root, "", "prediction", 0, "eps");
    out->prediction = ms_prediction_from_name(pr);
    if (out->prediction == MS_PRED_COUNT)
      cfg_err(&c, "/prediction", "config: unknown prediction \"%s\" (expected eps or v)", pr);
    const cJSON *s = get(&c, root, "", "schedule", 1);
    if (s && !cJSON_IsObject(s)) {
      cfg_err(&c, "/schedule", "config: expected an object {type, T, beta_start, beta_end}%s", "");
    } else if (s) {
      const char *ty = get_str(&c, s, "/schedule", "type", 1, "linear");
      out->schedule.type = ms_schedule_type_from_name(ty);
      if (out->schedule.type == MS_SCHEDULE_COUNT)
        cfg_err(&c, "/schedule/type", "config: unknown schedule \"%s\" (expected linear or cosine)",
                ty);
      out->schedule.T = get_int(&c, s, "/schedule", "T", 1, 1000, 1, 1 << 20);
      int lin = out->schedule.type == MS_SCHEDULE_LINEAR;
      out->schedule.beta_start = get_num(&c, s, "/schedule", "beta_start", lin, 1e-4);
      out->schedule.beta_end = get_num(&c, s, "/schedule", "beta_end", lin, 2e-2);
      if (lin && !(out->schedule.beta_start > 0 && out->schedule.beta_start <= out->schedule.beta_end &&
                   out->schedule.beta_end < 1))
        cfg_err(&c, "/schedule", "config: need 0 < beta_start <= beta_end < 1%s", "");
    }
  } else if (out->arch == MS_ARCH_VAE) {
    out->latent_channels = get_int(&c, root, "", "latent_channels", 1, 4, 1, 4096);
    out->num_classes = get_int(&c, root, "", "num_classes", 0, 0, 0, 1 << 16);
    const cJSON *lp = cJSON_GetObjectItemCaseSensitive(root, "latent_prior");
    if (lp && !cJSON_IsNull(lp)) {
      if (!cJSON_IsObject(lp)) {
        cfg_err(&c, "/latent_prior", "config: expected an object {rank}%s", "");
      } else {
        out->has_latent_prior = 1;
        out->prior_rank = get_int(&c, lp, "/latent_prior", "rank", 1, 1, 1, 4096);
      }
    }
    if (out->num_classes > 0 && !out->has_latent_prior)
      cfg_err(&c, "/num_classes",
              "config: a class-conditional vae needs a latent_prior (the classes select its "
              "Gaussian)%s", "");
  }
  /* Consistency: every normalised channel count must divide into groups
   * (concatenations are sums of level widths, so checking the widths is
   * enough), attention widths into heads, and the image must halve evenly. */
  if (!c.errors && out->arch != MS_ARCH_COUNT) {
    for (int l = 0; l < out->n_levels; l++) {
      char p[32];
      snprintf(p, sizeof p, "/channels/%d", l);
      if (out->channels[l] % out->groups) {
        char m[64];
        snprintf(m, sizeof m, "%d is not divisible by groups = %d", out->channels[l], out->groups);
        cfg_err(&c, p, "config: %s", m);
      }
      int attn = l == out->n_levels - 1;
      for (int a = 0; a < out->n_attention; a++)
        if ((out->image_size >> l) == out->attention_resolutions[a]) attn = 1;
      if (attn && out->channels[l] % out->heads) {
        char m[64];
        snprintf(m, sizeof m, "%d is not divisible by heads = %d", out->channels[l], out->heads);
        cfg_err(&c, p, "config: %s", m);
      }
    }
    if (out->n_levels > 0 && (out->image_size % (1 << (out->n_levels - 1)))) {
      char m[64];
      snprintf(m, sizeof m, "%d is not divisible by 2^(levels-1) = %d", out->image_size,
               1 << (out->n_levels - 1));
      cfg_err(&c, "/image_size", "config: %s", m);
    }
  }
  cJSON_Delete(root);
  return c.errors ? MS_ERR_FORMAT : MS_OK;
}

/* ------------------------------------------------------ tensor layout */

typedef struct {
  ms_model_tensor_fn fn;
  void *ctx;
} walker;

static void emit(walker *w, const char *name, int rank, int64_t a, int64_t b, int64_t c,
                 int64_t d) {
  int64_t shape[4] = {a, b, c, d};
  w->fn(w->ctx, name, rank, shape);
}

static void emit_p(walker *w, const char *prefix, const char *suffix, int rank, int64_t a,
                   int64_t b, int64_t c, int64_t d) {
  char name[256];
  snprintf(name, sizeof name, "%s%s", prefix, suffix);
  emit(w, name, rank, a, b, c, d);
}

static void emit_conv(walker *w, const char *prefix, int64_t cout, int64_t cin, int64_t k) {
  emit_p(w, prefix, ".weight", 4, cout, cin, k, k);
  emit_p(w, prefix, ".bias", 1, cout, 0, 0, 0);
}

static void emit_norm(walker *w, const char *prefix, int64_t c) {
  emit_p(w, prefix, ".weight", 1, c, 0, 0, 0);
  emit_p(w, prefix, ".bias", 1, c, 0, 0, 0);
}

static void emit_res(walker *w, const char *p, int64_t cin, int64_t cout, int64_t ed) {
  char q[160];
  snprintf(q, sizeof q, "%s.norm1", p);
  emit_norm(w, q, cin);
  snprintf(q, sizeof q, "%s.conv1", p);
  emit_conv(w, q, cout, cin, 3);
  if (ed) {
    emit_p(w, p, ".emb.weight", 2, cout, ed, 0, 0);
    emit_p(w, p, ".emb.bias", 1, cout, 0, 0, 0);
  }
  snprintf(q, sizeof q, "%s.norm2", p);
  emit_norm(w, q, cout);
  snprintf(q, sizeof q, "%s.conv2", p);
  emit_conv(w, q, cout, cout, 3);
  if (cin != cout) {
    snprintf(q, sizeof q, "%s.skip", p);
    emit_conv(w, q, cout, cin, 1);
  }
}

static void emit_attn(walker *w, const char *p, int64_t c) {
  char q[160];
  snprintf(q, sizeof q, "%s.norm", p);
  emit_norm(w, q, c);
  snprintf(q, sizeof q, "%s.qkv", p);
  emit_conv(w, q, 3 * c, c, 1);
  snprintf(q, sizeof q, "%s.proj", p);
  emit_conv(w, q, c, c, 1);
}

static void emit_mid(walker *w, const char *p, int64_t c, int64_t ed) {
  char q[96];
  snprintf(q, sizeof q, "%smid.res1", p);
  emit_res(w, q, c, c, ed);
  snprintf(q, sizeof q, "%smid.attn", p);
  emit_attn(w, q, c);
  snprintf(q, sizeof q, "%smid.res2", p);
  emit_res(w, q, c, c, ed);
}

static int has_attn(const ms_model_config *c, int level) {
  for (int a = 0; a < c->n_attention; a++)
    if ((c->image_size >> level) == c->attention_resolutions[a]) return 1;
  return 0;
}

ms_status ms_model_expected_tensors(const ms_model_config *c, ms_model_tensor_fn fn, void *ctx) {
  walker w = {fn, ctx};
  int L = c->n_levels, nb = c->blocks_per_level;
  if (L < 1 || L > MS_MODEL_MAX_LEVELS || nb < 1) return MS_ERR_INVALID;
  char p[96];
  if (c->arch == MS_ARCH_UNET) {
    int64_t ch0 = c->channels[0], ed = 4 * ch0;
    emit(&w, "time_embed.0.weight", 2, ed, ch0, 0, 0);
    emit(&w, "time_embed.0.bias", 1, ed, 0, 0, 0);
    emit(&w, "time_embed.2.weight", 2, ed, ed, 0, 0);
    emit(&w, "time_embed.2.bias", 1, ed, 0, 0, 0);
    if (c->num_classes) emit(&w, "class_embed.weight", 2, c->num_classes + 1, ed, 0, 0);
    emit_conv(&w, "conv_in", ch0, c->image_channels, 3);
    int64_t skips[MS_MODEL_MAX_LEVELS * 66];
    int ns = 0;
    skips[ns++] = ch0;
    int64_t cur = ch0;
    for (int l = 0; l < L; l++) {
      for (int b = 0; b < nb; b++) {
        snprintf(p, sizeof p, "down.%d.res.%d", l, b);
        emit_res(&w, p, cur, c->channels[l], ed);
        cur = c->channels[l];
        if (has_attn(c, l)) {
          snprintf(p, sizeof p, "down.%d.attn.%d", l, b);
          emit_attn(&w, p, cur);
        }
        skips[ns++] = cur;
      }
      if (l < L - 1) {
        if (c->downsample == MS_DOWNSAMPLE_CONV) {
          snprintf(p, sizeof p, "down.%d.down.conv", l);
          emit_conv(&w, p, cur, cur, 3);
        }
        skips[ns++] = cur;
      }
    }
    emit_mid(&w, "", cur, ed);
    for (int l = L - 1; l >= 0; l--) {
      for (int b = 0; b <= nb; b++) {
        snprintf(p, sizeof p, "up.%d.res.%d", l, b);
        emit_res(&w, p, cur + skips[--ns], c->channels[l], ed);
        cur = c->channels[l];
        if (has_attn(c, l)) {
          snprintf(p, sizeof p, "up.%d.attn.%d", l, b);
          emit_attn(&w, p, cur);
        }
      }
      if (l > 0) {
        snprintf(p, sizeof p, "up.%d.up.conv", l);
        emit_conv(&w, p, cur, cur, 3);
      }
    }
    emit_norm(&w, "norm_out", cur);
    emit_conv(&w, "conv_out", c->image_channels, cur, 3);
    return MS_OK;
  }
  if (c->arch == MS_ARCH_VAE) {
    int64_t cur = c->channels[0];
    emit_conv(&w, "encoder.conv_in", cur, c->image_channels, 3);
    for (int l = 0; l < L; l++) {
      for (int b = 0; b < nb; b++) {
        snprintf(p, sizeof p, "encoder.down.%d.res.%d", l, b);
        emit_res(&w, p, cur, c->channels[l], 0);
        cur = c->channels[l];
      }
      if (l < L - 1) {
        snprintf(p, sizeof p, "encoder.down.%d.down.conv", l);
        emit_conv(&w, p, cur, cur, 3);
      }
    }
    emit_mid(&w, "encoder.", cur, 0);
    emit_norm(&w, "encoder.norm_out", cur);
    emit_conv(&w, "encoder.conv_out", 2 * (int64_t)c->latent_channels, cur, 3);
    cur = c->channels[L - 1];
    emit_conv(&w, "decoder.conv_in", cur, c->latent_channels, 3);
    emit_mid(&w, "decoder.", cur, 0);
    for (int l = L - 1; l >= 0; l--) {
      for (int b = 0; b <= nb; b++) {
        snprintf(p, sizeof p, "decoder.up.%d.res.%d", l, b);
        emit_res(&w, p, cur, c->channels[l], 0);
        cur = c->channels[l];
      }
      if (l > 0) {
        snprintf(p, sizeof p, "decoder.up.%d.up.conv", l);
        emit_conv(&w, p, cur, cur, 3);
      }
    }
    emit_norm(&w, "decoder.norm_out", cur);
    emit_conv(&w, "decoder.conv_out", c->image_channels, cur, 3);
    if (c->has_latent_prior) {
      int L1 = c->n_levels - 1;
      int64_t h = c->image_size >> L1, D = (int64_t)c->latent_channels * h * h;
      int64_t K = c->num_classes > 0 ? c->num_classes : 1;
      emit(&w, "prior.factor", 3, K, c->prior_rank, D, 0);
      emit(&w, "prior.mean", 2, K, D, 0, 0);
      emit(&w, "prior.std", 2, K, D, 0, 0);
    }
    return MS_OK;
  }
  return MS_ERR_INVALID;
}

/* ------------------------------------------------------------ the model */

typedef struct {
  char *name;
  char *value;
} str_attr;

struct ms_model {
  ms_model_config cfg;
  char *config_json;
  ms_tensor *tensors;  /* definition order */
  size_t n_tensors;
  size_t *sorted;      /* indices of tensors sorted by name (strcmp) */
  char *names;         /* storage of all tensor names */
  float *arena;
  size_t arena_floats;
  str_attr *attrs;
  size_t n_attrs;
  uint64_t hash;
};

typedef struct {
  ms_model *m;
  size_t names_len;
  int fail;
} collect;

static void count_fn(void *ctx, const char *name, int rank, const int64_t *shape) {
  collect *c = ctx;
  (void)rank;
  (void)shape;
  c->m->n_tensors++;
  c->names_len += strlen(name) + 1;
}

static void fill_fn(void *ctx, const char *name, int rank, const int64_t *shape) {
  collect *c = ctx;
  ms_model *m = c->m;
  ms_tensor *t = &m->tensors[m->n_tensors++];
  size_t l = strlen(name) + 1;
  memcpy(m->names + c->names_len, name, l);
  t->name = m->names + c->names_len;
  c->names_len += l;
  t->rank = rank;
  size_t count = 1;
  for (int i = 0; i < 4; i++) {
    t->shape[i] = i < rank ? shape[i] : 0;
    if (i < rank && (shape[i] <= 0 || __builtin_mul_overflow(count, (size_t)shape[i], &count)))
      c->fail = 1;
  }
  t->count = count;
  t->offset = m->arena_floats;
  if (__builtin_add_overflow(m->arena_floats, count, &m->arena_floats)) c->fail = 1;
}

static int cmp_idx(const void *a, const void *b, void *ctx) {
  const ms_model *m = ctx;
  return strcmp(m->tensors[*(const size_t *)a].name, m->tensors[*(const size_t *)b].name);
}

void ms_model_free(ms_model *m) {
  if (!m) return;
  free(m->config_json);
  free(m->tensors);
  free(m->sorted);
  free(m->names);
  free(m->arena);
  for (size_t i = 0; i < m->n_attrs; i++) {
    free(m->attrs[i].name);
    free(m->attrs[i].value);
  }
  free(m->attrs);
  free(m);
}

const ms_model_config *ms_model_config_of(const ms_model *m) { return &m->cfg; }
const char *ms_model_config_json(const ms_model *m) { return m->config_json; }
uint64_t ms_model_weights_xxh64(const ms_model *m) { return m->hash; }
size_t ms_model_param_count(const ms_model *m) { return m->arena_floats; }
size_t ms_model_tensor_count(const ms_model *m) { return m->n_tensors; }
const ms_tensor *ms_model_tensor_at(const ms_model *m, size_t i) {
  return i < m->n_tensors ? &m->tensors[i] : NULL;
}
const float *ms_model_data(const ms_model *m, const ms_tensor *t) { return m->arena + t->offset; }

const char *ms_model_attr(const ms_model *m, const char *name) {
  for (size_t i = 0; i < m->n_attrs; i++)
    if (!strcmp(m->attrs[i].name, name)) return m->attrs[i].value;
  return NULL;
}

const ms_tensor *ms_model_find(const ms_model *m, const char *name) {
  size_t lo = 0, hi = m->n_tensors;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const ms_tensor *t = &m->tensors[m->sorted[mid]];
    int c = strcmp(t->name, name);
    if (!c) return t;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

uint64_t ms_model_hash_tensors(const ms_tensor *const *sorted, size_t n, const float *arena) {
  XXH64_state_t *st = XXH64_createState();
  if (!st) return 0;
  XXH64_reset(st, 0);
  for (size_t i = 0; i < n; i++) {
    const ms_tensor *t = sorted[i];
    XXH64_update(st, t->name, strlen(t->name) + 1);
    uint8_t hdr[4 + 8 * 4];
    uint32_t r = (uint32_t)t->rank;
    for (int b = 0; b < 4; b++) hdr[b] = (uint8_t)(r >> (8 * b));
    for (int k = 0; k < t->rank; k++)
      for (int b = 0; b < 8; b++) hdr[4 + 8 * k + b] = (uint8_t)((uint64_t)t->shape[k] >> (8 * b));
    XXH64_update(st, hdr, 4 + 8 * (size_t)t->rank);
    /* float32 data; the library targets little-endian hosts (checked in
     * docs/model-format.md), so the in-memory bytes are the LE bytes. */
    XXH64_update(st, arena + t->offset, t->count * sizeof(float));
  }
  uint64_t h = XXH64_digest(st);
  XXH64_freeState(st);
  return h;
}

/* Longest string attribute read (the config and metadata are a few KB). */
#define MAX_ATTR_TEXT ((size_t)64 << 20)

/* Reads a string attribute (fixed or variable length) of `obj`; malloc'd
 * copy or NULL when absent, not one string, or implausibly long, or
 * (*nomem set) when the copy cannot be allocated. */
static char *read_str_attr(hid_t obj, const char *name, int *nomem) {
  *nomem = 0;
  if (H5Aexists(obj, name) <= 0) return NULL;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a < 0) return NULL;
  char *out = NULL;
  hid_t ft = H5Aget_type(a);
  hid_t sp = H5Aget_space(a);
  hid_t mt = -1;
  H5T_cset_t cs = ft >= 0 ? H5Tget_cset(ft) : H5T_CSET_ERROR;
  if (ft >= 0 && sp >= 0 && cs >= 0 && H5Tget_class(ft) == H5T_STRING &&
      H5Sget_simple_extent_npoints(sp) == 1 && (mt = H5Tcopy(H5T_C_S1)) >= 0 &&
      H5Tset_cset(mt, cs) >= 0) {
    htri_t var = H5Tis_variable_str(ft);
    if (var > 0) {
      char *v = NULL;
      if (H5Tset_size(mt, H5T_VARIABLE) >= 0 && H5Aread(a, mt, &v) >= 0 && v) {
        out = ms__strndup(v, MAX_ATTR_TEXT);
        if (!out) *nomem = 1;
        H5free_memory(v);
      }
    } else if (var == 0) {
      size_t n = H5Tget_size(ft);
      if (n > 0 && n <= MAX_ATTR_TEXT && H5Tset_size(mt, n + 1) >= 0 &&
          H5Tset_strpad(mt, H5T_STR_NULLTERM) >= 0 && !(out = ms__calloc(n + 2, 1)))
        *nomem = 1;
      else if (out && H5Aread(a, mt, out) < 0) {
        free(out);
        out = NULL;
      }
    }
  }
  if (mt >= 0) H5Tclose(mt);
  if (sp >= 0) H5Sclose(sp);
  if (ft >= 0) H5Tclose(ft);
  H5Aclose(a);
  return out;
}

static int read_int_attr(hid_t obj, const char *name, int64_t *v) {
  if (H5Aexists(obj, name) <= 0) return 0;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a < 0) return -1;
  hid_t ft = H5Aget_type(a), sp = H5Aget_space(a);
  int ok = ft >= 0 && sp >= 0 && H5Tget_class(ft) == H5T_INTEGER &&
           H5Sget_simple_extent_npoints(sp) == 1 && H5Aread(a, H5T_NATIVE_INT64, v) >= 0;
  if (sp >= 0) H5Sclose(sp);
  if (ft >= 0) H5Tclose(ft);
  H5Aclose(a);
  return ok ? 1 : -1;
}

typedef struct {
  ms_model *m;
  const char *file;
  ms_diag *d;
  unsigned char *seen;
  int errors;
  hid_t file_id;
  ms__guard *g;
} loadctx;

static void shape_str(char *buf, size_t cap, int rank, const int64_t *shape) {
  size_t n = 0;
  n += (size_t)snprintf(buf + n, cap - n, "[");
  for (int i = 0; i < rank && n < cap; i++)
    n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
  if (n < cap) snprintf(buf + n, cap - n, "]");
}

static herr_t visit_link(hid_t g, const char *name, const H5L_info_t *info, void *ud) {
  loadctx *c = ud;
  (void)info;
  const ms_tensor *t = ms_model_find(c->m, name);
  if (!t) {
    c->errors++;
    ms_diag_add(c->d, MS_ERR_FORMAT, c->file, 0, 0, name,
                "unexpected tensor: not part of the %s architecture described by the config",
                ms_arch_name(c->m->cfg.arch));
    return 0;
  }
  size_t idx = (size_t)(t - c->m->tensors);
  c->seen[idx] = 1;
  ms__guard_at(c->g, "%s", name);
  hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
  if (ds < 0) {
    c->errors++;
    ms_diag_add(c->d, MS_ERR_FORMAT, c->file, 0, 0, name, "not a dataset or unreadable");
    return 0;
  }
  hid_t ft = H5Dget_type(ds), sp = H5Dget_space(ds);
  int ok = 1;
  if (ft < 0 || H5Tget_class(ft) != H5T_FLOAT || H5Tget_size(ft) != 4) {
    c->errors++;
    ok = 0;
    ms_diag_add(c->d, MS_ERR_FORMAT, c->file, 0, 0, name, "dtype must be float32");
  }
  hsize_t dims[8] = {0};
  int rank = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
  int shape_ok = rank == t->rank;
  if (rank > 0 && rank <= 8) H5Sget_simple_extent_dims(sp, dims, NULL);
  for (int i = 0; shape_ok && i < rank; i++) shape_ok = (int64_t)dims[i] == t->shape[i];
  if (!shape_ok) {
    char want[96], got[96];
    int64_t g64[8] = {0};
    for (int i = 0; i < rank && i < 8; i++) g64[i] = (int64_t)dims[i];
    shape_str(want, sizeof want, t->rank, t->shape);
    shape_str(got, sizeof got, rank > 8 ? 8 : (rank < 0 ? 0 : rank), g64);
    c->errors++;
    ok = 0;
    ms_diag_add(c->d, MS_ERR_FORMAT, c->file, 0, 0, name, "shape %s does not match the config (expected %s)",
                got, want);
  }
  if (ok) {
    float *dst = c->m->arena + t->offset;
    if (H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0) {
      c->errors++;
      ms_diag_add(c->d, MS_ERR_FORMAT, c->file, 0, 0, name,
                  "cannot read tensor data (truncated or corrupt file)");
    } else {
      for (size_t i = 0; i < t->count; i++)
        if (!isfinite(dst[i])) {
          c->errors++;
          ms_diag_add(c->d, MS_ERR_DATA, c->file, 0, 0, name,
                      "non-finite weight (%s) at flat index %zu", isnan(dst[i]) ? "NaN" : "Inf", i);
          break;
        }
    }
  }
  if (sp >= 0) H5Sclose(sp);
  if (ft >= 0) H5Tclose(ft);
  H5Dclose(ds);
  return 0;
}

/* The metadata attributes kept by the model (all strings). They are read by
 * name rather than with H5Aiterate2: HDF5 1.10's attribute iteration can
 * crash on a corrupt attribute message (found by byte-flipping model files),
 * while opening by name fails cleanly. */
static const char *const k_meta_attrs[] = {"weights_xxh64", "description", "training_data",
                                           "licence", "created_by"};

static int read_meta(ms_model *m, hid_t root, ms__guard *g) {
  size_t n = sizeof k_meta_attrs / sizeof *k_meta_attrs;
  m->attrs = ms__calloc(n, sizeof *m->attrs);
  if (!m->attrs) return -1;
  for (size_t i = 0; i < n; i++) {
    ms__guard_at(g, "attribute \"%s\"", k_meta_attrs[i]);
    int nomem;
    char *v = read_str_attr(root, k_meta_attrs[i], &nomem);
    if (nomem) return -1;
    if (!v) continue;
    char *nm = ms__strdup(k_meta_attrs[i]);
    if (!nm) {
      free(v);
      return -1;
    }
    m->attrs[m->n_attrs].name = nm;
    m->attrs[m->n_attrs].value = v;
    m->n_attrs++;
  }
  return 0;
}

/* Tensor list, name index and arena of m from m->cfg (already parsed). */
static ms_status build_layout(ms_model *m, const char *path, ms_diag *d) {
  collect cc = {m, 0, 0};
  if (ms_model_expected_tensors(&m->cfg, count_fn, &cc) != MS_OK)
    return ms_diag_add(d, MS_ERR_FORMAT, path, 0, 0, "config", "inconsistent architecture config");
  m->tensors = ms__calloc(m->n_tensors ? m->n_tensors : 1, sizeof *m->tensors);
  m->sorted = ms__calloc(m->n_tensors ? m->n_tensors : 1, sizeof *m->sorted);
  m->names = ms__malloc(cc.names_len ? cc.names_len : 1);
  if (!m->tensors || !m->sorted || !m->names) return ms__diag_nomem(d, path, NULL, "the tensor table");
  m->n_tensors = 0;
  cc.names_len = 0;
  ms_model_expected_tensors(&m->cfg, fill_fn, &cc);
  if (cc.fail || m->arena_floats > ((size_t)1 << 40) / sizeof(float))
    return ms_diag_add(d, MS_ERR_FORMAT, path, 0, 0, "config", "model too large");
  for (size_t i = 0; i < m->n_tensors; i++) m->sorted[i] = i;
  qsort_r(m->sorted, m->n_tensors, sizeof *m->sorted, cmp_idx, m);
  m->arena = ms__malloc((m->arena_floats ? m->arena_floats : 1) * sizeof(float));
  if (!m->arena) {
    char what[64];
    snprintf(what, sizeof what, "%zu weights", m->arena_floats);
    return ms__diag_nomem(d, path, NULL, what);
  }
  return MS_OK;
}

/* The whole HDF5 part of loading; runs in the guarded child (see
 * ms_model_load). */
static ms_status load_open(ms_model *m, const char *path, ms__guard *g, ms_diag *d) {
  ms__guard_at(g, "superblock");
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0)
    return ms_diag_add(d, MS_ERR_FORMAT, path, 0, 0, NULL,
                       "not a readable HDF5 model file (truncated or corrupt?)");
  ms_status st = MS_OK;
  ms__guard_at(g, "root group");
  hid_t root = H5Gopen2(f, "/", H5P_DEFAULT);
  if (root < 0) {
    H5Fclose(f);
    return ms_diag_add(d, MS_ERR_FORMAT, path, 0, 0, NULL, "cannot open the root group");
  }
  int64_t ver = 1;
  ms__guard_at(g, "attribute \"format_version\"");
  int r = read_int_attr(root, "format_version", &ver);
  if (r < 0) {
    st = ms_diag_add(d, MS_ERR_FORMAT, path, 0, 0, "format_version", "must be an integer");
    goto out;
  }
  if (ver != 1) {
    st = ms_diag_add(d, MS_ERR_UNSUPPORTED, path, 0, 0, "format_version",
                     "model format version %lld is not supported (this build reads version 1)",
                     (long long)ver);
    goto out;
  }
  ms__guard_at(g, "attribute \"config\"");
  int nomem;
  m->config_json = read_str_attr(root, "config", &nomem);
  if (nomem) {
    st = ms__diag_nomem(d, path, "config", "the config text");
    goto out;
  }
  if (!m->config_json) {
    st = ms_diag_add(d, MS_ERR_FORMAT, path, 0, 0, "config",
                     "missing root attribute 'config' (JSON string); not a medsynth model?");
    goto out;
  }
  if ((st = ms_model_config_parse(&m->cfg, m->config_json, path, d)) != MS_OK) goto out;
  if (read_meta(m, root, g) < 0) {
    st = ms__diag_nomem(d, path, NULL, "the metadata attributes");
    goto out;
  }
  if ((st = build_layout(m, path, d)) != MS_OK) goto out;
  unsigned char *seen = ms__calloc(m->n_tensors ? m->n_tensors : 1, 1);
  if (!seen) {
    st = ms__diag_nomem(d, path, NULL, "the tensor list");
    goto out;
  }
  loadctx lc = {m, path, d, seen, 0, f, g};
  hsize_t idx = 0;
  ms__guard_at(g, "tensor list");
  if (H5Literate(root, H5_INDEX_NAME, H5_ITER_INC, &idx, visit_link, &lc) < 0) {
    lc.errors++;
    ms_diag_add(d, MS_ERR_FORMAT, path, 0, 0, NULL, "cannot list the tensors (corrupt file?)");
  }
  for (size_t i = 0; i < m->n_tensors; i++)
    if (!seen[i]) {
      char want[96];
      shape_str(want, sizeof want, m->tensors[i].rank, m->tensors[i].shape);
      lc.errors++;
      ms_diag_add(d, MS_ERR_FORMAT, path, 0, 0, m->tensors[i].name,
                  "missing tensor (the config requires shape %s)", want);
    }
  free(seen);
  if (lc.errors) {
    st = ms_diag_status(d) != MS_OK ? ms_diag_status(d) : MS_ERR_FORMAT;
    goto out;
  }
  const ms_tensor **sorted = ms__malloc((m->n_tensors ? m->n_tensors : 1) * sizeof *sorted);
  if (!sorted) {
    st = ms__diag_nomem(d, path, NULL, "the sorted tensor list");
    goto out;
  }
  for (size_t i = 0; i < m->n_tensors; i++) sorted[i] = &m->tensors[m->sorted[i]];
  m->hash = ms_model_hash_tensors(sorted, m->n_tensors, m->arena);
  free(sorted);
  const char *want = ms_model_attr(m, "weights_xxh64");
  if (want) {
    char got[17];
    snprintf(got, sizeof got, "%016llx", (unsigned long long)m->hash);
    if (strcmp(want, got))
      st = ms_diag_add(d, MS_ERR_DATA, path, 0, 0, "weights_xxh64",
                       "weights hash %s does not match the recorded %s (corrupt or altered weights)",
                       got, want);
  }
out:
  H5Gclose(root);
  H5Fclose(f);
  return st;
}

/* Guarded part of ms_model_load: loads the model in the child and sends
 * back what the parent cannot derive from the config (payload: str config,
 * u64 n_attrs, n x (str name, str value), u64 hash, u64 n_floats, floats). */
static ms_status load_child(ms__guard *g, void *ctx, ms__gbuf *out, ms_diag *d) {
  const char *path = ctx;
  ms_model *m = ms__calloc(1, sizeof *m);
  if (!m) return ms__diag_nomem(d, path, NULL, "the model");
  H5E_auto2_t fn;
  void *data;
  H5Eget_auto2(H5E_DEFAULT, &fn, &data);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  ms_status st = load_open(m, path, g, d);
  H5Eset_auto2(H5E_DEFAULT, fn, data);
  if (st == MS_OK) {
    ms__gbuf_put_str(out, m->config_json);
    ms__gbuf_put_u64(out, m->n_attrs);
    for (size_t i = 0; i < m->n_attrs; i++) {
      ms__gbuf_put_str(out, m->attrs[i].name);
      ms__gbuf_put_str(out, m->attrs[i].value);
    }
    ms__gbuf_put_u64(out, m->hash);
    ms__gbuf_put_u64(out, m->arena_floats);
    ms__gbuf_put_bytes(out, m->arena, m->arena_floats * sizeof(float));
    if (out->fail) st = ms_diag_add(d, MS_ERR_NOMEM, path, 0, 0, NULL, "out of memory");
  }
  ms_model_free(m);
  return st;
}

/* Rebuilds the model from load_child's payload (untrusted: checked). */
static ms_status load_take(ms_model *m, const char *path, ms__gbuf *b, ms_diag *d) {
  ms_status st;
  if (!(m->config_json = ms__gbuf_get_str(b))) goto bad;
  if ((st = ms_model_config_parse(&m->cfg, m->config_json, path, d)) != MS_OK) return st;
  if ((st = build_layout(m, path, d)) != MS_OK) return st;
  size_t max_attrs = sizeof k_meta_attrs / sizeof *k_meta_attrs;
  uint64_t na = ms__gbuf_get_u64(b);
  if (na > max_attrs) goto bad;
  if (!(m->attrs = ms__calloc(max_attrs, sizeof *m->attrs)))
    return ms_diag_add(d, MS_ERR_NOMEM, path, 0, 0, NULL, "out of memory");
  for (; m->n_attrs < na; m->n_attrs++) {
    m->attrs[m->n_attrs].name = ms__gbuf_get_str(b);
    m->attrs[m->n_attrs].value = ms__gbuf_get_str(b);
    if (!m->attrs[m->n_attrs].name || !m->attrs[m->n_attrs].value) {
      m->n_attrs++;
      goto bad;
    }
  }
  m->hash = ms__gbuf_get_u64(b);
  if (ms__gbuf_get_u64(b) != m->arena_floats) goto bad;
  const void *w = ms__gbuf_get_bytes(b, m->arena_floats * sizeof(float));
  if (!w || b->pos != b->len) goto bad;
  memcpy(m->arena, w, m->arena_floats * sizeof(float));
  return MS_OK;
bad:
  if (b->nomem) return ms__diag_nomem(d, path, NULL, "the loaded model");
  return ms_diag_add(d, MS_ERR_FORMAT, path, 0, 0, NULL, "the loader's result is malformed");
}

ms_status ms_model_load(ms_model **out, const char *path, ms_diag *d) {
  *out = NULL;
  if (!path) return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, NULL, "no model path given");
  if (access(path, R_OK) != 0)
    return ms_diag_add(d, errno == ENOENT ? MS_ERR_NOTFOUND : MS_ERR_IO, path, 0, 0, NULL,
                       "cannot open model: %s", strerror(errno));
  ms_status st = ms__h5_superblock_check(
      path, MS_ERR_FORMAT, "not a readable HDF5 model file (truncated or corrupt?)", d);
  if (st != MS_OK) return st;
  /* HDF5 is read in a guarded child (core/guard.h): damaged metadata has
   * made HDF5 1.10.8 crash and loop, and the loader must end in a message. */
  ms__gbuf res;
  st = ms__guard_run(path, MS_ERR_FORMAT, load_child, (void *)path, &res, d);
  ms_model *m = NULL;
  if (st == MS_OK) {
    if (!(m = ms__calloc(1, sizeof *m)))
      st = ms_diag_add(d, MS_ERR_NOMEM, path, 0, 0, NULL, "out of memory");
    else
      st = load_take(m, path, &res, d);
  }
  ms__gbuf_free(&res);
  if (st != MS_OK) {
    ms_model_free(m);
    return st;
  }
  *out = m;
  return MS_OK;
}
