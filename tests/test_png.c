/* Tests of the PNG writer/reader and contact sheets (gen/io/png.c).
 * ctest-labels: unit
 *
 * Files are decoded again with libpng and compared pixel for pixel; the
 * same pixels must give the same bytes; a failed write leaves no file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <unistd.h>

#include "medsynth/png.h"

static char *read_all(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  rewind(f);
  char *b = malloc((size_t)len);
  assert_int_equal(fread(b, 1, (size_t)len, f), (size_t)len);
  fclose(f);
  *n = (size_t)len;
  return b;
}

static void roundtrip(int channels, int bits, int W, int H) {
  size_t n = (size_t)W * H * channels;
  size_t bytes = n * (bits / 8);
  uint8_t *px = malloc(bytes);
  for (size_t i = 0; i < n; i++) {
    if (bits == 8) px[i] = (uint8_t)(i * 37 + 11);
    else ((uint16_t *)px)[i] = (uint16_t)(i * 2654435761u >> 7);
  }
  char path[] = "test_png_rt.png";
  ms_diag d;
  ms_diag_init(&d);
  assert_int_equal(ms_png_write(path, px, W, H, channels, bits, &d), MS_OK);
  ms_png_image im;
  assert_int_equal(ms_png_read(path, &im, &d), MS_OK);
  assert_int_equal(im.width, W);
  assert_int_equal(im.height, H);
  assert_int_equal(im.channels, channels);
  assert_int_equal(im.bit_depth, bits);
  assert_memory_equal(im.pixels, px, bytes);
  ms_png_image_deinit(&im);
  /* Deterministic bytes. */
  size_t n1, n2;
  char *a = read_all(path, &n1);
  assert_int_equal(ms_png_write("test_png_rt2.png", px, W, H, channels, bits, &d), MS_OK);
  char *b = read_all("test_png_rt2.png", &n2);
  assert_int_equal(n1, n2);
  assert_memory_equal(a, b, n1);
  assert_null(memmem(a, n1, "tIME", 4));
  free(a);
  free(b);
  free(px);
  unlink(path);
  unlink("test_png_rt2.png");
  ms_diag_deinit(&d);
}

static void test_png_roundtrip_exact(void **state) {
  (void)state;
  roundtrip(1, 8, 37, 21);
  roundtrip(1, 16, 19, 23);
  roundtrip(3, 8, 16, 9);
  roundtrip(3, 16, 5, 7);
  roundtrip(4, 8, 3, 3);
}

static void test_png_failed_write_leaves_nothing(void **state) {
  (void)state;
  ms_diag d;
  ms_diag_init(&d);
  uint8_t px[4] = {1, 2, 3, 4};
  assert_int_equal(ms_png_write("no/such/dir/x.png", px, 2, 2, 1, 8, &d), MS_ERR_IO);
  assert_int_equal(ms_png_write("bad.png", px, 0, 2, 1, 8, &d), MS_ERR_INVALID);
  assert_int_equal(ms_png_write("bad.png", px, 2, 2, 5, 8, &d), MS_ERR_INVALID);
  assert_int_equal(access("bad.png", F_OK), -1);
  ms_png_image im;
  FILE *f = fopen("not_png.png", "wb");
  fputs("hello world, not a png", f);
  fclose(f);
  assert_int_equal(ms_png_read("not_png.png", &im, &d), MS_ERR_FORMAT);
  unlink("not_png.png");
  assert_int_equal(ms_png_read("missing.png", &im, &d), MS_ERR_NOTFOUND);
  assert_true(d.n_errors == 5);
  ms_diag_deinit(&d);
}

static void test_png_contact_sheet_layout_and_overlay(void **state) {
  (void)state;
  enum { N = 5, H = 6, W = 8 };
  float img[N * H * W];
  uint8_t mask[N * H * W];
  for (int t = 0; t < N; t++)
    for (int i = 0; i < H * W; i++) {
      img[t * H * W + i] = (float)(t * 0.25); /* grey 0, 64, 128, 191, 255 */
      int y = i / W, x = i % W;
      mask[t * H * W + i] = (x >= 2 && x < 6 && y >= 2 && y < 5) ? 11 : 0;
    }
  ms_sheet_params o;
  ms_sheet_params_init(&o);
  o.window_center = 0.5;
  o.window_width = 1.0;
  o.columns = 3;
  o.pad = 1;
  o.background = 7;
  ms_diag d;
  ms_diag_init(&d);
  assert_int_equal(ms_png_contact_sheet("sheet.png", img, mask, N, H, W, &o, &d), MS_OK);
  ms_png_image im;
  assert_int_equal(ms_png_read("sheet.png", &im, &d), MS_OK);
  assert_int_equal(im.width, 3 * (W + 1) + 1);
  assert_int_equal(im.height, 2 * (H + 1) + 1);
  assert_int_equal(im.channels, 3);
  const uint8_t *p = im.pixels;
#define PX(x, y) (p + ((size_t)(y) * im.width + (x)) * 3)
  uint8_t lung[3];
  ms_label_color(11, lung);
  for (int t = 0; t < N; t++) {
    int ox = 1 + (t % 3) * (W + 1), oy = 1 + (t / 3) * (H + 1);
    uint8_t g = (uint8_t)(t == 0 ? 0 : t == 1 ? 64 : t == 2 ? 128 : t == 3 ? 191 : 255);
    assert_int_equal(PX(ox, oy)[0], g); /* outside the mask: windowed grey */
    assert_memory_equal(PX(ox + 2, oy + 2), lung, 3); /* mask edge: contour colour */
    assert_int_equal(PX(ox + 3, oy + 3)[1], g); /* mask interior: untouched */
  }
  assert_int_equal(PX(0, 0)[0], 7);                          /* padding */
  assert_int_equal(PX(im.width - 2, im.height - 2)[0], 7);  /* empty sixth tile */
  ms_png_image_deinit(&im);
  /* Fill overlay blends with alpha. */
  o.overlay = MS_OVERLAY_FILL;
  o.alpha = 0.5;
  uint8_t *rgb;
  int sw, sh;
  assert_int_equal(ms_sheet_render(&rgb, &sw, &sh, img, mask, N, H, W, &o, &d), MS_OK);
  const uint8_t *q = rgb + ((size_t)(1 + 3) * sw + (1 + 3)) * 3;
  assert_int_equal(q[0], (uint8_t)((0 + lung[0]) / 2.0 + 0.5));
  free(rgb);
  /* No masks (the diffusion sampler's grid): plain grey tiles. */
  assert_int_equal(ms_sheet_render(&rgb, &sw, &sh, img, NULL, N, H, W, &o, &d), MS_OK);
  assert_int_equal(rgb[((size_t)(1 + 3) * sw + (1 + 3)) * 3], 0);
  free(rgb);
  o.window_width = 0;
  assert_int_equal(ms_sheet_render(&rgb, &sw, &sh, img, NULL, N, H, W, &o, &d), MS_ERR_INVALID);
  unlink("sheet.png");
  ms_diag_deinit(&d);
  assert_int_equal(ms_overlay_from_name("fill"), MS_OVERLAY_FILL);
  assert_int_equal(ms_overlay_from_name("blob"), MS_OVERLAY_COUNT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_png_roundtrip_exact),
      cmocka_unit_test(test_png_failed_write_leaves_nothing),
      cmocka_unit_test(test_png_contact_sheet_layout_and_overlay),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
