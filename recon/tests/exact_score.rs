//! The exact Gaussian / mixture scores equal the gradient of the exact log-density.

use candle_core::{DType, Device, Tensor};
use medsgm_recon::batch::time_tensor;
use medsgm_recon::{GaussianScore, GmmScore, Noise, ScoreModel, SdeConfig};
use std::sync::Arc;

#[test]
#[allow(clippy::needless_range_loop)]
fn gmm_score_is_gradient_of_log_density() {
    for cfg in [SdeConfig::ve(5.0), SdeConfig::vp(), SdeConfig::sub_vp()] {
        let sde: Arc<dyn medsgm_recon::Sde> = Arc::from(cfg.build().unwrap());
        let gmm = GmmScore::new(
            sde,
            vec![0.3, 0.7],
            vec![vec![-1.0, 0.5], vec![1.5, -0.5]],
            vec![vec![0.3, 0.5], vec![0.4, 0.2]],
        )
        .unwrap();
        let mut noise = Noise::new(1);
        let x = noise.randn(&[16, 2], DType::F64, &Device::Cpu).unwrap();
        for &t in &[0.01, 0.3, 0.9] {
            let s = gmm
                .score(&x, &time_tensor(t, 16, &Device::Cpu).unwrap())
                .unwrap()
                .to_vec2::<f64>()
                .unwrap();
            let h = 1e-5;
            for d in 0..2 {
                let e = Tensor::from_vec(
                    (0..32)
                        .map(|i| if i % 2 == d { h } else { 0.0 })
                        .collect::<Vec<f64>>(),
                    (16, 2),
                    &Device::Cpu,
                )
                .unwrap();
                let lp = gmm.log_density(&(&x + &e).unwrap(), t).unwrap();
                let lm = gmm.log_density(&(&x - &e).unwrap(), t).unwrap();
                for b in 0..16 {
                    let fd = (lp[b] - lm[b]) / (2.0 * h);
                    assert!(
                        (fd - s[b][d]).abs() < 1e-5 * (1.0 + fd.abs()),
                        "{cfg:?} t={t}: fd {fd} vs score {}",
                        s[b][d]
                    );
                }
            }
        }
    }
}

#[test]
fn gaussian_score_closed_form() {
    let sde: Arc<dyn medsgm_recon::Sde> = Arc::from(SdeConfig::vp().build().unwrap());
    let g = GaussianScore::new(sde.clone(), vec![0.5, -1.0, 2.0], vec![0.2, 1.0, 3.0]).unwrap();
    let x = Tensor::from_vec(vec![0.1f32, 0.2, 0.3, -1.0, 0.0, 1.0], (2, 3), &Device::Cpu).unwrap();
    let t = 0.4;
    let s = g
        .score(&x, &time_tensor(t, 2, &Device::Cpu).unwrap())
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let (m, st) = (sde.mean_coef(t), sde.std(t));
    let xs = x.to_vec2::<f32>().unwrap();
    for b in 0..2 {
        for d in 0..3 {
            let v = m * m * g.std()[d].powi(2) + st * st;
            let want = -(xs[b][d] as f64 - m * g.mean()[d]) / v;
            assert!((s[b][d] as f64 - want).abs() < 1e-5 * (1.0 + want.abs()));
        }
    }
}
