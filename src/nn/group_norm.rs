//! Fused GroupNorm (Wu & He 2018) for the CPU: one statistics pass and one normalisation pass
//! forward, and a fused backward. candle-nn's `GroupNorm` is composed of ~8 elementwise and
//! reduction ops (each a full pass, each differentiated separately), which costs about as much
//! as the convolutions it sits between. Other devices use candle-nn's implementation.
//!
//! y = γ_c (x − μ_g)/√(σ²_g + ε) + β_c with μ_g, σ²_g over the channels of group g and all
//! pixels of one sample. Backward with x̂ = (x − μ)/s, s = √(σ² + ε), g = γ_c ∂y:
//! ∂x = (g − mean_g(g) − x̂ mean_g(g x̂))/s, ∂γ_c = Σ ∂y x̂, ∂β_c = Σ ∂y.
//!
//! The SiLU that follows every GroupNorm of NCSN++ but the attention one can be fused in
//! ([`GroupNorm::forward_silu`]): `z = silu(y) = y/(1 + e^{−y})`, and the backward first maps
//! `∂z` to `∂y = ∂z (σ(y)(1 − z) + z)` (σ the logistic function; candle's SiLU derivative).

use super::cpu_storage::contiguous_f32;
use super::fast_math::{self, silu_sigmoid};
use candle_core::{CpuStorage, CustomOp3, Layout, Module, Result, Shape, Tensor};
use candle_nn::VarBuilder;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Mean and 1/√(var + eps) of one group, two passes (mean, then squared deviations) with f32
/// lane sums and f64 totals ([`fast_math::sum_pairs`]).
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn mean_rstd(g: &[f32], eps: f64) -> (f32, f32) {
    let len = g.len().max(1) as f64;
    let mean = (fast_math::sum_pairs(g, g, |v, _| v) / len) as f32;
    let var = fast_math::sum_pairs(g, g, |v, _| (v - mean) * (v - mean)) / len;
    (mean, (1.0 / (var + eps).sqrt()) as f32)
}

/// Per-(sample, group) [`mean_rstd`].
fn group_stats(x: &[f32], n_groups_total: usize, eps: f64) -> Vec<(f32, f32)> {
    x.par_chunks(x.len() / n_groups_total)
        .map(|g| mean_rstd(g, eps))
        .collect()
}

/// `out = a·x + d`, or `silu(a·x + d)` when `silu` (one channel of the forward pass).
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn normalise(out: &mut [MaybeUninit<f32>], x: &[f32], a: f32, d: f32, silu: bool) {
    if silu {
        for (o, &v) in out.iter_mut().zip(x) {
            o.write(silu_sigmoid(a * v + d).0);
        }
    } else {
        for (o, &v) in out.iter_mut().zip(x) {
            o.write(a * v + d);
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Gn {
    groups: usize,
    eps: f64,
    /// Apply SiLU to the normalised output.
    silu: bool,
}

impl Gn {
    /// (batch, channels, pixels per channel) of `[B, C, ...]`.
    fn dims(&self, shape: &Shape) -> Result<(usize, usize, usize)> {
        let d = shape.dims();
        if d.len() < 3 || !d[1].is_multiple_of(self.groups) {
            candle_core::bail!("group_norm: shape {shape:?} with {} groups", self.groups)
        }
        Ok((d[0], d[1], d[2..].iter().product()))
    }
}

impl CustomOp3 for Gn {
    fn name(&self) -> &'static str {
        "medsgm-group-norm"
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
        let (b, c, hw) = self.dims(l1.shape())?;
        let (x, gamma, beta) = (
            contiguous_f32(s1, l1, "group_norm", "input")?,
            contiguous_f32(s2, l2, "group_norm", "weight")?,
            contiguous_f32(s3, l3, "group_norm", "bias")?,
        );
        let stats = group_stats(x, b * self.groups, self.eps);
        let cpg = c / self.groups;
        // Every element is written below, so the output is not zero-filled first.
        let mut y: Vec<f32> = Vec::with_capacity(x.len());
        y.spare_capacity_mut()[..x.len()]
            .par_chunks_mut(hw)
            .zip(x.par_chunks(hw))
            .enumerate()
            .for_each(|(bc, (yc, xc))| {
                let ch = bc % c;
                let (mean, rstd) = stats[(bc / c) * self.groups + ch / cpg];
                let (a, d) = (gamma[ch] * rstd, beta[ch] - gamma[ch] * rstd * mean);
                normalise(yc, xc, a, d, self.silu);
            });
        // SAFETY: the chunks cover all `x.len()` elements and each was written above.
        unsafe { y.set_len(x.len()) };
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let c = gamma.dim(0)?;
        let n = x.elem_count();
        let packed = x.apply_op3_no_bwd(
            &Tensor::cat(&[gamma, beta], 0)?,
            &grad.contiguous()?,
            &GnBackward(*self),
        )?;
        let dx = packed.narrow(0, 0, n)?.reshape(x.shape())?;
        let dgamma = packed.narrow(0, n, c)?;
        let dbeta = packed.narrow(0, n + c, c)?;
        Ok((Some(dx), Some(dgamma), Some(dbeta)))
    }
}

/// Backward pass of one (sample, group) of [`Gn`]: writes ∂x into `dxg` from the input `xg`,
/// the output gradient `dyg` and the group's `(γ, β)` and `(μ, 1/s)`; returns the per-channel
/// `(Σ ∂y x̂, Σ ∂y)` (∂y after the SiLU pull-back when `silu`).
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn group_backward(
    dxg: &mut [f32],
    xg: &[f32],
    dyg: &[f32],
    (gamma, beta): (&[f32], &[f32]),
    (mean, rstd): (f32, f32),
    hw: usize,
    silu: bool,
) -> Vec<(f64, f64)> {
    let cpg = gamma.len();
    // ∂y of the normalisation, staged in ∂x: the incoming gradient, or for the fused SiLU its
    // pull-back through silu at y = γ x̂ + β.
    if silu {
        for k in 0..cpg {
            let (a, d) = (gamma[k] * rstd, beta[k] - gamma[k] * rstd * mean);
            let r = k * hw..(k + 1) * hw;
            for ((o, &v), &g) in dxg[r.clone()].iter_mut().zip(&xg[r.clone()]).zip(&dyg[r]) {
                let (z, s) = silu_sigmoid(a * v + d);
                *o = g * (s * (1.0 - z) + z);
            }
        }
    } else {
        dxg.copy_from_slice(dyg);
    }
    // Per channel Σ ∂y x̂ = rstd Σ ∂y (x − μ) and Σ ∂y.
    let per_channel: Vec<(f64, f64)> = (0..cpg)
        .map(|k| {
            let (xk, dk) = (&xg[k * hw..(k + 1) * hw], &dxg[k * hw..(k + 1) * hw]);
            let s_dyx = fast_math::sum_pairs(xk, dk, |v, d| d * (v - mean));
            (s_dyx * rstd as f64, fast_math::sum_pairs(dk, dk, |d, _| d))
        })
        .collect();
    let (sum_g, sum_gx) = per_channel
        .iter()
        .zip(gamma)
        .fold((0f64, 0f64), |(sg, sgx), (&(s_dyx, s_dy), &gam)| {
            (sg + gam as f64 * s_dy, sgx + gam as f64 * s_dyx)
        });
    let glen = (cpg * hw).max(1) as f64;
    let (mg, mgx) = ((sum_g / glen) as f32, (sum_gx / glen) as f32);
    for (k, &gam) in gamma.iter().enumerate() {
        let r = k * hw..(k + 1) * hw;
        for (o, &v) in dxg[r.clone()].iter_mut().zip(&xg[r]) {
            let xh = (v - mean) * rstd;
            *o = (gam * *o - mg - xh * mgx) * rstd;
        }
    }
    per_channel
}

/// Backward of [`Gn`] on `(x, [γ, β], ∂y)`, packed as `[∂x (flattened), ∂γ, ∂β]`.
struct GnBackward(Gn);

impl CustomOp3 for GnBackward {
    fn name(&self) -> &'static str {
        "medsgm-group-norm-backward"
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
        let gn = self.0;
        let (b, c, hw) = gn.dims(l1.shape())?;
        let (x, affine, dy) = (
            contiguous_f32(s1, l1, "group_norm", "input")?,
            contiguous_f32(s2, l2, "group_norm", "weight and bias")?,
            contiguous_f32(s3, l3, "group_norm", "gradient")?,
        );
        if affine.len() != 2 * c {
            candle_core::bail!(
                "group_norm backward: {} affine parameters for {c} channels",
                affine.len()
            )
        }
        let (gamma, beta) = affine.split_at(c);
        let stats = group_stats(x, b * gn.groups, gn.eps);
        let cpg = c / gn.groups;
        let glen = cpg * hw;
        let mut out = vec![0f32; x.len() + 2 * c];
        let (dx, rest) = out.split_at_mut(x.len());
        // Per (sample, group): ∂x, and the per-channel partial sums of ∂y x̂ and ∂y.
        let partial: Vec<Vec<(f64, f64)>> = dx
            .par_chunks_mut(glen)
            .zip(x.par_chunks(glen).zip(dy.par_chunks(glen)))
            .enumerate()
            .map(|(bg, (dxg, (xg, dyg)))| {
                let c0 = (bg % gn.groups) * cpg;
                let affine = (&gamma[c0..c0 + cpg], &beta[c0..c0 + cpg]);
                group_backward(dxg, xg, dyg, affine, stats[bg], hw, gn.silu)
            })
            .collect();
        let (dgamma, dbeta) = rest.split_at_mut(c);
        for (bg, pc) in partial.iter().enumerate() {
            let c0 = (bg % gn.groups) * cpg;
            for (k, &(s_dyx, s_dy)) in pc.iter().enumerate() {
                dgamma[c0 + k] += s_dyx as f32;
                dbeta[c0 + k] += s_dy as f32;
            }
        }
        Ok((CpuStorage::F32(out), Shape::from(x.len() + 2 * c)))
    }
}

/// GroupNorm layer with parameters `weight` (γ, init 1) and `bias` (β, init 0).
#[derive(Clone, Debug)]
pub struct GroupNorm {
    weight: Tensor,
    bias: Tensor,
    op: Gn,
    fallback: candle_nn::GroupNorm,
}

impl GroupNorm {
    /// `groups` groups over `channels` channels with variance guard `eps`.
    pub fn new(groups: usize, channels: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        let fallback = candle_nn::group_norm(groups, channels, eps, vb.clone())?;
        let weight = vb.get_with_hints(channels, "weight", candle_nn::Init::Const(1.0))?;
        let bias = vb.get_with_hints(channels, "bias", candle_nn::Init::Const(0.0))?;
        Ok(Self {
            weight,
            bias,
            op: Gn {
                groups,
                eps,
                silu: false,
            },
            fallback,
        })
    }
}

impl GroupNorm {
    /// `silu(GroupNorm(x))` as one fused op on the CPU (one pass forward, one fused backward).
    pub fn forward_silu(&self, x: &Tensor) -> Result<Tensor> {
        if x.device().is_cpu() && x.dtype() == candle_core::DType::F32 {
            let op = Gn {
                silu: true,
                ..self.op
            };
            x.contiguous()?.apply_op3(&self.weight, &self.bias, op)
        } else {
            self.fallback.forward(x)?.silu()
        }
    }
}

impl Module for GroupNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.device().is_cpu() && x.dtype() == candle_core::DType::F32 {
            x.contiguous()?.apply_op3(&self.weight, &self.bias, self.op)
        } else {
            self.fallback.forward(x)
        }
    }
}
