//! Ellipses on the image square: area-weighted rasterisation and exact parallel-beam line
//! integrals (Kak & Slaney, "Principles of Computerized Tomographic Imaging", §3.1, eq. 3.8).

use crate::radon::RadonGeometry;
use ndarray::{Array2, Axis};
use rayon::prelude::*;

/// A filled ellipse of constant (additive) intensity in normalised coordinates: [-1, 1]² is
/// the image square, x to the right, y up.
///
/// The ellipse is {(x, y) : (x′/a)² + (y′/b)² ≤ 1} where (x′, y′) are the coordinates of
/// (x − x0, y − y0) rotated by −`phi_deg` (so `phi_deg` rotates the ellipse counter-clockwise,
/// and `a` is the semi-axis along the rotated x axis).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Ellipse {
    /// Intensity added inside the ellipse.
    pub value: f32,
    /// Semi-axis along the (rotated) x axis, in units of the half image width.
    pub a: f32,
    /// Semi-axis along the (rotated) y axis, in units of the half image width.
    pub b: f32,
    /// Centre x, normalised.
    pub x0: f32,
    /// Centre y, normalised.
    pub y0: f32,
    /// Counter-clockwise rotation in degrees.
    pub phi_deg: f32,
}

impl Ellipse {
    /// The x-interval [x₁, x₂] (normalised units) where the horizontal line at height `y`
    /// crosses the ellipse, or `None` if it misses it.
    fn chord_at(&self, y: f64) -> Option<(f64, f64)> {
        let (s, c) = (self.phi_deg as f64).to_radians().sin_cos();
        let (a2, b2) = ((self.a as f64).powi(2), (self.b as f64).powi(2));
        let w = y - self.y0 as f64;
        // (u c + w s)²/a² + (−u s + w c)²/b² ≤ 1 with u = x − x0: a quadratic in u
        let qa = c * c / a2 + s * s / b2;
        let qb = 2.0 * w * c * s * (1.0 / a2 - 1.0 / b2);
        let qc = w * w * (s * s / a2 + c * c / b2) - 1.0;
        let disc = qb * qb - 4.0 * qa * qc;
        if disc < 0.0 {
            return None;
        }
        let root = disc.sqrt();
        let x0 = self.x0 as f64;
        Some((
            x0 + (-qb - root) / (2.0 * qa),
            x0 + (-qb + root) / (2.0 * qa),
        ))
    }

    /// Line integral of this ellipse along the line x cosθ + y sinθ = t, both in pixel units
    /// of an image of `size` pixels (pixel width 1): value · 2AB/s² · √(s² − τ²) with
    /// s² = A² cos²(θ−φ) + B² sin²(θ−φ) and τ = t − (X₀ cosθ + Y₀ sinθ) (Kak & Slaney eq. 3.8
    /// with a shifted, rotated ellipse). With `width` > 0 the result is averaged over
    /// t ∈ [t − width/2, t + width/2] (exact, via the antiderivative of √(s² − τ²)).
    pub fn line_integral(&self, size: usize, theta: f64, t: f64, width: f64) -> f64 {
        let half = size as f64 / 2.0;
        let (aa, bb) = (self.a as f64 * half, self.b as f64 * half);
        let (st, ct) = theta.sin_cos();
        let alpha = theta - (self.phi_deg as f64).to_radians();
        let s2 = (aa * alpha.cos()).powi(2) + (bb * alpha.sin()).powi(2);
        let s = s2.sqrt();
        let tau = t - (self.x0 as f64 * half * ct + self.y0 as f64 * half * st);
        let scale = self.value as f64 * 2.0 * aa * bb / s2;
        if width > 0.0 {
            // F(τ) = ½(τ√(s²−τ²) + s² asin(τ/s)), F(±s) = ±πs²/4
            let antiderivative = |tau: f64| {
                let u = tau.clamp(-s, s);
                0.5 * (u * (s2 - u * u).max(0.0).sqrt() + s2 * (u / s).asin())
            };
            scale * (antiderivative(tau + width / 2.0) - antiderivative(tau - width / 2.0)) / width
        } else if tau.abs() < s {
            scale * (s2 - tau * tau).sqrt()
        } else {
            0.0
        }
    }
}

/// Rasterises a sum of ellipses on a `size`×`size` grid (row 0 at the top) with
/// `supersample`×`supersample` point samples per pixel (their mean, i.e. the area-weighted
/// intensity as `supersample` grows; `supersample` 0 is treated as 1 = centre sampling).
///
/// Sample q of a pixel sits at offset (q + ½)/s − ½ from its centre along each axis; the
/// horizontal coverage of each sub-row is computed from the exact ellipse chord, so the result
/// equals brute-force point sampling on the s× finer grid.
pub fn rasterize(ellipses: &[Ellipse], size: usize, supersample: usize) -> Array2<f32> {
    let ss = supersample.max(1);
    let mut img = Array2::<f32>::zeros((size, size));
    if size == 0 {
        return img;
    }
    let half = size as f64 / 2.0;
    let centre = (size as f64 - 1.0) / 2.0;
    let offsets: Vec<f64> = (0..ss)
        .map(|q| (q as f64 + 0.5) / ss as f64 - 0.5)
        .collect();
    let weight = 1.0 / (ss * ss) as f64;
    img.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(i, mut row)| {
            let mut acc = vec![0.0f64; size];
            for &oy in &offsets {
                let y = (centre - i as f64 + oy) / half;
                for e in ellipses {
                    let Some((x1, x2)) = e.chord_at(y) else {
                        continue;
                    };
                    // pixel columns whose sub-samples may fall in [x1, x2] (pixel coordinates)
                    let (p1, p2) = (x1 * half + centre, x2 * half + centre);
                    let j_lo = (p1 - 0.5).floor().max(0.0) as usize;
                    let j_hi = ((p2 + 0.5).ceil().max(0.0) as usize).min(size - 1);
                    for (j, a) in acc.iter_mut().enumerate().take(j_hi + 1).skip(j_lo) {
                        let inside = offsets
                            .iter()
                            .filter(|&&ox| {
                                let x = (j as f64 - centre + ox) / half;
                                x >= x1 && x <= x2
                            })
                            .count();
                        *a += e.value as f64 * inside as f64 * weight;
                    }
                }
            }
            row.iter_mut().zip(&acc).for_each(|(r, &a)| *r = a as f32);
        });
    img
}

/// How [`analytic_sinogram_with`] samples the detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectorSampling {
    /// The line integral along the ray through each detector-bin centre.
    Point,
    /// The line integral averaged over the bin width (`det_spacing`), exact.
    BinAveraged,
}

/// Exact parallel-beam sinogram [views, n_det] of a sum of ellipses for `geometry`, in the
/// convention of [`crate::radon::Radon`] (pixel units, t_k = (k − (n_det−1)/2)·det_spacing),
/// sampled at the detector-bin centres.
pub fn analytic_sinogram(ellipses: &[Ellipse], geometry: &RadonGeometry) -> Array2<f32> {
    analytic_sinogram_with(ellipses, geometry, DetectorSampling::Point)
}

/// [`analytic_sinogram`] with a choice of detector sampling (point or bin-averaged).
pub fn analytic_sinogram_with(
    ellipses: &[Ellipse],
    geometry: &RadonGeometry,
    sampling: DetectorSampling,
) -> Array2<f32> {
    let width = match sampling {
        DetectorSampling::Point => 0.0,
        DetectorSampling::BinAveraged => geometry.det_spacing as f64,
    };
    let mut sino = Array2::<f32>::zeros((geometry.angles.len(), geometry.n_det));
    sino.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(geometry.angles.par_iter())
        .for_each(|(mut row, &theta)| {
            for (k, v) in row.iter_mut().enumerate() {
                let t = geometry.det_position(k);
                let p: f64 = ellipses
                    .iter()
                    .map(|e| e.line_integral(geometry.size, theta as f64, t, width))
                    .sum();
                *v = p as f32;
            }
        });
    sino
}
