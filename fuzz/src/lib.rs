//! Shared helpers of the fuzz targets: medsgm's readers take paths (the file name is part of
//! every error and of format detection), so each input is written to a scratch file first.

use std::path::PathBuf;
use std::sync::OnceLock;

/// A per-process scratch directory, removed at exit.
fn scratch() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("cannot create a scratch directory"))
}

/// Writes `bytes` to the scratch file `name` and returns its path.
pub fn scratch_file(name: &str, bytes: &[u8]) -> PathBuf {
    let p = scratch().path().join(name);
    std::fs::write(&p, bytes).expect("cannot write the scratch file");
    p
}

/// Removes the scratch file `name` if it exists (files absent from a multi-file input).
pub fn remove_scratch_file(name: &str) {
    let _ = std::fs::remove_file(scratch().path().join(name));
}

/// Splits `data` at each occurrence of [`SEPARATOR`] (multi-file inputs such as a measurement
/// with its sidecar and companion mask).
pub fn split_parts(data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some(i) = rest.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
        parts.push(&rest[..i]);
        rest = &rest[i + SEPARATOR.len()..];
    }
    parts.push(rest);
    parts
}

/// Writes a multi-file measurement input (up to four parts split by [`SEPARATOR`]: sidecar
/// JSON, data NPY, `meas.mask.npy`, `meas.metal.npy`) to the scratch files `meas.*`, removing
/// those the input lacks, and returns the data file's path (None without a data part).
pub fn scratch_measurement(data: &[u8]) -> Option<PathBuf> {
    let parts = split_parts(data);
    let names = ["meas.json", "meas.npy", "meas.mask.npy", "meas.metal.npy"];
    let mut data_path = None;
    for (i, name) in names.iter().enumerate() {
        match parts.get(i) {
            Some(bytes) => {
                let p = scratch_file(name, bytes);
                if *name == "meas.npy" {
                    data_path = Some(p);
                }
            }
            None => remove_scratch_file(name),
        }
    }
    data_path
}

/// Boundary between the files of a multi-file input.
pub const SEPARATOR: &[u8] = b"\n=MEDSGM-FUZZ-PART=\n";

/// Checks what every successful read must satisfy: finite values.
pub fn assert_finite<'a>(values: impl IntoIterator<Item = &'a f32>) {
    assert!(
        values.into_iter().all(|v| v.is_finite()),
        "a reader returned non-finite values"
    );
}

/// Lets panics that a reader contains (medsgm wraps the dicom-rs and nifti decoders in
/// `catch_unwind` and turns their panics into errors) be logged instead of aborting, so the
/// fuzzer looks for panics that escape to the caller. libfuzzer-sys's hook aborts on every
/// panic; with `MEDSGM_FUZZ_STRICT=1` it is kept and contained panics are findings too.
pub fn contain_panics() {
    if std::env::var_os("MEDSGM_FUZZ_STRICT").is_none() {
        std::panic::set_hook(Box::new(|info| eprintln!("contained panic: {info}")));
    }
}
