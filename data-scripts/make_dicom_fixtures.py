#!/usr/bin/env python3
"""Writes pydicom-generated DICOM fixtures and pydicom/numpy reference values for medsgm's DICOM
reader tests (tests/dicom.rs).

Small synthetic files (committed under tests/fixtures/dicom/):
  ct_un_rescale.dcm  CT, signed 16-bit, RescaleSlope 2.5 / Intercept -1024 stored with VR UN
  mono1.dcm          CR, MONOCHROME1, 12 bits stored, slope 0.5 / intercept 10
  enhanced_ct.dcm    Enhanced CT, 3 frames in shuffled z order, per-frame rescale
  rle_ct.dcm         the CT image RLE Lossless compressed (pydicom's numpy RLE encoder)
  jpegls.dcm         JPEG-LS Lossless transfer syntax (unsupported by the pure-Rust codecs)
  sr.dcm             a Basic Text SR: no pixel data
  rgb.dcm            a 3-sample RGB secondary capture
  series/            5 oblique CT slices (InstanceNumber deliberately not in position order)
                     plus 1 file of another series
expected.json holds, per file, the values pydicom's apply_modality_lut gives (or the numpy
formula for MONOCHROME1 inversion / per-frame rescale, which pydicom does not apply), and for the
real images data/real/{CT,MR}_small.dcm (fetched by fetch_test_data.sh) their HU statistics, likewise for the deflated image_dfl.dcm and the
JPEG 2000 J2K_pixelrep_mismatch.dcm, and the lossless re-encodings of MR_small that must decode
to the same pixels.

Usage: python3 data-scripts/make_dicom_fixtures.py tests/fixtures/dicom data/real
(needs numpy, pydicom==3.0.2 and pylibjpeg-openjpeg in a venv)
"""
import json
import struct
import sys
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import apply_modality_lut
from pydicom.sequence import Sequence
from pydicom.uid import (
    CTImageStorage,
    EnhancedCTImageStorage,
    ExplicitVRLittleEndian,
    JPEGLSLossless,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

out = Path(sys.argv[1])
real = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("data/real")
out.mkdir(parents=True, exist_ok=True)
(out / "series").mkdir(exist_ok=True)
ROOT = "2.25.1"  # fixed fake UIDs keep the fixtures reproducible
ROWS, COLS = 12, 16
expected = {}


def uid(n):
    return f"{ROOT}.{n}"


def base(sop_class, n, modality="CT"):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = uid(n)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = uid(n)
    ds.PatientName = "Fixture^Patient"
    ds.PatientID = "FIX001"
    ds.StudyInstanceUID = uid(1000)
    ds.SeriesInstanceUID = uid(2000)
    ds.Modality = modality
    return ds


def image(ds, stored, signed, bits_stored=16, photometric="MONOCHROME2"):
    ds.Rows, ds.Columns = stored.shape[-2:]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.PixelData = stored.astype("<i2" if signed else "<u2").tobytes()


rng = np.random.default_rng(5)
ct_stored = rng.integers(-300, 1500, size=(ROWS, COLS)).astype(np.int16)

# 1. CT with UN slope/intercept.
ds = base(CTImageStorage, 1)
image(ds, ct_stored, signed=True)
ds.RescaleIntercept, ds.RescaleSlope = "-1024", "2.5"
ds.save_as(out / "ct_un_rescale.dcm", enforce_file_format=True)
# pydicom writes known tags with their dictionary VR, so rewrite the two headers as explicit UN
# (tag, "UN", 2 reserved bytes, 4-byte length), as an archive that lost the VR would.
raw = (out / "ct_un_rescale.dcm").read_bytes()
for elem, value in [(0x1052, b"-1024 "), (0x1053, b"2.5 ")]:
    tag = struct.pack("<HH", 0x0028, elem)
    old = tag + b"DS" + struct.pack("<H", len(value)) + value
    assert raw.count(old) == 1
    raw = raw.replace(old, tag + b"UN\0\0" + struct.pack("<I", len(value)) + value)
(out / "ct_un_rescale.dcm").write_bytes(raw)
check = pydicom.dcmread(out / "ct_un_rescale.dcm")  # pydicom re-reads UN with dictionary VR
hu = apply_modality_lut(check.pixel_array, check)
assert np.allclose(hu, ct_stored * 2.5 - 1024)
expected["ct_un_rescale.dcm"] = {"shape": [1, ROWS, COLS], "values": hu.ravel().tolist()}

# 2. MONOCHROME1, 12 bits stored.
mono_stored = rng.integers(0, 4096, size=(ROWS, COLS)).astype(np.uint16)
ds = base(SecondaryCaptureImageStorage, 2, modality="CR")
image(ds, mono_stored, signed=False, bits_stored=12, photometric="MONOCHROME1")
ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = 0.5, 10, "US"
ds.save_as(out / "mono1.dcm", enforce_file_format=True)
check = pydicom.dcmread(out / "mono1.dcm")
rescaled = apply_modality_lut(check.pixel_array, check)
inverted = (4095 - check.pixel_array.astype(np.float64)) * 0.5 + 10
assert np.allclose(inverted, (0.5 * 0 + 10) + (0.5 * 4095 + 10) - rescaled)
expected["mono1.dcm"] = {"shape": [1, ROWS, COLS], "values": inverted.ravel().tolist()}

# 3. Enhanced CT: 3 frames at z = 10, 0, 5 with per-frame rescale.
frames = rng.integers(0, 3000, size=(3, ROWS, COLS)).astype(np.int16)
zs, slopes, icpts = [10.0, 0.0, 5.0], [1.0, 0.5, 2.0], [-1024.0, -1000.0, -2048.0]
ds = base(EnhancedCTImageStorage, 3)
image(ds, frames, signed=True)
ds.NumberOfFrames = 3
shared = Dataset()
orient = Dataset()
orient.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
shared.PlaneOrientationSequence = Sequence([orient])
meas = Dataset()
meas.PixelSpacing = [0.7, 0.8]
meas.SliceThickness = 5
shared.PixelMeasuresSequence = Sequence([meas])
ds.SharedFunctionalGroupsSequence = Sequence([shared])
per_frame = []
for z, s, b in zip(zs, slopes, icpts):
    item = Dataset()
    pos = Dataset()
    pos.ImagePositionPatient = [-5.0, -4.0, z]
    item.PlanePositionSequence = Sequence([pos])
    pvt = Dataset()
    pvt.RescaleSlope, pvt.RescaleIntercept, pvt.RescaleType = s, b, "HU"
    item.PixelValueTransformationSequence = Sequence([pvt])
    per_frame.append(item)
ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
ds.save_as(out / "enhanced_ct.dcm", enforce_file_format=True)
hu = np.stack([frames[i] * slopes[i] + icpts[i] for i in range(3)])
order = np.argsort(zs)
expected["enhanced_ct.dcm"] = {
    "shape": [3, ROWS, COLS],
    "values": hu[order].ravel().tolist(),
    "z": [zs[i] for i in order],
    "pixel_spacing": [0.7, 0.8],
}

# 4. RLE Lossless.
ds = base(CTImageStorage, 4)
image(ds, ct_stored, signed=True)
ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
ds.compress(RLELossless, ct_stored)
ds.save_as(out / "rle_ct.dcm", enforce_file_format=True)
check = pydicom.dcmread(out / "rle_ct.dcm")
assert check.file_meta.TransferSyntaxUID == RLELossless
hu = apply_modality_lut(check.pixel_array, check)
expected["rle_ct.dcm"] = {"shape": [1, ROWS, COLS], "values": hu.ravel().tolist()}

# 5. JPEG-LS (encapsulated, never decoded).
ds = base(CTImageStorage, 5)
image(ds, ct_stored, signed=True)
ds.file_meta.TransferSyntaxUID = JPEGLSLossless
ds.PixelData = pydicom.encaps.encapsulate([b"\xff\xd8not-really-jpeg-ls\xff\xd9"])
ds["PixelData"].VR = "OB"
ds.save_as(out / "jpegls.dcm", enforce_file_format=True)

# 6. SR without pixel data; 7. RGB.
ds = base("1.2.840.10008.5.1.4.1.1.88.11", 6, modality="SR")
ds.save_as(out / "sr.dcm", enforce_file_format=True)
ds = base(SecondaryCaptureImageStorage, 7, modality="OT")
ds.Rows, ds.Columns, ds.SamplesPerPixel = 4, 4, 3
ds.PhotometricInterpretation, ds.PlanarConfiguration = "RGB", 0
ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
ds.PixelData = bytes(range(48))
ds.save_as(out / "rgb.dcm", enforce_file_format=True)

# 8. An oblique series: normal n = row x col; positions p_k = o + z_k n.
c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
row, col = np.array([1.0, 0, 0]), np.array([0, c, -s])
normal = np.cross(row, col)
zs = [-6.0, 3.0, 0.0, 9.0, -3.0]
instance = [3, 1, 5, 2, 4]  # not the spatial order
slices = rng.integers(0, 2000, size=(5, ROWS, COLS)).astype(np.int16)
for k, (z, inst) in enumerate(zip(zs, instance)):
    ds = base(CTImageStorage, 100 + k)
    image(ds, slices[k], signed=True)
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.InstanceNumber = inst
    ds.ImageOrientationPatient = [*row, *col]
    ds.ImagePositionPatient = [float(v) for v in np.array([10.0, -20.0, 30.0]) + z * normal]
    ds.PixelSpacing = [0.5, 0.5]
    ds.SliceThickness = 3
    ds.save_as(out / "series" / f"f{(k * 7919) % 97:02d}.dcm", enforce_file_format=True)
ds = base(CTImageStorage, 200)
image(ds, slices[0], signed=True)
ds.SeriesInstanceUID = uid(2001)
ds.save_as(out / "series" / "other_series.dcm", enforce_file_format=True)
(out / "series" / "README.txt").write_text("not DICOM: must be skipped\n")
order = np.argsort(zs)
expected["series"] = {
    "series_instance_uid": uid(2000),
    "other_series_instance_uid": uid(2001),
    "shape": [5, ROWS, COLS],
    "values": (slices[order].astype(np.float64) - 1024).ravel().tolist(),
    "z": [zs[i] for i in order],
    "instance_numbers": [instance[i] for i in order],
}

# Real images (J2K_pixelrep_mismatch needs pylibjpeg-openjpeg for pydicom to decode it; pydicom
# applies the JPEG 2000 sign correction by default).
mr = pydicom.dcmread(real / "MR_small.dcm").pixel_array
for name in ["MR_small_jp2klossless.dcm", "MR_small_RLE.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm"]:
    assert np.array_equal(pydicom.dcmread(real / name).pixel_array, mr), name
expected["same_as_MR_small"] = ["MR_small_jp2klossless.dcm", "MR_small_RLE.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm"]
for name in ["CT_small.dcm", "MR_small.dcm", "image_dfl.dcm", "J2K_pixelrep_mismatch.dcm"]:
    ds = pydicom.dcmread(real / name)
    hu = apply_modality_lut(ds.pixel_array, ds).astype(np.float64)
    expected[name] = {
        "shape": [1, int(ds.Rows), int(ds.Columns)],
        "sum": float(hu.sum()),
        "sum_sq": float((hu**2).sum()),
        "min": float(hu.min()),
        "max": float(hu.max()),
        "samples": [[int(r), int(c), float(hu[r, c])] for r, c in [(0, 0), (5, 17), (31, 40), (63, 63), (ds.Rows - 1, ds.Columns - 2)]],
        "position": [float(v) for v in ds.get("ImagePositionPatient", [])],
    }

(out / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
print(f"wrote fixtures to {out}")
