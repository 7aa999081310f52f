//! `medsgm sample`: unconditional samples from a trained score model with
//! the predictor–corrector sampler (thesis Alg. B.3; method digest §3.7–3.8) or the
//! probability-flow ODE (thesis §7.4.3; digest §3.4). An LSGM checkpoint (told apart by the
//! `format` of its safetensors metadata) is sampled the same way in its latent space with the
//! mixed-score prior's EMA weights, then decoded by the VAE's decoder mean (LSGM §7.7).
//!
//! Writes into `--out DIR`: `samples.png` (grid, model units [0, 1] shown black..white),
//! `samples.npy` (float32 `[n, H, W]` in the model's normalised units; the normalisation that
//! maps them back to HU or MRI intensities is recorded in `samples.json`), optionally
//! `samples.nii.gz` (the same images as a volume `[H, W, n]`), and `samples.json` (sampler,
//! NFE, seconds, model description).

use crate::checkpoint::read_format;
use crate::cli::args::progress;
use crate::cli::invalid;
use crate::cli::model::{LoadedModel, ModelArgs};
use crate::cli::InputContext;
use crate::io::atomic::write_bytes_atomic;
use crate::io::nifti_io::{write_nifti, NiftiMeta};
use crate::io::npy::write_npy;
use crate::lsgm::trainer::LSGM_FORMAT;
use crate::lsgm::{LatentPrior, LsgmCheckpoint, Vae};
use crate::train::plot::tensor_images;
use anyhow::{Context, Result};
use candle_core::Tensor;
use clap::{Args, ValueEnum};
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

/// Arguments of `medsgm sample`.
#[derive(Debug, Clone, Args)]
pub struct SampleArgs {
    /// The model.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Number of images.
    #[arg(long, default_value_t = 16)]
    pub n: usize,
    /// Images sampled together in one batch.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Sampler.
    #[arg(long, value_enum, default_value = "pc")]
    pub sampler: SamplerKind,
    /// Number of time steps N (PC; fixed-step ODE solvers; default 500).
    #[arg(long)]
    pub steps: Option<usize>,
    /// PC predictor: reverse_diffusion (default), euler_maruyama, ancestral or none.
    #[arg(long)]
    pub predictor: Option<String>,
    /// PC corrector: langevin (default), ald or none.
    #[arg(long)]
    pub corrector: Option<String>,
    /// PC corrector steps M per time step (default 1).
    #[arg(long)]
    pub corrector_steps: Option<usize>,
    /// PC corrector signal-to-noise ratio r (default 0.16).
    #[arg(long)]
    pub snr: Option<f64>,
    /// ODE integrator (`--sampler ode`; default rk45).
    #[arg(long, value_enum)]
    pub ode_solver: Option<OdeSolverKind>,
    /// RK45 tolerance, rtol = atol (`--sampler ode --ode-solver rk45`; default 1e-5).
    #[arg(long)]
    pub tol: Option<f64>,
    /// λ ≤ 1 of `--sampler sde-lambda`: 0 is the reverse SDE, 1 the probability-flow ODE
    /// (default 0.5).
    #[arg(long, allow_negative_numbers = true)]
    pub lambda_ode: Option<f64>,
    /// Seed of every random draw (batch b uses seed + b).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also write the samples as a NIfTI volume `samples.nii.gz`.
    #[arg(long)]
    pub nifti: bool,
    /// Output directory (created if missing).
    #[arg(long, short)]
    pub out: PathBuf,
}

/// What `samples.json` records.
#[derive(Debug, Serialize)]
struct SampleSummary {
    model: String,
    model_description: String,
    normalization: crate::checkpoint::Normalization,
    sampler: SamplerKind,
    n: usize,
    seed: u64,
    config: serde_json::Value,
    nfe_per_batch: Vec<usize>,
    seconds: f64,
    files: Vec<String>,
}

impl SampleArgs {
    fn steps(&self) -> usize {
        self.steps.unwrap_or(500)
    }
    fn snr(&self) -> f64 {
        self.snr.unwrap_or(0.16)
    }
    fn tol(&self) -> f64 {
        self.tol.unwrap_or(1e-5)
    }
    fn ode_solver(&self) -> OdeSolverKind {
        self.ode_solver.unwrap_or(OdeSolverKind::Rk45)
    }
}

/// Most corrector steps per time step.
const MAX_CORRECTOR_STEPS: usize = 1000;

fn validate(a: &SampleArgs) -> Result<()> {
    if !(1..=10_000).contains(&a.n) {
        return Err(invalid("--n must be in 1..=10000"));
    }
    if a.batch == 0 {
        return Err(invalid("--batch must be positive"));
    }
    // Flags of the other samplers are errors, not silently ignored.
    let (used, sampler): (Vec<&str>, &str) = match a.sampler {
        SamplerKind::Pc => (
            [
                ("--ode-solver", a.ode_solver.is_some()),
                ("--tol", a.tol.is_some()),
                ("--lambda-ode", a.lambda_ode.is_some()),
            ]
            .iter()
            .filter(|f| f.1)
            .map(|f| f.0)
            .collect(),
            "pc",
        ),
        SamplerKind::Ode => (
            [
                ("--predictor", a.predictor.is_some()),
                ("--corrector", a.corrector.is_some()),
                ("--corrector-steps", a.corrector_steps.is_some()),
                ("--snr", a.snr.is_some()),
                (
                    "--steps",
                    a.steps.is_some() && a.ode_solver() == OdeSolverKind::Rk45,
                ),
                (
                    "--tol",
                    a.tol.is_some() && a.ode_solver() != OdeSolverKind::Rk45,
                ),
                ("--lambda-ode", a.lambda_ode.is_some()),
            ]
            .iter()
            .filter(|f| f.1)
            .map(|f| f.0)
            .collect(),
            "ode",
        ),
        SamplerKind::SdeLambda => (
            [
                ("--predictor", a.predictor.is_some()),
                ("--corrector", a.corrector.is_some()),
                ("--corrector-steps", a.corrector_steps.is_some()),
                ("--snr", a.snr.is_some()),
                ("--ode-solver", a.ode_solver.is_some()),
                ("--tol", a.tol.is_some()),
            ]
            .iter()
            .filter(|f| f.1)
            .map(|f| f.0)
            .collect(),
            "sde-lambda",
        ),
    };
    if let Some(flag) = used.first() {
        let hint = match *flag {
            "--steps" => " with the adaptive rk45 solver (use --ode-solver heun or euler)",
            "--tol" if a.sampler == SamplerKind::Ode => {
                " with a fixed-step solver (it is rk45's tolerance)"
            }
            _ => "",
        };
        return Err(invalid(format!(
            "{flag} does not apply to --sampler {sampler}{hint}"
        )));
    }
    if !(1..=100_000).contains(&a.steps()) {
        return Err(invalid("--steps must be in 1..=100000"));
    }
    if !(a.snr().is_finite() && a.snr() > 0.0) {
        return Err(invalid("--snr must be positive"));
    }
    if a.corrector_steps.unwrap_or(1) > MAX_CORRECTOR_STEPS {
        return Err(invalid(format!(
            "--corrector-steps must be at most {MAX_CORRECTOR_STEPS}"
        )));
    }
    if !(a.tol().is_finite() && a.tol() > 0.0) {
        return Err(invalid("--tol must be positive"));
    }
    if a.out.exists() && !a.out.is_dir() {
        return Err(invalid(format!(
            "--out {} exists and is not a directory",
            a.out.display()
        )));
    }
    Ok(())
}

/// The PC configuration of the arguments (`--sampler pc`, or the λ-family predictor alone for
/// `--sampler sde-lambda`); the names are checked here, the values by [`PcSampler::new`].
fn pc_config(a: &SampleArgs, seed: u64) -> Result<PcConfig> {
    let (predictor, corrector, corrector_steps) = match a.sampler {
        SamplerKind::SdeLambda => (
            PredictorKind::SdeLambda {
                lambda: a.lambda_ode.unwrap_or(0.5),
            },
            CorrectorKind::None,
            0,
        ),
        _ => (
            match &a.predictor {
                Some(p) => p.parse().map_err(invalid)?,
                None => PredictorKind::ReverseDiffusion,
            },
            match &a.corrector {
                Some(c) => c.parse().map_err(invalid)?,
                None => CorrectorKind::Langevin,
            },
            a.corrector_steps.unwrap_or(1),
        ),
    };
    Ok(PcConfig {
        predictor,
        corrector,
        steps: a.steps(),
        corrector_steps,
        snr: a.snr(),
        seed,
        t_min: None,
        t_start: None,
        denoise: true,
    })
}

/// The ODE configuration of the arguments.
fn ode_config(a: &SampleArgs, seed: u64) -> OdeConfig {
    let method = match a.ode_solver() {
        OdeSolverKind::Rk45 => OdeMethod::Rk45 {
            tol: Tolerances {
                rtol: a.tol(),
                atol: a.tol(),
                ..Tolerances::default()
            },
        },
        OdeSolverKind::Heun => OdeMethod::Heun { steps: a.steps() },
        OdeSolverKind::Euler => OdeMethod::Euler { steps: a.steps() },
    };
    OdeConfig {
        method,
        seed,
        t_min: None,
        denoise: true,
    }
}

/// What `--model` holds: a pixel-space score model, or an LSGM (latent prior + decoder).
#[allow(clippy::large_enum_variant)] // one per run
enum Target {
    Pixel(Box<LoadedModel>),
    Latent {
        ck: LsgmCheckpoint,
        vae: Vae,
        prior: LatentPrior,
        sde: Box<dyn Sde>,
        device: candle_core::Device,
    },
}

impl Target {
    /// Loads `path`, telling the kind from the `format` of its safetensors metadata.
    fn load(path: &Path) -> Result<Self> {
        if path.is_file() && read_format(path).ok().as_deref() == Some(LSGM_FORMAT) {
            let device = crate::model::device()?;
            let ck = LsgmCheckpoint::load(path, &device).invalid_input()?;
            return Ok(Target::Latent {
                vae: ck.vae(&device).invalid_input()?,
                prior: ck.prior(true, &device).invalid_input()?,
                sde: ck.meta.config.sde.build()?,
                ck,
                device,
            });
        }
        Ok(Target::Pixel(Box::new(LoadedModel::load(path)?)))
    }

    fn describe(&self) -> String {
        match self {
            Target::Pixel(m) => m.describe(),
            Target::Latent { ck, .. } => {
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

    fn normalization(&self) -> crate::checkpoint::Normalization {
        match self {
            Target::Pixel(m) => m.meta.normalization.clone(),
            Target::Latent { ck, .. } => ck.meta.config.data.normalization(),
        }
    }
}

/// Draws `a.n` samples of shape `[C, H, W]` per image in batches of `a.batch` with the PC
/// sampler or the probability-flow ODE of (`sde`, `score`), mapping each batch through `decode`
/// (identity in pixel space, the VAE decoder for an LSGM). Returns the images and the NFE per
/// batch.
fn draw(
    a: &SampleArgs,
    sde: &dyn Sde,
    score: &dyn ScoreModel,
    chw: [usize; 3],
    device: &candle_core::Device,
    decode: &dyn Fn(&Tensor) -> Result<Tensor>,
) -> Result<(Vec<Array2<f32>>, Vec<usize>)> {
    let batches: Vec<usize> = (0..a.n.div_ceil(a.batch))
        .map(|b| a.batch.min(a.n - b * a.batch))
        .collect();
    let mut images = Vec::with_capacity(a.n);
    let mut nfe = Vec::with_capacity(batches.len());
    let bar = match a.sampler {
        SamplerKind::Pc | SamplerKind::SdeLambda => {
            progress((a.steps() * batches.len()) as u64, "sampler steps")
        }
        SamplerKind::Ode => progress(batches.len() as u64, "ODE batches"),
    };
    for (b, &count) in batches.iter().enumerate() {
        let seed = a.seed.wrapping_add(b as u64);
        let shape = [count, chw[0], chw[1], chw[2]];
        let out: Samples = match a.sampler {
            SamplerKind::Pc | SamplerKind::SdeLambda => PcSampler::new(pc_config(a, seed)?)?
                .sample(sde, score, &shape, device, &mut NoHook, &mut |_, _| {
                    bar.inc(1)
                })?,
            SamplerKind::Ode => {
                let s = ode_sample(sde, score, &shape, device, &ode_config(a, seed))?;
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

/// Runs `medsgm sample`.
pub fn run(a: &SampleArgs) -> Result<()> {
    validate(a)?;
    let target = Target::load(&a.model.model)?;
    if let Target::Pixel(model) = &target {
        if model.channels() != 1 {
            return Err(invalid(format!(
                "the model has {} channels; `medsgm sample` writes single-channel images",
                model.channels()
            )));
        }
    }
    // Resolve the sampler names before any output exists.
    if a.sampler != SamplerKind::Ode {
        PcSampler::new(pc_config(a, a.seed)?).map_err(invalid)?;
    }
    eprintln!("sampling {} images with {}", a.n, target.describe());
    let start = Instant::now();
    let (images, nfe) = match &target {
        Target::Pixel(model) => {
            let s = model.image_size();
            draw(
                a,
                model.sde.as_ref(),
                &model.score(),
                [1, s, s],
                &model.device,
                &|x| Ok(x.clone()),
            )?
        }
        Target::Latent {
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
                a,
                sde.as_ref(),
                &model,
                [c.vae.latent_channels, h, h],
                device,
                &|z| Ok(vae.decode(z)?),
            )?
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    let size = images.first().map(|i| i.nrows()).unwrap_or(0);

    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let views: Vec<_> = images.iter().map(|i| i.view()).collect();
    let stack: Array3<f32> = ndarray::stack(Axis(0), &views)?;
    let mut files = vec!["samples.png".to_owned(), "samples.npy".to_owned()];
    let cols = (a.n as f64).sqrt().ceil() as usize;
    crate::train::plot::write_image_grid(&a.out.join("samples.png"), &images, cols)?;
    write_npy(&a.out.join("samples.npy"), &stack.view().into_dyn())?;
    if a.nifti {
        let volume = stack.view().permuted_axes([1, 2, 0]);
        let volume = volume.as_standard_layout();
        write_nifti(
            &a.out.join("samples.nii.gz"),
            &volume.view().into_dyn(),
            &NiftiMeta::identity(),
        )?;
        files.push("samples.nii.gz".to_owned());
    }
    files.push("samples.json".to_owned());
    let config = match a.sampler {
        SamplerKind::Pc | SamplerKind::SdeLambda => serde_json::to_value(pc_config(a, a.seed)?)?,
        SamplerKind::Ode => serde_json::to_value(ode_config(a, a.seed))?,
    };
    let summary = SampleSummary {
        model: a.model.model.display().to_string(),
        model_description: target.describe(),
        normalization: target.normalization(),
        sampler: a.sampler,
        n: a.n,
        seed: a.seed,
        config,
        nfe_per_batch: nfe.clone(),
        seconds,
        files: files.clone(),
    };
    write_bytes_atomic(
        &a.out.join("samples.json"),
        (serde_json::to_string_pretty(&summary)? + "\n").as_bytes(),
    )?;
    println!(
        "{} samples ({size}x{size}) with the {} sampler: NFE {} per batch, {:.2} s; wrote {} into {}",
        a.n,
        match a.sampler {
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
        a.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn check(args: &str) -> Result<()> {
        let cli = crate::cli::Cli::try_parse_from(
            format!("medsgm sample --model m.safetensors --out smp {args}").split_whitespace(),
        )
        .unwrap();
        match cli.command {
            crate::cli::Command::Sample(a) => validate(&a),
            _ => unreachable!(),
        }
    }

    #[test]
    fn flags_of_the_other_sampler_are_errors() {
        assert!(check("--steps 4").is_ok());
        assert!(check("--sampler ode --tol 1e-4").is_ok());
        assert!(check("--sampler ode --ode-solver heun --steps 4").is_ok());
        for (args, flag) in [
            ("--ode-solver heun", "--ode-solver"),
            ("--tol 1e-3", "--tol"),
            ("--sampler ode --snr 0.2", "--snr"),
            ("--sampler ode --predictor none", "--predictor"),
            ("--sampler ode --corrector-steps 2", "--corrector-steps"),
            ("--sampler ode --steps 4", "--steps"),
            ("--sampler ode --ode-solver euler --tol 1e-3", "--tol"),
        ] {
            let e = check(args).unwrap_err();
            assert!(crate::cli::exit_code(&e) == 2, "{args}");
            assert!(format!("{e:#}").contains(flag), "{args}: {e:#}");
        }
    }
}
