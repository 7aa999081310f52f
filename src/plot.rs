//! Figures: side-by-side image comparison panels with titles (ground truth | reconstructions |
//! |error|), rendered with plotters into an in-memory RGB buffer and saved as PNG atomically.
//!
//! Text needs a registered font (plotters' `ab_glyph` backend has no system font lookup):
//! [`register_fonts`] embeds DejaVu Sans as `sans-serif`; it runs once per process and every
//! drawing function calls it.

use crate::io::atomic::write_bytes_atomic;
use anyhow::{anyhow, ensure, Context, Result};
use ndarray::Array2;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};
use std::path::Path;
use std::sync::OnceLock;

/// Registers the embedded DejaVu Sans fonts under the family name `sans-serif` (idempotent).
pub fn register_fonts() -> Result<()> {
    static DONE: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .and_then(|_| register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold()))
            .map_err(|_| "the embedded DejaVu font is invalid".to_string())
    })
    .clone()
    .map_err(|e| anyhow!(e))
}

/// One image panel of a comparison figure.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Bold first title line (e.g. "FISTA-TV").
    pub title: String,
    /// Second line (e.g. "PSNR 31.2 dB  SSIM 0.912"); may be empty.
    pub subtitle: String,
    /// The image, row 0 at the top.
    pub image: Array2<f32>,
    /// Display window (low, high) mapped to black..white.
    pub window: (f32, f32),
}

const TITLE_H: u32 = 52;
const MARGIN: u32 = 8;

/// Renders panels side by side, each image upscaled (nearest neighbour) to at least `min_side`
/// pixels, and writes the figure to `path` as PNG.
pub fn comparison_figure(path: &Path, panels: &[Panel], min_side: u32) -> Result<()> {
    register_fonts()?;
    ensure!(!panels.is_empty(), "a figure needs at least one panel");
    let (ph, pw) = panels[0].image.dim();
    ensure!(
        ph > 0 && pw > 0 && panels.iter().all(|p| p.image.dim() == (ph, pw)),
        "all panels must have the same non-empty image size"
    );
    let scale = (min_side as usize).div_ceil(ph.max(pw)).max(1);
    let (cell_w, cell_h) = ((pw * scale) as u32, (ph * scale) as u32);
    let n = panels.len() as u32;
    let width = n * cell_w + (n + 1) * MARGIN;
    let height = TITLE_H + cell_h + MARGIN;
    let mut buf = vec![255u8; (width * height * 3) as usize];

    for (k, panel) in panels.iter().enumerate() {
        let (lo, hi) = panel.window;
        let span = if hi > lo { hi - lo } else { 1.0 };
        let x0 = MARGIN + k as u32 * (cell_w + MARGIN);
        for y in 0..cell_h {
            for x in 0..cell_w {
                let v = panel.image[[y as usize / scale, x as usize / scale]];
                let g = (((v - lo) / span).clamp(0.0, 1.0) * 255.0).round() as u8;
                let at = (((TITLE_H + y) * width + x0 + x) * 3) as usize;
                buf[at..at + 3].fill(g);
            }
        }
    }
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        let title_font = ("sans-serif", 18).into_font().style(FontStyle::Bold);
        let sub_font = ("sans-serif", 14).into_font();
        for (k, panel) in panels.iter().enumerate() {
            let x0 = (MARGIN + k as u32 * (cell_w + MARGIN)) as i32;
            root.draw(&Text::new(
                panel.title.clone(),
                (x0, 6),
                title_font.clone().color(&BLACK),
            ))
            .map_err(|e| anyhow!("drawing the figure title failed: {e}"))?;
            root.draw(&Text::new(
                panel.subtitle.clone(),
                (x0, 30),
                sub_font.clone().color(&BLACK),
            ))
            .map_err(|e| anyhow!("drawing the figure subtitle failed: {e}"))?;
        }
        root.present()
            .map_err(|e| anyhow!("rendering the figure failed: {e}"))?;
    }
    let img = image::RgbImage::from_raw(width, height, buf).context("figure buffer size")?;
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png)
        .context("encoding the figure as PNG")?;
    write_bytes_atomic(path, png.get_ref())
        .with_context(|| format!("cannot write figure {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figure_has_expected_size_and_pixels() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fig.png");
        let img = Array2::from_shape_fn((16, 16), |(i, _)| i as f32 / 15.0);
        let panels: Vec<Panel> = ["A", "B"]
            .iter()
            .map(|t| Panel {
                title: t.to_string(),
                subtitle: "PSNR 1.0 dB".into(),
                image: img.clone(),
                window: (0.0, 1.0),
            })
            .collect();
        comparison_figure(&p, &panels, 64).unwrap();
        let fig = image::open(&p).unwrap().to_rgb8();
        assert_eq!(fig.width(), 2 * 64 + 3 * MARGIN);
        assert_eq!(fig.height(), TITLE_H + 64 + MARGIN);
        // Top image row is black, bottom row white (window 0..1 over a vertical ramp).
        assert_eq!(fig.get_pixel(MARGIN + 5, TITLE_H).0, [0, 0, 0]);
        assert_eq!(fig.get_pixel(MARGIN + 5, TITLE_H + 63).0, [255, 255, 255]);
        // Some title text was drawn (dark pixels in the title band).
        let dark = (0..fig.width())
            .flat_map(|x| (0..TITLE_H).map(move |y| (x, y)))
            .filter(|&(x, y)| fig.get_pixel(x, y).0[0] < 128)
            .count();
        assert!(dark > 20, "no title text rendered");
    }
}
