//! `medsgm likelihood --model M (--input PATH | --data CONFIG | --phantoms N)`: how well a
//! prior explains images — the ELBO of the reverse SDE (a true bound) and the probability-flow
//! ODE log-likelihood, in bits/dim with standard errors ([`crate::eval::likelihood`]).

use crate::checkpoint::read_format;
use crate::cli::args::progress;
use crate::cli::model::LoadedModel;
use crate::cli::{invalid, InputContext};
use crate::eval::latent_likelihood::{
    check_lsgm_sizes, lsgm_image_likelihoods, LsgmLikelihoodOptions,
};
use crate::eval::likelihood::{image_likelihoods, LikelihoodOptions};
use crate::eval::likelihood_images::{input_images, prepared_images, NamedImages};
use crate::eval::likelihood_report::{likelihood_table, write_report, LikelihoodReport};
use crate::eval::testset::EvalSplit;
use crate::io::guard::refuse_output_file;
use crate::lsgm::trainer::LSGM_FORMAT;
use crate::lsgm::LsgmCheckpoint;
use anyhow::Result;
use candle_core::Device;
use clap::{Args, ValueEnum};
use medsgm_recon::elbo::{ElboConfig, TimeProposal};
use medsgm_recon::likelihood::TraceEstimator;
use std::path::{Path, PathBuf};
use std::time::Instant;

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

/// Slices of `--data` slabs and `--phantoms` held-out anatomical phantoms at side `size`.
fn prepared(a: &LikelihoodArgs, size: usize) -> Result<NamedImages> {
    prepared_images(&a.data, a.n, a.split, a.phantoms, size)
}

/// Runs `medsgm likelihood`.
pub fn run(a: &LikelihoodArgs) -> Result<()> {
    validate(a)?;
    if read_format(&a.model).ok().as_deref() == Some(LSGM_FORMAT) {
        return run_latent(a);
    }
    let model = LoadedModel::load(&a.model)?;
    if model.channels() != 1 {
        return Err(invalid(format!(
            "the model has {} channels; likelihoods are computed for single-channel images",
            model.channels()
        )));
    }
    let mut images = input_images(
        &a.input,
        &model.meta.normalization,
        model.pixel_spacing_mm(),
    )?;
    images.extend(prepared(a, model.image_size())?);
    for (name, im) in &images {
        model.check_image_shape(im.dim(), name)?;
    }
    let options = LikelihoodOptions {
        elbo: ElboConfig {
            draws: a.draws,
            proposal: match a.proposal {
                ProposalKind::Likelihood => TimeProposal::Likelihood {
                    truncation: a.truncation,
                },
                ProposalKind::Uniform => TimeProposal::Uniform,
            },
            estimator: TraceEstimator::Rademacher,
            t_min: None,
            seed: a.seed,
            bpd_offset: 0.0,
        },
        ode_probes: a.ode_probes,
        ode_tol: a.tol,
        batch: a.batch,
    };
    eprintln!(
        "likelihood of {} images under {}",
        images.len(),
        model.describe()
    );
    let bar = progress(images.len().div_ceil(a.batch) as u64, "batches");
    let start = Instant::now();
    let (results, cost) = image_likelihoods(
        model.sde.as_ref(),
        &model.score(),
        &images,
        &options,
        &model.device,
        &mut || bar.inc(1),
    )?;
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    print!("{}", likelihood_table(&results));
    println!(
        "bits/dim of the continuous density in the prior's [0, 1] units at t = ε (no \
         dequantisation); ELBO: {} draws, proposal {:?}; ODE: {} probe(s), RK45 tol {}; \
         {} + {} score evaluations with backward passes, {seconds:.1} s",
        a.draws, options.elbo.proposal, a.ode_probes, a.tol, cost.elbo_nfe, cost.ode_nfe
    );
    if let Some(json) = &a.json {
        let report = LikelihoodReport {
            model: a.model.display().to_string(),
            model_description: model.describe(),
            units: "bits/dim of the prior's [0, 1] units at t = eps, no dequantisation",
            draws: a.draws,
            proposal: format!("{:?}", options.elbo.proposal),
            ode_probes: a.ode_probes,
            ode_tol: a.tol,
            seed: a.seed,
            images: &results,
            elbo_nfe: cost.elbo_nfe,
            ode_nfe: cost.ode_nfe,
            seconds,
        };
        write_report(json, &report)?;
        println!("wrote {}", json.display());
    }
    Ok(())
}

/// `medsgm likelihood` for an LSGM checkpoint: per image the LSGM bound and, with
/// `--ode-probes`, the bound with log p(z₀) from the latent probability-flow ODE (see
/// [`crate::eval::latent_likelihood`]), in bits/dim of the image in [0, 1] units — comparable
/// with the pixel priors' columns.
fn run_latent(a: &LikelihoodArgs) -> Result<()> {
    if !a.input.is_empty() {
        return Err(invalid(
            "--input needs a score-model checkpoint (an LSGM records no intensity window or \
             pixel spacing); give the LSGM --data or --phantoms",
        ));
    }
    let device = Device::Cpu;
    let ck = LsgmCheckpoint::load(&a.model, &device).invalid_input()?;
    let (vae, prior) = (ck.vae(&device)?, ck.prior(true, &device)?);
    let config = &ck.meta.config;
    let size = config.vae.image_size;
    let images = prepared(a, size)?;
    check_lsgm_sizes(&images, size)?;
    eprintln!(
        "LSGM bounds of {} images under {} ({})",
        images.len(),
        a.model.display(),
        ck.meta.dataset
    );
    let bar = progress(images.len().div_ceil(a.batch) as u64, "batches");
    let start = Instant::now();
    let options = LsgmLikelihoodOptions {
        draws: a.draws,
        ode_probes: a.ode_probes,
        batch: a.batch,
        seed: a.seed,
    };
    let (results, cost) = lsgm_image_likelihoods(
        (&vae, &prior, config),
        &images,
        &options,
        &device,
        &mut || bar.inc(1),
    )?;
    let (elbo_nfe, ode_nfe) = (cost.elbo_nfe, cost.ode_nfe);
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    print!("{}", likelihood_table(&results));
    println!(
        "LSGM: both columns estimate the upper bound NELBO of the image in [0, 1] units (no \
         dequantisation), in bits/dim: the ELBO column with the score prior's cross entropy \
         ({} draws, importance-sampled t), the ODE column with log p(z₀) of the latent \
         probability-flow ODE ({} posterior draw(s)); {elbo_nfe} + {ode_nfe} latent score \
         evaluations, {seconds:.1} s",
        a.draws, a.ode_probes
    );
    if let Some(json) = &a.json {
        let report = LikelihoodReport {
            model: a.model.display().to_string(),
            model_description: format!("LSGM trained on {}", ck.meta.dataset),
            units: "bits/dim of the image in [0, 1] units, no dequantisation (LSGM NELBO)",
            draws: a.draws,
            proposal: "LSGM likelihood-weighting proposal of the checkpoint's config".into(),
            ode_probes: a.ode_probes,
            ode_tol: a.tol,
            seed: a.seed,
            images: &results,
            elbo_nfe,
            ode_nfe,
            seconds,
        };
        write_report(json, &report)?;
        println!("wrote {}", json.display());
    }
    Ok(())
}
