//! Variances of the latent diffusion (LSGM App. B): the perturbation-kernel variance σ_t², the
//! variance σ̃_t² of diffused standard-Normal data (Eq. 19) and the inverse var⁻¹ of σ_t².
//!
//! LSGM assumes that the diffusion starts with variance σ₀² (σ₀² = 0 for the linear VPSDE,
//! σ²_min for the geometric VPSDE and the VESDE), so data N(0, (1 − σ₀²) I) has the marginal
//! N(0, σ̃_t² I) with σ̃_t² = σ_t² + (1 − σ₀²) m(t)² (App. B.1, Remark): σ̃_t² = 1 for both
//! VPSDEs and σ̃_t² = 1 − σ²_min + σ_t² for the VESDE (Eq. 63).

use crate::error::{ensure, ReconError, Result};
use crate::sde::{Sde, SdeConfig};

/// The SDEs that have LSGM importance-sampling schedules (no IS is derived for sub-VP,
/// App. B.5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    /// Linear β(t) = β₀ + (β₁ − β₀) t, σ_t² = 1 − e^{−B(t)}.
    Vp { beta_min: f64, beta_max: f64 },
    /// σ_t² = σ²_min (σ²_max/σ²_min)^t, σ̃_t² = 1.
    GeometricVp { sigma2_min: f64, ln_ratio: f64 },
    /// σ_t² = σ²_min (σ²_max/σ²_min)^t, σ̃_t² = 1 − σ²_min + σ_t².
    Ve { sigma2_min: f64, ln_ratio: f64 },
}

/// A latent diffusion with the closed forms that LSGM's variance reduction needs; the marginal
/// coefficients come from the wrapped [`Sde`].
#[derive(Debug)]
pub struct LatentSchedule {
    sde: Box<dyn Sde>,
    kind: Kind,
}

impl LatentSchedule {
    /// Builds the schedule of a VP, geometric-VP or VE [`SdeConfig`] (sub-VP and learned schedules are rejected).
    pub fn new(config: &SdeConfig) -> Result<Self> {
        let kind = match *config {
            SdeConfig::Vp { beta_min, beta_max } => Kind::Vp { beta_min, beta_max },
            SdeConfig::GeometricVp {
                sigma2_min,
                sigma2_max,
            } => Kind::GeometricVp {
                sigma2_min,
                ln_ratio: (sigma2_max / sigma2_min).ln(),
            },
            SdeConfig::Ve {
                sigma_min,
                sigma_max,
            } => Kind::Ve {
                sigma2_min: sigma_min * sigma_min,
                ln_ratio: 2.0 * (sigma_max / sigma_min).ln(),
            },
            SdeConfig::SubVp { .. } | SdeConfig::Learned(_) => {
                return Err(ReconError::Param {
                    name: "sde",
                    reason: "LSGM variance reduction is derived for VP, geometric VP and VE \
                             SDEs only (no sub-VP or learned schedule, LSGM App. B.5)"
                        .into(),
                })
            }
        };
        if let Kind::Ve { sigma2_min, .. } = kind {
            ensure(sigma2_min < 1.0, "sigma_min", || {
                format!(
                    "LSGM's VESDE needs sigma_min < 1, got {}",
                    sigma2_min.sqrt()
                )
            })?;
        }
        Ok(Self {
            sde: config.build()?,
            kind,
        })
    }

    /// The SDE (for perturbing latents and for the samplers).
    pub fn sde(&self) -> &dyn Sde {
        self.sde.as_ref()
    }

    /// The SDE's parameters.
    pub fn config(&self) -> SdeConfig {
        self.sde.config()
    }

    /// σ_t², the variance of the perturbation kernel q(z_t | z₀).
    pub fn var(&self, t: f64) -> f64 {
        self.sde.std(t).powi(2)
    }

    /// σ₀² = σ_t² at t = 0 (0 for the linear VPSDE, σ²_min otherwise).
    pub fn var0(&self) -> f64 {
        self.var(0.0)
    }

    /// σ̃_t² = σ_t² + (1 − σ₀²) m(t)², the variance at time t of data N(0, (1 − σ₀²) I)
    /// (LSGM Eq. 19 and the Remark of App. B.1).
    pub fn var_tilde(&self, t: f64) -> f64 {
        self.var(t) + (1.0 - self.var0()) * self.sde.mean_coef(t).powi(2)
    }

    /// g(t)².
    pub fn g2(&self, t: f64) -> f64 {
        self.sde.diffusion(t).powi(2)
    }

    /// var⁻¹: the time t with σ_t² = v (v in [σ₀², σ²(∞)); not clamped to [0, 1]).
    /// Linear VP: t = B⁻¹(−ln(1 − v)) with B⁻¹(b) = (−β₀ + √(β₀² + 2(β₁ − β₀) b))/(β₁ − β₀)
    /// (digest §7.4); geometric VP and VE: t = ln(v/σ²_min)/ln(σ²_max/σ²_min).
    pub fn var_inv(&self, v: f64) -> f64 {
        match self.kind {
            Kind::Vp { beta_min, beta_max } => {
                let b = -(-v).ln_1p();
                let slope = beta_max - beta_min;
                if slope > 0.0 {
                    2.0 * b / (beta_min + (beta_min * beta_min + 2.0 * slope * b).sqrt())
                } else {
                    b / beta_min
                }
            }
            Kind::GeometricVp {
                sigma2_min,
                ln_ratio,
            }
            | Kind::Ve {
                sigma2_min,
                ln_ratio,
            } => (v / sigma2_min).ln() / ln_ratio,
        }
    }

    /// Which closed forms apply.
    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    /// Whether σ̃_t² = 1 (both VPSDEs).
    pub(crate) fn variance_preserving(&self) -> bool {
        !matches!(self.kind, Kind::Ve { .. })
    }
}
