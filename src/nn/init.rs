//! Seeded parameter initialisation. candle cannot seed its CPU generator, so fresh parameters
//! are drawn here from a ChaCha8 stream in construction order and stored in a [`VarMap`].

use candle_core::{DType, Device, Result, Shape, Tensor, Var};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::sync::Mutex;

struct SeededBackend {
    map: VarMap,
    rng: Mutex<ChaCha8Rng>,
}

fn draw(init: Init, n: usize, rng: &mut ChaCha8Rng) -> Result<Vec<f32>> {
    Ok(match init {
        Init::Const(v) => vec![v as f32; n],
        Init::Randn { mean, stdev } => (0..n)
            .map(|_| (mean + stdev * Distribution::<f64>::sample(&StandardNormal, rng)) as f32)
            .collect(),
        Init::Uniform { lo, up } => (0..n).map(|_| rng.random_range(lo..up) as f32).collect(),
        Init::Kaiming { .. } => candle_core::bail!("Kaiming initialisation is not used by medsgm"),
    })
}

impl SimpleBackend for SeededBackend {
    fn get(&self, s: Shape, name: &str, h: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        let mut data = self
            .map
            .data()
            .lock()
            .map_err(|_| candle_core::Error::Msg("poisoned VarMap".into()))?;
        if let Some(v) = data.get(name) {
            if v.shape() != &s {
                candle_core::bail!(
                    "parameter {name}: shape {:?} requested, {:?} stored",
                    s,
                    v.shape()
                )
            }
            return Ok(v.as_tensor().clone());
        }
        let mut rng = self
            .rng
            .lock()
            .map_err(|_| candle_core::Error::Msg("poisoned rng".into()))?;
        let values = draw(h, s.elem_count(), &mut rng)?;
        let var = Var::from_tensor(&Tensor::from_vec(values, s, dev)?.to_dtype(dtype)?)?;
        let t = var.as_tensor().clone();
        data.insert(name.to_string(), var);
        Ok(t)
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _dev: &Device) -> Result<Tensor> {
        let data = self
            .map
            .data()
            .lock()
            .map_err(|_| candle_core::Error::Msg("poisoned VarMap".into()))?;
        data.get(name)
            .map(|v| v.as_tensor().clone())
            .ok_or_else(|| {
                candle_core::Error::CannotFindTensor {
                    path: name.to_string(),
                }
                .bt()
            })
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.map
            .data()
            .lock()
            .map(|d| d.contains_key(name))
            .unwrap_or(false)
    }
}

/// A `VarBuilder` that creates trainable variables in `map`, drawing fresh ones from a ChaCha8
/// stream seeded with `seed` (variables already in `map` are reused unchanged).
pub fn seeded_var_builder(map: &VarMap, seed: u64, device: &Device) -> VarBuilder<'static> {
    let backend = SeededBackend {
        map: map.clone(),
        rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
    };
    VarBuilder::from_backend(Box::new(backend), DType::F32, device.clone())
}
