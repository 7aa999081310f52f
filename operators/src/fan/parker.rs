//! Redundancy weights of fan-beam views: ½ for a full scan (every line is measured twice) and
//! Parker's weights for a short scan (D. L. Parker, "Optimal short scan convolution
//! reconstruction for fan beam CT", Med. Phys. 9(2), 1982; Kak & Slaney §3.4.3).

use super::geometry::FanGeometry;
use ndarray::Array2;
use std::f64::consts::{FRAC_PI_4, PI, TAU};

/// How a list of source angles covers the circle: the signed angular step Δβ (assuming
/// equispaced angles: (β_last − β_first)/(n−1); 2π for a single view) and the arc n·|Δβ|.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScanArc {
    /// Signed step between consecutive views (negative for a clockwise scan).
    pub step: f64,
    /// Arc swept, n·|Δβ|.
    pub arc: f64,
}

impl ScanArc {
    /// The arc of `g`'s views.
    pub fn of(g: &FanGeometry) -> ScanArc {
        let n = g.angles.len();
        let step = match (g.angles.first(), g.angles.last()) {
            (Some(&a), Some(&b)) if n > 1 => (b as f64 - a as f64) / (n - 1) as f64,
            _ => TAU,
        };
        ScanArc {
            step,
            arc: n as f64 * step.abs(),
        }
    }

    /// Whether the views sweep the whole circle (to half a step).
    pub fn is_full(&self) -> bool {
        self.arc >= TAU - 0.5 * self.step.abs()
    }
}

/// Parker's weight of the ray at fan angle γ in the view at β ∈ [0, π + 2γ_m] from the start of
/// a short scan of half fan angle γ_m ≥ |γ| (convention θ = β + γ of [`super::geometry`]):
///
/// w = sin²(π/4 · β/(γ_m − γ))               for 0 ≤ β ≤ 2γ_m − 2γ,
///   = 1                                      for 2γ_m − 2γ ≤ β ≤ π − 2γ,
///   = sin²(π/4 · (π + 2γ_m − β)/(γ_m + γ))   for π − 2γ ≤ β ≤ π + 2γ_m,
///
/// and 0 outside the scan. The two measurements (β, γ) and (β + π + 2γ, −γ) of one line get
/// weights summing to 1.
pub fn parker_weight(beta: f64, gamma: f64, gamma_m: f64) -> f64 {
    if !(0.0..=PI + 2.0 * gamma_m).contains(&beta) {
        0.0
    } else if beta < 2.0 * (gamma_m - gamma) {
        (FRAC_PI_4 * beta / (gamma_m - gamma)).sin().powi(2)
    } else if beta < PI - 2.0 * gamma {
        1.0
    } else if gamma_m + gamma > 0.0 {
        (FRAC_PI_4 * (PI + 2.0 * gamma_m - beta) / (gamma_m + gamma))
            .sin()
            .powi(2)
    } else {
        // γ = −γ_m: the falling edge shrinks to the last view, whose conjugate (β = 0, γ_m)
        // has weight 1
        0.0
    }
}

/// Parker weights [views, K] of `g`'s views, with β measured from the first view along the
/// scan direction and γ_m the larger of the detector's half fan angle and (arc − π)/2 (so an
/// over-scan shorter than 2π uses all its views); a clockwise scan (decreasing angles) mirrors
/// γ. Scans shorter than π + 2γ_m leave some lines unmeasured: the weights then still apply but
/// the data are incomplete.
pub fn parker_weights(g: &FanGeometry) -> Array2<f32> {
    let scan = ScanArc::of(g);
    let gamma_m = g.half_fan_angle().max((scan.arc - PI) / 2.0);
    let sign = scan.step.signum();
    let first = g.angles.first().copied().unwrap_or(0.0) as f64;
    let gammas: Vec<f64> = (0..g.n_det)
        .map(|k| sign * g.fan_angle(g.det_position(k)))
        .collect();
    Array2::from_shape_fn((g.n_views(), g.n_det), |(v, k)| {
        let beta = sign * (g.angles[v] as f64 - first);
        parker_weight(beta, gammas[k], gamma_m) as f32
    })
}

/// The redundancy weights [views, K] of filtered back-projection: ½ everywhere for a full scan,
/// [`parker_weights`] otherwise.
pub fn redundancy_weights(g: &FanGeometry) -> Array2<f32> {
    if ScanArc::of(g).is_full() {
        Array2::from_elem((g.n_views(), g.n_det), 0.5)
    } else {
        parker_weights(g)
    }
}
