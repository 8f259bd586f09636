/* Deterministic relations between the columns of a real table, found so
 * that a fitted spec keeps them exactly and `evaluate` can re-check them.
 *
 * Three kinds, each holding on every row where it can be checked and on at
 * least 2k such rows (k: the fit's k_min; a relation seen on fewer rows
 * could describe a handful of people):
 *  - order between dates: a <= b, and b is present only where a is (a
 *    discharge date after its admission date; a datetime may follow a
 *    date, not the reverse); among several earlier dates the one with the
 *    smallest mean gap is kept; the same between two continuous numbers
 *    when the order is a rule of the data, not a consequence of their
 *    ranges (total cholesterol >= LDL);
 *  - exact difference: c == b - a (both dates without a time, c in days;
 *    or three numbers, within half a unit of c's last decimal), c present
 *    exactly where a and b are (los_days = discharge - admit);
 *  - functional dependency between categorical columns: every label of a
 *    determines one label of b (a code and its description), b present
 *    exactly where a is;
 *  - bands: a coarse column b (categorical, bool or discrete) set by
 *    intervals of a continuous number a (an age group and the age, a low
 *    birth weight flag and the weight): sorted by a, each label of b is
 *    one run, b present exactly where a is; the cut between two bands is
 *    the roundest number between them.
 * A column that is the result of a difference is not an operand of another
 * and a dependent column determines no other (except that a banded label
 * may determine one: age -> age group -> its text), so the relations never
 * form a cycle. Of three columns in a difference the last is derived, of two
 * columns that determine each other the later one. All checks stop at the first counter-example, so the search costs
 * about one row per candidate on tables without relations.
 *
 * Invariant: relations index columns of the frame they were found in. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "medsynth/records.h"
#include "core/alloc.h"
#include "fit/fit_internal.h"

/* The share of pairs of different rows that must break a numeric order for
 * it to count as a rule (see cross_violations). */
#define MS__ORDER_MIN_CROSS 0.05
/* Coarse columns before b tried for impossible combinations with it. */
#define MS__ZERO_WINDOW 32
/* Columns on either side of a difference searched for its operands. */
#define MS__DIFF_WINDOW 64

static int is_num(const ms_frame_col *c) {
  return c->num && (c->kind == MS_FKIND_INTEGER || c->kind == MS_FKIND_REAL);
}
static int is_date(const ms_frame_col *c) { return c->num && c->kind == MS_FKIND_DATE; }
static int is_cat(const ms_frame_col *c) { return c->code && c->kind == MS_FKIND_CATEGORICAL; }

static int constant(const ms_frame_col *c, size_t n) {
  double first = NAN;
  for (size_t r = 0; r < n; r++) {
    if (isnan(c->num[r])) continue;
    if (isnan(first)) first = c->num[r];
    else if (c->num[r] != first) return 0;
  }
  return 1;
}

static ms_status push(ms__rel **r, size_t *n, size_t *cap, ms__rel x) {
  if (*n == *cap) {
    size_t nc = *cap ? 2 * *cap : 8;
    ms__rel *nr = ms__realloc(*r, nc * sizeof *nr);
    if (!nr) return MS_ERR_NOMEM;
    *r = nr, *cap = nc;
  }
  (*r)[(*n)++] = x;
  return MS_OK;
}

/* Mean gap b - a when a <= b holds where both are present and b is present
 * only where a is, over at least min_rows rows, not all equal; else NAN. */
static double order_gap(const ms_frame_col *a, const ms_frame_col *b, size_t n, size_t min_rows) {
  double sum = 0;
  size_t cnt = 0, equal = 0;
  for (size_t r = 0; r < n; r++) {
    double x = a->num[r], y = b->num[r];
    if (isnan(y)) continue;
    if (isnan(x) || y < x) return NAN;
    sum += y - x;
    cnt++;
    equal += x == y;
  }
  return cnt >= min_rows && equal < cnt ? sum / (double)cnt : NAN;
}

static int cmp_dbl(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return (a > b) - (a < b);
}

/* The share of pairs of different rows (i, j) with b_j < a_i: how often the
 * order would break if the two columns were drawn apart. An order that
 * holds in every row but would break this often is a rule of the data (a
 * total and its part); one that would hold anyway (age <= blood pressure)
 * is left to the copula. NAN when out of memory. */
static double cross_violations(const ms_frame_col *a, const ms_frame_col *b, size_t n) {
  double *y = ms__malloc((n ? n : 1) * sizeof *y);
  if (!y) return NAN;
  size_t m = 0, na = 0;
  for (size_t r = 0; r < n; r++)
    if (!isnan(b->num[r])) y[m++] = b->num[r];
  qsort(y, m, sizeof *y, cmp_dbl);
  double below = 0;
  for (size_t r = 0; r < n; r++) {
    double x = a->num[r];
    if (isnan(x)) continue;
    size_t lo = 0, hi = m; /* values of b below x */
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (y[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    below += (double)lo;
    na++;
  }
  free(y);
  return na && m ? below / ((double)na * (double)m) : 0;
}

/* How far a computed value may be from the one written: half a unit of a
 * real column's last decimal (a hair more, for the rounding of the sum),
 * nothing for whole numbers and dates. */
double ms__relation_half_unit(const ms_frame_col *c) {
  return c->kind == MS_FKIND_REAL ? 0.5001 * pow(10, -c->decimals) : 1e-9;
}

static int diff_holds(const ms_frame_col *a, const ms_frame_col *b, const ms_frame_col *c, size_t n,
                      size_t min_rows) {
  double tol = ms__relation_half_unit(c);
  size_t cnt = 0;
  for (size_t r = 0; r < n; r++) {
    double x = a->num[r], y = b->num[r], z = c->num[r];
    int pa = !isnan(x) && !isnan(y);
    if (pa != !isnan(z)) return 0;
    if (!pa) continue;
    if (ms__diff_breaks(tol, x, y, z)) return 0;
    cnt++;
  }
  return cnt >= min_rows;
}

/* a -> b: the label of b for each label of a (-1: a's label never seen). */
static ms_status fd_map(const ms_frame_col *a, const ms_frame_col *b, size_t n, size_t min_rows,
                        int32_t **out) {
  *out = NULL;
  if (a->n_levels < 2 || b->n_levels < 2 || a->n_levels < b->n_levels) return MS_OK;
  int32_t *m = ms__malloc(a->n_levels * sizeof *m);
  if (!m) return MS_ERR_NOMEM;
  for (size_t l = 0; l < a->n_levels; l++) m[l] = -1;
  size_t cnt = 0;
  for (size_t r = 0; r < n; r++) {
    int32_t x = a->code[r], y = b->code[r];
    if ((x < 0) != (y < 0)) goto no;
    if (x < 0) continue;
    if (m[x] >= 0 && m[x] != y) goto no;
    m[x] = y;
    cnt++;
  }
  if (cnt < min_rows) goto no;
  *out = m;
  return MS_OK;
no:
  free(m);
  return MS_OK;
}


/* The roundest number in (lo, hi]: a multiple of the largest step 10^e,
 * then 5 and 2 times 10^(e - 1), that has one there (the largest such
 * multiple), correctly rounded; the cut between two bands, a < cut on one
 * side and a >= cut on the other (2500 between 2495 and 2500, 30 between
 * 29.9 and 30.0, 5 between 3.2 and 6.9). */
static double roundest(double lo, double hi) {
  static const double mult[3] = {10, 5, 2};
  for (int e = 15; e >= -14; e--)
    for (int q = 0; q < 3; q++) {
      /* step = mult * 10^(e - 1): exact as a whole number, or as mult / s */
      int k = e - 1;
      double c;
      if (k >= 0) {
        double step = mult[q] * pow(10, k);
        c = floor(hi / step) * step;
      } else {
        double sc = pow(10, -k);
        c = floor(hi * sc / mult[q] + 1e-7) * mult[q] / sc;
      }
      if (c > lo && c <= hi) return c;
    }
  return hi;
}

/* Row order of a numeric column's present values, by value (for bands). */
static const ms_frame_col *ord_col;
static int by_value(const void *x, const void *y) {
  double a = ord_col->num[*(const uint32_t *)x], b = ord_col->num[*(const uint32_t *)y];
  return (a > b) - (a < b);
}
static uint32_t *value_order(const ms_frame_col *c, size_t n, size_t *m) {
  uint32_t *o = ms__malloc((n ? n : 1) * sizeof *o);
  if (!o) return NULL;
  *m = 0;
  for (size_t r = 0; r < n; r++)
    if (!isnan(c->num[r])) o[(*m)++] = (uint32_t)r;
  ord_col = c;
  qsort(o, *m, sizeof *o, by_value);
  return o;
}

/* Whether coarse column b is set by intervals of a (rows in order o, m of
 * them: a's present values by value): b present exactly where a is, each
 * of b's labels one run of the order (rows of equal a share a label), at
 * least 2 bands, each held by min_rows rows. The bands' labels (lowest a
 * first) into lab, the cuts into cut; returns the number of bands, 0 when
 * it does not hold. */
static size_t band_cuts(const ms_frame_col *a, const ms_frame_col *b, size_t n, const uint32_t *o, size_t m,
                        size_t min_rows, int32_t *lab, double *cut, unsigned char *seen) {
  size_t L = ms__coarse_levels(b), nb = 0, run = 0;
  if (L < 2 || L > MS_SPEC_MAX_RULES || m < 2 * min_rows) return 0;
  memset(seen, 0, L);
  /* the runs first: on columns without bands a label comes back within a
   * few rows, and the presence check below reads every row */
  for (size_t i = 0; i < m; i++) {
    int32_t y = ms__coarse_level(b, o[i]);
    if (y < 0) return 0;
    if (i && y == lab[nb - 1]) {
      run++;
      continue;
    }
    /* a new band: a label not seen before, above the last band's values */
    if (seen[y] || (i && !(a->num[o[i]] > a->num[o[i - 1]])) || (i && run < min_rows)) return 0;
    if (i) cut[nb - 1] = roundest(a->num[o[i - 1]], a->num[o[i]]);
    seen[y] = 1;
    lab[nb++] = y;
    run = 1;
  }
  if (nb < 2 || run < min_rows) return 0;
  for (size_t r = 0; r < n; r++)
    if (isnan(a->num[r]) != (ms__coarse_level(b, r) < 0)) return 0;
  return nb;
}

size_t ms__band_of(const double *cuts, size_t n_band, double x) {
  /* the number of cuts at or below x (they increase): the first above it */
  size_t lo = 0, hi = n_band ? n_band - 1 : 0;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (x >= cuts[mid]) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

size_t ms__coarse_levels(const ms_frame_col *c) {
  if (c->code && c->kind == MS_FKIND_CATEGORICAL) return c->n_levels;
  if (c->num && c->kind == MS_FKIND_BOOL) return 2;
  if (c->num && (c->kind == MS_FKIND_INTEGER || c->kind == MS_FKIND_REAL)) return c->n_lit;
  return 0;
}

int32_t ms__coarse_level(const ms_frame_col *c, size_t r) {
  if (c->code && c->kind == MS_FKIND_CATEGORICAL) return c->code[r];
  if (!c->num || isnan(c->num[r])) return -1;
  if (c->kind == MS_FKIND_BOOL) return c->num[r] != 0;
  size_t lo = 0, hi = c->n_lit;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (c->lit_val[mid] < c->num[r]) lo = mid + 1;
    else hi = mid;
  }
  return lo < c->n_lit && c->lit_val[lo] == c->num[r] ? (int32_t)lo : -1;
}

const char *ms__coarse_label(const ms_frame_col *c, size_t l) {
  if (c->code && c->kind == MS_FKIND_CATEGORICAL) return c->levels[l];
  if (c->kind == MS_FKIND_BOOL) return c->bool_text[l] ? c->bool_text[l] : l ? "true" : "false";
  return c->lit_text[l];
}

/* Impossible combinations of a (earlier) and b: the La x Lb flags of the
 * label pairs no row has although independence expects at least
 * MS__ZERO_MIN_EXPECTED rows there, both labels held by at least min_rows
 * rows; *mass: the rows independence expects in them. NULL flags (and
 * MS_OK) when there is none. */
static ms_status zero_cells(const ms_frame_col *a, const ms_frame_col *b, size_t n, size_t min_rows,
                            int32_t **out, double *mass) {
  *out = NULL;
  *mass = 0;
  size_t La = ms__coarse_levels(a), Lb = ms__coarse_levels(b);
  if (La < 2 || Lb < 2 || La > 20 || Lb > 20) return MS_OK;
  double cnt[400] = {0}, ra[20] = {0}, rb[20] = {0}, tot = 0;
  for (size_t r = 0; r < n; r++) {
    int32_t x = ms__coarse_level(a, r), y = ms__coarse_level(b, r);
    if (x < 0 || y < 0) continue;
    cnt[x * Lb + y]++, ra[x]++, rb[y]++, tot++;
  }
  size_t nz = 0;
  for (size_t x = 0; x < La; x++)
    for (size_t y = 0; y < Lb; y++)
      if (cnt[x * Lb + y] == 0 && ra[x] >= (double)min_rows && rb[y] >= (double)min_rows &&
          ra[x] * rb[y] / tot >= MS__ZERO_MIN_EXPECTED)
        nz++, *mass += ra[x] * rb[y] / tot;
  if (!nz) return MS_OK;
  int32_t *m = ms__calloc(La * Lb, sizeof *m);
  if (!m) return MS_ERR_NOMEM;
  for (size_t x = 0; x < La; x++)
    for (size_t y = 0; y < Lb; y++)
      m[x * Lb + y] = cnt[x * Lb + y] == 0 && ra[x] >= (double)min_rows && rb[y] >= (double)min_rows &&
                      ra[x] * rb[y] / tot >= MS__ZERO_MIN_EXPECTED;
  *out = m;
  return MS_OK;
}


/* c == x[i] + ... + x[i+len-1] (within half a unit of c's last decimal)
 * wherever all are present, c present exactly there, on >= min_rows rows. */
static int sum_holds(const ms_frame *f, size_t i, size_t len, size_t c, size_t min_rows) {
  const ms_frame_col *cc = &f->cols[c];
  double tol = ms__relation_half_unit(cc);
  size_t cnt = 0;
  for (size_t r = 0; r < f->n_rows; r++) {
    double s = 0, mag = 0;
    int all = 1;
    for (size_t j = i; j < i + len; j++) {
      double v = f->cols[j].num[r];
      if (isnan(v)) all = 0;
      else s += v, mag += fabs(v);
    }
    double z = cc->num[r];
    if (!all || isnan(z)) {
      if (all != !isnan(z)) return 0;
      continue;
    }
    if (fabs(z - s) > tol + 1e-12 * mag) return 0;
    cnt++;
  }
  return cnt >= min_rows;
}

ms_status ms__relations_find(const ms_frame *f, size_t k, ms__rel **out, size_t *n_out) {
  *out = NULL;
  *n_out = 0;
  size_t d = f->n_cols, n = f->n_rows, min_rows = 2 * (k ? k : 1), nr = 0, cap = 0;
  ms__rel *r = NULL;
  char *derived = ms__calloc(d ? d : 1, 1), *operand = ms__calloc(d ? d : 1, 1);
  ms_status st = derived && operand ? MS_OK : MS_ERR_NOMEM;
  /* Order between dates. */
  for (size_t b = 0; b < d && !st; b++) {
    if (!is_date(&f->cols[b])) continue;
    size_t best = SIZE_MAX;
    double bg = INFINITY;
    for (size_t a = 0; a < d; a++) {
      /* A datetime may follow a date (its midnight), not the reverse. */
      if (a == b || !is_date(&f->cols[a]) || (f->cols[a].has_time && !f->cols[b].has_time)) continue;
      double g = order_gap(&f->cols[a], &f->cols[b], n, min_rows);
      if (!isnan(g) && g < bg) bg = g, best = a;
    }
    if (best != SIZE_MAX)
      st = push(&r, &nr, &cap, (ms__rel){MS__REL_ORDER, best, b, SIZE_MAX, NULL, 0, NULL});
  }
  /* Totals of three or more adjacent columns (a score and its items): per
   * column c, the shortest run of continuous-or-discrete numeric columns
   * (up to 16) whose sum it is. */
  for (size_t c = 0; c < d && !st; c++) {
    const ms_frame_col *cc = &f->cols[c];
    if (!is_num(cc) || derived[c] || operand[c] || constant(cc, n)) continue;
    int found = 0;
    for (size_t len = 3; len <= 16 && !found; len++)
      for (size_t i = c > 16 + len ? c - 16 - len : 0; i + len <= d && i <= c + 17 && !found; i++) {
        /* runs near c only (ending at most 16 columns before it or
         * starting at most 16 after it): the search stays linear in d */
        if (c >= i && c < i + len) continue;
        int ok = 1;
        /* parts are numbers in the spec: a discrete real (0, 0.5, 1) would
         * be a categorical there, a discrete integer stays an integer */
        for (size_t j = i; j < i + len && ok; j++)
          ok = is_num(&f->cols[j]) && !derived[j] && !constant(&f->cols[j], n) &&
               (!f->cols[j].n_lit || f->cols[j].kind == MS_FKIND_INTEGER);
        if (!ok || !sum_holds(f, i, len, c, min_rows)) continue;
        int32_t *parts = ms__malloc(len * sizeof *parts);
        if (!parts) {
          st = MS_ERR_NOMEM;
          break;
        }
        for (size_t j = 0; j < len; j++) parts[j] = (int32_t)(i + j), operand[i + j] = 1;
        derived[c] = 1;
        found = 1;
        st = push(&r, &nr, &cap, (ms__rel){MS__REL_SUM, i, i + len - 1, c, parts, len, NULL});
        if (st) free(parts);
      }
  }
  /* Exact differences, with both operands among the MS__DIFF_WINDOW
   * columns on either side of c (a difference and its operands sit
   * together in real tables; the search stays linear in the width). */
  char *konst = ms__calloc(d ? d : 1, 1);
  if (!konst && !st) st = MS_ERR_NOMEM;
  for (size_t j = 0; j < d && !st; j++) konst[j] = f->cols[j].num ? (char)constant(&f->cols[j], n) : 1;
  for (size_t ci = d; ci-- > 0 && !st;) {
    /* From the last column: of three columns in a relation, the last one
     * (los_days after admit and discharge) is the derived one. */
    size_t c = ci;
    const ms_frame_col *cc = &f->cols[c];
    if (!is_num(cc) || operand[c] || konst[c]) continue;
    size_t lo = c > MS__DIFF_WINDOW ? c - MS__DIFF_WINDOW : 0;
    size_t hi = c + MS__DIFF_WINDOW + 1 < d ? c + MS__DIFF_WINDOW + 1 : d;
    int found = 0;
    for (size_t a = lo; a < hi && !found; a++) {
      const ms_frame_col *ca = &f->cols[a];
      if (a == c || derived[a] || !(is_num(ca) || is_date(ca)) || konst[a]) continue;
      for (size_t b = lo; b < hi && !found; b++) {
        const ms_frame_col *cb = &f->cols[b];
        if (b == a || b == c || derived[b] || is_date(cb) != is_date(ca) || !(is_num(cb) || is_date(cb)) ||
            konst[b] || (is_date(ca) && (ca->has_time || cb->has_time)))
          continue;
        if (!diff_holds(ca, cb, cc, n, min_rows)) continue;
        found = 1;
        derived[c] = 1;
        operand[a] = operand[b] = 1;
        st = push(&r, &nr, &cap, (ms__rel){MS__REL_DIFF, a, b, c, NULL, 0, NULL});
      }
    }
  }
  free(konst);
  /* Functional dependencies. */
  for (size_t b = 0; b < d && !st; b++) {
    if (!is_cat(&f->cols[b]) || derived[b]) continue;
    for (size_t a = 0; a < d && !st; a++) {
      /* one rule per label of a: no more than a spec field may hold */
      if (a == b || derived[a] || !is_cat(&f->cols[a]) || f->cols[a].n_levels > MS_SPEC_MAX_RULES) continue;
      int32_t *m = NULL;
      if ((st = fd_map(&f->cols[a], &f->cols[b], n, min_rows, &m))) break;
      if (!m) continue;
      if (a > b) {
        /* One-to-one: the later column is the determined one. */
        int32_t *back = NULL;
        if ((st = fd_map(&f->cols[b], &f->cols[a], n, min_rows, &back))) {
          free(m);
          break;
        }
        if (back) {
          free(back);
          free(m);
          continue;
        }
      }
      derived[b] = 1;
      st = push(&r, &nr, &cap, (ms__rel){MS__REL_FD, a, b, SIZE_MAX, m, f->cols[a].n_levels, NULL});
      if (st) free(m);
      break;
    }
  }
  /* Bands: per coarse column b (not determined already), the nearest
   * continuous number among the MS__DIFF_WINDOW columns on either side
   * whose intervals set it. Each number's row order is sorted once. */
  uint32_t **ord = ms__calloc(d ? d : 1, sizeof *ord);
  size_t *n_ord = ms__calloc(d ? d : 1, sizeof *n_ord);
  int32_t *blab = ms__malloc((MS_SPEC_MAX_RULES + 1) * sizeof *blab);
  double *bcut = ms__malloc((MS_SPEC_MAX_RULES + 1) * sizeof *bcut);
  unsigned char *seen = ms__malloc(MS_SPEC_MAX_RULES + 1);
  if ((!ord || !n_ord || !blab || !bcut || !seen) && !st) st = MS_ERR_NOMEM;
  for (size_t b = 0; b < d && !st; b++) {
    const ms_frame_col *cb = &f->cols[b];
    size_t L = ms__coarse_levels(cb);
    if (derived[b] || operand[b] || L < 2 || L > MS_SPEC_MAX_RULES) continue;
    for (size_t dist = 1; dist <= MS__DIFF_WINDOW && !st; dist++) {
      size_t nb = 0, a = SIZE_MAX;
      for (int side = 0; side < 2 && !nb; side++) {
        if (side ? b + dist >= d : dist > b) continue;
        a = side ? b + dist : b - dist;
        const ms_frame_col *ca = &f->cols[a];
        if (!is_num(ca) || ca->n_lit || derived[a] || constant(ca, n)) continue;
        if (!ord[a] && !(ord[a] = value_order(ca, n, &n_ord[a]))) {
          st = MS_ERR_NOMEM;
          break;
        }
        nb = band_cuts(ca, cb, n, ord[a], n_ord[a], min_rows, blab, bcut, seen);
      }
      if (!nb || st) continue;
      int32_t *lab = ms__malloc(nb * sizeof *lab);
      double *cuts = ms__malloc(nb * sizeof *cuts);
      if (!lab || !cuts) {
        free(lab), free(cuts);
        st = MS_ERR_NOMEM;
        break;
      }
      memcpy(lab, blab, nb * sizeof *lab);
      memcpy(cuts, bcut, (nb - 1) * sizeof *cuts);
      derived[b] = 1;
      st = push(&r, &nr, &cap, (ms__rel){MS__REL_BAND, a, b, SIZE_MAX, lab, nb, cuts});
      if (st) free(lab), free(cuts);
      break;
    }
  }
  for (size_t j = 0; ord && j < d; j++) free(ord[j]);
  free(ord), free(n_ord), free(blab), free(bcut), free(seen);
  /* Order between numbers (a part and its total, a mean and a worst
   * value): two continuous columns (not discrete, not in a difference or a
   * dependency), b present only where a is, a <= b in every row although
   * at least MS__ORDER_MIN_CROSS of the pairs of different rows break it
   * (cross_violations); the tightest a per b. A column that is some b is no
   * a, so the rules form no chain. */
  char *is_b = ms__calloc(d ? d : 1, 1), *is_a = ms__calloc(d ? d : 1, 1);
  if ((!is_b || !is_a) && !st) st = MS_ERR_NOMEM;
  for (size_t b = 0; b < d && !st; b++) {
    const ms_frame_col *cb = &f->cols[b];
    if (is_a[b] || !is_num(cb) || cb->n_lit || derived[b] || operand[b] || constant(cb, n)) continue;
    size_t best = SIZE_MAX;
    double bg = INFINITY;
    for (size_t a = 0; a < d; a++) {
      const ms_frame_col *ca = &f->cols[a];
      if (a == b || is_b[a] || !is_num(ca) || ca->n_lit || derived[a] || operand[a] || constant(ca, n))
        continue;
      double g = order_gap(ca, cb, n, min_rows);
      if (isnan(g) || g >= bg) continue;
      double v = cross_violations(ca, cb, n);
      if (isnan(v)) {
        st = MS_ERR_NOMEM;
        break;
      }
      if (v >= MS__ORDER_MIN_CROSS) bg = g, best = a;
    }
    if (best == SIZE_MAX) continue;
    is_b[b] = 1;
    is_a[best] = 1;
    st = push(&r, &nr, &cap, (ms__rel){MS__REL_ORDER, best, b, SIZE_MAX, NULL, 0, NULL});
  }
  free(is_b);
  free(is_a);
  /* Impossible combinations: per coarse column b (in no other relation),
   * the earlier coarse column a whose forbidden combinations independence
   * would fill most; a column conditioned on another conditions none. */
  char *zb = ms__calloc(d ? d : 1, 1), *za = ms__calloc(d ? d : 1, 1);
  if ((!zb || !za) && !st) st = MS_ERR_NOMEM;
  for (size_t b = 0; b < d && !st; b++) {
    if (za[b] || derived[b] || !ms__coarse_levels(&f->cols[b])) continue;
    int busy = 0;
    for (size_t q = 0; q < nr; q++) busy |= r[q].b == b || r[q].a == b || (r[q].kind == MS__REL_DIFF && r[q].c == b);
    if (busy) continue;
    size_t best = SIZE_MAX;
    double bm = 0;
    int32_t *bmap = NULL;
    /* among the MS__ZERO_WINDOW coarse columns before b (each pair reads
     * every row: a wide table stays linear in its width) */
    size_t seen = 0;
    for (size_t a = b; a-- > 0 && !st && seen < MS__ZERO_WINDOW;) {
      if (zb[a] || derived[a] || !ms__coarse_levels(&f->cols[a])) continue;
      seen++;
      int32_t *m = NULL;
      double mass;
      if ((st = zero_cells(&f->cols[a], &f->cols[b], n, min_rows, &m, &mass))) break;
      if (m && mass > bm) {
        free(bmap);
        bmap = m, bm = mass, best = a;
      } else {
        free(m);
      }
    }
    if (st || best == SIZE_MAX) {
      free(bmap);
      continue;
    }
    zb[b] = 1, za[best] = 1;
    size_t Lb = ms__coarse_levels(&f->cols[b]);
    st = push(&r, &nr, &cap,
              (ms__rel){MS__REL_ZERO, best, b, Lb, bmap, ms__coarse_levels(&f->cols[best]) * Lb, NULL});
    if (st) free(bmap);
  }
  free(zb);
  free(za);
  free(derived);
  free(operand);
  if (st) {
    ms__relations_free(r, nr);
    return st;
  }
  *out = r;
  *n_out = nr;
  return MS_OK;
}

void ms__relations_free(ms__rel *r, size_t n) {
  for (size_t i = 0; r && i < n; i++) free(r[i].fd_map), free(r[i].cuts);
  free(r);
}

void ms__relation_describe(const ms__rel *r, const ms_frame *f, char *buf, size_t cap) {
  const char *a = f->cols[r->a].name, *b = f->cols[r->b].name;
  switch (r->kind) {
    case MS__REL_ORDER: snprintf(buf, cap, "%s <= %s", a, b); break;
    case MS__REL_DIFF: snprintf(buf, cap, "%s = %s - %s", f->cols[r->c].name, b, a); break;
    case MS__REL_SUM: {
      size_t o = (size_t)snprintf(buf, cap, "%s =", f->cols[r->c].name);
      for (size_t i = 0; i < r->n_map && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s %s", i ? " +" : "", f->cols[r->fd_map[i]].name);
      break;
    }
    case MS__REL_ZERO: {
      size_t Lb = r->c, nz = 0, o = 0;
      for (size_t i = 0; i < r->n_map; i++) nz += r->fd_map[i] != 0;
      o = (size_t)snprintf(buf, cap, "never %s", nz > 1 ? "these combinations: " : "");
      for (size_t i = 0, k = 0; i < r->n_map && o < cap; i++) {
        if (!r->fd_map[i]) continue;
        o += (size_t)snprintf(buf + o, cap - o, "%s%s = %s with %s = %s", k++ ? "; " : "", a,
                              ms__coarse_label(&f->cols[r->a], i / Lb), b,
                              ms__coarse_label(&f->cols[r->b], i % Lb));
        if (k == 3 && nz > 3) {
          if (o < cap) snprintf(buf + o, cap - o, "; ... (%zu in all)", nz);
          break;
        }
      }
      break;
    }
    case MS__REL_BAND: {
      size_t o = (size_t)snprintf(buf, cap, "%s set by bands of %s:", b, a);
      for (size_t i = 0; i < r->n_map && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, i + 1 < r->n_map ? " %s below %.15g," : " %s from %.15g",
                              ms__coarse_label(&f->cols[r->b], (size_t)r->fd_map[i]),
                              i + 1 < r->n_map ? r->cuts[i] : r->cuts[i - 1]);
      break;
    }
    default: snprintf(buf, cap, "%s determines %s", a, b); break;
  }
}

double ms__relation_violations(const ms__rel *r, const ms_frame *ref, const ms_frame *g,
                               size_t *checked) {
  *checked = 0;
  size_t ja = ms_frame_find(g, ref->cols[r->a].name), jb = ms_frame_find(g, ref->cols[r->b].name);
  size_t jc = r->kind == MS__REL_DIFF || r->kind == MS__REL_SUM ? ms_frame_find(g, ref->cols[r->c].name) : 0;
  if (ja == SIZE_MAX || jb == SIZE_MAX || jc == SIZE_MAX) return NAN;
  const ms_frame_col *a = &g->cols[ja], *b = &g->cols[jb], *c = r->kind == MS__REL_DIFF ? &g->cols[jc] : NULL;
  size_t bad = 0, cnt = 0;
  if (r->kind == MS__REL_SUM) {
    const ms_frame_col *cc = &g->cols[jc];
    size_t *js = ms__malloc(r->n_map * sizeof *js);
    if (!js || !cc->num) {
      free(js);
      return NAN;
    }
    for (size_t i = 0; i < r->n_map; i++) {
      js[i] = ms_frame_find(g, ref->cols[r->fd_map[i]].name);
      if (js[i] == SIZE_MAX || !g->cols[js[i]].num) {
        free(js);
        return NAN;
      }
    }
    double tol = ms__relation_half_unit(cc);
    for (size_t i = 0; i < g->n_rows; i++) {
      double s = 0, mag = 0, z = cc->num[i];
      int all = !isnan(z);
      for (size_t q = 0; q < r->n_map && all; q++) {
        double v = g->cols[js[q]].num[i];
        if (isnan(v)) all = 0;
        s += v, mag += fabs(v);
      }
      if (!all) continue;
      cnt++;
      bad += fabs(z - s) > tol + 1e-12 * mag;
    }
    free(js);
  } else if (r->kind == MS__REL_ZERO) {
    /* g's rows whose labels (as text) form a forbidden combination */
    const ms_frame_col *ra = &ref->cols[r->a], *rb = &ref->cols[r->b];
    size_t La = ms__coarse_levels(a), Lb = ms__coarse_levels(b), Lrb = r->c;
    if (!La || !Lb) return NAN;
    int32_t *xa = ms__malloc(La * sizeof *xa), *xb = ms__malloc(Lb * sizeof *xb);
    if (!xa || !xb) {
      free(xa), free(xb);
      return NAN;
    }
    for (size_t l = 0; l < La; l++) {
      xa[l] = -1;
      for (size_t q = 0; q < r->n_map / Lrb; q++)
        if (!strcmp(ms__coarse_label(a, l), ms__coarse_label(ra, q))) xa[l] = (int32_t)q;
    }
    for (size_t l = 0; l < Lb; l++) {
      xb[l] = -1;
      for (size_t q = 0; q < Lrb; q++)
        if (!strcmp(ms__coarse_label(b, l), ms__coarse_label(rb, q))) xb[l] = (int32_t)q;
    }
    for (size_t i = 0; i < g->n_rows; i++) {
      int32_t x = ms__coarse_level(a, i), y = ms__coarse_level(b, i);
      if (x < 0 || y < 0) continue;
      cnt++;
      bad += xa[x] >= 0 && xb[y] >= 0 && r->fd_map[(size_t)xa[x] * Lrb + (size_t)xb[y]];
    }
    free(xa), free(xb);
  } else if (r->kind == MS__REL_BAND) {
    /* g's rows whose label (as text) is not the band's of their number */
    if (!a->num) return NAN;
    const ms_frame_col *rb = &ref->cols[r->b];
    for (size_t i = 0; i < g->n_rows; i++) {
      int32_t y = ms__coarse_level(b, i);
      double x = a->num[i];
      if (isnan(x) || y < 0) continue;
      cnt++;
      bad += strcmp(ms__coarse_label(b, (size_t)y),
                    ms__coarse_label(rb, (size_t)r->fd_map[ms__band_of(r->cuts, r->n_map, x)])) != 0;
    }
  } else if (r->kind == MS__REL_FD) {
    if (!a->code || !b->code) return NAN;
    const ms_frame_col *ra = &ref->cols[r->a], *rb = &ref->cols[r->b];
    /* g's label of a -> the label of b the real table pairs with it. */
    const char **want = ms__calloc(a->n_levels ? a->n_levels : 1, sizeof *want);
    if (!want) return NAN;
    for (size_t l = 0; l < a->n_levels; l++)
      for (size_t q = 0; q < ra->n_levels; q++)
        if (!strcmp(a->levels[l], ra->levels[q]) && r->fd_map[q] >= 0) want[l] = rb->levels[r->fd_map[q]];
    for (size_t i = 0; i < g->n_rows; i++) {
      if (a->code[i] < 0 || b->code[i] < 0 || !want[a->code[i]]) continue;
      cnt++;
      bad += strcmp(want[a->code[i]], b->levels[b->code[i]]) != 0;
    }
    free(want);
  } else {
    if (!a->num || !b->num || (c && !c->num)) return NAN;
    double tol = c ? ms__relation_half_unit(c) : 1e-9;
    for (size_t i = 0; i < g->n_rows; i++) {
      double x = a->num[i], y = b->num[i];
      if (isnan(x) || isnan(y)) continue;
      if (c) {
        double z = c->num[i];
        if (isnan(z)) continue;
        cnt++;
        bad += ms__diff_breaks(tol, x, y, z);
      } else {
        cnt++;
        bad += y < x;
      }
    }
  }
  *checked = cnt;
  return cnt ? (double)bad / (double)cnt : NAN;
}
