//! One `medsgm likelihood` run: the images of a [`LikelihoodJob`] under a pixel score prior
//! (ELBO of the reverse SDE and probability-flow ODE bits/dim, [`crate::eval::likelihood`]) or
//! an LSGM (its NELBO bounds, [`crate::eval::latent_likelihood`]), with a progress bar on
//! stderr. The CLI parses flags into the job and prints the [`LikelihoodOutcome`].

use crate::checkpoint::read_format;
use crate::error::{invalid, InputContext};
use crate::eval::latent_likelihood::{
    check_lsgm_sizes, lsgm_image_likelihoods, LsgmLikelihoodOptions,
};
use crate::eval::likelihood::{image_likelihoods, ImageLikelihood, LikelihoodOptions};
use crate::eval::likelihood_images::{input_images, prepared_images, NamedImages};
use crate::eval::likelihood_report::LikelihoodReport;
use crate::eval::testset::EvalSplit;
use crate::io::guard::refuse_output_file;
use crate::lsgm::trainer::LSGM_FORMAT;
use crate::lsgm::LsgmCheckpoint;
use crate::model::LoadedModel;
use crate::progress::progress;
use anyhow::Result;
use medsgm_recon::elbo::{ElboConfig, TimeProposal};
use medsgm_recon::likelihood::TraceEstimator;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Proposals of t for the ELBO's time integral.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProposalKind {
    /// r(t) ∝ g²/s² above `--truncation`, flat below (Huang et al. App. I; uniform for VE).
    Likelihood,
    /// Uniform on [ε, T].
    Uniform,
}

/// Most images per set.
const MAX_IMAGES: usize = 1000;
/// Most ELBO draws per image.
const MAX_DRAWS: usize = 100_000;
/// Most Hutchinson probes of the ODE.
const MAX_PROBES: usize = 100;
/// The default truncation time τ of the likelihood proposal.
pub const DEFAULT_TRUNCATION: f64 = 1e-3;

/// What to evaluate and how ([`LikelihoodJob::validate`] checks it).
#[derive(Debug, Clone)]
pub struct LikelihoodJob {
    /// The prior: a score-model or an LSGM checkpoint.
    pub model: PathBuf,
    /// Real images (files or folders), brought to the prior's units and spacing.
    pub input: Vec<PathBuf>,
    /// Training configurations whose `split` slab is evaluated (`n` slices each).
    pub data: Vec<PathBuf>,
    /// The slab of `data`.
    pub split: EvalSplit,
    /// Slices per slab.
    pub n: usize,
    /// Held-out anatomical phantoms at the prior's size.
    pub phantoms: usize,
    /// Monte-Carlo draws of the ELBO per image.
    pub draws: usize,
    /// The proposal of t.
    pub proposal: ProposalKind,
    /// Truncation time τ of the likelihood proposal ([`DEFAULT_TRUNCATION`] with the uniform
    /// one).
    pub truncation: f64,
    /// Hutchinson probes of the ODE (LSGM: posterior draws).
    pub ode_probes: usize,
    /// RK45 tolerance of the ODE.
    pub ode_tol: f64,
    /// Images evaluated together.
    pub batch: usize,
    /// Seed of every draw.
    pub seed: u64,
    /// Where the JSON report goes, if anywhere (not one of the inputs).
    pub json: Option<PathBuf>,
}

impl LikelihoodJob {
    /// Checks that there is something to evaluate, the counts and tolerances, that
    /// `truncation` goes with the likelihood proposal and that the JSON report would not
    /// overwrite an input (invalid input).
    pub fn validate(&self) -> Result<()> {
        if self.input.is_empty() && self.data.is_empty() && self.phantoms == 0 {
            return Err(invalid(
                "nothing to evaluate: give --input, --data or --phantoms",
            ));
        }
        if !(1..=MAX_IMAGES).contains(&self.n) {
            return Err(invalid(format!(
                "--n {} must be in 1..={MAX_IMAGES}",
                self.n
            )));
        }
        if self.phantoms > MAX_IMAGES {
            return Err(invalid(format!(
                "--phantoms {} must be at most {MAX_IMAGES}",
                self.phantoms
            )));
        }
        if !(2..=MAX_DRAWS).contains(&self.draws) {
            return Err(invalid(format!(
                "--draws {} must be in 2..={MAX_DRAWS}",
                self.draws
            )));
        }
        if self.ode_probes > MAX_PROBES {
            return Err(invalid(format!(
                "--ode-probes {} must be at most {MAX_PROBES}",
                self.ode_probes
            )));
        }
        if !(self.truncation.is_finite() && self.truncation > 0.0 && self.truncation < 1.0) {
            return Err(invalid("--truncation must lie in (0, 1)"));
        }
        if self.proposal == ProposalKind::Uniform && self.truncation != DEFAULT_TRUNCATION {
            return Err(invalid(
                "--truncation applies to --proposal likelihood only",
            ));
        }
        if !(self.ode_tol.is_finite() && self.ode_tol > 0.0 && self.ode_tol < 1.0) {
            return Err(invalid("--tol must lie in (0, 1)"));
        }
        if self.batch == 0 {
            return Err(invalid("--batch must be positive"));
        }
        if let Some(json) = &self.json {
            let inputs: Vec<&Path> = std::iter::once(&self.model)
                .chain(&self.input)
                .chain(&self.data)
                .map(PathBuf::as_path)
                .collect();
            refuse_output_file(json, &inputs).map_err(invalid)?;
        }
        Ok(())
    }

    /// The proposal of t.
    pub fn time_proposal(&self) -> TimeProposal {
        match self.proposal {
            ProposalKind::Likelihood => TimeProposal::Likelihood {
                truncation: self.truncation,
            },
            ProposalKind::Uniform => TimeProposal::Uniform,
        }
    }
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct LikelihoodOutcome {
    /// Per-image results.
    pub results: Vec<ImageLikelihood>,
    /// The prior, described.
    pub model_description: String,
    /// What the bits/dim are of.
    pub units: &'static str,
    /// The proposal of t, described.
    pub proposal: String,
    /// How the columns were estimated (one line for the table's footer).
    pub method_note: String,
    /// Score evaluations of the ELBO.
    pub elbo_nfe: usize,
    /// Score evaluations of the ODE.
    pub ode_nfe: usize,
    /// Wall seconds.
    pub seconds: f64,
}

impl LikelihoodOutcome {
    /// The JSON record of the run.
    pub fn report<'a>(&'a self, job: &LikelihoodJob) -> LikelihoodReport<'a> {
        LikelihoodReport {
            model: job.model.display().to_string(),
            model_description: self.model_description.clone(),
            units: self.units,
            draws: job.draws,
            proposal: self.proposal.clone(),
            ode_probes: job.ode_probes,
            ode_tol: job.ode_tol,
            seed: job.seed,
            images: &self.results,
            elbo_nfe: self.elbo_nfe,
            ode_nfe: self.ode_nfe,
            seconds: self.seconds,
        }
    }
}

/// Slices of the job's slabs and its held-out phantoms at side `size`.
fn prepared(job: &LikelihoodJob, size: usize) -> Result<NamedImages> {
    prepared_images(&job.data, job.n, job.split, job.phantoms, size)
}

/// Checks and runs the job: an LSGM checkpoint gives its NELBO bounds, a score model the
/// ELBO and ODE bits/dim of every image.
pub fn run_likelihood(job: &LikelihoodJob) -> Result<LikelihoodOutcome> {
    job.validate()?;
    if read_format(&job.model).ok().as_deref() == Some(LSGM_FORMAT) {
        return run_latent(job);
    }
    let model = LoadedModel::load(&job.model)?;
    if model.channels() != 1 {
        return Err(invalid(format!(
            "the model has {} channels; likelihoods are computed for single-channel images",
            model.channels()
        )));
    }
    let mut images = input_images(
        &job.input,
        &model.meta.normalization,
        model.pixel_spacing_mm(),
    )?;
    images.extend(prepared(job, model.image_size())?);
    for (name, im) in &images {
        model.check_image_shape(im.dim(), name)?;
    }
    let options = LikelihoodOptions {
        elbo: ElboConfig {
            draws: job.draws,
            proposal: job.time_proposal(),
            estimator: TraceEstimator::Rademacher,
            t_min: None,
            seed: job.seed,
            bpd_offset: 0.0,
        },
        ode_probes: job.ode_probes,
        ode_tol: job.ode_tol,
        batch: job.batch,
    };
    eprintln!(
        "likelihood of {} images under {}",
        images.len(),
        model.describe()
    );
    let bar = progress(images.len().div_ceil(job.batch) as u64, "batches");
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
    Ok(LikelihoodOutcome {
        results,
        model_description: model.describe(),
        units: "bits/dim of the prior's [0, 1] units at t = eps, no dequantisation",
        proposal: format!("{:?}", job.time_proposal()),
        method_note: format!(
            "bits/dim of the continuous density in the prior's [0, 1] units at t = ε (no \
             dequantisation); ELBO: {} draws, proposal {:?}; ODE: {} probe(s), RK45 tol {}; \
             {} + {} score evaluations with backward passes, {seconds:.1} s",
            job.draws,
            job.time_proposal(),
            job.ode_probes,
            job.ode_tol,
            cost.elbo_nfe,
            cost.ode_nfe
        ),
        elbo_nfe: cost.elbo_nfe,
        ode_nfe: cost.ode_nfe,
        seconds,
    })
}

/// The job for an LSGM checkpoint: per image the LSGM bound and, with probes, the bound with
/// log p(z₀) from the latent probability-flow ODE (see [`crate::eval::latent_likelihood`]),
/// in bits/dim of the image in [0, 1] units — comparable with the pixel priors' columns.
fn run_latent(job: &LikelihoodJob) -> Result<LikelihoodOutcome> {
    if !job.input.is_empty() {
        return Err(invalid(
            "--input needs a score-model checkpoint (an LSGM records no intensity window or \
             pixel spacing); give the LSGM --data or --phantoms",
        ));
    }
    let device = crate::model::device()?;
    let ck = LsgmCheckpoint::load(&job.model, &device).invalid_input()?;
    let (vae, prior) = (ck.vae(&device)?, ck.prior(true, &device)?);
    let config = &ck.meta.config;
    let size = config.vae.image_size;
    let images = prepared(job, size)?;
    check_lsgm_sizes(&images, size)?;
    eprintln!(
        "LSGM bounds of {} images under {} ({})",
        images.len(),
        job.model.display(),
        ck.meta.dataset
    );
    let bar = progress(images.len().div_ceil(job.batch) as u64, "batches");
    let start = Instant::now();
    let options = LsgmLikelihoodOptions {
        draws: job.draws,
        ode_probes: job.ode_probes,
        batch: job.batch,
        seed: job.seed,
    };
    let (results, cost) = lsgm_image_likelihoods(
        (&vae, &prior, config),
        &images,
        &options,
        &device,
        &mut || bar.inc(1),
    )?;
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let (elbo_nfe, ode_nfe) = (cost.elbo_nfe, cost.ode_nfe);
    Ok(LikelihoodOutcome {
        results,
        model_description: format!("LSGM trained on {}", ck.meta.dataset),
        units: "bits/dim of the image in [0, 1] units, no dequantisation (LSGM NELBO)",
        proposal: "LSGM likelihood-weighting proposal of the checkpoint's config".into(),
        method_note: format!(
            "LSGM: both columns estimate the upper bound NELBO of the image in [0, 1] units \
             (no dequantisation), in bits/dim: the ELBO column with the score prior's cross \
             entropy ({} draws, importance-sampled t), the ODE column with log p(z₀) of the \
             latent probability-flow ODE ({} posterior draw(s)); {elbo_nfe} + {ode_nfe} latent \
             score evaluations, {seconds:.1} s",
            job.draws, job.ode_probes
        ),
        elbo_nfe,
        ode_nfe,
        seconds,
    })
}
