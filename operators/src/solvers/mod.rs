//! Classical reconstruction baselines of thesis Table 8.1/8.2: FISTA with isotropic total
//! variation (CT and MRI, generic over the operator), zero-filled inverse FFT (MRI) and linear
//! interpolation across the metal trace (MAR, Table 8.3); and the proximal conjugate-gradient
//! data step of the decomposed diffusion samplers (DDS, DiffPIR).

pub mod cg;
pub mod fista_tv;
pub mod li;
pub mod tv;
pub mod zero_filled;

pub use cg::proximal_cg;
pub use fista_tv::{fista_tv, FistaTvParams};
pub use zero_filled::{zero_filled, ComplexPart};
