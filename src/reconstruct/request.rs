//! What a `recon` run asks for ([`ReconRequest`]: the method and every parameter as given,
//! `None` where not given), checked against the method and problem and resolved once into the
//! [`ReconJob`] every reconstruction of the run takes ([`ReconRequest::resolve`]: flags, then the
//! `--config` task config, then defaults), and the run itself: one measurement to an image file,
//! or a batch into a folder ([`ReconRequest::run`]). Messages name the flags, so every front end
//! reports the same errors (invalid input, exit code 2).

use crate::error::{invalid, InputContext};
use crate::eval::method::{MethodParams, TaskConfig};
use crate::eval::uncertainty::object_mean_sd;
use crate::io::guard::refuse_overwriting_inputs;
use crate::io::image_io::{BitDepth, Window};
use crate::io::measurement::measurement_files;
use crate::io::memory::Budget;
use crate::io::target::{check_png_options, ImageTarget};
use crate::model::LoadedModel;
use crate::reconstruct::batch::plan::work_list;
use crate::reconstruct::batch::worklist::{InputKind, Shard};
use crate::reconstruct::batch::{self, BatchJob, VolumeSettings};
use crate::reconstruct::fista::FistaTv;
use crate::reconstruct::score::Units;
use crate::reconstruct::tv_weight::{ImageFrame, TvWeight};
use crate::reconstruct::{load_checked, recon_bytes, reconstruct, std_path, ReconJob, ReconSize};
use crate::scorevae::codec::latent_condition;
use crate::task::ct_scan::{Beam, FanSpec};
use crate::task::{Method, Problem};
use anyhow::{anyhow, Context, Result};
use medsgm_operators::fbp::Filter;
use medsgm_recon::{InverseConfig, InverseMethod};
use std::path::{Path, PathBuf};

/// Default number of simulated views of a CT volume slice.
pub const VOLUME_VIEWS: usize = 23;
/// Default simulated MRI acceleration of a volume slice.
pub const VOLUME_ACCELERATION: f64 = 4.0;
/// Default slices per score-model batch.
pub const VOLUME_BATCH: u16 = 8;

/// The score methods' sampler parameters as given; each one not given comes from the method's
/// table of the task config, else from [`MethodParams::defaults`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SamplerOverrides {
    /// Time steps N.
    pub steps: Option<usize>,
    /// Corrector steps M per time step.
    pub corrector_steps: Option<usize>,
    /// Corrector signal-to-noise ratio r.
    pub snr: Option<f64>,
    /// λ of the data-consistency step.
    pub lambda: Option<f64>,
    /// Likelihood weight ρ.
    pub rho: Option<f64>,
    /// Posterior samples K.
    pub samples: Option<usize>,
    /// Start time t₀.
    pub t_start: Option<f64>,
    /// Decomposed samplers: stochasticity η.
    pub eta: Option<f64>,
    /// Decomposed samplers: data weight γ.
    pub gamma: Option<f64>,
    /// Decomposed samplers: CG iterations.
    pub cg_iterations: Option<usize>,
    /// DPS: guidance step size ζ.
    pub zeta: Option<f64>,
}

impl SamplerOverrides {
    /// Each parameter's flag and whether it was given.
    fn given(&self) -> [(&'static str, bool); 11] {
        [
            ("--steps", self.steps.is_some()),
            ("--corrector-steps", self.corrector_steps.is_some()),
            ("--snr", self.snr.is_some()),
            ("--lambda", self.lambda.is_some()),
            ("--rho", self.rho.is_some()),
            ("--samples", self.samples.is_some()),
            ("--t-start", self.t_start.is_some()),
            ("--eta", self.eta.is_some()),
            ("--gamma", self.gamma.is_some()),
            ("--cg-iterations", self.cg_iterations.is_some()),
            ("--zeta", self.zeta.is_some()),
        ]
    }

    /// The solver configuration of `method` seeded with `seed`: these parameters over `base`.
    pub fn over(&self, base: &MethodParams, method: InverseMethod, seed: u64) -> InverseConfig {
        InverseConfig {
            method,
            steps: self.steps.unwrap_or(base.steps),
            corrector_steps: self.corrector_steps.unwrap_or(base.corrector_steps),
            snr: self.snr.unwrap_or(base.snr),
            lambda: self.lambda.unwrap_or(base.lambda),
            rho: self.rho.unwrap_or(base.rho),
            seed,
            samples: self.samples.unwrap_or(base.samples),
            t_start: self.t_start.unwrap_or(base.t_start),
            eta: self.eta.unwrap_or(base.eta),
            gamma: self.gamma.unwrap_or(base.gamma),
            cg_iterations: self.cg_iterations.unwrap_or(base.cg_iterations),
            zeta: self.zeta.unwrap_or(base.zeta),
        }
    }
}

/// How the slices of volume inputs (NIfTI, DICOM) are measured and batched, as given.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeRequest {
    /// CT: simulated equispaced views [default: [`VOLUME_VIEWS`]].
    pub views: Option<usize>,
    /// CT: the simulated beam.
    pub beam: Beam,
    /// CT: the fan-beam settings (their fan-only values are errors with a parallel beam).
    pub fan: FanSpec,
    /// MRI: simulated acceleration [default: [`VOLUME_ACCELERATION`]].
    pub acceleration: Option<f64>,
    /// Slices per score-model batch [default: [`VOLUME_BATCH`]].
    pub batch_size: Option<u16>,
    /// The slice axis.
    pub axis: Option<usize>,
}

impl VolumeRequest {
    /// Each setting's flag and whether it was given.
    fn given(&self) -> [(&'static str, bool); 5] {
        [
            ("--views", self.views.is_some()),
            ("--acceleration", self.acceleration.is_some()),
            ("--batch", self.batch_size.is_some()),
            ("--axis", self.axis.is_some()),
            ("--geometry fan", self.beam == Beam::Fan),
        ]
    }

    /// Checks the settings against the problem and their ranges (before any work): --views
    /// for CT in 1..=100000, --acceleration for MRI in [1, 1000], --axis 0, 1 or 2, the fan
    /// beam's settings.
    pub fn check(&self, problem: Problem) -> Result<()> {
        if let Some(v) = self.views {
            if problem != Problem::Ct {
                return Err(invalid(format!(
                    "--views applies to ct volumes, not {problem}"
                )));
            }
            if !(1..=100_000).contains(&v) {
                return Err(invalid(format!("--views must be in 1..=100000, got {v}")));
            }
        }
        if let Some(r) = self.acceleration {
            if problem != Problem::Mri {
                return Err(invalid(format!(
                    "--acceleration applies to mri volumes, not {problem}"
                )));
            }
            if !(r.is_finite() && (1.0..=1000.0).contains(&r)) {
                return Err(invalid(format!(
                    "--acceleration must be in [1, 1000], got {r}"
                )));
            }
        }
        if let Some(axis) = self.axis.filter(|&x| x > 2) {
            return Err(invalid(format!("--axis must be 0, 1 or 2, got {axis}")));
        }
        self.fan.for_beam(self.beam)?;
        if self.beam == Beam::Fan && problem != Problem::Ct {
            return Err(invalid(format!(
                "--geometry fan applies to ct volumes, not {problem}"
            )));
        }
        Ok(())
    }

    /// The settings with their defaults.
    fn settings(&self) -> Result<VolumeSettings> {
        Ok(VolumeSettings {
            views: self.views.unwrap_or(VOLUME_VIEWS),
            fan: self.fan.for_beam(self.beam)?,
            acceleration: self.acceleration.unwrap_or(VOLUME_ACCELERATION),
            batch_size: self.batch_size.unwrap_or(VOLUME_BATCH),
            axis: self.axis,
        })
    }
}

/// The batch settings of a run into an output folder, as given.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRequest {
    /// The output folder (batch mode).
    pub output: Option<PathBuf>,
    /// Only this shard of the sorted work list.
    pub shard: Option<Shard>,
    /// Skip inputs whose output exists.
    pub resume: bool,
    /// Folder of ground-truth images named like the inputs.
    pub reference: Option<PathBuf>,
    /// De-identify the outputs.
    pub anonymize: bool,
    /// Where to write the pseudonym → input map.
    pub anonymize_map: Option<PathBuf>,
    /// How volume slices are measured and batched.
    pub volume: VolumeRequest,
}

/// One `recon` run as asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconRequest {
    /// The inverse problem.
    pub problem: Problem,
    /// The measurement file, or the batch input (folder, manifest, DICOM, NIfTI).
    pub input: PathBuf,
    /// The method.
    pub method: Method,
    /// The FBP filter [default: Ram-Lak].
    pub filter: Option<Filter>,
    /// FISTA-TV iterations.
    pub iterations: Option<usize>,
    /// FISTA-TV weight λ.
    pub tv_weight: Option<f32>,
    /// FISTA-TV: project onto x ≥ 0.
    pub nonnegative: bool,
    /// The task config with per-method parameters.
    pub config: Option<PathBuf>,
    /// The score model.
    pub model: Option<PathBuf>,
    /// The score methods' sampler parameters.
    pub sampler: SamplerOverrides,
    /// Seed of every random draw.
    pub seed: u64,
    /// Intensity units of the measured image.
    pub units: Option<Units>,
    /// ScoreVAE encoder conditioning the prior on `code`.
    pub encoder: Option<PathBuf>,
    /// The latent code to condition on.
    pub code: Option<PathBuf>,
    /// The output image of a single measurement.
    pub out: Option<PathBuf>,
    /// PNG output window.
    pub window: Option<Window>,
    /// PNG output bit depth.
    pub depth: Option<BitDepth>,
    /// Batch mode.
    pub batch: BatchRequest,
    /// The budget every input's estimated peak memory is checked against.
    pub memory: Budget,
}

/// What a run wrote: the line to print and, for a batch with failed inputs, the error the run
/// ends with once the line is printed.
#[derive(Debug)]
pub struct ReconReport {
    /// The report of what was written.
    pub line: String,
    /// The batch's failure (exit code 1 for a runtime failure, else 2).
    pub failure: Option<anyhow::Error>,
}

/// Fails naming the first flag given, with `message` after it.
fn refuse_first(flags: &[(&'static str, bool)], message: impl Fn(&str) -> String) -> Result<()> {
    match flags.iter().find(|(_, given)| *given) {
        Some((flag, _)) => Err(invalid(message(flag))),
        None => Ok(()),
    }
}

impl ReconRequest {
    /// The score-method flags given (errors with a classical method; `--config` is shared with
    /// FISTA-TV and `--seed` has a default).
    fn score_flags(&self) -> Vec<(&'static str, bool)> {
        let mut flags = vec![("--model", self.model.is_some())];
        flags.extend(self.sampler.given());
        flags.extend([
            ("--units", self.units.is_some()),
            ("--encoder", self.encoder.is_some()),
            ("--code", self.code.is_some()),
        ]);
        flags
    }

    /// Checks every flag against the mode (single file or batch), the method and the problem,
    /// and their ranges (invalid input).
    fn check(&self) -> Result<()> {
        let b = &self.batch;
        if self.out.is_some() {
            let batch_only = [
                ("--shard", b.shard.is_some()),
                ("--resume", b.resume),
                ("--reference", b.reference.is_some()),
                ("--anonymize", b.anonymize),
                ("--anonymize-map", b.anonymize_map.is_some()),
                ("--axis", b.volume.axis.is_some()),
            ];
            refuse_first(&batch_only, |flag| {
                format!("{flag} applies to batch mode only (--output FOLDER), not to --out FILE")
            })?;
        }
        match &self.out {
            Some(out) => check_png_options(out, self.window.is_some(), self.depth.is_some())?,
            None => refuse_first(
                &[
                    ("--window", self.window.is_some()),
                    ("--bit-depth", self.depth.is_some()),
                ],
                |flag| {
                    format!(
                        "{flag} applies to a PNG --out FILE only; batch mode (--output FOLDER) \
                         writes the float values themselves (NPY, NIfTI, DICOM)"
                    )
                },
            )?,
        }
        if self.method.is_latent() {
            return Err(invalid(format!(
                "{} (the LSGM latent prior) runs in `medsgm bench recon --latent-model` and `medsgm tune`, not in recon",
                self.method
            )));
        }
        if !self.method.applies_to(self.problem) {
            let choices: Vec<&str> = Method::ALL
                .iter()
                .filter(|m| m.applies_to(self.problem) && !m.is_latent())
                .map(|m| m.name())
                .collect();
            return Err(invalid(format!(
                "method {} does not apply to {}; choose one of {}",
                self.method,
                self.problem,
                choices.join(", ")
            )));
        }
        let method = self.method;
        if method != Method::FistaTv {
            let fista_only = [
                ("--iterations", self.iterations.is_some()),
                ("--tv-weight", self.tv_weight.is_some()),
                ("--nonnegative", self.nonnegative),
            ];
            refuse_first(&fista_only, |flag| {
                format!("{flag} does not apply to {method} (a fista-tv option)")
            })?;
        }
        if self.filter.is_some() && self.problem != Problem::Mar && method != Method::Fbp {
            return Err(invalid(format!(
                "--filter does not apply to {method} (an fbp option; mar: every method)"
            )));
        }
        if method.inverse_method().is_none() {
            refuse_first(&self.score_flags(), |flag| {
                format!("{flag} does not apply to {method} (a score-method option)")
            })?;
        }
        if self.out.is_some() {
            let volume_only: Vec<_> = b
                .volume
                .given()
                .into_iter()
                .filter(|f| f.0 != "--axis")
                .collect();
            refuse_first(&volume_only, |flag| {
                format!("{flag} sets the simulated measurement of volumes in batch mode (--output FOLDER); a measurement file has its own")
            })?;
        }
        b.volume.check(self.problem)?;
        if let Some(path) = &self.config {
            // a broken config file is an error whatever the method
            TaskConfig::load(path, false).map_err(invalid)?;
        }
        if method == Method::FistaTv {
            self.fista()?;
        }
        if let Some(m) = method.inverse_method() {
            if self.model.is_none() {
                return Err(invalid(
                    "score-based methods need --model <checkpoint.safetensors>",
                ));
            }
            if let Some(r) = self.score_config(m)?.out_of_range() {
                return Err(invalid(format!(
                    "{} (from the flag or the --config table)",
                    r.flag_message()
                )));
            }
        }
        Ok(())
    }

    /// FISTA-TV's settings: the flags, then the `[fista-tv]` table of `--config`, then recon's
    /// defaults 100 iterations and λ 0.005 (invalid input when the config cannot be read or
    /// holds bad values). A weight from a config that records the images it was tuned on
    /// (`[tuning.fista-tv.images]`) is converted to each measurement's units
    /// ([`TvWeight::Tuned`]); `--tv-weight` is in the measurement's units.
    fn fista(&self) -> Result<FistaTv> {
        let defaults = MethodParams {
            fista_iterations: 100,
            tv_weight: 0.005,
            ..MethodParams::defaults(self.problem)
        };
        let (p, frame) = match &self.config {
            Some(path) => {
                let config = TaskConfig::load(path, false).invalid_input()?;
                let p = config
                    .params_over(defaults, Method::FistaTv)
                    .invalid_input()?;
                let frame = ImageFrame::of_record(config.record(Method::FistaTv))
                    .map_err(|e| invalid(format!("{}: {e:#}", path.display())))?;
                (p, frame)
            }
            None => (defaults, None),
        };
        let iterations = self.iterations.unwrap_or(p.fista_iterations);
        let weight = self.tv_weight.unwrap_or(p.tv_weight);
        let source = |flag_given: bool, flag: &str| match (&self.config, flag_given) {
            (Some(path), false) => format!("{flag} (from {})", path.display()),
            _ => flag.to_owned(),
        };
        if !(1..=100_000).contains(&iterations) {
            return Err(invalid(format!(
                "{} must be in 1..=100000, got {iterations}",
                source(self.iterations.is_some(), "--iterations")
            )));
        }
        if !(weight.is_finite() && (0.0..=1e6).contains(&weight)) {
            return Err(invalid(format!(
                "{} must be in [0, 1e6], got {weight}",
                source(self.tv_weight.is_some(), "--tv-weight")
            )));
        }
        let weight = match frame {
            Some(frame) if self.tv_weight.is_none() => TvWeight::Tuned { weight, frame },
            _ => TvWeight::Data(weight),
        };
        Ok(FistaTv {
            iterations,
            weight,
            nonnegative: self.nonnegative,
        })
    }

    /// The solver configuration of the score method `method`: flags, then the `--config`
    /// table, then the defaults (invalid input when the config cannot be read or has bad
    /// entries).
    fn score_config(&self, method: InverseMethod) -> Result<InverseConfig> {
        let base = match &self.config {
            Some(path) => TaskConfig::load(path, false)
                .and_then(|c| c.params(self.problem, Method::Score(method)))
                .invalid_input()?,
            None => MethodParams::defaults(self.problem),
        };
        Ok(self.sampler.over(&base, method, self.seed))
    }

    /// The run's settings, resolved once per command, not per input: every flag checked
    /// against the method and problem, the score method's parameters (flags, then `--config`,
    /// then defaults) and FISTA-TV's.
    pub fn resolve(&self) -> Result<ReconJob> {
        self.check()?;
        Ok(ReconJob {
            problem: self.problem,
            method: self.method,
            filter: self.filter.unwrap_or(Filter::RamLak),
            fista: match self.method {
                Method::FistaTv => Some(self.fista()?),
                _ => None,
            },
            score: self
                .method
                .inverse_method()
                .map(|m| self.score_config(m))
                .transpose()?,
            units: self.units,
            memory: self.memory,
        })
    }

    /// The model of a score-based method (None for classical methods), conditioned on `--code`
    /// when an `--encoder` is given (invalid input when missing, corrupt or mismatched).
    pub fn load_model(&self) -> Result<Option<LoadedModel>> {
        if self.method.inverse_method().is_none() {
            return Ok(None);
        }
        let Some(p) = &self.model else {
            return Err(invalid(
                "score-based methods need --model <checkpoint.safetensors>",
            ));
        };
        let mut model = LoadedModel::load(p)?;
        if let (Some(encoder), Some(code)) = (&self.encoder, &self.code) {
            model.condition = Some(
                latent_condition(encoder, code, &model, p)
                    .map_err(|e| invalid(format!("{e:#}")))?,
            );
        }
        Ok(Some(model))
    }

    /// Runs the request: one measurement to `out`, or a batch into the output folder.
    pub fn run(&self) -> Result<ReconReport> {
        let job = self.resolve()?;
        if self.code.is_some() && self.batch.output.is_some() {
            return Err(invalid(
                "--code conditions one slice on one latent code: give --out FILE, not --output",
            ));
        }
        match (&self.out, &self.batch.output) {
            (_, Some(dir)) => self.run_batch(&job, dir),
            (Some(out), None) => Ok(ReconReport {
                line: self.run_file(&job, out)?,
                failure: None,
            }),
            (None, None) => Err(invalid("give --out FILE or --output FOLDER")),
        }
    }

    /// Reconstructs the one measurement into `out` (and the std map with K > 1 samples).
    fn run_file(&self, job: &ReconJob, out: &Path) -> Result<String> {
        let target = ImageTarget {
            out: out.to_path_buf(),
            window: self.window,
            depth: self.depth,
        };
        target.validate()?;
        let m = load_checked(job.problem, &self.input)?;
        let mut inputs = measurement_files(&self.input, &m.sidecar);
        inputs.extend(self.encoder.iter().chain(&self.code).cloned());
        refuse_overwriting_inputs(&[out.to_path_buf(), std_path(out)], &inputs).map_err(invalid)?;
        let model = self.load_model()?;
        job.memory.check(
            &self.input.display().to_string(),
            recon_bytes(job, ReconSize::of(&m.sidecar.geometry), 1, model.as_ref()),
        )?;
        let recon = reconstruct(job, &m, model.as_ref())?;
        let bad = recon.image.iter().filter(|v| !v.is_finite()).count();
        if bad > 0 {
            anyhow::bail!(
                "{} diverged on {}: {bad} of {} pixels are not finite (check the measurement's \
                 scale and the method's parameters); {} was not written",
                job.method.name(),
                self.input.display(),
                recon.image.len(),
                out.display()
            );
        }
        target.write(&recon.image.view(), recon.window)?;
        let (rows, cols) = recon.image.dim();
        let mut report = format!("wrote {} ({rows}x{cols}, {:?})", out.display(), job.method);
        if let Some(std) = &recon.std {
            let path = std_path(out);
            let max = std.iter().copied().fold(0.0f32, f32::max);
            let std_target = ImageTarget {
                out: path.clone(),
                window: None,
                depth: self.depth,
            };
            let window = Window {
                low: 0.0,
                high: if max > 0.0 { max } else { 1.0 },
            };
            std_target
                .write(&std.view(), window)
                .with_context(|| format!("writing the uncertainty map {}", path.display()))?;
            report += &format!(
                " and the std map of {} samples {} (mean posterior SD over the object {:.4})",
                job.samples(),
                path.display(),
                object_mean_sd(&recon.image, std)
            );
        }
        if let Some((nfe, seconds)) = recon.score {
            report += &format!("; NFE {nfe} per sample, {seconds:.2} s");
        }
        Ok(report)
    }

    /// Reconstructs every input of the batch into `out_dir` ([`batch::run`]).
    fn run_batch(&self, job: &ReconJob, out_dir: &Path) -> Result<ReconReport> {
        let b = &self.batch;
        let batch = BatchJob {
            input: self.input.clone(),
            out_dir: out_dir.to_path_buf(),
            shard: b.shard,
            resume: b.resume,
            reference: b.reference.clone(),
            anonymize: b.anonymize,
            anonymize_map: b.anonymize_map.clone(),
            volume: b.volume.settings()?,
        };
        let items = work_list(&batch)?;
        if let Some(r) = &b.reference {
            if !r.is_dir() {
                return Err(invalid(format!(
                    "the reference folder {} does not exist",
                    r.display()
                )));
            }
        }
        let any_volume = items
            .iter()
            .any(|i| matches!(i.kind, InputKind::Nifti | InputKind::Dicom));
        if !any_volume {
            refuse_first(&b.volume.given(), |flag| {
                format!("{flag} sets how volumes (NIfTI, DICOM) are measured and sliced; the inputs of {} are measurement files, which carry their own", self.input.display())
            })?;
        }
        let (summary, summary_path) = batch::run(job, &batch, &items, || self.load_model())?;
        let line = format!(
            "{} inputs: {} ok, {} failed, {} skipped; summary {}",
            items.len(),
            summary.ok,
            summary.failed,
            summary.skipped,
            summary_path.display()
        );
        let codes: Vec<u8> = summary.files.iter().filter_map(|f| f.error_code).collect();
        let failure = match codes.iter().max() {
            None => None,
            Some(_) if codes.contains(&1) => Some(anyhow!("{} input(s) failed", summary.failed)),
            Some(_) => Some(invalid(format!("{} input(s) were invalid", summary.failed))),
        };
        Ok(ReconReport { line, failure })
    }
}
