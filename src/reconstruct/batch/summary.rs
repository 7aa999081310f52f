//! The batch's `summary.json` (`summary_shard_K_of_N.json` with a shard): per input its status,
//! outputs, error, seconds, quality and trust figures, rewritten atomically after every input;
//! and what the summaries of an earlier run record as done (for resuming).

use crate::io::atomic::write_bytes_atomic;
use crate::reconstruct::batch::reference::Quality;
use crate::reconstruct::batch::worklist::InputKind;
use crate::task::{Method, Problem};
use anyhow::Result;
use serde::Serialize;
use std::path::Path;

/// Outcome of one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Reconstructed and written.
    Ok,
    /// Failed (see `error`).
    Failed,
    /// Output already present (`--resume`).
    Skipped,
}

/// One input's entry in the summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileReport {
    /// The input path.
    pub input: String,
    /// Its kind.
    pub kind: InputKind,
    /// Status.
    pub status: Status,
    /// Output files or folders.
    pub outputs: Vec<String>,
    /// Error message (failed inputs; never patient identifiers).
    pub error: Option<String>,
    /// Exit code class of the error: 2 invalid input, 1 runtime failure.
    pub error_code: Option<u8>,
    /// Slices reconstructed.
    pub slices: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Quality against `--reference`.
    pub metrics: Option<Quality>,
    /// Score methods with `--samples` K ≥ 2: per slice, the mean posterior standard deviation
    /// over the object (data units; see [`crate::eval::uncertainty`]): how much the prior had
    /// to fill in where the data are silent.
    pub posterior_sd: Option<Vec<f64>>,
    /// Score methods with a calibrated prior: per slice, the denoising residual of the
    /// reconstruction ([`crate::eval::typicality`]).
    pub typicality: Option<Vec<f64>>,
    /// Score methods with a prior calibrated on real slices: per slice, the equivalent
    /// diameter (mm) of the reconstructed body ([`crate::eval::extent`]), compared with the
    /// widest training slice.
    pub object_diameter_mm: Option<Vec<f64>>,
    /// Whether any slice's residual exceeds the prior's calibrated threshold or its body is
    /// wider than any training slice: the input looks unlike the training data and the prior
    /// may have invented structure.
    pub ood_warning: bool,
}

/// `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// medsgm version.
    pub medsgm_version: String,
    /// The problem.
    pub problem: Problem,
    /// The method.
    pub method: Method,
    /// `--shard` when given.
    pub shard: Option<String>,
    /// Counts of ok / failed / skipped inputs.
    pub ok: usize,
    /// Failed inputs.
    pub failed: usize,
    /// Skipped inputs.
    pub skipped: usize,
    /// Per input, in work-list order.
    pub files: Vec<FileReport>,
}

/// The inputs that the summaries already in `out_dir` (`summary.json` and the shards'
/// `summary_shard_K_of_N.json`) record as done (ok, or skipped as done by an earlier run);
/// an unreadable summary counts as none, so its inputs are redone.
pub(super) fn previous_ok_inputs(out_dir: &Path) -> std::collections::HashSet<String> {
    let Ok(entries) = std::fs::read_dir(out_dir) else {
        return Default::default();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("summary") && n.ends_with(".json"))
        })
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter_map(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .flat_map(|json| {
            json["files"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|f| f["status"] == "ok" || f["status"] == "skipped")
                .filter_map(|f| f["input"].as_str().map(str::to_owned))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Writes the summary atomically.
pub(super) fn write_summary(path: &Path, s: &Summary) -> Result<()> {
    let json = serde_json::to_vec_pretty(s)?;
    write_bytes_atomic(path, &json)
}
