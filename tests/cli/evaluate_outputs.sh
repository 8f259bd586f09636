#!/usr/bin/env bash
# medsynth evaluate leaves nothing half-written (docs/reliability.md): a full
# disk under the report folder is exit 74 naming the file and the cause;
# SIGINT is exit 130; neither leaves the folder or a temporary one.
# Usage: evaluate_outputs.sh <medsynth> <source-dir>
source "$(dirname "$0")/lib/outputs.sh" "$@"
d=$SRC/tests/data
run=("$MS" evaluate --real "$d/breast_cancer_train.csv" --holdout "$d/breast_cancer_holdout.csv")

small_fs "$T/full" 64k
disk_full "$T/full/report/" "$T/full" -- "${run[@]}" --synthetic "$d/breast_cancer_train.csv" -o "$T/full/report"

# A synthetic table five times the training table keeps the run busy.
{ cat "$d/breast_cancer_train.csv"; for i in 1 2 3 4; do tail -n +2 "$d/breast_cancer_train.csv"; done; } >"$T/syn.csv"
mkdir "$T/sig"
interrupt INT "$T/sig" -- "${run[@]}" --synthetic "$T/syn.csv" -o "$T/sig/report"
echo "evaluate: disk full and SIGINT leave nothing behind"
