//! Training data sources: images in [0, 1] of the model resolution, drawn reproducibly from
//! (seed, step, index) so that a resumed run sees exactly the same batches.

pub use super::source::{image_seed, DataSource, FnSource, SlicePool};
use anyhow::{bail, Context};
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the training images come from (`[data]` table of the training TOML).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DataConfig {
    /// Random-ellipse phantoms generated on the fly (`medsgm_operators::phantom::random_ellipses`).
    PhantomEllipses {
        /// Ellipses per image.
        #[serde(default = "default_ellipses")]
        n_ellipses: usize,
    },
    /// Anatomical CT phantoms (`medsgm_operators::phantom::anatomical::anatomical_ct`), HU
    /// windowed to [0, 1].
    PhantomAnatomical {
        /// HU window lower end.
        #[serde(default = "default_hu_lo")]
        hu_lo: f32,
        /// HU window upper end.
        #[serde(default = "default_hu_hi")]
        hu_hi: f32,
    },
    /// A folder of PNG (8/16-bit grey) or 2-D NPY images (see [`read_image`]: PNG divided by
    /// its type's maximum, NPY in [0, 1] as is, otherwise min–max scaled), resized (bilinear).
    Folder {
        /// Directory (not recursive).
        path: PathBuf,
        /// Random horizontal flips.
        #[serde(default)]
        flip: bool,
    },
    /// Slices of a NIfTI volume with a held-out block (see [`super::volume`]).
    NiftiSlices(super::volume::VolumeSlicing),
    /// Slices of every DICOM series under a folder (see [`super::dicom_slices`]).
    DicomSeries(super::dicom_slices::DicomSlicing),
    /// Patches from the slices of several NIfTI volumes at one pixel spacing (see
    /// [`super::volume::VolumeSet`]).
    NiftiVolumes(super::volume::VolumeSet),
}

fn default_ellipses() -> usize {
    10
}
fn default_hu_lo() -> f32 {
    -1000.0
}
fn default_hu_hi() -> f32 {
    1000.0
}

/// Most ellipses per `phantom-ellipses` image.
pub const MAX_ELLIPSES: usize = 1000;

impl DataConfig {
    /// Checks the sizes and ranges that need no file access (the files are checked when the
    /// source is built).
    pub fn validate(&self) -> anyhow::Result<()> {
        match self {
            DataConfig::PhantomEllipses { n_ellipses } => anyhow::ensure!(
                (1..=MAX_ELLIPSES).contains(n_ellipses),
                "data.n_ellipses {n_ellipses} must be in 1..={MAX_ELLIPSES}"
            ),
            DataConfig::PhantomAnatomical { hu_lo, hu_hi } => anyhow::ensure!(
                hu_lo.is_finite() && hu_hi.is_finite() && hu_hi > hu_lo,
                "data: hu_hi ({hu_hi}) must exceed hu_lo ({hu_lo}), both finite"
            ),
            DataConfig::NiftiVolumes(set) => set.validate()?,
            _ => {}
        }
        Ok(())
    }

    /// Intensity normalisation of the images this source yields (recorded in checkpoints).
    pub fn normalization(&self) -> crate::checkpoint::Normalization {
        use crate::checkpoint::Normalization;
        match self {
            DataConfig::PhantomAnatomical { hu_lo, hu_hi } => Normalization::CtHuWindow {
                lo: *hu_lo,
                hi: *hu_hi,
            },
            DataConfig::NiftiSlices(v) => match v.hu_window {
                Some([lo, hi]) => Normalization::CtHuWindow { lo, hi },
                // Patch priors are new (real MRI); whole-slice checkpoints keep their record.
                None if v.patches.is_some() => Normalization::MriPercentile { p: v.percentile },
                None => Normalization::Identity,
            },
            // One scale for all volumes (checked by `VolumeSet::validate`): the first's.
            DataConfig::NiftiVolumes(set) => {
                set.volumes.first().map_or(Normalization::Identity, |v| {
                    DataConfig::NiftiSlices(v.clone()).normalization()
                })
            }
            _ => Normalization::Identity,
        }
    }
}

/// A [`SlicePool`] of every `.png` / `.npy` file of `dir` (sorted by name), resized to `size²`.
pub fn folder_pool(dir: &Path, size: usize, flip: bool, seed: u64) -> anyhow::Result<SlicePool> {
    let paths = folder_images(dir)?;
    let images = paths
        .iter()
        .map(|p| Ok(resize_bilinear(&read_image(p)?, size)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let description = format!(
        "folder {} ({} images, {size}², flip {flip})",
        dir.display(),
        images.len()
    );
    SlicePool::new(images, seed, flip, description)
}

/// The training images of a `folder` source: every `.png` / `.npy` file of `dir` (not
/// recursive), sorted by name; an error when there is none.
pub fn folder_images(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading data folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("png" | "npy")))
        .collect();
    paths.sort();
    if paths.is_empty() {
        bail!("data folder {} holds no .png or .npy images", dir.display())
    }
    Ok(paths)
}

/// Reads a training image: a grey PNG (codes scaled by the type maximum) or a 2-D NPY used
/// as is when its values lie in [0, 1] (the data-scripts write normalised slices) and min–max
/// scaled otherwise (raw intensities).
pub fn read_image(path: &Path) -> anyhow::Result<Array2<f32>> {
    let a = crate::io::read_image(path, &crate::io::ImageReadOptions::default())?;
    let (lo, hi) = a
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    if lo >= 0.0 && hi <= 1.0 {
        return Ok(a);
    }
    // In f64: hi − lo overflows f32 for extreme finite values (inf / inf = NaN; fuzz finding).
    let (lo, span) = (f64::from(lo), f64::from(hi) - f64::from(lo));
    let span = if span > 0.0 { span } else { 1.0 };
    Ok(a.mapv(|v| ((f64::from(v) - lo) / span) as f32))
}

/// Bilinear resize (pixel-centre aligned) of a 2-D image to `size × size`.
pub fn resize_bilinear(img: &Array2<f32>, size: usize) -> Array2<f32> {
    let (h, w) = img.dim();
    if h == size && w == size {
        return img.clone();
    }
    let coord = |i: usize, n: usize| -> (usize, usize, f32) {
        let x = ((i as f32 + 0.5) * n as f32 / size as f32 - 0.5).clamp(0.0, (n - 1) as f32);
        let x0 = x.floor() as usize;
        (x0, (x0 + 1).min(n - 1), x - x0 as f32)
    };
    Array2::from_shape_fn((size, size), |(r, c)| {
        let (r0, r1, fr) = coord(r, h);
        let (c0, c1, fc) = coord(c, w);
        let top = img[[r0, c0]] * (1.0 - fc) + img[[r0, c1]] * fc;
        let bot = img[[r1, c0]] * (1.0 - fc) + img[[r1, c1]] * fc;
        top * (1.0 - fr) + bot * fr
    })
}

/// Builds the configured source for `size × size` images.
pub fn build_source(
    config: &DataConfig,
    size: usize,
    seed: u64,
) -> anyhow::Result<Box<dyn DataSource>> {
    match config {
        DataConfig::Folder { path, flip } => Ok(Box::new(folder_pool(path, size, *flip, seed)?)),
        DataConfig::NiftiSlices(cfg) => super::volume::volume_source(cfg, size, seed),
        DataConfig::NiftiVolumes(set) => super::volume::volume_set_source(set, size, seed),
        DataConfig::DicomSeries(cfg) => Ok(Box::new(super::dicom_slices::dicom_source(
            cfg, size, seed,
        )?)),
        DataConfig::PhantomEllipses { n_ellipses } => {
            let n = *n_ellipses;
            Ok(Box::new(FnSource::new(
                seed,
                format!("random-ellipse phantoms ({n} ellipses, {size}²)"),
                move |s| Ok(medsgm_operators::phantom::random_ellipses(size, s, n)),
            )))
        }
        DataConfig::PhantomAnatomical { hu_lo, hu_hi } => {
            let window = medsgm_operators::hu::HuWindow {
                lo: *hu_lo,
                hi: *hu_hi,
            };
            if !(window.hi > window.lo) {
                bail!("phantom-anatomical: hu_hi ({hu_hi}) must exceed hu_lo ({hu_lo})")
            }
            let params = medsgm_operators::phantom::anatomical::AnatomicalParams::default();
            Ok(Box::new(FnSource::new(
                seed,
                format!("anatomical CT phantoms ({size}², HU window [{hu_lo}, {hu_hi}] → [0, 1])"),
                move |s| {
                    let slice =
                        medsgm_operators::phantom::anatomical::anatomical_ct(size, s, &params)?;
                    Ok(medsgm_operators::hu::hu_to_unit(&slice.hu.view(), window))
                },
            )))
        }
    }
}
