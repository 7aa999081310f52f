#!/usr/bin/env python3
"""numpy / scipy / scikit-image peer of `medsgm bench operators` (MRI part, src/bench/mri.rs).

At 256², complex64: the centred unitary 2-D FFT (fftshift∘fft2∘ifftshift, norm="ortho") and the
masked round trip centred fft2 → mask (every 4th column) → centred ifft2, in numpy and in
scipy.fft (workers = --threads); scikit-image SSIM with its defaults (7×7 uniform window, sample
covariance) and with Wang-2004 settings (Gaussian σ = 1.5, population covariance) on the same
blocky 256² reference plus noise as medsgm. One JSON row per line (see peer_bench_common.py).

Usage: .venv/bin/python data-scripts/peer_bench_mri.py [--threads 2] [--repeats 50]
"""
import numpy as np
import scipy
import scipy.fft as sfft
import skimage
from skimage.metrics import structural_similarity

from peer_bench_common import emit, parse_args, timings_ms


def main():
    args = parse_args(__doc__, 50)
    n = 256
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))).astype(np.complex64)
    mask = np.zeros((n, n), dtype=np.complex64)
    mask[:, ::4] = 1

    def numpy_centred(a, inverse):
        f = np.fft.ifft2 if inverse else np.fft.fft2
        return np.fft.fftshift(f(np.fft.ifftshift(a), norm="ortho"))

    def scipy_centred(a, inverse):
        f = sfft.ifft2 if inverse else sfft.fft2
        return sfft.fftshift(f(sfft.ifftshift(a), norm="ortho", workers=args.threads))

    libs = [("mri-numpy", numpy_centred, f"numpy {np.__version__}"),
            ("mri-scipy", scipy_centred, f"scipy {scipy.__version__}, workers={args.threads}")]
    for group, centred, note in libs:
        emit(group, "fft2 256² complex64 (centred, unitary)",
             timings_ms(lambda: centred(x, False), args.repeats, warmup=3), note)
        for variant in ["preallocated", "LinearOperator, allocating"]:
            emit(group, f"fft2 -> mask -> ifft2 256² ({variant})",
                 timings_ms(lambda: centred(centred(x, False) * mask, True), args.repeats,
                            warmup=3),
                 note + "; numpy/scipy always allocate")

    i, j = np.mgrid[0:n, 0:n]
    ref = (((i // 32 + j // 32) % 3) / 2.0).astype(np.float32).astype(np.float64)
    noisy = ref + 0.05 * rng.standard_normal((n, n))
    note = f"scikit-image {skimage.__version__}, float64"
    emit("mri-skimage", "SSIM 256² (skimage)",
         timings_ms(lambda: structural_similarity(noisy, ref, data_range=1.0), args.repeats,
                    warmup=3), note + ", 7×7 uniform, sample covariance")
    emit("mri-skimage", "SSIM 256² (gaussian)",
         timings_ms(lambda: structural_similarity(noisy, ref, data_range=1.0,
                                                  gaussian_weights=True, sigma=1.5,
                                                  use_sample_covariance=False),
                    args.repeats, warmup=3), note + ", Gaussian σ = 1.5, population covariance")


if __name__ == "__main__":
    main()
