#!/usr/bin/env python3
"""Reference values for medsgm-operators' metrics and k-space masks.

Writes operators/tests/fixtures/metrics/:
  pair_<name>_x.npy, pair_<name>_ref.npy   float32 image pairs (seeded numpy RNG)
  ssim_map_<name>_<preset>.npy             float64 full SSIM maps (scikit-image full=True)
  metrics.json                             PSNR / SSIM (both presets) / NMSE per pair,
                                           equispaced mask columns (score_inverse_problems rule)

Run:  python3 -m venv .venv && .venv/bin/pip install scikit-image numpy
      .venv/bin/python data-scripts/make_metric_fixtures.py
The images are float32 so that the Rust code sees exactly the values scikit-image saw (cast to
float64 here before every metric call).
"""
import json
import pathlib

import numpy as np
import skimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

OUT = pathlib.Path(__file__).resolve().parent.parent / "operators/tests/fixtures/metrics"

PRESETS = {
    "gaussian": dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False),
    "skimage": dict(),  # 7x7 uniform window, sample covariance
}


def blobs(rng, h, w, n):
    """Smooth random image: a sum of Gaussian blobs plus a few sharp rectangles."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w))
    for _ in range(n):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        s = rng.uniform(2, 10)
        img += rng.uniform(0.2, 1.0) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
    for _ in range(3):
        y0, x0 = rng.integers(0, h - 8), rng.integers(0, w - 8)
        img[y0:y0 + rng.integers(4, 12), x0:x0 + rng.integers(4, 12)] += rng.uniform(0.2, 0.6)
    return img


def make_pair(rng, h, w):
    ref = blobs(rng, h, w, 12)
    x = ref + rng.normal(0, 0.05, size=(h, w)) - 0.03 * np.roll(ref, 1, axis=1)
    return x.astype(np.float32), ref.astype(np.float32)


def song_equispaced_columns(w, acceleration, center_fraction):
    """score_inverse_problems get_cartesian_mask / fastMRI EquispacedMaskFunc, fixed offset."""
    num_low = int(round(w * center_fraction))
    mask = np.zeros(w, dtype=bool)
    pad = (w - num_low + 1) // 2
    mask[pad:pad + num_low] = True
    adj = (acceleration * (num_low - w)) / (num_low * acceleration - w)
    offset = round(adj) // 2
    samples = np.around(np.arange(offset, w - 1, adj)).astype(np.uint32)
    mask[samples] = True
    return [int(c) for c in np.nonzero(mask)[0]]


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240611)
    record = {"skimage_version": skimage.__version__, "numpy_version": np.__version__, "pairs": []}
    for name, (h, w) in {"48x40": (48, 40), "64x64": (64, 64)}.items():
        x, ref = make_pair(rng, h, w)
        np.save(OUT / f"pair_{name}_x.npy", x)
        np.save(OUT / f"pair_{name}_ref.npy", ref)
        x64, ref64 = x.astype(np.float64), ref.astype(np.float64)
        entry = {"name": name, "shape": [h, w], "data_ranges": []}
        for dr in [1.0, float(ref64.max() - ref64.min())]:
            e = {"data_range": dr,
                 "psnr": float(peak_signal_noise_ratio(ref64, x64, data_range=dr))}
            for preset, kw in PRESETS.items():
                e[f"ssim_{preset}"] = float(structural_similarity(x64, ref64, data_range=dr, **kw))
            entry["data_ranges"].append(e)
        entry["nmse"] = float(np.sum((ref64 - x64) ** 2) / np.sum(ref64 ** 2))
        if name == "48x40":
            for preset, kw in PRESETS.items():
                _, smap = structural_similarity(x64, ref64, data_range=1.0, full=True, **kw)
                np.save(OUT / f"ssim_map_{name}_{preset}.npy", smap.astype(np.float64))
        record["pairs"].append(entry)

    masks = []
    for w, r in [(256, 4), (256, 8), (256, 24), (320, 4), (255, 6), (100, 3.3), (64, 2)]:
        n_keep = w / r
        cf = n_keep / 1000
        masks.append({"w": w, "acceleration": r, "center_fraction": cf,
                      "columns": song_equispaced_columns(w, r, cf)})
    for w, r, cf in [(320, 4, 0.08), (368, 8, 0.04), (101, 3, 0.1)]:
        masks.append({"w": w, "acceleration": r, "center_fraction": cf,
                      "columns": song_equispaced_columns(w, r, cf)})
    record["equispaced_masks"] = masks
    (OUT / "metrics.json").write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
