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

use crate::bench::recon::ReconBench;
use crate::checkpoint::Normalization;
use crate::error::invalid;
use crate::eval::testset::EvalSplit;
use crate::model::LoadedModel;
use crate::task::ct_scan::Beam;
use crate::task::phantom::PhantomKind;
use crate::task::{Method, Problem};
use anyhow::Result;
use medsgm_operators::hu::HuWindow;
use medsgm_recon::{InverseConfig, InverseMethod};
use std::path::{Path, PathBuf};
use std::time::Instant;

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
    /// The settings of `method` with its demo defaults where `steps` and `t_start` are not
    /// given: DDS (also for a method that is not a pixel score method, which
    /// [`DemoRequest::validate`] refuses) with the parameters tuned for the embedded prior,
    /// the others with [`DEFAULT_STEPS`] from the prior (t₀ = 1); one sample, r = 0.16, λ = 1,
    /// seed 0.
    pub fn for_method(method: Method, steps: Option<usize>, t_start: Option<f64>) -> SamplerSpec {
        let method = method.inverse_method().unwrap_or(InverseMethod::Dds);
        let dds = method == InverseMethod::Dds;
        let defaults = InverseConfig::default();
        SamplerSpec {
            method,
            steps: steps.unwrap_or(if dds { DDS_STEPS } else { DEFAULT_STEPS }),
            samples: 1,
            snr: medsgm_recon::DEFAULT_SNR,
            lambda: 1.0,
            seed: 0,
            t_start: t_start.unwrap_or(if dds { DDS_T_START } else { 1.0 }),
            eta: if dds { DDS_ETA } else { defaults.eta },
            gamma: if dds { DDS_GAMMA } else { defaults.gamma },
        }
    }

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

/// `medsgm demo` as asked for: the phantom (or held-out slice) problem of `spec`, or with
/// `task` a held-out real slice with the shipped real prior.
#[derive(Debug, Clone)]
pub struct DemoRequest {
    /// Output directory (created if missing).
    pub out_dir: PathBuf,
    /// The score method asked for (a pixel score method).
    pub method: Method,
    /// The real-slice demo of this problem instead of `spec`'s.
    pub task: Option<Problem>,
    /// The problem and methods.
    pub spec: DemoSpec,
}

impl DemoRequest {
    /// Checks the settings' ranges (invalid input naming the flag).
    pub fn validate(&self) -> Result<()> {
        let s = &self.spec;
        if self.method.inverse_method().is_none() {
            return Err(invalid(format!(
                "--method {} is not a score method of the pixel prior (e.g. dds, pc-projection)",
                self.method
            )));
        }
        if !(1..=3600).contains(&s.views) {
            return Err(invalid("--views must be in 1..=3600"));
        }
        if !(s.sigma.is_finite() && s.sigma >= 0.0) {
            return Err(invalid("--sigma must be non-negative"));
        }
        if let Some(r) = s.sampler.config().out_of_range() {
            return Err(invalid(r.flag_message()));
        }
        if !(s.tv_weight.is_finite() && s.tv_weight >= 0.0 && s.tv_weight <= 1e6) {
            return Err(invalid("--tv-weight must be a finite value in [0, 1e6]"));
        }
        // The data-consistency step is a convergent iteration only over a view grid at least as
        // dense as the measured views (see `dense_ct_operator`); fewer gives NaN scores.
        if !s.classical_only && self.task.is_none() && !(s.views..=3600).contains(&s.dense_views) {
            return Err(invalid(format!(
                "--dense-views {} must be in {}..=3600 (at least --views {}: the data-consistency \
                 step needs a view grid denser than the measured views)",
                s.dense_views, s.views, s.views
            )));
        }
        if self.out_dir.exists() && !self.out_dir.is_dir() {
            return Err(invalid(format!(
                "--out-dir {} exists and is not a directory",
                self.out_dir.display()
            )));
        }
        Ok(())
    }

    /// Runs the demo, handing its report (tables, files written) to `print`.
    pub fn run(&self, print: &mut dyn FnMut(&str)) -> Result<()> {
        self.validate()?;
        if let Some(task) = self.task {
            return self.real_demo(task, print);
        }
        let total = Instant::now();
        let s = &self.spec;
        let run = run(s)?;
        let (problem, results, size) = (&run.problem, &run.results, run.size);
        // Every input was read and every method ran: only now create the output folder.
        let files = write_outputs(&self.out_dir, problem, results, s.views, s.sampler.samples)?;
        let (h, w) = problem.truth.dim();
        let what = match &s.held_out {
            Some(config) => format!(
                "the middle held-out slice of {} ({h}x{w})",
                config.display()
            ),
            None => format!("{} phantom {size}² (seed {})", s.phantom.label(), s.seed),
        };
        let mut report = format!(
            "sparse-view CT, {what}, {} views, σ = {}\n",
            s.views, s.sigma
        );
        report += &format!(
            "{:<10} {:>10} {:>8} {:>8} {:>10}\n",
            "method", "PSNR dB", "SSIM", "NFE", "time s"
        );
        for r in results {
            report += &format!(
                "{:<10} {:>10.2} {:>8.4} {:>8} {:>10.2}\n",
                r.method,
                r.scores.psnr,
                r.scores.ssim,
                r.nfe.map_or("-".to_string(), |n| n.to_string()),
                r.seconds
            );
        }
        report += &format!("figure: {}\n", files.figure.display());
        report += &format!("summary: {}\n", files.summary.display());
        report += &format!("total: {:.1} s\n", total.elapsed().as_secs_f64());
        print(&report);
        Ok(())
    }

    /// `demo --task ct|mri`: the first slice of the shipped real prior's held-out test slab
    /// through the reconstruction benchmark (classical baselines and DDS at [`REAL_DEMO_NFE`]
    /// with the tuned task config): tables, figures and per-image results in the output folder.
    fn real_demo(&self, task: Problem, print: &mut dyn FnMut(&str)) -> Result<()> {
        let (name, classical, views, accel) = match task {
            Problem::Ct => ("ct_head_whole", Method::Fbp, vec![self.spec.views], vec![]),
            Problem::Mri => ("mri_t1_multi", Method::ZeroFilled, vec![], vec![4.0]),
            Problem::Mar => return Err(invalid("demo --task takes ct or mri")),
        };
        let model = PathBuf::from(format!("models/{name}/model.safetensors"));
        let data = PathBuf::from(format!("configs/{name}.toml"));
        let config = PathBuf::from(format!("configs/tuned_{name}.toml"));
        for p in [&model, &data, &config] {
            if !p.is_file() {
                return Err(invalid(format!(
                    "{} is missing: run demo --task from the repository root",
                    p.display()
                )));
            }
        }
        let bench = ReconBench {
            task,
            views,
            beam: Beam::Parallel,
            dose: None,
            accel,
            methods: vec![
                classical,
                Method::FistaTv,
                Method::Score(InverseMethod::Dds),
            ],
            model: Some(model),
            latent_model: None,
            latent_steps: None,
            data: Some(data),
            native_grid: false,
            n: 1,
            split: EvalSplit::Test,
            size: 64,
            steps: Some(REAL_DEMO_NFE),
            samples: Some(self.spec.sampler.samples),
            seed: self.spec.sampler.seed,
            config: Some(config),
            nfe_sweep: vec![],
            batch: 8,
        };
        let start = Instant::now();
        bench.run(&self.out_dir, print)?;
        print(&format!("wrote {}\n", self.out_dir.display()));
        print(&format!(
            "figure: {}; total {:.1} s\n",
            self.out_dir.join("panel.png").display(),
            start.elapsed().as_secs_f64()
        ));
        Ok(())
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
