#!/usr/bin/python3
"""Quality figures for medsynth's default image models (mri_unet64.h5, mri_vae64.h5).

Loads the exported HDF5 models (not training checkpoints), so it measures
exactly what ships. Samples:
  UNet: DDIM (eta 0) with classifier-free guidance, --per-class images for
        each of the 9 classes, through medsynth_ref.sample (the reference the
        C sampler is checked against).
  VAE:  decoder(z), z ~ N(0, I), the same total count.
Model outputs are mapped with the config's intensity mapping (x * scale +
offset) to normalised T1 units and clipped to [0, 1], the scale of the data.

Figures (written to --json, with PNGs under --figdir):
  memorisation: for each image the L2 distance (64x64 pixels, [0,1] units)
    to its nearest training slice. References: holdout->train (real slices
    never trained on; each is 1 mm from a training slice, so this is the
    distance of a genuinely new but very close view of the same brain) and
    train->train excluding itself. A generated image is flagged as a near
    copy when its distance is below the 5th percentile of holdout->train
    distances: a held-out slice falls below it 5% of the time by
    construction, so a flagged fraction well above 5% means the model
    reproduces training slices more closely than new real slices resemble
    them.
  distribution: Wasserstein-1 between pooled pixel intensities, and the
    unbiased squared MMD with a Gaussian kernel on 16x16 area-downsampled
    images (bandwidth: median pairwise distance of the held-out slices),
    each against the held-out slices; next to the baselines "noise" (i.i.d.
    Gaussian pixels with the training set's mean and SD), "mean+noise" (the
    mean training image plus Gaussian noise with the per-pixel training SD)
    and "train" (real training slices, the floor). Every set has the same
    size as the generated set and fixed seeds.

C samples (`medsynth images ... -o c.h5`) are evaluated the same way with
--c-samples c_unet=c0.h5,c1.h5,... (images sorted by class, the first
9*per-class kept).

Usage:
  /usr/bin/python3 models/evaluate_models.py --data /tmp/mri/slices64.h5 \
      --unet models/mri_unet64.h5 --vae models/mri_vae64.h5 \
      --unet-log /tmp/mri/unet/loss.jsonl --vae-log /tmp/mri/vae/loss.jsonl \
      --figdir models/cards --json models/cards/quality.json
"""

import argparse
import json
import os
import sys
import time

import h5py
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from scipy.stats import wasserstein_distance  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "reference"))
import medsynth_ref as R  # noqa: E402
from export_model import read_model  # noqa: E402

CLASS_NAMES = ["axial-low", "axial-mid", "axial-high", "coronal-low", "coronal-mid",
               "coronal-high", "sagittal-low", "sagittal-mid", "sagittal-high"]


def load_model(path):
    cfg, state, _ = read_model(path)
    m = R.build(cfg)
    m.load_state_dict(state)
    m.eval()
    return m, cfg


def to_unit(cfg, x):
    it = cfg.get("intensity", {"scale": 1.0, "offset": 0.0})
    return (x * it["scale"] + it["offset"]).clamp(0, 1)


def sample_unet(path, per_class, steps, guidance, seed):
    m, cfg = load_model(path)
    y = torch.arange(9).repeat_interleave(per_class)
    g = torch.Generator().manual_seed(seed)
    xT = torch.randn((len(y), 1, 64, 64), generator=g)
    t0 = time.time()
    traj = R.sample(m, cfg, xT, sampler="ddim", steps=steps, eta=0.0, y=y, guidance=guidance)
    dt = time.time() - t0
    return to_unit(cfg, traj[-1]).numpy()[:, 0], y.numpy(), dt, cfg


def sample_vae(path, per_class, seed):
    """per_class samples of each of the 9 classes (learned prior) or 9*per_class
    from N(0, I); returns images, labels (None without classes), model, config."""
    m, cfg = load_model(path)
    n = 9 * per_class
    g = torch.Generator().manual_seed(seed)
    e = torch.randn((n, R.prior_noise_floats(cfg)), generator=g)
    y = torch.arange(9).repeat_interleave(per_class) if cfg.get("num_classes", 0) == 9 else None
    with torch.no_grad():
        x = m.decode(m.prior_latent(e, y))
    return to_unit(cfg, x).numpy()[:, 0], (None if y is None else y.numpy()), m, cfg


def vae_recon_l1(m, cfg, x01):
    with torch.no_grad():
        xin = torch.from_numpy(x01[:, None]) * 2 - 1
        mean, _ = m.encode(xin)
        rec = to_unit(cfg, m.decode(mean)).numpy()[:, 0]
    return float(np.abs(rec - x01).mean())


def nn_dist(a, b, exclude_self=False):
    a2 = a.reshape(len(a), -1).astype(np.float64)
    b2 = b.reshape(len(b), -1).astype(np.float64)
    d2 = (a2 ** 2).sum(1)[:, None] + (b2 ** 2).sum(1)[None] - 2 * a2 @ b2.T
    d = np.sqrt(np.maximum(d2, 0))
    if exclude_self:
        np.fill_diagonal(d, np.inf)
    return d.min(1), d.argmin(1)


def down16(x):
    return F.interpolate(torch.from_numpy(x[:, None]).float(), size=(16, 16),
                         mode="area").numpy().reshape(len(x), -1).astype(np.float64)


def sqdist(a, b):
    return np.maximum((a ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None] - 2 * a @ b.T, 0)


def mmd2(x, y, bw):
    """Unbiased squared MMD, Gaussian kernel exp(-d^2 / (2 bw^2))."""
    kxx = np.exp(-sqdist(x, x) / (2 * bw * bw))
    kyy = np.exp(-sqdist(y, y) / (2 * bw * bw))
    kxy = np.exp(-sqdist(x, y) / (2 * bw * bw))
    m, n = len(x), len(y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) +
                 (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean())


def dist_figures(sets, holdout):
    hd = down16(holdout)
    d = np.sqrt(sqdist(hd, hd))
    bw = float(np.median(d[np.triu_indices(len(hd), 1)]))
    out = {"mmd_bandwidth": bw}
    for name, s in sets.items():
        out[name] = {"w1_intensity": float(wasserstein_distance(s.ravel(), holdout.ravel())),
                     "mmd2_16x16": mmd2(down16(s), hd, bw), "n": int(len(s))}
    return out


def baselines(train, n, seed):
    rng = np.random.default_rng(seed)
    mu, sd = float(train.mean()), float(train.std())
    noise = rng.normal(mu, sd, size=(n, 64, 64)).astype(np.float32)
    pm, ps = train.mean(0), train.std(0)
    mean_noise = (pm[None] + ps[None] * rng.normal(size=(n, 64, 64))).astype(np.float32)
    real = train[rng.choice(len(train), size=n, replace=False)]
    return {"baseline_noise": noise, "baseline_mean+noise": mean_noise, "real_train_subset": real}


def grid_png(path, imgs, rows, row_labels, title):
    cols = len(imgs) // rows
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.1 + 1.2, rows * 1.1 + 0.4), squeeze=False)
    for r in range(rows):
        for c in range(cols):
            ax = axes[r][c]
            ax.imshow(imgs[r * cols + c], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0 and row_labels:
                ax.set_ylabel(row_labels[r], fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def loss_png(path, log, keys, title):
    recs = [json.loads(line) for line in open(log) if line.strip()]
    steps = np.array([r["step"] for r in recs])
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for k in keys:
        v = np.array([r[k] for r in recs])
        w = max(1, len(v) // 50)
        sm = np.convolve(v, np.ones(w) / w, mode="valid")
        ax.plot(steps, v, alpha=0.25, lw=0.6)
        ax.plot(steps[w - 1:], sm, lw=1.5, label="%s (moving mean of %d)" % (k, w))
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return {"steps": int(steps[-1]), "seconds": recs[-1]["seconds"],
            "final_loss_mean_last_100": float(np.mean([r["loss"] for r in recs[-100:]]))}


def memo_figures(gen, train, ho_tr, q05):
    d, idx = nn_dist(gen, train)
    return {"nn_l2_median": float(np.median(d)), "nn_l2_min": float(d.min()),
            "nn_l2_p05": float(np.percentile(d, 5)),
            "near_copy_fraction": float((d < q05).mean()),
            "near_copies": int((d < q05).sum())}, d, idx


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--unet")
    ap.add_argument("--vae")
    ap.add_argument("--unet-log")
    ap.add_argument("--vae-log")
    ap.add_argument("--figdir", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--per-class", type=int, default=4)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--guidance", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--c-samples", action="append", default=[], metavar="KEY=FILE.h5[,FILE.h5...]",
                    help="also evaluate images written by `medsynth images` (first 9*per-class)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    os.makedirs(a.figdir, exist_ok=True)
    with h5py.File(a.data, "r") as f:
        train = f["train/images"][:, 0].astype(np.float32)
        ytr = f["train/labels"][...]
        hold = f["holdout/images"][:, 0].astype(np.float32)
        yho = f["holdout/labels"][...]
    res = {"data": {"train": int(len(train)), "holdout": int(len(hold))}}
    ho_tr, _ = nn_dist(hold, train)
    tr_tr, _ = nn_dist(train, train, exclude_self=True)
    q05 = float(np.percentile(ho_tr, 5))
    res["memorisation_reference"] = {
        "holdout_to_train_median": float(np.median(ho_tr)),
        "holdout_to_train_p05_threshold": q05, "holdout_to_train_min": float(ho_tr.min()),
        "train_to_train_median": float(np.median(tr_tr))}
    n = 9 * a.per_class
    sets = baselines(train, n, a.seed)
    # Real reference grid: the first per-class held-out slices.
    ref = np.concatenate([hold[yho == c][:a.per_class] for c in range(9)])
    grid_png(os.path.join(a.figdir, "real_holdout_grid.png"), ref, 9, CLASS_NAMES,
             "real held-out slices (Colin27), %d per class" % a.per_class)
    if a.unet:
        gen, y, dt, cfg = sample_unet(a.unet, a.per_class, a.steps, a.guidance, a.seed)
        sets["unet"] = gen
        memo, d, idx = memo_figures(gen, train, ho_tr, q05)
        per_class_match = float(np.mean(ytr[idx] == y))
        res["unet"] = {"sampler": "ddim eta=0", "steps": a.steps, "guidance": a.guidance,
                       "sampling_seconds": round(dt, 1), "memorisation": memo,
                       "nearest_train_slice_same_class": per_class_match}
        grid_png(os.path.join(a.figdir, "unet_samples.png"), gen, 9, CLASS_NAMES,
                 "mri_unet64: DDIM %d steps, guidance %g, seed %d" % (a.steps, a.guidance, a.seed))
        pair = np.concatenate([np.stack([gen[i], train[idx[i]]]) for i in range(0, n, a.per_class)])
        grid_png(os.path.join(a.figdir, "unet_nearest.png"), pair, 9, CLASS_NAMES,
                 "UNet sample (left) and nearest training slice (right)")
    if a.vae:
        gen, y, m, cfg = sample_vae(a.vae, a.per_class, a.seed)
        sets["vae"] = gen
        memo, d, idx = memo_figures(gen, train, ho_tr, q05)
        res["vae"] = {"memorisation": memo, "holdout_recon_l1": vae_recon_l1(m, cfg, hold),
                      "train_recon_l1": vae_recon_l1(m, cfg, train),
                      "prior": "learned per-class Gaussian, rank %d" % cfg["latent_prior"]["rank"]
                      if "latent_prior" in cfg else "N(0, I)"}
        if y is not None:
            res["vae"]["nearest_train_slice_same_class"] = float(np.mean(ytr[idx] == y))
            pair = np.concatenate([np.stack([gen[i], train[idx[i]]]) for i in range(0, n, a.per_class)])
            grid_png(os.path.join(a.figdir, "vae_nearest.png"), pair, 9, CLASS_NAMES,
                     "VAE sample (left) and nearest training slice (right)")
        grid_png(os.path.join(a.figdir, "vae_samples.png"), gen, 9,
                 CLASS_NAMES if y is not None else None,
                 "mri_vae64: decoder(z), z from the %s prior, seed %d" %
                 ("learned per-class" if y is not None else "N(0, I)", a.seed))
        with torch.no_grad():
            mean, _ = m.encode(torch.from_numpy(ref[:, None]) * 2 - 1)
            rec = to_unit(cfg, m.decode(mean)).numpy()[:, 0]
        pair = np.concatenate([np.stack([ref[i], rec[i]]) for i in range(0, n, a.per_class)])
        grid_png(os.path.join(a.figdir, "vae_reconstructions.png"), pair, 9, CLASS_NAMES,
                 "held-out slice (left), VAE reconstruction (right)")
    for spec in a.c_samples:
        key, paths = spec.split("=", 1)
        gens, labs = [], []
        for path in paths.split(","):
            with h5py.File(path, "r") as f:
                ds = f["images/image"]
                gens.append(ds[...][:, 0] * ds.attrs["slope"] + ds.attrs["intercept"])
                if "images/image_labels" in f:
                    labs.append(f["images/image_labels"][...])
                attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in ds.attrs.items()}
        gen = np.clip(np.concatenate(gens), 0, 1).astype(np.float32)
        lab = np.concatenate(labs) if labs else None
        attrs.pop("class", None)
        path = paths.split(",")[0]
        if lab is not None:  # same per-class layout as the PyTorch grid
            order = np.argsort(lab, kind="stable")
            gen, lab = gen[order], lab[order]
        gen = gen[:n]
        sets[key] = gen
        memo, d, idx = memo_figures(gen, train, ho_tr, q05)
        res[key] = {"file": os.path.basename(path), "memorisation": memo,
                    "attributes": {k: (v.item() if hasattr(v, "item") else v) for k, v in attrs.items()}}
        grid_png(os.path.join(a.figdir, "%s_samples.png" % key), gen, 9,
                 [CLASS_NAMES[c] for c in lab[::len(gen) // 9]] if lab is not None else None,
                 "%s: medsynth images (C), %s" % (key, os.path.basename(path)))
    res["distribution_vs_holdout"] = dist_figures(sets, hold)
    # Distances histogram.
    fig, ax = plt.subplots(figsize=(6, 3.2))
    dists = {k: nn_dist(sets[k], train)[0] for k in ("unet", "vae") if k in sets}
    top = max([ho_tr.max()] + [v.max() for v in dists.values()]) * 1.05
    bins = np.linspace(0, top, 50)
    ax.hist(ho_tr, bins=bins, alpha=0.5, density=True, label="held-out -> train (real)")
    for k, dd in dists.items():
        ax.hist(dd, bins=bins, alpha=0.5, density=True, label="%s sample -> train" % k)
    ax.axvline(q05, color="k", ls="--", lw=1, label="near-copy threshold (p5)")
    ax.set_xlabel("L2 distance to nearest training slice ([0,1] units, 64x64)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(a.figdir, "nearest_neighbour_distances.png"), dpi=90)
    plt.close(fig)
    if a.unet_log:
        res.setdefault("unet", {})["training"] = loss_png(
            os.path.join(a.figdir, "unet_loss.png"), a.unet_log, ["loss"],
            "mri_unet64 training loss (v-prediction MSE)")
    if a.vae_log:
        res.setdefault("vae", {})["training"] = loss_png(
            os.path.join(a.figdir, "vae_loss.png"), a.vae_log, ["loss", "l1"],
            "mri_vae64 training loss (L1 + beta*KL)")
    tmp = a.json + ".tmp"
    with open(tmp, "w") as f:
        json.dump(res, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, a.json)
    print(json.dumps(res, indent=1, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1:])
