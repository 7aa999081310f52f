//! The reconstruction benchmark harness behind `medsgm bench recon`: runs every method on
//! every [`Case`], scores each reconstruction against its ground truth and aggregates the
//! scores (thesis Tables 8.1–8.3, Fig. 8.5).
//!
//! Scoring: reconstructions are clipped to [0, 1] (the data range of the ground truth), then
//! PSNR and SSIM with data range 1 and the Gaussian (Wang 2004) SSIM preset, over the whole
//! image or, for MAR, over the pixels outside the metal. Timing: wall seconds per slice
//! (classical methods one slice at a time; score methods one batch per case, divided by its
//! size).

use crate::eval::cases::{Case, ScoreSolver};
use crate::eval::method::MethodParams;
use crate::eval::testset::TestImage;
use crate::task::{Method, Problem};
use anyhow::{bail, Context, Result};
use medsgm_operators::metrics::{psnr, psnr_masked, ssim, ssim_masked, SsimPreset};
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// One scored reconstruction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Problem name.
    pub task: String,
    /// Setting label, e.g. "23 views".
    pub setting: String,
    /// Abscissa of the curves (views, acceleration or NFE).
    pub x: f64,
    /// Method name.
    pub method: String,
    /// Test image id.
    pub image: String,
    /// PSNR in dB.
    pub psnr: f64,
    /// SSIM (Gaussian preset).
    pub ssim: f64,
    /// Score-network evaluations (0 for classical methods).
    pub nfe: usize,
    /// Wall seconds for this slice.
    pub seconds: f64,
}

/// A method with its parameters.
#[derive(Debug, Clone)]
pub struct MethodRun {
    /// The method.
    pub method: Method,
    /// Its parameters.
    pub params: MethodParams,
}

/// Benchmark output: the records and the reconstructions of the first image of the first case
/// (for the image panel).
#[derive(Debug, Clone, Default)]
pub struct BenchOutput {
    /// Every scored reconstruction.
    pub records: Vec<Record>,
    /// (method, reconstruction) of the first image of the first case.
    pub first: Vec<(String, Array2<f32>)>,
}

/// PSNR and SSIM of `x` (clipped to [0, 1]) against `truth`, over `mask` when given.
pub fn score_image(
    x: &Array2<f32>,
    truth: &Array2<f32>,
    mask: Option<&Array2<bool>>,
) -> Result<(f64, f64)> {
    let x = x.mapv(|v| v.clamp(0.0, 1.0));
    let (x, t) = (x.view(), truth.view());
    let g = SsimPreset::Gaussian;
    Ok(match mask {
        None => (psnr(&x, &t, 1.0)?, ssim(&x, &t, 1.0, g)?),
        Some(m) => (
            psnr_masked(&x, &t, 1.0, &m.view())?,
            ssim_masked(&x, &t, 1.0, g, &m.view())?,
        ),
    })
}

/// Runs `methods` on every case. Score methods need `solver`; `log` receives progress lines.
pub fn run_bench(
    task: Problem,
    images: &[TestImage],
    cases: &[Case],
    methods: &[MethodRun],
    solver: Option<&dyn ScoreSolver>,
    log: &mut dyn FnMut(&str),
) -> Result<BenchOutput> {
    let mut out = BenchOutput::default();
    for (ci, case) in cases.iter().enumerate() {
        for run in methods {
            let m = run.method;
            if !m.applies_to(task) {
                bail!("{m} does not apply to {task}");
            }
            let start = Instant::now();
            let (recons, nfe, per_slice): (Vec<Array2<f32>>, usize, Vec<f64>) = if m.is_score() {
                let solver =
                    solver.with_context(|| format!("{m} needs a score model (--model)"))?;
                let solved = case.score(solver, m, &run.params)?;
                let each = start.elapsed().as_secs_f64() / case.images.len() as f64;
                (
                    solved.images,
                    solved.nfe * run.params.samples.max(1),
                    vec![each; case.images.len()],
                )
            } else {
                let mut times = Vec::new();
                let recons = (0..case.images.len())
                    .map(|k| {
                        let t0 = Instant::now();
                        let r = case.classical(m, k, &run.params);
                        times.push(t0.elapsed().as_secs_f64());
                        r
                    })
                    .collect::<Result<Vec<_>>>()?;
                (recons, 0, times)
            };
            if recons.len() != case.images.len() {
                bail!(
                    "{m} returned {} images for {}",
                    recons.len(),
                    case.images.len()
                );
            }
            for (k, recon) in recons.iter().enumerate() {
                let image = &images[case.images[k]];
                let (p, s) = score_image(recon, &image.truth, case.masks[k].as_ref())
                    .with_context(|| format!("scoring {m} on image {}", image.id))?;
                out.records.push(Record {
                    task: task.to_string(),
                    setting: case.label.clone(),
                    x: case.x,
                    method: m.to_string(),
                    image: image.id.clone(),
                    psnr: p,
                    ssim: s,
                    nfe,
                    seconds: per_slice[k],
                });
            }
            if ci == 0 {
                out.first.push((m.to_string(), recons[0].clone()));
            }
            log(&format!(
                "{} {m}: {} images in {:.1} s",
                case.label,
                recons.len(),
                start.elapsed().as_secs_f64()
            ));
        }
    }
    Ok(out)
}

/// Mean ± standard deviation of the records of one (setting, method) pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    /// Setting label.
    pub setting: String,
    /// Curve abscissa.
    pub x: f64,
    /// Method name.
    pub method: String,
    /// Number of images.
    pub n: usize,
    /// Mean PSNR (dB).
    pub psnr_mean: f64,
    /// Sample standard deviation of the PSNR (0 for n = 1).
    pub psnr_std: f64,
    /// Mean SSIM.
    pub ssim_mean: f64,
    /// Sample standard deviation of the SSIM.
    pub ssim_std: f64,
    /// NFE per slice.
    pub nfe: usize,
    /// Mean wall seconds per slice.
    pub seconds_per_slice: f64,
}

/// Mean and sample standard deviation (ddof = 1; 0 for a single value).
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// Groups records by (setting, method) in order of first appearance.
pub fn summarize(records: &[Record]) -> Vec<SummaryRow> {
    let mut keys: Vec<(String, String)> = Vec::new();
    for r in records {
        let key = (r.setting.clone(), r.method.clone());
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.into_iter()
        .map(|(setting, method)| {
            let rs: Vec<&Record> = records
                .iter()
                .filter(|r| r.setting == setting && r.method == method)
                .collect();
            let (psnr_mean, psnr_std) = mean_std(&rs.iter().map(|r| r.psnr).collect::<Vec<_>>());
            let (ssim_mean, ssim_std) = mean_std(&rs.iter().map(|r| r.ssim).collect::<Vec<_>>());
            SummaryRow {
                x: rs[0].x,
                n: rs.len(),
                psnr_mean,
                psnr_std,
                ssim_mean,
                ssim_std,
                nfe: rs[0].nfe,
                seconds_per_slice: rs.iter().map(|r| r.seconds).sum::<f64>() / rs.len() as f64,
                setting,
                method,
            }
        })
        .collect()
}

/// The summary as a markdown table.
pub fn markdown_table(rows: &[SummaryRow]) -> String {
    let mut s = String::from(
        "| setting | method | n | PSNR (dB) | SSIM | NFE | s/slice |\n|---|---|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        s += &format!(
            "| {} | {} | {} | {:.2} ± {:.2} | {:.4} ± {:.4} | {} | {:.3} |\n",
            r.setting,
            r.method,
            r.n,
            r.psnr_mean,
            r.psnr_std,
            r.ssim_mean,
            r.ssim_std,
            r.nfe,
            r.seconds_per_slice
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_std_matches_hand_computation() {
        let (m, s) = mean_std(&[1.0, 2.0, 3.0, 4.0]);
        assert!((m - 2.5).abs() < 1e-12);
        // Sample variance of 1..4 is 5/3.
        assert!((s - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(mean_std(&[7.0]), (7.0, 0.0));
    }

    #[test]
    fn scores_clip_and_respect_the_mask() {
        let truth = Array2::from_shape_fn((16, 16), |(i, j)| ((i + j) % 5) as f32 / 4.0);
        let mut x = truth.clone();
        // Out-of-range values are clipped: 1.5 where the truth is 1 scores as exact.
        x.mapv_inplace(|v| if v == 1.0 { 1.5 } else { v });
        assert!(score_image(&x, &truth, None).unwrap().0.is_infinite());
        // An error confined to a masked-out pixel does not count.
        x[[3, 3]] += 0.5;
        let mut mask = Array2::from_elem((16, 16), true);
        assert!(score_image(&x, &truth, Some(&mask)).unwrap().0.is_finite());
        mask[[3, 3]] = false;
        assert!(score_image(&x, &truth, Some(&mask))
            .unwrap()
            .0
            .is_infinite());
    }
}
