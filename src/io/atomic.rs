//! Atomic file output: every medsgm writer goes through [`write_atomic`], so a failed run never
//! leaves a partial or truncated output file behind.
//!
//! The data are written to a uniquely named temporary file in the destination directory, flushed
//! and `fsync`ed, then renamed over the destination (an atomic operation on POSIX file systems
//! when source and destination share a directory); the directory is fsynced afterwards so the
//! rename itself survives a crash. On any error the temporary file is removed.

use anyhow::{Context, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A temporary-file builder for outputs: on Unix the temporary file or folder is created with
/// mode 0666 / 0777 less the process umask — what a plain `File::create` / `create_dir` gives —
/// so outputs renamed into place are as readable as the user's other files (tempfile's default
/// is 0600 / 0700).
pub fn output_builder<'a>(dir: bool) -> tempfile::Builder<'a, 'a> {
    let mut b = tempfile::Builder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(std::fs::Permissions::from_mode(if dir {
            0o777
        } else {
            0o666
        }));
    }
    #[cfg(not(unix))]
    let _ = dir;
    b
}

/// The directory a path lives in (`.` for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Writes `path` atomically: `fill` receives a buffered writer on a temporary file in the same
/// directory; the file is only renamed to `path` when `fill` succeeds and the data reach the disk.
pub fn write_atomic<F>(path: &Path, fill: F) -> Result<()>
where
    F: FnOnce(&mut dyn Write) -> Result<()>,
{
    write_atomic_with_temp(path, |tmp| {
        let file = File::create(tmp)?;
        let mut w = BufWriter::new(file);
        fill(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(())
    })
}

/// Writes `bytes` to `path` atomically.
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, |w| Ok(w.write_all(bytes)?))
}

/// Atomic write for libraries that insist on writing to a path themselves (the NIfTI writer):
/// `fill` writes a complete file at the temporary path it is given (which keeps the destination's
/// file-name suffix, e.g. `.nii.gz`, so format detection by extension still works); the result
/// is fsynced and renamed to `path`.
pub fn write_atomic_with_temp<F>(path: &Path, fill: F) -> Result<()>
where
    F: FnOnce(&Path) -> Result<()>,
{
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .with_context(|| format!("output path {} has no file name", path.display()))?
        .to_string_lossy()
        .into_owned();
    if !dir.is_dir() {
        anyhow::bail!(
            "cannot write {}: directory {} does not exist",
            path.display(),
            dir.display()
        );
    }
    // A unique hidden temporary name with the destination's full name as suffix.
    let tmp = output_builder(false)
        .prefix(".medsgm-tmp-")
        .suffix(&format!("-{name}"))
        .tempfile_in(&dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    let tmp_path = tmp.into_temp_path();
    fill(&tmp_path).with_context(|| format!("writing {} failed", path.display()))?;
    File::open(&tmp_path)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot sync the data for {}", path.display()))?;
    tmp_path
        .persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot rename the temporary file onto {}", path.display()))?;
    // Persist the directory entry as well; not all platforms allow opening directories.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// Outputs get the permissions a plain create would (umask applied), not tempfile's 0600.
    #[cfg(unix)]
    #[test]
    fn outputs_honour_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::File::create(&plain).unwrap();
        let out = dir.path().join("out.bin");
        write_bytes_atomic(&out, b"x").unwrap();
        let mode = |p: &std::path::Path| p.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&out), mode(&plain));
        let plain_dir = dir.path().join("plain_dir");
        std::fs::create_dir(&plain_dir).unwrap();
        let tmp_dir = output_builder(true).tempdir_in(dir.path()).unwrap();
        assert_eq!(mode(tmp_dir.path()), mode(&plain_dir));
    }

    use super::*;

    #[test]
    fn failed_fill_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.bin");
        let err = write_atomic(&out, |w| {
            w.write_all(b"partial")?;
            anyhow::bail!("simulated failure")
        });
        assert!(err.is_err());
        assert!(!out.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn success_replaces_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.bin");
        std::fs::write(&out, b"old contents that are longer").unwrap();
        write_bytes_atomic(&out, b"new").unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("no/such/dir/out.bin");
        let err = write_bytes_atomic(&out, b"x").unwrap_err();
        assert!(format!("{err:#}").contains("does not exist"));
    }
}
