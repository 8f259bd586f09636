#!/usr/bin/env bash
# medsynth records leaves nothing half-written (docs/reliability.md): a full
# disk while writing HDF5, CSV or JSON Lines is exit 74 with the file and the
# cause named; SIGINT during a run is exit 130; neither leaves the output or
# a temporary file. Usage: records_outputs.sh <medsynth> <source-dir>
source "$(dirname "$0")/lib/outputs.sh" "$@"
spec=$SRC/docs/specs/outpatient.json

# Small chunks, and no compression, fill the disk soon.
small_fs "$T/full" 1m
for ext in h5 csv jsonl; do
  disk_full "$T/full/out.$ext" "$T/full" -- "$MS" records --spec "$spec" -n 300000 --chunk-rows 4096 \
    --compression 0 -o "$T/full/out.$ext" -q
done

mkdir "$T/sig"
interrupt INT "$T/sig" -- "$MS" records --spec "$spec" -n 5000000 -o "$T/sig/out.h5" -q
echo "records: disk full and SIGINT leave nothing behind"
