//! Encoding slices to ScoreVAE codes and decoding codes back (paper 001 §3.5): the code is the
//! encoder's mean at the data's noise level, z = μ_φ(x, ε); decoding runs the prior's PC sampler
//! with the conditional score s_θ(x_t, t) + ∇ₓ log q_{t,φ}(z | x_t) (+ c_ψ(x_t, z, t) for
//! ScoreVAE+, [`super::correction`]).

use super::correction::Correction;
use super::encoder::TimeEncoder;
use super::networks::{build_networks, EncoderPosterior};
use super::trainer::{ScoreVaeMeta, SCOREVAE_FORMAT};
use crate::checkpoint::read_safetensors;
use crate::io::npy::read_npy;
use crate::model::{LatentCondition, LoadedModel};
use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use medsgm_recon::conditional::ConditionalScore;
use medsgm_recon::{NoHook, PcConfig, PcSampler};
use ndarray::Array2;
use std::path::Path;

/// A trained encoder with its frozen prior.
pub struct ScoreVae {
    /// What the checkpoint says about itself.
    pub meta: ScoreVaeMeta,
    /// The encoder.
    pub encoder: TimeEncoder,
    /// The ScoreVAE+ correction, when the checkpoint holds one.
    pub correction: Option<Correction>,
    /// The prior (loaded from the path recorded at training).
    pub prior: LoadedModel,
}

/// Reads an encoder checkpoint (its metadata and weights).
fn load_encoder(
    path: &Path,
    device: &Device,
) -> Result<(ScoreVaeMeta, TimeEncoder, Option<Correction>)> {
    let (tensors, meta): (_, ScoreVaeMeta) = read_safetensors(path, device)?;
    anyhow::ensure!(
        meta.format == SCOREVAE_FORMAT,
        "{} is not a ScoreVAE encoder (format {:?})",
        path.display(),
        meta.format
    );
    meta.config.validate()?;
    let varmap = VarMap::new();
    let (encoder, correction) = build_networks(
        &meta.config,
        VarBuilder::from_varmap(&varmap, DType::F32, device),
    )?;
    let vars = varmap
        .data()
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned variable map"))?;
    for (name, var) in vars.iter() {
        let t = tensors
            .get(name)
            .with_context(|| format!("{}: no tensor {name}", path.display()))?;
        anyhow::ensure!(
            t.dims() == var.dims(),
            "{}: tensor {name} is {:?}, expected {:?}",
            path.display(),
            t.dims(),
            var.dims()
        );
        var.set(t)?;
    }
    drop(vars);
    Ok((meta, encoder, correction))
}

/// Refuses a prior other than the one the encoder at `path` was trained against.
fn check_prior(meta: &ScoreVaeMeta, prior: &LoadedModel, prior_path: &Path) -> Result<()> {
    anyhow::ensure!(
        prior.describe() == meta.prior_description,
        "{} is not the prior this encoder was trained against ({})",
        prior_path.display(),
        meta.prior_description
    );
    Ok(())
}

/// The condition of `medsgm recon --encoder E --code C`: the prior `prior` (at `prior_path`)
/// conditioned on one code, so every score method samples p(x | z, y) — a latent plus a
/// measurement gives a slice consistent with both (Theorem 8.1 projections where the method
/// projects). The code file holds `[k]` or `[1, k]` finite values (as `medsgm encode` writes).
pub fn latent_condition(
    encoder_path: &Path,
    code_path: &Path,
    prior: &LoadedModel,
    prior_path: &Path,
) -> Result<LatentCondition> {
    let (meta, encoder, correction) = load_encoder(encoder_path, &prior.device)
        .with_context(|| format!("encoder {}", encoder_path.display()))?;
    check_prior(&meta, prior, prior_path)?;
    let k = meta.config.encoder.latent;
    let code = read_npy(code_path)
        .and_then(|c| {
            c.into_f32()
                .map_err(|d| anyhow::anyhow!("unsupported element type {d:?}"))
        })
        .with_context(|| format!("code {}", code_path.display()))?;
    anyhow::ensure!(
        code.len() == k && (code.ndim() == 1 || code.shape() == [1, k]),
        "code {} must hold one code of {k} values ([{k}] or [1, {k}]), got {:?}",
        code_path.display(),
        code.shape()
    );
    anyhow::ensure!(
        code.iter().all(|v| v.is_finite()),
        "code {} holds non-finite values",
        code_path.display()
    );
    let codes = Tensor::from_vec(code.iter().copied().collect(), (1, k), &prior.device)?;
    Ok(LatentCondition {
        posterior: Box::new(EncoderPosterior {
            encoder,
            correction,
            sde: prior.meta.sde.build()?,
        }),
        codes,
    })
}

impl ScoreVae {
    /// Loads an encoder checkpoint and the prior it was trained against (`prior` overrides the
    /// recorded path; the prior's description must match the recorded one).
    pub fn load(path: &Path, prior: Option<&Path>, device: &Device) -> Result<Self> {
        let (meta, encoder, correction) = load_encoder(path, device)?;
        let prior_path = prior.unwrap_or(&meta.config.prior);
        let prior = LoadedModel::load(prior_path)
            .with_context(|| format!("the prior {}", prior_path.display()))?;
        check_prior(&meta, &prior, prior_path)?;
        Ok(Self {
            meta,
            encoder,
            correction,
            prior,
        })
    }

    /// "ScoreVAE", or "ScoreVAE+" with a correction.
    pub fn name(&self) -> &'static str {
        if self.correction.is_some() {
            "ScoreVAE+"
        } else {
            "ScoreVAE"
        }
    }

    /// Latent dimension k.
    pub fn latent(&self) -> usize {
        self.meta.config.encoder.latent
    }

    /// Image side.
    pub fn image_size(&self) -> usize {
        self.meta.config.encoder.image_size
    }
}

/// Codes z = μ_φ(x, ε) of images (`[H, W]` in the prior's units, H = W = the encoder's side).
pub fn encode(vae: &ScoreVae, images: &[Array2<f32>]) -> Result<Vec<Vec<f32>>> {
    let n = vae.image_size();
    anyhow::ensure!(!images.is_empty(), "no images to encode");
    for im in images {
        anyhow::ensure!(
            im.dim() == (n, n),
            "the encoder takes {n}x{n} images, got {:?}",
            im.dim()
        );
    }
    let device = &vae.prior.device;
    let data: Vec<f32> = images.iter().flat_map(|im| im.iter().copied()).collect();
    let x = Tensor::from_vec(data, (images.len(), 1, n, n), device)?;
    let sde = vae.prior.sde.as_ref();
    let sigma = Tensor::full(sde.std(sde.t_min_train()) as f32, images.len(), device)?;
    let mean = vae.encoder.moments(&x, &sigma)?.mean;
    Ok(mean.to_vec2::<f32>()?)
}

/// Decoding parameters.
#[derive(Debug, Clone, Copy)]
pub struct DecodeOptions {
    /// PC steps N.
    pub steps: usize,
    /// Langevin signal-to-noise ratio r.
    pub snr: f64,
    /// Seed of the prior draw and every noise draw.
    pub seed: u64,
}

/// Images decoded from codes (one per code) by the conditional reverse SDE.
pub fn decode(
    vae: &ScoreVae,
    codes: &[Vec<f32>],
    options: &DecodeOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<Array2<f32>>> {
    let (k, n) = (vae.latent(), vae.image_size());
    anyhow::ensure!(!codes.is_empty(), "no codes to decode");
    for c in codes {
        anyhow::ensure!(
            c.len() == k && c.iter().all(|v| v.is_finite()),
            "codes must hold {k} finite values, got {}",
            c.len()
        );
    }
    let device = &vae.prior.device;
    let z = Tensor::from_vec(codes.concat(), (codes.len(), k), device)?;
    let sde = vae.prior.sde.as_ref();
    let prior = vae.prior.score();
    let posterior = EncoderPosterior {
        encoder: vae.encoder.clone(),
        correction: vae.correction.clone(),
        sde: sde.config().build()?,
    };
    let score = ConditionalScore::new(&prior, &posterior, z)?;
    let sampler = PcSampler::new(PcConfig {
        steps: options.steps,
        snr: options.snr,
        seed: options.seed,
        ..PcConfig::default()
    })?;
    let out = sampler.sample(
        sde,
        &score,
        &[codes.len(), 1, n, n],
        device,
        &mut NoHook,
        progress,
    )?;
    crate::train::plot::tensor_images(&out.samples)
}
