//! Benchmark artefacts: per-image CSV and JSON, the markdown summary and the figures — quality
//! versus number of measurements (thesis Fig. 8.5) or versus NFE, and the image panel of the
//! first test image.

use crate::eval::recon_bench::{summarize, Record, SummaryRow};
use crate::io::atomic::write_bytes_atomic;
use crate::plot::{comparison_figure, register_fonts, Panel};
use anyhow::{anyhow, Context, Result};
use ndarray::Array2;
use plotters::prelude::*;
use std::path::Path;

/// The records as CSV (header + one line per record).
pub fn records_csv(records: &[Record]) -> String {
    let mut s = String::from("task,setting,x,method,image,psnr,ssim,nfe,seconds\n");
    for r in records {
        s += &format!(
            "{},{},{},{},{},{:.6},{:.6},{},{:.6}\n",
            r.task, r.setting, r.x, r.method, r.image, r.psnr, r.ssim, r.nfe, r.seconds
        );
    }
    s
}

/// Writes `<stem>.csv` and `<stem>.json` (per image) into `dir`.
pub fn write_records(dir: &Path, stem: &str, records: &[Record]) -> Result<()> {
    write_bytes_atomic(
        &dir.join(format!("{stem}.csv")),
        records_csv(records).as_bytes(),
    )?;
    write_bytes_atomic(
        &dir.join(format!("{stem}.json")),
        (serde_json::to_string_pretty(records)? + "\n").as_bytes(),
    )
}

/// Plots mean PSNR and SSIM against the rows' `x` (one line per method, two side-by-side
/// charts) and writes the PNG; `log_x` for NFE axes.
pub fn quality_curves(path: &Path, rows: &[SummaryRow], x_label: &str, log_x: bool) -> Result<()> {
    register_fonts()?;
    let mut methods: Vec<&str> = Vec::new();
    for r in rows {
        if !methods.contains(&r.method.as_str()) {
            methods.push(&r.method);
        }
    }
    let (x0, x1) = rows
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), r| {
            (a.min(r.x), b.max(r.x))
        });
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    let (w, h) = (1200u32, 480u32);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        let halves = root.split_evenly((1, 2));
        type Metric = fn(&SummaryRow) -> f64;
        let metrics: [(&str, Metric); 2] =
            [("PSNR (dB)", |r| r.psnr_mean), ("SSIM", |r| r.ssim_mean)];
        for (area, (name, value)) in halves.iter().zip(metrics) {
            let finite: Vec<f64> = rows.iter().map(value).filter(|v| v.is_finite()).collect();
            let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let (lo, hi) = if lo.is_finite() && hi > lo {
                (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
            } else {
                (0.0, 1.0)
            };
            let draw = |area: &DrawingArea<BitMapBackend, _>| -> std::result::Result<(), Box<dyn std::error::Error>> {
                let mut builder = ChartBuilder::on(area);
                builder
                    .caption(format!("{name} vs {x_label}"), ("sans-serif", 20))
                    .margin(12)
                    .x_label_area_size(40)
                    .y_label_area_size(60);
                macro_rules! finish {
                    ($chart:expr) => {{
                        let mut chart = $chart;
                        chart
                            .configure_mesh()
                            .x_labels(12)
                            .x_label_formatter(&|v: &f64| tick_label(*v, log_x))
                            .x_desc(x_label)
                            .y_desc(name)
                            .label_style(("sans-serif", 14))
                            .draw()?;
                        for (i, m) in methods.iter().enumerate() {
                            let color = Palette99::pick(i).to_rgba();
                            let pts: Vec<(f64, f64)> = rows
                                .iter()
                                .filter(|r| r.method == *m && value(r).is_finite())
                                .map(|r| (r.x, value(r)))
                                .collect();
                            chart
                                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
                                .label(*m)
                                .legend(move |(x, y)| {
                                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                                });
                            chart.draw_series(
                                pts.iter().map(|&p| Circle::new(p, 4, color.filled())),
                            )?;
                        }
                        chart
                            .configure_series_labels()
                            .background_style(WHITE.mix(0.8))
                            .border_style(BLACK)
                            .label_font(("sans-serif", 14))
                            .position(SeriesLabelPosition::LowerRight)
                            .draw()?;
                    }};
                }
                if log_x {
                    let (a, b) = (x0.max(1e-9) / 1.25, x1 * 1.25);
                    finish!(builder.build_cartesian_2d((a..b).log_scale(), lo..hi)?);
                } else {
                    let pad = 0.05 * (x1 - x0);
                    finish!(builder.build_cartesian_2d(x0 - pad..x1 + pad, lo..hi)?);
                }
                Ok(())
            };
            draw(area).map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
        }
        root.present()
            .map_err(|e| anyhow!("rendering {}: {e}", path.display()))?;
    }
    let img = image::RgbImage::from_raw(w, h, buf).context("figure buffer size")?;
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png)
        .context("encoding the curves as PNG")?;
    write_bytes_atomic(path, png.get_ref())
}

/// An x-axis tick: integers without decimals (views, NFE), other values with up to two; on a
/// log axis only the 1-2-5 ticks are labelled (the others would overlap).
fn tick_label(v: f64, log_x: bool) -> String {
    let lead = v / 10f64.powf(v.log10().floor());
    if log_x && ![1.0, 2.0, 5.0].iter().any(|d| (lead - d).abs() < 1e-6) {
        String::new()
    } else if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}").trim_end_matches('0').to_string()
    }
}

/// The image panel: ground truth, every method's reconstruction with its scores, and the
/// absolute error of the best (highest-PSNR) method.
pub fn image_panel(
    path: &Path,
    truth: &Array2<f32>,
    truth_label: &str,
    recons: &[(String, Array2<f32>)],
    records: &[Record],
) -> Result<()> {
    let mut panels = vec![Panel {
        title: "Ground truth".into(),
        subtitle: truth_label.into(),
        image: truth.clone(),
        window: (0.0, 1.0),
    }];
    let mut best: Option<(f64, usize)> = None;
    for (i, (method, image)) in recons.iter().enumerate() {
        let rec = records.iter().find(|r| &r.method == method);
        let subtitle = rec
            .map(|r| format!("{:.2} dB  SSIM {:.3}", r.psnr, r.ssim))
            .unwrap_or_default();
        if let Some(r) = rec {
            if best.is_none_or(|(p, _)| r.psnr > p) {
                best = Some((r.psnr, i));
            }
        }
        panels.push(Panel {
            title: method.clone(),
            subtitle,
            image: image.clone(),
            window: (0.0, 1.0),
        });
    }
    if let Some((_, i)) = best {
        let (method, image) = &recons[i];
        panels.push(Panel {
            title: format!("|error| {method}"),
            subtitle: "window [0, 0.25]".into(),
            image: (image.mapv(|v| v.clamp(0.0, 1.0)) - truth).mapv(f32::abs),
            window: (0.0, 0.25),
        });
    }
    comparison_figure(path, &panels, 192)
}

/// Writes the summary markdown and JSON (`<stem>.md`, `<stem>.json`) and returns the
/// rows.
pub fn write_summary(
    dir: &Path,
    stem: &str,
    title: &str,
    records: &[Record],
) -> Result<Vec<SummaryRow>> {
    let rows = summarize(records);
    let md = format!(
        "# {title}\n\nmean ± sample std over the test images; PSNR/SSIM with data range 1 \
         (Gaussian SSIM), reconstructions clipped to [0, 1].\n\n{}",
        crate::eval::recon_bench::markdown_table(&rows)
    );
    write_bytes_atomic(&dir.join(format!("{stem}.md")), md.as_bytes())?;
    write_bytes_atomic(
        &dir.join(format!("{stem}.json")),
        (serde_json::to_string_pretty(&rows)? + "\n").as_bytes(),
    )?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::tick_label;

    #[test]
    fn ticks_are_plain_numbers_and_log_axes_label_only_1_2_5() {
        assert_eq!(tick_label(23.0, false), "23");
        assert_eq!(tick_label(2.5, false), "2.5");
        assert_eq!(tick_label(600.0, false), "600");
        assert_eq!(tick_label(500.0, true), "500");
        assert_eq!(tick_label(1000.0, true), "1000");
        assert_eq!(tick_label(2000.0, true), "2000");
        assert_eq!(tick_label(600.0, true), "");
        assert_eq!(tick_label(900.0, true), "");
    }
}
