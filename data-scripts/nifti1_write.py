"""The NIfTI-1 header the data-scripts write (standard library only): int16 volumes in HU."""

import struct


def nifti1_header(dims, spacing, description):
    """The 352-byte header (with the empty extension flag) of a gzipped NIfTI-1 int16 volume of
    `dims` (x fastest) and voxel `spacing` in mm, described by `description` (at most 40 bytes);
    i runs to patient left, j anterior, k superior (RAS sform, centred on the volume)."""
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
    d = description.encode()
    if len(d) > 40:
        raise ValueError(f"description {description!r} exceeds 40 bytes")
    h[148:148 + 40] = d.ljust(40, b"\0")
    struct.pack_into("<hh", h, 252, 0, 2)  # qform_code 0, sform_code 2 (aligned)
    # sform rows: x = -sx*i, y = sy*j, z = sz*k, centred on the volume.
    struct.pack_into("<4f", h, 280, -sx, 0.0, 0.0, sx * (nx - 1) / 2)
    struct.pack_into("<4f", h, 296, 0.0, sy, 0.0, -sy * (ny - 1) / 2)
    struct.pack_into("<4f", h, 312, 0.0, 0.0, sz, -sz * (nz - 1) / 2)
    h[344:348] = b"n+1\0"
    return bytes(h) + b"\0\0\0\0"  # extension flag
