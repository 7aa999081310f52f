//! # medsgm-recon — SDEs, samplers and score-based inverse-problem solvers
//!
//! The score model is a trait; samplers and solvers are generic over it and over any
//! decomposed measurement operator A = P(Λ)T from `medsgm-operators`.

pub mod projection;
