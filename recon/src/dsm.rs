//! Continuous-time denoising score matching (thesis Eq. 7.7, 9.4; method digest §2):
//! L(θ) = E_t λ(t) E_{x₀, z} ½‖s_θ(x_t, t) + z/s(t)‖², x_t = m(t) x₀ + s(t) z, reduced as a sum
//! over pixels per sample and a mean over the batch (`[ext]` reduce_mean = False).

use crate::batch::{per_sample, times};
use crate::error::Result;
use crate::score::ScoreModel;
use crate::sde::Sde;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

/// The weighting λ(t) of the DSM objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DsmWeighting {
    /// λ(t) = s(t)² (thesis Ch. 7): per-sample loss ½‖s(t) s_θ + z‖².
    #[default]
    Sigma2,
    /// Likelihood weighting λ(t) = g(t)² (thesis Thm 9.1): per-sample ½ (g²/s²)‖s(t) s_θ + z‖².
    Likelihood,
}

/// x_t = m(t) x₀ + s(t) z for per-sample times t: `[B]`.
pub fn perturb(sde: &dyn Sde, x0: &Tensor, t: &Tensor, z: &Tensor) -> Result<Tensor> {
    let ts = times(t)?;
    let m: Vec<f64> = ts.iter().map(|&t| sde.mean_coef(t)).collect();
    let s: Vec<f64> = ts.iter().map(|&t| sde.std(t)).collect();
    Ok((x0.broadcast_mul(&per_sample(&m, x0)?)? + z.broadcast_mul(&per_sample(&s, z)?)?)?)
}

/// Per-sample DSM losses `[B]`: ½ (λ(t)/s(t)²) Σ_pixels (s(t) s_θ(x_t, t) + z)².
pub fn dsm_loss_per_sample(
    model: &dyn ScoreModel,
    sde: &dyn Sde,
    x0: &Tensor,
    t: &Tensor,
    z: &Tensor,
    weighting: DsmWeighting,
) -> Result<Tensor> {
    let ts = times(t)?;
    let xt = perturb(sde, x0, t, z)?;
    let score = model.score(&xt, t)?;
    let s: Vec<f64> = ts.iter().map(|&t| sde.std(t)).collect();
    let residual = (score.broadcast_mul(&per_sample(&s, &score)?)? + z)?;
    let sq = residual.sqr()?.flatten_from(1)?.sum(1)?;
    let w: Vec<f64> = ts
        .iter()
        .map(|&t| match weighting {
            DsmWeighting::Sigma2 => 0.5,
            DsmWeighting::Likelihood => 0.5 * (sde.diffusion(t) / sde.std(t)).powi(2),
        })
        .collect();
    Ok((sq * Tensor::new(w, t.device())?.to_dtype(residual.dtype())?)?)
}

/// The DSM loss (a scalar tensor, differentiable in the model's parameters): the batch mean
/// of [`dsm_loss_per_sample`]. `x0`: data `[B, ...]`, `t`: `[B]` times in [ε, T], `z`: noise
/// shaped like `x0`.
pub fn dsm_loss(
    model: &dyn ScoreModel,
    sde: &dyn Sde,
    x0: &Tensor,
    t: &Tensor,
    z: &Tensor,
    weighting: DsmWeighting,
) -> Result<Tensor> {
    Ok(dsm_loss_per_sample(model, sde, x0, t, z, weighting)?.mean_all()?)
}
