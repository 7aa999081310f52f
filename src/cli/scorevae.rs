//! `medsgm encode` / `medsgm decode` / `medsgm bench`-style comparison for ScoreVAE encoders
//! ([`crate::scorevae::run`]): slices to compact codes and back through the frozen prior.

use crate::error::invalid;
use crate::scorevae::codec::DecodeOptions;
use crate::scorevae::files::EncodeSource;
use crate::scorevae::run::{DecodeRequest, EncodeRequest, EncoderFiles};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

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
    fn files(&self) -> EncoderFiles {
        EncoderFiles {
            model: self.model.clone(),
            prior: self.prior.clone(),
        }
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
    /// Or the held-out block of this training configuration (e.g. the prior's own), as
    /// training prepared its slices: `--n` of them, evenly spaced.
    #[arg(long)]
    pub held_out: Option<PathBuf>,
    /// Slices of --held-out (at most 1000).
    #[arg(long, default_value_t = 4)]
    pub n: usize,
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
    let source = match (&a.input, a.phantoms, &a.held_out) {
        (Some(p), 0, None) => EncodeSource::Input(p.clone()),
        (None, n, None) if n > 0 => EncodeSource::Phantoms(n),
        (None, 0, Some(c)) => EncodeSource::HeldOut(c.clone(), a.n),
        _ => {
            return Err(invalid(
                "give exactly one of --input, --phantoms and --held-out",
            ))
        }
    };
    let request = EncodeRequest {
        encoder: a.encoder.files(),
        source,
        out: a.out.clone(),
    };
    println!("{}", request.run()?);
    Ok(())
}

/// Runs `medsgm decode`.
pub fn run_decode(a: &DecodeArgs) -> Result<()> {
    let request = DecodeRequest {
        encoder: a.encoder.files(),
        codes: a.codes.clone(),
        options: DecodeOptions {
            steps: a.steps,
            snr: a.snr,
            seed: a.seed,
        },
        reference: a.reference.clone(),
        compare_lsgm: a.compare_lsgm.clone(),
        out: a.out.clone(),
    };
    print!("{}", request.run()?);
    Ok(())
}
