//! Loading a trained score model for the CLI: the checkpoint (from a file or embedded bytes),
//! its EMA network (the weights used for sampling, thesis App. B), the forward SDE it was
//! trained for and its intensity normalisation.
//!
//! Failures to read or validate a checkpoint are invalid input (exit code 2).

use crate::checkpoint::{Checkpoint, CheckpointMeta};
use crate::cli::{invalid, InputContext};
use crate::nn::score::NetScore;
use crate::nn::Ncsnpp;
use anyhow::{Context, Result};
use candle_core::Device;
use clap::Args;
use medsgm_recon::Sde;
use std::path::{Path, PathBuf};

/// The `--model` argument.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Trained score model (.safetensors checkpoint written by `medsgm train`).
    #[arg(long)]
    pub model: PathBuf,
}

/// A score network ready to evaluate s_θ(x, t).
pub struct LoadedModel {
    /// The checkpoint metadata (network/SDE configuration, normalisation, training step).
    pub meta: CheckpointMeta,
    /// The network with the EMA weights.
    pub net: Ncsnpp,
    /// The forward SDE of the training run.
    pub sde: Box<dyn Sde>,
    /// Where the network runs.
    pub device: Device,
}

impl LoadedModel {
    /// Loads a checkpoint file (invalid input when missing, corrupt or inconsistent).
    pub fn load(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(invalid(format!(
                "model {} does not exist (expected a .safetensors checkpoint written by `medsgm train`)",
                path.display()
            )));
        }
        let device = crate::cli::train::device()?;
        let ck = Checkpoint::load(path, &device)
            .with_context(|| format!("cannot load the model {}", path.display()))
            .invalid_input()?;
        Self::from_checkpoint(ck, device)
    }

    /// Loads a checkpoint from the bytes of a safetensors file named `what` in errors.
    pub fn from_bytes(bytes: &[u8], what: &str) -> Result<Self> {
        let device = crate::cli::train::device()?;
        let ck = Checkpoint::from_bytes(bytes, what, &device).invalid_input()?;
        Self::from_checkpoint(ck, device)
    }

    fn from_checkpoint(ck: Checkpoint, device: Device) -> Result<Self> {
        let net = ck.network(true, &device).invalid_input()?;
        let sde = ck.meta.sde.build().invalid_input()?;
        Ok(Self {
            meta: ck.meta,
            net,
            sde,
            device,
        })
    }

    /// The score s_θ(x, t) of the EMA network for the model's SDE.
    pub fn score(&self) -> NetScore<'_> {
        NetScore {
            net: &self.net,
            sde: self.sde.as_ref(),
        }
    }

    /// Side length of the (square) images the model was trained on.
    pub fn image_size(&self) -> usize {
        self.meta.model.image_size
    }

    /// Image channels of the model.
    pub fn channels(&self) -> usize {
        self.meta.model.channels
    }

    /// Fails (invalid input) unless `shape` is the model's single-channel image size.
    pub fn check_image_shape(&self, shape: (usize, usize), what: &str) -> Result<()> {
        let n = self.image_size();
        if self.channels() != 1 {
            return Err(invalid(format!(
                "the model has {} image channels; reconstruction needs a single-channel model",
                self.channels()
            )));
        }
        if shape != (n, n) {
            return Err(invalid(format!(
                "{what} is {}x{} but the model was trained on {n}x{n} images; use a model of that size or resample the data",
                shape.0, shape.1
            )));
        }
        Ok(())
    }

    /// One-line description for logs.
    pub fn describe(&self) -> String {
        format!(
            "{}² model, {:?} ({} training steps; {})",
            self.image_size(),
            self.meta.sde,
            self.meta.step,
            self.meta.dataset
        )
    }
}
