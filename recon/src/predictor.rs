//! Predictors: one reverse-time step x(t) → x(t_next), t_next < t, of the reverse SDE
//! dx = [f − g² ∇log p_t] dt + g dw̄ (method digest §3.1–3.3). Each returns (x, x_mean) where
//! x_mean is the step without its fresh noise.

use crate::batch::time_tensor;
use crate::error::{ReconError, Result};
use crate::noise::Noise;
use crate::score::ScoreModel;
use crate::sde::{Sde, SdeConfig};
use candle_core::Tensor;

/// Evaluates s_θ(x, t) with the same scalar t for the whole batch.
pub fn score_at(score: &dyn ScoreModel, x: &Tensor, t: f64) -> candle_core::Result<Tensor> {
    score.score(x, &time_tensor(t, x.dim(0)?, x.device())?)
}

/// One reverse-time step of a numerical SDE solver.
pub trait Predictor: Send + Sync {
    /// Registry name.
    fn name(&self) -> &'static str;
    /// Score evaluations per step.
    fn evaluations(&self) -> usize {
        1
    }
    /// Steps from `t` to `t_next` < `t`; returns (x, x_mean).
    fn step(
        &self,
        sde: &dyn Sde,
        score: &dyn ScoreModel,
        x: &Tensor,
        t: f64,
        t_next: f64,
        noise: &mut Noise,
    ) -> Result<(Tensor, Tensor)>;
}

/// Adds σ z to a noise-free mean, returning (x, x_mean).
fn add_noise(mean: Tensor, sigma: f64, noise: &mut Noise) -> Result<(Tensor, Tensor)> {
    let x = (&mean + noise.randn_like(&mean)?.affine(sigma, 0.0)?)?;
    Ok((x, mean))
}

/// Euler–Maruyama on the reverse SDE (thesis Alg. 8.1): with Δt = t − t_next,
/// x ← x − [f(t) x − g(t)² s_θ(x, t)] Δt + g(t) √Δt z.
#[derive(Debug, Clone, Copy, Default)]
pub struct EulerMaruyama;

impl Predictor for EulerMaruyama {
    fn name(&self) -> &'static str {
        "euler_maruyama"
    }
    fn step(
        &self,
        sde: &dyn Sde,
        score: &dyn ScoreModel,
        x: &Tensor,
        t: f64,
        t_next: f64,
        noise: &mut Noise,
    ) -> Result<(Tensor, Tensor)> {
        let dt = t - t_next;
        let g = sde.diffusion(t);
        let s = score_at(score, x, t)?;
        let mean = (x.affine(1.0 - sde.drift_coef(t) * dt, 0.0)? + s.affine(g * g * dt, 0.0)?)?;
        add_noise(mean, g * dt.sqrt(), noise)
    }
}

/// Reverse-diffusion predictor (thesis Eq. B.32): with the forward step (f_i, G_i) of
/// [`Sde::discretize`], x ← x − f_i(x) + G_i² s_θ(x, t) + G_i z. VE: Alg. B.4; VP: Alg. B.5,
/// x ← (2 − √(1 − β_i)) x + β_i s_θ + √β_i z.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReverseDiffusion;

impl Predictor for ReverseDiffusion {
    fn name(&self) -> &'static str {
        "reverse_diffusion"
    }
    fn step(
        &self,
        sde: &dyn Sde,
        score: &dyn ScoreModel,
        x: &Tensor,
        t: f64,
        t_next: f64,
        noise: &mut Noise,
    ) -> Result<(Tensor, Tensor)> {
        let d = sde.discretize(t, t_next);
        let s = score_at(score, x, t)?;
        let mean = (x.affine(1.0 - d.f, 0.0)? + s.affine(d.g * d.g, 0.0)?)?;
        add_noise(mean, d.g, noise)
    }
}

/// Ancestral sampling: with the forward step x_t = a x_s + b z of [`Sde::discretize`],
/// x_s = (x_t + b² s_θ(x_t, t))/a + σ z, the mean of the Gaussian posterior q(x_s | x_t, x̂₀)
/// at the Tweedie estimate x̂₀. Noise: for VE the posterior variance
/// σ² = s(s)² b²/s(t)² = σ_s²(σ_t² − σ_s²)/σ_t² (thesis Eq. B.33); for the VP family σ² = b²
/// = β_i (DDPM, thesis Eq. 7.4: x_{i−1} = (x_i + β_i s_θ)/√(1 − β_i) + √β_i z).
#[derive(Debug, Clone, Copy, Default)]
pub struct Ancestral;

impl Predictor for Ancestral {
    fn name(&self) -> &'static str {
        "ancestral"
    }
    fn step(
        &self,
        sde: &dyn Sde,
        score: &dyn ScoreModel,
        x: &Tensor,
        t: f64,
        t_next: f64,
        noise: &mut Noise,
    ) -> Result<(Tensor, Tensor)> {
        let d = sde.discretize(t, t_next);
        let (a, b2) = (d.a(), d.g * d.g);
        let s = score_at(score, x, t)?;
        let mean = (x + s.affine(b2, 0.0)?)?.affine(1.0 / a, 0.0)?;
        let var = match sde.config() {
            SdeConfig::Ve { .. } => sde.std(t_next).powi(2) * b2 / sde.std(t).powi(2),
            _ => b2,
        };
        add_noise(mean, var.sqrt(), noise)
    }
}

/// The identity predictor ("none"), for corrector-only sampling; no score evaluation.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPredictor;

impl Predictor for NoPredictor {
    fn name(&self) -> &'static str {
        "none"
    }
    fn evaluations(&self) -> usize {
        0
    }
    fn step(
        &self,
        _sde: &dyn Sde,
        _score: &dyn ScoreModel,
        x: &Tensor,
        _t: f64,
        _t_next: f64,
        _noise: &mut Noise,
    ) -> Result<(Tensor, Tensor)> {
        Ok((x.clone(), x.clone()))
    }
}

/// Names accepted by [`predictor_by_name`].
pub const PREDICTOR_NAMES: &str = "reverse_diffusion, euler_maruyama, ancestral, none";

/// The predictor registry (score_sde naming).
pub fn predictor_by_name(name: &str) -> Result<Box<dyn Predictor>> {
    Ok(match name {
        "reverse_diffusion" => Box::new(ReverseDiffusion),
        "euler_maruyama" => Box::new(EulerMaruyama),
        "ancestral" => Box::new(Ancestral),
        "none" => Box::new(NoPredictor),
        _ => {
            return Err(ReconError::UnknownName {
                what: "predictor",
                name: name.into(),
                known: PREDICTOR_NAMES,
            })
        }
    })
}
