//! The reconstruction benchmark as asked for (`medsgm bench recon`, thesis Tables 8.1–8.3,
//! Fig. 8.5; `medsgm demo --task`): [`ReconBench`] checks its settings, prepares the held-out
//! images, cases, method runs and solvers ([`crate::eval::setup`]) and runs
//! [`crate::eval::bench_run::run_recon_bench`] into an output folder.

use crate::error::invalid;
use crate::eval::bench_run::{method_runs, run_recon_bench, RunOverrides};
use crate::eval::cases::{CtBeam, ScoreSolver};
use crate::eval::setup::{independent_images, is_independent, solvers, task_cases, task_images};
use crate::eval::testset::EvalSplit;
use crate::task::ct_scan::Beam;
use crate::task::{Method, Problem};
use anyhow::Result;
use std::path::{Path, PathBuf};

/// One reconstruction benchmark as asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconBench {
    /// The inverse problem.
    pub task: Problem,
    /// CT: numbers of measured views.
    pub views: Vec<usize>,
    /// CT: parallel or fan beam.
    pub beam: Beam,
    /// CT, fan beam: incident photons per bin.
    pub dose: Option<f64>,
    /// MRI: acceleration factors.
    pub accel: Vec<f64>,
    /// The methods compared.
    pub methods: Vec<Method>,
    /// Score-model checkpoint.
    pub model: Option<PathBuf>,
    /// LSGM checkpoint.
    pub latent_model: Option<PathBuf>,
    /// Reverse-diffusion steps of latent-dc.
    pub latent_steps: Option<usize>,
    /// The held-out images (a training config, a volume, a folder, independent slices).
    pub data: Option<PathBuf>,
    /// Independent slices at their own grid instead of the prior's.
    pub native_grid: bool,
    /// Number of test images.
    pub n: usize,
    /// Test or validation images of a prepared set.
    pub split: EvalSplit,
    /// CT/MAR image size without a model.
    pub size: usize,
    /// Predictor steps N of the score methods (over the task config).
    pub steps: Option<usize>,
    /// Posterior samples K per image (over the task config).
    pub samples: Option<usize>,
    /// Sampler and MAR noise seed.
    pub seed: u64,
    /// Task config with per-method parameters.
    pub config: Option<PathBuf>,
    /// NFE budgets of the quality-vs-NFE sweep.
    pub nfe_sweep: Vec<usize>,
    /// Images per score-model batch.
    pub batch: usize,
}

impl ReconBench {
    /// Checks the settings' ranges and the methods against the task (invalid input).
    pub fn validate(&self) -> Result<()> {
        if !(1..=10_000).contains(&self.n) {
            return Err(invalid("--n must be in 1..=10000"));
        }
        if !(8..=1024).contains(&self.size) || self.batch == 0 {
            return Err(invalid("--size must be in 8..=1024 and --batch positive"));
        }
        if let Some(m) = self.methods.iter().find(|m| !m.applies_to(self.task)) {
            return Err(invalid(format!(
                "{m} does not apply to --task {}",
                self.task
            )));
        }
        let full_views = CtBeam::new(self.beam, self.dose)?.full_views();
        if self.task == Problem::Ct && self.views.iter().any(|&v| !(1..=full_views).contains(&v)) {
            return Err(invalid(format!("--views must be in 1..={full_views}")));
        }
        if self.task == Problem::Mri && self.accel.iter().any(|&r| !(r.is_finite() && r >= 1.0)) {
            return Err(invalid("--accel must be ≥ 1"));
        }
        if self.steps == Some(0)
            || self.latent_steps == Some(0)
            || self.samples == Some(0)
            || self.nfe_sweep.contains(&0)
        {
            return Err(invalid(
                "--steps, --latent-steps, --samples and --nfe-sweep budgets must be positive",
            ));
        }
        Ok(())
    }

    /// Runs the benchmark into the folder `out` (created), handing each table to `print`.
    pub fn run(&self, out: &Path, print: &mut dyn FnMut(&str)) -> Result<()> {
        self.validate()?;
        if out.exists() && !out.is_dir() {
            return Err(invalid(format!(
                "--out {} exists and is not a directory",
                out.display()
            )));
        }
        let (solver, size) = solvers(
            &self.methods,
            self.model.as_deref(),
            self.latent_model.as_deref(),
            self.size,
            self.batch,
        )?;
        let independent = matches!((self.data.as_deref(), self.model.as_deref()), (Some(d), Some(_)) if is_independent(self.task, d));
        if independent && self.split != EvalSplit::Test {
            return Err(invalid(
                "--split applies to prepared sets (phantoms, a training config), not independent slices",
            ));
        }
        if self.native_grid && !independent {
            return Err(invalid(
                "--native-grid applies to independent DICOM/NIfTI slices given as --data with a --model",
            ));
        }
        let images = match (self.task, self.data.as_deref(), self.model.as_deref()) {
            (task, Some(d), Some(m)) if is_independent(task, d) => {
                independent_images(task, d, m, self.n, self.native_grid)?
            }
            _ => task_images(self.task, size, self.split, self.n, self.data.as_deref())?,
        };
        let beam = CtBeam::new(self.beam, self.dose)?;
        let cases = task_cases(
            self.task,
            &images,
            &self.views,
            beam,
            &self.accel,
            self.seed,
        )?;
        let overrides = RunOverrides {
            steps: self.steps,
            samples: self.samples,
            latent_steps: self.latent_steps,
            seed: self.seed,
        };
        let runs = method_runs(self.task, &self.methods, self.config.as_deref(), overrides)?;
        let solver = solver.as_ref().map(|s| s as &dyn ScoreSolver);
        run_recon_bench(
            (self.task, &images, &cases, &runs, solver),
            &self.nfe_sweep,
            out,
            print,
        )
    }
}
