//! Anatomical thoracic CT phantom: seeded, resolution-independent axial slices in Hounsfield
//! units, rich enough to train a CT score prior on and to simulate metal artefacts.
//!
//! Geometry is drawn from a `ChaCha8Rng` seeded with `seed` and lives in normalised
//! coordinates (the image square is [-1, 1]², x right, y up, see `phantom::raster`), so the same
//! seed gives the same anatomy at every image size; shapes are rasterised area-weighted
//! (supersampled at edges) and painted in anatomical layers, later layers occluding earlier ones.
//! Positions are expressed in a *body frame* (u, v) scaled by the body's semi-axes (u = ±1 at the
//! lateral skin, v = ±1 at the anterior/posterior skin) and organ sizes in an isotropic unit
//! √(a·b), so organs follow the body's size and shape.
//!
//! Display convention: radiological — the patient's right is on the image left, anterior up.
//!
//! Content, in painting order (HU values are centre values; each sample jitters them slightly):
//! air −1000; patient table +200 (optional); subcutaneous fat −100 inside an irregular body
//! outline with a flattened back; muscle +40 layer; mediastinal fat; two lungs −850 (denser
//! posteriorly, ±35 HU gravity gradient) with branching tapering vessels and vessel
//! cross-sections (+40) and optional nodules (+20…+100); liver (+58), spleen (+45) and stomach
//! (+25, optional air bubble) in lower slices; great vessels (aorta, pulmonary trunk, superior
//! vena cava, +40), trachea/main bronchi (air with soft-tissue wall), oesophagus, heart
//! (myocardium +45, blood +38, pericardial fat); sternum, ribs (cortical +750 rim, cancellous
//! +230 marrow; anterior ends costal cartilage +120), scapulae (+600) in upper slices,
//! paraspinal muscles, a vertebra (cortical/cancellous body, posterior arch +500, spinal canal
//! +20). Which organs appear and how large they are depends on the slice position
//! s ∈ [0, 1] (0 = lung apex, 1 = upper abdomen below the heart). Then zero-mean, spatially
//! correlated texture (cubic-B-spline value noise, see `phantom::texture`) whose amplitude
//! depends on the tissue (≈ ±35 HU lung, ±10–12 HU soft tissue/fat, ±40–60 HU bone, none in air).
//! Finally optional metal implants painted with the material's effective HU
//! ([`MetalMaterial::hu`]); `metal_mask` marks pixels at least half covered by metal.

use super::raster::{Canvas, Harmonic, Shape};
use super::texture::SmoothField;
use crate::error::{OpError, Result};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::f32::consts::PI;

/// Nominal tissue values in Hounsfield units (each sample jitters most of them by a few HU).
pub mod tissue {
    /// Air outside the body and in the airways.
    pub const AIR: f32 = -1000.0;
    /// Aerated lung parenchyma (mean; ±35 HU anterior–posterior gradient).
    pub const LUNG: f32 = -850.0;
    /// Subcutaneous and mediastinal fat.
    pub const FAT: f32 = -100.0;
    /// Skeletal muscle.
    pub const MUSCLE: f32 = 40.0;
    /// Unenhanced blood (heart chambers, great vessels, lung vessels).
    pub const BLOOD: f32 = 38.0;
    /// Liver parenchyma (unenhanced).
    pub const LIVER: f32 = 58.0;
    /// Cortical bone.
    pub const CORTICAL_BONE: f32 = 750.0;
    /// Cancellous (trabecular) bone.
    pub const CANCELLOUS_BONE: f32 = 230.0;
    /// Costal cartilage.
    pub const CARTILAGE: f32 = 120.0;
    /// Patient table (carbon-fibre/foam sandwich, effective).
    pub const TABLE: f32 = 200.0;
}

/// Metal implant geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MetalImplant {
    /// No metal.
    None,
    /// Two thick bilateral rods seen in cross-section (like hip-prosthesis stems; placed
    /// laterally in the slice to give the classic bilateral streak pattern).
    HipRods,
    /// A cluster of 3–6 small dense blobs along an anterior arc (like dental fillings or
    /// sternal wires).
    Dental,
    /// Two transpedicular screws converging into the vertebral body plus two posterior rods.
    SpinalScrews,
    /// One of the three above, drawn per sample.
    Random,
}

/// Implant material, represented by an effective (monochromatic, ≈ 70 keV) CT number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MetalMaterial {
    /// Titanium alloy: +6000 HU.
    Titanium,
    /// Stainless steel / CoCr: +12000 HU.
    Steel,
}

impl MetalMaterial {
    /// Effective HU used for painting: titanium +6000, steel +12000. Real values depend on the
    /// spectrum (μ/μ_water of Ti ≈ 7–10 and of Fe ≈ 15–35 between 60 and 80 keV); these are
    /// conservative values common in MAR simulations and well above the 3000 HU metal threshold.
    pub fn hu(self) -> f32 {
        match self {
            MetalMaterial::Titanium => 6000.0,
            MetalMaterial::Steel => 12000.0,
        }
    }
}

/// Parameters of [`anatomical_ct`]. Ranges `[lo, hi]` are sampled uniformly per slice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AnatomicalParams {
    /// Body semi-axis along x (lateral) in normalised units (1 = half the image width).
    pub body_half_width: [f32; 2],
    /// Ratio of the anterior–posterior to the lateral body semi-axis.
    pub body_ellipticity: [f32; 2],
    /// Relative amplitude of the smooth random perturbation of the body outline.
    pub boundary_roughness: f32,
    /// Subcutaneous fat thickness as a fraction of the body semi-axes.
    pub fat_thickness: [f32; 2],
    /// Chest-wall muscle thickness as a fraction of the body semi-axes.
    pub muscle_thickness: [f32; 2],
    /// Lung size relative to the thoracic cavity.
    pub lung_scale: [f32; 2],
    /// Slice position s (0 = lung apex, 1 = upper abdomen); controls which organs appear.
    pub slice_position: [f32; 2],
    /// Probability of each of the `max_nodules` candidate lung nodules being present.
    pub nodule_probability: f32,
    /// Maximum number of lung nodules.
    pub max_nodules: usize,
    /// Metal implant geometry.
    pub metal: MetalImplant,
    /// Metal implant material.
    pub metal_material: MetalMaterial,
    /// Multiplier of the tissue texture amplitudes (0 = piecewise-constant tissues).
    pub texture_strength: f32,
    /// Draw the patient table below the body.
    pub table: bool,
    /// Supersampling factor per axis at shape edges (area weighting to 1/s²).
    pub supersample: usize,
}

impl Default for AnatomicalParams {
    fn default() -> Self {
        Self {
            body_half_width: [0.72, 0.88],
            body_ellipticity: [0.62, 0.78],
            boundary_roughness: 0.02,
            fat_thickness: [0.03, 0.13],
            muscle_thickness: [0.05, 0.08],
            lung_scale: [0.9, 1.05],
            slice_position: [0.05, 0.95],
            nodule_probability: 0.25,
            max_nodules: 3,
            metal: MetalImplant::None,
            metal_material: MetalMaterial::Titanium,
            texture_strength: 1.0,
            table: true,
            supersample: 4,
        }
    }
}

fn check_range(name: &'static str, r: [f32; 2], lo: f32, hi: f32) -> Result<()> {
    if !(r[0].is_finite() && r[1].is_finite() && lo <= r[0] && r[0] <= r[1] && r[1] <= hi) {
        return Err(OpError::Param {
            name,
            reason: format!("range {r:?} must satisfy {lo} ≤ lo ≤ hi ≤ {hi}"),
        });
    }
    Ok(())
}

impl AnatomicalParams {
    /// Checks that every range is ordered and within the limits the anatomy can represent.
    pub fn validate(&self) -> Result<()> {
        check_range("body_half_width", self.body_half_width, 0.3, 0.92)?;
        check_range("body_ellipticity", self.body_ellipticity, 0.4, 1.0)?;
        check_range("fat_thickness", self.fat_thickness, 0.0, 0.25)?;
        check_range("muscle_thickness", self.muscle_thickness, 0.02, 0.15)?;
        check_range("lung_scale", self.lung_scale, 0.5, 1.2)?;
        check_range("slice_position", self.slice_position, 0.0, 1.0)?;
        check_range(
            "boundary_roughness",
            [self.boundary_roughness; 2],
            0.0,
            0.06,
        )?;
        check_range("nodule_probability", [self.nodule_probability; 2], 0.0, 1.0)?;
        check_range("texture_strength", [self.texture_strength; 2], 0.0, 10.0)?;
        if self.supersample == 0 || self.supersample > 16 {
            return Err(OpError::Param {
                name: "supersample",
                reason: format!("{} must be in 1..=16", self.supersample),
            });
        }
        Ok(())
    }
}

/// One phantom slice.
#[derive(Debug, Clone)]
pub struct AnatomicalSlice {
    /// CT numbers in HU, shape [size, size], row 0 = anterior (top).
    pub hu: Array2<f32>,
    /// Pixels at least half covered by metal.
    pub metal_mask: Array2<bool>,
    /// Fraction of each pixel's area covered by metal (0 without an implant); the metal-free
    /// anatomy of the same seed plus this fraction is the input of
    /// [`crate::mar_sim::simulate_metal_artifacts`].
    pub metal_fraction: Array2<f32>,
    /// The slice position s that was drawn.
    pub slice_position: f32,
    /// The implant that was drawn (never [`MetalImplant::Random`]).
    pub implant: MetalImplant,
}

/// Draws the anatomical thoracic slice number `seed` at `size`×`size` pixels (see the module
/// documentation for the content). Deterministic in (`seed`, `params`); the anatomy does not
/// depend on `size` nor on the metal options.
pub fn anatomical_ct(size: usize, seed: u64, params: &AnatomicalParams) -> Result<AnatomicalSlice> {
    params.validate()?;
    if size < 8 {
        return Err(OpError::Param {
            name: "size",
            reason: format!("{size} is too small for an anatomical phantom (need ≥ 8)"),
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut b = Builder::new(size, params, &mut rng);
    b.paint_anatomy(&mut rng);
    b.add_texture(&mut rng);
    let implant = match params.metal {
        MetalImplant::Random => [
            MetalImplant::HipRods,
            MetalImplant::Dental,
            MetalImplant::SpinalScrews,
        ][rng.random_range(0..3)],
        m => m,
    };
    let metal_frac = b.paint_metal(implant, &mut rng);
    let metal_mask = metal_frac.mapv(|f| f >= 0.5);
    Ok(AnatomicalSlice {
        hu: b.canvas.img,
        metal_mask,
        metal_fraction: metal_frac,
        slice_position: b.s,
        implant,
    })
}

/// Uniform draw from [lo, hi].
/// Always consumes one draw, so the random stream does not depend on the range being empty.
fn uni<R: Rng>(rng: &mut R, r: [f32; 2]) -> f32 {
    let t: f32 = rng.random();
    r[0] + t * (r[1] - r[0])
}

/// Smooth random radial perturbation: harmonics k = 2..=kmax with amplitudes ≤ amp/k.
fn harmonics<R: Rng>(rng: &mut R, kmax: usize, amp: f32) -> Vec<Harmonic> {
    (2..=kmax)
        .map(|k| Harmonic {
            k: k as f32,
            amp: amp * rng.random_range(-1.0f32..=1.0) / k as f32 * 2.0,
            phase: rng.random_range(0.0..2.0 * PI),
        })
        .collect()
}

fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// A smooth window: 1 on [lo, hi], falling to 0 over `w` on each side.
fn window(s: f32, lo: f32, hi: f32, w: f32) -> f32 {
    smoothstep(lo - w, lo, s) * (1.0 - smoothstep(hi, hi + w, s))
}

/// Body frame: (u, v) ∈ [-1, 1]² ↦ image point; lengths in the isotropic unit √(a b).
struct Frame {
    cx: f32,
    cy: f32,
    a: f32,
    b: f32,
    cos: f32,
    sin: f32,
    rot: f32,
    iso: f32,
}

type Pt = (f32, f32);

impl Frame {
    fn p(&self, u: f32, v: f32) -> Pt {
        self.rotate(self.a * u, self.b * v, (self.cx, self.cy))
    }

    /// `base` displaced by (du, dv) isotropic units along the body axes.
    fn off(&self, base: Pt, du: f32, dv: f32) -> Pt {
        self.rotate(self.iso * du, self.iso * dv, base)
    }

    fn rotate(&self, x: f32, y: f32, base: Pt) -> Pt {
        (
            base.0 + x * self.cos - y * self.sin,
            base.1 + x * self.sin + y * self.cos,
        )
    }

    fn l(&self, len: f32) -> f32 {
        len * self.iso
    }

    /// Body-frame v coordinate of an image point.
    fn v_of(&self, x: f32, y: f32) -> f32 {
        let (dx, dy) = (x - self.cx, y - self.cy);
        (-dx * self.sin + dy * self.cos) / self.b
    }

    /// Star shape with body-scaled semi-axes (su·a, sv·b), axis-aligned in the body frame.
    fn star(&self, u: f32, v: f32, su: f32, sv: f32, h: Vec<Harmonic>, flatten: f32) -> Shape {
        let (x, y) = self.p(u, v);
        Shape::star(x, y, self.a * su, self.b * sv, self.rot, h, flatten)
    }

    /// Ellipse with isotropic semi-axes, rotated by `phi` relative to the body frame.
    fn ellipse(&self, c: Pt, ra: f32, rb: f32, phi: f32) -> Shape {
        Shape::ellipse(c.0, c.1, self.l(ra), self.l(rb), self.rot + phi)
    }

    fn circle(&self, c: Pt, r: f32) -> Shape {
        Shape::circle(c.0, c.1, self.l(r))
    }

    fn capsule(&self, p0: Pt, p1: Pt, r0: f32, r1: f32) -> Shape {
        Shape::capsule(p0.0, p0.1, p1.0, p1.1, self.l(r0), self.l(r1))
    }
}

/// Per-sample tissue values (nominal ± jitter).
struct Values {
    fat: f32,
    muscle: f32,
    blood: f32,
    liver: f32,
    lung: f32,
    cortical: f32,
    cancellous: f32,
}

struct Builder<'p> {
    canvas: Canvas,
    params: &'p AnatomicalParams,
    s: f32,
    f: Frame,
    val: Values,
    /// Fat and muscle thickness fractions; cavity scale cs = 1 − tf − tm.
    tf: f32,
    cs: f32,
    body_harm: Vec<Harmonic>,
    flatten: f32,
    cavity: Shape,
    /// Vertebral body centre and radius (isotropic units).
    spine: Pt,
    rv: f32,
}

impl<'p> Builder<'p> {
    fn new<R: Rng>(size: usize, params: &'p AnatomicalParams, rng: &mut R) -> Self {
        let s = uni(rng, params.slice_position);
        let a = uni(rng, params.body_half_width);
        let b = a * uni(rng, params.body_ellipticity);
        let rot = rng.random_range(-0.06f32..=0.06);
        let slack = (0.97 - a).max(0.0);
        let cx = rng.random_range(-0.5f32..=0.5) * slack.min(0.08);
        let cy = rng.random_range(-0.3f32..=0.6) * 0.08;
        let f = Frame {
            cx,
            cy,
            a,
            b,
            cos: rot.cos(),
            sin: rot.sin(),
            rot,
            iso: (a * b).sqrt(),
        };
        let val = Values {
            fat: tissue::FAT + rng.random_range(-12.0f32..=12.0),
            muscle: tissue::MUSCLE + rng.random_range(-8.0f32..=8.0),
            blood: tissue::BLOOD + rng.random_range(-5.0f32..=5.0),
            liver: tissue::LIVER + rng.random_range(-6.0f32..=6.0),
            lung: tissue::LUNG + rng.random_range(-20.0f32..=20.0),
            cortical: tissue::CORTICAL_BONE + rng.random_range(-60.0f32..=60.0),
            cancellous: tissue::CANCELLOUS_BONE + rng.random_range(-40.0f32..=40.0),
        };
        let tf = uni(rng, params.fat_thickness);
        let tm = uni(rng, params.muscle_thickness);
        let cs = 1.0 - tf - tm;
        let body_harm = harmonics(rng, 6, params.boundary_roughness);
        let flatten = rng.random_range(0.05f32..=0.12);
        let mut cav_h = body_harm.clone();
        cav_h.extend(harmonics(rng, 4, params.boundary_roughness * 0.5));
        let cavity = f.star(0.0, 0.04, cs, cs - 0.04, cav_h, flatten + 0.08);
        let rv = 0.085 * (1.0 + 0.3 * s);
        let spine = f.p(0.0, -(cs - 0.04) * (1.0 - flatten - 0.08) + 0.04 + 0.2);
        Builder {
            canvas: Canvas::new(size, params.supersample, tissue::AIR),
            params,
            s,
            f,
            val,
            tf,
            cs,
            body_harm,
            flatten,
            cavity,
            spine,
            rv,
        }
    }

    fn paint_anatomy<R: Rng>(&mut self, rng: &mut R) {
        let f = &self.f;
        // Patient table under the back.
        let table_y = f.p(0.0, -(1.0 - self.flatten)).1 - 0.045;
        let table = Shape::capsule(-0.95, table_y, 0.95, table_y, 0.012, 0.012);
        // Body (fat), chest wall (muscle), thoracic cavity (mediastinal fat).
        let body = f.star(0.0, 0.0, 1.0, 1.0, self.body_harm.clone(), self.flatten);
        let mut mh = self.body_harm.clone();
        mh.extend(harmonics(rng, 5, self.params.boundary_roughness * 0.7));
        let muscle = f.star(0.0, 0.0, 1.0 - self.tf, 1.0 - self.tf, mh, self.flatten);
        if self.params.table && table_y - 0.012 > -1.0 {
            self.canvas.paint(&table, tissue::TABLE);
        }
        self.canvas.paint(&body, self.val.fat);
        self.canvas.paint(&muscle, self.val.muscle);
        let cavity = self.cavity.clone();
        self.canvas.paint(&cavity, self.val.fat + 15.0);

        let lungs = self.paint_lungs(rng);
        self.paint_nodules(&lungs, rng);
        self.paint_abdomen(rng);
        self.paint_mediastinum(rng);
        self.paint_chest_wall_bones(rng);
        self.paint_spine();
    }

    fn paint_lungs<R: Rng>(&mut self, rng: &mut R) -> Vec<Shape> {
        let (s, cs) = (self.s, self.cs);
        let apex = 0.5 + 0.5 * smoothstep(0.0, 0.3, s);
        let pleura = self.f.star(
            0.0,
            0.04,
            cs - 0.015,
            cs - 0.055,
            vec![],
            self.flatten + 0.08,
        );
        let mut lungs = Vec::new();
        for side in [-1.0f32, 1.0] {
            let ls = uni(rng, self.params.lung_scale);
            let h = harmonics(rng, 4, 0.03);
            let lung = self
                .f
                .star(
                    side * 0.47 * cs,
                    0.02 - 0.15 * (1.0 - apex),
                    0.42 * apex * ls * cs,
                    0.82 * apex * ls * cs,
                    h,
                    0.0,
                )
                .clip(&self.cavity)
                .clip(&pleura);
            let (base, grad) = (self.val.lung, 35.0);
            let frame = &self.f;
            self.canvas.paint_with(&lung, |x, y| {
                base - grad * frame.v_of(x, y).clamp(-1.0, 1.0)
            });
            // Branching vessel tree from the hilum, tapering by generation.
            let hilum = self.f.p(side * 0.17 * cs, 0.02);
            let lateral = if side > 0.0 { 0.0 } else { PI };
            let roots = rng.random_range(3..=5);
            for _ in 0..roots {
                let ang = lateral + rng.random_range(-1.4f32..=1.4);
                let r0 = 0.014 * rng.random_range(0.8f32..=1.2);
                self.grow_vessel(&lung, hilum, ang, 0.17 * apex * ls, r0, 3, rng);
            }
            // Vessels crossing the slice obliquely: small ellipses elongated along the direction
            // from the hilum, smaller towards the periphery.
            let n_dots = rng.random_range(40..=70);
            let [x0, x1, y0, y1] = lung.bbox();
            for _ in 0..n_dots {
                for _ in 0..30 {
                    let (x, y) = (rng.random_range(x0..=x1), rng.random_range(y0..=y1));
                    if lung.sdf(x, y) < 0.0 {
                        let dist =
                            ((x - hilum.0).powi(2) + (y - hilum.1).powi(2)).sqrt() / self.f.l(0.8);
                        let r =
                            0.012 * rng.random_range(0.4f32..=1.0) * (1.0 - 0.6 * dist.min(1.0));
                        let elong = rng.random_range(1.0f32..=2.2);
                        let dir = (y - hilum.1).atan2(x - hilum.0) - self.f.rot;
                        let dot = self.f.ellipse((x, y), r * elong, r, dir).clip(&lung);
                        self.canvas.paint(&dot, self.val.blood);
                        break;
                    }
                }
            }
            lungs.push(lung);
        }
        lungs
    }

    #[allow(clippy::too_many_arguments)]
    fn grow_vessel<R: Rng>(
        &mut self,
        lung: &Shape,
        start: Pt,
        ang: f32,
        len: f32,
        r: f32,
        depth: usize,
        rng: &mut R,
    ) {
        let end = self.f.off(start, len * ang.cos(), len * ang.sin());
        let seg = self.f.capsule(start, end, r, r * 0.8).clip(lung);
        self.canvas.paint(&seg, self.val.blood);
        if depth == 0 {
            return;
        }
        for sign in [-1.0f32, 1.0] {
            let a = ang + sign * rng.random_range(0.25f32..=0.65);
            let l = len * rng.random_range(0.6f32..=0.85);
            let rr = r * rng.random_range(0.6f32..=0.75);
            self.grow_vessel(lung, end, a, l, rr, depth - 1, rng);
        }
    }

    fn paint_nodules<R: Rng>(&mut self, lungs: &[Shape], rng: &mut R) {
        for _ in 0..self.params.max_nodules {
            let present = rng.random::<f32>() < self.params.nodule_probability;
            let lung = &lungs[rng.random_range(0..lungs.len())];
            let r = rng.random_range(0.015f32..=0.05);
            let hu = rng.random_range(20.0f32..=100.0);
            let h = harmonics(rng, 6, 0.06);
            let [x0, x1, y0, y1] = lung.bbox();
            for _ in 0..50 {
                let (x, y) = (rng.random_range(x0..=x1), rng.random_range(y0..=y1));
                if lung.sdf(x, y) < -self.f.l(r) * 1.2 {
                    if present {
                        let (rl, rot) = (self.f.l(r), rng.random_range(0.0..PI));
                        let nod = Shape::star(x, y, rl, rl, rot, h, 0.0);
                        self.canvas.paint(&nod, hu);
                    }
                    break;
                }
            }
        }
    }

    fn paint_abdomen<R: Rng>(&mut self, rng: &mut R) {
        let (s, cs) = (self.s, self.cs);
        let cavity = self.cavity.clone();
        let g = smoothstep(0.55, 1.0, s);
        let h = harmonics(rng, 4, 0.04);
        if g > 0.02 {
            let liver = self
                .f
                .star(
                    -0.3 * cs,
                    -0.05 - 0.1 * (1.0 - g),
                    0.6 * g * cs,
                    0.75 * g * cs,
                    h,
                    0.0,
                )
                .clip(&cavity);
            self.canvas.paint(&liver, self.val.liver);
            let [x0, x1, y0, y1] = liver.bbox();
            for _ in 0..rng.random_range(3..=7) {
                let (x, y) = (rng.random_range(x0..=x1), rng.random_range(y0..=y1));
                let v = self
                    .f
                    .circle((x, y), rng.random_range(0.008f32..=0.02))
                    .clip(&liver);
                self.canvas.paint(&v, self.val.blood);
            }
        }
        let g2 = smoothstep(0.72, 1.0, s);
        let h2 = harmonics(rng, 4, 0.05);
        if g2 > 0.02 {
            let spleen = self
                .f
                .star(0.5 * cs, -0.35, 0.2 * g2 * cs, 0.32 * g2 * cs, h2, 0.0)
                .clip(&cavity);
            self.canvas.paint(&spleen, self.val.muscle + 5.0);
        }
        let g3 = smoothstep(0.7, 1.0, s);
        let bubble = rng.random::<f32>() < 0.6;
        let h3 = harmonics(rng, 4, 0.05);
        if g3 > 0.02 {
            let stomach = self
                .f
                .star(0.3 * cs, 0.25, 0.3 * g3 * cs, 0.25 * g3 * cs, h3, 0.0)
                .clip(&cavity);
            self.canvas.paint(&stomach, 25.0);
            if bubble {
                let top = self.f.p(0.3 * cs, 0.25 + 0.3 * g3 * cs);
                let air = self.f.ellipse(top, 0.2 * g3, 0.12 * g3, 0.0).clip(&stomach);
                self.canvas.paint(&air, tissue::AIR);
            }
        }
    }

    fn paint_mediastinum<R: Rng>(&mut self, rng: &mut R) {
        let (s, cs, sp) = (self.s, self.cs, self.spine);
        let (blood, muscle, fat) = (self.val.blood, self.val.muscle, self.val.fat);
        let f = &self.f;
        let mut shapes: Vec<(Shape, f32)> = Vec::new();
        // Great vessels of the neck above the arch.
        let g_top = 1.0 - smoothstep(0.15, 0.25, s);
        let trachea = f.off(sp, 0.0, 0.36);
        if g_top > 0.05 {
            for (du, dv, r) in [(-0.12, 0.12, 0.035), (0.05, 0.16, 0.03), (0.14, 0.1, 0.032)] {
                shapes.push((f.circle(f.off(trachea, du, dv), r * g_top), blood));
            }
        }
        // Aortic arch, ascending and descending aorta.
        let arch = window(s, 0.2, 0.28, 0.04);
        if arch > 0.05 {
            let c = f.capsule(f.p(-0.05 * cs, 0.22), f.off(sp, 0.13, 0.12), 0.06, 0.06);
            shapes.push((c, blood));
        }
        let asc = window(s, 0.3, 0.55, 0.04);
        if asc > 0.05 {
            shapes.push((f.circle(f.p(-0.05 * cs, 0.2), 0.068 * asc), blood));
        }
        let desc = smoothstep(0.22, 0.3, s);
        if desc > 0.05 {
            shapes.push((f.circle(f.off(sp, 0.13, 0.12), 0.058 * desc), blood));
        }
        // Pulmonary trunk and branches.
        let pt = window(s, 0.36, 0.5, 0.04);
        if pt > 0.05 {
            let trunk = f.p(0.09 * cs, 0.2);
            shapes.push((f.circle(trunk, 0.06 * pt), blood));
            for side in [-1.0f32, 1.0] {
                let hil = f.p(side * 0.17 * cs, 0.02);
                shapes.push((f.capsule(trunk, hil, 0.042 * pt, 0.03 * pt), blood));
            }
        }
        // Superior vena cava.
        let svc = window(s, 0.12, 0.5, 0.05);
        if svc > 0.05 {
            shapes.push((f.circle(f.p(-0.18 * cs, 0.15), 0.042 * svc), blood));
        }
        // Trachea (wall + lumen) and main bronchi.
        let tr = 1.0 - smoothstep(0.34, 0.4, s);
        if tr > 0.05 {
            shapes.push((f.circle(trachea, 0.09 * tr), muscle));
            shapes.push((f.circle(trachea, 0.072 * tr), tissue::AIR));
        }
        let br = window(s, 0.38, 0.47, 0.03);
        if br > 0.05 {
            for side in [-1.0f32, 1.0] {
                let c = f.off(trachea, side * 0.14, -0.02);
                shapes.push((f.circle(c, 0.056 * br), muscle));
                shapes.push((f.circle(c, 0.043 * br), tissue::AIR));
            }
        }
        // Oesophagus (sometimes with a little air).
        let oe = window(s, 0.05, 0.9, 0.05);
        let oe_air = rng.random::<f32>() < 0.3;
        if oe > 0.05 {
            let c = f.off(sp, 0.04, 0.2);
            shapes.push((f.circle(c, 0.036 * oe), muscle));
            if oe_air {
                shapes.push((f.circle(c, 0.012 * oe), tissue::AIR));
            }
        }
        // Heart: pericardial fat, myocardium, blood pool.
        let hs = window(s, 0.55, 0.7, 0.2).sqrt();
        let tilt = 0.5 + rng.random_range(-0.15f32..=0.15);
        if hs > 0.1 {
            let c = f.p(0.12 * cs, 0.16);
            shapes.push((f.ellipse(c, 0.34 * hs, 0.27 * hs, tilt), fat));
            shapes.push((f.ellipse(c, 0.31 * hs, 0.245 * hs, tilt), muscle + 5.0));
            let inner = f.off(c, -0.02, 0.0);
            shapes.push((f.ellipse(inner, 0.22 * hs, 0.17 * hs, tilt), blood));
        }
        for (sh, v) in &shapes {
            self.canvas.paint(sh, *v);
        }
    }

    fn paint_chest_wall_bones<R: Rng>(&mut self, rng: &mut R) {
        let (s, cs) = (self.s, self.cs);
        let (cort, canc) = (self.val.cortical, self.val.cancellous);
        let cav_v = cs - 0.04;
        // Paraspinal muscles (before the ribs, whose heads overlap them).
        for side in [-1.0f32, 1.0] {
            let c = self.f.off(self.spine, side * 0.2, -0.22);
            let m = self.f.ellipse(c, 0.15, 0.13, side * 0.3);
            self.canvas.paint(&m, self.val.muscle);
        }
        // Sternum.
        let st = window(s, 0.1, 0.8, 0.05);
        if st > 0.05 {
            let c = self.f.p(0.0, 0.04 + cav_v + 0.02);
            self.canvas
                .paint(&self.f.ellipse(c, 0.1 * st, 0.04, 0.0), cort);
            self.canvas
                .paint(&self.f.ellipse(c, 0.075 * st, 0.022, 0.0), canc);
        }
        // Ribs around the cavity, cut obliquely: short arcs along its boundary.
        for side in [-1.0f32, 1.0] {
            let n = rng.random_range(7..=10);
            for j in 0..n {
                let t = (j as f32 + rng.random_range(-0.3f32..=0.3)) / (n - 1) as f32;
                let th = -1.35 + 2.5 * t;
                let (u, v) = (
                    side * th.cos() * (cs + 0.01),
                    0.04 + th.sin() * (cav_v + 0.01),
                );
                let c = self.f.p(u, v);
                // Tangent direction of the cavity ellipse at θ in image space.
                let d = self.f.p(u - side * th.sin() * 0.01, v + th.cos() * 0.01);
                let phi = (d.1 - c.1).atan2(d.0 - c.0) - self.f.rot;
                let len = rng.random_range(0.05f32..=0.1);
                let thick = rng.random_range(0.018f32..=0.026);
                if th.sin() > 0.55 {
                    let val = tissue::CARTILAGE + rng.random_range(-20.0f32..=20.0);
                    self.canvas
                        .paint(&self.f.ellipse(c, len, thick * 1.2, phi), val);
                } else {
                    self.canvas.paint(&self.f.ellipse(c, len, thick, phi), cort);
                    self.canvas
                        .paint(&self.f.ellipse(c, len * 0.8, thick * 0.55, phi), canc);
                }
            }
        }
        // Scapulae in upper slices, behind the rib cage.
        let g = 1.0 - smoothstep(0.3, 0.55, s);
        if g > 0.05 {
            let k = 1.0 - self.tf;
            for side in [-1.0f32, 1.0] {
                let p1 = self.f.p(side * 0.24 * k, -0.84 * k);
                let p2 = self.f.p(side * 0.58 * k, -0.7 * k);
                let p3 = self.f.p(side * 0.8 * k, -0.42 * k);
                let bone = cort - 150.0;
                self.canvas
                    .paint(&self.f.capsule(p1, p2, 0.014 * g, 0.02 * g), bone);
                self.canvas
                    .paint(&self.f.capsule(p2, p3, 0.02 * g, 0.035 * g), bone);
            }
        }
    }

    fn paint_spine(&mut self) {
        let (sp, rv, f) = (self.spine, self.rv, &self.f);
        let (cort, canc) = (self.val.cortical, self.val.cancellous);
        let arch = cort - 250.0;
        let canal = f.off(sp, 0.0, -rv - 0.06);
        let mut shapes = vec![
            (f.circle(canal, 0.078), arch),
            (f.circle(canal, 0.05), 20.0),
            (f.ellipse(sp, rv * 1.15, rv, 0.0), cort),
            (f.ellipse(sp, rv * 0.95, rv * 0.8, 0.0), canc),
            (
                f.capsule(
                    f.off(sp, 0.0, -rv - 0.13),
                    f.off(sp, 0.0, -rv - 0.25),
                    0.022,
                    0.015,
                ),
                arch,
            ),
        ];
        for side in [-1.0f32, 1.0] {
            shapes.push((
                f.capsule(
                    f.off(sp, side * 0.05, -rv - 0.07),
                    f.off(sp, side * 0.19, -rv - 0.12),
                    0.022,
                    0.017,
                ),
                arch,
            ));
        }
        for (sh, v) in &shapes {
            self.canvas.paint(sh, *v);
        }
    }

    /// Adds tissue-dependent, spatially correlated zero-mean texture (not in air or metal).
    fn add_texture<R: Rng>(&mut self, rng: &mut R) {
        let coarse = SmoothField::new(&[(8, 0.6), (16, 1.0), (32, 0.6)], rng);
        let fine = SmoothField::new(&[(24, 1.0), (48, 0.7), (96, 0.5)], rng);
        let k = self.params.texture_strength;
        if k == 0.0 {
            return;
        }
        let n = self.canvas.img.nrows();
        for r in 0..n {
            for c in 0..n {
                let (x, y) = self.canvas.xy(r, c);
                let hu = self.canvas.img[[r, c]];
                let amp = texture_amplitude(hu);
                if amp > 0.0 {
                    let noise = if hu < -400.0 {
                        fine.at(x, y)
                    } else {
                        coarse.at(x, y)
                    };
                    self.canvas.img[[r, c]] = hu + k * amp * noise;
                }
            }
        }
    }

    /// Paints the implant and returns the per-pixel metal area fraction.
    fn paint_metal<R: Rng>(&mut self, implant: MetalImplant, rng: &mut R) -> Array2<f32> {
        let (f, sp, rv, cs) = (&self.f, self.spine, self.rv, self.cs);
        let mut shapes = Vec::new();
        match implant {
            MetalImplant::None | MetalImplant::Random => {}
            MetalImplant::SpinalScrews => {
                for side in [-1.0f32, 1.0] {
                    let entry = f.off(sp, side * 0.12, -rv - 0.12);
                    let tip = f.off(sp, side * 0.025, rv * 0.3);
                    shapes.push(f.capsule(entry, tip, 0.017, 0.014));
                    shapes.push(f.circle(f.off(sp, side * 0.13, -rv - 0.2), 0.02));
                }
            }
            MetalImplant::HipRods => {
                let r = rng.random_range(0.035f32..=0.06);
                let (u, v) = (
                    rng.random_range(0.4f32..=0.55) * cs,
                    rng.random_range(-0.25f32..=0.0),
                );
                for side in [-1.0f32, 1.0] {
                    shapes.push(f.circle(f.p(side * u, v), r));
                }
            }
            MetalImplant::Dental => {
                let n = rng.random_range(3..=6);
                let centre = f.p(0.0, 0.25 * cs);
                for _ in 0..n {
                    let t = rng.random_range(0.25f32..=0.75) * PI;
                    let c = f.off(centre, 0.3 * t.cos(), 0.3 * t.sin());
                    let (ra, rb) = (
                        rng.random_range(0.014f32..=0.03),
                        rng.random_range(0.01f32..=0.02),
                    );
                    shapes.push(f.ellipse(c, ra, rb, t + PI / 2.0));
                }
            }
        }
        let n = self.canvas.img.nrows();
        let mut frac = Array2::<f32>::zeros((n, n));
        let hu = self.params.metal_material.hu();
        for sh in &shapes {
            self.canvas.cover(sh, |r, c, cov| {
                // Painting composes as p ← (1 − c) p + c·metal, so the metal fraction is
                // 1 − Π(1 − c_i).
                frac[[r, c]] = 1.0 - (1.0 - frac[[r, c]]) * (1.0 - cov);
            });
            self.canvas.paint(sh, hu);
        }
        frac
    }
}

/// Texture amplitude (HU, 1σ) as a piecewise-linear function of the painted CT number.
fn texture_amplitude(hu: f32) -> f32 {
    const KNOTS: [(f32, f32); 12] = [
        (-1000.0, 0.0),
        (-975.0, 0.0),
        (-900.0, 30.0),
        (-700.0, 35.0),
        (-300.0, 15.0),
        (-120.0, 10.0),
        (-60.0, 10.0),
        (0.0, 12.0),
        (100.0, 12.0),
        (200.0, 40.0),
        (1500.0, 60.0),
        (2500.0, 0.0),
    ];
    if hu <= KNOTS[0].0 || hu >= KNOTS[KNOTS.len() - 1].0 {
        return 0.0;
    }
    KNOTS
        .windows(2)
        .find(|w| hu <= w[1].0)
        .map(|w| w[0].1 + (w[1].1 - w[0].1) * (hu - w[0].0) / (w[1].0 - w[0].0))
        .unwrap_or(0.0)
}
