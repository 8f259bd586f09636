#!/usr/bin/env bash
# medsynth phantom leaves nothing half-written (docs/reliability.md): a full
# disk under the HDF5 file, the --grid sheet or the --nifti folder is exit 74
# with the file and the cause named, and none of the run's outputs is left
# (the HDF5 file included when only the sheet or the folder did not fit);
# SIGINT is exit 130 with nothing left. Usage: phantom_outputs.sh <medsynth> <source-dir>
source "$(dirname "$0")/lib/outputs.sh" "$@"
run=("$MS" phantom --kind chest --size 128 --lesions 1:2)

small_fs "$T/full" 1m
disk_full "$T/full/out.h5" "$T/full" -- "${run[@]}" -n 100 -o "$T/full/out.h5"
# The sheet and the NIfTI folder on a disk of their own, the HDF5 file
# elsewhere: it must not be left either.
small_fs "$T/tiny" 64k
mkdir "$T/ok"
disk_full "$T/tiny/sheet.png" "$T/tiny" "$T/ok" -- "${run[@]}" -n 16 -o "$T/ok/out.h5" --grid "$T/tiny/sheet.png"
disk_full "$T/tiny/nii/image_0000" "$T/tiny" "$T/ok" -- "${run[@]}" -n 8 -o "$T/ok/out.h5" --nifti "$T/tiny/nii"

mkdir "$T/sig"
interrupt INT "$T/sig" -- "${run[@]}" -n 5000 -o "$T/sig/out.h5" --png "$T/sig/png"
echo "phantom: disk full and SIGINT leave nothing behind"
