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
