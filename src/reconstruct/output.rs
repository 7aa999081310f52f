//! A reconstruction ready to be written ([`ReconOutput`]) and where its posterior standard
//! deviation goes ([`std_path`]).

use crate::io::image_io::Window;
use medsgm_operators::resample::resample;
use ndarray::Array2;
use std::path::{Path, PathBuf};

/// A reconstruction ready to be written.
pub struct ReconOutput {
    /// The image in data units.
    pub image: Array2<f32>,
    /// Posterior standard deviation (score-based methods with K > 1).
    pub std: Option<Array2<f32>>,
    /// Default PNG window of the image.
    pub window: Window,
    /// NFE per posterior sample and seconds (score-based methods).
    pub score: Option<(usize, f64)>,
    /// The out-of-distribution figures of the reconstruction (score methods with a calibrated
    /// prior; see [`crate::eval::typicality`]).
    pub typicality: Option<crate::eval::typicality::Typicality>,
}

impl ReconOutput {
    /// The image and standard deviation resampled to `shape` over the same field of view.
    pub(super) fn resampled(self, shape: (usize, usize)) -> Self {
        if self.image.dim() == shape {
            return self;
        }
        Self {
            image: resample(&self.image, shape),
            // (cubic interpolation may undershoot 0 beside a sharp rise)
            std: self.std.map(|s| resample(&s, shape).mapv(|v| v.max(0.0))),
            ..self
        }
    }

    /// A classical reconstruction (no posterior spread, no score figures).
    pub(super) fn classical(image: Array2<f32>, window: Window) -> Self {
        Self {
            image,
            std: None,
            window,
            score: None,
            typicality: None,
        }
    }
}

/// `dir/name.ext` → `dir/name_std.ext` (keeping a `.nii.gz` double suffix).
pub fn std_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let lower = name.to_ascii_lowercase();
    let split = if lower.ends_with(".nii.gz") {
        name.len() - ".nii.gz".len()
    } else {
        name.rfind('.').unwrap_or(name.len())
    };
    out.with_file_name(format!("{}_std{}", &name[..split], &name[split..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_path_keeps_the_format_suffix() {
        for (out, expected) in [
            ("dir/rec.npy", "dir/rec_std.npy"),
            ("rec.nii.gz", "rec_std.nii.gz"),
            ("a.b/rec.PNG", "a.b/rec_std.PNG"),
            ("rec", "rec_std"),
        ] {
            assert_eq!(std_path(Path::new(out)), PathBuf::from(expected));
        }
    }
}
