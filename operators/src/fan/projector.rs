//! The fan-beam projector F: ℝ^{N×N} → ℝ^{views×K} and its exact transpose.

use super::fbp_plan::FbpPlan;
use super::geometry::FanGeometry;
use super::kernels::{gather, scatter_lines, BLOCK_LINES};
use super::rays::{hit_range, Frame, RayTables};
use crate::error::Result;
use crate::linop::LinearOperator;
use crate::ramp::FilterCache;
use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, Axis, Ix2};
use rayon::prelude::*;
use std::sync::{Arc, OnceLock};

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
#[derive(Debug, Clone)]
pub struct FanBeam {
    geometry: FanGeometry,
    rays: RayTables,
    pub(crate) filters: FilterCache,
    fbp_plan: OnceLock<Arc<FbpPlan>>,
}

impl FanBeam {
    /// Builds the operator for `geometry` (validated, see [`FanGeometry::validate`]).
    pub fn new(geometry: FanGeometry) -> Result<FanBeam> {
        geometry.validate()?;
        let rays = RayTables::new(&geometry);
        Ok(FanBeam {
            geometry,
            rays,
            filters: FilterCache::default(),
            fbp_plan: OnceLock::new(),
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

    /// F x for an N×N image (panics on a wrong shape; see [`crate::linop::check_shape`]).
    pub fn project(&self, image: &ArrayView2<f32>) -> Array2<f32> {
        let g = &self.geometry;
        let n = g.size;
        assert_eq!(image.dim(), (n, n), "FanBeam::project: image shape");
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

    /// Fᵀ y for a [views, K] sinogram: the exact transpose of [`FanBeam::project`].
    pub fn backproject(&self, sino: &ArrayView2<f32>) -> Array2<f32> {
        let g = &self.geometry;
        assert_eq!(
            sino.dim(),
            (g.n_views(), g.n_det),
            "FanBeam::backproject: sinogram shape"
        );
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
