//! The score-based methods of the benchmark: a checkpoint's network and SDE driving
//! `medsgm_recon::inverse::solve` (PC/ALD + projection, Score SDE, Langevin; thesis §8.3).

use crate::eval::cases::{ScoreSolver, Solved};
use crate::eval::method::MethodParams;
use crate::model::LoadedModel;
use crate::task::Method;
use anyhow::Result;
use medsgm_operators::{Fft2, RealInput, Subsampled, Transform};
use medsgm_recon::inverse::solve;
use medsgm_recon::ReconError;
use ndarray::Array1;
use num_complex::Complex32;
use std::path::Path;

/// A score-based solver that diverged for these parameters (a numerical failure or non-finite
/// output), as opposed to an invalid set-up: `tune` scores it as a failed evaluation.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Diverged(pub String);

/// The predictor-step count N whose NFE (`InverseConfig::nfe`) is closest to `nfe`.
pub fn steps_for_nfe(method: Method, params: &MethodParams, nfe: usize) -> usize {
    if method == Method::LatentDc {
        // One predictor and one Tweedie (data-consistency) evaluation per step.
        return (nfe / 2).max(1);
    }
    let at = |steps: usize| {
        let p = MethodParams {
            steps,
            ..params.clone()
        };
        p.inverse_config(method).map(|c| c.nfe()).unwrap_or(steps)
    };
    // NFE is affine in N: base + per · N.
    let per = at(2).saturating_sub(at(1)).max(1);
    let base = at(1).saturating_sub(per);
    (nfe.saturating_sub(base) as f64 / per as f64)
        .round()
        .max(1.0) as usize
}

/// A checkpoint's EMA network and SDE as a [`ScoreSolver`] (the [`LoadedModel`] that `recon`
/// samples with, on the same device; batches of `batch` images, seeded by
/// [`medsgm_recon::batch_seed`]).
pub struct ModelSolver {
    model: LoadedModel,
    batch: usize,
}

impl ModelSolver {
    /// Loads the checkpoint at `path`.
    pub fn load(path: &Path, batch: usize) -> Result<Self> {
        Ok(Self {
            model: LoadedModel::load(path)?,
            batch: batch.max(1),
        })
    }

    fn run<T: Transform<In = f32>>(
        &self,
        op: &Subsampled<T>,
        ys: &[Array1<T::Out>],
        method: Method,
        params: &MethodParams,
    ) -> Result<Solved> {
        let score = self.model.score();
        let mut out = Solved {
            images: Vec::with_capacity(ys.len()),
            nfe: 0,
        };
        for (b, chunk) in ys.chunks(self.batch).enumerate() {
            let mut cfg = params.inverse_config(method)?;
            cfg.seed = medsgm_recon::batch_seed(params.seed, b);
            let r = solve(
                self.model.sde.as_ref(),
                &score,
                op,
                chunk,
                &cfg,
                &self.model.device,
                &mut |_, _| {},
            )
            .map_err(|e| match e {
                ReconError::Numerical { .. } => anyhow::Error::new(Diverged(format!(
                    "{method} diverged ({e}); try more steps or a smaller snr"
                ))),
                e => e.into(),
            })?;
            if r.mean.iter().any(|m| m.iter().any(|v| !v.is_finite())) {
                return Err(Diverged(format!(
                    "{method} diverged (non-finite output); try more steps or a smaller snr"
                ))
                .into());
            }
            out.images.extend(r.mean);
            out.nfe = r.nfe;
        }
        Ok(out)
    }
}

impl ScoreSolver for ModelSolver {
    fn image_size(&self) -> usize {
        self.model.image_size()
    }

    fn solve_ct(
        &self,
        op: &Subsampled<medsgm_operators::CtProjector>,
        ys: &[Array1<f32>],
        method: Method,
        params: &MethodParams,
    ) -> Result<Solved> {
        self.run(op, ys, method, params)
    }

    fn solve_fft(
        &self,
        op: &Subsampled<RealInput<Fft2>>,
        ys: &[Array1<Complex32>],
        method: Method,
        params: &MethodParams,
    ) -> Result<Solved> {
        self.run(op, ys, method, params)
    }
}
