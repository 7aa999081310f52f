//! 2-D convolutions for the score network.
//!
//! candle 0.11's CPU `conv2d` runs at a fraction of its matmul throughput, its backward costs
//! 3–4× the forward (measured by `medsgm bench model`, BENCHMARKS.md), and an im2col built from candle ops would keep the
//! 9×-inflated column matrix alive for the backward pass. On the CPU a stride-1 "same"
//! convolution is therefore a fused custom op: per sample, an im2col into a reused buffer
//! (none for 1×1 kernels) followed by a GEMM `y_b[Co, HW] = bias_b 1ᵀ + W[Co, C·k²] ·
//! cols(x_b)[C·k², HW]` (the `gemm` crate that candle's matmul uses). The bias is per sample
//! (`[B, Co]`) so that a residual block's time-embedding shift is folded in too. The backward
//! recomputes the columns: `∂W = Σ_b g_b · cols(x_b)ᵀ`, `∂bias_b = g_b 1`, and
//! `∂x = conv_same(g, W̃)`, a forward convolution of the output gradient with the flipped,
//! channel-transposed kernel (the adjoint of a symmetric-padding stride-1 convolution).
//!
//! **Row bands.** The full column matrix is large (576 × 256² floats = 151 MB for a 64-channel
//! 3×3 convolution at 256²): building it and streaming it through one GEMM is memory-bound.
//! Every sample is therefore processed in bands of output rows `r0..r1`: the band's columns
//! `cols(x_b)[:, r0·W..r1·W]` are unfolded into a per-thread scratch buffer and consumed at
//! once while they are still in cache, by a GEMM into the strided sub-block
//! `y_b[:, r0·W..r1·W]` (row stride HW) of the output, or, for `∂W`, a GEMM with the matching
//! sub-block of `g_b` accumulated over bands. The band height is the largest number of rows
//! whose columns, `C·k²·band·W·4` bytes, fit in 1 MiB (about half the per-core L2 of the
//! development machine, leaving room for the GEMM's packed panels), at least one row; when the
//! whole column matrix fits (small images, few channels) it is a single band, the unbanded
//! computation. The bands are evened out, and with fewer samples than threads their count is
//! rounded up to a multiple of the thread count. One band loop (`BandPlan::run`) serves the
//! forward and both backward kernels. With at least one (sample, band) unit per rayon thread
//! the units are rayon tasks (single-threaded im2col and GEMMs, one scratch buffer per thread,
//! kept between calls; `∂W` sums per-thread contiguous groups in a fixed order); otherwise the
//! units run in turn with multi-threaded im2col and GEMMs. Other devices use candle's `conv2d`.

use super::cpu_storage::contiguous_f32;
use super::fast_math;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use candle_nn::{Init, VarBuilder};
use rayon::prelude::*;
use std::ops::Range;

/// One row of the column matrix: `dst[j] = plane[(y + dy)·W + x + dx]` for the output pixels
/// `j = (y − r0)·W + x` of rows `rows` (r0 = rows.start), zero where `y + dy` or `x + dx` falls
/// outside the `h × w` plane. The in-image rows are one contiguous copy of the plane shifted by
/// `dy·W + dx` (a shift by dx wraps `dx` values of each row around the row's edge, which are
/// then zeroed): one `memcpy` per tap instead of one per image row.
#[inline]
fn shifted_block(
    dst: &mut [f32],
    plane: &[f32],
    (h, w): (usize, usize),
    rows: &Range<usize>,
    (dy, dx): (isize, isize),
) {
    let (r0, len) = (rows.start as isize, plane.len() as isize);
    let (w_i, h_i) = (w as isize, h as isize);
    let (ylo, yhi) = (r0.max(-dy), (rows.end as isize).min(h_i - dy));
    if ylo >= yhi {
        dst.fill(0.0);
        return;
    }
    let (j0, j1) = (((ylo - r0) * w_i) as usize, ((yhi - r0) * w_i) as usize);
    dst[..j0].fill(0.0);
    dst[j1..].fill(0.0);
    // Source span of the in-image rows; at most |dx| < W values fall off either end of the
    // plane, and those are wrapped positions.
    let shift = r0 * w_i + dy * w_i + dx;
    let (s0, s1) = (j0 as isize + shift, j1 as isize + shift);
    let (c0, c1) = (s0.clamp(0, len), s1.clamp(0, len));
    let (d0, d1) = (j0 + (c0 - s0) as usize, j1 - (s1 - c1) as usize);
    dst[j0..d0].fill(0.0);
    dst[d1..j1].fill(0.0);
    dst[d0..d1].copy_from_slice(&plane[c0 as usize..c1 as usize]);
    let wrap = dx.unsigned_abs().min(w);
    if wrap > 0 {
        for row in dst[j0..j1].chunks_mut(w) {
            if dx < 0 {
                row[..wrap].fill(0.0);
            } else {
                row[w - wrap..].fill(0.0);
            }
        }
    }
}

/// im2col of output rows `rows` of one sample: `x: [C, H, W] → cols: [C·k·k, |rows|·W]`, row
/// `(c·k + ky)·k + kx` holding `x[c, y + ky − p, x + kx − p]` (zero outside) for `y ∈ rows`,
/// p = k/2. The channels are split across the rayon threads when `par`.
fn unfold(
    x: &[f32],
    cols: &mut [f32],
    k: usize,
    h: usize,
    w: usize,
    rows: Range<usize>,
    par: bool,
) {
    let (n, pad) = (rows.len() * w, (k / 2) as isize);
    let plane_cols = |(block, plane): (&mut [f32], &[f32])| {
        for (kk, dst) in block.chunks_mut(n).enumerate() {
            let (ky, kx) = ((kk / k) as isize, (kk % k) as isize);
            shifted_block(dst, plane, (h, w), &rows, (ky - pad, kx - pad));
        }
    };
    let (block_len, hw) = (k * k * n, h * w);
    if par {
        cols.par_chunks_mut(block_len)
            .zip(x.par_chunks(hw))
            .for_each(plane_cols);
    } else {
        cols.chunks_mut(block_len)
            .zip(x.chunks(hw))
            .for_each(plane_cols);
    }
}

/// A GEMM operand for [`gemm_into`]: the `rows × cols` matrix stored row-major with row stride
/// `ld` from the start of `data` (a strided sub-block when `ld > cols`), optionally read
/// transposed.
#[derive(Clone, Copy)]
struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    ld: usize,
    transposed: bool,
}

impl Mat<'_> {
    /// (rows, cols, column stride, row stride) of the operand as used.
    fn geometry(&self) -> (usize, usize, isize, isize) {
        if self.transposed {
            (self.cols, self.rows, self.ld as isize, 1)
        } else {
            (self.rows, self.cols, 1, self.ld as isize)
        }
    }
    /// Whether `data` holds every addressed element.
    fn in_bounds(&self) -> bool {
        self.cols <= self.ld
            && (self.rows == 0 || self.data.len() >= (self.rows - 1) * self.ld + self.cols)
    }
}

/// A raw pointer that rayon tasks may share; each task writes a disjoint set of elements.
#[derive(Clone, Copy)]
struct SharedMut(*mut f32);
// SAFETY: only used to write disjoint blocks of one buffer that outlives the parallel loop.
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    /// The pointer `i` elements on (a method, so that closures capture the whole wrapper).
    fn at(self, i: usize) -> *mut f32 {
        self.0.wrapping_add(i)
    }
}

/// `dst (+)= a · b` into the `m × n` row-major block at `dst` with row stride `dst_ld`;
/// accumulates when `accumulate`; the GEMM itself is multi-threaded when `par` says so.
///
/// # Safety
/// `dst` must be valid for writes of the block (`(m − 1)·dst_ld + n` elements, `n ≤ dst_ld`)
/// and no other thread may access the block's elements meanwhile.
unsafe fn gemm_into(
    dst: *mut f32,
    dst_ld: usize,
    a: Mat,
    b: Mat,
    accumulate: bool,
    par: gemm::Parallelism,
) -> Result<()> {
    let (m, ka, a_cs, a_rs) = a.geometry();
    let (kb, n, b_cs, b_rs) = b.geometry();
    if ka != kb || n > dst_ld || !a.in_bounds() || !b.in_bounds() {
        candle_core::bail!("conv matmul: inconsistent sizes {m}×{ka} · {kb}×{n}")
    }
    // SAFETY: the operands hold every element addressed by their strides (checked above), the
    // caller guarantees exclusive access to the destination block, which the inputs (shared
    // borrows) cannot alias.
    unsafe {
        gemm::gemm(
            m,
            n,
            ka,
            dst,
            1,
            dst_ld as isize,
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

thread_local! {
    /// Per-thread column buffer, kept between calls: a fresh buffer per band would be page-faulted
    /// in every time. Bands keep it at about [`BAND_BYTES`]; a single-band column matrix larger
    /// than that (a band is at least one image row) stays allocated per thread.
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` on a scratch slice of `len` floats (arbitrary contents): the thread's buffer, or a
/// fresh one when the thread's buffer is in use further up its stack (rayon may run a second
/// task on a thread that waits inside the first).
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

/// Default budget for one band's column matrix (see the module docs): well inside the 2 MiB
/// per-core L2 of the development machine, next to the GEMM's packed panels.
const BAND_BYTES: usize = 1 << 20;

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
    fn weight<'a>(&self, data: &'a [f32]) -> Mat<'a> {
        Mat {
            data,
            rows: self.co,
            cols: self.ckk(),
            ld: self.ckk(),
            transposed: false,
        }
    }
    /// `[B, Co, H, W]`-shaped gradient `g` of sample `unit.b`, columns of `unit.rows`: the
    /// `[Co, |rows|·W]` sub-block of `g_b` (row stride HW).
    fn grad_block<'a>(&self, g: &'a [f32], unit: &Unit) -> Mat<'a> {
        let n = unit.rows.len() * self.w;
        let start = unit.b * self.co * self.hw() + unit.rows.start * self.w;
        Mat {
            data: &g[start..start + self.co.saturating_sub(1) * self.hw() + n],
            rows: self.co,
            cols: n,
            ld: self.hw(),
            transposed: false,
        }
    }
}

/// One unit of work: output rows `rows` of sample `b`.
struct Unit {
    b: usize,
    rows: Range<usize>,
}

/// How a kernel splits its work: every sample into bands of `band` output rows (the last one
/// possibly shorter), giving `B · bands` units, sample-major. With at least one unit per rayon
/// thread, units (or contiguous groups of them) are independent rayon tasks (work-stealing, so
/// a descheduled thread does not hold the others up) with single-threaded im2col and GEMMs;
/// otherwise the units run in turn and each im2col and GEMM uses all threads.
#[derive(Clone, Debug)]
struct BandPlan {
    d: ConvDims,
    band: usize,
    bands: usize,
    threads: usize,
    parallel_units: bool,
}

impl BandPlan {
    /// Bands of at least one row whose column matrix (`C·k²·band·W` floats) fits in
    /// `band_bytes`; one band (the whole image) for 1×1 kernels, which need no columns, and
    /// whenever the whole column matrix fits. With fewer samples than threads the band count is
    /// rounded up to a multiple of the thread count so that the threads get equal shares.
    fn new(d: ConvDims, band_bytes: usize) -> Self {
        let threads = rayon::current_num_threads().max(1);
        let h = d.h.max(1);
        let row_bytes = (d.ckk() * d.w * std::mem::size_of::<f32>()).max(1);
        let mut bands = if d.k == 1 {
            1
        } else {
            h.div_ceil((band_bytes / row_bytes).clamp(1, h))
        };
        if bands > 1 && d.b < threads {
            bands = bands.next_multiple_of(threads).min(h);
        }
        let band = h.div_ceil(bands);
        let bands = h.div_ceil(band);
        Self {
            d,
            band,
            bands,
            threads,
            parallel_units: threads > 1 && d.b * bands >= threads,
        }
    }
    fn units(&self) -> usize {
        self.d.b * self.bands
    }
    fn unit(&self, u: usize) -> Unit {
        let (b, i) = (u / self.bands, u % self.bands);
        Unit {
            b,
            rows: i * self.band..((i + 1) * self.band).min(self.d.h),
        }
    }
    fn gemm(&self) -> gemm::Parallelism {
        if self.parallel_units || self.threads == 1 {
            gemm::Parallelism::None
        } else {
            gemm::Parallelism::Rayon(self.threads)
        }
    }
    /// Units per group for a reduction over all units: one contiguous group per thread when
    /// the units run in parallel (sums added in group order: deterministic for a given thread
    /// count), else one group.
    fn reduction_group(&self) -> usize {
        if self.parallel_units {
            self.units().div_ceil(self.threads).max(1)
        } else {
            self.units().max(1)
        }
    }

    /// The band loop shared by all three kernels: splits the units into contiguous groups of
    /// `group` units, each group run in turn from the state `init()`, calling
    /// `step(state, unit, cols)` with `cols = cols(x_b)[:, rows·W]`, the `[C·k², |rows|·W]`
    /// columns of the unit (unfolded into the thread's scratch buffer; for 1×1 kernels the
    /// strided sub-block of `x_b` itself). Returns the groups' final states in order.
    fn run<T: Send>(
        &self,
        x: &[f32],
        group: usize,
        init: impl Fn() -> T + Sync,
        step: impl Fn(&mut T, &Unit, Mat) -> Result<()> + Sync,
    ) -> Result<Vec<T>> {
        let d = self.d;
        let (chw, hw) = (d.c * d.hw(), d.hw());
        let units = self.units();
        let group = group.max(1);
        let groups = units.div_ceil(group);
        let run_group = |gi: usize| -> Result<T> {
            let mut state = init();
            for u in gi * group..((gi + 1) * group).min(units) {
                let unit = self.unit(u);
                let xb = &x[unit.b * chw..(unit.b + 1) * chw];
                let n = unit.rows.len() * d.w;
                if d.k == 1 {
                    let start = unit.rows.start * d.w;
                    let cols = Mat {
                        data: &xb[start..start + d.c.saturating_sub(1) * hw + n],
                        rows: d.c,
                        cols: n,
                        ld: hw,
                        transposed: false,
                    };
                    step(&mut state, &unit, cols)?;
                } else {
                    with_scratch(d.ckk() * n, |buf| {
                        unfold(
                            xb,
                            buf,
                            d.k,
                            d.h,
                            d.w,
                            unit.rows.clone(),
                            !self.parallel_units,
                        );
                        let cols = Mat {
                            data: buf,
                            rows: d.ckk(),
                            cols: n,
                            ld: n,
                            transposed: false,
                        };
                        step(&mut state, &unit, cols)
                    })?;
                }
            }
            Ok(state)
        };
        if self.parallel_units {
            (0..groups).into_par_iter().map(run_group).collect()
        } else {
            (0..groups).map(run_group).collect()
        }
    }
}

/// `y_b = bias_b 1ᵀ + W · cols(x_b)` for all samples (`bias: [B, Co]`, zero when `None`), band
/// by band: each unit writes the `[Co, band·W]` sub-block `y_b[:, rows·W]` (row stride HW).
/// The output is not zero-filled first: the bias fill, or without a bias the GEMM (which then
/// overwrites instead of accumulating), writes every element.
fn conv_forward(
    x: &[f32],
    wt: &[f32],
    bias: Option<&[f32]>,
    d: ConvDims,
    band_bytes: usize,
) -> Result<Vec<f32>> {
    let (hw, cohw) = (d.hw(), d.co * d.hw());
    let mut out: Vec<f32> = Vec::with_capacity(d.b * cohw);
    let y = SharedMut(out.as_mut_ptr());
    let plan = BandPlan::new(d, band_bytes);
    let gemm = plan.gemm();
    plan.run(
        x,
        1,
        || (),
        |_, unit, cols| {
            let n = cols.cols;
            let start = unit.b * cohw + unit.rows.start * d.w;
            if let Some(bias) = bias {
                for (co, &v) in bias[unit.b * d.co..(unit.b + 1) * d.co].iter().enumerate() {
                    // SAFETY: `out` has capacity for B·Co·HW floats and outlives the loop; row
                    // `co` of this unit's block lies in `[start, start + (Co − 1)·HW + n)`, and
                    // units cover disjoint (sample, row band) blocks.
                    let row = unsafe {
                        std::slice::from_raw_parts_mut(
                            y.at(start + co * hw).cast::<std::mem::MaybeUninit<f32>>(),
                            n,
                        )
                    };
                    row.fill(std::mem::MaybeUninit::new(v));
                }
            }
            // SAFETY: as above: the unit's `[Co, n]` block with row stride HW is its own; it
            // is read (accumulated into) only after the bias fill initialised it.
            unsafe { gemm_into(y.at(start), hw, d.weight(wt), cols, bias.is_some(), gemm) }
        },
    )?;
    // SAFETY: the units' blocks tile the whole `[B, Co, H, W]` output and each was written
    // completely (bias fill and accumulating GEMM, or overwriting GEMM).
    unsafe { out.set_len(d.b * cohw) };
    Ok(out)
}

/// Forward op on `(x, weight, bias)` with a per-sample bias `[B, Co]`:
/// `y_b = bias_b 1ᵀ + W · cols(x_b)`, columns in bands of at most `band_bytes` (≥ one row).
struct ConvSame {
    band_bytes: usize,
}

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
            contiguous_f32(s1, l1, "conv", "input")?,
            contiguous_f32(s2, l2, "conv", "weight")?,
            contiguous_f32(s3, l3, "conv", "bias")?,
        );
        if bias.len() != d.b * d.co {
            candle_core::bail!("conv2d_same: bias {:?} is not [B, Co]", l3.shape())
        }
        let out = conv_forward(x, wt, Some(bias), d, self.band_bytes)?;
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
                band_bytes: self.band_bytes,
            },
        )?;
        let nw = weight.elem_count();
        let packed = x.apply_op2_no_bwd(
            &grad,
            &ConvSameGradParams {
                k: weight.dim(2)?,
                band_bytes: self.band_bytes,
            },
        )?;
        let gw = packed.narrow(0, 0, nw)?.reshape(weight.shape())?;
        let gb = packed
            .narrow(0, nw, bias.elem_count())?
            .reshape(bias.shape())?;
        Ok((Some(gx), Some(gw), Some(gb)))
    }
}

/// `∂x = conv_same(g, W̃)` on `(grad, weight)`, with the flipped, channel-transposed kernel
/// `W̃[c, o, ky, kx] = W[o, c, k−1−ky, k−1−kx]`: the adjoint of a stride-1 convolution with
/// symmetric zero padding k/2 is such a convolution (`Σ_o,d W[o,c,d] g[o, j−d+p]` with
/// d → k−1−d), so the backward reuses the forward's band loop (a gather, no col2im scatter).
struct ConvSameGradInput {
    band_bytes: usize,
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
        let (co, c, k, _) = l2.shape().dims4()?;
        let (b, _, h, w) = l1.shape().dims4()?;
        let flipped_shape = Shape::from((c, co, k, k));
        let d = ConvDims::new(l1.shape(), &flipped_shape)?;
        let (g, wt) = (
            contiguous_f32(s1, l1, "conv", "gradient")?,
            contiguous_f32(s2, l2, "conv", "weight")?,
        );
        let kk = k * k;
        let mut flipped = vec![0f32; wt.len()];
        for (ci, dst) in flipped.chunks_mut(co * kk).enumerate() {
            for (o, taps) in dst.chunks_mut(kk).enumerate() {
                let src = &wt[(o * c + ci) * kk..(o * c + ci + 1) * kk];
                for (t, v) in taps.iter_mut().zip(src.iter().rev()) {
                    *t = *v;
                }
            }
        }
        let out = conv_forward(g, &flipped, None, d, self.band_bytes)?;
        Ok((CpuStorage::F32(out), Shape::from((b, c, h, w))))
    }
}

/// `∂W = Σ_b Σ_bands g_b[:, band] · cols(x_b)[:, band]ᵀ` and `∂bias_b = g_b 1` on `(x, grad)`,
/// packed as `[∂W (flattened), ∂bias (B·Co)]`; per-group partial sums of ∂W are added in group
/// order.
struct ConvSameGradParams {
    k: usize,
    band_bytes: usize,
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
            contiguous_f32(s1, l1, "conv", "input")?,
            contiguous_f32(s2, l2, "conv", "gradient")?,
        );
        let nw = d.co * d.ckk();
        let plan = BandPlan::new(d, self.band_bytes);
        let gemm = plan.gemm();
        let partials = plan.run(
            x,
            plan.reduction_group(),
            || vec![0f32; nw],
            |gw, unit, cols| {
                let rhs = Mat {
                    transposed: true,
                    ..cols
                };
                // SAFETY: `gw` is this group's own `[Co, C·k²]` buffer.
                unsafe {
                    gemm_into(
                        gw.as_mut_ptr(),
                        d.ckk(),
                        d.grad_block(g, unit),
                        rhs,
                        true,
                        gemm,
                    )
                }
            },
        )?;
        let mut out = Vec::with_capacity(nw + d.b * d.co);
        let mut parts = partials.into_iter();
        out.extend(parts.next().unwrap_or_else(|| vec![0f32; nw]));
        for p in parts {
            for (o, v) in out.iter_mut().zip(p) {
                *o += v;
            }
        }
        let gbias: Vec<f32> = g
            .par_chunks(d.hw().max(1))
            .map(|row| fast_math::sum(row) as f32)
            .collect();
        out.extend(gbias);
        Ok((CpuStorage::F32(out), Shape::from(nw + d.b * d.co)))
    }
}

/// Stride-1 convolution with "same" zero padding and a per-sample bias by fused im2col + GEMM
/// (CPU, f32), in row bands sized for the L2 cache; work is split across the rayon threads.
///
/// `x: [B, C, H, W]`, `weight: [Co, C, k, k]` (k odd), `bias: [B, Co]` → `[B, Co, H, W]`;
/// equal to `x.conv2d(weight, k/2, 1, 1, 1) + bias[:, :, None, None]` and differentiable in all
/// three arguments.
pub fn conv2d_same_im2col(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
    conv2d_same_banded(x, weight, bias, BAND_BYTES)
}

/// [`conv2d_same_im2col`] with a given budget in bytes for one band's columns instead of the
/// default 1 MiB (at least one output row per band; tests use it to force many bands).
pub fn conv2d_same_banded(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    band_bytes: usize,
) -> Result<Tensor> {
    x.contiguous()?.apply_op3(
        &weight.contiguous()?,
        &bias.contiguous()?,
        ConvSame { band_bytes },
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Band budgets of one and three rows split a k > 1 convolution into several bands (the
    /// last one shorter where the height is not a multiple); a 1×1 kernel stays one band. The
    /// values and gradients of these splits are checked against candle's `conv2d` in
    /// `tests/nn_kernels.rs`.
    #[test]
    fn small_budgets_split_into_bands_except_for_1x1_kernels() {
        for &(b, c, co, h, w, k, band_rows) in &[
            (1, 3, 4, 11, 7, 3, 1),
            (3, 2, 5, 10, 6, 5, 3),
            (2, 4, 3, 9, 8, 3, 2),
            (1, 3, 2, 6, 5, 1, 1),
        ] {
            let band_bytes = c * k * k * w * std::mem::size_of::<f32>() * band_rows;
            let plan = BandPlan::new(ConvDims { b, c, co, h, w, k }, band_bytes);
            assert_eq!(plan.bands > 1, k > 1, "{plan:?}");
        }
    }
}
