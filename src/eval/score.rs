//! The score-based methods of the benchmark (placeholder until `medsgm_recon::inverse` lands).

use crate::eval::cases::{ScoreSolver, Solved};
use crate::eval::method::{EvalMethod, MethodParams};
use anyhow::{bail, Result};
use medsgm_operators::radon::Radon;
use medsgm_operators::{Fft2, RealInput, Subsampled};
use ndarray::Array1;
use num_complex::Complex32;
use std::path::Path;

/// The predictor-step count N whose NFE is closest to `nfe` (PC: N(M + 1) + 1).
pub fn steps_for_nfe(_method: EvalMethod, params: &MethodParams, nfe: usize) -> usize {
    (nfe / (params.corrector_steps + 1)).max(1)
}

/// A checkpoint's network as a [`ScoreSolver`].
pub struct ModelSolver;

impl ModelSolver {
    /// Loads the checkpoint at `path`.
    pub fn load(_path: &Path, _batch: usize) -> Result<Self> {
        bail!("the score-based solvers are not in this build yet")
    }
}

impl ScoreSolver for ModelSolver {
    fn image_size(&self) -> usize {
        0
    }
    fn solve_radon(
        &self,
        _: &Subsampled<Radon>,
        _: &[Array1<f32>],
        _: EvalMethod,
        _: &MethodParams,
    ) -> Result<Solved> {
        bail!("unavailable")
    }
    fn solve_fft(
        &self,
        _: &Subsampled<RealInput<Fft2>>,
        _: &[Array1<Complex32>],
        _: EvalMethod,
        _: &MethodParams,
    ) -> Result<Solved> {
        bail!("unavailable")
    }
}
