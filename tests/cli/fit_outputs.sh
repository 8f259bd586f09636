#!/usr/bin/env bash
# medsynth fit leaves nothing half-written (docs/reliability.md): when the
# --sample-out table does not fit on the disk, exit 74 names it and the
# cause, and neither it nor the fitted spec is left; SIGTERM is exit 143 with
# neither left. Usage: fit_outputs.sh <medsynth> <source-dir>
source "$(dirname "$0")/lib/outputs.sh" "$@"
data=$SRC/tests/data/diabetes_train.csv

small_fs "$T/full" 1m
disk_full "$T/full/syn.csv" "$T/full" -- "$MS" fit --data "$data" -o "$T/full/fit.json" \
  --sample 100000 --sample-out "$T/full/syn.csv"

mkdir "$T/sig"
interrupt TERM "$T/sig" -- "$MS" fit --data "$data" -o "$T/sig/fit.json" \
  --sample 3000000 --sample-out "$T/sig/syn.csv"
echo "fit: disk full and SIGTERM leave nothing behind"
