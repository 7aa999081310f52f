//! Each predictor step equals the thesis formula written out with independently computed
//! coefficients (VE σ's, VP β_i), using the same noise draw.

mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use medsgm_recon::predictor::{score_at, PredictorKind};
use medsgm_recon::{Noise, SdeConfig};

const SMIN: f64 = 0.01;
const SMAX: f64 = 10.0;

fn sigma(t: f64) -> f64 {
    SMIN * (SMAX / SMIN).powf(t)
}

fn big_b(t: f64) -> f64 {
    0.1 * t + 0.5 * t * t * 19.9
}

/// (x_expected, x_mean_expected) from the coefficients a (on x), c (on the score), σ (noise).
fn expected(x: &Tensor, s: &Tensor, z: &Tensor, a: f64, c: f64, sig: f64) -> (Vec<f64>, Vec<f64>) {
    let mean = (x.affine(a, 0.0).unwrap() + s.affine(c, 0.0).unwrap()).unwrap();
    let full = (&mean + z.affine(sig, 0.0).unwrap()).unwrap();
    let flat = |t: Tensor| t.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    (flat(full), flat(mean))
}

#[test]
fn predictor_steps_follow_thesis_formulas() {
    let (t, s) = (0.6, 0.55);
    let dt = t - s;
    for cfg in [SdeConfig::ve(SMAX), SdeConfig::vp()] {
        let (sde, score) = gaussian(cfg.clone());
        let x = Noise::new(1)
            .randn(&[6, 2], DType::F64, &Device::Cpu)
            .unwrap();
        let sc = score_at(&score, &x, t).unwrap();
        let z = Noise::new(2).randn_like(&x).unwrap();
        let is_ve = matches!(cfg, SdeConfig::Ve { .. });
        let beta_i = 1.0 - (-(big_b(t) - big_b(s))).exp();
        let d_sig2 = sigma(t).powi(2) - sigma(s).powi(2);
        for name in ["euler_maruyama", "reverse_diffusion", "ancestral"] {
            let (a, c, sig) = match (name, is_ve) {
                // Alg. 8.1
                ("euler_maruyama", true) => (
                    1.0,
                    2.0 * (SMAX / SMIN).ln() * sigma(t).powi(2) * dt,
                    (2.0 * (SMAX / SMIN).ln()).sqrt() * sigma(t) * dt.sqrt(),
                ),
                ("euler_maruyama", false) => {
                    let beta = 0.1 + t * 19.9;
                    (1.0 + 0.5 * beta * dt, beta * dt, (beta * dt).sqrt())
                }
                // Alg. B.4 / B.5
                ("reverse_diffusion", true) => (1.0, d_sig2, d_sig2.sqrt()),
                ("reverse_diffusion", false) => {
                    (2.0 - (1.0 - beta_i).sqrt(), beta_i, beta_i.sqrt())
                }
                // Eq. B.33 / Eq. 7.4
                ("ancestral", true) => (
                    1.0,
                    d_sig2,
                    (sigma(s).powi(2) * d_sig2 / sigma(t).powi(2)).sqrt(),
                ),
                _ => (
                    1.0 / (1.0 - beta_i).sqrt(),
                    beta_i / (1.0 - beta_i).sqrt(),
                    beta_i.sqrt(),
                ),
            };
            let (want, want_mean) = expected(&x, &sc, &z, a, c, sig);
            let p = name.parse::<PredictorKind>().unwrap().build().unwrap();
            let (got, got_mean) = p
                .step(sde.as_ref(), &score, &x, t, s, &mut Noise::new(2))
                .unwrap();
            let got = got.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let got_mean = got_mean.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            for i in 0..want.len() {
                assert!(
                    (got[i] - want[i]).abs() < 1e-10 * (1.0 + want[i].abs()),
                    "{cfg:?} {name}: {} vs {}",
                    got[i],
                    want[i]
                );
                assert!((got_mean[i] - want_mean[i]).abs() < 1e-10 * (1.0 + want_mean[i].abs()));
            }
        }
    }
}
