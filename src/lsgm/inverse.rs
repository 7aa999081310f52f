//! Inverse problems with the latent prior: latent-dc and the decomposed samplers.
//!
//! **latent-dc** ([`latent_solve`]): reverse-diffusion sampling of z with a data-consistency
//! step through the decoder after every predictor step. With the Tweedie
//! estimate ẑ₀ = (z_t + σ_t² s_θ(z_t, t))/m(t) and x̂ = μ_ψ(ẑ₀), the residual r = A x̂ − y of
//! measurements y = A x gives the image-space gradient g = Aᵀ r of ½‖A x̂ − y‖², pulled back
//! through the decoder by one backward pass (J_ψᵀ g); the step is
//! z_t ← z_t − (ζ/‖r‖) J_ψᵀ g / m(t) (a DPS-style normalised step; the score's Jacobian in
//! ∂ẑ₀/∂z_t is neglected). The result is the decoded final latent.
//!
//! **latent-dds** ([`latent_decomposed_solve`]): DDS (Chung, Lee & Ye 2024) with the latent
//! prior — per step one latent network evaluation, the decoded Tweedie estimate μ_ψ(ẑ₀), the
//! CG data step in image space, the encoder's mean μ_φ of the result as the new ẑ₀, DDIM
//! re-noising in latent space (`medsgm_recon::decomposed::sample_coded`; the latent-space
//! analogue of ReSample, Song et al. 2024, without its latent optimisation). No gradient
//! through any network; the output is the image of the last data step.
//!
//! **latent-diffpir**: the same sampler with DiffPIR's data weight γ σ̄_t² (Zhu et al. 2023),
//! [`DecomposedConfig::variant`] = `Variant::DiffPir`.

use super::config::LsgmConfig;
use super::prior::LatentPrior;
use super::vae::Vae;
use anyhow::Context;
use candle_core::{Device, Tensor, Var};
use medsgm_operators::{LinearOperator, Scalar, Subsampled, Transform};
use medsgm_recon::decomposed::{sample_coded, Codec, DecomposedConfig};
use medsgm_recon::inverse::hard_projection;
use medsgm_recon::lsgm::LatentSchedule;
use medsgm_recon::projection::MeasuredBatch;
use medsgm_recon::{
    CorrectorKind, Noise, PcConfig, PcSampler, PredictorKind, ReconError, ScoreModel, Stage,
};
use ndarray::{Array1, Array2, ArrayD, IxDyn};

/// Parameters of the latent data-consistency sampler.
#[derive(Clone, Debug, PartialEq)]
pub struct LatentDcConfig {
    /// Reverse-diffusion steps N (one predictor NFE and one Tweedie NFE per step).
    pub steps: usize,
    /// Step size ζ of the normalised data-consistency step (0 = unconditional sampling).
    pub step_size: f64,
    /// Seed of the prior draw and the sampler noise.
    pub seed: u64,
}

impl Default for LatentDcConfig {
    fn default() -> Self {
        Self {
            steps: 200,
            step_size: 1.0,
            seed: 0,
        }
    }
}

/// The decoded reconstructions `[H, W]`, one per measurement vector, and the score NFE.
#[derive(Clone, Debug)]
pub struct LatentReconstruction {
    /// Decoder means of the final latents.
    pub images: Vec<Array2<f32>>,
    /// Batched score evaluations.
    pub nfe: usize,
}

/// Image-space gradients Aᵀ(A x̂_k − y_k) `[K, 1, H, W]` and residual norms ‖A x̂_k − y_k‖.
fn residual_gradient<T: Transform<In = f32>>(
    op: &Subsampled<T>,
    x: &Tensor,
    y: &[Array1<T::Out>],
) -> anyhow::Result<(Tensor, Vec<f64>)> {
    let (k, _, h, w) = x.dims4()?;
    let mut grads = Vec::with_capacity(k * h * w);
    let mut norms = Vec::with_capacity(k);
    for (i, yi) in y.iter().enumerate() {
        let img = ArrayD::from_shape_vec(IxDyn(&[h, w]), x.get(i)?.flatten_all()?.to_vec1()?)?;
        let mut r = op.forward(&img.view());
        r.iter_mut().zip(yi.iter()).for_each(|(a, b)| {
            *a += b.scale(-1.0);
        });
        norms.push(r.iter().map(|v| v.abs2()).sum::<f64>().sqrt());
        grads.extend(op.adjoint(&r.view()).iter().copied());
    }
    Ok((Tensor::from_vec(grads, (k, 1, h, w), x.device())?, norms))
}

/// The side S of the VAE's images, checked against `op`'s domain.
fn vae_side<T: Transform<In = f32>>(
    config: &LsgmConfig,
    op: &Subsampled<T>,
) -> anyhow::Result<usize> {
    let s = config.vae.image_size;
    anyhow::ensure!(
        op.domain_shape() == [s, s],
        "operator domain {:?} does not match the VAE's {s}×{s} images",
        op.domain_shape()
    );
    Ok(s)
}

/// The images `[B, 1, S, S]` as B arrays `[S, S]`.
fn to_images(images: &Tensor, s: usize) -> anyhow::Result<Vec<Array2<f32>>> {
    (0..images.dim(0)?)
        .map(|i| {
            let v = images.get(i)?.flatten_all()?.to_vec1::<f32>()?;
            Ok(Array2::from_shape_vec((s, s), v)?)
        })
        .collect()
}

/// Reconstructs one image per measurement vector in `y` with the LSGM prior (see the module
/// docs). `op`'s domain must be the VAE's `[S, S]` image in its [0, 1] units.
pub fn latent_solve<T: Transform<In = f32>>(
    vae: &Vae,
    prior: &LatentPrior,
    config: &LsgmConfig,
    op: &Subsampled<T>,
    y: &[Array1<T::Out>],
    dc: &LatentDcConfig,
    device: &Device,
) -> anyhow::Result<LatentReconstruction> {
    let s = vae_side(config, op)?;
    let sde = config.sde.build()?;
    let model = prior.mixed(LatentSchedule::new(&config.sde)?, sde.as_ref(), false);
    let mut extra_nfe = 0;
    let mut hook = |stage: Stage, z: &Tensor, t: f64| -> medsgm_recon::Result<Tensor> {
        if stage != Stage::Predictor || dc.step_size == 0.0 {
            return Ok(z.clone());
        }
        let step = || -> anyhow::Result<Tensor> {
            let b = z.dim(0)?;
            let (m, sigma) = (sde.mean_coef(t), sde.std(t));
            let tt = Tensor::full(t as f32, b, z.device())?;
            let score = model.score(z, &tt)?;
            let z0 = ((z + (score * (sigma * sigma))?)? / m)?.detach();
            let var = Var::from_tensor(&z0)?;
            let x = vae.decode(var.as_tensor())?;
            let (g, norms) = residual_gradient(op, &x, y)?;
            let grads = (x * g)?.sum_all()?.backward()?;
            let jg = grads.get(var.as_tensor()).context("no decoder gradient")?;
            let scale: Vec<f32> = norms
                .iter()
                .map(|n| (dc.step_size / (n.max(1e-12) * m)) as f32)
                .collect();
            let scale = Tensor::from_vec(scale, (b, 1, 1, 1), z.device())?;
            Ok((z - jg.broadcast_mul(&scale)?)?)
        };
        extra_nfe += 1;
        step().map_err(|e| ReconError::Hook(e.into()))
    };
    let pc = PcSampler::new(PcConfig {
        predictor: PredictorKind::ReverseDiffusion,
        corrector: CorrectorKind::None,
        steps: dc.steps,
        corrector_steps: 0,
        seed: dc.seed,
        ..PcConfig::default()
    })?;
    let h = config.vae.latent_size();
    let shape = [y.len(), config.vae.latent_channels, h, h];
    let out = pc.sample(
        sde.as_ref(),
        &model,
        &shape,
        device,
        &mut hook,
        &mut |_, _| {},
    )?;
    let images = to_images(&vae.decode(&out.samples)?, s)?;
    Ok(LatentReconstruction {
        images,
        nfe: out.nfe + extra_nfe,
    })
}

/// The VAE as the [`Codec`] of the latent decomposed sampler: decoder mean μ_ψ, encoder mean
/// μ_φ.
struct VaeCodec<'a>(&'a Vae);

impl Codec for VaeCodec<'_> {
    fn decode(&self, z: &Tensor) -> medsgm_recon::Result<Tensor> {
        Ok(self.0.decode(z)?)
    }
    fn encode(&self, x: &Tensor) -> medsgm_recon::Result<Tensor> {
        Ok(self.0.encode(x)?.mean)
    }
}

/// Reconstructs one image per measurement vector in `y` with DDS or DiffPIR (`dds.variant`)
/// in the LSGM's latent space (see the module docs): `dds.steps` latent network evaluations on [ε, t₀]. A cold start
/// (t₀ = T) draws z_T from the latent prior; a warm start encodes the measured-data estimate
/// x̂ (the hard projection of the zero image, as the pixel samplers' warm start) and diffuses
/// it to t₀: z_{t₀} = m(t₀) μ_φ(x̂) + s(t₀) ξ. `op`'s domain must be the VAE's `[S, S]` image.
#[allow(clippy::too_many_arguments)]
pub fn latent_decomposed_solve<T: Transform<In = f32>>(
    vae: &Vae,
    prior: &LatentPrior,
    config: &LsgmConfig,
    op: &Subsampled<T>,
    y: &[Array1<T::Out>],
    dds: &DecomposedConfig,
    t_start: f64,
    seed: u64,
    device: &Device,
) -> anyhow::Result<LatentReconstruction> {
    let s = vae_side(config, op)?;
    let sde = config.sde.build()?;
    anyhow::ensure!(
        t_start > sde.t_min() && t_start <= sde.t_max(),
        "t₀ = {t_start} must lie in (ε, T] = ({}, {}]",
        sde.t_min(),
        sde.t_max()
    );
    let model = prior.mixed(LatentSchedule::new(&config.sde)?, sde.as_ref(), false);
    let mut measured = MeasuredBatch::new(op, y.to_vec(), seed)?;
    let mut noise = Noise::new(seed);
    let h = config.vae.latent_size();
    let shape = [y.len(), config.vae.latent_channels, h, h];
    let z_start = if t_start == sde.t_max() {
        sde.prior_sample(&shape, candle_core::DType::F32, device, &mut noise)?
    } else {
        let zero = Tensor::zeros((y.len(), 1, s, s), candle_core::DType::F32, device)?;
        let estimate = hard_projection(&mut measured, &zero)?;
        let z = vae.encode(&estimate)?.mean;
        (z.affine(sde.mean_coef(t_start), 0.0)?
            + noise.randn_like(&z)?.affine(sde.std(t_start), 0.0)?)?
    };
    let images = sample_coded(
        sde.as_ref(),
        &model,
        &VaeCodec(vae),
        &measured,
        z_start,
        t_start,
        dds,
        &mut noise,
        &mut |_, _| {},
    )?;
    let images = to_images(&images, s)?;
    Ok(LatentReconstruction {
        images,
        nfe: dds.steps,
    })
}
