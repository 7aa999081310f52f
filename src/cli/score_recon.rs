//! The score-based methods' flags of `medsgm recon {ct,mri,mar}` ([`ScoreArgs`]): the sampler
//! parameters (resolved with the `--config` task config and the defaults), the model and the
//! measured image's units. The reconstruction itself is [`crate::reconstruct::score`].

use crate::cli::{invalid, InputContext};
use crate::eval::method::{MethodParams, TaskConfig};
use crate::model::LoadedModel;
use crate::reconstruct::score::Units;
use crate::scorevae::codec::latent_condition;
use crate::task::{Method, Problem};
use anyhow::Result;
use clap::Args;
use medsgm_recon::{InverseConfig, InverseMethod};
use std::path::PathBuf;

/// Options of the score-based methods. The sampler parameters (N, M, r, λ, ρ, K, t₀, η, γ, CG iterations, ζ) come from
/// their flags when given, else from the method's table of the `--config` task config, else
/// from the defaults of [`MethodParams::defaults`].
#[derive(Debug, Clone, Args)]
pub struct ScoreArgs {
    /// Trained score model (.safetensors) for the score-based methods.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Problem config with per-method parameters (written by `medsgm tune`, e.g.
    /// configs/tuned_ct_128.toml for models/ct_phantom_128): the `[method]` table supplies
    /// every sampler parameter not given as a flag.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Sampler time steps N [default: 500].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Corrector steps M per time step [default: 1].
    #[arg(long)]
    pub corrector_steps: Option<usize>,
    /// Corrector signal-to-noise ratio r [default: 0.16].
    #[arg(long)]
    pub snr: Option<f64>,
    /// λ ∈ [0, 1] of the data-consistency step (Theorem 8.1; projection methods) [default: 1].
    #[arg(long)]
    pub lambda: Option<f64>,
    /// Likelihood weight ρ (score-sde and langevin baselines) [default: 1].
    #[arg(long)]
    pub rho: Option<f64>,
    /// Posterior samples K; K > 1 also writes the per-pixel standard deviation `<out>_std`
    /// [default: 1].
    #[arg(long)]
    pub samples: Option<usize>,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Start time t₀ ∈ (0, 1] of the sampler: 1 starts from the prior (the paper); below 1 a
    /// warm start from the measured-data estimate noised to level t₀, with all N steps on
    /// [ε, t₀] [default: 1].
    #[arg(long)]
    pub t_start: Option<f64>,
    /// dds, diffpir: stochasticity η ∈ [0, 1] of the re-noising [default: 0.85].
    #[arg(long)]
    pub eta: Option<f64>,
    /// dds, diffpir: data weight γ ≥ 0 relative to ‖A‖² (diffpir: γ σ̄_t²) [default: 10].
    #[arg(long)]
    pub gamma: Option<f64>,
    /// dds, diffpir: conjugate-gradient iterations of the data step [default: 5].
    #[arg(long)]
    pub cg_iterations: Option<usize>,
    /// dps: guidance step size ζ [default: 1].
    #[arg(long)]
    pub zeta: Option<f64>,
    /// Intensity units of the measured image (see the module documentation).
    #[arg(long, value_enum)]
    pub units: Option<Units>,
    /// ScoreVAE encoder (written by `medsgm train` with an `[encoder]` config against
    /// `--model`): with `--code`, the prior is conditioned on that code (paper 001), so a latent
    /// plus this measurement decode to a slice consistent with both.
    #[arg(long, requires = "code")]
    pub encoder: Option<PathBuf>,
    /// The code to condition on (`medsgm encode` output: `[k]` or `[1, k]` values); single-file
    /// reconstruction only.
    #[arg(long, requires = "encoder")]
    pub code: Option<PathBuf>,
}

impl ScoreArgs {
    /// The score-method flags given on the command line (they are errors with a classical
    /// method; `--config` is shared with FISTA-TV and `--seed` has a default).
    pub fn given_flags(&self) -> Vec<&'static str> {
        [
            ("--model", self.model.is_some()),
            ("--steps", self.steps.is_some()),
            ("--corrector-steps", self.corrector_steps.is_some()),
            ("--snr", self.snr.is_some()),
            ("--lambda", self.lambda.is_some()),
            ("--rho", self.rho.is_some()),
            ("--samples", self.samples.is_some()),
            ("--t-start", self.t_start.is_some()),
            ("--eta", self.eta.is_some()),
            ("--gamma", self.gamma.is_some()),
            ("--cg-iterations", self.cg_iterations.is_some()),
            ("--zeta", self.zeta.is_some()),
            ("--units", self.units.is_some()),
            ("--encoder", self.encoder.is_some()),
            ("--code", self.code.is_some()),
        ]
        .into_iter()
        .filter_map(|(flag, given)| given.then_some(flag))
        .collect()
    }

    /// Checks the model path and the resolved sampler parameters of `method` for `task`
    /// (invalid input).
    pub fn validate(&self, task: Problem, method: InverseMethod) -> Result<()> {
        if self.model.is_none() {
            return Err(invalid(
                "score-based methods need --model <checkpoint.safetensors>",
            ));
        }
        match self.config(task, method)?.out_of_range() {
            None => Ok(()),
            Some(r) => Err(invalid(format!(
                "{} (from the flag or the --config table)",
                r.flag_message()
            ))),
        }
    }

    /// The solver configuration of `method` for `task`: flags, then the `--config` table, then
    /// the defaults (invalid input when the config cannot be read or has bad entries).
    pub fn config(&self, task: Problem, method: InverseMethod) -> Result<InverseConfig> {
        let eval_method: Method = method.name().parse().map_err(invalid)?;
        let base = match &self.config {
            Some(path) => TaskConfig::load(path, false)
                .and_then(|c| c.params(task, eval_method))
                .invalid_input()?,
            None => MethodParams::defaults(task),
        };
        Ok(InverseConfig {
            method,
            steps: self.steps.unwrap_or(base.steps),
            corrector_steps: self.corrector_steps.unwrap_or(base.corrector_steps),
            snr: self.snr.unwrap_or(base.snr),
            lambda: self.lambda.unwrap_or(base.lambda),
            rho: self.rho.unwrap_or(base.rho),
            seed: self.seed,
            samples: self.samples.unwrap_or(base.samples),
            t_start: self.t_start.unwrap_or(base.t_start),
            eta: self.eta.unwrap_or(base.eta),
            gamma: self.gamma.unwrap_or(base.gamma),
            cg_iterations: self.cg_iterations.unwrap_or(base.cg_iterations),
            zeta: self.zeta.unwrap_or(base.zeta),
        })
    }

    /// Loads the model, conditioned on `--code` when an `--encoder` is given (invalid input
    /// when missing, corrupt or mismatched).
    pub fn load_model(&self) -> Result<LoadedModel> {
        let Some(p) = &self.model else {
            return Err(invalid(
                "score-based methods need --model <checkpoint.safetensors>",
            ));
        };
        let mut model = LoadedModel::load(p)?;
        if let (Some(encoder), Some(code)) = (&self.encoder, &self.code) {
            model.condition = Some(
                latent_condition(encoder, code, &model, p)
                    .map_err(|e| invalid(format!("{e:#}")))?,
            );
        }
        Ok(model)
    }
}
