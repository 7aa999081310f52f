//! `medsgm encode` / `medsgm decode` / `medsgm bench`-style comparison for ScoreVAE encoders
//! ([`crate::scorevae`]): slices to compact codes and back through the frozen prior.

use crate::cli::args::progress;
use crate::cli::{invalid, InputContext};
use crate::io::atomic::write_bytes_atomic;
use crate::io::guard::refuse_output_file;
use crate::io::npy::write_npy;
use crate::scorevae::codec::{decode, encode, DecodeOptions, ScoreVae};
use crate::scorevae::eval::{lsgm_vae_reconstruction, scorevae_reconstruction, CodecScore};
use crate::scorevae::files::{
    codec_table, encode_inputs, panel, read_codes, stack, unstack, MAX_IMAGES,
};
use anyhow::{Context, Result};
use clap::Args;
use medsgm_recon::pc_sampler::grid_out_of_range;
use ndarray::Array2;
use std::path::{Path, PathBuf};

/// The encoder argument shared by the subcommands.
#[derive(Debug, Clone, Args)]
pub struct EncoderArgs {
    /// ScoreVAE encoder (`encoder.safetensors` written by `medsgm train` with an `[encoder]`
    /// configuration).
    #[arg(long)]
    pub model: PathBuf,
    /// The prior it was trained against, when not at the recorded path.
    #[arg(long)]
    pub prior: Option<PathBuf>,
}

impl EncoderArgs {
    fn load(&self) -> Result<ScoreVae> {
        let device = crate::model::device()?;
        ScoreVae::load(&self.model, self.prior.as_deref(), &device)
            .with_context(|| format!("encoder {}", self.model.display()))
            .invalid_input()
    }
}

/// Arguments of `medsgm encode`.
#[derive(Debug, Clone, Args)]
pub struct EncodeArgs {
    /// The encoder.
    #[command(flatten)]
    pub encoder: EncoderArgs,
    /// Images (DICOM/NIfTI/NPY/PNG file or folder) at the encoder's size, in the prior's units
    /// after the usual normalisation.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Or this many held-out anatomical CT phantoms at the encoder's size (at most 1000).
    #[arg(long, default_value_t = 0)]
    pub phantoms: usize,
    /// Codes `[n, k]` float32 (NPY); the images also go to `<out>.images.npy`.
    #[arg(long)]
    pub out: PathBuf,
}

/// Arguments of `medsgm decode`.
#[derive(Debug, Clone, Args)]
pub struct DecodeArgs {
    /// The encoder.
    #[command(flatten)]
    pub encoder: EncoderArgs,
    /// Codes `[n, k]` (NPY, written by `medsgm encode`).
    #[arg(long)]
    pub codes: PathBuf,
    /// PC steps of the conditional reverse SDE (1..=100000).
    #[arg(long, default_value_t = 500)]
    pub steps: usize,
    /// Langevin signal-to-noise ratio r.
    #[arg(long, default_value_t = medsgm_recon::DEFAULT_SNR)]
    pub snr: f64,
    /// Seed of every draw.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The encoded images `[n, H, W]` (NPY): prints PSNR/SSIM of the decoded ones.
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// Also reconstruct the reference images with this LSGM checkpoint's VAE (encoder mean →
    /// decoder mean) for comparison.
    #[arg(long, requires = "reference")]
    pub compare_lsgm: Option<PathBuf>,
    /// Decoded images `[n, H, W]` float32 (NPY); a PNG grid goes beside it.
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs `medsgm encode`.
pub fn run_encode(a: &EncodeArgs) -> Result<()> {
    if a.input.is_none() == (a.phantoms == 0) {
        return Err(invalid("give exactly one of --input and --phantoms"));
    }
    if a.phantoms > MAX_IMAGES {
        return Err(invalid(format!("--phantoms must be at most {MAX_IMAGES}")));
    }
    let images_out = a.out.with_extension("images.npy");
    let mut inputs: Vec<&Path> = vec![&a.encoder.model];
    if let Some(i) = &a.input {
        inputs.push(i);
    }
    refuse_output_file(&a.out, &inputs).map_err(invalid)?;
    refuse_output_file(&images_out, &inputs).map_err(invalid)?;
    let vae = a.encoder.load()?;
    let images = encode_inputs(&vae, a.input.as_deref(), a.phantoms)?;
    if images.len() > MAX_IMAGES {
        return Err(invalid(format!("more than {MAX_IMAGES} images")));
    }
    let codes = encode(&vae, &images).invalid_input()?;
    let k = vae.latent();
    let flat = Array2::from_shape_vec((codes.len(), k), codes.concat())?;
    write_npy(&a.out, &flat.view().into_dyn())?;
    write_npy(&images_out, &stack(&images)?.view().into_dyn())?;
    println!(
        "{} codes of {k} numbers ({} pixels each) → {}; images → {}",
        codes.len(),
        vae.image_size() * vae.image_size(),
        a.out.display(),
        images_out.display()
    );
    Ok(())
}

/// Runs `medsgm decode`.
pub fn run_decode(a: &DecodeArgs) -> Result<()> {
    if let Some(r) = grid_out_of_range(a.steps, a.snr) {
        return Err(invalid(r.flag_message()));
    }
    let mut inputs: Vec<&Path> = vec![&a.encoder.model, &a.codes];
    if let Some(r) = &a.reference {
        inputs.push(r);
    }
    refuse_output_file(&a.out, &inputs).map_err(invalid)?;
    let vae = a.encoder.load()?;
    let codes = read_codes(&a.codes)?;
    let options = DecodeOptions {
        steps: a.steps,
        snr: a.snr,
        seed: a.seed,
    };
    let bar = progress(a.steps as u64, "decode steps");
    let mut scores: Vec<CodecScore> = Vec::new();
    let decoded = match &a.reference {
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
            let (s, recon) =
                scorevae_reconstruction(&vae, &truth, &options, &mut |_, _| bar.inc(1))
                    .invalid_input()?;
            let mut panels = vec![panel("reference", String::new(), &truth[0])];
            panels.push(panel(
                "ScoreVAE",
                format!("PSNR {:.2} dB  SSIM {:.3}", s.psnr[0], s.ssim[0]),
                &recon[0],
            ));
            scores.push(s);
            if let Some(l) = &a.compare_lsgm {
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
            crate::plot::comparison_figure(&a.out.with_extension("compare.png"), &panels, 256)?;
            recon
        }
        None => decode(&vae, &codes, &options, &mut |_, _| bar.inc(1)).invalid_input()?,
    };
    bar.finish_and_clear();
    write_npy(&a.out, &stack(&decoded)?.view().into_dyn())?;
    let png = a.out.with_extension("png");
    crate::train::plot::write_image_grid(&png, &decoded, decoded.len().min(8))?;
    if !scores.is_empty() {
        print!("{}", codec_table(&scores));
        let json = a.out.with_extension("json");
        write_bytes_atomic(
            &json,
            (serde_json::to_string_pretty(&scores)? + "\n").as_bytes(),
        )?;
    }
    println!(
        "decoded {} images → {} (grid {})",
        decoded.len(),
        a.out.display(),
        png.display()
    );
    Ok(())
}
