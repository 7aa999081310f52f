//! Fan-beam filtered back-projection (Kak & Slaney, "Principles of Computerized Tomographic
//! Imaging", §3.4.1 equiangular and §3.4.2 equispaced detectors; short scans §3.4.3).

use super::geometry::DetectorKind;
use super::projector::FanBeam;
use crate::fbp::{Filter, FBP_UPSAMPLE};
use crate::linop::{kept_rows, Transform};
use crate::ramp::RampFilter;
use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, Ix2};

/// Fan-beam filtered back-projection of `sino` ([views, K], geometry of `op`) with the
/// `filter`-windowed ramp:
///
/// 1. weight: p₁(β, γ) = p(β, γ) · w(β, γ) · R cos γ (equiangular) or cos γ = R/√(R² + s²)
///    (flat, s = uR/D on the detector scaled to the isocentre), with w = ½ for a full scan
///    and Parker's weights for a short scan ([`super::parker::redundancy_weights`]);
/// 2. filter along the detector: q = Δγ·(p₁ ∗ (γ/sin γ)² h) (equiangular, Kak & Slaney's
///    g = ½(γ/sin γ)² h with the ½ in w) or q = Δs·(p₁ ∗ h) (flat), h the band-limited ramp,
///    planned once per operator and filter ([`RampFilter`]);
/// 3. back-project with the distance weight: f(x) = Δβ Σ_β q(β, γ′(x)) / L² (equiangular,
///    L = |x − S(β)|) or Δβ Σ_β q(β, s′(x)) / U² (flat, U = d/R with d the distance from the
///    source along the central ray), interpolating the filtered view (resampled
///    [`FBP_UPSAMPLE`]× finer) linearly at the pixel's detector position. When the views
///    come in groups of four a quarter turn apart (a full scan of 4k equispaced views), the
///    four views of a group share each pixel's geometry (about 3× faster).
///
/// Δβ is the mean step of the (assumed equispaced) source angles. Everything that depends on
/// the geometry only (the weights of step 1, the back-projection grid, per-view source
/// positions, the views' quarter-turn symmetry) is computed once per operator. Reproduces the
/// image up to discretisation for a full or short scan; panics if `sino` is not [views, K]
/// (validate user data with [`crate::linop::check_shape`] first).
pub fn fan_fbp(op: &FanBeam, sino: &ArrayView2<f32>, filter: Filter) -> Array2<f32> {
    let g = op.geometry();
    assert_eq!(
        sino.dim(),
        (g.n_views(), g.n_det),
        "fan_fbp: sinogram shape"
    );
    let plan = op.fbp_plan();
    let ramp = op.filters.get(filter, || {
        let (r, d) = (g.source_distance as f64, g.detector_distance as f64);
        match g.detector {
            DetectorKind::Equiangular => RampFilter::equiangular(
                filter,
                g.n_det,
                (g.det_spacing as f64 / d) as f32,
                FBP_UPSAMPLE,
            ),
            DetectorKind::Flat => RampFilter::new(
                filter,
                g.n_det,
                (g.det_spacing as f64 * r / d) as f32,
                FBP_UPSAMPLE,
            ),
        }
    });
    match &plan.orbits {
        Some(orbits) => plan.backproject_orbits(g.size, sino, &ramp, orbits),
        None => {
            let weighted = &plan.pre * sino;
            plan.backproject(g, &ramp.apply(&weighted.view()))
        }
    }
}

impl Transform for FanBeam {
    /// Ram-Lak fan-beam filtered back-projection over this operator's views ([`fan_fbp`]).
    fn inverse(&self, y: &ArrayViewD<f32>) -> ArrayD<f32> {
        let y = y
            .view()
            .into_dimensionality::<Ix2>()
            .expect("FanBeam::inverse expects a 2-D sinogram");
        fan_fbp(self, &y, Filter::RamLak).into_dyn()
    }

    /// A view mask (every sinogram row kept whole or dropped whole) gives the fan-beam
    /// transform over the kept views, in row order (the sparse-view operator); other masks give
    /// `None`.
    fn restricted(&self, mask: &ArrayD<bool>) -> Option<Self> {
        let keep = kept_rows(mask)?;
        let angles = self
            .geometry()
            .angles
            .iter()
            .zip(&keep)
            .filter_map(|(&a, &k)| k.then_some(a))
            .collect();
        FanBeam::new(self.geometry().clone().with_angles(angles)).ok()
    }
}
