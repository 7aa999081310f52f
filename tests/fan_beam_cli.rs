//! Fan-beam CT through the command line: `simulate ct --geometry fan` writes a fan-beam
//! sidecar, `recon ct` reconstructs it with FBP, FISTA-TV and a score method through
//! A = P(Λ)T with the fan-beam T, and impossible geometries are refused with exit 2.

mod common;

use common::{medsgm, ok};
use medsgm::io::measurement::{load_measurement, Geometry};
use medsgm::io::npy::read_npy;
use medsgm_operators::metrics::psnr;
use ndarray::Array2;
use std::path::Path;

fn image(dir: &Path, name: &str) -> Array2<f32> {
    read_npy(&dir.join(name))
        .unwrap()
        .into_f32()
        .unwrap()
        .into_dimensionality()
        .unwrap()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A 64² anatomical phantom in [0, 1] and its sparse fan-beam measurement (23 of 360 views,
/// flat detector, quarter-detector offset).
fn fan_measurement(dir: &Path) {
    ok(&medsgm(
        &[
            "phantom",
            "--kind",
            "anatomical",
            "--size",
            "64",
            "--seed",
            "3",
            "--units",
            "unit",
            "--out",
            "gt.npy",
        ],
        dir,
    ));
    ok(&medsgm(
        &[
            "simulate",
            "ct",
            "--input",
            "gt.npy",
            "--out",
            "fan.npy",
            "--geometry",
            "fan",
            "--detector",
            "flat",
            "--det-offset",
            "0.25",
            "--views",
            "23",
            "--full-views",
            "360",
        ],
        dir,
    ));
}

#[test]
fn fan_beam_measurements_round_trip_and_reconstruct() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fan_measurement(dir);
    let m = load_measurement(&dir.join("fan.npy")).unwrap();
    let Geometry::FanBeam {
        size,
        angles_deg,
        source_distance,
        detector_distance,
        det_offset,
        ..
    } = &m.sidecar.geometry
    else {
        panic!("not a fan-beam sidecar: {:?}", m.sidecar.geometry);
    };
    assert_eq!((*size, angles_deg.len()), (64, 360));
    assert_eq!((*source_distance, *detector_distance), (128.0, 256.0));
    assert_eq!(*det_offset, 0.25);
    let gt = image(dir, "gt.npy");
    let mut quality = vec![];
    for method in ["fbp", "fista-tv"] {
        let out = format!("{method}.npy");
        let mut args = vec![
            "recon", "ct", "--input", "fan.npy", "--method", method, "--out", &out,
        ];
        if method == "fista-tv" {
            args.extend(["--tv-weight", "0.002"]);
        }
        ok(&medsgm(&args, dir));
        quality.push(psnr(&image(dir, &out).view(), &gt.view(), 1.0).unwrap());
    }
    // 23 views: FBP streaks, TV removes most of them
    assert!(quality[0] > 18.0, "fan FBP {quality:?}");
    assert!(quality[1] > quality[0] + 3.0, "fan FISTA-TV {quality:?}");
    // a score method through the fan-beam A = P(Λ)T
    let model =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models/ct_phantom_64/model.safetensors");
    ok(&medsgm(
        &[
            "recon",
            "ct",
            "--input",
            "fan.npy",
            "--method",
            "dds",
            "--model",
            model.to_str().unwrap(),
            "--units",
            "unit",
            "--steps",
            "20",
            "--out",
            "dds.npy",
        ],
        dir,
    ));
    let dds = psnr(&image(dir, "dds.npy").view(), &gt.view(), 1.0).unwrap();
    assert!(
        dds > quality[0] + 3.0,
        "fan DDS {dds} vs FBP {}",
        quality[0]
    );
}

#[test]
fn impossible_fan_geometries_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fan_measurement(dir);
    let base = [
        "simulate", "ct", "--input", "gt.npy", "--out", "bad.npy", "--views", "23",
    ];
    for (extra, expected) in [
        // the source inside the object's circle
        (
            &["--geometry", "fan", "--source-distance", "20"][..],
            "source",
        ),
        // the detector closer than the source
        (
            &[
                "--geometry",
                "fan",
                "--source-distance",
                "128",
                "--detector-distance",
                "100",
            ][..],
            "detector",
        ),
        // too few bins to cover the field of view
        (&["--geometry", "fan", "--n-det", "8"][..], "cover"),
        // fan options without --geometry fan
        (&["--source-distance", "128"][..], "--geometry fan"),
    ] {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        let o = medsgm(&args, dir);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(expected),
            "{args:?}: {expected:?} not in {}",
            stderr(&o)
        );
        assert!(!dir.join("bad.npy").exists(), "{args:?} wrote output");
    }
    // a sidecar edited into an impossible geometry is refused when read
    let sidecar = std::fs::read_to_string(dir.join("fan.json")).unwrap();
    let edited = sidecar.replace(
        "\"detector_distance\": 256.0",
        "\"detector_distance\": 64.0",
    );
    assert_ne!(edited, sidecar);
    std::fs::write(dir.join("fan.json"), edited).unwrap();
    let o = medsgm(
        &[
            "recon", "ct", "--input", "fan.npy", "--method", "fbp", "--out", "r.npy",
        ],
        dir,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("fan.json"), "{}", stderr(&o));
    assert!(!dir.join("r.npy").exists());
}

/// Metal artefact reduction on fan-beam data: `simulate mar --geometry fan` writes a fan-beam
/// MAR sidecar with its metal trace; linear interpolation of the trace improves on the
/// uncorrected FBP against the metal-free phantom, by as much as on parallel-beam data.
#[test]
fn fan_beam_mar_simulation_and_li() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    for (metal, out) in [("hip-rods", "hu.npy"), ("none", "free.npy")] {
        ok(&medsgm(
            &[
                "phantom",
                "--kind",
                "anatomical",
                "--size",
                "64",
                "--seed",
                "5",
                "--units",
                "hu",
                "--metal",
                metal,
                "--out",
                out,
            ],
            d,
        ));
    }
    let free = image(d, "free.npy");
    let mut gain = Vec::new();
    for beam in ["parallel", "fan"] {
        let m_out = format!("{beam}.npy");
        ok(&medsgm(
            &[
                "simulate",
                "mar",
                "-i",
                "hu.npy",
                "--geometry",
                beam,
                "--views",
                "360",
                "--out",
                &m_out,
            ],
            d,
        ));
        let m = load_measurement(&d.join(&m_out)).unwrap();
        assert_eq!(
            matches!(m.sidecar.geometry, Geometry::FanBeam { .. }),
            beam == "fan"
        );
        let trace = m.sinogram_mask.as_ref().expect("a metal-trace mask");
        assert!(trace.iter().any(|&keep| !keep), "no trace");
        let mut q = Vec::new();
        for method in ["fbp", "li"] {
            let out = format!("{beam}_{method}.npy");
            ok(&medsgm(
                &[
                    "recon", "mar", "-i", &m_out, "--method", method, "--out", &out,
                ],
                d,
            ));
            q.push(psnr(&image(d, &out).view(), &free.view(), 2000.0).unwrap());
        }
        gain.push(q[1] - q[0]);
    }
    assert!(gain[1] > 0.5, "fan beam: LI gains {} dB over FBP", gain[1]);
    assert!(
        (gain[1] - gain[0]).abs() < 1.0,
        "LI gains {} dB (fan) vs {} dB (parallel)",
        gain[1],
        gain[0]
    );
}
