//! Training slices from DICOM series: every image series under a folder (found
//! recursively and grouped by SeriesInstanceUID, slices ordered along the slice normal by
//! [`crate::io::dicom`]), after the modality LUT. CT series are windowed, HU [`hu_lo`, `hu_hi`]
//! → [0, 1] (the thesis' CT normalisation); other modalities (MR) are scaled per series by a
//! high percentile of their non-zero values. Slices are padded to a square, area-resampled to
//! the model size, and empty slices are skipped, as for NIfTI volumes ([`super::volume`]).
//!
//! A held-out set is a separate folder (the data-scripts split by patient).
//!
//! [`hu_lo`]: DicomSlicing::hu_lo
//! [`hu_hi`]: DicomSlicing::hu_hi

use super::source::SlicePool;
use super::volume::{model_slice, percentile_of_nonzero};
use crate::io::dicom::{scan_series, series::stack_files};
use anyhow::{bail, Context};
use medsgm_operators::hu::{hu_to_unit, HuWindow};
use ndarray::{Array2, Axis};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How to read DICOM training slices (`[data] kind = "dicom-series"` of a training TOML).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DicomSlicing {
    /// A folder searched recursively for DICOM series (or one DICOM file).
    pub path: PathBuf,
    /// CT: HU mapped to 0.
    #[serde(default = "default_hu_lo")]
    pub hu_lo: f32,
    /// CT: HU mapped to 1.
    #[serde(default = "default_hu_hi")]
    pub hu_hi: f32,
    /// Non-CT series: percentile (of the non-zero values) mapped to 1; larger values clip.
    #[serde(default = "default_percentile")]
    pub percentile: f32,
    /// A slice is empty when fewer than this fraction of its pixels exceed 0.1.
    #[serde(default = "default_min_fill")]
    pub min_fill: f32,
    /// Random left–right flips when training.
    #[serde(default)]
    pub flip: bool,
}

fn default_hu_lo() -> f32 {
    -1000.0
}
fn default_hu_hi() -> f32 {
    1000.0
}
fn default_percentile() -> f32 {
    99.5
}
fn default_min_fill() -> f32 {
    0.05
}

/// The non-empty slices of every image series under `cfg.path`, in [0, 1] at `size²`, and a
/// one-line description (series and slice counts, modalities).
pub fn dicom_slices(cfg: &DicomSlicing, size: usize) -> anyhow::Result<(Vec<Array2<f32>>, String)> {
    if !(cfg.hu_hi > cfg.hu_lo) {
        bail!(
            "dicom-series: hu_hi ({}) must exceed hu_lo ({})",
            cfg.hu_hi,
            cfg.hu_lo
        )
    }
    if !(cfg.percentile > 0.0 && cfg.percentile <= 100.0) {
        bail!(
            "dicom-series: percentile {} must be in (0, 100]",
            cfg.percentile
        )
    }
    let window = HuWindow {
        lo: cfg.hu_lo,
        hi: cfg.hu_hi,
    };
    let series = scan_series(&cfg.path)
        .with_context(|| format!("dicom-series: scanning {}", cfg.path.display()))?;
    if series.is_empty() {
        bail!(
            "dicom-series: no DICOM image series under {}",
            cfg.path.display()
        )
    }
    let mut slices = Vec::new();
    let mut modalities = std::collections::BTreeSet::new();
    for (i, entry) in series.iter().enumerate() {
        // Errors name the series by its position and first file, never by patient data.
        let vol = stack_files(&entry.files).with_context(|| {
            format!(
                "dicom-series: series {} of {} ({})",
                i + 1,
                series.len(),
                entry.files[0].display()
            )
        })?;
        let is_ct = entry.modality.trim() == "CT";
        modalities.insert(if is_ct { "CT" } else { "non-CT" });
        let scale = if is_ct {
            1.0
        } else {
            percentile_of_nonzero(&vol.data, cfg.percentile).unwrap_or(1.0)
        };
        for sl in vol.data.axis_iter(Axis(0)) {
            let unit = if is_ct {
                hu_to_unit(&sl, window)
            } else {
                sl.mapv(|v| (v / scale).clamp(0.0, 1.0))
            };
            slices.extend(model_slice(&unit, size, cfg.min_fill));
        }
    }
    let description = format!(
        "DICOM series under {} ({} series, {} slices, {}, {size}², flip {})",
        cfg.path.display(),
        series.len(),
        slices.len(),
        modalities.into_iter().collect::<Vec<_>>().join("+"),
        cfg.flip
    );
    Ok((slices, description))
}

/// The slices of [`dicom_slices`] as a [`SlicePool`].
pub fn dicom_source(cfg: &DicomSlicing, size: usize, seed: u64) -> anyhow::Result<SlicePool> {
    let (slices, description) = dicom_slices(cfg, size)?;
    SlicePool::new(slices, seed, cfg.flip, description)
}
