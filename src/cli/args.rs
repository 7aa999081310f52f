//! Argument groups shared by several subcommands: reading an input image, writing an output
//! image ([`ImageTarget`]), and the memory budget.

use crate::cli::{invalid, InputContext};
use crate::io::dicom::DicomVolume;
use crate::io::image_io::{BitDepth, Window};
use crate::io::memory::Budget;
use crate::io::target::ImageTarget;
use crate::io::{read_image_with_dicom_source, ImageReadOptions};
use anyhow::Result;
use clap::{Args, ValueEnum};
use ndarray::Array2;
use std::path::PathBuf;

/// Parses a `AXIS,INDEX` slice selector.
pub fn parse_slice(s: &str) -> std::result::Result<(usize, usize), String> {
    let (a, i) = s
        .split_once(',')
        .ok_or_else(|| format!("{s:?} must be AXIS,INDEX (e.g. 2,40)"))?;
    let axis: usize = a.trim().parse().map_err(|_| format!("bad axis {a:?}"))?;
    let index: usize = i.trim().parse().map_err(|_| format!("bad index {i:?}"))?;
    if axis > 2 {
        return Err(format!("axis {axis} must be 0, 1 or 2"));
    }
    Ok((axis, index))
}

/// An input image.
#[derive(Debug, Clone, Args)]
pub struct ImageInput {
    /// Input image: .png, .npy (2-D, or 3-D with --slice), .nii or .nii.gz.
    #[arg(long, short)]
    pub input: PathBuf,
    /// PNG input: the intensities LOW,HIGH that the codes 0 and max stand for [default: 0,1].
    #[arg(long, allow_hyphen_values = true)]
    pub in_window: Option<Window>,
    /// Volume input: use slice INDEX along AXIS (0, 1 or 2).
    #[arg(long, value_parser = parse_slice)]
    pub slice: Option<(usize, usize)>,
}

impl ImageInput {
    /// The PNG intensity window: --in-window (an error for other formats) or [0, 1].
    fn window(&self) -> Result<Window> {
        let png = self
            .input
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("png"));
        match self.in_window {
            Some(_) if !png => Err(invalid(format!(
                "--in-window applies to PNG inputs; {} stores its own values",
                self.input.display()
            ))),
            Some(w) => Ok(w),
            None => Ok(Window::UNIT),
        }
    }

    /// The image and, for a slice of a DICOM file or series, its one-slice source volume.
    pub fn read_with_source(&self) -> Result<(Array2<f32>, Option<DicomVolume>)> {
        let opts = ImageReadOptions {
            window: self.window()?,
            slice: self.slice,
        };
        read_image_with_dicom_source(&self.input, &opts).invalid_input()
    }
}

/// PNG bit depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Depth {
    /// 8 bits per pixel.
    #[value(name = "8")]
    Eight,
    /// 16 bits per pixel.
    #[value(name = "16")]
    Sixteen,
}

impl Depth {
    /// The bit depth of the PNG writer.
    pub fn bits(self) -> BitDepth {
        match self {
            Depth::Eight => BitDepth::Eight,
            Depth::Sixteen => BitDepth::Sixteen,
        }
    }
}

/// An output image.
#[derive(Debug, Clone, Args)]
pub struct ImageOutput {
    /// Output image: .png, .npy, .nii or .nii.gz (format from the suffix).
    #[arg(long, short)]
    pub out: PathBuf,
    /// PNG output: intensities LOW,HIGH mapped to black and white (default depends on the data).
    #[arg(long, allow_hyphen_values = true)]
    pub window: Option<Window>,
    /// PNG output bit depth [default: 16].
    #[arg(long, value_enum)]
    pub bit_depth: Option<Depth>,
}

impl ImageOutput {
    /// The output image these flags describe.
    pub fn target(&self) -> ImageTarget {
        ImageTarget {
            out: self.out.clone(),
            window: self.window,
            depth: self.bit_depth.map(Depth::bits),
        }
    }
}

/// The memory budget of a command (see [`crate::io::memory`]).
#[derive(Debug, Clone, Default, Args)]
pub struct MemoryArgs {
    /// Refuse work whose estimated memory exceeds SIZE: bytes, or with a unit K, M, G, T
    /// (e.g. 512M, 8G) [default: 80 % of this machine's memory, or of a lower cgroup or
    /// address-space limit].
    #[arg(long, value_name = "SIZE", value_parser = crate::io::memory::parse_bytes)]
    pub max_memory: Option<u64>,
}

impl MemoryArgs {
    /// The budget (see [`Budget`]).
    pub fn budget(&self) -> Budget {
        Budget {
            max: self.max_memory,
        }
    }
}
