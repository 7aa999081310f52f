//! The geometry-only part of fan-beam filtered back-projection ([`super::fbp::fan_fbp`]),
//! planned once per operator, and its back-projection step.

use super::geometry::{DetectorKind, FanGeometry};
use super::kernels::{backproject_row, backproject_row4, RowLine};
use super::parker::{redundancy_weights, ScanArc};
use crate::fbp::FBP_UPSAMPLE;
use crate::ramp::RampFilter;
use ndarray::{Array2, ArrayView1, ArrayView2, Axis};
use rayon::prelude::*;
use std::f64::consts::{FRAC_PI_2, SQRT_2, TAU};

/// Zero samples added at each end of a filtered view, so that pixels whose rays miss the
/// detector interpolate zeros.
const MARGIN: usize = 2;
/// Image rows back-projected together, so that each filtered view is read from memory once
/// per block (it then stays in the L1 cache for the block's rows) instead of once per row.
const ROW_BLOCK: usize = 8;
/// Image rows per block of the quarter-turn back-projection ([`FbpPlan::backproject_orbits`]),
/// whose accumulators take 8 values per pixel.
const ORBIT_ROW_BLOCK: usize = 4;
/// Largest difference, in radians, between a view's source angle and a quarter turn from
/// another view's for the two to share one pixel geometry in FBP ([`quarter_turn_orbits`]): it
/// moves a pixel's detector position by at most 10⁻⁵·(R + N/√2) pixels, far below a bin.
const QUARTER_TURN_TOLERANCE: f64 = 1e-5;

/// The grid, uniform in t = tan γ = l/d (the pixel's offset across the central ray over its
/// distance along it), on which [`FbpPlan::backproject`] reads the filtered views: sample m at
/// t = (m − origin)/slope, `len` samples.
#[derive(Debug, Clone)]
struct TanGrid {
    slope: f64,
    origin: f64,
    len: usize,
}

/// Padded fine index of fan angle γ in a filtered view with [`MARGIN`] zeros in front:
/// (u(γ)/Δ + (K−1)/2 − o)·up + MARGIN, u(γ) = [`FanGeometry::det_position_of`].
fn fine_index(g: &FanGeometry, gamma: f64) -> f64 {
    g.bin_of(g.det_position_of(gamma)) * FBP_UPSAMPLE as f64 + MARGIN as f64
}

/// The back-projection grid of `g` for filtered views of `stride` padded fine samples. A flat
/// detector samples t uniformly already (u = D t): its own fine grid. An equiangular one
/// samples γ: the grid spans the views' fan angles (within the image's, |γ| ≤ asin(N/(√2 R)))
/// with the fine step at the centre, dt = dγ, capped at 4·`stride` samples for very wide fans.
fn tan_grid(g: &FanGeometry, stride: usize) -> TanGrid {
    let fine = TanGrid {
        slope: g.detector_distance as f64 * FBP_UPSAMPLE as f64 / g.det_spacing as f64,
        origin: fine_index(g, 0.0),
        len: stride,
    };
    if g.detector == DetectorKind::Flat {
        return fine;
    }
    let gamma_of = |m: f64| (m - fine.origin) / fine.slope;
    let gamma_img = (g.size as f64 / (SQRT_2 * g.source_distance as f64))
        .min(1.0)
        .asin();
    let t_lo = gamma_of(0.0).max(-gamma_img).tan();
    let t_hi = gamma_of((stride - 1) as f64).min(gamma_img).tan();
    let slope = fine.slope.min(4.0 * stride as f64 / (t_hi - t_lo));
    TanGrid {
        slope,
        origin: MARGIN as f64 - slope * t_lo,
        len: (slope * (t_hi - t_lo)).ceil() as usize + 2 * MARGIN + 1,
    }
}

/// For an equiangular detector, how each sample m of the [`TanGrid`] is read from a padded
/// filtered view of `stride` samples: linearly interpolated at fine index κ(atan t_m) = k + f,
/// times cos²γ = 1/(1 + t²) (the factor turning the weight 1/L² into 1/d²), as (k, f, cos²γ)
/// with cos²γ = 0 where κ falls outside the view; `None` for a flat detector, whose views are on
/// the grid already.
fn resampling(g: &FanGeometry, grid: &TanGrid, stride: usize) -> Option<Vec<(usize, f32, f32)>> {
    (g.detector == DetectorKind::Equiangular).then(|| {
        (0..grid.len)
            .map(|m| {
                let t = (m as f64 - grid.origin) / grid.slope;
                let x = fine_index(g, t.atan());
                if !(x >= 0.0 && x <= (stride - 1) as f64) {
                    return (0, 0.0, 0.0);
                }
                let k = (x as usize).min(stride - 2);
                (k, (x - k as f64) as f32, (1.0 / (1.0 + t * t)) as f32)
            })
            .collect()
    })
}

/// The views in groups of four [v₀, v₁, v₂, v₃] whose source angles follow one another by
/// quarter turns (β_{v_{k+1}} = β_{v_k} + π/2 mod 2π, to `tolerance` radians), when every
/// view belongs to such a group (e.g. a full scan of 4k equispaced views); `None` otherwise.
/// FBP groups views at [`QUARTER_TURN_TOLERANCE`], the projector
/// ([`super::projector::FanBeam`]) at a tighter one.
pub(super) fn quarter_turn_orbits(angles: &[f32], tolerance: f64) -> Option<Vec<[usize; 4]>> {
    let n = angles.len();
    if !n.is_multiple_of(4) {
        return None;
    }
    let wrapped = |a: f64| a.rem_euclid(TAU);
    let mut sorted: Vec<(f64, usize)> = angles
        .iter()
        .enumerate()
        .map(|(v, &a)| (wrapped(a as f64), v))
        .collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let next: Vec<usize> = angles
        .iter()
        .map(|&a| {
            let target = wrapped(a as f64 + FRAC_PI_2);
            let i = sorted.partition_point(|&(b, _)| b < target);
            [i % n, (i + n - 1) % n].into_iter().find_map(|c| {
                let gap = (sorted[c].0 - target).abs();
                (gap.min(TAU - gap) <= tolerance).then_some(sorted[c].1)
            })
        })
        .collect::<Option<_>>()?;
    let mut seen = vec![false; n];
    let mut orbits = Vec::with_capacity(n / 4);
    for v in 0..n {
        if seen[v] {
            continue;
        }
        let orbit = [v, next[v], next[next[v]], next[next[next[v]]]];
        if next[orbit[3]] != v || orbit.iter().any(|&u| std::mem::replace(&mut seen[u], true)) {
            return None;
        }
        orbits.push(orbit);
    }
    Some(orbits)
}

/// Everything [`super::fbp::fan_fbp`] needs that depends on the geometry only, computed once
/// per operator ([`super::FanBeam`] keeps it).
#[derive(Debug)]
pub(crate) struct FbpPlan {
    /// Step 1's weights [views, K]: redundancy × (R cos γ or cos γ).
    pub(super) pre: Array2<f32>,
    /// Padded length of a filtered view (fine samples plus [`MARGIN`] zeros at each end).
    stride: usize,
    grid: TanGrid,
    /// [`resampling`] of the grid.
    map: Option<Vec<(usize, f32, f32)>>,
    /// Per view: the source S(β) = (sx, sy) and (sin β, cos β).
    views: Vec<[f32; 4]>,
    /// Δβ (equiangular) or Δβ R² (flat): the constant of the weight scale/d².
    scale: f32,
    /// [`quarter_turn_orbits`] of the views.
    pub(super) orbits: Option<Vec<[usize; 4]>>,
}

impl FbpPlan {
    /// The plan of `g`.
    pub(crate) fn new(g: &FanGeometry) -> FbpPlan {
        let r = g.source_distance as f64;
        let cosine: Vec<f32> = (0..g.n_det)
            .map(|k| {
                let cos = g.fan_angle(g.det_position(k)).cos();
                match g.detector {
                    DetectorKind::Equiangular => (r * cos) as f32,
                    DetectorKind::Flat => cos as f32,
                }
            })
            .collect();
        let mut pre = redundancy_weights(g);
        pre.axis_iter_mut(Axis(0))
            .for_each(|mut row| row.iter_mut().zip(&cosine).for_each(|(v, &c)| *v *= c));
        let stride = FBP_UPSAMPLE * g.n_det.saturating_sub(1) + 1 + 2 * MARGIN;
        let grid = tan_grid(g, stride);
        let map = resampling(g, &grid, stride);
        let dbeta = ScanArc::of(g).step.abs();
        let scale = match g.detector {
            DetectorKind::Equiangular => dbeta,
            DetectorKind::Flat => dbeta * r * r,
        } as f32;
        let views = g
            .angles
            .iter()
            .map(|&beta| {
                let (s, c) = (beta as f64).sin_cos();
                [(-r * s) as f32, (r * c) as f32, s as f32, c as f32]
            })
            .collect();
        FbpPlan {
            pre,
            stride,
            grid,
            map,
            views,
            scale,
            orbits: quarter_turn_orbits(&g.angles, QUARTER_TURN_TOLERANCE),
        }
    }

    /// Writes a filtered view, `padded` (length `stride`, [`MARGIN`] zeros at each end), onto
    /// the back-projection grid ([`TanGrid`]): copied (flat detector) or resampled and
    /// multiplied by cos²γ (equiangular) into `out` (length `grid.len`).
    fn to_grid(&self, padded: &[f32], out: &mut [f32]) {
        match &self.map {
            None => out.copy_from_slice(padded),
            Some(map) => out.iter_mut().zip(map).for_each(|(v, &(k, f, cos2))| {
                *v = cos2 * (padded[k] + f * (padded[k + 1] - padded[k]))
            }),
        }
    }

    /// Image row `i` from column `j0` on, in view `view`'s frame for the grid ([`RowLine`]).
    fn row_line(&self, n: usize, i: usize, j0: usize, view: &[f32; 4]) -> RowLine {
        let [sx, sy, sb, cb] = *view;
        let centre = (n as f32 - 1.0) / 2.0;
        // r = x − S; d = r·(sin β, −cos β), l = r·(cos β, sin β), linear in j
        let (rx0, ry) = (j0 as f32 - centre - sx, centre - i as f32 - sy);
        RowLine {
            d0: rx0 * sb - ry * cb,
            l0: rx0 * cb + ry * sb,
            dd: sb,
            dl: cb,
            slope: self.grid.slope as f32,
            origin: self.grid.origin as f32,
            scale: self.scale,
            last: (self.grid.len - 2) as f32,
        }
    }

    /// Step 3 of [`super::fbp::fan_fbp`]: Δβ Σ_β W(β, x) q(β, κ(β, x)) with q sampled every
    /// 1/[`FBP_UPSAMPLE`] bin (`filtered`, [views, stride − 2·MARGIN]), κ the pixel's continuous
    /// bin index and W = 1/L² (equiangular) or R²/d² (flat).
    ///
    /// Both detectors take one path: each view is put on a grid uniform in t = l/d
    /// ([`tan_grid`]; an equiangular view is resampled there once per view and multiplied by
    /// cos²γ, so that 1/L² = cos²γ/d²), then every pixel reads it at m = slope·l/d + origin
    /// with weight scale/d² (one reciprocal, no arctangent). Pixel-driven, in blocks of
    /// [`ROW_BLOCK`] image rows in parallel with the views in the outer loop of a block, each
    /// block accumulating its own rows (no atomics), each view read with AVX2 gathers
    /// ([`backproject_row`]). This is the general path; when the views come in quarter-turn
    /// groups, [`super::fbp::fan_fbp`] takes [`FbpPlan::backproject_orbits`] instead.
    pub(super) fn backproject(&self, g: &FanGeometry, filtered: &Array2<f32>) -> Array2<f32> {
        assert_eq!(filtered.ncols() + 2 * MARGIN, self.stride);
        let n = g.size;
        let len = self.grid.len;
        let mut samples = vec![0.0f32; g.n_views() * len];
        samples
            .par_chunks_exact_mut(len)
            .zip(filtered.axis_iter(Axis(0)).into_par_iter())
            .for_each_init(
                || vec![0.0f32; self.stride],
                |padded, (view, src)| {
                    padded[MARGIN..self.stride - MARGIN]
                        .iter_mut()
                        .zip(src)
                        .for_each(|(p, &v)| *p = v);
                    self.to_grid(padded, view)
                },
            );
        let mut image = Array2::<f32>::zeros((n, n));
        image
            .axis_chunks_iter_mut(Axis(0), ROW_BLOCK)
            .into_par_iter()
            .enumerate()
            .for_each(|(blk, mut block)| {
                for (view, samples) in self.views.iter().zip(samples.chunks_exact(len)) {
                    for (di, mut out) in block.outer_iter_mut().enumerate() {
                        let out = out.as_slice_mut().expect("fresh image rows are contiguous");
                        backproject_row(
                            out,
                            samples,
                            &self.row_line(n, blk * ROW_BLOCK + di, 0, view),
                        );
                    }
                }
            });
        image
    }

    /// Steps 1–3 of [`super::fbp::fan_fbp`] over quarter-turn groups of views ([`quarter_turn_orbits`]).
    ///
    /// Rotating the image a quarter turn about the isocentre, Rot(i, j) = (N−1−j, i), together
    /// with the source maps view v_s's geometry onto view v_{s+1}'s: pixel P in view v_s reads
    /// the same grid position with the same weight as Rot^k(P) in view v_{s+k}. So every pixel
    /// P of a quarter D of the image (rows < ⌊N/2⌋, columns < N − ⌊N/2⌋; its four rotations
    /// tile the image but for the centre pixel of an odd N) computes its geometry once per view
    /// and adds that view's sample of all four views of the group, view v_r's to the sum of
    /// Rot^{r−s}(P). The four views' filtered samples are stored interleaved, record m =
    /// [q₀..q₃ at m, q₀..q₃ at m+1 minus at m] ([`backproject_row4`]), so a pixel reads all four
    /// with one 8-wide load and no gathers. Each parallel task owns a few rows of D and their
    /// rotations (no atomics) and filters nothing: the groups' records are built first, in
    /// parallel, weighting and filtering their views on the way (no sinogram-sized
    /// intermediates).
    pub(super) fn backproject_orbits(
        &self,
        n: usize,
        sino: &ArrayView2<f32>,
        ramp: &RampFilter,
        orbits: &[[usize; 4]],
    ) -> Array2<f32> {
        let len = self.grid.len;
        let rec_len = 8 * (len - 1);
        let inner = MARGIN..self.stride - MARGIN;
        let mut records = vec![0.0f32; orbits.len() * rec_len];
        records
            .par_chunks_exact_mut(rec_len)
            .zip(orbits.par_iter())
            .for_each_init(
                || {
                    let row = vec![0.0f32; sino.ncols()];
                    let padded = vec![0.0f32; self.stride];
                    let samples = vec![0.0f32; len];
                    (
                        ramp.scratch(),
                        [row.clone(), row],
                        [padded.clone(), padded],
                        [samples.clone(), samples.clone(), samples.clone(), samples],
                    )
                },
                |(scratch, weighted, padded, samples), (rec, orbit)| {
                    for pair in [0, 2] {
                        for (w, &v) in weighted.iter_mut().zip(&orbit[pair..pair + 2]) {
                            w.iter_mut()
                                .zip(sino.row(v))
                                .zip(self.pre.row(v))
                                .for_each(|((w, &p), &c)| *w = p * c);
                        }
                        let [pa, pb] = padded;
                        ramp.filter_pair(
                            ArrayView1::from(&weighted[0]),
                            Some(ArrayView1::from(&weighted[1])),
                            &mut pa[inner.clone()],
                            Some(&mut pb[inner.clone()]),
                            scratch,
                        );
                        self.to_grid(pa, &mut samples[pair]);
                        self.to_grid(pb, &mut samples[pair + 1]);
                    }
                    for (m, r) in rec.chunks_exact_mut(8).enumerate() {
                        for (k, s) in samples.iter().enumerate() {
                            r[k] = s[m];
                            r[4 + k] = s[m + 1] - s[m];
                        }
                    }
                },
            );
        let (h, w) = (n / 2, n - n / 2);
        // per row of D, per pixel, the final value of its four rotations Rot^t, t = 0..4
        let mut quarter = vec![0.0f32; h * w * 4];
        quarter
            .par_chunks_mut(ORBIT_ROW_BLOCK * w * 4)
            .enumerate()
            .for_each_init(
                || vec![0.0f32; 4 * ORBIT_ROW_BLOCK * w * 8],
                |acc, (blk, out)| {
                    let rows = out.len() / (w * 4);
                    let acc = &mut acc[..4 * rows * w * 8];
                    acc.fill(0.0);
                    for (orbit, rec) in orbits.iter().zip(records.chunks_exact(rec_len)) {
                        for (s, acc_s) in acc.chunks_exact_mut(rows * w * 8).enumerate() {
                            let view = &self.views[orbit[s]];
                            for (di, row) in acc_s.chunks_exact_mut(w * 8).enumerate() {
                                let line = self.row_line(n, blk * ORBIT_ROW_BLOCK + di, 0, view);
                                backproject_row4(row, rec, &line);
                            }
                        }
                    }
                    // acc[s][row][j][r] (and [4 + r]) holds view v_r's sum at Rot^{r−s}(P)
                    for (p, o) in out.chunks_exact_mut(4).enumerate() {
                        for (t, o) in o.iter_mut().enumerate() {
                            *o = (0..4)
                                .map(|s| {
                                    let a = &acc[(s * rows * w + p) * 8..][..8];
                                    let r = (t + s) % 4;
                                    a[r] + a[4 + r]
                                })
                                .sum();
                        }
                    }
                },
            );
        let mut image = Array2::<f32>::zeros((n, n));
        for i in 0..h {
            for j in 0..w {
                let v = &quarter[(i * w + j) * 4..][..4];
                image[[i, j]] = v[0];
                image[[n - 1 - j, i]] = v[1];
                image[[n - 1 - i, n - 1 - j]] = v[2];
                image[[j, n - 1 - i]] = v[3];
            }
        }
        if !n.is_multiple_of(2) {
            // the centre pixel, its own rotation: each view of a group in its own geometry
            let mut acc = [0.0f32; 8];
            let mut centre = 0.0;
            for (orbit, rec) in orbits.iter().zip(records.chunks_exact(rec_len)) {
                for (s, &v) in orbit.iter().enumerate() {
                    acc.fill(0.0);
                    backproject_row4(&mut acc, rec, &self.row_line(n, h, h, &self.views[v]));
                    centre += acc[s] + acc[4 + s];
                }
            }
            image[[h, h]] = centre;
        }
        image
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fan::FanBeam;
    use crate::fbp::Filter;
    use crate::phantom::shepp_logan;

    /// Quarter-turn groups are found for full scans of 4k views in either direction and
    /// refused for other view sets.
    #[test]
    fn quarter_turn_groups() {
        let scan = |n: usize, sign: f64| -> Vec<f32> {
            (0..n)
                .map(|k| (sign * TAU * k as f64 / n as f64) as f32)
                .collect()
        };
        let orbits = quarter_turn_orbits(&scan(8, 1.0), QUARTER_TURN_TOLERANCE).expect("8 views");
        assert_eq!(orbits, vec![[0, 2, 4, 6], [1, 3, 5, 7]]);
        let clockwise =
            quarter_turn_orbits(&scan(8, -1.0), QUARTER_TURN_TOLERANCE).expect("clockwise");
        assert_eq!(clockwise, vec![[0, 6, 4, 2], [1, 7, 5, 3]]);
        assert!(quarter_turn_orbits(&scan(90, 1.0), QUARTER_TURN_TOLERANCE).is_none());
        let mut nudged = scan(360, 1.0);
        nudged[7] += 1e-3;
        assert!(quarter_turn_orbits(&nudged, QUARTER_TURN_TOLERANCE).is_none());
        assert!(quarter_turn_orbits(&[0.0, 0.0, 0.0, 0.0], QUARTER_TURN_TOLERANCE).is_none());
    }

    /// The quarter-turn back-projection equals the general one (weighting, [`RampFilter::apply`],
    /// one view at a time) for both detectors, even and odd image sizes and an offset detector.
    #[test]
    fn quarter_turn_backprojection_matches_the_general_path() {
        for n in [24usize, 25] {
            let image = shepp_logan(n);
            let r = 2.0 * n as f32;
            for kind in [DetectorKind::Flat, DetectorKind::Equiangular] {
                let n_det = FanGeometry::default_n_det(n, r, kind) + 4;
                let g =
                    FanGeometry::full_scan(n, 48, r, 2.0 * r, kind, n_det).with_det_offset(0.25);
                let op = FanBeam::new(g.clone()).expect("valid geometry");
                let plan = FbpPlan::new(&g);
                let orbits = plan.orbits.as_ref().expect("48 equispaced views");
                let sino = op.project(&image.view());
                let ramp = RampFilter::new(Filter::Hann, n_det, 1.0, FBP_UPSAMPLE);
                let fast = plan.backproject_orbits(n, &sino.view(), &ramp, orbits);
                let general = plan.backproject(&g, &ramp.apply(&(&plan.pre * &sino).view()));
                let scale = general.iter().fold(0f32, |m, v| m.max(v.abs()));
                for (a, b) in fast.iter().zip(&general) {
                    assert!((a - b).abs() <= 1e-5 * scale, "{n} {kind:?}: {a} vs {b}");
                }
            }
        }
    }
}
