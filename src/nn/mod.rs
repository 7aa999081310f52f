//! Score networks (NCSN++-style U-Net) built from candle-nn layers.

pub mod blocks;
pub mod config;
pub mod conv;
pub mod cpu_runtime;
mod cpu_storage;
pub mod embedding;
pub mod fast_math;
pub mod group_norm;
pub mod init;
pub mod ncsnpp;
pub mod residual;
pub mod score;

pub use config::NcsnppConfig;
pub use ncsnpp::Ncsnpp;
