//! A CT acquisition, defined once for `simulate ct` and for the slices of volumes in batch
//! `recon`: the geometry over the full view set (parallel or fan beam, as the measurement
//! sidecar records it), the measured views Λ and the sinogram noise. [`CtScan::simulate`] gives
//! the measurement y = P(Λ) T x (+ noise) of an image; [`projector`] builds T from a sidecar
//! geometry for the simulation and for every reconstruction; [`at_pixel_spacing`] re-expresses a
//! measurement on another pixel grid (a prior's spacing).

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

/// The CT measurement `m` re-expressed on a grid of `spacing_mm` pixels over the same field of
/// view, for a prior trained at that spacing (issue: anatomy at the prior's scale). With
/// r = s/s' (the sidecar's spacing s over the new one s'), lengths in new pixels are r times
/// those in old ones: the image side becomes round(r N), the bin width (and for fan beam the
/// source and detector distances) scale by r, and the line integrals per pixel length by r;
/// views, bins and the mask are unchanged. `None` when the sidecar records no spacing.
pub fn at_pixel_spacing(m: &Measurement, spacing_mm: f32) -> Result<Option<Measurement>> {
    let Some(s) = m.sidecar.pixel_spacing_mm else {
        return Ok(None);
    };
    anyhow::ensure!(
        spacing_mm.is_finite() && spacing_mm > 0.0,
        "invalid target pixel spacing {spacing_mm} mm"
    );
    let r = s / spacing_mm;
    let MeasurementData::Sinogram(sino) = &m.data else {
        bail!("a CT measurement holds a sinogram");
    };
    let geometry = match &m.sidecar.geometry {
        Geometry::ParallelBeam {
            size,
            angles_deg,
            n_det,
            det_spacing,
        } => Geometry::ParallelBeam {
            size: medsgm_operators::resample::side_at_spacing(*size, s, spacing_mm),
            angles_deg: angles_deg.clone(),
            n_det: *n_det,
            det_spacing: det_spacing * r,
        },
        Geometry::FanBeam {
            size,
            angles_deg,
            n_det,
            det_spacing,
            source_distance,
            detector_distance,
            detector,
            det_offset,
        } => Geometry::FanBeam {
            size: medsgm_operators::resample::side_at_spacing(*size, s, spacing_mm),
            angles_deg: angles_deg.clone(),
            n_det: *n_det,
            det_spacing: det_spacing * r,
            source_distance: source_distance * r,
            detector_distance: detector_distance * r,
            detector: *detector,
            det_offset: *det_offset,
        },
        Geometry::Cartesian { .. } => bail!("not a CT geometry"),
    };
    geometry.validate_ct()?;
    let mut sidecar = m.sidecar.clone();
    sidecar.geometry = geometry;
    sidecar.pixel_spacing_mm = Some(spacing_mm);
    Ok(Some(Measurement {
        sidecar,
        data: MeasurementData::Sinogram(sino.mapv(|v| v * r)),
        sinogram_mask: m.sinogram_mask.clone(),
        metal_mask: m.metal_mask.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use medsgm_operators::resample::resample_area;

    /// A smooth disc image of side `n` (values in [0, 1]).
    fn disc(n: usize) -> Array2<f32> {
        let c = (n as f32 - 1.0) / 2.0;
        Array2::from_shape_fn((n, n), |(i, j)| {
            let r = (i as f32 - c).hypot(j as f32 - c) / n as f32;
            (1.0 - (r / 0.35).powi(2)).max(0.0)
                + 0.3 * (-(((i as f32 - c - 0.1 * n as f32) / (0.08 * n as f32)).powi(2))).exp()
        })
    }

    /// On the coarser grid, the rescaled operator applied to the resampled image reproduces the
    /// rescaled data (parallel and fan beam): the geometry and the line-integral units map
    /// consistently. A measurement without a recorded spacing is left alone.
    #[test]
    fn rescaled_measurement_matches_the_resampled_image() {
        let (n, s) = (128, 0.5f32);
        let image = disc(n);
        let fan = medsgm_operators::FanGeometry::full_scan(
            n,
            90,
            2.0 * n as f32,
            4.0 * n as f32,
            medsgm_operators::DetectorKind::Equiangular,
            medsgm_operators::FanGeometry::default_n_det(
                n,
                2.0 * n as f32,
                medsgm_operators::DetectorKind::Equiangular,
            ),
        );
        let geometries = [
            Geometry::ParallelBeam {
                size: n,
                angles_deg: (0..45).map(|k| k as f32 * 4.0).collect(),
                n_det: 182,
                det_spacing: 1.0,
            },
            Geometry::fan_beam(&fan),
        ];
        for geometry in geometries {
            let views = match &geometry {
                Geometry::ParallelBeam { angles_deg, .. }
                | Geometry::FanBeam { angles_deg, .. } => angles_deg.len(),
                Geometry::Cartesian { .. } => unreachable!(),
            };
            let scan = CtScan {
                geometry,
                kept: (0..views).collect(),
                noise: CtNoise::None,
            };
            let mut m = scan.simulate(&image, 0, false).unwrap();
            assert!(at_pixel_spacing(&m, 1.0).unwrap().is_none());
            m.sidecar.pixel_spacing_mm = Some(s);
            let coarse = at_pixel_spacing(&m, 1.0).unwrap().unwrap();
            assert_eq!(coarse.sidecar.image_shape(), (64, 64));
            assert_eq!(coarse.sidecar.pixel_spacing_mm, Some(1.0));
            let MeasurementData::Sinogram(y) = &coarse.data else {
                unreachable!()
            };
            let predicted = projector(&coarse.sidecar.geometry, None)
                .unwrap()
                .forward(&resample_area(&image, (64, 64)).view().into_dyn());
            let diff = (&predicted - &y.view().into_dyn())
                .mapv(|v| v * v)
                .sum()
                .sqrt();
            let norm = y.mapv(|v| v * v).sum().sqrt();
            assert!(
                diff / norm < 0.03,
                "{:?}: relative error {}",
                coarse.sidecar.geometry.radon_geometry(None).is_some(),
                diff / norm
            );
        }
    }
}
