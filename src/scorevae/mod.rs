//! ScoreVAE (paper 001; method digest §8): a compact latent code per slice from a *frozen*
//! pixel score prior. Only a time-dependent encoder q_{t,φ}(z | x_t) is trained; the decoder
//! is the prior's reverse SDE with the score s_θ(x_t, t) + ∇ₓ log q_{t,φ}(z | x_t) (Bayes' rule
//! for scores, [`medsgm_recon::conditional`]).
//!
//! - [`encoder`]: the encoder network and its closed-form input gradient;
//! - [`config`]: the TOML training configuration (`[encoder]` table, β, the prior);
//! - [`correction`]: the ScoreVAE+ correction c_ψ added to the decoder's score;
//! - [`networks`]: a checkpoint's networks built together, and the latent posterior they give;
//! - [`trainer`]: training against the frozen prior, checkpoints and resumption;
//! - [`codec`]: encoding images and decoding codes; [`eval`]: reconstruction quality beside
//!   the LSGM's VAE; [`files`]: the images, stacks, codes and table of `encode`/`decode`;
//!   [`run`]: the `encode` and `decode` runs.

pub mod codec;
pub mod config;
pub mod correction;
pub mod encoder;
pub mod eval;
pub mod files;
pub mod networks;
pub mod run;
pub mod trainer;

pub use codec::{decode, encode, ScoreVae};
pub use config::ScoreVaeConfig;
pub use encoder::{EncoderConfig, TimeEncoder};
pub use networks::EncoderPosterior;
