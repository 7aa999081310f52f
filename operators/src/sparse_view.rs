//! Sparse-view CT in the decomposed form A = P(Λ)R of thesis §8.2.
//!
//! The measured views are kept exactly as acquired and merged into a dense equispaced grid of
//! `dense` views over [0°, 180°): grid angles within half a grid step of a measured view are
//! dropped, so the dense transform R holds every measured angle once and Λ selects the measured
//! rows. The measured set therefore stays exactly what the scanner (or the simulation) used —
//! for example 23 equispaced views — even when the view count does not divide `dense`, and the
//! data-consistency step of Theorem 8.1 acts on a sinogram whose unmeasured rows are the
//! grid's views.

use crate::linop::check_shape;
use crate::radon::{Radon, RadonGeometry};
use crate::{OpError, Result, Subsampled};
use ndarray::{Array1, Array2, ArrayView2};
use std::f64::consts::PI;

/// A = P(Λ)R for sparse-view CT: the operator over the merged view set and, for each measured
/// view (in acquisition order), its row in R's sinogram.
pub struct SparseViewCt {
    /// The decomposed operator; its mask marks the measured rows.
    pub op: Subsampled<Radon>,
    /// `rows[i]` is the row of R's sinogram holding measured view `i`.
    pub rows: Vec<usize>,
}

impl SparseViewCt {
    /// Builds A = P(Λ)R for the views of `measured` inside a dense grid of `dense` views
    /// (same image size, detector count and spacing as `measured`).
    pub fn new(measured: &RadonGeometry, dense: usize) -> Result<Self> {
        if measured.angles.is_empty() {
            return Err(OpError::Param {
                name: "measured views",
                reason: "no views".into(),
            });
        }
        let step = PI / dense.max(1) as f64;
        let near = |a: f64, b: f64| {
            let d = (a - b).rem_euclid(PI);
            d.min(PI - d) < 0.5 * step
        };
        // (angle, measured index) pairs: the measured views and the grid angles they leave free.
        let mut views: Vec<(f64, Option<usize>)> = measured
            .angles
            .iter()
            .enumerate()
            .map(|(i, &a)| (a as f64, Some(i)))
            .collect();
        views.extend(
            (0..dense)
                .map(|k| k as f64 * step)
                .filter(|&g| !measured.angles.iter().any(|&a| near(a as f64, g)))
                .map(|g| (g, None)),
        );
        views.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut rows = vec![0; measured.angles.len()];
        for (row, (_, m)) in views.iter().enumerate() {
            if let Some(i) = m {
                rows[*i] = row;
            }
        }
        let geometry = RadonGeometry {
            angles: views.iter().map(|v| v.0 as f32).collect(),
            ..measured.clone()
        };
        let n_det = geometry.n_det;
        let mask = Array2::from_shape_fn((views.len(), n_det), |(v, _)| views[v].1.is_some());
        let op = Subsampled::new(Radon::new(geometry)?, mask.into_dyn())?;
        Ok(Self { op, rows })
    }

    /// The measurement vector y = P(Λ)·(dense sinogram) of a measured sinogram
    /// `[measured views, det]` (rows in acquisition order).
    pub fn measurement(&self, sino: &ArrayView2<f32>) -> Result<Array1<f32>> {
        let n_det = self.op.transform().geometry().n_det;
        check_shape("measured sinogram", &[self.rows.len(), n_det], sino.shape())?;
        let mut full = Array2::<f32>::zeros((self.op.transform().geometry().n_views(), n_det));
        for (i, &row) in self.rows.iter().enumerate() {
            full.row_mut(row).assign(&sino.row(i));
        }
        Ok(self.op.gather(&full.view().into_dyn()))
    }
}
