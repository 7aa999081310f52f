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

impl NetScore<'_> {
    /// The side lengths the network accepts are multiples of this: one halving per level
    /// after the first.
    pub fn size_multiple(&self) -> usize {
        1 << self.net.config().ch_mult.len().saturating_sub(1)
    }
}

impl ScoreModel for NetScore<'_> {
    /// The network is fully convolutional (attention is global at its level), so any image
    /// size works: sides that are not a multiple of [`NetScore::size_multiple`] are
    /// zero-padded (air) evenly on both sides for the evaluation and cropped back.
    fn score(&self, x: &Tensor, t: &Tensor) -> Result<Tensor> {
        let sigma = self.noise_levels(t)?;
        let (_, _, h, w) = x.dims4()?;
        let m = self.size_multiple();
        let (ph, pw) = (h.div_ceil(m) * m - h, w.div_ceil(m) * m - w);
        if ph == 0 && pw == 0 {
            return self.net.forward(x, &sigma, false);
        }
        let padded =
            x.pad_with_zeros(2, ph / 2, ph - ph / 2)?
                .pad_with_zeros(3, pw / 2, pw - pw / 2)?;
        self.net
            .forward(&padded, &sigma, false)?
            .narrow(2, ph / 2, h)?
            .narrow(3, pw / 2, w)
    }
}
