//! ScoreVAE+ (paper 001 §3.6; method digest §8): with the prior θ and the encoder φ frozen, a
//! correction c_ψ(x_t, z, t) is added to the decoder's score,
//!
//! s(x_t, z, t) = s_θ(x_t, t) + ∇ₓ log q_{t,φ}(z | x_t) + c_ψ(x_t, z, t),
//!
//! and trained with the same denoising loss. c_ψ is a small convolutional network on two
//! image channels — c(t) x_t (the encoder's input scaling) and the code mapped to an image,
//! W z + b — with Gaussian-Fourier time shifts per channel, two 3×3 convolutions with SiLU, and
//! a zero-initialised 3×3 output convolution divided by s(t) (score units), so ScoreVAE+ starts
//! exactly as the ScoreVAE it corrects.

use super::encoder::{input_scale, Affine};
use crate::nn::embedding::GaussianFourierProjection;
use candle_core::{Module, Result, Tensor};
use candle_nn::{Init, VarBuilder};
use serde::{Deserialize, Serialize};

/// The correction's sizes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorrectionConfig {
    /// Channels of the two hidden convolutions.
    pub channels: usize,
}

impl CorrectionConfig {
    /// Checks the width.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (1..=256).contains(&self.channels),
            "scorevae correction channels {} must be in 1..=256",
            self.channels
        );
        Ok(())
    }

    /// Trainable parameters for images of `dim` pixels, codes of `latent` numbers and `f2`
    /// time features.
    pub fn parameters(&self, dim: usize, latent: usize, f2: usize) -> u64 {
        let c = self.channels as u64;
        let (dim, latent, f2) = (dim as u64, latent as u64, f2 as u64);
        dim * (latent + 1) + c * (2 * 9 + 1) + c * (c * 9 + 1) + (c * 9 + 1) + 2 * c * (f2 + 1)
    }
}

/// A 3×3 convolution (padding 1) with a bias.
#[derive(Debug, Clone)]
struct Conv3 {
    weight: Tensor,
    bias: Tensor,
}

impl Conv3 {
    fn new(c_in: usize, c_out: usize, zero: bool, vb: VarBuilder) -> Result<Self> {
        let bound = 1.0 / ((9 * c_in) as f64).sqrt();
        let init = if zero {
            Init::Const(0.0)
        } else {
            Init::Uniform {
                lo: -bound,
                up: bound,
            }
        };
        Ok(Self {
            weight: vb.get_with_hints((c_out, c_in, 3, 3), "weight", init)?,
            bias: vb.get_with_hints(c_out, "bias", Init::Const(0.0))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.conv2d(&self.weight, 1, 1, 1, 1)?
            .broadcast_add(&self.bias.reshape((1, (), 1, 1))?)
    }
}

/// c_ψ(x_t, z, t).
#[derive(Debug, Clone)]
pub struct Correction {
    side: usize,
    fourier: GaussianFourierProjection,
    code: Affine,
    conv1: Conv3,
    time1: Affine,
    conv2: Conv3,
    time2: Affine,
    out: Conv3,
}

impl Correction {
    /// A new correction for `side`² images and codes of `latent` numbers, with `fourier`
    /// frequencies of standard deviation `fourier_scale` (variables `fourier.W`, `code.*`,
    /// `conv1.*`, `time1.*`, `conv2.*`, `time2.*`, `out.*` under `vb`).
    pub fn new(
        config: CorrectionConfig,
        side: usize,
        latent: usize,
        fourier: (usize, f64),
        vb: VarBuilder,
    ) -> Result<Self> {
        let (c, f2) = (config.channels, 2 * fourier.0);
        Ok(Self {
            side,
            fourier: GaussianFourierProjection::new(fourier.0, fourier.1, vb.pp("fourier"))?,
            code: Affine::new(latent, side * side, vb.pp("code"))?,
            conv1: Conv3::new(2, c, false, vb.pp("conv1"))?,
            time1: Affine::new(f2, c, vb.pp("time1"))?,
            conv2: Conv3::new(c, c, false, vb.pp("conv2"))?,
            time2: Affine::new(f2, c, vb.pp("time2"))?,
            out: Conv3::new(c, 1, true, vb.pp("out"))?,
        })
    }

    /// c_ψ(x, z, t) for x: `[B, 1, H, W]`, codes z: `[B, k]` or `[1, k]`, noise levels
    /// `sigma`: `[B]`; shaped like x.
    pub fn forward(&self, x: &Tensor, z: &Tensor, sigma: &Tensor) -> Result<Tensor> {
        let b = x.dim(0)?;
        let n = self.side;
        let scaled = x
            .reshape((b, 1, n, n))?
            .broadcast_mul(&input_scale(sigma)?.reshape((b, 1, 1, 1))?)?;
        let code = self
            .code
            .forward(z)?
            .reshape(((), 1, n, n))?
            .broadcast_as((b, 1, n, n))?
            .contiguous()?;
        let e = self.fourier.forward(sigma)?;
        let shift = |t: &Affine| -> Result<Tensor> { t.forward(&e)?.unsqueeze(2)?.unsqueeze(3) };
        let h = Tensor::cat(&[scaled, code], 1)?;
        let h = candle_nn::ops::silu(
            &self
                .conv1
                .forward(&h)?
                .broadcast_add(&shift(&self.time1)?)?,
        )?;
        let h = candle_nn::ops::silu(
            &self
                .conv2
                .forward(&h)?
                .broadcast_add(&shift(&self.time2)?)?,
        )?;
        self.out
            .forward(&h)?
            .broadcast_div(&sigma.reshape((b, 1, 1, 1))?)?
            .reshape(x.shape())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    /// A fresh correction is zero (ScoreVAE+ starts as ScoreVAE), and once its output layer is
    /// non-zero it depends on the code.
    #[test]
    fn a_fresh_correction_is_zero_and_a_trained_one_reads_the_code() {
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let c = Correction::new(
            CorrectionConfig { channels: 3 },
            8,
            5,
            (4, 4.0),
            VarBuilder::from_varmap(&varmap, DType::F32, &dev),
        )
        .unwrap();
        let mut noise = medsgm_recon::Noise::new(2);
        let x = noise.randn(&[2, 1, 8, 8], DType::F32, &dev).unwrap();
        let z = noise.randn(&[2, 5], DType::F32, &dev).unwrap();
        let sigma = Tensor::new(&[0.1f32, 3.0], &dev).unwrap();
        let zero = c.forward(&x, &z, &sigma).unwrap();
        assert_eq!(zero.dims(), &[2, 1, 8, 8]);
        assert_eq!(
            zero.abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap(),
            0.0
        );
        for (name, var) in varmap.data().lock().unwrap().iter() {
            if name.starts_with("out.weight") {
                var.set(&var.as_tensor().ones_like().unwrap()).unwrap();
            }
        }
        let a = c.forward(&x, &z, &sigma).unwrap();
        let b = c.forward(&x, &(&z * 2.0).unwrap(), &sigma).unwrap();
        let diff = (a - b).unwrap().abs().unwrap().sum_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() > 0.0);
    }
}
