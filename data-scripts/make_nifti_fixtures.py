#!/usr/bin/env python3
"""Writes nibabel-generated NIfTI-1 fixtures for medsgm's NIfTI reader tests (tests/nifti.rs).

Every volume has shape (5, 4, 3) and voxel values v[i, j, k] = 100 i + 10 j + k - 50 (stored
as float32, or as big-endian int16 with scl_slope = 0.5, scl_inter = -25 so that the scaled
values are the same formula). expected.json records, per file, the affine nibabel reports
(`img.affine`: sform if its code > 0, else qform) so the Rust reader is checked against nibabel.

Usage: python3 data-scripts/make_nifti_fixtures.py tests/fixtures/nifti
(needs numpy and nibabel in a venv)
"""
import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
i, j, k = np.meshgrid(np.arange(5), np.arange(4), np.arange(3), indexing="ij")
values = (100 * i + 10 * j + k - 50).astype(np.float32)

# A rotation (30° about z) with anisotropic voxels and an offset.
c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
affine = np.eye(4)
affine[:3, :3] = rot @ np.diag([0.8, 0.9, 2.5])
affine[:3, 3] = [10.0, -20.0, 5.5]
flipped = affine.copy()
flipped[:3, 2] *= -1  # left-handed: qfac = -1

expected = {}

img = nib.Nifti1Image(values, None)
img.set_qform(affine, code=1)
img.set_sform(None, code=0)
nib.save(img, out / "qform_only.nii.gz")

img = nib.Nifti1Image(values, None)
img.set_qform(flipped, code=1)
img.set_sform(None, code=0)
nib.save(img, out / "qform_flipped.nii")

sform = affine.copy()
sform[0, 1] += 0.05  # shear: only representable by the sform
img = nib.Nifti1Image(values, None)
img.set_sform(sform, code=2)
img.set_qform(affine, code=1)
nib.save(img, out / "sform.nii")

stored = ((values + 25.0) / 0.5).astype(">i2")
hdr = nib.Nifti1Header(endianness=">")
hdr.set_data_dtype(">i2")
img = nib.Nifti1Image(stored, affine, header=hdr)
img.header.set_slope_inter(0.5, -25.0)
img.set_sform(affine, code=1)
nib.save(img, out / "int16_be_scaled.nii")

for name in ["qform_only.nii.gz", "qform_flipped.nii", "sform.nii", "int16_be_scaled.nii"]:
    back = nib.load(out / name)
    assert np.allclose(back.get_fdata(), values), name
    expected[name] = {"affine": back.affine.tolist(), "zooms": [float(z) for z in back.header.get_zooms()]}

(out / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
print(f"wrote fixtures to {out}")
