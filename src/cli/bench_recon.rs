//! `medsgm bench recon`: the reconstruction benchmark (thesis Tables 8.1–8.3,
//! Fig. 8.5) on held-out images: per-image CSV/JSON, a markdown summary, quality-vs-measurement
//! curves, an optional quality-vs-NFE sweep and an image panel of the first test image (see
//! [`crate::eval::setup`] and [`crate::eval::bench_run`]).

use crate::cli::invalid;
use crate::cli::simulate::Beam;
use crate::eval::bench_run::{method_runs, run_recon_bench, RunOverrides};
use crate::eval::cases::{CtBeam, ScoreSolver};
use crate::eval::setup::{independent_images, is_independent, solvers, task_cases, task_images};
use crate::eval::testset::EvalSplit;
use crate::task::{Method, Problem};
use anyhow::Result;
use clap::Args;
use std::path::{Path, PathBuf};

/// Arguments of `medsgm bench recon` (the output directory is `medsgm bench --out`).
#[derive(Debug, Clone, Args)]
pub struct ReconBenchArgs {
    /// The inverse problem.
    #[arg(long, value_enum)]
    pub task: Problem,
    /// CT: numbers of measured views (of 180; fan beam: of 360).
    #[arg(long, value_delimiter = ',', default_value = "10,20,23,45")]
    pub views: Vec<usize>,
    /// CT: beam geometry and dose.
    #[command(flatten)]
    pub beam: CtBeamArgs,
    /// MRI: acceleration factors (equispaced columns).
    #[arg(long, value_delimiter = ',', default_value = "4,8,24")]
    pub accel: Vec<f64>,
    /// Methods, comma separated (fbp, fista-tv, zero-filled, li, pc-projection, dds, diffpir, dps,
    /// ald-projection, score-sde, langevin; with the LSGM prior: latent-dc = latent-projection,
    /// latent-dds, latent-diffpir).
    #[arg(long, value_delimiter = ',', required = true)]
    pub methods: Vec<Method>,
    /// Score-model checkpoint (needed by the score methods; sets the image size).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// LSGM checkpoint (`lsgm.safetensors` from `medsgm train` with an LSGM config), needed by
    /// latent-dc.
    #[arg(long)]
    pub latent_model: Option<PathBuf>,
    /// Reverse-diffusion steps of latent-dc (2 NFE each; default: --steps or the task
    /// config). Set it so that latent-dc's s/slice matches pc-projection's for a comparison at
    /// equal wall time.
    #[arg(long)]
    pub latent_steps: Option<usize>,
    /// MRI: held-out slices (a [slices, H, W] NPY volume, a folder of images in [0, 1], or a
    /// nifti-slices training config such as configs/mri_mni_64.toml: its held-out block).
    /// CT: a nifti-slices training config of a real CT volume (configs/ct_head.toml): its
    /// held-out slab at the native resolution instead of phantoms; or a DICOM/NIfTI/NPY file
    /// or folder of independent slices (other patients), resampled to --model's pixel spacing,
    /// HU through its window, padded square with air.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// With independent DICOM/NIfTI slices in --data: keep each slice at its own matrix and
    /// pixel spacing (e.g. a 512² slice at 0.43 mm) instead of resampling it to the prior's
    /// spacing — the prior then sees anatomy at another scale than in training (measures which
    /// grid is better).
    #[arg(long)]
    pub native_grid: bool,
    /// Number of test images.
    #[arg(long, default_value_t = 50)]
    pub n: usize,
    /// Which images of a prepared set (phantoms, a training config's slabs): the held-out test
    /// images, or the validation images `tune` uses — for choosing between priors or training
    /// modes without touching the test set.
    #[arg(long, value_enum, default_value = "test")]
    pub split: EvalSplit,
    /// CT/MAR image size when no model is given.
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Predictor steps N of the score methods (overrides the task config).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Posterior samples K per image of the score methods (their mean is the reconstruction;
    /// the reported NFE is per image, K times the per-sample NFE). Overrides the task config.
    #[arg(long)]
    pub samples: Option<usize>,
    /// Sampler seed (score methods) and MAR noise seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Problem config with per-method parameters (e.g. configs/tuned_ct.toml from `medsgm tune`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Also measure quality against NFE at these budgets per image (first setting, score
    /// methods; with --samples K each sample gets budget / K).
    #[arg(long, value_delimiter = ',')]
    pub nfe_sweep: Vec<usize>,
    /// Images per score-model batch.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
}

/// CT beam options of `bench recon` and `tune`.
#[derive(Debug, Clone, Args)]
pub struct CtBeamArgs {
    /// CT: parallel beam (views of 180 over [0°, 180°), noise-free) or fan beam (views of a
    /// 360-view full scan, R = 2N, D = 4N, equiangular detector, quarter offset).
    #[arg(long = "geometry", value_enum, default_value = "parallel")]
    pub beam: Beam,
    /// CT, fan beam: pre-log Poisson noise with this many incident photons per bin (low dose:
    /// e.g. 1e4; a line through N pixels of value 1 attenuates by e⁻⁴).
    #[arg(long)]
    pub dose: Option<f64>,
}

impl CtBeamArgs {
    /// The benchmark's beam, checked.
    pub fn beam(&self) -> Result<CtBeam> {
        match (self.beam, self.dose) {
            (Beam::Parallel, Some(_)) => Err(invalid("--dose needs --geometry fan")),
            (_, Some(i0)) if !(i0.is_finite() && i0 > 0.0) => {
                Err(invalid("--dose must be a positive photon count"))
            }
            (Beam::Parallel, None) => Ok(CtBeam::Parallel),
            (Beam::Fan, dose) => Ok(CtBeam::Fan { dose }),
        }
    }
}

fn validate(a: &ReconBenchArgs) -> Result<()> {
    if !(1..=10_000).contains(&a.n) {
        return Err(invalid("--n must be in 1..=10000"));
    }
    if !(8..=1024).contains(&a.size) || a.batch == 0 {
        return Err(invalid("--size must be in 8..=1024 and --batch positive"));
    }
    if let Some(m) = a.methods.iter().find(|m| !m.applies_to(a.task)) {
        return Err(invalid(format!("{m} does not apply to --task {}", a.task)));
    }
    let full_views = match a.beam.beam()? {
        CtBeam::Parallel => crate::eval::cases::FULL_VIEWS,
        CtBeam::Fan { .. } => crate::eval::cases::FAN_FULL_VIEWS,
    };
    if a.task == Problem::Ct && a.views.iter().any(|&v| !(1..=full_views).contains(&v)) {
        return Err(invalid(format!("--views must be in 1..={full_views}")));
    }
    if a.task == Problem::Mri && a.accel.iter().any(|&r| !(r.is_finite() && r >= 1.0)) {
        return Err(invalid("--accel must be ≥ 1"));
    }
    if a.steps == Some(0)
        || a.latent_steps == Some(0)
        || a.samples == Some(0)
        || a.nfe_sweep.contains(&0)
    {
        return Err(invalid(
            "--steps, --latent-steps, --samples and --nfe-sweep budgets must be positive",
        ));
    }
    Ok(())
}

/// Runs `medsgm bench recon` into `out`.
pub fn run(a: &ReconBenchArgs, out: &Path) -> Result<()> {
    validate(a)?;
    if out.exists() && !out.is_dir() {
        return Err(invalid(format!(
            "--out {} exists and is not a directory",
            out.display()
        )));
    }
    let (solver, size) = solvers(
        &a.methods,
        a.model.as_deref(),
        a.latent_model.as_deref(),
        a.size,
        a.batch,
    )?;
    let independent = matches!((a.data.as_deref(), a.model.as_deref()), (Some(d), Some(_)) if is_independent(a.task, d));
    if independent && a.split != EvalSplit::Test {
        return Err(invalid(
            "--split applies to prepared sets (phantoms, a training config), not independent slices",
        ));
    }
    if a.native_grid && !independent {
        return Err(invalid(
            "--native-grid applies to independent DICOM/NIfTI slices given as --data with a --model",
        ));
    }
    let images = match (a.task, a.data.as_deref(), a.model.as_deref()) {
        (task, Some(d), Some(m)) if is_independent(task, d) => {
            independent_images(task, d, m, a.n, a.native_grid)?
        }
        _ => task_images(a.task, size, a.split, a.n, a.data.as_deref())?,
    };
    let cases = task_cases(a.task, &images, &a.views, a.beam.beam()?, &a.accel, a.seed)?;
    let overrides = RunOverrides {
        steps: a.steps,
        samples: a.samples,
        latent_steps: a.latent_steps,
        seed: a.seed,
    };
    let runs = method_runs(a.task, &a.methods, a.config.as_deref(), overrides)?;
    let solver = solver.as_ref().map(|s| s as &dyn ScoreSolver);
    run_recon_bench(
        (a.task, &images, &cases, &runs, solver),
        &a.nfe_sweep,
        out,
        &mut |table| print!("{table}"),
    )?;
    println!("wrote {}", out.display());
    Ok(())
}
