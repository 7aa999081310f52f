//! `medsgm simulate {ct,mri,mar}`: simulate a measurement from an image and write it as NPY with
//! its JSON sidecar (see `docs/measurement-format.md`).

use crate::cli::args::{not_available, validate_output_path, ImageInput};
use crate::cli::{invalid, InputContext};
use crate::io::measurement::{
    save_measurement, Geometry, Kind, Mask, MaskGenerator, Measurement, MeasurementData, Noise,
    Provenance, Sidecar,
};
use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use medsgm_operators::{kspace_mask, noise, Fft2, LinearOperator, RealInput};
use ndarray::Ix2;
use num_complex::Complex32;
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
}

impl SimCommon {
    fn validate(&self) -> Result<()> {
        if !self.out.extension().is_some_and(|e| e == "npy") {
            return Err(invalid(format!(
                "measurement output {} must end in .npy",
                self.out.display()
            )));
        }
        validate_output_path(&self.out, false)
    }
}

/// Parallel-beam geometry options.
#[derive(Debug, Clone, Args)]
pub struct CtGeometryArgs {
    /// Number of measured views, equispaced over [0°, 180°).
    #[arg(long, default_value_t = 23, conflicts_with = "angles")]
    pub views: usize,
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
    /// Detector bin width in pixels.
    #[arg(long, default_value_t = 1.0)]
    pub det_spacing: f32,
}

/// Sinogram noise options.
#[derive(Debug, Clone, Args)]
pub struct CtNoiseArgs {
    /// Poisson transmission noise with I0 incident photons per bin.
    #[arg(long, conflicts_with = "sigma")]
    pub i0: Option<f64>,
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
    /// Noise.
    #[command(flatten)]
    pub noise: CtNoiseArgs,
}

/// k-space column mask patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MaskPattern {
    /// Equispaced columns plus a fully sampled centre (fastMRI).
    Equispaced,
    /// Uniformly random columns plus a fully sampled centre (fastMRI).
    Random,
    /// Random columns with density decaying away from the centre.
    VariableDensity,
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
    /// Incident photons per bin of the Poisson noise.
    #[arg(long, default_value_t = 1e6)]
    pub i0: f64,
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
    let image = m.common.image.read()?;
    let (h, w) = image.dim();
    let seed = m.common.seed;
    let (acc, cf) = (m.acceleration, m.center_fraction);
    let mask = match m.mask {
        MaskPattern::Equispaced => kspace_mask::equispaced(h, w, acc, cf),
        MaskPattern::Random => kspace_mask::random(h, w, acc, cf, seed),
        MaskPattern::VariableDensity => kspace_mask::variable_density(h, w, acc, cf, seed),
    }
    .invalid_input()?;
    let fft = RealInput::new(Fft2::new(h, w).invalid_input()?);
    let full = fft
        .forward(&image.view().into_dyn())
        .into_dimensionality::<Ix2>()?;
    let (mut kspace, noise_model) = match m.sigma {
        Some(sigma) => (
            noise::complex_gaussian(&full.view(), sigma, seed)?,
            Noise::ComplexGaussian { sigma, seed },
        ),
        None => (full, Noise::None),
    };
    kspace.zip_mut_with(&mask, |k, &keep| {
        if !keep {
            *k = Complex32::new(0.0, 0.0)
        }
    });
    let data = MeasurementData::KSpace(kspace);
    let mut sidecar = Sidecar::new(
        Kind::Mri,
        &data,
        Geometry::Cartesian { h, w },
        Mask::Columns {
            kept: kspace_mask::kept_columns(&mask),
            generator: Some(MaskGenerator {
                pattern: m
                    .mask
                    .to_possible_value()
                    .map(|v| v.get_name().to_owned())
                    .unwrap_or_default(),
                acceleration: acc as f32,
                center_fraction: cf as f32,
                seed: (m.mask != MaskPattern::Equispaced).then_some(seed),
            }),
        },
        noise_model,
        "k-space of the unitary centred 2-D FFT of the image (image units)",
    );
    sidecar.provenance = Some(provenance(&m.common));
    let meas = Measurement {
        sidecar,
        data,
        sinogram_mask: None,
        metal_mask: None,
    };
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
    } else if !(1..=100_000).contains(&g.views) {
        return Err(invalid("--views must be in 1..=100000"));
    }
    if let Some(f) = g.full_views {
        if f < g.views {
            return Err(invalid(format!(
                "--full-views {f} must be at least --views {}",
                g.views
            )));
        }
    }
    if g.n_det == Some(0) {
        return Err(invalid("--n-det must be positive"));
    }
    if !(g.det_spacing.is_finite() && g.det_spacing > 0.0) {
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
            if let Some(i0) = c.noise.i0 {
                if !(i0.is_finite() && i0 > 0.0) {
                    return Err(invalid("--i0 must be positive"));
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
            let _image = c.common.image.read()?;
            Err(not_available("CT simulation (Radon transform)"))
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
            validate_geometry(&m.geometry)?;
            if !(m.i0.is_finite() && m.i0 > 0.0) {
                return Err(invalid("--i0 must be positive"));
            }
            let _image = m.common.image.read()?;
            Err(not_available("metal-artifact simulation"))
        }
    }
}
