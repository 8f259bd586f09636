/* CSV tables in memory ("frames") with column kind inference.
 *
 * Reading happens in two passes over the bytes: an RFC 4180 tokenizer
 * unescapes every cell into one buffer (cells NUL-terminated, offsets per
 * cell), reporting ragged rows and invalid UTF-8 with line:column; then each
 * column is classified (id, categorical, integer, real, date, bool) and
 * converted. Missing tokens are configurable. The cell buffer is released
 * after conversion, so peak memory is about twice the file size plus the
 * typed columns.
 *
 * Invariants: a frame's columns all hold n_rows values; categorical codes
 * are in [-1, n_levels); levels are in first-seen order.
 * References: RFC 4180 (CSV), RFC 3629 (UTF-8). */
#include <errno.h>
#include "core/alloc.h"
#include "core/diag.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <xxhash.h>

#include "table/frame_internal.h"
#include "io/atomic.h"
#include "medsynth/fit.h"
#include "medsynth/table.h"

static const char *const kind_names[] = {"id", "categorical", "integer", "real", "date", "bool"};

const char *ms_fkind_name(ms_fkind k) { return (unsigned)k < MS_FKIND_COUNT ? kind_names[k] : "?"; }

ms_fkind ms_fkind_from_name(const char *name) {
  for (int i = 0; i < MS_FKIND_COUNT; i++)
    if (name && !strcmp(name, kind_names[i])) return (ms_fkind)i;
  return MS_FKIND_COUNT;
}

static const char *const default_na[] = {"", "NA", "N/A", "NaN", "nan", "NULL", "null", "?"};

void ms_csv_params_init(ms_csv_params *o) { memset(o, 0, sizeof *o); }

/* ---- string interning (level tables) ---- */

ms_status ms__strtab_init(ms__strtab *t) {
  memset(t, 0, sizeof *t);
  t->cap = 64;
  t->slots = ms__malloc(t->cap * sizeof *t->slots);
  if (!t->slots) return MS_ERR_NOMEM;
  for (size_t i = 0; i < t->cap; i++) t->slots[i] = -1;
  return MS_OK;
}

void ms__strtab_deinit(ms__strtab *t, int free_strings) {
  if (free_strings)
    for (size_t i = 0; i < t->n; i++) free(t->strs[i]);
  free(t->strs);
  free(t->slots);
  memset(t, 0, sizeof *t);
}

static int strtab_grow(ms__strtab *t) {
  size_t ncap = t->cap * 2;
  int32_t *ns = ms__malloc(ncap * sizeof *ns);
  if (!ns) return -1;
  for (size_t i = 0; i < ncap; i++) ns[i] = -1;
  for (size_t i = 0; i < t->n; i++) {
    uint64_t h = XXH64(t->strs[i], strlen(t->strs[i]), 0);
    size_t s = (size_t)h & (ncap - 1);
    while (ns[s] >= 0) s = (s + 1) & (ncap - 1);
    ns[s] = (int32_t)i;
  }
  free(t->slots);
  t->slots = ns;
  t->cap = ncap;
  return 0;
}

int32_t ms__strtab_find(const ms__strtab *t, const char *s) {
  uint64_t h = XXH64(s, strlen(s), 0);
  size_t slot = (size_t)h & (t->cap - 1);
  while (t->slots[slot] >= 0) {
    if (!strcmp(t->strs[t->slots[slot]], s)) return t->slots[slot];
    slot = (slot + 1) & (t->cap - 1);
  }
  return -1;
}

int32_t ms__strtab_intern(ms__strtab *t, const char *s) {
  int32_t f = ms__strtab_find(t, s);
  if (f >= 0) return f;
  if ((t->n + 1) * 2 > t->cap && strtab_grow(t)) return -2;
  if (t->n == t->strs_cap) {
    size_t nc = t->strs_cap ? t->strs_cap * 2 : 16;
    char **ns = ms__realloc(t->strs, nc * sizeof *ns);
    if (!ns) return -2;
    t->strs = ns;
    t->strs_cap = nc;
  }
  char *dup = ms__strdup(s);
  if (!dup) return -2;
  uint64_t h = XXH64(s, strlen(s), 0);
  size_t slot = (size_t)h & (t->cap - 1);
  while (t->slots[slot] >= 0) slot = (slot + 1) & (t->cap - 1);
  t->slots[slot] = (int32_t)t->n;
  t->strs[t->n] = dup;
  return (int32_t)t->n++;
}

/* ---- tokenizer ---- */

typedef struct {
  char *buf; /* unescaped cells, each NUL-terminated */
  size_t len, cap;
  size_t *off; /* cell offsets, row-major: (row + 1) * n_cols + col; row -1 = header */
  size_t n_off, off_cap;
  int *line; /* line number of each data row */
  size_t n_lines, line_cap;
} cells;

/* buf with room for element `len` of a doubling array (first size `initial`),
 * or NULL when out of memory (buf is then untouched). */
static void *room_for(void *buf, size_t *cap, size_t len, size_t elem, size_t initial) {
  if (len < *cap) return buf;
  size_t nc = *cap ? *cap * 2 : initial;
  void *nb = ms__realloc(buf, nc * elem);
  if (nb) *cap = nc;
  return nb;
}

static int cells_putc(cells *c, char ch) {
  char *nb = room_for(c->buf, &c->cap, c->len, 1, 4096);
  if (!nb) return -1;
  c->buf = nb;
  c->buf[c->len++] = ch;
  return 0;
}

static int cells_push_off(cells *c, size_t off) {
  size_t *no = room_for(c->off, &c->off_cap, c->n_off, sizeof *c->off, 1024);
  if (!no) return -1;
  c->off = no;
  c->off[c->n_off++] = off;
  return 0;
}

static int cells_push_line(cells *c, int line) {
  int *nl = room_for(c->line, &c->line_cap, c->n_lines, sizeof *c->line, 1024);
  if (!nl) return -1;
  c->line = nl;
  c->line[c->n_lines++] = line;
  return 0;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when invalid. */
static int utf8_len(const unsigned char *p, size_t avail) {
  unsigned c = p[0];
  if (c < 0x80) return 1;
  int n;
  unsigned min;
  if ((c & 0xE0) == 0xC0) n = 2, min = 0x80;
  else if ((c & 0xF0) == 0xE0) n = 3, min = 0x800;
  else if ((c & 0xF8) == 0xF0) n = 4, min = 0x10000;
  else return 0;
  if ((size_t)n > avail) return 0;
  unsigned cp = c & (0x7F >> n);
  for (int i = 1; i < n; i++) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

/* A NUL byte is valid UTF-8 but would end the cell early (cells are C
 * strings): "a\0b1" and "a\0b2" would both read as "a". It is refused. */
static void nul_byte(ms_diag *d, const char *name, int line, int col, int *errors) {
  if ((*errors)++ < 20)
    ms_diag_add(d, MS_ERR_DATA, name, line, col, NULL,
                "NUL byte in a field (a CSV file is text; is this a binary file?)");
}

/* One character of a field at text[*i]: appended to the cell and *i, *col
 * moved past it; a NUL byte is skipped and an invalid UTF-8 byte kept as
 * it is, each reported (the first 20 problems). -1 when out of memory. */
static int cell_char(cells *c, const char *text, size_t len, size_t *i, int *col, const char *name, int line,
                     int *errors, ms_diag *d) {
  if (text[*i] == '\0') {
    nul_byte(d, name, line, *col, errors);
    ++*i, ++*col;
    return 0;
  }
  int ul = utf8_len((const unsigned char *)text + *i, len - *i);
  if (!ul) {
    if ((*errors)++ < 20)
      ms_diag_add(d, MS_ERR_DATA, name, line, *col, NULL, "invalid UTF-8 byte 0x%02x", (unsigned char)text[*i]);
    ul = 1;
  }
  for (int k = 0; k < ul; k++)
    if (cells_putc(c, text[*i + k])) return -1;
  *i += (size_t)ul, ++*col;
  return 0;
}

/* Splits text into cells. Rows whose field count differs from the header's
 * are reported and dropped; returns the number of errors found. */
static ms_status tokenize(cells *c, size_t *n_cols_out, const char *text, size_t len,
                          const char *name, char delim, ms_diag *d) {
  size_t i = 0;
  if (len >= 3 && (unsigned char)text[0] == 0xEF && (unsigned char)text[1] == 0xBB &&
      (unsigned char)text[2] == 0xBF)
    i = 3;
  int line = 1, col = 1;
  size_t n_cols = 0, fields_in_row = 0, row_start_off = 0;
  int row_line = 1, header = 1, errors = 0;
  size_t cell_start = c->len;
  if (i >= len) return ms_diag_add(d, MS_ERR_DATA, name, 0, 0, NULL, "file is empty");
  while (i <= len) {
    /* Start of a field. */
    int at_end = i == len;
    if (at_end && fields_in_row == 0 && c->len == cell_start) break; /* trailing newline */
    cell_start = c->len;
    if (!at_end && text[i] == '"') {
      int qline = line, qcol = col;
      i++, col++;
      for (;;) {
        if (i >= len) {
          ms_diag_add(d, MS_ERR_DATA, name, qline, qcol, NULL, "unterminated quoted field");
          return MS_ERR_DATA;
        }
        if (text[i] == '"') {
          if (i + 1 < len && text[i + 1] == '"') {
            if (cells_putc(c, '"')) return MS_ERR_NOMEM;
            i += 2, col += 2;
            continue;
          }
          i++, col++;
          break;
        }
        if (text[i] == '\n') line++, col = 0;
        if (cell_char(c, text, len, &i, &col, name, line, &errors, d)) return MS_ERR_NOMEM;
      }
      if (i < len && text[i] != delim && text[i] != '\n' && text[i] != '\r') {
        if (errors++ < 20)
          ms_diag_add(d, MS_ERR_DATA, name, line, col, NULL,
                      "unexpected character after closing quote");
        while (i < len && text[i] != delim && text[i] != '\n') i++, col++;
      }
    } else {
      while (i < len && text[i] != delim && text[i] != '\n' && text[i] != '\r') {
        if (cell_char(c, text, len, &i, &col, name, line, &errors, d)) return MS_ERR_NOMEM;
      }
    }
    if (cells_putc(c, '\0') || cells_push_off(c, cell_start)) return MS_ERR_NOMEM;
    fields_in_row++;
    if (i < len && text[i] == delim) {
      i++, col++;
      continue;
    }
    /* End of record. */
    if (i < len && text[i] == '\r') i++;
    if (i < len && text[i] == '\n') i++;
    else if (i < len) {
      /* lone CR: treat as a line break */
    }
    if (header) {
      n_cols = fields_in_row;
      header = 0;
    } else if (fields_in_row == 1 && c->buf[cell_start] == '\0' && n_cols > 1) {
      /* blank line: skip */
      c->n_off--;
      c->len = row_start_off;
    } else if (fields_in_row != n_cols) {
      if (errors++ < 20)
        ms_diag_add(d, MS_ERR_DATA, name, row_line, 0, NULL,
                    "row has %zu field%s, the header has %zu", fields_in_row,
                    fields_in_row == 1 ? "" : "s", n_cols);
      c->n_off -= fields_in_row;
      c->len = row_start_off;
    } else if (cells_push_line(c, row_line)) {
      return MS_ERR_NOMEM;
    }
    line++;
    col = 1;
    row_line = line;
    fields_in_row = 0;
    row_start_off = c->len;
    cell_start = c->len;
    if (i >= len) break;
  }
  if (errors > 20 && d)
    ms_diag_add(d, MS_ERR_DATA, name, 0, 0, NULL, "%d further problem(s) not shown", errors - 20);
  if (errors) return MS_ERR_DATA;
  *n_cols_out = n_cols;
  return MS_OK;
}

/* The separator of the header line (outside quotes): the most frequent of
 * ',', ';' and tab; ',' when none occurs. */
static char detect_delimiter(const char *text, size_t len) {
  size_t n[3] = {0, 0, 0};
  int q = 0;
  for (size_t i = 0; i < len && (q || (text[i] != '\n' && text[i] != '\r')); i++) {
    if (text[i] == '"') q = !q;
    else if (!q) n[0] += text[i] == ',', n[1] += text[i] == ';', n[2] += text[i] == '\t';
  }
  if (n[1] > n[0] && n[1] >= n[2]) return ';';
  if (n[2] > n[0] && n[2] > n[1]) return '\t';
  return ',';
}

/* ---- classification ---- */

static int is_na(const char *s, const ms_csv_params *o) {
  const char *const *na = o->na_values ? o->na_values : default_na;
  size_t n = o->na_values ? o->n_na_values : sizeof default_na / sizeof *default_na;
  for (size_t i = 0; i < n; i++)
    if (!strcmp(s, na[i])) return 1;
  return 0;
}

int ms__fit_parse_num(const char *s, double *v, int *is_int, int *decimals) {
  while (*s == ' ') s++;
  if (!*s) return -1;
  char *end;
  errno = 0;
  double x = strtod(s, &end);
  while (*end == ' ') end++;
  if (*end || errno == ERANGE || !isfinite(x)) return -1;
  /* Reject hex floats and inf/nan spellings strtod accepts. */
  for (const char *p = s; *p && p < end; p++)
    if (*p == 'x' || *p == 'X' || *p == 'i' || *p == 'I' || *p == 'n' || *p == 'N') return -1;
  *v = x;
  const char *dot = strchr(s, '.');
  int has_exp = strchr(s, 'e') || strchr(s, 'E');
  int dec = 0;
  if (dot && !has_exp)
    for (const char *p = dot + 1; *p >= '0' && *p <= '9'; p++) dec++;
  if (decimals) *decimals = dec;
  *is_int = !dot && !has_exp && fabs(x) < 9007199254740992.0;
  if (!*is_int && x == floor(x) && fabs(x) < 9007199254740992.0 && has_exp == 0 && dot) {
    /* "3.0": an integral value written as real keeps the column real. */
  }
  return 0;
}

int ms__fit_parse_bool(const char *s, double *v) {
  static const char *const t[] = {"true", "yes", "t", "y"};
  static const char *const f[] = {"false", "no", "f", "n"};
  for (int i = 0; i < 4; i++) {
    if (!strcasecmp(s, t[i])) return *v = 1, 0;
    if (!strcasecmp(s, f[i])) return *v = 0, 0;
  }
  return -1;
}

/* Date and datetime spellings recognised in CSV cells, in order of
 * preference. Entries 2k and 2k+1 of the month/day block differ only in the
 * order of month and day: a column whose every value fits both is
 * ambiguous. */
static const char *const date_patterns[] = {
    "%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y/%m/%d", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M",
    "%d.%m.%Y", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M",
#define DATE_PAIRS_FROM 12
    "%m/%d/%Y", "%d/%m/%Y", "%m/%d/%Y %H:%M:%S", "%d/%m/%Y %H:%M:%S", "%m/%d/%Y %H:%M",
    "%d/%m/%Y %H:%M", "%m-%d-%Y", "%d-%m-%Y"};
#define N_DATE_PATTERNS (sizeof date_patterns / sizeof *date_patterns)

/* Bit i set: the cell reads as date_patterns[i]. */
static uint32_t date_fits(const char *s, uint32_t mask) {
  if (!(*s >= '0' && *s <= '9')) return 0;
  uint32_t out = 0;
  for (size_t i = 0; i < N_DATE_PATTERNS; i++) {
    int64_t t;
    if ((mask >> i & 1) && !ms_datetime_parse_pattern(s, date_patterns[i], &t)) out |= 1u << i;
  }
  return out;
}

static int cmp_double_asc(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int qsort_lit(const void *a, const void *b) {
  const double *x = *(const double *const *)a, *y = *(const double *const *)b;
  return (*x > *y) - (*x < *y);
}

ms_status ms__frame_col_discrete(ms_frame_col *c, size_t n_rows) {
  double v[MS_FRAME_DISCRETE_MAX];
  size_t nv = 0;
  for (size_t r = 0; r < n_rows; r++) {
    double x = c->num[r];
    if (isnan(x)) continue;
    size_t i = 0;
    while (i < nv && v[i] != x) i++;
    if (i < nv) continue;
    if (nv == MS_FRAME_DISCRETE_MAX) return MS_OK;
    v[nv++] = x;
  }
  if (!nv) return MS_OK;
  qsort(v, nv, sizeof *v, cmp_double_asc);
  c->lit_val = ms__malloc(nv * sizeof *c->lit_val);
  c->lit_text = ms__calloc(nv, sizeof *c->lit_text);
  if (!c->lit_val || !c->lit_text) return MS_ERR_NOMEM;
  for (size_t i = 0; i < nv; i++) {
    char b[64];
    if (c->kind == MS_FKIND_INTEGER) snprintf(b, sizeof b, "%.0f", v[i]);
    else snprintf(b, sizeof b, "%.*f", c->decimals, v[i]);
    c->lit_val[i] = v[i];
    if (!(c->lit_text[i] = ms__strdup(b))) return MS_ERR_NOMEM;
    c->n_lit = i + 1;
  }
  return MS_OK;
}

static void col_free(ms_frame_col *c) {
  free(c->bool_text[0]);
  free(c->bool_text[1]);
  free(c->date_format);
  free(c->lit_val);
  for (size_t i = 0; i < c->n_lit; i++) free(c->lit_text[i]);
  free(c->lit_text);
  free(c->name);
  free(c->num);
  free(c->code);
  for (size_t i = 0; i < c->n_levels; i++) free(c->levels[i]);
  free(c->levels);
}

void ms_frame_free(ms_frame *f) {
  if (!f) return;
  for (size_t j = 0; f->cols && j < f->n_cols; j++) col_free(&f->cols[j]);
  free(f->cols);
  free(f->source);
  free(f);
}

size_t ms_frame_find(const ms_frame *f, const char *name) {
  for (size_t j = 0; j < f->n_cols; j++)
    if (!strcmp(f->cols[j].name, name)) return j;
  return SIZE_MAX;
}

static ms_status convert_column(ms_frame_col *col, const cells *c, size_t j, size_t n_cols,
                                size_t n_rows, const char *name, const ms_csv_params *o,
                                ms_diag *d) {
  int forced = 0;
  ms_fkind kind = MS_FKIND_COUNT;
  const char *forced_date = NULL;
  for (size_t t = 0; t < o->n_types; t++)
    if (!strcmp(o->types[t].column, col->name))
      kind = o->types[t].kind, forced = 1,
      forced_date = kind == MS_FKIND_DATE ? o->types[t].date_format : NULL;
  for (size_t t = 0; t < o->n_id_columns; t++)
    if (!strcmp(o->id_columns[t], col->name)) kind = MS_FKIND_ID, forced = 1;
#define CELL(r) (c->buf + c->off[((r) + 1) * n_cols + j])
  size_t present = 0;
  int all_int = 1, all_num = 1, all_date = 1, all_bool = 1, max_dec = 0, min_dec = 99, dot0 = 0;
  uint32_t dmask = (1u << N_DATE_PATTERNS) - 1;
  const char *user_date = forced_date ? forced_date : o->date_format;
  int user_date_ok = user_date != NULL;
  const char *dfmt = NULL;
  ms__strtab distinct;
  ms_status st = ms__strtab_init(&distinct);
  if (st) return st;
  size_t distinct_cap = n_rows + 1; /* counts stop mattering above this */
  for (size_t r = 0; r < n_rows; r++) {
    const char *s = CELL(r);
    if (is_na(s, o)) continue;
    present++;
    double v;
    int isint, dec;
    if (all_num || all_int) {
      if (ms__fit_parse_num(s, &v, &isint, &dec)) all_num = all_int = 0;
      else {
        if (!isint) all_int = 0;
        if (dec > max_dec) max_dec = dec;
        if (dec < min_dec) min_dec = dec;
        if (dec > 0 && v == floor(v)) dot0 = 1;
      }
    }
    if (all_date) {
      int64_t t;
      if (user_date_ok && ms_datetime_parse_pattern(s, user_date, &t)) user_date_ok = 0;
      dmask = date_fits(s, dmask);
      if (!dmask && !user_date_ok) all_date = 0;
    }
    if (all_bool && ms__fit_parse_bool(s, &v)) all_bool = 0;
    if (distinct.n < distinct_cap && ms__strtab_intern(&distinct, s) == -2) {
      ms__strtab_deinit(&distinct, 1);
      return MS_ERR_NOMEM;
    }
  }
  size_t nd = distinct.n;
  int only01 = all_int && nd <= 2;
  for (size_t i = 0; only01 && i < nd; i++) {
    double v;
    int ii;
    if (ms__fit_parse_num(distinct.strs[i], &v, &ii, NULL) || (v != 0 && v != 1)) only01 = 0;
  }
  /* The input's spelling of false and true; two spellings of one side (Y and
   * yes) make the column categorical, so that each keeps its own. */
  char *btext[2] = {NULL, NULL};
  if ((all_bool || only01) && present) {
    for (size_t i = 0; i < nd; i++) {
      double v;
      int ii;
      if (ms__fit_parse_bool(distinct.strs[i], &v)) ms__fit_parse_num(distinct.strs[i], &v, &ii, NULL);
      int side = v != 0;
      if (btext[side]) {
        all_bool = only01 = 0;
        break;
      }
      btext[side] = distinct.strs[i];
    }
  }
  if (all_date && present && !all_num && !(all_bool || only01) && (!forced || kind == MS_FKIND_DATE)) {
    if (user_date_ok) dfmt = user_date;
    else {
      size_t first = 0;
      while (!(dmask >> first & 1)) first++;
      if (first >= DATE_PAIRS_FROM && (first - DATE_PAIRS_FROM) % 2 == 0 && (dmask >> (first + 1) & 1)) {
        ms__strtab_deinit(&distinct, 1);
        return ms_diag_add(d, MS_ERR_DATA, name, 1, 0, col->name,
                           "every date fits both \"%s\" and \"%s\" (month/day order unknown): "
                           "pass --date-format with the right one",
                           date_patterns[first], date_patterns[first + 1]);
      }
      dfmt = date_patterns[first];
    }
  }
  if (!forced && !(all_bool || only01) && all_num && nd <= MS_FRAME_DISCRETE_MAX && nd > 0) {
    /* Distinct values and their first spelling, in increasing order. */
    double **ord = ms__malloc(nd * sizeof *ord);
    double *vals = ms__malloc(nd * sizeof *vals);
    col->lit_val = ms__malloc(nd * sizeof *col->lit_val);
    col->lit_text = ms__calloc(nd, sizeof *col->lit_text);
    if (!ord || !vals || !col->lit_val || !col->lit_text) {
      free(ord), free(vals);
      ms__strtab_deinit(&distinct, 1);
      return MS_ERR_NOMEM;
    }
    for (size_t i = 0; i < nd; i++) {
      int ii;
      ms__fit_parse_num(distinct.strs[i], &vals[i], &ii, NULL);
      ord[i] = &vals[i];
    }
    qsort(ord, nd, sizeof *ord, qsort_lit);
    for (size_t i = 0; i < nd; i++) {
      size_t at = (size_t)(ord[i] - vals);
      if (col->n_lit && col->lit_val[col->n_lit - 1] == vals[at]) {
        /* The same number spelled twice: the first spelling seen is kept. */
        size_t prev = SIZE_MAX;
        for (size_t q = 0; q < nd; q++)
          if (distinct.strs[q] == col->lit_text[col->n_lit - 1]) prev = q;
        if (at < prev) col->lit_text[col->n_lit - 1] = distinct.strs[at];
        continue;
      }
      col->lit_val[col->n_lit] = vals[at];
      col->lit_text[col->n_lit++] = distinct.strs[at];
    }
    for (size_t i = 0; i < col->n_lit; i++) col->lit_text[i] = ms__strdup(col->lit_text[i]);
    free(ord), free(vals);
    for (size_t i = 0; i < col->n_lit; i++)
      if (!col->lit_text[i]) {
        ms__strtab_deinit(&distinct, 1);
        return MS_ERR_NOMEM;
      }
  }
  for (int b = 0; b < 2; b++)
    if (btext[b] && !(btext[b] = ms__strdup(btext[b]))) {
      free(btext[0]);
      ms__strtab_deinit(&distinct, 1);
      return MS_ERR_NOMEM;
    }
  ms__strtab_deinit(&distinct, 1);
  if (!forced) {
    double share = o->id_distinct_share > 0 ? o->id_distinct_share : 0.5;
    size_t icm = o->int_categorical_max ? o->int_categorical_max : 2;
    if (present == 0) kind = MS_FKIND_REAL;
    else if (all_bool || only01) kind = MS_FKIND_BOOL;
    else if (all_int && nd <= icm) kind = MS_FKIND_CATEGORICAL;
    else if (all_int) kind = MS_FKIND_INTEGER;
    else if (all_num) kind = MS_FKIND_REAL;
    else if (all_date) kind = MS_FKIND_DATE;
    else if (present >= 20 && (double)nd > share * (double)present) kind = MS_FKIND_ID;
    else kind = MS_FKIND_CATEGORICAL;
  }
  col->kind = kind;
  col->decimals = kind == MS_FKIND_REAL ? (max_dec > MS_FRAME_DECIMALS_MAX ? MS_FRAME_DECIMALS_MAX : max_dec) : 0;
  if (kind == MS_FKIND_REAL && all_num && present)
    col->real_style = min_dec == max_dec ? 0 : dot0 ? 2 : 1;
  if (kind == MS_FKIND_BOOL) {
    col->bool_text[0] = btext[0];
    col->bool_text[1] = btext[1];
  } else {
    free(btext[0]);
    free(btext[1]);
  }
  if (kind != MS_FKIND_INTEGER && kind != MS_FKIND_REAL) {
    for (size_t i = 0; i < col->n_lit; i++) free(col->lit_text[i]);
    free(col->lit_text);
    free(col->lit_val);
    col->lit_text = NULL, col->lit_val = NULL, col->n_lit = 0;
  }
  if (kind == MS_FKIND_DATE) {
    if (!dfmt) dfmt = user_date ? user_date : "%Y-%m-%d";
    if (!(col->date_format = ms__strdup(dfmt))) return MS_ERR_NOMEM;
    col->has_time = strstr(dfmt, "%H") != NULL;
  }
  int bad = 0;
  if (kind == MS_FKIND_CATEGORICAL || kind == MS_FKIND_ID) {
    col->code = ms__malloc((n_rows ? n_rows : 1) * sizeof *col->code);
    if (!col->code) return MS_ERR_NOMEM;
    ms__strtab lv;
    if ((st = ms__strtab_init(&lv))) return st;
    for (size_t r = 0; r < n_rows; r++) {
      const char *s = CELL(r);
      if (is_na(s, o)) {
        col->code[r] = -1;
        col->n_missing++;
        continue;
      }
      int32_t k = ms__strtab_intern(&lv, s);
      if (k < 0) {
        ms__strtab_deinit(&lv, 1);
        return MS_ERR_NOMEM;
      }
      col->code[r] = k;
    }
    col->levels = lv.strs;
    col->n_levels = lv.n;
    lv.strs = NULL;
    lv.n = 0;
    ms__strtab_deinit(&lv, 0);
  } else {
    col->num = ms__malloc((n_rows ? n_rows : 1) * sizeof *col->num);
    if (!col->num) return MS_ERR_NOMEM;
    for (size_t r = 0; r < n_rows; r++) {
      const char *s = CELL(r);
      col->num[r] = NAN;
      if (is_na(s, o)) {
        col->n_missing++;
        continue;
      }
      double v = NAN;
      int isint, okv = 0;
      if (kind == MS_FKIND_DATE) {
        int64_t t;
        if (!ms_datetime_parse_pattern(s, col->date_format, &t)) v = (double)t / 86400, okv = 1;
      } else if (kind == MS_FKIND_BOOL) {
        okv = !ms__fit_parse_bool(s, &v) || (!ms__fit_parse_num(s, &v, &isint, NULL) && (v == 0 || v == 1));
      } else {
        okv = !ms__fit_parse_num(s, &v, &isint, NULL);
        if (okv && kind == MS_FKIND_INTEGER && v != floor(v)) okv = 0;
      }
      if (!okv) {
        if (bad++ < 10)
          ms_diag_add(d, MS_ERR_DATA, name, c->line[r], 0, col->name,
                      "value \"%s\" is not a valid %s", s, ms_fkind_name(kind));
        col->n_missing++;
        continue;
      }
      col->num[r] = v;
    }
  }
#undef CELL
  return bad ? MS_ERR_DATA : MS_OK;
}

ms_status ms_frame_parse_csv(ms_frame **out, const char *text, size_t len, const char *name,
                             const ms_csv_params *opts, ms_diag *d) {
  *out = NULL;
  ms_csv_params defaults;
  if (!opts) ms_csv_params_init(&defaults), opts = &defaults;
  cells c;
  memset(&c, 0, sizeof c);
  size_t n_cols = 0;
  ms_status st = tokenize(&c, &n_cols, text, len, name,
                          opts->delimiter ? opts->delimiter : detect_delimiter(text, len), d);
  ms_frame *f = NULL;
  if (st == MS_ERR_NOMEM) ms__diag_nomem(d, name, NULL, "the CSV cells");
  if (st) goto done;
  size_t n_rows = c.n_lines;
  if (n_rows == 0) {
    st = ms_diag_add(d, MS_ERR_DATA, name, 1, 0, NULL, "header row but no data rows");
    goto done;
  }
  f = ms__calloc(1, sizeof *f);
  if (!f || !(f->cols = ms__calloc(n_cols, sizeof *f->cols)) || !(f->source = ms__strdup(name))) {
    st = ms__diag_nomem(d, name, NULL, "the frame");
    goto done;
  }
  f->n_cols = n_cols;
  f->n_rows = n_rows;
  for (size_t j = 0; j < n_cols; j++) {
    const char *h = c.buf + c.off[j];
    if (!*h) {
      st = ms_diag_add(d, MS_ERR_DATA, name, 1, 0, NULL, "column %zu has an empty name", j + 1);
    }
    for (size_t k = 0; k < j; k++)
      if (!strcmp(h, c.buf + c.off[k])) {
        st = ms_diag_add(d, MS_ERR_DATA, name, 1, 0, NULL,
                         "column %zu: duplicate column name \"%s\" (also column %zu); rename one",
                         j + 1, h, k + 1);
        break;
      }
    if (!(f->cols[j].name = ms__strdup(h))) {
      st = ms__diag_nomem(d, name, NULL, "the column names");
      goto done;
    }
  }
  for (size_t t = 0; t < opts->n_types && !opts->lenient_types; t++)
    if (ms_frame_find(f, opts->types[t].column) == SIZE_MAX)
      st = ms_diag_add(d, MS_ERR_INVALID, name, 0, 0, NULL, "--types names unknown column \"%s\"",
                       opts->types[t].column);
  for (size_t t = 0; t < opts->n_id_columns && !opts->lenient_types; t++)
    if (ms_frame_find(f, opts->id_columns[t]) == SIZE_MAX)
      st = ms_diag_add(d, MS_ERR_INVALID, name, 0, 0, NULL, "--id names unknown column \"%s\"",
                       opts->id_columns[t]);
  if (st) goto done;
  for (size_t j = 0; j < n_cols; j++) {
    ms_status s2 = convert_column(&f->cols[j], &c, j, n_cols, n_rows, name, opts, d);
    if (s2 == MS_ERR_NOMEM) {
      st = ms__diag_nomem(d, name, f->cols[j].name, "a column's values");
      goto done;
    }
    if (s2 && !st) st = s2;
  }
done:
  free(c.buf);
  free(c.off);
  free(c.line);
  if (st) {
    ms_frame_free(f);
    return st;
  }
  *out = f;
  return MS_OK;
}

ms_status ms_frame_read_csv(ms_frame **out, const char *path, const ms_csv_params *opts, ms_diag *d) {
  *out = NULL;
  FILE *fp = fopen(path, "rb");
  if (!fp)
    return ms_diag_add(d, errno == ENOENT ? MS_ERR_NOTFOUND : MS_ERR_IO, path, 0, 0, NULL,
                       "cannot open: %s", strerror(errno));
  char *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len == cap) {
      cap = cap ? cap * 2 : 1 << 16;
      char *nb = ms__realloc(buf, cap);
      if (!nb) {
        free(buf);
        fclose(fp);
        return ms__diag_nomem(d, path, NULL, "the file's contents");
      }
      buf = nb;
    }
    size_t got = fread(buf + len, 1, cap - len, fp);
    len += got;
    if (got == 0) break;
  }
  int err = ferror(fp);
  fclose(fp);
  if (err) {
    free(buf);
    return ms_diag_add(d, MS_ERR_IO, path, 0, 0, NULL, "read error");
  }
  ms_status st = ms_frame_parse_csv(out, buf, len, path, opts, d);
  free(buf);
  return st;
}

void ms_frame_cell_text(const ms_frame *f, size_t row, size_t j, char *buf, size_t cap) {
  const ms_frame_col *c = &f->cols[j];
  buf[0] = '\0';
  if (c->code) {
    if (c->code[row] >= 0) snprintf(buf, cap, "%s", c->levels[c->code[row]]);
    return;
  }
  double v = c->num[row];
  if (isnan(v)) return;
  switch (c->kind) {
    case MS_FKIND_DATE: {
      char tmp[MS_DATE_BUFSZ];
      if (c->date_format &&
          ms_datetime_format_pattern(llround(v * 86400), c->date_format, tmp, sizeof tmp) >= 0) {
        snprintf(buf, cap, "%s", tmp);
        break;
      }
      ms_date_format((int32_t)floor(v), tmp);
      snprintf(buf, cap, "%s", tmp);
      break;
    }
    case MS_FKIND_BOOL:
      if (c->bool_text[v != 0]) snprintf(buf, cap, "%s", c->bool_text[v != 0]);
      else snprintf(buf, cap, "%d", v != 0);
      break;
    case MS_FKIND_INTEGER:
      snprintf(buf, cap, "%.0f", v);
      break;
    default:
      for (size_t i = 0; i < c->n_lit; i++)
        if (c->lit_val[i] == v) {
          snprintf(buf, cap, "%s", c->lit_text[i]);
          return;
        }
      if (c->decimals > 0) {
        int n = snprintf(buf, cap, "%.*f", c->decimals, v);
        if (c->real_style > 0 && n > 0 && (size_t)n < cap && strchr(buf, '.')) {
          while (buf[n - 1] == '0') n--;
          if (buf[n - 1] == '.') n += c->real_style == 2 ? 1 : -1;
          buf[n] = '\0';
        }
      } else {
        snprintf(buf, cap, "%.17g", v);
      }
  }
}

static void write_quoted(FILE *fp, const char *s) {
  if (!strpbrk(s, ",\"\r\n")) {
    fputs(s, fp);
    return;
  }
  fputc('"', fp);
  for (; *s; s++) {
    if (*s == '"') fputc('"', fp);
    fputc(*s, fp);
  }
  fputc('"', fp);
}

/* ms__atomic_fill: header and rows; stdio errors are checked by the caller. */
static int write_frame(FILE *fp, void *ctx) {
  const ms_frame *f = ctx;
  for (size_t j = 0; j < f->n_cols; j++) {
    if (j) fputc(',', fp);
    write_quoted(fp, f->cols[j].name);
  }
  fputc('\n', fp);
  char cell[512];
  for (size_t r = 0; r < f->n_rows && !ferror(fp); r++) {
    for (size_t j = 0; j < f->n_cols; j++) {
      if (j) fputc(',', fp);
      ms_frame_cell_text(f, r, j, cell, sizeof cell);
      write_quoted(fp, cell);
    }
    fputc('\n', fp);
  }
  return ferror(fp) ? (errno ? errno : EIO) : 0;
}

ms_status ms_frame_write_csv(const ms_frame *f, const char *path, ms_diag *d) {
  return ms__atomic_write(path, 1, write_frame, (void *)(uintptr_t)f, d);
}
