//! `medsgm tune`: tune a method's parameters on validation images (seeds from
//! `VALIDATION_SEED`, disjoint from the test set) by Gaussian-process Bayesian optimisation,
//! resumable from its JSON log, and write the best point into a TOML task config.

use crate::eval::tune::Metric;
use crate::eval::tune_run::{run_tune, TuneSpec};
use crate::task::{Method, Problem};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `medsgm tune`.
#[derive(Debug, Clone, Args)]
pub struct TuneArgs {
    /// The inverse problem.
    #[arg(long, value_enum)]
    pub task: Problem,
    /// The method whose parameters are tuned (fista-tv or a score method).
    #[arg(long)]
    pub method: Method,
    /// Score-model checkpoint (score methods).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// LSGM checkpoint (latent-dc, latent-dds, latent-diffpir).
    #[arg(long)]
    pub latent_model: Option<PathBuf>,
    /// MRI: validation slices (NPY volume or folder, disjoint from the test slices), or a
    /// nifti-slices training config (then training slices, never its held-out block).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Validation images.
    #[arg(long, default_value_t = 8)]
    pub n: usize,
    /// Total objective evaluations (including those of a resumed log).
    #[arg(long, default_value_t = 20)]
    pub budget: usize,
    /// Initial Latin-hypercube points (default 2·dims + 2).
    #[arg(long)]
    pub init: Option<usize>,
    /// Metric to maximise.
    #[arg(long, value_enum, default_value = "ssim")]
    pub metric: Metric,
    /// CT: measured views.
    #[arg(long, default_value_t = 23)]
    pub views: usize,
    /// CT: beam geometry and dose.
    #[command(flatten)]
    pub beam: crate::cli::bench_recon::CtBeamArgs,
    /// MRI: acceleration.
    #[arg(long, default_value_t = 4.0)]
    pub accel: f64,
    /// Predictor steps N of the score methods.
    #[arg(long)]
    pub steps: Option<usize>,
    /// Optimiser, sampler and MAR noise seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// CT/MAR image size when no model is given.
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Images per score-model batch.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Problem config to update (default `configs/tuned_<task>.toml`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Evaluation log (default: beside --out, `<stem>.<method>.log.json`).
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Continue from the log instead of starting afresh.
    #[arg(long)]
    pub resume: bool,
    /// Hold a parameter at a value instead of searching it (NAME=VALUE, repeatable), e.g.
    /// `--fix lambda=1` to tune only the corrector SNR of pc-projection.
    #[arg(long, value_name = "NAME=VALUE")]
    pub fix: Vec<String>,
}

/// Runs `medsgm tune`.
pub fn run(a: &TuneArgs) -> Result<()> {
    let outcome = run_tune(&TuneSpec {
        task: a.task,
        method: a.method,
        model: a.model.clone(),
        latent_model: a.latent_model.clone(),
        data: a.data.clone(),
        n: a.n,
        budget: a.budget,
        init: a.init,
        metric: a.metric,
        views: a.views,
        beam: a.beam.beam,
        dose: a.beam.dose,
        accel: a.accel,
        steps: a.steps,
        seed: a.seed,
        size: a.size,
        batch: a.batch,
        out: a.out.clone(),
        log: a.log.clone(),
        resume: a.resume,
        fix: a.fix.clone(),
    })?;
    println!(
        "best {} = {:.4} at {} after {} evaluations; wrote {} (log {})",
        a.metric,
        outcome.best.value,
        outcome
            .names
            .iter()
            .zip(&outcome.best.params)
            .map(|(n, v)| format!("{n} = {v:.4e}"))
            .collect::<Vec<_>>()
            .join(", "),
        outcome.evaluations,
        outcome.out.display(),
        outcome.log_path.display()
    );
    Ok(())
}
