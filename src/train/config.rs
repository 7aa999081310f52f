//! Training configuration (TOML), e.g. `configs/ct_phantom_128.toml`.

use super::data::DataConfig;
use super::optim::AdamConfig;
use crate::checkpoint::Normalization;
use crate::nn::NcsnppConfig;
use anyhow::Context;
use medsgm_recon::SdeConfig;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Weighting λ(t) of the continuous DSM objective (thesis Eq. 7.7, Thm 9.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Weighting {
    /// λ(t) = s(t)² (Chapter 7; per-sample loss ½‖s(t) s_θ + z‖²).
    #[default]
    SigmaSquared,
    /// Likelihood weighting λ(t) = g(t)² (Theorem 9.1).
    Likelihood,
}

/// Everything a training run needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Score network.
    pub model: NcsnppConfig,
    /// Forward SDE.
    pub sde: SdeConfig,
    /// Training images.
    pub data: DataConfig,
    /// Images per step (at most [`MAX_BATCH`], and the estimated activations of a batch at
    /// most [`MAX_ACTIVATION_GIB`] GiB).
    pub batch_size: usize,
    /// Optimiser steps in total.
    pub steps: u64,
    /// Peak learning rate (Adam).
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Linear warm-up steps.
    #[serde(default = "default_warmup")]
    pub warmup: u64,
    /// Global gradient-norm clip (≤ 0 disables).
    #[serde(default = "default_clip")]
    pub grad_clip: f64,
    /// EMA decay of the weights.
    #[serde(default = "default_ema")]
    pub ema: f64,
    /// Loss weighting λ(t).
    #[serde(default)]
    pub weighting: Weighting,
    /// Write the checkpoint and training state every this many steps (and at the end).
    #[serde(default = "default_ckpt_every")]
    pub ckpt_every: u64,
    /// Write a sample grid every this many steps (0 = never).
    #[serde(default)]
    pub sample_every: u64,
    /// Images in a sample grid.
    #[serde(default = "default_sample_n")]
    pub sample_n: usize,
    /// PC sampler steps for the sample grid.
    #[serde(default = "default_sample_steps")]
    pub sample_steps: usize,
    /// Seed of initialisation, data and noise.
    #[serde(default)]
    pub seed: u64,
    /// Start from the EMA weights of this model checkpoint instead of a random
    /// initialisation (fine-tuning): every layer must have the same shape (the training size
    /// may differ); a positional network may start from a plain one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<std::path::PathBuf>,
}

/// Largest batch a configuration may ask for.
pub const MAX_BATCH: usize = 4096;
/// Most steps a configuration may ask for.
pub const MAX_STEPS: u64 = 100_000_000;
/// Most images in a sample grid (`sample_n`).
pub const MAX_SAMPLE_N: usize = 256;
/// Most PC steps of the sample grid (`sample_steps`).
pub const MAX_SAMPLE_STEPS: usize = 100_000;
/// Largest estimated activation memory of one training batch
/// ([`crate::nn::NcsnppConfig::activation_floats_per_image`] × `batch_size`), in GiB.
pub const MAX_ACTIVATION_GIB: f64 = 64.0;

/// An upper estimate of the parameters of an NCSN++ network: per level, its residual blocks
/// (two 3×3 convolutions of the level's width each, down and up paths, and the resampling
/// block) and, at attention levels, four width² projections per attention block.
pub fn network_parameters(model: &NcsnppConfig) -> f64 {
    let mut total = 0.0;
    for (i, &m) in model.ch_mult.iter().enumerate() {
        let width = (model.nf * m) as f64;
        let blocks = (2 * model.num_res_blocks + 2) as f64;
        // up-path blocks see the skip connection: up to twice the input width
        total += blocks * 2.0 * 9.0 * 2.0 * width * width;
        if model.attn_resolutions.contains(&(model.image_size >> i)) {
            total += (2 * model.num_res_blocks + 1) as f64 * 4.0 * width * width;
        }
    }
    total
}

fn default_lr() -> f64 {
    2e-4
}
fn default_warmup() -> u64 {
    5000
}
fn default_clip() -> f64 {
    1.0
}
fn default_ema() -> f64 {
    0.999
}
fn default_ckpt_every() -> u64 {
    1000
}
fn default_sample_n() -> usize {
    16
}
fn default_sample_steps() -> usize {
    200
}

impl TrainConfig {
    /// Parses and validates a TOML file.
    pub fn from_toml_file(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let cfg: Self =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        cfg.validate()
            .with_context(|| format!("invalid training config {}", path.display()))?;
        Ok(cfg)
    }

    /// Checks sizes and ranges.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.model.validate().map_err(anyhow::Error::msg)?;
        self.sde.build()?;
        anyhow::ensure!(
            !matches!(self.sde, SdeConfig::Learned(_)) || self.weighting == Weighting::Likelihood,
            "a learned schedule ([sde] kind = \"learned\") is trained on the continuous VLB, \
             which needs weighting = \"likelihood\""
        );
        anyhow::ensure!(
            (1..=MAX_BATCH).contains(&self.batch_size),
            "batch_size must be in 1..={MAX_BATCH}"
        );
        anyhow::ensure!(
            (1..=MAX_STEPS).contains(&self.steps),
            "steps must be in 1..={MAX_STEPS} (0 would train nothing)"
        );
        anyhow::ensure!(self.lr.is_finite() && self.lr > 0.0, "lr must be positive");
        anyhow::ensure!((0.0..1.0).contains(&self.ema), "ema must be in [0, 1)");
        anyhow::ensure!(self.ckpt_every > 0, "ckpt_every must be positive");
        anyhow::ensure!(
            !self.grad_clip.is_nan(),
            "grad_clip must be a number (≤ 0 disables clipping)"
        );
        anyhow::ensure!(
            (1..=MAX_SAMPLE_N).contains(&self.sample_n),
            "sample_n must be in 1..={MAX_SAMPLE_N}"
        );
        anyhow::ensure!(
            (1..=MAX_SAMPLE_STEPS).contains(&self.sample_steps),
            "sample_steps must be in 1..={MAX_SAMPLE_STEPS}"
        );
        let gib = self.batch_size as f64 * self.model.activation_floats_per_image() * 4.0
            / (1u64 << 30) as f64;
        anyhow::ensure!(
            gib <= MAX_ACTIVATION_GIB,
            "batch_size {} of {}² images (nf {}, ch_mult {:?}, num_res_blocks {}) needs about \
             {gib:.0} GiB of activations, over the {MAX_ACTIVATION_GIB} GiB limit: lower \
             batch_size, image_size or nf",
            self.batch_size,
            self.model.image_size,
            self.model.nf,
            self.model.ch_mult,
            self.model.num_res_blocks
        );
        self.data.validate()?;
        if let Some(init) = &self.init_from {
            anyhow::ensure!(
                init.is_file(),
                "init_from {} is not a checkpoint file",
                init.display()
            );
        }
        Ok(())
    }

    /// The configuration a resumed run continues with: this run's (`self`, from the training
    /// state) with the fields of `new` that may change between sessions — the total `steps`,
    /// the `data` source (recorded, so config.toml says what the run was trained on), the
    /// checkpoint and sample-grid schedule. Any other difference (architecture, SDE, batch,
    /// optimiser, weighting, seed) is an error naming the fields: the state cannot honour it.
    pub fn resumed_with(&self, new: &TrainConfig) -> anyhow::Result<TrainConfig> {
        let fixed = [
            ("model", self.model != new.model),
            ("sde", self.sde != new.sde),
            ("batch_size", self.batch_size != new.batch_size),
            ("lr", self.lr != new.lr),
            ("warmup", self.warmup != new.warmup),
            ("grad_clip", self.grad_clip != new.grad_clip),
            ("ema", self.ema != new.ema),
            ("weighting", self.weighting != new.weighting),
            ("seed", self.seed != new.seed),
        ];
        let changed: Vec<&str> = fixed
            .iter()
            .filter(|(_, differs)| *differs)
            .map(|(name, _)| *name)
            .collect();
        anyhow::ensure!(
            changed.is_empty(),
            "the configuration changes {} of the run being resumed; only steps, data, \
             ckpt_every and the sample-grid settings may change (start a new run in another \
             folder instead)",
            changed.join(", ")
        );
        Ok(TrainConfig {
            steps: new.steps,
            data: new.data.clone(),
            ckpt_every: new.ckpt_every,
            sample_every: new.sample_every,
            sample_n: new.sample_n,
            sample_steps: new.sample_steps,
            ..self.clone()
        })
    }

    /// Estimated peak memory of a training step in bytes: the activations of one batch
    /// ([`NcsnppConfig::activation_floats_per_image`] × `batch_size`) and five copies of the
    /// parameters (weights, gradients, two Adam moments, EMA), and the sample grid's images.
    /// Call only on a configuration that passed [`Self::validate`].
    pub fn memory_bytes(&self) -> u64 {
        let activations = self.batch_size as f64 * self.model.activation_floats_per_image();
        let samples = self.sample_n as f64 * self.model.activation_floats_per_image() / 4.0;
        let floats = activations.max(samples) + 5.0 * network_parameters(&self.model);
        (floats * 4.0).min(u64::MAX as f64) as u64
    }

    /// Adam settings (β1 0.9, β2 0.999, ε 1e-8) with this run's lr, warm-up and clip.
    pub fn adam(&self) -> AdamConfig {
        AdamConfig {
            lr: self.lr,
            warmup: self.warmup,
            grad_clip: self.grad_clip,
            ..AdamConfig::default()
        }
    }

    /// Intensity normalisation implied by the data source.
    pub fn normalization(&self) -> Normalization {
        self.data.normalization()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> TrainConfig {
        toml::from_str(include_str!("../../configs/test_tiny.toml")).unwrap()
    }

    #[test]
    fn a_batch_over_the_memory_limit_is_refused_before_any_allocation() {
        assert!(config().validate().is_ok());
        let mut c = config();
        c.batch_size = MAX_BATCH;
        c.model.image_size = 1024;
        c.model.ch_mult = vec![1, 2, 2, 2, 2, 2];
        c.model.nf = 64;
        let e = format!("{:#}", c.validate().unwrap_err());
        assert!(e.contains("batch_size") && e.contains("GiB"), "{e}");
    }

    #[test]
    fn data_sizes_are_bounded() {
        let mut c = config();
        c.data = DataConfig::PhantomEllipses {
            n_ellipses: 1_000_000_000,
        };
        let e = format!("{:#}", c.validate().unwrap_err());
        assert!(e.contains("n_ellipses"), "{e}");
        let mut c = config();
        c.sample_n = 1_000_000;
        assert!(format!("{:#}", c.validate().unwrap_err()).contains("sample_n"));
    }
}
