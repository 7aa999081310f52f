//! Zero-filled reconstruction for Cartesian MRI: x = F⁻¹ P⁻¹(Λ) y, the minimum-norm solution of
//! A x = y for A = P(Λ) F (thesis Table 8.1 inputs of the supervised baselines).

use crate::fft::{Direction, Fft2, RealInput};
use crate::linop::{check_shape, Transform};
use crate::subsampled::Subsampled;
use crate::Result;
use ndarray::{Array2, ArrayView1, Ix2};
use num_complex::Complex32;

/// Which real image to return from the complex zero-filled reconstruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComplexPart {
    /// Re F⁻¹ k (score_inverse_problems keeps `.real`).
    Real,
    /// |F⁻¹ k| (fastMRI's magnitude images).
    Magnitude,
}

/// Transforms that are the centred unitary FFT underneath (so a zero-filled k-space can be
/// inverted to a complex image).
pub trait CentredFft: Transform<Out = Complex32> {
    /// The underlying [`Fft2`].
    fn fft2(&self) -> &Fft2;
}

impl CentredFft for Fft2 {
    fn fft2(&self) -> &Fft2 {
        self
    }
}

impl CentredFft for RealInput<Fft2> {
    fn fft2(&self) -> &Fft2 {
        self.inner()
    }
}

/// Zero-filled inverse FFT of the measurements `y` of A = P(Λ) F: fills the unmeasured k-space
/// with zeros, applies F⁻¹ and returns the real part or the magnitude.
pub fn zero_filled<T: CentredFft>(
    op: &Subsampled<T>,
    y: &ArrayView1<Complex32>,
    part: ComplexPart,
) -> Result<Array2<f32>> {
    check_shape("measurement", &[op.num_measurements()], y.shape())?;
    let full = op
        .zero_fill(y)
        .into_dimensionality::<Ix2>()
        .map_err(|_| crate::OpError::Param {
            name: "operator",
            reason: "k-space mask is not 2-D".into(),
        })?;
    let image = op
        .transform()
        .fft2()
        .apply(&full.view(), Direction::Inverse);
    Ok(match part {
        ComplexPart::Real => image.mapv(|v| v.re),
        ComplexPart::Magnitude => image.mapv(|v| v.norm()),
    })
}
