//! The continuous-time ELBO of the plug-in reverse SDE (Huang, Lim & Courville 2021, Eq. 25;
//! thesis Thm 9.3; method digest §9) and its importance sampling in time (ibid. App. I).
//!
//! The generative model is the reverse SDE dx = [f(t) x − g(t)² s_θ(x, t)] dt + g(t) dw̄ started
//! from the prior π at T and read at time ε. Its inference process is the forward SDE started at
//! Y_ε = x, whose law is known in closed form: Y_t = a(t) x + b(t) z with the transition kernel
//! (a, b) of [`Sde::discretize`]`(t, ε)` — the SDE is solved exactly. Girsanov and Jensen give
//! for every data point x
//!
//! log p_ε(x) ≥ E^∞(x) = E[log π(Y_T)] + D ln(m(T)/m(ε))
//!                      − ∫_ε^T E[½ g(t)² ‖s_θ(Y_t, t)‖² + g(t)² ∇·s_θ(Y_t, t)] dt,
//!
//! (the middle term is −∫ ∇·(−f x) dt = D ∫ f), with equality when s_θ is the score of the
//! generative model's own marginals (the gap is ½ ∫ g² E‖s_θ − ∇log p̂_t‖² dt). The first two
//! terms are closed forms; the time integral is estimated by Monte Carlo: t from a proposal r,
//! one draw of Y_t, the divergence by the Hutchinson–Skilling estimate vᵀ(∂s_θ/∂x)v (one
//! backward pass) or the exact trace (tiny dimensions), each term weighted by 1/r(t).
//!
//! The proposal: uniform on [ε, T], or the truncated likelihood-weighting density of App. I,
//! r(t) ∝ g(t)²/s(t)² for t ≥ τ and g(τ)²/s(τ)² below τ. Since ds²/dt = 2 f s² + g²,
//! g²/s² = d/dt ln(s²/m²): the antiderivative is Φ(t) = ln(s(t)²/m(t)²) = −log SNR(t) in
//! closed form for every SDE (VP: ln(e^{B(t)} − 1), the φ of App. I; VE: linear in t, so the
//! proposal is uniform there) and the proposal is "uniform in log-SNR" above τ.

use crate::batch::{per_sample, sample_dim};
use crate::error::{ensure, ReconError, Result};
use crate::likelihood::{value_and_divergence, TraceEstimator};
use crate::noise::Noise;
use crate::score::ScoreModel;
use crate::sde::Sde;
use candle_core::{DType, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// How the time of each Monte-Carlo term is drawn on [ε, T].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TimeProposal {
    /// Uniform on [ε, T].
    Uniform,
    /// The truncated likelihood-weighting proposal q̃_τ of Huang et al. App. I:
    /// r(t) ∝ g(t)²/s(t)² above `truncation` τ, constant below.
    Likelihood {
        /// τ (clamped to [ε, T]).
        truncation: f64,
    },
}

/// The proposal density r on [ε, T] with its inverse CDF.
#[derive(Debug, Clone)]
pub struct TimeDensity {
    eps: f64,
    t_max: f64,
    kind: TimeDensityKind,
}

#[derive(Debug, Clone)]
enum TimeDensityKind {
    Uniform,
    /// q(t) = g²/s² with antiderivative Φ above τ; flat q(τ) on [ε, τ).
    Likelihood {
        tau: f64,
        q_tau: f64,
        phi_tau: f64,
        /// Mass of the flat part, (τ − ε) q(τ).
        flat: f64,
        /// Normaliser Z = flat + Φ(T) − Φ(τ).
        z: f64,
    },
}

/// Φ(t) = ln(s(t)²/m(t)²) = −log SNR(t), an antiderivative of g(t)²/s(t)².
fn neg_log_snr(sde: &dyn Sde, t: f64) -> f64 {
    2.0 * (sde.std(t).ln() - sde.mean_coef(t).ln())
}

impl TimeDensity {
    /// The proposal on [ε, T] = [`eps`, [`Sde::t_max`]].
    pub fn new(sde: &dyn Sde, proposal: TimeProposal, eps: f64) -> Result<Self> {
        let t_max = sde.t_max();
        ensure(eps > 0.0 && eps < t_max, "t_min", || {
            format!("need 0 < ε < T = {t_max}, got {eps}")
        })?;
        let kind = match proposal {
            TimeProposal::Uniform => TimeDensityKind::Uniform,
            TimeProposal::Likelihood { truncation } => {
                ensure(truncation.is_finite(), "truncation", || {
                    format!("the truncation time must be finite, got {truncation}")
                })?;
                let tau = truncation.clamp(eps, t_max);
                let q_tau = sde.diffusion(tau).powi(2) / sde.std(tau).powi(2);
                let phi_tau = neg_log_snr(sde, tau);
                let flat = (tau - eps) * q_tau;
                let z = flat + neg_log_snr(sde, t_max) - phi_tau;
                if !(q_tau.is_finite() && q_tau > 0.0 && z.is_finite() && z > 0.0) {
                    return Err(ReconError::Numerical {
                        what: "likelihood-weighting proposal",
                        reason: format!("g²/s² = {q_tau} at τ = {tau}, normaliser {z}"),
                    });
                }
                TimeDensityKind::Likelihood {
                    tau,
                    q_tau,
                    phi_tau,
                    flat,
                    z,
                }
            }
        };
        Ok(Self { eps, t_max, kind })
    }

    /// r(t) for t in [ε, T].
    pub fn density(&self, sde: &dyn Sde, t: f64) -> f64 {
        match &self.kind {
            TimeDensityKind::Uniform => 1.0 / (self.t_max - self.eps),
            TimeDensityKind::Likelihood { tau, q_tau, z, .. } => {
                if t < *tau {
                    q_tau / z
                } else {
                    sde.diffusion(t).powi(2) / sde.std(t).powi(2) / z
                }
            }
        }
    }

    /// R(t) = ∫_ε^t r.
    pub fn cdf(&self, sde: &dyn Sde, t: f64) -> f64 {
        let t = t.clamp(self.eps, self.t_max);
        match &self.kind {
            TimeDensityKind::Uniform => (t - self.eps) / (self.t_max - self.eps),
            TimeDensityKind::Likelihood {
                tau,
                q_tau,
                phi_tau,
                flat,
                z,
            } => {
                if t < *tau {
                    (t - self.eps) * q_tau / z
                } else {
                    (flat + neg_log_snr(sde, t) - phi_tau) / z
                }
            }
        }
    }

    /// R⁻¹(u) for u in [0, 1]: closed form on the flat part, bisection on the monotone Φ above τ.
    pub fn inverse_cdf(&self, sde: &dyn Sde, u: f64) -> f64 {
        let u = u.clamp(0.0, 1.0);
        match &self.kind {
            TimeDensityKind::Uniform => self.eps + u * (self.t_max - self.eps),
            TimeDensityKind::Likelihood {
                tau,
                q_tau,
                phi_tau,
                flat,
                z,
            } => {
                let mass = u * z;
                if mass < *flat {
                    return self.eps + mass / q_tau;
                }
                let target = phi_tau + mass - flat;
                let (mut lo, mut hi) = (*tau, self.t_max);
                for _ in 0..200 {
                    let mid = 0.5 * (lo + hi);
                    if mid <= lo || mid >= hi {
                        break;
                    }
                    if neg_log_snr(sde, mid) < target {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                0.5 * (lo + hi)
            }
        }
    }
}

/// Parameters of [`elbo`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ElboConfig {
    /// Monte-Carlo terms (t, Y_t, v) per data point.
    pub draws: usize,
    /// Proposal of t.
    pub proposal: TimeProposal,
    /// Divergence estimator (Rademacher, Gaussian or the exact trace).
    pub estimator: TraceEstimator,
    /// Time ε at which the data sit; `None` uses [`Sde::t_min_train`] (as the ODE likelihood).
    pub t_min: Option<f64>,
    /// Seed of every draw.
    pub seed: u64,
    /// Added to bits/dim (as [`crate::likelihood::LikelihoodConfig::bpd_offset`]).
    pub bpd_offset: f64,
}

impl Default for ElboConfig {
    /// 64 draws per point, the likelihood-weighting proposal truncated at τ = 1e-3 (App. I),
    /// Rademacher probes.
    fn default() -> Self {
        Self {
            draws: 64,
            proposal: TimeProposal::Likelihood { truncation: 1e-3 },
            estimator: TraceEstimator::Rademacher,
            t_min: None,
            seed: 0,
            bpd_offset: 0.0,
        }
    }
}

/// Per-sample results of [`elbo`].
#[derive(Debug, Clone)]
pub struct Elbo {
    /// E^∞(x) in nats (the Monte-Carlo mean).
    pub elbo: Vec<f64>,
    /// Standard error of `elbo` (std of the terms / √draws).
    pub std_error: Vec<f64>,
    /// −E^∞/(D ln 2) + offset: an upper bound on the bits/dim of x under the reverse SDE.
    pub bits_per_dim: Vec<f64>,
    /// Standard error of `bits_per_dim`.
    pub bpd_std_error: Vec<f64>,
    /// The closed-form part E[log π(Y_T)] + D ln(m(T)/m(ε)) per sample.
    pub closed_form: Vec<f64>,
    /// Per sample, the importance-weighted Monte-Carlo terms ℓ_k/r(t_k) whose mean is the time
    /// integral (for variance comparisons of proposals).
    pub terms: Vec<Vec<f64>>,
    /// Score evaluations (each with one backward pass; D of them per draw for the exact trace).
    pub nfe: usize,
}

/// The ELBO E^∞(x) of every sample of x: `[B, ...]` (see the module documentation).
pub fn elbo(
    sde: &dyn Sde,
    score: &dyn ScoreModel,
    x: &Tensor,
    config: &ElboConfig,
) -> Result<Elbo> {
    let (b, d) = (x.dim(0)?, sample_dim(x));
    ensure(b > 0 && d > 0, "x", || {
        format!("need a non-empty batch, got {:?}", x.dims())
    })?;
    ensure(config.draws >= 2, "draws", || {
        format!(
            "need at least 2 draws for a standard error, got {}",
            config.draws
        )
    })?;
    let eps = config.t_min.unwrap_or_else(|| sde.t_min_train());
    let t_max = sde.t_max();
    let density = TimeDensity::new(sde, config.proposal, eps)?;
    let df = d as f64;

    // Closed forms: Y_T = a_T x + b_T z ⇒ E‖Y_T‖² = a_T²‖x‖² + b_T² D.
    let kernel_t = sde.discretize(t_max, eps);
    let var_pi = sde.prior_std().powi(2);
    let drift_term = df * (sde.mean_coef(t_max) / sde.mean_coef(eps)).ln();
    let closed_form: Vec<f64> = crate::batch::sample_norms(x)?
        .iter()
        .map(|n| {
            let e_norm2 = kernel_t.a().powi(2) * n * n + kernel_t.g.powi(2) * df;
            -0.5 * df * (2.0 * std::f64::consts::PI * var_pi).ln() - e_norm2 / (2.0 * var_pi)
                + drift_term
        })
        .collect();

    let mut noise = Noise::new(config.seed);
    let mut terms = vec![Vec::with_capacity(config.draws); b];
    let mut nfe = 0;
    for _ in 0..config.draws {
        let ts: Vec<f64> = (0..b)
            .map(|_| density.inverse_cdf(sde, noise.rng().random::<f64>()))
            .collect();
        let (a, s): (Vec<f64>, Vec<f64>) = ts
            .iter()
            .map(|&t| {
                let k = sde.discretize(t, eps);
                (k.a(), k.g)
            })
            .unzip();
        let z = noise.randn_like(x)?;
        let y = (x.broadcast_mul(&per_sample(&a, x)?)? + z.broadcast_mul(&per_sample(&s, x)?)?)?;
        let t_tensor = Tensor::from_vec(
            ts.iter().map(|&t| t as f32).collect::<Vec<_>>(),
            b,
            x.device(),
        )?;
        let probe = match config.estimator {
            TraceEstimator::Rademacher => Some(noise.rademacher_like(x)?),
            TraceEstimator::Gaussian => Some(noise.randn_like(x)?),
            TraceEstimator::Exact => None,
        };
        let (s_theta, div) =
            value_and_divergence(&y, probe.as_ref(), |y| Ok(score.score(y, &t_tensor)?))?;
        nfe += match config.estimator {
            TraceEstimator::Exact => d,
            _ => 1,
        };
        let half_norm2 = s_theta
            .flatten_from(1)?
            .to_dtype(DType::F64)?
            .sqr()?
            .sum(1)?
            .affine(0.5, 0.0)?
            .to_vec1::<f64>()?;
        let div = div.to_dtype(DType::F64)?.to_vec1::<f64>()?;
        for (i, &t) in ts.iter().enumerate() {
            let g2 = sde.diffusion(t).powi(2);
            let term = g2 * (half_norm2[i] + div[i]) / density.density(sde, t);
            if !term.is_finite() {
                return Err(ReconError::Numerical {
                    what: "ELBO",
                    reason: format!("non-finite integrand at t = {t} for sample {i}"),
                });
            }
            terms[i].push(term);
        }
    }
    let n = config.draws as f64;
    let ln2d = df * std::f64::consts::LN_2;
    let mut out = Elbo {
        elbo: Vec::with_capacity(b),
        std_error: Vec::with_capacity(b),
        bits_per_dim: Vec::with_capacity(b),
        bpd_std_error: Vec::with_capacity(b),
        closed_form,
        terms,
        nfe,
    };
    for i in 0..b {
        let (mean, var) = mean_var(&out.terms[i]);
        let value = out.closed_form[i] - mean;
        let se = (var / n).sqrt();
        out.elbo.push(value);
        out.std_error.push(se);
        out.bits_per_dim.push(-value / ln2d + config.bpd_offset);
        out.bpd_std_error.push(se / ln2d);
    }
    Ok(out)
}

/// Mean and unbiased sample variance.
pub fn mean_var(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var)
}
