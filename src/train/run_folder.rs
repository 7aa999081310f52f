//! The output folder of a training run (`medsgm train --out-dir`): which files belong to a
//! run, locking the folder for the run, refusing to mix two runs (unless resuming or forced),
//! the resume state, the configuration written for provenance, and the memory check before
//! the networks are built.

use crate::error::{invalid, InputContext};
use crate::io::folder_lock::{try_lock_folder, FolderLock};
use crate::io::guard::resolved;
use crate::io::memory::{format_bytes, Budget};
use crate::train::data::DataConfig;
use crate::train::trainer::STATE_FILE;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The files a training run writes into its `--out-dir` (exact names; sample grids are
/// `samples_<step>.png`), removed by `--force` before a new run starts so that the folder never
/// mixes two runs.
pub const RUN_FILES: [&str; 10] = [
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

/// A training run's output folder and how the run treats an earlier run in it.
#[derive(Debug, Clone)]
pub struct RunFolder {
    /// The output folder.
    pub out_dir: PathBuf,
    /// The training configuration file (never deleted by `force`).
    pub config: PathBuf,
    /// Continue the run in the folder.
    pub resume: bool,
    /// Start a new run over an earlier one, removing its files.
    pub force: bool,
}

impl RunFolder {
    /// Claims `--out-dir` before anything reads it: locked when it exists (see
    /// [`lock_run_folder`]), then [`RunFolder::refuse_existing_run`]. A folder that does not
    /// exist yet is created and locked by [`RunFolder::start`], so a refused configuration
    /// leaves nothing behind.
    pub fn claim(&self) -> Result<Option<std::fs::File>> {
        let lock = if self.out_dir.is_dir() {
            lock_run_folder(&self.out_dir)?
        } else {
            None
        };
        self.refuse_existing_run()?;
        Ok(lock)
    }

    /// Without `--resume` or `--force`, an `--out-dir` holding any file of a training run (its
    /// configuration, checkpoint, state, log, plots) is invalid input: a new run would replace or
    /// mix with them. A `--config` inside those files is refused even with `--force`.
    pub fn refuse_existing_run(&self) -> Result<()> {
        let existing = run_files_in(&self.out_dir);
        if self.force {
            let config = resolved(&self.config);
            if let Some(p) = existing.iter().find(|p| resolved(p) == config) {
                return Err(invalid(format!(
                    "--force would delete the training configuration {} (it is a file of the run in {}): copy it elsewhere first",
                    p.display(),
                    self.out_dir.display()
                )));
            }
        }
        if self.resume || self.force {
            return Ok(());
        }
        if let Some(p) = existing.first() {
            return Err(invalid(format!(
                "{} already holds a training run ({}): --resume continues it, --force starts over",
                self.out_dir.display(),
                p.display()
            )));
        }
        Ok(())
    }

    /// Before a run writes anything: creates `--out-dir` and locks it unless
    /// [`RunFolder::claim`] already holds the lock, and with `--force` removes the earlier run's
    /// files (see [`RUN_FILES`]) so that the folder describes the new run only. Returns the lock,
    /// held until the run ends.
    pub fn start(&self, lock: Option<std::fs::File>) -> Result<Option<std::fs::File>> {
        std::fs::create_dir_all(&self.out_dir)
            .with_context(|| format!("creating {}", self.out_dir.display()))?;
        let lock = match lock {
            Some(l) => Some(l),
            None => lock_run_folder(&self.out_dir)?,
        };
        if self.force {
            for p in run_files_in(&self.out_dir) {
                std::fs::remove_file(&p).with_context(|| {
                    format!("--force: cannot remove the earlier run's {}", p.display())
                })?;
            }
        }
        Ok(lock)
    }

    /// The state file of `--resume` (an error naming it when missing).
    pub fn resume_state(&self) -> Result<PathBuf> {
        let state = self.out_dir.join(STATE_FILE);
        if !state.exists() {
            return Err(invalid(format!(
                "--resume: {} does not exist",
                state.display()
            )));
        }
        Ok(state)
    }
}

/// The run files of a training run present in `dir` (see [`RUN_FILES`]).
pub fn run_files_in(dir: &Path) -> Vec<PathBuf> {
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
pub fn lock_run_folder(dir: &Path) -> Result<Option<std::fs::File>> {
    match try_lock_folder(dir)? {
        FolderLock::Held(f) => Ok(Some(f)),
        FolderLock::Busy => Err(invalid(format!(
            "another medsgm run is training into {}: wait for it to finish or choose another --out-dir",
            dir.display()
        ))),
        FolderLock::Unsupported => Ok(None),
    }
}

/// Writes the configuration next to the checkpoint for provenance.
pub fn write_config<C: serde::Serialize>(dir: &std::path::Path, config: &C) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    crate::io::atomic::write_bytes_atomic(
        &dir.join("config.toml"),
        toml::to_string_pretty(config)?.as_bytes(),
    )
}

/// The top-level tables of the TOML file at `path`: a `[vae]` table marks an LSGM run, an
/// `[encoder]` table a ScoreVAE encoder ([`crate::scorevae::ScoreVaeConfig::is_scorevae`]).
pub fn config_table(path: &std::path::Path) -> Result<toml::Table> {
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
pub fn check_memory(
    config: &Path,
    budget: &Budget,
    networks: u64,
    data: &DataConfig,
    size: usize,
) -> Result<()> {
    let config = config.display();
    budget.check(&format!("the training configuration {config}"), networks)?;
    let Some(path) = data.path() else {
        return Ok(());
    };
    let data_bytes = data.memory_bytes(size).invalid_input()?;
    budget.check(
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
