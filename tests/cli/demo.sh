#!/usr/bin/env bash
# The README's first command ends in examples/demo.sh: it must run, write the
# dataset and both contact sheets, and the dataset must hold what it says
# (200 patients, images and masks linked row by row, nodules only where the
# record has a lung-cancer diagnosis).
# Usage: demo.sh <path-to-medsynth> <source-dir>
set -euo pipefail
ms=$1
src=$2
build=$(cd "$(dirname "$ms")" && pwd)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
bash "$src/examples/demo.sh" "$build" >"$log" 2>&1 || { cat "$log" >&2; echo "FAIL: demo exited non-zero" >&2; exit 1; }
for f in cohort.h5 sheet_chest_ct.png sheet_head_mri.png sheet_brain_mri.png sheet_brain_mri_vae.png \
         fhir/manifest.json fhir/patients_000000.json fhir/patients_000199.json \
         dicom/chest_ct/00000/IMG0000.dcm dicom/chest_ct/00199/SEG.dcm dicom/head_mri/00000/SEG.dcm \
         dicom/brain_mri/00000/IMG0000.dcm dicom/brain_mri_vae/00199/IMG0000.dcm; do
  [ -s "$src/out/demo/$f" ] || { echo "FAIL: demo did not write out/demo/$f" >&2; exit 1; }
done
grep -q 'that snippet, run now' "$log" || { echo "FAIL: demo did not run its h5py snippet" >&2; exit 1; }
/usr/bin/python3 - "$src/out/demo/cohort.h5" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
p = f["tables/patients"][:]
assert len(p) == 200, len(p)
assert f["images/chest_ct"].shape == (200, 1, 256, 256)
assert f["images/head_mri"].shape == (200, 1, 128, 128)
plane = {b"axial": 0, b"coronal": 3, b"sagittal": 6}
level = {b"low": 0, b"mid": 1, b"high": 2}
want = np.array([plane[a] + level[b] for a, b in zip(p["mri_plane"], p["mri_level"])])
for name in ("brain_mri", "brain_mri_vae"):
    b = f["images/" + name]
    assert b.shape == (200, 1, 64, 64), (name, b.shape)
    x = b[:]
    assert np.isfinite(x).all(), name
    info = f["tables/%s_info" % name][:]
    assert (info["class"] == want).all(), name       # class follows the record
    # brain inside a dark background: the border is darker than the centre
    assert x[:, 0, :4, :].mean() < x[:, 0, 24:40, 24:40].mean() - 0.2, name
m = f["masks/chest_ct"][:]
for i in range(200):
    lesions = len([l for l in np.unique(m[i]) if l >= 100])
    assert lesions == p["nodules"][i], (i, lesions, p["nodules"][i])
    assert (p["nodules"][i] > 0) == bool(p["lung_cancer"][i]), i
assert set(f["tables/visits"]["patient_id"]) <= set(p["patient_id"])
print("demo: ok")
PY
