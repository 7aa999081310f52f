//! The reconstruction methods compared by `medsgm bench recon` (thesis Tables 8.1–8.3 and
//! Fig. 8.5) and their parameters, with per-task defaults and TOML task configs written by
//! `medsgm tune`.

use crate::task::{Method, Problem};
use anyhow::{anyhow, bail, Context, Result};
use medsgm_recon::{InverseConfig, InverseMethod};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Parameters of one method (only the fields relevant to it are used).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodParams {
    /// FISTA-TV weight λ_TV in ½‖Ax − y‖² + λ_TV TV(x) (y in model units).
    pub tv_weight: f32,
    /// FISTA-TV outer iterations.
    pub fista_iterations: usize,
    /// Score methods: predictor steps N.
    pub steps: usize,
    /// Score methods: corrector steps M per predictor step.
    pub corrector_steps: usize,
    /// Corrector signal-to-noise ratio r (η).
    pub snr: f64,
    /// λ of Theorem 8.1 (projection methods).
    pub lambda: f64,
    /// Likelihood weight ρ (score-sde, langevin).
    pub rho: f64,
    /// Sampler seed.
    pub seed: u64,
    /// Score methods: posterior samples K per image; the reconstruction is their mean (the
    /// MMSE estimate), at K times the NFE.
    pub samples: usize,
    /// Step size ζ of latent-dc's normalised data-consistency step.
    #[serde(default = "default_latent_step_size")]
    pub latent_step_size: f64,
    /// Score methods: start time t₀ ∈ (ε, 1] (1 = cold start from the prior; below 1 a warm
    /// start from the measured-data estimate, `InverseConfig::t_start`).
    #[serde(default = "default_t_start")]
    pub t_start: f64,
    /// dds, diffpir: stochasticity η ∈ [0, 1] of the re-noising.
    #[serde(default = "default_eta")]
    pub eta: f64,
    /// dds, diffpir: data weight γ relative to ‖A‖² (`medsgm_recon::decomposed`).
    #[serde(default = "default_gamma")]
    pub gamma: f64,
    /// dds, diffpir: CG iterations of the data step.
    #[serde(default = "default_cg_iterations")]
    pub cg_iterations: usize,
    /// dps: guidance step size ζ.
    #[serde(default = "default_zeta")]
    pub zeta: f64,
}

fn default_zeta() -> f64 {
    medsgm_recon::InverseConfig::default().zeta
}

fn default_eta() -> f64 {
    medsgm_recon::InverseConfig::default().eta
}

fn default_gamma() -> f64 {
    medsgm_recon::InverseConfig::default().gamma
}

fn default_cg_iterations() -> usize {
    medsgm_recon::InverseConfig::default().cg_iterations
}

fn default_latent_step_size() -> f64 {
    2.0
}

fn default_t_start() -> f64 {
    1.0
}

impl MethodParams {
    /// Defaults for `task`: λ_TV = 0.05 for sinograms of 64–128² images in [0, 1] (CT, MAR;
    /// as `medsgm demo`), 0.005 for unitary k-space (MRI); 200 FISTA iterations; the
    /// `InverseConfig` defaults for the score methods (N = 500, M = 1, r = 0.16, λ = ρ = 1,
    /// K = 1, t₀ = 1); latent-dc ζ = 2.
    pub fn defaults(task: Problem) -> Self {
        Self {
            tv_weight: if task == Problem::Mri { 0.005 } else { 0.05 },
            fista_iterations: 200,
            steps: 500,
            corrector_steps: 1,
            snr: medsgm_recon::DEFAULT_SNR,
            lambda: 1.0,
            rho: 1.0,
            seed: 0,
            samples: 1,
            latent_step_size: default_latent_step_size(),
            t_start: default_t_start(),
            eta: default_eta(),
            gamma: default_gamma(),
            cg_iterations: default_cg_iterations(),
            zeta: default_zeta(),
        }
    }

    /// Checks every field's range: λ_TV finite and ≥ 0, FISTA iterations in 1..=100 000,
    /// latent-dc ζ finite and ≥ 0, and the sampler fields against
    /// [`medsgm_recon::InverseConfig::out_of_range`] (one definition of those ranges).
    pub fn validate(&self) -> Result<()> {
        let out = |key: &str, range: &str, value: f64| {
            Err(anyhow!("{key} must be in {range}, got {value}"))
        };
        if !(self.tv_weight.is_finite() && self.tv_weight >= 0.0) {
            return out("tv_weight", "[0, ∞)", self.tv_weight.into());
        }
        if !(1..=100_000).contains(&self.fista_iterations) {
            return out(
                "fista_iterations",
                "1..=100000",
                self.fista_iterations as f64,
            );
        }
        if !(self.latent_step_size.is_finite() && self.latent_step_size >= 0.0) {
            return out("latent_step_size", "[0, ∞)", self.latent_step_size);
        }
        // the ranges do not depend on the score method
        let sampler = self.inverse_config(Method::Score(InverseMethod::PcProjection))?;
        match sampler.out_of_range() {
            None => Ok(()),
            Some(r) => out(r.field, r.range, r.value),
        }
    }

    /// The solver configuration of the score method `method` with these parameters.
    pub fn inverse_config(&self, method: Method) -> Result<InverseConfig> {
        let Method::Score(inverse) = method else {
            bail!("{method} is not a score-based method");
        };
        Ok(InverseConfig {
            method: inverse,
            steps: self.steps,
            corrector_steps: self.corrector_steps,
            snr: self.snr,
            lambda: self.lambda,
            rho: self.rho,
            seed: self.seed,
            samples: self.samples.max(1),
            t_start: self.t_start,
            eta: self.eta,
            gamma: self.gamma,
            cg_iterations: self.cg_iterations,
            zeta: self.zeta,
        })
    }

    /// `self` with the keys of `table` overriding its fields.
    pub fn overlay(&self, table: &toml::Table) -> Result<Self> {
        let mut base = toml::Table::try_from(self).context("serialising method parameters")?;
        for (k, v) in table {
            base.insert(k.clone(), v.clone());
        }
        toml::Value::Table(base)
            .try_into()
            .map_err(|e| anyhow!("invalid method parameters: {e}"))
    }
}

/// A task config: per-method parameter overrides, as `[method-name]` tables (keys of
/// [`MethodParams`]), plus a free-form `[tuning.method-name]` record of how they were found.
#[derive(Debug, Clone, Default)]
pub struct TaskConfig {
    /// The whole TOML document.
    pub doc: toml::Table,
    /// The file it was read from (named in every error about its tables).
    pub path: Option<PathBuf>,
}

impl TaskConfig {
    /// Reads a task config (a missing file is an empty config when `allow_missing`).
    pub fn load(path: &Path, allow_missing: bool) -> Result<Self> {
        if allow_missing && !path.exists() {
            return Ok(Self::default());
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read task config {}", path.display()))?;
        let doc = text
            .parse::<toml::Table>()
            .with_context(|| format!("{} is not valid TOML", path.display()))?;
        Ok(Self {
            doc,
            path: Some(path.to_path_buf()),
        })
    }

    /// The parameters of `method`: task defaults overridden by the config's table, each
    /// range-checked ([`MethodParams::validate`]).
    pub fn params(&self, task: Problem, method: Method) -> Result<MethodParams> {
        self.params_over(MethodParams::defaults(task), method)
    }

    /// The parameters of `method`: `defaults` overridden by the config's table, each
    /// range-checked ([`MethodParams::validate`]).
    pub fn params_over(&self, defaults: MethodParams, method: Method) -> Result<MethodParams> {
        let file = self
            .path
            .as_ref()
            .map_or_else(String::new, |p| format!("{}: ", p.display()));
        match self.doc.get(method.name()) {
            None => Ok(defaults),
            Some(toml::Value::Table(t)) => defaults
                .overlay(t)
                .and_then(|p| p.validate().map(|()| p))
                .with_context(|| format!("{file}in the [{method}] table")),
            Some(_) => Err(anyhow!("{file}[{method}] must be a table")),
        }
    }

    /// The `[tuning.method]` record written by `medsgm tune`, if any.
    pub fn record(&self, method: Method) -> Option<&toml::Value> {
        self.doc.get("tuning").and_then(|t| t.get(method.name()))
    }

    /// Sets the `[method]` overrides and the `[tuning.method]` record.
    pub fn set(&mut self, method: Method, overrides: toml::Table, record: toml::Table) {
        self.doc
            .insert(method.name().into(), toml::Value::Table(overrides));
        let tuning = self
            .doc
            .entry("tuning")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(t) = tuning {
            t.insert(method.name().into(), toml::Value::Table(record));
        }
    }

    /// The document as TOML text.
    pub fn to_toml(&self) -> Result<String> {
        Ok(format!(
            "# Task configuration written by `medsgm tune`: per-method parameter overrides.\n{}",
            toml::to_string_pretty(&self.doc)?
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use medsgm_recon::InverseMethod::{Dds, DiffPir, Dps, PcProjection};

    #[test]
    fn overlay_overrides_fields() {
        let mut cfg = TaskConfig::default();
        let mut t = toml::Table::new();
        t.insert("snr".into(), toml::Value::Float(0.3));
        cfg.set(Method::Score(PcProjection), t, toml::Table::new());
        let text = cfg.to_toml().unwrap();
        let back = TaskConfig {
            doc: text.parse().unwrap(),
            path: None,
        };
        let p = back
            .params(Problem::Ct, Method::Score(PcProjection))
            .unwrap();
        assert_eq!(p.snr, 0.3);
        assert_eq!(p.lambda, 1.0);
        let mut bad = toml::Table::new();
        bad.insert("sn".into(), toml::Value::Float(0.3));
        assert!(MethodParams::defaults(Problem::Ct).overlay(&bad).is_err());
    }

    #[test]
    fn params_out_of_range_are_refused_naming_the_table_and_key() {
        for problem in [Problem::Ct, Problem::Mri, Problem::Mar] {
            MethodParams::defaults(problem).validate().unwrap();
        }
        for (method, key, value) in [
            (Method::Score(Dds), "t_start", toml::Value::Float(-1.0)),
            (Method::Score(Dds), "t_start", toml::Value::Float(1.5)),
            (Method::Score(Dps), "zeta", toml::Value::Float(f64::NAN)),
            (Method::Score(DiffPir), "eta", toml::Value::Float(2.0)),
            (
                Method::Score(PcProjection),
                "steps",
                toml::Value::Integer(0),
            ),
            (
                Method::Score(PcProjection),
                "samples",
                toml::Value::Integer(5000),
            ),
            (Method::FistaTv, "tv_weight", toml::Value::Float(-0.1)),
            (Method::FistaTv, "fista_iterations", toml::Value::Integer(0)),
            (
                Method::LatentDc,
                "latent_step_size",
                toml::Value::Float(f64::INFINITY),
            ),
        ] {
            let mut cfg = TaskConfig::default();
            let mut t = toml::Table::new();
            t.insert(key.into(), value);
            cfg.set(method, t, toml::Table::new());
            let err = format!("{:#}", cfg.params(Problem::Ct, method).unwrap_err());
            assert!(
                err.contains(&format!("[{method}]")) && err.contains(key),
                "{method} {key}: {err}"
            );
        }
    }
}
