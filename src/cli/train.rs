//! `medsgm train --config configs/<name>.toml --out-dir <dir> [--resume]`: denoising
//! score-matching training of the NCSN++-style score network (see [`crate::train`]), or, for a
//! configuration with a `[vae]` table (`configs/lsgm_*.toml`), LSGM training: VAE pretraining,
//! then the latent score prior, disjoint or joint (see [`crate::lsgm`]). Both write their
//! checkpoint, `train_state.safetensors`, `train_log.csv`, `loss.png` and sample grids into
//! `--out-dir` and resume bit for bit.

use crate::cli::args::MemoryArgs;
use crate::cli::{invalid, InputContext};
use crate::lsgm::{LsgmConfig, LsgmTrainer};
use crate::model::device;
use crate::train::config::MAX_STEPS;
use crate::train::data::{build_source, DataConfig};
use crate::train::run_folder::{config_table, write_config, RunFolder};
use crate::train::trainer::{Trainer, STATE_FILE};
use crate::train::TrainConfig;
use anyhow::{Context, Result};
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

impl TrainArgs {
    /// The run's output folder.
    fn folder(&self) -> RunFolder {
        RunFolder {
            out_dir: self.out_dir.clone(),
            config: self.config.clone(),
            resume: self.resume,
            force: self.force,
        }
    }
}

/// Refuses (invalid input) a run over `--max-memory` (see
/// [`crate::train::run_folder::check_memory`]).
fn check_memory(a: &TrainArgs, networks: u64, data: &DataConfig, size: usize) -> Result<()> {
    crate::train::run_folder::check_memory(&a.config, &a.memory.budget(), networks, data, size)
}

/// Runs `medsgm train`.
pub fn run(a: &TrainArgs) -> Result<()> {
    if let Some(steps) = a.steps.filter(|s| !(1..=MAX_STEPS).contains(s)) {
        return Err(invalid(format!(
            "--steps {steps} must be in 1..={MAX_STEPS}"
        )));
    }
    let doc = config_table(&a.config)?;
    if doc.contains_key("vae") {
        return run_lsgm(a);
    }
    if crate::scorevae::ScoreVaeConfig::is_scorevae(&doc) {
        return run_scorevae(a);
    }
    let mut config = TrainConfig::from_toml_file(&a.config).invalid_input()?;
    if let Some(steps) = a.steps {
        config.steps = steps;
    }
    let lock = a.folder().claim()?;
    let size = config.model.image_size;
    check_memory(a, config.memory_bytes(), &config.data, size)?;
    let device = device()?;
    let mut trainer = if a.resume {
        let data = build_source(&config.data, size, config.seed).invalid_input()?;
        let mut t = Trainer::resume(&a.folder().resume_state()?, data, &device).invalid_input()?;
        t.continue_with(&config)
            .with_context(|| format!("--resume with {}", a.config.display()))
            .invalid_input()?;
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
    let _lock = a.folder().start(lock)?;
    write_config(&a.out_dir, trainer.config())?;
    if !a.resume {
        // the step-0 state: a run killed in its first steps is resumable
        trainer.save_state(&a.out_dir.join(STATE_FILE))?;
    }
    trainer.run(&a.out_dir)
}

/// LSGM training (`[vae]` configurations).
/// ScoreVAE encoder training against its frozen prior (`[encoder]` configurations,
/// [`crate::scorevae::trainer`]).
fn run_scorevae(a: &TrainArgs) -> Result<()> {
    use crate::scorevae::trainer::ScoreVaeTrainer;
    let mut config = crate::scorevae::ScoreVaeConfig::from_toml_file(&a.config).invalid_input()?;
    if let Some(steps) = a.steps {
        config.steps = steps;
    }
    if a.reset_ema {
        return Err(invalid(
            "--reset-ema does not apply to a ScoreVAE encoder (it keeps no EMA)",
        ));
    }
    let lock = a.folder().claim()?;
    check_memory(
        a,
        config.memory_bytes(),
        &config.data,
        config.encoder.image_size,
    )?;
    let device = device()?;
    let mut trainer = if a.resume {
        ScoreVaeTrainer::resume(config, &a.folder().resume_state()?, &device)
            .with_context(|| format!("--resume with {}", a.config.display()))
            .invalid_input()?
    } else {
        ScoreVaeTrainer::new(config, &device).invalid_input()?
    };
    eprintln!(
        "ScoreVAE: training {} encoder parameters against the frozen prior {}, step {} of {}",
        trainer.parameters(),
        trainer.config().prior.display(),
        trainer.step(),
        trainer.config().steps
    );
    let _lock = a.folder().start(lock)?;
    write_config(&a.out_dir, trainer.config())?;
    if !a.resume {
        trainer.save(&a.out_dir)?;
    }
    trainer.run(&a.out_dir)
}

fn run_lsgm(a: &TrainArgs) -> Result<()> {
    let mut config = LsgmConfig::from_toml_file(&a.config).invalid_input()?;
    if let Some(steps) = a.steps {
        config.prior_steps = steps;
    }
    let lock = a.folder().claim()?;
    check_memory(
        a,
        config.memory_bytes(),
        &config.data,
        config.vae.image_size,
    )?;
    let device = device()?;
    let data = build_source(&config.data, config.vae.image_size, config.seed).invalid_input()?;
    let (mut trainer, recorded) = if a.resume {
        let mut t =
            LsgmTrainer::resume(&a.folder().resume_state()?, data, &device).invalid_input()?;
        let resumed = t
            .config()
            .resumed_with(&config)
            .with_context(|| format!("--resume with {}", a.config.display()))
            .invalid_input()?;
        t.set_prior_steps(resumed.prior_steps);
        if a.reset_ema {
            t.reset_ema()?;
        }
        (t, resumed)
    } else {
        (LsgmTrainer::new(config.clone(), data, &device)?, config)
    };
    eprintln!(
        "LSGM: training {} parameters on {} ({}), VAE step {} of {}, {:?} stage-2 step {} of {}",
        trainer.num_parameters(),
        trainer.describe_data(),
        if device.is_cpu() { "cpu" } else { "cuda" },
        trainer.vae_step(),
        trainer.config().vae_steps,
        trainer.config().stage2,
        trainer.prior_step(),
        trainer.config().prior_steps
    );
    let _lock = a.folder().start(lock)?;
    // the resumed run's configuration with the new data source it trains on
    write_config(&a.out_dir, &recorded)?;
    if !a.resume {
        trainer.save_state(&a.out_dir.join(STATE_FILE))?;
    }
    trainer.run(&a.out_dir)
}
