/* Allocation failures (medsynth/faultsim.h): every whole operation of the
 * public API either fails cleanly or succeeds completely when any one of its
 * allocations fails, and when every allocation from some point on fails.
 * ctest-labels: unit
 *
 * The model is sqlite's test_malloc.c / malloc3.test. For each operation a
 * reference run (simulation armed, nothing failing) gives the allocation
 * count, the result's digest and the output folder's contents. Then for
 * i = 0, 1, 2, ... the operation runs again with allocation i failing
 * (ms_faultsim_config(i, 1)), and again with allocation i and every later one
 * failing (ms_faultsim_config(i, -1)). Each run must end in one of two ways:
 *  - MS_ERR_NOMEM, with a diagnostic of that status whose message says "out
 *    of memory", every error entry of the diag being of that status (an
 *    allocation failure must not be reported as something else, such as an
 *    invalid spec), and no file left in the output folder (folders a
 *    successful run creates may stay, empty);
 *  - MS_OK, with a result and output folder identical, byte for byte, to the
 *    reference (a failure the operation recovers from must not change it).
 * The loop stops at the first i at which no allocation failed. Leaks are
 * LeakSanitizer's to find (the ASan build runs this test).
 *
 * Thread counts: the table runs everything on one thread, so that
 * allocation i is the same allocation in every run. One pass with two
 * threads checks only that nothing crashes or leaks and that the outcome is
 * one of the two above.
 *
 * Strided and exhaustive: this file runs every operation exhaustively when
 * built with NOMEM_STRIDE_BUDGET = 0 (tests/test_nomem_full.c, label slow);
 * otherwise it covers at most about NOMEM_STRIDE_BUDGET values of i per
 * operation and variant: every i below 64, then an odd stride through the
 * rest, then the first i past the end. Each case prints how many
 * allocations the operation makes and how many values of i it ran. */
#include <dirent.h>
#include <errno.h>
#include <gsl/gsl_errno.h>
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include <cmocka.h>

#include "medsynth/dicom.h"
#include "medsynth/eval.h"
#include "medsynth/fhir.h"
#include "medsynth/faultsim.h"
#include "medsynth/fit.h"
#include "medsynth/images.h"
#include "medsynth/io.h"
#include "medsynth/model.h"
#include "medsynth/phantom.h"
#include "medsynth/physics.h"
#include "medsynth/records.h"
#include "memsink.h"

#ifndef NOMEM_STRIDE_BUDGET
#define NOMEM_STRIDE_BUDGET 250
#endif

/* ---- digests ---------------------------------------------------------------- */

static uint64_t mix(uint64_t h, const void *p, size_t n) { return XXH64(p, n, h); }
static uint64_t mix_str(uint64_t h, const char *s) {
  return s ? XXH64(s, strlen(s) + 1, h) : XXH64("\xff", 1, h);
}
static uint64_t mix_u64(uint64_t h, uint64_t v) { return XXH64(&v, sizeof v, h); }

static uint64_t schema_digest(uint64_t h, const ms_table_schema *s) {
  h = mix_str(h, s->name);
  h = mix_str(h, s->parent);
  h = mix_u64(h, s->n_columns);
  for (size_t j = 0; j < s->n_columns; j++) {
    const ms_column *c = &s->columns[j];
    h = mix_str(h, c->name);
    h = mix_u64(h, (uint64_t)c->type);
    h = mix_str(h, c->unit);
    h = mix_str(h, c->description);
    h = mix_u64(h, (uint64_t)(int64_t)c->precision);
    h = mix_u64(h, (uint64_t)c->nullable);
    h = mix_u64(h, c->str_width);
    h = mix_u64(h, c->n_categories);
    for (size_t k = 0; k < c->n_categories; k++) h = mix_str(h, c->categories[k]);
    h = mix_str(h, c->references);
  }
  return h;
}

static uint64_t memsink_digest(memsink *m) {
  uint64_t h = mix_u64(0, m->nt);
  for (size_t i = 0; i < m->nt; i++) {
    h = schema_digest(h, &m->t[i].schema);
    h = mix_u64(h, m->t[i].n);
    h = mix_u64(h, memtable_hash(&m->t[i], 0, m->t[i].n));
  }
  return h;
}

static uint64_t frame_digest(uint64_t h, const ms_frame *f) {
  h = mix_u64(h, f->n_rows);
  h = mix_u64(h, f->n_cols);
  h = mix_str(h, f->source);
  for (size_t j = 0; j < f->n_cols; j++) {
    const ms_frame_col *c = &f->cols[j];
    h = mix_str(h, c->name);
    h = mix_u64(h, (uint64_t)c->kind);
    if (c->num) h = mix(h, c->num, f->n_rows * sizeof *c->num);
    if (c->code) h = mix(h, c->code, f->n_rows * sizeof *c->code);
    h = mix_u64(h, c->n_levels);
    for (size_t l = 0; l < c->n_levels; l++) h = mix_str(h, c->levels[l]);
    h = mix_u64(h, c->n_missing);
    h = mix_u64(h, (uint64_t)c->decimals);
  }
  return h;
}

/* ---- output folders ------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Digest of a folder tree (names, kinds, file contents), in name order; counts
 * regular files and everything else found. */
static uint64_t dir_digest(const char *path, uint64_t h, size_t *n_files, size_t *n_other) {
  DIR *dp = opendir(path);
  assert_non_null(dp);
  char **names = NULL;
  size_t n = 0;
  struct dirent *de;
  while ((de = readdir(dp))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    names = realloc(names, (n + 1) * sizeof *names);
    names[n++] = strdup(de->d_name);
  }
  closedir(dp);
  if (n) qsort(names, n, sizeof *names, cmp_str);
  for (size_t i = 0; i < n; i++) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", path, names[i]);
    struct stat sb;
    assert_int_equal(lstat(p, &sb), 0);
    h = mix_str(h, names[i]);
    if (S_ISDIR(sb.st_mode)) {
      h = mix_str(h, "/");
      h = dir_digest(p, h, n_files, n_other);
    } else if (S_ISREG(sb.st_mode)) {
      (*n_files)++;
      FILE *fp = fopen(p, "rb");
      assert_non_null(fp);
      char *buf = malloc((size_t)sb.st_size + 1);
      assert_int_equal(fread(buf, 1, (size_t)sb.st_size, fp), (size_t)sb.st_size);
      fclose(fp);
      h = mix_u64(h, (uint64_t)sb.st_size);
      h = mix(h, buf, (size_t)sb.st_size);
      free(buf);
    } else {
      (*n_other)++;
    }
    free(names[i]);
  }
  free(names);
  return h;
}

static void dir_clear(const char *path, int remove_self) {
  DIR *dp = opendir(path);
  if (!dp) return;
  struct dirent *de;
  while ((de = readdir(dp))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", path, de->d_name);
    struct stat sb;
    if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
      dir_clear(p, 1);
    else
      unlink(p);
  }
  closedir(dp);
  if (remove_self) rmdir(path);
}

static char g_root[1024]; /* this process's scratch folder */

/* g_root/name with '/' in name replaced by '-'. */
static void make_dir(char *out, size_t cap, const char *name) {
  snprintf(out, cap, "%s/", g_root);
  size_t n = strlen(out);
  for (; *name && n + 1 < cap; name++) out[n++] = *name == '/' ? '-' : *name;
  out[n] = '\0';
  if (mkdir(out, 0777) && errno != EEXIST) fail_msg("cannot create %s", out);
}

/* ---- the harness ------------------------------------------------------------ */

typedef struct nm_op nm_op;
struct nm_op {
  const char *name;
  /* Runs the whole operation; outputs go under `dir` (empty on entry). On
   * MS_OK *res holds what digest and release take. */
  ms_status (*run)(const nm_op *op, const char *dir, int threads, void **res, ms_diag *d);
  /* Digest of a successful run's result (called with the simulation off). */
  uint64_t (*digest)(const nm_op *op, void *res);
  void (*release)(void *res);
  const void *arg;
  const char *arg2;
};

static int diag_says_nomem(const ms_diag *d) {
  int found = 0;
  for (size_t i = 0; i < d->count; i++) {
    const ms_diag_entry *e = &d->entries[i];
    if (e->severity != MS_SEV_ERROR) continue;
    if (e->status != MS_ERR_NOMEM) return 0; /* an allocation failure reported as something else */
    if (e->message && strstr(e->message, "out of memory")) found = 1;
  }
  return found;
}

static void report_diag(const char *what, const ms_diag *d) {
  char *t = ms_diag_format(d);
  print_error("%s:\n%s", what, t ? t : "?\n");
  free(t);
}

/* Environment: MS_NOMEM_KEEP_GOING=1 reports every bad run instead of
 * failing at the first (for surveying); MS_NOMEM_ONLY=text runs only the
 * operations whose name contains text; MS_NOMEM_BUDGET=n overrides the
 * stride budget (0: every i). */
static int g_keep_going;
static long g_problems;

#define NM_FAIL(...)                       \
  do {                                     \
    if (!g_keep_going) fail_msg(__VA_ARGS__); \
    print_error(__VA_ARGS__);              \
    print_error("\n");                     \
    g_problems++;                          \
  } while (0)

typedef struct {
  long allocations; /* in the reference run */
  long runs;        /* values of i run (the last one, past the end, included) */
} nm_stats;

/* One reference run, then the loop; threads as given. stride_budget 0: every i. */
static nm_stats nm_check(const nm_op *op, long repeat, int threads, long stride_budget) {
  char dir[1200];
  make_dir(dir, sizeof dir, op->name);
  dir_clear(dir, 0);
  omp_set_num_threads(threads);

  ms_diag d;
  ms_diag_init(&d);
  void *res = NULL;
  ms_faultsim_config(0, 0);
  ms_status st = op->run(op, dir, threads, &res, &d);
  long n_alloc = ms_faultsim_count();
  ms_faultsim_config(-1, 0);
  if (st != MS_OK) report_diag(op->name, &d);
  assert_int_equal(st, MS_OK);
  uint64_t ref = op->digest(op, res);
  op->release(res);
  ms_diag_deinit(&d);
  size_t ref_files = 0, ref_other = 0;
  uint64_t ref_dir = dir_digest(dir, 0, &ref_files, &ref_other);

  long stride = 1;
  if (stride_budget > 0 && n_alloc > stride_budget) stride = (n_alloc / stride_budget) | 1;
  nm_stats stats = {n_alloc, 0};
  for (long i = 0;; i = i < 64 ? i + 1 : i + stride) {
    dir_clear(dir, 0);
    ms_diag_init(&d);
    res = NULL;
    ms_faultsim_config(i, repeat);
    st = op->run(op, dir, threads, &res, &d);
    long failed = ms_faultsim_failures();
    ms_faultsim_config(-1, 0);
    stats.runs++;
    size_t nf = 0, no = 0;
    uint64_t got_dir = dir_digest(dir, 0, &nf, &no);
    if (st == MS_OK) {
      uint64_t got = op->digest(op, res);
      op->release(res);
      if (got != ref || got_dir != ref_dir) {
        report_diag(op->name, &d);
        NM_FAIL("%s: allocation %ld failed (repeat %ld, %d threads): MS_OK with a different %s",
                 op->name, i, repeat, threads, got != ref ? "result" : "output folder");
      }
    } else {
      if (st != MS_ERR_NOMEM || !diag_says_nomem(&d)) {
        report_diag(op->name, &d);
        NM_FAIL("%s: allocation %ld failed (repeat %ld, %d threads): %s without (only) an "
                 "out-of-memory diagnostic",
                 op->name, i, repeat, threads, ms_status_name(st));
      }
      if (nf || no)
        NM_FAIL("%s: allocation %ld failed (repeat %ld, %d threads): %zu file(s) left in %s",
                 op->name, i, repeat, threads, nf + no, dir);
      if (failed == 0) NM_FAIL("%s: failed with no allocation failing", op->name);
    }
    ms_diag_deinit(&d);
    if (failed == 0) break;
  }
  dir_clear(dir, 1);
  return stats;
}

/* Repeat 1 and repeat -1 on one thread, then a strided pass on two threads. */
static void nm_case(const nm_op *op) {
  const char *only = getenv("MS_NOMEM_ONLY"), *budget_env = getenv("MS_NOMEM_BUDGET");
  if (only && !strstr(op->name, only)) return;
  long budget = budget_env ? atol(budget_env) : NOMEM_STRIDE_BUDGET;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  nm_stats one = nm_check(op, 1, 1, budget);
  nm_stats all = nm_check(op, -1, 1, budget);
  nm_stats two = nm_check(op, 1, 2, 40);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  if (g_problems) print_error("%s: %ld bad runs\n", op->name, g_problems);
  g_problems = 0;
  print_message("%-22s %6ld allocations; runs: %ld (one fails), %ld (all later fail), %ld (2 threads); %.1f s\n",
                op->name, one.allocations, one.runs, all.runs, two.runs,
                (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
}

/* ---- spec load ---------------------------------------------------------------- */

static ms_status spec_load_run(const nm_op *op, const char *dir, int threads, void **res,
                               ms_diag *d) {
  (void)dir;
  (void)threads;
  ms_spec *s = NULL;
  ms_status st = ms_spec_load(&s, op->arg, d);
  if (st == MS_OK) assert_non_null(s);
  else assert_null(s);
  *res = s;
  return st;
}

/* The spec's accessors, the output schemas and 60 generated rows of every
 * table: a spec that loads "successfully" but incompletely shows here. */
static uint64_t spec_digest(const nm_op *op, void *res) {
  (void)op;
  const ms_spec *s = res;
  size_t len = 0;
  const char *text = ms_spec_text(s, &len);
  uint64_t h = mix(0, text, len);
  h = mix_str(h, ms_spec_name(s));
  h = mix_u64(h, ms_spec_hash(s));
  h = mix_u64(h, ms_spec_seed(s));
  h = mix_u64(h, ms_spec_n_tables(s));
  for (size_t i = 0; i < ms_spec_n_tables(s); i++) {
    h = schema_digest(h, ms_spec_table_schema(s, i));
    h = mix_u64(h, ms_spec_table_parent(s, i));
    h = mix_u64(h, ms_spec_table_rows(s, i));
    h = mix_u64(h, (uint64_t)ms_spec_table_has_filter(s, i));
  }
  h = mix_u64(h, ms_spec_n_images(s));
  memsink m;
  memset(&m, 0, sizeof m);
  ms_sink sink = memsink_sink(&m);
  ms_generate_params o;
  ms_generate_params_init(&o);
  o.rows = 60;
  o.threads = 1;
  ms_diag d;
  ms_diag_init(&d);
  ms_status st = ms_generate(s, &o, &sink, NULL, &d);
  if (st != MS_OK) report_diag("generating from the loaded spec", &d);
  assert_int_equal(st, MS_OK);
  ms_diag_deinit(&d);
  h = mix_u64(h, memsink_digest(&m));
  memsink_free(&m);
  return h;
}

static void spec_release(void *res) { ms_spec_free(res); }

static void test_nomem_spec_load(void **state) {
  (void)state;
  static const char *const specs[] = {"outpatient.json", "ehr.json", "trial.json",
                                      "cohort_t2dm.json"};
  for (size_t k = 0; k < sizeof specs / sizeof *specs; k++) {
    char path[1024], name[64];
    snprintf(path, sizeof path, "%s/schemas/examples/%s", MS_SOURCE_DIR, specs[k]);
    snprintf(name, sizeof name, "spec_load/%.*s", (int)(strlen(specs[k]) - 5), specs[k]);
    nm_op op = {name, spec_load_run, spec_digest, spec_release, path, NULL};
    nm_case(&op);
  }
}

/* ---- generate ------------------------------------------------------------------ */

static ms_spec *load_file(const char *path) {
  ms_diag d;
  ms_diag_init(&d);
  ms_spec *s = NULL;
  ms_status st = ms_spec_load(&s, path, &d);
  if (st != MS_OK) report_diag(path, &d);
  assert_int_equal(st, MS_OK);
  ms_diag_deinit(&d);
  return s;
}

typedef struct {
  memsink m;
  ms_generate_report rep;
  ms_diag *d;
} gen_mem_res;

/* The in-memory sink copies each schema with ms_table_schema_copy, which can
 * fail like any library allocation; like the writer, the sink then reports
 * its failure to the generator's diag. */
static ms_status gen_mem_begin(void *ctx, const ms_table_schema *s, uint64_t exp) {
  gen_mem_res *r = ctx;
  ms_status st = memsink_begin(&r->m, s, exp);
  if (st == MS_ERR_NOMEM) ms_diag_add(r->d, st, NULL, 0, 0, s->name, "out of memory for a schema copy");
  return st;
}

static ms_status gen_mem_write(void *ctx, const ms_chunk *c) {
  gen_mem_res *r = ctx;
  return memsink_write(&r->m, c);
}

static void gen_opts(ms_generate_params *o, int threads, uint64_t rows) {
  ms_generate_params_init(o);
  o->threads = threads;
  o->rows = rows;
  o->chunk_rows = 64; /* several chunks per table */
}

static ms_status gen_mem_run(const nm_op *op, const char *dir, int threads, void **res,
                             ms_diag *d) {
  (void)dir;
  gen_mem_res *r = calloc(1, sizeof *r);
  r->d = d;
  ms_sink sink = {r, gen_mem_begin, gen_mem_write, NULL};
  ms_generate_params o;
  gen_opts(&o, threads, 150);
  ms_status st = ms_generate(op->arg, &o, &sink, &r->rep, d);
  if (st != MS_OK) {
    ms_generate_report_deinit(&r->rep);
    memsink_free(&r->m);
    free(r);
    return st;
  }
  *res = r;
  return st;
}

static uint64_t gen_mem_digest(const nm_op *op, void *res) {
  (void)op;
  gen_mem_res *r = res;
  uint64_t h = memsink_digest(&r->m);
  h = mix_u64(h, r->rep.seed);
  h = mix_u64(h, r->rep.n_tables);
  for (size_t i = 0; i < r->rep.n_tables; i++) {
    const ms_table_report *t = &r->rep.tables[i];
    h = mix_str(h, t->name);
    h = mix_u64(h, (uint64_t)t->written);
    h = mix_u64(h, t->rows);
    h = mix_u64(h, t->total_rows);
    h = mix_u64(h, t->candidates);
  }
  return h;
}

static void gen_mem_release(void *res) {
  gen_mem_res *r = res;
  ms_generate_report_deinit(&r->rep);
  memsink_free(&r->m);
  free(r);
}

/* Generation into a file through the writer, with the provenance attributes
 * the command records; arg2 is the file name (its extension picks the
 * format). */
static ms_status gen_file_run(const nm_op *op, const char *dir, int threads, void **res,
                              ms_diag *d) {
  const ms_spec *spec = op->arg;
  *res = NULL;
  char path[1400];
  snprintf(path, sizeof path, "%s/%s", dir, op->arg2);
  ms_writer_params wo;
  ms_writer_params_init(&wo);
  wo.no_timestamp = 1;
  wo.threads = threads;
  wo.chunk_rows = 100;
  ms_writer *w = NULL;
  ms_status st = ms_writer_open(&w, path, &wo, d);
  if (st != MS_OK) {
    assert_null(w);
    return st;
  }
  ms_sink sink = ms_writer_sink(w);
  ms_generate_params o;
  gen_opts(&o, threads, 150);
  ms_generate_report rep;
  st = ms_generate(spec, &o, &sink, &rep, d);
  if (st == MS_OK && wo.format != MS_FMT_COUNT && ms_format_from_path(path) == MS_FMT_HDF5) {
    size_t len;
    const char *text = ms_spec_text(spec, &len);
    st = ms_writer_set_attr_string(w, "spec", text);
    if (!st) st = ms_writer_set_attr_string(w, "spec_name", ms_spec_name(spec));
    if (!st) st = ms_writer_set_attr_int(w, "seed", (int64_t)rep.seed);
    for (size_t i = 0; i < rep.n_tables && !st; i++) {
      char name[256];
      snprintf(name, sizeof name, "rows_%s", rep.tables[i].name);
      st = ms_writer_set_attr_int(w, name, (int64_t)rep.tables[i].rows);
    }
    if (!st) st = ms_writer_set_object_attr_double(w, "/tables/patients", "nomem", 1.5);
  }
  ms_generate_report_deinit(&rep);
  if (st == MS_OK)
    st = ms_writer_commit(w, d);
  else
    ms_writer_abort(w);
  return st;
}

/* Generation into a FHIR export folder (arg2: "fhir" bundles or
 * "fhir-ndjson"), with the invocation the command records. */
static ms_status gen_fhir_run(const nm_op *op, const char *dir, int threads, void **res,
                              ms_diag *d) {
  const ms_spec *spec = op->arg;
  *res = NULL;
  char path[1400];
  snprintf(path, sizeof path, "%s/out.fhir", dir);
  ms_fhir_params fo;
  ms_fhir_params_init(&fo);
  fo.layout = ms_fhir_layout_from_name(op->arg2);
  fo.seed = ms_spec_seed(spec);
  fo.threads = threads;
  fo.no_timestamp = 1;
  fo.invocation = "{\"command\":\"records\"}";
  ms_fhir_writer *fw = NULL;
  ms_status st = ms_fhir_writer_open(&fw, path, spec, &fo, d);
  if (st != MS_OK) {
    assert_null(fw);
    return st;
  }
  ms_sink sink = ms_fhir_writer_sink(fw);
  ms_generate_params o;
  gen_opts(&o, threads, 150);
  st = ms_generate(spec, &o, &sink, NULL, d);
  if (st == MS_OK)
    st = ms_fhir_writer_commit(fw, d);
  else
    ms_fhir_writer_abort(fw);
  return st;
}

static uint64_t no_digest(const nm_op *op, void *res) {
  (void)op;
  (void)res;
  return 0;
}
static void no_release(void *res) { (void)res; }

static void test_nomem_generate(void **state) {
  (void)state;
  char path[1024];
  snprintf(path, sizeof path, "%s/schemas/examples/outpatient.json", MS_SOURCE_DIR);
  ms_spec *outpatient = load_file(path);
  snprintf(path, sizeof path, "%s/schemas/examples/ehr.json", MS_SOURCE_DIR);
  ms_spec *ehr = load_file(path);
  const nm_op ops[] = {
      {"generate/memory", gen_mem_run, gen_mem_digest, gen_mem_release, outpatient, NULL},
      {"generate/memory-ehr", gen_mem_run, gen_mem_digest, gen_mem_release, ehr, NULL},
      {"generate/hdf5", gen_file_run, no_digest, no_release, outpatient, "out.h5"},
      {"generate/csv", gen_file_run, no_digest, no_release, ehr, "out.csv"},
      {"generate/jsonl", gen_file_run, no_digest, no_release, outpatient, "out.jsonl"},
      {"generate/fhir", gen_fhir_run, no_digest, no_release, ehr, "fhir"},
      {"generate/fhir-ndjson", gen_fhir_run, no_digest, no_release, outpatient, "fhir-ndjson"},
  };
  for (size_t k = 0; k < sizeof ops / sizeof *ops; k++) nm_case(&ops[k]);
  ms_spec_free(outpatient);
  ms_spec_free(ehr);
}

/* ---- fit ------------------------------------------------------------------------- */

/* The header and first `rows` data rows of a fixture, as a file in the
 * scratch folder; with keep (a 0-based column list ending in -1) only those
 * columns (the fixtures have no quoted fields). */
static void head_csv(const char *fixture, size_t rows, const int *keep, const char *out) {
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/data/%s", MS_SOURCE_DIR, fixture);
  FILE *in = fopen(path, "rb"), *o = fopen(out, "wb");
  assert_non_null(in);
  assert_non_null(o);
  char line[8192];
  for (size_t r = 0; r <= rows && fgets(line, sizeof line, in); r++) {
    if (!keep) {
      fputs(line, o);
      continue;
    }
    line[strcspn(line, "\r\n")] = '\0';
    char *cell[64];
    int n = 0;
    for (char *t = line, *sep; n < 64; t = sep + 1) {
      cell[n++] = t;
      if (!(sep = strchr(t, ','))) break;
      *sep = '\0';
    }
    for (int k = 0; keep[k] >= 0; k++) {
      assert_true(keep[k] < n);
      fprintf(o, "%s%s", k ? "," : "", cell[keep[k]]);
    }
    fputc('\n', o);
  }
  fclose(in);
  fclose(o);
}

typedef struct {
  uint64_t h;
} hash_res;

/* Read a small CSV, fit, print the spec and accounting, sample, write the
 * sample as CSV. */
static ms_status fit_run(const nm_op *op, const char *dir, int threads, void **res, ms_diag *d) {
  (void)threads;
  ms_csv_params co;
  ms_csv_params_init(&co);
  ms_frame *f = NULL, *syn = NULL;
  ms_fit_model *m = NULL;
  char *json = NULL, *acc = NULL;
  ms_status st = ms_frame_read_csv(&f, op->arg, &co, d);
  if (st == MS_OK) {
    ms_fit_params p;
    ms_fit_params_init(&p);
    p.epsilon = op->arg2 ? 1.0 : 0;
    p.parametric = 1;
    p.seed = 3;
    if (op->arg2 && !strcmp(op->arg2, "mst")) p.method = MS_FIT_METHOD_MST;
    st = ms_fit_model_new(&m, f, &p, d);
  }
  if (st == MS_OK) {
    json = ms_fit_model_to_json(m);
    acc = ms_fit_model_accounting(m);
    if (!json || !acc) st = MS_ERR_NOMEM, ms_diag_add(d, st, NULL, 0, 0, NULL, "out of memory (test)");
  }
  if (st == MS_OK) st = ms_fit_model_sample(&syn, m, 50, 9, 0, d);
  if (st == MS_OK) {
    char path[1400];
    snprintf(path, sizeof path, "%s/sample.csv", dir);
    st = ms_frame_write_csv(syn, path, d);
  }
  if (st == MS_OK) {
    hash_res *r = malloc(sizeof *r);
    r->h = mix_str(mix_str(frame_digest(frame_digest(0, f), syn), json), acc);
    r->h = mix_u64(r->h, ms_fit_model_n_copula(m));
    *res = r;
  }
  free(json);
  free(acc);
  ms_frame_free(syn);
  ms_fit_model_free(m);
  ms_frame_free(f);
  return st;
}

static uint64_t hash_digest(const nm_op *op, void *res) {
  (void)op;
  return ((hash_res *)res)->h;
}

static void test_nomem_fit(void **state) {
  (void)state;
  char in[1200];
  make_dir(in, sizeof in, "inputs");
  strcat(in, "/diabetes_head.csv");
  head_csv("diabetes_train.csv", 60, NULL, in);
  /* three groups of rows: the fit's clusters (docs/fit.md) */
  char in3[1200];
  make_dir(in3, sizeof in3, "inputs");
  strcat(in3, "/clusters.csv");
  FILE *fp = fopen(in3, "w");
  assert_non_null(fp);
  fprintf(fp, "x,y,g\n");
  for (int i = 0; i < 90; i++)
    fprintf(fp, "%.2f,%.2f,%c\n", 10.0 * (i % 3) + (i * 37 % 19) / 9.0, 30.0 - 10.0 * (i % 3) + (i * 23 % 17) / 8.0,
            "abc"[i % 3]);
  fclose(fp);
  const nm_op ops[] = {
      {"fit", fit_run, hash_digest, free, in, NULL},
      {"fit/dp", fit_run, hash_digest, free, in, "dp"},
      {"fit/mst", fit_run, hash_digest, free, in, "mst"},
      {"fit/clusters", fit_run, hash_digest, free, in3, NULL},
  };
  for (size_t k = 0; k < sizeof ops / sizeof *ops; k++) nm_case(&ops[k]);
}

/* ---- evaluate ------------------------------------------------------------------- */

static ms_frame *read_frame(const char *path, const ms_frame *like) {
  ms_csv_params o;
  ms_csv_params_init(&o);
  ms_type_override ov[64];
  if (like) {
    assert_true(like->n_cols <= 64);
    for (size_t j = 0; j < like->n_cols; j++) ov[j].column = like->cols[j].name, ov[j].kind = like->cols[j].kind;
    o.types = ov;
    o.n_types = like->n_cols;
  }
  ms_frame *f = NULL;
  ms_diag d;
  ms_diag_init(&d);
  ms_status st = ms_frame_read_csv(&f, path, &o, &d);
  if (st != MS_OK) report_diag(path, &d);
  ms_diag_deinit(&d);
  assert_int_equal(st, MS_OK);
  return f;
}

typedef struct {
  const ms_frame *train, *holdout, *syn;
  ms_eval_params p;
} eval_arg;

static ms_status eval_run(const nm_op *op, const char *dir, int threads, void **res, ms_diag *d) {
  (void)threads;
  const eval_arg *a = op->arg;
  char outdir[1400];
  snprintf(outdir, sizeof outdir, "%s/report", dir);
  ms_eval_report *r = NULL;
  ms_status st = ms_eval_report_new(&r, a->train, a->holdout, a->syn, &a->p, op->arg2 ? outdir : NULL, d);
  if (st == MS_OK) {
    hash_res *h = malloc(sizeof *h);
    h->h = mix_str(mix_str(0, ms_eval_report_json(r)), ms_eval_report_markdown(r));
    h->h = mix_u64(h->h, (uint64_t)ms_eval_report_verdict(r));
    double x = ms_eval_report_number(r, "privacy.mia_auc");
    h->h = mix(h->h, &x, sizeof x);
    *res = h;
  } else {
    assert_null(r);
  }
  ms_eval_report_free(r);
  return st;
}

static void test_nomem_evaluate(void **state) {
  (void)state;
  char dir[1200], tr_path[1300], ho_path[1300];
  make_dir(dir, sizeof dir, "inputs");
  snprintf(tr_path, sizeof tr_path, "%s/bc_train.csv", dir);
  snprintf(ho_path, sizeof ho_path, "%s/bc_holdout.csv", dir);
  /* Five columns (four measurements and the diagnosis) keep each run short. */
  static const int keep[] = {0, 1, 3, 4, 30, -1};
  head_csv("breast_cancer_train.csv", 60, keep, tr_path);
  head_csv("breast_cancer_holdout.csv", 30, keep, ho_path);
  ms_frame *tr = read_frame(tr_path, NULL), *ho = read_frame(ho_path, tr), *syn = NULL;
  ms_diag d;
  ms_diag_init(&d);
  ms_fit_model *m = NULL;
  assert_int_equal(ms_fit_model_new(&m, tr, NULL, &d), MS_OK);
  assert_int_equal(ms_fit_model_sample(&syn, m, 60, 1, 0, &d), MS_OK);
  ms_fit_model_free(m);
  ms_diag_deinit(&d);
  eval_arg a;
  a.train = tr;
  a.holdout = ho;
  a.syn = syn;
  ms_eval_params_init(&a.p);
  a.p.target = "diagnosis";
  static const char *const qi[] = {"mean_radius", "mean_texture"};
  a.p.quasi_identifiers = qi;
  a.p.n_quasi_identifiers = 2;
  static const char *const sg[] = {"diagnosis"};
  a.p.subgroups = sg;
  a.p.n_subgroups = 1;
  a.p.max_plot_columns = 3;
  const nm_op ops[] = {
      {"evaluate", eval_run, hash_digest, free, &a, NULL},
      {"evaluate/files", eval_run, hash_digest, free, &a, "files"},
  };
  for (size_t k = 0; k < sizeof ops / sizeof *ops; k++) nm_case(&ops[k]);
  ms_frame_free(syn);
  ms_frame_free(ho);
  ms_frame_free(tr);
}

/* ---- model load ----------------------------------------------------------------- */

static ms_status model_run(const nm_op *op, const char *dir, int threads, void **res, ms_diag *d) {
  (void)dir;
  (void)threads;
  ms_model *m = NULL;
  ms_status st = ms_model_load(&m, op->arg, d);
  if (st == MS_OK) assert_non_null(m);
  else assert_null(m);
  *res = m;
  return st;
}

static uint64_t model_digest(const nm_op *op, void *res) {
  (void)op;
  const ms_model *m = res;
  uint64_t h = mix_str(0, ms_model_config_json(m));
  const ms_model_config *c = ms_model_config_of(m);
  h = mix_u64(h, (uint64_t)c->arch);
  h = mix_u64(h, (uint64_t)c->n_levels);
  h = mix_u64(h, ms_model_weights_xxh64(m));
  h = mix_u64(h, ms_model_param_count(m));
  h = mix_u64(h, ms_model_tensor_count(m));
  for (size_t i = 0; i < ms_model_tensor_count(m); i++) {
    const ms_tensor *t = ms_model_tensor_at(m, i);
    h = mix_str(h, t->name);
    h = mix(h, t->shape, sizeof t->shape);
    h = mix(h, ms_model_data(m, t), t->count * sizeof(float));
    assert_ptr_equal(ms_model_find(m, t->name), t);
  }
  static const char *const attrs[] = {"description", "training_data", "licence", "created_by",
                                      "weights_xxh64"};
  for (size_t i = 0; i < 5; i++) h = mix_str(h, ms_model_attr(m, attrs[i]));
  return h;
}

static void model_release(void *res) { ms_model_free(res); }

static void test_nomem_model_load(void **state) {
  (void)state;
  static const char *const models[] = {"unet_cond.h5", "vae_prior.h5"};
  for (size_t k = 0; k < 2; k++) {
    char path[1024], name[64];
    snprintf(path, sizeof path, "%s/tests/golden/nn/%s", MS_SOURCE_DIR, models[k]);
    snprintf(name, sizeof name, "model_load/%.*s", (int)(strlen(models[k]) - 3), models[k]);
    nm_op op = {name, model_run, model_digest, model_release, path, NULL};
    nm_case(&op);
  }
}

/* ---- phantoms ------------------------------------------------------------------- */

/* A batch as the phantom command makes one: check the parameters, allocate
 * the image buffers once, render four images into an HDF5 file with the
 * label table as an attribute. */
static ms_status phantom_run(const nm_op *op, const char *dir, int threads, void **res,
                             ms_diag *d) {
  const ms_phantom_params *p = op->arg;
  enum { N = 4 };
  char path[1400];
  snprintf(path, sizeof path, "%s/phantoms.h5", dir);
  ms_status st = ms_phantom_params_check(p, d);
  if (st != MS_OK) return st;
  ms_writer_params wo;
  ms_writer_params_init(&wo);
  wo.no_timestamp = 1;
  wo.threads = threads;
  ms_writer *w = NULL;
  st = ms_writer_open(&w, path, &wo, d);
  if (st != MS_OK) return st;
  ms_phantom_image img;
  memset(&img, 0, sizeof img);
  st = ms_phantom_image_init(&img, p, d);
  uint64_t dims[3] = {N, (uint64_t)p->height, (uint64_t)p->width};
  if (!st) st = ms_writer_begin_array(w, "/images", MS_DT_FLOAT32, 3, dims);
  if (!st) st = ms_writer_begin_array(w, "/masks", MS_DT_UINT8, 3, dims);
  uint64_t h = 0;
  for (uint64_t i = 0; i < N && !st; i++) {
    st = ms_phantom_generate(&img, p, NULL, 5, i, d);
    if (!st) st = ms_writer_write_items(w, "/images", i, 1, img.image);
    if (!st) st = ms_writer_write_items(w, "/masks", i, 1, img.mask);
    if (!st) {
      h = mix(h, img.image, img.n_pixels * sizeof(float));
      h = mix(h, img.mask, img.n_pixels);
      h = mix_u64(h, img.n_lesions);
      for (size_t k = 0; k < img.n_lesions; k++) h = mix(h, &img.lesions[k], sizeof img.lesions[k]);
    }
  }
  if (!st) {
    char *labels = ms_phantom_label_table_json(p);
    if (!labels) st = ms_diag_add(d, MS_ERR_NOMEM, NULL, 0, 0, NULL, "out of memory (label table)");
    if (!st) st = ms_writer_set_object_attr_string(w, "/masks", "labels", labels);
    if (!st) h = mix_str(h, labels);
    free(labels);
  }
  ms_phantom_image_deinit(&img);
  if (!st)
    st = ms_writer_commit(w, d);
  else
    ms_writer_abort(w);
  if (!st) {
    hash_res *r = malloc(sizeof *r);
    r->h = h;
    *res = r;
  }
  return st;
}

/* Acquisition physics: a CT system (FFTW plans, filter) and one row's
 * sinogram and low/full-dose reconstructions; an MR system (coil maps) and
 * one row's k-space and reconstructions. */
static ms_status physics_run(const nm_op *op, const char *dir, int threads, void **res, ms_diag *d) {
  (void)op;
  (void)dir;
  (void)threads;
  enum { N = 32 };
  float truth[N * N];
  for (int i = 0; i < N * N; i++) truth[i] = (float)((i % N - N / 2) * (i % N - N / 2) + (i / N - N / 2) * (i / N - N / 2) < 100 ? 40 : -1000);
  ms_ct_params c;
  ms_ct_params_init(&c, N, N, 2);
  c.views = 32;
  ms_ct_system *cs = NULL;
  ms_mr_system *ms = NULL;
  float *sino = NULL, low[N * N], full[N * N];
  ms_mr_params m;
  ms_mr_params_init(&m, N, N, 2);
  m.coils = 2;
  m.center_fraction = 0.125;
  m.lowres_factor = 2;
  float *k = malloc((size_t)2 * N * N * 2 * sizeof(float)), rss[N * N], zf[N * N], lowres[N * N / 4];
  uint8_t mask[N];
  uint64_t h = 0;
  ms_status st = ms_ct_system_new(&cs, &c, d);
  if (!st) {
    sino = malloc(ms_ct_sinogram_len(cs) * sizeof(float));
    st = ms_ct_acquire(cs, sino, low, full, truth, 1, 0, d);
  }
  if (!st) h = mix(mix(mix(h, sino, ms_ct_sinogram_len(cs) * sizeof(float)), low, sizeof low), full, sizeof full);
  if (!st) st = ms_mr_system_new(&ms, &m, d);
  ms_mr_output o = {k, mask, rss, zf, lowres};
  if (!st) st = ms_mr_acquire(ms, &o, truth, 1, 0, d);
  if (!st) h = mix(mix(mix(mix(h, k, (size_t)2 * N * N * 2 * sizeof(float)), mask, sizeof mask), rss, sizeof rss), zf, sizeof zf);
  if (!st) h = mix(h, lowres, sizeof lowres);
  ms_ct_system_free(cs);
  ms_mr_system_free(ms);
  free(sino);
  free(k);
  if (!st) {
    hash_res *r = malloc(sizeof *r);
    r->h = h;
    *res = r;
  }
  return st;
}

/* Image fields of a spec: records drive phantom renders into one HDF5 file. */
static ms_status images_run(const nm_op *op, const char *dir, int threads, void **res,
                            ms_diag *d) {
  const ms_spec *spec = op->arg;
  *res = NULL;
  char path[1400], png[1400], dcm[1400];
  snprintf(path, sizeof path, "%s/images.h5", dir);
  snprintf(png, sizeof png, "%s/png", dir);
  snprintf(dcm, sizeof dcm, "%s/dicom", dir);
  int dicom = op->arg2 && !strcmp(op->arg2, "dicom");
  ms_writer_params wo;
  ms_writer_params_init(&wo);
  wo.no_timestamp = 1;
  wo.threads = threads;
  ms_writer *w = NULL;
  ms_status st = ms_writer_open(&w, path, &wo, d);
  if (st != MS_OK) return st;
  ms_images_params io;
  ms_images_params_init(&io);
  io.seed = ms_spec_seed(spec);
  io.threads = threads;
  io.batch_bytes = 64 * 1024;
  io.png_dir = op->arg2 && !dicom ? png : NULL;
  ms_dicom_dir *dd = NULL;
  if (dicom && (st = ms_dicom_dir_open(&dd, dcm, 0, d)) != MS_OK) {
    ms_writer_abort(w);
    return st;
  }
  io.dicom_dir = dd ? ms_dicom_dir_path(dd) : NULL;
  ms_images *im = NULL;
  st = ms_images_new(&im, spec, w, &io, d);
  if (st == MS_OK) {
    ms_sink sink = ms_images_sink(im);
    ms_generate_params o;
    gen_opts(&o, threads, 6);
    o.chunk_rows = 4;
    st = ms_generate(spec, &o, &sink, NULL, d);
    if (st == MS_OK) st = ms_images_finish(im, d);
  }
  ms_images_free(im);
  if (st == MS_OK)
    st = ms_writer_commit(w, d);
  else
    ms_writer_abort(w);
  if (st == MS_OK && dd)
    st = ms_dicom_dir_commit(dd, d);
  else
    ms_dicom_dir_abort(dd);
  return st;
}

static void test_nomem_phantom(void **state) {
  (void)state;
  ms_phantom_params p;
  ms_phantom_params_init(&p, MS_PHANTOM_CHEST);
  p.width = p.height = 48;
  p.lesions.count_min = 1;
  p.lesions.count_max = 2;
  p.lesions.diameter_min_mm = 20;
  p.lesions.diameter_max_mm = 30;
  p.augment.elastic_mm = 3;
  p.augment.rotate_deg = 10;
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/specs/good/nomem_phantom_records.json", MS_SOURCE_DIR);
  ms_spec *spec = load_file(path);
  const nm_op ops[] = {
      {"phantom/batch", phantom_run, hash_digest, free, &p, NULL},
      {"phantom/physics", physics_run, hash_digest, free, NULL, NULL},
      {"phantom/records", images_run, no_digest, no_release, spec, NULL},
      {"phantom/records-png", images_run, no_digest, no_release, spec, "png"},
      {"phantom/records-dicom", images_run, no_digest, no_release, spec, "dicom"},
  };
  for (size_t k = 0; k < sizeof ops / sizeof *ops; k++) nm_case(&ops[k]);
  ms_spec_free(spec);
}

/* ---- the allocator hook itself ------------------------------------------------- */

/* The simulation counts and fails exactly as documented, also when several
 * threads allocate at once. */
static void test_nomem_faultsim_counts(void **state) {
  (void)state;
  ms_faultsim_config(-1, 0);
  assert_int_equal(ms_faultsim_count(), 0);
  /* A spec load allocates; with the simulation off nothing is counted. */
  char path[1024];
  snprintf(path, sizeof path, "%s/schemas/examples/trial.json", MS_SOURCE_DIR);
  ms_spec *s = load_file(path);
  assert_int_equal(ms_faultsim_count(), 0);
  ms_spec_free(s);
  /* Armed with nothing failing: counts, fails nothing. */
  ms_faultsim_config(0, 0);
  s = load_file(path);
  long n = ms_faultsim_count();
  assert_true(n > 10);
  assert_int_equal(ms_faultsim_failures(), 0);
  ms_spec_free(s);
  /* Delay 3, repeat 2: exactly two failures, whatever the operation does next. */
  ms_faultsim_config(3, 2);
  ms_diag d;
  ms_diag_init(&d);
  s = NULL;
  ms_status st = ms_spec_load(&s, path, &d);
  assert_int_equal(st, MS_ERR_NOMEM);
  assert_true(ms_faultsim_failures() >= 1 && ms_faultsim_failures() <= 2);
  assert_null(s);
  ms_faultsim_config(-1, 0);
  ms_diag_deinit(&d);
  /* Many threads: every armed allocation is counted once, and exactly the
   * requested number fail. */
  const ms_spec *sp = load_file(path);
  ms_faultsim_config(0, 0);
  int bad = 0;
#pragma omp parallel num_threads(4) reduction(+ : bad)
  {
    memsink m;
    memset(&m, 0, sizeof m);
    ms_sink sink = memsink_sink(&m);
    ms_generate_params o;
    gen_opts(&o, 1, 100);
    if (ms_generate(sp, &o, &sink, NULL, NULL) != MS_OK) bad++;
    memsink_free(&m);
  }
  long n4 = ms_faultsim_count();
  assert_int_equal(bad, 0);
  ms_faultsim_config(0, 0);
  {
    memsink m;
    memset(&m, 0, sizeof m);
    ms_sink sink = memsink_sink(&m);
    ms_generate_params o;
    gen_opts(&o, 1, 100);
    assert_int_equal(ms_generate(sp, &o, &sink, NULL, NULL), MS_OK);
    memsink_free(&m);
  }
  assert_int_equal(n4, 4 * ms_faultsim_count());
  ms_faultsim_config(n4 / 2, 5);
#pragma omp parallel num_threads(4)
  {
    memsink m;
    memset(&m, 0, sizeof m);
    ms_sink sink = memsink_sink(&m);
    ms_generate_params o;
    gen_opts(&o, 1, 100);
    ms_diag dd;
    ms_diag_init(&dd);
    ms_generate(sp, &o, &sink, NULL, &dd);
    ms_diag_deinit(&dd);
    memsink_free(&m);
  }
  assert_true(ms_faultsim_failures() >= 1 && ms_faultsim_failures() <= 5);
  ms_faultsim_config(-1, 0);
  ms_spec_free((ms_spec *)sp);
}

static int setup(void **state) {
  (void)state;
  gsl_set_error_handler_off();
  g_keep_going = getenv("MS_NOMEM_KEEP_GOING") != NULL;
  snprintf(g_root, sizeof g_root, "%s/test_nomem_%ld", MS_BINARY_DIR, (long)getpid());
  if (mkdir(g_root, 0777) && errno != EEXIST) return -1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  dir_clear(g_root, 1);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_nomem_faultsim_counts),
      cmocka_unit_test(test_nomem_spec_load),
      cmocka_unit_test(test_nomem_generate),
      cmocka_unit_test(test_nomem_fit),
      cmocka_unit_test(test_nomem_evaluate),
      cmocka_unit_test(test_nomem_model_load),
      cmocka_unit_test(test_nomem_phantom),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
