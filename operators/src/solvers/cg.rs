//! The proximal data-consistency step of decomposed diffusion samplers (DDS, Chung, Lee & Ye,
//! ICLR 2024, §3; DiffPIR, Zhu et al. 2023, Eq. 13 — method digest 2, §1.2 and §2): M plain
//! conjugate-gradient iterations on
//!
//! (I + γ AᴴA) x = x₀ + γ Aᴴy,
//!
//! the normal equations of min_x (γ/2)‖A x − y‖² + ½‖x − x₀‖², **started at x₀** so that the
//! iterate stays in x₀ + K_M(I + γAᴴA, r₀) (the Krylov subspace of the initial residual
//! r₀ = γAᴴ(y − A x₀)). Components of x₀ in the null space of A are therefore never changed —
//! the property that makes the step safe inside a sampler. Inner products are the real inner
//! product of [`Scalar`](crate::scalar::Scalar) accumulated in f64 (Hermitian for complex
//! ranges; the official code's rᵀr is wrong for complex vectors, digest §1.2).

use crate::linop::{check_shape, inner, LinearOperator};
use crate::{OpError, Result};
use ndarray::{ArrayD, ArrayViewD, Zip};

/// Relative residual ‖r‖/‖b‖ below which the CG iteration stops early.
pub const CG_TOLERANCE: f64 = 1e-6;

/// Runs at most `iterations` CG iterations on (I + γ AᴴA) x = x₀ + γ Aᴴy from x = x₀ (see the
/// module documentation) and returns x. `gamma` ≥ 0 (γ = 0 returns x₀); `y` must have the
/// operator's range shape and `x0` its domain shape.
pub fn proximal_cg<A>(
    op: &A,
    y: &ArrayViewD<A::Out>,
    x0: &ArrayViewD<f32>,
    gamma: f64,
    iterations: usize,
) -> Result<ArrayD<f32>>
where
    A: LinearOperator<In = f32> + ?Sized,
{
    check_shape("measurement", &op.range_shape(), y.shape())?;
    check_shape("image", &op.domain_shape(), x0.shape())?;
    if !(gamma.is_finite() && gamma >= 0.0) {
        return Err(OpError::Param {
            name: "gamma",
            reason: format!("must be finite and ≥ 0, got {gamma}"),
        });
    }
    let normal = |v: &ArrayD<f32>| -> ArrayD<f32> {
        let mut out = op.adjoint(&op.forward(&v.view()).view());
        Zip::from(&mut out)
            .and(v)
            .for_each(|o, &vi| *o = vi + (gamma * *o as f64) as f32);
        out
    };
    let mut x = x0.to_owned();
    // r₀ = b − (I + γAᴴA)x₀ = γAᴴ(y − A x₀)
    let mut misfit = op.forward(x0);
    Zip::from(&mut misfit)
        .and(y)
        .for_each(|m, &yi| *m = yi - *m);
    let mut r = op.adjoint(&misfit.view());
    r.mapv_inplace(|v| (gamma * v as f64) as f32);
    let b_norm = {
        let mut b = r.clone();
        Zip::from(&mut b).and(x0).for_each(|bi, &xi| *bi += xi);
        inner(&b.view(), &b.view()).sqrt()
    };
    let mut p = r.clone();
    let mut rho = inner(&r.view(), &r.view());
    for _ in 0..iterations {
        if rho.sqrt() <= CG_TOLERANCE * b_norm || rho == 0.0 {
            break;
        }
        let q = normal(&p);
        let curvature = inner(&p.view(), &q.view());
        if !(curvature.is_finite() && curvature > 0.0) {
            break;
        }
        let alpha = rho / curvature;
        Zip::from(&mut x)
            .and(&p)
            .for_each(|xi, &pi| *xi = (*xi as f64 + alpha * pi as f64) as f32);
        Zip::from(&mut r)
            .and(&q)
            .for_each(|ri, &qi| *ri = (*ri as f64 - alpha * qi as f64) as f32);
        let next = inner(&r.view(), &r.view());
        let beta = next / rho;
        Zip::from(&mut p)
            .and(&r)
            .for_each(|pi, &ri| *pi = (ri as f64 + beta * *pi as f64) as f32);
        rho = next;
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fft::{Fft2, RealInput};
    use crate::linop::randn;
    use crate::radon::{Radon, RadonGeometry};
    use crate::sparse_view::SparseViewCt;
    use crate::subsampled::Subsampled;
    use ndarray::{Array1, IxDyn};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn sparse_radon(n: usize, views: usize) -> Subsampled<Radon> {
        let measured = RadonGeometry::equispaced(n, views, RadonGeometry::default_n_det(n));
        SparseViewCt::new(&measured, 60).unwrap().op
    }

    /// Enough iterations solve the normal equations (residual of (I + γAᴴA)x − b small) for
    /// sparse-view CT; the objective never increases along the iterations.
    #[test]
    fn converges_to_the_proximal_point() {
        let n = 16;
        let op = sparse_radon(n, 12);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let truth: ArrayD<f32> = randn(&[n, n], &mut rng);
        let y = op.forward(&truth.view());
        let x0: ArrayD<f32> = randn(&[n, n], &mut rng);
        let gamma = 0.05;
        let objective = |x: &ArrayD<f32>| {
            let mut r = op.forward(&x.view());
            Zip::from(&mut r).and(&y).for_each(|a, &b| *a -= b);
            let d = x - &x0;
            0.5 * gamma * inner(&r.view(), &r.view()) + 0.5 * inner(&d.view(), &d.view())
        };
        let mut last = objective(&x0);
        for m in 1..=8 {
            let x = proximal_cg(&op, &y.view(), &x0.view(), gamma, m).unwrap();
            let f = objective(&x);
            assert!(
                f <= last * (1.0 + 1e-6),
                "objective rose at M = {m}: {f} > {last}"
            );
            last = f;
        }
        let x = proximal_cg(&op, &y.view(), &x0.view(), gamma, 200).unwrap();
        let mut lhs = op.adjoint(&op.forward(&x.view()).view());
        Zip::from(&mut lhs)
            .and(&x)
            .for_each(|l, &xi| *l = xi + gamma as f32 * *l);
        let mut rhs = op.adjoint(&y.view());
        Zip::from(&mut rhs)
            .and(&x0)
            .for_each(|r, &xi| *r = xi + gamma as f32 * *r);
        let err = (&lhs - &rhs).mapv(|v| v * v).sum().sqrt() / rhs.mapv(|v| v * v).sum().sqrt();
        assert!(err < 1e-4, "normal-equation residual {err}");
    }

    /// Masked unitary FFT of real images with a mask symmetric under k ↦ −k: AᴴA is the
    /// orthogonal projector P, so one iteration gives the closed form
    /// x = x₀ + γ/(1 + γ) · Aᴴ(y − A x₀), and components outside the measured subspace stay.
    #[test]
    fn masked_fft_matches_the_closed_form() {
        let n = 8;
        let keep = |j: usize| matches!(j as i64 - 4, -1..=1);
        let mask = ArrayD::from_shape_fn(IxDyn(&[n, n]), |i| keep(i[1]));
        let op = Subsampled::new(RealInput::new(Fft2::new(n, n).unwrap()), mask).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let truth: ArrayD<f32> = randn(&[n, n], &mut rng);
        let y: Array1<_> = op.forward(&truth.view()).into_dimensionality().unwrap();
        let x0: ArrayD<f32> = randn(&[n, n], &mut rng);
        let gamma = 3.0;
        let x = proximal_cg(&op, &y.view().into_dyn(), &x0.view(), gamma, 5).unwrap();
        let mut misfit = op.forward(&x0.view());
        Zip::from(&mut misfit)
            .and(&y.view().into_dyn())
            .for_each(|m, &yi| *m = yi - *m);
        let step = op.adjoint(&misfit.view());
        let want = &x0 + &step.mapv(|v| v * (gamma / (1.0 + gamma)) as f32);
        let err = (&x - &want).iter().fold(0f32, |a, v| a.max(v.abs()));
        assert!(err < 1e-5, "max deviation {err}");
        assert_eq!(
            proximal_cg(&op, &y.view().into_dyn(), &x0.view(), 0.0, 5).unwrap(),
            x0
        );
        assert!(proximal_cg(&op, &y.view().into_dyn(), &x0.view(), f64::NAN, 5).is_err());
    }
}
