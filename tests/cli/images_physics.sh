#!/usr/bin/env bash
# Acquisition physics of spec image fields (docs/multimodal.md, "Acquisition
# physics"): the documented command as written, the file layout read with
# h5py, per-row doses and accelerations taken from the records (the info
# table's dose, noise falling with dose, every mask sampling round(W/R)
# columns of its row's R), RSS and zero-filled images recomputed from the
# stored k-space with numpy's FFT, the same bytes for 1 and 2 threads and
# for a shorter run (a prefix), and refused per-row values (exit 65, the
# row and the JSON path named, no file).
# Usage: images_physics.sh <medsynth> <source-dir>
set -euo pipefail
MS="$1"
SRC="$2"
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
mkdir "$T/bin" "$T/examples"
ln -s "$(cd "$(dirname "$MS")" && pwd)/$(basename "$MS")" "$T/bin/medsynth"
cp "$SRC/examples/multimodal_physics.json" "$T/examples/"
DOC="$SRC/docs/multimodal.md"
awk '/^## Acquisition physics/{f=1} f&&/^```sh/{p=1;next} p&&/^```/{exit} p' "$DOC" > "$T/example.sh"
[ -s "$T/example.sh" ] || fail "doc example not found"
cd "$T"
PATH="$T/bin:$PATH" bash -euo pipefail example.sh 2> example.err
[ -s physics_cohort.h5 ] || fail "the documented command wrote no file"
# more rows, a dose that varies, threads 1 and 2, and a prefix
/usr/bin/python3 - <<'PY'
import json
s = json.load(open("examples/multimodal_physics.json"))
t = s["tables"][0]
t["rows"] = 12
t["images"][0]["acquisition"]["dose"] = "if(age > 60, 40, 8)"
json.dump(s, open("vary.json", "w"))
t["images"][0]["acquisition"]["dose"] = "if(age > 60, 0, 25)"
json.dump(s, open("bad_dose.json", "w"))
t["images"][0]["acquisition"]["dose"] = 25
t["images"][1]["acquisition"]["center_fraction"] = "if(age > 60, 0, 0.08)"
json.dump(s, open("bad_cf.json", "w"))
t["images"][1]["acquisition"]["center_fraction"] = 0.08
t["images"][1]["acquisition"]["acceleration"] = "if(age > 60, 0.5, 4)"
json.dump(s, open("bad_acc.json", "w"))
PY
"$MS" records --spec vary.json -o v1.h5 --threads 1 -q
"$MS" records --spec vary.json -o v2.h5 --threads 2 --chunk-rows 5 -q
"$MS" records --spec vary.json -o v3.h5 -n 7 -q
/usr/bin/python3 - <<'PY'
import h5py, numpy as np

def fft2c(x):
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))

def ifft2c(x):
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))

with h5py.File("physics_cohort.h5") as f:
    n = f["tables/patients"].shape[0]
    assert f["images/chest_ct"].shape == (n, 1, 128, 128)
    assert f["raw/chest_ct_sinogram"].shape == (n, 1, 180, 185), f["raw/chest_ct_sinogram"].shape
    assert f["images/chest_ct"].attrs["filter"] == "hann" and f["images/chest_ct"].attrs["acquisition"] == "ct"
    assert f["raw/head_mr_kspace"].shape == (n, 4, 128, 128) and f["raw/head_mr_kspace"].dtype == np.complex64
    assert f["raw/head_mr_sensitivity_maps"].shape == (4, 128, 128)
    for k in ("images/chest_ct_full_dose", "images/chest_ct_truth", "images/head_mr_zf", "images/head_mr_truth"):
        assert f[k].shape == (n, 1, 128, 128), k
    # the masks are those of the truth: the truth is the noise-free phantom of the labels
    truth, mask = f["images/chest_ct_truth"][:], f["masks/chest_ct"][:]
    air = truth[mask == 0]
    assert abs(np.median(air) + 1000) < 1, np.median(air)
    # "nodule_type": "mixed": ground-glass values (-750..-500 HU) among the nodules
    les = f["tables/chest_ct_lesions"][:]
    assert len(les) > 0 and (les["value"] < -450).any() and (les["value"] > -200).any(), les["value"]
    # "nodule_margin": "mixed": more than one margin, spikes only on spiculated nodules
    assert len(set(les["margin"])) >= 2, les["margin"]
    assert all((m == b"spiculated") == (s > 0) for m, s in zip(les["margin"], les["n_spicules"])), les

with h5py.File("v1.h5") as f, h5py.File("v2.h5") as g, h5py.File("v3.h5") as h:
    names = ["images/chest_ct", "images/chest_ct_full_dose", "images/chest_ct_truth", "raw/chest_ct_sinogram",
             "images/head_mr", "images/head_mr_zf", "raw/head_mr_kspace", "raw/head_mr_mask", "masks/chest_ct"]
    for k in names:
        a, b, c = f[k][:], g[k][:], h[k][:]
        assert np.array_equal(a, b), "threads or chunks changed " + k
        assert np.array_equal(a[:7], c), "a shorter run is not a prefix: " + k
    rows = f["tables/patients"][:]
    dose = f["tables/chest_ct_info"]["dose"]
    want = np.where(rows["age"] > 60, 40.0, 8.0)
    assert np.array_equal(dose, want), (dose, want)
    assert 0 < (want == 8).sum() < len(want), "the test needs both doses"
    # reconstruction noise: low-dose image minus the full-dose image of the
    # same truth, in the body; variance ~ 1/dose + 1/100: 0.135 vs 0.035
    lo, full, m = f["images/chest_ct"][:, 0], f["images/chest_ct_full_dose"][:, 0], f["masks/chest_ct"][:, 0]
    var = np.array([np.var((lo[i] - full[i])[m[i] > 0]) for i in range(len(want))])
    r = var[want == 8].mean() / var[want == 40].mean()
    print("noise variance ratio 8 vs 40 mAs: %.2f (model 3.9)" % r)
    assert 3 < r < 5, r
    # MR: each row's mask samples round(W / R) columns with its row's R
    R = np.where(rows["age"] > 60, 4, 8)
    lines = f["raw/head_mr_mask"][:].sum(axis=1)
    assert np.array_equal(lines, np.round(128 / R)), (lines, R)
    # RSS and zero-filled images from the stored k-space
    k = f["raw/head_mr_kspace"][:]
    coil = ifft2c(k)
    rss = np.sqrt((np.abs(coil) ** 2).sum(axis=1))
    assert np.abs(rss - f["images/head_mr"][:, 0]).max() < 1e-4 * rss.max()
    zf = np.sqrt((np.abs(ifft2c(k * f["raw/head_mr_mask"][:][:, None, None, :])) ** 2).sum(axis=1))
    assert np.abs(zf - f["images/head_mr_zf"][:, 0]).max() < 1e-4 * zf.max()
    # inside the head the RSS is the truth plus noise of a few per cent
    t = f["images/head_mr_truth"][:, 0]
    hm = (f["masks/head_mr"][:, 0] > 0) & (t > 0.1 * t.max())
    err = np.median(np.abs(rss - t)[hm] / t[hm])
    print("MR RSS vs truth in the head: median relative difference %.3f" % err)
    assert err < 0.1, err
PY
for b in bad_dose bad_cf bad_acc; do
  rc=0
  "$MS" records --spec $b.json -o $b.h5 -q 2> $b.err || rc=$?
  [ $rc -eq 65 ] || fail "$b: exit $rc"
  [ ! -e $b.h5 ] || fail "$b: a file was left"
  ls -a | grep -q "^\.$b" && fail "$b: a temporary file was left"
done
grep -q 'patients/[0-9]*: image "chest_ct": dose = 0 for this row; .*(/tables/0/images/0/acquisition/dose)' bad_dose.err || { cat bad_dose.err; fail "dose message"; }
grep -q 'patients/[0-9]*: image "head_mr": centre fraction must be in (0, 1), got 0 for this row (/tables/0/images/1/acquisition/center_fraction)' bad_cf.err || { cat bad_cf.err; fail "centre fraction message"; }
grep -q 'patients/[0-9]*: image "head_mr": acceleration = 0.5 for this row; .*(/tables/0/images/1/acquisition/acceleration)' bad_acc.err || { cat bad_acc.err; fail "acceleration message"; }
echo "images_physics: ok"
