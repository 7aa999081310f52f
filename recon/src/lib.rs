//! # medsgm-recon — SDEs, samplers and score-based inverse-problem solvers
//!
//! The score model is a trait; samplers and solvers are generic over it and over any
//! decomposed measurement operator A = P(Λ)T from `medsgm-operators`.
//!
//! Score-SDE core (method digest §1–3): [`sde`] (VE, VP, sub-VP, geometric VP), [`score`]
//! (the [`ScoreModel`] trait) with exact Gaussian / mixture scores in [`exact_score`], seeded
//! tensor noise in [`noise`];
//! [`predictor`]s, [`corrector`]s and the [`pc_sampler`] ending with [`denoise`].

pub mod batch;
pub mod corrector;
pub mod denoise;
pub mod dsm;
pub mod error;
pub mod exact_score;
pub mod likelihood;
pub mod noise;
pub mod ode_sampler;
pub mod ode_solver;
pub mod pc_sampler;
pub mod predictor;
pub mod projection;
pub mod score;
pub mod sde;
pub mod sigma_max;

pub use dsm::{dsm_loss, DsmWeighting};
pub use error::{ReconError, Result};
pub use exact_score::{GaussianScore, GmmScore};
pub use noise::Noise;
pub use pc_sampler::{NoHook, PcConfig, PcSampler, Samples, Stage, StepHook};
pub use score::ScoreModel;
pub use sde::{time_grid, Discretization, GeometricVpSde, Sde, SdeConfig, SubVpSde, VeSde, VpSde};
pub use sigma_max::propose_sigma_max;
