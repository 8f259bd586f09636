#!/usr/bin/env bash
# Live parity with PyTorch (models/reference/parity.py): fresh fixtures vs
# committed ones, the C parity tests against the fresh fixtures, and
# `medsynth images` end to end against PyTorch sampling with the same keyed
# noise. Needs Debian's python3-torch and python3-h5py.
# Usage: images_parity.sh <medsynth> <source-dir>
set -euo pipefail
MS="$1"
SRC="$2"
BUILD="$(cd "$(dirname "$MS")" && pwd)"
/usr/bin/python3 "$SRC/models/reference/parity.py" --build "$BUILD"
