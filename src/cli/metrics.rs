//! `medsgm metrics`: image-quality metrics of an image against a reference, printed as JSON.

use crate::cli::args::read_image_at;
use crate::cli::{invalid, InputContext};
pub use crate::eval::scores::{scores, Scores, SsimChoice};
use crate::io::image_io::Window;
use crate::io::ImageFormat;
use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;

/// The JSON report of `medsgm metrics`.
#[derive(Debug, Serialize)]
struct Report<'a> {
    input: String,
    reference: String,
    data_range: f64,
    fov: bool,
    ssim_preset: &'a str,
    #[serde(flatten)]
    scores: Scores,
}

/// Largest `--data-range`: beyond it SSIM's constants (K·L)² overflow f64 in the SSIM formula
/// (and no f32 image has a meaningful range that large).
pub const MAX_DATA_RANGE: f64 = 1e30;

/// Arguments of `medsgm metrics`.
#[derive(Debug, Clone, Args)]
pub struct MetricsArgs {
    /// The image to evaluate.
    #[arg(long, short)]
    pub input: PathBuf,
    /// The ground-truth reference image (same size).
    #[arg(long, short)]
    pub reference: PathBuf,
    /// Dynamic range L used by PSNR = 10 log10(L²/MSE) and SSIM's constants.
    #[arg(long)]
    pub data_range: f64,
    /// Evaluate only inside the inscribed circular field of view.
    #[arg(long)]
    pub fov: bool,
    /// SSIM convention.
    #[arg(long, value_enum, default_value = "gaussian")]
    pub ssim_preset: SsimChoice,
    /// PNG inputs: the intensities LOW,HIGH that codes 0 and max stand for (default 0,1).
    #[arg(long, allow_hyphen_values = true)]
    pub in_window: Option<Window>,
    /// Volume inputs: slice AXIS,INDEX.
    #[arg(long, value_parser = crate::cli::args::parse_slice)]
    pub slice: Option<(usize, usize)>,
}

/// Runs `medsgm metrics`.
pub fn run(a: &MetricsArgs) -> Result<()> {
    if !(a.data_range.is_finite() && a.data_range > 0.0 && a.data_range <= MAX_DATA_RANGE) {
        return Err(invalid(format!(
            "--data-range {:?} must be positive and at most {MAX_DATA_RANGE:e}",
            a.data_range
        )));
    }
    let is_png = |p: &std::path::Path| ImageFormat::from_path(p).ok() == Some(ImageFormat::Png);
    if a.in_window.is_some() && !is_png(&a.input) && !is_png(&a.reference) {
        return Err(invalid(format!(
            "--in-window applies to PNG inputs only, and neither {} nor {} is one",
            a.input.display(),
            a.reference.display()
        )));
    }
    let in_window = a.in_window.unwrap_or(Window::UNIT);
    let x = read_image_at(&a.input, in_window, a.slice)?;
    let r = read_image_at(&a.reference, in_window, a.slice)?;
    if x.dim() != r.dim() {
        return Err(invalid(format!(
            "{} is {:?} but the reference {} is {:?}",
            a.input.display(),
            x.dim(),
            a.reference.display(),
            r.dim()
        )));
    }
    let s = scores(&x.view(), &r.view(), a.data_range, a.fov, a.ssim_preset)
        .with_context(|| {
            format!(
                "scoring {} against {}",
                a.input.display(),
                a.reference.display()
            )
        })
        .invalid_input()?;
    let report = Report {
        input: a.input.display().to_string(),
        reference: a.reference.display().to_string(),
        data_range: a.data_range,
        fov: a.fov,
        ssim_preset: match a.ssim_preset {
            SsimChoice::Gaussian => "gaussian",
            SsimChoice::Skimage => "skimage",
        },
        scores: s,
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
