//! `medsgm demo`: the classical sparse-view CT pipeline on a built-in phantom — simulate a
//! 23-view sinogram, reconstruct with every method of [`METHODS`], score against the ground
//! truth (PSNR/SSIM), print a table and save a comparison figure.
//!
//! The pipeline is a function of the method list, so the score-based reconstruction can be
//! added to (or replace) the classical methods without touching the rest.

use crate::cli::args::progress;
use crate::cli::invalid;
use crate::cli::metrics::{scores, Scores, SsimChoice};
use crate::cli::phantom::PhantomKind;
use crate::cli::recon::run_fista_tv;
use crate::io::npy::write_npy;
use crate::plot::{comparison_figure, Panel};
use anyhow::{Context, Result};
use clap::Args;
use medsgm_operators::fbp::{fbp, Filter};
use medsgm_operators::hu::{hu_to_unit, HuWindow};
use medsgm_operators::phantom::anatomical::{anatomical_ct, AnatomicalParams};
use medsgm_operators::phantom::shepp_logan;
use medsgm_operators::radon::{Radon, RadonGeometry};
use medsgm_operators::{noise, LinearOperator};
use ndarray::{Array2, Ix2};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `medsgm demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Output directory (created if missing).
    #[arg(long, default_value = "demo-out")]
    pub out_dir: PathBuf,
    /// Built-in phantom (shepp-logan or anatomical; values in [0, 1]).
    #[arg(long, value_enum, default_value = "shepp-logan")]
    pub phantom: PhantomKind,
    /// Image side length.
    #[arg(long, default_value_t = 128)]
    pub size: usize,
    /// Number of equispaced views over [0°, 180°).
    #[arg(long, default_value_t = 23)]
    pub views: usize,
    /// Phantom and noise seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Additive Gaussian sinogram noise (standard deviation); 0 = noise-free.
    #[arg(long, default_value_t = 0.0)]
    pub sigma: f32,
}

/// A sparse-view CT problem: ground truth, operator and measured sinogram.
pub struct CtProblem {
    /// Ground-truth image in [0, 1].
    pub truth: Array2<f32>,
    /// The Radon transform over the measured views.
    pub radon: Radon,
    /// Measured sinogram [views, det].
    pub sinogram: Array2<f32>,
}

/// A reconstruction method of the demo.
pub struct DemoMethod {
    /// Display name.
    pub name: &'static str,
    /// Reconstructs an image from the problem's sinogram (never looks at `truth`).
    pub reconstruct: fn(&CtProblem) -> Result<Array2<f32>>,
}

/// The classical baselines: FBP (Ram-Lak) and FISTA-TV (nonnegative, 200 iterations).
pub const METHODS: &[DemoMethod] = &[
    DemoMethod {
        name: "FBP",
        reconstruct: |p| Ok(fbp(&p.radon, &p.sinogram.view(), Filter::RamLak)),
    },
    DemoMethod {
        name: "FISTA-TV",
        reconstruct: |p| {
            run_fista_tv(
                &p.radon,
                &p.sinogram.view().into_dyn(),
                FISTA_ITERATIONS,
                FISTA_TV_WEIGHT,
                true,
            )
        },
    },
];

/// FISTA-TV iterations of the demo.
const FISTA_ITERATIONS: usize = 200;
/// FISTA-TV weight λ of the demo (for sinograms of [0, 1] images with unit pixels).
const FISTA_TV_WEIGHT: f32 = 0.05;

/// One method's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct DemoResult {
    /// Method name.
    pub method: String,
    /// Scores against the ground truth (data range 1, whole image, Gaussian SSIM).
    #[serde(flatten)]
    pub scores: Scores,
    /// Wall time of the reconstruction.
    pub seconds: f64,
    /// The reconstruction.
    #[serde(skip)]
    pub image: Array2<f32>,
}

/// Simulates the sparse-view sinogram of `truth` (optionally with Gaussian noise).
pub fn ct_problem(truth: Array2<f32>, views: usize, sigma: f32, seed: u64) -> Result<CtProblem> {
    let size = truth.nrows();
    let geometry = RadonGeometry::equispaced(size, views, RadonGeometry::default_n_det(size));
    let radon = Radon::new(geometry)?;
    let clean = radon
        .forward(&truth.view().into_dyn())
        .into_dimensionality::<Ix2>()?;
    let sinogram = if sigma > 0.0 {
        noise::gaussian(&clean.view(), sigma, seed)?
    } else {
        clean
    };
    Ok(CtProblem {
        truth,
        radon,
        sinogram,
    })
}

/// Runs every method on the problem and scores it.
pub fn pipeline(problem: &CtProblem, methods: &[DemoMethod]) -> Result<Vec<DemoResult>> {
    let bar = progress(methods.len() as u64, "methods");
    let results = methods
        .iter()
        .map(|m| {
            let start = Instant::now();
            let image = (m.reconstruct)(problem)
                .with_context(|| format!("reconstruction with {} failed", m.name))?;
            let seconds = start.elapsed().as_secs_f64();
            let s = scores(
                &image.view(),
                &problem.truth.view(),
                1.0,
                false,
                SsimChoice::Gaussian,
            )?;
            bar.inc(1);
            Ok(DemoResult {
                method: m.name.to_owned(),
                scores: s,
                seconds,
                image,
            })
        })
        .collect::<Result<Vec<_>>>();
    bar.finish_and_clear();
    results
}

/// The built-in phantom in [0, 1].
fn demo_phantom(kind: PhantomKind, size: usize, seed: u64) -> Result<Array2<f32>> {
    Ok(match kind {
        PhantomKind::SheppLogan => shepp_logan(size),
        PhantomKind::Anatomical => {
            let hu = anatomical_ct(size, seed, &AnatomicalParams::default())?.hu;
            hu_to_unit(&hu.view(), HuWindow::default())
        }
        PhantomKind::Ellipses => medsgm_operators::phantom::random_ellipses(size, seed, 10),
    })
}

/// Runs `medsgm demo`.
pub fn run(a: &DemoArgs) -> Result<()> {
    if !(16..=1024).contains(&a.size) {
        return Err(invalid("--size must be in 16..=1024"));
    }
    if !(1..=3600).contains(&a.views) {
        return Err(invalid("--views must be in 1..=3600"));
    }
    if !(a.sigma.is_finite() && a.sigma >= 0.0) {
        return Err(invalid("--sigma must be non-negative"));
    }
    std::fs::create_dir_all(&a.out_dir)
        .with_context(|| format!("cannot create {}", a.out_dir.display()))?;
    let truth = demo_phantom(a.phantom, a.size, a.seed)?;
    let problem = ct_problem(truth, a.views, a.sigma, a.seed)?;
    let results = pipeline(&problem, METHODS)?;

    write_npy(
        &a.out_dir.join("ground_truth.npy"),
        &problem.truth.view().into_dyn(),
    )?;
    write_npy(
        &a.out_dir.join("sinogram.npy"),
        &problem.sinogram.view().into_dyn(),
    )?;
    for r in &results {
        let name = r.method.to_lowercase().replace(['-', ' '], "_");
        write_npy(
            &a.out_dir.join(format!("{name}.npy")),
            &r.image.view().into_dyn(),
        )?;
    }
    let best = results
        .iter()
        .max_by(|x, y| x.scores.psnr.total_cmp(&y.scores.psnr))
        .context("no methods ran")?;
    let mut panels = vec![Panel {
        title: "Ground truth".into(),
        subtitle: format!("{}², {} views", a.size, a.views),
        image: problem.truth.clone(),
        window: (0.0, 1.0),
    }];
    panels.extend(results.iter().map(|r| Panel {
        title: r.method.clone(),
        subtitle: format!("PSNR {:.2} dB  SSIM {:.3}", r.scores.psnr, r.scores.ssim),
        image: r.image.clone(),
        window: (0.0, 1.0),
    }));
    let error = (&best.image - &problem.truth).mapv(f32::abs);
    panels.push(Panel {
        title: format!("|error| {}", best.method),
        subtitle: "window [0, 0.25]".into(),
        image: error,
        window: (0.0, 0.25),
    });
    let figure = a.out_dir.join("comparison.png");
    comparison_figure(&figure, &panels, 256)?;
    let summary = a.out_dir.join("summary.json");
    crate::io::atomic::write_bytes_atomic(
        &summary,
        (serde_json::to_string_pretty(&results)? + "\n").as_bytes(),
    )?;

    println!(
        "sparse-view CT, {} phantom {}², {} views, σ = {}",
        match a.phantom {
            PhantomKind::SheppLogan => "Shepp-Logan",
            PhantomKind::Anatomical => "anatomical",
            PhantomKind::Ellipses => "ellipses",
        },
        a.size,
        a.views,
        a.sigma
    );
    println!(
        "{:<10} {:>10} {:>8} {:>10}",
        "method", "PSNR dB", "SSIM", "time s"
    );
    for r in &results {
        println!(
            "{:<10} {:>10.2} {:>8.4} {:>10.3}",
            r.method, r.scores.psnr, r.scores.ssim, r.seconds
        );
    }
    println!("figure: {}", figure.display());
    println!("summary: {}", summary.display());
    Ok(())
}
