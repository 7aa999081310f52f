//! `medsgm bench`: benchmarks ([`crate::bench::suite`]); prints a table and writes the rows as
//! JSON.

use crate::bench::suite::{check_repeats, Suite, DEFAULT_MODEL_CONFIG};
use crate::io::target::validate_output_path;
use anyhow::Result;
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// Arguments of `medsgm bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Which benchmark.
    #[command(subcommand)]
    pub which: Bench,
    /// Timed repetitions per case (the median is reported).
    #[arg(long, default_value_t = 5, global = true)]
    pub repeats: usize,
    /// Where to write the rows as JSON.
    #[arg(long, global = true)]
    pub out: Option<PathBuf>,
    /// Also run the Python peer script with this interpreter (e.g. `.venv/bin/python`) in the
    /// same run, with the same thread count, and report its rows beside medsgm's.
    #[arg(long, global = true)]
    pub peer_python: Option<PathBuf>,
}

/// Available benchmarks.
#[derive(Debug, Clone, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per run
pub enum Bench {
    /// Radon and fan-beam forward/adjoint, FBP, FFT, SSIM and FISTA-TV timings (peers:
    /// scikit-image, ASTRA, numpy).
    Operators,
    /// Score-network evaluation (NFE) and training-step timings (peer: PyTorch CPU).
    Model {
        /// Training configuration whose `[model]` table defines the network
        /// (default: configs/ct_phantom_128_nf32.toml's architecture).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Reconstruction quality (PSNR/SSIM), NFE and speed of classical and score-based methods
    /// on held-out images; writes into the directory `--out` (default bench-recon).
    Recon(crate::cli::bench_recon::ReconBenchArgs),
}

/// Runs `medsgm bench`.
pub fn run(a: &BenchArgs) -> Result<()> {
    check_repeats(a.repeats)?;
    let suite = match &a.which {
        Bench::Operators => Suite::Operators,
        Bench::Model { config } => Suite::Model {
            config: config
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL_CONFIG)),
        },
        Bench::Recon(r) => {
            let out = a
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from("bench-recon"));
            return crate::cli::bench_recon::run(r, &out);
        }
    };
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("bench-{}.json", suite.name())));
    validate_output_path(&out, false)?;
    let run = suite.run(a.repeats, a.peer_python.as_deref())?;
    print!("{}", run.report());
    run.write_json(&out)?;
    println!("wrote {}", out.display());
    Ok(())
}
