//! Statistics of the seeded noise models.

use medsgm_operators::noise;
use ndarray::{Array1, Array2};
use num_complex::Complex32;

fn mean_var(v: impl Iterator<Item = f64>) -> (f64, f64) {
    let v: Vec<f64> = v.collect();
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    (
        m,
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0),
    )
}

#[test]
fn gaussian_noise_has_the_requested_moments_and_is_seeded() {
    let x = Array2::from_elem((200, 200), 1.5f32);
    let y = noise::gaussian(&x.view(), 0.2, 3).unwrap();
    let (m, v) = mean_var(y.iter().map(|&a| a as f64 - 1.5));
    // n = 40000: sd of the mean 0.001, of the variance ≈ 0.04²·√(2/n) ≈ 2.8e-4.
    assert!(m.abs() < 0.005, "mean {m}");
    assert!((v - 0.04).abs() < 0.0015, "variance {v}");
    assert_eq!(y, noise::gaussian(&x.view(), 0.2, 3).unwrap());
    assert_ne!(y, noise::gaussian(&x.view(), 0.2, 4).unwrap());
    assert!(noise::gaussian(&x.view(), -1.0, 3).is_err());
}

#[test]
fn complex_noise_has_sigma_per_channel_and_independent_channels() {
    let k = Array1::from_elem(40000, Complex32::new(2.0, -1.0));
    let y = noise::complex_gaussian(&k.view(), 0.5, 11).unwrap();
    let (mr, vr) = mean_var(y.iter().map(|z| z.re as f64 - 2.0));
    let (mi, vi) = mean_var(y.iter().map(|z| z.im as f64 + 1.0));
    assert!(mr.abs() < 0.01 && mi.abs() < 0.01, "means {mr} {mi}");
    assert!(
        (vr - 0.25).abs() < 0.01 && (vi - 0.25).abs() < 0.01,
        "variances {vr} {vi}"
    );
    let cov: f64 = y
        .iter()
        .map(|z| (z.re as f64 - 2.0) * (z.im as f64 + 1.0))
        .sum::<f64>()
        / y.len() as f64;
    assert!(cov.abs() < 0.01, "cross-covariance {cov}");
}

/// Counts N ~ Poisson(I0 e^{−p}): by the delta method p̂ = −ln(N/I0) has mean ≈ p + 1/(2λ) and
/// variance ≈ 1/λ with λ = I0 e^{−p}.
#[test]
fn poisson_transmission_matches_the_delta_method() {
    let (i0, p) = (1e4f64, 2.0f32);
    let sino = Array2::from_elem((100, 300), p);
    let y = noise::poisson_transmission(&sino.view(), i0, 21).unwrap();
    let lambda = i0 * (-(p as f64)).exp();
    let (m, v) = mean_var(y.iter().map(|&a| a as f64));
    assert!((m - (p as f64 + 0.5 / lambda)).abs() < 2e-3, "mean {m}");
    assert!(
        (v / (1.0 / lambda) - 1.0).abs() < 0.05,
        "variance {v} vs {}",
        1.0 / lambda
    );
    assert_eq!(
        y,
        noise::poisson_transmission(&sino.view(), i0, 21).unwrap()
    );

    // Photon starvation: zero counts are clamped to one, so p̂ ≤ ln I0.
    let dark = Array1::from_elem(1000, 30.0f32);
    let yd = noise::poisson_transmission(&dark.view(), 100.0, 1).unwrap();
    assert!(yd.iter().all(|&v| (v - (100.0f32).ln()).abs() < 1e-5));

    assert!(noise::poisson_transmission(&sino.view(), 0.0, 1).is_err());
    let bad = Array1::from_elem(3, f32::NAN);
    assert!(noise::poisson_transmission(&bad.view(), 1e4, 1).is_err());
}

/// Electronic noise adds σₑ² to the count variance: p̂ has variance ≈ (λ + σₑ²)/λ² by the delta
/// method; σₑ = 0 reproduces the Poisson-only model draw for draw.
#[test]
fn electronic_noise_adds_its_variance_to_the_counts() {
    let (i0, p, sigma_e) = (2e3f64, 1.5f32, 20.0f64);
    let sino = Array2::from_elem((100, 300), p);
    let y = noise::transmission_with_electronic(&sino.view(), i0, sigma_e, 5).unwrap();
    let lambda = i0 * (-(p as f64)).exp();
    let expected = (lambda + sigma_e * sigma_e) / (lambda * lambda);
    let (m, v) = mean_var(y.iter().map(|&a| a as f64));
    assert!((m - p as f64).abs() < 5e-3, "mean {m}");
    assert!(
        (v / expected - 1.0).abs() < 0.05,
        "variance {v} vs {expected}"
    );
    assert_eq!(
        noise::transmission_with_electronic(&sino.view(), i0, 0.0, 5).unwrap(),
        noise::poisson_transmission(&sino.view(), i0, 5).unwrap()
    );
    for bad in [-1.0, f64::NAN, f64::INFINITY] {
        assert!(noise::transmission_with_electronic(&sino.view(), i0, bad, 5).is_err());
    }
}
