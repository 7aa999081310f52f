//! The final noise-free step (Tweedie's formula; thesis §6.2, B.5.7, method digest §3.8).

use crate::error::Result;
use crate::predictor::score_at;
use crate::score::ScoreModel;
use crate::sde::Sde;
use candle_core::Tensor;

/// x̂₀ = (x + s(t)² s_θ(x, t)) / m(t), the posterior mean E[x₀ | x_t = x] when s_θ is exact
/// (VE: x + σ(t)² s_θ). One score evaluation.
pub fn tweedie_denoise(
    sde: &dyn Sde,
    score: &dyn ScoreModel,
    x: &Tensor,
    t: f64,
) -> Result<Tensor> {
    let (m, s) = (sde.mean_coef(t), sde.std(t));
    let g = score_at(score, x, t)?;
    Ok((x + g.affine(s * s, 0.0)?)?.affine(1.0 / m, 0.0)?)
}
