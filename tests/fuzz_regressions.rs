//! Inputs the cargo-fuzz targets (fuzz/, docs/fuzzing.md) found crashing or misbehaving, kept
//! as fixtures under tests/fixtures/*/fuzz/: each must now give an error naming the file (or a
//! valid result), never a panic. DICOM regressions from the earlier mutation fuzzer are in
//! tests/dicom_robustness.rs.

use medsgm::train::data::read_image as read_training_image;
use ndarray::{array, Array2};
use std::path::{Path, PathBuf};

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn err_text<T: std::fmt::Debug>(r: anyhow::Result<T>) -> String {
    format!("{:#}", r.expect_err("must be an error"))
}

/// `train_image`: the training-folder reader had its own NPY parser that sliced the header
/// text at `'shape':)` and panicked; it now uses `io::npy`.
#[test]
fn training_npy_with_malformed_shape_is_an_error() {
    let p = fixture("npy/fuzz/train_shape_paren.npy");
    let e = err_text(read_training_image(&p));
    assert!(
        e.contains("train_shape_paren.npy") && e.contains("header"),
        "{e}"
    );
}

fn write(dir: &Path, name: &str, a: &Array2<f32>) -> PathBuf {
    let p = dir.join(name);
    medsgm::io::npy::write_npy(&p, &a.view().into_dyn()).unwrap();
    p
}

/// `train_image`: NaN/Inf went through the min–max scaling into the training batch; now an
/// error. Images already in [0, 1] are kept (calibrated windows survive), others min–max scaled
/// without overflow (the f32 range hi − lo = 6e38 used to give inf / inf = NaN).
#[test]
fn training_npy_values() {
    let tmp = tempfile::tempdir().unwrap();
    let nan = write(tmp.path(), "nan.npy", &array![[0.0, f32::NAN], [1.0, 0.5]]);
    assert!(err_text(read_training_image(&nan)).contains("non-finite"));
    let unit = array![[0.0, 0.25], [0.5, 0.6]];
    let p = write(tmp.path(), "unit.npy", &unit);
    assert_eq!(read_training_image(&p).unwrap(), unit);
    let p = write(
        tmp.path(),
        "raw.npy",
        &array![[-1000.0, 0.0], [1000.0, 3.0e38]],
    );
    let got = read_training_image(&p).unwrap();
    let want = [
        0.0,
        1000.0 / (3.0e38 + 1000.0),
        2000.0 / (3.0e38 + 1000.0),
        1.0,
    ];
    for (g, w) in got.iter().zip(want) {
        assert!((f64::from(*g) - w).abs() < 1e-6, "{got:?}");
    }
    let p = write(tmp.path(), "flat.npy", &Array2::from_elem((2, 2), 7.0));
    assert_eq!(
        read_training_image(&p).unwrap(),
        Array2::<f32>::zeros((2, 2))
    );
    let p = tmp.path().join("c.npy");
    medsgm::io::npy::write_npy(
        &p,
        &ndarray::ArrayD::from_elem(vec![2, 2], num_complex::Complex32::new(1.0, 0.0)).view(),
    )
    .unwrap();
    assert!(err_text(read_training_image(&p)).contains("complex64"));
}

/// `dicom_file`: a mutated deflated file (from pydicom's image_dfl.dcm) whose inflated data set
/// declared a 1.9 GB element; the length prescan skipped deflated data sets, so the parser
/// allocated 1.9 GB before failing. The prescan now inflates (capped) and checks it.
#[test]
fn deflated_dicom_with_overlong_element_is_rejected_before_allocation() {
    let p = fixture("dicom/fuzz/deflate_overlong.dcm");
    let e = err_text(medsgm::io::dicom::read_dicom_file(&p));
    assert!(e.contains("deflate_overlong.dcm"), "{e}");
    assert!(e.contains("declares") || e.contains("inflate"), "{e}");
}

/// `nifti`: a truncated .nii.gz whose header says datatype 4 (int16) with bitpix 32; the nifti
/// crate sized the data by bitpix, converted by datatype and panicked on its own `expect`
/// (caught, but with a panic message and only with unwinding). The header check now requires
/// bitpix to match the datatype.
#[test]
fn nifti_bitpix_datatype_mismatch_is_an_error() {
    let p = fixture("nifti/fuzz/bitpix_mismatch.nii.gz");
    let e = err_text(medsgm::io::nifti_io::read_nifti(&p));
    assert!(
        e.contains("bitpix_mismatch.nii.gz") && e.contains("bitpix 32 disagrees with datatype 4"),
        "{e}"
    );
}

/// `dicom_file`: an RLE Lossless file whose segment decodes to fewer bytes than a frame needs;
/// dicom-rs's RLE adapter indexes past the segment and panics (a dependency bug). medsgm's
/// `catch_unwind` around the decoder must turn it into an error naming the file.
#[test]
fn rle_segment_shorter_than_the_frame_is_an_error() {
    let p = fixture("dicom/fuzz/rle_short_segment.dcm");
    let e = err_text(medsgm::io::dicom::read_dicom_file(&p));
    assert!(
        e.contains("rle_short_segment.dcm") && e.contains("pixel decoder failed"),
        "{e}"
    );
}

/// `dicom_file`: a mutated JPEG-extended file with an unknown VR code (`\0\0`) and an undefined
/// length; the length prescan stopped there while the parser read on as a sequence and allocated
/// 2.4 GB for a later element. Unknown VR codes with undefined lengths are now rejected.
#[test]
fn unknown_vr_with_undefined_length_is_rejected() {
    let p = fixture("dicom/fuzz/unknown_vr_undefined_length.dcm");
    let e = err_text(medsgm::io::dicom::read_dicom_file(&p));
    assert!(
        e.contains("unknown_vr_undefined_length.dcm") && e.contains("unknown VR code"),
        "{e}"
    );
}
