//! Configuration of the NCSN++-style score network (method digest §4).

use serde::{Deserialize, Serialize};

/// Hyper-parameters of [`crate::nn::Ncsnpp`] (NCSN++ naming, method digest §4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NcsnppConfig {
    /// Base width `nf`; level `i` has `nf · ch_mult[i]` channels.
    pub nf: usize,
    /// Channel multiplier per resolution level (the number of levels is its length).
    pub ch_mult: Vec<usize>,
    /// BigGAN residual blocks per level on the way down (the up path has one more).
    pub num_res_blocks: usize,
    /// Spatial sizes (e.g. 16) at which self-attention follows the residual blocks.
    pub attn_resolutions: Vec<usize>,
    /// Dropout probability inside the residual blocks (training only).
    pub dropout: f64,
    /// Standard deviation of the fixed Gaussian Fourier feature matrix (16 in NCSN++).
    pub fourier_scale: f64,
    /// Image side length (the network accepts any size divisible by 2^(levels−1)).
    pub image_size: usize,
    /// Image channels (1 for CT/MRI magnitude).
    pub channels: usize,
    /// Divide the output by the noise level s(t) (NCSN++ `scale_by_sigma`).
    pub scale_by_sigma: bool,
}

impl Default for NcsnppConfig {
    /// CPU-practical 128² configuration: nf 32, ch_mult (1,2,2,2) → 128/64/32/16,
    /// 1 residual block per level, attention at 16² and in the middle, no dropout.
    fn default() -> Self {
        Self {
            nf: 32,
            ch_mult: vec![1, 2, 2, 2],
            num_res_blocks: 1,
            attn_resolutions: vec![16],
            dropout: 0.0,
            fourier_scale: 16.0,
            image_size: 128,
            channels: 1,
            scale_by_sigma: true,
        }
    }
}

impl NcsnppConfig {
    /// Checks that the sizes are usable; returns a description of the first problem.
    pub fn validate(&self) -> Result<(), String> {
        if self.nf == 0 || self.ch_mult.is_empty() || self.ch_mult.contains(&0) {
            return Err("nf and every ch_mult entry must be positive".into());
        }
        if self.channels == 0 {
            return Err("channels must be positive".into());
        }
        let levels = self.ch_mult.len() as u32;
        if self.image_size == 0 || self.image_size % 2usize.pow(levels - 1) != 0 {
            return Err(format!(
                "image_size {} is not divisible by 2^{} (ch_mult has {levels} levels)",
                self.image_size,
                levels - 1
            ));
        }
        for &m in &self.ch_mult {
            if (self.nf * m) % 4 != 0 {
                return Err(format!(
                    "nf·ch_mult = {} is not divisible by 4 (GroupNorm)",
                    self.nf * m
                ));
            }
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!("dropout {} is not in [0, 1)", self.dropout));
        }
        Ok(())
    }
}
