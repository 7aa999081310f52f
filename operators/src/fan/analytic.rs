//! Exact fan-beam sinograms of ellipse phantoms, for tests and simulations.

use super::geometry::FanGeometry;
use crate::phantom::ellipse::Ellipse;
use ndarray::{Array2, Axis};
use rayon::prelude::*;

/// Exact fan-beam sinogram [views, K] of a sum of ellipses for `geometry`: the line integral
/// along the ray through each bin centre, which is the parallel-beam ray θ = β + γ,
/// t = R sin γ (Kak & Slaney §3.4; [`Ellipse::line_integral`], eq. 3.8), in pixel units.
pub fn analytic_fan_sinogram(ellipses: &[Ellipse], geometry: &FanGeometry) -> Array2<f32> {
    let r = geometry.source_distance as f64;
    let gammas: Vec<f64> = (0..geometry.n_det)
        .map(|k| geometry.fan_angle(geometry.det_position(k)))
        .collect();
    let mut sino = Array2::<f32>::zeros((geometry.n_views(), geometry.n_det));
    sino.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(geometry.angles.par_iter())
        .for_each(|(mut row, &beta)| {
            for (v, &gamma) in row.iter_mut().zip(&gammas) {
                let (theta, t) = (beta as f64 + gamma, r * gamma.sin());
                let p: f64 = ellipses
                    .iter()
                    .map(|e| e.line_integral(geometry.size, theta, t, 0.0))
                    .sum();
                *v = p as f32;
            }
        });
    sino
}
