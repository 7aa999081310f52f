#!/usr/bin/env python3
"""Tests of the dataset preparation scripts on small synthetic datasets (fake DICOM series via
pydicom, NIfTI via nibabel, HDF5 via h5py) whose expected outputs follow from their
construction. Run through data-scripts/test_prepare_scripts.sh."""

import csv
import os
import shutil
import sys
import tempfile

import h5py
import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import prepare_brats  # noqa: E402
import prepare_common  # noqa: E402
import prepare_ct  # noqa: E402
import prepare_fastmri  # noqa: E402

N = 64  # synthetic CT slice side


def ct_slice_hu() -> np.ndarray:
    """Air, a water disk (40 HU) with a bone insert (1000 HU) and a separate table strip."""
    y, x = np.mgrid[:N, :N]
    hu = np.full((N, N), -1000.0)
    hu[(y - 28) ** 2 + (x - 32) ** 2 < 20 ** 2] = 40.0
    hu[(y - 28) ** 2 + (x - 36) ** 2 < 4 ** 2] = 1000.0
    hu[56:60, 4:60] = 0.0  # table: not connected to the body
    return hu


def write_ct_series(folder, patient, n_slices, modality="CT", description="", order_seed=0):
    os.makedirs(folder, exist_ok=True)
    series_uid = generate_uid()
    hu = ct_slice_hu()
    rng = np.random.default_rng(order_seed)
    names = rng.permutation(n_slices)  # file names unrelated to the slice order
    for k in range(n_slices):
        ds = pydicom.Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
        ds.PatientID = patient
        ds.Modality = modality
        ds.SeriesInstanceUID = series_uid
        ds.SeriesDescription = description
        ds.InstanceNumber = n_slices - k  # reversed: the position must win
        ds.ImagePositionPatient = [0.0, 0.0, 2.5 * k]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.Rows, ds.Columns = N, N
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        # Slice k carries its index in one air pixel (HU -1000 + 10k) to check the ordering.
        img = hu.copy()
        img[0, 0] = -1000.0 + 10 * k
        ds.PixelData = (img + 1024).astype("<i2").tobytes()
        ds.save_as(os.path.join(folder, f"{names[k]:03d}.dcm"), enforce_file_format=True)


def read_manifest(out):
    with open(os.path.join(out, "manifest.csv")) as f:
        return list(csv.DictReader(f))


def check_layout(out, size):
    rows = read_manifest(out)
    assert rows, "no slices written"
    for r in rows:
        a = np.load(os.path.join(out, r["file"]))
        assert a.dtype == np.float32 and a.shape == (size, size), (r, a.dtype, a.shape)
        assert a.min() >= 0.0 and a.max() <= 1.0
    patients = {}
    for r in rows:
        patients.setdefault(r["patient"], set()).add(r["split"])
    assert all(len(s) == 1 for s in patients.values()), f"a patient in several splits: {patients}"
    return rows


def test_split():
    ids = [f"P{i:04d}" for i in range(4000)]
    splits = [prepare_common.split_of(i, 0.1, 0.2, "s") for i in ids]
    frac = {s: splits.count(s) / len(ids) for s in prepare_common.SPLITS}
    assert abs(frac["test"] - 0.2) < 0.03 and abs(frac["val"] - 0.1) < 0.03, frac
    assert splits == [prepare_common.split_of(i, 0.1, 0.2, "s") for i in ids]


def test_ct(tmp):
    src = os.path.join(tmp, "lidc")
    for p in range(6):
        write_ct_series(os.path.join(src, f"LIDC-IDRI-{p:04d}", "study", "ct"), f"LIDC-IDRI-{p:04d}", 12, order_seed=p)
    write_ct_series(os.path.join(src, "LIDC-IDRI-0000", "study", "xray"), "LIDC-IDRI-0000", 2, modality="CR")
    with open(os.path.join(src, "LIDC-IDRI-0000", "notes.txt"), "w") as f:
        f.write("not DICOM")
    with open(os.path.join(src, "LIDC-IDRI-0001", "study", "ct", "broken.dcm"), "wb") as f:
        f.write(b"\0" * 50)
    # Dry run: counts and problems, nothing written.
    dry_out = os.path.join(tmp, "dry")
    assert prepare_ct.main([src, dry_out, "--dry-run", "--size", "32"]) == 0
    assert not os.path.exists(dry_out)
    out = os.path.join(tmp, "ct_out")
    args = [src, out, "--size", "32", "--val-fraction", "0.3", "--test-fraction", "0.3"]
    assert prepare_ct.main(args) == 0
    rows = check_layout(out, 32)
    assert len(rows) == 6 * 12, len(rows)  # the CR series and the broken file are skipped
    # Slice order from ImagePositionPatient, HU mapping and background.
    for r in rows:
        if r["patient"] != "LIDC-IDRI-0003":
            continue
        k = int(r["slice"])
        a = np.load(os.path.join(out, r["file"]))
        # Unresized reference: window [-1000, 1000] -> [0, 1], outside the body 0.
        ref = np.clip((ct_slice_hu() + 1000) / 2000, 0, 1)
        ref[56:60, 4:60] = 0.0
        ref[0, 0] = 0.0
        assert abs(a[14, 12] - (40 + 1000) / 2000) < 0.02, a[14, 12]  # water, left of the bone
        assert a[29, 16] == 0.0, "table not removed"
        assert a[1, 1] == 0.0, "air not zero"
        assert np.abs(a.mean() - prepare_common.resize(ref, 32).mean()) < 0.01
        assert k in range(12)
    # The slice index of the sorted series comes from the position, not the file name.
    src_rows = {int(r["slice"]): r["source"] for r in rows if r["patient"] == "LIDC-IDRI-0002"}
    for k, s in src_rows.items():
        ds = pydicom.dcmread(os.path.join(src, s))
        assert float(ds.ImagePositionPatient[2]) == 2.5 * k
    # Deterministic: a second run gives the same manifest.
    out2 = os.path.join(tmp, "ct_out2")
    assert prepare_ct.main([src, out2] + args[2:]) == 0
    assert read_manifest(out2) == rows
    # AAPM layout: only full-dose series are kept.
    aapm = os.path.join(tmp, "aapm")
    write_ct_series(os.path.join(aapm, "L067", "full_1mm"), "L067", 10, description="FD")
    write_ct_series(os.path.join(aapm, "L067", "quarter_1mm"), "L067", 10, description="QD")
    out3 = os.path.join(tmp, "aapm_out")
    assert prepare_ct.main([aapm, out3, "--dataset", "aapm", "--size", "16"]) == 0
    rows = check_layout(out3, 16)
    assert len(rows) == 10 and all("full_1mm" in r["source"] for r in rows)


def test_brats(tmp):
    src = os.path.join(tmp, "brats")
    shape = (24, 28, 12)
    i, j, k = np.mgrid[:shape[0], :shape[1], :shape[2]]
    brain = ((i - 12) / 9.0) ** 2 + ((j - 14) / 11.0) ** 2 + ((k - 6) / 4.5) ** 2 < 1
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    for c in range(4):
        case = f"BraTS2021_{c:05d}"
        os.makedirs(os.path.join(src, case))
        rng = np.random.default_rng(c)
        for mod in ("t1", "flair") if c < 3 else ("t1",):
            vol = np.where(brain, 100.0 + 50 * rng.random(shape), 0.0).astype(np.float32)
            vol[12, 14, 6] = 5000.0  # an outlier the percentile scaling clips
            nib.save(nib.Nifti1Image(vol, affine), os.path.join(src, case, f"{case}_{mod}.nii.gz"))
    assert prepare_brats.main([src, "--dry-run", "--modality", "flair"]) == 0
    out = os.path.join(tmp, "brats_out")
    assert prepare_brats.main([src, out, "--modality", "flair", "--size", "16",
                               "--min-brain-fraction", "0.05"]) == 0
    rows = check_layout(out, 16)
    cases = {r["patient"] for r in rows}
    assert cases == {f"BraTS2021_{c:05d}" for c in range(3)}, cases  # case 3 lacks flair
    # Empty slices (no brain, or only its tips) are skipped: per case, only the central ones.
    per_case = [sum(1 for r in rows if r["patient"] == c) for c in sorted(cases)]
    expected = sum(1 for kk in range(shape[2]) if np.mean(np.rot90(brain[:, :, kk])) >= 0.05)
    assert per_case == [expected] * 3 and 0 < expected < shape[2], (per_case, expected)
    # Percentile scaling: the outlier does not compress the brain's range.
    a = np.load(os.path.join(out, [r["file"] for r in rows if r["slice"] == "6"][0]))
    assert np.median(a[a > 0]) > 0.4, np.median(a[a > 0])


def fft2c(x):
    axes = (-2, -1)
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=axes), axes=axes, norm="ortho"), axes=axes)


def test_fastmri(tmp):
    src = os.path.join(tmp, "fastmri")
    os.makedirs(src)
    rng = np.random.default_rng(0)
    images = {}
    for v in range(3):
        img = rng.random((5, 32, 32)) * np.linspace(0.2, 1.0, 5)[:, None, None]
        images[v] = img
        with h5py.File(os.path.join(src, f"file{1000000 + v}.h5"), "w") as f:
            f.create_dataset("kspace", data=fft2c(img).astype(np.complex64))
            f.create_dataset("reconstruction_esc", data=img.astype(np.float32))
            f.attrs["max"] = float(img.max())
    with h5py.File(os.path.join(src, "file2000000.h5"), "w") as f:  # challenge test file
        f.create_dataset("kspace", data=np.zeros((2, 32, 32), np.complex64))
        f.create_dataset("mask", data=np.ones(32, bool))
    assert prepare_fastmri.main([src, "--dry-run"]) == 0
    for target in ("esc", "kspace"):
        out = os.path.join(tmp, f"fastmri_{target}")
        assert prepare_fastmri.main([src, out, "--target", target, "--size", "32", "--skip-edge", "1"]) == 0
        rows = check_layout(out, 32)
        assert len(rows) == 3 * 3, len(rows)
        for r in rows:
            v = int(r["patient"][-1])
            k = int(r["slice"])
            a = np.load(os.path.join(out, r["file"]))
            ref = images[v][k] / images[v].max()
            assert np.abs(a - ref).max() < 1e-5, (target, r)


def main():
    tmp = tempfile.mkdtemp(prefix="medsgm_prepare_")
    try:
        for name, t in [("split", test_split), ("ct", test_ct), ("brats", test_brats), ("fastmri", test_fastmri)]:
            print(f"--- {name}")
            t(tmp) if t is not test_split else t()
            print(f"ok {name}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("all prepare-script tests passed")


if __name__ == "__main__":
    main()
