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

/// Path of the model benchmark's configuration (default configs/ct_phantom_128_nf32.toml).
fn model_config(config: &Option<PathBuf>) -> PathBuf {
    config
        .clone()
        .unwrap_or_else(|| PathBuf::from("configs/ct_phantom_128_nf32.toml"))
}

/// The peer scripts of each benchmark (each prints one JSON row per line), with their extra
/// arguments.
fn peer_scripts(which: &Bench) -> Vec<(&'static str, Vec<std::ffi::OsString>)> {
    match which {
        Bench::Operators => vec![
            ("data-scripts/peer_bench_operators.py", vec![]),
            ("data-scripts/peer_bench_fan.py", vec![]),
            ("data-scripts/peer_bench_mri.py", vec![]),
        ],
        Bench::Model { config } => vec![(
            "data-scripts/peer_bench_model.py",
            vec!["--config".into(), model_config(config).into()],
        )],
        Bench::Recon(_) => vec![],
    }
}

/// Formats medsgm-versus-peer pairs as an aligned text table with speed-ups.
pub fn comparison_table(pairs: &[crate::bench::Comparison]) -> String {
    let w_case = pairs
        .iter()
        .map(|p| p.case.chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    let w_peer = pairs.iter().map(|p| p.peer.len()).max().unwrap_or(0).max(4);
    let mut out = format!(
        "{:<w_case$}  {:>12}  {:<w_peer$}  {:>12}  {:>8}\n",
        "case", "medsgm ms", "peer", "peer ms", "speed-up"
    );
    for p in pairs {
        let pad = w_case - p.case.chars().count();
        out += &format!(
            "{}{}  {:>12.3}  {:<w_peer$}  {:>12.3}  {:>7.2}×\n",
            p.case,
            " ".repeat(pad),
            p.medsgm_ms,
            p.peer,
            p.peer_ms,
            p.speedup()
        );
    }
    out
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
            rows.extend(crate::bench::operators::run_fan(a.repeats)?);
            rows.extend(crate::bench::mri::run(a.repeats)?);
            rows
        }
        Bench::Model { config } => {
            let path = model_config(config);
            let cfg = crate::train::TrainConfig::from_toml_file(&path).invalid_input()?;
            crate::bench::model::run(&cfg.model, a.repeats)?
        }
        Bench::Recon(_) => unreachable!("handled above"),
    };
    let mut pairs = Vec::new();
    if let Some(python) = &a.peer_python {
        let threads = rayon::current_num_threads();
        let mut peers = Vec::new();
        for (script, extra) in peer_scripts(&a.which) {
            peers.extend(crate::bench::run_peer(
                python,
                std::path::Path::new(script),
                threads,
                a.repeats,
                &extra,
            )?);
        }
        pairs = crate::bench::compare(&rows, &peers);
        rows.extend(peers);
    }
    print!("{}", table(&rows));
    if !pairs.is_empty() {
        print!("\n{}", comparison_table(&pairs));
    }
    let json = serde_json::to_string_pretty(&rows)? + "\n";
    write_bytes_atomic(&out, json.as_bytes())?;
    println!("wrote {}", out.display());
    Ok(())
}
