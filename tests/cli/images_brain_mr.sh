#!/usr/bin/env bash
# MR acquisition physics of brain image fields (docs/multimodal.md,
# "Acquisition physics"): the documented brain example run as written; the
# datasets, shapes and dtypes; the truth equal to the same field rendered
# with "noise": false and no acquisition (and the masks, AAL masks and info
# table unchanged by the acquisition); each row's mask sampling round(W/R)
# columns of its own R; the RSS and zero-filled images recomputed from the
# stored k-space; without noise the RSS equal to the truth; the k-space
# noise at the brain's noise setting; the same bytes for 1 and 2 threads;
# CT physics, an MR contrast missing, a volume and an odd size refused with
# located messages, exit 65 and no file. Then medsynth phantom --kind brain
# --physics mr (docs/physics.md, "Brain slices"): the documented command,
# the fastMRI layout, the truth and masks equal to the brain command's
# --noise-free slices, RSS and zero-filled images from the k-space, the
# same bytes for 1 and 2 threads, and the refusals.
# Usage: images_brain_mr.sh <medsynth> <source-dir>
set -euo pipefail
ms=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
src=$(cd "$2" && pwd)
if [ ! -r /usr/share/mricron/templates/ch2.nii.gz ]; then
  echo "skipped: the brain phantom needs Debian's mricron-data package"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
mkdir "$tmp/bin"
ln -s "$ms" "$tmp/bin/medsynth"
doc="$src/docs/multimodal.md"
awk '/^### Brain MR acquisition/{f=1} f&&/^```json/{p=1;next} p&&/^```/{exit} p' "$doc" > "$tmp/brain_mr.json"
awk '/^### Brain MR acquisition/{f=1} f&&/^```sh/{p=1;next} p&&/^```/{exit} p' "$doc" > "$tmp/run.sh"
[ -s "$tmp/brain_mr.json" ] && [ -s "$tmp/run.sh" ] || fail "brain MR example not found in $doc"
cd "$tmp"
PATH="$tmp/bin:$PATH" bash -euo pipefail run.sh 2> run.err || { cat run.err; fail "the documented command"; }
[ -s brain_mr.h5 ] || fail "the documented command wrote no file"

# variants of the example: no acquisition with "noise": false (the truth),
# acquisition with "noise": false (no k-space noise)
/usr/bin/python3 - <<'PY'
import json
s = json.load(open("brain_mr.json"))
f = s["tables"][0]["images"][0]
acq = f.pop("acquisition")
f["noise"] = False
json.dump(s, open("plain.json", "w"))
f["acquisition"] = acq
json.dump(s, open("clean.json", "w"))
PY
"$ms" records --spec plain.json -o plain.h5 -q
"$ms" records --spec clean.json -o clean.h5 -q
"$ms" records --spec brain_mr.json -o t1.h5 --threads 1 -q
"$ms" records --spec brain_mr.json -o t2.h5 --threads 2 --chunk-rows 3 -q
/usr/bin/python3 - <<'PY'
import json, h5py, numpy as np

def ifft2c(x):
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))

spec = json.load(open("brain_mr.json"))
fld = spec["tables"][0]["images"][0]
nm, C, S = fld["name"], fld["acquisition"]["coils"], fld["size"]
f, p, c = h5py.File("brain_mr.h5", "r"), h5py.File("plain.h5", "r"), h5py.File("clean.h5", "r")
n = f["tables/patients"].shape[0]
shapes = {f"images/{nm}": ((n, 1, S, S), np.float32), f"images/{nm}_zf": ((n, 1, S, S), np.float32),
          f"images/{nm}_truth": ((n, 1, S, S), np.float32), f"masks/{nm}": ((n, 1, S, S), np.uint8),
          f"masks/{nm}_aal": ((n, 1, S, S), np.uint8), f"raw/{nm}_kspace": ((n, C, S, S), np.complex64),
          f"raw/{nm}_mask": ((n, S), np.uint8), f"raw/{nm}_sensitivity_maps": ((C, S, S), np.complex64)}
for k, (shape, dt) in shapes.items():
    assert f[k].shape == shape and f[k].dtype == dt, (k, f[k].shape, f[k].dtype)
img = f[f"images/{nm}"]
assert img.attrs["acquisition"] == "mr" and img.attrs["phantom"] == "brain" and img.attrs["coils"] == C
assert abs(img.attrs["noise_sd"] - 0.02) < 1e-12, img.attrs["noise_sd"]
assert c[f"images/{nm}"].attrs["noise_sd"] == 0
# the truth is the brain rendered with "noise": false; masks and info as without acquisition
truth = f[f"images/{nm}_truth"][...]
assert np.array_equal(truth, p[f"images/{nm}"][...]), "the truth is not the noise-free brain"
for k in (f"masks/{nm}", f"masks/{nm}_aal", f"tables/{nm}_info"):
    assert np.array_equal(f[k][...], p[k][...]), k + " changed with the acquisition"
assert np.array_equal(truth, c[f"images/{nm}_truth"][...])
# each row's mask samples round(W / R) columns with its row's R, the centre always
rows = f["tables/patients"][...]
R = np.where(rows["age"] > 60, 4, 8)
assert 0 < (R == 4).sum() < n, ("the test needs both accelerations", R)
mask = f[f"raw/{nm}_mask"][...]
assert np.array_equal(mask.sum(axis=1), np.round(S / R)), (mask.sum(axis=1), R)
nc = round(S * fld["acquisition"]["center_fraction"])
c0 = -(-(S - nc) // 2)
assert mask[:, c0:c0 + nc].all(), "the centre is not fully sampled"
# RSS and zero-filled images from the stored k-space
k = f[f"raw/{nm}_kspace"][...]
rss = np.sqrt((np.abs(ifft2c(k)) ** 2).sum(axis=1))
assert np.abs(rss - img[:, 0]).max() < 1e-4 * rss.max()
zf = np.sqrt((np.abs(ifft2c(k * mask[:, None, None, :])) ** 2).sum(axis=1))
assert np.abs(zf - f[f"images/{nm}_zf"][:, 0]).max() < 1e-4 * zf.max()
# noise-free and fully sampled: the RSS is the truth (the maps' sum of squares is 1)
cr = c[f"images/{nm}"][...]
err = np.abs(cr - truth).max()
print("brain MR: noise-free RSS vs truth, max abs difference %.2e" % err)
assert err < 1e-4 * truth.max(), err
# k-space noise: same seed and phase, so the two k-spaces differ by the noise alone
dk = k - c[f"raw/{nm}_kspace"][...]
sd = np.sqrt(np.mean(np.concatenate([dk.real.ravel(), dk.imag.ravel()]) ** 2))
print("brain MR: k-space noise sd %.5f (set 0.02)" % sd)
assert abs(sd / 0.02 - 1) < 0.02, sd
assert abs(np.corrcoef(dk.real.ravel(), dk.imag.ravel())[0, 1]) < 0.01
# inside the brain the RSS is the truth plus noise of a few per cent
m = f[f"masks/{nm}"][:, 0]
inb = (m >= 1) & (m <= 8) & (truth[:, 0] > 0.1)
rel = np.median(np.abs(img[:, 0] - truth[:, 0])[inb] / truth[:, 0][inb])
print("brain MR: RSS vs truth in the brain, median relative difference %.3f" % rel)
assert 0.001 < rel < 0.1, rel
# threads and chunks change no byte
a, b = h5py.File("t1.h5", "r"), h5py.File("t2.h5", "r")
for key in list(shapes) + [f"tables/{nm}_info"]:
    assert np.array_equal(a[key][...], b[key][...]), "threads or chunks changed " + key
    assert np.array_equal(a[key][...], f[key][...]), "the documented run differs from --threads 1: " + key
PY

# refusals: every one at its JSON pointer, exit 65, no file
cat > bad.json <<'EOF'
{"medsynth": 1, "tables": [{"name": "p", "rows": 2, "fields": [{"name": "id", "kind": "id"}],
  "images": [
    {"name": "a", "phantom": "brain", "size": 64, "spacing_mm": 3, "acquisition": {"physics": "ct"}},
    {"name": "b", "phantom": "brain", "size": 64, "depth": 8, "spacing_mm": 3, "acquisition": {"physics": "mr", "coils": 2}},
    {"name": "c", "phantom": "brain", "modality": "ct", "size": 64, "spacing_mm": 3, "acquisition": {"physics": "mr"}},
    {"name": "d", "phantom": "brain", "size": 63, "spacing_mm": 3, "acquisition": {"physics": "mr", "dose": 5}},
    {"name": "e", "phantom": "brain", "size": 64, "spacing_mm": 3, "acquisition": {"physics": "mr", "acceleration": 0.5}},
    {"name": "e_zf", "phantom": "brain", "size": 64, "spacing_mm": 3}
  ]}]}
EOF
for cmd in validate records; do
  rc=0
  if [ $cmd = validate ]; then "$ms" validate bad.json 2> bad.err || rc=$?
  else "$ms" records --spec bad.json -o bad.h5 -q 2> bad.err || rc=$?; fi
  [ $rc -eq 65 ] || { cat bad.err; fail "$cmd: exit $rc"; }
  [ ! -e bad.h5 ] || fail "$cmd: a file was left"
  for m in '/tables/0/images/0/acquisition/physics: brain images are MR contrasts: CT physics does not apply (use "physics": "mr")' \
           '/tables/0/images/1/acquisition: acquisition physics works on 2-D slices; remove "depth"' \
           '/tables/0/images/2/acquisition/physics: MR physics needs an MR contrast ("t1", "t2", "flair" or "pd"); this image is ct' \
           '/tables/0/images/3/acquisition: k-space needs an even number of pixels a side' \
           '/tables/0/images/3/acquisition/dose: unknown key "dose"' \
           '/tables/0/images/4/acquisition/acceleration: acceleration 0.5 is outside 1..1024' \
           '/tables/0/images/5/name: image "e_zf" would be overwritten by the acquisition of image "e" (/images/e_zf)'; do
    grep -qF -- "$m" bad.err || { cat bad.err; fail "$cmd: no \"$m\""; }
  done
  [ "$(grep -c ': error: ' bad.err)" = 7 ] || { cat bad.err; fail "$cmd: not exactly 7 errors"; }
done

# --- medsynth phantom --kind brain --physics mr (docs/physics.md, "Brain slices") ---
awk '/^## Brain slices/{f=1} f&&/^```sh/{p=1;next} p&&/^```/{exit} p' "$src/docs/physics.md" > cli.sh
cmd=$(grep '^medsynth phantom --kind brain' cli.sh) || fail "brain physics example not found in docs/physics.md"
PATH="$tmp/bin:$PATH" bash -euo pipefail cli.sh 2> cli.err || { cat cli.err; fail "the documented brain physics command"; }
[ -s brain_slices.h5 ] || fail "the documented brain physics command wrote no file"
args=${cmd#medsynth }
args=${args% -o brain_slices.h5}
[ "$args" != "${cmd#medsynth }" ] || fail "the documented command does not end in -o brain_slices.h5"
# shellcheck disable=SC2086
{
  "$ms" $args --threads 2 -o cli2.h5
  "$ms" $args --noise-free -o cli0.h5
  "$ms" $(echo "$args" | sed -e 's/--physics mr//; s/--coils [0-9]*//; s/--acceleration [0-9.]*//') --depth 1 --noise-free -o clinf.h5
} 2> runs.err || { cat runs.err; fail "brain physics runs"; }
/usr/bin/python3 - <<'PY'
import h5py, numpy as np

def ifft2c(x):
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))

f, g, z, nf = (h5py.File(x, "r") for x in ("brain_slices.h5", "cli2.h5", "cli0.h5", "clinf.h5"))
shapes = {"kspace": ((4, 4, 128, 128), np.complex64), "reconstruction_rss": ((4, 128, 128), np.float32),
          "reconstruction_zf": ((4, 128, 128), np.float32), "mask": ((4, 128), np.uint8),
          "sensitivity_maps": ((4, 128, 128), np.complex64), "images/brain": ((4, 1, 128, 128), np.float32),
          "masks/brain": ((4, 1, 128, 128), np.uint8), "masks/brain_aal": ((4, 1, 128, 128), np.uint8)}
for k, (shape, dt) in shapes.items():
    assert f[k].shape == shape and f[k].dtype == dt, (k, f[k].shape, f[k].dtype)
assert f.attrs["acquisition"] == "medsynth_brain_t2" and f.attrs["coils"] == 4, dict(f.attrs)
assert abs(f.attrs["noise_sd"] - 0.02) < 1e-12 and z.attrs["noise_sd"] == 0
assert len(f["masks/brain_aal"].attrs["label_table"]) > 1000
# the truth and its masks: the brain command's --noise-free slices
for k in ("images/brain", "masks/brain", "masks/brain_aal"):
    assert np.array_equal(f[k][...], nf[k][...]), k + " is not the --noise-free brain's"
truth = f["images/brain"][:, 0]
assert truth.max() > 0.5
# masks: round(W / R) columns; RSS and zero-filled images from the k-space
mask = f["mask"][...]
assert (mask.sum(axis=1) == 32).all(), mask.sum(axis=1)
k = f["kspace"][...]
rss = np.sqrt((np.abs(ifft2c(k)) ** 2).sum(axis=1))
assert np.abs(rss - f["reconstruction_rss"][...]).max() < 1e-4 * rss.max()
zf = np.sqrt((np.abs(ifft2c(k * mask[:, None, None, :])) ** 2).sum(axis=1))
assert np.abs(zf - f["reconstruction_zf"][...]).max() < 1e-4 * zf.max()
assert np.abs(z["reconstruction_rss"][...] - truth).max() < 1e-4 * truth.max()
assert np.abs(rss - truth).max() > 0.02, "no noise in the RSS image"
for key in shapes:
    assert np.array_equal(f[key][...], g[key][...]), "--threads changed " + key
print("brain --physics mr: layout, truth, RSS, masks and threads ok")
PY
clibad() { # expected-text args...
  local want=$1; shift
  rm -f clibad.h5
  if "$ms" phantom --kind brain -n 1 -o clibad.h5 "$@" 2> err.txt; then fail "accepted: $*"; fi
  grep -qF -- "$want" err.txt || { cat err.txt; fail "no \"$want\" for: $*"; }
  [ ! -e clibad.h5 ] || fail "partial file for: $*"
}
clibad '--physics: brain images are MR contrasts: CT physics does not apply (use --physics mr)' --physics ct --size 64 --spacing 3
clibad '--physics: --physics mr needs --modality t1, t2, flair or pd' --physics mr --modality ct --size 64 --spacing 3
clibad '--physics: acquisition physics works on 2-D slices' --physics mr --depth 4 --size 64 --spacing 3
clibad 'size: k-space needs an even number of pixels a side (2..8192), got 181 x 217' --physics mr
clibad '--physics writes HDF5 only (no --grid or --nifti)' --physics mr --size 64 --grid clibad.png
clibad 'acceleration' --physics mr --size 64 --spacing 3 --acceleration 0.5
echo "images_brain_mr: ok"
