//! Forward SDEs dx = f(t) x dt + g(t) dw with Gaussian perturbation kernels
//! p_0t(x_t | x_0) = N(m(t) x_0, s(t)² I) (method digest §1; thesis §7.3.4, B.5.2–B.5.3;
//! LSGM App. B). Time t is an f64 scalar; states x are batched tensors `[B, ...]`.

use crate::batch;
use crate::error::{ensure, Result};
use crate::learned_schedule::{LearnedSchedule, LearnedVpSde};
use crate::noise::Noise;
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

/// One step of the forward chain between grid times s < t, x_t = x_s + f_i(x_s) + G_i z,
/// with f_i(x) = `f`·x and G_i = `g` (the (f_i, G_i) of the reverse-diffusion predictor, thesis
/// Eq. B.32). Built from the exact transition kernel x_t = a x_s + b z with a = m(t)/m(s),
/// b² = s(t)² − a² s(s)², so f = a − 1 and g = b. This reproduces thesis Alg. B.4 for VE
/// (f = 0, G² = σ_t² − σ_s²) and Alg. B.5 for VP (1 + f = √(1 − β_i), G² = β_i with
/// β_i = 1 − e^{−(B(t) − B(s))} ≈ β(t)Δt).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Discretization {
    /// f_i(x) = f·x (= a − 1).
    pub f: f64,
    /// G_i (= b).
    pub g: f64,
}

impl Discretization {
    /// The mean factor a = 1 + f of the forward step.
    pub fn a(&self) -> f64 {
        1.0 + self.f
    }
}

/// A linear forward SDE with closed-form Gaussian marginals.
pub trait Sde: Send + Sync + std::fmt::Debug {
    /// The serialisable parameters (for checkpoints).
    fn config(&self) -> SdeConfig;
    /// Linear drift coefficient f(t), f(x, t) = f(t) x.
    fn drift_coef(&self, t: f64) -> f64;
    /// Diffusion coefficient g(t).
    fn diffusion(&self, t: f64) -> f64;
    /// Marginal mean coefficient m(t) = exp(∫₀ᵗ f).
    fn mean_coef(&self, t: f64) -> f64;
    /// Marginal standard deviation s(t) (solution of ds²/dt = 2 f s² + g²).
    fn std(&self, t: f64) -> f64;
    /// Standard deviation of the prior π = N(0, σ_π² I).
    fn prior_std(&self) -> f64;
    /// Smallest time ε used by samplers and likelihood (VE 1e-5, VP/sub-VP 1e-3).
    fn t_min(&self) -> f64;
    /// Smallest time ε of the training objective (1e-5 for all SDEs).
    fn t_min_train(&self) -> f64 {
        1e-5
    }
    /// Terminal time T.
    fn t_max(&self) -> f64 {
        1.0
    }

    /// Drift f(x, t) = f(t) x.
    fn drift(&self, x: &Tensor, t: f64) -> candle_core::Result<Tensor> {
        x.affine(self.drift_coef(t), 0.0)
    }

    /// Discretisation (f_i, G_i) of the forward step from `t_prev` to `t` (`t_prev` < `t`),
    /// see [`Discretization`].
    fn discretize(&self, t: f64, t_prev: f64) -> Discretization {
        let a = self.mean_coef(t) / self.mean_coef(t_prev);
        let b2 = self.std(t).powi(2) - (a * self.std(t_prev)).powi(2);
        Discretization {
            f: a - 1.0,
            g: b2.max(0.0).sqrt(),
        }
    }

    /// Draws x_T ~ π = N(0, σ_π² I) with the given shape.
    fn prior_sample(
        &self,
        shape: &[usize],
        dtype: DType,
        device: &Device,
        noise: &mut Noise,
    ) -> candle_core::Result<Tensor> {
        noise
            .randn(shape, dtype, device)?
            .affine(self.prior_std(), 0.0)
    }

    /// Per-sample log π(x) = −(D/2) ln(2π σ_π²) − ‖x‖²/(2σ_π²) for x: `[B, ...]`.
    fn prior_logp(&self, x: &Tensor) -> candle_core::Result<Vec<f64>> {
        let d = batch::sample_dim(x) as f64;
        let var = self.prior_std().powi(2);
        let norms = batch::sample_norms(x)?;
        Ok(norms
            .iter()
            .map(|n| -0.5 * d * (2.0 * std::f64::consts::PI * var).ln() - n * n / (2.0 * var))
            .collect())
    }
}

/// Serialisable SDE parameters; [`SdeConfig::build`] makes the SDE.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SdeConfig {
    /// Variance exploding, σ(t) = σ_min (σ_max/σ_min)^t.
    Ve {
        /// σ_min = σ(0).
        sigma_min: f64,
        /// σ_max = σ(1).
        sigma_max: f64,
    },
    /// Variance preserving, β(t) = β_min + t (β_max − β_min).
    Vp {
        /// β(0).
        beta_min: f64,
        /// β(1).
        beta_max: f64,
    },
    /// Sub-variance preserving (same β(t) as VP).
    SubVp {
        /// β(0).
        beta_min: f64,
        /// β(1).
        beta_max: f64,
    },
    /// Geometric VP of LSGM (000 Eq. 43): σ_t² = σ²_min (σ²_max/σ²_min)^t.
    GeometricVp {
        /// σ²_min = σ_0².
        sigma2_min: f64,
        /// σ²_max = σ_1².
        sigma2_max: f64,
    },
    /// VP with a learned schedule σ_t² = sigmoid(γ_η(t)) (Kingma et al.; see
    /// [`crate::learned_schedule`]).
    Learned(LearnedSchedule),
}

impl SdeConfig {
    /// The VE defaults σ_min = 0.01 with the given σ_max (thesis Technique 6.1).
    pub fn ve(sigma_max: f64) -> Self {
        Self::Ve {
            sigma_min: 0.01,
            sigma_max,
        }
    }

    /// The VP defaults β̄_min = 0.1, β̄_max = 20 (thesis B.21).
    pub fn vp() -> Self {
        Self::Vp {
            beta_min: 0.1,
            beta_max: 20.0,
        }
    }

    /// The sub-VP defaults β̄_min = 0.1, β̄_max = 20.
    pub fn sub_vp() -> Self {
        Self::SubVp {
            beta_min: 0.1,
            beta_max: 20.0,
        }
    }

    /// The LSGM geometric-VP defaults σ²_min = 3e-5, σ²_max = 0.999.
    pub fn geometric_vp() -> Self {
        Self::GeometricVp {
            sigma2_min: 3e-5,
            sigma2_max: 0.999,
        }
    }

    /// Validates the parameters and builds the SDE.
    pub fn build(&self) -> Result<Box<dyn Sde>> {
        Ok(match self {
            &Self::Ve {
                sigma_min,
                sigma_max,
            } => Box::new(VeSde::new(sigma_min, sigma_max)?),
            &Self::Vp { beta_min, beta_max } => Box::new(VpSde::new(beta_min, beta_max)?),
            &Self::SubVp { beta_min, beta_max } => Box::new(SubVpSde::new(beta_min, beta_max)?),
            &Self::GeometricVp {
                sigma2_min,
                sigma2_max,
            } => Box::new(GeometricVpSde::new(sigma2_min, sigma2_max)?),
            Self::Learned(schedule) => Box::new(LearnedVpSde::new(schedule)?),
        })
    }
}

impl std::fmt::Display for SdeConfig {
    /// A one-line description for logs and reports (the learned schedule without its weights).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ve {
                sigma_min,
                sigma_max,
            } => write!(f, "VE SDE (σ {sigma_min}–{sigma_max})"),
            Self::Vp { beta_min, beta_max } => write!(f, "VP SDE (β {beta_min}–{beta_max})"),
            Self::SubVp { beta_min, beta_max } => {
                write!(f, "sub-VP SDE (β {beta_min}–{beta_max})")
            }
            Self::GeometricVp {
                sigma2_min,
                sigma2_max,
            } => write!(f, "geometric VP SDE (σ² {sigma2_min}–{sigma2_max})"),
            Self::Learned(s) => write!(
                f,
                "VP SDE with a learned schedule (γ {:.2}–{:.2}, {} features, {})",
                s.gamma_min,
                s.gamma_max,
                s.features,
                if s.weights.is_some() {
                    "trained weights"
                } else {
                    "initial weights"
                }
            ),
        }
    }
}

/// VE SDE (thesis B.19–B.20): f = 0, σ(t) = σ_min (σ_max/σ_min)^t,
/// g(t) = σ(t) √(2 ln(σ_max/σ_min)), m = 1, s(t) = σ(t) (the practical choice of B.20;
/// σ(0⁺) = σ_min), prior N(0, σ_max² I), ε = 1e-5.
#[derive(Debug, Clone, Copy)]
pub struct VeSde {
    sigma_min: f64,
    sigma_max: f64,
}

impl VeSde {
    /// Requires 0 < σ_min < σ_max.
    pub fn new(sigma_min: f64, sigma_max: f64) -> Result<Self> {
        ensure(
            sigma_min > 0.0 && sigma_max > sigma_min && sigma_max.is_finite(),
            "sigma_min/sigma_max",
            || format!("need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}"),
        )?;
        Ok(Self {
            sigma_min,
            sigma_max,
        })
    }

    /// σ(t) = σ_min (σ_max/σ_min)^t.
    pub fn sigma(&self, t: f64) -> f64 {
        self.sigma_min * (self.sigma_max / self.sigma_min).powf(t)
    }
}

impl Sde for VeSde {
    fn config(&self) -> SdeConfig {
        SdeConfig::Ve {
            sigma_min: self.sigma_min,
            sigma_max: self.sigma_max,
        }
    }
    fn drift_coef(&self, _t: f64) -> f64 {
        0.0
    }
    fn diffusion(&self, t: f64) -> f64 {
        self.sigma(t) * (2.0 * (self.sigma_max / self.sigma_min).ln()).sqrt()
    }
    fn mean_coef(&self, _t: f64) -> f64 {
        1.0
    }
    fn std(&self, t: f64) -> f64 {
        self.sigma(t)
    }
    fn prior_std(&self) -> f64 {
        self.sigma_max
    }
    fn t_min(&self) -> f64 {
        1e-5
    }
}

/// Linear β schedule β(t) = β_min + t (β_max − β_min) and its integral
/// B(t) = β_min t + ½ t² (β_max − β_min) (thesis B.21–B.22).
#[derive(Debug, Clone, Copy)]
struct LinearBeta {
    beta_min: f64,
    beta_max: f64,
}

impl LinearBeta {
    fn new(beta_min: f64, beta_max: f64) -> Result<Self> {
        ensure(
            beta_min > 0.0 && beta_max >= beta_min && beta_max.is_finite(),
            "beta_min/beta_max",
            || format!("need 0 < beta_min <= beta_max, got {beta_min}, {beta_max}"),
        )?;
        Ok(Self { beta_min, beta_max })
    }
    fn beta(&self, t: f64) -> f64 {
        self.beta_min + t * (self.beta_max - self.beta_min)
    }
    fn integral(&self, t: f64) -> f64 {
        self.beta_min * t + 0.5 * t * t * (self.beta_max - self.beta_min)
    }
}

/// VP SDE (DDPM limit; thesis B.21–B.22): f = −½β(t), g² = β(t), m = e^{−B/2},
/// s² = 1 − e^{−B}, prior N(0, I), ε = 1e-3 for sampling, 1e-5 for training.
#[derive(Debug, Clone, Copy)]
pub struct VpSde {
    beta: LinearBeta,
}

impl VpSde {
    /// Requires 0 < β_min ≤ β_max.
    pub fn new(beta_min: f64, beta_max: f64) -> Result<Self> {
        Ok(Self {
            beta: LinearBeta::new(beta_min, beta_max)?,
        })
    }
}

impl Sde for VpSde {
    fn config(&self) -> SdeConfig {
        SdeConfig::Vp {
            beta_min: self.beta.beta_min,
            beta_max: self.beta.beta_max,
        }
    }
    fn drift_coef(&self, t: f64) -> f64 {
        -0.5 * self.beta.beta(t)
    }
    fn diffusion(&self, t: f64) -> f64 {
        self.beta.beta(t).sqrt()
    }
    fn mean_coef(&self, t: f64) -> f64 {
        (-0.5 * self.beta.integral(t)).exp()
    }
    fn std(&self, t: f64) -> f64 {
        (-(-self.beta.integral(t)).exp_m1()).sqrt()
    }
    fn prior_std(&self) -> f64 {
        1.0
    }
    fn t_min(&self) -> f64 {
        1e-3
    }
}

/// Sub-VP SDE (thesis B.16–B.17, B.23): f = −½β(t), g² = β(t)(1 − e^{−2B}), m = e^{−B/2},
/// s = 1 − e^{−B}, prior N(0, I), ε = 1e-3 for sampling, 1e-5 for training.
#[derive(Debug, Clone, Copy)]
pub struct SubVpSde {
    beta: LinearBeta,
}

impl SubVpSde {
    /// Requires 0 < β_min ≤ β_max.
    pub fn new(beta_min: f64, beta_max: f64) -> Result<Self> {
        Ok(Self {
            beta: LinearBeta::new(beta_min, beta_max)?,
        })
    }
}

impl Sde for SubVpSde {
    fn config(&self) -> SdeConfig {
        SdeConfig::SubVp {
            beta_min: self.beta.beta_min,
            beta_max: self.beta.beta_max,
        }
    }
    fn drift_coef(&self, t: f64) -> f64 {
        -0.5 * self.beta.beta(t)
    }
    fn diffusion(&self, t: f64) -> f64 {
        (self.beta.beta(t) * -(-2.0 * self.beta.integral(t)).exp_m1()).sqrt()
    }
    fn mean_coef(&self, t: f64) -> f64 {
        (-0.5 * self.beta.integral(t)).exp()
    }
    fn std(&self, t: f64) -> f64 {
        -(-self.beta.integral(t)).exp_m1()
    }
    fn prior_std(&self) -> f64 {
        1.0
    }
    fn t_min(&self) -> f64 {
        1e-3
    }
}

/// Geometric VP SDE of LSGM (000 App. B.3.1, Eq. 43): σ_t² = σ²_min (σ²_max/σ²_min)^t,
/// β_g(t) = ln(σ²_max/σ²_min) σ_t²/(1 − σ_t²), f = −½β_g, g² = β_g,
/// m = √((1 − σ_t²)/(1 − σ²_min)), s = σ_t, prior N(0, I). Since s(0) = σ_min > 0 the time
/// range can start at 0; ε = 1e-5 is used for both sampling and training.
#[derive(Debug, Clone, Copy)]
pub struct GeometricVpSde {
    sigma2_min: f64,
    sigma2_max: f64,
}

impl GeometricVpSde {
    /// Requires 0 < σ²_min < σ²_max < 1.
    pub fn new(sigma2_min: f64, sigma2_max: f64) -> Result<Self> {
        ensure(
            sigma2_min > 0.0 && sigma2_max > sigma2_min && sigma2_max < 1.0,
            "sigma2_min/sigma2_max",
            || format!("need 0 < sigma2_min < sigma2_max < 1, got {sigma2_min}, {sigma2_max}"),
        )?;
        Ok(Self {
            sigma2_min,
            sigma2_max,
        })
    }

    /// σ_t².
    pub fn sigma2(&self, t: f64) -> f64 {
        self.sigma2_min * (self.sigma2_max / self.sigma2_min).powf(t)
    }

    /// β_g(t) = ln(σ²_max/σ²_min) σ_t²/(1 − σ_t²).
    pub fn beta(&self, t: f64) -> f64 {
        let s2 = self.sigma2(t);
        (self.sigma2_max / self.sigma2_min).ln() * s2 / (1.0 - s2)
    }
}

impl Sde for GeometricVpSde {
    fn config(&self) -> SdeConfig {
        SdeConfig::GeometricVp {
            sigma2_min: self.sigma2_min,
            sigma2_max: self.sigma2_max,
        }
    }
    fn drift_coef(&self, t: f64) -> f64 {
        -0.5 * self.beta(t)
    }
    fn diffusion(&self, t: f64) -> f64 {
        self.beta(t).sqrt()
    }
    fn mean_coef(&self, t: f64) -> f64 {
        ((1.0 - self.sigma2(t)) / (1.0 - self.sigma2_min)).sqrt()
    }
    fn std(&self, t: f64) -> f64 {
        self.sigma2(t).sqrt()
    }
    fn prior_std(&self) -> f64 {
        1.0
    }
    fn t_min(&self) -> f64 {
        1e-5
    }
}

/// The reverse-time grid t_0 = `t_max` > t_1 > … > t_n = `t_min`: n + 1 equispaced points,
/// i.e. n steps of size (t_max − t_min)/n (method digest §3 time grid, `[ext]` linspace(1, ε)).
pub fn time_grid(n: usize, t_max: f64, t_min: f64) -> Result<Vec<f64>> {
    ensure(n >= 1, "n", || "need at least one step".into())?;
    ensure(t_max > t_min, "t_max/t_min", || {
        format!("need t_max > t_min, got {t_max}, {t_min}")
    })?;
    let dt = (t_max - t_min) / n as f64;
    Ok((0..=n)
        .map(|i| if i == n { t_min } else { t_max - i as f64 * dt })
        .collect())
}
