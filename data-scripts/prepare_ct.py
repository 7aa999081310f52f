#!/usr/bin/env python3
"""Prepares CT DICOM datasets (LIDC-IDRI, AAPM Low-Dose CT Grand Challenge) as 2-D training /
evaluation slices for medsgm (layout: data-scripts/prepare_common.py).

Preprocessing (thesis §8.4, B.6.3: "HU converted to attenuation coefficients, background pixels
set to 0"):
  1. every CT series under INPUT is grouped by SeriesInstanceUID and sorted along the slice
     normal (ImagePositionPatient · normal, InstanceNumber as fallback);
  2. HU = stored value x RescaleSlope + RescaleIntercept;
  3. attenuation relative to water, mu/mu_water = 1 + HU/1000, scaled by the window to [0, 1]:
     value = clip((HU - hu_min) / (hu_max - hu_min), 0, 1); with the default hu_min = -1000
     (air) this is proportional to the linear attenuation coefficient, and with hu_max = 1000 it
     is exactly the [-1000, 1000] HU window of medsgm's CT prior (src/eval/testset.rs CT_WINDOW);
  4. background zeroed: pixels outside the body (the largest connected region above
     --body-hu after hole filling; table, air and the outside of the field of view) are set to 0;
  5. axial slices with less than --min-body-fraction body pixels are skipped; every
     --slice-step-th slice is kept;
  6. resized to --size² (paper: 320 for LIDC, 512 for LDCT).

LIDC-IDRI: patients LIDC-IDRI-XXXX/<study>/<series>/*.dcm (the collection also holds CR/DX
radiographs, skipped: modality must be CT). AAPM LDCT: patients L067, ... with full-dose and
quarter-dose series (*.IMA); --dataset aapm keeps full-dose series only (path or
SeriesDescription contains "full"), as the paper did. Patients are identified by PatientID
(falling back to the top-level folder name) and split by a hash of it.

Usage: prepare_ct.py INPUT OUTPUT [--dataset lidc|aapm] [--size N] [--dry-run] ...
"""

import argparse
import os
import sys
from collections import defaultdict

import numpy as np
import pydicom
from scipy import ndimage

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import prepare_common as pc  # noqa: E402

DEFAULT_SIZE = {"lidc": 320, "aapm": 512}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=["lidc", "aapm"], default="lidc")
    pc.add_common_args(p, default_size=0)
    p.add_argument("--hu-min", type=float, default=-1000.0, help="HU mapped to 0 (air)")
    p.add_argument("--hu-max", type=float, default=1000.0, help="HU mapped to 1")
    p.add_argument("--body-hu", type=float, default=-500.0, help="body mask threshold (HU)")
    p.add_argument("--min-body-fraction", type=float, default=0.05,
                   help="skip slices whose body covers less of the image")
    p.add_argument("--slice-step", type=int, default=1, help="keep every k-th slice")
    p.add_argument("--min-slices", type=int, default=10,
                   help="skip series with fewer images (scouts, localisers)")
    p.add_argument("--dose", choices=["full", "quarter", "any"], default=None,
                   help="AAPM series to keep (default: full for aapm, any for lidc)")
    args = p.parse_args(argv)
    if args.size == 0:
        args.size = DEFAULT_SIZE[args.dataset]
    if args.dose is None:
        args.dose = "full" if args.dataset == "aapm" else "any"
    if not args.hu_max > args.hu_min:
        p.error("--hu-max must exceed --hu-min")
    return args


def scan(root: str, report: pc.Report):
    """Headers of every DICOM file under `root`, grouped by (patient, series)."""
    series = defaultdict(list)
    for dirpath, _, files in os.walk(root):
        for name in sorted(files):
            path = os.path.join(dirpath, name)
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=True)
            except Exception as e:  # not DICOM, or unreadable
                if name.lower().endswith((".dcm", ".ima")):
                    report.problem(os.path.relpath(path, root), f"unreadable DICOM ({type(e).__name__})")
                else:
                    report.add("non-DICOM files skipped")
                continue
            report.add("DICOM files")
            top = os.path.relpath(path, root).split(os.sep)[0]
            patient = str(getattr(ds, "PatientID", "") or top)
            uid = str(getattr(ds, "SeriesInstanceUID", "") or dirpath)
            series[(patient, uid)].append((path, ds))
    return series


def keep_series(args, key, items, root, report) -> bool:
    ds = items[0][1]
    where = f"{key[0]} series {os.path.relpath(os.path.dirname(items[0][0]), root)}"
    if getattr(ds, "Modality", "") != "CT":
        report.add("non-CT series skipped")
        return False
    if len(items) < args.min_slices:
        report.add("short series skipped")
        return False
    if args.dose != "any":
        text = (os.path.relpath(items[0][0], root) + " " + str(getattr(ds, "SeriesDescription", ""))).lower()
        if args.dose not in text:
            report.add(f"series without '{args.dose}' in path/description skipped")
            return False
    shapes = {(int(d.Rows), int(d.Columns)) for _, d in items if "Rows" in d}
    if len(shapes) != 1:
        report.problem(where, f"slices of different sizes {sorted(shapes)}")
        return False
    return True


def sort_slices(items, where, report):
    """Orders the slices along the normal of the first slice's orientation."""
    try:
        o = np.array(items[0][1].ImageOrientationPatient, dtype=float)
        normal = np.cross(o[:3], o[3:])
        keyed = [(float(np.dot(normal, np.array(d.ImagePositionPatient, dtype=float))), p, d)
                 for p, d in items]
    except (AttributeError, ValueError, TypeError):
        report.problem(where, "no ImagePositionPatient/ImageOrientationPatient: InstanceNumber order")
        keyed = [(float(getattr(d, "InstanceNumber", 0) or 0), p, d) for p, d in items]
    keyed.sort(key=lambda t: t[0])
    pos = [k for k, _, _ in keyed]
    if len(set(pos)) != len(pos):
        report.problem(where, "several slices at the same position")
    gaps = np.diff(pos)
    if len(gaps) and gaps.max() > 1.5 * max(np.median(gaps), 1e-6):
        report.problem(where, f"non-uniform slice spacing (median {np.median(gaps):.2f}, max {gaps.max():.2f} mm)")
    return [(p, d) for _, p, d in keyed]


def body_mask(hu: np.ndarray, threshold: float) -> np.ndarray:
    """The largest connected region above `threshold`, holes filled (patient without table)."""
    m = ndimage.binary_opening(hu > threshold, iterations=2)
    labels, n = ndimage.label(m)
    if n == 0:
        return m
    sizes = ndimage.sum_labels(m, labels, index=np.arange(1, n + 1))
    return ndimage.binary_fill_holes(labels == 1 + int(np.argmax(sizes)))


def to_hu(ds) -> np.ndarray:
    arr = ds.pixel_array.astype(np.float64)
    slope = float(getattr(ds, "RescaleSlope", 1) or 1)
    intercept = float(getattr(ds, "RescaleIntercept", 0) or 0)
    return arr * slope + intercept


def main(argv=None) -> int:
    args = parse_args(argv)
    report = pc.Report()
    series = scan(args.input, report)
    writer = pc.Writer(args, report)
    cases = set()
    for key in sorted(series):
        items = series[key]
        if not keep_series(args, key, items, args.input, report):
            continue
        if args.max_cases and key[0] not in cases and len(cases) >= args.max_cases:
            break
        cases.add(key[0])
        report.add("CT series")
        where = f"{key[0]} series {os.path.relpath(os.path.dirname(items[0][0]), args.input)}"
        ordered = sort_slices(items, where, report)
        series_index = sum(1 for k in series if k[0] == key[0] and k < key)
        if args.dry_run:  # decode one slice per series: catches missing codecs, bad pixel data
            mid = ordered[len(ordered) // 2][0]
            try:
                to_hu(pydicom.dcmread(mid))
            except Exception as e:
                report.problem(os.path.relpath(mid, args.input), f"cannot decode pixels ({e})")
        for k in range(0, len(ordered), args.slice_step):
            path, _ = ordered[k]
            report.add("slices considered")
            if args.dry_run:
                writer.slice(key[0], key[0], k, None, path)
                continue
            try:
                hu = to_hu(pydicom.dcmread(path))
            except Exception as e:
                report.problem(os.path.relpath(path, args.input), f"cannot decode pixels ({e})")
                continue
            mask = body_mask(hu, args.body_hu)
            if mask.mean() < args.min_body_fraction:
                report.add("slices skipped (little body)")
                continue
            img = np.clip((hu - args.hu_min) / (args.hu_max - args.hu_min), 0.0, 1.0)
            img[~mask] = 0.0
            case = key[0] if series_index == 0 else f"{key[0]}_s{series_index}"
            writer.slice(key[0], case, k, pc.resize(img, args.size), os.path.relpath(path, args.input))
    report.add("patients", len(cases))
    writer.finish(pc.settings(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
