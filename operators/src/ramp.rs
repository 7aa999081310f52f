//! Ramp filtering of projections (Kak & Slaney, "Principles of Computerized Tomographic
//! Imaging", §3.3.3–3.3.4 and §3.4.1): the spatially band-limited ramp with the usual apodisation
//! windows, planned once per detector and reused for every sinogram ([`RampFilter`]).

use crate::error::{OpError, Result};
use ndarray::{Array2, ArrayView1, ArrayView2, Axis};
use num_complex::Complex32;
use rayon::prelude::*;
use rustfft::{Fft, FftPlanner};
use std::sync::{Arc, OnceLock};

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
/// h(0) = ¼, h(n) = −1/(πn)² for odd n, 0 for even n (its DTFT is exactly |f| for |f| ≤ ½),
/// truncated to |n| < len/2, so that the DC response is not forced to zero; the window is then
/// applied in frequency.
pub fn filter_response(filter: Filter, len: usize, det_spacing: f32) -> Vec<f32> {
    let mut planner = FftPlanner::<f32>::new();
    weighted_response(
        filter,
        len,
        det_spacing,
        |_| 1.0,
        &*planner.plan_fft_forward(len),
    )
}

/// [`filter_response`] of the spatial kernel h(n)·`weight`(n) (n the signed tap index),
/// transformed with `fft` (a forward FFT of length `len`).
fn weighted_response(
    filter: Filter,
    len: usize,
    det_spacing: f32,
    weight: impl Fn(i64) -> f64,
    fft: &dyn Fft<f32>,
) -> Vec<f32> {
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
            Complex32::new((v * weight(n)) as f32, 0.0)
        })
        .collect();
    fft.process(&mut h);
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

/// A ramp filter planned for one detector: the FFT plans (rustfft's planner run once) and the
/// frequency response, applied to any number of sinograms by [`RampFilter::apply`].
#[derive(Clone)]
pub struct RampFilter {
    n_det: usize,
    upsample: usize,
    len: usize,
    response: Vec<f32>,
    fwd: Arc<dyn Fft<f32>>,
    inv: Arc<dyn Fft<f32>>,
}

impl std::fmt::Debug for RampFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RampFilter")
            .field("n_det", &self.n_det)
            .field("upsample", &self.upsample)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl RampFilter {
    /// The `filter`-windowed band-limited ramp (Kak & Slaney eq. 3.61) for `n_det` bins of
    /// width `det_spacing`, resampling the output `upsample` times more finely (see
    /// [`RampFilter::apply`]).
    pub fn new(filter: Filter, n_det: usize, det_spacing: f32, upsample: usize) -> RampFilter {
        Self::with_weight(filter, n_det, det_spacing, upsample, |_| 1.0)
    }

    /// The modified ramp of equiangular fan-beam FBP for bins `delta_gamma` radians apart: the
    /// spatial kernel (nΔγ/sin nΔγ)²·h(n), i.e. Kak & Slaney's g(γ) = ½(γ/sin γ)² h(γ) of
    /// §3.4.1 without its factor ½ (which the caller's view weights carry), windowed like
    /// [`RampFilter::new`].
    /// Taps beyond the detector width (|n| ≥ `n_det`, never reached by a convolution of
    /// `n_det` samples) keep the weight of |n| = `n_det` − 1.
    pub fn equiangular(
        filter: Filter,
        n_det: usize,
        delta_gamma: f32,
        upsample: usize,
    ) -> RampFilter {
        let reach = n_det.saturating_sub(1) as f64;
        let dg = delta_gamma as f64;
        Self::with_weight(filter, n_det, delta_gamma, upsample, move |n| {
            let x = (n.unsigned_abs() as f64).min(reach) * dg;
            if x == 0.0 {
                1.0
            } else {
                (x / x.sin()).powi(2)
            }
        })
    }

    fn with_weight(
        filter: Filter,
        n_det: usize,
        det_spacing: f32,
        upsample: usize,
        weight: impl Fn(i64) -> f64,
    ) -> RampFilter {
        let up = upsample.max(1);
        let len = padded_length(n_det);
        let mut planner = FftPlanner::<f32>::new();
        let fwd = planner.plan_fft_forward(len);
        let inv = planner.plan_fft_inverse(len * up);
        let response = weighted_response(filter, len, det_spacing, weight, &*fwd);
        RampFilter {
            n_det,
            upsample: up,
            len,
            response,
            fwd,
            inv,
        }
    }

    /// Number of detector bins this filter was planned for.
    pub fn n_det(&self) -> usize {
        self.n_det
    }

    /// Resampling factor of the output.
    pub fn upsample(&self) -> usize {
        self.upsample
    }

    /// Length of a filtered, resampled view: upsample·(n_det − 1) + 1.
    pub fn output_len(&self) -> usize {
        self.upsample * self.n_det.saturating_sub(1) + 1
    }

    /// Buffers for [`RampFilter::filter_pair`], to allocate once per thread.
    pub(crate) fn scratch(&self) -> RampScratch {
        let zero = Complex32::new(0.0, 0.0);
        let scratch_len = self
            .fwd
            .get_inplace_scratch_len()
            .max(self.inv.get_inplace_scratch_len());
        RampScratch {
            buf: vec![zero; self.len],
            fine: vec![zero; self.len * self.upsample],
            fft: vec![zero; scratch_len],
        }
    }

    /// Filters view `a` (and `b`, if given) into `out_a` (and `out_b`), each
    /// [`RampFilter::output_len`] long, as [`RampFilter::apply`] does for one row (a pair of
    /// real views packed into one complex FFT). Panics on wrong lengths.
    pub(crate) fn filter_pair(
        &self,
        a: ArrayView1<f32>,
        b: Option<ArrayView1<f32>>,
        out_a: &mut [f32],
        out_b: Option<&mut [f32]>,
        s: &mut RampScratch,
    ) {
        let n_out = self.output_len();
        assert!(
            a.len() == self.n_det && out_a.len() == n_out,
            "filter_pair: lengths"
        );
        let zero = Complex32::new(0.0, 0.0);
        let (len, fine_len) = (self.len, self.len * self.upsample);
        let (buf, fine) = (&mut s.buf, &mut s.fine);
        buf.fill(zero);
        match &b {
            Some(b) => {
                assert_eq!(b.len(), self.n_det, "filter_pair: lengths");
                for ((c, &x), &y) in buf.iter_mut().zip(a).zip(b) {
                    *c = Complex32::new(x, y);
                }
            }
            None => buf.iter_mut().zip(a).for_each(|(c, &x)| c.re = x),
        }
        self.fwd.process_with_scratch(buf, &mut s.fft);
        buf.iter_mut()
            .zip(&self.response)
            .for_each(|(c, &r)| *c *= r);
        // spectrum of length up·len: positive frequencies first, negative last
        let half = len / 2;
        fine.fill(zero);
        fine[..half].copy_from_slice(&buf[..half]);
        fine[fine_len - half + 1..].copy_from_slice(&buf[half + 1..]);
        let nyquist = buf[half] * 0.5;
        fine[half] += nyquist;
        fine[fine_len - half] += nyquist;
        self.inv.process_with_scratch(fine, &mut s.fft);
        out_a
            .iter_mut()
            .zip(fine.iter())
            .for_each(|(o, c)| *o = c.re);
        if let Some(out_b) = out_b {
            assert_eq!(out_b.len(), n_out, "filter_pair: lengths");
            out_b
                .iter_mut()
                .zip(fine.iter())
                .for_each(|(o, c)| *o = c.im);
        }
    }

    /// Filters every view of `sino` ([views, n_det]) along the detector (zero-padded FFT
    /// convolution) and resamples it `upsample` times more finely by trigonometric
    /// interpolation (zero-padding the spectrum, Nyquist bin split evenly): row m of the result
    /// holds the filtered view at bin position m/`upsample`, m = 0..upsample·(n_det−1)+1.
    ///
    /// Two real views are packed into one complex FFT since the response is real and even. Rows
    /// run in parallel with buffers allocated once per thread. Panics if `sino` does not have
    /// `n_det` columns.
    pub fn apply(&self, sino: &ArrayView2<f32>) -> Array2<f32> {
        let (n_views, n_det) = sino.dim();
        assert_eq!(n_det, self.n_det, "RampFilter::apply: detector bins");
        let mut out = Array2::<f32>::zeros((n_views, self.output_len()));
        out.axis_chunks_iter_mut(Axis(0), 2)
            .into_par_iter()
            .zip(sino.axis_chunks_iter(Axis(0), 2).into_par_iter())
            .for_each_init(
                || self.scratch(),
                |scratch, (mut dst, src)| {
                    let mut rows = dst.outer_iter_mut();
                    let mut first = rows.next().expect("chunks hold one or two views");
                    let first = first.as_slice_mut().expect("fresh rows are contiguous");
                    let mut second = rows.next();
                    self.filter_pair(
                        src.row(0),
                        (src.nrows() > 1).then(|| src.row(1)),
                        first,
                        second
                            .as_mut()
                            .map(|r| r.as_slice_mut().expect("fresh rows are contiguous")),
                        scratch,
                    );
                },
            );
        out
    }
}

/// Buffers of one thread's [`RampFilter::filter_pair`] calls.
pub(crate) struct RampScratch {
    buf: Vec<Complex32>,
    fine: Vec<Complex32>,
    fft: Vec<Complex32>,
}

/// Filters every view of `sino` along the detector with `filter` and resamples it `upsample`
/// times more finely: [`RampFilter::apply`] with a filter planned for this call. Operators that
/// filter repeatedly keep their [`RampFilter`] instead (as [`crate::fbp::fbp`] does).
pub fn filter_sinogram(
    sino: &ArrayView2<f32>,
    filter: Filter,
    det_spacing: f32,
    upsample: usize,
) -> Array2<f32> {
    RampFilter::new(filter, sino.ncols(), det_spacing, upsample).apply(sino)
}

/// One lazily planned [`RampFilter`] per [`Filter`], kept by an operator whose detector is
/// fixed, so that filtered back-projection plans its FFTs once per operator and filter.
#[derive(Debug, Clone, Default)]
pub(crate) struct FilterCache([OnceLock<Arc<RampFilter>>; Filter::ALL.len()]);

impl FilterCache {
    /// The cached filter for `filter`, planned by `plan` on first use.
    pub(crate) fn get(&self, filter: Filter, plan: impl FnOnce() -> RampFilter) -> Arc<RampFilter> {
        let slot = Filter::ALL
            .iter()
            .position(|&f| f == filter)
            .expect("Filter::ALL lists every filter");
        self.0[slot].get_or_init(|| Arc::new(plan())).clone()
    }
}
