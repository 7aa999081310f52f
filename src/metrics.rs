//! Comparing an image with a reference (`medsgm metrics`) as asked for ([`MetricsRequest`]):
//! the data range and PNG window checked, both images read and matched, PSNR, SSIM and NMSE
//! computed ([`crate::eval::scores`]) and reported as JSON ([`MetricsReport`]).

use crate::error::{invalid, InputContext};
use crate::eval::scores::{scores, Scores, SsimChoice};
use crate::io::image_io::Window;
use crate::io::{read_image, ImageFormat, ImageReadOptions};
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Largest data range: beyond it SSIM's constants (K·L)² overflow f64 in the SSIM formula
/// (and no f32 image has a meaningful range that large).
pub const MAX_DATA_RANGE: f64 = 1e30;

/// A comparison as asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsRequest {
    /// The image to evaluate.
    pub input: PathBuf,
    /// The ground-truth reference (same size).
    pub reference: PathBuf,
    /// Dynamic range L of PSNR and SSIM's constants.
    pub data_range: f64,
    /// Only inside the inscribed circular field of view.
    pub fov: bool,
    /// SSIM convention.
    pub ssim_preset: SsimChoice,
    /// PNG inputs: the intensities codes 0 and max stand for (default [0, 1]).
    pub in_window: Option<Window>,
    /// Volume inputs: slice (axis, index).
    pub slice: Option<(usize, usize)>,
}

/// The JSON report of `medsgm metrics`.
#[derive(Debug, Serialize)]
pub struct MetricsReport {
    input: String,
    reference: String,
    data_range: f64,
    fov: bool,
    ssim_preset: &'static str,
    #[serde(flatten)]
    scores: Scores,
}

impl MetricsRequest {
    /// Reads both images and scores the input against the reference (invalid input for a bad
    /// range, window, file or size mismatch).
    pub fn run(&self) -> Result<MetricsReport> {
        if !(self.data_range.is_finite()
            && self.data_range > 0.0
            && self.data_range <= MAX_DATA_RANGE)
        {
            return Err(invalid(format!(
                "--data-range {:?} must be positive and at most {MAX_DATA_RANGE:e}",
                self.data_range
            )));
        }
        let is_png = |p: &Path| ImageFormat::from_path(p).ok() == Some(ImageFormat::Png);
        if self.in_window.is_some() && !is_png(&self.input) && !is_png(&self.reference) {
            return Err(invalid(format!(
                "--in-window applies to PNG inputs only, and neither {} nor {} is one",
                self.input.display(),
                self.reference.display()
            )));
        }
        let opts = ImageReadOptions {
            window: self.in_window.unwrap_or(Window::UNIT),
            slice: self.slice,
        };
        let x = read_image(&self.input, &opts).invalid_input()?;
        let r = read_image(&self.reference, &opts).invalid_input()?;
        if x.dim() != r.dim() {
            return Err(invalid(format!(
                "{} is {:?} but the reference {} is {:?}",
                self.input.display(),
                x.dim(),
                self.reference.display(),
                r.dim()
            )));
        }
        let s = scores(
            &x.view(),
            &r.view(),
            self.data_range,
            self.fov,
            self.ssim_preset,
        )
        .with_context(|| {
            format!(
                "scoring {} against {}",
                self.input.display(),
                self.reference.display()
            )
        })
        .invalid_input()?;
        Ok(MetricsReport {
            input: self.input.display().to_string(),
            reference: self.reference.display().to_string(),
            data_range: self.data_range,
            fov: self.fov,
            ssim_preset: match self.ssim_preset {
                SsimChoice::Gaussian => "gaussian",
                SsimChoice::Skimage => "skimage",
            },
            scores: s,
        })
    }
}
