/* PNG output (libpng): grey and RGB images written atomically, a reader for
 * checks, and contact sheets of many float images with optional label
 * overlays.
 *
 * Usage:
 *   // one 8-bit grey image, rows top to bottom
 *   ms_png_write("slice.png", pixels, width, height, 1, 8, &diag);
 *
 *   // N float images [N][H][W] windowed to grey, masks [N][H][W] as contours
 *   ms_sheet_params o; ms_sheet_params_init(&o);
 *   o.window_center = 40; o.window_width = 400; o.overlay = MS_OVERLAY_CONTOUR;
 *   ms_png_contact_sheet("sheet.png", images, masks, n, H, W, &o, &diag);
 *
 * Files are written to a temporary file in the target's folder and renamed
 * only on success; an existing target is replaced. Output bytes are a pure
 * function of the pixels (fixed compression settings, no time chunk).
 *
 * Pixel layout: row-major, samples interleaved (grey, or R G B, or R G B A);
 * 8-bit samples are uint8_t, 16-bit samples uint16_t in host byte order.
 *
 * Ownership: ms_png_read fills a caller struct whose pixels the caller
 * releases with ms_png_image_deinit; ms_sheet_render returns a malloc'd
 * buffer the caller frees. */
#ifndef MEDSYNTH_PNG_H
#define MEDSYNTH_PNG_H

#include <stddef.h>
#include <stdint.h>

#include "medsynth/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* channels: 1 (grey), 2 (grey+alpha), 3 (RGB), 4 (RGBA); bit_depth 8 or 16. */
ms_status ms_png_write(const char *path, const void *pixels, int width, int height, int channels,
                       int bit_depth, ms_diag *d);

typedef struct {
  int width, height, channels, bit_depth;
  void *pixels; /* as for ms_png_write */
} ms_png_image;

/* Reads any PNG; palette images become RGB, low bit depths 8-bit, and
 * transparency chunks are kept as given (no alpha expansion). */
ms_status ms_png_read(const char *path, ms_png_image *out, ms_diag *d);
void ms_png_image_deinit(ms_png_image *img);

typedef enum { MS_OVERLAY_NONE, MS_OVERLAY_CONTOUR, MS_OVERLAY_FILL, MS_OVERLAY_COUNT } ms_overlay;
const char *ms_overlay_name(ms_overlay o);
ms_overlay ms_overlay_from_name(const char *name);

typedef struct {
  int columns;          /* tiles per row; 0 = ceil(sqrt(N)) */
  int pad;              /* pixels between tiles and around the sheet; default 2 */
  double window_center; /* grey = clamp((v - (c - w/2)) / w) * 255 */
  double window_width;  /* > 0; default centre 0.5, width 1 */
  ms_overlay overlay;   /* used when masks are given; default contour */
  double alpha;         /* fill opacity 0..1; default 0.4 */
  uint8_t background;   /* grey level of padding; default 0 */
} ms_sheet_params;

void ms_sheet_params_init(ms_sheet_params *o);

/* Fixed colour of a mask label (label 0 is black; lesion labels >= 100 are
 * shades of yellow-red). */
void ms_label_color(int label, uint8_t rgb[3]);

/* Renders the sheet into a new RGB buffer (*out_w x *out_h x 3). images:
 * [n][H][W] floats; masks: [n][H][W] labels or NULL. */
ms_status ms_sheet_render(uint8_t **out_rgb, int *out_w, int *out_h, const float *images,
                          const uint8_t *masks, size_t n, int H, int W, const ms_sheet_params *o,
                          ms_diag *d);
/* ms_sheet_render + ms_png_write (8-bit RGB). */
ms_status ms_png_contact_sheet(const char *path, const float *images, const uint8_t *masks,
                               size_t n, int H, int W, const ms_sheet_params *o, ms_diag *d);

#ifdef __cplusplus
}
#endif
#endif
