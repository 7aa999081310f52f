//! `medsgm sample`: unconditional samples from a trained score model or an LSGM (see
//! [`crate::sample`]: the PC sampler, the probability-flow ODE or the λ-family SDE).
//!
//! The flags become a [`SampleRequest`], checked and run there; what it writes into `--out DIR`
//! is described in [`crate::sample`].

use crate::cli::model::ModelArgs;
use crate::sample::{OdeSolverKind, SampleRequest, SamplerKind, SamplerRequest};
use anyhow::Result;
use clap::Args;
use medsgm_recon::{CorrectorKind, PredictorKind};
use std::path::PathBuf;

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
    /// The run these flags ask for.
    fn request(&self) -> SampleRequest {
        SampleRequest {
            model: self.model.model.clone(),
            n: self.n,
            batch: self.batch,
            sampler: SamplerRequest {
                sampler: self.sampler,
                steps: self.steps,
                predictor: self.predictor,
                corrector: self.corrector,
                corrector_steps: self.corrector_steps,
                snr: self.snr,
                ode_solver: self.ode_solver,
                tol: self.tol,
                lambda_ode: self.lambda_ode,
            },
            seed: self.seed,
            nifti: self.nifti,
            out: self.out.clone(),
        }
    }
}

/// Runs `medsgm sample`.
pub fn run(a: &SampleArgs) -> Result<()> {
    println!("{}", a.request().run()?);
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
            crate::cli::Command::Sample(a) => a.request().validate(),
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
