//! Where a command's output image goes ([`ImageTarget`]: the file, PNG window and bit depth),
//! checked before any work is done ([`validate_output_path`], [`check_png_options`]) and
//! written in the format its suffix names.

use super::image_io::{BitDepth, Window};
use super::{write_image, ImageFormat, ImageWriteOptions};
use crate::error::{invalid, InputContext};
use anyhow::Result;
use ndarray::ArrayView2;
use std::path::{Path, PathBuf};

/// An output image file with its PNG settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageTarget {
    /// The file: .png, .npy, .nii or .nii.gz (format from the suffix).
    pub out: PathBuf,
    /// PNG: the intensities mapped to black and white (`None`: the data's default).
    pub window: Option<Window>,
    /// PNG bit depth (`None`: 16 bits).
    pub depth: Option<BitDepth>,
}

impl ImageTarget {
    /// Checks the output path before any work is done, and that the PNG-only options
    /// (`--window`, `--bit-depth`) are given for a PNG output only (invalid input, exit code 2).
    pub fn validate(&self) -> Result<()> {
        validate_output_path(&self.out, true)?;
        check_png_options(&self.out, self.window.is_some(), self.depth.is_some())
    }

    /// Writes `image`; `default_window` applies to PNG when no window was given.
    pub fn write(&self, image: &ArrayView2<f32>, default_window: Window) -> Result<()> {
        let opts = ImageWriteOptions {
            window: self.window.unwrap_or(default_window),
            depth: self.depth.unwrap_or(BitDepth::Sixteen),
            ..ImageWriteOptions::default()
        };
        write_image(&self.out, image, &opts)
    }
}

/// Fails (invalid input) when `--window` or `--bit-depth` is given for an output that is not a
/// PNG file: NPY and NIfTI store the float values themselves, so the options would be ignored.
pub fn check_png_options(out: &Path, window: bool, bit_depth: bool) -> Result<()> {
    if ImageFormat::from_path(out).ok() == Some(ImageFormat::Png) {
        return Ok(());
    }
    let flag = match (window, bit_depth) {
        (true, _) => "--window",
        (false, true) => "--bit-depth",
        (false, false) => return Ok(()),
    };
    Err(invalid(format!(
        "{flag} applies to PNG output only; {} stores the float values themselves",
        out.display()
    )))
}

/// Fails (invalid input) unless the path's directory exists and, for images, its suffix names a
/// known format.
pub fn validate_output_path(path: &Path, image: bool) -> Result<()> {
    if image {
        ImageFormat::from_path(path).invalid_input()?;
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(invalid(format!(
            "output directory {} of {} does not exist",
            dir.display(),
            path.display()
        )));
    }
    if path.is_dir() {
        return Err(invalid(format!(
            "the output {} is a folder, not a file",
            path.display()
        )));
    }
    Ok(())
}
