//! The continuous-time ELBO (Huang et al. 2021, Eq. 25) against closed forms on Gaussian data,
//! where every quantity is known: the model's own density log p^SDE (moment ODEs of the linear
//! reverse SDE), the expected ELBO integrand (quadrature) and the App. I proposal.

mod common;

use candle_core::{DType, Device, Tensor};
use medsgm_recon::elbo::{elbo, mean_var, ElboConfig, TimeDensity, TimeProposal};
use medsgm_recon::likelihood::TraceEstimator;
use medsgm_recon::{GaussianScore, Noise, Sde, SdeConfig};
use rand::Rng;
use std::sync::Arc;

const DATA_MEAN: [f64; 2] = [1.0, -0.5];
const DATA_STD: [f64; 2] = [0.5, 1.5];
const X: [f64; 2] = [0.7, 0.3];

fn sde(cfg: SdeConfig) -> Arc<dyn Sde> {
    Arc::from(cfg.build().unwrap())
}

/// The reverse SDE of `sde` with the linear score −(x − m μ)/(m² s₀² + s²) of N(μ, diag(s₀²))
/// data diffused by `score_sde` (the exact score when `score_sde` is `sde`).
struct Linear<'a> {
    sde: &'a dyn Sde,
    score_sde: &'a dyn Sde,
    mean: [f64; 2],
    std: [f64; 2],
}

impl Linear<'_> {
    /// (c_i(t), v_i(t)) with s(x, t)_i = −(x_i − c_i)/v_i.
    fn cv(&self, t: f64, i: usize) -> (f64, f64) {
        let m = self.score_sde.mean_coef(t);
        (
            m * self.mean[i],
            m * m * self.std[i].powi(2) + self.score_sde.std(t).powi(2),
        )
    }

    /// log p^SDE_ε(x) of the reverse SDE with this score started from π at T: its marginals
    /// stay Gaussian, mean M and variance P per coordinate solve (t running from T down to ε)
    /// dM/dt = f M + g² (M − c)/v and dP/dt = 2 (f + g²/v) P − g² (RK4, log-spaced steps).
    fn log_p_sde(&self, x: &[f64; 2], eps: f64) -> f64 {
        let n = 20_000;
        let (lt0, lt1) = (self.sde.t_max().ln(), eps.ln());
        let mut out = 0.0;
        for (i, &xi) in x.iter().enumerate() {
            let rhs = |t: f64, y: [f64; 2]| -> [f64; 2] {
                let (f, g2) = (self.sde.drift_coef(t), self.sde.diffusion(t).powi(2));
                let (c, v) = self.cv(t, i);
                [
                    f * y[0] + g2 * (y[0] - c) / v,
                    2.0 * (f + g2 / v) * y[1] - g2,
                ]
            };
            // integrate in u = ln t: dy/du = t · dy/dt
            let du = (lt1 - lt0) / n as f64;
            let mut y = [0.0, self.sde.prior_std().powi(2)];
            for k in 0..n {
                let u = lt0 + k as f64 * du;
                let g = |u: f64, y: [f64; 2]| {
                    let t = u.exp();
                    let d = rhs(t, y);
                    [t * d[0], t * d[1]]
                };
                let add = |y: [f64; 2], d: [f64; 2], h: f64| [y[0] + h * d[0], y[1] + h * d[1]];
                let k1 = g(u, y);
                let k2 = g(u + du / 2.0, add(y, k1, du / 2.0));
                let k3 = g(u + du / 2.0, add(y, k2, du / 2.0));
                let k4 = g(u + du, add(y, k3, du));
                for j in 0..2 {
                    y[j] += du / 6.0 * (k1[j] + 2.0 * k2[j] + 2.0 * k3[j] + k4[j]);
                }
            }
            let (m, p) = (y[0], y[1]);
            out += -0.5 * (2.0 * std::f64::consts::PI * p).ln() - (xi - m).powi(2) / (2.0 * p);
        }
        out
    }

    /// The ELBO with the expected integrand in closed form: with Y_t = a x + b z,
    /// E[½ g²‖s‖² + g² ∇·s] = g² Σ_i [½((a x_i − c_i)² + b²)/v_i² − 1/v_i], integrated by
    /// Simpson's rule in ln t.
    fn elbo_quadrature(&self, x: &[f64; 2], eps: f64) -> f64 {
        let sde = self.sde;
        let h = |t: f64| {
            let k = sde.discretize(t, eps);
            let g2 = sde.diffusion(t).powi(2);
            (0..2)
                .map(|i| {
                    let (c, v) = self.cv(t, i);
                    g2 * (0.5 * ((k.a() * x[i] - c).powi(2) + k.g.powi(2)) / (v * v) - 1.0 / v)
                })
                .sum::<f64>()
        };
        let n = 40_000;
        let (u0, u1) = (eps.ln(), sde.t_max().ln());
        let du = (u1 - u0) / n as f64;
        let integral = (0..=n)
            .map(|k| {
                let u = u0 + k as f64 * du;
                let w = if k == 0 || k == n {
                    1.0
                } else if k % 2 == 1 {
                    4.0
                } else {
                    2.0
                };
                w * h(u.exp()) * u.exp()
            })
            .sum::<f64>()
            * du
            / 3.0;
        let kt = sde.discretize(sde.t_max(), eps);
        let var_pi = sde.prior_std().powi(2);
        let norm2: f64 = x.iter().map(|v| v * v).sum();
        let e_norm2 = kt.a().powi(2) * norm2 + kt.g.powi(2) * 2.0;
        -(2.0 * std::f64::consts::PI * var_pi).ln() - e_norm2 / (2.0 * var_pi)
            + 2.0 * (sde.mean_coef(sde.t_max()) / sde.mean_coef(eps)).ln()
            - integral
    }
}

/// Monte-Carlo ELBO of `X` pooled over `copies` independent copies × `draws` draws:
/// (estimate, standard error, per-term variance).
fn pooled(
    sde: &dyn Sde,
    score: &GaussianScore,
    copies: usize,
    draws: usize,
    proposal: TimeProposal,
    estimator: TraceEstimator,
) -> (f64, f64, f64) {
    let x = Tensor::from_vec(X.repeat(copies), (copies, 2), &Device::Cpu).unwrap();
    let out = elbo(
        sde,
        score,
        &x,
        &ElboConfig {
            draws,
            proposal,
            estimator,
            seed: 7,
            ..ElboConfig::default()
        },
    )
    .unwrap();
    let terms: Vec<f64> = out.terms.concat();
    let (mean, var) = mean_var(&terms);
    (
        out.closed_form[0] - mean,
        (var / terms.len() as f64).sqrt(),
        var,
    )
}

/// With the exact score of the data, the ELBO equals the model's log-likelihood (the gap is
/// only the prior mismatch π ≠ p_T, ~e^{−B(1)} for VP), and the Monte-Carlo estimator — exact
/// trace and Hutchinson — is unbiased for it; for the fixed VP and a learned schedule.
#[test]
fn elbo_is_tight_for_the_exact_score() {
    for cfg in [SdeConfig::vp(), common::learned()] {
        let sde = sde(cfg.clone());
        let score = GaussianScore::new(sde.clone(), DATA_MEAN.to_vec(), DATA_STD.to_vec()).unwrap();
        let lin = Linear {
            sde: sde.as_ref(),
            score_sde: sde.as_ref(),
            mean: DATA_MEAN,
            std: DATA_STD,
        };
        let eps = sde.t_min_train();
        let exact = lin.log_p_sde(&X, eps);
        let quad = lin.elbo_quadrature(&X, eps);
        assert!(
            quad <= exact + 1e-6 && exact - quad < 1e-3,
            "{cfg:?}: ELBO {quad} vs log p {exact}"
        );
        for est in [TraceEstimator::Exact, TraceEstimator::Rademacher] {
            let (mc, se, _) = pooled(
                sde.as_ref(),
                &score,
                2000,
                16,
                TimeProposal::Likelihood { truncation: 1e-3 },
                est,
            );
            assert!(
                (mc - quad).abs() < 4.0 * se,
                "{cfg:?} {est:?}: Monte-Carlo ELBO {mc} ± {se} vs closed form {quad}"
            );
            assert!(se < 0.1, "{cfg:?} {est:?}: standard error {se}");
        }
    }
}

/// With a score that is not the score of the model's own marginals (the exact score of the
/// data under another noise schedule) the ELBO lies strictly below the model's log-likelihood,
/// for VP and VE, and the Monte-Carlo estimator still matches the closed form.
#[test]
fn elbo_is_a_strict_bound_for_a_wrong_score() {
    for (cfg, score_cfg, proposal) in [
        (
            SdeConfig::vp(),
            SdeConfig::Vp {
                beta_min: 0.1,
                beta_max: 5.0,
            },
            TimeProposal::Likelihood { truncation: 1e-3 },
        ),
        (
            SdeConfig::ve(10.0),
            SdeConfig::ve(3.0),
            TimeProposal::Uniform,
        ),
    ] {
        let (sde, score_sde) = (sde(cfg.clone()), sde(score_cfg));
        let score =
            GaussianScore::new(score_sde.clone(), DATA_MEAN.to_vec(), DATA_STD.to_vec()).unwrap();
        let lin = Linear {
            sde: sde.as_ref(),
            score_sde: score_sde.as_ref(),
            mean: DATA_MEAN,
            std: DATA_STD,
        };
        let eps = sde.t_min_train();
        let exact = lin.log_p_sde(&X, eps);
        let quad = lin.elbo_quadrature(&X, eps);
        let (mc, se, _) = pooled(
            sde.as_ref(),
            &score,
            2000,
            16,
            proposal,
            TraceEstimator::Exact,
        );
        println!("{cfg:?}: ELBO {quad:.4} (Monte Carlo {mc:.4} ± {se:.4}), log p^SDE {exact:.4}");
        assert!(
            quad < exact - 0.1,
            "{cfg:?}: ELBO {quad} not below log p^SDE {exact}"
        );
        assert!(
            (mc - quad).abs() < 4.0 * se,
            "{cfg:?}: Monte-Carlo ELBO {mc} ± {se} vs closed form {quad}"
        );
    }
}

/// The truncated likelihood proposal of App. I in closed form for VP:
/// φ(s) = ln(e^{B(s)} − 1), Φ̃ flat below τ; CDF, inverse CDF and a KS test of its draws.
#[test]
fn likelihood_proposal_matches_app_i() {
    let sde = sde(SdeConfig::vp());
    let (eps, tau) = (1e-5, 1e-3);
    let d = TimeDensity::new(
        sde.as_ref(),
        TimeProposal::Likelihood { truncation: tau },
        eps,
    )
    .unwrap();
    let big_b = |t: f64| 0.1 * t + 0.5 * t * t * (20.0 - 0.1);
    let beta = |t: f64| 0.1 + t * (20.0 - 0.1);
    let phi = |t: f64| big_b(t).exp_m1().ln();
    let q_tau = beta(tau) / -(-big_b(tau)).exp_m1();
    let phi_tilde = |t: f64| {
        if t < tau {
            (t - eps) * q_tau
        } else {
            (tau - eps) * q_tau + phi(t) - phi(tau)
        }
    };
    let z = phi_tilde(1.0);
    for t in [2e-5, 5e-4, 1e-3, 0.01, 0.1, 0.5, 0.9, 1.0] {
        let want = phi_tilde(t) / z;
        let got = d.cdf(sde.as_ref(), t);
        assert!((got - want).abs() < 1e-9, "CDF at {t}: {got} vs {want}");
        let back = d.inverse_cdf(sde.as_ref(), want);
        assert!(
            (back - t).abs() < 1e-9 * t.max(1e-3),
            "R⁻¹(R({t})) = {back}"
        );
        let dens = d.density(sde.as_ref(), t);
        let want_dens = if t < tau {
            q_tau / z
        } else {
            beta(t) / -(-big_b(t)).exp_m1() / z
        };
        assert!(
            (dens - want_dens).abs() < 1e-9 * want_dens,
            "density at {t}"
        );
    }
    // KS test of inverse-CDF draws (n = 20 000, 1 % critical value 1.63/√n)
    let mut noise = Noise::new(3);
    let n = 20_000;
    let mut draws: Vec<f64> = (0..n)
        .map(|_| d.inverse_cdf(sde.as_ref(), noise.rng().random::<f64>()))
        .collect();
    draws.sort_by(f64::total_cmp);
    let ks = draws
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let c = d.cdf(sde.as_ref(), t);
            (c - i as f64 / n as f64)
                .abs()
                .max((c - (i + 1) as f64 / n as f64).abs())
        })
        .fold(0.0, f64::max);
    assert!(ks < 1.63 / (n as f64).sqrt(), "KS statistic {ks}");
    // VE: g²/s² is constant, so the proposal is uniform
    let ve = self::sde(SdeConfig::ve(10.0));
    let dv = TimeDensity::new(
        ve.as_ref(),
        TimeProposal::Likelihood { truncation: tau },
        eps,
    )
    .unwrap();
    for t in [1e-4, 0.3, 0.8] {
        assert!((dv.cdf(ve.as_ref(), t) - (t - eps) / (1.0 - eps)).abs() < 1e-9);
    }
}

/// Importance sampling in time lowers the estimator's variance on VP for data with fine
/// structure (std 0.02, where the integrand grows like g²/σ_t² down to σ_t ≈ 0.02, as for
/// images); both estimates agree.
#[test]
fn likelihood_proposal_lowers_variance() {
    let sde = sde(SdeConfig::vp());
    let score = GaussianScore::new(sde.clone(), DATA_MEAN.to_vec(), vec![0.02, 0.02]).unwrap();
    let run = |p| pooled(sde.as_ref(), &score, 500, 4, p, TraceEstimator::Exact);
    let (u, use_, uvar) = run(TimeProposal::Uniform);
    let (l, lse, lvar) = run(TimeProposal::Likelihood { truncation: 1e-3 });
    println!(
        "uniform {u:.4} ± {use_:.4}, likelihood {l:.4} ± {lse:.4}; variance ratio {:.1}",
        uvar / lvar
    );
    assert!((u - l).abs() < 4.0 * (use_ * use_ + lse * lse).sqrt());
    assert!(uvar > 2.0 * lvar, "variance uniform {uvar} vs IS {lvar}");
}

/// Bad parameters are refused.
#[test]
fn elbo_refuses_bad_parameters() {
    let sde = sde(SdeConfig::vp());
    let score = GaussianScore::new(sde.clone(), DATA_MEAN.to_vec(), DATA_STD.to_vec()).unwrap();
    let x = Tensor::zeros((1, 2), DType::F64, &Device::Cpu).unwrap();
    let bad = |c: ElboConfig| elbo(sde.as_ref(), &score, &x, &c).is_err();
    assert!(bad(ElboConfig {
        draws: 1,
        ..ElboConfig::default()
    }));
    assert!(bad(ElboConfig {
        t_min: Some(2.0),
        ..ElboConfig::default()
    }));
    assert!(bad(ElboConfig {
        proposal: TimeProposal::Likelihood {
            truncation: f64::NAN
        },
        ..ElboConfig::default()
    }));
}
