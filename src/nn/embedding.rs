//! Gaussian random Fourier features of the noise level (method digest §4, NCSN++ continuous).

use candle_core::{Result, Tensor};
use candle_nn::{Init, VarBuilder};

/// Name suffix of the fixed (non-trained) Fourier matrix inside the variable store.
pub const FOURIER_WEIGHT: &str = "fourier.W";

/// `emb(σ) = [sin(2π log σ · W), cos(2π log σ · W)]` with `W ~ N(0, scale²)` drawn once at
/// initialisation and kept fixed (stored in the checkpoint, excluded from the optimiser).
#[derive(Clone, Debug)]
pub struct GaussianFourierProjection {
    w: Tensor,
}

impl GaussianFourierProjection {
    /// `size` random frequencies with standard deviation `scale`; the output has `2·size` features.
    pub fn new(size: usize, scale: f64, vb: VarBuilder) -> Result<Self> {
        let w = vb.get_with_hints(
            size,
            "W",
            Init::Randn {
                mean: 0.0,
                stdev: scale,
            },
        )?;
        Ok(Self { w })
    }

    /// `sigma: [B]` (positive noise levels) → `[B, 2·size]`.
    pub fn forward(&self, sigma: &Tensor) -> Result<Tensor> {
        let proj = sigma
            .log()?
            .unsqueeze(1)?
            .broadcast_mul(&(self.w.unsqueeze(0)? * (2.0 * std::f64::consts::PI))?)?;
        Tensor::cat(&[proj.sin()?, proj.cos()?], 1)
    }
}
