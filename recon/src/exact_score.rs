//! Exact scores of Gaussian and Gaussian-mixture data perturbed by any linear SDE, for tests
//! and examples. Data x₀ ~ Σ_k π_k N(μ_k, diag(s_k²)) (per-sample dimension D, flattened);
//! under p_0t = N(m(t) x₀, s(t)² I) the marginal is Σ_k π_k N(m μ_k, diag(m² s_k² + s²)) and
//! ∇ log p_t(x) = Σ_k r_k(x) · (−(x − m μ_k)/(m² s_k² + s²)) with responsibilities r_k.

use crate::batch;
use crate::error::{ensure, Result};
use crate::noise::Noise;
use crate::score::ScoreModel;
use crate::sde::Sde;
use candle_core::{DType, Device, Tensor, D};
use rand::Rng;
use std::f64::consts::PI;
use std::sync::Arc;

/// Exact score of a diagonal-covariance Gaussian mixture perturbed by `sde`.
#[derive(Debug, Clone)]
pub struct GmmScore {
    sde: Arc<dyn Sde>,
    weights: Vec<f64>,
    means: Vec<Vec<f64>>,
    stds: Vec<Vec<f64>>,
}

impl GmmScore {
    /// Mixture with weights π_k (normalised here), means μ_k and per-coordinate stds s_k
    /// (all of the same length D).
    pub fn new(
        sde: Arc<dyn Sde>,
        weights: Vec<f64>,
        means: Vec<Vec<f64>>,
        stds: Vec<Vec<f64>>,
    ) -> Result<Self> {
        let k = weights.len();
        ensure(
            k > 0 && means.len() == k && stds.len() == k,
            "weights/means/stds",
            || {
                format!(
                    "need K > 0 components with K weights, means and stds; got {k}, {}, {}",
                    means.len(),
                    stds.len()
                )
            },
        )?;
        let d = means[0].len();
        ensure(
            d > 0 && means.iter().chain(&stds).all(|v| v.len() == d),
            "means/stds",
            || "every mean and std vector needs the same non-zero length".into(),
        )?;
        ensure(
            weights.iter().all(|w| *w > 0.0 && w.is_finite())
                && stds.iter().flatten().all(|s| *s >= 0.0 && s.is_finite()),
            "weights/stds",
            || "weights must be positive and stds non-negative".into(),
        )?;
        let total: f64 = weights.iter().sum();
        Ok(Self {
            sde,
            weights: weights.iter().map(|w| w / total).collect(),
            means,
            stds,
        })
    }

    /// Per-sample dimension D.
    pub fn dim(&self) -> usize {
        self.means[0].len()
    }

    /// Normalised mixture weights.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// Component means μ_k.
    pub fn means(&self) -> &[Vec<f64>] {
        &self.means
    }

    /// Component standard deviations s_k.
    pub fn stds(&self) -> &[Vec<f64>] {
        &self.stds
    }

    /// The SDE perturbing the data.
    pub fn sde(&self) -> &Arc<dyn Sde> {
        &self.sde
    }

    /// Component means m(t) μ_k and variances m(t)² s_k² + s(t)² of p_t.
    fn marginal(&self, t: f64) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
        let (m, s) = (self.sde.mean_coef(t), self.sde.std(t));
        let means = self
            .means
            .iter()
            .map(|mu| mu.iter().map(|v| m * v).collect())
            .collect();
        let vars = self
            .stds
            .iter()
            .map(|sd| sd.iter().map(|v| m * m * v * v + s * s).collect())
            .collect();
        (means, vars)
    }

    /// Exact log p_t(x) per sample of x: `[B, ...]` (host f64 computation).
    pub fn log_density(&self, x: &Tensor, t: f64) -> Result<Vec<f64>> {
        let d = self.dim();
        let b = x.dim(0)?;
        let flat = x.reshape((b, d))?.to_dtype(DType::F64)?.to_vec2::<f64>()?;
        let (means, vars) = self.marginal(t);
        Ok(flat
            .iter()
            .map(|xs| {
                let logs: Vec<f64> = (0..self.weights.len())
                    .map(|k| {
                        self.weights[k].ln()
                            + xs.iter()
                                .zip(&means[k])
                                .zip(&vars[k])
                                .map(|((x, mu), v)| {
                                    -0.5 * ((x - mu).powi(2) / v + (2.0 * PI * v).ln())
                                })
                                .sum::<f64>()
                    })
                    .collect();
                let max = logs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                max + logs.iter().map(|l| (l - max).exp()).sum::<f64>().ln()
            })
            .collect())
    }

    /// Draws n data points x₀ (t = 0): `[n, D]`.
    pub fn sample(
        &self,
        n: usize,
        dtype: DType,
        device: &Device,
        noise: &mut Noise,
    ) -> Result<Tensor> {
        let d = self.dim();
        let mut comps = Vec::with_capacity(n);
        for _ in 0..n {
            let u: f64 = noise.rng().random();
            let mut acc = 0.0;
            let k = self
                .weights
                .iter()
                .position(|w| {
                    acc += w;
                    u < acc
                })
                .unwrap_or(self.weights.len() - 1);
            comps.push(k);
        }
        let z = noise
            .randn(&[n, d], DType::F64, &Device::Cpu)?
            .to_vec2::<f64>()?;
        let values: Vec<f64> = comps
            .iter()
            .zip(&z)
            .flat_map(|(&k, zs)| {
                zs.iter()
                    .enumerate()
                    .map(move |(j, z)| self.means[k][j] + self.stds[k][j] * z)
            })
            .collect();
        Ok(Tensor::from_vec(values, (n, d), device)?.to_dtype(dtype)?)
    }
}

impl ScoreModel for GmmScore {
    fn score(&self, x: &Tensor, t: &Tensor) -> candle_core::Result<Tensor> {
        let (b, d, k) = (x.dim(0)?, self.dim(), self.weights.len());
        let ts = batch::times(t)?;
        if ts.len() != b {
            candle_core::bail!("score: {} times for a batch of {b}", ts.len());
        }
        let (dev, dt) = (x.device(), x.dtype());
        let host = |v: Vec<f64>, shape: &[usize]| Tensor::from_vec(v, shape, dev)?.to_dtype(dt);
        let m = host(
            ts.iter().map(|&t| self.sde.mean_coef(t)).collect(),
            &[b, 1, 1],
        )?;
        let s2 = host(
            ts.iter().map(|&t| self.sde.std(t).powi(2)).collect(),
            &[b, 1, 1],
        )?;
        let mu = host(self.means.concat(), &[1, k, d])?;
        let s02 = host(
            self.stds.concat().iter().map(|s| s * s).collect(),
            &[1, k, d],
        )?;
        let log_w = host(self.weights.iter().map(|w| w.ln()).collect(), &[1, k])?;
        // component k of p_t: N(m μ_k, diag(m² s_k² + s²))
        let var = m.sqr()?.broadcast_mul(&s02)?.broadcast_add(&s2)?; // [B, K, D]
        let diff = x
            .reshape((b, 1, d))?
            .broadcast_sub(&m.broadcast_mul(&mu)?)?;
        let scaled = (&diff / &var)?;
        let quad = ((&diff * &scaled)? + var.affine(2.0 * PI, 0.0)?.log()?)?.sum(D::Minus1)?;
        let logits = log_w.broadcast_sub(&(quad * 0.5)?)?; // [B, K]
        let shifted = logits
            .broadcast_sub(&logits.max_keepdim(1)?.detach())?
            .exp()?;
        let resp = shifted.broadcast_div(&shifted.sum_keepdim(1)?)?;
        let score = resp.unsqueeze(2)?.broadcast_mul(&scaled)?.sum(1)?.neg()?;
        score.reshape(x.shape())
    }
}

/// Exact score of Gaussian data N(μ, diag(s₀²)) perturbed by `sde`:
/// ∇ log p_t(x) = −(x − m(t) μ)/(m(t)² s₀² + s(t)²) (the one-component [`GmmScore`]).
#[derive(Debug, Clone)]
pub struct GaussianScore(GmmScore);

impl GaussianScore {
    /// Gaussian data with mean μ and per-coordinate std s₀ (same length D).
    pub fn new(sde: Arc<dyn Sde>, mean: Vec<f64>, std: Vec<f64>) -> Result<Self> {
        Ok(Self(GmmScore::new(sde, vec![1.0], vec![mean], vec![std])?))
    }

    /// Data mean μ.
    pub fn mean(&self) -> &[f64] {
        &self.0.means()[0]
    }

    /// Data per-coordinate std s₀.
    pub fn std(&self) -> &[f64] {
        &self.0.stds()[0]
    }

    /// The underlying one-component mixture.
    pub fn as_gmm(&self) -> &GmmScore {
        &self.0
    }

    /// Exact log p_t(x) per sample.
    pub fn log_density(&self, x: &Tensor, t: f64) -> Result<Vec<f64>> {
        self.0.log_density(x, t)
    }

    /// Draws n data points x₀ ~ N(μ, diag(s₀²)): `[n, D]`.
    pub fn sample(
        &self,
        n: usize,
        dtype: DType,
        device: &Device,
        noise: &mut Noise,
    ) -> Result<Tensor> {
        self.0.sample(n, dtype, device, noise)
    }
}

impl ScoreModel for GaussianScore {
    fn score(&self, x: &Tensor, t: &Tensor) -> candle_core::Result<Tensor> {
        self.0.score(x, t)
    }
}
