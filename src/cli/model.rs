//! The `--model` argument; the loaded model itself is [`crate::model::LoadedModel`]
//! (re-exported here).

pub use crate::model::{LatentCondition, LoadedModel, PriorScore};
use clap::Args;
use std::path::PathBuf;

/// The `--model` argument.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Trained score model (.safetensors checkpoint written by `medsgm train`).
    #[arg(long)]
    pub model: PathBuf,
}
