//! The score-matching form of the cross entropy and the entropy term of the LSGM NELBO
//! (LSGM §3.1 Theorem 1, Eq. 6–9; Alg. 1–3 of App. G.6; method digest §7.2, §7.5):
//! CE(q(z₀|x) ‖ p(z₀)) = ½ ∫_ε^1 w_ll(t) E‖ε − ε_θ(z_t, t)‖² dt + (D/2) ln(2πe σ_ε²),
//! z_t = m(t) z₀ + σ_t ε (σ_t ε, not the σ_t² ε that Alg. 2/3 print).

use super::importance::{TimeSampler, Weighting};
use super::mixed::EpsModel;
use crate::batch::{per_sample, sample_dim};
use crate::error::Result;
use crate::noise::Noise;
use candle_core::{Tensor, D};
use std::f64::consts::PI;

/// One Monte-Carlo draw of the score-matching objective per latent.
#[derive(Debug, Clone)]
pub struct ScoreMatching {
    /// The times t_b ~ r(t) of the draw.
    pub t: Vec<f64>,
    /// `[B]`: (w(t)/(2 r(t))) ‖ε − ε_θ(z_t, t)‖² for the sampler's weighting (the prior's loss,
    /// Eq. 9 / Alg. 2a, 3).
    pub loss: Tensor,
    /// `[B]`: (w_ll(t)/(2 r(t))) ‖ε − ε_θ‖² with the same draw (the encoder's cross-entropy
    /// term, Eq. 8; equal to `loss` when the sampler targets w_ll; Alg. 3 "rew.").
    pub likelihood_loss: Tensor,
}

/// Draws t ~ r, ε ~ N(0, I) per latent of `z0` `[B, ...]` and evaluates the IS-weighted
/// score-matching terms with the ε-model (differentiable in `z0` and the model).
pub fn score_matching(
    model: &dyn EpsModel,
    sampler: &TimeSampler,
    z0: &Tensor,
    noise: &mut Noise,
) -> Result<ScoreMatching> {
    let b = z0.dim(0)?;
    let t = sampler.sample(b, noise);
    let eps = noise.randn_like(z0)?;
    let sde = sampler.schedule().sde();
    let mean: Vec<f64> = t.iter().map(|&t| sde.mean_coef(t)).collect();
    let std: Vec<f64> = t.iter().map(|&t| sde.std(t)).collect();
    let z_t = (z0.broadcast_mul(&per_sample(&mean, z0)?)?
        + eps.broadcast_mul(&per_sample(&std, z0)?)?)?;
    let t_tensor = Tensor::from_vec(
        t.iter().map(|&t| t as f32).collect::<Vec<_>>(),
        b,
        z0.device(),
    )?;
    let sq = (eps - model.eps(&z_t, &t_tensor)?)?
        .sqr()?
        .flatten_from(1)?
        .sum(D::Minus1)?;
    let weighted = |w: Weighting| -> Result<Tensor> {
        let c: Vec<f32> = t
            .iter()
            .map(|&t| (0.5 * sampler.weight_for(w, t)) as f32)
            .collect();
        Ok(sq.mul(&Tensor::from_vec(c, b, z0.device())?.to_dtype(sq.dtype())?)?)
    };
    Ok(ScoreMatching {
        loss: weighted(sampler.weighting())?,
        likelihood_loss: weighted(Weighting::Likelihood)?,
        t,
    })
}

/// The constant (D/2) ln(2πe σ_ε²) of Theorem 1 (σ_ε² = σ_t² at the cutoff t_min).
pub fn cross_entropy_constant(sampler: &TimeSampler, dim: usize) -> f64 {
    let var = sampler.schedule().var(sampler.t_min());
    0.5 * dim as f64 * (2.0 * PI * std::f64::consts::E * var).ln()
}

/// One-draw estimate of CE(q(z₀|x) ‖ p_θ(z₀)) per latent `[B]` (Theorem 1 with IS):
/// (w_ll/(2r)) ‖ε − ε_θ‖² + (D/2) ln(2πe σ_ε²). An upper bound on the cross entropy to the
/// SDE-defined prior for a learned model; exact for Normal latents and the Normal model.
pub fn cross_entropy(
    model: &dyn EpsModel,
    sampler: &TimeSampler,
    z0: &Tensor,
    noise: &mut Noise,
) -> Result<Tensor> {
    let sm = score_matching(model, sampler, z0, noise)?;
    let c = cross_entropy_constant(sampler, sample_dim(z0));
    Ok(sm.likelihood_loss.affine(1.0, c)?)
}

/// Entropy of the diagonal Gaussian N(μ, diag(exp(log_var))) per sample `[B]`:
/// H = ½ Σ_i (ln(2πe) + log σ_i²) (the negative of the NELBO's E_q[log q(z₀|x)], Eq. 6).
pub fn gaussian_entropy(log_var: &Tensor) -> Result<Tensor> {
    let d = sample_dim(log_var) as f64;
    let c = 0.5 * d * (2.0 * PI * std::f64::consts::E).ln();
    Ok(log_var.flatten_from(1)?.sum(D::Minus1)?.affine(0.5, c)?)
}
