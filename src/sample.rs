//! Unconditional samples from a trained score model (behind `medsgm sample`) with the
//! predictor–corrector sampler (thesis Alg. B.3; method digest §3.7–3.8) or the
//! probability-flow ODE (thesis §7.4.3; digest §3.4). An LSGM checkpoint (told apart by the
//! `format` of its safetensors metadata) is sampled the same way in its latent space with the
//! mixed-score prior's EMA weights, then decoded by the VAE's decoder mean (LSGM §7.7).
//!
//! The files: `samples.png` (grid, model units [0, 1] shown black..white), `samples.npy`
//! (float32 `[n, H, W]` in the model's normalised units; the normalisation that maps them back
//! to HU or MRI intensities is recorded in `samples.json`), optionally `samples.nii.gz` (the
//! same images as a volume `[H, W, n]`), and `samples.json` (sampler, NFE, seconds, model
//! description). [`SampleRequest`] is one run as asked for: checked, sampled, written.

use crate::checkpoint::read_format;
use crate::error::{invalid, InputContext};
use crate::io::atomic::write_bytes_atomic;
use crate::io::nifti_io::{write_nifti, NiftiMeta};
use crate::io::npy::write_npy;
use crate::lsgm::trainer::LSGM_FORMAT;
use crate::lsgm::{LatentPrior, LsgmCheckpoint, Vae};
use crate::model::LoadedModel;
use crate::progress::progress;
use crate::train::plot::tensor_images;
use anyhow::{Context, Result};
use candle_core::Tensor;
use clap::ValueEnum;
use medsgm_recon::lsgm::LatentSchedule;
use medsgm_recon::ode_sampler::{ode_sample, OdeConfig, OdeMethod};
use medsgm_recon::ode_solver::Tolerances;
use medsgm_recon::{
    CorrectorKind, NoHook, PcConfig, PcSampler, PredictorKind, Samples, ScoreModel, Sde,
};
use ndarray::{Array2, Array3, Axis};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Sampler families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SamplerKind {
    /// Predictor–corrector SDE sampler (`--predictor`, `--corrector`, `--snr`, `--steps`).
    Pc,
    /// Probability-flow ODE (`--ode-solver`; `--steps` for the fixed-step solvers).
    Ode,
    /// The λ-family of generative SDEs between the reverse SDE (λ = 0) and the
    /// probability-flow ODE (λ → 1), Euler–Maruyama with `--steps` (Huang et al. 2021, Eq. 27;
    /// `--lambda-ode`).
    SdeLambda,
}

/// Integrators of the probability-flow ODE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OdeSolverKind {
    /// Adaptive Dormand–Prince RK45 with `--tol` (rtol = atol).
    Rk45,
    /// Fixed-step Heun (2 NFE per step).
    Heun,
    /// Fixed-step Euler.
    Euler,
}

/// A sampler as asked for: its family and every setting as given (`None`: the default; a
/// setting of another family is an error, not silently ignored).
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerRequest {
    /// The family.
    pub sampler: SamplerKind,
    /// Time steps N (PC; fixed-step ODE solvers; default 500).
    pub steps: Option<usize>,
    /// PC predictor (default reverse diffusion).
    pub predictor: Option<PredictorKind>,
    /// PC corrector (default Langevin).
    pub corrector: Option<CorrectorKind>,
    /// PC corrector steps M (default 1).
    pub corrector_steps: Option<usize>,
    /// PC corrector signal-to-noise ratio r (default 0.16).
    pub snr: Option<f64>,
    /// ODE integrator (default RK45).
    pub ode_solver: Option<OdeSolverKind>,
    /// RK45 tolerance, rtol = atol (default 1e-5).
    pub tol: Option<f64>,
    /// λ of the λ-family SDE (default 0.5).
    pub lambda_ode: Option<f64>,
}

impl SamplerRequest {
    fn steps(&self) -> usize {
        self.steps.unwrap_or(500)
    }
    fn snr(&self) -> f64 {
        self.snr.unwrap_or(medsgm_recon::DEFAULT_SNR)
    }
    fn tol(&self) -> f64 {
        self.tol.unwrap_or(1e-5)
    }
    fn ode_solver(&self) -> OdeSolverKind {
        self.ode_solver.unwrap_or(OdeSolverKind::Rk45)
    }

    /// Checks the settings against the family they apply to and their ranges (invalid input
    /// naming the flag).
    pub fn validate(&self) -> Result<()> {
        let rk45 = self.ode_solver() == OdeSolverKind::Rk45;
        let (used, sampler) = match self.sampler {
            SamplerKind::Pc => (
                vec![
                    ("--ode-solver", self.ode_solver.is_some()),
                    ("--tol", self.tol.is_some()),
                    ("--lambda-ode", self.lambda_ode.is_some()),
                ],
                "pc",
            ),
            SamplerKind::Ode => (
                vec![
                    ("--predictor", self.predictor.is_some()),
                    ("--corrector", self.corrector.is_some()),
                    ("--corrector-steps", self.corrector_steps.is_some()),
                    ("--snr", self.snr.is_some()),
                    ("--steps", self.steps.is_some() && rk45),
                    ("--tol", self.tol.is_some() && !rk45),
                    ("--lambda-ode", self.lambda_ode.is_some()),
                ],
                "ode",
            ),
            SamplerKind::SdeLambda => (
                vec![
                    ("--predictor", self.predictor.is_some()),
                    ("--corrector", self.corrector.is_some()),
                    ("--corrector-steps", self.corrector_steps.is_some()),
                    ("--snr", self.snr.is_some()),
                    ("--ode-solver", self.ode_solver.is_some()),
                    ("--tol", self.tol.is_some()),
                ],
                "sde-lambda",
            ),
        };
        if let Some((flag, _)) = used.iter().find(|f| f.1) {
            let hint = match *flag {
                "--steps" => " with the adaptive rk45 solver (use --ode-solver heun or euler)",
                "--tol" if self.sampler == SamplerKind::Ode => {
                    " with a fixed-step solver (it is rk45's tolerance)"
                }
                _ => "",
            };
            return Err(invalid(format!(
                "{flag} does not apply to --sampler {sampler}{hint}"
            )));
        }
        // the ODE solvers' fixed steps share the PC grid's range
        let grid = PcConfig {
            steps: self.steps(),
            corrector_steps: self.corrector_steps.unwrap_or(1),
            snr: self.snr(),
            ..PcConfig::default()
        };
        if let Some(r) = grid.out_of_range() {
            return Err(invalid(r.flag_message()));
        }
        if !(self.tol().is_finite() && self.tol() > 0.0) {
            return Err(invalid("--tol must be positive"));
        }
        Ok(())
    }

    /// The configuration, seeded with `seed`: the PC sampler (or the λ-family predictor alone)
    /// checked by [`PcSampler::new`], or the ODE.
    pub fn config(&self, seed: u64) -> Result<SamplerConfig> {
        let (predictor, corrector, corrector_steps) = match self.sampler {
            SamplerKind::Ode => {
                let method = match self.ode_solver() {
                    OdeSolverKind::Rk45 => OdeMethod::Rk45 {
                        tol: Tolerances {
                            rtol: self.tol(),
                            atol: self.tol(),
                            ..Tolerances::default()
                        },
                    },
                    OdeSolverKind::Heun => OdeMethod::Heun {
                        steps: self.steps(),
                    },
                    OdeSolverKind::Euler => OdeMethod::Euler {
                        steps: self.steps(),
                    },
                };
                return Ok(SamplerConfig::Ode(OdeConfig {
                    method,
                    seed,
                    t_min: None,
                    denoise: true,
                }));
            }
            SamplerKind::SdeLambda => (
                PredictorKind::SdeLambda {
                    lambda: self.lambda_ode.unwrap_or(0.5),
                },
                CorrectorKind::None,
                0,
            ),
            SamplerKind::Pc => (
                self.predictor.unwrap_or(PredictorKind::ReverseDiffusion),
                self.corrector.unwrap_or(CorrectorKind::Langevin),
                self.corrector_steps.unwrap_or(1),
            ),
        };
        let c = PcConfig {
            predictor,
            corrector,
            steps: self.steps(),
            corrector_steps,
            snr: self.snr(),
            seed,
            t_min: None,
            t_start: None,
            denoise: true,
        };
        PcSampler::new(c.clone()).map_err(invalid)?;
        Ok(SamplerConfig::Pc(c))
    }
}

/// A `medsgm sample` run as asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRequest {
    /// The checkpoint (score model or LSGM).
    pub model: PathBuf,
    /// Number of images.
    pub n: usize,
    /// Images sampled together in one batch.
    pub batch: usize,
    /// The sampler.
    pub sampler: SamplerRequest,
    /// Seed of batch 0 (batch b uses seed + b).
    pub seed: u64,
    /// Also write `samples.nii.gz`.
    pub nifti: bool,
    /// Output directory (created if missing).
    pub out: PathBuf,
}

impl SampleRequest {
    /// Checks the counts, the sampler and the output folder (invalid input).
    pub fn validate(&self) -> Result<()> {
        if !(1..=10_000).contains(&self.n) {
            return Err(invalid("--n must be in 1..=10000"));
        }
        if self.batch == 0 {
            return Err(invalid("--batch must be positive"));
        }
        self.sampler.validate()?;
        if self.out.exists() && !self.out.is_dir() {
            return Err(invalid(format!(
                "--out {} exists and is not a directory",
                self.out.display()
            )));
        }
        Ok(())
    }

    /// Draws the samples and writes them with `samples.json`; returns the report line.
    pub fn run(&self) -> Result<String> {
        self.validate()?;
        let target = SampleTarget::load(&self.model)?;
        if let SampleTarget::Pixel(model) = &target {
            if model.channels() != 1 {
                return Err(invalid(format!(
                    "the model has {} channels; `medsgm sample` writes single-channel images",
                    model.channels()
                )));
            }
        }
        // Resolve the sampler names before any output exists.
        let config = self.sampler.config(self.seed)?;
        eprintln!("sampling {} images with {}", self.n, target.describe());
        let spec = SampleSpec {
            n: self.n,
            batch: self.batch,
            seed: self.seed,
            config,
        };
        let start = Instant::now();
        let (images, nfe) = sample_images(&target, &spec)?;
        let seconds = start.elapsed().as_secs_f64();
        let size = images.first().map(|i| i.nrows()).unwrap_or(0);
        let files = write_samples(&self.out, &images, self.nifti)?;
        let summary = SampleSummary {
            model: self.model.display().to_string(),
            model_description: target.describe(),
            normalization: target.normalization(),
            sampler: self.sampler.sampler,
            n: self.n,
            seed: self.seed,
            config: spec.config.to_json()?,
            nfe_per_batch: nfe.clone(),
            seconds,
            files: files.clone(),
        };
        write_summary(&self.out, &summary)?;
        Ok(format!(
            "{} samples ({size}x{size}) with the {} sampler: NFE {} per batch, {:.2} s; wrote {} into {}",
            self.n,
            match self.sampler.sampler {
                SamplerKind::Pc => "PC",
                SamplerKind::Ode => "probability-flow ODE",
                SamplerKind::SdeLambda => "λ-family SDE",
            },
            nfe.iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            seconds,
            files.join(", "),
            self.out.display()
        ))
    }
}

/// A sampler's configuration (its seed is the first batch's; batch b uses seed + b).
#[derive(Debug, Clone)]
pub enum SamplerConfig {
    /// The PC sampler (also the λ-family predictor alone).
    Pc(PcConfig),
    /// The probability-flow ODE.
    Ode(OdeConfig),
}

impl SamplerConfig {
    /// The configuration as recorded in `samples.json`.
    pub fn to_json(&self) -> Result<serde_json::Value> {
        Ok(match self {
            SamplerConfig::Pc(c) => serde_json::to_value(c)?,
            SamplerConfig::Ode(c) => serde_json::to_value(c)?,
        })
    }
}

/// What a checkpoint holds: a pixel-space score model, or an LSGM (latent prior + decoder).
#[allow(clippy::large_enum_variant)] // one per run
pub enum SampleTarget {
    /// A pixel-space score model.
    Pixel(Box<LoadedModel>),
    /// An LSGM: its checkpoint, VAE, EMA latent prior, SDE and device.
    Latent {
        /// The checkpoint.
        ck: LsgmCheckpoint,
        /// The VAE (its decoder maps latents to images).
        vae: Vae,
        /// The latent score prior (EMA weights).
        prior: LatentPrior,
        /// The latent SDE.
        sde: Box<dyn Sde>,
        /// The device everything lives on.
        device: candle_core::Device,
    },
}

impl SampleTarget {
    /// Loads `path`, telling the kind from the `format` of its safetensors metadata.
    pub fn load(path: &Path) -> Result<Self> {
        if path.is_file() && read_format(path).ok().as_deref() == Some(LSGM_FORMAT) {
            let device = crate::model::device()?;
            let ck = LsgmCheckpoint::load(path, &device).invalid_input()?;
            return Ok(SampleTarget::Latent {
                vae: ck.vae(&device).invalid_input()?,
                prior: ck.prior(true, &device).invalid_input()?,
                sde: ck.meta.config.sde.build()?,
                ck,
                device,
            });
        }
        Ok(SampleTarget::Pixel(Box::new(LoadedModel::load(path)?)))
    }

    /// A one-line description of the model.
    pub fn describe(&self) -> String {
        match self {
            SampleTarget::Pixel(m) => m.describe(),
            SampleTarget::Latent { ck, .. } => {
                let c = &ck.meta.config;
                format!(
                    "LSGM: VAE {0}² → {1}×{2}² latents, prior nf {3}, {4:?} stage 2, {5} + {6} steps on {7}",
                    c.vae.image_size,
                    c.vae.latent_channels,
                    c.vae.latent_size(),
                    c.prior.nf,
                    c.stage2,
                    ck.meta.vae_step,
                    ck.meta.prior_step,
                    ck.meta.dataset
                )
            }
        }
    }

    /// The normalisation of the model's units.
    pub fn normalization(&self) -> crate::checkpoint::Normalization {
        match self {
            SampleTarget::Pixel(m) => m.meta.normalization.clone(),
            SampleTarget::Latent { ck, .. } => ck.meta.config.data.normalization(),
        }
    }
}

/// How many images to draw, in which batches, with which sampler.
#[derive(Debug, Clone)]
pub struct SampleSpec {
    /// Number of images.
    pub n: usize,
    /// Images sampled together in one batch.
    pub batch: usize,
    /// Seed of batch 0 (batch b uses seed + b).
    pub seed: u64,
    /// The sampler.
    pub config: SamplerConfig,
}

/// Draws `spec.n` images from `target` (in latent space and decoded for an LSGM), with a
/// progress bar on stderr. Returns the images and the NFE per batch.
pub fn sample_images(
    target: &SampleTarget,
    spec: &SampleSpec,
) -> Result<(Vec<Array2<f32>>, Vec<usize>)> {
    match target {
        SampleTarget::Pixel(model) => {
            let s = model.image_size();
            draw(
                spec,
                model.sde.as_ref(),
                &model.score(),
                [1, s, s],
                &model.device,
                &|x| Ok(x.clone()),
            )
        }
        SampleTarget::Latent {
            ck,
            vae,
            prior,
            sde,
            device,
        } => {
            let c = &ck.meta.config;
            let model = prior.mixed(LatentSchedule::new(&c.sde)?, sde.as_ref(), false);
            let h = c.vae.latent_size();
            draw(
                spec,
                sde.as_ref(),
                &model,
                [c.vae.latent_channels, h, h],
                device,
                &|z| Ok(vae.decode(z)?),
            )
        }
    }
}

/// Draws `spec.n` samples of shape `[C, H, W]` per image in batches of `spec.batch` with the
/// PC sampler or the probability-flow ODE of (`sde`, `score`), mapping each batch through
/// `decode` (identity in pixel space, the VAE decoder for an LSGM). Returns the images and the
/// NFE per batch.
fn draw(
    spec: &SampleSpec,
    sde: &dyn Sde,
    score: &dyn ScoreModel,
    chw: [usize; 3],
    device: &candle_core::Device,
    decode: &dyn Fn(&Tensor) -> Result<Tensor>,
) -> Result<(Vec<Array2<f32>>, Vec<usize>)> {
    let (n, batch) = (spec.n, spec.batch);
    let batches: Vec<usize> = (0..n.div_ceil(batch))
        .map(|b| batch.min(n - b * batch))
        .collect();
    let mut images = Vec::with_capacity(n);
    let mut nfe = Vec::with_capacity(batches.len());
    let bar = match &spec.config {
        SamplerConfig::Pc(c) => progress((c.steps * batches.len()) as u64, "sampler steps"),
        SamplerConfig::Ode(_) => progress(batches.len() as u64, "ODE batches"),
    };
    for (b, &count) in batches.iter().enumerate() {
        let seed = spec.seed.wrapping_add(b as u64);
        let shape = [count, chw[0], chw[1], chw[2]];
        let out: Samples = match &spec.config {
            SamplerConfig::Pc(c) => PcSampler::new(PcConfig { seed, ..c.clone() })?.sample(
                sde,
                score,
                &shape,
                device,
                &mut NoHook,
                &mut |_, _| bar.inc(1),
            )?,
            SamplerConfig::Ode(c) => {
                let s = ode_sample(sde, score, &shape, device, &OdeConfig { seed, ..*c })?;
                bar.inc(1);
                s
            }
        };
        nfe.push(out.nfe);
        images.extend(tensor_images(&decode(&out.samples)?)?);
    }
    bar.finish_and_clear();
    Ok((images, nfe))
}

/// What `samples.json` records.
#[derive(Debug, Serialize)]
pub struct SampleSummary {
    /// The checkpoint path.
    pub model: String,
    /// The model, described.
    pub model_description: String,
    /// The normalisation that maps the model units back to HU or MRI intensities.
    pub normalization: crate::checkpoint::Normalization,
    /// The sampler family.
    pub sampler: SamplerKind,
    /// Number of images.
    pub n: usize,
    /// Seed of batch 0.
    pub seed: u64,
    /// The sampler configuration.
    pub config: serde_json::Value,
    /// NFE per batch.
    pub nfe_per_batch: Vec<usize>,
    /// Wall seconds of the sampling.
    pub seconds: f64,
    /// The files written.
    pub files: Vec<String>,
}

/// Creates `out` and writes `samples.png` and `samples.npy` (and `samples.nii.gz` with
/// `nifti`); returns the names of the files written followed by `samples.json`, which
/// [`write_summary`] writes.
pub fn write_samples(out: &Path, images: &[Array2<f32>], nifti: bool) -> Result<Vec<String>> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let views: Vec<_> = images.iter().map(|i| i.view()).collect();
    let stack: Array3<f32> = ndarray::stack(Axis(0), &views)?;
    let mut files = vec!["samples.png".to_owned(), "samples.npy".to_owned()];
    let cols = (images.len() as f64).sqrt().ceil() as usize;
    crate::train::plot::write_image_grid(&out.join("samples.png"), images, cols)?;
    write_npy(&out.join("samples.npy"), &stack.view().into_dyn())?;
    if nifti {
        let volume = stack.view().permuted_axes([1, 2, 0]);
        let volume = volume.as_standard_layout();
        write_nifti(
            &out.join("samples.nii.gz"),
            &volume.view().into_dyn(),
            &NiftiMeta::identity(),
        )?;
        files.push("samples.nii.gz".to_owned());
    }
    files.push("samples.json".to_owned());
    Ok(files)
}

/// Writes `samples.json` into `out` (atomically).
pub fn write_summary(out: &Path, summary: &SampleSummary) -> Result<()> {
    write_bytes_atomic(
        &out.join("samples.json"),
        (serde_json::to_string_pretty(summary)? + "\n").as_bytes(),
    )
}
