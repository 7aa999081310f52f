//! Metal-artefact simulator for test data (issue 2, item 4): a polychromatic transmission
//! model with beam hardening, photon starvation and Poisson noise, in the spirit of the SNMAR
//! protocol the thesis follows (§8.4; Yu et al. 2020), built on any parallel-beam projector.
//!
//! Model. The HU image defines attenuation at the reference energy E₀ = 70 keV,
//! μ₀ = μ_water (1 + HU/1000) per pixel (μ_water = [`MU_WATER_PER_MM`] × pixel size, pixel size
//! = `fov_mm` / N). μ₀ is split into three basis images with their own energy dependence
//! r_m(E) = (μ/ρ)_m(E) / (μ/ρ)_m(E₀):
//! * metal M = μ₀ on the metal mask (titanium or iron tables),
//! * bone B = f·μ₀ elsewhere, f = clamp((HU − 150)/(HU_bone − 150), 0, 1) with HU_bone ≈ 1600
//!   the CT number of ICRU-44 cortical bone (ρ = 1.92 g/cm³) at E₀ (bone hardening optional),
//! * water W = μ₀ − B elsewhere.
//!
//! With P_m = R(m) the line integrals at E₀ and a 10-bin photon spectrum s(E) (a coarse
//! filtered 120 kVp tungsten spectrum, 30–120 keV, mean ≈ 72 keV), the expected count is
//! Ī = I₀ Σ_E s(E) exp(−r_W(E) P_W − r_B(E) P_B − r_M(E) P_M). Counts N ~ Poisson(Ī) (seeded),
//! p = −ln(max(N, ½)/I₀) (½ photon floor for starved rays), and — like a scanner's first-order
//! beam-hardening calibration — p is mapped through the inverse of the water curve
//! g(L) = −ln Σ s(E) e^{−r_W(E) L} (optional). Soft tissue is then reconstructed correctly on
//! average, and the residual metal/bone nonlinearity and starvation noise produce the familiar
//! dark/bright streaks. The ideal data is the monochromatic R(μ₀).
//!
//! Mass attenuation coefficients (cm²/g) are NIST XCOM values (Hubbell & Seltzer, NIST SRD 126)
//! at 30, 40, 50, 60, 80, 100, 150 keV, interpolated log–log.

use crate::error::{OpError, Result};
pub use crate::hu::MU_WATER_PER_MM;
use crate::linop::{check_shape, LinearOperator};
use crate::phantom::anatomical::MetalMaterial;
use ndarray::{Array2, ArrayView2, Ix2, Zip};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Poisson};
use serde::{Deserialize, Serialize};

/// Reference energy (keV) at which HU and the ground-truth attenuation are defined.
pub const REFERENCE_KEV: f64 = 70.0;

const TABLE_KEV: [f64; 7] = [30.0, 40.0, 50.0, 60.0, 80.0, 100.0, 150.0];
const MU_RHO_WATER: [f64; 7] = [0.3756, 0.2683, 0.2269, 0.2059, 0.1837, 0.1707, 0.1505];
const MU_RHO_BONE: [f64; 7] = [1.331, 0.6655, 0.4242, 0.3148, 0.2229, 0.1855, 0.1480];
const MU_RHO_TITANIUM: [f64; 7] = [4.972, 2.214, 1.213, 0.7661, 0.4052, 0.2721, 0.1649];
const MU_RHO_IRON: [f64; 7] = [8.176, 3.629, 1.958, 1.205, 0.5952, 0.3717, 0.1964];
const BONE_DENSITY: f64 = 1.92;
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
    /// Ground-truth attenuation μ₀ per pixel at E₀ (metal included).
    pub mu: Array2<f32>,
    /// μ_water per pixel (HU ↔ μ conversion for this geometry).
    pub mu_water_per_pixel: f32,
}

/// Simulates a metal-corrupted sinogram of the HU image `hu` whose metal lies in `metal`
/// (see the module documentation for the model). Deterministic in `seed`.
pub fn simulate_metal_artifacts<T>(
    radon: &T,
    hu: &ArrayView2<f32>,
    metal: &ArrayView2<bool>,
    params: &MarSimParams,
    seed: u64,
) -> Result<MarSimulation>
where
    T: LinearOperator<In = f32, Out = f32>,
{
    check_shape("HU image", &radon.domain_shape(), hu.shape())?;
    check_shape("metal mask", hu.shape(), metal.shape())?;
    if hu.iter().any(|v| !v.is_finite()) {
        return Err(OpError::NonFinite {
            what: "HU image for the MAR simulation",
        });
    }
    if !(params.fov_mm > 0.0 && params.i0 >= 1.0 && params.i0.is_finite()) {
        return Err(OpError::Param {
            name: "MarSimParams",
            reason: format!(
                "need fov_mm > 0 and finite i0 ≥ 1, got {} and {}",
                params.fov_mm, params.i0
            ),
        });
    }
    let n = hu.nrows();
    let mu_w = MU_WATER_PER_MM * params.fov_mm / n as f32;
    let mu = crate::hu::hu_to_mu(hu, mu_w);
    let hu_bone = bone_hu();
    let mut water = Array2::<f32>::zeros(mu.dim());
    let mut bone = Array2::<f32>::zeros(mu.dim());
    let mut metal_img = Array2::<f32>::zeros(mu.dim());
    Zip::from(&mut water)
        .and(&mut bone)
        .and(&mut metal_img)
        .and(&mu)
        .and(hu)
        .and(metal)
        .for_each(|w, b, m, &mu0, &h, &is_metal| {
            if is_metal {
                *m = mu0;
            } else {
                let f = if params.bone_hardening {
                    ((h - BONE_ONSET_HU) / (hu_bone - BONE_ONSET_HU)).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                *b = f * mu0;
                *w = (1.0 - f) * mu0;
            }
        });
    let project = |img: &Array2<f32>| -> Result<Array2<f32>> {
        radon
            .forward(&img.view().into_dyn())
            .into_dimensionality::<Ix2>()
            .map_err(|e| OpError::Param {
                name: "radon",
                reason: format!("range is not 2-D: {e}"),
            })
    };
    let (pw, pb, pm) = (project(&water)?, project(&bone)?, project(&metal_img)?);
    let clean_sinogram = project(&mu)?;
    let rw = ratios(&MU_RHO_WATER);
    let rb = ratios(&MU_RHO_BONE);
    let rm = ratios(match params.metal_material {
        MetalMaterial::Titanium => &MU_RHO_TITANIUM,
        MetalMaterial::Steel => &MU_RHO_IRON,
    });
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut sinogram = Array2::<f32>::zeros(pw.dim());
    // Sequential loop: the Poisson draws follow a fixed order, so the result depends only on
    // the seed.
    for (((s, &w), &b), &m) in sinogram.iter_mut().zip(&pw).zip(&pb).zip(&pm) {
        let expected: f64 = SPECTRUM
            .iter()
            .enumerate()
            .map(|(k, &(_, weight))| {
                weight * (-(rw[k] * w as f64 + rb[k] * b as f64 + rm[k] * m as f64)).exp()
            })
            .sum::<f64>()
            * params.i0;
        let counts = if params.noise {
            poisson(expected, &mut rng)
        } else {
            expected
        };
        let p = -(counts.max(0.5) / params.i0).ln();
        *s = if params.water_correction {
            invert_water_curve(p, &rw)
        } else {
            p
        } as f32;
    }
    Ok(MarSimulation {
        sinogram,
        clean_sinogram,
        mu,
        mu_water_per_pixel: mu_w,
    })
}

fn poisson(lambda: f64, rng: &mut ChaCha8Rng) -> f64 {
    if lambda <= 0.0 {
        return 0.0;
    }
    match Poisson::new(lambda) {
        Ok(d) => d.sample(rng),
        Err(_) => lambda,
    }
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
