//! `medsgm demo`: the classical sparse-view CT pipeline on a built-in phantom.

use crate::cli::args::not_available;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `medsgm demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Output directory (created if missing).
    #[arg(long, default_value = "demo-out")]
    pub out_dir: PathBuf,
}

/// Runs `medsgm demo`.
pub fn run(_a: &DemoArgs) -> Result<()> {
    Err(not_available("the demo pipeline"))
}
