//! σ_max from the data (thesis Technique 6.1, §6.3): σ_max ≈ the largest Euclidean distance
//! between two training points; on large sets (thesis: N > 60 000) a random subset of 10 000.

use crate::error::{ensure, Result};
use candle_core::{DType, IndexOp, Tensor};
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Subset size of Technique 6.1 for large data sets.
pub const SIGMA_MAX_SUBSET: usize = 10_000;

/// Rows per block of the pairwise-distance computation.
const BLOCK: usize = 1024;

/// Maximum pairwise Euclidean distance between the samples of `samples` (`[N, ...]`); when
/// N > `max_points` a seeded random subset of `max_points` samples is used.
pub fn propose_sigma_max(samples: &Tensor, max_points: usize, seed: u64) -> Result<f64> {
    let n = samples.dim(0)?;
    ensure(n >= 2 && max_points >= 2, "samples/max_points", || {
        format!("need at least two samples, got {n} (max_points {max_points})")
    })?;
    let flat = samples.flatten_from(1)?;
    let x = if n > max_points {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut idx: Vec<u32> = sample(&mut rng, n, max_points)
            .into_iter()
            .map(|i| i as u32)
            .collect();
        idx.sort_unstable();
        flat.index_select(&Tensor::new(idx, samples.device())?, 0)?
    } else {
        flat
    };
    let x = x.to_dtype(DType::F32)?;
    let m = x.dim(0)?;
    let sq = x.sqr()?.sum_keepdim(1)?; // [m, 1]
    let mut best = (f32::NEG_INFINITY, 0usize, 0usize);
    for start in (0..m).step_by(BLOCK) {
        let len = BLOCK.min(m - start);
        let xb = x.narrow(0, start, len)?;
        // ‖a − b‖² = ‖a‖² + ‖b‖² − 2 a·b
        let d2 =
            (sq.narrow(0, start, len)?.broadcast_add(&sq.t()?)? - (xb.matmul(&x.t()?)? * 2.0)?)?;
        let rows = d2.max(1)?.to_vec1::<f32>()?;
        let cols = d2.argmax(1)?.to_vec1::<u32>()?;
        for (r, (v, c)) in rows.iter().zip(&cols).enumerate() {
            if *v > best.0 {
                best = (*v, start + r, *c as usize);
            }
        }
    }
    // exact distance of the winning pair in f64 (the Gram form loses digits)
    let diff = (x.i(best.1)?.to_dtype(DType::F64)? - x.i(best.2)?.to_dtype(DType::F64)?)?;
    Ok(diff.sqr()?.sum_all()?.to_scalar::<f64>()?.sqrt())
}
