//! Configuration of the NCSN++-style score network (method digest §4).

use serde::{Deserialize, Serialize};

/// Hyper-parameters of [`crate::nn::Ncsnpp`] (NCSN++ naming, method digest §4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NcsnppConfig {
    /// Base width `nf`; level `i` has `nf · ch_mult[i]` channels (at most [`MAX_WIDTH`]).
    pub nf: usize,
    /// Channel multiplier per resolution level (the number of levels is its length, at most
    /// [`MAX_LEVELS`]).
    pub ch_mult: Vec<usize>,
    /// BigGAN residual blocks per level on the way down (the up path has one more; at most
    /// [`MAX_RES_BLOCKS`]).
    pub num_res_blocks: usize,
    /// Spatial sizes (e.g. 16) at which self-attention follows the residual blocks.
    pub attn_resolutions: Vec<usize>,
    /// Dropout probability inside the residual blocks (training only).
    pub dropout: f64,
    /// Standard deviation of the fixed Gaussian Fourier feature matrix (16 in NCSN++).
    pub fourier_scale: f64,
    /// Image side length (the network accepts any size divisible by 2^(levels−1); at most
    /// [`MAX_IMAGE_SIZE`], with the middle attention at no more than [`MAX_ATTN_RESOLUTION`]).
    pub image_size: usize,
    /// Image channels (1 for CT/MRI magnitude; at most [`MAX_CHANNELS`]).
    pub channels: usize,
    /// Divide the output by the noise level s(t) (NCSN++ `scale_by_sigma`).
    pub scale_by_sigma: bool,
    /// Positional channels (PaDIS, Hu et al. 2024): two extra input channels holding each
    /// pixel's (row, column) offset from the centre of its whole image, in units of
    /// `image_size` pixels — for a patch prior, the patch's place in the slice it was cut from;
    /// at inference, the centred grid of the image being reconstructed (see
    /// [`crate::nn::Ncsnpp::forward_at`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub positional: bool,
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
            positional: false,
        }
    }
}

/// Largest `image_size` a configuration may ask for.
pub const MAX_IMAGE_SIZE: usize = 1024;
/// Most image `channels`.
pub const MAX_CHANNELS: usize = 16;
/// Most resolution levels (entries of `ch_mult`).
pub const MAX_LEVELS: usize = 8;
/// Widest level, `nf · ch_mult[i]` (and so the largest `nf`).
pub const MAX_WIDTH: usize = 2048;
/// Most residual blocks per level (`num_res_blocks`).
pub const MAX_RES_BLOCKS: usize = 16;
/// Largest side length at which self-attention may run (`attn_resolutions` and the middle
/// attention at `image_size / 2^(levels−1)`): an attention map has side⁴ entries per image.
pub const MAX_ATTN_RESOLUTION: usize = 64;

impl NcsnppConfig {
    /// Checks that the sizes are usable and within the documented limits
    /// ([`MAX_IMAGE_SIZE`], [`MAX_CHANNELS`], [`MAX_LEVELS`], [`MAX_WIDTH`],
    /// [`MAX_RES_BLOCKS`], [`MAX_ATTN_RESOLUTION`]); returns a description of the first
    /// problem, naming the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.nf == 0 || self.ch_mult.is_empty() || self.ch_mult.contains(&0) {
            return Err("nf and every ch_mult entry must be positive".into());
        }
        if self.nf > MAX_WIDTH {
            return Err(format!("nf {} must be at most {MAX_WIDTH}", self.nf));
        }
        if self.ch_mult.len() > MAX_LEVELS {
            return Err(format!(
                "ch_mult has {} levels, at most {MAX_LEVELS} are allowed",
                self.ch_mult.len()
            ));
        }
        if let Some(&m) = self.ch_mult.iter().find(|&&m| m > MAX_WIDTH / self.nf) {
            return Err(format!(
                "nf·ch_mult = {}·{m} exceeds the widest level allowed, {MAX_WIDTH}",
                self.nf
            ));
        }
        if self.channels == 0 || self.channels > MAX_CHANNELS {
            return Err(format!(
                "channels {} must be in 1..={MAX_CHANNELS}",
                self.channels
            ));
        }
        if self.num_res_blocks > MAX_RES_BLOCKS {
            return Err(format!(
                "num_res_blocks {} must be at most {MAX_RES_BLOCKS}",
                self.num_res_blocks
            ));
        }
        if self.image_size == 0 || self.image_size > MAX_IMAGE_SIZE {
            return Err(format!(
                "image_size {} must be in 1..={MAX_IMAGE_SIZE}",
                self.image_size
            ));
        }
        let levels = self.ch_mult.len() as u32;
        if !self.image_size.is_multiple_of(2usize.pow(levels - 1)) {
            return Err(format!(
                "image_size {} is not divisible by 2^{} (ch_mult has {levels} levels)",
                self.image_size,
                levels - 1
            ));
        }
        for &m in &self.ch_mult {
            if !(self.nf * m).is_multiple_of(4) {
                return Err(format!(
                    "nf·ch_mult = {} is not divisible by 4 (GroupNorm)",
                    self.nf * m
                ));
            }
        }
        if let Some(r) = self
            .attn_resolutions
            .iter()
            .find(|&&r| r > MAX_ATTN_RESOLUTION)
        {
            return Err(format!(
                "attn_resolutions entry {r} exceeds {MAX_ATTN_RESOLUTION} (self-attention \
                 at r² positions costs r⁴ per image)"
            ));
        }
        let middle = self.image_size >> (levels - 1);
        if middle > MAX_ATTN_RESOLUTION {
            return Err(format!(
                "image_size {} with {levels} ch_mult levels puts the middle self-attention at \
                 {middle}², above {MAX_ATTN_RESOLUTION}² (add levels to ch_mult or lower \
                 image_size)",
                self.image_size
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!("dropout {} is not in [0, 1)", self.dropout));
        }
        if !(self.fourier_scale.is_finite() && self.fourier_scale > 0.0) {
            return Err(format!(
                "fourier_scale {} must be positive and finite",
                self.fourier_scale
            ));
        }
        Ok(())
    }

    /// A rough count of the f32 activations one training image keeps for the backward pass
    /// (about eight `width × side²` tensors per residual block, the attention maps side⁴):
    /// used to refuse configurations whose batch would not fit in memory before any
    /// allocation. Call only on a configuration that passed [`Self::validate`].
    pub fn activation_floats_per_image(&self) -> f64 {
        const PER_BLOCK: f64 = 8.0;
        let levels = self.ch_mult.len();
        let mut total = 0.0;
        for (i, &m) in self.ch_mult.iter().enumerate() {
            let side = (self.image_size >> i) as f64;
            let width = (self.nf * m) as f64;
            // Down path num_res_blocks, up path one more, plus the resampling block.
            let blocks = (2 * self.num_res_blocks + 2) as f64;
            total += blocks * PER_BLOCK * width * side * side;
            if self.attn_resolutions.contains(&(self.image_size >> i)) {
                total += (2 * self.num_res_blocks + 1) as f64 * side.powi(4);
            }
        }
        let side = (self.image_size >> (levels - 1)) as f64;
        let width = (self.nf * self.ch_mult[levels - 1]) as f64;
        total + 2.0 * PER_BLOCK * width * side * side + side.powi(4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_beyond_the_limits_are_refused_naming_the_field() {
        let ok = NcsnppConfig::default();
        assert!(ok.validate().is_ok());
        let cases: [(&str, NcsnppConfig); 7] = [
            (
                "image_size",
                NcsnppConfig {
                    image_size: 100_000,
                    ..ok.clone()
                },
            ),
            (
                "nf",
                NcsnppConfig {
                    nf: 1 << 20,
                    ..ok.clone()
                },
            ),
            (
                "ch_mult",
                NcsnppConfig {
                    ch_mult: vec![1; 100],
                    ..ok.clone()
                },
            ),
            (
                "nf·ch_mult",
                NcsnppConfig {
                    ch_mult: vec![1, 1000],
                    ..ok.clone()
                },
            ),
            (
                "channels",
                NcsnppConfig {
                    channels: 1000,
                    ..ok.clone()
                },
            ),
            (
                "num_res_blocks",
                NcsnppConfig {
                    num_res_blocks: 1000,
                    ..ok.clone()
                },
            ),
            (
                "middle self-attention",
                NcsnppConfig {
                    image_size: 1024,
                    ..ok.clone()
                },
            ),
        ];
        for (field, cfg) in cases {
            let e = cfg.validate().unwrap_err();
            assert!(e.contains(field), "{field}: {e}");
        }
    }

    #[test]
    fn activation_estimate_grows_with_the_image() {
        let small = NcsnppConfig::default();
        let large = NcsnppConfig {
            image_size: 512,
            ch_mult: vec![1, 2, 2, 2, 2, 2],
            ..small.clone()
        };
        assert!(large.validate().is_ok());
        let (a, b) = (
            small.activation_floats_per_image(),
            large.activation_floats_per_image(),
        );
        assert!(a > 1e6 && b > 10.0 * a, "{a} {b}");
    }
}
