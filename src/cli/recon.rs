//! `medsgm recon {ct,mri,mar}`: the command line of reconstructing an image from a
//! measurement file (or a batch, [`recon_batch`]), checked and resolved once into a
//! [`ReconJob`] ([`resolve`]) for [`crate::reconstruct`] (which describes the outputs' units),
//! and the report of what was written: the image to `--out`, and with `--samples K > 1` the
//! per-pixel posterior standard deviation to `<out>_std` (same format).

use crate::cli::args::{check_png_options, Depth, ImageOutput, MemoryArgs};
use crate::cli::model::LoadedModel;
use crate::cli::recon_batch::{self, BatchArgs};
use crate::cli::score_recon::ScoreArgs;
use crate::cli::{invalid, InputContext};
use crate::eval::method::{MethodParams, TaskConfig};
use crate::io::guard::refuse_overwriting_inputs;
use crate::io::image_io::Window;
use crate::io::measurement::measurement_files;
use crate::reconstruct::fista::FistaTv;
use crate::reconstruct::{load_checked, recon_bytes, reconstruct, std_path, ReconJob, ReconSize};
use crate::task::{Method, Problem};
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use medsgm_operators::fbp::Filter;
use std::path::PathBuf;

impl FilterChoice {
    /// The operators crate's filter.
    pub fn filter(self) -> Filter {
        match self {
            FilterChoice::RamLak => Filter::RamLak,
            FilterChoice::SheppLogan => Filter::SheppLogan,
            FilterChoice::Cosine => Filter::Cosine,
            FilterChoice::Hamming => Filter::Hamming,
            FilterChoice::Hann => Filter::Hann,
        }
    }
}

/// FBP filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FilterChoice {
    /// Ramp.
    RamLak,
    /// Ramp × sinc.
    SheppLogan,
    /// Ramp × cosine.
    Cosine,
    /// Ramp × Hamming window.
    Hamming,
    /// Ramp × Hann window.
    Hann,
}

/// Arguments of `medsgm recon`.
#[derive(Debug, Clone, Args)]
pub struct ReconArgs {
    /// The inverse problem.
    #[arg(value_enum)]
    pub problem: Problem,
    /// Measurement file (.npy with its .json sidecar); with --output also a folder, a manifest
    /// .csv, a DICOM file or series folder, or a NIfTI volume (.nii/.nii.gz), reconstructed
    /// slice by slice from a simulated measurement (see --views, --acceleration).
    #[arg(long, short)]
    pub input: PathBuf,
    /// Reconstruction method.
    #[arg(long, value_enum)]
    pub method: Method,
    /// FBP filter (fbp; mar: also the uncorrected image) [default: ram-lak].
    #[arg(long, value_enum)]
    pub filter: Option<FilterChoice>,
    /// FISTA-TV iterations [default: the `[fista-tv]` table's `fista_iterations` of --config,
    /// else 100].
    #[arg(long)]
    pub iterations: Option<usize>,
    /// FISTA-TV regularisation weight λ in ½‖Ax − y‖² + λ TV(x) [default: the `[fista-tv]`
    /// table's `tv_weight` of --config, else 0.005].
    #[arg(long)]
    pub tv_weight: Option<f32>,
    /// FISTA-TV: project onto x ≥ 0 after each step.
    #[arg(long)]
    pub nonnegative: bool,
    /// Score-based methods.
    #[command(flatten)]
    pub score: ScoreArgs,
    /// Output image (single measurement): .png, .npy, .nii or .nii.gz.
    #[arg(
        long,
        short,
        required_unless_present = "output",
        conflicts_with = "output"
    )]
    pub out: Option<PathBuf>,
    /// PNG output: intensities LOW,HIGH mapped to black and white (default depends on the data).
    #[arg(long, allow_hyphen_values = true)]
    pub window: Option<Window>,
    /// PNG output bit depth [default: 16].
    #[arg(long, value_enum)]
    pub bit_depth: Option<Depth>,
    /// Batch processing (folders, manifests, DICOM series, NIfTI volumes).
    #[command(flatten)]
    pub batch: BatchArgs,
    /// Memory budget: every input's estimated peak is checked before its reconstruction.
    #[command(flatten)]
    pub memory: MemoryArgs,
}

impl ReconArgs {
    /// The FBP filter (Ram-Lak unless --filter).
    pub fn fbp_filter(&self) -> Filter {
        self.filter.unwrap_or(FilterChoice::RamLak).filter()
    }

    /// FISTA-TV's (iterations, λ): the flags, then the `[fista-tv]` table of `--config`, then
    /// recon's defaults 100 and 0.005 (invalid input when the config cannot be read or holds bad
    /// values).
    pub fn fista_params(&self) -> Result<(usize, f32)> {
        let defaults = MethodParams {
            fista_iterations: 100,
            tv_weight: 0.005,
            ..MethodParams::defaults(self.problem)
        };
        let p = match &self.score.config {
            Some(path) => TaskConfig::load(path, false)
                .and_then(|c| c.params_over(defaults, Method::FistaTv))
                .invalid_input()?,
            None => defaults,
        };
        let iterations = self.iterations.unwrap_or(p.fista_iterations);
        let weight = self.tv_weight.unwrap_or(p.tv_weight);
        let source = |flag_given: bool, flag: &str| match (&self.score.config, flag_given) {
            (Some(path), false) => format!("{flag} (from {})", path.display()),
            _ => flag.to_owned(),
        };
        if !(1..=100_000).contains(&iterations) {
            return Err(invalid(format!(
                "{} must be in 1..=100000, got {iterations}",
                source(self.iterations.is_some(), "--iterations")
            )));
        }
        if !(weight.is_finite() && (0.0..=1e6).contains(&weight)) {
            return Err(invalid(format!(
                "{} must be in [0, 1e6], got {weight}",
                source(self.tv_weight.is_some(), "--tv-weight")
            )));
        }
        Ok((iterations, weight))
    }

    /// The output image settings for the file `out`.
    pub fn image_output(&self, out: PathBuf) -> ImageOutput {
        ImageOutput {
            out,
            window: self.window,
            bit_depth: self.bit_depth,
        }
    }
}

/// Checks the method and its options against the problem (invalid input).
pub fn check_method(a: &ReconArgs) -> Result<()> {
    if a.out.is_some() {
        let b = &a.batch;
        let batch_only = [
            ("--shard", b.shard.is_some()),
            ("--resume", b.resume),
            ("--reference", b.reference.is_some()),
            ("--anonymize", b.anonymize),
            ("--anonymize-map", b.anonymize_map.is_some()),
            ("--axis", b.axis.is_some()),
        ];
        if let Some((flag, _)) = batch_only.iter().find(|(_, given)| *given) {
            return Err(invalid(format!(
                "{flag} applies to batch mode only (--output FOLDER), not to --out FILE"
            )));
        }
    }
    match &a.out {
        Some(out) => check_png_options(out, a.window.is_some(), a.bit_depth.is_some())?,
        None => {
            let png_only = [
                ("--window", a.window.is_some()),
                ("--bit-depth", a.bit_depth.is_some()),
            ];
            if let Some((flag, _)) = png_only.iter().find(|(_, given)| *given) {
                return Err(invalid(format!(
                    "{flag} applies to a PNG --out FILE only; batch mode (--output FOLDER) writes \
                     the float values themselves (NPY, NIfTI, DICOM)"
                )));
            }
        }
    }
    if a.method.is_latent() {
        return Err(invalid(format!(
            "{} (the LSGM latent prior) runs in `medsgm bench recon --latent-model` and `medsgm tune`, not in recon",
            a.method
        )));
    }
    if !a.method.applies_to(a.problem) {
        let choices: Vec<&str> = Method::ALL
            .iter()
            .filter(|m| m.applies_to(a.problem) && !m.is_latent())
            .map(|m| m.name())
            .collect();
        return Err(invalid(format!(
            "method {} does not apply to {}; choose one of {}",
            a.method,
            a.problem,
            choices.join(", ")
        )));
    }
    let not_applying = |flags: Vec<&str>, to: &str| -> Result<()> {
        match flags.first() {
            Some(flag) => Err(invalid(format!(
                "{flag} does not apply to {} ({to})",
                a.method
            ))),
            None => Ok(()),
        }
    };
    if a.method != Method::FistaTv {
        let fista_only = [
            ("--iterations", a.iterations.is_some()),
            ("--tv-weight", a.tv_weight.is_some()),
            ("--nonnegative", a.nonnegative),
        ];
        not_applying(
            fista_only.iter().filter(|f| f.1).map(|f| f.0).collect(),
            "a fista-tv option",
        )?;
    }
    if a.filter.is_some() && a.problem != Problem::Mar && a.method != Method::Fbp {
        return Err(invalid(format!(
            "--filter does not apply to {} (an fbp option; mar: every method)",
            a.method
        )));
    }
    if a.method.inverse_method().is_none() {
        not_applying(a.score.given_flags(), "a score-method option")?;
    }
    if a.out.is_some() {
        let volume_only = [
            ("--views", a.batch.views.is_some()),
            ("--acceleration", a.batch.acceleration.is_some()),
            ("--batch", a.batch.batch_size.is_some()),
            (
                "--geometry fan",
                a.batch.fan.beam == crate::cli::simulate::Beam::Fan,
            ),
        ];
        if let Some((flag, _)) = volume_only.iter().find(|(_, given)| *given) {
            return Err(invalid(format!(
                "{flag} sets the simulated measurement of volumes in batch mode (--output FOLDER); a measurement file has its own"
            )));
        }
    }
    a.batch.check_volume_flags(a.problem)?;
    if let Some(path) = &a.score.config {
        // a broken config file is an error whatever the method
        TaskConfig::load(path, false).map_err(invalid)?;
    }
    if a.method == Method::FistaTv {
        a.fista_params()?;
    }
    if let Some(method) = a.method.inverse_method() {
        a.score.validate(a.problem, method)?;
    }
    Ok(())
}

/// The run's settings ([`ReconJob`]), resolved once per command, not per input: every flag
/// checked against the method and problem ([`check_method`]), the score method's parameters
/// (flags, then `--config`, then defaults) and FISTA-TV's.
pub fn resolve(a: &ReconArgs) -> Result<ReconJob> {
    check_method(a)?;
    let fista = match a.method {
        Method::FistaTv => {
            let (iterations, weight) = a.fista_params()?;
            Some(FistaTv {
                iterations,
                weight,
                nonnegative: a.nonnegative,
            })
        }
        _ => None,
    };
    Ok(ReconJob {
        problem: a.problem,
        method: a.method,
        filter: a.fbp_filter(),
        fista,
        score: a
            .method
            .inverse_method()
            .map(|m| a.score.config(a.problem, m))
            .transpose()?,
        units: a.score.units,
        memory: a.memory.budget(),
    })
}

/// The model of a score-based method (None for classical methods).
pub fn load_model(a: &ReconArgs) -> Result<Option<LoadedModel>> {
    match a.method.inverse_method() {
        Some(_) => Ok(Some(a.score.load_model()?)),
        None => Ok(None),
    }
}

/// Runs `medsgm recon`: one measurement to `--out`, or a batch to `--output`.
pub fn run(a: &ReconArgs) -> Result<()> {
    let job = resolve(a)?;
    if a.score.code.is_some() && a.batch.output.is_some() {
        return Err(invalid(
            "--code conditions one slice on one latent code: give --out FILE, not --output",
        ));
    }
    let output = match (&a.out, &a.batch.output) {
        (_, Some(dir)) => return recon_batch::run(a, &job, dir),
        (Some(out), None) => a.image_output(out.clone()),
        (None, None) => return Err(invalid("give --out FILE or --output FOLDER")),
    };
    output.validate()?;
    let m = load_checked(job.problem, &a.input)?;
    let mut inputs = measurement_files(&a.input, &m.sidecar);
    inputs.extend(a.score.encoder.iter().chain(&a.score.code).cloned());
    refuse_overwriting_inputs(&[output.out.clone(), std_path(&output.out)], &inputs)
        .map_err(invalid)?;
    let model = load_model(a)?;
    job.memory.check(
        &a.input.display().to_string(),
        recon_bytes(&job, ReconSize::of(&m.sidecar.geometry), 1, model.as_ref()),
    )?;
    let out = reconstruct(&job, &m, model.as_ref())?;
    let bad = out.image.iter().filter(|v| !v.is_finite()).count();
    if bad > 0 {
        bail!(
            "{} diverged on {}: {bad} of {} pixels are not finite (check the measurement's \
             scale and the method's parameters); {} was not written",
            job.method.name(),
            a.input.display(),
            out.image.len(),
            output.out.display()
        );
    }
    output.write(&out.image.view(), out.window)?;
    let (rows, cols) = out.image.dim();
    let mut report = format!(
        "wrote {} ({rows}x{cols}, {:?})",
        output.out.display(),
        job.method
    );
    if let Some(std) = &out.std {
        let path = std_path(&output.out);
        let max = std.iter().copied().fold(0.0f32, f32::max);
        let std_output = ImageOutput {
            out: path.clone(),
            window: None,
            bit_depth: a.bit_depth,
        };
        std_output
            .write(
                &std.view(),
                Window {
                    low: 0.0,
                    high: if max > 0.0 { max } else { 1.0 },
                },
            )
            .with_context(|| format!("writing the uncertainty map {}", path.display()))?;
        let samples = job.samples();
        report += &format!(
            " and the std map of {samples} samples {} (mean posterior SD over the object {:.4})",
            path.display(),
            crate::eval::uncertainty::object_mean_sd(&out.image, std)
        );
    }
    if let Some((nfe, seconds)) = out.score {
        report += &format!("; NFE {nfe} per sample, {seconds:.2} s");
    }
    println!("{report}");
    Ok(())
}
