//! `medsgm metrics`: image-quality metrics of an image against a reference ([`crate::metrics`]),
//! printed as JSON.

use crate::eval::scores::SsimChoice;
use crate::io::image_io::Window;
use crate::metrics::MetricsRequest;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

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
    let report = MetricsRequest {
        input: a.input.clone(),
        reference: a.reference.clone(),
        data_range: a.data_range,
        fov: a.fov,
        ssim_preset: a.ssim_preset,
        in_window: a.in_window,
        slice: a.slice,
    }
    .run()?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
