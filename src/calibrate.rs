//! Calibrating a prior's out-of-distribution check (`medsgm calibrate`,
//! [`crate::eval::typicality`]) as asked for ([`CalibrateRequest`]): the denoising residual on
//! the validation slab of its training configuration (phantom priors: validation phantoms) sets
//! the threshold, the check sets (a training config's held-out test slab, real images,
//! anatomical CT phantoms) report their residuals and how many the threshold would flag, and the
//! checkpoint is written with the threshold. Priors with a pixel spacing also record the widest
//! body among their training and validation slices ([`crate::eval::extent`]); the check sets
//! report their widest body and how many slices that check would flag.

use crate::checkpoint::{Checkpoint, Normalization};
use crate::error::{invalid, InputContext};
use crate::eval::extent::object_diameter_px;
use crate::eval::testset::{
    config_slices, config_training_slices, phantoms, real_images, EvalSplit,
};
use crate::eval::typicality::{denoising_residuals, Calibration, EXTENT_MARGIN};
use crate::io::guard::refuse_output_file;
use crate::model::LoadedModel;
use anyhow::{Context, Result};
use ndarray::Array2;
use std::path::PathBuf;

/// A calibration as asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrateRequest {
    /// The prior (checkpoint written by `medsgm train`).
    pub model: PathBuf,
    /// Its nifti-slices training configuration (none: validation phantoms).
    pub data: Option<PathBuf>,
    /// Where to write the calibrated checkpoint.
    pub out: PathBuf,
    /// Check sets: training configurations or real images.
    pub check: Vec<PathBuf>,
    /// Anatomical CT phantoms to check.
    pub check_phantoms: usize,
    /// Slices per slab.
    pub n: usize,
    /// Seed of the noise draws.
    pub seed: u64,
}

/// Most slices per slab (`--n`) and check phantoms (`--check-phantoms`): each image costs a
/// network evaluation per noise draw, and 256² phantoms 256 KiB each.
pub const MAX_IMAGES: usize = 1000;

impl CalibrateRequest {
    /// Calibrates the threshold, checks the check sets (handing each table line to `print`) and
    /// writes the calibrated checkpoint.
    pub fn run(&self, print: &mut dyn FnMut(&str)) -> Result<()> {
        refuse_output_file(&self.out, &[&self.model]).map_err(invalid)?;
        if !(1..=MAX_IMAGES).contains(&self.n) {
            return Err(invalid(format!(
                "--n {} must be in 1..={MAX_IMAGES}",
                self.n
            )));
        }
        if self.check_phantoms > MAX_IMAGES {
            return Err(invalid(format!(
                "--check-phantoms {} must be at most {MAX_IMAGES}",
                self.check_phantoms
            )));
        }
        let model = LoadedModel::load(&self.model)?;
        let residuals = |images: &[Array2<f32>]| {
            denoising_residuals(
                &model.score(),
                model.sde.as_ref(),
                images,
                self.seed,
                &model.device,
            )
        };
        // Body widths (mm) at the prior's spacing; none for priors without one.
        let spacing = model.pixel_spacing_mm().map(f64::from);
        let diameters = |images: &[Array2<f32>]| -> Option<Vec<f64>> {
            spacing.map(|s| images.iter().map(|i| s * object_diameter_px(i)).collect())
        };
        let widest = |d: &[f64]| d.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (validation, source): (Vec<Array2<f32>>, String) = match &self.data {
            Some(config) => {
                let v: Vec<Array2<f32>> = config_slices(config, self.n, EvalSplit::Validation)
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
                    phantoms(size, EvalSplit::Validation.first_seed(), self.n, false)?
                        .into_iter()
                        .map(|t| t.truth)
                        .collect();
                let source = format!("validation anatomical phantoms ({} at {size}²)", v.len());
                (v, source)
            }
        };
        // The widest body among the training and validation slices.
        let trained = match &self.data {
            Some(config) if spacing.is_some() => config_training_slices(config).invalid_input()?,
            _ => Vec::new(),
        };
        let max_diameter_mm = diameters(&trained)
            .zip(diameters(&validation))
            .map(|(t, v)| widest(&t).max(widest(&v)));
        let calibration =
            Calibration::from_residuals(&residuals(&validation)?, source, max_diameter_mm)
                .ok_or_else(|| invalid("the validation slab holds no slices"))?;
        print("| set | n | mean residual | max residual | widest body (mm) | flagged |\n|---|---:|---:|---:|---:|---:|\n");
        let width = |d: Option<f64>| d.map_or_else(|| "-".into(), |d| format!("{d:.0}"));
        print(&format!(
            "| calibration: {} | {} | {:.4} | {:.4} | {} of {} training slices (flag above {}) | threshold {:.4} |\n",
            calibration.source,
            calibration.n,
            calibration.mean,
            calibration.max,
            width(max_diameter_mm),
            trained.len() + validation.len(),
            width(max_diameter_mm.map(|d| EXTENT_MARGIN * d)),
            calibration.threshold
        ));
        let mut sets: Vec<(String, Vec<Array2<f32>>)> = Vec::new();
        for c in &self.check {
            let images = if c.extension().is_some_and(|e| e == "toml") {
                config_slices(c, self.n, EvalSplit::Test)
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
        if self.check_phantoms > 0 {
            let images = phantoms(
                256,
                crate::eval::testset::TEST_SEED,
                self.check_phantoms,
                false,
            )?;
            sets.push((
                "anatomical CT phantoms 256²".into(),
                images.into_iter().map(|t| t.truth).collect(),
            ));
        }
        for (name, images) in &sets {
            let r = residuals(images)?;
            let d = diameters(images);
            let judged: Vec<_> = r
                .iter()
                .enumerate()
                .map(|(i, &v)| calibration.judge(v, d.as_ref().map(|d| d[i])))
                .collect();
            print(&format!(
                "| {name} | {} | {:.4} | {:.4} | {} | {} of {} ({} by residual, {} by width) |\n",
                r.len(),
                r.iter().sum::<f64>() / r.len() as f64,
                widest(&r),
                width(d.as_deref().map(widest)),
                judged.iter().filter(|t| t.flagged()).count(),
                r.len(),
                judged.iter().filter(|t| t.unexplained).count(),
                judged.iter().filter(|t| t.too_wide).count(),
            ));
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
        let mut ck = Checkpoint::load(&self.model, &device).invalid_input()?;
        ck.meta.typicality = Some(calibration);
        ck.save(&self.out)
            .with_context(|| format!("writing {}", self.out.display()))?;
        print(&format!("wrote {}\n", self.out.display()));
        Ok(())
    }
}
