/* Record tables from a JSON spec: load + validate + compile, then generate.
 *
 * Usage:
 *   ms_diag d; ms_diag_init(&d);
 *   ms_spec *spec = NULL;
 *   if (ms_spec_load(&spec, "outpatient.json", &d) != MS_OK) {
 *     // d holds every problem, each "file:line:col: error: /json/ptr: msg"
 *   }
 *   ms_generate_params o; ms_generate_params_init(&o);
 *   o.threads = 2;
 *   ms_generate_report rep;
 *   ms_status st = ms_generate(spec, &o, &sink, &rep, &d);
 *   ... rep.tables[i].rows ...
 *   ms_generate_report_deinit(&rep);
 *   ms_spec_free(spec);
 *   ms_diag_deinit(&d);
 *
 * The spec language is described in docs/spec.md; the reproducibility
 * contract (same spec + seed + version => same values for any thread count,
 * chunk size or shard split; prefix-stable row counts) in
 * docs/reproducibility.md.
 *
 * Sink protocol: ms_generate calls begin_table once for every generated
 * table (in spec order) before any chunk, then write_chunk for chunks of
 * any of those tables, in row order within each table (chunks of different
 * tables interleave: a parent chunk is followed by the child chunks of its
 * rows), then end_table for each table (spec order).
 *
 * GSL: generation calls GSL's CDF and sampler routines, whose default error
 * handler aborts the process. Turn it off once at start-up
 * (gsl_set_error_handler_off(), as the medsynth command does); medsynth checks
 * parameters itself and reports problems through ms_diag.
 *
 * Ownership: ms_spec_load* create a spec the caller releases with
 * ms_spec_free. Accessors return pointers borrowed from the spec, valid until
 * it is freed. ms_generate borrows everything it is given; the report's
 * arrays are owned by the report (ms_generate_report_deinit). A spec is
 * immutable once loaded, so several threads may generate from it at once. */
#ifndef MEDSYNTH_RECORDS_H
#define MEDSYNTH_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include "medsynth/status.h"
#include "medsynth/table.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ms_spec ms_spec;

/* The most rules a field's "when" (or "missing.when") list may hold. */
#define MS_SPEC_MAX_RULES 200

/* Reads, parses, validates and compiles the spec file at `path`. On any
 * problem returns non-OK (MS_ERR_NOTFOUND / MS_ERR_IO for an unreadable file,
 * MS_ERR_PARSE for JSON syntax, MS_ERR_SPEC for invalid content) with every
 * problem found added to d, and *out = NULL. */
ms_status ms_spec_load(ms_spec **out, const char *path, ms_diag *d);
/* The same from text in memory (len bytes, no NUL needed). `filename` is
 * used in diagnostics only (may be NULL: "<spec>"). The text is copied. */
ms_status ms_spec_load_string(ms_spec **out, const char *text, size_t len,
                              const char *filename, ms_diag *d);
void ms_spec_free(ms_spec *s);

/* The spec's "name" ("" when none), its full text and the xxh64 (seed 0) of
 * that text, and its default seed ("seed" key; 0 when none). */
const char *ms_spec_name(const ms_spec *s);
const char *ms_spec_text(const ms_spec *s, size_t *len);
uint64_t ms_spec_hash(const ms_spec *s);
uint64_t ms_spec_seed(const ms_spec *s);

/* Tables in spec order. Index helpers return SIZE_MAX when not found. */
size_t ms_spec_n_tables(const ms_spec *s);
size_t ms_spec_table_find(const ms_spec *s, const char *name);
/* The output schema of table i (hidden fields left out). */
const ms_table_schema *ms_spec_table_schema(const ms_spec *s, size_t i);
/* Parent table index, or SIZE_MAX for a root table. */
size_t ms_spec_table_parent(const ms_spec *s, size_t i);
/* Declared "rows" of a root table (0 for child tables). */
uint64_t ms_spec_table_rows(const ms_spec *s, size_t i);
/* Whether the table has a cohort "filter". */
int ms_spec_table_has_filter(const ms_spec *s, size_t i);

/* Progress: called from the generating thread with rows of root tables done
 * so far and the total expected (root tables only). */
typedef void (*ms_progress_fn)(void *ctx, uint64_t done, uint64_t total);

typedef struct {
  int has_seed;        /* 1: use `seed` instead of the spec's */
  uint64_t seed;
  uint64_t rows;       /* >0: rows of every root table (overrides "rows") */
  int threads;         /* 0: OpenMP default */
  size_t chunk_rows;   /* root rows per chunk; 0: up to 32768, spread evenly */
  uint32_t shard_index; /* 0-based k of N; with shard_count 0 or 1: no sharding */
  uint32_t shard_count;
  const char *const *tables; /* NULL: all tables; else names to write */
  size_t n_tables;
  ms_progress_fn progress;
  void *progress_ctx;
} ms_generate_params;

void ms_generate_params_init(ms_generate_params *o);

typedef struct {
  const char *name;     /* borrowed from the spec */
  int written;          /* table was handed to the sink */
  uint64_t rows;        /* rows written (in this shard) */
  uint64_t total_rows;  /* rows of the whole (unsharded) table; 0 for child
                           tables of a sharded run (not computed) */
  uint64_t candidates;  /* filtered root tables: candidates drawn to fill the
                           rows written (up to the shard end); else = rows */
} ms_table_report;

typedef struct {
  uint64_t seed;        /* the seed used */
  size_t n_tables;
  ms_table_report *tables; /* spec order */
  double seconds;       /* wall time of ms_generate */
} ms_generate_report;

void ms_generate_report_deinit(ms_generate_report *r);

/* Generates every table (or the subset in opts) and hands them to sink.
 * report may be NULL; when given it is filled in (also on failure, with what
 * was done; zeroed when the options are rejected) and must be released with
 * ms_generate_report_deinit. Errors met
 * while generating (an expression failing for some row, a filter that finds
 * too few candidates within max_candidates, the sink failing) stop the run
 * and are added to d with a "table/row" location. */
ms_status ms_generate(const ms_spec *spec, const ms_generate_params *opts, const ms_sink *sink,
                      ms_generate_report *report, ms_diag *d);

#ifdef __cplusplus
}
#endif
#endif
