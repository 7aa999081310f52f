pub mod bench;
pub mod nn;
