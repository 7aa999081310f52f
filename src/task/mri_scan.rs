//! An MRI acquisition, defined once for `simulate mri` and for the slices of volumes in batch
//! `recon`: single-coil Cartesian sampling of a real image, y = P(Λ) F x (+ noise), with F the
//! unitary centred 2-D FFT and Λ a set of k-space columns chosen by a pattern, an acceleration
//! and an explicit fully sampled centre fraction.

use crate::error::invalid;
use crate::io::measurement::{
    Geometry, Mask, MaskGenerator, Measurement, MeasurementData, Noise, Sidecar,
};
use crate::task::Problem;
use anyhow::Result;
use clap::ValueEnum;
use medsgm_operators::{kspace_mask, noise, Fft2, LinearOperator, RealInput};
use ndarray::{Array2, Ix2};
use num_complex::Complex32;

/// Units of a simulated k-space.
pub const KSPACE_UNITS: &str = "k-space of the unitary centred 2-D FFT of the image (image units)";

/// Fully sampled centre of the simulated volume slices in batch `recon` (fastMRI's 8 %; the
/// benchmark's cases use score_inverse_problems' own fraction, see `eval::cases`).
pub const VOLUME_CENTER_FRACTION: f64 = 0.08;

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

/// A Cartesian MRI acquisition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MriScan {
    /// Column pattern.
    pub pattern: MaskPattern,
    /// Acceleration R (about 1/R of the columns kept).
    pub acceleration: f64,
    /// Fraction of fully sampled central columns.
    pub center_fraction: f64,
    /// Complex Gaussian noise, standard deviation per real/imaginary part.
    pub sigma: Option<f32>,
}

impl MriScan {
    /// Checks the acquisition (invalid input naming the flag): R ≥ 1, the centre fraction in
    /// [0, 1), σ finite and ≥ 0.
    pub fn validate(&self) -> Result<()> {
        if !(self.acceleration.is_finite() && self.acceleration >= 1.0) {
            return Err(invalid("--acceleration must be at least 1"));
        }
        if !(0.0..1.0).contains(&self.center_fraction) {
            return Err(invalid("--center-fraction must be in [0, 1)"));
        }
        if self.sigma.is_some_and(|s| !(s.is_finite() && s >= 0.0)) {
            return Err(invalid("--sigma must be non-negative"));
        }
        Ok(())
    }

    /// The [h, w] column mask Λ of the scan (`seed` draws the random patterns).
    pub fn mask(&self, h: usize, w: usize, seed: u64) -> Result<Array2<bool>> {
        let (acc, cf) = (self.acceleration, self.center_fraction);
        Ok(match self.pattern {
            MaskPattern::Equispaced => kspace_mask::equispaced(h, w, acc, cf),
            MaskPattern::Random => kspace_mask::random(h, w, acc, cf, seed),
            MaskPattern::VariableDensity => kspace_mask::variable_density(h, w, acc, cf, seed),
        }?)
    }

    /// The measurement of `image` (H × W): the masked k-space with the scan's noise and its
    /// sidecar; `seed` draws the noise and the random patterns.
    pub fn simulate(&self, image: &Array2<f32>, seed: u64) -> Result<Measurement> {
        let (h, w) = image.dim();
        let (acc, cf) = (self.acceleration, self.center_fraction);
        let mask = self.mask(h, w, seed)?;
        let full = RealInput::new(Fft2::new(h, w)?)
            .forward(&image.view().into_dyn())
            .into_dimensionality::<Ix2>()?;
        let (mut kspace, noise_model) = match self.sigma {
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
        let sidecar = Sidecar::new(
            Problem::Mri,
            &data,
            Geometry::Cartesian { h, w },
            Mask::Columns {
                kept: kspace_mask::kept_columns(&mask),
                generator: Some(MaskGenerator {
                    pattern: self
                        .pattern
                        .to_possible_value()
                        .map(|v| v.get_name().to_owned())
                        .unwrap_or_default(),
                    acceleration: acc as f32,
                    center_fraction: cf as f32,
                    seed: (self.pattern != MaskPattern::Equispaced).then_some(seed),
                }),
            },
            noise_model,
            KSPACE_UNITS,
        );
        Ok(Measurement {
            sidecar,
            data,
            sinogram_mask: None,
            metal_mask: None,
        })
    }
}
