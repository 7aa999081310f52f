//! Quality against `--reference`: the ground-truth volume named like an input, and PSNR/SSIM
//! averaged over its slices (padding excluded).

use crate::error::{invalid, InputContext};
use crate::io::dicom::padding::AIR_HU;
use crate::io::dicom::read_dicom;
use crate::io::nifti_io::read_nifti;
use crate::io::{read_image, ImageReadOptions};
use crate::reconstruct::batch::worklist::WorkItem;
use crate::reconstruct::batch::BatchJob;
use anyhow::Result;
use medsgm_operators::metrics::{psnr, ssim, SsimPreset};
use ndarray::{Array3, Axis};
use serde::Serialize;

/// Image quality against the reference, averaged over slices.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quality {
    /// PSNR in dB (data range = reference max − min).
    pub psnr: f64,
    /// SSIM (Gaussian window, Wang 2004).
    pub ssim: f64,
}

/// The reference volume of an item (slices along `axis`), if the reference folder has one.
fn reference_volume(batch: &BatchJob, item: &WorkItem) -> Result<Option<(Array3<f32>, usize)>> {
    let Some(dir) = &batch.reference else {
        return Ok(None);
    };
    for ext in ["npy", "nii.gz", "nii", "png"] {
        let p = dir.join(format!("{}.{ext}", item.name));
        if p.is_file() {
            return Ok(Some(match ext {
                "nii.gz" | "nii" => (read_nifti(&p).invalid_input()?.data, batch.axis_of(item)),
                _ => {
                    let image = read_image(&p, &ImageReadOptions::default()).invalid_input()?;
                    (image.insert_axis(Axis(0)), 0)
                }
            }));
        }
    }
    let p = dir.join(&item.name);
    if p.is_dir() {
        return Ok(Some((read_dicom(&p).invalid_input()?.data, 0)));
    }
    Ok(None)
}

/// [`reference_volume`], checked to hold finite values only.
pub(super) fn checked_reference(
    batch: &BatchJob,
    item: &WorkItem,
) -> Result<Option<(Array3<f32>, usize)>> {
    let reference = reference_volume(batch, item)?;
    if let Some((v, _)) = &reference {
        if v.iter().any(|x| !x.is_finite()) {
            return Err(invalid(format!(
                "the reference of {} holds non-finite values (NaN or Inf)",
                item.label()
            )));
        }
    }
    Ok(reference)
}

/// `v` with the pixels of `mask` (when given) set to `value`.
pub(super) fn with_padding(
    v: &Array3<f32>,
    mask: Option<&Array3<bool>>,
    value: f32,
) -> Array3<f32> {
    let mut out = v.clone();
    if let Some(mask) = mask {
        ndarray::Zip::from(&mut out)
            .and(mask)
            .for_each(|o, &padded| {
                if padded {
                    *o = value
                }
            });
    }
    out
}

/// PSNR/SSIM of `x` against the reference, averaged over the slices along `axis`. Padded
/// pixels (`padding`, DICOM Pixel Padding Value) are no tissue: they are set to air in both
/// before the comparison, so they neither add error nor widen the data range.
pub(super) fn quality(
    x: &Array3<f32>,
    reference: &Array3<f32>,
    axis: usize,
    padding: Option<&Array3<bool>>,
) -> Result<Option<Quality>> {
    if x.dim() != reference.dim() {
        return Err(invalid(format!(
            "the reference has shape {:?}, the reconstruction {:?}",
            reference.dim(),
            x.dim()
        )));
    }
    let padding = padding.filter(|m| m.dim() == x.dim());
    let (x, reference) = (
        &with_padding(x, padding, AIR_HU),
        &with_padding(reference, padding, AIR_HU),
    );
    let (lo, hi) = reference
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    if !(hi > lo) {
        // PSNR and SSIM need the reference's data range; a constant reference has none
        return Ok(None);
    }
    let range = f64::from(hi - lo);
    let n = x.len_of(Axis(axis));
    let (mut p, mut s) = (0.0, 0.0);
    for k in 0..n {
        let (xs, rs) = (
            x.index_axis(Axis(axis), k),
            reference.index_axis(Axis(axis), k),
        );
        p += psnr(&xs, &rs, range)?;
        s += ssim(&xs, &rs, range, SsimPreset::Gaussian)?;
    }
    Ok(Some(Quality {
        psnr: p / n as f64,
        ssim: s / n as f64,
    }))
}
