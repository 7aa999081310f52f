//! Marginal formulas of every SDE (method digest §1, §10): closed forms vs independent
//! computations (finite differences, ODE integration, forward simulation).

mod common;

use medsgm_recon::{time_grid, Noise, Sde, SdeConfig};
use rand_distr::{Distribution, StandardNormal};

fn all_sdes() -> Vec<Box<dyn Sde>> {
    [
        SdeConfig::ve(50.0),
        SdeConfig::vp(),
        SdeConfig::sub_vp(),
        SdeConfig::geometric_vp(),
        common::learned(),
    ]
    .iter()
    .map(|c| c.build().unwrap())
    .collect()
}

#[test]
fn variance_ode_and_mean_ode_hold_numerically() {
    // ds²/dt = 2 f s² + g² and dm/dt = f m (LSGM Eq. 12–13), central differences.
    for sde in all_sdes() {
        for &t in &[0.05, 0.2, 0.5, 0.8, 0.95] {
            let h = 1e-6;
            let ds2 = (sde.std(t + h).powi(2) - sde.std(t - h).powi(2)) / (2.0 * h);
            let rhs = 2.0 * sde.drift_coef(t) * sde.std(t).powi(2) + sde.diffusion(t).powi(2);
            assert!(
                (ds2 - rhs).abs() <= 1e-5 * rhs.abs().max(1e-3),
                "{sde:?} t={t}: ds²/dt {ds2} vs {rhs}"
            );
            let dm = (sde.mean_coef(t + h) - sde.mean_coef(t - h)) / (2.0 * h);
            let rhs_m = sde.drift_coef(t) * sde.mean_coef(t);
            assert!(
                (dm - rhs_m).abs() <= 1e-6,
                "{sde:?} t={t}: dm/dt {dm} vs {rhs_m}"
            );
        }
        assert!((sde.mean_coef(0.0) - 1.0).abs() < 1e-12);
    }
}

#[test]
fn ve_diffusion_is_derivative_of_sigma_squared() {
    let (smin, smax) = (0.01_f64, 50.0_f64);
    let sde = SdeConfig::ve(smax).build().unwrap();
    for &t in &[0.0, 0.3, 0.7, 1.0] {
        let sigma = smin * (smax / smin).powf(t);
        assert!((sde.std(t) - sigma).abs() < 1e-12 * sigma);
        let h = 1e-6;
        let dsig2 = ((smin * (smax / smin).powf(t + h)).powi(2)
            - (smin * (smax / smin).powf(t - h)).powi(2))
            / (2.0 * h);
        assert!((sde.diffusion(t).powi(2) - dsig2).abs() < 1e-6 * dsig2);
    }
    assert_eq!(sde.prior_std(), smax);
    assert_eq!(sde.t_min(), 1e-5);
}

#[test]
fn vp_family_closed_forms() {
    let vp = SdeConfig::vp().build().unwrap();
    let sub = SdeConfig::sub_vp().build().unwrap();
    for i in 0..=20 {
        let t = i as f64 / 20.0;
        let b = 0.1 * t + 0.5 * t * t * 19.9;
        assert!((vp.mean_coef(t) - (-b / 2.0).exp()).abs() < 1e-12);
        assert!((vp.std(t).powi(2) - (1.0 - (-b).exp())).abs() < 1e-12);
        assert!((sub.std(t) - (1.0 - (-b).exp())).abs() < 1e-12);
        assert!(
            sub.std(t) <= vp.std(t) + 1e-15,
            "sub-VP variance exceeds VP at t={t}"
        );
        // Σ(0) = I stays I under VP: m² + s² = 1.
        assert!((vp.mean_coef(t).powi(2) + vp.std(t).powi(2) - 1.0).abs() < 1e-12);
    }
    assert_eq!((vp.t_min(), vp.t_min_train()), (1e-3, 1e-5));
}

#[test]
fn geometric_vp_has_constant_log_variance_rate() {
    let sde = SdeConfig::geometric_vp().build().unwrap();
    let rate = (0.999f64 / 3e-5).ln();
    for &t in &[0.1, 0.4, 0.9] {
        let h = 1e-6;
        let r = ((sde.std(t + h).powi(2)).ln() - (sde.std(t - h).powi(2)).ln()) / (2.0 * h);
        assert!((r - rate).abs() < 1e-5 * rate);
    }
    assert!((sde.std(0.0).powi(2) - 3e-5).abs() < 1e-15);
    assert!((sde.std(1.0).powi(2) - 0.999).abs() < 1e-12);
}

/// RK4 integration of dm/dt = f m, ds²/dt = 2 f s² + g² from t = 0 to 0.9 (independent of
/// the closed forms except for the initial s(0); geometric VP is stiff as σ_t² → σ²_max ≈ 1,
/// hence the end point 0.9).
#[test]
fn integrated_kernel_matches_closed_forms() {
    for sde in all_sdes() {
        let n = 4000;
        let h = 0.9 / n as f64;
        let rhs = |t: f64, y: [f64; 2]| {
            let f = sde.drift_coef(t);
            [f * y[0], 2.0 * f * y[1] + sde.diffusion(t).powi(2)]
        };
        let mut y = [1.0, sde.std(0.0).powi(2)];
        for i in 0..n {
            let t = i as f64 * h;
            let k1 = rhs(t, y);
            let k2 = rhs(
                t + h / 2.0,
                [y[0] + h / 2.0 * k1[0], y[1] + h / 2.0 * k1[1]],
            );
            let k3 = rhs(
                t + h / 2.0,
                [y[0] + h / 2.0 * k2[0], y[1] + h / 2.0 * k2[1]],
            );
            let k4 = rhs(t + h, [y[0] + h * k3[0], y[1] + h * k3[1]]);
            for j in 0..2 {
                y[j] += h / 6.0 * (k1[j] + 2.0 * k2[j] + 2.0 * k3[j] + k4[j]);
            }
        }
        let (m, s2) = (sde.mean_coef(0.9), sde.std(0.9).powi(2));
        assert!(
            (y[0] - m).abs() < 1e-8 * m.max(1e-3),
            "{sde:?}: m {} vs {m}",
            y[0]
        );
        assert!(
            (y[1] - s2).abs() < 1e-6 * s2,
            "{sde:?}: s² {} vs {s2}",
            y[1]
        );
    }
}

/// Euler–Maruyama simulation of the forward SDE from x(0) = x₀ + s(0) z to t = 0.9: the
/// empirical variance of x_t − m(t) x₀ matches s(t)² (1e4 draws, 1-D).
#[test]
fn simulated_forward_sde_matches_marginal_variance() {
    let mut noise = Noise::new(7);
    for sde in all_sdes() {
        let (n, steps) = (10_000, 400);
        let x0: Vec<f64> = (0..n).map(|i| (i % 7) as f64 * 0.3 - 1.0).collect();
        let s0 = sde.std(0.0);
        let mut x: Vec<f64> = x0
            .iter()
            .map(|v| {
                let z: f64 = StandardNormal.sample(noise.rng());
                v + s0 * z
            })
            .collect::<Vec<f64>>();
        let dt = 0.9 / steps as f64;
        for i in 0..steps {
            // midpoint coefficients: O(dt²) bias in the variance
            let t = (i as f64 + 0.5) * dt;
            let (f, g) = (sde.drift_coef(t), sde.diffusion(t));
            for v in x.iter_mut() {
                let z: f64 = StandardNormal.sample(noise.rng());
                *v += f * *v * dt + g * dt.sqrt() * z;
            }
        }
        let t_check = 0.9;
        let m = sde.mean_coef(t_check);
        let r: Vec<f64> = x.iter().zip(&x0).map(|(x, x0)| x - m * x0).collect();
        let mean = r.iter().sum::<f64>() / n as f64;
        let var = r.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let s2 = sde.std(t_check).powi(2);
        assert!(
            (var / s2 - 1.0).abs() < 0.05,
            "{sde:?}: empirical var {var} vs s² {s2}"
        );
        assert!(mean.abs() < 4.0 * (s2 / n as f64).sqrt() + 0.02 * s2.sqrt());
    }
}

/// Chaining the discretisation (f_i, G_i) along a grid reproduces the marginal kernel.
#[test]
fn chained_discretisation_reproduces_marginal() {
    for sde in all_sdes() {
        let grid = time_grid(50, 1.0, sde.t_min()).unwrap();
        let (mut a, mut v) = (1.0, sde.std(sde.t_min()).powi(2));
        for w in grid.windows(2).rev() {
            let d = sde.discretize(w[0], w[1]);
            a *= d.a();
            v = d.a().powi(2) * v + d.g * d.g;
        }
        let m_ratio = sde.mean_coef(1.0) / sde.mean_coef(sde.t_min());
        assert!((a - m_ratio).abs() < 1e-10 * m_ratio);
        assert!((v - sde.std(1.0).powi(2)).abs() < 1e-9 * v);
    }
}

#[test]
fn config_round_trips_through_serde() {
    for cfg in [
        SdeConfig::ve(128.0),
        SdeConfig::vp(),
        SdeConfig::sub_vp(),
        SdeConfig::geometric_vp(),
        common::learned(),
    ] {
        let json = serde_json::to_string(&cfg).unwrap();
        let back: SdeConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cfg);
        assert_eq!(cfg.build().unwrap().config(), cfg);
    }
    assert!(SdeConfig::Ve {
        sigma_min: 1.0,
        sigma_max: 0.5
    }
    .build()
    .is_err());
    assert!(SdeConfig::GeometricVp {
        sigma2_min: 1e-3,
        sigma2_max: 1.0
    }
    .build()
    .is_err());
}

#[test]
fn time_grid_endpoints_and_spacing() {
    let g = time_grid(4, 1.0, 1e-3).unwrap();
    assert_eq!(g.len(), 5);
    assert_eq!((g[0], g[4]), (1.0, 1e-3));
    for w in g.windows(2) {
        assert!((w[0] - w[1] - (1.0 - 1e-3) / 4.0).abs() < 1e-12);
    }
    assert!(time_grid(0, 1.0, 0.0).is_err());
}
