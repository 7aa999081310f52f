//! Metal-artefact removal: the metal trace of the sinogram is inpainted (LI, FISTA-TV on the
//! measurement outside the trace, or the score prior), the image reconstructed in HU and the
//! metal pasted back from the uncorrected FBP.

use crate::error::invalid;
use crate::io::image_io::Window;
use crate::io::measurement::Measurement;
use crate::model::LoadedModel;
use crate::reconstruct::ct::{sinogram, subsampled_ct};
use crate::reconstruct::output::ReconOutput;
use crate::reconstruct::score::{model_hu_window, score_reconstruct, IntensityMap};
use crate::reconstruct::ReconJob;
use crate::task::Method;
use anyhow::Result;
use medsgm_operators::hu::mu_to_hu;
use medsgm_operators::metal::{segment_metal, METAL_THRESHOLD_HU};
use medsgm_operators::solvers::li::{li, paste_metal};
use ndarray::Array2;

/// MAR: Λ = the complement of the metal trace; the trace is inpainted (LI, or the score
/// prior), the image reconstructed in HU and the metal pasted back from the uncorrected FBP.
pub(super) fn recon_mar(
    job: &ReconJob,
    m: &Measurement,
    model: Option<&LoadedModel>,
) -> Result<ReconOutput> {
    let mu_water = m.sidecar.mu_water_per_pixel.ok_or_else(|| {
        invalid("the mar sidecar has no mu_water_per_pixel: cannot convert the sinogram to HU")
    })?;
    let (op, y) = subsampled_ct(m)?;
    let projector = op.transform();
    let sino = sinogram(m)?;
    let uncorrected = mu_to_hu(&projector.fbp(&sino.view(), job.filter).view(), mu_water);
    let metal = match &m.metal_mask {
        Some(mask) => mask.clone(),
        None => segment_metal(&uncorrected.view(), METAL_THRESHOLD_HU, 1)?,
    };
    let window = Window::hu();
    let mut out = match (model, &job.score) {
        (Some(model), Some(config)) => {
            // v = μ per pixel: HU = −1000 + v · 1000/μ_water.
            let map = IntensityMap::hu(-1000.0, 1000.0 / mu_water, model_hu_window(model, "mar")?);
            let r = score_reconstruct(model, &op, &y, map, config)?;
            r.into_output(config.samples, window)
        }
        _ => match job.method {
            Method::Li => {
                let trace = op.mask().mapv(|keep| !keep).into_dimensionality()?;
                let mu = li(projector, &sino.view(), &trace.view())?;
                ReconOutput::classical(mu_to_hu(&mu.view(), mu_water), window)
            }
            Method::FistaTv => {
                // TV on μ per pixel from the measurement outside the metal trace
                let mu = job.fista()?.run(m, &op, &y.view().into_dyn())?;
                ReconOutput::classical(mu_to_hu(&mu.view(), mu_water), window)
            }
            _ => ReconOutput::classical(uncorrected.clone(), window),
        },
    };
    paste_metal(&mut out.image, &metal.view(), &uncorrected.view())?;
    if let Some(std) = &mut out.std {
        paste_metal(std, &metal.view(), &Array2::zeros(metal.dim()).view())?;
    }
    Ok(out)
}
