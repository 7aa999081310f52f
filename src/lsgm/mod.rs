//! Latent score-based generative model (LSGM, Vahdat et al. 2021; method digest §7):
//! a convolutional VAE for 1-channel slices ([`vae`]), an NCSN++ prior in its latent space with
//! the mixed score parameterisation ([`prior`]) and the disjoint two-stage training
//! ([`trainer`]: VAE with a N(0, I) prior, then the score prior with importance-sampled t, or
//! end-to-end), latent sampling by the probability-flow ODE followed by decoding, and
//! inverse problems with data consistency through the decoder ([`inverse`]).
//! The objectives, weightings and IS proposals live in `medsgm_recon::lsgm`.

pub mod bound;
pub mod config;
pub mod inverse;
pub mod prior;
pub mod trainer;
pub mod vae;

pub use bound::{bound_draws, nelbo_ode, BoundDraws, Nelbo};
pub use config::{EncoderTime, LsgmConfig, Stage2, VaeConfig};
pub use inverse::{latent_decomposed_solve, latent_solve, LatentDcConfig, LatentReconstruction};
pub use prior::{LatentPrior, NetEps};
pub use trainer::{sample, LatentSamples, LsgmCheckpoint, LsgmMeta, LsgmTrainer};
pub use vae::{Posterior, Vae};
