//! Measurement set-ups of the benchmark: for each task the decomposed operator A = P(Λ)T of
//! thesis §8.2, the simulated measurements of the test images, the classical baselines and the
//! hand-off to a score-based solver.
//!
//! - CT: `views` equispaced views over [0°, 180°) (⌈√2 N⌉ detector bins), merged into a grid
//!   of [`FULL_VIEWS`] = 180 views ([`SparseViewCt`], as `medsgm recon ct` does); T = Radon
//!   over the merged set, Λ = the measured views; noise-free data.
//! - MRI: T = the unitary centred 2-D FFT of the real image; Λ = equispaced columns with
//!   score_inverse_problems' centre fraction; noise-free data.
//! - MAR: T = the full-view Radon transform, the sinogram from the polychromatic simulator
//!   (`mar_sim`, titanium, Poisson noise, water precorrection) converted to model units, Λ = the
//!   complement of the trace of the segmented metal dilated by one pixel; metrics exclude the
//!   metal pixels. One set-up per image (the trace differs per image).

use crate::error::invalid;
use crate::eval::method::MethodParams;
use crate::eval::testset::{TestImage, CT_WINDOW};
use crate::task::ct_scan::{Beam, CtNoise, FanSpec};
use crate::task::mri_scan::{MaskPattern, MriScan};
use crate::task::Method;
use anyhow::{anyhow, bail, Context, Result};
use medsgm_operators::fbp::Filter;
use medsgm_operators::kspace_mask::song_center_fraction;
use medsgm_operators::mar_sim::{simulate_metal_artifacts, MarSimParams};
use medsgm_operators::metal::{
    dilate, mar_mask, metal_trace, segment_metal, METAL_THRESHOLD_HU, TRACE_THRESHOLD,
};
use medsgm_operators::radon::{Radon, RadonGeometry};
use medsgm_operators::solvers::li::li;
use medsgm_operators::solvers::{fista_tv, zero_filled, ComplexPart, FistaTvParams};
use medsgm_operators::sparse_view::SparseViewCt;
use medsgm_operators::{
    operator_norm, CtProjector, DetectorKind, FanBeam, Fft2, LinearOperator, RealInput, Subsampled,
    Transform,
};
use ndarray::{Array1, Array2, Ix1};
use num_complex::Complex32;
use std::sync::OnceLock;

/// Views of the full CT sinogram (1° steps over [0°, 180°)).
pub const FULL_VIEWS: usize = 180;

/// Source angles of the fan-beam full scan (1° steps over 360°).
pub const FAN_FULL_VIEWS: usize = 360;

/// The fan-beam scanner of the benchmark's fan cases (see [`CtBeam::Fan`]): `simulate ct
/// --geometry fan --det-offset 0.25` with its default distances.
const BENCH_FAN: FanSpec = FanSpec {
    source_distance: None,
    detector_distance: None,
    detector: DetectorKind::Equiangular,
    det_offset: 0.25,
    short_scan: false,
};

/// The beam geometry of the sparse-view CT cases.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CtBeam {
    /// Parallel beam: noise-free views of the [`FULL_VIEWS`]-view grid over [0°, 180°).
    Parallel,
    /// Fan beam: views of a [`FAN_FULL_VIEWS`]-view full scan with source-isocentre distance
    /// 2N, source-detector distance 4N, an equiangular detector with unit bins at the
    /// isocentre and a quarter-detector offset; with `dose` I₀, pre-log Poisson counts
    /// N ~ Poisson(I₀ e^(−s p)), p̂ = −ln(max(N, 1)/I₀)/s, with s = [`crate::task::ct_scan::DEFAULT_LINE_ATTENUATION`]/N per
    /// pixel of image value 1 (a line through N pixels of value 1 attenuates by e⁻⁴).
    Fan {
        /// Incident photons per detector bin (None: noise-free).
        dose: Option<f64>,
    },
}

impl CtBeam {
    /// The beam of `--geometry` and `--dose`, checked (invalid input: a dose without the fan
    /// beam, or one that is not a positive photon count).
    pub fn new(beam: Beam, dose: Option<f64>) -> Result<CtBeam> {
        match (beam, dose) {
            (Beam::Parallel, Some(_)) => Err(invalid("--dose needs --geometry fan")),
            (_, Some(i0)) if !(i0.is_finite() && i0 > 0.0) => {
                Err(invalid("--dose must be a positive photon count"))
            }
            (Beam::Parallel, None) => Ok(CtBeam::Parallel),
            (Beam::Fan, dose) => Ok(CtBeam::Fan { dose }),
        }
    }

    /// The size of the full view set the measured views are drawn from.
    pub fn full_views(self) -> usize {
        match self {
            CtBeam::Parallel => FULL_VIEWS,
            CtBeam::Fan { .. } => FAN_FULL_VIEWS,
        }
    }
}

/// The low-dose measurement of the noise-free line integrals `y` of an N × N image (see
/// [`CtBeam::Fan`]): the transmission noise of `simulate ct --dose`, [`CtNoise::apply`].
fn low_dose(y: &Array1<f32>, i0: f64, size: usize, seed: u64) -> Result<Array1<f32>> {
    let noise = CtNoise::Transmission {
        i0,
        electronic_sigma: 0.0,
        attenuation_scale: None,
    };
    Ok(noise.apply(&y.view(), size, seed)?.0)
}

/// Output of a score-based solver for a batch of measurements.
#[derive(Debug, Clone)]
pub struct Solved {
    /// Posterior mean per measurement, [H, W] in model units.
    pub images: Vec<Array2<f32>>,
    /// Score-network evaluations per posterior sample.
    pub nfe: usize,
}

/// A score-based inverse-problem solver for the two operator families of the benchmark
/// (implemented over `medsgm_recon::inverse::solve` by [`crate::eval::score::ModelSolver`]).
pub trait ScoreSolver: Sync {
    /// Side length of the images the prior models.
    fn image_size(&self) -> usize;
    /// Solves y_k = P(Λ) T x_k for every k with a CT projector T (CT, MAR).
    fn solve_ct(
        &self,
        op: &Subsampled<CtProjector>,
        ys: &[Array1<f32>],
        method: Method,
        params: &MethodParams,
    ) -> Result<Solved>;
    /// Solves y_k = P(Λ) F x_k for every k (MRI).
    fn solve_fft(
        &self,
        op: &Subsampled<RealInput<Fft2>>,
        ys: &[Array1<Complex32>],
        method: Method,
        params: &MethodParams,
    ) -> Result<Solved>;
}

/// The operator and data of one set-up.
pub enum Setup {
    /// Sparse-view CT.
    Ct {
        /// The projector over the measured views only (for FBP).
        sparse: CtProjector,
        /// A = P(Λ) T over the full view set.
        op: Subsampled<CtProjector>,
        /// Measurements per image.
        ys: Vec<Array1<f32>>,
    },
    /// Undersampled MRI.
    Mri {
        /// A = P(Λ) F.
        op: Subsampled<RealInput<Fft2>>,
        /// Measurements per image.
        ys: Vec<Array1<Complex32>>,
    },
    /// Metal-artefact removal of one image.
    Mar {
        /// A = P(Λ) R with Λ = ¬trace.
        op: Subsampled<CtProjector>,
        /// The corrupted full sinogram in model units.
        sinogram: Array2<f32>,
        /// The metal trace.
        trace: Array2<bool>,
        /// The measurement outside the trace.
        y: Array1<f32>,
    },
}

/// One benchmark set-up: a measurement setting applied to some test images.
pub struct Case {
    /// Human-readable setting, e.g. "23 views", "4x", "metal".
    pub label: String,
    /// Abscissa of the quality curves (views, acceleration; 0 for MAR).
    pub x: f64,
    /// Indices of the test images this case measures.
    pub images: Vec<usize>,
    /// Where metrics are taken, per image (`None`: the whole image).
    pub masks: Vec<Option<Array2<bool>>>,
    /// Operator and measurements.
    pub setup: Setup,
    lipschitz: OnceLock<f64>,
}

fn measure<T: Transform<In = f32>>(op: &Subsampled<T>, x: &Array2<f32>) -> Result<Array1<T::Out>> {
    op.forward(&x.view().into_dyn())
        .into_dimensionality::<Ix1>()
        .map_err(|e| anyhow!("measurement is not a vector: {e}"))
}

impl Case {
    fn new(label: String, x: f64, images: Vec<usize>, setup: Setup) -> Self {
        let masks = vec![None; images.len()];
        Self {
            label,
            x,
            images,
            masks,
            setup,
            lipschitz: OnceLock::new(),
        }
    }

    /// Sparse-view CT with `views` of the full view set for the images `idx`: parallel beam
    /// over the [`FULL_VIEWS`]-view grid, or fan beam over a [`FAN_FULL_VIEWS`]-view full scan
    /// (see [`CtBeam`]).
    pub fn ct(
        images: &[TestImage],
        idx: Vec<usize>,
        views: usize,
        beam: CtBeam,
        seed: u64,
    ) -> Result<Self> {
        let full_views = beam.full_views();
        if !(1..=full_views).contains(&views) {
            bail!("views must be in 1..={full_views}, got {views}");
        }
        let size = square_size(images, &idx)?;
        let (sparse, op): (CtProjector, Subsampled<CtProjector>) = match beam {
            CtBeam::Parallel => {
                let n_det = RadonGeometry::default_n_det(size);
                let measured = RadonGeometry::equispaced(size, views, n_det);
                let sparse = Radon::new(measured.clone())?;
                let dense = SparseViewCt::new(&measured, FULL_VIEWS)?.op;
                let op = Subsampled::new(dense.transform().clone().into(), dense.mask().clone())?;
                (sparse.into(), op)
            }
            CtBeam::Fan { .. } => {
                let full =
                    FanBeam::new(BENCH_FAN.geometry(size, None, None, None, FAN_FULL_VIEWS)?)?;
                let n_det = full.geometry().n_det;
                let mut mask = Array2::from_elem((FAN_FULL_VIEWS, n_det), false);
                for k in 0..views {
                    let row = ((k * FAN_FULL_VIEWS) as f64 / views as f64).round() as usize;
                    mask.row_mut(row).fill(true);
                }
                let mask = mask.into_dyn();
                let sparse = full
                    .restricted(&mask)
                    .ok_or_else(|| anyhow!("the fan view mask is not a set of whole views"))?;
                (sparse.into(), Subsampled::new(full.into(), mask)?)
            }
        };
        let ys = idx
            .iter()
            .map(|&i| {
                let y = measure(&op, &images[i].truth)?;
                match beam {
                    CtBeam::Fan { dose: Some(i0) } => {
                        low_dose(&y, i0, size, seed.wrapping_add(i as u64))
                    }
                    _ => Ok(y),
                }
            })
            .collect::<Result<_>>()?;
        let label = match beam {
            CtBeam::Parallel => format!("{views} views"),
            CtBeam::Fan { dose: None } => format!("fan {views}/{FAN_FULL_VIEWS} views"),
            CtBeam::Fan { dose: Some(i0) } => {
                format!("fan {views}/{FAN_FULL_VIEWS} views, I0 {i0:e}")
            }
        };
        Ok(Self::new(
            label,
            views as f64,
            idx,
            Setup::Ct { sparse, op, ys },
        ))
    }

    /// Undersampled MRI at acceleration `accel` for the images `idx`.
    pub fn mri(images: &[TestImage], idx: Vec<usize>, accel: f64) -> Result<Self> {
        let (h, w) = images
            .get(idx[0])
            .map(|im| im.truth.dim())
            .context("no images")?;
        if idx.iter().any(|&i| images[i].truth.dim() != (h, w)) {
            bail!("all MRI slices must have the same shape");
        }
        let scan = MriScan {
            pattern: MaskPattern::Equispaced,
            acceleration: accel,
            center_fraction: song_center_fraction(w, accel),
            sigma: None,
        };
        let mask = scan.mask(h, w, 0)?;
        let op = Subsampled::new(RealInput::new(Fft2::new(h, w)?), mask.into_dyn())?;
        let ys = idx
            .iter()
            .map(|&i| measure(&op, &images[i].truth))
            .collect::<Result<_>>()?;
        Ok(Self::new(
            format!("{accel}x"),
            accel,
            idx,
            Setup::Mri { op, ys },
        ))
    }

    /// Metal-artefact removal of image `i` (which must carry a metal source); `seed` drives
    /// the Poisson noise.
    pub fn mar(images: &[TestImage], i: usize, seed: u64) -> Result<Self> {
        let image = &images[i];
        let src = image
            .metal
            .as_ref()
            .with_context(|| format!("image {} has no implant", image.id))?;
        let size = square_size(images, &[i])?;
        let radon = Radon::new(RadonGeometry::equispaced(
            size,
            FULL_VIEWS,
            RadonGeometry::default_n_det(size),
        ))?;
        let projector = CtProjector::from(radon.clone());
        let sim = simulate_metal_artifacts(
            &projector,
            &src.tissue_hu.view(),
            &src.metal_fraction.view(),
            &MarSimParams::default(),
            seed,
        )?;
        // μ = μ_w (1 + HU/1000) and HU = lo + (hi − lo) u: with lo = −1000 the map from model
        // units u to μ is linear, μ = μ_w (hi − lo)/1000 · u.
        let per_unit = sim.mu_water_per_pixel * (CT_WINDOW.hi - CT_WINDOW.lo) / 1000.0;
        debug_assert_eq!(CT_WINDOW.lo, -1000.0);
        let sinogram = sim.sinogram.mapv(|p| p / per_unit);
        let metal = segment_metal(&src.hu_with_metal.view(), METAL_THRESHOLD_HU, 0)?;
        let trace = metal_trace(&radon, &dilate(&metal.view(), 1).view(), TRACE_THRESHOLD)?;
        let op = Subsampled::new(projector, mar_mask(&trace.view()).into_dyn())?;
        let y = op.gather(&sinogram.view().into_dyn());
        let mut case = Self::new(
            "metal".into(),
            0.0,
            vec![i],
            Setup::Mar {
                op,
                sinogram,
                trace,
                y,
            },
        );
        case.masks = vec![Some(metal.mapv(|m| !m))];
        Ok(case)
    }

    /// L = 1.01 ‖A‖² for FISTA (power iteration, once per case).
    fn lipschitz(&self) -> f64 {
        *self.lipschitz.get_or_init(|| {
            let norm = match &self.setup {
                Setup::Ct { op, .. } | Setup::Mar { op, .. } => operator_norm(op, 100, 1e-5, 0),
                Setup::Mri { op, .. } => operator_norm(op, 100, 1e-5, 0),
            };
            1.01 * norm * norm
        })
    }

    /// Reconstructs the `k`-th image of the case with a classical method (model units).
    pub fn classical(
        &self,
        method: Method,
        k: usize,
        params: &MethodParams,
    ) -> Result<Array2<f32>> {
        let fista = FistaTvParams {
            weight: params.tv_weight,
            iterations: params.fista_iterations,
            nonnegative: true,
            lipschitz: Some(self.lipschitz()),
            ..FistaTvParams::default()
        };
        let out = match (&self.setup, method) {
            (Setup::Ct { sparse, ys, .. }, Method::Fbp) => {
                let shape = sparse.range_shape();
                let sino = ys[k].view().into_shape_with_order((shape[0], shape[1]))?;
                sparse.fbp(&sino, Filter::RamLak)
            }
            (Setup::Ct { sparse, ys, .. }, Method::FistaTv) => {
                // P(Λ)T = T over the measured views: the same problem at the cost of the
                // measured views only (L from the full operator, the same norm)
                let shape = sparse.range_shape();
                let sino = ys[k].view().into_shape_with_order((shape[0], shape[1]))?;
                fista_tv(sparse, &sino.into_dyn(), &fista, None, |_, _| {})?
            }
            (Setup::Mri { op, ys }, Method::ZeroFilled) => {
                zero_filled(op, &ys[k].view(), ComplexPart::Real)?
            }
            (Setup::Mri { op, ys }, Method::FistaTv) => {
                fista_tv(op, &ys[k].view().into_dyn(), &fista, None, |_, _| {})?
            }
            (Setup::Mar { op, sinogram, .. }, Method::Fbp) => {
                op.transform().fbp(&sinogram.view(), Filter::RamLak)
            }
            (
                Setup::Mar {
                    op,
                    sinogram,
                    trace,
                    ..
                },
                Method::Li,
            ) => li(op.transform(), &sinogram.view(), &trace.view())?,
            (Setup::Mar { op, y, .. }, Method::FistaTv) => {
                fista_tv(op, &y.view().into_dyn(), &fista, None, |_, _| {})?
            }
            (_, m) => bail!("{m} is not a classical method for the {} case", self.label),
        };
        Ok(out)
    }

    /// Reconstructs every image of the case as one batch with a score-based method.
    pub fn score(
        &self,
        solver: &dyn ScoreSolver,
        method: Method,
        params: &MethodParams,
    ) -> Result<Solved> {
        match &self.setup {
            Setup::Ct { op, ys, .. } => solver.solve_ct(op, ys, method, params),
            Setup::Mar { op, y, .. } => {
                solver.solve_ct(op, std::slice::from_ref(y), method, params)
            }
            Setup::Mri { op, ys } => solver.solve_fft(op, ys, method, params),
        }
    }
}

/// The common side length of the square images `idx`.
fn square_size(images: &[TestImage], idx: &[usize]) -> Result<usize> {
    let first = images
        .get(*idx.first().context("no images")?)
        .context("image index")?;
    let (h, w) = first.truth.dim();
    if h != w || idx.iter().any(|&i| images[i].truth.dim() != (h, w)) {
        bail!("CT images must be square and of one size");
    }
    Ok(h)
}
