//! Disjoint two-stage LSGM training (LSGM §3, App. G.6; method digest §7.5–7.6):
//! stage 1 trains the VAE with a N(0, I) prior on the NELBO
//! E_q[−log p_ψ(x|z₀)] + β KL(q_φ(z₀|x) ‖ N(0, I)); stage 2 freezes it and trains the mixed-score
//! prior on z₀ ~ q_φ(z₀|x) with (w(t)/(2r(t))) ‖ε − ε_θ(z_t, t)‖², t ~ r (Eq. 9, importance
//! sampled). The NELBO of the full model is reconstruction − entropy + cross entropy, the
//! latter by Theorem 1 with w_ll. Every random draw of step k comes from streams seeded by
//! (seed, stage, k); checkpoints are self-describing safetensors written atomically.

use super::bound::{bound_draws, nelbo_ode, Nelbo};
use super::config::{EncoderTime, LsgmConfig, Stage2};
use super::prior::LatentPrior;
use super::vae::Vae;
use crate::checkpoint::{read_safetensors, write_safetensors_atomic};
use crate::io::atomic::write_bytes_atomic;
use crate::nn::embedding::FOURIER_WEIGHT;
use crate::nn::init::seeded_var_builder;
use crate::train::data::{image_seed, DataSource};
use crate::train::optim::{Adam, Ema};
use crate::train::plot::{tensor_images, write_image_grid, write_loss_curve};
use crate::train::progress::{drive, loss_log_csv, StepSchedule};
use crate::train::trainer::{LOG_FILE, LOSS_FILE, STATE_FILE};
use anyhow::{bail, Context};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use medsgm_recon::lsgm::{score_matching, LatentSchedule, TimeSampler};
use medsgm_recon::ode_sampler::{ode_sample, OdeConfig};
use medsgm_recon::{Noise, Sde};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// `format` of LSGM checkpoints.
pub const LSGM_FORMAT: &str = "medsgm-lsgm-checkpoint";
/// Layout version written by this build.
pub const LSGM_FORMAT_VERSION: u32 = 1;
/// Checkpoint file name in the output directory.
pub const LSGM_CHECKPOINT_FILE: &str = "lsgm.safetensors";
/// `format` of LSGM training-state files.
pub const LSGM_STATE_FORMAT: &str = "medsgm-lsgm-train-state";

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

/// Metadata of an LSGM training-state file (the checkpoint's plus the optimiser steps).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct LsgmStateMeta {
    format: String,
    checkpoint: LsgmMeta,
    vae_adam_t: u64,
    prior_adam_t: u64,
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

    /// Continues a run from its state file (see [`LsgmTrainer::save_state`]): weights, prior
    /// EMA, Adam moments of both optimisers, step counters and loss histories, so that the
    /// continued run matches an uninterrupted one bit for bit.
    pub fn resume(
        state: &Path,
        data: Box<dyn DataSource>,
        device: &Device,
    ) -> anyhow::Result<Self> {
        let (tensors, meta): (HashMap<String, Tensor>, LsgmStateMeta) =
            read_safetensors(state, device)?;
        if meta.format != LSGM_STATE_FORMAT {
            bail!(
                "{}: not an LSGM training-state file (format '{}')",
                state.display(),
                meta.format
            )
        }
        let ck = meta.checkpoint;
        let take = |key: &str| {
            tensors
                .get(key)
                .cloned()
                .with_context(|| format!("{}: tensor {key} is missing", state.display()))
        };
        let mut t = Self::new(ck.config.clone(), data, device)?;
        for (map, prefix) in [(&t.vae_map, "vae."), (&t.prior_map, "prior.")] {
            for (name, var) in map
                .data()
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned VarMap"))?
                .iter()
            {
                var.set(&take(&format!("{prefix}{name}"))?)
                    .with_context(|| format!("restoring {prefix}{name}"))?;
            }
        }
        for (name, _) in &t.prior_params {
            t.prior_ema
                .shadow
                .insert(name.clone(), take(&format!("ema.prior.{name}"))?);
        }
        t.vae_adam.restore("adam.vae", meta.vae_adam_t, &take)?;
        t.prior_adam
            .restore("adam.prior", meta.prior_adam_t, &take)?;
        t.vae_step = ck.vae_step;
        t.prior_step = ck.prior_step;
        t.vae_losses = ck.vae_losses;
        t.prior_losses = ck.prior_losses;
        Ok(t)
    }

    /// Changes the number of stage-2 steps (e.g. to extend a resumed run; the stage-1 count
    /// fixes the data stream and cannot change).
    pub fn set_prior_steps(&mut self, steps: u64) {
        self.config.prior_steps = steps;
    }

    /// Restarts the prior's weight average at its current weights.
    pub fn reset_ema(&mut self) -> anyhow::Result<()> {
        Ok(self.prior_ema.reset(&self.prior_params)?)
    }

    /// Description of the training data.
    pub fn describe_data(&self) -> String {
        self.data.describe()
    }

    /// Trainable parameters of the VAE and the prior.
    pub fn num_parameters(&self) -> usize {
        self.vae_params
            .iter()
            .chain(&self.prior_params)
            .map(|(_, v)| v.elem_count())
            .sum()
    }

    /// The prior with its EMA weights (as sampling uses them).
    pub fn ema_prior(&self) -> anyhow::Result<LatentPrior> {
        let mut tensors: HashMap<String, Tensor> =
            tensors_of(&self.prior_map, "")?.into_iter().collect();
        for (name, t) in &self.prior_ema.shadow {
            tensors.insert(name.clone(), t.clone());
        }
        Ok(LatentPrior::new(
            &self.config,
            VarBuilder::from_tensors(tensors, DType::F32, &self.device),
        )?)
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
        Ok(bound_draws(&self.vae, &self.prior, &self.config, x, draws, seed)?.summary())
    }

    /// The NELBO of each image of `x` with log p_θ(z₀) from the probability-flow ODE of the
    /// prior (see [`nelbo_ode`]), with the current prior weights.
    pub fn nelbo_ode(&self, x: &Tensor, seed: u64) -> anyhow::Result<(Vec<f64>, Vec<f64>, usize)> {
        nelbo_ode(&self.vae, &self.prior, &self.config, x, seed)
    }

    /// Replaces the prior's weights by their EMA (for evaluating the weights that sampling
    /// uses; training must not continue afterwards).
    pub fn use_ema_prior(&mut self) -> anyhow::Result<()> {
        for (name, var) in &self.prior_params {
            if let Some(t) = self.prior_ema.shadow.get(name) {
                var.set(t)?;
            }
        }
        Ok(())
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
    fn checkpoint_tensors(&self) -> anyhow::Result<Vec<(String, Tensor)>> {
        let mut tensors = tensors_of(&self.vae_map, "vae.")?;
        let prior = tensors_of(&self.prior_map, "prior.")?;
        // Fixed buffers (Fourier matrix) are copied into the EMA set unchanged.
        for (name, t) in &prior {
            let base = name.trim_start_matches("prior.");
            let ema = self.prior_ema.shadow.get(base).unwrap_or(t).clone();
            tensors.push((format!("ema.{name}"), ema));
        }
        tensors.extend(prior);
        Ok(tensors)
    }

    fn meta(&self) -> LsgmMeta {
        LsgmMeta {
            format: LSGM_FORMAT.into(),
            format_version: LSGM_FORMAT_VERSION,
            medsgm_version: env!("CARGO_PKG_VERSION").into(),
            config: self.config.clone(),
            vae_step: self.vae_step,
            prior_step: self.prior_step,
            vae_losses: self.vae_losses.clone(),
            prior_losses: self.prior_losses.clone(),
            dataset: self.data.describe(),
        }
    }

    /// Writes the model checkpoint (weights, prior EMA, configuration, loss histories).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        write_safetensors_atomic(path, &self.checkpoint_tensors()?, &self.meta())
    }

    /// Writes the resumable state: the checkpoint plus both optimisers' Adam moments
    /// (`adam.vae.*`, `adam.prior.*`) and step counts.
    pub fn save_state(&self, path: &Path) -> anyhow::Result<()> {
        let mut tensors = self.checkpoint_tensors()?;
        tensors.extend(self.vae_adam.state_tensors("adam.vae"));
        tensors.extend(self.prior_adam.state_tensors("adam.prior"));
        let meta = LsgmStateMeta {
            format: LSGM_STATE_FORMAT.into(),
            checkpoint: self.meta(),
            vae_adam_t: self.vae_adam.t,
            prior_adam_t: self.prior_adam.t,
        };
        write_safetensors_atomic(path, &tensors, &meta)
    }

    /// Writes into `dir` the checkpoint `lsgm.safetensors`, the resumable state
    /// `train_state.safetensors`, `train_log.csv` (`stage,step,loss`), the per-stage loss
    /// curves `loss_vae.png`, `loss_prior.png` and `loss.png` (the stage running).
    pub fn save_all(&self, dir: &Path) -> anyhow::Result<()> {
        self.save(&dir.join(LSGM_CHECKPOINT_FILE))?;
        self.save_state(&dir.join(STATE_FILE))?;
        let log = loss_log_csv(&[("vae", &self.vae_losses), ("prior", &self.prior_losses)]);
        write_bytes_atomic(&dir.join(LOG_FILE), log.as_bytes())?;
        for (file, losses) in [
            ("loss_vae.png", &self.vae_losses),
            ("loss_prior.png", &self.prior_losses),
        ] {
            if !losses.is_empty() {
                write_loss_curve(&dir.join(file), losses)?;
            }
        }
        let current = if self.prior_losses.is_empty() {
            &self.vae_losses
        } else {
            &self.prior_losses
        };
        write_loss_curve(&dir.join(LOSS_FILE), current)
    }

    /// Draws `config.sample_n` images with the EMA prior (latent RK45 ODE, seed
    /// `config.seed`) and writes the grid `samples_<stage-2 step>.png` into `dir`.
    pub fn write_samples(&self, dir: &Path) -> anyhow::Result<()> {
        let prior = self.ema_prior()?;
        let ode = OdeConfig {
            seed: self.config.seed,
            ..OdeConfig::default()
        };
        let out = sample(
            &self.vae,
            &prior,
            &self.config,
            self.config.sample_n,
            &ode,
            &self.device,
        )?;
        let images = tensor_images(&out.images)?;
        let cols = (images.len() as f64).sqrt().ceil() as usize;
        write_image_grid(
            &dir.join(format!("samples_{:07}.png", self.prior_step)),
            &images,
            cols,
        )
    }

    /// Runs stage 1 to `vae_steps`, then stage 2 (disjoint or joint) to `prior_steps`, with
    /// the progress bar and checkpoint cadence of pixel-space training
    /// ([`crate::train::progress::drive`]): everything of [`LsgmTrainer::save_all`] every
    /// `ckpt_every` steps and at the end of each stage, sample grids every `sample_every`
    /// stage-2 steps.
    pub fn run(&mut self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let vae = StepSchedule {
            label: "vae".into(),
            total: self.config.vae_steps,
            ckpt_every: self.config.ckpt_every,
            sample_every: 0,
        };
        let save = |t: &Self| t.save_all(dir);
        drive(
            self,
            &vae,
            &|t| t.vae_step,
            &mut |t| t.vae_step_once(),
            &save,
            &|_| Ok(()),
        )?;
        let prior = StepSchedule {
            label: match self.config.stage2 {
                Stage2::Disjoint => "prior".into(),
                Stage2::Joint => "joint".into(),
            },
            total: self.config.prior_steps,
            ckpt_every: self.config.ckpt_every,
            sample_every: self.config.sample_every,
        };
        drive(
            self,
            &prior,
            &|t| t.prior_step,
            &mut |t| match t.config.stage2 {
                Stage2::Disjoint => t.prior_step_once(),
                Stage2::Joint => Ok(t.joint_step_once()?.1),
            },
            &save,
            &|t| t.write_samples(dir),
        )
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
