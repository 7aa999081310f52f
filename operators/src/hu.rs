//! Conversions between Hounsfield units, a display/training window and linear attenuation.
//!
//! HU = 1000 (μ − μ_water) / μ_water (air ≈ −1000, water 0), hence μ = μ_water (1 + HU/1000).
//! For images fed to the Radon transform (pixel spacing 1), pass μ_water in units of
//! 1/pixel, i.e. μ_water \[1/mm\] × pixel size \[mm\]; the sinogram is then the dimensionless line
//! integral ∫μ dl that enters Beer–Lambert's law I = I₀ e^{−∫μ dl}.

use ndarray::{Array, ArrayView, Dimension};
use serde::{Deserialize, Serialize};

/// Linear attenuation coefficient of water at an effective energy of about 70 keV, in 1/mm
/// (0.192 /cm).
pub const MU_WATER_PER_MM: f32 = 0.0192;

/// An HU window [lo, hi] mapped linearly onto [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HuWindow {
    /// HU mapped to 0.
    pub lo: f32,
    /// HU mapped to 1.
    pub hi: f32,
}

impl Default for HuWindow {
    /// [−1024, 3072] HU: the 12-bit CT range (SIP's pixel ↔ HU map HU = 4096 v − 1024 has the
    /// same offset; its MAR code uses a 4224-wide range).
    fn default() -> Self {
        Self {
            lo: -1024.0,
            hi: 3072.0,
        }
    }
}

/// (HU − lo) / (hi − lo), clipped to [0, 1] (values outside the window, e.g. metal, saturate).
pub fn hu_to_unit<D: Dimension>(hu: &ArrayView<f32, D>, window: HuWindow) -> Array<f32, D> {
    let w = window.hi - window.lo;
    hu.mapv(|h| ((h - window.lo) / w).clamp(0.0, 1.0))
}

/// lo + v (hi − lo): the inverse of [`hu_to_unit`] inside the window.
pub fn unit_to_hu<D: Dimension>(unit: &ArrayView<f32, D>, window: HuWindow) -> Array<f32, D> {
    let w = window.hi - window.lo;
    unit.mapv(|v| window.lo + v * w)
}

/// μ = μ_water (1 + HU/1000), clipped at 0 (HU below −1000 is noise around air). The unit of
/// μ is the unit of `mu_water` (see the module documentation).
pub fn hu_to_mu<D: Dimension>(hu: &ArrayView<f32, D>, mu_water: f32) -> Array<f32, D> {
    hu.mapv(|h| (mu_water * (1.0 + h / 1000.0)).max(0.0))
}

/// HU = 1000 (μ / μ_water − 1): the inverse of [`hu_to_mu`] for μ ≥ 0.
pub fn mu_to_hu<D: Dimension>(mu: &ArrayView<f32, D>, mu_water: f32) -> Array<f32, D> {
    mu.mapv(|m| 1000.0 * (m / mu_water - 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn window_and_attenuation_round_trips() {
        let hu = array![-1000.0f32, 0.0, 1000.0, 3072.0];
        let u = hu_to_unit(&hu.view(), HuWindow::default());
        assert!((u[1] - 1024.0 / 4096.0).abs() < 1e-6 && u[3] == 1.0);
        let back = unit_to_hu(&u.view(), HuWindow::default());
        assert!(back
            .iter()
            .zip(hu.iter())
            .all(|(a, b)| (a - b).abs() < 1e-3));
        let mu = hu_to_mu(&hu.view(), MU_WATER_PER_MM);
        assert_eq!(mu[0], 0.0);
        assert!((mu[1] - 0.0192).abs() < 1e-7 && (mu[2] - 0.0384).abs() < 1e-7);
        let hu2 = mu_to_hu(&mu.view(), MU_WATER_PER_MM);
        assert!(hu2.iter().zip(hu.iter()).all(|(a, b)| (a - b).abs() < 1e-2));
    }
}
