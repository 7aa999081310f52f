//! Configuration of the LSGM stack (TOML, e.g. `configs/lsgm_ct_64.toml`).

use crate::nn::NcsnppConfig;
use crate::train::optim::AdamConfig;
use crate::train::DataConfig;
use anyhow::Context;
use medsgm_recon::lsgm::{TimeProposal, TimeSampler, Weighting};
use medsgm_recon::SdeConfig;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The convolutional VAE: `image_size²` 1-channel slices ↔ a `(image_size/4)²` latent grid with
/// `latent_channels` channels (two 2× down/up-sampling levels of width `nf`, `2 nf`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VaeConfig {
    /// Image side length (divisible by 4).
    pub image_size: usize,
    /// Latent channels C.
    pub latent_channels: usize,
    /// Width of the first level (divisible by 4 for GroupNorm).
    pub nf: usize,
    /// Residual blocks per level.
    pub num_res_blocks: usize,
    /// Initial log σ of the Gaussian decoder p(x|z) = N(μ_ψ(z), σ² I) (σ is learned).
    pub log_sigma_init: f64,
}

impl Default for VaeConfig {
    /// 64² slices → 16 × 16 × 4 latents, nf 32, one block per level, σ₀ = e⁻² ≈ 0.135.
    fn default() -> Self {
        Self {
            image_size: 64,
            latent_channels: 4,
            nf: 32,
            num_res_blocks: 1,
            log_sigma_init: -2.0,
        }
    }
}

impl VaeConfig {
    /// Side length of the latent grid.
    pub fn latent_size(&self) -> usize {
        self.image_size / 4
    }

    /// Checks the sizes.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.image_size > 0 && self.image_size.is_multiple_of(4),
            "vae.image_size {} must be a positive multiple of 4",
            self.image_size
        );
        anyhow::ensure!(
            self.latent_channels > 0,
            "vae.latent_channels must be positive"
        );
        anyhow::ensure!(
            self.nf > 0 && self.nf.is_multiple_of(4),
            "vae.nf {} must be a positive multiple of 4 (GroupNorm)",
            self.nf
        );
        Ok(())
    }
}

/// How stage 2 trains (LSGM App. G.6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage2 {
    /// Freeze the VAE, train the prior on its latents (Eq. 9 only).
    #[default]
    Disjoint,
    /// End-to-end (Alg. 1 / Alg. 3 "rew."): one t-draw per latent; the prior minimises
    /// (w/(2r))‖ε − ε_θ‖², the encoder/decoder minimise −log p(x|z₀) + log q(z₀|x) +
    /// (w_ll/(2r))‖ε − ε_θ‖², with separate gradients.
    Joint,
}

/// Where the encoder's cross-entropy term takes its t from in joint training (LSGM Table 6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EncoderTime {
    /// Reuse the prior's draw, reweighted by w_ll/r (Alg. 3, "rew.").
    #[default]
    Reweight,
    /// A separate draw t ~ r_ll (Alg. 2; identical to `reweight` when the prior uses w_ll
    /// with the same proposal).
    Separate,
}

/// Everything an LSGM training run needs (disjoint training: stage 1 VAE, stage 2 prior).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LsgmConfig {
    /// The VAE.
    pub vae: VaeConfig,
    /// The latent prior network ε'_θ (channels = latent channels, image_size = latent size,
    /// `scale_by_sigma = false`: it predicts noise).
    pub prior: NcsnppConfig,
    /// Latent diffusion (VP, geometric VP or VE; LSGM's best-NLL model uses the geometric VP).
    #[serde(default = "SdeConfig::geometric_vp")]
    pub sde: SdeConfig,
    /// Weighting of the prior's objective (the encoder always uses w_ll).
    #[serde(default = "default_weighting")]
    pub prior_weighting: Weighting,
    /// Uniform or importance-sampled t.
    #[serde(default = "default_proposal")]
    pub time_proposal: TimeProposal,
    /// Lower time cutoff ε (LSGM: 0.01 for the linear VP, 0 for the geometric VP).
    #[serde(default)]
    pub t_min: f64,
    /// Initial per-channel mixing logit (α = sigmoid(logit); LSGM code: −6).
    #[serde(default = "default_logit")]
    pub mixing_logit_init: f64,
    /// Training images.
    pub data: DataConfig,
    /// Images per step.
    pub batch_size: usize,
    /// Stage-1 steps (VAE with N(0, I) prior).
    pub vae_steps: u64,
    /// Stage-2 steps (score prior on the frozen VAE's latents, or joint).
    pub prior_steps: u64,
    /// Disjoint or end-to-end stage 2.
    #[serde(default)]
    pub stage2: Stage2,
    /// t of the encoder's cross-entropy term in joint training.
    #[serde(default)]
    pub encoder_time: EncoderTime,
    /// Adam learning rate of the VAE.
    #[serde(default = "default_vae_lr")]
    pub vae_lr: f64,
    /// Adam learning rate of the prior (LSGM: 1e-4 … 3e-4).
    #[serde(default = "default_prior_lr")]
    pub prior_lr: f64,
    /// Linear warm-up steps of both optimisers.
    #[serde(default)]
    pub warmup: u64,
    /// Global gradient-norm clip (≤ 0 disables).
    #[serde(default = "default_clip")]
    pub grad_clip: f64,
    /// KL weight β of stage 1 (1 = the NELBO).
    #[serde(default = "default_kl")]
    pub kl_weight: f64,
    /// EMA decay of the prior (LSGM: 0.9999; no EMA for the VAE).
    #[serde(default = "default_ema")]
    pub ema: f64,
    /// Checkpoint every this many steps of either stage (and at the end of each).
    #[serde(default = "default_ckpt_every")]
    pub ckpt_every: u64,
    /// Write a sample grid (latent RK45 ODE, EMA prior) every this many stage-2 steps
    /// (0 = never).
    #[serde(default)]
    pub sample_every: u64,
    /// Images in a sample grid.
    #[serde(default = "default_sample_n")]
    pub sample_n: usize,
    /// Seed of initialisation, data and noise.
    #[serde(default)]
    pub seed: u64,
}

fn default_weighting() -> Weighting {
    Weighting::Likelihood
}
fn default_proposal() -> TimeProposal {
    TimeProposal::Importance
}
fn default_logit() -> f64 {
    -6.0
}
fn default_vae_lr() -> f64 {
    1e-3
}
fn default_prior_lr() -> f64 {
    3e-4
}
fn default_clip() -> f64 {
    1.0
}
fn default_kl() -> f64 {
    1.0
}
fn default_ema() -> f64 {
    0.9999
}
fn default_sample_n() -> usize {
    16
}
fn default_ckpt_every() -> u64 {
    1000
}

impl LsgmConfig {
    /// Parses and validates a TOML file.
    pub fn from_toml_file(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let cfg: Self =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        cfg.validate()
            .with_context(|| format!("invalid LSGM config {}", path.display()))?;
        Ok(cfg)
    }

    /// Checks sizes, ranges and that the prior network fits the latent grid.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.vae.validate()?;
        self.prior.validate().map_err(anyhow::Error::msg)?;
        anyhow::ensure!(
            self.prior.channels == self.vae.latent_channels
                && self.prior.image_size == self.vae.latent_size(),
            "prior network is {}×{}² but the latents are {}×{}²",
            self.prior.channels,
            self.prior.image_size,
            self.vae.latent_channels,
            self.vae.latent_size()
        );
        anyhow::ensure!(
            !self.prior.scale_by_sigma,
            "the prior predicts noise: set prior.scale_by_sigma = false"
        );
        self.prior_sampler()?;
        self.likelihood_sampler()?;
        anyhow::ensure!(self.batch_size > 0, "batch_size must be positive");
        anyhow::ensure!(
            self.vae_lr > 0.0 && self.prior_lr > 0.0,
            "learning rates must be positive"
        );
        anyhow::ensure!((0.0..1.0).contains(&self.ema), "ema must be in [0, 1)");
        anyhow::ensure!(self.ckpt_every > 0, "ckpt_every must be positive");
        Ok(())
    }

    /// The t-sampler of the prior's objective (Eq. 9).
    pub fn prior_sampler(&self) -> anyhow::Result<TimeSampler> {
        Ok(TimeSampler::new(
            &self.sde,
            self.prior_weighting,
            self.time_proposal,
            self.t_min,
        )?)
    }

    /// The t-sampler of the cross entropy (w_ll with this run's proposal), for the NELBO.
    pub fn likelihood_sampler(&self) -> anyhow::Result<TimeSampler> {
        Ok(TimeSampler::new(
            &self.sde,
            Weighting::Likelihood,
            self.time_proposal,
            self.t_min,
        )?)
    }

    /// Adam settings of a stage with learning rate `lr`.
    pub fn adam(&self, lr: f64) -> AdamConfig {
        AdamConfig {
            lr,
            warmup: self.warmup,
            grad_clip: self.grad_clip,
            ..AdamConfig::default()
        }
    }
}
