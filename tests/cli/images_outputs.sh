#!/usr/bin/env bash
# medsynth images leaves nothing half-written (docs/reliability.md): a full
# disk is exit 74 with the file and the cause named; SIGTERM during sampling
# is exit 143; neither leaves the HDF5 file, the --png folder, the --grid
# sheet or a temporary file. Usage: images_outputs.sh <medsynth> <source-dir>
source "$(dirname "$0")/lib/outputs.sh" "$@"
model=$SRC/tests/golden/nn/unet_cond.h5

small_fs "$T/full" 256k
disk_full "$T/full/out.h5" "$T/full" -- "$MS" images --model "$model" -n 2000 --steps 1 -o "$T/full/out.h5"

mkdir "$T/sig"
interrupt TERM "$T/sig" -- "$MS" images --model "$model" -n 100000 --steps 2 -o "$T/sig/out.h5" \
  --png "$T/sig/png" --grid "$T/sig/grid.png"
echo "images: disk full and SIGTERM leave nothing behind"
