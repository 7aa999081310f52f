//! The `medsgm demo` problem: score-based sparse-view CT on a built-in problem. A held-out
//! anatomical phantom at the model's resolution is measured with 23 equispaced views; FBP,
//! FISTA-TV and medsgm (PC sampling with the data-consistency projection, thesis Alg. 8.2, K
//! posterior samples) reconstruct it; the scores (PSNR/SSIM against the ground truth) are
//! reported and a comparison figure (ground truth, FBP, FISTA-TV, medsgm, |error|, posterior
//! std) is saved.
//!
//! The default CT prior is embedded in the binary ([`EMBEDDED_CT_MODEL`]); a model path
//! replaces it. Images are in the model's normalised units (HU window → [0, 1]) throughout, so
//! the measured sinogram needs no conversion. [`problem`]: the phantom and its sinogram;
//! [`methods`]: the reconstruction methods and their scoring; [`outputs`]: the files written.

pub mod methods;
pub mod outputs;
pub mod problem;

pub use methods::{
    classical_methods, pipeline, score_method, DemoMethod, DemoResult, MethodOutput, Reconstructor,
};
pub use outputs::{panels, write_outputs, DemoFiles};
pub use problem::{ct_problem, demo_phantom, held_out_slice, CtProblem};

use crate::checkpoint::Normalization;
use crate::model::LoadedModel;
use crate::task::phantom::PhantomKind;
use anyhow::Result;
use medsgm_operators::hu::HuWindow;
use medsgm_recon::{InverseConfig, InverseMethod};
use std::path::{Path, PathBuf};

/// The default CT prior: 64², trained by `medsgm train` on anatomical CT phantoms (VE SDE, HU
/// window [−1000, 1000] → [0, 1]); see `models/ct_phantom_64/`.
pub const EMBEDDED_CT_MODEL: &[u8] = include_bytes!("../../models/ct_phantom_64/model.safetensors");

/// Name of the embedded model in messages.
const EMBEDDED_NAME: &str = "the embedded CT model (models/ct_phantom_64)";

/// Network evaluations of the real-slice demo's DDS (`demo --task`).
pub const REAL_DEMO_NFE: usize = 50;

/// Default PC steps of the demo with `--method pc-projection` (201 NFE per sample).
pub const DEFAULT_STEPS: usize = 100;

/// The demo's default score method, DDS (the fastest that meets the quality targets,
/// BENCHMARKS §6): 50 steps (50 NFE per sample) with the parameters `medsgm tune` found for the
/// embedded prior on validation phantoms (`configs/tuned_ct.toml`): η, γ and t₀.
pub const DDS_STEPS: usize = 50;
/// DDS stochasticity η of the demo (see [`DDS_STEPS`]).
pub const DDS_ETA: f64 = 0.9954;
/// DDS data weight γ of the demo (see [`DDS_STEPS`]).
pub const DDS_GAMMA: f64 = 2.0168e4;
/// DDS start time t₀ of the demo (see [`DDS_STEPS`]).
pub const DDS_T_START: f64 = 0.1558;

/// FISTA-TV iterations of the demo.
pub const FISTA_ITERATIONS: usize = 200;
/// FISTA-TV weight λ of the demo (for sinograms of [0, 1] images with unit pixels).
pub const FISTA_TV_WEIGHT: f32 = 0.05;

/// The demo's problem and methods, as plain values.
#[derive(Debug, Clone)]
pub struct DemoSpec {
    /// Score model (default: the embedded CT model); the phantom has its image size.
    pub model: Option<PathBuf>,
    /// Built-in phantom (anatomical HU normalised with the model's window, others in [0, 1]).
    pub phantom: PhantomKind,
    /// A real slice instead of the phantom: the middle held-out slice of this nifti-slices
    /// training configuration.
    pub held_out: Option<PathBuf>,
    /// Number of equispaced views over [0°, 180°).
    pub views: usize,
    /// Phantom and noise seed.
    pub seed: u64,
    /// Additive Gaussian sinogram noise (standard deviation, model units); 0 = noise-free.
    pub sigma: f32,
    /// The score method's sampler settings (PC sampling with the data-consistency projection).
    pub sampler: SamplerSpec,
    /// Views of the dense set T of the data-consistency step.
    pub dense_views: usize,
    /// Only the classical methods (no score model run).
    pub classical_only: bool,
    /// FISTA-TV weight λ.
    pub tv_weight: f32,
}

/// The sampler settings of the demo's score method.
#[derive(Debug, Clone, Copy)]
pub struct SamplerSpec {
    /// The score method (DDS by default; the paper's PC + projection one flag away).
    pub method: InverseMethod,
    /// Time steps N.
    pub steps: usize,
    /// Posterior samples K (mean and std map).
    pub samples: usize,
    /// Corrector signal-to-noise ratio r.
    pub snr: f64,
    /// λ of the data-consistency step.
    pub lambda: f64,
    /// Sampler seed.
    pub seed: u64,
    /// Sampler start time t₀ ∈ (0, 1].
    pub t_start: f64,
    /// Decomposed samplers: stochasticity η.
    pub eta: f64,
    /// Decomposed samplers: data weight γ.
    pub gamma: f64,
}

impl SamplerSpec {
    /// The solver configuration (one corrector step for the PC methods).
    pub fn config(&self) -> InverseConfig {
        InverseConfig {
            method: self.method,
            steps: self.steps,
            corrector_steps: 1,
            snr: self.snr,
            lambda: self.lambda,
            rho: 1.0,
            seed: self.seed,
            samples: self.samples,
            t_start: self.t_start,
            eta: self.eta,
            gamma: self.gamma,
            ..InverseConfig::default()
        }
    }
}

/// The demo's model: `model` or the embedded one.
pub fn load_model(model: Option<&Path>) -> Result<LoadedModel> {
    match model {
        Some(p) => LoadedModel::load(p),
        None => LoadedModel::from_bytes(EMBEDDED_CT_MODEL, EMBEDDED_NAME),
    }
}

/// A finished demo: the problem and every method's scored reconstruction.
pub struct DemoRun {
    /// The problem (ground truth, operator, sinogram).
    pub problem: CtProblem,
    /// The methods' results, in order (medsgm last when it ran).
    pub results: Vec<DemoResult>,
    /// The model's image size.
    pub size: usize,
}

/// Builds the problem of `spec` and runs every method on it (progress on stderr).
pub fn run(spec: &DemoSpec) -> Result<DemoRun> {
    let model = load_model(spec.model.as_deref())?;
    let size = model.image_size();
    let window = match model.meta.normalization {
        Normalization::CtHuWindow { lo, hi } => HuWindow { lo, hi },
        _ => HuWindow::default(),
    };
    let truth = match &spec.held_out {
        Some(config) => held_out_slice(config)?,
        None => demo_phantom(spec.phantom, size, spec.seed, window)?,
    };
    let problem = ct_problem(truth, spec.views, spec.sigma, spec.seed)?;
    let mut methods = classical_methods(spec.tv_weight);
    let s = &spec.sampler;
    if !spec.classical_only {
        eprintln!(
            "medsgm: {} with K = {} samples, {} steps of {}",
            model.describe(),
            s.samples,
            s.steps,
            s.method
        );
        methods.push(score_method(&model, s.config(), spec.dense_views));
    }
    let results = pipeline(&problem, &methods)?;
    Ok(DemoRun {
        problem,
        results,
        size,
    })
}
