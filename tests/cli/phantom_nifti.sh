#!/usr/bin/env bash
# NIfTI round trip through nibabel: shape, affine, voxel sizes and data of
# the .nii.gz files equal the HDF5 datasets written in the same run.
set -euo pipefail
ms=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$ms" phantom --kind head --modality t2 --size 48 --height 40 --depth 24 --slice-mm 2.5 -n 2 --seed 3 \
  --lesions 1 --lesion-size 10:14 -o "$tmp/h.h5" --nifti "$tmp/nii"
"$ms" phantom --kind chest --size 64 -n 1 --seed 3 -o "$tmp/c.h5" --nifti "$tmp/nii2"
/usr/bin/python3 - "$tmp" <<'PY'
import sys, gzip, h5py, numpy as np, nibabel as nib
t = sys.argv[1]
def check(h5, name, folder, n, dz):
    with h5py.File(h5, "r") as f:
        imgs = f["/images/" + name][:]
        masks = f["/masks/" + name][:]
        sx = f["/images/" + name].attrs["spacing_x_mm"]
    for i in range(n):
        im = nib.load(f"{folder}/image_{i:05d}.nii.gz")
        mk = nib.load(f"{folder}/mask_{i:05d}.nii.gz")
        ref = imgs[i, 0]
        if ref.ndim == 2:
            ref = ref[None]
        D, H, W = ref.shape
        exp_shape = (W, H, D) if D > 1 else (W, H)
        assert im.shape == exp_shape, (im.shape, exp_shape)
        assert mk.shape == exp_shape
        zooms = im.header.get_zooms()
        assert np.allclose(zooms[:2], (sx, sx), rtol=1e-6), zooms
        if D > 1:
            assert abs(zooms[2] - dz) < 1e-6, zooms
        # the loaded image's header has offset/scaling consumed; read the raw one
        with gzip.open(f"{folder}/image_{i:05d}.nii.gz") as g:
            hdr = nib.Nifti1Header.from_fileobj(g)
        assert hdr["sizeof_hdr"] == 348 and hdr["vox_offset"] == 352, (hdr["sizeof_hdr"], hdr["vox_offset"])
        assert hdr["scl_slope"] == 1 and hdr["scl_inter"] == 0
        assert im.dataobj.offset == 352
        assert hdr["magic"] == b"n+1" and hdr["qform_code"] == 1 and hdr["sform_code"] == 1
        assert hdr.get_xyzt_units()[0] == "mm"
        assert hdr.get_data_dtype() == np.float32 and mk.header.get_data_dtype() == np.uint8
        sz = dz if D > 1 else sx  # a slice is as thick as its pixels are wide
        A = np.array([[-sx, 0, 0, sx * (W - 1) / 2], [0, -sx, 0, sx * (H - 1) / 2],
                      [0, 0, sz, -sz * (D - 1) / 2], [0, 0, 0, 1]])
        assert np.allclose(im.affine, A, atol=1e-4), (im.affine, A)
        assert np.allclose(im.get_qform(), A, atol=1e-4)
        assert np.allclose(mk.affine, A, atol=1e-4)
        data = np.asanyarray(im.dataobj)
        mdata = np.asanyarray(mk.dataobj)
        if data.ndim == 2:
            data, mdata = data[..., None], mdata[..., None]
        # NIfTI (i, j, k) = (column, row, plane)
        assert np.array_equal(data.transpose(2, 1, 0), ref), "image data differ"
        assert mdata.dtype == np.uint8 and np.array_equal(mdata.transpose(2, 1, 0), masks[i, 0].reshape(ref.shape))
        assert (mdata >= 100).any() or name == "chest"
check(f"{t}/h.h5", "head", f"{t}/nii", 2, 2.5)
check(f"{t}/c.h5", "chest", f"{t}/nii2", 1, 0)
print("nifti round trip ok")
PY
