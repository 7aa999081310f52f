//! The score-based methods' flags of `medsgm recon {ct,mri,mar}` ([`ScoreArgs`]): the sampler
//! parameters (resolved with the `--config` task config and the defaults by
//! [`crate::reconstruct::request`]), the model and the measured image's units. The
//! reconstruction itself is [`crate::reconstruct::score`].

use crate::reconstruct::request::SamplerOverrides;
use crate::reconstruct::score::Units;
use clap::Args;
use std::path::PathBuf;

/// Options of the score-based methods. The sampler parameters (N, M, r, λ, ρ, K, t₀, η, γ, CG iterations, ζ) come from
/// their flags when given, else from the method's table of the `--config` task config, else
/// from the defaults of [`crate::eval::method::MethodParams::defaults`].
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
    /// The sampler parameters as given.
    pub fn overrides(&self) -> SamplerOverrides {
        SamplerOverrides {
            steps: self.steps,
            corrector_steps: self.corrector_steps,
            snr: self.snr,
            lambda: self.lambda,
            rho: self.rho,
            samples: self.samples,
            t_start: self.t_start,
            eta: self.eta,
            gamma: self.gamma,
            cg_iterations: self.cg_iterations,
            zeta: self.zeta,
        }
    }
}
