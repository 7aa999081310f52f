//! Image-quality metrics: PSNR, SSIM (two scikit-image presets), NMSE, and their variants
//! restricted to a circular field of view. All accumulate in f64.
//!
//! SSIM follows Wang et al. 2004 as implemented by scikit-image's `structural_similarity`
//! (v0.26): local means, variances and covariance from a separable window filter with scipy's
//! `mode='reflect'` borders (half-sample symmetric: `d c b a | a b c d`),
//!
//! S = (2 μx μy + C1)(2 σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2)),
//!
//! C1 = (K1 R)², C2 = (K2 R)², K1 = 0.01, K2 = 0.03, R the data range, and the mean SSIM is the
//! mean of S after cropping (win − 1)/2 pixels from every side. Because of that crop the mean
//! never depends on the border mode; [`ssim_map`] (the full map, as with `full=True`) does.

use crate::{OpError, Result};
use ndarray::{Array2, ArrayView2, Zip};
use rayon::prelude::*;

/// K1 of Wang et al. 2004.
pub const K1: f64 = 0.01;
/// K2 of Wang et al. 2004.
pub const K2: f64 = 0.03;

/// The two SSIM conventions in common use (they differ by about ±0.005 and cannot be converted
/// into each other).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsimPreset {
    /// Wang 2004 / torchmetrics: 11×11 Gaussian window, σ = 1.5 (truncated at 3.5σ), population
    /// covariance — scikit-image `gaussian_weights=True, sigma=1.5, use_sample_covariance=False`.
    Gaussian,
    /// scikit-image defaults (as used by fastMRI's evaluation): 7×7 uniform window, sample
    /// covariance (factor N/(N−1) with N = 49).
    SkimageDefault,
}

impl SsimPreset {
    /// 1-D window weights (sum 1) and the covariance normalisation factor.
    fn window(self) -> (Vec<f64>, f64) {
        match self {
            SsimPreset::Gaussian => {
                // scipy.ndimage._gaussian_kernel1d with radius int(truncate·σ + 0.5) = 5.
                let sigma: f64 = 1.5;
                let radius = (3.5 * sigma + 0.5) as i64;
                let w: Vec<f64> = (-radius..=radius)
                    .map(|x| (-0.5 / (sigma * sigma) * (x * x) as f64).exp())
                    .collect();
                let sum: f64 = w.iter().sum();
                (w.iter().map(|v| v / sum).collect(), 1.0)
            }
            SsimPreset::SkimageDefault => {
                let n = 7usize;
                let np = (n * n) as f64;
                (vec![1.0 / n as f64; n], np / (np - 1.0))
            }
        }
    }

    /// Side length of the square window.
    pub fn win_size(self) -> usize {
        self.window().0.len()
    }
}

impl std::fmt::Display for SsimPreset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SsimPreset::Gaussian => "gaussian",
            SsimPreset::SkimageDefault => "skimage",
        })
    }
}

impl std::str::FromStr for SsimPreset {
    type Err = OpError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "gaussian" | "wang" => Ok(SsimPreset::Gaussian),
            "skimage" | "skimage-default" | "fastmri" => Ok(SsimPreset::SkimageDefault),
            other => Err(OpError::Param {
                name: "ssim preset",
                reason: format!("unknown preset {other:?} (gaussian, skimage)"),
            }),
        }
    }
}

/// Peak signal-to-noise ratio 10 log₁₀(R² / MSE) (scikit-image `peak_signal_noise_ratio` with an
/// explicit `data_range` R). +∞ for identical images.
pub fn psnr(x: &ArrayView2<f32>, reference: &ArrayView2<f32>, data_range: f64) -> Result<f64> {
    psnr_impl(x, reference, data_range, None)
}

/// [`psnr`] with the MSE taken over the pixels where `mask` is true (e.g. [`fov_mask`]).
pub fn psnr_masked(
    x: &ArrayView2<f32>,
    reference: &ArrayView2<f32>,
    data_range: f64,
    mask: &ArrayView2<bool>,
) -> Result<f64> {
    psnr_impl(x, reference, data_range, Some(mask))
}

/// Normalised mean squared error ‖x − ref‖² / ‖ref‖² (fastMRI's NMSE).
pub fn nmse(x: &ArrayView2<f32>, reference: &ArrayView2<f32>) -> Result<f64> {
    nmse_impl(x, reference, None)
}

/// [`nmse`] over the pixels where `mask` is true.
pub fn nmse_masked(
    x: &ArrayView2<f32>,
    reference: &ArrayView2<f32>,
    mask: &ArrayView2<bool>,
) -> Result<f64> {
    nmse_impl(x, reference, Some(mask))
}

/// Mean SSIM as scikit-image `structural_similarity(x, reference, data_range=R, …)` with the
/// settings of `preset` (see the module docs). Both images must be at least the window size in
/// each dimension.
pub fn ssim(
    x: &ArrayView2<f32>,
    reference: &ArrayView2<f32>,
    data_range: f64,
    preset: SsimPreset,
) -> Result<f64> {
    let (h, w) = check_pair(x, reference)?;
    let pad = preset.win_size() / 2;
    check_window(h, w, preset)?;
    let (sum, count) = ssim_region(
        x,
        reference,
        data_range,
        preset,
        [pad, h - pad],
        [pad, w - pad],
        |_, _| true,
    )?;
    Ok(sum / count as f64)
}

/// Mean of the SSIM map over the pixels where `mask` is true and that lie inside the
/// scikit-image crop ((win − 1)/2 from each side). Errors if no pixel qualifies.
pub fn ssim_masked(
    x: &ArrayView2<f32>,
    reference: &ArrayView2<f32>,
    data_range: f64,
    preset: SsimPreset,
    mask: &ArrayView2<bool>,
) -> Result<f64> {
    let (h, w) = check_pair(x, reference)?;
    crate::linop::check_shape("mask", &[h, w], mask.shape())?;
    check_window(h, w, preset)?;
    let pad = preset.win_size() / 2;
    let (sum, count) = ssim_region(
        x,
        reference,
        data_range,
        preset,
        [pad, h - pad],
        [pad, w - pad],
        |i, j| mask[[i, j]],
    )?;
    if count == 0 {
        return Err(OpError::Param {
            name: "mask",
            reason: "selects no pixel inside the SSIM crop".into(),
        });
    }
    Ok(sum / count as f64)
}

/// The full SSIM map S (same shape as the images, borders from scipy's `reflect` mode), as
/// returned by scikit-image with `full=True`.
pub fn ssim_map(
    x: &ArrayView2<f32>,
    reference: &ArrayView2<f32>,
    data_range: f64,
    preset: SsimPreset,
) -> Result<Array2<f64>> {
    let (h, w) = check_pair(x, reference)?;
    check_window(h, w, preset)?;
    let rows = ssim_rows(x, reference, data_range, preset, [0, h], [0, w], |_, s| {
        s.to_vec()
    })?;
    Ok(Array2::from_shape_vec((h, w), rows.concat()).expect("h rows of w values"))
}

/// Circular field of view: the disc inscribed in the [h, w] image, centred at the geometric
/// centre ((h − 1)/2, (w − 1)/2) with radius min(h, w)/2 (pixel centres on or inside the circle
/// are true) — the region a parallel-beam scanner sees at every angle.
pub fn fov_mask(h: usize, w: usize) -> Array2<bool> {
    let (ci, cj) = ((h as f64 - 1.0) / 2.0, (w as f64 - 1.0) / 2.0);
    let r = h.min(w) as f64 / 2.0;
    Array2::from_shape_fn((h, w), |(i, j)| {
        let (di, dj) = (i as f64 - ci, j as f64 - cj);
        di * di + dj * dj <= r * r
    })
}

fn psnr_impl(
    x: &ArrayView2<f32>,
    reference: &ArrayView2<f32>,
    data_range: f64,
    mask: Option<&ArrayView2<bool>>,
) -> Result<f64> {
    check_pair(x, reference)?;
    check_range(data_range)?;
    let (sse, n) = masked_sums(x, reference, mask)?;
    if n == 0 {
        return Err(OpError::Param {
            name: "mask",
            reason: "selects no pixel".into(),
        });
    }
    let mse = sse.0 / n as f64;
    // 20 log10(range) − 10 log10(mse): the same value as 10 log10(range²/mse) without the
    // under/overflow of range² for extreme ranges (1e-300 gave −∞ and a JSON null)
    Ok(20.0 * data_range.log10() - 10.0 * mse.log10())
}

fn nmse_impl(
    x: &ArrayView2<f32>,
    reference: &ArrayView2<f32>,
    mask: Option<&ArrayView2<bool>>,
) -> Result<f64> {
    check_pair(x, reference)?;
    let ((sse, ref_energy), _) = masked_sums(x, reference, mask)?;
    if ref_energy == 0.0 {
        return Err(OpError::Param {
            name: "reference",
            reason: "is zero (NMSE undefined)".into(),
        });
    }
    Ok(sse / ref_energy)
}

/// (Σ (x − ref)², Σ ref²) and the pixel count over the mask.
fn masked_sums(
    x: &ArrayView2<f32>,
    reference: &ArrayView2<f32>,
    mask: Option<&ArrayView2<bool>>,
) -> Result<((f64, f64), usize)> {
    if let Some(m) = mask {
        crate::linop::check_shape("mask", x.shape(), m.shape())?;
    }
    let mut sse = 0.0f64;
    let mut energy = 0.0f64;
    let mut n = 0usize;
    let mut non_finite = false;
    Zip::indexed(x).and(reference).for_each(|idx, &a, &b| {
        if mask.is_none_or(|m| m[idx]) {
            let d = a as f64 - b as f64;
            non_finite |= !d.is_finite();
            sse += d * d;
            energy += b as f64 * b as f64;
            n += 1;
        }
    });
    if non_finite {
        return Err(OpError::NonFinite { what: "image" });
    }
    Ok(((sse, energy), n))
}

fn check_pair(x: &ArrayView2<f32>, reference: &ArrayView2<f32>) -> Result<(usize, usize)> {
    crate::linop::check_shape("image", reference.shape(), x.shape())?;
    Ok(x.dim())
}

fn check_range(data_range: f64) -> Result<()> {
    if data_range.is_finite() && data_range > 0.0 {
        Ok(())
    } else {
        Err(OpError::Param {
            name: "data_range",
            reason: format!("must be positive and finite, got {data_range}"),
        })
    }
}

fn check_window(h: usize, w: usize, preset: SsimPreset) -> Result<()> {
    let win = preset.win_size();
    if h < win || w < win {
        return Err(OpError::Param {
            name: "image",
            reason: format!("SSIM window {win}×{win} is larger than the image [{h}, {w}]"),
        });
    }
    Ok(())
}

fn constants(data_range: f64) -> Result<(f64, f64)> {
    check_range(data_range)?;
    Ok(((K1 * data_range).powi(2), (K2 * data_range).powi(2)))
}

/// Σ S and the number of pixels over the output rectangle rows × cols where `keep(i, j)`.
fn ssim_region(
    x: &ArrayView2<f32>,
    reference: &ArrayView2<f32>,
    data_range: f64,
    preset: SsimPreset,
    rows: [usize; 2],
    cols: [usize; 2],
    keep: impl Fn(usize, usize) -> bool + Sync,
) -> Result<(f64, usize)> {
    let per_row = ssim_rows(x, reference, data_range, preset, rows, cols, |i, s| {
        let mut sum = 0.0f64;
        let mut n = 0usize;
        for (j, &v) in s.iter().enumerate() {
            if keep(i, cols[0] + j) {
                sum += v;
                n += 1;
            }
        }
        (sum, n)
    })?;
    let (sum, count) = per_row
        .into_iter()
        .fold((0.0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    if !sum.is_finite() {
        return Err(OpError::NonFinite { what: "image" });
    }
    Ok((sum, count))
}

/// scipy.ndimage 'reflect' index: d c b a | a b c d | d c b a.
fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    let period = 2 * n;
    let m = i.rem_euclid(period);
    (if m < n { m } else { period - 1 - m }) as usize
}

/// The SSIM map on the output rectangle rows × cols, one row at a time: `f(i, S[i, cols])` is
/// evaluated for every output row i (in parallel) and the results are returned in row order.
///
/// The five moment images x, y, x², y², xy are correlated with the preset's separable window: a
/// horizontal pass over the needed (reflected) input rows forms the products on the fly from a
/// reflect-padded row, then each output row sums its window of horizontally filtered rows.
fn ssim_rows<T: Send>(
    x: &ArrayView2<f32>,
    y: &ArrayView2<f32>,
    data_range: f64,
    preset: SsimPreset,
    rows: [usize; 2],
    cols: [usize; 2],
    f: impl Fn(usize, &[f64]) -> T + Sync,
) -> Result<Vec<T>> {
    let (c1, c2) = constants(data_range)?;
    let (h, w) = x.dim();
    let (weights, cov_norm) = preset.window();
    let r = weights.len() / 2;
    let ncols = cols[1] - cols[0];
    let in_rows: Vec<usize> = (rows[0] as isize - r as isize..rows[1] as isize + r as isize)
        .map(|i| reflect(i, h))
        .collect();
    let col_idx: Vec<usize> = (cols[0] as isize - r as isize..cols[1] as isize + r as isize)
        .map(|j| reflect(j, w))
        .collect();
    let padded = ncols + 2 * r;

    // Horizontal pass: for each needed input row, five filtered planes of ncols values.
    let stride = 5 * ncols;
    let mut hp = vec![0.0f64; in_rows.len() * stride];
    hp.par_chunks_mut(stride)
        .zip(in_rows.par_iter())
        .for_each_init(
            || vec![0.0f64; 5 * padded],
            |prod, (out, &src)| {
                let (xr, yr) = (x.row(src), y.row(src));
                for (t, &j) in col_idx.iter().enumerate() {
                    let (a, b) = (xr[j] as f64, yr[j] as f64);
                    prod[t] = a;
                    prod[padded + t] = b;
                    prod[2 * padded + t] = a * a;
                    prod[3 * padded + t] = b * b;
                    prod[4 * padded + t] = a * b;
                }
                out.fill(0.0);
                for (src_p, dst) in prod.chunks_exact(padded).zip(out.chunks_exact_mut(ncols)) {
                    for (t, &wt) in weights.iter().enumerate() {
                        for (d, &s) in dst.iter_mut().zip(&src_p[t..t + ncols]) {
                            *d += wt * s;
                        }
                    }
                }
            },
        );

    // Vertical pass and the SSIM formula, one output row at a time.
    Ok((rows[0]..rows[1])
        .into_par_iter()
        .map_init(
            || (vec![0.0f64; stride], vec![0.0f64; ncols]),
            |(acc, s), i| {
                let li = i - rows[0];
                acc.fill(0.0);
                for (t, &wt) in weights.iter().enumerate() {
                    let src = &hp[(li + t) * stride..(li + t + 1) * stride];
                    for (d, &v) in acc.iter_mut().zip(src) {
                        *d += wt * v;
                    }
                }
                let (ux, rest) = acc.split_at(ncols);
                let (uy, rest) = rest.split_at(ncols);
                let (uxx, rest) = rest.split_at(ncols);
                let (uyy, uxy) = rest.split_at(ncols);
                for j in 0..ncols {
                    let (mx, my) = (ux[j], uy[j]);
                    let vx = cov_norm * (uxx[j] - mx * mx);
                    let vy = cov_norm * (uyy[j] - my * my);
                    let vxy = cov_norm * (uxy[j] - mx * my);
                    s[j] = ((2.0 * mx * my + c1) * (2.0 * vxy + c2))
                        / ((mx * mx + my * my + c1) * (vx + vy + c2));
                }
                f(i, s)
            },
        )
        .collect())
}
