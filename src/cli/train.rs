//! `medsgm train --config configs/<name>.toml --out-dir <dir> [--resume]`: denoising
//! score-matching training of the NCSN++-style score network (see [`crate::train::request`]), or, for a
//! configuration with a `[vae]` table (`configs/lsgm_*.toml`), LSGM training: VAE pretraining,
//! then the latent score prior, disjoint or joint (see [`crate::lsgm`]). Both write their
//! checkpoint, `train_state.safetensors`, `train_log.csv`, `loss.png` and sample grids into
//! `--out-dir` and resume bit for bit.

use crate::cli::args::MemoryArgs;
use crate::train::request::TrainRequest;
use crate::train::run_folder::RunFolder;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `medsgm train`.
#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// Training configuration (TOML: model, SDE, data, optimiser, schedule).
    #[arg(long)]
    pub config: PathBuf,
    /// Output directory: model.safetensors, train_state.safetensors, loss.png, sample grids.
    #[arg(long)]
    pub out_dir: PathBuf,
    /// Continue from `<out-dir>/train_state.safetensors` (bit-for-bit with an uninterrupted run).
    #[arg(long)]
    pub resume: bool,
    /// With --resume: restart the EMA of the weights at the current weights.
    #[arg(long, requires = "resume")]
    pub reset_ema: bool,
    /// Override the total number of steps of the configuration (LSGM: of stage 2).
    #[arg(long)]
    pub steps: Option<u64>,
    /// Start a new run in an --out-dir that already holds one (its checkpoint and state are
    /// replaced); without it such a folder needs --resume.
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,
    /// Memory budget (the configuration's estimated training memory is checked before the
    /// networks are built).
    #[command(flatten)]
    pub memory: MemoryArgs,
}

/// Runs `medsgm train`.
pub fn run(a: &TrainArgs) -> Result<()> {
    TrainRequest {
        folder: RunFolder {
            out_dir: a.out_dir.clone(),
            config: a.config.clone(),
            resume: a.resume,
            force: a.force,
        },
        reset_ema: a.reset_ema,
        steps: a.steps,
        budget: a.memory.budget(),
    }
    .run()
}
