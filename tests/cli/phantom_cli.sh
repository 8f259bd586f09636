#!/usr/bin/env bash
# medsynth phantom end to end: file layout, attributes, tables measured on
# the masks, noise-free consistency, byte-identical output for 1 and 2
# threads and for image i alone vs in a batch, and clean refusals (exit code,
# message, no partial file).
set -euo pipefail
ms=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$ms" phantom --kind chest --size 96 -n 6 --seed 5 --lesions 1:3 --lesion-size 12:20 -o "$tmp/t1.h5" --threads 1 \
  --grid "$tmp/sheet.png" --png "$tmp/png"
"$ms" phantom --kind chest --size 96 -n 6 --seed 5 --lesions 1:3 --lesion-size 12:20 -o "$tmp/t2.h5" --threads 2
"$ms" phantom --kind chest --size 96 -n 9 --seed 5 --lesions 1:3 --lesion-size 12:20 -o "$tmp/t9.h5" --threads 2
"$ms" phantom --kind abdomen --modality t1 --size 80 -n 3 --seed 2 --lesions 2 --lesion-size 16:22 --noise-free --rotate 20 --elastic 5 \
  -o "$tmp/a.h5"
[ -s "$tmp/sheet.png" ] || fail "no contact sheet"
[ -s "$tmp/png/image_00005.png" ] && [ -s "$tmp/png/mask_00005.png" ] || fail "no PNGs"

/usr/bin/python3 - "$tmp" <<'PY'
import sys, json, h5py, numpy as np
t = sys.argv[1]
with h5py.File(f"{t}/t1.h5") as a, h5py.File(f"{t}/t2.h5") as b, h5py.File(f"{t}/t9.h5") as c:
    for p in ("/images/chest", "/masks/chest"):
        assert a[p].shape == (6, 1, 96, 96), a[p].shape
        assert np.array_equal(a[p][:], b[p][:]), "threads changed " + p
        assert np.array_equal(a[p][:], c[p][:6]), "batch size / N changed " + p
    assert a["/images/chest"].dtype == np.float32 and a["/masks/chest"].dtype == np.uint8
    im = a["/images/chest"]
    assert im.attrs["units"] in (b"HU", "HU")
    assert abs(im.attrs["spacing_x_mm"] - 440 / 96) < 1e-9
    labels = json.loads(im.attrs["label_table"])
    assert labels["11"]["name"] == "lung"
    les = a["/tables/chest_lesions"][:]
    sub = a["/tables/chest_info"][:]
    masks = a["/masks/chest"][:]
    assert len(sub) == 6 and sum(sub["n_lesions"]) == len(les)
    for r in les:
        m = masks[r["row"], 0]
        assert r["organ"] == b"lung" and r["nodule"] == b"solid" and r["core_diameter_mm"] == 0
        assert r["label"] == 100 + r["lesion"]
        n = int((m == r["label"]).sum())
        assert n == r["n_pixels"] > 0
        assert abs(r["area_mm2"] - n * (440 / 96) ** 2) < 1e-6
        ys, xs = np.nonzero(m == r["label"])
        assert (xs.min(), ys.min(), xs.max(), ys.max()) == (r["bbox_x0"], r["bbox_y0"], r["bbox_x1"], r["bbox_y1"])
    assert all(1 <= k <= 3 for k in sub["n_lesions"])
with h5py.File(f"{t}/a.h5") as f:
    img, msk = f["/images/abdomen"][:], f["/masks/abdomen"][:]
    # noise-free render: one value per label in each image
    for i in range(3):
        for lab in np.unique(msk[i]):
            assert np.ptp(img[i][msk[i] == lab]) == 0, (i, lab)
    assert (msk >= 100).sum() > 0
print("phantom cli ok")
PY

# Refusals: message, exit code, no file left behind.
expect() {  # code pattern args...
  local code=$1 pat=$2; shift 2
  set +e; "$ms" phantom "$@" 2>"$tmp/err"; local rc=$?; set -e
  [ "$rc" = "$code" ] || fail "expected exit $code, got $rc for: $* ($(cat "$tmp/err"))"
  grep -q -- "$pat" "$tmp/err" || fail "message lacks '$pat': $(cat "$tmp/err")"
}
expect 64 'unknown phantom "liver"' --kind liver -n 1 -o "$tmp/x.h5"
expect 64 'unknown organ "pancreas"' --kind abdomen --lesion-organ pancreas -n 1 -o "$tmp/x.h5"
expect 64 'has no organ "lung"' --kind head --lesions 1 --lesion-organ lung -n 1 -o "$tmp/x.h5"
expect 65 'larger than its organ' --kind abdomen --lesions 1 --lesion-organ kidney --lesion-size 150 -n 3 -o "$tmp/x.h5"
expect 65 'width 0' --kind head --size 0 -n 1 -o "$tmp/x.h5"
expect 65 'MiB of memory' --kind head --size 8000 --depth 8000 -n 1 -o "$tmp/x.h5"
expect 64 '\-n must be at least 1' --kind head -n 0 -o "$tmp/x.h5"
expect 64 '\-\-dose: invalid value' --kind chest --dose abc -n 1 -o "$tmp/x.h5"
expect 65 'dose' --kind chest --dose -5 -n 1 -o "$tmp/x.h5"
expect 73 'exists' --kind chest -n 1 -o "$tmp/t1.h5"
[ ! -e "$tmp/x.h5" ] || fail "partial output left behind"
ls "$tmp" | grep -q 'tmp' && fail "temporary file left behind: $(ls "$tmp")"
"$ms" phantom --kind chest --size 32 -n 1 -o "$tmp/t1.h5" --force
echo "phantom cli refusals ok"
