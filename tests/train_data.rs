//! Training data sources read from medical files: DICOM series (CT windowed, MR percentile
//! scaled) on the real images that ship in pydicom's wheel (data-scripts/fetch_test_data.sh).

use medsgm::io::dicom::read_dicom;
use medsgm::train::data::build_source;
use medsgm::train::dicom_slices::{dicom_slices, DicomSlicing};
use medsgm::train::DataConfig;
use std::path::{Path, PathBuf};

fn real(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/real")
        .join(name);
    assert!(
        p.is_file(),
        "{} is missing: run data-scripts/fetch_test_data.sh",
        p.display()
    );
    p
}

fn slicing(path: &Path) -> DicomSlicing {
    toml::from_str(&format!("path = {:?}", path.to_string_lossy())).unwrap()
}

#[test]
fn dicom_series_folder_gives_windowed_ct_and_scaled_mr_slices() {
    let dir = tempfile::tempdir().unwrap();
    for (sub, name) in [("a", "CT_small.dcm"), ("b/nested", "MR_small.dcm")] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        std::fs::copy(real(name), dir.path().join(sub).join(name)).unwrap();
    }
    let cfg = slicing(dir.path());
    let (slices, description) = dicom_slices(&cfg, 32).unwrap();
    assert_eq!(slices.len(), 2, "{description}");
    assert!(description.contains("2 series"), "{description}");
    assert!(slices.iter().all(|s| s.dim() == (32, 32)));
    assert!(slices.iter().flatten().all(|v| (0.0..=1.0).contains(v)));

    // CT: 128² HU → window [−1000, 1000] → [0, 1]; the 4× area resampling keeps the mean.
    let hu = read_dicom(&real("CT_small.dcm")).unwrap().data;
    assert_eq!(hu.dim(), (1, 128, 128));
    let expected: f64 = hu
        .iter()
        .map(|&h| ((h as f64 + 1000.0) / 2000.0).clamp(0.0, 1.0))
        .sum::<f64>()
        / hu.len() as f64;
    let means: Vec<f64> = slices
        .iter()
        .map(|s| s.iter().map(|&v| v as f64).sum::<f64>() / s.len() as f64)
        .collect();
    assert!(
        means.iter().any(|m| (m - expected).abs() < 1e-4),
        "CT mean {expected} not among {means:?}"
    );
    // MR: scaled by its 99.5th percentile, so some pixels saturate at 1 but only a few.
    let mr = slices
        .iter()
        .zip(&means)
        .find(|(_, m)| (*m - expected).abs() >= 1e-4)
        .unwrap()
        .0;
    let max = mr.iter().fold(0.0f32, |a, &b| a.max(b));
    assert!(max > 0.9 && max <= 1.0, "MR max {max}");

    // As a configured training source: flips and draws stay within the pool.
    let source = build_source(&DataConfig::DicomSeries(cfg), 32, 3).unwrap();
    let img = source.image(0, 0).unwrap();
    assert_eq!(img.dim(), (32, 32));
    assert!(source.describe().contains("DICOM series"));
}

#[test]
fn dicom_series_errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let err = dicom_slices(&slicing(dir.path()), 32).unwrap_err();
    assert!(
        format!("{err:#}").contains("no DICOM image series"),
        "{err:#}"
    );

    let mut cfg = slicing(dir.path());
    cfg.hu_hi = cfg.hu_lo;
    let err = dicom_slices(&cfg, 32).unwrap_err();
    assert!(format!("{err:#}").contains("hu_hi"), "{err:#}");

    std::fs::write(dir.path().join("broken.dcm"), b"DICM but not really").unwrap();
    assert!(dicom_slices(&slicing(dir.path()), 32).is_err());
}

#[test]
fn folder_npy_in_unit_range_is_kept_and_raw_npy_is_min_max_scaled() {
    use medsgm::io::npy::write_npy;
    use medsgm::train::data::read_image;
    use ndarray::Array2;
    let dir = tempfile::tempdir().unwrap();
    let unit = Array2::from_shape_fn((8, 8), |(r, c)| (r * 8 + c) as f32 / 80.0); // max 0.7875
    let raw = unit.mapv(|v| 2000.0 * v - 1000.0);
    write_npy(&dir.path().join("unit.npy"), &unit.view().into_dyn()).unwrap();
    write_npy(&dir.path().join("raw.npy"), &raw.view().into_dyn()).unwrap();
    assert_eq!(read_image(&dir.path().join("unit.npy")).unwrap(), unit);
    let scaled = read_image(&dir.path().join("raw.npy")).unwrap();
    let expected = unit.mapv(|v| v / 0.7875);
    assert!(scaled
        .iter()
        .zip(&expected)
        .all(|(a, b)| (a - b).abs() < 1e-5));
    let nan = Array2::from_elem((4, 4), f32::NAN);
    write_npy(&dir.path().join("nan.npy"), &nan.view().into_dyn()).unwrap();
    let err = read_image(&dir.path().join("nan.npy")).unwrap_err();
    assert!(format!("{err:#}").contains("nan.npy"), "{err:#}");
}
