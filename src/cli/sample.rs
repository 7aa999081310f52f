//! `medsgm sample`: unconditional samples from a trained score model or an LSGM (see
//! [`crate::sample`]: the PC sampler, the probability-flow ODE or the λ-family SDE).
//!
//! Writes into `--out DIR`: `samples.png` (grid, model units [0, 1] shown black..white),
//! `samples.npy` (float32 `[n, H, W]` in the model's normalised units; the normalisation that
//! maps them back to HU or MRI intensities is recorded in `samples.json`), optionally
//! `samples.nii.gz` (the same images as a volume `[H, W, n]`), and `samples.json` (sampler,
//! NFE, seconds, model description).

use crate::cli::invalid;
use crate::cli::model::ModelArgs;
pub use crate::sample::SamplerKind;
use crate::sample::{
    sample_images, write_samples, write_summary, SampleSpec, SampleSummary, SampleTarget,
    SamplerConfig,
};
use anyhow::Result;
use clap::{Args, ValueEnum};
use medsgm_recon::ode_sampler::{OdeConfig, OdeMethod};
use medsgm_recon::ode_solver::Tolerances;
use medsgm_recon::{CorrectorKind, PcConfig, PcSampler, PredictorKind};
use std::path::PathBuf;
use std::time::Instant;

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
    pub predictor: Option<PredictorKind>,
    /// PC corrector: langevin (default), ald or none.
    #[arg(long)]
    pub corrector: Option<CorrectorKind>,
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

impl SampleArgs {
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
}

/// Checks the flags against the sampler they apply to and their ranges.
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
    // the ODE solvers' fixed steps share the PC grid's range
    let grid = PcConfig {
        steps: a.steps(),
        corrector_steps: a.corrector_steps.unwrap_or(1),
        snr: a.snr(),
        ..PcConfig::default()
    };
    if let Some(r) = grid.out_of_range() {
        return Err(invalid(r.flag_message()));
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
/// `--sampler sde-lambda`); the values are checked by [`PcSampler::new`].
fn pc_config(a: &SampleArgs, seed: u64) -> PcConfig {
    let (predictor, corrector, corrector_steps) = match a.sampler {
        SamplerKind::SdeLambda => (
            PredictorKind::SdeLambda {
                lambda: a.lambda_ode.unwrap_or(0.5),
            },
            CorrectorKind::None,
            0,
        ),
        _ => (
            a.predictor.unwrap_or(PredictorKind::ReverseDiffusion),
            a.corrector.unwrap_or(CorrectorKind::Langevin),
            a.corrector_steps.unwrap_or(1),
        ),
    };
    PcConfig {
        predictor,
        corrector,
        steps: a.steps(),
        corrector_steps,
        snr: a.snr(),
        seed,
        t_min: None,
        t_start: None,
        denoise: true,
    }
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

/// Runs `medsgm sample`.
pub fn run(a: &SampleArgs) -> Result<()> {
    validate(a)?;
    let target = SampleTarget::load(&a.model.model)?;
    if let SampleTarget::Pixel(model) = &target {
        if model.channels() != 1 {
            return Err(invalid(format!(
                "the model has {} channels; `medsgm sample` writes single-channel images",
                model.channels()
            )));
        }
    }
    // Resolve the sampler names before any output exists.
    let config = match a.sampler {
        SamplerKind::Ode => SamplerConfig::Ode(ode_config(a, a.seed)),
        SamplerKind::Pc | SamplerKind::SdeLambda => {
            let c = pc_config(a, a.seed);
            PcSampler::new(c.clone()).map_err(invalid)?;
            SamplerConfig::Pc(c)
        }
    };
    eprintln!("sampling {} images with {}", a.n, target.describe());
    let spec = SampleSpec {
        n: a.n,
        batch: a.batch,
        seed: a.seed,
        config,
    };
    let start = Instant::now();
    let (images, nfe) = sample_images(&target, &spec)?;
    let seconds = start.elapsed().as_secs_f64();
    let size = images.first().map(|i| i.nrows()).unwrap_or(0);

    let files = write_samples(&a.out, &images, a.nifti)?;
    let summary = SampleSummary {
        model: a.model.model.display().to_string(),
        model_description: target.describe(),
        normalization: target.normalization(),
        sampler: a.sampler,
        n: a.n,
        seed: a.seed,
        config: spec.config.to_json()?,
        nfe_per_batch: nfe.clone(),
        seconds,
        files: files.clone(),
    };
    write_summary(&a.out, &summary)?;
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
