//! The files and images of `medsgm encode` / `medsgm decode`: the images to encode (real images
//! in the prior's units or held-out phantoms), image stacks `[n, H, W]` and codes `[n, k]` as
//! NPY, the comparison panels and the quality table.

use crate::error::{invalid, InputContext};
use crate::eval::testset::{config_slices, phantoms, real_images, EvalSplit, TEST_SEED};
use crate::io::npy::read_npy;
use crate::scorevae::codec::ScoreVae;
use crate::scorevae::eval::CodecScore;
use anyhow::{Context, Result};
use ndarray::{Array2, Array3};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Most images per call.
pub const MAX_IMAGES: usize = 1000;

/// Where the images to encode come from.
#[derive(Debug, Clone, PartialEq)]
pub enum EncodeSource {
    /// Real images (file or folder) in the prior's units and pixel spacing.
    Input(PathBuf),
    /// This many held-out anatomical CT phantoms at the encoder's size.
    Phantoms(usize),
    /// Up to this many slices, evenly spaced, of a training configuration's held-out block
    /// (as training prepared them: the prior's normalisation and size).
    HeldOut(PathBuf, usize),
}

/// The images of `source` (see [`EncodeSource`]); each must be at the encoder's size.
pub fn encode_inputs(vae: &ScoreVae, source: &EncodeSource) -> Result<Vec<Array2<f32>>> {
    let images: Vec<Array2<f32>> = match source {
        EncodeSource::Input(p) => {
            real_images(p, &vae.meta.normalization, vae.prior.pixel_spacing_mm())
                .invalid_input()?
                .into_iter()
                .map(|(_, im)| im)
                .collect()
        }
        EncodeSource::Phantoms(n) => phantoms(vae.image_size(), TEST_SEED, *n, false)?
            .into_iter()
            .map(|t| t.truth)
            .collect(),
        EncodeSource::HeldOut(config, n) => config_slices(config, *n, EvalSplit::Test)
            .invalid_input()?
            .into_iter()
            .map(|(_, im)| im)
            .collect(),
    };
    let side = vae.image_size();
    if let Some(im) = images.iter().find(|im| im.dim() != (side, side)) {
        return Err(invalid(format!(
            "an image to encode is {:?}, the encoder's size is {side}x{side}",
            im.dim()
        )));
    }
    Ok(images)
}

/// The images as one `[n, H, W]` array (all of the first image's shape).
pub fn stack(images: &[Array2<f32>]) -> Result<Array3<f32>> {
    let (h, w) = images[0].dim();
    let flat: Vec<f32> = images.iter().flat_map(|im| im.iter().copied()).collect();
    Ok(Array3::from_shape_vec((images.len(), h, w), flat)?)
}

/// The images of an `[n, H, W]` NPY file.
pub fn unstack(path: &Path) -> Result<Vec<Array2<f32>>> {
    let a = read_npy(path)?
        .into_f32()
        .map_err(|d| anyhow::anyhow!("{}: unsupported element type {d:?}", path.display()))?;
    anyhow::ensure!(
        a.ndim() == 3,
        "{} must hold [n, H, W] images",
        path.display()
    );
    let s = a.shape().to_vec();
    Ok((0..s[0])
        .map(|i| {
            a.index_axis(ndarray::Axis(0), i)
                .to_owned()
                .into_dimensionality()
                .expect("2-D slice")
        })
        .collect())
}

/// The codes of an `[n, k]` NPY file (1 ≤ n ≤ [`MAX_IMAGES`]), one vector per image; failures
/// are invalid input.
pub fn read_codes(path: &Path) -> Result<Vec<Vec<f32>>> {
    let codes = read_npy(path)
        .and_then(|c| {
            c.into_f32()
                .map_err(|d| anyhow::anyhow!("unsupported element type {d:?}"))
        })
        .with_context(|| format!("codes {}", path.display()))
        .invalid_input()?;
    if codes.ndim() != 2 || codes.shape()[0] == 0 || codes.shape()[0] > MAX_IMAGES {
        return Err(invalid(format!(
            "{} must hold [n, k] codes with 1 <= n <= {MAX_IMAGES}, got {:?}",
            path.display(),
            codes.shape()
        )));
    }
    Ok(codes
        .outer_iter()
        .map(|r| r.iter().copied().collect())
        .collect())
}

/// A figure panel of an image in [0, 1].
pub fn panel(title: &str, subtitle: String, image: &Array2<f32>) -> crate::plot::Panel {
    crate::plot::Panel {
        title: title.into(),
        subtitle,
        image: image.clone(),
        window: (0.0, 1.0),
    }
}

/// The markdown table of the codecs' quality (one line each, every line ending in a newline).
pub fn codec_table(scores: &[CodecScore]) -> String {
    let mut t = String::new();
    t.push_str("| method | numbers per code | PSNR (dB) | SSIM | seconds |\n");
    t.push_str("|---|---:|---:|---:|---:|\n");
    for s in scores {
        let _ = writeln!(
            t,
            "| {} | {} | {:.2} | {:.3} | {:.1} |",
            s.method,
            s.latent,
            s.mean_psnr(),
            s.mean_ssim(),
            s.seconds
        );
    }
    t
}
