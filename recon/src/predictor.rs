//! Predictors: one reverse-time step x(t) → x(t_next), t_next < t, of the reverse SDE
//! dx = [f − g² ∇log p_t] dt + g dw̄ (method digest §3.1–3.3). Each returns (x, x_mean) where
//! x_mean is the step without its fresh noise.

use crate::batch::time_tensor;
use crate::error::{ensure, ReconError, Result};
use crate::noise::Noise;
use crate::score::ScoreModel;
use crate::sde::{Sde, SdeConfig};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

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
        SdeLambda { lambda: 0.0 }.step(sde, score, x, t, t_next, noise)
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

/// The λ-family of generative SDEs (Huang, Lim & Courville 2021, Eq. 27; method digest §9),
/// dX = [(1 − λ/2) g² s_θ − f] dτ + √(1 − λ) g dB in generative time τ = T − t, one
/// Euler–Maruyama step: with Δt = t − t_next,
/// x ← x − [f(t) x − (1 − λ/2) g(t)² s_θ(x, t)] Δt + √(1 − λ) g(t) √Δt z.
/// λ = 0 is the reverse SDE ([`EulerMaruyama`]), λ = 1 the probability-flow ODE (an Euler
/// step, no noise); with the exact score every λ ≤ 1 has the marginals p_t of the forward SDE.
#[derive(Debug, Clone, Copy)]
pub struct SdeLambda {
    lambda: f64,
}

impl SdeLambda {
    /// Requires a finite λ ≤ 1.
    pub fn new(lambda: f64) -> Result<Self> {
        ensure(lambda.is_finite() && lambda <= 1.0, "lambda_ode", || {
            format!("the λ-family needs a finite λ <= 1, got {lambda}")
        })?;
        Ok(Self { lambda })
    }
}

impl Predictor for SdeLambda {
    fn name(&self) -> &'static str {
        "sde_lambda"
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
        let g2 = sde.diffusion(t).powi(2);
        let s = score_at(score, x, t)?;
        let mean = (x.affine(1.0 - sde.drift_coef(t) * dt, 0.0)?
            + s.affine((1.0 - 0.5 * self.lambda) * g2 * dt, 0.0)?)?;
        if self.lambda == 1.0 {
            return Ok((mean.clone(), mean));
        }
        add_noise(mean, ((1.0 - self.lambda) * g2 * dt).sqrt(), noise)
    }
}

/// The predictors (score_sde's registry names; serialised in snake_case, the λ-family as
/// `{ sde_lambda = { lambda = 0.5 } }`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PredictorKind {
    /// [`ReverseDiffusion`].
    ReverseDiffusion,
    /// [`EulerMaruyama`].
    EulerMaruyama,
    /// [`Ancestral`].
    Ancestral,
    /// [`SdeLambda`] with its λ.
    SdeLambda {
        /// λ ≤ 1 (0: reverse SDE, 1: probability-flow ODE).
        lambda: f64,
    },
    /// [`NoPredictor`].
    None,
}

/// Names accepted by [`PredictorKind::from_str`](std::str::FromStr).
pub const PREDICTOR_NAMES: &str = "reverse_diffusion, euler_maruyama, ancestral, none";

impl PredictorKind {
    /// The predictor (validates λ).
    pub fn build(self) -> Result<Box<dyn Predictor>> {
        Ok(match self {
            Self::ReverseDiffusion => Box::new(ReverseDiffusion),
            Self::EulerMaruyama => Box::new(EulerMaruyama),
            Self::Ancestral => Box::new(Ancestral),
            Self::SdeLambda { lambda } => Box::new(SdeLambda::new(lambda)?),
            Self::None => Box::new(NoPredictor),
        })
    }
}

impl std::str::FromStr for PredictorKind {
    type Err = ReconError;
    /// The parameter-free predictors by name (the λ-family needs its λ).
    fn from_str(name: &str) -> Result<Self> {
        Ok(match name {
            "reverse_diffusion" => Self::ReverseDiffusion,
            "euler_maruyama" => Self::EulerMaruyama,
            "ancestral" => Self::Ancestral,
            "none" => Self::None,
            _ => {
                return Err(ReconError::UnknownName {
                    what: "predictor",
                    name: name.into(),
                    known: PREDICTOR_NAMES,
                })
            }
        })
    }
}

impl std::fmt::Display for PredictorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ReverseDiffusion => f.write_str("reverse_diffusion"),
            Self::EulerMaruyama => f.write_str("euler_maruyama"),
            Self::Ancestral => f.write_str("ancestral"),
            Self::SdeLambda { lambda } => write!(f, "sde_lambda (λ = {lambda})"),
            Self::None => f.write_str("none"),
        }
    }
}
