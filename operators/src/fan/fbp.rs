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
use std::f64::consts::SQRT_2;

/// Zero samples added at each end of a filtered view, so that pixels whose rays miss the
/// detector interpolate zeros.
const MARGIN: usize = 2;
/// Image rows back-projected together, so that each filtered view is read from memory once
/// per block (it then stays in the L1 cache for the block's rows) instead of once per row.
const ROW_BLOCK: usize = 8;

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

/// The grid, uniform in t = tan γ = l/d (the pixel's offset across the central ray over its
/// distance along it), on which [`backproject_weighted`] reads the filtered views: sample m at
/// t = (m − origin)/slope, `len` samples.
struct TanGrid {
    slope: f64,
    origin: f64,
    len: usize,
}

/// Padded fine index of fan angle γ in a filtered view with [`MARGIN`] zeros in front:
/// (u(γ)/Δ + (K−1)/2 − o)·up + MARGIN, u(γ) = [`FanGeometry::det_position_of`].
fn fine_index(g: &FanGeometry, gamma: f64) -> f64 {
    g.bin_of(g.det_position_of(gamma)) * FBP_UPSAMPLE as f64 + MARGIN as f64
}

/// The back-projection grid of `g` for filtered views of `stride` padded fine samples. A flat
/// detector samples t uniformly already (u = D t): its own fine grid. An equiangular one
/// samples γ: the grid spans the views' fan angles (within the image's, |γ| ≤ asin(N/(√2 R)))
/// with the fine step at the centre, dt = dγ, capped at 4·`stride` samples for very wide fans.
fn tan_grid(g: &FanGeometry, stride: usize) -> TanGrid {
    let fine = TanGrid {
        slope: g.detector_distance as f64 * FBP_UPSAMPLE as f64 / g.det_spacing as f64,
        origin: fine_index(g, 0.0),
        len: stride,
    };
    if g.detector == DetectorKind::Flat {
        return fine;
    }
    let gamma_of = |m: f64| (m - fine.origin) / fine.slope;
    let gamma_img = (g.size as f64 / (SQRT_2 * g.source_distance as f64))
        .min(1.0)
        .asin();
    let t_lo = gamma_of(0.0).max(-gamma_img).tan();
    let t_hi = gamma_of((stride - 1) as f64).min(gamma_img).tan();
    let slope = fine.slope.min(4.0 * stride as f64 / (t_hi - t_lo));
    TanGrid {
        slope,
        origin: MARGIN as f64 - slope * t_lo,
        len: (slope * (t_hi - t_lo)).ceil() as usize + 2 * MARGIN + 1,
    }
}

/// For an equiangular detector, how each sample m of the [`TanGrid`] is read from a padded
/// filtered view: at fine index κ(atan t_m), times cos²γ = 1/(1 + t²) (the factor turning the
/// weight 1/L² into 1/d²); `None` for a flat detector, whose views are on the grid already.
fn resampling(g: &FanGeometry, grid: &TanGrid) -> Option<Vec<(f64, f32)>> {
    (g.detector == DetectorKind::Equiangular).then(|| {
        (0..grid.len)
            .map(|m| {
                let t = (m as f64 - grid.origin) / grid.slope;
                (fine_index(g, t.atan()), (1.0 / (1.0 + t * t)) as f32)
            })
            .collect()
    })
}

/// Linear interpolation of `q` at index x (zero outside [0, len − 1]).
fn interpolate(q: &[f32], x: f64) -> f32 {
    if !(x >= 0.0 && x <= (q.len() - 1) as f64) {
        return 0.0;
    }
    let k = (x as usize).min(q.len() - 2);
    let f = (x - k as f64) as f32;
    q[k] + f * (q[k + 1] - q[k])
}

/// Step 3 of [`fan_fbp`]: Δβ Σ_β W(β, x) q(β, κ(β, x)) with q sampled every 1/[`FBP_UPSAMPLE`]
/// bin, κ the pixel's continuous bin index and W = 1/L² (equiangular) or R²/d² (flat).
///
/// Both detectors take one path: each view is put on a grid uniform in t = l/d ([`tan_grid`];
/// an equiangular view is resampled there once per view and multiplied by cos²γ, so that
/// 1/L² = cos²γ/d²), then every pixel reads it at m = slope·l/d + origin with weight
/// scale/d² ([`backproject_row`]: one reciprocal, no arctangent, and the 8 pixels of a vector
/// usually read 16 consecutive samples, so no gather). Pixel-driven, in blocks of
/// [`ROW_BLOCK`] image rows in parallel with the views in the outer loop of a block.
fn backproject_weighted(g: &FanGeometry, filtered: &Array2<f32>) -> Array2<f32> {
    let n = g.size;
    let width = filtered.ncols();
    let stride = width + 2 * MARGIN;
    let grid = tan_grid(g, stride);
    let map = resampling(g, &grid);
    let len = grid.len;
    let mut samples = vec![0.0f32; g.n_views() * len];
    samples
        .par_chunks_exact_mut(len)
        .zip(filtered.axis_iter(Axis(0)).into_par_iter())
        .for_each(|(view, src)| {
            let mut padded = vec![0.0f32; stride];
            padded[MARGIN..MARGIN + width]
                .iter_mut()
                .zip(src)
                .for_each(|(p, &v)| *p = v);
            match &map {
                None => view[..stride].copy_from_slice(&padded),
                Some(map) => view
                    .iter_mut()
                    .zip(map)
                    .for_each(|(v, &(x, cos2))| *v = cos2 * interpolate(&padded, x)),
            }
        });
    let (r, dbeta) = (g.source_distance as f64, ScanArc::of(g).step.abs());
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
    let (slope, origin, last) = (grid.slope as f32, grid.origin as f32, (grid.len - 2) as f32);
    let mut image = Array2::<f32>::zeros((n, n));
    image
        .axis_chunks_iter_mut(Axis(0), ROW_BLOCK)
        .into_par_iter()
        .enumerate()
        .for_each(|(blk, mut block)| {
            for (&(sx, sy, sb, cb), view) in views.iter().zip(samples.chunks_exact(len)) {
                for (di, mut out) in block.outer_iter_mut().enumerate() {
                    let out = out.as_slice_mut().expect("fresh image rows are contiguous");
                    let y = centre - (blk * ROW_BLOCK + di) as f32;
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
                    backproject_row(out, view, &line);
                }
            }
        });
    image
}
