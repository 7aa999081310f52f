//! LSGM bounds of images, behind `medsgm likelihood` with an LSGM checkpoint: per image the
//! LSGM bound (its NELBO with the score prior's cross entropy, `draws` posterior and time
//! draws) and, with ODE probes, the bound with log p(z₀) from the latent probability-flow ODE
//! ([`crate::lsgm::bound`]), in bits/dim of the image in [0, 1] units — comparable with the
//! pixel priors' columns ([`crate::eval::likelihood`]).

use crate::error::invalid;
use crate::eval::likelihood::{Estimate, ImageLikelihood, LikelihoodCost};
use crate::lsgm::{bound_draws, nelbo_ode, LatentPrior, LsgmConfig, Vae};
use anyhow::Result;
use candle_core::{Device, Tensor};
use medsgm_recon::elbo::mean_var;
use ndarray::Array2;

/// Fails (invalid input) naming the first image that is not `size`×`size`, the LSGM's image
/// size.
pub fn check_lsgm_sizes(images: &[(String, Array2<f32>)], size: usize) -> Result<()> {
    for (name, im) in images {
        if im.dim() != (size, size) {
            return Err(invalid(format!(
                "{name} is {}x{}, the LSGM models {size}x{size} images",
                im.dim().0,
                im.dim().1
            )));
        }
    }
    Ok(())
}

/// The LSGM's estimators and their cost.
#[derive(Debug, Clone, Copy)]
pub struct LsgmLikelihoodOptions {
    /// Posterior and time draws of the bound per image.
    pub draws: usize,
    /// Posterior draws of the ODE bound (0 skips it).
    pub ode_probes: usize,
    /// Images evaluated together.
    pub batch: usize,
    /// Seed of every draw (batch b uses seed + b·1000003).
    pub seed: u64,
}

/// The LSGM bound (and ODE bound) bits/dim of every `size`×`size` image of `images`, in
/// batches; `progress` is called after each batch. The cost counts `draws` per batch for the
/// bound and the latent ODE's score evaluations.
pub fn lsgm_image_likelihoods(
    (vae, prior, config): (&Vae, &LatentPrior, &LsgmConfig),
    images: &[(String, Array2<f32>)],
    o: &LsgmLikelihoodOptions,
    device: &Device,
    progress: &mut dyn FnMut(),
) -> Result<(Vec<ImageLikelihood>, LikelihoodCost)> {
    let size = config.vae.image_size;
    let bits = |nats: f64| nats / ((size * size) as f64 * std::f64::consts::LN_2);
    let (mut results, mut cost) = (Vec::new(), LikelihoodCost::default());
    for (b, chunk) in images.chunks(o.batch).enumerate() {
        let data: Vec<f32> = chunk
            .iter()
            .flat_map(|(_, im)| im.iter().copied())
            .collect();
        let x = Tensor::from_vec(data, (chunk.len(), 1, size, size), device)?;
        let seed = o.seed.wrapping_add(b as u64 * 1_000_003);
        let bound = bound_draws(vae, prior, config, &x, o.draws, seed)?.per_image();
        cost.elbo_nfe += o.draws;
        let mut odes = vec![Vec::new(); chunk.len()];
        for probe in 0..o.ode_probes {
            let (nelbo, _, nfe) =
                nelbo_ode(vae, prior, config, &x, seed.wrapping_add(1 + probe as u64))?;
            cost.ode_nfe += nfe;
            for (v, n) in odes.iter_mut().zip(nelbo) {
                v.push(bits(n));
            }
        }
        for (((name, _), (nats, se)), ode) in chunk.iter().zip(bound).zip(odes) {
            let elbo = Estimate {
                bits_per_dim: bits(nats),
                std_error: Some(bits(se)),
            };
            let ode = (!ode.is_empty()).then(|| {
                let (mean, var) = mean_var(&ode);
                Estimate {
                    bits_per_dim: mean,
                    std_error: (ode.len() > 1).then(|| (var / ode.len() as f64).sqrt()),
                }
            });
            results.push(ImageLikelihood {
                name: name.clone(),
                elbo,
                gap: ode.map(|o| elbo.bits_per_dim - o.bits_per_dim),
                ode,
            });
        }
        progress();
    }
    Ok((results, cost))
}
