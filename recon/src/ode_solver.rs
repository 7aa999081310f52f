//! Generic integrators for dy/dt = F(t, y) on tensors: fixed-step Euler / Heun and adaptive
//! Runge–Kutta 4(5) Dormand–Prince (the RK45 of scipy's `solve_ivp`, used by score_sde for
//! probability-flow sampling and likelihoods; method digest §3.4, §3.9). Time may run
//! backwards (t_end < t_start).

use crate::error::{ensure, ReconError, Result};
use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

/// The right-hand side F(t, y).
pub type Rhs<'a> = dyn FnMut(f64, &Tensor) -> Result<Tensor> + 'a;

/// End state and cost of an integration.
#[derive(Debug, Clone)]
pub struct OdeSolution {
    /// y(t_end).
    pub y: Tensor,
    /// Number of F evaluations.
    pub nfe: usize,
    /// Accepted steps.
    pub steps: usize,
    /// Rejected steps (adaptive only).
    pub rejected: usize,
}

/// Fixed-step integration along `grid` (monotone): Euler y += h F(t, y), or Heun's
/// trapezoidal predictor–corrector (2 evaluations per step).
pub fn integrate_fixed(f: &mut Rhs, y0: Tensor, grid: &[f64], heun: bool) -> Result<OdeSolution> {
    ensure(grid.len() >= 2, "grid", || "need at least two times".into())?;
    let mut y = y0;
    let mut nfe = 0;
    for w in grid.windows(2) {
        let (t, h) = (w[0], w[1] - w[0]);
        let k1 = f(t, &y)?;
        let euler = (&y + k1.affine(h, 0.0)?)?;
        nfe += 1;
        y = if heun {
            let k2 = f(w[1], &euler)?;
            nfe += 1;
            (&y + (k1 + k2)?.affine(0.5 * h, 0.0)?)?
        } else {
            euler
        };
    }
    Ok(OdeSolution {
        y,
        nfe,
        steps: grid.len() - 1,
        rejected: 0,
    })
}

/// Tolerances of the adaptive solver: per-element error scale atol + rtol·max(|y|, |y_new|),
/// accepted when the RMS of the scaled error estimate is ≤ 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tolerances {
    /// Relative tolerance.
    pub rtol: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Maximal number of steps (accepted + rejected) before giving up.
    pub max_steps: usize,
}

impl Default for Tolerances {
    /// rtol = atol = 1e-5 (score_sde defaults).
    fn default() -> Self {
        Self {
            rtol: 1e-5,
            atol: 1e-5,
            max_steps: 100_000,
        }
    }
}

// Dormand–Prince 5(4) tableau.
const C: [f64; 6] = [0.0, 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0];
const A: [&[f64]; 6] = [
    &[],
    &[1.0 / 5.0],
    &[3.0 / 40.0, 9.0 / 40.0],
    &[44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
    &[
        19372.0 / 6561.0,
        -25360.0 / 2187.0,
        64448.0 / 6561.0,
        -212.0 / 729.0,
    ],
    &[
        9017.0 / 3168.0,
        -355.0 / 33.0,
        46732.0 / 5247.0,
        49.0 / 176.0,
        -5103.0 / 18656.0,
    ],
];
const B: [f64; 6] = [
    35.0 / 384.0,
    0.0,
    500.0 / 1113.0,
    125.0 / 192.0,
    -2187.0 / 6784.0,
    11.0 / 84.0,
];
/// B − B̂ (5th minus embedded 4th order), 7 stages including the FSAL stage.
const E: [f64; 7] = [
    -71.0 / 57600.0,
    0.0,
    71.0 / 16695.0,
    -71.0 / 1920.0,
    17253.0 / 339200.0,
    -22.0 / 525.0,
    1.0 / 40.0,
];

/// y + h Σ c_i k_i.
fn combine(y: &Tensor, h: f64, coeffs: &[f64], ks: &[Tensor]) -> Result<Tensor> {
    let mut acc = y.clone();
    for (c, k) in coeffs.iter().zip(ks) {
        if *c != 0.0 {
            acc = (acc + k.affine(h * c, 0.0)?)?;
        }
    }
    Ok(acc)
}

/// RMS over all elements of v / scale.
fn rms_scaled(v: &Tensor, scale: &Tensor) -> Result<f64> {
    let r = (v / scale)?
        .to_dtype(DType::F64)?
        .sqr()?
        .mean_all()?
        .to_scalar::<f64>()?;
    Ok(r.sqrt())
}

/// Adaptive Dormand–Prince RK45 from `t0` to `t1` (either direction), with scipy's
/// initial-step heuristic and step-size control (safety 0.9, factor in [0.2, 10]).
pub fn integrate_rk45(
    f: &mut Rhs,
    y0: Tensor,
    t0: f64,
    t1: f64,
    tol: Tolerances,
) -> Result<OdeSolution> {
    ensure(tol.rtol > 0.0 && tol.atol > 0.0, "rtol/atol", || {
        format!(
            "tolerances must be positive, got {}, {}",
            tol.rtol, tol.atol
        )
    })?;
    ensure(t0 != t1, "t0/t1", || "empty integration interval".into())?;
    let dir = (t1 - t0).signum();
    let scale_of = |a: &Tensor, b: &Tensor| -> Result<Tensor> {
        Ok(a.abs()?.maximum(&b.abs()?)?.affine(tol.rtol, tol.atol)?)
    };
    let mut y = y0;
    let mut t = t0;
    let mut k0 = f(t, &y)?;
    let mut nfe = 1;
    // initial step (Hairer, Nørsett & Wanner II.4; scipy select_initial_step)
    let scale = scale_of(&y, &y)?;
    let (d0, d1) = (rms_scaled(&y, &scale)?, rms_scaled(&k0, &scale)?);
    let h0 = if d0 < 1e-5 || d1 < 1e-5 {
        1e-6
    } else {
        0.01 * d0 / d1
    };
    let y1 = (&y + k0.affine(dir * h0, 0.0)?)?;
    let k1 = f(t + dir * h0, &y1)?;
    nfe += 1;
    let d2 = rms_scaled(&(&k1 - &k0)?, &scale)? / h0;
    let h1 = if d1.max(d2) <= 1e-15 {
        (h0 * 1e-3).max(1e-6)
    } else {
        (0.01 / d1.max(d2)).powf(1.0 / 5.0)
    };
    let mut h = (100.0 * h0).min(h1).min((t1 - t0).abs());
    let (mut steps, mut rejected) = (0, 0);
    while dir * (t1 - t) > 0.0 {
        if steps + rejected >= tol.max_steps {
            return Err(ReconError::Numerical {
                what: "rk45",
                reason: format!("no convergence within {} steps (t = {t})", tol.max_steps),
            });
        }
        let min_step = 10.0 * f64::EPSILON * t.abs().max(1.0);
        if h < min_step {
            return Err(ReconError::Numerical {
                what: "rk45",
                reason: format!("step size underflow at t = {t}"),
            });
        }
        h = h.min((t1 - t).abs());
        let hs = dir * h;
        let mut ks = vec![k0.clone()];
        for s in 1..6 {
            let ys = combine(&y, hs, A[s], &ks)?;
            ks.push(f(t + C[s] * hs, &ys)?);
        }
        let y_new = combine(&y, hs, &B, &ks)?;
        let t_new = if (t1 - t - hs).abs() <= min_step {
            t1
        } else {
            t + hs
        };
        let k_new = f(t_new, &y_new)?;
        nfe += 6;
        ks.push(k_new.clone());
        let err = combine(&y.zeros_like()?, hs, &E, &ks)?;
        let err_norm = rms_scaled(&err, &scale_of(&y, &y_new)?)?;
        if !err_norm.is_finite() {
            return Err(ReconError::Numerical {
                what: "rk45",
                reason: format!("non-finite error estimate at t = {t}"),
            });
        }
        if err_norm <= 1.0 {
            let factor = if err_norm == 0.0 {
                10.0
            } else {
                (0.9 * err_norm.powf(-0.2)).min(10.0)
            };
            t = t_new;
            y = y_new;
            k0 = k_new;
            h *= factor;
            steps += 1;
        } else {
            h *= (0.9 * err_norm.powf(-0.2)).max(0.2);
            rejected += 1;
        }
    }
    Ok(OdeSolution {
        y,
        nfe,
        steps,
        rejected,
    })
}
