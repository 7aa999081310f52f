//! Metal-artefact-removal stack: anatomical phantom, metal segmentation and trace, Λ, the
//! artefact simulator and LI.

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

// ---------------------------------------------------------------------------------------------
// Metal trace, Λ, simulator and LI on the real Radon transform.

use medsgm_operators::fbp::{fbp, Filter};
use medsgm_operators::hu::{hu_to_unit, mu_to_hu, HuWindow};
use medsgm_operators::mar_sim::{simulate_metal_artifacts, MarSimParams};
use medsgm_operators::metal::{
    dilate, mar_mask, metal_trace, segment_metal, METAL_THRESHOLD_HU, TRACE_THRESHOLD,
};
use medsgm_operators::radon::{Radon, RadonGeometry};
use medsgm_operators::solvers::li::li;
use medsgm_operators::{CtProjector, LinearOperator};

const N: usize = 96;
const VIEWS: usize = 120;

fn radon(n: usize, views: usize) -> Radon {
    Radon::new(RadonGeometry::equispaced(
        n,
        views,
        RadonGeometry::default_n_det(n),
    ))
    .unwrap()
}

fn metal_slice(seed: u64, implant: MetalImplant) -> (Array2<f32>, Array2<bool>) {
    let p = AnatomicalParams {
        slice_position: [0.3, 0.7],
        ..params_with(implant)
    };
    let sl = anatomical_ct(N, seed, &p).unwrap();
    (sl.hu, sl.metal_mask)
}

#[test]
fn metal_trace_covers_every_ray_through_metal_and_lambda_is_its_complement() {
    let r = radon(N, VIEWS);
    let g = r.geometry().clone();
    for (seed, implant) in [(1, MetalImplant::SpinalScrews), (2, MetalImplant::HipRods)] {
        let (hu, true_metal) = metal_slice(seed, implant);
        let metal = segment_metal(&hu.view(), METAL_THRESHOLD_HU, 1).unwrap();
        // Segmentation (with the 3×3 dilation) contains the phantom's metal.
        assert!(true_metal.iter().zip(metal.iter()).all(|(&t, &m)| !t || m));
        let trace = metal_trace(&r, &metal.view(), TRACE_THRESHOLD).unwrap();
        assert_eq!(trace.dim(), (VIEWS, g.n_det));
        // Geometric check independent of the projector: the detector bin hit by the ray through
        // the centre of any metal pixel, t = x cosθ + y sinθ, is in the trace in every view.
        let c = (N as f32 - 1.0) / 2.0;
        let dc = (g.n_det as f32 - 1.0) / 2.0;
        for ((i, j), _) in metal.indexed_iter().filter(|(_, &m)| m) {
            let (x, y) = (j as f32 - c, c - i as f32);
            for (v, &th) in g.angles.iter().enumerate() {
                let t = x * th.cos() + y * th.sin();
                let k = (t / g.det_spacing + dc).round() as usize;
                assert!(
                    trace[[v, k]],
                    "pixel ({i},{j}) view {v} bin {k} not in the trace"
                );
            }
        }
        // Radon of the metal mask vanishes (≤ τ) outside the trace.
        let ind = metal.mapv(|m| if m { 1.0f32 } else { 0.0 }).into_dyn();
        let proj = r.forward(&ind.view());
        for (p, &t) in proj.iter().zip(trace.iter()) {
            assert!(t || *p <= TRACE_THRESHOLD);
        }
        // Λ is the complement, and a sizeable part of the sinogram stays measured.
        let lambda = mar_mask(&trace.view());
        assert!(lambda.iter().zip(trace.iter()).all(|(&l, &t)| l != t));
        let kept = lambda.iter().filter(|&&l| l).count();
        assert!(
            kept > lambda.len() / 2 && kept < lambda.len(),
            "{implant:?}: kept {kept}"
        );
    }
}

/// Masked RMSE in HU and PSNR (dB) over the unit window [−1024, 3072] HU.
fn masked_errors(x: &Array2<f32>, reference: &Array2<f32>, mask: &Array2<bool>) -> (f64, f64) {
    let w = HuWindow::default();
    let (xu, ru) = (hu_to_unit(&x.view(), w), hu_to_unit(&reference.view(), w));
    let (mut se_hu, mut se_u, mut n) = (0.0f64, 0.0f64, 0usize);
    for (((a, b), (au, bu)), &m) in x
        .iter()
        .zip(reference.iter())
        .zip(xu.iter().zip(ru.iter()))
        .zip(mask.iter())
    {
        if m {
            se_hu += ((a - b) as f64).powi(2);
            se_u += ((au - bu) as f64).powi(2);
            n += 1;
        }
    }
    let mse_u = se_u / n as f64;
    ((se_hu / n as f64).sqrt(), 10.0 * (1.0 / mse_u).log10())
}

/// Full simulate → FBP → segment → trace → LI chain at a clinical pixel size (400 mm / 256 =
/// 1.56 mm), 180 views, bilateral steel rods; the ground truth is the metal-free anatomy.
#[test]
fn simulated_metal_artifacts_streak_fbp_and_li_reduces_them() {
    let (n, views, seed) = (256, 180, 3);
    let r = radon(n, views);
    let p = AnatomicalParams {
        slice_position: [0.3, 0.7],
        metal_material: MetalMaterial::Steel,
        ..params_with(MetalImplant::HipRods)
    };
    let with_metal = anatomical_ct(n, seed, &p).unwrap();
    let truth = anatomical_ct(n, seed, &params_with(MetalImplant::None))
        .unwrap()
        .hu;
    let params = MarSimParams {
        metal_material: MetalMaterial::Steel,
        ..MarSimParams::default()
    };
    let frac = &with_metal.metal_fraction;
    let sim = simulate_metal_artifacts(
        &CtProjector::from(r.clone()),
        &truth.view(),
        &frac.view(),
        &params,
        17,
    )
    .unwrap();
    let again = simulate_metal_artifacts(
        &CtProjector::from(r.clone()),
        &truth.view(),
        &frac.view(),
        &params,
        17,
    )
    .unwrap();
    assert_eq!(
        sim.sinogram, again.sinogram,
        "simulation must be deterministic per seed"
    );
    let no_metal = Array2::<f32>::zeros((n, n));
    let free = simulate_metal_artifacts(
        &CtProjector::from(r.clone()),
        &truth.view(),
        &no_metal.view(),
        &params,
        17,
    )
    .unwrap();
    let to_hu = |sino: &Array2<f32>| {
        mu_to_hu(
            &fbp(&r, &sino.view(), Filter::RamLak).view(),
            sim.mu_water_per_pixel,
        )
    };
    let fbp_art = to_hu(&sim.sinogram);
    let fbp_free = to_hu(&free.sinogram);
    // Soft tissue ≥ 4 px from metal and ≥ 2 px from other tissues (edges ring in any FBP).
    let near = dilate(&with_metal.metal_mask.view(), 4);
    let not_soft = dilate(&truth.mapv(|h| h.abs() >= 200.0).view(), 2);
    let soft = Array2::from_shape_fn((n, n), |ij| !near[ij] && !not_soft[ij]);
    let (rmse_free, _) = masked_errors(&fbp_free, &truth, &soft);
    let (rmse_art, _) = masked_errors(&fbp_art, &truth, &soft);
    assert!(
        rmse_art > 2.5 * rmse_free,
        "soft-tissue RMSE with metal {rmse_art:.1} HU vs same pipeline without metal \
         {rmse_free:.1} HU"
    );
    // LI with the metal estimated by thresholding the artefact image beats plain FBP outside
    // the metal, against the metal-free anatomy.
    let metal = segment_metal(&fbp_art.view(), METAL_THRESHOLD_HU, 1).unwrap();
    assert!(with_metal
        .metal_mask
        .iter()
        .zip(metal.iter())
        .all(|(&t, &m)| !t || m));
    let trace = metal_trace(&r, &metal.view(), TRACE_THRESHOLD).unwrap();
    let li_hu = mu_to_hu(
        &li(&r, &sim.sinogram.view(), &trace.view()).unwrap().view(),
        sim.mu_water_per_pixel,
    );
    let outside = metal.mapv(|m| !m);
    let (rmse_li, psnr_li) = masked_errors(&li_hu, &truth, &outside);
    let (rmse_fbp, psnr_fbp) = masked_errors(&fbp_art, &truth, &outside);
    eprintln!(
        "soft tissue: {rmse_art:.1} HU with metal, {rmse_free:.1} HU without; outside metal: \
         LI {psnr_li:.2} dB / {rmse_li:.1} HU, FBP {psnr_fbp:.2} dB / {rmse_fbp:.1} HU"
    );
    assert!(
        psnr_li > psnr_fbp + 2.0,
        "PSNR outside metal: LI {psnr_li:.2} dB ({rmse_li:.0} HU) vs FBP {psnr_fbp:.2} dB \
         ({rmse_fbp:.0} HU)"
    );
}

/// Without metal, bone hardening, noise and aperture, the water precorrection inverts the
/// polychromatic water transmission exactly; without the precorrection water cups (the
/// polychromatic line integral is sub-linear in path length).
#[test]
fn simulator_reduces_to_the_ideal_sinogram_for_water_only_noise_free_data() {
    let r = radon(64, 60);
    let hu = anatomical_ct(64, 8, &AnatomicalParams::default())
        .unwrap()
        .hu;
    let none = Array2::<f32>::zeros((64, 64));
    let mut params = MarSimParams {
        bone_hardening: false,
        noise: false,
        detector_oversampling: 1,
        ..MarSimParams::default()
    };
    let sim = simulate_metal_artifacts(
        &CtProjector::from(r.clone()),
        &hu.view(),
        &none.view(),
        &params,
        0,
    )
    .unwrap();
    let max = sim.clean_sinogram.iter().cloned().fold(0.0f32, f32::max);
    let err = (&sim.sinogram - &sim.clean_sinogram)
        .mapv(f32::abs)
        .iter()
        .cloned()
        .fold(0.0f32, f32::max);
    assert!(max > 1.0 && err < 1e-4 * max, "max {max}, error {err}");
    params.water_correction = false;
    let raw = simulate_metal_artifacts(
        &CtProjector::from(r.clone()),
        &hu.view(),
        &none.view(),
        &params,
        0,
    )
    .unwrap();
    let (k, _) = sim
        .clean_sinogram
        .indexed_iter()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .unwrap();
    // Sub-linear: the thickest path loses clearly more than a thin one (a fifth as long).
    let thin = sim
        .clean_sinogram
        .indexed_iter()
        .min_by(|a, b| (a.1 - max / 5.0).abs().total_cmp(&(b.1 - max / 5.0).abs()))
        .unwrap()
        .0;
    let ratio = |k| raw.sinogram[k] / sim.clean_sinogram[k];
    assert!(
        ratio(k) < ratio(thin) - 0.02,
        "{} vs {}",
        ratio(k),
        ratio(thin)
    );
    // Bad inputs are rejected with errors.
    let mut bad = none.clone();
    bad[[3, 3]] = 1.5;
    assert!(simulate_metal_artifacts(
        &CtProjector::from(r.clone()),
        &hu.view(),
        &bad.view(),
        &params,
        0
    )
    .is_err());
    assert!(simulate_metal_artifacts(
        &CtProjector::from(r.clone()),
        &hu.view(),
        &none.slice(ndarray::s![..32, ..]),
        &params,
        0
    )
    .is_err());
}
