//! The `medsgm` command-line interface (clap derive), one module per subcommand.
//!
//! Errors are classified for the exit code by [`exit_code`] (see [`crate::error`], re-exported
//! here): anything marked with [`InvalidInput`] exits with 2, like clap's own usage errors;
//! every other failure exits with 1.

pub mod args;
pub mod bench;
pub mod bench_recon;
pub mod calibrate;
pub mod demo;
pub mod likelihood;
pub mod metrics;
pub mod model;
pub mod phantom;
pub mod recon;
pub mod recon_batch;
pub mod sample;
pub mod score_recon;
pub mod scorevae;
pub mod simulate;
pub mod train;
pub mod tune;

pub use crate::error::{exit_code, invalid, InputContext, InvalidInput};
use anyhow::Result;
use clap::{Parser, Subcommand};

/// The exit-code table shown by `medsgm --help`.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  runtime failure (e.g. an output cannot be written, a numerical failure)
  2  usage error or invalid input (bad arguments; a missing, unreadable, malformed or
     non-finite input file; a measurement whose JSON sidecar disagrees with its data);
     batch runs (`recon --output DIR`) process every input, then exit 2 when some input was
     invalid, 1 when some input hit a runtime failure (see DIR/summary.json)";

/// Top-level command line.
#[derive(Debug, Parser)]
#[command(
    name = "medsgm",
    version,
    about = "Reconstruct CT and MRI from incomplete measurements (score-based generative models; classical baselines)",
    after_help = EXIT_CODES
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a phantom image (Shepp–Logan, random ellipses, anatomical CT).
    Phantom(phantom::PhantomArgs),
    /// Simulate a measurement (sinogram or k-space + JSON sidecar) from an image.
    Simulate(simulate::SimulateArgs),
    /// Reconstruct an image from a measurement file, or a batch (folder, manifest, DICOM series,
    /// NIfTI volumes) into an output folder.
    Recon(Box<recon::ReconArgs>),
    /// Compare an image with a reference (PSNR, SSIM, NMSE) and print JSON.
    Metrics(metrics::MetricsArgs),
    /// Run the built-in demonstration pipeline and write a comparison figure.
    Demo(demo::DemoArgs),
    /// Train a score model (denoising score matching) from a TOML configuration.
    Train(train::TrainArgs),
    /// Draw unconditional samples from a trained score model (PC sampler or probability-flow ODE).
    Sample(sample::SampleArgs),
    /// Benchmarks.
    Bench(bench::BenchArgs),
    /// Tune a method's parameters on validation images (Bayesian optimisation).
    Tune(tune::TuneArgs),
    /// Calibrate a prior's out-of-distribution check on its validation slab.
    Calibrate(calibrate::CalibrateArgs),
    /// How well a prior explains images: ELBO (a bound) and ODE likelihood in bits/dim.
    Likelihood(likelihood::LikelihoodArgs),
    /// Encode slices to ScoreVAE codes (an encoder trained against a frozen prior).
    Encode(scorevae::EncodeArgs),
    /// Decode ScoreVAE codes through the prior (conditional reverse SDE).
    Decode(scorevae::DecodeArgs),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    crate::plot::register_fonts()?;
    match cli.command {
        Command::Phantom(a) => phantom::run(&a),
        Command::Simulate(a) => simulate::run(&a),
        Command::Recon(a) => recon::run(&a),
        Command::Metrics(a) => metrics::run(&a),
        Command::Demo(a) => demo::run(&a),
        Command::Train(a) => train::run(&a),
        Command::Sample(a) => sample::run(&a),
        Command::Bench(a) => bench::run(&a),
        Command::Tune(a) => tune::run(&a),
        Command::Calibrate(a) => calibrate::run(&a),
        Command::Likelihood(a) => likelihood::run(&a),
        Command::Encode(a) => scorevae::run_encode(&a),
        Command::Decode(a) => scorevae::run_decode(&a),
    }
}
