//! Score-based solvers for linear inverse problems y = A x with A = P(Λ) T (thesis Ch. 8;
//! method digest §5): one unconditional score model s_θ(x, t) ≈ ∇ log p_t(x), any decomposed
//! operator (sparse-view CT with the Radon T, undersampled MRI with the unitary FFT).
//!
//! The four methods are two samplers × two ways of conditioning on y:
//!
//! | method | sampler | conditioning |
//! |---|---|---|
//! | [`InverseMethod::PcProjection`] | PC: Langevin corrector + reverse-diffusion predictor | projection k(x, ŷ_t, λ) before every step |
//! | [`InverseMethod::AldProjection`] | annealed Langevin (corrector only) | projection k(x, ŷ_t, λ) before every step |
//! | [`InverseMethod::ScoreSde`] | PC | score s_θ + ∇ₓ log N(ŷ_t; A x, (ρ s(t))²), fresh ŷ_t |
//! | [`InverseMethod::Langevin`] | annealed Langevin | score s_θ + ∇ₓ log N(m(t) y; A x, (ρ s(t))²) |
//! | [`InverseMethod::Dds`] | decomposed (Tweedie, re-noise with η) | M CG steps on (I + γAᴴA/L) x = x̂₀ + γAᴴy/L from x̂₀ |
//! | [`InverseMethod::DiffPir`] | decomposed, ε recomputed | the same step with γ_t = γ σ̄_t² |
//! | [`InverseMethod::Dps`] | reverse diffusion | x ← x − ζ ∇ₓ‖A x̂₀(x) − y‖ through the network |
//!
//! with ŷ_t = m(t) y + s(t) A z, z ~ N(0, I) drawn fresh for every use (thesis §8.3.2; m, s the
//! mean coefficient and standard deviation of the SDE's perturbation kernel, α = 1, β = σ(t)
//! for VE) and k the proximal data-consistency step of Theorem 8.1 (Eq. 8.8).
//!
//! Equal NFE: for one [`InverseConfig`] the four thesis methods spend N·(M + 1) + 1 score
//! evaluations ([`InverseConfig::nfe`]): PC does M corrector steps and one predictor step per
//! noise level, the annealed-Langevin methods do M + 1 Langevin steps per level; all end with
//! one Tweedie step. So the paper's comparison (Fig. 8.5 right) is rerun by changing only
//! `method`. The decomposed samplers ([`crate::decomposed`]) spend N evaluations (one per
//! step; the CG data step needs no network).
//!
//! Warm start ([`InverseConfig::t_start`] = t₀ < T; Chung, Sim & Ye 2022, "come closer,
//! diffuse faster"): instead of x_T ~ π the sampler starts from x_{t₀} = m(t₀) x̂ + s(t₀) z,
//! x̂ the hard projection of the zero image (the measured-data estimate), and spends its N
//! levels on [ε, t₀]. The noise at t₀ hides the estimate's artefacts while its measured part
//! is kept, and the finer grid where the image forms buys quality at equal NFE (at 128², 23
//! views, 1001 NFE: +2 dB, BENCHMARKS.md §3). t₀ = T is the paper's cold start.
//!
//! All images × K posterior samples run as one batch `[B·K, 1, H, W]` (image-major); the
//! result is the per-pixel mean and standard deviation of the K samples of each image.

use crate::batch::times;
use crate::corrector::CorrectorKind;
use crate::decomposed::{self, DecomposedConfig, Variant};
use crate::dps;
use crate::error::{ensure, ReconError, Result};
use crate::noise::Noise;
use crate::pc_sampler::{grid_out_of_range, NoHook, PcConfig, PcSampler, Stage, StepHook};
use crate::predictor::PredictorKind;
use crate::projection::{MeasuredBatch, ProjectionError};
use crate::score::ScoreModel;
use crate::sde::Sde;
use candle_core::{DType, Device, Tensor};
use medsgm_operators::{LinearOperator, Subsampled, Transform};
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

/// The score-based inverse-problem solvers of thesis Ch. 8 and its baselines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InverseMethod {
    /// "PC + Ours" (thesis Alg. 8.2 inside PC sampling, §B.6.4): before every corrector step
    /// and every predictor step x ← k(x, ŷ_t, λ) with a fresh ŷ_t = m(t) y + s(t) A z; Langevin
    /// corrector with SNR r, reverse-diffusion predictor; Tweedie denoise at ε and, for λ = 1,
    /// the hard projection k(x, y, 1) ([`hard_projection`]).
    PcProjection,
    /// "ALD + Ours": annealed Langevin dynamics (thesis Alg. 6.1, step 2α(r s(t))²) with the same
    /// projection before every Langevin step and the same ending.
    AldProjection,
    /// The "Score SDE" baseline (thesis B.5.9, Eq. B.36): PC sampling with the conditional score
    /// s_θ(x, t) + Aᴴ(ŷ_t − A x)/(ρ s(t))², ŷ_t drawn fresh for every evaluation (also in the
    /// final Tweedie step).
    ScoreSde,
    /// The "Langevin" baseline of Jalal et al. (2021) as in the paper: annealed Langevin with
    /// s_θ(x, t) + Aᴴ(m(t) y − A x)/(ρ s(t))² (no noise added to y; digest §5: the paper's
    /// variance (ρ σ_i)², not Jalal's σ_i² + γ²), also in the final Tweedie step.
    Langevin,
    /// Decomposed Diffusion Sampling (Chung, Lee & Ye, ICLR 2024; [`crate::decomposed`]):
    /// Tweedie estimate, M CG iterations of the proximal data step started at it, re-noising
    /// with the network's ε̂ and stochasticity η. N network evaluations.
    Dds,
    /// DiffPIR (Zhu et al. 2023; [`crate::decomposed`]): the same loop with the data weight
    /// γ σ̄_t² growing with the noise level and ε recomputed from the corrected estimate.
    #[serde(rename = "diffpir")]
    DiffPir,
    /// Diffusion Posterior Sampling (Chung et al., ICLR 2023; [`crate::dps`]): reverse
    /// diffusion with the guidance step −ζ ∇ₓ‖A x̂₀(x) − y‖, a vector-Jacobian product through
    /// the network per step. N + 1 network evaluations, each with a backward pass.
    Dps,
}

impl InverseMethod {
    /// Every method, in the order of the contract.
    pub const ALL: [InverseMethod; 7] = [
        InverseMethod::PcProjection,
        InverseMethod::AldProjection,
        InverseMethod::ScoreSde,
        InverseMethod::Langevin,
        InverseMethod::Dds,
        InverseMethod::DiffPir,
        InverseMethod::Dps,
    ];

    /// The command-line / config name.
    pub fn name(self) -> &'static str {
        match self {
            InverseMethod::PcProjection => "pc-projection",
            InverseMethod::AldProjection => "ald-projection",
            InverseMethod::ScoreSde => "score-sde",
            InverseMethod::Langevin => "langevin",
            InverseMethod::Dds => "dds",
            InverseMethod::DiffPir => "diffpir",
            InverseMethod::Dps => "dps",
        }
    }

    /// True for the two methods that condition by the projection of Theorem 8.1 (λ applies);
    /// false for the likelihood-gradient baselines (ρ applies).
    pub fn projects(self) -> bool {
        matches!(
            self,
            InverseMethod::PcProjection | InverseMethod::AldProjection
        )
    }

    /// True for the methods sampled with annealed Langevin dynamics (M + 1 Langevin steps per
    /// noise level, no predictor); false for PC.
    pub fn annealed(self) -> bool {
        matches!(self, InverseMethod::AldProjection | InverseMethod::Langevin)
    }

    /// True for the decomposed samplers (DDS, DiffPIR): one network evaluation per step and a
    /// CG data step (η, γ and the CG iterations apply; M, r, λ, ρ do not).
    pub fn decomposed(self) -> bool {
        matches!(self, InverseMethod::Dds | InverseMethod::DiffPir)
    }
}

impl fmt::Display for InverseMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Names accepted by [`InverseMethod::from_str`].
pub const INVERSE_METHOD_NAMES: &str =
    "pc-projection, ald-projection, score-sde, langevin, dds, diffpir, dps";

impl FromStr for InverseMethod {
    type Err = ReconError;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| ReconError::UnknownName {
                what: "inverse method",
                name: s.into(),
                known: INVERSE_METHOD_NAMES,
            })
    }
}

/// Parameters of [`solve`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InverseConfig {
    /// The solver.
    pub method: InverseMethod,
    /// Number of noise levels N (time grid linspace(T, ε, N + 1)).
    pub steps: usize,
    /// Corrector steps M per level (PC); the annealed-Langevin methods take M + 1 steps.
    pub corrector_steps: usize,
    /// Langevin signal-to-noise ratio r (η of the paper; thesis Alg. B.6/B.7 and the "ald"
    /// step 2α(r s(t))²).
    pub snr: f64,
    /// λ ∈ [0, 1] of Theorem 8.1 (projection methods); λ = 1 also applies k(x, y, 1) at the end.
    pub lambda: f64,
    /// ρ > 0: the likelihood std is ρ s(t) (score-sde and langevin baselines).
    pub rho: f64,
    /// Seed of the prior draw, of every sampler noise draw and of every ŷ_t draw.
    pub seed: u64,
    /// K posterior samples per image.
    pub samples: usize,
    /// Start time t₀ ∈ (ε, T] of the sampler (checked against the SDE in [`solve`]). T = 1 (the
    /// default) is the paper's cold start from the prior. t₀ < T is a warm start ("come closer,
    /// diffuse faster", Chung et al. 2022): x_{t₀} = m(t₀) x̂ + s(t₀) z with x̂ = [`hard_projection`] of the zero image (the
    /// measured-data estimate: zero-filled for MRI, iterated FBP for CT), and the N levels are
    /// spent on [ε, t₀], so the same NFE buys a finer grid where the image forms.
    pub t_start: f64,
    /// Decomposed samplers: stochasticity η ∈ [0, 1] of the re-noising (DiffPIR's ζ = η²).
    pub eta: f64,
    /// Decomposed samplers: data weight γ ≥ 0, relative to ‖A‖² (DiffPIR: γ σ̄_t²).
    pub gamma: f64,
    /// Decomposed samplers: CG iterations of the data step.
    pub cg_iterations: usize,
    /// DPS: step size ζ of the guidance −ζ ∇ₓ‖A x̂₀(x) − y‖ (images in model units).
    pub zeta: f64,
}

impl Default for InverseConfig {
    /// pc-projection, N = 500, M = 1, r = 0.16, λ = 1, ρ = 1, seed 0, K = 1, t₀ = T = 1; for
    /// the decomposed samplers η = 0.85 and M_CG = 5 (the DDS code's defaults) and γ = 10.
    fn default() -> Self {
        Self {
            method: InverseMethod::PcProjection,
            steps: 500,
            corrector_steps: 1,
            snr: crate::pc_sampler::DEFAULT_SNR,
            lambda: 1.0,
            rho: 1.0,
            seed: 0,
            samples: 1,
            t_start: 1.0,
            eta: 0.85,
            gamma: 10.0,
            cg_iterations: 5,
            zeta: 1.0,
        }
    }
}

/// The seed of the `batch`-th of the batches one run splits its measurements into (batch 0
/// draws with the run's `seed`): every batch draws its own noise, so images at the same
/// position of different batches do not share their draws. A run is reproduced by its seed
/// and batch size. The one seeding rule of every batched caller (volumes, benchmarks, tuning).
pub fn batch_seed(seed: u64, batch: usize) -> u64 {
    seed.wrapping_add(batch as u64)
}

impl InverseConfig {
    /// Score evaluations per posterior sample: N·(M + 1) + 1 for every method (see the module
    /// documentation). Evaluations are batched over images and samples.
    pub fn nfe(&self) -> usize {
        if self.method.decomposed() {
            self.steps
        } else if self.method == InverseMethod::Dps {
            self.steps + 1
        } else {
            self.steps * (self.corrector_steps + 1) + 1
        }
    }

    /// The sampler this method runs: PC (reverse diffusion + Langevin, M corrector steps) or
    /// annealed Langevin (corrector "ald" alone, M + 1 steps per level), always with the final
    /// Tweedie step.
    pub fn sampler_config(&self) -> PcConfig {
        let (predictor, corrector, m) = if self.method.annealed() {
            (
                PredictorKind::None,
                CorrectorKind::Ald,
                self.corrector_steps + 1,
            )
        } else {
            (
                PredictorKind::ReverseDiffusion,
                CorrectorKind::Langevin,
                self.corrector_steps,
            )
        };
        PcConfig {
            predictor,
            corrector,
            steps: self.steps,
            corrector_steps: m,
            snr: self.snr,
            seed: self.seed,
            t_min: None,
            t_start: Some(self.t_start),
            denoise: true,
        }
    }

    /// The first parameter outside its range, or `None`: N and r as
    /// [`grid_out_of_range`] (N ∈ 1..=100 000, r ≥ 0), M ≤ 100, λ ∈ [0, 1], ρ > 0, K ∈ 1..=1000, t₀ ∈ (0, 1], η ∈ [0, 1], γ ∈ [0, 10¹²], CG iterations
    /// ∈ 1..=1000, ζ ∈ [0, 10⁶] (the mathematical ranges, with upper bounds that keep one call's
    /// work finite; r = 0 turns the Langevin corrector off). The one definition of these ranges: [`solve`] and every front end check
    /// against it.
    pub fn out_of_range(&self) -> Option<OutOfRange> {
        let finite_in = |v: f64, lo: f64, hi: f64| v.is_finite() && (lo..=hi).contains(&v);
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if let Some(r) = grid_out_of_range(self.steps, self.snr) {
            return Some(r);
        }
        let checks = [
            (
                self.corrector_steps <= 100,
                "corrector_steps",
                "0..=100",
                self.corrector_steps as f64,
            ),
            (
                finite_in(self.lambda, 0.0, 1.0),
                "lambda",
                "[0, 1]",
                self.lambda,
            ),
            (positive(self.rho), "rho", "(0, ∞)", self.rho),
            (
                (1..=1000).contains(&self.samples),
                "samples",
                "1..=1000",
                self.samples as f64,
            ),
            (
                positive(self.t_start) && self.t_start <= 1.0,
                "t_start",
                "(0, 1]",
                self.t_start,
            ),
            (finite_in(self.eta, 0.0, 1.0), "eta", "[0, 1]", self.eta),
            (
                finite_in(self.gamma, 0.0, 1e12),
                "gamma",
                "[0, 1e12]",
                self.gamma,
            ),
            (
                (1..=1000).contains(&self.cg_iterations),
                "cg_iterations",
                "1..=1000",
                self.cg_iterations as f64,
            ),
            (
                finite_in(self.zeta, 0.0, 1e6),
                "zeta",
                "[0, 1e6]",
                self.zeta,
            ),
        ];
        checks
            .into_iter()
            .find(|c| !c.0)
            .map(|(_, field, range, value)| OutOfRange {
                field,
                range,
                value,
            })
    }

    fn validate(&self) -> Result<()> {
        match self.out_of_range() {
            None => Ok(()),
            Some(r) => Err(ReconError::Param {
                name: r.field,
                reason: r.to_string(),
            }),
        }
    }
}

/// A parameter of [`InverseConfig`] outside its range ([`InverseConfig::out_of_range`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutOfRange {
    /// The field's name (as in [`InverseConfig`] and the task configs).
    pub field: &'static str,
    /// The range it must lie in, as text.
    pub range: &'static str,
    /// The value given.
    pub value: f64,
}

impl OutOfRange {
    /// The command-line flag that sets the field: flags and task-config keys share names
    /// (`t_start` ↔ `--t-start`).
    pub fn flag(&self) -> String {
        format!("--{}", self.field.replace('_', "-"))
    }

    /// The message for a command-line flag: "--t-start must be in (0, 1], got 2".
    pub fn flag_message(&self) -> String {
        format!(
            "{} must be in {}, got {}",
            self.flag(),
            self.range,
            self.value
        )
    }
}

impl std::fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} must be in {}, got {}",
            self.field, self.range, self.value
        )
    }
}

/// Per-image posterior summaries.
#[derive(Debug, Clone)]
pub struct Reconstruction {
    /// Per-pixel mean of the K samples, one [H, W] image per measurement vector.
    pub mean: Vec<Array2<f32>>,
    /// Per-pixel standard deviation of the K samples (unbiased, divisor K − 1; 0 for K = 1).
    pub std: Vec<Array2<f32>>,
    /// Score evaluations per sample (batched), equal to [`InverseConfig::nfe`].
    pub nfe: usize,
}

/// Samples p(x | y) for every measurement vector in `y` (K = `config.samples` samples each)
/// and returns their per-pixel mean and standard deviation.
///
/// `op` maps real images [H, W] to measurements; `score` sees `[B·K, 1, H, W]` tensors on
/// `device` in the units of the images (callers scale y to the model's units). `progress(i, N)`
/// is called after each of the N noise levels.
pub fn solve<T: Transform<In = f32>>(
    sde: &dyn Sde,
    score: &dyn ScoreModel,
    op: &Subsampled<T>,
    y: &[Array1<T::Out>],
    config: &InverseConfig,
    device: &Device,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Reconstruction> {
    config.validate()?;
    ensure(!y.is_empty(), "y", || "no measurement vector given".into())?;
    let shape = op.domain_shape();
    ensure(shape.len() == 2, "op", || {
        format!("the operator's domain must be an image [H, W], got {shape:?}")
    })?;
    let (h, w, k) = (shape[0], shape[1], config.samples);
    let replicated: Vec<Array1<T::Out>> = y
        .iter()
        .flat_map(|v| std::iter::repeat_n(v, k).cloned())
        .collect();
    let mut measured =
        MeasuredBatch::new(op, replicated, measurement_seed(config.seed)).map_err(hook_error)?;
    let batch_shape = [y.len() * k, 1, h, w];
    let mut noise = Noise::new(config.seed);
    let x_start = start_sample(sde, &mut measured, &batch_shape, config, device, &mut noise)?;
    if config.method.decomposed() {
        let decomposed = DecomposedConfig {
            variant: if config.method == InverseMethod::Dds {
                Variant::Dds
            } else {
                Variant::DiffPir
            },
            steps: config.steps,
            eta: config.eta,
            gamma: config.gamma,
            cg_iterations: config.cg_iterations,
            lipschitz: op.norm_squared(),
        };
        let x = decomposed::sample(
            sde,
            score,
            &measured,
            x_start,
            config.t_start,
            &decomposed,
            &mut noise,
            progress,
        )?;
        return summarize(&x, y.len(), k, h, w, config.nfe());
    }
    if config.method == InverseMethod::Dps {
        let x = dps::sample(
            sde,
            score,
            &measured,
            x_start,
            config.t_start,
            config.steps,
            config.zeta,
            &mut noise,
            progress,
        )?;
        return summarize(&x, y.len(), k, h, w, config.nfe());
    }
    let sampler = PcSampler::new(config.sampler_config())?;
    let out = if config.method.projects() {
        let lambda = config.lambda as f32;
        let mut hook = Projection {
            sde,
            batch: &mut measured,
            lambda,
        };
        let x = sampler.sample_from(sde, score, x_start, &mut noise, &mut hook, progress)?;
        if config.lambda == 1.0 {
            hard_projection(&mut measured, &x.samples)?
        } else {
            x.samples
        }
    } else {
        let conditional = LikelihoodScore {
            prior: score,
            sde,
            batch: Mutex::new(measured),
            rho: config.rho,
            noisy: config.method == InverseMethod::ScoreSde,
        };
        let x = sampler.sample_from(
            sde,
            &conditional,
            x_start,
            &mut noise,
            &mut NoHook,
            progress,
        )?;
        x.samples
    };
    summarize(&out, y.len(), k, h, w, sampler.nfe())
}

/// The sampler's first x: a prior draw x_T ~ π for a cold start (t₀ = T), else
/// x_{t₀} = m(t₀) x̂ + s(t₀) z with x̂ the hard projection of the zero image (see
/// [`InverseConfig::t_start`]).
fn start_sample<T: Transform<In = f32>>(
    sde: &dyn Sde,
    measured: &mut MeasuredBatch<'_, T>,
    shape: &[usize],
    config: &InverseConfig,
    device: &Device,
    noise: &mut Noise,
) -> Result<Tensor> {
    let (t0, t_max) = (config.t_start, sde.t_max());
    ensure(t0 > sde.t_min() && t0 <= t_max, "t_start", || {
        format!("t₀ = {t0} must lie in (ε, T] = ({}, {t_max}]", sde.t_min())
    })?;
    if t0 == t_max {
        return Ok(sde.prior_sample(shape, DType::F32, device, noise)?);
    }
    let estimate = hard_projection(measured, &Tensor::zeros(shape, DType::F32, device)?)?;
    let z = noise.randn(shape, DType::F32, device)?;
    Ok(((estimate * sde.mean_coef(t0))? + (z * sde.std(t0))?)?)
}

/// Most applications of k(x, y, 1) in [`hard_projection`].
pub const MAX_HARD_PROJECTIONS: usize = 50;

/// The final hard data consistency of the noiseless case (thesis §8.3: x ← k(x, y, 1)),
/// repeated while it lowers the batch-mean relative residual ‖A x − y‖/‖y‖ by at least 10 %
/// (at most [`MAX_HARD_PROJECTIONS`] times). With an exact T⁻¹ (unitary FFT; real images with a
/// mask symmetric under k ↦ −k) one application gives A x = y and the loop stops at the
/// check. With an approximate inverse (Re F⁻¹ for real images and asymmetric masks, FBP for
/// CT) the repetition x ← x + T⁻¹[m ⊙ (P⁻¹(Λ) y − T x)] is a Landweber-type iteration that
/// drives A x towards y (for real-input MRI Aᴴ = Re F⁻¹ P⁻¹(Λ) and A Aᴴ has eigenvalues ½
/// and 1, so the residual at least halves per pass).
pub fn hard_projection<T: Transform<In = f32>>(
    measured: &mut MeasuredBatch<'_, T>,
    x: &Tensor,
) -> Result<Tensor> {
    let mean = |r: Vec<f64>| r.iter().sum::<f64>() / r.len().max(1) as f64;
    let mut x = measured.project_exact(x).map_err(hook_error)?;
    let mut residual = mean(measured.relative_residuals(&x).map_err(hook_error)?);
    for _ in 1..MAX_HARD_PROJECTIONS {
        let next = measured.project_exact(&x).map_err(hook_error)?;
        let r = mean(measured.relative_residuals(&next).map_err(hook_error)?);
        if r.is_nan() || r >= 0.9 * residual {
            break;
        }
        (x, residual) = (next, r);
    }
    Ok(x)
}

/// The seed of the ŷ_t draws, decorrelated from the sampler's own stream `seed`.
fn measurement_seed(seed: u64) -> u64 {
    seed ^ 0x9E37_79B9_7F4A_7C15
}

fn hook_error(e: ProjectionError) -> ReconError {
    ReconError::Hook(Box::new(e))
}

/// The data-consistency hook of thesis Alg. 8.2 lines 3–4: before every corrector and
/// predictor step at time t, ŷ_t = m(t) y + s(t) A z and x ← k(x, ŷ_t, λ) (Theorem 8.1).
/// The Tweedie step is left alone (the hard projection follows it in [`solve`]).
struct Projection<'s, 'b, 'a, T: Transform<In = f32>> {
    sde: &'s dyn Sde,
    batch: &'b mut MeasuredBatch<'a, T>,
    lambda: f32,
}

impl<T: Transform<In = f32>> StepHook for Projection<'_, '_, '_, T> {
    fn apply(&mut self, stage: Stage, x: &Tensor, t: f64) -> Result<Tensor> {
        match stage {
            Stage::Corrector | Stage::Predictor => self
                .batch
                .project_noisy(
                    x,
                    self.sde.mean_coef(t) as f32,
                    self.sde.std(t) as f32,
                    self.lambda,
                )
                .map_err(hook_error),
            Stage::Denoise => Ok(x.clone()),
        }
    }
}

/// The conditional score of the baselines: s_θ(x, t) + Aᴴ(ŷ − A x)/(ρ s(t))² with
/// ŷ = m(t) y + s(t) A z fresh per call ("Score SDE", thesis Eq. B.36) or ŷ = m(t) y
/// ("Langevin", Jalal et al.). The batch's random streams sit behind a mutex because
/// [`ScoreModel::score`] takes `&self`.
struct LikelihoodScore<'s, 'a, T: Transform<In = f32>> {
    prior: &'s dyn ScoreModel,
    sde: &'s dyn Sde,
    batch: Mutex<MeasuredBatch<'a, T>>,
    rho: f64,
    noisy: bool,
}

impl<T: Transform<In = f32>> ScoreModel for LikelihoodScore<'_, '_, T> {
    fn score(&self, x: &Tensor, t: &Tensor) -> candle_core::Result<Tensor> {
        let ts = times(t)?;
        let t0 = ts.first().copied().unwrap_or(0.0);
        if ts.iter().any(|&ti| ti != t0) {
            candle_core::bail!("likelihood score: the batch must share one time");
        }
        let (m, s) = (self.sde.mean_coef(t0), self.sde.std(t0));
        let beta = if self.noisy { s as f32 } else { 0.0 };
        let grad = self
            .batch
            .lock()
            .map_err(|_| candle_core::Error::Msg("likelihood score: poisoned lock".into()))?
            .likelihood_grad(x, m as f32, beta, (self.rho * s) as f32)
            .map_err(candle_core::Error::wrap)?;
        self.prior.score(x, t)? + grad.to_dtype(x.dtype())?
    }
}

/// Per-image mean and standard deviation over the K samples of `x`: `[B·K, 1, H, W]`.
fn summarize(
    x: &Tensor,
    b: usize,
    k: usize,
    h: usize,
    w: usize,
    nfe: usize,
) -> Result<Reconstruction> {
    let data = x
        .to_device(&Device::Cpu)?
        .to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let n = h * w;
    let (mut mean, mut std) = (Vec::with_capacity(b), Vec::with_capacity(b));
    for image in data.chunks(k * n) {
        let mut sum = vec![0f64; n];
        let mut sum2 = vec![0f64; n];
        for sample in image.chunks(n) {
            for (p, &v) in sample.iter().enumerate() {
                sum[p] += v as f64;
                sum2[p] += (v as f64) * (v as f64);
            }
        }
        let mu: Vec<f64> = sum.iter().map(|s| s / k as f64).collect();
        let sd: Vec<f32> = sum2
            .iter()
            .zip(&mu)
            .map(|(s2, m)| {
                if k > 1 {
                    ((s2 - k as f64 * m * m) / (k as f64 - 1.0)).max(0.0).sqrt() as f32
                } else {
                    0.0
                }
            })
            .collect();
        let mu: Vec<f32> = mu.into_iter().map(|v| v as f32).collect();
        mean.push(Array2::from_shape_vec((h, w), mu).map_err(shape_error)?);
        std.push(Array2::from_shape_vec((h, w), sd).map_err(shape_error)?);
    }
    Ok(Reconstruction { mean, std, nfe })
}

fn shape_error(e: ndarray::ShapeError) -> ReconError {
    ReconError::Numerical {
        what: "posterior summary",
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sde::SdeConfig;
    use medsgm_operators::{Fft2, RealInput};
    use ndarray::{ArrayD, IxDyn};

    /// Before a step at t the projection with λ = 1 sets the measured component to a draw of
    /// ŷ_t = m(t) y + s(t) A z: for real images and a mask symmetric under k ↦ −k that is
    /// Aᴴ ŷ_t with mean m(t) Aᴴ y and covariance s(t)² P (P = Aᴴ A, rank = tr P).
    #[test]
    fn projection_hook_draws_the_perturbed_measurements() {
        let n = 8;
        let keep = |j: usize| matches!(j as i64 - 4, 0 | 2 | -2);
        let mask = ArrayD::from_shape_fn(IxDyn(&[n, n]), |i| keep(i[1]));
        let op = Subsampled::new(RealInput::new(Fft2::new(n, n).unwrap()), mask).unwrap();
        let truth = ArrayD::from_shape_fn(IxDyn(&[n, n]), |i| (i[0] * n + i[1]) as f32 / 64.0);
        let y: Array1<_> = op.forward(&truth.view()).into_dimensionality().unwrap();
        let aty = op.adjoint(&y.view().into_dyn());
        let rank = (3 * n) as f64;
        let sde = SdeConfig::vp().build().unwrap();
        let k = 2000;
        let mut batch = MeasuredBatch::new(&op, vec![y; k], 1).unwrap();
        let t = 0.4;
        let (m, s) = (sde.mean_coef(t), sde.std(t));
        assert!(m < 0.9, "the test needs m(t) visibly below 1, got {m}");
        let mut hook = Projection {
            sde: sde.as_ref(),
            batch: &mut batch,
            lambda: 1.0,
        };
        let x = Tensor::zeros((k, 1, n, n), candle_core::DType::F32, &Device::Cpu).unwrap();
        let out = hook.apply(Stage::Predictor, &x, t).unwrap();
        let rows = out.reshape((k, n * n)).unwrap().to_vec2::<f32>().unwrap();
        let mut mean = vec![0f64; n * n];
        for r in &rows {
            for (acc, v) in mean.iter_mut().zip(r) {
                *acc += *v as f64 / k as f64;
            }
        }
        let mean_err: f64 = mean
            .iter()
            .zip(aty.iter())
            .map(|(a, b)| (a - m * *b as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        // sampling error of the mean: √(rank s²/K)
        let se = (rank * s * s / k as f64).sqrt();
        assert!(mean_err < 4.0 * se, "mean off by {mean_err} (se {se})");
        let total_var: f64 = rows
            .iter()
            .map(|r| {
                r.iter()
                    .zip(&mean)
                    .map(|(v, mu)| (*v as f64 - mu).powi(2))
                    .sum::<f64>()
            })
            .sum::<f64>()
            / (k as f64 - 1.0);
        let ratio = total_var / (rank * s * s);
        assert!((ratio - 1.0).abs() < 0.03, "variance ratio {ratio}");
        // the denoising stage is left alone
        let same = hook.apply(Stage::Denoise, &x, t).unwrap();
        let d = (same - &x).unwrap().abs().unwrap().sum_all().unwrap();
        assert_eq!(d.to_scalar::<f32>().unwrap(), 0.0);
    }

    /// A prior score that is identically zero, isolating the likelihood term.
    struct Zero;

    impl ScoreModel for Zero {
        fn score(&self, x: &Tensor, _t: &Tensor) -> candle_core::Result<Tensor> {
            x.zeros_like()
        }
    }

    /// The Langevin baseline's score is s_θ + Aᴴ(m(t) y − A x)/(ρ s(t))² (masked FFT, VP so
    /// that m(t) ≠ 1; s_θ = 0 isolates the likelihood term).
    #[test]
    fn likelihood_score_is_the_scaled_residual() {
        let n = 4;
        let mask = ArrayD::from_shape_fn(IxDyn(&[n, n]), |i| i[0] != 1);
        let op = Subsampled::new(RealInput::new(Fft2::new(n, n).unwrap()), mask).unwrap();
        let truth = ArrayD::from_shape_fn(IxDyn(&[n, n]), |i| (i[0] + 2 * i[1]) as f32 / 8.0);
        let y: Array1<_> = op.forward(&truth.view()).into_dimensionality().unwrap();
        let sde = SdeConfig::vp().build().unwrap();
        let (t, rho) = (0.3, 1.5);
        let x = Tensor::from_vec(
            (0..n * n)
                .map(|i| (i as f32 * 0.37).sin())
                .collect::<Vec<_>>(),
            (1, 1, n, n),
            &Device::Cpu,
        )
        .unwrap();
        let score = LikelihoodScore {
            prior: &Zero,
            sde: sde.as_ref(),
            batch: Mutex::new(MeasuredBatch::new(&op, vec![y.clone()], 0).unwrap()),
            rho,
            noisy: false,
        };
        let got = score
            .score(&x, &Tensor::full(t as f32, 1, &Device::Cpu).unwrap())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        // independent evaluation: Aᴴ r with r = m y − A x
        let (m, s) = (sde.mean_coef(t), sde.std(t));
        let xa = ArrayD::from_shape_vec(
            IxDyn(&[n, n]),
            x.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        )
        .unwrap();
        let ax = op.forward(&xa.view());
        let r = ArrayD::from_shape_fn(IxDyn(&[y.len()]), |i| y[i[0]] * m as f32 - ax[[i[0]]]);
        let want = op.adjoint(&r.view());
        let scale = 1.0 / (rho * s).powi(2);
        for (g, w) in got.iter().zip(want.iter()) {
            assert!(
                (*g as f64 - scale * *w as f64).abs() < 1e-4,
                "{g} vs {}",
                scale * *w as f64
            );
        }
        assert!(want.iter().any(|v| v.abs() > 0.1));
    }
}
