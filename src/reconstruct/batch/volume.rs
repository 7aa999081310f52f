//! Volumes (NIfTI, DICOM) reconstructed slice by slice: each slice measured with the problem's
//! forward model (one [`CtScan`] or [`MriScan`], as `simulate` uses), on the prior's grid,
//! `batch_size` slices at a time through the score sampler, with the memory check before.

use crate::error::{invalid, InputContext};
use crate::eval::uncertainty::object_mean_sd;
use crate::io::dicom::padding::AIR_HU;
use crate::io::measurement::{Geometry, Measurement};
use crate::io::memory::{bytes_of, F32};
use crate::model::LoadedModel;
use crate::reconstruct::batch::VolumeSettings;
use crate::reconstruct::{recon_bytes, reconstruct_batch, ReconJob, ReconSize};
use crate::task::ct_scan::{CtNoise, CtScan};
use crate::task::mri_scan::{MaskPattern, MriScan, VOLUME_CENTER_FRACTION};
use crate::task::Problem;
use anyhow::{anyhow, Result};
use medsgm_operators::radon::RadonGeometry;
use medsgm_operators::resample::{resample, side_at_spacing};
use ndarray::{Array2, Array3, Axis};

/// The measurement of one image slice under the problem's forward model (noiseless): the
/// CT or MRI acquisition of [`crate::task`] that `simulate` uses.
fn slice_measurement(
    problem: Problem,
    volume: &VolumeSettings,
    image: &Array2<f32>,
    units: &str,
) -> Result<Measurement> {
    let (h, w) = image.dim();
    match problem {
        Problem::Ct => {
            if h != w {
                return Err(invalid(format!("CT needs square slices, got {h}x{w}")));
            }
            let views = volume.views;
            let scan = match &volume.fan {
                None => CtScan::parallel(h, views, CtNoise::None),
                Some(fan) => CtScan {
                    geometry: Geometry::fan_beam(&fan.geometry(h, None, None, None, views)?),
                    kept: (0..views).collect(),
                    noise: CtNoise::None,
                },
            };
            scan.simulate(image, 0, units == HU_UNITS).invalid_input()
        }
        Problem::Mri => {
            let scan = MriScan {
                pattern: MaskPattern::Equispaced,
                acceleration: volume.acceleration,
                center_fraction: VOLUME_CENTER_FRACTION,
                sigma: None,
            };
            scan.simulate(image, 0).invalid_input()
        }
        Problem::Mar => Err(invalid(
            "mar reconstructs measurement files only (simulate them with `medsgm simulate mar`)",
        )),
    }
}

/// Sidecar units of volume slices in HU (DICOM CT): the score methods map them to the prior's
/// HU window without `--units`.
pub(super) const HU_UNITS: &str = "HU";
/// Sidecar units of other volume slices (ambiguous: the score methods need `--units`).
pub(super) const IMAGE_UNITS: &str = "image intensity";

/// Centred padding of `shape` images to a square of side max(h, w) with `fill` (when
/// `active`), and the crop back.
struct SquarePad {
    shape: (usize, usize),
    active: bool,
    fill: f32,
}

impl SquarePad {
    fn offsets(&self) -> (usize, usize, usize) {
        let (h, w) = self.shape;
        let side = h.max(w);
        (side, (side - h) / 2, (side - w) / 2)
    }

    fn pad(&self, img: &Array2<f32>) -> Array2<f32> {
        let (side, r0, c0) = self.offsets();
        if !self.active || (side, side) == img.dim() {
            return img.clone();
        }
        let (h, w) = img.dim();
        let mut out = Array2::from_elem((side, side), self.fill);
        out.slice_mut(ndarray::s![r0..r0 + h, c0..c0 + w])
            .assign(img);
        out
    }

    fn crop(&self, img: &Array2<f32>) -> Array2<f32> {
        let (side, r0, c0) = self.offsets();
        if !self.active || img.dim() != (side, side) || self.shape == (side, side) {
            return img.clone();
        }
        let (h, w) = self.shape;
        img.slice(ndarray::s![r0..r0 + h, c0..c0 + w]).to_owned()
    }
}

/// The grid a slice of `shape` pixels at `spacing_mm` is reconstructed on: the prior's pixel
/// spacing over the same field of view when the prior records one and the slice's differs from
/// it by more than 10 %, else the slice's own grid.
fn prior_grid(
    model: Option<&LoadedModel>,
    shape: (usize, usize),
    spacing_mm: Option<f32>,
) -> (usize, usize) {
    match (model.and_then(|m| m.pixel_spacing_mm()), spacing_mm) {
        (Some(p), Some(s)) if (s / p - 1.0).abs() > 0.1 => (
            side_at_spacing(shape.0, s, p).max(8),
            side_at_spacing(shape.1, s, p).max(8),
        ),
        _ => shape,
    }
}

/// Fails (invalid input) when reconstructing `volume` along `axis` would exceed the memory
/// budget: one sampler batch of slices on the reconstruction grid ([`prior_grid`]) plus the
/// input, output and resampled volumes. `label` names the input.
pub(super) fn check_volume_memory(
    job: &ReconJob,
    settings: &VolumeSettings,
    label: &str,
    input: &Volume,
    model: Option<&LoadedModel>,
) -> Result<()> {
    let Volume {
        data: volume,
        axis,
        spacing_mm,
        ..
    } = *input;
    if axis > 2 {
        return Err(invalid(format!("--axis {axis}: a volume has axes 0, 1, 2")));
    }
    let n = volume.len_of(Axis(axis));
    if n == 0 {
        return Ok(());
    }
    let native = volume.index_axis(Axis(axis), 0).dim();
    let grid = prior_grid(model, native, spacing_mm);
    let side = grid.0.max(grid.1);
    let size = match job.problem {
        Problem::Ct => ReconSize::Ct {
            size: side,
            views: settings.views,
            n_det: RadonGeometry::default_n_det(side),
            det_spacing: 1.0,
            fan: false,
        },
        _ => ReconSize::Mri {
            h: grid.0,
            w: grid.1,
        },
    };
    let chunk = n.min(usize::from(settings.batch_size));
    let volumes = bytes_of(&[(volume.len() as u64, F32 * 4)]);
    job.memory.check(
        label,
        recon_bytes(job, size, chunk, model).saturating_add(volumes),
    )
}

/// A volume input to reconstruct slice by slice.
#[derive(Debug, Clone, Copy)]
pub(super) struct Volume<'a> {
    /// The voxels.
    pub data: &'a Array3<f32>,
    /// Their units: [`HU_UNITS`] or [`IMAGE_UNITS`].
    pub units: &'static str,
    /// In-plane pixel spacing (mm), when known.
    pub spacing_mm: Option<f32>,
    /// The slice axis.
    pub axis: usize,
}

/// Reconstructs every slice of the volume `input` (in its `units`: "HU" or "image intensity";
/// in-plane pixel spacing `spacing_mm` when known) along its `axis` into a volume of the same
/// shape, on the prior's grid ([`prior_grid`]) and resampled back, with each slice's
/// posterior-spread figure when the method drew K ≥ 2 samples.
pub(super) fn reconstruct_volume(
    job: &ReconJob,
    settings: &VolumeSettings,
    input: &Volume,
    model: Option<&LoadedModel>,
    bar: &indicatif::ProgressBar,
) -> Result<VolumeRecon> {
    let Volume {
        data: volume,
        units,
        spacing_mm,
        axis,
    } = *input;
    if axis > 2 {
        return Err(invalid(format!("--axis {axis}: a volume has axes 0, 1, 2")));
    }
    let n = volume.len_of(Axis(axis));
    bar.set_length(n as u64);
    bar.set_position(0);
    let mut out = Array3::<f32>::zeros(volume.dim());
    let mut spread = Vec::with_capacity(n);
    let mut typical = Vec::with_capacity(n);
    let slices: Vec<usize> = (0..n).collect();
    let native = volume.index_axis(Axis(axis), 0).dim();
    let grid = prior_grid(model, native, spacing_mm);
    // Parallel-beam CT reconstructs square images: non-square slices are padded with air.
    let square = SquarePad {
        shape: grid,
        active: job.problem == Problem::Ct,
        fill: if units == HU_UNITS { AIR_HU } else { 0.0 },
    };
    // the spacing of the grid measured (FISTA-TV's weight depends on it, `tv_weight`)
    let grid_spacing =
        spacing_mm.map(|s| s * native.0.max(native.1) as f32 / grid.0.max(grid.1) as f32);
    if grid != native {
        eprintln!(
            "slices of {}x{} at {:.3} mm are reconstructed on the prior's {:.3} mm grid ({}x{}) and resampled back",
            native.0,
            native.1,
            spacing_mm.unwrap_or(f32::NAN),
            model.and_then(|m| m.pixel_spacing_mm()).unwrap_or(f32::NAN),
            grid.0,
            grid.1
        );
    }
    for (b, chunk) in slices.chunks(usize::from(settings.batch_size)).enumerate() {
        let ms = chunk
            .iter()
            .map(|&k| {
                let slice = resample(&volume.index_axis(Axis(axis), k).to_owned(), grid);
                let mut m = slice_measurement(job.problem, settings, &square.pad(&slice), units)?;
                m.sidecar.pixel_spacing_mm = grid_spacing;
                Ok(m)
            })
            .collect::<Result<Vec<_>>>()?;
        let rs = reconstruct_batch(&job.for_batch(b), &ms, model)?;
        for (&k, r) in chunk.iter().zip(&rs) {
            let image = square.crop(&r.image);
            if image.dim() != grid {
                return Err(anyhow!(
                    "slice {k}: the reconstruction is {:?}, the grid {grid:?}",
                    image.dim()
                ));
            }
            out.index_axis_mut(Axis(axis), k)
                .assign(&resample(&image, native));
            if let Some(sd) = &r.std {
                spread.push(object_mean_sd(&image, &square.crop(sd)));
            }
            typical.extend(r.typicality);
        }
        bar.inc(chunk.len() as u64);
    }
    Ok(VolumeRecon {
        image: out,
        posterior_sd: (spread.len() == n).then_some(spread),
        typicality: (typical.len() == n).then_some(typical),
    })
}

/// A reconstructed volume and its per-slice figures.
pub(super) struct VolumeRecon {
    /// The volume, in the input's shape.
    pub image: Array3<f32>,
    /// Per slice, the mean posterior standard deviation over the object (K ≥ 2 samples).
    pub posterior_sd: Option<Vec<f64>>,
    /// Per slice, the out-of-distribution figures (calibrated priors).
    pub typicality: Option<Vec<crate::eval::typicality::Typicality>>,
}
