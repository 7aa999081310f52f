//! `medsgm train --config configs/<name>.toml --out-dir <dir> [--resume]`: denoising
//! score-matching training of the NCSN++-style score network (see [`crate::train`]).

use crate::cli::{invalid, InputContext};
use crate::train::data::build_source;
use crate::train::trainer::{Trainer, STATE_FILE};
use crate::train::TrainConfig;
use anyhow::{Context, Result};
use candle_core::Device;
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
    /// Override the total number of steps of the configuration.
    #[arg(long)]
    pub steps: Option<u64>,
}

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

/// Runs `medsgm train`.
pub fn run(a: &TrainArgs) -> Result<()> {
    let mut config = TrainConfig::from_toml_file(&a.config).invalid_input()?;
    if let Some(steps) = a.steps {
        if steps == 0 {
            return Err(invalid("--steps must be positive"));
        }
        config.steps = steps;
    }
    let device = device()?;
    let size = config.model.image_size;
    let state = a.out_dir.join(STATE_FILE);
    let mut trainer = if a.resume {
        if !state.exists() {
            return Err(invalid(format!(
                "--resume: {} does not exist",
                state.display()
            )));
        }
        let data = build_source(&config.data, size, config.seed).invalid_input()?;
        let mut t = Trainer::resume(&state, data, &device).invalid_input()?;
        t.set_total_steps(config.steps);
        if a.reset_ema {
            t.reset_ema()?;
        }
        t
    } else {
        let data = build_source(&config.data, size, config.seed).invalid_input()?;
        Trainer::new(config, data, &device)?
    };
    let n_params: usize = trainer.parameters().values().map(|t| t.elem_count()).sum();
    eprintln!(
        "training {} parameters on {} ({}), step {} of {}",
        n_params,
        trainer.describe_data(),
        if device.is_cpu() { "cpu" } else { "cuda" },
        trainer.step(),
        trainer.config().steps
    );
    std::fs::create_dir_all(&a.out_dir)
        .with_context(|| format!("creating {}", a.out_dir.display()))?;
    // Keep the configuration next to the checkpoint for provenance.
    crate::io::atomic::write_bytes_atomic(
        &a.out_dir.join("config.toml"),
        toml::to_string_pretty(trainer.config())?.as_bytes(),
    )?;
    trainer.run(&a.out_dir)
}
