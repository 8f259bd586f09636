/* `medsynth inspect FILE.h5`: provenance, tables and arrays of a medsynth
 * HDF5 file, with per-column summaries, streamed chunk by chunk so memory
 * stays flat in the row count. `--verify` recomputes every stored checksum.
 *
 * Summaries: numbers, dates and datetimes get min/mean/max (mean of dates is
 * shown as a date); categorical and bool columns the top values with their
 * shares of present values; strings the top values while at most
 * MAX_DISTINCT distinct values have been seen (beyond that only the count of
 * distinct values is bounded, never memory). Every column shows its missing
 * share. Reads go through ms_h5_reader (medsynth/io.h), which silences
 * and translates HDF5's errors. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "medsynth/io.h"
#include "medsynth/table.h"

#define READ_ROWS 65536
/* Bytes of one chunk's buffers at most (wide string columns get fewer rows
 * per read). */
#define READ_BYTES ((size_t)256 << 20)
#define MAX_DISTINCT 4096

typedef struct {
  char *s;
  uint64_t n;
} strcount;

typedef struct {
  uint64_t present, missing;
  double min, max;
  long double sum;
  uint64_t *cat; /* categorical: per code; bool: [false, true] */
  strcount *str; /* open-addressing table, MAX_DISTINCT * 2 slots */
  size_t n_str;
  int str_overflow;
} colstat;

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static int str_add(colstat *c, const char *s) {
  size_t cap = MAX_DISTINCT * 2;
  if (!c->str) {
    c->str = calloc(cap, sizeof *c->str);
    if (!c->str) return -1;
  }
  size_t i = hash_str(s) & (cap - 1);
  while (c->str[i].s) {
    if (!strcmp(c->str[i].s, s)) {
      c->str[i].n++;
      return 0;
    }
    i = (i + 1) & (cap - 1);
  }
  if (c->n_str >= MAX_DISTINCT) {
    c->str_overflow = 1;
    return 0;
  }
  if (!(c->str[i].s = strdup(s))) return -1;
  c->str[i].n = 1;
  c->n_str++;
  return 0;
}

static int cnt_cmp(const void *a, const void *b) {
  const strcount *x = a, *y = b;
  if (x->n != y->n) return x->n < y->n ? 1 : -1;
  return strcmp(x->s ? x->s : "", y->s ? y->s : "");
}

static void print_date_value(const ms_column *c, double v) {
  char buf[MS_DATE_BUFSZ];
  if (c->type == MS_COL_DATE)
    ms_date_format((int32_t)floor(v), buf);
  else
    ms_datetime_format((int64_t)floor(v), buf);
  fputs(buf, stdout);
}

/* Prints s as a double-quoted string with ", \\ and control bytes escaped,
 * so one column's summary stays on one line. */
static void print_quoted(const char *s) {
  putchar('"');
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\')
      printf("\\%c", ch);
    else if (ch == '\n')
      fputs("\\n", stdout);
    else if (ch < 0x20)
      printf("\\x%02x", ch);
    else
      putchar(ch);
  }
  putchar('"');
}

static void print_top(strcount *items, size_t n, uint64_t present, int top) {
  qsort(items, n, sizeof *items, cnt_cmp);
  for (size_t k = 0; k < n && (int)k < top; k++) {
    if (!items[k].s) break;
    if (k) fputs(", ", stdout);
    print_quoted(items[k].s);
    printf(" %.1f%%", present ? 100.0 * (double)items[k].n / (double)present : 0.0);
  }
}

static void print_stat(const ms_column *c, colstat *s, int top) {
  uint64_t total = s->present + s->missing;
  printf("    %-20s %-11s missing %5.1f%%  ", c->name, ms_coltype_name(c->type),
         total ? 100.0 * (double)s->missing / (double)total : 0.0);
  if (s->present == 0) {
    printf("(no values)\n");
    return;
  }
  switch (c->type) {
    case MS_COL_INT64:
      /* Integers exactly (doubles hold every integer below 2^53). */
      printf("min %.17g  mean %.6g  max %.17g", s->min, (double)(s->sum / s->present), s->max);
      if (c->unit) printf(" %s", c->unit);
      break;
    case MS_COL_FLOAT64:
      printf("min %.6g  mean %.6g  max %.6g", s->min, (double)(s->sum / s->present), s->max);
      if (c->unit) printf(" %s", c->unit);
      break;
    case MS_COL_DATE:
    case MS_COL_DATETIME:
      printf("min ");
      print_date_value(c, s->min);
      printf("  mean ");
      print_date_value(c, (double)(s->sum / s->present));
      printf("  max ");
      print_date_value(c, s->max);
      break;
    case MS_COL_BOOL: {
      strcount it[2] = {{"true", s->cat[1]}, {"false", s->cat[0]}};
      print_top(it, 2, s->present, top);
      break;
    }
    case MS_COL_CATEGORICAL: {
      strcount *it = calloc(c->n_categories ? c->n_categories : 1, sizeof *it);
      if (!it) break;
      size_t n = 0;
      for (size_t k = 0; k < c->n_categories; k++)
        if (s->cat[k]) it[n++] = (strcount){c->categories[k], s->cat[k]};
      print_top(it, n, s->present, top);
      printf("  (%zu of %zu categories used)", n, c->n_categories);
      free(it);
      break;
    }
    case MS_COL_STRING:
      if (s->str_overflow) {
        printf("more than %d distinct values", MAX_DISTINCT);
      } else {
        strcount *it = calloc(s->n_str ? s->n_str : 1, sizeof *it);
        if (!it) break;
        size_t n = 0;
        for (size_t k = 0; k < MAX_DISTINCT * 2; k++)
          if (s->str[k].s) it[n++] = s->str[k];
        print_top(it, n, s->present, top);
        printf("  (%zu distinct)", n);
        free(it);
      }
      break;
    default:
      break;
  }
  printf("\n");
}

static int accumulate(const ms_column *c, const ms_colbuf *b, size_t n, colstat *s) {
  for (size_t r = 0; r < n; r++) {
    if (b->valid && !b->valid[r]) {
      s->missing++;
      continue;
    }
    double v = 0;
    switch (c->type) {
      case MS_COL_INT64:
      case MS_COL_DATETIME:
        v = (double)((const int64_t *)b->data)[r];
        break;
      case MS_COL_FLOAT64:
        v = ((const double *)b->data)[r];
        if (isnan(v)) {
          s->missing++;
          continue;
        }
        break;
      case MS_COL_DATE:
        v = ((const int32_t *)b->data)[r];
        break;
      case MS_COL_BOOL:
        s->cat[((const uint8_t *)b->data)[r] ? 1 : 0]++;
        s->present++;
        continue;
      case MS_COL_CATEGORICAL: {
        int32_t k = ((const int32_t *)b->data)[r];
        if (k >= 0 && (size_t)k < c->n_categories) s->cat[k]++;
        s->present++;
        continue;
      }
      case MS_COL_STRING: {
        const char *str = (const char *)b->data + r * (c->str_width + 1);
        if (str_add(s, str)) return -1;
        s->present++;
        continue;
      }
      default:
        continue;
    }
    if (s->present == 0 || v < s->min) s->min = v;
    if (s->present == 0 || v > s->max) s->max = v;
    s->sum += v;
    s->present++;
  }
  return 0;
}

static void free_stats(colstat *st, size_t n) {
  for (size_t j = 0; j < n; j++) {
    free(st[j].cat);
    if (st[j].str)
      for (size_t k = 0; k < MAX_DISTINCT * 2; k++) free(st[j].str[k].s);
    free(st[j].str);
  }
  free(st);
}

static int inspect_table(ms_h5_reader *r, size_t t, int verify, int top, ms_diag *d) {
  const ms_table_schema *s = ms_h5_reader_schema(r, t);
  uint64_t rows = ms_h5_reader_rows(r, t);
  printf("table %s: %" PRIu64 " rows, %zu columns%s%s\n", s->name, rows, s->n_columns,
         s->parent ? ", parent " : "", s->parent ? s->parent : "");
  colstat *st = calloc(s->n_columns ? s->n_columns : 1, sizeof *st);
  ms_chunk *c = NULL;
  size_t row_bytes = 1;
  for (size_t j = 0; j < s->n_columns; j++) {
    size_t w = ms_column_value_size(&s->columns[j]) + 1;
    row_bytes = w > READ_BYTES - row_bytes ? READ_BYTES : row_bytes + w;
  }
  size_t per_read = READ_BYTES / row_bytes;
  if (per_read > READ_ROWS) per_read = READ_ROWS;
  if (per_read < 1) per_read = 1;
  if (!st || ms_chunk_new(&c, s, per_read)) {
    free(st);
    return MS_EXIT_SOFTWARE;
  }
  for (size_t j = 0; j < s->n_columns; j++) {
    const ms_column *col = &s->columns[j];
    size_t nc = col->type == MS_COL_BOOL ? 2 : col->type == MS_COL_CATEGORICAL ? col->n_categories : 0;
    if (nc && !(st[j].cat = calloc(nc, sizeof *st[j].cat))) {
      free_stats(st, s->n_columns);
      ms_chunk_free(c);
      return MS_EXIT_SOFTWARE;
    }
  }
  int rc = MS_EXIT_OK;
  for (uint64_t i = 0; i < rows; i += c->n_rows) {
    ms_status e = ms_h5_reader_read(r, t, i, c, d);
    if (e != MS_OK || c->n_rows == 0) {
      rc = ms_cli_exit_code(e ? e : MS_ERR_INTERNAL);
      break;
    }
    for (size_t j = 0; j < s->n_columns; j++)
      if (accumulate(&s->columns[j], &c->cols[j], c->n_rows, &st[j])) rc = MS_EXIT_SOFTWARE;
    if (rc) break;
  }
  if (rc == MS_EXIT_OK)
    for (size_t j = 0; j < s->n_columns; j++) print_stat(&s->columns[j], &st[j], top);
  free_stats(st, s->n_columns);
  ms_chunk_free(c);
  if (rc == MS_EXIT_OK && verify) {
    uint64_t dig = 0;
    ms_status e = ms_h5_reader_verify(r, t, &dig, d);
    if (e == MS_OK)
      printf("    xxh64 %016" PRIx64 ": verified\n", dig);
    else
      rc = e == MS_ERR_DATA ? MS_EXIT_DATAERR : ms_cli_exit_code(e);
  }
  return rc;
}

static double elem(const void *p, ms_dtype t, size_t i) {
  switch (t) {
    case MS_DT_FLOAT32:
      return ((const float *)p)[i];
    case MS_DT_UINT8:
      return ((const uint8_t *)p)[i];
    case MS_DT_UINT16:
      return ((const uint16_t *)p)[i];
    case MS_DT_INT16:
      return ((const int16_t *)p)[i];
    default:
      return ((const int32_t *)p)[i];
  }
}

static int inspect_array(ms_h5_reader *r, size_t a, int verify, ms_diag *d) {
  ms_dtype t = ms_h5_reader_array_dtype(r, a);
  int rank = ms_h5_reader_array_rank(r, a);
  const uint64_t *dims = ms_h5_reader_array_dims(r, a);
  printf("array %s: %s [", ms_h5_reader_array_path(r, a), ms_dtype_name(t));
  size_t per_item = 1;
  for (int k = 0; k < rank; k++) {
    printf("%s%" PRIu64, k ? ", " : "", dims[k]);
    if (k) per_item *= (size_t)dims[k];
  }
  printf("]");
  void *buf = malloc(per_item * ms_dtype_size(t) + 1);
  if (!buf) return MS_EXIT_SOFTWARE;
  double mn = 0, mx = 0;
  long double sum = 0;
  uint64_t cnt = 0, nan = 0;
  for (uint64_t i = 0; i < dims[0]; i++) {
    ms_status e = ms_h5_reader_read_items(r, a, i, 1, buf, d);
    if (e) {
      free(buf);
      printf("\n");
      return ms_cli_exit_code(e);
    }
    for (size_t k = 0; k < per_item; k++) {
      double v = elem(buf, t, k);
      if (isnan(v)) {
        nan++;
        continue;
      }
      if (cnt == 0 || v < mn) mn = v;
      if (cnt == 0 || v > mx) mx = v;
      sum += v;
      cnt++;
    }
  }
  free(buf);
  if (cnt)
    printf("  min %.6g  mean %.6g  max %.6g", mn, (double)(sum / cnt), mx);
  if (nan) printf("  NaN %" PRIu64, nan);
  printf("\n");
  if (verify) {
    ms_status e = ms_h5_reader_verify_array(r, a, d);
    if (e == MS_OK)
      printf("    xxh64_items: verified\n");
    else if (e == MS_ERR_NOTFOUND)
      printf("    xxh64_items: none stored\n");
    else
      return e == MS_ERR_DATA ? MS_EXIT_DATAERR : ms_cli_exit_code(e);
  }
  return MS_EXIT_OK;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: medsynth inspect [--verify] [--top N] [--table NAME] FILE.h5\n"
          "       medsynth inspect --spec FILE.h5\n\n"
          "Summarises a medsynth HDF5 file: provenance (root attributes), each table's\n"
          "row count and per-column missing share, min/mean/max (numbers, dates) or top\n"
          "values with shares (categorical, bool, string), and each array's shape,\n"
          "element type and min/mean/max. Reads chunk by chunk: memory does not grow\n"
          "with the file.\n\n"
          "options:\n"
          "  --verify      recompute the stored xxh64 checksums and compare\n"
          "  --top N       values listed per categorical/bool/string column (default 5)\n"
          "  --table NAME  only this table (arrays are then skipped)\n"
          "  --spec        print the dataset spec stored in the file, nothing else\n"
          "  -h, --help    this text\n\n"
          "exit codes: 0 ok; 64 usage; 65 checksum mismatch or corrupt data (a damaged\n"
          "            file); 66 missing file, not an HDF5 file, or not a medsynth file;\n"
          "            74 read error\n");
}

static int cmd_inspect(int argc, char **argv) {
  int verify = 0, top = 5, spec_only = 0;
  const char *path = NULL, *only = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      usage(stdout);
      return MS_EXIT_OK;
    } else if (!strcmp(argv[i], "--verify")) {
      verify = 1;
    } else if (!strcmp(argv[i], "--spec")) {
      spec_only = 1;
    } else if (!strcmp(argv[i], "--top") || !strcmp(argv[i], "--table")) {
      if (i + 1 >= argc) {
        ms_cli_error("inspect", "%s needs a value", argv[i]);
        return MS_EXIT_USAGE;
      }
      if (!strcmp(argv[i], "--table")) {
        only = argv[++i];
      } else {
        int64_t v;
        if (ms_cli_parse_i64(argv[++i], &v) || v < 1 || v > 1000) {
          ms_cli_error("inspect", "--top wants an integer 1..1000, not '%s'", argv[i]);
          return MS_EXIT_USAGE;
        }
        top = (int)v;
      }
    } else if (argv[i][0] == '-' && argv[i][1]) {
      ms_cli_error("inspect", "unknown option '%s' (see 'medsynth inspect --help')", argv[i]);
      return MS_EXIT_USAGE;
    } else if (path) {
      ms_cli_error("inspect", "one file at a time ('%s' and '%s')", path, argv[i]);
      return MS_EXIT_USAGE;
    } else {
      path = argv[i];
    }
  }
  if (!path) {
    usage(stderr);
    return MS_EXIT_USAGE;
  }
  ms_diag d;
  ms_diag_init(&d);
  ms_h5_reader *r = NULL;
  ms_status st = ms_h5_reader_open(&r, path, &d);
  if (st != MS_OK) {
    ms_cli_print_diag(&d);
    ms_diag_deinit(&d);
    return (st == MS_ERR_NOTFOUND || st == MS_ERR_FORMAT) ? MS_EXIT_NOINPUT : ms_cli_exit_code(st);
  }
  if (spec_only) {
    const char *spec = NULL;
    for (size_t i = 0; i < ms_h5_reader_n_attrs(r); i++)
      if (!strcmp(ms_h5_reader_attr_name(r, i), "spec")) spec = ms_h5_reader_attr_value(r, i);
    int rc = MS_EXIT_OK;
    ms_cli_print_diag(&d);
    if (spec && !strcmp(spec, "(unreadable)")) {
      ms_cli_error("inspect", "%s: the stored spec cannot be read (damaged file)", path);
      rc = MS_EXIT_DATAERR;
    } else if (spec) {
      fputs(spec, stdout);
      if (*spec && spec[strlen(spec) - 1] != '\n') fputc('\n', stdout);
    } else {
      ms_cli_error("inspect", "%s: no spec stored in this file", path);
      rc = MS_EXIT_DATAERR;
    }
    ms_h5_reader_free(r);
    ms_diag_deinit(&d);
    return rc;
  }
  size_t only_idx = 0;
  if (only && ms_h5_reader_find(r, only, &only_idx) != MS_OK) {
    ms_cli_error("inspect", "%s: no table '%s'", path, only);
    ms_h5_reader_free(r);
    ms_diag_deinit(&d);
    return MS_EXIT_USAGE;
  }
  printf("file %s\n", path);
  printf("provenance:\n");
  for (size_t i = 0; i < ms_h5_reader_n_attrs(r); i++) {
    /* Multi-line values (the embedded spec) are summarised; --spec prints
     * the spec text alone. */
    const char *v = ms_h5_reader_attr_value(r, i);
    const char *nl = v ? strchr(v, '\n') : NULL;
    if (nl) {
      size_t lines = 1;
      for (const char *q = v; *q; q++) lines += *q == '\n';
      printf("  %s: %.*s ... (%zu lines, %zu bytes; 'medsynth inspect --spec' prints it)\n",
             ms_h5_reader_attr_name(r, i), (int)(nl - v), v, lines, strlen(v));
    } else {
      printf("  %s: %s\n", ms_h5_reader_attr_name(r, i), v ? v : "");
    }
  }
  int rc = MS_EXIT_OK;
  for (size_t t = 0; t < ms_h5_reader_n_tables(r) && rc == MS_EXIT_OK; t++)
    if (!only || t == only_idx) rc = inspect_table(r, t, verify, top, &d);
  for (size_t a = 0; !only && a < ms_h5_reader_n_arrays(r) && rc == MS_EXIT_OK; a++)
    rc = inspect_array(r, a, verify, &d);
  /* Warnings (unreadable provenance, say) are shown even when the rest reads. */
  if (rc != MS_EXIT_OK || d.count) ms_cli_print_diag(&d);
  ms_h5_reader_free(r);
  ms_diag_deinit(&d);
  return rc;
}

MS_CLI_COMMAND(inspect, "summarise a medsynth HDF5 file (--verify checks checksums)", cmd_inspect);
