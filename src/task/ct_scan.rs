//! A CT acquisition, defined once for `simulate ct` and for the slices of volumes in batch
//! `recon`: the geometry over the full view set (parallel or fan beam, as the measurement
//! sidecar records it), the measured views Λ and the sinogram noise. [`CtScan::simulate`] gives
//! the measurement y = P(Λ) T x (+ noise) of an image; [`projector`] builds T from a sidecar
//! geometry for the simulation and for every reconstruction.

use crate::error::invalid;
use crate::io::measurement::{Geometry, Mask, Measurement, MeasurementData, Noise, Sidecar};
use crate::task::Problem;
use anyhow::{bail, Result};
use clap::ValueEnum;
use medsgm_operators::radon::RadonGeometry;
use medsgm_operators::{noise, CtProjector, DetectorKind, FanBeam, FanGeometry, LinearOperator};
use ndarray::{Array, Array2, ArrayView, Dimension, Ix2};

/// Units of a sinogram simulated from an HU image.
pub const HU_SINOGRAM_UNITS: &str = "line integral of HU per pixel length";
/// Units of a sinogram simulated from an image in other units.
pub const IMAGE_SINOGRAM_UNITS: &str = "line integral of image intensity per pixel length";

/// Beam geometry of a CT simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Beam {
    /// Parallel beam, views over [0°, 180°).
    Parallel,
    /// Fan beam (a point source and a curved or flat detector), source angles over 360° or a
    /// short scan.
    Fan,
}

/// Sinogram noise of a simulated scan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CtNoise {
    /// Noiseless line integrals.
    None,
    /// Additive Gaussian noise of standard deviation `sigma` on the sinogram.
    Gaussian {
        /// Standard deviation.
        sigma: f32,
    },
    /// Pre-log transmission noise: Poisson counts of `i0` incident photons per bin plus
    /// Gaussian electronic noise, then the log; `attenuation_scale` (default 4/N) converts
    /// image values to attenuation per pixel length.
    Transmission {
        /// Incident photons per bin (the dose).
        i0: f64,
        /// Electronic noise in counts.
        electronic_sigma: f64,
        /// Attenuation per pixel length of image value 1.
        attenuation_scale: Option<f32>,
    },
}

/// Attenuation s·N of a line through the N pixels of an N × N image of value 1 in the
/// transmission-noise simulation when no scale is given (e⁻⁴: a typical head or body).
pub const DEFAULT_LINE_ATTENUATION: f32 = 4.0;

impl CtNoise {
    /// Checks the noise parameters (invalid input naming the flag): I₀ positive, electronic
    /// noise and σ finite and ≥ 0, attenuation scale positive.
    pub fn validate(&self) -> Result<()> {
        match *self {
            CtNoise::Transmission {
                i0,
                electronic_sigma,
                attenuation_scale,
            } => {
                if !(electronic_sigma.is_finite() && electronic_sigma >= 0.0) {
                    return Err(invalid(
                        "--electronic-sigma must be finite and non-negative",
                    ));
                }
                if !(i0.is_finite() && i0 > 0.0) {
                    return Err(invalid("--i0 (--dose) must be a positive photon count"));
                }
                if attenuation_scale.is_some_and(|s| !(s.is_finite() && s > 0.0)) {
                    return Err(invalid("--attenuation-scale must be positive"));
                }
            }
            CtNoise::Gaussian { sigma } => {
                if !(sigma.is_finite() && sigma >= 0.0) {
                    return Err(invalid("--sigma must be non-negative"));
                }
            }
            CtNoise::None => {}
        }
        Ok(())
    }

    /// The noisy line integrals of the noise-free `clean` ones (any shape: a sinogram, or the
    /// measured entries of y = P(Λ)Tx) of an N × N image (`size` N), drawn with `seed`, and the
    /// sidecar's record of the noise. Transmission noise converts to attenuation with
    /// s = `attenuation_scale` (default [`DEFAULT_LINE_ATTENUATION`]/N), draws the pre-log
    /// counts ([`noise::transmission_with_electronic`]) and converts back.
    pub fn apply<D: Dimension>(
        &self,
        clean: &ArrayView<f32, D>,
        size: usize,
        seed: u64,
    ) -> Result<(Array<f32, D>, Noise)> {
        Ok(match *self {
            CtNoise::Transmission {
                i0,
                electronic_sigma,
                attenuation_scale,
            } => {
                let s = attenuation_scale.unwrap_or(DEFAULT_LINE_ATTENUATION / size as f32);
                let physical = clean.mapv(|p| p * s);
                let noisy = noise::transmission_with_electronic(
                    &physical.view(),
                    i0,
                    electronic_sigma,
                    seed,
                )?;
                (
                    noisy.mapv(|p| p / s),
                    Noise::PoissonTransmission {
                        i0,
                        attenuation_scale: s,
                        electronic_sigma,
                        seed,
                    },
                )
            }
            CtNoise::Gaussian { sigma } => (
                noise::gaussian(clean, sigma, seed)?,
                Noise::Gaussian { sigma, seed },
            ),
            CtNoise::None => (clean.to_owned(), Noise::None),
        })
    }
}

/// A fan-beam acquisition's settings apart from the image size (lengths in pixels of the
/// image): `simulate ct --geometry fan` and the slices of volumes in batch `recon`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FanSpec {
    /// Source-to-isocentre distance R (default 2N).
    pub source_distance: Option<f32>,
    /// Source-to-detector distance D (default 2R).
    pub detector_distance: Option<f32>,
    /// Detector shape.
    pub detector: DetectorKind,
    /// Detector offset in bins (0.25: the quarter-detector shift).
    pub det_offset: f32,
    /// A short scan (source angles over 180° plus the fan angle) instead of 360°.
    pub short_scan: bool,
}

impl FanSpec {
    /// The settings of a `beam`: these for a fan beam, none for a parallel beam, where a
    /// fan-only setting given is an error (invalid input naming its flag).
    pub fn for_beam(self, beam: Beam) -> Result<Option<FanSpec>> {
        if beam == Beam::Fan {
            return Ok(Some(self));
        }
        let fan_only = [
            ("--source-distance", self.source_distance.is_some()),
            ("--detector-distance", self.detector_distance.is_some()),
            ("--det-offset", self.det_offset != 0.0),
            ("--short-scan", self.short_scan),
        ];
        match fan_only.iter().find(|(_, given)| *given) {
            Some((flag, _)) => Err(invalid(format!("{flag} needs --geometry fan"))),
            None => Ok(None),
        }
    }

    /// The fan geometry of a `size`² image over all source angles of `view_count` views (a
    /// full scan over 360°, or a short scan over 180° + 2γ_m), with `n_det` bins of
    /// `det_spacing` (defaults: enough bins for the image, unit pitch), at the explicit source
    /// angles `angles_deg` when given (invalid input when the geometry is not valid).
    pub fn geometry(
        &self,
        size: usize,
        n_det: Option<usize>,
        det_spacing: Option<f32>,
        angles_deg: Option<&[f32]>,
        view_count: usize,
    ) -> Result<FanGeometry> {
        let r = self.source_distance.unwrap_or(2.0 * size as f32);
        let d = self.detector_distance.unwrap_or(2.0 * r);
        let kind = self.detector;
        let n_det = n_det
            // (at least one bin, so that a misplaced source is what validation names)
            .unwrap_or_else(|| FanGeometry::default_n_det(size, r, kind).max(1));
        let mut fan = FanGeometry::full_scan(size, view_count, r, d, kind, n_det)
            .with_det_offset(self.det_offset);
        if let Some(pitch) = det_spacing {
            fan = fan.with_det_spacing(pitch);
        }
        if self.short_scan {
            fan = fan.with_short_scan(view_count);
        }
        if let Some(angles) = angles_deg {
            fan = fan.with_angles(angles.iter().map(|a| a.to_radians()).collect());
        }
        if !(self.det_offset.is_finite() && self.det_offset.abs() <= fan.n_det as f32) {
            return Err(invalid(format!(
                "--det-offset must lie within ±{} bins (the detector), got {}",
                fan.n_det, self.det_offset
            )));
        }
        fan.validate()
            .map_err(|e| invalid(format!("fan-beam geometry: {e}")))?;
        Ok(fan)
    }
}

/// The projector T of a CT sidecar geometry over its full view set or the `views` it lists:
/// parallel-beam Radon or fan beam.
pub fn projector(geometry: &Geometry, views: Option<&[usize]>) -> Result<CtProjector> {
    match (geometry.radon_geometry(views), geometry.fan_geometry(views)) {
        (Some(r), _) => Ok(medsgm_operators::radon::Radon::new(r)?.into()),
        (_, Some(f)) => {
            f.validate()?;
            Ok(FanBeam::new(f)?.into())
        }
        _ => bail!("not a CT geometry (parallel or fan beam)"),
    }
}

/// A CT acquisition: `geometry` over the full view set, the measured views `kept` (indices
/// into it) and the noise.
#[derive(Debug, Clone, PartialEq)]
pub struct CtScan {
    /// Parallel- or fan-beam geometry over the full view set (as the sidecar records it).
    pub geometry: Geometry,
    /// Indices of the measured views in the full set (Λ).
    pub kept: Vec<usize>,
    /// Sinogram noise.
    pub noise: CtNoise,
}

impl CtScan {
    /// Parallel-beam CT of a `size`² image over `views` equispaced views in [0°, 180°), all
    /// measured, with ⌈√2·N⌉ unit detector bins and the given noise.
    pub fn parallel(size: usize, views: usize, noise: CtNoise) -> Self {
        CtScan {
            geometry: Geometry::ParallelBeam {
                size,
                angles_deg: (0..views)
                    .map(|k| k as f32 * 180.0 / views as f32)
                    .collect(),
                n_det: RadonGeometry::default_n_det(size),
                det_spacing: 1.0,
            },
            kept: (0..views).collect(),
            noise,
        }
    }

    /// The measurement of `image` (N × N, the geometry's size): y = P(Λ) T x over the measured
    /// views with the scan's noise (seeded by `seed`), and its sidecar; `hu` says the image is
    /// in HU (the sinogram's units).
    pub fn simulate(&self, image: &Array2<f32>, seed: u64, hu: bool) -> Result<Measurement> {
        let clean = projector(&self.geometry, Some(&self.kept))?
            .forward(&image.view().into_dyn())
            .into_dimensionality::<Ix2>()?;
        let (sino, noise_model) = self.noise.apply(&clean.view(), image.nrows(), seed)?;
        let data = MeasurementData::Sinogram(sino);
        let sidecar = Sidecar::new(
            Problem::Ct,
            &data,
            self.geometry.clone(),
            Mask::Views {
                kept: self.kept.clone(),
            },
            noise_model,
            if hu {
                HU_SINOGRAM_UNITS
            } else {
                IMAGE_SINOGRAM_UNITS
            },
        );
        Ok(Measurement {
            sidecar,
            data,
            sinogram_mask: None,
            metal_mask: None,
        })
    }
}
