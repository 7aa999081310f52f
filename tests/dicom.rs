//! DICOM reader against pydicom (data-scripts/make_dicom_fixtures.py): modality LUT with VR UN
//! slope/intercept, MONOCHROME1, Enhanced CT per-frame rescale and frame ordering, RLE, series
//! grouping and sorting, clear errors for unsupported transfer syntaxes and non-images; HU of
//! the real CT_small/MR_small images (data/real, from data-scripts/fetch_test_data.sh).

use medsgm::io::dicom::{read_dicom, read_dicom_file, read_dicom_series, scan_series, SliceOrder};
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dicom")
}

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

fn expected() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected.json")).unwrap())
        .unwrap()
}

fn shape(v: &serde_json::Value) -> Vec<usize> {
    v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

fn check_values(got: &ndarray::Array3<f32>, want: &serde_json::Value, what: &str) {
    assert_eq!(got.shape(), shape(want).as_slice(), "{what}");
    let want = want["values"].as_array().unwrap();
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let w = w.as_f64().unwrap();
        assert!(
            (f64::from(*g) - w).abs() <= 1e-4 * w.abs().max(1.0),
            "{what}[{i}] = {g}, pydicom {w}"
        );
    }
}

#[test]
fn synthetic_fixtures_match_pydicom() {
    let exp = expected();
    for name in [
        "ct_un_rescale.dcm",
        "mono1.dcm",
        "enhanced_ct.dcm",
        "rle_ct.dcm",
    ] {
        let v = read_dicom_file(&fixtures().join(name)).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        check_values(&v.data, &exp[name], name);
        assert_eq!(v.inverted, name == "mono1.dcm", "{name}");
    }
}

#[test]
fn enhanced_frames_are_sorted_along_the_normal() {
    let want = &expected()["enhanced_ct.dcm"];
    let v = read_dicom_file(&fixtures().join("enhanced_ct.dcm")).unwrap();
    assert_eq!(v.order, SliceOrder::Position);
    let z: Vec<f64> = v.frames.iter().map(|f| f.position.unwrap()[2]).collect();
    let want_z: Vec<f64> = want["z"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(z, want_z);
    assert_eq!(v.frames[0].pixel_spacing, Some([0.7, 0.8]));
    assert_eq!(
        v.frames[0].orientation,
        Some([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    );
    assert_eq!(v.header.modality(), "CT");
}

#[test]
fn series_folder_is_grouped_and_sorted() {
    let want = &expected()["series"];
    let dir = fixtures().join("series");
    let series = scan_series(&dir).unwrap();
    assert_eq!(series.len(), 2);
    let uid = want["series_instance_uid"].as_str().unwrap();
    let main = series
        .iter()
        .find(|s| s.series_instance_uid == uid)
        .unwrap();
    assert_eq!(main.files.len(), 5);
    // Two series: reading without a UID must say so and list them.
    let e = format!("{:#}", read_dicom(&dir).unwrap_err());
    assert!(e.contains("2 series found") && e.contains(uid), "{e}");
    let v = read_dicom_series(&dir, Some(uid)).unwrap();
    assert_eq!(v.order, SliceOrder::Position);
    check_values(&v.data, want, "series");
    let inst: Vec<i64> = v
        .frames
        .iter()
        .map(|f| f.instance_number.unwrap())
        .collect();
    let want_inst: Vec<i64> = want["instance_numbers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect();
    assert_eq!(inst, want_inst);
    // Positions projected on the normal increase by the fixture's z steps.
    let n = v.frames[0].normal().unwrap();
    let d: Vec<f64> = v
        .frames
        .iter()
        .map(|f| {
            let p = f.position.unwrap();
            p[0] * n[0] + p[1] * n[1] + p[2] * n[2]
        })
        .collect();
    let z: Vec<f64> = want["z"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    for k in 1..d.len() {
        assert!(
            ((d[k] - d[0]) - (z[k] - z[0])).abs() < 1e-6,
            "{d:?} vs {z:?}"
        );
    }
    let other = read_dicom_series(&dir, want["other_series_instance_uid"].as_str()).unwrap();
    assert_eq!(other.data.shape(), &[1, 12, 16]);
}

#[test]
fn unsupported_inputs_give_clear_errors() {
    let err = |name: &str| format!("{:#}", read_dicom_file(&fixtures().join(name)).unwrap_err());
    let e = err("jpegls.dcm");
    assert!(
        e.contains("JPEG-LS")
            && e.contains("1.2.840.10008.1.2.4.80")
            && e.contains("not supported"),
        "{e}"
    );
    let e = err("sr.dcm");
    assert!(e.contains("no Pixel Data") && e.contains("SR"), "{e}");
    let e = err("rgb.dcm");
    assert!(e.contains("3 samples per pixel"), "{e}");
    // Patient identifiers never appear in errors.
    for name in ["jpegls.dcm", "sr.dcm", "rgb.dcm"] {
        assert!(!err(name).contains("Fixture^Patient") && !err(name).contains("FIX001"));
    }
}

#[test]
fn real_images_match_pydicom_hu() {
    let exp = expected();
    for name in [
        "CT_small.dcm",
        "MR_small.dcm",
        "image_dfl.dcm",
        "J2K_pixelrep_mismatch.dcm",
    ] {
        let want = &exp[name];
        let v = read_dicom_file(&real(name)).unwrap();
        assert_eq!(v.data.shape(), shape(want).as_slice(), "{name}");
        let hu = v.data.index_axis(ndarray::Axis(0), 0);
        let sum: f64 = hu.iter().map(|&x| f64::from(x)).sum();
        let sum_sq: f64 = hu.iter().map(|&x| f64::from(x).powi(2)).sum();
        let rel = |a: f64, b: f64| (a - b).abs() / b.abs().max(1.0);
        assert!(
            rel(sum, want["sum"].as_f64().unwrap()) < 1e-9,
            "{name}: sum {sum}"
        );
        assert!(
            rel(sum_sq, want["sum_sq"].as_f64().unwrap()) < 1e-9,
            "{name}: sum_sq {sum_sq}"
        );
        let min = hu.iter().copied().fold(f32::INFINITY, f32::min);
        let max = hu.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        assert_eq!(f64::from(min), want["min"].as_f64().unwrap(), "{name}");
        assert_eq!(f64::from(max), want["max"].as_f64().unwrap(), "{name}");
        for s in want["samples"].as_array().unwrap() {
            let (r, c, w) = (
                s[0].as_u64().unwrap() as usize,
                s[1].as_u64().unwrap() as usize,
                s[2].as_f64().unwrap(),
            );
            assert_eq!(f64::from(hu[[r, c]]), w, "{name}[{r},{c}]");
        }
        let pos: Vec<f64> = want["position"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        if let Some(got) = v.frames[0].position {
            for i in 0..3 {
                assert!((got[i] - pos[i]).abs() < 1e-9);
            }
        } else {
            assert!(pos.is_empty(), "{name}: position missing");
        }
    }
}

#[test]
fn image_dispatch_reads_and_writes_dicom() {
    use medsgm::io::{
        read_image, read_image_with_dicom_source, write_image, DicomWriteOptions, ImageFormat,
        ImageReadOptions, ImageWriteOptions,
    };
    let tmp = tempfile::tempdir().unwrap();
    // An extension-less DICOM file is recognised by its marker.
    let bare = tmp.path().join("IM0001");
    std::fs::copy(real("CT_small.dcm"), &bare).unwrap();
    assert_eq!(ImageFormat::from_path(&bare).unwrap(), ImageFormat::Dicom);
    let (img, source) = read_image_with_dicom_source(&bare, &ImageReadOptions::default()).unwrap();
    let direct = read_dicom_file(&real("CT_small.dcm")).unwrap();
    assert_eq!(img, direct.data.index_axis(ndarray::Axis(0), 0));
    // A series folder needs a slice choice along axis 0 when it holds several slices.
    let series = tmp.path().join("series");
    std::fs::create_dir(&series).unwrap();
    for entry in std::fs::read_dir(fixtures().join("series")).unwrap() {
        let p = entry.unwrap().path();
        if p.file_name().unwrap() != "other_series.dcm" {
            std::fs::copy(&p, series.join(p.file_name().unwrap())).unwrap();
        }
    }
    let e = read_image(&series, &ImageReadOptions::default()).unwrap_err();
    assert!(format!("{e:#}").contains("--slice"), "{e:#}");
    let opts = ImageReadOptions {
        slice: Some((0, 2)),
        ..ImageReadOptions::default()
    };
    let (s2, src2) = read_image_with_dicom_source(&series, &opts).unwrap();
    let vol = read_dicom(&series).unwrap();
    assert_eq!(s2, vol.data.index_axis(ndarray::Axis(0), 2));
    assert_eq!(src2.unwrap().frames[0], vol.frames[2]);
    // Writing with the source keeps its geometry.
    let out = tmp.path().join("out.dcm");
    let wopts = ImageWriteOptions {
        dicom: DicomWriteOptions {
            source,
            ..DicomWriteOptions::default()
        },
        ..ImageWriteOptions::default()
    };
    write_image(&out, &img.view(), &wopts).unwrap();
    let back = read_dicom_file(&out).unwrap();
    assert_eq!(back.data, direct.data);
    assert_eq!(back.frames[0].position, direct.frames[0].position);
    assert_eq!(back.header.modality(), "CT");
}

#[test]
fn lossless_encodings_of_mr_small_decode_identically() {
    let reference = read_dicom_file(&real("MR_small.dcm")).unwrap();
    for name in expected()["same_as_MR_small"].as_array().unwrap() {
        let name = name.as_str().unwrap();
        let v = read_dicom_file(&real(name)).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert_eq!(v.data, reference.data, "{name}");
        assert_eq!(v.frames, reference.frames, "{name}");
    }
}

#[test]
fn real_unsupported_and_broken_files_give_clear_errors() {
    let err = |name: &str| format!("{:#}", read_dicom_file(&real(name)).unwrap_err());
    let e = err("MR_small_jpeg_ls_lossless.dcm");
    assert!(
        e.contains("JPEG-LS Lossless") && e.contains("not supported"),
        "{e}"
    );
    let e = err("JPGExtended.dcm");
    assert!(
        e.contains("JPEG Extended") && e.contains("1.2.840.10008.1.2.4.51"),
        "{e}"
    );
    let e = err("MR_truncated.dcm");
    assert!(e.contains("truncated"), "{e}");
    let e = err("rtstruct.dcm");
    assert!(e.contains("not a DICOM Part 10 file"), "{e}");
}

#[test]
fn debug_output_names_no_patient_identifiers() {
    let v = read_dicom_file(&fixtures().join("ct_un_rescale.dcm")).unwrap();
    let text = format!("{v:?}");
    assert!(text.contains("modality: \"CT\""), "{text}");
    assert!(!text.contains("Fixture^Patient") && !text.contains("FIX001"));
}
