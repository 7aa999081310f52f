//! Derived DICOM series: HU round trips (integer and fractional values), carried-over patient,
//! study and geometry attributes, new UIDs, field-of-view-preserving geometry for resampled
//! outputs, de-identification, atomicity. With MEDSGM_DICOM_OUT set, the written examples are
//! kept there for external validation (data-scripts/check_dicom_output.sh: pydicom + dciodvfy).

use dicom::dictionary_std::tags;
use medsgm::io::dicom::uid::is_valid_uid;
use medsgm::io::dicom::{
    read_dicom, read_dicom_file, read_dicom_series, write_derived_file, write_derived_series,
    DerivedSeriesOptions, DicomVolume,
};
use ndarray::{Array3, Axis};
use std::path::{Path, PathBuf};

fn real(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data/real")
        .join(name);
    assert!(
        p.exists(),
        "{} is missing: run data-scripts/fetch_test_data.sh",
        p.display()
    );
    p
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/dicom")
        .join(name)
}

/// Where to write: $MEDSGM_DICOM_OUT/<name> when set (kept), else a temporary folder.
fn out_dir(tmp: &Path, name: &str) -> PathBuf {
    match std::env::var_os("MEDSGM_DICOM_OUT") {
        Some(d) => {
            let p = PathBuf::from(d).join(name);
            let _ = std::fs::remove_dir_all(&p);
            p
        }
        None => tmp.join(name),
    }
}

/// With MEDSGM_DICOM_OUT set, saves the values a series should hold as `<dir>.npy` for the
/// external check.
fn keep_expected(dir: &Path, data: &Array3<f32>) {
    if std::env::var_os("MEDSGM_DICOM_OUT").is_some() {
        medsgm::io::npy::write_npy(&dir.with_extension("npy"), &data.view().into_dyn()).unwrap();
    }
}

fn opts(anonymize: bool) -> DerivedSeriesOptions {
    DerivedSeriesOptions {
        description: "medsgm test pc-projection N=10".into(),
        derivation: "pc-projection steps=10 snr=0.16 lambda=1".into(),
        anonymize,
        ..DerivedSeriesOptions::default()
    }
}

fn max_abs_diff(a: &Array3<f32>, b: &Array3<f32>) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn ct_round_trip_keeps_hu_tags_and_geometry() {
    let tmp = tempfile::tempdir().unwrap();
    let src = read_dicom_file(&real("CT_small.dcm")).unwrap();
    let dir = out_dir(tmp.path(), "ct_integer");
    let w = write_derived_series(&dir, &src.data.view(), Some(&src), &opts(false)).unwrap();
    keep_expected(&dir, &src.data);
    assert_eq!(w.rescale, (1.0, 0.0), "integer HU are stored exactly");
    let back = read_dicom(&dir).unwrap();
    assert_eq!(back.data, src.data);
    assert_eq!(back.frames[0].position, src.frames[0].position);
    assert_eq!(back.frames[0].orientation, src.frames[0].orientation);
    assert_eq!(back.frames[0].pixel_spacing, src.frames[0].pixel_spacing);
    assert_eq!(
        back.frames[0].slice_thickness,
        src.frames[0].slice_thickness
    );
    let (h, s) = (&back.header, &src.header);
    for tag in [
        tags::PATIENT_NAME,
        tags::PATIENT_ID,
        tags::STUDY_INSTANCE_UID,
        tags::FRAME_OF_REFERENCE_UID,
        tags::STUDY_DATE,
    ] {
        assert_eq!(h.string(tag), s.string(tag), "{tag:?} carried over");
    }
    assert_ne!(
        h.string(tags::SERIES_INSTANCE_UID),
        s.string(tags::SERIES_INSTANCE_UID)
    );
    assert_eq!(
        h.string(tags::SERIES_INSTANCE_UID).as_deref(),
        Some(w.series_instance_uid.as_str())
    );
    assert_eq!(
        h.string(tags::SOP_CLASS_UID).as_deref(),
        Some("1.2.840.10008.5.1.4.1.1.2")
    );
    assert_eq!(
        h.string(tags::IMAGE_TYPE).as_deref(),
        Some("DERIVED\\SECONDARY\\AXIAL")
    );
    assert_eq!(
        h.string(tags::SERIES_DESCRIPTION).as_deref(),
        Some("medsgm test pc-projection N=10")
    );
    for tag in [tags::SERIES_INSTANCE_UID, tags::SOP_INSTANCE_UID] {
        assert!(is_valid_uid(&h.string(tag).unwrap()));
    }
    assert_ne!(
        h.string(tags::SOP_INSTANCE_UID),
        s.string(tags::SOP_INSTANCE_UID)
    );
}

#[test]
fn fractional_values_round_trip_within_half_a_step() {
    let tmp = tempfile::tempdir().unwrap();
    let src = read_dicom_series(&fixture("series"), Some("2.25.1.2000")).unwrap();
    let data = src.data.mapv(|v| 0.37 * v + 0.123);
    let dir = out_dir(tmp.path(), "ct_fractional");
    let w = write_derived_series(&dir, &data.view(), Some(&src), &opts(false)).unwrap();
    keep_expected(&dir, &data);
    let (slope, _) = w.rescale;
    assert!(slope > 0.0 && slope < 0.05, "{slope}");
    let back = read_dicom(&dir).unwrap();
    assert!(max_abs_diff(&back.data, &data) <= 0.5 * slope as f32 * 1.001 + 1e-3);
    // Same slice order and positions as the source series.
    for (a, b) in back.frames.iter().zip(&src.frames) {
        let (pa, pb) = (a.position.unwrap(), b.position.unwrap());
        assert!(
            pa.iter().zip(&pb).all(|(x, y)| (x - y).abs() < 1e-6),
            "{pa:?} vs {pb:?}"
        );
    }
}

#[test]
fn resampled_output_keeps_the_field_of_view() {
    let tmp = tempfile::tempdir().unwrap();
    let src = read_dicom_file(&real("CT_small.dcm")).unwrap();
    let small = src.data.slice(ndarray::s![.., ..;2, ..;2]).to_owned();
    let dir = out_dir(tmp.path(), "ct_resampled");
    write_derived_series(&dir, &small.view(), Some(&src), &opts(false)).unwrap();
    keep_expected(&dir, &small);
    let back = read_dicom(&dir).unwrap();
    let (g0, g1) = (&src.frames[0], &back.frames[0]);
    let (s0, s1) = (g0.pixel_spacing.unwrap(), g1.pixel_spacing.unwrap());
    assert!((s1[0] - 2.0 * s0[0]).abs() < 1e-9 && (s1[1] - 2.0 * s0[1]).abs() < 1e-9);
    // The corner of the field of view, p − (s_col/2)·row − (s_row/2)·col, is unchanged.
    let o = g0.orientation.unwrap();
    let corner = |p: [f64; 3], s: [f64; 2]| {
        [0, 1, 2].map(|i| p[i] - 0.5 * s[1] * o[i] - 0.5 * s[0] * o[3 + i])
    };
    let (c0, c1) = (
        corner(g0.position.unwrap(), s0),
        corner(g1.position.unwrap(), s1),
    );
    assert!(
        c0.iter().zip(&c1).all(|(a, b)| (a - b).abs() < 1e-5),
        "{c0:?} vs {c1:?}"
    );
}

#[test]
fn anonymized_output_holds_no_identifiers() {
    let tmp = tempfile::tempdir().unwrap();
    let src = read_dicom_file(&real("CT_small.dcm")).unwrap();
    let dir = out_dir(tmp.path(), "ct_anonymized");
    let w = write_derived_series(&dir, &src.data.view(), Some(&src), &opts(true)).unwrap();
    keep_expected(&dir, &src.data);
    let back = read_dicom(&dir).unwrap();
    assert_eq!(back.data, src.data);
    let h = &back.header;
    assert_eq!(h.string(tags::PATIENT_NAME), None);
    assert_eq!(h.string(tags::PATIENT_ID).as_deref(), Some("ANONYMOUS"));
    assert_eq!(
        h.string(tags::PATIENT_IDENTITY_REMOVED).as_deref(),
        Some("YES")
    );
    assert_eq!(h.string(tags::PATIENT_BIRTH_DATE), None);
    assert_ne!(
        h.string(tags::STUDY_INSTANCE_UID),
        src.header.string(tags::STUDY_INSTANCE_UID)
    );
    assert_ne!(
        h.string(tags::FRAME_OF_REFERENCE_UID),
        src.header.string(tags::FRAME_OF_REFERENCE_UID)
    );
    assert_eq!(
        back.frames[0].position, src.frames[0].position,
        "geometry is kept"
    );
    let bytes = std::fs::read(&w.files[0]).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    for tag in [
        tags::PATIENT_NAME,
        tags::PATIENT_ID,
        tags::STUDY_INSTANCE_UID,
        tags::STUDY_DATE,
        tags::INSTITUTION_NAME,
    ] {
        if let Some(v) = src.header.string(tag) {
            assert!(
                !text.contains(&v),
                "{tag:?} leaked into the anonymized file"
            );
        }
    }
}

#[test]
fn mr_and_sourceless_outputs_are_readable() {
    let tmp = tempfile::tempdir().unwrap();
    let mr = read_dicom_file(&real("MR_small.dcm")).unwrap();
    let data = mr.data.mapv(|v| v / 1000.0);
    let dir = out_dir(tmp.path(), "mr_scaled");
    write_derived_series(&dir, &data.view(), Some(&mr), &opts(false)).unwrap();
    keep_expected(&dir, &data);
    let back = read_dicom(&dir).unwrap();
    assert_eq!(
        back.header.string(tags::SOP_CLASS_UID).as_deref(),
        Some("1.2.840.10008.5.1.4.1.1.4")
    );
    assert!(max_abs_diff(&back.data, &data) < 1e-3);

    let dir = out_dir(tmp.path(), "sc_single");
    std::fs::create_dir_all(&dir).unwrap();
    let img = ndarray::Array2::from_shape_fn((20, 24), |(i, j)| {
        (i as f32 - 3.5) * 0.01 + j as f32 * 0.002
    });
    let path = dir.join("image.dcm");
    write_derived_file(&path, &img.view(), None, &opts(false)).unwrap();
    keep_expected(&dir, &img.clone().insert_axis(Axis(0)));
    let back = read_dicom_file(&path).unwrap();
    assert_eq!(back.header.modality(), "OT");
    let diff = back
        .data
        .index_axis(Axis(0), 0)
        .iter()
        .zip(&img)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(diff < 1e-5, "{diff}");
}

#[test]
fn failed_writes_leave_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let src: DicomVolume = read_dicom_file(&real("CT_small.dcm")).unwrap();
    let mut bad = src.data.clone();
    bad[[0, 3, 3]] = f32::NAN;
    let dir = tmp.path().join("nan");
    let e = write_derived_series(&dir, &bad.view(), Some(&src), &opts(false)).unwrap_err();
    assert!(format!("{e:#}").contains("non-finite"), "{e:#}");
    assert!(!dir.exists());
    // Slice count mismatch with the source.
    let two = ndarray::concatenate(Axis(0), &[src.data.view(), src.data.view()]).unwrap();
    assert!(write_derived_series(&dir, &two.view(), Some(&src), &opts(false)).is_err());
    // A non-empty output folder is refused and left untouched.
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("keep.txt"), b"x").unwrap();
    assert!(write_derived_series(&dir, &src.data.view(), Some(&src), &opts(false)).is_err());
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "no temporary folder left"
    );
}

#[test]
fn enhanced_source_becomes_a_classic_series() {
    let tmp = tempfile::tempdir().unwrap();
    let src = read_dicom_file(&fixture("enhanced_ct.dcm")).unwrap();
    let dir = out_dir(tmp.path(), "ct_from_enhanced");
    let data = src.data.mapv(|v| v + 0.25);
    write_derived_series(&dir, &data.view(), Some(&src), &opts(false)).unwrap();
    keep_expected(&dir, &data);
    let back = read_dicom(&dir).unwrap();
    assert_eq!(back.data.shape(), src.data.shape());
    assert_eq!(
        back.header.string(tags::SOP_CLASS_UID).as_deref(),
        Some("1.2.840.10008.5.1.4.1.1.2")
    );
    assert_eq!(back.header.string(tags::NUMBER_OF_FRAMES), None);
    for (a, b) in back.frames.iter().zip(&src.frames) {
        assert_eq!(a.position, b.position);
        assert_eq!(a.pixel_spacing, b.pixel_spacing);
        assert_eq!(a.slice_thickness, b.slice_thickness);
    }
}

#[test]
fn non_ascii_names_are_written_as_utf8() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("latin1.dcm");
    let mut obj = dicom::object::open_file(real("CT_small.dcm")).unwrap();
    obj.put(dicom::core::DataElement::new(
        tags::SPECIFIC_CHARACTER_SET,
        dicom::core::VR::CS,
        dicom::core::PrimitiveValue::from("ISO_IR 100"),
    ));
    obj.put(dicom::core::DataElement::new(
        tags::PATIENT_NAME,
        dicom::core::VR::PN,
        dicom::core::PrimitiveValue::from("Müller^Jürgen"),
    ));
    obj.write_to_file(&path).unwrap();
    let src = read_dicom_file(&path).unwrap();
    assert_eq!(
        src.header.string(tags::PATIENT_NAME).as_deref(),
        Some("Müller^Jürgen")
    );
    let dir = out_dir(tmp.path(), "ct_utf8_name");
    write_derived_series(&dir, &src.data.view(), Some(&src), &opts(false)).unwrap();
    keep_expected(&dir, &src.data);
    let back = read_dicom(&dir).unwrap();
    assert_eq!(
        back.header.string(tags::PATIENT_NAME).as_deref(),
        Some("Müller^Jürgen")
    );
    assert_eq!(
        back.header.string(tags::SPECIFIC_CHARACTER_SET).as_deref(),
        Some("ISO_IR 192")
    );
}
