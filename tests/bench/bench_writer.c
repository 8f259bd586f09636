/* Writer throughput: rows/s, MB/s of packed rows, output size and peak RSS
 * for a 15-column table, through medsynth's writer (HDF5 with parallel
 * direct-chunk compression at 1 and 2 threads, levels 1/4/6; CSV and JSONL
 * at 1 and 2 threads)
 * and, as the reference in the same run, through HDF5's own shuffle+deflate
 * filter pipeline (H5Dwrite on the same packed rows).
 *
 * Usage: bench_writer [rows=2000000] [dir=/tmp]
 * Each configuration runs in a forked child so that its peak RSS
 * (getrusage ru_maxrss) is its own. Row values come from a keyed hash so the
 * data compresses like generated data rather than like zeros; a pool of 8
 * generator chunks is filled once and cycled, so the timing is the writer's
 * (the reference's packing into rows is also excluded from its timing). */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "io/io_private.h"
#include "medsynth/io.h"

#define GEN_CHUNK 65536
#define POOL 8

static char *sex[] = {"F", "M"};
static char *dx[] = {"E11.9", "I10", "J45.909", "E78.5", "K21.9", "F32.9", "M54.5", "N39.0",
                     "Z00.00", "R51"};

static ms_column cols[15];
static ms_table_schema schema;

static void make_schema(void) {
  int k = 0;
  cols[k++] = (ms_column){.name = "patient_id", .type = MS_COL_INT64, .precision = -1};
  cols[k++] = (ms_column){.name = "age", .type = MS_COL_INT64, .precision = -1};
  cols[k++] = (ms_column){.name = "sbp", .type = MS_COL_INT64, .precision = -1};
  cols[k++] = (ms_column){.name = "dbp", .type = MS_COL_INT64, .precision = -1};
  cols[k++] = (ms_column){.name = "height_cm", .type = MS_COL_FLOAT64, .precision = 1};
  cols[k++] = (ms_column){.name = "weight_kg", .type = MS_COL_FLOAT64, .precision = 1};
  cols[k++] = (ms_column){.name = "bmi", .type = MS_COL_FLOAT64, .precision = 1};
  cols[k++] = (ms_column){.name = "hba1c", .type = MS_COL_FLOAT64, .precision = 1, .nullable = 1};
  cols[k++] = (ms_column){.name = "ldl", .type = MS_COL_FLOAT64, .precision = -1};
  cols[k++] = (ms_column){.name = "sex", .type = MS_COL_CATEGORICAL, .precision = -1,
                          .n_categories = 2, .categories = sex};
  cols[k++] = (ms_column){.name = "dx_primary", .type = MS_COL_CATEGORICAL, .precision = -1,
                          .n_categories = 10, .categories = dx, .nullable = 1};
  cols[k++] = (ms_column){.name = "smoker", .type = MS_COL_BOOL, .precision = -1};
  cols[k++] = (ms_column){.name = "pregnant", .type = MS_COL_BOOL, .precision = -1};
  cols[k++] = (ms_column){.name = "birth_date", .type = MS_COL_DATE, .precision = -1};
  cols[k++] = (ms_column){.name = "mrn", .type = MS_COL_STRING, .precision = -1, .str_width = 12};
  schema = (ms_table_schema){.name = "patients", .n_columns = 15, .columns = cols};
}

static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  return x ^ (x >> 33);
}
static double unif(uint64_t r, int lane) { return (double)(mix(r * 16 + (uint64_t)lane) >> 11) * 0x1p-53; }
static double normal(uint64_t r, int lane) {
  double u = unif(r, lane), v = unif(r, lane + 8);
  return sqrt(-2 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

static void fill(ms_chunk *c, uint64_t r0) {
  c->first_row = r0;
  c->n_rows = GEN_CHUNK;
  for (size_t i = 0; i < GEN_CHUNK; i++) {
    uint64_t r = r0 + i;
    int64_t age = 20 + (int64_t)(unif(r, 0) * 66);
    ((int64_t *)c->cols[0].data)[i] = (int64_t)r + 1;
    ((int64_t *)c->cols[1].data)[i] = age;
    ((int64_t *)c->cols[2].data)[i] = (int64_t)(105 + 0.45 * (double)age + 15 * normal(r, 1));
    ((int64_t *)c->cols[3].data)[i] = (int64_t)(75 + 10 * normal(r, 2));
    double h = round((168 + 9 * normal(r, 3)) * 10) / 10, w = round((78 + 15 * normal(r, 4)) * 10) / 10;
    ((double *)c->cols[4].data)[i] = h;
    ((double *)c->cols[5].data)[i] = w;
    ((double *)c->cols[6].data)[i] = round(w / (h * h / 1e4) * 10) / 10;
    ((double *)c->cols[7].data)[i] = round(exp(1.7 + 0.12 * normal(r, 5)) * 10) / 10;
    c->cols[7].valid[i] = unif(r, 6) > 0.2;
    ((double *)c->cols[8].data)[i] = 3.0 + 0.8 * normal(r, 7);
    ((int32_t *)c->cols[9].data)[i] = unif(r, 9) < 0.508 ? 0 : 1;
    ((int32_t *)c->cols[10].data)[i] = (int32_t)(unif(r, 10) * unif(r, 10) * 10);
    c->cols[10].valid[i] = unif(r, 11) > 0.05;
    ((uint8_t *)c->cols[11].data)[i] = unif(r, 12) < 0.15;
    ((uint8_t *)c->cols[12].data)[i] = unif(r, 13) < 0.02;
    ((int32_t *)c->cols[13].data)[i] = 20089 - (int32_t)(age * 365.25) - (int32_t)(unif(r, 14) * 365);
    snprintf((char *)c->cols[14].data + i * 13, 13, "MRN-%08llu", (unsigned long long)(mix(r) % 100000000));
  }
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
  double secs;
  long bytes_out;
  long rss_kb;
  int ok;
} result;

static ms_chunk *pool[POOL];

static long file_size(const char *p) {
  struct stat sb;
  return stat(p, &sb) == 0 ? (long)sb.st_size : -1;
}

static result run_writer(const char *path, int threads, int level, uint64_t rows) {
  result res = {0};
  ms_diag d;
  ms_diag_init(&d);
  ms_writer_params o;
  ms_writer_params_init(&o);
  o.force = 1;
  o.threads = threads;
  o.compression = level;
  o.no_timestamp = 1;
  ms_writer *w;
  double t0 = now();
  if (ms_writer_open(&w, path, &o, &d)) return res;
  ms_sink k = ms_writer_sink(w);
  ms_status st = k.begin_table(k.ctx, &schema, rows);
  for (uint64_t r0 = 0; st == MS_OK && r0 < rows; r0 += GEN_CHUNK) {
    ms_chunk *c = pool[(r0 / GEN_CHUNK) % POOL];
    c->first_row = r0;
    c->n_rows = (size_t)(rows - r0 < GEN_CHUNK ? rows - r0 : GEN_CHUNK);
    st = k.write_chunk(k.ctx, c);
  }
  if (st == MS_OK) st = k.end_table(k.ctx, "patients");
  if (st == MS_OK)
    st = ms_writer_commit(w, &d);
  else
    ms_writer_abort(w);
  res.secs = now() - t0;
  res.ok = st == MS_OK;
  res.bytes_out = file_size(path);
  if (!res.ok) {
    char *m = ms_diag_format(&d);
    fprintf(stderr, "%s", m ? m : "");
    free(m);
  }
  ms_diag_deinit(&d);
  return res;
}

/* Reference: HDF5's own filters, H5Dwrite of packed rows, same chunking. */
static result run_reference(const char *path, int level, uint64_t rows) {
  result res = {0};
  ms__rowlayout L;
  if (ms__rowlayout_init(&L, &schema)) return res;
  size_t rs = L.row_size, chunk_rows = (512u * 1024u) / rs;
  uint8_t *packed[POOL];
  for (int p = 0; p < POOL; p++) {
    packed[p] = calloc(GEN_CHUNK, rs);
    const ms_chunk *c = pool[p];
    for (size_t i = 0; i < GEN_CHUNK; i++) {
      uint8_t *row = packed[p] + i * rs;
      for (size_t j = 0; j < schema.n_columns; j++) {
        const ms_column *col = &cols[j];
        uint8_t *o = row + L.offset[j];
        int valid = c->cols[j].valid ? c->cols[j].valid[i] : 1;
        if (col->type == MS_COL_CATEGORICAL) {
          const char *lab = valid ? col->categories[((int32_t *)c->cols[j].data)[i]] : "";
          strncpy((char *)o, lab, L.width[j]);
        } else if (col->type == MS_COL_STRING) {
          strncpy((char *)o, (const char *)c->cols[j].data + i * 13, L.width[j]);
        } else if (col->type == MS_COL_FLOAT64 && !valid) {
          double nan = NAN;
          memcpy(o, &nan, 8);
        } else {
          memcpy(o, (const uint8_t *)c->cols[j].data + i * ms_column_value_size(col), L.width[j]);
        }
        if (L.valid_off[j] != SIZE_MAX) row[L.valid_off[j]] = (uint8_t)valid;
      }
    }
  }
  double t0 = now();
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110);
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  hid_t ft = ms__rowlayout_h5type(&L, &schema, NULL);
  hsize_t dim0 = 0, maxd = H5S_UNLIMITED, cd = chunk_rows;
  hid_t sp = H5Screate_simple(1, &dim0, &maxd);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(dcpl, 1, &cd);
  H5Pset_shuffle(dcpl);
  H5Pset_deflate(dcpl, (unsigned)level);
  hid_t ds = H5Dcreate2(f, "patients", ft, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  int ok = ds >= 0;
  for (uint64_t r0 = 0; ok && r0 < rows; r0 += GEN_CHUNK) {
    hsize_t n = rows - r0 < GEN_CHUNK ? rows - r0 : GEN_CHUNK, ext = r0 + n, start = r0;
    ok = H5Dset_extent(ds, &ext) >= 0;
    hid_t fs = H5Dget_space(ds), ms = H5Screate_simple(1, &n, NULL);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &n, NULL);
    ok = ok && H5Dwrite(ds, ft, ms, fs, H5P_DEFAULT, packed[(r0 / GEN_CHUNK) % POOL]) >= 0;
    H5Sclose(fs);
    H5Sclose(ms);
  }
  H5Dclose(ds);
  H5Pclose(dcpl);
  H5Sclose(sp);
  H5Tclose(ft);
  H5Fclose(f);
  H5Pclose(fapl);
  res.secs = now() - t0;
  res.ok = ok;
  res.bytes_out = file_size(path);
  for (int p = 0; p < POOL; p++) free(packed[p]);
  ms__rowlayout_deinit(&L);
  return res;
}

typedef struct {
  const char *label;
  const char *ext;
  int threads, level, reference;
} config;

int main(int argc, char **argv) {
  uint64_t rows = argc > 1 ? strtoull(argv[1], NULL, 10) : 2000000;
  const char *dir = argc > 2 ? argv[2] : "/tmp";
  make_schema();
  for (int p = 0; p < POOL; p++) {
    if (ms_chunk_new(&pool[p], &schema, GEN_CHUNK)) return 1;
    fill(pool[p], (uint64_t)p * GEN_CHUNK);
  }
  ms__rowlayout L;
  ms__rowlayout_init(&L, &schema);
  size_t rs = L.row_size;
  ms__rowlayout_deinit(&L);
  const config cfg[] = {
      {"medsynth hdf5 L0 (no filters)", "h5", 1, 0, 0},
      {"medsynth hdf5 L1 1 thread", "h5", 1, 1, 0},
      {"medsynth hdf5 L1 2 threads", "h5", 2, 1, 0},
      {"medsynth hdf5 L4 1 thread", "h5", 1, 4, 0},
      {"medsynth hdf5 L4 2 threads", "h5", 2, 4, 0},
      {"medsynth hdf5 L6 1 thread", "h5", 1, 6, 0},
      {"medsynth hdf5 L6 2 threads", "h5", 2, 6, 0},
      {"HDF5 filters L1 (reference)", "h5", 1, 1, 1},
      {"HDF5 filters L4 (reference)", "h5", 1, 4, 1},
      {"HDF5 filters L6 (reference)", "h5", 1, 6, 1},
      {"medsynth csv 1 thread", "csv", 1, 0, 0},
      {"medsynth csv 2 threads", "csv", 2, 0, 0},
      {"medsynth jsonl 1 thread", "jsonl", 1, 0, 0},
      {"medsynth jsonl 2 threads", "jsonl", 2, 0, 0},
  };
  printf("bench_writer: %llu rows x 15 columns, packed row %zu bytes, %d cores online\n",
         (unsigned long long)rows, rs, omp_get_num_procs());
  printf("%-30s %10s %12s %9s %10s %10s\n", "configuration", "seconds", "rows/s", "MB/s", "out MB",
         "peak RSS MB");
  for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
    char path[512];
    snprintf(path, sizeof path, "%s/bench_writer.%d.%zu.%s", dir, (int)getpid(), i, cfg[i].ext);
    int fd[2];
    if (pipe(fd)) return 1;
    pid_t pid = fork();
    if (pid == 0) {
      close(fd[0]);
      result r = cfg[i].reference ? run_reference(path, cfg[i].level, rows)
                                  : run_writer(path, cfg[i].threads, cfg[i].level, rows);
      struct rusage ru;
      getrusage(RUSAGE_SELF, &ru);
      r.rss_kb = ru.ru_maxrss;
      if (write(fd[1], &r, sizeof r) != sizeof r) _exit(1);
      _exit(0);
    }
    close(fd[1]);
    result r = {0};
    ssize_t got = read(fd[0], &r, sizeof r);
    close(fd[0]);
    waitpid(pid, NULL, 0);
    unlink(path);
    if (got != sizeof r || !r.ok) {
      printf("%-30s failed\n", cfg[i].label);
      continue;
    }
    printf("%-30s %10.3f %12.0f %9.1f %10.1f %10.1f\n", cfg[i].label, r.secs,
           (double)rows / r.secs, (double)rows * (double)rs / r.secs / 1e6, r.bytes_out / 1e6,
           r.rss_kb / 1024.0);
    fflush(stdout);
  }
  for (int p = 0; p < POOL; p++) ms_chunk_free(pool[p]);
  return 0;
}
