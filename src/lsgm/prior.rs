//! The latent score prior (LSGM §3.2): an NCSN++ network ε'_θ on the `C × (S/4)²` latent grid,
//! conditioned on σ_t, mixed with the Normal score through per-channel logits
//! (`medsgm_recon::lsgm::MixedEps`). Parameter names start with `net.` and `mixing_logit`.

use super::config::LsgmConfig;
use crate::nn::Ncsnpp;
use candle_core::{Result, Tensor};
use candle_nn::{Init, VarBuilder};
use medsgm_recon::lsgm::{EpsModel, LatentSchedule, MixedEps};
use medsgm_recon::Sde;

/// ε'_θ(z_t, t) = net(z_t, σ_t) — the network used as a noise predictor.
pub struct NetEps<'a> {
    /// The network (`scale_by_sigma = false`).
    pub net: &'a Ncsnpp,
    /// The latent SDE (for σ_t).
    pub sde: &'a dyn Sde,
    /// Enables dropout.
    pub train: bool,
}

impl EpsModel for NetEps<'_> {
    fn eps(&self, z_t: &Tensor, t: &Tensor) -> Result<Tensor> {
        let ts = t.to_dtype(candle_core::DType::F64)?.to_vec1::<f64>()?;
        let s: Vec<f32> = ts.iter().map(|&t| self.sde.std(t) as f32).collect();
        let sigma = Tensor::from_vec(s, ts.len(), t.device())?;
        self.net.forward(z_t, &sigma, self.train)
    }
}

/// The prior's parameters: the network and the mixing logits `[C]`.
#[derive(Debug)]
pub struct LatentPrior {
    net: Ncsnpp,
    logit: Tensor,
}

impl LatentPrior {
    /// Builds the prior of `config` from `vb` (logits initialised to `mixing_logit_init`).
    pub fn new(config: &LsgmConfig, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            net: Ncsnpp::new(&config.prior, vb.pp("net"))?,
            logit: vb.get_with_hints(
                config.vae.latent_channels,
                "mixing_logit",
                Init::Const(config.mixing_logit_init),
            )?,
        })
    }

    /// The residual network ε'_θ.
    pub fn net(&self) -> &Ncsnpp {
        &self.net
    }

    /// The mixing logits `[C]` (α = sigmoid(logit)).
    pub fn logit(&self) -> &Tensor {
        &self.logit
    }

    /// The mixed ε-model (also a `ScoreModel` s = −ε_θ/σ_t for the recon samplers).
    pub fn mixed<'a>(
        &'a self,
        schedule: LatentSchedule,
        sde: &'a dyn Sde,
        train: bool,
    ) -> MixedEps<NetEps<'a>> {
        MixedEps::new(
            schedule,
            self.logit.clone(),
            NetEps {
                net: &self.net,
                sde,
                train,
            },
        )
    }
}
