//! NCSN++ building blocks (method digest §4): BigGAN residual blocks with time conditioning and
//! skip rescaling, DDPM self-attention, average-pool / nearest-neighbour resampling.

use super::conv::{Conv, Dense};
use super::group_norm::GroupNorm;
use super::residual::scaled_sum;
use candle_core::{DType, Result, Tensor};
use candle_nn::{Module, VarBuilder};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Skip-connection rescale 1/√2 of NCSN++ (`skip_rescale`).
pub const SKIP_RESCALE: f64 = std::f64::consts::FRAC_1_SQRT_2;

/// GroupNorm with min(C/4, 32) groups and eps 1e-6 (NCSN++).
pub fn group_norm(channels: usize, vb: VarBuilder) -> Result<GroupNorm> {
    let groups = (channels / 4).clamp(1, 32);
    GroupNorm::new(groups, channels, 1e-6, vb)
}

/// Inverted dropout with a seeded generator: keeps each entry with probability 1 − p and
/// scales kept entries by 1/(1 − p).
pub fn dropout(x: &Tensor, p: f64, rng: &mut ChaCha8Rng) -> Result<Tensor> {
    let scale = 1.0 / (1.0 - p) as f32;
    let mask: Vec<f32> = (0..x.elem_count())
        .map(|_| if rng.random::<f64>() < p { 0.0 } else { scale })
        .collect();
    let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
    x * mask
}

/// Resampling applied inside a residual block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resample {
    /// Keep the resolution.
    None,
    /// 2×2 average pooling (halves H and W).
    Down,
    /// Nearest-neighbour upsampling ×2.
    Up,
}

impl Resample {
    fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Resample::None => Ok(x.clone()),
            Resample::Down => x.avg_pool2d(2),
            Resample::Up => {
                let (_, _, h, w) = x.dims4()?;
                x.upsample_nearest2d(2 * h, 2 * w)
            }
        }
    }
}

/// BigGAN residual block: GN → SiLU → (resample) → conv3×3 → + Dense(SiLU(temb)) → GN → SiLU →
/// dropout → conv3×3 (init ≈ 0); skip = conv1×1(resample(x)) when the shape changes;
/// out = (skip + h)/√2.
#[derive(Clone, Debug)]
pub struct ResBlock {
    norm0: GroupNorm,
    conv0: Conv,
    temb: Dense,
    norm1: GroupNorm,
    conv1: Conv,
    skip: Option<Conv>,
    resample: Resample,
    dropout: f64,
}

impl ResBlock {
    /// Block `c_in → c_out` conditioned on a `temb_dim` time embedding.
    pub fn new(
        c_in: usize,
        c_out: usize,
        temb_dim: usize,
        resample: Resample,
        dropout: f64,
        vb: VarBuilder,
    ) -> Result<Self> {
        let skip = if c_in != c_out || resample != Resample::None {
            Some(Conv::new(c_in, c_out, 1, 1.0, vb.pp("skip"))?)
        } else {
            None
        };
        Ok(Self {
            norm0: group_norm(c_in, vb.pp("norm0"))?,
            conv0: Conv::new(c_in, c_out, 3, 1.0, vb.pp("conv0"))?,
            temb: Dense::new(temb_dim, c_out, 1.0, vb.pp("temb"))?,
            norm1: group_norm(c_out, vb.pp("norm1"))?,
            conv1: Conv::new(c_out, c_out, 3, 0.0, vb.pp("conv1"))?,
            skip,
            resample,
            dropout,
        })
    }

    /// `x: [B, C_in, H, W]`, `temb: [B, temb_dim]`; `rng` enables dropout (training).
    pub fn forward(
        &self,
        x: &Tensor,
        temb: &Tensor,
        rng: Option<&mut ChaCha8Rng>,
    ) -> Result<Tensor> {
        let h = self.norm0.forward_silu(x)?;
        let t = self.temb.forward(&temb.silu()?)?;
        let h = self.conv0.forward_shifted(&self.resample.apply(&h)?, &t)?;
        let h = self.norm1.forward_silu(&h)?;
        let h = match rng {
            Some(rng) if self.dropout > 0.0 => dropout(&h, self.dropout, rng)?,
            _ => h,
        };
        let h = self.conv1.forward(&h)?;
        let x = self.resample.apply(x)?;
        let skip = match &self.skip {
            Some(conv) => conv.forward(&x)?,
            None => x,
        };
        scaled_sum(&skip, &h, SKIP_RESCALE)
    }
}

/// DDPM self-attention over all pixels: GN, q/k/v by 1×1 (NIN), softmax(qkᵀ/√C) v, zero-init
/// output projection, out = (x + h)/√2.
#[derive(Clone, Debug)]
pub struct AttnBlock {
    norm: GroupNorm,
    q: Dense,
    k: Dense,
    v: Dense,
    out: Dense,
}

impl AttnBlock {
    /// Attention over `channels` features.
    pub fn new(channels: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            norm: group_norm(channels, vb.pp("norm"))?,
            q: Dense::new(channels, channels, 1.0, vb.pp("q"))?,
            k: Dense::new(channels, channels, 1.0, vb.pp("k"))?,
            v: Dense::new(channels, channels, 1.0, vb.pp("v"))?,
            out: Dense::new(channels, channels, 0.0, vb.pp("out"))?,
        })
    }

    /// `[B, C, H, W] → [B, C, H, W]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        // Pixels as rows: [B·HW, C].
        let tokens = self
            .norm
            .forward(x)?
            .reshape((b, c, h * w))?
            .transpose(1, 2)?
            .reshape((b * h * w, c))?;
        let q = self.q.forward(&tokens)?.reshape((b, h * w, c))?;
        let k = self.k.forward(&tokens)?.reshape((b, h * w, c))?;
        let v = self.v.forward(&tokens)?.reshape((b, h * w, c))?;
        let logits = (q.matmul(&k.t()?)? * (1.0 / (c as f64).sqrt()))?;
        let attn = candle_nn::ops::softmax_last_dim(&logits.to_dtype(DType::F32)?)?;
        let hh = attn.matmul(&v)?.reshape((b * h * w, c))?;
        let hh = self
            .out
            .forward(&hh)?
            .reshape((b, h * w, c))?
            .transpose(1, 2)?
            .reshape((b, c, h, w))?;
        scaled_sum(x, &hh, SKIP_RESCALE)
    }
}
