//! Measurement files: sidecar round trip, and clear errors when sidecar and data disagree.

use medsgm::io::measurement::{
    load_measurement, save_measurement, sidecar_path, Geometry, Mask, MaskGenerator, Measurement,
    MeasurementData, Noise, Sidecar,
};
use medsgm::io::npy::write_npy;
use medsgm::task::Problem;
use ndarray::Array2;
use num_complex::Complex32;
use std::path::Path;

fn ct_measurement() -> Measurement {
    let sino = Array2::from_shape_fn((3, 11), |(v, d)| v as f32 + 0.1 * d as f32);
    let data = MeasurementData::Sinogram(sino);
    let sidecar = Sidecar::new(
        Problem::Ct,
        &data,
        Geometry::ParallelBeam {
            size: 8,
            angles_deg: vec![0.0, 30.0, 60.0, 90.0, 120.0, 150.0],
            n_det: 11,
            det_spacing: 1.0,
        },
        Mask::Views {
            kept: vec![0, 2, 4],
        },
        Noise::PoissonTransmission {
            i0: 1e5,
            attenuation_scale: 0.5,
            electronic_sigma: 0.0,
            seed: 7,
        },
        "line integral (image units x pixel)",
    );
    Measurement {
        sidecar,
        data,
        sinogram_mask: None,
        metal_mask: None,
    }
}

fn mri_measurement() -> Measurement {
    let k = Array2::from_shape_fn((4, 6), |(i, j)| {
        if j % 2 == 0 {
            Complex32::new(i as f32, -(j as f32))
        } else {
            Complex32::new(0.0, 0.0)
        }
    });
    let data = MeasurementData::KSpace(k);
    let sidecar = Sidecar::new(
        Problem::Mri,
        &data,
        Geometry::Cartesian { h: 4, w: 6 },
        Mask::Columns {
            kept: vec![0, 2, 4],
            generator: Some(MaskGenerator {
                pattern: "equispaced".into(),
                acceleration: 2.0,
                center_fraction: 0.0,
                seed: None,
            }),
        },
        Noise::ComplexGaussian {
            sigma: 0.01,
            seed: 3,
        },
        "k-space of the unitary centred FFT of the image",
    );
    Measurement {
        sidecar,
        data,
        sinogram_mask: None,
        metal_mask: None,
    }
}

fn mar_measurement() -> Measurement {
    let sino = Array2::from_shape_fn((4, 5), |(v, d)| (v * d) as f32);
    let data = MeasurementData::Sinogram(sino);
    let mut sidecar = Sidecar::new(
        Problem::Mar,
        &data,
        Geometry::ParallelBeam {
            size: 4,
            angles_deg: vec![0.0, 45.0, 90.0, 135.0],
            n_det: 5,
            det_spacing: 1.0,
        },
        Mask::Sinogram {
            file: "m.mask.npy".into(),
        },
        Noise::None,
        "line integral of attenuation",
    );
    sidecar.metal_mask = Some("m.metal.npy".into());
    Measurement {
        sidecar,
        data,
        sinogram_mask: Some(Array2::from_shape_fn((4, 5), |(v, d)| (v + d) % 3 != 0)),
        metal_mask: Some(Array2::from_shape_fn((4, 4), |(i, j)| i == j)),
    }
}

#[test]
fn round_trips_for_every_kind() {
    let dir = tempfile::tempdir().unwrap();
    for (name, m) in [
        ("c.npy", ct_measurement()),
        ("k.npy", mri_measurement()),
        ("m.npy", mar_measurement()),
    ] {
        let p = dir.path().join(name);
        save_measurement(&p, &m).unwrap();
        assert!(sidecar_path(&p).exists());
        assert_eq!(load_measurement(&p).unwrap(), m, "{name}");
    }
}

fn error_of(p: &Path) -> String {
    format!("{:#}", load_measurement(p).unwrap_err())
}

fn edit_sidecar(p: &Path, edit: impl Fn(&mut serde_json::Value)) {
    let json = sidecar_path(p);
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&json, serde_json::to_string(&v).unwrap()).unwrap();
}

#[test]
fn mismatches_give_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("meas.npy");
    save_measurement(&p, &ct_measurement()).unwrap();

    // Missing sidecar.
    let json = sidecar_path(&p);
    let saved = std::fs::read_to_string(&json).unwrap();
    std::fs::remove_file(&json).unwrap();
    let e = error_of(&p);
    assert!(e.contains("meas.json") && e.contains("sidecar"), "{e}");
    std::fs::write(&json, &saved).unwrap();

    // Unknown field (deny_unknown_fields), also inside a tagged enum.
    edit_sidecar(&p, |v| v["colour"] = "blue".into());
    let e = error_of(&p);
    assert!(e.contains("meas.json") && e.contains("colour"), "{e}");
    std::fs::write(&json, &saved).unwrap();
    edit_sidecar(&p, |v| v["noise"]["photons"] = 3.into());
    assert!(error_of(&p).contains("photons"));
    std::fs::write(&json, &saved).unwrap();

    // Sidecar shape disagrees with its own geometry/mask.
    edit_sidecar(&p, |v| v["mask"]["kept"] = serde_json::json!([0, 1]));
    let e = error_of(&p);
    assert!(e.contains("meas.json") && e.contains("shape"), "{e}");
    std::fs::write(&json, &saved).unwrap();

    // Mask index out of range / not increasing.
    edit_sidecar(&p, |v| v["mask"]["kept"] = serde_json::json!([0, 4, 9]));
    assert!(error_of(&p).contains("index 9"));
    edit_sidecar(&p, |v| v["mask"]["kept"] = serde_json::json!([4, 2, 0]));
    assert!(error_of(&p).contains("increasing"));
    std::fs::write(&json, &saved).unwrap();

    // Data of the wrong shape.
    write_npy(&p, &Array2::<f32>::zeros((3, 10)).into_dyn().view()).unwrap();
    let e = error_of(&p);
    assert!(e.contains("meas.npy") && e.contains("[3, 10]"), "{e}");

    // Data of the wrong dtype.
    write_npy(&p, &Array2::<Complex32>::zeros((3, 11)).into_dyn().view()).unwrap();
    let e = error_of(&p);
    assert!(e.contains("complex64") && e.contains("float32"), "{e}");

    // Non-finite data.
    let mut bad = Array2::<f32>::zeros((3, 11));
    bad[[1, 2]] = f32::NAN;
    write_npy(&p, &bad.into_dyn().view()).unwrap();
    let e = error_of(&p);
    assert!(e.contains("meas.npy") && e.contains("NaN"), "{e}");
}

#[test]
fn companion_masks_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.npy");
    save_measurement(&p, &mar_measurement()).unwrap();
    let mask = dir.path().join("m.mask.npy");
    write_npy(&mask, &Array2::<u8>::ones((4, 4)).into_dyn().view()).unwrap();
    let e = error_of(&p);
    assert!(e.contains("m.mask.npy") && e.contains("shape"), "{e}");
    write_npy(&mask, &Array2::<u8>::from_elem((4, 5), 2).into_dyn().view()).unwrap();
    assert!(error_of(&p).contains("0 or 1"));
    std::fs::remove_file(&mask).unwrap();
    assert!(error_of(&p).contains("m.mask.npy"));
    // Companion names cannot escape the directory.
    edit_sidecar(&p, |v| v["mask"]["file"] = "../x.npy".into());
    assert!(error_of(&p).contains("plain .npy file name"));
}

#[test]
fn inconsistent_measurements_are_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.npy");
    let mut m = ct_measurement();
    m.sidecar.kind = Problem::Mri;
    assert!(save_measurement(&p, &m).is_err());
    let mut m = ct_measurement();
    if let MeasurementData::Sinogram(s) = &mut m.data {
        s[[0, 0]] = f32::INFINITY;
    }
    assert!(save_measurement(&p, &m).is_err());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
