//! Cartesian k-space masks against the score_inverse_problems reference (numpy, committed
//! fixture) and their line counts.

mod common;

use medsgm_operators::kspace_mask::{self, kept_columns, song_center_fraction};
use ndarray::Array2;

fn assert_broadcast(mask: &Array2<bool>) {
    for row in mask.rows() {
        assert_eq!(row, mask.row(0), "column masks must be equal on every row");
    }
}

#[test]
fn equispaced_matches_numpy_reference_columns() {
    let text = std::fs::read_to_string(common::fixture("metrics/metrics.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = json["equispaced_masks"].as_array().unwrap();
    assert!(cases.len() >= 8);
    for case in cases {
        let w = case["w"].as_u64().unwrap() as usize;
        let r = case["acceleration"].as_f64().unwrap();
        let cf = case["center_fraction"].as_f64().unwrap();
        let want: Vec<usize> = case["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let mask = kspace_mask::equispaced(3, w, r, cf).unwrap();
        assert_broadcast(&mask);
        assert_eq!(kept_columns(&mask), want, "w = {w}, R = {r}, cf = {cf}");
    }
}

#[test]
fn song_default_centre_fraction_keeps_about_w_over_r_columns() {
    for (w, r) in [(256usize, 4.0), (256, 8.0), (256, 24.0), (320, 4.0)] {
        let mask = kspace_mask::equispaced(w, w, r, song_center_fraction(w, r)).unwrap();
        let kept = kept_columns(&mask);
        let target = w as f64 / r;
        assert!(
            (kept.len() as f64 - target).abs() <= 0.1 * target + 2.0,
            "w = {w}, R = {r}: {} columns, target {target}",
            kept.len()
        );
        assert!(kept.contains(&(w / 2)), "DC column must be kept");
        assert_eq!(
            mask,
            kspace_mask::equispaced(w, w, r, song_center_fraction(w, r)).unwrap()
        );
    }
    // 256², R = 4: centre round(16.384) = 16 columns 120..136.
    let kept = kept_columns(&kspace_mask::equispaced(4, 256, 4.0, 0.064).unwrap());
    assert!((120..136).all(|c| kept.contains(&c)));
}

#[test]
fn random_mask_is_seeded_and_keeps_the_budget_on_average() {
    let (w, r, cf) = (256, 4.0, 0.08);
    let a = kspace_mask::random(8, w, r, cf, 5).unwrap();
    assert_eq!(a, kspace_mask::random(8, w, r, cf, 5).unwrap());
    assert_ne!(a, kspace_mask::random(8, w, r, cf, 6).unwrap());
    assert_broadcast(&a);
    let num_low = (w as f64 * cf).round() as usize; // 20
    let pad = (w - num_low).div_ceil(2);
    let kept = kept_columns(&a);
    assert!(
        (pad..pad + num_low).all(|c| kept.contains(&c)),
        "centre block"
    );
    // Mean over seeds: W/R = 64 expected; outer columns Binomial(236, 44/236), sd ≈ 6.
    let n = 200;
    let mean: f64 = (0..n)
        .map(|s| kept_columns(&kspace_mask::random(1, w, r, cf, s).unwrap()).len() as f64)
        .sum::<f64>()
        / n as f64;
    assert!((mean - 64.0).abs() < 1.5, "mean kept columns {mean}");
}

#[test]
fn variable_density_has_an_exact_budget_and_favours_the_centre() {
    let (w, r, cf) = (256, 6.0, 0.04);
    let budget = (w as f64 / r).round() as usize;
    let mut near = 0usize;
    let mut far = 0usize;
    for seed in 0..50 {
        let m = kspace_mask::variable_density(2, w, r, cf, seed).unwrap();
        assert_broadcast(&m);
        let kept = kept_columns(&m);
        assert_eq!(kept.len(), budget, "seed {seed}");
        assert!(kept.contains(&(w / 2)));
        for c in kept {
            let d = (c as isize - (w / 2) as isize).unsigned_abs();
            if (10..40).contains(&d) {
                near += 1;
            } else if (88..118).contains(&d) {
                far += 1;
            }
        }
    }
    assert!(
        near > 2 * far,
        "density should decay: near {near}, far {far}"
    );
    assert_eq!(
        kspace_mask::variable_density(2, w, r, cf, 3).unwrap(),
        kspace_mask::variable_density(2, w, r, cf, 3).unwrap()
    );
}

#[test]
fn acceleration_one_keeps_everything_and_bad_parameters_are_rejected() {
    // The reference stops its arange at W − 1, so equispaced R = 1 misses the last column.
    let eq = kspace_mask::equispaced(4, 33, 1.0, 0.0).unwrap();
    assert_eq!(kept_columns(&eq), (0..32).collect::<Vec<_>>());
    assert!(kspace_mask::random(4, 33, 1.0, 0.1, 1)
        .unwrap()
        .iter()
        .all(|&m| m));
    assert!(kspace_mask::variable_density(4, 33, 1.0, 0.1, 1)
        .unwrap()
        .iter()
        .all(|&m| m));
    assert!(kspace_mask::equispaced(4, 32, 0.5, 0.1).is_err());
    assert!(kspace_mask::equispaced(4, 32, f64::NAN, 0.1).is_err());
    assert!(kspace_mask::random(4, 32, 4.0, 1.5, 0).is_err());
    assert!(kspace_mask::variable_density(0, 32, 4.0, 0.1, 0).is_err());
    // Centre block alone exceeds the budget: only the centre is kept.
    let m = kspace_mask::equispaced(1, 100, 8.0, 0.5).unwrap();
    assert_eq!(kept_columns(&m), (25..75).collect::<Vec<_>>());
}
