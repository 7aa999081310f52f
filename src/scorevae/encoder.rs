//! The time-dependent encoder of ScoreVAE (paper 001 §3; method digest §8):
//! q_{t,φ}(z | x_t) = N(z; μ_φ(x_t, t), diag(σ_φ²(t))) with a one-hidden-layer network
//!
//! h = W₁ c(t) x + b₁ + E(t),  μ = W₂ silu(h) + b₂,  log σ² = V e(t) + c₀,
//!
//! where e(t) are Gaussian Fourier features of the noise level s(t) (as in the prior's
//! network), E(t) = U e(t), and c(t) = 1/√(s(t)² + ¼) scales x_t to unit size (images in
//! [0, 1] have std ≈ ½; EDM's input preconditioning), so the encoder's gradient shrinks like the
//! information x_t carries as the noise grows. Because the network is this shallow, the gradient
//! the decoder needs, ∇ₓ log q = J_μᵀ (z − μ)/σ² = c(t) W₁ᵀ [silu′(h) ⊙ W₂ᵀ((z − μ)/σ²)], is
//! written out with ordinary tensor operations: training differentiates it with respect to φ by
//! one backward pass, where a deep encoder would need double back-propagation.

use crate::nn::embedding::GaussianFourierProjection;
use candle_core::{Module, Result, Tensor};
use candle_nn::{Init, VarBuilder};
use medsgm_recon::conditional::LatentPosterior;
use medsgm_recon::Sde;
use serde::{Deserialize, Serialize};

/// Sizes of the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderConfig {
    /// Side of the (square) images, as the prior's.
    pub image_size: usize,
    /// Latent dimension k.
    pub latent: usize,
    /// Hidden width.
    pub hidden: usize,
    /// Fourier features of the noise level (2 × this many inputs to the time layers).
    #[serde(default = "default_fourier")]
    pub fourier: usize,
    /// Standard deviation of the Fourier frequencies.
    #[serde(default = "default_fourier_scale")]
    pub fourier_scale: f64,
}

fn default_fourier() -> usize {
    16
}
fn default_fourier_scale() -> f64 {
    16.0
}

/// Largest image side, latent and hidden sizes (the first layer holds hidden × side² weights).
pub const MAX_SIDE: usize = 512;
/// Largest latent or hidden width.
pub const MAX_WIDTH: usize = 65_536;

impl EncoderConfig {
    /// Checks the sizes (and that the first layer stays under 2³⁰ weights).
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (8..=MAX_SIDE).contains(&self.image_size),
            "scorevae image_size {} must be in 8..={MAX_SIDE}",
            self.image_size
        );
        anyhow::ensure!(
            (1..=MAX_WIDTH).contains(&self.latent) && (1..=MAX_WIDTH).contains(&self.hidden),
            "scorevae latent ({}) and hidden ({}) must be in 1..={MAX_WIDTH}",
            self.latent,
            self.hidden
        );
        anyhow::ensure!(
            (1..=1024).contains(&self.fourier)
                && self.fourier_scale.is_finite()
                && self.fourier_scale > 0.0,
            "scorevae fourier ({}) must be in 1..=1024 and fourier_scale ({}) positive",
            self.fourier,
            self.fourier_scale
        );
        let weights = self.hidden as u64 * (self.image_size * self.image_size) as u64;
        anyhow::ensure!(
            weights <= 1 << 30,
            "scorevae: hidden × image_size² = {weights} weights exceeds 2^30"
        );
        Ok(())
    }

    /// D = image_size².
    pub fn dim(&self) -> usize {
        self.image_size * self.image_size
    }
}

/// A dense layer y = x Wᵀ + b whose weight the Jacobian products read.
#[derive(Debug, Clone)]
struct Affine {
    weight: Tensor,
    bias: Tensor,
}

impl Affine {
    fn new(d_in: usize, d_out: usize, vb: VarBuilder) -> Result<Self> {
        let bound = 1.0 / (d_in as f64).sqrt();
        let weight = vb.get_with_hints(
            (d_out, d_in),
            "weight",
            Init::Uniform {
                lo: -bound,
                up: bound,
            },
        )?;
        let bias = vb.get_with_hints(d_out, "bias", Init::Const(0.0))?;
        Ok(Self { weight, bias })
    }
}

impl Module for Affine {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.weight.t()?)?.broadcast_add(&self.bias)
    }
}

/// The encoder e_φ(x_t, t) ↦ (μ, log σ²) and its input gradient.
#[derive(Debug, Clone)]
pub struct TimeEncoder {
    config: EncoderConfig,
    fourier: GaussianFourierProjection,
    input: Affine,
    time: Affine,
    mean: Affine,
    log_var: Affine,
}

/// The encoder's forward pass: pre-activation h, mean μ and log-variance.
pub struct Moments {
    /// h = W₁ x + b₁ + E(t), `[B, hidden]`.
    pub hidden: Tensor,
    /// μ, `[B, k]`.
    pub mean: Tensor,
    /// log σ², `[B, k]`.
    pub log_var: Tensor,
}

/// c(t) = 1/√(s(t)² + ¼) for noise levels `sigma`: `[B]`.
fn input_scale(sigma: &Tensor) -> Result<Tensor> {
    (sigma.sqr()? + 0.25)?.sqrt()?.recip()
}

/// silu′(h) = σ(h)(1 + h(1 − σ(h))).
fn silu_grad(h: &Tensor) -> Result<Tensor> {
    let s = candle_nn::ops::sigmoid(h)?;
    let one_minus = s.affine(-1.0, 1.0)?;
    s.mul(&(h.mul(&one_minus)? + 1.0)?)
}

impl TimeEncoder {
    /// A new encoder with its variables in `vb` (names `fourier.W`, `input.*`, `time.*`,
    /// `mean.*`, `log_var.*`).
    pub fn new(config: EncoderConfig, vb: VarBuilder) -> Result<Self> {
        let f2 = 2 * config.fourier;
        Ok(Self {
            fourier: GaussianFourierProjection::new(
                config.fourier,
                config.fourier_scale,
                vb.pp("fourier"),
            )?,
            input: Affine::new(config.dim(), config.hidden, vb.pp("input"))?,
            time: Affine::new(f2, config.hidden, vb.pp("time"))?,
            mean: Affine::new(config.hidden, config.latent, vb.pp("mean"))?,
            log_var: Affine::new(f2, config.latent, vb.pp("log_var"))?,
            config,
        })
    }

    /// The sizes.
    pub fn config(&self) -> &EncoderConfig {
        &self.config
    }

    /// (h, μ, log σ²) for x: `[B, ...]` (D values per sample) at noise levels `sigma`: `[B]`.
    pub fn moments(&self, x: &Tensor, sigma: &Tensor) -> Result<Moments> {
        let flat = x
            .flatten_from(1)?
            .broadcast_mul(&input_scale(sigma)?.unsqueeze(1)?)?;
        let e = self.fourier.forward(sigma)?;
        let hidden = (self.input.forward(&flat)? + self.time.forward(&e)?)?;
        let mean = self.mean.forward(&candle_nn::ops::silu(&hidden)?)?;
        let log_var = self.log_var.forward(&e)?;
        Ok(Moments {
            hidden,
            mean,
            log_var,
        })
    }

    /// log q(z | x) = −½ Σ [(z − μ)²/σ² + log σ² + log 2π] per sample (`[B]`).
    pub fn log_q(&self, x: &Tensor, z: &Tensor, sigma: &Tensor) -> Result<Tensor> {
        let m = self.moments(x, sigma)?;
        let r2 = (z - &m.mean)?.sqr()?.mul(&m.log_var.neg()?.exp()?)?;
        ((r2 + m.log_var)? + (2.0 * std::f64::consts::PI).ln())?
            .sum(1)?
            .affine(-0.5, 0.0)
    }

    /// ∇ₓ log q(z | x) = c W₁ᵀ [silu′(h) ⊙ W₂ᵀ((z − μ)/σ²)], shaped like x (differentiable
    /// in φ).
    pub fn grad_log_q_sigma(&self, x: &Tensor, z: &Tensor, sigma: &Tensor) -> Result<Tensor> {
        let m = self.moments(x, sigma)?;
        let u = (z - &m.mean)?.mul(&m.log_var.neg()?.exp()?)?;
        let back = u.matmul(&self.mean.weight)?.mul(&silu_grad(&m.hidden)?)?;
        back.matmul(&self.input.weight)?
            .broadcast_mul(&input_scale(sigma)?.unsqueeze(1)?)?
            .reshape(x.shape())
    }
}

/// The encoder as the latent posterior of [`medsgm_recon::conditional`], for the SDE whose
/// noise levels s(t) it was trained at (it owns a copy of both, so a loaded model can carry it).
pub struct EncoderPosterior {
    /// The encoder.
    pub encoder: TimeEncoder,
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
        Ok(self
            .encoder
            .grad_log_q_sigma(x, z, &self.noise_levels(t)?)?
            .detach())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    /// The closed-form ∇ₓ log q equals central finite differences of log q (f64, random
    /// weights and inputs), so the decoder's score is the prior's plus the encoder's
    /// log-density gradient.
    #[test]
    fn grad_log_q_matches_finite_differences() {
        let dev = Device::Cpu;
        let config = EncoderConfig {
            image_size: 8,
            latent: 5,
            hidden: 7,
            fourier: 4,
            fourier_scale: 4.0,
        };
        let varmap = VarMap::new();
        let enc =
            TimeEncoder::new(config, VarBuilder::from_varmap(&varmap, DType::F64, &dev)).unwrap();
        // non-zero biases and log-variances, so every term of the formula is exercised
        for (name, var) in varmap.data().lock().unwrap().iter() {
            if name.ends_with("bias") {
                let n = var.elem_count();
                let v: Vec<f64> = (0..n).map(|i| 0.1 * (i as f64 * 0.7).sin()).collect();
                var.set(&Tensor::from_vec(v, n, &dev).unwrap()).unwrap();
            }
        }
        let mut noise = medsgm_recon::Noise::new(1);
        let x = noise.randn(&[2, 1, 8, 8], DType::F64, &dev).unwrap();
        let z = noise.randn(&[2, 5], DType::F64, &dev).unwrap();
        let sigma = Tensor::new(&[0.3f64, 2.0], &dev).unwrap();
        let grad = enc
            .grad_log_q_sigma(&x, &z, &sigma)
            .unwrap()
            .flatten_from(1)
            .unwrap()
            .to_vec2::<f64>()
            .unwrap();
        let flat = x.flatten_from(1).unwrap().to_vec2::<f64>().unwrap();
        let h = 1e-5;
        for b in 0..2 {
            for i in [0, 9, 31, 63] {
                let bump = |d: f64| {
                    let mut v = flat.clone();
                    v[b][i] += d;
                    let xs = Tensor::from_vec(v.concat(), (2, 1, 8, 8), &dev).unwrap();
                    enc.log_q(&xs, &z, &sigma)
                        .unwrap()
                        .to_vec1::<f64>()
                        .unwrap()[b]
                };
                let fd = (bump(h) - bump(-h)) / (2.0 * h);
                assert!(
                    (fd - grad[b][i]).abs() < 1e-6 * (1.0 + fd.abs()),
                    "sample {b}, pixel {i}: closed form {} vs finite difference {fd}",
                    grad[b][i]
                );
            }
        }
    }
}
