//! The time-dependent encoder of ScoreVAE (paper 001 §3; method digest §8):
//! q_{t,φ}(z | x_t) = N(z; μ_φ(x_t, t), diag(σ_φ²(t))), with log σ² = V e(t) + c₀ and μ from
//! one of two bodies:
//!
//! - dense (one hidden layer): h = W₁ c(t) x + b₁ + E(t), μ = W₂ silu(h) + b₂;
//! - convolutional (the paper's CIFAR encoder: conv blocks, flatten, linear): L stride-2 4×4
//!   convolutions a_l = K_l ∗ h_{l−1} + b_l + E_l(t), h_l = silu(a_l), h₋₁ = c(t) x, with
//!   channels c, 2c, 4c, …, then μ = W silu-features(h_{L−1}) + b;
//!
//! where e(t) are Gaussian Fourier features of the noise level s(t) (as in the prior's
//! network), E(t) = U e(t) (per channel for the convolutions), and c(t) = 1/√(s(t)² + ¼) scales
//! x_t to unit size (images in [0, 1] have std ≈ ½; EDM's input preconditioning), so the
//! encoder's gradient shrinks like the information x_t carries as the noise grows. The gradient
//! the decoder needs, ∇ₓ log q = J_μᵀ (z − μ)/σ², is written out with ordinary tensor
//! operations — dense: c(t) W₁ᵀ [silu′(h) ⊙ W₂ᵀ v]; convolutional: the transposed convolutions
//! back through the layers, c(t) K₀ᵀ ⋆ [silu′(a₀) ⊙ … K_{L−1}ᵀ ⋆ [silu′(a_{L−1}) ⊙ Wᵀ v]] with
//! v = (z − μ)/σ² — so training differentiates it with respect to φ by one backward pass, where
//! an encoder built from autodiff would need double back-propagation.

use crate::nn::embedding::GaussianFourierProjection;
use candle_core::{Module, Result, Tensor};
use candle_nn::{Init, VarBuilder};
use serde::{Deserialize, Serialize};

/// Sizes of the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderConfig {
    /// Side of the (square) images, as the prior's.
    pub image_size: usize,
    /// Latent dimension k.
    pub latent: usize,
    /// Hidden width of the dense body (1..; leave it out with `conv`).
    #[serde(default)]
    pub hidden: usize,
    /// Fourier features of the noise level (2 × this many inputs to the time layers).
    #[serde(default = "default_fourier")]
    pub fourier: usize,
    /// Standard deviation of the Fourier frequencies.
    #[serde(default = "default_fourier_scale")]
    pub fourier_scale: f64,
    /// A convolutional body instead of the dense one (`hidden` is then unused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conv: Option<ConvSpec>,
}

/// The convolutional body: `layers` stride-2 4×4 convolutions with `channels`, 2·`channels`,
/// 4·`channels`, … output channels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvSpec {
    /// Output channels of the first convolution.
    pub channels: usize,
    /// Number of stride-2 convolutions (the image side must be divisible by 2^layers).
    pub layers: usize,
}

impl ConvSpec {
    /// (input channels, output channels) of layer `l`.
    fn io(&self, l: usize) -> (usize, usize) {
        let out = self.channels << l;
        (if l == 0 { 1 } else { out / 2 }, out)
    }
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
            (1..=MAX_WIDTH).contains(&self.latent)
                && (self.conv.is_some() || (1..=MAX_WIDTH).contains(&self.hidden)),
            "scorevae latent ({}) and the dense body's hidden width ({}) must be in 1..={MAX_WIDTH}",
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
        if let Some(c) = &self.conv {
            anyhow::ensure!(
                (1..=6).contains(&c.layers) && (1..=256).contains(&c.channels),
                "scorevae conv: layers ({}) must be in 1..=6 and channels ({}) in 1..=256",
                c.layers,
                c.channels
            );
            anyhow::ensure!(
                self.image_size.is_multiple_of(1 << c.layers),
                "scorevae conv: image_size {} must be divisible by 2^layers = {}",
                self.image_size,
                1 << c.layers
            );
        }
        let weights = self.parameters();
        anyhow::ensure!(
            weights <= 1 << 30,
            "scorevae: the encoder has {weights} weights, over 2^30"
        );
        Ok(())
    }

    /// Width of the features μ is read from: `hidden` (dense) or the last convolution's
    /// channels × (side / 2^layers)².
    pub fn features(&self) -> usize {
        match &self.conv {
            None => self.hidden,
            Some(c) => {
                let side = self.image_size >> c.layers;
                c.io(c.layers - 1).1 * side * side
            }
        }
    }

    /// Number of trainable parameters (the Fourier frequencies are fixed).
    pub fn parameters(&self) -> u64 {
        let f2 = 2 * self.fourier as u64;
        let body = match &self.conv {
            None => self.hidden as u64 * (self.dim() as u64 + f2 + 2),
            Some(c) => (0..c.layers)
                .map(|l| {
                    let (i, o) = c.io(l);
                    (o * (16 * i + 2)) as u64 + o as u64 * f2
                })
                .sum(),
        };
        body + self.latent as u64 * (self.features() as u64 + f2 + 2)
    }

    /// D = image_size².
    pub fn dim(&self) -> usize {
        self.image_size * self.image_size
    }
}

/// A dense layer y = x Wᵀ + b whose weight the Jacobian products read.
#[derive(Debug, Clone)]
pub(super) struct Affine {
    weight: Tensor,
    bias: Tensor,
}

impl Affine {
    pub(super) fn new(d_in: usize, d_out: usize, vb: VarBuilder) -> Result<Self> {
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

/// A stride-2 4×4 convolution with a per-channel bias and a per-channel time shift E_l(t).
#[derive(Debug, Clone)]
struct ConvLayer {
    /// `[out, in, 4, 4]`.
    weight: Tensor,
    /// `[out]`.
    bias: Tensor,
    time: Affine,
}

impl ConvLayer {
    fn new(c_in: usize, c_out: usize, f2: usize, vb: VarBuilder) -> Result<Self> {
        let bound = 1.0 / ((16 * c_in) as f64).sqrt();
        Ok(Self {
            weight: vb.get_with_hints(
                (c_out, c_in, 4, 4),
                "weight",
                Init::Uniform {
                    lo: -bound,
                    up: bound,
                },
            )?,
            bias: vb.get_with_hints(c_out, "bias", Init::Const(0.0))?,
            time: Affine::new(f2, c_out, vb.pp("time"))?,
        })
    }

    /// a = K ∗ h + b + E(t) for h: `[B, in, H, W]` → `[B, out, H/2, W/2]`.
    fn forward(&self, h: &Tensor, e: &Tensor) -> Result<Tensor> {
        let shift = self
            .time
            .forward(e)?
            .broadcast_add(&self.bias.unsqueeze(0)?)?
            .unsqueeze(2)?
            .unsqueeze(3)?;
        h.conv2d(&self.weight, 1, 2, 1, 1)?.broadcast_add(&shift)
    }

    /// Kᵀ ⋆ g: the adjoint of the convolution, `[B, out, H/2, W/2]` → `[B, in, H, W]`.
    fn adjoint(&self, g: &Tensor) -> Result<Tensor> {
        g.conv_transpose2d(&self.weight, 1, 0, 2, 1)
    }
}

/// The body from c(t) x to the features μ is read from.
#[derive(Debug, Clone)]
enum Body {
    Dense { input: Affine, time: Affine },
    Conv(Vec<ConvLayer>),
}

/// The encoder e_φ(x_t, t) ↦ (μ, log σ²) and its input gradient.
#[derive(Debug, Clone)]
pub struct TimeEncoder {
    config: EncoderConfig,
    fourier: GaussianFourierProjection,
    body: Body,
    mean: Affine,
    log_var: Affine,
}

/// The encoder's forward pass: pre-activations, mean μ and log-variance.
pub struct Moments {
    /// The body's pre-activations: dense h = W₁ x + b₁ + E(t), `[B, hidden]`; convolutional
    /// a_l, `[B, C_l, H_l, W_l]` per layer.
    pub pre: Vec<Tensor>,
    /// μ, `[B, k]`.
    pub mean: Tensor,
    /// log σ², `[B, k]`.
    pub log_var: Tensor,
}

/// c(t) = 1/√(s(t)² + ¼) for noise levels `sigma`: `[B]`.
pub(super) fn input_scale(sigma: &Tensor) -> Result<Tensor> {
    (sigma.sqr()? + 0.25)?.sqrt()?.recip()
}

/// silu′(h) = σ(h)(1 + h(1 − σ(h))).
fn silu_grad(h: &Tensor) -> Result<Tensor> {
    let s = candle_nn::ops::sigmoid(h)?;
    let one_minus = s.affine(-1.0, 1.0)?;
    s.mul(&(h.mul(&one_minus)? + 1.0)?)
}

impl TimeEncoder {
    /// A new encoder with its variables in `vb` (names `fourier.W`, `mean.*`, `log_var.*`,
    /// and `input.*`, `time.*` (dense) or `conv.{l}.{weight, bias, time.*}`).
    pub fn new(config: EncoderConfig, vb: VarBuilder) -> Result<Self> {
        let f2 = 2 * config.fourier;
        let body = match &config.conv {
            None => Body::Dense {
                input: Affine::new(config.dim(), config.hidden, vb.pp("input"))?,
                time: Affine::new(f2, config.hidden, vb.pp("time"))?,
            },
            Some(c) => Body::Conv(
                (0..c.layers)
                    .map(|l| {
                        let (i, o) = c.io(l);
                        ConvLayer::new(i, o, f2, vb.pp(format!("conv.{l}")))
                    })
                    .collect::<Result<_>>()?,
            ),
        };
        Ok(Self {
            fourier: GaussianFourierProjection::new(
                config.fourier,
                config.fourier_scale,
                vb.pp("fourier"),
            )?,
            body,
            mean: Affine::new(config.features(), config.latent, vb.pp("mean"))?,
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
        let b = x.dim(0)?;
        let flat = x
            .flatten_from(1)?
            .broadcast_mul(&input_scale(sigma)?.unsqueeze(1)?)?;
        let e = self.fourier.forward(sigma)?;
        let pre = match &self.body {
            Body::Dense { input, time } => vec![(input.forward(&flat)? + time.forward(&e)?)?],
            Body::Conv(layers) => {
                let side = self.config.image_size;
                let mut h = flat.reshape((b, 1, side, side))?;
                let mut pre = Vec::with_capacity(layers.len());
                for layer in layers {
                    let a = layer.forward(&h, &e)?;
                    h = candle_nn::ops::silu(&a)?;
                    pre.push(a);
                }
                pre
            }
        };
        let last = pre.last().expect("the body has a layer");
        let mean = self
            .mean
            .forward(&candle_nn::ops::silu(last)?.flatten_from(1)?)?;
        let log_var = self.log_var.forward(&e)?;
        Ok(Moments { pre, mean, log_var })
    }

    /// log q(z | x) = −½ Σ [(z − μ)²/σ² + log σ² + log 2π] per sample (`[B]`).
    pub fn log_q(&self, x: &Tensor, z: &Tensor, sigma: &Tensor) -> Result<Tensor> {
        let m = self.moments(x, sigma)?;
        let r2 = (z - &m.mean)?.sqr()?.mul(&m.log_var.neg()?.exp()?)?;
        ((r2 + m.log_var)? + (2.0 * std::f64::consts::PI).ln())?
            .sum(1)?
            .affine(-0.5, 0.0)
    }

    /// ∇ₓ log q(z | x) = J_μᵀ (z − μ)/σ² (module documentation), shaped like x
    /// (differentiable in φ).
    pub fn grad_log_q_sigma(&self, x: &Tensor, z: &Tensor, sigma: &Tensor) -> Result<Tensor> {
        let m = self.moments(x, sigma)?;
        let u = (z - &m.mean)?.mul(&m.log_var.neg()?.exp()?)?;
        let mut back = u.matmul(&self.mean.weight)?;
        let back = match &self.body {
            Body::Dense { input, .. } => back.mul(&silu_grad(&m.pre[0])?)?.matmul(&input.weight)?,
            Body::Conv(layers) => {
                back = back.reshape(m.pre[layers.len() - 1].shape())?;
                for (layer, a) in layers.iter().zip(&m.pre).rev() {
                    back = layer.adjoint(&back.mul(&silu_grad(a)?)?)?;
                }
                back.flatten_from(1)?
            }
        };
        back.broadcast_mul(&input_scale(sigma)?.unsqueeze(1)?)?
            .reshape(x.shape())
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
        let dense = EncoderConfig {
            image_size: 8,
            latent: 5,
            hidden: 7,
            fourier: 4,
            fourier_scale: 4.0,
            conv: None,
        };
        grad_log_q_matches_finite_differences_for(dense);
        grad_log_q_matches_finite_differences_for(EncoderConfig {
            conv: Some(ConvSpec {
                channels: 3,
                layers: 2,
            }),
            ..dense
        });
    }

    fn grad_log_q_matches_finite_differences_for(config: EncoderConfig) {
        let dev = Device::Cpu;
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

    /// Training differentiates ∇ₓ log q with respect to φ through the transposed
    /// convolutions (candle's backward of conv-transpose2d): that gradient matches central
    /// finite differences for a weight of each convolution and of the mean layer.
    #[test]
    fn the_conv_encoders_parameter_gradient_matches_finite_differences() {
        let dev = Device::Cpu;
        let config = EncoderConfig {
            image_size: 8,
            latent: 4,
            hidden: 1,
            fourier: 3,
            fourier_scale: 4.0,
            conv: Some(ConvSpec {
                channels: 2,
                layers: 2,
            }),
        };
        let varmap = VarMap::new();
        let enc =
            TimeEncoder::new(config, VarBuilder::from_varmap(&varmap, DType::F64, &dev)).unwrap();
        let mut noise = medsgm_recon::Noise::new(3);
        let x = noise.randn(&[2, 1, 8, 8], DType::F64, &dev).unwrap();
        let z = noise.randn(&[2, 4], DType::F64, &dev).unwrap();
        let r = noise.randn(&[2, 1, 8, 8], DType::F64, &dev).unwrap();
        let sigma = Tensor::new(&[0.5f64, 1.5], &dev).unwrap();
        let loss = || {
            enc.grad_log_q_sigma(&x, &z, &sigma)
                .unwrap()
                .mul(&r)
                .unwrap()
                .sum_all()
                .unwrap()
        };
        let grads = loss().backward().unwrap();
        let vars = varmap.data().lock().unwrap().clone();
        for name in ["conv.0.weight", "conv.1.weight", "mean.weight"] {
            let var = &vars[name];
            let analytic = grads
                .get(var.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap();
            let base = var
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap();
            for i in [0, base.len() / 2, base.len() - 1] {
                let at = |d: f64| {
                    let mut v = base.clone();
                    v[i] += d;
                    var.set(&Tensor::from_vec(v, var.shape(), &dev).unwrap())
                        .unwrap();
                    loss().to_scalar::<f64>().unwrap()
                };
                let h = 1e-5;
                let fd = (at(h) - at(-h)) / (2.0 * h);
                at(0.0);
                assert!(
                    (fd - analytic[i]).abs() < 1e-5 * (1.0 + fd.abs()),
                    "{name}[{i}]: backward {} vs finite difference {fd}",
                    analytic[i]
                );
            }
        }
    }

    /// A checkpoint's or config's conv sizes are bounded before anything is allocated.
    #[test]
    fn conv_sizes_are_checked() {
        let ok = EncoderConfig {
            image_size: 64,
            latent: 1024,
            hidden: 0,
            fourier: 16,
            fourier_scale: 16.0,
            conv: Some(ConvSpec {
                channels: 16,
                layers: 3,
            }),
        };
        assert!(ok.validate().is_ok());
        assert_eq!(ok.features(), 64 * 8 * 8);
        let bad = |conv: ConvSpec, image_size: usize, latent: usize| EncoderConfig {
            image_size,
            latent,
            conv: Some(conv),
            ..ok
        };
        let huge = ConvSpec {
            channels: 256,
            layers: 6,
        };
        assert!(bad(huge, 512, 65_536).validate().is_err());
        let three = ConvSpec {
            channels: 4,
            layers: 3,
        };
        assert!(
            bad(three, 60, 8).validate().is_err(),
            "60 is not divisible by 8"
        );
        let none = ConvSpec {
            channels: 0,
            layers: 3,
        };
        assert!(bad(none, 64, 8).validate().is_err());
        // `hidden` is the dense body's: needed without `conv`, not with it.
        let dense = EncoderConfig { conv: None, ..ok };
        assert!(dense.validate().is_err());
        assert!(EncoderConfig {
            hidden: 64,
            ..dense
        }
        .validate()
        .is_ok());
    }
}
