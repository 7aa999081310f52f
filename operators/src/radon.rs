//! Parallel-beam Radon transform with an exact adjoint.
//!
//! Convention (shared by the whole project): image row 0 at the top, x to the right, y up,
//! pixels of unit width with centres x_j = j − (N−1)/2, y_i = (N−1)/2 − i (rotation centre at
//! the geometric centre of the image); detector bin k at t_k = (k − (n_det−1)/2)·det_spacing;
//! the ray of view θ and bin k is the line x cosθ + y sinθ = t_k; sinograms are [views, n_det]
//! and hold line integrals in pixel units.

use crate::error::{OpError, Result};
use crate::linop::LinearOperator;
use crate::ramp::FilterCache;
use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, Axis, Ix2};
use rayon::prelude::*;

/// Largest image side N accepted by [`RadonGeometry::validate`] (4096² pixels: beyond any
/// clinical CT matrix, 64 MiB per f32 image).
pub const MAX_SIZE: usize = 4096;
/// Most views accepted by [`RadonGeometry::validate`].
pub const MAX_VIEWS: usize = 100_000;
/// Most detector bins accepted by [`RadonGeometry::validate`].
pub const MAX_DETECTORS: usize = 16_384;
/// Most sinogram entries (views × bins) accepted by [`RadonGeometry::validate`] (2²⁷: 512 MiB
/// of f32).
pub const MAX_SINOGRAM: usize = 1 << 27;
/// Accepted detector bin widths, in pixels: the adjoint gathers about 2/spacing bins per pixel
/// and view, and bins far wider than a pixel cannot sample the image.
pub const DET_SPACING_RANGE: (f32, f32) = (0.01, 100.0);

/// Parallel-beam acquisition geometry: image size, view angles and the detector.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RadonGeometry {
    /// Image side N (the image is N×N pixels of unit width).
    pub size: usize,
    /// View angles θ in radians.
    pub angles: Vec<f32>,
    /// Number of detector bins.
    pub n_det: usize,
    /// Detector bin width in pixel units.
    pub det_spacing: f32,
}

impl RadonGeometry {
    /// `n_views` angles k·π/n_views, k = 0..n_views (equispaced over [0, π)), unit detector
    /// spacing.
    pub fn equispaced(size: usize, n_views: usize, n_det: usize) -> Self {
        let angles = (0..n_views)
            .map(|k| (k as f64 * std::f64::consts::PI / n_views as f64) as f32)
            .collect();
        RadonGeometry {
            size,
            angles,
            n_det,
            det_spacing: 1.0,
        }
    }

    /// Explicit view angles in degrees, unit detector spacing.
    pub fn from_degrees(size: usize, degrees: &[f32], n_det: usize) -> Self {
        RadonGeometry {
            size,
            angles: degrees
                .iter()
                .map(|&d| (d as f64).to_radians() as f32)
                .collect(),
            n_det,
            det_spacing: 1.0,
        }
    }

    /// Explicit view angles in radians, unit detector spacing.
    pub fn from_radians(size: usize, angles: Vec<f32>, n_det: usize) -> Self {
        RadonGeometry {
            size,
            angles,
            n_det,
            det_spacing: 1.0,
        }
    }

    /// The same geometry with detector bin width `det_spacing` (pixel units).
    pub fn with_det_spacing(mut self, det_spacing: f32) -> Self {
        self.det_spacing = det_spacing;
        self
    }

    /// The default detector count ⌈√2·N⌉ (363 for N = 256): unit bins covering the image
    /// diagonal, so every pixel projects onto the detector at every angle.
    pub fn default_n_det(size: usize) -> usize {
        (std::f64::consts::SQRT_2 * size as f64).ceil() as usize
    }

    /// Number of views.
    pub fn n_views(&self) -> usize {
        self.angles.len()
    }

    /// Position t_k = (k − (n_det−1)/2)·det_spacing of detector bin k (pixel units).
    pub fn det_position(&self, k: usize) -> f64 {
        (k as f64 - (self.n_det as f64 - 1.0) / 2.0) * self.det_spacing as f64
    }

    /// Checks that the geometry is usable and bounded: 1 ≤ N ≤ [`MAX_SIZE`], 1 to
    /// [`MAX_VIEWS`] finite angles, 1 to [`MAX_DETECTORS`] bins, at most [`MAX_SINOGRAM`]
    /// sinogram entries and a detector spacing in [`DET_SPACING_RANGE`] — so that no geometry
    /// read from a file can request an unbounded allocation or run time.
    pub fn validate(&self) -> Result<()> {
        let param = |name, reason: &str| {
            Err(OpError::Param {
                name,
                reason: reason.to_string(),
            })
        };
        if self.size == 0 {
            return param("size", "the image size must be at least 1");
        }
        if self.size > MAX_SIZE {
            return param(
                "size",
                &format!("the image size {} exceeds {MAX_SIZE}", self.size),
            );
        }
        if self.angles.is_empty() {
            return param("angles", "at least one view angle is required");
        }
        if self.angles.len() > MAX_VIEWS {
            return param(
                "angles",
                &format!("{} views exceed {MAX_VIEWS}", self.angles.len()),
            );
        }
        if self.angles.iter().any(|a| !a.is_finite()) {
            return param("angles", "view angles must be finite");
        }
        if self.n_det == 0 {
            return param("n_det", "at least one detector bin is required");
        }
        if self.n_det > MAX_DETECTORS {
            return param(
                "n_det",
                &format!("{} detector bins exceed {MAX_DETECTORS}", self.n_det),
            );
        }
        if self.n_det * self.angles.len() > MAX_SINOGRAM {
            return param(
                "n_det",
                &format!(
                    "{} views × {} bins exceed {MAX_SINOGRAM} sinogram entries",
                    self.angles.len(),
                    self.n_det
                ),
            );
        }
        let (lo, hi) = DET_SPACING_RANGE;
        if !(self.det_spacing.is_finite() && (lo..=hi).contains(&self.det_spacing)) {
            return param(
                "det_spacing",
                &format!("must lie in [{lo}, {hi}] pixels, got {}", self.det_spacing),
            );
        }
        Ok(())
    }
}

/// Per-view constants of the projector (computed once per operator).
#[derive(Debug, Clone, Copy)]
struct ViewTrig {
    cos: f32,
    sin: f32,
    /// max(|cos θ|, |sin θ|): the Joseph step normalisation.
    m: f32,
}

/// The parallel-beam Radon transform R: ℝ^{N×N} → ℝ^{views×n_det} of a pixel image, as
/// Joseph's ray-driven projector (P. M. Joseph, "An improved algorithm for reprojecting rays
/// through pixel images", IEEE TMI 1982) with its exact transpose as the adjoint.
///
/// For view θ let m = max(|cos θ|, |sin θ|). The ray x cosθ + y sinθ = t_k is stepped one
/// pixel row at a time when |cos θ| ≥ |sin θ| (one column otherwise); at each step the image
/// is linearly interpolated along the row (column) and the sum is multiplied by the step
/// length 1/m. Written per pixel, the matrix entry is
///
/// R[(θ,k), (i,j)] = (1/m) · max(0, 1 − |t_k − t_ij| / m),  t_ij = x_j cosθ + y_i sinθ,
///
/// a triangle of half-width m around the pixel's projection. The forward pass evaluates it ray
/// by ray (gathering two pixels per row), the adjoint pixel by pixel (gathering ⌈2m/Δ⌉ bins),
/// so Rᵀ is the exact transpose without ever storing the matrix. Views run in parallel in the
/// forward pass, image rows in the adjoint.
#[derive(Debug, Clone)]
pub struct Radon {
    geometry: RadonGeometry,
    trig: Vec<ViewTrig>,
    /// The ramp filters of [`crate::fbp::fbp`], planned on first use.
    pub(crate) filters: FilterCache,
}

impl Radon {
    /// Builds the operator for `geometry` (validated, see [`RadonGeometry::validate`]).
    pub fn new(geometry: RadonGeometry) -> Result<Radon> {
        geometry.validate()?;
        let trig = geometry
            .angles
            .iter()
            .map(|&a| {
                let (s, c) = (a as f64).sin_cos();
                ViewTrig {
                    cos: c as f32,
                    sin: s as f32,
                    m: c.abs().max(s.abs()) as f32,
                }
            })
            .collect();
        Ok(Radon {
            geometry,
            trig,
            filters: FilterCache::default(),
        })
    }

    /// The acquisition geometry.
    pub fn geometry(&self) -> &RadonGeometry {
        &self.geometry
    }

    /// R x for an N×N image (panics on a wrong shape; see [`crate::linop::check_shape`]).
    pub fn project(&self, image: &ArrayView2<f32>) -> Array2<f32> {
        let g = &self.geometry;
        let n = g.size;
        assert_eq!(image.dim(), (n, n), "Radon::project: image shape");
        // rows and columns of the image, each padded with one zero in front and two behind so
        // that the interpolation index trunc(u) and trunc(u)+1 stay in range for u ∈ [0, N+1)
        let stride = n + 3;
        let mut rows = vec![0.0f32; n * stride];
        let mut cols = vec![0.0f32; n * stride];
        for ((i, j), &v) in image.indexed_iter() {
            rows[i * stride + j + 1] = v;
            cols[j * stride + i + 1] = v;
        }
        let centre = (n as f32 - 1.0) / 2.0;
        let det_centre = (g.n_det as f32 - 1.0) / 2.0;
        let d = g.det_spacing;
        let upper = n as f32 + 1.0;
        let mut sino = Array2::<f32>::zeros((g.n_views(), g.n_det));
        sino.axis_iter_mut(Axis(0))
            .into_par_iter()
            .zip(self.trig.par_iter())
            .for_each(|(mut out, vt)| {
                let out = out
                    .as_slice_mut()
                    .expect("freshly allocated sinogram rows are contiguous");
                // position along line l (padded index) of ray k: u = α + β w_l + b k, where
                // w_l is the line's y (row mode) or x (column mode) pixel coordinate
                let (c, s) = (vt.cos, vt.sin);
                let row_mode = c.abs() >= s.abs();
                let (lines, b, alpha, beta) = if row_mode {
                    (&rows, d / c, -det_centre * d / c + centre + 1.0, -s / c)
                } else {
                    (&cols, -d / s, centre + 1.0 + det_centre * d / s, c / s)
                };
                for l in 0..n {
                    let w = if row_mode {
                        centre - l as f32
                    } else {
                        l as f32 - centre
                    };
                    let a = alpha + beta * w;
                    let line = &lines[l * stride..(l + 1) * stride];
                    let valid = |k: usize| {
                        let u = a + b * k as f32;
                        (0.0..upper).contains(&u)
                    };
                    let Some((k0, k1)) = valid_range(a, b, upper, g.n_det, valid) else {
                        continue;
                    };
                    let (seg, u0) = (&mut out[k0..k1], a + b * k0 as f32);
                    #[cfg(target_arch = "x86_64")]
                    if avx2::available() {
                        // SAFETY: AVX2 and FMA were detected at run time.
                        unsafe { avx2::joseph_line(seg, line, u0, b) };
                        continue;
                    }
                    joseph_line(seg, line, u0, b);
                }
                let inv_m = 1.0 / vt.m;
                out.iter_mut().for_each(|o| *o *= inv_m);
            });
        sino
    }

    /// Rᵀ y for a [views, n_det] sinogram: the exact transpose of [`Radon::project`].
    pub fn backproject(&self, sino: &ArrayView2<f32>) -> Array2<f32> {
        let d = self.geometry.det_spacing;
        let kernels: Vec<BackprojectionKernel> = self
            .trig
            .iter()
            .map(|vt| BackprojectionKernel::triangle(vt.m / d, 1.0 / vt.m))
            .collect();
        self.backproject_with(sino, &kernels)
    }

    /// Pixel-driven back-projection b(x_ij) = Σ_θ Σ_k y[θ,k] · scale_θ · max(0, 1 − |k − p_ij|/h_θ)
    /// with p_ij = t_ij/Δ + (n_det−1)/2 the pixel's continuous bin coordinate, one kernel per
    /// view. With h = m/Δ, scale = 1/m it is Rᵀ; with h = 1, scale = 1 it is the linear
    /// interpolation back-projector of filtered back-projection.
    pub(crate) fn backproject_with(
        &self,
        sino: &ArrayView2<f32>,
        kernels: &[BackprojectionKernel],
    ) -> Array2<f32> {
        let g = &self.geometry;
        let n = g.size;
        assert_eq!(
            sino.dim(),
            (g.n_views(), g.n_det),
            "Radon back-projection: sinogram shape"
        );
        debug_assert_eq!(kernels.len(), g.n_views());
        let d = g.det_spacing;
        let centre = (n as f32 - 1.0) / 2.0;
        let det_centre = (g.n_det as f32 - 1.0) / 2.0;
        // zero margin on both sides of every view so that all taps of every pixel are in range
        let reach = centre * std::f32::consts::SQRT_2 / d;
        let (h_max, taps_max) = kernels
            .iter()
            .fold((0.0f32, 0usize), |(h, t), k| (h.max(k.h), t.max(k.taps)));
        let margin = ((reach - det_centre).max(0.0) + h_max).ceil() as usize + taps_max + 2;
        let stride = g.n_det + 2 * margin;
        let mut padded = vec![0.0f32; g.n_views() * stride];
        for (v, row) in sino.outer_iter().enumerate() {
            for (k, &y) in row.iter().enumerate() {
                padded[v * stride + margin + k] = y;
            }
        }
        let origin = det_centre + margin as f32;
        let mut image = Array2::<f32>::zeros((n, n));
        image
            .axis_iter_mut(Axis(0))
            .into_par_iter()
            .enumerate()
            .for_each(|(i, mut out)| {
                let out = out
                    .as_slice_mut()
                    .expect("freshly allocated image rows are contiguous");
                let y = centre - i as f32;
                for ((vt, kern), row) in self
                    .trig
                    .iter()
                    .zip(kernels)
                    .zip(padded.chunks_exact(stride))
                {
                    // p_ij = (x_j cosθ + y_i sinθ)/Δ + centre, x_j = j − centre
                    let step = vt.cos / d;
                    let p0 = (y * vt.sin - centre * vt.cos) / d + origin;
                    backproject_row(out, row, p0, step, kern);
                }
            });
        image
    }
}

/// A triangle interpolation kernel scale·max(0, 1 − |u|/h) in detector-bin units, touching at
/// most `taps` = ⌈2h⌉ bins.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BackprojectionKernel {
    h: f32,
    inv_h: f32,
    scale: f32,
    taps: usize,
}

impl BackprojectionKernel {
    /// The kernel of half-width `h` bins and height `scale`.
    pub(crate) fn triangle(h: f32, scale: f32) -> Self {
        BackprojectionKernel {
            h,
            inv_h: 1.0 / h,
            scale,
            taps: ((2.0 * h).ceil() as usize).max(1),
        }
    }
}

/// out[j] += Σ_q row[k_q] · scale · max(0, 1 − |k_q − p_j|/h) over the bins k_q within h of
/// p_j = p0 + j·step (p_j ≥ h thanks to the caller's margin, so truncation is floor).
fn backproject_row(out: &mut [f32], row: &[f32], p0: f32, step: f32, kern: &BackprojectionKernel) {
    if kern.taps <= 2 {
        // h ≤ 1: only the bins ⌊p⌋ and ⌊p⌋+1 can be within h of p
        #[cfg(target_arch = "x86_64")]
        if avx2::available() {
            // SAFETY: AVX2 and FMA were detected at run time.
            unsafe { avx2::two_tap_row(out, row, p0, step, kern.inv_h, kern.scale) };
            return;
        }
        two_tap_row(out, row, p0, step, kern.inv_h, kern.scale);
    } else {
        let last = row.len() - kern.taps;
        for (j, o) in out.iter_mut().enumerate() {
            let p = p0 + step * j as f32;
            let k0 = (((p - kern.h) as i32 + 1) as usize).min(last);
            let acc: f32 = row[k0..k0 + kern.taps]
                .iter()
                .enumerate()
                .map(|(q, &r)| r * (1.0 - ((k0 + q) as f32 - p).abs() * kern.inv_h).max(0.0))
                .sum();
            *o += acc * kern.scale;
        }
    }
}

/// The two-tap case of [`backproject_row`] (h ≤ 1), written without data-dependent control
/// flow so that the compiler can vectorise it.
#[inline(always)]
fn two_tap_row(out: &mut [f32], row: &[f32], p0: f32, step: f32, inv_h: f32, scale: f32) {
    let last = row.len() - 2;
    for (j, o) in out.iter_mut().enumerate() {
        let p = p0 + step * j as f32;
        let k = (p as i32 as usize).min(last);
        let f = p - k as f32;
        let w0 = (1.0 - f * inv_h).max(0.0);
        let w1 = (1.0 - (1.0 - f) * inv_h).max(0.0);
        *o += (w0 * row[k] + w1 * row[k + 1]) * scale;
    }
}

/// out[q] += the linear interpolation of `line` at u_q = u0 + q·b (all u_q in [0, len − 1)).
#[inline(always)]
fn joseph_line(out: &mut [f32], line: &[f32], u0: f32, b: f32) {
    let last = line.len() - 2;
    for (q, o) in out.iter_mut().enumerate() {
        let u = u0 + b * q as f32;
        let j = (u as i32 as usize).min(last);
        let f = u - j as f32;
        let (v0, v1) = (line[j], line[j + 1]);
        *o += v0 + f * (v1 - v0);
    }
}

/// AVX2 versions of the two inner loops (8 lanes, hardware gathers); same arithmetic as the
/// portable loops, which handle the remainders and other CPUs.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// Whether the CPU has AVX2 and FMA (cached by the standard library).
    #[inline]
    pub(super) fn available() -> bool {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }

    /// [`super::two_tap_row`] on 8 pixels at a time.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA; `row.len()` < 2³¹; p0 + j·step ≥ 0 for all j.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn two_tap_row(
        out: &mut [f32],
        row: &[f32],
        p0: f32,
        step: f32,
        inv_h: f32,
        scale: f32,
    ) {
        let last = _mm256_set1_epi32(row.len() as i32 - 2);
        let lanes = _mm256_setr_ps(0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0);
        let (one, zero) = (_mm256_set1_ps(1.0), _mm256_setzero_ps());
        let (vstep, vp0) = (_mm256_set1_ps(step), _mm256_set1_ps(p0));
        let (vinv_h, vscale) = (_mm256_set1_ps(inv_h), _mm256_set1_ps(scale));
        let mut chunks = out.chunks_exact_mut(8);
        let mut j = 0usize;
        for o in &mut chunks {
            let jf = _mm256_add_ps(_mm256_set1_ps(j as f32), lanes);
            let p = _mm256_fmadd_ps(vstep, jf, vp0);
            let k = _mm256_min_epi32(_mm256_cvttps_epi32(p), last);
            let f = _mm256_sub_ps(p, _mm256_cvtepi32_ps(k));
            // SAFETY: 0 ≤ k ≤ row.len() − 2, so k and k + 1 index `row`.
            let r0 = _mm256_i32gather_ps::<4>(row.as_ptr(), k);
            let r1 = _mm256_i32gather_ps::<4>(row.as_ptr().add(1), k);
            let w0 = _mm256_max_ps(_mm256_fnmadd_ps(f, vinv_h, one), zero);
            let w1 = _mm256_max_ps(_mm256_fnmadd_ps(_mm256_sub_ps(one, f), vinv_h, one), zero);
            let v = _mm256_mul_ps(_mm256_fmadd_ps(w0, r0, _mm256_mul_ps(w1, r1)), vscale);
            let acc = _mm256_add_ps(_mm256_loadu_ps(o.as_ptr()), v);
            _mm256_storeu_ps(o.as_mut_ptr(), acc);
            j += 8;
        }
        super::two_tap_row(
            chunks.into_remainder(),
            row,
            p0 + step * j as f32,
            step,
            inv_h,
            scale,
        );
    }

    /// [`super::joseph_line`] on 8 rays at a time.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA; `line.len()` < 2³¹; u0 + q·b ≥ 0 for all q.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn joseph_line(out: &mut [f32], line: &[f32], u0: f32, b: f32) {
        let last = _mm256_set1_epi32(line.len() as i32 - 2);
        let lanes = _mm256_setr_ps(0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0);
        let (vb, vu0) = (_mm256_set1_ps(b), _mm256_set1_ps(u0));
        let zero = _mm256_setzero_ps();
        let mut chunks = out.chunks_exact_mut(8);
        let mut q = 0usize;
        for o in &mut chunks {
            let qf = _mm256_add_ps(_mm256_set1_ps(q as f32), lanes);
            let u = _mm256_max_ps(_mm256_fmadd_ps(vb, qf, vu0), zero);
            let j = _mm256_min_epi32(_mm256_cvttps_epi32(u), last);
            let f = _mm256_sub_ps(u, _mm256_cvtepi32_ps(j));
            // SAFETY: 0 ≤ j ≤ line.len() − 2, so j and j + 1 index `line`.
            let v0 = _mm256_i32gather_ps::<4>(line.as_ptr(), j);
            let v1 = _mm256_i32gather_ps::<4>(line.as_ptr().add(1), j);
            let v = _mm256_fmadd_ps(f, _mm256_sub_ps(v1, v0), v0);
            _mm256_storeu_ps(
                o.as_mut_ptr(),
                _mm256_add_ps(_mm256_loadu_ps(o.as_ptr()), v),
            );
            q += 8;
        }
        super::joseph_line(chunks.into_remainder(), line, u0 + b * q as f32, b);
    }
}

/// The contiguous range [k0, k1) of detector bins whose rays hit the padded line, i.e. with
/// u(k) = a + b k in [0, upper); `valid` re-evaluates the exact expression used by the caller
/// so that rounding can never produce an out-of-range index.
fn valid_range(
    a: f32,
    b: f32,
    upper: f32,
    n_det: usize,
    valid: impl Fn(usize) -> bool,
) -> Option<(usize, usize)> {
    let (e0, e1) = ((0.0 - a) / b, (upper - a) / b);
    let (lo, hi) = (e0.min(e1), e0.max(e1));
    let mut k0 = (lo.floor() - 1.0).clamp(0.0, n_det as f32) as usize;
    let mut k1 = (hi.ceil() + 2.0).clamp(0.0, n_det as f32) as usize;
    while k0 < k1 && !valid(k0) {
        k0 += 1;
    }
    while k1 > k0 && !valid(k1 - 1) {
        k1 -= 1;
    }
    (k0 < k1).then_some((k0, k1))
}

impl LinearOperator for Radon {
    type In = f32;
    type Out = f32;

    fn domain_shape(&self) -> Vec<usize> {
        vec![self.geometry.size, self.geometry.size]
    }

    fn range_shape(&self) -> Vec<usize> {
        vec![self.geometry.n_views(), self.geometry.n_det]
    }

    fn forward(&self, x: &ArrayViewD<f32>) -> ArrayD<f32> {
        let x = x
            .view()
            .into_dimensionality::<Ix2>()
            .expect("Radon::forward expects a 2-D image");
        self.project(&x).into_dyn()
    }

    fn adjoint(&self, y: &ArrayViewD<f32>) -> ArrayD<f32> {
        let y = y
            .view()
            .into_dimensionality::<Ix2>()
            .expect("Radon::adjoint expects a 2-D sinogram");
        self.backproject(&y).into_dyn()
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// The AVX2 loops compute the same values as the portable ones (including remainders).
    #[test]
    fn avx2_loops_match_portable_loops() {
        if !avx2::available() {
            return;
        }
        let row: Vec<f32> = (0..101).map(|i| ((i * 37) % 23) as f32 - 11.0).collect();
        for (len, p0, step, inv_h, scale) in [
            (37usize, 3.3f32, 0.71f32, 1.0f32, 0.5f32),
            (64, 60.2, -0.83, 1.3, 1.2),
        ] {
            let mut a = vec![1.0f32; len];
            let mut b = a.clone();
            two_tap_row(&mut a, &row, p0, step, inv_h, scale);
            // SAFETY: AVX2/FMA checked above; all positions are ≥ 0.
            unsafe { avx2::two_tap_row(&mut b, &row, p0, step, inv_h, scale) };
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() < 1e-4 * (1.0 + x.abs()), "{x} vs {y}");
            }
            let mut a = vec![0.5f32; len];
            let mut b = a.clone();
            joseph_line(&mut a, &row, p0, step.abs());
            // SAFETY: as above.
            unsafe { avx2::joseph_line(&mut b, &row, p0, step.abs()) };
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() < 1e-4 * (1.0 + x.abs()), "{x} vs {y}");
            }
        }
    }
}
