//! The ScoreVAE training configuration (TOML, told apart from score-model and LSGM
//! configurations by its `[encoder]` table).

use super::correction::CorrectionConfig;
use super::encoder::EncoderConfig;
use crate::train::data::DataConfig;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What `medsgm train` reads for a ScoreVAE encoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreVaeConfig {
    /// The frozen pixel prior (a score-model checkpoint), relative to the working directory.
    pub prior: PathBuf,
    /// Training steps.
    pub steps: u64,
    /// Images per step.
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Linear warm-up steps.
    #[serde(default)]
    pub warmup: u64,
    /// Global gradient-norm clip (≤ 0 disables).
    #[serde(default = "default_clip")]
    pub grad_clip: f64,
    /// Weight β of KL(q_{0,φ}(z | x₀) ‖ N(0, I)) (paper: 0.01; β = 1 makes the loss a bound).
    pub beta: f64,
    /// Seed of the data, time and noise draws and of the initialisation.
    #[serde(default)]
    pub seed: u64,
    /// Checkpoint (and resumable state) every this many steps.
    #[serde(default = "default_ckpt")]
    pub ckpt_every: u64,
    /// The encoder's sizes.
    pub encoder: EncoderConfig,
    /// ScoreVAE+: train only a correction c_ψ of the decoder's score, with the encoder of
    /// `encoder_from` frozen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correction: Option<CorrectionConfig>,
    /// The trained encoder checkpoint a ScoreVAE+ run corrects (its `[encoder]` and prior must
    /// be this configuration's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder_from: Option<PathBuf>,
    /// The training images (as the prior's training data; the normalisation must match).
    pub data: DataConfig,
}

fn default_clip() -> f64 {
    1.0
}
fn default_ckpt() -> u64 {
    250
}

/// Most steps and images per step.
pub const MAX_STEPS: u64 = 10_000_000;
/// Most images per step.
pub const MAX_BATCH: usize = 4096;

impl ScoreVaeConfig {
    /// Reads and validates a TOML file.
    pub fn from_toml_file(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let config: Self =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        config
            .validate()
            .with_context(|| format!("checking {}", path.display()))?;
        Ok(config)
    }

    /// Checks every size and rate.
    pub fn validate(&self) -> Result<()> {
        anyhow::ensure!(
            (1..=MAX_STEPS).contains(&self.steps),
            "steps {} must be in 1..={MAX_STEPS}",
            self.steps
        );
        anyhow::ensure!(
            (1..=MAX_BATCH).contains(&self.batch_size),
            "batch_size {} must be in 1..={MAX_BATCH}",
            self.batch_size
        );
        anyhow::ensure!(
            self.lr.is_finite() && self.lr > 0.0 && self.lr < 1.0,
            "lr {} must lie in (0, 1)",
            self.lr
        );
        anyhow::ensure!(
            self.beta.is_finite() && self.beta >= 0.0,
            "beta {} must be finite and non-negative",
            self.beta
        );
        anyhow::ensure!(self.grad_clip.is_finite(), "grad_clip must be finite");
        anyhow::ensure!(self.ckpt_every >= 1, "ckpt_every must be positive");
        self.encoder.validate()?;
        match (&self.correction, &self.encoder_from) {
            (Some(c), Some(_)) => c.validate()?,
            (None, None) => {}
            _ => anyhow::bail!(
                "a ScoreVAE+ run needs both [correction] and encoder_from (the encoder it corrects)"
            ),
        }
        self.data.validate()?;
        Ok(())
    }

    /// Estimated training memory: the encoder's weights with their gradients and Adam
    /// moments, the batch through the encoder, and the frozen prior's forward activations
    /// (about 64 image-sized f32 planes per image, no backward pass through it).
    pub fn memory_bytes(&self) -> u64 {
        let e = &self.encoder;
        let batch = self.batch_size as u64;
        let activations = match &e.conv {
            None => 8 * (e.hidden + e.latent) as u64,
            // each layer halves the side and doubles the channels: ≤ 2 image planes × c per layer
            Some(c) => 8 * (2 * c.channels * c.layers * e.dim() / 4 + e.latent) as u64,
        };
        let correction = self.correction.map_or(0, |c| {
            c.parameters(e.dim(), e.latent, 2 * e.fourier)
                + 8 * batch * (c.channels * e.dim()) as u64
        });
        4 * (4 * e.parameters() + batch * (e.dim() as u64) * 64 + batch * activations)
            + 4 * correction
    }

    /// Whether the TOML document is a ScoreVAE configuration (it has an `[encoder]` table).
    pub fn is_scorevae(doc: &toml::Table) -> bool {
        doc.contains_key("encoder")
    }
}
