//! Continuous-time denoising score matching (method digest §2): data sources, Adam + EMA,
//! the training loop with resumable state, loss curve and sample grids; a learned noise
//! schedule (VDM) trained with the network; the run's output folder ([`run_folder`]); one run
//! as asked for ([`request`]).

pub mod config;
pub mod data;
pub mod data_memory;
pub mod dicom_slices;
pub mod learned_schedule;
pub mod optim;
pub mod patches;
pub mod plot;
pub mod progress;
pub mod request;
pub mod run_folder;
pub mod source;
pub mod trainer;
pub mod volume;

pub use config::{TrainConfig, Weighting};
pub use data::{DataConfig, DataSource};
pub use trainer::Trainer;
