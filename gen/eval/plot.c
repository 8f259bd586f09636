/* Report plots drawn with cairo and written as PNG: real-vs-synthetic
 * histograms (numeric) and bar charts (categorical), side-by-side
 * association heatmaps with a colour bar, and distance-to-closest-record
 * distributions. Every plot has a title, labelled axes with tick labels and a
 * legend. Files are written through ms__atomic_write (gen/io/atomic.c): a
 * temporary name, renamed on success.
 *
 * Tick positions use the "nice numbers" rule (1, 2, 5 x 10^k) of Heckbert,
 * "Nice numbers for graph labels", Graphics Gems (1990). */
#include <cairo.h>
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/diag.h"
#include "eval/eval_internal.h"
#include "io/atomic.h"

#define W 720
#define H 440
#define ML 70.0
#define MR 20.0
#define MT 40.0
#define MB 60.0

static const double col_a[3] = {0.17, 0.40, 0.70}; /* real: blue */
static const double col_b[3] = {0.90, 0.45, 0.10}; /* synthetic: orange */

/* Cairo's text API loads fontconfig, which keeps process-wide caches that
 * LeakSanitizer reports. After a batch of plots both are released: cairo's
 * through cairo_debug_reset_static_data and fontconfig's through FcFini,
 * looked up at run time because fontconfig is linked only through cairo.
 * Not to be called while another thread draws text. */
void ms__plot_release_fonts(void) {
  cairo_debug_reset_static_data();
  void (*fc_fini)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "FcFini");
  if (fc_fini) fc_fini();
}

static double nice_num(double x, int round_it) {
  double e = floor(log10(x)), f = x / pow(10, e), nf;
  if (round_it) nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
  else nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
  return nf * pow(10, e);
}

typedef struct {
  FILE *fp;
  int err; /* errno of the first failed write */
} png_sink;

static cairo_status_t sink_write(void *closure, const unsigned char *data, unsigned int len) {
  png_sink *k = closure;
  if (fwrite(data, 1, len, k->fp) == len) return CAIRO_STATUS_SUCCESS;
  if (!k->err) k->err = errno ? errno : EIO;
  return CAIRO_STATUS_WRITE_ERROR;
}

/* ms__atomic_fill: the surface as PNG. */
static int write_surface(FILE *fp, void *ctx) {
  png_sink k = {fp, 0};
  cairo_status_t cs = cairo_surface_write_to_png_stream(ctx, sink_write, &k);
  if (cs == CAIRO_STATUS_SUCCESS) return 0;
  return k.err ? k.err : cs == CAIRO_STATUS_NO_MEMORY ? ENOMEM : EIO;
}

/* A surface or context that cairo could not allocate carries
 * CAIRO_STATUS_NO_MEMORY (cairo's allocations are its own, not the library
 * hook's). */
static ms_status finish(cairo_surface_t *s, cairo_t *cr, const char *path, ms_diag *d) {
  cairo_status_t cs = cairo_status(cr);
  cairo_destroy(cr);
  ms_status st;
  if (cs == CAIRO_STATUS_NO_MEMORY)
    st = ms__diag_nomem(d, path, NULL, "a plot");
  else
    st = ms__atomic_write(path, 1, write_surface, s, d);
  cairo_surface_destroy(s);
  return st;
}

static cairo_t *start(cairo_surface_t **s, int w, int h) {
  *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
  cairo_t *cr = cairo_create(*s);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  return cr;
}

static void text_at(cairo_t *cr, double x, double y, const char *s, double size, double ax,
                    double ay, int bold) {
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
  cairo_text_extents_t e;
  cairo_text_extents(cr, s, &e);
  cairo_move_to(cr, x - e.width * ax - e.x_bearing, y + e.height * ay);
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_show_text(cr, s);
}

static void fmt_tick(char *b, size_t cap, double v, double step) {
  if (fabs(v) < step * 1e-9) v = 0;
  int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
  if (fabs(v) >= 1e5 || (fabs(v) < 1e-3 && v != 0)) snprintf(b, cap, "%.2g", v);
  else snprintf(b, cap, "%.*f", dec, v);
}

/* Axes box, y ticks over [0, ymax], title and axis labels. Returns y scale. */
static void frame_axes(cairo_t *cr, const char *title, const char *xlabel, const char *ylabel,
                       double ymax) {
  double pw = W - ML - MR, ph = H - MT - MB;
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, ML, MT, pw, ph);
  cairo_stroke(cr);
  double step = nice_num(ymax / 5, 1);
  for (double v = 0; v <= ymax * 1.0001; v += step) {
    double y = MT + ph - v / ymax * ph;
    cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
    cairo_move_to(cr, ML + 1, y);
    cairo_line_to(cr, ML + pw - 1, y);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_move_to(cr, ML - 5, y);
    cairo_line_to(cr, ML, y);
    cairo_stroke(cr);
    char b[32];
    fmt_tick(b, sizeof b, v, step);
    text_at(cr, ML - 8, y, b, 11, 1, 0.5, 0);
  }
  text_at(cr, W / 2.0, 14, title, 15, 0.5, 1, 1);
  text_at(cr, ML + pw / 2, H - 12, xlabel, 12, 0.5, 0, 0);
  cairo_save(cr);
  cairo_translate(cr, 16, MT + ph / 2);
  cairo_rotate(cr, -M_PI / 2);
  text_at(cr, 0, 0, ylabel, 12, 0.5, 1, 0);
  cairo_restore(cr);
}

static void legend(cairo_t *cr, const char *la, const char *lb, int filled) {
  double x = W - MR - 150, y = MT + 10;
  cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
  cairo_rectangle(cr, x - 6, y - 4, 146, 44);
  cairo_fill(cr);
  const char *l[2] = {la, lb};
  const double *c[2] = {col_a, col_b};
  for (int i = 0; i < 2; i++) {
    cairo_set_source_rgba(cr, c[i][0], c[i][1], c[i][2], filled ? 0.6 : 1);
    if (filled) {
      cairo_rectangle(cr, x, y + i * 20, 24, 12);
      cairo_fill(cr);
    } else {
      cairo_set_line_width(cr, 2.5);
      cairo_move_to(cr, x, y + i * 20 + 6);
      cairo_line_to(cr, x + 24, y + i * 20 + 6);
      cairo_stroke(cr);
    }
    text_at(cr, x + 32, y + i * 20 + 6, l[i], 12, 0, 0.5, 0);
  }
}

ms_status ms__plot_hist(const char *path, const char *title, const char *xlabel, const double *a,
                        size_t na, const double *b, size_t nb, const char *la, const char *lb,
                        ms_diag *dg) {
  double mn = INFINITY, mx = -INFINITY;
  for (size_t i = 0; i < na; i++)
    if (isfinite(a[i])) mn = fmin(mn, a[i]), mx = fmax(mx, a[i]);
  for (size_t i = 0; i < nb; i++)
    if (isfinite(b[i])) mn = fmin(mn, b[i]), mx = fmax(mx, b[i]);
  if (!isfinite(mn)) mn = 0, mx = 1;
  if (mx <= mn) mx = mn + 1, mn -= 1;
  enum { NB = 30 };
  double ha[NB] = {0}, hb[NB] = {0}, wbin = (mx - mn) / NB, ca = 0, cb = 0;
  for (size_t i = 0; i < na; i++)
    if (isfinite(a[i])) {
      int k = (int)((a[i] - mn) / wbin);
      ha[k >= NB ? NB - 1 : k] += 1, ca++;
    }
  for (size_t i = 0; i < nb; i++)
    if (isfinite(b[i])) {
      int k = (int)((b[i] - mn) / wbin);
      hb[k >= NB ? NB - 1 : k] += 1, cb++;
    }
  double ymax = 0;
  for (int k = 0; k < NB; k++) {
    ha[k] = ca > 0 ? ha[k] / ca : 0;
    hb[k] = cb > 0 ? hb[k] / cb : 0;
    ymax = fmax(ymax, fmax(ha[k], hb[k]));
  }
  ymax = ymax > 0 ? ymax * 1.1 : 1;
  cairo_surface_t *s;
  cairo_t *cr = start(&s, W, H);
  frame_axes(cr, title, xlabel, "share of rows", ymax);
  double pw = W - ML - MR, ph = H - MT - MB;
  const double *hh[2] = {ha, hb};
  const double *cc[2] = {col_a, col_b};
  for (int set = 0; set < 2; set++) {
    for (int k = 0; k < NB; k++) {
      double x0 = ML + pw * k / NB, bw = pw / NB;
      double y = MT + ph - hh[set][k] / ymax * ph;
      cairo_set_source_rgba(cr, cc[set][0], cc[set][1], cc[set][2], 0.45);
      cairo_rectangle(cr, x0, y, bw, MT + ph - y);
      cairo_fill(cr);
    }
    cairo_set_source_rgb(cr, cc[set][0], cc[set][1], cc[set][2]);
    cairo_set_line_width(cr, 1.5);
    cairo_move_to(cr, ML, MT + ph);
    for (int k = 0; k < NB; k++) {
      double y = MT + ph - hh[set][k] / ymax * ph;
      cairo_line_to(cr, ML + pw * k / NB, y);
      cairo_line_to(cr, ML + pw * (k + 1) / NB, y);
    }
    cairo_line_to(cr, ML + pw, MT + ph);
    cairo_stroke(cr);
  }
  double step = nice_num((mx - mn) / 7, 1);
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_set_line_width(cr, 1);
  for (double v = ceil(mn / step) * step; v <= mx + step * 1e-9; v += step) {
    double x = ML + (v - mn) / (mx - mn) * pw;
    cairo_move_to(cr, x, MT + ph);
    cairo_line_to(cr, x, MT + ph + 5);
    cairo_stroke(cr);
    char t[32];
    fmt_tick(t, sizeof t, v, step);
    text_at(cr, x, MT + ph + 9, t, 11, 0.5, 1, 0);
  }
  legend(cr, la, lb, 1);
  return finish(s, cr, path, dg);
}

ms_status ms__plot_bars(const char *path, const char *title, const char *const *labels, size_t nl,
                        const double *fa, const double *fb, const char *la, const char *lb,
                        ms_diag *dg) {
  double ymax = 0;
  for (size_t i = 0; i < nl; i++) ymax = fmax(ymax, fmax(fa[i], fb[i]));
  ymax = ymax > 0 ? ymax * 1.15 : 1;
  cairo_surface_t *s;
  cairo_t *cr = start(&s, W, H);
  frame_axes(cr, title, "category", "share of rows", ymax);
  double pw = W - ML - MR, ph = H - MT - MB, gw = pw / (double)(nl ? nl : 1);
  for (size_t i = 0; i < nl; i++) {
    double x0 = ML + gw * i + gw * 0.15, bw = gw * 0.35;
    const double *v[2] = {fa, fb};
    const double *cc[2] = {col_a, col_b};
    for (int set = 0; set < 2; set++) {
      double y = MT + ph - v[set][i] / ymax * ph;
      cairo_set_source_rgba(cr, cc[set][0], cc[set][1], cc[set][2], 0.8);
      cairo_rectangle(cr, x0 + set * bw, y, bw, MT + ph - y);
      cairo_fill(cr);
    }
    char t[24];
    snprintf(t, sizeof t, "%.18s", labels[i]);
    text_at(cr, ML + gw * (i + 0.5), MT + ph + 9, t, nl > 12 ? 8 : 11, 0.5, 1, 0);
  }
  legend(cr, la, lb, 1);
  return finish(s, cr, path, dg);
}

/* Diverging blue-white-red for v in [-1, 1]. */
static void diverging(double v, double *r, double *g, double *b) {
  if (v > 1) v = 1;
  if (v < -1) v = -1;
  if (v >= 0) *r = 1 - 0.3 * v, *g = 1 - 0.85 * v, *b = 1 - 0.85 * v;
  else *r = 1 + 0.85 * v, *g = 1 + 0.6 * v, *b = 1 + 0.25 * v;
}

ms_status ms__plot_heatmaps(const char *path, const char *const *names, size_t d, const double *A,
                            const double *B, const char *ta, const char *tb, ms_diag *dg) {
  double lab = 130, cell = d ? fmin(24, 420.0 / (double)d) : 10, side = cell * (double)d;
  int w = (int)(2 * (lab + side) + 150), h = (int)(side + lab + 82);
  cairo_surface_t *s;
  cairo_t *cr = start(&s, w, h);
  text_at(cr, w / 2.0, 12, "Pairwise association (Pearson / Cramer's V / correlation ratio)", 15,
          0.5, 1, 1);
  const double *M[2] = {A, B};
  const char *tt[2] = {ta, tb};
  double fs = fmin(11, cell * 0.8);
  for (int p = 0; p < 2; p++) {
    double x0 = lab + p * (lab + side + 20), y0 = 62;
    text_at(cr, x0 + side / 2, y0 - 14, tt[p], 13, 0.5, 0, 1);
    for (size_t i = 0; i < d; i++)
      for (size_t j = 0; j < d; j++) {
        double r, g, b, v = M[p][i * d + j];
        if (isnan(v)) r = g = b = 0.8;
        else diverging(v, &r, &g, &b);
        cairo_set_source_rgb(cr, r, g, b);
        cairo_rectangle(cr, x0 + j * cell, y0 + i * cell, cell, cell);
        cairo_fill(cr);
      }
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_rectangle(cr, x0, y0, side, side);
    cairo_stroke(cr);
    for (size_t i = 0; i < d; i++) {
      char t[24];
      snprintf(t, sizeof t, "%.20s", names[i]);
      text_at(cr, x0 - 4, y0 + (i + 0.5) * cell, t, fs, 1, 0.5, 0);
      cairo_save(cr);
      cairo_translate(cr, x0 + (i + 0.5) * cell, y0 + side + 4);
      cairo_rotate(cr, M_PI / 2);
      text_at(cr, 0, 0, t, fs, 0, 0.5, 0);
      cairo_restore(cr);
    }
  }
  /* Colour bar. */
  double bx = w - 60, by = 62, bh = fmax(side, 120);
  for (int k = 0; k < 200; k++) {
    double v = 1 - 2.0 * k / 199, r, g, b;
    diverging(v, &r, &g, &b);
    cairo_set_source_rgb(cr, r, g, b);
    cairo_rectangle(cr, bx, by + bh * k / 200.0, 16, bh / 200.0 + 1);
    cairo_fill(cr);
  }
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_rectangle(cr, bx, by, 16, bh);
  cairo_stroke(cr);
  for (int k = 0; k <= 4; k++) {
    char t[8];
    snprintf(t, sizeof t, "%.1f", 1 - 0.5 * k);
    text_at(cr, bx + 20, by + bh * k / 4.0, t, 10, 0, 0.5, 0);
  }
  return finish(s, cr, path, dg);
}
