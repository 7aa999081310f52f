//! FISTA-TV's weight λ in a measurement's own units.
//!
//! The objective ½‖Ax − y‖² + λ TV(x) is not scale-free: a weight tuned by `medsgm tune` on
//! normalised images (CT: u = (HU − lo)/(hi − lo); MRI: magnitude over its p-th percentile) at
//! one pixel spacing h_t means something else for a DICOM slice in HU at its native spacing h.
//! With x = k·u (k data units per normalised unit) both terms keep their balance when
//! λ_data = k · g · λ_tuned, where g is the grid factor of the same physical object sampled
//! n ∝ 1/h pixels across:
//! - CT (Radon in pixel units, one detector bin per pixel): line integrals grow as n and the
//!   bins as n, so ‖Ax − y‖² ∝ n³, while TV(x) = Σ|∇x| ∝ n² pixels × 1/n = n: g = (h_t/h)²;
//! - MRI (unitary FFT): ‖Ax − y‖² = ‖x − x*‖² on the measured set ∝ n², TV ∝ n: g = h_t/h.
//!
//! The tuned config records the images it was tuned on ([`ImageFrame`], written by `medsgm
//! tune` as `[tuning.fista-tv.images]`); a weight given with `--tv-weight`, or from a config
//! without that record, is taken in the measurement's units as it stands.

use crate::checkpoint::Normalization;
use crate::error::invalid;
use crate::io::measurement::Measurement;
use crate::reconstruct::score::{declared_units, percentile_scale, Units};
use crate::task::Problem;
use anyhow::Result;
use medsgm_operators::hu::HuWindow;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

/// The images a weight was tuned on: their intensity normalisation and pixel spacing (mm;
/// `None` for images without a physical scale, e.g. phantoms).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageFrame {
    /// How the tuning images were normalised to [0, 1].
    pub normalization: Normalization,
    /// Their pixel spacing.
    pub pixel_spacing_mm: Option<f32>,
}

/// The key of [`ImageFrame`] in a `[tuning.method]` record.
pub const FRAME_KEY: &str = "images";

impl ImageFrame {
    /// The frame in a `[tuning.method]` record (its `images` table), `None` without one; an
    /// error when the table is malformed.
    pub fn of_record(record: Option<&toml::Value>) -> Result<Option<ImageFrame>> {
        match record.and_then(|r| r.get(FRAME_KEY)) {
            None => Ok(None),
            Some(v) => {
                v.clone().try_into().map(Some).map_err(|e| {
                    anyhow::anyhow!("[tuning.*.{FRAME_KEY}] is not an image frame: {e}")
                })
            }
        }
    }

    /// The frame as a TOML value for a tuning record.
    pub fn to_toml(&self) -> Result<toml::Value> {
        Ok(toml::Value::try_from(self)?)
    }
}

/// FISTA-TV's weight λ and the units it is in.
#[derive(Debug, Clone, PartialEq)]
pub enum TvWeight {
    /// In the measurement's own units (`--tv-weight`, or a config that does not say what it
    /// was tuned on).
    Data(f32),
    /// Tuned on images in `frame`; converted per measurement ([`TvWeight::for_measurement`]).
    Tuned {
        /// λ on the tuning images.
        weight: f32,
        /// The tuning images.
        frame: ImageFrame,
    },
}

impl TvWeight {
    /// The weight as given (before any conversion).
    pub fn value(&self) -> f32 {
        match self {
            TvWeight::Data(w) | TvWeight::Tuned { weight: w, .. } => *w,
        }
    }

    /// λ in the units of measurement `m` (see the module documentation); `back_projection`
    /// gives Aᴴy, from which an MRI slice's intensity scale is estimated as the score methods
    /// estimate it (its p-th percentile magnitude). Invalid input when a tuned weight cannot be
    /// converted: HU-tuned weights for a measurement whose units are not HU, or a CT-tuned
    /// weight for MRI and vice versa.
    pub fn for_measurement(
        &self,
        m: &Measurement,
        back_projection: impl FnOnce() -> Array2<f32>,
    ) -> Result<f32> {
        let TvWeight::Tuned { weight, frame } = self else {
            return Ok(self.value());
        };
        let problem = m.sidecar.kind;
        let hu = declared_units(&m.sidecar.units) == Some(Units::Hu);
        let units = &m.sidecar.units;
        let intensity = match (&frame.normalization, problem) {
            (Normalization::CtHuWindow { lo, hi }, Problem::Ct) if hu => hi - lo,
            (Normalization::CtHuWindow { lo, hi }, _) => {
                return Err(invalid(format!(
                    "the tuned FISTA-TV weight is for CT images in the HU window [{lo}, {hi}], but \
                     this {problem} measurement is in \"{units}\": give --tv-weight in its units"
                )))
            }
            (Normalization::Identity, Problem::Ct) if hu => {
                let w = HuWindow::default();
                w.hi - w.lo
            }
            (Normalization::Identity, _) => 1.0,
            (Normalization::MriPercentile { p }, Problem::Mri) => {
                percentile_scale(&back_projection(), *p).ok_or_else(|| {
                    invalid(
                        "the zero-filled reconstruction is zero: cannot scale the tuned FISTA-TV \
                         weight (give --tv-weight)",
                    )
                })?
            }
            (Normalization::MriPercentile { .. }, _) => {
                return Err(invalid(format!(
                    "the tuned FISTA-TV weight is for MRI images, not a {problem} measurement: \
                     give --tv-weight in its units"
                )))
            }
        };
        let grid = match (frame.pixel_spacing_mm, m.sidecar.pixel_spacing_mm) {
            (Some(tuned), Some(here)) if tuned > 0.0 && here > 0.0 => {
                let ratio = tuned / here;
                match problem {
                    Problem::Mri => ratio,
                    _ => ratio * ratio,
                }
            }
            _ => 1.0,
        };
        let converted = weight * intensity * grid;
        if !(converted.is_finite() && converted >= 0.0) {
            return Err(invalid(format!(
                "the tuned FISTA-TV weight {weight} converts to {converted} for this measurement \
                 (intensity ×{intensity}, grid ×{grid}): give --tv-weight"
            )));
        }
        Ok(converted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::ct_scan::{CtNoise, CtScan};
    use crate::task::mri_scan::{MaskPattern, MriScan};

    fn ct_frame(spacing: f32) -> TvWeight {
        TvWeight::Tuned {
            weight: 0.5,
            frame: ImageFrame {
                normalization: Normalization::CtHuWindow {
                    lo: -1000.0,
                    hi: 1000.0,
                },
                pixel_spacing_mm: Some(spacing),
            },
        }
    }

    fn disc(n: usize) -> Array2<f32> {
        let c = (n as f32 - 1.0) / 2.0;
        Array2::from_shape_fn((n, n), |(r, k)| {
            let d = ((r as f32 - c).powi(2) + (k as f32 - c).powi(2)).sqrt() / n as f32;
            if d < 0.3 {
                1.0
            } else if d < 0.4 {
                0.4
            } else {
                0.0
            }
        })
    }

    #[test]
    fn data_weights_pass_through_and_tuned_ct_weights_scale_by_window_and_grid() {
        let mut m = CtScan::parallel(32, 8, CtNoise::None)
            .simulate(&disc(32), 0, true)
            .unwrap();
        let none = || unreachable!("CT needs no back-projection");
        assert_eq!(TvWeight::Data(0.5).for_measurement(&m, none).unwrap(), 0.5);
        // no spacing on the measurement: intensity only
        assert_eq!(ct_frame(1.0).for_measurement(&m, none).unwrap(), 1000.0);
        m.sidecar.pixel_spacing_mm = Some(0.5);
        assert_eq!(ct_frame(1.0).for_measurement(&m, none).unwrap(), 4000.0);
        // a hostile recorded spacing cannot give an infinite weight
        let TvWeight::Tuned { weight, mut frame } = ct_frame(1.0) else {
            unreachable!()
        };
        frame.pixel_spacing_mm = Some(1e30);
        let huge = TvWeight::Tuned { weight, frame };
        assert!(huge.for_measurement(&m, none).is_err());
        // an image-unit CT measurement cannot take an HU-tuned weight
        let img = CtScan::parallel(32, 8, CtNoise::None)
            .simulate(&disc(32), 0, false)
            .unwrap();
        let e = ct_frame(1.0).for_measurement(&img, none).unwrap_err();
        assert!(format!("{e:#}").contains("--tv-weight"), "{e:#}");
    }

    #[test]
    fn a_record_without_images_has_no_frame_and_a_malformed_one_is_an_error() {
        let record = |text: &str| text.parse::<toml::Table>().unwrap();
        let none = record("evaluations = 12");
        assert_eq!(
            ImageFrame::of_record(Some(&toml::Value::Table(none))).unwrap(),
            None
        );
        assert_eq!(ImageFrame::of_record(None).unwrap(), None);
        let bad = record("[images]\npixel_spacing_mm = \"wide\"");
        assert!(ImageFrame::of_record(Some(&toml::Value::Table(bad))).is_err());
        let good = record(
            "[images]\npixel_spacing_mm = 0.5\n[images.normalization]\nkind = \"mri-percentile\"\np = 99.5",
        );
        let frame = ImageFrame::of_record(Some(&toml::Value::Table(good))).unwrap();
        assert_eq!(
            frame,
            Some(ImageFrame {
                normalization: Normalization::MriPercentile { p: 99.5 },
                pixel_spacing_mm: Some(0.5),
            })
        );
        // and it survives a round trip through a tuning record
        let frame = frame.unwrap();
        let back: ImageFrame = frame.to_toml().unwrap().try_into().unwrap();
        assert_eq!(back, frame);
    }

    #[test]
    fn tuned_mri_weights_scale_by_the_zero_filled_percentile_and_linear_grid() {
        let scan = MriScan {
            pattern: MaskPattern::Equispaced,
            acceleration: 2.0,
            center_fraction: 0.25,
            sigma: None,
        };
        let mut m = scan.simulate(&disc(32).mapv(|v| 300.0 * v), 0).unwrap();
        m.sidecar.pixel_spacing_mm = Some(2.0);
        let w = TvWeight::Tuned {
            weight: 0.01,
            frame: ImageFrame {
                normalization: Normalization::MriPercentile { p: 100.0 },
                pixel_spacing_mm: Some(1.0),
            },
        };
        let got = w
            .for_measurement(&m, || disc(32).mapv(|v| 300.0 * v))
            .unwrap();
        assert!((got - 0.01 * 300.0 * 0.5).abs() < 1e-6, "{got}");
        let ct = ct_frame(1.0).for_measurement(&m, || unreachable!());
        assert!(ct.is_err());
    }

    /// The grid factor's premise on medsgm's own operators: for one smooth object sampled
    /// twice as finely, ‖Ax‖² grows 8× (CT) or 4× (MRI) and TV(x) 2×, so λ must grow 4× (CT)
    /// or 2× (MRI) to keep ½‖Ax − y‖² + λ TV(x) in balance.
    #[test]
    fn the_objective_terms_scale_with_the_grid_as_the_conversion_assumes() {
        use medsgm_operators::solvers::tv::tv_norm;
        let blob = |n: usize| {
            let c = (n as f32 - 1.0) / 2.0;
            Array2::from_shape_fn((n, n), |(r, k)| {
                let (y, x) = ((r as f32 - c) / n as f32, (k as f32 - c) / n as f32);
                (-(x * x + 2.0 * y * y) / 0.02).exp()
            })
        };
        let energy = |a: &ndarray::ArrayD<f32>| a.iter().map(|v| (*v as f64).powi(2)).sum::<f64>();
        let ct = |n: usize| {
            let m = CtScan::parallel(n, 30, CtNoise::None)
                .simulate(&blob(n), 0, false)
                .unwrap();
            let crate::io::measurement::MeasurementData::Sinogram(y) = m.data else {
                unreachable!()
            };
            energy(&y.into_dyn())
        };
        let mri = |n: usize| {
            let op = medsgm_operators::RealInput::new(medsgm_operators::Fft2::new(n, n).unwrap());
            let y = medsgm_operators::LinearOperator::forward(&op, &blob(n).into_dyn().view());
            y.iter().map(|v| v.norm_sqr() as f64).sum::<f64>()
        };
        let tv = |n: usize| tv_norm(&blob(n).view());
        let (ct_ratio, mri_ratio, tv_ratio) =
            (ct(128) / ct(64), mri(128) / mri(64), tv(128) / tv(64));
        assert!((ct_ratio - 8.0).abs() < 0.3, "CT data term ×{ct_ratio}");
        assert!((mri_ratio - 4.0).abs() < 0.1, "MRI data term ×{mri_ratio}");
        assert!((tv_ratio - 2.0).abs() < 0.05, "TV ×{tv_ratio}");
        let w = |problem_ratio: f64| problem_ratio / tv_ratio;
        assert!((w(ct_ratio) - 4.0).abs() < 0.2 && (w(mri_ratio) - 2.0).abs() < 0.1);
    }
}
