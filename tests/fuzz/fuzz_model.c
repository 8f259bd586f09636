/* libFuzzer target: the model-file loader (nn/model.c).
 *
 * Two kinds of input:
 *  - Anything else than '{' first: the bytes of an HDF5 model file. They are
 *    written to an anonymous in-memory file (memfd) and loaded through its
 *    /proc/self/fd path with ms_model_load, which parses the config
 *    attribute, lists and checks every tensor and verifies the weights hash.
 *    This reaches HDF5's own parsing of corrupt files as well.
 *  - '{' first: a config JSON, up to the first NUL byte, followed by edit
 *    bytes. The config goes through ms_model_config_parse; when it is valid
 *    and small (at most 2^17 weights) a model file is written for it with
 *    HDF5 (under /dev/shm, removed again), one tensor per expected name, each altered as the edit bytes say
 *    (left out, another shape or rank, float64, a NaN or Inf, an extra
 *    tensor, a wrong hash, a string or fixed-length config, another format
 *    version), and loaded. Byte-level mutation of a real HDF5 file rarely
 *    gets past HDF5's checks, so this is what exercises the loader's own.
 * A model that loads has its accessors walked.
 *
 * Oracle: the sanitizers, plus: a failed load leaves an error in the diag
 * and no model; a loaded model holds finite weights that add up to its
 * parameter count; an unaltered file of a valid config loads. Parsing of
 * the HDF5 container itself is HDF5's: a crash inside libhdf5 shows up here
 * too and needs a look at how we call it. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hdf5.h>
#include <sys/mman.h>
#include <unistd.h>

#include "medsynth/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__asan_default_options(void);
const char *__lsan_default_suppressions(void);

/* A corrupt HDF5 file can make libhdf5 (not instrumented, not ours) ask
 * malloc for absurd sizes (0x7400000000000060 bytes from a bad metadata
 * cache entry length). Outside the sanitizer malloc returns NULL and HDF5
 * fails the open, which the loader reports; AddressSanitizer would abort
 * instead, so here too such requests return NULL. Requests above
 * -rss_limit_mb that do succeed are still reported by libFuzzer. */
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

/* After such a failed open HDF5 1.10 loses a block of its own (56 bytes
 * allocated inside libhdf5). Memory of an HDF5 object the loader forgets to
 * close stays reachable from HDF5's identifier tables, so LeakSanitizer
 * never reports it as a leak; a leak whose allocation is in libhdf5 is
 * HDF5's, and is not reported here. */
const char *__lsan_default_suppressions(void) { return "leak:libhdf5\n"; }

static void walk(const ms_model *m) {
  const ms_model_config *c = ms_model_config_of(m);
  if (!c || !ms_model_config_json(m)) abort();
  size_t total = 0;
  for (size_t i = 0; i < ms_model_tensor_count(m); i++) {
    const ms_tensor *t = ms_model_tensor_at(m, i);
    if (ms_model_find(m, t->name) != t) abort();
    const float *x = ms_model_data(m, t);
    for (size_t k = 0; k < t->count; k++)
      if (!isfinite(x[k])) abort(); /* the loader rejects NaN and Inf weights */
    total += t->count;
  }
  if (total != ms_model_param_count(m)) abort();
  ms_model_attr(m, "description");
}

/* ---- synthesized model files ---- */

typedef struct {
  hid_t f;
  const uint8_t *ed; /* edit bytes, one per tensor (cycled) */
  size_t n_ed;
  size_t i;
  int altered;
} writer;

static uint8_t edit_of(const writer *w, size_t i) { return w->n_ed ? w->ed[i % w->n_ed] : 0; }

/* Adds up the weights of a config, saturating at 2^40. */
static void count_fn(void *ctx, const char *name, int rank, const int64_t *shape) {
  const size_t cap = (size_t)1 << 40;
  size_t *total = ctx, n = 1;
  (void)name;
  for (int k = 0; k < rank; k++)
    n = shape[k] > 0 && n <= cap / (size_t)shape[k] ? n * (size_t)shape[k] : cap;
  *total = *total + n < cap ? *total + n : cap;
}

static void put_tensor(void *ctx, const char *name, int rank, const int64_t *shape) {
  writer *w = ctx;
  uint8_t e = edit_of(w, w->i++);
  hsize_t dims[5];
  size_t n = 1;
  for (int k = 0; k < rank; k++) {
    dims[k] = (hsize_t)shape[k];
    n *= (size_t)shape[k];
  }
  int r = rank;
  hid_t ftype = H5T_IEEE_F32LE, mtype = H5T_NATIVE_FLOAT;
  switch (e & 7) {
    case 1: /* left out */
      w->altered = 1;
      return;
    case 2: /* another shape */
      if (r > 0) dims[0] += 1 + (e >> 6), n = n / (size_t)shape[0] * (size_t)dims[0];
      w->altered = 1;
      break;
    case 3: /* another rank */
      if (r < 4) dims[r++] = 1;
      else r = 1, dims[0] = n;
      w->altered = 1;
      break;
    case 4: /* float64 */
      ftype = H5T_IEEE_F64LE;
      w->altered = 1;
      break;
    default: break;
  }
  float *x = malloc((n ? n : 1) * sizeof *x);
  if (!x) abort();
  for (size_t k = 0; k < n; k++) x[k] = (float)((int)((k * 2654435761u + w->i) % 200) - 100) / 256.0f;
  if (n && (e & 7) == 5) x[(e >> 3) % n] = (e & 0x80) ? NAN : INFINITY, w->altered = 1;
  hid_t sp = r ? H5Screate_simple(r, dims, NULL) : H5Screate(H5S_SCALAR);
  hid_t ds = H5Dcreate2(w->f, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (ds >= 0) {
    H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
    H5Dclose(ds);
  }
  H5Sclose(sp);
  free(x);
}

static void str_attr(hid_t f, const char *name, const char *v, int fixed) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, fixed ? strlen(v) + 1 : H5T_VARIABLE);
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
  if (a >= 0) {
    H5Awrite(a, t, fixed ? (const void *)v : (const void *)&v);
    H5Aclose(a);
  }
  H5Sclose(sp);
  H5Tclose(t);
}

static void int_attr(hid_t f, const char *name, int64_t v) {
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(f, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
  if (a >= 0) {
    H5Awrite(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a);
  }
  H5Sclose(sp);
}

static int memfd_path(char *path, size_t cap) {
  int fd = memfd_create("ms_fuzz_model", 0);
  if (fd < 0) abort();
  snprintf(path, cap, "/proc/self/fd/%d", fd);
  return fd;
}

static void load_and_check(const char *path, int must_load) {
  ms_diag d;
  ms_diag_init(&d);
  ms_model *m = NULL;
  ms_status st = ms_model_load(&m, path, &d);
  free(ms_diag_format(&d));
  if (st != MS_OK) {
    if (m || d.n_errors == 0) abort();
    if (must_load) {
      char *t = ms_diag_format(&d);
      fprintf(stderr, "an unaltered model failed to load:\n%s", t ? t : "");
      abort();
    }
  } else {
    if (!m) abort();
    walk(m);
  }
  ms_model_free(m);
  ms_diag_deinit(&d);
}

static void synthesized(const uint8_t *data, size_t size) {
  size_t jl = 0;
  while (jl < size && data[jl]) jl++;
  char *json = malloc(jl + 1);
  if (!json) abort();
  memcpy(json, data, jl);
  json[jl] = 0;
  const uint8_t *ed = jl < size ? data + jl + 1 : NULL;
  size_t n_ed = jl < size ? size - jl - 1 : 0;
  ms_diag d;
  ms_diag_init(&d);
  ms_model_config c;
  ms_status st = ms_model_config_parse(&c, json, "config", &d);
  if (st != MS_OK && d.n_errors == 0) abort();
  ms_diag_deinit(&d);
  size_t total = 0;
  if (st != MS_OK || ms_model_expected_tensors(&c, count_fn, &total) != MS_OK ||
      total > ((size_t)1 << 17)) {
    free(json);
    return;
  }
  /* The first edit byte sets the file-level edits, the rest one per tensor. */
  uint8_t g = n_ed ? ed[0] : 0;
  /* HDF5 cannot create a file through a /proc/self/fd path; /dev/shm is
   * memory too. */
  char path[64];
  snprintf(path, sizeof path, "/dev/shm/ms_fuzz_model_%ld.h5", (long)getpid());
  H5E_auto2_t efn;
  void *edata;
  H5Eget_auto2(H5E_DEFAULT, &efn, &edata);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  writer w = {H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), n_ed > 1 ? ed + 1 : NULL,
              n_ed > 1 ? n_ed - 1 : 0, 0, 0};
  if (w.f < 0) abort();
  ms_model_expected_tensors(&c, put_tensor, &w);
  if (g & 1) {
    put_tensor(&w, "extra.weight", 1, (const int64_t[]){3});
    w.altered = 1;
  }
  str_attr(w.f, "config", json, (g >> 1) & 1);
  switch ((g >> 2) & 3) {
    case 1: int_attr(w.f, "format_version", 1); break;
    case 2: int_attr(w.f, "format_version", 2), w.altered = 1; break;
    case 3: str_attr(w.f, "format_version", "1", 0), w.altered = 1; break;
    default: break;
  }
  if (g & 0x10) str_attr(w.f, "weights_xxh64", "0123456789abcdef", 0), w.altered = 1;
  if (g & 0x20) str_attr(w.f, "description", "synthesized", (g >> 6) & 1);
  H5Fclose(w.f);
  H5Eset_auto2(H5E_DEFAULT, efn, edata);
  load_and_check(path, !w.altered);
  unlink(path);
  free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 0 && data[0] == '{') {
    synthesized(data, size);
    return 0;
  }
  char path[64];
  int fd = memfd_path(path, sizeof path);
  size_t off = 0;
  while (off < size) {
    ssize_t n = write(fd, data + off, size - off);
    if (n <= 0) abort();
    off += (size_t)n;
  }
  load_and_check(path, 0);
  close(fd);
  return 0;
}
