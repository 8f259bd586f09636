/* Generating records through the public API only (medsynth/records.h and
 * medsynth/io.h): load and validate a spec, generate its tables into an HDF5
 * file, and compute a summary on the way through a "tee" sink that forwards
 * every chunk to the writer.
 *
 * Usage: example_records_api SPEC OUT.h5
 * Prints, per table, the rows written and the mean of every integer/real
 * column (missing values left out). Exit status 0 on success. */
#include <gsl/gsl_errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "medsynth/io.h"
#include "medsynth/records.h"

typedef struct {
  ms_sink next; /* the writer's sink */
  const ms_spec *spec;
  double sum[16][64];
  unsigned long long cnt[16][64];
} tee;

static ms_status tee_begin(void *ctx, const ms_table_schema *s, uint64_t expected) {
  tee *t = ctx;
  return t->next.begin_table(t->next.ctx, s, expected);
}

static ms_status tee_chunk(void *ctx, const ms_chunk *c) {
  tee *t = ctx;
  size_t ti = ms_spec_table_find(t->spec, c->schema->name);
  for (size_t j = 0; j < c->schema->n_columns && j < 64 && ti < 16; j++) {
    const ms_column *col = &c->schema->columns[j];
    for (size_t r = 0; r < c->n_rows; r++) {
      if (c->cols[j].valid && !c->cols[j].valid[r]) continue;
      if (col->type == MS_COL_INT64)
        t->sum[ti][j] += (double)((const int64_t *)c->cols[j].data)[r];
      else if (col->type == MS_COL_FLOAT64)
        t->sum[ti][j] += ((const double *)c->cols[j].data)[r];
      else
        continue;
      t->cnt[ti][j]++;
    }
  }
  return t->next.write_chunk(t->next.ctx, c);
}

static ms_status tee_end(void *ctx, const char *name) {
  tee *t = ctx;
  return t->next.end_table(t->next.ctx, name);
}

static int fail(ms_diag *d, int code) {
  char *text = ms_diag_format(d);
  fputs(text ? text : "out of memory\n", stderr);
  free(text);
  ms_diag_deinit(d);
  return code;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s SPEC OUT.h5\n", argv[0]);
    return 64;
  }
  gsl_set_error_handler_off(); /* the library reports errors, GSL must not abort */
  ms_diag d;
  ms_diag_init(&d);

  ms_spec *spec = NULL;
  if (ms_spec_load(&spec, argv[1], &d) != MS_OK) return fail(&d, 65);

  ms_writer_params wo;
  ms_writer_params_init(&wo);
  wo.format = MS_FMT_HDF5;
  wo.force = 1;
  wo.no_timestamp = 1;
  ms_writer *w = NULL;
  if (ms_writer_open(&w, argv[2], &wo, &d) != MS_OK) {
    ms_spec_free(spec);
    return fail(&d, 73);
  }

  tee *t = calloc(1, sizeof *t);
  if (!t) return 70;
  t->next = ms_writer_sink(w);
  t->spec = spec;
  ms_sink sink = {t, tee_begin, tee_chunk, tee_end};

  ms_generate_params o;
  ms_generate_params_init(&o);
  o.threads = 2; /* any value gives the same file */
  ms_generate_report rep;
  ms_status st = ms_generate(spec, &o, &sink, &rep, &d);
  if (st == MS_OK) st = ms_writer_set_attr_int(w, "seed", (int64_t)rep.seed);
  if (st == MS_OK) st = ms_writer_commit(w, &d);
  else ms_writer_abort(w);
  if (st != MS_OK) {
    ms_generate_report_deinit(&rep);
    ms_spec_free(spec);
    free(t);
    return fail(&d, 65);
  }

  for (size_t i = 0; i < rep.n_tables; i++) {
    const ms_table_schema *s = ms_spec_table_schema(spec, i);
    printf("%s: %llu rows\n", rep.tables[i].name, (unsigned long long)rep.tables[i].rows);
    for (size_t j = 0; j < s->n_columns && j < 64 && i < 16; j++)
      if (t->cnt[i][j])
        printf("  mean %s = %.3f%s%s\n", s->columns[j].name, t->sum[i][j] / (double)t->cnt[i][j],
               s->columns[j].unit ? " " : "", s->columns[j].unit ? s->columns[j].unit : "");
  }
  ms_generate_report_deinit(&rep);
  ms_spec_free(spec);
  free(t);
  ms_diag_deinit(&d);
  return 0;
}
