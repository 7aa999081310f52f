//! 2-D fan-beam acquisition geometry (third-generation CT: a point source and a curved or flat
//! detector rotating together about the isocentre).
//!
//! Units: every length is in image pixels (pixel width 1, as in [`crate::radon`]); angles are in
//! radians. Data in millimetres are converted by dividing lengths by the pixel size.
//!
//! Convention (Kak & Slaney, "Principles of Computerized Tomographic Imaging", §3.4, with the
//! image convention of [`crate::radon`]): the source of view β sits at
//! S(β) = R·(−sin β, cos β); the ray at fan angle γ leaves S in the direction
//! (sin(β+γ), −cos(β+γ)) and is the parallel-beam ray of normal angle θ = β + γ at signed
//! distance t = R sin γ, i.e. the line x cos θ + y sin θ = t. At β = 0 the source is above the
//! image and the central ray points down, like the parallel view θ = 0.
//!
//! Detector bin k sits at the position u_k = (k − (K−1)/2 + o)·Δ along the detector (o the
//! offset in bins, Δ the bin pitch measured along the detector surface at the source-to-detector
//! distance D). Its fan angle is γ = u/D on an equiangular (curved) detector and γ = atan(u/D)
//! on a flat one ([`FanGeometry::fan_angle`]); everything else depends on the detector kind only
//! through this map and its inverse.

use crate::error::{OpError, Result};
use crate::radon::{DET_SPACING_RANGE, MAX_DETECTORS, MAX_SINOGRAM, MAX_SIZE, MAX_VIEWS};
use std::f64::consts::{PI, SQRT_2};

/// Largest source-to-isocentre or source-to-detector distance accepted by
/// [`FanGeometry::validate`], in pixels.
pub const MAX_DISTANCE: f32 = 1.0e7;
/// Least clearance, in pixels, between the source and the circle circumscribing the image
/// (the projector interpolates one pixel either side of each ray).
pub const SOURCE_CLEARANCE: f64 = 1.0;

/// Shape of the detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DetectorKind {
    /// An arc centred on the source (third-generation clinical CT): bins equispaced in fan
    /// angle, γ = u/D (Kak & Slaney §3.4.1).
    Equiangular,
    /// A flat panel (C-arm, benchtop CT): bins equispaced along the line, γ = atan(u/D)
    /// (Kak & Slaney §3.4.2).
    Flat,
}

/// A fan-beam acquisition: image size, source angles and the source–detector assembly (see the
/// module documentation for the convention; all lengths in pixels).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FanGeometry {
    /// Image side N (the image is N×N pixels of unit width, centred on the isocentre).
    pub size: usize,
    /// Source angles β in radians, one per view.
    pub angles: Vec<f32>,
    /// Source-to-isocentre distance R, in pixels.
    pub source_distance: f32,
    /// Source-to-detector distance D (> R), in pixels.
    pub detector_distance: f32,
    /// Curved (equiangular) or flat (equispaced) detector.
    pub detector: DetectorKind,
    /// Number of detector bins K.
    pub n_det: usize,
    /// Bin pitch Δ along the detector surface at distance D, in pixels (arc length on an
    /// equiangular detector, so Δγ = Δ/D).
    pub det_spacing: f32,
    /// Detector offset o in bins: bin k sits at u_k = (k − (K−1)/2 + o)·Δ (0.25 is the usual
    /// quarter-detector shift).
    pub det_offset: f32,
}

impl FanGeometry {
    /// A full scan: `n_views` source angles 2πk/`n_views`, bins of unit width at the isocentre
    /// (Δ = D/R), no offset.
    pub fn full_scan(
        size: usize,
        n_views: usize,
        source_distance: f32,
        detector_distance: f32,
        detector: DetectorKind,
        n_det: usize,
    ) -> Self {
        FanGeometry {
            size,
            angles: equispaced(n_views, 2.0 * PI),
            source_distance,
            detector_distance,
            detector,
            n_det,
            det_spacing: detector_distance / source_distance,
            det_offset: 0.0,
        }
    }

    /// The same detector over a short scan: `n_views` angles β_k = k(π + 2γ_m)/`n_views`, the
    /// least arc that measures every line through the field of view once (Kak & Slaney
    /// §3.4.3; γ_m = [`FanGeometry::half_fan_angle`]). Apply after setting spacing and offset.
    pub fn with_short_scan(mut self, n_views: usize) -> Self {
        self.angles = equispaced(n_views, self.short_scan_range());
        self
    }

    /// The same geometry with bin pitch `det_spacing` (pixels along the detector).
    pub fn with_det_spacing(mut self, det_spacing: f32) -> Self {
        self.det_spacing = det_spacing;
        self
    }

    /// The same geometry with detector offset `det_offset` (bins).
    pub fn with_det_offset(mut self, det_offset: f32) -> Self {
        self.det_offset = det_offset;
        self
    }

    /// The same geometry with explicit source angles (radians).
    pub fn with_angles(mut self, angles: Vec<f32>) -> Self {
        self.angles = angles;
        self
    }

    /// The least odd bin count with unit pitch at the isocentre (Δ = D/R) whose fan covers the
    /// circle circumscribing a `size`² image (radius r = N/√2), so that every pixel is measured
    /// in every view: K = 2⌈R γ_r⌉ + 1 (equiangular) or 2⌈R tan γ_r⌉ + 1 (flat), sin γ_r = r/R.
    /// Returns 0 when the source lies inside that circle.
    pub fn default_n_det(size: usize, source_distance: f32, detector: DetectorKind) -> usize {
        let (r, big_r) = (size as f64 / SQRT_2, source_distance as f64);
        if big_r.partial_cmp(&r) != Some(std::cmp::Ordering::Greater) {
            return 0;
        }
        let gamma = (r / big_r).asin();
        let half = match detector {
            DetectorKind::Equiangular => big_r * gamma,
            DetectorKind::Flat => big_r * gamma.tan(),
        };
        2 * half.ceil() as usize + 1
    }

    /// Number of views.
    pub fn n_views(&self) -> usize {
        self.angles.len()
    }

    /// Position u_k = (k − (K−1)/2 + o)·Δ of bin k along the detector (pixels).
    pub fn det_position(&self, k: usize) -> f64 {
        (k as f64 - (self.n_det as f64 - 1.0) / 2.0 + self.det_offset as f64)
            * self.det_spacing as f64
    }

    /// Continuous bin index of detector position u (the inverse of
    /// [`FanGeometry::det_position`]).
    pub fn bin_of(&self, u: f64) -> f64 {
        u / self.det_spacing as f64 + (self.n_det as f64 - 1.0) / 2.0 - self.det_offset as f64
    }

    /// Fan angle γ(u) of detector position u: u/D (equiangular) or atan(u/D) (flat).
    pub fn fan_angle(&self, u: f64) -> f64 {
        let d = self.detector_distance as f64;
        match self.detector {
            DetectorKind::Equiangular => u / d,
            DetectorKind::Flat => (u / d).atan(),
        }
    }

    /// Detector position u(γ) of fan angle γ (|γ| < π/2): the inverse of
    /// [`FanGeometry::fan_angle`], D γ (equiangular) or D tan γ (flat).
    pub fn det_position_of(&self, gamma: f64) -> f64 {
        let d = self.detector_distance as f64;
        match self.detector {
            DetectorKind::Equiangular => d * gamma,
            DetectorKind::Flat => d * gamma.tan(),
        }
    }

    /// Fan angles of the first and last bin centres.
    pub fn fan_angle_range(&self) -> (f64, f64) {
        (
            self.fan_angle(self.det_position(0)),
            self.fan_angle(self.det_position(self.n_det.saturating_sub(1))),
        )
    }

    /// Half fan angle γ_m = max |γ_k| over the bin centres.
    pub fn half_fan_angle(&self) -> f64 {
        let (lo, hi) = self.fan_angle_range();
        lo.abs().max(hi.abs())
    }

    /// Arc of a short scan, π + 2γ_m (Kak & Slaney §3.4.3).
    pub fn short_scan_range(&self) -> f64 {
        PI + 2.0 * self.half_fan_angle()
    }

    /// Radius R sin(min(−γ_first, γ_last)) of the disc about the isocentre that every view
    /// measures whole (0 if the fan does not straddle the centre).
    pub fn fov_radius(&self) -> f64 {
        let (lo, hi) = self.fan_angle_range();
        self.source_distance as f64 * (-lo).min(hi).max(0.0).sin()
    }

    /// Checks that the geometry is bounded and physically possible: the bounds of
    /// [`crate::radon::RadonGeometry::validate`] (N ≤ 4096, 1 to 10⁵ finite angles, 1 to 16384
    /// bins, at most 2²⁷ sinogram entries, bin pitch projected to the isocentre, Δ·R/D, in
    /// [0.01, 100] pixels); finite distances up to [`MAX_DISTANCE`]; the source outside the
    /// circle circumscribing the image (radius N/√2) by [`SOURCE_CLEARANCE`]; D > R; a finite
    /// offset; every fan angle within ±90°; and a detector wide enough that every view measures
    /// the whole disc inscribed in the image (radius N/2, the reconstructed field of view).
    pub fn validate(&self) -> Result<()> {
        let err = |name, reason: String| Err(OpError::Param { name, reason });
        let n = self.size;
        if n == 0 || n > MAX_SIZE {
            return err(
                "size",
                format!("the image size must be 1 to {MAX_SIZE}, got {n}"),
            );
        }
        let views = self.angles.len();
        if views == 0 || views > MAX_VIEWS {
            return err(
                "angles",
                format!("1 to {MAX_VIEWS} views required, got {views}"),
            );
        }
        if self.angles.iter().any(|a| !a.is_finite()) {
            return err("angles", "source angles must be finite".into());
        }
        if self.n_det == 0 || self.n_det > MAX_DETECTORS {
            return err(
                "n_det",
                format!(
                    "1 to {MAX_DETECTORS} detector bins required, got {}",
                    self.n_det
                ),
            );
        }
        if self.n_det * views > MAX_SINOGRAM {
            return err(
                "n_det",
                format!(
                    "{views} views × {} bins exceed {MAX_SINOGRAM} sinogram entries",
                    self.n_det
                ),
            );
        }
        let (r, d) = (self.source_distance, self.detector_distance);
        for (name, v) in [("source_distance", r), ("detector_distance", d)] {
            if !(v.is_finite() && v > 0.0 && v <= MAX_DISTANCE) {
                return err(
                    name,
                    format!("must lie in (0, {MAX_DISTANCE}] pixels, got {v}"),
                );
            }
        }
        let circumscribed = n as f64 / SQRT_2;
        if (r as f64) < circumscribed + SOURCE_CLEARANCE {
            return err(
                "source_distance",
                format!(
                    "the source at {r} pixels from the isocentre is inside or within \
                     {SOURCE_CLEARANCE} pixel of the object: a {n}² image needs more than \
                     {:.2} pixels",
                    circumscribed + SOURCE_CLEARANCE
                ),
            );
        }
        if d <= r {
            return err(
                "detector_distance",
                format!(
                    "the source-to-detector distance {d} must exceed the source-to-isocentre \
                     distance {r}"
                ),
            );
        }
        let (lo, hi) = DET_SPACING_RANGE;
        let at_iso = self.det_spacing * r / d;
        if !(self.det_spacing.is_finite() && (lo..=hi).contains(&at_iso)) {
            return err(
                "det_spacing",
                format!(
                    "the bin pitch at the isocentre (Δ·R/D) must lie in [{lo}, {hi}] pixels, \
                     got {at_iso}"
                ),
            );
        }
        if !self.det_offset.is_finite() {
            return err("det_offset", "the detector offset must be finite".into());
        }
        if self.detector == DetectorKind::Equiangular && self.half_fan_angle() >= PI / 2.0 {
            return err(
                "det_spacing",
                "the equiangular detector spans more than ±90° of fan angle".into(),
            );
        }
        let (fov, needed) = (self.fov_radius(), n as f64 / 2.0);
        if fov < needed {
            return err(
                "n_det",
                format!(
                    "the detector covers a field of view of radius {fov:.2} pixels, less than \
                     the radius {needed} of the disc inscribed in the {n}² image: use more or \
                     wider bins"
                ),
            );
        }
        Ok(())
    }
}

/// `n` angles k·`arc`/n, k = 0..n.
fn equispaced(n: usize, arc: f64) -> Vec<f32> {
    (0..n).map(|k| (k as f64 * arc / n as f64) as f32).collect()
}
