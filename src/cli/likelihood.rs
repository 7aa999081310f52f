//! `medsgm likelihood --model M (--input PATH | --data CONFIG | --phantoms N)`: how well a
//! prior explains images — the ELBO of the reverse SDE (a true bound) and the probability-flow
//! ODE log-likelihood, in bits/dim with standard errors ([`crate::eval::likelihood_run`]).

use crate::cli::invalid;
use crate::eval::likelihood_report::{likelihood_table, write_report};
use crate::eval::likelihood_run::{run_likelihood, LikelihoodJob};
use crate::eval::testset::EvalSplit;
use crate::io::guard::refuse_output_file;
use anyhow::Result;
use clap::{Args, ValueEnum};
use medsgm_recon::elbo::TimeProposal;
use std::path::{Path, PathBuf};

/// Proposals of t for the ELBO's time integral.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProposalKind {
    /// r(t) ∝ g²/s² above `--truncation`, flat below (Huang et al. App. I; uniform for VE).
    Likelihood,
    /// Uniform on [ε, T].
    Uniform,
}

/// Arguments of `medsgm likelihood`.
#[derive(Debug, Clone, Args)]
pub struct LikelihoodArgs {
    /// The prior: a score-model checkpoint written by `medsgm train`, or an LSGM checkpoint
    /// (`lsgm.safetensors`; its NELBO bound, with --data or --phantoms).
    #[arg(long)]
    pub model: PathBuf,
    /// Real images: a DICOM/NIfTI/NPY/PNG file or a folder of them (repeatable), brought to the
    /// prior's units and pixel spacing as `calibrate --check` does.
    #[arg(long)]
    pub input: Vec<PathBuf>,
    /// A nifti-slices training configuration: slices of its `--split` slab (repeatable).
    #[arg(long)]
    pub data: Vec<PathBuf>,
    /// Slab of `--data`.
    #[arg(long, value_enum, default_value = "test")]
    pub split: EvalSplit,
    /// Slices per slab of `--data` (evenly spaced; 1..=1000).
    #[arg(long, default_value_t = 4)]
    pub n: usize,
    /// Also this many held-out anatomical CT phantoms at the prior's size (at most 1000).
    #[arg(long, default_value_t = 0)]
    pub phantoms: usize,
    /// Monte-Carlo draws (t, x_t, probe) of the ELBO per image (2..=100000).
    #[arg(long, default_value_t = 64)]
    pub draws: usize,
    /// Proposal of t.
    #[arg(long, value_enum, default_value = "likelihood")]
    pub proposal: ProposalKind,
    /// Truncation time τ of the likelihood proposal.
    #[arg(long, default_value_t = 1e-3)]
    pub truncation: f64,
    /// Hutchinson probes of the ODE likelihood (one RK45 solve each; 0 skips the ODE; ≥ 2
    /// gives its standard error).
    #[arg(long, default_value_t = 2)]
    pub ode_probes: usize,
    /// RK45 tolerance of the ODE (rtol = atol).
    #[arg(long, default_value_t = 1e-5)]
    pub tol: f64,
    /// Images evaluated together (capped at 4 × 256² pixels).
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    /// Seed of every draw.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also write the results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Most images per set and draws per image.
const MAX_IMAGES: usize = 1000;
const MAX_DRAWS: usize = 100_000;
const MAX_PROBES: usize = 100;

fn validate(a: &LikelihoodArgs) -> Result<()> {
    if a.input.is_empty() && a.data.is_empty() && a.phantoms == 0 {
        return Err(invalid(
            "nothing to evaluate: give --input, --data or --phantoms",
        ));
    }
    if !(1..=MAX_IMAGES).contains(&a.n) {
        return Err(invalid(format!("--n {} must be in 1..={MAX_IMAGES}", a.n)));
    }
    if a.phantoms > MAX_IMAGES {
        return Err(invalid(format!(
            "--phantoms {} must be at most {MAX_IMAGES}",
            a.phantoms
        )));
    }
    if !(2..=MAX_DRAWS).contains(&a.draws) {
        return Err(invalid(format!(
            "--draws {} must be in 2..={MAX_DRAWS}",
            a.draws
        )));
    }
    if a.ode_probes > MAX_PROBES {
        return Err(invalid(format!(
            "--ode-probes {} must be at most {MAX_PROBES}",
            a.ode_probes
        )));
    }
    if !(a.truncation.is_finite() && a.truncation > 0.0 && a.truncation < 1.0) {
        return Err(invalid("--truncation must lie in (0, 1)"));
    }
    if a.proposal == ProposalKind::Uniform && a.truncation != 1e-3 {
        return Err(invalid(
            "--truncation applies to --proposal likelihood only",
        ));
    }
    if !(a.tol.is_finite() && a.tol > 0.0 && a.tol < 1.0) {
        return Err(invalid("--tol must lie in (0, 1)"));
    }
    if a.batch == 0 {
        return Err(invalid("--batch must be positive"));
    }
    if let Some(json) = &a.json {
        let inputs: Vec<&Path> = std::iter::once(&a.model)
            .chain(&a.input)
            .chain(&a.data)
            .map(PathBuf::as_path)
            .collect();
        refuse_output_file(json, &inputs).map_err(invalid)?;
    }
    Ok(())
}

impl LikelihoodArgs {
    /// The run these flags describe.
    fn job(&self) -> LikelihoodJob {
        LikelihoodJob {
            model: self.model.clone(),
            input: self.input.clone(),
            data: self.data.clone(),
            split: self.split,
            n: self.n,
            phantoms: self.phantoms,
            draws: self.draws,
            proposal: match self.proposal {
                ProposalKind::Likelihood => TimeProposal::Likelihood {
                    truncation: self.truncation,
                },
                ProposalKind::Uniform => TimeProposal::Uniform,
            },
            ode_probes: self.ode_probes,
            ode_tol: self.tol,
            batch: self.batch,
            seed: self.seed,
        }
    }
}

/// Runs `medsgm likelihood`.
pub fn run(a: &LikelihoodArgs) -> Result<()> {
    validate(a)?;
    let job = a.job();
    let outcome = run_likelihood(&job)?;
    print!("{}", likelihood_table(&outcome.results));
    println!("{}", outcome.method_note);
    if let Some(json) = &a.json {
        write_report(json, &outcome.report(&job))?;
        println!("wrote {}", json.display());
    }
    Ok(())
}
