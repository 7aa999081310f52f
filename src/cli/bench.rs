//! `medsgm bench`: benchmarks.

use crate::cli::args::not_available;
use anyhow::Result;
use clap::{Args, Subcommand};

/// Arguments of `medsgm bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Which benchmark.
    #[command(subcommand)]
    pub which: Bench,
}

/// Available benchmarks.
#[derive(Debug, Clone, Subcommand)]
pub enum Bench {
    /// Radon, FBP, FFT and SSIM timings.
    Operators,
}

/// Runs `medsgm bench`.
pub fn run(a: &BenchArgs) -> Result<()> {
    match a.which {
        Bench::Operators => Err(not_available("the operator benchmark")),
    }
}
