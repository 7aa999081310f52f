//! Parallel-beam Radon transform with an exact adjoint.
//!
//! Convention (shared by the whole project): image row 0 at the top, x to the right, y up,
//! pixels of unit width with centres x_j = j − (N−1)/2, y_i = (N−1)/2 − i (rotation centre at
//! the geometric centre of the image); detector bin k at t_k = (k − (n_det−1)/2)·det_spacing;
//! the ray of view θ and bin k is the line x cosθ + y sinθ = t_k; sinograms are [views, n_det]
//! and hold line integrals in pixel units.

use crate::error::{OpError, Result};

/// Parallel-beam acquisition geometry: image size, view angles and the detector.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RadonGeometry {
    /// Image side N (the image is N×N pixels of unit width).
    pub size: usize,
    /// View angles θ in radians.
    pub angles: Vec<f32>,
    /// Number of detector bins.
    pub n_det: usize,
    /// Detector bin width in pixel units.
    pub det_spacing: f32,
}

impl RadonGeometry {
    /// `n_views` angles k·π/n_views, k = 0..n_views (equispaced over [0, π)), unit detector
    /// spacing.
    pub fn equispaced(size: usize, n_views: usize, n_det: usize) -> Self {
        let angles = (0..n_views)
            .map(|k| (k as f64 * std::f64::consts::PI / n_views as f64) as f32)
            .collect();
        RadonGeometry {
            size,
            angles,
            n_det,
            det_spacing: 1.0,
        }
    }

    /// Explicit view angles in degrees, unit detector spacing.
    pub fn from_degrees(size: usize, degrees: &[f32], n_det: usize) -> Self {
        RadonGeometry {
            size,
            angles: degrees
                .iter()
                .map(|&d| (d as f64).to_radians() as f32)
                .collect(),
            n_det,
            det_spacing: 1.0,
        }
    }

    /// Explicit view angles in radians, unit detector spacing.
    pub fn from_radians(size: usize, angles: Vec<f32>, n_det: usize) -> Self {
        RadonGeometry {
            size,
            angles,
            n_det,
            det_spacing: 1.0,
        }
    }

    /// The same geometry with detector bin width `det_spacing` (pixel units).
    pub fn with_det_spacing(mut self, det_spacing: f32) -> Self {
        self.det_spacing = det_spacing;
        self
    }

    /// The default detector count ⌈√2·N⌉ (363 for N = 256): unit bins covering the image
    /// diagonal, so every pixel projects onto the detector at every angle.
    pub fn default_n_det(size: usize) -> usize {
        (std::f64::consts::SQRT_2 * size as f64).ceil() as usize
    }

    /// Number of views.
    pub fn n_views(&self) -> usize {
        self.angles.len()
    }

    /// Position t_k = (k − (n_det−1)/2)·det_spacing of detector bin k (pixel units).
    pub fn det_position(&self, k: usize) -> f64 {
        (k as f64 - (self.n_det as f64 - 1.0) / 2.0) * self.det_spacing as f64
    }

    /// Checks that the geometry is usable: N ≥ 1, at least one view, n_det ≥ 1, a finite
    /// positive detector spacing and finite angles.
    pub fn validate(&self) -> Result<()> {
        let param = |name, reason: &str| {
            Err(OpError::Param {
                name,
                reason: reason.to_string(),
            })
        };
        if self.size == 0 {
            return param("size", "the image size must be at least 1");
        }
        if self.angles.is_empty() {
            return param("angles", "at least one view angle is required");
        }
        if self.angles.iter().any(|a| !a.is_finite()) {
            return param("angles", "view angles must be finite");
        }
        if self.n_det == 0 {
            return param("n_det", "at least one detector bin is required");
        }
        if !(self.det_spacing.is_finite() && self.det_spacing > 0.0) {
            return param("det_spacing", "must be finite and positive");
        }
        Ok(())
    }
}
