//! The LSGM's bound on −log p(x) (Vahdat et al. 2021, Eq. 6–8; method digest §7):
//! NELBO(x) = E_q[−log p_ψ(x|z₀)] − H(q_φ(z₀|x)) + CE(q_φ(z₀|x) ‖ p_θ(z₀)), the cross entropy
//! to the score prior estimated by denoising score matching with likelihood weighting
//! (Theorem 1, importance-sampled t); or, replacing the cross entropy by −log p_θ(z₀) from the
//! prior's probability-flow ODE on one posterior draw (LSGM §7.7). Both are estimates of an
//! upper bound on the image's negative log-likelihood, in nats of the image in [0, 1] units.

use super::config::LsgmConfig;
use super::prior::LatentPrior;
use super::vae::Vae;
use candle_core::{DType, Tensor};
use medsgm_recon::likelihood::{log_likelihood, LikelihoodConfig};
use medsgm_recon::lsgm::{cross_entropy, LatentSchedule};
use medsgm_recon::Noise;
use std::f64::consts::PI;

/// NELBO terms per image in nats (means over images and draws).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Nelbo {
    /// E_q[−log p_ψ(x|z₀)].
    pub reconstruction: f64,
    /// H(q_φ(z₀|x)).
    pub entropy: f64,
    /// E_q[−log N(z₀; 0, I)] (analytic): the cross entropy of the stage-1 prior.
    pub cross_entropy_normal: f64,
    /// Cross entropy to the score prior (Theorem 1, w_ll, importance-sampled t).
    pub cross_entropy: f64,
    /// Standard error of `cross_entropy`.
    pub cross_entropy_se: f64,
    /// Pixels per image (for nats/dim).
    pub dims: usize,
}

impl Nelbo {
    /// NELBO of the VAE with its N(0, I) prior.
    pub fn vae(&self) -> f64 {
        self.reconstruction - self.entropy + self.cross_entropy_normal
    }

    /// NELBO of the LSGM (VAE + score prior).
    pub fn lsgm(&self) -> f64 {
        self.reconstruction - self.entropy + self.cross_entropy
    }
}

/// The Monte-Carlo terms of the NELBO of a batch: per draw d and image i, the reconstruction
/// −log p_ψ(x_i|z₀) and the score-prior cross entropy of z₀ ~ q(z₀|x_i); per image the entropy
/// and the analytic N(0, I) cross entropy.
#[derive(Clone, Debug)]
pub struct BoundDraws {
    /// `[draw][image]` −log p_ψ(x|z₀).
    pub reconstruction: Vec<Vec<f64>>,
    /// `[draw][image]` cross-entropy estimate.
    pub cross_entropy: Vec<Vec<f64>>,
    /// `[image]` H(q_φ(z₀|x)).
    pub entropy: Vec<f64>,
    /// `[image]` E_q[−log N(z₀; 0, I)].
    pub cross_entropy_normal: Vec<f64>,
    /// Pixels per image.
    pub dims: usize,
}

/// A `[B]` tensor as f64 values.
fn values(t: Tensor) -> anyhow::Result<Vec<f64>> {
    Ok(t.to_dtype(DType::F64)?.to_vec1::<f64>()?)
}

fn mean(v: impl Iterator<Item = f64>) -> (f64, usize) {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    (s / n.max(1) as f64, n)
}

impl BoundDraws {
    /// The means over images and draws (the training log's summary).
    pub fn summary(&self) -> Nelbo {
        let all_ce: Vec<f64> = self.cross_entropy.iter().flatten().copied().collect();
        let (ce, n) = mean(all_ce.iter().copied());
        let var = all_ce.iter().map(|c| (c - ce).powi(2)).sum::<f64>() / (n as f64 - 1.0).max(1.0);
        Nelbo {
            reconstruction: mean(self.reconstruction.iter().flatten().copied()).0,
            entropy: mean(self.entropy.iter().copied()).0,
            cross_entropy_normal: mean(self.cross_entropy_normal.iter().copied()).0,
            cross_entropy: ce,
            cross_entropy_se: (var / n as f64).sqrt(),
            dims: self.dims,
        }
    }

    /// Per image: the LSGM NELBO in nats, mean over the draws, and its standard error.
    pub fn per_image(&self) -> Vec<(f64, f64)> {
        (0..self.entropy.len())
            .map(|i| {
                let v: Vec<f64> = self
                    .reconstruction
                    .iter()
                    .zip(&self.cross_entropy)
                    .map(|(r, c)| r[i] - self.entropy[i] + c[i])
                    .collect();
                let (m, n) = mean(v.iter().copied());
                let var =
                    v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n as f64 - 1.0).max(1.0);
                (m, (var / n as f64).sqrt())
            })
            .collect()
    }
}

/// The NELBO terms of images `x` `[B, 1, S, S]` in [0, 1] with `draws` posterior and time draws
/// per image (seeded; no gradients kept).
pub fn bound_draws(
    vae: &Vae,
    prior: &LatentPrior,
    config: &LsgmConfig,
    x: &Tensor,
    draws: usize,
    seed: u64,
) -> anyhow::Result<BoundDraws> {
    let mut noise = Noise::new(seed);
    let sde = config.sde.build()?;
    let sampler = config.likelihood_sampler()?;
    let q = vae.encode(x)?;
    let dims = x.dims()[1..].iter().product::<usize>();
    let d_latent = q.mean.dims()[1..].iter().product::<usize>() as f64;
    let model = prior.mixed(LatentSchedule::new(&config.sde)?, sde.as_ref(), false);
    let entropy = values(q.entropy()?)?;
    let normal = ((q.mean.sqr()? + q.log_var.exp()?)?
        .flatten_from(1)?
        .sum(1)?
        * 0.5)?
        .affine(1.0, 0.5 * d_latent * (2.0 * PI).ln())?;
    let (mut rec, mut ce) = (Vec::new(), Vec::new());
    for _ in 0..draws.max(1) {
        let z = q.sample(&mut noise)?.detach();
        rec.push(values(vae.reconstruction_nll(x, &z)?)?);
        ce.push(values(cross_entropy(&model, &sampler, &z, &mut noise)?)?);
    }
    Ok(BoundDraws {
        reconstruction: rec,
        cross_entropy: ce,
        entropy,
        cross_entropy_normal: values(normal)?,
        dims,
    })
}

/// The NELBO of each image of `x` with log p_θ(z₀) from the probability-flow ODE of the prior
/// (Hutchinson–Skilling, RK45, cutoff max(t_min, 1e-5); LSGM §7.7: one posterior draw, one
/// probe): −log p_ψ(x|z₀) − H(q) − log p_θ(z₀). Returns (NELBO per image, log p_θ(z₀) per
/// image, NFE).
pub fn nelbo_ode(
    vae: &Vae,
    prior: &LatentPrior,
    config: &LsgmConfig,
    x: &Tensor,
    seed: u64,
) -> anyhow::Result<(Vec<f64>, Vec<f64>, usize)> {
    let mut noise = Noise::new(seed);
    let sde = config.sde.build()?;
    let q = vae.encode(x)?;
    let z = q.sample(&mut noise)?.detach();
    let model = prior.mixed(LatentSchedule::new(&config.sde)?, sde.as_ref(), false);
    let ll = log_likelihood(
        sde.as_ref(),
        &model,
        &z,
        &LikelihoodConfig {
            t_min: Some(config.t_min.max(1e-5)),
            seed,
            ..LikelihoodConfig::default()
        },
    )?;
    let rec = values(vae.reconstruction_nll(x, &z)?)?;
    let entropy = values(q.entropy()?)?;
    let nelbo = rec
        .iter()
        .zip(&entropy)
        .zip(&ll.log_likelihood)
        .map(|((r, h), lp)| r - h - lp)
        .collect();
    Ok((nelbo, ll.log_likelihood.clone(), ll.nfe))
}
