//! Predictors, correctors and the PC sampler reproduce Gaussian and mixture targets with their
//! exact scores (method digest §3, §10).

mod common;

use candle_core::{Device, Tensor};
use common::*;
use medsgm_recon::corrector::{langevin_alpha, langevin_step_size, realised_snr, CorrectorKind};
use medsgm_recon::predictor::PredictorKind;
use medsgm_recon::{NoHook, Noise, PcConfig, PcSampler, ScoreModel, Sde, SdeConfig, Stage};

const BATCH: usize = 5_000;

fn run(
    sde: &dyn Sde,
    score: &dyn ScoreModel,
    (predictor, corrector): (&str, &str),
    steps: usize,
    m: usize,
    snr: f64,
    d: usize,
) -> (Tensor, usize) {
    let sampler = PcSampler::new(PcConfig {
        predictor: predictor.parse().unwrap(),
        corrector: corrector.parse().unwrap(),
        steps,
        corrector_steps: m,
        snr,
        seed: 3,
        t_min: None,
        t_start: None,
        denoise: true,
    })
    .unwrap();
    let out = sampler
        .sample(
            sde,
            score,
            &[BATCH, d],
            &Device::Cpu,
            &mut NoHook,
            &mut |_, _| {},
        )
        .unwrap();
    (out.samples, out.nfe)
}

#[test]
fn every_predictor_alone_reproduces_gaussian() {
    for cfg in [
        SdeConfig::ve(10.0),
        SdeConfig::vp(),
        SdeConfig::sub_vp(),
        common::learned(),
    ] {
        let (sde, score) = gaussian(cfg.clone());
        for p in ["euler_maruyama", "reverse_diffusion", "ancestral"] {
            let (x, nfe) = run(sde.as_ref(), &score, (p, "none"), 300, 1, 0.16, 2);
            assert_eq!(nfe, 301);
            assert_matches_gaussian(&x, &MEAN, &STD, 0.08, 0.02, &format!("{cfg:?} {p}"));
        }
    }
}

#[test]
fn langevin_corrector_alone_reproduces_gaussian() {
    // Langevin (r = 0.1, 2 steps per level) for VE and VP; ALD (VE-native: its step 2(rσ_t)²
    // vanishes with σ_t, so it needs σ_max ≫ data scale) with r = 0.5.
    for (cfg, c, r) in [
        (SdeConfig::ve(10.0), "langevin", 0.1),
        (SdeConfig::vp(), "langevin", 0.1),
        (SdeConfig::ve(10.0), "ald", 0.5),
    ] {
        let (sde, score) = gaussian(cfg.clone());
        let (x, nfe) = run(sde.as_ref(), &score, ("none", c), 1000, 2, r, 2);
        assert_eq!(nfe, 2001);
        assert_matches_gaussian(&x, &MEAN, &STD, 0.08, 0.02, &format!("{cfg:?} {c} only"));
    }
}

#[test]
fn pc_sampler_reproduces_gaussian_and_counts_nfe() {
    for cfg in [
        SdeConfig::ve(10.0),
        SdeConfig::vp(),
        SdeConfig::geometric_vp(),
    ] {
        let (sde, score) = gaussian(cfg.clone());
        let (x, nfe) = run(
            sde.as_ref(),
            &score,
            ("reverse_diffusion", "langevin"),
            200,
            1,
            0.1,
            2,
        );
        assert_eq!(nfe, 200 * 2 + 1);
        assert_matches_gaussian(&x, &MEAN, &STD, 0.08, 0.02, &format!("{cfg:?} PC"));
    }
}

#[test]
fn pc_sampler_reproduces_mixture_weights_and_means() {
    for cfg in [SdeConfig::ve(10.0), SdeConfig::vp()] {
        let (sde, score) = gmm(cfg.clone());
        let (x, _) = run(
            sde.as_ref(),
            &score,
            ("reverse_diffusion", "langevin"),
            300,
            1,
            0.1,
            1,
        );
        assert_matches_gmm(&x, &format!("{cfg:?} PC mixture"));
    }
}

#[test]
fn seeds_reproduce_bit_for_bit() {
    let (sde, score) = gaussian(SdeConfig::ve(10.0));
    let (a, _) = run(
        sde.as_ref(),
        &score,
        ("reverse_diffusion", "langevin"),
        20,
        1,
        0.16,
        2,
    );
    let (b, _) = run(
        sde.as_ref(),
        &score,
        ("reverse_diffusion", "langevin"),
        20,
        1,
        0.16,
        2,
    );
    let (va, vb) = (
        a.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        b.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
    );
    assert!(va.iter().zip(&vb).all(|(x, y)| x.to_bits() == y.to_bits()));
    let other = PcSampler::new(PcConfig {
        steps: 20,
        seed: 4,
        ..PcConfig::default()
    })
    .unwrap()
    .sample(
        sde.as_ref(),
        &score,
        &[BATCH, 2],
        &Device::Cpu,
        &mut NoHook,
        &mut |_, _| {},
    )
    .unwrap()
    .samples
    .flatten_all()
    .unwrap()
    .to_vec1::<f32>()
    .unwrap();
    assert!(va.iter().zip(&other).any(|(x, y)| x != y));
}

/// The realised ratio ‖εG‖/‖√(2ε)z‖ of an actual corrector move (read off its (x, x_mean)
/// outputs) equals r for VE and r√α_i for VP.
#[test]
fn langevin_step_realises_requested_snr() {
    for (cfg, r) in [(SdeConfig::ve(10.0), 0.16), (SdeConfig::vp(), 0.27)] {
        let (sde, score) = gaussian(cfg.clone());
        let mut noise = Noise::new(11);
        let x = noise
            .randn(&[512, 2], candle_core::DType::F64, &Device::Cpu)
            .unwrap();
        let (t, t_next) = (0.5, 0.499);
        let corr = CorrectorKind::Langevin.build(r).unwrap();
        let (x1, mean) = corr
            .step(sde.as_ref(), &score, &x, t, t_next, &mut noise)
            .unwrap();
        let drift = (&mean - &x).unwrap();
        let diff = (&x1 - &mean).unwrap();
        let ratio = medsgm_recon::batch::mean_norm(&drift).unwrap()
            / medsgm_recon::batch::mean_norm(&diff).unwrap();
        let alpha = langevin_alpha(sde.as_ref(), t, t_next);
        if matches!(cfg, SdeConfig::Ve { .. }) {
            assert_eq!(alpha, 1.0);
        } else {
            // α_i = 1 − β_i with β_i = 1 − e^{−(B(t) − B(t_next))}
            let b = |t: f64| 0.1 * t + 0.5 * t * t * 19.9;
            assert!((alpha - (-(b(t) - b(t_next))).exp()).abs() < 1e-12);
        }
        assert!(
            (ratio - r * alpha.sqrt()).abs() < 1e-9,
            "{cfg:?}: realised {ratio} vs {}",
            r * alpha.sqrt()
        );
        // and the public helpers agree
        let g = medsgm_recon::predictor::score_at(&score, &x, t).unwrap();
        let z = noise.randn_like(&x).unwrap();
        let eps = langevin_step_size(&g, &z, r, 1.0).unwrap();
        assert!((realised_snr(&g, &z, eps).unwrap() - r).abs() < 1e-12);
    }
}

/// Tweedie: x + σ²s(x) (VE) and (x + s² s(x))/m (VP) equal the Gaussian posterior mean
/// E[x₀ | x_t] = μ + s₀² m/(m² s₀² + s²) (x − m μ).
#[test]
fn tweedie_step_is_posterior_mean() {
    for cfg in [SdeConfig::ve(10.0), SdeConfig::vp()] {
        let (sde, score) = gaussian(cfg.clone());
        let mut noise = Noise::new(5);
        let x = noise
            .randn(&[64, 2], candle_core::DType::F64, &Device::Cpu)
            .unwrap();
        for &t in &[0.015625, 0.25, 0.75] {
            let den = medsgm_recon::denoise::tweedie_denoise(sde.as_ref(), &score, &x, t)
                .unwrap()
                .to_vec2::<f64>()
                .unwrap();
            let (m, s) = (sde.mean_coef(t), sde.std(t));
            for (row, xs) in den.iter().zip(x.to_vec2::<f64>().unwrap()) {
                for j in 0..2 {
                    let s0 = STD[j] * STD[j];
                    let want = MEAN[j] + s0 * m / (m * m * s0 + s * s) * (xs[j] - m * MEAN[j]);
                    assert!((row[j] - want).abs() < 1e-9 * (1.0 + want.abs()));
                }
            }
        }
    }
}

/// Hooks see every corrector, predictor and denoise stage in order and can change x.
#[test]
fn step_hook_is_called_before_every_step() {
    let (sde, score) = gaussian(SdeConfig::ve(10.0));
    let sampler = PcSampler::new(PcConfig {
        steps: 5,
        corrector_steps: 2,
        ..PcConfig::default()
    })
    .unwrap();
    let mut stages = Vec::new();
    let mut hook = |stage: Stage, x: &Tensor, _t: f64| -> medsgm_recon::Result<Tensor> {
        stages.push(stage);
        Ok(x.clone())
    };
    let mut progress = Vec::new();
    sampler
        .sample(
            sde.as_ref(),
            &score,
            &[8, 2],
            &Device::Cpu,
            &mut hook,
            &mut |s, n| progress.push((s, n)),
        )
        .unwrap();
    let step = [Stage::Corrector, Stage::Corrector, Stage::Predictor];
    let want: Vec<Stage> = step
        .iter()
        .cycle()
        .take(15)
        .cloned()
        .chain([Stage::Denoise])
        .collect();
    assert_eq!(stages, want);
    assert_eq!(progress, (1..=5).map(|s| (s, 5)).collect::<Vec<_>>());
    assert!("heun".parse::<PredictorKind>().is_err());
    assert!("langevin"
        .parse::<CorrectorKind>()
        .unwrap()
        .build(0.0)
        .is_err());
    assert!(PredictorKind::SdeLambda { lambda: 1.5 }.build().is_err());
}

/// What a hook returns is what the sampler continues with.
#[test]
fn step_hook_output_replaces_x() {
    let (sde, score) = gaussian(SdeConfig::vp());
    let cfg = PcConfig {
        steps: 10,
        denoise: false,
        ..PcConfig::default()
    };
    let sampler = PcSampler::new(cfg).unwrap();
    let mut hook = |stage: Stage, x: &Tensor, _t: f64| -> medsgm_recon::Result<Tensor> {
        Ok(if stage == Stage::Denoise {
            x.affine(0.0, 7.0)?
        } else {
            x.clone()
        })
    };
    let out = sampler
        .sample(
            sde.as_ref(),
            &score,
            &[4, 2],
            &Device::Cpu,
            &mut hook,
            &mut |_, _| {},
        )
        .unwrap();
    let v = out.samples.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!(v.iter().all(|x| *x == 7.0));
    assert_eq!(out.nfe, 10 * 2);
}
