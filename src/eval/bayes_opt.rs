//! A compact, seeded Gaussian-process Bayesian optimiser (maximisation) over a box with linear
//! or log-scaled coordinates, used by `medsgm tune`.
//!
//! - Initial design: a Latin hypercube of `n_init` points (seeded).
//! - Surrogate: zero-mean GP on the unit cube with an isotropic Matérn-5/2 kernel
//!   k(r) = (1 + √5 r/ℓ + 5r²/(3ℓ²)) e^{−√5 r/ℓ}, unit signal variance on standardised values;
//!   the length scale ℓ and the noise variance are chosen from a small grid by the log marginal
//!   likelihood −½ ỹᵀK⁻¹ỹ − Σ log Lᵢᵢ (Rasmussen & Williams 2006, Alg. 2.1).
//! - Acquisition: expected improvement EI(x) = (μ − f* − ξ)Φ(z) + σφ(z),
//!   z = (μ − f* − ξ)/σ, ξ = 0.01 (standardised units), maximised over seeded random
//!   candidates plus Gaussian perturbations of the incumbent.
//!
//! Every proposal depends only on the seed and the evaluated points, so a run resumed from its
//! log proposes exactly what the uninterrupted run would have.

use anyhow::{ensure, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

/// One coordinate of the search box.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dim {
    /// Parameter name.
    pub name: String,
    /// Lower bound.
    pub lo: f64,
    /// Upper bound.
    pub hi: f64,
    /// Search in log(value) (needs lo > 0).
    pub log: bool,
}

impl Dim {
    /// A log-scaled coordinate on [lo, hi].
    pub fn log(name: &str, lo: f64, hi: f64) -> Self {
        Self {
            name: name.into(),
            lo,
            hi,
            log: true,
        }
    }

    /// A linearly scaled coordinate on [lo, hi].
    pub fn linear(name: &str, lo: f64, hi: f64) -> Self {
        Self {
            log: false,
            ..Self::log(name, lo, hi)
        }
    }

    fn to_unit(&self, v: f64) -> f64 {
        if self.log {
            (v.ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }

    fn unit_to_value(&self, u: f64) -> f64 {
        let u = u.clamp(0.0, 1.0);
        if self.log {
            (self.lo.ln() + u * (self.hi.ln() - self.lo.ln())).exp()
        } else {
            self.lo + u * (self.hi - self.lo)
        }
    }
}

/// One evaluated point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Parameter values (in the order of the dimensions).
    pub params: Vec<f64>,
    /// Objective value (maximised).
    pub value: f64,
    /// Free-form extra information (e.g. the other metric).
    #[serde(default)]
    pub info: serde_json::Value,
}

/// The optimiser state: its box, seed and every evaluated point (the resumable log).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptLog {
    /// The search box.
    pub dims: Vec<Dim>,
    /// Proposal seed.
    pub seed: u64,
    /// Size of the initial Latin-hypercube design.
    pub n_init: usize,
    /// Evaluated points in order.
    pub evaluations: Vec<Evaluation>,
}

impl OptLog {
    /// An empty log.
    pub fn new(dims: Vec<Dim>, seed: u64, n_init: usize) -> Result<Self> {
        ensure!(!dims.is_empty(), "the search box needs a dimension");
        for d in &dims {
            ensure!(
                d.lo < d.hi && d.lo.is_finite() && d.hi.is_finite() && (!d.log || d.lo > 0.0),
                "invalid range for {}: [{}, {}]",
                d.name,
                d.lo,
                d.hi
            );
        }
        Ok(Self {
            dims,
            seed,
            n_init: n_init.max(1),
            evaluations: Vec::new(),
        })
    }

    /// The best evaluation so far.
    pub fn best(&self) -> Option<&Evaluation> {
        self.evaluations
            .iter()
            .filter(|e| e.value.is_finite())
            .max_by(|a, b| a.value.total_cmp(&b.value))
    }

    /// The next point to evaluate.
    pub fn suggest(&self) -> Vec<f64> {
        let k = self.evaluations.len();
        let d = self.dims.len();
        let unit = if k < self.n_init {
            latin_hypercube(self.n_init, d, self.seed)[k].clone()
        } else {
            let xs: Vec<Vec<f64>> = self
                .evaluations
                .iter()
                .map(|e| {
                    self.dims
                        .iter()
                        .zip(&e.params)
                        .map(|(d, &v)| d.to_unit(v))
                        .collect()
                })
                .collect();
            let ys: Vec<f64> = self.evaluations.iter().map(|e| e.value).collect();
            let mut rng = ChaCha8Rng::seed_from_u64(
                self.seed ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            );
            propose(&xs, &ys, &mut rng)
        };
        self.dims
            .iter()
            .zip(unit)
            .map(|(d, u)| d.unit_to_value(u))
            .collect()
    }

    /// Evaluates `f` at suggested points until the log holds `budget` evaluations, calling
    /// `saved` after each (e.g. to write the log). Returns the best evaluation.
    pub fn maximize<F, S>(&mut self, budget: usize, mut f: F, mut saved: S) -> Result<Evaluation>
    where
        F: FnMut(&[f64]) -> Result<(f64, serde_json::Value)>,
        S: FnMut(&OptLog) -> Result<()>,
    {
        while self.evaluations.len() < budget {
            let params = self.suggest();
            let (value, info) = f(&params)?;
            self.evaluations.push(Evaluation {
                params,
                value,
                info,
            });
            saved(self)?;
        }
        self.best()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no finite objective value among the evaluations"))
    }
}

/// `n` points of a seeded Latin hypercube in [0, 1]^d (one point per stratum and axis).
fn latin_hypercube(n: usize, d: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut pts = vec![vec![0.0; d]; n];
    for j in 0..d {
        let mut perm: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            perm.swap(i, rng.random_range(0..=i));
        }
        for (i, p) in pts.iter_mut().enumerate() {
            p[j] = (perm[i] as f64 + rng.random::<f64>()) / n as f64;
        }
    }
    pts
}

fn matern52(a: &[f64], b: &[f64], ell: f64) -> f64 {
    let r = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt()
        / ell;
    let s = 5f64.sqrt() * r;
    (1.0 + s + s * s / 3.0) * (-s).exp()
}

/// Lower Cholesky factor of a symmetric positive-definite matrix (None if not SPD).
fn cholesky(a: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = a.len();
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = a[i][j] - (0..j).map(|k| l[i][k] * l[j][k]).sum::<f64>();
            if i == j {
                if s <= 0.0 {
                    return None;
                }
                l[i][i] = s.sqrt();
            } else {
                l[i][j] = s / l[j][j];
            }
        }
    }
    Some(l)
}

/// Solves L z = b (forward substitution).
fn solve_lower(l: &[Vec<f64>], b: &[f64]) -> Vec<f64> {
    let mut z = vec![0.0; b.len()];
    for i in 0..b.len() {
        z[i] = (b[i] - (0..i).map(|k| l[i][k] * z[k]).sum::<f64>()) / l[i][i];
    }
    z
}

/// Solves Lᵀ x = z (back substitution).
fn solve_upper(l: &[Vec<f64>], z: &[f64]) -> Vec<f64> {
    let n = z.len();
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        x[i] = (z[i] - (i + 1..n).map(|k| l[k][i] * x[k]).sum::<f64>()) / l[i][i];
    }
    x
}

/// A GP posterior conditioned on standardised data.
pub struct Gp {
    xs: Vec<Vec<f64>>,
    l: Vec<Vec<f64>>,
    alpha: Vec<f64>,
    ell: f64,
}

impl Gp {
    /// Fits ℓ ∈ {0.05, 0.1, 0.2, 0.35, 0.6, 1} and noise ∈ {1e-6, 1e-4, 1e-2} by marginal
    /// likelihood to (xs, ys) with ys already standardised.
    pub fn fit(xs: &[Vec<f64>], ys: &[f64]) -> Option<Gp> {
        let mut best: Option<(f64, Gp)> = None;
        for ell in [0.05, 0.1, 0.2, 0.35, 0.6, 1.0] {
            for noise in [1e-6, 1e-4, 1e-2] {
                let k: Vec<Vec<f64>> = xs
                    .iter()
                    .enumerate()
                    .map(|(i, a)| {
                        xs.iter()
                            .enumerate()
                            .map(|(j, b)| matern52(a, b, ell) + if i == j { noise } else { 0.0 })
                            .collect()
                    })
                    .collect();
                let Some(l) = cholesky(&k) else { continue };
                let z = solve_lower(&l, ys);
                let alpha = solve_upper(&l, &z);
                let lml = -0.5 * z.iter().map(|v| v * v).sum::<f64>()
                    - (0..l.len()).map(|i| l[i][i].ln()).sum::<f64>();
                if best.as_ref().is_none_or(|(b, _)| lml > *b) {
                    let gp = Gp {
                        xs: xs.to_vec(),
                        l,
                        alpha,
                        ell,
                    };
                    best = Some((lml, gp));
                }
            }
        }
        best.map(|(_, gp)| gp)
    }

    /// Posterior mean and standard deviation at `x`.
    pub fn predict(&self, x: &[f64]) -> (f64, f64) {
        let ks: Vec<f64> = self.xs.iter().map(|a| matern52(a, x, self.ell)).collect();
        let mean = ks.iter().zip(&self.alpha).map(|(k, a)| k * a).sum();
        let v = solve_lower(&self.l, &ks);
        let var = (1.0 - v.iter().map(|t| t * t).sum::<f64>()).max(1e-12);
        (mean, var.sqrt())
    }
}

/// Standard normal CDF via erf (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7).
fn normal_cdf(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-x * x).exp();
    if z >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

/// Expected improvement over `best` of a Gaussian N(mean, sd²) with margin ξ.
pub fn expected_improvement(mean: f64, sd: f64, best: f64, xi: f64) -> f64 {
    let d = mean - best - xi;
    let z = d / sd;
    let pdf = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
    d * normal_cdf(z) + sd * pdf
}

/// The EI maximiser among random and local candidates (unit cube).
fn propose(xs: &[Vec<f64>], ys: &[f64], rng: &mut ChaCha8Rng) -> Vec<f64> {
    let d = xs[0].len();
    let finite: Vec<f64> = ys.iter().copied().filter(|v| v.is_finite()).collect();
    let mean = finite.iter().sum::<f64>() / finite.len().max(1) as f64;
    let sd = (finite.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / finite.len().max(1) as f64)
        .sqrt()
        .max(1e-12);
    let lowest = finite.iter().copied().fold(f64::INFINITY, f64::min);
    // Failed (non-finite) evaluations count as the worst value seen.
    let std_ys: Vec<f64> = ys
        .iter()
        .map(|&v| (if v.is_finite() { v } else { lowest } - mean) / sd)
        .collect();
    let random_point =
        |rng: &mut ChaCha8Rng| (0..d).map(|_| rng.random::<f64>()).collect::<Vec<_>>();
    let Some(gp) = Gp::fit(xs, &std_ys) else {
        return random_point(rng);
    };
    let (ib, best) = std_ys
        .iter()
        .copied()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((0, 0.0));
    let local = Normal::new(0.0, 0.05).expect("valid normal");
    let mut cands: Vec<Vec<f64>> = (0..2000).map(|_| random_point(rng)).collect();
    cands.extend((0..500).map(|_| {
        xs[ib]
            .iter()
            .map(|&c| (c + local.sample(rng)).clamp(0.0, 1.0))
            .collect()
    }));
    cands
        .into_iter()
        .map(|c| {
            let (m, s) = gp.predict(&c);
            (expected_improvement(m, s, best, 0.01), c)
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
        .unwrap_or_else(|| random_point(rng))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_cdf_matches_tabulated_values() {
        // Φ(0) = 0.5, Φ(1) = 0.841344746, Φ(−1.96) = 0.024997895.
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.0) - 0.841_344_746).abs() < 2e-7);
        assert!((normal_cdf(-1.96) - 0.024_997_895).abs() < 2e-7);
    }

    #[test]
    fn gp_interpolates_and_is_uncertain_away_from_data() {
        let xs = vec![
            vec![0.1, 0.2],
            vec![0.5, 0.9],
            vec![0.8, 0.3],
            vec![0.3, 0.6],
        ];
        let ys = vec![1.0, -0.5, 0.3, -0.8];
        let gp = Gp::fit(&xs, &ys).unwrap();
        for (x, y) in xs.iter().zip(&ys) {
            let (m, s) = gp.predict(x);
            assert!((m - y).abs() < 0.15, "{m} vs {y}");
            assert!(s < 0.2);
        }
        let (_, s_far) = gp.predict(&[1.0, 0.0]);
        assert!(s_far > 0.2);
    }

    #[test]
    fn latin_hypercube_hits_every_stratum() {
        let pts = latin_hypercube(7, 3, 5);
        for j in 0..3 {
            let mut strata: Vec<usize> = pts.iter().map(|p| (p[j] * 7.0) as usize).collect();
            strata.sort();
            assert_eq!(strata, (0..7).collect::<Vec<_>>());
        }
    }
}
