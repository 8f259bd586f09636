#!/usr/bin/env bash
# Runs the examples of docs/model-format.md as written: the shell block under
# "## Writing a model" (export, inspect, sample) and the h5py reader under
# "### Reading sampled images with h5py".
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
echo ok
