//! CT measurements (parallel or fan beam, sparse views): the projector of a sidecar, the
//! score-based operator A = P(Λ)T with its measured entries y, and the classical methods
//! (FBP, FISTA-TV).

use crate::error::{invalid, InputContext};
use crate::io::image_io::Window;
use crate::io::measurement::{Geometry, Mask, Measurement, MeasurementData};
use crate::model::LoadedModel;
use crate::reconstruct::output::ReconOutput;
use crate::reconstruct::score::{
    ct_intensity_map, declared_units, dense_ct_operator, ScoreProblem, DENSE_VIEWS,
};
use crate::reconstruct::ReconJob;
use crate::task::Method;
use anyhow::{bail, Result};
use medsgm_operators::{CtProjector, LinearOperator, Subsampled};
use ndarray::{Array1, Array2};

/// The sinogram of a CT/MAR measurement.
pub(super) fn sinogram(m: &Measurement) -> Result<&Array2<f32>> {
    match &m.data {
        MeasurementData::Sinogram(s) => Ok(s),
        MeasurementData::KSpace(_) => {
            bail!("a {} measurement must hold a sinogram", m.sidecar.kind)
        }
    }
}

/// The CT projector (parallel or fan beam) over the given views of a CT/MAR sidecar (all of
/// them when `views` is None).
fn projector_of(m: &Measurement, views: Option<&[usize]>) -> Result<CtProjector> {
    crate::task::ct_scan::projector(&m.sidecar.geometry, views).map_err(|e| {
        invalid(format!(
            "a {} measurement needs a valid parallel- or fan-beam geometry: {e:#}",
            m.sidecar.kind
        ))
    })
}

/// The score-based operator of a CT/MAR measurement and its measured entries y: for
/// parallel-beam CT the dense view set of [`dense_ct_operator`] (the sidecar's
/// full set when it is already that dense), for fan-beam CT the sidecar's full view set with
/// Λ = the measured views, for MAR the full view set with Λ = the complement of the metal
/// trace.
pub(super) fn subsampled_ct(m: &Measurement) -> Result<(Subsampled<CtProjector>, Array1<f32>)> {
    let sino = sinogram(m)?;
    let sparse_parallel = match &m.sidecar.geometry {
        Geometry::ParallelBeam {
            size,
            angles_deg,
            n_det,
            det_spacing,
        } if angles_deg.len() < DENSE_VIEWS => Some((*size, angles_deg, *n_det, *det_spacing)),
        _ => None,
    };
    match (&m.sidecar.mask, &m.sinogram_mask, sparse_parallel) {
        (Mask::Views { kept }, _, Some((size, angles_deg, n_det, det_spacing))) => {
            let measured: Vec<f32> = kept.iter().map(|&k| angles_deg[k]).collect();
            let (op, y) =
                dense_ct_operator(size, n_det, det_spacing, &measured, sino, DENSE_VIEWS)?;
            let op = Subsampled::new(CtProjector::from(op.transform().clone()), op.mask().clone())
                .invalid_input()?;
            Ok((op, y))
        }
        (Mask::Views { kept }, _, None) => {
            let projector = projector_of(m, None)?;
            let (n_views, n_det) = (projector.range_shape()[0], projector.range_shape()[1]);
            let mut full = Array2::<f32>::zeros((n_views, n_det));
            let mut mask = Array2::from_elem(full.dim(), false);
            for (row, &k) in kept.iter().enumerate() {
                full.row_mut(k).assign(&sino.row(row));
                mask.row_mut(k).fill(true);
            }
            let op = Subsampled::new(projector, mask.into_dyn()).invalid_input()?;
            let y = op.gather(&full.view().into_dyn());
            Ok((op, y))
        }
        (Mask::Sinogram { .. }, Some(mask), _) => {
            let op =
                Subsampled::new(projector_of(m, None)?, mask.clone().into_dyn()).invalid_input()?;
            let y = op.gather(&sino.view().into_dyn());
            Ok((op, y))
        }
        _ => bail!("the measurement has no usable sinogram mask"),
    }
}

/// The score-based problem of a sparse-view CT measurement.
pub(super) fn ct_score_problem(
    job: &ReconJob,
    m: &Measurement,
    model: &LoadedModel,
) -> Result<ScoreProblem<CtProjector>> {
    let map = ct_intensity_map(
        model,
        job.units.or_else(|| declared_units(&m.sidecar.units)),
    )?;
    let (op, y) = subsampled_ct(m)?;
    Ok((op, y, map))
}

/// Sparse-view CT, classical methods.
pub(super) fn recon_ct(job: &ReconJob, m: &Measurement) -> Result<ReconOutput> {
    let Mask::Views { kept } = &m.sidecar.mask else {
        bail!("a ct measurement needs a view mask");
    };
    let projector = projector_of(m, Some(kept))?;
    let sino = sinogram(m)?;
    let image = match job.method {
        Method::Fbp => projector.fbp(&sino.view(), job.filter),
        _ => job.fista()?.run(m, &projector, &sino.view().into_dyn())?,
    };
    Ok(ReconOutput::classical(image, Window::UNIT))
}
