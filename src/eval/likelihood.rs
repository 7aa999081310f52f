//! Likelihoods of images under a score prior, behind `medsgm likelihood`: the ELBO of the
//! reverse SDE (a true lower bound on log p, Huang et al. 2021 Eq. 25;
//! [`medsgm_recon::elbo`]) and the probability-flow ODE log-likelihood (thesis §9.3;
//! [`medsgm_recon::likelihood`]), both in bits per dimension of the prior's normalised units,
//! each with its Monte-Carlo standard error.
//!
//! The densities are of continuous images in the prior's [0, 1] units at time ε (no
//! dequantisation: a CT slice is not an 8-bit image), so bits/dim can be negative; what matters
//! is comparing images under one prior (an image the prior does not explain has a higher value)
//! and priors on one image set.

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use medsgm_recon::elbo::{elbo, mean_var, ElboConfig};
use medsgm_recon::likelihood::{log_likelihood, LikelihoodConfig};
use medsgm_recon::ode_solver::Tolerances;
use medsgm_recon::{ScoreModel, Sde};
use ndarray::Array2;
use serde::Serialize;

/// What to compute.
#[derive(Debug, Clone, Copy)]
pub struct LikelihoodOptions {
    /// The ELBO estimator.
    pub elbo: ElboConfig,
    /// Hutchinson probes of the ODE likelihood (one RK45 solve each); 0 skips it.
    pub ode_probes: usize,
    /// RK45 tolerance of the ODE (rtol = atol).
    pub ode_tol: f64,
    /// Images evaluated together.
    pub batch: usize,
}

/// A value in bits/dim with its standard error (`None` with a single probe).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Estimate {
    /// The estimate.
    pub bits_per_dim: f64,
    /// Its standard error.
    pub std_error: Option<f64>,
}

/// The likelihoods of one image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageLikelihood {
    /// The image's name.
    pub name: String,
    /// −ELBO/(D ln 2): an upper bound on the bits/dim of the image under the reverse SDE.
    pub elbo: Estimate,
    /// −log p^ODE/(D ln 2) (when computed).
    pub ode: Option<Estimate>,
    /// ELBO bits/dim minus ODE bits/dim (≥ 0 up to Monte-Carlo error when the score is close
    /// to the model's own; reported, never forced).
    pub gap: Option<f64>,
}

/// Score evaluations spent, per estimator.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct LikelihoodCost {
    /// ELBO score evaluations (each with a backward pass), summed over batches.
    pub elbo_nfe: usize,
    /// ODE drift evaluations (each with a backward pass), summed over batches and probes.
    pub ode_nfe: usize,
}

/// ELBO (and ODE) bits/dim of every image (`[H, W]` in the prior's [0, 1] units), in batches;
/// `progress` is called after each batch.
pub fn image_likelihoods(
    sde: &dyn Sde,
    score: &dyn ScoreModel,
    images: &[(String, Array2<f32>)],
    options: &LikelihoodOptions,
    device: &Device,
    progress: &mut dyn FnMut(),
) -> Result<(Vec<ImageLikelihood>, LikelihoodCost)> {
    let mut out = Vec::with_capacity(images.len());
    let mut cost = LikelihoodCost::default();
    for (b, chunk) in batches(images, options.batch).into_iter().enumerate() {
        let shape = chunk[0].1.dim();
        let data: Vec<f32> = chunk
            .iter()
            .flat_map(|(_, im)| im.iter().copied())
            .collect();
        let x = Tensor::from_vec(data, (chunk.len(), 1, shape.0, shape.1), device)?;
        // each batch its own seeds, so a batch's numbers do not depend on its neighbours
        let seed = options.elbo.seed.wrapping_add(b as u64 * 1_000_003);
        let e = elbo(
            sde,
            score,
            &x,
            &ElboConfig {
                seed,
                ..options.elbo
            },
        )
        .context("ELBO")?;
        cost.elbo_nfe += e.nfe;
        let mut ode_bpd = vec![Vec::new(); chunk.len()];
        for probe in 0..options.ode_probes {
            let ll = log_likelihood(
                sde,
                score,
                &x,
                &LikelihoodConfig {
                    tolerances: Tolerances {
                        rtol: options.ode_tol,
                        atol: options.ode_tol,
                        ..Tolerances::default()
                    },
                    seed: seed.wrapping_add(1 + probe as u64),
                    bpd_offset: options.elbo.bpd_offset,
                    t_min: options.elbo.t_min,
                    ..LikelihoodConfig::default()
                },
            )
            .context("probability-flow ODE likelihood")?;
            cost.ode_nfe += ll.nfe;
            for (v, bpd) in ode_bpd.iter_mut().zip(ll.bits_per_dim) {
                v.push(bpd);
            }
        }
        for (i, (name, _)) in chunk.iter().enumerate() {
            let elbo = Estimate {
                bits_per_dim: e.bits_per_dim[i],
                std_error: Some(e.bpd_std_error[i]),
            };
            let ode = (!ode_bpd[i].is_empty()).then(|| {
                let (mean, var) = mean_var(&ode_bpd[i]);
                let n = ode_bpd[i].len();
                Estimate {
                    bits_per_dim: mean,
                    std_error: (n > 1).then(|| (var / n as f64).sqrt()),
                }
            });
            out.push(ImageLikelihood {
                name: name.clone(),
                elbo,
                gap: ode.map(|o| elbo.bits_per_dim - o.bits_per_dim),
                ode,
            });
        }
        progress();
    }
    Ok((out, cost))
}

/// Most pixels evaluated together (the backward passes keep every activation): 4 × 256².
pub const MAX_BATCH_PIXELS: usize = 4 * 256 * 256;

/// Consecutive images of one shape, at most `batch` (and [`MAX_BATCH_PIXELS`]) per batch.
fn batches(images: &[(String, Array2<f32>)], batch: usize) -> Vec<&[(String, Array2<f32>)]> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < images.len() {
        let shape = images[start].1.dim();
        let cap = batch.clamp(1, (MAX_BATCH_PIXELS / (shape.0 * shape.1).max(1)).max(1));
        let mut end = start + 1;
        while end < images.len() && end - start < cap && images[end].1.dim() == shape {
            end += 1;
        }
        out.push(&images[start..end]);
        start = end;
    }
    out
}
