//! `medsgm tune`: choose a method's free parameters on validation images by Bayesian
//! optimisation ([`crate::eval::bayes_opt`]) of the mean SSIM or PSNR, resumable from a JSON
//! log, and record the best point in a TOML task config ([`TaskConfig`]).
//!
//! Search boxes (log-scaled unless noted): corrector SNR r (η) ∈ [0.01, 1]; λ ∈ [0.01, 1] for
//! the projection methods (Theorem 8.1 needs λ ∈ [0, 1]); ρ ∈ [0.01, 100] for the Score SDE and
//! Langevin baselines; the start time t₀ ∈ [0.1, 1] (linear; 1 = cold start from the prior,
//! below 1 a warm start, `InverseConfig::t_start`) for all four score methods; λ_TV ∈ [1e-6, 1]
//! for FISTA-TV; for dds and diffpir the re-noising η ∈ [0, 1] (linear), the data weight
//! γ ∈ [1, 1e5] (dds) or [1e-2, 1e8] (diffpir, whose weight is γ σ̄_t²) and t₀; for dps the
//! guidance step ζ ∈ [1e-3, 10] and t₀; the step size ζ ∈ [0.05, 20] of latent-dc (LSGM data consistency through the
//! decoder). Any of them can be held at a value instead (`--fix lambda=1`), which searches the
//! rest of the box.

use crate::eval::bayes_opt::{Dim, Evaluation, OptLog};
use crate::eval::cases::{Case, ScoreSolver};
use crate::eval::method::{MethodParams, TaskConfig};
use crate::eval::recon_bench::{mean_std, run_bench, MethodRun};
use crate::eval::score::Diverged;
use crate::eval::testset::TestImage;
use crate::io::atomic::write_bytes_atomic;
use crate::task::{Method, Problem};
use anyhow::{bail, Context, Result};
use medsgm_recon::InverseMethod;
use serde_json::json;
use std::path::Path;

/// The metric to maximise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Metric {
    /// Mean SSIM (Gaussian preset).
    Ssim,
    /// Mean PSNR (dB).
    Psnr,
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Metric::Ssim => "ssim",
            Metric::Psnr => "psnr",
        })
    }
}

/// The tuned parameters of `method` (see the module docs).
pub fn search_space(method: Method) -> Result<Vec<Dim>> {
    let snr = Dim::log("snr", 0.01, 1.0);
    let t_start = Dim::linear("t_start", 0.1, 1.0);
    Ok(match method {
        // up to 10²: low-dose (noisy) data want far more smoothing than noise-free ones
        Method::FistaTv => vec![Dim::log("tv_weight", 1e-6, 100.0)],
        Method::Score(InverseMethod::PcProjection | InverseMethod::AldProjection) => {
            vec![snr, Dim::log("lambda", 0.01, 1.0), t_start]
        }
        Method::Score(InverseMethod::ScoreSde | InverseMethod::Langevin) => {
            vec![snr, Dim::log("rho", 0.01, 100.0), t_start]
        }
        Method::Score(InverseMethod::Dds) | Method::LatentDds => vec![
            Dim::linear("eta", 0.0, 1.0),
            Dim::log("gamma", 1.0, 1e5),
            t_start,
        ],
        Method::Score(InverseMethod::DiffPir) | Method::LatentDiffPir => vec![
            Dim::linear("eta", 0.0, 1.0),
            Dim::log("gamma", 1e-2, 1e8),
            t_start,
        ],
        Method::Score(InverseMethod::Dps) => vec![Dim::log("zeta", 1e-3, 10.0), t_start],
        Method::LatentDc => vec![Dim::log("latent_step_size", 0.05, 20.0)],
        m => bail!("{m} has no parameters to tune"),
    })
}

/// The values as a TOML table keyed by dimension name.
pub fn as_table(dims: &[Dim], values: &[f64]) -> toml::Table {
    dims.iter()
        .zip(values)
        .map(|(d, &v)| (d.name.clone(), toml::Value::Float(v)))
        .collect()
}

/// Mean validation metric of `method` with `params` on the cases; the info holds both means.
/// A score method that diverges with these parameters scores PSNR 0 dB / SSIM 0 (its info
/// holds the error), so the search moves away instead of stopping.
pub fn objective(
    task: Problem,
    images: &[TestImage],
    cases: &[Case],
    run: &MethodRun,
    solver: Option<&dyn ScoreSolver>,
    metric: Metric,
) -> Result<(f64, serde_json::Value)> {
    let out = match run_bench(
        task,
        images,
        cases,
        std::slice::from_ref(run),
        solver,
        &mut |_| {},
    ) {
        Ok(out) => out,
        Err(e) => match e.downcast_ref::<Diverged>() {
            Some(d) => return Ok((0.0, json!({ "failed": d.0 }))),
            None => return Err(e),
        },
    };
    let (psnr, _) = mean_std(&out.records.iter().map(|r| r.psnr).collect::<Vec<_>>());
    let (ssim, _) = mean_std(&out.records.iter().map(|r| r.ssim).collect::<Vec<_>>());
    let value = match metric {
        Metric::Ssim => ssim,
        Metric::Psnr => psnr,
    };
    Ok((value, json!({ "psnr": psnr, "ssim": ssim })))
}

/// Tunes `method` (starting from `base` parameters) until `log` holds `budget` evaluations,
/// saving the log to `log_path` after each one. Returns the best evaluation.
#[allow(clippy::too_many_arguments)]
pub fn tune(
    task: Problem,
    images: &[TestImage],
    cases: &[Case],
    method: Method,
    base: &MethodParams,
    solver: Option<&dyn ScoreSolver>,
    metric: Metric,
    budget: usize,
    log: &mut OptLog,
    log_path: &Path,
    report: &mut dyn FnMut(usize, &Evaluation),
) -> Result<Evaluation> {
    let dims = log.dims.clone();
    log.maximize(
        budget,
        |values| {
            let params = base.overlay(&as_table(&dims, values))?;
            objective(
                task,
                images,
                cases,
                &MethodRun { method, params },
                solver,
                metric,
            )
        },
        |l| {
            if let Some(e) = l.evaluations.last() {
                report(l.evaluations.len(), e);
            }
            write_bytes_atomic(
                log_path,
                (serde_json::to_string_pretty(l)? + "\n").as_bytes(),
            )
        },
    )
}

/// Loads the log at `path` for resuming, checking that it searches the same box.
pub fn load_log(path: &Path, dims: &[Dim]) -> Result<OptLog> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read tuning log {}", path.display()))?;
    let log: OptLog = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a tuning log", path.display()))?;
    if log.dims != dims {
        bail!(
            "{} searches {:?}, not {:?}; remove it or drop --resume",
            path.display(),
            log.dims,
            dims
        );
    }
    Ok(log)
}

/// Splits `method`'s search space into the dimensions still searched and the `fixed` ones
/// (`name=value` pairs, each naming a dimension, each value inside its box), returning the
/// searched dimensions and the fixed values as a parameter table.
pub fn fix_dims(method: Method, fixed: &[String]) -> Result<(Vec<Dim>, toml::Table)> {
    let mut dims = search_space(method)?;
    let mut table = toml::Table::new();
    for pair in fixed {
        let (name, value) = pair
            .split_once('=')
            .with_context(|| format!("--fix {pair}: expected NAME=VALUE"))?;
        let (name, value) = (name.trim(), value.trim());
        let value: f64 = value
            .parse()
            .with_context(|| format!("--fix {pair}: {value} is not a number"))?;
        let i = dims.iter().position(|d| d.name == name).with_context(|| {
            let names: Vec<&str> = dims.iter().map(|d| d.name.as_str()).collect();
            format!("--fix {pair}: {method} searches {}", names.join(", "))
        })?;
        let d = dims.remove(i);
        if !(d.lo..=d.hi).contains(&value) {
            bail!("--fix {pair}: {name} must lie in [{}, {}]", d.lo, d.hi);
        }
        table.insert(d.name, toml::Value::Float(value));
    }
    if dims.is_empty() {
        bail!("--fix leaves nothing of {method} to tune");
    }
    Ok((dims, table))
}

/// Records the best point, with the `fixed` values, as `method`'s overrides in the task config
/// at `path` (other methods' entries are kept) with a `[tuning.method]` record.
pub fn write_config(
    path: &Path,
    method: Method,
    dims: &[Dim],
    best: &Evaluation,
    fixed: &toml::Table,
    record: toml::Table,
) -> Result<()> {
    let mut cfg = TaskConfig::load(path, true)?;
    let mut params = fixed.clone();
    params.extend(as_table(dims, &best.params));
    cfg.set(method, params, record);
    write_bytes_atomic(path, cfg.to_toml()?.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PC_PROJECTION: Method = Method::Score(InverseMethod::PcProjection);

    #[test]
    fn fixing_a_dimension_removes_it_from_the_search_and_keeps_it_in_the_config() {
        let (dims, fixed) =
            fix_dims(PC_PROJECTION, &["lambda = 1".into(), "t_start=0.5".into()]).unwrap();
        assert_eq!(dims.len(), 1);
        assert_eq!(dims[0].name, "snr");
        assert_eq!(fixed["lambda"].as_float(), Some(1.0));
        assert_eq!(fixed["t_start"].as_float(), Some(0.5));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tuned.toml");
        let best = Evaluation {
            params: vec![0.2],
            value: 30.0,
            info: serde_json::Value::Null,
        };
        write_config(
            &path,
            PC_PROJECTION,
            &dims,
            &best,
            &fixed,
            toml::Table::new(),
        )
        .unwrap();
        let p = TaskConfig::load(&path, false)
            .unwrap()
            .params(Problem::Ct, PC_PROJECTION)
            .unwrap();
        assert_eq!((p.snr, p.lambda, p.t_start), (0.2, 1.0, 0.5));
    }

    #[test]
    fn fixing_rejects_unknown_names_values_outside_the_box_and_an_empty_search() {
        let err = |f: &[&str]| {
            let f: Vec<String> = f.iter().map(|s| s.to_string()).collect();
            fix_dims(PC_PROJECTION, &f).unwrap_err().to_string()
        };
        assert!(err(&["rho=1"]).contains("searches snr, lambda, t_start"));
        assert!(err(&["t_start=0"]).contains("[0.1, 1]"));
        assert!(err(&["lambda=2"]).contains("[0.01, 1]"));
        assert!(err(&["lambda"]).contains("NAME=VALUE"));
        assert!(err(&["lambda=x"]).contains("not a number"));
        assert!(err(&["lambda=1", "snr=0.2", "t_start=1"]).contains("nothing"));
    }
}
