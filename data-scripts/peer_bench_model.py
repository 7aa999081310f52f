#!/usr/bin/env python3
"""PyTorch CPU peer of `medsgm bench model` (issue 3 benchmark).

Builds the same NCSN++-style U-Net as medsgm's src/nn (Fourier features of log sigma,
BigGAN residual blocks with GroupNorm(min(C/4, 32), eps 1e-6), SiLU, time conditioning, skip
rescale 1/sqrt(2), avg-pool / nearest upsampling inside the blocks, DDPM self-attention at the
configured resolutions and in the middle, output divided by sigma) and times, with the same
thread count (default 2):
  * one forward pass (NFE) at 128^2 and 256^2, batch 1 and 8;
  * one training step (forward + backward of the sigma^2-weighted DSM loss) at 128^2, batch 16.
Prints one JSON object per row (median of --repeats runs after one warm-up).

Usage: .venv/bin/python data-scripts/peer_bench_model.py [--threads 2] [--repeats 3]
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


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
    def __init__(self, nf=32, ch_mult=(1, 2, 2, 2), num_res_blocks=1, attn=(16,), size=128):
        super().__init__()
        self.W = nn.Parameter(torch.randn(nf) * 16.0, requires_grad=False)
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


def median_ms(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    params = sum(p.numel() for p in Ncsnpp(size=128).parameters())
    note = f"{params} params, {args.threads} threads, torch {torch.__version__}"
    for size, batch in [(128, 1), (128, 8), (256, 1), (256, 8)]:
        net = Ncsnpp(size=size).eval()
        x, s = torch.rand(batch, 1, size, size), torch.full((batch,), 0.5)
        with torch.no_grad():
            ms = median_ms(lambda: net(x, s), args.repeats)
        print(json.dumps({"group": "model-pytorch", "case": f"nfe {size}² batch {batch}", "median_ms": ms, "note": note}))
    net = Ncsnpp(size=128).train()
    x, z, s = torch.rand(16, 1, 128, 128), torch.randn(16, 1, 128, 128), torch.full((16,), 0.5)

    def step():
        net.zero_grad()
        out = net(x + 0.5 * z, s)
        ((out * 0.5 + z) ** 2).mean().backward()

    ms = median_ms(step, args.repeats)
    print(json.dumps({"group": "model-pytorch", "case": "train step 128² batch 16 (fwd+bwd)", "median_ms": ms, "note": note}))


if __name__ == "__main__":
    main()
