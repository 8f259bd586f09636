#!/usr/bin/python3
"""Trains medsynth's default image models on real 64x64 MRI slices.

Two models, both defined by models/reference/medsynth_ref.py (the PyTorch
reference the C sampler is checked against) and written with
models/reference/export_model.py (the HDF5 model format, docs/model-format.md):

  unet  class-conditional diffusion UNet (9 classes = orientation x position
        tercile, plus the null class num_classes for classifier-free guidance;
        the label is replaced by the null class with probability --p-uncond),
        cosine schedule, eps or v prediction, MSE loss, AdamW with linear
        warmup, EMA of the weights (the EMA is what is exported).
  vae   convolutional VAE, L1 reconstruction + beta * KL; the KL is summed
        over latent elements and divided by the number of pixels, so that
        beta weighs it against the per-pixel L1.

Data: the HDF5 file written by models/data/prepare_mri.py (/train/images in
[0, 1], /train/labels). Images are mapped to [-1, 1] for training (x*2-1);
the exported config's "intensity" mapping {scale 0.5, offset 0.5} maps model
outputs back to normalised T1 units (1 = 99.5th percentile of the brain).

Augmentation (the data is one brain, a few hundred slices): rotation
uniform in +-rot degrees, isotropic scale in 1+-scale, left/right flip with
probability 1/2 for axial and coronal slices only (sagittal slices have
anterior/posterior on the horizontal axis, and a flip would make an
anatomically wrong image), intensity gain in 1+-gain. Geometry is resampled
bilinearly with zero (background) padding in [0, 1] units.

Invariants: training is seeded (--seed) but not bit-reproducible across
thread counts (PyTorch CPU reductions). A checkpoint (model, EMA, optimiser,
step, RNG states) and an exported .h5 are written every --ckpt-every seconds
and at the end, atomically (temp file + rename), so an interrupted run still
leaves a usable model; --resume continues from the checkpoint. The loss log is
JSON lines (step, loss, lr, seconds).

Usage (see models/README.md):
  /usr/bin/python3 models/train.py unet --data /tmp/mri/slices64.h5 \
      --minutes 48 --workdir /tmp/mri/unet -o models/mri_unet64.h5
  /usr/bin/python3 models/train.py vae --data /tmp/mri/slices64.h5 \
      --minutes 20 --workdir /tmp/mri/vae -o models/mri_vae64.h5
"""

import argparse
import json
import math
import os
import sys
import time

import h5py
import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "reference"))
import medsynth_ref as R  # noqa: E402
from export_model import save_model  # noqa: E402

CLASS_NAMES = ["axial-low", "axial-mid", "axial-high", "coronal-low", "coronal-mid",
               "coronal-high", "sagittal-low", "sagittal-mid", "sagittal-high"]
INTENSITY = {"scale": 0.5, "offset": 0.5,
             "unit": "T1 / brain p99.5"}
LICENCE = ("weights: CC-BY-4.0 (medsynth project); training data: Colin27 T1 brain "
           "(ch2bet.nii.gz) from Debian mricron-data, BSD-3-clause (MRIcron licence, "
           "/usr/share/doc/mricron-data/copyright)")


def load_data(path, split="train"):
    with h5py.File(path, "r") as f:
        x = torch.from_numpy(f[split + "/images"][...].astype(np.float32))
        y = torch.from_numpy(f[split + "/labels"][...].astype(np.int64))
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    return x, y, attrs


def training_data_text(attrs, n_train):
    return ("%s; sha256 %s; %d training slices of 64x64 (prepare_mri.py: brain bounding box, "
            "square pad, area resampling, intensity / p99.5 clipped to [0,1]; every 5th slice per "
            "orientation held out); a single subject" %
            (attrs.get("source", "?"), attrs.get("source_sha256_t1", "?"), n_train))


def augment(x, y, g, rot_deg, scale, gain):
    """x in [0,1], (N,1,H,W); returns augmented x in [0,1]."""
    n = x.shape[0]
    ang = (torch.rand(n, generator=g) * 2 - 1) * math.radians(rot_deg)
    s = 1 + (torch.rand(n, generator=g) * 2 - 1) * scale
    flip = (torch.rand(n, generator=g) < 0.5) & (y < 6)  # axial, coronal only
    sx = torch.where(flip, -1.0, 1.0)
    cos, sin = torch.cos(ang) / s, torch.sin(ang) / s
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = cos * sx
    theta[:, 0, 1] = -sin
    theta[:, 1, 0] = sin * sx
    theta[:, 1, 1] = cos
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    k = 1 + (torch.rand(n, 1, 1, 1, generator=g) * 2 - 1) * gain
    return (out * k).clamp(0, 1)


class EMA:
    def __init__(self, model, decay):
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model, step):
        d = min(self.decay, (1 + step) / (10 + step))
        for k, v in model.state_dict().items():
            self.shadow[k].mul_(d).add_(v.detach(), alpha=1 - d)


def build_cfg(a):
    if a.model == "unet":
        return R.unet_config(
            image_size=64, image_channels=1, channels=a.channels, blocks_per_level=a.blocks,
            attention_resolutions=a.attn, heads=a.heads, groups=a.groups, norm_eps=1e-5,
            downsample="conv", num_classes=9, prediction=a.prediction,
            schedule={"type": "cosine", "T": 1000}, intensity=INTENSITY)
    return R.vae_config(
        image_size=64, image_channels=1, channels=a.channels, blocks_per_level=a.blocks,
        latent_channels=a.latent_channels, heads=1, groups=a.groups, norm_eps=1e-6,
        intensity=INTENSITY)


def atomic_torch_save(obj, path):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def export(a, cfg, model, ema, attrs, n_train, step, seconds):
    m = R.build(cfg)
    m.load_state_dict(ema.shadow if ema is not None else model.state_dict())
    m.eval()
    if a.model == "unet":
        desc = ("class-conditional diffusion UNet, 64x64 T1 brain MRI slices; classes %s; "
                "null class 9 (classifier-free guidance); %s prediction, cosine schedule T=1000; "
                "EMA weights after %d steps (%.0f s)" %
                (", ".join("%d=%s" % (i, c) for i, c in enumerate(CLASS_NAMES)), cfg["prediction"],
                 step, seconds))
    else:
        desc = ("VAE, 64x64 T1 brain MRI slices, latent %dx%dx%d, sample z ~ N(0, I); "
                "after %d steps (%.0f s)" %
                (cfg["latent_channels"], 64 >> (len(cfg["channels"]) - 1),
                 64 >> (len(cfg["channels"]) - 1), step, seconds))
    tmp = a.output + ".tmp"
    save_model(tmp, m, cfg, description=desc, training_data=training_data_text(attrs, n_train),
               licence=LICENCE)
    os.replace(tmp, a.output)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("model", choices=["unet", "vae"])
    ap.add_argument("--data", required=True, help="HDF5 from models/data/prepare_mri.py")
    ap.add_argument("-o", "--output", required=True, help="exported model (.h5)")
    ap.add_argument("--workdir", required=True, help="checkpoint and loss log directory")
    ap.add_argument("--minutes", type=float, default=40.0, help="wall-clock training budget")
    ap.add_argument("--max-steps", type=int, default=10 ** 9)
    ap.add_argument("--batch", type=int, default=None, help="default 8 (unet), 16 (vae)")
    ap.add_argument("--lr", type=float, default=None, help="default 4e-4 (unet), 1e-3 (vae)")
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--ema", type=float, default=0.995)
    ap.add_argument("--channels", type=json.loads, default=None,
                    help="JSON list; default [16,32,96,96] (unet), [16,32,64,64] (vae)")
    ap.add_argument("--blocks", type=int, default=None, help="default 1")
    ap.add_argument("--attn", type=json.loads, default=[16])
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--groups", type=int, default=8)
    ap.add_argument("--prediction", choices=["eps", "v"], default="v")
    ap.add_argument("--p-uncond", type=float, default=0.15)
    ap.add_argument("--latent-channels", type=int, default=8)
    ap.add_argument("--beta", type=float, default=0.05, help="VAE KL weight")
    ap.add_argument("--rot", type=float, default=5.0)
    ap.add_argument("--scale-jitter", type=float, default=0.05)
    ap.add_argument("--gain", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1 was faster than 2 on a loaded 2-core machine)")
    ap.add_argument("--ckpt-every", type=float, default=300.0, help="seconds")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--bench", type=int, default=0, help="time N steps, print it/s, exit")
    a = ap.parse_args(argv)
    if a.channels is None:
        a.channels = [16, 32, 96, 96] if a.model == "unet" else [16, 32, 64, 64]
    if a.blocks is None:
        a.blocks = 1
    if a.batch is None:
        a.batch = 8 if a.model == "unet" else 16
    if a.lr is None:
        a.lr = 4e-4 if a.model == "unet" else 1e-3

    torch.set_num_threads(a.threads)
    # Flush subnormal floats to zero: x86 arithmetic on subnormals is one to
    # two orders of magnitude slower, and they can appear in small gradients
    # and Adam moments; a safeguard (no effect on values above 1.2e-38).
    torch.set_flush_denormal(True)
    torch.manual_seed(a.seed)
    g = torch.Generator().manual_seed(a.seed)
    os.makedirs(a.workdir, exist_ok=True)
    x_all, y_all, attrs = load_data(a.data)
    n_train = x_all.shape[0]
    cfg = build_cfg(a)
    model = R.build(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    print("%s: %d parameters, %d training slices, config %s" %
          (a.model, n_params, n_train, R.config_json(cfg)), file=sys.stderr, flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.weight_decay)
    ema = EMA(model, a.ema) if a.model == "unet" else None
    ab = torch.tensor(R.alphas_cumprod(cfg["schedule"]), dtype=torch.float64) \
        if a.model == "unet" else None
    ckpt_path = os.path.join(a.workdir, "checkpoint.pt")
    log_path = os.path.join(a.workdir, "loss.jsonl")
    step, elapsed = 0, 0.0
    if a.resume and os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        if ema is not None:
            ema.shadow = ck["ema"]
        step, elapsed = ck["step"], ck["elapsed"]
        g.set_state(ck["gen"])
        torch.set_rng_state(ck["torch_rng"])
        print("resumed at step %d (%.0f s)" % (step, elapsed), file=sys.stderr)
        # Drop log lines written after the checkpoint (an interrupted run).
        if os.path.exists(log_path):
            keep = [ln for ln in open(log_path) if ln.strip() and json.loads(ln)["step"] <= step]
            with open(log_path + ".tmp", "w") as f:
                f.writelines(keep)
            os.replace(log_path + ".tmp", log_path)
    elif not a.bench:
        open(log_path, "w").close()

    def save_all():
        atomic_torch_save({"model": model.state_dict(), "opt": opt.state_dict(),
                           "ema": ema.shadow if ema is not None else None, "step": step,
                           "elapsed": elapsed, "gen": g.get_state(),
                           "torch_rng": torch.get_rng_state(), "cfg": cfg, "args": vars(a)},
                          ckpt_path)
        export(a, cfg, model, ema, attrs, n_train, step, elapsed)

    budget = a.minutes * 60.0
    t_start = time.time() - elapsed
    last_ckpt = time.time()
    logf = None if a.bench else open(log_path, "a")
    model.train()
    bench_t0 = None
    while step < a.max_steps and elapsed < budget:
        if a.bench and step == 2:
            bench_t0 = time.time()
        idx = torch.randint(0, n_train, (a.batch,), generator=g)
        x0 = augment(x_all[idx], y_all[idx], g, a.rot, a.scale_jitter, a.gain) * 2 - 1
        lr = a.lr * min(1.0, (step + 1) / a.warmup)
        for pg in opt.param_groups:
            pg["lr"] = lr
        if a.model == "unet":
            y = y_all[idx].clone()
            y[torch.rand(a.batch, generator=g) < a.p_uncond] = 9
            t = torch.randint(0, len(ab), (a.batch,), generator=g)
            abt = ab[t].float()[:, None, None, None]
            eps = torch.randn(x0.shape, generator=g)
            xt = abt.sqrt() * x0 + (1 - abt).sqrt() * eps
            target = eps if a.prediction == "eps" else abt.sqrt() * eps - (1 - abt).sqrt() * x0
            out = model(xt, t.float(), y)
            loss = F.mse_loss(out, target)
            parts = {}
        else:
            mean, logvar = model.encode(x0)
            logvar = logvar.clamp(-30, 20)
            z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=g)
            rec = model.decode(z)
            l1 = (rec - x0).abs().mean()
            kl = 0.5 * (mean ** 2 + logvar.exp() - 1 - logvar).sum() / x0.numel()
            loss = l1 + a.beta * kl
            parts = {"l1": l1.item(), "kl_per_pixel": kl.item()}
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if ema is not None:
            ema.update(model, step)
        step += 1
        elapsed = time.time() - t_start
        if a.bench:
            if step == a.bench + 2:
                dt = time.time() - bench_t0
                print("%s batch %d: %.3f it/s (%.3f s/it), %d params" %
                      (a.model, a.batch, a.bench / dt, dt / a.bench, n_params))
                return
            continue
        rec_ = {"step": step, "loss": loss.item(), "lr": lr, "seconds": round(elapsed, 2)}
        rec_.update(parts)
        logf.write(json.dumps(rec_) + "\n")
        if step % 50 == 0:
            logf.flush()
            print(json.dumps(rec_), file=sys.stderr, flush=True)
        if time.time() - last_ckpt >= a.ckpt_every:
            logf.flush()
            save_all()
            last_ckpt = time.time()
    logf.close()
    save_all()
    print("done: %d steps, %.0f s; wrote %s" % (step, elapsed, a.output), file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
