//! Per-sample helpers for batched tensors x: `[B, ...]` and time vectors t: `[B]`.

use candle_core::{DType, Device, Tensor};

/// The time vector t: `[B]` (f32, the [`crate::ScoreModel`] contract) filled with `t`.
pub fn time_tensor(t: f64, batch: usize, device: &Device) -> candle_core::Result<Tensor> {
    Tensor::full(t as f32, batch, device)
}

/// The per-sample times of a `[B]` tensor, as f64.
pub fn times(t: &Tensor) -> candle_core::Result<Vec<f64>> {
    t.to_dtype(DType::F64)?.to_vec1::<f64>()
}

/// A `[B, 1, ..., 1]` tensor (dtype and device of `like`, rank of `like`) holding one scalar per
/// sample, for broadcasting per-sample coefficients such as m(t_b) or s(t_b).
pub fn per_sample(values: &[f64], like: &Tensor) -> candle_core::Result<Tensor> {
    let mut shape = vec![1usize; like.rank()];
    shape[0] = values.len();
    Tensor::from_vec(values.to_vec(), shape, like.device())?.to_dtype(like.dtype())
}

/// Euclidean norm of every sample of x: `[B, ...]` (host f64 values).
pub fn sample_norms(x: &Tensor) -> candle_core::Result<Vec<f64>> {
    x.flatten_from(1)?
        .to_dtype(DType::F64)?
        .sqr()?
        .sum(1)?
        .sqrt()?
        .to_vec1::<f64>()
}

/// Mean over the batch of the per-sample Euclidean norms (thesis Alg. B.6/B.7 with a batch).
pub fn mean_norm(x: &Tensor) -> candle_core::Result<f64> {
    let n = sample_norms(x)?;
    Ok(n.iter().sum::<f64>() / n.len().max(1) as f64)
}

/// Number of elements per sample (D).
pub fn sample_dim(x: &Tensor) -> usize {
    x.dims().iter().skip(1).product()
}
