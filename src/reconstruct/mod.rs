//! Reconstruction of measurements, below the CLI (`medsgm recon {ct,mri,mar}`): from a
//! measurement file, with a classical method (FBP, FISTA-TV, zero-filled, LI) or a score-based
//! one (see [`score`]), for one measurement or a batch of volume slices, and the batch runs over
//! folders, manifests and volumes ([`batch`]).
//!
//! Outputs are in the measurement's data units: CT in the units of the measured image, MAR in
//! HU (metal pasted back from the uncorrected FBP for display), MRI in the k-space's image
//! scale. Score-based methods with `--samples K > 1` also write the per-pixel posterior
//! standard deviation to `<out>_std` (same format, [`std_path`]).
//!
//! Every function takes the run's settings as a [`ReconJob`], resolved once from what the run
//! asks for (flags, then the task config, then defaults) by [`request`]. Files: [`ct`], [`mri`],
//! [`mar`] (operators and classical methods per problem), [`fista`] (with [`tv_weight`]: its
//! weight in the measurement's units), [`score`] (intensity maps, the score sampler), [`memory`] (estimates), [`output`].

pub mod batch;
pub mod ct;
pub mod fista;
pub mod mar;
pub mod memory;
pub mod mri;
pub mod output;
pub mod request;
pub mod score;
pub mod tv_weight;

pub use memory::{recon_bytes, ReconSize};
pub use output::{std_path, ReconOutput};

use crate::error::{invalid, InputContext};
use crate::io::measurement::{load_measurement, Measurement};
use crate::io::memory::Budget;
use crate::model::LoadedModel;
use crate::task::prior_grid::at_pixel_spacing;
use crate::task::{Method, Problem};
use anyhow::{anyhow, Result};
use fista::FistaTv;
use medsgm_operators::fbp::Filter;
use medsgm_recon::InverseConfig;
use score::{score_batch, Units};
use std::path::Path;

/// The settings of one `recon` run, resolved once (flags, then the task config, then
/// defaults) and passed to every reconstruction of the run.
#[derive(Debug, Clone)]
pub struct ReconJob {
    /// The inverse problem.
    pub problem: Problem,
    /// The method.
    pub method: Method,
    /// The FBP filter (fbp; mar: also the uncorrected image).
    pub filter: Filter,
    /// FISTA-TV's settings (the fista-tv method only).
    pub fista: Option<FistaTv>,
    /// The score method's solver configuration (score-based methods only).
    pub score: Option<InverseConfig>,
    /// Intensity units of the measured image (score-based methods; see [`score`]).
    pub units: Option<Units>,
    /// The budget every input's estimated peak memory is checked against.
    pub memory: Budget,
}

impl ReconJob {
    /// The job of the `b`-th batch of one run: the score sampler seeded by
    /// [`medsgm_recon::batch_seed`] (classical methods draw nothing and are unchanged).
    pub fn for_batch(&self, b: usize) -> ReconJob {
        let mut job = self.clone();
        if let Some(c) = &mut job.score {
            c.seed = medsgm_recon::batch_seed(c.seed, b);
        }
        job
    }

    /// Posterior samples K per measurement (1 for the classical methods).
    pub fn samples(&self) -> usize {
        self.score.as_ref().map_or(1, |c| c.samples)
    }

    /// FISTA-TV's settings (an error for a job of another method).
    fn fista(&self) -> Result<FistaTv> {
        self.fista
            .clone()
            .ok_or_else(|| anyhow!("{} has no FISTA-TV settings", self.method))
    }
}

/// Loads the measurement at `path` and checks its kind against `problem`.
pub fn load_checked(problem: Problem, path: &Path) -> Result<Measurement> {
    let m = load_measurement(path).invalid_input()?;
    if m.sinogram_mask
        .as_ref()
        .is_some_and(|k| !k.iter().any(|&keep| keep))
    {
        return Err(invalid(format!(
            "{}: its sinogram mask keeps no measurement",
            path.display()
        )));
    }
    if m.sidecar.kind != problem {
        return Err(invalid(format!(
            "{} is a {} measurement, not {}",
            path.display(),
            m.sidecar.kind,
            problem
        )));
    }
    Ok(m)
}

/// CT and MRI measurements whose sidecar records a pixel spacing more than 10 % from the prior's,
/// re-expressed on the prior's grid ([`at_pixel_spacing`]), so that the
/// prior sees anatomy at the scale it was trained at; `None` when no rescaling applies.
fn at_prior_spacing(ms: &[Measurement], model: &LoadedModel) -> Result<Option<Vec<Measurement>>> {
    let Some(prior) = model.pixel_spacing_mm() else {
        return Ok(None);
    };
    let apart = |m: &Measurement| {
        m.sidecar
            .pixel_spacing_mm
            .is_some_and(|s| (s / prior - 1.0).abs() > 0.1)
    };
    if !ms.iter().any(apart) {
        return Ok(None);
    }
    let rescaled = ms
        .iter()
        .map(|m| {
            at_pixel_spacing(m, prior)
                .map(|r| r.unwrap_or_else(|| m.clone()))
                .map_err(|e| invalid(format!("the measurement on the prior's grid: {e:#}")))
        })
        .collect::<Result<Vec<_>>>()?;
    if let (Some(first), Some(m)) = (rescaled.first(), ms.first()) {
        let (from, to) = (m.sidecar.image_shape(), first.sidecar.image_shape());
        eprintln!(
            "the {}x{} measurement grid at {:.3} mm is reconstructed on the prior's {prior:.3} mm grid ({}x{}) and resampled back",
            from.0,
            from.1,
            m.sidecar.pixel_spacing_mm.unwrap_or(f32::NAN),
            to.0,
            to.1
        );
    }
    Ok(Some(rescaled))
}

/// Reconstructs one measurement of the requested problem.
pub fn reconstruct(
    job: &ReconJob,
    m: &Measurement,
    model: Option<&LoadedModel>,
) -> Result<ReconOutput> {
    reconstruct_batch(job, std::slice::from_ref(m), model)?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("the reconstruction returned no image"))
}

/// Reconstructs measurements that share one geometry and mask (the slices of a volume): the
/// score-based CT and MRI methods sample them together as one batch (see
/// [`score::score_reconstruct_batch`]); classical methods and MAR (whose metal differs
/// per slice) go one by one. One output per measurement, in order.
pub fn reconstruct_batch(
    job: &ReconJob,
    ms: &[Measurement],
    model: Option<&LoadedModel>,
) -> Result<Vec<ReconOutput>> {
    match (model, &job.score, job.problem) {
        (Some(model), Some(config), problem @ (Problem::Ct | Problem::Mri)) => {
            let prior_grid = at_prior_spacing(ms, model)?;
            let inputs = prior_grid.as_deref().unwrap_or(ms);
            if let (Some(_), Some(first)) = (&prior_grid, inputs.first()) {
                job.memory.check(
                    "the measurement on the prior's grid",
                    recon_bytes(
                        job,
                        ReconSize::of(&first.sidecar.geometry),
                        ms.len(),
                        Some(model),
                    ),
                )?;
            }
            let outs = match problem {
                Problem::Ct => score_batch(config, inputs, model, |m| {
                    ct::ct_score_problem(job, m, model)
                })?,
                _ => score_batch(config, inputs, model, |m| {
                    mri::mri_score_problem(job, m, model)
                })?,
            };
            Ok(outs
                .into_iter()
                .zip(ms)
                .map(|(o, m)| o.resampled(m.sidecar.image_shape()))
                .collect())
        }
        _ => ms
            .iter()
            .map(|m| match job.problem {
                Problem::Ct => ct::recon_ct(job, m),
                Problem::Mri => mri::recon_mri(job, m),
                Problem::Mar => mar::recon_mar(job, m, model),
            })
            .collect(),
    }
}
