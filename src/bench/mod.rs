//! Benchmarks behind `medsgm bench` (timings are reported, never asserted).

pub mod model;
pub mod mri;
pub mod operators;
pub mod recon;
pub mod suite;

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

/// Minimum and median wall time of repeated calls, in milliseconds.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Fastest repetition (least disturbed by other processes on a shared machine).
    pub min_ms: f64,
    /// Median repetition.
    pub median_ms: f64,
}

/// Times `repeats` calls of `f` after one warm-up call.
pub fn time_ms<F: FnMut() -> anyhow::Result<()>>(
    repeats: usize,
    mut f: F,
) -> anyhow::Result<Timing> {
    f()?;
    let mut times = Vec::with_capacity(repeats.max(1));
    for _ in 0..repeats.max(1) {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(Timing {
        min_ms: times[0],
        median_ms: times[times.len() / 2],
    })
}

/// Median wall time in milliseconds of `repeats` calls of `f` after one warm-up call.
pub fn median_ms<F: FnMut() -> anyhow::Result<()>>(repeats: usize, f: F) -> anyhow::Result<f64> {
    Ok(time_ms(repeats, f)?.median_ms)
}

/// Runs a peer benchmark script (`data-scripts/peer_bench_*.py`: same cases in scikit-image,
/// numpy or PyTorch) with `python` (e.g. `.venv/bin/python`), `--threads`, `--repeats` and
/// `extra_args`; parses the JSON rows it prints one per line (`group`, `case`, `median_ms`,
/// `note`; a null `median_ms`, a case the peer cannot run, becomes NaN).
pub fn run_peer(
    python: &std::path::Path,
    script: &std::path::Path,
    threads: usize,
    repeats: usize,
    extra_args: &[std::ffi::OsString],
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
        .args(extra_args)
        .output()
        .with_context(|| format!("running {} {}", python.display(), script.display()))?;
    if !out.status.success() {
        anyhow::bail!(
            "peer benchmark {} failed: {}",
            script.display(),
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
                median_ms: match field("median_ms")? {
                    serde_json::Value::Null => f64::NAN,
                    m => m.as_f64().context("median_ms is not a number")?,
                },
                note: field("note")?.as_str().unwrap_or_default().to_string(),
            })
        })
        .collect()
}

/// A medsgm row and a peer row of the same case.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Comparison {
    /// The shared case name.
    pub case: String,
    /// medsgm's median (ms).
    pub medsgm_ms: f64,
    /// The peer's group (library), e.g. "model-pytorch".
    pub peer: String,
    /// The peer's median (ms).
    pub peer_ms: f64,
}

impl Comparison {
    /// Speed-up of medsgm over the peer: peer time / medsgm time (> 1: medsgm is faster).
    pub fn speedup(&self) -> f64 {
        self.peer_ms / self.medsgm_ms
    }
}

/// Pairs every peer row with the medsgm rows of the same `case` (in peer order).
pub fn compare(ours: &[BenchRow], peers: &[BenchRow]) -> Vec<Comparison> {
    peers
        .iter()
        .flat_map(|p| {
            ours.iter()
                .filter(move |o| o.case == p.case)
                .map(move |o| Comparison {
                    case: p.case.clone(),
                    medsgm_ms: o.median_ms,
                    peer: p.group.clone(),
                    peer_ms: p.median_ms,
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(group: &str, case: &str, ms: f64) -> BenchRow {
        BenchRow {
            group: group.into(),
            case: case.into(),
            median_ms: ms,
            note: String::new(),
        }
    }

    #[test]
    fn peer_rows_are_parsed_and_paired_by_case() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("peer.sh");
        // A stand-in "interpreter" (sh) that echoes its arguments into the note of one row.
        std::fs::write(
            &script,
            "echo 'not json'\n\
             echo '{\"group\": \"g-peer\", \"case\": \"a\", \"median_ms\": 6.0, \"note\": \"'\"$*\"'\"}'\n\
             echo '{\"group\": \"g-peer\", \"case\": \"z\", \"median_ms\": 1.0, \"note\": \"\"}'\n",
        )
        .unwrap();
        let peers = run_peer(
            std::path::Path::new("sh"),
            &script,
            2,
            3,
            &["--config".into(), "c.toml".into()],
        )
        .unwrap();
        assert_eq!(peers.len(), 2);
        assert_eq!(peers[0].note, "--threads 2 --repeats 3 --config c.toml");
        let ours = [row("g", "a", 2.0), row("g", "b", 1.0)];
        let pairs = compare(&ours, &peers);
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs[0].case, "a");
        assert!((pairs[0].speedup() - 3.0).abs() < 1e-12);
    }

    #[test]
    fn failing_peer_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("fail.sh");
        std::fs::write(&script, "echo boom >&2; exit 3\n").unwrap();
        let err = run_peer(std::path::Path::new("sh"), &script, 1, 1, &[]).unwrap_err();
        assert!(format!("{err:#}").contains("boom"));
    }
}
