//! Rebinning fan-beam projections onto a parallel-beam grid (Kak & Slaney §3.4, θ = β + γ,
//! t = R sin γ), so that parallel-beam methods (FBP, score-based solvers) run on fan data.

use super::geometry::FanGeometry;
use super::parker::ScanArc;
use crate::error::Result;
use crate::linop::check_shape;
use crate::radon::RadonGeometry;
use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;
use std::f64::consts::{PI, TAU};

/// Resamples the fan-beam sinogram `sino` ([views, K] of `fan`) onto the (θ, t) grid of
/// `parallel` ([views, n_det], in the convention of [`crate::radon`]): each parallel ray
/// (θ, t) is the fan ray γ = asin(t/R) of the view β = θ − γ, or its conjugate
/// (β + π + 2γ, −γ) = the ray (θ + π, −t) when β lies outside the scan; the fan data are
/// interpolated bilinearly in (β, bin). Rays off the detector, beyond the scanned arc or with
/// |t| ≥ R are 0.
///
/// Assumes equispaced source angles (as [`ScanArc`] does); a full scan wraps around.
/// Errors if the geometries are invalid or `sino` has the wrong shape.
pub fn rebin_to_parallel(
    fan: &FanGeometry,
    sino: &ArrayView2<f32>,
    parallel: &RadonGeometry,
) -> Result<Array2<f32>> {
    fan.validate()?;
    parallel.validate()?;
    check_shape(
        "fan-beam sinogram",
        &[fan.n_views(), fan.n_det],
        sino.shape(),
    )?;
    let scan = ScanArc::of(fan);
    let (n_views, n_det) = (fan.n_views(), fan.n_det);
    let first = fan.angles[0] as f64;
    let r = fan.source_distance as f64;
    // the sample of the fan ray (β, γ), or None outside the scan or the detector
    let sample = |beta: f64, gamma: f64| -> Option<f64> {
        let kappa = fan.bin_of(fan.det_position_of(gamma));
        if !(0.0..=(n_det - 1) as f64).contains(&kappa) {
            return None;
        }
        let x = (scan.step.signum() * (beta - first)).rem_euclid(TAU) / scan.step.abs();
        let (v0, v1, fv) = if scan.is_full() {
            let v0 = x.floor() as usize % n_views;
            (v0, (v0 + 1) % n_views, x - x.floor())
        } else if x <= (n_views - 1) as f64 {
            let v0 = (x.floor() as usize).min(n_views.saturating_sub(2));
            (v0, (v0 + 1).min(n_views - 1), x - v0 as f64)
        } else {
            return None;
        };
        let k0 = (kappa.floor() as usize).min(n_det.saturating_sub(2));
        let (k1, fk) = ((k0 + 1).min(n_det - 1), kappa - k0 as f64);
        let at = |v: usize| sino[[v, k0]] as f64 * (1.0 - fk) + sino[[v, k1]] as f64 * fk;
        Some(at(v0) * (1.0 - fv) + at(v1) * fv)
    };
    let mut out = Array2::<f32>::zeros((parallel.n_views(), parallel.n_det));
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(parallel.angles.par_iter())
        .for_each(|(mut row, &theta)| {
            for (k, o) in row.iter_mut().enumerate() {
                let t = parallel.det_position(k);
                if t.abs() >= r {
                    continue;
                }
                let gamma = (t / r).asin();
                let theta = theta as f64;
                *o = sample(theta - gamma, gamma)
                    .or_else(|| sample(theta + PI + gamma, -gamma))
                    .unwrap_or(0.0) as f32;
            }
        });
    Ok(out)
}
