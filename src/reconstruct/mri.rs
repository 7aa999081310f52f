//! Undersampled Cartesian MRI: A = P(Λ) F on real images from a k-space measurement, the
//! score-based problem (intensity scale from the zero-filled image) and the classical methods
//! (zero-filled, FISTA-TV).

use crate::io::image_io::Window;
use crate::io::measurement::{Geometry, Mask, Measurement, MeasurementData};
use crate::model::LoadedModel;
use crate::reconstruct::output::ReconOutput;
use crate::reconstruct::score::{mri_intensity_map, ScoreProblem};
use crate::reconstruct::ReconJob;
use crate::task::Method;
use anyhow::{bail, Result};
use medsgm_operators::solvers::{zero_filled, ComplexPart};
use medsgm_operators::{Fft2, RealInput, Subsampled};
use ndarray::{Array1, Array2};
use num_complex::Complex32;

/// Undersampled MRI's A = P(Λ) F on real images.
type MriOperator = Subsampled<RealInput<Fft2>>;

/// MRI: A = P(Λ) F on real images, Λ = the measured columns; y; the zero-filled image.
fn mri_operator(m: &Measurement) -> Result<(MriOperator, Array1<Complex32>, Array2<f32>)> {
    let (Geometry::Cartesian { h, w }, Mask::Columns { kept, .. }, MeasurementData::KSpace(k)) =
        (&m.sidecar.geometry, &m.sidecar.mask, &m.data)
    else {
        bail!("an mri measurement must hold cartesian k-space with a column mask");
    };
    let mask = Array2::from_shape_fn((*h, *w), |(_, j)| kept.binary_search(&j).is_ok());
    let op = Subsampled::new(RealInput::new(Fft2::new(*h, *w)?), mask.into_dyn())?;
    let y = op.gather(&k.view().into_dyn());
    let zf = zero_filled(&op, &y.view(), ComplexPart::Real)?;
    Ok((op, y, zf))
}

/// The score-based problem of an MRI measurement (the intensity scale from its zero-filled
/// image).
pub(super) fn mri_score_problem(
    job: &ReconJob,
    m: &Measurement,
    model: &LoadedModel,
) -> Result<ScoreProblem<RealInput<Fft2>>> {
    let (op, y, zf) = mri_operator(m)?;
    let map = mri_intensity_map(model, job.units, &zf)?;
    Ok((op, y, map))
}

/// Undersampled MRI, classical methods.
pub(super) fn recon_mri(job: &ReconJob, m: &Measurement) -> Result<ReconOutput> {
    let (op, y, zf) = mri_operator(m)?;
    let image = match job.method {
        Method::ZeroFilled => zf,
        _ => job.fista()?.run(m, &op, &y.view().into_dyn())?,
    };
    Ok(ReconOutput::classical(image, Window::UNIT))
}
