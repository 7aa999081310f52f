//! Isotropic total variation on 2-D images: the discrete gradient and divergence (an exact
//! adjoint pair, ⟨∇x, p⟩ = −⟨x, div p⟩), the TV semi-norm, and its proximal operator by the fast
//! gradient projection (FGP) of Beck & Teboulle, "Fast gradient-based algorithms for constrained
//! total variation image denoising and deblurring problems", IEEE TIP 2009, §4.

use ndarray::{Array2, ArrayView2, Zip};
use rayon::prelude::*;

/// A vector field on the image grid: components along rows (vertical, axis 0) and columns
/// (horizontal, axis 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Component along axis 0.
    pub rows: Array2<f32>,
    /// Component along axis 1.
    pub cols: Array2<f32>,
}

impl Field {
    /// The zero field on an [h, w] grid.
    pub fn zeros(h: usize, w: usize) -> Self {
        Self {
            rows: Array2::zeros((h, w)),
            cols: Array2::zeros((h, w)),
        }
    }
}

/// Forward differences with Neumann boundary: (∇x)_rows[i, j] = x[i+1, j] − x[i, j] for
/// i < H − 1 and 0 on the last row; likewise along columns.
pub fn gradient(x: &ArrayView2<f32>) -> Field {
    let (h, w) = x.dim();
    let mut g = Field::zeros(h, w);
    for i in 0..h {
        for j in 0..w {
            let v = x[[i, j]];
            if i + 1 < h {
                g.rows[[i, j]] = x[[i + 1, j]] - v;
            }
            if j + 1 < w {
                g.cols[[i, j]] = x[[i, j + 1]] - v;
            }
        }
    }
    g
}

/// div = −∇ᵀ: backward differences, `(div p)[i, j] = p_r[i, j]·[i < H−1] − p_r[i−1, j]·[i > 0]`
/// plus the same along columns. Exact for any p (the last row/column of p is ignored, matching
/// the zero rows of ∇).
pub fn divergence(p: &Field) -> Array2<f32> {
    let (h, w) = p.rows.dim();
    Array2::from_shape_fn((h, w), |(i, j)| {
        let mut d = 0.0f32;
        if i + 1 < h {
            d += p.rows[[i, j]];
        }
        if i > 0 {
            d -= p.rows[[i - 1, j]];
        }
        if j + 1 < w {
            d += p.cols[[i, j]];
        }
        if j > 0 {
            d -= p.cols[[i, j - 1]];
        }
        d
    })
}

/// Isotropic TV(x) = Σ √((∇x)_rows² + (∇x)_cols²), in f64.
pub fn tv_norm(x: &ArrayView2<f32>) -> f64 {
    let g = gradient(x);
    let mut acc = 0.0f64;
    Zip::from(&g.rows).and(&g.cols).for_each(|&a, &b| {
        acc += ((a as f64).powi(2) + (b as f64).powi(2)).sqrt();
    });
    acc
}

/// prox_{α TV + ι_C}(b) = argmin_{x ∈ C} ½‖x − b‖² + α TV(x) by FGP (Beck & Teboulle 2009,
/// Alg. FGP with their λ = α): the dual field p (|p_ij| ≤ 1) is updated by accelerated projected
/// gradient steps of size 1/(8α), x = P_C(b + α div p) (their p with the opposite sign). C is ℝⁿ
/// or the nonnegative orthant.
///
/// `dual` is the starting field and is overwritten with the final one, so an outer FISTA loop
/// can warm-start successive proxes. Each iteration is two fused passes over the image (primal
/// from the extrapolated dual; gradient, projection and extrapolation), parallel over rows.
pub fn tv_prox(
    b: &ArrayView2<f32>,
    alpha: f32,
    iterations: usize,
    nonnegative: bool,
    dual: &mut Field,
) -> Array2<f32> {
    let (h, w) = b.dim();
    assert_eq!(dual.rows.dim(), (h, w), "dual field shape");
    assert_eq!(dual.cols.dim(), (h, w), "dual field shape");
    let b = b.as_standard_layout();
    let b = b.as_slice().expect("standard layout");
    let mut x = Array2::<f32>::zeros((h, w));
    if alpha <= 0.0 {
        primal(b, 0.0, &dual.rows, &dual.cols, nonnegative, &mut x);
        return x;
    }
    for field in [&mut dual.rows, &mut dual.cols] {
        if !field.is_standard_layout() {
            *field = field.as_standard_layout().into_owned();
        }
    }
    let step = 1.0 / (8.0 * alpha);
    // r: extrapolated dual (starts at p), p: the last projected iterate.
    let mut r = dual.clone();
    let mut t = 1.0f32;
    for _ in 0..iterations {
        primal(b, alpha, &r.rows, &r.cols, nonnegative, &mut x);
        let t_next = (1.0 + (1.0 + 4.0 * t * t).sqrt()) / 2.0;
        let beta = (t - 1.0) / t_next;
        let xs = x.as_slice().expect("standard layout");
        let rows = r.rows.as_slice_mut().expect("standard layout");
        let cols = r.cols.as_slice_mut().expect("standard layout");
        let p_rows = dual.rows.as_slice_mut().expect("standard layout");
        let p_cols = dual.cols.as_slice_mut().expect("standard layout");
        rows.par_chunks_mut(w)
            .zip(cols.par_chunks_mut(w))
            .zip(p_rows.par_chunks_mut(w))
            .zip(p_cols.par_chunks_mut(w))
            .enumerate()
            .with_min_len(8)
            .for_each(|(i, (((rr, rc), pr), pc))| {
                let xi = &xs[i * w..(i + 1) * w];
                // On the last row the vertical difference is zero: difference x with itself.
                let xb = if i + 1 < h {
                    &xs[(i + 1) * w..(i + 2) * w]
                } else {
                    xi
                };
                dual_row(step, beta, xi, xb, rr, rc, pr, pc);
            });
        t = t_next;
    }
    primal(b, alpha, &dual.rows, &dual.cols, nonnegative, &mut x);
    x
}

/// x = P_C(b + α div p), parallel over rows.
fn primal(
    b: &[f32],
    alpha: f32,
    p_rows: &Array2<f32>,
    p_cols: &Array2<f32>,
    nonnegative: bool,
    x: &mut Array2<f32>,
) {
    let (h, w) = x.dim();
    let pr = p_rows.as_standard_layout();
    let pc = p_cols.as_standard_layout();
    let (pr, pc) = (
        pr.as_slice().expect("standard"),
        pc.as_slice().expect("standard"),
    );
    x.as_slice_mut()
        .expect("standard layout")
        .par_chunks_mut(w)
        .enumerate()
        .with_min_len(8)
        .for_each_init(
            || vec![0.0f32; w],
            |zero, (i, xi)| {
                // (div p)_ij = p_r[i]·[i < H−1] − p_r[i−1]·[i > 0] + p_c[j]·[j < W−1] − p_c[j−1]·[j > 0],
                // accumulated in xi in vectorisable passes.
                let own: &[f32] = if i + 1 < h {
                    &pr[i * w..(i + 1) * w]
                } else {
                    zero
                };
                let above: &[f32] = if i > 0 { &pr[(i - 1) * w..i * w] } else { zero };
                let cols = &pc[i * w..(i + 1) * w];
                for ((d, &o), &a) in xi.iter_mut().zip(own).zip(above) {
                    *d = o - a;
                }
                for (d, &c) in xi[..w - 1].iter_mut().zip(&cols[..w - 1]) {
                    *d += c;
                }
                for (d, &c) in xi[1..].iter_mut().zip(&cols[..w - 1]) {
                    *d -= c;
                }
                for (d, &bv) in xi.iter_mut().zip(&b[i * w..(i + 1) * w]) {
                    let v = bv + alpha * *d;
                    *d = if nonnegative { v.max(0.0) } else { v };
                }
            },
        );
}

/// One row of the FGP dual step: p = P_P[r + step ∇x] (projection onto the unit disc per pixel),
/// then r = p + β (p − p_prev) and p_prev = p. `xb` is the next row of x (x itself on the last
/// row, giving a zero vertical difference); the horizontal difference is zero in the last column.
#[allow(clippy::too_many_arguments)]
#[inline]
fn dual_row(
    step: f32,
    beta: f32,
    xi: &[f32],
    xb: &[f32],
    rr: &mut [f32],
    rc: &mut [f32],
    pr: &mut [f32],
    pc: &mut [f32],
) {
    let w = xi.len();
    let update = |g_r: f32, g_c: f32, rr: &mut f32, rc: &mut f32, pr: &mut f32, pc: &mut f32| {
        let a = *rr + step * g_r;
        let c = *rc + step * g_c;
        let inv = 1.0 / (a * a + c * c).sqrt().max(1.0);
        let (a, c) = (a * inv, c * inv);
        *rr = a + beta * (a - *pr);
        *rc = c + beta * (c - *pc);
        *pr = a;
        *pc = c;
    };
    let n = w - 1;
    let (rr_l, rc_l, pr_l, pc_l) = (&mut rr[..n], &mut rc[..n], &mut pr[..n], &mut pc[..n]);
    let (x0, x1, xb0) = (&xi[..n], &xi[1..], &xb[..n]);
    for j in 0..n {
        update(
            xb0[j] - x0[j],
            x1[j] - x0[j],
            &mut rr_l[j],
            &mut rc_l[j],
            &mut pr_l[j],
            &mut pc_l[j],
        );
    }
    update(
        xb[n] - xi[n],
        0.0,
        &mut rr[n],
        &mut rc[n],
        &mut pr[n],
        &mut pc[n],
    );
}
