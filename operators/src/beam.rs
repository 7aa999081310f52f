//! The CT transform T of either beam geometry — parallel ([`Radon`]) or fan ([`FanBeam`]) —
//! behind one type, so that A = P(Λ)T, FBP and every solver take a CT measurement whatever its
//! scanner geometry (Song et al., thesis §8.2: T is any full-view CT transform).

use crate::error::Result;
use crate::fan::{fan_fbp, FanBeam, FanGeometry};
use crate::fbp::{fbp, Filter};
use crate::linop::{check_shape, LinearOperator, Transform};
use crate::radon::{Radon, RadonGeometry};
use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD};

/// A CT projector: the Radon transform of a parallel-beam or a fan-beam geometry.
#[derive(Debug, Clone)]
pub enum CtProjector {
    /// Parallel beam (views over [0, π)).
    Parallel(Radon),
    /// Fan beam (source angles over a full or short scan).
    Fan(FanBeam),
}

impl CtProjector {
    /// Filtered back-projection of `sino` with the apodisation `filter`: parallel FBP (Kak &
    /// Slaney §3.3) or fan-beam FBP with its pre-weighting and Parker/redundancy weights
    /// (§3.4).
    pub fn fbp(&self, sino: &ArrayView2<f32>, filter: Filter) -> Array2<f32> {
        match self {
            CtProjector::Parallel(r) => fbp(r, sino, filter),
            CtProjector::Fan(f) => fan_fbp(f, sino, filter),
        }
    }

    /// The same scan with each detector bin split into `os` sub-bins of 1/os its width, bin
    /// centres preserved (sub-bins os·k … os·k + os − 1 tile bin k, the fan detector offset
    /// scaled to sub-bins): averaging a sinogram over them models the detector aperture.
    pub fn with_subdivided_bins(&self, os: usize) -> Result<CtProjector> {
        let scale = os as f32;
        Ok(match self {
            CtProjector::Parallel(r) => {
                let g = r.geometry();
                Radon::new(RadonGeometry {
                    n_det: g.n_det * os,
                    det_spacing: g.det_spacing / scale,
                    ..g.clone()
                })?
                .into()
            }
            CtProjector::Fan(f) => {
                let g = f.geometry();
                FanBeam::new(FanGeometry {
                    n_det: g.n_det * os,
                    det_spacing: g.det_spacing / scale,
                    det_offset: g.det_offset * scale,
                    ..g.clone()
                })?
                .into()
            }
        })
    }

    /// (views, detector bins) of the sinogram.
    pub fn sinogram_shape(&self) -> (usize, usize) {
        match self {
            CtProjector::Parallel(r) => (r.geometry().n_views(), r.geometry().n_det),
            CtProjector::Fan(f) => (f.geometry().n_views(), f.geometry().n_det),
        }
    }

    /// T x of an N × N image as a [views, bins] sinogram.
    pub fn project(&self, x: &ArrayView2<f32>) -> Result<Array2<f32>> {
        check_shape("image", &self.domain_shape(), x.shape())?;
        let (v, b) = self.sinogram_shape();
        let got = self.forward(&x.view().into_dyn());
        let dims = got.shape().to_vec();
        got.into_shape_with_order((v, b))
            .map_err(|_| crate::error::OpError::Shape {
                what: "sinogram",
                expected: vec![v, b],
                got: dims,
            })
    }

    /// Image side N.
    pub fn size(&self) -> usize {
        match self {
            CtProjector::Parallel(r) => r.geometry().size,
            CtProjector::Fan(f) => f.geometry().size,
        }
    }
}

impl LinearOperator for CtProjector {
    type In = f32;
    type Out = f32;

    fn domain_shape(&self) -> Vec<usize> {
        match self {
            CtProjector::Parallel(r) => r.domain_shape(),
            CtProjector::Fan(f) => f.domain_shape(),
        }
    }

    fn range_shape(&self) -> Vec<usize> {
        match self {
            CtProjector::Parallel(r) => r.range_shape(),
            CtProjector::Fan(f) => f.range_shape(),
        }
    }

    fn forward(&self, x: &ArrayViewD<f32>) -> ArrayD<f32> {
        match self {
            CtProjector::Parallel(r) => r.forward(x),
            CtProjector::Fan(f) => f.forward(x),
        }
    }

    fn adjoint(&self, y: &ArrayViewD<f32>) -> ArrayD<f32> {
        match self {
            CtProjector::Parallel(r) => r.adjoint(y),
            CtProjector::Fan(f) => f.adjoint(y),
        }
    }
}

impl Transform for CtProjector {
    /// Ram-Lak FBP of the geometry.
    fn inverse(&self, y: &ArrayViewD<f32>) -> ArrayD<f32> {
        match self {
            CtProjector::Parallel(r) => r.inverse(y),
            CtProjector::Fan(f) => f.inverse(y),
        }
    }

    /// The projector over the views a row mask keeps (see the geometries' own `restricted`).
    fn restricted(&self, mask: &ArrayD<bool>) -> Option<Self> {
        match self {
            CtProjector::Parallel(r) => r.restricted(mask).map(CtProjector::Parallel),
            CtProjector::Fan(f) => f.restricted(mask).map(CtProjector::Fan),
        }
    }
}

impl From<Radon> for CtProjector {
    fn from(r: Radon) -> Self {
        CtProjector::Parallel(r)
    }
}

impl From<FanBeam> for CtProjector {
    fn from(f: FanBeam) -> Self {
        CtProjector::Fan(f)
    }
}
