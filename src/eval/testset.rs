//! Held-out evaluation images in the model's [0, 1] units.
//!
//! CT and MAR use the anatomical phantom generator with seeds disjoint from training (training
//! draws SplitMix64-mixed 64-bit seeds): test seeds start at [`TEST_SEED`], tuning (validation)
//! seeds at [`VALIDATION_SEED`]. CT intensities are the HU window [−1000, 1000] → [0, 1]
//! ([`CT_WINDOW`], the shipped CT prior's normalisation). MRI uses held-out slices from a file.

use crate::io::npy::read_npy;
use crate::io::{read_image, ImageReadOptions};
use crate::reconstruct::tv_weight::ImageFrame;
use crate::train::config::TrainConfig;
use crate::train::data::DataConfig;
use crate::train::volume::{volume_slices, Split, VolumeSlicing};
use anyhow::{bail, ensure, Context, Result};
use medsgm_operators::hu::{hu_to_unit, HuWindow};
use medsgm_operators::phantom::anatomical::{anatomical_ct, AnatomicalParams, MetalImplant};
use ndarray::{Array2, Axis, Ix3};
use std::path::Path;

/// First seed of the CT/MAR test phantoms.
pub const TEST_SEED: u64 = 10_000_000;
/// First seed of the CT/MAR validation phantoms used by `medsgm tune`.
pub const VALIDATION_SEED: u64 = 20_000_000;
/// The HU window of the CT prior.
pub const CT_WINDOW: HuWindow = HuWindow {
    lo: -1000.0,
    hi: 1000.0,
};

/// One evaluation image.
#[derive(Debug, Clone)]
pub struct TestImage {
    /// Identifier (phantom seed or slice index).
    pub id: String,
    /// Ground truth in [0, 1] (for MAR: the metal-free anatomy).
    pub truth: Array2<f32>,
    /// MAR only: the metal-free anatomy in HU and the implant's per-pixel area fraction.
    pub metal: Option<MetalSource>,
}

/// What the MAR simulator needs besides the ground truth.
#[derive(Debug, Clone)]
pub struct MetalSource {
    /// Metal-free anatomy in HU.
    pub tissue_hu: Array2<f32>,
    /// Implant area fraction per pixel (thesis §8.4 setting; see `mar_sim`).
    pub metal_fraction: Array2<f32>,
    /// The phantom with the implant painted (HU), for metal segmentation.
    pub hu_with_metal: Array2<f32>,
}

/// `n` anatomical CT phantoms of side `size` with seeds `first_seed..first_seed + n`; with
/// `metal` each also carries a random implant (hip rods, dental, spinal screws).
pub fn phantoms(size: usize, first_seed: u64, n: usize, metal: bool) -> Result<Vec<TestImage>> {
    (0..n as u64)
        .map(|k| {
            let seed = first_seed + k;
            let plain = anatomical_ct(size, seed, &AnatomicalParams::default())?;
            let truth = hu_to_unit(&plain.hu.view(), CT_WINDOW);
            let metal = if metal {
                let params = AnatomicalParams {
                    metal: MetalImplant::Random,
                    ..AnatomicalParams::default()
                };
                let with = anatomical_ct(size, seed, &params)?;
                Some(MetalSource {
                    tissue_hu: plain.hu,
                    metal_fraction: with.metal_fraction,
                    hu_with_metal: with.hu,
                })
            } else {
                None
            };
            Ok(TestImage {
                id: seed.to_string(),
                truth,
                metal,
            })
        })
        .collect()
}

/// Which evaluation images: the test set of `bench recon` or the validation set of `tune`
/// (also `bench recon --split validation`, for choosing between priors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EvalSplit {
    /// Test images: phantom seeds from [`TEST_SEED`]; a training config's held-out block.
    Test,
    /// Validation images: phantom seeds from [`VALIDATION_SEED`]; the `n` training slices of a
    /// training config nearest its held-out block (never the block or its guard band).
    Validation,
}

impl EvalSplit {
    /// The first phantom seed of the split.
    pub fn first_seed(self) -> u64 {
        match self {
            EvalSplit::Test => TEST_SEED,
            EvalSplit::Validation => VALIDATION_SEED,
        }
    }
}

/// Up to `n` slices of a `nifti-slices` training configuration (at the model's size, or at
/// the native resolution for patch priors): its held-out block ([`EvalSplit::Test`]), or its
/// validation block — without one, the training slices nearest the held-out block.
pub fn config_slices(
    config: &Path,
    n: usize,
    split: EvalSplit,
) -> Result<Vec<(String, Array2<f32>)>> {
    let cfg = TrainConfig::from_toml_file(config)?;
    if let DataConfig::NiftiVolumes(set) = &cfg.data {
        // Every volume's slab at the set's spacing (no training-slice fallback: each volume
        // of a set names its validation slab).
        let vs = match split {
            EvalSplit::Test => Split::HeldOut,
            EvalSplit::Validation => Split::Validation,
        };
        let slices = crate::train::volume::set_slices(set, vs)
            .with_context(|| format!("slices of {}", config.display()))?;
        return Ok(evenly_spaced(slices, n));
    }
    let DataConfig::NiftiSlices(slicing) = &cfg.data else {
        return Err(not_sliced(config));
    };
    let vs = match split {
        EvalSplit::Test => Split::HeldOut,
        EvalSplit::Validation if slicing.validation.is_some() => Split::Validation,
        EvalSplit::Validation => Split::Train,
    };
    let mut slices = volume_slices(slicing, eval_size(&cfg, slicing), vs)
        .with_context(|| format!("slices of {}", config.display()))?;
    if vs == Split::Train {
        // The training slices nearest the held-out block: the same anatomy, disjoint slices.
        let centre = (slicing.holdout[0] + slicing.holdout[1]) as f64 / 2.0;
        slices.sort_by(|a, b| {
            (a.0 as f64 - centre)
                .abs()
                .total_cmp(&(b.0 as f64 - centre).abs())
        });
        slices.truncate(n);
        slices.sort_by_key(|s| s.0);
    }
    let named = slices
        .into_iter()
        .map(|(k, s)| (format!("slice{k}"), s))
        .collect();
    Ok(evenly_spaced(named, n))
}

/// The frame of [`config_slices`]' images (the intensity normalisation and pixel spacing a
/// weight tuned on them is in, [`ImageFrame`]): an HU window when the config gives one, else the
/// MRI percentile normalisation; the spacing of the slices as evaluated.
pub fn config_frame(config: &Path) -> Result<ImageFrame> {
    use crate::checkpoint::Normalization;
    let cfg = TrainConfig::from_toml_file(config)?;
    let normalization = |v: &VolumeSlicing| match v.hu_window {
        Some([lo, hi]) => Normalization::CtHuWindow { lo, hi },
        None => Normalization::MriPercentile { p: v.percentile },
    };
    match &cfg.data {
        DataConfig::NiftiVolumes(set) => Ok(ImageFrame {
            normalization: normalization(set.volumes.first().ok_or_else(|| not_sliced(config))?),
            pixel_spacing_mm: Some(set.spacing_mm),
        }),
        DataConfig::NiftiSlices(slicing) => Ok(ImageFrame {
            normalization: normalization(slicing),
            pixel_spacing_mm: crate::train::volume::slice_spacing(
                slicing,
                eval_size(&cfg, slicing),
            )?,
        }),
        _ => Err(not_sliced(config)),
    }
}

/// Every training slice of a `nifti-slices` or `nifti-volumes` training configuration, on
/// the grid [`config_slices`] evaluates on (`medsgm calibrate` measures the widest training
/// body on them, [`crate::eval::extent`]).
pub fn config_training_slices(config: &Path) -> Result<Vec<Array2<f32>>> {
    let cfg = TrainConfig::from_toml_file(config)?;
    let slices: Vec<Array2<f32>> = match &cfg.data {
        DataConfig::NiftiVolumes(set) => crate::train::volume::set_slices(set, Split::Train)
            .map(|v| v.into_iter().map(|(_, s)| s).collect()),
        DataConfig::NiftiSlices(slicing) => {
            volume_slices(slicing, eval_size(&cfg, slicing), Split::Train)
                .map(|v| v.into_iter().map(|(_, s)| s).collect())
        }
        _ => return Err(not_sliced(config)),
    }
    .with_context(|| format!("training slices of {}", config.display()))?;
    Ok(slices)
}

/// The evaluation grid of a `nifti-slices` prior: the model's size, or `None` (the native
/// resolution) for patch priors, which are evaluated on whole slices.
fn eval_size(cfg: &TrainConfig, slicing: &VolumeSlicing) -> Option<usize> {
    slicing.patches.is_none().then_some(cfg.model.image_size)
}

/// The error for a configuration whose data are not slices of volumes.
fn not_sliced(config: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "{}: the data source is not nifti-slices or nifti-volumes (no held-out block)",
        config.display()
    )
}

/// At most `n` of `slices`, evenly spaced across them (the whole slab's anatomy), in order.
fn evenly_spaced<T>(slices: Vec<T>, n: usize) -> Vec<T> {
    let len = slices.len();
    slices
        .into_iter()
        .enumerate()
        .filter(|(i, _)| n >= len || (0..n).any(|j| j * len / n == *i))
        .map(|(_, s)| s)
        .collect()
}

/// Up to `n` MRI slices in [0, 1] from `path`: a 3-D NPY volume `[slices, H, W]` (slices
/// along axis 0) or a folder of 2-D images (PNG, NPY, NIfTI; sorted by name) — these hold the
/// split the caller chose — or the TOML training configuration of a `nifti-slices` prior
/// (e.g. `configs/mri_mni_64.toml`), read exactly as training prepared its slices: the
/// held-out block for [`EvalSplit::Test`], training slices for [`EvalSplit::Validation`]. Each
/// slice is divided by its maximum magnitude when that exceeds 1 (the data-script writes
/// normalised slices; this only guards against raw intensities).
pub fn mri_slices(path: &Path, n: usize, split: EvalSplit) -> Result<Vec<TestImage>> {
    let is_toml = path.extension().is_some_and(|e| e == "toml");
    let slices: Vec<(String, Array2<f32>)> = if is_toml {
        config_slices(path, n, split)?
    } else if path.is_dir() {
        let mut files: Vec<_> = std::fs::read_dir(path)
            .with_context(|| format!("cannot list {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        files
            .iter()
            .take(n)
            .map(|p| {
                let name = p.file_stem().map(|s| s.to_string_lossy().into_owned());
                Ok((
                    name.unwrap_or_default(),
                    read_image(p, &ImageReadOptions::default())?,
                ))
            })
            .collect::<Result<_>>()?
    } else {
        let vol = read_npy(path)?
            .into_f32()
            .map_err(|dt| anyhow::anyhow!("{}: expected real slices, got {dt}", path.display()))?
            .into_dimensionality::<Ix3>()
            .with_context(|| format!("{}: expected a [slices, H, W] volume", path.display()))?;
        vol.axis_iter(Axis(0))
            .take(n)
            .enumerate()
            .map(|(k, s)| (k.to_string(), s.to_owned()))
            .collect()
    };
    ensure!(!slices.is_empty(), "{} holds no slices", path.display());
    slices
        .into_iter()
        .map(|(id, mut s)| {
            if s.iter().any(|v| !v.is_finite()) {
                bail!("slice {id} of {} is not finite", path.display());
            }
            let max = s.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            if max > 1.0 {
                s.mapv_inplace(|v| v / max);
            }
            Ok(TestImage {
                id,
                truth: s,
                metal: None,
            })
        })
        .collect()
}

/// Real images (a DICOM/NIfTI/NPY/PNG file, or a folder of them) in a prior's [0, 1] units,
/// for checks on data the prior never saw: DICOM slices area-resampled to the prior's pixel
/// spacing when both are known; DICOM CT in HU (padding as air) through the prior's HU window;
/// anything else divided by the 99.5th percentile of its non-zero values (MRI normalisation).
/// Unreadable files of a folder are skipped with a note naming them.
pub fn real_images(
    path: &Path,
    normalization: &crate::checkpoint::Normalization,
    prior_spacing_mm: Option<f32>,
) -> Result<Vec<(String, Array2<f32>)>> {
    let files: Vec<std::path::PathBuf> = if path.is_dir() {
        let mut f: Vec<_> = std::fs::read_dir(path)
            .with_context(|| format!("cannot list {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        f.sort();
        f
    } else {
        vec![path.to_path_buf()]
    };
    ensure!(!files.is_empty(), "{} holds no images", path.display());
    let images: Vec<(String, Array2<f32>)> = files
        .iter()
        .filter_map(|p| match real_image(p, normalization, prior_spacing_mm) {
            Ok(im) => Some(im),
            Err(e) if files.len() > 1 => {
                eprintln!("skipping {}: {e:#}", p.display());
                None
            }
            Err(e) => {
                eprintln!("{}: {e:#}", p.display());
                None
            }
        })
        .collect();
    ensure!(!images.is_empty(), "{}: no readable image", path.display());
    Ok(images)
}

/// One image of [`real_images`].
fn real_image(
    p: &Path,
    normalization: &crate::checkpoint::Normalization,
    prior_spacing_mm: Option<f32>,
) -> Result<(String, Array2<f32>)> {
    use crate::checkpoint::Normalization;
    let (mut img, source) =
        crate::io::read_image_with_dicom_source(p, &ImageReadOptions::default())?;
    let name = p.file_stem().map(|s| s.to_string_lossy().into_owned());
    let hu = source.as_ref().is_some_and(|s| s.is_hu());
    if hu {
        if let Some(pad) = source.as_ref().and_then(|s| s.padding()) {
            img.mapv_inplace(|v| if pad.contains(v) { -1000.0 } else { v });
        }
    }
    let spacing = source.as_ref().and_then(|s| s.in_plane_spacing_mm());
    if let (Some(s), Some(prior)) = (spacing, prior_spacing_mm) {
        use medsgm_operators::resample::{resample, side_at_spacing};
        let (h, w) = img.dim();
        img = resample(
            &img,
            (side_at_spacing(h, s, prior), side_at_spacing(w, s, prior)),
        );
    }
    let img = match (hu, normalization) {
        (true, Normalization::CtHuWindow { lo, hi }) => {
            hu_to_unit(&img.view(), HuWindow { lo: *lo, hi: *hi })
        }
        _ => {
            let c = crate::train::volume::percentile_of_nonzero(&img, 99.5)
                .with_context(|| format!("{}: the image is all zero", p.display()))?;
            img.mapv(|x| (x / c).clamp(0.0, 1.0))
        }
    };
    Ok((name.unwrap_or_default(), img))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phantoms_are_in_unit_range_and_mar_has_metal() {
        let imgs = phantoms(64, TEST_SEED, 2, true).unwrap();
        assert_eq!(imgs[1].id, "10000001");
        for im in &imgs {
            assert!(im.truth.iter().all(|v| (0.0..=1.0).contains(v)));
            let m = im.metal.as_ref().unwrap();
            assert!(m.metal_fraction.iter().any(|&c| c > 0.5));
            // The metal-free anatomy is the ground truth.
            assert_eq!(hu_to_unit(&m.tissue_hu.view(), CT_WINDOW), im.truth);
        }
    }
}
