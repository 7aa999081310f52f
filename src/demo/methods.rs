//! The demo's reconstruction methods (FBP, FISTA-TV, medsgm) and the pipeline that runs and
//! scores them.

use super::problem::CtProblem;
use super::FISTA_ITERATIONS;
use crate::eval::scores::{scores, Scores, SsimChoice};
use crate::model::LoadedModel;
use crate::reconstruct::fista::fista_with_progress;
use crate::reconstruct::score::{dense_ct_operator, score_reconstruct, IntensityMap};
use anyhow::{Context, Result};
use medsgm_operators::fbp::{fbp, Filter};
use medsgm_operators::solvers::FistaTvParams;
use medsgm_recon::InverseConfig;
use ndarray::Array2;
use serde::Serialize;
use std::time::Instant;

/// A reconstruction: the image and, for posterior samplers, the per-pixel std and NFE.
pub struct MethodOutput {
    /// The reconstruction.
    pub image: Array2<f32>,
    /// Posterior standard deviation (K > 1).
    pub std: Option<Array2<f32>>,
    /// Score evaluations per sample.
    pub nfe: Option<usize>,
}

impl MethodOutput {
    fn image(image: Array2<f32>) -> Self {
        Self {
            image,
            std: None,
            nfe: None,
        }
    }
}

/// A reconstruction method of the demo.
pub struct DemoMethod<'a> {
    /// Display name.
    pub name: String,
    /// Reconstructs an image from the problem's sinogram (never looks at `truth`).
    pub reconstruct: Reconstructor<'a>,
}

/// A demo method's reconstruction from the problem's sinogram.
pub type Reconstructor<'a> = Box<dyn Fn(&CtProblem) -> Result<MethodOutput> + 'a>;

/// The classical baselines: FBP (Ram-Lak) and FISTA-TV (nonnegative, 200 iterations, weight
/// `tv_weight`).
pub fn classical_methods(tv_weight: f32) -> Vec<DemoMethod<'static>> {
    vec![
        DemoMethod {
            name: "FBP".into(),
            reconstruct: Box::new(|p| {
                Ok(MethodOutput::image(fbp(
                    &p.radon,
                    &p.sinogram.view(),
                    Filter::RamLak,
                )))
            }),
        },
        DemoMethod {
            name: "FISTA-TV".into(),
            reconstruct: Box::new(move |p| {
                let params = FistaTvParams {
                    weight: tv_weight,
                    iterations: FISTA_ITERATIONS,
                    nonnegative: true,
                    ..FistaTvParams::default()
                };
                fista_with_progress(&p.radon, &p.sinogram.view().into_dyn(), &params)
                    .map(MethodOutput::image)
            }),
        },
    ]
}

/// medsgm: [`medsgm_recon::solve`] with A = P(Λ) R, R over the dense view set of
/// [`dense_ct_operator`] and Λ the measured views, in the model's units.
pub fn score_method<'a>(
    model: &'a LoadedModel,
    config: InverseConfig,
    dense_views: usize,
) -> DemoMethod<'a> {
    DemoMethod {
        name: "medsgm".into(),
        reconstruct: Box::new(move |p| {
            let g = p.radon.geometry();
            let measured: Vec<f32> = g.angles.iter().map(|a| a.to_degrees()).collect();
            let (op, y) = dense_ct_operator(
                g.size,
                g.n_det,
                g.det_spacing,
                &measured,
                &p.sinogram,
                dense_views,
            )?;
            let r = score_reconstruct(model, &op, &y, IntensityMap::IDENTITY, &config)?;
            Ok(MethodOutput {
                image: r.mean,
                std: (config.samples > 1).then_some(r.std),
                nfe: Some(r.nfe),
            })
        }),
    }
}

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
    /// Score evaluations per posterior sample (score-based methods).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nfe: Option<usize>,
    /// The reconstruction.
    #[serde(skip)]
    pub image: Array2<f32>,
    /// The posterior standard deviation.
    #[serde(skip)]
    pub std: Option<Array2<f32>>,
}

/// Runs every method on the problem and scores it.
pub fn pipeline(problem: &CtProblem, methods: &[DemoMethod]) -> Result<Vec<DemoResult>> {
    methods
        .iter()
        .map(|m| {
            eprintln!("running {}", m.name);
            let start = Instant::now();
            let out = (m.reconstruct)(problem)
                .with_context(|| format!("reconstruction with {} failed", m.name))?;
            let seconds = start.elapsed().as_secs_f64();
            let s = scores(
                &out.image.view(),
                &problem.truth.view(),
                1.0,
                false,
                SsimChoice::Gaussian,
            )?;
            Ok(DemoResult {
                method: m.name.clone(),
                scores: s,
                seconds,
                nfe: out.nfe,
                image: out.image,
                std: out.std,
            })
        })
        .collect()
}
