//! NCSN++-style U-Net score network (method digest §4; thesis B.5.8, NCSN++ with BigGAN blocks,
//! skip rescale, Fourier features of log σ, `scale_by_sigma`; progressive paths and FIR
//! resampling are replaced by plain skip connections and avg-pool / nearest upsampling).

use super::blocks::{group_norm, AttnBlock, ResBlock, Resample};
use super::config::NcsnppConfig;
use super::conv::{Conv, Dense};
use super::embedding::GaussianFourierProjection;
use super::group_norm::GroupNorm;
use super::init::seeded_var_builder;
use candle_core::{Device, Result, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::Mutex;

/// One stage of the encoder or decoder.
#[derive(Clone, Debug)]
enum Stage {
    Res(ResBlock),
    Attn(AttnBlock),
}

/// The score network `s_θ(x, σ)`: input in [0, 1] (mapped to 2x − 1), noise level σ > 0 per
/// sample; output `h/σ` when `scale_by_sigma` (a score estimate for VE), else `h`.
#[derive(Debug)]
pub struct Ncsnpp {
    config: NcsnppConfig,
    fourier: GaussianFourierProjection,
    temb0: Dense,
    temb1: Dense,
    conv_in: Conv,
    /// Encoder stages; every `push` marks whether its output is kept as a skip connection.
    down: Vec<(Stage, bool)>,
    mid: (ResBlock, AttnBlock, ResBlock),
    /// Decoder stages; `true` marks residual blocks that concatenate a skip connection first.
    up: Vec<(Stage, bool)>,
    norm_out: GroupNorm,
    conv_out: Conv,
    dropout_rng: Mutex<ChaCha8Rng>,
}

impl Ncsnpp {
    /// Builds the network, taking its parameters from `vb` (names are stable across versions
    /// of this module: they are the checkpoint keys).
    pub fn new(config: &NcsnppConfig, vb: VarBuilder) -> Result<Self> {
        config.validate().map_err(candle_core::Error::Msg)?;
        let nf = config.nf;
        let temb_dim = 4 * nf;
        let p = config.dropout;
        let fourier =
            GaussianFourierProjection::new(nf, config.fourier_scale, vb.pp("temb.fourier"))?;
        let temb0 = Dense::new(2 * nf, temb_dim, 1.0, vb.pp("temb.dense0"))?;
        let temb1 = Dense::new(temb_dim, temb_dim, 1.0, vb.pp("temb.dense1"))?;
        let conv_in = Conv::new(config.input_channels(), nf, 3, 1.0, vb.pp("conv_in"))?;

        let levels = config.ch_mult.len();
        let mut res = config.image_size;
        let mut ch = nf;
        let mut skip_ch = vec![nf];
        let mut down = Vec::new();
        let vd = vb.pp("down");
        for (level, &mult) in config.ch_mult.iter().enumerate() {
            let vl = vd.pp(level);
            for block in 0..config.num_res_blocks {
                let out = nf * mult;
                let rb = ResBlock::new(
                    ch,
                    out,
                    temb_dim,
                    Resample::None,
                    p,
                    vl.pp(format!("res{block}")),
                )?;
                ch = out;
                if config.attn_resolutions.contains(&res) {
                    down.push((Stage::Res(rb), false));
                    down.push((
                        Stage::Attn(AttnBlock::new(ch, vl.pp(format!("attn{block}")))?),
                        true,
                    ));
                } else {
                    down.push((Stage::Res(rb), true));
                }
                skip_ch.push(ch);
            }
            if level + 1 != levels {
                let rb = ResBlock::new(ch, ch, temb_dim, Resample::Down, p, vl.pp("downsample"))?;
                down.push((Stage::Res(rb), true));
                skip_ch.push(ch);
                res /= 2;
            }
        }
        let vm = vb.pp("mid");
        let mid = (
            ResBlock::new(ch, ch, temb_dim, Resample::None, p, vm.pp("res0"))?,
            AttnBlock::new(ch, vm.pp("attn"))?,
            ResBlock::new(ch, ch, temb_dim, Resample::None, p, vm.pp("res1"))?,
        );
        let mut up = Vec::new();
        let vu = vb.pp("up");
        for (level, &mult) in config.ch_mult.iter().enumerate().rev() {
            let vl = vu.pp(level);
            for block in 0..=config.num_res_blocks {
                let out = nf * mult;
                let c_skip = skip_ch
                    .pop()
                    .ok_or_else(|| candle_core::Error::Msg("U-Net skip bookkeeping".into()))?;
                let rb = ResBlock::new(
                    ch + c_skip,
                    out,
                    temb_dim,
                    Resample::None,
                    p,
                    vl.pp(format!("res{block}")),
                )?;
                up.push((Stage::Res(rb), true));
                ch = out;
            }
            if config.attn_resolutions.contains(&res) {
                up.push((Stage::Attn(AttnBlock::new(ch, vl.pp("attn"))?), false));
            }
            if level != 0 {
                let rb = ResBlock::new(ch, ch, temb_dim, Resample::Up, p, vl.pp("upsample"))?;
                up.push((Stage::Res(rb), false));
                res *= 2;
            }
        }
        let norm_out = group_norm(ch, vb.pp("norm_out"))?;
        let conv_out = Conv::new(ch, config.channels, 3, 0.0, vb.pp("conv_out"))?;
        Ok(Self {
            config: config.clone(),
            fourier,
            temb0,
            temb1,
            conv_in,
            down,
            mid,
            up,
            norm_out,
            conv_out,
            dropout_rng: Mutex::new(ChaCha8Rng::seed_from_u64(0)),
        })
    }

    /// A freshly initialised network whose trainable variables live in `map`, drawn from a
    /// ChaCha8 stream seeded with `seed` (deterministic across runs).
    pub fn init(config: &NcsnppConfig, map: &VarMap, seed: u64, device: &Device) -> Result<Self> {
        Self::new(config, seeded_var_builder(map, seed, device))
    }

    /// The configuration the network was built with.
    pub fn config(&self) -> &NcsnppConfig {
        &self.config
    }

    /// Re-seeds the dropout mask generator (the trainer does this every step for determinism).
    pub fn reseed_dropout(&self, seed: u64) {
        if let Ok(mut rng) = self.dropout_rng.lock() {
            *rng = ChaCha8Rng::seed_from_u64(seed);
        }
    }

    /// Time embedding `Dense(SiLU(Dense(Fourier(log σ))))`, `[B] → [B, 4nf]`.
    fn time_embedding(&self, sigma: &Tensor) -> Result<Tensor> {
        let e = self.fourier.forward(sigma)?;
        self.temb1.forward(&self.temb0.forward(&e)?.silu()?)
    }

    /// The two positional channels `[B, 2, H, W]` of [`Self::forward_at`] for images shaped
    /// like `x` with patch centres `centres` (`[B, 2]`, or `None` for whole images).
    pub fn positions(&self, x: &Tensor, centres: Option<&Tensor>) -> Result<Tensor> {
        let (b, _, h, w) = x.dims4()?;
        let centres: Vec<f32> = match centres {
            Some(c) if c.dims() == [b, 2] => c
                .to_dtype(candle_core::DType::F32)?
                .flatten_all()?
                .to_vec1()?,
            Some(c) => candle_core::bail!(
                "Ncsnpp: patch centres {:?} do not match batch {b}",
                c.shape()
            ),
            None => vec![0.0; 2 * b],
        };
        let unit = self.config.image_size as f32;
        let mut grid = Vec::with_capacity(b * 2 * h * w);
        for centre in centres.chunks_exact(2) {
            for (axis, n) in [(0, h), (1, w)] {
                for r in 0..h {
                    for col in 0..w {
                        let i = if axis == 0 { r } else { col };
                        grid.push((centre[axis] + i as f32 + 0.5 - n as f32 / 2.0) / unit);
                    }
                }
            }
        }
        Tensor::from_vec(grid, (b, 2, h, w), x.device())?.to_dtype(x.dtype())
    }

    fn stage(
        &self,
        stage: &Stage,
        h: &Tensor,
        temb: &Tensor,
        rng: &mut Option<std::sync::MutexGuard<'_, ChaCha8Rng>>,
    ) -> Result<Tensor> {
        match stage {
            Stage::Res(rb) => rb.forward(h, temb, rng.as_deref_mut()),
            Stage::Attn(at) => at.forward(h),
        }
    }

    /// `x: [B, C, H, W]` in [0, 1], `sigma: [B]` noise levels; `train` enables dropout. A
    /// positional network sees each image as a whole image (centred grid, see
    /// [`Self::forward_at`]).
    pub fn forward(&self, x: &Tensor, sigma: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_at(x, None, sigma, train)
    }

    /// [`Self::forward`] for images that are patches of larger ones: `centres: [B, 2]` holds
    /// each patch centre's (row, column) offset in pixels from the centre of its whole image
    /// (`None`: every image is whole, offsets 0). A positional network
    /// ([`NcsnppConfig::positional`]) gets two extra input channels, pixel (r, c) of image b
    /// holding `(centres[b] + (r, c) + ½ − (H, W)/2) / image_size`; other networks ignore
    /// `centres`.
    pub fn forward_at(
        &self,
        x: &Tensor,
        centres: Option<&Tensor>,
        sigma: &Tensor,
        train: bool,
    ) -> Result<Tensor> {
        let (b, c, _, _) = x.dims4()?;
        if c != self.config.channels || sigma.dims() != [b] {
            candle_core::bail!(
                "Ncsnpp: input {:?} / sigma {:?} do not match {} channel(s), batch {b}",
                x.shape(),
                sigma.shape(),
                self.config.channels
            )
        }
        let mut rng = if train && self.config.dropout > 0.0 {
            Some(
                self.dropout_rng
                    .lock()
                    .map_err(|_| candle_core::Error::Msg("poisoned dropout rng".into()))?,
            )
        } else {
            None
        };
        let temb = self.time_embedding(sigma)?;
        let input = ((x * 2.0)? - 1.0)?;
        let input = if self.config.positional {
            Tensor::cat(&[&input, &self.positions(x, centres)?], 1)?
        } else {
            input
        };
        let mut h = self.conv_in.forward(&input)?;
        let mut skips = vec![h.clone()];
        for (stage, keep) in &self.down {
            h = self.stage(stage, &h, &temb, &mut rng)?;
            if *keep {
                skips.push(h.clone());
            }
        }
        h = self.mid.0.forward(&h, &temb, rng.as_deref_mut())?;
        h = self.mid.1.forward(&h)?;
        h = self.mid.2.forward(&h, &temb, rng.as_deref_mut())?;
        for (stage, concat) in &self.up {
            if *concat {
                let s = skips
                    .pop()
                    .ok_or_else(|| candle_core::Error::Msg("U-Net skip bookkeeping".into()))?;
                h = Tensor::cat(&[&h, &s], 1)?;
            }
            h = self.stage(stage, &h, &temb, &mut rng)?;
        }
        let h = self.conv_out.forward(&self.norm_out.forward_silu(&h)?)?;
        if self.config.scale_by_sigma {
            h.broadcast_div(&sigma.reshape((b, 1, 1, 1))?)
        } else {
            Ok(h)
        }
    }
}

impl NcsnppConfig {
    /// Channels of the first convolution: the image's, plus two positional channels when
    /// [`Self::positional`].
    pub fn input_channels(&self) -> usize {
        self.channels + 2 * usize::from(self.positional)
    }

    /// Number of scalar parameters of the network (including the fixed Fourier matrix).
    pub fn parameter_count(&self) -> Result<usize> {
        let map = VarMap::new();
        Ncsnpp::init(self, &map, 0, &Device::Cpu)?;
        Ok(map.all_vars().iter().map(|v| v.elem_count()).sum())
    }
}
