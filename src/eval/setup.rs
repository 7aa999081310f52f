//! The set-up shared by `medsgm bench recon` and `medsgm tune`: the test images of a task
//! (prepared sets or independent real slices), the benchmark cases over them, and the
//! pixel-space and latent score solvers the methods need.

use crate::error::{invalid, InputContext};
use crate::eval::cases::{Case, CtBeam, ScoreSolver};
use crate::eval::latent::{LatentSolver, SolverSet};
use crate::eval::testset::{config_slices, mri_slices, phantoms, EvalSplit, TestImage};
use crate::task::{Method, Problem};
use anyhow::{Context, Result};
use std::path::Path;

/// The test images of a task.
pub fn task_images(
    task: Problem,
    size: usize,
    split: EvalSplit,
    n: usize,
    data: Option<&Path>,
) -> Result<Vec<TestImage>> {
    match (task, data) {
        (Problem::Ct, Some(config)) if !is_toml(config) => {
            bail_invalid("CT images from a folder or file need --model (its HU window and spacing)")
        }
        (Problem::Ct, Some(config)) => Ok(config_slices(config, n, split)
            .invalid_input()?
            .into_iter()
            .map(|(id, truth)| TestImage {
                id,
                truth,
                metal: None,
            })
            .collect()),
        (Problem::Ct | Problem::Mar, _) => {
            phantoms(size, split.first_seed(), n, task == Problem::Mar)
        }
        (Problem::Mri, _) => {
            let path = data.ok_or_else(|| invalid("--task mri needs --data (held-out slices)"))?;
            mri_slices(path, n, split).invalid_input()
        }
    }
}

fn is_toml(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "toml")
}

fn bail_invalid<T>(msg: &str) -> Result<T> {
    Err(invalid(msg.to_owned()))
}

/// Whether `--data` names independent real images rather than a prepared test set: for CT
/// anything but a training config, for MRI a DICOM file or a folder holding DICOM files.
pub fn is_independent(task: Problem, data: &Path) -> bool {
    let dicom = |p: &Path| p.extension().is_some_and(|e| e == "dcm");
    match task {
        Problem::Ct => !is_toml(data),
        Problem::Mri => {
            dicom(data)
                || std::fs::read_dir(data)
                    .map(|d| d.flatten().any(|e| dicom(&e.path())))
                    .unwrap_or(false)
        }
        Problem::Mar => false,
    }
}

/// Images the prior never saw — a DICOM/NIfTI/NPY file or a folder of them
/// ([`crate::eval::testset::real_images`]: resampled to the prior's pixel spacing unless
/// `native_grid`, CT in HU
/// through its window, MRI normalised by its 99.5th percentile; unreadable files skipped with a
/// note) — CT slices padded to a square with air (0). Slices of different sizes form separate
/// cases ([`task_cases`]).
pub fn independent_images(
    task: Problem,
    path: &Path,
    model: &Path,
    n: usize,
    native_grid: bool,
) -> Result<Vec<TestImage>> {
    let ck =
        crate::checkpoint::Checkpoint::load(model, &candle_core::Device::Cpu).invalid_input()?;
    let spacing = ck.meta.pixel_spacing_mm.filter(|_| !native_grid);
    let images =
        crate::eval::testset::real_images(path, &ck.meta.normalization, spacing).invalid_input()?;
    Ok(images
        .into_iter()
        .take(n)
        .map(|(id, im)| {
            let (h, w) = im.dim();
            if task != Problem::Ct {
                return TestImage {
                    id,
                    truth: im.mapv(|v| v.clamp(0.0, 1.0)),
                    metal: None,
                };
            }
            let s = h.max(w);
            let mut sq = ndarray::Array2::<f32>::zeros((s, s));
            let (r0, c0) = ((s - h) / 2, (s - w) / 2);
            sq.slice_mut(ndarray::s![r0..r0 + h, c0..c0 + w])
                .assign(&im);
            TestImage {
                id,
                truth: sq,
                metal: None,
            }
        })
        .collect())
}

/// The benchmark cases: one per views/acceleration value (CT, MRI) or per image (MAR); CT
/// images of several sizes (independent slices) give one case per size and view count.
pub fn task_cases(
    task: Problem,
    images: &[TestImage],
    views: &[usize],
    beam: CtBeam,
    accel: &[f64],
    seed: u64,
) -> Result<Vec<Case>> {
    let all: Vec<usize> = (0..images.len()).collect();
    match task {
        Problem::Ct => views
            .iter()
            .flat_map(|&v| {
                size_groups(images)
                    .into_iter()
                    .map(move |g| Case::ct(images, g, v, beam, seed))
            })
            .collect(),
        Problem::Mri => accel
            .iter()
            .flat_map(|&r| {
                size_groups(images)
                    .into_iter()
                    .map(move |g| Case::mri(images, g, r))
            })
            .collect(),
        Problem::Mar => all
            .iter()
            .map(|&i| Case::mar(images, i, seed.wrapping_add(i as u64)))
            .collect(),
    }
}

/// The indices of the images grouped by shape, in order of first appearance.
fn size_groups(images: &[TestImage]) -> Vec<Vec<usize>> {
    let mut groups: Vec<((usize, usize), Vec<usize>)> = Vec::new();
    for (i, im) in images.iter().enumerate() {
        let shape = im.truth.dim();
        match groups.iter_mut().find(|g| g.0 == shape) {
            Some(g) => g.1.push(i),
            None => groups.push((shape, vec![i])),
        }
    }
    groups.into_iter().map(|g| g.1).collect()
}

/// Loads the score solver when one is needed, and the image size to evaluate at.
pub fn solver_and_size(
    model: Option<&Path>,
    needed: bool,
    size: usize,
    batch: usize,
) -> Result<(Option<Box<dyn ScoreSolver>>, usize)> {
    match model {
        Some(path) => {
            let solver = crate::eval::score::ModelSolver::load(path, batch)
                .with_context(|| format!("loading the score model {}", path.display()))
                .invalid_input()?;
            let size = solver.image_size();
            Ok((Some(Box::new(solver)), size))
        }
        None if needed => Err(invalid("the score methods need --model")),
        None => Ok((None, size)),
    }
}

/// The pixel-space (`--model`) and latent (`--latent-model`) solvers that `methods` need, and
/// the image size (the models', else `size`).
pub fn solvers(
    methods: &[Method],
    model: Option<&Path>,
    latent_model: Option<&Path>,
    size: usize,
    batch: usize,
) -> Result<(Option<SolverSet>, usize)> {
    let latent_needed = methods.iter().any(|m| m.is_latent());
    let pixel_needed = methods.iter().any(|m| m.is_score() && !m.is_latent());
    let (pixel, size) = solver_and_size(model, pixel_needed, size, batch)?;
    let latent: Option<Box<dyn ScoreSolver>> =
        match latent_model {
            Some(path) => Some(Box::new(
                LatentSolver::load(path, batch)
                    .with_context(|| format!("loading the LSGM {}", path.display()))
                    .invalid_input()?,
            )),
            None if latent_needed => return Err(invalid(
                "the latent methods (latent-dc, latent-dds, latent-diffpir) need --latent-model",
            )),
            None => None,
        };
    let size = match (&pixel, &latent) {
        (None, Some(l)) => l.image_size(),
        _ => size,
    };
    if pixel.is_none() && latent.is_none() {
        return Ok((None, size));
    }
    Ok((Some(SolverSet::new(pixel, latent).invalid_input()?), size))
}
