/* Frames from medsynth HDF5 files: a table read through the public reader
 * (medsynth/io.h) and converted column by column to the fit/evaluate kinds.
 *
 * A column keeps its stored type's natural kind (int64 -> integer, float64
 * -> real, bool -> bool, categorical -> categorical, date -> date, string ->
 * id or categorical by the CSV reader's distinct-share rule, foreign keys ->
 * id). A forced kind (--types / --id) different from the natural one goes
 * through the cell's text and the CSV reader's parsers, so a file and its
 * CSV export give the same frame. Missing values come only from the stored
 * validity (NaN in float64), never from text tokens.
 *
 * Invariants: as for CSV frames (codes in [-1, n_levels), n_missing counts
 * NaN / -1 entries). Rows are read in chunks of CHUNK rows; memory is the
 * frame plus one chunk. */
#include <math.h>
#include "core/alloc.h"
#include "core/diag.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "table/frame_internal.h"
#include "medsynth/fit.h"
#include "medsynth/io.h"
#include "medsynth/table.h"

#define CHUNK 65536
/* Bytes of one chunk's buffers at most (wide string columns get fewer rows
 * per chunk). */
#define CHUNK_BYTES ((size_t)256 << 20)

typedef struct {
  const ms_column *sc;
  ms_fkind kind;
  int natural; /* kind is the column's natural kind: convert directly */
  int string_auto; /* string column without a forced kind: id or categorical decided at the end */
  int forced;      /* kind given by opts */
  ms__strtab lv;
  int has_lv;
  int bad;
} colstate;

static int is_h5_path(const char *p) {
  size_t n = strlen(p);
  return (n > 3 && !strcmp(p + n - 3, ".h5")) || (n > 5 && !strcmp(p + n - 5, ".hdf5"));
}

ms_status ms_frame_read(ms_frame **out, const char *path, const char *table, const ms_csv_params *opts,
                        ms_diag *d) {
  if (is_h5_path(path)) return ms_frame_read_h5(out, path, table, opts, d);
  return ms_frame_read_csv(out, path, opts, d);
}

static ms_fkind natural_kind(const ms_column *c) {
  if (c->references) return MS_FKIND_ID;
  switch (c->type) {
    case MS_COL_INT64: return MS_FKIND_INTEGER;
    case MS_COL_FLOAT64: return MS_FKIND_REAL;
    case MS_COL_BOOL: return MS_FKIND_BOOL;
    case MS_COL_CATEGORICAL: return MS_FKIND_CATEGORICAL;
    case MS_COL_DATE: return MS_FKIND_DATE;
    case MS_COL_STRING: return MS_FKIND_CATEGORICAL;
    default: return MS_FKIND_COUNT;
  }
}

/* Text of a present cell, as the CSV writers print it. */
static void cell_text(const ms_column *c, const ms_colbuf *b, size_t r, char *buf, size_t cap) {
  switch (c->type) {
    case MS_COL_INT64: snprintf(buf, cap, "%lld", (long long)((const int64_t *)b->data)[r]); break;
    case MS_COL_FLOAT64: {
      double v = ((const double *)b->data)[r];
      if (c->precision >= 0) snprintf(buf, cap, "%.*f", c->precision, v);
      else snprintf(buf, cap, "%.17g", v);
      break;
    }
    case MS_COL_BOOL: snprintf(buf, cap, "%d", ((const uint8_t *)b->data)[r] != 0); break;
    case MS_COL_CATEGORICAL: {
      int32_t k = ((const int32_t *)b->data)[r];
      snprintf(buf, cap, "%s", k >= 0 && (size_t)k < c->n_categories ? c->categories[k] : "");
      break;
    }
    case MS_COL_DATE: ms_date_format(((const int32_t *)b->data)[r], buf); break;
    case MS_COL_STRING: {
      const char *s = (const char *)b->data + r * (c->str_width + 1);
      size_t n = strnlen(s, c->str_width);
      if (n >= cap) n = cap - 1;
      memcpy(buf, s, n);
      buf[n] = '\0';
      break;
    }
    default: buf[0] = '\0';
  }
}

/* Rows per chunk: CHUNK, fewer when rows are wide. */
static size_t chunk_rows(const ms_table_schema *s) {
  size_t row = 1;
  for (size_t j = 0; j < s->n_columns; j++) {
    size_t w = ms_column_value_size(&s->columns[j]) + 1;
    row = w > CHUNK_BYTES - row ? CHUNK_BYTES : row + w;
  }
  size_t n = CHUNK_BYTES / row;
  return n < 1 ? 1 : n > CHUNK ? CHUNK : n;
}

/* Fewest decimals (0..MS_FRAME_DECIMALS_MAX) that print v exactly at
 * %.17g precision. */
static int decimals_of(double v, int from) {
  char b[64];
  for (int dd = from; dd < MS_FRAME_DECIMALS_MAX; dd++) {
    snprintf(b, sizeof b, "%.*f", dd, v);
    if (strtod(b, NULL) == v) return dd;
  }
  return MS_FRAME_DECIMALS_MAX;
}

ms_status ms_frame_read_h5(ms_frame **out, const char *path, const char *table,
                           const ms_csv_params *opts, ms_diag *d) {
  *out = NULL;
  ms_csv_params defaults;
  if (!opts) ms_csv_params_init(&defaults), opts = &defaults;
  ms_h5_reader *rd = NULL;
  size_t first = d ? d->count : 0;
  ms_status st = ms_h5_reader_open(&rd, path, d);
  if (st) return st;
  size_t ti = 0, nt = ms_h5_reader_n_tables(rd);
  if (table) {
    if (ms_h5_reader_find(rd, table, &ti) != MS_OK) {
      char names[1024] = "";
      for (size_t i = 0; i < nt; i++) {
        size_t l = strlen(names);
        snprintf(names + l, sizeof names - l, "%s%s", i ? ", " : "", ms_h5_reader_schema(rd, i)->name);
      }
      st = ms_diag_add(d, MS_ERR_NOTFOUND, path, 0, 0, NULL, "no table \"%s\" (tables: %s)", table,
                       nt ? names : "none");
      ms_h5_reader_free(rd);
      return st;
    }
  } else if (nt != 1) {
    char names[1024] = "";
    for (size_t i = 0; i < nt; i++) {
      size_t l = strlen(names);
      snprintf(names + l, sizeof names - l, "%s%s", i ? ", " : "", ms_h5_reader_schema(rd, i)->name);
    }
    st = nt ? ms_diag_add(d, MS_ERR_INVALID, path, 0, 0, NULL,
                          "the file holds %zu tables (%s): choose one with --table", nt, names)
            : ms_diag_add(d, MS_ERR_DATA, path, 0, 0, NULL, "the file holds no table");
    ms_h5_reader_free(rd);
    return st;
  }
  const ms_table_schema *s = ms_h5_reader_schema(rd, ti);
  uint64_t rows = ms_h5_reader_rows(rd, ti);
  if (rows > SIZE_MAX / sizeof(double) / 2) {
    st = ms_diag_add(d, MS_ERR_DATA, path, 0, 0, s->name, "%llu rows do not fit in memory",
                     (unsigned long long)rows);
    ms_h5_reader_free(rd);
    return st;
  }
  size_t n = (size_t)rows;
  ms_frame *f = ms__calloc(1, sizeof *f);
  colstate *cs = ms__calloc(s->n_columns + 1, sizeof *cs);
  size_t *fcol = ms__calloc(s->n_columns + 1, sizeof *fcol); /* frame column of schema column, or SIZE_MAX */
  ms_chunk *ch = NULL;
  if (!f || !cs || !fcol || !(f->cols = ms__calloc(s->n_columns + 1, sizeof *f->cols)) ||
      !(f->source = ms__strdup(path))) {
    st = MS_ERR_NOMEM;
    goto done;
  }
  if (n == 0) {
    st = ms_diag_add(d, MS_ERR_DATA, path, 0, 0, s->name, "table has no rows");
    goto done;
  }
  for (size_t t = 0; t < opts->n_types && !opts->lenient_types; t++) {
    int found = 0;
    for (size_t j = 0; j < s->n_columns; j++) found |= !strcmp(s->columns[j].name, opts->types[t].column);
    if (!found)
      st = ms_diag_add(d, MS_ERR_INVALID, path, 0, 0, s->name, "--types names unknown column \"%s\"",
                       opts->types[t].column);
  }
  for (size_t t = 0; t < opts->n_id_columns && !opts->lenient_types; t++) {
    int found = 0;
    for (size_t j = 0; j < s->n_columns; j++) found |= !strcmp(s->columns[j].name, opts->id_columns[t]);
    if (!found)
      st = ms_diag_add(d, MS_ERR_INVALID, path, 0, 0, s->name, "--id names unknown column \"%s\"",
                       opts->id_columns[t]);
  }
  if (st) goto done;
  f->n_rows = n;
  for (size_t j = 0; j < s->n_columns; j++) {
    const ms_column *c = &s->columns[j];
    colstate *q = &cs[j];
    q->sc = c;
    fcol[j] = SIZE_MAX;
    ms_fkind forced = MS_FKIND_COUNT;
    for (size_t t = 0; t < opts->n_types; t++)
      if (!strcmp(opts->types[t].column, c->name)) forced = opts->types[t].kind;
    for (size_t t = 0; t < opts->n_id_columns; t++)
      if (!strcmp(opts->id_columns[t], c->name)) forced = MS_FKIND_ID;
    ms_fkind nat = natural_kind(c);
    if (nat == MS_FKIND_COUNT && forced == MS_FKIND_COUNT) {
      ms_diag_warn(d, path, 0, 0, s->name, "column \"%s\" (%s) is not supported by fit/evaluate: skipped",
                   c->name, ms_coltype_name(c->type));
      continue;
    }
    q->kind = forced != MS_FKIND_COUNT ? forced : nat;
    q->natural = forced == MS_FKIND_COUNT || forced == nat;
    q->forced = forced != MS_FKIND_COUNT;
    q->string_auto = forced == MS_FKIND_COUNT && c->type == MS_COL_STRING && !c->references;
    ms_frame_col *fc = &f->cols[f->n_cols];
    fcol[j] = f->n_cols++;
    if (!(fc->name = ms__strdup(c->name))) {
      st = MS_ERR_NOMEM;
      goto done;
    }
    fc->kind = q->kind;
    if (q->kind == MS_FKIND_CATEGORICAL || q->kind == MS_FKIND_ID) {
      fc->code = ms__malloc(n * sizeof *fc->code);
      if (!fc->code) {
        st = MS_ERR_NOMEM;
        goto done;
      }
      if (q->natural && c->type == MS_COL_CATEGORICAL) {
        fc->levels = ms__calloc(c->n_categories + 1, sizeof *fc->levels);
        if (!fc->levels) {
          st = MS_ERR_NOMEM;
          goto done;
        }
        for (size_t l = 0; l < c->n_categories; l++) {
          if (!(fc->levels[l] = ms__strdup(c->categories[l]))) {
            st = MS_ERR_NOMEM;
            goto done;
          }
          fc->n_levels = l + 1;
        }
      } else {
        if ((st = ms__strtab_init(&q->lv))) goto done;
        q->has_lv = 1;
      }
    } else {
      fc->num = ms__malloc(n * sizeof *fc->num);
      if (!fc->num) {
        st = MS_ERR_NOMEM;
        goto done;
      }
      if (q->kind == MS_FKIND_REAL && q->natural && c->type == MS_COL_FLOAT64 && c->precision >= 0)
        fc->decimals = c->precision > MS_FRAME_DECIMALS_MAX ? MS_FRAME_DECIMALS_MAX : c->precision;
      /* The text format recorded in the schema, when there is one. */
      fc->real_style = -1;
      if (q->kind == MS_FKIND_REAL && c->format)
        fc->real_style = !strcmp(c->format, "trim") ? 1 : !strcmp(c->format, "trim.0") ? 2 : 0;
      if (q->kind == MS_FKIND_DATE && c->format && !(fc->date_format = ms__strdup(c->format))) {
        st = MS_ERR_NOMEM;
        goto done;
      }
    }
  }
  if (f->n_cols == 0) {
    st = ms_diag_add(d, MS_ERR_DATA, path, 0, 0, s->name, "no column can be read");
    goto done;
  }
  size_t per = chunk_rows(s);
  if ((st = ms_chunk_new(&ch, s, rows < per ? (size_t)rows : per))) goto done;
  char text[4096];
  for (uint64_t r0 = 0; r0 < rows && !st; r0 += ch->n_rows) {
    if ((st = ms_h5_reader_read(rd, ti, r0, ch, d))) break;
    for (size_t j = 0; j < s->n_columns && !st; j++) {
      if (fcol[j] == SIZE_MAX) continue;
      colstate *q = &cs[j];
      const ms_column *c = q->sc;
      const ms_colbuf *b = &ch->cols[j];
      ms_frame_col *fc = &f->cols[fcol[j]];
      for (size_t i = 0; i < ch->n_rows; i++) {
        size_t r = (size_t)r0 + i;
        int present = !b->valid || b->valid[i];
        if (present && c->type == MS_COL_FLOAT64 && isnan(((const double *)b->data)[i])) present = 0;
        if (present && c->type == MS_COL_CATEGORICAL) {
          int32_t k = ((const int32_t *)b->data)[i];
          present = k >= 0 && (size_t)k < c->n_categories;
        }
        if (!present) {
          fc->n_missing++;
          if (fc->code) fc->code[r] = -1;
          else fc->num[r] = NAN;
          continue;
        }
        if (fc->code) {
          if (!q->has_lv) {
            fc->code[r] = ((const int32_t *)b->data)[i];
            continue;
          }
          cell_text(c, b, i, text, sizeof text);
          int32_t k = ms__strtab_intern(&q->lv, text);
          if (k < 0) {
            st = MS_ERR_NOMEM;
            break;
          }
          fc->code[r] = k;
          continue;
        }
        double v = NAN;
        int ok = 1;
        if (q->natural) {
          switch (c->type) {
            case MS_COL_INT64: v = (double)((const int64_t *)b->data)[i]; break;
            case MS_COL_FLOAT64:
              v = ((const double *)b->data)[i];
              if (c->precision < 0 && fc->decimals < MS_FRAME_DECIMALS_MAX) fc->decimals = decimals_of(v, fc->decimals);
              break;
            case MS_COL_BOOL: v = ((const uint8_t *)b->data)[i] != 0; break;
            case MS_COL_DATE: v = ((const int32_t *)b->data)[i]; break;
            default: ok = 0;
          }
        } else {
          cell_text(c, b, i, text, sizeof text);
          int isint, dec = 0;
          if (q->kind == MS_FKIND_DATE) {
            int32_t dd;
            ok = !ms_date_parse(text, &dd);
            v = dd;
          } else if (q->kind == MS_FKIND_BOOL) {
            ok = !ms__fit_parse_bool(text, &v) ||
                 (!ms__fit_parse_num(text, &v, &isint, NULL) && (v == 0 || v == 1));
          } else {
            ok = !ms__fit_parse_num(text, &v, &isint, &dec);
            if (ok && q->kind == MS_FKIND_INTEGER && v != floor(v)) ok = 0;
            if (ok && q->kind == MS_FKIND_REAL && dec > fc->decimals) fc->decimals = dec > MS_FRAME_DECIMALS_MAX ? MS_FRAME_DECIMALS_MAX : dec;
          }
          if (!ok) {
            if (q->bad++ < 10) {
              char where[512];
              snprintf(where, sizeof where, "%s/%zu", s->name, r);
              ms_diag_add(d, MS_ERR_DATA, path, 0, 0, where, "%s: value \"%s\" is not a valid %s", c->name,
                          text, ms_fkind_name(q->kind));
            }
          }
        }
        if (!ok) {
          fc->n_missing++;
          v = NAN;
        }
        fc->num[r] = v;
      }
    }
  }
  for (size_t j = 0; j < s->n_columns && !st; j++) {
    if (fcol[j] == SIZE_MAX) continue;
    colstate *q = &cs[j];
    ms_frame_col *fc = &f->cols[fcol[j]];
    if (q->bad) st = MS_ERR_DATA;
    if (q->has_lv) {
      fc->levels = q->lv.strs;
      fc->n_levels = q->lv.n;
      q->lv.strs = NULL;
      q->lv.n = 0;
      if (q->string_auto) {
        size_t present = n - fc->n_missing;
        double share = opts->id_distinct_share > 0 ? opts->id_distinct_share : 0.5;
        if (present >= 20 && (double)fc->n_levels > share * (double)present) fc->kind = MS_FKIND_ID;
      }
    }
    if (!st && !q->forced && (fc->kind == MS_FKIND_INTEGER || fc->kind == MS_FKIND_REAL))
      st = ms__frame_col_discrete(fc, n);
  }
done:
  for (size_t j = 0; cs && j < s->n_columns; j++)
    if (cs[j].has_lv) ms__strtab_deinit(&cs[j].lv, 1);
  free(cs);
  free(fcol);
  ms_chunk_free(ch);
  ms_h5_reader_free(rd);
  /* the frame's own allocations fail without a message on the spot */
  if (st == MS_ERR_NOMEM && ms__diag_find(d, first, MS_ERR_NOMEM) == SIZE_MAX)
    ms__diag_nomem(d, path, NULL, "the frame");
  if (st) {
    ms_frame_free(f);
    return st;
  }
  *out = f;
  return MS_OK;
}
