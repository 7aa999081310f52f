//! Score-based reconstruction (`medsgm recon {ct,mri,mar}`, thesis Ch. 8,
//! method digest §5): one unconditional score model, the measurement operator A = P(Λ)T of
//! the measurement file, and [`medsgm_recon::solve`] (PC + projection, ALD + projection, and
//! the Score-SDE and Langevin baselines), with K posterior samples giving a mean and a
//! per-pixel standard-deviation map.
//!
//! # Units
//! The network works in its normalised units u ∈ [0, 1] (the checkpoint's
//! [`Normalization`]); a measurement holds A v for an image v in *data units*. Every
//! normalisation used here is affine, u = a v + b, so the measurement is converted exactly by
//! linearity: A u = a A v + b A𝟙 (𝟙 the all-ones image), and the reconstruction is converted
//! back, v = (u − b)/a, std_v = std_u/|a|. (The training normalisation also clips to [0, 1];
//! intensities outside the model's window, e.g. bone above its upper HU limit, are outside
//! what the prior has seen.)
//!
//! - CT sinograms are line integrals of the image intensity of the simulated image, whose units
//!   the sidecar does not record: `--units hu` (an HU image), `--units unit` (medsgm's default
//!   [−1024, 3072] HU window, as written by `medsgm phantom --units unit`) or `--units model`
//!   (already the model's normalised units). Required for models with an HU window.
//! - MAR sinograms are line integrals of μ (per pixel length) with μ_water recorded in the
//!   sidecar: HU = 1000 μ/μ_water − 1000, so v = μ has an exact HU map; outputs are in HU.
//! - MRI k-space of the image: for a model trained with percentile normalisation the scale
//!   c = p-th percentile of |zero-filled reconstruction| is estimated (u = v/c); `--units model`
//!   skips the scaling.

use crate::checkpoint::Normalization;
use crate::error::{invalid, InputContext};
use crate::eval::extent::object_diameter_px;
use crate::eval::typicality::{denoising_residuals, Typicality};
use crate::io::image_io::Window;
use crate::io::measurement::Measurement;
use crate::model::LoadedModel;
use crate::progress::progress;
use crate::reconstruct::output::ReconOutput;
use anyhow::Result;
use clap::ValueEnum;
use medsgm_operators::hu::HuWindow;
use medsgm_operators::radon::{Radon, RadonGeometry};
use medsgm_operators::sparse_view::SparseViewCt;
use medsgm_operators::{LinearOperator, Scalar, Subsampled, Transform};
use medsgm_recon::{solve, InverseConfig};
use ndarray::{Array1, Array2, ArrayD, IxDyn};
use std::time::Instant;

/// Intensity units of the image behind a CT measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Units {
    /// Hounsfield units.
    Hu,
    /// [0, 1] through medsgm's default HU window [−1024, 3072] (`medsgm phantom --units unit`).
    Unit,
    /// The model's own normalised units (no conversion).
    Model,
}

/// The affine intensity map u = scale · v + offset from data units v to model units u.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IntensityMap {
    /// a.
    pub scale: f32,
    /// b.
    pub offset: f32,
}

impl IntensityMap {
    /// No conversion.
    pub const IDENTITY: IntensityMap = IntensityMap {
        scale: 1.0,
        offset: 0.0,
    };

    /// Data v with HU = `data_lo` + v·`data_span` into the model window [lo, hi]:
    /// u = (HU − lo)/(hi − lo).
    pub fn hu(data_lo: f32, data_span: f32, model: (f32, f32)) -> IntensityMap {
        let w = model.1 - model.0;
        IntensityMap {
            scale: data_span / w,
            offset: (data_lo - model.0) / w,
        }
    }

    /// The measurement of the model-unit image: a·y + b·A𝟙 (`a_one` = A𝟙, needed when b ≠ 0).
    pub fn measurement<S: Scalar>(&self, y: &Array1<S>, a_one: &Array1<S>) -> Array1<S> {
        let mut out = y.mapv(|v| v.scale(self.scale));
        if self.offset != 0.0 {
            out.zip_mut_with(a_one, |o, &one| *o += one.scale(self.offset));
        }
        out
    }

    /// Model units back to data units: v = (u − b)/a.
    pub fn to_data(&self, u: &Array2<f32>) -> Array2<f32> {
        u.mapv(|x| (x - self.offset) / self.scale)
    }

    /// A standard deviation in model units back to data units: std/|a|.
    pub fn std_to_data(&self, s: &Array2<f32>) -> Array2<f32> {
        s.mapv(|x| x / self.scale.abs())
    }
}

/// The units a measurement's sidecar declares, when unambiguous: sinograms of HU images
/// (DICOM CT slices, whose modality LUT gives HU) are [`Units::Hu`]; anything else needs
/// `--units`.
pub fn declared_units(sidecar_units: &str) -> Option<Units> {
    let hu = sidecar_units == "HU" || sidecar_units.contains(" of HU ");
    hu.then_some(Units::Hu)
}

/// The HU window of a CT model, or an error naming `what` needs it.
pub fn model_hu_window(model: &LoadedModel, what: &str) -> Result<(f32, f32)> {
    match model.meta.normalization {
        Normalization::CtHuWindow { lo, hi } => Ok((lo, hi)),
        ref other => Err(invalid(format!(
            "{what} needs a CT model with an HU window; this model's normalisation is {other:?}"
        ))),
    }
}

/// The map of a CT sinogram of an image in `units` (see the module documentation).
pub fn ct_intensity_map(model: &LoadedModel, units: Option<Units>) -> Result<IntensityMap> {
    match (units, &model.meta.normalization) {
        (Some(Units::Model), _) => Ok(IntensityMap::IDENTITY),
        (None, Normalization::CtHuWindow { lo, hi }) => Err(invalid(format!(
            "the model works in the HU window [{lo}, {hi}]; say which units the measured image was in: --units hu, --units unit ([-1024, 3072] window) or --units model"
        ))),
        (None, _) => Ok(IntensityMap::IDENTITY),
        (Some(u), _) => {
            let window = model_hu_window(model, "--units hu/unit")?;
            Ok(match u {
                Units::Hu => IntensityMap::hu(0.0, 1.0, window),
                _ => {
                    let d = HuWindow::default();
                    IntensityMap::hu(d.lo, d.hi - d.lo, window)
                }
            })
        }
    }
}

/// The map of an MRI measurement: 1/c with c the p-th percentile of `|zero_filled|` for
/// percentile-normalised models, identity otherwise or with `--units model`.
pub fn mri_intensity_map(
    model: &LoadedModel,
    units: Option<Units>,
    zero_filled: &Array2<f32>,
) -> Result<IntensityMap> {
    match (units, &model.meta.normalization) {
        (Some(Units::Model), _) | (None, Normalization::Identity) => Ok(IntensityMap::IDENTITY),
        (None, Normalization::MriPercentile { p }) => {
            let c = percentile_scale(zero_filled, *p).ok_or_else(|| {
                invalid(
                    "the zero-filled reconstruction is zero: cannot estimate the intensity scale (pass --units model)",
                )
            })?;
            Ok(IntensityMap {
                scale: 1.0 / c,
                offset: 0.0,
            })
        }
        (None, other) => Err(invalid(format!(
            "an MRI reconstruction needs an MRI (or identity-normalised) model; this model's normalisation is {other:?} (pass --units model to use it anyway)"
        ))),
        (Some(u), _) => Err(invalid(format!(
            "--units {u:?} does not apply to MRI (use --units model or leave it out)"
        ))),
    }
}

/// The intensity scale of an MRI slice: the p-th percentile (nearest rank) of the magnitudes
/// of `image` (its zero-filled reconstruction), `None` when that is zero or not finite.
pub fn percentile_scale(image: &Array2<f32>, p: f32) -> Option<f32> {
    let mut mags: Vec<f32> = image.iter().map(|v| v.abs()).collect();
    if mags.is_empty() {
        return None;
    }
    mags.sort_by(f32::total_cmp);
    let q = (p / 100.0).clamp(0.0, 1.0);
    let c = mags[((mags.len() - 1) as f32 * q).round() as usize];
    (c.is_finite() && c > 0.0).then_some(c)
}

/// Views of the dense full set T of sparse-view CT (the paper's 180 views over [0°, 180°)).
pub const DENSE_VIEWS: usize = 180;

/// The decomposed CT operator A = P(Λ) R for measured views at `measured_deg` (degrees) and
/// the measurement vector y of the sinogram `sino` (`[measured views, det]`).
///
/// T = R over a *dense* view set ([`SparseViewCt`]): a [`DENSE_VIEWS`] equispaced grid over
/// [0°, 180°) in which each measured angle replaces the grid angles closer than half a grid
/// step (modulo 180°), and Λ selects the measured views. The density matters for the data-consistency step
/// k(x, y, λ) = x + FBP_T[λ Λ(y − T x)] (Theorem 8.1 with T⁻¹ = FBP): with T over the measured
/// views only, FBP·R is far from the identity and the repeated step diverges (e.g. 23 of 23
/// views at 64²: residual 4e−2 after one step, 4e3 after 20), whereas with the dense set it is
/// a convergent Landweber-type iteration (23 of 180 views: 0.87 → 6.6e−2 after 20 → 1.9e−3
/// after 200).
pub fn dense_ct_operator(
    size: usize,
    n_det: usize,
    det_spacing: f32,
    measured_deg: &[f32],
    sino: &Array2<f32>,
    dense: usize,
) -> Result<(Subsampled<Radon>, Array1<f32>)> {
    anyhow::ensure!(
        sino.nrows() == measured_deg.len(),
        "{} measured angles for a sinogram of {} views",
        measured_deg.len(),
        sino.nrows()
    );
    let measured =
        RadonGeometry::from_degrees(size, measured_deg, n_det).with_det_spacing(det_spacing);
    let ct = SparseViewCt::new(&measured, dense).invalid_input()?;
    let y = ct.measurement(&sino.view()).invalid_input()?;
    Ok((ct.op, y))
}

/// A score-based reconstruction in data units.
pub struct ScoreRecon {
    /// Posterior mean.
    pub mean: Array2<f32>,
    /// Per-pixel posterior standard deviation (zero for K = 1).
    pub std: Array2<f32>,
    /// Score evaluations per posterior sample.
    pub nfe: usize,
    /// Wall time of the solver.
    pub seconds: f64,
    /// Out-of-distribution figures of the posterior mean: denoising residual and body width
    /// against the prior's training data (priors calibrated by `medsgm calibrate`).
    pub typicality: Option<Typicality>,
}

impl ScoreRecon {
    /// The reconstruction to write: the posterior mean, the SD map for K = `samples` > 1, the
    /// NFE, seconds and typicality figures.
    pub fn into_output(self, samples: usize, window: Window) -> ReconOutput {
        ReconOutput {
            image: self.mean,
            std: (samples > 1).then_some(self.std),
            window,
            score: Some((self.nfe, self.seconds)),
            typicality: self.typicality,
        }
    }
}

/// Runs [`solve`] on one measurement `y` (data units) of `op`, converting with `map`, with a
/// progress bar on stderr.
pub fn score_reconstruct<T: Transform<In = f32> + Clone>(
    model: &LoadedModel,
    op: &Subsampled<T>,
    y: &Array1<T::Out>,
    map: IntensityMap,
    config: &InverseConfig,
) -> Result<ScoreRecon> {
    let mut out = score_reconstruct_batch(model, op, &[(y.clone(), map)], config)?;
    out.pop()
        .ok_or_else(|| anyhow::anyhow!("the solver returned no reconstruction"))
}

/// Runs [`solve`] on a batch of measurements of one operator `op` (slices of a volume): each
/// `(y, map)` pair is a measurement in data units and its map to the model's units. The slices
/// go through the sampler together as one `[B·K, 1, H, W]` batch (one score evaluation per
/// step for the whole batch), so the random draws depend on the batch composition: a run is
/// reproduced by the same seed *and* batch size. `seconds` of each result is the batch's wall
/// time divided by its size.
pub fn score_reconstruct_batch<T: Transform<In = f32> + Clone>(
    model: &LoadedModel,
    op: &Subsampled<T>,
    ys: &[(Array1<T::Out>, IntensityMap)],
    config: &InverseConfig,
) -> Result<Vec<ScoreRecon>> {
    let shape = op.domain_shape();
    anyhow::ensure!(shape.len() == 2, "the operator's domain must be an image");
    anyhow::ensure!(!ys.is_empty(), "no measurement to reconstruct");
    model.check_image_shape((shape[0], shape[1]), "the measured image")?;
    if let Some(note) = model.scale_note((shape[0], shape[1]), None) {
        eprintln!("warning: {note}");
    }
    let a_one = if ys.iter().any(|(_, map)| map.offset != 0.0) {
        let ones = ArrayD::from_elem(IxDyn(&shape), 1.0f32);
        op.forward(&ones.view())
            .into_dimensionality::<ndarray::Ix1>()?
    } else {
        Array1::from_vec(Vec::new())
    };
    let y_model: Vec<Array1<T::Out>> = ys
        .iter()
        .map(|(y, map)| map.measurement(y, &a_one))
        .collect();
    let bar = progress(config.steps as u64, config.method.to_string().as_str());
    let start = Instant::now();
    let out = solve(
        model.sde.as_ref(),
        &model.prior_score(),
        op,
        &y_model,
        config,
        &model.device,
        &mut |step, total| {
            bar.set_length(total as u64);
            bar.set_position(step as u64);
        },
    )?;
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64() / ys.len() as f64;
    // The reconstruction grid is at the prior's spacing (when it records one).
    let spacing = model.pixel_spacing_mm().map(f64::from);
    let typicality: Vec<Option<Typicality>> = match &model.meta.typicality {
        Some(cal) => denoising_residuals(
            &model.score(),
            model.sde.as_ref(),
            &out.mean,
            config.seed,
            &model.device,
        )?
        .into_iter()
        .zip(&out.mean)
        .map(|(r, image)| {
            let t = cal.judge(r, spacing.map(|s| s * object_diameter_px(image)));
            if t.flagged() {
                eprintln!(
                    "warning: this input looks unlike the prior's training data ({}): the prior may invent structure; compare with a classical reconstruction",
                    t.reasons(cal).join("; ")
                );
            }
            Some(t)
        })
        .collect(),
        None => vec![None; ys.len()],
    };
    anyhow::ensure!(
        out.mean.len() == ys.len() && out.std.len() == ys.len(),
        "the solver returned {} reconstructions for {} measurements",
        out.mean.len(),
        ys.len()
    );
    ys.iter()
        .zip(out.mean.iter().zip(&out.std))
        .zip(typicality)
        .map(|(((_, map), (mean, std)), typicality)| {
            crate::io::ensure_finite(
                "the score-based reconstruction (the sampler diverged; try more --steps or a smaller --snr)",
                mean.iter().chain(std.iter()).copied(),
            )?;
            Ok(ScoreRecon {
                mean: map.to_data(mean),
                std: map.std_to_data(std),
                nfe: out.nfe,
                seconds,
                typicality,
            })
        })
        .collect()
}

/// The PNG window showing the model's [0, 1] range in data units.
fn model_range_window(map: IntensityMap) -> Window {
    let ends = map.to_data(&Array2::from_shape_vec((1, 2), vec![0.0, 1.0]).expect("2 values"));
    Window {
        low: ends[[0, 0]].min(ends[[0, 1]]),
        high: ends[[0, 0]].max(ends[[0, 1]]),
    }
}

/// A score-based problem: the operator A = P(Λ)T of a measurement, its measurement vector y
/// and the map from its data units to the model's.
pub(super) type ScoreProblem<T> = (
    Subsampled<T>,
    Array1<<T as LinearOperator>::Out>,
    IntensityMap,
);

/// Solves the score-based `problem` of each measurement in one sampler batch (they must share
/// geometry and mask, hence the operator); one output per measurement, in order.
pub(super) fn score_batch<T: Transform<In = f32> + Clone>(
    config: &InverseConfig,
    ms: &[Measurement],
    model: &LoadedModel,
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
    let rs = score_reconstruct_batch(model, &op, &ys, config)?;
    Ok(rs
        .into_iter()
        .zip(&ys)
        .map(|(r, (_, map))| r.into_output(config.samples, model_range_window(*map)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use medsgm_operators::hu::{hu_to_mu, hu_to_unit};
    use medsgm_operators::radon::{Radon, RadonGeometry};
    use ndarray::Ix2;

    /// An HU image inside the window [−1000, 1000] (no clipping).
    fn hu_image() -> Array2<f32> {
        Array2::from_shape_fn((16, 16), |(i, j)| {
            -900.0 + 100.0 * ((i + 2 * j) % 18) as f32
        })
    }

    fn forward(radon: &Radon, x: &Array2<f32>) -> Array1<f32> {
        radon
            .forward(&x.view().into_dyn())
            .into_dimensionality::<Ix2>()
            .unwrap()
            .iter()
            .copied()
            .collect()
    }

    fn max_rel_diff(a: &Array1<f32>, b: &Array1<f32>) -> f32 {
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
    }

    /// The converted sinogram equals the sinogram of the normalised image (linearity of R),
    /// for HU data, μ data (MAR) and [−1024, 3072]-window data.
    #[test]
    fn measurement_conversion_matches_the_normalised_image() {
        let window = (-1000.0, 1000.0);
        let radon = Radon::new(RadonGeometry::equispaced(16, 7, 23)).unwrap();
        let hu = hu_image();
        let target = forward(
            &radon,
            &hu_to_unit(
                &hu.view(),
                HuWindow {
                    lo: -1000.0,
                    hi: 1000.0,
                },
            ),
        );
        let a_one = forward(&radon, &Array2::ones((16, 16)));
        let mu_w = 0.0192 * 1.5;
        let d = HuWindow::default();
        let cases = [
            (IntensityMap::hu(0.0, 1.0, window), hu.clone()),
            (
                IntensityMap::hu(-1000.0, 1000.0 / mu_w, window),
                hu_to_mu(&hu.view(), mu_w),
            ),
            (
                IntensityMap::hu(d.lo, d.hi - d.lo, window),
                hu_to_unit(&hu.view(), d),
            ),
        ];
        for (map, data) in cases {
            let got = map.measurement(&forward(&radon, &data), &a_one);
            let err = max_rel_diff(&got, &target);
            assert!(err < 1e-4, "{map:?}: relative error {err}");
            // and back: model units → data units
            let back = map.to_data(&hu_to_unit(
                &hu.view(),
                HuWindow {
                    lo: -1000.0,
                    hi: 1000.0,
                },
            ));
            let e = back
                .iter()
                .zip(data.iter())
                .fold(0f32, |m, (x, y)| m.max((x - y).abs() / (1.0 + y.abs())));
            assert!(e < 1e-4, "{map:?}: inverse error {e}");
        }
    }

    /// The dense operator measures exactly the given views, in any order, and keeps every
    /// other view of the grid at least half a grid step away from them.
    #[test]
    fn dense_operator_measures_the_given_views() {
        let n = 16;
        let measured = [100.0f32, 0.0, 37.3];
        let direct = Radon::new(RadonGeometry::from_degrees(n, &measured, 23)).unwrap();
        let x = hu_image().mapv(|v| v / 1000.0);
        let sino = direct
            .forward(&x.view().into_dyn())
            .into_dimensionality::<Ix2>()
            .unwrap();
        let (op, y) = dense_ct_operator(n, 23, 1.0, &measured, &sino, 180).unwrap();
        let ax: Array1<f32> = op
            .forward(&x.view().into_dyn())
            .into_dimensionality()
            .unwrap();
        assert_eq!(ax.len(), 3 * 23);
        assert!(max_rel_diff(&ax, &y) < 1e-5);
        let angles: Vec<f32> = op
            .transform()
            .geometry()
            .angles
            .iter()
            .map(|a| a.to_degrees())
            .collect();
        // Each measured angle replaces one grid angle (0°, 100°: themselves; 37.3°: 37°), so
        // the spacing stays within half a grid step of the 1° grid.
        assert_eq!(angles.len(), 180);
        for w in angles.windows(2) {
            assert!((0.5..=1.5).contains(&(w[1] - w[0])), "{w:?}");
        }
        for m in measured {
            assert!(angles.iter().any(|&a| (a - m).abs() < 1e-4), "{m} missing");
        }
    }

    #[test]
    fn std_scales_with_the_inverse_slope() {
        let map = IntensityMap::hu(0.0, 1.0, (-1000.0, 1000.0));
        let s = map.std_to_data(&Array2::from_elem((2, 2), 0.01));
        assert!(s.iter().all(|&v| (v - 20.0).abs() < 1e-3), "{s:?}");
    }
}
