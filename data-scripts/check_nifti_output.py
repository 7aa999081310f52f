#!/usr/bin/env python3
"""Checks with nibabel that NIfTI files written by medsgm keep their input's geometry
(issue 5, "NIfTI"): for every OUT/out-<name> written by tests/nifti.rs from the fixture
tests/fixtures/nifti/<name>, nibabel must report the same affine, qform/sform (and codes),
pixdim, xyzt units and voxel values equal to twice the fixture's (the test doubles them).

Usage: check_nifti_output.py OUT_DIR FIXTURE_DIR
"""
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

out, fixtures = Path(sys.argv[1]), Path(sys.argv[2])
files = sorted(out.glob("out-*"))
assert files, f"no outputs in {out}"
failed = 0
for f in files:
    src = nib.load(fixtures / f.name[len("out-"):])
    got = nib.load(f)
    hs, hg = src.header, got.header
    problems = []
    if not np.allclose(got.affine, src.affine, atol=1e-5):
        problems.append(f"affine\n{got.affine}\n!=\n{src.affine}")
    for what, a, b in [("qform", hg.get_qform(coded=True), hs.get_qform(coded=True)),
                       ("sform", hg.get_sform(coded=True), hs.get_sform(coded=True))]:
        if a[1] != b[1] or (a[0] is not None and not np.allclose(a[0], b[0], atol=1e-5)):
            problems.append(f"{what} (code {a[1]} vs {b[1]})")
    if not np.allclose(hg["pixdim"][1:4], hs["pixdim"][1:4]):
        problems.append(f"pixdim {hg['pixdim'][1:4]} != {hs['pixdim'][1:4]}")
    if hg.get_xyzt_units() != hs.get_xyzt_units():
        problems.append(f"units {hg.get_xyzt_units()} != {hs.get_xyzt_units()}")
    data, want = got.get_fdata(), 2 * src.get_fdata()
    if data.shape != want.shape or not np.allclose(data, want, atol=1e-4):
        problems.append("voxel values differ from 2 x the input")
    status = "ok" if not problems else "FAILED: " + "; ".join(problems)
    print(f"{f.name}: {status}")
    failed += bool(problems)
print(f"nibabel: {len(files) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
