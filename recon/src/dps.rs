//! Diffusion Posterior Sampling (Chung, Kim, Mccann, Klasky & Ye, "Diffusion Posterior Sampling
//! for General Noisy Inverse Problems", ICLR 2023; method digest 2, §3), for any SDE: the
//! common reference among the fast samplers, and the only one that needs no linear structure
//! of A beyond a gradient. Per step from t to t′ < t:
//!
//! 1. with x_t tracked for differentiation: s = s_θ(x_t, t), the Tweedie estimate
//!    x̂₀(x_t) = (x_t + s(t)² s)/m(t);
//! 2. the reverse-diffusion step x′ = x_t (1 − f) + G² s + G z of [`Sde::discretize`];
//! 3. the guidance x_{t′} = x′ − ζ ∇_{x_t}‖A x̂₀(x_t) − y‖, the gradient a vector-Jacobian
//!    product through the network: (∂x̂₀/∂x_t)ᵀ Aᴴ(A x̂₀ − y)/‖A x̂₀ − y‖ (the official code's
//!    un-squared-norm form, ζ the step size).
//!
//! After the N steps on [ε, t₀] a last Tweedie step gives the output: N + 1 network
//! evaluations, each with a backward pass (about three forward passes of work).

use crate::error::{ensure, Result};
use crate::noise::Noise;
use crate::predictor::score_at;
use crate::projection::{MeasuredBatch, ProjectionError};
use crate::score::ScoreModel;
use crate::sde::{time_grid, Sde};
use candle_core::{Tensor, Var};
use medsgm_operators::Transform;

/// The guidance gradient ∇_{x}‖A x̂₀(x) − y‖ at time `t` for every image of the batch, and
/// the (detached) score s_θ(x, t) it was computed with.
pub fn guidance<T: Transform<In = f32>>(
    sde: &dyn Sde,
    score: &dyn ScoreModel,
    measured: &MeasuredBatch<'_, T>,
    x: &Tensor,
    t: f64,
) -> Result<(Tensor, Tensor)> {
    let (m, s) = (sde.mean_coef(t), sde.std(t));
    let var = Var::from_tensor(&x.detach())?;
    let g = score_at(score, var.as_tensor(), t)?;
    let x0 = (var.as_tensor() + g.affine(s * s, 0.0)?)?.affine(1.0 / m, 0.0)?;
    let direction = measured
        .residual_direction(&x0.detach())
        .map_err(hook_error)?;
    let grads = (x0 * direction)?.sum_all()?.backward()?;
    let grad = grads
        .get(var.as_tensor())
        .cloned()
        .ok_or_else(|| crate::ReconError::Numerical {
            what: "dps",
            reason: "the score model's output does not depend on its input".into(),
        })?;
    Ok((grad, g.detach()))
}

/// The range of DPS's guidance step: ζ finite and ≥ 0.
pub fn check_zeta(zeta: f64) -> Result<()> {
    ensure(zeta >= 0.0 && zeta.is_finite(), "zeta", || {
        format!("ζ must be finite and ≥ 0, got {zeta}")
    })
}

/// Runs DPS from `x_start` at `t_start` with `steps` steps and guidance step size `zeta` and
/// returns the final Tweedie estimate. `progress(i, N)` after each step.
#[allow(clippy::too_many_arguments)]
pub fn sample<T: Transform<In = f32>>(
    sde: &dyn Sde,
    score: &dyn ScoreModel,
    measured: &MeasuredBatch<'_, T>,
    x_start: Tensor,
    t_start: f64,
    steps: usize,
    zeta: f64,
    noise: &mut Noise,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Tensor> {
    ensure(steps >= 1, "steps", || "need at least one step".into())?;
    check_zeta(zeta)?;
    let grid = time_grid(steps, t_start, sde.t_min())?;
    let mut x = x_start;
    for (i, w) in grid.windows(2).enumerate() {
        let (t, t_next) = (w[0], w[1]);
        let (grad, s) = guidance(sde, score, measured, &x, t)?;
        let d = sde.discretize(t, t_next);
        let mean = (x.affine(1.0 - d.f, 0.0)? + s.affine(d.g * d.g, 0.0)?)?;
        let z = noise.randn_like(&x)?;
        x = ((mean + z.affine(d.g, 0.0)?)? - grad.affine(zeta, 0.0)?)?;
        progress(i + 1, steps);
    }
    let t = sde.t_min();
    let (m, s) = (sde.mean_coef(t), sde.std(t));
    let g = score_at(score, &x, t)?;
    Ok((&x + g.affine(s * s, 0.0)?)?.affine(1.0 / m, 0.0)?)
}

fn hook_error(e: ProjectionError) -> crate::ReconError {
    crate::ReconError::Hook(Box::new(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exact_score::GaussianScore;
    use crate::sde::SdeConfig;
    use candle_core::Device;
    use medsgm_operators::{Fft2, LinearOperator, RealInput, Subsampled};
    use ndarray::{Array1, ArrayD, IxDyn};
    use std::sync::Arc;

    /// Known answer: for isotropic Gaussian data N(μ, s₀²I) the Tweedie estimate is affine,
    /// x̂₀ = (x + s² s(x))/m with Jacobian c·I, c = (1 − s²/(m² s₀² + s²))/m, so the guidance
    /// is c · Aᴴ(A x̂₀ − y)/‖A x̂₀ − y‖ exactly (VP, so that m ≠ 1).
    #[test]
    fn guidance_is_the_exact_vector_jacobian_product() {
        let n = 8;
        let mask = ArrayD::from_shape_fn(IxDyn(&[n, n]), |i| i[1] % 3 == 0);
        let op = Subsampled::new(RealInput::new(Fft2::new(n, n).unwrap()), mask).unwrap();
        let truth = ArrayD::from_shape_fn(IxDyn(&[n, n]), |i| ((i[0] + 2 * i[1]) % 5) as f32 * 0.2);
        let y: Array1<_> = op.forward(&truth.view()).into_dimensionality().unwrap();
        let measured = MeasuredBatch::new(&op, vec![y.clone(), y], 0).unwrap();
        let sde: Arc<dyn Sde> = Arc::from(SdeConfig::vp().build().unwrap());
        let s0 = 0.6;
        let score = GaussianScore::new(sde.clone(), vec![0.3; n * n], vec![s0; n * n]).unwrap();
        let x = Tensor::from_vec(
            (0..2 * n * n)
                .map(|i| (i as f32 * 0.37).sin())
                .collect::<Vec<_>>(),
            (2, 1, n, n),
            &Device::Cpu,
        )
        .unwrap();
        let t = 0.35;
        let (grad, _) = guidance(sde.as_ref(), &score, &measured, &x, t).unwrap();
        let (m, s) = (sde.mean_coef(t), sde.std(t));
        let c = (1.0 - s * s / (m * m * s0 * s0 + s * s)) / m;
        let x0 = crate::denoise::tweedie_denoise(sde.as_ref(), &score, &x, t).unwrap();
        let want = measured
            .residual_direction(&x0)
            .unwrap()
            .affine(c, 0.0)
            .unwrap();
        let err = (grad - &want)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let scale = want
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(
            scale > 1e-3 && err < 1e-4 * scale.max(1.0),
            "err {err} (scale {scale})"
        );
    }
}
