//! Fan-beam CT (2-D, third generation): the geometry of clinical scanners (curved equiangular
//! detectors) and C-arm/benchtop systems (flat detectors), the Joseph projector with its exact
//! adjoint, fan-beam FBP for full and short scans (Parker weights), rebinning to parallel beam
//! and exact sinograms of ellipse phantoms. Lengths are in pixels (see [`geometry`]).

pub mod analytic;
pub mod fbp;
mod fbp_plan;
pub mod geometry;
mod kernels;
pub mod parker;
pub mod projector;
mod rays;
pub mod rebin;

pub use analytic::analytic_fan_sinogram;
pub use fbp::fan_fbp;
pub use geometry::{DetectorKind, FanGeometry};
pub use parker::{parker_weight, parker_weights, redundancy_weights, ScanArc};
pub use projector::FanBeam;
pub use rebin::rebin_to_parallel;
