//! 2-D convolutions for the score network.
//!
//! candle 0.11's CPU `conv2d` runs at a fraction of its matmul throughput, its backward costs
//! 3–4× the forward (see `dependencies.md`), and an im2col built from candle ops would keep the
//! 9×-inflated column matrix alive for the backward pass. On the CPU a stride-1 "same"
//! convolution is therefore a fused custom op: per sample, an im2col into a reused buffer
//! (none for 1×1 kernels) followed by one GEMM `y_b[Co, HW] = bias_b 1ᵀ + W[Co, C·k²] ·
//! cols(x_b)[C·k², HW]` (the `gemm` crate that candle's matmul uses). The bias is per sample
//! (`[B, Co]`) so that a residual block's time-embedding shift is folded in too. The backward
//! recomputes the columns: `∂W = Σ_b g_b · cols(x_b)ᵀ`, `∂bias_b = g_b 1`,
//! `∂x_b = col2im(Wᵀ g_b)`. Batches with at least one sample per thread are split across the
//! rayon threads (single-threaded GEMMs, one column buffer per thread, kept between calls);
//! smaller ones use the GEMM's own threading. Other devices use candle's `conv2d`.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use candle_nn::{Init, VarBuilder};
use rayon::prelude::*;

/// Shifted copy of one image row: `dst[x] = src[x + dx − pad]` with zeros outside `src`.
#[inline]
fn shifted_row(dst: &mut [f32], src: &[f32], dx: usize, pad: usize) {
    let w = src.len() as isize;
    let off = dx as isize - pad as isize;
    let lo = (-off).clamp(0, w) as usize;
    let hi = (w - off).clamp(0, w) as usize;
    dst[..lo].fill(0.0);
    dst[hi.max(lo)..].fill(0.0);
    if lo < hi {
        let s = (lo as isize + off) as usize;
        dst[lo..hi].copy_from_slice(&src[s..s + (hi - lo)]);
    }
}

/// `dst[x + dx − pad] += src[x]` for the in-range part (adjoint of [`shifted_row`]).
#[inline]
fn add_shifted_row(dst: &mut [f32], src: &[f32], dx: usize, pad: usize) {
    let w = src.len() as isize;
    let off = dx as isize - pad as isize;
    let lo = (-off).clamp(0, w) as usize;
    let hi = (w - off).clamp(0, w) as usize;
    if lo < hi {
        let s = (lo as isize + off) as usize;
        for (d, v) in dst[s..s + (hi - lo)].iter_mut().zip(&src[lo..hi]) {
            *d += v;
        }
    }
}

/// im2col of one sample: `x: [C, H, W] → cols: [C·k·k, H·W]`, row `(c·k + ky)·k + kx` holding
/// `x[c, y + ky − p, x + kx − p]` (zero outside), p = k/2.
fn unfold(x: &[f32], cols: &mut [f32], k: usize, h: usize, w: usize) {
    let (hw, pad) = (h * w, k / 2);
    cols.par_chunks_mut(k * k * hw)
        .zip(x.par_chunks(hw))
        .for_each(|(block, plane)| {
            for ky in 0..k {
                for kx in 0..k {
                    let rows = &mut block[(ky * k + kx) * hw..(ky * k + kx + 1) * hw];
                    for (y, dst) in rows.chunks_mut(w).enumerate() {
                        let sy = y as isize + ky as isize - pad as isize;
                        if sy < 0 || sy >= h as isize {
                            dst.fill(0.0);
                        } else {
                            let sy = sy as usize;
                            shifted_row(dst, &plane[sy * w..(sy + 1) * w], kx, pad);
                        }
                    }
                }
            }
        });
}

/// col2im of one sample, the adjoint of [`unfold`]: accumulates `cols` into `x: [C, H, W]`.
fn fold(cols: &[f32], x: &mut [f32], k: usize, h: usize, w: usize) {
    let (hw, pad) = (h * w, k / 2);
    x.par_chunks_mut(hw)
        .zip(cols.par_chunks(k * k * hw))
        .for_each(|(plane, block)| {
            for ky in 0..k {
                for kx in 0..k {
                    let rows = &block[(ky * k + kx) * hw..(ky * k + kx + 1) * hw];
                    for (y, src) in rows.chunks(w).enumerate() {
                        let sy = y as isize + ky as isize - pad as isize;
                        if sy >= 0 && sy < h as isize {
                            let sy = sy as usize;
                            add_shifted_row(&mut plane[sy * w..(sy + 1) * w], src, kx, pad);
                        }
                    }
                }
            }
        });
}

/// A row-major matrix operand for [`matmul`]: `rows × cols`, optionally read transposed.
#[derive(Clone, Copy)]
struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    transposed: bool,
}

impl Mat<'_> {
    /// (rows, cols, column stride, row stride) of the operand as used.
    fn geometry(&self) -> (usize, usize, isize, isize) {
        if self.transposed {
            (self.cols, self.rows, self.cols as isize, 1)
        } else {
            (self.rows, self.cols, 1, self.cols as isize)
        }
    }
}

/// `dst (+)= a · b` with row-major `dst: [m, n]`; accumulates when `accumulate`; the GEMM
/// itself is multi-threaded when `par` says so.
fn matmul(dst: &mut [f32], a: Mat, b: Mat, accumulate: bool, par: gemm::Parallelism) -> Result<()> {
    let (m, ka, a_cs, a_rs) = a.geometry();
    let (kb, n, b_cs, b_rs) = b.geometry();
    if ka != kb
        || dst.len() != m * n
        || a.data.len() != a.rows * a.cols
        || b.data.len() != b.rows * b.cols
    {
        candle_core::bail!(
            "conv matmul: inconsistent sizes {m}×{ka} · {kb}×{n} into {}",
            dst.len()
        )
    }
    // SAFETY: the slices hold exactly the m×k, k×n and m×n elements addressed by the strides
    // above (checked), `dst` is exclusively borrowed and does not alias the inputs.
    unsafe {
        gemm::gemm(
            m,
            n,
            ka,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a_cs,
            a_rs,
            b.data.as_ptr(),
            b_cs,
            b_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
    Ok(())
}

/// How a kernel splits its batch. With at least one sample per rayon thread, samples are
/// independent rayon tasks (work-stealing, so a descheduled thread does not hold the others up)
/// with single-threaded GEMMs, and sums over the batch use `per_group`-sample contiguous groups,
/// one per thread, added in a fixed order (deterministic for a given thread count). Otherwise
/// the samples run in turn (`min_len` = the batch: rayon does not split) and each GEMM uses
/// all threads.
#[derive(Clone, Copy, Debug)]
struct BatchSplit {
    min_len: usize,
    per_group: usize,
    gemm: gemm::Parallelism,
}

impl BatchSplit {
    fn new(batch: usize) -> Self {
        let threads = rayon::current_num_threads();
        let batch = batch.max(1);
        if threads > 1 && batch >= threads {
            Self {
                min_len: 1,
                per_group: batch.div_ceil(threads),
                gemm: gemm::Parallelism::None,
            }
        } else {
            Self {
                min_len: batch,
                per_group: batch,
                gemm: if threads > 1 {
                    gemm::Parallelism::Rayon(threads)
                } else {
                    gemm::Parallelism::None
                },
            }
        }
    }
}

thread_local! {
    /// Per-thread column buffer, kept between calls: a fresh multi-megabyte buffer per conv
    /// would be page-faulted in every time (the largest, 576 × 256² floats = 151 MB for the
    /// 64-channel 256² convolutions of an nf = 32 network, stays allocated per thread).
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` on a scratch slice of `len` floats (arbitrary contents): the thread's buffer, or a
/// fresh one when the thread's buffer is in use further up its stack (rayon may run a second
/// sample on a thread that waits inside the first).
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < len {
                buf.resize(len, 0.0);
            }
            f(&mut buf[..len])
        }
        Err(_) => f(&mut vec![0f32; len]),
    })
}

fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg(format!("conv: {what} must be contiguous")))?;
    Ok(&storage.as_slice::<f32>()?[start..end])
}

/// Sizes of a stride-1 "same" convolution of `[B, C, H, W]` with `[Co, C, k, k]`.
#[derive(Clone, Copy, Debug)]
struct ConvDims {
    b: usize,
    c: usize,
    co: usize,
    h: usize,
    w: usize,
    k: usize,
}

impl ConvDims {
    fn new(x: &Shape, weight: &Shape) -> Result<Self> {
        let (b, c, h, w) = x.dims4()?;
        let (co, ci, k, k2) = weight.dims4()?;
        if ci != c || k != k2 || k % 2 == 0 {
            candle_core::bail!(
                "conv2d_same: weight {weight:?} does not fit input {x:?} (odd square kernel)"
            )
        }
        Ok(Self { b, c, co, h, w, k })
    }
    fn hw(&self) -> usize {
        self.h * self.w
    }
    fn ckk(&self) -> usize {
        self.c * self.k * self.k
    }
    /// Length of the column buffer (none for 1×1 kernels, whose columns are the input).
    fn cols_len(&self) -> usize {
        if self.k == 1 {
            0
        } else {
            self.ckk() * self.hw()
        }
    }
    fn weight<'a>(&self, data: &'a [f32], transposed: bool) -> Mat<'a> {
        Mat {
            data,
            rows: self.co,
            cols: self.ckk(),
            transposed,
        }
    }
    /// `cols(x_b)` as a `[C·k², HW]` matrix: `x_b` itself for 1×1 kernels, else unfolded
    /// into `cols`.
    fn columns<'a>(&self, xb: &'a [f32], cols: &'a mut [f32]) -> Mat<'a> {
        let data: &'a [f32] = if self.k == 1 {
            xb
        } else {
            unfold(xb, cols, self.k, self.h, self.w);
            &*cols
        };
        Mat {
            data,
            rows: self.ckk(),
            cols: self.hw(),
            transposed: false,
        }
    }
}

/// Forward op on `(x, weight, bias)` with a per-sample bias `[B, Co]`:
/// `y_b = bias_b 1ᵀ + W · cols(x_b)`.
struct ConvSame;

impl CustomOp3 for ConvSame {
    fn name(&self) -> &'static str {
        "medsgm-conv2d-same"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = ConvDims::new(l1.shape(), l2.shape())?;
        let (x, wt, bias) = (
            contiguous_f32(s1, l1, "input")?,
            contiguous_f32(s2, l2, "weight")?,
            contiguous_f32(s3, l3, "bias")?,
        );
        if bias.len() != d.b * d.co {
            candle_core::bail!("conv2d_same: bias {:?} is not [B, Co]", l3.shape())
        }
        let (chw, cohw) = (d.c * d.hw(), d.co * d.hw());
        let mut out = vec![0f32; d.b * cohw];
        let split = BatchSplit::new(d.b);
        x.par_chunks(chw)
            .zip(out.par_chunks_mut(cohw))
            .zip(bias.par_chunks(d.co))
            .with_min_len(split.min_len)
            .try_for_each(|((xb, yb), bb)| {
                for (row, &v) in yb.chunks_mut(d.hw()).zip(bb) {
                    row.fill(v);
                }
                with_scratch(d.cols_len(), |cols| {
                    let rhs = d.columns(xb, cols);
                    matmul(yb, d.weight(wt, false), rhs, true, split.gemm)
                })
            })?;
        Ok((CpuStorage::F32(out), Shape::from((d.b, d.co, d.h, d.w))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let gx = grad.apply_op2_no_bwd(
            weight,
            &ConvSameGradInput {
                h: x.dim(2)?,
                w: x.dim(3)?,
                c: x.dim(1)?,
            },
        )?;
        let nw = weight.elem_count();
        let packed = x.apply_op2_no_bwd(&grad, &ConvSameGradParams { k: weight.dim(2)? })?;
        let gw = packed.narrow(0, 0, nw)?.reshape(weight.shape())?;
        let gb = packed
            .narrow(0, nw, bias.elem_count())?
            .reshape(bias.shape())?;
        Ok((Some(gx), Some(gw), Some(gb)))
    }
}

/// `∂x_b = col2im(Wᵀ g_b)` on `(grad, weight)`.
struct ConvSameGradInput {
    c: usize,
    h: usize,
    w: usize,
}

impl CustomOp2 for ConvSameGradInput {
    fn name(&self) -> &'static str {
        "medsgm-conv2d-same-grad-input"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let b = l1.shape().dims4()?.0;
        let d = ConvDims::new(&Shape::from((b, self.c, self.h, self.w)), l2.shape())?;
        let (g, wt) = (
            contiguous_f32(s1, l1, "gradient")?,
            contiguous_f32(s2, l2, "weight")?,
        );
        let (chw, cohw) = (d.c * d.hw(), d.co * d.hw());
        let mut out = vec![0f32; d.b * chw];
        let split = BatchSplit::new(d.b);
        g.par_chunks(cohw)
            .zip(out.par_chunks_mut(chw))
            .with_min_len(split.min_len)
            .try_for_each(|(gb, xb)| {
                let rhs = Mat {
                    data: gb,
                    rows: d.co,
                    cols: d.hw(),
                    transposed: false,
                };
                if d.k == 1 {
                    matmul(xb, d.weight(wt, true), rhs, false, split.gemm)
                } else {
                    with_scratch(d.cols_len(), |cols| {
                        matmul(cols, d.weight(wt, true), rhs, false, split.gemm)?;
                        fold(cols, xb, d.k, d.h, d.w);
                        Ok(())
                    })
                }
            })?;
        Ok((CpuStorage::F32(out), Shape::from((d.b, d.c, d.h, d.w))))
    }
}

/// `∂W = Σ_b g_b · cols(x_b)ᵀ` and `∂bias_b = g_b 1` on `(x, grad)`, packed as
/// `[∂W (flattened), ∂bias (B·Co)]`; per-group partial sums of ∂W are added in group order.
struct ConvSameGradParams {
    k: usize,
}

impl CustomOp2 for ConvSameGradParams {
    fn name(&self) -> &'static str {
        "medsgm-conv2d-same-grad-params"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (b, c, h, w) = l1.shape().dims4()?;
        let co = l2.shape().dims4()?.1;
        let d = ConvDims::new(l1.shape(), &Shape::from((co, c, self.k, self.k)))?;
        if l2.shape().dims4()? != (b, co, h, w) {
            candle_core::bail!(
                "conv grad-params: gradient {:?} for input {:?}",
                l2.shape(),
                l1.shape()
            )
        }
        let (x, g) = (
            contiguous_f32(s1, l1, "input")?,
            contiguous_f32(s2, l2, "gradient")?,
        );
        let (chw, cohw, nw) = (d.c * d.hw(), d.co * d.hw(), d.co * d.ckk());
        let mut gbias = vec![0f32; d.b * d.co];
        let split = BatchSplit::new(d.b);
        let partials: Vec<Vec<f32>> = x
            .par_chunks(split.per_group * chw)
            .zip(g.par_chunks(split.per_group * cohw))
            .zip(gbias.par_chunks_mut(split.per_group * d.co))
            .map(|((xs, gs), gbs)| {
                let mut gw = vec![0f32; nw];
                for (i, ((xb, gb), gbb)) in xs
                    .chunks(chw)
                    .zip(gs.chunks(cohw))
                    .zip(gbs.chunks_mut(d.co))
                    .enumerate()
                {
                    for (o, row) in gbb.iter_mut().zip(gb.chunks(d.hw())) {
                        *o = row.iter().sum();
                    }
                    let lhs = Mat {
                        data: gb,
                        rows: d.co,
                        cols: d.hw(),
                        transposed: false,
                    };
                    with_scratch(d.cols_len(), |cols| {
                        let rhs = Mat {
                            transposed: true,
                            ..d.columns(xb, cols)
                        };
                        matmul(&mut gw, lhs, rhs, i > 0, split.gemm)
                    })?;
                }
                Ok(gw)
            })
            .collect::<Result<_>>()?;
        let mut out = Vec::with_capacity(nw + gbias.len());
        let mut parts = partials.into_iter();
        out.extend(parts.next().unwrap_or_else(|| vec![0f32; nw]));
        for p in parts {
            for (o, v) in out.iter_mut().zip(p) {
                *o += v;
            }
        }
        out.extend(gbias);
        Ok((CpuStorage::F32(out), Shape::from(nw + d.b * d.co)))
    }
}

/// Stride-1 convolution with "same" zero padding and a per-sample bias by fused im2col + GEMM
/// (CPU, f32); batches with at least one sample per rayon thread are split across threads.
///
/// `x: [B, C, H, W]`, `weight: [Co, C, k, k]` (k odd), `bias: [B, Co]` → `[B, Co, H, W]`;
/// equal to `x.conv2d(weight, k/2, 1, 1, 1) + bias[:, :, None, None]` and differentiable in all
/// three arguments.
pub fn conv2d_same_im2col(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
    x.contiguous()?
        .apply_op3(&weight.contiguous()?, &bias.contiguous()?, ConvSame)
}

/// Stride-1 "same" convolution plus a per-sample bias `[B, Co]`: the fused kernel
/// [`conv2d_same_im2col`] on the CPU, candle's `conv2d` on other devices.
pub fn conv2d_same(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == candle_core::DType::F32 {
        conv2d_same_im2col(x, weight, bias)
    } else {
        let k = weight.dim(2)?;
        x.conv2d(weight, k / 2, 1, 1, 1)?
            .broadcast_add(&bias.unsqueeze(2)?.unsqueeze(3)?)
    }
}

/// DDPM/NCSN++ `default_init(scale)`: variance scaling, fan-average, uniform
/// (limit √(3·scale / ((fan_in + fan_out)/2))); scale 0 is replaced by 1e-10 as in the reference.
pub fn default_init(scale: f64, fan_in: usize, fan_out: usize) -> Init {
    let scale = if scale == 0.0 { 1e-10 } else { scale };
    let limit = (3.0 * scale / ((fan_in + fan_out) as f64 / 2.0)).sqrt();
    Init::Uniform {
        lo: -limit,
        up: limit,
    }
}

/// A stride-1 "same" convolution layer with bias (NCSN++ `conv3x3` / `conv1x1`).
#[derive(Clone, Debug)]
pub struct Conv {
    weight: Tensor,
    bias: Tensor,
}

impl Conv {
    /// `k×k` convolution `c_in → c_out` initialised with [`default_init`]`(init_scale)`, zero bias.
    pub fn new(
        c_in: usize,
        c_out: usize,
        k: usize,
        init_scale: f64,
        vb: VarBuilder,
    ) -> Result<Self> {
        let init = default_init(init_scale, c_in * k * k, c_out * k * k);
        let weight = vb.get_with_hints((c_out, c_in, k, k), "weight", init)?;
        let bias = vb.get_with_hints(c_out, "bias", Init::Const(0.0))?;
        Ok(Self { weight, bias })
    }

    /// `[B, C_in, H, W] → [B, C_out, H, W]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let b = x.dim(0)?;
        let bias = self
            .bias
            .unsqueeze(0)?
            .broadcast_as((b, self.bias.dim(0)?))?;
        conv2d_same(x, &self.weight, &bias)
    }

    /// `conv(x) + shift[:, :, None, None]` with a per-sample shift `[B, C_out]` folded into the
    /// bias (the time-embedding projection of a residual block).
    pub fn forward_shifted(&self, x: &Tensor, shift: &Tensor) -> Result<Tensor> {
        conv2d_same(x, &self.weight, &shift.broadcast_add(&self.bias)?)
    }
}

/// Dense layer `y = x Wᵀ + b` with [`default_init`] (NCSN++ `Dense` / `NIN`).
#[derive(Clone, Debug)]
pub struct Dense {
    weight: Tensor,
    bias: Tensor,
}

impl Dense {
    /// `d_in → d_out` with [`default_init`]`(init_scale)` and zero bias.
    pub fn new(d_in: usize, d_out: usize, init_scale: f64, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get_with_hints(
            (d_out, d_in),
            "weight",
            default_init(init_scale, d_in, d_out),
        )?;
        let bias = vb.get_with_hints(d_out, "bias", Init::Const(0.0))?;
        Ok(Self { weight, bias })
    }

    /// `[B, d_in] → [B, d_out]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.weight.t()?)?.broadcast_add(&self.bias)
    }
}
