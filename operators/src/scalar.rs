//! Scalar fields of operator domains and ranges.
//!
//! Images are real (`f32`); k-space is complex (`Complex32`). Every space is treated as a *real*
//! inner-product space with ⟨a, b⟩ = Re Σᵢ conj(aᵢ) bᵢ, so the adjoint of a real→complex operator
//! (such as the unitary FFT restricted to real images) is well defined and dot tests apply to
//! every operator alike.

use num_complex::Complex32;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// An element type of an operator's domain or range (`f32` or `Complex32`).
pub trait Scalar:
    Copy
    + Send
    + Sync
    + Default
    + PartialEq
    + std::fmt::Debug
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::AddAssign
    + 'static
{
    /// Additive identity.
    fn zero() -> Self;
    /// Re(conj(a)·b), accumulated in f64 by callers.
    fn re_dot(a: Self, b: Self) -> f64;
    /// |a|².
    fn abs2(self) -> f64 {
        Self::re_dot(self, self)
    }
    /// Multiplication by a real number.
    fn scale(self, s: f32) -> Self;
    /// A draw of standard white noise: N(0, 1) for reals; for complex numbers real and imaginary
    /// parts are independent N(0, 1) (so E|z|² = 2, matching "noise on the real and imaginary
    /// channels" in the score_inverse_problems convention).
    fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> Self;
    /// Embed a real number.
    fn from_real(r: f32) -> Self;
    /// Real part.
    fn real(self) -> f32;
}

impl Scalar for f32 {
    fn zero() -> Self {
        0.0
    }
    fn re_dot(a: Self, b: Self) -> f64 {
        a as f64 * b as f64
    }
    fn scale(self, s: f32) -> Self {
        self * s
    }
    fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> Self {
        StandardNormal.sample(rng)
    }
    fn from_real(r: f32) -> Self {
        r
    }
    fn real(self) -> f32 {
        self
    }
}

impl Scalar for Complex32 {
    fn zero() -> Self {
        Complex32::new(0.0, 0.0)
    }
    fn re_dot(a: Self, b: Self) -> f64 {
        a.re as f64 * b.re as f64 + a.im as f64 * b.im as f64
    }
    fn scale(self, s: f32) -> Self {
        self * s
    }
    fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> Self {
        Complex32::new(StandardNormal.sample(rng), StandardNormal.sample(rng))
    }
    fn from_real(r: f32) -> Self {
        Complex32::new(r, 0.0)
    }
    fn real(self) -> f32 {
        self.re
    }
}
