#!/usr/bin/env python3
"""Prepares fastMRI single-coil knee (HDF5) as 2-D MRI training / evaluation slices for medsgm
(layout: data-scripts/prepare_common.py). medsgm simulates the undersampled k-space itself
(unitary centred FFT and a column mask, `medsgm simulate --task mri`), so the output is the
fully sampled target image of each slice.

Input: singlecoil_train/ or singlecoil_val/ files (file1000001.h5, ...) holding `kspace`
[slices, H, W] complex64 and `reconstruction_esc` [slices, 320, 320] float32.
  --target esc     the stored emulated-single-coil reconstruction (fastMRI's target);
  --target kspace  |IFFT2c(kspace)| (the root-sum-of-squares of the single coil), centre-cropped
                   to 320 x 320 like fastMRI's targets (files whose k-space carries a `mask`,
                   i.e. the undersampled challenge test set, are rejected: no ground truth).
Each volume is divided by its maximum (the file's `max` attribute for esc, else computed), the
first and last --skip-edge slices of each volume (mostly noise) are dropped, and slices are
resized to --size². fastMRI has no patient IDs: volumes (files) are split by name; keep
fastMRI's own train/val folders apart if you need its official split.

Usage: prepare_fastmri.py INPUT OUTPUT [--target esc|kspace] [--size N] [--dry-run] ...
"""

import argparse
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import prepare_common as pc  # noqa: E402

CROP = 320


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    pc.add_common_args(p, default_size=320)
    p.add_argument("--target", choices=["esc", "kspace"], default="esc")
    p.add_argument("--skip-edge", type=int, default=0,
                   help="drop this many slices at each end of every volume")
    return p.parse_args(argv)


def ifft2c(k: np.ndarray) -> np.ndarray:
    """Unitary centred inverse 2-D FFT over the last two axes (fastMRI's convention)."""
    axes = (-2, -1)
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=axes), axes=axes, norm="ortho"), axes=axes)


def center_crop(x: np.ndarray, size: int) -> np.ndarray:
    h, w = x.shape[-2:]
    ch, cw = min(size, h), min(size, w)
    top, left = (h - ch) // 2, (w - cw) // 2
    return x[..., top:top + ch, left:left + cw]


def target_volume(f: h5py.File, target: str, rel: str, report: pc.Report):
    """[slices, H, W] magnitude images of one file, divided by the volume maximum, or None."""
    if target == "esc":
        if "reconstruction_esc" not in f:
            report.problem(rel, "no reconstruction_esc (test-set file? use --target kspace on fully sampled data)")
            return None
        vol = np.asarray(f["reconstruction_esc"], dtype=np.float64)
        top = float(f.attrs.get("max", vol.max()))
    else:
        if "kspace" not in f:
            report.problem(rel, "no kspace dataset")
            return None
        if "mask" in f:
            report.problem(rel, "k-space is undersampled (has a mask): no fully sampled target")
            return None
        k = np.asarray(f["kspace"])
        if k.ndim != 3 or not np.iscomplexobj(k):
            report.problem(rel, f"kspace must be complex [slices, H, W], got {k.dtype} {k.shape}")
            return None
        vol = center_crop(np.abs(ifft2c(k)), CROP)
        top = float(vol.max())
    if vol.ndim != 3 or not np.all(np.isfinite(vol)):
        report.problem(rel, "target is not a finite [slices, H, W] volume")
        return None
    if top <= 0:
        report.problem(rel, "empty volume")
        return None
    return np.clip(vol / top, 0.0, 1.0)


def main(argv=None) -> int:
    args = parse_args(argv)
    report = pc.Report()
    writer = pc.Writer(args, report)
    files = sorted(os.path.join(d, n) for d, _, fs in os.walk(args.input) for n in fs
                   if n.endswith((".h5", ".hdf5")))
    if args.max_cases:
        files = files[:args.max_cases]
    for path in files:
        rel = os.path.relpath(path, args.input)
        case = os.path.splitext(os.path.basename(path))[0]
        try:
            with h5py.File(path, "r") as f:
                if args.dry_run:
                    key = "reconstruction_esc" if args.target == "esc" else "kspace"
                    if key not in f:
                        report.problem(rel, f"no {key} dataset")
                        continue
                    if args.target == "kspace" and "mask" in f:
                        report.problem(rel, "k-space is undersampled (has a mask)")
                        continue
                    report.add("volumes")
                    report.add("slices in volumes", f[key].shape[0])
                    continue
                vol = target_volume(f, args.target, rel, report)
        except OSError as e:
            report.problem(rel, f"unreadable HDF5 ({e})")
            continue
        if vol is None:
            continue
        report.add("volumes")
        n = vol.shape[0]
        for k in range(args.skip_edge, n - args.skip_edge):
            writer.slice(case, case, k, pc.resize(vol[k], args.size), rel)
    writer.finish(pc.settings(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
