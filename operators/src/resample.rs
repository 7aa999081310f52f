//! Area-weighted resampling of an image to another grid over the same field of view: output
//! pixel (r, c) is the area-weighted mean of the input pixels it overlaps, out = R · img · Cᵀ
//! with row-stochastic weights R (h' × h) and C (w' × w). Shrinking is exact box averaging
//! (mean-preserving, no aliasing from skipped pixels); enlarging repeats pixels (nearest area).
//! Used to put an image at a prior's pixel spacing and back.

use ndarray::Array2;

/// Weights `[n_out, n_in]`: the overlap of output cell o = [o·s, (o+1)·s) (s = n_in/n_out, in
/// input pixels) with input pixel i, divided by s.
pub fn area_weights(n_in: usize, n_out: usize) -> Array2<f32> {
    let scale = n_in as f64 / n_out as f64;
    Array2::from_shape_fn((n_out, n_in), |(o, i)| {
        let (lo, hi) = (o as f64 * scale, (o as f64 + 1.0) * scale);
        let overlap = (hi.min(i as f64 + 1.0) - lo.max(i as f64)).max(0.0);
        (overlap / scale) as f32
    })
}

/// `img` resampled to `shape` = (rows, columns) over the same field of view.
pub fn resample_area(img: &Array2<f32>, shape: (usize, usize)) -> Array2<f32> {
    let (h, w) = img.dim();
    if (h, w) == shape {
        return img.clone();
    }
    area_weights(h, shape.0)
        .dot(img)
        .dot(&area_weights(w, shape.1).t())
}

/// The grid side that keeps the field of view of `n` pixels of `from_mm` at `to_mm` per
/// pixel: round(n · from/to), at least 1.
pub fn side_at_spacing(n: usize, from_mm: f32, to_mm: f32) -> usize {
    ((n as f64 * f64::from(from_mm) / f64::from(to_mm)).round() as usize).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::s;

    #[test]
    fn shrinking_averages_blocks_and_keeps_the_mean() {
        let img = Array2::from_shape_fn((6, 9), |(r, c)| (r * 9 + c) as f32);
        let out = resample_area(&img, (3, 3));
        let block = img.slice(s![0..2, 0..3]).mean().unwrap();
        assert!((out[[0, 0]] - block).abs() < 1e-4);
        for shape in [(3, 3), (4, 5), (5, 7)] {
            let out = resample_area(&img, shape);
            assert!(
                (out.mean().unwrap() - img.mean().unwrap()).abs() < 1e-3,
                "{shape:?}"
            );
        }
    }

    #[test]
    fn weights_are_row_stochastic_and_the_adjoint_is_their_transpose() {
        for (n_in, n_out) in [(10, 4), (7, 7), (5, 12), (256, 177)] {
            let w = area_weights(n_in, n_out);
            for row in w.rows() {
                assert!((row.sum() - 1.0).abs() < 1e-5, "{n_in} -> {n_out}");
            }
            // Dot test of x ↦ R x C ᵀ against y ↦ Rᵀ y C.
            let x = Array2::from_shape_fn((n_in, 3), |(i, j)| ((i * 7 + j * 3) % 5) as f32 - 2.0);
            let y = Array2::from_shape_fn((n_out, 3), |(i, j)| ((i * 5 + j) % 3) as f32 - 1.0);
            let lhs = (&w.dot(&x) * &y).sum();
            let rhs = (&x * &w.t().dot(&y)).sum();
            assert!((lhs - rhs).abs() < 1e-3 * lhs.abs().max(1.0));
        }
    }

    #[test]
    fn spacing_keeps_the_field_of_view() {
        assert_eq!(side_at_spacing(512, 0.5, 1.0), 256);
        assert_eq!(side_at_spacing(512, 0.661468, 0.957), 354);
    }
}
