//! `medsgm recon … --input <file|folder|manifest.csv> --output <folder>`: batch reconstruction
//! of volumes and folders.
//!
//! Inputs (see [`worklist`]): measurement files are reconstructed as by the single-file
//! command; NIfTI volumes and DICOM files/series are measured slice by slice along `--axis`
//! with the problem's forward model (CT: `--views` equispaced parallel-beam views of the image
//! in its own units, e.g. HU, or fan-beam views with `--geometry fan` — one
//! [`crate::task::ct_scan::CtScan`], as `simulate ct` uses; MRI: equispaced Cartesian columns at `--acceleration`, 8 %
//! centre) and reconstructed from that simulated measurement, `--batch` slices at a time
//! through the score sampler ([`recon::reconstruct_batch`]).
//!
//! Outputs in `--output`, each written to a temporary name and renamed, so an output that
//! exists is complete (this is what `--resume` checks): `<name>.npy` for measurements
//! (`<name>_std.npy` with K > 1 samples), `<name>.nii.gz` for NIfTI inputs (the input's header:
//! qform/sform, pixdim, units), `<name>/` — a new derived DICOM series (new UIDs,
//! SeriesDescription naming the method, `--anonymize` de-identifies) — for DICOM inputs.
//! `summary.json` (`summary_shard_K_of_N.json` with `--shard`) is rewritten atomically after
//! every input: per input its status (`ok`, `failed`, `skipped`), outputs, error, seconds and,
//! with `--reference`, PSNR/SSIM against the reference of the same name.
//!
//! Exit code: 0 when every input succeeded or was skipped; otherwise the run still processes
//! every input and exits 1 when some failure was a runtime failure, else 2 (invalid input).

use crate::cli::args::progress;
use crate::cli::model::LoadedModel;
use crate::cli::recon::{self, ReconArgs};
use crate::cli::simulate::{Beam, CtGeometryArgs, FanArgs};
use crate::cli::worklist::{self, InputKind, Naming, Shard, WorkItem};
use crate::cli::{exit_code, invalid, InputContext};
use crate::eval::uncertainty::{object_mean_sd, SliceTrust};
use crate::io::atomic::write_bytes_atomic;
use crate::io::dicom::padding::AIR_HU;
use crate::io::dicom::{
    declared_input_pixels, read_dicom, read_dicom_series, write_derived_series,
    DerivedSeriesOptions,
};
use crate::io::folder_lock::{try_lock_folder, FolderLock};
use crate::io::guard::{refuse_nested_output, refuse_overwriting_inputs, resolved};
use crate::io::measurement::{Geometry, Measurement};
use crate::io::memory::{bytes_of, F32};
use crate::io::nifti_io::{read_nifti, read_nifti_shape, write_nifti, NiftiMeta};
use crate::io::privacy;
use crate::io::{read_image, write_image, ImageReadOptions, ImageWriteOptions};
use crate::task::ct_scan::{CtNoise, CtScan};
use crate::task::mri_scan::{MaskPattern, MriScan, VOLUME_CENTER_FRACTION};
use crate::task::Problem;
use crate::train::volume::in_plane_spacing;
use anyhow::{anyhow, Context, Result};
use clap::{Args, ValueEnum};
use indicatif::MultiProgress;
use medsgm_operators::metrics::{psnr, ssim, SsimPreset};
use medsgm_operators::radon::RadonGeometry;
use medsgm_operators::resample::{resample_area, side_at_spacing};
use ndarray::{Array2, Array3, Axis};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Options of batch processing.
#[derive(Debug, Clone, Args)]
pub struct BatchArgs {
    /// Batch mode: output folder (created) for every input of --input.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Process only shard K of N (0-based) of the sorted work list: inputs i with i mod N = K.
    #[arg(long, requires = "output")]
    pub shard: Option<Shard>,
    /// Skip inputs whose output already exists (outputs are renamed into place when complete).
    #[arg(long, requires = "output")]
    pub resume: bool,
    /// Folder of ground-truth images named like the inputs (`<name>.npy`, `.nii`, `.nii.gz`
    /// or a DICOM series folder `<name>/`): PSNR and SSIM go to the summary.
    #[arg(long, requires = "output")]
    pub reference: Option<PathBuf>,
    /// De-identify: DICOM outputs after the PS3.15 basic profile (one new StudyInstanceUID per
    /// source study), pseudonymous output names `case_NNNN` (by position in the sorted input
    /// list), and no input names, UIDs or quoted header values in the summary or progress lines.
    #[arg(long, requires = "output")]
    pub anonymize: bool,
    /// With --anonymize: also write the pseudonym → input mapping (CSV) to this file. It
    /// identifies the inputs: keep it apart from the shared outputs.
    #[arg(long, requires = "anonymize")]
    pub anonymize_map: Option<PathBuf>,
    /// Volumes: the slice axis (default: 2 for NIfTI, 0 for DICOM; DICOM output needs 0).
    #[arg(long, requires = "output")]
    pub axis: Option<usize>,
    /// Volumes, CT: number of simulated equispaced views over [0°, 180°) (fan beam: over the
    /// scan) [default: 23].
    #[arg(long)]
    pub views: Option<usize>,
    /// Volumes, CT: the simulated beam (`--geometry fan` and its options, as for
    /// `simulate ct`).
    #[command(flatten)]
    pub fan: FanArgs,
    /// Volumes, MRI: simulated acceleration (equispaced columns, 8 % fully sampled centre)
    /// [default: 4].
    #[arg(long)]
    pub acceleration: Option<f64>,
    /// Volumes: slices sampled together in one batch by the score-based methods (B·K images
    /// per score evaluation). The random draws depend on it: reproduce a run with the same
    /// --seed and --batch [default: 8].
    #[arg(long = "batch", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub batch_size: Option<u16>,
}

/// Default number of simulated views of a CT volume slice.
const VOLUME_VIEWS: usize = 23;
/// Default simulated MRI acceleration of a volume slice.
const VOLUME_ACCELERATION: f64 = 4.0;
/// Default slices per score-model batch.
const VOLUME_BATCH: u16 = 8;

impl BatchArgs {
    /// Simulated views of a CT volume slice.
    pub fn views(&self) -> usize {
        self.views.unwrap_or(VOLUME_VIEWS)
    }

    /// Simulated acceleration of an MRI volume slice.
    pub fn acceleration(&self) -> f64 {
        self.acceleration.unwrap_or(VOLUME_ACCELERATION)
    }

    /// Slices per score-model batch.
    pub fn batch_size(&self) -> u16 {
        self.batch_size.unwrap_or(VOLUME_BATCH)
    }

    /// Checks the volume flags against the problem and their ranges (before any work):
    /// --views for CT in 1..=100000, --acceleration for MRI in [1, 1000], --axis 0, 1 or 2.
    pub fn check_volume_flags(&self, problem: Problem) -> Result<()> {
        if let Some(v) = self.views {
            if problem != Problem::Ct {
                return Err(invalid(format!(
                    "--views applies to ct volumes, not {problem}"
                )));
            }
            if !(1..=100_000).contains(&v) {
                return Err(invalid(format!("--views must be in 1..=100000, got {v}")));
            }
        }
        if let Some(r) = self.acceleration {
            if problem != Problem::Mri {
                return Err(invalid(format!(
                    "--acceleration applies to mri volumes, not {problem}"
                )));
            }
            if !(r.is_finite() && (1.0..=1000.0).contains(&r)) {
                return Err(invalid(format!(
                    "--acceleration must be in [1, 1000], got {r}"
                )));
            }
        }
        if let Some(axis) = self.axis.filter(|&x| x > 2) {
            return Err(invalid(format!("--axis must be 0, 1 or 2, got {axis}")));
        }
        self.fan.validate()?;
        if self.fan.beam == Beam::Fan && problem != Problem::Ct {
            return Err(invalid(format!(
                "--geometry fan applies to ct volumes, not {problem}"
            )));
        }
        Ok(())
    }
}

/// Outcome of one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Reconstructed and written.
    Ok,
    /// Failed (see `error`).
    Failed,
    /// Output already present (`--resume`).
    Skipped,
}

/// Image quality against the reference, averaged over slices.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quality {
    /// PSNR in dB (data range = reference max − min).
    pub psnr: f64,
    /// SSIM (Gaussian window, Wang 2004).
    pub ssim: f64,
}

/// One input's entry in the summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileReport {
    /// The input path.
    pub input: String,
    /// Its kind.
    pub kind: InputKind,
    /// Status.
    pub status: Status,
    /// Output files or folders.
    pub outputs: Vec<String>,
    /// Error message (failed inputs; never patient identifiers).
    pub error: Option<String>,
    /// Exit code class of the error: 2 invalid input, 1 runtime failure.
    pub error_code: Option<u8>,
    /// Slices reconstructed.
    pub slices: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Quality against `--reference`.
    pub metrics: Option<Quality>,
    /// Score methods with `--samples` K ≥ 2: per slice, the mean posterior standard deviation
    /// over the object (data units; see [`crate::eval::uncertainty`]): how much the prior had
    /// to fill in where the data are silent.
    pub posterior_sd: Option<Vec<f64>>,
    /// Score methods with a calibrated prior: per slice, the denoising residual of the
    /// reconstruction ([`crate::eval::typicality`]).
    pub typicality: Option<Vec<f64>>,
    /// Whether any slice's residual exceeds the prior's calibrated threshold: the input looks
    /// unlike the training data and the prior may have invented structure.
    pub ood_warning: bool,
}

/// What [`process`] made of one input.
struct Processed {
    outputs: Vec<PathBuf>,
    slices: usize,
    metrics: Option<Quality>,
    posterior_sd: Option<Vec<f64>>,
    typicality: Option<Vec<(f64, bool)>>,
}

/// `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// medsgm version.
    pub medsgm_version: String,
    /// Problem and method names.
    pub problem: String,
    /// Method.
    pub method: String,
    /// `--shard` when given.
    pub shard: Option<String>,
    /// Counts of ok / failed / skipped inputs.
    pub ok: usize,
    /// Failed inputs.
    pub failed: usize,
    /// Skipped inputs.
    pub skipped: usize,
    /// Per input, in work-list order.
    pub files: Vec<FileReport>,
}

/// The clap name of a value.
fn value_name<T: ValueEnum>(v: &T) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_owned())
        .unwrap_or_default()
}

/// Checks the batch's outputs before any work: the output folder is not nested with the input
/// folder, no output (main or `_std` map) is an input, and no two inputs share an output name
/// (e.g. `a.npy`'s std map `a_std.npy` and the input `a_std.npy`).
fn plan_outputs(input: &Path, items: &[WorkItem], out_dir: &Path) -> Result<()> {
    refuse_nested_output(input, out_dir)?;
    let mut seen: std::collections::HashMap<PathBuf, &Path> = Default::default();
    let inputs: Vec<PathBuf> = items.iter().map(|i| i.path.clone()).collect();
    for item in items {
        let main = output_path(out_dir, item);
        let outputs = [recon::std_path(&main), main];
        refuse_overwriting_inputs(&outputs, &inputs)?;
        for o in outputs {
            if let Some(other) = seen.insert(resolved(&o), &item.path) {
                anyhow::bail!(
                    "the inputs {} and {} would both write {}: rename one of them",
                    other.display(),
                    item.path.display(),
                    o.display()
                );
            }
        }
    }
    Ok(())
}

/// The main output path of an item.
pub fn output_path(dir: &Path, item: &WorkItem) -> PathBuf {
    match item.kind {
        InputKind::Nifti => dir.join(format!("{}.nii.gz", item.name)),
        InputKind::Dicom => dir.join(&item.name),
        _ => dir.join(format!("{}.npy", item.name)),
    }
}

/// The measurement of one image slice under the problem's forward model (noiseless): the
/// CT or MRI acquisition of [`crate::task`] that `simulate` uses.
fn slice_measurement(a: &ReconArgs, image: &Array2<f32>, units: &str) -> Result<Measurement> {
    let (h, w) = image.dim();
    match a.problem {
        Problem::Ct => {
            if h != w {
                return Err(invalid(format!("CT needs square slices, got {h}x{w}")));
            }
            let views = a.batch.views();
            let geometry = match a.batch.fan.beam {
                Beam::Parallel => Geometry::ParallelBeam {
                    size: h,
                    angles_deg: (0..views)
                        .map(|k| k as f32 * 180.0 / views as f32)
                        .collect(),
                    n_det: RadonGeometry::default_n_det(h),
                    det_spacing: 1.0,
                },
                Beam::Fan => {
                    let g = CtGeometryArgs {
                        views: Some(views),
                        angles: None,
                        full_views: None,
                        n_det: None,
                        det_spacing: None,
                    };
                    Geometry::fan_beam(&a.batch.fan.geometry(h, &g, views)?)
                }
            };
            let scan = CtScan {
                geometry,
                kept: (0..views).collect(),
                noise: CtNoise::None,
            };
            scan.simulate(image, 0, units == HU_UNITS).invalid_input()
        }
        Problem::Mri => {
            let scan = MriScan {
                pattern: MaskPattern::Equispaced,
                acceleration: a.batch.acceleration(),
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
const HU_UNITS: &str = "HU";
/// Sidecar units of other volume slices (ambiguous: the score methods need `--units`).
const IMAGE_UNITS: &str = "image intensity";

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
fn check_volume_memory(
    a: &ReconArgs,
    label: &str,
    volume: &Array3<f32>,
    axis: usize,
    spacing_mm: Option<f32>,
    model: Option<&LoadedModel>,
) -> Result<()> {
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
    let size = match a.problem {
        Problem::Ct => recon::ReconSize::Ct {
            size: side,
            views: a.batch.views(),
            n_det: RadonGeometry::default_n_det(side),
            det_spacing: 1.0,
            fan: false,
        },
        _ => recon::ReconSize::Mri {
            h: grid.0,
            w: grid.1,
        },
    };
    let chunk = n.min(usize::from(a.batch.batch_size()));
    let volumes = bytes_of(&[(volume.len() as u64, F32 * 4)]);
    a.memory.check(
        label,
        recon::recon_bytes(a, size, chunk, model)?.saturating_add(volumes),
    )
}

/// Reconstructs every slice of `volume` (in `units`: "HU" or "image intensity"; in-plane pixel
/// spacing `spacing_mm` when known) along `axis` into a volume of the same shape, on the
/// prior's grid ([`prior_grid`]) and resampled back, with each slice's posterior-spread
/// figure when the method drew K ≥ 2 samples.
fn reconstruct_volume(
    a: &ReconArgs,
    volume: &Array3<f32>,
    units: &str,
    spacing_mm: Option<f32>,
    axis: usize,
    model: Option<&LoadedModel>,
    bar: &indicatif::ProgressBar,
) -> Result<VolumeRecon> {
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
        active: a.problem == Problem::Ct,
        fill: if units == HU_UNITS { AIR_HU } else { 0.0 },
    };
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
    for chunk in slices.chunks(usize::from(a.batch.batch_size())) {
        let ms = chunk
            .iter()
            .map(|&k| {
                let slice = resample_area(&volume.index_axis(Axis(axis), k).to_owned(), grid);
                slice_measurement(a, &square.pad(&slice), units)
            })
            .collect::<Result<Vec<_>>>()?;
        let rs = recon::reconstruct_batch(a, &ms, model)?;
        for (&k, r) in chunk.iter().zip(&rs) {
            let image = square.crop(&r.image);
            if image.dim() != grid {
                return Err(anyhow!(
                    "slice {k}: the reconstruction is {:?}, the grid {grid:?}",
                    image.dim()
                ));
            }
            out.index_axis_mut(Axis(axis), k)
                .assign(&resample_area(&image, native));
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
struct VolumeRecon {
    image: Array3<f32>,
    posterior_sd: Option<Vec<f64>>,
    typicality: Option<Vec<(f64, bool)>>,
}

/// The reference volume of an item (slices along `axis`), if the reference folder has one.
fn reference_volume(a: &ReconArgs, item: &WorkItem) -> Result<Option<(Array3<f32>, usize)>> {
    let Some(dir) = &a.batch.reference else {
        return Ok(None);
    };
    for ext in ["npy", "nii.gz", "nii", "png"] {
        let p = dir.join(format!("{}.{ext}", item.name));
        if p.is_file() {
            return Ok(Some(match ext {
                "nii.gz" | "nii" => (read_nifti(&p).invalid_input()?.data, axis_of(a, item)),
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
fn checked_reference(a: &ReconArgs, item: &WorkItem) -> Result<Option<(Array3<f32>, usize)>> {
    let reference = reference_volume(a, item)?;
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
fn with_padding(v: &Array3<f32>, mask: Option<&Array3<bool>>, value: f32) -> Array3<f32> {
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
fn quality(
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

/// The slice axis of a volume input.
fn axis_of(a: &ReconArgs, item: &WorkItem) -> usize {
    a.batch.axis.unwrap_or(match item.kind {
        InputKind::Nifti => 2,
        _ => 0,
    })
}

/// DICOM series settings naming the method.
fn series_options(a: &ReconArgs) -> Result<DerivedSeriesOptions> {
    let method = value_name(&a.method);
    let settings = method_settings(a)?;
    Ok(DerivedSeriesOptions {
        description: format!("medsgm {method} {settings}"),
        derivation: format!(
            "medsgm {} recon {} --method {method} {settings} (from a simulated measurement)",
            env!("CARGO_PKG_VERSION"),
            value_name(&a.problem)
        ),
        anonymize: a.batch.anonymize,
        ..DerivedSeriesOptions::default()
    })
}

/// The method's settings in a few words, e.g. "N=50 eta=0.7 gamma=1000 cg=5 t0=0.5 K=2 seed=0".
fn method_settings(a: &ReconArgs) -> Result<String> {
    Ok(match a.method.inverse_method() {
        Some(m) if m.decomposed() => {
            let c = a.solver_config(m)?;
            format!(
                "N={} eta={:.3} gamma={:.4} cg={} t0={:.3} K={} seed={}",
                c.steps, c.eta, c.gamma, c.cg_iterations, c.t_start, c.samples, c.seed
            )
        }
        Some(m) if m == medsgm_recon::InverseMethod::Dps => {
            let c = a.solver_config(m)?;
            format!(
                "N={} zeta={:.4} t0={:.3} K={} seed={}",
                c.steps, c.zeta, c.t_start, c.samples, c.seed
            )
        }
        Some(m) => {
            let c = a.solver_config(m)?;
            format!(
                "N={} M={} snr={} lambda={} t0={} K={} seed={}",
                c.steps, c.corrector_steps, c.snr, c.lambda, c.t_start, c.samples, c.seed
            )
        }
        None => match a.problem {
            Problem::Mri => format!("R={}", a.batch.acceleration()),
            _ => format!("views={}", a.batch.views()),
        },
    })
}

/// The posterior samples K of the method (1 for the classical ones).
fn samples_of(a: &ReconArgs) -> Result<usize> {
    Ok(match a.method.inverse_method() {
        Some(m) => a.solver_config(m)?.samples,
        None => 1,
    })
}

/// Reconstructs one input.
fn process(
    a: &ReconArgs,
    item: &WorkItem,
    out_dir: &Path,
    model: Option<&LoadedModel>,
    bar: &indicatif::ProgressBar,
) -> Result<Processed> {
    let out = output_path(out_dir, item);
    let axis = axis_of(a, item);
    // the reference is read (and checked) before any output is written
    let reference = checked_reference(a, item)?;
    let mut pad_mask = None;
    let mut posterior_sd = None;
    let typicality;
    let (recon, outputs) = match item.kind {
        InputKind::Unknown => {
            return Err(invalid(format!(
                "{}: not a measurement, NIfTI or DICOM input",
                item.path.display()
            )))
        }
        InputKind::Measurement => {
            bar.set_length(1);
            let m = recon::load_checked(a, &item.path)?;
            let size = recon::ReconSize::of(&m.sidecar.geometry);
            a.memory
                .check(&item.label(), recon::recon_bytes(a, size, 1, model)?)?;
            let r = recon::reconstruct(a, &m, model)?;
            let opts = ImageWriteOptions::default();
            let mut outputs = vec![];
            typicality = r.typicality.map(|t| vec![t]);
            if let Some(std) = &r.std {
                posterior_sd = Some(vec![object_mean_sd(&r.image, std)]);
                let p = recon::std_path(&out);
                write_image(&p, &std.view(), &opts)?;
                outputs.push(p);
            }
            // The main output last: its presence marks the input as complete.
            write_image(&out, &r.image.view(), &opts)?;
            outputs.push(out);
            bar.inc(1);
            (r.image.insert_axis(Axis(0)), outputs)
        }
        InputKind::Nifti => {
            // the decoder's raw and converted copies and the volume, before the read
            let shape = read_nifti_shape(&item.path).invalid_input()?;
            let voxels = shape.iter().map(|&d| d as u64).product::<u64>();
            a.memory
                .check(&item.label(), bytes_of(&[(voxels, 8 + 3 * F32)]))?;
            let vol = read_nifti(&item.path).invalid_input()?;
            let spacing = in_plane_spacing(vol.meta.pixdim, axis);
            check_volume_memory(a, &item.label(), &vol.data, axis, spacing, model)?;
            let v = reconstruct_volume(a, &vol.data, IMAGE_UNITS, spacing, axis, model, bar)?;
            let x = v.image;
            let trust = SliceTrust::per_slice(
                x.len_of(Axis(axis)),
                v.posterior_sd.as_deref(),
                v.typicality.as_deref(),
            );
            // NIfTI descrip (80 bytes): the method and the volume's trust summary
            let meta = NiftiMeta {
                description: Some(format!(
                    "{} {}",
                    value_name(&a.method),
                    SliceTrust::summary(&trust)
                )),
                ..vol.meta
            };
            write_nifti(&out, &x.view().into_dyn(), &meta)?;
            posterior_sd = v.posterior_sd;
            typicality = v.typicality;
            (x, vec![out])
        }
        InputKind::Dicom => {
            if axis != 0 {
                return Err(invalid(
                    "DICOM inputs are reconstructed along their slice axis 0 (drop --axis)",
                ));
            }
            // the per-file decoded frames, their concatenation and the raw pixel data, from
            // the headers before any pixel data is decoded (a series of many large or
            // compressed files must not allocate first)
            let uid = item.series.as_ref().map(|(uid, _, _)| uid.as_str());
            let pixels = declared_input_pixels(&item.path, uid).invalid_input()?;
            a.memory
                .check(&item.label(), bytes_of(&[(pixels, 2 * F32 + 2)]))?;
            let vol = match uid {
                Some(uid) => read_dicom_series(&item.path, Some(uid)),
                None => read_dicom(&item.path),
            }
            .invalid_input()?;
            // CT values are HU after the modality LUT; padded pixels (outside the field of
            // view) are air for the forward model and padding again in the output.
            let padding = vol.padding().filter(|_| vol.is_hu());
            pad_mask = padding.map(|p| p.mask(&vol.data.view()));
            let units = if vol.is_hu() { HU_UNITS } else { IMAGE_UNITS };
            let input = with_padding(&vol.data, pad_mask.as_ref(), AIR_HU);
            let spacing = vol.in_plane_spacing_mm();
            check_volume_memory(a, &item.label(), &input, 0, spacing, model)?;
            let v = reconstruct_volume(a, &input, units, spacing, 0, model, bar)?;
            let x = v.image;
            posterior_sd = v.posterior_sd;
            typicality = v.typicality;
            let x = match padding {
                Some(p) => with_padding(&x, pad_mask.as_ref(), p.hi),
                None => x,
            };
            // the trust figures in the series: a summary in SeriesDescription, each slice's
            // in its ImageComments
            let trust = SliceTrust::per_slice(
                x.len_of(Axis(0)),
                posterior_sd.as_deref(),
                typicality.as_deref(),
            );
            let samples = samples_of(a)?;
            let mut options = series_options(a)?;
            let summary = SliceTrust::summary(&trust);
            if !summary.is_empty() {
                options.description = format!(
                    "medsgm {} {summary} {}",
                    value_name(&a.method),
                    method_settings(a)?
                );
            }
            options.slice_comments = trust.iter().map(|t| t.note(samples)).collect();
            replace_series(&out, |dir| {
                write_derived_series(dir, &x.view(), Some(&vol), &options).map(|_| ())
            })?;
            (x, vec![out])
        }
    };
    let slices = recon.len_of(Axis(axis.min(recon.ndim() - 1)));
    let metrics = match reference {
        Some((reference, ref_axis)) => {
            match quality(&recon, &reference, ref_axis, pad_mask.as_ref()) {
                Ok(q) => q,
                Err(e) => {
                    // a failed input leaves no outputs (its record lists none)
                    for o in &outputs {
                        let _ = std::fs::remove_file(o).or_else(|_| std::fs::remove_dir_all(o));
                    }
                    return Err(e);
                }
            }
        }
        None => None,
    };
    Ok(Processed {
        outputs,
        slices,
        metrics,
        posterior_sd,
        typicality,
    })
}

/// An exclusive lock on the output folder for the whole run ([`try_lock_folder`]): a second
/// run into the same folder is refused instead of mixing its outputs and summary with the
/// first's.
fn lock_output(out_dir: &Path) -> Result<Option<std::fs::File>> {
    match try_lock_folder(out_dir)? {
        FolderLock::Held(f) => Ok(Some(f)),
        FolderLock::Busy => Err(invalid(format!(
            "another medsgm run is writing to {}: wait for it or choose another --output",
            out_dir.display()
        ))),
        FolderLock::Unsupported => Ok(None),
    }
}

/// Removes the temporary DICOM series folders (`.medsgm-tmp-series-*`) a killed run left in
/// `out_dir` (the lock guarantees no running writer owns them).
/// Prefix of an earlier run's series folder set aside while its replacement is written.
const OLD_PREFIX: &str = ".medsgm-old-";

/// Writes a series folder `out` with `write`, replacing the folder an earlier run wrote there
/// (as NPY and NIfTI outputs are replaced): the old folder is set aside under a hidden name,
/// removed once the new one is in place, and put back if writing fails.
fn replace_series(out: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if !out.exists() {
        return write(out);
    }
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let aside = out.with_file_name(format!("{OLD_PREFIX}{name}"));
    let _ = std::fs::remove_dir_all(&aside);
    std::fs::rename(out, &aside)
        .with_context(|| format!("cannot set the earlier output {} aside", out.display()))?;
    match write(out) {
        Ok(()) => {
            let _ = std::fs::remove_dir_all(&aside);
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::rename(&aside, out);
            Err(e)
        }
    }
}

fn remove_leftovers(out_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(out_dir) else {
        return;
    };
    for e in entries.flatten() {
        let leftover = e
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(".medsgm-tmp-series-") || n.starts_with(OLD_PREFIX));
        if leftover && e.path().is_dir() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// The inputs that the summaries already in `out_dir` (`summary.json` and the shards'
/// `summary_shard_K_of_N.json`) record as done (ok, or skipped as done by an earlier run);
/// an unreadable summary counts as none, so its inputs are redone.
fn previous_ok_inputs(out_dir: &Path) -> std::collections::HashSet<String> {
    let Ok(entries) = std::fs::read_dir(out_dir) else {
        return Default::default();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("summary") && n.ends_with(".json"))
        })
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter_map(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .flat_map(|json| {
            json["files"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|f| f["status"] == "ok" || f["status"] == "skipped")
                .filter_map(|f| f["input"].as_str().map(str::to_owned))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Writes the `--anonymize-map` CSV (pseudonym, input) atomically, never over an input.
fn write_pseudonym_map(map: &Path, items: &[WorkItem]) -> Result<()> {
    let inputs: Vec<PathBuf> = items.iter().map(|i| i.path.clone()).collect();
    refuse_overwriting_inputs(&[map.to_path_buf()], &inputs).map_err(invalid)?;
    let mut csv = String::from("pseudonym,input\n");
    for item in items {
        let input = match &item.series {
            Some((_, k, n)) => format!("{} (series {k} of {n})", item.path.display()),
            None => item.path.display().to_string(),
        };
        csv.push_str(&format!(
            "{},\"{}\"\n",
            item.name,
            input.replace('"', "\"\"")
        ));
    }
    write_bytes_atomic(map, csv.as_bytes())
        .with_context(|| format!("cannot write the pseudonym map {}", map.display()))
}

/// Writes the summary atomically.
fn write_summary(path: &Path, s: &Summary) -> Result<()> {
    let json = serde_json::to_vec_pretty(s)?;
    write_bytes_atomic(path, &json)
}

/// Runs a batch reconstruction into `out_dir`.
pub fn run(a: &ReconArgs, out_dir: &Path) -> Result<()> {
    let naming = if a.batch.anonymize {
        Naming::Pseudonymous
    } else {
        Naming::Source
    };
    let items = worklist::expand(&a.input, naming).invalid_input()?;
    if items.is_empty() {
        return Err(invalid(format!(
            "{} holds no input (no measurement, NIfTI or DICOM file)",
            a.input.display()
        )));
    }
    let items = match a.batch.shard {
        Some(shard) => shard.select(items),
        None => items,
    };
    if let Some(r) = &a.batch.reference {
        if !r.is_dir() {
            return Err(invalid(format!(
                "the reference folder {} does not exist",
                r.display()
            )));
        }
    }
    let volume_flags = [
        ("--views", a.batch.views.is_some()),
        ("--acceleration", a.batch.acceleration.is_some()),
        ("--batch", a.batch.batch_size.is_some()),
        ("--axis", a.batch.axis.is_some()),
        ("--geometry fan", a.batch.fan.beam == Beam::Fan),
    ];
    let any_volume = items
        .iter()
        .any(|i| matches!(i.kind, InputKind::Nifti | InputKind::Dicom));
    if let Some((flag, _)) = volume_flags.iter().find(|(_, given)| *given && !any_volume) {
        return Err(invalid(format!(
            "{flag} sets how volumes (NIfTI, DICOM) are measured and sliced; the inputs of {} are measurement files, which carry their own",
            a.input.display()
        )));
    }
    plan_outputs(&a.input, &items, out_dir).map_err(invalid)?;
    if let Some(map) = &a.batch.anonymize_map {
        write_pseudonym_map(map, &items)?;
    }
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create the output folder {}", out_dir.display()))?;
    let _lock = lock_output(out_dir)?;
    remove_leftovers(out_dir);
    let summary_path = out_dir.join(match a.batch.shard {
        Some(s) => format!("summary_shard_{}_of_{}.json", s.index, s.count),
        None => "summary.json".to_owned(),
    });
    // --resume skips an input only when its output exists and the previous summary records it
    // as ok (a failed or interrupted input is redone).
    let previously_ok = if a.batch.resume {
        previous_ok_inputs(out_dir)
    } else {
        Default::default()
    };
    let model = recon::load_model(a)?;
    let mut summary = Summary {
        medsgm_version: env!("CARGO_PKG_VERSION").to_owned(),
        problem: value_name(&a.problem),
        method: value_name(&a.method),
        shard: a.batch.shard.map(|s| s.to_string()),
        ok: 0,
        failed: 0,
        skipped: 0,
        files: Vec::with_capacity(items.len()),
    };
    // The summary exists from the start (an empty shard, or a run that dies on its first
    // input, still leaves one that matches the files).
    write_summary(&summary_path, &summary)?;
    let bars = MultiProgress::new();
    let overall = bars.add(progress(items.len() as u64, "inputs"));
    let slices = bars.add(progress(0, "slices"));
    for item in &items {
        let start = Instant::now();
        let out = output_path(out_dir, item);
        let mut report = FileReport {
            input: item.label(),
            kind: item.kind,
            status: Status::Skipped,
            outputs: vec![],
            error: None,
            error_code: None,
            slices: 0,
            seconds: 0.0,
            metrics: None,
            posterior_sd: None,
            typicality: None,
            ood_warning: false,
        };
        if a.batch.resume && out.exists() && previously_ok.contains(&item.label()) {
            report.outputs.push(out.display().to_string());
            summary.skipped += 1;
        } else {
            match process(a, item, out_dir, model.as_ref(), &slices) {
                Ok(p) => {
                    report.status = Status::Ok;
                    report.outputs = p.outputs.iter().map(|p| p.display().to_string()).collect();
                    report.slices = p.slices;
                    report.metrics = p.metrics;
                    report.posterior_sd = p.posterior_sd;
                    if let Some(t) = p.typicality {
                        report.ood_warning = t.iter().any(|&(_, flagged)| flagged);
                        report.typicality = Some(t.into_iter().map(|(r, _)| r).collect());
                    }
                    summary.ok += 1;
                }
                Err(e) => {
                    let message = format!("{e:#}");
                    report.status = Status::Failed;
                    report.error = Some(if item.pseudonymous {
                        privacy::scrub(&message, &item.path, &item.name)
                    } else {
                        message
                    });
                    report.error_code = Some(exit_code(&e));
                    summary.failed += 1;
                }
            }
        }
        report.seconds = start.elapsed().as_secs_f64();
        let line = format!(
            "{}: {:?} ({:.2} s){}",
            item.name,
            report.status,
            report.seconds,
            report
                .error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
        if overall.is_hidden() {
            eprintln!("{line}");
        } else {
            overall.println(line);
        }
        summary.files.push(report);
        write_summary(&summary_path, &summary)?;
        overall.inc(1);
    }
    overall.finish_and_clear();
    slices.finish_and_clear();
    println!(
        "{} inputs: {} ok, {} failed, {} skipped; summary {}",
        items.len(),
        summary.ok,
        summary.failed,
        summary.skipped,
        summary_path.display()
    );
    let codes: Vec<u8> = summary.files.iter().filter_map(|f| f.error_code).collect();
    match codes.iter().max() {
        None => Ok(()),
        Some(_) if codes.contains(&1) => Err(anyhow!("{} input(s) failed", summary.failed)),
        Some(_) => Err(invalid(format!("{} input(s) were invalid", summary.failed))),
    }
}
