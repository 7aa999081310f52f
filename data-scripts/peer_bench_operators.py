#!/usr/bin/env python3
"""Peer timings for `medsgm bench operators` (src/bench/operators.rs): scikit-image `radon`
(circle=True), `iradon` with filter None (back-projection) and with the ramp filter (FBP) on the
modified Shepp-Logan phantom (256² with 180 and 23 views, 512² with 180 views, angles
linspace(0, 180, endpoint=False)), plus numpy and scipy complex64 2-D FFT round trips at 256².
Prints JSON: min and median of N runs in milliseconds.

    python3 -m venv .venv && .venv/bin/pip install scikit-image numpy scipy
    .venv/bin/python data-scripts/peer_bench_operators.py [repeats]
"""
import json
import sys
import time

import numpy as np
import scipy.fft as sfft
from skimage.data import shepp_logan_phantom
from skimage.transform import iradon, radon, resize


def bench(f, repeats):
    for _ in range(2):
        f()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        ts.append((time.perf_counter() - t) * 1e3)
    ts.sort()
    return {"min_ms": ts[0], "median_ms": ts[len(ts) // 2], "repeats": repeats}


def main():
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    rows = []
    base = shepp_logan_phantom()  # 400², modified Shepp-Logan
    for n, views in [(256, 180), (256, 23), (512, 180)]:
        img = resize(base, (n, n), anti_aliasing=True)
        theta = np.linspace(0.0, 180.0, views, endpoint=False)
        sino = radon(img, theta=theta, circle=True)
        case = f"{n}² {views} views {n} det (circle=True)"
        rows.append({"operation": "skimage radon", "case": case,
                     **bench(lambda: radon(img, theta=theta, circle=True), repeats)})
        rows.append({"operation": "skimage iradon filter=None (back-projection)", "case": case,
                     **bench(lambda: iradon(sino, theta=theta, filter_name=None, circle=True),
                             repeats)})
        rows.append({"operation": "skimage iradon ramp (FBP)", "case": case,
                     **bench(lambda: iradon(sino, theta=theta, filter_name="ramp", circle=True),
                             repeats)})
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((256, 256)) + 1j * rng.standard_normal((256, 256))).astype(np.complex64)
    rows.append({"operation": "numpy fft2+ifft2 ortho complex64", "case": "256²",
                 **bench(lambda: np.fft.ifft2(np.fft.fft2(x, norm="ortho"), norm="ortho"),
                         max(repeats, 50))})
    rows.append({"operation": "scipy fft2+ifft2 ortho complex64", "case": "256²",
                 **bench(lambda: sfft.ifft2(sfft.fft2(x, norm="ortho"), norm="ortho"),
                         max(repeats, 50))})
    json.dump({"generator": "data-scripts/peer_bench_operators.py", "rows": rows}, sys.stdout,
              indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
