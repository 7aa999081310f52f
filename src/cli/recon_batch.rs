//! `medsgm recon … --input <file|folder|manifest.csv> --output <folder>`: the flags of batch
//! reconstruction of volumes and folders ([`BatchArgs`], checked and resolved into a
//! [`BatchJob`]) and the run's report; the batch itself is [`crate::reconstruct::batch`].
//!
//! Inputs (see [`crate::reconstruct::batch::worklist`]): measurement files are reconstructed as by the single-file
//! command; NIfTI volumes and DICOM files/series are measured slice by slice along `--axis`
//! with the problem's forward model (CT: `--views` equispaced parallel-beam views of the image
//! in its own units, e.g. HU, or fan-beam views with `--geometry fan` — one
//! [`crate::task::ct_scan::CtScan`], as `simulate ct` uses; MRI: equispaced Cartesian columns at `--acceleration`, 8 %
//! centre) and reconstructed from that simulated measurement, `--batch` slices at a time
//! through the score sampler ([`crate::reconstruct::reconstruct_batch`]).
//!
//! Outputs in `--output`, each written to a temporary name and renamed, so an output that
//! exists is complete (this is what `--resume` checks): `<name>.npy` for measurements
//! (`<name>_std.npy` with K > 1 samples), `<name>.nii.gz` for NIfTI inputs (the input's header:
//! qform/sform, pixdim, units), `<name>/` — a new derived DICOM series (new UIDs,
//! SeriesDescription naming the method, `--anonymize` de-identifies) — for DICOM inputs.
//! `summary.json` (`summary_shard_K_of_N.json` with `--shard`) is rewritten atomically after
//! every input: per input its status (`ok`, `failed`, `skipped`), outputs, error, seconds and,
//! with `--reference`, PSNR/SSIM against the reference of the same name.
//!
//! Exit code: 0 when every input succeeded or was skipped; otherwise the run still processes
//! every input and exits 1 when some failure was a runtime failure, else 2 (invalid input).

use crate::cli::invalid;
use crate::cli::recon::{self, ReconArgs};
use crate::cli::simulate::{Beam, FanArgs};
use crate::reconstruct::batch::plan::work_list;
use crate::reconstruct::batch::worklist::{InputKind, Shard};
use crate::reconstruct::batch::{self, BatchJob, VolumeSettings};
use crate::reconstruct::ReconJob;
use crate::task::Problem;
use anyhow::{anyhow, Result};
use clap::Args;
use std::path::{Path, PathBuf};

/// Options of batch processing.
#[derive(Debug, Clone, Args)]
pub struct BatchArgs {
    /// Batch mode: output folder (created) for every input of --input.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Process only shard K of N (0-based) of the sorted work list: inputs i with i mod N = K.
    #[arg(long, requires = "output")]
    pub shard: Option<Shard>,
    /// Skip inputs whose output already exists (outputs are renamed into place when complete).
    #[arg(long, requires = "output")]
    pub resume: bool,
    /// Folder of ground-truth images named like the inputs (`<name>.npy`, `.nii`, `.nii.gz`
    /// or a DICOM series folder `<name>/`): PSNR and SSIM go to the summary.
    #[arg(long, requires = "output")]
    pub reference: Option<PathBuf>,
    /// De-identify: DICOM outputs after the PS3.15 basic profile (one new StudyInstanceUID per
    /// source study), pseudonymous output names `case_NNNN` (by position in the sorted input
    /// list), and no input names, UIDs or quoted header values in the summary or progress lines.
    #[arg(long, requires = "output")]
    pub anonymize: bool,
    /// With --anonymize: also write the pseudonym → input mapping (CSV) to this file. It
    /// identifies the inputs: keep it apart from the shared outputs.
    #[arg(long, requires = "anonymize")]
    pub anonymize_map: Option<PathBuf>,
    /// Volumes: the slice axis (default: 2 for NIfTI, 0 for DICOM; DICOM output needs 0).
    #[arg(long, requires = "output")]
    pub axis: Option<usize>,
    /// Volumes, CT: number of simulated equispaced views over [0°, 180°) (fan beam: over the
    /// scan) [default: 23].
    #[arg(long)]
    pub views: Option<usize>,
    /// Volumes, CT: the simulated beam (`--geometry fan` and its options, as for
    /// `simulate ct`).
    #[command(flatten)]
    pub fan: FanArgs,
    /// Volumes, MRI: simulated acceleration (equispaced columns, 8 % fully sampled centre)
    /// [default: 4].
    #[arg(long)]
    pub acceleration: Option<f64>,
    /// Volumes: slices sampled together in one batch by the score-based methods (B·K images
    /// per score evaluation). The random draws depend on it: reproduce a run with the same
    /// --seed and --batch [default: 8].
    #[arg(long = "batch", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub batch_size: Option<u16>,
}

/// Default number of simulated views of a CT volume slice.
const VOLUME_VIEWS: usize = 23;
/// Default simulated MRI acceleration of a volume slice.
const VOLUME_ACCELERATION: f64 = 4.0;
/// Default slices per score-model batch.
const VOLUME_BATCH: u16 = 8;

impl BatchArgs {
    /// Simulated views of a CT volume slice.
    pub fn views(&self) -> usize {
        self.views.unwrap_or(VOLUME_VIEWS)
    }

    /// Simulated acceleration of an MRI volume slice.
    pub fn acceleration(&self) -> f64 {
        self.acceleration.unwrap_or(VOLUME_ACCELERATION)
    }

    /// Slices per score-model batch.
    pub fn batch_size(&self) -> u16 {
        self.batch_size.unwrap_or(VOLUME_BATCH)
    }

    /// Checks the volume flags against the problem and their ranges (before any work):
    /// --views for CT in 1..=100000, --acceleration for MRI in [1, 1000], --axis 0, 1 or 2.
    pub fn check_volume_flags(&self, problem: Problem) -> Result<()> {
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
        self.fan.validate()?;
        if self.fan.beam == Beam::Fan && problem != Problem::Ct {
            return Err(invalid(format!(
                "--geometry fan applies to ct volumes, not {problem}"
            )));
        }
        Ok(())
    }

    /// The batch settings of a run from `input` into `out_dir`.
    pub fn job(&self, input: &Path, out_dir: &Path) -> BatchJob {
        BatchJob {
            input: input.to_path_buf(),
            out_dir: out_dir.to_path_buf(),
            shard: self.shard,
            resume: self.resume,
            reference: self.reference.clone(),
            anonymize: self.anonymize,
            anonymize_map: self.anonymize_map.clone(),
            volume: VolumeSettings {
                views: self.views(),
                fan: (self.fan.beam == Beam::Fan).then(|| self.fan.spec()),
                acceleration: self.acceleration(),
                batch_size: self.batch_size(),
                axis: self.axis,
            },
        }
    }
}

/// Runs a batch reconstruction into `out_dir`.
pub fn run(a: &ReconArgs, job: &ReconJob, out_dir: &Path) -> Result<()> {
    let batch = a.batch.job(&a.input, out_dir);
    let items = work_list(&batch)?;
    if let Some(r) = &a.batch.reference {
        if !r.is_dir() {
            return Err(invalid(format!(
                "the reference folder {} does not exist",
                r.display()
            )));
        }
    }
    let volume_flags = [
        ("--views", a.batch.views.is_some()),
        ("--acceleration", a.batch.acceleration.is_some()),
        ("--batch", a.batch.batch_size.is_some()),
        ("--axis", a.batch.axis.is_some()),
        ("--geometry fan", a.batch.fan.beam == Beam::Fan),
    ];
    let any_volume = items
        .iter()
        .any(|i| matches!(i.kind, InputKind::Nifti | InputKind::Dicom));
    if let Some((flag, _)) = volume_flags.iter().find(|(_, given)| *given && !any_volume) {
        return Err(invalid(format!(
            "{flag} sets how volumes (NIfTI, DICOM) are measured and sliced; the inputs of {} are measurement files, which carry their own",
            a.input.display()
        )));
    }
    let (summary, summary_path) = batch::run(job, &batch, &items, || recon::load_model(a))?;
    println!(
        "{} inputs: {} ok, {} failed, {} skipped; summary {}",
        items.len(),
        summary.ok,
        summary.failed,
        summary.skipped,
        summary_path.display()
    );
    let codes: Vec<u8> = summary.files.iter().filter_map(|f| f.error_code).collect();
    match codes.iter().max() {
        None => Ok(()),
        Some(_) if codes.contains(&1) => Err(anyhow!("{} input(s) failed", summary.failed)),
        Some(_) => Err(invalid(format!("{} input(s) were invalid", summary.failed))),
    }
}
