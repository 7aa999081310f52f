//! The DSM loss is minimised by the true score (thesis Eq. 7.7; method digest §10).

mod common;

use candle_core::{DType, Device, Tensor, Var};
use common::*;
use medsgm_recon::dsm::{dsm_loss_per_sample, perturb};
use medsgm_recon::{dsm_loss, DsmWeighting, GaussianScore, Noise, ScoreModel, SdeConfig};

/// c · (exact score) with a trainable scalar c.
struct Scaled<'a> {
    inner: &'a GaussianScore,
    c: Var,
}

impl ScoreModel for Scaled<'_> {
    fn score(&self, x: &Tensor, t: &Tensor) -> candle_core::Result<Tensor> {
        self.inner.score(x, t)?.broadcast_mul(self.c.as_tensor())
    }
}

fn batch(n: usize, seed: u64, score: &GaussianScore) -> (Tensor, Tensor, Tensor) {
    let mut noise = Noise::new(seed);
    let x0 = score
        .sample(n, DType::F64, &Device::Cpu, &mut noise)
        .unwrap();
    let t = noise
        .uniform(&[n], 1e-5, 1.0, DType::F32, &Device::Cpu)
        .unwrap();
    let z = noise.randn_like(&x0).unwrap();
    (x0, t, z)
}

#[test]
fn true_score_minimises_dsm_loss() {
    for cfg in [SdeConfig::ve(10.0), SdeConfig::vp(), SdeConfig::sub_vp()] {
        let (sde, exact) = gaussian(cfg.clone());
        let (x0, t, z) = batch(20_000, 2, &exact);
        for w in [DsmWeighting::Sigma2, DsmWeighting::Likelihood] {
            let loss = |m: &dyn ScoreModel| {
                dsm_loss(m, sde.as_ref(), &x0, &t, &z, w)
                    .unwrap()
                    .to_scalar::<f64>()
                    .unwrap()
            };
            let best = loss(&exact);
            // perturbed models: wrong data mean, wrong data spread
            let wrong_mean =
                GaussianScore::new(sde.clone(), vec![1.3, -0.5], STD.to_vec()).unwrap();
            let wrong_std = GaussianScore::new(sde.clone(), MEAN.to_vec(), vec![0.6, 1.2]).unwrap();
            for (name, m) in [("mean", &wrong_mean), ("std", &wrong_std)] {
                let l = loss(m);
                assert!(
                    l > best,
                    "{cfg:?} {w:?}: wrong {name} gives {l} ≤ true {best}"
                );
            }
            // gradient in a scale c of the score vanishes at c = 1 (within sampling noise),
            // and is clearly non-zero at c = 0.8 and 1.2
            let grad_at = |c: f64| {
                let model = Scaled {
                    inner: &exact,
                    c: Var::new(&[c], &Device::Cpu).unwrap(),
                };
                let l = dsm_loss(&model, sde.as_ref(), &x0, &t, &z, w).unwrap();
                let g = l.backward().unwrap();
                g.get(model.c.as_tensor())
                    .unwrap()
                    .to_vec1::<f64>()
                    .unwrap()[0]
            };
            let (g08, g1, g12) = (grad_at(0.8), grad_at(1.0), grad_at(1.2));
            assert!(
                g08 < 0.0 && g12 > 0.0,
                "{cfg:?} {w:?}: gradients {g08}, {g12}"
            );
            assert!(
                g1.abs() < 0.05 * g12.abs().min(g08.abs()),
                "{cfg:?} {w:?}: gradient at c = 1 is {g1}"
            );
        }
    }
}

/// For Gaussian data and λ = s², E[½‖s s* + z‖²] at fixed t is ½ Σ_d m²s₀²/(m²s₀² + s²).
#[test]
fn dsm_loss_at_true_score_equals_analytic_minimum() {
    let (sde, exact) = gaussian(SdeConfig::vp());
    let n = 20_000;
    let (x0, _, z) = batch(n, 3, &exact);
    for &t in &[0.05, 0.5] {
        let tt = Tensor::full(t as f32, n, &Device::Cpu).unwrap();
        let l = dsm_loss(&exact, sde.as_ref(), &x0, &tt, &z, DsmWeighting::Sigma2)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        let t32 = t as f32 as f64;
        let (m, s) = (sde.mean_coef(t32), sde.std(t32));
        let want: f64 = STD
            .iter()
            .map(|s0| 0.5 * m * m * s0 * s0 / (m * m * s0 * s0 + s * s))
            .sum();
        assert!((l - want).abs() < 0.03 * want, "t={t}: {l} vs {want}");
    }
}

#[test]
fn likelihood_weighting_scales_by_g2_over_s2() {
    let (sde, exact) = gaussian(SdeConfig::vp());
    let (x0, t, z) = batch(8, 4, &exact);
    let a = dsm_loss_per_sample(&exact, sde.as_ref(), &x0, &t, &z, DsmWeighting::Sigma2)
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    let b = dsm_loss_per_sample(&exact, sde.as_ref(), &x0, &t, &z, DsmWeighting::Likelihood)
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    let ts = t.to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap();
    for i in 0..8 {
        let beta = 0.1 + ts[i] * 19.9;
        assert!((b[i] - a[i] * beta / sde.std(ts[i]).powi(2)).abs() < 1e-9 * b[i].abs().max(1.0));
    }
    // x_t = m x₀ + s z
    let xt = perturb(sde.as_ref(), &x0, &t, &z)
        .unwrap()
        .to_vec2::<f64>()
        .unwrap();
    let (x0v, zv) = (x0.to_vec2::<f64>().unwrap(), z.to_vec2::<f64>().unwrap());
    for i in 0..8 {
        for j in 0..2 {
            let want = sde.mean_coef(ts[i]) * x0v[i][j] + sde.std(ts[i]) * zv[i][j];
            assert!((xt[i][j] - want).abs() < 1e-12);
        }
    }
}
