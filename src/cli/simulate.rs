//! `medsgm simulate {ct,mri,mar}`: simulate a measurement from an image and write it as NPY with
//! its JSON sidecar (see `docs/measurement-format.md`).

use crate::cli::args::{validate_output_path, ImageInput, MemoryArgs};
use crate::cli::{invalid, InputContext};
use crate::io::dicom::padding::AIR_HU;
use crate::io::guard::refuse_overwriting_inputs;
use crate::io::measurement::{
    companion_name, measurement_outputs, MAX_KSPACE_SIDE, PIXEL_SPACING_RANGE_MM,
};
use crate::io::measurement::{
    save_measurement, Geometry, Mask, Measurement, MeasurementData, Noise, Provenance, Sidecar,
};
use crate::io::memory::{bytes_of, F32};
use crate::task::ct_scan::{CtNoise, CtScan, FanSpec};
use crate::task::mri_scan::{MaskPattern, MriScan};
use crate::task::Problem;
use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use medsgm_operators::mar_sim::{simulate_metal_artifacts, MarSimParams};
use medsgm_operators::metal::{
    dilate, mar_mask, metal_trace, segment_metal, METAL_THRESHOLD_HU, TRACE_THRESHOLD,
};
use medsgm_operators::phantom::anatomical::MetalMaterial;
use medsgm_operators::radon::RadonGeometry;
use medsgm_operators::{DetectorKind, FanGeometry};
use ndarray::Array2;
use std::path::PathBuf;

/// Arguments of `medsgm simulate`.
#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// The inverse problem.
    #[command(subcommand)]
    pub problem: SimProblem,
}

/// Which measurement to simulate.
#[derive(Debug, Clone, Subcommand)]
pub enum SimProblem {
    /// Sparse-view parallel-beam CT sinogram.
    Ct(CtSimArgs),
    /// Undersampled Cartesian single-coil k-space.
    Mri(MriSimArgs),
    /// Full sinogram of an image with metal, with the metal trace masked out.
    Mar(MarSimArgs),
}

/// Input, output and seed shared by all simulations.
#[derive(Debug, Clone, Args)]
pub struct SimCommon {
    /// The image to measure.
    #[command(flatten)]
    pub image: ImageInput,
    /// Measurement output (.npy); the sidecar goes to the same name with .json.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Seed of every random choice (noise, random masks).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// CT, MRI: the image's in-plane pixel spacing in mm, recorded in the sidecar so that score
    /// methods reconstruct on their prior's spacing (default: a DICOM input's PixelSpacing;
    /// none for PNG/NPY inputs).
    #[arg(long)]
    pub pixel_spacing: Option<f32>,
    /// Memory budget (checked before the measurement is computed).
    #[command(flatten)]
    pub memory: MemoryArgs,
}

impl SimCommon {
    fn validate(&self) -> Result<()> {
        if let Some(mm) = self.pixel_spacing {
            let (lo, hi) = PIXEL_SPACING_RANGE_MM;
            if !(mm.is_finite() && (lo..=hi).contains(&mm)) {
                return Err(invalid(format!(
                    "--pixel-spacing must be in [{lo}, {hi}] mm, got {mm}"
                )));
            }
        }
        if self.out.extension().is_none_or(|e| e != "npy") {
            return Err(invalid(format!(
                "measurement output {} must end in .npy",
                self.out.display()
            )));
        }
        // every file the measurement writes (data, sidecar, companions), before any is written
        for out in measurement_outputs(&self.out) {
            validate_output_path(&out, false)?;
        }
        refuse_overwriting_inputs(
            &measurement_outputs(&self.out),
            std::slice::from_ref(&self.image.input),
        )
        .map_err(invalid)
    }
}

/// Parallel-beam geometry options.
#[derive(Debug, Clone, Args)]
pub struct CtGeometryArgs {
    /// Number of measured views, equispaced over [0°, 180°) (default: 23 for ct, 180 for mar).
    #[arg(long, conflicts_with = "angles")]
    pub views: Option<usize>,
    /// Explicit measured view angles in degrees (comma-separated).
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    pub angles: Option<Vec<f32>>,
    /// Size of the full view set (equispaced); the measured views are the --views nearest
    /// subset of it. Default: the measured views are the full set.
    #[arg(long, conflicts_with = "angles")]
    pub full_views: Option<usize>,
    /// Detector bins (default ⌈√2·N⌉).
    #[arg(long)]
    pub n_det: Option<usize>,
    /// Detector bin width in pixels (default 1; fan beam: the pitch along the detector that
    /// makes unit bins at the isocentre, D/R).
    #[arg(long)]
    pub det_spacing: Option<f32>,
}

impl CtGeometryArgs {
    /// The parallel-beam bin width (default 1 pixel).
    fn parallel_det_spacing(&self) -> f32 {
        self.det_spacing.unwrap_or(1.0)
    }
}

/// Beam geometry of a CT simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Beam {
    /// Parallel beam, views over [0°, 180°).
    Parallel,
    /// Fan beam (a point source and a curved or flat detector), source angles over 360° or a
    /// short scan.
    Fan,
}

/// Fan-beam options of `simulate ct --geometry fan` (lengths in pixels of the image).
#[derive(Debug, Clone, Args)]
pub struct FanArgs {
    /// Beam geometry.
    #[arg(long = "geometry", value_enum, default_value = "parallel")]
    pub beam: Beam,
    /// Fan beam: source-to-isocentre distance R in pixels (default 2N).
    #[arg(long)]
    pub source_distance: Option<f32>,
    /// Fan beam: source-to-detector distance D in pixels (default 2R).
    #[arg(long)]
    pub detector_distance: Option<f32>,
    /// Fan beam: detector shape.
    #[arg(long, value_enum, default_value = "equiangular")]
    pub detector: FanDetector,
    /// Fan beam: detector offset in bins (0.25: the quarter-detector shift).
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    pub det_offset: f32,
    /// Fan beam: a short scan (source angles over 180° plus the fan angle) instead of 360°.
    #[arg(long)]
    pub short_scan: bool,
}

/// Fan-beam detector shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FanDetector {
    /// Curved, equal angles between bins (third-generation clinical scanners).
    Equiangular,
    /// Flat, equal spacing (C-arms, benchtop systems).
    Flat,
}

impl FanArgs {
    /// Checks that fan-only options come with `--geometry fan`.
    pub fn validate(&self) -> Result<()> {
        if self.beam == Beam::Parallel {
            let fan_only = [
                ("--source-distance", self.source_distance.is_some()),
                ("--detector-distance", self.detector_distance.is_some()),
                ("--det-offset", self.det_offset != 0.0),
                ("--short-scan", self.short_scan),
            ];
            if let Some((flag, _)) = fan_only.iter().find(|(_, given)| *given) {
                return Err(invalid(format!("{flag} needs --geometry fan")));
            }
        }
        Ok(())
    }

    /// The fan-beam settings of these flags.
    pub fn spec(&self) -> FanSpec {
        FanSpec {
            source_distance: self.source_distance,
            detector_distance: self.detector_distance,
            detector: match self.detector {
                FanDetector::Equiangular => DetectorKind::Equiangular,
                FanDetector::Flat => DetectorKind::Flat,
            },
            det_offset: self.det_offset,
            short_scan: self.short_scan,
        }
    }

    /// The fan geometry over all source angles of `view_count` views (see
    /// [`FanSpec::geometry`]).
    pub fn geometry(
        &self,
        size: usize,
        g: &CtGeometryArgs,
        view_count: usize,
    ) -> Result<FanGeometry> {
        self.spec().geometry(
            size,
            g.n_det,
            g.det_spacing,
            g.angles.as_deref(),
            view_count,
        )
    }
}

/// Sinogram noise options.
#[derive(Debug, Clone, Args)]
pub struct CtNoiseArgs {
    /// Poisson transmission noise (pre-log counts, then the log) with I0 incident photons per
    /// bin: the dose.
    #[arg(long, visible_alias = "dose", conflicts_with = "sigma")]
    pub i0: Option<f64>,
    /// With --i0: electronic (readout) noise, Gaussian with this standard deviation in counts,
    /// added to the counts before the log.
    #[arg(long, requires = "i0", default_value_t = 0.0)]
    pub electronic_sigma: f64,
    /// With --i0: attenuation per pixel length of image value 1 (default 4/N, i.e. a line
    /// through a uniform image of value 1 attenuates by e⁻⁴).
    #[arg(long, requires = "i0")]
    pub attenuation_scale: Option<f32>,
    /// Additive Gaussian noise of standard deviation SIGMA on the sinogram.
    #[arg(long)]
    pub sigma: Option<f32>,
}

/// Arguments of `medsgm simulate ct`.
#[derive(Debug, Clone, Args)]
pub struct CtSimArgs {
    /// Input, output, seed.
    #[command(flatten)]
    pub common: SimCommon,
    /// Geometry.
    #[command(flatten)]
    pub geometry: CtGeometryArgs,
    /// Parallel or fan beam.
    #[command(flatten)]
    pub fan: FanArgs,
    /// Noise.
    #[command(flatten)]
    pub noise: CtNoiseArgs,
}

/// Arguments of `medsgm simulate mri`.
#[derive(Debug, Clone, Args)]
pub struct MriSimArgs {
    /// Input, output, seed.
    #[command(flatten)]
    pub common: SimCommon,
    /// Acceleration factor R (keep about 1/R of the columns).
    #[arg(long, default_value_t = 4.0)]
    pub acceleration: f64,
    /// Fraction of fully sampled central columns (default 0.08).
    #[arg(long, default_value_t = 0.08)]
    pub center_fraction: f64,
    /// Column pattern.
    #[arg(long, value_enum, default_value = "equispaced")]
    pub mask: MaskPattern,
    /// Complex Gaussian noise, standard deviation per real/imaginary part.
    #[arg(long)]
    pub sigma: Option<f32>,
}

/// Arguments of `medsgm simulate mar`.
#[derive(Debug, Clone, Args)]
pub struct MarSimArgs {
    /// Input (an image in HU containing metal), output, seed.
    #[command(flatten)]
    pub common: SimCommon,
    /// Geometry (all views are measured; the mask removes the metal trace).
    #[command(flatten)]
    pub geometry: CtGeometryArgs,
    /// Parallel or fan beam.
    #[command(flatten)]
    pub fan: FanArgs,
    /// Incident photons per bin of the Poisson noise.
    #[arg(long, default_value_t = 2e5)]
    pub i0: f64,
    /// Physical width of the image square in mm.
    #[arg(long, default_value_t = 400.0)]
    pub fov_mm: f32,
    /// Implant material (energy dependence of the metal).
    #[arg(long, value_enum, default_value = "titanium")]
    pub metal_material: Material,
}

/// Implant materials of the MAR simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Material {
    /// Titanium alloy.
    Titanium,
    /// Stainless steel / CoCr.
    Steel,
}

/// The full and the measured view sets of a CT geometry: (full angles in degrees, indices of
/// the measured views in it).
fn view_sets(g: &CtGeometryArgs, default_views: usize) -> (Vec<f32>, Vec<usize>) {
    if let Some(angles) = &g.angles {
        return (angles.clone(), (0..angles.len()).collect());
    }
    let views = g.views.unwrap_or(default_views);
    let full = g.full_views.unwrap_or(views);
    let angles = (0..full).map(|k| k as f32 * 180.0 / full as f32).collect();
    // The measured views: the equispaced subset nearest to k·full/views (all distinct since
    // full ≥ views).
    let kept = (0..views)
        .map(|k| ((k * full) as f64 / views as f64).round() as usize)
        .collect();
    (angles, kept)
}

/// Detector bins: --n-det or ⌈√2·N⌉.
fn detector_bins(g: &CtGeometryArgs, size: usize) -> usize {
    g.n_det
        .unwrap_or_else(|| RadonGeometry::default_n_det(size))
}

/// The image, checked to be square (parallel-beam CT reconstructs N×N images), whether it is
/// in HU (a DICOM CT slice) and its pixel spacing (`--pixel-spacing`, else the DICOM header's).
/// DICOM padding (Pixel Padding Value: outside the field of view) becomes air, μ = 0.
fn square_image(common: &SimCommon) -> Result<(Array2<f32>, bool, Option<f32>)> {
    let (mut image, source) = common.image.read_with_source()?;
    let spacing = common
        .pixel_spacing
        .or_else(|| source.as_ref().and_then(|s| s.in_plane_spacing_mm()));
    let hu = source.as_ref().is_some_and(|s| s.is_hu());
    if let Some(p) = source.as_ref().filter(|_| hu).and_then(|s| s.padding()) {
        image.mapv_inplace(|v| if p.contains(v) { AIR_HU } else { v });
    }
    check_image_size(common, &image, MAX_CT_SIZE)?;
    if image.nrows() != image.ncols() {
        return Err(invalid(format!(
            "{} is {}x{}; CT needs a square image",
            common.image.input.display(),
            image.nrows(),
            image.ncols()
        )));
    }
    Ok((image, hu, spacing))
}

/// The f32 sinogram planes `simulate ct` holds at once: the clean sinogram and the written
/// data, and with noise the physical, noisy and rescaled copies.
fn sinogram_planes(c: &CtSimArgs) -> u64 {
    if c.noise.i0.is_some() || c.noise.sigma.is_some() {
        5
    } else {
        2
    }
}

/// Bytes of `planes` f32 sinograms of `views` × `bins`.
fn sinogram_bytes(views: usize, bins: usize, planes: u64) -> u64 {
    bytes_of(&[(
        (views as u64)
            .saturating_mul(bins as u64)
            .saturating_mul(planes),
        F32,
    )])
}

/// Fails naming the input and the scan (invalid input) when simulating a `size`² CT image
/// with `views` × `bins` and `sinogram_bytes` of sinogram buffers exceeds the memory budget
/// (the image planes: the image, its HU/attenuation copies and the projector's padded row and
/// column copies).
fn check_memory(
    common: &SimCommon,
    (size, views, bins): (usize, usize, usize),
    sinogram_bytes: u64,
) -> Result<()> {
    let image = bytes_of(&[(
        (size as u64 + 3)
            .saturating_mul(size as u64)
            .saturating_mul(8),
        F32,
    )]);
    common.memory.check(
        &format!(
            "{} ({views} views × {bins} bins)",
            common.image.input.display()
        ),
        image.saturating_add(sinogram_bytes),
    )
}

/// Largest CT image side (the Radon operator's bound).
const MAX_CT_SIZE: usize = 4096;

/// Fails naming the input when the image has a side below 2 or above `max`.
fn check_image_size(common: &SimCommon, image: &Array2<f32>, max: usize) -> Result<()> {
    let (h, w) = image.dim();
    if h < 2 || w < 2 || h > max || w > max {
        return Err(invalid(format!(
            "{} is {h}x{w}; a simulated measurement needs sides of 2 to {max} pixels",
            common.image.input.display()
        )));
    }
    Ok(())
}

/// Fails naming the input when the simulated data overflow (non-finite values).
fn check_finite_data(common: &SimCommon, data: &MeasurementData) -> Result<()> {
    let finite = match data {
        MeasurementData::Sinogram(s) => s.iter().all(|v| v.is_finite()),
        MeasurementData::KSpace(k) => k.iter().all(|v| v.re.is_finite() && v.im.is_finite()),
    };
    if finite {
        Ok(())
    } else {
        Err(invalid(format!(
            "{}: its simulated measurement overflows (values too large for float32)",
            common.image.input.display()
        )))
    }
}

/// Sparse-view sinogram y = P(Λ) T x of a parallel- or fan-beam T (+ pre-log Poisson and
/// electronic noise, or Gaussian noise).
fn simulate_ct(c: &CtSimArgs) -> Result<()> {
    let (image, hu, spacing) = square_image(&c.common)?;
    let size = image.nrows();
    let (angles, kept) = view_sets(&c.geometry, 23);
    let geometry = match c.fan.beam {
        Beam::Parallel => {
            let n_det = detector_bins(&c.geometry, size);
            let views = angles.len();
            let g = Geometry::ParallelBeam {
                size,
                angles_deg: angles,
                n_det,
                det_spacing: c.geometry.parallel_det_spacing(),
            };
            g.validate_ct().invalid_input()?;
            let sino = sinogram_bytes(views, n_det, sinogram_planes(c));
            check_memory(&c.common, (size, views, n_det), sino)?;
            g
        }
        Beam::Fan => {
            let fan = c.fan.geometry(size, &c.geometry, angles.len())?;
            // the sinogram planes and the three per-ray tables of the measured views
            let sino = sinogram_bytes(fan.n_views(), fan.n_det, sinogram_planes(c))
                .saturating_add(sinogram_bytes(kept.len(), fan.n_det, 3));
            check_memory(&c.common, (size, fan.n_views(), fan.n_det), sino)?;
            Geometry::fan_beam(&fan)
        }
    };
    let scan = CtScan {
        geometry,
        kept,
        noise: match (c.noise.i0, c.noise.sigma) {
            (Some(i0), _) => CtNoise::Transmission {
                i0,
                electronic_sigma: c.noise.electronic_sigma,
                attenuation_scale: c.noise.attenuation_scale,
            },
            (None, Some(sigma)) => CtNoise::Gaussian { sigma },
            (None, None) => CtNoise::None,
        },
    };
    let mut meas = scan.simulate(&image, c.common.seed, hu).invalid_input()?;
    meas.sidecar.provenance = Some(provenance(&c.common));
    meas.sidecar.pixel_spacing_mm = spacing;
    check_finite_data(&c.common, &meas.data)?;
    save_measurement(&c.common.out, &meas)?;
    report(&c.common.out, &meas);
    Ok(())
}

/// Full-view metal-corrupted sinogram of an HU image, Λ = complement of the metal trace.
fn simulate_mar(m: &MarSimArgs) -> Result<()> {
    let (hu, _, _) = square_image(&m.common)?;
    let size = hu.nrows();
    if m.geometry.full_views.is_some() {
        return Err(invalid(
            "--full-views does not apply to mar (all views are measured)",
        ));
    }
    let metal = segment_metal(&hu.view(), METAL_THRESHOLD_HU, 0).invalid_input()?;
    if !metal.iter().any(|&v| v) {
        return Err(invalid(format!(
            "{} has no metal: no pixel above {METAL_THRESHOLD_HU} HU (mar needs an HU image; for PNG pass --in-window LOW,HIGH)",
            m.common.image.input.display()
        )));
    }
    let (angles, _) = view_sets(&m.geometry, 180);
    let geometry = match m.fan.beam {
        Beam::Parallel => Geometry::ParallelBeam {
            size,
            n_det: detector_bins(&m.geometry, size),
            angles_deg: angles,
            det_spacing: m.geometry.parallel_det_spacing(),
        },
        Beam::Fan => {
            let views = angles.len();
            Geometry::fan_beam(&m.fan.geometry(size, &m.geometry, views)?)
        }
    };
    geometry.validate_ct().invalid_input()?;
    let (views, n_det) = match &geometry {
        Geometry::ParallelBeam {
            angles_deg, n_det, ..
        }
        | Geometry::FanBeam {
            angles_deg, n_det, ..
        } => (angles_deg.len(), *n_det),
        Geometry::Cartesian { .. } => return Err(invalid("mar needs a CT geometry")),
    };
    // the metal simulation's sinogram planes over the sub-binned detector, and the parallel
    // adjoint's padded views
    let reach = size as f64 * std::f64::consts::FRAC_1_SQRT_2
        / f64::from(m.geometry.parallel_det_spacing());
    let padded = n_det.saturating_add(2 * (reach.min(1e12) as usize).saturating_add(16));
    let fine = n_det.saturating_mul(MarSimParams::default().detector_oversampling);
    check_memory(
        &m.common,
        (size, views, n_det),
        sinogram_bytes(views, padded.max(fine), 12),
    )?;
    let projector = crate::task::ct_scan::projector(&geometry, None).invalid_input()?;
    let params = MarSimParams {
        fov_mm: m.fov_mm,
        i0: m.i0,
        metal_material: match m.metal_material {
            Material::Titanium => MetalMaterial::Titanium,
            Material::Steel => MetalMaterial::Steel,
        },
        ..MarSimParams::default()
    };
    // A user image carries the metal at full pixel coverage: c = 1 on the mask, and the
    // tissue value under it is irrelevant (weight 1 − c = 0).
    let metal_fraction = metal.mapv(|v| if v { 1.0f32 } else { 0.0 });
    let sim = simulate_metal_artifacts(
        &projector,
        &hu.view(),
        &metal_fraction.view(),
        &params,
        m.common.seed,
    )
    .invalid_input()?;
    // The trace of the metal dilated by one pixel (the 3×3 max-pool of the reference code).
    let trace = metal_trace(
        &projector,
        &dilate(&metal.view(), 1).view(),
        TRACE_THRESHOLD,
    )?;
    let data = MeasurementData::Sinogram(sim.sinogram);
    let mut sidecar = Sidecar::new(
        Problem::Mar,
        &data,
        geometry,
        Mask::Sinogram {
            file: companion_name(&m.common.out, "mask"),
        },
        Noise::PolychromaticMetal {
            i0: m.i0,
            fov_mm: m.fov_mm,
            metal_material: m
                .metal_material
                .to_possible_value()
                .map(|v| v.get_name().to_owned())
                .unwrap_or_default(),
            seed: m.common.seed,
        },
        "line integral of linear attenuation (mu per pixel length)",
    );
    sidecar.mu_water_per_pixel = Some(sim.mu_water_per_pixel);
    sidecar.metal_mask = Some(companion_name(&m.common.out, "metal"));
    sidecar.provenance = Some(provenance(&m.common));
    let meas = Measurement {
        sidecar,
        data,
        sinogram_mask: Some(mar_mask(&trace.view())),
        metal_mask: Some(metal),
    };
    check_finite_data(&m.common, &meas.data)?;
    save_measurement(&m.common.out, &meas)?;
    report(&m.common.out, &meas);
    Ok(())
}

/// The provenance record of a simulation.
fn provenance(common: &SimCommon) -> Provenance {
    Provenance {
        source: common.image.input.display().to_string(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
    }
}

/// Prints what was written.
fn report(out: &std::path::Path, m: &Measurement) {
    println!(
        "wrote {} ({} {} {:?}) and {}",
        out.display(),
        m.sidecar.kind,
        m.sidecar.dtype,
        m.sidecar.shape,
        crate::io::measurement::sidecar_path(out).display()
    );
}

/// k-space y = P(Λ) F x (+ complex Gaussian noise), stored zero-filled on the full grid.
fn simulate_mri(m: &MriSimArgs) -> Result<()> {
    let (image, source) = m.common.image.read_with_source()?;
    let spacing = m
        .common
        .pixel_spacing
        .or_else(|| source.as_ref().and_then(|s| s.in_plane_spacing_mm()));
    check_image_size(&m.common, &image, MAX_KSPACE_SIDE)?;
    let (h, w) = image.dim();
    // complex k-space planes: full, noisy, masked, the FFT's buffers
    m.common.memory.check(
        &m.common.image.input.display().to_string(),
        bytes_of(&[
            ((h as u64).saturating_mul(w as u64).saturating_mul(6), 8),
            ((h as u64).saturating_mul(w as u64).saturating_mul(3), F32),
        ]),
    )?;
    let scan = MriScan {
        pattern: m.mask,
        acceleration: m.acceleration,
        center_fraction: m.center_fraction,
        sigma: m.sigma,
    };
    let mut meas = scan.simulate(&image, m.common.seed).invalid_input()?;
    meas.sidecar.provenance = Some(provenance(&m.common));
    meas.sidecar.pixel_spacing_mm = spacing;
    check_finite_data(&m.common, &meas.data)?;
    save_measurement(&m.common.out, &meas)?;
    report(&m.common.out, &meas);
    Ok(())
}

fn validate_geometry(g: &CtGeometryArgs) -> Result<()> {
    if let Some(angles) = &g.angles {
        if angles.is_empty() || angles.iter().any(|a| !a.is_finite()) {
            return Err(invalid(
                "--angles must be a non-empty list of finite degrees",
            ));
        }
    } else if g.views.is_some_and(|v| !(1..=100_000).contains(&v)) {
        return Err(invalid("--views must be in 1..=100000"));
    }
    if let Some(f) = g.full_views {
        let v = g.views.unwrap_or(23);
        if !(v..=100_000).contains(&f) {
            return Err(invalid(format!(
                "--full-views {f} must be in --views ({v})..=100000"
            )));
        }
    }
    if g.n_det == Some(0) {
        return Err(invalid("--n-det must be positive"));
    }
    if g.det_spacing.is_some_and(|s| !(s.is_finite() && s > 0.0)) {
        return Err(invalid("--det-spacing must be positive"));
    }
    Ok(())
}

/// Runs `medsgm simulate`.
pub fn run(a: &SimulateArgs) -> Result<()> {
    match &a.problem {
        SimProblem::Ct(c) => {
            c.common.validate()?;
            validate_geometry(&c.geometry)?;
            c.fan.validate()?;
            if !(c.noise.electronic_sigma.is_finite() && c.noise.electronic_sigma >= 0.0) {
                return Err(invalid(
                    "--electronic-sigma must be finite and non-negative",
                ));
            }
            if let Some(i0) = c.noise.i0 {
                if !(i0.is_finite() && i0 > 0.0) {
                    return Err(invalid("--i0 (--dose) must be a positive photon count"));
                }
            }
            if c.noise
                .attenuation_scale
                .is_some_and(|s| !(s.is_finite() && s > 0.0))
            {
                return Err(invalid("--attenuation-scale must be positive"));
            }
            if c.noise.sigma.is_some_and(|s| !(s.is_finite() && s >= 0.0)) {
                return Err(invalid("--sigma must be non-negative"));
            }
            simulate_ct(c)
        }
        SimProblem::Mri(m) => {
            m.common.validate()?;
            if !(m.acceleration.is_finite() && m.acceleration >= 1.0) {
                return Err(invalid("--acceleration must be at least 1"));
            }
            if !(0.0..1.0).contains(&m.center_fraction) {
                return Err(invalid("--center-fraction must be in [0, 1)"));
            }
            if m.sigma.is_some_and(|s| !(s.is_finite() && s >= 0.0)) {
                return Err(invalid("--sigma must be non-negative"));
            }
            simulate_mri(m)
        }
        SimProblem::Mar(m) => {
            m.common.validate()?;
            m.fan.validate()?;
            if m.common.pixel_spacing.is_some() {
                return Err(invalid(
                    "--pixel-spacing applies to ct (mar takes the field of view, --fov-mm)",
                ));
            }
            validate_geometry(&m.geometry)?;
            if !(m.i0.is_finite() && m.i0 > 0.0) {
                return Err(invalid("--i0 (--dose) must be a positive photon count"));
            }
            if !(m.fov_mm.is_finite() && m.fov_mm > 0.0) {
                return Err(invalid("--fov-mm must be positive"));
            }
            simulate_mar(m)
        }
    }
}
