//! FISTA-TV on any real-image operator: min ½‖Ax − y‖² + λ TV(x), the classical
//! regularised baseline of every problem.

use crate::progress::progress;
use anyhow::Result;
use medsgm_operators::solvers::{fista_tv, FistaTvParams};
use medsgm_operators::LinearOperator;
use ndarray::{Array2, ArrayViewD};

/// FISTA-TV's settings, resolved once per run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FistaTv {
    /// Iterations.
    pub iterations: usize,
    /// Regularisation weight λ in ½‖Ax − y‖² + λ TV(x).
    pub weight: f32,
    /// Project onto x ≥ 0 after each step.
    pub nonnegative: bool,
}

impl FistaTv {
    /// FISTA-TV on any real-image operator, with a progress bar.
    pub fn run<A: LinearOperator<In = f32>>(
        &self,
        op: &A,
        y: &ArrayViewD<A::Out>,
    ) -> Result<Array2<f32>> {
        let params = FistaTvParams {
            weight: self.weight,
            iterations: self.iterations,
            nonnegative: self.nonnegative,
            ..FistaTvParams::default()
        };
        let bar = progress(self.iterations as u64, "FISTA-TV");
        let x = fista_tv(op, y, &params, None, |_, _| bar.inc(1))?;
        bar.finish_and_clear();
        Ok(x)
    }
}
