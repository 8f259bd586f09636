/* medsynth records: generate record tables from a spec (docs/cli.md,
 * docs/spec.md) into HDF5, CSV or JSON Lines.
 *
 * The spec is loaded and validated first (every problem printed at once,
 * exit 65); the output is written through the atomic writer and the --png,
 * --nifti and --grid outputs are staged (cli/outputs.c), so a failed or
 * interrupted run (SIGINT/SIGTERM, polled once per chunk) leaves no file
 * behind. Provenance (version, spec text and hash, seed, rows,
 * candidates, and the invocation: the options that change values, never
 * paths or thread counts) goes into root attributes. A short report goes to
 * stderr. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "medsynth/dicom.h"
#include "medsynth/fhir.h"
#include "medsynth/images.h"
#include "medsynth/io.h"
#include "medsynth/records.h"
#include "medsynth/version.h"

static const char *k_usage =
    "usage: medsynth records --spec SPEC -o OUT [options]\n"
    "Generate the tables of SPEC (docs/spec.md) into OUT (.h5, .csv, .jsonl, or - for stdout),\n"
    "or into a directory of FHIR R4 resources (--format fhir or fhir-ndjson; docs/fhir.md).\n"
    "  --spec S          spec file (JSON)\n"
    "  -o, --output OUT  output file; '-' writes one table as CSV/JSONL to stdout\n"
    "  -n, --rows N      rows of every root table (default: the spec's \"rows\")\n"
    "  --seed K          seed (default: the spec's \"seed\", else 0)\n"
    "  --table T         write only table T (repeatable; its ancestors are still generated)\n"
    "  --threads J       worker threads (default: all cores); output does not depend on J\n"
    "  --chunk-rows R    root rows per chunk (default: up to 32768, spread evenly);\n"
    "                    output does not depend on R\n"
    "  --shard k/N       write only shard k (1..N) of the root rows, with their children\n"
    "  --format F        hdf5, csv or jsonl (default: from the output name); fhir: directory\n"
    "                    OUT of one transaction Bundle per patient; fhir-ndjson: directory OUT\n"
    "                    of one NDJSON file per resource type (Bulk Data export)\n"
    "  --compression L   HDF5 deflate level 0..9 (default 1; docs/performance.md)\n"
    "  --no-timestamp    do not record the creation time (byte-identical reruns)\n"
    "  --force           replace an existing output\n"
    "image fields (docs/multimodal.md; HDF5 output only):\n"
    "  --no-images       skip the spec's image fields (tables only)\n"
    "  --png DIR         also write each image (and mask) as PNG into DIR\n"
    "  --nifti DIR       also write each image (and mask) as NIfTI-1 .nii.gz into DIR\n"
    "  --dicom DIR       also write each image as DICOM (DIR/<field>/<row>/IMG*.dcm, SEG.dcm;\n"
    "                    docs/dicom.md); DIR appears only when the run succeeds\n"
    "  --grid PNG        contact sheet of the first images with mask contours\n"
    "  --grid-max K      images on the sheet (default 16)\n"
    "  -q, --quiet       no report on stderr\n"
    "  -h, --help        this help\n"
    "exit codes: 0 ok, 64 usage, 65 invalid spec or generation error, 66 spec missing,\n"
    "            70 internal error, 73 output exists (use --force) or cannot be created, 74 I/O error,\n"
    "            130/143 interrupted by SIGINT/SIGTERM (nothing left behind)\n";

enum { O_SPEC = 256, O_SEED, O_TABLE, O_THREADS, O_CHUNK, O_SHARD, O_FORMAT, O_COMP, O_NOTS, O_FORCE,
       O_NOIMG, O_PNG, O_NIFTI, O_GRID, O_GRIDMAX, O_DICOM };

static const struct option k_opts[] = {
    {"spec", 1, 0, O_SPEC},       {"output", 1, 0, 'o'},     {"rows", 1, 0, 'n'},
    {"seed", 1, 0, O_SEED},       {"table", 1, 0, O_TABLE},  {"threads", 1, 0, O_THREADS},
    {"chunk-rows", 1, 0, O_CHUNK}, {"shard", 1, 0, O_SHARD}, {"format", 1, 0, O_FORMAT},
    {"compression", 1, 0, O_COMP}, {"no-timestamp", 0, 0, O_NOTS}, {"force", 0, 0, O_FORCE},
    {"no-images", 0, 0, O_NOIMG}, {"png", 1, 0, O_PNG},     {"nifti", 1, 0, O_NIFTI}, {"dicom", 1, 0, O_DICOM},
    {"grid", 1, 0, O_GRID},       {"grid-max", 1, 0, O_GRIDMAX},
    {"quiet", 0, 0, 'q'},         {"help", 0, 0, 'h'},       {0, 0, 0, 0}};

static void on_progress(void *ctx, uint64_t done, uint64_t total) {
  ms_cli_progress *p = ctx;
  p->total = total;
  ms_cli_progress_update(p, done);
}

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "medsynth: records: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n(see 'medsynth records --help')\n");
  return MS_EXIT_USAGE;
}

/* The "invocation" provenance attribute (cli.h, ms_cli_provenance): the
 * spec's hash, the effective seed, the rows of every root table, the tables
 * written (spec order), the shard, and whether image fields were skipped. */
static char *invocation_of(const ms_spec *spec, const ms_generate_params *go,
                           const ms_generate_report *rep, const char *const *sel, size_t n_sel,
                           int with_images) {
  size_t nt = ms_spec_n_tables(spec), n_roots = 0, n_written = 0;
  const char **roots = malloc((nt ? nt : 1) * sizeof *roots);
  const char **written = malloc((nt ? nt : 1) * sizeof *written);
  uint64_t *rows = malloc((nt ? nt : 1) * sizeof *rows);
  char *out = NULL;
  if (roots && written && rows) {
    for (size_t i = 0; i < nt; i++) {
      const char *name = ms_spec_table_schema(spec, i)->name;
      if (ms_spec_table_parent(spec, i) == SIZE_MAX) {
        roots[n_roots] = name;
        rows[n_roots++] = go->rows ? go->rows : ms_spec_table_rows(spec, i);
      }
      int chosen = sel == NULL;
      for (size_t k = 0; k < n_sel && !chosen; k++) chosen = !strcmp(sel[k], name);
      if (chosen) written[n_written++] = name;
    }
    char shard[48];
    snprintf(shard, sizeof shard, "%u/%u", go->shard_count > 1 ? go->shard_index + 1 : 1,
             go->shard_count > 1 ? go->shard_count : 1);
    ms_cli_pv pv[] = {
        {.option = "spec", .kind = MS_CLI_PV_HASH, .u = ms_spec_hash(spec)},
        {.option = "seed", .kind = MS_CLI_PV_UINT, .u = rep->seed},
        {.option = "rows", .kind = MS_CLI_PV_COUNTS, .list = roots, .counts = rows, .n = n_roots},
        {.option = "table", .kind = MS_CLI_PV_STRS, .list = written, .n = n_written},
        {.option = "shard", .kind = MS_CLI_PV_STR, .s = shard},
        {.option = "no-images", .kind = MS_CLI_PV_BOOL, .i = ms_spec_n_images(spec) > 0 && !with_images},
    };
    out = ms_cli_provenance("records", pv, sizeof pv / sizeof *pv);
  }
  free(roots);
  free(written);
  free(rows);
  return out;
}

static int report_of(void *ctx, size_t field, uint64_t row, const char **text, const char **impression) {
  ms_images *const *im = ctx;
  return ms_images_report(*im, field, row, text, impression);
}

/* --format fhir / fhir-ndjson: every table through the FHIR writer into the
 * directory `out` (image fields are not generated; docs/fhir.md). */
static int run_fhir(ms_spec *spec, ms_generate_params *go, ms_fhir_layout layout, const char *out,
                    const ms_writer_params *wo, int quiet, ms_diag *d) {
  ms_fhir_params fo;
  ms_fhir_params_init(&fo);
  fo.layout = layout;
  fo.force = wo->force;
  fo.seed = go->has_seed ? go->seed : ms_spec_seed(spec);
  fo.threads = go->threads;
  fo.no_timestamp = wo->no_timestamp;
  fo.cancel = ms_cli_cancel_flag();
  /* the invocation as an HDF5 output would record it: every table, image
   * fields used (their reports) */
  ms_generate_report seeded = {.seed = fo.seed};
  char *cmdline = invocation_of(spec, go, &seeded, NULL, 0, 1);
  if (!cmdline) {
    ms_diag_add(d, MS_ERR_NOMEM, NULL, 0, 0, NULL, "out of memory");
    ms_cli_print_diag(d);
    return ms_cli_exit_code(MS_ERR_NOMEM);
  }
  fo.invocation = cmdline;
  ms_images *reports = NULL; /* created once the writer is open */
  fo.report = report_of;
  fo.report_ctx = &reports;
  ms_fhir_writer *fw = NULL;
  ms_status st = ms_fhir_writer_open(&fw, out, spec, &fo, d);
  if (st != MS_OK) {
    free(cmdline);
    ms_cli_print_diag(d);
    return ms_cli_exit_code(st) == MS_EXIT_IOERR ? MS_EXIT_CANTCREAT : ms_cli_exit_code(st);
  }
  ms_cli_progress prog;
  ms_cli_progress_init(&prog, "records", 0);
  if (!quiet) {
    go->progress = on_progress;
    go->progress_ctx = &prog;
  }
  ms_sink sink = ms_fhir_writer_sink(fw);
  if (ms_spec_n_images(spec) > 0) {
    /* phantom image fields are rendered (not written) for their radiology
     * reports: DiagnosticReport beside each ImagingStudy */
    ms_images_params io;
    ms_images_params_init(&io);
    io.seed = fo.seed;
    io.threads = go->threads;
    st = ms_images_new_reports(&reports, spec, sink, &io, d);
    if (st != MS_OK) {
      ms_fhir_writer_abort(fw);
      free(cmdline);
      ms_cli_print_diag(d);
      return ms_cli_exit_code(st);
    }
    sink = ms_images_sink(reports);
  }
  ms_generate_report rep;
  st = ms_generate(spec, go, &sink, &rep, d);
  if (!quiet && prog.enabled) ms_cli_progress_done(&prog);
  uint64_t nres = ms_fhir_writer_resources(fw), nb = ms_fhir_writer_bundles(fw);
  if (st == MS_OK)
    st = ms_fhir_writer_commit(fw, d);
  else
    ms_fhir_writer_abort(fw);
  ms_images_free(reports);
  free(cmdline);
  if (st != MS_OK) {
    ms_cli_print_diag(d);
    ms_generate_report_deinit(&rep);
    return ms_cli_exit_code(st);
  }
  if (!quiet) {
    uint64_t patients = 0;
    for (size_t i = 0; i < rep.n_tables; i++)
      if (ms_spec_table_parent(spec, i) == SIZE_MAX) patients += rep.tables[i].rows;
    double secs = rep.seconds > 0 ? rep.seconds : 1e-9;
    if (layout == MS_FHIR_BUNDLES)
      fprintf(stderr, "medsynth: %" PRIu64 " bundles, %" PRIu64 " resources in %.3f s (%.0f patients/s), seed %" PRIu64 " -> %s/\n",
              nb, nres, rep.seconds, (double)patients / secs, rep.seed, out);
    else
      fprintf(stderr, "medsynth: %" PRIu64 " resources (NDJSON) in %.3f s (%.0f patients/s), seed %" PRIu64 " -> %s/\n",
              nres, rep.seconds, (double)patients / secs, rep.seed, out);
  }
  ms_generate_report_deinit(&rep);
  return MS_EXIT_OK;
}

static int cmd_records(int argc, char **argv) {
  const char *spec_path = NULL, *out = NULL, *format = NULL, *dicom_dir = NULL;
  const char *tables[64];
  size_t n_tables = 0;
  ms_generate_params go;
  ms_generate_params_init(&go);
  ms_writer_params wo;
  ms_writer_params_init(&wo);
  wo.compression = 1; /* fastest deflate level; docs/performance.md, Records */
  int quiet = 0, no_images = 0;
  ms_images_params io;
  ms_images_params_init(&io);
  int64_t iv;
  uint64_t uv;
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":o:n:qh", k_opts, NULL)) != -1) {
    switch (c) {
      case O_SPEC: spec_path = optarg; break;
      case 'o': out = optarg; break;
      case 'n':
        if (ms_cli_parse_i64(optarg, &iv) || iv <= 0) return usage_error("-n must be a positive integer, got '%s'", optarg);
        go.rows = (uint64_t)iv;
        break;
      case O_SEED:
        if (ms_cli_parse_u64(optarg, &uv)) return usage_error("--seed must be a non-negative integer, got '%s'", optarg);
        go.has_seed = 1;
        go.seed = uv;
        break;
      case O_TABLE:
        if (n_tables >= 64) return usage_error("at most 64 --table options%s", "");
        tables[n_tables++] = optarg;
        break;
      case O_THREADS:
        if (ms_cli_parse_i64(optarg, &iv) || iv < 1 || iv > 256) return usage_error("--threads must be 1..256, got '%s'", optarg);
        go.threads = (int)iv;
        break;
      case O_CHUNK:
        if (ms_cli_parse_i64(optarg, &iv) || iv < 1 || iv > (1 << 24)) return usage_error("--chunk-rows must be 1..16777216, got '%s'", optarg);
        go.chunk_rows = (size_t)iv;
        break;
      case O_SHARD: {
        unsigned k = 0, n = 0;
        char tail;
        if (sscanf(optarg, "%u/%u%c", &k, &n, &tail) != 2 || n < 1 || k < 1 || k > n)
          return usage_error("--shard must be k/N with 1 <= k <= N, got '%s'", optarg);
        go.shard_index = k - 1;
        go.shard_count = n;
        break;
      }
      case O_FORMAT: format = optarg; break;
      case O_COMP:
        if (ms_cli_parse_i64(optarg, &iv) || iv < 0 || iv > 9) return usage_error("--compression must be 0..9, got '%s'", optarg);
        wo.compression = (int)iv;
        break;
      case O_NOTS: wo.no_timestamp = 1; break;
      case O_FORCE: wo.force = 1; break;
      case O_NOIMG: no_images = 1; break;
      case O_PNG: io.png_dir = optarg; break;
      case O_NIFTI: io.nifti_dir = optarg; break;
      case O_DICOM: dicom_dir = optarg; break;
      case O_GRID: io.grid_path = optarg; break;
      case O_GRIDMAX:
        if (ms_cli_parse_i64(optarg, &iv) || iv < 1 || iv > 1024) return usage_error("--grid-max must be 1..1024, got '%s'", optarg);
        io.grid_max = (size_t)iv;
        break;
      case 'q': quiet = 1; break;
      case 'h': fputs(k_usage, stdout); return MS_EXIT_OK;
      case ':': return usage_error("option '%s' needs a value", argv[optind - 1]);
      default: return usage_error("unknown option '%s'", argv[optind - 1]);
    }
  }
  if (optind < argc) return usage_error("unexpected argument '%s'", argv[optind]);
  if (!spec_path) return usage_error("--spec is required%s", "");
  if (!out) return usage_error("-o is required (a file, or - for stdout)%s", "");
  ms_fhir_layout fhir = format ? ms_fhir_layout_from_name(format) : MS_FHIR_LAYOUT_COUNT;
  if (fhir != MS_FHIR_LAYOUT_COUNT) {
    if (!strcmp(out, "-")) return usage_error("--format %s writes a directory, not stdout", format);
    if (n_tables) return usage_error("--format %s writes every table (each patient's resources together); drop --table", format);
    if (io.png_dir || io.nifti_dir || io.grid_path || dicom_dir)
      return usage_error("--png/--nifti/--grid/--dicom go with HDF5 output, not --format %s", format);
    wo.format = MS_FMT_JSONL; /* unused */
  } else if (format) {
    wo.format = ms_format_from_name(format);
    if (wo.format == MS_FMT_COUNT)
      return usage_error("unknown --format '%s' (hdf5, csv, jsonl, fhir, fhir-ndjson)", format);
  } else if (strcmp(out, "-")) {
    wo.format = ms_format_from_path(out);
    if (wo.format == MS_FMT_COUNT)
      return usage_error("cannot tell the format of '%s' (use .h5, .csv, .jsonl or --format)", out);
  } else {
    wo.format = MS_FMT_CSV;
  }
  if (!strcmp(out, "-") && wo.format == MS_FMT_HDF5)
    return usage_error("HDF5 cannot be written to stdout%s", "");
  wo.threads = go.threads;
  ms_cli_catch_signals();
  wo.cancel = ms_cli_cancel_flag();
  go.tables = n_tables ? tables : NULL;
  go.n_tables = n_tables;

  ms_diag d;
  ms_diag_init(&d);
  ms_spec *spec = NULL;
  ms_status st = ms_spec_load(&spec, spec_path, &d);
  if (st != MS_OK) {
    ms_cli_print_diag(&d);
    ms_diag_deinit(&d);
    return ms_cli_exit_code(st);
  }
  if (fhir != MS_FHIR_LAYOUT_COUNT) {
    int rc = run_fhir(spec, &go, fhir, out, &wo, quiet, &d);
    ms_spec_free(spec);
    ms_diag_deinit(&d);
    return rc;
  }
  for (size_t i = 0; i < n_tables; i++)
    if (ms_spec_table_find(spec, tables[i]) == SIZE_MAX) {
      ms_cli_error("records", "--table: spec has no table \"%s\"", tables[i]);
      ms_spec_free(spec);
      ms_diag_deinit(&d);
      return MS_EXIT_USAGE;
    }
  int with_images = ms_spec_n_images(spec) > 0 && !no_images;
  if ((io.png_dir || io.nifti_dir || io.grid_path || dicom_dir) && !with_images) {
    ms_cli_error("records", "--png/--nifti/--grid/--dicom need image fields (%s)",
                 no_images ? "--no-images was given" : "the spec has none");
    ms_spec_free(spec);
    ms_diag_deinit(&d);
    return MS_EXIT_USAGE;
  }
  if (with_images && wo.format != MS_FMT_HDF5) {
    ms_cli_error("records", "the spec has image fields, which need an HDF5 output (.h5); "
                 "use --no-images to write its tables as %s", ms_format_name(wo.format));
    ms_spec_free(spec);
    ms_diag_deinit(&d);
    return MS_EXIT_USAGE;
  }
  if (!strcmp(out, "-")) {
    size_t nw = n_tables ? n_tables : ms_spec_n_tables(spec);
    if (nw != 1) {
      ms_cli_error("records", "stdout takes one table; choose it with --table (spec has %zu tables)",
                   ms_spec_n_tables(spec));
      ms_spec_free(spec);
      ms_diag_deinit(&d);
      return MS_EXIT_USAGE;
    }
  }
  ms_writer *w = NULL;
  st = ms_writer_open(&w, out, &wo, &d);
  if (st != MS_OK) {
    ms_cli_print_diag(&d);
    ms_spec_free(spec);
    ms_diag_deinit(&d);
    return ms_cli_exit_code(st) == MS_EXIT_IOERR ? MS_EXIT_CANTCREAT : ms_cli_exit_code(st);
  }
  /* Image files and sheets are staged next to their targets. */
  ms_cli_outputs outs = {0};
  if ((io.png_dir && (st = ms_cli_outputs_add(&outs, io.png_dir, 0, &io.png_dir, &d))) ||
      (io.nifti_dir && (st = ms_cli_outputs_add(&outs, io.nifti_dir, 0, &io.nifti_dir, &d))) ||
      (io.grid_path && (st = ms_cli_outputs_add(&outs, io.grid_path, 1, &io.grid_path, &d)))) {
    ms_cli_outputs_abort(&outs);
    ms_cli_print_diag(&d);
    ms_writer_abort(w);
    ms_spec_free(spec);
    ms_diag_deinit(&d);
    return ms_cli_exit_code(st) == MS_EXIT_IOERR ? MS_EXIT_CANTCREAT : ms_cli_exit_code(st);
  }
  ms_cli_progress prog;
  ms_cli_progress_init(&prog, "records", 0);
  if (!quiet) {
    go.progress = on_progress;
    go.progress_ctx = &prog;
  }
  ms_sink sink = ms_writer_sink(w);
  ms_images *images = NULL;
  ms_dicom_dir *dd = NULL;
  if (dicom_dir) {
    st = ms_dicom_dir_open(&dd, dicom_dir, wo.force, &d);
    if (st != MS_OK) {
      ms_cli_outputs_abort(&outs);
      ms_cli_print_diag(&d);
      ms_writer_abort(w);
      ms_dicom_dir_abort(dd);
      ms_spec_free(spec);
      ms_diag_deinit(&d);
      return ms_cli_exit_code(st) == MS_EXIT_IOERR ? MS_EXIT_CANTCREAT : ms_cli_exit_code(st);
    }
    io.dicom_dir = ms_dicom_dir_path(dd);
  }
  if (with_images) {
    io.seed = go.has_seed ? go.seed : ms_spec_seed(spec);
    io.threads = go.threads;
    st = ms_images_new(&images, spec, w, &io, &d);
    if (st != MS_OK) {
      ms_cli_outputs_name_diag(&outs, &d);
      ms_cli_outputs_abort(&outs);
      ms_dicom_dir_abort(dd);
      ms_cli_print_diag(&d);
      ms_writer_abort(w);
      ms_spec_free(spec);
      ms_diag_deinit(&d);
      return ms_cli_exit_code(st) == MS_EXIT_IOERR ? MS_EXIT_CANTCREAT : ms_cli_exit_code(st);
    }
    sink = ms_images_sink(images);
  }
  ms_generate_report rep;
  st = ms_generate(spec, &go, &sink, &rep, &d);
  if (st == MS_OK && images) st = ms_images_finish(images, &d);
  if (!quiet && prog.enabled) ms_cli_progress_done(&prog);
  if (st == MS_OK) {
    size_t tl;
    const char *text = ms_spec_text(spec, &tl);
    char *invocation = invocation_of(spec, &go, &rep, n_tables ? tables : NULL, n_tables, with_images);
    ms_provenance pv = {.command = "records", .seed = rep.seed, .invocation = invocation, .spec = text,
                        .spec_name = ms_spec_name(spec), .spec_hash = ms_spec_hash(spec)};
    st = ms_writer_set_provenance(w, &pv);
    if (!st && go.shard_count > 1) {
      char sh[48];
      snprintf(sh, sizeof sh, "%u/%u", go.shard_index + 1, go.shard_count);
      st = ms_writer_set_attr_string(w, "shard", sh);
    }
    for (size_t i = 0; i < rep.n_tables && !st; i++) {
      if (!rep.tables[i].written) continue;
      char name[256];
      snprintf(name, sizeof name, "rows_%s", rep.tables[i].name);
      st = ms_writer_set_attr_int(w, name, (int64_t)rep.tables[i].rows);
      if (!st && ms_spec_table_has_filter(spec, i)) {
        snprintf(name, sizeof name, "candidates_%s", rep.tables[i].name);
        st = ms_writer_set_attr_int(w, name, (int64_t)rep.tables[i].candidates);
      }
    }
    free(invocation);
    if (st) ms_diag_add(&d, st, NULL, 0, 0, NULL, "cannot record provenance attributes");
  }
  if (st == MS_OK) {
    st = ms_writer_commit(w, &d);
  } else {
    ms_writer_abort(w);
  }
  ms_cli_outputs_name_diag(&outs, &d);
  if (st == MS_OK)
    st = ms_cli_outputs_commit(&outs, &d);
  else
    ms_cli_outputs_abort(&outs);
  if (dd) {
    if (st == MS_OK) {
      st = ms_dicom_dir_commit(dd, &d);
    } else {
      ms_dicom_dir_abort(dd);
    }
    dd = NULL;
  }
  if (st != MS_OK) {
    ms_images_free(images);
    ms_cli_print_diag(&d);
    ms_generate_report_deinit(&rep);
    ms_spec_free(spec);
    ms_diag_deinit(&d);
    return ms_cli_exit_code(st);
  }
  if (!quiet) {
    uint64_t total = 0;
    for (size_t i = 0; i < rep.n_tables; i++) {
      if (!rep.tables[i].written) continue;
      total += rep.tables[i].rows;
      if (ms_spec_table_has_filter(spec, i))
        fprintf(stderr, "medsynth: %s: %" PRIu64 " rows (%" PRIu64 " candidates drawn)\n",
                rep.tables[i].name, rep.tables[i].rows, rep.tables[i].candidates);
      else
        fprintf(stderr, "medsynth: %s: %" PRIu64 " rows\n", rep.tables[i].name, rep.tables[i].rows);
    }
    double secs = rep.seconds > 0 ? rep.seconds : 1e-9;
    for (size_t i = 0; images && i < ms_spec_n_images(spec); i++)
      fprintf(stderr, "medsynth: /images/%s: %" PRIu64 " images\n", ms_spec_image_name(spec, i),
              ms_images_count(images, i));
    fprintf(stderr, "medsynth: %" PRIu64 " rows in %.3f s (%.0f rows/s), seed %" PRIu64 " -> %s\n",
            total, rep.seconds, (double)total / secs, rep.seed, out);
  }
  ms_images_free(images);
  ms_generate_report_deinit(&rep);
  ms_spec_free(spec);
  ms_diag_deinit(&d);
  return MS_EXIT_OK;
}

MS_CLI_COMMAND(records, "generate record tables from a spec (HDF5, CSV, JSONL, FHIR R4)", cmd_records);
