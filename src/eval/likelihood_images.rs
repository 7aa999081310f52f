//! The image sets of `medsgm likelihood`: real images brought to a prior's units and pixel
//! spacing, slices of training configurations' slabs, and held-out anatomical phantoms, each
//! named for the table.

use crate::checkpoint::Normalization;
use crate::error::InputContext;
use crate::eval::testset::{config_slices, phantoms, real_images, EvalSplit, TEST_SEED};
use anyhow::{Context, Result};
use ndarray::Array2;
use std::path::PathBuf;

/// Named images.
pub type NamedImages = Vec<(String, Array2<f32>)>;

/// The real images of every file or folder in `inputs` in the prior's units (`normalization`)
/// and pixel spacing (`spacing_mm`), named `PATH: NAME`.
pub fn input_images(
    inputs: &[PathBuf],
    normalization: &Normalization,
    spacing_mm: Option<f32>,
) -> Result<NamedImages> {
    let mut images = Vec::new();
    for p in inputs {
        let set = real_images(p, normalization, spacing_mm)
            .with_context(|| format!("input {}", p.display()))
            .invalid_input()?;
        images.extend(
            set.into_iter()
                .map(|(n, im)| (format!("{}: {n}", p.display()), im)),
        );
    }
    Ok(images)
}

/// `n` slices of the `split` slab of every training configuration in `data`, and `phantoms`
/// held-out anatomical phantoms at side `size`.
pub fn prepared_images(
    data: &[PathBuf],
    n: usize,
    split: EvalSplit,
    phantom_count: usize,
    size: usize,
) -> Result<NamedImages> {
    let mut images = Vec::new();
    for c in data {
        let set = config_slices(c, n, split)
            .with_context(|| format!("--data {}", c.display()))
            .invalid_input()?;
        images.extend(
            set.into_iter()
                .map(|(n, im)| (format!("{}: {n}", c.display()), im)),
        );
    }
    if phantom_count > 0 {
        for (k, t) in phantoms(size, TEST_SEED, phantom_count, false)?
            .into_iter()
            .enumerate()
        {
            images.push((format!("phantom {k} ({size}²)"), t.truth));
        }
    }
    Ok(images)
}
