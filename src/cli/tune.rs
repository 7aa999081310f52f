//! `medsgm tune`: tune a method's parameters on validation images (seeds from
//! `VALIDATION_SEED`, disjoint from the test set) by Gaussian-process Bayesian optimisation,
//! resumable from its JSON log, and write the best point into a TOML task config.

use crate::cli::bench_recon::{solvers, task_cases, task_images};
use crate::cli::{invalid, InputContext};
use crate::eval::bayes_opt::OptLog;
use crate::eval::cases::CtBeam;
use crate::eval::method::TaskConfig;
use crate::eval::testset::{EvalSplit, VALIDATION_SEED};
use crate::eval::tune::{fix_dims, load_log, tune, write_config, Metric};
use crate::task::{Method, Problem};
use anyhow::{Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};

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

/// Whether two paths name the same file (the same existing file, or the same name in the same
/// existing folder); lexical comparison where the folders do not exist yet.
fn same_file(a: &Path, b: &Path) -> bool {
    let resolve = |p: &Path| -> PathBuf {
        if let Ok(c) = p.canonicalize() {
            return c;
        }
        let dir = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        match (dir.canonicalize(), p.file_name()) {
            (Ok(d), Some(name)) => d.join(name),
            _ => p.to_path_buf(),
        }
    };
    resolve(a) == resolve(b)
}

/// Runs `medsgm tune`.
pub fn run(a: &TuneArgs) -> Result<()> {
    if !(1..=1000).contains(&a.n) {
        return Err(invalid(format!("--n {} must be in 1..=1000", a.n)));
    }
    if !(1..=10_000).contains(&a.budget) {
        return Err(invalid(format!(
            "--budget {} must be in 1..=10000",
            a.budget
        )));
    }
    if a.batch == 0 {
        return Err(invalid("--batch must be positive"));
    }
    if a.init.is_some_and(|i| !(1..=a.budget).contains(&i)) {
        return Err(invalid(format!(
            "--init must be in 1..=--budget ({})",
            a.budget
        )));
    }
    if a.steps == Some(0) {
        return Err(invalid("--steps must be positive"));
    }
    if !a.method.applies_to(a.task) {
        return Err(invalid(format!(
            "{} does not apply to --task {}",
            a.method, a.task
        )));
    }
    let (dims, fixed) = fix_dims(a.method, &a.fix).map_err(invalid)?;
    if !(8..=1024).contains(&a.size) {
        return Err(invalid(format!("--size {} must be in 8..=1024", a.size)));
    }
    let beam = a.beam.beam()?;
    if a.task == Problem::Ct {
        let full_views = match beam {
            CtBeam::Parallel => crate::eval::cases::FULL_VIEWS,
            CtBeam::Fan { .. } => crate::eval::cases::FAN_FULL_VIEWS,
        };
        if !(1..=full_views).contains(&a.views) {
            return Err(invalid(format!(
                "--views {} must be in 1..={full_views}",
                a.views
            )));
        }
    }
    if a.task == Problem::Mri && !(a.accel.is_finite() && a.accel >= 1.0) {
        return Err(invalid(format!("--accel {} must be ≥ 1", a.accel)));
    }
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("configs/tuned_{}.toml", a.task)));
    let log_path = a.log.clone().unwrap_or_else(|| {
        let stem = out.file_stem().map(|s| s.to_string_lossy().into_owned());
        out.with_file_name(format!(
            "{}.{}.log.json",
            stem.unwrap_or_else(|| "tune".into()),
            a.method
        ))
    });
    if same_file(&out, &log_path) {
        return Err(invalid(format!(
            "--log {} is the task config --out {}: they must be different files",
            log_path.display(),
            out.display()
        )));
    }
    // The config to update is read (and its [method] table checked) before any work.
    let mut base = TaskConfig::load(&out, true)
        .and_then(|c| c.params(a.task, a.method))
        .and_then(|p| p.overlay(&fixed))
        .with_context(|| format!("task config {}", out.display()))
        .invalid_input()?;
    let mut log = if a.resume {
        if !log_path.is_file() {
            return Err(invalid(format!(
                "--resume: there is no tuning log {} to resume (give it with --log, or start \
                 afresh without --resume)",
                log_path.display()
            )));
        }
        let log = load_log(&log_path, &dims).map_err(invalid)?;
        eprintln!(
            "resuming from {} ({} evaluations)",
            log_path.display(),
            log.evaluations.len()
        );
        log
    } else {
        OptLog::new(dims.clone(), a.seed, a.init.unwrap_or(2 * dims.len() + 2))?
    };
    let (solver, size) = solvers(
        &[a.method],
        a.model.as_deref(),
        a.latent_model.as_deref(),
        a.size,
        a.batch,
    )?;
    let images = task_images(a.task, size, EvalSplit::Validation, a.n, a.data.as_deref())?;
    let cases = task_cases(a.task, &images, &[a.views], beam, &[a.accel], a.seed)?;
    for p in [&out, &log_path] {
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
    }
    base.steps = a.steps.unwrap_or(base.steps);
    base.seed = a.seed;
    let names: Vec<&str> = dims.iter().map(|d| d.name.as_str()).collect();
    let best = tune(
        a.task,
        &images,
        &cases,
        a.method,
        &base,
        solver
            .as_ref()
            .map(|s| s as &dyn crate::eval::cases::ScoreSolver),
        a.metric,
        a.budget,
        &mut log,
        &log_path,
        &mut |k, e| {
            let values: Vec<String> = names
                .iter()
                .zip(&e.params)
                .map(|(n, v)| format!("{n} = {v:.4e}"))
                .collect();
            eprintln!(
                "[{k}/{}] {}: {} {:.4}",
                a.budget,
                values.join(", "),
                a.metric,
                e.value
            );
        },
    )?;
    let mut record = toml::Table::new();
    record.insert("metric".into(), a.metric.to_string().into());
    record.insert("value".into(), best.value.into());
    record.insert("evaluations".into(), (log.evaluations.len() as i64).into());
    record.insert("validation_images".into(), (a.n as i64).into());
    record.insert("first_seed".into(), (VALIDATION_SEED as i64).into());
    record.insert("setting".into(), cases[0].label.clone().into());
    if a.method.is_score() {
        record.insert("steps".into(), (base.steps as i64).into());
    }
    if !fixed.is_empty() {
        record.insert("fixed".into(), fixed.clone().into());
    }
    write_config(&out, a.method, &dims, &best, &fixed, record)?;
    println!(
        "best {} = {:.4} at {} after {} evaluations; wrote {} (log {})",
        a.metric,
        best.value,
        names
            .iter()
            .zip(&best.params)
            .map(|(n, v)| format!("{n} = {v:.4e}"))
            .collect::<Vec<_>>()
            .join(", "),
        log.evaluations.len(),
        out.display(),
        log_path.display()
    );
    Ok(())
}
