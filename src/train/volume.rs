//! Training and evaluation slices from a NIfTI volume (issue 3 data; issue 4 MRI prior): the
//! volume is scaled to [0, 1] by a high percentile of its non-zero voxels (MRI intensity
//! normalisation), sliced along one axis, displayed radiologically (anterior at the top),
//! zero-padded to a square, area-resampled to the model size, and empty slices are skipped.
//! A contiguous block of slices, plus a guard band on each side, is held out of training.

use super::data::{image_seed, DataSource};
use crate::io::nifti_io::read_nifti;
use anyhow::{bail, Context};
use ndarray::{s, Array2, Array3, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
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

/// Which slices to return from [`volume_slices`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// Slices outside the held-out block and its guard band.
    Train,
    /// The held-out block.
    HeldOut,
}

/// Area-weighted resampling of a 2-D image to `size × size` (each output pixel is the exact
/// average of the input area it covers when shrinking; linear interpolation when enlarging is
/// not needed for training data, so enlarging uses the same box weights, i.e. nearest-area).
pub fn resize_area(img: &Array2<f32>, size: usize) -> Array2<f32> {
    let (h, w) = img.dim();
    // Row weights R[size × h] and column weights C[size × w]: out = R · img · Cᵀ.
    let weights = |n: usize| -> Array2<f32> {
        let scale = n as f64 / size as f64;
        Array2::from_shape_fn((size, n), |(o, i)| {
            let (lo, hi) = (o as f64 * scale, (o as f64 + 1.0) * scale);
            let overlap = (hi.min(i as f64 + 1.0) - lo.max(i as f64)).max(0.0);
            (overlap / scale) as f32
        })
    };
    weights(h).dot(img).dot(&weights(w).t())
}

/// Reads `cfg.path` and returns the normalised `size × size` slices of `split`, with their
/// indices along `cfg.axis`.
pub fn volume_slices(
    cfg: &VolumeSlicing,
    size: usize,
    split: Split,
) -> anyhow::Result<Vec<(usize, Array2<f32>)>> {
    if cfg.axis > 2 {
        bail!("nifti-slices: axis {} must be 0, 1 or 2", cfg.axis)
    }
    if !(cfg.percentile > 0.0 && cfg.percentile <= 100.0) {
        bail!("nifti-slices: percentile {} must be in (0, 100]", cfg.percentile)
    }
    let vol = read_nifti(&cfg.path)?.data;
    let n = vol.len_of(Axis(cfg.axis));
    let [lo, hi] = cfg.holdout;
    if !(lo < hi && hi <= n) {
        bail!(
            "{}: held-out block [{lo}, {hi}) must be a non-empty range within the {n} slices of axis {}",
            cfg.path.display(),
            cfg.axis
        )
    }
    let scale = percentile_of_nonzero(&vol, cfg.percentile)
        .with_context(|| format!("{}: the volume is all zero", cfg.path.display()))?;
    let keep = |k: usize| match split {
        Split::HeldOut => (lo..hi).contains(&k),
        Split::Train => k + cfg.guard < lo || k >= hi + cfg.guard,
    };
    let mut out = Vec::new();
    for k in (0..n).filter(|&k| keep(k)) {
        let sl = vol.index_axis(Axis(cfg.axis), k);
        // Radiological display: rows = second in-plane axis reversed (anterior/superior up).
        let img = sl.t().slice(s![..;-1, ..]).mapv(|v| (v / scale).clamp(0.0, 1.0));
        let (h, w) = img.dim();
        let side = h.max(w);
        let mut square = Array2::<f32>::zeros((side, side));
        let (r0, c0) = ((side - h) / 2, (side - w) / 2);
        square.slice_mut(s![r0..r0 + h, c0..c0 + w]).assign(&img);
        let resized = resize_area(&square, size);
        let filled = resized.iter().filter(|&&v| v > 0.1).count() as f32 / (size * size) as f32;
        if filled >= cfg.min_fill {
            out.push((k, resized));
        }
    }
    if out.is_empty() {
        bail!("{}: no non-empty slice in the {split:?} split", cfg.path.display())
    }
    Ok(out)
}

/// The `p`-th percentile (nearest rank) of the non-zero voxels.
fn percentile_of_nonzero(vol: &Array3<f32>, p: f32) -> Option<f32> {
    let mut v: Vec<f32> = vol.iter().copied().filter(|&x| x > 0.0).collect();
    if v.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * (v.len() - 1) as f32).round() as usize;
    let (_, x, _) = v.select_nth_unstable_by(rank, f32::total_cmp);
    Some(*x)
}

/// Training slices of a volume; each draw picks a slice (and a flip) from (seed, step, index).
pub struct VolumeSource {
    slices: Vec<Array2<f32>>,
    seed: u64,
    flip: bool,
    description: String,
}

impl VolumeSource {
    /// Loads the training split of `cfg` at `size²`.
    pub fn open(cfg: &VolumeSlicing, size: usize, seed: u64) -> anyhow::Result<Self> {
        let slices: Vec<Array2<f32>> = volume_slices(cfg, size, Split::Train)?
            .into_iter()
            .map(|(_, s)| s)
            .collect();
        let description = format!(
            "{} axis {} ({} training slices, held out [{}, {}) ± {}, {size}², flip {})",
            file_name(&cfg.path),
            cfg.axis,
            slices.len(),
            cfg.holdout[0],
            cfg.holdout[1],
            cfg.guard,
            cfg.flip
        );
        Ok(Self {
            slices,
            seed,
            flip: cfg.flip,
            description,
        })
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl DataSource for VolumeSource {
    fn image(&self, step: u64, index: usize) -> anyhow::Result<Array2<f32>> {
        let mut rng = ChaCha8Rng::seed_from_u64(image_seed(self.seed, step, index));
        let img = &self.slices[rng.random_range(0..self.slices.len())];
        Ok(if self.flip && rng.random::<bool>() {
            img.slice(s![.., ..;-1]).to_owned()
        } else {
            img.clone()
        })
    }
    fn describe(&self) -> String {
        self.description.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn area_resize_preserves_the_mean_and_averages_blocks() {
        let img = Array2::from_shape_fn((6, 9), |(r, c)| (r * 9 + c) as f32);
        let out = resize_area(&img, 3);
        // Output (0, 0) covers rows 0–1 and columns 0–2 exactly.
        let block = img.slice(s![0..2, 0..3]).mean().unwrap();
        assert!((out[[0, 0]] - block).abs() < 1e-4, "{} vs {block}", out[[0, 0]]);
        assert!((out.mean().unwrap() - img.mean().unwrap()).abs() < 1e-3);
        // Non-integer ratio: still mean-preserving.
        let out = resize_area(&img, 4);
        assert!((out.mean().unwrap() - img.mean().unwrap()).abs() < 1e-3);
    }
}
