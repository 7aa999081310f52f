//! File input and output: images (PNG, NPY, NIfTI, DICOM), measurement files (NPY + JSON sidecar) and
//! the atomic-write discipline all writers share. Every read error names the file and the
//! problem; non-finite values (NaN, ±Inf) are rejected on input and output.

pub mod atomic;
pub mod dicom;
pub mod folder_lock;
pub mod guard;
pub mod image_io;
pub mod measurement;
pub mod memory;
pub mod nifti_io;
pub mod npy;
pub mod privacy;
pub mod target;

use self::dicom::{DerivedSeriesOptions, DicomVolume};
use anyhow::{anyhow, bail, Context, Result};
use image_io::{BitDepth, Window};
use ndarray::{Array2, ArrayView2, Ix2, Ix3};
use nifti_io::NiftiMeta;
use std::path::Path;

/// Fails with a message naming `what` when any value is NaN or infinite.
pub fn ensure_finite<I: IntoIterator<Item = f32>>(what: &str, values: I) -> Result<()> {
    let mut first = None;
    let mut count = 0usize;
    for (i, v) in values.into_iter().enumerate() {
        if !v.is_finite() {
            count += 1;
            first.get_or_insert((i, v));
        }
    }
    match first {
        None => Ok(()),
        Some((i, v)) => bail!(
            "{what} contains {count} non-finite value(s) (NaN or Inf); the first is {v} at flat index {i}"
        ),
    }
}

/// Image file formats, chosen by file-name suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// `.png`: 8/16-bit grayscale with an intensity window.
    Png,
    /// `.npy`: float or integer array.
    Npy,
    /// `.nii` / `.nii.gz`: NIfTI-1.
    Nifti,
    /// `.dcm` / `.dicom`, a folder holding one DICOM series, or any existing file with the
    /// DICOM Part 10 marker: read as modality values (HU for CT).
    Dicom,
}

impl ImageFormat {
    /// The format a path's suffix names.
    pub fn from_path(path: &Path) -> Result<ImageFormat> {
        let name = path.to_string_lossy().to_ascii_lowercase();
        if name.ends_with(".png") {
            Ok(ImageFormat::Png)
        } else if name.ends_with(".npy") {
            Ok(ImageFormat::Npy)
        } else if name.ends_with(".nii") || name.ends_with(".nii.gz") {
            Ok(ImageFormat::Nifti)
        } else if name.ends_with(".dcm")
            || name.ends_with(".dicom")
            || path.is_dir()
            || (path.is_file() && dicom::is_dicom_file(path))
        {
            Ok(ImageFormat::Dicom)
        } else {
            Err(anyhow!(
                "{}: unknown image format (use .png, .npy, .nii, .nii.gz, .dcm or a DICOM series folder)",
                path.display()
            ))
        }
    }
}

/// How to turn a file into one 2-D image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageReadOptions {
    /// PNG codes 0..max map to [low, high].
    pub window: Window,
    /// For 3-D inputs: (axis, index) of the slice to use; without it a volume must hold exactly
    /// one slice.
    pub slice: Option<(usize, usize)>,
}

impl Default for ImageReadOptions {
    fn default() -> Self {
        ImageReadOptions {
            window: Window::UNIT,
            slice: None,
        }
    }
}

fn pick_slice(
    volume: ndarray::Array3<f32>,
    slice: Option<(usize, usize)>,
    path: &Path,
) -> Result<Array2<f32>> {
    match slice {
        Some((axis, index)) => nifti_io::slice_volume(&volume, axis, index),
        None => {
            let shape = volume.shape().to_vec();
            match shape.iter().position(|&d| d == 1) {
                Some(axis) => nifti_io::slice_volume(&volume, axis, 0),
                None => bail!(
                    "{} is a volume of shape {shape:?}; choose a slice with --slice AXIS,INDEX",
                    path.display()
                ),
            }
        }
    }
}

/// Reads a 2-D image from PNG, NPY (2-D, or 3-D with a slice), NIfTI or DICOM (a file or a
/// series folder; axis 0 of a DICOM volume is the slice index along the slice normal).
pub fn read_image(path: &Path, opts: &ImageReadOptions) -> Result<Array2<f32>> {
    read_image_with_dicom_source(path, opts).map(|(image, _)| image)
}

/// [`read_image`], also returning for DICOM inputs the one-slice source volume (header and
/// geometry of the chosen slice) that [`ImageWriteOptions::dicom`] needs to write a derived
/// image of the same patient, study and geometry. `None` for other formats, and for DICOM
/// slices taken along axis 1 or 2 (no DICOM plane geometry).
pub fn read_image_with_dicom_source(
    path: &Path,
    opts: &ImageReadOptions,
) -> Result<(Array2<f32>, Option<DicomVolume>)> {
    let mut source = None;
    let two_d_with_slice = |what: &str| -> Result<()> {
        match opts.slice {
            Some((axis, index)) => bail!(
                "{} is a 2-D {what}: --slice {axis},{index} applies to volumes only",
                path.display()
            ),
            None => Ok(()),
        }
    };
    let image = match ImageFormat::from_path(path)? {
        ImageFormat::Png => {
            two_d_with_slice("PNG image")?;
            image_io::read_png(path, opts.window)?
        }
        ImageFormat::Npy => {
            let arr = npy::read_npy(path)?.into_f32().map_err(|dt| {
                anyhow!(
                    "{}: an image must be real, this NPY holds {dt}",
                    path.display()
                )
            })?;
            match arr.ndim() {
                2 => {
                    two_d_with_slice("NPY image")?;
                    arr.into_dimensionality::<Ix2>()?
                }
                3 => pick_slice(arr.into_dimensionality::<Ix3>()?, opts.slice, path)?,
                _ => bail!(
                    "{}: expected a 2-D image or 3-D volume, got shape {:?}",
                    path.display(),
                    arr.shape()
                ),
            }
        }
        ImageFormat::Nifti => pick_slice(nifti_io::read_nifti(path)?.data, opts.slice, path)?,
        ImageFormat::Dicom => {
            let volume = dicom::read_dicom(path)?;
            let axis0 = match opts.slice {
                Some((0, k)) => Some(k),
                None if volume.frames.len() == 1 => Some(0),
                _ => None,
            };
            if let Some(k) = axis0 {
                source = Some(volume.slice(k)?);
            }
            pick_slice(volume.data, opts.slice, path)?
        }
    };
    if image.is_empty() {
        bail!("{}: the image is empty", path.display());
    }
    ensure_finite(&path.display().to_string(), image.iter().copied())?;
    Ok((image, source))
}

/// How to write one 2-D image.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageWriteOptions {
    /// PNG: the intensity window mapped to the full code range.
    pub window: Window,
    /// PNG bit depth.
    pub depth: BitDepth,
    /// NIfTI: geometry (identity when absent).
    pub nifti: Option<NiftiMeta>,
    /// DICOM: the derived-series settings.
    pub dicom: DicomWriteOptions,
}

/// How to write a 2-D image as a DICOM file (a one-instance derived series).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DicomWriteOptions {
    /// The one-slice source (from [`read_image_with_dicom_source`]) whose patient, study and
    /// geometry are carried over; without it a Secondary Capture image is written.
    pub source: Option<DicomVolume>,
    /// Description, derivation, series number and de-identification.
    pub series: DerivedSeriesOptions,
}

impl Default for ImageWriteOptions {
    fn default() -> Self {
        ImageWriteOptions {
            window: Window::UNIT,
            depth: BitDepth::Sixteen,
            nifti: None,
            dicom: DicomWriteOptions::default(),
        }
    }
}

/// Writes a 2-D image in the format its suffix names (atomically).
pub fn write_image(path: &Path, image: &ArrayView2<f32>, opts: &ImageWriteOptions) -> Result<()> {
    match ImageFormat::from_path(path)? {
        ImageFormat::Png => image_io::write_png(path, image, opts.window, opts.depth),
        ImageFormat::Npy => {
            ensure_finite("image to write", image.iter().copied())?;
            npy::write_npy(path, &image.into_dyn())
        }
        ImageFormat::Nifti => {
            let meta = opts.nifti.clone().unwrap_or_else(NiftiMeta::identity);
            nifti_io::write_nifti(path, &image.into_dyn(), &meta)
        }
        ImageFormat::Dicom => {
            dicom::write_derived_file(path, image, opts.dicom.source.as_ref(), &opts.dicom.series)
        }
    }
    .with_context(|| format!("writing image {}", path.display()))
}
