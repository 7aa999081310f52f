//! Disjoint two-stage LSGM training (LSGM §3, App. G.6; method digest §7.5–7.6):
//! stage 1 trains the VAE with a N(0, I) prior on the NELBO
//! E_q[−log p_ψ(x|z₀)] + β KL(q_φ(z₀|x) ‖ N(0, I)); stage 2 freezes it and trains the mixed-score
//! prior on z₀ ~ q_φ(z₀|x) with (w(t)/(2r(t))) ‖ε − ε_θ(z_t, t)‖², t ~ r (Eq. 9, importance
//! sampled). The NELBO of the full model is reconstruction − entropy + cross entropy, the
//! latter by Theorem 1 with w_ll. Every random draw of step k comes from streams seeded by
//! (seed, stage, k); checkpoints are self-describing safetensors written atomically.

use super::config::{EncoderTime, LsgmConfig, Stage2};
use super::prior::LatentPrior;
use super::vae::Vae;
use crate::checkpoint::{read_safetensors, write_safetensors_atomic};
use crate::nn::embedding::FOURIER_WEIGHT;
use crate::nn::init::seeded_var_builder;
use crate::train::data::{image_seed, DataSource};
use crate::train::optim::{Adam, Ema};
use crate::train::plot::write_loss_curve;
use anyhow::{bail, Context};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use medsgm_recon::likelihood::{log_likelihood, LikelihoodConfig};
use medsgm_recon::lsgm::{cross_entropy, score_matching, LatentSchedule, TimeSampler};
use medsgm_recon::ode_sampler::{ode_sample, OdeConfig};
use medsgm_recon::{Noise, Sde};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::f64::consts::PI;
use std::path::Path;

/// `format` of LSGM checkpoints.
pub const LSGM_FORMAT: &str = "medsgm-lsgm-checkpoint";
/// Layout version written by this build.
pub const LSGM_FORMAT_VERSION: u32 = 1;
/// Checkpoint file name in the output directory.
pub const LSGM_CHECKPOINT_FILE: &str = "lsgm.safetensors";

const VAE_STREAM: u64 = 0x7661_6500_0000_0001;
const PRIOR_STREAM: u64 = 0x7072_696F_7200_0002;

/// Metadata of an LSGM checkpoint (JSON under the `medsgm` safetensors key).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LsgmMeta {
    /// Always [`LSGM_FORMAT`].
    pub format: String,
    /// Layout version.
    pub format_version: u32,
    /// `CARGO_PKG_VERSION` of the writer.
    pub medsgm_version: String,
    /// The run's configuration.
    pub config: LsgmConfig,
    /// Stage-1 steps taken.
    pub vae_step: u64,
    /// Stage-2 steps taken.
    pub prior_step: u64,
    /// Stage-1 loss history `(step, loss)`.
    pub vae_losses: Vec<(u64, f64)>,
    /// Stage-2 loss history `(step, loss)`.
    pub prior_losses: Vec<(u64, f64)>,
    /// Description of the training data.
    pub dataset: String,
}

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

/// Trainable variables of `map` sorted by name (fixed Fourier matrices excluded).
fn trainable(map: &VarMap) -> Vec<(String, Var)> {
    let data = map.data().lock().map(|d| d.clone()).unwrap_or_default();
    let mut v: Vec<(String, Var)> = data
        .into_iter()
        .filter(|(n, _)| !n.ends_with(FOURIER_WEIGHT))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn tensors_of(map: &VarMap, prefix: &str) -> anyhow::Result<Vec<(String, Tensor)>> {
    Ok(map
        .data()
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned VarMap"))?
        .iter()
        .map(|(n, v)| (format!("{prefix}{n}"), v.as_tensor().clone()))
        .collect())
}

fn scalar(t: &Tensor) -> anyhow::Result<f64> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

/// An LSGM training run in memory.
pub struct LsgmTrainer {
    config: LsgmConfig,
    sde: Box<dyn Sde>,
    prior_sampler: TimeSampler,
    ll_sampler: TimeSampler,
    vae_map: VarMap,
    vae: Vae,
    vae_params: Vec<(String, Var)>,
    vae_adam: Adam,
    prior_map: VarMap,
    prior: LatentPrior,
    prior_params: Vec<(String, Var)>,
    prior_adam: Adam,
    prior_ema: Ema,
    data: Box<dyn DataSource>,
    device: Device,
    vae_step: u64,
    prior_step: u64,
    vae_losses: Vec<(u64, f64)>,
    prior_losses: Vec<(u64, f64)>,
}

impl LsgmTrainer {
    /// A fresh run: VAE and prior initialised from `config.seed`.
    pub fn new(
        config: LsgmConfig,
        data: Box<dyn DataSource>,
        device: &Device,
    ) -> anyhow::Result<Self> {
        config.validate()?;
        let vae_map = VarMap::new();
        let vae = Vae::new(
            &config.vae,
            seeded_var_builder(&vae_map, config.seed, device),
        )?;
        let prior_map = VarMap::new();
        let prior = LatentPrior::new(
            &config,
            seeded_var_builder(&prior_map, config.seed ^ PRIOR_STREAM, device),
        )?;
        let vae_params = trainable(&vae_map);
        let prior_params = trainable(&prior_map);
        Ok(Self {
            sde: config.sde.build()?,
            prior_sampler: config.prior_sampler()?,
            ll_sampler: config.likelihood_sampler()?,
            vae_adam: Adam::new(config.adam(config.vae_lr), &vae_params)?,
            prior_adam: Adam::new(config.adam(config.prior_lr), &prior_params)?,
            prior_ema: Ema::new(config.ema, &prior_params)?,
            config,
            vae_map,
            vae,
            vae_params,
            prior_map,
            prior,
            prior_params,
            data,
            device: device.clone(),
            vae_step: 0,
            prior_step: 0,
            vae_losses: Vec::new(),
            prior_losses: Vec::new(),
        })
    }

    /// Continues a run from its checkpoint: weights, prior EMA, step counters and loss
    /// histories are restored; the Adam moments restart from zero.
    pub fn resume(path: &Path, data: Box<dyn DataSource>, device: &Device) -> anyhow::Result<Self> {
        let ck = LsgmCheckpoint::load(path, device)?;
        let mut t = Self::new(ck.meta.config.clone(), data, device)?;
        for (map, prefix) in [(&t.vae_map, "vae."), (&t.prior_map, "prior.")] {
            for (name, var) in map
                .data()
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned VarMap"))?
                .iter()
            {
                var.set(&ck.get(&format!("{prefix}{name}"))?)
                    .with_context(|| format!("restoring {prefix}{name}"))?;
            }
        }
        for (name, _) in &t.prior_params {
            t.prior_ema
                .shadow
                .insert(name.clone(), ck.get(&format!("ema.prior.{name}"))?);
        }
        t.vae_step = ck.meta.vae_step;
        t.prior_step = ck.meta.prior_step;
        t.vae_losses = ck.meta.vae_losses;
        t.prior_losses = ck.meta.prior_losses;
        Ok(t)
    }

    /// The configuration.
    pub fn config(&self) -> &LsgmConfig {
        &self.config
    }
    /// The VAE (current weights).
    pub fn vae(&self) -> &Vae {
        &self.vae
    }
    /// The prior (current, not EMA, weights).
    pub fn prior(&self) -> &LatentPrior {
        &self.prior
    }
    /// The latent SDE.
    pub fn sde(&self) -> &dyn Sde {
        self.sde.as_ref()
    }
    /// Stage-1 steps taken.
    pub fn vae_step(&self) -> u64 {
        self.vae_step
    }
    /// Stage-2 steps taken.
    pub fn prior_step(&self) -> u64 {
        self.prior_step
    }
    /// Stage-1 `(step, loss)` history.
    pub fn vae_losses(&self) -> &[(u64, f64)] {
        &self.vae_losses
    }
    /// Stage-2 `(step, loss)` history.
    pub fn prior_losses(&self) -> &[(u64, f64)] {
        &self.prior_losses
    }

    /// The batch `[B, 1, S, S]` of data step `step` (stage 2 continues the stream after stage 1).
    pub fn batch(&self, step: u64) -> anyhow::Result<Tensor> {
        let (b, s) = (self.config.batch_size, self.config.vae.image_size);
        let mut data: Vec<f32> = Vec::with_capacity(b * s * s);
        for i in 0..b {
            let img = self.data.image(step, i)?;
            if img.dim() != (s, s) {
                bail!(
                    "data source returned a {:?} image, the VAE expects {s}×{s}",
                    img.dim()
                )
            }
            data.extend(img.iter());
        }
        Ok(Tensor::from_vec(data, (b, 1, s, s), &self.device)?)
    }

    /// Stage-1 loss: batch mean of −log p_ψ(x|z₀) + β KL(q ‖ N(0, I)) (one reparameterised draw).
    pub fn vae_loss(&self, x: &Tensor, noise: &mut Noise) -> anyhow::Result<Tensor> {
        let q = self.vae.encode(x)?;
        let z = q.sample(noise)?;
        let rec = self.vae.reconstruction_nll(x, &z)?;
        let kl = q.kl_standard_normal()?;
        Ok((rec + (kl * self.config.kl_weight)?)?.mean_all()?)
    }

    /// One stage-1 optimiser step; returns the batch loss.
    pub fn vae_step_once(&mut self) -> anyhow::Result<f64> {
        let k = self.vae_step;
        let x = self.batch(k)?;
        let mut noise = Noise::new(image_seed(self.config.seed ^ VAE_STREAM, k, 0));
        let loss = self.vae_loss(&x, &mut noise)?;
        let value = scalar(&loss)?;
        if !value.is_finite() {
            bail!("non-finite VAE loss {value} at step {k}")
        }
        let grads = loss.backward()?;
        self.vae_adam.step(&self.vae_params, &grads)?;
        self.vae_step += 1;
        self.vae_losses.push((self.vae_step, value));
        Ok(value)
    }

    /// Stage-2 loss: batch mean of (w(t)/(2r(t))) ‖ε − ε_θ(z_t, t)‖² on z₀ ~ q(z₀|x) of the
    /// frozen VAE, with the prior's weighting and t-proposal.
    pub fn prior_loss(&self, x: &Tensor, noise: &mut Noise) -> anyhow::Result<Tensor> {
        let z0 = self.vae.encode(x)?.sample(noise)?.detach();
        let schedule = LatentSchedule::new(&self.config.sde)?;
        let model = self.prior.mixed(schedule, self.sde.as_ref(), true);
        let sm = score_matching(&model, &self.prior_sampler, &z0, noise)?;
        Ok(sm.loss.mean_all()?)
    }

    /// One stage-2 optimiser step (prior parameters only, then their EMA); returns the loss.
    pub fn prior_step_once(&mut self) -> anyhow::Result<f64> {
        let k = self.prior_step;
        let x = self.batch(self.config.vae_steps + k)?;
        let seed = image_seed(self.config.seed ^ PRIOR_STREAM, k, 0);
        let mut noise = Noise::new(seed);
        self.prior.net().reseed_dropout(seed);
        let loss = self.prior_loss(&x, &mut noise)?;
        let value = scalar(&loss)?;
        if !value.is_finite() {
            bail!("non-finite prior loss {value} at step {k}")
        }
        let grads = loss.backward()?;
        self.prior_adam.step(&self.prior_params, &grads)?;
        self.prior_ema.update(&self.prior_params, k)?;
        self.prior_step += 1;
        self.prior_losses.push((self.prior_step, value));
        Ok(value)
    }

    /// One end-to-end stage-2 step (LSGM Alg. 1; Alg. 3 or Alg. 2 when the prior's weighting
    /// is not w_ll, by `encoder_time`): the VAE takes the gradient of the batch-mean NELBO
    /// −log p(x|z₀) − H(q) + (w_ll/(2r))‖ε − ε_θ‖², the prior that of (w/(2r))‖ε − ε_θ‖².
    /// Returns (VAE loss, prior loss).
    pub fn joint_step_once(&mut self) -> anyhow::Result<(f64, f64)> {
        let k = self.prior_step;
        let x = self.batch(self.config.vae_steps + k)?;
        let seed = image_seed(self.config.seed ^ PRIOR_STREAM, k, 0);
        let mut noise = Noise::new(seed);
        self.prior.net().reseed_dropout(seed);
        let q = self.vae.encode(&x)?;
        let z0 = q.sample(&mut noise)?;
        let schedule = LatentSchedule::new(&self.config.sde)?;
        let model = self.prior.mixed(schedule, self.sde.as_ref(), true);
        let sm = score_matching(&model, &self.prior_sampler, &z0, &mut noise)?;
        let ce = match self.config.encoder_time {
            EncoderTime::Reweight => sm.likelihood_loss.clone(),
            EncoderTime::Separate => {
                score_matching(&model, &self.ll_sampler, &z0, &mut noise)?.likelihood_loss
            }
        };
        let rec = self.vae.reconstruction_nll(&x, &z0)?;
        let vae_loss = ((rec - q.entropy()?)? + ce)?.mean_all()?;
        let prior_loss = sm.loss.mean_all()?;
        let (v, p) = (scalar(&vae_loss)?, scalar(&prior_loss)?);
        if !(v.is_finite() && p.is_finite()) {
            bail!("non-finite joint losses ({v}, {p}) at step {k}")
        }
        let vae_grads = vae_loss.backward()?;
        let prior_grads = prior_loss.backward()?;
        self.vae_adam.step(&self.vae_params, &vae_grads)?;
        self.prior_adam.step(&self.prior_params, &prior_grads)?;
        self.prior_ema.update(&self.prior_params, k)?;
        self.prior_step += 1;
        self.prior_losses.push((self.prior_step, p));
        Ok((v, p))
    }

    /// NELBO terms of images `x` `[B, 1, S, S]` with `draws` posterior/time draws per image,
    /// using the current prior weights (see [`Nelbo`]); seeded, no gradients kept.
    pub fn nelbo(&self, x: &Tensor, draws: usize, seed: u64) -> anyhow::Result<Nelbo> {
        let mut noise = Noise::new(seed);
        let q = self.vae.encode(x)?;
        let dims = x.dims()[1..].iter().product::<usize>();
        let d_latent = q.mean.dims()[1..].iter().product::<usize>() as f64;
        let schedule = LatentSchedule::new(&self.config.sde)?;
        let model = self.prior.mixed(schedule, self.sde.as_ref(), false);
        let entropy = scalar(&q.entropy()?.mean_all()?)?;
        let normal = ((q.mean.sqr()? + q.log_var.exp()?)?
            .flatten_from(1)?
            .sum(1)?
            * 0.5)?
            .affine(1.0, 0.5 * d_latent * (2.0 * PI).ln())?;
        let cross_entropy_normal = scalar(&normal.mean_all()?)?;
        let (mut rec, mut ce) = (0.0, Vec::new());
        for _ in 0..draws.max(1) {
            let z = q.sample(&mut noise)?.detach();
            rec += scalar(&self.vae.reconstruction_nll(x, &z)?.mean_all()?)?;
            let c = cross_entropy(&model, &self.ll_sampler, &z, &mut noise)?;
            ce.extend(c.to_dtype(DType::F64)?.to_vec1::<f64>()?);
        }
        let n = ce.len() as f64;
        let mean = ce.iter().sum::<f64>() / n;
        let var = ce.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        Ok(Nelbo {
            reconstruction: rec / draws.max(1) as f64,
            entropy,
            cross_entropy_normal,
            cross_entropy: mean,
            cross_entropy_se: (var / n).sqrt(),
            dims,
        })
    }

    /// The NELBO per image with log p_θ(z₀) from the probability-flow ODE of the prior
    /// (Hutchinson–Skilling, RK45, cutoff max(t_min, 1e-5); LSGM §7.7: one draw, K = 1):
    /// mean over images of −log p_ψ(x|z₀) − H(q) − log p_θ(z₀). Returns (NELBO, the mean
    /// log p_θ(z₀), NFE).
    pub fn nelbo_ode(&self, x: &Tensor, seed: u64) -> anyhow::Result<(f64, f64, usize)> {
        let mut noise = Noise::new(seed);
        let q = self.vae.encode(x)?;
        let z = q.sample(&mut noise)?.detach();
        let schedule = LatentSchedule::new(&self.config.sde)?;
        let model = self.prior.mixed(schedule, self.sde.as_ref(), false);
        let ll = log_likelihood(
            self.sde.as_ref(),
            &model,
            &z,
            &LikelihoodConfig {
                t_min: Some(self.config.t_min.max(1e-5)),
                seed,
                ..LikelihoodConfig::default()
            },
        )?;
        let log_prior = ll.log_likelihood.iter().sum::<f64>() / ll.log_likelihood.len() as f64;
        let rec = scalar(&self.vae.reconstruction_nll(x, &z)?.mean_all()?)?;
        let entropy = scalar(&q.entropy()?.mean_all()?)?;
        Ok((rec - entropy - log_prior, log_prior, ll.nfe))
    }

    /// Mean and variance of the per-latent objective (w(t)/(2r(t)))‖ε − ε_θ(z_t, t)‖² of
    /// `sampler` over `draws` draws on the latents of `x` (current prior weights, no gradients):
    /// compare a uniform and an importance-sampling `sampler` for LSGM Fig. 2's variance ratio.
    pub fn objective_moments(
        &self,
        x: &Tensor,
        sampler: &TimeSampler,
        draws: usize,
        seed: u64,
    ) -> anyhow::Result<(f64, f64)> {
        let mut noise = Noise::new(seed);
        let q = self.vae.encode(x)?;
        let model = self.prior.mixed(
            LatentSchedule::new(&sampler.schedule().config())?,
            sampler.schedule().sde(),
            false,
        );
        let mut values = Vec::new();
        for _ in 0..draws.max(1) {
            let z = q.sample(&mut noise)?.detach();
            let sm = score_matching(&model, sampler, &z, &mut noise)?;
            values.extend(sm.loss.to_dtype(DType::F64)?.to_vec1::<f64>()?);
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        Ok((mean, var))
    }

    /// The checkpoint tensors: `vae.*`, `prior.*` and the prior's EMA `ema.prior.*`.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let mut tensors = tensors_of(&self.vae_map, "vae.")?;
        let prior = tensors_of(&self.prior_map, "prior.")?;
        // Fixed buffers (Fourier matrix) are copied into the EMA set unchanged.
        for (name, t) in &prior {
            let base = name.trim_start_matches("prior.");
            let ema = self.prior_ema.shadow.get(base).unwrap_or(t).clone();
            tensors.push((format!("ema.{name}"), ema));
        }
        tensors.extend(prior);
        let meta = LsgmMeta {
            format: LSGM_FORMAT.into(),
            format_version: LSGM_FORMAT_VERSION,
            medsgm_version: env!("CARGO_PKG_VERSION").into(),
            config: self.config.clone(),
            vae_step: self.vae_step,
            prior_step: self.prior_step,
            vae_losses: self.vae_losses.clone(),
            prior_losses: self.prior_losses.clone(),
            dataset: self.data.describe(),
        };
        write_safetensors_atomic(path, &tensors, &meta)
    }

    /// Writes the checkpoint and the loss curves of both stages into `dir`.
    pub fn save_all(&self, dir: &Path) -> anyhow::Result<()> {
        self.save(&dir.join(LSGM_CHECKPOINT_FILE))?;
        if !self.vae_losses.is_empty() {
            write_loss_curve(&dir.join("loss_vae.png"), &self.vae_losses)?;
        }
        if !self.prior_losses.is_empty() {
            write_loss_curve(&dir.join("loss_prior.png"), &self.prior_losses)?;
        }
        Ok(())
    }

    /// Runs stage 1 to `vae_steps`, then stage 2 to `prior_steps`, checkpointing every
    /// `ckpt_every` steps and at the end of each stage; `progress(stage, step, loss)`.
    pub fn run(
        &mut self,
        dir: &Path,
        progress: &mut dyn FnMut(&str, u64, f64),
    ) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let every = self.config.ckpt_every;
        while self.vae_step < self.config.vae_steps {
            let loss = self.vae_step_once()?;
            progress("vae", self.vae_step, loss);
            if self.vae_step % every == 0 || self.vae_step == self.config.vae_steps {
                self.save_all(dir)?;
            }
        }
        while self.prior_step < self.config.prior_steps {
            let loss = match self.config.stage2 {
                Stage2::Disjoint => self.prior_step_once()?,
                Stage2::Joint => self.joint_step_once()?.1,
            };
            progress("prior", self.prior_step, loss);
            if self.prior_step % every == 0 || self.prior_step == self.config.prior_steps {
                self.save_all(dir)?;
            }
        }
        Ok(())
    }
}

/// Decoded samples of the LSGM.
#[derive(Clone, Debug)]
pub struct LatentSamples {
    /// Decoder means μ_ψ(z₀) `[N, 1, S, S]`.
    pub images: Tensor,
    /// The latents z₀ `[N, C, S/4, S/4]`.
    pub latents: Tensor,
    /// Batched score evaluations of the latent ODE solve.
    pub nfe: usize,
}

/// Draws `n` images: z₁ ~ N(0, I) → probability-flow ODE of the mixed-score prior (RK45 by
/// default, `ode`) → z₀ → decoder mean (LSGM §7.7).
pub fn sample(
    vae: &Vae,
    prior: &LatentPrior,
    config: &LsgmConfig,
    n: usize,
    ode: &OdeConfig,
    device: &Device,
) -> anyhow::Result<LatentSamples> {
    let sde = config.sde.build()?;
    let model = prior.mixed(LatentSchedule::new(&config.sde)?, sde.as_ref(), false);
    let h = config.vae.latent_size();
    let shape = [n, config.vae.latent_channels, h, h];
    let out = ode_sample(sde.as_ref(), &model, &shape, device, ode)?;
    Ok(LatentSamples {
        images: vae.decode(&out.samples)?,
        latents: out.samples,
        nfe: out.nfe,
    })
}

/// A loaded LSGM checkpoint.
#[derive(Clone, Debug)]
pub struct LsgmCheckpoint {
    /// Description and configuration.
    pub meta: LsgmMeta,
    /// All tensors by name.
    pub tensors: HashMap<String, Tensor>,
}

impl LsgmCheckpoint {
    /// Reads and validates an LSGM checkpoint.
    pub fn load(path: &Path, device: &Device) -> anyhow::Result<Self> {
        let (tensors, meta): (_, LsgmMeta) = read_safetensors(path, device)?;
        if meta.format != LSGM_FORMAT {
            bail!(
                "{}: format '{}' is not an LSGM checkpoint ('{LSGM_FORMAT}')",
                path.display(),
                meta.format
            )
        }
        if meta.format_version > LSGM_FORMAT_VERSION {
            bail!(
                "{}: LSGM checkpoint version {} is newer than this build's {LSGM_FORMAT_VERSION}",
                path.display(),
                meta.format_version
            )
        }
        meta.config
            .validate()
            .with_context(|| format!("{}: invalid configuration", path.display()))?;
        Ok(Self { meta, tensors })
    }

    fn get(&self, name: &str) -> anyhow::Result<Tensor> {
        self.tensors
            .get(name)
            .cloned()
            .with_context(|| format!("LSGM checkpoint: tensor {name} is missing"))
    }

    fn builder(&self, prefix: &str, device: &Device) -> anyhow::Result<VarBuilder<'static>> {
        let tensors = self
            .tensors
            .iter()
            .filter_map(|(n, t)| n.strip_prefix(prefix).map(|b| (b.to_string(), t)))
            .map(|(n, t)| Ok((n, t.to_device(device)?)))
            .collect::<candle_core::Result<HashMap<_, _>>>()?;
        Ok(VarBuilder::from_tensors(tensors, DType::F32, device))
    }

    /// The VAE.
    pub fn vae(&self, device: &Device) -> anyhow::Result<Vae> {
        Vae::new(&self.meta.config.vae, self.builder("vae.", device)?)
            .context("checkpoint VAE weights do not match its configuration")
    }

    /// The prior from its EMA (`use_ema`, for sampling) or raw weights.
    pub fn prior(&self, use_ema: bool, device: &Device) -> anyhow::Result<LatentPrior> {
        let prefix = if use_ema { "ema.prior." } else { "prior." };
        LatentPrior::new(&self.meta.config, self.builder(prefix, device)?)
            .context("checkpoint prior weights do not match its configuration")
    }
}
