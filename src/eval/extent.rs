//! The object (body) in a slice: its pixels ([`object_mask`], shared by the uncertainty figure
//! and the typicality residual) and its size, the **equivalent diameter** d = 2 √(A / π) of
//! the largest connected object with its holes filled (A its area in pixels). Filling the holes
//! counts lungs, airways and bowel gas as body (a chest's lungs lie below the object level of a
//! CT window); taking the largest component leaves the patient table and positioning aids out.
//! A prior that only saw heads has never seen a body 250 mm across;
//! [`crate::eval::typicality::Calibration`] compares d (in mm, at the prior's pixel spacing)
//! with the widest training slice, a check the denoising residual misses when the anatomy is
//! locally plausible (soft tissue and bone look alike in a head and a chest).

use ndarray::Array2;
use std::collections::VecDeque;

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

/// The equivalent diameter (pixels) of the largest hole-filled object of `image`
/// ([`object_mask`], 4-connected); 0 for an image without object pixels.
pub fn object_diameter_px(image: &Array2<f32>) -> f64 {
    let (h, w) = image.dim();
    if h == 0 || w == 0 {
        return 0.0;
    }
    let object = object_mask(image);
    // Background reachable from the border through non-object pixels; the rest is object or
    // a hole inside it.
    let mut outside = vec![false; h * w];
    let mut queue: VecDeque<usize> = (0..h * w)
        .filter(|&p| {
            let (r, c) = (p / w, p % w);
            (r == 0 || c == 0 || r == h - 1 || c == w - 1) && !object[p]
        })
        .collect();
    for &p in &queue {
        outside[p] = true;
    }
    flood(h, w, &mut queue, &mut outside, |p| !object[p]);
    // Largest 4-connected component of the filled object.
    let mut seen = outside.clone();
    let mut largest = 0usize;
    for start in 0..h * w {
        if seen[start] {
            continue;
        }
        seen[start] = true;
        let mut queue = VecDeque::from([start]);
        largest = largest.max(flood(h, w, &mut queue, &mut seen, |_| true));
    }
    2.0 * (largest as f64 / std::f64::consts::PI).sqrt()
}

/// Breadth-first fill from `queue` over unmarked 4-neighbours accepted by `open`, marking them
/// in `marked`; returns how many pixels were dequeued.
fn flood(
    h: usize,
    w: usize,
    queue: &mut VecDeque<usize>,
    marked: &mut [bool],
    open: impl Fn(usize) -> bool,
) -> usize {
    let mut count = 0;
    while let Some(p) = queue.pop_front() {
        count += 1;
        let (r, c) = (p / w, p % w);
        let neighbours = [
            (r > 0).then(|| p - w),
            (r + 1 < h).then(|| p + w),
            (c > 0).then(|| p - 1),
            (c + 1 < w).then(|| p + 1),
        ];
        for q in neighbours.into_iter().flatten() {
            if !marked[q] && open(q) {
                marked[q] = true;
                queue.push_back(q);
            }
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disc(size: usize, centre: (f64, f64), radius: f64, image: &mut Array2<f32>, v: f32) {
        for r in 0..size {
            for c in 0..size {
                let (dy, dx) = (r as f64 - centre.0, c as f64 - centre.1);
                if dy * dy + dx * dx <= radius * radius {
                    image[(r, c)] = v;
                }
            }
        }
    }

    /// A disc of radius 20 has diameter ≈ 40 whether or not it holds dark "lungs", and a
    /// separate thin "table" below it does not count.
    #[test]
    fn holes_are_filled_and_only_the_largest_object_counts() {
        let n = 64;
        let mut image = Array2::<f32>::zeros((n, n));
        disc(n, (30.0, 32.0), 20.0, &mut image, 0.5);
        let solid = object_diameter_px(&image);
        assert!((solid - 40.0).abs() < 1.0, "{solid}");
        disc(n, (30.0, 24.0), 6.0, &mut image, 0.02);
        disc(n, (30.0, 40.0), 6.0, &mut image, 0.02);
        image.slice_mut(ndarray::s![58..60, 2..62]).fill(0.8);
        let with_lungs = object_diameter_px(&image);
        assert!((with_lungs - solid).abs() < 1e-9, "{with_lungs} vs {solid}");
        // A larger body has a larger diameter; an empty image none.
        let mut wide = Array2::<f32>::zeros((n, n));
        disc(n, (32.0, 32.0), 28.0, &mut wide, 0.5);
        assert!(object_diameter_px(&wide) > 55.0);
        assert_eq!(object_diameter_px(&Array2::<f32>::zeros((0, 4))), 0.0);
    }
}
