//! `medsgm calibrate --model M [--data CONFIG] --out M2`: calibrates a prior's
//! out-of-distribution check ([`crate::eval::typicality`]) on the validation slab of its
//! training configuration (phantom priors: validation phantoms), writes the checkpoint with the threshold to `--out`, and reports the
//! denoising residual on check sets (`--check`: a training config's held-out test slab, or real
//! images; `--check-phantoms N`: anatomical CT phantoms), with how many each would flag.

use crate::checkpoint::{Checkpoint, Normalization};
use crate::cli::model::LoadedModel;
use crate::cli::{invalid, InputContext};
use crate::eval::testset::{config_slices, phantoms, real_images, EvalSplit};
use crate::eval::typicality::{denoising_residuals, Calibration};
use crate::io::guard::refuse_output_file;
use anyhow::{Context, Result};
use clap::Args;
use ndarray::Array2;
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

/// Most slices per slab (`--n`) and check phantoms (`--check-phantoms`): each image costs a
/// network evaluation per noise draw, and 256² phantoms 256 KiB each.
pub const MAX_IMAGES: usize = 1000;

/// Runs `medsgm calibrate`.
pub fn run(a: &CalibrateArgs) -> Result<()> {
    refuse_output_file(&a.out, &[&a.model]).map_err(invalid)?;
    if !(1..=MAX_IMAGES).contains(&a.n) {
        return Err(invalid(format!("--n {} must be in 1..={MAX_IMAGES}", a.n)));
    }
    if a.check_phantoms > MAX_IMAGES {
        return Err(invalid(format!(
            "--check-phantoms {} must be at most {MAX_IMAGES}",
            a.check_phantoms
        )));
    }
    let model = LoadedModel::load(&a.model)?;
    let residuals = |images: &[Array2<f32>]| {
        denoising_residuals(
            &model.score(),
            model.sde.as_ref(),
            images,
            a.seed,
            &model.device,
        )
    };
    let (validation, source): (Vec<Array2<f32>>, String) = match &a.data {
        Some(config) => {
            let v: Vec<Array2<f32>> = config_slices(config, a.n, EvalSplit::Validation)
                .invalid_input()?
                .into_iter()
                .map(|(_, s)| s)
                .collect();
            let source = format!(
                "validation slab of {} ({} slices)",
                config.display(),
                v.len()
            );
            (v, source)
        }
        None => {
            let size = model.image_size();
            let v: Vec<Array2<f32>> =
                phantoms(size, EvalSplit::Validation.first_seed(), a.n, false)?
                    .into_iter()
                    .map(|t| t.truth)
                    .collect();
            let source = format!("validation anatomical phantoms ({} at {size}²)", v.len());
            (v, source)
        }
    };
    let calibration = Calibration::from_residuals(&residuals(&validation)?, source)
        .ok_or_else(|| invalid("the validation slab holds no slices"))?;
    println!("| set | n | mean residual | max residual | flagged |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| calibration: {} | {} | {:.4} | {:.4} | threshold {:.4} |",
        calibration.source, calibration.n, calibration.mean, calibration.max, calibration.threshold
    );
    let mut sets: Vec<(String, Vec<Array2<f32>>)> = Vec::new();
    for c in &a.check {
        let images = if c.extension().is_some_and(|e| e == "toml") {
            config_slices(c, a.n, EvalSplit::Test)
        } else {
            real_images(c, &model.meta.normalization, model.pixel_spacing_mm())
        }
        .with_context(|| format!("check set {}", c.display()))
        .invalid_input()?;
        sets.push((
            c.display().to_string(),
            images.into_iter().map(|(_, s)| s).collect(),
        ));
    }
    if a.check_phantoms > 0 {
        let images = phantoms(
            256,
            crate::eval::testset::TEST_SEED,
            a.check_phantoms,
            false,
        )?;
        sets.push((
            "anatomical CT phantoms 256²".into(),
            images.into_iter().map(|t| t.truth).collect(),
        ));
    }
    for (name, images) in &sets {
        let r = residuals(images)?;
        let flagged = r.iter().filter(|&&v| calibration.flags(v)).count();
        println!(
            "| {name} | {} | {:.4} | {:.4} | {flagged} of {} |",
            r.len(),
            r.iter().sum::<f64>() / r.len() as f64,
            r.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            r.len()
        );
    }
    if !matches!(
        model.meta.normalization,
        Normalization::CtHuWindow { .. } | Normalization::MriPercentile { .. }
    ) {
        eprintln!(
            "note: the prior's normalisation is {:?}",
            model.meta.normalization
        );
    }
    let device = candle_core::Device::Cpu;
    let mut ck = Checkpoint::load(&a.model, &device).invalid_input()?;
    ck.meta.typicality = Some(calibration);
    ck.save(&a.out)
        .with_context(|| format!("writing {}", a.out.display()))?;
    println!("wrote {}", a.out.display());
    Ok(())
}
