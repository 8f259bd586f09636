"""Live parity check of the C generative core against PyTorch.

  /usr/bin/python3 models/reference/parity.py [--build build-dir]

1. Re-creates every fixture of make_golden.py with the PyTorch installed
   here, into a temporary folder, and compares it with the committed
   tests/golden/nn/ files (drift in the reference itself is reported).
2. Runs the C parity tests (test_nn, test_sample) against those fresh
   fixtures (MS_GOLDEN_DIR).
3. End to end through the `medsynth images` command: samples with the
   command, then re-runs the same sampler in PyTorch with the command's own
   keyed noise (Philox4x32-10 keyed by xxh64, Box-Muller, as
   gen/core/rng.c and docs/samplers.md define it, re-implemented below in
   NumPy), and compares the images after the intensity mapping.
Exits non-zero on any mismatch. Tolerance: 1e-3 relative to the tensor's max
abs value (end to end), as in the C tests.
"""

import argparse
import ctypes
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_golden  # noqa: E402
import medsynth_ref as R  # noqa: E402

SRC = os.path.normpath(os.path.join(HERE, "..", ".."))
TOL = 1e-3

_xx = ctypes.CDLL("libxxhash.so.0")
_xx.XXH64.restype = ctypes.c_uint64
_xx.XXH64.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]


def xxh64(b):
    return _xx.XXH64(b, len(b), 0)


def rng_key(seed, stream_name):
    stream = xxh64(stream_name.encode())
    h = xxh64(np.array([seed, stream], dtype="<u8").tobytes())
    return h & 0xFFFFFFFF, h >> 32


def philox(key, index, lane):
    """Philox4x32-10 blocks for arrays of counters (index: uint64 array)."""
    M0, M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
    mask = np.uint64(0xFFFFFFFF)
    idx = index.astype(np.uint64)
    c0 = idx & mask
    c1 = idx >> np.uint64(32)
    c2 = np.full_like(c0, lane & 0xFFFFFFFF)
    c3 = np.full_like(c0, lane >> 32)
    k0, k1 = key
    for _ in range(10):
        p0 = M0 * c0
        p1 = M1 * c2
        hi0, lo0 = p0 >> np.uint64(32), p0 & mask
        hi1, lo1 = p1 >> np.uint64(32), p1 & mask
        c0, c1, c2, c3 = hi1 ^ c1 ^ np.uint64(k0), lo1, hi0 ^ c3 ^ np.uint64(k1), lo0
        k0 = (k0 + 0x9E3779B9) & 0xFFFFFFFF
        k1 = (k1 + 0xBB67AE85) & 0xFFFFFFFF
    return c0, c1, c2, c3


def keyed_noise(seed, image, lane, n):
    """ms_sample_keyed_noise: ms_rng_normal_fill(key(seed, "images/noise"),
    image << 32, lane, out, n)."""
    key = rng_key(seed, "images/noise")
    pairs = (n + 1) // 2
    b0, b1, b2, b3 = philox(key, (np.uint64(image) << np.uint64(32)) + np.arange(pairs, dtype=np.uint64), lane)
    w0 = b0 | (b1 << np.uint64(32))
    w1 = b2 | (b3 << np.uint64(32))
    u1 = ((w0 >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0 ** -53
    u2 = ((w1 >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0 ** -53
    r = np.sqrt(-2.0 * np.log(u1))
    th = 2.0 * np.pi * u2
    z = np.empty(2 * pairs)
    z[0::2] = r * np.cos(th)
    z[1::2] = r * np.sin(th)
    return z[:n].astype(np.float32)


def rel_err(got, want):
    scale = max(float(np.abs(want).max()), 1e-3)
    return float(np.abs(got.astype(np.float64) - want).max()) / scale


def compare_fixtures(fresh, committed):
    worst, bad = 0.0, []

    def visit(name, obj):
        nonlocal worst
        if not isinstance(obj, h5py.Dataset):
            return
        with h5py.File(fresh, "r") as f:
            if name not in f:
                bad.append("%s: missing in fresh fixture" % name)
                return
            a = f[name][...]
        b = obj[...]
        if a.shape != b.shape:
            bad.append("%s: shape %s vs %s" % (name, a.shape, b.shape))
            return
        e = rel_err(a, b)
        worst = max(worst, e)
        if e > 1e-4:
            bad.append("%s: fresh PyTorch differs from the committed fixture by %.3g" % (name, e))

    with h5py.File(committed, "r") as g:
        g.visititems(visit)
    return worst, bad


def cli_case(ms, tmp, model, args, sampler, steps, eta, guidance, cls, n, seed):
    out = os.path.join(tmp, "cli_%s_%s.h5" % (os.path.basename(model)[:-3], sampler))
    cmd = [ms, "images", "--model", model, "-n", str(n), "--seed", str(seed), "-o", out, "--force"] + args
    subprocess.run(cmd, check=True)
    with h5py.File(model, "r") as f:
        cfg = __import__("json").loads(f.attrs["config"])
    m = R.build(cfg)
    with h5py.File(model, "r") as f:
        m.load_state_dict({k: torch.from_numpy(f[k][...]) for k in m.state_dict()})
    m.eval()
    with h5py.File(out, "r") as f:
        got = f["images/image"][...]
        labels = f["images/image_labels"][...] if "images/image_labels" in f else None
    S, C = cfg["image_size"], cfg["image_channels"]
    item = C * S * S
    if cfg["architecture"] == "vae":
        L = len(cfg["channels"])
        s = S >> (L - 1)
        zi = cfg["latent_channels"] * s * s
        z = np.stack([keyed_noise(seed, i, 0, zi) for i in range(n)]).reshape(n, -1, s, s)
        with torch.no_grad():
            want = m.decode(torch.from_numpy(z)).numpy()
    else:
        x_T = np.stack([keyed_noise(seed, i, 0, item) for i in range(n)]).reshape(n, C, S, S)
        y = torch.from_numpy(labels.astype(np.int64)) if labels is not None else None
        if cls is not None:
            assert (labels == cls).all()

        def noise(i):
            return torch.from_numpy(np.stack([keyed_noise(seed, j, i + 1, item) for j in range(n)]).reshape(n, C, S, S))

        traj = R.sample(m, cfg, torch.from_numpy(x_T), sampler, steps, eta, y, guidance, noise)
        want = traj[-1].numpy()
    want = want * cfg["intensity"]["scale"] + cfg["intensity"]["offset"]
    return rel_err(got, want)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(SRC, "build-nn"), help="CMake build folder")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        # 1. Fresh fixtures vs committed ones.
        for case, spec in make_golden.CASES.items():
            make_golden.make_case(tmp, case, spec)
            worst, bad = compare_fixtures(os.path.join(tmp, case + "_golden.h5"),
                                          os.path.join(SRC, "tests", "golden", "nn", case + "_golden.h5"))
            print("fixture %-10s fresh vs committed: worst %.3g" % (case, worst))
            failures += bad
        # 2. C tests against the fresh fixtures.
        env = dict(os.environ, MS_GOLDEN_DIR=tmp)
        for t in ("test_nn", "test_sample"):
            exe = os.path.join(a.build, t)
            r = subprocess.run([exe], env=env, cwd=tmp, capture_output=True, text=True)
            for line in r.stdout.splitlines():
                if "error" in line and ("end-to-end" in line or "worst" in line):
                    print("  " + line)
            print("%s against fresh fixtures: %s" % (t, "ok" if r.returncode == 0 else "FAILED"))
            if r.returncode:
                failures.append("%s failed:\n%s%s" % (t, r.stdout[-3000:], r.stderr[-3000:]))
        # 3. End to end through the command, with the command's own noise.
        ms = os.path.join(a.build, "medsynth")
        g = lambda n: os.path.join(tmp, n)
        cases = [
            (g("unet_eps.h5"), ["--sampler", "ddim", "--steps", "6", "--eta", "0.5", "--batch", "2"],
             "ddim", 6, 0.5, 1.0, None, 3, 11),
            (g("unet_eps.h5"), ["--sampler", "ddpm", "--steps", "5"], "ddpm", 5, 0.0, 1.0, None, 2, 12),
            (g("unet_cond.h5"), ["--sampler", "dpmpp", "--steps", "7", "--guidance", "2.5", "--class", "2"],
             "dpmpp", 7, 0.0, 2.5, 2, 3, 13),
            (g("unet_cond.h5"), ["--sampler", "ddim", "--steps", "5", "--threads", "2"],
             "ddim", 5, 0.0, 1.0, None, 4, 14),
            (g("vae.h5"), [], "vae", 0, 0.0, 1.0, None, 3, 15),
        ]
        for model, args, sampler, steps, eta, guidance, cls, n, seed in cases:
            e = cli_case(ms, tmp, model, args, sampler, steps, eta, guidance, cls, n, seed)
            ok = e <= TOL
            print("medsynth images %-13s %-5s vs PyTorch with the same keyed noise: rel error %.3g %s"
                  % (os.path.basename(model), sampler, e, "ok" if ok else "MISMATCH"))
            if not ok:
                failures.append("medsynth images %s %s: %.3g" % (model, sampler, e))
    if failures:
        print("\nFAILED:\n" + "\n".join(failures))
        return 1
    print("parity: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
