#!/usr/bin/env bash
# Realism of brain T1 slices against the real Colin27 T1 (mricron-data),
# with an independent evaluator (histogram distance, MMD, ...): generated
# atlas-based subjects vs the ellipse head phantom vs a real-vs-real floor.
#
# Usage: tests/bench/brain_realism.sh build/medsynth path/to/evaluate.py [outdir]
# Real: axial ch2 slices 40..138 (every 2nd plane: even ones are the
# reference, odd ones the hold-out). Synthetic: 10 subjects x 5 axial planes
# of 181 x 217 x 181 volumes (T1 spin echo, default randomisation), and 50
# ellipse-phantom T1 head slices. Every slice is divided by its 99th
# percentile and clipped to [0, 1] (the evaluator wants [0, 1]; MR units are
# arbitrary), all in the radiological orientation medsynth writes.
set -euo pipefail
ms=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
ev=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
out=${3:-$(mktemp -d)}
mkdir -p "$out"
cd "$out"
"$ms" phantom --kind brain -n 10 --seed 1 --threads 2 --compression 1 -o brain.h5 --force
"$ms" phantom --kind head --modality t1 --size 217 --fov 217 -n 50 --seed 1 -o head.h5 --force
/usr/bin/python3 - <<'PY'
import h5py, numpy as np, nibabel as nib
def norm(x):
    x = x.astype(np.float64)
    return np.clip(x / max(np.percentile(x, 99), 1e-9), 0, 1).astype(np.float32)
def save(name, sl):
    with h5py.File(name, "w") as f:
        f["images"] = np.stack([norm(s) for s in sl])[:, None]
ch2 = np.asanyarray(nib.load("/usr/share/mricron/templates/ch2.nii.gz").dataobj)
# NIfTI (i, j, k) -> medsynth [row, col] = (anterior at top, patient left on the right)
ax = lambda k: ch2[::-1, ::-1, k].T
save("real.h5", [ax(k) for k in range(40, 139, 4)])
save("holdout.h5", [ax(k) for k in range(42, 139, 4)])
b = h5py.File("brain.h5", "r")["/images/brain"]
save("brain_t1.h5", [b[i, 0, k] for i in range(b.shape[0]) for k in (50, 70, 90, 110, 130)])
h = h5py.File("head.h5", "r")["/images/head"]
save("ellipse_t1.h5", [h[i, 0] for i in range(h.shape[0])])
PY
for s in brain_t1 ellipse_t1; do
  /usr/bin/python3 "$ev" images --real real.h5 --holdout holdout.h5 --synthetic "$s.h5" --out "$s.json" > /dev/null
done
/usr/bin/python3 "$ev" images --real real.h5 --synthetic holdout.h5 --out floor.json > /dev/null
/usr/bin/python3 - <<'PY'
import json
print("%-12s %8s %8s %8s %8s" % ("synthetic", "hist_tv", "hist_fg", "w1", "mmd2"))
for s in ["floor", "brain_t1", "ellipse_t1"]:
    r = json.load(open(f"{s}.json"))
    i = r["intensity"]
    print("%-12s %8.3f %8.3f %8.3f %8.3f" % (s, i["hist_tv_all"], i["hist_tv_foreground"], i["wasserstein1_all"],
                                          r["mmd"]["mmd2_unbiased"]))
PY
