//! Per-ray tables of the fan-beam Joseph projector, computed once per geometry.
//!
//! Joseph's method (P. M. Joseph, IEEE TMI 1982) steps a ray one image line at a time — along
//! rows when the ray is closer to vertical, along columns otherwise — and interpolates the image
//! linearly along each line. Both cases are written in one *frame* (a, w): w selects the line
//! (w = l − c for line l, c = (N−1)/2) and a is the position along it (a = index − c). The row
//! frame is (a, w) = (x, −y), the column frame (a, w) = (−y, x), so a line of either frame is a
//! contiguous run of the matching padded copy of the image.
//!
//! In its frame, ray q crosses line w at a = a₀(q) + w·c(q) with c = d_a/d_w (|c| ≤ 1) and has
//! length ℓ(q) = 1/|d_w| per line, so its line integral is ℓ(q) Σ_l interp(line_l, a₀ + w_l c).
//! The tables hold b = a₀ + c + 1 (the padded index at w = 0, see [`RayTables`]), c and ℓ.

use super::geometry::FanGeometry;

/// Which padded copy of the image a ray steps through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Frame {
    /// Lines are image rows: (a, w) = (x, −y).
    Rows,
    /// Lines are image columns: (a, w) = (−y, x).
    Cols,
}

/// A contiguous range of bins of one view stepping through the same frame.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Run {
    pub(crate) frame: Frame,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// Joseph tables of every ray, [views × bins] row-major: ray q of a view crosses line w of its
/// frame at padded index u = b[q] + w·c[q] (padded index = position along the line + (N−1)/2
/// + 1, the leading zero of the padded line) and has length `len[q]` per line.
#[derive(Debug, Clone)]
pub(crate) struct RayTables {
    pub(crate) n_det: usize,
    pub(crate) b: Vec<f32>,
    pub(crate) c: Vec<f32>,
    pub(crate) len: Vec<f32>,
    /// Per view, its bins split by frame (at most three runs: a fan narrower than 90° gives
    /// one or two).
    pub(crate) runs: Vec<Vec<Run>>,
}

impl RayTables {
    /// The tables of `g` (computed in f64, stored in f32).
    pub(crate) fn new(g: &FanGeometry) -> RayTables {
        let k = g.n_det;
        let r = g.source_distance as f64;
        let centre = (g.size as f64 - 1.0) / 2.0;
        let gammas: Vec<f64> = (0..k).map(|q| g.fan_angle(g.det_position(q))).collect();
        let total = g.n_views() * k;
        let (mut b, mut c, mut len) = (
            Vec::with_capacity(total),
            Vec::with_capacity(total),
            Vec::with_capacity(total),
        );
        let mut runs = Vec::with_capacity(g.n_views());
        for &beta in &g.angles {
            let beta = beta as f64;
            let (sx, sy) = (-r * beta.sin(), r * beta.cos());
            let mut view_runs: Vec<Run> = Vec::new();
            for (q, &gamma) in gammas.iter().enumerate() {
                let (sp, cp) = (beta + gamma).sin_cos();
                let (dx, dy) = (sp, -cp);
                let (frame, sa, sw, da, dw) = if dy.abs() >= dx.abs() {
                    (Frame::Rows, sx, -sy, dx, -dy)
                } else {
                    (Frame::Cols, -sy, sx, -dy, dx)
                };
                let slope = da / dw;
                b.push((sa - sw * slope + centre + 1.0) as f32);
                c.push(slope as f32);
                len.push((1.0 / dw.abs()) as f32);
                match view_runs.last_mut() {
                    Some(run) if run.frame == frame => run.end = q + 1,
                    _ => view_runs.push(Run {
                        frame,
                        start: q,
                        end: q + 1,
                    }),
                }
            }
            runs.push(view_runs);
        }
        RayTables {
            n_det: k,
            b,
            c,
            len,
            runs,
        }
    }

    /// The b and c tables of bins `run` of view `v`.
    pub(crate) fn run_tables(&self, v: usize, run: &Run) -> (&[f32], &[f32]) {
        let base = v * self.n_det;
        (
            &self.b[base + run.start..base + run.end],
            &self.c[base + run.start..base + run.end],
        )
    }
}

/// The sub-range [q0, q1) of a run's rays whose padded index u = b[q] + w·c[q] on line w lies
/// in [0, upper) (the rays that touch the line). u is monotone in q along a run (c is, and b
/// follows c), so two binary searches on the exact expression the kernels evaluate find it.
pub(crate) fn hit_range(b: &[f32], c: &[f32], w: f32, upper: f32) -> (usize, usize) {
    let n = b.len();
    if n == 0 {
        return (0, 0);
    }
    let u = |q: usize| b[q] + w * c[q];
    let (q0, q1) = if u(n - 1) >= u(0) {
        (first(n, |q| u(q) >= 0.0), first(n, |q| u(q) >= upper))
    } else {
        (first(n, |q| u(q) < upper), first(n, |q| u(q) < 0.0))
    };
    (q0, q1.max(q0))
}

/// [`hit_range`] for successive lines of one run, found by walking from the previous line's
/// range instead of searching: from one line to the next, u moves by c (|c| ≤ 1) and the ends
/// of the range by a few rays, so each line costs a few evaluations instead of two binary
/// searches. Gives the same ranges as [`hit_range`] (both ends are found exactly).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct HitWalker {
    q0: usize,
    q1: usize,
}

impl HitWalker {
    /// [`hit_range`]`(b, c, w, upper)`, walking from the last call's range.
    pub(crate) fn next(&mut self, b: &[f32], c: &[f32], w: f32, upper: f32) -> (usize, usize) {
        let n = b.len();
        if n == 0 {
            return (0, 0);
        }
        let u = |q: usize| b[q] + w * c[q];
        let (q0, q1) = if u(n - 1) >= u(0) {
            (
                walk(n, self.q0, |q| u(q) >= 0.0),
                walk(n, self.q1, |q| u(q) >= upper),
            )
        } else {
            (
                walk(n, self.q0, |q| u(q) < upper),
                walk(n, self.q1, |q| u(q) < 0.0),
            )
        };
        let q1 = q1.max(q0);
        *self = HitWalker { q0, q1 };
        (q0, q1)
    }
}

/// The least q in [0, n) with `pred(q)` (n if none), for a predicate false then true, found by
/// walking from `start` (n counts as true).
fn walk(n: usize, start: usize, pred: impl Fn(usize) -> bool) -> usize {
    let mut q = start.min(n);
    if q == n || pred(q) {
        while q > 0 && pred(q - 1) {
            q -= 1;
        }
    } else {
        while q < n && !pred(q) {
            q += 1;
        }
    }
    q
}

/// [q0, q1) widened within [0, n) to a multiple of 8 rays where the run has that many (the
/// vector kernels take rays 8 at a time; the added rays miss the lines, so they read zeros or
/// add into the padding).
pub(crate) fn widen_to_8(q0: usize, q1: usize, n: usize) -> (usize, usize) {
    let want = (q1 - q0).next_multiple_of(8).min(n);
    let hi = (q0 + want).min(n);
    (hi - want, hi)
}

/// The least q in [0, n) with `pred(q)` (n if none), for a predicate false then true.
fn first(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0usize, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fan::{DetectorKind, FanGeometry};

    /// Walking from line to line finds the same ranges as the binary searches, for every run
    /// of a full scan and of a wide-fan short scan, lines in either order.
    #[test]
    fn walked_hit_ranges_equal_the_searched_ones() {
        for kind in [DetectorKind::Flat, DetectorKind::Equiangular] {
            let k = FanGeometry::default_n_det(24, 48.0, kind) + 6;
            let full = FanGeometry::full_scan(24, 48, 48.0, 96.0, kind, k).with_det_offset(0.25);
            let wide = FanGeometry::full_scan(25, 30, 20.0, 32.0, kind, 3 * k)
                .with_det_spacing(0.4)
                .with_short_scan(30);
            for g in [full, wide] {
                let t = RayTables::new(&g);
                let (n, upper) = (g.size, g.size as f32 + 1.0);
                let centre = (n as f32 - 1.0) / 2.0;
                for v in 0..g.n_views() {
                    for run in &t.runs[v] {
                        let (b, c) = t.run_tables(v, run);
                        for lines in [(0..n).collect::<Vec<_>>(), (0..n).rev().collect()] {
                            let mut walker = HitWalker::default();
                            for &l in &lines {
                                let w = l as f32 - centre;
                                let searched = hit_range(b, c, w, upper);
                                assert_eq!(walker.next(b, c, w, upper), searched, "{v} {l}");
                            }
                        }
                    }
                }
            }
        }
    }
}
