//! `medsgm bench recon`: the reconstruction benchmark (thesis Tables 8.1–8.3,
//! Fig. 8.5) on held-out images: per-image CSV/JSON, a markdown summary, quality-vs-measurement
//! curves, an optional quality-vs-NFE sweep and an image panel of the first test image (see
//! [`crate::bench::recon`]).

use crate::bench::recon::ReconBench;
use crate::eval::testset::EvalSplit;
use crate::task::ct_scan::Beam;
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

impl ReconBenchArgs {
    /// The benchmark these flags ask for.
    pub fn bench(&self) -> ReconBench {
        ReconBench {
            task: self.task,
            views: self.views.clone(),
            beam: self.beam.beam,
            dose: self.beam.dose,
            accel: self.accel.clone(),
            methods: self.methods.clone(),
            model: self.model.clone(),
            latent_model: self.latent_model.clone(),
            latent_steps: self.latent_steps,
            data: self.data.clone(),
            native_grid: self.native_grid,
            n: self.n,
            split: self.split,
            size: self.size,
            steps: self.steps,
            samples: self.samples,
            seed: self.seed,
            config: self.config.clone(),
            nfe_sweep: self.nfe_sweep.clone(),
            batch: self.batch,
        }
    }
}

/// Runs `medsgm bench recon` into `out`.
pub fn run(a: &ReconBenchArgs, out: &Path) -> Result<()> {
    a.bench().run(out, &mut |table| print!("{table}"))?;
    println!("wrote {}", out.display());
    Ok(())
}
