//! Metal-artefact simulator for test data: a polychromatic transmission
//! model with beam hardening, photon starvation and Poisson noise, in the spirit of the SNMAR
//! protocol the thesis follows (§8.4; Yu et al. 2020), built on any parallel-beam projector.
//!
//! Model. The metal-free HU image defines tissue attenuation at the reference energy
//! E₀ = 70 keV, μ = μ_water (1 + HU/1000) per pixel (μ_water = [`MU_WATER_PER_MM`] × pixel size, pixel size
//! = `fov_mm` / N). μ₀ is split into three basis images with their own energy dependence
//! r_m(E) = (μ/ρ)_m(E) / (μ/ρ)_m(E₀):
//! * metal M = c·μ_metal, with c the metal area fraction of the pixel and μ_metal the implant
//!   material's *physical* attenuation ρ (μ/ρ)(E₀) (titanium 4.51 g/cm³ → ≈ +11 900 HU,
//!   iron/steel 7.87 g/cm³ → ≈ +33 600 HU at 70 keV), not the phantom's nominal metal HU — the
//!   effective values the phantom paints (+6000/+12000, [`MetalMaterial::hu`]) only label the
//!   metal for segmentation and display, while the strength of real artefacts comes from the
//!   physical attenuation,
//! * bone B = (1 − c) f μ(tissue), f = clamp((HU − 150)/(HU_bone − 150), 0, 1) with
//!   HU_bone ≈ 1600 the CT number of ICRU-44 cortical bone (ρ = 1.92 g/cm³) at E₀ (bone
//!   hardening optional),
//! * water W = (1 − c)(1 − f) μ(tissue).
//!
//! With P_m = R(m) the line integrals at E₀ and a 10-bin photon spectrum s(E) (a coarse
//! filtered 120 kVp tungsten spectrum, 30–120 keV, mean ≈ 72 keV), the expected count is
//! Ī = I₀ Σ_E s(E) exp(−r_W(E) P_W − r_B(E) P_B − r_M(E) P_M), averaged over
//! `detector_oversampling` sub-bins of each detector bin (finite aperture). Counts
//! N ~ Poisson(Ī) and p = −ln(max(N, 1)/I₀) ([`poisson_transmission`], seeded), and — like a
//! scanner's first-order
//! beam-hardening calibration — p is mapped through the inverse of the water curve
//! g(L) = −ln Σ s(E) e^{−r_W(E) L} (optional). Soft tissue is then reconstructed correctly on
//! average, and the residual metal/bone nonlinearity and starvation noise produce the familiar
//! dark/bright streaks. The ideal data is the monochromatic R(μ₀) (bin-averaged the same way).
//!
//! Mass attenuation coefficients (cm²/g) are NIST XCOM values (Hubbell & Seltzer, NIST SRD 126)
//! at 30, 40, 50, 60, 80, 100, 150 keV, interpolated log–log.

use crate::beam::CtProjector;
use crate::error::{OpError, Result};
pub use crate::hu::MU_WATER_PER_MM;
use crate::linop::{check_shape, LinearOperator};
use crate::noise::poisson_transmission;
use crate::phantom::anatomical::MetalMaterial;
use ndarray::{Array2, ArrayView2, Zip};
use serde::{Deserialize, Serialize};

/// Reference energy (keV) at which HU and the ground-truth attenuation are defined.
pub const REFERENCE_KEV: f64 = 70.0;

const TABLE_KEV: [f64; 7] = [30.0, 40.0, 50.0, 60.0, 80.0, 100.0, 150.0];
const MU_RHO_WATER: [f64; 7] = [0.3756, 0.2683, 0.2269, 0.2059, 0.1837, 0.1707, 0.1505];
const MU_RHO_BONE: [f64; 7] = [1.331, 0.6655, 0.4242, 0.3148, 0.2229, 0.1855, 0.1480];
const MU_RHO_TITANIUM: [f64; 7] = [4.972, 2.214, 1.213, 0.7661, 0.4052, 0.2721, 0.1649];
const MU_RHO_IRON: [f64; 7] = [8.176, 3.629, 1.958, 1.205, 0.5952, 0.3717, 0.1964];
const BONE_DENSITY: f64 = 1.92;
const TITANIUM_DENSITY: f64 = 4.51;
const IRON_DENSITY: f64 = 7.87;
const BONE_ONSET_HU: f32 = 150.0;

/// Photon-fluence spectrum (keV, relative weight): coarse filtered 120 kVp.
const SPECTRUM: [(f64, f64); 10] = [
    (30.0, 0.02),
    (40.0, 0.08),
    (50.0, 0.14),
    (60.0, 0.17),
    (70.0, 0.17),
    (80.0, 0.15),
    (90.0, 0.12),
    (100.0, 0.08),
    (110.0, 0.05),
    (120.0, 0.02),
];

/// Log–log interpolation of a mass-attenuation table (linear extrapolation in log–log).
fn mu_rho(table: &[f64; 7], kev: f64) -> f64 {
    let i = TABLE_KEV
        .windows(2)
        .position(|w| kev <= w[1])
        .unwrap_or(TABLE_KEV.len() - 2);
    let (e0, e1) = (TABLE_KEV[i].ln(), TABLE_KEV[i + 1].ln());
    let (m0, m1) = (table[i].ln(), table[i + 1].ln());
    (m0 + (m1 - m0) * (kev.ln() - e0) / (e1 - e0)).exp()
}

/// Energy ratios r(E) = μ/ρ(E) / μ/ρ(E₀) over the spectrum bins.
fn ratios(table: &[f64; 7]) -> Vec<f64> {
    let r0 = mu_rho(table, REFERENCE_KEV);
    SPECTRUM
        .iter()
        .map(|&(e, _)| mu_rho(table, e) / r0)
        .collect()
}

/// CT number of cortical bone at E₀.
fn bone_hu() -> f32 {
    let ratio =
        BONE_DENSITY * mu_rho(&MU_RHO_BONE, REFERENCE_KEV) / mu_rho(&MU_RHO_WATER, REFERENCE_KEV);
    (1000.0 * (ratio - 1.0)) as f32
}

/// Parameters of [`simulate_metal_artifacts`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MarSimParams {
    /// Physical width of the image square in mm (pixel size = fov_mm / N).
    pub fov_mm: f32,
    /// Incident photons per detector bin and view.
    pub i0: f64,
    /// Material whose energy dependence the metal pixels follow.
    pub metal_material: MetalMaterial,
    /// Give bone its own (harder) energy dependence instead of water's.
    pub bone_hardening: bool,
    /// Apply the water beam-hardening precorrection.
    pub water_correction: bool,
    /// Add Poisson noise (false: use the expected counts, for noise-free BH studies).
    pub noise: bool,
    /// Detector sub-bins per bin: the finite detector aperture integrates intensity over the
    /// bin (nonlinear partial-volume effect) and suppresses the aliasing of point-sampled rays
    /// through very dense edges.
    pub detector_oversampling: usize,
}

impl Default for MarSimParams {
    fn default() -> Self {
        Self {
            fov_mm: 400.0,
            i0: 2e5,
            metal_material: MetalMaterial::Titanium,
            bone_hardening: true,
            water_correction: true,
            noise: true,
            detector_oversampling: 2,
        }
    }
}

/// Output of [`simulate_metal_artifacts`]. Sinograms hold line integrals of μ in units of
/// 1/pixel (dimensionless), so `fbp` returns μ per pixel; convert with
/// `hu::mu_to_hu(.., mu_water_per_pixel)`.
#[derive(Debug, Clone)]
pub struct MarSimulation {
    /// Corrupted (polychromatic, noisy, water-precorrected) sinogram [views, det].
    pub sinogram: Array2<f32>,
    /// Ideal monochromatic sinogram R(μ₀) at E₀.
    pub clean_sinogram: Array2<f32>,
    /// Attenuation μ₀ = W + B + M per pixel at E₀ (metal at its physical attenuation).
    pub mu: Array2<f32>,
    /// μ_water per pixel (HU ↔ μ conversion for this geometry).
    pub mu_water_per_pixel: f32,
}

/// Simulates a metal-corrupted sinogram of the metal-free anatomy `tissue_hu` (HU) with an
/// implant covering the area fraction `metal_fraction` ∈ [0, 1] of each pixel (see the module
/// documentation for the model): μ₀ = (1 − c) μ(tissue) + c μ_metal. Deterministic in `seed`.
/// For the anatomical phantom pass the `hu` of the metal-free slice of the same seed and the
/// `metal_fraction` of the slice with the implant; `tissue_hu` is then the MAR ground truth.
pub fn simulate_metal_artifacts(
    projector: &CtProjector,
    tissue_hu: &ArrayView2<f32>,
    metal_fraction: &ArrayView2<f32>,
    params: &MarSimParams,
    seed: u64,
) -> Result<MarSimulation> {
    check_shape("HU image", &projector.domain_shape(), tissue_hu.shape())?;
    check_shape("metal fraction", tissue_hu.shape(), metal_fraction.shape())?;
    if tissue_hu.iter().any(|v| !v.is_finite()) {
        return Err(OpError::NonFinite {
            what: "HU image for the MAR simulation",
        });
    }
    if metal_fraction.iter().any(|c| !(0.0..=1.0).contains(c)) {
        return Err(OpError::Param {
            name: "metal_fraction",
            reason: "every entry must lie in [0, 1]".into(),
        });
    }
    if !(params.fov_mm > 0.0
        && params.i0 >= 1.0
        && params.i0.is_finite()
        && (1..=16).contains(&params.detector_oversampling))
    {
        return Err(OpError::Param {
            name: "MarSimParams",
            reason: format!(
                "need fov_mm > 0, finite i0 ≥ 1 and detector_oversampling in 1..=16, got {}, {} \
                 and {}",
                params.fov_mm, params.i0, params.detector_oversampling
            ),
        });
    }
    let n = tissue_hu.nrows();
    let pixel_mm = params.fov_mm / n as f32;
    let mu_w = MU_WATER_PER_MM * pixel_mm;
    let (metal_table, metal_density) = match params.metal_material {
        MetalMaterial::Titanium => (&MU_RHO_TITANIUM, TITANIUM_DENSITY),
        MetalMaterial::Steel => (&MU_RHO_IRON, IRON_DENSITY),
    };
    // Physical metal attenuation at E₀ in 1/pixel (μ/ρ in cm²/g × ρ in g/cm³ → 1/cm → 1/mm).
    let mu_metal = (metal_density * mu_rho(metal_table, REFERENCE_KEV) / 10.0) as f32 * pixel_mm;
    let mu_tissue = crate::hu::hu_to_mu(tissue_hu, mu_w);
    let hu_bone = bone_hu();
    let mut water = Array2::<f32>::zeros(mu_tissue.dim());
    let mut bone = Array2::<f32>::zeros(mu_tissue.dim());
    Zip::from(&mut water)
        .and(&mut bone)
        .and(&mu_tissue)
        .and(tissue_hu)
        .and(metal_fraction)
        .for_each(|w, b, &mu_t, &h, &c| {
            let f = if params.bone_hardening {
                ((h - BONE_ONSET_HU) / (hu_bone - BONE_ONSET_HU)).clamp(0.0, 1.0)
            } else {
                0.0
            };
            *b = (1.0 - c) * f * mu_t;
            *w = (1.0 - c) * (1.0 - f) * mu_t;
        });
    let metal_img = metal_fraction.mapv(|c| c * mu_metal);
    let mu = &water + &bone + &metal_img;
    // Detector aperture: project onto `os` sub-bins per bin (bin centres preserved) and average
    // intensities (polychromatic data) or line integrals (ideal data) over each bin.
    let os = params.detector_oversampling;
    let fine = projector.with_subdivided_bins(os)?;
    let (pw, pb, pm) = (
        fine.project(&water.view())?,
        fine.project(&bone.view())?,
        fine.project(&metal_img.view())?,
    );
    let rw = ratios(&MU_RHO_WATER);
    let rb = ratios(&MU_RHO_BONE);
    let rm = ratios(metal_table);
    let (views, n_det) = projector.sinogram_shape();
    let bin_mean = |f: &dyn Fn(usize, usize) -> f64| {
        Array2::from_shape_fn((views, n_det), |(v, k)| {
            (0..os).map(|q| f(v, os * k + q)).sum::<f64>() / os as f64
        })
    };
    let clean_sinogram =
        bin_mean(&|v, j| (pw[[v, j]] + pb[[v, j]] + pm[[v, j]]) as f64).mapv(|p| p as f32);
    let poly = bin_mean(&|v, j| {
        let (w, b, m) = (pw[[v, j]] as f64, pb[[v, j]] as f64, pm[[v, j]] as f64);
        SPECTRUM
            .iter()
            .enumerate()
            .map(|(e, &(_, weight))| weight * (-(rw[e] * w + rb[e] * b + rm[e] * m)).exp())
            .sum::<f64>()
    })
    .mapv(|t| -(t.max(f64::MIN_POSITIVE)).ln() as f32);
    let measured = if params.noise {
        poisson_transmission(&poly.view(), params.i0, seed)?
    } else {
        poly
    };
    let sinogram = if params.water_correction {
        measured.mapv(|p| invert_water_curve(p as f64, &rw) as f32)
    } else {
        measured
    };
    Ok(MarSimulation {
        sinogram,
        clean_sinogram,
        mu,
        mu_water_per_pixel: mu_w,
    })
}

/// g(L) = −ln Σ s(E) e^{−r_W(E) L}: polychromatic line integral of L (at E₀) of water.
fn water_curve(l: f64, rw: &[f64]) -> (f64, f64) {
    let (mut s, mut ds) = (0.0, 0.0);
    for (k, &(_, w)) in SPECTRUM.iter().enumerate() {
        let e = w * (-rw[k] * l).exp();
        s += e;
        ds += rw[k] * e;
    }
    (-s.ln(), ds / s)
}

/// Solves g(L) = p by Newton's method (g is increasing and concave: from below the iterates
/// increase monotonically to the root; one step from above lands below).
fn invert_water_curve(p: f64, rw: &[f64]) -> f64 {
    let mut l = p.max(0.0);
    for _ in 0..50 {
        let (g, dg) = water_curve(l, rw);
        let step = (g - p) / dg;
        l -= step;
        if step.abs() < 1e-9 * (1.0 + l.abs()) {
            break;
        }
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attenuation_tables_interpolate_and_bone_hu_is_plausible() {
        // Table points are reproduced; 70 keV water lies between the 60 and 80 keV values.
        assert!((mu_rho(&MU_RHO_WATER, 60.0) - 0.2059).abs() < 1e-9);
        let w70 = mu_rho(&MU_RHO_WATER, 70.0);
        assert!(w70 < 0.2059 && w70 > 0.1837);
        // μ_water(70 keV) ≈ 0.0194 /mm, consistent with MU_WATER_PER_MM.
        assert!((w70 / 10.0 - MU_WATER_PER_MM as f64).abs() < 5e-4);
        let hb = bone_hu();
        assert!(hb > 1400.0 && hb < 1800.0, "{hb}");
        // Metals harden much more than water: ratio at 40 keV.
        let (rw, rt) = (ratios(&MU_RHO_WATER), ratios(&MU_RHO_TITANIUM));
        assert!(rt[1] > 2.0 * rw[1]);
        let mean_kev: f64 = SPECTRUM.iter().map(|(e, w)| e * w).sum();
        assert!((SPECTRUM.iter().map(|s| s.1).sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((mean_kev - 72.0).abs() < 1.0, "{mean_kev}");
    }

    #[test]
    fn water_curve_inverse_round_trips() {
        let rw = ratios(&MU_RHO_WATER);
        for l in [0.0, 0.3, 2.0, 7.5, 15.0] {
            let (g, _) = water_curve(l, &rw);
            assert!(g <= l * 1.2 + 1e-12);
            assert!((invert_water_curve(g, &rw) - l).abs() < 1e-6, "{l}");
        }
    }
}
