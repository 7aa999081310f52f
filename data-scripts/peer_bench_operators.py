#!/usr/bin/env python3
"""scikit-image peer of `medsgm bench operators` (Radon part, src/bench/operators.rs).

scikit-image `radon(circle=True)`, `iradon(filter_name=None)` (back-projection) and
`iradon(filter_name="ramp")` (FBP) on the modified Shepp-Logan phantom resized to N², angles
linspace(0, 180, views, endpoint=False), for (N, views) = (256, 180), (256, 23), (512, 180). With
circle=True scikit-image uses N detector bins: the peer of medsgm's "N det" rows. scikit-image
is single-threaded; --threads only caps numpy's BLAS pool. One JSON row per line (see
peer_bench_common.py). Set up the interpreter with data-scripts/setup_peer_venv.sh.

Usage: .venv/bin/python data-scripts/peer_bench_operators.py [--threads 2] [--repeats 7]
"""
import numpy as np
import skimage
from skimage.data import shepp_logan_phantom
from skimage.transform import iradon, radon, resize

from peer_bench_common import emit, parse_args, timings_ms


def main():
    args = parse_args(__doc__, 7)
    note = f"scikit-image {skimage.__version__}, circle=True, single-threaded"
    base = shepp_logan_phantom()  # 400², modified Shepp-Logan
    for n, views in [(256, 180), (256, 23), (512, 180)]:
        img = resize(base, (n, n), anti_aliasing=True)
        theta = np.linspace(0.0, 180.0, views, endpoint=False)
        sino = radon(img, theta=theta, circle=True)
        suffix = f"{n}² {views} views {n} det"
        cases = [
            ("radon forward", lambda: radon(img, theta=theta, circle=True)),
            ("radon adjoint", lambda: iradon(sino, theta=theta, filter_name=None, circle=True)),
            ("fbp ram-lak", lambda: iradon(sino, theta=theta, filter_name="ramp", circle=True)),
        ]
        for what, fn in cases:
            emit("operators-skimage", f"{what} {suffix}", timings_ms(fn, args.repeats), note)


if __name__ == "__main__":
    main()
