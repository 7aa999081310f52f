//! PSNR / SSIM / NMSE against scikit-image 0.26 (fixtures written by
//! data-scripts/make_metric_fixtures.py).

mod common;

use medsgm_operators::metrics::{self, fov_mask, SsimPreset};
use ndarray::Array2;

struct Pair {
    name: String,
    x: Array2<f32>,
    reference: Array2<f32>,
    json: serde_json::Value,
}

fn pairs() -> Vec<Pair> {
    let text = std::fs::read_to_string(common::fixture("metrics/metrics.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let name = p["name"].as_str().unwrap().to_string();
            let load = |kind: &str| {
                common::read_npy_2d(&format!("metrics/pair_{name}_{kind}.npy")).mapv(|v| v as f32)
            };
            Pair {
                x: load("x"),
                reference: load("ref"),
                name,
                json: p.clone(),
            }
        })
        .collect()
}

const PRESETS: [(SsimPreset, &str); 2] = [
    (SsimPreset::Gaussian, "gaussian"),
    (SsimPreset::SkimageDefault, "skimage"),
];

#[test]
fn psnr_ssim_nmse_match_scikit_image() {
    let pairs = pairs();
    assert_eq!(pairs.len(), 2);
    for p in &pairs {
        let (x, r) = (p.x.view(), p.reference.view());
        for e in p.json["data_ranges"].as_array().unwrap() {
            let dr = e["data_range"].as_f64().unwrap();
            let psnr = metrics::psnr(&x, &r, dr).unwrap();
            let want = e["psnr"].as_f64().unwrap();
            assert!(
                (psnr - want).abs() < 1e-9,
                "{} PSNR {psnr} vs {want}",
                p.name
            );
            for (preset, key) in PRESETS {
                let s = metrics::ssim(&x, &r, dr, preset).unwrap();
                let want = e[format!("ssim_{key}")].as_f64().unwrap();
                assert!(
                    (s - want).abs() < 1e-9,
                    "{} SSIM {key} (R = {dr}): {s} vs {want}",
                    p.name
                );
            }
        }
        let nmse = metrics::nmse(&x, &r).unwrap();
        let want = p.json["nmse"].as_f64().unwrap();
        assert!(
            (nmse - want).abs() < 1e-9 * want.max(1.0),
            "{} NMSE {nmse} vs {want}",
            p.name
        );
    }
}

#[test]
fn full_ssim_map_matches_scikit_image_including_reflect_borders() {
    let p = &pairs()[0];
    for (preset, key) in PRESETS {
        let want = common::read_npy_2d(&format!("metrics/ssim_map_{}_{key}.npy", p.name));
        let got = metrics::ssim_map(&p.x.view(), &p.reference.view(), 1.0, preset).unwrap();
        assert_eq!(got.dim(), want.dim());
        let err = (&got - &want).iter().map(|v| v.abs()).fold(0.0, f64::max);
        assert!(err < 1e-9, "{key}: max map error {err}");
    }
}

#[test]
fn edge_cases_and_masked_variants() {
    let p = &pairs()[1];
    let (x, r) = (p.x.view(), p.reference.view());
    assert_eq!(metrics::psnr(&r, &r, 1.0).unwrap(), f64::INFINITY);
    for (preset, _) in PRESETS {
        assert!((metrics::ssim(&r, &r, 1.0, preset).unwrap() - 1.0).abs() < 1e-12);
    }
    assert!(metrics::psnr(&x, &r, 0.0).is_err());
    let small = Array2::<f32>::zeros((8, 8));
    assert!(metrics::ssim(&small.view(), &small.view(), 1.0, SsimPreset::Gaussian).is_err());
    assert!(metrics::psnr(&x, &small.view(), 1.0).is_err());

    // An all-true mask reproduces the unmasked values.
    let all = Array2::from_elem(x.dim(), true);
    assert_eq!(
        metrics::psnr_masked(&x, &r, 1.0, &all.view()).unwrap(),
        metrics::psnr(&x, &r, 1.0).unwrap()
    );
    assert!(
        (metrics::ssim_masked(&x, &r, 1.0, SsimPreset::Gaussian, &all.view()).unwrap()
            - metrics::ssim(&x, &r, 1.0, SsimPreset::Gaussian).unwrap())
        .abs()
            < 1e-12
    );
    // Errors outside the field of view do not count inside it.
    let fov = fov_mask(64, 64);
    let mut spoiled = p.x.clone();
    spoiled[[0, 0]] += 100.0;
    spoiled[[63, 1]] -= 50.0;
    assert_eq!(
        metrics::psnr_masked(&spoiled.view(), &r, 1.0, &fov.view()).unwrap(),
        metrics::psnr_masked(&x, &r, 1.0, &fov.view()).unwrap()
    );
    assert_eq!(
        metrics::nmse_masked(&spoiled.view(), &r, &fov.view()).unwrap(),
        metrics::nmse_masked(&x, &r, &fov.view()).unwrap()
    );
    assert!(
        (metrics::ssim_masked(&spoiled.view(), &r, 1.0, SsimPreset::Gaussian, &fov.view())
            .unwrap()
            - metrics::ssim_masked(&x, &r, 1.0, SsimPreset::Gaussian, &fov.view()).unwrap())
        .abs()
            < 1e-12
    );
}

#[test]
fn fov_mask_is_the_inscribed_disc() {
    let m = fov_mask(64, 64);
    let area = m.iter().filter(|&&v| v).count() as f64;
    let disc = std::f64::consts::PI * 32.0 * 32.0;
    assert!((area - disc).abs() / disc < 0.02, "area {area} vs {disc}");
    assert!(!m[[0, 0]] && m[[32, 32]] && m[[32, 0]] && m[[0, 32]]);
    // Symmetric about the geometric centre.
    for ((i, j), &v) in m.indexed_iter() {
        assert_eq!(v, m[[63 - i, 63 - j]]);
        assert_eq!(v, m[[j, i]]);
    }
}

/// PSNR for extreme data ranges stays finite and exact: 20 log10(range) − 10 log10(MSE)
/// (10 log10(range²/MSE) underflowed to −∞ at range 1e-300).
#[test]
fn psnr_is_finite_for_extreme_data_ranges() {
    let x = ndarray::Array2::<f32>::from_elem((4, 4), 1.0);
    let r = ndarray::Array2::<f32>::from_elem((4, 4), 0.5);
    for range in [1e-300, 1e-3, 1.0, 1e300] {
        let p = medsgm_operators::metrics::psnr(&x.view(), &r.view(), range).unwrap();
        let want = 20.0 * range.log10() - 10.0 * 0.25f64.log10();
        assert!(
            p.is_finite() && (p - want).abs() < 1e-9,
            "{range}: {p} vs {want}"
        );
    }
}
