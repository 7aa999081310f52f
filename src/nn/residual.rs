//! The rescaled residual sum of NCSN++ blocks, `(skip + h)·s` with s = 1/√2 (`skip_rescale`),
//! as one multi-threaded pass on the CPU. candle composes it from an add and an affine map,
//! two single-threaded passes (and two graph nodes whose gradients are stored separately); at
//! batch 1 the second core idles through them. The backward pass is `∂skip = ∂h = s·∂out`.

use super::cpu_storage::contiguous_f32;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Elements per rayon task.
const CHUNK: usize = 1 << 15;

/// `f(a_i, b_i)` for all i, in parallel chunks, into a fresh vector.
fn par_zip_map(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) -> Vec<f32> {
    let mut out: Vec<f32> = Vec::with_capacity(a.len());
    out.spare_capacity_mut()[..a.len()]
        .par_chunks_mut(CHUNK)
        .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
        .for_each(|(o, (ac, bc))| {
            for ((o, &x), &y) in o.iter_mut().zip(ac).zip(bc) {
                o.write(f(x, y));
            }
        });
    // SAFETY: the chunks cover all `a.len()` elements and each was written above.
    unsafe { out.set_len(a.len()) };
    out
}

/// `(a + b)·s`.
struct ScaledSum(f32);

impl CustomOp2 for ScaledSum {
    fn name(&self) -> &'static str {
        "medsgm-scaled-sum"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        if l1.shape() != l2.shape() {
            candle_core::bail!("scaled_sum: shapes {:?} and {:?}", l1.shape(), l2.shape())
        }
        let s = self.0;
        let out = par_zip_map(
            contiguous_f32(s1, l1, "scaled_sum", "inputs")?,
            contiguous_f32(s2, l2, "scaled_sum", "inputs")?,
            |x, y| (x + y) * s,
        );
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _a: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = grad.contiguous()?.apply_op1_no_bwd(&Scale(self.0))?;
        Ok((Some(g.clone()), Some(g)))
    }
}

/// `x·s` (the backward pass of [`ScaledSum`]).
struct Scale(f32);

impl CustomOp1 for Scale {
    fn name(&self) -> &'static str {
        "medsgm-scale"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s, l, "scaled_sum", "inputs")?;
        let k = self.0;
        Ok((
            CpuStorage::F32(par_zip_map(x, x, |v, _| v * k)),
            l.shape().clone(),
        ))
    }
}

/// `(a + b)·scale`, differentiable in both: a fused parallel op for contiguous f32 CPU tensors
/// of equal shape, candle's `(a + b) * scale` otherwise.
pub fn scaled_sum(a: &Tensor, b: &Tensor, scale: f64) -> Result<Tensor> {
    let fused = a.device().is_cpu()
        && a.dtype() == candle_core::DType::F32
        && b.dtype() == candle_core::DType::F32
        && a.shape() == b.shape();
    if fused {
        a.contiguous()?
            .apply_op2(&b.contiguous()?, ScaledSum(scale as f32))
    } else {
        (a + b)? * scale
    }
}
