//! FISTA-TV on any real-image operator: min ½‖Ax − y‖² + λ TV(x), the classical
//! regularised baseline of every problem.

use crate::io::measurement::Measurement;
use crate::progress::progress;
use crate::reconstruct::tv_weight::TvWeight;
use anyhow::Result;
use medsgm_operators::solvers::{fista_tv, FistaTvParams};
use medsgm_operators::LinearOperator;
use ndarray::{Array2, ArrayViewD};

/// FISTA-TV's settings, resolved once per run.
#[derive(Debug, Clone, PartialEq)]
pub struct FistaTv {
    /// Iterations.
    pub iterations: usize,
    /// Regularisation weight λ in ½‖Ax − y‖² + λ TV(x), converted to each measurement's
    /// units ([`TvWeight::for_measurement`]).
    pub weight: TvWeight,
    /// Project onto x ≥ 0 after each step.
    pub nonnegative: bool,
}

impl FistaTv {
    /// FISTA-TV on any real-image operator `op` of the measurement `m` (whose units and
    /// spacing set the weight), with a progress bar.
    pub fn run<A: LinearOperator<In = f32>>(
        &self,
        m: &Measurement,
        op: &A,
        y: &ArrayViewD<A::Out>,
    ) -> Result<Array2<f32>> {
        let weight = self.weight.for_measurement(m, || {
            op.adjoint(y)
                .into_dimensionality()
                .unwrap_or_else(|_| Array2::zeros((0, 0)))
        })?;
        fista_with_progress(
            op,
            y,
            &FistaTvParams {
                weight,
                iterations: self.iterations,
                nonnegative: self.nonnegative,
                ..FistaTvParams::default()
            },
        )
    }
}

/// FISTA-TV with `params` (λ in the data's units) on any real-image operator, with a progress
/// bar.
pub fn fista_with_progress<A: LinearOperator<In = f32>>(
    op: &A,
    y: &ArrayViewD<A::Out>,
    params: &FistaTvParams,
) -> Result<Array2<f32>> {
    let bar = progress(params.iterations as u64, "FISTA-TV");
    let x = fista_tv(op, y, params, None, |_, _| bar.inc(1))?;
    bar.finish_and_clear();
    Ok(x)
}
