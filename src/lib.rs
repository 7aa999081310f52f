//! # medsgm — score-based generative reconstruction of CT and MRI
//!
//! The root crate: score networks ([`nn`]), the latent SGM stack ([`lsgm`]), self-describing checkpoints ([`checkpoint`]),
//! medical image and measurement I/O ([`io`]), figures ([`plot`]), benchmarks ([`bench`]) and
//! the `medsgm` command-line interface ([`cli`]). The physics lives in `medsgm-operators`, the
//! samplers in `medsgm-recon`.

pub mod bench;
pub mod checkpoint;
pub mod cli;
pub mod eval;
pub mod io;
pub mod lsgm;
pub mod nn;
pub mod plot;
pub mod train;
