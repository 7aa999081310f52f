//! Bayes' rule for scores (ScoreVAE decoder): with the exact data score and the exact latent
//! posterior of an identity encoder with noise τ, sampling the conditional score draws
//! p(x₀ | z) — the encoded point comes back as τ → 0.

mod common;

use candle_core::{Device, Tensor};
use common::*;
use medsgm_recon::conditional::{ConditionalScore, GaussianPosterior};
use medsgm_recon::{NoHook, PcConfig, PcSampler, SdeConfig};

#[test]
fn conditional_score_decodes_the_code() {
    let z = [0.2, 0.9];
    for (cfg, tau) in [(SdeConfig::vp(), 0.3), (SdeConfig::ve(20.0), 0.05)] {
        let (sde, prior) = gaussian(cfg.clone());
        let posterior =
            GaussianPosterior::new(sde.clone(), MEAN.to_vec(), STD.to_vec(), tau).unwrap();
        let code = Tensor::from_vec(z.to_vec(), (1, 2), &Device::Cpu).unwrap();
        let score = ConditionalScore::new(&prior, &posterior, code).unwrap();
        let out = PcSampler::new(PcConfig {
            steps: 500,
            seed: 5,
            ..PcConfig::default()
        })
        .unwrap()
        .sample(
            sde.as_ref(),
            &score,
            &[3_000, 2],
            &Device::Cpu,
            &mut NoHook,
            &mut |_, _| {},
        )
        .unwrap();
        // p(x₀ | z) = N((s₀² z + τ² μ)/(s₀² + τ²), s₀² τ²/(s₀² + τ²))
        let (mean, std): (Vec<f64>, Vec<f64>) = (0..2)
            .map(|i| {
                let (s2, t2) = (STD[i] * STD[i], tau * tau);
                (
                    (s2 * z[i] + t2 * MEAN[i]) / (s2 + t2),
                    (s2 * t2 / (s2 + t2)).sqrt(),
                )
            })
            .unzip();
        assert_matches_gaussian(
            &out.samples,
            &mean,
            &std,
            0.1,
            0.05,
            &format!("{cfg:?} τ = {tau}"),
        );
    }
}
