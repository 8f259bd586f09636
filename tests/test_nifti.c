/* Tests of the NIfTI-1 writer (gen/io/nifti.c).
 * ctest-labels: unit
 *
 * The header is checked at its nifti1.h byte offsets; the .nii.gz file is
 * decompressed with zlib and must hold exactly header + 4 zero bytes + data.
 * The nibabel round trip lives in tests/cli/phantom_nifti.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <unistd.h>
#include <zlib.h>

#include "medsynth/nifti.h"

static float f32(const unsigned char *h, size_t off) {
  float v;
  memcpy(&v, h + off, 4);
  return v;
}
static int16_t i16(const unsigned char *h, size_t off) {
  int16_t v;
  memcpy(&v, h + off, 2);
  return v;
}

static void test_nifti_header_fields(void **state) {
  (void)state;
  ms_nifti_desc n;
  ms_nifti_desc_init(&n);
  n.dtype = MS_NIFTI_UINT8;
  n.dim[0] = 5;
  n.dim[1] = 4;
  n.dim[2] = 3;
  n.pixdim[0] = 0.5;
  n.pixdim[1] = 0.5;
  n.pixdim[2] = 2;
  unsigned char h[348];
  assert_int_equal(ms_nifti_header(h, &n, NULL), MS_OK);
  int32_t sz;
  memcpy(&sz, h, 4);
  assert_int_equal(sz, 348);
  assert_int_equal(i16(h, 40), 3);
  assert_int_equal(i16(h, 42), 5);
  assert_int_equal(i16(h, 44), 4);
  assert_int_equal(i16(h, 46), 3);
  assert_int_equal(i16(h, 70), 2); /* DT_UINT8 */
  assert_int_equal(i16(h, 72), 8);
  assert_true(f32(h, 76) == 1 && f32(h, 80) == 0.5f && f32(h, 88) == 2);
  assert_true(f32(h, 108) == 352 && f32(h, 112) == 1 && f32(h, 116) == 0);
  assert_int_equal(h[123], 2); /* mm */
  assert_int_equal(i16(h, 252), 1);
  assert_int_equal(i16(h, 254), 1);
  assert_true(f32(h, 264) == 1); /* quatern_d */
  assert_true(f32(h, 280) == -0.5f && f32(h, 292) == 1.0f);       /* srow_x */
  assert_true(f32(h, 300) == -0.5f && f32(h, 308) == 0.75f);     /* srow_y */
  assert_true(f32(h, 320) == 2.0f && f32(h, 324) == -2.0f);      /* srow_z */
  assert_memory_equal(h + 344, "n+1\0", 4);
  n.dim[2] = 0;
  assert_int_equal(ms_nifti_header(h, &n, NULL), MS_ERR_RANGE);
  n.dim[2] = 1;
  n.pixdim[1] = -1;
  assert_int_equal(ms_nifti_header(h, &n, NULL), MS_ERR_RANGE);
}

static void test_nifti_gz_holds_header_and_data(void **state) {
  (void)state;
  ms_nifti_desc n;
  ms_nifti_desc_init(&n);
  n.dim[0] = 7;
  n.dim[1] = 6;
  n.dim[2] = 5;
  float data[7 * 6 * 5];
  for (int i = 0; i < 210; i++) data[i] = (float)i * 0.5f - 3;
  ms_diag d;
  ms_diag_init(&d);
  assert_int_equal(ms_nifti_write("t.nii.gz", &n, data, &d), MS_OK);
  gzFile g = gzopen("t.nii.gz", "rb");
  assert_non_null(g);
  unsigned char buf[352 + sizeof data + 16];
  int got = gzread(g, buf, sizeof buf);
  gzclose(g);
  assert_int_equal(got, 352 + (int)sizeof data);
  unsigned char h[348];
  ms_nifti_header(h, &n, NULL);
  assert_memory_equal(buf, h, 348);
  assert_memory_equal(buf + 348, "\0\0\0\0", 4);
  assert_memory_equal(buf + 352, data, sizeof data);
  /* Plain .nii is uncompressed, same bytes. */
  assert_int_equal(ms_nifti_write("t.nii", &n, data, &d), MS_OK);
  FILE *f = fopen("t.nii", "rb");
  unsigned char raw[352 + sizeof data + 16];
  size_t rn = fread(raw, 1, sizeof raw, f);
  fclose(f);
  assert_int_equal(rn, 352 + sizeof data);
  assert_memory_equal(raw, buf, rn);
  /* A folder that does not exist: error, nothing written. */
  assert_int_equal(ms_nifti_write("no/such/t.nii.gz", &n, data, &d), MS_ERR_IO);
  unlink("t.nii.gz");
  unlink("t.nii");
  ms_diag_deinit(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_nifti_header_fields),
      cmocka_unit_test(test_nifti_gz_holds_header_and_data),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
