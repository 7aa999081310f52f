//! Resampling of an image to another grid over the same field of view, separably:
//! out = R · img · Cᵀ with row-stochastic weights R (h' × h) and C (w' × w) per axis.
//! Shrinking an axis averages areas (output pixel = area-weighted mean of the input pixels it
//! overlaps: mean-preserving, no aliasing from skipped pixels); enlarging one interpolates with
//! Keys' cubic convolution (an interpolating kernel: repeating pixels instead leaves blocks
//! whose edges cost 1–2 dB on a 0.96 → 0.47 mm head slice, `docs/bench/upsampling`).
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

/// Keys' cubic convolution kernel with a = −1/2 (R. Keys, "Cubic convolution interpolation
/// for digital image processing", IEEE TASSP 29(6), 1981, Eq. 15): 1 at 0, 0 at the other
/// integers, continuous first derivative, third-order accurate.
fn keys_kernel(t: f64) -> f64 {
    let t = t.abs();
    if t <= 1.0 {
        (1.5 * t - 2.5) * t * t + 1.0
    } else if t < 2.0 {
        ((-0.5 * t + 2.5) * t - 4.0) * t + 2.0
    } else {
        0.0
    }
}

/// Weights `[n_out, n_in]` of cubic interpolation at the output pixel centres
/// x_o = (o + ½)·n_in/n_out − ½ (input pixel units), the edge pixels repeated beyond the
/// border; rows sum to 1.
pub fn cubic_weights(n_in: usize, n_out: usize) -> Array2<f32> {
    let scale = n_in as f64 / n_out as f64;
    let mut w = Array2::<f32>::zeros((n_out, n_in));
    for o in 0..n_out {
        let x = (o as f64 + 0.5) * scale - 0.5;
        let base = x.floor() as i64;
        for i in base - 1..=base + 2 {
            let k = keys_kernel(x - i as f64);
            w[[o, i.clamp(0, n_in as i64 - 1) as usize]] += k as f32;
        }
    }
    w
}

/// The weights of one axis: area averaging when it shrinks (or keeps its size), cubic
/// interpolation when it grows.
fn axis_weights(n_in: usize, n_out: usize) -> Array2<f32> {
    if n_out <= n_in {
        area_weights(n_in, n_out)
    } else {
        cubic_weights(n_in, n_out)
    }
}

/// `img` resampled to `shape` = (rows, columns) over the same field of view.
pub fn resample(img: &Array2<f32>, shape: (usize, usize)) -> Array2<f32> {
    let (h, w) = img.dim();
    if (h, w) == shape {
        return img.clone();
    }
    axis_weights(h, shape.0)
        .dot(img)
        .dot(&axis_weights(w, shape.1).t())
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
        let out = resample(&img, (3, 3));
        let block = img.slice(s![0..2, 0..3]).mean().unwrap();
        assert!((out[[0, 0]] - block).abs() < 1e-4);
        for shape in [(3, 3), (4, 5), (5, 7)] {
            let out = resample(&img, shape);
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
    fn cubic_weights_interpolate_and_reproduce_quadratics() {
        for (n_in, n_out) in [(4, 9), (10, 30), (250, 512)] {
            let w = cubic_weights(n_in, n_out);
            for row in w.rows() {
                assert!((row.sum() - 1.0).abs() < 1e-5, "{n_in} -> {n_out}");
            }
        }
        // Threefold: output pixel 3i + 1 sits on input pixel i's centre and equals it.
        let img = Array2::from_shape_fn((5, 7), |(r, c)| ((r * 7 + c * 3) % 11) as f32);
        let up = resample(&img, (15, 21));
        for r in 0..5 {
            for c in 0..7 {
                assert!((up[[3 * r + 1, 3 * c + 1]] - img[[r, c]]).abs() < 1e-4);
            }
        }
        // Away from the border a quadratic is reproduced exactly (Keys' kernel is third-order).
        let q = |x: f64| 0.3 * x * x - 2.0 * x + 1.0;
        let n_in = 12;
        let x_in = Array2::from_shape_fn((n_in, 1), |(i, _)| q(i as f64) as f32);
        let w = cubic_weights(n_in, 29);
        let up = w.dot(&x_in);
        for o in 0..29 {
            let x = (o as f64 + 0.5) * n_in as f64 / 29.0 - 0.5;
            if (2.0..n_in as f64 - 3.0).contains(&x) {
                assert!((f64::from(up[[o, 0]]) - q(x)).abs() < 1e-3, "o {o}");
            }
        }
    }

    #[test]
    fn enlarging_a_smooth_image_beats_repeating_pixels() {
        let f = |r: f64, c: f64| (r / 5.0).sin() * (c / 7.0).cos();
        let (n, m) = (40usize, 97usize);
        let coarse = Array2::from_shape_fn((n, n), |(r, c)| f(r as f64, c as f64) as f32);
        let truth = Array2::from_shape_fn((m, m), |(r, c)| {
            let s = n as f64 / m as f64;
            f((r as f64 + 0.5) * s - 0.5, (c as f64 + 0.5) * s - 0.5) as f32
        });
        let err = |a: &Array2<f32>| {
            (a - &truth)
                .slice(s![8..m - 8, 8..m - 8])
                .mapv(|v| v * v)
                .mean()
                .unwrap()
        };
        let cubic = err(&resample(&coarse, (m, m)));
        let repeat = err(&area_weights(n, m).dot(&coarse).dot(&area_weights(n, m).t()));
        assert!(
            cubic < 0.01 * repeat,
            "cubic {cubic}, repeated pixels {repeat}"
        );
        // Mixed: one axis shrinks (area), the other grows (cubic).
        let mixed = resample(&coarse, (20, 80));
        let rows = area_weights(n, 20).dot(&coarse);
        assert!(
            (&mixed - &rows.dot(&cubic_weights(n, 80).t()))
                .mapv(f32::abs)
                .sum()
                < 1e-3
        );
    }

    #[test]
    fn spacing_keeps_the_field_of_view() {
        assert_eq!(side_at_spacing(512, 0.5, 1.0), 256);
        assert_eq!(side_at_spacing(512, 0.661468, 0.957), 354);
    }
}
