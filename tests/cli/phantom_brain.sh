#!/usr/bin/env bash
# medsynth phantom --kind brain: exit codes and messages of bad input, the
# same bytes for --threads 1 and 2, subject-table volumes equal to the mask
# counts, AAL masks inside the brain labels, --stroke-side in that
# hemisphere, and NIfTI files that nibabel
# reads with the HDF5 data at the MNI position of the atlas.
set -euo pipefail
ms=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
if [ ! -r /usr/share/mricron/templates/ch2.nii.gz ]; then
  echo "skipped: the brain phantom needs Debian's mricron-data package"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

expect() { # expected-exit-code expected-message-part command...
  local code=$1 msg=$2 rc=0
  shift 2
  "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
  if [ "$rc" != "$code" ] || ! grep -q -- "$msg" "$tmp/err"; then
    echo "expected exit $code and \"$msg\" from: $*; got $rc:" >&2
    cat "$tmp/err" >&2
    exit 1
  fi
}
expect 64 'unknown --modality "us"' "$ms" phantom --kind brain --modality us -o "$tmp/x.h5"
expect 64 'CT has physics intensities only' "$ms" phantom --kind brain --modality ct --intensities random -o "$tmp/x.h5"
expect 64 'unknown --intensities "gmm"' "$ms" phantom --kind brain --intensities gmm -o "$tmp/x.h5"
expect 66 'mricron-data' "$ms" phantom --kind brain --atlas-dir "$tmp/none" -o "$tmp/x.h5"
expect 65 'bytes allowed' "$ms" phantom --kind brain --size 4096 --depth 4096 -o "$tmp/x.h5"
expect 64 'field_t' "$ms" phantom --kind brain --field 7 -o "$tmp/x.h5"
expect 64 'unknown --tumour-lobe "insula"' "$ms" phantom --kind brain --tumour --tumour-lobe insula -o "$tmp/x.h5"
expect 64 'unknown --orientation "oblique"' "$ms" phantom --kind brain --orientation oblique -o "$tmp/x.h5"
expect 64 'unknown --stroke "ica"' "$ms" phantom --kind brain --stroke ica -o "$tmp/x.h5"
expect 64 'unknown --stroke-side "up" (left, right)' "$ms" phantom --kind brain --stroke mca --stroke-side up -o "$tmp/x.h5"
expect 64 'wm-lesions 65' "$ms" phantom --kind brain --wm-lesions 65 -o "$tmp/x.h5"
[ ! -e "$tmp/x.h5" ]

args=(phantom --kind brain --size 64 --height 72 --depth 60 --spacing 3 -n 2 --seed 4 --age 70 --tumour --tumour-lobe temporal)
"$ms" "${args[@]}" --threads 1 -o "$tmp/a.h5" --nifti "$tmp/nii"
"$ms" "${args[@]}" --threads 2 -o "$tmp/b.h5"
"$ms" phantom --kind brain --depth 1 --size 96 --spacing 2 -n 3 --intensities random -o "$tmp/s.h5"
"$ms" phantom --kind brain --modality ct --depth 1 --size 96 --spacing 2 -n 2 -o "$tmp/ct.h5"
# --stroke-side: the infarct in that hemisphere (MNI x < 0 left), in AAL regions of that side
for s in left right; do
  "$ms" phantom --kind brain --size 48 --height 56 --depth 44 --spacing 4 -n 3 --seed 2 --stroke mca --stroke-size 40 \
    --stroke-side $s -o "$tmp/stroke_$s.h5" --nifti "$tmp/stroke_$s"
done
/usr/bin/python3 - "$tmp" <<'PY'
import sys, json, h5py, numpy as np, nibabel as nib
t = sys.argv[1]
for s in ("left", "right"):
    f = h5py.File(f"{t}/stroke_{s}.h5", "r")
    names = {int(k): str(v) for k, v in json.loads(f["/masks/brain_aal"].attrs["label_table"]).items()}
    assert '"stroke-side":"%s"' % s in f.attrs["invocation"], f.attrs["invocation"]
    for i in range(3):
        mk = nib.load(f"{t}/stroke_{s}/mask_{i:05d}.nii.gz")
        v = np.argwhere(np.asanyarray(mk.dataobj) == 15)
        assert len(v), (s, i)
        x = (mk.affine @ np.c_[v, np.ones(len(v))].T)[0]
        assert (x.mean() < 0) == (s == "left"), (s, i, x.mean())
        m, a = f["/masks/brain"][i], f["/masks/brain_aal"][i]
        regs = [names[int(l)] for l in np.unique(a[m == 15]) if l]
        assert regs and all(("_L" if s == "left" else "_R") in r for r in regs), (s, i, regs)
PY

/usr/bin/python3 - "$tmp" <<'PY'
import sys, h5py, numpy as np, nibabel as nib
t = sys.argv[1]
a, b = h5py.File(f"{t}/a.h5", "r"), h5py.File(f"{t}/b.h5", "r")
for k in ["/images/brain", "/masks/brain", "/masks/brain_aal"]:
    assert a[k].shape == (2, 1, 60, 72, 64), a[k].shape
    assert np.array_equal(a[k][:], b[k][:]), k + " differs between --threads 1 and 2"
sub = a["/tables/brain_info"][:]
m, aal = a["/masks/brain"][:], a["/masks/brain_aal"][:]
names = [n for n in sub.dtype.names if n.startswith("volume_")]
assert len(names) == 16
assert [x.decode() for x in sub["tumour_lobe"]] == ["temporal", "temporal"]
for i in range(2):
    counts = np.bincount(m[i].ravel(), minlength=16)
    assert (counts[11:14] > 0).all(), counts
    for l, n in enumerate(names):
        assert sub[n][i] == counts[l] * 27, (n, sub[n][i], counts[l])
    assert sub["min_jacobian"][i] > 0 and sub["age_years"][i] == 70
    inside = m[i][aal[i] > 0]
    assert ((inside >= 1) & (inside <= 8) | (inside >= 11)).all(), "AAL region outside the brain labels"
s = h5py.File(f"{t}/s.h5", "r")
assert s["/images/brain"].shape == (3, 1, 96, 96)
c = h5py.File(f"{t}/ct.h5", "r")
assert c["/images/brain"].attrs["units"] in (b"HU", "HU")
ci, cm = c["/images/brain"][:], c["/masks/brain"][:]
assert abs(np.median(ci[cm == 0]) + 1000) < 20 and np.median(ci[cm == 9]) > 500
# NIfTI: same data, MNI-positioned (the grid centre near the brain centre).
for i in range(2):
    im = nib.load(f"{t}/nii/image_{i:05d}.nii.gz")
    mk = nib.load(f"{t}/nii/mask_{i:05d}.nii.gz")
    assert im.shape == (64, 72, 60) and im.header.get_zooms() == (3, 3, 3)
    assert np.array_equal(np.asanyarray(im.dataobj).transpose(2, 1, 0), a["/images/brain"][i, 0])
    assert np.array_equal(np.asanyarray(mk.dataobj).transpose(2, 1, 0), m[i, 0])
    centre = im.affine @ np.array([31.5, 35.5, 29.5, 1])
    assert np.all(np.abs(centre[:3] - np.array([0, -18, 10])) < 15), centre
print("brain phantom ok")
PY

# --- commands from docs/phantoms.md, "Brain" ---
cd "$tmp"
"$ms" phantom --kind brain -n 2 --seed 1 -o brain.h5 --nifti brain_nii
"$ms" phantom --kind brain --modality flair --depth 1 --size 256 --spacing 0.9 --age 75 -n 16 -o flair.h5 --grid flair.png
"$ms" phantom --kind brain --tumour --tumour-lobe temporal --gadolinium --size 128 --depth 96 --spacing 1.5 -n 4 -o tumour.h5
"$ms" phantom --kind brain --intensities random --size 128 --depth 30 --spacing 1.5 --slice-mm 5 --blur-z 2 -n 8 -o dr.h5
"$ms" phantom --kind brain --modality t2 --orientation coronal --depth 1 --size 192 --spacing 1.2 -n 4 -o coronal.h5 --nifti coronal_nii
"$ms" phantom --kind brain --modality t2 --orientation sagittal --depth 1 --size 192 --spacing 1.2 -n 4 -o sagittal.h5 --nifti sagittal_nii
"$ms" phantom --kind brain --modality flair --age 70 --wm-lesions 25 --stroke mca --stroke-side left --size 96 --depth 80 --spacing 2 -n 3 -o vascular.h5
# --- end ---
# --- the README's command ---
mkdir readme && (cd readme && "$ms" phantom --kind brain --modality flair --age 75 --depth 1 -n 16 -o brain.h5 --grid brain.png)
[ -s readme/brain.png ]
/usr/bin/python3 - <<'PY'
import h5py, numpy as np
with h5py.File("brain.h5") as f:
    assert f["/images/brain"].shape == (2, 1, 181, 217, 181)
    assert f["/masks/brain_aal"][:].max() == 116 or f["/masks/brain_aal"][:].max() > 100
with h5py.File("flair.h5") as f:
    assert f["/images/brain"].shape == (16, 1, 256, 256)
    assert (f["/tables/brain_info"]["age_years"] == 75).all()
with h5py.File("tumour.h5") as f:
    sub = f["/tables/brain_info"][:]
    assert (sub["volume_tumour_enhancing_mm3"] > 0).all()
    assert [x.decode() for x in sub["tumour_lobe"]] == ["temporal"] * 4
with h5py.File("dr.h5") as f:
    assert f["/masks/brain"].shape == (8, 1, 30, 128, 128)
import nibabel as nib
for o, cols in (("coronal", [[-1, 0, 0], [0, 0, -1], [0, 1, 0]]), ("sagittal", [[0, -1, 0], [0, 0, -1], [1, 0, 0]])):
    with h5py.File(o + ".h5") as f:
        m = f["/masks/brain"][:]
        assert m.shape == (4, 1, 192, 192)
    im = nib.load(f"{o}_nii/mask_00000.nii.gz")
    A = im.affine[:3, :3] / 1.2
    assert np.allclose(A, np.array(cols).T), (o, A)
    assert np.array_equal(np.asanyarray(im.dataobj).reshape(192, 192, -1)[:, :, 0].T, m[0, 0])
    # the brainstem and cerebellum are in the lower half of the image (superior up)
    rows = np.nonzero((m[0, 0] >= 6) & (m[0, 0] <= 8))[0]
    assert rows.size and rows.mean() > 96, (o, rows.mean() if rows.size else None)
with h5py.File("vascular.h5") as f:
    sub, img, m = f["/tables/brain_info"][:], f["/images/brain"][:], f["/masks/brain"][:]
    assert (sub["volume_wm_lesion_mm3"] > 0).all() and (sub["volume_stroke_mm3"] > 0).all()
    for i in range(3):
        assert img[i][m[i] == 14].mean() > img[i][m[i] == 3].mean()  # bright on FLAIR
        assert img[i][m[i] == 15].mean() > img[i][m[i] == 3].mean()
        assert np.nonzero(m[i, 0] == 15)[2].mean() > 47.5  # left (MNI x < 0): the higher columns of an axial image
print("brain docs examples ok")
PY
[ -s brain_nii/aal_00001.nii.gz ] && [ -s flair.png ]

# --- the benchmark of docs/performance.md ("Brain phantom"), a short run ---
bench="$(dirname "$ms")/bench_brain"
if [ -x "$bench" ]; then
  "$bench" 0 4 > "$tmp/bench.out"
  grep -q "256x256 slices .* (one slice per thread)" "$tmp/bench.out" || { cat "$tmp/bench.out"; exit 1; }
fi
