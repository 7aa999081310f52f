//! A per-slice uncertainty figure of a score-based reconstruction: the mean posterior standard
//! deviation over the object. K ≥ 2 posterior samples give a per-pixel SD map; where the data
//! are silent (unmeasured views or k-space) the samples disagree, so the figure is the prior's
//! own statement of how much of the slice it had to invent. Background (air) is left out: it is
//! certain in every sample and would dilute the figure with the field of view.

use ndarray::Array2;

/// Fraction of a slice's range above its minimum that marks the object (10 %: soft tissue and
/// bone in CT, brain and scalp in MRI; air and noise floor excluded).
pub const OBJECT_LEVEL: f32 = 0.1;

/// The object pixels of `image` (row-major): value ≥ min + [`OBJECT_LEVEL`] · range; every
/// pixel when the image is constant.
pub fn object_mask(image: &Array2<f32>) -> Vec<bool> {
    let (lo, hi) = image
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    let level = lo + OBJECT_LEVEL * (hi - lo);
    image.iter().map(|&v| !(hi > lo) || v >= level).collect()
}

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

#[cfg(test)]
mod tests {
    use super::*;

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
