//! Grayscale PNG input and output with an explicit intensity window.
//!
//! PNG stores integers, medsgm works with f32 intensities, so every conversion names the window
//! [low, high] that maps to the PNG's [0, max] range (max = 255 or 65535):
//! writing stores `round(max · clamp((v − low)/(high − low), 0, 1))`, reading returns
//! `low + (high − low) · p/max`. With the default window [0, 1] a PNG reads as intensities in
//! [0, 1]. Colour PNGs are read as their luminance Y = 0.2126 R + 0.7152 G + 0.0722 B (ITU-R
//! BT.709 weights applied to the stored, gamma-encoded values); alpha is ignored.

use crate::io::atomic::write_bytes_atomic;
use crate::io::ensure_finite;
use anyhow::{bail, Context, Result};
use image::{DynamicImage, ImageBuffer, ImageFormat, Luma};
use ndarray::{Array2, ArrayView2};
use std::path::Path;

/// The intensity interval that maps onto the full PNG range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Intensity stored as 0.
    pub low: f32,
    /// Intensity stored as the maximum code (255 or 65535).
    pub high: f32,
}

impl Window {
    /// The unit window [0, 1].
    pub const UNIT: Window = Window {
        low: 0.0,
        high: 1.0,
    };

    /// The HU ↔ unit window of anatomical phantoms (medsgm's default
    /// [`medsgm_operators::hu::HuWindow`]), as a PNG window.
    pub fn hu() -> Window {
        let w = medsgm_operators::hu::HuWindow::default();
        Window {
            low: w.lo,
            high: w.hi,
        }
    }

    /// A window, checked to be finite with `low < high`.
    pub fn new(low: f32, high: f32) -> Result<Window> {
        if !(low.is_finite() && high.is_finite() && low < high) {
            bail!("invalid intensity window [{low}, {high}]: need finite low < high");
        }
        Ok(Window { low, high })
    }
}

impl std::str::FromStr for Window {
    type Err = anyhow::Error;
    /// Parses `LOW,HIGH`.
    fn from_str(s: &str) -> Result<Window> {
        let (a, b) = s
            .split_once(',')
            .with_context(|| format!("window {s:?} must be LOW,HIGH"))?;
        let parse = |t: &str| {
            t.trim()
                .parse::<f32>()
                .with_context(|| format!("window bound {t:?} is not a number"))
        };
        Window::new(parse(a)?, parse(b)?)
    }
}

/// Bits per PNG sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitDepth {
    /// 8-bit grayscale (for figures).
    Eight,
    /// 16-bit grayscale (for data).
    Sixteen,
}

/// Reads a PNG as a 2-D image [rows, cols] (row 0 = top), mapping codes to `window`.
pub fn read_png(path: &Path, window: Window) -> Result<Array2<f32>> {
    let img = image::ImageReader::open(path)
        .with_context(|| format!("cannot open image {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("cannot read image {}", path.display()))?
        .decode()
        .with_context(|| format!("cannot decode PNG {}", path.display()))?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let unit: Vec<f32> = match &img {
        DynamicImage::ImageLuma8(b) => b.pixels().map(|p| f32::from(p.0[0]) / 255.0).collect(),
        DynamicImage::ImageLumaA8(b) => b.pixels().map(|p| f32::from(p.0[0]) / 255.0).collect(),
        DynamicImage::ImageLuma16(b) => b.pixels().map(|p| f32::from(p.0[0]) / 65535.0).collect(),
        DynamicImage::ImageLumaA16(b) => b.pixels().map(|p| f32::from(p.0[0]) / 65535.0).collect(),
        other => other
            .to_rgb32f()
            .pixels()
            .map(|p| 0.2126 * p.0[0] + 0.7152 * p.0[1] + 0.0722 * p.0[2])
            .collect(),
    };
    let scale = window.high - window.low;
    let image = Array2::from_shape_vec((h, w), unit)
        .with_context(|| format!("image {} has inconsistent dimensions", path.display()))?
        .mapv(|u| window.low + scale * u);
    ensure_finite(&path.display().to_string(), image.iter().copied())?;
    Ok(image)
}

/// Writes a 2-D image as a grayscale PNG (atomically), clipping to `window`.
pub fn write_png(
    path: &Path,
    image: &ArrayView2<f32>,
    window: Window,
    depth: BitDepth,
) -> Result<()> {
    ensure_finite("image to write", image.iter().copied())?;
    let (h, w) = image.dim();
    let (wu, hu) = (
        u32::try_from(w).context("image too wide for PNG")?,
        u32::try_from(h).context("image too tall for PNG")?,
    );
    let unit = |v: f32| ((v - window.low) / (window.high - window.low)).clamp(0.0, 1.0);
    let mut bytes = std::io::Cursor::new(Vec::new());
    let encoded = match depth {
        BitDepth::Eight => {
            let data: Vec<u8> = image
                .iter()
                .map(|&v| (unit(v) * 255.0).round() as u8)
                .collect();
            ImageBuffer::<Luma<u8>, _>::from_raw(wu, hu, data)
                .context("PNG buffer size")?
                .write_to(&mut bytes, ImageFormat::Png)
        }
        BitDepth::Sixteen => {
            let data: Vec<u16> = image
                .iter()
                .map(|&v| (unit(v) * 65535.0).round() as u16)
                .collect();
            ImageBuffer::<Luma<u16>, _>::from_raw(wu, hu, data)
                .context("PNG buffer size")?
                .write_to(&mut bytes, ImageFormat::Png)
        }
    };
    encoded.with_context(|| format!("cannot encode PNG {}", path.display()))?;
    write_bytes_atomic(path, bytes.get_ref())
        .with_context(|| format!("cannot write PNG {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_bit_round_trip_within_quantisation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.png");
        let win = Window::new(-1000.0, 3000.0).unwrap();
        let img = Array2::from_shape_fn((5, 7), |(i, j)| -1000.0 + 100.0 * (i * 7 + j) as f32);
        write_png(&p, &img.view(), win, BitDepth::Sixteen).unwrap();
        let back = read_png(&p, win).unwrap();
        assert_eq!(back.dim(), (5, 7));
        let step = 4000.0 / 65535.0;
        for (a, b) in img.iter().zip(back.iter()) {
            assert!((a - b).abs() <= 0.5 * step + 1e-3, "{a} vs {b}");
        }
    }

    #[test]
    fn eight_bit_clips_to_window() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.png");
        let img = ndarray::array![[-5.0f32, 0.5], [1.0, 7.0]];
        write_png(&p, &img.view(), Window::UNIT, BitDepth::Eight).unwrap();
        let back = read_png(&p, Window::UNIT).unwrap();
        assert_eq!(back[[0, 0]], 0.0);
        assert!((back[[0, 1]] - 128.0 / 255.0).abs() < 1e-6);
        assert_eq!(back[[1, 0]], 1.0);
        assert_eq!(back[[1, 1]], 1.0);
    }

    #[test]
    fn rgb_reads_as_luminance() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rgb.png");
        let buf =
            ImageBuffer::<image::Rgb<u8>, _>::from_raw(2, 1, vec![255, 0, 0, 0, 0, 255]).unwrap();
        buf.save(&p).unwrap();
        let y = read_png(&p, Window::UNIT).unwrap();
        assert!((y[[0, 0]] - 0.2126).abs() < 1e-5);
        assert!((y[[0, 1]] - 0.0722).abs() < 1e-5);
    }

    #[test]
    fn nan_is_rejected_on_write() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.png");
        let img = ndarray::array![[0.0f32, f32::NAN]];
        let e = write_png(&p, &img.view(), Window::UNIT, BitDepth::Eight).unwrap_err();
        assert!(format!("{e:#}").contains("NaN"));
        assert!(!p.exists());
    }
}
