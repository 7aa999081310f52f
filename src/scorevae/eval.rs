//! How much of a slice a code keeps: reconstruction PSNR/SSIM of held-out images decoded from
//! their ScoreVAE codes, beside the LSGM's VAE (encoder mean → decoder mean) on the same images
//! (the paper's comparison with a VAE, on our data; method digest §8).

use super::codec::{decode, encode, DecodeOptions, ScoreVae};
use crate::lsgm::LsgmCheckpoint;
use anyhow::Result;
use candle_core::Tensor;
use medsgm_operators::metrics::{psnr, ssim, SsimPreset};
use ndarray::Array2;
use serde::Serialize;
use std::path::Path;

/// PSNR/SSIM of one reconstruction route over a set of images.
#[derive(Debug, Clone, Serialize)]
pub struct CodecScore {
    /// The route (e.g. "ScoreVAE k = 1024, 500 PC steps").
    pub method: String,
    /// Numbers per code.
    pub latent: usize,
    /// PSNR per image (dB, data range 1).
    pub psnr: Vec<f64>,
    /// SSIM per image.
    pub ssim: Vec<f64>,
    /// Seconds for the whole set.
    pub seconds: f64,
}

impl CodecScore {
    /// Mean PSNR.
    pub fn mean_psnr(&self) -> f64 {
        self.psnr.iter().sum::<f64>() / self.psnr.len().max(1) as f64
    }
    /// Mean SSIM.
    pub fn mean_ssim(&self) -> f64 {
        self.ssim.iter().sum::<f64>() / self.ssim.len().max(1) as f64
    }
}

fn score(
    method: String,
    latent: usize,
    truth: &[Array2<f32>],
    recon: &[Array2<f32>],
    seconds: f64,
) -> Result<CodecScore> {
    let mut out = CodecScore {
        method,
        latent,
        psnr: Vec::new(),
        ssim: Vec::new(),
        seconds,
    };
    for (t, r) in truth.iter().zip(recon) {
        let r = r.mapv(|v| v.clamp(0.0, 1.0));
        out.psnr.push(psnr(&r.view(), &t.view(), 1.0)?);
        out.ssim
            .push(ssim(&r.view(), &t.view(), 1.0, SsimPreset::Gaussian)?);
    }
    Ok(out)
}

/// ScoreVAE reconstructions of `images` (decoded from their codes).
pub fn scorevae_reconstruction(
    vae: &ScoreVae,
    images: &[Array2<f32>],
    options: &DecodeOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(CodecScore, Vec<Array2<f32>>)> {
    let start = std::time::Instant::now();
    let codes = encode(vae, images)?;
    let recon = decode(vae, &codes, options, progress)?;
    let s = score(
        format!(
            "{} (k = {}, {} PC steps)",
            vae.name(),
            vae.latent(),
            options.steps
        ),
        vae.latent(),
        images,
        &recon,
        start.elapsed().as_secs_f64(),
    )?;
    Ok((s, recon))
}

/// The LSGM VAE's reconstructions of `images`: decoder mean at the encoder mean.
pub fn lsgm_vae_reconstruction(
    lsgm: &Path,
    images: &[Array2<f32>],
    device: &candle_core::Device,
) -> Result<(CodecScore, Vec<Array2<f32>>)> {
    let start = std::time::Instant::now();
    let ck = LsgmCheckpoint::load(lsgm, device)?;
    let vae = ck.vae(device)?;
    let n = ck.meta.config.vae.image_size;
    for im in images {
        anyhow::ensure!(
            im.dim() == (n, n),
            "the LSGM VAE takes {n}x{n} images, got {:?}",
            im.dim()
        );
    }
    let data: Vec<f32> = images.iter().flat_map(|im| im.iter().copied()).collect();
    let x = Tensor::from_vec(data, (images.len(), 1, n, n), device)?;
    let z = vae.encode(&x)?.mean;
    let latent = z.elem_count() / images.len();
    let recon = crate::train::plot::tensor_images(&vae.decode(&z)?)?;
    let s = score(
        format!("LSGM VAE (k = {latent}, decoder mean)"),
        latent,
        images,
        &recon,
        start.elapsed().as_secs_f64(),
    )?;
    Ok((s, recon))
}
