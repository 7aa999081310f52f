//! The `medsgm encode` and `medsgm decode` runs as asked for ([`EncodeRequest`],
//! [`DecodeRequest`]): checked, the encoder loaded, the codes or images computed and written;
//! each returns the report to print.

use crate::error::{invalid, InputContext};
use crate::io::atomic::write_bytes_atomic;
use crate::io::guard::refuse_output_file;
use crate::io::npy::write_npy;
use crate::progress::progress;
use crate::scorevae::codec::{decode, encode, DecodeOptions, ScoreVae};
use crate::scorevae::eval::{lsgm_vae_reconstruction, scorevae_reconstruction, CodecScore};
use crate::scorevae::files::{
    codec_table, encode_inputs, panel, read_codes, stack, unstack, EncodeSource, MAX_IMAGES,
};
use anyhow::{Context, Result};
use medsgm_recon::pc_sampler::grid_out_of_range;
use ndarray::Array2;
use std::path::{Path, PathBuf};

/// A ScoreVAE encoder checkpoint and, when not at its recorded path, its prior.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderFiles {
    /// The encoder (`encoder.safetensors`).
    pub model: PathBuf,
    /// The prior it was trained against, when moved.
    pub prior: Option<PathBuf>,
}

impl EncoderFiles {
    /// Loads the encoder with its prior on the selected device (invalid input when missing,
    /// corrupt or mismatched).
    fn load(&self) -> Result<ScoreVae> {
        let device = crate::model::device()?;
        ScoreVae::load(&self.model, self.prior.as_deref(), &device)
            .with_context(|| format!("encoder {}", self.model.display()))
            .invalid_input()
    }
}

/// `medsgm encode` as asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodeRequest {
    /// The encoder.
    pub encoder: EncoderFiles,
    /// The images to encode.
    pub source: EncodeSource,
    /// Codes `[n, k]` (NPY); the images go to `<out>.images.npy`.
    pub out: PathBuf,
}

impl EncodeRequest {
    /// Encodes the images and writes the codes and the images; returns the report line.
    pub fn run(&self) -> Result<String> {
        let images_out = self.out.with_extension("images.npy");
        let mut inputs: Vec<&Path> = vec![&self.encoder.model];
        match &self.source {
            EncodeSource::Phantoms(n) | EncodeSource::HeldOut(_, n) if *n > MAX_IMAGES => {
                return Err(invalid(format!(
                    "at most {MAX_IMAGES} images per call, got {n}"
                )))
            }
            EncodeSource::Input(p) | EncodeSource::HeldOut(p, _) => inputs.push(p),
            EncodeSource::Phantoms(_) => {}
        }
        refuse_output_file(&self.out, &inputs).map_err(invalid)?;
        refuse_output_file(&images_out, &inputs).map_err(invalid)?;
        let vae = self.encoder.load()?;
        let images = encode_inputs(&vae, &self.source)?;
        if images.len() > MAX_IMAGES {
            return Err(invalid(format!("more than {MAX_IMAGES} images")));
        }
        let codes = encode(&vae, &images).invalid_input()?;
        let k = vae.latent();
        let flat = Array2::from_shape_vec((codes.len(), k), codes.concat())?;
        write_npy(&self.out, &flat.view().into_dyn())?;
        write_npy(&images_out, &stack(&images)?.view().into_dyn())?;
        Ok(format!(
            "{} codes of {k} numbers ({} pixels each) → {}; images → {}",
            codes.len(),
            vae.image_size() * vae.image_size(),
            self.out.display(),
            images_out.display()
        ))
    }
}

/// `medsgm decode` as asked for.
#[derive(Debug, Clone)]
pub struct DecodeRequest {
    /// The encoder.
    pub encoder: EncoderFiles,
    /// Codes `[n, k]` (NPY).
    pub codes: PathBuf,
    /// The conditional reverse SDE's steps, Langevin SNR and seed.
    pub options: DecodeOptions,
    /// The encoded images: PSNR/SSIM of the decoded ones.
    pub reference: Option<PathBuf>,
    /// An LSGM checkpoint whose VAE reconstructs the reference for comparison.
    pub compare_lsgm: Option<PathBuf>,
    /// Decoded images `[n, H, W]` (NPY); a PNG grid goes beside it.
    pub out: PathBuf,
}

impl DecodeRequest {
    /// Decodes the codes and writes the images (with a reference: the comparison figure, the
    /// scores' table and JSON); returns the report.
    pub fn run(&self) -> Result<String> {
        let o = &self.options;
        if let Some(r) = grid_out_of_range(o.steps, o.snr) {
            return Err(invalid(r.flag_message()));
        }
        let mut inputs: Vec<&Path> = vec![&self.encoder.model, &self.codes];
        if let Some(r) = &self.reference {
            inputs.push(r);
        }
        refuse_output_file(&self.out, &inputs).map_err(invalid)?;
        let vae = self.encoder.load()?;
        let codes = read_codes(&self.codes)?;
        let bar = progress(o.steps as u64, "decode steps");
        let mut scores: Vec<CodecScore> = Vec::new();
        let decoded = match &self.reference {
            Some(r) => {
                let truth = unstack(r)
                    .with_context(|| format!("reference {}", r.display()))
                    .invalid_input()?;
                if truth.len() != codes.len() {
                    return Err(invalid(format!(
                        "{} holds {} images for {} codes",
                        r.display(),
                        truth.len(),
                        codes.len()
                    )));
                }
                let (s, recon) = scorevae_reconstruction(&vae, &truth, o, &mut |_, _| bar.inc(1))
                    .invalid_input()?;
                let mut panels = vec![panel("reference", String::new(), &truth[0])];
                panels.push(panel(
                    "ScoreVAE",
                    format!("PSNR {:.2} dB  SSIM {:.3}", s.psnr[0], s.ssim[0]),
                    &recon[0],
                ));
                scores.push(s);
                if let Some(l) = &self.compare_lsgm {
                    let (s, lsgm) = lsgm_vae_reconstruction(l, &truth, &vae.prior.device)
                        .with_context(|| format!("LSGM {}", l.display()))
                        .invalid_input()?;
                    panels.push(panel(
                        "LSGM VAE",
                        format!("PSNR {:.2} dB  SSIM {:.3}", s.psnr[0], s.ssim[0]),
                        &lsgm[0],
                    ));
                    scores.push(s);
                }
                crate::plot::comparison_figure(
                    &self.out.with_extension("compare.png"),
                    &panels,
                    256,
                )?;
                recon
            }
            None => decode(&vae, &codes, o, &mut |_, _| bar.inc(1)).invalid_input()?,
        };
        bar.finish_and_clear();
        write_npy(&self.out, &stack(&decoded)?.view().into_dyn())?;
        let png = self.out.with_extension("png");
        crate::train::plot::write_image_grid(&png, &decoded, decoded.len().min(8))?;
        let mut report = String::new();
        if !scores.is_empty() {
            report += &codec_table(&scores);
            let json = self.out.with_extension("json");
            write_bytes_atomic(
                &json,
                (serde_json::to_string_pretty(&scores)? + "\n").as_bytes(),
            )?;
        }
        report += &format!(
            "decoded {} images → {} (grid {})\n",
            decoded.len(),
            self.out.display(),
            png.display()
        );
        Ok(report)
    }
}
