//! Linear-interpolation metal-artefact reduction (LI, Kalender, Hebel & Ebersberger 1987;
//! thesis §8.4 baseline): replace the metal-trace bins of every view by linear interpolation
//! along the detector between the nearest unaffected bins, then reconstruct with T⁻¹ (ramp FBP
//! for `Radon`), and optionally paste the metal back.
//!
//! Edge handling: a run of trace bins that touches the first or last detector bin has only one
//! unaffected neighbour and is extrapolated *flat* from it (never towards an implicit zero —
//! a zero boundary creates the bright edge artefacts reported in score_inverse_problems#11).
//! A view whose bins are all in the trace has no data and is set to zero.

use crate::error::{OpError, Result};
use crate::linop::{check_shape, Transform};
use ndarray::{Array2, ArrayView2, Ix2};

/// The sinogram with every trace run replaced by linear interpolation along the detector
/// (axis 1) between its unaffected neighbours (flat extrapolation at the detector edges).
pub fn interpolate_trace(sino: &ArrayView2<f32>, trace: &ArrayView2<bool>) -> Result<Array2<f32>> {
    check_shape("metal trace", sino.shape(), trace.shape())?;
    if sino.iter().any(|v| !v.is_finite()) {
        return Err(OpError::NonFinite {
            what: "sinogram for LI",
        });
    }
    let mut out = sino.to_owned();
    for (mut row, tr) in out.outer_iter_mut().zip(trace.outer_iter()) {
        let n = row.len();
        let mut i = 0;
        while i < n {
            if !tr[i] {
                i += 1;
                continue;
            }
            let start = i;
            while i < n && tr[i] {
                i += 1;
            }
            // Run [start, i): neighbours start − 1 and i where they exist.
            let left = start.checked_sub(1).map(|l| (l, row[l]));
            let right = (i < n).then(|| (i, row[i]));
            for j in start..i {
                row[j] = match (left, right) {
                    (Some((l, vl)), Some((r, vr))) => {
                        let t = (j - l) as f32 / (r - l) as f32;
                        vl + t * (vr - vl)
                    }
                    (Some((_, v)), None) | (None, Some((_, v))) => v,
                    (None, None) => 0.0,
                };
            }
        }
    }
    Ok(out)
}

/// LI reconstruction: T⁻¹(interpolate_trace(sino, trace)) with T the full-view transform
/// (ramp-filtered back-projection for `Radon`).
pub fn li<T>(transform: &T, sino: &ArrayView2<f32>, trace: &ArrayView2<bool>) -> Result<Array2<f32>>
where
    T: Transform<In = f32, Out = f32>,
{
    check_shape("sinogram", &transform.range_shape(), sino.shape())?;
    let filled = interpolate_trace(sino, trace)?.into_dyn();
    transform
        .inverse(&filled.view())
        .into_dimensionality::<Ix2>()
        .map_err(|e| OpError::Param {
            name: "transform",
            reason: format!("domain is not 2-D: {e}"),
        })
}

/// Pastes `source` into `image` on the metal pixels (e.g. the metal of the uncorrected
/// reconstruction back into the LI image, as is customary for display).
pub fn paste_metal(
    image: &mut Array2<f32>,
    metal: &ArrayView2<bool>,
    source: &ArrayView2<f32>,
) -> Result<()> {
    check_shape("metal mask", image.shape(), metal.shape())?;
    check_shape("metal source", image.shape(), source.shape())?;
    ndarray::Zip::from(image)
        .and(metal)
        .and(source)
        .for_each(|p, &m, &s| {
            if m {
                *p = s;
            }
        });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn interpolation_is_linear_inside_and_flat_at_the_edges() {
        let sino = array![
            [9.0f32, 1.0, 9.0, 9.0, 4.0, 5.0],
            [9.0, 9.0, 2.0, 3.0, 9.0, 9.0],
            [9.0, 9.0, 9.0, 9.0, 9.0, 9.0]
        ];
        let trace = array![
            [true, false, true, true, false, false],
            [true, true, false, false, true, true],
            [true, true, true, true, true, true]
        ];
        let out = interpolate_trace(&sino.view(), &trace.view()).unwrap();
        let expected = array![
            [1.0f32, 1.0, 2.0, 3.0, 4.0, 5.0],
            [2.0, 2.0, 2.0, 3.0, 3.0, 3.0],
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        ];
        assert_eq!(out, expected);
    }

    #[test]
    fn interpolation_checks_shapes_and_finiteness() {
        let sino = Array2::<f32>::zeros((2, 3));
        assert!(interpolate_trace(&sino.view(), &Array2::from_elem((3, 2), false).view()).is_err());
        let mut bad = sino.clone();
        bad[[0, 1]] = f32::INFINITY;
        assert!(interpolate_trace(&bad.view(), &Array2::from_elem((2, 3), false).view()).is_err());
    }
}
