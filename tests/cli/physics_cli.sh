#!/usr/bin/env bash
# medsynth phantom --physics end to end (docs/physics.md): the documented
# commands, the CT and MR file layouts read with h5py as a fastMRI loader
# reads them, the physics checked from the files (full-dose noise below
# low-dose noise, RSS recomputed from k-space with numpy's FFT, masks with
# the requested acceleration and centre), byte-identical arrays for 1 and 2
# threads, and refusals of bad input (non-zero exit, located message, no
# file).
set -euo pipefail
ms=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$tmp"
"$(dirname "$ms")/example_physics_basic" "$tmp" > example.txt
grep -q "^CT: 360 views" example.txt && grep -q "^MR: 8 coils, 48 of 192 columns sampled" example.txt && [ -s physics_ct.png ] && [ -s physics_mr.png ] ||
  { cat example.txt; fail "example_physics_basic"; }
# --- commands from docs/physics.md ---
"$ms" phantom --kind chest --physics ct --dose 25 --full-dose 100 --views 360 --filter shepp-logan -n 4 --size 128 -o ct.h5
"$ms" phantom --kind chest --physics ct --geometry fan --views 720 --dose 10 -n 2 --size 128 -o fan.h5
"$ms" phantom --kind head --modality t2 --physics mr --coils 8 --acceleration 4 --center-fraction 0.08 --mask random -n 4 --size 128 -o mr.h5
# Super-resolution pairs: 64 x 64 images (k-space centre; FBP on a coarser grid) beside the 128 x 128 truth
"$ms" phantom --kind head --modality t1 --physics mr --lowres 2 -n 2 --size 128 -o sr.h5
"$ms" phantom --kind chest --physics ct --dose 100 --lowres 2 -n 2 --size 128 -o ctsr.h5
# Beam hardening: polychromatic water/bone beam, water-precorrected reconstructions
"$ms" phantom --kind chest --physics ct --beam-hardening on -n 2 --size 128 -o bh.h5
# partial Fourier 5/8 with R = 2: 40 of 128 columns sampled, none from column 80 on
"$ms" phantom --kind head --modality t1 --physics mr --acceleration 2 --partial-fourier 0.625 -n 2 --size 128 -o pf.h5
# --- end ---
/usr/bin/python3 - <<'PY' || fail "partial Fourier"
import h5py, json, numpy as np
with h5py.File("pf.h5") as f:
    m = f["mask"][:]
    assert m.shape == (2, 128), m.shape
    assert (m.sum(axis=1) == 40).all() and not m[:, 80:].any() and m[:, 60:68].all(), m
    assert f.attrs["partial_fourier"] == 0.625 and json.loads(f.attrs["invocation"])["partial-fourier"] == 0.625
PY
"$ms" phantom --kind head --modality t1 --physics mr --lowres 2 -n 2 --size 128 --noise-free -o sr0.h5
"$ms" phantom --kind chest --physics ct --dose 25 --full-dose 100 --views 360 --filter shepp-logan -n 4 --size 128 -o ct2.h5 --threads 2
"$ms" phantom --kind head --modality t2 --physics mr --coils 8 --acceleration 4 --center-fraction 0.08 --mask random -n 4 --size 128 -o mr2.h5 --threads 2

/usr/bin/python3 - <<'PY'
import h5py, numpy as np

def same(a, b, names):
    with h5py.File(a) as f, h5py.File(b) as g:
        for n in names:
            assert np.array_equal(f[n][:], g[n][:]), "threads changed " + n

with h5py.File("ct.h5") as f:
    lo, full, truth = f["/images/chest"][:], f["/images/chest_full_dose"][:], f["/images/chest_truth"][:]
    sino = f["/raw/chest_sinogram"]
    assert lo.shape == full.shape == truth.shape == f["/masks/chest"].shape == (4, 1, 128, 128)
    assert sino.shape[:3] == (4, 1, 360) and sino.dtype == np.float32
    assert sino.attrs["photons_per_ray"] == 2000 * 25 and sino.attrs["full_dose_photons_per_ray"] == 2000 * 100
    # Noise inside the heart (muscle and chambers, labels 12 and 22-25,
    # eroded by 3 pixels, away from edge blur): the low-dose image strays
    # further from the truth than the full-dose one. Both also carry the
    # reconstruction error of the lungs' pixel-sized vessels and airway
    # walls (streaks of unresolved high-contrast detail), which does not
    # shrink with dose, so the ratio stays well below the noise ratio of 2.
    mk = f["/masks/chest"][:]
    m = (mk == 12) | ((mk >= 22) & (mk <= 25))
    for _ in range(3):
        m = m & np.roll(m, 1, -1) & np.roll(m, -1, -1) & np.roll(m, 1, -2) & np.roll(m, -1, -2)
    d_lo, d_full = (lo - truth)[m], (full - truth)[m]
    assert m.sum() > 500 and d_lo.std() > 1.15 * d_full.std(), (m.sum(), d_lo.std(), d_full.std())
    # Air outside the body reconstructs near -1000 HU, water-like tissue near its value.
    assert abs(np.median(full[f["/masks/chest"][:] == 0]) + 1000) < 30
with h5py.File("fan.h5") as f:
    assert f["/raw/chest_sinogram"].shape[2] == 720 and f["/raw/chest_sinogram"].attrs["geometry"] in (b"fan", "fan")
same("ct.h5", "ct2.h5", ["/images/chest", "/images/chest_full_dose", "/images/chest_truth", "/raw/chest_sinogram"])

# A loader written for fastMRI's multi-coil files (fastmri.data.mri_data
# SliceDataset: kspace[slice], attrs max/norm/acquisition/patient_id,
# reconstruction_rss[slice]; fastmri.fft2c / ifft2c with norm="ortho").
def ifft2c(k):
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
with h5py.File("mr.h5") as hf:
    n_slices = hf["kspace"].shape[0]
    attrs = dict(hf.attrs)
    for key in ("acquisition", "max", "norm", "patient_id"):
        assert key in attrs, key
    assert hf["kspace"].dtype == np.complex64 and hf["kspace"].shape == (4, 8, 128, 128)
    rss_all = hf["reconstruction_rss"][:]
    assert abs(attrs["max"] - rss_all.max()) < 1e-3 * rss_all.max()
    assert abs(attrs["norm"] - np.linalg.norm(rss_all)) < 1e-4 * attrs["norm"]
    for s in range(n_slices):
        k = hf["kspace"][s]
        target = hf["reconstruction_rss"][s]
        rss = np.sqrt((np.abs(ifft2c(k)) ** 2).sum(0))
        assert np.abs(rss - target).max() < 1e-4 * target.max()
        mask = hf["mask"][s].astype(bool)
        assert mask.sum() == round(128 / 4)
        nc = round(128 * 0.08); pad = (128 - nc + 1) // 2
        assert mask[pad:pad + nc].all()
        zf = np.sqrt((np.abs(ifft2c(k * mask[None, None, :])) ** 2).sum(0))
        assert np.abs(zf - hf["reconstruction_zf"][s]).max() < 1e-4 * target.max()
    S = hf["sensitivity_maps"][:]
    assert np.abs((np.abs(S) ** 2).sum(0) - 1).max() < 1e-5
with h5py.File("sr.h5") as f:
    assert f["/reconstruction_lowres"].shape == (2, 64, 64) and f["/reconstruction_lowres"].dtype == np.float32
with h5py.File("ctsr.h5") as f:
    lo, truth = f["/images/chest_lowres"][:], f["/images/chest_truth"][:]
    assert lo.shape == (2, 1, 64, 64) and f["/images/chest_lowres"].attrs["spacing_x_mm"] == 2 * 440 / 128
    block = truth.reshape(2, 1, 64, 2, 64, 2).mean((3, 5))
    assert np.sqrt(((lo - block) ** 2).mean()) < 40  # HU; edges blur (measured 16)
with h5py.File("bh.h5") as f, h5py.File("ctsr.h5") as g:
    # beam hardening on: recorded, and the reconstructions still the chest's (HU)
    assert "water" in f["/raw/chest_sinogram"].attrs["beam_hardening"]
    assert "beam_hardening" not in g["/raw/chest_sinogram"].attrs
    rec, truth = f["/images/chest_full_dose"][:], f["/images/chest_truth"][:]
    body = truth > -500
    assert abs(np.median(rec[body] - truth[body])) < 30, np.median(rec[body] - truth[body])
with h5py.File("sr0.h5") as f:
    # Without noise: the truth's intensity scale (truncation ringing, made
    # positive by the magnitude, lifts the mean a few per cent; measured 4.5).
    lo, truth = f["/reconstruction_lowres"][:], f["/images/head"][:]
    assert abs(lo.mean() / truth.mean() - 1) < 0.08, (lo.mean(), truth.mean())
same("mr.h5", "mr2.h5", ["/kspace", "/reconstruction_rss", "/reconstruction_zf", "/mask", "/images/head"])
print("physics files ok")
PY

bad() { # expected-text args...
  local want=$1; shift
  rm -f bad.h5
  if "$ms" phantom --kind head --size 64 -n 2 -o bad.h5 "$@" 2> err.txt; then fail "accepted: $*"; fi
  grep -q -- "$want" err.txt || { cat err.txt; fail "no \"$want\" for: $*"; }
  [ ! -e bad.h5 ] || fail "partial file for: $*"
}
bad "dose" --physics ct --dose 0
bad "dose" --physics ct --dose -5
bad "views" --physics ct --views 20000
bad "sod_mm" --physics ct --geometry fan --sod 100
bad "acceleration" --physics mr --modality t1 --acceleration 0.5
bad "center_fraction" --physics mr --modality t1 --center-fraction 1.5
bad "center_fraction" --physics mr --modality t1 --center-fraction 0
bad "coils" --physics mr --modality t1 --coils 0
bad "partial_fourier" --physics mr --modality t1 --partial-fourier 0.5
bad "partial_fourier" --physics mr --modality t1 --partial-fourier 1.2
bad "lowres" --physics mr --modality t1 --lowres 3
bad "lowres" --physics ct --lowres 3
bad "needs --modality" --physics mr
bad "invalid value" --physics pet
bad "2-D" --physics ct --depth 8
echo "phantom --physics: layouts, physics, threads and refusals ok"
