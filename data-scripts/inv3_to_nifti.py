#!/usr/bin/env python3
"""Converts an InVesalius 3 project (.inv3: a tar.gz holding main.plist and matrix.dat, the
volume as raw int16 HU) into a gzipped NIfTI-1 volume, with the Python standard library only
(so the data-scripts need no numpy at fetch time).

matrix.dat is C-ordered (slices, rows, columns) with the shape and the spacing (columns, rows,
slices in mm) in main.plist. NIfTI stores x fastest, so the bytes are already in NIfTI order for
dim = (columns, rows, slices); the affine maps i to patient left (-x in RAS), j (image rows, the
first row posterior in this project: the head holder is at the top of the InVesalius view) to
anterior (+y) and k to superior (+z), so medsgm's radiological display puts anterior at the top.

Usage: inv3_to_nifti.py PROJECT.inv3 OUT.nii.gz [--matrix-sha256 HEX]
"""

import argparse
import gzip
import hashlib
import plistlib
import struct
import sys
import tarfile

from nifti1_write import nifti1_header


def member(tar, name):
    for m in tar.getmembers():
        if m.isfile() and m.name.rsplit("/", 1)[-1] == name:
            return tar.extractfile(m).read()
    sys.exit(f"error: {name} not found in the project archive")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("project")
    p.add_argument("out")
    p.add_argument("--matrix-sha256", help="expected sha256 of matrix.dat")
    a = p.parse_args()
    with tarfile.open(a.project, "r:gz") as tar:
        plist = plistlib.loads(member(tar, "main.plist"))
        raw = member(tar, "matrix.dat")
    if a.matrix_sha256 and hashlib.sha256(raw).hexdigest() != a.matrix_sha256:
        sys.exit(f"error: matrix.dat sha256 {hashlib.sha256(raw).hexdigest()} != {a.matrix_sha256}")
    m = plist["matrix"]
    if m["dtype"] != "int16":
        sys.exit(f"error: matrix dtype {m['dtype']} (expected int16)")
    nz, ny, nx = m["shape"]
    if len(raw) != nx * ny * nz * 2:
        sys.exit(f"error: matrix.dat holds {len(raw)} bytes, shape {m['shape']} needs {nx * ny * nz * 2}")
    spacing = [float(s) for s in plist["spacing"]]
    with gzip.GzipFile(a.out, "wb", mtime=0) as f:
        f.write(nifti1_header((nx, ny, nz), spacing, "InVesalius Cranium.inv3, HU"))
        f.write(raw)


if __name__ == "__main__":
    main()
