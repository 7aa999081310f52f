//! `medsgm simulate {ct,mri,mar}`: simulate a measurement from an image and write it as NPY with
//! its JSON sidecar (see `docs/measurement-format.md`); the flags become a
//! [`crate::task::simulate::Acquisition`], checked and simulated there.

use crate::cli::args::{ImageInput, MemoryArgs};
use crate::task::ct_scan::{Beam, CtNoise, FanSpec};
use crate::task::mri_scan::{MaskPattern, MriScan};
use crate::task::simulate::{Acquisition, CtViews, MarSpec, Material, SimTarget};
use anyhow::Result;
use clap::{Args, Subcommand};
use medsgm_operators::DetectorKind;
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
    /// The simulation's input, output, seed, memory budget and pixel spacing.
    fn target(&self) -> SimTarget {
        SimTarget {
            input: self.image.input.clone(),
            out: self.out.clone(),
            seed: self.seed,
            budget: self.memory.budget(),
            pixel_spacing: self.pixel_spacing,
        }
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
    /// The view set and detector of these flags.
    fn views(&self) -> CtViews {
        CtViews {
            views: self.views,
            angles: self.angles.clone(),
            full_views: self.full_views,
            n_det: self.n_det,
            det_spacing: self.det_spacing,
        }
    }
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FanDetector {
    /// Curved, equal angles between bins (third-generation clinical scanners).
    Equiangular,
    /// Flat, equal spacing (C-arms, benchtop systems).
    Flat,
}

impl FanArgs {
    /// The fan-beam settings of these flags (checked against `--geometry` by
    /// [`FanSpec::for_beam`]).
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

impl CtNoiseArgs {
    /// The noise model of these flags.
    fn noise(&self) -> CtNoise {
        match (self.i0, self.sigma) {
            (Some(i0), _) => CtNoise::Transmission {
                i0,
                electronic_sigma: self.electronic_sigma,
                attenuation_scale: self.attenuation_scale,
            },
            (None, Some(sigma)) => CtNoise::Gaussian { sigma },
            (None, None) => CtNoise::None,
        }
    }
}

impl MriSimArgs {
    /// The acquisition of these flags.
    fn scan(&self) -> MriScan {
        MriScan {
            pattern: self.mask,
            acceleration: self.acceleration,
            center_fraction: self.center_fraction,
            sigma: self.sigma,
        }
    }
}

impl MarSimArgs {
    /// The metal simulation's settings of these flags.
    fn spec(&self) -> MarSpec {
        MarSpec {
            i0: self.i0,
            fov_mm: self.fov_mm,
            metal_material: self.metal_material,
        }
    }
}

/// Runs `medsgm simulate`.
pub fn run(a: &SimulateArgs) -> Result<()> {
    let (common, acquisition) = match &a.problem {
        SimProblem::Ct(c) => (
            &c.common,
            Acquisition::Ct {
                views: c.geometry.views(),
                beam: c.fan.beam,
                fan: c.fan.spec(),
                noise: c.noise.noise(),
            },
        ),
        SimProblem::Mri(m) => (&m.common, Acquisition::Mri(m.scan())),
        SimProblem::Mar(m) => (
            &m.common,
            Acquisition::Mar {
                views: m.geometry.views(),
                beam: m.fan.beam,
                fan: m.fan.spec(),
                spec: m.spec(),
            },
        ),
    };
    let target = common.target();
    acquisition.validate(&target)?;
    let m = acquisition.simulate(&target, common.image.read_with_source()?)?;
    println!("{}", target.report(&m));
    Ok(())
}
