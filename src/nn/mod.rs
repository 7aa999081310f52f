//! Score networks (NCSN++-style U-Net) built from candle-nn layers.

pub mod blocks;
pub mod config;
pub mod conv;
pub mod embedding;
pub mod init;
pub mod ncsnpp;

pub use config::NcsnppConfig;
pub use ncsnpp::Ncsnpp;
