//! `medsgm bench`: benchmarks; prints a table and writes the rows as JSON.

use crate::bench::BenchRow;
use crate::cli::args::validate_output_path;
use crate::cli::{invalid, InputContext};
use crate::io::atomic::write_bytes_atomic;
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
pub enum Bench {
    /// Radon forward/adjoint, FBP, FFT, SSIM and FISTA-TV timings (peer: scikit-image, numpy).
    Operators,
    /// Score-network evaluation (NFE) and training-step timings (peer: PyTorch CPU).
    Model {
        /// Training configuration whose `[model]` table defines the network
        /// (default: configs/ct_phantom_128.toml's architecture).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Reconstruction quality (PSNR/SSIM), NFE and speed of classical and score-based methods
    /// on held-out images; writes into the directory `--out` (default bench-recon).
    Recon(crate::cli::bench_recon::ReconBenchArgs),
}

/// The peer script of each benchmark (prints one JSON row per line).
fn peer_script(which: &Bench) -> &'static str {
    match which {
        Bench::Operators => "data-scripts/peer_bench_operators.py",
        Bench::Model { .. } => "data-scripts/peer_bench_model.py",
        Bench::Recon(_) => "",
    }
}

/// Formats rows as an aligned text table.
pub fn table(rows: &[BenchRow]) -> String {
    let w_group = rows.iter().map(|r| r.group.len()).max().unwrap_or(0).max(5);
    let w_case = rows
        .iter()
        .map(|r| r.case.chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    let mut out = format!(
        "{:<w_group$}  {:<w_case$}  {:>12}  note\n",
        "group", "case", "median ms"
    );
    for r in rows {
        let pad = w_case - r.case.chars().count();
        out += &format!(
            "{:<w_group$}  {}{}  {:>12.3}  {}\n",
            r.group,
            r.case,
            " ".repeat(pad),
            r.median_ms,
            r.note
        );
    }
    out
}

/// Runs `medsgm bench`.
pub fn run(a: &BenchArgs) -> Result<()> {
    if !(1..=1000).contains(&a.repeats) {
        return Err(invalid("--repeats must be in 1..=1000"));
    }
    let name = match &a.which {
        Bench::Operators => "operators",
        Bench::Model { .. } => "model",
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
        .unwrap_or_else(|| PathBuf::from(format!("bench-{name}.json")));
    validate_output_path(&out, false)?;
    let mut rows: Vec<BenchRow> = match &a.which {
        Bench::Operators => {
            let mut rows = crate::bench::operators::run(a.repeats)?;
            rows.extend(crate::bench::mri::run(a.repeats)?);
            rows
        }
        Bench::Model { config } => {
            let path = config
                .clone()
                .unwrap_or_else(|| PathBuf::from("configs/ct_phantom_128.toml"));
            let cfg = crate::train::TrainConfig::from_toml_file(&path).invalid_input()?;
            crate::bench::model::run(&cfg.model, a.repeats)?
        }
        Bench::Recon(_) => unreachable!("handled above"),
    };
    if let Some(python) = &a.peer_python {
        let threads = rayon::current_num_threads();
        rows.extend(crate::bench::run_peer(
            python,
            std::path::Path::new(peer_script(&a.which)),
            threads,
            a.repeats,
        )?);
    }
    print!("{}", table(&rows));
    let json = serde_json::to_string_pretty(&rows)? + "\n";
    write_bytes_atomic(&out, json.as_bytes())?;
    println!("wrote {}", out.display());
    Ok(())
}
