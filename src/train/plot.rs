//! Training artefacts written beside the checkpoint: the loss curve (plotters, DejaVu Sans
//! registered at first use) and PNG grids of images in [0, 1].

use anyhow::Context;
use ndarray::Array2;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

const FONT: &str = "sans-serif";

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The embedded DejaVu Sans is a valid font; a failure would only remove axis labels.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
    });
}

/// Plots `(step, loss)` pairs (log-scale loss axis when all losses are positive) as a PNG.
pub fn write_loss_curve(path: &Path, losses: &[(u64, f64)]) -> anyhow::Result<()> {
    register_font();
    let points: Vec<(f64, f64)> = losses
        .iter()
        .filter(|(_, l)| l.is_finite())
        .map(|&(s, l)| (s as f64, l))
        .collect();
    if points.is_empty() {
        return Ok(());
    }
    let root = BitMapBackend::new(path, (800, 500)).into_drawing_area();
    let draw = || -> Result<(), Box<dyn std::error::Error>> {
        root.fill(&WHITE)?;
        let (x0, x1) = (
            points[0].0,
            points[points.len() - 1].0.max(points[0].0 + 1.0),
        );
        let lo = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let hi = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        if lo > 0.0 {
            draw_chart(&root, x0..x1, (lo * 0.9..hi * 1.1).log_scale(), &points)?;
        } else {
            let pad = 0.05 * (hi - lo).max(1e-12);
            draw_chart(&root, x0..x1, lo - pad..hi + pad, &points)?;
        }
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| anyhow::anyhow!("drawing {}: {e}", path.display()))
}

/// Draws the loss line on `root` with the y axis `y` (linear or log).
fn draw_chart<DB: DrawingBackend, Y: AsRangedCoord<Value = f64>>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    x: std::ops::Range<f64>,
    y: Y,
    points: &[(f64, f64)],
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(root)
        .caption("training loss", (FONT, 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x, y)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc("loss")
        .label_style((FONT, 14))
        .draw()?;
    chart.draw_series(LineSeries::new(points.iter().copied(), &BLUE))?;
    Ok(())
}

/// Writes images (values clipped to [0, 1]) as an 8-bit grey PNG grid with `cols` columns.
pub fn write_image_grid(path: &Path, images: &[Array2<f32>], cols: usize) -> anyhow::Result<()> {
    let Some(first) = images.first() else {
        return Ok(());
    };
    let (h, w) = first.dim();
    let cols = cols.clamp(1, images.len());
    let rows = images.len().div_ceil(cols);
    let (gap, gw, gh) = (2, cols * (w + 2) + 2, rows * (h + 2) + 2);
    let mut buf = image::GrayImage::new(gw as u32, gh as u32);
    for (i, img) in images.iter().enumerate() {
        let (oy, ox) = (gap + (i / cols) * (h + gap), gap + (i % cols) * (w + gap));
        for ((y, x), &v) in img.indexed_iter() {
            let p = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
            buf.put_pixel((ox + x) as u32, (oy + y) as u32, image::Luma([p]));
        }
    }
    buf.save(path)
        .with_context(|| format!("writing {}", path.display()))
}

/// Splits a `[B, 1, H, W]` tensor into B images.
pub fn tensor_images(x: &candle_core::Tensor) -> anyhow::Result<Vec<Array2<f32>>> {
    let dims = x.dims();
    anyhow::ensure!(
        dims.len() == 4 && dims[1] == 1,
        "expected a [B, 1, H, W] batch, got {dims:?}"
    );
    let (b, h, w) = (dims[0], dims[2], dims[3]);
    let v = x.flatten_all()?.to_vec1::<f32>()?;
    Ok((0..b)
        .map(|i| {
            Array2::from_shape_vec((h, w), v[i * h * w..(i + 1) * h * w].to_vec())
                .expect("chunk holds one image")
        })
        .collect())
}
