//! The network as a [`ScoreModel`] for a given SDE.

use super::Ncsnpp;
use candle_core::{Result, Tensor};
use medsgm_recon::{ScoreModel, Sde};

/// `s_θ(x, t) = net(x, s(t))`, the network conditioned on the marginal standard deviation s(t)
/// of the SDE. With `scale_by_sigma` the network already divides by s(t) (NCSN++ VE,
/// method digest §4); for VP/sub-VP this is the ε-parametrisation score = −ε̂/s(t) with
/// ε̂ = −h (the sign is absorbed by the linear output layer).
pub struct NetScore<'a> {
    /// The network (use the EMA weights for sampling).
    pub net: &'a Ncsnpp,
    /// The forward SDE it was trained for.
    pub sde: &'a dyn Sde,
}

impl NetScore<'_> {
    /// Marginal standard deviations s(t) for times `t: [B]`, as an f32 tensor `[B]`.
    pub fn noise_levels(&self, t: &Tensor) -> Result<Tensor> {
        let ts = t.to_dtype(candle_core::DType::F64)?.to_vec1::<f64>()?;
        let s: Vec<f32> = ts.iter().map(|&t| self.sde.std(t) as f32).collect();
        Tensor::from_vec(s, ts.len(), t.device())
    }
}

impl ScoreModel for NetScore<'_> {
    fn score(&self, x: &Tensor, t: &Tensor) -> Result<Tensor> {
        self.net.forward(x, &self.noise_levels(t)?, false)
    }
}
