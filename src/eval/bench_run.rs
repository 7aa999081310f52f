//! One `medsgm bench recon` run into its output folder: the method runs resolved from the task
//! config, the per-image records and summary, the quality curves, the image panel of the first
//! test image and the optional quality-vs-NFE sweep.

use crate::error::{invalid, InputContext};
use crate::eval::cases::{Case, ScoreSolver};
use crate::eval::method::TaskConfig;
use crate::eval::recon_bench::{markdown_table, run_bench, MethodRun, Record};
use crate::eval::report::{image_panel, quality_curves, write_records, write_summary};
use crate::eval::testset::TestImage;
use crate::task::{Method, Problem};
use anyhow::{Context, Result};
use std::path::Path;

/// Overrides of the task config's per-method parameters.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOverrides {
    /// Predictor steps N of the score methods.
    pub steps: Option<usize>,
    /// Posterior samples K per image of the score methods.
    pub samples: Option<usize>,
    /// Reverse-diffusion steps of latent-dc (else `steps` or the task config).
    pub latent_steps: Option<usize>,
    /// Sampler seed (score methods) and MAR noise seed.
    pub seed: u64,
}

/// The run of every method: its parameters from the task config at `config` (the defaults
/// without one), with the overrides applied.
pub fn method_runs(
    task: Problem,
    methods: &[Method],
    config: Option<&Path>,
    o: RunOverrides,
) -> Result<Vec<MethodRun>> {
    let task_config = match config {
        Some(p) => TaskConfig::load(p, false).invalid_input()?,
        None => TaskConfig::default(),
    };
    methods
        .iter()
        .map(|&method| {
            let mut params = task_config.params(task, method).invalid_input()?;
            params.steps = o.steps.unwrap_or(params.steps);
            params.samples = o.samples.unwrap_or(params.samples);
            if method == Method::LatentDc {
                params.steps = o.latent_steps.unwrap_or(params.steps);
            }
            params.seed = o.seed;
            Ok(MethodRun { method, params })
        })
        .collect()
}

/// What a benchmark runs: the task, its test images, the cases over them, the method runs and
/// the score solver of the score methods.
pub type BenchInputs<'a> = (
    Problem,
    &'a [TestImage],
    &'a [Case],
    &'a [MethodRun],
    Option<&'a dyn ScoreSolver>,
);

/// Runs the benchmark into `out` (created here, and removed again if the runs fail before
/// anything is written): `per_image` records, the `summary` (its markdown table goes to
/// `print`), `curves.png` when the cases have several settings, `panel.png` of the first test
/// image and, with `nfe_sweep` budgets, the quality-vs-NFE sweep. Progress goes to stderr.
pub fn run_recon_bench(
    inputs: BenchInputs,
    nfe_sweep_budgets: &[usize],
    out: &Path,
    print: &mut dyn FnMut(&str),
) -> Result<()> {
    let (task, images, cases, runs, solver) = inputs;
    // Everything is loaded and checked: only now create the output folder, and remove it again
    // if the benchmark fails before writing anything into it.
    let created = CreatedDir::create(out)?;
    let mut log = |s: &str| eprintln!("{s}");
    let result = run_bench(task, images, cases, runs, solver, &mut log);
    let result = created.keep_if_ok(result)?;
    write_records(out, "per_image", &result.records)?;
    let (h, w) = images[0].truth.dim();
    let title = format!(
        "medsgm bench recon --task {} ({} images, {h}x{w})",
        task,
        images.len()
    );
    let rows = write_summary(out, "summary", &title, &result.records)?;
    print(&markdown_table(&rows));
    if cases
        .iter()
        .map(|c| c.x.to_bits())
        .collect::<std::collections::HashSet<_>>()
        .len()
        > 1
    {
        let x_label = if task == Problem::Ct {
            "views"
        } else {
            "acceleration"
        };
        quality_curves(&out.join("curves.png"), &rows, x_label, false)?;
    }
    let first = &images[cases[0].images[0]];
    image_panel(
        &out.join("panel.png"),
        &first.truth,
        &format!("image {}, {}", first.id, cases[0].label),
        &result.first,
        &result
            .records
            .iter()
            .filter(|r| r.setting == cases[0].label && r.image == first.id)
            .cloned()
            .collect::<Vec<Record>>(),
    )?;
    if !nfe_sweep_budgets.is_empty() {
        nfe_sweep(inputs, nfe_sweep_budgets, out, print)?;
    }
    Ok(())
}

/// An output folder this run may have created: [`CreatedDir::keep_if_ok`] removes it again
/// (when it is still empty) if the work before the first write fails, so a failed run leaves
/// nothing behind.
pub struct CreatedDir<'a> {
    path: &'a Path,
    created: bool,
}

impl<'a> CreatedDir<'a> {
    /// Creates `path` with its missing parents (only `path` itself is ever removed again).
    pub fn create(path: &'a Path) -> Result<Self> {
        let created = !path.exists();
        std::fs::create_dir_all(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(CreatedDir { path, created })
    }

    /// Passes `result` through; on an error removes the folder if this run created it and it
    /// is still empty.
    pub fn keep_if_ok<T>(&self, result: Result<T>) -> Result<T> {
        if result.is_err() && self.created {
            let empty = std::fs::read_dir(self.path).is_ok_and(|mut d| d.next().is_none());
            if empty {
                let _ = std::fs::remove_dir(self.path);
            }
        }
        result
    }
}

/// Quality against NFE on the first case (CT, MRI) or every case (MAR).
fn nfe_sweep(
    (task, images, cases, runs, solver): BenchInputs,
    budgets: &[usize],
    out: &Path,
    print: &mut dyn FnMut(&str),
) -> Result<()> {
    let sweep_cases = if task == Problem::Mar {
        cases
    } else {
        &cases[..1]
    };
    let mut records = Vec::new();
    for run in runs.iter().filter(|r| r.method.is_score()) {
        for &nfe in budgets {
            let mut params = run.params.clone();
            // The budget is per image: K posterior samples share it.
            let per_sample = nfe / params.samples.max(1);
            params.steps = crate::eval::score::steps_for_nfe(run.method, &params, per_sample);
            let swept = MethodRun {
                method: run.method,
                params,
            };
            let mut log = |s: &str| eprintln!("NFE {nfe}: {s}");
            let r = run_bench(task, images, sweep_cases, &[swept], solver, &mut log)?;
            records.extend(r.records.into_iter().map(|mut rec| {
                rec.setting = format!("{} @ {} NFE", rec.setting, rec.nfe);
                rec.x = rec.nfe as f64;
                rec
            }));
        }
    }
    if records.is_empty() {
        return Err(invalid("--nfe-sweep needs at least one score method"));
    }
    write_records(out, "nfe_sweep_per_image", &records)?;
    let rows = write_summary(out, "nfe_sweep", "quality vs NFE", &records)?;
    print(&markdown_table(&rows));
    quality_curves(&out.join("nfe.png"), &rows, "NFE", true)
}
