//! Reports the issue-6 likelihood numbers of an LSGM run trained by `medsgm train` on the
//! held-out slices of its `nifti-slices` data (or on 16 held-out draws of a phantom source).
//!
//! `cargo run --release --example lsgm_eval -- <run dir> [--heldout-npy <file>]`
//!
//! Prints, with the prior's EMA weights: per-image NELBO of the VAE with its N(0, I) prior and
//! of the LSGM (score-matching bound, Theorem 1 with w_ll and importance-sampled t, 16 draws
//! per image; and the probability-flow ODE bound, RK45 + Hutchinson, one draw), as mean ± SE
//! over images in nats, nats/dim and bits/dim (continuous density on [0, 1]-scaled images;
//! +8 gives the usual 8-bit figure under uniform dequantisation); the variance of the w_ll
//! objective with uniform and importance-sampled t on the held-out latents (LSGM Fig. 2).
//! `--heldout-npy` writes the held-out slices `[n, S, S]` for `medsgm bench recon --data`.

use anyhow::Context;
use candle_core::{Device, Tensor};
use medsgm::lsgm::LsgmTrainer;
use medsgm::train::data::build_source;
use medsgm::train::volume::{volume_slices, Split};
use medsgm::train::DataConfig;
use medsgm_recon::lsgm::{TimeProposal, TimeSampler, Weighting};
use ndarray::Array2;
use std::path::PathBuf;
use std::time::Instant;

/// Mean and standard error of `v`.
fn mean_se(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, (var / n).sqrt())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = args.get(1).map(PathBuf::from) else {
        anyhow::bail!("usage: lsgm_eval <run dir> [--heldout-npy <file>]")
    };
    let npy_out = match args.get(2).map(String::as_str) {
        Some("--heldout-npy") => Some(PathBuf::from(
            args.get(3).context("--heldout-npy needs a file")?,
        )),
        Some(other) => anyhow::bail!("unknown argument {other}"),
        None => None,
    };
    let dev = Device::Cpu;
    let state = dir.join("train_state.safetensors");
    // The data source only feeds training; evaluation uses held-out images below.
    let probe = medsgm::checkpoint::read_format(&state)?;
    anyhow::ensure!(
        probe == "medsgm-lsgm-train-state",
        "{} is {probe}",
        state.display()
    );
    let cfg = medsgm::lsgm::LsgmCheckpoint::load(&dir.join("lsgm.safetensors"), &dev)?
        .meta
        .config;
    let size = cfg.vae.image_size;
    let mut trainer = LsgmTrainer::resume(&state, build_source(&cfg.data, size, cfg.seed)?, &dev)?;
    trainer.use_ema_prior()?;
    let held: Vec<Array2<f32>> = match &cfg.data {
        DataConfig::NiftiSlices(v) => volume_slices(v, Some(size), Split::HeldOut)?
            .into_iter()
            .map(|(_, s)| s)
            .collect(),
        _ => (0..16)
            .map(|k| {
                Ok(trainer
                    .batch(1_000_000 + k)?
                    .get(0)?
                    .squeeze(0)?
                    .to_vec2::<f32>()?)
            })
            .collect::<anyhow::Result<Vec<_>>>()?
            .into_iter()
            .map(|rows| Array2::from_shape_vec((size, size), rows.concat()).expect("square image"))
            .collect(),
    };
    if let Some(path) = &npy_out {
        let views: Vec<_> = held.iter().map(|s| s.view()).collect();
        let stack = ndarray::stack(ndarray::Axis(0), &views)?;
        medsgm::io::npy::write_npy(path, &stack.view().into_dyn())?;
        println!("wrote {} held-out slices to {}", held.len(), path.display());
    }
    let image = |s: &Array2<f32>| -> anyhow::Result<Tensor> {
        Ok(Tensor::from_vec(
            s.iter().copied().collect(),
            (1, 1, size, size),
            &dev,
        )?)
    };
    let x = Tensor::cat(
        &held.iter().map(image).collect::<anyhow::Result<Vec<_>>>()?,
        0,
    )?;
    let d = (size * size) as f64;
    let bpd = |nats: f64| nats / (d * std::f64::consts::LN_2);
    let report = |what: &str, v: &[f64]| {
        let (m, se) = mean_se(v);
        println!(
            "{what}: {m:.1} ± {se:.1} nats ({:.4} nats/dim, {:.4} ± {:.4} bits/dim)",
            m / d,
            bpd(m),
            bpd(se)
        );
    };
    println!(
        "{} held-out images {size}², VAE step {}, stage-2 step {}",
        held.len(),
        trainer.vae_step(),
        trainer.prior_step()
    );

    // Score-matching bound, per image (16 posterior/time draws each, paired seeds).
    let clock = Instant::now();
    let (mut vae, mut lsgm, mut diff) = (Vec::new(), Vec::new(), Vec::new());
    for k in 0..held.len() {
        let n = trainer.nelbo(&x.narrow(0, k, 1)?, 16, 7 + k as u64)?;
        vae.push(n.vae());
        lsgm.push(n.lsgm());
        diff.push(n.vae() - n.lsgm());
    }
    report("VAE NELBO (N(0, I) prior)", &vae);
    report("LSGM NELBO (score-matching bound, 16 draws)", &lsgm);
    report("VAE − LSGM (paired)", &diff);
    println!("  ({:.0} s)", clock.elapsed().as_secs_f64());

    // Probability-flow ODE bound (one batch).
    let clock = Instant::now();
    let (ode, _, nfe) = trainer.nelbo_ode(&x, 3)?;
    report(&format!("LSGM NELBO (ODE, {nfe} NFE)"), &ode);
    println!("  ({:.0} s)", clock.elapsed().as_secs_f64());

    // LSGM Fig. 2: variance of the w_ll objective, uniform vs importance-sampled t.
    let moments = |proposal| -> anyhow::Result<(f64, f64)> {
        let s = TimeSampler::new(&cfg.sde, Weighting::Likelihood, proposal, cfg.t_min)?;
        trainer.objective_moments(&x, &s, 64, 11)
    };
    let (m_un, v_un) = moments(TimeProposal::Uniform)?;
    let (m_is, v_is) = moments(TimeProposal::Importance)?;
    println!(
        "w_ll objective ({} latents × 64 draws): uniform t mean {m_un:.1} var {v_un:.4e}; \
         IS mean {m_is:.1} var {v_is:.4e}; variance ratio {:.1}",
        held.len(),
        v_un / v_is
    );
    Ok(())
}
