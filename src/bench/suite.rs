//! One timing benchmark (`medsgm bench operators|model`, [`Suite`]): medsgm's rows and,
//! with a Python interpreter, the peer scripts' rows from the same run with the same thread
//! count, paired by case ([`SuiteRun`]), as aligned text tables and JSON.

use super::{compare, run_peer, BenchRow, Comparison};
use crate::error::{invalid, InputContext};
use crate::io::atomic::write_bytes_atomic;
use anyhow::Result;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The default architecture of the model benchmark.
pub const DEFAULT_MODEL_CONFIG: &str = "configs/ct_phantom_128_nf32.toml";

/// A timing benchmark.
#[derive(Debug, Clone, PartialEq)]
pub enum Suite {
    /// Radon and fan-beam forward/adjoint, FBP, FFT, SSIM, FISTA-TV and the MRI operators.
    Operators,
    /// Score-network evaluation and training steps of the `[model]` of this training config.
    Model {
        /// The training configuration.
        config: PathBuf,
    },
}

/// What a benchmark measured.
#[derive(Debug, Clone)]
pub struct SuiteRun {
    /// medsgm's rows, then the peers'.
    pub rows: Vec<BenchRow>,
    /// medsgm against the peers, case by case.
    pub pairs: Vec<Comparison>,
}

/// Fails (invalid input) unless 1 ≤ `repeats` ≤ 1000.
pub fn check_repeats(repeats: usize) -> Result<()> {
    if !(1..=1000).contains(&repeats) {
        return Err(invalid("--repeats must be in 1..=1000"));
    }
    Ok(())
}

impl Suite {
    /// The name in the default output `bench-<name>.json`.
    pub fn name(&self) -> &'static str {
        match self {
            Suite::Operators => "operators",
            Suite::Model { .. } => "model",
        }
    }

    /// The peer scripts (each prints one JSON row per line) with their extra arguments.
    fn peer_scripts(&self) -> Vec<(&'static str, Vec<OsString>)> {
        match self {
            Suite::Operators => vec![
                ("data-scripts/peer_bench_operators.py", vec![]),
                ("data-scripts/peer_bench_fan.py", vec![]),
                ("data-scripts/peer_bench_mri.py", vec![]),
            ],
            Suite::Model { config } => vec![(
                "data-scripts/peer_bench_model.py",
                vec!["--config".into(), config.into()],
            )],
        }
    }

    /// Times medsgm's cases (median of `repeats`) and, with `peer_python`, the peers'.
    pub fn run(&self, repeats: usize, peer_python: Option<&Path>) -> Result<SuiteRun> {
        let mut rows = match self {
            Suite::Operators => {
                let mut rows = super::operators::run(repeats)?;
                rows.extend(super::operators::run_fan(repeats)?);
                rows.extend(super::mri::run(repeats)?);
                rows
            }
            Suite::Model { config } => {
                let cfg = crate::train::TrainConfig::from_toml_file(config).invalid_input()?;
                super::model::run(&cfg.model, repeats)?
            }
        };
        let mut pairs = Vec::new();
        if let Some(python) = peer_python {
            let threads = rayon::current_num_threads();
            let mut peers = Vec::new();
            for (script, extra) in self.peer_scripts() {
                peers.extend(run_peer(
                    python,
                    Path::new(script),
                    threads,
                    repeats,
                    &extra,
                )?);
            }
            pairs = compare(&rows, &peers);
            rows.extend(peers);
        }
        Ok(SuiteRun { rows, pairs })
    }
}

impl SuiteRun {
    /// The rows' table and, with peers, the comparison table.
    pub fn report(&self) -> String {
        let mut out = table(&self.rows);
        if !self.pairs.is_empty() {
            out += "\n";
            out += &comparison_table(&self.pairs);
        }
        out
    }

    /// Writes the rows as JSON to `out` (atomically).
    pub fn write_json(&self, out: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(&self.rows)? + "\n";
        write_bytes_atomic(out, json.as_bytes())
    }
}

/// Formats medsgm-versus-peer pairs as an aligned text table with speed-ups.
pub fn comparison_table(pairs: &[Comparison]) -> String {
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
