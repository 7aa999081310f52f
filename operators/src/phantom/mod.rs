//! Phantoms: analytic ellipse phantoms (modified Shepp–Logan, seeded random ellipses) with exact
//! sinograms, and the anatomical thoracic CT phantom used to train the CT prior.
//!
//! All phantoms live on the image square [-1, 1]² (normalised coordinates, x to the right, y
//! up); an image of `size` N has pixels of unit width centred at x = j − (N−1)/2,
//! y = (N−1)/2 − i, so normalised coordinate u corresponds to pixel coordinate u·N/2. This is
//! the convention of [`crate::radon`].

pub mod anatomical;
pub mod ellipse;
pub(crate) mod raster;
pub(crate) mod texture;

use ellipse::{rasterize, Ellipse};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Number of sub-rows and sub-columns per pixel used by the phantom generators (8×8 point
/// samples per pixel, i.e. area-weighted intensities).
pub const PHANTOM_SUPERSAMPLE: usize = 8;

/// The ellipses of the modified Shepp–Logan phantom (Toft 1996, "The Radon transform: theory
/// and implementation", Table B.3; identical to MATLAB's `phantom('Modified Shepp-Logan')`):
/// higher-contrast intensities than the original Shepp & Logan (1974) head, so that the image
/// lies in [0, 1] (skull 1, brain 0.2, ventricles 0, small features 0.3–0.4).
pub fn shepp_logan_ellipses() -> Vec<Ellipse> {
    #[rustfmt::skip]
    const TABLE: [[f32; 6]; 10] = [
        // value,  a,      b,      x0,    y0,      phi
        [ 1.0,  0.69,   0.92,   0.0,   0.0,     0.0],
        [-0.8,  0.6624, 0.8740, 0.0,  -0.0184,  0.0],
        [-0.2,  0.1100, 0.3100, 0.22,  0.0,   -18.0],
        [-0.2,  0.1600, 0.4100,-0.22,  0.0,    18.0],
        [ 0.1,  0.2100, 0.2500, 0.0,   0.35,    0.0],
        [ 0.1,  0.0460, 0.0460, 0.0,   0.1,     0.0],
        [ 0.1,  0.0460, 0.0460, 0.0,  -0.1,     0.0],
        [ 0.1,  0.0460, 0.0230,-0.08, -0.605,   0.0],
        [ 0.1,  0.0230, 0.0230, 0.0,  -0.606,   0.0],
        [ 0.1,  0.0230, 0.0460, 0.06, -0.605,   0.0],
    ];
    TABLE
        .iter()
        .map(|r| Ellipse {
            value: r[0],
            a: r[1],
            b: r[2],
            x0: r[3],
            y0: r[4],
            phi_deg: r[5],
        })
        .collect()
}

/// The modified Shepp–Logan phantom ([`shepp_logan_ellipses`]) rasterised at `size`² with
/// 8×8 supersampling per pixel, clamped to [0, 1] (the clamp only removes f32 rounding of the
/// exact cancellations 1 − 0.8 − 0.2 = 0).
pub fn shepp_logan(size: usize) -> Array2<f32> {
    rasterize(&shepp_logan_ellipses(), size, PHANTOM_SUPERSAMPLE).mapv(|v| v.clamp(0.0, 1.0))
}

/// A seeded random ellipse phantom as a list of ellipses: a background ellipse (value 0.2,
/// semi-axes in [0.75, 0.9]) and `n` ellipses inside it with semi-axes in [0.03, 0.35],
/// orientations in [0°, 180°) and additive values in [−0.2, 0.6].
///
/// The sum of the values can leave [0, 1] where ellipses overlap; [`random_ellipses`] clamps,
/// whereas accuracy tests use the unclamped list with [`ellipse::analytic_sinogram`].
pub fn random_ellipse_set(seed: u64, n: usize) -> Vec<Ellipse> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let bg_a = rng.random_range(0.75..0.9);
    let bg_b = rng.random_range(0.75..0.9);
    let mut out = vec![Ellipse {
        value: 0.2,
        a: bg_a,
        b: bg_b,
        x0: 0.0,
        y0: 0.0,
        phi_deg: 0.0,
    }];
    for _ in 0..n {
        let a: f32 = rng.random_range(0.03..0.35);
        let b: f32 = rng.random_range(0.03..0.35);
        // centre inside the background ellipse shrunk by the larger semi-axis
        let r: f32 = rng.random_range(0.0f32..1.0).sqrt();
        let ang: f32 = rng.random_range(0.0..std::f32::consts::TAU);
        let shrink = 1.0 - a.max(b) / bg_a.min(bg_b);
        out.push(Ellipse {
            value: rng.random_range(-0.2..0.6),
            a,
            b,
            x0: r * shrink.max(0.0) * bg_a * ang.cos(),
            y0: r * shrink.max(0.0) * bg_b * ang.sin(),
            phi_deg: rng.random_range(0.0..180.0),
        });
    }
    out
}

/// A seeded random ellipse phantom ([`random_ellipse_set`]) rasterised at `size`² with 8×8
/// supersampling and clamped to [0, 1].
pub fn random_ellipses(size: usize, seed: u64, n: usize) -> Array2<f32> {
    rasterize(&random_ellipse_set(seed, n), size, PHANTOM_SUPERSAMPLE).mapv(|v| v.clamp(0.0, 1.0))
}
