//! A trained score model loaded for sampling: the checkpoint (from a file or embedded bytes),
//! its EMA network (the weights used for sampling, thesis App. B), the forward SDE it was
//! trained for and its intensity normalisation, on the compute device ([`device`]).
//!
//! Failures to read or validate a checkpoint are invalid input (exit code 2).

use crate::checkpoint::{Checkpoint, CheckpointMeta};
use crate::error::{invalid, InputContext};
use crate::nn::score::NetScore;
use crate::nn::Ncsnpp;
use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use medsgm_recon::conditional::{ConditionalScore, LatentPosterior};
use medsgm_recon::{ScoreModel, Sde};
use std::path::Path;

/// The compute device: CUDA 0 when built with `--features cuda` and available, else the CPU.
pub fn device() -> Result<Device> {
    #[cfg(feature = "cuda")]
    {
        if candle_core::utils::cuda_is_available() {
            return Ok(Device::new_cuda(0)?);
        }
    }
    Ok(Device::Cpu)
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
    /// A latent code the prior is conditioned on (`recon --encoder --code`), if any.
    pub condition: Option<LatentCondition>,
}

/// A code z the prior is conditioned on and the latent posterior q_t(z | x_t) that relates it
/// to images (a ScoreVAE encoder, paper 001 §3.5).
pub struct LatentCondition {
    /// q_t(z | x_t).
    pub posterior: Box<dyn LatentPosterior>,
    /// The codes: `[1, k]` (one for the whole batch) or `[B, k]`.
    pub codes: Tensor,
}

/// The score the solvers sample with: s_θ(x, t), or with a [`LatentCondition`] the decoder's
/// score s_θ(x, t) + ∇ₓ log q_t(z | x) (Bayes' rule for scores, [`ConditionalScore`]).
pub struct PriorScore<'a> {
    net: NetScore<'a>,
    condition: Option<&'a LatentCondition>,
}

impl ScoreModel for PriorScore<'_> {
    fn score(&self, x: &Tensor, t: &Tensor) -> candle_core::Result<Tensor> {
        match self.condition {
            None => self.net.score(x, t),
            Some(c) => ConditionalScore::new(&self.net, c.posterior.as_ref(), c.codes.clone())
                .map_err(|e| candle_core::Error::Msg(e.to_string()))?
                .score(x, t),
        }
    }
}

impl LoadedModel {
    /// Loads a checkpoint file (invalid input when missing, corrupt or inconsistent).
    pub fn load(path: &Path) -> Result<Self> {
        if path.is_dir() {
            return Err(invalid(format!(
                "model {} is a folder: give the model.safetensors file inside it",
                path.display()
            )));
        }
        if !path.is_file() {
            return Err(invalid(format!(
                "model {} does not exist (expected a .safetensors checkpoint written by `medsgm train`)",
                path.display()
            )));
        }
        // name the kind of a medsgm file that is not a score-model checkpoint
        if let Ok(format) = crate::checkpoint::read_format(path) {
            let hint = match format.as_str() {
                crate::checkpoint::FORMAT => None,
                crate::lsgm::trainer::LSGM_FORMAT => Some(
                    "an LSGM (latent) checkpoint: pass it as --latent-model to bench/tune, or give a score-model checkpoint",
                ),
                crate::lsgm::trainer::LSGM_STATE_FORMAT | crate::train::trainer::STATE_FORMAT => {
                    Some("a training state: give the model.safetensors next to it")
                }
                _ => Some("not a medsgm score-model checkpoint"),
            };
            if let Some(hint) = hint {
                return Err(invalid(format!(
                    "model {} is {hint} (format {format:?})",
                    path.display()
                )));
            }
        }
        let device = device()?;
        let ck = Checkpoint::load(path, &device)
            .with_context(|| format!("cannot load the model {}", path.display()))
            .invalid_input()?;
        Self::from_checkpoint(ck, device)
    }

    /// Loads a checkpoint from the bytes of a safetensors file named `what` in errors.
    pub fn from_bytes(bytes: &[u8], what: &str) -> Result<Self> {
        let device = device()?;
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
            condition: None,
        })
    }

    /// The score the solvers sample with (see [`PriorScore`]).
    pub fn prior_score(&self) -> PriorScore<'_> {
        PriorScore {
            net: self.score(),
            condition: self.condition.as_ref(),
        }
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

    /// Fails (invalid input) unless the model is single-channel and `shape` is a non-empty
    /// image. Any matrix size works (the network is fully convolutional, see
    /// [`crate::nn::score::NetScore`]); a prior trained on whole slices of another
    /// size sees anatomy at another scale, which [`LoadedModel::scale_note`] reports.
    pub fn check_image_shape(&self, shape: (usize, usize), what: &str) -> Result<()> {
        if self.channels() != 1 {
            return Err(invalid(format!(
                "the model has {} image channels; reconstruction needs a single-channel model",
                self.channels()
            )));
        }
        if shape.0 < 8 || shape.1 < 8 {
            return Err(invalid(format!(
                "{what} is {}x{}; score reconstruction needs at least 8x8 pixels",
                shape.0, shape.1
            )));
        }
        Ok(())
    }

    /// Pixel spacing (mm) the prior was trained at, when it was trained on real scans at a
    /// known scale (patch priors).
    pub fn pixel_spacing_mm(&self) -> Option<f32> {
        self.meta.pixel_spacing_mm
    }

    /// A warning when an image of `shape` (at `spacing_mm` per pixel, when known) is at
    /// another scale than the prior's training images: a different pixel spacing for priors
    /// that record one (more than 10 % apart), else a size different from the training size.
    pub fn scale_note(&self, shape: (usize, usize), spacing_mm: Option<f32>) -> Option<String> {
        match (self.pixel_spacing_mm(), spacing_mm) {
            (Some(p), Some(s)) if (s / p - 1.0).abs() > 0.1 => Some(format!(
                "the image's pixel spacing {s:.3} mm differs from the prior's {p:.3} mm: anatomy appears at another scale than in training"
            )),
            (Some(_), _) => None,
            (None, _) => {
                let n = self.image_size();
                (shape != (n, n)).then(|| format!(
                    "the image is {}x{} but this whole-slice prior was trained on {n}x{n} images: anatomy appears at another scale than in training",
                    shape.0, shape.1
                ))
            }
        }
    }

    /// One-line description for logs.
    pub fn describe(&self) -> String {
        format!(
            "{}² model, {} ({} training steps; {})",
            self.image_size(),
            self.meta.sde,
            self.meta.step,
            self.meta.dataset
        )
    }
}
