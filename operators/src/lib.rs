//! # medsgm-operators — the measurement physics of medsgm
//!
//! Linear operators with exact adjoints and the decomposition A = P(Λ) T of Song et al.,
//! "Solving inverse problems in medical imaging with score-based generative models" (thesis
//! Ch. 8): the parallel-beam Radon transform and the fan-beam projector with filtered
//! back-projection for CT, the unitary 2-D FFT and Cartesian k-space masks for MRI, metal
//! traces for metal-artifact removal, noise models, classical solvers (FBP, FISTA-TV,
//! zero-filled, linear interpolation), image-quality metrics and phantoms. No neural-network
//! code lives here.
#![warn(missing_docs)]

pub mod beam;
pub mod error;
pub mod fan;
pub mod fbp;
pub mod fft;
pub mod hu;
pub mod kspace_mask;
pub mod linop;
pub mod mar_sim;
pub mod metal;
pub mod metrics;
pub mod noise;
pub mod phantom;
pub mod radon;
pub mod ramp;
pub mod resample;
pub mod scalar;
pub mod solvers;
pub mod sparse_view;
pub mod subsampled;

pub use beam::CtProjector;
pub use error::{OpError, Result};
pub use fan::{DetectorKind, FanBeam, FanGeometry};
pub use fft::{Fft2, RealInput};
pub use linop::{adjoint_test, operator_norm, AdjointReport, LinearOperator, Transform};
pub use scalar::Scalar;
pub use subsampled::Subsampled;
