//! FISTA with isotropic TV regularisation (Beck & Teboulle, "A fast iterative
//! shrinkage-thresholding algorithm for linear inverse problems", SIAM J. Imaging Sci. 2009, and
//! the FGP prox of their TIP 2009 paper), generic over any real-domain [`LinearOperator`]:
//! sparse-view CT (`Radon`, `Subsampled<Radon>`) and undersampled MRI
//! (`Subsampled<RealInput<Fft2>>`).
//!
//! Solves min_x ½‖A x − y‖² + weight · TV(x) (optionally s.t. x ≥ 0) with
//!
//! x_k = prox_{(weight/L) TV}(z_k − Aᴴ(A z_k − y)/L),
//! t_{k+1} = (1 + √(1 + 4 t_k²))/2,  z_{k+1} = x_k + ((t_k − 1)/t_{k+1})(x_k − x_{k−1}),
//!
//! step 1/L with L = ‖A‖² from power iteration. The thesis' baseline runs 300 iterations
//! (Table 8.2, with the weight 0.001 of the tomobar/CCPi scaling, which is not this objective's).

use super::tv::{tv_prox, Field};
use crate::linop::{check_shape, operator_norm, LinearOperator};
use crate::{OpError, Result};
use ndarray::{Array2, ArrayView2, ArrayViewD, Ix2, Zip};

/// Settings of [`fista_tv`].
#[derive(Debug, Clone, PartialEq)]
pub struct FistaTvParams {
    /// TV weight in ½‖A x − y‖² + weight · TV(x).
    pub weight: f32,
    /// Outer FISTA iterations (default 300, the thesis baseline).
    pub iterations: usize,
    /// FGP iterations per TV prox (warm-started from the previous prox's dual field).
    pub inner_iterations: usize,
    /// Project onto x ≥ 0 inside the prox.
    pub nonnegative: bool,
    /// Lipschitz constant L = ‖A‖²; `None` estimates it by power iteration (×1.01 margin).
    pub lipschitz: Option<f64>,
}

impl Default for FistaTvParams {
    fn default() -> Self {
        Self {
            weight: 1e-3,
            iterations: 300,
            inner_iterations: 20,
            nonnegative: false,
            lipschitz: None,
        }
    }
}

/// Runs FISTA-TV from x₀ = 0 (or `init`) and returns the last iterate. `callback(k, x_k)` is
/// called after every outer iteration k (0-based), e.g. to record an objective or PSNR curve.
pub fn fista_tv<A, F>(
    op: &A,
    y: &ArrayViewD<A::Out>,
    params: &FistaTvParams,
    init: Option<&ArrayView2<f32>>,
    mut callback: F,
) -> Result<Array2<f32>>
where
    A: LinearOperator<In = f32> + ?Sized,
    F: FnMut(usize, &Array2<f32>),
{
    let domain = op.domain_shape();
    let [h, w] = <[usize; 2]>::try_from(domain.as_slice()).map_err(|_| OpError::Param {
        name: "operator",
        reason: format!("FISTA-TV needs a 2-D image domain, got {domain:?}"),
    })?;
    check_shape("measurement", &op.range_shape(), y.shape())?;
    if !(params.weight.is_finite() && params.weight >= 0.0) {
        return Err(OpError::Param {
            name: "weight",
            reason: format!("must be finite and ≥ 0, got {}", params.weight),
        });
    }
    let lipschitz = match params.lipschitz {
        Some(l) => l,
        None => 1.01 * operator_norm(op, 200, 1e-5, 0).powi(2),
    };
    if !(lipschitz.is_finite() && lipschitz > 0.0) {
        return Err(OpError::Param {
            name: "lipschitz",
            reason: format!("must be positive and finite, got {lipschitz}"),
        });
    }
    let inv_l = (1.0 / lipschitz) as f32;
    let alpha = params.weight * inv_l;

    let mut x = match init {
        Some(x0) => {
            check_shape("init", &[h, w], x0.shape())?;
            x0.to_owned()
        }
        None => Array2::zeros((h, w)),
    };
    let mut z = x.clone();
    let mut t = 1.0f32;
    let mut dual = Field::zeros(h, w);
    for k in 0..params.iterations {
        let mut residual = op.forward(&z.view().into_dyn());
        Zip::from(&mut residual)
            .and(y)
            .for_each(|r, &yv| *r = *r - yv);
        let grad = op
            .adjoint(&residual.view())
            .into_dimensionality::<Ix2>()
            .map_err(|_| OpError::Shape {
                what: "adjoint output",
                expected: vec![h, w],
                got: vec![],
            })?;
        Zip::from(&mut z)
            .and(&grad)
            .for_each(|zv, &g| *zv -= inv_l * g);
        let x_new = tv_prox(
            &z.view(),
            alpha,
            params.inner_iterations,
            params.nonnegative,
            &mut dual,
        );
        let t_next = (1.0 + (1.0 + 4.0 * t * t).sqrt()) / 2.0;
        let beta = (t - 1.0) / t_next;
        Zip::from(&mut z)
            .and(&x_new)
            .and(&x)
            .for_each(|zv, &xn, &xo| *zv = xn + beta * (xn - xo));
        x = x_new;
        t = t_next;
        callback(k, &x);
    }
    Ok(x)
}
