/* Test helpers: reading parity fixtures (tests/golden/nn/CASE_golden.h5) and
 * comparing tensors with a tolerance relative to the reference's scale.
 *
 * compare(): scale = max(max|ref|, 1e-3); passes when max|got - ref| <=
 * tol * scale; on failure prints the worst element (flat index, both values)
 * so a parity break points at the exact place. Header-only, static. */
#ifndef MS_TEST_NN_FIXTURE_H
#define MS_TEST_NN_FIXTURE_H

#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  float *data;
  size_t n;
  int rank;
  size_t dims[8];
} fx_array;

static inline void fx_free(fx_array *a) {
  free(a->data);
  memset(a, 0, sizeof *a);
}

/* 0 on success; reads any numeric dataset as float (or int32 when as_int). */
static inline int fx_read(const char *file, const char *path, fx_array *a) {
  memset(a, 0, sizeof *a);
  H5E_auto2_t fn;
  void *cd;
  H5Eget_auto2(H5E_DEFAULT, &fn, &cd);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  int rc = -1;
  hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f >= 0) {
    hid_t ds = H5Dopen2(f, path, H5P_DEFAULT);
    if (ds >= 0) {
      hid_t sp = H5Dget_space(ds);
      hsize_t dims[8];
      a->rank = H5Sget_simple_extent_ndims(sp);
      if (a->rank >= 0 && a->rank <= 8) {
        H5Sget_simple_extent_dims(sp, dims, NULL);
        a->n = 1;
        for (int i = 0; i < a->rank; i++) {
          a->dims[i] = (size_t)dims[i];
          a->n *= (size_t)dims[i];
        }
        a->data = malloc((a->n ? a->n : 1) * sizeof(float));
        if (a->data && H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, a->data) >= 0)
          rc = 0;
      }
      H5Sclose(sp);
      H5Dclose(ds);
    }
    H5Fclose(f);
  }
  H5Eset_auto2(H5E_DEFAULT, fn, cd);
  if (rc) fx_free(a);
  return rc;
}

static inline int fx_read_int(const char *file, const char *path, int32_t **out, size_t *n) {
  fx_array a;
  if (fx_read(file, path, &a)) return -1;
  *out = malloc(a.n * sizeof(int32_t));
  for (size_t i = 0; i < a.n; i++) (*out)[i] = (int32_t)lrintf(a.data[i]);
  *n = a.n;
  fx_free(&a);
  return 0;
}

static inline int fx_attr_double(const char *file, const char *obj, const char *name, double *v) {
  H5E_auto2_t fn;
  void *cd;
  H5Eget_auto2(H5E_DEFAULT, &fn, &cd);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  int rc = -1;
  hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f >= 0) {
    hid_t a = H5Aopen_by_name(f, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) {
      if (H5Aread(a, H5T_NATIVE_DOUBLE, v) >= 0) rc = 0;
      H5Aclose(a);
    }
    H5Fclose(f);
  }
  H5Eset_auto2(H5E_DEFAULT, fn, cd);
  return rc;
}

/* Returns max|got-ref| / scale and prints the worst element when > tol. */
static inline double fx_compare(const char *what, const float *got, const float *ref, size_t n,
                         double tol) {
  double scale = 1e-3, worst = 0;
  size_t wi = 0;
  for (size_t i = 0; i < n; i++)
    if (fabs(ref[i]) > scale) scale = fabs(ref[i]);
  for (size_t i = 0; i < n; i++) {
    double e = fabs((double)got[i] - (double)ref[i]);
    if (!(e <= worst)) {
      worst = e;
      wi = i;
    }
  }
  double rel = worst / scale;
  if (!(rel <= tol))
    fprintf(stderr, "MISMATCH %s: max abs error %.3g (%.3g of scale %.3g) at flat index %zu: got %.8g want %.8g\n",
            what, worst, rel, scale, wi, (double)got[wi], (double)ref[wi]);
  return rel;
}

#endif
