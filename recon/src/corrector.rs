//! Correctors: score-based MCMC steps at a fixed time t that leave p_t invariant (method
//! digest §3.5–3.6). Each returns (x, x_mean), x_mean being the step without its noise.

use crate::batch;
use crate::error::{ensure, ReconError, Result};
use crate::noise::Noise;
use crate::predictor::score_at;
use crate::score::ScoreModel;
use crate::sde::Sde;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

/// One MCMC step at time t.
pub trait Corrector: Send + Sync {
    /// Registry name.
    fn name(&self) -> &'static str;
    /// Score evaluations per step.
    fn evaluations(&self) -> usize {
        1
    }
    /// One step at `t`; `t_next` is the next grid time, which fixes α_i of the VP family.
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

/// α_i of thesis Alg. B.6/B.7: the squared mean factor a² of the forward step t_next → t, i.e.
/// 1 for VE and 1 − β_i for VP (`[ext]`; digest §11 item 10). Sub-VP and geometric VP use the
/// same formula (score_sde uses 1 for sub-VP).
pub fn langevin_alpha(sde: &dyn Sde, t: f64, t_next: f64) -> f64 {
    sde.discretize(t, t_next).a().powi(2)
}

/// Langevin step size ε = 2α (r ‖z‖/‖G‖)² with ‖·‖ the batch mean of per-sample Euclidean
/// norms (thesis Alg. B.6/B.7).
pub fn langevin_step_size(grad: &Tensor, z: &Tensor, snr: f64, alpha: f64) -> Result<f64> {
    let (gn, zn) = (batch::mean_norm(grad)?, batch::mean_norm(z)?);
    if !(gn > 0.0 && gn.is_finite()) {
        return Err(ReconError::Numerical {
            what: "langevin step size",
            reason: format!("score norm is {gn}"),
        });
    }
    Ok(2.0 * alpha * (snr * zn / gn).powi(2))
}

/// The realised signal-to-noise ratio of a Langevin step x + εG + √(2ε) z: the batch-mean norm
/// of εG over that of √(2ε) z (equals r √α for ε from [`langevin_step_size`]).
pub fn realised_snr(grad: &Tensor, z: &Tensor, step: f64) -> Result<f64> {
    Ok(step * batch::mean_norm(grad)? / ((2.0 * step).sqrt() * batch::mean_norm(z)?))
}

/// x ← x + εG + √(2ε) z, returning (x, x_mean).
fn langevin_move(x: &Tensor, grad: &Tensor, z: &Tensor, step: f64) -> Result<(Tensor, Tensor)> {
    let mean = (x + grad.affine(step, 0.0)?)?;
    let x = (&mean + z.affine((2.0 * step).sqrt(), 0.0)?)?;
    Ok((x, mean))
}

/// Langevin corrector with signal-to-noise ratio r (thesis Alg. B.6/B.7):
/// G = s_θ(x, t), ε = 2α(r‖z‖/‖G‖)², x ← x + εG + √(2ε) z.
#[derive(Debug, Clone, Copy)]
pub struct Langevin {
    /// Signal-to-noise ratio r.
    pub snr: f64,
}

impl Corrector for Langevin {
    fn name(&self) -> &'static str {
        "langevin"
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
        let grad = score_at(score, x, t)?;
        let z = noise.randn_like(x)?;
        let step = langevin_step_size(&grad, &z, self.snr, langevin_alpha(sde, t, t_next))?;
        langevin_move(x, &grad, &z, step)
    }
}

/// Annealed Langevin dynamics as a corrector (`[ext]` "ald"; thesis Alg. 6.1 with α_i ∝ σ_i²):
/// ε = 2α (r s(t))², x ← x + ε s_θ(x, t) + √(2ε) z.
#[derive(Debug, Clone, Copy)]
pub struct AnnealedLangevin {
    /// r, playing the role of √(ε_ALD/(2σ_L²)).
    pub snr: f64,
}

impl Corrector for AnnealedLangevin {
    fn name(&self) -> &'static str {
        "ald"
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
        let grad = score_at(score, x, t)?;
        let z = noise.randn_like(x)?;
        let step = 2.0 * langevin_alpha(sde, t, t_next) * (self.snr * sde.std(t)).powi(2);
        langevin_move(x, &grad, &z, step)
    }
}

/// The identity corrector ("none"); no score evaluation.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCorrector;

impl Corrector for NoCorrector {
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

/// The correctors (score_sde's registry names, snake_case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CorrectorKind {
    /// [`Langevin`].
    Langevin,
    /// [`AnnealedLangevin`].
    Ald,
    /// [`NoCorrector`].
    None,
}

/// Names accepted by [`CorrectorKind::from_str`](std::str::FromStr).
pub const CORRECTOR_NAMES: &str = "langevin, ald, none";

impl CorrectorKind {
    /// The corrector with signal-to-noise ratio r = `snr` (must be positive for Langevin and
    /// ALD).
    pub fn build(self, snr: f64) -> Result<Box<dyn Corrector>> {
        if self != Self::None {
            ensure(snr > 0.0 && snr.is_finite(), "snr", || {
                format!("signal-to-noise ratio must be positive, got {snr}")
            })?;
        }
        Ok(match self {
            Self::Langevin => Box::new(Langevin { snr }),
            Self::Ald => Box::new(AnnealedLangevin { snr }),
            Self::None => Box::new(NoCorrector),
        })
    }
}

impl std::str::FromStr for CorrectorKind {
    type Err = ReconError;
    fn from_str(name: &str) -> Result<Self> {
        Ok(match name {
            "langevin" => Self::Langevin,
            "ald" => Self::Ald,
            "none" => Self::None,
            _ => {
                return Err(ReconError::UnknownName {
                    what: "corrector",
                    name: name.into(),
                    known: CORRECTOR_NAMES,
                })
            }
        })
    }
}

impl std::fmt::Display for CorrectorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Langevin => "langevin",
            Self::Ald => "ald",
            Self::None => "none",
        })
    }
}
