//! The networks of a ScoreVAE checkpoint together: the encoder and, for ScoreVAE+, the
//! correction, built from a configuration ([`build_networks`]), and the latent posterior they
//! give the conditional score ([`EncoderPosterior`]).

use super::config::ScoreVaeConfig;
use super::correction::Correction;
use super::encoder::TimeEncoder;
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use medsgm_recon::conditional::LatentPosterior;
use medsgm_recon::Sde;

/// The networks of a checkpoint: the encoder and, for ScoreVAE+, the correction (variables
/// under `correction.`), built into `vb`.
pub fn build_networks(
    config: &ScoreVaeConfig,
    vb: VarBuilder,
) -> Result<(TimeEncoder, Option<Correction>)> {
    let e = &config.encoder;
    let encoder = TimeEncoder::new(*e, vb.clone())?;
    let correction = config
        .correction
        .map(|c| {
            Correction::new(
                c,
                e.image_size,
                e.latent,
                (e.fourier, e.fourier_scale),
                vb.pp(CORRECTION_PREFIX),
            )
        })
        .transpose()?;
    Ok((encoder, correction))
}

/// The variable prefix of the ScoreVAE+ correction.
pub const CORRECTION_PREFIX: &str = "correction";

/// The encoder as the latent posterior of [`medsgm_recon::conditional`], for the SDE whose
/// noise levels s(t) it was trained at (it owns a copy of both, so a loaded model can carry it);
/// with a ScoreVAE+ correction c_ψ its term of the decoder's score is ∇ₓ log q + c_ψ.
pub struct EncoderPosterior {
    /// The encoder.
    pub encoder: TimeEncoder,
    /// The ScoreVAE+ correction, if trained.
    pub correction: Option<Correction>,
    /// The prior's SDE.
    pub sde: Box<dyn Sde>,
}

impl EncoderPosterior {
    /// s(t) for times `t`: `[B]`.
    pub fn noise_levels(&self, t: &Tensor) -> Result<Tensor> {
        let ts = medsgm_recon::batch::times(t)?;
        let s: Vec<f32> = ts.iter().map(|&t| self.sde.std(t) as f32).collect();
        Tensor::from_vec(s, ts.len(), t.device())
    }
}

impl LatentPosterior for EncoderPosterior {
    /// Detached: the encoder's weights are variables, and a sampler feeding the result back
    /// into x would otherwise keep every step's graph alive (decoding ran out of memory).
    fn grad_log_q(&self, x: &Tensor, z: &Tensor, t: &Tensor) -> Result<Tensor> {
        let sigma = self.noise_levels(t)?;
        let g = self.encoder.grad_log_q_sigma(x, z, &sigma)?;
        let g = match &self.correction {
            Some(c) => (g + c.forward(x, z, &sigma)?)?,
            None => g,
        };
        Ok(g.detach())
    }
}
