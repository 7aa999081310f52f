#!/usr/bin/env python3
"""PyTorch CPU peer of `medsgm bench model` (src/bench/model.rs).

Builds the same NCSN++-style U-Net as medsgm's src/nn (Fourier features of log sigma,
BigGAN residual blocks with GroupNorm(min(C/4, 32), eps 1e-6), SiLU, time conditioning, skip
rescale 1/sqrt(2), avg-pool / nearest upsampling inside the blocks, DDPM self-attention at the
configured resolutions and in the middle, output divided by sigma), with the `[model]` table of
the medsgm training configuration given by --config (default configs/ct_phantom_128_nf32.toml), and
times with torch.set_num_threads(--threads):
  * one forward pass (NFE) under no_grad at 128^2 (batch 1), 256^2 and 512^2 (batch 1 and 4);
  * one training step (forward + backward of the sigma^2-weighted DSM loss) at 128^2, batch 16.
One JSON row per line (see peer_bench_common.py); median of --repeats runs after one warm-up.

Usage: .venv/bin/python data-scripts/peer_bench_model.py [--threads 2] [--repeats 3]
                                                         [--config configs/ct_phantom_128_nf32.toml]
"""
import math
import tomllib

import torch
import torch.nn as nn
import torch.nn.functional as F

from peer_bench_common import emit, parse_args, timings_ms


def gn(c):
    return nn.GroupNorm(max(1, min(c // 4, 32)), c, eps=1e-6)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, temb, resample=None):
        super().__init__()
        self.norm0, self.conv0 = gn(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(temb, cout)
        self.norm1, self.conv1 = gn(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if (cin != cout or resample) else None
        self.resample = resample

    def rs(self, x):
        if self.resample == "down":
            return F.avg_pool2d(x, 2)
        if self.resample == "up":
            return F.interpolate(x, scale_factor=2, mode="nearest")
        return x

    def forward(self, x, temb):
        h = self.conv0(self.rs(F.silu(self.norm0(x))))
        h = h + self.temb(F.silu(temb))[:, :, None, None]
        h = self.conv1(F.silu(self.norm1(h)))
        x = self.rs(x)
        if self.skip is not None:
            x = self.skip(x)
        return (x + h) / math.sqrt(2.0)


class Attn(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = gn(c)
        self.q, self.k, self.v, self.out = (nn.Linear(c, c) for _ in range(4))

    def forward(self, x):
        b, c, h, w = x.shape
        t = self.norm(x).reshape(b, c, h * w).transpose(1, 2)
        q, k, v = self.q(t), self.k(t), self.v(t)
        a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(c), dim=-1)
        o = self.out(a @ v).transpose(1, 2).reshape(b, c, h, w)
        return (x + o) / math.sqrt(2.0)


class Ncsnpp(nn.Module):
    def __init__(self, nf=32, ch_mult=(1, 2, 2, 2), num_res_blocks=1, attn=(16,), size=128,
                 fourier_scale=16.0):
        super().__init__()
        self.W = nn.Parameter(torch.randn(nf) * fourier_scale, requires_grad=False)
        td = 4 * nf
        self.d0, self.d1 = nn.Linear(2 * nf, td), nn.Linear(td, td)
        self.conv_in = nn.Conv2d(1, nf, 3, padding=1)
        self.down, self.keep = nn.ModuleList(), []
        ch, res, skip = nf, size, [nf]
        for lvl, m in enumerate(ch_mult):
            for _ in range(num_res_blocks):
                self.down.append(ResBlock(ch, nf * m, td))
                ch = nf * m
                if res in attn:
                    self.keep.append(False)
                    self.down.append(Attn(ch))
                self.keep.append(True)
                skip.append(ch)
            if lvl + 1 != len(ch_mult):
                self.down.append(ResBlock(ch, ch, td, "down"))
                self.keep.append(True)
                skip.append(ch)
                res //= 2
        self.mid = nn.ModuleList([ResBlock(ch, ch, td), Attn(ch), ResBlock(ch, ch, td)])
        self.up, self.cat = nn.ModuleList(), []
        for lvl in reversed(range(len(ch_mult))):
            m = ch_mult[lvl]
            for _ in range(num_res_blocks + 1):
                self.up.append(ResBlock(ch + skip.pop(), nf * m, td))
                self.cat.append(True)
                ch = nf * m
            if res in attn:
                self.up.append(Attn(ch))
                self.cat.append(False)
            if lvl != 0:
                self.up.append(ResBlock(ch, ch, td, "up"))
                self.cat.append(False)
                res *= 2
        self.norm_out, self.conv_out = gn(ch), nn.Conv2d(ch, 1, 3, padding=1)

    def run(self, mod, h, temb):
        return mod(h, temb) if isinstance(mod, ResBlock) else mod(h)

    def forward(self, x, sigma):
        p = torch.log(sigma)[:, None] * self.W[None, :] * 2 * math.pi
        temb = self.d1(F.silu(self.d0(torch.cat([p.sin(), p.cos()], 1))))
        h = self.conv_in(2 * x - 1)
        hs = [h]
        for mod, keep in zip(self.down, self.keep):
            h = self.run(mod, h, temb)
            if keep:
                hs.append(h)
        for mod in self.mid:
            h = self.run(mod, h, temb)
        for mod, cat in zip(self.up, self.cat):
            if cat:
                h = torch.cat([h, hs.pop()], 1)
            h = self.run(mod, h, temb)
        h = self.conv_out(F.silu(self.norm_out(h)))
        return h / sigma[:, None, None, None]


def model_config(path):
    """The `[model]` table of a medsgm training configuration, with medsgm's defaults."""
    with open(path, "rb") as f:
        m = tomllib.load(f).get("model", {})
    return dict(nf=m.get("nf", 32), ch_mult=tuple(m.get("ch_mult", (1, 2, 2, 2))),
                num_res_blocks=m.get("num_res_blocks", 1),
                attn=tuple(m.get("attn_resolutions", (16,))),
                fourier_scale=m.get("fourier_scale", 16.0))


def main():
    args = parse_args(__doc__, 3, [("--config", "configs/ct_phantom_128_nf32.toml",
                                    "medsgm training configuration whose [model] table to build")])
    config = args.config
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    arch = model_config(config)
    params = sum(p.numel() for p in Ncsnpp(size=128, **arch).parameters())
    note = (f"{config}: nf {arch['nf']}, {params} params, {args.threads} threads, "
            f"torch {torch.__version__}")
    for size, batch in [(128, 1), (256, 1), (256, 4), (512, 1), (512, 4)]:
        net = Ncsnpp(size=size, **arch).eval()
        x, s = torch.rand(batch, 1, size, size), torch.full((batch,), 0.5)

        def nfe():
            with torch.no_grad():
                net(x, s)

        emit("model-pytorch", f"nfe {size}² batch {batch}", timings_ms(nfe, args.repeats), note)
    net = Ncsnpp(size=128, **arch).train()
    x, z, s = torch.rand(16, 1, 128, 128), torch.randn(16, 1, 128, 128), torch.full((16,), 0.5)

    def step():
        net.zero_grad()
        out = net(x + 0.5 * z, s)
        ((out * 0.5 + z) ** 2).mean().backward()

    emit("model-pytorch", "train step 128² batch 16 (fwd+bwd)", timings_ms(step, args.repeats),
         note)


if __name__ == "__main__":
    main()
