//! Benchmarks behind `medsgm bench` (timings are reported, never asserted).

pub mod model;
pub mod mri;
pub mod operators;

use std::time::Instant;

/// One benchmark measurement.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchRow {
    /// Benchmark group (e.g. "model").
    pub group: String,
    /// What was timed (e.g. "nfe 128² batch 8").
    pub case: String,
    /// Median wall time of one repetition in milliseconds.
    pub median_ms: f64,
    /// Free-form detail (sizes, parameter count, thread count).
    pub note: String,
}

/// Median wall time in milliseconds of `repeats` calls of `f` after one warm-up call.
pub fn median_ms<F: FnMut() -> anyhow::Result<()>>(
    repeats: usize,
    mut f: F,
) -> anyhow::Result<f64> {
    f()?;
    let mut times = Vec::with_capacity(repeats.max(1));
    for _ in 0..repeats.max(1) {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Runs a peer benchmark script (`data-scripts/peer_bench_*.py`: same cases in scikit-image,
/// numpy or PyTorch) with `python` (e.g. `.venv/bin/python`), `--threads` and `--repeats`;
/// parses the JSON rows it prints one per line (`group`, `case`, `median_ms`, `note`).
pub fn run_peer(
    python: &std::path::Path,
    script: &std::path::Path,
    threads: usize,
    repeats: usize,
) -> anyhow::Result<Vec<BenchRow>> {
    use anyhow::Context;
    let out = std::process::Command::new(python)
        .arg(script)
        .args([
            "--threads",
            &threads.to_string(),
            "--repeats",
            &repeats.to_string(),
        ])
        .output()
        .with_context(|| format!("running {} {}", python.display(), script.display()))?;
    if !out.status.success() {
        anyhow::bail!(
            "peer benchmark failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).context("peer benchmark output")?;
            let field = |k: &str| v.get(k).with_context(|| format!("peer row lacks '{k}'"));
            Ok(BenchRow {
                group: field("group")?.as_str().unwrap_or_default().to_string(),
                case: field("case")?.as_str().unwrap_or_default().to_string(),
                median_ms: field("median_ms")?
                    .as_f64()
                    .context("median_ms is not a number")?,
                note: field("note")?.as_str().unwrap_or_default().to_string(),
            })
        })
        .collect()
}
