"""PyTorch reference for medsynth's generative image core.

Defines exactly the architectures and samplers implemented in C (gen/nn/,
gen/sample/): the diffusion UNet, the VAE, the linear and cosine noise
schedules, eps/v prediction, and the DDPM, DDIM and DPM-Solver++ 2M samplers
with classifier-free guidance. The C code is checked against this file by
models/reference/make_golden.py (fixtures) and parity.py (live comparison).

Invariants shared with the C side (docs/model-format.md, docs/samplers.md):
  * state_dict keys are the HDF5 dataset names; the layout of keys follows
    from the JSON config alone (unet_keys/vae_keys list it).
  * Timestep embedding: guided-diffusion `timestep_embedding` ([cos, sin],
    max_period 10000), evaluated in float32.
  * Attention: one 1x1 conv gives q, k, v stacked on channels [q | k | v];
    head h owns channels h*head_dim .. (h+1)*head_dim-1 of each.
  * Schedules are computed in float64; sampler coefficients are float64 and
    applied to float32 tensors.
  * Sampler timesteps t_i = ((S-1-i)*(T-1)) // (S-1) (t_0 = T-1, t_{S-1} = 0),
    and the step after t = 0 lands on clean data (alpha_bar = 1).
  * Noise: x_T is "lane 0", the noise of step i is "lane i+1"; here it is
    supplied by a callable so that tests feed C and PyTorch the same numbers.

References: Ho et al. 2020 (DDPM); Song et al. 2021 (DDIM); Nichol & Dhariwal
2021 (cosine schedule, improved UNet); Salimans & Ho 2022 (v-prediction);
Ho & Salimans 2022 (classifier-free guidance); Lu et al. 2022
(DPM-Solver++); Rombach et al. 2022 (autoencoder of latent diffusion).
"""

import json
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

FORMAT_VERSION = 1


# --------------------------------------------------------------------------
# Configs

def unet_config(**kw):
    """A complete UNet config with defaults filled in."""
    c = {
        "architecture": "unet",
        "image_size": 16,
        "image_channels": 1,
        "channels": [16, 32],
        "blocks_per_level": 1,
        "attention_resolutions": [8],
        "heads": 2,
        "groups": 8,
        "norm_eps": 1e-5,
        "downsample": "conv",
        "num_classes": 0,
        "prediction": "eps",
        "schedule": {"type": "linear", "T": 1000, "beta_start": 1e-4, "beta_end": 2e-2},
        "intensity": {"scale": 1.0, "offset": 0.0, "unit": "a.u."},
    }
    c.update(kw)
    return c


def vae_config(**kw):
    c = {
        "architecture": "vae",
        "image_size": 16,
        "image_channels": 1,
        "channels": [16, 32],
        "blocks_per_level": 1,
        "latent_channels": 4,
        "heads": 1,
        "groups": 8,
        "norm_eps": 1e-6,
        "intensity": {"scale": 1.0, "offset": 0.0, "unit": "a.u."},
    }
    c.update(kw)
    return c


# --------------------------------------------------------------------------
# Layers

def timestep_embedding(t, dim, max_period=10000.0):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(0, half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv3x3, + Linear(SiLU(emb)), GroupNorm-SiLU-conv3x3,
    plus the input (through a 1x1 conv when the channel count changes)."""

    def __init__(self, cin, cout, emb_dim, groups, eps):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=eps)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, cout) if emb_dim else None
        self.norm2 = nn.GroupNorm(groups, cout, eps=eps)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, emb=None):
        h = self.conv1(F.silu(self.norm1(x)))
        if self.emb is not None:
            h = h + self.emb(F.silu(emb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))  # dropout 0
        return (self.skip(x) if self.skip is not None else x) + h


class Attention(nn.Module):
    """Multi-head self-attention over the H*W positions, residual."""

    def __init__(self, ch, heads, groups, eps):
        super().__init__()
        assert ch % heads == 0
        self.heads = heads
        self.norm = nn.GroupNorm(groups, ch, eps=eps)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = nn.Conv2d(ch, ch, 1)

    def forward(self, x):
        n, c, h, w = x.shape
        d = c // self.heads
        qkv = self.qkv(self.norm(x)).reshape(n, 3, self.heads, d, h * w)
        q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]  # [n, heads, d, T]
        scale = 1.0 / math.sqrt(d)
        a = torch.softmax(torch.einsum("nhdt,nhds->nhts", q, k) * scale, dim=-1)
        o = torch.einsum("nhts,nhds->nhdt", a, v).reshape(n, c, h, w)
        return x + self.proj(o)


class Downsample(nn.Module):
    def __init__(self, ch, kind):
        super().__init__()
        self.kind = kind
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=1) if kind == "conv" else None

    def forward(self, x):
        return self.conv(x) if self.conv is not None else F.avg_pool2d(x, 2)


class Upsample(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class Level(nn.Module):
    pass


class Mid(nn.Module):
    def __init__(self, ch, emb_dim, heads, groups, eps):
        super().__init__()
        self.res1 = ResBlock(ch, ch, emb_dim, groups, eps)
        self.attn = Attention(ch, heads, groups, eps)
        self.res2 = ResBlock(ch, ch, emb_dim, groups, eps)

    def forward(self, x, emb=None):
        return self.res2(self.attn(self.res1(x, emb)), emb)


# --------------------------------------------------------------------------
# UNet

class UNet(nn.Module):
    """Diffusion UNet (Ho et al. 2020 / Nichol & Dhariwal 2021 layout).

    Down path: for each level l, blocks_per_level ResBlocks (+ attention when
    image_size >> l is in attention_resolutions); every level but the last
    ends in a Downsample. Each block output (and conv_in's, and each
    downsample's) is kept as a skip. Up path: levels in reverse, each with
    blocks_per_level + 1 ResBlocks taking cat([h, skip.pop()]); every level
    but level 0 ends in an Upsample. Output: GroupNorm-SiLU-conv3x3."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        ch = cfg["channels"]
        L = len(ch)
        nb = cfg["blocks_per_level"]
        g, eps, heads = cfg["groups"], cfg["norm_eps"], cfg["heads"]
        ed = 4 * ch[0]
        self.emb_dim = ed
        self.time_embed = nn.Sequential(nn.Linear(ch[0], ed), nn.SiLU(), nn.Linear(ed, ed))
        self.num_classes = cfg["num_classes"]
        if self.num_classes:
            # Index num_classes is the null class (classifier-free guidance).
            self.class_embed = nn.Embedding(self.num_classes + 1, ed)
        self.conv_in = nn.Conv2d(cfg["image_channels"], ch[0], 3, padding=1)
        skips = [ch[0]]
        cur = ch[0]
        self.down = nn.ModuleList()
        for l in range(L):
            lev = Level()
            lev.res = nn.ModuleList()
            attn = (cfg["image_size"] >> l) in cfg["attention_resolutions"]
            if attn:
                lev.attn = nn.ModuleList()
            for _ in range(nb):
                lev.res.append(ResBlock(cur, ch[l], ed, g, eps))
                cur = ch[l]
                if attn:
                    lev.attn.append(Attention(cur, heads, g, eps))
                skips.append(cur)
            if l < L - 1:
                lev.down = Downsample(cur, cfg["downsample"])
                skips.append(cur)
            self.down.append(lev)
        self.mid = Mid(cur, ed, heads, g, eps)
        self.up = nn.ModuleList([None] * L)
        for l in reversed(range(L)):
            lev = Level()
            lev.res = nn.ModuleList()
            attn = (cfg["image_size"] >> l) in cfg["attention_resolutions"]
            if attn:
                lev.attn = nn.ModuleList()
            for _ in range(nb + 1):
                lev.res.append(ResBlock(cur + skips.pop(), ch[l], ed, g, eps))
                cur = ch[l]
                if attn:
                    lev.attn.append(Attention(cur, heads, g, eps))
            if l > 0:
                lev.up = Upsample(cur)
            self.up[l] = lev
        self.norm_out = nn.GroupNorm(g, cur, eps=eps)
        self.conv_out = nn.Conv2d(cur, cfg["image_channels"], 3, padding=1)

    def forward(self, x, t, y=None):
        ch = self.cfg["channels"]
        emb = self.time_embed(timestep_embedding(t, ch[0]))
        if self.num_classes:
            emb = emb + self.class_embed(y)
        h = self.conv_in(x)
        hs = [h]
        for lev in self.down:
            for b, res in enumerate(lev.res):
                h = res(h, emb)
                if hasattr(lev, "attn"):
                    h = lev.attn[b](h)
                hs.append(h)
            if hasattr(lev, "down"):
                h = lev.down(h)
                hs.append(h)
        h = self.mid(h, emb)
        for l in reversed(range(len(ch))):
            lev = self.up[l]
            for b, res in enumerate(lev.res):
                h = res(torch.cat([h, hs.pop()], dim=1), emb)
                if hasattr(lev, "attn"):
                    h = lev.attn[b](h)
            if hasattr(lev, "up"):
                h = lev.up(h)
        return self.conv_out(F.silu(self.norm_out(h)))


# --------------------------------------------------------------------------
# VAE

class Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        ch, nb = cfg["channels"], cfg["blocks_per_level"]
        g, eps = cfg["groups"], cfg["norm_eps"]
        L = len(ch)
        self.conv_in = nn.Conv2d(cfg["image_channels"], ch[0], 3, padding=1)
        cur = ch[0]
        self.down = nn.ModuleList()
        for l in range(L):
            lev = Level()
            lev.res = nn.ModuleList()
            for _ in range(nb):
                lev.res.append(ResBlock(cur, ch[l], 0, g, eps))
                cur = ch[l]
            if l < L - 1:
                lev.down = Downsample(cur, "conv")
            self.down.append(lev)
        self.mid = Mid(cur, 0, cfg["heads"], g, eps)
        self.norm_out = nn.GroupNorm(g, cur, eps=eps)
        self.conv_out = nn.Conv2d(cur, 2 * cfg["latent_channels"], 3, padding=1)

    def forward(self, x):
        h = self.conv_in(x)
        for lev in self.down:
            for res in lev.res:
                h = res(h)
            if hasattr(lev, "down"):
                h = lev.down(h)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        ch, nb = cfg["channels"], cfg["blocks_per_level"]
        g, eps = cfg["groups"], cfg["norm_eps"]
        L = len(ch)
        cur = ch[-1]
        self.conv_in = nn.Conv2d(cfg["latent_channels"], cur, 3, padding=1)
        self.mid = Mid(cur, 0, cfg["heads"], g, eps)
        self.up = nn.ModuleList([None] * L)
        for l in reversed(range(L)):
            lev = Level()
            lev.res = nn.ModuleList()
            for _ in range(nb + 1):
                lev.res.append(ResBlock(cur, ch[l], 0, g, eps))
                cur = ch[l]
            if l > 0:
                lev.up = Upsample(cur)
            self.up[l] = lev
        self.norm_out = nn.GroupNorm(g, cur, eps=eps)
        self.conv_out = nn.Conv2d(cur, cfg["image_channels"], 3, padding=1)

    def forward(self, z):
        h = self.mid(self.conv_in(z))
        for l in reversed(range(len(self.up))):
            lev = self.up[l]
            for res in lev.res:
                h = res(h)
            if hasattr(lev, "up"):
                h = lev.up(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class VAE(nn.Module):
    """Convolutional VAE: the encoder gives mean and log-variance of a latent
    with latent_channels channels at image_size / 2^(levels-1); the decoder
    maps a latent back to an image."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        lp = cfg.get("latent_prior")
        if lp is not None:
            self.prior = LatentPrior(max(cfg.get("num_classes", 0), 1), lp["rank"],
                                     latent_floats(cfg))

    def encode(self, x):
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return mean, logvar

    def decode(self, z):
        return self.decoder(z)

    def prior_latent(self, e, y=None):
        """Latents (B, C_z, h, w) from standard-normal noise e (B, prior_noise_floats):
        with a learned prior z = mean[y] + e[:R] @ factor[y] + std[y] * e[R:],
        otherwise z = e (the N(0, I) prior)."""
        cz = self.cfg["latent_channels"]
        h = self.cfg["image_size"] >> (len(self.cfg["channels"]) - 1)
        if not hasattr(self, "prior"):
            return e.reshape(-1, cz, h, h)
        return self.prior(e, y).reshape(-1, cz, h, h)


def latent_floats(cfg):
    h = cfg["image_size"] >> (len(cfg["channels"]) - 1)
    return cfg["latent_channels"] * h * h


def prior_noise_floats(cfg):
    lp = cfg.get("latent_prior")
    return latent_floats(cfg) + (lp["rank"] if lp is not None else 0)


class LatentPrior(nn.Module):
    """Per-class Gaussian over the flattened latent (D numbers): a mean, R
    low-rank directions and a diagonal residual scale (docs/model-format.md)."""

    def __init__(self, k, rank, d):
        super().__init__()
        self.rank = rank
        self.register_buffer("mean", torch.zeros(k, d))
        self.register_buffer("factor", torch.zeros(k, rank, d))
        self.register_buffer("std", torch.ones(k, d))

    def forward(self, e, y=None):
        if y is None:
            y = torch.zeros(e.shape[0], dtype=torch.int64)
        r = self.rank
        low = torch.einsum("br,brd->bd", e[:, :r], self.factor[y])
        return self.mean[y] + low + self.std[y] * e[:, r:]


def build(cfg):
    if cfg["architecture"] == "unet":
        return UNet(cfg)
    if cfg["architecture"] == "vae":
        return VAE(cfg)
    raise ValueError("unknown architecture %r" % cfg["architecture"])


def init_random(model, seed, scale=1.0):
    """Seeded random weights. Default PyTorch init for convs/linears; the
    GroupNorm affine parameters and biases are perturbed too, so that
    parity tests exercise them (zero/one values would hide layout bugs)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.state_dict().items()):
            if p.dim() >= 2:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) * (scale / math.sqrt(fan_in)))
            elif name.endswith("weight"):  # norm gains
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
    return model


# --------------------------------------------------------------------------
# Schedules and samplers

def alphas_cumprod(sched):
    T = int(sched["T"])
    if sched["type"] == "linear":
        betas = np.linspace(sched["beta_start"], sched["beta_end"], T, dtype=np.float64)
    elif sched["type"] == "cosine":
        s = 0.008
        f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
        betas = np.array([min(1 - f(i + 1) / f(i), 0.999) for i in range(T)], dtype=np.float64)
    else:
        raise ValueError("unknown schedule %r" % sched["type"])
    return np.cumprod(1.0 - betas)


def timesteps(T, S):
    if S < 1 or S > T:
        raise ValueError("steps must be in 1..T")
    if S == 1:
        return [T - 1]
    return [((S - 1 - i) * (T - 1)) // (S - 1) for i in range(S)]


def denoise(model, cfg, x, t, y, guidance):
    """Model output (eps or v) with classifier-free guidance."""
    tt = torch.full((x.shape[0],), float(t))
    if cfg["num_classes"] and guidance != 1.0:
        null = torch.full_like(y, cfg["num_classes"])
        c = model(x, tt, y)
        u = model(x, tt, null)
        return u + guidance * (c - u)
    return model(x, tt, y if cfg["num_classes"] else None)


def split_pred(cfg, out, x, ab):
    """(x0, eps) from the model output at alpha_bar ab."""
    a, s = math.sqrt(ab), math.sqrt(1.0 - ab)
    if cfg["prediction"] == "eps":
        eps = out
        x0 = (x - s * eps) / a
    else:  # v = a*eps - s*x0
        x0 = a * x - s * out
        eps = s * x + a * out
    return x0, eps


def sample(model, cfg, x_T, sampler="ddim", steps=10, eta=0.0, y=None, guidance=1.0,
           noise=None):
    """Runs a sampler from x_T. noise(i) gives the noise of step i (shape of
    x). Returns the trajectory [x_T, x after step 0, ..., x after step S-1]."""
    ab = alphas_cumprod(cfg["schedule"])
    T = len(ab)
    ts = timesteps(T, steps)
    x = x_T.clone()
    traj = [x.clone()]
    x0_prev, h_prev = None, None
    with torch.no_grad():
        for i, t in enumerate(ts):
            a_t = ab[t]
            a_p = ab[ts[i + 1]] if i + 1 < len(ts) else 1.0
            out = denoise(model, cfg, x, t, y, guidance)
            x0, eps = split_pred(cfg, out, x, a_t)
            if sampler == "ddim":
                sigma = eta * math.sqrt((1 - a_p) / (1 - a_t)) * math.sqrt(1 - a_t / a_p)
                c_eps = math.sqrt(max(1 - a_p - sigma * sigma, 0.0))
                x = math.sqrt(a_p) * x0 + c_eps * eps
                if sigma > 0:
                    x = x + sigma * noise(i)
            elif sampler == "ddpm":
                beta = 1 - a_t / a_p
                c0 = math.sqrt(a_p) * beta / (1 - a_t)
                ct = math.sqrt(1 - beta) * (1 - a_p) / (1 - a_t)
                var = beta * (1 - a_p) / (1 - a_t)
                x = c0 * x0 + ct * x
                if var > 0:
                    x = x + math.sqrt(var) * noise(i)
            elif sampler == "dpmpp":
                s_t, al_t = math.sqrt(1 - a_t), math.sqrt(a_t)
                lam_t = math.log(al_t / s_t)
                if a_p >= 1.0:
                    x = x0  # the final step to clean data (lower order final)
                else:
                    s_p, al_p = math.sqrt(1 - a_p), math.sqrt(a_p)
                    h = math.log(al_p / s_p) - lam_t
                    if x0_prev is None:
                        d = x0
                    else:
                        r = h_prev / h
                        d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * x0_prev
                    x = (s_p / s_t) * x - al_p * math.expm1(-h) * d
                    h_prev = h
                x0_prev = x0
            else:
                raise ValueError("unknown sampler %r" % sampler)
            traj.append(x.clone())
    return traj


# --------------------------------------------------------------------------
# Key layout and hashing (shared with export_model.py)

def weights_xxh64(state):
    """xxh64 (seed 0) over the tensors in byte-wise sorted name order; for
    each: name bytes, one 0 byte, rank as uint32 LE, each dim as uint64 LE,
    then the float32 little-endian data. Returned as 16 lowercase hex."""
    import ctypes
    lib = ctypes.CDLL("libxxhash.so.0")
    lib.XXH64.restype = ctypes.c_uint64
    lib.XXH64.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]
    parts = []
    for name in sorted(state.keys(), key=lambda s: s.encode()):
        a = np.ascontiguousarray(state[name], dtype="<f4")
        parts.append(name.encode() + b"\0")
        parts.append(np.uint32(a.ndim).astype("<u4").tobytes())
        parts.append(np.array(a.shape, dtype="<u8").tobytes())
        parts.append(a.tobytes())
    blob = b"".join(parts)
    return "%016x" % lib.XXH64(blob, len(blob), 0)


def config_json(cfg):
    return json.dumps(cfg, sort_keys=True)
