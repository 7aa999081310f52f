//! The linear-operator trait and the generic checks every operator must pass.
//!
//! Modelled on deepinv's `LinearPhysics` (`A`, `A_adjoint`, `adjointness_test`,
//! `compute_norm`) and pylops' `dottest`: an operator maps arrays of one shape and scalar type to
//! arrays of another, and its adjoint is exact with respect to the real inner product of
//! [`Scalar`].

use crate::error::{OpError, Result};
use crate::scalar::Scalar;
use ndarray::{ArrayD, ArrayViewD, IxDyn, Zip};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A linear map A: X → Y between finite-dimensional real inner-product spaces of arrays.
///
/// `forward` computes A x and `adjoint` computes Aᴴ y with ⟨A x, y⟩ = ⟨x, Aᴴ y⟩ exactly (up to
/// floating-point rounding). Both expect arrays of [`domain_shape`](Self::domain_shape) and
/// [`range_shape`](Self::range_shape) respectively and may panic otherwise; validate user data
/// with [`check_shape`] first.
pub trait LinearOperator: Send + Sync {
    /// Scalar type of the domain (images: `f32`).
    type In: Scalar;
    /// Scalar type of the range (sinograms: `f32`; k-space: `Complex32`).
    type Out: Scalar;
    /// Shape of x.
    fn domain_shape(&self) -> Vec<usize>;
    /// Shape of A x.
    fn range_shape(&self) -> Vec<usize>;
    /// A x.
    fn forward(&self, x: &ArrayViewD<Self::In>) -> ArrayD<Self::Out>;
    /// Aᴴ y.
    fn adjoint(&self, y: &ArrayViewD<Self::Out>) -> ArrayD<Self::In>;
}

/// A full, invertible (or pseudo-invertible) measurement transform T: the Radon transform over
/// a full set of views, or the unitary 2-D FFT (thesis Prop. 8.1, A = P(Λ) T).
pub trait Transform: LinearOperator {
    /// T⁻¹ y: exact for the FFT, filtered back-projection (optionally refined) for Radon.
    fn inverse(&self, y: &ArrayViewD<Self::Out>) -> ArrayD<Self::In>;

    /// The operator P(Λ) T as a transform of its own, when that is cheaper than T followed by
    /// the gather and T's range flattened row-major lists the kept entries in P(Λ)'s order
    /// (Radon with a view mask: the Radon transform over the measured views only). `None`
    /// (the default) when no such form exists.
    fn restricted(&self, _mask: &ArrayD<bool>) -> Option<Self>
    where
        Self: Sized,
    {
        None
    }
}

/// Returns an error unless `got` equals `expected`.
pub fn check_shape(what: &'static str, expected: &[usize], got: &[usize]) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(OpError::Shape {
            what,
            expected: expected.to_vec(),
            got: got.to_vec(),
        })
    }
}

/// The rows a view mask keeps: for a 2-D mask whose every row is kept whole or dropped whole
/// (a sinogram view mask), one flag per row; `None` for any other mask (a metal trace).
pub fn kept_rows(mask: &ArrayD<bool>) -> Option<Vec<bool>> {
    let mask = mask.view().into_dimensionality::<ndarray::Ix2>().ok()?;
    mask.outer_iter()
        .map(|r| match r.iter().filter(|&&m| m).count() {
            0 => Some(false),
            k if k == r.len() => Some(true),
            _ => None,
        })
        .collect()
}

/// Real inner product ⟨a, b⟩ = Re Σ conj(aᵢ) bᵢ, accumulated in f64.
pub fn inner<S: Scalar>(a: &ArrayViewD<S>, b: &ArrayViewD<S>) -> f64 {
    let mut acc = 0.0f64;
    Zip::from(a)
        .and(b)
        .for_each(|&x, &y| acc += S::re_dot(x, y));
    acc
}

/// Euclidean norm ‖a‖₂ (f64 accumulation).
pub fn norm<S: Scalar>(a: &ArrayViewD<S>) -> f64 {
    inner(a, a).sqrt()
}

/// An array of i.i.d. standard normal entries (see [`Scalar::standard_normal`]).
pub fn randn<S: Scalar, R: rand::Rng + ?Sized>(shape: &[usize], rng: &mut R) -> ArrayD<S> {
    ArrayD::from_shape_simple_fn(IxDyn(shape), || S::standard_normal(rng))
}

/// Outcome of [`adjoint_test`].
#[derive(Debug, Clone, Copy)]
pub struct AdjointReport {
    /// ⟨A x, y⟩.
    pub lhs: f64,
    /// ⟨x, Aᴴ y⟩.
    pub rhs: f64,
    /// |lhs − rhs| / max(‖A x‖‖y‖, ‖x‖‖Aᴴ y‖): the scale-free dot-test error.
    pub rel_error: f64,
}

/// The dot-product (adjointness) test: draws seeded Gaussian x and y and compares ⟨A x, y⟩
/// with ⟨x, Aᴴ y⟩. A correct adjoint gives `rel_error` at rounding level (≈1e-7 in f32).
pub fn adjoint_test<A: LinearOperator + ?Sized>(op: &A, seed: u64) -> AdjointReport {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x: ArrayD<A::In> = randn(&op.domain_shape(), &mut rng);
    let y: ArrayD<A::Out> = randn(&op.range_shape(), &mut rng);
    let ax = op.forward(&x.view());
    let aty = op.adjoint(&y.view());
    let lhs = inner(&ax.view(), &y.view());
    let rhs = inner(&x.view(), &aty.view());
    let scale = (norm(&ax.view()) * norm(&y.view()))
        .max(norm(&x.view()) * norm(&aty.view()))
        .max(f64::MIN_POSITIVE);
    AdjointReport {
        lhs,
        rhs,
        rel_error: (lhs - rhs).abs() / scale,
    }
}

/// Operator norm ‖A‖₂ by power iteration on AᴴA from a seeded random start.
///
/// Runs until the estimate changes by less than `rtol` (relative) or `max_iter` iterations.
/// Used for the FISTA step size 1/‖A‖².
pub fn operator_norm<A: LinearOperator + ?Sized>(
    op: &A,
    max_iter: usize,
    rtol: f64,
    seed: u64,
) -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x: ArrayD<A::In> = randn(&op.domain_shape(), &mut rng);
    let mut estimate = 0.0f64;
    for _ in 0..max_iter.max(1) {
        let n = norm(&x.view());
        if n == 0.0 {
            return 0.0;
        }
        x.mapv_inplace(|v| v.scale((1.0 / n) as f32));
        let ax = op.forward(&x.view());
        let new_estimate = norm(&ax.view());
        x = op.adjoint(&ax.view());
        let converged = (new_estimate - estimate).abs() <= rtol * new_estimate;
        estimate = new_estimate;
        if converged {
            break;
        }
    }
    estimate
}
