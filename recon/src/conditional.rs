//! Bayes' rule for scores (ScoreVAE, paper 001 §3; method digest §8): the score of x_t given a
//! latent code z is the unconditional prior's score plus the gradient of the latent posterior,
//!
//! ∇ₓ log p_t(x | z) = ∇ₓ log p_t(x) + ∇ₓ log q_t(z | x),
//!
//! so a frozen unconditional prior s_θ and a time-dependent encoder q_{t,φ}(z | x_t) together
//! are a conditional score model — a decoder that any sampler or inverse-problem solver can run
//! (with the data-consistency step of Theorem 8.1 for measurement-consistent decoding).

use crate::batch;
use crate::error::{ensure, Result};
use crate::score::ScoreModel;
use crate::sde::Sde;
use candle_core::Tensor;
use std::sync::Arc;

/// A time-dependent latent posterior q_t(z | x_t) through its input gradient.
pub trait LatentPosterior: Send + Sync {
    /// ∇ₓ log q_t(z | x) for x: `[B, ...]`, z: `[B, k]`, t: `[B]` f32 times; shaped like x.
    fn grad_log_q(&self, x: &Tensor, z: &Tensor, t: &Tensor) -> candle_core::Result<Tensor>;
}

/// s(x, z, t) = s_θ(x, t) + ∇ₓ log q_t(z | x): the decoder's score for one code per sample.
pub struct ConditionalScore<'a> {
    prior: &'a dyn ScoreModel,
    posterior: &'a dyn LatentPosterior,
    z: Tensor,
}

impl<'a> ConditionalScore<'a> {
    /// The score conditioned on the codes `z`: `[B, k]` (one per sample of the x it is called
    /// with, or one for the whole batch when B = 1).
    pub fn new(
        prior: &'a dyn ScoreModel,
        posterior: &'a dyn LatentPosterior,
        z: Tensor,
    ) -> Result<Self> {
        ensure(z.rank() == 2 && z.dim(0)? > 0, "z", || {
            format!("need codes [B, k], got {:?}", z.dims())
        })?;
        Ok(Self {
            prior,
            posterior,
            z,
        })
    }
}

impl ScoreModel for ConditionalScore<'_> {
    fn score(&self, x: &Tensor, t: &Tensor) -> candle_core::Result<Tensor> {
        let b = x.dim(0)?;
        let z = match self.z.dim(0)? {
            n if n == b => self.z.clone(),
            1 => self.z.broadcast_as((b, self.z.dim(1)?))?.contiguous()?,
            n => candle_core::bail!("{n} latent codes for a batch of {b}"),
        };
        self.prior.score(x, t)? + self.posterior.grad_log_q(x, &z, t)?
    }
}

/// The exact latent posterior of Gaussian data x₀ ~ N(μ, diag(s₀²)) encoded as
/// z = x₀ + τ ξ (the identity encoder with noise τ), under `sde`:
/// q_t(z | x_t) = N(z; E[x₀ | x_t], Var[x₀ | x_t] + τ²) with
/// E[x₀ | x_t] = μ + k (x_t − m μ), k = m s₀²/(m² s₀² + s²), Var = s₀² s²/(m² s₀² + s²), so
/// ∇ₓ log q_t = k (z − E[x₀ | x_t])/(Var + τ²). Paired with the exact data score it decodes z
/// to p(x₀ | z) = N((s₀² z + τ² μ)/(s₀² + τ²), s₀² τ²/(s₀² + τ²)) (tests).
#[derive(Debug, Clone)]
pub struct GaussianPosterior {
    sde: Arc<dyn Sde>,
    mean: Vec<f64>,
    std: Vec<f64>,
    tau: f64,
}

impl GaussianPosterior {
    /// Data mean μ and stds s₀ (length D), encoder noise τ > 0.
    pub fn new(sde: Arc<dyn Sde>, mean: Vec<f64>, std: Vec<f64>, tau: f64) -> Result<Self> {
        ensure(
            !mean.is_empty()
                && mean.len() == std.len()
                && std.iter().all(|s| *s > 0.0 && s.is_finite()),
            "mean/std",
            || "need equal-length means and positive stds".into(),
        )?;
        ensure(tau > 0.0 && tau.is_finite(), "tau", || {
            format!("encoder noise must be positive, got {tau}")
        })?;
        Ok(Self {
            sde,
            mean,
            std,
            tau,
        })
    }
}

impl LatentPosterior for GaussianPosterior {
    fn grad_log_q(&self, x: &Tensor, z: &Tensor, t: &Tensor) -> candle_core::Result<Tensor> {
        let ts = batch::times(t)?;
        let d = self.mean.len();
        let flat = x.flatten_from(1)?.to_dtype(candle_core::DType::F64)?;
        let zf = z.to_dtype(candle_core::DType::F64)?;
        let (b, dx) = flat.dims2()?;
        if dx != d || zf.dims2()? != (b, d) {
            candle_core::bail!(
                "Gaussian posterior of dimension {d}: x {:?}, z {:?}",
                x.dims(),
                z.dims()
            );
        }
        let mut gain = Vec::with_capacity(b * d);
        let mut offset = Vec::with_capacity(b * d);
        let mut inv_var = Vec::with_capacity(b * d);
        for &t in &ts {
            let (m, s2) = (self.sde.mean_coef(t), self.sde.std(t).powi(2));
            for (mu, s0) in self.mean.iter().zip(&self.std) {
                let v = m * m * s0 * s0 + s2;
                let k = m * s0 * s0 / v;
                gain.push(k);
                offset.push(mu - k * m * mu);
                inv_var.push(1.0 / (s0 * s0 * s2 / v + self.tau * self.tau));
            }
        }
        let dev = x.device();
        let gain = Tensor::from_vec(gain, (b, d), dev)?;
        let offset = Tensor::from_vec(offset, (b, d), dev)?;
        let inv_var = Tensor::from_vec(inv_var, (b, d), dev)?;
        let post_mean = ((&flat * &gain)? + offset)?;
        ((zf - post_mean)? * inv_var)?
            .mul(&gain)?
            .to_dtype(x.dtype())?
            .reshape(x.shape())
    }
}
