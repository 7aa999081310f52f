//! `medsgm bench recon`: the reconstruction benchmark (thesis Tables 8.1–8.3,
//! Fig. 8.5) on held-out images: per-image CSV/JSON, a markdown summary, quality-vs-measurement
//! curves, an optional quality-vs-NFE sweep and an image panel of the first test image.

use crate::cli::simulate::Beam;
use crate::cli::{invalid, InputContext};
use crate::eval::cases::{Case, CtBeam, ScoreSolver};
use crate::eval::latent::{LatentSolver, SolverSet};
use crate::eval::method::TaskConfig;
use crate::eval::recon_bench::{run_bench, MethodRun, Record};
use crate::eval::report::{image_panel, quality_curves, write_records, write_summary};
use crate::eval::testset::{config_slices, mri_slices, phantoms, EvalSplit, TestImage};
use crate::task::{Method, Problem};
use anyhow::{Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};

/// Arguments of `medsgm bench recon` (the output directory is `medsgm bench --out`).
#[derive(Debug, Clone, Args)]
pub struct ReconBenchArgs {
    /// The inverse problem.
    #[arg(long, value_enum)]
    pub task: Problem,
    /// CT: numbers of measured views (of 180; fan beam: of 360).
    #[arg(long, value_delimiter = ',', default_value = "10,20,23,45")]
    pub views: Vec<usize>,
    /// CT: beam geometry and dose.
    #[command(flatten)]
    pub beam: CtBeamArgs,
    /// MRI: acceleration factors (equispaced columns).
    #[arg(long, value_delimiter = ',', default_value = "4,8,24")]
    pub accel: Vec<f64>,
    /// Methods, comma separated (fbp, fista-tv, zero-filled, li, pc-projection, dds, diffpir, dps,
    /// ald-projection, score-sde, langevin; with the LSGM prior: latent-dc = latent-projection,
    /// latent-dds, latent-diffpir).
    #[arg(long, value_delimiter = ',', required = true)]
    pub methods: Vec<Method>,
    /// Score-model checkpoint (needed by the score methods; sets the image size).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// LSGM checkpoint (`lsgm.safetensors` from `medsgm train` with an LSGM config), needed by
    /// latent-dc.
    #[arg(long)]
    pub latent_model: Option<PathBuf>,
    /// Reverse-diffusion steps of latent-dc (2 NFE each; default: --steps or the task
    /// config). Set it so that latent-dc's s/slice matches pc-projection's for a comparison at
    /// equal wall time.
    #[arg(long)]
    pub latent_steps: Option<usize>,
    /// MRI: held-out slices (a [slices, H, W] NPY volume, a folder of images in [0, 1], or a
    /// nifti-slices training config such as configs/mri_mni_64.toml: its held-out block).
    /// CT: a nifti-slices training config of a real CT volume (configs/ct_head.toml): its
    /// held-out slab at the native resolution instead of phantoms; or a DICOM/NIfTI/NPY file
    /// or folder of independent slices (other patients), resampled to --model's pixel spacing,
    /// HU through its window, padded square with air.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// With independent DICOM/NIfTI slices in --data: keep each slice at its own matrix and
    /// pixel spacing (e.g. a 512² slice at 0.43 mm) instead of resampling it to the prior's
    /// spacing — the prior then sees anatomy at another scale than in training (measures which
    /// grid is better).
    #[arg(long)]
    pub native_grid: bool,
    /// Number of test images.
    #[arg(long, default_value_t = 50)]
    pub n: usize,
    /// Which images of a prepared set (phantoms, a training config's slabs): the held-out test
    /// images, or the validation images `tune` uses — for choosing between priors or training
    /// modes without touching the test set.
    #[arg(long, value_enum, default_value = "test")]
    pub split: EvalSplit,
    /// CT/MAR image size when no model is given.
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Predictor steps N of the score methods (overrides the task config).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Posterior samples K per image of the score methods (their mean is the reconstruction;
    /// the reported NFE is per image, K times the per-sample NFE). Overrides the task config.
    #[arg(long)]
    pub samples: Option<usize>,
    /// Sampler seed (score methods) and MAR noise seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Problem config with per-method parameters (e.g. configs/tuned_ct.toml from `medsgm tune`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Also measure quality against NFE at these budgets per image (first setting, score
    /// methods; with --samples K each sample gets budget / K).
    #[arg(long, value_delimiter = ',')]
    pub nfe_sweep: Vec<usize>,
    /// Images per score-model batch.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
}

/// The test images of a task.
pub fn task_images(
    task: Problem,
    size: usize,
    split: EvalSplit,
    n: usize,
    data: Option<&Path>,
) -> Result<Vec<TestImage>> {
    match (task, data) {
        (Problem::Ct, Some(config)) if !is_toml(config) => {
            bail_invalid("CT images from a folder or file need --model (its HU window and spacing)")
        }
        (Problem::Ct, Some(config)) => Ok(config_slices(config, n, split)
            .invalid_input()?
            .into_iter()
            .map(|(id, truth)| TestImage {
                id,
                truth,
                metal: None,
            })
            .collect()),
        (Problem::Ct | Problem::Mar, _) => {
            phantoms(size, split.first_seed(), n, task == Problem::Mar)
        }
        (Problem::Mri, _) => {
            let path = data.ok_or_else(|| invalid("--task mri needs --data (held-out slices)"))?;
            mri_slices(path, n, split).invalid_input()
        }
    }
}

fn is_toml(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "toml")
}

fn bail_invalid<T>(msg: &str) -> Result<T> {
    Err(invalid(msg.to_owned()))
}

/// Whether `--data` names independent real images rather than a prepared test set: for CT
/// anything but a training config, for MRI a DICOM file or a folder holding DICOM files.
fn is_independent(task: Problem, data: &Path) -> bool {
    let dicom = |p: &Path| p.extension().is_some_and(|e| e == "dcm");
    match task {
        Problem::Ct => !is_toml(data),
        Problem::Mri => {
            dicom(data)
                || std::fs::read_dir(data)
                    .map(|d| d.flatten().any(|e| dicom(&e.path())))
                    .unwrap_or(false)
        }
        Problem::Mar => false,
    }
}

/// Images the prior never saw — a DICOM/NIfTI/NPY file or a folder of them
/// ([`crate::eval::testset::real_images`]: resampled to the prior's pixel spacing unless
/// `native_grid`, CT in HU
/// through its window, MRI normalised by its 99.5th percentile; unreadable files skipped with a
/// note) — CT slices padded to a square with air (0). Slices of different sizes form separate
/// cases ([`task_cases`]).
pub fn independent_images(
    task: Problem,
    path: &Path,
    model: &Path,
    n: usize,
    native_grid: bool,
) -> Result<Vec<TestImage>> {
    let ck =
        crate::checkpoint::Checkpoint::load(model, &candle_core::Device::Cpu).invalid_input()?;
    let spacing = ck.meta.pixel_spacing_mm.filter(|_| !native_grid);
    let images =
        crate::eval::testset::real_images(path, &ck.meta.normalization, spacing).invalid_input()?;
    Ok(images
        .into_iter()
        .take(n)
        .map(|(id, im)| {
            let (h, w) = im.dim();
            if task != Problem::Ct {
                return TestImage {
                    id,
                    truth: im.mapv(|v| v.clamp(0.0, 1.0)),
                    metal: None,
                };
            }
            let s = h.max(w);
            let mut sq = ndarray::Array2::<f32>::zeros((s, s));
            let (r0, c0) = ((s - h) / 2, (s - w) / 2);
            sq.slice_mut(ndarray::s![r0..r0 + h, c0..c0 + w])
                .assign(&im);
            TestImage {
                id,
                truth: sq,
                metal: None,
            }
        })
        .collect())
}

/// CT beam options of `bench recon` and `tune`.
#[derive(Debug, Clone, Args)]
pub struct CtBeamArgs {
    /// CT: parallel beam (views of 180 over [0°, 180°), noise-free) or fan beam (views of a
    /// 360-view full scan, R = 2N, D = 4N, equiangular detector, quarter offset).
    #[arg(long = "geometry", value_enum, default_value = "parallel")]
    pub beam: Beam,
    /// CT, fan beam: pre-log Poisson noise with this many incident photons per bin (low dose:
    /// e.g. 1e4; a line through N pixels of value 1 attenuates by e⁻⁴).
    #[arg(long)]
    pub dose: Option<f64>,
}

impl CtBeamArgs {
    /// The benchmark's beam, checked.
    pub fn beam(&self) -> Result<CtBeam> {
        match (self.beam, self.dose) {
            (Beam::Parallel, Some(_)) => Err(invalid("--dose needs --geometry fan")),
            (_, Some(i0)) if !(i0.is_finite() && i0 > 0.0) => {
                Err(invalid("--dose must be a positive photon count"))
            }
            (Beam::Parallel, None) => Ok(CtBeam::Parallel),
            (Beam::Fan, dose) => Ok(CtBeam::Fan { dose }),
        }
    }
}

/// The benchmark cases: one per views/acceleration value (CT, MRI) or per image (MAR); CT
/// images of several sizes (independent slices) give one case per size and view count.
pub fn task_cases(
    task: Problem,
    images: &[TestImage],
    views: &[usize],
    beam: CtBeam,
    accel: &[f64],
    seed: u64,
) -> Result<Vec<Case>> {
    let all: Vec<usize> = (0..images.len()).collect();
    match task {
        Problem::Ct => views
            .iter()
            .flat_map(|&v| {
                size_groups(images)
                    .into_iter()
                    .map(move |g| Case::ct(images, g, v, beam, seed))
            })
            .collect(),
        Problem::Mri => accel
            .iter()
            .flat_map(|&r| {
                size_groups(images)
                    .into_iter()
                    .map(move |g| Case::mri(images, g, r))
            })
            .collect(),
        Problem::Mar => all
            .iter()
            .map(|&i| Case::mar(images, i, seed.wrapping_add(i as u64)))
            .collect(),
    }
}

/// The indices of the images grouped by shape, in order of first appearance.
fn size_groups(images: &[TestImage]) -> Vec<Vec<usize>> {
    let mut groups: Vec<((usize, usize), Vec<usize>)> = Vec::new();
    for (i, im) in images.iter().enumerate() {
        let shape = im.truth.dim();
        match groups.iter_mut().find(|g| g.0 == shape) {
            Some(g) => g.1.push(i),
            None => groups.push((shape, vec![i])),
        }
    }
    groups.into_iter().map(|g| g.1).collect()
}

/// Loads the score solver when one is needed, and the image size to evaluate at.
pub fn solver_and_size(
    model: Option<&Path>,
    needed: bool,
    size: usize,
    batch: usize,
) -> Result<(Option<Box<dyn ScoreSolver>>, usize)> {
    match model {
        Some(path) => {
            let solver = crate::eval::score::ModelSolver::load(path, batch)
                .with_context(|| format!("loading the score model {}", path.display()))
                .invalid_input()?;
            let size = solver.image_size();
            Ok((Some(Box::new(solver)), size))
        }
        None if needed => Err(invalid("the score methods need --model")),
        None => Ok((None, size)),
    }
}

/// The pixel-space (`--model`) and latent (`--latent-model`) solvers that `methods` need, and
/// the image size (the models', else `size`).
pub fn solvers(
    methods: &[Method],
    model: Option<&Path>,
    latent_model: Option<&Path>,
    size: usize,
    batch: usize,
) -> Result<(Option<SolverSet>, usize)> {
    let latent_needed = methods.iter().any(|m| m.is_latent());
    let pixel_needed = methods.iter().any(|m| m.is_score() && !m.is_latent());
    let (pixel, size) = solver_and_size(model, pixel_needed, size, batch)?;
    let latent: Option<Box<dyn ScoreSolver>> =
        match latent_model {
            Some(path) => Some(Box::new(
                LatentSolver::load(path, batch)
                    .with_context(|| format!("loading the LSGM {}", path.display()))
                    .invalid_input()?,
            )),
            None if latent_needed => return Err(invalid(
                "the latent methods (latent-dc, latent-dds, latent-diffpir) need --latent-model",
            )),
            None => None,
        };
    let size = match (&pixel, &latent) {
        (None, Some(l)) => l.image_size(),
        _ => size,
    };
    if pixel.is_none() && latent.is_none() {
        return Ok((None, size));
    }
    Ok((Some(SolverSet::new(pixel, latent).invalid_input()?), size))
}

fn validate(a: &ReconBenchArgs) -> Result<()> {
    if !(1..=10_000).contains(&a.n) {
        return Err(invalid("--n must be in 1..=10000"));
    }
    if !(8..=1024).contains(&a.size) || a.batch == 0 {
        return Err(invalid("--size must be in 8..=1024 and --batch positive"));
    }
    if let Some(m) = a.methods.iter().find(|m| !m.applies_to(a.task)) {
        return Err(invalid(format!("{m} does not apply to --task {}", a.task)));
    }
    let full_views = match a.beam.beam()? {
        CtBeam::Parallel => crate::eval::cases::FULL_VIEWS,
        CtBeam::Fan { .. } => crate::eval::cases::FAN_FULL_VIEWS,
    };
    if a.task == Problem::Ct && a.views.iter().any(|&v| !(1..=full_views).contains(&v)) {
        return Err(invalid(format!("--views must be in 1..={full_views}")));
    }
    if a.task == Problem::Mri && a.accel.iter().any(|&r| !(r.is_finite() && r >= 1.0)) {
        return Err(invalid("--accel must be ≥ 1"));
    }
    if a.steps == Some(0)
        || a.latent_steps == Some(0)
        || a.samples == Some(0)
        || a.nfe_sweep.contains(&0)
    {
        return Err(invalid(
            "--steps, --latent-steps, --samples and --nfe-sweep budgets must be positive",
        ));
    }
    Ok(())
}

/// Runs `medsgm bench recon` into `out`.
pub fn run(a: &ReconBenchArgs, out: &Path) -> Result<()> {
    validate(a)?;
    if out.exists() && !out.is_dir() {
        return Err(invalid(format!(
            "--out {} exists and is not a directory",
            out.display()
        )));
    }
    let (solver, size) = solvers(
        &a.methods,
        a.model.as_deref(),
        a.latent_model.as_deref(),
        a.size,
        a.batch,
    )?;
    let independent = matches!((a.data.as_deref(), a.model.as_deref()), (Some(d), Some(_)) if is_independent(a.task, d));
    if independent && a.split != EvalSplit::Test {
        return Err(invalid(
            "--split applies to prepared sets (phantoms, a training config), not independent slices",
        ));
    }
    if a.native_grid && !independent {
        return Err(invalid(
            "--native-grid applies to independent DICOM/NIfTI slices given as --data with a --model",
        ));
    }
    let images = match (a.task, a.data.as_deref(), a.model.as_deref()) {
        (task, Some(d), Some(m)) if is_independent(task, d) => {
            independent_images(task, d, m, a.n, a.native_grid)?
        }
        _ => task_images(a.task, size, a.split, a.n, a.data.as_deref())?,
    };
    let cases = task_cases(a.task, &images, &a.views, a.beam.beam()?, &a.accel, a.seed)?;
    let config = match &a.config {
        Some(p) => TaskConfig::load(p, false).invalid_input()?,
        None => TaskConfig::default(),
    };
    let runs = a
        .methods
        .iter()
        .map(|&method| {
            let mut params = config
                .params(a.task, method)
                .with_context(|| {
                    let path = a.config.as_deref().unwrap_or(Path::new("the task config"));
                    format!("{}", path.display())
                })
                .invalid_input()?;
            params.steps = a.steps.unwrap_or(params.steps);
            params.samples = a.samples.unwrap_or(params.samples);
            if method == Method::LatentDc {
                params.steps = a.latent_steps.unwrap_or(params.steps);
            }
            params.seed = a.seed;
            Ok(MethodRun { method, params })
        })
        .collect::<Result<Vec<_>>>()?;
    let solver = solver.as_ref().map(|s| s as &dyn ScoreSolver);
    // Everything is loaded and checked: only now create the output folder, and remove it again
    // if the benchmark fails before writing anything into it.
    let created = CreatedDir::create(out)?;
    let mut log = |s: &str| eprintln!("{s}");
    let result = run_bench(a.task, &images, &cases, &runs, solver, &mut log);
    let result = created.keep_if_ok(result)?;
    write_records(out, "per_image", &result.records)?;
    let (h, w) = images[0].truth.dim();
    let title = format!(
        "medsgm bench recon --task {} ({} images, {h}x{w})",
        a.task,
        images.len()
    );
    let rows = write_summary(out, "summary", &title, &result.records)?;
    print!("{}", crate::eval::recon_bench::markdown_table(&rows));
    if cases
        .iter()
        .map(|c| c.x.to_bits())
        .collect::<std::collections::HashSet<_>>()
        .len()
        > 1
    {
        let x_label = if a.task == Problem::Ct {
            "views"
        } else {
            "acceleration"
        };
        quality_curves(&out.join("curves.png"), &rows, x_label, false)?;
    }
    let first = &images[cases[0].images[0]];
    image_panel(
        &out.join("panel.png"),
        &first.truth,
        &format!("image {}, {}", first.id, cases[0].label),
        &result.first,
        &result
            .records
            .iter()
            .filter(|r| r.setting == cases[0].label && r.image == first.id)
            .cloned()
            .collect::<Vec<Record>>(),
    )?;
    if !a.nfe_sweep.is_empty() {
        nfe_sweep(a, &images, &cases, &runs, solver, out)?;
    }
    println!("wrote {}", out.display());
    Ok(())
}

/// An output folder this run may have created: [`CreatedDir::keep_if_ok`] removes it again
/// (when it is still empty) if the work before the first write fails, so a failed run leaves
/// nothing behind.
pub struct CreatedDir<'a> {
    path: &'a Path,
    created: bool,
}

impl<'a> CreatedDir<'a> {
    /// Creates `path` with its missing parents (only `path` itself is ever removed again).
    pub fn create(path: &'a Path) -> Result<Self> {
        let created = !path.exists();
        std::fs::create_dir_all(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(CreatedDir { path, created })
    }

    /// Passes `result` through; on an error removes the folder if this run created it and it
    /// is still empty.
    pub fn keep_if_ok<T>(&self, result: Result<T>) -> Result<T> {
        if result.is_err() && self.created {
            let empty = std::fs::read_dir(self.path).is_ok_and(|mut d| d.next().is_none());
            if empty {
                let _ = std::fs::remove_dir(self.path);
            }
        }
        result
    }
}

/// Quality against NFE on the first case (CT, MRI) or every case (MAR).
fn nfe_sweep(
    a: &ReconBenchArgs,
    images: &[TestImage],
    cases: &[Case],
    runs: &[MethodRun],
    solver: Option<&dyn ScoreSolver>,
    out: &Path,
) -> Result<()> {
    let sweep_cases = if a.task == Problem::Mar {
        cases
    } else {
        &cases[..1]
    };
    let mut records = Vec::new();
    for run in runs.iter().filter(|r| r.method.is_score()) {
        for &nfe in &a.nfe_sweep {
            let mut params = run.params.clone();
            // The budget is per image: K posterior samples share it.
            let per_sample = nfe / params.samples.max(1);
            params.steps = crate::eval::score::steps_for_nfe(run.method, &params, per_sample);
            let swept = MethodRun {
                method: run.method,
                params,
            };
            let mut log = |s: &str| eprintln!("NFE {nfe}: {s}");
            let r = run_bench(a.task, images, sweep_cases, &[swept], solver, &mut log)?;
            records.extend(r.records.into_iter().map(|mut rec| {
                rec.setting = format!("{} @ {} NFE", rec.setting, rec.nfe);
                rec.x = rec.nfe as f64;
                rec
            }));
        }
    }
    if records.is_empty() {
        return Err(invalid("--nfe-sweep needs at least one score method"));
    }
    write_records(out, "nfe_sweep_per_image", &records)?;
    let rows = write_summary(out, "nfe_sweep", "quality vs NFE", &records)?;
    print!("{}", crate::eval::recon_bench::markdown_table(&rows));
    quality_curves(&out.join("nfe.png"), &rows, "NFE", true)
}
