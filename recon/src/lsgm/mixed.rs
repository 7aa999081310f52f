//! The mixed score parameterisation of LSGM (§3.2, App. B.1 Eq. 20; method digest §7.2):
//! ∇ log p(z_t) = −ε_θ(z_t, t)/σ_t with
//! ε_θ(z_t, t) = (σ_t/σ̃_t²)(1 − α) ⊙ z_t + α ⊙ ε'_θ(z_t, t), α = sigmoid(logit) ∈ [0, 1],
//! i.e. the geometric mixture p ∝ N(0, σ̃_t² I)^{1−α} p'_θ^α. For VP SDEs σ̃_t² = 1 and this is
//! the main-text form σ_t (1 − α) ⊙ z_t + α ⊙ ε'_θ; with α = 0 it is the exact score of Normal
//! latents.

use super::schedule::LatentSchedule;
use crate::batch::{per_sample, times};
use crate::score::ScoreModel;
use candle_core::Tensor;

/// A noise-prediction network ε'_θ(z_t, t): `z_t` `[B, C, ...]`, `t` `[B]` f32 times; returns a
/// tensor shaped like `z_t`. Must be differentiable through candle ops for training.
pub trait EpsModel: Send + Sync {
    /// Predicts the noise ε in z_t = m(t) z₀ + σ_t ε.
    fn eps(&self, z_t: &Tensor, t: &Tensor) -> candle_core::Result<Tensor>;
}

impl<M: EpsModel + ?Sized> EpsModel for &M {
    fn eps(&self, z_t: &Tensor, t: &Tensor) -> candle_core::Result<Tensor> {
        (**self).eps(z_t, t)
    }
}

impl<M: EpsModel + ?Sized> EpsModel for Box<M> {
    fn eps(&self, z_t: &Tensor, t: &Tensor) -> candle_core::Result<Tensor> {
        (**self).eps(z_t, t)
    }
}

impl<M: EpsModel + ?Sized> EpsModel for std::sync::Arc<M> {
    fn eps(&self, z_t: &Tensor, t: &Tensor) -> candle_core::Result<Tensor> {
        (**self).eps(z_t, t)
    }
}

/// α = sigmoid(logit) = ½(1 + tanh(logit/2)) (stable for large |logit|), reshaped to
/// `[1, C, 1, ...]` to broadcast over `like` `[B, C, ...]`. `logit`: `[C]`, one per channel.
pub fn mixing_coefficient(logit: &Tensor, like: &Tensor) -> candle_core::Result<Tensor> {
    let mut shape = vec![1usize; like.rank()];
    shape[1] = like.dim(1)?;
    (logit.affine(0.5, 0.0)?.tanh()? + 1.0)?
        .affine(0.5, 0.0)?
        .reshape(shape)?
        .to_dtype(like.dtype())
}

/// The mixed ε_θ(z_t, t) = (σ_t/σ̃_t²)(1 − α) ⊙ z_t + α ⊙ ε'_θ from the network output
/// `eps_prime` (shaped like `z_t` `[B, C, ...]`), per-sample times `t` `[B]` and per-channel
/// logits `logit` `[C]` (LSGM Eq. 20).
pub fn mixed_eps(
    schedule: &LatentSchedule,
    z_t: &Tensor,
    t: &Tensor,
    logit: &Tensor,
    eps_prime: &Tensor,
) -> candle_core::Result<Tensor> {
    let coef: Vec<f64> = times(t)?
        .into_iter()
        .map(|t| schedule.var(t).sqrt() / schedule.var_tilde(t))
        .collect();
    let alpha = mixing_coefficient(logit, z_t)?;
    let normal = z_t
        .broadcast_mul(&per_sample(&coef, z_t)?)?
        .broadcast_mul(&alpha.affine(-1.0, 1.0)?)?;
    normal + eps_prime.broadcast_mul(&alpha)?
}

/// A network ε'_θ with per-channel mixing logits: an [`EpsModel`] for the mixed ε_θ and a
/// [`ScoreModel`] s_θ = −ε_θ/σ_t, so the recon samplers (PC, probability-flow ODE, likelihood)
/// run on the latent prior unchanged.
#[derive(Debug)]
pub struct MixedEps<M> {
    schedule: LatentSchedule,
    logit: Tensor,
    net: M,
}

impl<M: EpsModel> MixedEps<M> {
    /// `logit`: `[C]` mixing logits (a trainable `Var`'s tensor, or fixed).
    pub fn new(schedule: LatentSchedule, logit: Tensor, net: M) -> Self {
        Self {
            schedule,
            logit,
            net,
        }
    }

    /// The latent schedule.
    pub fn schedule(&self) -> &LatentSchedule {
        &self.schedule
    }

    /// The mixing logits `[C]`.
    pub fn logit(&self) -> &Tensor {
        &self.logit
    }

    /// The residual network ε'_θ.
    pub fn net(&self) -> &M {
        &self.net
    }
}

impl<M: EpsModel> EpsModel for MixedEps<M> {
    fn eps(&self, z_t: &Tensor, t: &Tensor) -> candle_core::Result<Tensor> {
        let eps_prime = self.net.eps(z_t, t)?;
        mixed_eps(&self.schedule, z_t, t, &self.logit, &eps_prime)
    }
}

impl<M: EpsModel> ScoreModel for MixedEps<M> {
    fn score(&self, x: &Tensor, t: &Tensor) -> candle_core::Result<Tensor> {
        let inv_sigma: Vec<f64> = times(t)?
            .into_iter()
            .map(|t| -1.0 / self.schedule.var(t).sqrt())
            .collect();
        self.eps(x, t)?.broadcast_mul(&per_sample(&inv_sigma, x)?)
    }
}
