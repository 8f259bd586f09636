#!/usr/bin/env bash
# Runs the examples of docs/model-format.md as written: the shell block under
# "## Writing a model" (export, inspect, sample) and the h5py reader under
# "### Reading sampled images with h5py"; and examples/sample_images.c
# against the command.
# Usage: images_docs.sh <medsynth> <source-dir>
set -euo pipefail
MS="$1"
SRC="$2"
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT
mkdir "$T/bin"
ln -s "$(cd "$(dirname "$MS")" && pwd)/$(basename "$MS")" "$T/bin/medsynth"
ln -s "$SRC/models" "$T/models"
DOC="$SRC/docs/model-format.md"
awk '/^## Writing a model/{f=1} f&&/^```sh/{p=1;next} p&&/^```/{exit} p' "$DOC" > "$T/example.sh"
awk '/^### Reading sampled images with h5py/{f=1} f&&/^```python/{p=1;next} p&&/^```/{exit} p' "$DOC" > "$T/read.py"
[ -s "$T/example.sh" ] && [ -s "$T/read.py" ] || { echo "FAIL: doc examples not found"; exit 1; }
cd "$T"
PATH="$T/bin:$PATH" bash -euo pipefail example.sh > example.out
grep -q "architecture: unet" example.out
/usr/bin/python3 read.py > read.out
grep -q "(4, 1, 32, 32) a.u. ddim" read.out

# examples/sample_images.c prints the ranges of the images that
# `medsynth images` writes for the same seed and steps.
BUILD="$(cd "$(dirname "$MS")" && pwd)"
"$BUILD/example_sample_images" "$SRC/tests/golden/nn/unet_eps.h5" 5 > ex.out
PATH="$T/bin:$PATH" medsynth images --model "$SRC/tests/golden/nn/unet_eps.h5" -n 4 --seed 42 --steps 5 -o ex.h5
/usr/bin/python3 - <<'PY'
import h5py
a = h5py.File("ex.h5", "r")["images/image"][...].reshape(4, -1)
lines = open("ex.out").read().split("\n")[:4]
for i, line in enumerate(lines):
    head, rng = line.split(": ")
    lo, _, hi, unit = rng.split()
    assert head == "image %d" % i and unit == "HU", line
    # float32 output vs the example's double arithmetic: last-digit differences only
    assert abs(float(lo) - a[i].min()) <= 0.1 and abs(float(hi) - a[i].max()) <= 0.1, (line, a[i].min(), a[i].max())
PY
echo ok
