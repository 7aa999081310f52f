//! Configuration of the LSGM stack (TOML, e.g. `configs/lsgm_ct_64.toml`).

use crate::nn::config::{MAX_CHANNELS, MAX_IMAGE_SIZE, MAX_RES_BLOCKS, MAX_WIDTH};
use crate::nn::NcsnppConfig;
use crate::train::config::{
    network_parameters, MAX_ACTIVATION_GIB, MAX_BATCH, MAX_SAMPLE_N, MAX_STEPS,
};
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

    /// Checks the sizes against the network limits of [`crate::nn::config`] (the second level
    /// is `2 nf` wide) and that `log_sigma_init` is a usable log σ.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (4..=MAX_IMAGE_SIZE).contains(&self.image_size) && self.image_size.is_multiple_of(4),
            "vae.image_size {} must be a multiple of 4 in 4..={MAX_IMAGE_SIZE}",
            self.image_size
        );
        anyhow::ensure!(
            (1..=MAX_CHANNELS).contains(&self.latent_channels),
            "vae.latent_channels {} must be in 1..={MAX_CHANNELS}",
            self.latent_channels
        );
        anyhow::ensure!(
            (4..=MAX_WIDTH / 2).contains(&self.nf) && self.nf.is_multiple_of(4),
            "vae.nf {} must be a multiple of 4 (GroupNorm) in 4..={} (the second level is 2 nf wide)",
            self.nf,
            MAX_WIDTH / 2
        );
        anyhow::ensure!(
            self.num_res_blocks <= MAX_RES_BLOCKS,
            "vae.num_res_blocks {} must be at most {MAX_RES_BLOCKS}",
            self.num_res_blocks
        );
        anyhow::ensure!(
            self.log_sigma_init.is_finite() && (-20.0..=5.0).contains(&self.log_sigma_init),
            "vae.log_sigma_init {} must be in [-20, 5] (σ₀ = e^log_sigma_init)",
            self.log_sigma_init
        );
        Ok(())
    }

    /// Estimated activations of one image in a training step (encoder and decoder, eight
    /// planes of the level's width per residual block at the full, half and latent
    /// resolutions).
    fn activation_floats_per_image(&self) -> f64 {
        let s = self.image_size as f64;
        let nf = self.nf as f64;
        let per_level = 8.0 * (self.num_res_blocks + 1) as f64;
        let levels = nf * s * s + 2.0 * nf * (s / 2.0).powi(2) + 2.0 * nf * (s / 4.0).powi(2);
        2.0 * per_level * levels
    }

    /// An upper estimate of the VAE's parameters (3×3 convolutions of width nf and 2 nf in
    /// the encoder and the decoder).
    fn parameters(&self) -> f64 {
        let nf = self.nf as f64;
        let convs = 2.0 * 2.0 * (self.num_res_blocks + 1) as f64;
        convs * 9.0 * (nf * nf + 4.0 * nf * nf)
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
        anyhow::ensure!(
            self.t_min.is_finite() && (0.0..1.0).contains(&self.t_min),
            "t_min {} must be in [0, 1)",
            self.t_min
        );
        self.prior_sampler()?;
        self.likelihood_sampler()?;
        anyhow::ensure!(
            (1..=MAX_BATCH).contains(&self.batch_size),
            "batch_size {} must be in 1..={MAX_BATCH}",
            self.batch_size
        );
        anyhow::ensure!(
            self.vae_steps <= MAX_STEPS,
            "vae_steps {} must be at most {MAX_STEPS}",
            self.vae_steps
        );
        anyhow::ensure!(
            (1..=MAX_STEPS).contains(&self.prior_steps),
            "prior_steps {} must be in 1..={MAX_STEPS} (0 would train no prior)",
            self.prior_steps
        );
        anyhow::ensure!(
            self.warmup <= MAX_STEPS,
            "warmup {} must be at most {MAX_STEPS}",
            self.warmup
        );
        for (name, lr) in [("vae_lr", self.vae_lr), ("prior_lr", self.prior_lr)] {
            anyhow::ensure!(
                lr.is_finite() && lr > 0.0 && lr <= 1.0,
                "{name} {lr} must be in (0, 1]"
            );
        }
        anyhow::ensure!(
            (0.0..1.0).contains(&self.ema),
            "ema {} must be in [0, 1)",
            self.ema
        );
        anyhow::ensure!(self.ckpt_every > 0, "ckpt_every must be positive");
        anyhow::ensure!(
            !self.grad_clip.is_nan(),
            "grad_clip must be a number (≤ 0 disables clipping)"
        );
        anyhow::ensure!(
            self.kl_weight.is_finite() && (0.0..=1e6).contains(&self.kl_weight),
            "kl_weight {} must be in [0, 1e6]",
            self.kl_weight
        );
        anyhow::ensure!(
            self.mixing_logit_init.is_finite() && self.mixing_logit_init.abs() <= 50.0,
            "mixing_logit_init {} must be in [-50, 50]",
            self.mixing_logit_init
        );
        anyhow::ensure!(
            (1..=MAX_SAMPLE_N).contains(&self.sample_n),
            "sample_n {} must be in 1..={MAX_SAMPLE_N}",
            self.sample_n
        );
        self.data.validate()?;
        let gib =
            self.batch_size as f64 * self.activation_floats_per_image() * 4.0 / (1u64 << 30) as f64;
        anyhow::ensure!(
            gib <= MAX_ACTIVATION_GIB,
            "batch_size {} of {}² images (vae.nf {}, prior nf {}) needs about {gib:.0} GiB of \
             activations, over the {MAX_ACTIVATION_GIB} GiB limit: lower batch_size, \
             vae.image_size or the widths",
            self.batch_size,
            self.vae.image_size,
            self.vae.nf,
            self.prior.nf
        );
        Ok(())
    }

    /// Estimated activations of one image in a training step: the VAE's and the latent
    /// prior's. Call only on a configuration that passed [`Self::validate`].
    fn activation_floats_per_image(&self) -> f64 {
        self.vae.activation_floats_per_image() + self.prior.activation_floats_per_image()
    }

    /// Estimated peak memory of a training step in bytes: one batch's activations (or the
    /// sample grid's) and five copies of the VAE's and the prior's parameters (weights,
    /// gradients, two Adam moments, EMA). Call only on a configuration that passed
    /// [`Self::validate`].
    pub fn memory_bytes(&self) -> u64 {
        let per_image = self.activation_floats_per_image();
        let activations =
            (self.batch_size as f64 * per_image).max(self.sample_n as f64 * per_image / 4.0);
        let parameters = self.vae.parameters() + network_parameters(&self.prior);
        ((activations + 5.0 * parameters) * 4.0).min(u64::MAX as f64) as u64
    }

    /// The configuration a resumed run continues with: this run's (`self`, from the training
    /// state) with the stage-2 step count `prior_steps` and the `data` source of `new` (the
    /// data is recorded, so config.toml says what the run was trained on). Any other
    /// difference is an error naming the fields: the state cannot honour it.
    pub fn resumed_with(&self, new: &LsgmConfig) -> anyhow::Result<LsgmConfig> {
        let ours = toml::Table::try_from(self)?;
        let theirs = toml::Table::try_from(new)?;
        let changed: Vec<&str> = ours
            .keys()
            .chain(theirs.keys())
            .map(String::as_str)
            .filter(|k| !matches!(*k, "prior_steps" | "data"))
            .filter(|k| ours.get(*k) != theirs.get(*k))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        anyhow::ensure!(
            changed.is_empty(),
            "the configuration changes {} of the run being resumed; only prior_steps and data \
             may change (start a new run in another folder instead)",
            changed.join(", ")
        );
        Ok(LsgmConfig {
            prior_steps: new.prior_steps,
            data: new.data.clone(),
            ..self.clone()
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> LsgmConfig {
        toml::from_str(include_str!("../../configs/lsgm_tiny.toml")).unwrap()
    }

    /// A field named in the error, and the edit that breaks it.
    type Edit = (&'static str, fn(&mut LsgmConfig));

    #[test]
    fn values_out_of_range_are_refused_naming_the_field() {
        assert!(config().validate().is_ok());
        let edits: [Edit; 12] = [
            ("vae.image_size", |c| c.vae.image_size = 100_000),
            ("vae.nf", |c| c.vae.nf = 4096),
            ("vae.num_res_blocks", |c| c.vae.num_res_blocks = 1000),
            ("vae.log_sigma_init", |c| c.vae.log_sigma_init = f64::NAN),
            ("batch_size", |c| c.batch_size = 1_000_000),
            ("prior_steps", |c| c.prior_steps = 0),
            ("vae_lr", |c| c.vae_lr = f64::INFINITY),
            ("kl_weight", |c| c.kl_weight = -1.0),
            ("t_min", |c| c.t_min = f64::NAN),
            ("sample_n", |c| c.sample_n = 0),
            ("n_ellipses", |c| {
                c.data = DataConfig::PhantomEllipses {
                    n_ellipses: 1_000_000_000,
                }
            }),
            ("GiB", |c| {
                c.batch_size = MAX_BATCH;
                c.vae.image_size = 1024;
                c.prior.image_size = 256;
                c.prior.ch_mult = vec![1, 2, 2];
                c.vae.nf = 256;
            }),
        ];
        for (field, edit) in edits {
            let mut c = config();
            edit(&mut c);
            let e = format!("{:#}", c.validate().unwrap_err());
            assert!(e.contains(field), "{field}: {e}");
        }
    }

    #[test]
    fn a_resumed_run_may_change_prior_steps_and_data_only() {
        let old = config();
        let mut new = config();
        new.prior_steps = 900;
        new.data = DataConfig::PhantomEllipses { n_ellipses: 7 };
        let resumed = old.resumed_with(&new).unwrap();
        assert_eq!((resumed.prior_steps, &resumed.data), (900, &new.data));
        new.vae.nf = 32;
        new.batch_size = 4;
        let e = format!("{:#}", old.resumed_with(&new).unwrap_err());
        assert!(e.contains("vae") && e.contains("batch_size"), "{e}");
    }

    #[test]
    fn the_memory_estimate_grows_with_the_batch() {
        let small = config();
        let mut big = config();
        big.batch_size *= 4;
        assert!(big.memory_bytes() > 2 * small.memory_bytes());
        assert!(small.memory_bytes() > 0);
    }
}
