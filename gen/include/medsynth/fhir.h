/* FHIR R4 output of generated records (docs/fhir.md): one transaction
 * Bundle per patient, or a Bulk Data export (one NDJSON file per resource
 * type), both written into a directory that appears only on success.
 *
 * Usage:
 *   ms_fhir_params o; ms_fhir_params_init(&o);
 *   o.layout = MS_FHIR_BUNDLES;
 *   o.seed = seed;                       // the seed ms_generate uses
 *   ms_fhir_writer *w;
 *   if (ms_fhir_writer_open(&w, "out_fhir", spec, &o, &diag) != MS_OK) ...;
 *   ms_sink sink = ms_fhir_writer_sink(w);
 *   st = ms_generate(spec, &gopts, &sink, &rep, &diag);   // all tables
 *   if (st == MS_OK) st = ms_fhir_writer_commit(w, &diag); // renames, frees w
 *   else ms_fhir_writer_abort(w);                          // removes, frees w
 *
 * The mapping from tables and fields to resources is the spec's "fhir"
 * sections (validated when the spec is loaded), or the default mapping when
 * it has none. Resource ids and bundle fullUrls are UUIDs derived from
 * (seed, table[/field], row): the same spec and seed give the same bytes
 * for any thread count. Every reference (subject, encounter) points at a
 * resource in the same bundle (bundles: "urn:uuid:...") or the same export
 * (NDJSON: "Patient/<id>").
 *
 * The sink needs every table of the spec (no table subset) and the chunk
 * order of ms_generate (a root chunk followed by the chunks of its rows'
 * descendants). Memory is bounded by one batch of chunks, not by the
 * number of patients.
 *
 * Ownership: open creates the writer; commit and abort free it. The spec is
 * borrowed and must outlive the writer. */
#ifndef MEDSYNTH_FHIR_H
#define MEDSYNTH_FHIR_H

#include <stdint.h>

#include "medsynth/records.h"
#include "medsynth/status.h"
#include "medsynth/table.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { MS_FHIR_BUNDLES, MS_FHIR_NDJSON, MS_FHIR_LAYOUT_COUNT } ms_fhir_layout;

/* "fhir" and "fhir-ndjson". */
const char *ms_fhir_layout_name(ms_fhir_layout l);
ms_fhir_layout ms_fhir_layout_from_name(const char *name);

/* Defaults: bundles, no force, seed 0, threads 0 (the library's default,
 * omp_get_max_threads()), timestamp on, no cancel flag. */
typedef struct {
  ms_fhir_layout layout;
  int force;          /* replace an existing directory */
  uint64_t seed;      /* generation seed (ids derive from it) */
  int threads;        /* formatting threads; output does not depend on it */
  int no_timestamp;   /* omit the export time from manifest.json */
  const char *invocation; /* JSON object recorded in manifest.json (may be NULL) */
  const ms_cancel_flag *cancel; /* polled once per chunk (medsynth/status.h); NULL: never */
  /* Radiology reports of image fields (may be NULL): called while a batch is
   * written, for image field `field` of the spec and root row `row`; returns
   * 1 with the report text and impression (borrowed for the call) to write a
   * DiagnosticReport beside the ImagingStudy, 0 for none. ms_images_report
   * of an ms_images_new_reports object fits (medsynth/images.h). */
  int (*report)(void *ctx, size_t field, uint64_t row, const char **text, const char **impression);
  void *report_ctx;
} ms_fhir_params;

void ms_fhir_params_init(ms_fhir_params *o);

typedef struct ms_fhir_writer ms_fhir_writer;

/* d (may be NULL) must outlive the writer: errors raised inside the sink
 * callbacks are added to it. */
ms_status ms_fhir_writer_open(ms_fhir_writer **out, const char *dir, const ms_spec *spec,
                              const ms_fhir_params *opts, ms_diag *d);
ms_sink ms_fhir_writer_sink(ms_fhir_writer *w);
/* Resources written so far (all types) and bundles (0 for NDJSON). */
uint64_t ms_fhir_writer_resources(const ms_fhir_writer *w);
uint64_t ms_fhir_writer_bundles(const ms_fhir_writer *w);
/* Writes manifest.json and renames the directory into place. Frees w. */
ms_status ms_fhir_writer_commit(ms_fhir_writer *w, ms_diag *d);
void ms_fhir_writer_abort(ms_fhir_writer *w);

#ifdef __cplusplus
}
#endif
#endif
