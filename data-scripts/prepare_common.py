"""Shared parts of the dataset preparation scripts (prepare_ct.py, prepare_brats.py,
prepare_fastmri.py): the output layout medsgm reads, the deterministic patient split, resizing
and the dry-run report.

Output layout (what `medsgm train` with `[data] kind = "folder"` and `medsgm bench recon --task mri
--data` read): OUT/{train,val,test}/<case>_<slice>.npy, each a 2-D float32 array in [0, 1] of
side --size, plus OUT/manifest.csv (one row per slice: file, split, case, source, slice index)
and OUT/prepare.json (the command's settings). Slices of one patient always land in the same
split.
"""

import argparse
import csv
import hashlib
import json
import os
import sys

import numpy as np
from scipy import ndimage

SPLITS = ("train", "val", "test")


def add_common_args(p: argparse.ArgumentParser, default_size: int) -> None:
    p.add_argument("input", help="folder holding the dataset as downloaded")
    p.add_argument("output", nargs="?", help="output folder (not needed with --dry-run)")
    p.add_argument("--size", type=int, default=default_size, help="output side N (N x N)")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--test-fraction", type=float, default=0.1)
    p.add_argument("--split-salt", default="medsgm", help="salt of the patient-hash split")
    p.add_argument("--max-cases", type=int, default=0, help="stop after this many cases (0: all)")
    p.add_argument("--dry-run", action="store_true",
                   help="validate and count; write nothing")


def split_of(case_id: str, val_fraction: float, test_fraction: float, salt: str) -> str:
    """Deterministic split of a patient: a uniform number from SHA-256(salt/case) picks
    test (< test_fraction), val (< test + val) or train. Adding or removing other patients never
    moves a patient to another split."""
    h = hashlib.sha256(f"{salt}/{case_id}".encode()).digest()
    u = int.from_bytes(h[:8], "big") / 2.0**64
    if u < test_fraction:
        return "test"
    if u < test_fraction + val_fraction:
        return "val"
    return "train"


def resize(img: np.ndarray, size: int) -> np.ndarray:
    """Resizes a 2-D image to size x size (bilinear; Gaussian anti-aliasing when shrinking, as
    scikit-image's resize does). Non-square inputs are zero-padded to a square first, so the
    aspect ratio is kept."""
    h, w = img.shape
    if h != w:
        s = max(h, w)
        sq = np.zeros((s, s), dtype=np.float64)
        sq[(s - h) // 2:(s - h) // 2 + h, (s - w) // 2:(s - w) // 2 + w] = img
        img = sq
    img = np.asarray(img, dtype=np.float64)
    n = img.shape[0]
    if n == size:
        return img.astype(np.float32)
    factor = n / size
    if factor > 1:
        img = ndimage.gaussian_filter(img, sigma=(factor - 1) / 2, mode="nearest")
    out = ndimage.zoom(img, size / n, order=1, mode="nearest", grid_mode=True)
    return np.clip(out[:size, :size], 0.0, 1.0).astype(np.float32)


class Report:
    """Counts and problems, printed at the end (also in --dry-run)."""

    def __init__(self):
        self.counts = {}
        self.problems = []

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def problem(self, where: str, what: str) -> None:
        self.problems.append(f"{where}: {what}")

    def print(self) -> None:
        for k, v in self.counts.items():
            print(f"{k}: {v}")
        print(f"problems: {len(self.problems)}")
        for p in self.problems[:50]:
            print(f"  {p}")
        if len(self.problems) > 50:
            print(f"  ... and {len(self.problems) - 50} more")


class Writer:
    """Writes slices into OUT/<split>/ and the manifest; does nothing in dry-run mode."""

    def __init__(self, args, report: Report):
        self.args = args
        self.report = report
        self.rows = []
        if not args.dry_run:
            if not args.output:
                sys.exit("error: an output folder is needed (or use --dry-run)")
            for s in SPLITS:
                os.makedirs(os.path.join(args.output, s), exist_ok=True)

    def slice(self, patient: str, case_id: str, index: int, img, source: str) -> None:
        """Stores one [0, 1] slice (already at the output size) of volume `case_id` of
        `patient` in the patient's split; in dry-run mode only counts it (`img` may be None)."""
        split = split_of(patient, self.args.val_fraction, self.args.test_fraction,
                         self.args.split_salt)
        self.report.add(f"slices ({split})")
        if self.args.dry_run:
            return
        if img.shape != (self.args.size, self.args.size) or not np.all(np.isfinite(img)):
            raise ValueError(f"{source}: bad slice {img.shape}")
        name = f"{safe(case_id)}_{index:04d}.npy"
        path = os.path.join(self.args.output, split, name)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            np.save(f, np.clip(img, 0.0, 1.0).astype("<f4"))
        os.replace(tmp, path)
        self.rows.append((f"{split}/{name}", split, patient, source, index))

    def finish(self, settings: dict) -> None:
        self.report.print()
        if self.args.dry_run:
            return
        with open(os.path.join(self.args.output, "manifest.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["file", "split", "patient", "source", "slice"])
            w.writerows(sorted(self.rows))
        with open(os.path.join(self.args.output, "prepare.json"), "w") as f:
            json.dump(settings, f, indent=2, sort_keys=True)
            f.write("\n")
        print(f"wrote {len(self.rows)} slices to {self.args.output}")


def safe(name: str) -> str:
    """A file-name-safe version of an identifier."""
    return "".join(c if c.isalnum() or c in "-." else "_" for c in name)


def settings(args) -> dict:
    return {k: v for k, v in vars(args).items() if k not in ("dry_run",)}
