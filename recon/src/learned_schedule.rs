//! Learned noise schedules (Kingma et al., "Variational diffusion models"; paper 002 App. A,
//! method digest §9): σ_t² = sigmoid(γ_η(t)), α_t² = sigmoid(−γ_η(t)), so
//! SNR(t) = α_t²/σ_t² = e^{−γ_η(t)}, with γ_η a monotone increasing network. The VP SDE it
//! defines has f(t) = −½σ_t²γ'(t) and g(t)² = σ_t²γ'(t) (so g²/s² = γ': likelihood-weighted
//! DSM is the continuous loss L_∞ = ½ E_t[γ'(t)‖ε − ε̂‖²]). The transition and top-down
//! posterior variances and the discrete loss L_T are written with expm1, as the paper advises,
//! so they stay accurate where γ(t) − γ(s) is tiny.

use crate::error::{ensure, Result};
use crate::sde::{Discretization, Sde, SdeConfig};
use serde::{Deserialize, Serialize};

/// Most hidden features a schedule may have (a checkpoint cannot ask for more).
pub const MAX_FEATURES: usize = 4096;
/// Largest |γ| a schedule may reach: σ² = sigmoid(±30) is 1 − 9e-14 or 9e-14.
pub const MAX_ABS_GAMMA: f64 = 30.0;

fn default_features() -> usize {
    1024
}

/// The weights η of γ_η (VDM's `NoiseNet`): with u = 2t − 1,
/// γ̃(t) = |w₁| t + (1/H) Σ_j |w₃ⱼ| (2 sigmoid(|w₂ⱼ| u + b₂ⱼ) − 1),
/// monotone increasing in t because every weight enters through its absolute value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GammaWeights {
    /// Slope of the linear part.
    pub w1: f64,
    /// Input weights of the H sigmoid features.
    pub w2: Vec<f64>,
    /// Biases of the H sigmoid features.
    pub b2: Vec<f64>,
    /// Output weights of the H sigmoid features.
    pub w3: Vec<f64>,
}

impl GammaWeights {
    /// The deterministic initial weights with `features` sigmoid features: slope 1, feature
    /// slopes |w₂| in [1, 10] and centres −b₂/|w₂| in [−1, 1] spread by a golden-ratio
    /// sequence, output weights 0.01, so γ starts almost linear in t (t uniform in log-SNR,
    /// the likelihood-weighting proposal of Huang et al. App. I).
    pub fn initial(features: usize) -> Self {
        let golden = |j: usize, k: f64| ((j as f64 + 1.0) * k).fract();
        let w2: Vec<f64> = (0..features)
            .map(|j| 1.0 + 9.0 * golden(j, 0.618_033_988_749_895))
            .collect();
        let b2 = w2
            .iter()
            .enumerate()
            .map(|(j, w)| -w * (2.0 * golden(j, 0.754_877_666_246_693) - 1.0))
            .collect();
        Self {
            w1: 1.0,
            w2,
            b2,
            w3: vec![0.01; features],
        }
    }
}

/// The serialisable learned schedule: its γ range and (once trained) its weights.
/// `weights: None` (a training configuration) means [`GammaWeights::initial`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearnedSchedule {
    /// γ(0): σ_0² = sigmoid(γ_min), the least noise (largest SNR).
    pub gamma_min: f64,
    /// γ(1): σ_1² = sigmoid(γ_max), the most noise.
    pub gamma_max: f64,
    /// Hidden features H of γ_η.
    #[serde(default = "default_features")]
    pub features: usize,
    /// The weights η; `None` before training.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<GammaWeights>,
}

impl LearnedSchedule {
    /// The γ range of a VP SDE with β(t) linear from `beta_min` to `beta_max` between times
    /// `t_min` and 1: γ = logit(1 − e^{−B(t)}) = ln(expm1(B(t))). With the VP defaults and
    /// `t_min` = 1e-5 (the training and likelihood ε of both) a learned schedule spans the SNR
    /// range of the fixed schedule it is compared with, and both likelihoods sit at the same
    /// noise level.
    pub fn vp_range(beta_min: f64, beta_max: f64, t_min: f64) -> (f64, f64) {
        let gamma = |t: f64| {
            (beta_min * t + 0.5 * t * t * (beta_max - beta_min))
                .exp_m1()
                .ln()
        };
        (gamma(t_min), gamma(1.0))
    }

    /// The weights, or the initial ones.
    pub fn weights_or_initial(&self) -> GammaWeights {
        self.weights
            .clone()
            .unwrap_or_else(|| GammaWeights::initial(self.features))
    }
}

/// γ_η evaluated in f64, normalised to the configured range:
/// γ(t) = γ_min + (γ_max − γ_min)(γ̃(t) − γ̃(0))/(γ̃(1) − γ̃(0)).
#[derive(Debug, Clone)]
pub struct GammaNet {
    spec: LearnedSchedule,
    weights: GammaWeights,
    raw0: f64,
    raw_span: f64,
}

impl GammaNet {
    /// Validates the schedule (finite values, γ_min < γ_max within ±[`MAX_ABS_GAMMA`],
    /// 1 ≤ H ≤ [`MAX_FEATURES`] and weight vectors of length H, a non-constant γ̃).
    pub fn new(spec: &LearnedSchedule) -> Result<Self> {
        let (lo, hi) = (spec.gamma_min, spec.gamma_max);
        ensure(
            lo.is_finite() && hi.is_finite() && lo < hi && lo.abs().max(hi.abs()) <= MAX_ABS_GAMMA,
            "gamma_min/gamma_max",
            || {
                format!("need -{MAX_ABS_GAMMA} <= gamma_min < gamma_max <= {MAX_ABS_GAMMA}, got {lo}, {hi}")
            },
        )?;
        ensure(
            (1..=MAX_FEATURES).contains(&spec.features),
            "features",
            || format!("need 1..={MAX_FEATURES} features, got {}", spec.features),
        )?;
        let weights = spec.weights_or_initial();
        let h = spec.features;
        ensure(
            weights.w2.len() == h && weights.b2.len() == h && weights.w3.len() == h,
            "weights",
            || {
                format!(
                    "w2/b2/w3 must have {h} entries each, got {}/{}/{}",
                    weights.w2.len(),
                    weights.b2.len(),
                    weights.w3.len()
                )
            },
        )?;
        let all = std::iter::once(&weights.w1)
            .chain(&weights.w2)
            .chain(&weights.b2)
            .chain(&weights.w3);
        ensure(all.clone().all(|w| w.is_finite()), "weights", || {
            "non-finite schedule weight".into()
        })?;
        let mut net = Self {
            spec: LearnedSchedule {
                weights: Some(weights.clone()),
                ..spec.clone()
            },
            weights,
            raw0: 0.0,
            raw_span: 1.0,
        };
        let (r0, r1) = (net.raw(0.0).0, net.raw(1.0).0);
        ensure(r1 - r0 > 1e-12 * (1.0 + r0.abs()), "weights", || {
            "the schedule network is constant in t".into()
        })?;
        net.raw0 = r0;
        net.raw_span = r1 - r0;
        Ok(net)
    }

    /// (γ̃(t), dγ̃/dt) of the unnormalised network.
    fn raw(&self, t: f64) -> (f64, f64) {
        let w = &self.weights;
        let u = 2.0 * t - 1.0;
        let (mut value, mut slope) = (0.0, 0.0);
        for ((w2, b2), w3) in w.w2.iter().zip(&w.b2).zip(&w.w3) {
            let s = sigmoid(w2.abs() * u + b2);
            value += w3.abs() * (2.0 * s - 1.0);
            slope += w3.abs() * 4.0 * s * (1.0 - s) * w2.abs();
        }
        let h = w.w2.len() as f64;
        (w.w1.abs() * t + value / h, w.w1.abs() + slope / h)
    }

    /// γ(t).
    pub fn gamma(&self, t: f64) -> f64 {
        let (lo, hi) = (self.spec.gamma_min, self.spec.gamma_max);
        lo + (hi - lo) * (self.raw(t).0 - self.raw0) / self.raw_span
    }

    /// γ'(t) = dγ/dt > 0.
    pub fn gamma_prime(&self, t: f64) -> f64 {
        (self.spec.gamma_max - self.spec.gamma_min) * self.raw(t).1 / self.raw_span
    }

    /// The schedule with its weights.
    pub fn spec(&self) -> &LearnedSchedule {
        &self.spec
    }
}

/// sigmoid(x) = 1/(1 + e^{−x}), evaluated without overflow.
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// ln sigmoid(x) = −softplus(−x), evaluated without overflow.
pub fn log_sigmoid(x: f64) -> f64 {
    -((-x).max(0.0) + (-x.abs()).exp().ln_1p())
}

/// σ²_{t|s} = σ_t² − (α_t/α_s)² σ_s² = −σ_t² expm1(γ(s) − γ(t)), the variance of
/// q(z_t | z_s) for s < t.
pub fn transition_variance(gamma_s: f64, gamma_t: f64) -> f64 {
    -sigmoid(gamma_t) * (gamma_s - gamma_t).exp_m1()
}

/// σ_Q² = σ²_{t|s} σ_s²/σ_t² = −σ_s² expm1(γ(s) − γ(t)), the variance of the top-down
/// posterior q(z_s | z_t, x) for s < t.
pub fn posterior_variance(gamma_s: f64, gamma_t: f64) -> f64 {
    -sigmoid(gamma_s) * (gamma_s - gamma_t).exp_m1()
}

/// SNR(s)/SNR(t) − 1 = expm1(γ(t) − γ(s)), the weight of step s → t in the discrete loss.
pub fn discrete_weight(gamma_s: f64, gamma_t: f64) -> f64 {
    (gamma_t - gamma_s).exp_m1()
}

/// The discrete diffusion loss L_T = (T/2) E_{i~U{1..T}}[expm1(γ(t_i) − γ(s_i)) e(t_i)] with
/// s_i = (i−1)/T, t_i = i/T, where `error(t)` = E‖ε − ε̂(z_t; t)‖² (the expectation over i
/// taken exactly: ½ Σ_i …). As T → ∞ it tends to L_∞ = ½∫₀¹ γ'(t) e(t) dt.
pub fn discrete_loss(steps: usize, gamma: &dyn Fn(f64) -> f64, error: &dyn Fn(f64) -> f64) -> f64 {
    let t = steps as f64;
    0.5 * (1..=steps)
        .map(|i| {
            let (s, u) = ((i - 1) as f64 / t, i as f64 / t);
            discrete_weight(gamma(s), gamma(u)) * error(u)
        })
        .sum::<f64>()
}

/// γ at which samplers stop: σ_ε² = 1 − e^{−B(10⁻³)} ≈ 1.1·10⁻⁴ (σ_ε ≈ 0.0105), the noise
/// level where the default VP SDE's samplers stop (ε = 10⁻³), so that a learned and a fixed
/// schedule over the same SNR range sample down to the same noise level.
pub const SAMPLING_GAMMA_MIN: f64 = -9.115_429_865_459_795;

/// The VP SDE of a learned schedule: f(t) = −½σ_t²γ'(t), g(t)² = σ_t²γ'(t),
/// m(t) = α_t/α_0 (data at t = 0), s(t) = σ_t, prior N(0, I). Training and likelihoods start at
/// ε = 1e-5 (σ_0 > 0, as for the geometric VP); samplers stop at the time where γ reaches
/// [`SAMPLING_GAMMA_MIN`] (or at 1e-5 when the schedule starts above it). Its one-step
/// discretisation uses the expm1 transition variance.
#[derive(Debug, Clone)]
pub struct LearnedVpSde {
    net: GammaNet,
    log_alpha2_0: f64,
    t_sampling: f64,
}

impl LearnedVpSde {
    /// Builds the SDE of a validated schedule.
    pub fn new(spec: &LearnedSchedule) -> Result<Self> {
        let net = GammaNet::new(spec)?;
        let log_alpha2_0 = log_sigmoid(-net.gamma(0.0));
        // bisection for γ(t) = SAMPLING_GAMMA_MIN (γ is increasing)
        let (mut lo, mut hi) = (0.0, 1.0);
        if net.gamma(lo) < SAMPLING_GAMMA_MIN && net.gamma(hi) > SAMPLING_GAMMA_MIN {
            for _ in 0..60 {
                let mid = 0.5 * (lo + hi);
                if net.gamma(mid) < SAMPLING_GAMMA_MIN {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
        }
        Ok(Self {
            net,
            log_alpha2_0,
            t_sampling: lo.max(1e-5),
        })
    }

    /// The schedule γ_η.
    pub fn gamma_net(&self) -> &GammaNet {
        &self.net
    }
}

impl Sde for LearnedVpSde {
    fn config(&self) -> SdeConfig {
        SdeConfig::Learned(self.net.spec().clone())
    }
    fn drift_coef(&self, t: f64) -> f64 {
        -0.5 * sigmoid(self.net.gamma(t)) * self.net.gamma_prime(t)
    }
    fn diffusion(&self, t: f64) -> f64 {
        (sigmoid(self.net.gamma(t)) * self.net.gamma_prime(t)).sqrt()
    }
    fn mean_coef(&self, t: f64) -> f64 {
        (0.5 * (log_sigmoid(-self.net.gamma(t)) - self.log_alpha2_0)).exp()
    }
    fn std(&self, t: f64) -> f64 {
        sigmoid(self.net.gamma(t)).sqrt()
    }
    fn prior_std(&self) -> f64 {
        1.0
    }
    fn t_min(&self) -> f64 {
        self.t_sampling
    }
    fn discretize(&self, t: f64, t_prev: f64) -> Discretization {
        let (gs, gt) = (self.net.gamma(t_prev), self.net.gamma(t));
        let a = (0.5 * (log_sigmoid(-gt) - log_sigmoid(-gs))).exp();
        Discretization {
            f: a - 1.0,
            g: transition_variance(gs, gt).max(0.0).sqrt(),
        }
    }
}
