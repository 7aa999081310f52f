//! Filtered back-projection (Kak & Slaney, "Principles of Computerized Tomographic Imaging",
//! §3.3.3–3.3.4) with the spatially band-limited ramp and the usual apodisation windows.

use crate::error::{OpError, Result};
use crate::radon::{BackprojectionKernel, Radon, RadonGeometry};
use ndarray::{Array2, ArrayView2, Axis};
use num_complex::Complex32;
use rayon::prelude::*;
use rustfft::FftPlanner;
use std::sync::Arc;

/// Apodisation of the ramp filter |f| (f in cycles per detector bin, |f| ≤ ½).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Filter {
    /// The plain ramp |f| (no window).
    RamLak,
    /// |f| · sinc(f) = |f| sin(πf)/(πf) (Shepp & Logan 1974).
    SheppLogan,
    /// |f| · cos(πf).
    Cosine,
    /// |f| · (0.54 + 0.46 cos 2πf).
    Hamming,
    /// |f| · ½(1 + cos 2πf).
    Hann,
}

impl Filter {
    /// All filters, in declaration order.
    pub const ALL: [Filter; 5] = [
        Filter::RamLak,
        Filter::SheppLogan,
        Filter::Cosine,
        Filter::Hamming,
        Filter::Hann,
    ];

    /// The window W(f) multiplying the ramp at frequency f ∈ [−½, ½] cycles/bin (W(0) = 1).
    pub fn window(self, f: f64) -> f64 {
        use std::f64::consts::PI;
        match self {
            Filter::RamLak => 1.0,
            Filter::SheppLogan => {
                if f == 0.0 {
                    1.0
                } else {
                    (PI * f).sin() / (PI * f)
                }
            }
            Filter::Cosine => (PI * f).cos(),
            Filter::Hamming => 0.54 + 0.46 * (2.0 * PI * f).cos(),
            Filter::Hann => 0.5 * (1.0 + (2.0 * PI * f).cos()),
        }
    }

    /// The command-line name ("ram-lak", "shepp-logan", "cosine", "hamming", "hann").
    pub fn name(self) -> &'static str {
        match self {
            Filter::RamLak => "ram-lak",
            Filter::SheppLogan => "shepp-logan",
            Filter::Cosine => "cosine",
            Filter::Hamming => "hamming",
            Filter::Hann => "hann",
        }
    }
}

impl std::fmt::Display for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Filter {
    type Err = OpError;

    fn from_str(s: &str) -> Result<Self> {
        Filter::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| OpError::Param {
                name: "filter",
                reason: format!(
                    "unknown FBP filter {s:?}; expected one of ram-lak, shepp-logan, cosine, hamming, hann"
                ),
            })
    }
}

/// The FFT length used to filter `n_det` bins: the next power of two ≥ 2·n_det (at least 64),
/// so that the linear convolution with the ramp does not wrap around.
pub fn padded_length(n_det: usize) -> usize {
    (2 * n_det).next_power_of_two().max(64)
}

/// Frequency response of the filter on a grid of `len` frequencies (FFT order), including the
/// 1/`len` of the unnormalised inverse FFT and the 1/Δ of the detector spacing.
///
/// The ramp is built in the spatial domain as the band-limited ramp of Kak & Slaney eq. 3.61,
/// h[0] = ¼, h[n] = −1/(πn)² for odd n, 0 for even n (its DTFT is exactly |f| for |f| ≤ ½),
/// truncated to |n| < len/2, so that the DC response is not forced to zero; the window is then
/// applied in frequency.
pub fn filter_response(filter: Filter, len: usize, det_spacing: f32) -> Vec<f32> {
    let mut h: Vec<Complex32> = (0..len)
        .map(|i| {
            let n = if i <= len / 2 {
                i as i64
            } else {
                i as i64 - len as i64
            };
            let v = if n == 0 {
                0.25
            } else if n % 2 != 0 {
                -1.0 / (std::f64::consts::PI * n as f64).powi(2)
            } else {
                0.0
            };
            Complex32::new(v as f32, 0.0)
        })
        .collect();
    FftPlanner::<f32>::new()
        .plan_fft_forward(len)
        .process(&mut h);
    let norm = 1.0 / (len as f64 * det_spacing as f64);
    h.iter()
        .enumerate()
        .map(|(i, c)| {
            let f = if i < len / 2 {
                i as f64 / len as f64
            } else {
                (i as f64 - len as f64) / len as f64
            };
            (c.re as f64 * filter.window(f) * norm) as f32
        })
        .collect()
}

/// Filters every view of `sino` along the detector with `filter` (zero-padded FFT
/// convolution) and resamples it `upsample` times more finely by trigonometric interpolation
/// (zero-padding the spectrum, Nyquist bin split evenly): row m of the result holds the filtered
/// view at bin position m/`upsample`, m = 0..upsample·(n_det−1)+1 (`upsample` 1 = no
/// resampling).
///
/// Two real views are packed into one complex FFT since the response is real and even. Rows run
/// in parallel; plans are made once per call and buffers once per thread.
pub fn filter_sinogram(
    sino: &ArrayView2<f32>,
    filter: Filter,
    det_spacing: f32,
    upsample: usize,
) -> Array2<f32> {
    let (n_views, n_det) = sino.dim();
    let up = upsample.max(1);
    let len = padded_length(n_det);
    let fine_len = len * up;
    let n_out = up * n_det.saturating_sub(1) + 1;
    let response = filter_response(filter, len, det_spacing);
    let mut planner = FftPlanner::<f32>::new();
    let fwd: Arc<dyn rustfft::Fft<f32>> = planner.plan_fft_forward(len);
    let inv: Arc<dyn rustfft::Fft<f32>> = planner.plan_fft_inverse(fine_len);
    let scratch_len = fwd
        .get_inplace_scratch_len()
        .max(inv.get_inplace_scratch_len());
    let zero = Complex32::new(0.0, 0.0);
    let mut out = Array2::<f32>::zeros((n_views, n_out));
    out.axis_chunks_iter_mut(Axis(0), 2)
        .into_par_iter()
        .zip(sino.axis_chunks_iter(Axis(0), 2).into_par_iter())
        .for_each_init(
            || {
                (
                    vec![zero; len],
                    vec![zero; fine_len],
                    vec![zero; scratch_len],
                )
            },
            |(buf, fine, scratch), (mut dst, src)| {
                buf.iter_mut().for_each(|c| *c = zero);
                for (k, c) in buf.iter_mut().take(n_det).enumerate() {
                    let im = if src.nrows() > 1 { src[[1, k]] } else { 0.0 };
                    *c = Complex32::new(src[[0, k]], im);
                }
                fwd.process_with_scratch(buf, scratch);
                buf.iter_mut().zip(&response).for_each(|(c, &r)| *c *= r);
                // spectrum of length up·len: positive frequencies first, negative last
                let half = len / 2;
                fine.iter_mut().for_each(|c| *c = zero);
                fine[..half].copy_from_slice(&buf[..half]);
                fine[fine_len - half + 1..].copy_from_slice(&buf[half + 1..]);
                let nyquist = buf[half] * 0.5;
                fine[half] += nyquist;
                fine[fine_len - half] += nyquist;
                inv.process_with_scratch(fine, scratch);
                for (m, c) in fine.iter().take(n_out).enumerate() {
                    let c = *c;
                    dst[[0, m]] = c.re;
                    if dst.nrows() > 1 {
                        dst[[1, m]] = c.im;
                    }
                }
            },
        );
    out
}

/// Resampling factor of the filtered views before linear-interpolation back-projection.
pub const FBP_UPSAMPLE: usize = 2;

/// Filtered back-projection x = (π/n_views) Σ_θ (q_θ ∘ interpolation)(x cosθ + y sinθ) of
/// `sino` ([views, n_det], geometry of `radon`), q = `filter`-windowed ramp applied to each
/// view ([`filter_sinogram`]), back-projected with linear interpolation along the detector.
///
/// With the Kak–Slaney ramp (DTFT |f|) the weight π/n_views is the angular step dθ of views
/// equispaced over [0, π) (scikit-image's π/(2·n_views) goes with its 2|f| ramp); for an
/// explicit angle list it assumes the views cover [0, π) evenly. FBP of the full-view
/// sinogram of an image reproduces the image up to discretisation (see
/// [`refine_inverse`] for the consistency error this leaves and how to reduce it).
///
/// Panics if `sino` is not [n_views, n_det] (validate user data with
/// [`crate::linop::check_shape`] first).
pub fn fbp(radon: &Radon, sino: &ArrayView2<f32>, filter: Filter) -> Array2<f32> {
    let g = radon.geometry();
    assert_eq!(sino.dim(), (g.n_views(), g.n_det), "fbp: sinogram shape");
    let q = filter_sinogram(sino, filter, g.det_spacing, FBP_UPSAMPLE);
    // the filtered views live on a detector FBP_UPSAMPLE times finer, with the same centre
    let fine = Radon::new(RadonGeometry {
        n_det: q.ncols(),
        det_spacing: g.det_spacing / FBP_UPSAMPLE as f32,
        ..g.clone()
    })
    .expect("a refinement of a valid geometry is valid");
    let scale = (std::f64::consts::PI / g.n_views() as f64) as f32;
    let linear = vec![BackprojectionKernel::triangle(1.0, scale); g.n_views()];
    fine.backproject_with(&q.view(), &linear)
}

/// Refines an approximate inverse x0 of the Radon transform by `iters` iterations of CGLS
/// (conjugate gradients on the normal equations RᵀR x = Rᵀ y; Hestenes & Stiefel 1952,
/// Björck's CGLS form), which decrease the data residual ‖R x − y‖ monotonically.
///
/// Consistency of T⁻¹ = FBP: for the full 180-view, 363-bin sinogram y = R x of the 256²
/// modified Shepp–Logan phantom, ram-lak FBP leaves ‖R(FBP y) − y‖/‖y‖ ≈ 0.54 % (PSNR
/// 33.9 dB against x); 5 CGLS iterations from FBP reduce it to ≈ 0.27 % and 10 to ≈ 0.17 %
/// (PSNR 35.7 dB), at the cost of one projection and one back-projection per iteration
/// (`transform_inverse_consistency_and_cgls_refinement` in `tests/radon.rs` bounds these).
pub fn refine_inverse(
    radon: &Radon,
    sino: &ArrayView2<f32>,
    x0: Array2<f32>,
    iters: usize,
) -> Array2<f32> {
    let g = radon.geometry();
    assert_eq!(
        sino.dim(),
        (g.n_views(), g.n_det),
        "refine_inverse: sinogram shape"
    );
    assert_eq!(
        x0.dim(),
        (g.size, g.size),
        "refine_inverse: start image shape"
    );
    let dot = |a: &Array2<f32>, b: &Array2<f32>| -> f64 {
        a.iter().zip(b).map(|(&u, &v)| u as f64 * v as f64).sum()
    };
    let mut x = x0;
    let mut r = sino.to_owned() - radon.project(&x.view());
    let mut s = radon.backproject(&r.view());
    let mut p = s.clone();
    let mut gamma = dot(&s, &s);
    for _ in 0..iters {
        if gamma == 0.0 {
            break;
        }
        let q = radon.project(&p.view());
        let qq = dot(&q, &q);
        if qq == 0.0 {
            break;
        }
        let alpha = (gamma / qq) as f32;
        x.scaled_add(alpha, &p);
        r.scaled_add(-alpha, &q);
        s = radon.backproject(&r.view());
        let gamma_new = dot(&s, &s);
        let beta = (gamma_new / gamma) as f32;
        p.zip_mut_with(&s, |pi, &si| *pi = si + beta * *pi);
        gamma = gamma_new;
    }
    x
}

/// Relative consistency error ‖R x − y‖/‖y‖ of an image `x` with the sinogram `y`.
pub fn consistency_error(radon: &Radon, x: &ArrayView2<f32>, y: &ArrayView2<f32>) -> f64 {
    let rx = radon.project(x);
    let num: f64 = rx
        .iter()
        .zip(y)
        .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
        .sum();
    let den: f64 = y.iter().map(|&b| (b as f64).powi(2)).sum();
    (num / den.max(f64::MIN_POSITIVE)).sqrt()
}
