//! Training the ScoreVAE encoder against a frozen pixel prior (paper 001 Alg. 1; method digest
//! §8), per step:
//!
//! 1. x₀ from the data; (μ₀, log σ₀²) = e_φ(x₀, ε); z = μ₀ + σ₀ ξ (the encoder on clean data);
//! 2. t ~ U(ε, 1), x_t = m(t) x₀ + s(t) n;
//! 3. the decoder's score s_θ(x_t, t) + ∇ₓ log q_{t,φ}(z | x_t) (prior frozen, no gradient);
//! 4. loss = ½ ‖n + s(t)(s_θ + ∇ₓ log q)‖² + β KL(N(μ₀, σ₀²) ‖ N(0, I)), averaged over the batch:
//!    denoising score matching with the λ(t) = s(t)² weighting the paper trains with.
//!
//! The log also records the prior's own DSM term on the same draws: the drop from it to the
//! decoder's is what the code tells the prior about the image.
//!
//! ScoreVAE+ (`[correction]` with `encoder_from`): the encoder is loaded from a trained
//! checkpoint and frozen; only the correction c_ψ is trained, with the DSM term of step 4
//! using s_θ + ∇ₓ log q + c_ψ ([`super::correction`]).

use super::config::ScoreVaeConfig;
use super::correction::Correction;
use super::encoder::TimeEncoder;
use super::networks::{build_networks, CORRECTION_PREFIX};
use crate::checkpoint::{read_safetensors, write_safetensors_atomic, Normalization};
use crate::model::LoadedModel;
use crate::train::data::{build_source, image_seed, DataSource};
use crate::train::optim::{Adam, AdamConfig};
use anyhow::{Context, Result};
use candle_core::{Device, Tensor, Var};
use candle_nn::VarMap;
use medsgm_recon::{Noise, ScoreModel, Sde};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

/// `format` of a ScoreVAE encoder checkpoint.
pub const SCOREVAE_FORMAT: &str = "medsgm-scorevae";
/// `format` of its training state.
pub const SCOREVAE_STATE_FORMAT: &str = "medsgm-scorevae-state";
/// The encoder checkpoint's file name in a run folder.
pub const ENCODER_FILE: &str = "encoder.safetensors";
/// The training state's file name.
pub const STATE_FILE: &str = "train_state.safetensors";

/// What an encoder checkpoint says about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScoreVaeMeta {
    /// [`SCOREVAE_FORMAT`] (or the state format).
    pub format: String,
    /// The training configuration.
    pub config: ScoreVaeConfig,
    /// The frozen prior's description (network, SDE, steps, data).
    pub prior_description: String,
    /// The images' normalisation (the prior's).
    pub normalization: Normalization,
    /// The training data.
    pub dataset: String,
    /// Steps trained.
    pub step: u64,
}

/// The encoder being trained with the frozen prior, the data and the optimiser.
pub struct ScoreVaeTrainer {
    config: ScoreVaeConfig,
    prior: LoadedModel,
    data: Box<dyn DataSource>,
    varmap: VarMap,
    encoder: TimeEncoder,
    correction: Option<Correction>,
    adam: Adam,
    step: u64,
    device: Device,
}

/// Per-step losses.
#[derive(Debug, Clone, Copy)]
pub struct StepLoss {
    /// ½‖n + s(t)(s_θ + ∇ log q)‖² per image.
    pub dsm: f64,
    /// The same for the prior alone, ½‖n + s(t) s_θ‖².
    pub dsm_prior: f64,
    /// KL(q(z | x₀) ‖ N(0, I)) per image.
    pub kl: f64,
}

/// The trainable variables: the encoder's, or for ScoreVAE+ (`plus`) only the correction's
/// (the Fourier frequencies stay fixed).
fn trainable(varmap: &VarMap, plus: bool) -> Vec<(String, Var)> {
    let data = varmap.data().lock().expect("variable map lock");
    let mut v: Vec<(String, Var)> = data
        .iter()
        .filter(|(n, _)| !n.ends_with(crate::nn::embedding::FOURIER_WEIGHT))
        .filter(|(n, _)| n.starts_with(&format!("{CORRECTION_PREFIX}.")) == plus)
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

impl ScoreVaeTrainer {
    /// A new run: loads the prior, checks it against the configuration, builds the data and a
    /// fresh encoder (seeded).
    pub fn new(config: ScoreVaeConfig, device: &Device) -> Result<Self> {
        let prior = LoadedModel::load(&config.prior)
            .with_context(|| format!("the prior {}", config.prior.display()))?;
        anyhow::ensure!(
            prior.channels() == 1 && prior.image_size() == config.encoder.image_size,
            "encoder.image_size {} must equal the prior's {} (single channel)",
            config.encoder.image_size,
            prior.image_size()
        );
        anyhow::ensure!(
            prior.meta.normalization == config.data.normalization(),
            "the data's normalisation {:?} differs from the prior's {:?}",
            config.data.normalization(),
            prior.meta.normalization
        );
        let data = build_source(&config.data, config.encoder.image_size, config.seed)?;
        let varmap = VarMap::new();
        let (encoder, correction) = build_networks(
            &config,
            crate::nn::init::seeded_var_builder(&varmap, config.seed, device),
        )?;
        if let Some(from) = &config.encoder_from {
            frozen_encoder(&config, from, &varmap, device)
                .with_context(|| format!("encoder_from {}", from.display()))?;
        }
        let plus = correction.is_some();
        let adam = Adam::new(Self::adam_config(&config), &trainable(&varmap, plus))?;
        Ok(Self {
            config,
            prior,
            data,
            varmap,
            encoder,
            correction,
            adam,
            step: 0,
            device: device.clone(),
        })
    }

    /// Resumes from a state file written by [`ScoreVaeTrainer::save`]: the configuration must
    /// be the same but for `steps`.
    pub fn resume(config: ScoreVaeConfig, state: &Path, device: &Device) -> Result<Self> {
        let (tensors, meta): (_, ScoreVaeMeta) = read_safetensors(state, device)?;
        anyhow::ensure!(
            meta.format == SCOREVAE_STATE_FORMAT,
            "{} is not a ScoreVAE training state (format {:?})",
            state.display(),
            meta.format
        );
        let mut old = meta.config.clone();
        old.steps = config.steps;
        anyhow::ensure!(
            old == config,
            "the configuration differs from the run's (only steps may change on --resume)"
        );
        let mut t = Self::new(config, device)?;
        for (name, var) in t.varmap.data().lock().expect("variable map lock").iter() {
            let v = tensors
                .get(name)
                .with_context(|| format!("{}: no tensor {name}", state.display()))?;
            var.set(v)?;
        }
        t.adam.restore("adam", meta.step, &|name: &str| {
            tensors
                .get(name)
                .cloned()
                .with_context(|| format!("{}: no tensor {name}", state.display()))
        })?;
        t.step = meta.step;
        Ok(t)
    }

    fn adam_config(c: &ScoreVaeConfig) -> AdamConfig {
        AdamConfig {
            lr: c.lr,
            warmup: c.warmup,
            grad_clip: c.grad_clip,
            ..AdamConfig::default()
        }
    }

    /// Steps taken.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// The configuration.
    pub fn config(&self) -> &ScoreVaeConfig {
        &self.config
    }

    /// The encoder.
    pub fn encoder(&self) -> &TimeEncoder {
        &self.encoder
    }

    /// Trainable parameter count.
    pub fn parameters(&self) -> usize {
        trainable(&self.varmap, self.correction.is_some())
            .iter()
            .map(|(_, v)| v.elem_count())
            .sum()
    }

    /// One optimisation step (see the module documentation).
    pub fn train_step(&mut self) -> Result<StepLoss> {
        self.step += 1;
        let (b, size) = (self.config.batch_size, self.config.encoder.image_size);
        let sde: &dyn Sde = self.prior.sde.as_ref();
        let mut images = Vec::with_capacity(b * size * size);
        for i in 0..b {
            images.extend(self.data.image(self.step, i)?.iter().copied());
        }
        let x0 = Tensor::from_vec(images, (b, 1, size, size), &self.device)?;
        let mut noise = Noise::new(image_seed(self.config.seed ^ 0x05c0_e5ae, self.step, 0));
        let eps = sde.t_min_train();
        let sigma0 = Tensor::full(sde.std(eps) as f32, b, &self.device)?;
        let m0 = self.encoder.moments(&x0, &sigma0)?;
        let xi = noise.randn_like(&m0.mean)?;
        let z = (&m0.mean + (m0.log_var.affine(0.5, 0.0)?.exp()? * xi)?)?;
        // ScoreVAE+: the encoder is frozen, so its code and gradient carry no graph
        let plus = self.correction.is_some();
        let z = if plus { z.detach() } else { z };
        let ts: Vec<f64> = (0..b)
            .map(|_| eps + (1.0 - eps) * noise.rng().random::<f64>())
            .collect();
        let (m, s): (Vec<f64>, Vec<f64>) =
            ts.iter().map(|&t| (sde.mean_coef(t), sde.std(t))).unzip();
        let n = noise.randn_like(&x0)?;
        let per = |v: &[f64]| medsgm_recon::batch::per_sample(v, &x0);
        let xt = (x0.broadcast_mul(&per(&m)?)? + n.broadcast_mul(&per(&s)?)?)?;
        let t = Tensor::from_vec(
            ts.iter().map(|&t| t as f32).collect::<Vec<_>>(),
            b,
            &self.device,
        )?;
        let prior_score = self.prior.score().score(&xt, &t)?.detach();
        let sigma_t = Tensor::from_vec(
            s.iter().map(|&v| v as f32).collect::<Vec<_>>(),
            b,
            &self.device,
        )?;
        let gq = self.encoder.grad_log_q_sigma(&xt, &z, &sigma_t)?;
        let gq = match &self.correction {
            Some(c) => (gq.detach() + c.forward(&xt, &z, &sigma_t)?)?,
            None => gq,
        };
        let s_b = per(&s)?;
        let half_sq =
            |r: &Tensor| -> Result<Tensor> { Ok((r.sqr()?.sum_all()? * (0.5 / b as f64))?) };
        let prior_res = (&n + prior_score.broadcast_mul(&s_b)?)?;
        let res = (&prior_res + gq.broadcast_mul(&s_b)?)?;
        let dsm = half_sq(&res)?;
        let kl = ((m0.mean.sqr()? + m0.log_var.exp()?)? - (m0.log_var + 1.0)?)?
            .sum_all()?
            .affine(0.5 / b as f64, 0.0)?;
        let loss = if plus {
            dsm.clone()
        } else {
            (&dsm + kl.affine(self.config.beta, 0.0)?)?
        };
        let grads = loss.backward()?;
        self.adam.step(&trainable(&self.varmap, plus), &grads)?;
        let out = StepLoss {
            dsm: dsm.to_scalar::<f32>()? as f64,
            dsm_prior: half_sq(&prior_res)?.to_scalar::<f32>()? as f64,
            kl: kl.to_scalar::<f32>()? as f64,
        };
        anyhow::ensure!(
            out.dsm.is_finite() && out.kl.is_finite(),
            "non-finite loss at step {} (dsm {}, kl {})",
            self.step,
            out.dsm,
            out.kl
        );
        Ok(out)
    }

    fn meta(&self, format: &str) -> ScoreVaeMeta {
        ScoreVaeMeta {
            format: format.into(),
            config: self.config.clone(),
            prior_description: self.prior.describe(),
            normalization: self.prior.meta.normalization.clone(),
            dataset: self.data.describe(),
            step: self.step,
        }
    }

    fn weights(&self) -> Vec<(String, Tensor)> {
        let data = self.varmap.data().lock().expect("variable map lock");
        let mut w: Vec<(String, Tensor)> = data
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
            .collect();
        w.sort_by(|a, b| a.0.cmp(&b.0));
        w
    }

    /// Writes the encoder checkpoint and the resumable state into `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let weights = self.weights();
        write_safetensors_atomic(
            &dir.join(ENCODER_FILE),
            &weights,
            &self.meta(SCOREVAE_FORMAT),
        )?;
        let mut state = weights;
        state.extend(self.adam.state_tensors("adam"));
        write_safetensors_atomic(
            &dir.join(STATE_FILE),
            &state,
            &self.meta(SCOREVAE_STATE_FORMAT),
        )
    }

    /// Trains to `config.steps`, appending `step,dsm,dsm_prior,kl` to `train_log.csv`,
    /// checkpointing every `ckpt_every` steps and at the end, and plotting `loss.png`.
    pub fn run(&mut self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let log_path = dir.join("train_log.csv");
        if self.step == 0 || !log_path.exists() {
            std::fs::write(&log_path, "step,dsm,dsm_prior,kl\n")?;
        }
        let mut log = std::fs::OpenOptions::new().append(true).open(&log_path)?;
        let total = self.config.steps;
        let bar = crate::progress::progress(total, "ScoreVAE steps");
        bar.set_position(self.step);
        while self.step < total {
            let l = self.train_step()?;
            writeln!(log, "{},{},{},{}", self.step, l.dsm, l.dsm_prior, l.kl)?;
            bar.inc(1);
            if self.step.is_multiple_of(self.config.ckpt_every) || self.step == total {
                log.flush()?;
                self.save(dir)?;
            }
        }
        bar.finish_and_clear();
        log.flush()?;
        write_loss_plot(&log_path, &dir.join("loss.png"))
    }
}

/// Sets the encoder variables of `varmap` from the checkpoint `from` (ScoreVAE+): a plain
/// ScoreVAE encoder trained against the same prior with the same `[encoder]` sizes.
fn frozen_encoder(
    config: &ScoreVaeConfig,
    from: &Path,
    varmap: &VarMap,
    device: &Device,
) -> Result<()> {
    let (tensors, meta): (_, ScoreVaeMeta) = read_safetensors(from, device)?;
    anyhow::ensure!(
        meta.format == SCOREVAE_FORMAT && meta.config.correction.is_none(),
        "not a ScoreVAE encoder checkpoint without a correction (format {:?})",
        meta.format
    );
    anyhow::ensure!(
        meta.config.encoder == config.encoder && meta.config.prior == config.prior,
        "its [encoder] sizes or prior differ from this configuration's"
    );
    for (name, var) in varmap.data().lock().expect("variable map lock").iter() {
        if name.starts_with(&format!("{CORRECTION_PREFIX}.")) {
            continue;
        }
        let t = tensors
            .get(name)
            .with_context(|| format!("no tensor {name}"))?;
        anyhow::ensure!(
            t.dims() == var.dims(),
            "tensor {name} is {:?}, expected {:?}",
            t.dims(),
            var.dims()
        );
        var.set(t)?;
    }
    Ok(())
}

/// Plots the decoder's DSM term (moving average over 50 steps) from `train_log.csv`.
fn write_loss_plot(log: &Path, png: &Path) -> Result<()> {
    let text = std::fs::read_to_string(log)?;
    let rows: Vec<(u64, f64)> = text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split(',');
            Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
        })
        .collect();
    let smoothed: Vec<(u64, f64)> = rows
        .iter()
        .enumerate()
        .map(|(i, &(s, _))| {
            let lo = i.saturating_sub(49);
            let w = &rows[lo..=i];
            (s, w.iter().map(|r| r.1).sum::<f64>() / w.len() as f64)
        })
        .collect();
    crate::train::plot::write_loss_curve(png, &smoothed)
}
