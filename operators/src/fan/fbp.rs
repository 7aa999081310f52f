//! Fan-beam filtered back-projection (Kak & Slaney, "Principles of Computerized Tomographic
//! Imaging", §3.4.1 equiangular and §3.4.2 equispaced detectors; short scans §3.4.3).

use super::geometry::{DetectorKind, FanGeometry};
use super::kernels::{backproject_row, RowLine};
use super::parker::{redundancy_weights, ScanArc};
use super::projector::FanBeam;
use crate::fbp::{Filter, FBP_UPSAMPLE};
use crate::ramp::RampFilter;
use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;

/// Zero samples added at each end of a filtered view, so that pixels whose rays miss the
/// detector interpolate zeros.
const MARGIN: usize = 2;

/// Fan-beam filtered back-projection of `sino` ([views, K], geometry of `op`) with the
/// `filter`-windowed ramp:
///
/// 1. weight: p₁(β, γ) = p(β, γ) · w(β, γ) · R cos γ (equiangular) or cos γ = R/√(R² + s²)
///    (flat, s = uR/D on the detector scaled to the isocentre), with w = ½ for a full scan
///    and Parker's weights for a short scan ([`super::parker::redundancy_weights`]);
/// 2. filter along the detector: q = Δγ·(p₁ ∗ (γ/sin γ)² h) (equiangular, Kak & Slaney's
///    g = ½(γ/sin γ)² h with the ½ in w) or q = Δs·(p₁ ∗ h) (flat), h the band-limited ramp,
///    planned once per operator and filter ([`RampFilter`]);
/// 3. back-project with the distance weight: f(x) = Δβ Σ_β q(β, γ′(x)) / L² (equiangular,
///    L = |x − S(β)|) or Δβ Σ_β q(β, s′(x)) / U² (flat, U = d/R with d the distance from the
///    source along the central ray), interpolating the filtered view (resampled
///    [`FBP_UPSAMPLE`]× finer) linearly at the pixel's detector position.
///
/// Δβ is the mean step of the (assumed equispaced) source angles. Reproduces the image up to
/// discretisation for a full or short scan; panics if `sino` is not [views, K] (validate user
/// data with [`crate::linop::check_shape`] first).
pub fn fan_fbp(op: &FanBeam, sino: &ArrayView2<f32>, filter: Filter) -> Array2<f32> {
    let g = op.geometry();
    assert_eq!(
        sino.dim(),
        (g.n_views(), g.n_det),
        "fan_fbp: sinogram shape"
    );
    let (r, d) = (g.source_distance as f64, g.detector_distance as f64);
    let pre: Vec<f32> = (0..g.n_det)
        .map(|k| {
            let cos = g.fan_angle(g.det_position(k)).cos();
            match g.detector {
                DetectorKind::Equiangular => (r * cos) as f32,
                DetectorKind::Flat => cos as f32,
            }
        })
        .collect();
    let mut weighted = redundancy_weights(g);
    weighted.zip_mut_with(sino, |w, &p| *w *= p);
    weighted
        .axis_iter_mut(Axis(0))
        .for_each(|mut row| row.iter_mut().zip(&pre).for_each(|(v, &c)| *v *= c));
    let ramp = op.filters.get(filter, || match g.detector {
        DetectorKind::Equiangular => RampFilter::equiangular(
            filter,
            g.n_det,
            (g.det_spacing as f64 / d) as f32,
            FBP_UPSAMPLE,
        ),
        DetectorKind::Flat => RampFilter::new(
            filter,
            g.n_det,
            (g.det_spacing as f64 * r / d) as f32,
            FBP_UPSAMPLE,
        ),
    });
    let filtered = ramp.apply(&weighted.view());
    backproject_weighted(g, &filtered)
}

/// Step 3 of [`fan_fbp`]: Δβ Σ_β W(β, x) q(β, κ(β, x)) with q sampled every 1/[`FBP_UPSAMPLE`]
/// bin, κ the pixel's continuous bin index and W = 1/L² (equiangular) or R²/d² (flat).
fn backproject_weighted(g: &FanGeometry, filtered: &Array2<f32>) -> Array2<f32> {
    let n = g.size;
    let up = FBP_UPSAMPLE as f64;
    let width = filtered.ncols();
    let stride = width + 2 * MARGIN;
    let mut padded = vec![0.0f32; g.n_views() * stride];
    for (row, src) in padded.chunks_exact_mut(stride).zip(filtered.outer_iter()) {
        row[MARGIN..MARGIN + width]
            .iter_mut()
            .zip(src)
            .for_each(|(p, &v)| *p = v);
    }
    let (r, d) = (g.source_distance as f64, g.detector_distance as f64);
    let dbeta = ScanArc::of(g).step.abs();
    // padded fine index m = (u/Δ + (K−1)/2 − o)·up + MARGIN with u = D·t (flat) or D·atan t
    let slope = (d * up / g.det_spacing as f64) as f32;
    let origin = (g.bin_of(0.0) * up + MARGIN as f64) as f32;
    let scale = match g.detector {
        DetectorKind::Equiangular => dbeta,
        DetectorKind::Flat => dbeta * r * r,
    } as f32;
    let views: Vec<(f32, f32, f32, f32)> = g
        .angles
        .iter()
        .map(|&beta| {
            let (s, c) = (beta as f64).sin_cos();
            ((-r * s) as f32, (r * c) as f32, s as f32, c as f32)
        })
        .collect();
    let centre = (n as f32 - 1.0) / 2.0;
    let last = (stride - 2) as f32;
    let mut image = Array2::<f32>::zeros((n, n));
    image
        .axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(i, mut out)| {
            let out = out.as_slice_mut().expect("fresh image rows are contiguous");
            let y = centre - i as f32;
            for (&(sx, sy, sb, cb), row) in views.iter().zip(padded.chunks_exact(stride)) {
                // r = x − S; d = r·(sin β, −cos β), l = r·(cos β, sin β), linear in j
                let (rx0, ry) = (-centre - sx, y - sy);
                let line = RowLine {
                    d0: rx0 * sb - ry * cb,
                    l0: rx0 * cb + ry * sb,
                    dd: sb,
                    dl: cb,
                    slope,
                    origin,
                    scale,
                    last,
                };
                match g.detector {
                    DetectorKind::Equiangular => backproject_row::<true>(out, row, &line),
                    DetectorKind::Flat => backproject_row::<false>(out, row, &line),
                }
            }
        });
    image
}
