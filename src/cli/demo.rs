//! `medsgm demo`: score-based sparse-view CT on a built-in problem. A held-out anatomical phantom at the model's resolution is measured with 23
//! equispaced views; FBP, FISTA-TV and medsgm (PC sampling with the data-consistency
//! projection, thesis Alg. 8.2, K posterior samples) reconstruct it; the scores (PSNR/SSIM
//! against the ground truth) are printed and a comparison figure (ground truth, FBP, FISTA-TV,
//! medsgm, |error|, posterior std) is saved.
//!
//! The default CT prior is embedded in the binary ([`EMBEDDED_CT_MODEL`]); `--model` replaces
//! it. Images are in the model's normalised units (HU window → [0, 1]) throughout, so the
//! measured sinogram needs no conversion.

use crate::checkpoint::Normalization;
use crate::cli::bench_recon::ReconBenchArgs;
use crate::cli::metrics::{scores, Scores, SsimChoice};
use crate::cli::model::LoadedModel;
use crate::cli::phantom::PhantomKind;
use crate::cli::{invalid, InputContext};
use crate::io::npy::write_npy;
use crate::plot::{comparison_figure, Panel};
use crate::reconstruct::fista::FistaTv;
use crate::reconstruct::score::{dense_ct_operator, score_reconstruct, IntensityMap, DENSE_VIEWS};
use crate::task::{Method, Problem};
use anyhow::{Context, Result};
use clap::Args;
use medsgm_operators::fbp::{fbp, Filter};
use medsgm_operators::hu::{hu_to_unit, HuWindow};
use medsgm_operators::phantom::anatomical::{anatomical_ct, AnatomicalParams};
use medsgm_operators::phantom::shepp_logan;
use medsgm_operators::radon::{Radon, RadonGeometry};
use medsgm_operators::{noise, LinearOperator};
use medsgm_recon::{InverseConfig, InverseMethod};
use ndarray::{Array2, Ix2};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

/// The default CT prior: 64², trained by `medsgm train` on anatomical CT phantoms (VE SDE, HU
/// window [−1000, 1000] → [0, 1]); see `models/ct_phantom_64/`.
pub const EMBEDDED_CT_MODEL: &[u8] = include_bytes!("../../models/ct_phantom_64/model.safetensors");

/// Name of the embedded model in messages.
const EMBEDDED_NAME: &str = "the embedded CT model (models/ct_phantom_64)";

/// Arguments of `medsgm demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Output directory (created if missing).
    #[arg(long, default_value = "demo-out")]
    pub out_dir: PathBuf,
    /// Built-in phantom: anatomical (HU, normalised with the model's window), shepp-logan or
    /// ellipses (values in [0, 1]).
    #[arg(long, value_enum, default_value = "anatomical")]
    pub phantom: PhantomKind,
    /// Number of equispaced views over [0°, 180°).
    #[arg(long, default_value_t = 23)]
    pub views: usize,
    /// Phantom and noise seed (the default lies far from the training seeds: held out).
    #[arg(long, default_value_t = 10_000_000)]
    pub seed: u64,
    /// Additive Gaussian sinogram noise (standard deviation, model units); 0 = noise-free.
    #[arg(long, default_value_t = 0.0)]
    pub sigma: f32,
    /// Score model (default: the embedded CT model); the phantom has its image size.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// PC sampler time steps N (NFE per sample = 2N + 1).
    #[arg(long, default_value_t = DEFAULT_STEPS)]
    pub steps: usize,
    /// Posterior samples K (mean and std map).
    #[arg(long, default_value_t = 4)]
    pub samples: usize,
    /// Corrector signal-to-noise ratio r.
    #[arg(long, default_value_t = 0.16)]
    pub snr: f64,
    /// λ of the data-consistency step.
    #[arg(long, default_value_t = 1.0)]
    pub lambda: f64,
    /// Sampler seed.
    #[arg(long, default_value_t = 0)]
    pub sampler_seed: u64,
    /// Sampler start time t₀ ∈ (0, 1]: 1 starts from the prior, below 1 a warm start from the
    /// measured-data estimate (see `medsgm recon --help`).
    #[arg(long, default_value_t = 1.0)]
    pub t_start: f64,
    /// Views of the dense set T of the data-consistency step (see
    /// `reconstruct::score::dense_ct_operator`).
    #[arg(long, default_value_t = DENSE_VIEWS)]
    pub dense_views: usize,
    /// Only the classical methods (no score model needed).
    #[arg(long)]
    pub classical_only: bool,
    /// A real slice instead of the phantom: the middle slice of the held-out test slab of this
    /// nifti-slices training configuration (e.g. configs/ct_head.toml with
    /// --model models/ct_head/model.safetensors; data-scripts/fetch_real_data.sh fetches the
    /// volume). The slice keeps its native size.
    #[arg(long)]
    pub held_out: Option<PathBuf>,
    /// FISTA-TV weight λ (default: the value for 64² phantoms; tuned values per prior are in
    /// configs/tuned_*.toml, e.g. 0.785 for the 256² head CT).
    #[arg(long, default_value_t = FISTA_TV_WEIGHT)]
    pub tv_weight: f32,
    /// A held-out real slice with the shipped real prior instead of the phantom problem:
    /// `ct` (head-CT test slab, 23 views, models/ct_head) or `mri` (Colin27 T1 test slab, 4×,
    /// models/mri_t1), reconstructed by the classical baselines and the fast DDS sampler
    /// (50 NFE) with the tuned task configs (configs/tuned_*.toml), all on the first slice of
    /// the test slab; needs `bash data-scripts/fetch_real_data.sh` first.
    #[arg(long, value_enum, conflicts_with_all = ["held_out", "model", "classical_only"])]
    pub task: Option<Problem>,
}

/// Network evaluations of the real-slice demo's DDS (`demo --task`).
pub const REAL_DEMO_NFE: usize = 50;

/// Default PC steps of the demo: about a minute for K = 4 samples at 64² on two cores.
pub const DEFAULT_STEPS: usize = 100;

/// A sparse-view CT problem: ground truth, operator and measured sinogram.
pub struct CtProblem {
    /// Ground-truth image (model units).
    pub truth: Array2<f32>,
    /// The Radon transform over the measured views.
    pub radon: Radon,
    /// Measured sinogram [views, det].
    pub sinogram: Array2<f32>,
}

/// A reconstruction: the image and, for posterior samplers, the per-pixel std and NFE.
pub struct MethodOutput {
    /// The reconstruction.
    pub image: Array2<f32>,
    /// Posterior standard deviation (K > 1).
    pub std: Option<Array2<f32>>,
    /// Score evaluations per sample.
    pub nfe: Option<usize>,
}

impl MethodOutput {
    fn image(image: Array2<f32>) -> Self {
        Self {
            image,
            std: None,
            nfe: None,
        }
    }
}

/// A reconstruction method of the demo.
pub struct DemoMethod<'a> {
    /// Display name.
    pub name: String,
    /// Reconstructs an image from the problem's sinogram (never looks at `truth`).
    pub reconstruct: Reconstructor<'a>,
}

/// A demo method's reconstruction from the problem's sinogram.
pub type Reconstructor<'a> = Box<dyn Fn(&CtProblem) -> Result<MethodOutput> + 'a>;

/// FISTA-TV iterations of the demo.
const FISTA_ITERATIONS: usize = 200;
/// FISTA-TV weight λ of the demo (for sinograms of [0, 1] images with unit pixels).
const FISTA_TV_WEIGHT: f32 = 0.05;

/// The classical baselines: FBP (Ram-Lak) and FISTA-TV (nonnegative, 200 iterations, weight
/// `tv_weight`).
pub fn classical_methods(tv_weight: f32) -> Vec<DemoMethod<'static>> {
    vec![
        DemoMethod {
            name: "FBP".into(),
            reconstruct: Box::new(|p| {
                Ok(MethodOutput::image(fbp(
                    &p.radon,
                    &p.sinogram.view(),
                    Filter::RamLak,
                )))
            }),
        },
        DemoMethod {
            name: "FISTA-TV".into(),
            reconstruct: Box::new(move |p| {
                FistaTv {
                    iterations: FISTA_ITERATIONS,
                    weight: tv_weight,
                    nonnegative: true,
                }
                .run(&p.radon, &p.sinogram.view().into_dyn())
                .map(MethodOutput::image)
            }),
        },
    ]
}

/// medsgm: [`medsgm_recon::solve`] with A = P(Λ) R, R over the dense view set of
/// [`dense_ct_operator`] and Λ the measured views, in the model's units.
pub fn score_method<'a>(
    model: &'a LoadedModel,
    config: InverseConfig,
    dense_views: usize,
) -> DemoMethod<'a> {
    DemoMethod {
        name: "medsgm".into(),
        reconstruct: Box::new(move |p| {
            let g = p.radon.geometry();
            let measured: Vec<f32> = g.angles.iter().map(|a| a.to_degrees()).collect();
            let (op, y) = dense_ct_operator(
                g.size,
                g.n_det,
                g.det_spacing,
                &measured,
                &p.sinogram,
                dense_views,
            )?;
            let r = score_reconstruct(model, &op, &y, IntensityMap::IDENTITY, &config)?;
            Ok(MethodOutput {
                image: r.mean,
                std: (config.samples > 1).then_some(r.std),
                nfe: Some(r.nfe),
            })
        }),
    }
}

/// One method's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct DemoResult {
    /// Method name.
    pub method: String,
    /// Scores against the ground truth (data range 1, whole image, Gaussian SSIM).
    #[serde(flatten)]
    pub scores: Scores,
    /// Wall time of the reconstruction.
    pub seconds: f64,
    /// Score evaluations per posterior sample (score-based methods).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nfe: Option<usize>,
    /// The reconstruction.
    #[serde(skip)]
    pub image: Array2<f32>,
    /// The posterior standard deviation.
    #[serde(skip)]
    pub std: Option<Array2<f32>>,
}

/// Simulates the sparse-view sinogram of `truth` (optionally with Gaussian noise).
pub fn ct_problem(truth: Array2<f32>, views: usize, sigma: f32, seed: u64) -> Result<CtProblem> {
    let size = truth.nrows();
    let geometry = RadonGeometry::equispaced(size, views, RadonGeometry::default_n_det(size));
    let radon = Radon::new(geometry)?;
    let clean = radon
        .forward(&truth.view().into_dyn())
        .into_dimensionality::<Ix2>()?;
    let sinogram = if sigma > 0.0 {
        noise::gaussian(&clean.view(), sigma, seed)?
    } else {
        clean
    };
    Ok(CtProblem {
        truth,
        radon,
        sinogram,
    })
}

/// Runs every method on the problem and scores it.
pub fn pipeline(problem: &CtProblem, methods: &[DemoMethod]) -> Result<Vec<DemoResult>> {
    methods
        .iter()
        .map(|m| {
            eprintln!("running {}", m.name);
            let start = Instant::now();
            let out = (m.reconstruct)(problem)
                .with_context(|| format!("reconstruction with {} failed", m.name))?;
            let seconds = start.elapsed().as_secs_f64();
            let s = scores(
                &out.image.view(),
                &problem.truth.view(),
                1.0,
                false,
                SsimChoice::Gaussian,
            )?;
            Ok(DemoResult {
                method: m.name.clone(),
                scores: s,
                seconds,
                nfe: out.nfe,
                image: out.image,
                std: out.std,
            })
        })
        .collect()
}

/// The built-in phantom in model units: anatomical HU through `window`, the others in [0, 1].
fn demo_phantom(
    kind: PhantomKind,
    size: usize,
    seed: u64,
    window: HuWindow,
) -> Result<Array2<f32>> {
    Ok(match kind {
        PhantomKind::SheppLogan => shepp_logan(size),
        PhantomKind::Anatomical => {
            let hu = anatomical_ct(size, seed, &AnatomicalParams::default())?.hu;
            hu_to_unit(&hu.view(), window)
        }
        PhantomKind::Ellipses => medsgm_operators::phantom::random_ellipses(size, seed, 10),
    })
}

/// The middle slice of the held-out test slab of a nifti-slices training configuration.
fn held_out_slice(config: &std::path::Path) -> Result<Array2<f32>> {
    let mut slices = crate::eval::testset::config_slices(
        config,
        usize::MAX,
        crate::eval::testset::EvalSplit::Test,
    )
    .invalid_input()?;
    let mid = slices.len() / 2;
    Ok(slices.swap_remove(mid).1)
}

/// The model of the demo: `--model` or the embedded one.
fn demo_model(a: &DemoArgs) -> Result<LoadedModel> {
    match &a.model {
        Some(p) => LoadedModel::load(p),
        None => LoadedModel::from_bytes(EMBEDDED_CT_MODEL, EMBEDDED_NAME),
    }
}

fn validate(a: &DemoArgs) -> Result<()> {
    if !(1..=3600).contains(&a.views) {
        return Err(invalid("--views must be in 1..=3600"));
    }
    if !(a.sigma.is_finite() && a.sigma >= 0.0) {
        return Err(invalid("--sigma must be non-negative"));
    }
    if !(1..=100_000).contains(&a.steps) {
        return Err(invalid("--steps must be in 1..=100000"));
    }
    if !(1..=1000).contains(&a.samples) {
        return Err(invalid("--samples must be in 1..=1000"));
    }
    if !(a.snr.is_finite() && a.snr > 0.0) {
        return Err(invalid("--snr must be positive"));
    }
    if !(a.t_start > 0.0 && a.t_start <= 1.0) {
        return Err(invalid("--t-start must be in (0, 1]"));
    }
    if !(0.0..=1.0).contains(&a.lambda) {
        return Err(invalid("--lambda must be in [0, 1]"));
    }
    if !(a.tv_weight.is_finite() && a.tv_weight >= 0.0 && a.tv_weight <= 1e6) {
        return Err(invalid("--tv-weight must be a finite value in [0, 1e6]"));
    }
    // The data-consistency step is a convergent iteration only over a view grid at least as
    // dense as the measured views (see `dense_ct_operator`); fewer gives NaN scores.
    if !a.classical_only && a.task.is_none() && !(a.views..=3600).contains(&a.dense_views) {
        return Err(invalid(format!(
            "--dense-views {} must be in {}..=3600 (at least --views {}: the data-consistency \
             step needs a view grid denser than the measured views)",
            a.dense_views, a.views, a.views
        )));
    }
    if a.out_dir.exists() && !a.out_dir.is_dir() {
        return Err(invalid(format!(
            "--out-dir {} exists and is not a directory",
            a.out_dir.display()
        )));
    }
    Ok(())
}

/// `demo --task ct|mri`: the first slice of the shipped real prior's held-out test slab
/// through `bench recon` (classical baselines and DDS at [`REAL_DEMO_NFE`] with the tuned task
/// config): table on stdout, figures and per-image results in `--out-dir`.
fn real_demo(task: Problem, a: &DemoArgs) -> Result<()> {
    let (name, classical, views, accel) = match task {
        Problem::Ct => ("ct_head", Method::Fbp, vec![a.views], vec![]),
        Problem::Mri => ("mri_t1", Method::ZeroFilled, vec![], vec![4.0]),
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
    let args = ReconBenchArgs {
        task,
        views,
        beam: crate::cli::bench_recon::CtBeamArgs {
            beam: crate::cli::simulate::Beam::Parallel,
            dose: None,
        },
        accel,
        methods: vec![classical, Method::FistaTv, Method::Dds],
        model: Some(model),
        latent_model: None,
        latent_steps: None,
        data: Some(data),
        native_grid: false,
        n: 1,
        split: crate::eval::testset::EvalSplit::Test,
        size: 64,
        steps: Some(REAL_DEMO_NFE),
        samples: Some(a.samples),
        seed: a.sampler_seed,
        config: Some(config),
        nfe_sweep: vec![],
        batch: 8,
    };
    let start = Instant::now();
    crate::cli::bench_recon::run(&args, &a.out_dir)?;
    println!(
        "figure: {}; total {:.1} s",
        a.out_dir.join("panel.png").display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Runs `medsgm demo`.
pub fn run(a: &DemoArgs) -> Result<()> {
    validate(a)?;
    if let Some(task) = a.task {
        return real_demo(task, a);
    }
    let total = Instant::now();
    let model = demo_model(a)?;
    let size = model.image_size();
    let window = match model.meta.normalization {
        Normalization::CtHuWindow { lo, hi } => HuWindow { lo, hi },
        _ => HuWindow::default(),
    };
    let truth = match &a.held_out {
        Some(config) => held_out_slice(config)?,
        None => demo_phantom(a.phantom, size, a.seed, window)?,
    };
    let problem = ct_problem(truth, a.views, a.sigma, a.seed)?;
    let mut methods = classical_methods(a.tv_weight);
    let config = InverseConfig {
        method: InverseMethod::PcProjection,
        steps: a.steps,
        corrector_steps: 1,
        snr: a.snr,
        lambda: a.lambda,
        rho: 1.0,
        seed: a.sampler_seed,
        samples: a.samples,
        t_start: a.t_start,
        ..InverseConfig::default()
    };
    if !a.classical_only {
        eprintln!(
            "medsgm: {} with K = {} samples, {} PC steps",
            model.describe(),
            a.samples,
            a.steps
        );
        methods.push(score_method(&model, config, a.dense_views));
    }
    let results = pipeline(&problem, &methods)?;

    // Every input was read and every method ran: only now create the output folder.
    std::fs::create_dir_all(&a.out_dir)
        .with_context(|| format!("cannot create {}", a.out_dir.display()))?;
    write_npy(
        &a.out_dir.join("ground_truth.npy"),
        &problem.truth.view().into_dyn(),
    )?;
    write_npy(
        &a.out_dir.join("sinogram.npy"),
        &problem.sinogram.view().into_dyn(),
    )?;
    for r in &results {
        let name = r.method.to_lowercase().replace(['-', ' '], "_");
        write_npy(
            &a.out_dir.join(format!("{name}.npy")),
            &r.image.view().into_dyn(),
        )?;
        if let Some(std) = &r.std {
            write_npy(
                &a.out_dir.join(format!("{name}_std.npy")),
                &std.view().into_dyn(),
            )?;
        }
    }
    let figure = a.out_dir.join("comparison.png");
    comparison_figure(&figure, &panels(a, &problem, &results)?, 256)?;
    let summary = a.out_dir.join("summary.json");
    crate::io::atomic::write_bytes_atomic(
        &summary,
        (serde_json::to_string_pretty(&results)? + "\n").as_bytes(),
    )?;

    let (h, w) = problem.truth.dim();
    let what = match &a.held_out {
        Some(config) => format!(
            "the middle held-out slice of {} ({h}x{w})",
            config.display()
        ),
        None => format!(
            "{} phantom {size}² (seed {})",
            match a.phantom {
                PhantomKind::SheppLogan => "Shepp-Logan",
                PhantomKind::Anatomical => "anatomical",
                PhantomKind::Ellipses => "ellipses",
            },
            a.seed
        ),
    };
    println!("sparse-view CT, {what}, {} views, σ = {}", a.views, a.sigma);
    println!(
        "{:<10} {:>10} {:>8} {:>8} {:>10}",
        "method", "PSNR dB", "SSIM", "NFE", "time s"
    );
    for r in &results {
        println!(
            "{:<10} {:>10.2} {:>8.4} {:>8} {:>10.2}",
            r.method,
            r.scores.psnr,
            r.scores.ssim,
            r.nfe.map_or("-".to_string(), |n| n.to_string()),
            r.seconds
        );
    }
    println!("figure: {}", figure.display());
    println!("summary: {}", summary.display());
    println!("total: {:.1} s", total.elapsed().as_secs_f64());
    Ok(())
}

/// Ground truth, every reconstruction with its scores, the |error| of the last method (medsgm
/// when it ran) and its std map.
fn panels(a: &DemoArgs, problem: &CtProblem, results: &[DemoResult]) -> Result<Vec<Panel>> {
    let size = problem.truth.nrows();
    let mut panels = vec![Panel {
        title: "Ground truth".into(),
        subtitle: format!("{size}², {} views", a.views),
        image: problem.truth.clone(),
        window: (0.0, 1.0),
    }];
    panels.extend(results.iter().map(|r| Panel {
        title: r.method.clone(),
        subtitle: format!("PSNR {:.2} dB  SSIM {:.3}", r.scores.psnr, r.scores.ssim),
        image: r.image.clone(),
        window: (0.0, 1.0),
    }));
    let last = results.last().context("no methods ran")?;
    panels.push(Panel {
        title: format!("|error| {}", last.method),
        subtitle: "window [0, 0.25]".into(),
        image: (&last.image - &problem.truth).mapv(f32::abs),
        window: (0.0, 0.25),
    });
    if let Some(std) = &last.std {
        panels.push(Panel {
            title: format!("std {} (K = {})", last.method, a.samples),
            subtitle: format!("window [0, 0.1], mean {:.4}", std.mean().unwrap_or(0.0)),
            image: std.clone(),
            window: (0.0, 0.1),
        });
    }
    Ok(panels)
}
