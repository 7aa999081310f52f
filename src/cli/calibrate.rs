//! `medsgm calibrate --model M [--data CONFIG] --out M2`: calibrates a prior's
//! out-of-distribution check ([`crate::calibrate`]) on the validation slab of its
//! training configuration (phantom priors: validation phantoms), writes the checkpoint with the threshold to `--out`, and reports the
//! denoising residual on check sets (`--check`: a training config's held-out test slab, or real
//! images; `--check-phantoms N`: anatomical CT phantoms), with how many each would flag.

use crate::calibrate::CalibrateRequest;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `medsgm calibrate`.
#[derive(Debug, Clone, Args)]
pub struct CalibrateArgs {
    /// The prior (checkpoint written by `medsgm train`).
    #[arg(long)]
    pub model: PathBuf,
    /// Its nifti-slices training configuration: the validation slab calibrates the threshold.
    /// Without it (phantom priors): anatomical CT phantoms of the validation seeds at the
    /// model's size.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Where to write the calibrated checkpoint (never the input's path).
    #[arg(long)]
    pub out: PathBuf,
    /// Check sets: a training configuration (its held-out test slab) or real images (a file
    /// or folder: DICOM, NIfTI, NPY, PNG). Repeatable.
    #[arg(long)]
    pub check: Vec<PathBuf>,
    /// Also check this many anatomical CT phantoms (256², the phantom prior's world; at most
    /// 1000).
    #[arg(long, default_value_t = 0)]
    pub check_phantoms: usize,
    /// Slices per slab (evenly spaced; 1..=1000).
    #[arg(long, default_value_t = 9)]
    pub n: usize,
    /// Seed of the noise draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Runs `medsgm calibrate`.
pub fn run(a: &CalibrateArgs) -> Result<()> {
    CalibrateRequest {
        model: a.model.clone(),
        data: a.data.clone(),
        out: a.out.clone(),
        check: a.check.clone(),
        check_phantoms: a.check_phantoms,
        n: a.n,
        seed: a.seed,
    }
    .run(&mut |line| print!("{line}"))
}
