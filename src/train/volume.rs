//! Training and evaluation slices from a NIfTI volume: the volume is scaled to [0, 1] by a
//! high percentile of its non-zero voxels (MRI intensity normalisation) or by an HU window
//! (CT), sliced along one axis, displayed radiologically (anterior at the top), and empty
//! slices are skipped. Whole-slice priors zero-pad each slice to a square and area-resample it
//! to the model size; patch priors ([`super::patches`]) keep the native pixel spacing.
//! Contiguous held-out slabs — the test block and an optional validation block for tuning,
//! each with a guard band on both sides — never enter training.

use super::patches::PatchPool;
use super::source::{DataSource, SlicePool};
use crate::io::nifti_io::read_nifti;
use anyhow::{bail, Context};
use ndarray::{s, Array2, Axis};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How to slice a volume (`[data] kind = "nifti-slices"` of a training TOML).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeSlicing {
    /// The NIfTI file (.nii or .nii.gz).
    pub path: PathBuf,
    /// Slice axis (0 = i, 1 = j, 2 = k; 2 is axial for RAS volumes such as MNI152).
    #[serde(default = "default_axis")]
    pub axis: usize,
    /// Held-out slice indices [lo, hi) along `axis` (the evaluation block).
    pub holdout: [usize; 2],
    /// Slices within this distance of the held-out block are used by neither split.
    #[serde(default = "default_guard")]
    pub guard: usize,
    /// Percentile (of the non-zero voxels) mapped to 1; larger values are clipped.
    #[serde(default = "default_percentile")]
    pub percentile: f32,
    /// A slice is empty when fewer than this fraction of its pixels exceed 0.1.
    #[serde(default = "default_min_fill")]
    pub min_fill: f32,
    /// Random left–right flips when training.
    #[serde(default)]
    pub flip: bool,
    /// CT volumes in HU: the window [lo, hi] is mapped to [0, 1] (and clipped) instead of the
    /// percentile scaling.
    #[serde(default)]
    pub hu_window: Option<[f32; 2]>,
    /// CT: clip at this HU instead of at the window's top, keeping dense bone, teeth and
    /// contrast between the two as values above 1 (the window still maps to [0, 1], so a
    /// prior fine-tuned with it keeps the units of the one it starts from). A prior trained on
    /// clipped images has never seen those values and cannot put them back in a real slice
    /// (`docs/bench/upsampling`: petrous bone at 1750 HU reconstructed at 1165).
    #[serde(default)]
    pub hu_ceiling: Option<f32>,
    /// Validation slab [lo, hi) (tuning), disjoint from `holdout`; excluded from training with
    /// its guard band.
    #[serde(default)]
    pub validation: Option<[usize; 2]>,
    /// Train on random patches of the model size at the native pixel spacing, with this
    /// augmentation, instead of whole slices resampled to the model size.
    #[serde(default)]
    pub patches: Option<super::patches::PatchAugment>,
}

fn default_axis() -> usize {
    2
}
fn default_guard() -> usize {
    3
}
fn default_percentile() -> f32 {
    99.5
}
fn default_min_fill() -> f32 {
    0.05
}

/// The largest `hu_ceiling`, in window widths above the window's bottom (model units).
pub const MAX_CEILING: f32 = 4.0;

/// Most volumes of one [`VolumeSet`].
pub const MAX_VOLUMES: usize = 64;

/// Several volumes — several patients — as the training data of one patch prior (`[data] kind
/// = "nifti-volumes"` with `[[data.volumes]]` tables): every volume is sliced by its own
/// [`VolumeSlicing`] (slabs, guard band, intensity scaling), its slices are area-resampled to
/// one pixel spacing, and random patches are drawn from the pooled slices (each slice equally
/// likely). The held-out and validation slabs of every volume stay out of training and are
/// what evaluation reads ([`set_slices`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeSet {
    /// The pixel spacing (mm) every volume's slices are resampled to; recorded in the
    /// checkpoint as the prior's spacing.
    pub spacing_mm: f32,
    /// The volumes. Each needs `patches`, and all share `patches`, `flip` and `hu_window`
    /// (one intensity scale, one augmentation).
    pub volumes: Vec<VolumeSlicing>,
}

impl VolumeSet {
    /// Checks what needs no file: 1..=[`MAX_VOLUMES`] volumes, a spacing in (0, 20] mm, and
    /// every volume a patch source with the first one's augmentation, flips and HU window.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (1..=MAX_VOLUMES).contains(&self.volumes.len()),
            "nifti-volumes: {} volumes, expected 1..={MAX_VOLUMES}",
            self.volumes.len()
        );
        anyhow::ensure!(
            self.spacing_mm.is_finite() && self.spacing_mm > 0.0 && self.spacing_mm <= 20.0,
            "nifti-volumes: spacing_mm {} must be in (0, 20]",
            self.spacing_mm
        );
        let first = &self.volumes[0];
        for v in &self.volumes {
            let Some(aug) = &v.patches else {
                bail!(
                    "nifti-volumes: {} has no [patches] table (volume sets train patch priors)",
                    v.path.display()
                )
            };
            aug.validate()?;
            anyhow::ensure!(
                v.patches == first.patches
                    && v.flip == first.flip
                    && v.hu_window == first.hu_window
                    && v.hu_ceiling == first.hu_ceiling,
                "nifti-volumes: {} differs from {} in patches, flip, hu_window or hu_ceiling (one augmentation \
                 and one intensity scale for all volumes)",
                v.path.display(),
                first.path.display()
            );
        }
        Ok(())
    }
}

/// Which slices to return from [`volume_slices`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// Slices outside the held-out blocks and their guard bands.
    Train,
    /// The validation block (tuning); empty when none is configured.
    Validation,
    /// The held-out test block.
    HeldOut,
}

/// A 2-D image resampled to `size × size` ([`medsgm_operators::resample::resample`]: area
/// averaging where it shrinks, cubic interpolation where it grows).
pub fn resize(img: &Array2<f32>, size: usize) -> Array2<f32> {
    medsgm_operators::resample::resample(img, (size, size))
}

/// Reads `cfg.path` and returns the normalised slices of `split` with their indices along
/// `cfg.axis`: resampled to `size²` (whole-slice priors), or at the native resolution when
/// `size` is `None`.
pub fn volume_slices(
    cfg: &VolumeSlicing,
    size: Option<usize>,
    split: Split,
) -> anyhow::Result<Vec<(usize, Array2<f32>)>> {
    Ok(read_slices(cfg, size, split)?.0)
}

/// The in-plane pixel spacing (mm) of slices along `axis` of a volume with voxel sizes
/// `pixdim`: the mean of the two in-plane sizes (`None` when the header gives none).
pub fn in_plane_spacing(pixdim: [f32; 3], axis: usize) -> Option<f32> {
    let d: Vec<f32> = (0..3).filter(|&a| a != axis).map(|a| pixdim[a]).collect();
    let s = (d[0] + d[1]) / 2.0;
    (s.is_finite() && s > 0.0).then_some(s)
}

/// The pixel spacing (mm) of the slices [`volume_slices`] returns at `size`: whole slices are
/// padded to a square and resampled to `size²`, so the native spacing times side/size; `None`
/// when the header gives no spacing. Reads the header alone.
pub fn slice_spacing(cfg: &VolumeSlicing, size: Option<usize>) -> anyhow::Result<Option<f32>> {
    let (dims, pixdim) = crate::io::nifti_io::read_nifti_grid(&cfg.path)?;
    let native = in_plane_spacing(pixdim, cfg.axis.min(2));
    let side = (0..3)
        .filter(|&a| a != cfg.axis)
        .map(|a| dims[a])
        .max()
        .unwrap_or(0);
    Ok(match size {
        Some(size) if size > 0 => native.map(|s| s * side as f32 / size as f32),
        _ => native,
    })
}

/// Slices of a volume with their indices along the slicing axis.
type IndexedSlices = Vec<(usize, Array2<f32>)>;

/// [`volume_slices`] and the native in-plane spacing.
fn read_slices(
    cfg: &VolumeSlicing,
    size: Option<usize>,
    split: Split,
) -> anyhow::Result<(IndexedSlices, Option<f32>)> {
    if cfg.axis > 2 {
        bail!("nifti-slices: axis {} must be 0, 1 or 2", cfg.axis)
    }
    if !(cfg.percentile > 0.0 && cfg.percentile <= 100.0) {
        bail!(
            "nifti-slices: percentile {} must be in (0, 100]",
            cfg.percentile
        )
    }
    if let Some([lo, hi]) = cfg.hu_window {
        if !(hi > lo) {
            bail!("nifti-slices: hu_window [{lo}, {hi}] must be increasing")
        }
    }
    match (cfg.hu_window, cfg.hu_ceiling) {
        (Some([lo, hi]), Some(c)) if !(c >= hi && (c - lo) <= MAX_CEILING * (hi - lo)) => bail!(
            "nifti-slices: hu_ceiling {c} must lie between the window's top {hi} and {MAX_CEILING} window widths above its bottom"
        ),
        (None, Some(_)) => bail!("nifti-slices: hu_ceiling needs an hu_window"),
        _ => {}
    }
    let volume = read_nifti(&cfg.path)?;
    let spacing = in_plane_spacing(volume.meta.pixdim, cfg.axis);
    let vol = volume.data;
    let n = vol.len_of(Axis(cfg.axis));
    let block = |name: &str, [lo, hi]: [usize; 2]| -> anyhow::Result<std::ops::Range<usize>> {
        if !(lo < hi && hi <= n) {
            bail!(
                "{}: {name} block [{lo}, {hi}) must be a non-empty range within the {n} slices of axis {}",
                cfg.path.display(),
                cfg.axis
            )
        }
        Ok(lo..hi)
    };
    let test = block("held-out", cfg.holdout)?;
    let val = cfg.validation.map(|v| block("validation", v)).transpose()?;
    if let Some(v) = &val {
        if v.start < test.end && test.start < v.end {
            bail!(
                "{}: the validation and held-out blocks overlap",
                cfg.path.display()
            )
        }
    }
    let normalise: Box<dyn Fn(f32) -> f32> = match cfg.hu_window {
        Some([lo, hi]) => {
            let top = cfg.hu_ceiling.map_or(1.0, |c| (c - lo) / (hi - lo));
            Box::new(move |v| ((v - lo) / (hi - lo)).clamp(0.0, top))
        }
        None => {
            let scale = percentile_of_nonzero(&vol, cfg.percentile)
                .with_context(|| format!("{}: the volume is all zero", cfg.path.display()))?;
            Box::new(move |v| (v / scale).clamp(0.0, 1.0))
        }
    };
    let guarded =
        |r: &std::ops::Range<usize>, k: usize| k + cfg.guard >= r.start && k < r.end + cfg.guard;
    let keep = |k: usize| match split {
        Split::HeldOut => test.contains(&k),
        Split::Validation => val.as_ref().is_some_and(|v| v.contains(&k)),
        Split::Train => !guarded(&test, k) && !val.as_ref().is_some_and(|v| guarded(v, k)),
    };
    let mut out = Vec::new();
    for k in (0..n).filter(|&k| keep(k)) {
        let sl = vol.index_axis(Axis(cfg.axis), k);
        // Radiological display: rows = second in-plane axis reversed (anterior/superior up).
        let img = sl.t().slice(s![..;-1, ..]).mapv(&normalise);
        let slice = match size {
            Some(size) => model_slice(&img, size, cfg.min_fill),
            None => filled(&img, cfg.min_fill).then_some(img),
        };
        if let Some(slice) = slice {
            out.push((k, slice));
        }
    }
    if out.is_empty() {
        bail!(
            "{}: no non-empty slice in the {split:?} split",
            cfg.path.display()
        )
    }
    Ok((out, spacing))
}

/// Whether at least the fraction `min_fill` of the pixels exceed 0.1.
fn filled(img: &Array2<f32>, min_fill: f32) -> bool {
    img.iter().filter(|&&v| v > 0.1).count() as f32 >= min_fill * img.len() as f32
}

/// A [0, 1] slice zero-padded to a square and resampled to `size²`, or `None` when it is
/// empty: fewer than the fraction `min_fill` of its pixels exceed 0.1.
pub fn model_slice(img: &Array2<f32>, size: usize, min_fill: f32) -> Option<Array2<f32>> {
    let (h, w) = img.dim();
    let side = h.max(w);
    let mut square = Array2::<f32>::zeros((side, side));
    let (r0, c0) = ((side - h) / 2, (side - w) / 2);
    square.slice_mut(s![r0..r0 + h, c0..c0 + w]).assign(img);
    let resized = resize(&square, size);
    filled(&resized, min_fill).then_some(resized)
}

/// The `p`-th percentile (nearest rank) of the non-zero voxels.
pub fn percentile_of_nonzero<S, D>(vol: &ndarray::ArrayBase<S, D>, p: f32) -> Option<f32>
where
    S: ndarray::Data<Elem = f32>,
    D: ndarray::Dimension,
{
    let mut v: Vec<f32> = vol.iter().copied().filter(|&x| x > 0.0).collect();
    if v.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * (v.len() - 1) as f32).round() as usize;
    let (_, x, _) = v.select_nth_unstable_by(rank, f32::total_cmp);
    Some(*x)
}

/// The training split of `cfg` as a data source of `size²` images: whole slices resampled to
/// `size²` ([`SlicePool`]), or random patches at the native spacing when `cfg.patches` is set
/// ([`PatchPool`]).
pub fn volume_source(
    cfg: &VolumeSlicing,
    size: usize,
    seed: u64,
) -> anyhow::Result<Box<dyn DataSource>> {
    let native = cfg.patches.is_some();
    let (slices, spacing) = read_slices(cfg, (!native).then_some(size), Split::Train)?;
    let slices: Vec<Array2<f32>> = slices.into_iter().map(|(_, s)| s).collect();
    let held_out = match cfg.validation {
        Some([lo, hi]) => format!(
            "test [{}, {}), validation [{lo}, {hi})",
            cfg.holdout[0], cfg.holdout[1]
        ),
        None => format!("held out [{}, {})", cfg.holdout[0], cfg.holdout[1]),
    };
    let what = format!(
        "{} axis {} ({} training slices, {held_out} ± {}",
        file_name(&cfg.path),
        cfg.axis,
        slices.len(),
        cfg.guard,
    );
    match &cfg.patches {
        Some(aug) => {
            let (h, w) = slices[0].dim();
            let spacing_text = spacing.map_or("unknown".to_string(), |s| format!("{s:.3} mm"));
            let description = format!(
                "{what}, {h}x{w} at {spacing_text}/pixel, random {size}² patches, flip {}, rotate ±{}°, scale ±{}, intensity ±{})",
                cfg.flip, aug.rotate_deg, aug.scale, aug.intensity
            );
            Ok(Box::new(PatchPool::new(
                slices,
                size,
                cfg.flip,
                aug.clone(),
                seed,
                spacing,
                description,
            )?))
        }
        None => {
            let description = format!("{what}, {size}², flip {})", cfg.flip);
            Ok(Box::new(SlicePool::new(
                slices,
                seed,
                cfg.flip,
                description,
            )?))
        }
    }
}

/// The `split` slices of every volume of `set` at its common spacing, named
/// "⟨file⟩ slice⟨k⟩" (in volume order, then slice order); a volume whose header gives no pixel
/// spacing is refused.
pub fn set_slices(set: &VolumeSet, split: Split) -> anyhow::Result<Vec<(String, Array2<f32>)>> {
    use medsgm_operators::resample::{resample, side_at_spacing};
    set.validate()?;
    let mut out = Vec::new();
    for v in &set.volumes {
        let (slices, spacing) = read_slices(v, None, split)?;
        let Some(from) = spacing else {
            bail!("{}: the header gives no pixel spacing", v.path.display())
        };
        let name = file_name(&v.path);
        for (k, img) in slices {
            let (h, w) = img.dim();
            let shape = (
                side_at_spacing(h, from, set.spacing_mm),
                side_at_spacing(w, from, set.spacing_mm),
            );
            out.push((format!("{name} slice{k}"), resample(&img, shape)));
        }
    }
    Ok(out)
}

/// The training slices of every volume of `set` as one source of random `size²` patches at
/// the set's spacing ([`PatchPool`]).
pub fn volume_set_source(
    set: &VolumeSet,
    size: usize,
    seed: u64,
) -> anyhow::Result<Box<dyn DataSource>> {
    let slices = set_slices(set, Split::Train)?;
    let first = &set.volumes[0];
    let aug = first.patches.clone().context("nifti-volumes: patches")?;
    let names: Vec<String> = set.volumes.iter().map(|v| file_name(&v.path)).collect();
    let description = format!(
        "{} volumes ({}; {} training slices, each volume's test and validation slabs held out) \
         at {:.3} mm/pixel, random {size}² patches, flip {}, rotate ±{}°, scale ±{}, intensity ±{}",
        set.volumes.len(),
        names.join(", "),
        slices.len(),
        set.spacing_mm,
        first.flip,
        aug.rotate_deg,
        aug.scale,
        aug.intensity
    );
    let slices = slices.into_iter().map(|(_, s)| s).collect();
    Ok(Box::new(PatchPool::new(
        slices,
        size,
        first.flip,
        aug,
        seed,
        Some(set.spacing_mm),
        description,
    )?))
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}
