//! Classical reconstruction baselines of thesis Table 8.1/8.2: FISTA with isotropic total
//! variation (CT and MRI, generic over the operator) and zero-filled inverse FFT (MRI).

pub mod fista_tv;
pub mod tv;
pub mod zero_filled;

pub use fista_tv::{fista_tv, FistaTvParams};
pub use zero_filled::{zero_filled, ComplexPart};
