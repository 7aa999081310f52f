//! `medsgm recon {ct,mri,mar}`: reconstruct an image from a measurement file, with a classical
//! method (FBP, FISTA-TV, zero-filled, LI) or a score-based one (see [`score_recon`]).
//!
//! Outputs are in the measurement's data units: CT in the units of the measured image, MAR in
//! HU (metal pasted back from the uncorrected FBP for display), MRI in the k-space's image
//! scale. Score-based methods with `--samples K > 1` also write the per-pixel posterior
//! standard deviation to `<out>_std` (same format).

use crate::cli::args::{check_png_options, progress, Depth, ImageOutput, MemoryArgs};
use crate::cli::model::LoadedModel;
use crate::cli::recon_batch::{self, BatchArgs};
use crate::cli::score_recon::{
    self, ct_intensity_map, model_hu_window, mri_intensity_map, IntensityMap, ScoreArgs, ScoreRecon,
};
use crate::cli::{invalid, InputContext};
use crate::eval::method::TaskConfig;
use crate::io::guard::refuse_overwriting_inputs;
use crate::io::image_io::Window;
use crate::io::measurement::{
    load_measurement, measurement_files, Geometry, Mask, Measurement, MeasurementData,
};
use crate::io::memory::{bytes_of, F32};
use crate::task::prior_grid::at_pixel_spacing;
use crate::task::{Method, Problem};
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use medsgm_operators::fbp::Filter;
use medsgm_operators::hu::mu_to_hu;
use medsgm_operators::metal::{segment_metal, METAL_THRESHOLD_HU};
use medsgm_operators::resample::resample_area;
use medsgm_operators::solvers::{
    fista_tv,
    li::{li, paste_metal},
    zero_filled, ComplexPart, FistaTvParams,
};
use medsgm_operators::{CtProjector, Fft2, LinearOperator, RealInput, Subsampled, Transform};
use medsgm_recon::{InverseConfig, InverseMethod};
use ndarray::{Array1, Array2, ArrayViewD};
use num_complex::Complex32;
use std::path::{Path, PathBuf};

impl FilterChoice {
    /// The operators crate's filter.
    pub fn filter(self) -> Filter {
        match self {
            FilterChoice::RamLak => Filter::RamLak,
            FilterChoice::SheppLogan => Filter::SheppLogan,
            FilterChoice::Cosine => Filter::Cosine,
            FilterChoice::Hamming => Filter::Hamming,
            FilterChoice::Hann => Filter::Hann,
        }
    }
}

/// FBP filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FilterChoice {
    /// Ramp.
    RamLak,
    /// Ramp × sinc.
    SheppLogan,
    /// Ramp × cosine.
    Cosine,
    /// Ramp × Hamming window.
    Hamming,
    /// Ramp × Hann window.
    Hann,
}

/// Arguments of `medsgm recon`.
#[derive(Debug, Clone, Args)]
pub struct ReconArgs {
    /// The inverse problem.
    #[arg(value_enum)]
    pub problem: Problem,
    /// Measurement file (.npy with its .json sidecar); with --output also a folder, a manifest
    /// .csv, a DICOM file or series folder, or a NIfTI volume (.nii/.nii.gz), reconstructed
    /// slice by slice from a simulated measurement (see --views, --acceleration).
    #[arg(long, short)]
    pub input: PathBuf,
    /// Reconstruction method.
    #[arg(long, value_enum)]
    pub method: Method,
    /// FBP filter (fbp; mar: also the uncorrected image) [default: ram-lak].
    #[arg(long, value_enum)]
    pub filter: Option<FilterChoice>,
    /// FISTA-TV iterations [default: the `[fista-tv]` table's `fista_iterations` of --config,
    /// else 100].
    #[arg(long)]
    pub iterations: Option<usize>,
    /// FISTA-TV regularisation weight λ in ½‖Ax − y‖² + λ TV(x) [default: the `[fista-tv]`
    /// table's `tv_weight` of --config, else 0.005].
    #[arg(long)]
    pub tv_weight: Option<f32>,
    /// FISTA-TV: project onto x ≥ 0 after each step.
    #[arg(long)]
    pub nonnegative: bool,
    /// Score-based methods.
    #[command(flatten)]
    pub score: ScoreArgs,
    /// Output image (single measurement): .png, .npy, .nii or .nii.gz.
    #[arg(
        long,
        short,
        required_unless_present = "output",
        conflicts_with = "output"
    )]
    pub out: Option<PathBuf>,
    /// PNG output: intensities LOW,HIGH mapped to black and white (default depends on the data).
    #[arg(long, allow_hyphen_values = true)]
    pub window: Option<Window>,
    /// PNG output bit depth [default: 16].
    #[arg(long, value_enum)]
    pub bit_depth: Option<Depth>,
    /// Batch processing (folders, manifests, DICOM series, NIfTI volumes).
    #[command(flatten)]
    pub batch: BatchArgs,
    /// Memory budget: every input's estimated peak is checked before its reconstruction.
    #[command(flatten)]
    pub memory: MemoryArgs,
}

/// The size of one reconstruction, for its memory estimate ([`recon_bytes`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReconSize {
    /// CT or MAR on a `size`² image: `views` in the full view set, `n_det` bins of
    /// `det_spacing` pixels, parallel or fan beam.
    Ct {
        /// Image side.
        size: usize,
        /// Views of the full view set.
        views: usize,
        /// Detector bins.
        n_det: usize,
        /// Bin width in pixels.
        det_spacing: f32,
        /// Fan beam (per-ray tables) rather than parallel beam.
        fan: bool,
    },
    /// MRI on an `h`×`w` image.
    Mri {
        /// Image rows.
        h: usize,
        /// Image columns.
        w: usize,
    },
}

impl ReconSize {
    /// The size of a measurement described by `geometry`.
    pub fn of(geometry: &Geometry) -> Self {
        match geometry {
            Geometry::ParallelBeam {
                size,
                angles_deg,
                n_det,
                det_spacing,
            } => ReconSize::Ct {
                size: *size,
                views: angles_deg.len(),
                n_det: *n_det,
                det_spacing: *det_spacing,
                fan: false,
            },
            Geometry::FanBeam {
                size,
                angles_deg,
                n_det,
                ..
            } => ReconSize::Ct {
                size: *size,
                views: angles_deg.len(),
                n_det: *n_det,
                det_spacing: 1.0,
                fan: true,
            },
            Geometry::Cartesian { h, w } => ReconSize::Mri { h: *h, w: *w },
        }
    }

    /// Image rows and columns.
    fn image(&self) -> (u64, u64) {
        match *self {
            ReconSize::Ct { size, .. } => (size as u64, size as u64),
            ReconSize::Mri { h, w } => (h as u64, w as u64),
        }
    }
}

/// Estimated peak memory (bytes) of reconstructing `images` measurements of `size` together
/// with the method of `a` (and, for score methods, `model`): generous counts of the large
/// buffers — the image planes of the solver, the sinogram planes (the parallel-beam adjoint's
/// padded views, the fan beam's per-ray tables) or k-space planes, and for score methods the
/// network's activations for all `images × samples` images at the image's size (the full
/// training-time figure for DPS, which back-propagates through the network, a quarter of it
/// otherwise).
pub fn recon_bytes(
    a: &ReconArgs,
    size: ReconSize,
    images: usize,
    model: Option<&LoadedModel>,
) -> Result<u64> {
    let (h, w) = size.image();
    let pixels = h.saturating_mul(w);
    let score = a.method.inverse_method();
    let samples = match score {
        Some(method) => a.solver_config(method)?.samples as u64,
        None => 1,
    };
    let batch = (images as u64).saturating_mul(samples).max(1);
    // image planes per image of the batch: solver state, TV duals, outputs
    let image_planes: u64 = match (a.method, score) {
        (_, Some(_)) => 12,
        (Method::FistaTv, _) => 10,
        _ => 4,
    };
    let measurement = match size {
        ReconSize::Ct {
            size,
            views,
            n_det,
            det_spacing,
            fan,
        } => {
            let views = match score {
                // parallel beam: the dense operator of at least DENSE_VIEWS views
                Some(_) if !fan => views.max(score_recon::DENSE_VIEWS),
                _ => views,
            } as u64;
            let per_view = if fan {
                // sinogram and three per-ray tables
                4 * n_det as u64
            } else {
                // the adjoint's zero margin on both sides of each view
                let reach = size as f64 * std::f64::consts::FRAC_1_SQRT_2 / f64::from(det_spacing);
                n_det as u64 + 2 * (reach.min(1e12) as u64 + 16)
            };
            // sinogram planes: data, filtered/padded copies, forward, residual, masks
            bytes_of(&[(views.saturating_mul(per_view).saturating_mul(6), F32)])
        }
        // complex k-space planes (8 bytes): data, mask, FFT in and out, residual, gathered y
        ReconSize::Mri { .. } => bytes_of(&[(pixels.saturating_mul(6), 8)]),
    };
    let network = match (model, score) {
        (Some(model), Some(method)) => {
            let mut config = model.meta.model.clone();
            let side = h.max(w) as usize;
            let from = config.image_size.max(1);
            config.attn_resolutions = config
                .attn_resolutions
                .iter()
                .map(|r| r.saturating_mul(side) / from)
                .collect();
            config.image_size = side;
            let share = if method == InverseMethod::Dps {
                1.0
            } else {
                0.25
            };
            let floats = config.activation_floats_per_image() * share * batch as f64;
            (floats * F32 as f64).min(u64::MAX as f64) as u64
        }
        _ => 0,
    };
    Ok(bytes_of(&[(pixels.saturating_mul(image_planes), F32)])
        .saturating_mul(batch)
        .saturating_add(measurement.saturating_mul(images.max(1) as u64))
        .saturating_add(network))
}

impl ReconArgs {
    /// The resolved solver configuration of the score method `method` (flags, then
    /// `--config`, then defaults; see [`ScoreArgs`]).
    pub fn solver_config(&self, method: InverseMethod) -> Result<InverseConfig> {
        self.score.config(self.problem, method)
    }

    /// The FBP filter (Ram-Lak unless --filter).
    pub fn fbp_filter(&self) -> Filter {
        self.filter.unwrap_or(FilterChoice::RamLak).filter()
    }

    /// FISTA-TV's (iterations, λ): the flags, then the `[fista-tv]` table of `--config`, then
    /// 100 and 0.005 (invalid input when the config cannot be read or holds bad values).
    pub fn fista_params(&self) -> Result<(usize, f32)> {
        let table = match &self.score.config {
            // both flags given: the config has nothing to add (it is checked in check_method)
            Some(_) if self.iterations.is_some() && self.tv_weight.is_some() => None,
            Some(path) => {
                let config = TaskConfig::load(path, false).map_err(invalid)?;
                // type-checks every key of the table
                config
                    .params(self.problem, Method::FistaTv)
                    .map_err(|e| invalid(format!("{}: {e:#}", path.display())))?;
                config.doc.get(Method::FistaTv.name()).cloned()
            }
            None => None,
        };
        let from_config = |key: &str| table.as_ref().and_then(|t| t.get(key)).cloned();
        let iterations = match (self.iterations, from_config("fista_iterations")) {
            (Some(n), _) => n,
            (None, Some(v)) => v
                .as_integer()
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(0),
            (None, None) => 100,
        };
        let weight = match (self.tv_weight, from_config("tv_weight")) {
            (Some(w), _) => w,
            (None, Some(v)) => v.as_float().map(|w| w as f32).unwrap_or(f32::NAN),
            (None, None) => 0.005,
        };
        let source = |flag_given: bool, flag: &str| match (&self.score.config, flag_given) {
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
        Ok((iterations, weight))
    }

    /// The output image settings for the file `out`.
    pub fn image_output(&self, out: PathBuf) -> ImageOutput {
        ImageOutput {
            out,
            window: self.window,
            bit_depth: self.bit_depth,
        }
    }
}

/// Checks the method and its options against the problem (invalid input).
pub fn check_method(a: &ReconArgs) -> Result<()> {
    if a.out.is_some() {
        let b = &a.batch;
        let batch_only = [
            ("--shard", b.shard.is_some()),
            ("--resume", b.resume),
            ("--reference", b.reference.is_some()),
            ("--anonymize", b.anonymize),
            ("--anonymize-map", b.anonymize_map.is_some()),
            ("--axis", b.axis.is_some()),
        ];
        if let Some((flag, _)) = batch_only.iter().find(|(_, given)| *given) {
            return Err(invalid(format!(
                "{flag} applies to batch mode only (--output FOLDER), not to --out FILE"
            )));
        }
    }
    match &a.out {
        Some(out) => check_png_options(out, a.window.is_some(), a.bit_depth.is_some())?,
        None => {
            let png_only = [
                ("--window", a.window.is_some()),
                ("--bit-depth", a.bit_depth.is_some()),
            ];
            if let Some((flag, _)) = png_only.iter().find(|(_, given)| *given) {
                return Err(invalid(format!(
                    "{flag} applies to a PNG --out FILE only; batch mode (--output FOLDER) writes \
                     the float values themselves (NPY, NIfTI, DICOM)"
                )));
            }
        }
    }
    if a.method.is_latent() {
        return Err(invalid(format!(
            "{} (the LSGM latent prior) runs in `medsgm bench recon --latent-model` and `medsgm tune`, not in recon",
            a.method
        )));
    }
    if !a.method.applies_to(a.problem) {
        let choices: Vec<&str> = Method::ALL
            .iter()
            .filter(|m| m.applies_to(a.problem) && !m.is_latent())
            .map(|m| m.name())
            .collect();
        return Err(invalid(format!(
            "method {} does not apply to {}; choose one of {}",
            a.method,
            a.problem,
            choices.join(", ")
        )));
    }
    let not_applying = |flags: Vec<&str>, to: &str| -> Result<()> {
        match flags.first() {
            Some(flag) => Err(invalid(format!(
                "{flag} does not apply to {} ({to})",
                a.method
            ))),
            None => Ok(()),
        }
    };
    if a.method != Method::FistaTv {
        let fista_only = [
            ("--iterations", a.iterations.is_some()),
            ("--tv-weight", a.tv_weight.is_some()),
            ("--nonnegative", a.nonnegative),
        ];
        not_applying(
            fista_only.iter().filter(|f| f.1).map(|f| f.0).collect(),
            "a fista-tv option",
        )?;
    }
    if a.filter.is_some() && a.problem != Problem::Mar && a.method != Method::Fbp {
        return Err(invalid(format!(
            "--filter does not apply to {} (an fbp option; mar: every method)",
            a.method
        )));
    }
    if a.method.inverse_method().is_none() {
        not_applying(a.score.given_flags(), "a score-method option")?;
    }
    if a.out.is_some() {
        let volume_only = [
            ("--views", a.batch.views.is_some()),
            ("--acceleration", a.batch.acceleration.is_some()),
            ("--batch", a.batch.batch_size.is_some()),
            (
                "--geometry fan",
                a.batch.fan.beam == crate::cli::simulate::Beam::Fan,
            ),
        ];
        if let Some((flag, _)) = volume_only.iter().find(|(_, given)| *given) {
            return Err(invalid(format!(
                "{flag} sets the simulated measurement of volumes in batch mode (--output FOLDER); a measurement file has its own"
            )));
        }
    }
    a.batch.check_volume_flags(a.problem)?;
    if let Some(path) = &a.score.config {
        // a broken config file is an error whatever the method
        TaskConfig::load(path, false).map_err(invalid)?;
    }
    if a.method == Method::FistaTv {
        a.fista_params()?;
    }
    if let Some(method) = a.method.inverse_method() {
        a.score.validate(a.problem, method)?;
    }
    Ok(())
}

/// Loads the measurement at `path` and checks its kind against the problem.
pub fn load_checked(a: &ReconArgs, path: &Path) -> Result<Measurement> {
    let m = load_measurement(path).invalid_input()?;
    if m.sinogram_mask
        .as_ref()
        .is_some_and(|k| !k.iter().any(|&keep| keep))
    {
        return Err(invalid(format!(
            "{}: its sinogram mask keeps no measurement",
            path.display()
        )));
    }
    if m.sidecar.kind != a.problem {
        return Err(invalid(format!(
            "{} is a {} measurement, not {}",
            path.display(),
            m.sidecar.kind,
            a.problem
        )));
    }
    Ok(m)
}

/// FISTA-TV on any real-image operator, with a progress bar.
pub fn run_fista_tv<A: LinearOperator<In = f32>>(
    op: &A,
    y: &ArrayViewD<A::Out>,
    (iterations, weight): (usize, f32),
    nonnegative: bool,
) -> Result<Array2<f32>> {
    let params = FistaTvParams {
        weight,
        iterations,
        nonnegative,
        ..FistaTvParams::default()
    };
    let bar = progress(iterations as u64, "FISTA-TV");
    let x = fista_tv(op, y, &params, None, |_, _| bar.inc(1))?;
    bar.finish_and_clear();
    Ok(x)
}

/// A reconstruction ready to be written.
pub struct ReconOutput {
    /// The image in data units.
    pub image: Array2<f32>,
    /// Posterior standard deviation (score-based methods with K > 1).
    pub std: Option<Array2<f32>>,
    /// Default PNG window of the image.
    pub window: Window,
    /// NFE per posterior sample and seconds (score-based methods).
    pub score: Option<(usize, f64)>,
    /// The denoising residual of the reconstruction and whether it exceeds the prior's
    /// calibrated threshold (score methods with a calibrated prior; see
    /// [`crate::eval::typicality`]).
    pub typicality: Option<(f64, bool)>,
}

impl ReconOutput {
    /// The image and standard deviation resampled to `shape` over the same field of view.
    fn resampled(self, shape: (usize, usize)) -> Self {
        if self.image.dim() == shape {
            return self;
        }
        Self {
            image: resample_area(&self.image, shape),
            std: self.std.map(|s| resample_area(&s, shape)),
            ..self
        }
    }

    fn classical(image: Array2<f32>, window: Window) -> Self {
        Self {
            image,
            std: None,
            window,
            score: None,
            typicality: None,
        }
    }

    fn score(r: ScoreRecon, samples: usize, window: Window) -> Self {
        Self {
            image: r.mean,
            std: (samples > 1).then_some(r.std),
            window,
            score: Some((r.nfe, r.seconds)),
            typicality: r.typicality,
        }
    }
}

/// The PNG window showing the model's [0, 1] range in data units.
fn model_range_window(map: IntensityMap) -> Window {
    let ends = map.to_data(&Array2::from_shape_vec((1, 2), vec![0.0, 1.0]).expect("2 values"));
    Window {
        low: ends[[0, 0]].min(ends[[0, 1]]),
        high: ends[[0, 0]].max(ends[[0, 1]]),
    }
}

/// The sinogram of a CT/MAR measurement.
fn sinogram(m: &Measurement) -> Result<&Array2<f32>> {
    match &m.data {
        MeasurementData::Sinogram(s) => Ok(s),
        MeasurementData::KSpace(_) => {
            bail!("a {} measurement must hold a sinogram", m.sidecar.kind)
        }
    }
}

/// The CT projector (parallel or fan beam) over the given views of a CT/MAR sidecar (all of
/// them when `views` is None).
fn projector_of(m: &Measurement, views: Option<&[usize]>) -> Result<CtProjector> {
    crate::task::ct_scan::projector(&m.sidecar.geometry, views).map_err(|e| {
        invalid(format!(
            "a {} measurement needs a valid parallel- or fan-beam geometry: {e:#}",
            m.sidecar.kind
        ))
    })
}

/// The score-based operator of a CT/MAR measurement and its measured entries y: for
/// parallel-beam CT the dense view set of [`score_recon::dense_ct_operator`] (the sidecar's
/// full set when it is already that dense), for fan-beam CT the sidecar's full view set with
/// Λ = the measured views, for MAR the full view set with Λ = the complement of the metal
/// trace.
fn subsampled_ct(m: &Measurement) -> Result<(Subsampled<CtProjector>, Array1<f32>)> {
    let sino = sinogram(m)?;
    let sparse_parallel = match &m.sidecar.geometry {
        Geometry::ParallelBeam {
            size,
            angles_deg,
            n_det,
            det_spacing,
        } if angles_deg.len() < score_recon::DENSE_VIEWS => {
            Some((*size, angles_deg, *n_det, *det_spacing))
        }
        _ => None,
    };
    match (&m.sidecar.mask, &m.sinogram_mask, sparse_parallel) {
        (Mask::Views { kept }, _, Some((size, angles_deg, n_det, det_spacing))) => {
            let measured: Vec<f32> = kept.iter().map(|&k| angles_deg[k]).collect();
            let (op, y) = score_recon::dense_ct_operator(
                size,
                n_det,
                det_spacing,
                &measured,
                sino,
                score_recon::DENSE_VIEWS,
            )?;
            let op = Subsampled::new(CtProjector::from(op.transform().clone()), op.mask().clone())
                .invalid_input()?;
            Ok((op, y))
        }
        (Mask::Views { kept }, _, None) => {
            let projector = projector_of(m, None)?;
            let (n_views, n_det) = (projector.range_shape()[0], projector.range_shape()[1]);
            let mut full = Array2::<f32>::zeros((n_views, n_det));
            let mut mask = Array2::from_elem(full.dim(), false);
            for (row, &k) in kept.iter().enumerate() {
                full.row_mut(k).assign(&sino.row(row));
                mask.row_mut(k).fill(true);
            }
            let op = Subsampled::new(projector, mask.into_dyn()).invalid_input()?;
            let y = op.gather(&full.view().into_dyn());
            Ok((op, y))
        }
        (Mask::Sinogram { .. }, Some(mask), _) => {
            let op =
                Subsampled::new(projector_of(m, None)?, mask.clone().into_dyn()).invalid_input()?;
            let y = op.gather(&sino.view().into_dyn());
            Ok((op, y))
        }
        _ => bail!("the measurement has no usable sinogram mask"),
    }
}

/// A score-based problem: the operator A = P(Λ)T of a measurement, its measurement vector y
/// and the map from its data units to the model's.
type ScoreProblem<T> = (
    Subsampled<T>,
    Array1<<T as LinearOperator>::Out>,
    score_recon::IntensityMap,
);

/// The score-based problem of a sparse-view CT measurement.
fn ct_score_problem(
    a: &ReconArgs,
    m: &Measurement,
    model: &LoadedModel,
) -> Result<ScoreProblem<CtProjector>> {
    let map = ct_intensity_map(
        model,
        a.score
            .units
            .or_else(|| score_recon::declared_units(&m.sidecar.units)),
    )?;
    let (op, y) = subsampled_ct(m)?;
    Ok((op, y, map))
}

/// Solves the score-based `problem` of each measurement in one sampler batch (they must share
/// geometry and mask, hence the operator); one output per measurement, in order.
fn score_batch<T: Transform<In = f32> + Clone>(
    a: &ReconArgs,
    ms: &[Measurement],
    model: &LoadedModel,
    method: InverseMethod,
    problem: impl Fn(&Measurement) -> Result<ScoreProblem<T>>,
) -> Result<Vec<ReconOutput>> {
    let Some(first) = ms.first() else {
        return Ok(Vec::new());
    };
    if let Some(k) = ms.iter().position(|m| {
        m.sidecar.geometry != first.sidecar.geometry
            || m.sidecar.mask != first.sidecar.mask
            || m.sinogram_mask != first.sinogram_mask
    }) {
        return Err(invalid(format!(
            "measurement {k} of the batch has another geometry or mask than the first (a batch shares one operator)"
        )));
    }
    let mut op = None;
    let mut ys = Vec::with_capacity(ms.len());
    for m in ms {
        let (o, y, map) = problem(m)?;
        op.get_or_insert(o);
        ys.push((y, map));
    }
    let op = op.ok_or_else(|| anyhow::anyhow!("empty batch"))?;
    let config = a.solver_config(method)?;
    let rs = score_recon::score_reconstruct_batch(model, &op, &ys, &config)?;
    Ok(rs
        .into_iter()
        .zip(&ys)
        .map(|(r, (_, map))| ReconOutput::score(r, config.samples, model_range_window(*map)))
        .collect())
}

/// Sparse-view CT, classical methods.
fn recon_ct(a: &ReconArgs, m: &Measurement) -> Result<ReconOutput> {
    let Mask::Views { kept } = &m.sidecar.mask else {
        bail!("a ct measurement needs a view mask");
    };
    let projector = projector_of(m, Some(kept))?;
    let sino = sinogram(m)?;
    let image = match a.method {
        Method::Fbp => projector.fbp(&sino.view(), a.fbp_filter()),
        _ => run_fista_tv(
            &projector,
            &sino.view().into_dyn(),
            a.fista_params()?,
            a.nonnegative,
        )?,
    };
    Ok(ReconOutput::classical(image, Window::UNIT))
}

/// Undersampled MRI's A = P(Λ) F on real images.
type MriOperator = Subsampled<RealInput<Fft2>>;

/// MRI: A = P(Λ) F on real images, Λ = the measured columns; y; the zero-filled image.
fn mri_operator(m: &Measurement) -> Result<(MriOperator, Array1<Complex32>, Array2<f32>)> {
    let (Geometry::Cartesian { h, w }, Mask::Columns { kept, .. }, MeasurementData::KSpace(k)) =
        (&m.sidecar.geometry, &m.sidecar.mask, &m.data)
    else {
        bail!("an mri measurement must hold cartesian k-space with a column mask");
    };
    let mask = Array2::from_shape_fn((*h, *w), |(_, j)| kept.binary_search(&j).is_ok());
    let op = Subsampled::new(RealInput::new(Fft2::new(*h, *w)?), mask.into_dyn())?;
    let y = op.gather(&k.view().into_dyn());
    let zf = zero_filled(&op, &y.view(), ComplexPart::Real)?;
    Ok((op, y, zf))
}

/// The score-based problem of an MRI measurement (the intensity scale from its zero-filled
/// image).
fn mri_score_problem(
    a: &ReconArgs,
    m: &Measurement,
    model: &LoadedModel,
) -> Result<ScoreProblem<RealInput<Fft2>>> {
    let (op, y, zf) = mri_operator(m)?;
    let map = mri_intensity_map(model, a.score.units, &zf)?;
    Ok((op, y, map))
}

/// Undersampled MRI, classical methods.
fn recon_mri(a: &ReconArgs, m: &Measurement) -> Result<ReconOutput> {
    let (op, y, zf) = mri_operator(m)?;
    let image = match a.method {
        Method::ZeroFilled => zf,
        _ => run_fista_tv(&op, &y.view().into_dyn(), a.fista_params()?, a.nonnegative)?,
    };
    Ok(ReconOutput::classical(image, Window::UNIT))
}

/// MAR: Λ = the complement of the metal trace; the trace is inpainted (LI, or the score
/// prior), the image reconstructed in HU and the metal pasted back from the uncorrected FBP.
fn recon_mar(a: &ReconArgs, m: &Measurement, model: Option<&LoadedModel>) -> Result<ReconOutput> {
    let mu_water = m.sidecar.mu_water_per_pixel.ok_or_else(|| {
        invalid("the mar sidecar has no mu_water_per_pixel: cannot convert the sinogram to HU")
    })?;
    let (op, y) = subsampled_ct(m)?;
    let projector = op.transform();
    let sino = sinogram(m)?;
    let uncorrected = mu_to_hu(
        &projector.fbp(&sino.view(), a.fbp_filter()).view(),
        mu_water,
    );
    let metal = match &m.metal_mask {
        Some(mask) => mask.clone(),
        None => segment_metal(&uncorrected.view(), METAL_THRESHOLD_HU, 1)?,
    };
    let window = crate::cli::phantom::hu_png_window();
    let mut out = match (model, a.method.inverse_method()) {
        (Some(model), Some(method)) => {
            // v = μ per pixel: HU = −1000 + v · 1000/μ_water.
            let map = IntensityMap::hu(-1000.0, 1000.0 / mu_water, model_hu_window(model, "mar")?);
            let config = a.solver_config(method)?;
            let r = score_recon::score_reconstruct(model, &op, &y, map, &config)?;
            ReconOutput::score(r, config.samples, window)
        }
        _ => match a.method {
            Method::Li => {
                let trace = op.mask().mapv(|keep| !keep).into_dimensionality()?;
                let mu = li(projector, &sino.view(), &trace.view())?;
                ReconOutput::classical(mu_to_hu(&mu.view(), mu_water), window)
            }
            Method::FistaTv => {
                // TV on μ per pixel from the measurement outside the metal trace
                let mu = run_fista_tv(&op, &y.view().into_dyn(), a.fista_params()?, a.nonnegative)?;
                ReconOutput::classical(mu_to_hu(&mu.view(), mu_water), window)
            }
            _ => ReconOutput::classical(uncorrected.clone(), window),
        },
    };
    paste_metal(&mut out.image, &metal.view(), &uncorrected.view())?;
    if let Some(std) = &mut out.std {
        paste_metal(std, &metal.view(), &Array2::zeros(metal.dim()).view())?;
    }
    Ok(out)
}

/// `dir/name.ext` → `dir/name_std.ext` (keeping a `.nii.gz` double suffix).
pub fn std_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let lower = name.to_ascii_lowercase();
    let split = if lower.ends_with(".nii.gz") {
        name.len() - ".nii.gz".len()
    } else {
        name.rfind('.').unwrap_or(name.len())
    };
    out.with_file_name(format!("{}_std{}", &name[..split], &name[split..]))
}

/// CT and MRI measurements whose sidecar records a pixel spacing more than 10 % from the prior's,
/// re-expressed on the prior's grid ([`at_pixel_spacing`]), so that the
/// prior sees anatomy at the scale it was trained at; `None` when no rescaling applies.
fn at_prior_spacing(ms: &[Measurement], model: &LoadedModel) -> Result<Option<Vec<Measurement>>> {
    let Some(prior) = model.pixel_spacing_mm() else {
        return Ok(None);
    };
    let apart = |m: &Measurement| {
        m.sidecar
            .pixel_spacing_mm
            .is_some_and(|s| (s / prior - 1.0).abs() > 0.1)
    };
    if !ms.iter().any(apart) {
        return Ok(None);
    }
    let rescaled = ms
        .iter()
        .map(|m| {
            at_pixel_spacing(m, prior)
                .map(|r| r.unwrap_or_else(|| m.clone()))
                .map_err(|e| invalid(format!("the measurement on the prior's grid: {e:#}")))
        })
        .collect::<Result<Vec<_>>>()?;
    if let (Some(first), Some(m)) = (rescaled.first(), ms.first()) {
        let (from, to) = (m.sidecar.image_shape(), first.sidecar.image_shape());
        eprintln!(
            "the {}x{} measurement grid at {:.3} mm is reconstructed on the prior's {prior:.3} mm grid ({}x{}) and resampled back",
            from.0,
            from.1,
            m.sidecar.pixel_spacing_mm.unwrap_or(f32::NAN),
            to.0,
            to.1
        );
    }
    Ok(Some(rescaled))
}

/// Reconstructs one measurement of the requested problem.
pub fn reconstruct(
    a: &ReconArgs,
    m: &Measurement,
    model: Option<&LoadedModel>,
) -> Result<ReconOutput> {
    reconstruct_batch(a, std::slice::from_ref(m), model)?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("the reconstruction returned no image"))
}

/// Reconstructs measurements that share one geometry and mask (the slices of a volume): the
/// score-based CT and MRI methods sample them together as one batch (see
/// [`score_recon::score_reconstruct_batch`]); classical methods and MAR (whose metal differs
/// per slice) go one by one. One output per measurement, in order.
pub fn reconstruct_batch(
    a: &ReconArgs,
    ms: &[Measurement],
    model: Option<&LoadedModel>,
) -> Result<Vec<ReconOutput>> {
    match (model, a.method.inverse_method(), a.problem) {
        (Some(model), Some(method), problem @ (Problem::Ct | Problem::Mri)) => {
            let prior_grid = at_prior_spacing(ms, model)?;
            let inputs = prior_grid.as_deref().unwrap_or(ms);
            if let (Some(_), Some(first)) = (&prior_grid, inputs.first()) {
                a.memory.check(
                    "the measurement on the prior's grid",
                    recon_bytes(
                        a,
                        ReconSize::of(&first.sidecar.geometry),
                        ms.len(),
                        Some(model),
                    )?,
                )?;
            }
            let outs = match problem {
                Problem::Ct => {
                    score_batch(a, inputs, model, method, |m| ct_score_problem(a, m, model))?
                }
                _ => score_batch(a, inputs, model, method, |m| mri_score_problem(a, m, model))?,
            };
            Ok(outs
                .into_iter()
                .zip(ms)
                .map(|(o, m)| o.resampled(m.sidecar.image_shape()))
                .collect())
        }
        _ => ms
            .iter()
            .map(|m| match a.problem {
                Problem::Ct => recon_ct(a, m),
                Problem::Mri => recon_mri(a, m),
                Problem::Mar => recon_mar(a, m, model),
            })
            .collect(),
    }
}

/// The model of a score-based method (None for classical methods).
pub fn load_model(a: &ReconArgs) -> Result<Option<LoadedModel>> {
    match a.method.inverse_method() {
        Some(_) => Ok(Some(a.score.load_model()?)),
        None => Ok(None),
    }
}

/// Runs `medsgm recon`: one measurement to `--out`, or a batch to `--output`.
pub fn run(a: &ReconArgs) -> Result<()> {
    let resolved = match a.method.inverse_method() {
        Some(method) => ReconArgs {
            score: a.score.resolved(a.problem, method)?,
            ..a.clone()
        },
        None => a.clone(),
    };
    check_method(&resolved)?;
    // FISTA-TV's parameters resolved once (flags, then --config), not per input
    let resolved = match resolved.method {
        Method::FistaTv => {
            let (iterations, weight) = resolved.fista_params()?;
            ReconArgs {
                iterations: Some(iterations),
                tv_weight: Some(weight),
                ..resolved
            }
        }
        _ => resolved,
    };
    let a = &resolved;
    if a.score.code.is_some() && a.batch.output.is_some() {
        return Err(invalid(
            "--code conditions one slice on one latent code: give --out FILE, not --output",
        ));
    }
    let output = match (&a.out, &a.batch.output) {
        (_, Some(dir)) => return recon_batch::run(a, dir),
        (Some(out), None) => a.image_output(out.clone()),
        (None, None) => return Err(invalid("give --out FILE or --output FOLDER")),
    };
    output.validate()?;
    let m = load_checked(a, &a.input)?;
    let mut inputs = measurement_files(&a.input, &m.sidecar);
    inputs.extend(a.score.encoder.iter().chain(&a.score.code).cloned());
    refuse_overwriting_inputs(&[output.out.clone(), std_path(&output.out)], &inputs)
        .map_err(invalid)?;
    let model = load_model(a)?;
    a.memory.check(
        &a.input.display().to_string(),
        recon_bytes(a, ReconSize::of(&m.sidecar.geometry), 1, model.as_ref())?,
    )?;
    let out = reconstruct(a, &m, model.as_ref())?;
    let bad = out.image.iter().filter(|v| !v.is_finite()).count();
    if bad > 0 {
        bail!(
            "{} diverged on {}: {bad} of {} pixels are not finite (check the measurement's \
             scale and the method's parameters); {} was not written",
            a.method
                .to_possible_value()
                .map(|v| v.get_name().to_owned())
                .unwrap_or_default(),
            a.input.display(),
            out.image.len(),
            output.out.display()
        );
    }
    output.write(&out.image.view(), out.window)?;
    let (rows, cols) = out.image.dim();
    let mut report = format!(
        "wrote {} ({rows}x{cols}, {:?})",
        output.out.display(),
        a.method
    );
    if let Some(std) = &out.std {
        let path = std_path(&output.out);
        let max = std.iter().copied().fold(0.0f32, f32::max);
        let std_output = ImageOutput {
            out: path.clone(),
            window: None,
            bit_depth: a.bit_depth,
        };
        std_output
            .write(
                &std.view(),
                Window {
                    low: 0.0,
                    high: if max > 0.0 { max } else { 1.0 },
                },
            )
            .with_context(|| format!("writing the uncertainty map {}", path.display()))?;
        let samples = match a.method.inverse_method() {
            Some(method) => a.solver_config(method)?.samples,
            None => 1,
        };
        report += &format!(
            " and the std map of {samples} samples {} (mean posterior SD over the object {:.4})",
            path.display(),
            crate::eval::uncertainty::object_mean_sd(&out.image, std)
        );
    }
    if let Some((nfe, seconds)) = out.score {
        report += &format!("; NFE {nfe} per sample, {seconds:.2} s");
    }
    println!("{report}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_path_keeps_the_format_suffix() {
        for (out, expected) in [
            ("dir/rec.npy", "dir/rec_std.npy"),
            ("rec.nii.gz", "rec_std.nii.gz"),
            ("a.b/rec.PNG", "a.b/rec_std.PNG"),
            ("rec", "rec_std"),
        ] {
            assert_eq!(std_path(Path::new(out)), PathBuf::from(expected));
        }
    }
}
