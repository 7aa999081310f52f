//! Helpers shared by the integration tests that run the `medsgm` binary
//! (`mod common;` in each test file; not every file uses every helper).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// `medsgm <args>` run in `cwd`, ready for extra settings (environment) before it runs.
pub fn command(args: &[&str], cwd: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_medsgm"));
    c.args(args).current_dir(cwd);
    c
}

/// Runs `medsgm <args>` in `cwd` and returns its exit status and output.
pub fn medsgm(args: &[&str], cwd: &Path) -> Output {
    command(args, cwd).output().expect("cannot run medsgm")
}

/// Asserts exit code 0, showing the command's stderr otherwise.
pub fn ok(o: &Output) {
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Runs `medsgm <args>` in `cwd`, asserts exit code 0 and returns its stdout.
pub fn run_ok(args: &[&str], cwd: &Path) -> String {
    let o = medsgm(args, cwd);
    assert_eq!(
        o.status.code(),
        Some(0),
        "medsgm {args:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs a command that must fail with exit code 2 and a message containing `expected`.
pub fn fails_with_2(args: &[&str], cwd: &Path, expected: &str) {
    let o = medsgm(args, cwd);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "medsgm {args:?}: {err}");
    assert!(err.contains(expected), "medsgm {args:?}: {err}");
}

/// The tiny training configuration (`configs/test_tiny.toml`) with `data` as its `[data]`
/// table, written to `dir/c.toml`; returns that path.
pub fn tiny_config_with(dir: &Path, data: &str) -> std::path::PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut config = std::fs::read_to_string(root.join("configs/test_tiny.toml")).unwrap();
    config.truncate(config.find("[data]").unwrap());
    config.push_str(data);
    let path = dir.join("c.toml");
    std::fs::write(&path, config).unwrap();
    path
}

/// `data/real/<rel>` (a file or folder the README's test command fetches), asserting it is
/// there.
pub fn fetched(rel: &str) -> std::path::PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/real")
        .join(rel);
    assert!(
        p.exists(),
        "{} is missing: run data-scripts/fetch_test_data.sh and data-scripts/fetch_real_data.sh (data-scripts/test.sh runs both)",
        p.display()
    );
    p
}
