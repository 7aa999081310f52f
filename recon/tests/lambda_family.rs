//! The λ-family of generative SDEs (Huang et al. 2021, Eq. 27): λ = 0 is the reverse SDE,
//! λ = 1 the probability-flow ODE, and every λ ≤ 1 keeps the marginals of the data with the
//! exact score.

mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use medsgm_recon::ode_sampler::probability_flow_drift;
use medsgm_recon::predictor::{EulerMaruyama, Predictor, SdeLambda};
use medsgm_recon::{CorrectorKind, NoHook, Noise, PcConfig, PcSampler, PredictorKind, SdeConfig};

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

/// λ = 0 takes the Euler–Maruyama step of the reverse SDE with the same noise; λ = 1 the Euler
/// step of the probability-flow ODE, without noise.
#[test]
fn lambda_endpoints_are_reverse_sde_and_ode() {
    for cfg in [SdeConfig::ve(10.0), SdeConfig::vp()] {
        let (sde, score) = gaussian(cfg.clone());
        let x = Noise::new(1)
            .randn(&[64, 2], DType::F64, &Device::Cpu)
            .unwrap();
        let (t, t_next) = (0.6, 0.55);
        let step = |p: &dyn Predictor| {
            p.step(sde.as_ref(), &score, &x, t, t_next, &mut Noise::new(9))
                .unwrap()
        };
        let (em, em_mean) = step(&EulerMaruyama);
        let (l0, l0_mean) = step(&SdeLambda::new(0.0).unwrap());
        assert!(max_abs_diff(&em, &l0) < 1e-12 && max_abs_diff(&em_mean, &l0_mean) < 1e-12);
        let (l1, l1_mean) = step(&SdeLambda::new(1.0).unwrap());
        let drift = probability_flow_drift(sde.as_ref(), &score, &x, t).unwrap();
        let ode = (&x - drift.affine(t - t_next, 0.0).unwrap()).unwrap();
        assert!(
            max_abs_diff(&l1, &ode) < 1e-12,
            "{cfg:?}: λ = 1 is not the ODE step"
        );
        assert!(
            max_abs_diff(&l1, &l1_mean) == 0.0,
            "{cfg:?}: λ = 1 adds noise"
        );
        // in between, the noise is √(1 − λ) of the reverse SDE's
        let (lh, lh_mean) = step(&SdeLambda::new(0.75).unwrap());
        let noise_em = (&em - &em_mean).unwrap();
        let noise_h = (&lh - &lh_mean).unwrap();
        assert!(max_abs_diff(&noise_em.affine(0.5, 0.0).unwrap(), &noise_h) < 1e-12);
    }
}

/// With the exact score every member of the family samples the data distribution (500 Euler
/// steps: at λ = 1 the step is deterministic Euler on the ODE, first order). σ_max = 50 for VE:
/// the ODE carries the prior's mismatch π ≠ p_T (mean 0 vs μ) down to t = ε scaled by
/// s₀/σ_max, which the SDE members forget.
#[test]
fn lambda_family_preserves_gaussian_marginals() {
    for cfg in [SdeConfig::ve(50.0), SdeConfig::vp(), common::learned()] {
        let (sde, score) = gaussian(cfg.clone());
        for lambda in [-1.0, 0.5, 1.0] {
            let sampler = PcSampler::new(PcConfig {
                predictor: PredictorKind::SdeLambda { lambda },
                corrector: CorrectorKind::None,
                steps: 500,
                corrector_steps: 0,
                seed: 4,
                ..PcConfig::default()
            })
            .unwrap();
            let out = sampler
                .sample(
                    sde.as_ref(),
                    &score,
                    &[5_000, 2],
                    &Device::Cpu,
                    &mut NoHook,
                    &mut |_, _| {},
                )
                .unwrap();
            assert_eq!(out.nfe, 501);
            assert_matches_gaussian(
                &out.samples,
                &MEAN,
                &STD,
                0.08,
                0.02,
                &format!("{cfg:?} λ = {lambda}"),
            );
        }
    }
}
