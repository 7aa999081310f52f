#!/usr/bin/env python3
"""Peer timings for operators/examples/bench_mri.rs: numpy / scipy FFT round trip and
scikit-image SSIM at 256², min and median of N runs (ms).

.venv/bin/python data-scripts/peer_bench_mri.py [repeats]
"""
import sys
import time

import numpy as np
import scipy.fft as sfft
from skimage.metrics import structural_similarity


def bench(name, f, repeats):
    for _ in range(3):
        f()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        ts.append((time.perf_counter() - t) * 1e3)
    ts.sort()
    print(f"{name:<48} min {ts[0]:>8.3f} ms   median {ts[len(ts) // 2]:>8.3f} ms")


def main():
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    n = 256
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))).astype(np.complex64)
    mask = np.zeros((n, n), dtype=np.complex64)
    mask[:, ::4] = 1

    def np_centred(a, inverse):
        f = np.fft.ifft2 if inverse else np.fft.fft2
        return np.fft.fftshift(f(np.fft.ifftshift(a), norm="ortho"))

    def sp_centred(a, inverse):
        f = sfft.ifft2 if inverse else sfft.fft2
        return sfft.fftshift(f(sfft.ifftshift(a), norm="ortho"))

    bench("numpy fft2 ortho (no shifts)", lambda: np.fft.fft2(x, norm="ortho"), repeats)
    bench("scipy fft2 ortho (no shifts)", lambda: sfft.fft2(x, norm="ortho"), repeats)
    bench("numpy fft2 -> mask -> ifft2 (no shifts)",
          lambda: np.fft.ifft2(np.fft.fft2(x, norm="ortho") * mask, norm="ortho"), repeats)
    bench("scipy fft2 -> mask -> ifft2 (no shifts)",
          lambda: sfft.ifft2(sfft.fft2(x, norm="ortho") * mask, norm="ortho"), repeats)
    bench("numpy centred fft2 -> mask -> ifft2",
          lambda: np_centred(np_centred(x, False) * mask, True), repeats)
    bench("scipy centred fft2 -> mask -> ifft2",
          lambda: sp_centred(sp_centred(x, False) * mask, True), repeats)

    i, j = np.mgrid[0:n, 0:n]
    ref = (((i // 32 + j // 32) % 3) / 2.0).astype(np.float32).astype(np.float64)
    noisy = ref + 0.05 * rng.standard_normal((n, n))
    bench("skimage SSIM (defaults, 7x7 uniform)",
          lambda: structural_similarity(noisy, ref, data_range=1.0), repeats)
    bench("skimage SSIM (Gaussian sigma=1.5)",
          lambda: structural_similarity(noisy, ref, data_range=1.0, gaussian_weights=True,
                                        sigma=1.5, use_sample_covariance=False), repeats)


if __name__ == "__main__":
    main()
