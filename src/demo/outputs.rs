//! The demo's files: the ground truth, sinogram and reconstructions as NPY, the comparison
//! figure and the JSON summary.

use super::methods::DemoResult;
use super::problem::CtProblem;
use crate::io::npy::write_npy;
use crate::plot::{comparison_figure, Panel};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The figure and the summary a demo wrote.
pub struct DemoFiles {
    /// The comparison figure (`comparison.png`).
    pub figure: PathBuf,
    /// The scores as JSON (`summary.json`).
    pub summary: PathBuf,
}

/// Creates `out_dir` and writes every array, the comparison figure ([`panels`]) and the
/// summary into it.
pub fn write_outputs(
    out_dir: &Path,
    problem: &CtProblem,
    results: &[DemoResult],
    views: usize,
    samples: usize,
) -> Result<DemoFiles> {
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    write_npy(
        &out_dir.join("ground_truth.npy"),
        &problem.truth.view().into_dyn(),
    )?;
    write_npy(
        &out_dir.join("sinogram.npy"),
        &problem.sinogram.view().into_dyn(),
    )?;
    for r in results {
        let name = r.method.to_lowercase().replace(['-', ' '], "_");
        write_npy(
            &out_dir.join(format!("{name}.npy")),
            &r.image.view().into_dyn(),
        )?;
        if let Some(std) = &r.std {
            write_npy(
                &out_dir.join(format!("{name}_std.npy")),
                &std.view().into_dyn(),
            )?;
        }
    }
    let figure = out_dir.join("comparison.png");
    comparison_figure(&figure, &panels(problem, results, views, samples)?, 256)?;
    let summary = out_dir.join("summary.json");
    crate::io::atomic::write_bytes_atomic(
        &summary,
        (serde_json::to_string_pretty(&results)? + "\n").as_bytes(),
    )?;
    Ok(DemoFiles { figure, summary })
}

/// Ground truth, every reconstruction with its scores, the |error| of the last method (medsgm
/// when it ran) and its std map.
pub fn panels(
    problem: &CtProblem,
    results: &[DemoResult],
    views: usize,
    samples: usize,
) -> Result<Vec<Panel>> {
    let size = problem.truth.nrows();
    let mut panels = vec![Panel {
        title: "Ground truth".into(),
        subtitle: format!("{size}², {views} views"),
        image: problem.truth.clone(),
        window: (0.0, 1.0),
    }];
    panels.extend(results.iter().map(|r| Panel {
        title: r.method.clone(),
        subtitle: format!("PSNR {:.2} dB  SSIM {:.3}", r.scores.psnr, r.scores.ssim),
        image: r.image.clone(),
        window: (0.0, 1.0),
    }));
    let last = results.last().context("no methods ran")?;
    panels.push(Panel {
        title: format!("|error| {}", last.method),
        subtitle: "window [0, 0.25]".into(),
        image: (&last.image - &problem.truth).mapv(f32::abs),
        window: (0.0, 0.25),
    });
    if let Some(std) = &last.std {
        panels.push(Panel {
            title: format!("std {} (K = {samples})", last.method),
            subtitle: format!("window [0, 0.1], mean {:.4}", std.mean().unwrap_or(0.0)),
            image: std.clone(),
            window: (0.0, 0.1),
        });
    }
    Ok(panels)
}
