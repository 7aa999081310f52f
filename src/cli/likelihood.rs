//! `medsgm likelihood --model M (--input PATH | --data CONFIG | --phantoms N)`: how well a
//! prior explains images — the ELBO of the reverse SDE (a true bound) and the probability-flow
//! ODE log-likelihood, in bits/dim with standard errors ([`crate::eval::likelihood_run`]).

use crate::eval::likelihood_report::{likelihood_table, write_report};
use crate::eval::likelihood_run::{
    run_likelihood, LikelihoodJob, ProposalKind, DEFAULT_TRUNCATION,
};
use crate::eval::testset::EvalSplit;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

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
    #[arg(long, default_value_t = DEFAULT_TRUNCATION)]
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
            proposal: self.proposal,
            truncation: self.truncation,
            ode_probes: self.ode_probes,
            ode_tol: self.tol,
            batch: self.batch,
            seed: self.seed,
            json: self.json.clone(),
        }
    }
}

/// Runs `medsgm likelihood`.
pub fn run(a: &LikelihoodArgs) -> Result<()> {
    let job = a.job();
    let outcome = run_likelihood(&job)?;
    print!("{}", likelihood_table(&outcome.results));
    println!("{}", outcome.method_note);
    if let Some(json) = &job.json {
        write_report(json, &outcome.report(&job))?;
        println!("wrote {}", json.display());
    }
    Ok(())
}
