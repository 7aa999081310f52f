//! `medsgm train --config configs/<name>.toml --out-dir <dir> [--resume]`: denoising
//! score-matching training of the NCSN++-style score network (see [`crate::train`]), or, for a
//! configuration with a `[vae]` table (`configs/lsgm_*.toml`), LSGM training: VAE pretraining,
//! then the latent score prior, disjoint or joint (see [`crate::lsgm`]). Both write their
//! checkpoint, `train_state.safetensors`, `train_log.csv`, `loss.png` and sample grids into
//! `--out-dir` and resume bit for bit.

use crate::cli::args::MemoryArgs;
use crate::cli::{invalid, InputContext};
use crate::io::folder_lock::{try_lock_folder, FolderLock};
use crate::io::guard::resolved;
use crate::io::memory::format_bytes;
use crate::lsgm::{LsgmConfig, LsgmTrainer};
use crate::model::device;
use crate::train::config::MAX_STEPS;
use crate::train::data::{build_source, DataConfig};
use crate::train::trainer::{Trainer, STATE_FILE};
use crate::train::TrainConfig;
use anyhow::{Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};

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

/// The files a training run writes into its `--out-dir` (exact names; sample grids are
/// `samples_<step>.png`), removed by `--force` before a new run starts so that the folder never
/// mixes two runs.
const RUN_FILES: [&str; 10] = [
    "config.toml",
    "model.safetensors",
    "lsgm.safetensors",
    crate::scorevae::trainer::ENCODER_FILE,
    STATE_FILE,
    "train_log.csv",
    "loss.png",
    "loss_vae.png",
    "loss_prior.png",
    "samples_",
];

/// The top-level tables of the TOML file at `path`: a `[vae]` table marks an LSGM run, an
/// `[encoder]` table a ScoreVAE encoder ([`crate::scorevae::ScoreVaeConfig::is_scorevae`]).
fn config_table(path: &std::path::Path) -> Result<toml::Table> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading {}", path.display()))
        .invalid_input()?;
    text.parse()
        .with_context(|| format!("parsing {}", path.display()))
        .invalid_input()
}

/// Refuses (invalid input) a run over the memory budget: first the networks' estimate
/// `networks` (bytes) of the configuration alone, then with the memory of its data source
/// for `size²` images ([`DataConfig::memory_bytes`], from the files' headers), naming the data,
/// before any image is decoded.
fn check_memory(a: &TrainArgs, networks: u64, data: &DataConfig, size: usize) -> Result<()> {
    let config = a.config.display();
    a.memory
        .check(&format!("the training configuration {config}"), networks)?;
    let Some(path) = data.path() else {
        return Ok(());
    };
    let data_bytes = data.memory_bytes(size).invalid_input()?;
    a.memory.check(
        &format!(
            "the training data {} ({} for {size}² images, on top of the {} of the networks \
             of {config})",
            path.display(),
            format_bytes(data_bytes),
            format_bytes(networks)
        ),
        networks.saturating_add(data_bytes),
    )
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
    let lock = claim_run_folder(a)?;
    let size = config.model.image_size;
    check_memory(a, config.memory_bytes(), &config.data, size)?;
    let device = device()?;
    let mut trainer = if a.resume {
        let data = build_source(&config.data, size, config.seed).invalid_input()?;
        let mut t = Trainer::resume(&resume_state(a)?, data, &device).invalid_input()?;
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
    let _lock = start_run(a, lock)?;
    write_config(&a.out_dir, trainer.config())?;
    if !a.resume {
        // the step-0 state: a run killed in its first steps is resumable
        trainer.save_state(&a.out_dir.join(STATE_FILE))?;
    }
    trainer.run(&a.out_dir)
}

/// The run files of a training run present in `dir` (see [`RUN_FILES`]).
fn run_files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            RUN_FILES.iter().any(|f| match f.strip_suffix('_') {
                Some(prefix) => name.starts_with(&format!("{prefix}_")) && name.ends_with(".png"),
                None => name == *f,
            })
        })
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

/// Locks the existing folder `dir` for the whole run ([`try_lock_folder`]): a second
/// `medsgm train` into the same folder (e.g. a resume started twice) would interleave
/// checkpoints and training states, so it is refused.
fn lock_run_folder(dir: &Path) -> Result<Option<std::fs::File>> {
    match try_lock_folder(dir)? {
        FolderLock::Held(f) => Ok(Some(f)),
        FolderLock::Busy => Err(invalid(format!(
            "another medsgm run is training into {}: wait for it to finish or choose another --out-dir",
            dir.display()
        ))),
        FolderLock::Unsupported => Ok(None),
    }
}

/// Claims `--out-dir` before anything reads it: locked when it exists (see
/// [`lock_run_folder`]), then [`refuse_existing_run`]. A folder that does not exist yet is
/// created and locked by [`start_run`], so a refused configuration leaves nothing behind.
fn claim_run_folder(a: &TrainArgs) -> Result<Option<std::fs::File>> {
    let lock = if a.out_dir.is_dir() {
        lock_run_folder(&a.out_dir)?
    } else {
        None
    };
    refuse_existing_run(a)?;
    Ok(lock)
}

/// Without `--resume` or `--force`, an `--out-dir` holding any file of a training run (its
/// configuration, checkpoint, state, log, plots) is invalid input: a new run would replace or
/// mix with them. A `--config` inside those files is refused even with `--force`.
fn refuse_existing_run(a: &TrainArgs) -> Result<()> {
    let existing = run_files_in(&a.out_dir);
    if a.force {
        let config = resolved(&a.config);
        if let Some(p) = existing.iter().find(|p| resolved(p) == config) {
            return Err(invalid(format!(
                "--force would delete the training configuration {} (it is a file of the run in {}): copy it elsewhere first",
                p.display(),
                a.out_dir.display()
            )));
        }
    }
    if a.resume || a.force {
        return Ok(());
    }
    if let Some(p) = existing.first() {
        return Err(invalid(format!(
            "{} already holds a training run ({}): --resume continues it, --force starts over",
            a.out_dir.display(),
            p.display()
        )));
    }
    Ok(())
}

/// Before a run writes anything: creates `--out-dir` and locks it unless
/// [`claim_run_folder`] already holds the lock, and with `--force` removes the earlier run's
/// files (see [`RUN_FILES`]) so that the folder describes the new run only. Returns the lock,
/// held until the run ends.
fn start_run(a: &TrainArgs, lock: Option<std::fs::File>) -> Result<Option<std::fs::File>> {
    std::fs::create_dir_all(&a.out_dir)
        .with_context(|| format!("creating {}", a.out_dir.display()))?;
    let lock = match lock {
        Some(l) => Some(l),
        None => lock_run_folder(&a.out_dir)?,
    };
    if a.force {
        for p in run_files_in(&a.out_dir) {
            std::fs::remove_file(&p).with_context(|| {
                format!("--force: cannot remove the earlier run's {}", p.display())
            })?;
        }
    }
    Ok(lock)
}

/// The state file of `--resume` (an error naming it when missing).
fn resume_state(a: &TrainArgs) -> Result<PathBuf> {
    let state = a.out_dir.join(STATE_FILE);
    if !state.exists() {
        return Err(invalid(format!(
            "--resume: {} does not exist",
            state.display()
        )));
    }
    Ok(state)
}

/// Writes the configuration next to the checkpoint for provenance.
fn write_config<C: serde::Serialize>(dir: &std::path::Path, config: &C) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    crate::io::atomic::write_bytes_atomic(
        &dir.join("config.toml"),
        toml::to_string_pretty(config)?.as_bytes(),
    )
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
    let lock = claim_run_folder(a)?;
    check_memory(
        a,
        config.memory_bytes(),
        &config.data,
        config.encoder.image_size,
    )?;
    let device = device()?;
    let mut trainer = if a.resume {
        ScoreVaeTrainer::resume(config, &resume_state(a)?, &device)
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
    let _lock = start_run(a, lock)?;
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
    let lock = claim_run_folder(a)?;
    check_memory(
        a,
        config.memory_bytes(),
        &config.data,
        config.vae.image_size,
    )?;
    let device = device()?;
    let data = build_source(&config.data, config.vae.image_size, config.seed).invalid_input()?;
    let (mut trainer, recorded) = if a.resume {
        let mut t = LsgmTrainer::resume(&resume_state(a)?, data, &device).invalid_input()?;
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
    let _lock = start_run(a, lock)?;
    // the resumed run's configuration with the new data source it trains on
    write_config(&a.out_dir, &recorded)?;
    if !a.resume {
        trainer.save_state(&a.out_dir.join(STATE_FILE))?;
    }
    trainer.run(&a.out_dir)
}
