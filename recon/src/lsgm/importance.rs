//! Weightings of the score-matching objective and the importance sampling of t
//! (LSGM §3.3–3.4, Table 1, App. B.2–B.4; method digest §7.3–7.4).
//!
//! For Normal latents q(z₀) = N(0, (1 − σ₀²) I) and the exact (Normal) ε-model the per-dimension
//! loss is E‖ε − ε_θ‖²/D = h(t) := 1 − σ_t²/σ̃_t² (App. B.2, Eq. 24–27), so the minimum-variance
//! proposal for ∫ w(t) ℓ(t) dt is r(t) ∝ w(t) h(t). Each (SDE, weighting) pair has a closed-form
//! antiderivative Φ(t) of w h, so R(t) = (Φ(t) − Φ(ε))/Z with Z = Φ(1) − Φ(ε), the inverse CDF
//! is t = Φ⁻¹(Φ(ε) + ρ Z), and the IS weight is w(t)/r(t) = Z/h(t). This reproduces every row of
//! the digest's §7.4 table:
//! - VP, w_ll: Φ = ln σ_t², t = var⁻¹((σ₁²)^ρ (σ_ε²)^{1−ρ}), w/r = ln(σ₁²/σ_ε²)/(1 − σ_t²) (Eq. 45–47).
//! - VP, w_un: Φ = A erf(√((β₁−β₀)/2)(t + β₀/(β₁−β₀))) with the **corrected** normaliser
//!   A = exp(β₀²/(2(β₁ − β₀))) √(π/(2(β₁ − β₀))) (Eq. 52 prints exp(½ β₀/(β₁ − β₀))),
//!   inverse by erfinv (Eq. 55), w/r = R̃/(1 − σ_t²) (Eq. 56).
//! - VP and geometric VP, w_re: Φ = σ_t², t = var⁻¹((1 − ρ) σ_ε² + ρ σ₁²), w/r = (σ₁² − σ_ε²)/(1 − σ_t²) (Eq. 58–59).
//! - geometric VP, w_ll: Φ = ln σ_t² is linear in t, so r is uniform (App. B.3.1).
//! - geometric VP, w_un (not derived in the paper): Φ = t − σ_t²/ln(σ²_max/σ²_min), inverted by bisection.
//! - VE, w_ll and w_un: Φ = ln(σ_t²/σ̃_t²) (÷ ln(σ²_max/σ²_min) for w_un), inverse Eq. 68,
//!   w/r = R̃ σ̃_t²/(1 − σ²_min) (÷ ln(σ²_max/σ²_min) for w_un) (Eq. 66–69).
//! - VE, w_re: Φ = (1 − σ²_min) ln σ̃_t², t = var̃⁻¹((σ̃_ε²)^{1−ρ}(σ̃₁²)^ρ), w/r = ln(σ̃₁²/σ̃_ε²) σ̃_t²
//!   (Eq. 73, with the tildes that Eq. 74's derivation needs).

use super::schedule::{Kind, LatentSchedule};
use crate::error::{ensure, Result};
use crate::noise::Noise;
use crate::sde::SdeConfig;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

/// The weighting w(t) of the score-matching objective ½ ∫ w(t) E‖ε − ε_θ(z_t, t)‖² dt
/// (LSGM Table 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Weighting {
    /// w_ll = g(t)²/σ_t² (maximum likelihood; always used for the encoder, Eq. 8).
    Likelihood,
    /// w_un = 1 (the unweighted DDPM-style objective).
    Unweighted,
    /// w_re = g(t)² (drops only 1/σ_t²).
    Reweighted,
}

impl Weighting {
    /// w(t) for the given schedule.
    pub fn weight(self, schedule: &LatentSchedule, t: f64) -> f64 {
        match self {
            Self::Likelihood => schedule.g2(t) / schedule.var(t),
            Self::Unweighted => 1.0,
            Self::Reweighted => schedule.g2(t),
        }
    }
}

/// How t is drawn on [ε, 1].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeProposal {
    /// t ~ U[ε, 1].
    Uniform,
    /// t ~ r(t) ∝ w(t) h(t), the minimum-variance proposal for Normal latents (App. B).
    Importance,
}

/// Draws t for the objective ½ ∫_ε^1 w(t) ℓ(t) dt = E_{t~r}[(w(t)/(2 r(t))) ℓ(t)] and gives the
/// IS weights w(t)/r(t).
#[derive(Debug)]
pub struct TimeSampler {
    schedule: LatentSchedule,
    weighting: Weighting,
    proposal: TimeProposal,
    t_min: f64,
    phi_min: f64,
    norm: f64,
}

impl TimeSampler {
    /// A sampler on [t_min, 1] for `weighting` under the SDE `config` (VP, geometric VP or VE).
    /// t_min = 0 is allowed when σ₀² > 0 (geometric VP, VE).
    pub fn new(
        config: &SdeConfig,
        weighting: Weighting,
        proposal: TimeProposal,
        t_min: f64,
    ) -> Result<Self> {
        let schedule = LatentSchedule::new(config)?;
        ensure((0.0..1.0).contains(&t_min), "t_min", || {
            format!("need 0 <= t_min < 1, got {t_min}")
        })?;
        ensure(schedule.var(t_min) > 0.0, "t_min", || {
            "sigma_t^2 vanishes at t_min; use t_min > 0 for the linear VPSDE".into()
        })?;
        if proposal == TimeProposal::Importance && weighting == Weighting::Unweighted {
            if let Kind::Vp { beta_min, beta_max } = schedule.kind() {
                ensure(beta_max > beta_min, "beta_max", || {
                    "importance sampling for w_un needs beta_max > beta_min".into()
                })?;
            }
        }
        let mut sampler = Self {
            schedule,
            weighting,
            proposal,
            t_min,
            phi_min: 0.0,
            norm: 1.0 - t_min,
        };
        if proposal == TimeProposal::Importance {
            sampler.phi_min = sampler.phi(t_min);
            sampler.norm = sampler.phi(1.0) - sampler.phi_min;
        }
        Ok(sampler)
    }

    /// The latent schedule (and through it the SDE).
    pub fn schedule(&self) -> &LatentSchedule {
        &self.schedule
    }

    /// The weighting w(t) this sampler targets.
    pub fn weighting(&self) -> Weighting {
        self.weighting
    }

    /// Uniform or importance sampling.
    pub fn proposal(&self) -> TimeProposal {
        self.proposal
    }

    /// The lower time cutoff ε.
    pub fn t_min(&self) -> f64 {
        self.t_min
    }

    /// h(t) = 1 − σ_t²/σ̃_t², the per-dimension loss of the exact Normal model (App. B.2).
    pub fn normal_loss(&self, t: f64) -> f64 {
        let s = &self.schedule;
        if s.variance_preserving() {
            // σ̃² = 1 exactly; 1 − σ² = (1 − σ₀²) m² avoids the cancellation near t = 1.
            (1.0 - s.var0()) * s.sde().mean_coef(t).powi(2)
        } else {
            1.0 - s.var(t) / s.var_tilde(t)
        }
    }

    /// The proposal density r(t) on [ε, 1] (0 outside).
    pub fn density(&self, t: f64) -> f64 {
        if !(self.t_min..=1.0).contains(&t) {
            return 0.0;
        }
        match self.proposal {
            TimeProposal::Uniform => 1.0 / (1.0 - self.t_min),
            TimeProposal::Importance => {
                self.weighting.weight(&self.schedule, t) * self.normal_loss(t) / self.norm
            }
        }
    }

    /// The proposal CDF R(t).
    pub fn cdf(&self, t: f64) -> f64 {
        let t = t.clamp(self.t_min, 1.0);
        match self.proposal {
            TimeProposal::Uniform => (t - self.t_min) / (1.0 - self.t_min),
            TimeProposal::Importance => (self.phi(t) - self.phi_min) / self.norm,
        }
    }

    /// The inverse CDF t = R⁻¹(ρ), ρ ∈ [0, 1].
    pub fn inverse_cdf(&self, rho: f64) -> f64 {
        let rho = rho.clamp(0.0, 1.0);
        let t = match self.proposal {
            TimeProposal::Uniform => self.t_min + rho * (1.0 - self.t_min),
            TimeProposal::Importance => self.phi_inv(self.phi_min + rho * self.norm),
        };
        t.clamp(self.t_min, 1.0)
    }

    /// The IS weight w(t)/r(t) of this sampler's weighting (multiplies ½‖ε − ε_θ‖²).
    pub fn weight(&self, t: f64) -> f64 {
        self.weight_for(self.weighting, t)
    }

    /// The IS weight w'(t)/r(t) of another weighting w' with t drawn from this proposal (the
    /// "rew." option of LSGM Alg. 3: the encoder's w_ll term reuses the prior's t samples).
    pub fn weight_for(&self, weighting: Weighting, t: f64) -> f64 {
        weighting.weight(&self.schedule, t) / self.density(t)
    }

    /// Draws `n` times by inverse-transform sampling from the seeded stream.
    pub fn sample(&self, n: usize, noise: &mut Noise) -> Vec<f64> {
        (0..n)
            .map(|_| self.inverse_cdf(noise.rng().random::<f64>()))
            .collect()
    }

    /// The antiderivative Φ of w(t) h(t) (see the module docs).
    fn phi(&self, t: f64) -> f64 {
        let s = &self.schedule;
        let log_ratio = || (s.var(t) / s.var_tilde(t)).ln();
        match (self.weighting, s.kind()) {
            (Weighting::Likelihood, _) => log_ratio(),
            (Weighting::Unweighted, Kind::Vp { beta_min, beta_max }) => {
                let e = ErfForm::new(beta_min, beta_max);
                e.amplitude * libm::erf(e.scale * (t + e.shift))
            }
            (Weighting::Unweighted, Kind::GeometricVp { ln_ratio, .. }) => t - s.var(t) / ln_ratio,
            (Weighting::Unweighted, Kind::Ve { ln_ratio, .. }) => log_ratio() / ln_ratio,
            (Weighting::Reweighted, Kind::Vp { .. } | Kind::GeometricVp { .. }) => s.var(t),
            (Weighting::Reweighted, Kind::Ve { .. }) => (1.0 - s.var0()) * s.var_tilde(t).ln(),
        }
    }

    /// Φ⁻¹ (see the module docs).
    fn phi_inv(&self, phi: f64) -> f64 {
        let s = &self.schedule;
        // σ_t² from u = σ_t²/σ̃_t²: u itself for VP SDEs, (1 − σ²_min) u/(1 − u) for VE.
        let var_from_ratio = |u: f64| {
            if s.variance_preserving() {
                u
            } else {
                (1.0 - s.var0()) * u / (1.0 - u)
            }
        };
        match (self.weighting, s.kind()) {
            (Weighting::Likelihood, _) => s.var_inv(var_from_ratio(phi.exp())),
            (Weighting::Unweighted, Kind::Vp { beta_min, beta_max }) => {
                let e = ErfForm::new(beta_min, beta_max);
                erfinv(phi / e.amplitude) / e.scale - e.shift
            }
            (Weighting::Unweighted, Kind::GeometricVp { .. }) => {
                bisect(|t| self.phi(t), phi, self.t_min, 1.0)
            }
            (Weighting::Unweighted, Kind::Ve { ln_ratio, .. }) => {
                s.var_inv(var_from_ratio((phi * ln_ratio).exp()))
            }
            (Weighting::Reweighted, Kind::Vp { .. } | Kind::GeometricVp { .. }) => s.var_inv(phi),
            (Weighting::Reweighted, Kind::Ve { .. }) => {
                let var_tilde = (phi / (1.0 - s.var0())).exp();
                s.var_inv(var_tilde - (1.0 - s.var0()))
            }
        }
    }
}

/// ∫ e^{−B(t)} dt = A erf(c (t + b)) for the linear VPSDE (LSGM Eq. 52, normaliser corrected):
/// c = √((β₁ − β₀)/2), b = β₀/(β₁ − β₀), A = exp(β₀²/(2(β₁ − β₀))) √(π/(2(β₁ − β₀))).
struct ErfForm {
    amplitude: f64,
    scale: f64,
    shift: f64,
}

impl ErfForm {
    fn new(b0: f64, b1: f64) -> Self {
        let slope = b1 - b0;
        Self {
            amplitude: (b0 * b0 / (2.0 * slope)).exp() * (PI / (2.0 * slope)).sqrt(),
            scale: (slope / 2.0).sqrt(),
            shift: b0 / slope,
        }
    }
}

/// Inverse error function on (−1, 1): Giles' (2010) single-precision approximation refined by
/// Newton steps on `libm::erf`.
fn erfinv(y: f64) -> f64 {
    if y <= -1.0 {
        return f64::NEG_INFINITY;
    }
    if y >= 1.0 {
        return f64::INFINITY;
    }
    let w = -((1.0 - y) * (1.0 + y)).ln();
    let mut x = if w < 5.0 {
        let w = w - 2.5;
        let p = [
            2.810_226_36e-08,
            3.432_739_39e-07,
            -3.523_387_7e-06,
            -4.391_506_54e-06,
            0.000_218_580_87,
            -0.001_253_725_03,
            -0.004_177_681_64,
            0.246_640_727,
            1.501_409_41,
        ];
        p.iter().fold(0.0, |acc, c| acc * w + c) * y
    } else {
        let w = w.sqrt() - 3.0;
        let p = [
            -0.000_200_214_257,
            0.000_100_950_558,
            0.001_349_343_22,
            -0.003_673_428_44,
            0.005_739_507_73,
            -0.007_622_461_3,
            0.009_438_870_47,
            1.001_674_06,
            2.832_976_82,
        ];
        p.iter().fold(0.0, |acc, c| acc * w + c) * y
    };
    for _ in 0..3 {
        let slope = 2.0 / PI.sqrt() * (-x * x).exp();
        if slope == 0.0 {
            break;
        }
        x -= (libm::erf(x) - y) / slope;
    }
    x
}

/// The t in [lo, hi] with f(t) = target for an increasing f (bisection to machine precision).
fn bisect(f: impl Fn(f64) -> f64, target: f64, mut lo: f64, mut hi: f64) -> f64 {
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if f(mid) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}
