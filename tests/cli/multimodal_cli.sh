#!/usr/bin/env bash
# medsynth records with image fields, end to end on examples/multimodal.json:
# the HDF5 layout read with h5py (images, masks, lesion and info tables,
# attributes, row linkage), lesion counts against the record field for every
# row, parameters against their expressions, the Python/PyTorch loader of
# docs/multimodal.md run as documented, PNG / NIfTI / contact-sheet exports
# (nibabel), reproducibility across threads, chunking, prefixes and shards,
# and bad input (exit code, message, no partial file).
# Usage: multimodal_cli.sh <medsynth> <source-dir>
set -euo pipefail
ms=$1
src=$2
PY=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_rc() { # expect_rc CODE cmd...
  local want=$1; shift
  set +e; "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?; set -e
  [ "$rc" = "$want" ] || { cat "$tmp/err" >&2; fail "exit $rc, wanted $want: $*"; }
}
spec=$src/examples/multimodal.json

# ---- validate + generate with every export
expect_rc 0 "$ms" validate "$spec"
expect_rc 0 "$ms" records --spec "$spec" -n 24 --threads 2 -o "$tmp/a.h5" \
  --png "$tmp/png" --nifti "$tmp/nii" --grid "$tmp/sheet.png" --grid-max 9
grep -q "/images/chest_ct: 24 images" "$tmp/err" || fail "report names the images"
[ "$(ls "$tmp/png" | wc -l)" = 96 ] || fail "PNG count (24 rows x 2 fields x image+mask)"
[ "$(ls "$tmp/nii" | wc -l)" = 96 ] || fail "NIfTI count"
[ -s "$tmp/sheet_chest_ct.png" ] && [ -s "$tmp/sheet_head_mri.png" ] || fail "contact sheets"

# ---- the loader of docs/multimodal.md, extracted and run
awk '/^## Loading images, masks and records in Python/{f=1} f&&/^```python/{p=1;next} p&&/^```/{exit} p' \
  "$src/docs/multimodal.md" > "$tmp/loader.py"
[ -s "$tmp/loader.py" ] || fail "loader snippet not found in docs/multimodal.md"

$PY - "$tmp/a.h5" "$tmp/loader.py" "$tmp/nii" "$tmp/png" <<'EOF'
import sys, json
import h5py, numpy as np
path, loader, nii, png = sys.argv[1:5]
exec(open(loader).read())
N = 24
f = h5py.File(path, "r")
img, msk = f["images/chest_ct"], f["masks/chest_ct"]
assert img.shape == (N, 1, 256, 256) and img.dtype == np.float32, img.shape
assert msk.shape == (N, 1, 256, 256) and msk.dtype == np.uint8
assert f["images/head_mri"].shape == (N, 1, 128, 128)
a = img.attrs
assert a["table"] == "patients" and a["key"] == "patient_id" and a["axes"] == "N,C,H,W"
assert a["modality"] == "ct" and a["unit"] == "HU" and a["phantom"] == "chest"
assert abs(a["spacing_x_mm"] - 440 / 256) < 1e-12
assert a["window_center"] == -600 and a["window_width"] == 1500
assert a["first_row"] == 0 and a["seed"] == 20250101 and a["items"] == N
labels = json.loads(msk.attrs["labels"])
assert labels["11"]["name"] == "lung"
p = f["tables/patients"][...]
assert len(p) == N
les = f["tables/chest_ct_lesions"][...]
info = f["tables/chest_ct_info"][...]
m = msk[...]
for i in range(N):
    n = int(p["nodules"][i])
    assert (n > 0) == bool(p["lung_cancer"][i]), i
    present = sorted(int(v) for v in np.unique(m[i]) if v >= 100)
    assert present == list(range(100, 100 + n)), (i, n, present)
    rows = les[les["row"] == i]
    assert len(rows) == n and int(info["n_lesions"][i]) == n
    assert all(rows["patient_id"] == p["patient_id"][i])
    for r in rows:
        assert int(r["n_pixels"]) == int((m[i] == r["label"]).sum())
        assert r["organ"] == b"lung"
    bs = min(1.2, max(0.85, 0.75 + 0.01 * p["bmi"][i]))
    assert abs(info["body_scale"][i] - bs) < 1e-12
    assert info["dose"][i] == (150 if p["bmi"][i] > 30 else 100)
hi = f["tables/head_mri_info"][...]
vs = np.clip(0.8 + 0.015 * (p["age"] - 20), 0.5, 2.5)
assert np.allclose(hi["ventricle_scale"], vs, rtol=0, atol=1e-12)
assert (hi["age_years"] == p["age"]).all()
assert (les["row"] == np.sort(les["row"])).all()
assert int(p["lung_cancer"].sum()) > 0, "the enriched example shows nodules"

# documented loader + PyTorch dataset
h = MultimodalH5(path, "chest_ct")
x, y, rec = h[3]
assert np.array_equal(x, img[3]) and rec["patient_id"] == p["patient_id"][3].decode()
assert len(h.lesions_of(3)) == int(p["nodules"][3])
import torch
ds = MultimodalDataset(path, "chest_ct", label="lung_cancer")
dl = torch.utils.data.DataLoader(ds, batch_size=8, shuffle=False)
xb, mb, yb = next(iter(dl))
assert xb.shape == (8, 1, 256, 256) and mb.shape == (8, 1, 256, 256) and yb.shape == (8,)
assert torch.equal(yb, torch.tensor(p["lung_cancer"][:8].astype(np.float32)))

# exports: NIfTI voxel (i, j) = image column i, row j; PNG = windowed image
import nibabel as nib
v = nib.load(f"{nii}/chest_ct_000005.nii.gz")
assert v.shape == (256, 256)
assert np.array_equal(np.asarray(v.dataobj).T, img[5, 0])
mv = nib.load(f"{nii}/chest_ct_000005_mask.nii.gz")
assert np.array_equal(np.asarray(mv.dataobj).T, m[5, 0])
assert abs(v.header.get_zooms()[0] - 440 / 256) < 1e-6
EOF

# ---- reproducibility: images identical across threads, chunking, prefix, shards
"$ms" records --spec "$spec" -n 24 --threads 1 --chunk-rows 5 -o "$tmp/b.h5" -q
"$ms" records --spec "$spec" -n 10 --threads 2 -o "$tmp/p.h5" -q
"$ms" records --spec "$spec" -n 24 --shard 1/2 -o "$tmp/s1.h5" -q
"$ms" records --spec "$spec" -n 24 --shard 2/2 -o "$tmp/s2.h5" -q
$PY - "$tmp" <<'EOF'
import sys, h5py, numpy as np
t = sys.argv[1]
A, B, P, S1, S2 = (h5py.File(f"{t}/{n}.h5", "r") for n in ("a", "b", "p", "s1", "s2"))
for k in ("images/chest_ct", "masks/chest_ct", "images/head_mri", "tables/chest_ct_lesions"):
    assert np.array_equal(A[k][...], B[k][...]), k + " differs across threads/chunks"
for k in ("images/chest_ct", "masks/head_mri"):
    assert np.array_equal(A[k][:10], P[k][...]), k + " not prefix-stable"
    assert np.array_equal(A[k][...], np.concatenate([S1[k][...], S2[k][...]])), k + " shards"
assert S2["images/chest_ct"].attrs["first_row"] == len(S1["tables/patients"])
assert A["images/chest_ct"].attrs["xxh64_items"] == B["images/chest_ct"].attrs["xxh64_items"]
EOF

# ---- --no-images, formats, usage errors
expect_rc 0 "$ms" records --spec "$spec" -n 5 --no-images -o "$tmp/t.h5"
$PY -c "import h5py,sys; f=h5py.File(sys.argv[1],'r'); assert 'images' not in f and list(f['tables'])==['patients']" "$tmp/t.h5" \
  || fail "--no-images wrote images"
expect_rc 0 "$ms" records --spec "$spec" -n 5 --no-images -o "$tmp/t.csv"
expect_rc 64 "$ms" records --spec "$spec" -n 5 -o "$tmp/u.csv"
grep -q "image fields, which need an HDF5 output" "$tmp/err" || fail "CSV with images message"
[ ! -e "$tmp/u.csv" ] || fail "partial CSV"
expect_rc 64 "$ms" records --spec "$src/docs/specs/minimal.json" -o "$tmp/v.h5" --png "$tmp/q"
grep -q "need image fields" "$tmp/err" || fail "--png without images"
expect_rc 73 "$ms" records --spec "$spec" -n 5 -o "$tmp/a.h5"

# ---- bad specs: every problem at once, positioned, exit 65, no file
expect_rc 65 "$ms" records --spec "$src/tests/specs/bad/images.json" -o "$tmp/bad.h5"
[ "$(grep -c ': error: ' "$tmp/err")" = 20 ] || fail "all 20 image errors reported"
grep -q 'images.json:14:34: error: /tables/0/images/0/phantom: unknown phantom "chset" (did you mean "chest"?)' "$tmp/err" \
  || fail "positioned unknown phantom"
grep -q "would need 851968.0 MiB of memory per image" "$tmp/err" || fail "memory refusal names the size"
grep -q "larger than its organ" "$tmp/err" || fail "lesion larger than organ"
[ ! -e "$tmp/bad.h5" ] || fail "partial file after a bad spec"

# ---- a row whose parameter leaves its range: exit 65, row named, no file
sed 's/"clamp(0.75 + 0.01 \* bmi, 0.85, 1.2)"/"bmi \/ 25"/' "$spec" > "$tmp/row.json"
grep -q '"bmi / 25"' "$tmp/row.json" || fail "test spec edit"
expect_rc 65 "$ms" records --spec "$tmp/row.json" -n 200 -o "$tmp/row.h5"
grep -Eq "row.json:[0-9]+:[0-9]+: error: patients/[0-9]+: image \"chest_ct\": body_scale = " "$tmp/err" \
  || fail "row error message"
[ ! -e "$tmp/row.h5" ] || fail "partial file after a row error"
ls -a "$tmp" | grep -q '\.tmp\.' && fail "temporary file left behind"
# ---- learned-model field (examples/multimodal_model.json)
expect_rc 0 "$ms" records --spec "$src/examples/multimodal_model.json" -n 6 -o "$tmp/m.h5" --grid "$tmp/m.png"
[ -s "$tmp/m.png" ] || fail "model contact sheet"
$PY - "$tmp/m.h5" <<'EOF'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
x = f["images/scan"]
assert x.shape == (6, 1, 8, 8) and x.attrs["source"] == "model" and x.attrs["sampler"] == "ddim"
assert x.attrs["steps"] == 20 and x.attrs["guidance"] == 2.0 and np.isfinite(x[...]).all()
p, info = f["tables/patients"][...], f["tables/scan_info"][...]
want = [{b"normal": 0, b"benign": 1, b"malignant": 2}[v] for v in p["finding"]]
assert list(info["class"]) == want and (info["patient_id"] == p["patient_id"]).all()
assert "masks" not in f
EOF
expect_rc 65 "$ms" validate "$src/tests/specs/bad/images_model.json"
[ "$(grep -c ': error: ' "$tmp/err")" = 14 ] || fail "all 14 model-field errors reported"
echo "multimodal CLI: ok"

