//! Metal segmentation, metal trace and the MAR mask Λ (thesis §8.4 / B.6.2, Fig. B.54).
//!
//! Metal-artefact removal treats the sinogram bins whose rays cross metal (the *metal trace*)
//! as missing: A = P(Λ) T with T the full-view Radon transform and Λ the complement of the trace.
//! As in the paper, the metal is estimated by rough thresholding of the artefact image:
//!
//! 1. `metal = dilate(HU > threshold, r)` — default threshold [`METAL_THRESHOLD_HU`] = 3000 HU
//!    and a 3×3 square structuring element (r = 1). The official code uses 3300 on its own
//!    pixel scale HU = 4224 v − 1024 and a 3×3 max-pool; 3000 HU sits in the same gap between
//!    cortical bone (< 2000 HU) and implants (≥ 6000 HU effective).
//! 2. `trace = R(1_metal) > τ` — the Radon transform of the binary mask is the length (in pixel
//!    units) each ray travels through metal. The default τ = [`TRACE_THRESHOLD`] = 10⁻³ pixel
//!    lengths keeps *every* ray that touches a metal pixel in the discrete model (so Radon of the
//!    metal mask vanishes outside the trace); the official code's "> 5" on its scale corresponds
//!    to a much larger τ that drops grazing rays and leaves residual streaks.
//! 3. `Λ = ¬trace` ([`mar_mask`]), shape [views, det], for `Subsampled<Radon>`.

use crate::error::{OpError, Result};
use crate::linop::{check_shape, LinearOperator};
use ndarray::{Array2, ArrayView2, Ix2};

/// Default metal threshold in HU.
pub const METAL_THRESHOLD_HU: f32 = 3000.0;

/// Default metal-trace threshold τ in pixel lengths of metal along a ray.
pub const TRACE_THRESHOLD: f32 = 1e-3;

/// Pixels with HU > `threshold_hu`, dilated by a (2r+1)×(2r+1) square (r = `dilation_radius`;
/// r = 1 is the paper's 3×3 max-pool, r = 0 no dilation).
pub fn segment_metal(
    hu: &ArrayView2<f32>,
    threshold_hu: f32,
    dilation_radius: usize,
) -> Result<Array2<bool>> {
    if hu.iter().any(|v| v.is_nan()) {
        return Err(OpError::NonFinite {
            what: "HU image for metal segmentation",
        });
    }
    let raw = hu.mapv(|h| h > threshold_hu);
    Ok(dilate(&raw.view(), dilation_radius))
}

/// Binary dilation with a (2r+1)×(2r+1) square structuring element (separable: rows, then
/// columns), pixels outside the image counting as false.
pub fn dilate(mask: &ArrayView2<bool>, radius: usize) -> Array2<bool> {
    if radius == 0 {
        return mask.to_owned();
    }
    let (h, w) = mask.dim();
    let rows = Array2::from_shape_fn((h, w), |(r, c)| {
        let (lo, hi) = (c.saturating_sub(radius), (c + radius).min(w - 1));
        (lo..=hi).any(|j| mask[[r, j]])
    });
    Array2::from_shape_fn((h, w), |(r, c)| {
        let (lo, hi) = (r.saturating_sub(radius), (r + radius).min(h - 1));
        (lo..=hi).any(|i| rows[[i, c]])
    })
}

/// The metal trace: sinogram bins where R(1_metal) > `threshold` (pixel lengths of metal).
/// `radon` is any 2-D → 2-D projector (the full-view `Radon` in practice); the result has its
/// range shape [views, det].
pub fn metal_trace<T>(radon: &T, metal: &ArrayView2<bool>, threshold: f32) -> Result<Array2<bool>>
where
    T: LinearOperator<In = f32, Out = f32>,
{
    check_shape("metal mask", &radon.domain_shape(), metal.shape())?;
    if radon.range_shape().len() != 2 {
        return Err(OpError::Param {
            name: "radon",
            reason: format!(
                "metal trace needs a 2-D sinogram range, got {:?}",
                radon.range_shape()
            ),
        });
    }
    let indicator = metal.mapv(|m| if m { 1.0f32 } else { 0.0 }).into_dyn();
    let proj = radon.forward(&indicator.view());
    let proj = proj
        .into_dimensionality::<Ix2>()
        .map_err(|e| OpError::Param {
            name: "radon",
            reason: format!("range is not 2-D: {e}"),
        })?;
    Ok(proj.mapv(|p| p > threshold))
}

/// Λ = complement of the metal trace: true where the measurement is kept.
pub fn mar_mask(trace: &ArrayView2<bool>) -> Array2<bool> {
    trace.mapv(|t| !t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn dilation_grows_a_point_into_a_square_and_clips_at_edges() {
        let mut m = Array2::from_elem((5, 6), false);
        m[[2, 3]] = true;
        m[[0, 0]] = true;
        let d = dilate(&m.view(), 1);
        let expected = array![
            [true, true, false, false, false, false],
            [true, true, true, true, true, false],
            [false, false, true, true, true, false],
            [false, false, true, true, true, false],
            [false, false, false, false, false, false],
        ];
        assert_eq!(d, expected);
        assert_eq!(dilate(&m.view(), 0), m);
    }

    #[test]
    fn segmentation_thresholds_then_dilates_and_rejects_nan() {
        let hu = array![[0.0f32, 100.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 5000.0]];
        let m = segment_metal(&hu.view(), METAL_THRESHOLD_HU, 0).unwrap();
        assert_eq!(m.iter().filter(|&&v| v).count(), 1);
        assert!(m[[2, 2]]);
        let m1 = segment_metal(&hu.view(), METAL_THRESHOLD_HU, 1).unwrap();
        assert_eq!(m1.iter().filter(|&&v| v).count(), 4);
        let mut bad = hu.clone();
        bad[[0, 0]] = f32::NAN;
        assert!(segment_metal(&bad.view(), 3000.0, 1).is_err());
    }
}
