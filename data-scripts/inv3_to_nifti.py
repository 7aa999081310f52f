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


def member(tar, name):
    for m in tar.getmembers():
        if m.isfile() and m.name.rsplit("/", 1)[-1] == name:
            return tar.extractfile(m).read()
    sys.exit(f"error: {name} not found in the project archive")


def nifti1_header(dims, spacing):
    nx, ny, nz = dims
    sx, sy, sz = spacing
    h = bytearray(348)
    struct.pack_into("<i", h, 0, 348)  # sizeof_hdr
    struct.pack_into("<8h", h, 40, 3, nx, ny, nz, 1, 1, 1, 1)  # dim
    struct.pack_into("<hh", h, 70, 4, 16)  # datatype int16, bitpix
    struct.pack_into("<8f", h, 76, -1.0, sx, sy, sz, 1.0, 1.0, 1.0, 1.0)  # pixdim (qfac -1 unused)
    struct.pack_into("<f", h, 108, 352.0)  # vox_offset
    struct.pack_into("<ff", h, 112, 1.0, 0.0)  # scl_slope, scl_inter
    h[123] = 2 | 8  # xyzt_units: mm, s
    h[148:148 + 40] = b"InVesalius Cranium.inv3, HU".ljust(40, b"\0")
    struct.pack_into("<hh", h, 252, 0, 2)  # qform_code 0, sform_code 2 (aligned)
    # sform rows: x = -sx*i, y = sy*j, z = sz*k, centred on the volume.
    struct.pack_into("<4f", h, 280, -sx, 0.0, 0.0, sx * (nx - 1) / 2)
    struct.pack_into("<4f", h, 296, 0.0, sy, 0.0, -sy * (ny - 1) / 2)
    struct.pack_into("<4f", h, 312, 0.0, 0.0, sz, -sz * (nz - 1) / 2)
    h[344:348] = b"n+1\0"
    return bytes(h) + b"\0\0\0\0"  # extension flag


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
        f.write(nifti1_header((nx, ny, nz), spacing))
        f.write(raw)


if __name__ == "__main__":
    main()
