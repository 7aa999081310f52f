#!/usr/bin/env python3
"""Prepares BraTS 2021 (NIfTI) as 2-D MRI training / evaluation slices for medsgm (layout:
data-scripts/prepare_common.py).

Input: the BraTS 2021 training folder, one folder per case (BraTS2021_00000/) holding
BraTS2021_00000_{t1,t1ce,t2,flair,seg}.nii.gz. For every chosen --modality of every case:
  1. the volume is read with nibabel and reoriented to RAS (canonical), axial slices are
     taken along the third axis;
  2. percentile scaling: the --percentile-th percentile of the non-zero (brain) voxels maps
     to 1, values above are clipped, negatives set to 0 (BraTS volumes are skull-stripped with
     a zero background);
  3. slices whose brain covers less than --min-brain-fraction of the image are skipped
     (the empty slices at the top and bottom of the volume);
  4. resized to --size² (paper: 240, the native BraTS size).
Cases are split by their ID, so all modalities and slices of a patient share one split.

Usage: prepare_brats.py INPUT OUTPUT [--modality flair [t2 ...]] [--size N] [--dry-run] ...
"""

import argparse
import os
import re
import sys

import nibabel as nib
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import prepare_common as pc  # noqa: E402

MODALITIES = ("t1", "t1ce", "t2", "flair")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    pc.add_common_args(p, default_size=240)
    p.add_argument("--modality", nargs="+", choices=MODALITIES, default=["t1"])
    p.add_argument("--percentile", type=float, default=99.5,
                   help="percentile of the brain voxels mapped to 1")
    p.add_argument("--min-brain-fraction", type=float, default=0.05,
                   help="skip slices whose brain covers less of the image")
    p.add_argument("--slice-step", type=int, default=1, help="keep every k-th slice")
    return p.parse_args(argv)


def find_cases(root: str, report: pc.Report):
    """{case id: {modality: path}} of every folder holding <case>_<modality>.nii[.gz] files."""
    pattern = re.compile(r"^(.+)_(t1|t1ce|t2|flair|seg)\.nii(\.gz)?$")
    cases = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            m = pattern.match(name)
            if m:
                cases.setdefault(m.group(1), {})[m.group(2)] = os.path.join(dirpath, name)
            elif name.endswith((".nii", ".nii.gz")):
                report.problem(os.path.relpath(os.path.join(dirpath, name), root),
                               "NIfTI file not named <case>_<t1|t1ce|t2|flair|seg>.nii.gz")
    return cases


def scale(vol: np.ndarray, percentile: float) -> np.ndarray:
    """Divides by the percentile of the non-zero voxels and clips to [0, 1]."""
    brain = vol[vol > 0]
    if brain.size == 0:
        return np.zeros_like(vol, dtype=np.float64)
    top = np.percentile(brain, percentile)
    return np.clip(vol / top, 0.0, 1.0) if top > 0 else np.zeros_like(vol, dtype=np.float64)


def main(argv=None) -> int:
    args = parse_args(argv)
    report = pc.Report()
    cases = find_cases(args.input, report)
    writer = pc.Writer(args, report)
    done = 0
    for case in sorted(cases):
        if args.max_cases and done >= args.max_cases:
            break
        missing = [m for m in args.modality if m not in cases[case]]
        if missing:
            report.problem(case, f"missing modality {', '.join(missing)}")
            continue
        done += 1
        report.add("cases")
        for mod in args.modality:
            path = cases[case][mod]
            rel = os.path.relpath(path, args.input)
            try:
                img = nib.as_closest_canonical(nib.load(path))
                shape = img.shape
                if len(shape) != 3 or min(shape) < 2:
                    report.problem(rel, f"not a 3-D volume: shape {shape}")
                    continue
                report.add("volumes")
                if args.dry_run:
                    report.add("slices in volumes", shape[2])
                    continue
                vol = np.asarray(img.dataobj, dtype=np.float64)
            except Exception as e:
                report.problem(rel, f"unreadable NIfTI ({type(e).__name__}: {e})")
                continue
            if not np.all(np.isfinite(vol)):
                report.problem(rel, "non-finite voxels")
                continue
            vol = scale(vol, args.percentile)
            for k in range(0, vol.shape[2], args.slice_step):
                s = np.rot90(vol[:, :, k])  # RAS (i=x, j=y) to image rows top = anterior
                if np.mean(s > 0) < args.min_brain_fraction:
                    report.add("slices skipped (empty)")
                    continue
                writer.slice(case, f"{case}_{mod}", k, pc.resize(s, args.size), rel)
    writer.finish(pc.settings(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
