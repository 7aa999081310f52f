//! A small convolutional VAE for 1-channel slices (LSGM stage 1; method digest §7.1, 7.6):
//! encoder q_φ(z₀|x) = N(μ_φ(x), diag σ²_φ(x)) on a `(S/4)² × C` latent grid, Gaussian decoder
//! p_ψ(x|z₀) = N(μ_ψ(z₀), σ² I) with a learned scalar σ. Residual blocks GN → SiLU → conv3×3 →
//! GN → SiLU → conv3×3 (zero-init) with skip rescale 1/√2, average-pool / nearest resampling.

use super::config::VaeConfig;
use crate::nn::blocks::{group_norm, SKIP_RESCALE};
use crate::nn::conv::Conv;
use crate::nn::group_norm::GroupNorm;
use candle_core::{Result, Tensor, D};
use candle_nn::{Init, Module, VarBuilder};
use medsgm_recon::lsgm::gaussian_entropy;
use medsgm_recon::Noise;
use std::f64::consts::PI;

/// Pre-activation residual block of constant width.
#[derive(Clone, Debug)]
struct Block {
    norm0: GroupNorm,
    conv0: Conv,
    norm1: GroupNorm,
    conv1: Conv,
}

impl Block {
    fn new(ch: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            norm0: group_norm(ch, vb.pp("norm0"))?,
            conv0: Conv::new(ch, ch, 3, 1.0, vb.pp("conv0"))?,
            norm1: group_norm(ch, vb.pp("norm1"))?,
            conv1: Conv::new(ch, ch, 3, 0.0, vb.pp("conv1"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.conv0.forward(&self.norm0.forward(x)?.silu()?)?;
        let h = self.conv1.forward(&self.norm1.forward(&h)?.silu()?)?;
        (x + h)? * SKIP_RESCALE
    }
}

/// `n` blocks of width `ch` named `{prefix}{i}`.
fn blocks(n: usize, ch: usize, vb: &VarBuilder, prefix: &str) -> Result<Vec<Block>> {
    (0..n)
        .map(|i| Block::new(ch, vb.pp(format!("{prefix}{i}"))))
        .collect()
}

fn run(blocks: &[Block], x: Tensor) -> Result<Tensor> {
    blocks.iter().try_fold(x, |h, b| b.forward(&h))
}

fn upsample(x: &Tensor) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    x.upsample_nearest2d(2 * h, 2 * w)
}

/// The diagonal-Gaussian posterior q(z₀|x) = N(μ, diag exp(log_var)), each `[B, C, h, w]`.
#[derive(Clone, Debug)]
pub struct Posterior {
    /// μ_φ(x).
    pub mean: Tensor,
    /// log σ²_φ(x).
    pub log_var: Tensor,
}

impl Posterior {
    /// Reparameterised draw z₀ = μ + σ ⊙ ε (differentiable in μ, σ).
    pub fn sample(&self, noise: &mut Noise) -> Result<Tensor> {
        let eps = noise.randn_like(&self.mean)?;
        &self.mean + (self.log_var.affine(0.5, 0.0)?.exp()? * eps)?
    }

    /// Entropy H(q(z₀|x)) per sample `[B]` (−E_q log q, the negative-entropy term of Eq. 6).
    pub fn entropy(&self) -> Result<Tensor> {
        gaussian_entropy(&self.log_var).map_err(|e| candle_core::Error::Msg(e.to_string()))
    }

    /// KL(q(z₀|x) ‖ N(0, I)) = ½ Σ (μ² + σ² − 1 − log σ²) per sample `[B]` (the stage-1 prior).
    pub fn kl_standard_normal(&self) -> Result<Tensor> {
        let terms =
            ((self.mean.sqr()? + self.log_var.exp()?)? - &self.log_var)?.affine(1.0, -1.0)?;
        terms.flatten_from(1)?.sum(D::Minus1)? * 0.5
    }
}

/// The VAE (see the module docs). Parameter names (checkpoint keys) start with `enc.`, `dec.`
/// and `log_sigma`.
#[derive(Clone, Debug)]
pub struct Vae {
    config: VaeConfig,
    enc_in: Conv,
    enc0: Vec<Block>,
    enc_widen: Conv,
    enc1: Vec<Block>,
    enc2: Vec<Block>,
    enc_norm: GroupNorm,
    enc_out: Conv,
    dec_in: Conv,
    dec2: Vec<Block>,
    dec1: Vec<Block>,
    dec_narrow: Conv,
    dec0: Vec<Block>,
    dec_norm: GroupNorm,
    dec_out: Conv,
    log_sigma: Tensor,
}

impl Vae {
    /// Builds the VAE from `vb`.
    pub fn new(config: &VaeConfig, vb: VarBuilder) -> Result<Self> {
        config
            .validate()
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let (nf, n, c) = (config.nf, config.num_res_blocks, config.latent_channels);
        let (e, d) = (vb.pp("enc"), vb.pp("dec"));
        Ok(Self {
            config: config.clone(),
            enc_in: Conv::new(1, nf, 3, 1.0, e.pp("conv_in"))?,
            enc0: blocks(n, nf, &e, "level0.")?,
            enc_widen: Conv::new(nf, 2 * nf, 1, 1.0, e.pp("widen"))?,
            enc1: blocks(n, 2 * nf, &e, "level1.")?,
            enc2: blocks(n, 2 * nf, &e, "level2.")?,
            enc_norm: group_norm(2 * nf, e.pp("norm_out"))?,
            enc_out: Conv::new(2 * nf, 2 * c, 3, 0.1, e.pp("conv_out"))?,
            dec_in: Conv::new(c, 2 * nf, 3, 1.0, d.pp("conv_in"))?,
            dec2: blocks(n, 2 * nf, &d, "level2.")?,
            dec1: blocks(n, 2 * nf, &d, "level1.")?,
            dec_narrow: Conv::new(2 * nf, nf, 1, 1.0, d.pp("narrow"))?,
            dec0: blocks(n, nf, &d, "level0.")?,
            dec_norm: group_norm(nf, d.pp("norm_out"))?,
            dec_out: Conv::new(nf, 1, 3, 1.0, d.pp("conv_out"))?,
            log_sigma: vb.get_with_hints(1, "log_sigma", Init::Const(config.log_sigma_init))?,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &VaeConfig {
        &self.config
    }

    /// q(z₀|x) for images `x` `[B, 1, S, S]` in [0, 1] (mapped to 2x − 1).
    pub fn encode(&self, x: &Tensor) -> Result<Posterior> {
        let h = self.enc_in.forward(&x.affine(2.0, -1.0)?)?;
        let h = run(&self.enc0, h)?.avg_pool2d(2)?;
        let h = run(&self.enc1, self.enc_widen.forward(&h)?)?.avg_pool2d(2)?;
        let h = run(&self.enc2, h)?;
        let out = self.enc_out.forward(&self.enc_norm.forward(&h)?.silu()?)?;
        let c = self.config.latent_channels;
        Ok(Posterior {
            mean: out.narrow(1, 0, c)?,
            log_var: out.narrow(1, c, c)?,
        })
    }

    /// Decoder mean μ_ψ(z₀) `[B, 1, S, S]`.
    pub fn decode(&self, z: &Tensor) -> Result<Tensor> {
        let h = run(&self.dec2, self.dec_in.forward(z)?)?;
        let h = run(&self.dec1, upsample(&h)?)?;
        let h = run(&self.dec0, upsample(&self.dec_narrow.forward(&h)?)?)?;
        self.dec_out
            .forward(&self.dec_norm.forward(&h)?.silu()?)?
            .affine(0.5, 0.5)
    }

    /// The decoder's log σ (a `[1]` tensor).
    pub fn log_sigma(&self) -> &Tensor {
        &self.log_sigma
    }

    /// −log p_ψ(x|z₀) = Σ_pixels [½((x − μ)/σ)² + log σ + ½ ln 2π] per sample `[B]`.
    pub fn reconstruction_nll(&self, x: &Tensor, z: &Tensor) -> Result<Tensor> {
        let mean = self.decode(z)?;
        let d = x.dims()[1..].iter().product::<usize>() as f64;
        let inv_var = self.log_sigma.affine(-2.0, 0.0)?.exp()?;
        let sq = (x - mean)?.sqr()?.flatten_from(1)?.sum(D::Minus1)?;
        let log_norm = self.log_sigma.affine(d, 0.5 * d * (2.0 * PI).ln())?;
        (sq.broadcast_mul(&inv_var)? * 0.5)?.broadcast_add(&log_norm)
    }
}
