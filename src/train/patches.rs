//! Patch-based training at the native pixel spacing (real-anatomy priors): slices are kept at
//! their acquired resolution and every draw is a random `p × p` patch, optionally flipped,
//! rotated, rescaled and intensity-jittered (the data are small: one or two volumes). The
//! network is fully convolutional, so a prior trained on patches of real anatomy at one
//! spacing is applied to whole slices of any matrix size at that spacing — the PaDIS setting
//! (Hu et al. 2024). Every draw also reports where its centre lies in the (augmented) slice,
//! for networks with PaDIS's positional channels ([`crate::nn::NcsnppConfig::positional`]).

use super::source::{image_seed, DataSource};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Augmentation of patch draws (`[data.patches]` of a `nifti-slices` training TOML).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchAugment {
    /// Rotation drawn uniformly in ±`rotate_deg` degrees.
    #[serde(default)]
    pub rotate_deg: f32,
    /// Zoom drawn uniformly in [1 − `scale`, 1 + `scale`] (0 keeps the native spacing).
    #[serde(default)]
    pub scale: f32,
    /// Intensities multiplied by a factor drawn in [1 − `intensity`, 1 + `intensity`], then
    /// clipped to [0, top], top the larger of 1 and the slices' maximum (air stays 0; values
    /// kept above the window, `hu_ceiling`, stay in their range).
    #[serde(default)]
    pub intensity: f32,
    /// Patches are redrawn (up to 8 times) until this fraction of their pixels exceed 0.1.
    #[serde(default = "default_patch_fill")]
    pub min_fill: f32,
}

fn default_patch_fill() -> f32 {
    0.2
}

impl PatchAugment {
    /// Checks the ranges.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (0.0..=180.0).contains(&self.rotate_deg),
            "patches.rotate_deg must be in [0, 180]"
        );
        anyhow::ensure!(
            (0.0..0.5).contains(&self.scale),
            "patches.scale must be in [0, 0.5)"
        );
        anyhow::ensure!(
            (0.0..0.5).contains(&self.intensity),
            "patches.intensity must be in [0, 0.5)"
        );
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.min_fill),
            "patches.min_fill must be in [0, 1]"
        );
        Ok(())
    }
}

/// Native-resolution slices drawn as augmented random patches, reproducibly from
/// (seed, step, index) like [`super::data::SlicePool`].
pub struct PatchPool {
    slices: Vec<Array2<f32>>,
    patch: usize,
    flip: bool,
    augment: PatchAugment,
    seed: u64,
    spacing_mm: Option<f32>,
    description: String,
    /// The largest intensity a patch may take (see [`PatchAugment::intensity`]).
    top: f32,
}

impl PatchPool {
    /// Patches of side `patch` from `slices` (at least one, values ≥ 0) whose pixels are
    /// `spacing_mm` apart.
    pub fn new(
        slices: Vec<Array2<f32>>,
        patch: usize,
        flip: bool,
        augment: PatchAugment,
        seed: u64,
        spacing_mm: Option<f32>,
        description: String,
    ) -> anyhow::Result<Self> {
        augment.validate()?;
        anyhow::ensure!(!slices.is_empty(), "{description}: no training slices");
        anyhow::ensure!(patch > 0, "patch size must be positive");
        let top = slices
            .iter()
            .flat_map(|s| s.iter())
            .fold(1.0f32, |m, &v| m.max(v));
        Ok(Self {
            top,
            slices,
            patch,
            flip,
            augment,
            seed,
            spacing_mm,
            description,
        })
    }
}

/// Bilinear sample of `img` at continuous pixel-centre coordinates (row `y`, column `x`),
/// zero outside the image.
fn bilinear_zero(img: &Array2<f32>, y: f32, x: f32) -> f32 {
    let (h, w) = img.dim();
    let (y0, x0) = (y.floor(), x.floor());
    let (fy, fx) = (y - y0, x - x0);
    let at = |r: f32, c: f32| -> f32 {
        if r < 0.0 || c < 0.0 || r >= h as f32 || c >= w as f32 {
            0.0
        } else {
            img[[r as usize, c as usize]]
        }
    };
    let top = at(y0, x0) * (1.0 - fx) + at(y0, x0 + 1.0) * fx;
    let bot = at(y0 + 1.0, x0) * (1.0 - fx) + at(y0 + 1.0, x0 + 1.0) * fx;
    top * (1.0 - fy) + bot * fy
}

/// Where and how one patch is cut: its centre (cy, cx) in the slice (pixel-edge coordinates,
/// the slice centre at (h/2, w/2)), rotation θ, zoom s, column mirror (±1) and intensity gain.
#[derive(Clone, Copy, Debug)]
struct Pose {
    cy: f32,
    cx: f32,
    theta: f32,
    s: f32,
    mirror: f32,
    gain: f32,
}

/// A random pose for a `p × p` patch of an `h × w` slice under `aug`.
fn draw_pose(
    (h, w): (usize, usize),
    p: usize,
    rng: &mut ChaCha8Rng,
    aug: &PatchAugment,
    flip: bool,
) -> Pose {
    let half = p as f32 / 2.0;
    // Whole-pixel offsets: without rotation and zoom a patch is an exact crop.
    let centre = |n: usize, rng: &mut ChaCha8Rng| -> f32 {
        if n > p {
            rng.random_range(0..=n - p) as f32 + half
        } else {
            n as f32 / 2.0
        }
    };
    let cy = centre(h, rng);
    let cx = centre(w, rng);
    let theta = if aug.rotate_deg > 0.0 {
        rng.random_range(-aug.rotate_deg..=aug.rotate_deg)
            .to_radians()
    } else {
        0.0
    };
    let s = if aug.scale > 0.0 {
        rng.random_range(1.0 - aug.scale..=1.0 + aug.scale)
    } else {
        1.0
    };
    let gain = if aug.intensity > 0.0 {
        rng.random_range(1.0 - aug.intensity..=1.0 + aug.intensity)
    } else {
        1.0
    };
    let mirror = if flip && rng.random::<bool>() {
        -1.0
    } else {
        1.0
    };
    Pose {
        cy,
        cx,
        theta,
        s,
        mirror,
        gain,
    }
}

/// The patch of `img` at `pose`: output pixel (r, c) samples the input at
/// centre + R(θ) · s · M · d, d the offset of (r, c) from the patch centre and M the column
/// mirror. Also returns the patch centre's offset from the centre of the augmented slice (the
/// slice as the patch sees it: M Rᵀ / s applied to the centre's offset in `img`), so the
/// positional channels of a patch are an axis-aligned, unit-step grid as at inference.
fn render(img: &Array2<f32>, p: usize, pose: &Pose, top: f32) -> (Array2<f32>, [f32; 2]) {
    let (h, w) = img.dim();
    let half = p as f32 / 2.0;
    let Pose {
        cy,
        cx,
        theta,
        s,
        mirror,
        gain,
    } = *pose;
    let (sin, cos) = theta.sin_cos();
    let patch = Array2::from_shape_fn((p, p), |(r, c)| {
        let dy = (r as f32 + 0.5 - half) * s;
        let dx = (c as f32 + 0.5 - half) * s * mirror;
        let y = cy + cos * dy - sin * dx - 0.5;
        let x = cx + sin * dy + cos * dx - 0.5;
        (bilinear_zero(img, y, x) * gain).clamp(0.0, top)
    });
    let (oy, ox) = (cy - h as f32 / 2.0, cx - w as f32 / 2.0);
    let centre = [
        (cos * oy + sin * ox) / s,
        (-sin * oy + cos * ox) / s * mirror,
    ];
    (patch, centre)
}

/// One random augmented patch of `img` and its centre (see [`render`]).
fn draw_patch(
    img: &Array2<f32>,
    p: usize,
    rng: &mut ChaCha8Rng,
    aug: &PatchAugment,
    flip: bool,
    top: f32,
) -> (Array2<f32>, [f32; 2]) {
    render(img, p, &draw_pose(img.dim(), p, rng, aug, flip), top)
}

impl DataSource for PatchPool {
    fn image(&self, step: u64, index: usize) -> anyhow::Result<Array2<f32>> {
        Ok(self.image_at(step, index)?.0)
    }
    fn image_at(&self, step: u64, index: usize) -> anyhow::Result<(Array2<f32>, [f32; 2])> {
        let mut rng = ChaCha8Rng::seed_from_u64(image_seed(self.seed, step, index));
        let p = self.patch;
        let mut best = None;
        for _ in 0..8 {
            let img = &self.slices[rng.random_range(0..self.slices.len())];
            let (patch, centre) = draw_patch(img, p, &mut rng, &self.augment, self.flip, self.top);
            let fill = patch.iter().filter(|&&v| v > 0.1).count() as f32 / (p * p) as f32;
            if fill >= self.augment.min_fill {
                return Ok((patch, centre));
            }
            if best.as_ref().is_none_or(|(f, _)| fill > *f) {
                best = Some((fill, (patch, centre)));
            }
        }
        Ok(best.map(|(_, d)| d).expect("eight draws were made"))
    }
    fn describe(&self) -> String {
        self.description.clone()
    }
    fn pixel_spacing_mm(&self) -> Option<f32> {
        self.spacing_mm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(h: usize, w: usize) -> Array2<f32> {
        Array2::from_shape_fn((h, w), |(r, c)| (r * w + c) as f32 / (h * w) as f32)
    }

    #[test]
    fn an_unaugmented_patch_is_an_exact_crop() {
        let img = ramp(40, 30);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let aug = PatchAugment {
            rotate_deg: 0.0,
            scale: 0.0,
            intensity: 0.0,
            min_fill: 0.0,
        };
        let (p, centre) = draw_patch(&img, 16, &mut rng, &aug, false, 1.0);
        // Find the crop's offset from its first pixel and compare every pixel.
        let v = p[[0, 0]] * (40 * 30) as f32;
        let (r0, c0) = ((v.round() as usize) / 30, (v.round() as usize) % 30);
        for ((r, c), &x) in p.indexed_iter() {
            assert!((x - img[[r0 + r, c0 + c]]).abs() < 1e-5, "({r}, {c})");
        }
        // A plain crop's centre is its offset from the slice centre.
        assert_eq!(centre, [r0 as f32 + 8.0 - 20.0, c0 as f32 + 8.0 - 15.0]);
    }

    /// The positional grid of a rotated, zoomed, mirrored patch names the slice point each
    /// pixel samples: pixel d of the patch, at augmented-slice position a + d, samples the
    /// slice at its centre + R(θ) s M (a + d). Checked on a linear ramp, where bilinear
    /// sampling is exact.
    #[test]
    fn patch_centres_locate_every_pixel_in_the_augmented_slice() {
        let (h, w) = (80, 70);
        let ramp = |y: f32, x: f32| 0.2 + 0.004 * y + 0.003 * x;
        let img = Array2::from_shape_fn((h, w), |(r, c)| ramp(r as f32, c as f32));
        let pose = Pose {
            cy: 44.0,
            cx: 33.0,
            theta: 0.35,
            s: 1.1,
            mirror: -1.0,
            gain: 1.0,
        };
        let p = 20;
        let (patch, a) = render(&img, p, &pose, 1.0);
        let (sin, cos) = pose.theta.sin_cos();
        for ((r, c), &v) in patch.indexed_iter() {
            let vy = a[0] + r as f32 + 0.5 - p as f32 / 2.0;
            let vx = (a[1] + c as f32 + 0.5 - p as f32 / 2.0) * pose.mirror;
            let (uy, ux) = (
                pose.s * (cos * vy - sin * vx),
                pose.s * (sin * vy + cos * vx),
            );
            let expect = ramp(uy + (h as f32 - 1.0) / 2.0, ux + (w as f32 - 1.0) / 2.0);
            assert!((v - expect).abs() < 1e-4, "({r}, {c}): {v} vs {expect}");
        }
    }

    #[test]
    fn draws_are_reproducible_and_respect_the_fill() {
        let mut img = Array2::<f32>::zeros((64, 64));
        img.slice_mut(ndarray::s![20..44, 20..44]).fill(0.8);
        let aug = PatchAugment {
            rotate_deg: 10.0,
            scale: 0.1,
            intensity: 0.05,
            min_fill: 0.3,
        };
        let pool = PatchPool::new(vec![img], 32, true, aug, 7, Some(1.0), "t".into()).unwrap();
        let a = pool.image(5, 2).unwrap();
        assert_eq!(a, pool.image(5, 2).unwrap());
        assert_ne!(a, pool.image(6, 2).unwrap());
        for step in 0..20 {
            let p = pool.image(step, 0).unwrap();
            let fill = p.iter().filter(|&&v| v > 0.1).count() as f32 / 1024.0;
            assert!(fill >= 0.3, "step {step}: fill {fill}");
            assert!(p.iter().all(|v| (0.0..=1.0).contains(v)));
        }
    }
}
