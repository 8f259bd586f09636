/* PNG writing and reading through libpng, and contact sheets.
 *
 * Invariants:
 *  - Writes go through ms__atomic_write (gen/io/atomic.c): a temporary file
 *    in the same folder, renamed over the target only after libpng finished
 *    and the file was flushed and synced; on any failure the temporary file
 *    is removed and the target is untouched.
 *  - Output bytes depend only on the pixels: compression level 6, default
 *    filters, and no tIME/tEXt chunks (libpng writes neither unless asked).
 *  - libpng reports errors by longjmp; everything that must survive the jump
 *    is volatile or lives in a struct reached through a pointer.
 *
 * References: PNG specification (ISO/IEC 15948:2004), libpng manual
 * (libpng-manual.txt, "Setting up error handling" and "Writing"). */
#include "medsynth/png.h"
#include "core/names.h"
#include "core/alloc.h"
#include "core/diag.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/atomic.h"

static int color_type_of(int channels) {
  switch (channels) {
    case 1:
      return PNG_COLOR_TYPE_GRAY;
    case 2:
      return PNG_COLOR_TYPE_GRAY_ALPHA;
    case 3:
      return PNG_COLOR_TYPE_RGB;
    case 4:
      return PNG_COLOR_TYPE_RGBA;
    default:
      return -1;
  }
}

typedef struct {
  char msg[200];
} err_ctx;

static void on_error(png_structp png, png_const_charp msg) {
  err_ctx *e = png_get_error_ptr(png);
  if (e) snprintf(e->msg, sizeof e->msg, "%s", msg);
  png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
  (void)png;
  (void)msg;
}

typedef struct {
  const void *pixels;
  int width, height, channels, bit_depth;
} png_job;

/* ms__atomic_fill: the whole PNG into f. Returns 0 or an errno value (a
 * libpng error other than a failed write, which the checks of ms_png_write
 * rule out, reads as EIO). */
static int write_stream(FILE *f, void *ctx) {
  const png_job *j = ctx;
  err_ctx e = {{0}};
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &e, on_error, on_warning);
  if (!png) return ENOMEM;
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_write_struct(&png, NULL);
    return ENOMEM;
  }
  errno = 0;
  if (setjmp(png_jmpbuf(png))) {
    int err = errno ? errno : EIO; /* libpng's "Write Error" leaves fwrite's errno */
    png_destroy_write_struct(&png, &info);
    return err;
  }
  png_init_io(png, f);
  png_set_compression_level(png, 6);
  png_set_IHDR(png, info, (png_uint_32)j->width, (png_uint_32)j->height, j->bit_depth,
               color_type_of(j->channels), PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  if (j->bit_depth == 16) {
    uint16_t probe = 1;
    if (*(uint8_t *)&probe == 1) png_set_swap(png); /* host little-endian -> PNG big-endian */
  }
  size_t stride = (size_t)j->width * (size_t)j->channels * (size_t)(j->bit_depth / 8);
  for (int y = 0; y < j->height; y++)
    png_write_row(png, (png_const_bytep)j->pixels + (size_t)y * stride);
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  return 0;
}

ms_status ms_png_write(const char *path, const void *pixels, int width, int height, int channels,
                       int bit_depth, ms_diag *d) {
  if (!path || !pixels || width < 1 || height < 1 || width > 1000000 || height > 1000000 ||
      color_type_of(channels) < 0 || (bit_depth != 8 && bit_depth != 16))
    return ms_diag_add(d, MS_ERR_INVALID, path, 0, 0, NULL,
                       "cannot write a PNG of %d x %d pixels, %d channels, %d bits", width, height,
                       channels, bit_depth);
  png_job j = {pixels, width, height, channels, bit_depth};
  return ms__atomic_write(path, 1, write_stream, &j, d);
}

typedef struct {
  png_structp png;
  png_infop info;
  uint8_t *pixels;
  png_bytep *rows;
} read_state;

static int read_stream(FILE *f, read_state *s, ms_png_image *out, err_ctx *e) {
  s->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, e, on_error, on_warning);
  if (!s->png) return -1;
  s->info = png_create_info_struct(s->png);
  if (!s->info) return -1;
  if (setjmp(png_jmpbuf(s->png))) return -1;
  png_init_io(s->png, f);
  png_read_info(s->png, s->info);
  int ct = png_get_color_type(s->png, s->info);
  int bd = png_get_bit_depth(s->png, s->info);
  if (ct == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(s->png);
  if (ct == PNG_COLOR_TYPE_GRAY && bd < 8) png_set_expand_gray_1_2_4_to_8(s->png);
  if (bd == 16) {
    uint16_t probe = 1;
    if (*(uint8_t *)&probe == 1) png_set_swap(s->png);
  }
  png_read_update_info(s->png, s->info);
  out->width = (int)png_get_image_width(s->png, s->info);
  out->height = (int)png_get_image_height(s->png, s->info);
  out->channels = png_get_channels(s->png, s->info);
  out->bit_depth = png_get_bit_depth(s->png, s->info);
  size_t stride = png_get_rowbytes(s->png, s->info);
  s->pixels = ms__malloc(stride * (size_t)out->height);
  s->rows = ms__malloc(sizeof(png_bytep) * (size_t)out->height);
  if (!s->pixels || !s->rows) return -1;
  for (int y = 0; y < out->height; y++) s->rows[y] = s->pixels + (size_t)y * stride;
  png_read_image(s->png, s->rows);
  png_read_end(s->png, NULL);
  return 0;
}

ms_status ms_png_read(const char *path, ms_png_image *out, ms_diag *d) {
  memset(out, 0, sizeof *out);
  FILE *f = fopen(path, "rb");
  if (!f) return ms_diag_add(d, MS_ERR_NOTFOUND, path, 0, 0, NULL, "cannot open: %s", strerror(errno));
  unsigned char sig[8];
  if (fread(sig, 1, 8, f) != 8 || png_sig_cmp(sig, 0, 8)) {
    fclose(f);
    return ms_diag_add(d, MS_ERR_FORMAT, path, 0, 0, NULL, "not a PNG file");
  }
  rewind(f);
  read_state s = {0};
  err_ctx e = {{0}};
  int rc = read_stream(f, &s, out, &e);
  fclose(f);
  png_destroy_read_struct(&s.png, &s.info, NULL);
  free(s.rows);
  if (rc != 0) {
    free(s.pixels);
    memset(out, 0, sizeof *out);
    return ms_diag_add(d, MS_ERR_FORMAT, path, 0, 0, NULL, "corrupt PNG%s%s", e.msg[0] ? ": " : "", e.msg);
  }
  out->pixels = s.pixels;
  return MS_OK;
}

void ms_png_image_deinit(ms_png_image *img) {
  if (!img) return;
  free(img->pixels);
  img->pixels = NULL;
}

/* ---- contact sheets ------------------------------------------------------ */

static const char *const k_overlay_names[] = {"none", "contour", "fill"};
MS__NAME_FNS(ms_overlay_name, ms_overlay_from_name, ms_overlay, k_overlay_names, MS_OVERLAY_COUNT,
             "unknown")

void ms_sheet_params_init(ms_sheet_params *o) {
  o->columns = 0;
  o->pad = 2;
  o->window_center = 0.5;
  o->window_width = 1;
  o->overlay = MS_OVERLAY_CONTOUR;
  o->alpha = 0.4;
  o->background = 0;
}

/* Distinct colours for the anatomical labels (medsynth/phantom.h order). */
static const uint8_t k_palette[][3] = {
    {0, 0, 0},       {230, 190, 160}, {255, 225, 120}, {200, 60, 60},  {240, 240, 240}, {250, 250, 200},
    {220, 220, 255}, {60, 140, 255},  {150, 150, 150}, {255, 255, 255}, {0, 200, 255},  {80, 220, 120},
    {255, 80, 120},  {255, 0, 0},     {170, 90, 40},   {200, 120, 255}, {120, 60, 200}, {60, 200, 200}};

void ms_label_color(int label, uint8_t rgb[3]) {
  int n = (int)(sizeof k_palette / sizeof k_palette[0]);
  if (label >= 0 && label < n) {
    memcpy(rgb, k_palette[label], 3);
  } else if (label >= 100) {
    int k = (label - 100) % 8;
    rgb[0] = 255;
    rgb[1] = (uint8_t)(255 - 25 * k);
    rgb[2] = 0;
  } else {
    rgb[0] = (uint8_t)(label * 67);
    rgb[1] = (uint8_t)(label * 131);
    rgb[2] = (uint8_t)(label * 29);
  }
}

static uint8_t to_grey(double v, double lo, double width) {
  double t = (v - lo) / width;
  if (!(t > 0)) return 0;
  if (t >= 1) return 255;
  return (uint8_t)lrint(t * 255.0);
}

ms_status ms_sheet_render(uint8_t **out_rgb, int *out_w, int *out_h, const float *images,
                          const uint8_t *masks, size_t n, int H, int W, const ms_sheet_params *o,
                          ms_diag *d) {
  *out_rgb = NULL;
  if (!images || n == 0 || H < 1 || W < 1 || !(o->window_width > 0) || o->pad < 0 ||
      o->columns < 0 || (unsigned)o->overlay >= MS_OVERLAY_COUNT)
    return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, "sheet",
                       "a contact sheet needs n >= 1 images of H, W >= 1 and a window width > 0");
  size_t cols = o->columns > 0 ? (size_t)o->columns : (size_t)ceil(sqrt((double)n));
  if (cols > n) cols = n;
  size_t rows = (n + cols - 1) / cols;
  double sw = (double)cols * (W + o->pad) + o->pad, sh = (double)rows * (H + o->pad) + o->pad;
  if (sw > 65535 || sh > 65535)
    return ms_diag_add(d, MS_ERR_RANGE, NULL, 0, 0, "sheet", "a %.0f x %.0f pixel sheet is too large (limit 65535)", sw, sh);
  int SW = (int)sw, SH = (int)sh;
  uint8_t *rgb = ms__malloc((size_t)SW * (size_t)SH * 3);
  if (!rgb) return ms__diag_nomem(d, NULL, "sheet", "the contact sheet");
  memset(rgb, o->background, (size_t)SW * (size_t)SH * 3);
  double lo = o->window_center - o->window_width / 2;
  double alpha = o->alpha < 0 ? 0 : o->alpha > 1 ? 1 : o->alpha;
  for (size_t t = 0; t < n; t++) {
    size_t tx = (size_t)o->pad + (t % cols) * (size_t)(W + o->pad);
    size_t ty = (size_t)o->pad + (t / cols) * (size_t)(H + o->pad);
    const float *img = images + t * (size_t)H * (size_t)W;
    const uint8_t *m = masks ? masks + t * (size_t)H * (size_t)W : NULL;
    for (int y = 0; y < H; y++) {
      for (int x = 0; x < W; x++) {
        size_t pix = (size_t)y * (size_t)W + (size_t)x;
        uint8_t g = to_grey(img[pix], lo, o->window_width);
        uint8_t *px = rgb + ((ty + (size_t)y) * (size_t)SW + tx + (size_t)x) * 3;
        px[0] = px[1] = px[2] = g;
        if (!m || o->overlay == MS_OVERLAY_NONE || m[pix] == 0) continue;
        int lab = m[pix];
        uint8_t c[3];
        ms_label_color(lab, c);
        if (o->overlay == MS_OVERLAY_FILL) {
          for (int k = 0; k < 3; k++) px[k] = (uint8_t)lrint((1 - alpha) * px[k] + alpha * c[k]);
        } else {
          int edge = (x > 0 && m[pix - 1] != lab) || (x + 1 < W && m[pix + 1] != lab) ||
                     (y > 0 && m[pix - (size_t)W] != lab) || (y + 1 < H && m[pix + (size_t)W] != lab);
          if (edge) memcpy(px, c, 3);
        }
      }
    }
  }
  *out_rgb = rgb;
  *out_w = SW;
  *out_h = SH;
  return MS_OK;
}

ms_status ms_png_contact_sheet(const char *path, const float *images, const uint8_t *masks,
                               size_t n, int H, int W, const ms_sheet_params *o, ms_diag *d) {
  uint8_t *rgb;
  int sw, sh;
  ms_status st = ms_sheet_render(&rgb, &sw, &sh, images, masks, n, H, W, o, d);
  if (st != MS_OK) return st;
  st = ms_png_write(path, rgb, sw, sh, 3, 8, d);
  free(rgb);
  return st;
}
