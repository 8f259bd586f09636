#!/usr/bin/env bash
# `medsynth images` and `medsynth model inspect` on bad input: corrupt and
# mismatched models, steps > T, guidance on an unconditional model, class out
# of range, N <= 0, unwritable or existing output. Each must fail with a clear
# message, the documented exit code, and leave no output file behind.
# Usage: images_errors.sh <medsynth> <source-dir>
set -uo pipefail
MS="$1"
SRC="$2"
G="$SRC/tests/golden/nn"
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT
fails=0

# expect CODE PATTERN -- command...
expect() {
  local code="$1" pat="$2"
  shift 3
  "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  if [ "$rc" -ne "$code" ]; then
    echo "FAIL: exit $rc (want $code): $*"; cat "$T/err"; fails=$((fails + 1)); return
  fi
  if ! grep -q -- "$pat" "$T/err"; then
    echo "FAIL: stderr lacks '$pat': $*"; cat "$T/err"; fails=$((fails + 1)); return
  fi
  if grep -q "HDF5-DIAG" "$T/err"; then
    echo "FAIL: HDF5 error stack leaked: $*"; fails=$((fails + 1))
  fi
  if [ -e "$T/o.h5" ]; then
    echo "FAIL: output file left behind: $*"; rm -f "$T/o.h5"; fails=$((fails + 1))
  fi
  if ls "$T" | grep -q '\.tmp'; then
    echo "FAIL: temporary file left behind: $*"; fails=$((fails + 1))
  fi
}

U="$G/unet_eps.h5"   # unconditional, T = 1000
C="$G/unet_cond.h5"  # 3 classes, T = 100

expect 64 "steps requested but the model's schedule has T = 100" -- \
  "$MS" images --model "$C" -n 2 --steps 101 -o "$T/o.h5"
expect 64 "needs a class-conditional model" -- \
  "$MS" images --model "$U" -n 2 --steps 2 --guidance 3 -o "$T/o.h5"
expect 64 "class 3 out of range" -- \
  "$MS" images --model "$C" -n 2 --steps 2 --class 3 -o "$T/o.h5"
expect 64 "class -1 out of range" -- \
  "$MS" images --model "$C" -n 2 --steps 2 --class -1 -o "$T/o.h5"
expect 64 "a class was given but the model is unconditional" -- \
  "$MS" images --model "$U" -n 2 --steps 2 --class 0 -o "$T/o.h5"
expect 64 "number of images must be >= 1" -- \
  "$MS" images --model "$U" -n 0 -o "$T/o.h5"
expect 64 "number of images must be >= 1" -- \
  "$MS" images --model "$U" -n -3 -o "$T/o.h5"
expect 64 "unknown\|invalid value" -- \
  "$MS" images --model "$U" -n 1 --sampler euler -o "$T/o.h5"
expect 64 "eta applies to the ddim sampler only" -- \
  "$MS" images --model "$U" -n 1 --steps 2 --sampler dpmpp --eta 0.5 -o "$T/o.h5"
expect 64 "apply to diffusion (unet) models" -- \
  "$MS" images --model "$G/vae.h5" -n 1 --steps 3 -o "$T/o.h5"
expect 64 "this vae is unconditional" -- \
  "$MS" images --model "$G/vae.h5" -n 1 --class 0 -o "$T/o.h5"
expect 64 "class 3 is out of range: this vae has classes 0..2" -- \
  "$MS" images --model "$G/vae_prior.h5" -n 1 --class 3 -o "$T/o.h5"
expect 66 "cannot open model" -- \
  "$MS" images --model "$T/missing.h5" -n 1 -o "$T/o.h5"

# Corrupt models: truncated, not HDF5, altered weights.
head -c 100000 "$U" > "$T/trunc.h5"
expect 65 "truncated or corrupt" -- "$MS" images --model "$T/trunc.h5" -n 1 -o "$T/o.h5"
expect 65 "truncated or corrupt" -- "$MS" model inspect "$T/trunc.h5"
echo "not a model" > "$T/text.h5"
expect 65 "not a readable HDF5 model file" -- "$MS" images --model "$T/text.h5" -n 1 -o "$T/o.h5"
/usr/bin/python3 - "$U" "$T/bad.h5" "$T/shape.h5" <<'PY'
import shutil, sys, h5py, numpy as np
src, bad, shape = sys.argv[1:]
shutil.copy(src, bad)
with h5py.File(bad, "r+") as f:
    w = f["mid.res1.conv1.weight"]
    a = w[...]; a[0, 0, 0, 0] = np.nan; w[...] = a
shutil.copy(src, shape)
with h5py.File(shape, "r+") as f:
    del f["conv_out.weight"]
    f["conv_out.weight"] = np.zeros((2, 8, 3, 3), np.float32)
PY
expect 65 "mid.res1.conv1.weight: non-finite weight (NaN)" -- \
  "$MS" images --model "$T/bad.h5" -n 1 -o "$T/o.h5"
expect 65 "conv_out.weight: shape \[2, 8, 3, 3\] does not match the config (expected \[1, 8, 3, 3\])" -- \
  "$MS" images --model "$T/shape.h5" -n 1 -o "$T/o.h5"

# Output problems: unwritable folder, existing file without --force.
expect 73 "" -- "$MS" images --model "$U" -n 1 --steps 2 -o "$T/nodir/o.h5"
touch "$T/exists.h5"
"$MS" images --model "$U" -n 1 --steps 2 -o "$T/exists.h5" 2>"$T/err"
rc=$?
[ "$rc" -eq 73 ] || { echo "FAIL: existing output: exit $rc (want 73)"; fails=$((fails + 1)); }
[ -s "$T/exists.h5" ] && { echo "FAIL: existing output was overwritten"; fails=$((fails + 1)); }
"$MS" images --model "$U" -n 1 --steps 2 -o "$T/exists.h5" --force || { echo "FAIL: --force"; fails=$((fails + 1)); }

[ "$fails" -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "ok"
