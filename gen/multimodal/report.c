/* Radiology reports of phantom images from their exact lesion tables
 * (multimodal/report.h, docs/dicom.md "Reports").
 *
 * Every statement is computed from the lesions measured on the rendered
 * mask, never from the designed parameters, so a report cannot contradict
 * the mask: the size is the equivalent diameter of the labelled area
 * (slices: 2 sqrt(A / pi)) or volume (volumes: cbrt(6 V / pi)) rounded to
 * whole millimetres; the side is the side of the patient the centroid lies
 * on (columns run towards the patient's left); the region is anterior,
 * central or posterior by the centroid's row; the CT density class comes
 * from the lesion's noise-free value (solid >= -100 HU, part-solid
 * -600..-100 HU, ground-glass below). Findings are listed largest first, one
 * numbered line each. The impression of a chest CT with lung lesions gives a
 * Lung-RADS-like category of the largest nodule (1 none, 2 < 6 mm, 3 6-8 mm,
 * 4A 8-15 mm, 4B >= 15 mm; ground-glass < 30 mm: 2), a simplification of
 * ACR Lung-RADS v2022 for a single examination.
 *
 * Wording varies between rows with a small template grammar whose choices
 * are keyed by (seed, field, row), so reruns give the same text. */
#include "multimodal/report.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/uuid.h"

typedef struct {
  char *p;
  size_t cap, len;
} sbuf;

static void add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(sbuf *b, const char *fmt, ...) {
  if (b->len >= b->cap) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
  va_end(ap);
  if (n > 0) b->len += (size_t)n < b->cap - b->len ? (size_t)n : b->cap - b->len - 1;
}

double ms__report_diameter_mm(const ms_phantom_lesion *l, int depth) {
  if (depth > 1) return cbrt(6.0 * l->size_mm / M_PI);
  return 2.0 * sqrt(l->size_mm / M_PI);
}

const char *ms__report_density(double value_hu) {
  if (value_hu >= -100) return "solid";
  if (value_hu >= -600) return "part-solid";
  return "ground-glass";
}

const char *ms__report_category(double d_mm, const char *density) {
  if (d_mm <= 0) return "1";
  if (!strcmp(density, "ground-glass")) return d_mm < 30 ? "2" : "3";
  if (d_mm < 6) return "2";
  if (d_mm < 8) return "3";
  if (d_mm < 15) return "4A";
  return "4B";
}

void ms__report_compose(const ms__report_in *in, char *text, size_t text_cap, char *impression,
                        size_t imp_cap, char category[4]) {
  sbuf t = {text, text_cap, 0}, m = {impression, imp_cap, 0};
  if (text_cap) text[0] = 0;
  if (imp_cap) impression[0] = 0;
  category[0] = 0;
  char key[300];
  snprintf(key, sizeof key, "report/%s", in->key);
  ms__uuid h = ms__uuid_make(in->seed, key, in->row);
  unsigned v0 = h.b[0], v1 = h.b[1], v2 = h.b[2];
  int ct = in->modality == MS_MODALITY_CT;
  int chest = in->kind == MS_PHANTOM_CHEST;
  const char *organ = ms_label_name(in->organ);
  if (!organ) organ = "organ";
  int lung = in->organ == MS_LABEL_LUNG;
  const char *what = lung ? "nodule" : "lesion";
  /* order: largest first (stable on the label for equal sizes) */
  size_t n = in->n_lesions, ord[MS_PHANTOM_MAX_LESIONS];
  for (size_t i = 0; i < n; i++) ord[i] = i;
  for (size_t i = 1; i < n; i++)
    for (size_t j = i; j > 0; j--) {
      double a = ms__report_diameter_mm(&in->lesions[ord[j - 1]], in->depth);
      double b = ms__report_diameter_mm(&in->lesions[ord[j]], in->depth);
      if (b > a) {
        size_t s = ord[j];
        ord[j] = ord[j - 1];
        ord[j - 1] = s;
      }
    }
  static const char *const heads[] = {"Findings:", "FINDINGS:", "Findings"};
  add(&t, "%s\n", heads[v0 % 3]);
  if (!n) {
    static const char *const none[] = {"No focal %s %s is seen.", "No %s %s.",
                                       "There is no focal %s %s."};
    char lbuf[64];
    snprintf(lbuf, sizeof lbuf, "%s", lung ? "pulmonary" : organ);
    add(&t, none[v1 % 3], lbuf, what);
    add(&t, "\n");
  }
  for (size_t k = 0; k < n; k++) {
    const ms_phantom_lesion *l = &in->lesions[ord[k]];
    double d = ms__report_diameter_mm(l, in->depth);
    long dmm = lround(d);
    if (dmm < 1) dmm = 1;
    const char *side = l->centroid[0] < 0.5 * (in->width - 1) ? "right" : "left";
    const char *ap = l->centroid[1] < 0.4 * in->height   ? "anterior"
                     : l->centroid[1] > 0.6 * in->height ? "posterior"
                                                          : "central";
    const char *lorg = ms_label_name(l->organ);
    if (!lorg) lorg = organ;
    char dens[32] = "";
    if (ct) snprintf(dens, sizeof dens, "%s ", ms__report_density(l->value));
    switch ((v1 + k) % 3) {
      case 0:
        add(&t, "%zu. A %s%s measuring %ld mm in the %s %s %s.\n", k + 1, dens, what, dmm, ap, side, lorg);
        break;
      case 1:
        add(&t, "%zu. %c%s%s in the %s %s %s, %ld mm.\n", k + 1, ct ? (char)(dens[0] - 32) : (char)(what[0] - 32),
            ct ? dens + 1 : what + 1, ct ? what : "", ap, side, lorg, dmm);
        break;
      default:
        add(&t, "%zu. There is a %s%s of %ld mm in the %s %s %s.\n", k + 1, dens, what, dmm, ap, side, lorg);
        break;
    }
  }
  /* impression */
  if (ct && chest && lung) {
    const char *cat = "1";
    if (n) {
      const ms_phantom_lesion *l = &in->lesions[ord[0]];
      double d = ms__report_diameter_mm(l, in->depth);
      cat = ms__report_category(d, ms__report_density(l->value));
      static const char *const f1[] = {"Lung-RADS %s: %zu pulmonary nodule%s, the largest %ld mm (%s), %s lung.",
                                       "%zu pulmonary nodule%s; largest %ld mm, %s, %s lung. Lung-RADS category %s.",
                                       "Lung-RADS %s. Largest of %zu nodule%s: %ld mm, %s, %s lung."};
      long dmm = lround(d) < 1 ? 1 : lround(d);
      const char *side = l->centroid[0] < 0.5 * (in->width - 1) ? "right" : "left";
      const char *den = ms__report_density(l->value);
      switch (v2 % 3) {
        case 0: add(&m, f1[0], cat, n, n == 1 ? "" : "s", dmm, den, side); break;
        case 1: add(&m, f1[1], n, n == 1 ? "" : "s", dmm, den, side, cat); break;
        default: add(&m, f1[2], cat, n, n == 1 ? "" : "s", dmm, den, side); break;
      }
    } else {
      static const char *const f0[] = {"Lung-RADS 1: no pulmonary nodules.", "No pulmonary nodules. Lung-RADS category 1.",
                                       "Negative screen: no nodules (Lung-RADS 1)."};
      add(&m, "%s", f0[v2 % 3]);
    }
    snprintf(category, 4, "%s", cat);
  } else if (n) {
    const ms_phantom_lesion *l = &in->lesions[ord[0]];
    long dmm = lround(ms__report_diameter_mm(l, in->depth));
    add(&m, "%zu focal %s%s in the %s, the largest %ld mm.", n, what, n == 1 ? "" : "s", organ, dmm < 1 ? 1 : dmm);
  } else {
    add(&m, "No focal %s.", what);
  }
  add(&t, "Impression: %s\n", impression);
}
