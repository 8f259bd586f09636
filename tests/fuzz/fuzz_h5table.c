/* libFuzzer harness for the HDF5 table reader behind `medsynth inspect` and
 * `medsynth fit --data` (gen/io/h5read.c, gen/table/frame_h5.c).
 *
 * Each input is written to a file in /dev/shm (HDF5 opens files by name)
 * and read as those commands read it: open, every table's rows in chunks,
 * checksum verification, a few items of every array, and the fit frame of
 * a single-table file. Any outcome but a crash, a sanitizer report or a
 * hang is fine; damage must end in a status and a diagnostic.
 *
 * The reader runs its attribute probe in a guarded child (core/guard.h):
 * HDF5 1.10.8 itself crashes and loops on damaged global heaps, and the
 * guard turns those into diagnostics, so by default the fuzzer explores the
 * code of this process (schema parsing, dataset checks, row unpacking,
 * frame conversion). With MEDSYNTH_READ_GUARD=0 the probe runs in-process
 * too; HDF5's own faults then stop the fuzzer, so run it with -fork=N
 * -ignore_crashes=1 and sort the crashes by their top frame.
 *
 * Build by hand (tests/fuzz/run.sh does the same where it exists):
 *   CC=clang cmake -S . -B build-fuzz -DMS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug \
 *     -DMS_BUILD_BENCH=OFF -DMS_BUILD_TESTS=OFF -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link \
 *     -Wno-unknown-warning-option -Wno-unknown-attributes"
 *   cmake --build build-fuzz --target medsynth
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Igen/include -Igen \
 *     $(pkg-config --cflags hdf5) \
 *     tests/fuzz/fuzz_h5table.c build-fuzz/libmedsynth.a \
 *     $(pkg-config --libs hdf5 gsl libcjson libxxhash libpng cairo zlib) -fopenmp -lm \
 *     -o build-fuzz/fuzz_h5table
 *   build-fuzz/fuzz_h5table -max_len=200000 -timeout=30 tests/fuzz/corpus/h5table
 */
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "medsynth/fit.h"
#include "medsynth/io.h"

static char g_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  /* A stalled probe costs this long; real reads of small inputs take ms. */
  setenv("MEDSYNTH_READ_TIMEOUT", "3", 0);
  snprintf(g_path, sizeof g_path, "/dev/shm/fuzz_h5table.%ld.h5", (long)getpid());
  return 0;
}

static void read_everything(const char *path) {
  ms_diag d;
  ms_diag_init(&d);
  ms_h5_reader *r = NULL;
  if (ms_h5_reader_open(&r, path, &d) == MS_OK) {
    for (size_t t = 0; t < ms_h5_reader_n_tables(r); t++) {
      ms_chunk *c = NULL;
      if (ms_chunk_new(&c, ms_h5_reader_schema(r, t), 257) != MS_OK) continue;
      uint64_t rows = ms_h5_reader_rows(r, t);
      /* Rows beyond a few thousand add time, not paths. */
      if (rows > 4096) rows = 4096;
      for (uint64_t i = 0; i < rows; i += c->n_rows)
        if (ms_h5_reader_read(r, t, i, c, &d) != MS_OK || c->n_rows == 0) break;
      ms_chunk_free(c);
      ms_h5_reader_verify(r, t, NULL, &d);
    }
    for (size_t a = 0; a < ms_h5_reader_n_arrays(r); a++) {
      const uint64_t *dims = ms_h5_reader_array_dims(r, a);
      size_t item = ms_dtype_size(ms_h5_reader_array_dtype(r, a));
      for (int k = 1; k < ms_h5_reader_array_rank(r, a); k++) item *= (size_t)dims[k];
      if (item > ((size_t)64 << 20)) continue;
      void *buf = malloc(item ? item : 1);
      for (uint64_t i = 0; buf && i < dims[0] && i < 4; i++)
        if (ms_h5_reader_read_items(r, a, i, 1, buf, &d) != MS_OK) break;
      free(buf);
      if (dims[0] <= 64) ms_h5_reader_verify_array(r, a, &d);
    }
    size_t n_tables = ms_h5_reader_n_tables(r);
    uint64_t rows0 = n_tables ? ms_h5_reader_rows(r, 0) : 0;
    ms_h5_reader_free(r);
    if (n_tables == 1 && rows0 <= 4096) {
      ms_frame *f = NULL;
      ms_frame_read_h5(&f, path, NULL, NULL, &d);
      ms_frame_free(f);
    }
  }
  char *msg = ms_diag_format(&d);
  free(msg);
  ms_diag_deinit(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FILE *f = fopen(g_path, "wb");
  if (!f) return 0;
  size_t w = fwrite(data, 1, size, f);
  fclose(f);
  if (w == size) read_everything(g_path);
  unlink(g_path);
  return 0;
}
