//! Benchmarks behind `medsgm bench` (timings are reported, never asserted).

pub mod model;

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
