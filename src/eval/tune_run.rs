//! One `medsgm tune` run: the task config and log paths, the resumed or fresh optimiser log,
//! the validation images and case, the optimisation ([`crate::eval::tune::tune`], progress on
//! stderr) and the best point written into the task config.

use crate::error::{invalid, InputContext};
use crate::eval::bayes_opt::{Evaluation, OptLog};
use crate::eval::cases::CtBeam;
use crate::eval::method::TaskConfig;
use crate::eval::setup::{solvers, task_cases, task_images};
use crate::eval::testset::{config_frame, EvalSplit, VALIDATION_SEED};
use crate::eval::tune::{fix_dims, load_log, tune, write_config, Metric};
use crate::reconstruct::tv_weight::{ImageFrame, FRAME_KEY};
use crate::task::ct_scan::Beam;
use crate::task::{Method, Problem};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// A tuning run as asked for ([`TuneSpec::validate`] checks it).
#[derive(Debug, Clone)]
pub struct TuneSpec {
    /// The inverse problem.
    pub task: Problem,
    /// The method whose parameters are tuned.
    pub method: Method,
    /// Score-model checkpoint (score methods).
    pub model: Option<PathBuf>,
    /// LSGM checkpoint (latent methods).
    pub latent_model: Option<PathBuf>,
    /// MRI: validation slices, or a nifti-slices training config.
    pub data: Option<PathBuf>,
    /// Validation images.
    pub n: usize,
    /// Total objective evaluations (including those of a resumed log).
    pub budget: usize,
    /// Initial Latin-hypercube points (default 2·dims + 2).
    pub init: Option<usize>,
    /// Metric to maximise.
    pub metric: Metric,
    /// CT: measured views.
    pub views: usize,
    /// CT: parallel or fan beam.
    pub beam: Beam,
    /// CT, fan beam: incident photons per bin.
    pub dose: Option<f64>,
    /// MRI: acceleration.
    pub accel: f64,
    /// Predictor steps N of the score methods.
    pub steps: Option<usize>,
    /// Optimiser, sampler and MAR noise seed.
    pub seed: u64,
    /// CT/MAR image size when no model is given.
    pub size: usize,
    /// Images per score-model batch.
    pub batch: usize,
    /// Problem config to update (default `configs/tuned_<task>.toml`).
    pub out: Option<PathBuf>,
    /// Evaluation log (default: beside `out`, `<stem>.<method>.log.json`).
    pub log: Option<PathBuf>,
    /// Continue from the log instead of starting afresh.
    pub resume: bool,
    /// Parameters held at a value instead of searched (`NAME=VALUE`, see
    /// [`crate::eval::tune::fix_dims`]).
    pub fix: Vec<String>,
}

impl TuneSpec {
    /// Checks the settings' ranges, the method against the task, the fixed parameters against
    /// the method's search space and the beam (invalid input).
    pub fn validate(&self) -> Result<()> {
        if !(1..=1000).contains(&self.n) {
            return Err(invalid(format!("--n {} must be in 1..=1000", self.n)));
        }
        if !(1..=10_000).contains(&self.budget) {
            return Err(invalid(format!(
                "--budget {} must be in 1..=10000",
                self.budget
            )));
        }
        if self.batch == 0 {
            return Err(invalid("--batch must be positive"));
        }
        if self.init.is_some_and(|i| !(1..=self.budget).contains(&i)) {
            return Err(invalid(format!(
                "--init must be in 1..=--budget ({})",
                self.budget
            )));
        }
        if self.steps == Some(0) {
            return Err(invalid("--steps must be positive"));
        }
        if !self.method.applies_to(self.task) {
            return Err(invalid(format!(
                "{} does not apply to --task {}",
                self.method, self.task
            )));
        }
        fix_dims(self.method, &self.fix).map_err(invalid)?;
        if !(8..=1024).contains(&self.size) {
            return Err(invalid(format!("--size {} must be in 8..=1024", self.size)));
        }
        let full_views = CtBeam::new(self.beam, self.dose)?.full_views();
        if self.task == Problem::Ct && !(1..=full_views).contains(&self.views) {
            return Err(invalid(format!(
                "--views {} must be in 1..={full_views}",
                self.views
            )));
        }
        if self.task == Problem::Mri && !(self.accel.is_finite() && self.accel >= 1.0) {
            return Err(invalid(format!("--accel {} must be ≥ 1", self.accel)));
        }
        Ok(())
    }
}

/// The result of a tuning run.
#[derive(Debug, Clone)]
pub struct TuneOutcome {
    /// The best evaluation.
    pub best: Evaluation,
    /// The names of the searched parameters, in the order of `best.params`.
    pub names: Vec<String>,
    /// Evaluations in the log.
    pub evaluations: usize,
    /// The task config written.
    pub out: PathBuf,
    /// The evaluation log.
    pub log_path: PathBuf,
}

/// Checks `s`, runs its tuning and writes the best point into its task config.
pub fn run_tune(s: &TuneSpec) -> Result<TuneOutcome> {
    s.validate()?;
    let (dims, fixed) = fix_dims(s.method, &s.fix).map_err(invalid)?;
    let beam = CtBeam::new(s.beam, s.dose)?;
    let out = s
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("configs/tuned_{}.toml", s.task)));
    let log_path = s.log.clone().unwrap_or_else(|| {
        let stem = out.file_stem().map(|s| s.to_string_lossy().into_owned());
        out.with_file_name(format!(
            "{}.{}.log.json",
            stem.unwrap_or_else(|| "tune".into()),
            s.method
        ))
    });
    if crate::io::guard::resolved(&out) == crate::io::guard::resolved(&log_path) {
        return Err(invalid(format!(
            "--log {} is the task config --out {}: they must be different files",
            log_path.display(),
            out.display()
        )));
    }
    // The config to update is read (and its [method] table checked) before any work.
    // (load and params name the file themselves)
    let mut base = TaskConfig::load(&out, true)
        .and_then(|c| c.params(s.task, s.method))
        .invalid_input()?
        .overlay(&fixed)
        .with_context(|| format!("task config {}", out.display()))
        .invalid_input()?;
    let mut log = if s.resume {
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
        OptLog::new(dims.clone(), s.seed, s.init.unwrap_or(2 * dims.len() + 2))?
    };
    let (solver, size) = solvers(
        &[s.method],
        s.model.as_deref(),
        s.latent_model.as_deref(),
        s.size,
        s.batch,
    )?;
    let images = task_images(s.task, size, EvalSplit::Validation, s.n, s.data.as_deref())?;
    let cases = task_cases(s.task, &images, &[s.views], beam, &[s.accel], s.seed)?;
    for p in [&out, &log_path] {
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
    }
    base.steps = s.steps.unwrap_or(base.steps);
    base.seed = s.seed;
    let names: Vec<&str> = dims.iter().map(|d| d.name.as_str()).collect();
    let best = tune(
        s.task,
        &images,
        &cases,
        s.method,
        &base,
        solver
            .as_ref()
            .map(|s| s as &dyn crate::eval::cases::ScoreSolver),
        s.metric,
        s.budget,
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
                s.budget,
                values.join(", "),
                s.metric,
                e.value
            );
        },
    )?;
    let mut record = toml::Table::new();
    record.insert("metric".into(), s.metric.to_string().into());
    record.insert("value".into(), best.value.into());
    record.insert("evaluations".into(), (log.evaluations.len() as i64).into());
    record.insert("validation_images".into(), (s.n as i64).into());
    record.insert("first_seed".into(), (VALIDATION_SEED as i64).into());
    record.insert("setting".into(), cases[0].label.clone().into());
    if s.method.is_score() {
        record.insert("steps".into(), (base.steps as i64).into());
    }
    if !fixed.is_empty() {
        record.insert("fixed".into(), fixed.clone().into());
    }
    if let Some(frame) = tuning_frame(s.task, s.data.as_deref())? {
        record.insert(FRAME_KEY.into(), frame.to_toml()?);
    }
    write_config(&out, s.method, &dims, &best, &fixed, record)?;
    Ok(TuneOutcome {
        evaluations: log.evaluations.len(),
        best,
        names: names.iter().map(|n| n.to_string()).collect(),
        out,
        log_path,
    })
}

/// The frame of the images a task is tuned on (recorded so that `recon` can convert FISTA-TV's
/// weight to a measurement's units, [`crate::reconstruct::tv_weight`]): a training config's
/// slices ([`config_frame`]), phantoms in their own units, or `None` for MRI slices from a
/// folder or NPY volume (normalised by their maximum: no physical frame).
fn tuning_frame(task: Problem, data: Option<&Path>) -> Result<Option<ImageFrame>> {
    match data {
        Some(p) if p.extension().is_some_and(|e| e == "toml") => {
            Ok(Some(config_frame(p).invalid_input()?))
        }
        None if task != Problem::Mri => Ok(Some(ImageFrame {
            normalization: crate::checkpoint::Normalization::Identity,
            pixel_spacing_mm: None,
        })),
        _ => Ok(None),
    }
}
