//! The application's domain vocabulary, below the CLI and shared by `recon`, `simulate`,
//! `demo`, `bench` and `tune`: which inverse problem ([`Problem`]) and which reconstruction
//! method ([`Method`]). Each is defined once, with its command-line, config and sidecar
//! spelling. [`ct_scan`]: a CT acquisition (geometry, measured views, noise) and its simulation;
//! [`mri_scan`]: a Cartesian MRI acquisition and its simulation; [`prior_grid`]: measurements
//! re-expressed on a prior's pixel grid; [`simulate`]: a measurement simulated from an image;
//! [`phantom`]: the built-in phantom families.

pub mod ct_scan;
mod method;
pub mod mri_scan;
pub mod phantom;
pub mod prior_grid;
mod problem;
pub mod simulate;

pub use method::Method;
pub use problem::Problem;
