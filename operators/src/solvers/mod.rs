//! Classical reconstruction baselines.

pub mod li;
