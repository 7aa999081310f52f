//! Seeded noise on tensors: draws come from a ChaCha8 stream on the host and are copied into a
//! tensor, so samplers are bit-reproducible for a given seed whatever candle's own RNG does.

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// A seeded source of Gaussian, Rademacher and uniform tensors.
#[derive(Debug, Clone)]
pub struct Noise {
    rng: ChaCha8Rng,
}

impl Noise {
    /// A stream seeded with `ChaCha8Rng::seed_from_u64(seed)`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// The underlying generator (for host-side draws that must share the stream).
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    fn tensor(
        &mut self,
        shape: &[usize],
        dtype: DType,
        device: &Device,
        mut draw: impl FnMut(&mut ChaCha8Rng) -> f64,
    ) -> candle_core::Result<Tensor> {
        let n: usize = shape.iter().product();
        let values: Vec<f64> = (0..n).map(|_| draw(&mut self.rng)).collect();
        match dtype {
            DType::F64 => Tensor::from_vec(values, shape, device),
            _ => {
                let v32: Vec<f32> = values.into_iter().map(|v| v as f32).collect();
                Tensor::from_vec(v32, shape, device)?.to_dtype(dtype)
            }
        }
    }

    /// Standard normal tensor z ~ N(0, I).
    pub fn randn(
        &mut self,
        shape: &[usize],
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        self.tensor(shape, dtype, device, |r| StandardNormal.sample(r))
    }

    /// Standard normal tensor with the shape, dtype and device of `x`.
    pub fn randn_like(&mut self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.randn(x.dims(), x.dtype(), x.device())
    }

    /// Rademacher (±1 with probability ½) tensor shaped like `x`.
    pub fn rademacher_like(&mut self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.tensor(x.dims(), x.dtype(), x.device(), |r| {
            if r.random::<bool>() {
                1.0
            } else {
                -1.0
            }
        })
    }

    /// Uniform tensor on [lo, hi).
    pub fn uniform(
        &mut self,
        shape: &[usize],
        lo: f64,
        hi: f64,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        self.tensor(shape, dtype, device, |r| lo + (hi - lo) * r.random::<f64>())
    }
}
