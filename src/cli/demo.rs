//! `medsgm demo`: score-based sparse-view CT on a built-in problem (see [`crate::demo`]: a
//! held-out phantom measured with 23 equispaced views, reconstructed by FBP, FISTA-TV and
//! medsgm — DDS by default, `--method pc-projection` for the paper's sampler; checked and run
//! as a [`DemoRequest`]); the scores are printed and the comparison figure is saved.

use crate::demo::{DemoRequest, DemoSpec, SamplerSpec, FISTA_TV_WEIGHT};
use crate::reconstruct::score::DENSE_VIEWS;
use crate::task::phantom::PhantomKind;
use crate::task::{Method, Problem};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

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
    /// `ct` (head-CT test slab, 23 views, models/ct_head_whole) or `mri` (Colin27 T1 test slab, 4×,
    /// models/mri_t1_multi), reconstructed by the classical baselines and the fast DDS sampler
    /// (50 NFE) with the tuned task configs (configs/tuned_*.toml), all on the first slice of
    /// the test slab; needs `bash data-scripts/fetch_real_data.sh` first.
    #[arg(long, value_enum, conflicts_with_all = ["held_out", "model", "classical_only", "method"])]
    pub task: Option<Problem>,
}

impl DemoArgs {
    /// The demo these flags ask for.
    fn request(&self) -> DemoRequest {
        DemoRequest {
            out_dir: self.out_dir.clone(),
            method: self.method,
            task: self.task,
            spec: DemoSpec {
                model: self.model.clone(),
                phantom: self.phantom,
                held_out: self.held_out.clone(),
                views: self.views,
                seed: self.seed,
                sigma: self.sigma,
                sampler: SamplerSpec {
                    samples: self.samples,
                    snr: self.snr,
                    lambda: self.lambda,
                    seed: self.sampler_seed,
                    ..SamplerSpec::for_method(self.method, self.steps, self.t_start)
                },
                dense_views: self.dense_views,
                classical_only: self.classical_only,
                tv_weight: self.tv_weight,
            },
        }
    }
}

/// Runs `medsgm demo`.
pub fn run(a: &DemoArgs) -> Result<()> {
    a.request().run(&mut |text| print!("{text}"))
}
