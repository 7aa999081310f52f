#!/usr/bin/env python3
"""Converts a 3-D NRRD volume of int16 CT numbers in HU (`type: short`, gzip or raw encoding,
little endian, axis-aligned `space directions` in a left-posterior-superior `space`) into a
gzipped NIfTI-1 volume, with the Python standard library only.

NRRD and NIfTI both store the first axis fastest. In LPS, j (image rows) runs posterior; the
rows are reversed so that j runs anterior, as in the other volumes the data-scripts write
(nifti1_write.py: i left, j anterior, k superior), and medsgm's radiological display puts
anterior at the top. The output is deterministic (gzip mtime 0, no file name), so its sha256 can be pinned.

Usage: nrrd_to_nifti.py IN.nrrd OUT.nii.gz --description TEXT [--sha256 HEX of IN]
"""

import argparse
import gzip
import hashlib
import re
import sys

from nifti1_write import nifti1_header


def parse(raw):
    end = raw.find(b"\n\n")
    if not raw.startswith(b"NRRD") or end < 0:
        sys.exit("error: not an NRRD file with an attached header")
    fields = {}
    for line in raw[:end].decode("ascii").splitlines()[1:]:
        if line.startswith("#") or ":" not in line:
            continue
        key, value = line.split(":", 1)
        fields[key.strip()] = value.strip().lstrip("=").strip()
    return fields, raw[end + 2:]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input")
    p.add_argument("out")
    p.add_argument("--description", required=True, help="NIfTI descrip (at most 40 bytes)")
    p.add_argument("--sha256", help="expected sha256 of the NRRD file")
    a = p.parse_args()
    raw = open(a.input, "rb").read()
    if a.sha256 and hashlib.sha256(raw).hexdigest() != a.sha256:
        sys.exit(f"error: {a.input} sha256 {hashlib.sha256(raw).hexdigest()} != {a.sha256}")
    f, payload = parse(raw)
    want = {"type": ("short", "int16", "signed short"), "dimension": ("3",), "endian": ("little",),
            "encoding": ("gzip", "gz", "raw"), "space": ("left-posterior-superior",)}
    for key, ok in want.items():
        if f.get(key) not in ok:
            sys.exit(f"error: {a.input}: {key} = {f.get(key)!r}, expected one of {ok}")
    nx, ny, nz = (int(v) for v in f["sizes"].split())
    dirs = [[float(x) for x in v.split(",")] for v in re.findall(r"\(([^)]*)\)", f["space directions"])]
    if len(dirs) != 3 or any(abs(dirs[r][c]) > 1e-6 for r in range(3) for c in range(3) if r != c):
        sys.exit(f"error: {a.input}: space directions {f['space directions']} are not axis-aligned")
    spacing = [abs(dirs[i][i]) for i in range(3)]
    data = gzip.decompress(payload) if f["encoding"] != "raw" else payload
    row = nx * 2
    if len(data) != row * ny * nz:
        sys.exit(f"error: {a.input}: {len(data)} bytes of data, sizes {nx} {ny} {nz} need {row * ny * nz}")
    # Reverse j within every k-slice: LPS rows run posterior, the output's run anterior.
    out = bytearray()
    for k in range(nz):
        sl = data[k * row * ny:(k + 1) * row * ny]
        for j in reversed(range(ny)):
            out += sl[j * row:(j + 1) * row]
    # No file name and mtime 0 in the gzip header: the same bytes whatever OUT is called.
    with open(a.out, "wb") as raw_out, gzip.GzipFile(filename="", fileobj=raw_out, mode="wb", mtime=0) as g:
        g.write(nifti1_header((nx, ny, nz), spacing, a.description))
        g.write(bytes(out))


if __name__ == "__main__":
    main()
