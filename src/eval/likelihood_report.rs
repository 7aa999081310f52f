//! The reports of `medsgm likelihood`: the markdown table of the per-image bits/dim with their
//! means, and the JSON record of a run.

use crate::eval::likelihood::{Estimate, ImageLikelihood};
use crate::io::atomic::write_bytes_atomic;
use anyhow::{Context, Result};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// The JSON record of a likelihood run.
#[derive(Debug, Serialize)]
pub struct LikelihoodReport<'a> {
    /// The prior's checkpoint path.
    pub model: String,
    /// The prior, described.
    pub model_description: String,
    /// What the bits/dim are of.
    pub units: &'static str,
    /// Monte-Carlo draws of the ELBO per image.
    pub draws: usize,
    /// The proposal of t.
    pub proposal: String,
    /// Hutchinson probes (LSGM: posterior draws) of the ODE.
    pub ode_probes: usize,
    /// RK45 tolerance of the ODE.
    pub ode_tol: f64,
    /// Seed of every draw.
    pub seed: u64,
    /// The per-image results.
    pub images: &'a [ImageLikelihood],
    /// Score evaluations of the ELBO.
    pub elbo_nfe: usize,
    /// Score evaluations of the ODE.
    pub ode_nfe: usize,
    /// Wall seconds.
    pub seconds: f64,
}

/// Writes `report` to `json` (atomically).
pub fn write_report(json: &Path, report: &LikelihoodReport) -> Result<()> {
    write_bytes_atomic(
        json,
        (serde_json::to_string_pretty(report)? + "\n").as_bytes(),
    )
    .with_context(|| format!("writing {}", json.display()))
}

/// The markdown table of the results, with means over the images (one line each, every line
/// ending in a newline).
pub fn likelihood_table(results: &[ImageLikelihood]) -> String {
    let fmt = |e: &Estimate| match e.std_error {
        Some(se) => format!("{:.4} ± {:.4}", e.bits_per_dim, se),
        None => format!("{:.4}", e.bits_per_dim),
    };
    let mut t = String::new();
    t.push_str("| image | ELBO bits/dim (upper bound) | ODE bits/dim | gap |\n");
    t.push_str("|---|---:|---:|---:|\n");
    for r in results {
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} |",
            r.name,
            fmt(&r.elbo),
            r.ode.as_ref().map(fmt).unwrap_or_else(|| "–".into()),
            r.gap
                .map(|g| format!("{g:+.4}"))
                .unwrap_or_else(|| "–".into())
        );
    }
    let n = results.len() as f64;
    let mean_elbo = results.iter().map(|r| r.elbo.bits_per_dim).sum::<f64>() / n;
    let gaps: Vec<f64> = results.iter().filter_map(|r| r.gap).collect();
    let odes: Vec<f64> = results
        .iter()
        .filter_map(|r| r.ode.map(|o| o.bits_per_dim))
        .collect();
    let _ = writeln!(
        t,
        "| mean of {} | {mean_elbo:.4} | {} | {} |",
        results.len(),
        if odes.is_empty() {
            "–".into()
        } else {
            format!("{:.4}", odes.iter().sum::<f64>() / odes.len() as f64)
        },
        if gaps.is_empty() {
            "–".into()
        } else {
            format!("{:+.4}", gaps.iter().sum::<f64>() / gaps.len() as f64)
        }
    );
    t
}
