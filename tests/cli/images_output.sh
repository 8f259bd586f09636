#!/usr/bin/env bash
# `medsynth images` output: layout, dtype mapping, labels, provenance, PNGs
# and grid; image i identical for any --batch/--threads and when generated
# alone; `medsynth model inspect` output.
# Usage: images_output.sh <medsynth> <source-dir>
set -euo pipefail
MS="$1"
SRC="$2"
G="$SRC/tests/golden/nn"
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT

C="$G/unet_cond.h5"
"$MS" images --model "$C" -n 6 --seed 7 --steps 5 --guidance 2 --batch 4 --threads 1 \
  -o "$T/a.h5" --png "$T/png" --grid "$T/grid.png"
"$MS" images --model "$C" -n 6 --seed 7 --steps 5 --guidance 2 --batch 1 --threads 2 -o "$T/b.h5"
"$MS" images --model "$C" -n 6 --seed 7 --steps 5 --guidance 2 --batch 6 --dtype uint16 -o "$T/c.h5"
"$MS" images --model "$C" -n 6 --seed 8 --steps 5 --guidance 2 -o "$T/d.h5"
"$MS" images --model "$C" -n 3 --seed 7 --steps 5 --guidance 2 --class 1 --sampler dpmpp -o "$T/e.h5"
"$MS" images --model "$G/vae.h5" -n 3 --seed 1 -o "$T/v.h5"
"$MS" images --model "$G/vae_prior.h5" -n 8 --seed 1 --batch 3 -o "$T/p1.h5"
"$MS" images --model "$G/vae_prior.h5" -n 8 --seed 1 --batch 8 --threads 2 -o "$T/p2.h5"
"$MS" images --model "$G/vae_prior.h5" -n 8 --seed 1 --class 2 -o "$T/p3.h5"
[ -f "$T/png/image_00005.png" ] && [ -f "$T/grid.png" ]

/usr/bin/python3 - "$T" "$C" <<'PY'
import json, sys, h5py, numpy as np
T, model = sys.argv[1:]
a, b, c, d, e = (h5py.File("%s/%s.h5" % (T, k), "r") for k in "abcde")
A = a["images/image"][...]
assert A.shape == (6, 1, 8, 8) and A.dtype == np.float32, (A.shape, A.dtype)
assert np.array_equal(A, b["images/image"][...]), "batch/threads changed the bytes"
assert not np.array_equal(A, d["images/image"][...]), "seed has no effect"
lab = a["images/image_labels"][...]
assert lab.dtype == np.int32 and lab.min() >= 0 and lab.max() <= 2
assert np.array_equal(lab, b["images/image_labels"][...])
at = a["images/image"].attrs
assert at["sampler"] == "ddim" and at["steps"] == 5 and at["guidance"] == 2.0
assert len(at["model_xxh64"]) == 16
with h5py.File(model, "r") as m:
    assert at["model_xxh64"] == m.attrs["weights_xxh64"]
    cfg = json.loads(m.attrs["config"])
assert at["units"] == cfg["intensity"]["unit"]
assert a.attrs["generator"] == "medsynth images" and a.attrs["seed"] == 7
# uint16: physical = stored * slope + intercept, model range [-1, 1] -> [0, 65535].
C16 = c["images/image"][...]
assert C16.dtype == np.uint16
ca = c["images/image"].attrs
s, o = cfg["intensity"]["scale"], cfg["intensity"]["offset"]
model_vals = (A - o) / s
want = np.rint(np.clip((model_vals + 1) / 2, 0, 1) * 65535)
assert np.abs(C16.astype(np.int64) - want).max() <= 1
phys = C16 * ca["slope"] + ca["intercept"]
inside = np.abs(model_vals) < 1
assert np.abs(phys - A)[inside].max() <= ca["slope"] * 1.01
# --class fixes every label.
assert (e["images/image_labels"][...] == 1).all()
v = h5py.File(T + "/v.h5", "r")["images/image"]
assert v.shape == (3, 1, 8, 8) and np.isfinite(v[...]).all()
assert v.attrs["latent_prior"] == "standard normal" and "images/image_labels" not in v.file
# Learned per-class prior: labels drawn per image, bytes independent of
# --batch/--threads, --class fixes the class, and the class changes the image
# decoded from the same noise (same seed and index).
p1, p2, p3 = (h5py.File("%s/%s.h5" % (T, k), "r") for k in ("p1", "p2", "p3"))
P1 = p1["images/image"][...]
assert p1["images/image"].attrs["latent_prior"] == "learned gaussian"
assert np.array_equal(P1, p2["images/image"][...])
l1 = p1["images/image_labels"][...]
assert l1.min() >= 0 and l1.max() <= 2 and len(set(l1.tolist())) >= 2, l1
assert (p3["images/image_labels"][...] == 2).all()
P3 = p3["images/image"][...]
same = l1 == 2
assert np.array_equal(P1[same], P3[same]) and not np.array_equal(P1[~same], P3[~same])
print("ok")
PY

# Image i generated alone equals image i of a batch (first = 0 only here:
# -n 1 gives image 0).
"$MS" images --model "$C" -n 1 --seed 7 --steps 5 --guidance 2 -o "$T/one.h5"
/usr/bin/python3 -c "
import h5py, numpy as np, sys
a = h5py.File('$T/a.h5','r')['images/image'][0]
o = h5py.File('$T/one.h5','r')['images/image'][0]
assert np.array_equal(a, o)
"
"$MS" model inspect "$C" > "$T/inspect.txt"
grep -q "architecture: unet" "$T/inspect.txt"
grep -q "parameters:   27461" "$T/inspect.txt"
grep -q "classes:      3" "$T/inspect.txt"
grep -q "(verified)" "$T/inspect.txt"
echo ok
