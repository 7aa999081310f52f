//! Isotropic total variation on 2-D images: the discrete gradient and divergence (an exact
//! adjoint pair, ⟨∇x, p⟩ = −⟨x, div p⟩), the TV semi-norm, and its proximal operator by the fast
//! gradient projection (FGP) of Beck & Teboulle, "Fast gradient-based algorithms for constrained
//! total variation image denoising and deblurring problems", IEEE TIP 2009, §4.

use ndarray::{Array2, ArrayView2, Zip};

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

/// div = −∇ᵀ: backward differences, (div p)[i, j] = p_r[i, j]·[i < H−1] − p_r[i−1, j]·[i > 0]
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
/// gradient steps of size 1/(8α), x = P_C(b + α div p) (their p with the opposite sign). C is ℝⁿ or the nonnegative orthant.
///
/// `dual` is the starting field and is overwritten with the final one, so an outer FISTA loop
/// can warm-start successive proxes.
pub fn tv_prox(
    b: &ArrayView2<f32>,
    alpha: f32,
    iterations: usize,
    nonnegative: bool,
    dual: &mut Field,
) -> Array2<f32> {
    let project_c = |x: &mut Array2<f32>| {
        if nonnegative {
            x.mapv_inplace(|v| v.max(0.0));
        }
    };
    let primal = |p: &Field| {
        let mut x = divergence(p);
        Zip::from(&mut x)
            .and(b)
            .for_each(|v, &bv| *v = bv + alpha * *v);
        project_c(&mut x);
        x
    };
    if alpha <= 0.0 {
        let mut x = b.to_owned();
        project_c(&mut x);
        return x;
    }
    let step = 1.0 / (8.0 * alpha);
    let mut p_prev = dual.clone();
    let mut r = dual.clone();
    let mut t = 1.0f32;
    for _ in 0..iterations {
        let g = gradient(&primal(&r).view());
        // p = P_P[r + step ∇x(r)]: projected gradient step on the dual ½‖b + α div p‖², whose
        // gradient is −α ∇x(p) (Beck–Teboulle write x = b − λ L p with L = div, i.e. −p here).
        let mut p = Field {
            rows: &r.rows + &(&g.rows * step),
            cols: &r.cols + &(&g.cols * step),
        };
        Zip::from(&mut p.rows).and(&mut p.cols).for_each(|a, b| {
            let n = (*a * *a + *b * *b).sqrt().max(1.0);
            *a /= n;
            *b /= n;
        });
        let t_next = (1.0 + (1.0 + 4.0 * t * t).sqrt()) / 2.0;
        let beta = (t - 1.0) / t_next;
        r = Field {
            rows: &p.rows + &((&p.rows - &p_prev.rows) * beta),
            cols: &p.cols + &((&p.cols - &p_prev.cols) * beta),
        };
        p_prev = p;
        t = t_next;
    }
    *dual = p_prev;
    primal(dual)
}
