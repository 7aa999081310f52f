//! # LSGM building blocks — latent score-based generative models (Vahdat et al. 2021)
//!
//! Method digest §7; paper `lsgm-score-based-generative-modeling-in-latent-space`, §3 and
//! App. A–B. Everything here works on a latent z₀ `[B, C, ...]` that an encoder produced:
//! - [`schedule`]: the latent diffusion's variances σ_t², σ̃_t² (variance of diffused N(0, I)
//!   data, App. B.1) and var⁻¹, for VPSDE, geometric VPSDE and VESDE.
//! - [`importance`]: the three weightings w_ll = g²/σ², w_un = 1, w_re = g² (Table 1) and the
//!   time samplers: uniform t or the minimum-variance importance-sampling proposals r(t) of
//!   App. B.3–B.4 with their inverse CDFs and IS weights w(t)/r(t).
//! - [`mixed`]: the mixed score ε_θ(z_t, t) = (σ_t/σ̃_t²)(1 − α) ⊙ z_t + α ⊙ ε'_θ(z_t, t)
//!   (Eq. 20; = σ_t(1 − α) ⊙ z_t + α ⊙ ε'_θ for VP SDEs), α = sigmoid(logit).
//! - [`objective`]: the score-matching (cross-entropy) term of the NELBO (Theorem 1, Eq. 7),
//!   its constant, and the entropy of the diagonal-Gaussian encoder.

pub mod importance;
pub mod mixed;
pub mod objective;
pub mod schedule;

pub use importance::{TimeProposal, TimeSampler, Weighting};
pub use mixed::{mixed_eps, EpsModel, MixedEps};
pub use objective::{
    cross_entropy, cross_entropy_constant, gaussian_entropy, score_matching, ScoreMatching,
};
pub use schedule::LatentSchedule;
