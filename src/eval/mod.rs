//! Evaluation of reconstruction methods: the benchmark harness behind
//! `medsgm bench recon` and the parameter tuner behind `medsgm tune`.
//!
//! - [`method`]: the methods, their parameters and TOML task configs;
//! - [`testset`]: held-out CT/MAR phantoms and MRI slices;
//! - [`cases`]: operators A = P(Λ)T and measurements per task, classical baselines, the
//!   [`cases::ScoreSolver`] hand-off;
//! - [`recon_bench`]: running, scoring and summarising; [`report`]: CSV/JSON/markdown/PNG;
//!   [`scores`]: PSNR, SSIM and NMSE of an image against a reference; [`setup`]: the test
//!   images, cases and solvers of a run; [`bench_run`]: one `bench recon` run into its folder;
//! - [`score`]: a checkpoint driving `medsgm_recon::inverse::solve`; [`latent`]: an LSGM
//!   checkpoint driving `crate::lsgm::latent_solve`, and the pixel/latent solver router;
//! - [`uncertainty`]: the per-slice posterior-spread figure of score reconstructions;
//!   [`typicality`]: the out-of-distribution check (denoising residual, calibrated per prior,
//!   and [`extent`]: the body's width against the widest training slice);
//!   [`likelihood`]: ELBO and ODE bits/dim of images under a prior, [`latent_likelihood`]: the
//!   LSGM bounds, [`likelihood_images`]: the image sets, [`likelihood_report`]: table and JSON, [`likelihood_run`]: one run;
//! - [`bayes_opt`] and [`tune`]: Gaussian-process Bayesian optimisation of method parameters;
//!   [`tune_run`]: one `tune` run from its paths and log to the written task config.

pub mod bayes_opt;
pub mod bench_run;
pub mod cases;
pub mod extent;
pub mod latent;
pub mod latent_likelihood;
pub mod likelihood;
pub mod likelihood_images;
pub mod likelihood_report;
pub mod likelihood_run;
pub mod method;
pub mod recon_bench;
pub mod report;
pub mod score;
pub mod scores;
pub mod setup;
pub mod testset;
pub mod tune;
pub mod tune_run;
pub mod typicality;
pub mod uncertainty;
