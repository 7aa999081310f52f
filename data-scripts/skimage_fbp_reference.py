#!/usr/bin/env python3
"""Reference numbers from scikit-image for the Radon/FBP tests of medsgm-operators.

Computes, for the modified Shepp-Logan phantom (Toft's values, 8x8-supersampled exactly as
`medsgm_operators::phantom::shepp_logan`), 180 views linspace(0, 180, endpoint=False):
  * the PSNR (data range 1, whole image, reference = the phantom) of scikit-image's `iradon`
    (circle=True, each filter) applied to (a) scikit-image's own `radon` of the phantom and
    (b) the exact analytic sinogram of the ellipses in scikit-image's geometry;
  * the relative L2 error of scikit-image's `radon` against the analytic sinogram, sampled at
    the bin centres and bin-averaged.
Scikit-image rotates about pixel (N//2, N//2), i.e. the point (x, y) = (1/2, -1/2) from the
geometric centre for even N, with bin k at t = k - N//2 from it; the analytic sinogram is
evaluated in that convention.

Regenerate the fixture (from the repository root):
    python3 -m venv .venv && .venv/bin/pip install scikit-image numpy
    .venv/bin/python data-scripts/skimage_fbp_reference.py > operators/tests/fixtures/skimage_fbp_reference.json
"""
import json
import sys

import numpy as np
import skimage
from skimage.transform import iradon, radon

SIZE = 256
N_VIEWS = 180
SUPERSAMPLE = 8

# value, a, b, x0, y0, phi (degrees), normalised to the image square [-1, 1]^2
TOFT = [
    (1.0, 0.69, 0.92, 0.0, 0.0, 0.0),
    (-0.8, 0.6624, 0.8740, 0.0, -0.0184, 0.0),
    (-0.2, 0.1100, 0.3100, 0.22, 0.0, -18.0),
    (-0.2, 0.1600, 0.4100, -0.22, 0.0, 18.0),
    (0.1, 0.2100, 0.2500, 0.0, 0.35, 0.0),
    (0.1, 0.0460, 0.0460, 0.0, 0.1, 0.0),
    (0.1, 0.0460, 0.0460, 0.0, -0.1, 0.0),
    (0.1, 0.0460, 0.0230, -0.08, -0.605, 0.0),
    (0.1, 0.0230, 0.0230, 0.0, -0.606, 0.0),
    (0.1, 0.0230, 0.0460, 0.06, -0.605, 0.0),
]


def phantom(n, ss):
    """Mean of ss x ss point samples per pixel; row 0 at the top, y up, pixel centres at
    x = j - (n-1)/2, y = (n-1)/2 - i; clamped to [0, 1]."""
    offs = (np.arange(ss) + 0.5) / ss - 0.5
    c = (n - 1) / 2
    xs = ((np.arange(n)[:, None] - c) + offs[None, :]).ravel() / (n / 2)
    ys = ((c - np.arange(n)[:, None]) + offs[None, :]).ravel() / (n / 2)
    x, y = np.meshgrid(xs, ys)
    img = np.zeros_like(x)
    for v, a, b, x0, y0, phi in TOFT:
        p = np.deg2rad(phi)
        u, w = x - x0, y - y0
        xr = u * np.cos(p) + w * np.sin(p)
        yr = -u * np.sin(p) + w * np.cos(p)
        img += v * ((xr / a) ** 2 + (yr / b) ** 2 <= 1.0)
    img = img.reshape(n, ss, n, ss).mean(axis=(1, 3))
    return np.clip(img, 0.0, 1.0)


def analytic(n, theta_deg, t, width):
    """Line integrals (pixel units) of the ellipses along x cos(th) + y sin(th) = t, averaged
    over [t - width/2, t + width/2] when width > 0. t has shape (n_det, n_views)."""
    th = np.deg2rad(theta_deg)[None, :]
    out = np.zeros_like(t)
    h = n / 2
    for v, a, b, x0, y0, phi in TOFT:
        A, B = a * h, b * h
        alpha = th - np.deg2rad(phi)
        s2 = (A * np.cos(alpha)) ** 2 + (B * np.sin(alpha)) ** 2
        s = np.sqrt(s2)
        tau = t - (x0 * h * np.cos(th) + y0 * h * np.sin(th))
        scale = v * 2 * A * B / s2
        if width > 0:
            def F(z):
                z = np.clip(z, -s, s)
                return 0.5 * (z * np.sqrt(np.maximum(s2 - z * z, 0)) + s2 * np.arcsin(z / s))
            out += scale * (F(tau + width / 2) - F(tau - width / 2)) / width
        else:
            out += scale * np.sqrt(np.maximum(s2 - tau**2, 0))
    return out


def psnr(x, ref):
    return float(10 * np.log10(1.0 / np.mean((x - ref) ** 2)))


def main():
    img = phantom(SIZE, SUPERSAMPLE)
    theta = np.linspace(0.0, 180.0, N_VIEWS, endpoint=False)
    sino = radon(img, theta=theta, circle=True)  # [n_det, n_views]
    th = np.deg2rad(theta)[None, :]
    k = np.arange(SIZE)[:, None] - SIZE // 2
    # t measured from the geometric centre of the bin-k ray of scikit-image
    t_geo = k + 0.5 * np.cos(th) - 0.5 * np.sin(th)
    exact_point = analytic(SIZE, theta, t_geo, 0.0)
    exact_bin = analytic(SIZE, theta, t_geo, 1.0)
    rel = lambda a, b: float(np.linalg.norm(a - b) / np.linalg.norm(b))
    filters = {
        "ram-lak": "ramp",
        "shepp-logan": "shepp-logan",
        "cosine": "cosine",
        "hamming": "hamming",
        "hann": "hann",
    }
    out = {
        "generator": "data-scripts/skimage_fbp_reference.py",
        "skimage_version": skimage.__version__,
        "numpy_version": np.__version__,
        "size": SIZE,
        "n_views": N_VIEWS,
        "supersample": SUPERSAMPLE,
        "phantom_sum": float(img.sum()),
        "radon_rel_l2_vs_analytic_point": rel(sino, exact_point),
        "radon_rel_l2_vs_analytic_binned": rel(sino, exact_bin),
        "fbp_psnr_own_radon": {
            name: psnr(iradon(sino, theta=theta, filter_name=f, circle=True), img)
            for name, f in filters.items()
        },
        "fbp_psnr_analytic_binned": {
            name: psnr(iradon(exact_bin, theta=theta, filter_name=f, circle=True), img)
            for name, f in filters.items()
        },
    }
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
