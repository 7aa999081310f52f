//! Image-quality scores of an image against a reference: PSNR, SSIM (two conventions) and
//! NMSE, over the whole image or the inscribed circular field of view.

use anyhow::Result;
use clap::ValueEnum;
use medsgm_operators::metrics::{self, SsimPreset};
use ndarray::ArrayView2;
use serde::Serialize;

/// SSIM conventions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SsimChoice {
    /// Wang et al. 2004: 11×11 Gaussian window, σ = 1.5, population covariance (scikit-image
    /// `gaussian_weights=True, use_sample_covariance=False`).
    Gaussian,
    /// scikit-image's default: 7×7 uniform window, sample covariance.
    Skimage,
}

impl SsimChoice {
    fn preset(self) -> SsimPreset {
        match self {
            SsimChoice::Gaussian => SsimPreset::Gaussian,
            SsimChoice::Skimage => SsimPreset::SkimageDefault,
        }
    }
}

/// PSNR (dB), SSIM and NMSE of one image against a reference.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Scores {
    /// 10 log10(L² / MSE).
    pub psnr: f64,
    /// Mean structural similarity.
    pub ssim: f64,
    /// ‖x − ref‖² / ‖ref‖².
    pub nmse: f64,
}

/// Computes [`Scores`], over the inscribed circular field of view when `fov` is set.
pub fn scores(
    x: &ArrayView2<f32>,
    reference: &ArrayView2<f32>,
    data_range: f64,
    fov: bool,
    ssim: SsimChoice,
) -> Result<Scores> {
    let preset = ssim.preset();
    Ok(if fov {
        let (h, w) = reference.dim();
        let m = metrics::fov_mask(h, w);
        Scores {
            psnr: metrics::psnr_masked(x, reference, data_range, &m.view())?,
            ssim: metrics::ssim_masked(x, reference, data_range, preset, &m.view())?,
            nmse: metrics::nmse_masked(x, reference, &m.view())?,
        }
    } else {
        Scores {
            psnr: metrics::psnr(x, reference, data_range)?,
            ssim: metrics::ssim(x, reference, data_range, preset)?,
            nmse: metrics::nmse(x, reference)?,
        }
    })
}
