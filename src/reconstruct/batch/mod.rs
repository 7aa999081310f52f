//! Batch reconstruction of volumes and folders (`medsgm recon … --input
//! <file|folder|manifest.csv> --output <folder>`).
//!
//! Inputs (see [`worklist`]): measurement files are reconstructed as by the single-file
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
//!
//! Files: [`worklist`] and [`plan`] (inputs and outputs), [`lock`] (the output folder),
//! [`volume`] (slice-by-slice reconstruction), [`reference`](mod@reference) (quality),
//! [`summary`].

pub mod lock;
pub mod plan;
pub mod reference;
pub mod summary;
pub mod volume;
pub mod worklist;

use crate::error::{exit_code, invalid, InputContext};
use crate::eval::typicality::Typicality;
use crate::eval::uncertainty::{object_mean_sd, SliceTrust};
use crate::io::dicom::padding::AIR_HU;
use crate::io::dicom::{
    declared_input_pixels, read_dicom, read_dicom_series, write_derived_series,
    DerivedSeriesOptions,
};
use crate::io::memory::{bytes_of, F32};
use crate::io::nifti_io::{read_nifti, read_nifti_shape, write_nifti, NiftiMeta};
use crate::io::privacy;
use crate::io::{write_image, ImageWriteOptions};
use crate::model::LoadedModel;
use crate::progress::progress;
use crate::reconstruct::{load_checked, recon_bytes, reconstruct, std_path, ReconJob, ReconSize};
use crate::task::ct_scan::FanSpec;
use crate::task::Problem;
use crate::train::volume::in_plane_spacing;
use anyhow::{Context, Result};
use indicatif::MultiProgress;
use lock::{lock_output, remove_leftovers, replace_series};
use medsgm_recon::InverseMethod;
use ndarray::Axis;
use plan::{output_path, plan_outputs, write_pseudonym_map};
use reference::{checked_reference, quality, with_padding, Quality};
use std::path::PathBuf;
use std::time::Instant;
use summary::{previous_ok_inputs, write_summary, FileReport, Status, Summary};
use volume::{check_volume_memory, reconstruct_volume, Volume, HU_UNITS, IMAGE_UNITS};
use worklist::{InputKind, Shard, WorkItem};

/// The batch settings of a run into an output folder, resolved once from the command line.
#[derive(Debug, Clone)]
pub struct BatchJob {
    /// The input: a measurement file, folder, manifest `.csv`, DICOM file or series folder, or
    /// NIfTI volume ([`worklist`]).
    pub input: PathBuf,
    /// The output folder (created).
    pub out_dir: PathBuf,
    /// Only this shard of the sorted work list.
    pub shard: Option<Shard>,
    /// Skip inputs whose output exists and that an earlier summary records as done.
    pub resume: bool,
    /// Folder of ground-truth images named like the inputs (PSNR and SSIM in the summary).
    pub reference: Option<PathBuf>,
    /// De-identify: DICOM outputs, pseudonymous output names, no identifiers in reports.
    pub anonymize: bool,
    /// Where to write the pseudonym → input map (with `anonymize`).
    pub anonymize_map: Option<PathBuf>,
    /// How the slices of volumes are measured and batched.
    pub volume: VolumeSettings,
}

impl BatchJob {
    /// The slice axis of a volume input: the given axis, else 2 for NIfTI and 0 for DICOM.
    pub fn axis_of(&self, item: &WorkItem) -> usize {
        self.volume.axis.unwrap_or(match item.kind {
            InputKind::Nifti => 2,
            _ => 0,
        })
    }
}

/// How the slices of volume inputs are measured (simulated) and batched.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeSettings {
    /// CT: equispaced views over [0°, 180°) (fan beam: over the scan).
    pub views: usize,
    /// CT: the fan beam, when not parallel beam.
    pub fan: Option<FanSpec>,
    /// MRI: acceleration (equispaced columns, [`crate::task::mri_scan::VOLUME_CENTER_FRACTION`]
    /// fully sampled centre).
    pub acceleration: f64,
    /// Slices sampled together by the score-based methods.
    pub batch_size: u16,
    /// The slice axis (default: 2 for NIfTI, 0 for DICOM).
    pub axis: Option<usize>,
}

/// What [`process`] made of one input.
struct Processed {
    outputs: Vec<PathBuf>,
    slices: usize,
    metrics: Option<Quality>,
    posterior_sd: Option<Vec<f64>>,
    typicality: Option<Vec<Typicality>>,
}

/// DICOM series settings naming the method.
fn series_options(job: &ReconJob, batch: &BatchJob) -> DerivedSeriesOptions {
    let method = job.method.name();
    let settings = method_settings(job, &batch.volume);
    DerivedSeriesOptions {
        description: format!("medsgm {method} {settings}"),
        derivation: format!(
            "medsgm {} recon {} --method {method} {settings} (from a simulated measurement)",
            env!("CARGO_PKG_VERSION"),
            job.problem.name()
        ),
        anonymize: batch.anonymize,
        ..DerivedSeriesOptions::default()
    }
}

/// The method's settings in a few words, e.g. "N=50 eta=0.7 gamma=1000 cg=5 t0=0.5 K=2 seed=0".
fn method_settings(job: &ReconJob, volume: &VolumeSettings) -> String {
    match &job.score {
        Some(c) if c.method.decomposed() => format!(
            "N={} eta={:.3} gamma={:.4} cg={} t0={:.3} K={} seed={}",
            c.steps, c.eta, c.gamma, c.cg_iterations, c.t_start, c.samples, c.seed
        ),
        Some(c) if c.method == InverseMethod::Dps => format!(
            "N={} zeta={:.4} t0={:.3} K={} seed={}",
            c.steps, c.zeta, c.t_start, c.samples, c.seed
        ),
        Some(c) => format!(
            "N={} M={} snr={} lambda={} t0={} K={} seed={}",
            c.steps, c.corrector_steps, c.snr, c.lambda, c.t_start, c.samples, c.seed
        ),
        None => match job.problem {
            Problem::Mri => format!("R={}", volume.acceleration),
            _ => format!("views={}", volume.views),
        },
    }
}

/// Reconstructs one input.
fn process(
    job: &ReconJob,
    batch: &BatchJob,
    item: &WorkItem,
    model: Option<&LoadedModel>,
    bar: &indicatif::ProgressBar,
) -> Result<Processed> {
    let out = output_path(&batch.out_dir, item);
    let axis = batch.axis_of(item);
    // the reference is read (and checked) before any output is written
    let reference = checked_reference(batch, item)?;
    let mut pad_mask = None;
    let mut posterior_sd = None;
    let typicality;
    let (recon, outputs) = match item.kind {
        InputKind::Unknown => {
            return Err(invalid(format!(
                "{}: not a measurement, NIfTI or DICOM input",
                item.path.display()
            )))
        }
        InputKind::Measurement => {
            bar.set_length(1);
            let m = load_checked(job.problem, &item.path)?;
            let size = ReconSize::of(&m.sidecar.geometry);
            job.memory
                .check(&item.label(), recon_bytes(job, size, 1, model))?;
            let r = reconstruct(job, &m, model)?;
            let opts = ImageWriteOptions::default();
            let mut outputs = vec![];
            typicality = r.typicality.map(|t| vec![t]);
            if let Some(std) = &r.std {
                posterior_sd = Some(vec![object_mean_sd(&r.image, std)]);
                let p = std_path(&out);
                write_image(&p, &std.view(), &opts)?;
                outputs.push(p);
            }
            // The main output last: its presence marks the input as complete.
            write_image(&out, &r.image.view(), &opts)?;
            outputs.push(out);
            bar.inc(1);
            (r.image.insert_axis(Axis(0)), outputs)
        }
        InputKind::Nifti => {
            // the decoder's raw and converted copies and the volume, before the read
            let shape = read_nifti_shape(&item.path).invalid_input()?;
            let voxels = shape.iter().map(|&d| d as u64).product::<u64>();
            job.memory
                .check(&item.label(), bytes_of(&[(voxels, 8 + 3 * F32)]))?;
            let vol = read_nifti(&item.path).invalid_input()?;
            let spacing = in_plane_spacing(vol.meta.pixdim, axis);
            let input = Volume {
                data: &vol.data,
                units: IMAGE_UNITS,
                spacing_mm: spacing,
                axis,
            };
            check_volume_memory(job, &batch.volume, &item.label(), &input, model)?;
            let v = reconstruct_volume(job, &batch.volume, &input, model, bar)?;
            let x = v.image;
            let trust = SliceTrust::per_slice(
                x.len_of(Axis(axis)),
                v.posterior_sd.as_deref(),
                v.typicality.as_deref(),
            );
            // NIfTI descrip (80 bytes): the method and the volume's trust summary
            let meta = NiftiMeta {
                description: Some(format!(
                    "{} {}",
                    job.method.name(),
                    SliceTrust::summary(&trust)
                )),
                ..vol.meta
            };
            write_nifti(&out, &x.view().into_dyn(), &meta)?;
            posterior_sd = v.posterior_sd;
            typicality = v.typicality;
            (x, vec![out])
        }
        InputKind::Dicom => {
            if axis != 0 {
                return Err(invalid(
                    "DICOM inputs are reconstructed along their slice axis 0 (drop --axis)",
                ));
            }
            // the per-file decoded frames, their concatenation and the raw pixel data, from
            // the headers before any pixel data is decoded (a series of many large or
            // compressed files must not allocate first)
            let uid = item.series.as_ref().map(|(uid, _, _)| uid.as_str());
            let pixels = declared_input_pixels(&item.path, uid).invalid_input()?;
            job.memory
                .check(&item.label(), bytes_of(&[(pixels, 2 * F32 + 2)]))?;
            let vol = match uid {
                Some(uid) => read_dicom_series(&item.path, Some(uid)),
                None => read_dicom(&item.path),
            }
            .invalid_input()?;
            // CT values are HU after the modality LUT; padded pixels (outside the field of
            // view) are air for the forward model and padding again in the output.
            let padding = vol.padding().filter(|_| vol.is_hu());
            pad_mask = padding.map(|p| p.mask(&vol.data.view()));
            let units = if vol.is_hu() { HU_UNITS } else { IMAGE_UNITS };
            let input = with_padding(&vol.data, pad_mask.as_ref(), AIR_HU);
            let spacing = vol.in_plane_spacing_mm();
            let input = Volume {
                data: &input,
                units,
                spacing_mm: spacing,
                axis: 0,
            };
            check_volume_memory(job, &batch.volume, &item.label(), &input, model)?;
            let v = reconstruct_volume(job, &batch.volume, &input, model, bar)?;
            let x = v.image;
            posterior_sd = v.posterior_sd;
            typicality = v.typicality;
            let x = match padding {
                Some(p) => with_padding(&x, pad_mask.as_ref(), p.hi),
                None => x,
            };
            // the trust figures in the series: a summary in SeriesDescription, each slice's
            // in its ImageComments
            let trust = SliceTrust::per_slice(
                x.len_of(Axis(0)),
                posterior_sd.as_deref(),
                typicality.as_deref(),
            );
            let samples = job.samples();
            let mut options = series_options(job, batch);
            let summary = SliceTrust::summary(&trust);
            if !summary.is_empty() {
                options.description = format!(
                    "medsgm {} {summary} {}",
                    job.method.name(),
                    method_settings(job, &batch.volume)
                );
            }
            options.slice_comments = trust.iter().map(|t| t.note(samples)).collect();
            replace_series(&out, |dir| {
                write_derived_series(dir, &x.view(), Some(&vol), &options).map(|_| ())
            })?;
            (x, vec![out])
        }
    };
    let slices = recon.len_of(Axis(axis.min(recon.ndim() - 1)));
    let metrics = match reference {
        Some((reference, ref_axis)) => {
            match quality(&recon, &reference, ref_axis, pad_mask.as_ref()) {
                Ok(q) => q,
                Err(e) => {
                    // a failed input leaves no outputs (its record lists none)
                    for o in &outputs {
                        let _ = std::fs::remove_file(o).or_else(|_| std::fs::remove_dir_all(o));
                    }
                    return Err(e);
                }
            }
        }
        None => None,
    };
    Ok(Processed {
        outputs,
        slices,
        metrics,
        posterior_sd,
        typicality,
    })
}

/// Runs a batch reconstruction of `items` (the [`plan::work_list`] of `batch`) into
/// `batch.out_dir`, loading the model with `load_model` once the output folder is locked;
/// the summary and its path. Per-input failures are recorded in the summary, not returned.
pub fn run(
    job: &ReconJob,
    batch: &BatchJob,
    items: &[WorkItem],
    load_model: impl FnOnce() -> Result<Option<LoadedModel>>,
) -> Result<(Summary, PathBuf)> {
    let out_dir = batch.out_dir.as_path();
    plan_outputs(&batch.input, items, out_dir).map_err(invalid)?;
    if let Some(map) = &batch.anonymize_map {
        write_pseudonym_map(map, items)?;
    }
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create the output folder {}", out_dir.display()))?;
    let _lock = lock_output(out_dir)?;
    remove_leftovers(out_dir);
    let summary_path = out_dir.join(match batch.shard {
        Some(s) => format!("summary_shard_{}_of_{}.json", s.index, s.count),
        None => "summary.json".to_owned(),
    });
    // --resume skips an input only when its output exists and the previous summary records it
    // as ok (a failed or interrupted input is redone).
    let previously_ok = if batch.resume {
        previous_ok_inputs(out_dir)
    } else {
        Default::default()
    };
    let model = load_model()?;
    let mut summary = Summary {
        medsgm_version: env!("CARGO_PKG_VERSION").to_owned(),
        problem: job.problem,
        method: job.method,
        shard: batch.shard.map(|s| s.to_string()),
        ok: 0,
        failed: 0,
        skipped: 0,
        files: Vec::with_capacity(items.len()),
    };
    // The summary exists from the start (an empty shard, or a run that dies on its first
    // input, still leaves one that matches the files).
    write_summary(&summary_path, &summary)?;
    let bars = MultiProgress::new();
    let overall = bars.add(progress(items.len() as u64, "inputs"));
    let slices = bars.add(progress(0, "slices"));
    for item in items {
        let start = Instant::now();
        let out = output_path(out_dir, item);
        let mut report = FileReport {
            input: item.label(),
            kind: item.kind,
            status: Status::Skipped,
            outputs: vec![],
            error: None,
            error_code: None,
            slices: 0,
            seconds: 0.0,
            metrics: None,
            posterior_sd: None,
            typicality: None,
            object_diameter_mm: None,
            ood_warning: false,
        };
        if batch.resume && out.exists() && previously_ok.contains(&item.label()) {
            report.outputs.push(out.display().to_string());
            summary.skipped += 1;
        } else {
            match process(job, batch, item, model.as_ref(), &slices) {
                Ok(p) => {
                    report.status = Status::Ok;
                    report.outputs = p.outputs.iter().map(|p| p.display().to_string()).collect();
                    report.slices = p.slices;
                    report.metrics = p.metrics;
                    report.posterior_sd = p.posterior_sd;
                    if let Some(t) = p.typicality {
                        report.ood_warning = t.iter().any(Typicality::flagged);
                        report.typicality = Some(t.iter().map(|t| t.residual).collect());
                        report.object_diameter_mm = t.iter().map(|t| t.diameter_mm).collect();
                    }
                    summary.ok += 1;
                }
                Err(e) => {
                    let message = format!("{e:#}");
                    report.status = Status::Failed;
                    report.error = Some(if item.pseudonymous {
                        privacy::scrub(&message, &item.path, &item.name)
                    } else {
                        message
                    });
                    report.error_code = Some(exit_code(&e));
                    summary.failed += 1;
                }
            }
        }
        report.seconds = start.elapsed().as_secs_f64();
        let line = format!(
            "{}: {:?} ({:.2} s){}",
            item.name,
            report.status,
            report.seconds,
            report
                .error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
        if overall.is_hidden() {
            eprintln!("{line}");
        } else {
            overall.println(line);
        }
        summary.files.push(report);
        write_summary(&summary_path, &summary)?;
        overall.inc(1);
    }
    overall.finish_and_clear();
    slices.finish_and_clear();
    Ok((summary, summary_path))
}
