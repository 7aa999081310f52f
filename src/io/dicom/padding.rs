//! Pixel Padding Value (0028,0120) and Pixel Padding Range Limit (0028,0121), PS3.3 C.7.5.1.1.2:
//! stored values that mark pixels outside the reconstructed field of view (e.g. raw −2000 →
//! −3024 HU). They are not tissue: for the forward model they are air (μ = 0, −1000 HU), they
//! are left out of metrics, and derived series write them back as padding. CT slices that
//! declare none get the same treatment below [`UNDECLARED_FILL_HU`].

use super::read::DicomHeader;
use dicom::dictionary_std::tags;
use ndarray::{Array3, ArrayView3};

/// Padded values in modality units (after the modality LUT), the closed range [lo, hi]
/// (lo = hi without a range limit).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Padding {
    /// Lowest padded value (modality units; −∞ for CT padding below the HU scale).
    pub lo: f32,
    /// Highest padded value (modality units).
    pub hi: f32,
    /// Half the modality step |slope|/2: values within it of [lo, hi] are padding.
    tolerance: f32,
}

/// HU of air: what a padded CT pixel is for the forward model.
pub const AIR_HU: f32 = -1000.0;
/// The lowest HU a CT scanner reports for tissue or air (12-bit scales start at −1024).
const HU_FLOOR: f32 = -1024.0;
/// CT slices that declare no padding: values at or below this are fill outside the field of
/// view all the same (scanners write −1500, −2000, −2048 or −3024 there; air is −1000 with
/// noise of tens of HU). Found on real slices whose undeclared −2000 fill, simulated as
/// negative attenuation, cost the score methods 3–5 dB (BENCHMARKS.md §5).
pub const UNDECLARED_FILL_HU: f32 = -1200.0;

impl Padding {
    /// The padding declared by `header` (first instance; PS3.3 requires one value for the
    /// series), mapped through its RescaleSlope/Intercept; for a CT header without the tag,
    /// every value at or below [`UNDECLARED_FILL_HU`]; otherwise `None`.
    pub fn from_header(header: &DicomHeader) -> Option<Self> {
        let signed = header
            .string(tags::PIXEL_REPRESENTATION)
            .is_some_and(|v| v == "1");
        let raw = |tag| -> Option<f64> {
            let v: f64 = header
                .string(tag)?
                .split('\\')
                .next()?
                .trim()
                .parse()
                .ok()?;
            // Read with the US dictionary VR (implicit VR files): restore the sign.
            Some(if signed && v > 32767.0 {
                v - 65536.0
            } else {
                v
            })
        };
        let Some(value) = raw(tags::PIXEL_PADDING_VALUE) else {
            // Undeclared fill: a CT value below the HU scale is no tissue and no air.
            return (header.modality() == "CT").then_some(Self {
                lo: f32::NEG_INFINITY,
                hi: UNDECLARED_FILL_HU,
                tolerance: 0.0,
            });
        };
        let limit = raw(tags::PIXEL_PADDING_RANGE_LIMIT).unwrap_or(value);
        let number = |tag, default: f64| {
            header
                .string(tag)
                .and_then(|s| s.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite())
                .unwrap_or(default)
        };
        let slope = number(tags::RESCALE_SLOPE, 1.0);
        let intercept = number(tags::RESCALE_INTERCEPT, 0.0);
        if slope == 0.0 {
            return None;
        }
        let (a, b) = (slope * value + intercept, slope * limit + intercept);
        let (lo, hi) = (a.min(b) as f32, a.max(b) as f32);
        let mut tolerance = (slope.abs() / 2.0) as f32;
        if header.modality() == "CT" && hi < HU_FLOOR {
            // Padding below the HU scale (e.g. −3024): lossy compression (JPEG 2000) scatters
            // it around the stored value, so everything below halfway to the scale's floor
            // is padding.
            tolerance = tolerance.max((HU_FLOOR - hi) / 2.0);
            return Some(Self {
                lo: f32::NEG_INFINITY,
                hi,
                tolerance,
            });
        }
        Some(Self { lo, hi, tolerance })
    }

    /// Whether a modality value `v` is padding.
    pub fn contains(&self, v: f32) -> bool {
        v >= self.lo - self.tolerance && v <= self.hi + self.tolerance
    }

    /// The padded pixels of `data`.
    pub fn mask(&self, data: &ArrayView3<f32>) -> Array3<bool> {
        data.mapv(|v| self.contains(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_range_and_tolerance() {
        let p = Padding {
            lo: -3024.0,
            hi: -3024.0,
            tolerance: 0.5,
        };
        assert!(p.contains(-3024.0) && p.contains(-3023.6));
        assert!(!p.contains(-1000.0) && !p.contains(-3022.0));
        let data = ndarray::Array3::from_shape_vec((1, 1, 3), vec![-3024.0, 0.0, 40.0]).unwrap();
        assert_eq!(
            p.mask(&data.view()).into_raw_vec_and_offset().0,
            vec![true, false, false]
        );
    }
}
