#!/usr/bin/env python3
"""ASTRA Toolbox peer of `medsgm bench operators` (fan-beam part, src/bench/operators.rs).

ASTRA's CPU fan-beam projector `line_fanflat` (flat detector; ASTRA's CPU projectors have no
curved, equiangular detector) on a disc phantom of N² pixels (a projector's time does not depend
on the image's values), in medsgm's
benchmark geometry converted to ASTRA's `fanflat`: full scan of `views` angles 2πk/views, source
R = 2N pixels from the isocentre, detector D = 4N pixels from the source (origin_det = D − R),
`det_count` bins of width D/R = 2 pixels at the detector (unit width at the isocentre), for
(N, views, bins) = (256, 360, 512) and (512, 720, 1024). Timed: one run of ASTRA's `FP` and `BP`
algorithms on preallocated data objects (the projector alone, no array conversion). ASTRA's CPU
`FBP` refuses fan-beam geometries; the script tries it and reports the case as not available
(median null) with ASTRA's message. ASTRA's 2-D CPU algorithms run on one thread; --threads
only caps OpenMP/BLAS pools. One JSON row per line (see peer_bench_common.py).

Install ASTRA into the peer interpreter with `pip install astra-toolbox`.

Usage: .venv/bin/python data-scripts/peer_bench_fan.py [--threads 2] [--repeats 5]
"""
import json

import astra
import numpy as np

from peer_bench_common import emit, parse_args, timings_ms

GROUP = "operators-astra"


def fanflat(n, views, bins):
    """ASTRA's `fanflat` projection geometry of medsgm's benchmark case (lengths in pixels)."""
    r, d = 2.0 * n, 4.0 * n
    angles = 2.0 * np.pi * np.arange(views) / views
    return astra.create_proj_geom("fanflat", d / r, bins, angles, r, d - r)


def algorithm(kind, proj_id, vol_id, sino_id):
    """An ASTRA CPU algorithm (`FP`, `BP` or `FBP`) on the given projector and data objects."""
    cfg = astra.astra_dict(kind)
    cfg["ProjectorId"] = proj_id
    cfg["VolumeDataId" if kind == "FP" else "ReconstructionDataId"] = vol_id
    cfg["ProjectionDataId"] = sino_id
    return astra.algorithm.create(cfg)


def main():
    args = parse_args(__doc__, 5)
    note = f"ASTRA {astra.__version__} line_fanflat (CPU), single-threaded"
    for n, views, bins in [(256, 360, 512), (512, 720, 1024)]:
        c = np.arange(n) - (n - 1) / 2.0
        img = (np.hypot(*np.meshgrid(c, c)) < 0.4 * n).astype(np.float32)
        proj_geom, vol_geom = fanflat(n, views, bins), astra.create_vol_geom(n, n)
        proj_id = astra.create_projector("line_fanflat", proj_geom, vol_geom)
        vol_id = astra.data2d.create("-vol", vol_geom, img)
        sino_id = astra.data2d.create("-sino", proj_geom, 0.0)
        suffix = f"{n}² {views} views {bins} det"
        for what, kind in [("forward", "FP"), ("adjoint", "BP")]:
            alg = algorithm(kind, proj_id, vol_id, sino_id)
            ts = timings_ms(lambda: astra.algorithm.run(alg), args.repeats)
            emit(GROUP, f"fan flat {what} {suffix}", ts, note)
            astra.algorithm.delete(alg)
        try:
            alg = algorithm("FBP", proj_id, vol_id, sino_id)
            ts = timings_ms(lambda: astra.algorithm.run(alg), args.repeats)
            emit(GROUP, f"fan flat fbp ram-lak {suffix}", ts, note)
            astra.algorithm.delete(alg)
        except Exception as err:  # ASTRA refuses CPU FBP of fan-beam geometries
            row = {"group": GROUP, "case": f"fan flat fbp ram-lak {suffix}", "median_ms": None,
                   "note": f"not available: ASTRA CPU FBP: {str(err).strip()}"}
            print(json.dumps(row, ensure_ascii=False), flush=True)
        astra.data2d.delete([vol_id, sino_id])
        astra.projector.delete(proj_id)


if __name__ == "__main__":
    main()
