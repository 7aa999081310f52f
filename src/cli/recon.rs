//! `medsgm recon {ct,mri,mar}`: the command line of reconstructing an image from a
//! measurement file (or a batch, [`recon_batch`](super::recon_batch)), checked, resolved and
//! run by [`crate::reconstruct::request`] (the outputs' units are described in
//! [`crate::reconstruct`]), and the report of what was written: the image to `--out`, and with
//! `--samples K > 1` the per-pixel posterior standard deviation to `<out>_std` (same format).

use crate::cli::args::{Depth, MemoryArgs};
use crate::cli::recon_batch::BatchArgs;
use crate::cli::score_recon::ScoreArgs;
use crate::io::image_io::Window;
use crate::reconstruct::request::ReconRequest;
use crate::task::{Method, Problem};
use anyhow::Result;
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
    /// FISTA-TV regularisation weight λ in ½‖Ax − y‖² + λ TV(x), in the measurement's units
    /// [default: the `[fista-tv]` table's `tv_weight` of --config — converted to the
    /// measurement's units and pixel spacing when the config records the images it was tuned
    /// on — else 0.005].
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
    /// The run these flags ask for.
    pub fn request(&self) -> ReconRequest {
        ReconRequest {
            problem: self.problem,
            input: self.input.clone(),
            method: self.method,
            filter: self.filter.map(FilterChoice::filter),
            iterations: self.iterations,
            tv_weight: self.tv_weight,
            nonnegative: self.nonnegative,
            config: self.score.config.clone(),
            model: self.score.model.clone(),
            sampler: self.score.overrides(),
            seed: self.score.seed,
            units: self.score.units,
            encoder: self.score.encoder.clone(),
            code: self.score.code.clone(),
            out: self.out.clone(),
            window: self.window,
            depth: self.bit_depth.map(Depth::bits),
            batch: self.batch.request(),
            memory: self.memory.budget(),
        }
    }
}

/// Runs `medsgm recon`: one measurement to `--out`, or a batch to `--output`.
pub fn run(a: &ReconArgs) -> Result<()> {
    let report = a.request().run()?;
    println!("{}", report.line);
    report.failure.map_or(Ok(()), Err)
}
