#!/usr/bin/env bash
# medsynth records leaves nothing half-written (docs/reliability.md): a full
# disk while writing HDF5, CSV, JSON Lines or a FHIR export is exit 74 with
# the file and the cause named; SIGINT during a run is exit 130, SIGTERM
# during a FHIR export 143; none leaves the output or a temporary file. Usage: records_outputs.sh <medsynth> <source-dir>
source "$(dirname "$0")/lib/outputs.sh" "$@"
spec=$SRC/docs/specs/outpatient.json

# Small chunks, and no compression, fill the disk soon.
small_fs "$T/full" 1m
for ext in h5 csv jsonl; do
  disk_full "$T/full/out.$ext" "$T/full" -- "$MS" records --spec "$spec" -n 300000 --chunk-rows 4096 \
    --compression 0 -o "$T/full/out.$ext" -q
done
# FHIR exports: a folder written as a whole (bundles: many small files;
# NDJSON: a few large ones)
for fmt in fhir fhir-ndjson; do
  disk_full "$T/full/out.fhir" "$T/full" -- "$MS" records --spec "$spec" -n 300000 --format $fmt \
    -o "$T/full/out.fhir" -q
done

mkdir "$T/sig"
interrupt INT "$T/sig" -- "$MS" records --spec "$spec" -n 5000000 -o "$T/sig/out.h5" -q
interrupt TERM "$T/sig" -- "$MS" records --spec "$spec" -n 5000000 --format fhir -o "$T/sig/out.fhir" -q
echo "records: disk full and signals leave nothing behind (HDF5, CSV, JSON Lines, FHIR)"
