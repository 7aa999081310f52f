//! The fan-beam projector F: ℝ^{N×N} → ℝ^{views×K} and its exact transpose.

use super::fbp_plan::{quarter_turn_orbits, FbpPlan};
use super::geometry::FanGeometry;
use super::kernels::{gather, gather4, scatter4_lines, scatter_lines, BLOCK_LINES, QUAD};
use super::rays::{hit_range, widen_to_8, Frame, HitWalker, RayTables};
use crate::error::Result;
use crate::linop::LinearOperator;
use crate::ramp::FilterCache;
use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, Axis, Ix2};
use rayon::prelude::*;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

/// Largest difference, in radians, between a view's source angle and a quarter turn from
/// another view's for the projector to trace the second view with the first one's rays rotated
/// ([`FanBeam`]): twice the rounding of an f32 angle in [0, 2π] (2⁻²¹ ≈ 4.8·10⁻⁷), so that
/// a full scan of 4k equispaced views, whatever way its f32 angles were rounded, qualifies.
const PROJECTOR_QUARTER_TURN_TOLERANCE: f64 = 1e-6;
/// Quarter-turn groups traced together by the forward pass ([`FanBeam::project_orbits`]).
const ORBIT_TILE: usize = 4;
/// Bytes of interleaved image lines ([`FanBeam::quarter_lines`]) per tile of the forward pass.
const LINE_TILE_BYTES: usize = 256 * 1024;

/// How a line of a frame of rotation k of the image (see [`FanBeam`]) is read from the image
/// f (or written into the adjoint): `SOURCES[frame][k]` = (from fᵀ rather than f, line l is
/// line N − 1 − l, position p is position N − 1 − p), frame 0 = rows, 1 = columns. The rotation
/// g_k = f∘R^k by k quarter turns has g₁[i][j] = f[N−1−j][i], g₂[i][j] = f[N−1−i][N−1−j],
/// g₃[i][j] = f[j][N−1−i]; its row l is row l of g_k, its column l is column l of g_k.
const SOURCES: [[(bool, bool, bool); QUAD]; 2] = [
    [
        (false, false, false),
        (true, false, true),
        (false, true, true),
        (true, true, false),
    ],
    [
        (true, false, false),
        (false, true, false),
        (true, true, true),
        (false, false, true),
    ],
];

/// The fan-beam transform of a pixel image as Joseph's ray-driven projector (P. M. Joseph,
/// "An improved algorithm for reprojecting rays through pixel images", IEEE TMI 1982) along
/// each source→bin ray of a [`FanGeometry`], with its exact transpose as the adjoint.
///
/// Each ray steps one image row at a time when it is closer to vertical (one column otherwise),
/// interpolates the image linearly along that line and multiplies the sum by the step length
/// 1/|d_w| (written in one row/column frame, see the `rays` module); per pixel, the matrix entry of ray q on line w is
/// ℓ(q)·max(0, 1 − |a_q(w) − a_pixel|). The forward pass gathers two pixels per ray and line
/// (views in parallel, 8 rays per AVX2 gather). The adjoint scatters the same two weights,
/// computed by the same f32 expression, into the same line, so Fᵀ is the transpose to rounding
/// without storing the matrix: blocks of 8 lines run in parallel, and within a block 8 rays'
/// indices and weights are computed for all 8 lines in vector registers and added line by line
/// (`kernels::scatter_lines`), so that successive additions hit different lines and
/// do not stall on one another. Sinograms hold line integrals in pixel units, like
/// [`crate::radon`].
///
/// Quarter-turn symmetry: when the views form groups of four whose source angles follow one
/// another by quarter turns (a full scan of 4k equispaced views, e.g. 360 or 720), the rays of
/// view β + kπ/2 are those of view β rotated by k quarter turns R^k about the isocentre, which
/// maps the pixel grid onto itself; Joseph's sum along R^k L through f is the sum along L
/// through g_k = f∘R^k, with the same lines, indices and weights (rows and columns trade
/// places). Such a geometry traces only the first view of each group: the four rotations of the
/// image are stored interleaved (a line of records, one value of each rotation per position),
/// so that one 8-float load per ray and line reads both interpolation neighbours of all four
/// rotations and one multiply-add applies the weights ([`crate::fan`]'s `kernels::gather4`); the
/// adjoint scatters the same weights into four interleaved accumulators and rotates them back
/// (`kernels::scatter4_lines`), so Fᵀ stays the transpose of this F to rounding. The group's
/// other views use the first view's rays, whose angles differ from theirs by at most
/// 10⁻⁶ rad (f32 rounding of the angles). Other view sets take the per-view path above.
#[derive(Debug, Clone)]
pub struct FanBeam {
    geometry: FanGeometry,
    rays: RayTables,
    pub(crate) filters: FilterCache,
    fbp_plan: OnceLock<Arc<FbpPlan>>,
    /// Quarter-turn groups of the views, [v₀, v₁, v₂, v₃] with β_{v_k} = β_{v₀} + kπ/2, when
    /// every view is in one; `None`: the per-view path.
    orbits: Option<Vec<[usize; 4]>>,
}

impl FanBeam {
    /// Builds the operator for `geometry` (validated, see [`FanGeometry::validate`]).
    pub fn new(geometry: FanGeometry) -> Result<FanBeam> {
        geometry.validate()?;
        let rays = RayTables::new(&geometry);
        let orbits = quarter_turn_orbits(&geometry.angles, PROJECTOR_QUARTER_TURN_TOLERANCE);
        Ok(FanBeam {
            geometry,
            rays,
            filters: FilterCache::default(),
            fbp_plan: OnceLock::new(),
            orbits,
        })
    }

    /// The acquisition geometry.
    pub fn geometry(&self) -> &FanGeometry {
        &self.geometry
    }

    /// The geometry-only part of fan-beam FBP, computed on first use.
    pub(crate) fn fbp_plan(&self) -> &FbpPlan {
        self.fbp_plan
            .get_or_init(|| Arc::new(FbpPlan::new(&self.geometry)))
    }

    /// F x for an N×N image (panics on a wrong shape; see [`crate::linop::check_shape`]):
    /// Joseph's projector, over quarter-turn groups of views where the geometry has them.
    pub fn project(&self, image: &ArrayView2<f32>) -> Array2<f32> {
        let n = self.geometry.size;
        assert_eq!(image.dim(), (n, n), "FanBeam::project: image shape");
        match &self.orbits {
            Some(orbits) => self.project_orbits(image, orbits),
            None => self.project_per_view(image),
        }
    }

    /// Fᵀ y for a [views, K] sinogram: the exact transpose of [`FanBeam::project`].
    pub fn backproject(&self, sino: &ArrayView2<f32>) -> Array2<f32> {
        let g = &self.geometry;
        assert_eq!(
            sino.dim(),
            (g.n_views(), g.n_det),
            "FanBeam::backproject: sinogram shape"
        );
        match &self.orbits {
            Some(orbits) => self.backproject_orbits(sino, orbits),
            None => self.backproject_per_view(sino),
        }
    }

    /// [`FanBeam::project`] one view at a time, each with its own rays.
    fn project_per_view(&self, image: &ArrayView2<f32>) -> Array2<f32> {
        let g = &self.geometry;
        let n = g.size;
        let stride = n + 3;
        let mut rows = vec![0.0f32; n * stride];
        let mut cols = vec![0.0f32; n * stride];
        for ((i, j), &v) in image.indexed_iter() {
            rows[i * stride + j + 1] = v;
            cols[j * stride + i + 1] = v;
        }
        let centre = (n as f32 - 1.0) / 2.0;
        let upper = n as f32 + 1.0;
        let t = &self.rays;
        let mut sino = Array2::<f32>::zeros((g.n_views(), g.n_det));
        sino.axis_iter_mut(Axis(0))
            .into_par_iter()
            .enumerate()
            .for_each(|(v, mut out)| {
                let out = out
                    .as_slice_mut()
                    .expect("freshly allocated sinogram rows are contiguous");
                for run in &t.runs[v] {
                    let lines = match run.frame {
                        Frame::Rows => &rows,
                        Frame::Cols => &cols,
                    };
                    let (b, c) = t.run_tables(v, run);
                    let seg = &mut out[run.start..run.end];
                    for (l, line) in lines.chunks_exact(stride).enumerate() {
                        let w = l as f32 - centre;
                        let (q0, q1) = hit_range(b, c, w, upper);
                        if q0 < q1 {
                            gather(&mut seg[q0..q1], line, &b[q0..q1], &c[q0..q1], w);
                        }
                    }
                }
                let len = &t.len[v * g.n_det..(v + 1) * g.n_det];
                out.iter_mut().zip(len).for_each(|(o, &l)| *o *= l);
            });
        sino
    }

    /// The transpose of [`FanBeam::project_per_view`].
    fn backproject_per_view(&self, sino: &ArrayView2<f32>) -> Array2<f32> {
        let t = &self.rays;
        let mut scaled = sino.as_standard_layout().into_owned();
        scaled
            .as_slice_mut()
            .expect("freshly copied sinogram is contiguous")
            .iter_mut()
            .zip(&t.len)
            .for_each(|(y, &l)| *y *= l);
        let rows = self.scatter_frame(&scaled, Frame::Rows);
        let cols = self.scatter_frame(&scaled, Frame::Cols);
        rows + cols.t()
    }

    /// The transpose of the forward pass restricted to the rays stepping through `frame`,
    /// as an image in that frame's line layout ([line, position]: the image for rows, its
    /// transpose for columns); `scaled` is the sinogram times the ray step lengths.
    fn scatter_frame(&self, scaled: &Array2<f32>, frame: Frame) -> Array2<f32> {
        let n = self.geometry.size;
        let stride = n + 3;
        let centre = (n as f32 - 1.0) / 2.0;
        let upper = n as f32 + 1.0;
        let t = &self.rays;
        let mut image = Array2::<f32>::zeros((n, n));
        image
            .axis_chunks_iter_mut(Axis(0), BLOCK_LINES)
            .into_par_iter()
            .enumerate()
            .for_each(|(blk, mut out)| {
                let l0 = blk * BLOCK_LINES;
                let mut acc = vec![0.0f32; out.nrows() * stride];
                let w0 = l0 as f32 - centre;
                for (v, y) in scaled.outer_iter().enumerate() {
                    let y = y.as_slice().expect("sinogram rows are contiguous");
                    for run in t.runs[v].iter().filter(|r| r.frame == frame) {
                        let (b, c) = t.run_tables(v, run);
                        let y = &y[run.start..run.end];
                        // the rays touching any line of the block
                        let (q0, q1) = (0..out.nrows())
                            .map(|dl| hit_range(b, c, w0 + dl as f32, upper))
                            .filter(|(a, b)| a < b)
                            .fold((usize::MAX, 0), |(lo, hi), (a, b)| (lo.min(a), hi.max(b)));
                        if q0 < q1 {
                            scatter_lines(&mut acc, stride, &y[q0..q1], &b[q0..q1], &c[q0..q1], w0);
                        }
                    }
                }
                for (mut row, line) in out.outer_iter_mut().zip(acc.chunks_exact(stride)) {
                    row.iter_mut().zip(&line[1..=n]).for_each(|(o, &a)| *o = a);
                }
            });
        image
    }

    /// The padded lines of the four quarter-turn rotations of `image`, interleaved: for frame
    /// 0 (rows) and 1 (columns), N lines of N + 3 records of 4 floats, record p of line l =
    /// position p − 1 of line l of g₀..g₃ (see [`SOURCES`]), zero records at p = 0, N + 1, N + 2.
    fn quarter_lines(image: &ArrayView2<f32>) -> [Vec<f32>; 2] {
        let n = image.nrows();
        let stride = QUAD * (n + 3);
        let f = image.as_standard_layout();
        let ft = image.t().as_standard_layout().into_owned();
        let (f, ft) = (
            f.as_slice().expect("standard layout"),
            ft.as_slice().expect("standard layout"),
        );
        SOURCES.map(|sources| {
            let mut lines = vec![0.0f32; n * stride];
            lines
                .par_chunks_mut(stride)
                .enumerate()
                .for_each(|(l, line)| {
                    for (s, &(transposed, flip_line, flip_pos)) in sources.iter().enumerate() {
                        let m = if transposed { ft } else { f };
                        let src = if flip_line { n - 1 - l } else { l };
                        let row = &m[src * n..(src + 1) * n];
                        let recs = line[QUAD..QUAD * (n + 1)].chunks_exact_mut(QUAD);
                        if flip_pos {
                            recs.zip(row.iter().rev()).for_each(|(r, &v)| r[s] = v);
                        } else {
                            recs.zip(row).for_each(|(r, &v)| r[s] = v);
                        }
                    }
                });
            lines
        })
    }

    /// [`FanBeam::project`] over quarter-turn groups: each group traces its first view's rays
    /// once through the interleaved rotations ([`FanBeam::quarter_lines`]), one output per
    /// rotation.
    fn project_orbits(&self, image: &ArrayView2<f32>, orbits: &[[usize; 4]]) -> Array2<f32> {
        let g = &self.geometry;
        let (n, k) = (g.size, g.n_det);
        let stride = QUAD * (n + 3);
        let frames = Self::quarter_lines(image);
        let centre = (n as f32 - 1.0) / 2.0;
        let upper = n as f32 + 1.0;
        let t = &self.rays;
        let mut sino = Array2::<f32>::zeros((g.n_views(), k));
        let mut rows: Vec<Option<&mut [f32]>> = sino
            .as_slice_mut()
            .expect("freshly allocated sinogram is contiguous")
            .chunks_exact_mut(k)
            .map(Some)
            .collect();
        let mut groups: Vec<(usize, [&mut [f32]; 4])> = orbits
            .iter()
            .map(|o| {
                let outs = o.map(|v| rows[v].take().expect("quarter-turn groups are disjoint"));
                (o[0], outs)
            })
            .collect();
        // Tiles of ORBIT_TILE groups × LINE_TILE lines keep the lines read and the groups'
        // sums in the L2 cache while every group of the tile reads the same lines.
        let line_tile = (LINE_TILE_BYTES / (stride * 4)).max(1);
        groups.par_chunks_mut(ORBIT_TILE).for_each(|tile| {
            // per group, its rays' partial sums [K, 8] and a walker per run
            let mut acc = vec![0.0f32; tile.len() * 2 * QUAD * k];
            let mut walkers: Vec<Vec<HitWalker>> = tile
                .iter()
                .map(|(v, _)| vec![HitWalker::default(); t.runs[*v].len()])
                .collect();
            for l0 in (0..n).step_by(line_tile) {
                let l1 = (l0 + line_tile).min(n);
                for (((v, _), acc), walkers) in tile
                    .iter()
                    .zip(acc.chunks_exact_mut(2 * QUAD * k))
                    .zip(&mut walkers)
                {
                    for (run, walker) in t.runs[*v].iter().zip(walkers.iter_mut()) {
                        let lines = &frames[run.frame as usize];
                        let (b, c) = t.run_tables(*v, run);
                        let acc = &mut acc[2 * QUAD * run.start..2 * QUAD * run.end];
                        for l in l0..l1 {
                            let w = l as f32 - centre;
                            let (q0, q1) = walker.next(b, c, w, upper);
                            if q0 < q1 {
                                let (q0, q1) = widen_to_8(q0, q1, b.len());
                                let a = &mut acc[2 * QUAD * q0..2 * QUAD * q1];
                                let line = &lines[l * stride..(l + 1) * stride];
                                gather4(a, line, &b[q0..q1], &c[q0..q1], w);
                            }
                        }
                    }
                }
            }
            for ((v, outs), acc) in tile.iter_mut().zip(acc.chunks_exact(2 * QUAD * k)) {
                let len = &t.len[*v * k..(*v + 1) * k];
                for (q, (a, &l)) in acc.chunks_exact(2 * QUAD).zip(len).enumerate() {
                    for (s, out) in outs.iter_mut().enumerate() {
                        out[q] = l * (a[s] + a[QUAD + s]);
                    }
                }
            }
        });
        sino
    }

    /// The transpose of [`FanBeam::project_orbits`]. Tasks take a block of lines and its mirror
    /// image (lines l and N − 1 − l), which own the same rows of the two output images (the
    /// image and its transpose, summed at the end) for every rotation; per frame and block, the
    /// rays of all groups are scattered into interleaved accumulators ([`scatter4_lines`]),
    /// then each rotation is turned back into its rows.
    fn backproject_orbits(&self, sino: &ArrayView2<f32>, orbits: &[[usize; 4]]) -> Array2<f32> {
        let g = &self.geometry;
        let (n, k) = (g.size, g.n_det);
        let t = &self.rays;
        // per group and ray, the group's four values times the ray length
        let mut y4 = vec![0.0f32; orbits.len() * QUAD * k];
        y4.par_chunks_mut(QUAD * k).zip(orbits).for_each(|(y, o)| {
            let len = &t.len[o[0] * k..(o[0] + 1) * k];
            for (s, &v) in o.iter().enumerate() {
                let row = sino.row(v);
                for ((r, &l), &x) in y.chunks_exact_mut(QUAD).zip(len).zip(row.iter()) {
                    r[s] = l * x;
                }
            }
        });
        let mut image = Array2::<f32>::zeros((n, n));
        let mut transposed = Array2::<f32>::zeros((n, n));
        let mut image_rows: Vec<Option<&mut [f32]>> = image
            .as_slice_mut()
            .expect("freshly allocated image is contiguous")
            .chunks_exact_mut(n)
            .map(Some)
            .collect();
        let mut transposed_rows: Vec<Option<&mut [f32]>> = transposed
            .as_slice_mut()
            .expect("freshly allocated image is contiguous")
            .chunks_exact_mut(n)
            .map(Some)
            .collect();
        let half = n.div_ceil(2);
        let tasks: Vec<MirrorBlock> = (0..half)
            .step_by(BLOCK_LINES)
            .map(|l0| {
                let l1 = (l0 + BLOCK_LINES).min(half);
                let (low, high) = (l0..l1, (n - l1).max(l1)..n - l0);
                let lines = || low.clone().chain(high.clone());
                let image = take_rows(&mut image_rows, lines());
                let transposed = take_rows(&mut transposed_rows, lines());
                MirrorBlock {
                    low,
                    high,
                    image,
                    transposed,
                }
            })
            .collect();
        tasks
            .into_par_iter()
            .for_each_init(Vec::new, |acc, mut task| {
                for frame in [Frame::Rows, Frame::Cols] {
                    for lines in [task.low.clone(), task.high.clone()] {
                        if lines.is_empty() {
                            continue;
                        }
                        self.scatter_orbits(acc, &y4, orbits, frame, lines.start, lines.len());
                        task.add_rotations(acc, frame, lines);
                    }
                }
            });
        image + transposed.t()
    }

    /// Scatters every quarter-turn group's rays of `frame` into `acc`, [`scatter4_lines`]'s
    /// accumulators for `count` lines from line `l0`; `y4` holds the groups' scaled values.
    fn scatter_orbits(
        &self,
        acc: &mut Vec<f32>,
        y4: &[f32],
        orbits: &[[usize; 4]],
        frame: Frame,
        l0: usize,
        count: usize,
    ) {
        let (n, k) = (self.geometry.size, self.geometry.n_det);
        let stride = n + 3;
        let centre = (n as f32 - 1.0) / 2.0;
        let upper = n as f32 + 1.0;
        let t = &self.rays;
        acc.clear();
        acc.resize(count * 2 * QUAD * stride, 0.0);
        let w0 = l0 as f32 - centre;
        for (o, y) in orbits.iter().zip(y4.chunks_exact(QUAD * k)) {
            for run in t.runs[o[0]].iter().filter(|r| r.frame == frame) {
                let (b, c) = t.run_tables(o[0], run);
                let y = &y[QUAD * run.start..QUAD * run.end];
                // the rays touching the first or last line of the block: u is linear in w
                // with |c| ≤ 1 and the block spans fewer than N + 1 lines, so a ray missing
                // both (on either side) misses every line between them (and rays added to
                // the range in between land in the padding)
                let (q0, q1) = [0, count - 1]
                    .map(|dl| hit_range(b, c, w0 + dl as f32, upper))
                    .into_iter()
                    .filter(|(a, b)| a < b)
                    .fold((usize::MAX, 0), |(lo, hi), (a, b)| (lo.min(a), hi.max(b)));
                if q0 < q1 {
                    let (q0, q1) = widen_to_8(q0, q1, b.len());
                    let y = &y[QUAD * q0..QUAD * q1];
                    scatter4_lines(acc, stride, y, &b[q0..q1], &c[q0..q1], w0);
                }
            }
        }
    }
}

/// The rows `lines` out of `rows` (each taken once).
fn take_rows<'a>(
    rows: &mut [Option<&'a mut [f32]>],
    lines: impl Iterator<Item = usize>,
) -> Vec<&'a mut [f32]> {
    lines
        .map(|l| rows[l].take().expect("blocks are disjoint"))
        .collect()
}

/// A task of [`FanBeam::backproject_orbits`]: the lines `low` (from the top) and `high` (their
/// mirror images N − 1 − l, less any line already in `low`), and those rows of the image and of
/// its transpose, `low` first.
struct MirrorBlock<'a> {
    low: Range<usize>,
    high: Range<usize>,
    image: Vec<&'a mut [f32]>,
    transposed: Vec<&'a mut [f32]>,
}

impl MirrorBlock<'_> {
    /// The task's row of line `l` (in `low` or `high`).
    fn slot(&self, l: usize) -> usize {
        if self.low.contains(&l) {
            l - self.low.start
        } else {
            self.low.len() + l - self.high.start
        }
    }

    /// Adds the accumulators `acc` of `lines` of `frame` ([`scatter4_lines`]: position p of
    /// rotation s is the first half of record p plus the second half of record p − 1) into the
    /// rows they came from ([`SOURCES`]).
    fn add_rotations(&mut self, acc: &[f32], frame: Frame, lines: Range<usize>) {
        let n = self.image.first().map_or(0, |r| r.len());
        let line_len = 2 * QUAD * (n + 3);
        for (l, line) in lines.zip(acc.chunks_exact(line_len)) {
            for (s, &(transposed, flip_line, flip_pos)) in
                SOURCES[frame as usize].iter().enumerate()
            {
                let slot = self.slot(if flip_line { n - 1 - l } else { l });
                let row = if transposed {
                    &mut *self.transposed[slot]
                } else {
                    &mut *self.image[slot]
                };
                let value = |p: usize| line[2 * QUAD * (p + 1) + s] + line[2 * QUAD * p + QUAD + s];
                if flip_pos {
                    row.iter_mut()
                        .rev()
                        .enumerate()
                        .for_each(|(p, o)| *o += value(p));
                } else {
                    row.iter_mut().enumerate().for_each(|(p, o)| *o += value(p));
                }
            }
        }
    }
}

impl LinearOperator for FanBeam {
    type In = f32;
    type Out = f32;

    fn domain_shape(&self) -> Vec<usize> {
        vec![self.geometry.size, self.geometry.size]
    }

    fn range_shape(&self) -> Vec<usize> {
        vec![self.geometry.n_views(), self.geometry.n_det]
    }

    fn forward(&self, x: &ArrayViewD<f32>) -> ArrayD<f32> {
        let x = x
            .view()
            .into_dimensionality::<Ix2>()
            .expect("FanBeam::forward expects a 2-D image");
        self.project(&x).into_dyn()
    }

    fn adjoint(&self, y: &ArrayViewD<f32>) -> ArrayD<f32> {
        let y = y
            .view()
            .into_dimensionality::<Ix2>()
            .expect("FanBeam::adjoint expects a 2-D sinogram");
        self.backproject(&y).into_dyn()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fan::DetectorKind;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(shape: (usize, usize), seed: u64) -> Array2<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Array2::from_shape_simple_fn(shape, || rng.random_range(-1.0f32..1.0))
    }

    /// max |a − b| / max |b|.
    fn rel_max(a: &Array2<f32>, b: &Array2<f32>) -> f32 {
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
    }

    /// Full scans of 4k views in both directions, both detectors, centred and offset
    /// detectors, wide and narrow fans, even and odd image sizes.
    fn quarter_turn_geometries() -> Vec<FanGeometry> {
        let mut out = Vec::new();
        for kind in [DetectorKind::Flat, DetectorKind::Equiangular] {
            for n in [24usize, 25] {
                let r = 2.0 * n as f32;
                let k = FanGeometry::default_n_det(n, r, kind) + 6;
                let base = FanGeometry::full_scan(n, 48, r, 2.0 * r, kind, k);
                let clockwise: Vec<f32> = base.angles.iter().map(|a| -a).collect();
                out.push(base.clone());
                out.push(base.clone().with_det_offset(0.25));
                out.push(base.clone().with_det_offset(-1.3).with_angles(clockwise));
                out.push(
                    FanGeometry::full_scan(n, 36, 0.8 * r, 1.3 * r, kind, 3 * k)
                        .with_det_spacing(0.4)
                        .with_det_offset(0.25),
                );
            }
        }
        out
    }

    /// The quarter-turn path takes every full scan of 4k views and reproduces the per-view
    /// path, forward and adjoint, on random data.
    #[test]
    fn quarter_turn_projector_matches_the_per_view_path() {
        for (i, g) in quarter_turn_geometries().into_iter().enumerate() {
            let op = FanBeam::new(g.clone()).expect("valid geometry");
            assert!(op.orbits.is_some(), "{i}: {g:?} has quarter-turn groups");
            let x = random((g.size, g.size), i as u64);
            let y = random((g.n_views(), g.n_det), 100 + i as u64);
            let fast = op.project(&x.view());
            let slow = op.project_per_view(&x.view());
            assert!(
                rel_max(&fast, &slow) < 1e-5,
                "{i}: forward {}",
                rel_max(&fast, &slow)
            );
            let fast = op.backproject(&y.view());
            let slow = op.backproject_per_view(&y.view());
            assert!(
                rel_max(&fast, &slow) < 1e-5,
                "{i}: adjoint {}",
                rel_max(&fast, &slow)
            );
        }
    }

    /// ⟨F x, y⟩ = ⟨x, Fᵀ y⟩ on the quarter-turn path (relative to ‖F x‖‖y‖).
    #[test]
    fn quarter_turn_adjoint_is_the_transpose() {
        for (i, g) in quarter_turn_geometries().into_iter().enumerate() {
            let op = FanBeam::new(g.clone()).expect("valid geometry");
            let dot = crate::linop::adjoint_test(&op, i as u64);
            assert!(dot.rel_error < 1e-6, "{i}: {dot:?}");
        }
    }

    /// View sets without quarter-turn groups keep the per-view path.
    #[test]
    fn other_view_sets_take_the_per_view_path() {
        let g = FanGeometry::full_scan(24, 48, 48.0, 96.0, DetectorKind::Flat, 61);
        let short = g.clone().with_short_scan(48);
        let odd = FanGeometry::full_scan(24, 45, 48.0, 96.0, DetectorKind::Flat, 61);
        let mut nudged = g.angles.clone();
        nudged[5] += 1e-4;
        for g in [short, odd, g.with_angles(nudged)] {
            assert!(FanBeam::new(g).expect("valid").orbits.is_none());
        }
    }
}
