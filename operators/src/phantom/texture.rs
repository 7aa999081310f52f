//! Smooth, resolution-independent random fields for phantom texture.
//!
//! A field is a sum of octaves of cubic-B-spline value noise: i.i.d. N(0, 1) values on a lattice
//! of `cells` cells over the normalised square [-1, 1]², interpolated with the cubic B-spline
//! kernel and divided by the kernel's local ℓ²-norm so that every point has unit variance. The
//! lattice lives in normalised coordinates, so the same seed gives the same field at any image
//! size (correlation length ≈ 2/cells).

use ndarray::Array2;
use rand::Rng;
use rand_distr::StandardNormal;

/// One octave of unit-variance cubic-B-spline value noise.
struct Octave {
    cells: usize,
    lattice: Array2<f32>,
    weight: f32,
}

/// A weighted sum of value-noise octaves, normalised to unit variance.
pub(crate) struct SmoothField {
    octaves: Vec<Octave>,
}

fn bspline(f: f32) -> [f32; 4] {
    let f2 = f * f;
    let f3 = f2 * f;
    [
        (1.0 - f).powi(3) / 6.0,
        (3.0 * f3 - 6.0 * f2 + 4.0) / 6.0,
        (-3.0 * f3 + 3.0 * f2 + 3.0 * f + 1.0) / 6.0,
        f3 / 6.0,
    ]
}

impl SmoothField {
    /// Draws a field with the given (cells, weight) octaves from `rng`.
    pub fn new<R: Rng>(octaves: &[(usize, f32)], rng: &mut R) -> SmoothField {
        let total: f32 = octaves.iter().map(|o| o.1 * o.1).sum::<f32>().sqrt();
        let octaves = octaves
            .iter()
            .map(|&(cells, w)| Octave {
                cells,
                lattice: Array2::from_shape_simple_fn((cells + 4, cells + 4), || {
                    rng.sample::<f32, _>(StandardNormal)
                }),
                weight: w / total.max(1e-12),
            })
            .collect();
        SmoothField { octaves }
    }

    /// The field at normalised coordinates (x, y) ∈ [-1, 1]².
    pub fn at(&self, x: f32, y: f32) -> f32 {
        self.octaves
            .iter()
            .map(|o| {
                let d = 2.0 / o.cells as f32;
                let gx = ((x + 1.0) / d).clamp(0.0, o.cells as f32 - 1e-4) + 1.0;
                let gy = ((1.0 - y) / d).clamp(0.0, o.cells as f32 - 1e-4) + 1.0;
                let (ix, iy) = (gx.floor() as usize, gy.floor() as usize);
                let wx = bspline(gx - ix as f32);
                let wy = bspline(gy - iy as f32);
                let mut s = 0.0;
                for (a, wya) in wy.iter().enumerate() {
                    for (b, wxb) in wx.iter().enumerate() {
                        s += wya * wxb * o.lattice[[iy + a - 1, ix + b - 1]];
                    }
                }
                let nx: f32 = wx.iter().map(|w| w * w).sum();
                let ny: f32 = wy.iter().map(|w| w * w).sum();
                o.weight * s / (nx * ny).sqrt()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn field_has_unit_variance_and_is_smooth() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let f = SmoothField::new(&[(16, 1.0), (32, 0.5)], &mut rng);
        let n = 200;
        let vals: Vec<f32> = (0..n * n)
            .map(|i| {
                let (r, c) = (i / n, i % n);
                f.at(
                    -1.0 + 2.0 * c as f32 / n as f32,
                    -1.0 + 2.0 * r as f32 / n as f32,
                )
            })
            .collect();
        let mean = vals.iter().sum::<f32>() / vals.len() as f32;
        let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / vals.len() as f32;
        assert!(
            mean.abs() < 0.2 && (var - 1.0).abs() < 0.3,
            "mean {mean} var {var}"
        );
        // Neighbouring samples 0.01 apart (≪ correlation length 2/32) are strongly correlated.
        let d = (f.at(0.3, 0.2) - f.at(0.31, 0.2)).abs();
        assert!(d < 0.5, "{d}");
    }
}
