//! # medsgm — score-based generative reconstruction of CT and MRI
//!
//! The root crate: medical image and measurement I/O ([`io`]), figures ([`plot`]) and the
//! `medsgm` command-line interface ([`cli`]). The physics lives in `medsgm-operators`, the
//! samplers in `medsgm-recon`.

pub mod cli;
pub mod io;
pub mod plot;
