//! `medsgm demo`: score-based sparse-view CT on a built-in problem (see [`crate::demo`]: a
//! held-out phantom measured with 23 equispaced views, reconstructed by FBP, FISTA-TV and
//! medsgm — DDS by default, `--method pc-projection` for the paper's sampler); the scores are
//! printed and the comparison figure is saved.

use crate::cli::bench_recon::ReconBenchArgs;
use crate::cli::invalid;
use crate::cli::phantom::PhantomKind;
use crate::demo::{
    DemoSpec, SamplerSpec, DDS_ETA, DDS_GAMMA, DDS_STEPS, DDS_T_START, DEFAULT_STEPS,
    FISTA_TV_WEIGHT, REAL_DEMO_NFE,
};
use crate::reconstruct::score::DENSE_VIEWS;
use crate::task::{Method, Problem};
use anyhow::Result;
use clap::Args;
use medsgm_recon::{InverseConfig, InverseMethod};
use std::path::PathBuf;
use std::time::Instant;

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
    /// Score method: dds (default: 50 NFE, the parameters tuned for the embedded prior) or the
    /// paper's pc-projection (NFE per sample 2N + 1), or another pixel score method.
    #[arg(long, value_enum, default_value = "dds")]
    pub method: Method,
    /// Sampler time steps N (default 50 for dds, 100 otherwise).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Posterior samples K (mean and std map).
    #[arg(long, default_value_t = 4)]
    pub samples: usize,
    /// Corrector signal-to-noise ratio r.
    #[arg(long, default_value_t = medsgm_recon::DEFAULT_SNR)]
    pub snr: f64,
    /// λ of the data-consistency step.
    #[arg(long, default_value_t = 1.0)]
    pub lambda: f64,
    /// Sampler seed.
    #[arg(long, default_value_t = 0)]
    pub sampler_seed: u64,
    /// Sampler start time t₀ ∈ (0, 1]: 1 starts from the prior, below 1 a warm start from the
    /// measured-data estimate (see `medsgm recon --help`; default 0.156 for dds, 1 otherwise).
    #[arg(long)]
    pub t_start: Option<f64>,
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
    #[arg(long, value_enum, conflicts_with_all = ["held_out", "model", "classical_only", "method"])]
    pub task: Option<Problem>,
}

impl DemoArgs {
    /// The score method's settings: the flags, then the method's demo defaults (DDS: the
    /// parameters tuned for the embedded prior).
    fn sampler(&self) -> SamplerSpec {
        let method = self.method.inverse_method().unwrap_or(InverseMethod::Dds);
        let dds = method == InverseMethod::Dds;
        let defaults = InverseConfig::default();
        SamplerSpec {
            method,
            steps: self
                .steps
                .unwrap_or(if dds { DDS_STEPS } else { DEFAULT_STEPS }),
            samples: self.samples,
            snr: self.snr,
            lambda: self.lambda,
            seed: self.sampler_seed,
            t_start: self.t_start.unwrap_or(if dds { DDS_T_START } else { 1.0 }),
            eta: if dds { DDS_ETA } else { defaults.eta },
            gamma: if dds { DDS_GAMMA } else { defaults.gamma },
        }
    }

    /// The demo's problem and methods of these flags.
    fn spec(&self) -> DemoSpec {
        DemoSpec {
            model: self.model.clone(),
            phantom: self.phantom,
            held_out: self.held_out.clone(),
            views: self.views,
            seed: self.seed,
            sigma: self.sigma,
            sampler: self.sampler(),
            dense_views: self.dense_views,
            classical_only: self.classical_only,
            tv_weight: self.tv_weight,
        }
    }
}

fn validate(a: &DemoArgs) -> Result<()> {
    if a.method.inverse_method().is_none() {
        return Err(invalid(format!(
            "--method {} is not a score method of the pixel prior (e.g. dds, pc-projection)",
            a.method
        )));
    }
    if !(1..=3600).contains(&a.views) {
        return Err(invalid("--views must be in 1..=3600"));
    }
    if !(a.sigma.is_finite() && a.sigma >= 0.0) {
        return Err(invalid("--sigma must be non-negative"));
    }
    if let Some(r) = a.spec().sampler.config().out_of_range() {
        return Err(invalid(r.flag_message()));
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
    let run = crate::demo::run(&a.spec())?;
    let (problem, results, size) = (&run.problem, &run.results, run.size);

    // Every input was read and every method ran: only now create the output folder.
    let files = crate::demo::write_outputs(&a.out_dir, problem, results, a.views, a.samples)?;

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
    for r in results {
        println!(
            "{:<10} {:>10.2} {:>8.4} {:>8} {:>10.2}",
            r.method,
            r.scores.psnr,
            r.scores.ssim,
            r.nfe.map_or("-".to_string(), |n| n.to_string()),
            r.seconds
        );
    }
    println!("figure: {}", files.figure.display());
    println!("summary: {}", files.summary.display());
    println!("total: {:.1} s", total.elapsed().as_secs_f64());
    Ok(())
}
