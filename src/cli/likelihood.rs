//! `medsgm likelihood --model M (--input PATH | --data CONFIG | --phantoms N)`: how well a
//! prior explains images — the ELBO of the reverse SDE (a true bound) and the probability-flow
//! ODE log-likelihood, in bits/dim with standard errors ([`crate::eval::likelihood`]).

use crate::checkpoint::read_format;
use crate::cli::args::progress;
use crate::cli::model::LoadedModel;
use crate::cli::{invalid, InputContext};
use crate::eval::likelihood::{image_likelihoods, Estimate, ImageLikelihood, LikelihoodOptions};
use crate::eval::testset::{config_slices, phantoms, real_images, EvalSplit, TEST_SEED};
use crate::io::atomic::write_bytes_atomic;
use crate::lsgm::trainer::LSGM_FORMAT;
use crate::lsgm::{bound_draws, nelbo_ode, LsgmCheckpoint};
use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use clap::{Args, ValueEnum};
use medsgm_recon::elbo::mean_var;
use medsgm_recon::elbo::{ElboConfig, TimeProposal};
use medsgm_recon::likelihood::TraceEstimator;
use ndarray::Array2;
use serde::Serialize;
use std::path::PathBuf;
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

/// What `--json` holds.
#[derive(Debug, Serialize)]
struct Report<'a> {
    model: String,
    model_description: String,
    units: &'static str,
    draws: usize,
    proposal: String,
    ode_probes: usize,
    ode_tol: f64,
    seed: u64,
    images: &'a [ImageLikelihood],
    elbo_nfe: usize,
    ode_nfe: usize,
    seconds: f64,
}

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
        let inputs = std::iter::once(&a.model).chain(&a.input).chain(&a.data);
        for p in inputs {
            if json == p
                || (json.exists()
                    && std::fs::canonicalize(json).ok() == std::fs::canonicalize(p).ok())
            {
                return Err(invalid(format!(
                    "--json {} is an input (inputs are never overwritten)",
                    json.display()
                )));
            }
        }
        if json.is_dir() {
            return Err(invalid(format!("--json {} is a folder", json.display())));
        }
    }
    Ok(())
}

/// Slices of `--data` slabs and `--phantoms` held-out anatomical phantoms at side `size`.
fn prepared_images(a: &LikelihoodArgs, size: usize) -> Result<Vec<(String, Array2<f32>)>> {
    let mut images = Vec::new();
    for c in &a.data {
        let set = config_slices(c, a.n, a.split)
            .with_context(|| format!("--data {}", c.display()))
            .invalid_input()?;
        images.extend(
            set.into_iter()
                .map(|(n, im)| (format!("{}: {n}", c.display()), im)),
        );
    }
    if a.phantoms > 0 {
        for (k, t) in phantoms(size, TEST_SEED, a.phantoms, false)?
            .into_iter()
            .enumerate()
        {
            images.push((format!("phantom {k} ({size}²)"), t.truth));
        }
    }
    Ok(images)
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
    let mut images: Vec<(String, Array2<f32>)> = Vec::new();
    for p in &a.input {
        let set = real_images(p, &model.meta.normalization, model.pixel_spacing_mm())
            .with_context(|| format!("input {}", p.display()))
            .invalid_input()?;
        images.extend(
            set.into_iter()
                .map(|(n, im)| (format!("{}: {n}", p.display()), im)),
        );
    }
    images.extend(prepared_images(a, model.image_size())?);
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
    print_table(&results);
    println!(
        "bits/dim of the continuous density in the prior's [0, 1] units at t = ε (no \
         dequantisation); ELBO: {} draws, proposal {:?}; ODE: {} probe(s), RK45 tol {}; \
         {} + {} score evaluations with backward passes, {seconds:.1} s",
        a.draws, options.elbo.proposal, a.ode_probes, a.tol, cost.elbo_nfe, cost.ode_nfe
    );
    if let Some(json) = &a.json {
        let report = Report {
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
    }
    Ok(())
}

/// `medsgm likelihood` for an LSGM checkpoint: per image the LSGM bound (its NELBO with the
/// score prior's cross entropy, `--draws` posterior and time draws) and, with `--ode-probes`,
/// the bound with log p(z₀) from the latent probability-flow ODE ([`crate::lsgm::bound`]), in
/// bits/dim of the image in [0, 1] units — comparable with the pixel priors' columns.
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
    let images = prepared_images(a, size)?;
    for (name, im) in &images {
        if im.dim() != (size, size) {
            return Err(invalid(format!(
                "{name} is {}x{}, the LSGM models {size}x{size} images",
                im.dim().0,
                im.dim().1
            )));
        }
    }
    eprintln!(
        "LSGM bounds of {} images under {} ({})",
        images.len(),
        a.model.display(),
        ck.meta.dataset
    );
    let bar = progress(images.len().div_ceil(a.batch) as u64, "batches");
    let start = Instant::now();
    let bits = |nats: f64| nats / ((size * size) as f64 * std::f64::consts::LN_2);
    let (mut results, mut elbo_nfe, mut ode_nfe) = (Vec::new(), 0, 0);
    for (b, chunk) in images.chunks(a.batch).enumerate() {
        let data: Vec<f32> = chunk
            .iter()
            .flat_map(|(_, im)| im.iter().copied())
            .collect();
        let x = Tensor::from_vec(data, (chunk.len(), 1, size, size), &device)?;
        let seed = a.seed.wrapping_add(b as u64 * 1_000_003);
        let bound = bound_draws(&vae, &prior, config, &x, a.draws, seed)?.per_image();
        elbo_nfe += a.draws;
        let mut odes = vec![Vec::new(); chunk.len()];
        for probe in 0..a.ode_probes {
            let (nelbo, _, nfe) = nelbo_ode(
                &vae,
                &prior,
                config,
                &x,
                seed.wrapping_add(1 + probe as u64),
            )?;
            ode_nfe += nfe;
            for (v, n) in odes.iter_mut().zip(nelbo) {
                v.push(bits(n));
            }
        }
        for (((name, _), (nats, se)), ode) in chunk.iter().zip(bound).zip(odes) {
            let elbo = Estimate {
                bits_per_dim: bits(nats),
                std_error: Some(bits(se)),
            };
            let ode = (!ode.is_empty()).then(|| {
                let (mean, var) = mean_var(&ode);
                Estimate {
                    bits_per_dim: mean,
                    std_error: (ode.len() > 1).then(|| (var / ode.len() as f64).sqrt()),
                }
            });
            results.push(ImageLikelihood {
                name: name.clone(),
                elbo,
                gap: ode.map(|o| elbo.bits_per_dim - o.bits_per_dim),
                ode,
            });
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    print_table(&results);
    println!(
        "LSGM: both columns estimate the upper bound NELBO of the image in [0, 1] units (no \
         dequantisation), in bits/dim: the ELBO column with the score prior's cross entropy \
         ({} draws, importance-sampled t), the ODE column with log p(z₀) of the latent \
         probability-flow ODE ({} posterior draw(s)); {elbo_nfe} + {ode_nfe} latent score \
         evaluations, {seconds:.1} s",
        a.draws, a.ode_probes
    );
    if let Some(json) = &a.json {
        let report = Report {
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
    }
    Ok(())
}

/// Writes the `--json` report (atomically).
fn write_report(json: &std::path::Path, report: &Report) -> Result<()> {
    write_bytes_atomic(
        json,
        (serde_json::to_string_pretty(report)? + "\n").as_bytes(),
    )
    .with_context(|| format!("writing {}", json.display()))?;
    println!("wrote {}", json.display());
    Ok(())
}

/// The markdown table of the results, with means over the images.
fn print_table(results: &[ImageLikelihood]) {
    let fmt = |e: &crate::eval::likelihood::Estimate| match e.std_error {
        Some(se) => format!("{:.4} ± {:.4}", e.bits_per_dim, se),
        None => format!("{:.4}", e.bits_per_dim),
    };
    println!("| image | ELBO bits/dim (upper bound) | ODE bits/dim | gap |");
    println!("|---|---:|---:|---:|");
    for r in results {
        println!(
            "| {} | {} | {} | {} |",
            r.name,
            fmt(&r.elbo),
            r.ode.as_ref().map(fmt).unwrap_or_else(|| "–".into()),
            r.gap
                .map(|g| format!("{g:+.4}"))
                .unwrap_or_else(|| "–".into())
        );
    }
    let n = results.len() as f64;
    let mean_elbo = results.iter().map(|r| r.elbo.bits_per_dim).sum::<f64>() / n;
    let gaps: Vec<f64> = results.iter().filter_map(|r| r.gap).collect();
    let odes: Vec<f64> = results
        .iter()
        .filter_map(|r| r.ode.map(|o| o.bits_per_dim))
        .collect();
    println!(
        "| mean of {} | {mean_elbo:.4} | {} | {} |",
        results.len(),
        if odes.is_empty() {
            "–".into()
        } else {
            format!("{:.4}", odes.iter().sum::<f64>() / odes.len() as f64)
        },
        if gaps.is_empty() {
            "–".into()
        } else {
            format!("{:+.4}", gaps.iter().sum::<f64>() / gaps.len() as f64)
        }
    );
}
