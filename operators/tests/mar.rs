//! Metal-artefact-removal stack: anatomical phantom, metal segmentation and trace, Λ, the
//! artefact simulator and LI (issue 2, items 4, 6, 8).

use medsgm_operators::phantom::anatomical::{
    anatomical_ct, tissue, AnatomicalParams, MetalImplant, MetalMaterial,
};
use ndarray::Array2;

fn params_with(metal: MetalImplant) -> AnatomicalParams {
    AnatomicalParams {
        metal,
        ..AnatomicalParams::default()
    }
}

fn frac(img: &Array2<f32>, lo: f32, hi: f32) -> f64 {
    img.iter().filter(|&&v| v >= lo && v <= hi).count() as f64 / img.len() as f64
}

#[test]
fn phantom_is_deterministic_per_seed_and_varies_across_seeds() {
    let p = AnatomicalParams::default();
    let a = anatomical_ct(64, 11, &p).unwrap();
    let b = anatomical_ct(64, 11, &p).unwrap();
    assert_eq!(a.hu, b.hu);
    for seed in [12, 13] {
        let c = anatomical_ct(64, seed, &p).unwrap();
        let mad = (&a.hu - &c.hu).mapv(f32::abs).mean().unwrap();
        assert!(
            mad > 40.0,
            "seeds 11 and {seed} differ by only {mad} HU on average"
        );
    }
}

#[test]
fn phantom_geometry_is_resolution_independent() {
    let p = AnatomicalParams {
        texture_strength: 0.0,
        ..AnatomicalParams::default()
    };
    let fine = anatomical_ct(128, 5, &p).unwrap().hu;
    let coarse = anatomical_ct(64, 5, &p).unwrap().hu;
    // Area-weighted rasterisation: a 2×2 block mean of the fine image approximates the coarse one.
    let down = Array2::from_shape_fn((64, 64), |(r, c)| {
        (fine[[2 * r, 2 * c]]
            + fine[[2 * r + 1, 2 * c]]
            + fine[[2 * r, 2 * c + 1]]
            + fine[[2 * r + 1, 2 * c + 1]])
            / 4.0
    });
    let mad = (&down - &coarse).mapv(f32::abs).mean().unwrap();
    assert!(mad < 10.0, "mean |down(128) − 64| = {mad} HU");
}

#[test]
fn phantom_tissues_have_sensible_hu() {
    let mut p = AnatomicalParams {
        slice_position: [0.45, 0.45],
        ..AnatomicalParams::default()
    };
    let sl = anatomical_ct(96, 3, &p).unwrap();
    let hu = &sl.hu;
    assert!(hu.iter().all(|v| v.is_finite()));
    let (min, max) = hu
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    assert!(
        min >= -1030.0 && max < 1500.0,
        "range [{min}, {max}] without metal"
    );
    assert!(!sl.metal_mask.iter().any(|&m| m));
    // Corners are air; every tissue class is present in a mid-thoracic slice.
    assert_eq!(hu[[0, 0]], tissue::AIR);
    assert!(frac(hu, -1005.0, -995.0) > 0.2, "air background");
    assert!(frac(hu, -950.0, -720.0) > 0.08, "lungs");
    assert!(frac(hu, -160.0, -40.0) > 0.03, "fat");
    assert!(frac(hu, 0.0, 100.0) > 0.05, "soft tissue");
    assert!(frac(hu, 500.0, 1200.0) > 0.002, "cortical bone");
    // Lower slices contain liver instead of most of the right lung.
    p.slice_position = [0.95, 0.95];
    let low = anatomical_ct(96, 3, &p).unwrap().hu;
    assert!(frac(&low, -950.0, -720.0) < frac(hu, -950.0, -720.0) * 0.7);
    assert!(frac(&low, 0.0, 100.0) > frac(hu, 0.0, 100.0) * 1.3);
}

#[test]
fn phantom_metal_mask_marks_the_metal_and_keeps_the_anatomy() {
    for (k, implant) in [
        MetalImplant::HipRods,
        MetalImplant::Dental,
        MetalImplant::SpinalScrews,
    ]
    .into_iter()
    .enumerate()
    {
        let seed = 20 + k as u64;
        let p = AnatomicalParams {
            metal_material: MetalMaterial::Steel,
            ..params_with(implant)
        };
        let sl = anatomical_ct(96, seed, &p).unwrap();
        assert_eq!(sl.implant, implant);
        let n_metal = sl.metal_mask.iter().filter(|&&m| m).count();
        assert!(n_metal >= 2, "{implant:?}: {n_metal} metal pixels");
        for ((&m, &h), idx) in sl.metal_mask.iter().zip(sl.hu.iter()).zip(0..) {
            if m {
                assert!(
                    h >= 0.5 * 12000.0 - 1100.0,
                    "{implant:?} pixel {idx}: {h} HU in mask"
                );
            } else {
                assert!(
                    h < 0.5 * 12000.0 + 1100.0,
                    "{implant:?} pixel {idx}: {h} HU outside"
                );
            }
        }
        // Outside the metal (and its partial-volume rim) the anatomy is the metal-free one.
        let clean = anatomical_ct(96, seed, &params_with(MetalImplant::None)).unwrap();
        let changed = sl
            .hu
            .iter()
            .zip(clean.hu.iter())
            .filter(|(a, b)| (*a - *b).abs() > 1e-3)
            .count();
        assert!(
            changed >= n_metal && changed < 4 * n_metal + 40,
            "{changed} vs {n_metal}"
        );
    }
}

#[test]
fn phantom_rejects_bad_parameters() {
    let bad = AnatomicalParams {
        body_half_width: [0.9, 0.5],
        ..AnatomicalParams::default()
    };
    assert!(anatomical_ct(64, 0, &bad).is_err());
    let bad = AnatomicalParams {
        supersample: 0,
        ..AnatomicalParams::default()
    };
    assert!(anatomical_ct(64, 0, &bad).is_err());
    assert!(anatomical_ct(4, 0, &AnatomicalParams::default()).is_err());
}
