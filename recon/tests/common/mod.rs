//! Shared statistics and fixtures of the sampler tests.
#![allow(dead_code)]

use candle_core::{DType, Tensor};
use medsgm_recon::learned_schedule::{GammaWeights, LearnedSchedule};
use medsgm_recon::{GaussianScore, GmmScore, Sde, SdeConfig};
use std::sync::Arc;

/// The 2-D Gaussian data N(μ, diag(s₀²)) used by the sampler tests.
pub const MEAN: [f64; 2] = [1.0, -0.5];
pub const STD: [f64; 2] = [0.5, 1.5];

/// A learned VP schedule far from linear in t (8 features with large output weights) over
/// the SNR range of the default VP at ε = 1e-3.
pub fn learned() -> SdeConfig {
    let (gamma_min, gamma_max) = LearnedSchedule::vp_range(0.1, 20.0, 1e-3);
    let mut w = GammaWeights::initial(8);
    for (j, v) in w.w3.iter_mut().enumerate() {
        *v = 2.0 + j as f64;
    }
    SdeConfig::Learned(LearnedSchedule {
        gamma_min,
        gamma_max,
        features: 8,
        weights: Some(w),
    })
}

pub fn sde(cfg: SdeConfig) -> Arc<dyn Sde> {
    Arc::from(cfg.build().unwrap())
}

pub fn gaussian(cfg: SdeConfig) -> (Arc<dyn Sde>, GaussianScore) {
    let sde = sde(cfg);
    let g = GaussianScore::new(sde.clone(), MEAN.to_vec(), STD.to_vec()).unwrap();
    (sde, g)
}

/// 1-D two-component mixture: weights (0.3, 0.7), means (−2, 2), stds 0.3.
pub fn gmm(cfg: SdeConfig) -> (Arc<dyn Sde>, GmmScore) {
    let sde = sde(cfg);
    let g = GmmScore::new(
        sde.clone(),
        vec![0.3, 0.7],
        vec![vec![-2.0], vec![2.0]],
        vec![vec![0.3], vec![0.3]],
    )
    .unwrap();
    (sde, g)
}

/// Sample mean and covariance of x: [B, D].
pub fn moments(x: &Tensor) -> (Vec<f64>, Vec<Vec<f64>>) {
    let b = x.dim(0).unwrap();
    let rows = x
        .reshape((b, ()))
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec2::<f64>()
        .unwrap();
    let d = rows[0].len();
    let mean: Vec<f64> = (0..d)
        .map(|j| rows.iter().map(|r| r[j]).sum::<f64>() / b as f64)
        .collect();
    let cov = (0..d)
        .map(|i| {
            (0..d)
                .map(|j| {
                    rows.iter()
                        .map(|r| (r[i] - mean[i]) * (r[j] - mean[j]))
                        .sum::<f64>()
                        / (b - 1) as f64
                })
                .collect()
        })
        .collect();
    (mean, cov)
}

/// Samples match N(μ, diag(s₀²)): means within 5 standard errors + `bias`·s₀, variances within
/// relative `var_tol`, correlations below 0.05.
pub fn assert_matches_gaussian(
    x: &Tensor,
    mean: &[f64],
    std: &[f64],
    var_tol: f64,
    bias: f64,
    label: &str,
) {
    let b = x.dim(0).unwrap() as f64;
    let (m, c) = moments(x);
    for j in 0..mean.len() {
        let se = std[j] / b.sqrt();
        assert!(
            (m[j] - mean[j]).abs() < 5.0 * se + bias * std[j],
            "{label}: mean[{j}] = {} vs {}",
            m[j],
            mean[j]
        );
        let rel = c[j][j] / (std[j] * std[j]) - 1.0;
        assert!(
            rel.abs() < var_tol,
            "{label}: var[{j}] = {} vs {} (rel {rel:.4})",
            c[j][j],
            std[j] * std[j]
        );
        for k in 0..j {
            let corr = c[j][k] / (c[j][j] * c[k][k]).sqrt();
            assert!(corr.abs() < 0.05, "{label}: corr[{j}{k}] = {corr}");
        }
    }
}

/// Mixture statistics of 1-D samples split at 0: (fraction below 0, mean below, mean above,
/// std below, std above).
pub fn mixture_stats(x: &Tensor) -> (f64, f64, f64, f64, f64) {
    let v = x
        .flatten_all()
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    let (neg, pos): (Vec<f64>, Vec<f64>) = v.iter().partition(|x| **x < 0.0);
    let ms = |s: &[f64]| {
        let m = s.iter().sum::<f64>() / s.len() as f64;
        let sd = (s.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (s.len() - 1) as f64).sqrt();
        (m, sd)
    };
    let ((mn, sn), (mp, sp)) = (ms(&neg), ms(&pos));
    (neg.len() as f64 / v.len() as f64, mn, mp, sn, sp)
}

/// Mixture samples match weights (0.3, 0.7), means ±2, stds 0.3.
pub fn assert_matches_gmm(x: &Tensor, label: &str) {
    let n = x.dim(0).unwrap() as f64;
    let (w, mn, mp, sn, sp) = mixture_stats(x);
    let se = (0.3f64 * 0.7 / n).sqrt();
    assert!((w - 0.3).abs() < 5.0 * se + 0.01, "{label}: weight {w}");
    assert!(
        (mn + 2.0).abs() < 0.05 && (mp - 2.0).abs() < 0.05,
        "{label}: means {mn}, {mp}"
    );
    assert!(
        (sn / 0.3 - 1.0).abs() < 0.1 && (sp / 0.3 - 1.0).abs() < 0.1,
        "{label}: stds {sn}, {sp}"
    );
}
