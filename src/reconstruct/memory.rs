//! Memory estimates of reconstructions, checked against the run's budget
//! ([`crate::io::memory::Budget`]) before the large buffers are allocated.

use crate::io::measurement::Geometry;
use crate::io::memory::{bytes_of, F32};
use crate::model::LoadedModel;
use crate::reconstruct::score::DENSE_VIEWS;
use crate::reconstruct::ReconJob;
use crate::task::Method;
use medsgm_recon::InverseMethod;

/// The size of one reconstruction, for its memory estimate ([`recon_bytes`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReconSize {
    /// CT or MAR on a `size`² image: `views` in the full view set, `n_det` bins of
    /// `det_spacing` pixels, parallel or fan beam.
    Ct {
        /// Image side.
        size: usize,
        /// Views of the full view set.
        views: usize,
        /// Detector bins.
        n_det: usize,
        /// Bin width in pixels.
        det_spacing: f32,
        /// Fan beam (per-ray tables) rather than parallel beam.
        fan: bool,
    },
    /// MRI on an `h`×`w` image.
    Mri {
        /// Image rows.
        h: usize,
        /// Image columns.
        w: usize,
    },
}

impl ReconSize {
    /// The size of a measurement described by `geometry`.
    pub fn of(geometry: &Geometry) -> Self {
        match geometry {
            Geometry::ParallelBeam {
                size,
                angles_deg,
                n_det,
                det_spacing,
            } => ReconSize::Ct {
                size: *size,
                views: angles_deg.len(),
                n_det: *n_det,
                det_spacing: *det_spacing,
                fan: false,
            },
            Geometry::FanBeam {
                size,
                angles_deg,
                n_det,
                ..
            } => ReconSize::Ct {
                size: *size,
                views: angles_deg.len(),
                n_det: *n_det,
                det_spacing: 1.0,
                fan: true,
            },
            Geometry::Cartesian { h, w } => ReconSize::Mri { h: *h, w: *w },
        }
    }

    /// Image rows and columns.
    fn image(&self) -> (u64, u64) {
        match *self {
            ReconSize::Ct { size, .. } => (size as u64, size as u64),
            ReconSize::Mri { h, w } => (h as u64, w as u64),
        }
    }
}

/// Estimated peak memory (bytes) of reconstructing `images` measurements of `size` together
/// with the method of `job` (and, for score methods, `model`): generous counts of the large
/// buffers — the image planes of the solver, the sinogram planes (the parallel-beam adjoint's
/// padded views, the fan beam's per-ray tables) or k-space planes, and for score methods the
/// network's activations for all `images × samples` images at the image's size (the full
/// training-time figure for DPS, which back-propagates through the network, a quarter of it
/// otherwise).
pub fn recon_bytes(
    job: &ReconJob,
    size: ReconSize,
    images: usize,
    model: Option<&LoadedModel>,
) -> u64 {
    let (h, w) = size.image();
    let pixels = h.saturating_mul(w);
    let score = job.score.as_ref().map(|c| c.method);
    let samples = job.samples() as u64;
    let batch = (images as u64).saturating_mul(samples).max(1);
    // image planes per image of the batch: solver state, TV duals, outputs
    let image_planes: u64 = match (job.method, score) {
        (_, Some(_)) => 12,
        (Method::FistaTv, _) => 10,
        _ => 4,
    };
    let measurement = match size {
        ReconSize::Ct {
            size,
            views,
            n_det,
            det_spacing,
            fan,
        } => {
            let views = match score {
                // parallel beam: the dense operator of at least DENSE_VIEWS views
                Some(_) if !fan => views.max(DENSE_VIEWS),
                _ => views,
            } as u64;
            let per_view = if fan {
                // sinogram and three per-ray tables
                4 * n_det as u64
            } else {
                // the adjoint's zero margin on both sides of each view
                let reach = size as f64 * std::f64::consts::FRAC_1_SQRT_2 / f64::from(det_spacing);
                n_det as u64 + 2 * (reach.min(1e12) as u64 + 16)
            };
            // sinogram planes: data, filtered/padded copies, forward, residual, masks
            bytes_of(&[(views.saturating_mul(per_view).saturating_mul(6), F32)])
        }
        // complex k-space planes (8 bytes): data, mask, FFT in and out, residual, gathered y
        ReconSize::Mri { .. } => bytes_of(&[(pixels.saturating_mul(6), 8)]),
    };
    let network = match (model, score) {
        (Some(model), Some(method)) => {
            let mut config = model.meta.model.clone();
            let side = h.max(w) as usize;
            let from = config.image_size.max(1);
            config.attn_resolutions = config
                .attn_resolutions
                .iter()
                .map(|r| r.saturating_mul(side) / from)
                .collect();
            config.image_size = side;
            let share = if method == InverseMethod::Dps {
                1.0
            } else {
                0.25
            };
            let floats = config.activation_floats_per_image() * share * batch as f64;
            (floats * F32 as f64).min(u64::MAX as f64) as u64
        }
        _ => 0,
    };
    bytes_of(&[(pixels.saturating_mul(image_planes), F32)])
        .saturating_mul(batch)
        .saturating_add(measurement.saturating_mul(images.max(1) as u64))
        .saturating_add(network)
}
