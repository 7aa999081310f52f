//! Self-describing safetensors checkpoints of a score network.
//!
//! A checkpoint holds the model weights (plain names) and their EMA (prefix `ema.`); the
//! safetensors metadata key [`META_KEY`] holds [`CheckpointMeta`] as JSON: format and crate
//! version, network and SDE configuration, intensity normalisation, training step, seed and a
//! dataset description. Files are written atomically (temporary file in the same directory,
//! then rename).

use crate::nn::{Ncsnpp, NcsnppConfig};
use anyhow::{bail, Context};
use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

/// Metadata key under which the JSON description is stored.
pub const META_KEY: &str = "medsgm";
/// Value of [`CheckpointMeta::format`] for model checkpoints.
pub const FORMAT: &str = "medsgm-checkpoint";
/// Newest checkpoint layout this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Name prefix of the EMA copy of the weights.
pub const EMA_PREFIX: &str = "ema.";

/// Intensity normalisation that maps raw images to the network's [0, 1] range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Normalization {
    /// CT: HU window [lo, hi] mapped linearly to [0, 1] and clipped.
    CtHuWindow {
        /// HU mapped to 0.
        lo: f32,
        /// HU mapped to 1.
        hi: f32,
    },
    /// MRI: magnitude divided by its p-th percentile and clipped to [0, 1].
    MriPercentile {
        /// The percentile p (e.g. 99.5).
        p: f32,
    },
    /// Data already in [0, 1] (phantoms, PNG).
    Identity,
}

/// Everything needed to rebuild and use a network without the training configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Always [`FORMAT`].
    pub format: String,
    /// Layout version ([`FORMAT_VERSION`] when written by this build).
    pub format_version: u32,
    /// `CARGO_PKG_VERSION` of the medsgm build that wrote the file.
    pub medsgm_version: String,
    /// Network hyper-parameters.
    pub model: NcsnppConfig,
    /// Parameters of the forward SDE the network was trained for.
    pub sde: medsgm_recon::SdeConfig,
    /// Intensity normalisation of the training data.
    pub normalization: Normalization,
    /// Optimiser steps taken.
    pub step: u64,
    /// Training seed.
    pub seed: u64,
    /// Free-form description of the training data.
    pub dataset: String,
    /// Pixel spacing (mm) of the training images, when they had a physical scale (patch
    /// priors trained at the native spacing of real scans); inputs at another spacing are
    /// resampled to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pixel_spacing_mm: Option<f32>,
    /// The out-of-distribution threshold of the denoising residual, calibrated on held-out
    /// slices by `medsgm calibrate` ([`crate::eval::typicality`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typicality: Option<crate::eval::typicality::Calibration>,
}

impl CheckpointMeta {
    /// Metadata for a network trained by this build.
    pub fn new(
        model: NcsnppConfig,
        sde: medsgm_recon::SdeConfig,
        normalization: Normalization,
        step: u64,
        seed: u64,
        dataset: impl Into<String>,
    ) -> Self {
        Self {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            medsgm_version: env!("CARGO_PKG_VERSION").into(),
            model,
            sde,
            normalization,
            step,
            seed,
            dataset: dataset.into(),
            pixel_spacing_mm: None,
            typicality: None,
        }
    }
}

/// Model weights, their EMA and the metadata.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// Description (configs, normalisation, step, ...).
    pub meta: CheckpointMeta,
    /// Network parameters by name.
    pub weights: HashMap<String, Tensor>,
    /// EMA of the network parameters by name (same names as `weights`).
    pub ema: HashMap<String, Tensor>,
}

/// Writes `tensors` with `meta` (JSON under [`META_KEY`]) to `path` atomically.
pub fn write_safetensors_atomic<M: Serialize>(
    path: &Path,
    tensors: &[(String, Tensor)],
    meta: &M,
) -> anyhow::Result<()> {
    let json = serde_json::to_string(meta).context("serialising checkpoint metadata")?;
    let info = HashMap::from([(META_KEY.to_string(), json)]);
    let bytes = safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), Some(info))
        .with_context(|| format!("encoding {}", path.display()))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(&bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("renaming the temporary file to {}", path.display()))?;
    Ok(())
}

/// Reads a safetensors file and the JSON stored under [`META_KEY`].
pub fn read_safetensors<M: for<'de> Deserialize<'de>>(
    path: &Path,
    device: &Device,
) -> anyhow::Result<(HashMap<String, Tensor>, M)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    parse_safetensors(&bytes, &path.display().to_string(), device)
}

/// The `format` field of the medsgm metadata of the safetensors file at `path`, read from the
/// header without decoding tensors: tells a score-model checkpoint ([`FORMAT`]) from an LSGM
/// one (`crate::lsgm::trainer::LSGM_FORMAT`) or a training-state file.
pub fn read_format(path: &Path) -> anyhow::Result<String> {
    #[derive(Deserialize)]
    struct Format {
        format: String,
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .with_context(|| format!("{} is not a safetensors file", path.display()))?;
    let json = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(META_KEY))
        .with_context(|| {
            format!(
                "{} has no '{META_KEY}' metadata (not written by medsgm)",
                path.display()
            )
        })?;
    let f: Format = serde_json::from_str(json)
        .with_context(|| format!("{}: unreadable '{META_KEY}' metadata", path.display()))?;
    Ok(f.format)
}

/// Decodes safetensors `bytes` (named `what` in errors) and the JSON stored under
/// [`META_KEY`].
pub fn parse_safetensors<M: for<'de> Deserialize<'de>>(
    bytes: &[u8],
    what: &str,
    device: &Device,
) -> anyhow::Result<(HashMap<String, Tensor>, M)> {
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes)
        .with_context(|| format!("{what} is not a safetensors file"))?;
    let json = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(META_KEY))
        .with_context(|| format!("{what} has no '{META_KEY}' metadata (not written by medsgm)"))?;
    let meta = serde_json::from_str(json)
        .with_context(|| format!("{what}: unreadable '{META_KEY}' metadata"))?;
    let tensors = candle_core::safetensors::load_buffer(bytes, device)
        .with_context(|| format!("decoding tensors of {what}"))?;
    Ok((tensors, meta))
}

impl Checkpoint {
    /// Writes the checkpoint atomically to `path`.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let mut tensors: Vec<(String, Tensor)> = self
            .weights
            .iter()
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect();
        tensors.extend(
            self.ema
                .iter()
                .map(|(n, t)| (format!("{EMA_PREFIX}{n}"), t.clone())),
        );
        write_safetensors_atomic(path, &tensors, &self.meta)
    }

    /// Reads and validates a checkpoint (format, version, configurations, EMA completeness).
    pub fn load(path: &Path, device: &Device) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Self::from_bytes(&bytes, &path.display().to_string(), device)
    }

    /// [`Checkpoint::load`] from the bytes of a safetensors file (e.g. a model embedded with
    /// `include_bytes!`); `what` names the source in errors.
    pub fn from_bytes(bytes: &[u8], what: &str, device: &Device) -> anyhow::Result<Self> {
        let (tensors, meta): (_, CheckpointMeta) = parse_safetensors(bytes, what, device)?;
        if meta.format != FORMAT {
            bail!(
                "{what}: format '{}' is not a model checkpoint ('{FORMAT}')",
                meta.format
            )
        }
        if meta.format_version > FORMAT_VERSION {
            bail!(
                "{what}: checkpoint format version {} is newer than this medsgm ({FORMAT_VERSION}, version {}); it was written by medsgm {}",
                meta.format_version,
                env!("CARGO_PKG_VERSION"),
                meta.medsgm_version
            )
        }
        meta.model
            .validate()
            .map_err(|e| anyhow::anyhow!("{what}: invalid model config: {e}"))?;
        meta.sde
            .build()
            .with_context(|| format!("{what}: invalid SDE parameters"))?;
        let (mut weights, mut ema) = (HashMap::new(), HashMap::new());
        for (name, t) in tensors {
            match name.strip_prefix(EMA_PREFIX) {
                Some(base) => ema.insert(base.to_string(), t),
                None => weights.insert(name, t),
            };
        }
        if let Some(missing) = weights.keys().find(|n| !ema.contains_key(*n)) {
            bail!("{what}: EMA copy of '{missing}' is missing")
        }
        Ok(Self { meta, weights, ema })
    }

    /// Builds the network from the EMA weights (`use_ema`, for sampling) or the raw weights;
    /// fails with the offending parameter when the tensors do not match the stored config.
    pub fn network(&self, use_ema: bool, device: &Device) -> anyhow::Result<Ncsnpp> {
        let source = if use_ema { &self.ema } else { &self.weights };
        let tensors = source
            .iter()
            // Detached: a network built from training `Var`s would record every forward op,
            // and a sampler's chain of evaluations would keep all activations alive (the
            // trainer's sample grids ran out of 24 GiB this way).
            .map(|(n, t)| Ok((n.clone(), t.detach().to_device(device)?)))
            .collect::<candle_core::Result<HashMap<_, _>>>()?;
        let vb = VarBuilder::from_tensors(tensors, candle_core::DType::F32, device);
        Ncsnpp::new(&self.meta.model, vb)
            .context("checkpoint weights do not match its model configuration")
    }
}
