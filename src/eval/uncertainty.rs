//! A per-slice uncertainty figure of a score-based reconstruction: the mean posterior standard
//! deviation over the object. K ≥ 2 posterior samples give a per-pixel SD map; where the data
//! are silent (unmeasured views or k-space) the samples disagree, so the figure is the prior's
//! own statement of how much of the slice it had to invent. Background (air) is left out: it is
//! certain in every sample and would dilute the figure with the field of view.

use crate::eval::extent::object_mask;
use crate::eval::typicality::Typicality;
use ndarray::Array2;

/// The mean of `sd` over the object pixels of `image` ([`object_mask`]).
pub fn object_mean_sd(image: &Array2<f32>, sd: &Array2<f32>) -> f64 {
    let (sum, n) = object_mask(image)
        .into_iter()
        .zip(sd)
        .filter(|(inside, _)| *inside)
        .fold((0.0f64, 0usize), |(s, n), (_, &d)| {
            (s + f64::from(d), n + 1)
        });
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

/// The trust figures of one reconstructed slice: the mean posterior SD over the object
/// (K ≥ 2) and the typicality residual with its out-of-distribution flag (calibrated priors).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SliceTrust {
    /// [`object_mean_sd`] of the slice (data units).
    pub posterior_sd: Option<f64>,
    /// Denoising residual and whether it exceeds the prior's threshold
    /// ([`crate::eval::typicality`]).
    pub typicality: Option<Typicality>,
}

impl SliceTrust {
    /// Per-slice figures zipped from the batch's per-volume lists (missing lists give `None`).
    pub fn per_slice(
        n: usize,
        posterior_sd: Option<&[f64]>,
        typicality: Option<&[Typicality]>,
    ) -> Vec<SliceTrust> {
        (0..n)
            .map(|k| SliceTrust {
                posterior_sd: posterior_sd.and_then(|v| v.get(k).copied()),
                typicality: typicality.and_then(|v| v.get(k).copied()),
            })
            .collect()
    }

    /// A note for one slice's header (DICOM ImageComments), e.g. "medsgm posterior SD 12.3
    /// (object mean, 4 samples); typicality residual 0.0021: OUT OF DISTRIBUTION — the prior
    /// may have invented structure". Empty when there is no figure.
    pub fn note(&self, samples: usize) -> String {
        let mut parts = Vec::new();
        if let Some(sd) = self.posterior_sd {
            parts.push(format!(
                "medsgm posterior SD {sd:.4} (object mean over {samples} samples)"
            ));
        }
        if let Some(t) = self.typicality {
            let width = t
                .diameter_mm
                .map(|d| format!(", body {d:.0} mm"))
                .unwrap_or_default();
            parts.push(format!(
                "typicality residual {:.4}{width}: {}",
                t.residual,
                if t.flagged() {
                    "OUT OF DISTRIBUTION - the prior may have invented structure"
                } else {
                    "within the prior's calibrated range"
                }
            ));
        }
        parts.join("; ")
    }

    /// A short summary of a volume for a series description or NIfTI `descrip`, e.g.
    /// "SD 12.3 OOD 2/40" (mean SD over the slices; slices flagged); empty without figures.
    pub fn summary(slices: &[SliceTrust]) -> String {
        let sds: Vec<f64> = slices.iter().filter_map(|s| s.posterior_sd).collect();
        let flags: Vec<bool> = slices
            .iter()
            .filter_map(|s| s.typicality.map(|t| t.flagged()))
            .collect();
        let mut parts = Vec::new();
        if !sds.is_empty() {
            parts.push(format!(
                "SD {:.3}",
                sds.iter().sum::<f64>() / sds.len() as f64
            ));
        }
        if !flags.is_empty() {
            let n = flags.iter().filter(|&&f| f).count();
            parts.push(format!("OOD {n}/{}", flags.len()));
        }
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typical(residual: f64, unexplained: bool, diameter_mm: Option<f64>) -> Typicality {
        Typicality {
            residual,
            diameter_mm,
            unexplained,
            too_wide: false,
        }
    }

    #[test]
    fn trust_notes_and_summaries() {
        let slices = SliceTrust::per_slice(
            2,
            Some(&[0.25, 0.75]),
            Some(&[
                typical(0.001, false, None),
                typical(0.009, true, Some(261.4)),
            ]),
        );
        assert_eq!(SliceTrust::summary(&slices), "SD 0.500 OOD 1/2");
        let note = slices[1].note(4);
        assert!(
            note.contains("0.7500") && note.contains("4 samples"),
            "{note}"
        );
        assert!(
            note.contains("OUT OF DISTRIBUTION") && note.contains("body 261 mm"),
            "{note}"
        );
        assert!(slices[0].note(4).contains("within"));
        let none = SliceTrust::per_slice(3, None, None);
        assert_eq!(SliceTrust::summary(&none), "");
        assert_eq!(none[0].note(1), "");
    }

    #[test]
    fn background_is_left_out() {
        let mut image = Array2::<f32>::zeros((4, 4));
        image.slice_mut(ndarray::s![1..3, 1..3]).fill(1.0);
        let sd = image.mapv(|v| if v > 0.5 { 0.2 } else { 5.0 });
        assert!((object_mean_sd(&image, &sd) - 0.2).abs() < 1e-6);
        // A constant image: the mean over every pixel.
        let flat = Array2::<f32>::ones((2, 2));
        assert!((object_mean_sd(&flat, &Array2::from_elem((2, 2), 0.5)) - 0.5).abs() < 1e-6);
    }
}
