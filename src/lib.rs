//! # medsgm — score-based generative reconstruction of CT and MRI
//!
//! The root crate: score networks ([`nn`]), the latent SGM stack ([`lsgm`]), ScoreVAE encoders
//! for a frozen prior ([`scorevae`]), self-describing checkpoints ([`checkpoint`]) and the
//! loaded model that samples with one ([`model`]), medical image and measurement I/O ([`io`]),
//! the domain vocabulary ([`task`]), reconstruction of measurements, volumes and batches
//! ([`reconstruct`]), unconditional sampling ([`mod@sample`]), the built-in demo problem
//! ([`demo`]), figures ([`plot`]), benchmarks ([`mod@bench`]), image-quality metrics against a
//! reference ([`metrics`]), the prior's out-of-distribution calibration ([`calibrate`]),
//! exit-code classification of errors ([`error`]), progress bars ([`progress`]) and the
//! `medsgm` command-line interface ([`cli`]), which parses arguments and prints over those
//! modules. The physics lives in `medsgm-operators`, the samplers in `medsgm-recon`.
#![warn(missing_docs)]
// `!(hi > lo)` is how this crate rejects NaN bounds along with empty ranges (a NaN fails
// every comparison); clippy's suggested `partial_cmp` form hides that intent.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod bench;
pub mod calibrate;
pub mod checkpoint;
pub mod cli;
pub mod demo;
pub mod error;
pub mod eval;
pub mod io;
pub mod lsgm;
pub mod metrics;
pub mod model;
pub mod nn;
pub mod plot;
pub mod progress;
pub mod reconstruct;
pub mod sample;
pub mod scorevae;
pub mod task;
pub mod train;
