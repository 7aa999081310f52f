//! Seeded measurement-noise models: CT transmission (Poisson photon counting), additive white
//! Gaussian noise on sinograms, and complex Gaussian noise on k-space.
//!
//! Every function takes a seed and draws from `ChaCha8Rng::seed_from_u64(seed)` in row-major
//! order, so the same seed gives the same noise on every platform.

use crate::scalar::Scalar;
use crate::{OpError, Result};
use ndarray::{Array, ArrayView, Dimension};
use num_complex::Complex32;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Poisson, StandardNormal};

/// CT transmission noise (Beer–Lambert with photon counting): for each line integral p,
/// the detector counts N ~ Poisson(I0 · exp(−p)) and the log-transformed measurement is
///
/// p̂ = −ln(max(N, 1) / I0).
///
/// Zero counts (photon starvation, likely where I0·exp(−p) ≲ 1) would give p̂ = +∞; they are
/// replaced by one count, the usual clamp, which caps p̂ at ln I0. `i0` is the incident photon
/// count per detector bin (e.g. 1e4 low dose … 1e6 high dose); `sino` holds line integrals in
/// the same units as the attenuation × pixel length. Errors if `i0` is not a positive finite
/// number or `sino` contains NaN/Inf. [`transmission_with_electronic`] with σₑ = 0 (same
/// draws).
pub fn poisson_transmission<D: Dimension>(
    sino: &ArrayView<f32, D>,
    i0: f64,
    seed: u64,
) -> Result<Array<f32, D>> {
    transmission_with_electronic(sino, i0, 0.0, seed)
}

/// Pre-log CT noise as a scanner's detector produces it: photon counts N ~ Poisson(I0·e^(−p))
/// plus electronic (readout) noise σₑ·z, z ~ N(0, 1), then the log transform
/// p̂ = −ln(max(N + σₑ z, 1)/I0) (the clamp as in [`poisson_transmission`]; with σₑ > 0 it also
/// catches negative readings). `electronic_sigma` σₑ is in counts (typically 5–10 on clinical
/// detectors) and must be finite and ≥ 0; 0 draws no Gaussian numbers, so the result equals
/// [`poisson_transmission`] with the same seed. Per entry, the Poisson draw comes first, then
/// the Gaussian.
pub fn transmission_with_electronic<D: Dimension>(
    sino: &ArrayView<f32, D>,
    i0: f64,
    electronic_sigma: f64,
    seed: u64,
) -> Result<Array<f32, D>> {
    if !(i0.is_finite() && i0 > 0.0) {
        return Err(OpError::Param {
            name: "i0",
            reason: format!("incident photon count must be positive and finite, got {i0}"),
        });
    }
    if !(electronic_sigma.is_finite() && electronic_sigma >= 0.0) {
        return Err(OpError::Param {
            name: "electronic_sigma",
            reason: format!("electronic noise must be finite and ≥ 0, got {electronic_sigma}"),
        });
    }
    check_finite("sinogram", sino.iter().map(|&v| v as f64))?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let ln_i0 = i0.ln();
    let mut out = sino.to_owned();
    for v in out.iter_mut() {
        let mean = i0 * (-(*v as f64)).exp();
        let mut counts = if mean > 0.0 {
            Poisson::new(mean)
                .map_err(|e| OpError::Param {
                    name: "i0",
                    reason: format!("Poisson mean {mean} out of range: {e}"),
                })?
                .sample(&mut rng)
        } else {
            0.0
        };
        if electronic_sigma > 0.0 {
            let z: f64 = StandardNormal.sample(&mut rng);
            counts += electronic_sigma * z;
        }
        *v = (ln_i0 - counts.max(1.0).ln()) as f32;
    }
    Ok(out)
}

/// Additive white Gaussian noise: x + σ n with n ~ N(0, 1) i.i.d.
pub fn gaussian<D: Dimension>(
    arr: &ArrayView<f32, D>,
    sigma: f32,
    seed: u64,
) -> Result<Array<f32, D>> {
    add_white_noise(arr, sigma, seed)
}

/// Complex Gaussian k-space noise: k + σ (n_re + i n_im) with n_re, n_im ~ N(0, 1) independent,
/// so σ is the standard deviation of each of the real and imaginary channels (E|noise|² = 2σ²).
pub fn complex_gaussian<D: Dimension>(
    kspace: &ArrayView<Complex32, D>,
    sigma: f32,
    seed: u64,
) -> Result<Array<Complex32, D>> {
    add_white_noise(kspace, sigma, seed)
}

/// x + σ n with n drawn by [`Scalar::standard_normal`].
fn add_white_noise<S: Scalar, D: Dimension>(
    arr: &ArrayView<S, D>,
    sigma: f32,
    seed: u64,
) -> Result<Array<S, D>> {
    if !(sigma.is_finite() && sigma >= 0.0) {
        return Err(OpError::Param {
            name: "sigma",
            reason: format!("noise level must be finite and ≥ 0, got {sigma}"),
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Ok(arr.mapv(|v| v + S::standard_normal(&mut rng).scale(sigma)))
}

fn check_finite(what: &'static str, mut values: impl Iterator<Item = f64>) -> Result<()> {
    if values.all(f64::is_finite) {
        Ok(())
    } else {
        Err(OpError::NonFinite { what })
    }
}
