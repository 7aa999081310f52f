//! LSGM building blocks (LSGM App. A–B; method digest §7): importance-sampling densities and
//! inverse CDFs, IS vs uniform estimators, Theorem 1 and the mixed score.

use candle_core::{DType, Device, Tensor};
use medsgm_recon::lsgm::{
    cross_entropy, gaussian_entropy, score_matching, EpsModel, LatentSchedule, MixedEps,
    TimeProposal, TimeSampler, Weighting,
};
use medsgm_recon::{GaussianScore, Noise, ScoreModel, SdeConfig};
use std::f64::consts::{E, PI};
use std::sync::Arc;

const VE: SdeConfig = SdeConfig::Ve {
    sigma_min: 0.01,
    sigma_max: 50.0,
};

/// Every (SDE, weighting, cutoff) with an importance-sampling proposal.
fn cases() -> Vec<(&'static str, SdeConfig, Weighting, f64)> {
    use Weighting::*;
    vec![
        ("vp ll eps=1e-2", SdeConfig::vp(), Likelihood, 1e-2),
        ("vp ll eps=1e-5", SdeConfig::vp(), Likelihood, 1e-5),
        ("vp un", SdeConfig::vp(), Unweighted, 1e-5),
        ("vp re", SdeConfig::vp(), Reweighted, 1e-5),
        ("geo ll", SdeConfig::geometric_vp(), Likelihood, 0.0),
        ("geo un", SdeConfig::geometric_vp(), Unweighted, 0.0),
        ("geo re", SdeConfig::geometric_vp(), Reweighted, 0.0),
        ("ve ll", VE, Likelihood, 1e-5),
        ("ve un", VE, Unweighted, 1e-5),
        ("ve re", VE, Reweighted, 0.0),
    ]
}

fn importance(cfg: SdeConfig, w: Weighting, eps: f64) -> TimeSampler {
    TimeSampler::new(&cfg, w, TimeProposal::Importance, eps).unwrap()
}

/// ∫_a^b f by composite Simpson in u = ln(t + δ) (resolves the 1/t spikes near t = 0).
fn integrate(f: impl Fn(f64) -> f64, a: f64, b: f64, n: usize) -> f64 {
    let delta = 1e-7;
    let (ua, ub) = ((a + delta).ln(), (b + delta).ln());
    let n = n + n % 2;
    let h = (ub - ua) / n as f64;
    let g = |u: f64| {
        let s = u.exp();
        f((s - delta).clamp(a, b)) * s
    };
    let mut acc = g(ua) + g(ub);
    for i in 1..n {
        acc += if i % 2 == 1 { 4.0 } else { 2.0 } * g(ua + i as f64 * h);
    }
    acc * h / 3.0
}

#[test]
fn densities_integrate_to_one_and_match_their_cdfs() {
    for (name, cfg, w, eps) in cases() {
        let s = importance(cfg, w, eps);
        let total = integrate(|t| s.density(t), eps, 1.0, 20_000);
        assert!((total - 1.0).abs() < 1e-6, "{name}: ∫r = {total}");
        for t in [0.001, 0.05, 0.3, 0.7, 0.99] {
            if t <= eps {
                continue;
            }
            let quad = integrate(|t| s.density(t), eps, t, 20_000);
            assert!(
                (s.cdf(t) - quad).abs() < 1e-6,
                "{name}: R({t}) {} vs {quad}",
                s.cdf(t)
            );
        }
        for i in 0..=100 {
            let rho = i as f64 / 100.0;
            let t = s.inverse_cdf(rho);
            assert!((eps..=1.0).contains(&t), "{name}: t = {t}");
            assert!(
                (s.cdf(t) - rho).abs() < 1e-9,
                "{name}: R(R⁻¹({rho})) = {}",
                s.cdf(t)
            );
        }
    }
}

#[test]
fn inverse_cdf_samples_pass_a_ks_test_against_the_density() {
    let n = 5000;
    for (k, (name, cfg, w, eps)) in cases().into_iter().enumerate() {
        let s = importance(cfg, w, eps);
        let mut t = s.sample(n, &mut Noise::new(100 + k as u64));
        t.sort_by(|a, b| a.total_cmp(b));
        // Reference CDF by quadrature of the density between consecutive samples.
        let (mut cdf, mut prev, mut d) = (0.0, eps, 0.0f64);
        for (i, &ti) in t.iter().enumerate() {
            cdf += integrate(|x| s.density(x), prev, ti, 16);
            prev = ti;
            d = d.max((cdf - i as f64 / n as f64).abs());
            d = d.max((cdf - (i + 1) as f64 / n as f64).abs());
        }
        let critical = 1.95 / (n as f64).sqrt(); // α = 0.001
        assert!(d < critical, "{name}: KS D = {d} ≥ {critical}");
    }
}

#[test]
fn is_weights_match_the_paper_formulas() {
    let (b0, b1) = (0.1f64, 20.0f64);
    let vp_var = |t: f64| 1.0 - (-(b0 * t + 0.5 * (b1 - b0) * t * t)).exp();
    let (g2min, g2max) = (3e-5f64, 0.999f64);
    let geo_var = |t: f64| g2min * (g2max / g2min).powf(t);
    let (v2min, v2max) = (1e-4f64, 2500.0f64);
    let ve_var = |t: f64| v2min * (v2max / v2min).powf(t);
    let ve_tilde = |t: f64| 1.0 - v2min + ve_var(t);
    let ln_ve = (v2max / v2min).ln();
    let ts = [0.02, 0.1, 0.4, 0.8, 1.0];
    let check = |name: &str, s: &TimeSampler, formula: &dyn Fn(f64) -> f64| {
        for t in ts {
            let (got, want) = (s.weight(t), formula(t));
            assert!(
                (got - want).abs() <= 1e-6 * want.abs(),
                "{name} t={t}: w/r {got} vs {want}"
            );
        }
    };
    let eps = 1e-5;
    let s = importance(SdeConfig::vp(), Weighting::Likelihood, eps);
    check("vp ll", &s, &|t| {
        (vp_var(1.0).ln() - vp_var(eps).ln()) / (1.0 - vp_var(t))
    });
    // w_un: R̃ = A (e₁ − e_ε) with A = exp(β₀²/(2(β₁−β₀))) √(π/(2(β₁−β₀))) (β₀², not β₀).
    let a = (b0 * b0 / (2.0 * (b1 - b0))).exp() * (PI / (2.0 * (b1 - b0))).sqrt();
    let e = |x: f64| libm::erf(((b1 - b0) / 2.0).sqrt() * (x + b0 / (b1 - b0)));
    let r_un = a * (e(1.0) - e(eps));
    let quad = integrate(|t| 1.0 - vp_var(t), eps, 1.0, 20_000);
    assert!(
        (r_un - quad).abs() < 1e-8,
        "erf normaliser {r_un} vs ∫e^(-B) {quad}"
    );
    let s = importance(SdeConfig::vp(), Weighting::Unweighted, eps);
    check("vp un", &s, &|t| r_un / (1.0 - vp_var(t)));
    let s = importance(SdeConfig::vp(), Weighting::Reweighted, eps);
    check("vp re", &s, &|t| {
        (vp_var(1.0) - vp_var(eps)) / (1.0 - vp_var(t))
    });
    let s = importance(SdeConfig::geometric_vp(), Weighting::Reweighted, 0.0);
    check("geo re", &s, &|t| {
        (geo_var(1.0) - geo_var(0.0)) / (1.0 - geo_var(t))
    });
    // Geometric VP with w_ll: the optimal proposal is uniform.
    let s = importance(SdeConfig::geometric_vp(), Weighting::Likelihood, 0.0);
    for t in ts {
        assert!(
            (s.density(t) - 1.0).abs() < 1e-9,
            "geo ll r({t}) = {}",
            s.density(t)
        );
    }
    check("geo ll", &s, &|t| (g2max / g2min).ln() / (1.0 - geo_var(t)));
    let r_ll = (ve_tilde(eps) * ve_var(1.0) / (ve_var(eps) * ve_tilde(1.0))).ln();
    let s = importance(VE, Weighting::Likelihood, eps);
    check("ve ll", &s, &|t| r_ll * ve_tilde(t) / (1.0 - v2min));
    let s = importance(VE, Weighting::Unweighted, eps);
    check("ve un", &s, &|t| r_ll / ln_ve * ve_tilde(t) / (1.0 - v2min));
    let s = importance(VE, Weighting::Reweighted, eps);
    check("ve re", &s, &|t| {
        (ve_tilde(1.0) / ve_tilde(eps)).ln() * ve_tilde(t)
    });
}

/// A residual network that must be ignored when α = 0.
struct Garbage;
impl EpsModel for Garbage {
    fn eps(&self, z_t: &Tensor, _t: &Tensor) -> candle_core::Result<Tensor> {
        z_t.affine(3.0, 1.0)
    }
}

/// The mixed model with α = sigmoid(−10⁴) = 0 exactly: the Normal ε_θ = (σ_t/σ̃_t²) z_t.
fn normal_model(cfg: SdeConfig, channels: usize) -> MixedEps<Garbage> {
    let logit = Tensor::full(-1e4f32, channels, &Device::Cpu).unwrap();
    MixedEps::new(LatentSchedule::new(&cfg).unwrap(), logit, Garbage)
}

fn mean_and_var(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    (
        m,
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0),
    )
}

#[test]
fn is_and_uniform_estimators_agree_and_is_has_lower_variance() {
    let (n, d) = (4000, 16);
    for (k, (name, cfg, w, eps)) in [
        (
            "vp ll eps=1e-2",
            SdeConfig::vp(),
            Weighting::Likelihood,
            1e-2,
        ),
        (
            "vp ll eps=1e-5",
            SdeConfig::vp(),
            Weighting::Likelihood,
            1e-5,
        ),
        ("vp un", SdeConfig::vp(), Weighting::Unweighted, 1e-5),
        ("vp re", SdeConfig::vp(), Weighting::Reweighted, 1e-5),
        (
            "geo re",
            SdeConfig::geometric_vp(),
            Weighting::Reweighted,
            0.0,
        ),
        ("ve ll", VE, Weighting::Likelihood, 1e-5),
        ("ve re", VE, Weighting::Reweighted, 1e-5),
    ]
    .into_iter()
    .enumerate()
    {
        let model = normal_model(cfg.clone(), d);
        let mut noise = Noise::new(7 + k as u64);
        let schedule = LatentSchedule::new(&cfg).unwrap();
        let std0 = (1.0 - schedule.var0()).sqrt() as f32;
        let z0 = (noise.randn(&[n, d], DType::F32, &Device::Cpu).unwrap() * std0 as f64).unwrap();
        let estimate = |proposal, noise: &mut Noise| {
            let s = TimeSampler::new(&cfg, w, proposal, eps).unwrap();
            let sm = score_matching(&model, &s, &z0, noise).unwrap();
            let v: Vec<f64> = sm.loss.to_dtype(DType::F64).unwrap().to_vec1().unwrap();
            mean_and_var(&v)
        };
        let (m_is, v_is) = estimate(TimeProposal::Importance, &mut noise);
        let (m_un, v_un) = estimate(TimeProposal::Uniform, &mut noise);
        // Exact value for Normal latents: (D/2) ∫ w(t) h(t) dt.
        let s = importance(cfg, w, eps);
        let exact = 0.5
            * d as f64
            * integrate(
                |t| w.weight(&schedule, t) * s.normal_loss(t),
                eps,
                1.0,
                20_000,
            );
        let (se_is, se_un) = ((v_is / n as f64).sqrt(), (v_un / n as f64).sqrt());
        println!(
            "{name}: exact {exact:.4}, IS {m_is:.4} ± {se_is:.4}, uniform {m_un:.4} ± {se_un:.4}, \
             var(uniform)/var(IS) = {:.1}",
            v_un / v_is
        );
        assert!(
            (m_is - exact).abs() < 4.0 * se_is,
            "{name}: IS mean {m_is} vs {exact}"
        );
        assert!(
            (m_un - exact).abs() < 4.0 * se_un,
            "{name}: uniform mean {m_un} vs {exact}"
        );
        assert!(v_is < v_un, "{name}: var IS {v_is} ≥ uniform {v_un}");
    }
    // VP w_ll closed form: (D/2) ln(σ₁²/σ_ε²).
    let s = importance(SdeConfig::vp(), Weighting::Likelihood, 1e-2);
    let sch = s.schedule();
    let closed = 0.5 * d as f64 * (sch.var(1.0) / sch.var(1e-2)).ln();
    let quad = 0.5
        * d as f64
        * integrate(
            |t| Weighting::Likelihood.weight(sch, t) * s.normal_loss(t),
            1e-2,
            1.0,
            20_000,
        );
    assert!((closed - quad).abs() < 1e-6 * closed, "{closed} vs {quad}");
}

#[test]
fn cross_entropy_of_normal_latents_is_their_entropy_theorem_1() {
    let (n, d) = (20_000, 16);
    let entropy = 0.5 * d as f64 * (2.0 * PI * E).ln();
    for (k, (name, cfg, proposal, eps)) in [
        ("vp IS", SdeConfig::vp(), TimeProposal::Importance, 1e-5),
        (
            "geo uniform",
            SdeConfig::geometric_vp(),
            TimeProposal::Uniform,
            0.0,
        ),
        (
            "ve IS",
            SdeConfig::Ve {
                sigma_min: 0.01,
                sigma_max: 100.0,
            },
            TimeProposal::Importance,
            1e-5,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let model = normal_model(cfg.clone(), d);
        let sampler = TimeSampler::new(&cfg, Weighting::Likelihood, proposal, eps).unwrap();
        let mut noise = Noise::new(31 + k as u64);
        let z0 = noise.randn(&[n, d], DType::F32, &Device::Cpu).unwrap();
        let ce: Vec<f64> = cross_entropy(&model, &sampler, &z0, &mut noise)
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap()
            .to_vec1()
            .unwrap();
        let (m, v) = mean_and_var(&ce);
        let se = (v / n as f64).sqrt();
        println!("{name}: CE {m:.4} ± {se:.4}, entropy of N(0, I) {entropy:.4}");
        assert!(
            (m - entropy).abs() < 4.0 * se + 0.01,
            "{name}: CE {m} vs H {entropy}"
        );
    }
}

#[test]
fn mixed_score_with_alpha_zero_is_the_exact_normal_score() {
    let (b, d) = (64, 4);
    for cfg in [SdeConfig::vp(), SdeConfig::geometric_vp(), VE] {
        let model = normal_model(cfg.clone(), d);
        let schedule = LatentSchedule::new(&cfg).unwrap();
        let sde: Arc<dyn medsgm_recon::Sde> = Arc::from(cfg.build().unwrap());
        // Data N(0, (1 − σ₀²) I) diffuses to N(0, σ̃_t² I).
        let std0 = (1.0 - schedule.var0()).sqrt();
        let exact = GaussianScore::new(sde, vec![0.0; d], vec![std0; d]).unwrap();
        let mut noise = Noise::new(5);
        let x = noise.randn(&[b, d], DType::F32, &Device::Cpu).unwrap();
        let t = noise
            .uniform(&[b], 0.01, 1.0, DType::F32, &Device::Cpu)
            .unwrap();
        let got = model.score(&x, &t).unwrap();
        let want = exact.score(&x, &t).unwrap();
        let err = (got - &want).unwrap().abs().unwrap().max_all().unwrap();
        let scale = want.abs().unwrap().max_all().unwrap();
        let rel = err.to_scalar::<f32>().unwrap() / scale.to_scalar::<f32>().unwrap();
        assert!(rel < 1e-5, "{cfg:?}: relative error {rel}");
    }
}

#[test]
fn mixed_eps_interpolates_normal_and_network_parts() {
    let cfg = SdeConfig::vp();
    let schedule = LatentSchedule::new(&cfg).unwrap();
    let mut noise = Noise::new(9);
    let z = noise
        .randn(&[3, 2, 2, 2], DType::F32, &Device::Cpu)
        .unwrap();
    let t = Tensor::new(&[0.1f32, 0.5, 0.9], &Device::Cpu).unwrap();
    // logit 0 → α = ½ in channel 0; logit 10⁴ → α = 1 in channel 1.
    let logit = Tensor::new(&[0.0f32, 1e4], &Device::Cpu).unwrap();
    let model = MixedEps::new(schedule, logit, Garbage);
    let out = model.eps(&z, &t).unwrap();
    let got: Vec<Vec<Vec<Vec<f32>>>> = (0..3)
        .map(|i| out.get(i).unwrap().to_vec3().unwrap())
        .collect();
    let zs: Vec<Vec<Vec<Vec<f32>>>> = (0..3)
        .map(|i| z.get(i).unwrap().to_vec3().unwrap())
        .collect();
    let sde = cfg.build().unwrap();
    for (i, ti) in [0.1f64, 0.5, 0.9].into_iter().enumerate() {
        let sigma = sde.std(ti as f32 as f64) as f32;
        for h in 0..2 {
            for w in 0..2 {
                let z0 = zs[i][0][h][w];
                let z1 = zs[i][1][h][w];
                let want0 = 0.5 * sigma * z0 + 0.5 * (3.0 * z0 + 1.0);
                let want1 = 3.0 * z1 + 1.0;
                assert!((got[i][0][h][w] - want0).abs() < 1e-5);
                assert!((got[i][1][h][w] - want1).abs() < 1e-5);
            }
        }
    }
}

#[test]
fn gaussian_entropy_matches_monte_carlo() {
    let mut noise = Noise::new(3);
    let log_var = noise
        .uniform(&[2, 3], -2.0, 1.0, DType::F64, &Device::Cpu)
        .unwrap();
    let h: Vec<f64> = gaussian_entropy(&log_var).unwrap().to_vec1().unwrap();
    let lv: Vec<Vec<f64>> = log_var.to_vec2().unwrap();
    let n = 200_000;
    for (b, row) in lv.iter().enumerate() {
        // −E log N(x; 0, σ²) with x = σ ε.
        let eps: Vec<Vec<f64>> = noise
            .randn(&[n, 3], DType::F64, &Device::Cpu)
            .unwrap()
            .to_vec2()
            .unwrap();
        let mc = eps
            .iter()
            .map(|e| {
                row.iter()
                    .zip(e)
                    .map(|(lv, e)| 0.5 * ((2.0 * PI).ln() + lv + e * e))
                    .sum::<f64>()
            })
            .sum::<f64>()
            / n as f64;
        assert!((mc - h[b]).abs() < 0.02, "sample {b}: MC {mc} vs {}", h[b]);
    }
}

#[test]
fn sub_vp_and_bad_cutoffs_are_rejected() {
    let w = Weighting::Likelihood;
    let is = TimeProposal::Importance;
    assert!(TimeSampler::new(&SdeConfig::sub_vp(), w, is, 1e-5).is_err());
    assert!(TimeSampler::new(&SdeConfig::vp(), w, is, 0.0).is_err());
    assert!(TimeSampler::new(&SdeConfig::vp(), w, is, 1.0).is_err());
}

#[test]
fn cross_entropy_of_shifted_latents_to_the_normal_prior_theorem_1() {
    // q(z₀) = N(μ, s² I), p = N(0, I) (α = 0): CE = (D/2) ln 2π + (D/2)(μ² + s²).
    let (n, d, mu, s) = (20_000, 16, 0.7, 0.4);
    let exact = 0.5 * d as f64 * ((2.0 * PI).ln() + mu * mu + s * s);
    for (k, (name, cfg, proposal, eps)) in [
        ("vp IS", SdeConfig::vp(), TimeProposal::Importance, 1e-5),
        (
            "geo uniform",
            SdeConfig::geometric_vp(),
            TimeProposal::Uniform,
            0.0,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let model = normal_model(cfg.clone(), d);
        let sampler = TimeSampler::new(&cfg, Weighting::Likelihood, proposal, eps).unwrap();
        let mut noise = Noise::new(61 + k as u64);
        let z0 = noise
            .randn(&[n, d], DType::F32, &Device::Cpu)
            .unwrap()
            .affine(s, mu)
            .unwrap();
        let ce: Vec<f64> = cross_entropy(&model, &sampler, &z0, &mut noise)
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap()
            .to_vec1()
            .unwrap();
        let (m, v) = mean_and_var(&ce);
        let se = (v / n as f64).sqrt();
        println!("{name}: CE {m:.4} ± {se:.4}, analytic {exact:.4}");
        assert!(
            (m - exact).abs() < 4.0 * se + 0.01,
            "{name}: CE {m} vs {exact}"
        );
    }
}
