pub mod bench;
pub mod checkpoint;
pub mod nn;
pub mod train;
