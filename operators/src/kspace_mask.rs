//! Cartesian single-coil k-space sampling masks (thesis §8.4.1, fastMRI conventions).
//!
//! Phase encoding runs along the columns: a mask keeps whole columns of the centred k-space
//! (see [`crate::fft::Fft2`]) and is broadcast over all rows. Every mask keeps a fully sampled
//! centre block of `num_low = round(W · center_fraction)` columns starting at
//! `pad = (W − num_low + 1) / 2` (fastMRI's `MaskFunc`; Python's round, i.e. ties to even), which
//! contains the DC column ⌊W/2⌋ whenever `num_low ≥ 1`. The outer columns are chosen by
//!
//! - [`equispaced`]: the score_inverse_problems `get_cartesian_mask`, i.e. fastMRI's (v0.1)
//!   `EquispacedMaskFunc` with the fixed offset `round(adj) // 2`;
//!   [`equispaced_with_offset`] exposes the offset that fastMRI draws at random;
//! - [`random`]: fastMRI's `RandomMaskFunc` (independent Bernoulli columns);
//! - [`variable_density`]: a seeded Gaussian-density draw with an exact column budget.

use crate::{OpError, Result};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The centre fraction score_inverse_problems uses for image width `w` and acceleration R:
/// n_keep = w / R columns and `center_fraction = n_keep / 1000` (so 256², R = 4 gives a centre of
/// round(16.384) = 16 columns). The 1/1000 is that code's convention, not a physical choice.
pub fn song_center_fraction(w: usize, acceleration: f64) -> f64 {
    (w as f64 / acceleration) / 1000.0
}

/// Equispaced column mask with the score_inverse_problems / fastMRI convention.
///
/// The outer columns are `around(offset + i · adj)` for `offset + i · adj < W − 1`, with the
/// adjusted spacing `adj = R (num_low − W) / (num_low R − W)` (so that roughly W/R columns are
/// kept in total) and the deterministic offset `round(adj) // 2`; rounding is numpy's (ties to
/// even). As in the reference, the last column W − 1 is never an outer sample (numpy's
/// `arange(offset, W − 1, adj)`), so even R = 1 leaves it out unless the centre covers it.
/// When the centre block alone already meets the budget (`num_low · R ≥ W`) only the centre
/// is kept.
pub fn equispaced(
    h: usize,
    w: usize,
    acceleration: f64,
    center_fraction: f64,
) -> Result<Array2<bool>> {
    validate(h, w, acceleration, center_fraction)?;
    let adj = adjusted_acceleration(w, acceleration, center_fraction);
    let offset = adj.map_or(0, |a| (a.round_ties_even() as usize) / 2);
    equispaced_with_offset(h, w, acceleration, center_fraction, offset)
}

/// [`equispaced`] with an explicit offset of the first outer column. fastMRI's
/// `EquispacedMaskFunc` draws it uniformly from `0..round(adj)`; reproduce that by drawing the
/// offset from your own seeded generator.
pub fn equispaced_with_offset(
    h: usize,
    w: usize,
    acceleration: f64,
    center_fraction: f64,
    offset: usize,
) -> Result<Array2<bool>> {
    validate(h, w, acceleration, center_fraction)?;
    let mut cols = center_columns(w, center_fraction);
    if let Some(adj) = adjusted_acceleration(w, acceleration, center_fraction) {
        // numpy.arange(offset, W − 1, adj): ceil((stop − start)/step) values start + i·delta.
        let start = offset as f64;
        let stop = w as f64 - 1.0;
        let delta = (start + adj) - start;
        let n = ((stop - start) / adj).ceil().max(0.0) as usize;
        for i in 0..n {
            let c = (start + i as f64 * delta).round_ties_even() as usize;
            if c < w {
                cols[c] = true;
            }
        }
    }
    Ok(broadcast(h, &cols))
}

/// fastMRI's `RandomMaskFunc`: the centre block plus each other column independently with
/// probability `(W/R − num_low) / (W − num_low)` (clamped to [0, 1]), so that W/R columns are
/// kept on average. Seeded (ChaCha8).
pub fn random(
    h: usize,
    w: usize,
    acceleration: f64,
    center_fraction: f64,
    seed: u64,
) -> Result<Array2<bool>> {
    validate(h, w, acceleration, center_fraction)?;
    let mut cols = center_columns(w, center_fraction);
    let num_low = num_low_frequencies(w, center_fraction);
    if num_low < w {
        let prob =
            ((w as f64 / acceleration - num_low as f64) / (w - num_low) as f64).clamp(0.0, 1.0);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for c in cols.iter_mut() {
            let u: f64 = rng.random();
            *c |= u < prob;
        }
    }
    Ok(broadcast(h, &cols))
}

/// Variable-density random mask with an exact budget: the centre block plus outer columns drawn
/// without replacement, with probability weights ∝ exp(−d² / (2 σ²)) where d = (c − ⌊W/2⌋)/(W/2)
/// is the normalised distance of column c from the DC column and σ = [`VD_SIGMA`], until
/// max(round(W/R), num_low) columns are kept. Seeded weighted sampling without replacement by
/// Efraimidis–Spirakis keys uᵢ^(1/wᵢ) (the columns with the largest keys are taken).
pub fn variable_density(
    h: usize,
    w: usize,
    acceleration: f64,
    center_fraction: f64,
    seed: u64,
) -> Result<Array2<bool>> {
    validate(h, w, acceleration, center_fraction)?;
    let mut cols = center_columns(w, center_fraction);
    let budget = ((w as f64 / acceleration).round_ties_even() as usize).min(w);
    let have = cols.iter().filter(|&&c| c).count();
    if budget > have {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let centre = (w / 2) as f64;
        let half = (w as f64 / 2.0).max(1.0);
        // Keys ln(u)/wᵢ order the same as uᵢ^(1/wᵢ) and do not underflow.
        let mut keys: Vec<(f64, usize)> = (0..w)
            .filter(|&c| !cols[c])
            .map(|c| {
                let d = (c as f64 - centre) / half;
                let weight = (-d * d / (2.0 * VD_SIGMA * VD_SIGMA)).exp();
                let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
                (u.ln() / weight, c)
            })
            .collect();
        keys.sort_by(|a, b| b.0.total_cmp(&a.0));
        for &(_, c) in keys.iter().take(budget - have) {
            cols[c] = true;
        }
    }
    Ok(broadcast(h, &cols))
}

/// Width σ of the Gaussian column density of [`variable_density`], in units of half the width.
pub const VD_SIGMA: f64 = 0.3;

/// The kept column indices of a column mask (true in row 0).
pub fn kept_columns(mask: &Array2<bool>) -> Vec<usize> {
    if mask.nrows() == 0 {
        return Vec::new();
    }
    mask.row(0)
        .iter()
        .enumerate()
        .filter_map(|(c, &m)| m.then_some(c))
        .collect()
}

/// num_low = round(W · center_fraction) (Python `round`: ties to even).
fn num_low_frequencies(w: usize, center_fraction: f64) -> usize {
    ((w as f64 * center_fraction).round_ties_even() as usize).min(w)
}

/// Centre block of `num_low` columns starting at `(W − num_low + 1) / 2`.
fn center_columns(w: usize, center_fraction: f64) -> Vec<bool> {
    let num_low = num_low_frequencies(w, center_fraction);
    let pad = (w - num_low).div_ceil(2);
    (0..w).map(|c| c >= pad && c < pad + num_low).collect()
}

/// adj = R (num_low − W) / (num_low R − W), or None when the centre alone meets the budget
/// (num_low R ≥ W, where fastMRI's spacing is infinite or negative).
fn adjusted_acceleration(w: usize, acceleration: f64, center_fraction: f64) -> Option<f64> {
    let num_low = num_low_frequencies(w, center_fraction) as f64;
    let w = w as f64;
    let denom = num_low * acceleration - w;
    (denom < 0.0).then(|| acceleration * (num_low - w) / denom)
}

fn broadcast(h: usize, cols: &[bool]) -> Array2<bool> {
    Array2::from_shape_fn((h, cols.len()), |(_, c)| cols[c])
}

fn validate(h: usize, w: usize, acceleration: f64, center_fraction: f64) -> Result<()> {
    if h == 0 || w == 0 {
        return Err(OpError::Param {
            name: "shape",
            reason: format!("mask shape must be positive, got [{h}, {w}]"),
        });
    }
    if !(acceleration.is_finite() && acceleration >= 1.0) {
        return Err(OpError::Param {
            name: "acceleration",
            reason: format!("must be a finite number ≥ 1, got {acceleration}"),
        });
    }
    if !(0.0..=1.0).contains(&center_fraction) {
        return Err(OpError::Param {
            name: "center_fraction",
            reason: format!("must lie in [0, 1], got {center_fraction}"),
        });
    }
    Ok(())
}
