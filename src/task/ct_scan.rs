//! A CT acquisition, defined once for `simulate ct` and for the slices of volumes in batch
//! `recon`: the geometry over the full view set (parallel or fan beam, as the measurement
//! sidecar records it), the measured views Λ and the sinogram noise. [`CtScan::simulate`] gives
//! the measurement y = P(Λ) T x (+ noise) of an image; [`projector`] builds T from a sidecar
//! geometry for the simulation and for every reconstruction.

use crate::io::measurement::{Geometry, Mask, Measurement, MeasurementData, Noise, Sidecar};
use crate::task::Problem;
use anyhow::{bail, Result};
use medsgm_operators::{noise, CtProjector, FanBeam, LinearOperator};
use ndarray::{Array2, Ix2};

/// Units of a sinogram simulated from an HU image.
pub const HU_SINOGRAM_UNITS: &str = "line integral of HU per pixel length";
/// Units of a sinogram simulated from an image in other units.
pub const IMAGE_SINOGRAM_UNITS: &str = "line integral of image intensity per pixel length";

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
    /// The measurement of `image` (N × N, the geometry's size): y = P(Λ) T x over the measured
    /// views with the scan's noise (seeded by `seed`), and its sidecar; `hu` says the image is
    /// in HU (the sinogram's units).
    pub fn simulate(&self, image: &Array2<f32>, seed: u64, hu: bool) -> Result<Measurement> {
        let size = image.nrows();
        let clean = projector(&self.geometry, Some(&self.kept))?
            .forward(&image.view().into_dyn())
            .into_dimensionality::<Ix2>()?;
        let (sino, noise_model) = match self.noise {
            CtNoise::Transmission {
                i0,
                electronic_sigma,
                attenuation_scale,
            } => {
                let s = attenuation_scale.unwrap_or(4.0 / size as f32);
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
                noise::gaussian(&clean.view(), sigma, seed)?,
                Noise::Gaussian { sigma, seed },
            ),
            CtNoise::None => (clean, Noise::None),
        };
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
