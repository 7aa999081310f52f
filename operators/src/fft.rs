//! The unitary centred 2-D discrete Fourier transform of single-coil MRI (thesis §8.2, "T is the
//! Fourier transform"), and an adapter that lets complex-domain transforms act on real images.
//!
//! Convention (fastMRI, score_inverse_problems `get_kspace`): for an image x of shape [H, W],
//!
//! F x = fftshift(fft2(ifftshift(x))) / √(H W),  F⁻¹ k = fftshift(ifft2(ifftshift(k))) · √(H W)
//!
//! with numpy's unnormalised `fft2` and 1/(HW)-normalised `ifft2` (equivalently `norm="ortho"` in
//! both directions), so F is unitary (Fᴴ = F⁻¹, ‖F x‖ = ‖x‖).
//! `ifftshift` moves index ⌊n/2⌋ to 0 before the transform and `fftshift` moves frequency 0 to
//! index ⌊n/2⌋ after it, so the image centre pixel (⌊H/2⌋, ⌊W/2⌋) is the phase origin and DC lands
//! at k-space index (⌊H/2⌋, ⌊W/2⌋) — for odd sizes too.
//!
//! Implementation: one rustfft plan per axis and direction, made once at construction. The row
//! pass copies each source row with both input shifts applied, transforms a block of rows in one
//! call and rotates them into fftshift order; the column pass gathers strips of a few columns into
//! a contiguous scratch buffer, transforms them, and scatters them back with the row shift and the
//! 1/√(HW) scale. Both passes run on rayon.

use crate::linop::{LinearOperator, Transform};
use crate::scalar::Scalar;
use crate::{OpError, Result};
use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, ArrayViewMut2, Axis, Ix2};
use num_complex::Complex32;
use rayon::prelude::*;
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;

/// Width (in columns) of the strips of the column pass: 8 × 8 bytes = one cache line per row.
const STRIP: usize = 8;
/// Rows handed to one rayon task in the row pass.
const ROW_BLOCK: usize = 16;

/// Direction of a transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// k = F x.
    Forward,
    /// x = F⁻¹ k = Fᴴ k.
    Inverse,
}

/// Plans of one axis (forward and inverse 1-D FFTs of its length).
#[derive(Clone)]
struct AxisPlans {
    forward: Arc<dyn Fft<f32>>,
    inverse: Arc<dyn Fft<f32>>,
}

impl AxisPlans {
    fn new(planner: &mut FftPlanner<f32>, len: usize) -> Self {
        Self {
            forward: planner.plan_fft_forward(len),
            inverse: planner.plan_fft_inverse(len),
        }
    }

    fn get(&self, direction: Direction) -> &Arc<dyn Fft<f32>> {
        match direction {
            Direction::Forward => &self.forward,
            Direction::Inverse => &self.inverse,
        }
    }
}

/// The unitary centred 2-D FFT on [H, W] complex arrays (see the module docs for the
/// convention). Implements [`LinearOperator`] (adjoint = inverse, since F is unitary) and
/// [`Transform`] (exact inverse).
#[derive(Clone)]
pub struct Fft2 {
    h: usize,
    w: usize,
    rows: AxisPlans,
    cols: AxisPlans,
    scale: f32,
}

impl std::fmt::Debug for Fft2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fft2")
            .field("h", &self.h)
            .field("w", &self.w)
            .finish()
    }
}

impl Fft2 {
    /// Plans the transform for images of shape [h, w] (both ≥ 1).
    pub fn new(h: usize, w: usize) -> Result<Self> {
        if h == 0 || w == 0 {
            return Err(OpError::Param {
                name: "shape",
                reason: format!("FFT size must be positive, got [{h}, {w}]"),
            });
        }
        let mut planner = FftPlanner::new();
        Ok(Self {
            h,
            w,
            rows: AxisPlans::new(&mut planner, w),
            cols: AxisPlans::new(&mut planner, h),
            scale: 1.0 / ((h * w) as f32).sqrt(),
        })
    }

    /// Image/k-space shape [H, W].
    pub fn shape(&self) -> [usize; 2] {
        [self.h, self.w]
    }

    /// F x (or F⁻¹ x) into a new array. Panics if `x` is not [H, W].
    pub fn apply(&self, x: &ArrayView2<Complex32>, direction: Direction) -> Array2<Complex32> {
        let mut out = Array2::from_elem((self.h, self.w), Complex32::zero());
        self.apply_into(x, &mut out.view_mut(), direction);
        out
    }

    /// F x (or F⁻¹ x) written into `out` without allocating a result. Panics unless both are
    /// [H, W] and `out` is in standard (row-major contiguous) layout.
    pub fn apply_into(
        &self,
        x: &ArrayView2<Complex32>,
        out: &mut ArrayViewMut2<Complex32>,
        direction: Direction,
    ) {
        let (h, w) = (self.h, self.w);
        assert_eq!(x.dim(), (h, w), "Fft2 input shape");
        assert_eq!(out.dim(), (h, w), "Fft2 output shape");
        let dst = out
            .as_slice_mut()
            .expect("Fft2 output must be in standard layout");
        let (sh, sw) = (h / 2, w / 2);

        // Row pass: ifftshift on both axes while copying, 1-D FFTs along rows, fftshift along
        // the row axis by rotation.
        let row_fft = self.rows.get(direction);
        dst.par_chunks_mut(w * ROW_BLOCK).enumerate().for_each_init(
            || vec![Complex32::zero(); row_fft.get_inplace_scratch_len()],
            |scratch, (block, chunk)| {
                for (i, row) in chunk.chunks_exact_mut(w).enumerate() {
                    let r = block * ROW_BLOCK + i;
                    let src = x.row((r + sh) % h);
                    match src.as_slice() {
                        Some(s) => {
                            row[..w - sw].copy_from_slice(&s[sw..]);
                            row[w - sw..].copy_from_slice(&s[..sw]);
                        }
                        None => {
                            for (c, v) in row.iter_mut().enumerate() {
                                *v = src[(c + sw) % w];
                            }
                        }
                    }
                }
                row_fft.process_with_scratch(chunk, scratch);
                for row in chunk.chunks_exact_mut(w) {
                    row.rotate_right(sw);
                }
            },
        );

        // Column pass on strips of STRIP columns: gather into contiguous columns, FFT, then
        // scatter back with fftshift along the column axis and the unitary scale.
        let col_fft = self.cols.get(direction);
        let scale = self.scale;
        let mut view = ArrayViewMut2::from_shape((h, w), dst).expect("shape checked above");
        view.axis_chunks_iter_mut(Axis(1), STRIP)
            .into_par_iter()
            .for_each_init(
                || {
                    (
                        vec![Complex32::zero(); h * STRIP],
                        vec![Complex32::zero(); col_fft.get_inplace_scratch_len()],
                    )
                },
                |(buf, scratch), mut strip| {
                    let k = strip.ncols();
                    let buf = &mut buf[..h * k];
                    for (i, row) in strip.rows().into_iter().enumerate() {
                        for (j, &v) in row.iter().enumerate() {
                            buf[j * h + i] = v;
                        }
                    }
                    col_fft.process_with_scratch(buf, scratch);
                    for (i, mut row) in strip.rows_mut().into_iter().enumerate() {
                        let src = (i + h - sh) % h;
                        for (j, v) in row.iter_mut().enumerate() {
                            *v = buf[j * h + src] * scale;
                        }
                    }
                },
            );
    }

    fn apply_dyn(&self, x: &ArrayViewD<Complex32>, direction: Direction) -> ArrayD<Complex32> {
        let x2 = x
            .view()
            .into_dimensionality::<Ix2>()
            .expect("Fft2 expects a 2-D array");
        self.apply(&x2, direction).into_dyn()
    }
}

impl LinearOperator for Fft2 {
    type In = Complex32;
    type Out = Complex32;

    fn domain_shape(&self) -> Vec<usize> {
        vec![self.h, self.w]
    }

    fn range_shape(&self) -> Vec<usize> {
        vec![self.h, self.w]
    }

    fn forward(&self, x: &ArrayViewD<Complex32>) -> ArrayD<Complex32> {
        self.apply_dyn(x, Direction::Forward)
    }

    /// Fᴴ = F⁻¹ (F is unitary).
    fn adjoint(&self, y: &ArrayViewD<Complex32>) -> ArrayD<Complex32> {
        self.apply_dyn(y, Direction::Inverse)
    }
}

impl Transform for Fft2 {
    fn inverse(&self, y: &ArrayViewD<Complex32>) -> ArrayD<Complex32> {
        self.apply_dyn(y, Direction::Inverse)
    }
}

/// Restricts a complex-domain operator T to real images: forward T(x + 0i), adjoint Re Tᴴ y,
/// inverse Re T⁻¹ y.
///
/// With the real inner product ⟨a, b⟩ = Re Σ conj(aᵢ) bᵢ on the range, Re Tᴴ is the exact
/// adjoint of the restriction: ⟨T x, y⟩ = Re⟨x, Tᴴ y⟩ = ⟨x, Re Tᴴ y⟩ for real x. `Re T⁻¹` is a
/// left inverse (Re T⁻¹ T x = x for real x) but not a right inverse, so Theorem 8.1's λ = 1
/// consistency is only approximate for real images (the imaginary part is discarded), as in
/// score_inverse_problems (`.real` after the inverse FFT).
#[derive(Debug, Clone)]
pub struct RealInput<T> {
    inner: T,
}

impl<T> RealInput<T> {
    /// Wraps a complex-domain operator.
    pub fn new(inner: T) -> Self {
        Self { inner }
    }

    /// The wrapped complex operator.
    pub fn inner(&self) -> &T {
        &self.inner
    }
}

impl<T: LinearOperator<In = Complex32>> LinearOperator for RealInput<T> {
    type In = f32;
    type Out = T::Out;

    fn domain_shape(&self) -> Vec<usize> {
        self.inner.domain_shape()
    }

    fn range_shape(&self) -> Vec<usize> {
        self.inner.range_shape()
    }

    fn forward(&self, x: &ArrayViewD<f32>) -> ArrayD<T::Out> {
        self.inner.forward(&x.mapv(Complex32::from_real).view())
    }

    fn adjoint(&self, y: &ArrayViewD<T::Out>) -> ArrayD<f32> {
        self.inner.adjoint(y).mapv(|v| v.re)
    }
}

impl<T: Transform<In = Complex32>> Transform for RealInput<T> {
    fn inverse(&self, y: &ArrayViewD<T::Out>) -> ArrayD<f32> {
        self.inner.inverse(y).mapv(|v| v.re)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array1;

    /// Direct O(n²) centred unitary DFT along one axis, in f64, as an independent reference.
    fn centred_dft_1d(x: &[Complex32], inverse: bool) -> Vec<Complex32> {
        let n = x.len();
        let c = (n / 2) as f64;
        let sign = if inverse { 1.0 } else { -1.0 };
        (0..n)
            .map(|k| {
                let mut acc = num_complex::Complex64::new(0.0, 0.0);
                for (j, v) in x.iter().enumerate() {
                    let phase = sign * 2.0 * std::f64::consts::PI * (k as f64 - c) * (j as f64 - c)
                        / n as f64;
                    acc += num_complex::Complex64::new(v.re as f64, v.im as f64)
                        * num_complex::Complex64::from_polar(1.0, phase);
                }
                acc /= (n as f64).sqrt();
                Complex32::new(acc.re as f32, acc.im as f32)
            })
            .collect()
    }

    fn dft2(x: &Array2<Complex32>, inverse: bool) -> Array2<Complex32> {
        let mut out = x.clone();
        for mut row in out.rows_mut() {
            let r: Vec<_> = row.iter().copied().collect();
            row.assign(&Array1::from(centred_dft_1d(&r, inverse)));
        }
        for mut col in out.columns_mut() {
            let c: Vec<_> = col.iter().copied().collect();
            col.assign(&Array1::from(centred_dft_1d(&c, inverse)));
        }
        out
    }

    #[test]
    fn matches_direct_centred_dft_for_odd_and_even_sizes() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for &(h, w) in &[(1, 1), (5, 7), (8, 6), (9, 16), (13, 11), (33, 20)] {
            let fft = Fft2::new(h, w).unwrap();
            let x: Array2<Complex32> = crate::linop::randn::<Complex32, _>(&[h, w], &mut rng)
                .into_dimensionality()
                .unwrap();
            for (dir, inv) in [(Direction::Forward, false), (Direction::Inverse, true)] {
                let got = fft.apply(&x.view(), dir);
                let want = dft2(&x, inv);
                let err = (&got - &want).iter().map(|v| v.norm()).fold(0.0, f32::max);
                assert!(err < 1e-4, "[{h}, {w}] {dir:?}: max error {err}");
            }
        }
    }

    #[test]
    fn strided_input_is_handled() {
        let fft = Fft2::new(6, 5).unwrap();
        let big = Array2::from_shape_fn((5, 6), |(i, j)| Complex32::new(i as f32, j as f32 * 0.5));
        let t = big.t();
        let owned = t.to_owned();
        let a = fft.apply(&t, Direction::Forward);
        let b = fft.apply(&owned.view(), Direction::Forward);
        assert_eq!(a, b);
    }
}
