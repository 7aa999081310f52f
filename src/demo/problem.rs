//! The demo's problem: the ground truth (a built-in phantom or a held-out real slice) and its
//! sparse-view sinogram.

use crate::error::InputContext;
use crate::io::measurement::MeasurementData;
use crate::task::ct_scan::{CtNoise, CtScan};
use crate::task::phantom::PhantomKind;
use anyhow::{anyhow, bail, Result};
use medsgm_operators::hu::{hu_to_unit, HuWindow};
use medsgm_operators::phantom::anatomical::{anatomical_ct, AnatomicalParams};
use medsgm_operators::phantom::shepp_logan;
use medsgm_operators::radon::Radon;
use ndarray::Array2;

/// A sparse-view CT problem: ground truth, operator and measured sinogram.
pub struct CtProblem {
    /// Ground-truth image (model units).
    pub truth: Array2<f32>,
    /// The Radon transform over the measured views.
    pub radon: Radon,
    /// Measured sinogram [views, det].
    pub sinogram: Array2<f32>,
}

/// Simulates the sparse-view sinogram of `truth` over `views` equispaced parallel-beam views
/// (the [`CtScan::parallel`] acquisition of `simulate ct`), with Gaussian noise of standard
/// deviation `sigma` when positive.
pub fn ct_problem(truth: Array2<f32>, views: usize, sigma: f32, seed: u64) -> Result<CtProblem> {
    let noise = if sigma > 0.0 {
        CtNoise::Gaussian { sigma }
    } else {
        CtNoise::None
    };
    let scan = CtScan::parallel(truth.nrows(), views, noise);
    let measurement = scan.simulate(&truth, seed, false)?;
    let MeasurementData::Sinogram(sinogram) = measurement.data else {
        bail!("a CT scan measured no sinogram");
    };
    let geometry = scan
        .geometry
        .radon_geometry(None)
        .ok_or_else(|| anyhow!("the demo's scan is parallel beam"))?;
    Ok(CtProblem {
        truth,
        radon: Radon::new(geometry)?,
        sinogram,
    })
}

/// The built-in phantom in model units: anatomical HU through `window`, the others in [0, 1].
pub fn demo_phantom(
    kind: PhantomKind,
    size: usize,
    seed: u64,
    window: HuWindow,
) -> Result<Array2<f32>> {
    Ok(match kind {
        PhantomKind::SheppLogan => shepp_logan(size),
        PhantomKind::Anatomical => {
            let hu = anatomical_ct(size, seed, &AnatomicalParams::default())?.hu;
            hu_to_unit(&hu.view(), window)
        }
        PhantomKind::Ellipses => medsgm_operators::phantom::random_ellipses(size, seed, 10),
    })
}

/// The middle slice of the held-out test slab of a nifti-slices training configuration.
pub fn held_out_slice(config: &std::path::Path) -> Result<Array2<f32>> {
    let mut slices = crate::eval::testset::config_slices(
        config,
        usize::MAX,
        crate::eval::testset::EvalSplit::Test,
    )
    .invalid_input()?;
    let mid = slices.len() / 2;
    Ok(slices.swap_remove(mid).1)
}
