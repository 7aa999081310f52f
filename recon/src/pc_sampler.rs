//! Predictor–corrector sampling (thesis Alg. B.3; method digest §3.7–3.8).
//!
//! Order per step (the `[ext]` score_sde order, digest §11 item 2): on the grid
//! t_0 = T > t_1 > … > t_N = ε, step i applies M corrector steps at t_i, then the predictor
//! t_i → t_{i+1}. The sample ends with one Tweedie denoising step at ε, so
//! NFE = N·(M + 1) + 1 for a score-evaluating predictor and corrector. A [`StepHook`] sees x
//! before every corrector step, every predictor step and the final denoise, which is where
//! inverse-problem solvers inject a data-consistency projection (thesis Alg. 8.2).

use crate::corrector::{Corrector, CorrectorKind};
use crate::denoise::tweedie_denoise;
use crate::error::{ReconError, Result};
use crate::inverse::OutOfRange;
use crate::noise::Noise;
use crate::predictor::{Predictor, PredictorKind};
use crate::score::ScoreModel;
use crate::sde::{time_grid, Sde};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

/// Parameters of the PC sampler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PcConfig {
    /// The predictor.
    pub predictor: PredictorKind,
    /// The corrector.
    pub corrector: CorrectorKind,
    /// Number of grid steps N.
    pub steps: usize,
    /// Corrector steps M per grid step.
    pub corrector_steps: usize,
    /// Langevin signal-to-noise ratio r.
    pub snr: f64,
    /// Seed of the prior draw and of every noise draw.
    pub seed: u64,
    /// Final time ε; `None` uses [`Sde::t_min`].
    pub t_min: Option<f64>,
    /// Start time t₀ ≤ T of the grid (the x handed to [`PcSampler::sample_from`] is taken to
    /// be a draw of p_{t₀}); `None` uses [`Sde::t_max`]. A t₀ < T is a warm start
    /// (see [`crate::inverse::InverseConfig::t_start`]).
    #[serde(default)]
    pub t_start: Option<f64>,
    /// Ends with the Tweedie step (x + s(ε)² s_θ(x, ε))/m(ε) (one extra NFE).
    pub denoise: bool,
}

/// The Langevin corrector's signal-to-noise ratio r of the thesis's VE CIFAR-10 setting
/// (Song et al. 2021, App. G), the default of every sampler and solver here.
pub const DEFAULT_SNR: f64 = 0.16;

/// The first of the grid parameters shared by every sampler and solver outside its range, or
/// `None`: steps N ∈ 1..=100 000 and Langevin r ∈ [0, ∞) finite (r = 0 turns the corrector
/// off); the upper bound keeps one call's work finite. The one definition of these ranges
/// ([`PcConfig::out_of_range`], [`crate::InverseConfig::out_of_range`] and every front end).
pub fn grid_out_of_range(steps: usize, snr: f64) -> Option<OutOfRange> {
    if !(1..=100_000).contains(&steps) {
        return Some(OutOfRange {
            field: "steps",
            range: "1..=100000",
            value: steps as f64,
        });
    }
    (!(snr.is_finite() && snr >= 0.0)).then_some(OutOfRange {
        field: "snr",
        range: "[0, ∞)",
        value: snr,
    })
}

/// Corrector steps per level of one sampler call (a bound that keeps the work finite; the
/// inverse solvers' M, whose annealed methods take M + 1 steps, is bounded lower).
pub const MAX_CORRECTOR_STEPS: usize = 1000;

impl PcConfig {
    /// The first parameter outside its range, or `None`: [`grid_out_of_range`] and corrector
    /// steps M ∈ 0..=[`MAX_CORRECTOR_STEPS`].
    pub fn out_of_range(&self) -> Option<OutOfRange> {
        grid_out_of_range(self.steps, self.snr).or_else(|| {
            (self.corrector_steps > MAX_CORRECTOR_STEPS).then_some(OutOfRange {
                field: "corrector_steps",
                range: "0..=1000",
                value: self.corrector_steps as f64,
            })
        })
    }
}

impl Default for PcConfig {
    /// Thesis defaults: reverse diffusion + Langevin, N = 1000, M = 1, r = 0.16 (VE CIFAR-10).
    fn default() -> Self {
        Self {
            predictor: PredictorKind::ReverseDiffusion,
            corrector: CorrectorKind::Langevin,
            steps: 1000,
            corrector_steps: 1,
            snr: DEFAULT_SNR,
            seed: 0,
            t_min: None,
            t_start: None,
            denoise: true,
        }
    }
}

/// Where in the PC loop a [`StepHook`] is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Before each corrector step at t_i.
    Corrector,
    /// Before the predictor step from t_i.
    Predictor,
    /// Before the final Tweedie denoising at ε (also called when `denoise` is off, on the
    /// returned x).
    Denoise,
}

/// A transformation applied to x before every P and C step (e.g. a projection onto
/// measurement-consistent images). Closures `FnMut(Stage, &Tensor, f64) -> Result<Tensor>`
/// implement it.
pub trait StepHook {
    /// Returns the x to continue with at time `t`.
    fn apply(&mut self, stage: Stage, x: &Tensor, t: f64) -> Result<Tensor>;
}

impl<F: FnMut(Stage, &Tensor, f64) -> Result<Tensor>> StepHook for F {
    fn apply(&mut self, stage: Stage, x: &Tensor, t: f64) -> Result<Tensor> {
        self(stage, x, t)
    }
}

/// The hook that leaves x unchanged (unconditional sampling).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHook;

impl StepHook for NoHook {
    fn apply(&mut self, _stage: Stage, x: &Tensor, _t: f64) -> Result<Tensor> {
        Ok(x.clone())
    }
}

/// Samples and the number of score-function evaluations used.
#[derive(Debug, Clone)]
pub struct Samples {
    /// The batch of samples.
    pub samples: Tensor,
    /// Number of (batched) score evaluations.
    pub nfe: usize,
}

/// A PC sampler with its predictor and corrector built.
pub struct PcSampler {
    config: PcConfig,
    predictor: Box<dyn Predictor>,
    corrector: Box<dyn Corrector>,
}

impl PcSampler {
    /// Builds the predictor and corrector; the grid parameters must lie in their ranges
    /// ([`PcConfig::out_of_range`]).
    pub fn new(config: PcConfig) -> Result<Self> {
        if let Some(r) = config.out_of_range() {
            return Err(ReconError::Param {
                name: r.field,
                reason: r.to_string(),
            });
        }
        let predictor = config.predictor.build()?;
        let corrector = config.corrector.build(config.snr)?;
        Ok(Self {
            config,
            predictor,
            corrector,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &PcConfig {
        &self.config
    }

    /// NFE of one run: N·(M·c + p) + d with c, p the evaluations of the corrector and
    /// predictor steps and d = 1 with denoising.
    pub fn nfe(&self) -> usize {
        let c = &self.config;
        c.steps * (c.corrector_steps * self.corrector.evaluations() + self.predictor.evaluations())
            + usize::from(c.denoise)
    }

    /// Draws x_T from the prior (seeded by `config.seed`) and runs the sampler;
    /// `progress(step, total)` is called after each of the N steps.
    pub fn sample(
        &self,
        sde: &dyn Sde,
        score: &dyn ScoreModel,
        shape: &[usize],
        device: &Device,
        hook: &mut dyn StepHook,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Samples> {
        let mut noise = Noise::new(self.config.seed);
        let x = sde.prior_sample(shape, DType::F32, device, &mut noise)?;
        self.sample_from(sde, score, x, &mut noise, hook, progress)
    }

    /// Runs the sampler from a given x at the grid's start time (T, or `config.t_start`) with a
    /// given noise stream.
    pub fn sample_from(
        &self,
        sde: &dyn Sde,
        score: &dyn ScoreModel,
        mut x: Tensor,
        noise: &mut Noise,
        hook: &mut dyn StepHook,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Samples> {
        let c = &self.config;
        let eps = c.t_min.unwrap_or_else(|| sde.t_min());
        let grid = time_grid(c.steps, c.t_start.unwrap_or_else(|| sde.t_max()), eps)?;
        for (i, w) in grid.windows(2).enumerate() {
            let (t, t_next) = (w[0], w[1]);
            for _ in 0..c.corrector_steps {
                x = hook.apply(Stage::Corrector, &x, t)?;
                x = self.corrector.step(sde, score, &x, t, t_next, noise)?.0;
            }
            x = hook.apply(Stage::Predictor, &x, t)?;
            x = self.predictor.step(sde, score, &x, t, t_next, noise)?.0;
            progress(i + 1, c.steps);
        }
        x = hook.apply(Stage::Denoise, &x, eps)?;
        if c.denoise {
            x = tweedie_denoise(sde, score, &x, eps)?;
        }
        Ok(Samples {
            samples: x,
            nfe: self.nfe(),
        })
    }
}
