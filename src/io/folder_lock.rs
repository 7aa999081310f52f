//! Exclusive advisory locks on output folders: an `flock` on the folder itself, held for a
//! whole run and released when the process ends (also by kill -9), so a second run writing
//! into the same folder (batch outputs, a training run) is refused instead of mixing its files
//! with the first's.

use anyhow::{Context, Result};
use std::path::Path;

/// The outcome of [`try_lock_folder`].
#[derive(Debug)]
pub enum FolderLock {
    /// Locked until this handle is dropped.
    Held(std::fs::File),
    /// Another process holds the lock.
    Busy,
    /// No advisory locks on this platform (the run goes ahead unlocked).
    Unsupported,
}

/// Tries to lock the existing folder `dir` without waiting.
pub fn try_lock_folder(dir: &Path) -> Result<FolderLock> {
    #[cfg(unix)]
    {
        let handle = std::fs::File::open(dir)
            .with_context(|| format!("cannot open the folder {}", dir.display()))?;
        match handle.try_lock() {
            Ok(()) => Ok(FolderLock::Held(handle)),
            Err(std::fs::TryLockError::WouldBlock) => Ok(FolderLock::Busy),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(anyhow::Error::new(e).context(format!("cannot lock {}", dir.display())))
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(FolderLock::Unsupported)
    }
}
