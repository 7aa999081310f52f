//! Probability-flow ODE sampling (thesis §7.4.3, B.29–B.30; method digest §3.4):
//! dx/dt = f(t) x − ½ g(t)² s_θ(x, t), integrated from x_T ~ π at t = T down to ε, then an
//! optional Tweedie denoising step.

use crate::denoise::tweedie_denoise;
use crate::error::Result;
use crate::noise::Noise;
use crate::ode_solver::{integrate_fixed, integrate_rk45, Tolerances};
use crate::pc_sampler::Samples;
use crate::predictor::score_at;
use crate::score::ScoreModel;
use crate::sde::{time_grid, Sde};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

/// The probability-flow drift f̃(x, t) = f(t) x − ½ g(t)² s_θ(x, t).
pub fn probability_flow_drift(
    sde: &dyn Sde,
    score: &dyn ScoreModel,
    x: &Tensor,
    t: f64,
) -> candle_core::Result<Tensor> {
    let g = sde.diffusion(t);
    x.affine(sde.drift_coef(t), 0.0)? - score_at(score, x, t)?.affine(0.5 * g * g, 0.0)?
}

/// Integration method of the ODE sampler.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OdeMethod {
    /// Fixed-step Euler with this many steps.
    Euler {
        /// Steps (NFE).
        steps: usize,
    },
    /// Fixed-step Heun (2 NFE per step).
    Heun {
        /// Steps (2 NFE each).
        steps: usize,
    },
    /// Adaptive Dormand–Prince RK45 (rtol = atol = 1e-5 by default).
    Rk45 {
        /// Relative and absolute tolerances.
        #[serde(flatten)]
        tol: Tolerances,
    },
}

/// Parameters of the ODE sampler.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OdeConfig {
    /// Integration method.
    pub method: OdeMethod,
    /// Seed of the prior draw.
    pub seed: u64,
    /// Final time ε; `None` uses [`Sde::t_min`].
    pub t_min: Option<f64>,
    /// Ends with the Tweedie step at ε (one extra NFE).
    pub denoise: bool,
}

impl Default for OdeConfig {
    fn default() -> Self {
        Self {
            method: OdeMethod::Rk45 {
                tol: Tolerances::default(),
            },
            seed: 0,
            t_min: None,
            denoise: true,
        }
    }
}

/// Draws x_T ~ π (seeded) and integrates the probability-flow ODE to ε.
pub fn ode_sample(
    sde: &dyn Sde,
    score: &dyn ScoreModel,
    shape: &[usize],
    device: &Device,
    config: &OdeConfig,
) -> Result<Samples> {
    let mut noise = Noise::new(config.seed);
    let x = sde.prior_sample(shape, DType::F32, device, &mut noise)?;
    ode_sample_from(sde, score, x, config)
}

/// Integrates the probability-flow ODE from a given x_T (deterministic: the encoding
/// x_T ↦ x_ε is invertible).
pub fn ode_sample_from(
    sde: &dyn Sde,
    score: &dyn ScoreModel,
    x: Tensor,
    config: &OdeConfig,
) -> Result<Samples> {
    let eps = config.t_min.unwrap_or_else(|| sde.t_min());
    let mut rhs = |t: f64, x: &Tensor| Ok(probability_flow_drift(sde, score, x, t)?);
    let sol = match config.method {
        OdeMethod::Euler { steps } => {
            integrate_fixed(&mut rhs, x, &time_grid(steps, sde.t_max(), eps)?, false)?
        }
        OdeMethod::Heun { steps } => {
            integrate_fixed(&mut rhs, x, &time_grid(steps, sde.t_max(), eps)?, true)?
        }
        OdeMethod::Rk45 { tol } => integrate_rk45(&mut rhs, x, sde.t_max(), eps, tol)?,
    };
    let (mut x, mut nfe) = (sol.y, sol.nfe);
    if config.denoise {
        x = tweedie_denoise(sde, score, &x, eps)?;
        nfe += 1;
    }
    Ok(Samples { samples: x, nfe })
}
