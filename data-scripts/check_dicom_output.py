#!/usr/bin/env python3
"""Independent check of the DICOM series medsgm writes (tests/dicom_write.rs with
MEDSGM_DICOM_OUT=DIR leaves them in DIR, each series folder NAME with the values it should hold
in NAME.npy).

For every series, pydicom must read every file; the files must share one new, valid
SeriesInstanceUID and StudyInstanceUID, have distinct valid SOPInstanceUIDs, ImageType starting
DERIVED\\SECONDARY, and pydicom's apply_modality_lut values, ordered by InstanceNumber, must equal
the expected values within half a RescaleSlope. Exits non-zero on any failure.

Usage: python3 data-scripts/check_dicom_output.py DIR   (needs pydicom and numpy)
"""
import re
import sys
from pathlib import Path

import numpy as np
import pydicom
from pydicom.pixels import apply_modality_lut

UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
root = Path(sys.argv[1])
failures = []
checked = 0
for expected_path in sorted(root.glob("*.npy")):
    name = expected_path.stem
    expected = np.load(expected_path).astype(np.float64)
    files = sorted((root / name).glob("*.dcm"))
    datasets = sorted((pydicom.dcmread(f) for f in files), key=lambda d: int(d.InstanceNumber))
    if len(datasets) != expected.shape[0]:
        failures.append(f"{name}: {len(datasets)} files for {expected.shape[0]} slices")
        continue
    series = {d.SeriesInstanceUID for d in datasets}
    studies = {d.StudyInstanceUID for d in datasets}
    sops = [d.SOPInstanceUID for d in datasets]
    if len(series) != 1 or len(studies) != 1 or len(set(sops)) != len(sops):
        failures.append(f"{name}: UIDs not consistent")
    for uid in [*series, *studies, *sops]:
        if len(uid) > 64 or not UID.match(uid):
            failures.append(f"{name}: invalid UID {uid}")
    for d in datasets:
        if list(d.ImageType)[:2] != ["DERIVED", "SECONDARY"]:
            failures.append(f"{name}: ImageType {list(d.ImageType)}")
        if d.file_meta.MediaStorageSOPInstanceUID != d.SOPInstanceUID:
            failures.append(f"{name}: file meta SOP Instance UID differs")
    values = np.stack([apply_modality_lut(d.pixel_array, d).astype(np.float64) for d in datasets])
    slope = float(datasets[0].get("RescaleSlope", 1.0))
    err = float(np.abs(values - expected).max())
    if err > 0.5 * slope * 1.001 + 1e-6:
        failures.append(f"{name}: max |pydicom - expected| = {err} > slope/2 = {slope / 2}")
    checked += len(datasets)
    print(f"{name}: {len(datasets)} file(s), max error {err:.3g} (slope {slope:.3g})")

if checked == 0:
    failures.append(f"no series found under {root}")
for f in failures:
    print("FAIL", f)
print(f"{checked - len(failures) if not failures else 0} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
