//! The output folder of a batch run: an exclusive lock for the whole run, the leftovers of a
//! killed run, and DICOM series folders replaced as a whole.

use crate::error::invalid;
use crate::io::folder_lock::{try_lock_folder, FolderLock};
use anyhow::{Context, Result};
use std::path::Path;

/// An exclusive lock on the output folder for the whole run ([`try_lock_folder`]): a second
/// run into the same folder is refused instead of mixing its outputs and summary with the
/// first's.
pub(super) fn lock_output(out_dir: &Path) -> Result<Option<std::fs::File>> {
    match try_lock_folder(out_dir)? {
        FolderLock::Held(f) => Ok(Some(f)),
        FolderLock::Busy => Err(invalid(format!(
            "another medsgm run is writing to {}: wait for it or choose another --output",
            out_dir.display()
        ))),
        FolderLock::Unsupported => Ok(None),
    }
}

/// Prefix of an earlier run's series folder set aside while its replacement is written.
const OLD_PREFIX: &str = ".medsgm-old-";

/// Writes a series folder `out` with `write`, replacing the folder an earlier run wrote there
/// (as NPY and NIfTI outputs are replaced): the old folder is set aside under a hidden name,
/// removed once the new one is in place, and put back if writing fails.
pub(super) fn replace_series(out: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if !out.exists() {
        return write(out);
    }
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let aside = out.with_file_name(format!("{OLD_PREFIX}{name}"));
    let _ = std::fs::remove_dir_all(&aside);
    std::fs::rename(out, &aside)
        .with_context(|| format!("cannot set the earlier output {} aside", out.display()))?;
    match write(out) {
        Ok(()) => {
            let _ = std::fs::remove_dir_all(&aside);
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::rename(&aside, out);
            Err(e)
        }
    }
}

/// Removes the temporary DICOM series folders (`.medsgm-tmp-series-*`) and set-aside earlier
/// series ([`OLD_PREFIX`]) a killed run left in `out_dir` (the lock guarantees no running
/// writer owns them).
pub(super) fn remove_leftovers(out_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(out_dir) else {
        return;
    };
    for e in entries.flatten() {
        let leftover = e
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(".medsgm-tmp-series-") || n.starts_with(OLD_PREFIX));
        if leftover && e.path().is_dir() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}
