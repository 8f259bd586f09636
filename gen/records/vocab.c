/* Vocabulary CSV loader, column access, hash index and name resolution (see
 * vocab.h for the format and the ownership rules).
 *
 * The parser makes two passes over the bytes: the first validates UTF-8 (RFC
 * 3629 table of well-formed byte sequences) and rejects NUL, the second splits
 * records and fields (RFC 4180 section 2) while unescaping quoted fields into
 * one text buffer. Cells are stored column-major as pointers into that
 * buffer, so a column is a plain `const char *[n_rows]`. Positions are
 * tracked per cell so that later checks (numbers, duplicate keys) can name
 * the exact line and column.
 *
 * Invariants: cells[c * n_rows + r] is row r of column c; the index of a
 * column, once built, is an open-addressing table of `row + 1` entries
 * (0 = empty) with a power-of-two capacity at least twice the row count. */
#include "records/vocab.h"
#include "core/alloc.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

struct ms__vocab {
  char *path;
  size_t n_rows;
  size_t n_cols;
  char *text;     /* all unescaped cells, NUL-terminated */
  char **names;   /* n_cols, into text */
  char **cells;   /* n_cols * n_rows, column-major, into text */
  int *lines;     /* same layout as cells */
  int *columns;   /* same layout as cells */
  size_t **index; /* n_cols, NULL until built */
  size_t *index_cap;
};

/* ---- growable arrays used while parsing ---------------------------------- */

typedef struct {
  size_t off; /* offset into the output text */
  int line;
  int column;
} field_pos;

typedef struct {
  field_pos *v;
  size_t n, cap;
} pos_vec;

/* v (*cap elements of `size` bytes) reallocated to twice as many, or to
 * `first` when empty; NULL (v kept) when out of memory. */
static void *grow(void *v, size_t *cap, size_t size, size_t first) {
  size_t c = *cap ? *cap * 2 : first;
  if (c > SIZE_MAX / size) return NULL;
  void *nv = ms__realloc(v, c * size);
  if (nv) *cap = c;
  return nv;
}

static int pos_push(pos_vec *p, field_pos f) {
  if (p->n == p->cap) {
    field_pos *nv = grow(p->v, &p->cap, sizeof *nv, 64);
    if (!nv) return -1;
    p->v = nv;
  }
  p->v[p->n++] = f;
  return 0;
}

typedef struct {
  char *b;
  size_t n, cap;
} text_buf;

static int text_put(text_buf *t, char c) {
  if (t->n == t->cap) {
    char *nb = grow(t->b, &t->cap, 1, 4096);
    if (!nb) return -1;
    t->b = nb;
  }
  t->b[t->n++] = c;
  return 0;
}

/* ---- UTF-8 ---------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at p (RFC 3629 section 4), or 0. */
static size_t utf8_seq_len(const unsigned char *p, size_t avail) {
  unsigned char c = p[0];
  if (c < 0x80) return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;      /* no overlongs */
    else if (c == 0xED) hi = 0x9F; /* no surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;      /* no overlongs */
    else if (c == 0xF4) hi = 0x8F; /* <= U+10FFFF */
  } else {
    return 0;
  }
  if (avail < n) return 0;
  if (p[1] < lo || p[1] > hi) return 0;
  for (size_t i = 2; i < n; i++)
    if (p[i] < 0x80 || p[i] > 0xBF) return 0;
  return n;
}

/* Reports every invalid byte sequence and NUL byte; returns their count. */
static size_t validate_utf8(const unsigned char *s, size_t len, size_t start, const char *file,
                            ms_diag *d) {
  size_t bad = 0;
  int line = 1, col = 1;
  for (size_t i = start; i < len;) {
    if (s[i] == 0) {
      ms_diag_add(d, MS_ERR_FORMAT, file, line, col, NULL, "NUL byte in vocabulary text");
      bad++;
      i++;
      col++;
      continue;
    }
    size_t n = utf8_seq_len(s + i, len - i);
    if (n == 0) {
      ms_diag_add(d, MS_ERR_FORMAT, file, line, col, NULL,
                  "invalid UTF-8 byte sequence (byte 0x%02X)", s[i]);
      bad++;
      i++;
      col++;
      continue;
    }
    if (s[i] == '\n') {
      line++;
      col = 1;
    } else {
      col += (int)n;
    }
    i += n;
  }
  return bad;
}

/* ---- CSV parsing ---------------------------------------------------------- */

typedef struct {
  const char *s;
  size_t len;
  size_t pos;
  int line;
  int col;
  const char *file;
  ms_diag *d;
  size_t n_errors;
} scanner;

static void sc_advance(scanner *sc) {
  if (sc->s[sc->pos] == '\n') {
    sc->line++;
    sc->col = 1;
  } else {
    sc->col++;
  }
  sc->pos++;
}

static void sc_error(scanner *sc, int line, int col, const char *fmt, const char *arg) {
  sc->n_errors++;
  ms_diag_add(sc->d, MS_ERR_FORMAT, sc->file, line, col, NULL, fmt, arg);
}

/* At a record end: LF, CRLF or end of input. */
static int at_record_end(const scanner *sc) {
  if (sc->pos >= sc->len) return 1;
  char c = sc->s[sc->pos];
  return c == '\n' || (c == '\r' && sc->pos + 1 < sc->len && sc->s[sc->pos + 1] == '\n');
}

static void skip_record_end(scanner *sc) {
  if (sc->pos < sc->len && sc->s[sc->pos] == '\r') sc_advance(sc);
  if (sc->pos < sc->len && sc->s[sc->pos] == '\n') sc_advance(sc);
}

/* Parses one field into out; returns -1 on allocation failure, 1 when the
 * input ended inside a quoted field, 0 otherwise. On return the scanner is at
 * a ',' or a record end. */
static int parse_field(scanner *sc, text_buf *out) {
  if (sc->pos < sc->len && sc->s[sc->pos] == '"') {
    int qline = sc->line, qcol = sc->col;
    sc_advance(sc);
    for (;;) {
      if (sc->pos >= sc->len) {
        sc_error(sc, qline, qcol, "unterminated quoted field%s", "");
        return 1;
      }
      char c = sc->s[sc->pos];
      if (c == '"') {
        if (sc->pos + 1 < sc->len && sc->s[sc->pos + 1] == '"') {
          if (text_put(out, '"')) return -1;
          sc_advance(sc);
          sc_advance(sc);
          continue;
        }
        sc_advance(sc);
        break;
      }
      if (text_put(out, c)) return -1;
      sc_advance(sc);
    }
    if (sc->pos < sc->len && sc->s[sc->pos] != ',' && !at_record_end(sc)) {
      sc_error(sc, sc->line, sc->col,
               "unexpected character after closing quote (a quote inside a quoted field "
               "is written as \"\")%s",
               "");
      while (sc->pos < sc->len && sc->s[sc->pos] != ',' && !at_record_end(sc)) sc_advance(sc);
    }
    return 0;
  }
  while (sc->pos < sc->len && sc->s[sc->pos] != ',' && !at_record_end(sc)) {
    char c = sc->s[sc->pos];
    if (c == '"') {
      sc_error(sc, sc->line, sc->col,
               "quote inside an unquoted field (enclose the field in quotes and write the "
               "quote as \"\")%s",
               "");
    } else if (c == '\r') {
      sc_error(sc, sc->line, sc->col, "carriage return not followed by line feed%s", "");
    }
    if (text_put(out, c)) return -1;
    sc_advance(sc);
  }
  return 0;
}

static void vocab_free_parts(ms__vocab *v) {
  if (!v) return;
  if (v->index) {
    for (size_t c = 0; c < v->n_cols; c++) free(v->index[c]);
  }
  free(v->index);
  free(v->index_cap);
  free(v->path);
  free(v->text);
  free(v->names);
  free(v->cells);
  free(v->lines);
  free(v->columns);
  free(v);
}

void ms__vocab_free(ms__vocab *v) { vocab_free_parts(v); }

static ms_status nomem(ms_diag *d, const char *file) {
  return ms_diag_add(d, MS_ERR_NOMEM, file, 0, 0, NULL, "out of memory reading vocabulary");
}

ms_status ms__vocab_load_string(ms__vocab **out, const char *text, size_t len,
                                const char *filename, ms_diag *d) {
  *out = NULL;
  const char *file = filename ? filename : "<vocab>";
  size_t start = 0;
  if (len >= 3 && (unsigned char)text[0] == 0xEF && (unsigned char)text[1] == 0xBB &&
      (unsigned char)text[2] == 0xBF)
    start = 3;

  size_t bad = validate_utf8((const unsigned char *)text, len, start, file, d);

  scanner sc = {text, len, start, 1, 1, file, d, 0};
  text_buf tb = {0};
  pos_vec all = {0};    /* committed cells, row-major, header first */
  pos_vec rec = {0};    /* the record being read */
  size_t n_cols = 0;    /* 0 until the header is read */
  size_t n_records = 0; /* data records committed */
  size_t data_no = 0;   /* data records seen (for messages) */
  int oom = 0;

  while (sc.pos < sc.len && !oom) {
    /* Completely empty lines are skipped. */
    if (sc.col == 1 && at_record_end(&sc)) {
      skip_record_end(&sc);
      continue;
    }
    int rline = sc.line;
    size_t text_mark = tb.n;
    rec.n = 0;
    int eof_in_quote = 0;
    for (;;) {
      field_pos f = {tb.n, sc.line, sc.col};
      int r = parse_field(&sc, &tb);
      if (r < 0 || text_put(&tb, '\0') || pos_push(&rec, f)) {
        oom = 1;
        break;
      }
      if (r == 1) {
        eof_in_quote = 1;
        break;
      }
      if (sc.pos < sc.len && sc.s[sc.pos] == ',') {
        sc_advance(&sc);
        if (sc.pos >= sc.len || at_record_end(&sc)) {
          /* A trailing comma ends with one more (empty) field. */
          field_pos e = {tb.n, sc.line, sc.col};
          if (text_put(&tb, '\0') || pos_push(&rec, e)) {
            oom = 1;
            break;
          }
          break;
        }
        continue;
      }
      break;
    }
    if (oom) break;
    skip_record_end(&sc);
    if (eof_in_quote) {
      tb.n = text_mark;
      break;
    }
    if (n_cols == 0) {
      n_cols = rec.n;
      for (size_t j = 0; j < rec.n; j++) {
        const char *nm = tb.b + rec.v[j].off;
        if (nm[0] == '\0') {
          sc_error(&sc, rec.v[j].line, rec.v[j].column, "empty column name in header%s", "");
        }
        for (size_t k = 0; k < j && nm[0]; k++) {
          if (strcmp(nm, tb.b + rec.v[k].off) == 0) {
            sc_error(&sc, rec.v[j].line, rec.v[j].column, "duplicate column name \"%s\"", nm);
            break;
          }
        }
        if (pos_push(&all, rec.v[j])) oom = 1;
      }
      continue;
    }
    data_no++;
    if (rec.n != n_cols) {
      sc.n_errors++;
      ms_diag_add(d, MS_ERR_FORMAT, file, rline, 1, NULL,
                  "row %zu has %zu field%s, the header has %zu", data_no, rec.n,
                  rec.n == 1 ? "" : "s", n_cols);
      tb.n = text_mark;
      continue;
    }
    for (size_t j = 0; j < rec.n && !oom; j++)
      if (pos_push(&all, rec.v[j])) oom = 1;
    n_records++;
  }
  free(rec.v);

  if (!oom && n_cols == 0 && sc.n_errors == 0 && bad == 0) {
    sc.n_errors++;
    ms_diag_add(d, MS_ERR_FORMAT, file, 1, 1, NULL, "empty vocabulary: no header row");
  }
  if (oom || sc.n_errors || bad) {
    free(tb.b);
    free(all.v);
    if (oom) return nomem(d, file);
    return MS_ERR_FORMAT;
  }

  ms__vocab *v = ms__calloc(1, sizeof *v);
  size_t n_cells = n_records * n_cols;
  if (!v || (n_records && n_cols > SIZE_MAX / sizeof(char *) / n_records)) {
    free(v);
    free(tb.b);
    free(all.v);
    return nomem(d, file);
  }
  v->path = ms__strdup(file);
  v->n_rows = n_records;
  v->n_cols = n_cols;
  v->text = tb.b ? tb.b : ms__malloc(1);
  v->names = ms__malloc(n_cols * sizeof *v->names);
  v->cells = ms__malloc((n_cells ? n_cells : 1) * sizeof *v->cells);
  v->lines = ms__malloc((n_cells ? n_cells : 1) * sizeof *v->lines);
  v->columns = ms__malloc((n_cells ? n_cells : 1) * sizeof *v->columns);
  v->index = ms__calloc(n_cols, sizeof *v->index);
  v->index_cap = ms__calloc(n_cols, sizeof *v->index_cap);
  if (!v->path || !v->text || !v->names || !v->cells || !v->lines || !v->columns || !v->index ||
      !v->index_cap) {
    free(all.v);
    vocab_free_parts(v);
    return nomem(d, file);
  }
  for (size_t j = 0; j < n_cols; j++) v->names[j] = v->text + all.v[j].off;
  for (size_t r = 0; r < n_records; r++) {
    for (size_t j = 0; j < n_cols; j++) {
      const field_pos *f = &all.v[(r + 1) * n_cols + j];
      size_t k = j * n_records + r;
      v->cells[k] = v->text + f->off;
      v->lines[k] = f->line;
      v->columns[k] = f->column;
    }
  }
  free(all.v);
  *out = v;
  return MS_OK;
}

ms_status ms__vocab_load(ms__vocab **out, const char *path, ms_diag *d) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) {
    int e = errno;
    return ms_diag_add(d, e == ENOENT ? MS_ERR_NOTFOUND : MS_ERR_IO, path, 0, 0, NULL,
                       "cannot open vocabulary: %s", strerror(e));
  }
  char *buf = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (n == cap) {
      char *nb = grow(buf, &cap, 1, 65536);
      if (!nb) {
        free(buf);
        fclose(f);
        return nomem(d, path);
      }
      buf = nb;
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0) break;
  }
  int err = ferror(f);
  fclose(f);
  if (err) {
    free(buf);
    return ms_diag_add(d, MS_ERR_IO, path, 0, 0, NULL, "read error on vocabulary");
  }
  ms_status st = ms__vocab_load_string(out, buf, n, path, d);
  free(buf);
  return st;
}

/* ---- accessors ------------------------------------------------------------ */

const char *ms__vocab_path(const ms__vocab *v) { return v->path; }
size_t ms__vocab_n_rows(const ms__vocab *v) { return v->n_rows; }
size_t ms__vocab_n_cols(const ms__vocab *v) { return v->n_cols; }

const char *ms__vocab_col_name(const ms__vocab *v, size_t col) {
  return col < v->n_cols ? v->names[col] : NULL;
}

size_t ms__vocab_col_find(const ms__vocab *v, const char *name) {
  for (size_t j = 0; j < v->n_cols; j++)
    if (strcmp(v->names[j], name) == 0) return j;
  return SIZE_MAX;
}

size_t ms__vocab_col_require(const ms__vocab *v, const char *name, ms_diag *d, const char *file,
                             int line, int column, const char *where) {
  size_t j = ms__vocab_col_find(v, name);
  if (j != SIZE_MAX) return j;
  /* List the columns so the fix is obvious. */
  size_t need = 1;
  for (size_t k = 0; k < v->n_cols; k++) need += strlen(v->names[k]) + 2;
  char *list = ms__malloc(need);
  if (list) {
    list[0] = '\0';
    for (size_t k = 0; k < v->n_cols; k++) {
      if (k) strcat(list, ", ");
      strcat(list, v->names[k]);
    }
  }
  const char *base = strrchr(v->path, '/');
  base = base ? base + 1 : v->path;
  if (!file) {
    file = v->path;
    line = 1;
    column = 1;
  }
  ms_diag_add(d, MS_ERR_SPEC, file, line, column, where,
              "vocabulary \"%s\" has no column \"%s\" (columns: %s)", base, name,
              list ? list : "?");
  free(list);
  return SIZE_MAX;
}

const char *ms__vocab_cell(const ms__vocab *v, size_t row, size_t col) {
  if (row >= v->n_rows || col >= v->n_cols) return NULL;
  return v->cells[col * v->n_rows + row];
}

int ms__vocab_cell_line(const ms__vocab *v, size_t row, size_t col) {
  if (row >= v->n_rows || col >= v->n_cols) return 0;
  return v->lines[col * v->n_rows + row];
}

int ms__vocab_cell_column(const ms__vocab *v, size_t row, size_t col) {
  if (row >= v->n_rows || col >= v->n_cols) return 0;
  return v->columns[col * v->n_rows + row];
}

const char *const *ms__vocab_col_strings(const ms__vocab *v, size_t col) {
  if (col >= v->n_cols) return NULL;
  return (const char *const *)(v->cells + col * v->n_rows);
}

ms_status ms__vocab_col_numbers(const ms__vocab *v, size_t col, int allow_empty, double *out,
                                ms_diag *d) {
  if (col >= v->n_cols)
    return ms_diag_add(d, MS_ERR_INVALID, v->path, 0, 0, NULL, "column index %zu out of range",
                       col);
  ms_status st = MS_OK;
  for (size_t r = 0; r < v->n_rows; r++) {
    size_t k = col * v->n_rows + r;
    const char *s = v->cells[k];
    if (s[0] == '\0') {
      out[r] = NAN;
      if (!allow_empty) {
        st = ms_diag_add(d, MS_ERR_DATA, v->path, v->lines[k], v->columns[k], NULL,
                         "row %zu, column \"%s\": empty value where a number is required",
                         r + 1, v->names[col]);
      }
      continue;
    }
    char *end = NULL;
    errno = 0;
    double x = strtod(s, &end);
    int ok = end != s && *end == '\0' && isfinite(x) && errno != ERANGE &&
             !strpbrk(s, "xX \t\r\n") && s[0] != '+';
    if (!ok) {
      out[r] = NAN;
      st = ms_diag_add(d, MS_ERR_DATA, v->path, v->lines[k], v->columns[k], NULL,
                       "row %zu, column \"%s\": \"%s\" is not a finite number", r + 1,
                       v->names[col], s);
      continue;
    }
    out[r] = x;
  }
  return st;
}

/* ---- hash index ----------------------------------------------------------- */

static uint64_t key_hash(const char *key) { return XXH64(key, strlen(key), 0); }

ms_status ms__vocab_index_build(ms__vocab *v, size_t col, ms_diag *d) {
  if (col >= v->n_cols)
    return ms_diag_add(d, MS_ERR_INVALID, v->path, 0, 0, NULL, "column index %zu out of range",
                       col);
  if (v->index[col]) return MS_OK;
  size_t cap = 8;
  while (cap < 2 * v->n_rows) {
    if (cap > SIZE_MAX / 4 / sizeof(size_t)) return nomem(d, v->path);
    cap *= 2;
  }
  size_t *tab = ms__calloc(cap, sizeof *tab);
  if (!tab) return nomem(d, v->path);
  ms_status st = MS_OK;
  const char *const *cells = ms__vocab_col_strings(v, col);
  for (size_t r = 0; r < v->n_rows; r++) {
    size_t k = col * v->n_rows + r;
    if (cells[r][0] == '\0') {
      st = ms_diag_add(d, MS_ERR_DATA, v->path, v->lines[k], v->columns[k], NULL,
                       "row %zu, key column \"%s\": empty key", r + 1, v->names[col]);
      continue;
    }
    size_t h = (size_t)key_hash(cells[r]) & (cap - 1);
    for (;;) {
      if (tab[h] == 0) {
        tab[h] = r + 1;
        break;
      }
      size_t other = tab[h] - 1;
      if (strcmp(cells[other], cells[r]) == 0) {
        st = ms_diag_add(d, MS_ERR_DATA, v->path, v->lines[k], v->columns[k], NULL,
                         "row %zu, key column \"%s\": duplicate key \"%s\" (first on line %d)",
                         r + 1, v->names[col], cells[r], v->lines[col * v->n_rows + other]);
        break;
      }
      h = (h + 1) & (cap - 1);
    }
  }
  if (st != MS_OK) {
    free(tab);
    return st;
  }
  v->index[col] = tab;
  v->index_cap[col] = cap;
  return MS_OK;
}

size_t ms__vocab_find(const ms__vocab *v, size_t col, const char *key) {
  if (col >= v->n_cols || !key) return SIZE_MAX;
  const char *const *cells = ms__vocab_col_strings(v, col);
  const size_t *tab = v->index[col];
  if (!tab) {
    for (size_t r = 0; r < v->n_rows; r++)
      if (strcmp(cells[r], key) == 0) return r;
    return SIZE_MAX;
  }
  size_t cap = v->index_cap[col];
  size_t h = (size_t)key_hash(key) & (cap - 1);
  while (tab[h]) {
    size_t r = tab[h] - 1;
    if (strcmp(cells[r], key) == 0) return r;
    h = (h + 1) & (cap - 1);
  }
  return SIZE_MAX;
}

const char *ms__vocab_lookup(const ms__vocab *v, size_t key_col, const char *key,
                             size_t val_col) {
  size_t r = ms__vocab_find(v, key_col, key);
  if (r == SIZE_MAX) return NULL;
  return ms__vocab_cell(v, r, val_col);
}

/* ---- name resolution ------------------------------------------------------ */

static int is_regular_readable(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, R_OK) == 0;
}

static char *join_path(const char *dir, const char *sub, const char *file) {
  char *p = NULL;
  int n;
  if (sub)
    n = ms__asprintf(&p, "%s/%s/%s", dir, sub, file);
  else
    n = ms__asprintf(&p, "%s/%s", dir, file);
  return n < 0 ? NULL : p;
}

/* Appends ", dir" to the searched list (best effort: the list is only for
 * the error message). */
static void note_dir(char **list, const char *dir, const char *sub) {
  char *n = NULL;
  int r;
  if (sub)
    r = ms__asprintf(&n, "%s%s%s/%s", *list ? *list : "", *list ? ", " : "", dir, sub);
  else
    r = ms__asprintf(&n, "%s%s%s", *list ? *list : "", *list ? ", " : "", dir);
  if (r < 0) return;
  free(*list);
  *list = n;
}

/* Tries dir[/sub]/file; on success stores the path in *out and returns 1,
 * -1 on allocation failure, 0 when absent. */
static int try_dir(const char *dir, const char *sub, const char *file, char **out, char **list) {
  if (!dir || !dir[0]) return 0;
  char *p = join_path(dir, sub, file);
  if (!p) return -1;
  if (is_regular_readable(p)) {
    *out = p;
    return 1;
  }
  free(p);
  note_dir(list, dir, sub);
  return 0;
}

ms_status ms__vocab_resolve(const char *name, const ms__vocab_search *s, char **out_path,
                            ms_diag *d, const char *where) {
  *out_path = NULL;
  if (!name || !name[0])
    return ms_diag_add(d, MS_ERR_SPEC, NULL, 0, 0, where, "empty vocabulary name");
  size_t nl = strlen(name);
  int has_ext = nl > 4 && strcmp(name + nl - 4, ".csv") == 0;
  char *file = NULL;
  if (ms__asprintf(&file, "%s%s", name, has_ext ? "" : ".csv") < 0) return nomem(d, NULL);

  if (file[0] == '/') {
    if (is_regular_readable(file)) {
      *out_path = file;
      return MS_OK;
    }
    ms_status st = ms_diag_add(d, MS_ERR_NOTFOUND, NULL, 0, 0, where,
                               "vocabulary file \"%s\" not found or not readable", file);
    free(file);
    return st;
  }

  char *list = NULL;
  int r = 0;
  const char *spec_dir = s ? s->spec_dir : NULL;
  r = try_dir(spec_dir, NULL, file, out_path, &list);
  if (r == 0) r = try_dir(spec_dir, "../vocab", file, out_path, &list);
  if (r == 0) {
    const char *env = getenv("MEDSYNTH_VOCAB_PATH");
    if (env && env[0]) {
      char *copy = ms__strdup(env);
      if (!copy) {
        r = -1;
      } else {
        char *save = NULL;
        for (char *tok = strtok_r(copy, ":", &save); tok && r == 0;
             tok = strtok_r(NULL, ":", &save))
          r = try_dir(tok, NULL, file, out_path, &list);
        free(copy);
      }
    }
  }
  if (r == 0) r = try_dir(s ? s->data_dir : NULL, NULL, file, out_path, &list);
  if (r == 0) r = try_dir(s ? s->source_dir : NULL, NULL, file, out_path, &list);

  ms_status st = MS_OK;
  if (r < 0) {
    free(*out_path);
    *out_path = NULL;
    st = nomem(d, NULL);
  } else if (r == 0) {
    st = ms_diag_add(d, MS_ERR_NOTFOUND, NULL, 0, 0, where,
                     "vocabulary \"%s\" not found (looked for %s in: %s; add a directory "
                     "with MEDSYNTH_VOCAB_PATH)",
                     name, file, list ? list : "no directories");
  }
  free(list);
  free(file);
  return st;
}
