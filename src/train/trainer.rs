//! The DSM training loop (method digest §2): t ~ U(ε, 1) per sample, x_t = m(t) x₀ + s(t) z,
//! per-sample loss ½ λ(t)/s(t)² ‖s(t) s_θ(x_t, t) + z‖² (λ = s² or g²), batch mean; Adam with
//! warm-up and clipping, EMA. Every random draw of step k comes from streams seeded by
//! (seed, k), so a run resumed from its state file continues bit for bit.

use super::config::{TrainConfig, Weighting};
use super::data::{image_seed, DataSource};
use super::learned_schedule::{learned_loss, TrainableGamma};
use super::optim::{Adam, Ema};
use super::plot::{tensor_images, write_image_grid, write_loss_curve};
use super::progress::{drive, loss_log_csv, StepSchedule};
use crate::checkpoint::{read_safetensors, write_safetensors_atomic, Checkpoint, CheckpointMeta};
use crate::nn::embedding::FOURIER_WEIGHT;
use crate::nn::score::NetScore;
use crate::nn::Ncsnpp;
use anyhow::{bail, Context};
use candle_core::{Device, Tensor, Var};
use candle_nn::VarMap;
use medsgm_recon::{Sde, SdeConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// `format` of training-state files.
pub const STATE_FORMAT: &str = "medsgm-train-state";
/// File names written into the output directory.
pub const CHECKPOINT_FILE: &str = "model.safetensors";
/// Resumable state (weights, EMA, Adam moments, step, loss history).
pub const STATE_FILE: &str = "train_state.safetensors";
/// Loss-curve plot.
pub const LOSS_FILE: &str = "loss.png";
/// Training log: one `step,loss` line per optimiser step.
pub const LOG_FILE: &str = "train_log.csv";

/// Stream tags separating the noise and dropout streams from the data stream.
const NOISE_STREAM: u64 = 0x6E6F_6973_6500_0001;
const DROPOUT_STREAM: u64 = 0x6472_6F70_0000_0002;

#[derive(Serialize, Deserialize)]
struct StateMeta {
    format: String,
    medsgm_version: String,
    config: TrainConfig,
    step: u64,
    losses: Vec<(u64, f64)>,
}

/// A training run in memory.
pub struct Trainer {
    config: TrainConfig,
    sde: Box<dyn Sde>,
    net: Ncsnpp,
    params: Vec<(String, Var)>,
    map: VarMap,
    adam: Adam,
    ema: Ema,
    data: Box<dyn DataSource>,
    device: Device,
    step: u64,
    losses: Vec<(u64, f64)>,
    schedule: Option<ScheduleTraining>,
}

/// A learned noise schedule γ_η being trained with the network (its own Adam moments).
struct ScheduleTraining {
    gamma: TrainableGamma,
    params: Vec<(String, Var)>,
    adam: Adam,
}

/// One training batch: images `[B, C, S, S]` in [0, 1] and, per image, its centre's offset
/// (row, column, pixels) from the centre of the slice it was cut from (`[B, 2]`, for
/// positional networks; zeros for whole images).
pub struct Batch {
    /// The images.
    pub images: Tensor,
    /// The patch centres.
    pub centres: Tensor,
}

/// State-file prefix of the schedule's Adam moments.
const SCHEDULE_ADAM: &str = "adam_schedule";

/// Trainable variables of `map` sorted by name (the fixed Fourier matrix excluded).
fn trainable(map: &VarMap) -> Vec<(String, Var)> {
    let data = map.data().lock().map(|d| d.clone()).unwrap_or_default();
    let mut v: Vec<(String, Var)> = data
        .into_iter()
        .filter(|(n, _)| !n.ends_with(FOURIER_WEIGHT))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Sets every variable of `map` to the EMA weights of the checkpoint `path` (fine-tuning a
/// prior on new data). Every tensor must exist there with the same shape — so the training
/// size and attention placement may differ, the layers may not — except that a positional
/// network may start from a plain one: the first convolution's weights for the two positional
/// channels start at zero, so the network starts as the plain one.
fn init_weights(map: &VarMap, path: &Path, device: &Device) -> anyhow::Result<()> {
    let ck =
        Checkpoint::load(path, device).with_context(|| format!("init_from {}", path.display()))?;
    let data = map
        .data()
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned VarMap"))?;
    for (name, var) in data.iter() {
        let mut t = ck
            .ema
            .get(name)
            .with_context(|| format!("init_from {}: tensor {name} is missing", path.display()))?
            .to_device(device)?;
        let (want, have) = (var.dims().to_vec(), t.dims().to_vec());
        if name == CONV_IN_WEIGHT && want.len() == 4 && have.len() == 4 && want[1] > have[1] {
            let extra = Tensor::zeros(
                (want[0], want[1] - have[1], want[2], want[3]),
                t.dtype(),
                device,
            )?;
            t = Tensor::cat(&[&t, &extra], 1)?;
        }
        if t.dims() != var.dims() {
            bail!(
                "init_from {}: tensor {name} has shape {have:?}, the configured network needs {want:?}",
                path.display()
            )
        }
        var.set(&t)
            .with_context(|| format!("init_from {}: {name}", path.display()))?;
    }
    Ok(())
}

/// Checkpoint key of the first convolution's weights (`[nf, input channels, 3, 3]`).
const CONV_IN_WEIGHT: &str = "conv_in.weight";

impl Trainer {
    /// A fresh run: network initialised from `config.seed`, zero Adam moments, EMA = weights.
    pub fn new(
        config: TrainConfig,
        data: Box<dyn DataSource>,
        device: &Device,
    ) -> anyhow::Result<Self> {
        config.validate()?;
        let sde = config.sde.build()?;
        let map = VarMap::new();
        let net = Ncsnpp::init(&config.model, &map, config.seed, device)?;
        if let Some(init) = &config.init_from {
            init_weights(&map, init, device)?;
        }
        let params = trainable(&map);
        let adam = Adam::new(config.adam(), &params)?;
        let ema = Ema::new(config.ema, &params)?;
        let schedule = match &config.sde {
            SdeConfig::Learned(spec) => {
                let gamma = TrainableGamma::new(spec, device)?;
                let params = gamma.params();
                let adam = Adam::new(config.adam(), &params)?;
                Some(ScheduleTraining {
                    gamma,
                    params,
                    adam,
                })
            }
            _ => None,
        };
        Ok(Self {
            config,
            sde,
            net,
            params,
            map,
            adam,
            ema,
            data,
            device: device.clone(),
            step: 0,
            losses: Vec::new(),
            schedule,
        })
    }

    /// Continues a run from its state file (see [`Trainer::save_state`]).
    pub fn resume(
        state: &Path,
        data: Box<dyn DataSource>,
        device: &Device,
    ) -> anyhow::Result<Self> {
        let (tensors, meta): (HashMap<String, Tensor>, StateMeta) =
            read_safetensors(state, device)?;
        if meta.format != STATE_FORMAT {
            bail!(
                "{}: not a training-state file (format '{}')",
                state.display(),
                meta.format
            )
        }
        let mut t = Self::new(meta.config, data, device)?;
        let take = |key: String| {
            tensors
                .get(&key)
                .cloned()
                .with_context(|| format!("{}: tensor {key} is missing", state.display()))
        };
        for (name, var) in t
            .map
            .data()
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned VarMap"))?
            .iter()
        {
            var.set(&take(format!("model.{name}"))?)
                .with_context(|| format!("restoring {name}"))?;
        }
        for (name, _) in &t.params {
            t.ema
                .shadow
                .insert(name.clone(), take(format!("ema.{name}"))?);
        }
        t.adam
            .restore("adam", meta.step, &|key| take(key.to_string()))?;
        if let Some(sched) = &mut t.schedule {
            for (name, var) in &sched.params {
                var.set(&take(name.clone())?)
                    .with_context(|| format!("restoring {name}"))?;
            }
            sched
                .adam
                .restore(SCHEDULE_ADAM, meta.step, &|key| take(key.to_string()))?;
            t.sde = SdeConfig::Learned(sched.gamma.schedule()?).build()?;
        }
        t.step = meta.step;
        t.losses = meta.losses;
        Ok(t)
    }

    /// Writes weights, EMA, Adam moments, step, configuration and loss history atomically.
    pub fn save_state(&self, path: &Path) -> anyhow::Result<()> {
        let mut tensors = Vec::new();
        for (name, var) in self
            .map
            .data()
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned VarMap"))?
            .iter()
        {
            tensors.push((format!("model.{name}"), var.as_tensor().clone()));
        }
        tensors.extend(
            self.ema
                .shadow
                .iter()
                .map(|(n, t)| (format!("ema.{n}"), t.clone())),
        );
        tensors.extend(self.adam.state_tensors("adam"));
        if let Some(sched) = &self.schedule {
            tensors.extend(
                sched
                    .params
                    .iter()
                    .map(|(n, v)| (n.clone(), v.as_tensor().clone())),
            );
            tensors.extend(sched.adam.state_tensors(SCHEDULE_ADAM));
        }
        let meta = StateMeta {
            format: STATE_FORMAT.into(),
            medsgm_version: env!("CARGO_PKG_VERSION").into(),
            config: self.config.clone(),
            step: self.step,
            losses: self.losses.clone(),
        };
        write_safetensors_atomic(path, &tensors, &meta)
    }

    /// The model checkpoint (weights, EMA; fixed buffers are stored in both).
    pub fn checkpoint(&self) -> anyhow::Result<Checkpoint> {
        let weights: HashMap<String, Tensor> = self
            .map
            .data()
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned VarMap"))?
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().detach()))
            .collect();
        let mut ema = weights.clone();
        ema.extend(self.ema.shadow.iter().map(|(n, t)| (n.clone(), t.detach())));
        let mut meta = CheckpointMeta::new(
            self.config.model.clone(),
            self.sde.config(),
            self.config.normalization(),
            self.step,
            self.config.seed,
            self.data.describe(),
        );
        meta.pixel_spacing_mm = self.data.pixel_spacing_mm();
        Ok(Checkpoint { meta, weights, ema })
    }

    /// Continues a resumed run with `config` ([`TrainConfig::resumed_with`]: more steps, new
    /// data, another checkpoint schedule; an error for anything the state cannot honour).
    pub fn continue_with(&mut self, config: &TrainConfig) -> anyhow::Result<()> {
        self.config = self.config.resumed_with(config)?;
        Ok(())
    }

    /// Restarts the weight average at the current weights (e.g. to recover a run whose
    /// average still holds much of the random initialisation).
    pub fn reset_ema(&mut self) -> anyhow::Result<()> {
        Ok(self.ema.reset(&self.params)?)
    }

    /// Description of the training data.
    pub fn describe_data(&self) -> String {
        self.data.describe()
    }

    /// Optimiser steps taken so far.
    pub fn step(&self) -> u64 {
        self.step
    }
    /// `(step, loss)` history.
    pub fn losses(&self) -> &[(u64, f64)] {
        &self.losses
    }
    /// The network (current, not EMA, weights).
    pub fn net(&self) -> &Ncsnpp {
        &self.net
    }
    /// The SDE.
    pub fn sde(&self) -> &dyn Sde {
        self.sde.as_ref()
    }
    /// The configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }
    /// Current trainable parameters by name.
    pub fn parameters(&self) -> BTreeMap<String, Tensor> {
        self.params
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
            .collect()
    }

    /// The training batch of step `step`.
    pub fn batch(&self, step: u64) -> anyhow::Result<Batch> {
        let (b, s) = (self.config.batch_size, self.config.model.image_size);
        let mut data: Vec<f32> = Vec::with_capacity(b * s * s);
        let mut centres: Vec<f32> = Vec::with_capacity(2 * b);
        for i in 0..b {
            let (img, centre) = self.data.image_at(step, i)?;
            if img.dim() != (s, s) {
                bail!(
                    "data source returned a {:?} image, the model expects {s}×{s}",
                    img.dim()
                )
            }
            data.extend(img.iter());
            centres.extend(centre);
        }
        Ok(Batch {
            images: Tensor::from_vec(data, (b, self.config.model.channels, s, s), &self.device)?,
            centres: Tensor::from_vec(centres, (b, 2), &self.device)?,
        })
    }

    /// One step's draws for the batch `x0`: times t ~ U(ε, 1) per sample, then noise z shaped
    /// like `x0` (in this order from `rng`, so runs resume bit for bit).
    fn draw_times_and_noise(
        &self,
        x0: &Tensor,
        rng: &mut ChaCha8Rng,
    ) -> anyhow::Result<(Vec<f64>, Tensor)> {
        let eps = self.sde.t_min_train();
        let ts: Vec<f64> = (0..x0.dim(0)?)
            .map(|_| eps + (1.0 - eps) * rng.random::<f64>())
            .collect();
        let z: Vec<f32> = (0..x0.elem_count())
            .map(|_| StandardNormal.sample(rng))
            .collect();
        Ok((ts, Tensor::from_vec(z, x0.shape(), &self.device)?))
    }

    /// The DSM loss of `batch` with times and noise drawn from `rng` (see the module docs).
    pub fn dsm_loss(
        &self,
        batch: &Batch,
        rng: &mut ChaCha8Rng,
        train: bool,
    ) -> anyhow::Result<Tensor> {
        let x0 = &batch.images;
        let b = x0.dim(0)?;
        let (ts, z) = self.draw_times_and_noise(x0, rng)?;
        let col = |f: &dyn Fn(f64) -> f64| {
            Tensor::from_vec(
                ts.iter().map(|&t| f(t) as f32).collect::<Vec<_>>(),
                b,
                &self.device,
            )
        };
        let mean = col(&|t| self.sde.mean_coef(t))?.reshape((b, 1, 1, 1))?;
        let std = col(&|t| self.sde.std(t))?;
        let std4 = std.reshape((b, 1, 1, 1))?;
        let weight = match self.config.weighting {
            Weighting::SigmaSquared => col(&|_| 1.0)?,
            Weighting::Likelihood => col(&|t| (self.sde.diffusion(t) / self.sde.std(t)).powi(2))?,
        };
        let xt = (x0.broadcast_mul(&mean)? + z.broadcast_mul(&std4)?)?;
        let score = self
            .net
            .forward_at(&xt, Some(&batch.centres), &std, train)?;
        let residual = (score.broadcast_mul(&std4)? + &z)?;
        let per_sample = (residual.sqr()?.flatten_from(1)?.sum(1)? * 0.5)?;
        Ok((per_sample * weight)?.mean_all()?)
    }

    /// The network and schedule updates of one step with a learned schedule (see
    /// [`super::learned_schedule`]): θ descends L_∞, η descends ½ E[L²]; returns the loss.
    fn learned_schedule_step(
        &mut self,
        batch: &Batch,
        rng: &mut ChaCha8Rng,
    ) -> anyhow::Result<f64> {
        let x0 = &batch.images;
        let (ts, z) = self.draw_times_and_noise(x0, rng)?;
        let Some(sched) = &mut self.schedule else {
            bail!("no learned schedule in this run")
        };
        let t = Tensor::from_vec(ts, x0.dim(0)?, &self.device)?;
        let net = &self.net;
        let parts = learned_loss(&sched.gamma, x0, &t, &z, &|x, sigma| {
            net.forward_at(x, Some(&batch.centres), sigma, true)
        })?;
        let value = parts.value()?;
        if !value.is_finite() {
            bail!("non-finite loss {value} at step {}", self.step)
        }
        let grads = parts.loss.backward()?;
        let schedule_grads = parts.schedule_gradient(&grads)?;
        self.adam.step(&self.params, &grads)?;
        sched.adam.step(&sched.params, &schedule_grads)?;
        self.sde = SdeConfig::Learned(sched.gamma.schedule()?).build()?;
        Ok(value)
    }

    /// One optimiser step; returns the batch loss.
    pub fn train_step(&mut self) -> anyhow::Result<f64> {
        let k = self.step;
        let batch = self.batch(k)?;
        let mut rng = ChaCha8Rng::seed_from_u64(image_seed(self.config.seed ^ NOISE_STREAM, k, 0));
        self.net
            .reseed_dropout(image_seed(self.config.seed ^ DROPOUT_STREAM, k, 0));
        let value = if self.schedule.is_some() {
            self.learned_schedule_step(&batch, &mut rng)?
        } else {
            let loss = self.dsm_loss(&batch, &mut rng, true)?;
            let value = loss.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
            if !value.is_finite() {
                bail!("non-finite loss {value} at step {k}")
            }
            self.adam.step(&self.params, &loss.backward()?)?;
            value
        };
        self.ema.update(&self.params, self.step)?;
        self.step += 1;
        self.losses.push((self.step, value));
        Ok(value)
    }

    /// Writes `model.safetensors`, `train_state.safetensors`, `loss.png` and `train_log.csv`
    /// into `dir`.
    pub fn save_all(&self, dir: &Path) -> anyhow::Result<()> {
        self.checkpoint()?.save(&dir.join(CHECKPOINT_FILE))?;
        self.save_state(&dir.join(STATE_FILE))?;
        let log = loss_log_csv(&[("", &self.losses)]);
        crate::io::atomic::write_bytes_atomic(&dir.join(LOG_FILE), log.as_bytes())?;
        write_loss_curve(&dir.join(LOSS_FILE), &self.losses)
    }

    /// Samples `config.sample_n` images with the EMA network and the PC sampler
    /// (reverse diffusion + Langevin, `config.sample_steps` steps) into `samples_<step>.png`.
    pub fn write_samples(&self, dir: &Path) -> anyhow::Result<()> {
        let ck = self.checkpoint()?;
        let net = ck.network(true, &self.device)?;
        let score = NetScore {
            net: &net,
            sde: self.sde.as_ref(),
        };
        let pc = medsgm_recon::PcSampler::new(medsgm_recon::PcConfig {
            steps: self.config.sample_steps,
            seed: self.config.seed,
            ..Default::default()
        })?;
        let s = self.config.model.image_size;
        let shape = [self.config.sample_n, self.config.model.channels, s, s];
        let out = pc.sample(
            self.sde.as_ref(),
            &score,
            &shape,
            &self.device,
            &mut medsgm_recon::NoHook,
            &mut |_, _| {},
        )?;
        let images = tensor_images(&out.samples)?;
        let cols = (self.config.sample_n as f64).sqrt().ceil() as usize;
        write_image_grid(
            &dir.join(format!("samples_{:07}.png", self.step)),
            &images,
            cols,
        )
    }

    /// Trains until `config.steps`, writing checkpoints/state/loss curve every `ckpt_every`
    /// steps and at the end, and sample grids every `sample_every` steps; shows a progress
    /// bar (loss, it/s, ETA) on stderr.
    pub fn run(&mut self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let schedule = StepSchedule {
            label: String::new(),
            total: self.config.steps,
            ckpt_every: self.config.ckpt_every,
            sample_every: self.config.sample_every,
        };
        drive(
            self,
            &schedule,
            &|t| t.step,
            &mut |t| t.train_step(),
            &|t| t.save_all(dir),
            &|t| t.write_samples(dir),
        )
    }
}
